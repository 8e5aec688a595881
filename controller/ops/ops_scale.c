/* scale: new desired replica counts (no new revision) in one transaction, then the apps
 * concerned converged by this process unless a daemon does it. Every reference is resolved
 * before anything is stored. */
#include <stdlib.h>
#include <string.h>

#include "ops_internal.h"
#include "reconcile/reconcile.h"

/* Writes one new count with its event; appends what changed to out. */
static int scale_one(struct store *s, const char *app, const char *svc, int replicas, int64_t now,
                     const char *actor, struct ops_scale_result *out, struct orch_error *err)
{
    struct store_service row;
    int rc = store_service_get(s, app, svc, &row, err);
    if (rc < 0)
        return rc;
    int before = row.replicas;
    row.replicas = replicas;
    row.updated_ms = now;
    rc = store_service_put(s, &row, err);
    store_service_free(&row);
    if (rc == 0) {
        _cleanup_free_ char *msg =
            orch_xasprintf("scaled from %d to %d (%s)", before, replicas, actor);
        rc = store_event_add(s, app, svc, "scaled", msg, now, err);
    }
    if (rc == 0)
        out->v[out->n++] = (struct ops_scaled){
            .app = orch_xstrdup(app), .service = orch_xstrdup(svc), .from = before, .to = replicas};
    return rc;
}

int ops_scale(const struct ops_ctx *ctx, const struct ops_scale_item *items, size_t n,
              struct ops_scale_result *out)
{
    memset(out, 0, sizeof(*out));
    struct orch_error *err = &out->err;
    struct store *s = NULL;
    struct reconciler *rec = NULL;
    struct orch_strv apps = {0}, svcs = {0}, touched = {0};
    out->v = orch_xcalloc(n + 1, sizeof(*out->v));
    int rc = ops_store_open(ctx, true, &s, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        char *a = NULL, *sv = NULL;
        if (items[i].replicas < 0 || items[i].replicas > SPEC_MAX_REPLICAS)
            rc = orch_fail(err, ORCH_E_USAGE, 0, "'%s': the count must be from 0 to %d",
                           items[i].ref, SPEC_MAX_REPLICAS);
        else
            rc = ops_resolve_in(s, items[i].ref, &a, &sv, err);
        if (rc == 0) {
            orch_strv_push(&apps, a);
            orch_strv_push(&svcs, sv);
            if (!orch_strv_contains(&touched, a))
                orch_strv_push(&touched, a);
        }
        free(a);
        free(sv);
    }
    if (rc == 0 && ops_who_drives(ctx, NULL) == OPS_DRIVER_EMBEDDED)
        rc = ops_engine_open(ctx, s, 0, &rec, err);
    if (rc == 0 && ops_interrupted(ctx)) {
        _cleanup_free_ char *msg = NULL;
        out->exit_code = ops_interrupt_exit(ctx, NULL, NULL, 0, false, &msg);
        ops_note_text(ctx, OPS_NOTE_MESSAGE, "%s", msg);
        goto done;
    }
    if (rc == 0)
        rc = store_begin(s, err);
    int64_t now = orch_now_wall_ms();
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = scale_one(s, apps.v[i], svcs.v[i], items[i].replicas, now,
                       ctx->actor ? ctx->actor : "orch scale", out, err);
    if (rc == 0)
        rc = store_commit(s, err);
    else if (s != NULL)
        store_rollback(s);
    out->exit_code = rc < 0 ? ops_error_exit(err) : ORCH_EXIT_OK;
    if (rc == 0) {
        ops_note_simple(ctx, OPS_NOTE_RECORDED);
        /* what this scale set: the counts (a later change of them supersedes it) */
        struct ops_target *t = orch_xcalloc(out->n + 1, sizeof(*t));
        for (size_t i = 0; i < out->n; i++)
            t[i] = (struct ops_target){
                .app = out->v[i].app, .service = out->v[i].service, .replicas = out->v[i].to};
        if (rec != NULL)
            out->exit_code = ops_drive_apps(ctx, rec, &touched, false, t, out->n, out->exit_code,
                                            &out->converged, &out->n_converged);
        free(t);
    }
done:
    orch_strv_free(&apps);
    orch_strv_free(&svcs);
    orch_strv_free(&touched);
    reconciler_free(rec);
    if (s != NULL)
        store_close(s);
    return out->exit_code;
}

void ops_scale_result_free(struct ops_scale_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].app);
        free(r->v[i].service);
    }
    free(r->v);
    for (size_t i = 0; i < r->n_converged; i++)
        ops_converge_result_free(&r->converged[i]);
    free(r->converged);
    memset(r, 0, sizeof(*r));
}
