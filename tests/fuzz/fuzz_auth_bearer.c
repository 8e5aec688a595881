/* libFuzzer target over what a client controls in Authorization: Bearer: the bytes go through
 * auth_bearer_authenticate (orch token parsing and lookup, or compact JWS parsing, signature
 * verification and claims, then the rules), against a fixed --auth file, a fixed Ed25519 key (so
 * seeds can carry valid signatures and reach the claim checks and rules) and one stored token.
 * Properties: base64url decoding is canonical (decode then encode gives the input back), and an
 * accepted credential yields a printable identity name. Built with -DFUZZ_AUTH_SEEDGEN it is
 * instead a program that writes the seed folder. */
#include <openssl/evp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"
#include "auth/jwt.h"
#include "auth/token.h"
#include "base/util.h"
#include "auth/test_auth_keys.h"

#define NOW_S 1700000000LL
#define GH "https://token.actions.githubusercontent.com"

static const unsigned char ed_priv[32] = {1,  2,  3,  4,  5,  6,  7,  8,  9,  10, 11,
                                          12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22,
                                          23, 24, 25, 26, 27, 28, 29, 30, 31, 32};
static const char stored_token[] = "orch_0123456789ab_fuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuzzfuz";

static const char auth_yaml[] = "issuers:\n"
                                "  - {name: github, issuer: \"" GH "\", audience: orch, "
                                "jwks: unused.json, leeway: 60s}\n"
                                "rules:\n"
                                "  - {issuer: github, sub: \"repo:acme/shop:ref:refs/heads/main\", "
                                "role: deployer, apps: [shop]}\n"
                                "  - {issuer: github, sub: \"repo:acme@1/infra@2:*\", "
                                "claims: {environment: prod*}, role: admin, apps: [\"*\"]}\n"
                                "  - {issuer: github, sub: \"repo:acme/*\", role: viewer, "
                                "apps: [\"*\"]}\n";

static struct auth_config *cfg;
static struct auth_token_memstore mem;
static struct auth_token_store store;
static EVP_PKEY *ed;

static void fixture(void)
{
    struct orch_error err = {0};
    ed = EVP_PKEY_new_raw_private_key_ex(NULL, "ED25519", NULL, ed_priv, sizeof(ed_priv));
    struct tkeys k;
    tkeys_init(&k); /* random RSA and EC keys: their kids are known, signatures never verify */
    _cleanup_free_ char *edjwk = tkeys_jwk(ed, "ed1", "EdDSA");
    _cleanup_free_ char *rsajwk = tkeys_jwk(k.rsa, "rsa1", NULL);
    _cleanup_free_ char *ecjwk = tkeys_jwk(k.ec, "ec1", NULL);
    _cleanup_free_ char *jwks = orch_xasprintf("{\"keys\": [%s, %s, %s]}", edjwk, rsajwk, ecjwk);
    tkeys_free(&k);
    struct jwks *keys = NULL;
    if (ed == NULL || auth_config_parse(auth_yaml, strlen(auth_yaml), "fuzz", &cfg, &err) < 0 ||
        jwks_parse(jwks, strlen(jwks), &keys, &err) < 0 ||
        auth_config_set_keys(cfg, "github", keys, &err) < 0) {
        fprintf(stderr, "fuzz fixture: %s\n", err.msg);
        abort();
    }
    store = auth_token_memstore(&mem);
    struct auth_token_record rec = {.role = AUTH_ROLE_DEPLOYER, .expires_ms = (NOW_S + 60) * 1000};
    if (auth_token_parse(stored_token, strlen(stored_token), rec.id, rec.hash) < 0)
        abort();
    orch_strv_push(&rec.apps, "shop");
    if (store.put(store.ctx, &rec, &err) != 0)
        abort();
    auth_token_record_free(&rec);
}

#ifndef FUZZ_AUTH_SEEDGEN
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (cfg == NULL)
        fixture();
    const char *s = (const char *)data;

    struct auth_identity id;
    struct orch_error err = {0};
    int64_t now = NOW_S * 1000 + (size > 0 ? (int64_t)data[size - 1] * 1000 : 0);
    if (auth_bearer_authenticate(cfg, &store, s, size, now, &id, &err) == 0) {
        for (const char *p = id.name; *p != '\0'; p++)
            if (*p < 0x20 || *p > 0x7e)
                abort();
        static const char *const apps[] = {"shop", "blog", NULL};
        for (size_t i = 0; i < ORCH_ARRAY_LEN(apps); i++)
            for (enum auth_role r = AUTH_ROLE_VIEWER; r <= AUTH_ROLE_ADMIN; r++)
                (void)auth_allows(&id, r, apps[i], now);
        auth_identity_free(&id);
    } else if (strnlen(err.msg, sizeof(err.msg)) >= sizeof(err.msg)) {
        abort();
    }

    /* base64url is canonical: what decodes re-encodes to the same text */
    if (size <= 4096) {
        unsigned char dec[3072];
        long n = jwt_b64url_decode(s, size, dec, sizeof(dec));
        if (n >= 0) {
            char enc[4200];
            size_t m = jwt_b64url_encode(dec, (size_t)n, enc);
            if (m != size || memcmp(enc, s, size) != 0)
                abort();
        }
    }

    /* the GitHub-aware subject matcher on pattern '\n' value */
    const char *nl = memchr(s, '\n', size);
    if (nl != NULL && size < 512) {
        _cleanup_free_ char *pat = orch_xstrndup(s, (size_t)(nl - s));
        _cleanup_free_ char *val = orch_xstrndup(nl + 1, size - (size_t)(nl - s) - 1);
        bool m = auth_sub_match(pat, val);
        /* a pattern matches itself when it has no '*' or '@' (plain text) */
        if (!m && strpbrk(pat, "*@") == NULL && strlen(pat) == (size_t)(nl - s) &&
            strcmp(pat, val) == 0)
            abort();
    }
    return 0;
}
#else
static void put(const char *dir, const char *name, const char *text)
{
    _cleanup_free_ char *path = orch_xasprintf("%s/%s", dir, name);
    FILE *f = fopen(path, "w");
    if (f == NULL || fwrite(text, 1, strlen(text), f) != strlen(text))
        abort();
    fclose(f);
}

static void put_jwt(const char *dir, const char *name, const char *alg, const char *kid,
                    EVP_PKEY *key, const char *sub, const char *extra)
{
    _cleanup_free_ char *c = orch_xasprintf(
        "{\"iss\": \"" GH "\", \"aud\": \"orch\", \"sub\": \"%s\", \"exp\": %lld, "
        "\"nbf\": %lld, \"iat\": %lld%s%s}",
        sub, NOW_S + 300, NOW_S - 10, NOW_S - 10, extra ? ", " : "", extra ? extra : "");
    _cleanup_free_ char *t = tsign(alg, kid, key, c);
    put(dir, name, t);
}

int main(int argc, char **argv)
{
    if (argc != 2) {
        fprintf(stderr, "usage: %s SEED_DIR\n", argv[0]);
        return 2;
    }
    const char *dir = argv[1];
    fixture();
    struct tkeys k;
    tkeys_init(&k);
    put_jwt(dir, "jwt_main", "EdDSA", "ed1", ed, "repo:acme/shop:ref:refs/heads/main", NULL);
    put_jwt(dir, "jwt_ids", "EdDSA", "ed1", ed, "repo:acme@1/shop@3:ref:refs/heads/main", NULL);
    put_jwt(dir, "jwt_admin", "EdDSA", "ed1", ed, "repo:acme@1/infra@2:environment:prod",
            "\"environment\": \"production\"");
    put_jwt(dir, "jwt_norule", "EdDSA", "ed1", ed, "repo:evil/shop:ref:refs/heads/main", NULL);
    put_jwt(dir, "jwt_rs256", "RS256", "rsa1", k.rsa, "repo:acme/shop:ref:refs/heads/main", NULL);
    put_jwt(dir, "jwt_es256", "ES256", "ec1", k.ec, "repo:acme/shop:ref:refs/heads/main", NULL);
    put_jwt(dir, "jwt_kid_mismatch", "RS256", "ed1", k.rsa, "repo:acme/x", NULL);
    _cleanup_free_ char *none =
        tsign_raw("none", NULL, NULL, 0, "{\"alg\": \"none\"}", "{\"iss\": \"" GH "\"}");
    put(dir, "jwt_none", none);
    _cleanup_free_ char *hs = tsign_raw("HS256", NULL, (const unsigned char *)"k", 1,
                                        "{\"alg\": \"HS256\", \"kid\": \"rsa1\"}", "{}");
    put(dir, "jwt_hs256", hs);
    put(dir, "orch_token", stored_token);
    put(dir, "orch_token_wrong", "orch_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA");
    put(dir, "sub_pair", "repo:acme@1/*:ref:*\nrepo:acme@1/shop@3:ref:refs/heads/main");
    put(dir, "b64", "eyJhbGciOiJFZERTQSJ9");
    tkeys_free(&k);
    return 0;
}
#endif
