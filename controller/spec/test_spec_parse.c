/* spec_parse: the example spec, defaults, every key, stringification, bind-mount resolution,
 * and error tables with exact positions and message substrings. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "base/util.h"
#include "spec/spec.h"
#include "support/test_fixture.h"

static const struct spec_parse_options opts = {.file = "test.yaml", .base_dir = "/srv/app"};

static struct spec_app parse_ok(const char *yaml)
{
    struct spec_app app;
    struct spec_diags d;
    struct orch_error err = {0};
    int rc = spec_parse(yaml, strlen(yaml), &opts, &app, &d, &err);
    if (rc != 0) {
        char *s = spec_diags_format(&d, "test.yaml");
        fail_msg("expected success for:\n%s\ngot:\n%s", yaml, s);
    }
    assert_int_equal(d.n, 0);
    return app;
}

static struct spec_diags parse_fail(const char *yaml)
{
    struct spec_app app;
    struct spec_diags d;
    struct orch_error err = {0};
    int rc = spec_parse(yaml, strlen(yaml), &opts, &app, &d, &err);
    if (rc != -ORCH_E_INVALID)
        fail_msg("expected failure for:\n%s", yaml);
    assert_true(d.n > 0);
    assert_null(app.services);
    assert_null(app.app);
    return d;
}

static void test_example_shop(void **state)
{
    (void)state;
    size_t len;
    char *text = test_fixture_read(ORCH_SOURCE_DIR "/manifests/examples/shop.yaml", &len);
    struct spec_app app;
    struct spec_diags d;
    struct orch_error err = {0};
    assert_int_equal(spec_parse(text, len, &opts, &app, &d, &err), 0);
    assert_int_equal(app.version, 1);
    assert_string_equal(app.app, "shop");
    assert_int_equal(app.services_len, 2);
    const struct spec_service *web = spec_app_find(&app, "web");
    const struct spec_service *api = spec_app_find(&app, "api");
    assert_non_null(web);
    assert_non_null(api);
    assert_null(spec_app_find(&app, "db"));
    assert_ptr_equal(web, &app.services[0]); /* file order */
    assert_int_equal(web->replicas, 3);
    assert_true(web->has_command);
    assert_int_equal(web->command_len, 2);
    assert_string_equal(web->command[1], "serve");
    assert_null(web->command[2]);
    assert_int_equal(web->health.kind, SPEC_PROBE_HTTP);
    assert_string_equal(web->health.http_path, "/healthz");
    assert_int_equal(web->health.port_index, 0);
    assert_int_equal(web->update.deadline_ms, 60000);
    assert_int_equal(web->update.stop_grace_ms, 5000);
    assert_int_equal(web->resources.nano_cpus, 500000000);
    assert_int_equal(web->resources.memory_bytes, 64 << 20);
    assert_int_equal(web->depends_on_len, 1);
    assert_string_equal(web->depends_on[0], "api");
    assert_int_equal(api->replicas, 2);
    assert_string_equal(api->health.port, "http");
    /* line: where "  web:" is in the file */
    int web_line = 1;
    for (const char *p = text; strncmp(p, "  web:", 6) != 0; p++)
        web_line += *p == '\n';
    assert_int_equal(web->line, web_line);
    spec_app_free(&app);
    free(text);
}

static void test_defaults(void **state)
{
    (void)state;
    struct spec_app app = parse_ok("app: a\nservices:\n  web:\n    image: nginx\n");
    const struct spec_service *s = &app.services[0];
    assert_int_equal(app.version, 1);
    assert_string_equal(s->name, "web");
    assert_int_equal(s->replicas, 1);
    assert_false(s->has_command);
    assert_null(s->command);
    assert_false(s->has_entrypoint);
    assert_int_equal(s->env_len, 0);
    assert_int_equal(s->labels_len, 0);
    assert_int_equal(s->ports_len, 0);
    assert_int_equal(s->health.kind, SPEC_PROBE_NONE);
    assert_int_equal(s->health.port_index, -1);
    assert_int_equal(s->health.interval_ms, 2000);
    assert_int_equal(s->health.timeout_ms, 1000);
    assert_int_equal(s->health.retries, 3);
    assert_int_equal(s->health.start_period_ms, 0);
    assert_int_equal(s->health.start_interval_ms, 250);
    assert_int_equal(s->update.strategy, SPEC_STRATEGY_ROLLING);
    assert_int_equal(s->update.max_surge.value, 1);
    assert_false(s->update.max_surge.percent);
    assert_int_equal(s->update.max_unavailable.value, 0);
    assert_int_equal(s->update.min_ready_ms, 0);
    assert_int_equal(s->update.deadline_ms, 120000);
    assert_true(s->update.auto_rollback);
    assert_int_equal(s->update.stop_grace_ms, 10000);
    assert_false(s->autoscale.enabled);
    assert_int_equal(s->resources.nano_cpus, 0);
    assert_int_equal(s->resources.memory_bytes, 0);
    assert_int_equal(s->volumes_len, 0);
    assert_int_equal(s->depends_on_len, 0);
    assert_non_null(s->depends_on);
    assert_null(s->depends_on[0]);
    spec_app_free(&app);
}

static const char every_key[] =
    "version: 1\n"
    "app: shop\n"
    "services:\n"
    "  web:\n"
    "    image: registry.local:5000/shop/web:2.1\n"
    "    replicas: 0\n"
    "    command: [serve, --port, 8080, true, ~]\n"
    "    entrypoint: [\"/bin/app\"]\n"
    "    env: {ZED: last, A_1: 1.50, EMPTY: , FLAG: True, QUOTED: 'yes'}\n"
    "    labels: {team: web, tier: 3}\n"
    "    ports:\n"
    "      - {name: metrics, container: 9090, protocol: udp}\n"
    "      - name: http\n"
    "        container: 8080\n"
    "        protocol: tcp\n"
    "    health:\n"
    "      http: /healthz\n"
    "      port: http\n"
    "      interval: 1m30s\n"
    "      timeout: 500ms\n"
    "      retries: 100\n"
    "      start_period: 0\n"
    "      start_interval: 100ms\n"
    "    update:\n"
    "      strategy: recreate\n"
    "      max_surge: 25%\n"
    "      max_unavailable: \"100%\"\n"
    "      min_ready: 5s\n"
    "      deadline: 1s\n"
    "      auto_rollback: FALSE\n"
    "      stop_grace: 1h\n"
    "    autoscale: {min: 2, max: 1000, cpu: 70}\n"
    "    resources: {cpus: 1024, memory: 1Gi}\n"
    "    volumes:\n"
    "      - data:/var/lib/db\n"
    "      - ./conf:/etc/app:ro\n"
    "      - ../shared/./x/..:/shared/:rw\n"
    "      - /abs//path/:/abs\n"
    "      - .:/src\n"
    "    depends_on: [db, cache]\n"
    "  db:\n"
    "    image: postgres@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef\n"
    "    health: {exec: pg_isready -q}\n"
    "  cache:\n"
    "    image: redis\n"
    "    ports: [{name: redis, container: 6379}]\n"
    "    health: {tcp: redis, retries: 1}\n"
    "    resources: {cpus: 0.5, memory: 6291456}\n";

static void test_every_key(void **state)
{
    (void)state;
    struct spec_app app = parse_ok(every_key);
    assert_int_equal(app.services_len, 3);
    const struct spec_service *s = &app.services[0];
    assert_string_equal(s->image, "registry.local:5000/shop/web:2.1");
    assert_int_equal(s->replicas, 0);
    static const char *const cmd[] = {"serve", "--port", "8080", "true", ""};
    assert_int_equal(s->command_len, 5);
    for (size_t i = 0; i < 5; i++)
        assert_string_equal(s->command[i], cmd[i]);
    assert_null(s->command[5]);
    assert_true(s->has_entrypoint);
    assert_string_equal(s->entrypoint[0], "/bin/app");
    /* env sorted by key, scalars stringified as written (booleans normalised) */
    static const char *const env[][2] = {
        {"A_1", "1.50"}, {"EMPTY", ""}, {"FLAG", "true"}, {"QUOTED", "yes"}, {"ZED", "last"}};
    assert_int_equal(s->env_len, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_string_equal(s->env[i].key, env[i][0]);
        assert_string_equal(s->env[i].value, env[i][1]);
    }
    assert_int_equal(s->labels_len, 2);
    assert_string_equal(s->labels[1].key, "tier");
    assert_string_equal(s->labels[1].value, "3");
    assert_int_equal(s->ports_len, 2);
    assert_int_equal(s->ports[0].protocol, SPEC_PROTO_UDP);
    assert_int_equal(s->ports[1].protocol, SPEC_PROTO_TCP);
    assert_int_equal(s->ports[1].container, 8080);
    assert_int_equal(s->health.kind, SPEC_PROBE_HTTP);
    assert_int_equal(s->health.port_index, 1);
    assert_int_equal(s->health.interval_ms, 90000);
    assert_int_equal(s->health.timeout_ms, 500);
    assert_int_equal(s->health.retries, 100);
    assert_int_equal(s->health.start_period_ms, 0);
    assert_int_equal(s->health.start_interval_ms, 100);
    assert_int_equal(s->update.strategy, SPEC_STRATEGY_RECREATE);
    assert_true(s->update.max_surge.percent);
    assert_int_equal(s->update.max_surge.value, 25);
    assert_true(s->update.max_unavailable.percent);
    assert_int_equal(s->update.max_unavailable.value, 100);
    assert_int_equal(s->update.min_ready_ms, 5000);
    assert_int_equal(s->update.deadline_ms, 1000);
    assert_false(s->update.auto_rollback);
    assert_int_equal(s->update.stop_grace_ms, 3600000);
    assert_true(s->autoscale.enabled);
    assert_int_equal(s->autoscale.min, 2);
    assert_int_equal(s->autoscale.max, 1000);
    assert_int_equal(s->autoscale.cpu, 70);
    assert_int_equal(s->autoscale.requests, 0);
    assert_int_equal(s->autoscale.scale_down_delay_ms, 300000);
    assert_int_equal(s->resources.nano_cpus, 1024000000000LL);
    assert_int_equal(s->resources.memory_bytes, 1LL << 30);
    static const struct {
        enum spec_volume_kind kind;
        const char *source, *target;
        bool ro;
    } vols[] = {
        {SPEC_VOLUME_NAMED, "data", "/var/lib/db", false},
        {SPEC_VOLUME_BIND, "/srv/app/conf", "/etc/app", true},
        {SPEC_VOLUME_BIND, "/srv/shared", "/shared", false},
        {SPEC_VOLUME_BIND, "/abs/path", "/abs", false},
        {SPEC_VOLUME_BIND, "/srv/app", "/src", false},
    };
    assert_int_equal(s->volumes_len, 5);
    for (size_t i = 0; i < 5; i++) {
        assert_int_equal(s->volumes[i].kind, vols[i].kind);
        assert_string_equal(s->volumes[i].source, vols[i].source);
        assert_string_equal(s->volumes[i].target, vols[i].target);
        assert_int_equal(s->volumes[i].read_only, vols[i].ro);
    }
    assert_int_equal(s->depends_on_len, 2);
    assert_string_equal(s->depends_on[1], "cache");

    const struct spec_service *db = &app.services[1];
    assert_int_equal(db->health.kind, SPEC_PROBE_EXEC);
    assert_int_equal(db->health.exec_argc, 3);
    assert_string_equal(db->health.exec_argv[0], "/bin/sh");
    assert_string_equal(db->health.exec_argv[1], "-c");
    assert_string_equal(db->health.exec_argv[2], "pg_isready -q");
    assert_null(db->health.exec_argv[3]);
    assert_int_equal(db->health.port_index, -1);

    const struct spec_service *cache = &app.services[2];
    assert_int_equal(cache->health.kind, SPEC_PROBE_TCP);
    assert_string_equal(cache->health.port, "redis");
    assert_int_equal(cache->health.port_index, 0);
    assert_int_equal(cache->health.retries, 1);
    assert_int_equal(cache->resources.nano_cpus, 500000000);
    assert_int_equal(cache->resources.memory_bytes, 6291456);
    spec_app_free(&app);
}

/* Small valid variations: each must parse, and the checked field must hold the value. */
static void test_valid_variants(void **state)
{
    (void)state;
    static const char *const ok[] = {
        /* the plain integer 0 is a duration; booleans in YAML 1.2 spellings */
        "app: a\nservices:\n  w:\n    image: x\n    update: {stop_grace: 0, auto_rollback: True}\n",
        "app: a\nservices:\n  w:\n    image: x\n    update: {min_ready: 0ms, auto_rollback: "
        "false}\n",
        /* tcp: true uses the first port; a flow mapping and a quoted key */
        "app: a\nservices:\n  w: {image: x, ports: [{name: p, container: 1}], health: {tcp: "
        "true}}\n",
        "'app': a\n\"services\":\n  w:\n    image: x\n    replicas: 1000\n",
        /* tags that say what the scalar already is */
        "app: !!str a\nservices:\n  w:\n    image: x\n    replicas: !!int 2\n",
        /* anchors and aliases: a shared body */
        "app: a\nservices:\n  w: &b\n    image: x\n  v: *b\n",
        /* comments, a document start and end marker */
        "# c\n---\napp: a # c\nservices:\n  w:\n    image: x\n...\n",
        /* exec as a list, recreate with both zero */
        "app: a\nservices:\n  w:\n    image: x\n    health: {exec: [true]}\n    update: "
        "{strategy: recreate, max_surge: 0}\n",
        /* a chain of dependencies without a cycle, declared out of order */
        "app: a\nservices:\n  a: {image: x, depends_on: [b, c]}\n  b: {image: x, depends_on: "
        "[c]}\n  c: {image: x}\n",
        "version: 1\napp: a\nservices:\n  w:\n    image: x\n    env: {}\n    labels: {}\n    "
        "ports: []\n    volumes: []\n    depends_on: []\n",
        /* max equal to min, a 40-character name */
        "app: a234567890123456789012345678901234567890\nservices:\n  w:\n    image: x\n    "
        "autoscale: {min: 3, max: 3, cpu: 100}\n",
        /* a requests target alone, and a delay of zero */
        "app: a\nservices:\n  w:\n    image: x\n    "
        "autoscale: {min: 1, max: 5, requests: 200, scale_down_delay: 0}\n",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct spec_app app = parse_ok(ok[i]);
        assert_true(app.services_len >= 1);
        spec_app_free(&app);
    }
    struct spec_app app = parse_ok(ok[sizeof(ok) / sizeof(ok[0]) - 1]);
    assert_int_equal(app.services[0].autoscale.cpu, 0);
    assert_int_equal(app.services[0].autoscale.requests, 200);
    assert_int_equal(app.services[0].autoscale.scale_down_delay_ms, 0);
    spec_app_free(&app);
    app = parse_ok(ok[2]);
    assert_int_equal(app.services[0].health.port_index, 0);
    assert_string_equal(app.services[0].health.port, "p");
    spec_app_free(&app);
    app = parse_ok(ok[5]);
    assert_int_equal(app.services_len, 2);
    assert_string_equal(app.services[1].name, "v");
    assert_string_equal(app.services[1].image, "x");
    spec_app_free(&app);
    app = parse_ok(ok[4]);
    assert_int_equal(app.services[0].replicas, 2);
    spec_app_free(&app);
}

struct err_case {
    const char *yaml;
    int line;
    int column;
    const char *substr;
};

/* Returns true when the case's diagnostic is there; prints what was found otherwise. */
static bool check_err(const struct err_case *c)
{
    struct spec_diags d = parse_fail(c->yaml);
    bool found = false;
    for (size_t i = 0; i < d.n && !found; i++)
        found = d.v[i].line == c->line && d.v[i].column == c->column &&
                strstr(d.v[i].message, c->substr) != NULL;
    if (!found) {
        char *s = spec_diags_format(&d, "test.yaml");
        print_error("for:\n%s\nwant %d:%d '%s', got:\n%s", c->yaml, c->line, c->column, c->substr,
                    s);
        free(s);
    }
    spec_diags_free(&d);
    return found;
}

#define SVC "app: a\nservices:\n  web:\n    image: nginx\n"

static void test_errors(void **state)
{
    (void)state;
    static const struct err_case cases[] = {
        {"app: a\nservices:\n  web:\n    imgae: nginx\n", 4, 5,
         "services.web: unknown key 'imgae'; did you mean 'image'?"},
        {"app: a\nservices:\n  web:\n    imgae: nginx\n", 4, 5,
         "services.web: missing required key 'image'"},
        {SVC "    replicas: \"3\"\n", 5, 15,
         "services.web.replicas: must be an integer, got a string"},
        {SVC "    replicas: 3.0\n", 5, 15, "must be an integer, got a number"},
        {SVC "    replicas: 1001\n", 5, 15, "must be between 0 and 1000, got 1001"},
        {SVC "    replicas: 99999999999999999999999\n", 5, 15, "must be between 0 and 1000"},
        {SVC "    replicas: 0x10\n", 5, 15, "must be an integer, got a string"},
        {SVC "    update: {auto_rollback: yes}\n", 5, 29, "must be true or false, got a string"},
        {SVC "    update: {auto_rollback: on}\n", 5, 29, "must be true or false"},
        {SVC "    command: \"run it\"\n", 5, 14, "must be a list, got a string"},
        {SVC "    env: [A]\n", 5, 10, "services.web.env: must be a mapping, got a list"},
        {SVC "    env: {A: [1]}\n", 5, 14, "services.web.env.A: must be a scalar"},
        {SVC "    env: {1A: x}\n", 5, 11, "'1A' is not a valid variable name"},
        {SVC "    labels: {orch.revision: \"1\"}\n", 5, 14, "'orch.revision' is reserved"},
        {SVC "    labels: {\"\": x}\n", 5, 14, "label keys must not be empty"},
        {SVC "    ports: [{name: http, container: 65536}]\n", 5, 37,
         "ports[0].container: must be between 1 and 65535"},
        {SVC "    ports: [{name: http, container: \"80\"}]\n", 5, 37,
         "must be an integer, got a string"},
        {SVC "    ports: [{name: -x, container: 80}]\n", 5, 20, "'-x' is not a valid port name"},
        {SVC "    ports: [{name: a, container: 80, proto: tcp}]\n", 5, 38,
         "unknown key 'proto'; did you mean 'protocol'?"},
        {SVC "    ports: [{name: a, container: 80}]\n    health: {http: /, port: b}\n", 6, 29,
         "health.port: no port named 'b'"},
        {SVC "    ports: [{name: a, container: 80}]\n    health: {tcp: false}\n", 6, 19,
         "must be true or a port name"},
        {SVC "    ports: [{name: a, container: 80}]\n    health: {tcp: a, port: b}\n", 6, 28,
         "conflicts with 'tcp: a'"},
        {SVC "    health: {exec: []}\n", 5, 20, "health.exec: must not be empty"},
        {SVC "    health: {exec: true}\n", 5, 20,
         "health.exec: must be a list of strings, got a boolean"},
        {SVC "    health: {exec: x, interval: 0s}\n", 5, 33, "interval: must be longer than 0s"},
        {SVC "    health: {exec: x, timeout: 0}\n", 5, 32, "timeout: must be longer than 0s"},
        {SVC "    health: {exec: x, retries: 101}\n", 5, 32, "must be between 1 and 100"},
        {SVC "    health: {exec: x, helth: 1}\n", 5, 23, "unknown key 'helth'"},
        {SVC "    health: {exec: x, exec: y}\n", 5, 23, "duplicate key 'exec' (first at line 5)"},
        {SVC "    health:\n", 5, 12, "services.web.health: must be a mapping, got null"},
        {SVC "    update: {max_surge: \"5\"}\n", 5, 25, "or a percentage"},
        {SVC "    update: {max_surge: 5.5}\n", 5, 25, "must be an integer or a percentage"},
        {SVC "    update: {max_surge: 0, max_unavailable: 0%}\n", 5, 13, "both 0"},
        {SVC "    update: {deadline: 0s}\n", 5, 24, "deadline: must be at least 1s, got 0s"},
        {SVC "    update: {stop_grace: 61m}\n", 5, 26, "stop_grace: must be at most 1h, got 1h1m"},
        {SVC "    update: {min_ready: 2}\n", 5, 25, "2 has no unit"},
        {SVC "    update: {deadline: true}\n", 5, 24, "must be a duration like 2s, got a boolean"},
        {SVC "    autoscale: {min: 0, max: 2, cpu: 50}\n", 5, 22, "must be between 1 and 1000"},
        {SVC "    autoscale: {min: 1, max: 1001, cpu: 50}\n", 5, 30, "must be between 1 and 1000"},
        {SVC "    autoscale: {max: 2, cpu: 50}\n", 5, 16, "autoscale: missing required key 'min'"},
        {SVC "    autoscale: {min: 1, max: 2}\n", 5, 16, "autoscale: needs a target: 'cpu', "},
        {SVC "    autoscale: {min: 1, max: 2, requests: 1000001}\n", 5, 43,
         "between 1 and 1000000"},
        {SVC "    autoscale: {min: 1, max: 2, cpu: 5, scale_down_delay: 61m}\n", 5, 59,
         "scale_down_delay: must be at most 1h"},
        {SVC "    autoscale: {min: 1, max: 2, cpu: 5, scale_down_dely: 1m}\n", 5, 41,
         "did you mean 'scale_down_delay'?"},
        {SVC "    resources: {cpus: 1025}\n", 5, 23, "must be more than 0 and at most 1024"},
        {SVC "    resources: {cpus: .inf}\n", 5, 23, "must be more than 0"},
        {SVC "    resources: {cpus: -1}\n", 5, 23, "must be more than 0"},
        {SVC "    resources: {memory: 6291455}\n", 5, 25, "must be at least 6M"},
        {SVC "    resources: {memory: 1.5G}\n", 5, 25, "'1.5G' is not a size"},
        {SVC "    resources: {memory: [1]}\n", 5, 25, "must be a size like 256M"},
        {SVC "    volumes: [\"data:/d:ro:x\"]\n", 5, 15, "is not SOURCE:TARGET"},
        {SVC "    volumes: [{source: data}]\n", 5, 15,
         "volumes[0]: must be a string, got a mapping"},
        {SVC "    volumes: [\":/d\"]\n", 5, 15, "has an empty source"},
        {SVC "    volumes: [\"-x:/d\"]\n", 5, 15, "neither a path"},
        {SVC "    volumes: [\"./a:/d/../\"]\n", 5, 15, "cannot mount over the container's root"},
        {SVC "    volumes: [\"a:/d\", \"b:/d/\"]\n", 5, 23,
         "target '/d' is already mounted by volumes[0]"},
        {SVC "    depends_on: db\n", 5, 17, "must be a list of service names, got a string"},
        {SVC "    depends_on: [{a: b}]\n", 5, 18, "depends_on[0]: must be a string, got a mapping"},
        {SVC "  api:\n    image: nginx\n    depends_on: [wbe]\n", 7, 18,
         "no service named 'wbe' in this app; did you mean 'web'?"},
        {"app: a\nservices:\n  a: {image: x, depends_on: [a]}\n", 3, 30,
         "a service cannot depend on itself"},
        {"app: a\nservices:\n  b: {image: x, depends_on: [a]}\n  a: {image: x, depends_on: [b]}\n",
         3, 30, "services.b.depends_on[0]: depends_on cycle: b -> a -> b"},
        {"app: a\nservices:\n  x: {image: x, depends_on: [b]}\n  b: {image: x, depends_on: "
         "[c]}\n  c: {image: x, depends_on: [d, b]}\n  d: {image: x}\n",
         4, 30, "services.b.depends_on[0]: depends_on cycle: b -> c -> b"},
        {"app: a\nservices:\n  web:\n    image: nginx\n    <<: {replicas: 2}\n", 5, 5,
         "unknown key '<<'"},
        {"app: a\nservices:\n  web:\n    image: nginx\n    image: redis\n", 5, 5,
         "services.web: duplicate key 'image' (first at line 4)"},
        {"app: a\napp: b\nservices:\n  web:\n    image: nginx\n", 2, 1, "duplicate key 'app'"},
        {"app: a\nservice:\n  web:\n    image: nginx\n", 2, 1,
         "unknown key 'service'; did you mean 'services'?"},
        {"app: a\nservices:\n  web:\n    image: nginx\n    depends: [x]\n", 5, 5,
         "unknown key 'depends'; did you mean 'depends_on'?"},
        {"app: a\nservices:\n  web:\n    image: nginx\n    healthcheck: {}\n", 5, 5,
         "unknown key 'healthcheck'; did you mean 'health'?"},
        {"app: a\nservices:\n  web:\n    image: nginx\n    zzzzzz: 1\n", 5, 5,
         "unknown key 'zzzzzz'"},
        {"app: [a]\nservices:\n  web:\n    image: nginx\n", 1, 6,
         "app: must be a string, got a list"},
        {"app: 123\nservices:\n  web:\n    image: nginx\n", 1, 6,
         "app: must be a string, got an integer"},
        {"app: a\nservices: [web]\n", 2, 11, "services: must be a mapping of service names"},
        {"app: a\nservices:\n  web:\n    image: \"a\\0b\"\n", 4, 12, "must not contain NUL"},
        {"app: a\nservices:\n  web:\n    image: nginx\n    env: {A: !!binary aGk=}\n", 5, 14,
         "got a value tagged '!!binary'"},
        {"app: a\nservices:\n  web:\n    image: nginx\n  ? [x]\n  : {image: y}\n", 5, 5,
         "service names must be strings, got a list"},
        {"app: a\nservices:\n  web:\n    image: nginx\n      bad: 1\n", 5, 10,
         "YAML syntax error: mapping values are not allowed"},
        {"app: a\nservices:\n  web:\n    image: \"unterminated\n", 5, 1,
         "YAML syntax error: found unexpected end of stream"},
        {"---\n...\n", 1, 1, "empty spec"},
        {"~\n", 1, 1, "empty spec"},
        {"\n\n  [1, 2]\n", 1, 1, "a spec is a mapping with 'app' and 'services', got a list"},
        {"a: &x 1\nb: *x\nc: *y\n", 3, 4, "alias '*y' refers to no anchor"},
        {"a: &x [*x]\n", 1, 8, "alias '*x' refers to no anchor"},
    };
    size_t failed = 0;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++)
        failed += !check_err(&cases[i]);
    assert_int_equal(failed, 0);
}

/* Every error is reported, in position order, and nothing else. */
static void test_multiple_errors(void **state)
{
    (void)state;
    static const char yaml[] = "version: 3\n"
                               "app: Bad\n"
                               "services:\n"
                               "  web:\n"
                               "    image: nginx\n"
                               "    replicas: many\n"
                               "    env: {A-B: 1}\n"
                               "  api:\n"
                               "    replicas: 2\n"
                               "    depends_on: [nope]\n";
    static const struct {
        int line, column;
        const char *substr;
    } want[] = {
        {1, 10, "version: unsupported spec version 3"},
        {2, 6, "app: 'Bad' is not a valid app name"},
        {6, 15, "services.web.replicas: must be an integer, got a string"},
        {7, 11, "services.web.env: 'A-B' is not a valid variable name"},
        {9, 5, "services.api: missing required key 'image'"},
        {10, 18, "services.api.depends_on[0]: no service named 'nope' in this app"},
    };
    struct spec_app app;
    struct spec_diags d;
    struct orch_error err = {0};
    assert_int_equal(spec_parse(yaml, strlen(yaml), &opts, &app, &d, &err), -ORCH_E_INVALID);
    char *s = spec_diags_format(&d, "shop.yaml");
    if (d.n != sizeof(want) / sizeof(want[0]))
        fail_msg("want %zu diagnostics, got:\n%s", sizeof(want) / sizeof(want[0]), s);
    for (size_t i = 0; i < d.n; i++) {
        assert_int_equal(d.v[i].line, want[i].line);
        assert_int_equal(d.v[i].column, want[i].column);
        assert_non_null(strstr(d.v[i].message, want[i].substr));
    }
    /* gcc style, one line each */
    assert_true(strncmp(s, "shop.yaml:1:10: error: version: unsupported spec version 3", 58) == 0);
    assert_non_null(strstr(s, "\nshop.yaml:10:18: error: services.api.depends_on[0]: "));
    assert_string_equal(strrchr(s, '\n'), "\n");
    /* the summary names the first error */
    assert_non_null(strstr(err.msg, "test.yaml:1:10: version: unsupported spec version 3"));
    assert_non_null(strstr(err.msg, "and more errors"));
    free(s);
    spec_diags_free(&d);
}

static void test_bind_mounts(void **state)
{
    (void)state;
    static const struct {
        const char *base, *vol, *source;
    } cases[] = {
        {"/srv/app", "./conf:/c", "/srv/app/conf"},
        {"/srv/app", "../x/./y/:/c", "/srv/x/y"},
        {"/srv/app", "../../../..:/c", "/"},
        {"/srv/app", ".:/c", "/srv/app"},
        {"/srv/app", "..:/c", "/srv"},
        {"/", "./a:/c", "/a"},
        {"/srv/app", "/etc/../var/./log//:/c", "/var/log"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char yaml[256];
        snprintf(yaml, sizeof(yaml),
                 "app: a\nservices:\n  w:\n    image: x\n    volumes: [\"%s\"]\n", cases[i].vol);
        struct spec_parse_options o = {.file = "f", .base_dir = cases[i].base};
        struct spec_app app;
        struct spec_diags d;
        struct orch_error err = {0};
        assert_int_equal(spec_parse(yaml, strlen(yaml), &o, &app, &d, &err), 0);
        assert_int_equal(app.services[0].volumes[0].kind, SPEC_VOLUME_BIND);
        if (strcmp(app.services[0].volumes[0].source, cases[i].source) != 0)
            fail_msg("%s: got %s, want %s", cases[i].vol, app.services[0].volumes[0].source,
                     cases[i].source);
        spec_app_free(&app);
    }
    /* Without a folder, a relative bind mount cannot be resolved; absolute ones still can. */
    static const char rel[] = "app: a\nservices:\n  w:\n    image: x\n    volumes: [\"./a:/c\"]\n";
    struct spec_app app;
    struct spec_diags d;
    assert_int_equal(spec_parse(rel, strlen(rel), NULL, &app, &d, NULL), -ORCH_E_INVALID);
    assert_int_equal(d.n, 1);
    assert_non_null(strstr(d.v[0].message, "needs the spec file's folder"));
    char *s = spec_diags_format(&d, NULL);
    assert_true(strncmp(s, "-:5:15: error: ", 15) == 0);
    free(s);
    spec_diags_free(&d);
    static const char abs[] = "app: a\nservices:\n  w:\n    image: x\n    volumes: [\"/a:/c\"]\n";
    assert_int_equal(spec_parse(abs, strlen(abs), NULL, &app, &d, NULL), 0);
    spec_app_free(&app);
}

static void test_diag_cap_and_long_keys(void **state)
{
    (void)state;
    /* 300 unknown keys: 100 diagnostics and one line saying the reading stopped. */
    struct orch_buf b = {0};
    orch_buf_puts(&b, "app: a\nservices:\n  w:\n    image: x\n");
    for (int i = 0; i < 300; i++)
        orch_buf_printf(&b, "    bogus%d: 1\n", i);
    struct spec_diags d = parse_fail(b.data);
    assert_int_equal(d.n, 101);
    assert_non_null(strstr(d.v[100].message, "too many errors"));
    spec_diags_free(&d);
    orch_buf_free(&b);

    /* A megabyte value with control characters is shown short and on one line. */
    orch_buf_puts(&b, "app: a\nservices:\n  w:\n    image: x\n    update: {strategy: \"");
    for (int i = 0; i < 1 << 20; i++)
        orch_buf_puts(&b, i % 7 == 0 ? "\\t" : "k");
    orch_buf_puts(&b, "\"}\n");
    d = parse_fail(b.data);
    assert_int_equal(d.n, 1);
    assert_true(strlen(d.v[0].message) < 200);
    assert_null(strchr(d.v[0].message, '\t'));
    assert_non_null(strstr(d.v[0].message, "\\x09"));
    assert_non_null(strstr(d.v[0].message, "..."));
    spec_diags_free(&d);
    orch_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_example_shop), cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_every_key),    cmocka_unit_test(test_valid_variants),
        cmocka_unit_test(test_errors),       cmocka_unit_test(test_multiple_errors),
        cmocka_unit_test(test_bind_mounts),  cmocka_unit_test(test_diag_cap_and_long_keys),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
