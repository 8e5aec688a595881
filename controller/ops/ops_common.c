/* What every operation shares: notes to the caller, errors as exit codes, opening the state and
 * resolving [APP/]SERVICE against it. Prints nothing; the caller renders what it is told. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ops_internal.h"

void ops_note_text(const struct ops_ctx *ctx, enum ops_note_kind kind, const char *fmt, ...)
{
    if (ctx->note == NULL)
        return;
    struct orch_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    orch_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    struct ops_note n = {.kind = kind, .text = b.data ? b.data : ""};
    ctx->note(ctx->note_arg, &n);
    orch_buf_free(&b);
}

void ops_note_simple(const struct ops_ctx *ctx, enum ops_note_kind kind)
{
    if (ctx->note == NULL)
        return;
    struct ops_note n = {.kind = kind};
    ctx->note(ctx->note_arg, &n);
}

int ops_interrupted(const struct ops_ctx *ctx)
{
    return ctx->interrupt != NULL ? (int)*ctx->interrupt : 0;
}

int ops_error_exit(const struct orch_error *err)
{
    if (err->code == ORCH_E_OK)
        return ORCH_EXIT_FAILED;
    return (int)orch_errc_exit(err->code);
}

const char *ops_error_text(const struct orch_error *err)
{
    return err->msg[0] ? err->msg : orch_errc_name(err->code);
}

int ops_outcome_exit(const char *outcome)
{
    if (outcome == NULL)
        return ORCH_EXIT_FAILED;
    if (strcmp(outcome, "converged") == 0)
        return ORCH_EXIT_OK;
    if (strcmp(outcome, "rolled_back") == 0)
        return ORCH_EXIT_ROLLED_BACK;
    if (strcmp(outcome, "timeout") == 0)
        return ORCH_EXIT_TIMEOUT;
    if (strcmp(outcome, "superseded") == 0)
        return ORCH_EXIT_SUPERSEDED;
    return ORCH_EXIT_FAILED;
}

const char *ops_change_name(enum ops_change_kind kind)
{
    switch (kind) {
    case OPS_CHANGE_UNCHANGED:
        return "unchanged";
    case OPS_CHANGE_CREATE:
        return "created";
    case OPS_CHANGE_REVISION:
        return "revision";
    case OPS_CHANGE_SCALE:
        return "scaled";
    case OPS_CHANGE_PRUNE:
        return "pruned";
    }
    return "?";
}

char *ops_state_dir(const char *explicit_dir)
{
    return store_default_dir(explicit_dir);
}

int ops_state_open(const struct ops_ctx *ctx, struct store **out, struct orch_error *err)
{
    return store_open(ctx->state_dir, out, err);
}

void ops_state_close(struct store *s)
{
    if (s != NULL)
        store_close(s);
}

int ops_store_open(const struct ops_ctx *ctx, bool write, struct store **out,
                   struct orch_error *err)
{
    *out = NULL;
    if (write)
        return store_open(ctx->state_dir, out, err);
    int rc = store_open_readonly(ctx->state_dir, out, err);
    if (rc == -ORCH_E_NOTFOUND) {
        orch_error_clear(err);
        *out = NULL;
        return 0;
    }
    return rc;
}

/* APP/SERVICE: both must be names and the service must exist. */
static int resolve_qualified(struct store *s, const char *ref, const char *slash, char **app_out,
                             char **svc_out, struct orch_error *err)
{
    _cleanup_free_ char *app = orch_xstrndup(ref, (size_t)(slash - ref));
    const char *svc = slash + 1;
    if (!orch_is_dns_label(app, SPEC_NAME_MAX) || !orch_is_dns_label(svc, SPEC_NAME_MAX))
        return orch_fail(err, ORCH_E_USAGE, 0, "'%s' is not APP/SERVICE", ref);
    if (s == NULL)
        return orch_fail(err, ORCH_E_NOTFOUND, 0, "no service %s/%s", app, svc);
    struct store_service row;
    int rc = store_service_get(s, app, svc, &row, err);
    if (rc == -ORCH_E_NOTFOUND)
        return orch_fail(err, ORCH_E_NOTFOUND, 0, "no service %s/%s", app, svc);
    if (rc < 0)
        return rc;
    store_service_free(&row);
    *app_out = orch_steal(&app);
    *svc_out = orch_xstrdup(svc);
    return 0;
}

int ops_resolve_in(struct store *s, const char *ref, char **app_out, char **svc_out,
                   struct orch_error *err)
{
    const char *slash = strchr(ref, '/');
    if (slash != NULL)
        return resolve_qualified(s, ref, slash, app_out, svc_out, err);
    if (!orch_is_dns_label(ref, SPEC_NAME_MAX))
        return orch_fail(err, ORCH_E_USAGE, 0, "'%s' is not a service name", ref);
    struct store_service *v = NULL;
    size_t n = 0;
    if (s != NULL) {
        int rc = store_services_list(s, NULL, &v, &n, err);
        if (rc < 0)
            return rc;
    }
    size_t found = 0, idx = 0;
    struct orch_buf cands = {0};
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].name, ref) != 0)
            continue;
        orch_buf_printf(&cands, "%s%s/%s", found ? ", " : "", v[i].app, v[i].name);
        found++;
        idx = i;
    }
    int rc = 0;
    if (found == 0) {
        rc = orch_fail(err, ORCH_E_NOTFOUND, 0, "no service '%s'", ref);
    } else if (found > 1) {
        rc = orch_fail(err, ORCH_E_USAGE, 0, "service '%s' is in %zu apps; name one of: %s", ref,
                       found, cands.data);
    } else {
        *app_out = orch_xstrdup(v[idx].app);
        *svc_out = orch_xstrdup(v[idx].name);
    }
    orch_buf_free(&cands);
    store_services_free(v, n);
    return rc;
}

int ops_open_service(const struct ops_ctx *ctx, const char *ref, bool write, struct store **s,
                     char **app, char **svc, struct orch_error *err)
{
    int rc = ops_store_open(ctx, write, s, err);
    if (rc == 0)
        rc = ops_resolve_in(*s, ref, app, svc, err);
    if (rc < 0 && *s != NULL) {
        store_close(*s);
        *s = NULL;
    }
    return rc;
}

int ops_service_resolve(const struct ops_ctx *ctx, const char *ref, char **app, char **svc,
                        struct orch_error *err)
{
    struct store *s = NULL;
    int rc = ops_open_service(ctx, ref, false, &s, app, svc, err);
    if (s != NULL)
        store_close(s);
    return rc;
}

void ops_rollout_end_set(struct ops_rollout_end *out, const struct store_rollout *ro)
{
    out->have = true;
    out->to_revision = ro->to_revision;
    out->state = store_rollout_state_name(ro->state);
    free(out->message);
    out->message = orch_xstrdup(ro->message ? ro->message : "");
    out->updated_ms = ro->updated_ms;
}

void ops_rollout_end_free(struct ops_rollout_end *r)
{
    free(r->message);
    memset(r, 0, sizeof(*r));
}

int ops_rollout_exit(enum store_rollout_state st)
{
    switch (st) {
    case STORE_ROLLOUT_COMPLETE:
        return ORCH_EXIT_OK;
    case STORE_ROLLOUT_ROLLED_BACK:
        return ORCH_EXIT_ROLLED_BACK;
    case STORE_ROLLOUT_FAILED:
        return ORCH_EXIT_FAILED;
    case STORE_ROLLOUT_PROGRESSING:
        break;
    }
    return ORCH_EXIT_TIMEOUT;
}

void ops_converge_result_free(struct ops_converge_result *r)
{
    free(r->app);
    free(r->message);
    memset(r, 0, sizeof(*r));
}
