/* The Engine API client: libcurl multi driven by libuv (curl_multi_socket_action, one uv_poll_t
 * per socket, one uv_timer_t for curl's timeout), API version negotiation, retries with
 * backoff, size and time limits, and the typed helpers. Owns its curl handles and uv handles;
 * the loop belongs to the caller. Decides nothing about containers: callers do. */
#include "docker/docker_client.h"

#include <curl/curl.h>
#include <string.h>
#include <strings.h>

#include "base/log.h"
#include "base/util.h"

enum req_state {
    REQ_WAIT_VERSION, /* queued until the negotiation ping answers */
    REQ_RUNNING,      /* on the multi handle */
    REQ_BACKOFF,      /* waiting on its retry timer */
    REQ_DONE,         /* callback delivered; its timer is closing */
};

struct docker_req {
    struct docker_client *c;
    struct docker_req *prev, *next; /* the client's live requests */
    enum req_state state;
    CURL *easy;
    struct curl_slist *headers;
    char *method, *path, *body, *what;
    bool idempotent;
    bool unversioned; /* the negotiation ping: no /vX.Y prefix */
    bool is_ping;
    int64_t timeout_ms;
    int attempts;
    uint64_t first_attempt_ms;
    struct orch_buf resp;
    bool too_big;
    char api_version[32]; /* the Api-Version header, ping only */
    char errbuf[CURL_ERROR_SIZE];
    uv_timer_t retry_timer; /* always initialised; the request is freed in its close_cb */
    docker_response_fn cb;
    void *data;
    /* streams */
    struct docker_stream *stream;
};

struct docker_stream {
    struct docker_req *req;
    struct docker_lines lines;
    docker_stream_line_fn on_line;
    void *data; /* for on_line */
    docker_stream_end_fn on_end;
    void *end_data;
    docker_event_fn on_event; /* docker_events_watch: on_line parses, then this */
    void *event_data;
    bool cancelled;
    bool line_failed;
    struct orch_error line_err;
};

struct docker_sock {
    uv_poll_t poll;
    curl_socket_t fd;
    struct docker_client *c;
    struct docker_sock *prev, *next;
};

struct docker_client {
    uv_loop_t *loop;
    CURLM *multi;
    uv_timer_t *timer;
    struct docker_endpoint ep;
    struct docker_client_options opts;
    struct docker_req *reqs; /* live requests */
    struct docker_sock *socks;
    bool negotiating;
    char version[16];        /* "1.41" once negotiated */
    char engine_version[32]; /* Api-Version of the last successful ping */
    size_t in_flight, max_in_flight;
    size_t sockets, max_sockets;
    uint64_t attempts, retries;
    int in_curl; /* > 0 while libcurl is on the stack (its callbacks may run) */
    bool closing;
    size_t open_handles; /* uv handles not yet through their close_cb */
};

static void check_multi_info(struct docker_client *c);

/* ---- lifecycle ---------------------------------------------------------------------------- */

void docker_client_options_default(struct docker_client_options *o)
{
    *o = (struct docker_client_options){
        .max_response_bytes = 8u << 20,
        .max_line_bytes = 1u << 20,
        .connect_timeout_ms = 5000,
        .request_timeout_ms = 60000,
        .max_attempts = 4,
        .retry_initial_ms = 100,
        .retry_max_ms = 2000,
        .retry_budget_ms = 10000,
    };
}

static void client_maybe_free(struct docker_client *c)
{
    if (!c->closing || c->open_handles > 0)
        return;
    docker_endpoint_free(&c->ep);
    free(c);
}

static void handle_freed(uv_handle_t *h)
{
    struct docker_client *c = h->data;
    free(h);
    c->open_handles--;
    client_maybe_free(c);
}

static void sock_closed(uv_handle_t *h)
{
    struct docker_sock *s = h->data;
    struct docker_client *c = s->c;
    free(s);
    c->open_handles--;
    client_maybe_free(c);
}

static void sock_close(struct docker_sock *s)
{
    struct docker_client *c = s->c;
    c->sockets--;
    if (s->prev)
        s->prev->next = s->next;
    else
        c->socks = s->next;
    if (s->next)
        s->next->prev = s->prev;
    uv_poll_stop(&s->poll);
    uv_close((uv_handle_t *)&s->poll, sock_closed);
}

static void on_poll(uv_poll_t *h, int status, int events)
{
    struct docker_sock *s = h->data;
    struct docker_client *c = s->c;
    int flags = 0, running;
    if (c->multi == NULL)
        return;
    if (status < 0)
        flags = CURL_CSELECT_ERR;
    if (events & UV_READABLE)
        flags |= CURL_CSELECT_IN;
    if (events & UV_WRITABLE)
        flags |= CURL_CSELECT_OUT;
    /* s may be closed by the socket callback inside this call: only c is used afterwards. */
    c->in_curl++;
    curl_multi_socket_action(c->multi, s->fd, flags, &running);
    c->in_curl--;
    check_multi_info(c);
}

static int on_curl_socket(CURL *easy, curl_socket_t fd, int what, void *userp, void *socketp)
{
    struct docker_client *c = userp;
    struct docker_sock *s = socketp;
    int events = 0;

    if (what == CURL_POLL_REMOVE) {
        if (s != NULL) {
            sock_close(s);
            if (c->multi)
                curl_multi_assign(c->multi, fd, NULL);
        }
        return 0;
    }
    if (s == NULL) {
        s = orch_xcalloc(1, sizeof(*s));
        s->fd = fd;
        s->c = c;
        s->poll.data = s;
        if (uv_poll_init_socket(c->loop, &s->poll, fd) < 0) {
            free(s);
            return -1; /* libcurl fails the transfer */
        }
        c->open_handles++;
        if (++c->sockets > c->max_sockets)
            c->max_sockets = c->sockets;
        s->next = c->socks;
        if (c->socks)
            c->socks->prev = s;
        c->socks = s;
        curl_multi_assign(c->multi, fd, s);
    }
    if (what & CURL_POLL_IN)
        events |= UV_READABLE;
    if (what & CURL_POLL_OUT)
        events |= UV_WRITABLE;
    uv_poll_start(&s->poll, events, on_poll);
    return 0;
}

static void on_timeout(uv_timer_t *t)
{
    struct docker_client *c = t->data;
    int running;
    if (c->multi == NULL)
        return;
    c->in_curl++;
    curl_multi_socket_action(c->multi, CURL_SOCKET_TIMEOUT, 0, &running);
    c->in_curl--;
    check_multi_info(c);
}

static int on_curl_timer(CURLM *multi, long timeout_ms, void *userp)
{
    struct docker_client *c = userp;
    /* Never call back into libcurl from here: a 0 timeout fires on the next loop turn. */
    if (timeout_ms < 0)
        uv_timer_stop(c->timer);
    else
        uv_timer_start(c->timer, on_timeout, (uint64_t)timeout_ms, 0);
    return 0;
}

int docker_client_new(uv_loop_t *loop, const struct docker_endpoint *ep,
                      const struct docker_client_options *opts, struct docker_client **out,
                      struct orch_error *err)
{
    struct docker_client *c = orch_xcalloc(1, sizeof(*c));
    c->loop = loop;
    if (opts)
        c->opts = *opts;
    else
        docker_client_options_default(&c->opts);
    if (c->opts.max_attempts < 1)
        c->opts.max_attempts = 1;
    c->multi = curl_multi_init();
    if (c->multi == NULL) {
        free(c);
        return orch_fail(err, ORCH_E_INTERNAL, 0, "curl_multi_init failed");
    }
    docker_endpoint_copy(&c->ep, ep);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETFUNCTION, on_curl_socket);
    curl_multi_setopt(c->multi, CURLMOPT_SOCKETDATA, c);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERFUNCTION, on_curl_timer);
    curl_multi_setopt(c->multi, CURLMOPT_TIMERDATA, c);
    c->timer = orch_xmalloc(sizeof(*c->timer));
    uv_timer_init(loop, c->timer);
    c->timer->data = c;
    c->open_handles = 1;
    *out = c;
    return 0;
}

const char *docker_client_endpoint(const struct docker_client *c)
{
    return c->ep.display;
}

const char *docker_client_api_version(const struct docker_client *c)
{
    return c->version;
}

void docker_client_stats(const struct docker_client *c, struct docker_client_stats *out)
{
    *out = (struct docker_client_stats){.in_flight = c->in_flight,
                                        .max_in_flight = c->max_in_flight,
                                        .sockets = c->sockets,
                                        .max_sockets = c->max_sockets,
                                        .attempts = c->attempts,
                                        .retries = c->retries};
}

/* ---- requests ----------------------------------------------------------------------------- */

static void req_freed(uv_handle_t *h)
{
    struct docker_req *r = h->data;
    struct docker_client *c = r->c;
    free(r);
    c->open_handles--;
    client_maybe_free(c);
}

static void req_unlink(struct docker_req *r)
{
    struct docker_client *c = r->c;
    if (r->prev)
        r->prev->next = r->next;
    else if (c->reqs == r)
        c->reqs = r->next;
    if (r->next)
        r->next->prev = r->prev;
    r->prev = r->next = NULL;
}

/* Takes r off the multi handle (if there) and stops its timer. */
static void req_detach(struct docker_req *r)
{
    struct docker_client *c = r->c;
    if (r->state == REQ_RUNNING && c->multi != NULL) {
        curl_multi_remove_handle(c->multi, r->easy);
        c->in_flight--;
    } else if (r->state == REQ_RUNNING) {
        c->in_flight--;
    }
    if (r->state == REQ_BACKOFF)
        uv_timer_stop(&r->retry_timer);
}

/* Delivers the result (unless silent) and releases the request. */
static void req_finish(struct docker_req *r, long status, const struct orch_error *err, bool silent)
{
    r->state = REQ_DONE;
    req_unlink(r);
    if (!silent && r->cb != NULL) {
        struct docker_response res = {
            .status = status, .body = r->resp.data ? r->resp.data : "", .body_len = r->resp.len};
        r->cb(r->data, &res, err);
    }
    if (r->easy)
        curl_easy_cleanup(r->easy);
    curl_slist_free_all(r->headers);
    orch_buf_free(&r->resp);
    free(r->method);
    free(r->path);
    free(r->body);
    free(r->what);
    if (r->stream) {
        docker_lines_free(&r->stream->lines);
        free(r->stream);
    }
    uv_close((uv_handle_t *)&r->retry_timer, req_freed);
}

static size_t on_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct docker_req *r = userdata;
    size_t n = size * nmemb;
    if (r->resp.len + n > r->c->opts.max_response_bytes) {
        r->too_big = true;
        return 0; /* aborts the transfer with CURLE_WRITE_ERROR */
    }
    orch_buf_append(&r->resp, ptr, n);
    return n;
}

static int stream_line(void *data, const char *line, size_t len)
{
    struct docker_stream *s = data;
    s->on_line(s->data, line, len);
    /* The line callback may have cancelled the stream: stop feeding at once. */
    return s->cancelled ? 1 : 0;
}

static size_t on_stream_write(char *ptr, size_t size, size_t nmemb, void *userdata)
{
    struct docker_req *r = userdata;
    struct docker_stream *s = r->stream;
    size_t n = size * nmemb;
    long status = 0;

    if (s->cancelled)
        return 0;
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    /* An error answer is an ordinary small body, not a stream of lines. */
    if (status < 200 || status >= 300)
        return on_write(ptr, size, nmemb, userdata);
    int rc = docker_lines_feed(&s->lines, ptr, n, stream_line, s, &s->line_err);
    if (rc < 0)
        s->line_failed = true;
    return rc == 0 ? n : 0;
}

static size_t on_header(char *buf, size_t size, size_t nitems, void *userdata)
{
    struct docker_req *r = userdata;
    size_t n = size * nitems;
    static const char name[] = "api-version:";
    if (n > sizeof(name) - 1 && strncasecmp(buf, name, sizeof(name) - 1) == 0) {
        const char *v = buf + sizeof(name) - 1;
        size_t vn = n - (sizeof(name) - 1);
        while (vn > 0 && (*v == ' ' || *v == '\t'))
            v++, vn--;
        while (vn > 0 && (v[vn - 1] == '\r' || v[vn - 1] == '\n' || v[vn - 1] == ' '))
            vn--;
        if (vn < sizeof(r->api_version)) {
            memcpy(r->api_version, v, vn);
            r->api_version[vn] = '\0';
        }
    }
    return n;
}

/* ---- attempts, completion, retries -------------------------------------------------------- */

static const char *const empty_body = "";

static void req_setup_easy(struct docker_req *r)
{
    struct docker_client *c = r->c;
    CURL *e = curl_easy_init();
    _cleanup_free_ char *url = NULL;

    if (e == NULL) {
        fprintf(stderr, "orch: curl_easy_init failed\n");
        abort();
    }
    r->easy = e;
    if (r->unversioned)
        url = orch_xasprintf("%s%s", c->ep.base_url, r->path);
    else
        url = orch_xasprintf("%s/v%s%s", c->ep.base_url, c->version, r->path);
    curl_easy_setopt(e, CURLOPT_URL, url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, r);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, r->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    /* The engine is local or named explicitly: an http_proxy variable must not divert it. */
    curl_easy_setopt(e, CURLOPT_NOPROXY, "*");
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, (long)c->opts.connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_TIMEOUT_MS, r->stream ? 0L : (long)r->timeout_ms);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, r->stream ? on_stream_write : on_write);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, r);
    if (r->is_ping) {
        curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(e, CURLOPT_HEADERDATA, r);
    }
    if (r->stream)
        curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    /* libcurl silently resends a request whose reused connection died before any answer.
     * That must never happen to a create: give those a connection of their own. */
    if (!r->idempotent)
        curl_easy_setopt(e, CURLOPT_FRESH_CONNECT, 1L);
    if (c->ep.transport == DOCKER_TRANSPORT_UNIX)
        curl_easy_setopt(e, CURLOPT_UNIX_SOCKET_PATH, c->ep.socket_path);
    if (c->ep.tls) {
        curl_easy_setopt(e, CURLOPT_CAINFO, c->ep.ca_file);
        curl_easy_setopt(e, CURLOPT_SSLCERT, c->ep.cert_file);
        curl_easy_setopt(e, CURLOPT_SSLKEY, c->ep.key_file);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    }

    /* No "Expect: 100-continue" round trip: bodies are small. */
    r->headers = curl_slist_append(r->headers, "Expect:");
    if (r->body != NULL)
        r->headers = curl_slist_append(r->headers, "Content-Type: application/json");
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, r->headers);

    if (strcmp(r->method, "GET") == 0) {
        curl_easy_setopt(e, CURLOPT_HTTPGET, 1L);
    } else if (strcmp(r->method, "HEAD") == 0) {
        curl_easy_setopt(e, CURLOPT_NOBODY, 1L);
    } else if (strcmp(r->method, "POST") == 0) {
        const char *b = r->body ? r->body : empty_body;
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, b);
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(b));
    } else {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, r->method);
        if (r->body != NULL) {
            curl_easy_setopt(e, CURLOPT_POSTFIELDS, r->body);
            curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(r->body));
        }
    }
}

static int req_start_attempt_checked(struct docker_req *r, struct orch_error *err)
{
    struct docker_client *c = r->c;
    if (r->easy == NULL)
        req_setup_easy(r);
    orch_buf_free(&r->resp);
    r->too_big = false;
    r->errbuf[0] = '\0';
    r->api_version[0] = '\0';
    if (r->attempts == 0)
        r->first_attempt_ms = uv_now(c->loop);
    CURLMcode mc = curl_multi_add_handle(c->multi, r->easy);
    if (mc != CURLM_OK)
        return orch_fail(err, ORCH_E_INTERNAL, 0, "%s: curl_multi_add_handle: %s", r->what,
                         curl_multi_strerror(mc));
    r->attempts++;
    c->attempts++;
    r->state = REQ_RUNNING;
    c->in_flight++;
    if (c->in_flight > c->max_in_flight)
        c->max_in_flight = c->in_flight;
    return 0;
}

static void req_start_attempt(struct docker_req *r)
{
    struct orch_error e;
    if (req_start_attempt_checked(r, &e) < 0)
        req_finish(r, 0, &e, false);
}

static void on_retry_timer(uv_timer_t *t)
{
    struct docker_req *r = t->data;
    if (r->state == REQ_BACKOFF)
        req_start_attempt(r);
}

static bool req_maybe_retry(struct docker_req *r, const struct orch_error *e)
{
    struct docker_client *c = r->c;
    if (c->closing || r->attempts >= c->opts.max_attempts)
        return false;
    int64_t delay = c->opts.retry_initial_ms;
    for (int i = 1; i < r->attempts && delay < c->opts.retry_max_ms; i++)
        delay *= 2;
    if (delay > c->opts.retry_max_ms)
        delay = c->opts.retry_max_ms;
    if ((int64_t)(uv_now(c->loop) - r->first_attempt_ms) + delay > c->opts.retry_budget_ms)
        return false;
    orch_log(ORCH_LOG_DEBUG, "docker: %s failed (attempt %d/%d), retrying in %lld ms: %s", r->what,
             r->attempts, c->opts.max_attempts, (long long)delay, e->msg);
    r->state = REQ_BACKOFF;
    c->retries++;
    uv_timer_start(&r->retry_timer, on_retry_timer, (uint64_t)delay, 0);
    return true;
}

/* A transfer that ended without an HTTP answer. *retry says whether resending is safe. */
static void classify_transport(struct docker_req *r, CURLcode rc, struct orch_error *e, bool *retry)
{
    struct docker_client *c = r->c;
    const char *detail = r->errbuf[0] ? r->errbuf : curl_easy_strerror(rc);
    long os_errno = 0, sent = 0;

    /* On a unix socket libcurl talks of "localhost port 80": the errno says more. */
    curl_easy_getinfo(r->easy, CURLINFO_OS_ERRNO, &os_errno);
    if (c->ep.transport == DOCKER_TRANSPORT_UNIX && os_errno != 0)
        detail = strerror((int)os_errno);

    *retry = false;
    switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
        /* Nothing was sent: safe to retry even a create. */
        orch_fail(e, ORCH_E_ENV, 0, "cannot reach the Docker engine at %s: %s", c->ep.display,
                  detail);
        *retry = true;
        return;
    case CURLE_OPERATION_TIMEDOUT:
        /* Nothing sent yet means the connection never came up. */
        curl_easy_getinfo(r->easy, CURLINFO_REQUEST_SIZE, &sent);
        if (sent == 0)
            orch_fail(e, ORCH_E_ENV, 0, "cannot reach the Docker engine at %s: %s", c->ep.display,
                      detail);
        else
            orch_fail(e, ORCH_E_TRANSIENT, 0, "%s: no answer from the Docker engine within %lld ms",
                      r->what, (long long)r->timeout_ms);
        return;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
        orch_fail(e, ORCH_E_ENV, 0, "TLS with the Docker engine at %s failed: %s", c->ep.display,
                  detail);
        return;
    default:
        orch_fail(e, ORCH_E_TRANSIENT, 0, "%s: connection to the Docker engine at %s failed: %s",
                  r->what, c->ep.display, detail);
        *retry = r->idempotent;
        return;
    }
}

static void req_done(struct docker_req *r, CURLcode rc)
{
    struct docker_client *c = r->c;
    struct orch_error e;
    long status = 0;
    bool retry = false;

    curl_multi_remove_handle(c->multi, r->easy);
    c->in_flight--;
    r->state = REQ_BACKOFF; /* off the multi handle; becomes DONE or really backs off below */
    if (r->stream != NULL && r->stream->cancelled) {
        req_finish(r, 0, NULL, true);
        return;
    }
    orch_error_clear(&e);
    curl_easy_getinfo(r->easy, CURLINFO_RESPONSE_CODE, &status);
    if (rc != CURLE_OK) {
        if (r->too_big) {
            orch_fail(&e, ORCH_E_DOCKER, 0, "%s: the engine's answer exceeds %zu bytes", r->what,
                      c->opts.max_response_bytes);
        } else if (r->stream != NULL && r->stream->line_failed) {
            e = r->stream->line_err;
            orch_wrap(&e, "%s", r->what);
        } else {
            classify_transport(r, rc, &e, &retry);
            status = 0;
        }
    } else {
        docker_status_to_error(status, r->resp.data, r->resp.len, r->what, &e);
        retry = docker_status_is_transient(status) && r->idempotent;
    }
    if (e.code != ORCH_E_OK && retry && req_maybe_retry(r, &e))
        return;
    if (r->is_ping && e.code == ORCH_E_OK)
        snprintf(c->engine_version, sizeof(c->engine_version), "%s", r->api_version);
    req_finish(r, status, &e, false);
}

static void check_multi_info(struct docker_client *c)
{
    CURLMsg *m;
    int left;
    /* A callback may close the client, which drops the multi handle: re-check it each turn. */
    while (c->multi != NULL && (m = curl_multi_info_read(c->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        struct docker_req *r = NULL;
        CURLcode rc = m->data.result;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&r);
        req_done(r, rc);
    }
}

/* ---- negotiation -------------------------------------------------------------------------- */

static void negotiate_done(void *data, const struct docker_response *res,
                           const struct orch_error *err)
{
    struct docker_client *c = data;
    struct orch_error e = *err;
    struct docker_api_version engine, used;
    static const struct docker_api_version min = {DOCKER_API_MIN_MAJOR, DOCKER_API_MIN_MINOR};
    static const struct docker_api_version max = {DOCKER_API_MAX_MAJOR, DOCKER_API_MAX_MINOR};

    c->negotiating = false;
    if (e.code == ORCH_E_OK) {
        if (c->engine_version[0] == '\0')
            orch_fail(&e, ORCH_E_ENV, 0,
                      "the server at %s sent no Api-Version header: is it a Docker engine?",
                      c->ep.display);
        else if (docker_api_version_parse(c->engine_version, &engine, &e) == 0 &&
                 docker_api_version_negotiate(engine, min, max, &used, &e) == 0)
            snprintf(c->version, sizeof(c->version), "%d.%d", used.major, used.minor);
    }

    /* Snapshot the waiting requests: callbacks below may add or complete others. */
    size_t n = 0, cap = 0;
    struct docker_req **waiting = NULL;
    for (struct docker_req *r = c->reqs; r != NULL; r = r->next) {
        if (r->state != REQ_WAIT_VERSION)
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 16;
            waiting = orch_xrealloc(waiting, cap * sizeof(*waiting));
        }
        waiting[n++] = r;
    }
    for (size_t i = 0; i < n; i++) {
        struct docker_req *r = waiting[i];
        if (r->state != REQ_WAIT_VERSION || c->closing)
            continue;
        if (e.code == ORCH_E_OK)
            req_start_attempt(r);
        else
            req_finish(r, 0, &e, false);
    }
    free(waiting);
}

static struct docker_req *req_new(struct docker_client *c, const char *method, const char *path,
                                  const char *body, const char *what, bool idempotent,
                                  int64_t timeout_ms, docker_response_fn cb, void *data)
{
    struct docker_req *r = orch_xcalloc(1, sizeof(*r));
    r->c = c;
    r->method = orch_xstrdup(method);
    r->path = orch_xstrdup(path);
    r->body = orch_xstrdup(body);
    r->what = what ? orch_xstrdup(what) : orch_xasprintf("%s %s", method, path);
    r->idempotent = idempotent;
    r->timeout_ms = timeout_ms > 0 ? timeout_ms : c->opts.request_timeout_ms;
    r->cb = cb;
    r->data = data;
    uv_timer_init(c->loop, &r->retry_timer);
    r->retry_timer.data = r;
    c->open_handles++;
    r->next = c->reqs;
    if (c->reqs)
        c->reqs->prev = r;
    c->reqs = r;
    return r;
}

static int negotiate_start(struct docker_client *c, struct orch_error *err)
{
    struct docker_req *p = req_new(c, "GET", "/_ping", NULL, "ping", true, 0, negotiate_done, c);
    p->unversioned = true;
    p->is_ping = true;
    int r = req_start_attempt_checked(p, err);
    if (r < 0) {
        req_finish(p, 0, NULL, true);
        return r;
    }
    c->negotiating = true;
    return 0;
}

/* Starts r now or queues it behind the negotiation. On failure r is released silently. */
static int req_submit(struct docker_req *r, struct orch_error *err)
{
    struct docker_client *c = r->c;
    int rc;
    if (c->version[0] != '\0') {
        rc = req_start_attempt_checked(r, err);
    } else {
        r->state = REQ_WAIT_VERSION;
        rc = c->negotiating ? 0 : negotiate_start(c, err);
    }
    if (rc < 0)
        req_finish(r, 0, NULL, true);
    return rc;
}

int docker_request(struct docker_client *c, const struct docker_request_opts *req,
                   docker_response_fn cb, void *data, struct orch_error *err)
{
    if (c->closing)
        return orch_fail(err, ORCH_E_INTERNAL, 0, "docker client used after close");
    if (req->method == NULL || req->path == NULL || req->path[0] != '/')
        return orch_fail(err, ORCH_E_INTERNAL, 0, "docker_request: bad method or path");
    struct docker_req *r = req_new(c, req->method, req->path, req->body, req->what, req->idempotent,
                                   req->timeout_ms, cb, data);
    return req_submit(r, err);
}

void docker_client_close(struct docker_client *c)
{
    struct orch_error e;
    if (c->closing)
        return;
    c->closing = true;
    orch_fail(&e, ORCH_E_TRANSIENT, 0, "request cancelled: the Docker client is closing");
    while (c->reqs != NULL) {
        struct docker_req *r = c->reqs;
        req_detach(r);
        req_finish(r, 0, &e, r->stream != NULL && r->stream->cancelled);
    }
    CURLM *m = c->multi;
    c->multi = NULL;
    curl_multi_cleanup(m);
    while (c->socks != NULL)
        sock_close(c->socks);
    uv_timer_stop(c->timer);
    uv_close((uv_handle_t *)c->timer, handle_freed);
}

/* ---- streams ------------------------------------------------------------------------------ */

static void stream_ended(void *data, const struct docker_response *res,
                         const struct orch_error *err)
{
    struct docker_stream *s = data;
    if (s->on_end)
        s->on_end(s->end_data, res->status, err);
}

static void on_cancel_timer(uv_timer_t *t)
{
    struct docker_req *r = t->data;
    if (r->state == REQ_DONE)
        return;
    req_detach(r);
    req_finish(r, 0, NULL, true);
}

void docker_stream_cancel(struct docker_stream *s)
{
    struct docker_req *r = s->req;
    s->cancelled = true;
    if (r->state == REQ_DONE)
        return;
    if (r->c->in_curl > 0 && r->state == REQ_RUNNING) {
        /* libcurl is on the stack: the transfer cannot be removed here. Its write callback
         * now refuses data, and a zero timer finishes it on the next loop turn. */
        uv_timer_start(&r->retry_timer, on_cancel_timer, 0, 0);
        return;
    }
    req_detach(r);
    req_finish(r, 0, NULL, true);
}

static int stream_start(struct docker_client *c, const char *path, struct docker_stream *s,
                        struct docker_stream **out, struct orch_error *err)
{
    if (c->closing) {
        free(s);
        return orch_fail(err, ORCH_E_INTERNAL, 0, "docker client used after close");
    }
    struct docker_req *r = req_new(c, "GET", path, NULL, NULL, false, 0, stream_ended, s);
    s->req = r;
    s->lines.max_line = c->opts.max_line_bytes;
    r->stream = s;
    int rc = req_submit(r, err);
    if (rc < 0)
        return rc; /* req_finish freed s */
    *out = s;
    return 0;
}

int docker_stream_start(struct docker_client *c, const char *path, docker_stream_line_fn on_line,
                        docker_stream_end_fn on_end, void *data, struct docker_stream **out,
                        struct orch_error *err)
{
    struct docker_stream *s = orch_xcalloc(1, sizeof(*s));
    s->on_line = on_line;
    s->data = data;
    s->on_end = on_end;
    s->end_data = data;
    return stream_start(c, path, s, out, err);
}

static void events_line(void *data, const char *line, size_t len)
{
    struct docker_stream *s = data;
    struct docker_event ev;
    struct orch_error e;
    if (docker_json_parse_event(line, len, &ev, &e) < 0) {
        orch_log(ORCH_LOG_WARN, "docker: skipping an event that does not parse: %s", e.msg);
        return;
    }
    s->on_event(s->event_data, &ev);
    docker_event_free(&ev);
}

int docker_events_watch(struct docker_client *c, const char *const *labels, size_t n_labels,
                        docker_event_fn on_event, docker_stream_end_fn on_end, void *data,
                        struct docker_stream **out, struct orch_error *err)
{
    _cleanup_free_ char *filter = n_labels ? docker_label_filter(labels, n_labels) : NULL;
    _cleanup_free_ char *path =
        orch_xasprintf("/events%s%s", filter ? "?filters=" : "", filter ? filter : "");
    struct docker_stream *s = orch_xcalloc(1, sizeof(*s));
    s->on_line = events_line;
    s->data = s;
    s->on_event = on_event;
    s->event_data = data;
    s->on_end = on_end;
    s->end_data = data;
    return stream_start(c, path, s, out, err);
}

/* ---- typed helpers ------------------------------------------------------------------------ */

enum typed_kind {
    T_NONE,
    T_CONTAINERS,
    T_CONTAINER_INFO,
    T_ID,
    T_IMAGE,
    T_NETWORK,
    T_NETWORKS,
    T_EXEC,
    T_VOLUME_NAMES,
};

struct typed {
    enum typed_kind kind;
    void *out;
    char *keep_name; /* T_NETWORKS: keep only the networks of exactly this name */
    docker_done_fn cb;
    void *data;
};

static void typed_done(void *data, const struct docker_response *res, const struct orch_error *err)
{
    struct typed *t = data;
    struct orch_error e = *err;
    const char *b = res->body;
    size_t n = res->body_len;

    if (e.code == ORCH_E_OK && res->status != 304) {
        switch (t->kind) {
        case T_NONE:
            break;
        case T_CONTAINERS:
            docker_json_parse_container_list(b, n, t->out, &e);
            break;
        case T_CONTAINER_INFO:
            docker_json_parse_container_info(b, n, t->out, &e);
            break;
        case T_ID:
            docker_json_parse_id(b, n, t->out, &e);
            break;
        case T_IMAGE:
            docker_json_parse_image_info(b, n, t->out, &e);
            break;
        case T_NETWORK:
            docker_json_parse_network(b, n, t->out, &e);
            break;
        case T_NETWORKS:
            if (docker_json_parse_network_list(b, n, t->out, &e) == 0)
                docker_network_list_keep_name(t->out, t->keep_name);
            break;
        case T_EXEC:
            docker_json_parse_exec_info(b, n, t->out, &e);
            break;
        case T_VOLUME_NAMES:
            docker_json_parse_volume_names(b, n, t->out, &e);
            break;
        }
    }
    t->cb(t->data, res->status, &e);
    free(t->keep_name);
    free(t);
}

struct typed_req {
    const char *method;
    const char *path;
    const char *body;
    const char *what;
    bool idempotent;
    int64_t timeout_ms;
    enum typed_kind kind;
    void *out;
    const char *keep_name; /* T_NETWORKS: see struct typed */
};

static int typed_request(struct docker_client *c, const struct typed_req *q, docker_done_fn cb,
                         void *data, struct orch_error *err)
{
    struct typed *t = orch_xcalloc(1, sizeof(*t));
    *t = (struct typed){.kind = q->kind,
                        .out = q->out,
                        .keep_name = orch_xstrdup(q->keep_name),
                        .cb = cb,
                        .data = data};
    struct docker_request_opts o = {.method = q->method,
                                    .path = q->path,
                                    .body = q->body,
                                    .what = q->what,
                                    .idempotent = q->idempotent,
                                    .timeout_ms = q->timeout_ms};
    int r = docker_request(c, &o, typed_done, t, err);
    if (r < 0) {
        free(t->keep_name);
        free(t);
    }
    return r;
}

/* New: ref escaped for a path segment; NULL (with *err) when empty or a dot segment, which
 * libcurl would fold into another endpoint's path. */
static char *path_ref(const char *kind, const char *ref, bool keep_slash, struct orch_error *err)
{
    if (ref == NULL || ref[0] == '\0') {
        orch_fail(err, ORCH_E_INVALID, 0, "empty %s name", kind);
        return NULL;
    }
    for (const char *p = ref; p != NULL; p = strchr(p, '/')) {
        if (*p == '/')
            p++;
        size_t seg = strcspn(p, "/");
        if ((seg == 1 && p[0] == '.') || (seg == 2 && p[0] == '.' && p[1] == '.')) {
            orch_fail(err, ORCH_E_INVALID, 0, "%s name '%s' has a '.' or '..' segment", kind, ref);
            return NULL;
        }
        if (!keep_slash)
            break;
    }
    return docker_url_escape(ref, keep_slash);
}

int docker_ping(struct docker_client *c, docker_done_fn cb, void *data, struct orch_error *err)
{
    struct typed_req q = {.method = "GET", .path = "/_ping", .what = "ping", .idempotent = true};
    return typed_request(c, &q, cb, data, err);
}

static char *filter_query(const char *base, const char *const *labels, size_t n)
{
    _cleanup_free_ char *f = n ? docker_label_filter(labels, n) : NULL;
    const char *sep = strchr(base, '?') ? "&" : "?";
    return f ? orch_xasprintf("%s%sfilters=%s", base, sep, f) : orch_xstrdup(base);
}

int docker_containers_list(struct docker_client *c, const char *const *labels, size_t n_labels,
                           struct docker_container_list *out, docker_done_fn cb, void *data,
                           struct orch_error *err)
{
    _cleanup_free_ char *path = filter_query("/containers/json?all=1", labels, n_labels);
    *out = (struct docker_container_list){0};
    struct typed_req q = {.method = "GET",
                          .path = path,
                          .what = "list containers",
                          .idempotent = true,
                          .kind = T_CONTAINERS,
                          .out = out};
    return typed_request(c, &q, cb, data, err);
}

/* One request on one object: METHOD /PREFIX/{ref}SUFFIX, described in messages as
 * "VERB KIND REF". */
struct object_req {
    const char *method;
    const char *kind;   /* "container", "image", "network", "volume", "exec" */
    const char *prefix; /* "/containers" */
    const char *ref;    /* id or name; escaped here */
    bool keep_slash;    /* image references keep their '/' */
    const char *suffix; /* "/json", "?force=1", ...; NULL = none */
    const char *body;
    const char *verb; /* "inspect", "remove", ... */
    bool idempotent;
    int64_t timeout_ms;
    enum typed_kind tk;
    void *out;
};

/* Shared by the verbs on one object. */
static int object_request(struct docker_client *c, const struct object_req *o, docker_done_fn cb,
                          void *data, struct orch_error *err)
{
    _cleanup_free_ char *esc = path_ref(o->kind, o->ref, o->keep_slash, err);
    if (esc == NULL)
        return -err->code;
    _cleanup_free_ char *path =
        orch_xasprintf("%s/%s%s", o->prefix, esc, o->suffix ? o->suffix : "");
    _cleanup_free_ char *what = orch_xasprintf("%s %s %s", o->verb, o->kind, o->ref);
    struct typed_req q = {.method = o->method,
                          .path = path,
                          .body = o->body,
                          .what = what,
                          .idempotent = o->idempotent,
                          .timeout_ms = o->timeout_ms,
                          .kind = o->tk,
                          .out = o->out};
    return typed_request(c, &q, cb, data, err);
}

int docker_container_inspect(struct docker_client *c, const char *id,
                             struct docker_container_info *out, docker_done_fn cb, void *data,
                             struct orch_error *err)
{
    *out = (struct docker_container_info){0};
    struct object_req o = {.method = "GET",
                           .kind = "container",
                           .prefix = "/containers",
                           .ref = id,
                           .suffix = "/json",
                           .verb = "inspect",
                           .idempotent = true,
                           .tk = T_CONTAINER_INFO,
                           .out = out};
    return object_request(c, &o, cb, data, err);
}

int docker_container_create(struct docker_client *c, const char *name,
                            const struct docker_container_create *spec, char **id_out,
                            docker_done_fn cb, void *data, struct orch_error *err)
{
    _cleanup_free_ char *body = NULL, *esc = NULL, *path = NULL, *what = NULL;
    int r = docker_json_container_create(spec, &body, err);
    if (r < 0)
        return r;
    *id_out = NULL;
    if (name != NULL) {
        esc = path_ref("container", name, false, err);
        if (esc == NULL)
            return -err->code;
    }
    path = orch_xasprintf("/containers/create%s%s", esc ? "?name=" : "", esc ? esc : "");
    what = orch_xasprintf("create container %s", name ? name : "(unnamed)");
    /* Not idempotent: after a broken connection the create may have happened. */
    struct typed_req q = {.method = "POST",
                          .path = path,
                          .body = body,
                          .what = what,
                          .idempotent = false,
                          .kind = T_ID,
                          .out = id_out};
    return typed_request(c, &q, cb, data, err);
}

int docker_container_start(struct docker_client *c, const char *id, docker_done_fn cb, void *data,
                           struct orch_error *err)
{
    /* Starting a started container is a 304: resending is harmless. */
    struct object_req o = {.method = "POST",
                           .kind = "container",
                           .prefix = "/containers",
                           .ref = id,
                           .suffix = "/start",
                           .verb = "start",
                           .idempotent = true};
    return object_request(c, &o, cb, data, err);
}

int docker_container_stop(struct docker_client *c, const char *id, int timeout_s, docker_done_fn cb,
                          void *data, struct orch_error *err)
{
    if (timeout_s < -1 || timeout_s > 86400)
        return orch_fail(err, ORCH_E_INVALID, 0, "stop timeout %d s out of range", timeout_s);
    char suffix[32];
    if (timeout_s >= 0)
        snprintf(suffix, sizeof(suffix), "/stop?t=%d", timeout_s);
    else
        snprintf(suffix, sizeof(suffix), "/stop");
    /* The engine answers only after the grace period (and the SIGKILL): wait that long. With
     * the container's own StopTimeout we do not know it; orch sets at most an hour. */
    int64_t timeout_ms =
        (timeout_s >= 0 ? (int64_t)timeout_s * 1000 : 3600000) + c->opts.request_timeout_ms;
    struct object_req o = {.method = "POST",
                           .kind = "container",
                           .prefix = "/containers",
                           .ref = id,
                           .suffix = suffix,
                           .verb = "stop",
                           .idempotent = true,
                           .timeout_ms = timeout_ms};
    return object_request(c, &o, cb, data, err);
}

int docker_container_kill(struct docker_client *c, const char *id, const char *signal,
                          docker_done_fn cb, void *data, struct orch_error *err)
{
    _cleanup_free_ char *sig = docker_url_escape(signal ? signal : "SIGKILL", false);
    _cleanup_free_ char *suffix = orch_xasprintf("/kill?signal=%s", sig);
    struct object_req o = {.method = "POST",
                           .kind = "container",
                           .prefix = "/containers",
                           .ref = id,
                           .suffix = suffix,
                           .verb = "kill",
                           .idempotent = true};
    return object_request(c, &o, cb, data, err);
}

int docker_container_remove(struct docker_client *c, const char *id, bool force, docker_done_fn cb,
                            void *data, struct orch_error *err)
{
    struct object_req o = {.method = "DELETE",
                           .kind = "container",
                           .prefix = "/containers",
                           .ref = id,
                           .suffix = force ? "?force=1&v=0" : "?force=0&v=0",
                           .verb = "remove",
                           .idempotent = true};
    return object_request(c, &o, cb, data, err);
}

int docker_image_inspect(struct docker_client *c, const char *ref, struct docker_image_info *out,
                         docker_done_fn cb, void *data, struct orch_error *err)
{
    *out = (struct docker_image_info){0};
    struct object_req o = {.method = "GET",
                           .kind = "image",
                           .prefix = "/images",
                           .ref = ref,
                           .keep_slash = true,
                           .suffix = "/json",
                           .verb = "inspect",
                           .idempotent = true,
                           .tk = T_IMAGE,
                           .out = out};
    return object_request(c, &o, cb, data, err);
}

int docker_network_create(struct docker_client *c, const char *name,
                          const struct docker_kvs *labels, char **id_out, docker_done_fn cb,
                          void *data, struct orch_error *err)
{
    _cleanup_free_ char *body = NULL, *what = NULL;
    int r = docker_json_network_create(name, labels, &body, err);
    if (r < 0)
        return r;
    *id_out = NULL;
    what = orch_xasprintf("create network %s", name);
    struct typed_req q = {.method = "POST",
                          .path = "/networks/create",
                          .body = body,
                          .what = what,
                          .idempotent = false,
                          .kind = T_ID,
                          .out = id_out};
    return typed_request(c, &q, cb, data, err);
}

int docker_network_inspect(struct docker_client *c, const char *name_or_id,
                           struct docker_network *out, docker_done_fn cb, void *data,
                           struct orch_error *err)
{
    *out = (struct docker_network){0};
    struct object_req o = {.method = "GET",
                           .kind = "network",
                           .prefix = "/networks",
                           .ref = name_or_id,
                           .verb = "inspect",
                           .idempotent = true,
                           .tk = T_NETWORK,
                           .out = out};
    return object_request(c, &o, cb, data, err);
}

int docker_networks_list(struct docker_client *c, const char *const *labels, size_t n_labels,
                         struct docker_network_list *out, docker_done_fn cb, void *data,
                         struct orch_error *err)
{
    _cleanup_free_ char *path = filter_query("/networks", labels, n_labels);
    *out = (struct docker_network_list){0};
    struct typed_req q = {.method = "GET",
                          .path = path,
                          .what = "list networks",
                          .idempotent = true,
                          .kind = T_NETWORKS,
                          .out = out};
    return typed_request(c, &q, cb, data, err);
}

int docker_app_network_create(struct docker_client *c, const char *name, const char *app,
                              const char *state_id, char **id_out, docker_done_fn cb, void *data,
                              struct orch_error *err)
{
    if (app == NULL || app[0] == '\0')
        return orch_fail(err, ORCH_E_INVALID, 0, "network %s: no app to label it with",
                         name ? name : "(unnamed)");
    struct docker_kvs labels = {0};
    docker_kvs_add(&labels, "orch.app", app);
    if (state_id != NULL)
        docker_kvs_add(&labels, "orch.state", state_id);
    int r = docker_network_create(c, name, &labels, id_out, cb, data, err);
    docker_kvs_free(&labels);
    return r;
}

int docker_networks_find(struct docker_client *c, const struct docker_network_filter *f,
                         struct docker_network_list *out, docker_done_fn cb, void *data,
                         struct orch_error *err)
{
    *out = (struct docker_network_list){0};
    if (f->name != NULL && f->name[0] == '\0')
        return orch_fail(err, ORCH_E_INVALID, 0, "empty network name");
    _cleanup_free_ char *filter = f->name != NULL || f->n_labels > 0
                                      ? docker_name_label_filter(f->name, f->labels, f->n_labels)
                                      : NULL;
    _cleanup_free_ char *path =
        orch_xasprintf("/networks%s%s", filter ? "?filters=" : "", filter ? filter : "");
    _cleanup_free_ char *what =
        f->name ? orch_xasprintf("find network %s", f->name) : orch_xstrdup("list networks");
    struct typed_req q = {.method = "GET",
                          .path = path,
                          .what = what,
                          .idempotent = true,
                          .kind = T_NETWORKS,
                          .out = out,
                          .keep_name = f->name};
    return typed_request(c, &q, cb, data, err);
}

/* A full network id: 64 lowercase hex digits. */
static bool is_full_id(const char *s)
{
    size_t n = 0;
    for (; s[n] != '\0'; n++)
        if (!((s[n] >= '0' && s[n] <= '9') || (s[n] >= 'a' && s[n] <= 'f')))
            return false;
    return n == 64;
}

int docker_network_remove_id(struct docker_client *c, const char *id, docker_done_fn cb, void *data,
                             struct orch_error *err)
{
    if (id == NULL || !is_full_id(id))
        return orch_fail(err, ORCH_E_INVALID, 0,
                         "remove network: '%s' is not a full network id (64 hex digits)",
                         id ? id : "(null)");
    return docker_network_remove(c, id, cb, data, err);
}

int docker_network_remove(struct docker_client *c, const char *name_or_id, docker_done_fn cb,
                          void *data, struct orch_error *err)
{
    struct object_req o = {.method = "DELETE",
                           .kind = "network",
                           .prefix = "/networks",
                           .ref = name_or_id,
                           .verb = "remove",
                           .idempotent = true};
    return object_request(c, &o, cb, data, err);
}

int docker_volume_create(struct docker_client *c, const char *name, const struct docker_kvs *labels,
                         docker_done_fn cb, void *data, struct orch_error *err)
{
    _cleanup_free_ char *body = NULL, *what = NULL;
    int r = docker_json_volume_create(name, labels, &body, err);
    if (r < 0)
        return r;
    what = orch_xasprintf("create volume %s", name);
    /* The engine returns the existing volume for a known name: resending is harmless. */
    struct typed_req q = {.method = "POST",
                          .path = "/volumes/create",
                          .body = body,
                          .what = what,
                          .idempotent = true};
    return typed_request(c, &q, cb, data, err);
}

int docker_volumes_list(struct docker_client *c, const char *const *labels, size_t n_labels,
                        struct orch_strv *names, docker_done_fn cb, void *data,
                        struct orch_error *err)
{
    _cleanup_free_ char *path = filter_query("/volumes", labels, n_labels);
    struct typed_req q = {.method = "GET",
                          .path = path,
                          .what = "list volumes",
                          .idempotent = true,
                          .kind = T_VOLUME_NAMES,
                          .out = names};
    return typed_request(c, &q, cb, data, err);
}

int docker_volume_remove(struct docker_client *c, const char *name, docker_done_fn cb, void *data,
                         struct orch_error *err)
{
    struct object_req o = {.method = "DELETE",
                           .kind = "volume",
                           .prefix = "/volumes",
                           .ref = name,
                           .verb = "remove",
                           .idempotent = true};
    return object_request(c, &o, cb, data, err);
}

int docker_exec_create(struct docker_client *c, const char *container_id,
                       const struct orch_strv *cmd, char **exec_id_out, docker_done_fn cb,
                       void *data, struct orch_error *err)
{
    _cleanup_free_ char *body = NULL;
    int r = docker_json_exec_create(cmd, &body, err);
    if (r < 0)
        return r;
    *exec_id_out = NULL;
    struct object_req o = {.method = "POST",
                           .kind = "container",
                           .prefix = "/containers",
                           .ref = container_id,
                           .suffix = "/exec",
                           .body = body,
                           .verb = "exec in",
                           .tk = T_ID,
                           .out = exec_id_out};
    return object_request(c, &o, cb, data, err);
}

int docker_exec_start(struct docker_client *c, const char *exec_id, docker_done_fn cb, void *data,
                      struct orch_error *err)
{
    _cleanup_free_ char *body = docker_json_exec_start();
    struct object_req o = {.method = "POST",
                           .kind = "exec",
                           .prefix = "/exec",
                           .ref = exec_id,
                           .suffix = "/start",
                           .body = body,
                           .verb = "start"};
    return object_request(c, &o, cb, data, err);
}

int docker_exec_inspect(struct docker_client *c, const char *exec_id, struct docker_exec_info *out,
                        docker_done_fn cb, void *data, struct orch_error *err)
{
    *out = (struct docker_exec_info){0};
    struct object_req o = {.method = "GET",
                           .kind = "exec",
                           .prefix = "/exec",
                           .ref = exec_id,
                           .suffix = "/json",
                           .verb = "inspect",
                           .idempotent = true,
                           .tk = T_EXEC,
                           .out = out};
    return object_request(c, &o, cb, data, err);
}

/* ---- synchronous use ---------------------------------------------------------------------- */

void docker_sync_done(void *sync, long status, const struct orch_error *err)
{
    struct docker_sync *s = sync;
    s->done = true;
    s->status = status;
    s->err = *err;
}

static bool all_done(const struct docker_sync *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!s[i].done)
            return false;
    return true;
}

int docker_sync_wait(struct docker_client *c, struct docker_sync *s, size_t n,
                     struct orch_error *err)
{
    while (!all_done(s, n)) {
        if (uv_run(c->loop, UV_RUN_ONCE) == 0 && !all_done(s, n))
            return orch_fail(err, ORCH_E_INTERNAL, 0,
                             "docker: the loop ran dry with requests still pending");
    }
    for (size_t i = 0; i < n; i++) {
        if (s[i].err.code != ORCH_E_OK) {
            *err = s[i].err;
            return -err->code;
        }
    }
    return 0;
}

struct pull_ctx {
    docker_done_fn cb;
    void *data;
    char *ref;
};

static void pull_done(void *data, const struct docker_response *res, const struct orch_error *err)
{
    struct pull_ctx *p = data;
    struct orch_error e = *err;
    if (e.code == ORCH_E_OK) {
        char *msg = docker_json_pull_error(res->body, res->body_len);
        if (msg != NULL) {
            orch_fail(&e, ORCH_E_NOTFOUND, 0, "pull image %s: %s", p->ref, msg);
            free(msg);
        }
    }
    p->cb(p->data, res->status, &e);
    free(p->ref);
    free(p);
}

int docker_image_pull(struct docker_client *c, const char *ref, docker_done_fn cb, void *data,
                      struct orch_error *err)
{
    if (ref == NULL || *ref == '\0')
        return orch_fail(err, ORCH_E_INVALID, 0, "pull: no image reference");
    _cleanup_free_ char *esc = docker_url_escape(ref, false);
    _cleanup_free_ char *path = orch_xasprintf("/images/create?fromImage=%s", esc);
    _cleanup_free_ char *what = orch_xasprintf("pull image %s", ref);
    struct pull_ctx *p = orch_xcalloc(1, sizeof(*p));
    *p = (struct pull_ctx){.cb = cb, .data = data, .ref = orch_xstrdup(ref)};
    struct docker_request_opts o = {
        .method = "POST", .path = path, .what = what, .idempotent = true, .timeout_ms = 600000};
    int r = docker_request(c, &o, pull_done, p, err);
    if (r < 0) {
        free(p->ref);
        free(p);
    }
    return r;
}
