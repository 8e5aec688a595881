/* orch tokens: format, storage of the hash only, authentication through the store interface
 * (the in-memory store), expiry, revocation, strict parsing, messages that name the id and never
 * the secret, and the constant-time comparison (CRYPTO_memcmp is wrapped at link time and
 * counted). */
#define _GNU_SOURCE /* memmem */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <string.h>

#include "auth/token.h"

#define NOW 1700000000000LL

int __wrap_CRYPTO_memcmp(const void *a, const void *b, size_t len);
int __real_CRYPTO_memcmp(const void *a, const void *b, size_t len);
static int memcmp_calls;
static size_t memcmp_last_len;

int __wrap_CRYPTO_memcmp(const void *a, const void *b, size_t len)
{
    memcmp_calls++;
    memcmp_last_len = len;
    return __real_CRYPTO_memcmp(a, b, len);
}

struct fixture {
    struct auth_token_memstore mem;
    struct auth_token_store store;
};

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof(*f));
    f->store = auth_token_memstore(&f->mem);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    auth_token_memstore_free(&f->mem);
    free(f);
    return 0;
}

static void create(struct fixture *f, enum auth_role role, const char *app, int64_t ttl_ms,
                   char *tok, struct auth_token_record *rec)
{
    struct orch_error err = {0};
    const char *apps[] = {app};
    int rc =
        auth_token_create(&f->store, role, apps, app ? 1 : 0, "ci", ttl_ms, NOW, tok, rec, &err);
    if (rc != 0)
        fail_msg("create: %s", err.msg);
}

static void test_format_and_hash(void **state)
{
    struct fixture *f = *state;
    char tok[AUTH_TOKEN_LEN + 1];
    struct auth_token_record rec;
    create(f, AUTH_ROLE_DEPLOYER, "shop", 0, tok, &rec);
    assert_int_equal(strlen(tok), AUTH_TOKEN_LEN);
    assert_memory_equal(tok, "orch_", 5);
    assert_memory_equal(tok + 5, rec.id, AUTH_TOKEN_ID_LEN);
    assert_int_equal(tok[17], '_');
    /* stored: SHA-256 of the secret's characters, nothing else of it */
    unsigned char h[32];
    unsigned int n = 0;
    assert_int_equal(EVP_Digest(tok + 18, AUTH_TOKEN_SECRET_LEN, h, &n, EVP_sha256(), NULL), 1);
    assert_memory_equal(h, rec.hash, 32);
    assert_int_equal(f->mem.n, 1);
    assert_memory_equal(f->mem.recs[0].hash, h, 32);
    assert_null(memmem(&f->mem.recs[0], sizeof(f->mem.recs[0]), tok + 18, 16));
    assert_string_equal(rec.apps.v[0], "shop");
    assert_int_equal(rec.expires_ms, 0);
    assert_int_equal(rec.created_ms, NOW);

    char id[AUTH_TOKEN_ID_LEN + 1];
    unsigned char h2[32];
    assert_int_equal(auth_token_parse(tok, strlen(tok), id, h2), 0);
    assert_string_equal(id, rec.id);
    assert_memory_equal(h2, h, 32);

    /* two tokens never share id or secret */
    char tok2[AUTH_TOKEN_LEN + 1];
    struct auth_token_record rec2;
    create(f, AUTH_ROLE_VIEWER, NULL, 0, tok2, &rec2);
    assert_string_not_equal(rec.id, rec2.id);
    assert_memory_not_equal(tok + 18, tok2 + 18, AUTH_TOKEN_SECRET_LEN);
    assert_string_equal(rec2.apps.v[0], "*"); /* no --app: every app */
    auth_token_record_free(&rec);
    auth_token_record_free(&rec2);

    /* list hides the hashes */
    struct auth_token_record *all = NULL;
    size_t count = 0;
    struct orch_error err = {0};
    assert_int_equal(f->store.list(f->store.ctx, &all, &count, &err), 0);
    assert_int_equal(count, 2);
    static const unsigned char zero[32];
    for (size_t i = 0; i < count; i++) {
        assert_memory_equal(all[i].hash, zero, 32);
        auth_token_record_free(&all[i]);
    }
    free(all);
}

static void test_authenticate(void **state)
{
    struct fixture *f = *state;
    char tok[AUTH_TOKEN_LEN + 1];
    struct auth_token_record rec;
    create(f, AUTH_ROLE_DEPLOYER, "shop", 3600 * 1000, tok, &rec);

    struct auth_identity id;
    struct orch_error err = {0};
    int before = memcmp_calls;
    assert_int_equal(auth_bearer_authenticate(NULL, &f->store, tok, strlen(tok), NOW, &id, &err),
                     0);
    /* the hash comparison went through CRYPTO_memcmp over the whole hash */
    assert_int_equal(memcmp_calls, before + 1);
    assert_int_equal(memcmp_last_len, AUTH_TOKEN_HASH_LEN);
    assert_int_equal(id.kind, AUTH_KIND_TOKEN);
    assert_int_equal(id.role, AUTH_ROLE_DEPLOYER);
    assert_int_equal(id.expires_ms, NOW + 3600 * 1000);
    char want[64];
    snprintf(want, sizeof(want), "token %s", rec.id);
    assert_string_equal(id.name, want);
    assert_int_equal(auth_allows(&id, AUTH_ROLE_DEPLOYER, "shop", NOW), AUTH_ALLOW);
    assert_int_equal(auth_allows(&id, AUTH_ROLE_DEPLOYER, "blog", NOW), AUTH_FORBIDDEN);
    assert_int_equal(auth_allows(&id, AUTH_ROLE_ADMIN, NULL, NOW), AUTH_FORBIDDEN);
    assert_int_equal(auth_allows(&id, AUTH_ROLE_VIEWER, "shop", NOW + 3600 * 1000),
                     AUTH_UNAUTHENTICATED);
    auth_identity_free(&id);

    /* expired: refused at authentication, and the message names the id only */
    before = memcmp_calls;
    assert_int_not_equal(
        auth_token_authenticate(&f->store, tok, strlen(tok), NOW + 3600 * 1000, &id, &err), 0);
    assert_non_null(strstr(err.msg, "expired"));
    assert_non_null(strstr(err.msg, rec.id));
    assert_null(strstr(err.msg, tok + 18));
    assert_int_equal(memcmp_calls, before + 1);

    /* a wrong secret under a real id: every position of the secret matters */
    for (size_t pos = 18; pos < AUTH_TOKEN_LEN; pos += 7) {
        char bad[AUTH_TOKEN_LEN + 1];
        memcpy(bad, tok, sizeof(bad));
        bad[pos] = bad[pos] == 'A' ? 'B' : 'A';
        before = memcmp_calls;
        assert_int_not_equal(auth_token_authenticate(&f->store, bad, strlen(bad), NOW, &id, &err),
                             0);
        assert_int_equal(memcmp_calls, before + 1);
        assert_non_null(strstr(err.msg, "wrong secret"));
        assert_non_null(strstr(err.msg, rec.id));
        assert_null(strstr(err.msg, bad + 18));
        assert_null(strstr(err.msg, tok + 18));
    }

    /* revoked */
    assert_int_equal(f->store.revoke(f->store.ctx, rec.id, &err), 0);
    assert_int_not_equal(auth_token_authenticate(&f->store, tok, strlen(tok), NOW, &id, &err), 0);
    assert_non_null(strstr(err.msg, "unknown or revoked"));
    assert_int_equal(f->store.revoke(f->store.ctx, rec.id, &err), -ORCH_E_NOTFOUND);
    auth_token_record_free(&rec);

    /* no store: orch tokens are refused */
    assert_int_not_equal(auth_bearer_authenticate(NULL, NULL, tok, strlen(tok), NOW, &id, &err), 0);
}

static void test_parse_strict(void **state)
{
    static const char good[] = "orch_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    char id[AUTH_TOKEN_ID_LEN + 1];
    unsigned char h[32];
    assert_int_equal(strlen(good), AUTH_TOKEN_LEN);
    assert_int_equal(auth_token_parse(good, strlen(good), id, h), 0);
    static const char *const bad[] = {
        "",
        "orch_",
        "orch_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",   /* short */
        "orch_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA", /* long */
        "orch_0123456789AB_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  /* upper-case id */
        "orch_0123456789ag_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  /* not hex */
        "orch-0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  /* prefix */
        "orch_0123456789ab-AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",  /* separator */
        "orch_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=",  /* padding */
        "orch_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA+A",  /* base64, not url */
        "orch_0123456789ab_AAAAAAAAAAAAAAAAAAAAA AAAAAAAAAAAAAAAAAAAAA",  /* space */
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(bad); i++)
        if (auth_token_parse(bad[i], strlen(bad[i]), id, h) == 0)
            fail_msg("accepted: '%s'", bad[i]);
    /* an embedded NUL within the length */
    char nul[AUTH_TOKEN_LEN + 1];
    memcpy(nul, good, sizeof(nul));
    nul[30] = '\0';
    assert_int_equal(auth_token_parse(nul, AUTH_TOKEN_LEN, id, h), -1);

    struct fixture *f = *state;
    struct auth_identity ident;
    struct orch_error err = {0};
    /* well-formed but unknown */
    assert_int_not_equal(auth_token_authenticate(&f->store, good, strlen(good), NOW, &ident, &err),
                         0);
    assert_non_null(strstr(err.msg, "0123456789ab"));
    assert_null(strstr(err.msg, "AAAAAAAAAA"));
}

static void test_create_refusals(void **state)
{
    struct fixture *f = *state;
    char tok[AUTH_TOKEN_LEN + 1];
    struct orch_error err = {0};
    const char *bad_app[] = {"Shop"};
    const char *ok_app[] = {"shop"};
    assert_int_not_equal(
        auth_token_create(&f->store, AUTH_ROLE_NONE, NULL, 0, NULL, 0, NOW, tok, NULL, &err), 0);
    assert_int_not_equal(
        auth_token_create(&f->store, AUTH_ROLE_ADMIN, bad_app, 1, NULL, 0, NOW, tok, NULL, &err),
        0);
    assert_int_not_equal(
        auth_token_create(&f->store, AUTH_ROLE_ADMIN, ok_app, 1, "a\nb", 0, NOW, tok, NULL, &err),
        0);
    assert_int_not_equal(
        auth_token_create(&f->store, AUTH_ROLE_ADMIN, ok_app, 1, NULL, -1, NOW, tok, NULL, &err),
        0);
    assert_int_equal(f->mem.n, 0);
}

/* A store whose first put finds the id taken: create must retry with a new id. */
static int put_calls;
static int busy_put(void *ctx, const struct auth_token_record *rec, struct orch_error *err)
{
    if (put_calls++ == 0)
        return 1;
    struct auth_token_store inner = auth_token_memstore(ctx);
    return inner.put(ctx, rec, err);
}

static void test_id_collision_retried(void **state)
{
    struct fixture *f = *state;
    struct auth_token_store st = f->store;
    st.put = busy_put;
    char tok[AUTH_TOKEN_LEN + 1];
    struct orch_error err = {0};
    put_calls = 0;
    assert_int_equal(
        auth_token_create(&st, AUTH_ROLE_VIEWER, NULL, 0, NULL, 0, NOW, tok, NULL, &err), 0);
    assert_int_equal(put_calls, 2);
    struct auth_identity id;
    assert_int_equal(auth_token_authenticate(&st, tok, strlen(tok), NOW, &id, &err), 0);
    auth_identity_free(&id);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_format_and_hash, setup, teardown),
        cmocka_unit_test_setup_teardown(test_authenticate, setup, teardown),
        cmocka_unit_test_setup_teardown(test_parse_strict, setup, teardown),
        cmocka_unit_test_setup_teardown(test_create_refusals, setup, teardown),
        cmocka_unit_test_setup_teardown(test_id_collision_retried, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
