/* The pure decisions of one pass for one service (see decide.h): adoption hold, crash backoff,
 * settling and its confirmation, backoff reset, start gating (backoff, image, depends_on) and
 * drain timing. No I/O, no clock, no globals, no allocation: it must stay callable from table
 * tests with made-up times, and it must never act; pass.c acts on what it returns. */
#include "decide.h"

#include <string.h>

struct reconcile_backoff reconcile_decide_crashes(int crashes, int64_t backoff_ms, int n,
                                                  int64_t now_ms, int64_t max_ms)
{
    bool first = crashes == 0;
    struct reconcile_backoff b = {
        .crashes = crashes + n,
        .backoff_ms = backoff_ms,
        .delay_ms = first ? 0 : backoff_ms,
    };
    b.until_ms = now_ms + b.delay_ms;
    if (!first)
        b.backoff_ms = backoff_ms * 2 > max_ms ? max_ms : backoff_ms * 2;
    return b;
}

/* Settled: converged for settle_ms; the first time in a settled period, only once the engine
 * confirmed that the running instances still run (its list can lag an exit). With a probe
 * (settle_ms 0) converged is settled at once: every instance has a healthy verdict, which no
 * instance that died at start could give. Then a long enough quiet period resets the backoff,
 * like Kubernetes' CrashLoopBackOff. */
static void decide_settle(const struct reconcile_decide_input *in, struct reconcile_decision *out)
{
    int64_t now = in->now_ms;
    out->converged = in->plan_converged;
    out->settled_since_ms = in->settled_since_ms;
    out->settle_confirmed = in->settle_confirmed;
    if (!out->converged) {
        out->settled_since_ms = 0;
    } else if (out->settled_since_ms == 0) {
        /* a new settled period, to be confirmed; every instance has run since the newest one
         * started, so the period can count from that start when it is known */
        bool known = in->newest_start_ms > 0 && in->newest_start_ms <= now;
        out->settled_since_ms = known ? in->newest_start_ms : now;
        out->settle_confirmed = false;
    }
    if (out->converged && in->settle_ms <= 0)
        out->settle_confirmed = true; /* the probes' verdicts are the confirmation */
    if (out->converged && !out->settle_confirmed && now - out->settled_since_ms >= in->settle_ms) {
        if (in->still_running == RECONCILE_FACT_UNKNOWN) {
            out->check_running = true;
        } else if (in->still_running == RECONCILE_FACT_YES) {
            out->settle_confirmed = true;
        } else {
            out->converged = false;
            out->settled_since_ms = 0;
        }
    }
    out->backoff_reset = out->converged && now - out->settled_since_ms >= in->backoff_reset_ms;
    out->converged_for_ms = out->converged ? now - out->settled_since_ms : 0;
    out->record_good = in->unrecorded && out->converged && out->converged_for_ms >= in->settle_ms;
    if (out->converged && out->converged_for_ms < in->settle_ms)
        out->next_ms = out->settled_since_ms + in->settle_ms;
}

/* The first dependency that is not present, settled and alive, or NULL. */
static const char *decide_waiting_for(const struct reconcile_decide_input *in)
{
    for (size_t i = 0; i < in->n_depends_on; i++) {
        const struct reconcile_dep *dep = NULL;
        for (size_t j = 0; j < in->n_deps; j++)
            if (strcmp(in->deps[j].name, in->depends_on[i]) == 0)
                dep = &in->deps[j];
        if (dep == NULL || !dep->settled || dep->failed)
            return in->depends_on[i];
    }
    return NULL;
}

static void next_at(struct reconcile_decision *out, int64_t at)
{
    if (out->next_ms == 0 || at < out->next_ms)
        out->next_ms = at;
}

/* Starts wait while backing off, without the image, or for a dependency; an instance that
 * clients may still find in the registry leaves it first and is stopped drain_ms later. */
static void decide_actions(const struct reconcile_decide_input *in, struct reconcile_decision *out,
                           enum reconcile_verdict *verdicts)
{
    int64_t now = in->now_ms;
    bool image_missing = in->creates && in->image_present == RECONCILE_FACT_NO;
    bool backing_off = now < out->backoff_until_ms;
    out->waiting_for = decide_waiting_for(in);
    out->starts_held = backing_off || image_missing || (out->waiting_for != NULL && in->creates);
    for (size_t i = 0; i < in->n_actions; i++) {
        const struct reconcile_action *a = &in->actions[i];
        verdicts[i] = RECONCILE_DO;
        if (a->kind == RECONCILE_ACT_START) {
            if (out->starts_held)
                verdicts[i] = RECONCILE_HOLD;
            if (out->starts_held && backing_off && !image_missing)
                next_at(out, out->backoff_until_ms); /* unless depends_on holds it longer */
            continue;
        }
        if (in->drain_ms > 0 && (a->serving || a->drain_since_ms != 0)) {
            int64_t since = a->drain_since_ms != 0 ? a->drain_since_ms : now;
            if (now - since < in->drain_ms) {
                verdicts[i] = a->drain_since_ms != 0 ? RECONCILE_DRAIN_WAIT : RECONCILE_DRAIN_BEGIN;
                next_at(out, since + in->drain_ms);
                continue;
            }
        }
        if (a->counts_as_crash)
            out->crash_removals++;
    }
}

void reconcile_decide(const struct reconcile_decide_input *in, struct reconcile_decision *out,
                      enum reconcile_verdict *verdicts)
{
    memset(out, 0, sizeof(*out));
    out->crashes = in->crashes;
    out->backoff_ms = in->backoff_ms;
    out->backoff_until_ms = in->backoff_until_ms;
    out->last_score = in->last_score;
    out->last_progress_ms = in->last_progress_ms;
    if (in->unjudged > 0) {
        out->hold = true;
        for (size_t i = 0; i < in->n_actions; i++)
            verdicts[i] = RECONCILE_HOLD;
        return;
    }
    if (in->new_exits > 0) {
        struct reconcile_backoff b = reconcile_decide_crashes(
            in->crashes, in->backoff_ms, in->new_exits, in->now_ms, in->backoff_max_ms);
        out->crashes = b.crashes;
        out->backoff_ms = b.backoff_ms;
        out->backoff_until_ms = b.until_ms;
        out->exit_delay_ms = b.delay_ms;
    }
    if (in->score != in->last_score) {
        out->last_score = in->score;
        out->last_progress_ms = in->now_ms;
    }
    out->check_image = in->creates && in->image_present == RECONCILE_FACT_UNKNOWN;
    decide_settle(in, out);
    decide_actions(in, out, verdicts);
}
