/* The autoscaler's decision for one service: the instances' metrics + the policy + the state kept
 * since the last sync -> the replica count to run, following the Kubernetes HPA (autoscaling/v2
 * with its default behavior) step by step:
 *
 *   1. per target, the replica calculator: desired = ceil(ready × measured / target) over the
 *      ready instances that have a metric, nothing within 10 % of the target; instances missing
 *      a metric count as 100 % of their limit (CPU) or as the target (requests) on a scale-down
 *      and as 0 on a scale-up; unready instances are left out, and count as 0 on a scale-up;
 *      a recount that would reverse the direction keeps the current count;
 *   2. the larger recommendation of the CPU and requests targets wins; when a target has no
 *      metric at all, there is no scale-down (there may be a scale-up from the other target);
 *   3. scale-down stabilization: the highest recommendation of the last scale_down_delay;
 *   4. the scale-up rate: at most max(+4, +100 %) over the count 15 s ago; then min..max.
 *
 * Pure: no I/O, no clock (now_ms is an argument), no globals. What must survive between syncs
 * (recent recommendations and scale events) lives in a caller-owned struct autoscale_state,
 * which autoscale_decide updates as if its decision is carried out. */
#ifndef ORCH_AUTOSCALE_AUTOSCALE_H
#define ORCH_AUTOSCALE_AUTOSCALE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/error.h"

#define AUTOSCALE_TOLERANCE 0.1           /* the HPA's --horizontal-pod-autoscaler-tolerance */
#define AUTOSCALE_UP_PERIOD_MS 15000      /* the scale-up policies' periodSeconds */
#define AUTOSCALE_UP_PODS 4               /* +4 instances per period ... */
#define AUTOSCALE_UP_PERCENT 100          /* ... or +100 %, whichever is more */
#define AUTOSCALE_DEFAULT_DELAY_MS 300000 /* scale_down_delay: 5m, the HPA's default window */
#define AUTOSCALE_MAX_RECS 64             /* recommendations kept (see struct autoscale_state) */
#define AUTOSCALE_MAX_EVENTS 16           /* scale events kept for the rate limit */

/* One instance of the service as the sync saw it. Instances being stopped or removed are not
 * passed at all (the HPA ignores deleted and failed pods). */
struct autoscale_instance {
    bool ready;              /* running, healthy (or without a probe), past its start: counted.
                                Starting and unhealthy instances are unready */
    bool has_cpu;            /* a CPU measure exists for it (two samples taken); a negative
                                measure counts as none */
    int64_t cpu_milli;       /* CPU used, millicores (1000 = one core busy) */
    int64_t cpu_limit_milli; /* its limit: resources.cpus × 1000, or 1000 (one core) when none;
                                <= 0 is taken as 1000 */
    bool has_rps;            /* a requests-per-second measure exists for it */
    int64_t rps_milli;       /* requests (connections) per second × 1000 */
};

struct autoscale_policy {
    int min;                     /* >= 0 */
    int max;                     /* >= min, >= 1 */
    int cpu_percent;             /* target average CPU, % of the limit; 0 = no CPU target */
    int64_t rps_milli;           /* target requests per second per instance × 1000; 0 = none */
    int64_t scale_down_delay_ms; /* the stabilization window; 0 = scale down at once */
};

struct autoscale_input {
    int64_t now_ms; /* any monotonic clock, the same one on every call for this state */
    int current;    /* the service's replica count now (its desired count, not what runs) */
    const struct autoscale_instance *instances;
    size_t n_instances;
    const struct autoscale_policy *policy;
};

/* Kept by the caller between syncs of one service, zeroed before the first. Bounded: when a
 * list is full, its newest entry absorbs the new one in the conservative direction (the higher
 * recommendation, the summed change), which can only delay a scale-down or slow a scale-up.
 * After a restart, a zeroed state holds scale-downs for one window, as the HPA does. */
struct autoscale_state {
    bool seeded; /* the window was seeded with the count of the first sync */
    size_t n_recs;
    struct autoscale_rec {
        int64_t at_ms;
        int replicas;
    } recs[AUTOSCALE_MAX_RECS]; /* recommendations, oldest first, strictly decreasing values
                                   (an older lower one can never be the window's highest) */
    size_t n_events;
    struct autoscale_event {
        int64_t at_ms;
        int change; /* > 0 scale-up, < 0 scale-down */
    } events[AUTOSCALE_MAX_EVENTS];
};

/* Which limits changed the count after the recommendation (bits of autoscale_decision.limits). */
enum autoscale_limit {
    AUTOSCALE_LIMIT_STABILIZED = 1 << 0, /* a scale-down held by a higher recommendation of the
                                            window */
    AUTOSCALE_LIMIT_RATE = 1 << 1,       /* a scale-up cut by max(+4, +100 %) per 15 s */
    AUTOSCALE_LIMIT_MAX = 1 << 2,        /* cut to policy max */
    AUTOSCALE_LIMIT_MIN = 1 << 3,        /* raised to policy min */
    AUTOSCALE_LIMIT_MISSING = 1 << 4,    /* a target without metrics vetoed a scale-down */
};

enum autoscale_target_kind { AUTOSCALE_CPU, AUTOSCALE_RPS };

/* The replica calculator's result for one target. */
struct autoscale_target_result {
    bool used;          /* the policy has this target */
    bool valid;         /* it had a metric for at least one ready instance */
    int64_t measured;   /* CPU: average % of the limit (truncated, as the HPA); requests:
                           average milli-rps, over the ready instances with a metric */
    int64_t target;     /* cpu_percent or rps_milli */
    int recommendation; /* valid only */
    bool tolerated;     /* the recommendation is the current count because the ratio was within
                           the tolerance (not because the guesses reversed its direction) */
    int ready;          /* instances counted: ready with a metric */
    int unready;        /* left out: not ready */
    int missing;        /* ready without a metric */
};

struct autoscale_decision {
    int current;        /* the input count */
    int desired;        /* the count to run: equal to current when nothing changes */
    int recommendation; /* the metric rule's count before any limit; -1 when none (no metric,
                           or current out of min..max or 0) */
    int stabilized;     /* after the scale-down window, before rate and min..max; -1 as above */
    int window_highest; /* the highest recommendation of the window, -1 when empty */
    int up_limit;       /* the rate limit that applied to a scale-up now: max(start + 4,
                           2 × start) for the count 15 s ago; 0 when not scaling up */
    unsigned limits;    /* enum autoscale_limit bits that changed the count */
    struct autoscale_target_result cpu, rps;
    char reason[256]; /* one human line: what was measured and why this count */
};

/* Decides the count for in->current and records the recommendation (and the scale event when
 * desired != current) in *st. Returns 0, or -ORCH_E_INVALID for a policy it cannot use (min >
 * max, max < 1, no target, a negative value, current < 0); then *out and *st are untouched. A
 * current of 0 with min >= 1 means scaled to zero by hand: autoscaling is off until the count
 * is raised (the HPA's rule), and the decision keeps 0. */
int autoscale_decide(const struct autoscale_input *in, struct autoscale_state *st,
                     struct autoscale_decision *out, struct orch_error *err);

/* The replica calculator alone for one target (step 1), for tests and `status`: fills *out and
 * returns its recommendation, or -1 when no ready instance has a metric. current is the
 * service's count, returned when the change would be within the tolerance or reverse. */
int autoscale_calc(enum autoscale_target_kind kind, int current, int64_t target,
                   const struct autoscale_instance *instances, size_t n,
                   struct autoscale_target_result *out);

/* "stabilized", "rate", "max", "min", "missing metrics" joined with ", "; "" for none. */
void autoscale_limits_format(unsigned limits, char *out, size_t out_len);

#endif
