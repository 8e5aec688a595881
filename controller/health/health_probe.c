/* Probe runners on a caller-owned libuv loop: a repeating timer per watched instance starts one
 * probe at a time (TCP connect, a minimal HTTP/1.1 GET, or an exec through the engine), enforces
 * its timeout and feeds the result to health_observe. Owns its uv handles and probe memory; it
 * decides nothing itself (health_verdict.c does) and never changes a container. */
#include "health/health_probe.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

#define HEALTH_HTTP_MAX 4096 /* the status line must arrive within this many bytes */
#define HEALTH_MSG_MAX 256
/* How long an accepted tcp probe connection must stay open to count. Through docker-proxy (the
 * userland proxy behind a published port) a connection is always accepted, then closed within
 * a millisecond when nothing listens in the container: a bare connect would call every running
 * container healthy. */
#define HEALTH_TCP_SETTLE_MS 100

struct probe;

struct watch {
    struct watch *prev, *next;
    struct health_prober *p;
    char *id;
    struct spec_health cfg;    /* kind, timings and http_path (owned); no argv or port name */
    struct orch_strv exec_cmd; /* the exec argv */
    char *host;                /* as given, for equality */
    int port;
    int64_t started_ms;
    struct sockaddr_storage addr; /* where http/tcp probes connect */
    char host_header[80];         /* "127.0.0.1:8080", "[::1]:8080" */
    struct health_state st;
    char last_error[HEALTH_MSG_MAX];
    uv_timer_t timer;    /* the interval; its close callback frees the watch */
    struct probe *probe; /* in flight, or an exec waiting on a late engine answer; or NULL */
};

struct health_prober {
    uv_loop_t *loop;
    struct docker_client *docker;
    struct health_prober_options opts;
    struct watch *head;
    size_t count;
};

/* One probe attempt. It outlives its watch when abandoned: the memory goes only once every
 * handle's close callback and every engine callback has run (pending_closes, docker_pending). */
struct probe {
    struct watch *w; /* the watch whose ->probe this is; NULL once detached */
    enum spec_probe_kind kind;
    bool finished; /* result reported or abandoned: start nothing more */
    int pending_closes;
    uv_timer_t timeout;
    int64_t timeout_ms;
    uv_timer_t aux; /* exec: the delay between inspects; tcp: the settle window */
    bool aux_inited;
    /* http, tcp */
    uv_tcp_t tcp;
    bool tcp_inited;
    uv_connect_t connect_req;
    uv_write_t write_req;
    char *request;
    char resp[HEALTH_HTTP_MAX];
    size_t resp_len;
    char target[80]; /* host:port for messages */
    /* exec */
    struct docker_client *docker;
    char *exec_id;
    struct docker_exec_info info;
    int64_t poll_ms;
    bool docker_pending;
};

static void watch_record(struct watch *w, bool success, const char *msg);

/* ---- probe lifetime ------------------------------------------------------------------------ */

static void probe_maybe_free(struct probe *pr)
{
    if (pr->pending_closes > 0 || pr->docker_pending)
        return;
    free(pr->request);
    free(pr->exec_id);
    docker_exec_info_free(&pr->info);
    free(pr);
}

static void probe_handle_closed(uv_handle_t *h)
{
    struct probe *pr = h->data;
    pr->pending_closes--;
    probe_maybe_free(pr);
}

static void probe_close_handle(struct probe *pr, uv_handle_t *h)
{
    if (!uv_is_closing(h))
        uv_close(h, probe_handle_closed);
}

/* Stops everything the probe has running. Engine requests cannot be cancelled: their callbacks
 * still come, see the finished flag and only release the memory. */
static void probe_stop(struct probe *pr)
{
    pr->finished = true;
    probe_close_handle(pr, (uv_handle_t *)&pr->timeout);
    if (pr->tcp_inited)
        probe_close_handle(pr, (uv_handle_t *)&pr->tcp);
    if (pr->aux_inited)
        probe_close_handle(pr, (uv_handle_t *)&pr->aux);
}

static void probe_detach(struct probe *pr)
{
    if (pr->w != NULL) {
        pr->w->probe = NULL;
        pr->w = NULL;
    }
}

/* Delivers the one result of a probe. An exec whose engine request is still out stays attached
 * to its watch, so the watch sends no new exec until the engine has answered. */
static void probe_finish(struct probe *pr, bool success, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void probe_finish(struct probe *pr, bool success, const char *fmt, ...)
{
    char msg[HEALTH_MSG_MAX];
    va_list ap;

    if (pr->finished)
        return;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    struct watch *w = pr->w;
    probe_stop(pr);
    if (!pr->docker_pending)
        probe_detach(pr);
    /* Last: the change callback may unwatch, which frees nothing before the loop runs on. */
    if (w != NULL)
        watch_record(w, success, msg);
    probe_maybe_free(pr);
}

/* The watch goes away or restarts: the probe's result no longer matters. */
static void probe_abandon(struct probe *pr)
{
    probe_detach(pr);
    probe_stop(pr);
    probe_maybe_free(pr);
}

static void probe_timeout_cb(uv_timer_t *t)
{
    struct probe *pr = t->data;
    probe_finish(pr, false, "timed out after %lldms", (long long)pr->timeout_ms);
}

/* ---- tcp and http ---------------------------------------------------------------------------- */

static void http_alloc_cb(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct probe *pr = h->data;
    buf->base = pr->resp + pr->resp_len;
    buf->len = sizeof(pr->resp) - pr->resp_len;
}

static void http_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct probe *pr = s->data;
    int status = 0;

    if (pr->finished)
        return;
    if (nread == UV_EOF) {
        probe_finish(pr, false, "GET %s: connection closed before a status line", pr->target);
        return;
    }
    if (nread < 0) {
        probe_finish(pr, false, "GET %s: read: %s", pr->target, uv_strerror((int)nread));
        return;
    }
    pr->resp_len += (size_t)nread;
    int r = health_http_parse_status(pr->resp, pr->resp_len, &status);
    if (r < 0)
        probe_finish(pr, false, "GET %s: not an HTTP/1.x status line", pr->target);
    else if (r > 0 && health_http_status_healthy(status))
        probe_finish(pr, true, "HTTP %d", status);
    else if (r > 0)
        probe_finish(pr, false, "HTTP %d", status);
    else if (pr->resp_len == sizeof(pr->resp))
        probe_finish(pr, false, "GET %s: status line longer than %d bytes", pr->target,
                     HEALTH_HTTP_MAX);
}

/* tcp: the peer sent something (a server-first protocol) or hung up within the window. */
static void tcp_read_cb(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf)
{
    struct probe *pr = s->data;

    if (pr->finished || nread == 0)
        return;
    if (nread > 0)
        probe_finish(pr, true, "connected");
    else if (nread == UV_EOF)
        probe_finish(pr, false,
                     "%s closed the connection at once (nothing listening behind the port?)",
                     pr->target);
    else
        probe_finish(pr, false, "%s: %s", pr->target, uv_strerror((int)nread));
}

static void tcp_settled_cb(uv_timer_t *t)
{
    probe_finish(t->data, true, "connected");
}

static void http_write_cb(uv_write_t *req, int status)
{
    struct probe *pr = req->data;
    if (status < 0 && !pr->finished)
        probe_finish(pr, false, "GET %s: write: %s", pr->target, uv_strerror(status));
}

static void tcp_connect_cb(uv_connect_t *req, int status)
{
    struct probe *pr = req->data;
    int r;

    if (pr->finished) /* UV_ECANCELED after a timeout or an unwatch */
        return;
    if (status < 0) {
        probe_finish(pr, false, "connect %s: %s", pr->target, uv_strerror(status));
        return;
    }
    if (pr->kind == SPEC_PROBE_TCP) {
        /* Half the timeout at most, so a short timeout still leaves room for the window. */
        int64_t settle =
            pr->timeout_ms / 2 < HEALTH_TCP_SETTLE_MS ? pr->timeout_ms / 2 : HEALTH_TCP_SETTLE_MS;
        if ((r = uv_read_start((uv_stream_t *)&pr->tcp, http_alloc_cb, tcp_read_cb)) < 0) {
            probe_finish(pr, false, "connect %s: %s", pr->target, uv_strerror(r));
            return;
        }
        uv_timer_start(&pr->aux, tcp_settled_cb, (uint64_t)settle, 0);
        return;
    }
    uv_buf_t buf = uv_buf_init(pr->request, (unsigned)strlen(pr->request));
    pr->write_req.data = pr;
    if ((r = uv_write(&pr->write_req, (uv_stream_t *)&pr->tcp, &buf, 1, http_write_cb)) < 0 ||
        (r = uv_read_start((uv_stream_t *)&pr->tcp, http_alloc_cb, http_read_cb)) < 0)
        probe_finish(pr, false, "GET %s: %s", pr->target, uv_strerror(r));
}

static void probe_start_net(struct probe *pr, struct watch *w, uv_loop_t *loop)
{
    int r;

    snprintf(pr->target, sizeof(pr->target), "%s", w->host_header);
    if (w->cfg.kind == SPEC_PROBE_HTTP)
        pr->request = orch_xasprintf("GET %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: orch-health\r\n"
                                     "Accept: */*\r\nConnection: close\r\n\r\n",
                                     w->cfg.http_path, w->host_header);
    if ((r = uv_tcp_init(loop, &pr->tcp)) < 0) {
        probe_finish(pr, false, "connect %s: %s", pr->target, uv_strerror(r));
        return;
    }
    pr->tcp.data = pr;
    pr->tcp_inited = true;
    pr->pending_closes++;
    pr->connect_req.data = pr;
    r = uv_tcp_connect(&pr->connect_req, &pr->tcp, (const struct sockaddr *)&w->addr,
                       tcp_connect_cb);
    if (r < 0)
        probe_finish(pr, false, "connect %s: %s", pr->target, uv_strerror(r));
}

/* ---- exec ---------------------------------------------------------------------------------- */

static void exec_inspect_cb(void *data, long status, const struct orch_error *err);

static void exec_inspect(struct probe *pr)
{
    struct orch_error err = {0};
    docker_exec_info_free(&pr->info);
    pr->docker_pending = true;
    if (docker_exec_inspect(pr->docker, pr->exec_id, &pr->info, exec_inspect_cb, pr, &err) < 0) {
        pr->docker_pending = false;
        probe_finish(pr, false, "%s", err.msg);
    }
}

/* An engine callback for a probe that is done (timed out, abandoned): release and stop. */
static bool exec_callback_late(struct probe *pr)
{
    pr->docker_pending = false;
    if (!pr->finished)
        return false;
    probe_detach(pr);
    probe_maybe_free(pr);
    return true;
}

static void exec_poll_cb(uv_timer_t *t)
{
    struct probe *pr = t->data;
    if (!pr->finished)
        exec_inspect(pr);
}

static void exec_inspect_cb(void *data, long status, const struct orch_error *err)
{
    struct probe *pr = data;
    if (exec_callback_late(pr))
        return;
    if (err->code != ORCH_E_OK) {
        probe_finish(pr, false, "%s", err->msg);
        return;
    }
    if (pr->info.running) {
        int r = uv_timer_start(&pr->aux, exec_poll_cb, (uint64_t)pr->poll_ms, 0);
        if (r < 0)
            probe_finish(pr, false, "exec: %s", uv_strerror(r));
        return;
    }
    if (pr->info.exit_code == 0)
        probe_finish(pr, true, "exit code 0");
    else
        probe_finish(pr, false, "exit code %d", pr->info.exit_code);
}

static void exec_start_cb(void *data, long status, const struct orch_error *err)
{
    struct probe *pr = data;
    if (exec_callback_late(pr))
        return;
    if (err->code != ORCH_E_OK) {
        probe_finish(pr, false, "%s", err->msg);
        return;
    }
    exec_inspect(pr);
}

static void exec_create_cb(void *data, long status, const struct orch_error *err)
{
    struct probe *pr = data;
    struct orch_error e2 = {0};

    if (exec_callback_late(pr))
        return;
    if (err->code != ORCH_E_OK) {
        probe_finish(pr, false, "%s", err->msg);
        return;
    }
    pr->docker_pending = true;
    if (docker_exec_start(pr->docker, pr->exec_id, exec_start_cb, pr, &e2) < 0) {
        pr->docker_pending = false;
        probe_finish(pr, false, "%s", e2.msg);
    }
}

static void probe_start_exec(struct probe *pr, struct watch *w)
{
    struct orch_error err = {0};

    pr->docker = w->p->docker;
    pr->poll_ms = w->p->opts.exec_poll_ms;
    pr->docker_pending = true;
    if (docker_exec_create(pr->docker, w->id, &w->exec_cmd, &pr->exec_id, exec_create_cb, pr,
                           &err) < 0) {
        pr->docker_pending = false;
        probe_finish(pr, false, "%s", err.msg);
    }
}

static void probe_start(struct watch *w)
{
    uv_loop_t *loop = w->p->loop;
    struct probe *pr = orch_xcalloc(1, sizeof(*pr));
    int r;

    pr->w = w;
    w->probe = pr;
    pr->kind = w->cfg.kind;
    pr->timeout_ms = w->cfg.timeout_ms;
    if ((r = uv_timer_init(loop, &pr->timeout)) < 0) {
        /* Nothing to close yet: report the failure by hand. */
        pr->finished = true;
        probe_detach(pr);
        free(pr);
        watch_record(w, false, uv_strerror(r));
        return;
    }
    pr->timeout.data = pr;
    pr->pending_closes++;
    uv_timer_start(&pr->timeout, probe_timeout_cb, (uint64_t)pr->timeout_ms, 0);
    if ((r = uv_timer_init(loop, &pr->aux)) < 0) {
        probe_finish(pr, false, "%s", uv_strerror(r));
        return;
    }
    pr->aux.data = pr;
    pr->aux_inited = true;
    pr->pending_closes++;
    if (pr->kind == SPEC_PROBE_EXEC)
        probe_start_exec(pr, w);
    else
        probe_start_net(pr, w, loop);
}

/* ---- watches --------------------------------------------------------------------------------- */

static void watch_tick(uv_timer_t *t);

/* (Re)arms the watch's timer for its next probe and then every period: start_interval while
 * the instance is starting, interval once it has a verdict. */
static void watch_arm(struct watch *w)
{
    int64_t now = orch_now_wall_ms();
    int64_t due = health_next_due_ms(&w->cfg, &w->st, now);
    uint64_t period = (uint64_t)health_period_ms(&w->cfg, &w->st);
    uv_timer_start(&w->timer, watch_tick, (uint64_t)(due - now), period);
}

static void watch_record(struct watch *w, bool success, const char *msg)
{
    struct health_prober *p = w->p;
    enum health_status old = w->st.status;
    enum health_status now = health_observe(&w->cfg, &w->st, success, orch_now_wall_ms());

    snprintf(w->last_error, sizeof(w->last_error), "%s", success ? "" : msg);
    if (old == HEALTH_STARTING || now == HEALTH_STARTING)
        watch_arm(w); /* one period after this result; the period may have changed */
    if (old == now)
        return;
    /* becoming healthy is routine (debug); losing health is worth a line */
    enum orch_log_level level = now == HEALTH_UNHEALTHY ? ORCH_LOG_WARN
                                : now == HEALTH_HEALTHY ? ORCH_LOG_DEBUG
                                                        : ORCH_LOG_INFO;
    orch_log(level, "health: %.12s %s -> %s%s%s", w->id, health_status_name(old),
             health_status_name(now), success ? "" : ": ", success ? "" : msg);
    if (p->opts.on_change != NULL)
        p->opts.on_change(p->opts.data, w->id, old, now);
}

static void watch_tick(uv_timer_t *t)
{
    struct watch *w = t->data;

    if (w->probe == NULL) {
        probe_start(w);
    } else if (w->probe->finished) {
        /* An exec past its timeout whose engine request has still not come back. */
        watch_record(w, false, "the engine has not answered the previous exec probe");
    }
    /* else: the previous probe is still within its timeout; never run two at once. */
}

static void watch_closed(uv_handle_t *h)
{
    struct watch *w = h->data;
    free(w->id);
    free(w->cfg.http_path);
    orch_strv_free(&w->exec_cmd);
    free(w->host);
    free(w);
}

static struct watch *watch_find(const struct health_prober *p, const char *id)
{
    for (struct watch *w = p->head; w != NULL; w = w->next)
        if (strcmp(w->id, id) == 0)
            return w;
    return NULL;
}

static void watch_remove(struct health_prober *p, struct watch *w)
{
    if (w->probe != NULL)
        probe_abandon(w->probe);
    if (w->prev != NULL)
        w->prev->next = w->next;
    else
        p->head = w->next;
    if (w->next != NULL)
        w->next->prev = w->prev;
    p->count--;
    uv_close((uv_handle_t *)&w->timer, watch_closed);
}

static bool str_eq(const char *a, const char *b)
{
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

static bool watch_same(const struct watch *w, const struct spec_health *cfg, const char *host,
                       int port, int64_t started_ms)
{
    if (w->cfg.kind != cfg->kind || w->cfg.interval_ms != cfg->interval_ms ||
        w->cfg.timeout_ms != cfg->timeout_ms || w->cfg.retries != cfg->retries ||
        w->cfg.start_period_ms != cfg->start_period_ms ||
        w->cfg.start_interval_ms != cfg->start_interval_ms || w->started_ms != started_ms)
        return false;
    if (cfg->kind == SPEC_PROBE_EXEC) {
        if (w->exec_cmd.n != cfg->exec_argc)
            return false;
        for (size_t i = 0; i < cfg->exec_argc; i++)
            if (strcmp(w->exec_cmd.v[i], cfg->exec_argv[i]) != 0)
                return false;
        return true;
    }
    return w->port == port && str_eq(w->host, host) &&
           (cfg->kind != SPEC_PROBE_HTTP || str_eq(w->cfg.http_path, cfg->http_path));
}

static int check_path(const char *path, struct orch_error *err)
{
    if (path == NULL || path[0] != '/')
        return orch_fail(err, ORCH_E_INVALID, 0, "http probe path must start with '/'");
    for (const char *s = path; *s != '\0'; s++)
        if ((unsigned char)*s <= ' ' || *s == 0x7f)
            return orch_fail(err, ORCH_E_INVALID, 0,
                             "http probe path '%s' holds a space or a control character", path);
    if (strlen(path) > 2048)
        return orch_fail(err, ORCH_E_INVALID, 0, "http probe path is longer than 2048 bytes");
    return 0;
}

/* Resolves host:port into an address (literals only: no DNS lookup on the loop). */
static int resolve(const char *host, int port, struct sockaddr_storage *addr, char *hdr,
                   size_t hdr_len, struct orch_error *err)
{
    if (host == NULL || port < 1 || port > 65535)
        return orch_fail(err, ORCH_E_INVALID, 0, "probe endpoint %s:%d is not published",
                         host != NULL ? host : "(no host)", port);
    /* A binding on the wildcard address is reachable on loopback. */
    if (strcmp(host, "0.0.0.0") == 0 || host[0] == '\0')
        host = "127.0.0.1";
    else if (strcmp(host, "::") == 0)
        host = "::1";
    memset(addr, 0, sizeof(*addr));
    if (uv_ip4_addr(host, port, (struct sockaddr_in *)addr) == 0) {
        snprintf(hdr, hdr_len, "%s:%d", host, port);
        return 0;
    }
    if (uv_ip6_addr(host, port, (struct sockaddr_in6 *)addr) == 0) {
        snprintf(hdr, hdr_len, "[%s]:%d", host, port);
        return 0;
    }
    return orch_fail(err, ORCH_E_INVALID, 0, "probe host '%s' is not an IP address", host);
}

int health_prober_watch(struct health_prober *p, const char *id, const struct spec_health *cfg,
                        const char *host, int port, int64_t started_ms, struct orch_error *err)
{
    struct sockaddr_storage addr = {0};
    char hdr[80] = "";
    int r;

    if (id == NULL || id[0] == '\0')
        return orch_fail(err, ORCH_E_INVALID, 0, "health watch: empty instance id");
    if (cfg == NULL || cfg->kind == SPEC_PROBE_NONE) {
        health_prober_unwatch(p, id);
        return 0;
    }
    switch (cfg->kind) {
    case SPEC_PROBE_HTTP:
        if ((r = check_path(cfg->http_path, err)) < 0)
            return orch_wrap(err, "health watch %.12s", id);
        /* fallthrough */
    case SPEC_PROBE_TCP:
        if ((r = resolve(host, port, &addr, hdr, sizeof(hdr), err)) < 0)
            return orch_wrap(err, "health watch %.12s", id);
        break;
    case SPEC_PROBE_EXEC:
        if (cfg->exec_argc == 0 || cfg->exec_argv == NULL || cfg->exec_argv[0] == NULL)
            return orch_fail(err, ORCH_E_INVALID, 0, "health watch %.12s: exec without a command",
                             id);
        if (p->docker == NULL)
            return orch_fail(err, ORCH_E_INVALID, 0,
                             "health watch %.12s: exec probes need a docker client", id);
        break;
    default:
        return orch_fail(err, ORCH_E_INVALID, 0, "health watch %.12s: unknown probe kind %d", id,
                         (int)cfg->kind);
    }

    struct watch *w = watch_find(p, id);
    if (w != NULL && watch_same(w, cfg, host, port, started_ms))
        return 0;
    if (w != NULL)
        watch_remove(p, w);

    w = orch_xcalloc(1, sizeof(*w));
    w->p = p;
    w->id = orch_xstrdup(id);
    w->cfg.kind = cfg->kind;
    w->cfg.http_path = orch_xstrdup(cfg->http_path);
    w->cfg.port_index = -1;
    w->cfg.interval_ms = cfg->interval_ms > 0 ? cfg->interval_ms : 2000;
    w->cfg.timeout_ms = cfg->timeout_ms > 0 ? cfg->timeout_ms : 1000;
    w->cfg.retries = cfg->retries > 0 ? cfg->retries : 3;
    w->cfg.start_period_ms = cfg->start_period_ms > 0 ? cfg->start_period_ms : 0;
    w->cfg.start_interval_ms = cfg->start_interval_ms; /* 0 or less: none, the interval */
    if (cfg->kind == SPEC_PROBE_EXEC)
        for (size_t i = 0; i < cfg->exec_argc; i++)
            orch_strv_push(&w->exec_cmd, cfg->exec_argv[i]);
    else
        w->addr = addr;
    w->host = orch_xstrdup(host);
    w->port = port;
    snprintf(w->host_header, sizeof(w->host_header), "%s", hdr);
    w->started_ms = started_ms;
    health_state_init(&w->st, &w->cfg, started_ms);
    uv_timer_init(p->loop, &w->timer); /* cannot fail on Linux */
    w->timer.data = w;

    watch_arm(w);

    w->next = p->head;
    if (p->head != NULL)
        p->head->prev = w;
    p->head = w;
    p->count++;
    return 0;
}

void health_prober_unwatch(struct health_prober *p, const char *id)
{
    struct watch *w = watch_find(p, id);
    if (w != NULL)
        watch_remove(p, w);
}

enum health_status health_prober_status(const struct health_prober *p, const char *id)
{
    const struct watch *w = watch_find(p, id);
    return w != NULL ? w->st.status : HEALTH_NONE;
}

bool health_prober_state(const struct health_prober *p, const char *id, struct health_state *out)
{
    const struct watch *w = watch_find(p, id);
    if (w == NULL)
        return false;
    *out = w->st;
    return true;
}

const char *health_prober_last_error(const struct health_prober *p, const char *id)
{
    const struct watch *w = watch_find(p, id);
    return w != NULL ? w->last_error : NULL;
}

size_t health_prober_count(const struct health_prober *p)
{
    return p->count;
}

/* ---- the prober ------------------------------------------------------------------------------ */

struct health_prober *health_prober_new(uv_loop_t *loop, struct docker_client *docker,
                                        const struct health_prober_options *opts)
{
    struct health_prober *p = orch_xcalloc(1, sizeof(*p));
    p->loop = loop;
    p->docker = docker;
    if (opts != NULL)
        p->opts = *opts;
    if (p->opts.exec_poll_ms <= 0)
        p->opts.exec_poll_ms = 50;
    return p;
}

void health_prober_free(struct health_prober *p)
{
    if (p == NULL)
        return;
    while (p->head != NULL)
        watch_remove(p, p->head);
    free(p);
}
