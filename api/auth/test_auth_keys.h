/* Test helpers shared by the auth tests and the fuzz target: keys generated with OpenSSL at run
 * time, their JWKS, and a small JWS signer (the code under test only verifies). */
#ifndef ORCH_API_AUTH_TEST_KEYS_H
#define ORCH_API_AUTH_TEST_KEYS_H

#include <openssl/evp.h>

/* An RSA 2048, an EC P-256 and an Ed25519 key pair, kids "rsa1", "ec1", "ed1". */
struct tkeys {
    EVP_PKEY *rsa;
    EVP_PKEY *ec;
    EVP_PKEY *ed;
    char *jwks; /* new: {"keys": [...]} with the three public keys and an "oct" key (skipped) */
};

void tkeys_init(struct tkeys *k);
void tkeys_free(struct tkeys *k);

/* The public JWK object of key (new JSON text), with kid; alg omitted when NULL. */
char *tkeys_jwk(EVP_PKEY *key, const char *kid, const char *alg);

/* A compact JWS over header_json and claims_json signed with key by alg ("RS256", "ES256",
 * "EdDSA"; "HS256" uses hmac_secret; "none" gives an empty signature). New string. */
char *tsign_raw(const char *alg, EVP_PKEY *key, const unsigned char *hmac_secret, size_t hmac_len,
                const char *header_json, const char *claims_json);
/* tsign_raw with the header {"alg": alg, "kid": kid, "typ": "JWT"}. */
char *tsign(const char *alg, const char *kid, EVP_PKEY *key, const char *claims_json);

/* The PEM (SubjectPublicKeyInfo) of key's public half (new). */
char *tkeys_public_pem(EVP_PKEY *key);

#endif
