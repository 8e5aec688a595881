/* The rollout state machine (see rollout.h). Pure: decisions only; the reconciler acts. */
#include "rollout.h"

#include <stddef.h>

static enum rollout_reason failure_reason(const struct rollout_input *in)
{
    if (in->image_missing)
        return ROLLOUT_REASON_IMAGE_MISSING;
    if (in->crash_limit > 0 && in->crashes >= in->crash_limit)
        return ROLLOUT_REASON_CRASH_LOOP;
    /* a converged service makes no progress and needs none */
    if (!in->converged && in->deadline_ms > 0 && in->since_progress_ms > in->deadline_ms)
        return ROLLOUT_REASON_DEADLINE;
    return ROLLOUT_REASON_NONE;
}

bool rollout_failing(const struct rollout_input *in)
{
    return failure_reason(in) != ROLLOUT_REASON_NONE;
}

static struct rollout_decision decision(enum rollout_verdict v, enum rollout_phase next,
                                        enum rollout_reason r)
{
    return (struct rollout_decision){.verdict = v, .next = next, .reason = r};
}

struct rollout_decision rollout_decide(const struct rollout_input *in)
{
    enum rollout_reason why = failure_reason(in);
    bool settled = in->converged && in->converged_for_ms >= in->settle_ms;
    switch (in->phase) {
    case ROLLOUT_PROGRESSING:
        if (why != ROLLOUT_REASON_NONE) {
            if (in->auto_rollback && in->has_rollback_target)
                return decision(ROLLOUT_ROLLBACK, ROLLOUT_ROLLING_BACK, why);
            return decision(ROLLOUT_FAIL, ROLLOUT_FAILED, why);
        }
        if (settled)
            return decision(ROLLOUT_COMPLETE, ROLLOUT_IDLE, ROLLOUT_REASON_NONE);
        break;
    case ROLLOUT_ROLLING_BACK:
        /* a rollback that fails too is final: no second rollback */
        if (why != ROLLOUT_REASON_NONE)
            return decision(ROLLOUT_FAIL, ROLLOUT_FAILED, why);
        if (settled)
            return decision(ROLLOUT_COMPLETE, ROLLOUT_IDLE, ROLLOUT_REASON_NONE);
        break;
    case ROLLOUT_IDLE:
        /* nothing to roll back from: back off forever (daemon) or give up (a command);
         * a missing image here is a removed image, the same hopeless case */
        if (why != ROLLOUT_REASON_NONE && in->give_up)
            return decision(ROLLOUT_GIVE_UP, ROLLOUT_FAILED, why);
        break;
    case ROLLOUT_FAILED:
        break;
    }
    return decision(ROLLOUT_WAIT, in->phase, ROLLOUT_REASON_NONE);
}

const char *rollout_phase_name(enum rollout_phase p)
{
    switch (p) {
    case ROLLOUT_IDLE:
        return "idle";
    case ROLLOUT_PROGRESSING:
        return "progressing";
    case ROLLOUT_ROLLING_BACK:
        return "rolling back";
    case ROLLOUT_FAILED:
        return "failed";
    }
    return "?";
}

const char *rollout_verdict_name(enum rollout_verdict v)
{
    switch (v) {
    case ROLLOUT_WAIT:
        return "wait";
    case ROLLOUT_COMPLETE:
        return "complete";
    case ROLLOUT_ROLLBACK:
        return "rollback";
    case ROLLOUT_FAIL:
        return "fail";
    case ROLLOUT_GIVE_UP:
        return "give up";
    }
    return "?";
}

const char *rollout_reason_name(enum rollout_reason r)
{
    switch (r) {
    case ROLLOUT_REASON_NONE:
        return "";
    case ROLLOUT_REASON_IMAGE_MISSING:
        return "image missing";
    case ROLLOUT_REASON_CRASH_LOOP:
        return "crash loop";
    case ROLLOUT_REASON_DEADLINE:
        return "no progress within update.deadline";
    }
    return "?";
}
