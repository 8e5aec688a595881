/* JWT and JWKS tests: tokens signed here with keys generated at run time (RSA 2048, EC P-256,
 * Ed25519), verified by jwt.c; every refusal the API promises (alg none, HMAC with the RSA
 * public key, unknown kid, a kid of another key type, forged signatures, bad base64url,
 * oversized tokens, claims and leeway edges). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "auth/jwt.h"
#include "base/util.h"
#include "test_auth_keys.h"

#define NOW 1700000000LL
#define ISS "https://token.actions.githubusercontent.com"
#define AUD "https://orch.acme.example"

static struct tkeys K;
static struct jwks *KEYS;

static int setup(void **state)
{
    tkeys_init(&K);
    struct orch_error err = {0};
    if (jwks_parse(K.jwks, strlen(K.jwks), &KEYS, &err) < 0) {
        fprintf(stderr, "jwks: %s\n", err.msg);
        return -1;
    }
    return 0;
}

static int teardown(void **state)
{
    jwks_free(KEYS);
    tkeys_free(&K);
    return 0;
}

/* Claims with the usual iss and aud; exp/nbf/iat relative to NOW; extra JSON members appended. */
static char *claims(long long exp_rel, const char *extra)
{
    return orch_xasprintf("{\"iss\": \"" ISS "\", \"aud\": \"" AUD "\", \"sub\": "
                          "\"repo:acme/shop:ref:refs/heads/main\", \"exp\": %lld%s%s}",
                          NOW + exp_rel, extra ? ", " : "", extra ? extra : "");
}

/* Parse, verify, check: 0 or the error, with its message in err. */
static int verify_at(const char *token, int64_t now, struct orch_error *err)
{
    struct jwt t;
    int rc = jwt_parse(token, strlen(token), &t, err);
    if (rc < 0)
        return rc;
    struct jwt_expect want = {ISS, AUD, 60};
    rc = jwt_verify_signature(&t, KEYS, err);
    if (rc == 0)
        rc = jwt_check_claims(&t, &want, now, err);
    jwt_free(&t);
    return rc;
}

static void expect(const char *token, const char *fragment)
{
    struct orch_error err = {0};
    int rc = verify_at(token, NOW, &err);
    if (fragment == NULL) {
        if (rc != 0)
            fail_msg("expected success, got: %s", err.msg);
        return;
    }
    if (rc == 0)
        fail_msg("expected a refusal with '%s'", fragment);
    if (strstr(err.msg, fragment) == NULL)
        fail_msg("expected '%s' in: %s", fragment, err.msg);
    /* never the token, nor its signature, in a message */
    const char *sig = strrchr(token, '.');
    if (sig != NULL && strlen(sig) > 8)
        assert_null(strstr(err.msg, sig + 1));
}

static EVP_PKEY *key_of(const char *alg)
{
    return strcmp(alg, "RS256") == 0 ? K.rsa : strcmp(alg, "ES256") == 0 ? K.ec : K.ed;
}

static void test_valid_each_alg(void **state)
{
    static const char *const algs[][2] = {{"RS256", "rsa1"}, {"ES256", "ec1"}, {"EdDSA", "ed1"}};
    for (size_t i = 0; i < ORCH_ARRAY_LEN(algs); i++) {
        _cleanup_free_ char *c = claims(300, "\"iat\": 1699999990, \"nbf\": 1699999990");
        _cleanup_free_ char *tok = tsign(algs[i][0], algs[i][1], key_of(algs[i][0]), c);
        expect(tok, NULL);
        struct jwt t;
        struct orch_error err = {0};
        assert_int_equal(jwt_parse(tok, strlen(tok), &t, &err), 0);
        assert_string_equal(t.kid, algs[i][1]);
        assert_string_equal(jwt_alg_name(t.alg), algs[i][0]);
        jwt_free(&t);
    }
}

static void test_claims_table(void **state)
{
    static const struct {
        long long exp_rel;
        const char *extra;
        const char *want; /* NULL: accepted */
    } cases[] = {
        {-61, NULL, "expired"},
        {-60, NULL, "expired"}, /* exp + leeway == now: no longer valid */
        {-59, NULL, NULL},      /* inside the 60 s leeway */
        {0, NULL, NULL},
        {300, "\"nbf\": 1700000060", NULL}, /* nbf == now + leeway */
        {300, "\"nbf\": 1700000061", "not valid before"},
        {300, "\"iat\": 1700000060", NULL},
        {300, "\"iat\": 1700000061", "issued in the future"},
        {-30, "\"iat\": 1700000000", "issued after it expires"},
        {300, "\"nbf\": \"1700000000\"", "NumericDate"},
        {300, "\"iat\": 1e300", "NumericDate"},
        {300, "\"exp\": 5", "duplicate"}, /* a second exp: JSON with duplicate keys is refused */
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(cases); i++) {
        _cleanup_free_ char *c = claims(cases[i].exp_rel, cases[i].extra);
        _cleanup_free_ char *tok = tsign("ES256", "ec1", K.ec, c);
        if (cases[i].want != NULL && strcmp(cases[i].want, "duplicate") == 0) {
            expect(tok, "claims are not");
            continue;
        }
        expect(tok, cases[i].want);
    }
}

static void test_iss_aud(void **state)
{
    static const struct {
        const char *json;
        const char *want;
    } cases[] = {
        {"{\"iss\": \"" ISS "\", \"aud\": \"" AUD "\", \"exp\": 1700000300}", NULL},
        {"{\"iss\": \"" ISS "\", \"aud\": [\"x\", \"" AUD "\"], \"exp\": 1700000300}", NULL},
        {"{\"iss\": \"" ISS "\", \"aud\": \"https://other\", \"exp\": 1700000300}", "aud"},
        {"{\"iss\": \"" ISS "\", \"aud\": [\"x\", \"y\"], \"exp\": 1700000300}", "aud"},
        {"{\"iss\": \"" ISS "\", \"aud\": [], \"exp\": 1700000300}", "aud"},
        {"{\"iss\": \"" ISS "\", \"aud\": [7, \"" AUD "\"], \"exp\": 1700000300}", "non-string"},
        {"{\"iss\": \"" ISS "\", \"exp\": 1700000300}", "aud"},
        {"{\"iss\": \"https://evil\", \"aud\": \"" AUD "\", \"exp\": 1700000300}", "iss"},
        {"{\"aud\": \"" AUD "\", \"exp\": 1700000300}", "iss"},
        {"{\"iss\": \"" ISS "\", \"aud\": \"" AUD "\"}", "no exp"},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(cases); i++) {
        _cleanup_free_ char *tok = tsign("RS256", "rsa1", K.rsa, cases[i].json);
        expect(tok, cases[i].want);
    }
}

static void test_forged(void **state)
{
    _cleanup_free_ char *c = claims(300, NULL);
    /* signed by another key under a trusted kid, for each algorithm */
    EVP_PKEY *other_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
    EVP_PKEY *other_ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    EVP_PKEY *other_ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519");
    _cleanup_free_ char *t1 = tsign("RS256", "rsa1", other_rsa, c);
    _cleanup_free_ char *t2 = tsign("ES256", "ec1", other_ec, c);
    _cleanup_free_ char *t3 = tsign("EdDSA", "ed1", other_ed, c);
    expect(t1, "bad RS256 signature");
    expect(t2, "bad ES256 signature");
    expect(t3, "bad EdDSA signature");
    EVP_PKEY_free(other_rsa);
    EVP_PKEY_free(other_ec);
    EVP_PKEY_free(other_ed);

    /* a valid signature with the claims swapped for others */
    _cleanup_free_ char *good = tsign("EdDSA", "ed1", K.ed, c);
    _cleanup_free_ char *c2 = claims(99999, "\"repository\": \"evil/x\"");
    _cleanup_free_ char *other = tsign("EdDSA", "ed1", K.ed, c2);
    char *d1 = strchr(good, '.'), *d2 = strrchr(good, '.');
    char *o1 = strchr(other, '.'), *o2 = strrchr(other, '.');
    _cleanup_free_ char *spliced =
        orch_xasprintf("%.*s%.*s%s", (int)(d1 - good), good, (int)(o2 - o1), o1, d2);
    expect(spliced, "bad EdDSA signature");

    /* one bit of the signature flipped */
    _cleanup_free_ char *flip = orch_xstrdup(good);
    char *last = flip + strlen(flip) - 2;
    *last = *last == 'A' ? 'B' : 'A';
    expect(flip, "bad EdDSA signature");

    /* truncated signatures */
    _cleanup_free_ char *rs = tsign("RS256", "rsa1", K.rsa, c);
    rs[strlen(rs) - 2] = 0; /* 340 characters: 255 bytes, canonical */
    expect(rs, "wrong length");
    _cleanup_free_ char *es = tsign("ES256", "ec1", K.ec, c);
    es[strlen(es) - 2] = 0; /* 63 bytes */
    expect(es, "64 bytes");
}

static void test_es256_der_signature_refused(void **state)
{
    /* A DER-encoded ECDSA signature (what OpenSSL produces) is not JWS's r||s: refused. */
    _cleanup_free_ char *c = claims(300, NULL);
    _cleanup_free_ char *hdr = orch_xstrdup("{\"alg\": \"ES256\", \"kid\": \"ec1\"}");
    _cleanup_free_ char *tok = tsign_raw("ES256", K.ec, NULL, 0, hdr, c);
    /* re-sign the same input, keeping DER */
    char *d2 = strrchr(tok, '.');
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char der[128];
    size_t der_len = sizeof(der);
    assert_int_equal(EVP_DigestSignInit_ex(md, NULL, "SHA256", NULL, NULL, K.ec, NULL), 1);
    assert_int_equal(EVP_DigestSign(md, der, &der_len, (unsigned char *)tok, (size_t)(d2 - tok)),
                     1);
    EVP_MD_CTX_free(md);
    char enc[200];
    jwt_b64url_encode(der, der_len, enc);
    _cleanup_free_ char *bad = orch_xasprintf("%.*s.%s", (int)(d2 - tok), tok, enc);
    expect(bad, "64 bytes");
}

static void test_alg_confusion(void **state)
{
    _cleanup_free_ char *c = claims(300, NULL);
    /* alg none: with no signature, and with a made-up one */
    _cleanup_free_ char *none1 =
        tsign_raw("none", NULL, NULL, 0, "{\"alg\": \"none\", \"kid\": \"rsa1\"}", c);
    expect(none1, "empty");
    _cleanup_free_ char *none2 = orch_xasprintf("%sAAAA", none1);
    expect(none2, "alg none is refused");
    _cleanup_free_ char *none3 =
        tsign_raw("none", NULL, NULL, 0, "{\"alg\": \"NONE\", \"kid\": \"rsa1\"}", c);
    _cleanup_free_ char *none4 = orch_xasprintf("%sAAAA", none3);
    expect(none4, "alg none is refused");

    /* HS256 keyed with the RSA public key (PEM, and the JWK's n): the classic confusion */
    _cleanup_free_ char *pem = tkeys_public_pem(K.rsa);
    _cleanup_free_ char *hs = tsign_raw("HS256", NULL, (unsigned char *)pem, strlen(pem),
                                        "{\"alg\": \"HS256\", \"kid\": \"rsa1\"}", c);
    expect(hs, "HMAC");
    _cleanup_free_ char *hs2 = tsign_raw("HS256", NULL, (unsigned char *)"secret", 6,
                                         "{\"alg\": \"HS256\", \"kid\": \"hmac1\"}", c);
    expect(hs2, "HMAC");

    /* a kid naming a key of another type */
    _cleanup_free_ char *a = tsign("RS256", "ec1", K.rsa, c);
    expect(a, "key ec1 is an EC P-256 key, the token says RS256");
    _cleanup_free_ char *b = tsign("EdDSA", "rsa1", K.ed, c);
    expect(b, "key rsa1 is an RSA key, the token says EdDSA");
    _cleanup_free_ char *d = tsign("ES256", "ed1", K.ec, c);
    expect(d, "key ed1 is an Ed25519 key, the token says ES256");

    /* unknown kid; the oct key was skipped, so its kid is unknown too */
    _cleanup_free_ char *u = tsign("RS256", "rsa9", K.rsa, c);
    expect(u, "unknown kid rsa9");
    _cleanup_free_ char *o = tsign("RS256", "hmac1", K.rsa, c);
    expect(o, "unknown kid hmac1");

    /* other algorithms, a missing kid, crit, a kid with a newline */
    static const char *const hdrs[][2] = {
        {"{\"alg\": \"PS256\", \"kid\": \"rsa1\"}", "unsupported alg"},
        {"{\"alg\": \"RS512\", \"kid\": \"rsa1\"}", "unsupported alg"},
        {"{\"kid\": \"rsa1\"}", "no alg"},
        {"{\"alg\": 1, \"kid\": \"rsa1\"}", "no alg"},
        {"{\"alg\": \"RS256\"}", "no kid"},
        {"{\"alg\": \"RS256\", \"kid\": \"\"}", "kid must be"},
        {"{\"alg\": \"RS256\", \"kid\": \"rs\\na1\"}", "kid must be"},
        {"{\"alg\": \"RS256\", \"kid\": \"rsa1\", \"crit\": [\"exp\"]}", "crit"},
        {"{\"alg\": \"RS256\", \"alg\": \"RS256\", \"kid\": \"rsa1\"}", "header"},
        {"[\"RS256\"]", "header"},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(hdrs); i++) {
        _cleanup_free_ char *t = tsign_raw("RS256", K.rsa, NULL, 0, hdrs[i][0], c);
        expect(t, hdrs[i][1]);
    }
}

static void test_malformed(void **state)
{
    _cleanup_free_ char *c = claims(300, NULL);
    _cleanup_free_ char *good = tsign("EdDSA", "ed1", K.ed, c);
    size_t n = strlen(good);
    char *d1 = strchr(good, '.');
    struct {
        char *tok;
        const char *want;
    } cases[] = {
        {orch_xasprintf("%s=", good), "signature is not base64url"},           /* padding */
        {orch_xasprintf("%s==", good), "signature is not base64url"},          /* padding */
        {orch_xasprintf("%s ", good), "signature is not base64url"},           /* whitespace */
        {orch_xasprintf(" %s", good), "header"},                               /* whitespace */
        {orch_xasprintf("%s.", good), "three"},                                /* four parts */
        {orch_xasprintf("%.*s", (int)(d1 - good), good), "three"},             /* one part */
        {orch_xasprintf("%s", d1), "empty"},                                   /* empty header */
        {orch_xasprintf("%.*s+%s", (int)(d1 - good) - 1, good, d1), "header"}, /* '+' */
        {orch_xasprintf("%.*s/%s", (int)(d1 - good) - 1, good, d1), "header"}, /* '/' */
        {orch_xasprintf("%sAAA", good), "signature is not base64url"},         /* length 1 mod 4 */
        {orch_xasprintf("e30.e30.%s", strrchr(good, '.') + 1), "no alg"},      /* {} header */
    };
    (void)n;
    for (size_t i = 0; i < ORCH_ARRAY_LEN(cases); i++) {
        expect(cases[i].tok, cases[i].want);
        free(cases[i].tok);
    }
    /* a signature whose last character carries non-zero unused bits */
    _cleanup_free_ char *nc = orch_xstrdup(good);
    char *last = nc + strlen(nc) - 1; /* 64-byte sig: 86 chars, the last holds 2 unused bits */
    const char *tab = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    int v = (int)(strchr(tab, *last) - tab);
    *last = tab[v | 1];
    expect(nc, "signature is not base64url");

    /* oversized: a claims part long enough to pass 8 KiB */
    struct orch_buf b = {0};
    orch_buf_puts(&b, "\"pad\": \"");
    for (int i = 0; i < 7000; i++)
        orch_buf_putc(&b, 'x');
    orch_buf_putc(&b, '"');
    _cleanup_free_ char *big_claims = claims(300, b.data);
    orch_buf_free(&b);
    _cleanup_free_ char *big = tsign("EdDSA", "ed1", K.ed, big_claims);
    assert_true(strlen(big) > JWT_MAX_TOKEN);
    expect(big, "longer than 8192");
    expect("", "empty token");
}

static void test_b64url(void **state)
{
    unsigned char in[16], out[16];
    char enc[32];
    for (size_t len = 0; len <= sizeof(in); len++) {
        for (size_t i = 0; i < len; i++)
            in[i] = (unsigned char)(0xf7 * (i + 1) + len);
        size_t n = jwt_b64url_encode(in, len, enc);
        assert_int_equal(n, (len * 4 + 2) / 3);
        assert_int_equal(jwt_b64url_decode(enc, n, out, sizeof(out)), (long)len);
        assert_memory_equal(in, out, len);
    }
    static const char *const bad[] = {"A", "AB", "AAA=", "AA==", "A+A/", "AA A", "ABC", "AAAAA"};
    for (size_t i = 0; i < ORCH_ARRAY_LEN(bad); i++)
        assert_int_equal(jwt_b64url_decode(bad[i], strlen(bad[i]), out, sizeof(out)), -1);
    assert_int_equal(jwt_b64url_decode("AA", 2, out, sizeof(out)), 1);
    assert_int_equal(jwt_b64url_decode("AAE", 3, out, sizeof(out)), 2);
    assert_int_equal(jwt_b64url_decode("AAAA", 4, out, 2), -1); /* does not fit */
}

static void jwks_expect(const char *json, const char *want)
{
    struct jwks *ks = NULL;
    struct orch_error err = {0};
    int rc = jwks_parse(json, strlen(json), &ks, &err);
    if (want == NULL) {
        if (rc != 0)
            fail_msg("expected a JWKS, got: %s", err.msg);
        jwks_free(ks);
        return;
    }
    assert_int_not_equal(rc, 0);
    assert_null(ks);
    if (strstr(err.msg, want) == NULL)
        fail_msg("expected '%s' in: %s", want, err.msg);
}

static void test_jwks(void **state)
{
    assert_int_equal(jwks_count(KEYS), 3); /* the oct key was skipped */
    EVP_PKEY *small = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
    _cleanup_free_ char *small_jwk = tkeys_jwk(small, "small", NULL);
    EVP_PKEY_free(small);
    _cleanup_free_ char *j1 = orch_xasprintf("{\"keys\": [%s]}", small_jwk);
    jwks_expect(j1, "at least 2048");

    _cleanup_free_ char *ec = tkeys_jwk(K.ec, "ec1", NULL);
    _cleanup_free_ char *ed = tkeys_jwk(K.ed, "ed1", NULL);
    _cleanup_free_ char *dup = orch_xasprintf("{\"keys\": [%s, %s]}", ec, ec);
    jwks_expect(dup, "kid ec1 appears twice");
    _cleanup_free_ char *ok = orch_xasprintf("{\"keys\": [%s, %s]}", ec, ed);
    jwks_expect(ok, NULL);

    /* an EC point off the curve: x = 1, y = 1 */
    jwks_expect("{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-256\", \"kid\": \"bad\", "
                "\"x\": \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\", "
                "\"y\": \"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE\"}]}",
                "not a point on P-256");
    jwks_expect("{\"keys\": [{\"kty\": \"EC\", \"crv\": \"P-256\", \"kid\": \"short\", "
                "\"x\": \"AAAA\", \"y\": \"AAAA\"}]}",
                "32 bytes");
    jwks_expect("{\"keys\": [{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"kid\": \"p\", "
                "\"x\": \"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo=\"}]}",
                "base64url");
    jwks_expect("{\"keys\": [{\"kty\": \"oct\", \"kid\": \"h\", \"k\": \"c2VjcmV0\"}]}",
                "no usable");
    jwks_expect("{\"keys\": [{\"kty\": \"RSA\", \"kid\": \"enc\", \"use\": \"enc\", \"n\": "
                "\"AQAB\", \"e\": \"AQAB\"}]}",
                "no usable");
    jwks_expect("{\"keys\": [{\"kty\": \"RSA\", \"kid\": \"r384\", \"alg\": \"RS384\", \"n\": "
                "\"AQAB\", \"e\": \"AQAB\"}]}",
                "no usable");
    jwks_expect("{\"keys\": [{\"kty\": \"RSA\", \"kid\": \"r\", \"n\": \"AQAB\"}]}", "\"e\"");
    jwks_expect("{\"keys\": {}}", "no \"keys\" array");
    jwks_expect("[", "not JSON");
    jwks_expect("{\"keys\": [1]}", "not an object");
    struct orch_buf b = {0};
    orch_buf_puts(&b, "{\"keys\": [");
    for (int i = 0; i < JWKS_MAX_KEYS + 1; i++)
        orch_buf_printf(&b, "%s{\"kty\": \"oct\"}", i ? "," : "");
    orch_buf_puts(&b, "]}");
    jwks_expect(b.data, "more than 64 keys");
    orch_buf_free(&b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_valid_each_alg),
        cmocka_unit_test(test_claims_table),
        cmocka_unit_test(test_iss_aud),
        cmocka_unit_test(test_forged),
        cmocka_unit_test(test_es256_der_signature_refused),
        cmocka_unit_test(test_alg_confusion),
        cmocka_unit_test(test_malformed),
        cmocka_unit_test(test_b64url),
        cmocka_unit_test(test_jwks),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
