/* The planner: decides the next safe batch of create/start/remove actions for one service from
 * its desired state and the instances observed now. Pure: it must not do I/O, read a clock,
 * keep state between calls or know Docker's types; the executor maps containers in and runs
 * the actions out. Every rule here is level-triggered: it looks only at what it is shown, so
 * planning again after a partial or repeated execution is always safe. */
#include "plan.h"

#include <stdlib.h>
#include <string.h>

#include "../base/util.h"

/* What the planner knows about one (deduplicated) instance. */
struct plan_view {
    const struct plan_instance *in;
    bool alive;     /* created, running, restarting or paused */
    bool target;    /* of the target revision */
    bool ready;     /* running, not unhealthy and (no probe or healthy) */
    bool available; /* ready for min_ready_ms */
    bool unhealthy; /* alive and health unhealthy */
    bool decided;   /* an action already names it: never two actions for one instance */
};

static bool same_str(const char *a, const char *b)
{
    return a != NULL && b != NULL && a[0] != '\0' && strcmp(a, b) == 0;
}

static bool inst_state_valid(enum plan_inst_state s)
{
    return s >= PLAN_INST_CREATED && s <= PLAN_INST_REMOVING;
}

static bool is_alive_state(enum plan_inst_state s)
{
    return s == PLAN_INST_CREATED || s == PLAN_INST_RUNNING || s == PLAN_INST_RESTARTING ||
           s == PLAN_INST_PAUSED;
}

/* Fills *views with one entry per distinct instance (by id, or by name: the engine refuses two
 * containers of one name, so two entries of one name are a stale observation of the same
 * instance); the first entry wins. want may be NULL (orphans): then nothing is "target". */
static struct plan_view *views_build(const struct plan_service *want,
                                     const struct plan_instance *have, size_t n, int64_t now_ms,
                                     size_t *n_out)
{
    struct plan_view *v = orch_xcalloc(n > 0 ? n : 1, sizeof(*v));
    size_t nv = 0;

    for (size_t i = 0; i < n; i++) {
        const struct plan_instance *in = &have[i];
        bool dup = false;
        for (size_t j = 0; j < nv && !dup; j++)
            dup = same_str(v[j].in->id, in->id) || same_str(v[j].in->name, in->name);
        if (dup)
            continue;

        struct plan_view *pv = &v[nv++];
        pv->in = in;
        pv->alive = is_alive_state(in->state);
        pv->target = want != NULL && in->revision == want->revision;
        pv->unhealthy = pv->alive && in->health == PLAN_HEALTH_UNHEALTHY;
        bool has_probe = want != NULL && want->has_probe;
        pv->ready = in->state == PLAN_INST_RUNNING && !pv->unhealthy &&
                    (!has_probe || in->health == PLAN_HEALTH_HEALTHY);
        int64_t min_ready = want != NULL ? want->min_ready_ms : 0;
        /* ready_since 0 means the executor does not know when it became ready: it is not
         * available until it has been seen ready for min_ready. */
        pv->available = pv->ready && (min_ready <= 0 || (in->ready_since_ms > 0 &&
                                                         now_ms - in->ready_since_ms >= min_ready));
    }
    *n_out = nv;
    return v;
}

static int instances_validate(const struct plan_instance *have, size_t n, struct orch_error *err)
{
    if (n > 0 && have == NULL)
        return orch_fail(err, ORCH_E_INVALID, 0, "plan: %zu instances but no array", n);
    for (size_t i = 0; i < n; i++) {
        if (have[i].id == NULL || have[i].id[0] == '\0')
            return orch_fail(err, ORCH_E_INVALID, 0, "plan: instance %zu has no id", i);
        if (!inst_state_valid(have[i].state))
            return orch_fail(err, ORCH_E_INVALID, 0, "plan: instance %s has state %d", have[i].id,
                             (int)have[i].state);
    }
    return 0;
}

/* Actions in the making: creates and starts are emitted in the order of the final plan; removes
 * are kept apart so they can follow them while keeping the order they were decided in. */
struct plan_builder {
    struct plan_action *v;
    size_t n, cap;
    struct plan_action *rm;
    size_t n_rm, cap_rm;
};

static void push(struct plan_action **v, size_t *n, size_t *cap, struct plan_action a)
{
    if (*n == *cap) {
        *cap = *cap ? *cap * 2 : 8;
        *v = orch_xrealloc(*v, *cap * sizeof(**v));
    }
    (*v)[(*n)++] = a;
}

static void builder_remove(struct plan_builder *b, struct plan_view *pv, const char *reason)
{
    pv->decided = true;
    push(&b->rm, &b->n_rm, &b->cap_rm,
         (struct plan_action){PLAN_REMOVE, pv->in->revision, pv->in->id, reason});
}

static void builder_finish(struct plan_builder *b, struct plan *out)
{
    for (size_t i = 0; i < b->n_rm; i++)
        push(&b->v, &b->n, &b->cap, b->rm[i]);
    free(b->rm);
    if (b->n == 0) {
        free(b->v);
        b->v = NULL;
    }
    out->v = b->v;
    out->n = b->n;
}

/* How far removing one instance eats into availability: a not-ready instance costs nothing,
 * a ready one costs ready capacity, an available one costs availability as well. */
struct plan_budget {
    int64_t available; /* available instances that may still be removed */
    int64_t ready;     /* ready instances that may still be removed */
};

static bool budget_take(struct plan_budget *bu, const struct plan_view *pv)
{
    if (pv->available && bu->available < 1)
        return false;
    if (pv->ready && bu->ready < 1)
        return false;
    if (pv->available)
        bu->available--;
    if (pv->ready)
        bu->ready--;
    return true;
}

/* Lower ranks are cheaper to lose: never started, then stopped in some way, then starting,
 * then ready but not yet available, then available. */
static int readiness_rank(const struct plan_view *pv)
{
    if (pv->available)
        return 4;
    if (pv->ready)
        return 3;
    switch (pv->in->state) {
    case PLAN_INST_CREATED:
        return 0;
    case PLAN_INST_RUNNING:
        return 2;
    default:
        return 1;
    }
}

/* Removal order: cheapest first, older revisions first, newest first (it has served least),
 * then by id so the plan does not depend on the input order. */
static int removal_cmp(const void *pa, const void *pb)
{
    const struct plan_view *a = *(const struct plan_view *const *)pa;
    const struct plan_view *b = *(const struct plan_view *const *)pb;
    int ra = readiness_rank(a), rb = readiness_rank(b);
    if (ra != rb)
        return ra < rb ? -1 : 1;
    if (a->in->revision != b->in->revision)
        return a->in->revision < b->in->revision ? -1 : 1;
    if (a->in->created_ms != b->in->created_ms)
        return a->in->created_ms > b->in->created_ms ? -1 : 1;
    return strcmp(a->in->id, b->in->id);
}

/* Candidates matching `pick`, in removal order, in a new array. */
static struct plan_view **candidates_sorted(struct plan_view *v, size_t nv,
                                            bool (*pick)(const struct plan_view *), size_t *n_out)
{
    struct plan_view **c = orch_xcalloc(nv > 0 ? nv : 1, sizeof(*c));
    size_t n = 0;
    for (size_t i = 0; i < nv; i++)
        if (!v[i].decided && pick(&v[i]))
            c[n++] = &v[i];
    qsort(c, n, sizeof(*c), removal_cmp);
    *n_out = n;
    return c;
}

static bool pick_old_alive(const struct plan_view *pv)
{
    return pv->alive && !pv->target;
}

static bool pick_new_alive(const struct plan_view *pv)
{
    return pv->alive && pv->target;
}

int plan_service_compute(const struct plan_service *want, const struct plan_instance *have,
                         size_t n_have, int64_t now_ms, struct plan *out, struct orch_error *err)
{
    if (want == NULL || out == NULL)
        return orch_fail(err, ORCH_E_INVALID, 0, "plan: no service or no output");
    if (want->replicas < 0 || want->max_surge < 0 || want->max_unavailable < 0 ||
        want->min_ready_ms < 0)
        return orch_fail(err, ORCH_E_INVALID, 0,
                         "plan: %s/%s: negative replicas, max_surge, max_unavailable or min_ready",
                         want->app ? want->app : "?", want->service ? want->service : "?");
    int rc = instances_validate(have, n_have, err);
    if (rc < 0)
        return rc;

    size_t nv;
    _cleanup_free_ struct plan_view *v = views_build(want, have, n_have, now_ms, &nv);

    /* 64-bit arithmetic: replicas + max_surge cannot overflow. */
    int64_t replicas = want->replicas, surge = want->max_surge;
    int64_t unavailable = want->max_unavailable;
    if (surge == 0 && unavailable == 0)
        unavailable = 1; /* as Kubernetes does: otherwise an update could never start */
    /* The floor: how many must stay available (and ready) through removals. */
    int64_t min_avail = replicas - unavailable > 0 ? replicas - unavailable : 0;

    int64_t alive = 0, new_keep = 0, n_available = 0, n_ready = 0, lost = 0;
    bool old_present = false, old_alive = false;
    for (size_t i = 0; i < nv; i++) {
        const struct plan_view *pv = &v[i];
        if (!pv->target && (pv->alive || pv->in->state == PLAN_INST_REMOVING))
            old_present = true;
        if (!pv->alive) {
            if (pv->in->state == PLAN_INST_EXITED || pv->in->state == PLAN_INST_DEAD)
                lost++;
            continue;
        }
        alive++;
        old_alive |= !pv->target;
        if (pv->target && !pv->unhealthy)
            new_keep++;
        lost += pv->unhealthy;
        n_available += pv->available;
        n_ready += pv->ready;
    }
    /* Recreate: nothing of the new revision runs beside anything of the old one, including
     * one still being stopped (it may hold a volume or a port: the reason to pick recreate). */
    bool recreate_wait = want->recreate && old_present;

    struct plan_builder b = {0};
    struct plan_budget budget = {n_available - min_avail, n_ready - min_avail};

    /* Removals that do not wait for the floor: nothing here is ready, except old instances
     * under recreate, which accepts the downtime. */
    for (size_t i = 0; i < nv; i++) {
        struct plan_view *pv = &v[i];
        const char *reason = NULL;
        if (pv->in->state == PLAN_INST_REMOVING)
            continue;
        if (pv->in->state == PLAN_INST_EXITED)
            reason = "exited";
        else if (pv->in->state == PLAN_INST_DEAD)
            reason = "dead";
        else if (pv->unhealthy)
            reason = "unhealthy";
        else if (!pv->target && pv->in->state == PLAN_INST_CREATED)
            reason = "old revision never started";
        else if (!pv->target && want->recreate)
            reason = "recreate";
        else if (!pv->target && !pv->ready)
            reason = "old revision not ready";
        if (reason != NULL)
            builder_remove(&b, pv, reason);
    }

    /* Old ready instances (rolling), as far as the floor allows. Under recreate they are all
     * gone by now. */
    size_t nc;
    _cleanup_free_ struct plan_view **old = candidates_sorted(v, nv, pick_old_alive, &nc);
    for (size_t i = 0; i < nc; i++)
        if (budget_take(&budget, old[i]))
            builder_remove(&b, old[i], "old revision");

    /* Surplus of the target revision: least ready, then newest, first. Taking the least ready
     * first leaves `replicas` instances at least as available as any removed one, so the
     * budget only guards that order. */
    int64_t surplus = new_keep - replicas;
    size_t ns;
    _cleanup_free_ struct plan_view **news = candidates_sorted(v, nv, pick_new_alive, &ns);
    for (size_t i = 0; i < ns && surplus > 0; i++) {
        if (!budget_take(&budget, news[i]))
            continue;
        builder_remove(&b, news[i], "surplus");
        surplus--;
    }

    /* Creates, counted against the surge limit as if no removal had happened yet. */
    int64_t creates = replicas - new_keep;
    if (creates > replicas + surge - alive)
        creates = replicas + surge - alive;
    if (recreate_wait)
        creates = 0;
    const char *why = old_alive ? "update" : lost > 0 ? "replace failed" : "scale up";
    for (int64_t i = 0; i < creates; i++)
        push(&b.v, &b.n, &b.cap, (struct plan_action){PLAN_CREATE, want->revision, NULL, why});

    /* Instances a crashed pass created but never started. */
    for (size_t i = 0; i < nv && !recreate_wait; i++) {
        struct plan_view *pv = &v[i];
        if (!pv->decided && pv->target && pv->in->state == PLAN_INST_CREATED) {
            pv->decided = true;
            push(&b.v, &b.n, &b.cap,
                 (struct plan_action){PLAN_START, pv->in->revision, pv->in->id, "never started"});
        }
    }

    builder_finish(&b, out);
    return 0;
}

int plan_orphans_compute(const struct plan_instance *have, size_t n_have, struct plan *out,
                         struct orch_error *err)
{
    if (out == NULL)
        return orch_fail(err, ORCH_E_INVALID, 0, "plan: no output");
    int rc = instances_validate(have, n_have, err);
    if (rc < 0)
        return rc;

    size_t nv;
    _cleanup_free_ struct plan_view *v = views_build(NULL, have, n_have, 0, &nv);
    struct plan_builder b = {0};
    for (size_t i = 0; i < nv; i++)
        if (v[i].in->state != PLAN_INST_REMOVING)
            builder_remove(&b, &v[i], "not desired");
    builder_finish(&b, out);
    return 0;
}

void plan_free(struct plan *p)
{
    if (p == NULL)
        return;
    free(p->v);
    p->v = NULL;
    p->n = 0;
}

void plan_counts_compute(const struct plan_service *want, const struct plan_instance *have,
                         size_t n_have, int64_t now_ms, struct plan_counts *out)
{
    memset(out, 0, sizeof(*out));
    out->desired = want->replicas;

    /* Tolerates what plan_service_compute refuses (an entry without id is counted, never
     * merged) so a status line can always be printed. */
    size_t nv;
    _cleanup_free_ struct plan_view *v = views_build(want, have, have ? n_have : 0, now_ms, &nv);
    for (size_t i = 0; i < nv; i++) {
        const struct plan_view *pv = &v[i];
        enum plan_inst_state s = pv->in->state;
        out->exited += s == PLAN_INST_EXITED || s == PLAN_INST_DEAD;
        out->removing += s == PLAN_INST_REMOVING;
        if (!pv->alive)
            continue;
        out->alive++;
        out->running += s == PLAN_INST_RUNNING;
        out->ready += pv->ready;
        out->available += pv->available;
        out->updated += pv->target;
        out->updated_available += pv->target && pv->available;
        out->old += !pv->target;
        out->unhealthy += pv->unhealthy;
    }
}

bool plan_counts_converged(const struct plan_counts *c)
{
    return c->alive == c->desired && c->updated == c->desired &&
           c->updated_available == c->desired && c->exited == 0;
}

int plan_resolve_surge(int value, bool percent, int replicas)
{
    if (value <= 0)
        return 0;
    if (!percent)
        return value;
    int64_t r = replicas > 0 ? replicas : 0;
    return (int)((r * value + 99) / 100);
}

int plan_resolve_unavailable(int value, bool percent, int replicas)
{
    if (value <= 0)
        return 0;
    if (!percent)
        return value;
    int64_t r = replicas > 0 ? replicas : 0;
    return (int)(r * value / 100);
}

static const char *const kind_names[] = {"create", "start", "remove"};
static const char *const state_names[] = {"created", "running", "restarting", "paused",
                                          "exited",  "dead",    "removing"};
static const char *const health_names[] = {"none", "starting", "healthy", "unhealthy"};

const char *plan_action_kind_name(enum plan_action_kind k)
{
    return (unsigned)k < ORCH_ARRAY_LEN(kind_names) ? kind_names[k] : "?";
}

const char *plan_inst_state_name(enum plan_inst_state s)
{
    return (unsigned)s < ORCH_ARRAY_LEN(state_names) ? state_names[s] : "?";
}

const char *plan_health_name(enum plan_health h)
{
    return (unsigned)h < ORCH_ARRAY_LEN(health_names) ? health_names[h] : "?";
}

bool plan_inst_state_parse(const char *s, enum plan_inst_state *out)
{
    for (size_t i = 0; s != NULL && i < ORCH_ARRAY_LEN(state_names); i++) {
        if (strcmp(s, state_names[i]) == 0) {
            *out = (enum plan_inst_state)i;
            return true;
        }
    }
    return false;
}

bool plan_health_parse(const char *s, enum plan_health *out)
{
    if (s == NULL || s[0] == '\0') {
        *out = PLAN_HEALTH_NONE;
        return true;
    }
    for (size_t i = 0; i < ORCH_ARRAY_LEN(health_names); i++) {
        if (strcmp(s, health_names[i]) == 0) {
            *out = (enum plan_health)i;
            return true;
        }
    }
    return false;
}
