#define _GNU_SOURCE /* strcasestr */
/* The client's I/O behaviour against a scripted fake engine on a unix socket, served from the
 * same libuv loop: negotiation, retries (and the lack of them for creates), status mapping,
 * size and time limits, streams, concurrency, close with requests pending, unreachable
 * endpoints. The real engine is exercised by tests/engine/test_docker_engine.c. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "docker/docker_client.h"

/* ---- the fake engine ---------------------------------------------------------------------- */

struct fake_reply {
    int status;
    const char *body; /* NULL = "" */
    int delay_ms;
    bool hang;         /* never answer */
    bool drop;         /* close the connection without answering */
    bool chunked_open; /* a streaming 200 whose body is `chunks`, left open */
    bool chunked_end;  /* same, then the terminating chunk */
    const char *const *chunks;
};

struct fake;
typedef void (*fake_route_fn)(struct fake *f, const char *method, const char *path,
                              const char *body, struct fake_reply *out);

struct fake_conn {
    uv_pipe_t pipe;
    uv_timer_t delay;
    struct fake *f;
    struct orch_buf in;
    struct fake_reply pending;
    struct fake_conn *next;
    int open_handles;
};

struct fake {
    uv_loop_t *loop;
    uv_pipe_t server;
    char path[108];
    const char *api_version;
    fake_route_fn route;
    struct orch_strv seen; /* "METHOD PATH" per request */
    struct fake_conn *conns;
    int hits; /* scratch counter for routes */
    size_t max_body_seen;
};

static void conn_freed(uv_handle_t *h)
{
    struct fake_conn *c = h->data;
    if (--c->open_handles == 0) {
        orch_buf_free(&c->in);
        free(c);
    }
}

static void conn_close(struct fake_conn *c)
{
    struct fake *f = c->f;
    for (struct fake_conn **p = &f->conns; *p; p = &(*p)->next) {
        if (*p == c) {
            *p = c->next;
            break;
        }
    }
    uv_close((uv_handle_t *)&c->pipe, conn_freed);
    uv_close((uv_handle_t *)&c->delay, conn_freed);
}

static void write_done(uv_write_t *w, int status)
{
    free(w->data);
    free(w);
}

static void conn_write(struct fake_conn *c, const char *s, size_t n)
{
    uv_write_t *w = orch_xmalloc(sizeof(*w));
    char *copy = orch_xstrndup(s, n);
    uv_buf_t b = uv_buf_init(copy, (unsigned)n);
    w->data = copy;
    if (uv_write(w, (uv_stream_t *)&c->pipe, &b, 1, write_done) < 0) {
        free(copy);
        free(w);
    }
}

static void conn_send_reply(struct fake_conn *c)
{
    struct fake_reply *r = &c->pending;
    struct fake *f = c->f;
    if (r->drop) {
        conn_close(c);
        return;
    }
    struct orch_buf b = {0};
    if (r->chunked_open || r->chunked_end) {
        orch_buf_printf(&b,
                        "HTTP/1.1 200 OK\r\nApi-Version: %s\r\nContent-Type: application/json"
                        "\r\nTransfer-Encoding: chunked\r\n\r\n",
                        f->api_version);
        for (const char *const *ch = r->chunks; ch && *ch; ch++)
            orch_buf_printf(&b, "%zx\r\n%s\r\n", strlen(*ch), *ch);
        if (r->chunked_end)
            orch_buf_puts(&b, "0\r\n\r\n");
    } else {
        const char *body = r->body ? r->body : "";
        orch_buf_printf(&b, "HTTP/1.1 %d X\r\n", r->status);
        if (f->api_version)
            orch_buf_printf(&b, "Api-Version: %s\r\n", f->api_version);
        orch_buf_printf(&b, "Content-Type: application/json\r\nContent-Length: %zu\r\n\r\n%s",
                        strlen(body), body);
    }
    conn_write(c, b.data, b.len);
    orch_buf_free(&b);
}

static void on_delay(uv_timer_t *t)
{
    conn_send_reply(t->data);
}

static void conn_process(struct fake_conn *c)
{
    for (;;) {
        char *end = c->in.data ? strstr(c->in.data, "\r\n\r\n") : NULL;
        if (end == NULL)
            return;
        size_t head = (size_t)(end - c->in.data) + 4;
        size_t clen = 0;
        const char *cl = strcasestr(c->in.data, "\r\nContent-Length:");
        if (cl != NULL && cl < end)
            clen = strtoul(cl + 17, NULL, 10);
        if (c->in.len < head + clen)
            return;
        char method[16] = "", path[2048] = "";
        sscanf(c->in.data, "%15s %2047s", method, path);
        char *body = orch_xstrndup(c->in.data + head, clen);
        if (clen > c->f->max_body_seen)
            c->f->max_body_seen = clen;
        memmove(c->in.data, c->in.data + head + clen, c->in.len - head - clen);
        c->in.len -= head + clen;
        c->in.data[c->in.len] = '\0';

        char line[2100];
        snprintf(line, sizeof(line), "%s %s", method, path);
        orch_strv_push(&c->f->seen, line);
        c->pending = (struct fake_reply){.status = 200, .body = "{}"};
        if (strcmp(path, "/_ping") == 0)
            c->pending.body = "OK";
        else
            c->f->route(c->f, method, path, body, &c->pending);
        free(body);
        if (c->pending.hang)
            return;
        if (c->pending.delay_ms > 0)
            uv_timer_start(&c->delay, on_delay, (uint64_t)c->pending.delay_ms, 0);
        else
            conn_send_reply(c);
        if (c->pending.drop)
            return;
    }
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    buf->base = orch_xmalloc(suggested);
    buf->len = suggested;
}

static void on_read(uv_stream_t *s, ssize_t n, const uv_buf_t *buf)
{
    struct fake_conn *c = s->data;
    if (n < 0) {
        conn_close(c);
    } else if (n > 0) {
        orch_buf_append(&c->in, buf->base, (size_t)n);
        conn_process(c);
    }
    free(buf->base);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct fake *f = server->data;
    struct fake_conn *c = orch_xcalloc(1, sizeof(*c));
    c->f = f;
    uv_pipe_init(f->loop, &c->pipe, 0);
    uv_timer_init(f->loop, &c->delay);
    c->pipe.data = c;
    c->delay.data = c;
    c->open_handles = 2;
    c->next = f->conns;
    f->conns = c;
    assert_int_equal(uv_accept(server, (uv_stream_t *)&c->pipe), 0);
    uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
}

static void fake_start(struct fake *f, uv_loop_t *loop, fake_route_fn route)
{
    f->loop = loop;
    f->route = route;
    if (f->api_version == NULL)
        f->api_version = "1.41";
    snprintf(f->path, sizeof(f->path), "/tmp/orch-fake-docker-%d.sock", (int)getpid());
    unlink(f->path);
    assert_int_equal(uv_pipe_init(loop, &f->server, 0), 0);
    f->server.data = f;
    assert_int_equal(uv_pipe_bind(&f->server, f->path), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->server, 64, on_connection), 0);
}

static void fake_stop(struct fake *f)
{
    while (f->conns)
        conn_close(f->conns);
    uv_close((uv_handle_t *)&f->server, NULL);
    unlink(f->path);
    orch_strv_free(&f->seen);
}

static size_t fake_count(const struct fake *f, const char *prefix)
{
    size_t n = 0;
    for (size_t i = 0; i < f->seen.n; i++)
        n += strncmp(f->seen.v[i], prefix, strlen(prefix)) == 0;
    return n;
}

/* ---- harness ------------------------------------------------------------------------------ */

struct env {
    uv_loop_t loop;
    struct fake fake;
    struct docker_client *client;
};

static struct docker_client *client_for(uv_loop_t *loop, const char *host,
                                        const struct docker_client_options *opts)
{
    struct docker_endpoint ep;
    struct orch_error err = {0};
    struct docker_client *c = NULL;
    struct docker_endpoint_env env = {.docker_host = host};
    assert_int_equal(docker_endpoint_parse(&env, &ep, &err), 0);
    assert_int_equal(docker_client_new(loop, &ep, opts, &c, &err), 0);
    docker_endpoint_free(&ep);
    return c;
}

static void env_start(struct env *e, fake_route_fn route, const char *api_version,
                      const struct docker_client_options *opts)
{
    memset(e, 0, sizeof(*e));
    uv_loop_init(&e->loop);
    e->fake.api_version = api_version;
    fake_start(&e->fake, &e->loop, route);
    char host[200];
    snprintf(host, sizeof(host), "unix://%s", e->fake.path);
    e->client = client_for(&e->loop, host, opts);
}

static void env_stop(struct env *e)
{
    docker_client_close(e->client);
    fake_stop(&e->fake);
    uv_run(&e->loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e->loop), 0);
}

static void route_ok(struct fake *f, const char *method, const char *path, const char *body,
                     struct fake_reply *out)
{
    if (strstr(path, "/containers/json"))
        out->body = "[{\"Id\":\"c1\",\"Names\":[\"/shop-web-1\"],\"State\":\"running\"}]";
    else if (strstr(path, "/json"))
        out->body = "{\"Id\":\"c1\",\"State\":{\"Status\":\"running\",\"Running\":true}}";
}

/* ---- tests -------------------------------------------------------------------------------- */

static void test_negotiation(void **state)
{
    (void)state;
    struct env e;
    struct docker_sync s[2] = {0};
    struct orch_error err = {0};
    struct docker_container_list l;
    struct docker_container_info ci;
    const char *labels[] = {"orch.app=shop"};

    /* A newer engine: orch speaks 1.41 to it; both requests wait for one ping. */
    env_start(&e, route_ok, "1.43", NULL);
    assert_string_equal(docker_client_api_version(e.client), "");
    assert_int_equal(docker_containers_list(e.client, labels, 1, &l, docker_sync_done, &s[0], &err),
                     0);
    assert_int_equal(docker_container_inspect(e.client, "c1", &ci, docker_sync_done, &s[1], &err),
                     0);
    assert_false(s[0].done); /* callbacks never run inside the call */
    assert_int_equal(docker_sync_wait(e.client, s, 2, &err), 0);
    assert_string_equal(docker_client_api_version(e.client), "1.41");
    assert_int_equal(fake_count(&e.fake, "GET /_ping"), 1);
    assert_int_equal(fake_count(&e.fake,
                                "GET /v1.41/containers/json?all=1&filters=%7B%22label%22%3A"
                                "%5B%22orch.app%3Dshop%22%5D%7D"),
                     1);
    assert_int_equal(fake_count(&e.fake, "GET /v1.41/containers/c1/json"), 1);
    assert_int_equal(l.n, 1);
    assert_string_equal(l.v[0].names.v[0], "shop-web-1");
    assert_true(ci.running);
    docker_container_list_free(&l);
    docker_container_info_free(&ci);
    env_stop(&e);

    /* An engine that is too old is an environment error, for every waiting request. */
    env_start(&e, route_ok, "1.39", NULL);
    memset(s, 0, sizeof(s));
    assert_int_equal(docker_ping(e.client, docker_sync_done, &s[0], &err), 0);
    assert_int_equal(docker_container_inspect(e.client, "c1", &ci, docker_sync_done, &s[1], &err),
                     0);
    assert_int_equal(docker_sync_wait(e.client, s, 2, &err), -ORCH_E_ENV);
    assert_non_null(strstr(err.msg, "API 1.39; orch needs 1.40 or newer"));
    assert_int_equal(s[1].err.code, ORCH_E_ENV);
    assert_int_equal(fake_count(&e.fake, "GET /v1."), 0);
    env_stop(&e);

    /* Something that answers HTTP without being an engine. */
    env_start(&e, route_ok, NULL, NULL);
    e.fake.api_version = NULL;
    memset(s, 0, sizeof(s));
    assert_int_equal(docker_ping(e.client, docker_sync_done, &s[0], &err), 0);
    assert_int_equal(docker_sync_wait(e.client, s, 1, &err), -ORCH_E_ENV);
    assert_non_null(strstr(err.msg, "no Api-Version header"));
    env_stop(&e);
}

/* 503 twice, then success: GETs are retried. Creates are never retried once sent. */
static void route_flaky(struct fake *f, const char *method, const char *path, const char *body,
                        struct fake_reply *out)
{
    if (strstr(path, "/containers/create")) {
        out->status = 503;
        out->body = "{\"message\":\"engine restarting\"}";
    } else if (strstr(path, "/exec")) {
        out->drop = true; /* connection reset after the request was sent */
    } else if (strstr(path, "/containers/c1/json") && f->hits++ < 2) {
        out->status = 503;
    } else if (strstr(path, "/containers/c2/json")) {
        out->drop = true;
    } else {
        route_ok(f, method, path, body, out);
    }
}

static void test_retries(void **state)
{
    (void)state;
    struct env e;
    struct docker_client_options o;
    struct docker_sync s[4] = {0};
    struct orch_error err = {0};
    struct docker_container_info ci, ci2;
    struct docker_container_create spec = {.image = "orch-demo:1"};
    struct orch_strv cmd = {0};
    char *id = NULL, *exec_id = NULL;
    struct docker_client_stats st;

    docker_client_options_default(&o);
    o.retry_initial_ms = 10;
    env_start(&e, route_flaky, NULL, &o);
    orch_strv_push(&cmd, "true");
    uint64_t t0 = uv_now(&e.loop);
    assert_int_equal(docker_container_inspect(e.client, "c1", &ci, docker_sync_done, &s[0], &err),
                     0);
    assert_int_equal(
        docker_container_create(e.client, "shop-web-1", &spec, &id, docker_sync_done, &s[1], &err),
        0);
    assert_int_equal(
        docker_exec_create(e.client, "c1", &cmd, &exec_id, docker_sync_done, &s[2], &err), 0);
    assert_int_equal(docker_container_inspect(e.client, "c2", &ci2, docker_sync_done, &s[3], &err),
                     0);
    docker_sync_wait(e.client, s, 4, &err);

    assert_int_equal(s[0].err.code, ORCH_E_OK);
    assert_int_equal(s[0].status, 200);
    assert_int_equal(fake_count(&e.fake, "GET /v1.41/containers/c1/json"), 3);
    /* Backoff 10 + 20 ms happened between the three attempts. */
    assert_true(uv_now(&e.loop) - t0 >= 30);

    assert_int_equal(s[1].err.code, ORCH_E_TRANSIENT);
    assert_int_equal(s[1].status, 503);
    assert_non_null(strstr(s[1].err.msg, "create container shop-web-1: engine error (HTTP 503)"));
    assert_int_equal(fake_count(&e.fake, "POST /v1.41/containers/create"), 1);
    assert_null(id);

    assert_int_equal(s[2].err.code, ORCH_E_TRANSIENT);
    assert_int_equal(fake_count(&e.fake, "POST /v1.41/containers/c1/exec"), 1);

    /* A dropped connection on a GET: retried up to max_attempts, then transient. (libcurl
     * itself may resend once on a reused connection, hence up to 8 arrivals for 4 attempts.) */
    assert_int_equal(s[3].err.code, ORCH_E_TRANSIENT);
    assert_in_range(fake_count(&e.fake, "GET /v1.41/containers/c2/json"), 4, 8);

    docker_client_stats(e.client, &st);
    assert_int_equal(st.retries, 2 + 3);
    assert_int_equal(st.in_flight, 0);
    docker_container_info_free(&ci);
    orch_strv_free(&cmd);
    env_stop(&e);
}

static void route_statuses(struct fake *f, const char *method, const char *path, const char *body,
                           struct fake_reply *out)
{
    if (strstr(path, "/start")) {
        out->status = 304;
        out->body = NULL;
    } else if (strstr(path, "/stop")) {
        out->status = 204;
        out->body = NULL;
    } else if (strstr(path, "/containers/create?name=dup")) {
        out->status = 409;
        out->body = "{\"message\":\"Conflict. The container name \\\"/dup\\\" is already in use\"}";
    } else if (strstr(path, "/containers/create")) {
        out->status = 404;
        out->body = "{\"message\":\"No such image: orch-nonexistent:1\"}";
    } else if (strstr(path, "/images/")) {
        out->status = 404;
        out->body = "{\"message\":\"no such image: orch-nonexistent:1: No such image: "
                    "orch-nonexistent:1\"}";
    } else if (strstr(path, "/containers/big/json")) {
        static char big[4096];
        memset(big, ' ', sizeof(big) - 1);
        big[0] = '{';
        big[sizeof(big) - 2] = '}';
        out->body = big;
    } else if (strstr(path, "/containers/slow/json")) {
        out->hang = true;
    }
}

static void test_statuses_and_limits(void **state)
{
    (void)state;
    struct env e;
    struct docker_client_options o;
    struct docker_sync s[7] = {0};
    struct orch_error err = {0};
    struct docker_container_create spec = {.image = "orch-nonexistent:1"};
    struct docker_container_info big, slow;
    struct docker_image_info ii;
    char *id1 = NULL, *id2 = NULL;

    docker_client_options_default(&o);
    o.max_response_bytes = 1024;
    o.request_timeout_ms = 300;
    env_start(&e, route_statuses, NULL, &o);
    uint64_t t0 = uv_now(&e.loop);
    assert_int_equal(docker_container_start(e.client, "c1", docker_sync_done, &s[0], &err), 0);
    assert_int_equal(docker_container_stop(e.client, "c1", 3, docker_sync_done, &s[1], &err), 0);
    assert_int_equal(
        docker_container_create(e.client, "x", &spec, &id1, docker_sync_done, &s[2], &err), 0);
    assert_int_equal(
        docker_container_create(e.client, "dup", &spec, &id2, docker_sync_done, &s[3], &err), 0);
    assert_int_equal(
        docker_image_inspect(e.client, "orch-nonexistent:1", &ii, docker_sync_done, &s[4], &err),
        0);
    assert_int_equal(docker_container_inspect(e.client, "big", &big, docker_sync_done, &s[5], &err),
                     0);
    assert_int_equal(
        docker_container_inspect(e.client, "slow", &slow, docker_sync_done, &s[6], &err), 0);
    docker_sync_wait(e.client, s, 7, &err);

    assert_int_equal(s[0].err.code, ORCH_E_OK); /* 304: already started */
    assert_int_equal(s[0].status, 304);
    assert_int_equal(s[1].err.code, ORCH_E_OK);
    assert_int_equal(fake_count(&e.fake, "POST /v1.41/containers/c1/stop?t=3"), 1);
    assert_int_equal(s[2].err.code, ORCH_E_NOTFOUND);
    assert_non_null(strstr(s[2].err.msg, "create container x: no such image: orch-nonexistent:1"));
    assert_int_equal(s[3].err.code, ORCH_E_DOCKER);
    assert_non_null(strstr(s[3].err.msg, "conflict"));
    assert_int_equal(s[4].err.code, ORCH_E_NOTFOUND);
    assert_non_null(strstr(s[4].err.msg, "no such image: orch-nonexistent:1 ("));
    assert_int_equal(fake_count(&e.fake, "GET /v1.41/images/orch-nonexistent:1/json"), 1);
    assert_int_equal(s[5].err.code, ORCH_E_DOCKER);
    assert_non_null(strstr(s[5].err.msg, "exceeds 1024 bytes"));
    assert_int_equal(s[6].err.code, ORCH_E_TRANSIENT);
    assert_non_null(strstr(s[6].err.msg, "no answer from the Docker engine within 300 ms"));
    assert_true(uv_now(&e.loop) - t0 < 3000);
    /* Never a pull. */
    assert_int_equal(fake_count(&e.fake, "POST /v1.41/images/create"), 0);

    /* Refused before anything is sent: bad names and bodies. */
    struct docker_sync never = {0};
    assert_int_equal(docker_container_inspect(e.client, "..", &big, docker_sync_done, &never, &err),
                     -ORCH_E_INVALID);
    assert_int_equal(
        docker_image_inspect(e.client, "a/../../containers/x", &ii, docker_sync_done, &never, &err),
        -ORCH_E_INVALID);
    assert_int_equal(docker_container_inspect(e.client, "", &big, docker_sync_done, &never, &err),
                     -ORCH_E_INVALID);
    spec.image = NULL;
    assert_int_equal(
        docker_container_create(e.client, "x", &spec, &id1, docker_sync_done, &never, &err),
        -ORCH_E_INVALID);
    assert_int_equal(docker_container_stop(e.client, "c1", -2, docker_sync_done, &never, &err),
                     -ORCH_E_INVALID);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    assert_false(never.done);
    env_stop(&e);
}

/* ---- networks: exact names, removal by id, owned creation ---------------------------------- */

#define NET_ID "9c2ab1dc1c6c37cee828b5b13678fb5a4e0d7c94c4b80d93576e98d8870b6d85"
#define NET_ID2 "0000000000000000000000000000000000000000000000000000000000000002"

static char net_create_body[512];

static void route_networks(struct fake *f, const char *method, const char *path, const char *body,
                           struct fake_reply *out)
{
    if (strcmp(method, "GET") == 0 &&
        (strcmp(path, "/v1.41/networks") == 0 || strncmp(path, "/v1.41/networks?", 16) == 0)) {
        /* The engine's name filter is a substring match: it answers the neighbours too. */
        out->body = "[{\"Id\":\"" NET_ID "\",\"Name\":\"orch-shop\",\"Containers\":{},"
                    "\"Labels\":{\"orch.app\":\"shop\",\"orch.state\":\"s1\"}},"
                    "{\"Id\":\"" NET_ID2 "\",\"Name\":\"orch-shop\","
                    "\"Labels\":{\"orch.app\":\"shop\"}},"
                    "{\"Id\":\"n3\",\"Name\":\"orch-shop-2\",\"Labels\":{}}]";
    } else if (strcmp(method, "GET") == 0 && strcmp(path, "/v1.41/networks/" NET_ID) == 0) {
        out->body = "{\"Id\":\"" NET_ID "\",\"Name\":\"orch-shop\",\"Containers\":{"
                    "\"c1\":{\"Name\":\"shop-web-1\",\"IPv4Address\":\"172.18.0.2/16\"}}}";
    } else if (strcmp(method, "POST") == 0 && strcmp(path, "/v1.41/networks/create") == 0) {
        snprintf(net_create_body, sizeof(net_create_body), "%s", body ? body : "");
        out->status = 201;
        out->body = "{\"Id\":\"" NET_ID "\",\"Warning\":\"\"}";
    } else if (strcmp(method, "DELETE") == 0 && strcmp(path, "/v1.41/networks/" NET_ID2) == 0) {
        out->status = 403;
        out->body = "{\"message\":\"error while removing network: network orch-shop id " NET_ID2
                    " has active endpoints\"}";
    } else if (strcmp(method, "DELETE") == 0) {
        out->status = 204;
    }
}

static void test_networks(void **state)
{
    (void)state;
    struct env e;
    struct docker_sync s[5] = {0};
    struct orch_error err = {0};
    struct docker_network_list found, all;
    struct docker_network net;
    char *id = NULL;
    const char *labels[] = {"orch.app=shop"};

    env_start(&e, route_networks, NULL, NULL);
    struct docker_network_filter by_name = {.name = "orch-shop", .labels = labels, .n_labels = 1};
    assert_int_equal(
        docker_networks_find(e.client, &by_name, &found, docker_sync_done, &s[0], &err), 0);
    struct docker_network_filter any = {0};
    assert_int_equal(docker_networks_find(e.client, &any, &all, docker_sync_done, &s[1], &err), 0);
    assert_int_equal(docker_network_inspect(e.client, NET_ID, &net, docker_sync_done, &s[2], &err),
                     0);
    assert_int_equal(docker_app_network_create(e.client, "orch-shop", "shop", "s1", &id,
                                               docker_sync_done, &s[3], &err),
                     0);
    assert_int_equal(docker_network_remove_id(e.client, NET_ID, docker_sync_done, &s[4], &err), 0);
    assert_int_equal(docker_sync_wait(e.client, s, 5, &err), 0);

    /* Both duplicates, not the neighbour the substring filter let through. */
    assert_int_equal(found.n, 2);
    assert_string_equal(found.v[0].id, NET_ID);
    assert_string_equal(docker_kvs_get(&found.v[0].labels, "orch.state"), "s1");
    assert_string_equal(found.v[1].id, NET_ID2);
    assert_null(docker_kvs_get(&found.v[1].labels, "orch.state"));
    assert_int_equal(fake_count(&e.fake,
                                "GET /v1.41/networks?filters=%7B%22label%22%3A%5B%22orch."
                                "app%3Dshop%22%5D%2C%22name%22%3A%5B%22orch-shop%22%5D%7D"),
                     1);
    assert_int_equal(all.n, 3);                                      /* no name: nothing filtered */
    assert_int_equal(fake_count(&e.fake, "GET /v1.41/networks"), 3); /* 2 lists, 1 inspect */
    assert_int_equal(fake_count(&e.fake, "GET /v1.41/networks?filters="), 1);
    assert_int_equal(fake_count(&e.fake, "GET /v1.41/networks?filters=%7B%22label%22%3A%5B%5D%7D"),
                     0);
    /* The containers attached, from inspect. */
    assert_int_equal(net.n_containers, 1);
    assert_string_equal(net.containers[0].id, "c1");
    assert_string_equal(net.containers[0].name, "shop-web-1");
    /* Created with both owner labels, once (never resent). */
    assert_string_equal(id, NET_ID);
    assert_non_null(strstr(net_create_body, "\"Name\":\"orch-shop\""));
    assert_non_null(strstr(net_create_body, "\"orch.app\":\"shop\""));
    assert_non_null(strstr(net_create_body, "\"orch.state\":\"s1\""));
    assert_int_equal(fake_count(&e.fake, "POST /v1.41/networks/create"), 1);
    assert_int_equal(fake_count(&e.fake, "DELETE /v1.41/networks/" NET_ID), 1);
    docker_network_list_free(&found);
    docker_network_list_free(&all);
    docker_network_free(&net);
    free(id);
    id = NULL;

    /* A network still in use is a refusal, not "not found". */
    memset(s, 0, sizeof(s));
    assert_int_equal(docker_network_remove_id(e.client, NET_ID2, docker_sync_done, &s[0], &err), 0);
    assert_int_equal(docker_sync_wait(e.client, s, 1, &err), -ORCH_E_DOCKER);
    assert_non_null(strstr(err.msg, "active endpoints"));

    /* Refused before anything is sent: a name or a short id where the full id is needed, an
     * empty name, an app network without its app. */
    struct docker_sync never = {0};
    size_t seen = e.fake.seen.n;
    assert_int_equal(
        docker_network_remove_id(e.client, "orch-shop", docker_sync_done, &never, &err),
        -ORCH_E_INVALID);
    assert_non_null(strstr(err.msg, "not a full network id"));
    assert_int_equal(
        docker_network_remove_id(e.client, "9c2ab1dc1c6c", docker_sync_done, &never, &err),
        -ORCH_E_INVALID);
    assert_int_equal(docker_network_remove_id(e.client, NULL, docker_sync_done, &never, &err),
                     -ORCH_E_INVALID);
    struct docker_network_filter empty = {.name = ""};
    assert_int_equal(docker_networks_find(e.client, &empty, &found, docker_sync_done, &never, &err),
                     -ORCH_E_INVALID);
    assert_int_equal(docker_app_network_create(e.client, "orch-shop", "", "s1", &id,
                                               docker_sync_done, &never, &err),
                     -ORCH_E_INVALID);
    uv_run(&e.loop, UV_RUN_NOWAIT);
    assert_false(never.done);
    assert_int_equal(e.fake.seen.n, seen);
    env_stop(&e);
}

/* ---- concurrency and close ---------------------------------------------------------------- */

static void route_slow_ok(struct fake *f, const char *method, const char *path, const char *body,
                          struct fake_reply *out)
{
    route_ok(f, method, path, body, out);
    out->delay_ms = strstr(path, "/_ping") ? 10 : 100;
}

static void test_concurrency(void **state)
{
    (void)state;
    struct env e;
    enum { N = 20 };
    struct docker_sync s[N] = {0};
    struct docker_container_info ci[N];
    struct orch_error err = {0};
    struct docker_client_stats st;

    env_start(&e, route_slow_ok, NULL, NULL);
    uint64_t t0 = uv_now(&e.loop);
    for (int i = 0; i < N; i++)
        assert_int_equal(
            docker_container_inspect(e.client, "c1", &ci[i], docker_sync_done, &s[i], &err), 0);
    assert_int_equal(docker_sync_wait(e.client, s, N, &err), 0);
    docker_client_stats(e.client, &st);
    print_message("max in flight %zu, %llu ms\n", st.max_in_flight,
                  (unsigned long long)(uv_now(&e.loop) - t0));
    assert_int_equal(st.max_in_flight, N);
    assert_int_equal(st.max_sockets, N); /* one connection each, all open at once */
    /* 20 answers delayed 100 ms each, in parallel: well under 20 x 100 ms. */
    assert_true(uv_now(&e.loop) - t0 < 1000);
    for (int i = 0; i < N; i++) {
        assert_string_equal(ci[i].id, "c1");
        docker_container_info_free(&ci[i]);
    }
    env_stop(&e);
}

static void route_hang(struct fake *f, const char *method, const char *path, const char *body,
                       struct fake_reply *out)
{
    out->hang = true;
}

struct close_probe {
    struct docker_client *c;
    int calls;
    struct orch_error err;
};

static void close_from_callback(void *data, long status, const struct orch_error *err)
{
    struct close_probe *p = data;
    p->calls++;
    p->err = *err;
    /* Closing from inside a callback is allowed. */
    docker_client_close(p->c);
}

static void test_close_pending(void **state)
{
    (void)state;
    struct env e;
    struct docker_sync s[3] = {0};
    struct orch_error err = {0};
    struct docker_container_info ci[3];

    env_start(&e, route_hang, NULL, NULL);
    for (int i = 0; i < 3; i++)
        assert_int_equal(
            docker_container_inspect(e.client, "c1", &ci[i], docker_sync_done, &s[i], &err), 0);
    /* Run until the three requests sit at the engine, then close. */
    while (fake_count(&e.fake, "GET /v1.41/") < 3)
        uv_run(&e.loop, UV_RUN_ONCE);
    docker_client_close(e.client);
    for (int i = 0; i < 3; i++) {
        assert_true(s[i].done);
        assert_non_null(strstr(s[i].err.msg, "cancelled"));
    }
    assert_int_equal(docker_ping(e.client, docker_sync_done, &s[0], &err), -ORCH_E_INTERNAL);
    fake_stop(&e.fake);
    uv_run(&e.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e.loop), 0);

    /* Close inside a completion callback while other requests are in flight. */
    env_start(&e, route_slow_ok, NULL, NULL);
    struct close_probe p = {.c = e.client};
    struct docker_sync other = {0};
    assert_int_equal(docker_ping(e.client, close_from_callback, &p, &err), 0);
    while (e.fake.seen.n < 1)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(
        docker_container_inspect(e.client, "c1", &ci[0], docker_sync_done, &other, &err), 0);
    while (p.calls == 0)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(p.calls, 1);
    assert_int_equal(p.err.code, ORCH_E_OK);
    assert_true(other.done);
    assert_int_equal(other.err.code, ORCH_E_TRANSIENT);
    fake_stop(&e.fake);
    uv_run(&e.loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&e.loop), 0);
}

/* ---- streams ------------------------------------------------------------------------------ */

static const char *const event_chunks[] = {
    "{\"Type\":\"container\",\"Action\":\"start\",\"Actor\":{\"ID\":\"c1\",\"Attributes\":"
    "{\"orch.app\":\"shop\"}}}\n{\"Type\":\"container\",",
    "\"Action\":\"die\",\"Actor\":{\"ID\":\"c1\"}}\nnot json\n",
    "{\"Type\":\"network\",\"Action\":\"create\"}\n",
    NULL,
};

static void route_events(struct fake *f, const char *method, const char *path, const char *body,
                         struct fake_reply *out)
{
    out->chunks = event_chunks;
    if (strstr(path, "end=1"))
        out->chunked_end = true;
    else
        out->chunked_open = true;
}

struct event_probe {
    struct docker_stream *stream;
    int events;
    char actions[8][32];
    int cancel_after;
    bool ended;
    struct orch_error end_err;
};

static void probe_event(void *data, const struct docker_event *ev)
{
    struct event_probe *p = data;
    snprintf(p->actions[p->events++], 32, "%s", ev->action);
    if (p->cancel_after && p->events == p->cancel_after)
        docker_stream_cancel(p->stream);
}

static void probe_end(void *data, long status, const struct orch_error *err)
{
    struct event_probe *p = data;
    p->ended = true;
    p->end_err = *err;
}

struct line_probe {
    int lines;
    bool ended;
    long status;
    struct orch_error end_err;
};

static void probe_line(void *data, const char *line, size_t len)
{
    struct line_probe *p = data;
    assert_int_equal(strlen(line), len);
    p->lines++;
}

static void probe_line_end(void *data, long status, const struct orch_error *err)
{
    struct line_probe *p = data;
    p->ended = true;
    p->status = status;
    p->end_err = *err;
}

static void test_events_stream(void **state)
{
    (void)state;
    struct env e;
    struct orch_error err = {0};
    const char *labels[] = {"orch.app=shop"};
    struct event_probe p = {.cancel_after = 2};

    env_start(&e, route_events, NULL, NULL);
    assert_int_equal(
        docker_events_watch(e.client, labels, 1, probe_event, probe_end, &p, &p.stream, &err), 0);
    /* Cancelled from inside its own callback: no more events, no end callback. */
    for (int i = 0; i < 200 && e.fake.seen.n < 2; i++)
        uv_run(&e.loop, UV_RUN_NOWAIT), usleep(1000);
    for (int i = 0; i < 50; i++)
        uv_run(&e.loop, UV_RUN_NOWAIT), usleep(1000);
    assert_int_equal(p.events, 2);
    assert_string_equal(p.actions[0], "start");
    assert_string_equal(p.actions[1], "die");
    assert_false(p.ended);
    assert_int_equal(fake_count(&e.fake, "GET /v1.41/events?filters=%7B%22label%22"), 1);

    /* An open stream cancelled from outside, then one the engine ends. */
    struct event_probe q = {0};
    assert_int_equal(
        docker_events_watch(e.client, NULL, 0, probe_event, probe_end, &q, &q.stream, &err), 0);
    while (q.events < 3)
        uv_run(&e.loop, UV_RUN_ONCE);
    docker_stream_cancel(q.stream);
    assert_false(q.ended);

    /* A raw stream that the engine ends: every line, then on_end with success. */
    struct line_probe lp = {0};
    struct docker_stream *raw = NULL;
    assert_int_equal(
        docker_stream_start(e.client, "/events?end=1", probe_line, probe_line_end, &lp, &raw, &err),
        0);
    while (!lp.ended)
        uv_run(&e.loop, UV_RUN_ONCE);
    assert_int_equal(lp.lines, 4); /* "not json" is a line too; events_watch skips it */
    assert_int_equal(lp.end_err.code, ORCH_E_OK);
    assert_int_equal(lp.status, 200);
    env_stop(&e);
}

/* ---- unreachable engines ------------------------------------------------------------------ */

static void test_unreachable(void **state)
{
    (void)state;
    static const char *hosts[] = {"unix:///nonexistent.sock", "tcp://127.0.0.1:1"};
    for (size_t i = 0; i < 2; i++) {
        uv_loop_t loop;
        struct docker_sync s = {0};
        struct orch_error err = {0};
        struct docker_client_options o;
        docker_client_options_default(&o);
        uv_loop_init(&loop);
        struct docker_client *c = client_for(&loop, hosts[i], &o);
        uint64_t t0 = uv_now(&loop);
        assert_int_equal(docker_ping(c, docker_sync_done, &s, &err), 0);
        assert_int_equal(docker_sync_wait(c, &s, 1, &err), -ORCH_E_ENV);
        uint64_t took = uv_now(&loop) - t0;
        print_message("%s: %s (%llu ms)\n", hosts[i], err.msg, (unsigned long long)took);
        char want[128];
        snprintf(want, sizeof(want), "cannot reach the Docker engine at %s: ", hosts[i]);
        assert_non_null(strstr(err.msg, want));
        /* Connection refusals are retried with backoff (100+200+400 ms), then given up. */
        assert_true(took >= 700 && took < 3000);
        docker_client_close(c);
        uv_run(&loop, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&loop), 0);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_negotiation),         cmocka_unit_test(test_retries),
        cmocka_unit_test(test_statuses_and_limits), cmocka_unit_test(test_networks),
        cmocka_unit_test(test_concurrency),         cmocka_unit_test(test_close_pending),
        cmocka_unit_test(test_events_stream),       cmocka_unit_test(test_unreachable),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
