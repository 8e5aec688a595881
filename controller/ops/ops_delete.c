/* delete: forgets services (named, those a spec declares, or a whole app) and an app left with
 * none in one transaction, then has their containers removed; the app's network goes with its
 * last service. Named volumes are removed only when a whole app is deleted with volumes. */
#include <stdlib.h>
#include <string.h>

#include "ops_internal.h"
#include "reconcile/reconcile.h"

/* What to delete: fills the parallel apps/svcs and the apps touched. */
static int delete_targets(const struct ops_ctx *ctx, struct store *s,
                          const struct ops_delete_req *req, struct orch_strv *apps,
                          struct orch_strv *svcs, struct orch_strv *touched, struct orch_error *err)
{
    int rc = 0;
    if (req->spec != NULL) {
        const struct spec_app *spec = req->spec;
        for (size_t i = 0; rc == 0 && i < spec->services_len; i++) {
            struct store_service row;
            const char *name = spec->services[i].name;
            int q = store_service_get(s, spec->app, name, &row, err);
            if (q == 0) {
                orch_strv_push(apps, spec->app);
                orch_strv_push(svcs, name);
                store_service_free(&row);
            } else if (q == -ORCH_E_NOTFOUND) {
                if (ctx->note != NULL) {
                    struct ops_note n = {
                        .kind = OPS_NOTE_SKIPPED, .app = spec->app, .service = name};
                    ctx->note(ctx->note_arg, &n);
                }
                orch_error_clear(err);
            } else {
                rc = q;
            }
        }
        orch_strv_push(touched, spec->app);
    } else if (req->app != NULL) {
        struct store_service *v = NULL;
        size_t n = 0;
        rc = store_services_list(s, req->app, &v, &n, err);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            orch_strv_push(apps, v[i].app);
            orch_strv_push(svcs, v[i].name);
        }
        store_services_free(v, n);
        orch_strv_push(touched, req->app);
    } else {
        for (size_t i = 0; rc == 0 && i < req->n_refs; i++) {
            char *a = NULL, *sv = NULL;
            rc = ops_resolve_in(s, req->refs[i], &a, &sv, err);
            if (rc == 0) {
                orch_strv_push(apps, a);
                orch_strv_push(svcs, sv);
                if (!orch_strv_contains(touched, a))
                    orch_strv_push(touched, a);
            }
            free(a);
            free(sv);
        }
    }
    return rc;
}

/* In the open transaction: the services with their events, then every touched app with no
 * service left. */
static int delete_write(const struct ops_ctx *ctx, struct store *s, const struct orch_strv *apps,
                        const struct orch_strv *svcs, const struct orch_strv *touched, bool volumes,
                        struct orch_error *err)
{
    int rc = 0;
    int64_t now = orch_now_wall_ms();
    for (size_t i = 0; rc == 0 && i < svcs->n; i++) {
        rc = store_service_delete(s, apps->v[i], svcs->v[i], err);
        /* visible as `deleting` until its containers are gone, even if this process dies */
        if (rc == 0)
            rc = store_deletion_add(s, apps->v[i], svcs->v[i], false, now, err);
        if (rc == 0)
            rc = store_event_add(s, apps->v[i], svcs->v[i], "deleted", ctx->actor, now, err);
    }
    for (size_t i = 0; rc == 0 && i < touched->n; i++) {
        struct store_service *v = NULL;
        size_t n = 0;
        rc = store_services_list(s, touched->v[i], &v, &n, err);
        store_services_free(v, n);
        if (rc == 0 && n == 0) {
            int q = store_app_delete(s, touched->v[i], err);
            if (q == -ORCH_E_NOTFOUND)
                orch_error_clear(err);
            else
                rc = q;
            if (rc == 0)
                rc = store_deletion_add(s, touched->v[i], NULL, volumes, now, err);
        }
    }
    return rc;
}

/* Deletes that a killed command left unfinished are finished by this one too. */
static int unfinished_deletes(struct store *s, struct orch_strv *touched, struct orch_error *err)
{
    struct store_deletion *v = NULL;
    size_t n = 0;
    int rc = store_deletions_list(s, NULL, &v, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (!orch_strv_contains(touched, v[i].app))
            orch_strv_push(touched, v[i].app);
    store_deletions_free(v, n);
    return rc;
}

/* delete --app of an app the store does not know, with (when this process drives) no container
 * of it left on the engine either, is exit 2 like `delete NOPE/web`: nothing to delete, and no
 * lock file is made for it. */
static int app_exists(struct store *s, struct reconciler *rec, const char *app,
                      struct orch_error *err)
{
    struct store_app *v = NULL;
    size_t n = 0;
    int rc = store_apps_list(s, &v, &n, err);
    if (rc < 0)
        return rc;
    bool known = false;
    for (size_t i = 0; i < n; i++)
        known = known || strcmp(v[i].name, app) == 0;
    store_apps_free(v, n);
    if (known)
        return 0;
    /* a delete of it that a killed command left unfinished: this one finishes it */
    struct store_deletion *d = NULL;
    size_t nd = 0;
    rc = store_deletions_list(s, NULL, &d, &nd, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < nd; i++)
        known = known || strcmp(d[i].app, app) == 0;
    store_deletions_free(d, nd);
    if (known)
        return 0;
    if (rec != NULL) {
        struct orch_strv apps = {0};
        rc = reconciler_container_apps(rec, &apps, err);
        known = rc == 0 && orch_strv_contains(&apps, app);
        orch_strv_free(&apps);
        if (rc < 0)
            return rc;
    }
    return known ? 0 : orch_fail(err, ORCH_E_NOTFOUND, 0, "no app '%s'", app);
}

static int delete_check(const struct ops_delete_req *req, struct orch_error *err)
{
    if ((req->spec != NULL) + (req->app != NULL) + (req->n_refs > 0) != 1)
        return orch_fail(err, ORCH_E_USAGE, 0, "give services, a spec or an app (one of them)");
    if (req->volumes && req->app == NULL)
        return orch_fail(err, ORCH_E_USAGE, 0, "volumes go with deleting a whole app");
    if (req->app != NULL && !orch_is_dns_label(req->app, SPEC_NAME_MAX))
        return orch_fail(err, ORCH_E_USAGE, 0, "'%s' is not an app name", req->app);
    return 0;
}

int ops_delete(const struct ops_ctx *ctx, const struct ops_delete_req *req,
               struct ops_delete_result *out)
{
    memset(out, 0, sizeof(*out));
    struct orch_error *err = &out->err;
    struct store *s = NULL;
    struct reconciler *rec = NULL;
    struct orch_strv touched = {0}; /* apps to converge */
    int rc = delete_check(req, err);
    if (rc == 0)
        rc = ops_store_open(ctx, true, &s, err);
    if (rc == 0)
        rc = delete_targets(ctx, s, req, &out->apps, &out->services, &touched, err);
    if (rc == 0 && ops_who_drives(ctx, NULL) == OPS_DRIVER_EMBEDDED)
        rc = ops_engine_open(ctx, s, 0, &rec, err);
    if (rc == 0 && req->app != NULL && out->services.n == 0)
        rc = app_exists(s, rec, req->app, err);
    if (rc == 0 && ops_interrupted(ctx)) {
        _cleanup_free_ char *msg = NULL;
        out->exit_code = ops_interrupt_exit(ctx, NULL, NULL, 0, false, &msg);
        ops_note_text(ctx, OPS_NOTE_MESSAGE, "%s", msg);
        orch_strv_free(&out->apps);
        orch_strv_free(&out->services);
        goto done;
    }
    if (rc == 0)
        rc = store_begin(s, err);
    if (rc == 0)
        rc = delete_write(ctx, s, &out->apps, &out->services, &touched, req->volumes, err);
    if (rc == 0)
        rc = unfinished_deletes(s, &touched, err);
    if (rc == 0)
        rc = store_commit(s, err);
    else if (s != NULL)
        store_rollback(s);
    if (rc < 0) {
        out->exit_code = ops_error_exit(err);
        orch_strv_free(&out->apps);
        orch_strv_free(&out->services);
    } else {
        out->exit_code = ORCH_EXIT_OK;
        ops_note_simple(ctx, OPS_NOTE_RECORDED);
        struct ops_target *t = orch_xcalloc(out->services.n + 1, sizeof(*t));
        for (size_t i = 0; i < out->services.n; i++)
            t[i] = (struct ops_target){
                .app = out->apps.v[i], .service = out->services.v[i], .gone = true};
        if (rec != NULL)
            out->exit_code = ops_drive_apps(ctx, rec, &touched, req->volumes, t, out->services.n,
                                            out->exit_code, &out->converged, &out->n_converged);
        free(t);
    }
done:
    orch_strv_free(&touched);
    reconciler_free(rec);
    if (s != NULL)
        store_close(s);
    return out->exit_code;
}

void ops_delete_result_free(struct ops_delete_result *r)
{
    orch_strv_free(&r->apps);
    orch_strv_free(&r->services);
    for (size_t i = 0; i < r->n_converged; i++)
        ops_converge_result_free(&r->converged[i]);
    free(r->converged);
    memset(r, 0, sizeof(*r));
}
