/* The API's HTTP/1.1 server on the daemon's libuv loop, built on libh2o (the libuv build). It
 * owns the wire: listener, TLS and client certificates, limits, authentication, problem+json for
 * what fails before a route runs, the hand-off of each call to the thread pool and Server-Sent
 * Events. It must not decide anything a route decides (that is api/handlers.c over ops), and no
 * h2o type may leave this file. */
#include "server.h"

#include <arpa/inet.h>
#include <errno.h>
#include <h2o.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "auth/token.h"
#include "base/log.h"
#include "events.h"
#include "handlers.h"
#include "routes.h"

struct api_conn {
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_handle_t handle;
    } h; /* first: the close callback gets &h.handle */
    struct api_server *srv;
    h2o_socket_t *sock;
    struct api_conn *prev, *next;
    bool has_cert;
    char cert_name[256];
    int64_t cert_expires_ms;
};

struct api_handler {
    h2o_handler_t super;
    struct api_server *srv;
};

struct api_server {
    uv_loop_t *loop;
    struct api_server_config cfg;
    bool is_unix;
    char unix_path[128];
    int port;
    union {
        uv_tcp_t tcp;
        uv_pipe_t pipe;
        uv_handle_t handle;
    } listener;
    bool listening;
    h2o_globalconf_t config;
    h2o_context_t ctx;
    h2o_accept_ctx_t accept_ctx;
    SSL_CTX *ssl_ctx;
    struct api_conn *conns;
    unsigned n_conns;
    unsigned inflight; /* calls on the thread pool */
    struct api_sse *streams;
    pthread_mutex_t write_lock;
    /* shutdown */
    bool stopping;
    uv_timer_t stop_timer; /* polls for the end of in-flight work, bounded */
    uint64_t stop_deadline;
    uv_timer_t free_timer; /* second close stage: h2o's own handles are closed first */
    void (*done)(void *arg);
    void *done_arg;
};

static int64_t wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* ---- listen address ---- */

int api_listen_parse(const char *listen, char *host, size_t host_len, int *port, bool *is_unix,
                     bool *loopback, struct orch_error *err)
{
    if (listen == NULL)
        listen = API_DEFAULT_LISTEN;
    *is_unix = false;
    *loopback = false;
    *port = 0;
    if (strcmp(listen, "off") == 0)
        return 1;
    if (strncmp(listen, "unix:", 5) == 0) {
        const char *p = listen + 5;
        if (*p == '\0' || strlen(p) >= host_len || strlen(p) >= 108)
            return orch_fail(err, ORCH_E_USAGE, 0, "--api %s: the socket path is empty or too long",
                             listen);
        snprintf(host, host_len, "%s", p);
        *is_unix = true;
        *loopback = true;
        return 0;
    }
    const char *colon = strrchr(listen, ':');
    if (colon == NULL)
        return orch_fail(err, ORCH_E_USAGE, 0, "--api %s: expected HOST:PORT, unix:PATH or off",
                         listen);
    const char *h = listen;
    size_t hl = (size_t)(colon - listen);
    if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
        h++;
        hl -= 2;
    }
    char *end = NULL;
    long p = strtol(colon + 1, &end, 10);
    if (colon[1] == '\0' || *end != '\0' || p < 0 || p > 65535 || hl == 0 || hl >= host_len)
        return orch_fail(err, ORCH_E_USAGE, 0, "--api %s: expected HOST:PORT with a port 0-65535",
                         listen);
    memcpy(host, h, hl);
    host[hl] = '\0';
    if (strcmp(host, "localhost") == 0)
        snprintf(host, host_len, "127.0.0.1");
    unsigned char buf[16];
    if (inet_pton(AF_INET, host, buf) == 1) {
        *loopback = buf[0] == 127;
    } else if (inet_pton(AF_INET6, host, buf) == 1) {
        static const unsigned char v6lo[16] = {[15] = 1};
        *loopback = memcmp(buf, v6lo, 16) == 0;
    } else {
        return orch_fail(err, ORCH_E_USAGE, 0, "--api %s: '%s' is not an IP address", listen, host);
    }
    *port = (int)p;
    return 0;
}

/* ---- connections ---- */

static void maybe_finish_shutdown(struct api_server *srv);

static void on_conn_close(uv_handle_t *h)
{
    struct api_conn *c = (struct api_conn *)h;
    struct api_server *srv = c->srv;
    if (c->prev)
        c->prev->next = c->next;
    else if (srv->conns == c)
        srv->conns = c->next;
    if (c->next)
        c->next->prev = c->prev;
    if (c->sock != NULL)
        srv->n_conns--;
    free(c);
    maybe_finish_shutdown(srv);
}

static struct api_conn *conn_of_socket(struct api_server *srv, h2o_socket_t *sock)
{
    for (struct api_conn *c = srv->conns; c != NULL; c = c->next)
        if (c->sock == sock)
            return c;
    return NULL;
}

static void on_connection(uv_stream_t *listener, int status)
{
    struct api_server *srv = listener->data;
    if (status != 0)
        return;
    struct api_conn *c = calloc(1, sizeof(*c));
    c->srv = srv;
    if (srv->is_unix)
        uv_pipe_init(srv->loop, &c->h.pipe, 0);
    else
        uv_tcp_init(srv->loop, &c->h.tcp);
    if (uv_accept(listener, (uv_stream_t *)&c->h.handle) != 0 || srv->stopping ||
        srv->n_conns >= srv->cfg.max_conns) {
        /* Over the cap: close at once; the client sees a reset and may retry. */
        if (srv->n_conns >= srv->cfg.max_conns)
            orch_log(ORCH_LOG_WARN, "api: connection refused: %u connections open (the cap)",
                     srv->n_conns);
        c->next = srv->conns;
        if (srv->conns)
            srv->conns->prev = c;
        srv->conns = c;
        uv_close(&c->h.handle, on_conn_close);
        return;
    }
    if (!srv->is_unix)
        uv_tcp_nodelay(&c->h.tcp, 1);
    c->next = srv->conns;
    if (srv->conns)
        srv->conns->prev = c;
    srv->conns = c;
    srv->n_conns++;
    c->sock = h2o_uv_socket_create((uv_stream_t *)&c->h.handle, on_conn_close);
    h2o_accept(&srv->accept_ctx, c->sock);
}

/* ---- TLS ---- */

/* The client certificate's identity is taken here, where OpenSSL shows the certificate; h2o's
 * BIO carries its socket, which leads to our connection record. */
static int verify_cb(int ok, X509_STORE_CTX *xs)
{
    if (!ok || X509_STORE_CTX_get_error_depth(xs) != 0)
        return ok;
    SSL *ssl = X509_STORE_CTX_get_ex_data(xs, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct api_server *srv = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    h2o_socket_t *sock = BIO_get_data(SSL_get_rbio(ssl));
    struct api_conn *c = srv ? conn_of_socket(srv, sock) : NULL;
    if (c == NULL)
        return 0;
    struct orch_error err = {0};
    X509 *cert = X509_STORE_CTX_get_current_cert(xs);
    if (auth_x509_identity(cert, c->cert_name, sizeof(c->cert_name), &err) < 0) {
        orch_log(ORCH_LOG_WARN, "api: client certificate refused: %s", err.msg);
        return 0;
    }
    c->cert_expires_ms = auth_x509_not_after_ms(cert);
    c->has_cert = true;
    return 1;
}

static int tls_setup(struct api_server *srv, struct orch_error *err)
{
    const struct api_server_config *cfg = &srv->cfg;
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    if (ctx == NULL)
        return orch_fail(err, ORCH_E_INTERNAL, 0, "api: SSL_CTX_new failed");
    srv->ssl_ctx = ctx;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    SSL_CTX_set_options(ctx, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE);
    SSL_CTX_set_app_data(ctx, srv);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert) != 1)
        return orch_fail(err, ORCH_E_USAGE, 0, "--tls-cert %s: cannot load a PEM certificate",
                         cfg->tls_cert);
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        return orch_fail(err, ORCH_E_USAGE, 0,
                         "--tls-key %s: cannot load a PEM key matching the certificate",
                         cfg->tls_key);
    if (cfg->client_ca != NULL) {
        STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(cfg->client_ca);
        if (names == NULL || SSL_CTX_load_verify_locations(ctx, cfg->client_ca, NULL) != 1) {
            sk_X509_NAME_pop_free(names, X509_NAME_free);
            return orch_fail(err, ORCH_E_USAGE, 0,
                             "--client-ca %s: cannot load PEM CA certificates", cfg->client_ca);
        }
        SSL_CTX_set_client_CA_list(ctx, names);
        SSL_CTX_set_verify(ctx, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, verify_cb);
    }
    ERR_clear_error();
    /* HTTP/1.1 only: no ALPN protocols are registered, so h2 is never negotiated. */
    return 0;
}

/* ---- responses ---- */

static void send_body(h2o_req_t *req, int status, const char *type, const char *body, size_t len)
{
    req->res.status = status;
    req->res.reason = api_status_reason(status);
    if (type != NULL)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL, type,
                       strlen(type));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    req->res.content_length = len;
    h2o_send_inline(req, body, len);
}

static int send_problem(h2o_req_t *req, int status, const char *detail)
{
    char *body = api_problem_json(status, NULL, detail, NULL);
    if (status == 401)
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_WWW_AUTHENTICATE, NULL,
                       H2O_STRLIT("Bearer realm=\"orch\""));
    send_body(req, status, "application/problem+json", body, strlen(body));
    free(body);
    return 0;
}

/* ---- calls on the thread pool ---- */

struct api_work {
    uv_work_t work;
    struct api_server *srv;
    h2o_req_t *req;         /* NULL once the client went away */
    struct api_work **slot; /* in req's pool; cleared when the req is disposed */
    struct api_call call;
};

static void on_req_dispose(void *p)
{
    struct api_work **slot = p;
    if (*slot != NULL)
        (*slot)->req = NULL;
}

static void work_run(uv_work_t *w)
{
    struct api_work *aw = (struct api_work *)w;
    api_call_run(&aw->call);
}

static void work_done(uv_work_t *w, int status)
{
    struct api_work *aw = (struct api_work *)w;
    struct api_call *c = &aw->call;
    struct api_server *srv = aw->srv;
    if (c->route->mutating)
        /* The audit line: who did what to which app, and how it ended. Never a credential. */
        orch_log(ORCH_LOG_INFO, "api audit: %s %s %s app=%s%s%s status=%d outcome=%s",
                 c->identity.name, c->route->method, c->route->pattern, c->app,
                 c->svc[0] ? " service=" : "", c->svc, c->status, c->outcome[0] ? c->outcome : "-");
    if (aw->req != NULL) {
        h2o_req_t *req = aw->req;
        *aw->slot = NULL;
        if (c->etag[0])
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ETAG, NULL,
                           h2o_strdup(&req->pool, c->etag, SIZE_MAX).base, strlen(c->etag));
        if (c->location[0])
            h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_LOCATION, NULL,
                           h2o_strdup(&req->pool, c->location, SIZE_MAX).base, strlen(c->location));
        const char *body = c->resp_body ? c->resp_body : "";
        send_body(req, c->status ? c->status : 500, c->resp_body ? c->resp_type : NULL, body,
                  strlen(body));
    }
    api_call_free(c);
    free(aw);
    srv->inflight--;
    maybe_finish_shutdown(srv);
}

static char *dup_iov(const char *p, size_t n)
{
    char *s = malloc(n + 1);
    memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

static void start_call(struct api_server *srv, h2o_req_t *req, const struct api_match *m,
                       struct auth_identity *id)
{
    struct api_work *aw = calloc(1, sizeof(*aw));
    aw->srv = srv;
    aw->req = req;
    aw->slot = h2o_mem_alloc_shared(&req->pool, sizeof(*aw->slot), on_req_dispose);
    *aw->slot = aw;
    struct api_call *c = &aw->call;
    c->route = m->route;
    memcpy(c->app, m->app, sizeof(c->app));
    memcpy(c->svc, m->svc, sizeof(c->svc));
    if (req->query_at != SIZE_MAX) {
        c->query = dup_iov(req->path.base + req->query_at + 1, req->path.len - req->query_at - 1);
        c->query_len = req->path.len - req->query_at - 1;
    }
    c->body = dup_iov(req->entity.base ? req->entity.base : "", req->entity.len);
    c->body_len = req->entity.len;
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_IF_MATCH, -1);
    if (i >= 0)
        c->if_match =
            dup_iov(req->headers.entries[i].value.base, req->headers.entries[i].value.len);
    c->identity = *id; /* taken */
    memset(id, 0, sizeof(*id));
    c->state_dir = srv->cfg.state_dir;
    c->write_lock = &srv->write_lock;
    srv->inflight++;
    uv_queue_work(srv->loop, &aw->work, work_run, work_done);
}

/* ---- Server-Sent Events ---- */

struct api_sse {
    h2o_generator_t gen; /* first: h2o hands it back */
    struct api_server *srv;
    h2o_req_t *req; /* NULL after stop */
    struct auth_identity identity;
    uv_timer_t timer;
    int64_t last_id;
    bool sending;
    struct api_sse *prev, *next;
    char *buf; /* the chunk being sent */
};

static void sse_free(uv_handle_t *h)
{
    struct api_sse *s = h->data;
    struct api_server *srv = s->srv;
    if (s->prev)
        s->prev->next = s->next;
    else if (srv->streams == s)
        srv->streams = s->next;
    if (s->next)
        s->next->prev = s->prev;
    auth_identity_free(&s->identity);
    free(s->buf);
    free(s);
    maybe_finish_shutdown(srv);
}

static void sse_end(struct api_sse *s)
{
    if (uv_is_closing((uv_handle_t *)&s->timer))
        return;
    uv_timer_stop(&s->timer);
    uv_close((uv_handle_t *)&s->timer, sse_free);
}

static void sse_proceed(h2o_generator_t *g, h2o_req_t *req)
{
    struct api_sse *s = (struct api_sse *)g;
    s->sending = false;
    free(s->buf);
    s->buf = NULL;
}

static void sse_stop(h2o_generator_t *g, h2o_req_t *req)
{
    struct api_sse *s = (struct api_sse *)g;
    s->req = NULL;
    sse_end(s);
}

static bool sse_admits(void *arg, const char *app)
{
    struct api_sse *s = arg;
    return auth_app_in_scope(&s->identity, app);
}

static void sse_tick(uv_timer_t *t)
{
    struct api_sse *s = t->data;
    if (s->req == NULL || s->sending)
        return;
    if (s->srv->stopping) {
        s->sending = true;
        h2o_send(s->req, NULL, 0, H2O_SEND_STATE_FINAL);
        s->req = NULL;
        sse_end(s);
        return;
    }
    struct orch_error err = {0};
    char *chunk = NULL;
    /* A read of the event log's tail (SQLite, WAL): short, so it runs on the loop. */
    if (api_events_sse_chunk(s->srv->cfg.state_dir, s->last_id, sse_admits, s, &chunk, &s->last_id,
                             &err) < 0) {
        orch_log(ORCH_LOG_WARN, "api: events: %s", err.msg);
        return;
    }
    if (chunk == NULL)
        return;
    s->buf = chunk;
    s->sending = true;
    h2o_iovec_t v = h2o_iovec_init(chunk, strlen(chunk));
    h2o_send(s->req, &v, 1, H2O_SEND_STATE_IN_PROGRESS);
}

static void start_events(struct api_server *srv, h2o_req_t *req, struct auth_identity *id)
{
    struct api_sse *s = calloc(1, sizeof(*s));
    s->srv = srv;
    s->req = req;
    s->identity = *id;
    memset(id, 0, sizeof(*id));
    s->gen.proceed = sse_proceed;
    s->gen.stop = sse_stop;
    ssize_t i = h2o_find_header_by_str(&req->headers, H2O_STRLIT("last-event-id"), -1);
    if (i >= 0) {
        char v[24];
        size_t n = req->headers.entries[i].value.len;
        if (n < sizeof(v)) {
            memcpy(v, req->headers.entries[i].value.base, n);
            v[n] = '\0';
            s->last_id = strtoll(v, NULL, 10);
        }
    } else {
        /* A new subscriber starts at the present: only events from now on. */
        struct orch_error err = {0};
        api_events_last_id(srv->cfg.state_dir, &s->last_id, &err);
    }
    s->next = srv->streams;
    if (srv->streams)
        srv->streams->prev = s;
    srv->streams = s;
    uv_timer_init(srv->loop, &s->timer);
    s->timer.data = s;
    req->res.status = 200;
    req->res.reason = "OK";
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONTENT_TYPE, NULL,
                   H2O_STRLIT("text/event-stream"));
    h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CACHE_CONTROL, NULL,
                   H2O_STRLIT("no-store"));
    h2o_start_response(req, &s->gen);
    /* The first chunk flushes the headers, so a client knows it is subscribed. */
    s->buf = strdup(": subscribed\n\n");
    s->sending = true;
    h2o_iovec_t v = h2o_iovec_init(s->buf, strlen(s->buf));
    h2o_send(req, &v, 1, H2O_SEND_STATE_IN_PROGRESS);
    uint64_t every = srv->cfg.events_poll_ms ? srv->cfg.events_poll_ms : 1000;
    uv_timer_start(&s->timer, sse_tick, every, every);
}

/* ---- the request handler ---- */

static int authenticate(struct api_server *srv, h2o_req_t *req, struct auth_identity *id,
                        struct orch_error *err)
{
    ssize_t i = h2o_find_header(&req->headers, H2O_TOKEN_AUTHORIZATION, -1);
    if (i >= 0) {
        h2o_iovec_t v = req->headers.entries[i].value;
        if (v.len < 7 || strncasecmp(v.base, "Bearer ", 7) != 0)
            return orch_fail(err, ORCH_E_INVALID, 0, "the Authorization scheme must be Bearer");
        size_t k = 7;
        while (k < v.len && v.base[k] == ' ')
            k++;
        return auth_bearer_authenticate(srv->cfg.auth, srv->cfg.tokens, v.base + k, v.len - k,
                                        wall_ms(), id, err);
    }
    struct api_conn *c = NULL;
    if (srv->cfg.client_ca != NULL && req->conn->callbacks->get_socket != NULL)
        c = conn_of_socket(srv, req->conn->callbacks->get_socket(req->conn));
    if (c != NULL && c->has_cert) {
        if (srv->cfg.auth == NULL)
            return orch_fail(err, ORCH_E_INVALID, 0,
                             "client certificate '%s': no --auth file maps it to a role",
                             c->cert_name);
        return auth_cert_authenticate(srv->cfg.auth, c->cert_name, c->cert_expires_ms, id, err);
    }
    return orch_fail(err, ORCH_E_INVALID, 0, "missing Authorization: Bearer credential");
}

static int on_req(h2o_handler_t *self, h2o_req_t *req)
{
    struct api_server *srv = ((struct api_handler *)self)->srv;
    size_t header_bytes = req->path.len + req->method.len;
    for (size_t i = 0; i < req->headers.size; i++)
        header_bytes += req->headers.entries[i].name->len + req->headers.entries[i].value.len + 4;
    if (header_bytes > srv->cfg.max_header_bytes)
        return send_problem(req, 431, "the request's headers exceed the server's limit");
    size_t path_len = req->query_at != SIZE_MAX ? req->query_at : req->path.len;
    struct api_match m;
    int rc = api_route_match(req->method.base, req->method.len, req->path.base, path_len, &m);
    if (rc == 404)
        return send_problem(req, 404, "no such route");
    if (rc == 405) {
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_ALLOW, NULL,
                       h2o_strdup(&req->pool, m.allow, SIZE_MAX).base, strlen(m.allow));
        return send_problem(req, 405, "the route does not take this method");
    }
    if (m.route->id == API_ROUTE_HEALTH) {
        static const char ok[] = "{\"status\":\"ok\"}";
        send_body(req, 200, "application/json", ok, sizeof(ok) - 1);
        return 0;
    }
    struct auth_identity id = {0};
    struct orch_error err = {0};
    if (authenticate(srv, req, &id, &err) < 0) {
        auth_identity_free(&id);
        return send_problem(req, 401, err.msg);
    }
    enum auth_decision d =
        auth_allows(&id, auth_op_role(m.route->op), m.app[0] ? m.app : NULL, wall_ms());
    if (d != AUTH_ALLOW) {
        char detail[512];
        if (d == AUTH_FORBIDDEN)
            snprintf(detail, sizeof(detail), "%s (role %s) may not %s %s%s%s", id.name,
                     auth_role_name(id.role), m.route->method, m.route->pattern,
                     m.app[0] ? " on app " : "", m.app);
        else
            snprintf(detail, sizeof(detail), "%s: the credential has expired", id.name);
        if (m.route->mutating)
            orch_log(ORCH_LOG_INFO, "api audit: %s %s %s app=%s status=%d outcome=refused", id.name,
                     m.route->method, m.route->pattern, m.app, (int)d);
        auth_identity_free(&id);
        return send_problem(req, (int)d, detail);
    }
    if (m.route->id == API_ROUTE_METRICS) {
        auth_identity_free(&id);
        return send_problem(req, 404, "metrics are not served yet");
    }
    if (srv->stopping) {
        auth_identity_free(&id);
        h2o_add_header(&req->pool, &req->res.headers, H2O_TOKEN_CONNECTION, NULL,
                       H2O_STRLIT("close"));
        return send_problem(req, 503, "the server is shutting down");
    }
    if (m.route->id == API_ROUTE_EVENTS) {
        start_events(srv, req, &id);
        return 0;
    }
    start_call(srv, req, &m, &id);
    return 0;
}

/* ---- start and stop ---- */

static int listen_on(struct api_server *srv, const char *host, int port, struct orch_error *err)
{
    int rc;
    if (srv->is_unix) {
        uv_pipe_init(srv->loop, &srv->listener.pipe, 0);
        struct stat st;
        if (lstat(host, &st) == 0 && S_ISSOCK(st.st_mode))
            unlink(host); /* a stale socket of an earlier daemon */
        rc = uv_pipe_bind(&srv->listener.pipe, host);
        if (rc == 0 && chmod(host, 0660) != 0)
            rc = -errno;
        snprintf(srv->unix_path, sizeof(srv->unix_path), "%s", host);
    } else {
        struct sockaddr_storage sa;
        uv_tcp_init(srv->loop, &srv->listener.tcp);
        if (strchr(host, ':'))
            rc = uv_ip6_addr(host, port, (struct sockaddr_in6 *)&sa);
        else
            rc = uv_ip4_addr(host, port, (struct sockaddr_in *)&sa);
        if (rc == 0)
            rc = uv_tcp_bind(&srv->listener.tcp, (struct sockaddr *)&sa, 0);
    }
    srv->listener.handle.data = srv;
    if (rc == 0)
        rc = uv_listen((uv_stream_t *)&srv->listener.handle, 128, on_connection);
    srv->listening = true;
    if (rc != 0)
        return orch_fail(err, ORCH_E_ENV, 0, "api: cannot listen on %s%s port %d: %s",
                         srv->is_unix ? "unix:" : "", host, port, uv_strerror(rc));
    if (!srv->is_unix) {
        struct sockaddr_storage sa;
        int len = sizeof(sa);
        uv_tcp_getsockname(&srv->listener.tcp, (struct sockaddr *)&sa, &len);
        srv->port = ntohs(sa.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&sa)->sin6_port
                                                   : ((struct sockaddr_in *)&sa)->sin_port);
    }
    return 0;
}

static void server_free_now(uv_handle_t *h)
{
    struct api_server *srv = h->data;
    void (*done)(void *) = srv->done;
    void *arg = srv->done_arg;
    h2o_config_dispose(&srv->config);
    if (srv->ssl_ctx)
        SSL_CTX_free(srv->ssl_ctx);
    pthread_mutex_destroy(&srv->write_lock);
    free(srv);
    if (done)
        done(arg);
}

/* h2o_context_dispose closes its timers; they are gone only after this loop iteration's close
 * callbacks, so the memory holding them is freed one close later. */
static void stop_timer_closed(uv_handle_t *h)
{
    struct api_server *srv = h->data;
    uv_timer_init(srv->loop, &srv->free_timer);
    srv->free_timer.data = srv;
    uv_close((uv_handle_t *)&srv->free_timer, server_free_now);
}

static void listener_closed(uv_handle_t *h)
{
    (void)h;
}

static void finish(struct api_server *srv)
{
    if (srv->n_conns > 0 || srv->inflight > 0 || srv->streams != NULL) {
        /* The bound ran out with connections h2o still owns; freeing its context under them
         * would be unsafe, so it stays (the process is exiting). */
        orch_log(ORCH_LOG_WARN,
                 "api: shutdown bound reached with %u connections and %u calls still open",
                 srv->n_conns, srv->inflight);
        uv_timer_stop(&srv->stop_timer);
        if (srv->done)
            srv->done(srv->done_arg);
        srv->done = NULL;
        return;
    }
    uv_timer_stop(&srv->stop_timer);
    /* request_shutdown arms HTTP/2's graceful-shutdown timer even with no HTTP/2 connection;
     * dispose asserts every timer is idle. */
    if (h2o_timeout_is_linked(&srv->ctx.http2._graceful_shutdown_timeout))
        h2o_timeout_unlink(&srv->ctx.http2._graceful_shutdown_timeout);
    h2o_context_dispose(&srv->ctx);
    uv_close((uv_handle_t *)&srv->stop_timer, stop_timer_closed);
}

static void maybe_finish_shutdown(struct api_server *srv)
{
    if (!srv->stopping || srv->n_conns > 0 || srv->inflight > 0 || srv->streams != NULL)
        return;
    if (uv_is_closing((uv_handle_t *)&srv->stop_timer))
        return;
    finish(srv);
}

static void stop_tick(uv_timer_t *t)
{
    struct api_server *srv = t->data;
    for (struct api_sse *s = srv->streams; s != NULL; s = s->next)
        sse_tick(&s->timer); /* ends each stream */
    if (uv_now(srv->loop) >= srv->stop_deadline)
        finish(srv);
}

void api_server_shutdown(struct api_server *srv, void (*done)(void *arg), void *arg)
{
    if (srv == NULL) {
        if (done)
            done(arg);
        return;
    }
    srv->stopping = true;
    srv->done = done;
    srv->done_arg = arg;
    if (srv->listening)
        uv_close(&srv->listener.handle, listener_closed);
    if (srv->is_unix && srv->unix_path[0])
        unlink(srv->unix_path);
    /* Keep-alive connections: h2o answers their next request with Connection: close; idle
     * ones end at the request timeout, which the shutdown bound covers. */
    h2o_context_request_shutdown(&srv->ctx);
    srv->stop_deadline = uv_now(srv->loop) + srv->cfg.shutdown_timeout_ms;
    uv_timer_start(&srv->stop_timer, stop_tick, 100, 100);
    maybe_finish_shutdown(srv);
}

int api_server_port(const struct api_server *srv)
{
    return srv ? srv->port : 0;
}

int api_server_start(uv_loop_t *loop, const struct api_server_config *cfg, struct api_server **out,
                     struct orch_error *err)
{
    *out = NULL;
    char host[128];
    int port;
    bool is_unix, loopback;
    int rc = api_listen_parse(cfg->listen, host, sizeof(host), &port, &is_unix, &loopback, err);
    if (rc != 0)
        return rc < 0 ? rc : 0;
    bool tls = cfg->tls_cert != NULL || cfg->tls_key != NULL;
    if (tls && (cfg->tls_cert == NULL || cfg->tls_key == NULL))
        return orch_fail(err, ORCH_E_USAGE, 0, "--tls-cert and --tls-key go together");
    if (!loopback && !tls)
        return orch_fail(err, ORCH_E_USAGE, 0,
                         "--api %s is not a loopback address: it needs --tls-cert and --tls-key",
                         cfg->listen);
    if (cfg->client_ca != NULL && !tls)
        return orch_fail(err, ORCH_E_USAGE, 0, "--client-ca needs --tls-cert and --tls-key");

    struct api_server *srv = calloc(1, sizeof(*srv));
    srv->loop = loop;
    srv->cfg = *cfg;
    if (!srv->cfg.max_body)
        srv->cfg.max_body = API_MAX_BODY;
    if (!srv->cfg.max_header_bytes)
        srv->cfg.max_header_bytes = API_MAX_HEADER_BYTES;
    if (!srv->cfg.req_timeout_ms)
        srv->cfg.req_timeout_ms = API_REQ_TIMEOUT_MS;
    if (!srv->cfg.max_conns)
        srv->cfg.max_conns = API_MAX_CONNS;
    if (!srv->cfg.shutdown_timeout_ms)
        srv->cfg.shutdown_timeout_ms = API_SHUTDOWN_TIMEOUT_MS;
    srv->is_unix = is_unix;
    pthread_mutex_init(&srv->write_lock, NULL);
    if (tls && tls_setup(srv, err) < 0) {
        if (srv->ssl_ctx)
            SSL_CTX_free(srv->ssl_ctx);
        pthread_mutex_destroy(&srv->write_lock);
        free(srv);
        return -err->code;
    }

    h2o_config_init(&srv->config);
    srv->config.server_name = h2o_iovec_init(H2O_STRLIT("orch"));
    srv->config.max_request_entity_size = srv->cfg.max_body;
    srv->config.http1.req_timeout = srv->cfg.req_timeout_ms;
    srv->config.handshake_timeout = srv->cfg.req_timeout_ms;
    srv->config.http1.upgrade_to_http2 = 0;
    h2o_hostconf_t *hc =
        h2o_config_register_host(&srv->config, h2o_iovec_init(H2O_STRLIT("default")), 65535);
    h2o_pathconf_t *pc = h2o_config_register_path(hc, "/", 0);
    struct api_handler *h = (struct api_handler *)h2o_create_handler(pc, sizeof(*h));
    h->super.on_req = on_req;
    h->srv = srv;
    h2o_context_init(&srv->ctx, loop, &srv->config);
    srv->accept_ctx.ctx = &srv->ctx;
    srv->accept_ctx.hosts = srv->config.hosts;
    srv->accept_ctx.ssl_ctx = srv->ssl_ctx;
    uv_timer_init(loop, &srv->stop_timer);
    srv->stop_timer.data = srv;

    if (listen_on(srv, host, port, err) < 0) {
        srv->done = NULL;
        srv->stopping = true;
        uv_close(&srv->listener.handle, listener_closed);
        finish(srv);
        return -err->code;
    }
    if (is_unix)
        orch_log(ORCH_LOG_INFO, "api: serving HTTP/1.1 on unix:%s", host);
    else
        orch_log(ORCH_LOG_INFO, "api: serving HTTP/1.1%s on %s:%d", tls ? " over TLS" : "", host,
                 srv->port);
    *out = srv;
    return 0;
}
