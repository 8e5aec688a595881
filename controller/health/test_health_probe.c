/* The probe runners against real sockets on 127.0.0.1: a small HTTP server runs on the test's
 * own loop and answers as each test steers it (200, 302, 503, silence, garbage, a hang-up), so
 * every transition, timeout, malformed answer and unwatch in the middle of a probe is observed
 * through the public API and the on_change callback. Exec probes are in test_health_engine. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "health/health_probe.h"

/* ---- a steerable HTTP server on the test loop ---------------------------------------------- */

enum srv_mode {
    SRV_200,
    SRV_302,
    SRV_404,
    SRV_503,
    SRV_SILENT,   /* reads the request, never answers */
    SRV_HANGUP,   /* closes the connection right after accepting it */
    SRV_GARBAGE,  /* answers something that is not HTTP */
    SRV_LONG,     /* a status line that never ends within the probe's 4 KiB */
    SRV_GREETING, /* speaks first, as SSH or SMTP do, and keeps the connection open */
};

struct conn {
    uv_tcp_t tcp;
    struct srv *s;
    struct conn *next;
    char req[2048];
    size_t len;
    bool answered;
    uv_write_t wr;
    char *out;
};

struct srv {
    uv_tcp_t listener;
    bool listening;
    int port;
    enum srv_mode mode;
    int accepted;   /* connections accepted */
    int open;       /* connections open now */
    int max_open;   /* the most open at once */
    int answers;    /* responses written */
    int fails_sent; /* responses written that a probe must count as a failure */
    char last_req[2048];
    struct conn *conns;
};

static uv_loop_t loop;
static struct srv srv;

static void conn_closed(uv_handle_t *h)
{
    struct conn *c = h->data;
    struct conn **pp = &c->s->conns;
    while (*pp != c)
        pp = &(*pp)->next;
    *pp = c->next;
    c->s->open--;
    free(c->out);
    free(c);
}

static void conn_close(struct conn *c)
{
    if (!uv_is_closing((uv_handle_t *)&c->tcp))
        uv_close((uv_handle_t *)&c->tcp, conn_closed);
}

static void conn_written(uv_write_t *wr, int status)
{
    conn_close(wr->data);
}

static void conn_answer(struct conn *c)
{
    struct srv *s = c->s;
    const char *line;

    switch (s->mode) {
    case SRV_200:
        line = "HTTP/1.1 200 OK";
        break;
    case SRV_302:
        line = "HTTP/1.1 302 Found";
        break;
    case SRV_404:
        line = "HTTP/1.1 404 Not Found";
        break;
    case SRV_503:
        line = "HTTP/1.1 503 Service Unavailable";
        break;
    case SRV_GARBAGE:
        line = "SSH-2.0-OpenSSH_9.2";
        break;
    case SRV_LONG:
        line = NULL;
        break;
    default:
        return;
    }
    if (line != NULL) {
        c->out = orch_xasprintf("%s\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok", line);
    } else {
        c->out = orch_xmalloc(6001);
        memcpy(c->out, "HTTP/1.1 200 ", 13);
        memset(c->out + 13, 'x', 6000 - 13);
        c->out[6000] = '\0';
    }
    c->answered = true;
    s->answers++;
    if (s->mode != SRV_200 && s->mode != SRV_302)
        s->fails_sent++;
    uv_buf_t b = uv_buf_init(c->out, (unsigned)strlen(c->out));
    c->wr.data = c;
    if (uv_write(&c->wr, (uv_stream_t *)&c->tcp, &b, 1, conn_written) < 0)
        conn_close(c);
}

static void conn_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct conn *c = h->data;
    buf->base = c->req + c->len;
    buf->len = sizeof(c->req) - 1 - c->len;
}

static void conn_read(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct conn *c = st->data;
    if (n < 0) {
        conn_close(c);
        return;
    }
    c->len += (size_t)n;
    c->req[c->len] = '\0';
    if (!c->answered && strstr(c->req, "\r\n\r\n") != NULL) {
        snprintf(c->s->last_req, sizeof(c->s->last_req), "%s", c->req);
        conn_answer(c);
    }
    if (c->len == sizeof(c->req) - 1)
        conn_close(c);
}

static void srv_accept(uv_stream_t *l, int status)
{
    struct srv *s = l->data;
    struct conn *c = orch_xcalloc(1, sizeof(*c));

    assert_int_equal(status, 0);
    c->s = s;
    uv_tcp_init(&loop, &c->tcp);
    c->tcp.data = c;
    c->next = s->conns;
    s->conns = c;
    assert_int_equal(uv_accept(l, (uv_stream_t *)&c->tcp), 0);
    s->accepted++;
    s->open++;
    if (s->open > s->max_open)
        s->max_open = s->open;
    if (s->mode == SRV_HANGUP) {
        conn_close(c);
        return;
    }
    if (s->mode == SRV_GREETING) {
        static char hello[] = "SSH-2.0-test\r\n";
        uv_buf_t b = uv_buf_init(hello, sizeof(hello) - 1);
        uv_try_write((uv_stream_t *)&c->tcp, &b, 1);
    }
    uv_read_start((uv_stream_t *)&c->tcp, conn_alloc, conn_read);
}

static void srv_start(struct srv *s, enum srv_mode mode)
{
    struct sockaddr_in a;
    struct sockaddr_storage name;
    int len = sizeof(name);

    memset(s, 0, sizeof(*s));
    s->mode = mode;
    uv_ip4_addr("127.0.0.1", 0, &a);
    assert_int_equal(uv_tcp_init(&loop, &s->listener), 0);
    s->listener.data = s;
    assert_int_equal(uv_tcp_bind(&s->listener, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&s->listener, 64, srv_accept), 0);
    assert_int_equal(uv_tcp_getsockname(&s->listener, (struct sockaddr *)&name, &len), 0);
    s->port = ntohs(((struct sockaddr_in *)&name)->sin_port);
    s->listening = true;
}

static void srv_stop(struct srv *s)
{
    if (s->listening && !uv_is_closing((uv_handle_t *)&s->listener))
        uv_close((uv_handle_t *)&s->listener, NULL);
    for (struct conn *c = s->conns; c != NULL; c = c->next)
        conn_close(c);
}

/* Stops the server and runs the loop until its handles are gone, so *s may be reused. */
static void srv_stop_wait(struct srv *s)
{
    srv_stop(s);
    while (s->conns != NULL || (s->listening && !uv_is_closing((uv_handle_t *)&s->listener)))
        uv_run(&loop, UV_RUN_ONCE);
    uv_run(&loop, UV_RUN_NOWAIT);
    memset(s, 0, sizeof(*s));
}

/* A port on 127.0.0.1 where nothing listens: bound once by us, then closed. */
static int closed_port(void)
{
    struct sockaddr_in a;
    struct sockaddr_storage name;
    int len = sizeof(name);
    uv_tcp_t t;

    uv_ip4_addr("127.0.0.1", 0, &a);
    uv_tcp_init(&loop, &t);
    assert_int_equal(uv_tcp_bind(&t, (struct sockaddr *)&a, 0), 0);
    assert_int_equal(uv_tcp_getsockname(&t, (struct sockaddr *)&name, &len), 0);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ntohs(((struct sockaddr_in *)&name)->sin_port);
}

/* ---- recorded changes ------------------------------------------------------------------------ */

struct event {
    char id[32];
    enum health_status old_status, new_status;
    int fails_sent; /* the server's count when the change was reported */
    int accepted;
};

static struct event events[64];
static size_t n_events;
static struct health_prober *prober;
static char unwatch_in_callback[32]; /* an id on_change unwatches when it changes */

static void on_change(void *data, const char *id, enum health_status o, enum health_status n)
{
    assert_ptr_equal(data, &events);
    assert_int_not_equal(o, n);
    assert_true(n_events < ORCH_ARRAY_LEN(events));
    struct event *e = &events[n_events++];
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->old_status = o;
    e->new_status = n;
    e->fails_sent = srv.fails_sent;
    e->accepted = srv.accepted;
    if (strcmp(id, unwatch_in_callback) == 0)
        health_prober_unwatch(prober, id);
}

/* ---- loop helpers ------------------------------------------------------------------------------
 */

static void wake_cb(uv_timer_t *t)
{
}

/* Runs the loop until pred() holds or ms pass; returns pred(). A 5 ms timer keeps UV_RUN_ONCE
 * returning so the predicate is checked often. */
static bool run_until(bool (*pred)(void), int64_t ms)
{
    uv_timer_t wake;
    int64_t deadline = orch_now_mono_ms() + ms;
    bool ok;

    uv_timer_init(&loop, &wake);
    uv_timer_start(&wake, wake_cb, 5, 5);
    while (!(ok = pred != NULL && pred()) && orch_now_mono_ms() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&wake, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ok;
}

static const char *want_id;
static enum health_status want_status;

static bool status_reached(void)
{
    return health_prober_status(prober, want_id) == want_status;
}

static bool wait_status(const char *id, enum health_status s, int64_t ms)
{
    want_id = id;
    want_status = s;
    return run_until(status_reached, ms);
}

static int want_accepted;
static bool accepted_reached(void)
{
    return srv.accepted >= want_accepted;
}

static bool no_conn_open(void)
{
    return srv.open == 0;
}

static struct spec_health probe_cfg(enum spec_probe_kind kind, int64_t interval, int64_t timeout,
                                    int retries)
{
    return (struct spec_health){.kind = kind,
                                .http_path = kind == SPEC_PROBE_HTTP ? "/healthz" : NULL,
                                .port_index = 0,
                                .interval_ms = interval,
                                .timeout_ms = timeout,
                                .retries = retries};
}

/* Long enough ago that the first probe is due at once. */
static int64_t started_long_ago(void)
{
    return orch_now_wall_ms() - 60000;
}

static int setup(void **state)
{
    struct health_prober_options o = {.on_change = on_change, .data = &events};
    assert_int_equal(uv_loop_init(&loop), 0);
    n_events = 0;
    unwatch_in_callback[0] = '\0';
    prober = health_prober_new(&loop, NULL, &o);
    return 0;
}

/* Frees the prober (possibly with probes in flight), stops the server and proves that every
 * handle was closed: uv_loop_close fails with UV_EBUSY otherwise, and ASan sees any leak. */
static int teardown(void **state)
{
    health_prober_free(prober);
    prober = NULL;
    srv_stop(&srv);
    while (uv_run(&loop, UV_RUN_DEFAULT) != 0)
        ;
    assert_int_equal(uv_loop_close(&loop), 0);
    memset(&srv, 0, sizeof(srv));
    return 0;
}

/* ---- tests ------------------------------------------------------------------------------------
 */

static void test_http_transitions(void **state)
{
    struct orch_error err = {0};
    struct spec_health cfg = probe_cfg(SPEC_PROBE_HTTP, 100, 500, 2);
    char host[64];

    srv_start(&srv, SRV_200);
    assert_int_equal(
        health_prober_watch(prober, "c1", &cfg, "127.0.0.1", srv.port, started_long_ago(), &err),
        0);
    assert_int_equal(health_prober_status(prober, "c1"), HEALTH_STARTING);
    assert_string_equal(health_prober_last_error(prober, "c1"), "");
    assert_true(wait_status("c1", HEALTH_HEALTHY, 3000));

    /* The request: the configured path, a Host header naming the endpoint, no keep-alive. */
    snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%d\r\n", srv.port);
    assert_true(strncmp(srv.last_req, "GET /healthz HTTP/1.1\r\n", 23) == 0);
    assert_non_null(strstr(srv.last_req, host));
    assert_non_null(strstr(srv.last_req, "\r\nConnection: close\r\n"));

    /* Unhealthy after exactly `retries` failed answers. */
    srv.mode = SRV_503;
    srv.fails_sent = 0;
    assert_true(wait_status("c1", HEALTH_UNHEALTHY, 3000));
    assert_string_equal(health_prober_last_error(prober, "c1"), "HTTP 503");
    /* 3xx is healthy too, and recovery needs no restart. */
    srv.mode = SRV_302;
    assert_true(wait_status("c1", HEALTH_HEALTHY, 3000));
    assert_string_equal(health_prober_last_error(prober, "c1"), "");

    assert_int_equal(n_events, 3);
    assert_int_equal(events[0].old_status, HEALTH_STARTING);
    assert_int_equal(events[0].new_status, HEALTH_HEALTHY);
    assert_int_equal(events[1].old_status, HEALTH_HEALTHY);
    assert_int_equal(events[1].new_status, HEALTH_UNHEALTHY);
    assert_int_equal(events[1].fails_sent, 2);
    assert_int_equal(events[2].old_status, HEALTH_UNHEALTHY);
    assert_int_equal(events[2].new_status, HEALTH_HEALTHY);
    assert_string_equal(events[2].id, "c1");
    /* One probe at a time, and every connection closed after its answer. */
    assert_int_equal(srv.max_open, 1);

    struct health_state st;
    assert_true(health_prober_state(prober, "c1", &st));
    assert_int_equal(st.status, HEALTH_HEALTHY);
    assert_true(st.last_success);
    assert_false(health_prober_state(prober, "nope", &st));
}

static void test_tcp(void **state)
{
    struct orch_error err = {0};
    struct spec_health cfg = probe_cfg(SPEC_PROBE_TCP, 100, 500, 2);
    int dead = closed_port();

    srv_start(&srv, SRV_SILENT); /* a tcp probe only needs the connection accepted */
    assert_int_equal(
        health_prober_watch(prober, "up", &cfg, "127.0.0.1", srv.port, started_long_ago(), &err),
        0);
    assert_int_equal(
        health_prober_watch(prober, "down", &cfg, "127.0.0.1", dead, started_long_ago(), &err), 0);
    assert_int_equal(health_prober_count(prober), 2);
    assert_true(wait_status("up", HEALTH_HEALTHY, 3000));
    assert_true(wait_status("down", HEALTH_UNHEALTHY, 3000));
    assert_non_null(strstr(health_prober_last_error(prober, "down"), "connection refused"));
    assert_non_null(strstr(health_prober_last_error(prober, "down"), "127.0.0.1:"));

    size_t n_down = 0;
    for (size_t i = 0; i < n_events; i++)
        if (strcmp(events[i].id, "down") == 0) {
            n_down++;
            assert_int_equal(events[i].old_status, HEALTH_STARTING);
            assert_int_equal(events[i].new_status, HEALTH_UNHEALTHY);
        }
    assert_int_equal(n_down, 1);
    /* The tcp probe closes what it opened. */
    assert_true(run_until(no_conn_open, 2000));
}

/* A peer that accepts and hangs up at once (docker-proxy with nothing behind it) is down. */
static void test_tcp_hangup(void **state)
{
    struct orch_error err = {0};
    struct spec_health cfg = probe_cfg(SPEC_PROBE_TCP, 100, 1000, 2);

    srv_start(&srv, SRV_HANGUP);
    assert_int_equal(
        health_prober_watch(prober, "proxy", &cfg, "127.0.0.1", srv.port, started_long_ago(), &err),
        0);
    assert_true(wait_status("proxy", HEALTH_UNHEALTHY, 3000));
    assert_non_null(
        strstr(health_prober_last_error(prober, "proxy"), "closed the connection at once"));
    assert_int_equal(srv.accepted, 2);
    /* A server that speaks first (SSH, SMTP) is up at once. */
    srv.mode = SRV_GREETING;
    assert_true(wait_status("proxy", HEALTH_HEALTHY, 3000));
}

/* A server that accepts and never answers: each probe times out and counts as one failure;
 * with timeout > interval the ticks in between start nothing. */
static void test_timeout(void **state)
{
    struct orch_error err = {0};
    struct spec_health cfg = probe_cfg(SPEC_PROBE_HTTP, 100, 150, 2);

    srv_start(&srv, SRV_SILENT);
    assert_int_equal(
        health_prober_watch(prober, "slow", &cfg, "127.0.0.1", srv.port, started_long_ago(), &err),
        0);
    assert_true(wait_status("slow", HEALTH_UNHEALTHY, 3000));
    assert_string_equal(health_prober_last_error(prober, "slow"), "timed out after 150ms");
    assert_int_equal(n_events, 1);
    assert_int_equal(events[0].accepted, 2);
    assert_int_equal(srv.max_open, 1);
}

static void test_bad_answers(void **state)
{
    static const struct {
        enum srv_mode mode;
        const char *want;
    } t[] = {
        {SRV_404, "HTTP 404"},
        {SRV_HANGUP, "connection closed before a status line"},
        {SRV_GARBAGE, "not an HTTP/1.x status line"},
        {SRV_LONG, "status line longer than 4096 bytes"},
    };
    struct orch_error err = {0};
    struct spec_health cfg = probe_cfg(SPEC_PROBE_HTTP, 100, 1000, 1);

    for (size_t i = 0; i < ORCH_ARRAY_LEN(t); i++) {
        srv_start(&srv, t[i].mode);
        assert_int_equal(health_prober_watch(prober, "bad", &cfg, "127.0.0.1", srv.port,
                                             started_long_ago(), &err),
                         0);
        if (!wait_status("bad", HEALTH_UNHEALTHY, 3000))
            fail_msg("case %zu: still %s", i,
                     health_status_name(health_prober_status(prober, "bad")));
        const char *e = health_prober_last_error(prober, "bad");
        if (strstr(e, t[i].want) == NULL)
            fail_msg("case %zu: last error '%s', want '%s'", i, e, t[i].want);
        health_prober_unwatch(prober, "bad");
        srv_stop_wait(&srv);
    }
}

/* Unwatch while a probe is connected and waiting: nothing is reported afterwards, the probe's
 * connection is closed and its memory freed (ASan). */
static void test_unwatch_mid_probe(void **state)
{
    struct orch_error err = {0};
    struct spec_health cfg = probe_cfg(SPEC_PROBE_HTTP, 50, 5000, 1);

    srv_start(&srv, SRV_SILENT);
    assert_int_equal(
        health_prober_watch(prober, "gone", &cfg, "127.0.0.1", srv.port, started_long_ago(), &err),
        0);
    want_accepted = 1;
    assert_true(run_until(accepted_reached, 3000));
    assert_int_equal(srv.open, 1);
    health_prober_unwatch(prober, "gone");
    assert_int_equal(health_prober_status(prober, "gone"), HEALTH_NONE);
    assert_null(health_prober_last_error(prober, "gone"));
    assert_int_equal(health_prober_count(prober), 0);
    health_prober_unwatch(prober, "gone"); /* unknown ids are ignored */
    assert_true(run_until(no_conn_open, 2000));
    run_until(NULL, 200);
    assert_int_equal(n_events, 0);
    assert_int_equal(srv.accepted, 1);

    /* Again, but the prober is freed with the probe in flight (teardown). */
    assert_int_equal(
        health_prober_watch(prober, "freed", &cfg, "127.0.0.1", srv.port, started_long_ago(), &err),
        0);
    want_accepted = 2;
    assert_true(run_until(accepted_reached, 3000));
}

/* Unwatch a probe whose connect has not completed: a prepare handle runs after the timers
 * (where the first tick starts the connect) and before the poll that would complete it. */
static void unwatch_prepare_cb(uv_prepare_t *h)
{
    health_prober_unwatch(prober, "x");
    uv_prepare_stop(h);
}

static void test_unwatch_before_connect(void **state)
{
    struct orch_error err = {0};
    uv_prepare_t prep;

    srv_start(&srv, SRV_200);
    uv_prepare_init(&loop, &prep);
    for (int i = 0; i < 20; i++) {
        struct spec_health cfg =
            probe_cfg(i % 2 == 0 ? SPEC_PROBE_TCP : SPEC_PROBE_HTTP, 1000, 1000, 1);
        assert_int_equal(
            health_prober_watch(prober, "x", &cfg, "127.0.0.1", srv.port, started_long_ago(), &err),
            0);
        uv_prepare_start(&prep, unwatch_prepare_cb);
        uv_run(&loop, UV_RUN_NOWAIT);
        assert_int_equal(health_prober_count(prober), 0);
    }
    uv_close((uv_handle_t *)&prep, NULL);
    run_until(NULL, 100);
    assert_int_equal(n_events, 0);
    /* The server answered nobody: every probe was gone before it could send its request. */
    assert_int_equal(srv.answers, 0);
}

static void test_unwatch_in_callback(void **state)
{
    struct orch_error err = {0};
    struct spec_health cfg = probe_cfg(SPEC_PROBE_HTTP, 50, 500, 1);

    srv_start(&srv, SRV_503);
    snprintf(unwatch_in_callback, sizeof(unwatch_in_callback), "a");
    assert_int_equal(
        health_prober_watch(prober, "a", &cfg, "127.0.0.1", srv.port, started_long_ago(), &err), 0);
    assert_int_equal(
        health_prober_watch(prober, "b", &cfg, "127.0.0.1", srv.port, started_long_ago(), &err), 0);
    assert_true(wait_status("b", HEALTH_UNHEALTHY, 3000));
    assert_int_equal(health_prober_status(prober, "a"), HEALTH_NONE);
    assert_int_equal(health_prober_count(prober), 1);
    srv.mode = SRV_200;
    assert_true(wait_status("b", HEALTH_HEALTHY, 3000));
    size_t n_a = 0;
    for (size_t i = 0; i < n_events; i++)
        n_a += strcmp(events[i].id, "a") == 0;
    assert_int_equal(n_a, 1);
}

static void test_watch_idempotent(void **state)
{
    struct orch_error err = {0};
    struct spec_health cfg = probe_cfg(SPEC_PROBE_HTTP, 50, 500, 1);
    int64_t started = started_long_ago();

    srv_start(&srv, SRV_200);
    assert_int_equal(health_prober_watch(prober, "i", &cfg, "127.0.0.1", srv.port, started, &err),
                     0);
    assert_true(wait_status("i", HEALTH_HEALTHY, 3000));
    /* The same arguments (another copy of the config) change nothing. */
    struct spec_health same = probe_cfg(SPEC_PROBE_HTTP, 50, 500, 1);
    char path[] = "/healthz";
    same.http_path = path;
    same.port = "http";
    assert_int_equal(health_prober_watch(prober, "i", &same, "127.0.0.1", srv.port, started, &err),
                     0);
    assert_int_equal(health_prober_status(prober, "i"), HEALTH_HEALTHY);
    assert_int_equal(health_prober_count(prober), 1);

    /* Any difference restarts the watch from starting, without a change callback. */
    static const char *other_paths[] = {"/ready", NULL};
    struct spec_health diff[] = {
        probe_cfg(SPEC_PROBE_HTTP, 60, 500, 1), probe_cfg(SPEC_PROBE_HTTP, 50, 400, 1),
        probe_cfg(SPEC_PROBE_HTTP, 50, 500, 2), probe_cfg(SPEC_PROBE_TCP, 50, 500, 1),
        probe_cfg(SPEC_PROBE_HTTP, 50, 500, 1),
    };
    diff[4].http_path = (char *)other_paths[0];
    for (size_t i = 0; i < ORCH_ARRAY_LEN(diff); i++) {
        size_t before = n_events;
        assert_int_equal(
            health_prober_watch(prober, "i", &diff[i], "127.0.0.1", srv.port, started, &err), 0);
        if (health_prober_status(prober, "i") != HEALTH_STARTING)
            fail_msg("case %zu: not restarted", i);
        assert_int_equal(n_events, before);
        assert_true(wait_status("i", HEALTH_HEALTHY, 3000));
    }
    /* A different start time or endpoint restarts it too. */
    assert_int_equal(
        health_prober_watch(prober, "i", &diff[4], "127.0.0.1", srv.port, started - 1, &err), 0);
    assert_int_equal(health_prober_status(prober, "i"), HEALTH_STARTING);
    assert_true(wait_status("i", HEALTH_HEALTHY, 3000));
    assert_int_equal(
        health_prober_watch(prober, "i", &diff[4], "0.0.0.0", srv.port, started - 1, &err), 0);
    assert_int_equal(health_prober_status(prober, "i"), HEALTH_STARTING);
    assert_true(wait_status("i", HEALTH_HEALTHY, 3000));
    /* The wildcard address was probed on loopback. */
    char host[64];
    snprintf(host, sizeof(host), "\r\nHost: 127.0.0.1:%d\r\n", srv.port);
    assert_non_null(strstr(srv.last_req, host));
    assert_true(strncmp(srv.last_req, "GET /ready HTTP/1.1\r\n", 21) == 0);

    /* No probe at all unwatches. */
    struct spec_health none = {.kind = SPEC_PROBE_NONE};
    assert_int_equal(health_prober_watch(prober, "i", &none, NULL, 0, started, &err), 0);
    assert_int_equal(health_prober_status(prober, "i"), HEALTH_NONE);
    assert_int_equal(health_prober_count(prober), 0);
}

static void test_watch_invalid(void **state)
{
    static char *argv[] = {"/bin/true", NULL};
    static const struct {
        const char *id;
        enum spec_probe_kind kind;
        const char *path;
        const char *host;
        int port;
        const char *want;
    } t[] = {
        {"", SPEC_PROBE_TCP, NULL, "127.0.0.1", 80, "empty instance id"},
        {"x", SPEC_PROBE_HTTP, "/h", NULL, 80, "not published"},
        {"x", SPEC_PROBE_TCP, NULL, "127.0.0.1", 0, "not published"},
        {"x", SPEC_PROBE_TCP, NULL, "127.0.0.1", 65536, "not published"},
        {"x", SPEC_PROBE_TCP, NULL, "localhost", 80, "not an IP address"},
        {"x", SPEC_PROBE_HTTP, "healthz", "127.0.0.1", 80, "must start with '/'"},
        {"x", SPEC_PROBE_HTTP, NULL, "127.0.0.1", 80, "must start with '/'"},
        {"x", SPEC_PROBE_HTTP, "/a b", "127.0.0.1", 80, "space or a control character"},
        {"x", SPEC_PROBE_HTTP, "/a\r\nX-Injected: 1", "127.0.0.1", 80, "control character"},
        {"x", SPEC_PROBE_EXEC, NULL, NULL, 0, "need a docker client"},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(t); i++) {
        struct orch_error err = {0};
        struct spec_health cfg = probe_cfg(t[i].kind, 100, 100, 1);
        cfg.http_path = (char *)t[i].path;
        if (t[i].kind == SPEC_PROBE_EXEC) {
            cfg.exec_argv = argv;
            cfg.exec_argc = 1;
        }
        int r = health_prober_watch(prober, t[i].id, &cfg, t[i].host, t[i].port, 0, &err);
        if (r != -ORCH_E_INVALID || strstr(err.msg, t[i].want) == NULL)
            fail_msg("case %zu: rc %d '%s', want '%s'", i, r, err.msg, t[i].want);
    }
    struct orch_error err = {0};
    struct spec_health cfg = probe_cfg(SPEC_PROBE_EXEC, 100, 100, 1);
    assert_int_equal(health_prober_watch(prober, "x", &cfg, NULL, 0, 0, &err), -ORCH_E_INVALID);
    assert_non_null(strstr(err.msg, "exec without a command"));
    assert_int_equal(health_prober_count(prober), 0);
}

/* Failures inside start_period do not count: the instance stays starting however many. */
static void test_start_period(void **state)
{
    struct orch_error err = {0};
    struct spec_health cfg = probe_cfg(SPEC_PROBE_HTTP, 30, 500, 1);
    cfg.start_period_ms = 60000;

    srv_start(&srv, SRV_503);
    assert_int_equal(health_prober_watch(prober, "sp", &cfg, "127.0.0.1", srv.port,
                                         orch_now_wall_ms() - 30, &err),
                     0);
    want_accepted = 5;
    assert_true(run_until(accepted_reached, 3000));
    run_until(NULL, 50);
    assert_int_equal(health_prober_status(prober, "sp"), HEALTH_STARTING);
    assert_string_equal(health_prober_last_error(prober, "sp"), "HTTP 503");
    assert_int_equal(n_events, 0);
    /* The first success ends the start period: the next failure counts. */
    srv.mode = SRV_200;
    assert_true(wait_status("sp", HEALTH_HEALTHY, 3000));
    srv.mode = SRV_503;
    assert_true(wait_status("sp", HEALTH_UNHEALTHY, 3000));
}

/* A fresh instance is probed at once, then every start_interval until its first verdict, then
 * every interval. */
static void test_first_probe_at_once_then_brisk(void **state)
{
    struct orch_error err = {0};
    struct spec_health cfg = probe_cfg(SPEC_PROBE_HTTP, 2000, 500, 3);
    cfg.start_interval_ms = 50;

    srv_start(&srv, SRV_503);
    assert_int_equal(
        health_prober_watch(prober, "f", &cfg, "127.0.0.1", srv.port, orch_now_wall_ms(), &err), 0);
    want_accepted = 3;
    assert_true(run_until(accepted_reached, 400)); /* at once, then every 50ms: not 2s */
    assert_int_equal(health_prober_status(prober, "f"), HEALTH_STARTING);
    srv.mode = SRV_200;
    assert_true(wait_status("f", HEALTH_HEALTHY, 300));
    int seen = srv.accepted;
    run_until(NULL, 500);
    assert_int_equal(srv.accepted, seen); /* healthy: the next probe is an interval away */
}

/* Brisk probing never makes a starting instance unhealthy sooner than the interval would. */
static void test_brisk_failures_paced(void **state)
{
    struct orch_error err = {0};
    struct spec_health cfg = probe_cfg(SPEC_PROBE_HTTP, 600, 500, 1);
    cfg.start_interval_ms = 30;

    srv_start(&srv, SRV_503);
    int64_t t0 = orch_now_wall_ms();
    assert_int_equal(health_prober_watch(prober, "p", &cfg, "127.0.0.1", srv.port, t0, &err), 0);
    want_accepted = 5;
    assert_true(run_until(accepted_reached, 500));
    assert_int_equal(health_prober_status(prober, "p"), HEALTH_STARTING);
    assert_true(wait_status("p", HEALTH_UNHEALTHY, 2000));
    assert_true(orch_now_wall_ms() - t0 >= 600);
}

/* Many instances at once, each with its own timer and connection. */
static void test_many(void **state)
{
    struct orch_error err = {0};
    struct spec_health cfg = probe_cfg(SPEC_PROBE_HTTP, 50, 1000, 1);
    char id[16];

    srv_start(&srv, SRV_200);
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof(id), "m%d", i);
        assert_int_equal(
            health_prober_watch(prober, id, &cfg, "127.0.0.1", srv.port, started_long_ago(), &err),
            0);
    }
    for (int i = 0; i < 40; i++) {
        snprintf(id, sizeof(id), "m%d", i);
        assert_true(wait_status(id, HEALTH_HEALTHY, 3000));
    }
    assert_int_equal(n_events, 40);
    /* Unwatch half while their probes are anywhere in flight. */
    for (int i = 0; i < 40; i += 2) {
        snprintf(id, sizeof(id), "m%d", i);
        health_prober_unwatch(prober, id);
    }
    assert_int_equal(health_prober_count(prober), 20);
    run_until(NULL, 150);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_http_transitions),
        T(test_tcp),
        T(test_tcp_hangup),
        T(test_timeout),
        T(test_bad_answers),
        T(test_unwatch_mid_probe),
        T(test_unwatch_before_connect),
        T(test_unwatch_in_callback),
        T(test_watch_idempotent),
        T(test_watch_invalid),
        T(test_start_period),
        T(test_first_probe_at_once_then_brisk),
        T(test_brisk_failures_paced),
        T(test_many),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
