/* The identity of a client certificate (mTLS): one name taken from its SANs or subject CN.
 * The chain has already been verified against --client-ca by the TLS layer; this only names
 * the holder, refusing names that could be mistaken for others (NUL bytes, control
 * characters). Pure: reads only the certificate. */
#include <openssl/asn1.h>
#include <openssl/x509v3.h>
#include <string.h>
#include <time.h>

#include "auth/auth.h"

#define NAME_MAX_BYTES 255

/* Copies an IA5String/UTF8String name into out when it is clean. */
static int take_name(const ASN1_STRING *s, const char *what, char *out, size_t out_len,
                     struct orch_error *err)
{
    const unsigned char *d = ASN1_STRING_get0_data(s);
    int n = ASN1_STRING_length(s);
    if (n <= 0 || n > NAME_MAX_BYTES || (size_t)n >= out_len)
        return orch_fail(err, ORCH_E_INVALID, 0, "client certificate %s: empty or too long", what);
    for (int i = 0; i < n; i++)
        if (d[i] < 0x20 || d[i] == 0x7f)
            return orch_fail(err, ORCH_E_INVALID, 0,
                             "client certificate %s holds a control character", what);
    memcpy(out, d, (size_t)n);
    out[n] = '\0';
    return 0;
}

int auth_x509_identity(X509 *cert, char *out, size_t out_len, struct orch_error *err)
{
    if (cert == NULL)
        return orch_fail(err, ORCH_E_INVALID, 0, "no client certificate");
    GENERAL_NAMES *sans = X509_get_ext_d2i(cert, NID_subject_alt_name, NULL, NULL);
    static const struct {
        int type;
        const char *what;
    } order[] = {{GEN_URI, "URI SAN"}, {GEN_DNS, "DNS SAN"}, {GEN_EMAIL, "email SAN"}};
    for (size_t o = 0; sans != NULL && o < ORCH_ARRAY_LEN(order); o++) {
        for (int i = 0; i < sk_GENERAL_NAME_num(sans); i++) {
            const GENERAL_NAME *gn = sk_GENERAL_NAME_value(sans, i);
            if (gn->type != order[o].type)
                continue;
            int rc = take_name(gn->d.ia5, order[o].what, out, out_len, err);
            GENERAL_NAMES_free(sans);
            return rc;
        }
    }
    GENERAL_NAMES_free(sans);

    const X509_NAME *subj = X509_get_subject_name(cert);
    int idx = X509_NAME_get_index_by_NID(subj, NID_commonName, -1);
    if (idx < 0)
        return orch_fail(err, ORCH_E_INVALID, 0, "client certificate has no SAN and no CN");
    if (X509_NAME_get_index_by_NID(subj, NID_commonName, idx) >= 0)
        return orch_fail(err, ORCH_E_INVALID, 0, "client certificate has several CNs");
    const ASN1_STRING *cn = X509_NAME_ENTRY_get_data(X509_NAME_get_entry(subj, idx));
    /* To UTF-8 whatever string type the CN was encoded in (BMPString, ...). */
    unsigned char *utf8 = NULL;
    int n = ASN1_STRING_to_UTF8(&utf8, cn);
    if (n < 0)
        return orch_fail(err, ORCH_E_INVALID, 0, "client certificate CN is not a string");
    ASN1_STRING *tmp = ASN1_STRING_new();
    int rc;
    if (tmp == NULL || ASN1_STRING_set(tmp, utf8, n) != 1)
        rc = orch_fail(err, ORCH_E_INTERNAL, 0, "out of memory");
    else
        rc = take_name(tmp, "CN", out, out_len, err);
    ASN1_STRING_free(tmp);
    OPENSSL_free(utf8);
    return rc;
}

int64_t auth_x509_not_after_ms(X509 *cert)
{
    struct tm tm;
    const ASN1_TIME *t = X509_get0_notAfter(cert);
    if (t == NULL || ASN1_TIME_to_tm(t, &tm) != 1)
        return -1;
    return (int64_t)timegm(&tm) * 1000;
}
