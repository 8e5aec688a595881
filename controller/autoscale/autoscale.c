/* The autoscaler's decision (see autoscale.h): the HPA's replica calculator, its scale-down
 * stabilization window and scale-up rate policies, as one pure function. It owns no I/O, reads
 * no clock and keeps nothing between calls but the caller's struct autoscale_state; the daemon
 * collects the metrics and carries the count out. */
#include "autoscale.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

/* ---- step 1: the replica calculator ------------------------------------------------------ */

/* One target's sums over a set of instances: CPU is the sum of usage over the sum of limits
 * (a weighted average, like the HPA's GetResourceUtilizationRatio), requests a plain average
 * (GetMetricUsageRatio). Both truncate the measure to an integer, as the HPA does. */
struct sums {
    int64_t value; /* millicores or milli-rps */
    int64_t limit; /* millicores (CPU only) */
    int count;
};

static int64_t limit_of(const struct autoscale_instance *i)
{
    return i->cpu_limit_milli > 0 ? i->cpu_limit_milli : 1000;
}

static int64_t measure(enum autoscale_target_kind kind, const struct sums *s)
{
    if (kind == AUTOSCALE_CPU)
        return s->limit > 0 ? s->value * 100 / s->limit : 0;
    return s->count > 0 ? s->value / s->count : 0;
}

static double ratio_of(enum autoscale_target_kind kind, const struct sums *s, int64_t target)
{
    return (double)measure(kind, s) / (double)target;
}

/* ceil(x) as a count; a glitch in a metric must not overflow the cast (far above any max). */
static int count_of(double x)
{
    if (!(x < 1e6))
        return 1000000;
    return (int)ceil(x);
}

/* Bounds a measure so sums of a thousand instances times 100 cannot overflow: 10^12 millicores
 * (a billion cores) or milli-rps is far beyond anything real. */
static int64_t bounded(int64_t v)
{
    return v > 1000000000000LL ? 1000000000000LL : v;
}

int autoscale_calc(enum autoscale_target_kind kind, int current, int64_t target,
                   const struct autoscale_instance *instances, size_t n,
                   struct autoscale_target_result *out)
{
    struct sums ready = {0}, unready = {0}, missing = {0};

    memset(out, 0, sizeof(*out));
    out->used = true;
    out->target = target;
    for (size_t k = 0; k < n; k++) {
        const struct autoscale_instance *i = &instances[k];
        int64_t v = kind == AUTOSCALE_CPU ? i->cpu_milli : i->rps_milli;
        bool has = (kind == AUTOSCALE_CPU ? i->has_cpu : i->has_rps) && v >= 0;
        struct sums *into = !i->ready ? &unready : !has ? &missing : &ready;
        if (into == &ready)
            into->value += bounded(v);
        into->limit += bounded(limit_of(i));
        into->count++;
    }
    out->ready = ready.count;
    out->unready = unready.count;
    out->missing = missing.count;
    if (ready.count == 0 || target <= 0)
        return -1; /* "did not receive metrics for any ready pods" */
    out->valid = true;
    out->measured = measure(kind, &ready);

    double ratio = ratio_of(kind, &ready, target);
    bool rebalance_unready = unready.count > 0 && ratio > 1.0;
    if (!rebalance_unready && missing.count == 0) {
        out->tolerated = fabs(1.0 - ratio) <= AUTOSCALE_TOLERANCE;
        if (out->tolerated)
            out->recommendation = current;
        else
            out->recommendation = count_of(ratio * ready.count);
        return out->recommendation;
    }

    /* Recount with the conservative guesses: on a scale-down the instances without a metric
     * count as fully busy (100 % of their limit, or the target when it is higher: the HPA's
     * code; its docs say "100 % of the target"), on a scale-up as idle; unready ones count as
     * idle on a scale-up and stay out on a scale-down. */
    struct sums all = ready;
    if (missing.count > 0 && ratio != 1.0) {
        if (ratio < 1.0) {
            if (kind == AUTOSCALE_CPU)
                all.value += missing.limit * (target > 100 ? target : 100) / 100;
            else
                all.value += target * missing.count;
        }
        all.limit += missing.limit;
        all.count += missing.count;
    }
    if (rebalance_unready) {
        all.limit += unready.limit;
        all.count += unready.count;
    }
    double new_ratio = ratio_of(kind, &all, target);
    out->tolerated = fabs(1.0 - new_ratio) <= AUTOSCALE_TOLERANCE;
    if (out->tolerated || (ratio < 1.0 && new_ratio > 1.0) || (ratio > 1.0 && new_ratio < 1.0)) {
        out->recommendation = current; /* too small a change, or the guesses reverse it */
        return current;
    }
    int rec = count_of(new_ratio * all.count);
    if ((new_ratio < 1.0 && rec > current) || (new_ratio > 1.0 && rec < current))
        rec = current; /* counting more instances would reverse the direction */
    out->recommendation = rec;
    return rec;
}

/* ---- the state: the window of recommendations and the recent scale events ---------------- */

static void recs_expire(struct autoscale_state *st, int64_t cutoff)
{
    size_t drop = 0;
    while (drop < st->n_recs && st->recs[drop].at_ms <= cutoff)
        drop++;
    if (drop > 0) {
        memmove(st->recs, st->recs + drop, (st->n_recs - drop) * sizeof(st->recs[0]));
        st->n_recs -= drop;
    }
}

/* Appends a recommendation, keeping the values strictly decreasing from the oldest: an older
 * entry not above a newer one can never again be the window's highest. */
static void recs_push(struct autoscale_state *st, int64_t now_ms, int replicas)
{
    while (st->n_recs > 0 && st->recs[st->n_recs - 1].replicas <= replicas)
        st->n_recs--;
    if (st->n_recs == AUTOSCALE_MAX_RECS) {
        st->recs[st->n_recs - 1].at_ms = now_ms; /* the higher one, held longer: conservative */
        return;
    }
    st->recs[st->n_recs++] = (struct autoscale_rec){.at_ms = now_ms, .replicas = replicas};
}

static int recs_highest(const struct autoscale_state *st)
{
    return st->n_recs > 0 ? st->recs[0].replicas : -1;
}

static void events_expire(struct autoscale_state *st, int64_t cutoff)
{
    size_t drop = 0;
    while (drop < st->n_events && st->events[drop].at_ms <= cutoff)
        drop++;
    if (drop > 0) {
        memmove(st->events, st->events + drop, (st->n_events - drop) * sizeof(st->events[0]));
        st->n_events -= drop;
    }
}

static void events_push(struct autoscale_state *st, int64_t now_ms, int change)
{
    if (st->n_events == AUTOSCALE_MAX_EVENTS) {
        /* only the net change of a period matters to the rate limit: merge into the newest */
        st->events[st->n_events - 1].change += change;
        st->events[st->n_events - 1].at_ms = now_ms;
        return;
    }
    st->events[st->n_events++] = (struct autoscale_event){.at_ms = now_ms, .change = change};
}

/* ---- the reason line ---------------------------------------------------------------------- */

static void append(char *buf, size_t len, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void append(char *buf, size_t len, const char *fmt, ...)
{
    size_t used = strlen(buf);
    va_list ap;
    if (used + 1 >= len)
        return;
    va_start(ap, fmt);
    vsnprintf(buf + used, len - used, fmt, ap);
    va_end(ap);
}

static void format_measure(char *buf, size_t len, const char *name, int current,
                           const struct autoscale_target_result *t)
{
    if (!t->used)
        return;
    if (buf[0] != '\0' && buf[strlen(buf) - 1] != ' ')
        append(buf, len, "; ");
    if (!t->valid) {
        append(buf, len, "%s: no metric from a ready instance (%d unready, %d without a metric)",
               name, t->unready, t->missing);
        return;
    }
    if (strcmp(name, "cpu") == 0)
        append(buf, len, "cpu %lld%% of target %lld%%", (long long)t->measured,
               (long long)t->target);
    else
        append(buf, len, "requests %.1f/s of target %.1f/s", (double)t->measured / 1000.0,
               (double)t->target / 1000.0);
    append(buf, len, " over %d ready", t->ready);
    if (t->unready > 0)
        append(buf, len, " (%d unready left out)", t->unready);
    if (t->missing > 0)
        append(buf, len, " (%d without a metric)", t->missing);
    append(buf, len, " -> %d", t->recommendation);
    if (t->recommendation == current && t->tolerated)
        append(buf, len, " (within %d%%)", (int)(AUTOSCALE_TOLERANCE * 100 + 0.5));
    else if (t->recommendation == current)
        append(buf, len, " (counting the others would reverse the direction)");
}

static void format_duration(char *out, size_t len, int64_t ms)
{
    if (ms % 60000 == 0 && ms > 0)
        snprintf(out, len, "%lldm", (long long)(ms / 60000));
    else if (ms % 1000 == 0)
        snprintf(out, len, "%llds", (long long)(ms / 1000));
    else
        snprintf(out, len, "%lldms", (long long)ms);
}

void autoscale_limits_format(unsigned limits, char *out, size_t out_len)
{
    static const struct {
        unsigned bit;
        const char *name;
    } names[] = {
        {AUTOSCALE_LIMIT_STABILIZED, "stabilized"},
        {AUTOSCALE_LIMIT_RATE, "rate"},
        {AUTOSCALE_LIMIT_MAX, "max"},
        {AUTOSCALE_LIMIT_MIN, "min"},
        {AUTOSCALE_LIMIT_MISSING, "missing metrics"},
    };
    if (out_len == 0)
        return;
    out[0] = '\0';
    for (size_t k = 0; k < sizeof(names) / sizeof(names[0]); k++) {
        if (limits & names[k].bit)
            append(out, out_len, "%s%s", out[0] != '\0' ? ", " : "", names[k].name);
    }
}

/* ---- the decision ------------------------------------------------------------------------- */

static int check(const struct autoscale_input *in, struct orch_error *err)
{
    const struct autoscale_policy *p = in->policy;
    if (p == NULL)
        return orch_fail(err, ORCH_E_INVALID, 0, "autoscale: no policy");
    if (p->min < 0 || p->max < 1 || p->min > p->max)
        return orch_fail(err, ORCH_E_INVALID, 0, "autoscale: min %d and max %d make no range",
                         p->min, p->max);
    if (p->cpu_percent < 0 || p->rps_milli < 0 || (p->cpu_percent == 0 && p->rps_milli == 0))
        return orch_fail(err, ORCH_E_INVALID, 0, "autoscale: a cpu or requests target is needed");
    if (p->scale_down_delay_ms < 0 || in->current < 0 || (in->n_instances > 0 && !in->instances))
        return orch_fail(err, ORCH_E_INVALID, 0, "autoscale: negative delay or count");
    return 0;
}

/* The outcome's first words: "scale up 3 -> 6: " / "keep 3: ". */
static void format_outcome(struct autoscale_decision *d)
{
    if (d->desired > d->current)
        snprintf(d->reason, sizeof(d->reason), "scale up %d -> %d: ", d->current, d->desired);
    else if (d->desired < d->current)
        snprintf(d->reason, sizeof(d->reason), "scale down %d -> %d: ", d->current, d->desired);
    else
        snprintf(d->reason, sizeof(d->reason), "keep %d: ", d->current);
}

int autoscale_decide(const struct autoscale_input *in, struct autoscale_state *st,
                     struct autoscale_decision *out, struct orch_error *err)
{
    const struct autoscale_policy *p = in->policy;
    struct autoscale_decision d;
    char delay[32];
    int rc = check(in, err);

    if (rc < 0)
        return rc;
    memset(&d, 0, sizeof(d));
    d.current = d.desired = in->current;
    d.recommendation = d.stabilized = d.window_highest = -1;
    format_duration(delay, sizeof(delay), p->scale_down_delay_ms);

    /* The HPA's guards before any metric: scaled to zero by hand, or out of min..max. */
    if (in->current == 0 && p->min > 0) {
        format_outcome(&d);
        append(d.reason, sizeof(d.reason),
               "scaled to 0 by hand; autoscaling is off until the "
               "count is raised");
        *out = d;
        return 0;
    }
    if (in->current > p->max || in->current < p->min) {
        bool above = in->current > p->max;
        d.desired = above ? p->max : p->min;
        d.limits = above ? AUTOSCALE_LIMIT_MAX : AUTOSCALE_LIMIT_MIN;
        events_expire(st, in->now_ms - AUTOSCALE_UP_PERIOD_MS);
        events_push(st, in->now_ms, d.desired - d.current);
        format_outcome(&d);
        append(d.reason, sizeof(d.reason), "the count is %s %s %d", above ? "above" : "below",
               above ? "max" : "min", above ? p->max : p->min);
        *out = d;
        return 0;
    }

    /* Step 1 and 2: each target's recommendation; the larger one wins. */
    int used = 0, invalid = 0, rec = -1;
    if (p->cpu_percent > 0) {
        used++;
        int r = autoscale_calc(AUTOSCALE_CPU, in->current, p->cpu_percent, in->instances,
                               in->n_instances, &d.cpu);
        if (r < 0)
            invalid++;
        else if (r > rec)
            rec = r;
    }
    if (p->rps_milli > 0) {
        used++;
        int r = autoscale_calc(AUTOSCALE_RPS, in->current, p->rps_milli, in->instances,
                               in->n_instances, &d.rps);
        if (r < 0)
            invalid++;
        else if (r > rec)
            rec = r;
    }
    d.recommendation = rec;
    if (invalid == used || (invalid > 0 && rec < in->current)) {
        /* The HPA stops here with an error: nothing is recorded, nothing scales down. */
        if (invalid < used)
            d.limits |= AUTOSCALE_LIMIT_MISSING;
        format_outcome(&d);
        format_measure(d.reason, sizeof(d.reason), "cpu", d.current, &d.cpu);
        format_measure(d.reason, sizeof(d.reason), "requests", d.current, &d.rps);
        append(d.reason, sizeof(d.reason), "; a target without metrics never scales down");
        *out = d;
        return 0;
    }

    /* Step 3: the scale-down window. A fresh state starts with the current count in it, so a
     * restarted daemon does not scale down before one window has passed. */
    if (p->scale_down_delay_ms > 0) {
        if (!st->seeded) {
            st->n_recs = 0;
            recs_push(st, in->now_ms, in->current);
        }
        recs_expire(st, in->now_ms - p->scale_down_delay_ms);
    } else {
        st->n_recs = 0;
    }
    st->seeded = true;
    int highest = recs_highest(st);
    int down_rec = highest > rec ? highest : rec;
    d.window_highest = highest;
    int stabilized = in->current;
    if (stabilized < rec)
        stabilized = rec;
    if (stabilized > down_rec)
        stabilized = down_rec;
    if (rec < in->current && stabilized > rec)
        d.limits |= AUTOSCALE_LIMIT_STABILIZED;
    d.stabilized = stabilized;
    if (p->scale_down_delay_ms > 0)
        recs_push(st, in->now_ms, rec);

    /* Step 4: the scale-up rate, then min..max. */
    events_expire(st, in->now_ms - AUTOSCALE_UP_PERIOD_MS);
    int desired = stabilized;
    if (desired > in->current) {
        int net = 0;
        for (size_t k = 0; k < st->n_events; k++)
            net += st->events[k].change;
        int start = in->current - net;
        int by_pods = start + AUTOSCALE_UP_PODS;
        int by_percent = (int)ceil((double)start * (1.0 + AUTOSCALE_UP_PERCENT / 100.0));
        int limit = by_pods > by_percent ? by_pods : by_percent;
        if (limit < in->current)
            limit = in->current;
        d.up_limit = limit;
        if (desired > p->max && p->max <= limit) {
            desired = p->max;
            d.limits |= AUTOSCALE_LIMIT_MAX;
        } else if (desired > limit) {
            desired = limit;
            d.limits |= AUTOSCALE_LIMIT_RATE;
        }
    } else if (desired < in->current && desired < p->min) {
        desired = p->min;
        d.limits |= AUTOSCALE_LIMIT_MIN;
    }
    d.desired = desired;
    if (desired != in->current)
        events_push(st, in->now_ms, desired - in->current);

    format_outcome(&d);
    format_measure(d.reason, sizeof(d.reason), "cpu", d.current, &d.cpu);
    format_measure(d.reason, sizeof(d.reason), "requests", d.current, &d.rps);
    if (d.cpu.used && d.rps.used)
        append(d.reason, sizeof(d.reason), "; the larger wins");
    if (d.limits & AUTOSCALE_LIMIT_STABILIZED)
        append(d.reason, sizeof(d.reason),
               "; held at %d, the highest recommendation of the last %s", stabilized, delay);
    if (d.limits & AUTOSCALE_LIMIT_RATE)
        append(d.reason, sizeof(d.reason),
               "; cut to %d by the rate limit (max(+%d, +%d%%) per %ds)", desired,
               AUTOSCALE_UP_PODS, AUTOSCALE_UP_PERCENT, AUTOSCALE_UP_PERIOD_MS / 1000);
    if (d.limits & AUTOSCALE_LIMIT_MAX)
        append(d.reason, sizeof(d.reason), "; not above max %d", p->max);
    if (d.limits & AUTOSCALE_LIMIT_MIN)
        append(d.reason, sizeof(d.reason), "; not below min %d", p->min);
    *out = d;
    return 0;
}
