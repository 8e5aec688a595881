/* The published-port proxy: listeners, backend sets and client connections of every service
 * on one libuv loop. It owns its handles and buffers and acts on lb_pick()'s choice; it never
 * decides which instances are healthy (the daemon hands it the registry's set) and never talks
 * to the engine. Every handle is freed in its close callback. */
#include "lb/lb.h"

#include <arpa/inet.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"

#define LB_BACKLOG 511
#define LB_SWEEP_MS 100 /* connect timeouts and drain deadlines are checked this often */

/* A backend object: shared by the set that lists it and the connections that tried it. */
struct lb_be {
    unsigned refs; /* 1 while in the set, +1 per connection that tried it */
    bool in_set;
    char *id;
    struct sockaddr_storage addr;
    unsigned flags;
    uint32_t active; /* connections connecting to it or proxying through it */
};

enum conn_state { CONN_CONNECTING, CONN_PROXYING, CONN_CLOSING };

/* One direction of a connection: bytes read from one side, written to the other. */
struct lb_dir {
    size_t queued; /* bytes handed to uv_write and not yet written */
    bool eof;      /* EOF read from the source */
    bool done;     /* EOF passed on: shutdown() of the sink completed */
};

struct lb_conn {
    struct lb_conn *prev, *next;
    struct lb_svc *svc;
    uv_tcp_t client, backend;
    uv_connect_t connect_req;
    uv_shutdown_t shut_req[2];
    enum conn_state state;
    int handles; /* open handles: client, backend */
    bool backend_open;
    bool be_active; /* counted in be->active */
    struct lb_be *be;
    struct lb_be *tried[LB_MAX_ATTEMPTS];
    size_t n_tried;
    uint64_t connect_deadline; /* uv_now() ms; 0: not connecting */
    uint64_t close_at;         /* uv_now() ms; 0: none */
    struct lb_dir dir[2];      /* DIR_UP: client -> backend, DIR_DOWN: backend -> client */
    bool http_decided;
    struct lb_http http;
};

enum { DIR_UP = 0, DIR_DOWN = 1 };

struct lb_write {
    uv_write_t req;
    struct lb_conn *c;
    int dir;
    size_t len;
    char data[];
};

struct lb_svc {
    struct lb_svc *prev, *next;
    struct lb *lb;
    char *key;
    bool detached;      /* unlistened: not found by key, freed when its handles are closed */
    bool listener_open; /* until its close callback ran */
    uv_tcp_t listener;
    int port;
    enum lb_mode mode;
    uint32_t cursor;
    struct lb_be **be;
    size_t n_be;
    struct lb_pick_backend *pick; /* scratch for lb_pick(), n_be entries */
    bool *tried;                  /* scratch, n_be entries */
    struct lb_conn *conns;
    struct lb_stats st;
};

struct lb {
    uv_loop_t *loop;
    struct lb_svc *svcs;
    uv_timer_t sweep;
    bool closing;
    bool sweep_closing;
    uint64_t connect_timeout_ms;
    uint64_t close_deadline;
    void (*close_cb)(void *data);
    void *close_data;
    char scratch[LB_READ_BUF]; /* every read lands here and is written on (or copied) at once */
};

static void be_unref(struct lb_be *be)
{
    if (be != NULL && --be->refs == 0) {
        free(be->id);
        free(be);
    }
}

/* ---- freeing ---- */

static void lb_maybe_finish(struct lb *lb);

static void on_sweep_closed(uv_handle_t *h)
{
    struct lb *lb = h->data;
    void (*cb)(void *) = lb->close_cb;
    void *data = lb->close_data;
    free(lb);
    if (cb != NULL)
        cb(data);
}

static void lb_maybe_finish(struct lb *lb)
{
    if (!lb->closing || lb->svcs != NULL || lb->sweep_closing)
        return;
    lb->sweep_closing = true;
    uv_close((uv_handle_t *)&lb->sweep, on_sweep_closed);
}

static void svc_maybe_free(struct lb_svc *s)
{
    if (!s->detached || s->listener_open || s->conns != NULL)
        return;
    struct lb *lb = s->lb;
    if (s->prev != NULL)
        s->prev->next = s->next;
    else
        lb->svcs = s->next;
    if (s->next != NULL)
        s->next->prev = s->prev;
    for (size_t i = 0; i < s->n_be; i++) {
        s->be[i]->in_set = false;
        be_unref(s->be[i]);
    }
    free(s->be);
    free(s->pick);
    free(s->tried);
    free(s->key);
    free(s);
    lb_maybe_finish(lb);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    struct lb_conn *c = h->data;
    if (--c->handles > 0)
        return;
    struct lb_svc *s = c->svc;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        s->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    for (size_t i = 0; i < c->n_tried; i++)
        be_unref(c->tried[i]);
    free(c);
    svc_maybe_free(s);
}

static void conn_release_be(struct lb_conn *c)
{
    if (c->be_active) {
        c->be->active--;
        c->be_active = false;
    }
}

static void conn_close(struct lb_conn *c)
{
    if (c->state == CONN_CLOSING)
        return;
    if (!c->http_decided) {
        c->svc->st.requests++; /* it never showed an HTTP/1 method: it counts as one */
        c->http_decided = true;
    }
    c->state = CONN_CLOSING;
    c->svc->st.conns_active--;
    conn_release_be(c);
    uv_close((uv_handle_t *)&c->client, on_conn_handle_closed);
    if (c->backend_open) {
        c->backend_open = false;
        uv_close((uv_handle_t *)&c->backend, on_conn_handle_closed);
    }
}

/* ---- connecting ---- */

static void conn_connect_next(struct lb_conn *c);
static void on_read(uv_stream_t *st, ssize_t nread, const uv_buf_t *buf);

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct lb_conn *c = h->data;
    buf->base = c->svc->lb->scratch;
    buf->len = LB_READ_BUF;
}

static void on_backend_closed_retry(uv_handle_t *h)
{
    struct lb_conn *c = h->data;
    if (c->state == CONN_CLOSING) {
        on_conn_handle_closed(h);
        return;
    }
    c->handles--;
    conn_connect_next(c);
}

/* The current backend did not accept: close its handle, then try the next one. */
static void conn_backend_failed(struct lb_conn *c)
{
    c->svc->st.connect_failed++;
    conn_release_be(c);
    c->connect_deadline = 0;
    c->backend_open = false;
    uv_close((uv_handle_t *)&c->backend, on_backend_closed_retry);
}

static void on_connected(uv_connect_t *req, int status)
{
    struct lb_conn *c = req->data;
    if (status == UV_ECANCELED || c->state != CONN_CONNECTING)
        return; /* the handle is being closed (timeout or shutdown) */
    if (status < 0) {
        conn_backend_failed(c);
        return;
    }
    c->state = CONN_PROXYING;
    c->connect_deadline = 0;
    uv_tcp_nodelay(&c->backend, 1);
    if (uv_read_start((uv_stream_t *)&c->client, on_alloc, on_read) < 0 ||
        uv_read_start((uv_stream_t *)&c->backend, on_alloc, on_read) < 0)
        conn_close(c);
}

static bool conn_tried(const struct lb_conn *c, const struct lb_be *be)
{
    for (size_t i = 0; i < c->n_tried; i++)
        if (c->tried[i] == be)
            return true;
    return false;
}

static void conn_connect_next(struct lb_conn *c)
{
    struct lb_svc *s = c->svc;
    struct lb *lb = s->lb;
    int idx = -1;
    if (!lb->closing && c->n_tried < LB_MAX_ATTEMPTS) {
        for (size_t i = 0; i < s->n_be; i++) {
            s->pick[i] = (struct lb_pick_backend){s->be[i]->flags, s->be[i]->active};
            s->tried[i] = conn_tried(c, s->be[i]);
        }
        idx = lb_pick(s->pick, s->n_be, s->mode, &s->cursor, s->tried);
    }
    if (idx < 0) {
        s->st.conns_rejected++;
        conn_close(c);
        return;
    }
    struct lb_be *be = s->be[idx];
    be->refs++;
    c->tried[c->n_tried++] = be;
    c->be = be;
    be->active++;
    c->be_active = true;
    uv_tcp_init(lb->loop, &c->backend);
    c->backend.data = c;
    c->backend_open = true;
    c->handles++;
    c->connect_req.data = c;
    c->connect_deadline = uv_now(lb->loop) + lb->connect_timeout_ms;
    if (uv_tcp_connect(&c->connect_req, &c->backend, (const struct sockaddr *)&be->addr,
                       on_connected) < 0)
        conn_backend_failed(c);
}

/* ---- proxying ---- */

static uv_stream_t *dir_source(struct lb_conn *c, int dir)
{
    return (uv_stream_t *)(dir == DIR_UP ? &c->client : &c->backend);
}

static uv_stream_t *dir_sink(struct lb_conn *c, int dir)
{
    return (uv_stream_t *)(dir == DIR_UP ? &c->backend : &c->client);
}

static void on_shutdown(uv_shutdown_t *req, int status)
{
    struct lb_conn *c = req->data;
    if (status == UV_ECANCELED || c->state == CONN_CLOSING)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    int dir = req == &c->shut_req[DIR_UP] ? DIR_UP : DIR_DOWN;
    c->dir[dir].done = true;
    if (c->dir[DIR_UP].done && c->dir[DIR_DOWN].done)
        conn_close(c);
}

static void on_write(uv_write_t *req, int status)
{
    struct lb_write *w = (struct lb_write *)req;
    struct lb_conn *c = w->c;
    int dir = w->dir;
    c->dir[dir].queued -= w->len;
    c->svc->st.bytes_queued -= w->len;
    free(w);
    if (c->state != CONN_PROXYING)
        return;
    if (status < 0) {
        conn_close(c);
        return;
    }
    /* the sink caught up: read the source again */
    if (c->dir[dir].queued == 0 && !c->dir[dir].eof &&
        uv_read_start(dir_source(c, dir), on_alloc, on_read) < 0)
        conn_close(c);
}

/* Writes what was just read: directly when the sink takes it, else a copy is queued and the
 * source is not read again until the copy is written (the bound on buffered bytes). */
static void dir_write(struct lb_conn *c, int dir, const char *data, size_t len)
{
    uv_stream_t *sink = dir_sink(c, dir);
    if (c->dir[dir].queued == 0) {
        uv_buf_t b = uv_buf_init((char *)data, (unsigned)len);
        int n = uv_try_write(sink, &b, 1);
        if (n < 0 && n != UV_EAGAIN) {
            conn_close(c);
            return;
        }
        if (n > 0) {
            data += n;
            len -= (size_t)n;
        }
        if (len == 0)
            return;
    }
    struct lb_write *w = orch_xmalloc(sizeof(*w) + len);
    w->c = c;
    w->dir = dir;
    w->len = len;
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, sink, &b, 1, on_write) < 0) {
        free(w);
        conn_close(c);
        return;
    }
    c->dir[dir].queued += len;
    c->svc->st.bytes_queued += len;
    uv_read_stop(dir_source(c, dir));
}

static void count_http(struct lb_conn *c, const char *data, size_t len)
{
    struct lb_stats *st = &c->svc->st;
    if (c->http_decided && c->http.state == LB_HTTP_OPAQUE)
        return;
    unsigned n = lb_http_feed(&c->http, data, len);
    st->requests += n;
    if (!c->http_decided) {
        if (n > 0) {
            c->http_decided = true;
            st->http_conns++;
        } else if (c->http.state == LB_HTTP_OPAQUE) {
            c->http_decided = true;
            st->requests++;
        }
    }
}

static void on_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct lb_conn *c = stream->data;
    if (c->state != CONN_PROXYING)
        return;
    int dir = stream == (uv_stream_t *)&c->client ? DIR_UP : DIR_DOWN;
    if (nread > 0) {
        if (dir == DIR_UP) {
            c->svc->st.bytes_in += (uint64_t)nread;
            count_http(c, buf->base, (size_t)nread);
        } else {
            c->svc->st.bytes_out += (uint64_t)nread;
        }
        dir_write(c, dir, buf->base, (size_t)nread);
        return;
    }
    if (nread == 0)
        return;
    if (nread != UV_EOF) {
        conn_close(c);
        return;
    }
    /* half-close: pass EOF on once the queued bytes are written (uv_shutdown waits for them) */
    c->dir[dir].eof = true;
    uv_read_stop(stream);
    c->shut_req[dir].data = c;
    if (uv_shutdown(&c->shut_req[dir], dir_sink(c, dir), on_shutdown) < 0)
        conn_close(c);
}

/* ---- accepting ---- */

static void on_unaccepted_closed(uv_handle_t *h)
{
    free(h->data);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct lb_svc *s = server->data;
    struct lb *lb = s->lb;
    if (status < 0)
        return;
    struct lb_conn *c = orch_xcalloc(1, sizeof(*c));
    c->svc = s;
    uv_tcp_init(lb->loop, &c->client);
    c->client.data = c;
    c->handles = 1;
    if (uv_accept(server, (uv_stream_t *)&c->client) < 0) {
        uv_close((uv_handle_t *)&c->client, on_unaccepted_closed);
        return;
    }
    c->state = CONN_CONNECTING;
    c->next = s->conns;
    if (s->conns != NULL)
        s->conns->prev = c;
    s->conns = c;
    s->st.conns_total++;
    s->st.conns_active++;
    uv_tcp_nodelay(&c->client, 1);
    conn_connect_next(c);
}

/* ---- the sweep: connect timeouts, drain deadlines, the end of lb_close()'s grace ---- */

static void on_sweep(uv_timer_t *t)
{
    struct lb *lb = t->data;
    uint64_t now = uv_now(lb->loop);
    bool all = lb->closing && now >= lb->close_deadline;
    for (struct lb_svc *s = lb->svcs; s != NULL; s = s->next) {
        for (struct lb_conn *c = s->conns, *next; c != NULL; c = next) {
            next = c->next;
            if (c->state == CONN_CLOSING)
                continue;
            if (all || (c->close_at != 0 && now >= c->close_at))
                conn_close(c);
            else if (c->state == CONN_CONNECTING && c->connect_deadline != 0 &&
                     now >= c->connect_deadline)
                conn_backend_failed(c);
        }
    }
}

/* ---- the API ---- */

struct lb *lb_new(uv_loop_t *loop)
{
    struct lb *lb = orch_xcalloc(1, sizeof(*lb));
    lb->loop = loop;
    lb->connect_timeout_ms = LB_CONNECT_TIMEOUT_MS;
    uv_timer_init(loop, &lb->sweep);
    lb->sweep.data = lb;
    uv_timer_start(&lb->sweep, on_sweep, LB_SWEEP_MS, LB_SWEEP_MS);
    uv_unref((uv_handle_t *)&lb->sweep); /* connections, not the sweep, keep a loop running */
    return lb;
}

void lb_set_connect_timeout(struct lb *lb, uint64_t ms)
{
    lb->connect_timeout_ms = ms != 0 ? ms : LB_CONNECT_TIMEOUT_MS;
}

static struct lb_svc *svc_find(const struct lb *lb, const char *key)
{
    for (struct lb_svc *s = lb->svcs; s != NULL; s = s->next)
        if (!s->detached && strcmp(s->key, key) == 0)
            return s;
    return NULL;
}

static int parse_addr(const char *address, uint16_t port, struct sockaddr_storage *ss)
{
    memset(ss, 0, sizeof(*ss));
    if (address == NULL)
        return -1;
    if (strchr(address, ':') != NULL)
        return uv_ip6_addr(address, port, (struct sockaddr_in6 *)ss) < 0 ? -1 : 0;
    return uv_ip4_addr(address, port, (struct sockaddr_in *)ss) < 0 ? -1 : 0;
}

static void on_listener_closed(uv_handle_t *h)
{
    struct lb_svc *s = h->data;
    s->listener_open = false;
    svc_maybe_free(s);
}

static void svc_detach(struct lb_svc *s)
{
    if (s->detached)
        return;
    s->detached = true;
    if (s->listener_open && !uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, on_listener_closed);
}

int lb_listen(struct lb *lb, const char *key, const char *address, uint16_t port, enum lb_mode mode,
              struct orch_error *err)
{
    struct sockaddr_storage ss;
    if (key == NULL || *key == '\0')
        return orch_fail(err, ORCH_E_INVALID, 0, "load balancer: a service key is needed");
    if (lb->closing)
        return orch_fail(err, ORCH_E_INVALID, 0, "load balancer: closing");
    if (svc_find(lb, key) != NULL)
        return orch_fail(err, ORCH_E_INVALID, 0, "%s: already listening", key);
    if (parse_addr(address, port, &ss) < 0)
        return orch_fail(err, ORCH_E_INVALID, 0, "%s: '%s' is not an IP address", key,
                         address != NULL ? address : "(null)");
    struct lb_svc *s = orch_xcalloc(1, sizeof(*s));
    s->lb = lb;
    s->key = orch_xstrdup(key);
    s->mode = mode;
    s->next = lb->svcs;
    if (lb->svcs != NULL)
        lb->svcs->prev = s;
    lb->svcs = s;
    uv_tcp_init(lb->loop, &s->listener);
    s->listener.data = s;
    s->listener_open = true;
    /* libuv reports EADDRINUSE from listen() rather than bind() on Linux: check both */
    int rc = uv_tcp_bind(&s->listener, (const struct sockaddr *)&ss, 0);
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&s->listener, LB_BACKLOG, on_connection);
    if (rc < 0) {
        svc_detach(s);
        return orch_fail(err, ORCH_E_ENV, 0, "%s: cannot listen on %s%s%s:%u: %s", key,
                         ss.ss_family == AF_INET6 ? "[" : "", address,
                         ss.ss_family == AF_INET6 ? "]" : "", (unsigned)port, uv_strerror(rc));
    }
    struct sockaddr_storage bound;
    int len = sizeof(bound);
    if (uv_tcp_getsockname(&s->listener, (struct sockaddr *)&bound, &len) == 0)
        s->port = ntohs(bound.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&bound)->sin6_port
                                                    : ((struct sockaddr_in *)&bound)->sin_port);
    return 0;
}

int lb_port(const struct lb *lb, const char *key)
{
    const struct lb_svc *s = svc_find(lb, key);
    return s != NULL ? s->port : -1;
}

int lb_set_mode(struct lb *lb, const char *key, enum lb_mode mode, struct orch_error *err)
{
    struct lb_svc *s = svc_find(lb, key);
    if (s == NULL)
        return orch_fail(err, ORCH_E_NOTFOUND, 0, "%s: not listening", key);
    s->mode = mode;
    return 0;
}

int lb_set_backends(struct lb *lb, const char *key, const struct lb_backend *b, size_t n,
                    struct orch_error *err)
{
    struct lb_svc *s = svc_find(lb, key);
    if (s == NULL)
        return orch_fail(err, ORCH_E_NOTFOUND, 0, "%s: not listening", key);
    struct sockaddr_storage *addrs = orch_xcalloc(n + 1, sizeof(*addrs));
    for (size_t i = 0; i < n; i++) {
        if (b[i].id == NULL || *b[i].id == '\0' || parse_addr(b[i].address, b[i].port, &addrs[i]))
            goto invalid;
        for (size_t j = 0; j < i; j++)
            if (strcmp(b[i].id, b[j].id) == 0)
                goto invalid;
        continue;
    invalid:
        free(addrs);
        return orch_fail(err, ORCH_E_INVALID, 0,
                         "%s: backend %zu (%s at %s:%u): bad or duplicate id or address", key, i,
                         b[i].id != NULL ? b[i].id : "(null)",
                         b[i].address != NULL ? b[i].address : "(null)", (unsigned)b[i].port);
    }
    struct lb_be **next = orch_xcalloc(n + 1, sizeof(*next));
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < s->n_be; j++) {
            struct lb_be *old = s->be[j];
            if (old != NULL && strcmp(old->id, b[i].id) == 0 &&
                memcmp(&old->addr, &addrs[i], sizeof(addrs[i])) == 0) {
                next[i] = old; /* kept: its reference moves to the new set */
                s->be[j] = NULL;
                break;
            }
        }
        if (next[i] == NULL) {
            next[i] = orch_xcalloc(1, sizeof(*next[i]));
            next[i]->refs = 1;
            next[i]->in_set = true;
            next[i]->id = orch_xstrdup(b[i].id);
            next[i]->addr = addrs[i];
        }
        next[i]->flags = b[i].flags;
    }
    for (size_t j = 0; j < s->n_be; j++) {
        if (s->be[j] != NULL) {
            s->be[j]->in_set = false;
            be_unref(s->be[j]);
        }
    }
    free(s->be);
    free(addrs);
    s->be = next;
    s->n_be = n;
    s->pick = orch_xrealloc(s->pick, (n + 1) * sizeof(*s->pick));
    s->tried = orch_xrealloc(s->tried, (n + 1) * sizeof(*s->tried));
    return 0;
}

size_t lb_drain_instance(struct lb *lb, const char *key, const char *id, uint64_t grace_ms)
{
    size_t open = 0;
    uint64_t at = uv_now(lb->loop) + grace_ms;
    for (struct lb_svc *s = lb->svcs; s != NULL; s = s->next) {
        if (key != NULL && (s->detached || strcmp(s->key, key) != 0))
            continue;
        for (size_t i = 0; i < s->n_be; i++)
            if (strcmp(s->be[i]->id, id) == 0)
                s->be[i]->flags |= LB_BACKEND_DRAINING;
        for (struct lb_conn *c = s->conns, *next; c != NULL; c = next) {
            next = c->next;
            if (c->state == CONN_CLOSING || c->be == NULL || strcmp(c->be->id, id) != 0)
                continue;
            open++;
            if (grace_ms == 0)
                conn_close(c);
            else if (c->close_at == 0 || c->close_at > at)
                c->close_at = at;
        }
    }
    return open;
}

void lb_unlisten(struct lb *lb, const char *key)
{
    struct lb_svc *s = svc_find(lb, key);
    if (s != NULL)
        svc_detach(s);
}

int lb_stats(const struct lb *lb, const char *key, struct lb_stats *out, struct orch_error *err)
{
    const struct lb_svc *s = svc_find(lb, key);
    if (s == NULL)
        return orch_fail(err, ORCH_E_NOTFOUND, 0, "%s: not listening", key);
    *out = s->st;
    out->backends = (unsigned)s->n_be;
    out->backends_usable = 0;
    for (size_t i = 0; i < s->n_be; i++)
        if ((s->be[i]->flags & LB_BACKEND_HEALTHY) && !(s->be[i]->flags & LB_BACKEND_DRAINING))
            out->backends_usable++;
    return 0;
}

void lb_close(struct lb *lb, uint64_t grace_ms, void (*cb)(void *data), void *data)
{
    if (lb == NULL)
        return;
    lb->close_cb = cb;
    lb->close_data = data;
    if (lb->closing)
        return;
    lb->closing = true;
    lb->close_deadline = uv_now(lb->loop) + (grace_ms != 0 ? grace_ms : LB_DEFAULT_CLOSE_GRACE);
    uv_ref((uv_handle_t *)&lb->sweep);
    for (struct lb_svc *s = lb->svcs, *next; s != NULL; s = next) {
        next = s->next; /* svc_detach may free s (never: its listener closes later) */
        svc_detach(s);
    }
    lb_maybe_finish(lb);
}
