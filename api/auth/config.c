/* The --auth file (issuers and rules) and the identities it yields: YAML read with libyaml's
 * event parser into a jansson tree (JSON files are YAML too), validated with every error named
 * by its path; JWTs verified against their issuer and mapped through the first matching rule.
 * Pure except auth_config_load, which reads the file and the JWKS files it names. */
#include <errno.h>
#include <libgen.h>
#include <jansson.h>
#include <string.h>
#include <yaml.h>

#include "auth/auth.h"
#include "auth/jwt.h"
#include "auth/token.h"

#define AUTH_FILE_MAX_BYTES (1024 * 1024)
#define YAML_MAX_DEPTH 16
#define YAML_MAX_NODES 100000

struct auth_issuer {
    char *name;
    char *iss;
    char *aud;
    char *jwks_path;
    int leeway_s;
    struct jwks *keys; /* owned; NULL until loaded */
};

struct auth_match {
    char *claim;
    char *pattern;
};

struct auth_rule {
    char *issuer; /* an issuer's name, or AUTH_ISSUER_MTLS */
    char *sub;
    struct auth_match *claims;
    size_t n_claims;
    enum auth_role role;
    struct orch_strv apps;
};

struct auth_config {
    struct auth_issuer *issuers;
    size_t n_issuers;
    struct auth_rule *rules;
    size_t n_rules;
};

/* ---- YAML -> JSON (every scalar a string) ---- */

struct yconv {
    yaml_parser_t parser;
    size_t nodes;
    char msg[256];
};

static bool ynext(struct yconv *c, yaml_event_t *ev)
{
    if (!yaml_parser_parse(&c->parser, ev)) {
        snprintf(c->msg, sizeof(c->msg), "line %zu: %s", c->parser.problem_mark.line + 1,
                 c->parser.problem ? c->parser.problem : "YAML syntax error");
        return false;
    }
    return true;
}

/* Converts the node that starts with *ev (consumed) into a new json_t, or NULL with c->msg. */
static json_t *ynode(struct yconv *c, yaml_event_t *ev, int depth)
{
    size_t line = ev->start_mark.line + 1;
    if (++c->nodes > YAML_MAX_NODES || depth > YAML_MAX_DEPTH) {
        snprintf(c->msg, sizeof(c->msg), "line %zu: nested too deep or too large", line);
        yaml_event_delete(ev);
        return NULL;
    }
    if (ev->type == YAML_ALIAS_EVENT ||
        (ev->type == YAML_SCALAR_EVENT && ev->data.scalar.anchor != NULL) ||
        (ev->type == YAML_SEQUENCE_START_EVENT && ev->data.sequence_start.anchor != NULL) ||
        (ev->type == YAML_MAPPING_START_EVENT && ev->data.mapping_start.anchor != NULL)) {
        snprintf(c->msg, sizeof(c->msg), "line %zu: anchors and aliases are not allowed", line);
        yaml_event_delete(ev);
        return NULL;
    }
    if (ev->type == YAML_SCALAR_EVENT) {
        json_t *s = json_stringn((const char *)ev->data.scalar.value, ev->data.scalar.length);
        yaml_event_delete(ev);
        if (s == NULL)
            snprintf(c->msg, sizeof(c->msg), "line %zu: not valid UTF-8 text", line);
        return s;
    }
    bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
    if (!seq && ev->type != YAML_MAPPING_START_EVENT) {
        snprintf(c->msg, sizeof(c->msg), "line %zu: unexpected YAML event", line);
        yaml_event_delete(ev);
        return NULL;
    }
    yaml_event_delete(ev);
    json_t *out = seq ? json_array() : json_object();
    for (;;) {
        yaml_event_t kev;
        if (!ynext(c, &kev))
            goto fail;
        if (kev.type == YAML_SEQUENCE_END_EVENT || kev.type == YAML_MAPPING_END_EVENT) {
            yaml_event_delete(&kev);
            return out;
        }
        if (seq) {
            json_t *item = ynode(c, &kev, depth + 1);
            if (item == NULL)
                goto fail;
            json_array_append_new(out, item);
            continue;
        }
        size_t kline = kev.start_mark.line + 1;
        json_t *key = ynode(c, &kev, depth + 1);
        if (key == NULL)
            goto fail;
        if (!json_is_string(key) || json_object_get(out, json_string_value(key)) != NULL) {
            snprintf(c->msg, sizeof(c->msg), "line %zu: %s", kline,
                     json_is_string(key) ? "duplicate key" : "keys must be plain strings");
            json_decref(key);
            goto fail;
        }
        yaml_event_t vev;
        if (!ynext(c, &vev)) {
            json_decref(key);
            goto fail;
        }
        json_t *val = ynode(c, &vev, depth + 1);
        if (val == NULL) {
            json_decref(key);
            goto fail;
        }
        json_object_set_new(out, json_string_value(key), val);
        json_decref(key);
    }
fail:
    json_decref(out);
    return NULL;
}

static json_t *yaml_to_json(const char *text, size_t len, char *msg, size_t msg_len)
{
    struct yconv c = {0};
    json_t *root = NULL;
    yaml_parser_initialize(&c.parser);
    yaml_parser_set_input_string(&c.parser, (const unsigned char *)text, len);
    yaml_event_t ev;
    /* STREAM-START, DOCUMENT-START, the root node, DOCUMENT-END, STREAM-END */
    for (int i = 0; i < 2; i++) {
        if (!ynext(&c, &ev))
            goto out;
        bool stream_end = ev.type == YAML_STREAM_END_EVENT;
        yaml_event_delete(&ev);
        if (stream_end) {
            snprintf(c.msg, sizeof(c.msg), "the file is empty");
            goto out;
        }
    }
    if (!ynext(&c, &ev))
        goto out;
    root = ynode(&c, &ev, 0);
    if (root == NULL)
        goto out;
    if (!ynext(&c, &ev)) { /* DOCUMENT-END */
        json_decref(root);
        root = NULL;
        goto out;
    }
    yaml_event_delete(&ev);
    if (!ynext(&c, &ev) || ev.type != YAML_STREAM_END_EVENT) {
        if (c.msg[0] == '\0') {
            yaml_event_delete(&ev);
            snprintf(c.msg, sizeof(c.msg), "more than one YAML document");
        }
        json_decref(root);
        root = NULL;
        goto out;
    }
    yaml_event_delete(&ev);
out:
    if (root == NULL)
        snprintf(msg, msg_len, "%s", c.msg);
    yaml_parser_delete(&c.parser);
    return root;
}

/* ---- validation ---- */

void auth_config_free(struct auth_config *cfg)
{
    if (cfg == NULL)
        return;
    for (size_t i = 0; i < cfg->n_issuers; i++) {
        struct auth_issuer *is = &cfg->issuers[i];
        free(is->name);
        free(is->iss);
        free(is->aud);
        free(is->jwks_path);
        jwks_free(is->keys);
    }
    for (size_t i = 0; i < cfg->n_rules; i++) {
        struct auth_rule *r = &cfg->rules[i];
        free(r->issuer);
        free(r->sub);
        for (size_t j = 0; j < r->n_claims; j++) {
            free(r->claims[j].claim);
            free(r->claims[j].pattern);
        }
        free(r->claims);
        orch_strv_free(&r->apps);
    }
    free(cfg->issuers);
    free(cfg->rules);
    free(cfg);
}

/* Checks that obj has only the listed keys (NULL-terminated). */
static int only_keys(json_t *obj, const char *const *allowed, const char *where, const char *file,
                     struct orch_error *err)
{
    const char *k;
    json_t *v;
    json_object_foreach(obj, k, v)
    {
        size_t i = 0;
        while (allowed[i] != NULL && strcmp(allowed[i], k) != 0)
            i++;
        if (allowed[i] == NULL)
            return orch_fail(err, ORCH_E_INVALID, 0, "%s: %s: unknown key '%s'", file, where, k);
    }
    return 0;
}

/* A required non-empty string member (borrowed), or NULL with err filled. */
static const char *need_str(json_t *obj, const char *key, const char *where, const char *file,
                            struct orch_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!json_is_string(v) || json_string_length(v) == 0 ||
        strlen(json_string_value(v)) != json_string_length(v)) {
        orch_fail(err, ORCH_E_INVALID, 0, "%s: %s.%s: %s", file, where, key,
                  v ? "must be a non-empty string" : "missing");
        return NULL;
    }
    return json_string_value(v);
}

static bool only_stars(const char *s)
{
    for (; *s != '\0'; s++)
        if (*s != '*')
            return false;
    return true;
}

static bool app_pattern_ok(const char *s)
{
    if (*s == '\0' || strlen(s) > 40)
        return false;
    for (; *s != '\0'; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9') || *s == '-' || *s == '*'))
            return false;
    return true;
}

static int parse_issuer(json_t *o, const char *where, const char *file, struct auth_issuer *is,
                        struct orch_error *err)
{
    static const char *const keys[] = {"name", "issuer", "audience", "jwks", "leeway", NULL};
    if (!json_is_object(o))
        return orch_fail(err, ORCH_E_INVALID, 0, "%s: %s: must be a mapping", file, where);
    int rc = only_keys(o, keys, where, file, err);
    if (rc < 0)
        return rc;
    const char *name = need_str(o, "name", where, file, err);
    const char *iss = name ? need_str(o, "issuer", where, file, err) : NULL;
    const char *aud = iss ? need_str(o, "audience", where, file, err) : NULL;
    const char *jwks = aud ? need_str(o, "jwks", where, file, err) : NULL;
    if (jwks == NULL)
        return -ORCH_E_INVALID;
    if (!orch_is_dns_label(name, 40) || strcmp(name, AUTH_ISSUER_MTLS) == 0)
        return orch_fail(err, ORCH_E_INVALID, 0,
                         "%s: %s.name: '%s' must be a DNS label other than '" AUTH_ISSUER_MTLS "'",
                         file, where, name);
    int leeway = JWT_MAX_LEEWAY_S;
    json_t *lv = json_object_get(o, "leeway");
    if (lv != NULL) {
        const char *s = json_string_value(lv);
        char *end = NULL;
        long n = s ? strtol(s, &end, 10) : -1;
        if (s == NULL || end == s || (*end != '\0' && strcmp(end, "s") != 0) || n < 0 ||
            n > JWT_MAX_LEEWAY_S)
            return orch_fail(err, ORCH_E_INVALID, 0,
                             "%s: %s.leeway: seconds (\"30s\") from 0s to %ds", file, where,
                             JWT_MAX_LEEWAY_S);
        leeway = (int)n;
    }
    is->name = orch_xstrdup(name);
    is->iss = orch_xstrdup(iss);
    is->aud = orch_xstrdup(aud);
    is->jwks_path = orch_xstrdup(jwks);
    is->leeway_s = leeway;
    return 0;
}

static const struct auth_issuer *issuer_by_name(const struct auth_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_issuers; i++)
        if (strcmp(cfg->issuers[i].name, name) == 0)
            return &cfg->issuers[i];
    return NULL;
}

static int parse_rule(json_t *o, const char *where, const char *file, const struct auth_config *cfg,
                      struct auth_rule *r, struct orch_error *err)
{
    static const char *const keys[] = {"issuer", "sub", "claims", "role", "apps", NULL};
    if (!json_is_object(o))
        return orch_fail(err, ORCH_E_INVALID, 0, "%s: %s: must be a mapping", file, where);
    int rc = only_keys(o, keys, where, file, err);
    if (rc < 0)
        return rc;
    const char *issuer = need_str(o, "issuer", where, file, err);
    const char *sub = issuer ? need_str(o, "sub", where, file, err) : NULL;
    const char *role = sub ? need_str(o, "role", where, file, err) : NULL;
    if (role == NULL)
        return -ORCH_E_INVALID;
    bool mtls = strcmp(issuer, AUTH_ISSUER_MTLS) == 0;
    if (!mtls && issuer_by_name(cfg, issuer) == NULL)
        return orch_fail(err, ORCH_E_INVALID, 0,
                         "%s: %s.issuer: no issuer named '%s' (nor '" AUTH_ISSUER_MTLS "')", file,
                         where, issuer);
    if (!mtls && only_stars(sub))
        return orch_fail(err, ORCH_E_INVALID, 0,
                         "%s: %s.sub: name the subjects (e.g. repo:OWNER/REPO:*): the issuer "
                         "signs tokens for anyone who asks, with any audience",
                         file, where);
    r->role = auth_role_parse(role);
    if (r->role == AUTH_ROLE_NONE)
        return orch_fail(err, ORCH_E_INVALID, 0,
                         "%s: %s.role: '%s' is not admin, deployer or viewer", file, where, role);
    json_t *apps = json_object_get(o, "apps");
    if (!json_is_array(apps) || json_array_size(apps) == 0)
        return orch_fail(err, ORCH_E_INVALID, 0,
                         "%s: %s.apps: a list of app names or patterns (\"*\": every app)", file,
                         where);
    size_t i;
    json_t *a;
    json_array_foreach(apps, i, a)
    {
        const char *s = json_string_value(a);
        if (s == NULL || !app_pattern_ok(s))
            return orch_fail(err, ORCH_E_INVALID, 0,
                             "%s: %s.apps[%zu]: an app name, '*' globs allowed", file, where, i);
        if (!orch_strv_contains(&r->apps, s))
            orch_strv_push(&r->apps, s);
    }
    json_t *claims = json_object_get(o, "claims");
    if (claims != NULL && mtls)
        return orch_fail(err, ORCH_E_INVALID, 0,
                         "%s: %s.claims: a client certificate has only its name (sub)", file,
                         where);
    if (claims != NULL) {
        if (!json_is_object(claims))
            return orch_fail(err, ORCH_E_INVALID, 0,
                             "%s: %s.claims: a mapping of claim names to patterns", file, where);
        r->claims = orch_xcalloc(json_object_size(claims) + 1, sizeof(*r->claims));
        const char *k;
        json_t *v;
        json_object_foreach(claims, k, v)
        {
            const char *s = json_string_value(v);
            if (strcmp(k, "sub") == 0 || strcmp(k, "iss") == 0 || strcmp(k, "aud") == 0)
                return orch_fail(err, ORCH_E_INVALID, 0,
                                 "%s: %s.claims.%s: set by the rule's sub and issuer", file, where,
                                 k);
            if (s == NULL || strlen(s) != json_string_length(v))
                return orch_fail(err, ORCH_E_INVALID, 0, "%s: %s.claims.%s: must be a string", file,
                                 where, k);
            r->claims[r->n_claims].claim = orch_xstrdup(k);
            r->claims[r->n_claims++].pattern = orch_xstrdup(s);
        }
    }
    r->issuer = orch_xstrdup(issuer);
    r->sub = orch_xstrdup(sub);
    return 0;
}

static int config_from_json(json_t *root, const char *file, struct auth_config *cfg,
                            struct orch_error *err)
{
    static const char *const keys[] = {"version", "issuers", "rules", NULL};
    if (!json_is_object(root))
        return orch_fail(err, ORCH_E_INVALID, 0, "%s: must be a mapping of issuers and rules",
                         file);
    int rc = only_keys(root, keys, "top level", file, err);
    if (rc < 0)
        return rc;
    json_t *ver = json_object_get(root, "version");
    if (ver != NULL && !(json_is_string(ver) && strcmp(json_string_value(ver), "1") == 0))
        return orch_fail(err, ORCH_E_INVALID, 0, "%s: version: only 1 exists", file);
    json_t *issuers = json_object_get(root, "issuers");
    json_t *rules = json_object_get(root, "rules");
    if (issuers != NULL && !json_is_array(issuers))
        return orch_fail(err, ORCH_E_INVALID, 0, "%s: issuers: must be a list", file);
    if (!json_is_array(rules) || json_array_size(rules) == 0)
        return orch_fail(err, ORCH_E_INVALID, 0, "%s: rules: a non-empty list is needed", file);
    cfg->issuers = orch_xcalloc(json_array_size(issuers) + 1, sizeof(*cfg->issuers));
    size_t i;
    json_t *o;
    char where[64];
    json_array_foreach(issuers, i, o)
    {
        snprintf(where, sizeof(where), "issuers[%zu]", i);
        rc = parse_issuer(o, where, file, &cfg->issuers[cfg->n_issuers], err);
        if (rc < 0)
            return rc;
        const struct auth_issuer *is = &cfg->issuers[cfg->n_issuers++];
        for (size_t j = 0; j + 1 < cfg->n_issuers; j++)
            if (strcmp(cfg->issuers[j].name, is->name) == 0 ||
                strcmp(cfg->issuers[j].iss, is->iss) == 0)
                return orch_fail(err, ORCH_E_INVALID, 0,
                                 "%s: %s: same name or issuer as issuers[%zu]", file, where, j);
    }
    cfg->rules = orch_xcalloc(json_array_size(rules) + 1, sizeof(*cfg->rules));
    json_array_foreach(rules, i, o)
    {
        snprintf(where, sizeof(where), "rules[%zu]", i);
        rc = parse_rule(o, where, file, cfg, &cfg->rules[cfg->n_rules++], err);
        if (rc < 0)
            return rc;
    }
    return 0;
}

int auth_config_parse(const char *text, size_t len, const char *file_name, struct auth_config **out,
                      struct orch_error *err)
{
    if (len > AUTH_FILE_MAX_BYTES)
        return orch_fail(err, ORCH_E_INVALID, 0, "%s: larger than %d bytes", file_name,
                         AUTH_FILE_MAX_BYTES);
    char msg[300];
    json_t *root = yaml_to_json(text, len, msg, sizeof(msg));
    if (root == NULL)
        return orch_fail(err, ORCH_E_INVALID, 0, "%s: %s", file_name, msg);
    struct auth_config *cfg = orch_xcalloc(1, sizeof(*cfg));
    int rc = config_from_json(root, file_name, cfg, err);
    json_decref(root);
    if (rc < 0) {
        auth_config_free(cfg);
        return rc;
    }
    *out = cfg;
    return 0;
}

int auth_config_set_keys(struct auth_config *cfg, const char *issuer, struct jwks *keys,
                         struct orch_error *err)
{
    for (size_t i = 0; i < cfg->n_issuers; i++) {
        if (strcmp(cfg->issuers[i].name, issuer) == 0) {
            jwks_free(cfg->issuers[i].keys);
            cfg->issuers[i].keys = keys;
            return 0;
        }
    }
    jwks_free(keys);
    return orch_fail(err, ORCH_E_NOTFOUND, 0, "no issuer named %s", issuer);
}

int auth_config_load(const char *path, struct auth_config **out, struct orch_error *err)
{
    _cleanup_fclose_ FILE *f = fopen(path, "rb");
    if (f == NULL)
        return orch_fail(err, ORCH_E_IO, errno, "open %s", path);
    _cleanup_free_ char *buf = orch_xmalloc(AUTH_FILE_MAX_BYTES + 1);
    size_t n = fread(buf, 1, AUTH_FILE_MAX_BYTES + 1, f);
    if (ferror(f))
        return orch_fail(err, ORCH_E_IO, errno, "read %s", path);
    struct auth_config *cfg = NULL;
    int rc = auth_config_parse(buf, n, path, &cfg, err);
    if (rc < 0)
        return rc;
    _cleanup_free_ char *dircopy = orch_xstrdup(path);
    const char *dir = dirname(dircopy);
    for (size_t i = 0; i < cfg->n_issuers; i++) {
        struct auth_issuer *is = &cfg->issuers[i];
        _cleanup_free_ char *p = is->jwks_path[0] == '/'
                                     ? orch_xstrdup(is->jwks_path)
                                     : orch_xasprintf("%s/%s", dir, is->jwks_path);
        rc = jwks_load_file(p, &is->keys, err);
        if (rc < 0) {
            orch_wrap(err, "%s: issuer %s", path, is->name);
            auth_config_free(cfg);
            return rc;
        }
    }
    *out = cfg;
    return 0;
}

size_t auth_config_issuer_count(const struct auth_config *cfg)
{
    return cfg->n_issuers;
}

const char *auth_config_issuer_name(const struct auth_config *cfg, size_t i)
{
    return i < cfg->n_issuers ? cfg->issuers[i].name : NULL;
}

const char *auth_config_issuer_jwks(const struct auth_config *cfg, size_t i)
{
    return i < cfg->n_issuers ? cfg->issuers[i].jwks_path : NULL;
}

/* ---- identities ---- */

/* Appends s to out (an identity name), replacing anything but printable ASCII with '?' and
 * truncating: names go to logs and events, and token claims are chosen by the sender. */
static void name_append(char *out, size_t cap, const char *s)
{
    size_t n = strlen(out);
    for (; *s != '\0' && n + 1 < cap; s++)
        out[n++] = (*s >= 0x20 && *s <= 0x7e) ? *s : '?';
    out[n] = '\0';
}

static const struct auth_rule *rule_find(const struct auth_config *cfg, const char *issuer,
                                         json_t *claims)
{
    const char *sub = json_string_value(json_object_get(claims, "sub"));
    if (sub == NULL)
        return NULL;
    for (size_t i = 0; i < cfg->n_rules; i++) {
        const struct auth_rule *r = &cfg->rules[i];
        if (strcmp(r->issuer, issuer) != 0 || !auth_sub_match(r->sub, sub))
            continue;
        bool all = true;
        for (size_t j = 0; j < r->n_claims && all; j++) {
            json_t *v = json_object_get(claims, r->claims[j].claim);
            const char *s = json_string_value(v);
            all = s != NULL && strlen(s) == json_string_length(v) &&
                  auth_glob_match(r->claims[j].pattern, s);
        }
        if (all)
            return r;
    }
    return NULL;
}

static void grant(struct auth_identity *out, const struct auth_rule *r)
{
    if (r == NULL)
        return;
    out->role = r->role;
    for (size_t i = 0; i < r->apps.n; i++)
        orch_strv_push(&out->apps, r->apps.v[i]);
}

int auth_jwt_authenticate(const struct auth_config *cfg, const char *token, size_t len,
                          int64_t now_ms, struct auth_identity *out, struct orch_error *err)
{
    if (cfg == NULL)
        return orch_fail(err, ORCH_E_INVALID, 0, "no --auth file: JWTs are not accepted");
    struct jwt t;
    int rc = jwt_parse(token, len, &t, err);
    if (rc < 0)
        return orch_wrap(err, "jwt");
    const char *iss = json_string_value(json_object_get(t.claims, "iss"));
    const struct auth_issuer *is = NULL;
    for (size_t i = 0; iss != NULL && i < cfg->n_issuers; i++)
        if (strcmp(cfg->issuers[i].iss, iss) == 0)
            is = &cfg->issuers[i];
    if (is == NULL) {
        char shown[128] = "";
        name_append(shown, sizeof(shown), iss ? iss : "(none)");
        jwt_free(&t);
        return orch_fail(err, ORCH_E_INVALID, 0, "jwt: no issuer %s in the --auth file", shown);
    }
    int64_t now_s = now_ms >= 0 ? now_ms / 1000 : (now_ms - 999) / 1000;
    struct jwt_expect want = {is->iss, is->aud, is->leeway_s};
    if (is->keys == NULL)
        rc = orch_fail(err, ORCH_E_INVALID, 0, "no keys loaded");
    else if ((rc = jwt_verify_signature(&t, is->keys, err)) == 0)
        rc = jwt_check_claims(&t, &want, now_s, err);
    const char *sub = json_string_value(json_object_get(t.claims, "sub"));
    if (rc == 0 && sub == NULL)
        rc = orch_fail(err, ORCH_E_INVALID, 0, "key %s: no sub claim", t.kid);
    if (rc < 0) {
        jwt_free(&t);
        return orch_wrap(err, "jwt of issuer %s", is->name);
    }
    memset(out, 0, sizeof(*out));
    out->kind = AUTH_KIND_JWT;
    snprintf(out->name, sizeof(out->name), "jwt %s ", is->name);
    name_append(out->name, sizeof(out->name), sub);
    /* A token is good until exp + leeway; auth_allows must agree with the check above. */
    double exp = json_number_value(json_object_get(t.claims, "exp"));
    out->expires_ms = ((int64_t)exp + is->leeway_s) * 1000;
    grant(out, rule_find(cfg, is->name, t.claims));
    jwt_free(&t);
    return 0;
}

int auth_cert_authenticate(const struct auth_config *cfg, const char *subject, int64_t expires_ms,
                           struct auth_identity *out, struct orch_error *err)
{
    memset(out, 0, sizeof(*out));
    out->kind = AUTH_KIND_CERT;
    snprintf(out->name, sizeof(out->name), "cert ");
    name_append(out->name, sizeof(out->name), subject);
    out->expires_ms = expires_ms;
    if (cfg != NULL) {
        json_t *claims = json_pack("{ss}", "sub", subject);
        grant(out, rule_find(cfg, AUTH_ISSUER_MTLS, claims));
        json_decref(claims);
    }
    return 0;
}

int auth_bearer_authenticate(const struct auth_config *cfg, const struct auth_token_store *store,
                             const char *token, size_t len, int64_t now_ms,
                             struct auth_identity *out, struct orch_error *err)
{
    if (len >= 5 && memcmp(token, AUTH_TOKEN_PREFIX, 5) == 0) {
        if (store == NULL)
            return orch_fail(err, ORCH_E_INVALID, 0, "orch tokens are not accepted here");
        return auth_token_authenticate(store, token, len, now_ms, out, err);
    }
    return auth_jwt_authenticate(cfg, token, len, now_ms, out, err);
}
