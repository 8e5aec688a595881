/* The app network orch-APP as part of the desired state: found by exact name, created when
 * missing (labelled orch.app and this state's orch.state), repaired when an interrupted create
 * or a concurrent one left several networks of that name (empty duplicates of this state dir
 * are removed, the one with instances or else the oldest survives), and removed with the app.
 * Networks of other state dirs or of nobody are never removed: a duplicate of theirs is an
 * error that names it. It decides nothing about instances. */
#define _GNU_SOURCE /* strptime */
#include "reconcile_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/log.h"
#include "base/util.h"

#define NETWORK_REPAIR_ROUNDS 4 /* find -> create or dedupe -> find again, at most this often */

/* The engine's RFC 3339 "Created" ("2026-12-03T13:45:27.1234Z", fraction trimmed) as
 * nanoseconds since the epoch, for ordering; INT64_MAX when absent or unreadable, so such a
 * network is never taken for the oldest. */
static int64_t created_ns(const char *s)
{
    struct tm tm = {0};
    const char *p = s ? strptime(s, "%Y-%m-%dT%H:%M:%S", &tm) : NULL;
    if (p == NULL)
        return INT64_MAX;
    int64_t ns = 0;
    int digits = 0;
    if (*p == '.')
        for (p++; *p >= '0' && *p <= '9'; p++)
            if (digits < 9) {
                ns = ns * 10 + (*p - '0');
                digits++;
            }
    for (; digits < 9; digits++)
        ns *= 10;
    return (int64_t)timegm(&tm) * 1000000000 + ns;
}

static bool network_is_ours(const struct reconcile_run *run, const struct docker_network *n)
{
    const char *app = docker_kvs_get(&n->labels, "orch.app");
    const char *state = docker_kvs_get(&n->labels, "orch.state");
    return app != NULL && strcmp(app, run->app) == 0 && state != NULL &&
           strcmp(state, run->r->state_id) == 0;
}

static int find_networks(struct reconcile_run *run, const char *name,
                         struct docker_network_list *out, struct orch_error *err)
{
    struct docker_network_filter f = {.name = name};
    struct docker_sync s = {0};
    int rc = docker_networks_find(run->r->dc, &f, out, docker_sync_done, &s, err);
    if (rc == 0)
        rc = recon_sync(run->r, &s, 1, err);
    return rc;
}

static int create_network(struct reconcile_run *run, const char *name, struct orch_error *err)
{
    char *id = NULL;
    struct docker_sync c = {0};
    int rc = docker_app_network_create(run->r->dc, name, run->app, run->r->state_id, &id,
                                       docker_sync_done, &c, err);
    if (rc == 0)
        rc = recon_sync(run->r, &c, 1, err);
    free(id);
    if (rc < 0 && c.status == 409) { /* made meanwhile by another orch: found next round */
        orch_error_clear(err);
        rc = 0;
    }
    return rc;
}

static int remove_network_id(struct reconcile_run *run, const char *id, struct orch_error *err)
{
    struct docker_sync s = {0};
    int rc = docker_network_remove_id(run->r->dc, id, docker_sync_done, &s, err);
    if (rc == 0)
        rc = recon_sync(run->r, &s, 1, err);
    if (rc == -ORCH_E_NOTFOUND) {
        orch_error_clear(err);
        rc = 0;
    }
    return rc;
}

/* Several networks called name: keeps the one with the most attached instances (then the
 * oldest, then the smallest id), removes the empty duplicates of this state dir. Another
 * duplicate is an error naming it, since the engine refuses to start anything on a name that
 * is ambiguous. */
static int dedupe_networks(struct reconcile_run *run, const char *name,
                           const struct docker_network_list *l, struct orch_error *err)
{
    struct reconciler *r = run->r;
    struct docker_network *info = orch_xcalloc(l->n, sizeof(*info));
    struct docker_sync *sync = orch_xcalloc(l->n, sizeof(*sync));
    int rc = 0;
    for (size_t i = 0; i < l->n; i++) {
        struct orch_error e = {0};
        if (docker_network_inspect(r->dc, l->v[i].id, &info[i], docker_sync_done, &sync[i], &e) < 0)
            sync[i] = (struct docker_sync){.done = true, .err = e};
    }
    struct orch_error e = {0};
    docker_sync_wait(r->dc, sync, l->n, &e);
    size_t keep = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (sync[i].err.code == ORCH_E_NOTFOUND)
            info[i].n_containers = 0; /* gone meanwhile: nothing to keep */
        else if (sync[i].err.code != ORCH_E_OK && rc == 0) {
            *err = sync[i].err;
            rc = -(int)err->code;
        }
        if (i == 0)
            continue;
        int64_t ci = created_ns(l->v[i].created), ck = created_ns(l->v[keep].created);
        if (info[i].n_containers > info[keep].n_containers ||
            (info[i].n_containers == info[keep].n_containers &&
             (ci < ck || (ci == ck && strcmp(l->v[i].id, l->v[keep].id) < 0))))
            keep = i;
    }
    for (size_t i = 0; rc == 0 && i < l->n; i++) {
        if (i == keep || sync[i].err.code == ORCH_E_NOTFOUND)
            continue;
        if (info[i].n_containers > 0 || !network_is_ours(run, &l->v[i])) {
            rc = orch_fail(err, ORCH_E_DOCKER, 0,
                           "network %s is ambiguous: %zu networks have that name and %.12s is "
                           "%s, so orch leaves it alone; remove it (docker network rm %s) or "
                           "rename this app",
                           name, l->n, l->v[i].id,
                           info[i].n_containers > 0 ? "in use" : "not one this state dir made",
                           l->v[i].id);
            break;
        }
        orch_log(ORCH_LOG_WARN, "%s: removing duplicate network %s (%.12s, empty), keeping %.12s",
                 run->app, name, l->v[i].id, l->v[keep].id);
        rc = remove_network_id(run, l->v[i].id, err);
    }
    for (size_t i = 0; i < l->n; i++)
        docker_network_free(&info[i]);
    free(info);
    free(sync);
    return rc;
}

int recon_ensure_network(struct reconcile_run *run, struct orch_error *err)
{
    if (run->network_ok)
        return 0;
    _cleanup_free_ char *name = orch_xasprintf("orch-%s", run->app);
    int rc = 0;
    for (int round = 0; rc == 0 && round < NETWORK_REPAIR_ROUNDS; round++) {
        struct docker_network_list l = {0};
        rc = find_networks(run, name, &l, err);
        if (rc == 0 && l.n == 1) {
            free(run->network_id);
            run->network_id = orch_xstrdup(l.v[0].id);
            run->network_ok = true;
        } else if (rc == 0 && l.n == 0) {
            if (run->r->progress && round == 0 && run->network_id != NULL)
                orch_log(ORCH_LOG_WARN, "%s: network %s is gone; creating it again", run->app,
                         name);
            rc = create_network(run, name, err);
        } else if (rc == 0) {
            rc = dedupe_networks(run, name, &l, err);
        }
        docker_network_list_free(&l);
        if (run->network_ok)
            return 0;
    }
    if (rc == 0)
        rc = orch_fail(err, ORCH_E_TRANSIENT, 0, "network %s: still not settled after %d rounds",
                       name, NETWORK_REPAIR_ROUNDS);
    return rc;
}

/* True when an engine refusal is about the app network (gone or ambiguous), not the instance:
 * the network is looked at again instead of counting a crash. */
bool recon_network_error(const struct orch_error *err)
{
    const char *m = strstr(err->msg, "network ");
    return m != NULL && (strstr(m, "not found") != NULL || strstr(m, "ambiguous") != NULL);
}

int recon_remove_app_networks(struct reconcile_run *run, struct orch_error *err)
{
    _cleanup_free_ char *name = orch_xasprintf("orch-%s", run->app);
    struct docker_network_list l = {0};
    int rc = find_networks(run, name, &l, err);
    for (size_t i = 0; rc == 0 && i < l.n; i++) {
        const struct docker_network *n = &l.v[i];
        const char *app = docker_kvs_get(&n->labels, "orch.app");
        const char *state = docker_kvs_get(&n->labels, "orch.state");
        /* another state dir's network of the same app name stays; so does one orch did not
         * label (made by hand); one of an older orch that had no orch.state label goes */
        if (app == NULL || strcmp(app, run->app) != 0 ||
            (state != NULL && strcmp(state, run->r->state_id) != 0))
            continue;
        rc = remove_network_id(run, n->id, err);
        if (rc == -ORCH_E_DOCKER) {
            /* still in use, e.g. by a container orch does not manage: keep it, say so */
            orch_log(ORCH_LOG_WARN, "%s: network %s kept: %s", run->app, name, err->msg);
            orch_error_clear(err);
            rc = 0;
        }
    }
    docker_network_list_free(&l);
    free(run->network_id);
    run->network_id = NULL;
    run->network_ok = false;
    return rc;
}
