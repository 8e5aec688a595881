/* The spec's schema: struct ytree -> struct spec_app with every default filled in, every
 * error found reported as a positioned diagnostic (never only the first). Owns the rules of
 * docs/spec.md and the spec decisions; it reads no files and the YAML syntax belongs to
 * yaml_tree.c. Aliases are followed under a visit budget so an alias bomb stays cheap. This
 * file walks the document and a service's keys; each section has its own validate_*.c. */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "spec/validate_internal.h"
#include "spec/yaml_tree.h"

/* Node visits allowed beyond twice the node count: only aliases can use them up. */
#define SPEC_ALIAS_BUDGET 100000u

static void check_service(struct vctx *v, const struct ynode *n, const char *path,
                          struct spec_service *svc, const struct ynode ***dep_nodes)
{
    if (!v_visit(v, n))
        return;
    if (n->kind != YNODE_MAP) {
        v_type_err(v, n, path, "a mapping with at least 'image'");
        return;
    }
    enum {
        F_IMAGE,
        F_REPLICAS,
        F_COMMAND,
        F_ENTRYPOINT,
        F_ENV,
        F_LABELS,
        F_PORTS,
        F_HEALTH,
        F_UPDATE,
        F_AUTOSCALE,
        F_RESOURCES,
        F_VOLUMES,
        F_DEPENDS,
        F_N
    };
    static const char *const names[] = {
        "image",  "replicas", "command",   "entrypoint", "env",     "labels",    "ports",
        "health", "update",   "autoscale", "resources",  "volumes", "depends_on"};
    const struct ynode *keys[F_N], *vals[F_N];
    v_map_fields(v, n, path, names, F_N, keys, vals);
    struct vpath p;
#define FIELD_PATH(f) (p = v_path_key(path, names[f], strlen(names[f])), p.s)
    if (vals[F_IMAGE] == NULL) {
        v_missing(v, n, path, "image");
    } else if (v_get_str(v, vals[F_IMAGE], FIELD_PATH(F_IMAGE), &svc->image)) {
        const char *why = NULL;
        if (svc->image[0] == '\0')
            v_err(v, vals[F_IMAGE], p.s, "must not be empty");
        else if (!spec_image_valid(svc->image, &why))
            v_err(v, vals[F_IMAGE], p.s, "'%s' is not a valid image reference: %s",
                  v_show(vals[F_IMAGE]).s, why);
    }
    if (vals[F_REPLICAS] != NULL) {
        long long x;
        if (v_get_int(v, vals[F_REPLICAS], FIELD_PATH(F_REPLICAS), 0, SPEC_MAX_REPLICAS, &x))
            svc->replicas = (int)x;
    }
    if (vals[F_COMMAND] != NULL)
        svc->has_command =
            v_get_argv(v, vals[F_COMMAND], FIELD_PATH(F_COMMAND), &svc->command, &svc->command_len);
    if (vals[F_ENTRYPOINT] != NULL)
        svc->has_entrypoint = v_get_argv(v, vals[F_ENTRYPOINT], FIELD_PATH(F_ENTRYPOINT),
                                         &svc->entrypoint, &svc->entrypoint_len);
    if (vals[F_ENV] != NULL)
        v_check_kv(v, vals[F_ENV], FIELD_PATH(F_ENV), KV_ENV, &svc->env, &svc->env_len);
    if (vals[F_LABELS] != NULL)
        v_check_kv(v, vals[F_LABELS], FIELD_PATH(F_LABELS), KV_LABELS, &svc->labels,
                   &svc->labels_len);
    if (vals[F_PORTS] != NULL)
        v_check_ports(v, vals[F_PORTS], FIELD_PATH(F_PORTS), svc);
    if (vals[F_HEALTH] != NULL)
        v_check_health(v, vals[F_HEALTH], FIELD_PATH(F_HEALTH), svc);
    if (vals[F_UPDATE] != NULL)
        v_check_update(v, vals[F_UPDATE], FIELD_PATH(F_UPDATE), &svc->update);
    if (vals[F_AUTOSCALE] != NULL)
        v_check_autoscale(v, vals[F_AUTOSCALE], FIELD_PATH(F_AUTOSCALE), &svc->autoscale);
    if (vals[F_RESOURCES] != NULL)
        v_check_resources(v, vals[F_RESOURCES], FIELD_PATH(F_RESOURCES), &svc->resources);
    if (vals[F_VOLUMES] != NULL)
        v_check_volumes(v, vals[F_VOLUMES], FIELD_PATH(F_VOLUMES), svc);
    if (vals[F_DEPENDS] != NULL)
        v_check_depends_on(v, vals[F_DEPENDS], FIELD_PATH(F_DEPENDS), svc, dep_nodes);
#undef FIELD_PATH
}

/* Fills the defaults of spec.h into a fresh service before its keys are read. */
static void service_defaults(struct spec_service *svc)
{
    svc->replicas = 1;
    svc->health.kind = SPEC_PROBE_NONE;
    svc->health.port_index = -1;
    svc->health.interval_ms = 2000;
    svc->health.timeout_ms = 1000;
    svc->health.retries = 3;
    svc->health.start_period_ms = 0;
    svc->health.start_interval_ms = SPEC_START_INTERVAL_MS;
    svc->update.strategy = SPEC_STRATEGY_ROLLING;
    svc->update.max_surge = (struct spec_scalar_or_pct){1, false};
    svc->update.max_unavailable = (struct spec_scalar_or_pct){0, false};
    svc->update.min_ready_ms = 0;
    svc->update.deadline_ms = 120000;
    svc->update.auto_rollback = true;
    svc->update.stop_grace_ms = 10000;
    svc->depends_on = orch_xcalloc(1, sizeof(char *));
}

/* --- the document ------------------------------------------------------------------------ */

static void report_dup_service(struct vctx *v, const char *path, const struct keyed *first,
                               const struct keyed *dup)
{
    v_err(v, dup->node, path, "duplicate service '%s' (first at line %d)",
          v_show_text(dup->key, dup->len).s, first->node->line);
}

static void check_services(struct vctx *v, const struct ynode *n, struct spec_app *app)
{
    if (!v_visit(v, n))
        return;
    if (n->kind != YNODE_MAP) {
        v_type_err(v, n, "services", "a mapping of service names to services");
        return;
    }
    if (n->n == 0) {
        v_err(v, n, "services", "must declare at least one service");
        return;
    }
    /* Keys: scalars, unique (reported as duplicate services). */
    struct keyed *k = orch_xcalloc(n->n, sizeof(*k));
    bool *bad = orch_xcalloc(n->n, sizeof(bool));
    size_t nk = 0;
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *key = n->pairs[i].key;
        if (!v_visit(v, key)) {
            bad[i] = true;
            continue;
        }
        if (key->kind != YNODE_SCALAR) {
            v_err(v, key, "services", "service names must be strings, got %s",
                  v_ytype_name(v_ytype_of(key)));
            bad[i] = true;
            continue;
        }
        k[nk++] = (struct keyed){key->text, key->len, i, key};
    }
    bool *dup = v_find_dups(v, "services", k, nk, n->n, report_dup_service);
    free(k);

    app->services = orch_xcalloc(n->n, sizeof(*app->services));
    v->dep_nodes = orch_xcalloc(n->n, sizeof(*v->dep_nodes));
    for (size_t i = 0; i < n->n && !v_stopped(v); i++) {
        if (bad[i] || dup[i])
            continue;
        const struct ynode *key = n->pairs[i].key;
        struct vpath path = v_path_key("services", key->text, key->len);
        if (!v_text_ok(v, key, "services"))
            continue;
        if (!orch_is_dns_label(key->text, SPEC_NAME_MAX))
            v_err(v, key, "services", "'%s' is not a valid service name: " NAME_RULE,
                  v_show(key).s);
        size_t si = app->services_len++;
        struct spec_service *svc = &app->services[si];
        service_defaults(svc);
        svc->name = orch_xstrndup(key->text, key->len);
        svc->line = key->line;
        check_service(v, n->pairs[i].value, path.s, svc, &v->dep_nodes[si]);
    }
    free(bad);
    free(dup);
    if (!v_stopped(v))
        v_check_dependencies(v, app, v->dep_nodes);
    if (!v_stopped(v))
        v_check_published(v, app);
}

static void check_root(struct vctx *v, const struct ynode *root, struct spec_app *app)
{
    if (root == NULL || (root->kind == YNODE_SCALAR && v_ytype_of(root) == YT_NULL)) {
        diag_add(&v->sink, 1, 1, "empty spec: expected a mapping with 'app' and 'services'");
        return;
    }
    if (!v_visit(v, root))
        return;
    if (root->kind != YNODE_MAP) {
        diag_add(&v->sink, 1, 1, "a spec is a mapping with 'app' and 'services', got %s",
                 v_ytype_name(v_ytype_of(root)));
        return;
    }
    static const char *const names[] = {"version", "app", "services"};
    const struct ynode *keys[3], *vals[3];
    v_map_fields(v, root, "", names, 3, keys, vals);
    app->version = 1;
    if (vals[0] != NULL) {
        long long x;
        if (v_get_int(v, vals[0], "version", 0, 1000000, &x) && x != 1)
            v_err(v, vals[0], "version", "unsupported spec version %lld; this orch reads version 1",
                  x);
    }
    if (vals[1] == NULL) {
        v_missing(v, root, "", "app");
    } else if (v_get_str(v, vals[1], "app", &app->app) &&
               !orch_is_dns_label(app->app, SPEC_NAME_MAX)) {
        v_err(v, vals[1], "app", "'%s' is not a valid app name: " NAME_RULE, v_show(vals[1]).s);
    }
    if (vals[2] == NULL)
        v_missing(v, root, "", "services");
    else
        check_services(v, vals[2], app);
}

int spec_parse(const char *text, size_t len, const struct spec_parse_options *opts,
               struct spec_app *out, struct spec_diags *diags, struct orch_error *err)
{
    static const struct spec_parse_options no_opts = {.file = "-", .base_dir = NULL};
    if (opts == NULL)
        opts = &no_opts;
    if (text == NULL)
        text = "", len = 0;
    const char *file = opts->file ? opts->file : "-";
    memset(out, 0, sizeof(*out));
    memset(diags, 0, sizeof(*diags));
    struct vctx v = {.sink = {.diags = diags}, .opts = opts};
    struct spec_app app = {0};
    if (len > SPEC_MAX_INPUT) {
        diag_add(&v.sink, 1, 1, "spec is too large: %zu bytes, the limit is %u MiB", len,
                 SPEC_MAX_INPUT >> 20);
    } else {
        struct ytree tree;
        struct ytree_error yerr;
        if (ytree_parse(text, len, &tree, &yerr) < 0) {
            diag_add(&v.sink, yerr.line, yerr.column, "%s", yerr.msg);
        } else {
            v.budget = 2 * tree.all_len + SPEC_ALIAS_BUDGET;
            check_root(&v, tree.root, &app);
            if (v.dep_nodes != NULL) {
                for (size_t i = 0; i < app.services_len; i++)
                    free(v.dep_nodes[i]);
                free(v.dep_nodes);
            }
        }
        ytree_free(&tree);
    }
    if (diags->n == 0) {
        *out = app;
        return 0;
    }
    spec_app_free(&app);
    diag_sort(diags);
    return orch_fail(err, ORCH_E_INVALID, 0, "%s:%d:%d: %s%s", file, diags->v[0].line,
                     diags->v[0].column, diags->v[0].message,
                     diags->n > 1 ? " (and more errors)" : "");
}
