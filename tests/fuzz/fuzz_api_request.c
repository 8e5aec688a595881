/* libFuzzer: raw bytes as an HTTP/1.1 request, through what the server does before a route
 * runs: the request line and headers parsed by h2o's parser (picohttpparser, as the server's
 * h2o does), the header-size limit, route matching, the query parameters the routes read,
 * If-Match, the Bearer credential through auth_bearer_authenticate (an orch token store with
 * one token, an --auth file with one issuer) and auth_allows. Nothing may crash, leak or read
 * out of bounds, and a decision must be one of the statuses the server sends. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "auth/auth.h"
#include "auth/token.h"
#include "routes.h"

/* picohttpparser, built into libh2o (its header is not installed). */
struct phr_header {
    const char *name;
    size_t name_len;
    const char *value;
    size_t value_len;
};
int phr_parse_request(const char *buf, size_t len, const char **method, size_t *method_len,
                      const char **path, size_t *path_len, int *minor_version,
                      struct phr_header *headers, size_t *num_headers, size_t last_len);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct auth_token_memstore mem;
static struct auth_token_store store;
static struct auth_config *cfg;

static void setup(void)
{
    store = auth_token_memstore(&mem);
    /* A fixed token: orch_0123456789ab_ + 43 'A's. */
    struct auth_token_record rec = {0};
    static const char tok[] = "orch_0123456789ab_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA";
    auth_token_parse(tok, sizeof(tok) - 1, rec.id, rec.hash);
    rec.role = AUTH_ROLE_DEPLOYER;
    orch_strv_push(&rec.apps, "shop");
    struct orch_error err = {0};
    store.put(store.ctx, &rec, &err);
    auth_token_record_free(&rec);
    static const char auth_yaml[] = "issuers:\n"
                                    "  - name: ci\n"
                                    "    issuer: https://issuer.test\n"
                                    "    audience: https://orch.test\n"
                                    "    jwks: jwks.json\n"
                                    "rules:\n"
                                    "  - issuer: ci\n"
                                    "    sub: repo:acme/shop:*\n"
                                    "    role: deployer\n"
                                    "    apps: [shop]\n";
    auth_config_parse(auth_yaml, sizeof(auth_yaml) - 1, "auth.yaml", &cfg, &err);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (cfg == NULL)
        setup();
    const char *method, *path;
    size_t method_len, path_len, num_headers = 100;
    int minor;
    struct phr_header headers[100];
    int n = phr_parse_request((const char *)data, size, &method, &method_len, &path, &path_len,
                              &minor, headers, &num_headers, 0);
    if (n <= 0)
        return 0;
    size_t header_bytes = method_len + path_len;
    const struct phr_header *authz = NULL, *if_match = NULL;
    for (size_t i = 0; i < num_headers; i++) {
        header_bytes += headers[i].name_len + headers[i].value_len + 4;
        if (headers[i].name_len == 13 && strncasecmp(headers[i].name, "authorization", 13) == 0)
            authz = &headers[i];
        if (headers[i].name_len == 8 && strncasecmp(headers[i].name, "if-match", 8) == 0)
            if_match = &headers[i];
    }
    if (header_bytes > 16384)
        return 0; /* 431 */
    const char *q = memchr(path, '?', path_len);
    size_t plen = q ? (size_t)(q - path) : path_len;
    struct api_match m;
    int rc = api_route_match(method, method_len, path, plen, &m);
    if (rc != 200) {
        if (rc != 404 && rc != 405)
            abort();
        return 0;
    }
    if (q != NULL) {
        size_t qlen = path_len - plen - 1;
        char v[64];
        api_query_bool(q + 1, qlen, "dry_run");
        api_query_bool(q + 1, qlen, "prune");
        api_query_get(q + 1, qlen, "wait", v, sizeof(v));
    }
    if (if_match != NULL)
        api_if_match(if_match->value, if_match->value_len, "\"0123456789abcdef\"");
    if (!m.route->needs_auth || authz == NULL)
        return 0;
    if (authz->value_len < 7 || strncasecmp(authz->value, "Bearer ", 7) != 0)
        return 0; /* 401 */
    struct auth_identity id = {0};
    struct orch_error err = {0};
    if (auth_bearer_authenticate(cfg, &store, authz->value + 7, authz->value_len - 7, 1700000000000,
                                 &id, &err) == 0) {
        enum auth_decision d =
            auth_allows(&id, auth_op_role(m.route->op), m.app[0] ? m.app : NULL, 1700000000000);
        if (d != AUTH_ALLOW && d != AUTH_FORBIDDEN && d != AUTH_UNAUTHENTICATED)
            abort();
        char *p = api_problem_json((int)d, NULL, err.msg, NULL);
        free(p);
    } else {
        char *p = api_problem_json(401, NULL, err.msg, NULL);
        if (p == NULL)
            abort();
        free(p);
    }
    auth_identity_free(&id);
    return 0;
}
