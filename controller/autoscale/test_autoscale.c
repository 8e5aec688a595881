/* Table tests of the autoscaler's decision. The replica-calculator rows are the Kubernetes
 * HPA's own cases (pkg/controller/podautoscaler/replica_calculator_test.go, named after its
 * test functions), translated: a pod's CPU request is an instance's limit, a pending or unready
 * pod an unready instance, a pod without a metric a ready instance without one. The decision
 * rows follow the HPA's default behavior (horizontal_test.go): the scale-up rate, the
 * scale-down window, min/max; then flapping, bounds and missing metrics. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "autoscale/autoscale.h"
#include "base/util.h"

#define MAXI 12

/* Instances in a row: R(v) ready with a measure of v, RL(v, lim) with a CPU limit in
 * millicores (default 1000), U(v) unready with a measure, UP pending (unready, no measure),
 * M ready without a measure. */
enum ikind { I_END, I_READY, I_UNREADY, I_MISSING };
struct inst {
    enum ikind kind;
    int64_t value;
    int64_t limit;
    bool has;
};
#define R(v)                                                                                       \
    {                                                                                              \
        I_READY, (v), 1000, true                                                                   \
    }
#define RL(v, l)                                                                                   \
    {                                                                                              \
        I_READY, (v), (l), true                                                                    \
    }
#define U(v)                                                                                       \
    {                                                                                              \
        I_UNREADY, (v), 1000, true                                                                 \
    }
#define UP                                                                                         \
    {                                                                                              \
        I_UNREADY, 0, 1000, false                                                                  \
    }
#define M                                                                                          \
    {                                                                                              \
        I_MISSING, 0, 1000, false                                                                  \
    }

static size_t build(const struct inst *in, enum autoscale_target_kind kind,
                    struct autoscale_instance *out)
{
    size_t n = 0;
    for (; n < MAXI && in[n].kind != I_END; n++) {
        struct autoscale_instance *o = &out[n];
        memset(o, 0, sizeof(*o));
        o->ready = in[n].kind != I_UNREADY;
        o->cpu_limit_milli = in[n].limit;
        if (kind == AUTOSCALE_CPU) {
            o->has_cpu = in[n].has;
            o->cpu_milli = in[n].value;
        } else {
            o->has_rps = in[n].has;
            o->rps_milli = in[n].value;
        }
    }
    return n;
}

/* ---- step 1: the HPA's replica-calculator cases ----------------------------------------- */

struct calc_row {
    const char *name;
    enum autoscale_target_kind kind;
    int current;
    int64_t target;
    int want;         /* -1: no recommendation (the HPA returns an error) */
    int64_t measured; /* the HPA's expectedUtilization */
    struct inst inst[MAXI];
};

static const struct calc_row calc_rows[] = {
    {"ScaleUp", AUTOSCALE_CPU, 3, 30, 5, 50, {R(300), R(500), R(700)}},
    {"ScaleUpUnreadyLessScale", AUTOSCALE_CPU, 3, 30, 4, 60, {U(300), R(500), R(700)}},
    {"ScaleUpUnreadyNoScale", AUTOSCALE_CPU, 3, 30, 3, 40, {R(400), U(500), U(700)}},
    /* failed and deleting pods are not passed at all */
    {"ScaleUpIgnoresFailedPods", AUTOSCALE_CPU, 2, 30, 4, 60, {R(500), R(700)}},
    {"ScaleDown", AUTOSCALE_CPU, 5, 50, 3, 28, {R(100), R(300), R(500), R(250), R(250)}},
    {"ScaleDownIncludeUnreadyPods",
     AUTOSCALE_CPU,
     5,
     50,
     2,
     30,
     {R(100), R(300), R(500), U(250), U(250)}},
    {"ScaleDownExcludeUnscheduledPods", AUTOSCALE_CPU, 5, 50, 1, 10, {R(100), UP, UP, UP, UP}},
    {"Tolerance", AUTOSCALE_CPU, 3, 100, 3, 102, {RL(1010, 900), RL(1030, 1000), RL(1020, 1100)}},
    {"SuperfluousMetrics", AUTOSCALE_CPU, 4, 100, 24, 587, {R(4000), R(9500), R(3000), R(7000)}},
    {"MissingMetrics", AUTOSCALE_CPU, 4, 100, 3, 24, {R(400), R(95), M, M}},
    {"EmptyMetrics", AUTOSCALE_CPU, 4, 100, -1, 0, {M, M, M}},
    {"MissingMetricsNoChangeEq", AUTOSCALE_CPU, 2, 100, 2, 100, {R(1000), M}},
    {"MissingMetricsNoChangeGt", AUTOSCALE_CPU, 2, 100, 2, 190, {R(1900), M}},
    {"MissingMetricsNoChangeLt", AUTOSCALE_CPU, 2, 100, 2, 60, {R(600), M}},
    {"MissingMetricsUnreadyChange", AUTOSCALE_CPU, 3, 50, 3, 45, {U(100), R(450), M}},
    {"MissingMetricsUnreadyScaleUp", AUTOSCALE_CPU, 3, 50, 4, 200, {U(100), R(2000), M}},
    {"MissingMetricsUnreadyScaleDown", AUTOSCALE_CPU, 4, 50, 3, 10, {U(100), R(100), R(100), M}},
    {"DuringRollingUpdateWithMaxSurge", AUTOSCALE_CPU, 2, 50, 2, 10, {R(100), R(100), M}},
    /* ComputedToleranceAlgImplementation: 150m used of ~300m each, target 56 % -> 9; at 55 %
     * the change is within the tolerance -> 10 */
    {"ComputedToleranceAlg",
     AUTOSCALE_CPU,
     10,
     56,
     9,
     50,
     {RL(150, 400), RL(150, 200), RL(150, 310), RL(150, 290), RL(150, 302), RL(150, 298),
      RL(150, 301), RL(150, 299), RL(150, 300), RL(150, 300)}},
    {"ComputedToleranceAlg (no scale)",
     AUTOSCALE_CPU,
     10,
     55,
     10,
     50,
     {RL(150, 400), RL(150, 200), RL(150, 310), RL(150, 290), RL(150, 302), RL(150, 298),
      RL(150, 301), RL(150, 299), RL(150, 300), RL(150, 300)}},
    /* plain per-instance metrics (requests per second, in milli-units) */
    {"ScaleUpCM", AUTOSCALE_RPS, 3, 15000, 4, 20000, {R(20000), R(10000), R(30000)}},
    /* the HPA counts running-but-unready pods for plain metrics; orch's caller decides
     * readiness, and passes them as ready to get the HPA's answer */
    {"ScaleUpCMUnreadyHotCpuNoLessScale",
     AUTOSCALE_RPS,
     3,
     15000,
     6,
     30000,
     {R(50000), R(10000), R(30000)}},
    {"ScaleUpCMUnreadyHotCpuScaleWouldScaleDown",
     AUTOSCALE_RPS,
     3,
     15000,
     7,
     31666,
     {R(50000), R(15000), R(30000)}},
    {"ScaleDownCM",
     AUTOSCALE_RPS,
     5,
     20000,
     3,
     12000,
     {R(12000), R(12000), R(12000), R(12000), R(12000)}},
    {"ToleranceCM", AUTOSCALE_RPS, 3, 20000, 3, 20666, {R(20000), R(21000), R(21000)}},
    /* orch's own plain-metric cases: missing as the target on a scale-down, 0 on a scale-up */
    {"rps missing counts as the target when down",
     AUTOSCALE_RPS,
     4,
     10000,
     3,
     2000,
     {R(2000), R(2000), M, M}},
    {"rps missing counts as 0 when up", AUTOSCALE_RPS, 2, 10000, 3, 30000, {R(30000), M}},
    {"rps unready count as 0 when up", AUTOSCALE_RPS, 2, 10000, 3, 30000, {R(30000), U(0)}},
    {"rps unready left out when down",
     AUTOSCALE_RPS,
     4,
     10000,
     1,
     1000,
     {R(1000), U(50000), U(50000), U(50000)}},
    {"no instance at all", AUTOSCALE_CPU, 3, 50, -1, 0, {{I_END}}},
    /* glitches: a negative measure is none; an absurd one is bounded, not an overflow */
    {"negative measure is missing", AUTOSCALE_CPU, 2, 50, 2, 10, {R(100), R(-5)}},
    {"absurd measure is capped",
     AUTOSCALE_CPU,
     2,
     50,
     1000000,
     100000000000LL,
     {R(INT64_MAX), R(INT64_MAX)}},
    {"only unready", AUTOSCALE_CPU, 3, 50, -1, 0, {U(900), UP}},
};

static void test_calc_hpa_cases(void **state)
{
    (void)state;
    for (size_t k = 0; k < ORCH_ARRAY_LEN(calc_rows); k++) {
        const struct calc_row *r = &calc_rows[k];
        struct autoscale_instance inst[MAXI];
        struct autoscale_target_result res;
        size_t n = build(r->inst, r->kind, inst);
        int got = autoscale_calc(r->kind, r->current, r->target, inst, n, &res);
        if (got != r->want || (r->want >= 0 && res.measured != r->measured)) {
            print_error("%s: want %d (measured %lld), got %d (measured %lld)\n", r->name, r->want,
                        (long long)r->measured, got, (long long)res.measured);
            fail();
        }
        assert_int_equal(res.valid, r->want >= 0);
    }
}

/* ---- the decision: one sync at a time -------------------------------------------------- */

static struct autoscale_policy policy(int min, int max, int cpu, int64_t rps, int64_t delay_ms)
{
    return (struct autoscale_policy){.min = min,
                                     .max = max,
                                     .cpu_percent = cpu,
                                     .rps_milli = rps,
                                     .scale_down_delay_ms = delay_ms};
}

/* n ready instances at cpu_milli each (limit one core). */
static size_t uniform(struct autoscale_instance *inst, size_t n, int64_t cpu_milli)
{
    for (size_t k = 0; k < n; k++)
        inst[k] = (struct autoscale_instance){
            .ready = true, .has_cpu = true, .cpu_milli = cpu_milli, .cpu_limit_milli = 1000};
    return n;
}

static struct autoscale_decision sync_at(struct autoscale_state *st,
                                         const struct autoscale_policy *p, int64_t now_ms,
                                         int current, const struct autoscale_instance *inst,
                                         size_t n)
{
    struct autoscale_input in = {
        .now_ms = now_ms, .current = current, .instances = inst, .n_instances = n, .policy = p};
    struct autoscale_decision d;
    struct orch_error err = {0};
    assert_int_equal(autoscale_decide(&in, st, &d, &err), 0);
    assert_true(d.reason[0] != '\0');
    return d;
}

/* A service whose instances all run at cpu_milli: one sync at now_ms. */
static struct autoscale_decision sync_uniform(struct autoscale_state *st,
                                              const struct autoscale_policy *p, int64_t now_ms,
                                              int current, int64_t cpu_milli)
{
    struct autoscale_instance inst[1000];
    size_t n = uniform(inst, (size_t)current, cpu_milli);
    return sync_at(st, p, now_ms, current, inst, n);
}

struct decide_row {
    const char *name;
    int min, max, cpu;
    int64_t delay_ms;
    int current;
    int64_t cpu_milli; /* every instance */
    int want;
    int want_rec;
    unsigned want_limits;
};

/* One sync each on a fresh state (so a scale-down is held by the seeded window unless the
 * delay is 0). */
static const struct decide_row decide_rows[] = {
    {"scale up 3 -> 6", 1, 10, 50, 0, 3, 1000, 6, 6, 0},
    {"within tolerance", 1, 10, 70, 0, 3, 750, 3, 3, 0},
    {"just outside tolerance", 1, 20, 70, 0, 10, 780, 12, 12, 0},
    {"rate: 1 -> 5 (+4 beats +100 %)", 1, 100, 10, 0, 1, 1000, 5, 10, AUTOSCALE_LIMIT_RATE},
    {"rate: 10 -> 20 (+100 % beats +4)", 1, 100, 10, 0, 10, 1000, 20, 100, AUTOSCALE_LIMIT_RATE},
    {"rate: 3 -> 7", 1, 100, 10, 0, 3, 1000, 7, 30, AUTOSCALE_LIMIT_RATE},
    {"max before rate", 1, 6, 10, 0, 3, 1000, 6, 30, AUTOSCALE_LIMIT_MAX},
    {"max wins when the rate would allow more", 1, 8, 20, 0, 4, 1000, 8, 20, AUTOSCALE_LIMIT_MAX},
    {"scale down with no window", 1, 10, 50, 0, 6, 100, 2, 2, 0},
    {"scale down held by the seeded window", 1, 10, 50, 300000, 6, 100, 6, 2,
     AUTOSCALE_LIMIT_STABILIZED},
    {"scale down to min", 2, 10, 50, 0, 6, 0, 2, 0, AUTOSCALE_LIMIT_MIN},
    {"idle at min stays", 2, 10, 50, 0, 2, 0, 2, 0, AUTOSCALE_LIMIT_MIN},
    {"above max", 1, 4, 50, 300000, 7, 1000, 4, -1, AUTOSCALE_LIMIT_MAX},
    {"below min", 3, 10, 50, 300000, 1, 0, 3, -1, AUTOSCALE_LIMIT_MIN},
    {"scaled to zero by hand stays off", 1, 10, 50, 0, 0, 0, 0, -1, 0},
};

static void test_decide_table(void **state)
{
    (void)state;
    for (size_t k = 0; k < ORCH_ARRAY_LEN(decide_rows); k++) {
        const struct decide_row *r = &decide_rows[k];
        struct autoscale_policy p = policy(r->min, r->max, r->cpu, 0, r->delay_ms);
        struct autoscale_state st = {0};
        struct autoscale_decision d = sync_uniform(&st, &p, 1000000, r->current, r->cpu_milli);
        if (d.desired != r->want || d.recommendation != r->want_rec || d.limits != r->want_limits) {
            print_error("%s: want %d (rec %d, limits %#x), got %d (rec %d, limits %#x): %s\n",
                        r->name, r->want, r->want_rec, r->want_limits, d.desired, d.recommendation,
                        d.limits, d.reason);
            fail();
        }
        assert_int_equal(d.current, r->current);
    }
}

static void test_reason_line(void **state)
{
    (void)state;
    struct autoscale_policy p = policy(1, 100, 10, 0, 0);
    struct autoscale_state st = {0};
    struct autoscale_decision d = sync_uniform(&st, &p, 0, 3, 1000);
    assert_string_equal(d.reason, "scale up 3 -> 7: cpu 100% of target 10% over 3 ready -> 30; "
                                  "cut to 7 by the rate limit (max(+4, +100%) per 15s)");
    /* a change within the tolerance, and one the guesses reverse */
    st = (struct autoscale_state){0};
    d = sync_uniform(&st, &p, 0, 3, 105);
    assert_string_equal(d.reason, "keep 3: cpu 10% of target 10% over 3 ready -> 3 (within 10%)");
    struct autoscale_policy p50 = policy(1, 10, 50, 0, 0);
    struct autoscale_instance inst[3];
    uniform(inst, 3, 450);
    inst[0].ready = false;
    inst[2].has_cpu = false;
    d = sync_at(&st, &p50, 0, 3, inst, 3); /* MissingMetricsUnreadyChange */
    assert_int_equal(d.desired, 3);
    assert_string_equal(d.reason,
                        "keep 3: cpu 45% of target 50% over 1 ready (1 unready left out) "
                        "(1 without a metric) -> 3 (counting the others would reverse the "
                        "direction)");
    uniform(inst, 3, 1000);
    inst[0].ready = false;
    inst[1].ready = false;
    inst[2].cpu_milli = 540; /* 54 % > 50 %, but with two idle unready ones 18 %: reversed */
    d = sync_at(&st, &p50, 0, 3, inst, 3);
    assert_int_equal(d.desired, 3);
    assert_non_null(strstr(d.reason, "-> 3 (counting the others would reverse the direction)"));

    char limits[64];
    autoscale_limits_format(AUTOSCALE_LIMIT_STABILIZED | AUTOSCALE_LIMIT_MISSING, limits,
                            sizeof(limits));
    assert_string_equal(limits, "stabilized, missing metrics");
    autoscale_limits_format(0, limits, sizeof(limits));
    assert_string_equal(limits, "");
}

/* The scale-up rate counts from the count 15 s ago: a second step inside the period gets
 * nothing more, the next period doubles again. */
static void test_rate_per_period(void **state)
{
    (void)state;
    struct autoscale_policy p = policy(1, 100, 10, 0, 300000);
    struct autoscale_state st = {0};
    struct autoscale_decision d = sync_uniform(&st, &p, 0, 1, 1000);
    assert_int_equal(d.desired, 5);
    d = sync_uniform(&st, &p, 5000, 5, 1000);
    assert_int_equal(d.desired, 5);
    assert_int_equal(d.up_limit, 5);
    assert_int_equal(d.limits, AUTOSCALE_LIMIT_RATE);
    d = sync_uniform(&st, &p, 14999, 5, 1000);
    assert_int_equal(d.desired, 5);
    d = sync_uniform(&st, &p, 15000, 5, 1000); /* the first step is 15 s old: out */
    assert_int_equal(d.desired, 10);
    d = sync_uniform(&st, &p, 30000, 10, 1000);
    assert_int_equal(d.desired, 20);
    d = sync_uniform(&st, &p, 45000, 20, 1000);
    assert_int_equal(d.desired, 40);
}

/* A scale-down waits until every higher recommendation has left the window. */
static void test_window(void **state)
{
    (void)state;
    const int64_t delay = 60000;
    struct autoscale_policy p = policy(1, 10, 50, 0, delay);
    struct autoscale_state st = {0};
    /* at 0: load at target (keep 6; the seeded window holds 6) */
    struct autoscale_decision d = sync_uniform(&st, &p, 0, 6, 500);
    assert_int_equal(d.desired, 6);
    /* load drops to a tenth: recommendation 2 from 5 s on */
    for (int64_t t = 5000; t < delay; t += 5000) {
        d = sync_uniform(&st, &p, t, 6, 50);
        assert_int_equal(d.recommendation, 1);
        assert_int_equal(d.desired, 6);
        assert_int_equal(d.window_highest, 6);
        assert_true(d.limits & AUTOSCALE_LIMIT_STABILIZED);
    }
    d = sync_uniform(&st, &p, delay, 6, 50); /* the 6 of t=0 is exactly one window old: out */
    assert_int_equal(d.desired, 1);
    assert_int_equal(d.limits, 0);

    /* a higher recommendation inside the window caps how far down it goes */
    struct autoscale_state st2 = {0};
    sync_uniform(&st2, &p, 0, 8, 500);        /* 8, seeded */
    sync_uniform(&st2, &p, 30000, 8, 250);    /* rec 4 */
    d = sync_uniform(&st2, &p, 60000, 8, 50); /* rec 1; the 8 is out, the 4 is in */
    assert_int_equal(d.desired, 4);
    assert_int_equal(d.stabilized, 4);
    d = sync_uniform(&st2, &p, 90000, 4, 100); /* rec 1; the 4 of 30 s is out */
    assert_int_equal(d.desired, 1);
}

/* A scale-up is never held by the window. */
static void test_up_not_held(void **state)
{
    (void)state;
    struct autoscale_policy p = policy(1, 10, 50, 0, 300000);
    struct autoscale_state st = {0};
    sync_uniform(&st, &p, 0, 2, 100);
    struct autoscale_decision d = sync_uniform(&st, &p, 5000, 2, 1000);
    assert_int_equal(d.desired, 4);
    assert_int_equal(d.limits, 0);
}

/* An oscillating metric: every high recommendation stays in the window for scale_down_delay,
 * so with a period shorter than the window the count never goes down, and with a longer one
 * there is exactly one scale-down per low phase, each at least a window after the last high. */
static void test_flapping(void **state)
{
    (void)state;
    const int64_t delay = 60000, sync = 5000;
    struct autoscale_policy p = policy(1, 20, 50, 0, delay);
    struct autoscale_state st = {0};
    int current = 4, downs = 0, ups = 0;

    /* alternate 90 % / 10 % every sync for 10 minutes */
    for (int64_t t = 0; t < 600000; t += sync) {
        int64_t load = (t / sync) % 2 == 0 ? 900 : 100;
        /* the load is total work spread over the instances: per instance it falls as it grows */
        struct autoscale_decision d = sync_uniform(&st, &p, t, current, load * 4 / current);
        if (d.desired < current)
            downs++;
        if (d.desired > current)
            ups++;
        current = d.desired;
    }
    assert_int_equal(downs, 0);
    assert_true(ups >= 1);

    /* square wave: 2 minutes at 90 %, 2 minutes at 10 %, for 20 minutes */
    struct autoscale_state st2 = {0};
    int64_t last_down = -1, last_high = -1;
    int lows = 0;
    current = 4;
    downs = 0;
    for (int64_t t = 0; t < 1200000; t += sync) {
        bool high = (t / 120000) % 2 == 0;
        if (!high && t % 120000 == 0)
            lows++;
        struct autoscale_decision d =
            sync_uniform(&st2, &p, t, current, (high ? 900 : 100) * 4 / current);
        if (high)
            last_high = t;
        if (d.desired < current) {
            downs++;
            assert_true(last_down < 0 || t - last_down >= delay);
            assert_true(t - last_high >= delay);
            last_down = t;
        }
        current = d.desired;
    }
    assert_int_equal(downs, lows);
}

/* Missing metrics never cause a scale-down. */
static void test_missing_metrics(void **state)
{
    (void)state;
    struct autoscale_policy cpu_only = policy(1, 10, 50, 0, 0);
    struct autoscale_policy both = policy(1, 10, 50, 100000, 0);
    struct autoscale_instance inst[4];
    struct autoscale_state st = {0};
    struct autoscale_decision d;

    /* no metric at all: keep */
    for (size_t k = 0; k < 4; k++)
        inst[k] = (struct autoscale_instance){.ready = true, .cpu_limit_milli = 1000};
    d = sync_at(&st, &cpu_only, 0, 4, inst, 4);
    assert_int_equal(d.desired, 4);
    assert_int_equal(d.recommendation, -1);
    assert_false(d.cpu.valid);

    /* CPU says down, requests have no metric: the missing target vetoes it */
    uniform(inst, 4, 50);
    d = sync_at(&st, &both, 5000, 4, inst, 4);
    assert_int_equal(d.desired, 4);
    assert_int_equal(d.recommendation, 1);
    assert_int_equal(d.limits, AUTOSCALE_LIMIT_MISSING);
    assert_true(d.cpu.valid);
    assert_false(d.rps.valid);

    /* CPU says up, requests have no metric: up it goes */
    uniform(inst, 4, 1000);
    d = sync_at(&st, &both, 10000, 4, inst, 4);
    assert_int_equal(d.desired, 8);

    /* half the instances lack a CPU metric and the others idle: counted as busy, 2 not 1 */
    uniform(inst, 4, 0);
    inst[2].has_cpu = inst[3].has_cpu = false;
    struct autoscale_state st2 = {0};
    d = sync_at(&st2, &cpu_only, 0, 4, inst, 4);
    assert_int_equal(d.desired, 4); /* ratio 0 -> 2000/4000 = 50 % = target: keep */

    /* every instance starting: no metric from a ready one, keep */
    for (size_t k = 0; k < 4; k++)
        inst[k] = (struct autoscale_instance){.ready = false, .has_cpu = true, .cpu_milli = 900};
    d = sync_at(&st2, &cpu_only, 5000, 4, inst, 4);
    assert_int_equal(d.desired, 4);
    assert_int_equal(d.cpu.unready, 4);
}

/* With two targets the larger recommendation wins, both ways. */
static void test_two_targets(void **state)
{
    (void)state;
    struct autoscale_policy p = policy(1, 20, 50, 10000, 0); /* 50 % CPU, 10 rps */
    struct autoscale_instance inst[4];
    struct autoscale_state st = {0};
    uniform(inst, 4, 250); /* CPU says 2 */
    for (size_t k = 0; k < 4; k++) {
        inst[k].has_rps = true;
        inst[k].rps_milli = 20000; /* requests say 8 */
    }
    struct autoscale_decision d = sync_at(&st, &p, 0, 4, inst, 4);
    assert_int_equal(d.cpu.recommendation, 2);
    assert_int_equal(d.rps.recommendation, 8);
    assert_int_equal(d.desired, 8);
    for (size_t k = 0; k < 4; k++)
        inst[k].rps_milli = 2500; /* requests say 1, CPU 2 */
    d = sync_at(&st, &p, 5000, 4, inst, 4);
    assert_int_equal(d.desired, 2);
}

/* Random syncs: the count never leaves min..max once inside, never exceeds the rate limit,
 * and a scale-down is never below the window's highest recommendation. */
static void test_bounds_property(void **state)
{
    (void)state;
    uint64_t seed = 0x5eed;
    for (int run = 0; run < 200; run++) {
        seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
        int min = 1 + (int)((seed >> 33) % 5);
        int max = min + (int)((seed >> 40) % 30);
        int cpu = 10 + (int)((seed >> 20) % 90);
        int64_t delay = (int64_t)((seed >> 50) % 4) * 30000;
        struct autoscale_policy p = policy(min, max, cpu, 0, delay);
        struct autoscale_state st = {0};
        int current = min;
        for (int64_t t = 0; t < 600000; t += 5000) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            int64_t per = (int64_t)((seed >> 33) % 3000);
            struct autoscale_decision d = sync_uniform(&st, &p, t, current, per);
            assert_true(d.desired >= min && d.desired <= max);
            if (d.desired > current)
                assert_true(d.desired <= d.up_limit);
            if (d.desired < current)
                assert_true(d.desired >= d.recommendation);
            current = d.desired;
        }
    }
}

static void test_invalid_policy(void **state)
{
    (void)state;
    struct autoscale_state st = {0};
    struct autoscale_decision d;
    struct orch_error err = {0};
    const struct autoscale_policy bad[] = {
        policy(3, 2, 50, 0, 0),  /* min > max */
        policy(0, 0, 50, 0, 0),  /* max < 1 */
        policy(1, 5, 0, 0, 0),   /* no target */
        policy(1, 5, -1, 0, 0),  /* negative */
        policy(1, 5, 50, 0, -1), /* negative delay */
    };
    for (size_t k = 0; k < ORCH_ARRAY_LEN(bad); k++) {
        struct autoscale_input in = {.current = 2, .policy = &bad[k]};
        assert_int_equal(autoscale_decide(&in, &st, &d, &err), -ORCH_E_INVALID);
        assert_int_equal(err.code, ORCH_E_INVALID);
    }
    struct autoscale_input none = {.current = 2};
    assert_int_equal(autoscale_decide(&none, &st, &d, &err), -ORCH_E_INVALID);
    assert_int_equal(st.n_recs, 0);
}

/* The bounded lists: a sync every millisecond for a long window keeps at most
 * AUTOSCALE_MAX_RECS entries, and stays conservative when full. */
static void test_state_bounded(void **state)
{
    (void)state;
    struct autoscale_policy p = policy(1, 1000, 100, 0, 3600000);
    struct autoscale_state st = {0};
    int current = 600;
    /* a falling load: every recommendation lower than the last, so every one is kept */
    for (int64_t t = 0; t < 1000; t++) {
        struct autoscale_decision d = sync_uniform(&st, &p, t, current, 1000 - t);
        assert_int_equal(d.desired, 600);
        assert_true(st.n_recs <= AUTOSCALE_MAX_RECS);
    }
    assert_int_equal(st.n_recs, AUTOSCALE_MAX_RECS);
    assert_int_equal(st.recs[0].replicas, 600);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_calc_hpa_cases), cmocka_unit_test(test_decide_table),
        cmocka_unit_test(test_reason_line),    cmocka_unit_test(test_rate_per_period),
        cmocka_unit_test(test_window),         cmocka_unit_test(test_up_not_held),
        cmocka_unit_test(test_flapping),       cmocka_unit_test(test_missing_metrics),
        cmocka_unit_test(test_two_targets),    cmocka_unit_test(test_bounds_property),
        cmocka_unit_test(test_invalid_policy), cmocka_unit_test(test_state_bounded),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
