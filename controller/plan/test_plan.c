/* Unit tests of the planner: a table of named situations with the exact multiset of actions
 * each must yield, and a property test that drives a small simulator (apply the plan, let time
 * pass, plan again) over thousands of random starting points, checking the surge and
 * availability limits at every step and convergence to the desired state. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "plan/plan.h"

#define NOW 1000000
#define MAX_INST 16
#define MAX_EXPECT 16

/* Compact instance literals: id, revision, created_ms. "Up" ones became ready right after
 * they were created, long before NOW. */
#define UP(i, r, c)                                                                                \
    {                                                                                              \
        i, NULL, r, PLAN_INST_RUNNING, PLAN_HEALTH_HEALTHY, c, (c) + 1                             \
    }
#define STARTING(i, r, c)                                                                          \
    {                                                                                              \
        i, NULL, r, PLAN_INST_RUNNING, PLAN_HEALTH_STARTING, c, 0                                  \
    }
#define SICK(i, r, c)                                                                              \
    {                                                                                              \
        i, NULL, r, PLAN_INST_RUNNING, PLAN_HEALTH_UNHEALTHY, c, 0                                 \
    }
#define PLAIN(i, r, c)                                                                             \
    {                                                                                              \
        i, NULL, r, PLAN_INST_RUNNING, PLAN_HEALTH_NONE, c, (c) + 1                                \
    }
#define READY_SINCE(i, r, c, s)                                                                    \
    {                                                                                              \
        i, NULL, r, PLAN_INST_RUNNING, PLAN_HEALTH_HEALTHY, c, s                                   \
    }
#define NAMED(i, n, r, c)                                                                          \
    {                                                                                              \
        i, n, r, PLAN_INST_RUNNING, PLAN_HEALTH_HEALTHY, c, (c) + 1                                \
    }
#define CREATED(i, r)                                                                              \
    {                                                                                              \
        i, NULL, r, PLAN_INST_CREATED, PLAN_HEALTH_NONE, 5, 0                                      \
    }
#define EXITED(i, r)                                                                               \
    {                                                                                              \
        i, NULL, r, PLAN_INST_EXITED, PLAN_HEALTH_NONE, 5, 0                                       \
    }
#define DEAD(i, r)                                                                                 \
    {                                                                                              \
        i, NULL, r, PLAN_INST_DEAD, PLAN_HEALTH_NONE, 5, 0                                         \
    }
#define REMOVING(i, r)                                                                             \
    {                                                                                              \
        i, NULL, r, PLAN_INST_REMOVING, PLAN_HEALTH_NONE, 5, 0                                     \
    }
#define RESTARTING(i, r)                                                                           \
    {                                                                                              \
        i, NULL, r, PLAN_INST_RESTARTING, PLAN_HEALTH_NONE, 5, 0                                   \
    }
#define PAUSED(i, r)                                                                               \
    {                                                                                              \
        i, NULL, r, PLAN_INST_PAUSED, PLAN_HEALTH_HEALTHY, 5, 0                                    \
    }

/* Rolling update with a probe: target revision, replicas, max_surge, max_unavailable. */
#define ROLL(rev, n, s, u)                                                                         \
    {                                                                                              \
        .app = "shop", .service = "web", .revision = rev, .replicas = n, .max_surge = s,           \
        .max_unavailable = u, .has_probe = true                                                    \
    }

/* Renders an action as "create 2: update", "start ID: never started", "remove ID: exited". */
static void action_render(const struct plan_action *a, char *buf, size_t len)
{
    if (a->kind == PLAN_CREATE)
        snprintf(buf, len, "create %lld: %s", (long long)a->revision, a->reason);
    else
        snprintf(buf, len, "%s %s: %s", plan_action_kind_name(a->kind), a->id, a->reason);
}

/* An expectation without ": reason" matches any reason. */
static bool expect_matches(const char *expect, const char *rendered)
{
    if (strchr(expect, ':') != NULL)
        return strcmp(expect, rendered) == 0;
    size_t n = strlen(expect);
    return strncmp(expect, rendered, n) == 0 && rendered[n] == ':';
}

/* Checks that the plan is exactly the multiset `expect` (NULL-terminated): expectations with a
 * reason are matched first so a reasonless one cannot steal their action. */
static void assert_plan_is(const char *name, const struct plan *p, const char *const *expect)
{
    char rendered[64][96];
    bool used[64] = {0};
    assert_true(p->n <= 64);
    for (size_t i = 0; i < p->n; i++)
        action_render(&p->v[i], rendered[i], sizeof(rendered[i]));

    size_t n_expect = 0;
    while (expect[n_expect] != NULL)
        n_expect++;
    bool ok = n_expect == p->n;
    for (int pass = 0; pass < 2 && ok; pass++) {
        for (size_t e = 0; e < n_expect && ok; e++) {
            bool has_reason = strchr(expect[e], ':') != NULL;
            if (has_reason != (pass == 0))
                continue;
            bool found = false;
            for (size_t i = 0; i < p->n && !found; i++) {
                if (!used[i] && expect_matches(expect[e], rendered[i]))
                    used[i] = found = true;
            }
            ok = found;
        }
    }
    if (!ok) {
        fprintf(stderr, "case \"%s\": got %zu actions:\n", name, p->n);
        for (size_t i = 0; i < p->n; i++)
            fprintf(stderr, "  %s\n", rendered[i]);
        fprintf(stderr, "expected %zu:\n", n_expect);
        for (size_t e = 0; e < n_expect; e++)
            fprintf(stderr, "  %s\n", expect[e]);
        fail_msg("case \"%s\": plan differs", name);
    }
}

/* Structural rules every plan obeys: kinds ordered create < start < remove, no instance named
 * twice, only ids from the input (and none being removed), starts only of never-started
 * target-revision instances, creates only of the target revision. */
static void assert_plan_well_formed(const struct plan_service *want,
                                    const struct plan_instance *have, size_t n,
                                    const struct plan *p)
{
    assert_true((p->n == 0) == (p->v == NULL));
    for (size_t i = 0; i < p->n; i++) {
        const struct plan_action *a = &p->v[i];
        assert_non_null(a->reason);
        if (i > 0)
            assert_true(p->v[i - 1].kind <= a->kind);
        if (a->kind == PLAN_CREATE) {
            assert_null(a->id);
            assert_int_equal(a->revision, want->revision);
            continue;
        }
        assert_non_null(a->id);
        for (size_t j = i + 1; j < p->n; j++)
            assert_true(p->v[j].kind == PLAN_CREATE || strcmp(p->v[j].id, a->id) != 0);
        const struct plan_instance *in = NULL;
        for (size_t j = 0; j < n && in == NULL; j++)
            if (strcmp(have[j].id, a->id) == 0)
                in = &have[j];
        assert_non_null(in);
        assert_int_not_equal(in->state, PLAN_INST_REMOVING);
        assert_int_equal(a->revision, in->revision);
        if (a->kind == PLAN_START) {
            assert_int_equal(in->state, PLAN_INST_CREATED);
            assert_int_equal(in->revision, want->revision);
        }
    }
}

struct plan_case {
    const char *name;
    struct plan_service want;
    int surge_pct, unavailable_pct; /* when not 0: resolved against replicas first */
    struct plan_instance have[MAX_INST];
    const char *expect[MAX_EXPECT];
};

static const struct plan_case cases[] = {
    {"empty -> create 3", ROLL(1, 3, 1, 0), .have = {{0}},
     .expect = {"create 1: scale up", "create 1", "create 1"}},
    {"converged -> nothing", ROLL(1, 3, 1, 0),
     .have = {UP("a", 1, 10), UP("b", 1, 20), UP("c", 1, 30)}, .expect = {NULL}},
    {"converged with leftovers being removed -> nothing", ROLL(1, 2, 1, 0),
     .have = {UP("a", 1, 10), REMOVING("x", 1), UP("b", 1, 20), REMOVING("y", 0)},
     .expect = {NULL}},
    {"scale 3 -> 5", ROLL(1, 5, 1, 0), .have = {UP("a", 1, 10), UP("b", 1, 20), UP("c", 1, 30)},
     .expect = {"create 1: scale up", "create 1"}},
    {"scale 3 -> 5 with surge 0 is not limited by surge", ROLL(1, 5, 0, 0),
     .have = {UP("a", 1, 10), UP("b", 1, 20), UP("c", 1, 30)}, .expect = {"create 1", "create 1"}},
    {"scale 5 -> 1 keeps the oldest", ROLL(1, 1, 1, 0),
     .have = {UP("c", 1, 30), UP("a", 1, 10), UP("e", 1, 50), UP("b", 1, 20), UP("d", 1, 40)},
     .expect = {"remove b: surplus", "remove c", "remove d", "remove e"}},
    {"scale down removes not ready before newest", ROLL(1, 2, 1, 0),
     .have = {UP("a", 1, 10), STARTING("b", 1, 20), UP("c", 1, 30)},
     .expect = {"remove b: surplus"}},
    {"scale down: never started, then restarting, then starting, then newest", ROLL(1, 1, 1, 0),
     .have = {STARTING("s", 1, 90), UP("u1", 1, 10), UP("u2", 1, 20), CREATED("c", 1),
              RESTARTING("r", 1)},
     .expect = {"remove c: surplus", "remove r: surplus", "remove s: surplus",
                "remove u2: surplus"}},
    {"scale down with room below the floor still removes not ready first", ROLL(1, 1, 0, 1),
     .have = {UP("a", 1, 10), STARTING("b", 1, 20)}, .expect = {"remove b: surplus"}},
    {"replicas 0 removes everything not already going", ROLL(1, 0, 1, 0),
     .have = {UP("a", 1, 10), STARTING("b", 1, 20), EXITED("c", 1), CREATED("d", 1),
              REMOVING("e", 1), UP("f", 0, 5)},
     .expect = {"remove a", "remove b", "remove c: exited", "remove d", "remove f"}},
    {"exited and dead leftovers are removed and replaced", ROLL(1, 3, 1, 0),
     .have = {UP("a", 1, 10), EXITED("b", 1), DEAD("c", 1)},
     .expect = {"remove b: exited", "remove c: dead", "create 1: replace failed", "create 1"}},
    {"never started of the target revision is started", ROLL(1, 2, 1, 0),
     .have = {UP("a", 1, 10), CREATED("b", 1)}, .expect = {"start b: never started"}},
    {"never started of an old revision is removed", ROLL(2, 1, 1, 0), .have = {CREATED("b", 1)},
     .expect = {"remove b: old revision never started", "create 2: update"}},
    {"never started surplus is removed, not started", ROLL(1, 1, 1, 0),
     .have = {UP("a", 1, 10), CREATED("b", 1)}, .expect = {"remove b: surplus"}},
    {"duplicate ids act once", ROLL(1, 2, 1, 0),
     .have = {UP("a", 1, 10), EXITED("b", 1), UP("a", 1, 10), EXITED("b", 1), CREATED("c", 1),
              CREATED("c", 1)},
     .expect = {"remove b: exited", "start c"}},
    {"duplicate names are one instance", ROLL(1, 3, 1, 0),
     .have = {NAMED("x", "web-1", 1, 10), NAMED("y", "web-1", 1, 10), NAMED("z", "web-2", 1, 20)},
     .expect = {"create 1"}},
    {"being removed is not counted", ROLL(1, 2, 1, 0), .have = {UP("a", 1, 10), REMOVING("b", 1)},
     .expect = {"create 1: scale up"}},
    {"paused of the target revision is left alone", ROLL(1, 1, 1, 0), .have = {PAUSED("p", 1)},
     .expect = {NULL}},

    /* Rolling update, max_surge 1, max_unavailable 0: one extra, then one old goes. */
    {"surge1/unav0 step 1: surge one", ROLL(2, 3, 1, 0),
     .have = {UP("a", 1, 10), UP("b", 1, 20), UP("c", 1, 30)}, .expect = {"create 2: update"}},
    {"surge1/unav0 step 2: wait for it", ROLL(2, 3, 1, 0),
     .have = {UP("a", 1, 10), UP("b", 1, 20), UP("c", 1, 30), STARTING("n1", 2, 40)},
     .expect = {NULL}},
    {"surge1/unav0 step 3: newest old goes", ROLL(2, 3, 1, 0),
     .have = {UP("a", 1, 10), UP("b", 1, 20), UP("c", 1, 30), UP("n1", 2, 40)},
     .expect = {"remove c: old revision"}},
    {"surge1/unav0 step 4: surge again", ROLL(2, 3, 1, 0),
     .have = {UP("a", 1, 10), UP("b", 1, 20), UP("n1", 2, 40)}, .expect = {"create 2: update"}},
    {"surge1/unav0 last: old gone", ROLL(2, 3, 1, 0),
     .have = {UP("a", 1, 10), UP("n1", 2, 40), UP("n2", 2, 50), UP("n3", 2, 60)},
     .expect = {"remove a: old revision"}},
    /* max_surge 0, max_unavailable 1: one old goes, then its replacement comes. */
    {"surge0/unav1 step 1: one old goes", ROLL(2, 3, 0, 1),
     .have = {UP("a", 1, 10), UP("b", 1, 20), UP("c", 1, 30)},
     .expect = {"remove c: old revision"}},
    {"surge0/unav1 step 2: replacement", ROLL(2, 3, 0, 1), .have = {UP("a", 1, 10), UP("b", 1, 20)},
     .expect = {"create 2: update"}},
    {"surge0/unav1 step 3: wait for it", ROLL(2, 3, 0, 1),
     .have = {UP("a", 1, 10), UP("b", 1, 20), STARTING("n1", 2, 40)}, .expect = {NULL}},
    {"surge0/unav1 step 4: next old goes", ROLL(2, 3, 0, 1),
     .have = {UP("a", 1, 10), UP("b", 1, 20), UP("n1", 2, 40)}, .expect = {"remove b"}},
    /* max_surge 2, max_unavailable 1: both at once. */
    {"surge2/unav1 step 1", ROLL(2, 4, 2, 1),
     .have = {UP("a", 1, 10), UP("b", 1, 20), UP("c", 1, 30), UP("d", 1, 40)},
     .expect = {"create 2", "create 2", "remove d: old revision"}},
    {"surge2/unav1 step 2: new not ready yet", ROLL(2, 4, 2, 1),
     .have = {UP("a", 1, 10), UP("b", 1, 20), UP("c", 1, 30), STARTING("n1", 2, 50),
              STARTING("n2", 2, 50)},
     .expect = {"create 2"}},
    {"surge2/unav1 step 3", ROLL(2, 4, 2, 1),
     .have = {UP("a", 1, 10), UP("b", 1, 20), UP("c", 1, 30), UP("n1", 2, 50), UP("n2", 2, 50),
              STARTING("n3", 2, 60)},
     .expect = {"remove c", "remove b"}},
    {"surge 0 and unavailable 0 is treated as unavailable 1", ROLL(2, 2, 0, 0),
     .have = {UP("a", 1, 10), UP("b", 1, 20)}, .expect = {"remove b: old revision"}},
    {"percentages resolved: 25% of 10 is surge 3, unavailable 2", ROLL(2, 10, 0, 0),
     .surge_pct = 25, .unavailable_pct = 25,
     .have = {UP("a", 1, 10), UP("b", 1, 20), UP("c", 1, 30), UP("d", 1, 40), UP("e", 1, 50),
              UP("f", 1, 60), UP("g", 1, 70), UP("h", 1, 80), UP("i", 1, 90), UP("j", 1, 100)},
     .expect = {"create 2", "create 2", "create 2", "remove j", "remove i"}},
    {"old not ready ones go first and cost nothing", ROLL(2, 3, 1, 0),
     .have = {UP("a", 1, 10), STARTING("b", 1, 20), RESTARTING("c", 1), PAUSED("p", 1)},
     .expect = {"remove b: old revision not ready", "remove c: old revision not ready",
                "remove p: old revision not ready"}},
    {"old not ready ones go, creates wait for room", ROLL(2, 3, 1, 0),
     .have = {UP("a", 1, 10), UP("b", 1, 20), STARTING("c", 1, 30)},
     .expect = {"remove c: old revision not ready", "create 2"}},
    {"oldest revision goes first", ROLL(3, 2, 0, 1), .have = {UP("a", 1, 50), UP("b", 2, 10)},
     .expect = {"remove a: old revision"}},
    {"a higher revision than the target is old too (rollback)", ROLL(1, 1, 1, 0),
     .have = {UP("a", 2, 10), UP("b", 1, 20)}, .expect = {"remove a: old revision"}},
    {"scale up during an update", ROLL(2, 5, 1, 0),
     .have = {UP("a", 1, 10), UP("b", 1, 20), UP("c", 1, 30), UP("n1", 2, 40)},
     .expect = {"create 2", "create 2"}},
    {"scale down during an update", ROLL(2, 1, 1, 0),
     .have = {UP("a", 1, 10), UP("b", 1, 20), UP("c", 1, 30), UP("n1", 2, 40)},
     .expect = {"remove a", "remove b", "remove c"}},
    {"scale down during an update keeps the floor", ROLL(2, 2, 1, 0),
     .have = {UP("a", 1, 10), UP("b", 1, 20), UP("c", 1, 30), STARTING("n1", 2, 40)},
     .expect = {"remove c: old revision"}},
    {"surplus new ones and old ones: old first, within the floor", ROLL(2, 1, 0, 0),
     .have = {UP("a", 1, 10), UP("n1", 2, 40), UP("n2", 2, 50)},
     .expect = {"remove a", "remove n2: surplus"}},

    /* min_ready: ready for 1 s of 5 s is not available yet. */
    {"min_ready gates the next removal",
     {.revision = 2, .replicas = 2, .max_surge = 1, .has_probe = true, .min_ready_ms = 5000},
     .have = {UP("a", 1, 10), UP("b", 1, 20), READY_SINCE("n1", 2, 30, NOW - 1000)},
     .expect = {NULL}},
    {"min_ready elapsed: the removal follows",
     {.revision = 2, .replicas = 2, .max_surge = 1, .has_probe = true, .min_ready_ms = 5000},
     .have = {UP("a", 1, 10), UP("b", 1, 20), READY_SINCE("n1", 2, 30, NOW - 5000)},
     .expect = {"remove b: old revision"}},
    {"min_ready: unknown ready time is not available",
     {.revision = 2, .replicas = 2, .max_surge = 1, .has_probe = true, .min_ready_ms = 5000},
     .have = {UP("a", 1, 10), UP("b", 1, 20), READY_SINCE("n1", 2, 30, 0)},
     .expect = {NULL}},
    {"min_ready: ready old ones still serve, so they are not dropped",
     {.revision = 2, .replicas = 2, .max_surge = 1, .has_probe = true, .min_ready_ms = 10000},
     .have = {READY_SINCE("a", 1, 10, NOW - 1000), READY_SINCE("b", 1, 20, NOW - 1000)},
     .expect = {"create 2"}},
    {"min_ready: ready old ones go within the floor",
     {.revision = 2, .replicas = 2, .max_unavailable = 1, .has_probe = true, .min_ready_ms = 10000},
     .have = {READY_SINCE("a", 1, 10, NOW - 1000), READY_SINCE("b", 1, 20, NOW - 1000)},
     .expect = {"remove b"}},

    /* Unhealthy instances. */
    {"unhealthy: replacement first when surge allows", ROLL(1, 2, 1, 0),
     .have = {UP("a", 1, 10), SICK("b", 1, 20)},
     .expect = {"create 1: replace failed", "remove b: unhealthy"}},
    {"unhealthy: no surge, removed first", ROLL(1, 2, 0, 0),
     .have = {UP("a", 1, 10), SICK("b", 1, 20)}, .expect = {"remove b: unhealthy"}},
    {"unhealthy: surge bounds the replacements", ROLL(1, 3, 1, 0),
     .have = {UP("a", 1, 10), SICK("b", 1, 20), SICK("c", 1, 30)},
     .expect = {"create 1", "remove b: unhealthy", "remove c: unhealthy"}},
    {"unhealthy old one never counts as available", ROLL(2, 2, 0, 1),
     .have = {UP("a", 1, 10), SICK("b", 1, 20)}, .expect = {"remove b: unhealthy"}},
    {"unhealthy without a probe (image HEALTHCHECK) is replaced too",
     {.revision = 1, .replicas = 1, .max_surge = 1},
     .have = {SICK("a", 1, 10)},
     .expect = {"create 1", "remove a: unhealthy"}},

    /* Probe or not. */
    {"no probe: running is ready",
     {.revision = 2, .replicas = 2, .max_unavailable = 1},
     .have = {PLAIN("a", 1, 10), PLAIN("b", 1, 20)},
     .expect = {"remove b: old revision"}},
    {"probe without a verdict yet: not ready", ROLL(2, 2, 0, 1),
     .have = {PLAIN("a", 1, 10), PLAIN("b", 1, 20)},
     .expect = {"remove a: old revision not ready", "remove b: old revision not ready"}},

    /* Recreate. */
    {"recreate: old ones go, nothing is created",
     {.revision = 2, .replicas = 2, .recreate = true, .max_surge = 1, .has_probe = true},
     .have = {UP("a", 1, 10), UP("b", 1, 20), CREATED("n", 2)},
     .expect = {"remove a: recreate", "remove b: recreate"}},
    {"recreate: wait while old ones are being removed",
     {.revision = 2, .replicas = 2, .recreate = true, .max_surge = 1, .has_probe = true},
     .have = {REMOVING("a", 1), CREATED("n", 2)},
     .expect = {NULL}},
    {"recreate: then create",
     {.revision = 2, .replicas = 2, .recreate = true, .max_surge = 1, .has_probe = true},
     .have = {EXITED("a", 1), CREATED("n", 2)},
     .expect = {"remove a: exited", "start n", "create 2"}},
    {"recreate: scale down keeps the floor rule",
     {.revision = 2, .replicas = 1, .recreate = true, .has_probe = true},
     .have = {UP("n1", 2, 10), UP("n2", 2, 20)},
     .expect = {"remove n2: surplus"}},
};

static void test_plan_table(void **state)
{
    for (size_t c = 0; c < ORCH_ARRAY_LEN(cases); c++) {
        const struct plan_case *tc = &cases[c];
        struct plan_service want = tc->want;
        if (tc->surge_pct)
            want.max_surge = plan_resolve_surge(tc->surge_pct, true, want.replicas);
        if (tc->unavailable_pct)
            want.max_unavailable =
                plan_resolve_unavailable(tc->unavailable_pct, true, want.replicas);
        size_t n = 0;
        while (n < MAX_INST && tc->have[n].id != NULL)
            n++;
        struct plan p = {0};
        struct orch_error err = {0};
        int rc = plan_service_compute(&want, tc->have, n, NOW, &p, &err);
        if (rc != 0)
            fail_msg("case \"%s\": %s", tc->name, err.msg);
        assert_plan_well_formed(&want, tc->have, n, &p);
        assert_plan_is(tc->name, &p, tc->expect);
        plan_free(&p);
    }
}

static void test_plan_invalid(void **state)
{
    static const struct plan_instance ok[] = {UP("a", 1, 10)};
    static const struct plan_instance no_id[] = {UP("a", 1, 10), UP(NULL, 1, 10)};
    static const struct plan_instance empty_id[] = {UP("", 1, 10)};
    static const struct plan_instance bad_state[] = {
        {"a", NULL, 1, (enum plan_inst_state)42, PLAN_HEALTH_NONE, 1, 0}};
    static const struct {
        const char *name;
        struct plan_service want;
        const struct plan_instance *have;
        size_t n;
    } bad[] = {
        {"negative replicas", ROLL(1, -1, 1, 0), ok, 1},
        {"negative surge", ROLL(1, 1, -1, 0), ok, 1},
        {"negative unavailable", ROLL(1, 1, 0, -1), ok, 1},
        {"negative min_ready", {.revision = 1, .replicas = 1, .min_ready_ms = -1}, ok, 1},
        {"instance without id", ROLL(1, 1, 1, 0), no_id, 2},
        {"instance with empty id", ROLL(1, 1, 1, 0), empty_id, 1},
        {"unknown state", ROLL(1, 1, 1, 0), bad_state, 1},
        {"instances but no array", ROLL(1, 1, 1, 0), NULL, 3},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(bad); i++) {
        struct plan_action sentinel;
        struct plan p = {&sentinel, 77};
        struct orch_error err = {0};
        int rc = plan_service_compute(&bad[i].want, bad[i].have, bad[i].n, NOW, &p, &err);
        if (rc != -ORCH_E_INVALID)
            fail_msg("case \"%s\": rc %d", bad[i].name, rc);
        assert_int_equal(err.code, ORCH_E_INVALID);
        assert_true(err.msg[0] != '\0');
        /* On failure the output is untouched. */
        assert_ptr_equal(p.v, &sentinel);
        assert_int_equal(p.n, 77);
    }
    struct plan p = {0};
    struct orch_error err = {0};
    assert_int_equal(plan_orphans_compute(no_id, 2, &p, &err), -ORCH_E_INVALID);
    assert_null(p.v);
}

static void test_plan_orphans(void **state)
{
    static const struct plan_instance have[] = {
        UP("a", 1, 10),
        STARTING("b", 2, 20),
        EXITED("c", 1),
        REMOVING("d", 1),
        CREATED("e", 3),
        UP("a", 1, 10),
        NAMED("f", "web-1", 1, 5),
        NAMED("g", "web-1", 1, 5),
    };
    static const char *const expect[] = {"remove a: not desired", "remove b: not desired",
                                         "remove c: not desired", "remove e: not desired",
                                         "remove f: not desired", NULL};
    struct plan p = {0};
    struct orch_error err = {0};
    assert_int_equal(plan_orphans_compute(have, ORCH_ARRAY_LEN(have), &p, &err), 0);
    assert_plan_is("orphans", &p, expect);
    plan_free(&p);
    assert_null(p.v);
    assert_int_equal(p.n, 0);

    assert_int_equal(plan_orphans_compute(NULL, 0, &p, &err), 0);
    assert_int_equal(p.n, 0);
    assert_null(p.v);
    plan_free(NULL); /* harmless */
}

static void test_plan_counts(void **state)
{
    static const struct plan_instance have[] = {
        UP("a", 2, 10),       READY_SINCE("b", 2, 10, NOW - 100), /* ready, not yet available */
        STARTING("c", 2, 10), SICK("d", 1, 10),
        UP("e", 1, 10),       CREATED("f", 2),
        EXITED("g", 2),       DEAD("h", 1),
        REMOVING("i", 1),     PAUSED("j", 1),
        UP("a", 2, 10), /* duplicate */
    };
    const struct plan_service want = {
        .revision = 2, .replicas = 4, .has_probe = true, .min_ready_ms = 1000};
    struct plan_counts c;
    plan_counts_compute(&want, have, ORCH_ARRAY_LEN(have), NOW, &c);
    assert_int_equal(c.desired, 4);
    assert_int_equal(c.alive, 7);   /* a b c d e f j */
    assert_int_equal(c.running, 5); /* a b c d e */
    assert_int_equal(c.ready, 3);   /* a b e */
    assert_int_equal(c.available, 2);
    assert_int_equal(c.updated, 4); /* a b c f */
    assert_int_equal(c.updated_available, 1);
    assert_int_equal(c.old, 3); /* d e j */
    assert_int_equal(c.unhealthy, 1);
    assert_int_equal(c.exited, 2);
    assert_int_equal(c.removing, 1);
    assert_false(plan_counts_converged(&c));

    static const struct {
        const char *name;
        struct plan_counts c;
        bool converged;
    } conv[] = {
        {"all there", {.desired = 2, .alive = 2, .updated = 2, .updated_available = 2}, true},
        {"zero", {0}, true},
        {"one not available",
         {.desired = 2, .alive = 2, .updated = 2, .updated_available = 1},
         false},
        {"one old", {.desired = 2, .alive = 3, .updated = 2, .updated_available = 2}, false},
        {"exited leftover",
         {.desired = 2, .alive = 2, .updated = 2, .updated_available = 2, .exited = 1},
         false},
        {"one missing", {.desired = 2, .alive = 1, .updated = 1, .updated_available = 1}, false},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(conv); i++)
        if (plan_counts_converged(&conv[i].c) != conv[i].converged)
            fail_msg("converged \"%s\"", conv[i].name);
}

static void test_plan_resolve(void **state)
{
    static const struct {
        int value;
        bool percent;
        int replicas;
        int surge, unavailable;
    } cases_r[] = {
        {1, false, 3, 1, 1}, {0, false, 3, 0, 0},     {25, true, 10, 3, 2}, {25, true, 4, 1, 1},
        {25, true, 3, 1, 0}, {100, true, 3, 3, 3},    {50, true, 0, 0, 0},  {-1, false, 3, 0, 0},
        {10, true, 1, 1, 0}, {33, true, 100, 33, 33},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(cases_r); i++) {
        assert_int_equal(
            plan_resolve_surge(cases_r[i].value, cases_r[i].percent, cases_r[i].replicas),
            cases_r[i].surge);
        assert_int_equal(
            plan_resolve_unavailable(cases_r[i].value, cases_r[i].percent, cases_r[i].replicas),
            cases_r[i].unavailable);
    }
}

static void test_plan_names(void **state)
{
    static const char *const states[] = {"created", "running", "restarting", "paused",
                                         "exited",  "dead",    "removing"};
    for (size_t i = 0; i < ORCH_ARRAY_LEN(states); i++) {
        enum plan_inst_state s;
        assert_true(plan_inst_state_parse(states[i], &s));
        assert_int_equal(s, (enum plan_inst_state)i);
        assert_string_equal(plan_inst_state_name(s), states[i]);
    }
    static const char *const health[] = {"none", "starting", "healthy", "unhealthy"};
    for (size_t i = 0; i < ORCH_ARRAY_LEN(health); i++) {
        enum plan_health h;
        assert_true(plan_health_parse(health[i], &h));
        assert_int_equal(h, (enum plan_health)i);
        assert_string_equal(plan_health_name(h), health[i]);
    }
    enum plan_health h = PLAN_HEALTH_HEALTHY;
    assert_true(plan_health_parse("", &h));
    assert_int_equal(h, PLAN_HEALTH_NONE);
    h = PLAN_HEALTH_HEALTHY;
    assert_true(plan_health_parse(NULL, &h));
    assert_int_equal(h, PLAN_HEALTH_NONE);
    enum plan_inst_state s;
    assert_false(plan_inst_state_parse("Running", &s));
    assert_false(plan_inst_state_parse(NULL, &s));
    assert_false(plan_health_parse("sick", &h));
    assert_string_equal(plan_action_kind_name(PLAN_CREATE), "create");
    assert_string_equal(plan_action_kind_name(PLAN_START), "start");
    assert_string_equal(plan_action_kind_name(PLAN_REMOVE), "remove");
    assert_string_equal(plan_inst_state_name((enum plan_inst_state)99), "?");
}

/* ---- Property test: a simulator around the planner. ---- */

#define SIM_CASES 2000
#define SIM_STEP_MS 1000
#define SIM_MAX 64

static uint64_t rng_state;

static uint64_t rng_next(void)
{
    /* xorshift64*: deterministic across platforms, so a failing seed can be replayed. */
    rng_state ^= rng_state >> 12;
    rng_state ^= rng_state << 25;
    rng_state ^= rng_state >> 27;
    return rng_state * 2685821657736338717ULL;
}

static int rng_int(int lo, int hi) /* inclusive */
{
    return lo + (int)(rng_next() % (uint64_t)(hi - lo + 1));
}

struct sim_inst {
    char id[16];
    int64_t revision;
    enum plan_inst_state state;
    enum plan_health health;
    int64_t created_ms;
    int64_t ready_since_ms;
};

struct sim {
    struct plan_service want;
    struct sim_inst v[SIM_MAX];
    size_t n;
    int64_t now;
    int next_id;
};

static void sim_view(const struct sim *s, struct plan_instance *out)
{
    for (size_t i = 0; i < s->n; i++)
        out[i] = (struct plan_instance){s->v[i].id,
                                        NULL,
                                        s->v[i].revision,
                                        s->v[i].state,
                                        s->v[i].health,
                                        s->v[i].created_ms,
                                        s->v[i].ready_since_ms};
}

/* The test's own reading of the definitions, independent of plan.c. */
static bool sim_alive(const struct sim_inst *i)
{
    return i->state == PLAN_INST_CREATED || i->state == PLAN_INST_RUNNING ||
           i->state == PLAN_INST_RESTARTING || i->state == PLAN_INST_PAUSED;
}

static bool sim_ready(const struct sim *s, const struct sim_inst *i)
{
    if (i->state != PLAN_INST_RUNNING || i->health == PLAN_HEALTH_UNHEALTHY)
        return false;
    return !s->want.has_probe || i->health == PLAN_HEALTH_HEALTHY;
}

static bool sim_available(const struct sim *s, const struct sim_inst *i)
{
    if (!sim_ready(s, i))
        return false;
    return s->want.min_ready_ms == 0 ||
           (i->ready_since_ms > 0 && s->now - i->ready_since_ms >= s->want.min_ready_ms);
}

static struct sim_inst *sim_find(struct sim *s, const char *id)
{
    for (size_t i = 0; i < s->n; i++)
        if (strcmp(s->v[i].id, id) == 0)
            return &s->v[i];
    return NULL;
}

static void sim_add(struct sim *s, int64_t rev, enum plan_inst_state st, enum plan_health h,
                    int64_t created, int64_t ready_since)
{
    assert_true(s->n < SIM_MAX);
    struct sim_inst *i = &s->v[s->n++];
    snprintf(i->id, sizeof(i->id), "i%d", s->next_id++);
    i->revision = rev;
    i->state = st;
    i->health = h;
    i->created_ms = created;
    i->ready_since_ms = ready_since;
}

/* A running instance just started: a probe says "starting" until the next tick. */
static void sim_started(struct sim *s, struct sim_inst *i)
{
    i->state = PLAN_INST_RUNNING;
    i->health = s->want.has_probe ? PLAN_HEALTH_STARTING : PLAN_HEALTH_NONE;
    i->ready_since_ms = s->want.has_probe ? 0 : s->now;
}

/* Time passes: removals finish, restarts come back, probes pass, and the executor notes when
 * it first saw an instance ready (as it would for one it did not know about). */
static void sim_tick(struct sim *s)
{
    s->now += SIM_STEP_MS;
    size_t k = 0;
    for (size_t i = 0; i < s->n; i++) {
        struct sim_inst *in = &s->v[i];
        if (in->state == PLAN_INST_REMOVING)
            continue;
        if (in->state == PLAN_INST_RESTARTING)
            sim_started(s, in);
        else if (in->state == PLAN_INST_RUNNING && in->health == PLAN_HEALTH_STARTING)
            in->health = PLAN_HEALTH_HEALTHY, in->ready_since_ms = s->now;
        else if (sim_ready(s, in) && in->ready_since_ms == 0)
            in->ready_since_ms = s->now;
        s->v[k++] = *in;
    }
    s->n = k;
}

static void sim_apply(struct sim *s, const struct plan *p)
{
    /* Action ids point into s->v: copy them before the array changes. */
    char ids[SIM_MAX][16];
    for (size_t a = 0; a < p->n; a++)
        if (p->v[a].kind != PLAN_CREATE)
            snprintf(ids[a], sizeof(ids[a]), "%s", p->v[a].id);
    for (size_t a = 0; a < p->n; a++) {
        const struct plan_action *act = &p->v[a];
        if (act->kind == PLAN_CREATE) {
            sim_add(s, act->revision, PLAN_INST_RUNNING, PLAN_HEALTH_NONE, s->now, 0);
            sim_started(s, &s->v[s->n - 1]);
            continue;
        }
        struct sim_inst *in = sim_find(s, ids[a]);
        assert_non_null(in);
        if (act->kind == PLAN_START) {
            sim_started(s, in);
        } else if (rng_int(0, 2) == 0) {
            in->state = PLAN_INST_REMOVING; /* stopping: gone at the next tick */
        } else {
            *in = s->v[--s->n];
        }
    }
}

static void sim_random(struct sim *s)
{
    memset(s, 0, sizeof(*s));
    s->now = 10000000;
    int64_t target = rng_int(1, 4);
    static const int64_t min_ready[] = {0, 0, 0, 1000, 2500, 5000};
    s->want = (struct plan_service){
        .app = "shop",
        .service = "web",
        .revision = target,
        .replicas = rng_int(0, 10),
        .recreate = rng_int(0, 4) == 0,
        .max_surge = rng_int(0, 3),
        .max_unavailable = rng_int(0, 3),
        .has_probe = rng_int(0, 3) != 0,
        .min_ready_ms = min_ready[rng_int(0, (int)ORCH_ARRAY_LEN(min_ready) - 1)],
    };
    int n = rng_int(0, 12);
    for (int k = 0; k < n; k++) {
        /* Mostly recent revisions, sometimes a higher one (after a rollback). */
        int64_t rev = target - rng_int(0, 2);
        if (rev < 1 || rng_int(0, 9) == 0)
            rev = target + 1;
        int r = rng_int(0, 99);
        enum plan_inst_state st = r < 50   ? PLAN_INST_RUNNING
                                  : r < 58 ? PLAN_INST_CREATED
                                  : r < 65 ? PLAN_INST_RESTARTING
                                  : r < 70 ? PLAN_INST_PAUSED
                                  : r < 80 ? PLAN_INST_EXITED
                                  : r < 85 ? PLAN_INST_DEAD
                                           : PLAN_INST_REMOVING;
        /* Orch never pauses a container; a paused one of the target revision is a human's
         * and left alone (see the table), so it could never converge here. */
        if (st == PLAN_INST_PAUSED && rev == target)
            st = PLAN_INST_RUNNING;
        enum plan_health h = PLAN_HEALTH_NONE;
        int64_t ready_since = 0;
        if (st == PLAN_INST_RUNNING) {
            int hr = rng_int(0, 99);
            if (s->want.has_probe)
                h = hr < 60   ? PLAN_HEALTH_HEALTHY
                    : hr < 80 ? PLAN_HEALTH_STARTING
                              : PLAN_HEALTH_UNHEALTHY;
            else
                h = hr < 85 ? PLAN_HEALTH_NONE : PLAN_HEALTH_UNHEALTHY;
            if (h != PLAN_HEALTH_UNHEALTHY && h != PLAN_HEALTH_STARTING && rng_int(0, 19) != 0)
                ready_since = s->now - rng_int(0, 6000);
        }
        sim_add(s, rev, st, h, s->now - rng_int(0, 100000), ready_since);
    }
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp((const char *)a, (const char *)b);
}

/* The plan as a sorted list of rendered actions, for order-insensitive comparison. */
static void plan_sorted(const struct plan *p, char (*out)[96])
{
    for (size_t i = 0; i < p->n; i++)
        action_render(&p->v[i], out[i], 96);
    qsort(out, p->n, 96, cmp_str);
}

static void assert_plans_same_multiset(const struct plan *a, const struct plan *b)
{
    char ra[SIM_MAX * 2][96], rb[SIM_MAX * 2][96];
    assert_int_equal(a->n, b->n);
    plan_sorted(a, ra);
    plan_sorted(b, rb);
    for (size_t i = 0; i < a->n; i++)
        assert_string_equal(ra[i], rb[i]);
}

/* Planning is a function of the set of instances: the same plan for a shuffled input, and for
 * an input with an entry repeated. */
static void check_input_independence(struct sim *s, const struct plan_instance *have,
                                     const struct plan *p)
{
    struct plan_instance shuffled[SIM_MAX + 1];
    memcpy(shuffled, have, s->n * sizeof(*have));
    for (size_t i = s->n; i > 1; i--) {
        size_t j = (size_t)rng_int(0, (int)i - 1);
        struct plan_instance t = shuffled[i - 1];
        shuffled[i - 1] = shuffled[j];
        shuffled[j] = t;
    }
    size_t n = s->n;
    if (n > 0)
        shuffled[n++] = shuffled[rng_int(0, (int)s->n - 1)];
    struct plan q = {0};
    struct orch_error err = {0};
    assert_int_equal(plan_service_compute(&s->want, shuffled, n, s->now, &q, &err), 0);
    assert_plans_same_multiset(p, &q);
    plan_free(&q);
}

/* The safety invariants of one step, from the state before it. */
static void check_step(struct sim *s, const struct plan_instance *have, const struct plan *p,
                       uint64_t seed, int step)
{
    const struct plan_service *w = &s->want;
    int64_t unavailable = w->max_unavailable;
    if (w->max_surge == 0 && unavailable == 0)
        unavailable = 1;
    int64_t min_avail = w->replicas - unavailable > 0 ? w->replicas - unavailable : 0;

    int alive = 0, available = 0, ready = 0, removable = 0;
    bool old_present = false;
    for (size_t i = 0; i < s->n; i++) {
        const struct sim_inst *in = &s->v[i];
        alive += sim_alive(in);
        available += sim_available(s, in);
        ready += sim_ready(s, in);
        removable += in->state != PLAN_INST_REMOVING;
        if (in->revision != w->revision && (sim_alive(in) || in->state == PLAN_INST_REMOVING))
            old_present = true;
    }

    int creates = 0, starts = 0, removed = 0, removed_avail = 0, removed_ready = 0;
    bool counted_avail = false, counted_ready = false; /* removals the floor governs */
    for (size_t a = 0; a < p->n; a++) {
        const struct plan_action *act = &p->v[a];
        if (act->kind == PLAN_CREATE) {
            creates++;
            continue;
        }
        if (act->kind == PLAN_START) {
            starts++;
            continue;
        }
        const struct sim_inst *in = sim_find(s, act->id);
        removed++;
        removed_avail += sim_available(s, in);
        removed_ready += sim_ready(s, in);
        /* Recreate accepts the downtime of its old instances. */
        bool exempt = w->recreate && in->revision != w->revision;
        counted_avail |= sim_available(s, in) && !exempt;
        counted_ready |= sim_ready(s, in) && !exempt;
    }

    if (creates > 0 && alive + creates > w->replicas + w->max_surge)
        fail_msg("seed %llu step %d: %d alive + %d created > %d + %d", (unsigned long long)seed,
                 step, alive, creates, w->replicas, w->max_surge);
    /* Removing an available instance must leave the floor available, removing a ready one
     * the floor ready; a not-ready one costs nothing. */
    if ((counted_avail && available - removed_avail < min_avail) ||
        (counted_ready && ready - removed_ready < min_avail))
        fail_msg("seed %llu step %d: removals leave %d available / %d ready < min_avail %lld",
                 (unsigned long long)seed, step, available - removed_avail, ready - removed_ready,
                 (long long)min_avail);
    if (w->recreate && old_present && (creates > 0 || starts > 0))
        fail_msg("seed %llu step %d: recreate creates beside old instances",
                 (unsigned long long)seed, step);
    if (w->replicas == 0 && (creates > 0 || removed != removable))
        fail_msg("seed %llu step %d: replicas 0 keeps something", (unsigned long long)seed, step);
}

static void test_plan_property(void **state)
{
    uint64_t base = 0x9e3779b97f4a7c15ULL;
    const char *env = getenv("PLAN_SEED");
    if (env != NULL)
        base = strtoull(env, NULL, 0);
    int worst_steps = 0;
    long total_actions = 0;

    for (int c = 0; c < SIM_CASES; c++) {
        uint64_t seed = base + (uint64_t)c;
        rng_state = seed ? seed : 1;
        struct sim s;
        sim_random(&s);
        int initial = (int)s.n;

        /* Each instance replaced costs at most a removal, a create, a probe pass, min_ready
         * and a removal in progress; one at a time in the slowest settings. */
        int wait = (int)(s.want.min_ready_ms / SIM_STEP_MS) + 1;
        int bound = 6 + (s.want.replicas + initial + 2) * (wait + 4);
        bool converged = false;
        int step;
        for (step = 0; step <= bound; step++) {
            if (step > 0)
                sim_tick(&s);
            struct plan_instance have[SIM_MAX + 1];
            sim_view(&s, have);
            struct plan p = {0}, again = {0};
            struct orch_error err = {0};
            if (plan_service_compute(&s.want, have, s.n, s.now, &p, &err) != 0)
                fail_msg("seed %llu: %s", (unsigned long long)seed, err.msg);
            assert_plan_well_formed(&s.want, have, s.n, &p);
            /* Deterministic: the same input plans the same, in the same order. */
            assert_int_equal(plan_service_compute(&s.want, have, s.n, s.now, &again, &err), 0);
            assert_int_equal(again.n, p.n);
            for (size_t i = 0; i < p.n; i++) {
                char x[96], y[96];
                action_render(&p.v[i], x, sizeof(x));
                action_render(&again.v[i], y, sizeof(y));
                assert_string_equal(x, y);
            }
            plan_free(&again);
            check_input_independence(&s, have, &p);
            check_step(&s, have, &p, seed, step);

            struct plan_counts counts;
            plan_counts_compute(&s.want, have, s.n, s.now, &counts);
            if (plan_counts_converged(&counts)) {
                if (p.n != 0)
                    fail_msg("seed %llu step %d: converged but plans %zu actions",
                             (unsigned long long)seed, step, p.n);
                converged = true;
                plan_free(&p);
                break;
            }
            total_actions += (long)p.n;
            sim_apply(&s, &p);
            plan_free(&p);
        }
        if (!converged)
            fail_msg("seed %llu: not converged after %d steps (replicas %d surge %d unav %d "
                     "recreate %d probe %d min_ready %lld, %d initial)",
                     (unsigned long long)seed, bound, s.want.replicas, s.want.max_surge,
                     s.want.max_unavailable, s.want.recreate, s.want.has_probe,
                     (long long)s.want.min_ready_ms, initial);
        if (step > worst_steps)
            worst_steps = step;

        /* Converged means the desired state, checked independently of plan.c, and it stays
         * put: time passes, nothing to do. */
        int alive = 0;
        for (size_t i = 0; i < s.n; i++) {
            if (s.v[i].state == PLAN_INST_REMOVING)
                continue;
            assert_true(sim_alive(&s.v[i]));
            assert_int_equal(s.v[i].revision, s.want.revision);
            assert_true(sim_available(&s, &s.v[i]));
            alive++;
        }
        assert_int_equal(alive, s.want.replicas);
        for (int k = 0; k < 3; k++) {
            sim_tick(&s);
            struct plan_instance have[SIM_MAX];
            sim_view(&s, have);
            struct plan p = {0};
            struct orch_error err = {0};
            assert_int_equal(plan_service_compute(&s.want, have, s.n, s.now, &p, &err), 0);
            assert_int_equal(p.n, 0);
        }
    }
    print_message("%d random services converged; at most %d steps, %ld actions\n", SIM_CASES,
                  worst_steps, total_actions);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plan_table),    cmocka_unit_test(test_plan_invalid),
        cmocka_unit_test(test_plan_orphans),  cmocka_unit_test(test_plan_counts),
        cmocka_unit_test(test_plan_resolve),  cmocka_unit_test(test_plan_names),
        cmocka_unit_test(test_plan_property),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
