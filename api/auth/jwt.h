/* JSON Web Tokens as OIDC issuers (GitHub Actions, GitLab CI) sign them: compact JWS parsing,
 * signature verification against a JWKS with OpenSSL's EVP API, and the registered-claim checks.
 * Pure: no clock (now is an argument), no I/O except jwks_load_file. Only RS256, ES256 and EdDSA
 * (Ed25519) exist here; HMAC and "none" are refused by construction, and a key is used only with
 * the one algorithm its type allows. Error messages name the kid, never the token. */
#ifndef ORCH_API_AUTH_JWT_H
#define ORCH_API_AUTH_JWT_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* A compact JWS longer than this is refused before any decoding (GitHub's are ~1.2 KiB). */
#define JWT_MAX_TOKEN 8192
/* The most leeway any issuer may allow on exp, nbf and iat. */
#define JWT_MAX_LEEWAY_S 60
/* A JWKS file larger than this, or with more keys, is refused. */
#define JWKS_MAX_BYTES (256 * 1024)
#define JWKS_MAX_KEYS 64

enum jwt_alg { JWT_ALG_RS256 = 1, JWT_ALG_ES256, JWT_ALG_EDDSA };

/* The public keys of one issuer. */
struct jwks;

/* Parses a JWKS document ({"keys": [...]}) into *out (new). Keys of kind RSA (n, e; at least
 * 2048 bits), EC P-256 (x, y: 32 bytes each, on the curve) and OKP Ed25519 (x) with a kid are
 * kept; a key with another kty/crv, a "use" other than "sig", or no kid is skipped (an issuer
 * may publish encryption keys beside its signing keys). A malformed supported key, a duplicate
 * kid or a document with no usable key is an error. */
int jwks_parse(const char *json, size_t len, struct jwks **out, struct orch_error *err);
/* jwks_parse of a file (at most JWKS_MAX_BYTES). */
int jwks_load_file(const char *path, struct jwks **out, struct orch_error *err);
void jwks_free(struct jwks *keys);
/* Number of usable keys. */
size_t jwks_count(const struct jwks *keys);

/* A parsed, not yet verified, compact JWS. */
struct jwt {
    enum jwt_alg alg;
    char kid[128];
    json_t *claims;    /* owned: the payload object */
    char *signed_part; /* owned copy of "header.payload", the bytes that were signed */
    size_t signed_len;
    unsigned char *sig; /* owned */
    size_t sig_len;
};

/* Strict parse of a compact JWS: exactly three base64url segments (no padding, no whitespace,
 * canonical trailing bits), at most JWT_MAX_TOKEN bytes, a header object with a supported alg
 * and a kid, no "crit", a claims object; duplicate JSON keys are refused. Fills *out (free with
 * jwt_free) or leaves it empty on failure. */
int jwt_parse(const char *token, size_t len, struct jwt *out, struct orch_error *err);
void jwt_free(struct jwt *t);

/* Checks the signature with the key named by the token's kid. An unknown kid, a key whose
 * kty/crv/alg does not fit the token's alg, or a bad signature is an error. */
int jwt_verify_signature(const struct jwt *t, const struct jwks *keys, struct orch_error *err);

/* The registered claims a verified token must satisfy. */
struct jwt_expect {
    const char *iss; /* must equal the iss claim */
    const char *aud; /* must equal aud, or be one of the strings of an aud array */
    int leeway_s;    /* 0..JWT_MAX_LEEWAY_S, applied to exp, nbf and iat */
};

/* iss and aud as expected; exp present with now < exp + leeway; nbf (if present) <= now + leeway;
 * iat (if present) <= now + leeway and <= exp. Times are NumericDate seconds. */
int jwt_check_claims(const struct jwt *t, const struct jwt_expect *want, int64_t now_s,
                     struct orch_error *err);

/* Name of an algorithm as JWS writes it ("RS256", ...). */
const char *jwt_alg_name(enum jwt_alg alg);

/* base64url without padding (RFC 7515 section 2), strict: only [A-Za-z0-9_-], a length that is
 * not 1 mod 4, zero trailing bits. Writes at most out_cap bytes; returns the decoded length or -1.
 */
long jwt_b64url_decode(const char *in, size_t len, unsigned char *out, size_t out_cap);
/* Encodes into out (>= 4 * ceil(len / 3) + 1 bytes), NUL-terminated; returns the length. */
size_t jwt_b64url_encode(const unsigned char *in, size_t len, char *out);

#endif
