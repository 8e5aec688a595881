/* Client-certificate identities: certificates built and signed here with OpenSSL (an EC key),
 * then named by auth_x509_identity: SAN precedence (URI, DNS, email, then CN), CN in another
 * string type, and the names that must be refused (NUL bytes, control characters, too long,
 * several CNs, none at all). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <openssl/evp.h>
#include <openssl/x509v3.h>
#include <string.h>

#include "auth/auth.h"

static EVP_PKEY *KEY;

static int setup(void **state)
{
    KEY = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
    return KEY ? 0 : -1;
}

static int teardown(void **state)
{
    EVP_PKEY_free(KEY);
    return 0;
}

struct san {
    int type; /* GEN_DNS, GEN_URI, GEN_EMAIL */
    const char *value;
    size_t len; /* 0: strlen(value) */
};

/* A self-signed certificate with these CNs (each may hold NUL bytes: cn_lens) and SANs. */
static X509 *make_cert(const char *const *cns, const size_t *cn_lens, size_t n_cn,
                       const struct san *sans, size_t n_san, int cn_type)
{
    X509 *x = X509_new();
    assert_non_null(x);
    assert_int_equal(X509_set_version(x, X509_VERSION_3), 1);
    ASN1_INTEGER_set(X509_get_serialNumber(x), 7);
    X509_gmtime_adj(X509_getm_notBefore(x), 0);
    X509_gmtime_adj(X509_getm_notAfter(x), 3600);
    X509_NAME *name = X509_get_subject_name(x);
    X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC, (const unsigned char *)"acme", -1, -1, 0);
    for (size_t i = 0; i < n_cn; i++)
        assert_int_equal(X509_NAME_add_entry_by_NID(name, NID_commonName, cn_type,
                                                    (const unsigned char *)cns[i],
                                                    cn_lens ? (int)cn_lens[i] : -1, -1, 0),
                         1);
    X509_set_issuer_name(x, name);
    if (n_san > 0) {
        GENERAL_NAMES *gens = sk_GENERAL_NAME_new_null();
        for (size_t i = 0; i < n_san; i++) {
            GENERAL_NAME *gn = GENERAL_NAME_new();
            ASN1_IA5STRING *s = ASN1_IA5STRING_new();
            size_t len = sans[i].len ? sans[i].len : strlen(sans[i].value);
            assert_int_equal(ASN1_STRING_set(s, sans[i].value, (int)len), 1);
            GENERAL_NAME_set0_value(gn, sans[i].type, s);
            sk_GENERAL_NAME_push(gens, gn);
        }
        assert_int_equal(X509_add1_ext_i2d(x, NID_subject_alt_name, gens, 0, 0), 1);
        GENERAL_NAMES_free(gens);
    }
    assert_int_equal(X509_set_pubkey(x, KEY), 1);
    assert_true(X509_sign(x, KEY, EVP_sha256()) > 0);
    return x;
}

static void expect_name(X509 *x, const char *want)
{
    char out[300];
    struct orch_error err = {0};
    int rc = auth_x509_identity(x, out, sizeof(out), &err);
    if (want == NULL) {
        assert_int_not_equal(rc, 0);
    } else {
        if (rc != 0)
            fail_msg("refused: %s", err.msg);
        assert_string_equal(out, want);
    }
    X509_free(x);
}

static void test_precedence(void **state)
{
    const char *cn[] = {"deploy-bot"};
    expect_name(make_cert(cn, NULL, 1, NULL, 0, MBSTRING_ASC), "deploy-bot");

    struct san dns[] = {{GEN_DNS, "runner-7.ci.acme.internal", 0},
                        {GEN_DNS, "second.acme.internal", 0}};
    expect_name(make_cert(cn, NULL, 1, dns, 2, MBSTRING_ASC), "runner-7.ci.acme.internal");

    struct san mixed[] = {{GEN_EMAIL, "ci@acme.example", 0},
                          {GEN_DNS, "runner-7.ci.acme.internal", 0},
                          {GEN_URI, "spiffe://acme.internal/ci/runner", 0}};
    expect_name(make_cert(cn, NULL, 1, mixed, 3, MBSTRING_ASC), "spiffe://acme.internal/ci/runner");
    expect_name(make_cert(cn, NULL, 1, mixed, 2, MBSTRING_ASC), "runner-7.ci.acme.internal");
    expect_name(make_cert(NULL, NULL, 0, mixed, 1, MBSTRING_ASC), "ci@acme.example");

    /* a CN written as a BMPString comes out as UTF-8 */
    static const char bmp[] = "\0d\0e\0p\0l\0o\0y\0-\0b\0o\0t"; /* UTF-16BE */
    const char *bmp_cn[] = {bmp};
    size_t bmp_len[] = {sizeof(bmp) - 1};
    expect_name(make_cert(bmp_cn, bmp_len, 1, NULL, 0, V_ASN1_BMPSTRING), "deploy-bot");
}

static void test_refused(void **state)
{
    /* NUL inside the CN: "admin\0.evil" must not become "admin" */
    const char *nul_cn[] = {"admin\0.evil"};
    size_t nul_len[] = {11};
    expect_name(make_cert(nul_cn, nul_len, 1, NULL, 0, MBSTRING_ASC), NULL);

    struct san nul_dns[] = {{GEN_DNS, "runner.ci\0.evil.example", 23}};
    const char *cn[] = {"deploy-bot"};
    expect_name(make_cert(cn, NULL, 1, nul_dns, 1, MBSTRING_ASC), NULL);

    struct san ctl[] = {{GEN_URI, "spiffe://a/b\nINFO forged log line", 0}};
    expect_name(make_cert(cn, NULL, 1, ctl, 1, MBSTRING_ASC), NULL);

    char longname[300];
    memset(longname, 'a', sizeof(longname) - 1);
    longname[sizeof(longname) - 1] = '\0';
    struct san big[] = {{GEN_DNS, longname, 0}};
    expect_name(make_cert(cn, NULL, 1, big, 1, MBSTRING_ASC), NULL);

    const char *two[] = {"alice", "admin"};
    expect_name(make_cert(two, NULL, 2, NULL, 0, MBSTRING_ASC), NULL);

    expect_name(make_cert(NULL, NULL, 0, NULL, 0, MBSTRING_ASC), NULL);

    char out[64];
    struct orch_error err = {0};
    assert_int_not_equal(auth_x509_identity(NULL, out, sizeof(out), &err), 0);
    /* an output buffer too small for the name is a refusal, not a truncation */
    const char *cn2[] = {"a-rather-long-common-name"};
    X509 *x = make_cert(cn2, NULL, 1, NULL, 0, MBSTRING_ASC);
    assert_int_not_equal(auth_x509_identity(x, out, 8, &err), 0);
    X509_free(x);
}

static void test_not_after(void **state)
{
    const char *cn[] = {"deploy-bot"};
    X509 *x = make_cert(cn, NULL, 1, NULL, 0, MBSTRING_ASC);
    int64_t na = auth_x509_not_after_ms(x);
    int64_t now = (int64_t)time(NULL) * 1000;
    assert_true(na > now + 3500 * 1000 && na <= now + 3601 * 1000);
    X509_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_precedence),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_not_after),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
