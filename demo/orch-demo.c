/*
 * orch-demo: the workload that orch's tests and demos deploy, a small HTTP/1.1 server that runs
 * as PID 1 of a FROM scratch image. It depends on libc only and shares no code with orch, so the
 * image is one static binary. Its health can be steered from outside (env and /admin routes) so
 * tests can make an instance slow to start, unhealthy, or exit on demand, and GET /burn makes it
 * spend CPU so the autoscaler has something to measure; it must never need a shell, a resolver
 * or any file in the image besides itself.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define DEMO_HEADER_MAX 8192        /* request line + headers; more gets 431 */
#define DEMO_BODY_MAX (1024 * 1024) /* request bodies are read and dropped up to this size */
#define DEMO_OUT_MAX 2048           /* one response, headers and body */
#define DEMO_GREETING_MAX 512       /* longer GREETING values are cut to keep responses bounded */
#define DEMO_DEFAULT_MAX_CONNS 4096
#define DEMO_DEFAULT_IDLE_MS 15000   /* keep-alive connection with no request in flight */
#define DEMO_HEADER_TIMEOUT_MS 10000 /* a request must arrive whole within this */
#define DEMO_WRITE_TIMEOUT_MS 10000  /* a client that does not read its response */
#define DEMO_LINGER_MS 2000          /* draining input after the last response, before close */
#define DEMO_PROBE_TIMEOUT_MS 2000
#define DEMO_BURN_DEFAULT_MS 50
#define DEMO_BURN_MAX_MS 1000
/* /burn spends its CPU in slices of this much between two polls, so /healthz and other
 * connections are still answered while requests burn. */
#define DEMO_BURN_SLICE_NS 2000000

enum conn_state {
    CONN_READING, /* waiting for (the rest of) a request */
    CONN_WRITING, /* a response is queued in out[] */
    CONN_LINGER,  /* write side shut: drain input so close() does not reset the response away */
    CONN_BURNING, /* a /burn request spending its CPU, a slice per loop turn; then writing */
};

struct conn {
    int fd;
    enum conn_state state;
    bool close_after; /* close once the queued response is written */
    int exit_code;    /* >= 0: exit the process once the queued response is written */
    size_t in_len;
    size_t discard; /* request body bytes still to be read and dropped */
    size_t out_len, out_off;
    int64_t deadline_ms;
    int64_t burn_left_ns; /* CONN_BURNING: CPU time still to spend */
    long burn_ms;         /* CONN_BURNING: what was asked, for the response */
    char in[DEMO_HEADER_MAX];
    char out[DEMO_OUT_MAX];
};

struct server {
    int listen_fd;
    /* pfds[0] is the listener; pfds[i + 1] belongs to conns[i]. Both arrays are kept dense by
     * moving the last connection into a closed one's slot. */
    struct pollfd *pfds;
    struct conn **conns;
    size_t nconns, max_conns;
    int64_t accept_resume_ms; /* accepting pauses briefly when the fd table is full */

    int64_t start_ms;
    int64_t healthy_after_ms; /* /healthz says 503 until start + this */
    bool unhealthy;           /* forced by DEMO_UNHEALTHY or /admin/unhealthy */
    int64_t idle_timeout_ms;
    bool log;
    const char *version;
    const char *greeting;
    char hostname[HOST_NAME_MAX + 1];
};

static volatile sig_atomic_t demo_stop_signal;

static void demo_on_signal(int sig)
{
    demo_stop_signal = sig;
}

static int64_t demo_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void demo_sleep_ms(int64_t ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000};
    while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
        ;
}

static bool demo_env_true(const char *name)
{
    const char *v = getenv(name);
    if (v == NULL || *v == '\0')
        return false;
    return strcmp(v, "0") != 0 && strcasecmp(v, "false") != 0 && strcasecmp(v, "no") != 0 &&
           strcasecmp(v, "off") != 0;
}

/* Parses a decimal integer in [min, max] that fills the whole string. */
static bool demo_parse_long(const char *s, long min, long max, long *out)
{
    char *end;
    long v;

    if (s == NULL || *s == '\0')
        return false;
    errno = 0;
    v = strtol(s, &end, 10);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return false;
    *out = v;
    return true;
}

/* A duration in milliseconds: a bare number is milliseconds; "ms", "s" and "m" suffixes are
 * accepted too, since the spec format writes durations that way. */
static bool demo_parse_duration_ms(const char *s, int64_t *out)
{
    char *end;
    long long v;
    int64_t mult;

    if (s == NULL || *s < '0' || *s > '9')
        return false;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno != 0 || v < 0)
        return false;
    if (*end == '\0' || strcmp(end, "ms") == 0)
        mult = 1;
    else if (strcmp(end, "s") == 0)
        mult = 1000;
    else if (strcmp(end, "m") == 0)
        mult = 60000;
    else
        return false;
    if (v > INT64_MAX / mult)
        return false;
    *out = (int64_t)v * mult;
    return true;
}

static int demo_env_port(void)
{
    const char *p = getenv("PORT");
    long port;

    if (p == NULL || *p == '\0')
        return 8080;
    if (!demo_parse_long(p, 1, 65535, &port)) {
        fprintf(stderr, "orch-demo: invalid PORT '%s' (want 1..65535)\n", p);
        exit(2);
    }
    return (int)port;
}

static const char *demo_version(void)
{
    const char *v = getenv("DEMO_VERSION");
    return v != NULL && *v != '\0' ? v : "dev";
}

static int64_t demo_env_duration(const char *name, int64_t dflt)
{
    const char *v = getenv(name);
    int64_t ms;

    if (v == NULL || *v == '\0')
        return dflt;
    if (!demo_parse_duration_ms(v, &ms)) {
        fprintf(stderr, "orch-demo: invalid %s '%s' (want milliseconds, or 500ms, 2s, 1m)\n", name,
                v);
        exit(2);
    }
    return ms;
}

static bool demo_is_healthy(const struct server *srv, int64_t now)
{
    return !srv->unhealthy && now - srv->start_ms >= srv->healthy_after_ms;
}

static const char *demo_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 400:
        return "Bad Request";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 408:
        return "Request Timeout";
    case 413:
        return "Content Too Large";
    case 431:
        return "Request Header Fields Too Large";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    default:
        return "Unknown";
    }
}

/* Queues one whole response in c->out; the body is left out for HEAD but still counted in
 * Content-Length, as HTTP wants. */
static void demo_respond(struct server *srv, struct conn *c, int status, bool head,
                         const char *extra_headers, const char *body)
{
    size_t blen = strlen(body);
    int n;

    n = snprintf(c->out, sizeof(c->out),
                 "HTTP/1.1 %d %s\r\n"
                 "Content-Type: text/plain; charset=utf-8\r\n"
                 "Content-Length: %zu\r\n"
                 "X-Orch-Demo-Version: %s\r\n"
                 "Connection: %s\r\n"
                 "%s"
                 "\r\n"
                 "%s",
                 status, demo_reason(status), blen, srv->version,
                 c->close_after ? "close" : "keep-alive", extra_headers ? extra_headers : "",
                 head ? "" : body);
    /* Every input to the response is bounded (version and greeting are cut at startup), so this
     * only guards against a future edit breaking that. */
    if (n < 0 || (size_t)n >= sizeof(c->out)) {
        c->close_after = true;
        n = snprintf(c->out, sizeof(c->out),
                     "HTTP/1.1 500 Internal Server Error\r\nContent-Length: 0\r\n"
                     "Connection: close\r\n\r\n");
    }
    c->out_len = (size_t)n;
    c->out_off = 0;
    c->state = CONN_WRITING;
}

/* Case-insensitive search for a token in a comma-separated header value. */
static bool demo_header_has_token(const char *value, size_t len, const char *token)
{
    size_t tlen = strlen(token);
    size_t i = 0;

    while (i < len) {
        while (i < len && (value[i] == ' ' || value[i] == '\t' || value[i] == ','))
            i++;
        size_t start = i;
        while (i < len && value[i] != ',')
            i++;
        size_t end = i;
        while (end > start && (value[end - 1] == ' ' || value[end - 1] == '\t'))
            end--;
        if (end - start == tlen && strncasecmp(value + start, token, tlen) == 0)
            return true;
    }
    return false;
}

struct demo_request {
    char method[16];
    char target[DEMO_HEADER_MAX];
    bool keep_alive;
    bool chunked;
    size_t content_length;
};

/* Parses the request head in buf[0..len) (which ends with an empty line). Returns 0, or the
 * HTTP status to answer with before closing. */
static int demo_parse_request(const char *buf, size_t len, struct demo_request *req)
{
    const char *p = buf, *end = buf + len;
    const char *eol = memchr(p, '\n', (size_t)(end - p));
    const char *sp1, *sp2, *line_end;
    bool saw_length = false;

    memset(req, 0, sizeof(*req));
    if (eol == NULL)
        return 400;
    line_end = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
    sp1 = memchr(p, ' ', (size_t)(line_end - p));
    if (sp1 == NULL || sp1 == p || (size_t)(sp1 - p) >= sizeof(req->method))
        return 400;
    sp2 = memchr(sp1 + 1, ' ', (size_t)(line_end - sp1 - 1));
    if (sp2 == NULL || sp2 == sp1 + 1)
        return 400;
    memcpy(req->method, p, (size_t)(sp1 - p));
    for (const char *t = sp1 + 1; t < sp2; t++) {
        /* Only visible ASCII in the target, so it can be logged and matched safely. */
        if ((unsigned char)*t <= 0x20 || (unsigned char)*t >= 0x7f)
            return 400;
    }
    memcpy(req->target, sp1 + 1, (size_t)(sp2 - sp1 - 1));
    if (line_end - (sp2 + 1) == 8 && memcmp(sp2 + 1, "HTTP/1.1", 8) == 0)
        req->keep_alive = true;
    else if (line_end - (sp2 + 1) == 8 && memcmp(sp2 + 1, "HTTP/1.0", 8) == 0)
        req->keep_alive = false;
    else
        return 400;

    for (p = eol + 1; p < end; p = eol + 1) {
        eol = memchr(p, '\n', (size_t)(end - p));
        if (eol == NULL)
            break;
        line_end = eol > p && eol[-1] == '\r' ? eol - 1 : eol;
        if (line_end == p)
            break; /* the empty line that ends the head */
        const char *colon = memchr(p, ':', (size_t)(line_end - p));
        if (colon == NULL || colon == p)
            return 400;
        size_t nlen = (size_t)(colon - p);
        const char *v = colon + 1;
        while (v < line_end && (*v == ' ' || *v == '\t'))
            v++;
        size_t vlen = (size_t)(line_end - v);

        if (nlen == 10 && strncasecmp(p, "Connection", 10) == 0) {
            if (demo_header_has_token(v, vlen, "close"))
                req->keep_alive = false;
            else if (demo_header_has_token(v, vlen, "keep-alive"))
                req->keep_alive = true;
        } else if (nlen == 14 && strncasecmp(p, "Content-Length", 14) == 0) {
            size_t n = 0;
            if (vlen == 0 || saw_length)
                return 400; /* duplicate lengths are a request-smuggling shape: refuse */
            for (size_t i = 0; i < vlen; i++) {
                if (v[i] < '0' || v[i] > '9')
                    return 400;
                if (n > DEMO_BODY_MAX)
                    return 413;
                n = n * 10 + (size_t)(v[i] - '0');
            }
            if (n > DEMO_BODY_MAX)
                return 413;
            req->content_length = n;
            saw_length = true;
        } else if (nlen == 17 && strncasecmp(p, "Transfer-Encoding", 17) == 0) {
            req->chunked = true;
        }
    }
    if (req->chunked)
        return 501; /* no route takes a body; chunked bodies are not worth decoding */
    return 0;
}

/* Finds the end of the request head: the index just past the empty line, or 0. Bare LF line
 * ends are accepted so a human with nc can talk to it. */
static size_t demo_head_end(const char *buf, size_t len)
{
    for (size_t i = 0; i + 1 < len; i++) {
        if (buf[i] != '\n')
            continue;
        if (buf[i + 1] == '\n')
            return i + 2;
        if (i + 2 < len && buf[i + 1] == '\r' && buf[i + 2] == '\n')
            return i + 3;
    }
    return 0;
}

static bool demo_query_param(const char *query, const char *name, char *out, size_t outsz)
{
    size_t nlen = strlen(name);
    const char *p = query;

    while (p != NULL && *p != '\0') {
        const char *amp = strchr(p, '&');
        size_t plen = amp ? (size_t)(amp - p) : strlen(p);
        if (plen > nlen && strncmp(p, name, nlen) == 0 && p[nlen] == '=') {
            size_t vlen = plen - nlen - 1;
            if (vlen >= outsz)
                return false;
            memcpy(out, p + nlen + 1, vlen);
            out[vlen] = '\0';
            return true;
        }
        p = amp ? amp + 1 : NULL;
    }
    out[0] = '\0';
    return false;
}

static void demo_route(struct server *srv, struct conn *c, const struct demo_request *req,
                       int64_t now)
{
    char path[DEMO_HEADER_MAX];
    char body[DEMO_OUT_MAX / 2];
    const char *query = "";
    bool get = strcmp(req->method, "GET") == 0;
    bool head = strcmp(req->method, "HEAD") == 0;
    bool post = strcmp(req->method, "POST") == 0;
    bool admin_method = get || post;
    int status;

    snprintf(path, sizeof(path), "%s", req->target);
    char *q = strchr(path, '?');
    if (q != NULL) {
        *q = '\0';
        query = q + 1;
    }

    if (strcmp(path, "/") == 0) {
        if (!(get || head))
            goto not_allowed_get;
        if (srv->greeting != NULL)
            snprintf(body, sizeof(body), "orch-demo %s %s %s\n", srv->version, srv->hostname,
                     srv->greeting);
        else
            snprintf(body, sizeof(body), "orch-demo %s %s\n", srv->version, srv->hostname);
        status = 200;
        demo_respond(srv, c, status, head, NULL, body);
    } else if (strcmp(path, "/healthz") == 0) {
        if (!(get || head))
            goto not_allowed_get;
        status = demo_is_healthy(srv, now) ? 200 : 503;
        demo_respond(srv, c, status, head, NULL, status == 200 ? "ok" : "unhealthy");
    } else if (strcmp(path, "/admin/unhealthy") == 0 || strcmp(path, "/admin/healthy") == 0) {
        if (!admin_method)
            goto not_allowed_admin;
        srv->unhealthy = strcmp(path, "/admin/unhealthy") == 0;
        /* "healthy again" means now, even inside a DEMO_HEALTHY_AFTER delay. */
        if (!srv->unhealthy)
            srv->healthy_after_ms = 0;
        status = 200;
        demo_respond(srv, c, status, false, NULL,
                     srv->unhealthy ? "now unhealthy\n" : "now healthy\n");
    } else if (strcmp(path, "/burn") == 0) {
        /* Answered once the CPU is spent (demo_conn_burn): nothing is queued here. */
        char arg[16];
        long ms = DEMO_BURN_DEFAULT_MS;
        if (!(get || post))
            goto not_allowed_admin;
        if (demo_query_param(query, "ms", arg, sizeof(arg)) &&
            !demo_parse_long(arg, 0, DEMO_BURN_MAX_MS, &ms)) {
            status = 400;
            demo_respond(srv, c, status, false, NULL, "ms must be 0..1000\n");
        } else {
            status = 200;
            c->state = CONN_BURNING;
            c->burn_ms = ms;
            c->burn_left_ns = (int64_t)ms * 1000000;
            c->deadline_ms = INT64_MAX;
        }
    } else if (strcmp(path, "/admin/exit") == 0) {
        char arg[16];
        long code = 0;
        if (!admin_method)
            goto not_allowed_admin;
        if (demo_query_param(query, "code", arg, sizeof(arg)) &&
            !demo_parse_long(arg, 0, 255, &code)) {
            status = 400;
            demo_respond(srv, c, status, false, NULL, "code must be 0..255\n");
        } else {
            status = 200;
            snprintf(body, sizeof(body), "exiting with code %ld\n", code);
            c->close_after = true;
            c->exit_code = (int)code;
            demo_respond(srv, c, status, false, NULL, body);
        }
    } else {
        status = 404;
        demo_respond(srv, c, status, head, NULL, "not found\n");
    }
    goto log;

not_allowed_get:
    status = 405;
    demo_respond(srv, c, status, false, "Allow: GET, HEAD\r\n", "method not allowed\n");
    goto log;
not_allowed_admin:
    status = 405;
    demo_respond(srv, c, status, false, "Allow: GET, POST\r\n", "method not allowed\n");
log:
    if (srv->log)
        printf("%s %s %d\n", req->method, req->target, status);
}

static void demo_conn_close(struct server *srv, size_t i)
{
    struct conn *c = srv->conns[i];

    close(c->fd);
    free(c);
    srv->nconns--;
    if (i != srv->nconns) {
        srv->conns[i] = srv->conns[srv->nconns];
        srv->pfds[i + 1] = srv->pfds[srv->nconns + 1];
    }
}

static void demo_conn_linger(struct conn *c, int64_t now)
{
    shutdown(c->fd, SHUT_WR);
    c->state = CONN_LINGER;
    c->in_len = 0;
    c->deadline_ms = now + DEMO_LINGER_MS;
}

static void demo_drop_input(struct conn *c, size_t n)
{
    memmove(c->in, c->in + n, c->in_len - n);
    c->in_len -= n;
}

/* Writes what it can of the queued response. Returns false when the connection must go. */
static bool demo_conn_flush(struct server *srv, struct conn *c, int64_t now)
{
    while (c->out_off < c->out_len) {
        ssize_t n = send(c->fd, c->out + c->out_off, c->out_len - c->out_off, MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return true;
            return false;
        }
        c->out_off += (size_t)n;
        c->deadline_ms = now + DEMO_WRITE_TIMEOUT_MS;
    }
    if (c->exit_code >= 0) {
        /* The response is in the kernel's hands; the FIN goes with exit. */
        shutdown(c->fd, SHUT_WR);
        if (srv->log)
            printf("exiting with code %d\n", c->exit_code);
        fflush(stdout);
        exit(c->exit_code);
    }
    if (c->close_after) {
        demo_conn_linger(c, now);
        return true;
    }
    c->state = CONN_READING;
    c->deadline_ms = now + srv->idle_timeout_ms;
    return true;
}

/* Parses and answers every complete request buffered in c->in, one at a time (so pipelined
 * requests are answered in order). Returns false when the connection must go. */
static bool demo_conn_advance(struct server *srv, struct conn *c, int64_t now)
{
    while (c->state == CONN_READING) {
        struct demo_request req;
        size_t head_len;
        int status;

        if (c->discard > 0) {
            size_t n = c->discard < c->in_len ? c->discard : c->in_len;
            demo_drop_input(c, n);
            c->discard -= n;
            if (c->discard > 0)
                return true;
        }
        if (c->in_len == 0)
            return true;
        head_len = demo_head_end(c->in, c->in_len);
        if (head_len == 0) {
            if (c->in_len < sizeof(c->in))
                return true;
            c->close_after = true;
            demo_respond(srv, c, 431, false, NULL, "request header too large\n");
            if (srv->log)
                printf("- - 431\n");
            return demo_conn_flush(srv, c, now);
        }
        status = demo_parse_request(c->in, head_len, &req);
        if (status != 0) {
            c->close_after = true;
            demo_respond(srv, c, status, false, NULL, "bad request\n");
            if (srv->log)
                printf("%s %s %d\n", req.method[0] ? req.method : "-",
                       req.target[0] ? req.target : "-", status);
            return demo_conn_flush(srv, c, now);
        }
        demo_drop_input(c, head_len);
        c->discard = req.content_length;
        c->close_after = !req.keep_alive;
        demo_route(srv, c, &req, now);
        if (c->state == CONN_BURNING)
            return true; /* later requests wait in c->in until it has answered */
        if (!demo_conn_flush(srv, c, now))
            return false;
    }
    return true;
}

static int64_t demo_thread_cpu_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

/* Spends one slice of a /burn request's CPU time (CPU time, not wall time: under a CPU limit the
 * same work takes longer); answers it when all is spent. Returns false when the connection must
 * go. */
static bool demo_conn_burn(struct server *srv, struct conn *c, int64_t now)
{
    int64_t slice = c->burn_left_ns < DEMO_BURN_SLICE_NS ? c->burn_left_ns : DEMO_BURN_SLICE_NS;
    int64_t start = demo_thread_cpu_ns(), spent = 0;
    volatile uint64_t x = (uint64_t)c->burn_left_ns;
    char body[64];

    while (spent < slice) {
        for (int i = 0; i < 1000; i++)
            x = x * 6364136223846793005ULL + 1442695040888963407ULL;
        spent = demo_thread_cpu_ns() - start;
    }
    c->burn_left_ns -= spent;
    if (c->burn_left_ns > 0)
        return true;
    snprintf(body, sizeof(body), "burned %ld ms of CPU\n", c->burn_ms);
    demo_respond(srv, c, 200, false, NULL, body);
    c->deadline_ms = now + DEMO_WRITE_TIMEOUT_MS;
    return demo_conn_flush(srv, c, now) && demo_conn_advance(srv, c, now);
}

/* Reads what the socket has. Returns false when the connection must go. */
static bool demo_conn_read(struct server *srv, struct conn *c, int64_t now)
{
    for (;;) {
        char scratch[4096];
        char *dst = c->state == CONN_LINGER ? scratch : c->in + c->in_len;
        size_t room = c->state == CONN_LINGER ? sizeof(scratch) : sizeof(c->in) - c->in_len;
        ssize_t n;

        if (room == 0)
            return demo_conn_advance(srv, c, now);
        n = recv(c->fd, dst, room, 0);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                break;
            return false;
        }
        if (n == 0)
            return false; /* the peer closed; a half-sent request is dropped with it */
        if (c->state == CONN_LINGER)
            continue;
        if (c->in_len == 0 && c->discard == 0)
            c->deadline_ms = now + DEMO_HEADER_TIMEOUT_MS; /* a new request has begun */
        c->in_len += (size_t)n;
        /* Answer as soon as a whole request is in; reading on is what pipelining needs. */
        if (!demo_conn_advance(srv, c, now))
            return false;
        if (c->state != CONN_READING && c->state != CONN_LINGER)
            return true;
    }
    return c->state == CONN_LINGER ? true : demo_conn_advance(srv, c, now);
}

static void demo_accept(struct server *srv, int64_t now)
{
    while (srv->nconns < srv->max_conns) {
        int fd = accept4(srv->listen_fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                srv->accept_resume_ms = now + 100; /* let some connections close first */
            return;
        }
        struct conn *c = calloc(1, sizeof(*c));
        if (c == NULL) {
            close(fd);
            srv->accept_resume_ms = now + 100;
            return;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c->fd = fd;
        c->state = CONN_READING;
        c->exit_code = -1;
        c->deadline_ms = now + srv->idle_timeout_ms;
        srv->conns[srv->nconns] = c;
        srv->pfds[srv->nconns + 1] = (struct pollfd){.fd = fd, .events = POLLIN};
        srv->nconns++;
    }
}

static int demo_listen(int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);

    if (fd < 0) {
        perror("orch-demo: socket");
        exit(1);
    }
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0) {
        fprintf(stderr, "orch-demo: bind 0.0.0.0:%d: %s\n", port, strerror(errno));
        exit(1);
    }
    if (listen(fd, SOMAXCONN) < 0) {
        perror("orch-demo: listen");
        exit(1);
    }
    return fd;
}

static int demo_serve(void)
{
    struct server state = {0}, *srv = &state;
    struct sigaction sa = {0};
    sigset_t block, waitmask;
    long max_conns = DEMO_DEFAULT_MAX_CONNS;
    int port = demo_env_port();
    const char *mc = getenv("DEMO_MAX_CONNS");

    if (mc != NULL && *mc != '\0' && !demo_parse_long(mc, 1, 1000000, &max_conns)) {
        fprintf(stderr, "orch-demo: invalid DEMO_MAX_CONNS '%s'\n", mc);
        return 2;
    }
    srv->max_conns = (size_t)max_conns;
    srv->version = demo_version();
    if (strlen(srv->version) > 64) {
        fprintf(stderr, "orch-demo: DEMO_VERSION longer than 64 bytes\n");
        return 2;
    }
    srv->greeting = getenv("GREETING");
    if (srv->greeting != NULL && *srv->greeting == '\0')
        srv->greeting = NULL;
    if (srv->greeting != NULL && strlen(srv->greeting) > DEMO_GREETING_MAX) {
        static char cut[DEMO_GREETING_MAX + 1];
        memcpy(cut, srv->greeting, DEMO_GREETING_MAX);
        srv->greeting = cut;
    }
    if (gethostname(srv->hostname, sizeof(srv->hostname)) < 0)
        snprintf(srv->hostname, sizeof(srv->hostname), "unknown");
    srv->hostname[sizeof(srv->hostname) - 1] = '\0';
    srv->unhealthy = demo_env_true("DEMO_UNHEALTHY");
    srv->healthy_after_ms = demo_env_duration("DEMO_HEALTHY_AFTER", 0);
    srv->idle_timeout_ms = demo_env_duration("DEMO_IDLE_TIMEOUT", DEMO_DEFAULT_IDLE_MS);
    srv->log = demo_env_true("DEMO_LOG");
    if (srv->log)
        setvbuf(stdout, NULL, _IOLBF, 0); /* docker logs should see each line as it happens */

    /* As PID 1 in a container, SIGTERM and SIGINT have no default action: without handlers
     * docker stop would wait out its grace period and SIGKILL us. The signals stay blocked
     * except inside ppoll, so one arriving between two checks of the flag is never lost. */
    sa.sa_handler = demo_on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &waitmask);
    sigdelset(&waitmask, SIGTERM);
    sigdelset(&waitmask, SIGINT);

    srv->listen_fd = demo_listen(port);
    srv->pfds = calloc(srv->max_conns + 1, sizeof(*srv->pfds));
    srv->conns = calloc(srv->max_conns, sizeof(*srv->conns));
    if (srv->pfds == NULL || srv->conns == NULL) {
        fprintf(stderr, "orch-demo: out of memory\n");
        return 1;
    }
    srv->start_ms = demo_now_ms();
    if (srv->log)
        printf("orch-demo %s listening on 0.0.0.0:%d\n", srv->version, port);

    while (!demo_stop_signal) {
        int64_t now = demo_now_ms();
        int64_t next = now + 1000;
        bool accepting = srv->nconns < srv->max_conns && now >= srv->accept_resume_ms;
        bool burning = false;
        struct timespec ts;
        int rc;

        srv->pfds[0] = (struct pollfd){.fd = srv->listen_fd, .events = accepting ? POLLIN : 0};
        if (!accepting && srv->accept_resume_ms > now && srv->accept_resume_ms < next)
            next = srv->accept_resume_ms;
        for (size_t i = 0; i < srv->nconns; i++) {
            struct conn *c = srv->conns[i];
            srv->pfds[i + 1].events = c->state == CONN_WRITING   ? POLLOUT
                                      : c->state == CONN_BURNING ? 0
                                                                 : POLLIN;
            srv->pfds[i + 1].revents = 0;
            burning = burning || c->state == CONN_BURNING;
            if (c->deadline_ms < next)
                next = c->deadline_ms;
        }
        if (next < now || burning)
            next = now; /* a burning request only looks at the sockets between its slices */
        ts.tv_sec = (next - now) / 1000;
        ts.tv_nsec = ((next - now) % 1000) * 1000000;
        rc = ppoll(srv->pfds, srv->nconns + 1, &ts, &waitmask);
        if (rc < 0 && errno != EINTR) {
            perror("orch-demo: ppoll");
            return 1;
        }
        if (demo_stop_signal)
            break;
        now = demo_now_ms();

        /* Downwards, so the connection moved into a closed slot has already had its turn. */
        for (size_t i = srv->nconns; i-- > 0;) {
            struct conn *c = srv->conns[i];
            short rev = rc > 0 ? srv->pfds[i + 1].revents : 0;
            bool keep = true;

            if (rev & POLLNVAL)
                keep = false;
            else if (c->state == CONN_BURNING)
                keep = demo_conn_burn(srv, c, now);
            else if (c->state == CONN_WRITING && (rev & (POLLOUT | POLLERR | POLLHUP)))
                keep = demo_conn_flush(srv, c, now) && demo_conn_advance(srv, c, now);
            else if (c->state != CONN_WRITING && (rev & (POLLIN | POLLERR | POLLHUP)))
                keep = demo_conn_read(srv, c, now);
            if (keep && now >= c->deadline_ms) {
                /* A slow request gets a 408 when nothing of it has been answered yet;
                 * an idle keep-alive connection or a stuck writer just goes. */
                if (c->state == CONN_READING && (c->in_len > 0 || c->discard > 0)) {
                    c->close_after = true;
                    c->discard = 0;
                    demo_respond(srv, c, 408, false, NULL, "request timeout\n");
                    keep = demo_conn_flush(srv, c, now);
                    if (keep && c->deadline_ms <= now)
                        keep = false;
                } else {
                    keep = false;
                }
            }
            if (!keep && c->exit_code >= 0) {
                /* /admin/exit was asked for: the client going away must not cancel it. */
                fflush(stdout);
                exit(c->exit_code);
            }
            if (!keep)
                demo_conn_close(srv, i);
        }
        if (rc > 0 && (srv->pfds[0].revents & POLLIN))
            demo_accept(srv, now);
    }

    /* Stop promptly: close the listener first so no new connection is accepted, then leave;
     * the kernel closes whatever connections are still open. */
    close(srv->listen_fd);
    while (srv->nconns > 0)
        demo_conn_close(srv, srv->nconns - 1);
    free(srv->conns);
    free(srv->pfds);
    if (srv->log)
        printf("orch-demo: signal %d, exiting\n", (int)demo_stop_signal);
    fflush(stdout);
    return 0;
}

static int demo_wait_fd(int fd, short events, int64_t deadline)
{
    for (;;) {
        int64_t left = deadline - demo_now_ms();
        struct pollfd pfd = {.fd = fd, .events = events};
        int rc;

        if (left <= 0)
            return -ETIMEDOUT;
        rc = poll(&pfd, 1, (int)left);
        if (rc < 0 && errno == EINTR)
            continue;
        if (rc < 0)
            return -errno;
        if (rc > 0)
            return 0;
    }
}

/* `probe [PORT] [PATH]`: one GET to 127.0.0.1, for exec health checks in an image with no
 * shell and no curl. Exit 0 on 2xx/3xx, 1 on anything else, 2 on bad arguments. */
static int demo_probe(int argc, char **argv)
{
    long port = demo_env_port();
    const char *path = argc > 1 ? argv[1] : "/healthz";
    int64_t deadline;
    struct sockaddr_in addr = {.sin_family = AF_INET};
    char req[1024], resp[512];
    size_t have = 0, sent = 0, reqlen;
    int fd, rc, n;

    if (argc > 0 && !demo_parse_long(argv[0], 1, 65535, &port)) {
        fprintf(stderr, "orch-demo probe: invalid port '%s'\n", argv[0]);
        return 2;
    }
    if (path[0] != '/') {
        fprintf(stderr, "orch-demo probe: path must start with '/'\n");
        return 2;
    }
    n = snprintf(req, sizeof(req),
                 "GET %s HTTP/1.1\r\nHost: 127.0.0.1:%ld\r\nUser-Agent: orch-demo-probe\r\n"
                 "Connection: close\r\n\r\n",
                 path, port);
    if (n < 0 || (size_t)n >= sizeof(req)) {
        fprintf(stderr, "orch-demo probe: path too long\n");
        return 2;
    }
    reqlen = (size_t)n;
    deadline = demo_now_ms() + demo_env_duration("DEMO_PROBE_TIMEOUT", DEMO_PROBE_TIMEOUT_MS);

    signal(SIGPIPE, SIG_IGN);
    fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("orch-demo probe: socket");
        return 1;
    }
    addr.sin_port = htons((uint16_t)port);
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&addr, sizeof(addr)) < 0 && errno != EINPROGRESS) {
        fprintf(stderr, "orch-demo probe: connect 127.0.0.1:%ld: %s\n", port, strerror(errno));
        return 1;
    }
    rc = demo_wait_fd(fd, POLLOUT, deadline);
    if (rc == 0) {
        int soerr = 0;
        socklen_t len = sizeof(soerr);
        getsockopt(fd, SOL_SOCKET, SO_ERROR, &soerr, &len);
        rc = -soerr;
    }
    if (rc < 0) {
        fprintf(stderr, "orch-demo probe: connect 127.0.0.1:%ld: %s\n", port, strerror(-rc));
        return 1;
    }
    while (sent < reqlen) {
        ssize_t w = send(fd, req + sent, reqlen - sent, MSG_NOSIGNAL);
        if (w < 0 && (errno == EAGAIN || errno == EINTR)) {
            if ((rc = demo_wait_fd(fd, POLLOUT, deadline)) < 0)
                goto io_fail;
            continue;
        }
        if (w < 0) {
            rc = -errno;
            goto io_fail;
        }
        sent += (size_t)w;
    }
    /* The status line is all that matters: read until its end, EOF or the deadline. */
    while (have < sizeof(resp) - 1 && memchr(resp, '\n', have) == NULL) {
        ssize_t r = recv(fd, resp + have, sizeof(resp) - 1 - have, 0);
        if (r < 0 && (errno == EAGAIN || errno == EINTR)) {
            if ((rc = demo_wait_fd(fd, POLLIN, deadline)) < 0)
                goto io_fail;
            continue;
        }
        if (r < 0) {
            rc = -errno;
            goto io_fail;
        }
        if (r == 0)
            break;
        have += (size_t)r;
    }
    close(fd);
    resp[have] = '\0';
    int status = 0;
    if (strncmp(resp, "HTTP/1.", 7) != 0 || sscanf(resp + 7, "%*1[01] %3d", &status) != 1) {
        fprintf(stderr, "orch-demo probe: GET %s on port %ld: no HTTP status line\n", path, port);
        return 1;
    }
    if (status >= 200 && status < 400)
        return 0;
    fprintf(stderr, "orch-demo probe: GET %s on port %ld: HTTP %d\n", path, port, status);
    return 1;

io_fail:
    close(fd);
    fprintf(stderr, "orch-demo probe: GET %s on port %ld: %s\n", path, port, strerror(-rc));
    return 1;
}

static void demo_usage(FILE *f)
{
    fprintf(f, "usage: orch-demo [serve | probe [PORT] [PATH] | crash [CODE] | version]\n"
               "  serve   HTTP on 0.0.0.0:$PORT (8080): / /healthz /burn?ms=N\n"
               "          /admin/{unhealthy,healthy,exit}\n"
               "  probe   GET http://127.0.0.1:PORT/PATH (/healthz); exit 0 on 2xx/3xx, else 1\n"
               "  crash   exit with CODE (1) after 100 ms\n"
               "env: PORT DEMO_VERSION GREETING DEMO_UNHEALTHY DEMO_HEALTHY_AFTER DEMO_LOG\n"
               "     DEMO_IDLE_TIMEOUT DEMO_MAX_CONNS DEMO_PROBE_TIMEOUT\n");
}

int main(int argc, char **argv)
{
    const char *cmd;

    /* A spec that sets `command: ["/orch-demo", "serve"]` while the image keeps its
     * ENTRYPOINT runs us as `/orch-demo /orch-demo serve`: skip our own path. */
    if (argc > 1) {
        const char *base = strrchr(argv[1], '/');
        base = base ? base + 1 : argv[1];
        if (strcmp(base, "orch-demo") == 0) {
            argv++;
            argc--;
        }
    }
    cmd = argc > 1 ? argv[1] : "serve";

    if (strcmp(cmd, "serve") == 0) {
        if (argc > 2) {
            demo_usage(stderr);
            return 2;
        }
        return demo_serve();
    }
    if (strcmp(cmd, "probe") == 0) {
        if (argc > 4) {
            demo_usage(stderr);
            return 2;
        }
        return demo_probe(argc - 2, argv + 2);
    }
    if (strcmp(cmd, "crash") == 0) {
        long code = 1;
        if (argc > 3 || (argc == 3 && !demo_parse_long(argv[2], 0, 255, &code))) {
            fprintf(stderr, "orch-demo crash: CODE must be 0..255\n");
            return 2;
        }
        fprintf(stderr, "orch-demo: crashing with code %ld\n", code);
        demo_sleep_ms(100);
        return (int)code;
    }
    if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("orch-demo %s\n", demo_version());
        return 0;
    }
    if (strcmp(cmd, "help") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "-h") == 0) {
        demo_usage(stdout);
        return 0;
    }
    fprintf(stderr, "orch-demo: unknown command '%s'\n", cmd);
    demo_usage(stderr);
    return 2;
}
