/* Authorization decisions and the pattern matching the rules use. Pure: no clock, no I/O, no
 * globals. A decision depends only on the identity, the role the operation needs, the app and
 * now_ms. */
#include <string.h>

#include "auth/auth.h"

void auth_identity_free(struct auth_identity *id)
{
    if (id == NULL)
        return;
    orch_strv_free(&id->apps);
    memset(id, 0, sizeof(*id));
}

const char *auth_role_name(enum auth_role role)
{
    switch (role) {
    case AUTH_ROLE_VIEWER:
        return "viewer";
    case AUTH_ROLE_DEPLOYER:
        return "deployer";
    case AUTH_ROLE_ADMIN:
        return "admin";
    case AUTH_ROLE_NONE:
        break;
    }
    return "none";
}

enum auth_role auth_role_parse(const char *s)
{
    if (s == NULL)
        return AUTH_ROLE_NONE;
    if (strcmp(s, "viewer") == 0)
        return AUTH_ROLE_VIEWER;
    if (strcmp(s, "deployer") == 0)
        return AUTH_ROLE_DEPLOYER;
    if (strcmp(s, "admin") == 0)
        return AUTH_ROLE_ADMIN;
    return AUTH_ROLE_NONE;
}

enum auth_role auth_op_role(enum auth_op op)
{
    switch (op) {
    case AUTH_OP_READ:
        return AUTH_ROLE_VIEWER;
    case AUTH_OP_DEPLOY:
        return AUTH_ROLE_DEPLOYER;
    case AUTH_OP_ADMIN:
        break;
    }
    return AUTH_ROLE_ADMIN; /* unknown operations need the most */
}

bool auth_glob_match(const char *p, const char *v)
{
    /* Iterative with one backtrack point: linear in practice, O(|p|*|v|) at worst. */
    const char *star = NULL, *resume = NULL;
    while (*v != '\0') {
        if (*p == '*') {
            star = p++;
            resume = v;
        } else if (*p == *v) {
            p++;
            v++;
        } else if (star != NULL) {
            p = star + 1;
            v = ++resume;
        } else {
            return false;
        }
    }
    while (*p == '*')
        p++;
    return *p == '\0';
}

/* One part of a GitHub subject: NAME or NAME@DIGITS, ending at `stop` or the end. */
struct gh_part {
    const char *name;
    size_t name_len;
    const char *id; /* NULL when the part carries no id */
    size_t id_len;
    const char *end;
};

static bool gh_split(const char *s, char stop, struct gh_part *out)
{
    const char *end = s;
    while (*end != '\0' && *end != stop && *end != ':' && *end != '/')
        end++;
    if (end == s || (stop != '\0' && *end != stop && !(stop == ':' && *end == '\0')))
        return false;
    out->name = s;
    out->name_len = (size_t)(end - s);
    out->id = NULL;
    out->id_len = 0;
    out->end = end;
    const char *at = memchr(s, '@', out->name_len);
    if (at != NULL) {
        for (const char *c = at + 1; c < end; c++)
            if (*c < '0' || *c > '9')
                return false;
        if (at + 1 == end || at == s)
            return false;
        out->name_len = (size_t)(at - s);
        out->id = at + 1;
        out->id_len = (size_t)(end - at - 1);
    }
    return true;
}

/* True when the pattern writes an '@' in the part that starts at s and ends at the first of
 * `stop` or ':' (or the end). */
static bool pattern_pins(const char *s, char stop)
{
    for (; *s != '\0' && *s != stop && *s != ':'; s++)
        if (*s == '@')
            return true;
    return false;
}

bool auth_sub_match(const char *pattern, const char *value)
{
    static const char pre[] = "repo:";
    struct gh_part owner, repo;
    if (strncmp(pattern, pre, 5) != 0 || strncmp(value, pre, 5) != 0 ||
        !gh_split(value + 5, '/', &owner) || !gh_split(owner.end + 1, ':', &repo))
        return auth_glob_match(pattern, value);
    /* The subject in the form the pattern is written in: ids kept only where it pins them. */
    const char *powner = pattern + 5;
    const char *slash = strchr(powner, '/');
    bool pin_owner = pattern_pins(powner, '/');
    bool pin_repo = slash != NULL && pattern_pins(slash + 1, ':');
    struct orch_buf b = {0};
    orch_buf_puts(&b, pre);
    orch_buf_append(&b, owner.name, owner.name_len);
    if (pin_owner && owner.id != NULL) {
        orch_buf_putc(&b, '@');
        orch_buf_append(&b, owner.id, owner.id_len);
    }
    orch_buf_putc(&b, '/');
    orch_buf_append(&b, repo.name, repo.name_len);
    if (pin_repo && repo.id != NULL) {
        orch_buf_putc(&b, '@');
        orch_buf_append(&b, repo.id, repo.id_len);
    }
    orch_buf_puts(&b, repo.end);
    bool ok = auth_glob_match(pattern, b.data);
    orch_buf_free(&b);
    return ok;
}

bool auth_app_in_scope(const struct auth_identity *id, const char *app)
{
    for (size_t i = 0; i < id->apps.n; i++)
        if (auth_glob_match(id->apps.v[i], app))
            return true;
    return false;
}

bool auth_all_apps(const struct auth_identity *id)
{
    for (size_t i = 0; i < id->apps.n; i++)
        if (strcmp(id->apps.v[i], "*") == 0)
            return true;
    return false;
}

enum auth_decision auth_allows(const struct auth_identity *id, enum auth_role needed,
                               const char *app, int64_t now_ms)
{
    if (id == NULL || id->kind == 0)
        return AUTH_UNAUTHENTICATED;
    if (id->expires_ms != 0 && now_ms >= id->expires_ms)
        return AUTH_UNAUTHENTICATED;
    if (needed < AUTH_ROLE_VIEWER)
        needed = AUTH_ROLE_VIEWER;
    if (id->role < needed)
        return AUTH_FORBIDDEN;
    if (app != NULL)
        return auth_app_in_scope(id, app) ? AUTH_ALLOW : AUTH_FORBIDDEN;
    if (needed > AUTH_ROLE_VIEWER && !auth_all_apps(id))
        return AUTH_FORBIDDEN;
    return AUTH_ALLOW;
}
