/* Integration test of the docker module against the real engine (DOCKER_HOST or the default
 * socket): negotiation, concurrent create/start/list/inspect/stop/remove of labelled containers
 * on an app network, duplicate networks of one name (found exactly, removed by id), a missing image
 * (named in the error, never pulled), exec, volumes, the events stream, concurrency, and
 * unreachable endpoints. Everything it creates carries orch.app=dtest-<pid> and is removed in the
 * group teardown, even after a failure. Image: $ORCH_TEST_IMAGE, else orch-demo:1, else
 * orch-dockertest:dev (tests/engine/image). */
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

#define N_WEB 3

static uv_loop_t loop;
static struct docker_client *client;
static char app[64], app_label[96], network[96], volume[96];
static const char *image;

static int sync1(int r, struct docker_sync *s, struct orch_error *err)
{
    if (r < 0)
        return r;
    return docker_sync_wait(client, s, 1, err);
}

static bool image_exists(const char *ref)
{
    struct docker_image_info ii;
    struct docker_sync s = {0};
    struct orch_error err = {0};
    int r = sync1(docker_image_inspect(client, ref, &ii, docker_sync_done, &s, &err), &s, &err);
    docker_image_info_free(&ii);
    return r == 0;
}

static struct docker_client *new_client(uv_loop_t *l, struct orch_error *err)
{
    struct docker_endpoint ep;
    struct docker_client *c = NULL;
    if (docker_endpoint_from_env(&ep, err) < 0)
        return NULL;
    int r = docker_client_new(l, &ep, NULL, &c, err);
    docker_endpoint_free(&ep);
    return r < 0 ? NULL : c;
}

/* Removes everything labelled with this run's app: containers, the network, volumes. */
static void cleanup_app(void)
{
    const char *labels[] = {app_label};
    struct docker_container_list l = {0};
    struct docker_sync s = {0};
    struct orch_error err = {0};

    if (sync1(docker_containers_list(client, labels, 1, &l, docker_sync_done, &s, &err), &s,
              &err) == 0 &&
        l.n > 0) {
        struct docker_sync *rs = calloc(l.n, sizeof(*rs));
        for (size_t i = 0; i < l.n; i++)
            docker_container_remove(client, l.v[i].id, true, docker_sync_done, &rs[i], &err);
        docker_sync_wait(client, rs, l.n, &err);
        free(rs);
    }
    docker_container_list_free(&l);
    /* Every network of this run, duplicates included, by id. */
    struct docker_network_list nl = {0};
    struct docker_network_filter f = {.labels = labels, .n_labels = 1};
    memset(&s, 0, sizeof(s));
    if (sync1(docker_networks_find(client, &f, &nl, docker_sync_done, &s, &err), &s, &err) == 0) {
        for (size_t i = 0; i < nl.n; i++) {
            memset(&s, 0, sizeof(s));
            sync1(docker_network_remove_id(client, nl.v[i].id, docker_sync_done, &s, &err), &s,
                  &err);
        }
    }
    docker_network_list_free(&nl);
    memset(&s, 0, sizeof(s));
    sync1(docker_network_remove(client, network, docker_sync_done, &s, &err), &s, &err);
    memset(&s, 0, sizeof(s));
    sync1(docker_volume_remove(client, volume, docker_sync_done, &s, &err), &s, &err);
}

static int group_setup(void **state)
{
    struct orch_error err = {0};
    struct docker_sync s = {0};

    snprintf(app, sizeof(app), "dtest-%d", (int)getpid());
    snprintf(app_label, sizeof(app_label), "orch.app=%s", app);
    snprintf(network, sizeof(network), "orch-%s", app);
    snprintf(volume, sizeof(volume), "orch-%s-data", app);
    uv_loop_init(&loop);
    client = new_client(&loop, &err);
    if (client == NULL) {
        fprintf(stderr, "docker client: %s\n", err.msg);
        return -1;
    }
    if (sync1(docker_ping(client, docker_sync_done, &s, &err), &s, &err) < 0) {
        fprintf(stderr, "the Docker engine is needed for this test: %s\n", err.msg);
        return -1;
    }
    image = getenv("ORCH_TEST_IMAGE");
    if (image == NULL || image[0] == '\0')
        image = image_exists("orch-demo:1") ? "orch-demo:1" : "orch-dockertest:dev";
    if (!image_exists(image)) {
        fprintf(stderr,
                "test image %s is missing: run scripts/setup or "
                "tests/engine/image/build.sh\n",
                image);
        return -1;
    }
    fprintf(stderr, "engine API %s at %s, image %s, app %s\n", docker_client_api_version(client),
            docker_client_endpoint(client), image, app);
    return 0;
}

static int group_teardown(void **state)
{
    if (client != NULL) {
        cleanup_app();
        docker_client_close(client);
    }
    uv_run(&loop, UV_RUN_DEFAULT);
    return uv_loop_close(&loop) == 0 ? 0 : -1;
}

static void test_negotiated(void **state)
{
    (void)state;
    /* Debian's engine 20.10 speaks 1.41; newer engines are talked to at 1.41 too. */
    assert_string_equal(docker_client_api_version(client), "1.41");
}

static void test_lifecycle(void **state)
{
    (void)state;
    struct orch_error err = {0};
    struct docker_sync s[N_WEB] = {0}, one = {0};
    struct docker_kvs net_labels = {0};
    char *net_id = NULL, *ids[N_WEB] = {0};
    struct docker_port_spec port = {8080, "tcp"};
    const char *labels[] = {app_label};

    docker_kvs_add(&net_labels, "orch.app", app);
    assert_int_equal(sync1(docker_network_create(client, network, &net_labels, &net_id,
                                                 docker_sync_done, &one, &err),
                           &one, &err),
                     0);
    assert_non_null(net_id);
    /* CheckDuplicate: a second network of the same name is a conflict. */
    char *dup_id = NULL;
    memset(&one, 0, sizeof(one));
    assert_int_equal(sync1(docker_network_create(client, network, &net_labels, &dup_id,
                                                 docker_sync_done, &one, &err),
                           &one, &err),
                     -ORCH_E_DOCKER);
    assert_int_equal(one.status, 409);

    /* Three creates at once. */
    struct docker_container_create spec[N_WEB];
    char names[N_WEB][96];
    for (int i = 0; i < N_WEB; i++) {
        spec[i] = (struct docker_container_create){
            .image = image,
            .ports = &port,
            .n_ports = 1,
            .network = network,
            .network_alias = "web",
            .has_stop_grace = true,
            .stop_grace_ms = 2000,
            .memory_bytes = 64 << 20,
            .nano_cpus = 250000000,
        };
        docker_kvs_add(&spec[i].labels, "orch.app", app);
        docker_kvs_add(&spec[i].labels, "orch.service", "web");
        docker_kvs_add(&spec[i].labels, "orch.revision", "1");
        docker_kvs_add(&spec[i].env, "GREETING", "hello");
        snprintf(names[i], sizeof(names[i]), "%s-web-%d", app, i + 1);
        assert_int_equal(docker_container_create(client, names[i], &spec[i], &ids[i],
                                                 docker_sync_done, &s[i], &err),
                         0);
    }
    assert_int_equal(docker_sync_wait(client, s, N_WEB, &err), 0);
    struct docker_client_stats st;
    docker_client_stats(client, &st);
    assert_true(st.max_in_flight >= N_WEB);

    memset(s, 0, sizeof(s));
    for (int i = 0; i < N_WEB; i++)
        assert_int_equal(docker_container_start(client, ids[i], docker_sync_done, &s[i], &err), 0);
    assert_int_equal(docker_sync_wait(client, s, N_WEB, &err), 0);
    /* Starting again is the engine's 304, which is success. */
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_container_start(client, ids[0], docker_sync_done, &one, &err), &one, &err), 0);
    assert_int_equal(one.status, 304);

    /* List by label: exactly our three, running. */
    struct docker_container_list l;
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_containers_list(client, labels, 1, &l, docker_sync_done, &one, &err), &one,
              &err),
        0);
    assert_int_equal(l.n, N_WEB);
    for (size_t i = 0; i < l.n; i++) {
        assert_string_equal(l.v[i].state, "running");
        assert_string_equal(docker_kvs_get(&l.v[i].labels, "orch.service"), "web");
    }
    docker_container_list_free(&l);

    /* Inspect: published on 127.0.0.1 at a port the engine chose, on the app network. */
    struct docker_container_info ci[N_WEB];
    memset(s, 0, sizeof(s));
    for (int i = 0; i < N_WEB; i++)
        assert_int_equal(
            docker_container_inspect(client, ids[i], &ci[i], docker_sync_done, &s[i], &err), 0);
    assert_int_equal(docker_sync_wait(client, s, N_WEB, &err), 0);
    int host_ports[N_WEB];
    for (int i = 0; i < N_WEB; i++) {
        assert_string_equal(ci[i].id, ids[i]);
        assert_string_equal(ci[i].name, names[i]);
        assert_true(ci[i].running);
        assert_true(ci[i].started_at_ms > 0);
        assert_string_equal(docker_kvs_get(&ci[i].labels, "orch.app"), app);
        assert_int_equal(ci[i].n_ports, 1);
        assert_int_equal(ci[i].ports[0].container_port, 8080);
        assert_string_equal(ci[i].ports[0].host_ip, "127.0.0.1");
        assert_in_range(ci[i].ports[0].host_port, 1024, 65535);
        host_ports[i] = ci[i].ports[0].host_port;
        assert_int_equal(ci[i].n_networks, 1);
        assert_string_equal(ci[i].networks[0].network, network);
        assert_true(strlen(ci[i].networks[0].ip_address) >= 7);
        docker_container_info_free(&ci[i]);
    }
    assert_int_not_equal(host_ports[0], host_ports[1]);
    assert_int_not_equal(host_ports[1], host_ports[2]);

    /* 20 requests at once: all complete, on 20 parallel connections. */
    enum { M = 20 };
    struct docker_sync ms[M] = {0};
    struct docker_container_info mci[M];
    struct docker_container_list ml[M];
    for (int i = 0; i < M; i++) {
        if (i % 2)
            assert_int_equal(docker_container_inspect(client, ids[i % N_WEB], &mci[i],
                                                      docker_sync_done, &ms[i], &err),
                             0);
        else
            assert_int_equal(
                docker_containers_list(client, labels, 1, &ml[i], docker_sync_done, &ms[i], &err),
                0);
    }
    docker_client_stats(client, &st);
    assert_int_equal(st.in_flight, M);
    assert_int_equal(docker_sync_wait(client, ms, M, &err), 0);
    docker_client_stats(client, &st);
    print_message("concurrency: max %zu transfers, %zu connections at once\n", st.max_in_flight,
                  st.max_sockets);
    assert_true(st.max_in_flight >= M);
    assert_true(st.max_sockets >= M / 2);
    for (int i = 0; i < M; i++) {
        if (i % 2) {
            assert_true(mci[i].running);
            docker_container_info_free(&mci[i]);
        } else {
            assert_int_equal(ml[i].n, N_WEB);
            docker_container_list_free(&ml[i]);
        }
    }

    /* exec: a command that cannot start is refused at start; inspect shows 126. */
    struct orch_strv cmd = {0};
    char *exec_id = NULL;
    orch_strv_push(&cmd, "/orch-nonexistent-cmd");
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_exec_create(client, ids[0], &cmd, &exec_id, docker_sync_done, &one, &err),
              &one, &err),
        0);
    memset(&one, 0, sizeof(one));
    assert_int_not_equal(
        sync1(docker_exec_start(client, exec_id, docker_sync_done, &one, &err), &one, &err), 0);
    struct docker_exec_info ei;
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_exec_inspect(client, exec_id, &ei, docker_sync_done, &one, &err), &one, &err),
        0);
    assert_false(ei.running);
    assert_int_equal(ei.exit_code, 126);
    assert_string_equal(ei.container_id, ids[0]);
    docker_exec_info_free(&ei);
    free(exec_id);
    orch_strv_free(&cmd);

    /* Stop with grace, concurrently; the image exits on SIGTERM, so well within it. */
    uint64_t t0 = uv_now(&loop);
    memset(s, 0, sizeof(s));
    for (int i = 0; i < N_WEB; i++)
        assert_int_equal(docker_container_stop(client, ids[i], 2, docker_sync_done, &s[i], &err),
                         0);
    assert_int_equal(docker_sync_wait(client, s, N_WEB, &err), 0);
    assert_true(uv_now(&loop) - t0 < 10000);
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_container_stop(client, ids[0], 2, docker_sync_done, &one, &err), &one, &err),
        0);
    assert_int_equal(one.status, 304); /* already stopped: success */
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_container_inspect(client, ids[1], &ci[0], docker_sync_done, &one, &err), &one,
              &err),
        0);
    assert_false(ci[0].running);
    assert_string_equal(ci[0].status, "exited");
    assert_true(ci[0].finished_at_ms >= ci[0].started_at_ms);
    docker_container_info_free(&ci[0]);

    /* Remove; a second remove is a 404. */
    memset(s, 0, sizeof(s));
    for (int i = 0; i < N_WEB; i++)
        assert_int_equal(
            docker_container_remove(client, ids[i], false, docker_sync_done, &s[i], &err), 0);
    assert_int_equal(docker_sync_wait(client, s, N_WEB, &err), 0);
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_container_remove(client, ids[0], true, docker_sync_done, &one, &err), &one,
              &err),
        -ORCH_E_NOTFOUND);
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_containers_list(client, labels, 1, &l, docker_sync_done, &one, &err), &one,
              &err),
        0);
    assert_int_equal(l.n, 0);
    docker_container_list_free(&l);

    /* The network by name, in the labelled list, then removed. */
    struct docker_network net;
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_network_inspect(client, network, &net, docker_sync_done, &one, &err), &one,
              &err),
        0);
    assert_string_equal(net.id, net_id);
    assert_string_equal(net.driver, "bridge");
    assert_string_equal(docker_kvs_get(&net.labels, "orch.app"), app);
    docker_network_free(&net);
    struct docker_network_list nl;
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_networks_list(client, labels, 1, &nl, docker_sync_done, &one, &err), &one,
              &err),
        0);
    assert_int_equal(nl.n, 1);
    docker_network_list_free(&nl);
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_network_remove(client, network, docker_sync_done, &one, &err), &one, &err), 0);

    for (int i = 0; i < N_WEB; i++) {
        free(ids[i]);
        docker_kvs_free(&spec[i].labels);
        docker_kvs_free(&spec[i].env);
    }
    free(net_id);
    docker_kvs_free(&net_labels);
}

/* A raw POST /networks/create without CheckDuplicate: how an interrupted create or two state
 * dirs leave two networks of one name. *id_out new on a 201; returns the HTTP status. */
struct raw_create {
    bool done;
    long status;
    char *id;
};

static void raw_create_done(void *data, const struct docker_response *res,
                            const struct orch_error *err)
{
    struct raw_create *rc = data;
    struct orch_error e = {0};
    rc->done = true;
    rc->status = res->status;
    if (err->code == ORCH_E_OK)
        docker_json_parse_id(res->body, res->body_len, &rc->id, &e);
}

static long create_duplicate(const char *name, char **id_out)
{
    struct orch_error err = {0};
    struct raw_create rc = {0};
    char body[512];
    snprintf(body, sizeof(body),
             "{\"Name\":\"%s\",\"Driver\":\"bridge\",\"CheckDuplicate\":false,"
             "\"Labels\":{\"orch.app\":\"%s\"}}",
             name, app);
    struct docker_request_opts o = {
        .method = "POST", .path = "/networks/create", .body = body, .what = "raw create"};
    assert_int_equal(docker_request(client, &o, raw_create_done, &rc, &err), 0);
    while (!rc.done)
        uv_run(&loop, UV_RUN_ONCE);
    *id_out = rc.id;
    return rc.status;
}

/* What the reconciler needs to repair an app network: find every network of exactly one name
 * (the engine's filter matches substrings), see which has containers, remove the others by id. */
static void test_network_duplicates(void **state)
{
    (void)state;
    struct orch_error err = {0};
    struct docker_sync one = {0};
    char name[128], neighbour[160], cname[160];
    char *a_id = NULL, *n_id = NULL, *b_id = NULL, *c_id = NULL;
    const char *labels[] = {app_label};

    snprintf(name, sizeof(name), "orch-%s-dup", app);
    snprintf(neighbour, sizeof(neighbour), "%s-2", name);
    assert_int_equal(sync1(docker_app_network_create(client, name, app, "state-1", &a_id,
                                                     docker_sync_done, &one, &err),
                           &one, &err),
                     0);
    memset(&one, 0, sizeof(one));
    assert_int_equal(sync1(docker_app_network_create(client, neighbour, app, "state-1", &n_id,
                                                     docker_sync_done, &one, &err),
                           &one, &err),
                     0);
    /* Engines from 25.0 on refuse a duplicate name whatever the request says. */
    long st = create_duplicate(name, &b_id);
    bool dup = st == 201;
    if (!dup)
        print_message("engine refuses duplicate network names (HTTP %ld)\n", st);
    else
        assert_non_null(b_id);

    /* Exactly the name: the duplicate (where the engine made one), never the neighbour. */
    struct docker_network_list found;
    struct docker_network_filter by_name = {.name = name, .labels = labels, .n_labels = 1};
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_networks_find(client, &by_name, &found, docker_sync_done, &one, &err), &one,
              &err),
        0);
    assert_int_equal(found.n, dup ? 2 : 1);
    for (size_t i = 0; i < found.n; i++) {
        assert_string_equal(found.v[i].name, name);
        assert_string_equal(docker_kvs_get(&found.v[i].labels, "orch.app"), app);
        bool is_a = strcmp(found.v[i].id, a_id) == 0;
        assert_true(is_a || (dup && strcmp(found.v[i].id, b_id) == 0));
        if (is_a)
            assert_string_equal(docker_kvs_get(&found.v[i].labels, "orch.state"), "state-1");
        else
            assert_null(docker_kvs_get(&found.v[i].labels, "orch.state"));
        assert_non_null(found.v[i].created);
    }
    docker_network_list_free(&found);

    /* A container on the first, by id. Starting it while the name is shared fails ("network
     * ... is ambiguous", HTTP 400) even so: the empty duplicate has to go first, by id. */
    struct docker_container_create spec = {.image = image, .network = a_id};
    docker_kvs_add(&spec.labels, "orch.app", app);
    snprintf(cname, sizeof(cname), "%s-netdup-1", app);
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_container_create(client, cname, &spec, &c_id, docker_sync_done, &one, &err),
              &one, &err),
        0);
    struct docker_network net;
    if (dup) {
        memset(&one, 0, sizeof(one));
        assert_int_equal(
            sync1(docker_container_start(client, c_id, docker_sync_done, &one, &err), &one, &err),
            -ORCH_E_DOCKER);
        assert_non_null(strstr(err.msg, "ambiguous"));
        memset(&one, 0, sizeof(one));
        assert_int_equal(
            sync1(docker_network_inspect(client, b_id, &net, docker_sync_done, &one, &err), &one,
                  &err),
            0);
        assert_int_equal(net.n_containers, 0);
        docker_network_free(&net);
        memset(&one, 0, sizeof(one));
        assert_int_equal(
            sync1(docker_network_remove_id(client, b_id, docker_sync_done, &one, &err), &one, &err),
            0);
    }
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_container_start(client, c_id, docker_sync_done, &one, &err), &one, &err), 0);
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_network_inspect(client, a_id, &net, docker_sync_done, &one, &err), &one, &err),
        0);
    assert_int_equal(net.n_containers, 1);
    assert_string_equal(net.containers[0].id, c_id);
    assert_string_equal(net.containers[0].name, cname);
    assert_non_null(net.containers[0].ipv4);
    docker_network_free(&net);
    /* The one in use stays: a refusal, not "not found". */
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_network_remove_id(client, a_id, docker_sync_done, &one, &err), &one, &err),
        -ORCH_E_DOCKER);
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_container_remove(client, c_id, true, docker_sync_done, &one, &err), &one,
              &err),
        0);
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_network_remove_id(client, a_id, docker_sync_done, &one, &err), &one, &err), 0);
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_network_remove_id(client, a_id, docker_sync_done, &one, &err), &one, &err),
        -ORCH_E_NOTFOUND);
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_network_remove_id(client, n_id, docker_sync_done, &one, &err), &one, &err), 0);
    docker_kvs_free(&spec.labels);
    free(a_id);
    free(b_id);
    free(n_id);
    free(c_id);
}

static void test_missing_image_never_pulled(void **state)
{
    (void)state;
    struct orch_error err = {0};
    struct docker_sync one = {0};
    struct docker_container_create spec = {.image = "orch-nonexistent:1"};
    char name[96], *id = NULL;

    docker_kvs_add(&spec.labels, "orch.app", app);
    snprintf(name, sizeof(name), "%s-missing-1", app);
    int r = sync1(docker_container_create(client, name, &spec, &id, docker_sync_done, &one, &err),
                  &one, &err);
    print_message("%s\n", err.msg);
    assert_int_equal(r, -ORCH_E_NOTFOUND);
    assert_int_equal(one.status, 404);
    assert_non_null(strstr(err.msg, "no such image: orch-nonexistent:1"));
    assert_null(id);
    /* Nothing was pulled (and nothing could be: the client has no pull). */
    assert_false(image_exists("orch-nonexistent:1"));
    docker_kvs_free(&spec.labels);
}

static void test_volume(void **state)
{
    (void)state;
    struct orch_error err = {0};
    struct docker_sync one = {0};
    struct docker_kvs labels = {0};
    docker_kvs_add(&labels, "orch.app", app);
    assert_int_equal(
        sync1(docker_volume_create(client, volume, &labels, docker_sync_done, &one, &err), &one,
              &err),
        0);
    struct orch_strv names = {0};
    const char *filter[] = {app_label};
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_volumes_list(client, filter, 1, &names, docker_sync_done, &one, &err), &one,
              &err),
        0);
    assert_int_equal(names.n, 1);
    assert_string_equal(names.v[0], volume);
    orch_strv_free(&names);
    memset(&one, 0, sizeof(one));
    /* Creating it again changes nothing and succeeds. */
    assert_int_equal(
        sync1(docker_volume_create(client, volume, &labels, docker_sync_done, &one, &err), &one,
              &err),
        0);
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_volume_remove(client, volume, docker_sync_done, &one, &err), &one, &err), 0);
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_volume_remove(client, volume, docker_sync_done, &one, &err), &one, &err),
        -ORCH_E_NOTFOUND);
    docker_kvs_free(&labels);
}

struct watch {
    const char *id;
    bool started, destroyed;
};

static void on_event(void *data, const struct docker_event *ev)
{
    struct watch *w = data;
    if (w->id == NULL || ev->actor_id == NULL || strcmp(ev->actor_id, w->id) != 0)
        return;
    if (strcmp(ev->action, "start") == 0)
        w->started = true;
    if (strcmp(ev->action, "destroy") == 0)
        w->destroyed = true;
}

static void on_end(void *data, long status, const struct orch_error *err)
{
    fail_msg("the events stream ended: %s", err->msg);
}

static void test_events(void **state)
{
    (void)state;
    struct orch_error err = {0};
    struct docker_sync one = {0};
    struct docker_stream *stream = NULL;
    struct watch w = {0};
    const char *labels[] = {app_label};
    struct docker_container_create spec = {.image = image};
    char name[96], *id = NULL;

    assert_int_equal(docker_events_watch(client, labels, 1, on_event, on_end, &w, &stream, &err),
                     0);
    docker_kvs_add(&spec.labels, "orch.app", app);
    snprintf(name, sizeof(name), "%s-events-1", app);
    assert_int_equal(
        sync1(docker_container_create(client, name, &spec, &id, docker_sync_done, &one, &err), &one,
              &err),
        0);
    w.id = id;
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_container_start(client, id, docker_sync_done, &one, &err), &one, &err), 0);
    memset(&one, 0, sizeof(one));
    assert_int_equal(
        sync1(docker_container_remove(client, id, true, docker_sync_done, &one, &err), &one, &err),
        0);
    uint64_t t0 = uv_now(&loop);
    while (!w.destroyed && uv_now(&loop) - t0 < 10000)
        uv_run(&loop, UV_RUN_ONCE);
    assert_true(w.started);
    assert_true(w.destroyed);
    docker_stream_cancel(stream);
    free(id);
    docker_kvs_free(&spec.labels);
}

/* Each endpoint fails fast with an environment error naming it. */
static void test_unreachable(void **state)
{
    (void)state;
    static const char *hosts[] = {"unix:///nonexistent.sock", "tcp://127.0.0.1:1"};
    const char *saved = getenv("DOCKER_HOST");
    char *saved_copy = saved ? strdup(saved) : NULL;
    for (size_t i = 0; i < 2; i++) {
        uv_loop_t l;
        struct orch_error err = {0};
        struct docker_sync s = {0};
        uv_loop_init(&l);
        setenv("DOCKER_HOST", hosts[i], 1);
        struct docker_client *c = new_client(&l, &err);
        assert_non_null(c);
        uint64_t t0 = uv_now(&l);
        assert_int_equal(docker_ping(c, docker_sync_done, &s, &err), 0);
        assert_int_equal(docker_sync_wait(c, &s, 1, &err), -ORCH_E_ENV);
        assert_int_equal(orch_errc_exit(err.code), ORCH_EXIT_ENV);
        print_message("%s\n", err.msg);
        char want[128];
        snprintf(want, sizeof(want), "cannot reach the Docker engine at %s: ", hosts[i]);
        assert_non_null(strstr(err.msg, want));
        assert_true(uv_now(&l) - t0 < 3000);
        docker_client_close(c);
        uv_run(&l, UV_RUN_DEFAULT);
        assert_int_equal(uv_loop_close(&l), 0);
    }
    if (saved_copy)
        setenv("DOCKER_HOST", saved_copy, 1);
    else
        unsetenv("DOCKER_HOST");
    free(saved_copy);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_negotiated),
        cmocka_unit_test(test_lifecycle),
        cmocka_unit_test(test_network_duplicates),
        cmocka_unit_test(test_missing_image_never_pulled),
        cmocka_unit_test(test_volume),
        cmocka_unit_test(test_events),
        cmocka_unit_test(test_unreachable),
    };
    return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
