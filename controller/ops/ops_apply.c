/* apply and diff: checks the --image overrides, computes the desired-state diff (diff, dry run)
 * or records it in one transaction and has it converged (this process, or a daemon that it may
 * wait for). Nothing is stored unless the whole spec and every override is valid; nothing is
 * printed: the caller renders the diff and the outcome. */
#include <stdlib.h>
#include <string.h>

#include "desired/desired.h"
#include "ops_internal.h"
#include "reconcile/reconcile.h"

/* Checks every override before any is used, so all problems are reported; then writes them
 * into the spec. */
static int image_overrides(const struct ops_apply_req *req, struct orch_strv *problems)
{
    for (size_t i = 0; i < req->n_images; i++) {
        const char *o = req->images[i];
        const char *eq = strchr(o, '=');
        if (eq == NULL || eq == o || eq[1] == '\0') {
            _cleanup_free_ char *p = orch_xasprintf("--image '%s': expected SERVICE=IMAGE", o);
            orch_strv_push(problems, p);
            continue;
        }
        _cleanup_free_ char *svc = orch_xstrndup(o, (size_t)(eq - o));
        _cleanup_free_ char *p = NULL;
        if (spec_app_find(req->spec, svc) == NULL)
            p = orch_xasprintf("--image '%s': the spec declares no service '%s'", o, svc);
        else if (!spec_image_ref_valid(eq + 1))
            p = orch_xasprintf("--image '%s': '%s' is not a valid image reference", o, eq + 1);
        if (p != NULL)
            orch_strv_push(problems, p);
    }
    if (problems->n > 0)
        return -1;
    for (size_t i = 0; i < req->n_images; i++) {
        const char *eq = strchr(req->images[i], '=');
        _cleanup_free_ char *svc = orch_xstrndup(req->images[i], (size_t)(eq - req->images[i]));
        for (size_t j = 0; j < req->spec->services_len; j++) {
            if (strcmp(req->spec->services[j].name, svc) != 0)
                continue;
            free(req->spec->services[j].image);
            req->spec->services[j].image = orch_xstrdup(eq + 1);
        }
    }
    return 0;
}

/* A published port is served once per state: one that a service of another app already
 * publishes is a positioned spec error (the spec alone cannot tell; docs/spec.md, ports). */
static int published_clashes(struct store *s, const struct ops_apply_req *req,
                             struct orch_strv *diags, struct orch_error *err)
{
    const struct spec_app *app = req->spec;
    if (!spec_app_publishes(app) || s == NULL)
        return 0;
    struct store_service *rows = NULL;
    size_t n = 0;
    int rc = store_services_list(s, NULL, &rows, &n, err);
    for (size_t r = 0; rc == 0 && r < n; r++) {
        struct spec_service other = {0};
        struct orch_error e = {0};
        if (strcmp(rows[r].app, app->app) == 0 ||
            spec_service_from_json(rows[r].spec_json, &other, &e) < 0)
            continue;
        for (size_t i = 0; i < app->services_len; i++) {
            const struct spec_service *svc = &app->services[i];
            for (size_t k = 0; k < svc->ports_len; k++) {
                const struct spec_port *p = &svc->ports[k];
                for (size_t q = 0; p->published > 0 && q < other.ports_len; q++) {
                    if (other.ports[q].published != p->published)
                        continue;
                    _cleanup_free_ char *line = orch_xasprintf(
                        "%s:%d:%d: error: services.%s.ports[%zu].published: port %d is "
                        "already published by %s/%s",
                        req->spec_path ? req->spec_path : "-", p->published_line,
                        p->published_column, svc->name, k, p->published, rows[r].app, rows[r].name);
                    orch_strv_push(diags, line);
                }
            }
        }
        spec_service_free(&other);
    }
    store_services_free(rows, n);
    return rc;
}

/* Moves the diff's contents into *out; d is empty afterwards. */
static void diff_take(struct desired_diff *d, struct ops_diff *out)
{
    out->app = orch_steal(&d->app);
    out->v = orch_xcalloc(d->n + 1, sizeof(*out->v));
    out->n = d->n;
    for (size_t i = 0; i < d->n; i++) {
        struct desired_change *c = &d->v[i];
        struct ops_change *o = &out->v[i];
        o->kind = (enum ops_change_kind)c->kind;
        o->service = orch_steal(&c->service);
        o->from_revision = c->from_revision;
        o->to_revision = c->to_revision;
        o->from_replicas = c->from_replicas;
        o->to_replicas = c->to_replicas;
        o->from_image = orch_steal(&c->from_image);
        o->to_image = orch_steal(&c->to_image);
        o->autoscale_changed = c->autoscale_changed;
        o->published_changed = c->published_changed;
        o->fields = orch_xcalloc(c->fields_len + 1, sizeof(*o->fields));
        o->n_fields = c->fields_len;
        for (size_t j = 0; j < c->fields_len; j++) {
            o->fields[j].path = orch_steal(&c->fields[j].path);
            o->fields[j].before = orch_steal(&c->fields[j].before);
            o->fields[j].after = orch_steal(&c->fields[j].after);
        }
    }
    desired_diff_free(d);
}

static int apply_dry_run(const struct ops_ctx *ctx, const struct ops_apply_req *req,
                         struct ops_apply_result *out)
{
    struct store *s = NULL;
    struct desired_diff d = {0};
    int rc = ops_store_open(ctx, false, &s, &out->err);
    if (rc == 0 && s == NULL) /* no state yet: everything in the file is new */
        rc = desired_diff_compute(req->spec, NULL, NULL, 0, req->prune, &d, &out->err);
    else if (rc == 0 && (rc = published_clashes(s, req, &out->diags, &out->err)) == 0 &&
             out->diags.n > 0) {
        store_close(s);
        return out->exit_code = ORCH_EXIT_INVALID;
    } else if (rc == 0)
        rc = desired_diff_load(s, req->spec, req->prune, &d, &out->err);
    if (s != NULL)
        store_close(s);
    if (rc < 0)
        return out->exit_code = ops_error_exit(&out->err);
    bool changes = desired_diff_has_changes(&d);
    diff_take(&d, &out->diff);
    return out->exit_code = changes ? 1 : 0;
}

/* With a daemon and wait: follows every service the apply touched (new revisions by their
 * rollout, the rest until the daemon reports them converged). */
static int wait_for_daemon(const struct ops_ctx *ctx, struct store *s, const struct ops_diff *d,
                           int64_t since_ms, int64_t timeout_ms)
{
    struct ops_wait_target *t = orch_xcalloc(d->n + 1, sizeof(*t));
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++) {
        const struct ops_change *c = &d->v[i];
        if (c->kind == OPS_CHANGE_PRUNE)
            continue;
        t[n].app = d->app;
        t[n].service = c->service;
        t[n].revision = c->kind == OPS_CHANGE_UNCHANGED ? c->from_revision : c->to_revision;
        struct store_rollout ro;
        struct orch_error e = {0};
        if ((c->kind == OPS_CHANGE_CREATE || c->kind == OPS_CHANGE_REVISION) &&
            store_rollout_latest(s, d->app, c->service, &ro, &e) == 0) {
            t[n].rollout_id = ro.id;
            store_rollout_free(&ro);
        }
        n++;
    }
    int rc = ops_wait_in(ctx, s, t, n, since_ms, timeout_ms);
    free(t);
    return rc;
}

static const char *wait_outcome(int code)
{
    return code == ORCH_EXIT_OK            ? "converged"
           : code == ORCH_EXIT_ROLLED_BACK ? "rolled_back"
           : code == ORCH_EXIT_TIMEOUT     ? "timeout"
           : code == ORCH_EXIT_SUPERSEDED  ? "superseded"
                                           : "failed";
}

/* What the apply recorded, per service of the diff (pruned ones: gone). A service with
 * autoscale keeps the count the autoscaler chose, so only its revision is checked. */
static struct ops_target *apply_targets(const struct ops_apply_req *req, const struct ops_diff *d,
                                        size_t *n)
{
    struct ops_target *t = orch_xcalloc(d->n + 1, sizeof(*t));
    for (size_t i = 0; i < d->n; i++) {
        const struct ops_change *c = &d->v[i];
        const struct spec_service *sp = spec_app_find(req->spec, c->service);
        bool autoscaled = sp != NULL && sp->autoscale.enabled;
        t[i] = (struct ops_target){
            .app = d->app,
            .service = c->service,
            .gone = c->kind == OPS_CHANGE_PRUNE,
            .revision = c->kind == OPS_CHANGE_CREATE || c->kind == OPS_CHANGE_REVISION
                            ? c->to_revision
                            : c->from_revision,
            .replicas = autoscaled ? -1 : c->to_replicas,
        };
    }
    *n = d->n;
    return t;
}

static int apply_record(const struct ops_ctx *ctx, const struct ops_apply_req *req,
                        struct ops_apply_result *out)
{
    struct store *s = NULL;
    struct reconciler *rec = NULL;
    struct desired_diff d = {0};
    struct ops_target *t = NULL;
    size_t nt = 0;
    int rc = ops_store_open(ctx, true, &s, &out->err);
    /* The engine must answer before anything is stored: exit 3 then changes nothing. With a
     * daemon on the state dir, it converges: this records and returns (or waits). */
    if (rc == 0 && (rc = published_clashes(s, req, &out->diags, &out->err)) == 0 &&
        out->diags.n > 0) {
        out->exit_code = ORCH_EXIT_INVALID;
        goto out;
    }
    if (rc == 0)
        out->driver = ops_who_drives(ctx, NULL);
    if (rc == 0 && out->driver == OPS_DRIVER_EMBEDDED)
        rc = ops_engine_open(ctx, s, req->timeout_ms, &rec, &out->err);
    struct desired_apply_options opts = {
        .spec_path = req->spec_path,
        .message = req->message ? req->message : ctx->actor,
        .now_ms = orch_now_wall_ms(),
    };
    if (rc == 0 && ops_interrupted(ctx)) {
        _cleanup_free_ char *msg = NULL;
        out->exit_code = ops_interrupt_exit(ctx, req->spec->app, NULL, 0, false, &msg);
        ops_note_text(ctx, OPS_NOTE_MESSAGE, "%s", msg);
        goto out;
    }
    if (rc == 0)
        rc = desired_apply(s, req->spec, req->prune, &opts, &d, &out->err);
    if (rc < 0) {
        out->exit_code = ops_error_exit(&out->err);
        goto out;
    }
    diff_take(&d, &out->diff);
    out->recorded = true;
    ops_note_simple(ctx, OPS_NOTE_RECORDED);
    if (rec != NULL && spec_app_publishes(req->spec))
        ops_note_text(ctx, OPS_NOTE_MESSAGE,
                      "warning: published ports are served while `orch daemon` runs; instances "
                      "keep their own endpoints");
    t = apply_targets(req, &out->diff, &nt);
    if (rec != NULL) {
        out->exit_code = ops_drive(ctx, rec, req->spec->app, false, t, nt, &out->converge);
        out->outcome = out->converge.outcome;
    } else if (req->wait) {
        int code = wait_for_daemon(ctx, s, &out->diff, opts.now_ms, req->timeout_ms);
        out->exit_code = ops_supersede_exit(s, t, nt, NULL, code, &out->superseded);
        if (out->superseded != NULL)
            ops_note_text(ctx, OPS_NOTE_MESSAGE, "%s", out->superseded);
        out->outcome = wait_outcome(out->exit_code);
    } else {
        out->exit_code = ORCH_EXIT_OK;
        out->outcome = "recorded";
    }
out:
    free(t);
    desired_diff_free(&d);
    reconciler_free(rec);
    if (s != NULL)
        store_close(s);
    return out->exit_code;
}

int ops_apply(const struct ops_ctx *ctx, const struct ops_apply_req *req,
              struct ops_apply_result *out)
{
    memset(out, 0, sizeof(*out));
    if (image_overrides(req, &out->problems) < 0)
        return out->exit_code = ORCH_EXIT_INVALID;
    if (req->dry_run)
        return apply_dry_run(ctx, req, out);
    return apply_record(ctx, req, out);
}

void ops_apply_result_free(struct ops_apply_result *r)
{
    orch_strv_free(&r->problems);
    orch_strv_free(&r->diags);
    for (size_t i = 0; i < r->diff.n; i++) {
        struct ops_change *c = &r->diff.v[i];
        free(c->service);
        free(c->from_image);
        free(c->to_image);
        for (size_t j = 0; j < c->n_fields; j++) {
            free(c->fields[j].path);
            free(c->fields[j].before);
            free(c->fields[j].after);
        }
        free(c->fields);
    }
    free(r->diff.v);
    free(r->diff.app);
    ops_converge_result_free(&r->converge);
    free(r->superseded);
    memset(r, 0, sizeof(*r));
}
