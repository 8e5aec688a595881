/* orch's own bearer tokens: `orch_<id>_<secret>`, id 12 lowercase hex digits (public: listed,
 * named in logs and in `orch token revoke ID`), secret 32 random bytes (RAND_bytes) as 43
 * base64url characters. Only SHA-256 of the secret is stored. A slow password hash (bcrypt,
 * argon2) protects low-entropy secrets from guessing; a 256-bit random secret cannot be guessed
 * or inverted from its SHA-256, so a fast hash loses nothing and keeps each request's check at
 * a microsecond. Hashes are compared with CRYPTO_memcmp (constant time).
 * Storage is an interface (struct auth_token_store) the state store implements; an in-memory
 * one is here for tests. */
#ifndef ORCH_API_AUTH_TOKEN_H
#define ORCH_API_AUTH_TOKEN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "base/error.h"
#include "base/util.h"

#define AUTH_TOKEN_PREFIX "orch_"
#define AUTH_TOKEN_ID_LEN 12
#define AUTH_TOKEN_SECRET_LEN 43 /* base64url of 32 bytes */
#define AUTH_TOKEN_LEN (5 + AUTH_TOKEN_ID_LEN + 1 + AUTH_TOKEN_SECRET_LEN)
#define AUTH_TOKEN_HASH_LEN 32
#define AUTH_TOKEN_NAME_MAX 63

/* What the store keeps of a token: never the token itself. */
struct auth_token_record {
    char id[AUTH_TOKEN_ID_LEN + 1];
    unsigned char hash[AUTH_TOKEN_HASH_LEN]; /* SHA-256 of the secret's 43 characters */
    enum auth_role role;
    struct orch_strv apps; /* app patterns; {"*"}: every app */
    char name[AUTH_TOKEN_NAME_MAX + 1];
    int64_t created_ms;
    int64_t expires_ms; /* 0: never */
};

void auth_token_record_free(struct auth_token_record *rec);
/* A deep copy of src into *dst. */
void auth_token_record_copy(struct auth_token_record *dst, const struct auth_token_record *src);

/* Token storage, implemented by the state store. Each function returns 0 or a negative
 * orch_errc with err filled. */
struct auth_token_store {
    void *ctx;
    /* Fills *out (new) with the record of id; -ORCH_E_NOTFOUND when there is none. */
    int (*get)(void *ctx, const char *id, struct auth_token_record *out, struct orch_error *err);
    /* Stores a new record; returns 1 and stores nothing when the id is taken. */
    int (*put)(void *ctx, const struct auth_token_record *rec, struct orch_error *err);
    /* Every record (new array of new records; the hashes may be left zero), oldest first. */
    int (*list)(void *ctx, struct auth_token_record **out, size_t *n, struct orch_error *err);
    /* Deletes the record of id; -ORCH_E_NOTFOUND when there is none. */
    int (*revoke)(void *ctx, const char *id, struct orch_error *err);
};

/* Creates a token: a fresh id and secret, the record put in store (a new id on the rare
 * collision). token_out (AUTH_TOKEN_LEN + 1 bytes) receives the token, to be shown once; rec_out
 * (may be NULL) the stored record. apps: n_apps patterns, none meaning every app. ttl_ms 0:
 * never expires. name: printable, at most AUTH_TOKEN_NAME_MAX bytes (may be NULL). */
int auth_token_create(const struct auth_token_store *store, enum auth_role role,
                      const char *const *apps, size_t n_apps, const char *name, int64_t ttl_ms,
                      int64_t now_ms, char *token_out, struct auth_token_record *rec_out,
                      struct orch_error *err);

/* Pure. Splits a token of the exact format into its id (id_out: AUTH_TOKEN_ID_LEN + 1 bytes)
 * and the SHA-256 of its secret; -1 when it is not an orch token. */
int auth_token_parse(const char *token, size_t len, char *id_out, unsigned char *hash_out);

/* Constant-time equality of two hashes (CRYPTO_memcmp). */
bool auth_token_hash_equal(const unsigned char *a, const unsigned char *b);

/* Pure: the identity of a token whose parsed hash is `hash`, checked against its record.
 * A hash mismatch or an expired record is an error naming only the id. */
int auth_token_check(const struct auth_token_record *rec, const unsigned char *hash, int64_t now_ms,
                     struct auth_identity *out, struct orch_error *err);

/* auth_token_parse, store->get, auth_token_check. */
int auth_token_authenticate(const struct auth_token_store *store, const char *token, size_t len,
                            int64_t now_ms, struct auth_identity *out, struct orch_error *err);

/* An in-memory token store for tests and tools (not thread-safe). */
struct auth_token_memstore {
    struct auth_token_record *recs;
    size_t n;
};
/* The store interface over mem (borrowed; mem starts zeroed). */
struct auth_token_store auth_token_memstore(struct auth_token_memstore *mem);
void auth_token_memstore_free(struct auth_token_memstore *mem);

#endif
