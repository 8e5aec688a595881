#define _GNU_SOURCE /* strcasestr */
/* The executor against a scripted fake engine, for faults the real engine cannot be made to
 * show on demand: a create that fails with 500, a start the engine refuses, the engine going
 * away in the middle of a pass; and status from the daemon's view. The fake serves HTTP on a unix
 * socket from its own thread and loop (the reconciler runs its loop synchronously); DOCKER_HOST
 * points the reconciler at it. The real engine is exercised by tests/integration/. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "base/util.h"
#include "desired/desired.h"
#include "reconcile/reconcile.h"
#include "spec/spec.h"
#include "store/store.h"

/* ---- the fake engine ---------------------------------------------------------------------- */

enum scenario {
    SC_CREATE_500,   /* every create fails with 500 */
    SC_START_REFUSE, /* creates succeed, every start is refused (400) */
    SC_ENGINE_GONE,  /* the engine dies during the create: no answer, nothing listens */
    SC_LIST_ONE,     /* one running instance, published on a port where nothing listens */
};

struct fake {
    uv_loop_t loop;
    uv_pipe_t server;
    uv_async_t stop;
    pthread_t thread;
    char path[108];
    enum scenario sc;
    int creates, starts, lists; /* read by the test only after the thread ended */
};

struct conn {
    uv_pipe_t pipe;
    struct fake *f;
    struct orch_buf in;
};

static void conn_freed(uv_handle_t *h)
{
    struct conn *c = h->data;
    orch_buf_free(&c->in);
    free(c);
}

static void write_done(uv_write_t *w, int status)
{
    free(w->data);
    free(w);
}

static void reply(struct conn *c, int status, const char *body)
{
    struct orch_buf b = {0};
    orch_buf_printf(&b,
                    "HTTP/1.1 %d X\r\nApi-Version: 1.41\r\nContent-Type: application/json\r\n"
                    "Content-Length: %zu\r\n\r\n%s",
                    status, strlen(body), body);
    uv_write_t *w = orch_xmalloc(sizeof(*w));
    uv_buf_t ub = uv_buf_init(b.data, (unsigned)b.len);
    w->data = b.data;
    if (uv_write(w, (uv_stream_t *)&c->pipe, &ub, 1, write_done) < 0) {
        free(b.data);
        free(w);
    }
}

static const char list_one[] =
    "[{\"Id\":\"abc0123456789def\",\"Names\":[\"/t-web-1\"],\"Created\":1000,"
    "\"Ports\":[{\"IP\":\"127.0.0.1\",\"PrivatePort\":8080,\"PublicPort\":1,"
    "\"Type\":\"tcp\"}],\"Labels\":{\"orch.app\":\"t\",\"orch.service\":\"web\","
    "\"orch.revision\":\"1\"},\"State\":\"running\"}]";

/* Answers one request; false when the connection was dropped. */
static bool route(struct conn *c, const char *method, const char *path)
{
    struct fake *f = c->f;
    if (strcmp(path, "/_ping") == 0) {
        reply(c, 200, "OK");
    } else if (strstr(path, "/containers/json") != NULL) {
        f->lists++;
        reply(c, 200, f->sc != SC_LIST_ONE ? "[]" : list_one);
    } else if (strstr(path, "/networks?") != NULL && strcmp(method, "GET") == 0) {
        /* the app network, found by name */
        reply(c, 200, "[{\"Name\":\"orch-t\",\"Id\":\"n1\",\"Labels\":{\"orch.app\":\"t\"}}]");
    } else if (strstr(path, "/networks/") != NULL && strcmp(method, "GET") == 0) {
        reply(c, 200, "{\"Name\":\"orch-t\",\"Id\":\"n1\",\"Labels\":{\"orch.app\":\"t\"}}");
    } else if (strstr(path, "/images/") != NULL) {
        reply(c, 200, "{\"Id\":\"sha256:0123\",\"RepoTags\":[\"orch-demo:1\"]}");
    } else if (strstr(path, "/containers/create") != NULL) {
        f->creates++;
        if (f->sc == SC_ENGINE_GONE) {
            /* the engine dies: this answer never comes, and nothing listens any more */
            uv_close((uv_handle_t *)&c->pipe, conn_freed);
            uv_close((uv_handle_t *)&f->server, NULL);
            unlink(f->path);
            return false;
        }
        if (f->sc == SC_CREATE_500)
            reply(c, 500, "{\"message\":\"boom\"}");
        else
            reply(c, 201, "{\"Id\":\"c0ffee0123456789\",\"Warnings\":[]}");
    } else if (strstr(path, "/start") != NULL) {
        f->starts++;
        reply(c, 400, "{\"message\":\"exec: \\\"/nope\\\": no such file or directory\"}");
    } else {
        reply(c, 200, "{}");
    }
    return true;
}

static void conn_process(struct conn *c)
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
        memmove(c->in.data, c->in.data + head + clen, c->in.len - head - clen);
        c->in.len -= head + clen;
        c->in.data[c->in.len] = '\0';
        /* the version prefix (/v1.41) is ignored by the routes */
        if (!route(c, method, path))
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
    struct conn *c = s->data;
    if (n < 0) {
        if (!uv_is_closing((uv_handle_t *)&c->pipe))
            uv_close((uv_handle_t *)&c->pipe, conn_freed);
    } else if (n > 0) {
        orch_buf_append(&c->in, buf->base, (size_t)n);
        conn_process(c);
    }
    free(buf->base);
}

static void on_connection(uv_stream_t *server, int status)
{
    struct fake *f = server->data;
    struct conn *c = orch_xcalloc(1, sizeof(*c));
    c->f = f;
    uv_pipe_init(&f->loop, &c->pipe, 0);
    c->pipe.data = c;
    if (uv_accept(server, (uv_stream_t *)&c->pipe) == 0)
        uv_read_start((uv_stream_t *)&c->pipe, on_alloc, on_read);
    else
        uv_close((uv_handle_t *)&c->pipe, conn_freed);
}

static void close_any(uv_handle_t *h, void *arg)
{
    if (!uv_is_closing(h))
        uv_close(h, h->data == arg || h->type != UV_NAMED_PIPE ? NULL : conn_freed);
}

static void on_stop(uv_async_t *a)
{
    struct fake *f = a->data;
    uv_walk(&f->loop, close_any, f);
}

static void *fake_main(void *arg)
{
    struct fake *f = arg;
    uv_run(&f->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void fake_start(struct fake *f, enum scenario sc)
{
    memset(f, 0, sizeof(*f));
    f->sc = sc;
    assert_int_equal(uv_loop_init(&f->loop), 0);
    snprintf(f->path, sizeof(f->path), "/tmp/orch-fake-reconcile-%d.sock", (int)getpid());
    unlink(f->path);
    assert_int_equal(uv_pipe_init(&f->loop, &f->server, 0), 0);
    f->server.data = f;
    assert_int_equal(uv_pipe_bind(&f->server, f->path), 0);
    assert_int_equal(uv_listen((uv_stream_t *)&f->server, 64, on_connection), 0);
    assert_int_equal(uv_async_init(&f->loop, &f->stop, on_stop), 0);
    f->stop.data = f;
    char host[200];
    snprintf(host, sizeof(host), "unix://%s", f->path);
    setenv("DOCKER_HOST", host, 1);
    assert_int_equal(pthread_create(&f->thread, NULL, fake_main, f), 0);
}

static void fake_stop(struct fake *f)
{
    uv_async_send(&f->stop);
    pthread_join(f->thread, NULL);
    assert_int_equal(uv_loop_close(&f->loop), 0);
    unlink(f->path);
}

/* ---- harness: a store with one app applied ------------------------------------------------ */

static const char spec_text[] = "app: t\n"
                                "services:\n"
                                "  web:\n"
                                "    image: orch-demo:1\n"
                                "    replicas: 1\n";

static const char probed_spec_text[] = "app: t\n"
                                       "services:\n"
                                       "  web:\n"
                                       "    image: orch-demo:1\n"
                                       "    ports: [{name: http, container: 8080}]\n"
                                       "    health: {http: /healthz}\n";

struct env {
    char dir[64];
    struct store *s;
    struct fake f;
    struct reconciler *r;
};

static void env_start(struct env *e, enum scenario sc)
{
    const char *text = sc == SC_LIST_ONE ? probed_spec_text : spec_text;
    memset(e, 0, sizeof(*e));
    snprintf(e->dir, sizeof(e->dir), "/tmp/orch-recon-test-XXXXXX");
    assert_non_null(mkdtemp(e->dir));
    struct orch_error err = {0};
    assert_int_equal(store_open(e->dir, &e->s, &err), 0);
    struct spec_app app;
    struct spec_diags diags = {0};
    struct spec_parse_options po = {.file = "t.yaml", .base_dir = "/tmp"};
    assert_int_equal(spec_parse(text, strlen(text), &po, &app, &diags, &err), 0);
    struct desired_apply_options ao = {.spec_path = "", .message = "test", .now_ms = 1000};
    struct desired_diff d;
    assert_int_equal(desired_apply(e->s, &app, false, &ao, &d, &err), 0);
    desired_diff_free(&d);
    spec_app_free(&app);
    fake_start(&e->f, sc);
    struct reconcile_options ro = {.timeout_ms = 30000};
    assert_int_equal(reconciler_new(e->s, &ro, &e->r, &err), 0);
}

static void env_stop(struct env *e)
{
    reconciler_free(e->r);
    fake_stop(&e->f);
    store_close(e->s);
    char *cmd = orch_xasprintf("rm -rf '%s'", e->dir);
    assert_int_equal(system(cmd), 0);
    free(cmd);
}

/* The newest event of the service whose kind is kind, or NULL (new string). */
static char *event_of(struct store *s, const char *kind)
{
    struct store_event *v = NULL;
    size_t n = 0;
    struct orch_error err = {0};
    assert_int_equal(store_events_list(s, "t", "web", 0, &v, &n, &err), 0);
    char *found = NULL;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].kind, kind) == 0) {
            free(found);
            found = orch_xstrdup(v[i].message);
        }
    store_events_free(v, n);
    return found;
}

/* A create the engine fails with 500 counts as a crash: replaced at once, then backing off,
 * and the third fails the rollout (no earlier revision to roll back to). */
static void test_create_500(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, SC_CREATE_500);
    struct reconcile_report rep;
    struct orch_error err = {0};
    assert_int_equal(reconcile_app(e.r, "t", false, &rep, &err), 0);
    assert_int_equal(rep.outcome, RECONCILE_FAILED);
    assert_non_null(strstr(rep.message, "crash loop"));
    char *ev = event_of(e.s, "backoff");
    assert_non_null(ev);
    assert_non_null(strstr(ev, "could not be created or started"));
    free(ev);
    struct store_rollout ro;
    assert_int_equal(store_rollout_latest(e.s, "t", "web", &ro, &err), 0);
    assert_int_equal(ro.state, STORE_ROLLOUT_FAILED);
    store_rollout_free(&ro);
    env_stop(&e);
    assert_int_equal(e.f.creates, 3); /* not retried: a create is not idempotent */
    assert_int_equal(e.f.starts, 0);
}

/* A start the engine refuses is counted like a crash too. */
static void test_start_refused(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, SC_START_REFUSE);
    struct reconcile_report rep;
    struct orch_error err = {0};
    assert_int_equal(reconcile_app(e.r, "t", false, &rep, &err), 0);
    assert_int_equal(rep.outcome, RECONCILE_FAILED);
    assert_non_null(strstr(rep.message, "crash loop"));
    env_stop(&e);
    assert_int_equal(e.f.creates, 3);
    assert_int_equal(e.f.starts, 3);
}

/* The engine going away mid-pass ends the work with an environment error (exit 3) once the
 * next request finds nothing listening (after the client's retry budget), not a failed
 * rollout: the store keeps the rollout progressing for the next run. The create whose
 * connection died counts as refused, like any create without an answer. */
static void test_engine_gone(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, SC_ENGINE_GONE);
    struct reconcile_report rep;
    struct orch_error err = {0};
    assert_int_equal(reconcile_app(e.r, "t", false, &rep, &err), -ORCH_E_ENV);
    assert_int_equal(err.code, ORCH_E_ENV);
    struct store_rollout ro;
    struct orch_error e2 = {0};
    assert_int_equal(store_rollout_latest(e.s, "t", "web", &ro, &e2), 0);
    assert_int_equal(ro.state, STORE_ROLLOUT_PROGRESSING);
    store_rollout_free(&ro);
    env_stop(&e);
    assert_int_equal(e.f.creates, 1);
}

/* status and get: the health of each instance from the daemon's view when a daemon runs on
 * the state dir, from one probe otherwise (and for instances the daemon has not judged). */
static void observe_one(struct env *e, const char *health, int healthy, bool daemon_view)
{
    struct reconcile_service_status *v = NULL;
    size_t n = 0;
    struct orch_error err = {0};
    assert_int_equal(reconcile_observe(e->r, "t", &v, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_int_equal(v[0].n_instances, 1);
    assert_string_equal(v[0].instances[0].health, health);
    assert_string_equal(v[0].instances[0].endpoints[0], "127.0.0.1:1");
    assert_int_equal(v[0].healthy, healthy);
    assert_int_equal(v[0].running, 1);
    assert_int_equal(v[0].daemon_view, daemon_view);
    reconcile_status_free(v, n);
}

static void test_status_daemon_view(void **state)
{
    (void)state;
    struct env e;
    env_start(&e, SC_LIST_ONE);
    struct orch_error err = {0};
    /* no daemon: probed once; nothing listens on port 1 */
    observe_one(&e, "unhealthy", 0, false);

    /* a daemon holds the state dir and published its verdict and a replacement */
    int fd = -1;
    assert_int_equal(store_daemon_lock(e.dir, &fd, &err), 0);
    struct store_instance_health h = {.id = "abc0123456789def", .health = "healthy"};
    assert_int_equal(store_instance_health_set(e.s, "t", "web", &h, 1, &err), 0);
    struct store_status st = {.app = "t",
                              .service = "web",
                              .revision = 1,
                              .desired = 1,
                              .replaced = "exited",
                              .replaced_ms = 77};
    assert_int_equal(store_status_put(e.s, &st, &err), 0);
    observe_one(&e, "healthy", 1, true);
    struct reconcile_service_status *v = NULL;
    size_t n = 0;
    assert_int_equal(reconcile_observe(e.r, NULL, &v, &n, &err), 0); /* get: every app */
    assert_int_equal(n, 1);
    assert_string_equal(v[0].replaced, "exited");
    assert_int_equal(v[0].replaced_ms, 77);
    reconcile_status_free(v, n);

    /* an instance the daemon has not judged yet is probed once */
    assert_int_equal(store_instance_health_set(e.s, "t", "web", NULL, 0, &err), 0);
    observe_one(&e, "unhealthy", 0, true);

    /* the daemon gone: probed once again */
    assert_int_equal(store_instance_health_set(e.s, "t", "web", &h, 1, &err), 0);
    close(fd);
    observe_one(&e, "unhealthy", 0, false);
    env_stop(&e);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_create_500),
        cmocka_unit_test(test_start_refused),
        cmocka_unit_test(test_engine_gone),
        cmocka_unit_test(test_status_daemon_view),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
