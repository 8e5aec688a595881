/* Key generation, JWKS export and a JWS signer for the auth tests and the fuzz target. Aborts on
 * any OpenSSL failure: a test helper that half-works hides bugs. */
#include "test_auth_keys.h"

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth/jwt.h"
#include "base/util.h"

#define CHECK(x)                                                                                   \
    do {                                                                                           \
        if (!(x)) {                                                                                \
            fprintf(stderr, "%s:%d: OpenSSL failed: %s\n", __FILE__, __LINE__, #x);                \
            abort();                                                                               \
        }                                                                                          \
    } while (0)

static char *b64(const unsigned char *d, size_t n)
{
    char *out = orch_xmalloc(n / 3 * 4 + 8);
    jwt_b64url_encode(d, n, out);
    return out;
}

static char *bn_param_b64(EVP_PKEY *key, const char *name, int pad)
{
    BIGNUM *bn = NULL;
    CHECK(EVP_PKEY_get_bn_param(key, name, &bn) == 1);
    int n = pad ? pad : BN_num_bytes(bn);
    unsigned char *buf = orch_xmalloc((size_t)n);
    CHECK(BN_bn2binpad(bn, buf, n) == n);
    char *s = b64(buf, (size_t)n);
    free(buf);
    BN_free(bn);
    return s;
}

char *tkeys_jwk(EVP_PKEY *key, const char *kid, const char *alg)
{
    char algpart[64] = "";
    if (alg != NULL)
        snprintf(algpart, sizeof(algpart), ", \"alg\": \"%s\"", alg);
    if (EVP_PKEY_is_a(key, "RSA")) {
        _cleanup_free_ char *n = bn_param_b64(key, OSSL_PKEY_PARAM_RSA_N, 0);
        _cleanup_free_ char *e = bn_param_b64(key, OSSL_PKEY_PARAM_RSA_E, 0);
        return orch_xasprintf(
            "{\"kty\": \"RSA\", \"kid\": \"%s\", \"use\": \"sig\", \"n\": \"%s\", \"e\": \"%s\"%s}",
            kid, n, e, algpart);
    }
    if (EVP_PKEY_is_a(key, "EC")) {
        _cleanup_free_ char *x = bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_X, 32);
        _cleanup_free_ char *y = bn_param_b64(key, OSSL_PKEY_PARAM_EC_PUB_Y, 32);
        return orch_xasprintf("{\"kty\": \"EC\", \"crv\": \"P-256\", \"kid\": \"%s\", \"x\": "
                              "\"%s\", \"y\": \"%s\"%s}",
                              kid, x, y, algpart);
    }
    unsigned char raw[32];
    size_t len = sizeof(raw);
    CHECK(EVP_PKEY_get_raw_public_key(key, raw, &len) == 1 && len == 32);
    _cleanup_free_ char *x = b64(raw, len);
    return orch_xasprintf(
        "{\"kty\": \"OKP\", \"crv\": \"Ed25519\", \"kid\": \"%s\", \"x\": \"%s\"%s}", kid, x,
        algpart);
}

void tkeys_init(struct tkeys *k)
{
    CHECK((k->rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048)) != NULL);
    CHECK((k->ec = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256")) != NULL);
    CHECK((k->ed = EVP_PKEY_Q_keygen(NULL, NULL, "ED25519")) != NULL);
    _cleanup_free_ char *r = tkeys_jwk(k->rsa, "rsa1", "RS256");
    _cleanup_free_ char *e = tkeys_jwk(k->ec, "ec1", NULL);
    _cleanup_free_ char *d = tkeys_jwk(k->ed, "ed1", "EdDSA");
    k->jwks = orch_xasprintf("{\"keys\": [%s, %s, %s, {\"kty\": \"oct\", \"kid\": \"hmac1\", "
                             "\"k\": \"c2VjcmV0\"}]}",
                             r, e, d);
}

void tkeys_free(struct tkeys *k)
{
    EVP_PKEY_free(k->rsa);
    EVP_PKEY_free(k->ec);
    EVP_PKEY_free(k->ed);
    free(k->jwks);
    memset(k, 0, sizeof(*k));
}

char *tkeys_public_pem(EVP_PKEY *key)
{
    BIO *bio = BIO_new(BIO_s_mem());
    CHECK(bio != NULL && PEM_write_bio_PUBKEY(bio, key) == 1);
    char *data = NULL;
    long n = BIO_get_mem_data(bio, &data);
    char *out = orch_xstrndup(data, (size_t)n);
    BIO_free(bio);
    return out;
}

char *tsign_raw(const char *alg, EVP_PKEY *key, const unsigned char *hmac_secret, size_t hmac_len,
                const char *header_json, const char *claims_json)
{
    _cleanup_free_ char *h = b64((const unsigned char *)header_json, strlen(header_json));
    _cleanup_free_ char *p = b64((const unsigned char *)claims_json, strlen(claims_json));
    _cleanup_free_ char *input = orch_xasprintf("%s.%s", h, p);
    unsigned char sig[1024];
    size_t sig_len = sizeof(sig);
    if (strcmp(alg, "none") == 0) {
        sig_len = 0;
    } else if (strcmp(alg, "HS256") == 0) {
        CHECK(EVP_Q_mac(NULL, "HMAC", NULL, "SHA256", NULL, hmac_secret, hmac_len,
                        (unsigned char *)input, strlen(input), sig, sizeof(sig), &sig_len) != NULL);
    } else {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        CHECK(md != NULL);
        CHECK(EVP_DigestSignInit_ex(md, NULL, strcmp(alg, "EdDSA") == 0 ? NULL : "SHA256", NULL,
                                    NULL, key, NULL) == 1);
        CHECK(EVP_DigestSign(md, sig, &sig_len, (unsigned char *)input, strlen(input)) == 1);
        EVP_MD_CTX_free(md);
        if (strcmp(alg, "ES256") == 0) { /* DER -> r||s */
            const unsigned char *d = sig;
            ECDSA_SIG *es = d2i_ECDSA_SIG(NULL, &d, (long)sig_len);
            CHECK(es != NULL);
            CHECK(BN_bn2binpad(ECDSA_SIG_get0_r(es), sig, 32) == 32);
            CHECK(BN_bn2binpad(ECDSA_SIG_get0_s(es), sig + 32, 32) == 32);
            ECDSA_SIG_free(es);
            sig_len = 64;
        }
    }
    _cleanup_free_ char *s = b64(sig, sig_len);
    return orch_xasprintf("%s.%s", input, s);
}

char *tsign(const char *alg, const char *kid, EVP_PKEY *key, const char *claims_json)
{
    _cleanup_free_ char *hdr =
        orch_xasprintf("{\"alg\": \"%s\", \"kid\": \"%s\", \"typ\": \"JWT\"}", alg, kid);
    return tsign_raw(alg, key, NULL, 0, hdr, claims_json);
}
