/* auth_allows as tables: each role x operation kind, app scopes (exact, glob, none), expiry, no
 * identity; and the pattern matchers the rules use, GitHub's two subject forms included. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "auth/auth.h"

#define NOW 1700000000000LL

static struct auth_identity ident(enum auth_role role, const char *apps, int64_t expires_ms)
{
    struct auth_identity id = {.kind = AUTH_KIND_TOKEN, .role = role, .expires_ms = expires_ms};
    snprintf(id.name, sizeof(id.name), "token 0123456789ab");
    /* apps: comma-separated patterns */
    char buf[128];
    snprintf(buf, sizeof(buf), "%s", apps);
    for (char *save = NULL, *p = strtok_r(buf, ",", &save); p; p = strtok_r(NULL, ",", &save))
        orch_strv_push(&id.apps, p);
    return id;
}

static void test_role_by_operation(void **state)
{
    /* Every role against every operation kind, on one app and on none, unscoped. */
    static const struct {
        enum auth_role role;
        enum auth_op op;
        enum auth_decision on_app, on_none;
    } cases[] = {
        {AUTH_ROLE_NONE, AUTH_OP_READ, AUTH_FORBIDDEN, AUTH_FORBIDDEN},
        {AUTH_ROLE_NONE, AUTH_OP_DEPLOY, AUTH_FORBIDDEN, AUTH_FORBIDDEN},
        {AUTH_ROLE_NONE, AUTH_OP_ADMIN, AUTH_FORBIDDEN, AUTH_FORBIDDEN},
        {AUTH_ROLE_VIEWER, AUTH_OP_READ, AUTH_ALLOW, AUTH_ALLOW},
        {AUTH_ROLE_VIEWER, AUTH_OP_DEPLOY, AUTH_FORBIDDEN, AUTH_FORBIDDEN},
        {AUTH_ROLE_VIEWER, AUTH_OP_ADMIN, AUTH_FORBIDDEN, AUTH_FORBIDDEN},
        {AUTH_ROLE_DEPLOYER, AUTH_OP_READ, AUTH_ALLOW, AUTH_ALLOW},
        {AUTH_ROLE_DEPLOYER, AUTH_OP_DEPLOY, AUTH_ALLOW, AUTH_ALLOW},
        {AUTH_ROLE_DEPLOYER, AUTH_OP_ADMIN, AUTH_FORBIDDEN, AUTH_FORBIDDEN},
        {AUTH_ROLE_ADMIN, AUTH_OP_READ, AUTH_ALLOW, AUTH_ALLOW},
        {AUTH_ROLE_ADMIN, AUTH_OP_DEPLOY, AUTH_ALLOW, AUTH_ALLOW},
        {AUTH_ROLE_ADMIN, AUTH_OP_ADMIN, AUTH_ALLOW, AUTH_ALLOW},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(cases); i++) {
        struct auth_identity id = ident(cases[i].role, "*", 0);
        enum auth_role need = auth_op_role(cases[i].op);
        assert_int_equal(auth_allows(&id, need, "shop", NOW), cases[i].on_app);
        assert_int_equal(auth_allows(&id, need, NULL, NOW), cases[i].on_none);
        auth_identity_free(&id);
    }
}

static void test_app_scope(void **state)
{
    /* Identities limited to some apps: other apps and non-read operations on no app are 403. */
    static const struct {
        enum auth_role role;
        const char *apps;
        enum auth_op op;
        const char *app;
        enum auth_decision want;
    } cases[] = {
        {AUTH_ROLE_DEPLOYER, "shop", AUTH_OP_READ, "shop", AUTH_ALLOW},
        {AUTH_ROLE_DEPLOYER, "shop", AUTH_OP_DEPLOY, "shop", AUTH_ALLOW},
        {AUTH_ROLE_DEPLOYER, "shop", AUTH_OP_READ, "blog", AUTH_FORBIDDEN},
        {AUTH_ROLE_DEPLOYER, "shop", AUTH_OP_DEPLOY, "blog", AUTH_FORBIDDEN},
        {AUTH_ROLE_DEPLOYER, "shop", AUTH_OP_DEPLOY, "shop2", AUTH_FORBIDDEN},
        {AUTH_ROLE_DEPLOYER, "shop", AUTH_OP_READ, NULL, AUTH_ALLOW}, /* list, filtered */
        {AUTH_ROLE_DEPLOYER, "shop", AUTH_OP_DEPLOY, NULL, AUTH_FORBIDDEN},
        {AUTH_ROLE_DEPLOYER, "shop,blog", AUTH_OP_DEPLOY, "blog", AUTH_ALLOW},
        {AUTH_ROLE_DEPLOYER, "shop-*", AUTH_OP_DEPLOY, "shop-eu", AUTH_ALLOW},
        {AUTH_ROLE_DEPLOYER, "shop-*", AUTH_OP_DEPLOY, "shop", AUTH_FORBIDDEN},
        {AUTH_ROLE_ADMIN, "shop", AUTH_OP_ADMIN, NULL, AUTH_FORBIDDEN}, /* tokens: unscoped only */
        {AUTH_ROLE_ADMIN, "shop", AUTH_OP_ADMIN, "shop", AUTH_ALLOW},
        {AUTH_ROLE_ADMIN, "shop", AUTH_OP_ADMIN, "blog", AUTH_FORBIDDEN},
        {AUTH_ROLE_ADMIN, "*", AUTH_OP_ADMIN, NULL, AUTH_ALLOW},
        {AUTH_ROLE_VIEWER, "shop", AUTH_OP_READ, "blog", AUTH_FORBIDDEN},
        {AUTH_ROLE_VIEWER, "shop", AUTH_OP_DEPLOY, "shop", AUTH_FORBIDDEN},
        {AUTH_ROLE_ADMIN, "", AUTH_OP_READ, "shop", AUTH_FORBIDDEN}, /* no apps at all */
        {AUTH_ROLE_ADMIN, "", AUTH_OP_READ, NULL, AUTH_ALLOW},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(cases); i++) {
        struct auth_identity id = ident(cases[i].role, cases[i].apps, 0);
        enum auth_decision got = auth_allows(&id, auth_op_role(cases[i].op), cases[i].app, NOW);
        if (got != cases[i].want)
            fail_msg("case %zu: %s [%s] op %d on %s: got %d, want %d", i,
                     auth_role_name(cases[i].role), cases[i].apps, cases[i].op,
                     cases[i].app ? cases[i].app : "(none)", got, cases[i].want);
        auth_identity_free(&id);
    }
}

static void test_expiry_and_missing(void **state)
{
    struct auth_identity id = ident(AUTH_ROLE_ADMIN, "*", NOW);
    assert_int_equal(auth_allows(&id, AUTH_ROLE_VIEWER, "shop", NOW - 1), AUTH_ALLOW);
    assert_int_equal(auth_allows(&id, AUTH_ROLE_VIEWER, "shop", NOW), AUTH_UNAUTHENTICATED);
    assert_int_equal(auth_allows(&id, AUTH_ROLE_ADMIN, NULL, NOW + 1), AUTH_UNAUTHENTICATED);
    auth_identity_free(&id);
    assert_int_equal(auth_allows(NULL, AUTH_ROLE_VIEWER, "shop", NOW), AUTH_UNAUTHENTICATED);
    struct auth_identity empty = {0}; /* never authenticated */
    assert_int_equal(auth_allows(&empty, AUTH_ROLE_VIEWER, NULL, NOW), AUTH_UNAUTHENTICATED);
    /* an expired identity is 401 even for what its role could never do */
    struct auth_identity v = ident(AUTH_ROLE_VIEWER, "shop", NOW - 5);
    assert_int_equal(auth_allows(&v, AUTH_ROLE_ADMIN, "blog", NOW), AUTH_UNAUTHENTICATED);
    auth_identity_free(&v);
}

static void test_roles(void **state)
{
    for (enum auth_role r = AUTH_ROLE_VIEWER; r <= AUTH_ROLE_ADMIN; r++)
        assert_int_equal(auth_role_parse(auth_role_name(r)), r);
    assert_int_equal(auth_role_parse("root"), AUTH_ROLE_NONE);
    assert_int_equal(auth_role_parse("Admin"), AUTH_ROLE_NONE);
    assert_int_equal(auth_role_parse(NULL), AUTH_ROLE_NONE);
    assert_int_equal(auth_op_role(AUTH_OP_READ), AUTH_ROLE_VIEWER);
    assert_int_equal(auth_op_role(AUTH_OP_DEPLOY), AUTH_ROLE_DEPLOYER);
    assert_int_equal(auth_op_role(AUTH_OP_ADMIN), AUTH_ROLE_ADMIN);
    assert_int_equal(auth_op_role((enum auth_op)42), AUTH_ROLE_ADMIN);
}

static void test_glob(void **state)
{
    static const struct {
        const char *p, *v;
        bool ok;
    } cases[] = {
        {"*", "", true},
        {"*", "anything:at/all", true},
        {"shop", "shop", true},
        {"shop", "shop2", false},
        {"shop*", "shop2", true},
        {"*shop", "myshop", true},
        {"a*b*c", "aXbYc", true},
        {"a*b*c", "aXbY", false},
        {"a**c", "ac", true},
        {"", "", true},
        {"", "x", false},
        {"x", "", false},
        {"repo:acme/*:ref:refs/heads/main", "repo:acme/shop:ref:refs/heads/main", true},
        {"repo:acme/*:ref:refs/heads/main", "repo:acme/shop:ref:refs/heads/dev", false},
        {"repo:acme/*", "repo:acmecorp/shop:ref:refs/heads/main", false},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(cases); i++)
        if (auth_glob_match(cases[i].p, cases[i].v) != cases[i].ok)
            fail_msg("glob '%s' vs '%s': want %d", cases[i].p, cases[i].v, cases[i].ok);
}

static void test_github_sub(void **state)
{
    static const char old_form[] = "repo:acme/shop:ref:refs/heads/main";
    static const char id_form[] = "repo:acme@1001/shop@2002:ref:refs/heads/main";
    static const struct {
        const char *pattern, *value;
        bool ok;
    } cases[] = {
        /* a rule by name matches both forms */
        {"repo:acme/shop:ref:refs/heads/main", old_form, true},
        {"repo:acme/shop:ref:refs/heads/main", id_form, true},
        {"repo:acme/shop:ref:refs/heads/main", "repo:acme@1001/shop@2002:ref:refs/heads/dev",
         false},
        {"repo:acme/shop:ref:refs/heads/main", "repo:acme@1001/shop2@2003:ref:refs/heads/main",
         false},
        {"repo:acme/shop:ref:refs/heads/main", "repo:evil@9/shop@2002:ref:refs/heads/main", false},
        {"repo:acme/*:ref:refs/heads/main", id_form, true},
        {"repo:acme/*", id_form, true},
        {"repo:*", id_form, true},
        {"repo:acme/shop:*", id_form, true},
        {"repo:acme/shop:environment:prod", "repo:acme@1001/shop@2002:environment:prod", true},
        {"repo:acme/shop:pull_request", "repo:acme@1001/shop@2002:pull_request", true},
        /* pinned ids: only a subject carrying them matches */
        {"repo:acme@1001/shop@2002:ref:refs/heads/main", id_form, true},
        {"repo:acme@1001/shop@2002:ref:refs/heads/main", old_form, false},
        {"repo:acme@1001/shop@2002:ref:refs/heads/main",
         "repo:acme@1001/shop@2999:ref:refs/heads/main", false},
        {"repo:acme@1001/shop:ref:refs/heads/main", id_form, true},
        {"repo:acme@1001/shop:ref:refs/heads/main", "repo:acme@1999/shop@2002:ref:refs/heads/main",
         false},
        {"repo:acme/shop@2002:ref:refs/heads/main", id_form, true},
        {"repo:acme/shop@2002:ref:refs/heads/main", old_form, false},
        {"repo:acme@1001/*:ref:refs/heads/main", id_form, true},
        {"repo:acme@1001/*:ref:refs/heads/main", "repo:acme@7/x@8:ref:refs/heads/main", false},
        {"repo:acme@*/shop:ref:refs/heads/main", id_form, true},
        {"repo:acme@*/shop:ref:refs/heads/main", old_form, false},
        /* not GitHub's shape: plain globbing, '@' literal */
        {"repo:acme/shop", "repo:acme@x/shop", false},
        {"project_path:acme/shop:ref_type:branch:ref:main",
         "project_path:acme/shop:ref_type:branch:ref:main", true},
        {"runner-*.ci.acme.internal", "runner-7.ci.acme.internal", true},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(cases); i++)
        if (auth_sub_match(cases[i].pattern, cases[i].value) != cases[i].ok)
            fail_msg("sub '%s' vs '%s': want %d", cases[i].pattern, cases[i].value, cases[i].ok);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_role_by_operation),
        cmocka_unit_test(test_app_scope),
        cmocka_unit_test(test_expiry_and_missing),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_glob),
        cmocka_unit_test(test_github_sub),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
