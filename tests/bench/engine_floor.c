/* engine_floor: the engine's own limit for `scripts/bench converge`. A minimal Engine API client
 * that creates and starts N containers the way orch's create request describes them (labels, a
 * user-defined bridge network with a service alias, one port published on 127.0.0.1 with an
 * engine-chosen host port, restart policy "no", a stop timeout), from K threads, each with one
 * kept-alive HTTP/1.1 connection on the engine's unix socket. Nothing else runs in the timed
 * part: no JSON library, no event loop, no retries, no store. It also removes what it made
 * (--remove), concurrently, so the benchmark's rounds start clean quickly.
 *
 * A benchmark tool, not part of orch: it trusts its arguments (plain ASCII, no quotes) and the
 * local engine, and prints one line of key=value results on stdout. */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define MAX_LABELS 16
#define MAX_COUNT 1000
#define MAX_WORKERS 200
#define RESP_MAX (4u << 20)

struct floor_opts {
    const char *socket_path;
    const char *api; /* "1.41": the prefix of every path */
    const char *image;
    const char *network;
    const char *alias;
    const char *name_prefix;
    const char *publish;
    const char *labels[MAX_LABELS]; /* "key=value" */
    int n_labels;
    int port;
    int stop_timeout;
    int count;
    int workers;
    bool create_network;
    bool remove;
};

struct conn {
    int fd;
    char *buf; /* bytes read past the previous response */
    size_t len, cap;
};

struct resp {
    int status;
    char *body; /* NUL-terminated */
    size_t body_len;
};

struct job {
    int64_t create_ns, start_ns, done_ns; /* since t0 */
    int failed;
};

static struct floor_opts opt = {
    .socket_path = "/var/run/docker.sock",
    .api = "1.41",
    .image = "orch-demo:1",
    .alias = "web",
    .name_prefix = "floor-web",
    .publish = "127.0.0.1",
    .port = 8080,
    .stop_timeout = 1,
    .count = 1,
    .workers = 1,
};

static int64_t t0_ns;
static atomic_int next_job;
static struct job *jobs;
static char **ids; /* --remove: the containers to remove */
static int n_ids;
static char *create_body; /* the same for every container */

static int64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void die(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("engine_floor: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    exit(1);
}

static char *xasprintf(const char *fmt, ...)
{
    va_list ap;
    char *s = NULL;
    va_start(ap, fmt);
    if (vasprintf(&s, fmt, ap) < 0)
        die("out of memory");
    va_end(ap);
    return s;
}

static void conn_open(struct conn *c)
{
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(opt.socket_path) >= sizeof(a.sun_path))
        die("socket path too long");
    strcpy(a.sun_path, opt.socket_path);
    c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd < 0 || connect(c->fd, (struct sockaddr *)&a, sizeof(a)) < 0)
        die("connect %s: %s", opt.socket_path, strerror(errno));
    c->len = 0;
}

static void conn_close(struct conn *c)
{
    if (c->fd >= 0)
        close(c->fd);
    c->fd = -1;
    c->len = 0;
}

/* Reads more into c->buf; false at EOF or on an error. */
static bool conn_fill(struct conn *c)
{
    if (c->cap - c->len < 4096) {
        c->cap = c->cap ? c->cap * 2 : 16384;
        if (c->cap > RESP_MAX)
            return false;
        c->buf = realloc(c->buf, c->cap + 1);
        if (c->buf == NULL)
            die("out of memory");
    }
    ssize_t n;
    do
        n = read(c->fd, c->buf + c->len, c->cap - c->len);
    while (n < 0 && errno == EINTR);
    if (n <= 0)
        return false;
    c->len += (size_t)n;
    c->buf[c->len] = '\0';
    return true;
}

static void conn_consume(struct conn *c, size_t n)
{
    memmove(c->buf, c->buf + n, c->len - n);
    c->len -= n;
    c->buf[c->len] = '\0';
}

static bool write_all(int fd, const char *p, size_t n)
{
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return false;
        p += w;
        n -= (size_t)w;
    }
    return true;
}

/* One exchange on c (reconnecting once when a kept-alive connection was closed before the
 * request went out). Content-Length and chunked bodies; "Connection: close" is honoured. */
static bool http(struct conn *c, const char *method, const char *path, const char *body,
                 struct resp *r)
{
    size_t blen = body ? strlen(body) : 0;
    char *req = xasprintf("%s /v%s%s HTTP/1.1\r\nHost: docker\r\nUser-Agent: engine_floor\r\n"
                          "%s%sContent-Length: %zu\r\n\r\n",
                          method, opt.api, path, body ? "Content-Type: application/json" : "",
                          body ? "\r\n" : "", blen);
    memset(r, 0, sizeof(*r));
    for (int attempt = 0; attempt < 2; attempt++) {
        if (c->fd < 0)
            conn_open(c);
        if (!write_all(c->fd, req, strlen(req)) || (blen && !write_all(c->fd, body, blen))) {
            conn_close(c);
            continue;
        }
        char *hend;
        while ((hend = c->len ? strstr(c->buf, "\r\n\r\n") : NULL) == NULL)
            if (!conn_fill(c))
                break;
        if (hend == NULL) {
            conn_close(c); /* closed before any answer: resend on a new connection */
            continue;
        }
        free(req);
        size_t hlen = (size_t)(hend - c->buf) + 4;
        if (sscanf(c->buf, "HTTP/1.%*d %d", &r->status) != 1)
            die("%s %s: not an HTTP answer", method, path);
        bool chunked = false, close_after = false;
        long long clen = -1;
        for (char *l = strstr(c->buf, "\r\n") + 2; l < hend; l = strstr(l, "\r\n") + 2) {
            if (strncasecmp(l, "Content-Length:", 15) == 0)
                clen = atoll(l + 15);
            else if (strncasecmp(l, "Transfer-Encoding:", 18) == 0 && strstr(l, "chunked") &&
                     strstr(l, "chunked") < strstr(l, "\r\n"))
                chunked = true;
            else if (strncasecmp(l, "Connection:", 11) == 0 && strcasestr(l, "close") &&
                     strcasestr(l, "close") < strstr(l, "\r\n"))
                close_after = true;
        }
        conn_consume(c, hlen);
        if (chunked) {
            size_t cap = 0;
            for (;;) {
                char *eol;
                while ((eol = c->len ? strstr(c->buf, "\r\n") : NULL) == NULL)
                    if (!conn_fill(c))
                        die("%s %s: connection closed in a chunked body", method, path);
                size_t sz = strtoul(c->buf, NULL, 16);
                size_t need = (size_t)(eol - c->buf) + 2 + sz + 2;
                while (c->len < need)
                    if (!conn_fill(c))
                        die("%s %s: connection closed in a chunk", method, path);
                if (r->body_len + sz + 1 > cap) {
                    cap = (r->body_len + sz + 1) * 2;
                    r->body = realloc(r->body, cap);
                    if (r->body == NULL)
                        die("out of memory");
                }
                memcpy(r->body + r->body_len, eol + 2, sz);
                r->body_len += sz;
                conn_consume(c, need);
                if (sz == 0)
                    break;
            }
        } else if (clen > 0) {
            while (c->len < (size_t)clen)
                if (!conn_fill(c))
                    die("%s %s: connection closed in the body", method, path);
            r->body = malloc((size_t)clen + 1);
            if (r->body == NULL)
                die("out of memory");
            memcpy(r->body, c->buf, (size_t)clen);
            r->body_len = (size_t)clen;
            conn_consume(c, (size_t)clen);
        }
        if (r->body == NULL)
            r->body = calloc(1, 1);
        else
            r->body[r->body_len] = '\0';
        if (close_after)
            conn_close(c);
        return true;
    }
    free(req);
    return false;
}

static void resp_free(struct resp *r)
{
    free(r->body);
}

/* The value of "Id":"..." in a create answer, new; NULL when absent. */
static char *json_id(const char *body, const char **from)
{
    const char *p = strstr(*from, "\"Id\":\"");
    if (p == NULL)
        return NULL;
    p += 6;
    const char *q = strchr(p, '"');
    if (q == NULL)
        return NULL;
    *from = q;
    (void)body;
    return strndup(p, (size_t)(q - p));
}

static char *labels_json(void)
{
    size_t cap = 64;
    char *s = malloc(cap);
    size_t len = 0;
    s[len++] = '{';
    for (int i = 0; i < opt.n_labels; i++) {
        const char *eq = strchr(opt.labels[i], '=');
        char *kv = xasprintf("%s\"%.*s\":\"%s\"", i ? "," : "", (int)(eq - opt.labels[i]),
                             opt.labels[i], eq + 1);
        size_t n = strlen(kv);
        if (len + n + 2 > cap) {
            cap = (len + n + 2) * 2;
            s = realloc(s, cap);
        }
        memcpy(s + len, kv, n);
        len += n;
        free(kv);
    }
    s[len++] = '}';
    s[len] = '\0';
    return s;
}

static char *random_suffix(void)
{
    unsigned char r[3] = {0};
    FILE *f = fopen("/dev/urandom", "rb");
    if (f == NULL || fread(r, 1, sizeof(r), f) != sizeof(r))
        die("cannot read /dev/urandom");
    fclose(f);
    return xasprintf("%02x%02x%02x", r[0], r[1], r[2]);
}

static void *create_worker(void *arg)
{
    struct conn c = {.fd = -1};
    (void)arg;
    for (;;) {
        int i = atomic_fetch_add(&next_job, 1);
        if (i >= opt.count)
            break;
        struct job *j = &jobs[i];
        char *suffix = random_suffix();
        char *path = xasprintf("/containers/create?name=%s-%s", opt.name_prefix, suffix);
        free(suffix);
        struct resp r;
        j->create_ns = now_ns() - t0_ns;
        bool ok = http(&c, "POST", path, create_body, &r);
        free(path);
        if (!ok || r.status != 201) {
            fprintf(stderr, "engine_floor: create: %d %s\n", r.status, ok ? r.body : "no answer");
            j->failed = 1;
            resp_free(&r);
            continue;
        }
        const char *from = r.body;
        char *id = json_id(r.body, &from);
        resp_free(&r);
        if (id == NULL)
            die("create: no Id in the answer");
        j->start_ns = now_ns() - t0_ns;
        path = xasprintf("/containers/%s/start", id);
        ok = http(&c, "POST", path, NULL, &r);
        free(path);
        free(id);
        if (!ok || (r.status != 204 && r.status != 304)) {
            fprintf(stderr, "engine_floor: start: %d %s\n", r.status, ok ? r.body : "no answer");
            j->failed = 1;
        }
        j->done_ns = now_ns() - t0_ns;
        resp_free(&r);
    }
    conn_close(&c);
    free(c.buf);
    return NULL;
}

static void *remove_worker(void *arg)
{
    struct conn c = {.fd = -1};
    (void)arg;
    for (;;) {
        int i = atomic_fetch_add(&next_job, 1);
        if (i >= n_ids)
            break;
        char *path = xasprintf("/containers/%s?force=1&v=0", ids[i]);
        struct resp r;
        if (!http(&c, "DELETE", path, NULL, &r) ||
            (r.status != 204 && r.status != 404 && r.status != 409))
            fprintf(stderr, "engine_floor: remove %.12s: %d %s\n", ids[i], r.status,
                    r.body ? r.body : "no answer");
        resp_free(&r);
        free(path);
    }
    conn_close(&c);
    free(c.buf);
    return NULL;
}

static void run_workers(void *(*fn)(void *), int n)
{
    pthread_t th[MAX_WORKERS];
    atomic_store(&next_job, 0);
    for (int i = 0; i < n; i++)
        if (pthread_create(&th[i], NULL, fn, NULL) != 0)
            die("pthread_create failed");
    for (int i = 0; i < n; i++)
        pthread_join(th[i], NULL);
}

static char *url_escape(const char *s)
{
    char *out = malloc(strlen(s) * 3 + 1), *o = out;
    for (; *s; s++) {
        unsigned char ch = (unsigned char)*s;
        if ((ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
            strchr("-_.~", ch))
            *o++ = (char)ch;
        else
            o += sprintf(o, "%%%02X", ch);
    }
    *o = '\0';
    return out;
}

static int do_remove(void)
{
    struct conn c = {.fd = -1};
    struct resp r;
    for (int i = 0; i < opt.n_labels; i++) {
        char *f = xasprintf("{\"label\":[\"%s\"]}", opt.labels[i]);
        char *fe = url_escape(f);
        char *path = xasprintf("/containers/json?all=1&filters=%s", fe);
        free(f);
        free(fe);
        if (!http(&c, "GET", path, NULL, &r) || r.status != 200)
            die("list containers: %d", r.status);
        free(path);
        for (const char *from = r.body; from != NULL;) {
            char *id = json_id(r.body, &from);
            if (id == NULL)
                break;
            ids = realloc(ids, (size_t)(n_ids + 1) * sizeof(*ids));
            ids[n_ids++] = id;
        }
        resp_free(&r);
    }
    int workers = opt.workers < n_ids ? opt.workers : n_ids;
    if (workers > 0)
        run_workers(remove_worker, workers);
    if (opt.network != NULL) {
        char *path = xasprintf("/networks/%s", opt.network);
        if (http(&c, "DELETE", path, NULL, &r) && r.status != 204 && r.status != 404)
            fprintf(stderr, "engine_floor: remove network %s: %d %s\n", opt.network, r.status,
                    r.body);
        resp_free(&r);
        free(path);
    }
    printf("removed=%d\n", n_ids);
    conn_close(&c);
    free(c.buf);
    return 0;
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? -1 : x > y;
}

static double ms(int64_t ns)
{
    return (double)ns / 1e6;
}

__attribute__((noreturn)) static void usage(void)
{
    fputs("usage: engine_floor [--socket PATH] [--api 1.41] --count N --workers K\n"
          "         [--image IMG] [--network NET [--create-network]] [--alias NAME]\n"
          "         [--name-prefix P] [--port 8080] [--publish 127.0.0.1] [--stop-timeout S]\n"
          "         [--label KEY=VALUE]...\n"
          "       engine_floor --remove --label KEY=VALUE [--network NET] [--workers K]\n",
          stderr);
    exit(2);
}

int main(int argc, char **argv)
{
    static const struct option lo[] = {
        {"socket", required_argument, NULL, 's'},
        {"api", required_argument, NULL, 'a'},
        {"count", required_argument, NULL, 'n'},
        {"workers", required_argument, NULL, 'k'},
        {"image", required_argument, NULL, 'i'},
        {"network", required_argument, NULL, 'N'},
        {"alias", required_argument, NULL, 'A'},
        {"name-prefix", required_argument, NULL, 'p'},
        {"port", required_argument, NULL, 'P'},
        {"publish", required_argument, NULL, 'b'},
        {"label", required_argument, NULL, 'l'},
        {"stop-timeout", required_argument, NULL, 't'},
        {"create-network", no_argument, NULL, 'c'},
        {"remove", no_argument, NULL, 'r'},
        {NULL, 0, NULL, 0},
    };
    int ch;
    while ((ch = getopt_long(argc, argv, "", lo, NULL)) != -1) {
        switch (ch) {
        case 's':
            opt.socket_path = optarg;
            break;
        case 'a':
            opt.api = optarg;
            break;
        case 'n':
            opt.count = atoi(optarg);
            break;
        case 'k':
            opt.workers = atoi(optarg);
            break;
        case 'i':
            opt.image = optarg;
            break;
        case 'N':
            opt.network = optarg;
            break;
        case 'A':
            opt.alias = optarg;
            break;
        case 'p':
            opt.name_prefix = optarg;
            break;
        case 'P':
            opt.port = atoi(optarg);
            break;
        case 'b':
            opt.publish = optarg;
            break;
        case 't':
            opt.stop_timeout = atoi(optarg);
            break;
        case 'l':
            if (opt.n_labels == MAX_LABELS || strchr(optarg, '=') == NULL)
                usage();
            opt.labels[opt.n_labels++] = optarg;
            break;
        case 'c':
            opt.create_network = true;
            break;
        case 'r':
            opt.remove = true;
            break;
        default:
            usage();
        }
    }
    for (int i = 1; i < argc; i++)
        if (strpbrk(argv[i], "\"\\") != NULL)
            die("arguments must not hold quotes or backslashes");
    if (opt.workers < 1 || opt.workers > MAX_WORKERS)
        die("--workers must be 1..%d", MAX_WORKERS);
    if (opt.remove) {
        if (opt.n_labels == 0)
            usage();
        return do_remove();
    }
    if (opt.count < 1 || opt.count > MAX_COUNT)
        die("--count must be 1..%d", MAX_COUNT);

    char *labels = labels_json();
    char *net_mode = opt.network ? xasprintf(",\"NetworkMode\":\"%s\"", opt.network) : strdup("");
    char *net_cfg = opt.network ? xasprintf(",\"NetworkingConfig\":{\"EndpointsConfig\":{\"%s\":"
                                            "{\"Aliases\":[\"%s\"]}}}",
                                            opt.network, opt.alias)
                                : strdup("");
    create_body = xasprintf(
        "{\"HostConfig\":{\"PortBindings\":{\"%d/tcp\":[{\"HostIp\":\"%s\",\"HostPort\":\"\"}]},"
        "\"Mounts\":[],\"RestartPolicy\":{\"Name\":\"no\"}%s},\"Image\":\"%s\",\"Env\":[],"
        "\"Labels\":%s,\"ExposedPorts\":{\"%d/tcp\":{}}%s,\"StopTimeout\":%d}",
        opt.port, opt.publish, net_mode, opt.image, labels, opt.port, net_cfg, opt.stop_timeout);
    jobs = calloc((size_t)opt.count, sizeof(*jobs));

    t0_ns = now_ns();
    int64_t net_ns = 0;
    if (opt.network != NULL && opt.create_network) {
        struct conn c = {.fd = -1};
        struct resp r;
        char *body = xasprintf("{\"Name\":\"%s\",\"Driver\":\"bridge\",\"CheckDuplicate\":true,"
                               "\"Attachable\":false,\"Labels\":%s}",
                               opt.network, labels);
        if (!http(&c, "POST", "/networks/create", body, &r) || (r.status != 201 && r.status != 409))
            die("create network %s: %d %s", opt.network, r.status, r.body ? r.body : "");
        resp_free(&r);
        free(body);
        conn_close(&c);
        free(c.buf);
        net_ns = now_ns() - t0_ns;
    }
    int workers = opt.workers < opt.count ? opt.workers : opt.count;
    run_workers(create_worker, workers);
    int64_t total_ns = now_ns() - t0_ns;

    int failed = 0;
    int64_t *create_lat = calloc((size_t)opt.count, sizeof(int64_t));
    int64_t *start_lat = calloc((size_t)opt.count, sizeof(int64_t));
    int64_t first_done = INT64_MAX;
    int n = 0;
    for (int i = 0; i < opt.count; i++) {
        if (jobs[i].failed) {
            failed++;
            continue;
        }
        create_lat[n] = jobs[i].start_ns - jobs[i].create_ns;
        start_lat[n] = jobs[i].done_ns - jobs[i].start_ns;
        if (jobs[i].done_ns < first_done)
            first_done = jobs[i].done_ns;
        n++;
    }
    qsort(create_lat, (size_t)n, sizeof(int64_t), cmp_i64);
    qsort(start_lat, (size_t)n, sizeof(int64_t), cmp_i64);
    printf("count=%d workers=%d failed=%d network_ms=%.1f first_started_ms=%.1f total_ms=%.1f "
           "create_p50_ms=%.1f create_max_ms=%.1f start_p50_ms=%.1f start_max_ms=%.1f\n",
           opt.count, workers, failed, ms(net_ns), n ? ms(first_done) : 0.0, ms(total_ns),
           n ? ms(create_lat[n / 2]) : 0.0, n ? ms(create_lat[n - 1]) : 0.0,
           n ? ms(start_lat[n / 2]) : 0.0, n ? ms(start_lat[n - 1]) : 0.0);
    free(create_lat);
    free(start_lat);
    free(jobs);
    free(create_body);
    free(labels);
    free(net_mode);
    free(net_cfg);
    return failed ? 1 : 0;
}
