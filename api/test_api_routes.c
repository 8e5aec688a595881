/* The route table and the pure request pieces: matching (404/405 with Allow), query parameters,
 * If-Match, problem+json, listen addresses. Table-driven. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "routes.h"

struct match_case {
    const char *method;
    const char *path;
    int status;
    enum api_route_id id;
    const char *app;
    const char *svc;
    const char *allow;
};

static const struct match_case match_cases[] = {
    {"GET", "/v1/health", 200, API_ROUTE_HEALTH, "", "", ""},
    {"GET", "/v1/apps", 200, API_ROUTE_APPS, "", "", ""},
    {"GET", "/v1/apps/shop", 200, API_ROUTE_APP_GET, "shop", "", ""},
    {"PUT", "/v1/apps/shop", 200, API_ROUTE_APP_PUT, "shop", "", ""},
    {"DELETE", "/v1/apps/shop-2", 200, API_ROUTE_APP_DELETE, "shop-2", "", ""},
    {"GET", "/v1/apps/shop/services/web", 200, API_ROUTE_SERVICE, "shop", "web", ""},
    {"POST", "/v1/apps/shop/services/web/scale", 200, API_ROUTE_SCALE, "shop", "web", ""},
    {"GET", "/v1/apps/shop/services/web/revisions", 200, API_ROUTE_REVISIONS, "shop", "web", ""},
    {"POST", "/v1/apps/shop/services/web/rollback", 200, API_ROUTE_ROLLBACK, "shop", "web", ""},
    {"GET", "/v1/events", 200, API_ROUTE_EVENTS, "", "", ""},
    {"GET", "/metrics", 200, API_ROUTE_METRICS, "", "", ""},
    {"POST", "/v1/apps/shop", 405, 0, "", "", "GET, PUT, DELETE"},
    {"GET", "/v1/apps/shop/services/web/scale", 405, 0, "", "", "POST"},
    {"DELETE", "/v1/health", 405, 0, "", "", "GET"},
    {"GET", "/v1/apps/", 404, 0, "", "", ""},
    {"GET", "/v1/apps/Shop", 404, 0, "", "", ""},
    {"GET", "/v1/apps/sh%6fp", 404, 0, "", "", ""},
    {"GET", "/v1/apps/../v1/health", 404, 0, "", "", ""},
    {"GET", "/v1/apps/shop/", 404, 0, "", "", ""},
    {"GET", "/v1/apps/shop//services/web", 404, 0, "", "", ""},
    {"GET", "/v1/healthz", 404, 0, "", "", ""},
    {"GET", "/", 404, 0, "", "", ""},
    {"GET", "", 404, 0, "", "", ""},
    {"GET", "/v1/apps/aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa", 404, 0,
     "", "", ""},
    {"get", "/v1/health", 405, 0, "", "", "GET"},
};

static void test_match(void **state)
{
    for (size_t i = 0; i < sizeof(match_cases) / sizeof(match_cases[0]); i++) {
        const struct match_case *c = &match_cases[i];
        struct api_match m;
        int rc = api_route_match(c->method, strlen(c->method), c->path, strlen(c->path), &m);
        if (rc != c->status)
            fail_msg("%s %s: %d, want %d", c->method, c->path, rc, c->status);
        if (rc == 200) {
            assert_int_equal(m.route->id, c->id);
            assert_string_equal(m.app, c->app);
            assert_string_equal(m.svc, c->svc);
        }
        if (rc == 405)
            assert_string_equal(m.allow, c->allow);
    }
}

static void test_table(void **state)
{
    /* Only health goes without a credential; every mutating route needs deployer. */
    for (size_t i = 0; i < api_routes_count; i++) {
        const struct api_route *r = &api_routes[i];
        assert_int_equal(r->needs_auth, r->id != API_ROUTE_HEALTH);
        if (r->mutating)
            assert_int_equal(r->op, AUTH_OP_DEPLOY);
        assert_int_equal(r->mutating, strcmp(r->method, "GET") != 0);
    }
}

static void test_query(void **state)
{
    const char *q = "dry_run=true&prune=0&wait=5m&x=a%2Fb+c&bad=%zz&empty=";
    char v[16];
    assert_int_equal(api_query_get(q, strlen(q), "wait", v, sizeof(v)), 1);
    assert_string_equal(v, "5m");
    assert_int_equal(api_query_get(q, strlen(q), "x", v, sizeof(v)), 1);
    assert_string_equal(v, "a/b c");
    assert_int_equal(api_query_get(q, strlen(q), "bad", v, sizeof(v)), -1);
    assert_int_equal(api_query_get(q, strlen(q), "empty", v, sizeof(v)), 1);
    assert_string_equal(v, "");
    assert_int_equal(api_query_get(q, strlen(q), "nope", v, sizeof(v)), 0);
    assert_int_equal(api_query_get(NULL, 0, "wait", v, sizeof(v)), 0);
    assert_int_equal(api_query_get(q, strlen(q), "x", v, 3), -1); /* too long */
    assert_int_equal(api_query_bool(q, strlen(q), "dry_run"), 1);
    assert_int_equal(api_query_bool(q, strlen(q), "prune"), 0);
    assert_int_equal(api_query_bool(q, strlen(q), "absent"), 0);
    assert_int_equal(api_query_bool(q, strlen(q), "wait"), -1);
    const char *nul = "a=%00";
    assert_int_equal(api_query_get(nul, strlen(nul), "a", v, sizeof(v)), -1);
}

struct ifm_case {
    const char *header;
    const char *etag;
    bool want;
};

static const struct ifm_case ifm_cases[] = {
    {NULL, "\"abc\"", true},
    {NULL, NULL, true},
    {"\"abc\"", "\"abc\"", true},
    {"\"abc\"", "\"abd\"", false},
    {"\"x\", \"abc\"", "\"abc\"", true},
    {"\"x\",\"y\"", "\"abc\"", false},
    {"W/\"abc\"", "\"abc\"", false}, /* weak tags never match If-Match */
    {"*", "\"abc\"", true},
    {"*", NULL, false}, /* no app: "*" fails */
    {"\"abc\"", NULL, false},
    {"abc", "\"abc\"", false}, /* unquoted: malformed, fails closed */
    {"\"abc", "\"abc\"", false},
    {"", "\"abc\"", false},
    {"\"abc\" junk", "\"abc\"", true},
};

static void test_if_match(void **state)
{
    for (size_t i = 0; i < sizeof(ifm_cases) / sizeof(ifm_cases[0]); i++) {
        const struct ifm_case *c = &ifm_cases[i];
        bool got = api_if_match(c->header, c->header ? strlen(c->header) : 0, c->etag);
        if (got != c->want)
            fail_msg("If-Match %s vs %s: %d", c->header ? c->header : "(none)",
                     c->etag ? c->etag : "(none)", got);
    }
}

static void test_problem(void **state)
{
    struct orch_strv errs = {0};
    orch_strv_push(&errs, "spec:3:5: error: unknown key 'replica'");
    orch_strv_push(&errs, "spec:9:1: error: services.web.image is required");
    char *s = api_problem_json(422, "Invalid spec", "nothing was changed", &errs);
    json_error_t je;
    json_t *o = json_loads(s, 0, &je);
    assert_non_null(o);
    assert_string_equal(json_string_value(json_object_get(o, "type")), "about:blank");
    assert_string_equal(json_string_value(json_object_get(o, "title")), "Invalid spec");
    assert_int_equal(json_integer_value(json_object_get(o, "status")), 422);
    assert_string_equal(json_string_value(json_object_get(o, "detail")), "nothing was changed");
    assert_int_equal(json_array_size(json_object_get(o, "errors")), 2);
    json_decref(o);
    free(s);
    orch_strv_free(&errs);
    s = api_problem_json(404, NULL, NULL, NULL);
    o = json_loads(s, 0, &je);
    assert_string_equal(json_string_value(json_object_get(o, "title")), "Not Found");
    assert_null(json_object_get(o, "detail"));
    assert_null(json_object_get(o, "errors"));
    json_decref(o);
    free(s);
    /* Invalid UTF-8 in a detail never yields an invalid document. */
    s = api_problem_json(400, NULL, "bad \xff byte", NULL);
    o = json_loads(s, 0, &je);
    assert_non_null(o);
    json_decref(o);
    free(s);
    assert_string_equal(api_status_reason(431), "Request Header Fields Too Large");
    assert_string_equal(api_status_reason(413), "Content Too Large");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_match),   cmocka_unit_test(test_table),
        cmocka_unit_test(test_query),   cmocka_unit_test(test_if_match),
        cmocka_unit_test(test_problem),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
