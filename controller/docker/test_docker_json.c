/* The pure half of the docker module: request bodies compared as JSON values, parsers fed
 * real engine answers (fixtures/, captured from Docker 20.10 and trimmed) and hostile ones,
 * error classification, escaping, time parsing and line framing. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "docker/docker_json.h"
#include "support/test_fixture.h"

static void assert_json_eq(const char *got, const char *want)
{
    json_error_t je;
    json_t *g = json_loads(got, 0, &je), *w = json_loads(want, 0, &je);
    assert_non_null(g);
    assert_non_null(w);
    if (!json_equal(g, w)) {
        char *ws = json_dumps(w, JSON_COMPACT | JSON_SORT_KEYS);
        char *gs = json_dumps(g, JSON_COMPACT | JSON_SORT_KEYS);
        print_error("want %s\n got %s\n", ws, gs);
        free(ws);
        free(gs);
        fail();
    }
    json_decref(g);
    json_decref(w);
}

/* ---- request bodies ----------------------------------------------------------------------- */

static void full_create(struct docker_container_create *c, struct docker_port_spec *ports,
                        struct docker_mount *mounts)
{
    *c = (struct docker_container_create){.image = "orch-demo:1"};
    orch_strv_push(&c->cmd, "/orch-demo");
    orch_strv_push(&c->cmd, "serve");
    orch_strv_push(&c->entrypoint, "/bin/entry");
    docker_kvs_add(&c->env, "GREETING", "hello world");
    docker_kvs_add(&c->env, "EMPTY", "");
    docker_kvs_add(&c->labels, "orch.app", "shop");
    docker_kvs_add(&c->labels, "orch.service", "web");
    docker_kvs_add(&c->labels, "orch.revision", "3");
    ports[0] = (struct docker_port_spec){8080, NULL};
    ports[1] = (struct docker_port_spec){5353, "udp"};
    c->ports = ports;
    c->n_ports = 2;
    c->nano_cpus = 500000000;
    c->memory_bytes = 268435456;
    mounts[0] = (struct docker_mount){DOCKER_MOUNT_VOLUME, "orch-shop-data", "/var/lib/db", false};
    mounts[1] = (struct docker_mount){DOCKER_MOUNT_BIND, "/srv/conf", "/etc/app", true};
    c->mounts = mounts;
    c->n_mounts = 2;
    c->network = "orch-shop";
    c->network_alias = "web";
    c->has_stop_grace = true;
    c->stop_grace_ms = 1500; /* rounds up to 2 s */
}

static void free_create(struct docker_container_create *c)
{
    orch_strv_free(&c->cmd);
    orch_strv_free(&c->entrypoint);
    docker_kvs_free(&c->env);
    docker_kvs_free(&c->labels);
}

static void test_container_create_body(void **state)
{
    (void)state;
    struct docker_container_create c;
    struct docker_port_spec ports[2];
    struct docker_mount mounts[2];
    struct orch_error err = {0};
    char *body = NULL;

    full_create(&c, ports, mounts);
    assert_int_equal(docker_json_container_create(&c, &body, &err), 0);
    assert_json_eq(body,
                   "{\"Image\":\"orch-demo:1\",\"Cmd\":[\"/orch-demo\",\"serve\"],"
                   "\"Entrypoint\":[\"/bin/entry\"],"
                   "\"Env\":[\"GREETING=hello world\",\"EMPTY=\"],"
                   "\"Labels\":{\"orch.app\":\"shop\",\"orch.service\":\"web\","
                   "\"orch.revision\":\"3\"},"
                   "\"ExposedPorts\":{\"8080/tcp\":{},\"5353/udp\":{}},"
                   "\"StopTimeout\":2,"
                   "\"HostConfig\":{"
                   "\"PortBindings\":{\"8080/tcp\":[{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"\"}],"
                   "\"5353/udp\":[{\"HostIp\":\"127.0.0.1\",\"HostPort\":\"\"}]},"
                   "\"NanoCpus\":500000000,\"Memory\":268435456,"
                   "\"Mounts\":[{\"Type\":\"volume\",\"Source\":\"orch-shop-data\","
                   "\"Target\":\"/var/lib/db\",\"ReadOnly\":false},"
                   "{\"Type\":\"bind\",\"Source\":\"/srv/conf\",\"Target\":\"/etc/app\","
                   "\"ReadOnly\":true}],"
                   "\"RestartPolicy\":{\"Name\":\"no\"},\"NetworkMode\":\"orch-shop\"},"
                   "\"NetworkingConfig\":{\"EndpointsConfig\":{\"orch-shop\":"
                   "{\"Aliases\":[\"web\"]}}}}");
    free(body);

    /* The publish address comes from the caller (ORCH_PUBLISH_ADDRESS). */
    c.publish_address = "0.0.0.0";
    c.n_ports = 1;
    c.has_stop_grace = false;
    c.network = NULL;
    c.nano_cpus = 0;
    c.memory_bytes = 0;
    c.n_mounts = 0;
    orch_strv_free(&c.cmd);
    orch_strv_free(&c.entrypoint);
    assert_int_equal(docker_json_container_create(&c, &body, &err), 0);
    assert_json_eq(body,
                   "{\"Image\":\"orch-demo:1\",\"Env\":[\"GREETING=hello world\",\"EMPTY=\"],"
                   "\"Labels\":{\"orch.app\":\"shop\",\"orch.service\":\"web\","
                   "\"orch.revision\":\"3\"},\"ExposedPorts\":{\"8080/tcp\":{}},"
                   "\"HostConfig\":{\"PortBindings\":{\"8080/tcp\":[{\"HostIp\":\"0.0.0.0\","
                   "\"HostPort\":\"\"}]},\"Mounts\":[],\"RestartPolicy\":{\"Name\":\"no\"}}}");
    free(body);
    free_create(&c);
}

/* Each case breaks one field of a valid request; the builder must refuse it. */
enum breakage {
    NO_IMAGE,
    PORT_ZERO,
    PORT_HIGH,
    PROTO_SCTP,
    PORT_TWICE,
    ENV_EQUALS,
    ENV_EMPTY,
    LABEL_EMPTY,
    MOUNT_RELATIVE_TARGET,
    BIND_RELATIVE_SOURCE,
    MEMORY_NEGATIVE,
    STOP_NEGATIVE,
    IMAGE_BAD_UTF8,
    CMD_BAD_UTF8,
};
static const struct {
    enum breakage b;
    const char *msg;
} create_bad[] = {
    {NO_IMAGE, "no image"},
    {PORT_ZERO, "port 0"},
    {PORT_HIGH, "port 65536"},
    {PROTO_SCTP, "'sctp' is not tcp or udp"},
    {PORT_TWICE, "declared twice"},
    {ENV_EQUALS, "env 'A=B'"},
    {ENV_EMPTY, "env ''"},
    {LABEL_EMPTY, "label ''"},
    {MOUNT_RELATIVE_TARGET, "absolute target"},
    {BIND_RELATIVE_SOURCE, "must be absolute"},
    {MEMORY_NEGATIVE, "negative resource"},
    {STOP_NEGATIVE, "stop grace"},
    {IMAGE_BAD_UTF8, "not UTF-8"},
    {CMD_BAD_UTF8, "not UTF-8"},
};

static void test_container_create_invalid(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(create_bad) / sizeof(create_bad[0]); i++) {
        struct docker_container_create c;
        struct docker_port_spec ports[2];
        struct docker_mount mounts[2];
        struct orch_error err = {0};
        char *body = NULL;
        full_create(&c, ports, mounts);
        switch (create_bad[i].b) {
        case NO_IMAGE:
            c.image = NULL;
            break;
        case PORT_ZERO:
            ports[1].port = 0;
            break;
        case PORT_HIGH:
            ports[0].port = 65536;
            break;
        case PROTO_SCTP:
            ports[1].protocol = "sctp";
            break;
        case PORT_TWICE:
            ports[1] = ports[0];
            break;
        case ENV_EQUALS:
            docker_kvs_add(&c.env, "A=B", "x");
            break;
        case ENV_EMPTY:
            docker_kvs_add(&c.env, "", "x");
            break;
        case LABEL_EMPTY:
            docker_kvs_add(&c.labels, "", "x");
            break;
        case MOUNT_RELATIVE_TARGET:
            mounts[0].target = "var/lib";
            break;
        case BIND_RELATIVE_SOURCE:
            mounts[1].source = "./conf";
            break;
        case MEMORY_NEGATIVE:
            c.memory_bytes = -1;
            break;
        case STOP_NEGATIVE:
            c.stop_grace_ms = -5;
            break;
        case IMAGE_BAD_UTF8:
            c.image = "orch-\xff:1";
            break;
        case CMD_BAD_UTF8:
            orch_strv_push(&c.cmd, "\xc3\x28");
            break;
        }
        int r = docker_json_container_create(&c, &body, &err);
        print_message("case %zu: %d %s\n", i, r, err.msg);
        assert_int_equal(r, -ORCH_E_INVALID);
        assert_null(body);
        assert_non_null(strstr(err.msg, create_bad[i].msg));
        free_create(&c);
    }
}

static void test_other_bodies(void **state)
{
    (void)state;
    struct orch_error err = {0};
    struct orch_strv cmd = {0};
    struct docker_kvs labels = {0};
    char *body = NULL;

    assert_int_equal(docker_json_exec_create(&cmd, &body, &err), -ORCH_E_INVALID);
    orch_strv_push(&cmd, "/orch-demo");
    orch_strv_push(&cmd, "check");
    assert_int_equal(docker_json_exec_create(&cmd, &body, &err), 0);
    assert_json_eq(body, "{\"Cmd\":[\"/orch-demo\",\"check\"],\"AttachStdin\":false,"
                         "\"AttachStdout\":false,\"AttachStderr\":false,\"Tty\":false}");
    free(body);
    orch_strv_free(&cmd);

    body = docker_json_exec_start();
    assert_json_eq(body, "{\"Detach\":true,\"Tty\":false}");
    free(body);

    docker_kvs_add(&labels, "orch.app", "shop");
    assert_int_equal(docker_json_network_create("orch-shop", &labels, &body, &err), 0);
    assert_json_eq(body, "{\"Name\":\"orch-shop\",\"Driver\":\"bridge\",\"CheckDuplicate\":true,"
                         "\"Attachable\":false,\"Labels\":{\"orch.app\":\"shop\"}}");
    free(body);
    assert_int_equal(docker_json_volume_create("orch-shop-data", &labels, &body, &err), 0);
    assert_json_eq(body, "{\"Name\":\"orch-shop-data\",\"Driver\":\"local\","
                         "\"Labels\":{\"orch.app\":\"shop\"}}");
    free(body);
    assert_int_equal(docker_json_volume_create("", &labels, &body, &err), -ORCH_E_INVALID);
    assert_int_equal(docker_json_network_create(NULL, NULL, &body, &err), -ORCH_E_INVALID);
    docker_kvs_free(&labels);
}

/* ---- networks: containers, exact names ---------------------------------------------------- */

static void test_network_containers_and_names(void **state)
{
    (void)state;
    struct orch_error err = {0};
    struct docker_network n;
    /* Containers sorted by id; a leading '/' dropped; an empty address is none; null or {}
     * is no container; a wrong shape is an error naming the field. */
    static const char body[] = "{\"Id\":\"n1\",\"Name\":\"orch-shop\",\"Containers\":{"
                               "\"bb\":{\"Name\":\"/shop-web-2\",\"IPv4Address\":\"\"},"
                               "\"aa\":{\"Name\":\"shop-web-1\",\"IPv4Address\":\"10.0.0.2/24\"}}}";
    assert_int_equal(docker_json_parse_network(body, strlen(body), &n, &err), 0);
    assert_int_equal(n.n_containers, 2);
    assert_string_equal(n.containers[0].id, "aa");
    assert_string_equal(n.containers[0].name, "shop-web-1");
    assert_string_equal(n.containers[0].ipv4, "10.0.0.2/24");
    assert_string_equal(n.containers[1].name, "shop-web-2");
    assert_null(n.containers[1].ipv4);
    assert_null(n.created);
    docker_network_free(&n);
    static const char *const none[] = {"{\"Id\":\"n1\",\"Name\":\"x\",\"Containers\":null}",
                                       "{\"Id\":\"n1\",\"Name\":\"x\",\"Containers\":{}}",
                                       "{\"Id\":\"n1\",\"Name\":\"x\"}"};
    for (size_t i = 0; i < sizeof(none) / sizeof(none[0]); i++) {
        assert_int_equal(docker_json_parse_network(none[i], strlen(none[i]), &n, &err), 0);
        assert_int_equal(n.n_containers, 0);
        docker_network_free(&n);
    }
    static const char *const bad[] = {
        "{\"Id\":\"n1\",\"Name\":\"x\",\"Containers\":[]}",
        "{\"Id\":\"n1\",\"Name\":\"x\",\"Containers\":{\"aa\":1}}",
        "{\"Id\":\"n1\",\"Name\":\"x\",\"Containers\":{\"aa\":{\"Name\":1}}}",
        "{\"Id\":\"n1\",\"Name\":\"x\",\"Containers\":{\"\":{}}}",
        "{\"Id\":\"n1\",\"Name\":\"x\",\"Created\":5}"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        assert_int_equal(docker_json_parse_network(bad[i], strlen(bad[i]), &n, &err),
                         -ORCH_E_DOCKER);
        assert_null(n.id); /* untouched on failure */
    }

    /* The engine's name filter matches substrings: only the exact name is kept. */
    static const char list[] = "[{\"Id\":\"1\",\"Name\":\"orch-shop2\"},"
                               "{\"Id\":\"2\",\"Name\":\"orch-shop\"},"
                               "{\"Id\":\"3\",\"Name\":\"xorch-shop\"},"
                               "{\"Id\":\"4\",\"Name\":\"orch-shop\"}]";
    struct docker_network_list nl;
    assert_int_equal(docker_json_parse_network_list(list, strlen(list), &nl, &err), 0);
    assert_int_equal(docker_network_list_keep_name(&nl, NULL), 4);
    assert_int_equal(docker_network_list_keep_name(&nl, "orch-shop"), 2);
    assert_string_equal(nl.v[0].id, "2");
    assert_string_equal(nl.v[1].id, "4");
    assert_int_equal(docker_network_list_keep_name(&nl, "orch-shop3"), 0);
    docker_network_list_free(&nl);

    /* Name and labels in one `filters` value. */
    const char *labels[] = {"orch.app=shop", "orch.state=s1"};
    char *f = docker_name_label_filter("orch-shop", labels, 2);
    char *want = docker_url_escape(
        "{\"label\":[\"orch.app=shop\",\"orch.state=s1\"],\"name\":[\"orch-shop\"]}", false);
    assert_string_equal(f, want);
    free(f);
    free(want);
    f = docker_name_label_filter(NULL, labels, 1);
    char *g = docker_label_filter(labels, 1);
    assert_string_equal(f, g);
    free(f);
    free(g);
}

/* ---- escaping ----------------------------------------------------------------------------- */

static void test_escape_and_filters(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        bool keep;
        const char *out;
    } esc[] = {
        {"shop-web-1", false, "shop-web-1"},
        {"a b/c?d#e&f=g", false, "a%20b%2Fc%3Fd%23e%26f%3Dg"},
        {"registry:5000/team/app:1.2", true, "registry:5000/team/app:1.2"},
        {"registry:5000/team/app:1.2", false, "registry%3A5000%2Fteam%2Fapp%3A1.2"},
        {"img@sha256:ab", true, "img@sha256:ab"},
        {"\xff%", false, "%FF%25"},
        {"", false, ""},
    };
    for (size_t i = 0; i < sizeof(esc) / sizeof(esc[0]); i++) {
        char *s = docker_url_escape(esc[i].in, esc[i].keep);
        assert_string_equal(s, esc[i].out);
        free(s);
    }
    const char *labels[] = {"orch.app=shop", "orch.service"};
    char *f = docker_label_filter(labels, 2);
    assert_string_equal(f, "%7B%22label%22%3A%5B%22orch.app%3Dshop%22%2C%22orch.service%22%5D%7D");
    free(f);
    f = docker_label_filter(labels, 0);
    assert_string_equal(f, "%7B%22label%22%3A%5B%5D%7D");
    free(f);
}

/* ---- versions and errors ------------------------------------------------------------------ */

static void test_api_version(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int ok, major, minor;
    } t[] = {
        {"1.41", 1, 1, 41}, {"1.40", 1, 1, 40}, {"1.43", 1, 1, 43}, {"2.0", 1, 2, 0}, {"", 0},
        {"1", 0},           {"1.", 0},          {"1.41a", 0},       {"v1.41", 0},     {"-1.41", 0},
        {"1.-4", 0},        {"99999.1", 0},     {" 1.41", 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct docker_api_version v = {0};
        struct orch_error err = {0};
        int r = docker_api_version_parse(t[i].s, &v, &err);
        print_message("version '%s' -> %d\n", t[i].s, r);
        if (t[i].ok) {
            assert_int_equal(r, 0);
            assert_int_equal(v.major, t[i].major);
            assert_int_equal(v.minor, t[i].minor);
        } else {
            assert_int_equal(r, -ORCH_E_DOCKER);
        }
    }
    assert_int_equal(
        docker_api_version_parse(NULL, &(struct docker_api_version){0}, &(struct orch_error){0}),
        -ORCH_E_DOCKER);

    static const struct {
        struct docker_api_version engine;
        int code;
        struct docker_api_version used;
    } neg[] = {
        {{1, 41}, 0, {1, 41}}, {{1, 43}, 0, {1, 41}}, {{2, 0}, 0, {1, 41}},
        {{1, 40}, 0, {1, 40}}, {{1, 39}, ORCH_E_ENV}, {{0, 99}, ORCH_E_ENV},
    };
    for (size_t i = 0; i < sizeof(neg) / sizeof(neg[0]); i++) {
        struct docker_api_version used = {0};
        struct orch_error err = {0};
        int r = docker_api_version_negotiate(neg[i].engine, (struct docker_api_version){1, 40},
                                             (struct docker_api_version){1, 41}, &used, &err);
        assert_int_equal(r, -neg[i].code);
        if (neg[i].code == 0) {
            assert_int_equal(used.major, neg[i].used.major);
            assert_int_equal(used.minor, neg[i].used.minor);
        } else {
            assert_non_null(strstr(err.msg, "1.40 or newer"));
        }
    }
}

static void test_status_to_error(void **state)
{
    (void)state;
    static const struct {
        long status;
        const char *body;
        int code;
        const char *msg;
    } t[] = {
        {200, "[]", 0},
        {201, "{\"Id\":\"x\"}", 0},
        {204, "", 0},
        {304, "", 0},
        {404, "{\"message\":\"No such image: orch-nonexistent:1\"}", ORCH_E_NOTFOUND,
         "create container w: no such image: orch-nonexistent:1 (orch never pulls"},
        {404,
         "{\"message\":\"no such image: orch-nonexistent:1: No such image: "
         "orch-nonexistent:1\"}",
         ORCH_E_NOTFOUND, "create container w: no such image: orch-nonexistent:1 ("},
        {404, "{\"message\":\"No such container: abc\"}", ORCH_E_NOTFOUND,
         "create container w: No such container: abc"},
        {404, "{\"message\":\"network orch-x not found\"}", ORCH_E_NOTFOUND,
         "network orch-x not found"},
        {409, "{\"message\":\"Conflict. The container name \\\"/w\\\" is already in use\"}",
         ORCH_E_DOCKER, "create container w: conflict: Conflict. The container name"},
        {500, "{\"message\":\"driver failed\"}", ORCH_E_TRANSIENT, "engine error (HTTP 500)"},
        {502, "<html>bad gateway</html>", ORCH_E_TRANSIENT, "(no message)"},
        {503, "", ORCH_E_TRANSIENT, "HTTP 503"},
        {400, "{\"message\":\"invalid reference format\"}", ORCH_E_DOCKER,
         "refused (HTTP 400): invalid reference format"},
        {401, "{\"message\":42}", ORCH_E_DOCKER, "(no message)"},
        {404, "{\"message\":\"line\\nbreak\\u001b[31m\"}", ORCH_E_NOTFOUND, "line break [31m"},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        struct orch_error err = {0};
        int r = docker_status_to_error(t[i].status, t[i].body, strlen(t[i].body),
                                       "create container w", &err);
        print_message("%ld -> %d %s\n", t[i].status, r, err.msg);
        assert_int_equal(r, -t[i].code);
        if (t[i].code)
            assert_non_null(strstr(err.msg, t[i].msg));
    }
    assert_true(docker_status_is_transient(503));
    assert_false(docker_status_is_transient(404));
}

/* ---- parsers on real answers -------------------------------------------------------------- */

static void test_parse_container_list_fixture(void **state)
{
    (void)state;
    size_t len;
    char *body = test_fixture_read_in(DOCKER_FIXTURES, "container_list.json", &len);
    struct docker_container_list l;
    struct orch_error err = {0};
    assert_int_equal(docker_json_parse_container_list(body, len, &l, &err), 0);
    assert_int_equal(l.n, 1);
    struct docker_container *c = &l.v[0];
    assert_string_equal(c->id, "ea0404f7023c165beae1f8fe9a580c00841b1bd9fa1c3f5b522cd1db6cbb2a49");
    assert_int_equal(c->names.n, 1);
    assert_string_equal(c->names.v[0], "fixt-web-1");
    assert_string_equal(c->image, "orch-dockertest:dev");
    assert_string_equal(c->state, "running");
    assert_string_equal(c->status, "Up Less than a second");
    assert_int_equal(c->created, 1795744431);
    assert_int_equal(c->labels.n, 3);
    assert_string_equal(docker_kvs_get(&c->labels, "orch.app"), "fixt");
    assert_string_equal(docker_kvs_get(&c->labels, "orch.revision"), "1");
    assert_string_equal(c->labels.v[0].key, "orch.app"); /* sorted */
    assert_null(docker_kvs_get(&c->labels, "nope"));
    assert_int_equal(c->n_ports, 1);
    assert_string_equal(c->ports[0].ip, "127.0.0.1");
    assert_int_equal(c->ports[0].private_port, 8080);
    assert_int_equal(c->ports[0].public_port, 32768);
    assert_string_equal(c->ports[0].type, "tcp");
    docker_container_list_free(&l);
    free(body);

    assert_int_equal(docker_json_parse_container_list("[]", 2, &l, &err), 0);
    assert_int_equal(l.n, 0);
    docker_container_list_free(&l);

    /* The networks it is on: none after `docker network disconnect`, unknown when absent. */
    const char *nets = "[{\"Id\":\"a\",\"NetworkSettings\":{\"Networks\":{\"orch-shop\":{}}}},"
                       "{\"Id\":\"b\",\"NetworkSettings\":{\"Networks\":{}}},{\"Id\":\"c\"}]";
    assert_int_equal(docker_json_parse_container_list(nets, strlen(nets), &l, &err), 0);
    assert_int_equal(l.n, 3);
    assert_true(l.v[0].has_networks);
    assert_int_equal(l.v[0].networks.n, 1);
    assert_string_equal(l.v[0].networks.v[0], "orch-shop");
    assert_true(l.v[1].has_networks);
    assert_int_equal(l.v[1].networks.n, 0);
    assert_false(l.v[2].has_networks);
    docker_container_list_free(&l);
    const char *bad = "[{\"Id\":\"a\",\"NetworkSettings\":{\"Networks\":[]}}]";
    assert_int_equal(docker_json_parse_container_list(bad, strlen(bad), &l, &err), -ORCH_E_DOCKER);
}

static void test_parse_inspect_fixtures(void **state)
{
    (void)state;
    size_t len;
    char *body = test_fixture_read_in(DOCKER_FIXTURES, "container_inspect_running.json", &len);
    struct docker_container_info ci;
    struct orch_error err = {0};

    assert_int_equal(docker_json_parse_container_info(body, len, &ci, &err), 0);
    assert_string_equal(ci.id, "ea0404f7023c165beae1f8fe9a580c00841b1bd9fa1c3f5b522cd1db6cbb2a49");
    assert_string_equal(ci.name, "fixt-web-1");
    assert_string_equal(ci.image, "orch-dockertest:dev");
    assert_string_equal(ci.status, "running");
    assert_true(ci.running);
    assert_int_equal(ci.exit_code, 0);
    assert_string_equal(ci.started_at, "2026-11-27T01:53:51.740247357Z");
    assert_int_equal(ci.started_at_ms, 1795744431740LL);
    assert_int_equal(ci.finished_at_ms, 0); /* the zero time: never finished */
    assert_null(ci.health);
    assert_int_equal(ci.restart_count, 0);
    assert_string_equal(docker_kvs_get(&ci.labels, "orch.service"), "web");
    assert_int_equal(ci.n_ports, 1);
    assert_int_equal(ci.ports[0].container_port, 8080);
    assert_string_equal(ci.ports[0].protocol, "tcp");
    assert_string_equal(ci.ports[0].host_ip, "127.0.0.1");
    assert_int_equal(ci.ports[0].host_port, 32768);
    assert_int_equal(ci.n_networks, 1);
    assert_string_equal(ci.networks[0].network, "orch-fixt");
    assert_string_equal(ci.networks[0].ip_address, "172.18.0.2");
    docker_container_info_free(&ci);
    free(body);

    body = test_fixture_read_in(DOCKER_FIXTURES, "container_inspect_exited.json", &len);
    assert_int_equal(docker_json_parse_container_info(body, len, &ci, &err), 0);
    assert_string_equal(ci.status, "exited");
    assert_false(ci.running);
    assert_int_equal(ci.finished_at_ms, 1795744437936LL);
    assert_int_equal(ci.n_ports, 0);
    docker_container_info_free(&ci);
    free(body);

    body = test_fixture_read_in(DOCKER_FIXTURES, "container_inspect_unhealthy.json", &len);
    assert_int_equal(docker_json_parse_container_info(body, len, &ci, &err), 0);
    assert_string_equal(ci.health, "unhealthy");
    assert_int_equal(ci.exit_code, 137);
    assert_true(ci.oom_killed);
    assert_int_equal(ci.restart_count, 2);
    /* 8080/tcp bound, 9090/udp exposed but unbound (null). */
    assert_int_equal(ci.n_ports, 2);
    for (size_t i = 0; i < ci.n_ports; i++) {
        if (ci.ports[i].container_port == 9090) {
            assert_string_equal(ci.ports[i].protocol, "udp");
            assert_null(ci.ports[i].host_ip);
            assert_int_equal(ci.ports[i].host_port, 0);
        } else {
            assert_int_equal(ci.ports[i].host_port, 49153);
        }
    }
    assert_string_equal(ci.networks[0].ip_address, "");
    assert_int_equal(ci.started_at_ms, 1795744431000LL); /* 03:53:51+02:00 */
    docker_container_info_free(&ci);
    free(body);
}

static void test_parse_small_answers(void **state)
{
    (void)state;
    size_t len;
    struct orch_error err = {0};
    char *body = test_fixture_read_in(DOCKER_FIXTURES, "image_inspect.json", &len);
    struct docker_image_info ii;
    assert_int_equal(docker_json_parse_image_info(body, len, &ii, &err), 0);
    assert_string_equal(ii.id,
                        "sha256:f9afab3c3171eef8ef91b5c2a2b9eaaf5cce8c34dd9b2232b9c93bfdc5fdf132");
    assert_int_equal(ii.repo_tags.n, 1);
    assert_string_equal(ii.repo_tags.v[0], "orch-dockertest:dev");
    docker_image_info_free(&ii);
    free(body);

    body = test_fixture_read_in(DOCKER_FIXTURES, "network_inspect.json", &len);
    struct docker_network n;
    assert_int_equal(docker_json_parse_network(body, len, &n, &err), 0);
    assert_string_equal(n.name, "orch-fixt");
    assert_string_equal(n.driver, "bridge");
    assert_string_equal(docker_kvs_get(&n.labels, "orch.app"), "fixt");
    assert_int_equal(strlen(n.id), 64);
    assert_string_equal(n.created, "2026-11-27T01:53:51.448148825Z");
    assert_int_equal(n.n_containers, 1);
    assert_string_equal(n.containers[0].id,
                        "ea0404f7023c165beae1f8fe9a580c00841b1bd9fa1c3f5b522cd1db6cbb2a49");
    assert_string_equal(n.containers[0].name, "fixt-web-1");
    assert_string_equal(n.containers[0].ipv4, "172.18.0.2/16");
    docker_network_free(&n);
    free(body);

    body = test_fixture_read_in(DOCKER_FIXTURES, "network_list.json", &len);
    struct docker_network_list nl;
    assert_int_equal(docker_json_parse_network_list(body, len, &nl, &err), 0);
    assert_int_equal(nl.n, 1);
    assert_string_equal(nl.v[0].name, "orch-fixt");
    assert_int_equal(nl.v[0].n_containers, 0); /* the list leaves "Containers" empty */
    docker_network_list_free(&nl);
    free(body);

    body = test_fixture_read_in(DOCKER_FIXTURES, "exec_inspect.json", &len);
    struct docker_exec_info ei;
    assert_int_equal(docker_json_parse_exec_info(body, len, &ei, &err), 0);
    assert_false(ei.running);
    assert_int_equal(ei.exit_code, 1);
    assert_int_equal(ei.pid, 6925);
    assert_string_equal(ei.container_id,
                        "ea0404f7023c165beae1f8fe9a580c00841b1bd9fa1c3f5b522cd1db6cbb2a49");
    docker_exec_info_free(&ei);
    free(body);

    body = test_fixture_read_in(DOCKER_FIXTURES, "volume_list.json", &len);
    struct orch_strv vols = {0};
    assert_int_equal(docker_json_parse_volume_names(body, len, &vols, &err), 0);
    assert_int_equal(vols.n, 1);
    assert_string_equal(vols.v[0], "orch-fixt-data");
    assert_int_equal(docker_json_parse_volume_names("{\"Volumes\":null}", 16, &vols, &err), 0);
    assert_int_equal(vols.n, 1);
    assert_int_equal(docker_json_parse_volume_names("{\"Volumes\":[{}]}", 16, &vols, &err),
                     -ORCH_E_DOCKER);
    assert_int_equal(docker_json_parse_volume_names("{\"Volumes\":{}}", 14, &vols, &err),
                     -ORCH_E_DOCKER);
    assert_int_equal(docker_json_parse_volume_names("[]", 2, &vols, &err), -ORCH_E_DOCKER);
    assert_int_equal(vols.n, 1); /* failures append nothing */
    orch_strv_free(&vols);
    free(body);

    char *id = NULL;
    const char *created = "{\"Id\":\"ea0404f7\",\"Warnings\":[]}";
    assert_int_equal(docker_json_parse_id(created, strlen(created), &id, &err), 0);
    assert_string_equal(id, "ea0404f7");
    free(id);

    char *m = docker_json_error_message("{\"message\":\"No such container: x\"}", 34);
    assert_string_equal(m, "No such container: x");
    free(m);
    assert_null(docker_json_error_message("not json", 8));
    assert_null(docker_json_error_message("", 0));
    assert_null(docker_json_error_message("[\"message\"]", 11));
}

struct event_sink {
    struct docker_event ev[8];
    size_t n;
    int stop_after; /* 0: never */
};

static int collect_event(void *data, const char *line, size_t len)
{
    struct event_sink *s = data;
    struct orch_error err = {0};
    assert_int_equal(strlen(line), len);
    assert_true(s->n < 8);
    assert_int_equal(docker_json_parse_event(line, len, &s->ev[s->n], &err), 0);
    s->n++;
    return s->stop_after && (int)s->n >= s->stop_after ? 7 : 0;
}

static void test_events_stream(void **state)
{
    (void)state;
    size_t len;
    char *body = test_fixture_read_in(DOCKER_FIXTURES, "events.jsonl", &len);
    struct orch_error err = {0};

    /* Fed in awkward chunk sizes, the stream still yields exactly the four events. */
    static const size_t chunks[] = {1, 7, 100, 4096};
    for (size_t c = 0; c < sizeof(chunks) / sizeof(chunks[0]); c++) {
        struct docker_lines ls = {.max_line = 4096};
        struct event_sink sink = {0};
        for (size_t off = 0; off < len; off += chunks[c]) {
            size_t n = len - off < chunks[c] ? len - off : chunks[c];
            assert_int_equal(docker_lines_feed(&ls, body + off, n, collect_event, &sink, &err), 0);
        }
        assert_int_equal(sink.n, 4);
        static const char *actions[] = {"kill", "die", "stop", "destroy"};
        for (size_t i = 0; i < 4; i++) {
            assert_string_equal(sink.ev[i].type, "container");
            assert_string_equal(sink.ev[i].action, actions[i]);
            assert_string_equal(sink.ev[i].actor_id,
                                "ea0404f7023c165beae1f8fe9a580c00841b1bd9fa1c3f5b522cd1db6cbb2a49");
            assert_string_equal(docker_kvs_get(&sink.ev[i].attributes, "orch.app"), "fixt");
            docker_event_free(&sink.ev[i]);
        }
        docker_lines_free(&ls);
    }

    /* A line longer than the cap is an error, not unbounded growth. */
    struct docker_lines ls = {.max_line = 100};
    struct event_sink sink = {0};
    assert_int_equal(docker_lines_feed(&ls, body, len, collect_event, &sink, &err), -ORCH_E_DOCKER);
    assert_non_null(strstr(err.msg, "longer than 100 bytes"));
    docker_lines_free(&ls);

    /* CRLF, blank lines, and a callback that stops the feed. */
    const char *text = "\r\n{\"Type\":\"network\",\"Action\":\"create\"}\r\n\n"
                       "{\"Type\":\"volume\",\"Action\":\"mount\"}\n{\"Type\":";
    struct docker_lines ls2 = {.max_line = 1024};
    struct event_sink s2 = {.stop_after = 1};
    assert_int_equal(docker_lines_feed(&ls2, text, strlen(text), collect_event, &s2, &err), 7);
    assert_int_equal(s2.n, 1);
    assert_string_equal(s2.ev[0].type, "network");
    assert_null(s2.ev[0].actor_id);
    assert_int_equal(s2.ev[0].attributes.n, 0);
    docker_event_free(&s2.ev[0]);
    docker_lines_free(&ls2);
    free(body);
}

/* ---- hostile input ------------------------------------------------------------------------ */

enum parser { P_LIST, P_INFO, P_ID, P_IMAGE, P_NETWORK, P_NETWORKS, P_EXEC, P_EVENT };

static const struct {
    enum parser p;
    const char *body;
    const char *msg;
} hostile[] = {
    {P_LIST, "", "invalid JSON"},
    {P_LIST, "{}", "expected a JSON array"},
    {P_LIST, "null", "invalid JSON"},
    {P_LIST, "[1]", "expected a JSON object"},
    {P_LIST, "[{}]", "missing \"Id\""},
    {P_LIST, "[{\"Id\":\"\"}]", "\"Id\" is empty"},
    {P_LIST, "[{\"Id\":7}]", "\"Id\" is not a string"},
    {P_LIST, "[{\"Id\":\"a\",\"Names\":\"/x\"}]", "\"Names\" is not an array"},
    {P_LIST, "[{\"Id\":\"a\",\"Names\":[1]}]", "Names[0] is not a string"},
    {P_LIST, "[{\"Id\":\"a\",\"Labels\":[]}]", "\"Labels\" is not an object"},
    {P_LIST, "[{\"Id\":\"a\",\"Labels\":{\"k\":1}}]", "Labels[\"k\"] is not a string"},
    {P_LIST, "[{\"Id\":\"a\",\"Created\":\"now\"}]", "\"Created\" is not an integer"},
    {P_LIST, "[{\"Id\":\"a\",\"Created\":1e400}]", "invalid JSON"},
    {P_LIST, "[{\"Id\":\"a\",\"Created\":123456789012345678901234567890}]", "invalid JSON"},
    {P_LIST, "[{\"Id\":\"a\",\"Created\":-1}]", "out of range"},
    {P_LIST, "[{\"Id\":\"a\",\"Ports\":[{\"PrivatePort\":70000}]}]", "out of range"},
    {P_LIST, "[{\"Id\":\"a\",\"Ports\":[{\"PublicPort\":-1}]}]", "out of range"},
    {P_LIST, "[{\"Id\":\"a\",\"Ports\":[{\"PrivatePort\":80.5}]}]", "not an integer"},
    {P_LIST, "[{\"Id\":\"a\",\"Ports\":{}}]", "\"Ports\" is not an array"},
    {P_LIST, "[{\"Id\":\"a\",\"Ports\":[\"80\"]}]", "expected a JSON object"},
    {P_LIST, "[{\"Id\":\"a\",\"Id\":\"b\"}]", "invalid JSON"},
    {P_LIST, "[{\"Id\":\"\xff\"}]", "invalid JSON"},
    {P_LIST, "[{\"Id\":\"a\"", "invalid JSON"},
    {P_INFO, "[]", "expected a JSON object"},
    {P_INFO, "{\"Id\":\"a\"}", "missing \"State\""},
    {P_INFO, "{\"Id\":\"a\",\"State\":[]}", "\"State\" is not an object"},
    {P_INFO, "{\"Id\":\"a\",\"State\":{}}", "missing \"Status\""},
    {P_INFO, "{\"Id\":\"a\",\"State\":{\"Status\":\"running\",\"Running\":\"yes\"}}",
     "not a boolean"},
    {P_INFO, "{\"Id\":\"a\",\"State\":{\"Status\":\"exited\",\"ExitCode\":4294967296}}",
     "out of range"},
    {P_INFO, "{\"Id\":\"a\",\"State\":{\"Status\":\"x\",\"StartedAt\":\"yesterday\"}}",
     "not RFC 3339"},
    {P_INFO, "{\"Id\":\"a\",\"State\":{\"Status\":\"x\",\"StartedAt\":\"2026-13-01T00:00:00Z\"}}",
     "not RFC 3339"},
    {P_INFO, "{\"Id\":\"a\",\"State\":{\"Status\":\"x\",\"Health\":\"healthy\"}}",
     "\"Health\" is not an object"},
    {P_INFO, "{\"Id\":\"a\",\"State\":{\"Status\":\"x\"},\"RestartCount\":-3}", "out of range"},
    {P_INFO, "{\"Id\":\"a\",\"State\":{\"Status\":\"x\"},\"Config\":{\"Labels\":{\"a\":null}}}",
     "is not a string"},
    {P_INFO,
     "{\"Id\":\"a\",\"State\":{\"Status\":\"x\"},\"NetworkSettings\":{\"Ports\":{\"x/tcp\":null}}}",
     "bad port key"},
    {P_INFO,
     "{\"Id\":\"a\",\"State\":{\"Status\":\"x\"},\"NetworkSettings\":{\"Ports\":{\"0/tcp\":null}}}",
     "bad port key"},
    {P_INFO,
     "{\"Id\":\"a\",\"State\":{\"Status\":\"x\"},\"NetworkSettings\":{\"Ports\":{\"80/\":null}}}",
     "bad port key"},
    {P_INFO,
     "{\"Id\":\"a\",\"State\":{\"Status\":\"x\"},\"NetworkSettings\":{\"Ports\":{\"80/tcp\":{}}}}",
     "is not an array"},
    {P_INFO,
     "{\"Id\":\"a\",\"State\":{\"Status\":\"x\"},\"NetworkSettings\":{\"Ports\":{\"80/tcp\":"
     "[{\"HostIp\":\"0.0.0.0\",\"HostPort\":\"99999\"}]}}}",
     "bad HostPort"},
    {P_INFO,
     "{\"Id\":\"a\",\"State\":{\"Status\":\"x\"},\"NetworkSettings\":{\"Ports\":{\"80/tcp\":"
     "[{\"HostIp\":\"0.0.0.0\",\"HostPort\":\"-1\"}]}}}",
     "bad HostPort"},
    {P_INFO,
     "{\"Id\":\"a\",\"State\":{\"Status\":\"x\"},\"NetworkSettings\":{\"Ports\":{\"80/tcp\":"
     "[{\"HostIp\":\"0.0.0.0\",\"HostPort\":12}]}}}",
     "not a string"},
    {P_INFO,
     "{\"Id\":\"a\",\"State\":{\"Status\":\"x\"},\"NetworkSettings\":{\"Ports\":{\"80/tcp\":[7]}}}",
     "expected a JSON object"},
    {P_INFO,
     "{\"Id\":\"a\",\"State\":{\"Status\":\"x\"},\"NetworkSettings\":{\"Networks\":{\"n\":[]}}}",
     "expected a JSON object"},
    {P_INFO,
     "{\"Id\":\"a\",\"State\":{\"Status\":\"x\"},\"NetworkSettings\":{\"Networks\":{\"n\":"
     "{\"IPAddress\":false}}}}",
     "not a string"},
    {P_ID, "{\"Warnings\":[]}", "missing \"Id\""},
    {P_ID, "\"Id\"", "invalid JSON"},
    {P_ID, "[{\"Id\":\"x\"}]", "expected a JSON object"},
    {P_IMAGE, "{\"Id\":\"sha256:x\",\"RepoTags\":\"a\"}", "not an array"},
    {P_IMAGE, "{}", "missing \"Id\""},
    {P_NETWORK, "{\"Id\":\"x\"}", "missing \"Name\""},
    {P_NETWORK, "{\"Id\":\"x\",\"Name\":\"n\",\"Labels\":\"a=b\"}", "not an object"},
    {P_NETWORKS, "{\"Id\":\"x\"}", "expected a JSON array"},
    {P_NETWORKS, "[{\"Id\":\"x\",\"Name\":\"n\"},{\"Id\":\"y\"}]", "missing \"Name\""},
    {P_EXEC, "{\"Running\":1}", "not a boolean"},
    {P_EXEC, "{\"Running\":false,\"ExitCode\":\"0\"}", "not an integer"},
    {P_EXEC, "{\"Running\":false,\"Pid\":-1}", "out of range"},
    {P_EVENT, "{\"Type\":\"container\"}", "missing \"Action\""},
    {P_EVENT, "{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":[]}", "not an object"},
    {P_EVENT, "{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"ID\":5}}", "not a string"},
    {P_EVENT,
     "{\"Type\":\"container\",\"Action\":\"die\",\"Actor\":{\"Attributes\":{\"exitCode\":0}}}",
     "not a string"},
    {P_EVENT, "{\"Type\":\"container\",\"Action\":\"die\",\"timeNano\":-5}", "out of range"},
};

static int run_parser(enum parser p, const char *body, size_t len, struct orch_error *err)
{
    int r = 0;
    switch (p) {
    case P_LIST: {
        struct docker_container_list l;
        r = docker_json_parse_container_list(body, len, &l, err);
        assert_int_equal(l.n, 0);
        docker_container_list_free(&l);
        break;
    }
    case P_INFO: {
        struct docker_container_info ci;
        r = docker_json_parse_container_info(body, len, &ci, err);
        assert_null(ci.id);
        docker_container_info_free(&ci);
        break;
    }
    case P_ID: {
        char *id = (char *)1;
        r = docker_json_parse_id(body, len, &id, err);
        assert_null(id);
        break;
    }
    case P_IMAGE: {
        struct docker_image_info ii;
        r = docker_json_parse_image_info(body, len, &ii, err);
        assert_null(ii.id);
        docker_image_info_free(&ii);
        break;
    }
    case P_NETWORK: {
        struct docker_network n;
        r = docker_json_parse_network(body, len, &n, err);
        assert_null(n.id);
        docker_network_free(&n);
        break;
    }
    case P_NETWORKS: {
        struct docker_network_list l;
        r = docker_json_parse_network_list(body, len, &l, err);
        assert_int_equal(l.n, 0);
        docker_network_list_free(&l);
        break;
    }
    case P_EXEC: {
        struct docker_exec_info ei;
        r = docker_json_parse_exec_info(body, len, &ei, err);
        assert_null(ei.container_id);
        docker_exec_info_free(&ei);
        break;
    }
    case P_EVENT: {
        struct docker_event ev;
        r = docker_json_parse_event(body, len, &ev, err);
        assert_null(ev.type);
        docker_event_free(&ev);
        break;
    }
    }
    return r;
}

static void test_hostile_json(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(hostile) / sizeof(hostile[0]); i++) {
        struct orch_error err = {0};
        int r = run_parser(hostile[i].p, hostile[i].body, strlen(hostile[i].body), &err);
        print_message("hostile %zu: %d %s\n", i, r, err.msg);
        assert_int_equal(r, -ORCH_E_DOCKER);
        assert_non_null(strstr(err.msg, hostile[i].msg));
    }
}

/* Deep nesting and a big body: bounded work, an error or a parse, never a crash. */
static void test_hostile_shapes(void **state)
{
    (void)state;
    struct orch_buf b = {0};
    for (int i = 0; i < 100000; i++)
        orch_buf_putc(&b, '[');
    for (int p = P_LIST; p <= P_EVENT; p++) {
        struct orch_error err = {0};
        assert_int_equal(run_parser(p, b.data, b.len, &err), -ORCH_E_DOCKER);
        assert_int_equal(run_parser(p, "\0{}", 3, &err), -ORCH_E_DOCKER);
        assert_int_equal(run_parser(p, NULL, 0, &err), -ORCH_E_DOCKER);
    }
    orch_buf_free(&b);

    /* 5000 containers with unknown extra fields still parse. */
    orch_buf_puts(&b, "[");
    for (int i = 0; i < 5000; i++)
        orch_buf_printf(&b, "%s{\"Id\":\"c%d\",\"Extra\":{\"x\":[1,2,{}]},\"Labels\":null}",
                        i ? "," : "", i);
    orch_buf_puts(&b, "]");
    struct docker_container_list l;
    struct orch_error err = {0};
    assert_int_equal(docker_json_parse_container_list(b.data, b.len, &l, &err), 0);
    assert_int_equal(l.n, 5000);
    assert_string_equal(l.v[4999].id, "c4999");
    docker_container_list_free(&l);
    orch_buf_free(&b);
}

static void test_time_parse(void **state)
{
    (void)state;
    static const struct {
        const char *s;
        int ok;
        int64_t ms;
    } t[] = {
        {"1970-01-01T00:00:00Z", 1, 0},
        {"0001-01-01T00:00:00Z", 1, 0},
        {"2026-11-27T01:53:51.740247357Z", 1, 1795744431740LL},
        {"2026-11-27T01:53:51Z", 1, 1795744431000LL},
        {"2026-11-27T03:53:51.7+02:00", 1, 1795744431700LL},
        {"2026-11-26T23:53:51-02:00", 1, 1795744431000LL},
        {"2000-02-29T12:00:00.001Z", 1, 951825600001LL},
        {"2026-11-27 01:53:51Z", 0},
        {"2026-11-27T01:53:51", 0},
        {"2026-11-27T01:53:51.Z", 0},
        {"2026-11-27T01:53:51Zjunk", 0},
        {"2026-00-27T01:53:51Z", 0},
        {"2026-11-27T24:00:00Z", 0},
        {"2026-11-27T01:53:51+2:00", 0},
        {"", 0},
        {"yesterday", 0},
    };
    for (size_t i = 0; i < sizeof(t) / sizeof(t[0]); i++) {
        int64_t ms = -1;
        struct orch_error err = {0};
        int r = docker_time_parse(t[i].s, &ms, &err);
        print_message("time '%s' -> %d %lld\n", t[i].s, r, (long long)ms);
        if (t[i].ok) {
            assert_int_equal(r, 0);
            assert_int_equal(ms, t[i].ms);
        } else {
            assert_int_equal(r, -ORCH_E_DOCKER);
        }
    }
}

static void test_pull_and_registry(void **state)
{
    static const struct {
        const char *body;
        const char *error;
    } pulls[] = {
        {"{\"status\":\"Pulling from x\"}\n{\"status\":\"Digest: sha256:ab\"}\n", NULL},
        {"{\"status\":\"Pulling\"}\n{\"errorDetail\":{\"message\":\"manifest unknown\"},"
         "\"error\":\"manifest unknown\"}\n",
         "manifest unknown"},
        {"", NULL},
        {"not json\n[1,2]\n{\"error\":3}\n", NULL},
        {"{\"error\":\"a\"}\n{\"error\":\"b\"}", "b"},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(pulls); i++) {
        char *e = docker_json_pull_error(pulls[i].body, strlen(pulls[i].body));
        if (pulls[i].error == NULL)
            assert_null(e);
        else
            assert_string_equal(e, pulls[i].error);
        free(e);
    }
    static const struct {
        const char *ref;
        const char *allowed;
        bool ok;
    } regs[] = {
        {"127.0.0.1:5000/web:1", "127.0.0.1:5000", true},
        {"127.0.0.1:5000/web:1", "registry.local, 127.0.0.1:5000", true},
        {"registry.local/team/web:2", "registry.local", true},
        {"localhost/web", "localhost", true},
        {"web:1", "docker.io", false},       /* Docker Hub: never */
        {"library/web:1", "library", false}, /* "library" is a Hub namespace, not a host */
        {"registry.local/web", "", false},
        {"registry.local/web", NULL, false},
        {"registry.local/web", "registry.loca", false},
        {"evil.example/web", "registry.local", false},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(regs); i++)
        assert_int_equal(docker_registry_allowed(regs[i].ref, regs[i].allowed), regs[i].ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_pull_and_registry),
        cmocka_unit_test(test_container_create_body),
        cmocka_unit_test(test_container_create_invalid),
        cmocka_unit_test(test_other_bodies),
        cmocka_unit_test(test_network_containers_and_names),
        cmocka_unit_test(test_escape_and_filters),
        cmocka_unit_test(test_api_version),
        cmocka_unit_test(test_status_to_error),
        cmocka_unit_test(test_parse_container_list_fixture),
        cmocka_unit_test(test_parse_inspect_fixtures),
        cmocka_unit_test(test_parse_small_answers),
        cmocka_unit_test(test_events_stream),
        cmocka_unit_test(test_hostile_json),
        cmocka_unit_test(test_hostile_shapes),
        cmocka_unit_test(test_time_parse),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
