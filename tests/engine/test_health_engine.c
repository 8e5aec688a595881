/* Integration test of the probe runners against the real engine (DOCKER_HOST or the default
 * socket) and a container of orch-demo:1: exec probes through the engine and an http probe on
 * the container's published port follow the demo's /admin/unhealthy and /admin/healthy; an exec
 * in a missing container, an exec past its timeout, and unwatch or free while an exec is in
 * flight. The container carries orch.app=htest-<pid> and is removed in the group teardown.
 * Skips when the engine or the image is missing; never pulls. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"
#include "health/health_probe.h"

static const char *image = "orch-demo:1";
static uv_loop_t loop;
static struct docker_client *client;
static struct health_prober *prober;
static char app_label[64];
static char *cid;      /* the test container */
static int host_port;  /* its 8080/tcp on 127.0.0.1 */
static char *deaf_cid; /* a container that publishes 8080 but listens on 9090 */
static int deaf_port;
static int64_t started_ms;
static bool have_engine;

struct event {
    char id[80];
    enum health_status new_status;
    char last_error[256];
};
static struct event events[64];
static size_t n_events;

static void on_change(void *data, const char *id, enum health_status o, enum health_status n)
{
    assert_true(n_events < ORCH_ARRAY_LEN(events));
    struct event *e = &events[n_events++];
    snprintf(e->id, sizeof(e->id), "%s", id);
    e->new_status = n;
    snprintf(e->last_error, sizeof(e->last_error), "%s", health_prober_last_error(prober, id));
}

static int sync1(int r, struct docker_sync *s, struct orch_error *err)
{
    if (r < 0)
        return r;
    return docker_sync_wait(client, s, 1, err);
}

static void wake_cb(uv_timer_t *t)
{
}

static bool wait_status(const char *id, enum health_status st, int64_t ms)
{
    uv_timer_t wake;
    int64_t deadline = orch_now_mono_ms() + ms;
    bool ok;

    uv_timer_init(&loop, &wake);
    uv_timer_start(&wake, wake_cb, 10, 10);
    while (!(ok = id != NULL && health_prober_status(prober, id) == st) &&
           orch_now_mono_ms() < deadline)
        uv_run(&loop, UV_RUN_ONCE);
    uv_close((uv_handle_t *)&wake, NULL);
    uv_run(&loop, UV_RUN_NOWAIT);
    return ok;
}

static void run_for(int64_t ms)
{
    wait_status(NULL, HEALTH_NONE, ms);
}

/* Runs `cmd` in the test container to completion (to steer the demo server). */
static void exec_sync(const char *const *argv, size_t argc)
{
    struct orch_strv cmd = {0};
    struct orch_error err = {0};
    struct docker_sync s = {0};
    _cleanup_free_ char *exec_id = NULL;

    for (size_t i = 0; i < argc; i++)
        orch_strv_push(&cmd, argv[i]);
    assert_int_equal(
        sync1(docker_exec_create(client, cid, &cmd, &exec_id, docker_sync_done, &s, &err), &s,
              &err),
        0);
    memset(&s, 0, sizeof(s));
    assert_int_equal(
        sync1(docker_exec_start(client, exec_id, docker_sync_done, &s, &err), &s, &err), 0);
    for (int i = 0; i < 200; i++) {
        struct docker_exec_info ei;
        memset(&s, 0, sizeof(s));
        assert_int_equal(
            sync1(docker_exec_inspect(client, exec_id, &ei, docker_sync_done, &s, &err), &s, &err),
            0);
        bool running = ei.running;
        int code = ei.exit_code;
        docker_exec_info_free(&ei);
        if (!running) {
            assert_int_equal(code, 0);
            orch_strv_free(&cmd);
            return;
        }
        run_for(20);
    }
    orch_strv_free(&cmd);
    fail_msg("exec did not finish");
}

static void remove_test_containers(void)
{
    const char *labels[] = {app_label};
    struct docker_container_list l = {0};
    struct docker_sync s = {0};
    struct orch_error err = {0};

    if (sync1(docker_containers_list(client, labels, 1, &l, docker_sync_done, &s, &err), &s,
              &err) == 0)
        for (size_t i = 0; i < l.n; i++) {
            memset(&s, 0, sizeof(s));
            sync1(docker_container_remove(client, l.v[i].id, true, docker_sync_done, &s, &err), &s,
                  &err);
        }
    docker_container_list_free(&l);
}

/* Creates and starts an orch-demo:1 container labelled for this run with 8080 published on
 * 127.0.0.1 (serving on PORT=port_env when not NULL); returns its id, host port, start time. */
static int run_container(const char *port_env, char **id, int *hport, int64_t *started)
{
    struct orch_error err = {0};
    struct docker_sync s = {0};
    struct docker_port_spec port = {.port = 8080};
    struct docker_container_create cc = {.image = image, .ports = &port, .n_ports = 1};
    struct docker_container_info ci;

    docker_kvs_add(&cc.labels, "orch.app", app_label + strlen("orch.app="));
    if (port_env != NULL)
        docker_kvs_add(&cc.env, "PORT", port_env);
    int r =
        sync1(docker_container_create(client, NULL, &cc, id, docker_sync_done, &s, &err), &s, &err);
    docker_kvs_free(&cc.labels);
    docker_kvs_free(&cc.env);
    assert_int_equal(r, 0);
    memset(&s, 0, sizeof(s));
    assert_int_equal(
        sync1(docker_container_start(client, *id, docker_sync_done, &s, &err), &s, &err), 0);
    memset(&s, 0, sizeof(s));
    assert_int_equal(
        sync1(docker_container_inspect(client, *id, &ci, docker_sync_done, &s, &err), &s, &err), 0);
    *hport = 0;
    for (size_t i = 0; i < ci.n_ports; i++)
        if (ci.ports[i].container_port == 8080)
            *hport = ci.ports[i].host_port;
    if (started != NULL)
        *started = ci.started_at_ms;
    docker_container_info_free(&ci);
    assert_int_not_equal(*hport, 0);
    return 0;
}

static int group_setup(void **state)
{
    struct orch_error err = {0};
    struct docker_endpoint ep;
    struct docker_sync s = {0};
    struct docker_image_info ii;

    assert_int_equal(uv_loop_init(&loop), 0);
    snprintf(app_label, sizeof(app_label), "orch.app=htest-%d", (int)getpid());
    if (docker_endpoint_from_env(&ep, &err) < 0)
        return 0;
    int r = docker_client_new(&loop, &ep, NULL, &client, &err);
    docker_endpoint_free(&ep);
    if (r < 0)
        return 0;
    if (sync1(docker_ping(client, docker_sync_done, &s, &err), &s, &err) < 0) {
        fprintf(stderr, "no engine: %s\n", err.msg);
        return 0;
    }
    memset(&s, 0, sizeof(s));
    r = sync1(docker_image_inspect(client, image, &ii, docker_sync_done, &s, &err), &s, &err);
    docker_image_info_free(&ii);
    if (r < 0) {
        fprintf(stderr, "no %s on the engine (scripts/setup builds it): %s\n", image, err.msg);
        return 0;
    }

    assert_int_equal(run_container(NULL, &cid, &host_port, &started_ms), 0);
    assert_true(started_ms > 0);
    /* Publishes 8080 but serves on 9090: docker-proxy accepts, then finds nobody behind it. */
    assert_int_equal(run_container("9090", &deaf_cid, &deaf_port, NULL), 0);
    have_engine = true;
    return 0;
}

static int group_teardown(void **state)
{
    if (client != NULL) {
        remove_test_containers();
        docker_client_close(client);
    }
    while (uv_run(&loop, UV_RUN_DEFAULT) != 0)
        ;
    free(cid);
    free(deaf_cid);
    assert_int_equal(uv_loop_close(&loop), 0);
    return 0;
}

static int setup(void **state)
{
    struct health_prober_options o = {.on_change = on_change, .exec_poll_ms = 20};
    if (!have_engine)
        skip();
    n_events = 0;
    prober = health_prober_new(&loop, client, &o);
    return 0;
}

static int teardown(void **state)
{
    health_prober_free(prober);
    prober = NULL;
    run_for(50);
    return 0;
}

static struct spec_health exec_cfg(char **argv, size_t argc, int64_t interval, int64_t timeout,
                                   int retries)
{
    return (struct spec_health){.kind = SPEC_PROBE_EXEC,
                                .exec_argv = argv,
                                .exec_argc = argc,
                                .port_index = -1,
                                .interval_ms = interval,
                                .timeout_ms = timeout,
                                .retries = retries};
}

static char *probe_argv[] = {"/orch-demo", "probe", NULL};

/* Exec and published-port http probes follow the demo's health both ways. */
static void test_exec_and_http_follow_the_app(void **state)
{
    static const char *sick[] = {"/orch-demo", "probe", "8080", "/admin/unhealthy"};
    static const char *well[] = {"/orch-demo", "probe", "8080", "/admin/healthy"};
    struct orch_error err = {0};
    struct spec_health ex = exec_cfg(probe_argv, 2, 200, 3000, 2);
    struct spec_health http = {.kind = SPEC_PROBE_HTTP,
                               .http_path = "/healthz",
                               .interval_ms = 100,
                               .timeout_ms = 1000,
                               .retries = 2};

    assert_int_equal(health_prober_watch(prober, cid, &ex, NULL, 0, started_ms, &err), 0);
    assert_int_equal(
        health_prober_watch(prober, "published", &http, "127.0.0.1", host_port, started_ms, &err),
        0);
    assert_true(wait_status(cid, HEALTH_HEALTHY, 20000));
    assert_true(wait_status("published", HEALTH_HEALTHY, 10000));

    exec_sync(sick, 4);
    assert_true(wait_status(cid, HEALTH_UNHEALTHY, 20000));
    assert_string_equal(health_prober_last_error(prober, cid), "exit code 1");
    assert_true(wait_status("published", HEALTH_UNHEALTHY, 10000));
    assert_string_equal(health_prober_last_error(prober, "published"), "HTTP 503");

    exec_sync(well, 4);
    assert_true(wait_status(cid, HEALTH_HEALTHY, 20000));
    assert_true(wait_status("published", HEALTH_HEALTHY, 10000));

    size_t n_exec = 0;
    for (size_t i = 0; i < n_events; i++)
        if (strcmp(events[i].id, cid) == 0) {
            static const enum health_status seq[] = {HEALTH_HEALTHY, HEALTH_UNHEALTHY,
                                                     HEALTH_HEALTHY};
            assert_true(n_exec < 3);
            assert_int_equal(events[i].new_status, seq[n_exec]);
            n_exec++;
        }
    assert_int_equal(n_exec, 3);
}

/* Through docker-proxy: the tcp probe tells a container that listens on its published port
 * from one that does not, as the http probe does. */
static void test_published_tcp(void **state)
{
    struct orch_error err = {0};
    struct spec_health tcp = {
        .kind = SPEC_PROBE_TCP, .interval_ms = 100, .timeout_ms = 1000, .retries = 2};
    struct spec_health http = {.kind = SPEC_PROBE_HTTP,
                               .http_path = "/healthz",
                               .interval_ms = 100,
                               .timeout_ms = 1000,
                               .retries = 2};
    int64_t old = orch_now_wall_ms() - 60000;

    assert_int_equal(health_prober_watch(prober, "tcp-up", &tcp, "127.0.0.1", host_port, old, &err),
                     0);
    assert_int_equal(
        health_prober_watch(prober, "tcp-deaf", &tcp, "127.0.0.1", deaf_port, old, &err), 0);
    assert_int_equal(
        health_prober_watch(prober, "http-deaf", &http, "127.0.0.1", deaf_port, old, &err), 0);
    assert_true(wait_status("tcp-up", HEALTH_HEALTHY, 10000));
    assert_true(wait_status("tcp-deaf", HEALTH_UNHEALTHY, 10000));
    assert_non_null(strstr(health_prober_last_error(prober, "tcp-deaf"), "at once"));
    assert_true(wait_status("http-deaf", HEALTH_UNHEALTHY, 10000));
    assert_int_equal(health_prober_status(prober, "tcp-up"), HEALTH_HEALTHY);
}

static void test_exec_missing_container(void **state)
{
    struct orch_error err = {0};
    struct spec_health ex = exec_cfg(probe_argv, 2, 100, 3000, 1);

    assert_int_equal(health_prober_watch(prober, "0000000000000000deadbeef", &ex, NULL, 0,
                                         orch_now_wall_ms() - 60000, &err),
                     0);
    assert_true(wait_status("0000000000000000deadbeef", HEALTH_UNHEALTHY, 10000));
    assert_int_equal(n_events, 1);
    assert_non_null(strstr(events[0].last_error, "exec"));
    assert_non_null(strstr(events[0].last_error, "0000000000000000deadbeef"));
}

/* An exec the engine cannot finish within the timeout counts as a failure. */
static void test_exec_timeout(void **state)
{
    struct orch_error err = {0};
    struct spec_health ex = exec_cfg(probe_argv, 2, 100, 1, 1);

    assert_int_equal(health_prober_watch(prober, cid, &ex, NULL, 0, started_ms, &err), 0);
    assert_true(wait_status(cid, HEALTH_UNHEALTHY, 10000));
    assert_int_equal(n_events, 1);
    assert_string_equal(events[0].last_error, "timed out after 1ms");
    /* Later ticks either probe again (timing out) or count the engine's late answer. */
    run_for(500);
    assert_int_equal(health_prober_status(prober, cid), HEALTH_UNHEALTHY);
    const char *e = health_prober_last_error(prober, cid);
    assert_true(strcmp(e, "timed out after 1ms") == 0 ||
                strcmp(e, "the engine has not answered the previous exec probe") == 0);
}

/* Unwatch (and free) while an exec request is out: the engine's answer arrives later and only
 * releases memory (ASan checks), nothing is reported. */
static bool free_in_prepare;
static void prepare_cb(uv_prepare_t *h)
{
    if (free_in_prepare) {
        health_prober_free(prober);
        prober = NULL;
    } else {
        health_prober_unwatch(prober, cid);
    }
    uv_prepare_stop(h);
}

static void test_exec_unwatch_in_flight(void **state)
{
    struct orch_error err = {0};
    struct spec_health ex = exec_cfg(probe_argv, 2, 5000, 3000, 1);
    uv_prepare_t prep;

    uv_prepare_init(&loop, &prep);
    for (int round = 0; round < 2; round++) {
        free_in_prepare = round == 1;
        /* Started long ago: the first tick runs in the next loop pass and sends exec create. */
        assert_int_equal(
            health_prober_watch(prober, cid, &ex, NULL, 0, orch_now_wall_ms() - 60000, &err), 0);
        uv_prepare_start(&prep, prepare_cb);
        uv_run(&loop, UV_RUN_NOWAIT);
        struct docker_client_stats st;
        docker_client_stats(client, &st);
        assert_true(st.in_flight >= 1 || st.attempts > 0);
        run_for(1000);
        assert_int_equal(n_events, 0);
        if (prober == NULL) /* freed in round 1: a new one for teardown */
            prober = health_prober_new(&loop, client, NULL);
    }
    uv_close((uv_handle_t *)&prep, NULL);
    run_for(20);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_exec_and_http_follow_the_app), T(test_published_tcp),
        T(test_exec_missing_container),       T(test_exec_timeout),
        T(test_exec_unwatch_in_flight),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
