/* The --auth file: parsing (YAML and JSON), every validation error, loading the JWKS files it
 * names, and the identities it yields: GitHub Actions tokens in both subject forms through
 * rules, extra claims, first match wins, no match (role none, so 403), client certificates
 * through the mtls rules. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth/auth.h"
#include "auth/jwt.h"
#include "auth/token.h"
#include "test_auth_keys.h"

#define NOW_S 1700000000LL
#define NOW (NOW_S * 1000)
#define GH "https://token.actions.githubusercontent.com"
#define AUD "https://orch.acme.example"

static const char auth_yaml[] =
    "# orch --auth file\n"
    "version: 1\n"
    "issuers:\n"
    "  - name: github\n"
    "    issuer: " GH "\n"
    "    audience: " AUD "\n"
    "    jwks: github-jwks.json\n"
    "    leeway: 30s\n"
    "rules:\n"
    "  - issuer: github\n"
    "    sub: repo:acme/shop:environment:production\n"
    "    claims: {workflow_ref: \"acme/shop/.github/workflows/deploy.yml@*\"}\n"
    "    role: deployer\n"
    "    apps: [shop, shop-*]\n"
    "  - issuer: github\n"
    "    sub: repo:acme/shop:ref:refs/heads/main\n"
    "    role: deployer\n"
    "    apps: [shop]\n"
    "  - issuer: github\n"
    "    sub: \"repo:acme@1001/infra@3003:*\"\n"
    "    role: admin\n"
    "    apps: [\"*\"]\n"
    "  - issuer: github\n"
    "    sub: \"repo:acme/*\"\n"
    "    role: viewer\n"
    "    apps: [\"*\"]\n"
    "  - issuer: mtls\n"
    "    sub: \"runner-*.ci.acme.internal\"\n"
    "    role: deployer\n"
    "    apps: [shop]\n"
    "  - issuer: mtls\n"
    "    sub: \"*\"\n"
    "    role: viewer\n"
    "    apps: [shop]\n";

static struct tkeys K;
static struct auth_config *CFG;
static char DIR_[64];

static int setup(void **state)
{
    tkeys_init(&K);
    snprintf(DIR_, sizeof(DIR_), "/tmp/orch-auth-test-XXXXXX");
    if (mkdtemp(DIR_) == NULL)
        return -1;
    char path[128];
    snprintf(path, sizeof(path), "%s/github-jwks.json", DIR_);
    FILE *f = fopen(path, "w");
    fputs(K.jwks, f);
    fclose(f);
    snprintf(path, sizeof(path), "%s/auth.yaml", DIR_);
    f = fopen(path, "w");
    fputs(auth_yaml, f);
    fclose(f);
    struct orch_error err = {0};
    if (auth_config_load(path, &CFG, &err) < 0) {
        fprintf(stderr, "load: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    auth_config_free(CFG);
    tkeys_free(&K);
    char path[128];
    snprintf(path, sizeof(path), "%s/github-jwks.json", DIR_);
    unlink(path);
    snprintf(path, sizeof(path), "%s/auth.yaml", DIR_);
    unlink(path);
    rmdir(DIR_);
    return 0;
}

static void test_loaded(void **state)
{
    assert_int_equal(auth_config_issuer_count(CFG), 1);
    assert_string_equal(auth_config_issuer_name(CFG, 0), "github");
    assert_string_equal(auth_config_issuer_jwks(CFG, 0), "github-jwks.json");
    assert_null(auth_config_issuer_name(CFG, 1));
}

/* A GitHub Actions-like token with this sub and extra claims, signed by the ES256 key. */
static char *gh_token(const char *sub, const char *extra, long long exp_rel)
{
    _cleanup_free_ char *c = orch_xasprintf(
        "{\"iss\": \"" GH "\", \"aud\": \"" AUD "\", \"sub\": \"%s\", \"exp\": %lld, "
        "\"iat\": %lld, \"repository\": \"acme/shop\"%s%s}",
        sub, NOW_S + exp_rel, NOW_S - 100, extra ? ", " : "", extra ? extra : "");
    return tsign("ES256", "ec1", K.ec, c);
}

static void test_github_rules(void **state)
{
    static const struct {
        const char *sub;
        const char *extra;
        enum auth_role role;
        const char *app; /* an app the identity must reach, or NULL */
        const char *not_app;
    } cases[] = {
        {"repo:acme/shop:ref:refs/heads/main", NULL, AUTH_ROLE_DEPLOYER, "shop", "blog"},
        {"repo:acme@1001/shop@2002:ref:refs/heads/main", NULL, AUTH_ROLE_DEPLOYER, "shop",
         "shop-eu"},
        /* another branch of the repository falls through to the viewer rule */
        {"repo:acme/shop:ref:refs/heads/feature", NULL, AUTH_ROLE_VIEWER, "blog", NULL},
        {"repo:acme@1001/shop@2002:pull_request", NULL, AUTH_ROLE_VIEWER, "shop", NULL},
        /* the environment rule needs its workflow claim too */
        {"repo:acme/shop:environment:production",
         "\"workflow_ref\": \"acme/shop/.github/workflows/deploy.yml@refs/heads/main\"",
         AUTH_ROLE_DEPLOYER, "shop-eu", "blog"},
        {"repo:acme/shop:environment:production",
         "\"workflow_ref\": \"acme/shop/.github/workflows/other.yml@refs/heads/main\"",
         AUTH_ROLE_VIEWER, "shop", NULL},
        {"repo:acme/shop:environment:production", "\"workflow_ref\": 7", AUTH_ROLE_VIEWER, "shop",
         NULL},
        /* pinned ids: the id form matches, a same-named repository of another owner does not */
        {"repo:acme@1001/infra@3003:ref:refs/heads/main", NULL, AUTH_ROLE_ADMIN, "blog", NULL},
        {"repo:acme/infra:ref:refs/heads/main", NULL, AUTH_ROLE_VIEWER, "blog", NULL},
        {"repo:acme@1001/infra@9999:ref:refs/heads/main", NULL, AUTH_ROLE_VIEWER, "blog", NULL},
        /* no rule: authenticated, nothing granted */
        {"repo:evil/shop:ref:refs/heads/main", NULL, AUTH_ROLE_NONE, NULL, "shop"},
        {"repo:acmecorp/shop:ref:refs/heads/main", NULL, AUTH_ROLE_NONE, NULL, "shop"},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(cases); i++) {
        _cleanup_free_ char *tok = gh_token(cases[i].sub, cases[i].extra, 300);
        struct auth_identity id;
        struct orch_error err = {0};
        if (auth_bearer_authenticate(CFG, NULL, tok, strlen(tok), NOW, &id, &err) != 0)
            fail_msg("case %zu: %s", i, err.msg);
        if (id.role != cases[i].role)
            fail_msg("case %zu (%s): role %s, want %s", i, cases[i].sub, auth_role_name(id.role),
                     auth_role_name(cases[i].role));
        assert_int_equal(id.kind, AUTH_KIND_JWT);
        char want_name[256];
        snprintf(want_name, sizeof(want_name), "jwt github %s", cases[i].sub);
        assert_string_equal(id.name, want_name);
        assert_int_equal(id.expires_ms, (NOW_S + 300 + 30) * 1000); /* exp + the file's leeway */
        if (cases[i].app != NULL)
            assert_int_equal(auth_allows(&id, cases[i].role, cases[i].app, NOW), AUTH_ALLOW);
        if (cases[i].not_app != NULL)
            assert_int_equal(auth_allows(&id, AUTH_ROLE_VIEWER, cases[i].not_app, NOW),
                             AUTH_FORBIDDEN);
        auth_identity_free(&id);
    }
}

static void test_jwt_refusals_through_config(void **state)
{
    struct auth_identity id;
    struct orch_error err = {0};
    /* the file's leeway is 30 s, tighter than the 60 s maximum */
    _cleanup_free_ char *old = gh_token("repo:acme/shop:ref:refs/heads/main", NULL, -30);
    assert_int_not_equal(auth_jwt_authenticate(CFG, old, strlen(old), NOW, &id, &err), 0);
    assert_non_null(strstr(err.msg, "expired"));
    assert_non_null(strstr(err.msg, "issuer github"));
    _cleanup_free_ char *ok = gh_token("repo:acme/shop:ref:refs/heads/main", NULL, -29);
    assert_int_equal(auth_jwt_authenticate(CFG, ok, strlen(ok), NOW, &id, &err), 0);
    auth_identity_free(&id);

    /* an issuer the file does not name; its name is shown, control characters replaced */
    _cleanup_free_ char *c = orch_xasprintf(
        "{\"iss\": \"https://gitlab.example\\n\", \"aud\": \"" AUD "\", \"sub\": \"x\", "
        "\"exp\": %lld}",
        NOW_S + 300);
    _cleanup_free_ char *other = tsign("ES256", "ec1", K.ec, c);
    assert_int_not_equal(auth_jwt_authenticate(CFG, other, strlen(other), NOW, &id, &err), 0);
    assert_non_null(strstr(err.msg, "no issuer https://gitlab.example? in the --auth file"));

    /* no sub */
    _cleanup_free_ char *c2 =
        orch_xasprintf("{\"iss\": \"" GH "\", \"aud\": \"" AUD "\", \"exp\": %lld}", NOW_S + 300);
    _cleanup_free_ char *nosub = tsign("ES256", "ec1", K.ec, c2);
    assert_int_not_equal(auth_jwt_authenticate(CFG, nosub, strlen(nosub), NOW, &id, &err), 0);
    assert_non_null(strstr(err.msg, "no sub"));

    /* without an --auth file, JWTs are refused */
    assert_int_not_equal(auth_bearer_authenticate(NULL, NULL, ok, strlen(ok), NOW, &id, &err), 0);
    /* an issuer with no keys loaded (auth_config_parse only names the files) */
    struct auth_config *bare = NULL;
    if (auth_config_parse(auth_yaml, strlen(auth_yaml), "auth.yaml", &bare, &err) != 0)
        fail_msg("%s", err.msg);
    assert_int_not_equal(auth_jwt_authenticate(bare, ok, strlen(ok), NOW, &id, &err), 0);
    assert_non_null(strstr(err.msg, "no keys"));
    struct jwks *keys = NULL;
    assert_int_equal(jwks_parse(K.jwks, strlen(K.jwks), &keys, &err), 0);
    assert_int_equal(auth_config_set_keys(bare, "github", keys, &err), 0);
    assert_int_equal(auth_jwt_authenticate(bare, ok, strlen(ok), NOW, &id, &err), 0);
    auth_identity_free(&id);
    assert_int_equal(jwks_parse(K.jwks, strlen(K.jwks), &keys, &err), 0);
    assert_int_equal(auth_config_set_keys(bare, "gitlab", keys, &err), -ORCH_E_NOTFOUND);
    auth_config_free(bare);
}

static void test_cert_rules(void **state)
{
    struct auth_identity id;
    struct orch_error err = {0};
    assert_int_equal(
        auth_cert_authenticate(CFG, "runner-7.ci.acme.internal", NOW + 1000, &id, &err), 0);
    assert_int_equal(id.kind, AUTH_KIND_CERT);
    assert_string_equal(id.name, "cert runner-7.ci.acme.internal");
    assert_int_equal(id.role, AUTH_ROLE_DEPLOYER);
    assert_int_equal(auth_allows(&id, AUTH_ROLE_DEPLOYER, "shop", NOW), AUTH_ALLOW);
    assert_int_equal(auth_allows(&id, AUTH_ROLE_DEPLOYER, "shop", NOW + 1000),
                     AUTH_UNAUTHENTICATED);
    auth_identity_free(&id);
    assert_int_equal(auth_cert_authenticate(CFG, "laptop.acme.internal", 0, &id, &err), 0);
    assert_int_equal(id.role, AUTH_ROLE_VIEWER);
    auth_identity_free(&id);
    /* a JWT rule never applies to a certificate, whatever its name */
    assert_int_equal(
        auth_cert_authenticate(CFG, "repo:acme/shop:ref:refs/heads/main", 0, &id, &err), 0);
    assert_int_equal(id.role, AUTH_ROLE_VIEWER);
    auth_identity_free(&id);
    /* no --auth file: a certificate authenticates but is granted nothing */
    assert_int_equal(auth_cert_authenticate(NULL, "runner-7.ci.acme.internal", 0, &id, &err), 0);
    assert_int_equal(id.role, AUTH_ROLE_NONE);
    assert_int_equal(auth_allows(&id, AUTH_ROLE_VIEWER, "shop", NOW), AUTH_FORBIDDEN);
    auth_identity_free(&id);
}

static void test_json_form(void **state)
{
    static const char json[] =
        "{\"issuers\": [{\"name\": \"gitlab\", \"issuer\": \"https://gitlab.example.com\", "
        "\"audience\": \"orch\", \"jwks\": \"/etc/orch/gitlab.json\"}],\n"
        " \"rules\": [{\"issuer\": \"gitlab\", \"sub\": "
        "\"project_path:acme/shop:ref_type:branch:ref:main\", \"role\": \"deployer\", "
        "\"apps\": [\"shop\"]}]}";
    struct auth_config *cfg = NULL;
    struct orch_error err = {0};
    if (auth_config_parse(json, strlen(json), "auth.json", &cfg, &err) != 0)
        fail_msg("%s", err.msg);
    assert_string_equal(auth_config_issuer_jwks(cfg, 0), "/etc/orch/gitlab.json");
    auth_config_free(cfg);
}

static void test_invalid_files(void **state)
{
    static const char iss[] = "issuers:\n"
                              "  - {name: gh, issuer: https://x, audience: a, jwks: k.json}\n";
    static const char rule[] = "rules:\n  - {issuer: gh, sub: \"repo:a/b:*\", role: viewer, "
                               "apps: [shop]}\n";
    static const struct {
        const char *text;
        const char *want;
    } cases[] = {
        {"", "empty"},
        {"[1, 2]", "must be a mapping"},
        {"rules: []\n", "rules: a non-empty list"},
        {"issuers: {}\nrules: [x]\n", "issuers: must be a list"},
        {"version: 2\nrules: [x]\n", "version: only 1"},
        {"rulez: []\n", "top level: unknown key 'rulez'"},
        {"issuers:\n  - {name: gh, issuer: https://x, jwks: k.json}\nrules: [x]\n",
         "issuers[0].audience: missing"},
        {"issuers:\n  - {name: gh, issuer: https://x, audience: \"\", jwks: k}\nrules: [x]\n",
         "issuers[0].audience: must be a non-empty string"},
        {"issuers:\n  - {name: gh, issuer: https://x, audience: a, jwks: k, leeway: 61s}\n"
         "rules: [x]\n",
         "leeway"},
        {"issuers:\n  - {name: gh, issuer: https://x, audience: a, jwks: k, leeway: 5m}\n"
         "rules: [x]\n",
         "leeway"},
        {"issuers:\n  - {name: gh, issuer: https://x, audience: a, jwks: k, key: 1}\n"
         "rules: [x]\n",
         "issuers[0]: unknown key 'key'"},
        {"issuers:\n  - {name: mtls, issuer: https://x, audience: a, jwks: k}\nrules: [x]\n",
         "issuers[0].name"},
        {"issuers:\n  - {name: Git_Hub, issuer: https://x, audience: a, jwks: k}\nrules: [x]\n",
         "issuers[0].name"},
        {"issuers:\n  - {name: a, issuer: https://x, audience: a, jwks: k}\n"
         "  - {name: b, issuer: https://x, audience: b, jwks: k}\nrules: [x]\n",
         "issuers[1]: same name or issuer as issuers[0]"},
        {"rules:\n  - {issuer: gh, sub: x, role: viewer, apps: [a]}\n", "no issuer named 'gh'"},
        {"rules:\n  - {issuer: mtls, sub: x, role: root, apps: [a]}\n",
         "rules[0].role: 'root' is not admin, deployer or viewer"},
        {"rules:\n  - {issuer: mtls, sub: x, role: viewer}\n", "rules[0].apps"},
        {"rules:\n  - {issuer: mtls, sub: x, role: viewer, apps: []}\n", "rules[0].apps"},
        {"rules:\n  - {issuer: mtls, sub: x, role: viewer, apps: [Shop]}\n", "rules[0].apps[0]"},
        {"rules:\n  - {issuer: mtls, sub: x, role: viewer, apps: [[a]]}\n", "rules[0].apps[0]"},
        {"rules:\n  - {issuer: mtls, role: viewer, apps: [a]}\n", "rules[0].sub: missing"},
        {"issuers:\n  - {name: gh, issuer: https://x, audience: a, jwks: k}\n"
         "rules:\n  - {issuer: gh, sub: x, role: viewer, apps: [a], claims: {sub: y}}\n",
         "rules[0].claims.sub"},
        {"rules:\n  - {issuer: mtls, sub: x, role: viewer, apps: [a], claims: {o: acme}}\n",
         "rules[0].claims: a client certificate has only its name"},
        {"issuers:\n  - {name: gh, issuer: https://x, audience: a, jwks: k}\n"
         "rules:\n  - {issuer: gh, sub: x, role: viewer, apps: [a], claims: [y]}\n",
         "rules[0].claims"},
        {"issuers:\n  - {name: gh, issuer: https://x, audience: a, jwks: k}\n"
         "rules:\n  - {issuer: gh, sub: x, role: viewer, apps: [a], claims: {r: [y]}}\n",
         "rules[0].claims.r: must be a string"},
        {"rules:\n  - {issuer: mtls, sub: x, role: viewer, apps: [a], extra: 1}\n",
         "rules[0]: unknown key 'extra'"},
        {"rules:\n  - &r {issuer: mtls, sub: x, role: viewer, apps: [a]}\n  - *r\n",
         "anchors and aliases"},
        {"rules: [x]\n---\nrules: [y]\n", "more than one YAML document"},
        {"rules: [x\n", "line"},
        {"rules: [x]\nrules: [y]\n", "line 2: duplicate key"},
        {"{[a]: b}", "keys must be plain strings"},
        {"a: [[[[[[[[[[[[[[[[[[[[x]]]]]]]]]]]]]]]]]]]\n", "nested too deep"},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(cases); i++) {
        struct auth_config *cfg = NULL;
        struct orch_error err = {0};
        int rc = auth_config_parse(cases[i].text, strlen(cases[i].text), "auth.yaml", &cfg, &err);
        if (rc == 0)
            fail_msg("case %zu accepted", i);
        assert_null(cfg);
        if (strstr(err.msg, cases[i].want) == NULL || strncmp(err.msg, "auth.yaml: ", 11) != 0)
            fail_msg("case %zu: want '%s' in: %s", i, cases[i].want, err.msg);
    }
    /* a rule of a token issuer must name its subjects: '*' alone would admit anyone GitHub
     * issues a token to (any repository may ask for any audience) */
    _cleanup_free_ char *star = orch_xasprintf(
        "%srules:\n  - {issuer: gh, sub: \"**\", role: viewer, apps: [shop]}\n", iss);
    struct auth_config *cfg = NULL;
    struct orch_error err = {0};
    assert_int_not_equal(auth_config_parse(star, strlen(star), "auth.yaml", &cfg, &err), 0);
    assert_non_null(strstr(err.msg, "rules[0].sub: name the subjects"));
    _cleanup_free_ char *good = orch_xasprintf("%s%s", iss, rule);
    assert_int_equal(auth_config_parse(good, strlen(good), "auth.yaml", &cfg, &err), 0);
    auth_config_free(cfg);
    /* a missing JWKS file names the file and the issuer */
    char path[128];
    snprintf(path, sizeof(path), "%s/bad.yaml", DIR_);
    FILE *f = fopen(path, "w");
    fputs(good, f);
    fclose(f);
    assert_int_not_equal(auth_config_load(path, &cfg, &err), 0);
    assert_non_null(strstr(err.msg, "issuer gh"));
    assert_non_null(strstr(err.msg, "k.json"));
    unlink(path);
    assert_int_equal(auth_config_load("/nonexistent/auth.yaml", &cfg, &err), -ORCH_E_IO);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loaded),
        cmocka_unit_test(test_github_rules),
        cmocka_unit_test(test_jwt_refusals_through_config),
        cmocka_unit_test(test_cert_rules),
        cmocka_unit_test(test_json_form),
        cmocka_unit_test(test_invalid_files),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
