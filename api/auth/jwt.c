/* Compact JWS parsing and verification with OpenSSL (EVP) and jansson: base64url, JWKS keys,
 * RS256/ES256/EdDSA signatures, registered claims. Each step refuses rather than guesses: one
 * algorithm per key type, no HMAC, no "none", no keys carried in the token itself (jwk, jku, x5u
 * are ignored; keys come only from the JWKS file). No clock and no I/O but jwks_load_file. */
#include "jwt.h"

#include <errno.h>
#include <math.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/util.h"

struct jwk {
    char kid[128];
    enum jwt_alg alg; /* the one algorithm this key verifies */
    EVP_PKEY *pkey;
};

struct jwks {
    struct jwk *keys;
    size_t n;
};

/* ---- base64url ---- */

static int b64url_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

long jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t out_cap)
{
    if (len % 4 == 1)
        return -1;
    size_t need = len / 4 * 3 + (len % 4 == 0 ? 0 : len % 4 - 1);
    if (need > out_cap)
        return -1;
    uint32_t acc = 0;
    int bits = 0;
    size_t o = 0;
    for (size_t i = 0; i < len; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0)
            return -1;
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    /* The leftover bits must be zero: otherwise two spellings decode to the same bytes. */
    if (acc != 0)
        return -1;
    return (long)o;
}

size_t jwt_b64url_encode(const unsigned char *in, size_t len, char *out)
{
    static const char tab[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    size_t o = 0;
    size_t i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
        out[o++] = tab[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8;
        out[o++] = tab[v >> 18];
        out[o++] = tab[(v >> 12) & 63];
        out[o++] = tab[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

const char *jwt_alg_name(enum jwt_alg alg)
{
    switch (alg) {
    case JWT_ALG_RS256:
        return "RS256";
    case JWT_ALG_ES256:
        return "ES256";
    case JWT_ALG_EDDSA:
        return "EdDSA";
    }
    return "?";
}

static const char *key_kind(enum jwt_alg alg)
{
    switch (alg) {
    case JWT_ALG_RS256:
        return "an RSA key";
    case JWT_ALG_ES256:
        return "an EC P-256 key";
    case JWT_ALG_EDDSA:
        return "an Ed25519 key";
    }
    return "?";
}

/* A kid goes into error messages and logs: printable ASCII only, so it cannot forge lines. */
static bool kid_ok(const char *s, size_t len)
{
    if (len == 0 || len >= sizeof(((struct jwk *)0)->kid))
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < 0x21 || s[i] > 0x7e)
            return false;
    return true;
}

/* ---- JWKS ---- */

/* Decodes the base64url member `name` of a JWK into a new buffer of at most cap bytes. */
static int jwk_bytes(json_t *key, const char *name, size_t cap, unsigned char **out, size_t *len,
                     const char *kid, struct orch_error *err)
{
    json_t *v = json_object_get(key, name);
    if (!json_is_string(v))
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s: \"%s\" missing or not a string", kid,
                         name);
    size_t slen = json_string_length(v);
    unsigned char *buf = orch_xmalloc(cap ? cap : 1);
    long n = jwt_b64url_decode(json_string_value(v), slen, buf, cap);
    if (n <= 0) {
        free(buf);
        return orch_fail(err, ORCH_E_INVALID, 0,
                         "key %s: \"%s\" is not base64url of at most %zu bytes", kid, name, cap);
    }
    *out = buf;
    *len = (size_t)n;
    return 0;
}

static EVP_PKEY *pkey_fromdata(const char *type, OSSL_PARAM_BLD *bld)
{
    EVP_PKEY *pkey = NULL;
    OSSL_PARAM *params = OSSL_PARAM_BLD_to_param(bld);
    EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_name(NULL, type, NULL);
    if (params == NULL || ctx == NULL || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, &pkey, EVP_PKEY_PUBLIC_KEY, params) <= 0)
        pkey = NULL;
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    return pkey;
}

static int jwk_rsa(json_t *key, const char *kid, EVP_PKEY **out, struct orch_error *err)
{
    _cleanup_free_ unsigned char *n = NULL;
    _cleanup_free_ unsigned char *e = NULL;
    size_t nlen, elen;
    /* 2048..8192 bits: smaller is forgeable, larger only makes verification a denial of service */
    int rc;
    if ((rc = jwk_bytes(key, "n", 1024, &n, &nlen, kid, err)) < 0 ||
        (rc = jwk_bytes(key, "e", 8, &e, &elen, kid, err)) < 0)
        return rc;
    if (n[0] == 0 || e[0] == 0)
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s: n or e has leading zero bytes", kid);
    if (nlen < 256)
        return orch_fail(err, ORCH_E_INVALID, 0,
                         "key %s: RSA modulus of %zu bits, at least 2048 needed", kid, nlen * 8);
    if ((e[elen - 1] & 1) == 0 || (elen == 1 && e[0] < 3))
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s: bad RSA exponent", kid);
    BIGNUM *bn = BN_bin2bn(n, (int)nlen, NULL);
    BIGNUM *be = BN_bin2bn(e, (int)elen, NULL);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bn && be && bld && OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, bn) &&
        OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, be))
        pkey = pkey_fromdata("RSA", bld);
    OSSL_PARAM_BLD_free(bld);
    BN_free(bn);
    BN_free(be);
    if (pkey == NULL) {
        ERR_clear_error();
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s: OpenSSL refused the RSA key", kid);
    }
    *out = pkey;
    return 0;
}

static int jwk_ec(json_t *key, const char *kid, EVP_PKEY **out, struct orch_error *err)
{
    _cleanup_free_ unsigned char *x = NULL;
    _cleanup_free_ unsigned char *y = NULL;
    size_t xlen, ylen;
    int rc;
    if ((rc = jwk_bytes(key, "x", 32, &x, &xlen, kid, err)) < 0 ||
        (rc = jwk_bytes(key, "y", 32, &y, &ylen, kid, err)) < 0)
        return rc;
    if (xlen != 32 || ylen != 32)
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s: P-256 x and y must be 32 bytes each",
                         kid);
    unsigned char point[65];
    point[0] = 0x04; /* uncompressed */
    memcpy(point + 1, x, 32);
    memcpy(point + 33, y, 32);
    OSSL_PARAM_BLD *bld = OSSL_PARAM_BLD_new();
    EVP_PKEY *pkey = NULL;
    if (bld && OSSL_PARAM_BLD_push_utf8_string(bld, OSSL_PKEY_PARAM_GROUP_NAME, "prime256v1", 0) &&
        OSSL_PARAM_BLD_push_octet_string(bld, OSSL_PKEY_PARAM_PUB_KEY, point, sizeof(point)))
        pkey = pkey_fromdata("EC", bld);
    OSSL_PARAM_BLD_free(bld);
    /* A point off the curve would let an invalid-curve attack recover nothing here (we only
     * verify), but it is still not a key: refuse it. */
    if (pkey != NULL) {
        EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new_from_pkey(NULL, pkey, NULL);
        if (ctx == NULL || EVP_PKEY_public_check(ctx) != 1) {
            EVP_PKEY_free(pkey);
            pkey = NULL;
        }
        EVP_PKEY_CTX_free(ctx);
    }
    if (pkey == NULL) {
        ERR_clear_error();
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s: not a point on P-256", kid);
    }
    *out = pkey;
    return 0;
}

static int jwk_ed25519(json_t *key, const char *kid, EVP_PKEY **out, struct orch_error *err)
{
    _cleanup_free_ unsigned char *x = NULL;
    size_t xlen;
    int rc = jwk_bytes(key, "x", 32, &x, &xlen, kid, err);
    if (rc < 0)
        return rc;
    if (xlen != 32)
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s: Ed25519 x must be 32 bytes", kid);
    EVP_PKEY *pkey = EVP_PKEY_new_raw_public_key_ex(NULL, "ED25519", NULL, x, xlen);
    if (pkey == NULL) {
        ERR_clear_error();
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s: OpenSSL refused the Ed25519 key", kid);
    }
    *out = pkey;
    return 0;
}

static const char *jstr(json_t *obj, const char *name)
{
    return json_string_value(json_object_get(obj, name)); /* NULL when absent or not a string */
}

/* Which algorithm a JWK is for: 0 when the key is not one we verify with (skipped). */
static enum jwt_alg jwk_alg(json_t *key)
{
    const char *kty = jstr(key, "kty");
    const char *crv = jstr(key, "crv");
    const char *alg = jstr(key, "alg");
    const char *use = jstr(key, "use");
    if (kty == NULL || (use != NULL && strcmp(use, "sig") != 0))
        return 0;
    if (strcmp(kty, "RSA") == 0 && (alg == NULL || strcmp(alg, "RS256") == 0))
        return JWT_ALG_RS256;
    if (strcmp(kty, "EC") == 0 && crv != NULL && strcmp(crv, "P-256") == 0 &&
        (alg == NULL || strcmp(alg, "ES256") == 0))
        return JWT_ALG_ES256;
    if (strcmp(kty, "OKP") == 0 && crv != NULL && strcmp(crv, "Ed25519") == 0 &&
        (alg == NULL || strcmp(alg, "EdDSA") == 0 || strcmp(alg, "Ed25519") == 0))
        return JWT_ALG_EDDSA;
    return 0;
}

void jwks_free(struct jwks *keys)
{
    if (keys == NULL)
        return;
    for (size_t i = 0; i < keys->n; i++)
        EVP_PKEY_free(keys->keys[i].pkey);
    free(keys->keys);
    free(keys);
}

size_t jwks_count(const struct jwks *keys)
{
    return keys ? keys->n : 0;
}

int jwks_parse(const char *json, size_t len, struct jwks **out, struct orch_error *err)
{
    if (len > JWKS_MAX_BYTES)
        return orch_fail(err, ORCH_E_INVALID, 0, "JWKS larger than %d bytes", JWKS_MAX_BYTES);
    json_error_t jerr;
    json_t *doc = json_loadb(json, len, JSON_REJECT_DUPLICATES, &jerr);
    if (doc == NULL)
        return orch_fail(err, ORCH_E_INVALID, 0, "JWKS is not JSON: line %d: %s", jerr.line,
                         jerr.text);
    json_t *arr = json_object_get(doc, "keys");
    if (!json_is_array(arr)) {
        json_decref(doc);
        return orch_fail(err, ORCH_E_INVALID, 0, "JWKS has no \"keys\" array");
    }
    if (json_array_size(arr) > JWKS_MAX_KEYS) {
        json_decref(doc);
        return orch_fail(err, ORCH_E_INVALID, 0, "JWKS has more than %d keys", JWKS_MAX_KEYS);
    }
    struct jwks *ks = orch_xcalloc(1, sizeof(*ks));
    ks->keys = orch_xcalloc(json_array_size(arr) + 1, sizeof(*ks->keys));
    int rc = 0;
    size_t i;
    json_t *key;
    json_array_foreach(arr, i, key)
    {
        if (!json_is_object(key)) {
            rc = orch_fail(err, ORCH_E_INVALID, 0, "JWKS key %zu is not an object", i);
            break;
        }
        enum jwt_alg alg = jwk_alg(key);
        json_t *kidv = json_object_get(key, "kid");
        if (alg == 0 || !json_is_string(kidv))
            continue; /* not a signing key of a kind we verify with, or not selectable */
        const char *kid = json_string_value(kidv);
        if (!kid_ok(kid, json_string_length(kidv))) {
            rc = orch_fail(err, ORCH_E_INVALID, 0,
                           "JWKS key %zu: kid must be 1-127 printable ASCII characters", i);
            break;
        }
        for (size_t j = 0; j < ks->n; j++)
            if (strcmp(ks->keys[j].kid, kid) == 0)
                rc = orch_fail(err, ORCH_E_INVALID, 0, "JWKS: kid %s appears twice", kid);
        if (rc < 0)
            break;
        EVP_PKEY *pkey = NULL;
        if (alg == JWT_ALG_RS256)
            rc = jwk_rsa(key, kid, &pkey, err);
        else if (alg == JWT_ALG_ES256)
            rc = jwk_ec(key, kid, &pkey, err);
        else
            rc = jwk_ed25519(key, kid, &pkey, err);
        if (rc < 0)
            break;
        struct jwk *k = &ks->keys[ks->n++];
        snprintf(k->kid, sizeof(k->kid), "%s", kid);
        k->alg = alg;
        k->pkey = pkey;
    }
    json_decref(doc);
    if (rc == 0 && ks->n == 0)
        rc = orch_fail(err, ORCH_E_INVALID, 0,
                       "JWKS has no usable RSA, P-256 or Ed25519 signing key");
    if (rc < 0) {
        jwks_free(ks);
        return rc;
    }
    *out = ks;
    return 0;
}

int jwks_load_file(const char *path, struct jwks **out, struct orch_error *err)
{
    _cleanup_fclose_ FILE *f = fopen(path, "rb");
    if (f == NULL)
        return orch_fail(err, ORCH_E_IO, errno, "open %s", path);
    _cleanup_free_ char *buf = orch_xmalloc(JWKS_MAX_BYTES + 1);
    size_t n = fread(buf, 1, JWKS_MAX_BYTES + 1, f);
    if (ferror(f))
        return orch_fail(err, ORCH_E_IO, errno, "read %s", path);
    if (n > JWKS_MAX_BYTES)
        return orch_fail(err, ORCH_E_INVALID, 0, "%s: larger than %d bytes", path, JWKS_MAX_BYTES);
    if (jwks_parse(buf, n, out, err) < 0)
        return orch_wrap(err, "%s", path);
    return 0;
}

/* ---- tokens ---- */

void jwt_free(struct jwt *t)
{
    if (t == NULL)
        return;
    json_decref(t->claims);
    free(t->signed_part);
    free(t->sig);
    memset(t, 0, sizeof(*t));
}

/* Decodes one segment into a JSON object (new), refusing duplicate keys. */
static json_t *segment_object(const char *s, size_t len, size_t cap)
{
    _cleanup_free_ unsigned char *buf = orch_xmalloc(cap);
    long n = jwt_b64url_decode(s, len, buf, cap);
    if (n <= 0)
        return NULL;
    json_t *obj = json_loadb((const char *)buf, (size_t)n, JSON_REJECT_DUPLICATES, NULL);
    if (obj != NULL && !json_is_object(obj)) {
        json_decref(obj);
        return NULL;
    }
    return obj;
}

int jwt_parse(const char *token, size_t len, struct jwt *out, struct orch_error *err)
{
    memset(out, 0, sizeof(*out));
    if (len == 0)
        return orch_fail(err, ORCH_E_INVALID, 0, "empty token");
    if (len > JWT_MAX_TOKEN)
        return orch_fail(err, ORCH_E_INVALID, 0, "token longer than %d bytes", JWT_MAX_TOKEN);
    const char *d1 = memchr(token, '.', len);
    const char *d2 = d1 ? memchr(d1 + 1, '.', len - (size_t)(d1 + 1 - token)) : NULL;
    if (d1 == NULL || d2 == NULL || memchr(d2 + 1, '.', len - (size_t)(d2 + 1 - token)) != NULL)
        return orch_fail(err, ORCH_E_INVALID, 0, "not a compact JWS (three dot-separated parts)");
    size_t hlen = (size_t)(d1 - token), plen = (size_t)(d2 - d1 - 1);
    size_t slen = len - (size_t)(d2 + 1 - token);
    if (hlen == 0 || plen == 0 || slen == 0)
        return orch_fail(err, ORCH_E_INVALID, 0,
                         "a JWS part is empty (unsigned tokens are refused)");

    json_t *hdr = segment_object(token, hlen, 1024);
    if (hdr == NULL)
        return orch_fail(err, ORCH_E_INVALID, 0, "JWS header is not base64url of a JSON object");
    int rc = 0;
    const char *alg = jstr(hdr, "alg");
    json_t *kid = json_object_get(hdr, "kid");
    if (alg == NULL)
        rc = orch_fail(err, ORCH_E_INVALID, 0, "JWS header has no alg");
    else if (strcmp(alg, "RS256") == 0)
        out->alg = JWT_ALG_RS256;
    else if (strcmp(alg, "ES256") == 0)
        out->alg = JWT_ALG_ES256;
    else if (strcmp(alg, "EdDSA") == 0)
        out->alg = JWT_ALG_EDDSA;
    else if (strcasecmp(alg, "none") == 0)
        rc = orch_fail(err, ORCH_E_INVALID, 0, "alg none is refused");
    else if (alg[0] == 'H' && alg[1] == 'S')
        rc = orch_fail(err, ORCH_E_INVALID, 0, "HMAC algorithms (%.8s) are refused", alg);
    else
        rc = orch_fail(err, ORCH_E_INVALID, 0, "unsupported alg (RS256, ES256 and EdDSA are)");
    if (rc == 0 && !json_is_string(kid))
        rc = orch_fail(err, ORCH_E_INVALID, 0, "JWS header has no kid");
    else if (rc == 0 && !kid_ok(json_string_value(kid), json_string_length(kid)))
        rc = orch_fail(err, ORCH_E_INVALID, 0, "kid must be 1-127 printable ASCII characters");
    else if (rc == 0 && json_object_get(hdr, "crit") != NULL)
        rc = orch_fail(err, ORCH_E_INVALID, 0, "JWS header has crit extensions");
    if (rc == 0)
        snprintf(out->kid, sizeof(out->kid), "%s", json_string_value(kid));
    json_decref(hdr);
    if (rc < 0)
        return rc;

    out->claims = segment_object(d1 + 1, plen, JWT_MAX_TOKEN);
    if (out->claims == NULL) {
        jwt_free(out);
        return orch_fail(err, ORCH_E_INVALID, 0, "JWT claims are not base64url of a JSON object");
    }
    out->sig = orch_xmalloc(1024);
    long n = jwt_b64url_decode(d2 + 1, slen, out->sig, 1024);
    if (n <= 0) {
        jwt_free(out);
        return orch_fail(err, ORCH_E_INVALID, 0, "JWS signature is not base64url");
    }
    out->sig_len = (size_t)n;
    out->signed_part = orch_xstrndup(token, (size_t)(d2 - token));
    out->signed_len = (size_t)(d2 - token);
    return 0;
}

/* ES256 signatures are r||s, 32 bytes each (RFC 7518 3.4); EVP wants DER. */
static unsigned char *es256_der(const unsigned char *sig, int *der_len)
{
    ECDSA_SIG *es = ECDSA_SIG_new();
    BIGNUM *r = BN_bin2bn(sig, 32, NULL);
    BIGNUM *s = BN_bin2bn(sig + 32, 32, NULL);
    unsigned char *der = NULL;
    if (es == NULL || r == NULL || s == NULL || ECDSA_SIG_set0(es, r, s) != 1) {
        BN_free(r);
        BN_free(s);
        ECDSA_SIG_free(es);
        return NULL;
    }
    *der_len = i2d_ECDSA_SIG(es, &der); /* es owns r and s now */
    ECDSA_SIG_free(es);
    return *der_len > 0 ? der : NULL;
}

int jwt_verify_signature(const struct jwt *t, const struct jwks *keys, struct orch_error *err)
{
    const struct jwk *k = NULL;
    for (size_t i = 0; keys != NULL && i < keys->n; i++)
        if (strcmp(keys->keys[i].kid, t->kid) == 0)
            k = &keys->keys[i];
    if (k == NULL)
        return orch_fail(err, ORCH_E_INVALID, 0, "unknown kid %s", t->kid);
    if (k->alg != t->alg)
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s is %s, the token says %s", k->kid,
                         key_kind(k->alg), jwt_alg_name(t->alg));

    const unsigned char *sig = t->sig;
    size_t sig_len = t->sig_len;
    unsigned char *der = NULL;
    if (t->alg == JWT_ALG_RS256 && sig_len != (size_t)EVP_PKEY_get_size(k->pkey))
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s: RS256 signature of the wrong length",
                         k->kid);
    if (t->alg != JWT_ALG_RS256 && sig_len != 64)
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s: %s signature must be 64 bytes", k->kid,
                         jwt_alg_name(t->alg));
    if (t->alg == JWT_ALG_ES256) {
        int der_len = 0;
        der = es256_der(t->sig, &der_len);
        if (der == NULL) {
            ERR_clear_error();
            return orch_fail(err, ORCH_E_INTERNAL, 0, "key %s: cannot encode the signature",
                             k->kid);
        }
        sig = der;
        sig_len = (size_t)der_len;
    }
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    int ok = md != NULL &&
             EVP_DigestVerifyInit_ex(md, NULL, t->alg == JWT_ALG_EDDSA ? NULL : "SHA256", NULL,
                                     NULL, k->pkey, NULL) == 1 &&
             EVP_DigestVerify(md, sig, sig_len, (const unsigned char *)t->signed_part,
                              t->signed_len) == 1;
    EVP_MD_CTX_free(md);
    OPENSSL_free(der);
    ERR_clear_error();
    if (!ok)
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s: bad %s signature", k->kid,
                         jwt_alg_name(t->alg));
    return 0;
}

/* A NumericDate claim: 1 and *v when present and a finite number in range, 0 when absent,
 * -1 when malformed. */
static int claim_time(const json_t *claims, const char *name, double *v)
{
    json_t *j = json_object_get(claims, name);
    if (j == NULL)
        return 0;
    if (!json_is_number(j))
        return -1;
    double d = json_number_value(j);
    if (!isfinite(d) || d < 0 || d > 1e11) /* year 5138: anything later is garbage */
        return -1;
    *v = d;
    return 1;
}

int jwt_check_claims(const struct jwt *t, const struct jwt_expect *want, int64_t now_s,
                     struct orch_error *err)
{
    const char *kid = t->kid;
    int leeway = want->leeway_s;
    if (leeway < 0 || leeway > JWT_MAX_LEEWAY_S)
        leeway = JWT_MAX_LEEWAY_S;
    const char *iss = jstr(t->claims, "iss");
    if (iss == NULL || strcmp(iss, want->iss) != 0)
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s: iss is not %s", kid, want->iss);

    json_t *aud = json_object_get(t->claims, "aud");
    bool aud_ok = false;
    if (json_is_string(aud)) {
        aud_ok = strcmp(json_string_value(aud), want->aud) == 0;
    } else if (json_is_array(aud)) {
        size_t i;
        json_t *a;
        json_array_foreach(aud, i, a)
        {
            if (!json_is_string(a))
                return orch_fail(err, ORCH_E_INVALID, 0, "key %s: aud holds a non-string", kid);
            if (strcmp(json_string_value(a), want->aud) == 0)
                aud_ok = true;
        }
    }
    if (!aud_ok)
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s: aud does not include %s", kid, want->aud);

    double exp = 0, nbf = 0, iat = 0;
    double now = (double)now_s;
    int has_exp = claim_time(t->claims, "exp", &exp);
    int has_nbf = claim_time(t->claims, "nbf", &nbf);
    int has_iat = claim_time(t->claims, "iat", &iat);
    if (has_exp < 0 || has_nbf < 0 || has_iat < 0)
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s: exp, nbf or iat is not a NumericDate",
                         kid);
    if (has_exp == 0)
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s: no exp claim", kid);
    if (!(now < exp + leeway))
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s: token expired at %.0f (now %lld)", kid,
                         exp, (long long)now_s);
    if (has_nbf && nbf > now + leeway)
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s: token not valid before %.0f (now %lld)",
                         kid, nbf, (long long)now_s);
    if (has_iat && iat > now + leeway)
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s: token issued in the future (%.0f)", kid,
                         iat);
    if (has_iat && iat > exp)
        return orch_fail(err, ORCH_E_INVALID, 0, "key %s: token issued after it expires", kid);
    return 0;
}
