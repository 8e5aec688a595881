/* Spec validation of a service's `update` (rolling or recreate, surge, deadlines) and
 * `autoscale` blocks (docs/spec.md, update and autoscale). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "spec/validate_internal.h"
#include "spec/yaml_tree.h"

static bool get_surge(struct vctx *v, const struct ynode *n, const char *path,
                      struct spec_scalar_or_pct *out)
{
    if (!v_visit(v, n))
        return false;
    enum ytype t = v_ytype_of(n);
    if (t == YT_INT) {
        long long x;
        v->visits--; /* get_int counts this node again */
        if (!v_get_int(v, n, path, 0, INT_MAX, &x))
            return false;
        out->value = (int)x;
        out->percent = false;
        return true;
    }
    if (t == YT_STR && v_text_ok(v, n, path)) {
        if (n->len > 0 && n->text[n->len - 1] == '%' && spec_parse_pct(n->text, out) == 0)
            return true;
        v_err(v, n, path, "must be an integer >= 0 or a percentage \"0%%\"..\"100%%\", got '%s'",
              v_show(n).s);
        return false;
    }
    if (t != YT_STR)
        v_type_err(v, n, path, "an integer or a percentage like \"25%\"");
    return false;
}

void v_check_update(struct vctx *v, const struct ynode *n, const char *path, struct spec_update *u)
{
    if (!v_expect_kind(v, n, path, YT_MAP, "a mapping"))
        return;
    enum { F_STRATEGY, F_SURGE, F_UNAVAIL, F_MINREADY, F_DEADLINE, F_ROLLBACK, F_GRACE, F_N };
    static const char *const names[] = {"strategy", "max_surge",     "max_unavailable", "min_ready",
                                        "deadline", "auto_rollback", "stop_grace"};
    const struct ynode *keys[F_N], *vals[F_N];
    v_map_fields(v, n, path, names, F_N, keys, vals);
    struct vpath p;
    if (vals[F_STRATEGY] != NULL) {
        p = v_path_key(path, names[F_STRATEGY], strlen(names[F_STRATEGY]));
        char *s = NULL;
        if (v_get_str(v, vals[F_STRATEGY], p.s, &s)) {
            if (strcmp(s, "recreate") == 0)
                u->strategy = SPEC_STRATEGY_RECREATE;
            else if (strcmp(s, "rolling") != 0)
                v_err(v, vals[F_STRATEGY], p.s, "must be rolling or recreate, got '%s'",
                      v_show(vals[F_STRATEGY]).s);
        }
        free(s);
    }
    bool surge_ok = true, unavail_ok = true;
    if (vals[F_SURGE] != NULL) {
        p = v_path_key(path, names[F_SURGE], strlen(names[F_SURGE]));
        surge_ok = get_surge(v, vals[F_SURGE], p.s, &u->max_surge);
    }
    if (vals[F_UNAVAIL] != NULL) {
        p = v_path_key(path, names[F_UNAVAIL], strlen(names[F_UNAVAIL]));
        unavail_ok = get_surge(v, vals[F_UNAVAIL], p.s, &u->max_unavailable);
    }
    if (surge_ok && unavail_ok && u->strategy == SPEC_STRATEGY_ROLLING && u->max_surge.value == 0 &&
        u->max_unavailable.value == 0)
        v_err(v, n, path,
              "max_surge and max_unavailable are both 0: a rolling update could never replace "
              "an instance");
    if (vals[F_MINREADY] != NULL) {
        p = v_path_key(path, names[F_MINREADY], strlen(names[F_MINREADY]));
        v_get_duration(v, vals[F_MINREADY], p.s, 0, INT64_MAX, &u->min_ready_ms);
    }
    if (vals[F_DEADLINE] != NULL) {
        p = v_path_key(path, names[F_DEADLINE], strlen(names[F_DEADLINE]));
        v_get_duration(v, vals[F_DEADLINE], p.s, 1000, INT64_MAX, &u->deadline_ms);
    }
    if (vals[F_ROLLBACK] != NULL) {
        p = v_path_key(path, names[F_ROLLBACK], strlen(names[F_ROLLBACK]));
        v_get_bool(v, vals[F_ROLLBACK], p.s, &u->auto_rollback);
    }
    if (vals[F_GRACE] != NULL) {
        p = v_path_key(path, names[F_GRACE], strlen(names[F_GRACE]));
        v_get_duration(v, vals[F_GRACE], p.s, 0, 3600000, &u->stop_grace_ms);
    }
}

void v_check_autoscale(struct vctx *v, const struct ynode *n, const char *path,
                       struct spec_autoscale *a)
{
    if (!v_expect_kind(v, n, path, YT_MAP, "a mapping"))
        return;
    enum { F_MIN, F_MAX, F_CPU, F_REQUESTS, F_DELAY, F_N };
    static const char *const names[] = {"min", "max", "cpu", "requests", "scale_down_delay"};
    const struct ynode *keys[F_N], *vals[F_N];
    v_map_fields(v, n, path, names, F_N, keys, vals);
    long long x[4] = {0, 0, 0, 0};
    bool ok[4] = {false, false, false, false};
    static const long long lo[] = {1, 1, 1, 1},
                           hi[] = {SPEC_MAX_REPLICAS, SPEC_MAX_REPLICAS, 100, SPEC_MAX_REQUESTS};
    for (int i = F_MIN; i <= F_REQUESTS; i++) {
        if (vals[i] == NULL) {
            if (i == F_MIN || i == F_MAX)
                v_missing(v, n, path, names[i]);
            continue;
        }
        struct vpath p = v_path_key(path, names[i], strlen(names[i]));
        ok[i] = v_get_int(v, vals[i], p.s, lo[i], hi[i], &x[i]);
    }
    if (ok[F_MIN] && ok[F_MAX] && x[F_MAX] < x[F_MIN]) {
        struct vpath p = v_path_key(path, "max", 3);
        v_err(v, vals[F_MAX], p.s, "must be >= min (%lld), got %lld", x[F_MIN], x[F_MAX]);
    }
    /* The autoscaler needs something to measure (docs/spec.md, autoscale). */
    if (vals[F_CPU] == NULL && vals[F_REQUESTS] == NULL)
        v_err(v, n, path, "needs a target: 'cpu', 'requests' or both");
    a->scale_down_delay_ms = SPEC_AUTOSCALE_DELAY_MS;
    if (vals[F_DELAY] != NULL) {
        struct vpath p = v_path_key(path, names[F_DELAY], strlen(names[F_DELAY]));
        v_get_duration(v, vals[F_DELAY], p.s, 0, 3600000, &a->scale_down_delay_ms);
    }
    a->enabled = true;
    a->min = (int)x[F_MIN];
    a->max = (int)x[F_MAX];
    a->cpu = (int)x[F_CPU];
    a->requests = (int)x[F_REQUESTS];
}
