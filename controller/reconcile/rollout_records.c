/* The rollout records in the store: completing a rollout (active revision, history trim),
 * failing or rolling it back (in one transaction checked against concurrent changes), and the
 * crash and backoff events. The verdicts come from rollout/ and decide.c; this only records. */
#include "decide.h"
#include "reconcile_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

/* The newest revision other than `not` that was fully running once and did not fail: the
 * rollback target, or 0 when there is none. */
int recon_last_good_revision(struct reconciler *r, const char *app, const char *svc, int64_t not,
                             int64_t *out, struct orch_error *err)
{
    struct store_revision *v = NULL;
    size_t n = 0;
    *out = 0;
    int rc = store_revisions_list(r->store, app, svc, &v, &n, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (v[i].number != not &&v[i].was_healthy && v[i].state != STORE_REV_FAILED) {
            *out = v[i].number;
            break; /* newest first */
        }
    }
    store_revisions_free(v, n);
    return 0;
}

/* The service's revision is fully running: it becomes the active one (and a rollback target
 * when it ran at least one instance), the rollout completes, old history is trimmed. */
int recon_rollout_complete(struct reconcile_run *run, struct svc_run *s, struct orch_error *err)
{
    struct reconciler *r = run->r;
    int64_t now = orch_now_wall_ms();
    struct store_revision *v = NULL;
    size_t n = 0;
    int rc = store_begin(r->store, err);
    if (rc < 0)
        return rc;
    rc = store_revisions_list(r->store, run->app, s->name, &v, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (v[i].number == s->row.revision)
            rc =
                store_revision_set_state(r->store, run->app, s->name, v[i].number, STORE_REV_ACTIVE,
                                         v[i].was_healthy || s->row.replicas > 0, err);
        else if (v[i].state == STORE_REV_ACTIVE)
            rc = store_revision_set_state(r->store, run->app, s->name, v[i].number,
                                          STORE_REV_SUPERSEDED, v[i].was_healthy, err);
    }
    store_revisions_free(v, n);
    if (rc == 0 && s->has_rollout)
        rc = store_rollout_set_state(r->store, s->rollout.id, STORE_ROLLOUT_COMPLETE, NULL, now,
                                     err);
    if (rc == 0 && s->has_rollout) {
        _cleanup_free_ char *msg =
            orch_xasprintf("revision %lld complete: %d instance%s", (long long)s->row.revision,
                           s->row.replicas, s->row.replicas == 1 ? "" : "s");
        rc = store_event_add(r->store, run->app, s->name, "rollout", msg, now, err);
    }
    /* Trimmed only here, once the current revision is the good one, so neither the revision
     * that serves nor the rollback target is ever trimmed away. */
    if (rc == 0)
        rc = store_revisions_trim(r->store, run->app, s->name, RECONCILE_HISTORY_LIMIT,
                                  s->row.revision, err);
    if (rc == 0)
        rc = store_commit(r->store, err);
    else
        store_rollback(r->store);
    if (rc == 0 && s->has_rollout) {
        store_rollout_free(&s->rollout);
        s->has_rollout = false;
    }
    if (rc == 0)
        s->rev_active = true;
    return rc;
}

/* The service row as it should be after rolling back to `target`: spec_json rebuilt from the
 * target's template with the current replicas and autoscale, so a later diff of the good file
 * sees no change. New string, or NULL when the stored JSON does not parse. */
static char *rollback_spec_json(struct reconciler *r, const char *app,
                                const struct store_service *cur, int64_t target,
                                struct orch_error *err)
{
    struct store_revision rev;
    if (store_revision_get(r->store, app, cur->name, target, &rev, err) < 0)
        return NULL;
    char *json = spec_service_rebase_json(rev.template_json, cur->spec_json, err);
    store_revision_free(&rev);
    return json;
}

/* Acts on a ROLLBACK (target > 0), FAIL or GIVE_UP verdict of the rollout state machine for
 * `why`: with a target the service goes back to it (the next passes converge to it); otherwise
 * it is left as it is. Checked against the row as it is inside the transaction: if another
 * command changed the service's revision meanwhile, nothing is recorded and the newer revision
 * is left to converge. */
int recon_rollout_fail(struct reconcile_run *run, struct svc_run *s, const char *why,
                       int64_t target, struct orch_error *err)
{
    struct reconciler *r = run->r;
    int64_t now = orch_now_wall_ms();
    int64_t failed_rev = s->row.revision;
    bool in_rollout = s->has_rollout || s->rolled_back;
    _cleanup_free_ char *msg = NULL;

    int rc = store_begin(r->store, err);
    if (rc < 0)
        return rc;
    struct store_service cur = {0};
    rc = store_service_get(r->store, run->app, s->name, &cur, err);
    if (rc == -ORCH_E_NOTFOUND || (rc == 0 && cur.revision != failed_rev)) {
        /* deleted or re-applied meanwhile: nothing to roll back here */
        store_rollback(r->store);
        store_service_free(&cur);
        orch_error_clear(err);
        return 0;
    }
    if (rc == 0 && in_rollout && !s->rolled_back)
        rc = store_revision_set_state(r->store, run->app, s->name, failed_rev, STORE_REV_FAILED,
                                      false, err);
    if (rc == 0 && target > 0) {
        msg = orch_xasprintf("revision %lld failed (%s); rolling back to revision %lld",
                             (long long)failed_rev, why, (long long)target);
        _cleanup_free_ char *json = rollback_spec_json(r, run->app, &cur, target, err);
        if (json == NULL) {
            rc = orch_wrap(err, "roll back %s/%s", run->app, s->name);
        } else {
            struct store_service row = cur;
            row.revision = target;
            row.spec_json = json;
            row.updated_ms = now;
            rc = store_service_put(r->store, &row, err);
        }
        if (rc == 0 && s->has_rollout)
            rc = store_rollout_set_state(r->store, s->rollout.id, STORE_ROLLOUT_ROLLED_BACK, msg,
                                         now, err);
    } else if (rc == 0) {
        const char *tail = !in_rollout                    ? "giving up"
                           : s->rolled_back               ? "the rollback failed too"
                           : s->tmpl.update.auto_rollback ? "no earlier good revision to roll "
                                                            "back to"
                                                          : "auto_rollback is off";
        msg =
            in_rollout
                ? orch_xasprintf("revision %lld failed (%s); %s", (long long)failed_rev, why, tail)
                : orch_xasprintf("revision %lld: %s; %s", (long long)failed_rev, why, tail);
        int64_t rid = s->has_rollout ? s->rollout.id : s->rollback_rollout_id;
        if (rid > 0)
            rc = store_rollout_set_state(r->store, rid, STORE_ROLLOUT_FAILED, msg, now, err);
    }
    store_service_free(&cur);
    if (rc == 0)
        rc = store_event_add(r->store, run->app, s->name, "rollout-failed", msg, now, err);
    if (rc == 0)
        rc = store_commit(r->store, err);
    else
        store_rollback(r->store);
    if (rc < 0)
        return rc;
    orch_log(ORCH_LOG_WARN, "%s/%s: %s", run->app, s->name, msg);
    snprintf(run->outcome_msg, sizeof(run->outcome_msg), "%s/%s: %s", run->app, s->name, msg);
    if (target > 0) {
        s->rolled_back = true;
        s->rollback_target = target;
        s->rollback_rollout_id = s->has_rollout ? s->rollout.id : 0;
    } else {
        s->failed = true;
        s->rolled_back = false;
    }
    return 0;
}

/* Logs n crashes of what kind and the delay before the next start, in the event log too, so
 * `orch status` shows a crash loop backing off. */
void recon_crash_event(struct reconcile_run *run, struct svc_run *s, int n, const char *what,
                       int64_t delay_ms)
{
    _cleanup_free_ char *msg =
        orch_xasprintf("%d instance%s of revision %lld %s; next start in %lldms", n,
                       n == 1 ? "" : "s", (long long)s->row.revision, what, (long long)delay_ms);
    orch_log(ORCH_LOG_WARN, "%s/%s: %s", run->app, s->name, msg);
    struct orch_error e = {0};
    if (store_event_add(run->r->store, run->app, s->name, "backoff", msg, orch_now_wall_ms(), &e) <
        0)
        orch_log(ORCH_LOG_WARN, "%s/%s: %s", run->app, s->name, e.msg);
}

/* An exit or a refused create/start: counts toward the crash limit and backs the service off
 * (1 s doubling to 60 s) so a crash loop never runs hot. */
void recon_note_crashes(struct reconcile_run *run, struct svc_run *s, int n, const char *what,
                        int64_t now)
{
    struct reconcile_backoff bo =
        reconcile_decide_crashes(s->crashes, s->backoff_ms, n, now, RECONCILE_BACKOFF_MAX_MS);
    s->crashes = bo.crashes;
    s->backoff_ms = bo.backoff_ms;
    s->backoff_until_ms = bo.until_ms;
    recon_crash_event(run, s, n, what, bo.delay_ms);
}

enum rollout_phase recon_svc_phase(const struct svc_run *s)
{
    if (s->failed)
        return ROLLOUT_FAILED;
    if (s->rolled_back)
        return ROLLOUT_ROLLING_BACK;
    if (s->has_rollout)
        return ROLLOUT_PROGRESSING;
    return ROLLOUT_IDLE;
}
