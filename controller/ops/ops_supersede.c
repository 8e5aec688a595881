/* Whether a command's change still stands when its drive or wait ends: another command may
 * have changed the same service meanwhile (a new revision, another count, an undo, a delete),
 * and then the outcome it followed is that change's, not its own (exit 6, docs/contract.md,
 * Exit codes). Reads the store only; the message names the later change from its event. */
#include <stdlib.h>
#include <string.h>

#include "ops_internal.h"

/* The newest event of app/svc of one of kinds ("a|b|c"), or NULL; new message. */
static char *newest_event(struct store *s, const char *app, const char *svc, const char *kinds)
{
    struct orch_error err = {0};
    struct store_event *ev = NULL;
    size_t n = 0;
    if (store_events_list(s, app, svc, 32, &ev, &n, &err) < 0)
        return NULL;
    char *out = NULL;
    for (size_t i = n; i-- > 0 && out == NULL;) { /* oldest first: walk back */
        size_t kl = strlen(ev[i].kind);
        for (const char *k = kinds; *k;) {
            const char *bar = strchr(k, '|');
            size_t len = bar ? (size_t)(bar - k) : strlen(k);
            if (len == kl && strncmp(k, ev[i].kind, len) == 0) {
                out = orch_xasprintf("%s:%s", ev[i].kind, ev[i].message);
                break;
            }
            k += len + (bar ? 1 : 0);
        }
    }
    store_events_free(ev, n);
    return out;
}

static bool app_known(struct store *s, const char *app)
{
    struct orch_error err = {0};
    struct store_service *v = NULL;
    size_t n = 0;
    if (store_services_list(s, app, &v, &n, &err) < 0)
        return true;
    store_services_free(v, n);
    return n > 0;
}

/* Why t no longer stands, given the service row (NULL: it is gone). New string. */
static char *why(struct store *s, const struct ops_target *t, const struct store_service *row)
{
    if (row == NULL) {
        _cleanup_free_ char *ev = newest_event(s, t->app, t->service, "deleted|pruned");
        const char *msg = ev ? strchr(ev, ':') + 1 : "";
        bool pruned = ev && strncmp(ev, "pruned:", 7) == 0;
        if (!app_known(s, t->app) && !pruned)
            return orch_xasprintf("%s: superseded: app deleted%s%s%s", t->app, *msg ? " by '" : "",
                                  msg, *msg ? "'" : "");
        if (pruned)
            return orch_xasprintf("%s/%s: superseded: service %s", t->app, t->service, msg);
        return orch_xasprintf("%s/%s: superseded: service deleted%s%s%s", t->app, t->service,
                              *msg ? " by '" : "", msg, *msg ? "'" : "");
    }
    if (t->revision > 0 && row->revision != t->revision) {
        _cleanup_free_ char *ev = newest_event(s, t->app, t->service, "revision|undo");
        if (ev != NULL && strncmp(ev, "undo:", 5) == 0)
            return orch_xasprintf("%s/%s: superseded: %s", t->app, t->service, ev + 5);
        struct orch_error err = {0};
        struct store_revision rev;
        if (store_revision_get(s, t->app, t->service, row->revision, &rev, &err) == 0) {
            char *out = orch_xasprintf("%s/%s: superseded by revision %lld ('%s')", t->app,
                                       t->service, (long long)row->revision, rev.message);
            store_revision_free(&rev);
            return out;
        }
        return orch_xasprintf("%s/%s: superseded by revision %lld", t->app, t->service,
                              (long long)row->revision);
    }
    _cleanup_free_ char *ev = newest_event(s, t->app, t->service, "scaled");
    return orch_xasprintf("%s/%s: superseded: replicas changed to %d%s%s%s", t->app, t->service,
                          row->replicas, ev ? " (" : "", ev ? ev + 7 : "", ev ? ")" : "");
}

int ops_superseded(struct store *s, const struct ops_target *t, size_t n, const char *app,
                   char **why_out)
{
    *why_out = NULL;
    for (size_t i = 0; i < n; i++) {
        if (app != NULL && strcmp(t[i].app, app) != 0)
            continue;
        struct orch_error err = {0};
        struct store_service row;
        int rc = store_service_get(s, t[i].app, t[i].service, &row, &err);
        if (rc < 0 && rc != -ORCH_E_NOTFOUND)
            return rc;
        bool gone = rc == -ORCH_E_NOTFOUND;
        bool changed = gone ? !t[i].gone
                            : t[i].gone || (t[i].revision > 0 && row.revision != t[i].revision) ||
                                  (t[i].replicas >= 0 && row.replicas != t[i].replicas);
        if (changed) {
            if (!gone && t[i].gone)
                *why_out = orch_xasprintf("%s/%s: superseded: created again at revision %lld",
                                          t[i].app, t[i].service, (long long)row.revision);
            else
                *why_out = why(s, &t[i], gone ? NULL : &row);
        }
        if (!gone)
            store_service_free(&row);
        if (changed)
            return 1;
    }
    return 0;
}

int ops_supersede_exit(struct store *s, const struct ops_target *t, size_t n, const char *app,
                       int code, char **why_out)
{
    *why_out = NULL;
    /* an environment failure or an interruption says more than what changed meanwhile; a
     * rollback (or a failure) is this change's own outcome, and the rollback itself moved the
     * service back to its last good revision */
    if (n == 0 || code == ORCH_EXIT_ENV || code == ORCH_EXIT_INVALID ||
        code == ORCH_EXIT_ROLLED_BACK || code == ORCH_EXIT_FAILED || code >= ORCH_EXIT_INTERRUPTED)
        return code;
    return ops_superseded(s, t, n, app, why_out) > 0 ? ORCH_EXIT_SUPERSEDED : code;
}
