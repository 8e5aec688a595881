/* The canonical template and its hash: specs written differently but meaning the same give
 * one hash, any template change gives another, replicas and autoscale give none; the JSON of
 * a service survives spec_service_from_json exactly. */
#include <jansson.h>
#include <openssl/evp.h>
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

static struct spec_app parse_ok(const char *yaml)
{
    struct spec_parse_options o = {.file = "t.yaml", .base_dir = "/srv/app"};
    struct spec_app app;
    struct spec_diags d;
    if (spec_parse(yaml, strlen(yaml), &o, &app, &d, NULL) != 0) {
        char *s = spec_diags_format(&d, "t.yaml");
        fail_msg("expected success for:\n%s\ngot:\n%s", yaml, s);
    }
    return app;
}

/* The hash and canonical form of service "web" in yaml. */
static void web_hash(const char *yaml, char hash[65], char **canon)
{
    struct spec_app app = parse_ok(yaml);
    const struct spec_service *web = spec_app_find(&app, "web");
    assert_non_null(web);
    spec_template_hash(web, hash);
    if (canon != NULL)
        *canon = spec_template_canonical(web);
    spec_app_free(&app);
}

#define DEPS "  db: {image: pg}\n  cache: {image: redis}\n"

static const char base[] = "app: a\n"
                           "services:\n"
                           "  web:\n"
                           "    image: nginx:1\n"
                           "    replicas: 2\n"
                           "    command: [\"serve\", \"--x\"]\n"
                           "    env: {B: \"2\", A: \"1\"}\n"
                           "    labels: {team: web}\n"
                           "    ports: [{name: http, container: 80}]\n"
                           "    health: {http: /h}\n"
                           "    depends_on: [db, cache]\n" DEPS;

static void test_same_hash(void **state)
{
    (void)state;
    static const char *const same[] = {
        /* key order, block style, env order */
        "services:\n"
        "  web:\n"
        "    depends_on:\n      - db\n      - cache\n"
        "    health:\n      http: /h\n"
        "    env:\n      A: \"1\"\n      B: \"2\"\n"
        "    ports:\n      - container: 80\n        name: http\n"
        "    labels:\n      team: web\n"
        "    command:\n      - serve\n      - --x\n"
        "    image: nginx:1\n" DEPS "app: a\n",
        /* quoting styles and stringified scalars */
        "app: 'a'\nservices:\n  \"web\":\n    image: 'nginx:1'\n    command: [serve, '--x']\n"
        "    env: {A: 1, B: 2}\n    labels: {\"team\": \"web\"}\n"
        "    ports: [{name: \"http\", container: 80}]\n    health: {http: \"/h\"}\n"
        "    depends_on: [\"db\", cache]\n" DEPS,
        /* every default written out */
        "version: 1\napp: a\nservices:\n  web:\n    image: nginx:1\n    replicas: 1\n"
        "    command: [serve, --x]\n    env: {A: \"1\", B: \"2\"}\n    labels: {team: web}\n"
        "    ports: [{name: http, container: 80, protocol: tcp}]\n"
        "    health: {http: /h, port: http, interval: 2s, timeout: 1000ms, retries: 3, "
        "start_period: 0, start_interval: 250ms}\n"
        "    update: {strategy: rolling, max_surge: 1, max_unavailable: 0, min_ready: 0s, "
        "deadline: 2m, auto_rollback: true, stop_grace: 10s}\n"
        "    resources: {}\n    volumes: []\n"
        "    depends_on: [db, cache]\n" DEPS,
        /* replicas and autoscale are not part of the template */
        "app: a\nservices:\n  web:\n    image: nginx:1\n    replicas: 9\n"
        "    autoscale: {min: 1, max: 10, cpu: 50}\n    command: [serve, --x]\n"
        "    env: {A: \"1\", B: \"2\"}\n    labels: {team: web}\n"
        "    ports: [{name: http, container: 80}]\n    health: {http: /h}\n"
        "    depends_on: [db, cache]\n" DEPS,
        "app: a\nservices:\n  web:\n    image: nginx:1\n    replicas: 2\n"
        "    autoscale: {min: 1, max: 10, requests: 300, scale_down_delay: 10s}\n"
        "    command: [serve, --x]\n"
        "    env: {A: \"1\", B: \"2\"}\n    labels: {team: web}\n"
        "    ports: [{name: http, container: 80}]\n    health: {http: /h}\n"
        "    depends_on: [db, cache]\n" DEPS,
        /* depends_on is a set; anchors are just a way of writing */
        "app: a\n"
        "services:\n  web:\n    image: nginx:1\n    command: [serve, --x]\n"
        "    env: &e {A: \"1\", B: \"2\"}\n    labels: {team: web}\n"
        "    ports: [{name: http, container: 80}]\n    health: {http: /h}\n"
        "    depends_on: [cache, db]\n  db: {image: pg, env: *e}\n  cache: {image: redis}\n",
    };
    char want[65];
    char *want_canon;
    web_hash(base, want, &want_canon);
    for (size_t i = 0; i < sizeof(same) / sizeof(same[0]); i++) {
        char got[65];
        char *canon = NULL;
        web_hash(same[i], got, &canon);
        if (strcmp(got, want) != 0)
            fail_msg("variant %zu: hash differs\nwant %s\ngot  %s", i, want_canon, canon);
        assert_string_equal(canon, want_canon);
        free(canon);
    }
    free(want_canon);
}

/* Replace the first occurrence of from in base with to. */
static char *variant(const char *from, const char *to)
{
    const char *p = strstr(base, from);
    if (p == NULL)
        fail_msg("'%s' not in the base spec", from);
    return orch_xasprintf("%.*s%s%s", (int)(p - base), base, to, p + strlen(from));
}

static void test_hash_changes(void **state)
{
    (void)state;
    static const struct {
        const char *from, *to;
    } changes[] = {
        {"nginx:1", "nginx:2"},
        {"[\"serve\", \"--x\"]", "[\"serve\"]"},
        {"[\"serve\", \"--x\"]", "[\"--x\", \"serve\"]"},
        {"    command: [\"serve\", \"--x\"]\n", ""},
        {"    command: [\"serve\", \"--x\"]\n",
         "    command: [\"serve\", \"--x\"]\n    entrypoint: [/x]\n"},
        {"A: \"1\"", "A: \"3\""},
        {"A: \"1\"", "A: \"1\", C: \"\""},
        {"A: \"1\"", "AA: \"1\""},
        {"{team: web}", "{team: api}"},
        {"{team: web}", "{}"},
        {"container: 80}", "container: 81}"},
        {"container: 80}]", "container: 80}, {name: dns, container: 53, protocol: udp}]"},
        {"name: http, container: 80}]\n    health: {http: /h}",
         "name: web, container: 80}]\n    health: {http: /h}"},
        {"{http: /h}", "{http: /h2}"},
        {"{http: /h}", "{tcp: true}"},
        {"{http: /h}", "{exec: /h}"},
        {"{http: /h}", "{http: /h, interval: 3s}"},
        {"{http: /h}", "{http: /h, timeout: 2s}"},
        {"{http: /h}", "{http: /h, retries: 4}"},
        {"{http: /h}", "{http: /h, start_period: 1ms}"},
        {"{http: /h}", "{http: /h, start_interval: 1s}"},
        {"    health: {http: /h}\n", ""},
        {"    replicas: 2\n", "    update: {max_surge: 2}\n"},
        {"    replicas: 2\n", "    update: {max_surge: \"1%\"}\n"},
        {"    replicas: 2\n", "    update: {max_unavailable: 1}\n"},
        {"    replicas: 2\n", "    update: {strategy: recreate}\n"},
        {"    replicas: 2\n", "    update: {min_ready: 1s}\n"},
        {"    replicas: 2\n", "    update: {deadline: 121s}\n"},
        {"    replicas: 2\n", "    update: {auto_rollback: false}\n"},
        {"    replicas: 2\n", "    update: {stop_grace: 11s}\n"},
        {"    replicas: 2\n", "    resources: {cpus: 0.5}\n"},
        {"    replicas: 2\n", "    resources: {memory: 64M}\n"},
        {"    replicas: 2\n", "    volumes: [data:/d]\n"},
        {"    replicas: 2\n", "    volumes: [data:/d:ro]\n"},
        {"    replicas: 2\n", "    volumes: [./data:/d]\n"},
        {"[db, cache]", "[db]"},
    };
    size_t n = sizeof(changes) / sizeof(changes[0]);
    char(*hashes)[65] = orch_xcalloc(n + 1, 65);
    web_hash(base, hashes[n], NULL);
    for (size_t i = 0; i < n; i++) {
        char *yaml = variant(changes[i].from, changes[i].to);
        web_hash(yaml, hashes[i], NULL);
        free(yaml);
    }
    /* every change differs from the base and from every other change */
    for (size_t i = 0; i <= n; i++)
        for (size_t j = i + 1; j <= n; j++)
            if (strcmp(hashes[i], hashes[j]) == 0)
                fail_msg("changes %zu and %zu give the same hash", i, j);
    free(hashes);
}

static void test_canonical_form(void **state)
{
    (void)state;
    struct spec_app app = parse_ok(base);
    const struct spec_service *web = &app.services[0];
    char *canon = spec_template_canonical(web);
    char *full = spec_service_to_json(web);
    /* compact JSON with sorted keys: a jansson round trip with those flags is the identity */
    json_t *j = json_loads(canon, 0, NULL);
    assert_non_null(j);
    char *again = json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT);
    assert_string_equal(again, canon);
    free(again);
    /* the template leaves out replicas and autoscale and spells out the defaults */
    assert_null(json_object_get(j, "replicas"));
    assert_null(json_object_get(j, "autoscale"));
    json_t *u = json_object_get(j, "update");
    assert_int_equal(json_integer_value(json_object_get(u, "deadline_ms")), 120000);
    /* except start_interval, written only when not the default: templates stored before the
     * key existed keep their hash */
    assert_null(json_object_get(json_object_get(j, "health"), "start_interval_ms"));
    assert_int_equal(json_integer_value(json_object_get(u, "max_surge")), 1);
    assert_true(json_is_true(json_object_get(u, "auto_rollback")));
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "health"), "port")),
                        "http");
    json_decref(j);
    j = json_loads(full, 0, NULL);
    assert_int_equal(json_integer_value(json_object_get(j, "replicas")), 2);
    assert_true(json_is_null(json_object_get(j, "autoscale")));
    json_decref(j);

    /* the hash is the SHA-256 of the canonical text, in lowercase hex */
    char hash[65];
    spec_template_hash(web, hash);
    unsigned char md[32];
    unsigned mdlen;
    assert_true(EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL));
    char hex[65];
    for (int i = 0; i < 32; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    assert_string_equal(hash, hex);
    free(canon);
    free(full);
    spec_app_free(&app);
}

static const char rich[] =
    "app: shop\n"
    "services:\n"
    "  web:\n"
    "    image: registry.local:5000/shop/web:2.1\n"
    "    replicas: 0\n"
    "    command: [serve, --port, 8080, true, ~, \"\xc3\xa9t\xc3\xa9 \\\" \\\\ \\t\"]\n"
    "    entrypoint: [\"/bin/app\"]\n"
    "    env: {ZED: last, A_1: 1.50, EMPTY: , FLAG: True, QUOTED: 'yes'}\n"
    "    labels: {team: web, tier: 3, \"a/b.c\": \"\"}\n"
    "    ports:\n"
    "      - {name: metrics, container: 9090, protocol: udp}\n"
    "      - {name: http, container: 8080}\n"
    "    health: {http: /healthz, port: http, interval: 1m30s, timeout: 500ms, retries: 100}\n"
    "    update: {strategy: recreate, max_surge: 25%, max_unavailable: \"100%\", min_ready: 5s, "
    "deadline: 1s, auto_rollback: false, stop_grace: 1h}\n"
    "    autoscale: {min: 2, max: 1000, cpu: 70}\n"
    "    resources: {cpus: 1024, memory: 1Gi}\n"
    "    volumes: [data:/var/lib/db, ./conf:/etc/app:ro]\n"
    "    depends_on: [db, cache]\n"
    "  db:\n"
    "    image: postgres\n"
    "    health: {exec: pg_isready -q}\n"
    "    update: {max_surge: 0, max_unavailable: 10%}\n"
    "  cache:\n"
    "    image: redis\n"
    "    ports: [{name: redis, container: 6379}]\n"
    "    health: {tcp: redis, start_period: 10s, start_interval: 100ms}\n"
    "    resources: {cpus: 0.001}\n"
    "    autoscale: {min: 1, max: 1, cpu: 1, requests: 50, scale_down_delay: 1m30s}\n";

static void test_round_trip(void **state)
{
    (void)state;
    static const char *const specs[] = {base, rich};
    for (size_t k = 0; k < 2; k++) {
        struct spec_app app = parse_ok(specs[k]);
        for (size_t i = 0; i < app.services_len; i++) {
            const struct spec_service *s = &app.services[i];
            char *json = spec_service_to_json(s);
            struct spec_service back;
            struct orch_error err = {0};
            if (spec_service_from_json(json, &back, &err) != 0)
                fail_msg("from_json(%s): %s", json, err.msg);
            char *json2 = spec_service_to_json(&back);
            assert_string_equal(json2, json);
            char *c1 = spec_template_canonical(s), *c2 = spec_template_canonical(&back);
            assert_string_equal(c1, c2);
            char h1[65], h2[65];
            spec_template_hash(s, h1);
            spec_template_hash(&back, h2);
            assert_string_equal(h1, h2);
            /* fields the JSON does not spell out are rebuilt */
            assert_int_equal(back.health.port_index, s->health.port_index);
            assert_int_equal(back.replicas, s->replicas);
            assert_int_equal(back.autoscale.enabled, s->autoscale.enabled);
            assert_int_equal(back.autoscale.max, s->autoscale.max);
            assert_int_equal(back.autoscale.requests, s->autoscale.requests);
            assert_int_equal(back.autoscale.scale_down_delay_ms, s->autoscale.scale_down_delay_ms);
            assert_int_equal(back.env_len, s->env_len);
            for (size_t e = 0; e < s->env_len; e++)
                assert_string_equal(back.env[e].key, s->env[e].key);
            if (s->has_command)
                assert_null(back.command[back.command_len]);
            assert_null(back.depends_on[back.depends_on_len]);
            /* a stored template reads back to the same template, without scale */
            struct spec_service tmpl;
            if (spec_template_from_json(c1, &tmpl, &err) != 0)
                fail_msg("template_from_json(%s): %s", c1, err.msg);
            char *c3 = spec_template_canonical(&tmpl);
            assert_string_equal(c3, c1);
            assert_int_equal(tmpl.replicas, 0);
            assert_false(tmpl.autoscale.enabled);
            assert_int_equal(tmpl.health.port_index, s->health.port_index);
            /* the two forms are not interchangeable */
            struct spec_service wrong;
            assert_int_equal(spec_template_from_json(json, &wrong, NULL), -ORCH_E_INVALID);
            assert_int_equal(spec_service_from_json(c1, &wrong, NULL), -ORCH_E_INVALID);
            free(c3);
            spec_service_free(&tmpl);
            free(c1);
            free(c2);
            free(json);
            free(json2);
            spec_service_free(&back);
        }
        spec_app_free(&app);
    }
}

/* A template stored before health.start_interval existed reads back with its default, and
 * canonicalises to the same text (so the same hash). */
static void test_template_without_start_interval(void **state)
{
    (void)state;
    struct spec_app app = parse_ok(base);
    char *c1 = spec_template_canonical(&app.services[0]);
    assert_null(strstr(c1, "start_interval"));
    struct spec_service tmpl;
    struct orch_error err = {0};
    if (spec_template_from_json(c1, &tmpl, &err) != 0)
        fail_msg("template_from_json(%s): %s", c1, err.msg);
    assert_int_equal(tmpl.health.start_interval_ms, SPEC_START_INTERVAL_MS);
    char *c2 = spec_template_canonical(&tmpl);
    assert_string_equal(c2, c1);
    free(c2);
    free(c1);
    spec_service_free(&tmpl);
    spec_app_free(&app);
}

static void test_from_json_errors(void **state)
{
    (void)state;
    struct spec_app app = parse_ok(base);
    char *good = spec_service_to_json(&app.services[0]);
    spec_app_free(&app);
    /* each case edits one thing in the good JSON */
    static const struct {
        const char *from, *to;
    } edits[] = {
        {"{", "["},
        {"\"image\":\"nginx:1\",", ""},
        {"\"image\":\"nginx:1\"", "\"image\":\"nginx:1\",\"extra\":1"},
        {"\"image\":\"nginx:1\"", "\"image\":\"nginx:1\",\"image\":\"x\""},
        {"\"image\":\"nginx:1\"", "\"image\":1"},
        {"\"replicas\":2", "\"replicas\":1001"},
        {"\"replicas\":2", "\"replicas\":\"2\""},
        {"\"kind\":\"http\"", "\"kind\":\"grpc\""},
        {"\"port\":\"http\"", "\"port\":\"nope\""},
        {"\"retries\":3", "\"retries\":0"},
        {"\"protocol\":\"tcp\"", "\"protocol\":\"sctp\""},
        {"\"container\":80", "\"container\":0"},
        {"\"strategy\":\"rolling\"", "\"strategy\":\"blue\""},
        {"\"max_surge\":1", "\"max_surge\":\"1\""},
        {"\"max_surge\":1", "\"max_surge\":-1"},
        {"\"max_surge\":1", "\"max_surge\":\"101%\""},
        {"\"command\":[\"serve\",\"--x\"]", "\"command\":[1]"},
        {"\"env\":{", "\"env\":{\"N\":1,"},
        {"\"labels\":{\"team\":\"web\"}", "\"labels\":[]"},
        {"\"volumes\":[]", "\"volumes\":[{\"type\":\"tmpfs\",\"source\":\"a\",\"target\":\"/a\","
                           "\"read_only\":false}]"},
        {"\"autoscale\":null", "\"autoscale\":{\"min\":1}"},
        {"\"depends_on\":[\"cache\",\"db\"]", "\"depends_on\":null"},
        {"}", "}}"},
    };
    for (size_t i = 0; i < sizeof(edits) / sizeof(edits[0]); i++) {
        const char *p = strstr(good, edits[i].from);
        if (p == NULL)
            fail_msg("edit %zu: '%s' not in %s", i, edits[i].from, good);
        char *bad = orch_xasprintf("%.*s%s%s", (int)(p - good), good, edits[i].to,
                                   p + strlen(edits[i].from));
        struct spec_service out;
        struct orch_error err = {0};
        if (spec_service_from_json(bad, &out, &err) != -ORCH_E_INVALID)
            fail_msg("edit %zu should be refused: %s", i, bad);
        assert_int_equal(err.code, ORCH_E_INVALID);
        assert_null(out.name);
        free(bad);
    }
    struct spec_service out;
    assert_int_equal(spec_service_from_json("", &out, NULL), -ORCH_E_INVALID);
    free(good);
}

/* Going back to an old revision: its template, today's replicas and autoscale. */
static void test_rebase(void **state)
{
    struct spec_app old = parse_ok("app: a\nservices:\n  web:\n    image: orch-demo:1\n"
                                   "    replicas: 2\n    env: {V: old}\n");
    struct spec_app now = parse_ok("app: a\nservices:\n  web:\n    image: orch-demo:2\n"
                                   "    replicas: 7\n    autoscale: {min: 3, max: 9, cpu: 60}\n");
    char *tmpl = spec_template_canonical(&old.services[0]);
    char *cur = spec_service_to_json(&now.services[0]);
    struct orch_error err = {0};
    char *json = spec_service_rebase_json(tmpl, cur, &err);
    assert_non_null(json);
    struct spec_service back;
    assert_int_equal(spec_service_from_json(json, &back, &err), 0);
    assert_string_equal(back.image, "orch-demo:1");
    assert_int_equal(back.env_len, 1);
    assert_string_equal(back.env[0].value, "old");
    assert_int_equal(back.replicas, 7);
    assert_true(back.autoscale.enabled);
    assert_int_equal(back.autoscale.max, 9);
    /* and its template is the old one exactly */
    char *again = spec_template_canonical(&back);
    assert_string_equal(again, tmpl);
    assert_null(spec_service_rebase_json("{", cur, &err));
    assert_null(spec_service_rebase_json(tmpl, "not json", &err));
    free(again);
    spec_service_free(&back);
    free(json);
    free(cur);
    free(tmpl);
    spec_app_free(&old);
    spec_app_free(&now);
}

/* published and balance are not in the template: no revision; they survive the service JSON
 * and a rebase onto another revision keeps the service's current ones. */
static void test_published(void **state)
{
    (void)state;
    static const char plain[] = "app: a\nservices:\n  web:\n    image: nginx:1\n"
                                "    ports: [{name: http, container: 80}]\n";
    static const char pub[] = "app: a\nservices:\n  web:\n    image: nginx:1\n"
                              "    ports: [{name: http, container: 80, published: 8080, "
                              "balance: least_conn}]\n";
    char h1[65], h2[65];
    web_hash(plain, h1, NULL);
    web_hash(pub, h2, NULL);
    assert_string_equal(h1, h2);

    struct spec_app a = parse_ok(pub);
    struct spec_app b = parse_ok(plain);
    char *json = spec_service_to_json(&a.services[0]);
    char *plain_json = spec_service_to_json(&b.services[0]);
    assert_null(strstr(plain_json, "publish")); /* unchanged for unpublished services */
    assert_non_null(strstr(json, "\"publish\":[{\"balance\":\"least_conn\""));
    struct spec_service back;
    struct orch_error err = {0};
    assert_int_equal(spec_service_from_json(json, &back, &err), 0);
    assert_int_equal(back.ports[0].published, 8080);
    assert_int_equal(back.ports[0].balance, SPEC_BALANCE_LEAST_CONN);
    char *again = spec_service_to_json(&back);
    assert_string_equal(json, again);
    spec_service_free(&back);

    char *tmpl = spec_template_canonical(&b.services[0]);
    char *rebased = spec_service_rebase_json(tmpl, json, &err);
    assert_non_null(rebased);
    assert_string_equal(rebased, json);
    free(rebased);
    free(tmpl);
    free(again);
    free(json);
    free(plain_json);
    spec_app_free(&a);
    spec_app_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rebase),
        cmocka_unit_test(test_published),
        cmocka_unit_test(test_same_hash),
        cmocka_unit_test(test_hash_changes),
        cmocka_unit_test(test_canonical_form),
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_template_without_start_interval),
        cmocka_unit_test(test_from_json_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
