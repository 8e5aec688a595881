/* Rollouts of one service: following the latest to its end (rollout status), going back to an
 * earlier revision (undo: the target choice is pure, ops_undo_target) and reading the revision
 * history. Records in the store; drives through ops_drive; prints nothing. */
#include <stdlib.h>
#include <string.h>

#include "ops_internal.h"
#include "reconcile/reconcile.h"

static void revision_set(struct ops_revision *o, const struct store_revision *r)
{
    o->number = r->number;
    o->state = store_revision_state_name(r->state);
    o->was_healthy = r->was_healthy;
    o->image = orch_xstrdup(r->image);
    o->message = orch_xstrdup(r->message);
    o->hash = orch_xstrdup(r->hash);
    o->created_ms = r->created_ms;
}

static void revisions_free(struct ops_revision *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].image);
        free(v[i].message);
        free(v[i].hash);
    }
    free(v);
}

/* The drive (no daemon) or the wait (daemon) of follow. Returns the exit code so far, or a
 * negative code with *err when following could not start. */
static int follow_drive(const struct ops_ctx *ctx, struct store *s, const char *app,
                        const char *svc, const struct ops_target *t, int64_t since_ms,
                        int64_t timeout_ms, struct orch_error *err)
{
    if (ops_who_drives(ctx, NULL) == OPS_DRIVER_EMBEDDED) {
        struct reconciler *rec = NULL;
        int rc = ops_engine_open(ctx, s, timeout_ms, &rec, err);
        if (rc < 0)
            return rc;
        struct ops_converge_result cr;
        int code = ops_drive(ctx, rec, app, false, t, t ? 1 : 0, &cr);
        ops_converge_result_free(&cr);
        reconciler_free(rec);
        return code;
    }
    struct ops_wait_target wt = {.app = app, .service = svc};
    struct store_service row;
    int rc = store_service_get(s, app, svc, &row, err);
    if (rc < 0)
        return rc;
    wt.revision = row.revision;
    store_service_free(&row);
    struct store_rollout ro;
    if (store_rollout_latest(s, app, svc, &ro, err) == 0) {
        wt.rollout_id = ro.state == STORE_ROLLOUT_PROGRESSING ? ro.id : 0;
        store_rollout_free(&ro);
    }
    orch_error_clear(err);
    int code = ops_wait_in(ctx, s, &wt, 1, since_ms, timeout_ms);
    _cleanup_free_ char *why = NULL;
    code = ops_supersede_exit(s, t, t ? 1 : 0, NULL, code, &why);
    if (why != NULL)
        ops_note_text(ctx, OPS_NOTE_MESSAGE, "%s", why);
    return code;
}

/* Drives or follows the service's latest rollout to its end; out->rollout says how it ended. */
static int follow(const struct ops_ctx *ctx, struct store *s, const struct ops_target *t,
                  int64_t since_ms, int64_t timeout_ms, struct ops_follow_result *out)
{
    int rc = follow_drive(ctx, s, out->app, out->service, t, since_ms, timeout_ms, &out->err);
    if (rc < 0)
        return out->exit_code = ops_error_exit(&out->err);
    if (rc == ORCH_EXIT_ENV || rc == ORCH_EXIT_TIMEOUT || rc == ORCH_EXIT_SUPERSEDED ||
        rc >= ORCH_EXIT_INTERRUPTED)
        return out->exit_code = rc;
    struct store_rollout ro;
    if (store_rollout_latest(s, out->app, out->service, &ro, &out->err) < 0) {
        if (out->err.code == ORCH_E_NOTFOUND) { /* no rollout: whatever converging said */
            orch_error_clear(&out->err);
            return out->exit_code = rc;
        }
        return out->exit_code = ops_error_exit(&out->err);
    }
    ops_rollout_end_set(&out->rollout, &ro);
    /* A rollout still progressing after a drive that did not time out was not ended by its own
     * verdict: the drive stopped on something else (an engine error), whose code stands. */
    out->exit_code = ro.state == STORE_ROLLOUT_PROGRESSING ? rc : ops_rollout_exit(ro.state);
    store_rollout_free(&ro);
    return out->exit_code;
}

int ops_rollout_status(const struct ops_ctx *ctx, const char *ref, int64_t timeout_ms,
                       struct ops_follow_result *out)
{
    memset(out, 0, sizeof(*out));
    struct store *s = NULL;
    if (ops_open_service(ctx, ref, true, &s, &out->app, &out->service, &out->err) < 0)
        return out->exit_code = ops_error_exit(&out->err);
    struct ops_target t = {.app = out->app, .service = out->service, .replicas = -1};
    follow(ctx, s, &t, 0, timeout_ms, out);
    store_close(s);
    return out->exit_code;
}

int ops_undo_target(const struct ops_revision *v, size_t n, int64_t current, int64_t wanted,
                    const char *app, const char *svc, struct orch_error *err)
{
    size_t pick = n;
    for (size_t i = 0; i < n && pick == n; i++) {
        bool failed = strcmp(v[i].state, "failed") == 0;
        if (wanted > 0 ? v[i].number == wanted
                       : (v[i].number != current && v[i].was_healthy && !failed))
            pick = i;
    }
    if (pick == n && wanted > 0)
        return orch_fail(err, ORCH_E_NOTFOUND, 0,
                         "%s/%s has no revision %lld (see orch rollout history)", app, svc,
                         (long long)wanted);
    if (pick == n)
        return orch_fail(err, ORCH_E_NOTFOUND, 0,
                         "%s/%s has no earlier good revision to go back to", app, svc);
    if (v[pick].number == current)
        return orch_fail(err, ORCH_E_INVALID, 0, "%s/%s is at revision %lld already", app, svc,
                         (long long)current);
    return (int)pick;
}

/* Loads the history and picks the target: its template into *template_json (new). */
static int undo_pick(struct store *s, const char *app, const char *svc, int64_t current,
                     int64_t wanted, struct ops_undo_result *out, char **template_json,
                     struct orch_error *err)
{
    struct store_revision *v = NULL;
    size_t n = 0;
    int rc = store_revisions_list(s, app, svc, &v, &n, err);
    if (rc < 0)
        return rc;
    struct ops_revision *view = orch_xcalloc(n + 1, sizeof(*view));
    for (size_t i = 0; i < n; i++)
        revision_set(&view[i], &v[i]);
    int pick = ops_undo_target(view, n, current, wanted, app, svc, err);
    if (pick >= 0) {
        out->to_revision = v[pick].number;
        out->image = orch_xstrdup(v[pick].image);
        out->target_failed_before = v[pick].state == STORE_REV_FAILED;
        *template_json = orch_xstrdup(v[pick].template_json);
        rc = 0;
    } else {
        rc = pick;
    }
    revisions_free(view, n);
    store_revisions_free(v, n);
    return rc;
}

/* In the open transaction: the service back at the target revision (its template, today's
 * count and autoscale), a rollout record and an event. */
static int undo_write(const struct ops_ctx *ctx, struct store *s, const char *app, const char *svc,
                      int64_t wanted, int64_t now, struct ops_undo_result *out,
                      struct orch_error *err)
{
    struct store_service row = {0};
    _cleanup_free_ char *template_json = NULL;
    _cleanup_free_ char *spec_json = NULL;
    int rc = store_service_get(s, app, svc, &row, err);
    if (rc < 0)
        return rc;
    out->from_revision = row.revision;
    rc = undo_pick(s, app, svc, row.revision, wanted, out, &template_json, err);
    if (rc == 0) {
        spec_json = spec_service_rebase_json(template_json, row.spec_json, err);
        if (spec_json == NULL)
            rc = -(int)err->code;
    }
    if (rc == 0) {
        struct store_service put = row;
        put.revision = out->to_revision;
        put.spec_json = spec_json;
        put.updated_ms = now;
        rc = store_service_put(s, &put, err);
    }
    if (rc == 0) {
        struct store_rollout ro = {.app = (char *)app,
                                   .service = (char *)svc,
                                   .from_revision = out->from_revision,
                                   .to_revision = out->to_revision,
                                   .state = STORE_ROLLOUT_PROGRESSING,
                                   .message = "",
                                   .started_ms = now,
                                   .updated_ms = now};
        int64_t id = 0;
        rc = store_rollout_add(s, &ro, &id, err);
    }
    if (rc == 0) {
        _cleanup_free_ char *msg =
            orch_xasprintf("undo: revision %lld -> %lld (%s)", (long long)out->from_revision,
                           (long long)out->to_revision, ctx->actor);
        rc = store_event_add(s, app, svc, "undo", msg, now, err);
    }
    store_service_free(&row);
    return rc;
}

int ops_rollout_undo(const struct ops_ctx *ctx, const struct ops_undo_req *req,
                     struct ops_undo_result *out)
{
    memset(out, 0, sizeof(*out));
    struct ops_follow_result *f = &out->follow;
    struct store *s = NULL;
    int64_t now = orch_now_wall_ms();
    int rc = ops_open_service(ctx, req->ref, true, &s, &f->app, &f->service, &f->err);
    if (rc == 0 && ops_who_drives(ctx, NULL) == OPS_DRIVER_EMBEDDED) {
        /* the engine must answer before anything is recorded */
        struct reconciler *probe = NULL;
        rc = ops_engine_open(ctx, s, 0, &probe, &f->err);
        reconciler_free(probe);
    }
    if (rc == 0 && ops_interrupted(ctx)) {
        _cleanup_free_ char *msg = NULL;
        f->exit_code = ops_interrupt_exit(ctx, NULL, NULL, 0, false, &msg);
        ops_note_text(ctx, OPS_NOTE_MESSAGE, "%s", msg);
        store_close(s);
        return f->exit_code;
    }
    bool in_tx = false;
    if (rc == 0)
        rc = store_begin(s, &f->err);
    in_tx = rc == 0;
    if (rc == 0)
        rc = undo_write(ctx, s, f->app, f->service, req->to_revision, now, out, &f->err);
    if (rc == 0)
        rc = store_commit(s, &f->err);
    else if (in_tx)
        store_rollback(s);
    if (rc < 0) {
        if (s != NULL)
            store_close(s);
        return f->exit_code = ops_error_exit(&f->err);
    }
    ops_note_simple(ctx, OPS_NOTE_RECORDED);
    if (ops_who_drives(ctx, NULL) != OPS_DRIVER_EMBEDDED && !req->wait)
        f->exit_code = ORCH_EXIT_OK;
    else
        follow(
            ctx, s,
            &(struct ops_target){
                .app = f->app, .service = f->service, .revision = out->to_revision, .replicas = -1},
            now, req->timeout_ms, f);
    store_close(s);
    return f->exit_code;
}

void ops_follow_result_free(struct ops_follow_result *r)
{
    free(r->app);
    free(r->service);
    ops_rollout_end_free(&r->rollout);
    memset(r, 0, sizeof(*r));
}

void ops_undo_result_free(struct ops_undo_result *r)
{
    ops_follow_result_free(&r->follow);
    free(r->image);
    memset(r, 0, sizeof(*r));
}

int ops_rollout_history(const struct ops_ctx *ctx, const char *ref, struct ops_history_result *out)
{
    memset(out, 0, sizeof(*out));
    struct store *s = NULL;
    if (ops_open_service(ctx, ref, false, &s, &out->app, &out->service, &out->err) < 0)
        return out->exit_code = ops_error_exit(&out->err);
    struct store_revision *v = NULL;
    size_t n = 0;
    int rc = store_revisions_list(s, out->app, out->service, &v, &n, &out->err);
    store_close(s);
    if (rc < 0)
        return out->exit_code = ops_error_exit(&out->err);
    out->v = orch_xcalloc(n + 1, sizeof(*out->v));
    out->n = n;
    for (size_t i = 0; i < n; i++)
        revision_set(&out->v[i], &v[i]);
    store_revisions_free(v, n);
    return out->exit_code = ORCH_EXIT_OK;
}

void ops_history_result_free(struct ops_history_result *r)
{
    free(r->app);
    free(r->service);
    revisions_free(r->v, r->n);
    memset(r, 0, sizeof(*r));
}
