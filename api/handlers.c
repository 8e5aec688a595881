/* The routes' work: parse what the request carries, make ONE ops call, render its result with
 * the ops JSON renderers (the CLI's `-o json`), map its error to an HTTP status. Runs on a
 * thread-pool thread: it touches no loop, no connection, no global but the writers' lock. It
 * never converges in this process: with no daemon driving the state dir it refuses to change
 * anything (an API call must not hold a thread for a whole rollout). */
#include "handlers.h"

#include <jansson.h>
#include <stdatomic.h>
#include <openssl/sha.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "ops/ops.h"
#include "ops/ops_json.h"
#include "spec/spec.h"

/* The longest ?wait= an apply may ask for. */
#define API_MAX_WAIT_MS (30 * 60 * 1000)
/* An apply with ?wait holds a thread-pool thread until the rollout ends (ops_wait polls the
 * store); libuv's pool has 4 threads, so at most 2 may wait and the other calls keep 2. */
#define API_MAX_WAITING 2
static atomic_int api_waiting;

void api_call_free(struct api_call *c)
{
    free(c->query);
    free(c->body);
    free(c->if_match);
    free(c->resp_body);
    auth_identity_free(&c->identity);
}

int api_call_problem(struct api_call *c, int status, const char *detail)
{
    free(c->resp_body);
    c->resp_body = api_problem_json(status, NULL, detail, NULL);
    c->resp_type = "application/problem+json";
    c->status = status;
    if (c->outcome[0] == '\0')
        snprintf(c->outcome, sizeof(c->outcome), "error %d", status);
    return status;
}

static int reply_json(struct api_call *c, int status, char *body)
{
    free(c->resp_body);
    c->resp_body = body;
    c->resp_type = "application/json";
    c->status = status;
    return status;
}

/* The HTTP status of an ops failure. */
static int status_of_error(const struct orch_error *err)
{
    switch (err->code) {
    case ORCH_E_NOTFOUND:
        return 404;
    case ORCH_E_USAGE:
    case ORCH_E_INVALID:
        return 422;
    case ORCH_E_ENV:
    case ORCH_E_LOCKED:
    case ORCH_E_IO:
    case ORCH_E_DB:
    case ORCH_E_TRANSIENT:
        return 503;
    case ORCH_E_TIMEOUT:
        return 504;
    case ORCH_E_NOTIMPL:
        return 501;
    default:
        return 500;
    }
}

static int fail_ops(struct api_call *c, const struct orch_error *err)
{
    return api_call_problem(c, status_of_error(err), ops_error_text(err));
}

static struct ops_ctx ctx_of(const struct api_call *c)
{
    struct ops_ctx ctx = {.state_dir = c->state_dir, .actor = c->identity.name};
    return ctx;
}

/* The app's services as ops_get lists them (rows borrowed from all; *out new array). A service
 * whose delete is still being carried out (rollout state "deleting") is gone for the API: an app
 * left with only those answers 404, as right after its DELETE. */
static size_t rows_of_app(const struct ops_get_result *all, const char *app,
                          struct ops_service_row **out)
{
    *out = calloc(all->n ? all->n : 1, sizeof(**out));
    size_t n = 0;
    for (size_t i = 0; i < all->n; i++)
        if (strcmp(all->v[i].app, app) == 0 &&
            !(all->v[i].rollout_state && strcmp(all->v[i].rollout_state, "deleting") == 0))
            (*out)[n++] = all->v[i];
    return n;
}

/* A strong ETag over what a writer changes: each service's revision and desired count. */
static void etag_of(const struct ops_service_row *v, size_t n, char *out, size_t out_len)
{
    struct orch_buf b = {0};
    for (size_t i = 0; i < n; i++)
        orch_buf_printf(&b, "%s:%lld:%d;", v[i].service, (long long)v[i].revision, v[i].desired);
    unsigned char d[SHA256_DIGEST_LENGTH];
    SHA256((const unsigned char *)(b.data ? b.data : ""), b.len, d);
    orch_buf_free(&b);
    char hex[33];
    for (int i = 0; i < 16; i++)
        snprintf(hex + 2 * i, 3, "%02x", d[i]);
    snprintf(out, out_len, "\"%s\"", hex);
}

/* The app's current ETag ("" when the app has no service); -1 with the response filled on a
 * failure. */
static int current_etag(struct api_call *c, char *etag, size_t len)
{
    struct ops_ctx ctx = ctx_of(c);
    struct ops_get_result all = {0};
    etag[0] = '\0';
    /* the ETag covers only what the store holds: the engine is not asked */
    if (ops_get_app(&ctx, c->app, false, &all) != 0) {
        fail_ops(c, &all.err);
        ops_get_result_free(&all);
        return -1;
    }
    struct ops_service_row *rows;
    size_t n = rows_of_app(&all, c->app, &rows);
    if (n > 0)
        etag_of(rows, n, etag, len);
    free(rows);
    ops_get_result_free(&all);
    return 0;
}

/* If-Match against the app's ETag, under the writers' lock. 0: go on. */
static int check_if_match(struct api_call *c)
{
    if (c->if_match == NULL)
        return 0;
    char etag[80];
    if (current_etag(c, etag, sizeof(etag)) < 0)
        return -1;
    if (!api_if_match(c->if_match, strlen(c->if_match), etag[0] ? etag : NULL)) {
        snprintf(c->outcome, sizeof(c->outcome), "precondition failed");
        api_call_problem(c, 412,
                         etag[0] ? "If-Match does not match the app's current ETag"
                                 : "If-Match names an app that does not exist");
        if (etag[0])
            snprintf(c->etag, sizeof(c->etag), "%s", etag);
        return -1;
    }
    return 0;
}

/* Changes are recorded for the daemon to converge; this process never drives them. */
static int refuse_embedded(struct api_call *c)
{
    struct ops_ctx ctx = ctx_of(c);
    if (ops_who_drives(&ctx, NULL) == OPS_DRIVER_EMBEDDED)
        return api_call_problem(c, 503, "no orch daemon drives this state dir"), -1;
    return 0;
}

/* ---- reads ---- */

static void get_apps(struct api_call *c)
{
    struct ops_ctx ctx = ctx_of(c);
    struct ops_get_result all = {0};
    if (ops_get(&ctx, &all) != 0) {
        fail_ops(c, &all.err);
        ops_get_result_free(&all);
        return;
    }
    /* An identity limited to some apps sees only those. */
    struct ops_service_row *keep = calloc(all.n ? all.n : 1, sizeof(*keep));
    size_t n = 0;
    for (size_t i = 0; i < all.n; i++)
        if (auth_app_in_scope(&c->identity, all.v[i].app))
            keep[n++] = all.v[i];
    struct ops_get_result view = all;
    view.v = keep;
    view.n = n;
    reply_json(c, 200, ops_get_json(&view));
    free(keep);
    ops_get_result_free(&all);
}

static void get_app(struct api_call *c)
{
    struct ops_ctx ctx = ctx_of(c);
    struct ops_get_result all = {0};
    if (ops_get_app(&ctx, c->app, true, &all) != 0) {
        fail_ops(c, &all.err);
        ops_get_result_free(&all);
        return;
    }
    struct ops_service_row *rows;
    size_t n = rows_of_app(&all, c->app, &rows);
    if (n == 0) {
        api_call_problem(c, 404, "no such app");
    } else {
        struct ops_get_result view = all;
        view.v = rows;
        view.n = n;
        etag_of(rows, n, c->etag, sizeof(c->etag));
        reply_json(c, 200, ops_get_json(&view));
    }
    free(rows);
    ops_get_result_free(&all);
}

static void get_service(struct api_call *c)
{
    struct ops_ctx ctx = ctx_of(c);
    char ref[2 * API_NAME_MAX + 2];
    snprintf(ref, sizeof(ref), "%s/%s", c->app, c->svc);
    struct ops_status_result r = {0};
    if (ops_status(&ctx, ref, &r) != 0)
        fail_ops(c, &r.err);
    else
        reply_json(c, 200, ops_status_json(&r));
    ops_status_result_free(&r);
}

static void get_revisions(struct api_call *c)
{
    struct ops_ctx ctx = ctx_of(c);
    char ref[2 * API_NAME_MAX + 2];
    snprintf(ref, sizeof(ref), "%s/%s", c->app, c->svc);
    struct ops_history_result r = {0};
    if (ops_rollout_history(&ctx, ref, &r) != 0)
        fail_ops(c, &r.err);
    else
        reply_json(c, 200, ops_history_json(&r));
    ops_history_result_free(&r);
}

/* ---- writes (under the writers' lock) ---- */

static int spec_problem(struct api_call *c, const struct spec_diags *d)
{
    char *text = spec_diags_format(d, "spec");
    struct orch_strv lines = {0};
    for (char *save = NULL, *l = strtok_r(text, "\n", &save); l; l = strtok_r(NULL, "\n", &save))
        orch_strv_push(&lines, l);
    free(c->resp_body);
    c->resp_body =
        api_problem_json(422, "Invalid spec", "the spec is invalid: nothing was changed", &lines);
    c->resp_type = "application/problem+json";
    c->status = 422;
    snprintf(c->outcome, sizeof(c->outcome), "invalid spec");
    orch_strv_free(&lines);
    free(text);
    return 422;
}

static void put_app_spec(struct api_call *c, int dry, int prune, int has_wait, int64_t wait_ms);

static void put_app(struct api_call *c)
{
    int dry = api_query_bool(c->query, c->query_len, "dry_run");
    int prune = api_query_bool(c->query, c->query_len, "prune");
    char wait_s[32];
    int has_wait = api_query_get(c->query, c->query_len, "wait", wait_s, sizeof(wait_s));
    int64_t wait_ms = 0;
    if (dry < 0 || prune < 0 || has_wait < 0 ||
        (has_wait == 1 && (spec_parse_duration(wait_s, &wait_ms) < 0 || wait_ms <= 0 ||
                           wait_ms > API_MAX_WAIT_MS))) {
        api_call_problem(c, 400, "dry_run and prune take true or false; wait a duration up to 30m");
        return;
    }
    if (has_wait == 1 && dry != 1) {
        if (atomic_fetch_add(&api_waiting, 1) >= API_MAX_WAITING) {
            atomic_fetch_sub(&api_waiting, 1);
            api_call_problem(c, 503, "too many applies are waiting; retry, or apply without wait");
            return;
        }
    } else {
        has_wait = has_wait == 1 && dry == 1 ? 0 : has_wait;
    }
    put_app_spec(c, dry, prune, has_wait, wait_ms);
    if (has_wait == 1)
        atomic_fetch_sub(&api_waiting, 1);
}

static void put_app_spec(struct api_call *c, int dry, int prune, int has_wait, int64_t wait_ms)
{
    struct spec_parse_options opts = {.file = "spec", .base_dir = c->state_dir};
    struct spec_app spec = {0};
    struct spec_diags diags = {0};
    struct orch_error err = {0};
    if (spec_parse(c->body, c->body_len, &opts, &spec, &diags, &err) < 0) {
        spec_problem(c, &diags);
        spec_diags_free(&diags);
        return;
    }
    if (strcmp(spec.app, c->app) != 0) {
        char d[256];
        snprintf(d, sizeof(d), "the spec declares app '%s', the path names '%s'", spec.app, c->app);
        api_call_problem(c, 422, d);
        spec_app_free(&spec);
        return;
    }
    pthread_mutex_lock(c->write_lock);
    if (check_if_match(c) == 0 && (dry || refuse_embedded(c) == 0)) {
        struct ops_ctx ctx = ctx_of(c);
        char msg[400];
        snprintf(msg, sizeof(msg), "api PUT by %s", c->identity.name);
        struct ops_apply_req req = {.spec = &spec,
                                    .spec_path = "api",
                                    .prune = prune == 1,
                                    .dry_run = dry == 1,
                                    .wait = has_wait == 1,
                                    .timeout_ms = wait_ms,
                                    .message = msg};
        struct ops_apply_result r = {0};
        ops_apply(&ctx, &req, &r);
        if (r.err.code != ORCH_E_OK && !r.recorded && !dry) {
            fail_ops(c, &r.err);
        } else if (r.problems.n > 0) {
            api_call_problem(c, 422, r.problems.v[0]);
        } else {
            int status = dry || has_wait == 1 || !r.recorded ? 200 : 202;
            snprintf(c->outcome, sizeof(c->outcome), "%s exit=%d",
                     r.outcome ? r.outcome : (dry ? "dry-run" : "error"), r.exit_code);
            reply_json(c, status, ops_apply_json(&r));
            if (status == 202)
                snprintf(c->location, sizeof(c->location), "/v1/apps/%s", c->app);
            if (!dry)
                current_etag(c, c->etag, sizeof(c->etag));
        }
        ops_apply_result_free(&r);
    }
    pthread_mutex_unlock(c->write_lock);
    spec_app_free(&spec);
}

static void delete_app(struct api_call *c)
{
    pthread_mutex_lock(c->write_lock);
    if (check_if_match(c) == 0 && refuse_embedded(c) == 0) {
        struct ops_ctx ctx = ctx_of(c);
        struct ops_delete_req req = {.app = c->app};
        struct ops_delete_result r = {0};
        if (ops_delete(&ctx, &req, &r) != 0 && r.services.n == 0) {
            fail_ops(c, &r.err);
        } else {
            json_t *svcs = json_array();
            for (size_t i = 0; i < r.services.n; i++)
                json_array_append_new(svcs, json_string(r.services.v[i]));
            json_t *o = json_pack("{s:s, s:o, s:i}", "app", c->app, "deleted", svcs, "exit_code",
                                  r.exit_code);
            reply_json(c, 202, json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER));
            json_decref(o);
            snprintf(c->outcome, sizeof(c->outcome), "deleted exit=%d", r.exit_code);
        }
        ops_delete_result_free(&r);
    }
    pthread_mutex_unlock(c->write_lock);
}

/* The JSON body of scale and rollback: an object with at most the one integer key. -1 when
 * malformed (the response filled). */
static int body_int(struct api_call *c, const char *key, bool required, int64_t *out)
{
    *out = 0;
    if (c->body_len == 0 && !required)
        return 0;
    json_error_t je;
    json_t *o = json_loadb(c->body, c->body_len, JSON_REJECT_DUPLICATES, &je);
    json_t *v = json_is_object(o) ? json_object_get(o, key) : NULL;
    bool ok = json_is_object(o) && json_object_size(o) <= 1 &&
              (v ? json_is_integer(v) : (!required && json_object_size(o) == 0));
    if (ok && v)
        *out = json_integer_value(v);
    json_decref(o);
    if (!ok) {
        char d[128];
        snprintf(d, sizeof(d), "the body must be a JSON object {\"%s\": INTEGER}%s", key,
                 required ? "" : " or empty");
        api_call_problem(c, 422, d);
        return -1;
    }
    return 0;
}

static void scale(struct api_call *c)
{
    int64_t n;
    if (body_int(c, "replicas", true, &n) < 0)
        return;
    if (n < 0 || n > SPEC_MAX_REPLICAS) {
        api_call_problem(c, 422, "replicas must be 0..1000");
        return;
    }
    pthread_mutex_lock(c->write_lock);
    if (refuse_embedded(c) == 0) {
        struct ops_ctx ctx = ctx_of(c);
        char ref[2 * API_NAME_MAX + 2];
        snprintf(ref, sizeof(ref), "%s/%s", c->app, c->svc);
        struct ops_scale_item item = {.ref = ref, .replicas = (int)n};
        struct ops_scale_result r = {0};
        if (ops_scale(&ctx, &item, 1, &r) != 0 && r.n == 0) {
            fail_ops(c, &r.err);
        } else {
            json_t *o = json_pack("{s:s, s:s, s:i, s:i}", "app", c->app, "service", c->svc, "from",
                                  r.n ? r.v[0].from : 0, "replicas", r.n ? r.v[0].to : (int)n);
            reply_json(c, 202, json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER));
            json_decref(o);
            snprintf(c->location, sizeof(c->location), "/v1/apps/%s/services/%s", c->app, c->svc);
            snprintf(c->outcome, sizeof(c->outcome), "scaled to %d", (int)n);
        }
        ops_scale_result_free(&r);
    }
    pthread_mutex_unlock(c->write_lock);
}

static void rollback(struct api_call *c)
{
    int64_t to;
    if (body_int(c, "to_revision", false, &to) < 0)
        return;
    if (to < 0) {
        api_call_problem(c, 422, "to_revision must be a revision number");
        return;
    }
    pthread_mutex_lock(c->write_lock);
    if (refuse_embedded(c) == 0) {
        struct ops_ctx ctx = ctx_of(c);
        char ref[2 * API_NAME_MAX + 2];
        snprintf(ref, sizeof(ref), "%s/%s", c->app, c->svc);
        struct ops_undo_req req = {.ref = ref, .to_revision = to};
        struct ops_undo_result r = {0};
        ops_rollout_undo(&ctx, &req, &r);
        if (r.follow.err.code != ORCH_E_OK && r.to_revision == 0) {
            fail_ops(c, &r.follow.err);
        } else {
            json_t *o = json_pack("{s:s, s:s, s:I, s:I, s:s}", "app", c->app, "service", c->svc,
                                  "from_revision", (json_int_t)r.from_revision, "to_revision",
                                  (json_int_t)r.to_revision, "image", r.image ? r.image : "");
            reply_json(c, 202, json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER));
            json_decref(o);
            snprintf(c->location, sizeof(c->location), "/v1/apps/%s/services/%s", c->app, c->svc);
            snprintf(c->outcome, sizeof(c->outcome), "to revision %lld", (long long)r.to_revision);
        }
        ops_undo_result_free(&r);
    }
    pthread_mutex_unlock(c->write_lock);
}

void api_call_run(struct api_call *c)
{
    switch (c->route->id) {
    case API_ROUTE_APPS:
        get_apps(c);
        break;
    case API_ROUTE_APP_GET:
        get_app(c);
        break;
    case API_ROUTE_APP_PUT:
        put_app(c);
        break;
    case API_ROUTE_APP_DELETE:
        delete_app(c);
        break;
    case API_ROUTE_SERVICE:
        get_service(c);
        break;
    case API_ROUTE_SCALE:
        scale(c);
        break;
    case API_ROUTE_REVISIONS:
        get_revisions(c);
        break;
    case API_ROUTE_ROLLBACK:
        rollback(c);
        break;
    default:
        api_call_problem(c, 404, "no such route");
        break;
    }
}
