/* Who a request comes from and what it may do: identities (orch token, OIDC JWT, client
 * certificate), the --auth file (issuers and the rules that map claims to a role and apps), and
 * the authorization decision. Every decision function is pure: no clock (now is an argument),
 * no I/O; only auth_config_load reads files. Identity names are safe to log: they carry a token
 * id, an issuer and a subject, or a certificate name, never a secret. */
#ifndef ORCH_API_AUTH_AUTH_H
#define ORCH_API_AUTH_AUTH_H

#include <openssl/x509.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/util.h"

struct jwks;
struct auth_token_store;

/* Ordered: each role may do everything the ones below it may. */
enum auth_role { AUTH_ROLE_NONE = 0, AUTH_ROLE_VIEWER, AUTH_ROLE_DEPLOYER, AUTH_ROLE_ADMIN };

/* What a route does. read: GET of apps, status, revisions, events. deploy: apply (PUT), delete,
 * scale, rollback. admin: tokens, nodes, state backup. */
enum auth_op { AUTH_OP_READ, AUTH_OP_DEPLOY, AUTH_OP_ADMIN };

/* The HTTP status a decision becomes. */
enum auth_decision {
    AUTH_ALLOW = 200,
    AUTH_UNAUTHENTICATED = 401, /* no credential, an invalid one, or an expired one */
    AUTH_FORBIDDEN = 403,       /* a valid credential without the role or the app */
};

enum auth_kind { AUTH_KIND_TOKEN = 1, AUTH_KIND_JWT, AUTH_KIND_CERT };

/* An authenticated caller. apps holds app-name patterns (`*` globs); {"*"} is every app. */
struct auth_identity {
    enum auth_kind kind;
    /* For audit events and logs: "token 3f9a0c1d2b4e", "jwt github repo:acme/shop:ref:...",
     * "cert runner1.ci.acme.internal". Printable ASCII only. */
    char name[320];
    enum auth_role role; /* AUTH_ROLE_NONE: authenticated, but nothing is granted (403) */
    struct orch_strv apps;
    int64_t expires_ms; /* wall clock; 0: does not expire */
};

void auth_identity_free(struct auth_identity *id);

/* "admin", "deployer", "viewer" (and "none"); auth_role_parse returns AUTH_ROLE_NONE for
 * anything else. */
const char *auth_role_name(enum auth_role role);
enum auth_role auth_role_parse(const char *s);

/* The role an operation needs: read -> viewer, deploy -> deployer, admin -> admin. */
enum auth_role auth_op_role(enum auth_op op);

/* The decision for an operation needing `needed` on `app` (NULL: not about one app, such as the
 * app list, events or tokens). id NULL or expired at now_ms: 401. A role below `needed`, an app
 * outside the identity's apps, or a non-read operation on no app by an identity limited to some
 * apps (it could reach beyond them, e.g. mint a token for any app): 403. A read on no app is
 * allowed to any viewer; the route then shows only the apps auth_app_in_scope admits. */
enum auth_decision auth_allows(const struct auth_identity *id, enum auth_role needed,
                               const char *app, int64_t now_ms);

/* True when one of id's app patterns matches app. */
bool auth_app_in_scope(const struct auth_identity *id, const char *app);
/* True when id reaches every app (a "*" pattern). */
bool auth_all_apps(const struct auth_identity *id);

/* `*` matches any run of characters (including none, '/' and ':'); everything else is literal. */
bool auth_glob_match(const char *pattern, const char *value);

/* A rule's pattern against a `sub` claim. Like auth_glob_match, and GitHub-aware: GitHub's
 * immutable subjects carry ids (repo:OWNER@ID/REPO@ID:ref:...), the older ones only names
 * (repo:OWNER/REPO:ref:...). A pattern without '@' in its owner and repo parts matches either
 * form by name; writing OWNER@ID or REPO@ID pins that id, and then only a subject carrying it
 * matches. */
bool auth_sub_match(const char *pattern, const char *value);

/* ---- the --auth file ---- */

/* The parsed --auth file: issuers and rules (format in api/README.md). */
struct auth_config;

/* The issuer name rules use for client certificates. */
#define AUTH_ISSUER_MTLS "mtls"

/* Parses and validates the file's text (YAML, or JSON which is YAML too) into *out (new);
 * file_name only prefixes messages. Pure: JWKS files are named, not read (see
 * auth_config_load_keys). Every rule must name a subject pattern that is not only `*`, since
 * a public issuer such as GitHub signs tokens for anyone, with any audience they ask for. */
int auth_config_parse(const char *text, size_t len, const char *file_name, struct auth_config **out,
                      struct orch_error *err);
/* Reads the file at path and every issuer's JWKS file (relative paths are relative to the
 * folder of path). */
int auth_config_load(const char *path, struct auth_config **out, struct orch_error *err);
/* Gives the issuer named `issuer` its keys (taken, also on failure). */
int auth_config_set_keys(struct auth_config *cfg, const char *issuer, struct jwks *keys,
                         struct orch_error *err);
void auth_config_free(struct auth_config *cfg);
size_t auth_config_issuer_count(const struct auth_config *cfg);
/* The name and JWKS path of issuer i (borrowed). */
const char *auth_config_issuer_name(const struct auth_config *cfg, size_t i);
const char *auth_config_issuer_jwks(const struct auth_config *cfg, size_t i);

/* Verifies a JWT: the issuer whose `issuer` equals the token's iss, its keys, its audience and
 * leeway, then the first rule of that issuer whose patterns all match grants the role and apps
 * (none matching: role NONE). Fills *out (free with auth_identity_free). */
int auth_jwt_authenticate(const struct auth_config *cfg, const char *token, size_t len,
                          int64_t now_ms, struct auth_identity *out, struct orch_error *err);

/* A client certificate's identity (from auth_x509_identity) through the rules of the "mtls"
 * issuer, as a sub claim. expires_ms: the certificate's notAfter. */
int auth_cert_authenticate(const struct auth_config *cfg, const char *subject, int64_t expires_ms,
                           struct auth_identity *out, struct orch_error *err);

/* The identity string of a client certificate: its first URI SAN, else its first DNS SAN, else
 * its first email SAN, else its subject CN. Names with control characters, NUL bytes or more
 * than 255 bytes are refused. Writes at most out_len bytes (NUL-terminated). */
int auth_x509_identity(X509 *cert, char *out, size_t out_len, struct orch_error *err);
/* notAfter of cert in ms since the epoch, or -1. */
int64_t auth_x509_not_after_ms(X509 *cert);

/* A bearer credential of either kind: "orch_..." is an orch token looked up in store (may be
 * NULL: refused), anything else a JWT verified against cfg (may be NULL: refused). Fills *out. */
int auth_bearer_authenticate(const struct auth_config *cfg, const struct auth_token_store *store,
                             const char *token, size_t len, int64_t now_ms,
                             struct auth_identity *out, struct orch_error *err);

#endif
