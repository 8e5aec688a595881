/* orch tokens: creation (RAND_bytes, the only impure step besides the store), strict parsing,
 * hashing and the constant-time check, and an in-memory store. Messages name the token id,
 * never the token or its secret. */
#include "token.h"

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/rand.h>
#include <string.h>

#include "auth/jwt.h"

void auth_token_record_free(struct auth_token_record *rec)
{
    if (rec == NULL)
        return;
    orch_strv_free(&rec->apps);
    memset(rec, 0, sizeof(*rec));
}

void auth_token_record_copy(struct auth_token_record *dst, const struct auth_token_record *src)
{
    *dst = *src;
    dst->apps = (struct orch_strv){0};
    for (size_t i = 0; i < src->apps.n; i++)
        orch_strv_push(&dst->apps, src->apps.v[i]);
}

static void sha256(const void *data, size_t len, unsigned char *out)
{
    unsigned int n = 0;
    if (EVP_Digest(data, len, out, &n, EVP_sha256(), NULL) != 1 || n != AUTH_TOKEN_HASH_LEN)
        abort(); /* SHA-256 cannot fail short of a broken libcrypto */
}

bool auth_token_hash_equal(const unsigned char *a, const unsigned char *b)
{
    return CRYPTO_memcmp(a, b, AUTH_TOKEN_HASH_LEN) == 0;
}

static bool is_b64url(char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_';
}

int auth_token_parse(const char *token, size_t len, char *id_out, unsigned char *hash_out)
{
    if (len != AUTH_TOKEN_LEN || memcmp(token, AUTH_TOKEN_PREFIX, 5) != 0 ||
        token[5 + AUTH_TOKEN_ID_LEN] != '_')
        return -1;
    const char *id = token + 5;
    for (size_t i = 0; i < AUTH_TOKEN_ID_LEN; i++)
        if (!((id[i] >= '0' && id[i] <= '9') || (id[i] >= 'a' && id[i] <= 'f')))
            return -1;
    const char *secret = id + AUTH_TOKEN_ID_LEN + 1;
    for (size_t i = 0; i < AUTH_TOKEN_SECRET_LEN; i++)
        if (!is_b64url(secret[i]))
            return -1;
    memcpy(id_out, id, AUTH_TOKEN_ID_LEN);
    id_out[AUTH_TOKEN_ID_LEN] = '\0';
    sha256(secret, AUTH_TOKEN_SECRET_LEN, hash_out);
    return 0;
}

static bool name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n > AUTH_TOKEN_NAME_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if (s[i] < 0x20 || s[i] > 0x7e)
            return false;
    return true;
}

int auth_token_create(const struct auth_token_store *store, enum auth_role role,
                      const char *const *apps, size_t n_apps, const char *name, int64_t ttl_ms,
                      int64_t now_ms, char *token_out, struct auth_token_record *rec_out,
                      struct orch_error *err)
{
    if (role == AUTH_ROLE_NONE || role > AUTH_ROLE_ADMIN)
        return orch_fail(err, ORCH_E_INVALID, 0, "a token needs a role: admin, deployer or viewer");
    if (name != NULL && !name_ok(name))
        return orch_fail(err, ORCH_E_INVALID, 0, "token name: at most %d printable characters",
                         AUTH_TOKEN_NAME_MAX);
    if (ttl_ms < 0)
        return orch_fail(err, ORCH_E_INVALID, 0, "token ttl must not be negative");
    for (size_t i = 0; i < n_apps; i++)
        if (!(strcmp(apps[i], "*") == 0 || orch_is_dns_label(apps[i], 40)))
            return orch_fail(err, ORCH_E_INVALID, 0, "token app '%s' is not an app name", apps[i]);

    struct auth_token_record rec = {0};
    rec.role = role;
    for (size_t i = 0; i < n_apps; i++)
        if (!orch_strv_contains(&rec.apps, apps[i]))
            orch_strv_push(&rec.apps, apps[i]);
    if (rec.apps.n == 0)
        orch_strv_push(&rec.apps, "*");
    snprintf(rec.name, sizeof(rec.name), "%s", name ? name : "");
    rec.created_ms = now_ms;
    rec.expires_ms = ttl_ms ? now_ms + ttl_ms : 0;

    int rc = 1;
    for (int attempt = 0; attempt < 4 && rc == 1; attempt++) {
        unsigned char idb[AUTH_TOKEN_ID_LEN / 2], secret[32];
        if (RAND_bytes(idb, sizeof(idb)) != 1 || RAND_bytes(secret, sizeof(secret)) != 1) {
            auth_token_record_free(&rec);
            return orch_fail(err, ORCH_E_INTERNAL, 0, "no random bytes from OpenSSL");
        }
        for (size_t i = 0; i < sizeof(idb); i++)
            snprintf(rec.id + 2 * i, 3, "%02x", idb[i]);
        char enc[AUTH_TOKEN_SECRET_LEN + 2];
        jwt_b64url_encode(secret, sizeof(secret), enc);
        OPENSSL_cleanse(secret, sizeof(secret));
        sha256(enc, AUTH_TOKEN_SECRET_LEN, rec.hash);
        rc = store->put(store->ctx, &rec, err);
        if (rc == 0) {
            char *t = token_out;
            memcpy(t, AUTH_TOKEN_PREFIX, 5);
            memcpy(t + 5, rec.id, AUTH_TOKEN_ID_LEN);
            t[5 + AUTH_TOKEN_ID_LEN] = '_';
            memcpy(t + 6 + AUTH_TOKEN_ID_LEN, enc, AUTH_TOKEN_SECRET_LEN);
            t[AUTH_TOKEN_LEN] = '\0';
        }
        OPENSSL_cleanse(enc, sizeof(enc));
    }
    if (rc == 1)
        rc = orch_fail(err, ORCH_E_INTERNAL, 0, "no free token id after 4 attempts");
    if (rc < 0 || rec_out == NULL)
        auth_token_record_free(&rec);
    else
        *rec_out = rec;
    return rc < 0 ? rc : 0;
}

int auth_token_check(const struct auth_token_record *rec, const unsigned char *hash, int64_t now_ms,
                     struct auth_identity *out, struct orch_error *err)
{
    if (!auth_token_hash_equal(rec->hash, hash))
        return orch_fail(err, ORCH_E_INVALID, 0, "token %s: wrong secret", rec->id);
    if (rec->expires_ms != 0 && now_ms >= rec->expires_ms)
        return orch_fail(err, ORCH_E_INVALID, 0, "token %s: expired", rec->id);
    memset(out, 0, sizeof(*out));
    out->kind = AUTH_KIND_TOKEN;
    snprintf(out->name, sizeof(out->name), "token %s", rec->id);
    out->role = rec->role;
    for (size_t i = 0; i < rec->apps.n; i++)
        orch_strv_push(&out->apps, rec->apps.v[i]);
    out->expires_ms = rec->expires_ms;
    return 0;
}

int auth_token_authenticate(const struct auth_token_store *store, const char *token, size_t len,
                            int64_t now_ms, struct auth_identity *out, struct orch_error *err)
{
    char id[AUTH_TOKEN_ID_LEN + 1];
    unsigned char hash[AUTH_TOKEN_HASH_LEN];
    if (auth_token_parse(token, len, id, hash) < 0)
        return orch_fail(err, ORCH_E_INVALID, 0, "not an orch token (orch_<id>_<secret>)");
    struct auth_token_record rec = {0};
    int rc = store->get(store->ctx, id, &rec, err);
    if (rc == -ORCH_E_NOTFOUND)
        return orch_fail(err, ORCH_E_INVALID, 0, "token %s: unknown or revoked", id);
    if (rc < 0)
        return orch_wrap(err, "token %s", id);
    rc = auth_token_check(&rec, hash, now_ms, out, err);
    auth_token_record_free(&rec);
    return rc;
}

/* ---- the in-memory store ---- */

static struct auth_token_record *mem_find(struct auth_token_memstore *m, const char *id)
{
    for (size_t i = 0; i < m->n; i++)
        if (strcmp(m->recs[i].id, id) == 0)
            return &m->recs[i];
    return NULL;
}

static int mem_get(void *ctx, const char *id, struct auth_token_record *out, struct orch_error *err)
{
    struct auth_token_record *r = mem_find(ctx, id);
    if (r == NULL)
        return orch_fail(err, ORCH_E_NOTFOUND, 0, "token %s not found", id);
    auth_token_record_copy(out, r);
    return 0;
}

static int mem_put(void *ctx, const struct auth_token_record *rec, struct orch_error *err)
{
    struct auth_token_memstore *m = ctx;
    if (mem_find(m, rec->id) != NULL)
        return 1;
    m->recs = orch_xrealloc(m->recs, (m->n + 1) * sizeof(*m->recs));
    auth_token_record_copy(&m->recs[m->n++], rec);
    return 0;
}

static int mem_list(void *ctx, struct auth_token_record **out, size_t *n, struct orch_error *err)
{
    struct auth_token_memstore *m = ctx;
    *out = orch_xcalloc(m->n + 1, sizeof(**out));
    for (size_t i = 0; i < m->n; i++) {
        auth_token_record_copy(&(*out)[i], &m->recs[i]);
        memset((*out)[i].hash, 0, sizeof((*out)[i].hash));
    }
    *n = m->n;
    return 0;
}

static int mem_revoke(void *ctx, const char *id, struct orch_error *err)
{
    struct auth_token_memstore *m = ctx;
    struct auth_token_record *r = mem_find(m, id);
    if (r == NULL)
        return orch_fail(err, ORCH_E_NOTFOUND, 0, "token %s not found", id);
    auth_token_record_free(r);
    size_t i = (size_t)(r - m->recs);
    memmove(r, r + 1, (m->n - i - 1) * sizeof(*r));
    m->n--;
    return 0;
}

struct auth_token_store auth_token_memstore(struct auth_token_memstore *mem)
{
    return (struct auth_token_store){mem, mem_get, mem_put, mem_list, mem_revoke};
}

void auth_token_memstore_free(struct auth_token_memstore *mem)
{
    for (size_t i = 0; i < mem->n; i++)
        auth_token_record_free(&mem->recs[i]);
    free(mem->recs);
    memset(mem, 0, sizeof(*mem));
}
