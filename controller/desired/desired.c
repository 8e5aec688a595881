/* The desired-state diff and its write to the store. desired_diff_compute is pure (it compares
 * canonical templates); desired_diff_load and desired_apply are the only parts that touch the
 * store, and desired_apply writes one transaction. It never talks to Docker. */
#include "desired.h"

#include <jansson.h>
#include <string.h>

#include "base/util.h"

static char *json_compact(const json_t *v)
{
    if (v == NULL)
        return NULL;
    char *s = json_dumps(v, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    char *out = orch_xstrdup(s ? s : "null");
    free(s);
    return out;
}

static void fields_push(struct desired_change *c, const char *path, const json_t *before,
                        const json_t *after)
{
    c->fields = orch_xrealloc(c->fields, (c->fields_len + 1) * sizeof(*c->fields));
    struct desired_field *f = &c->fields[c->fields_len++];
    f->path = orch_xstrdup(path);
    f->before = json_compact(before);
    f->after = json_compact(after);
}

/* Records every leaf that differs between two canonical templates. Objects are walked key by key
 * (both sides are sorted); arrays and scalars are compared whole. */
static void template_fields_diff(struct desired_change *c, const char *prefix, const json_t *a,
                                 const json_t *b)
{
    if (a != NULL && b != NULL && json_is_object(a) && json_is_object(b)) {
        const char *key;
        json_t *va;
        json_object_foreach((json_t *)a, key, va)
        {
            _cleanup_free_ char *path =
                *prefix ? orch_xasprintf("%s.%s", prefix, key) : orch_xstrdup(key);
            template_fields_diff(c, path, va, json_object_get(b, key));
        }
        json_t *vb;
        json_object_foreach((json_t *)b, key, vb)
        {
            if (json_object_get(a, key) != NULL)
                continue;
            _cleanup_free_ char *path =
                *prefix ? orch_xasprintf("%s.%s", prefix, key) : orch_xstrdup(key);
            template_fields_diff(c, path, NULL, vb);
        }
        return;
    }
    if (a != NULL && b != NULL && json_equal((json_t *)a, (json_t *)b))
        return;
    fields_push(c, prefix, a, b);
}

static void change_fields_compute(struct desired_change *c, const char *before_json,
                                  const char *after_json)
{
    json_t *a = before_json ? json_loads(before_json, 0, NULL) : NULL;
    json_t *b = after_json ? json_loads(after_json, 0, NULL) : NULL;
    template_fields_diff(c, "", a, b);
    json_decref(a);
    json_decref(b);
}

static const struct desired_current *current_find(const struct desired_current *current, size_t n,
                                                  const char *name, size_t *idx)
{
    for (size_t i = 0; i < n; i++) {
        if (strcmp(current[i].service, name) == 0) {
            *idx = i;
            return &current[i];
        }
    }
    return NULL;
}

static int clamp_int(int v, int lo, int hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* Whether the published ports of svc differ from those of the stored service JSON. */
static bool published_differs(const struct spec_service *svc, const char *json)
{
    struct spec_service old = {0};
    struct orch_error e = {0};
    if (json == NULL || spec_service_from_json(json, &old, &e) < 0)
        return false;
    bool differs = old.ports_len != svc->ports_len;
    for (size_t i = 0; !differs && i < svc->ports_len; i++)
        differs = old.ports[i].published != svc->ports[i].published ||
                  (svc->ports[i].published > 0 && old.ports[i].balance != svc->ports[i].balance);
    spec_service_free(&old);
    return differs;
}

/* Whether anything but the published ports differs (the autoscale block). */
static bool autoscale_differs(const struct spec_service *svc, const char *json)
{
    struct spec_service old = {0};
    struct orch_error e = {0};
    if (json == NULL || spec_service_from_json(json, &old, &e) < 0)
        return true;
    for (size_t i = 0; i < old.ports_len && i < svc->ports_len; i++) {
        old.ports[i].published = svc->ports[i].published;
        old.ports[i].balance = svc->ports[i].balance;
    }
    _cleanup_free_ char *a = spec_service_to_json(&old);
    _cleanup_free_ char *b = spec_service_to_json(svc);
    spec_service_free(&old);
    return strcmp(a, b) != 0;
}

int desired_diff_compute(const struct spec_app *app, const struct desired_current *current,
                         const int64_t *next_revision, size_t n, bool prune,
                         struct desired_diff *out, struct orch_error *err)
{
    struct desired_diff d = {.app = orch_xstrdup(app->app)};
    d.v = orch_xcalloc(app->services_len + n, sizeof(*d.v));

    for (size_t i = 0; i < app->services_len; i++) {
        const struct spec_service *svc = &app->services[i];
        struct desired_change *c = &d.v[d.n++];
        c->service = orch_xstrdup(svc->name);
        c->spec = svc;
        c->to_image = orch_xstrdup(svc->image);
        c->to_replicas = svc->replicas;
        size_t idx = 0;
        const struct desired_current *cur = current_find(current, n, svc->name, &idx);
        if (cur == NULL || cur->revision == 0) {
            c->kind = DESIRED_CREATE;
            c->from_revision = 0;
            c->to_revision = next_revision ? next_revision[idx] : 1;
            if (cur == NULL)
                c->to_revision = 1;
            continue;
        }
        c->from_revision = cur->revision;
        c->from_replicas = cur->replicas;
        c->from_image = orch_xstrdup(cur->image);
        if (svc->autoscale.enabled) {
            /* The autoscaler owns the count once the service exists: a re-apply of the same
             * file must not reset it, only bring it inside the (possibly new) bounds. A count
             * of 0 set by hand switches the autoscaler off (docs/autoscale.md) and stays. */
            c->to_replicas = cur->replicas == 0
                                 ? 0
                                 : clamp_int(cur->replicas, svc->autoscale.min, svc->autoscale.max);
            c->autoscale_kept = true;
        }
        char hash[65];
        spec_template_hash(svc, hash);
        if (cur->hash == NULL || strcmp(hash, cur->hash) != 0) {
            c->kind = DESIRED_REVISION;
            c->to_revision = next_revision ? next_revision[idx] : cur->revision + 1;
            _cleanup_free_ char *tmpl = spec_template_canonical(svc);
            change_fields_compute(c, cur->template_json, tmpl);
            continue;
        }
        c->to_revision = cur->revision;
        if (c->to_replicas != cur->replicas) {
            c->kind = DESIRED_SCALE;
            continue;
        }
        _cleanup_free_ char *json = spec_service_to_json(svc);
        if (cur->spec_json == NULL || strcmp(json, cur->spec_json) != 0) {
            /* Same template and count: only the autoscale block (or replicas while the
             * autoscaler owns them) differs. Stored, but no revision and no scaling. */
            c->kind = DESIRED_SCALE;
            c->published_changed = published_differs(svc, cur->spec_json);
            c->autoscale_changed = !c->published_changed || autoscale_differs(svc, cur->spec_json);
            continue;
        }
        c->kind = DESIRED_UNCHANGED;
    }

    if (prune) {
        for (size_t i = 0; i < n; i++) {
            if (spec_app_find(app, current[i].service) != NULL)
                continue;
            struct desired_change *c = &d.v[d.n++];
            c->kind = DESIRED_PRUNE;
            c->service = orch_xstrdup(current[i].service);
            c->from_revision = current[i].revision;
            c->to_revision = 0;
            c->from_replicas = current[i].replicas;
            c->from_image = orch_xstrdup(current[i].image);
        }
    }
    (void)err;
    *out = d;
    return 0;
}

bool desired_diff_has_changes(const struct desired_diff *d)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->v[i].kind != DESIRED_UNCHANGED)
            return true;
    return false;
}

void desired_diff_free(struct desired_diff *d)
{
    for (size_t i = 0; i < d->n; i++) {
        struct desired_change *c = &d->v[i];
        free(c->service);
        free(c->from_image);
        free(c->to_image);
        for (size_t j = 0; j < c->fields_len; j++) {
            free(c->fields[j].path);
            free(c->fields[j].before);
            free(c->fields[j].after);
        }
        free(c->fields);
    }
    free(d->v);
    free(d->app);
    memset(d, 0, sizeof(*d));
}

int desired_diff_load(struct store *s, const struct spec_app *app, bool prune,
                      struct desired_diff *out, struct orch_error *err)
{
    struct store_service *svcs = NULL;
    size_t n = 0;
    int rc = store_services_list(s, app->app, &svcs, &n, err);
    if (rc < 0)
        return rc;
    struct desired_current *cur = orch_xcalloc(n, sizeof(*cur));
    struct store_revision *revs = orch_xcalloc(n, sizeof(*revs));
    int64_t *next = orch_xcalloc(n, sizeof(*next));
    for (size_t i = 0; i < n && rc == 0; i++) {
        cur[i].service = svcs[i].name;
        cur[i].revision = svcs[i].revision;
        cur[i].replicas = svcs[i].replicas;
        cur[i].spec_json = svcs[i].spec_json;
        next[i] = svcs[i].revision + 1;
        if (svcs[i].revision > 0) {
            rc = store_revision_get(s, app->app, svcs[i].name, svcs[i].revision, &revs[i], err);
            if (rc < 0)
                break;
            cur[i].hash = revs[i].hash;
            cur[i].template_json = revs[i].template_json;
            cur[i].image = revs[i].image;
        }
        /* Numbers are never reused (container labels carry them): the store keeps the
         * counter, past trimmed and deleted revisions. */
        rc = store_revision_next_number(s, app->app, svcs[i].name, &next[i], err);
        if (rc < 0)
            break;
    }
    if (rc == 0)
        rc = desired_diff_compute(app, cur, next, n, prune, out, err);
    for (size_t i = 0; rc == 0 && i < out->n; i++) {
        struct desired_change *c = &out->v[i];
        if (c->kind == DESIRED_CREATE)
            rc = store_revision_next_number(s, app->app, c->service, &c->to_revision, err);
    }
    if (rc < 0 && out->v != NULL)
        desired_diff_free(out);
    for (size_t i = 0; i < n; i++)
        if (svcs[i].revision > 0)
            store_revision_free(&revs[i]);
    free(revs);
    free(next);
    free(cur);
    store_services_free(svcs, n);
    return rc;
}

static int apply_change(struct store *s, const char *app, struct desired_change *c,
                        const struct desired_apply_options *opts, struct orch_error *err)
{
    int rc = 0;
    _cleanup_free_ char *msg = NULL;
    switch (c->kind) {
    case DESIRED_UNCHANGED:
        return 0;
    case DESIRED_PRUNE:
        rc = store_service_delete(s, app, c->service, err);
        if (rc < 0)
            return rc;
        msg = orch_xasprintf("pruned: no longer in %s", opts->spec_path);
        return store_event_add(s, app, c->service, "pruned", msg, opts->now_ms, err);
    case DESIRED_CREATE:
    case DESIRED_REVISION:
    case DESIRED_SCALE:
        break;
    }

    struct store_service row = {
        .app = (char *)app,
        .name = c->service,
        .revision = c->from_revision,
        .replicas = c->to_replicas,
        .created_ms = opts->now_ms,
        .updated_ms = opts->now_ms,
    };
    _cleanup_free_ char *spec_json = spec_service_to_json(c->spec);
    row.spec_json = spec_json;

    if (c->kind == DESIRED_SCALE) {
        rc = store_service_put(s, &row, err);
        if (rc < 0)
            return rc;
        if (c->published_changed) {
            rc = store_event_add(s, app, c->service, "published", "published ports changed",
                                 opts->now_ms, err);
            if (rc < 0 || !c->autoscale_changed)
                return rc;
        }
        if (c->autoscale_changed)
            return store_event_add(s, app, c->service, "autoscale", "autoscale settings changed",
                                   opts->now_ms, err);
        msg = opts->message && *opts->message
                  ? orch_xasprintf("scaled from %d to %d (%s)", c->from_replicas, c->to_replicas,
                                   opts->message)
                  : orch_xasprintf("scaled from %d to %d", c->from_replicas, c->to_replicas);
        return store_event_add(s, app, c->service, "scaled", msg, opts->now_ms, err);
    }

    char hash[65];
    spec_template_hash(c->spec, hash);
    _cleanup_free_ char *tmpl = spec_template_canonical(c->spec);
    struct store_revision rev = {
        .app = (char *)app,
        .service = c->service,
        .hash = hash,
        .template_json = tmpl,
        .image = c->spec->image,
        .message = (char *)(opts->message ? opts->message : ""),
        .created_ms = opts->now_ms,
        .state = STORE_REV_PENDING,
    };
    /* Revisions belong to a service row: write the row first (still at its old revision),
     * then the revision, then point the row at it. */
    rc = store_service_put(s, &row, err);
    if (rc < 0)
        return rc;
    int64_t number = 0;
    rc = store_revision_add(s, &rev, &number, err);
    if (rc < 0)
        return rc;
    row.revision = number;
    c->to_revision = number;
    rc = store_service_put(s, &row, err);
    if (rc < 0)
        return rc;
    struct store_rollout ro = {
        .app = (char *)app,
        .service = c->service,
        .from_revision = c->from_revision,
        .to_revision = number,
        .state = STORE_ROLLOUT_PROGRESSING,
        .message = "",
        .started_ms = opts->now_ms,
        .updated_ms = opts->now_ms,
    };
    int64_t id = 0;
    rc = store_rollout_add(s, &ro, &id, err);
    if (rc < 0)
        return rc;
    if (c->kind == DESIRED_CREATE)
        msg = orch_xasprintf("created: revision %lld, %d replicas, image %s", (long long)number,
                             c->to_replicas, c->spec->image);
    else
        msg = orch_xasprintf("revision %lld (was %lld), image %s", (long long)number,
                             (long long)c->from_revision, c->spec->image);
    return store_event_add(s, app, c->service, "revision", msg, opts->now_ms, err);
}

int desired_apply(struct store *s, const struct spec_app *app, bool prune,
                  const struct desired_apply_options *opts, struct desired_diff *d,
                  struct orch_error *err)
{
    memset(d, 0, sizeof(*d));
    int rc = store_begin(s, err);
    if (rc < 0)
        return rc;
    /* The diff is computed inside the write transaction, so a command that changed the
     * service since we last looked is never silently undone. */
    rc = desired_diff_load(s, app, prune, d, err);
    if (rc == 0 && !desired_diff_has_changes(d)) {
        store_rollback(s);
        return 0;
    }
    if (rc == 0)
        rc = store_app_put(s, app->app, opts->spec_path ? opts->spec_path : "", opts->now_ms, err);
    for (size_t i = 0; rc == 0 && i < d->n; i++)
        rc = apply_change(s, app->app, &d->v[i], opts, err);
    if (rc == 0)
        rc = store_commit(s, err);
    if (rc < 0) {
        store_rollback(s);
        return orch_wrap(err, "apply %s", app->app);
    }
    return 0;
}
