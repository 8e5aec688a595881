/* The rollout state machine: one service's rollout from the observed facts of a pass to a
 * verdict (wait, complete, roll back, fail, give up). Pure: no I/O, no clock (times are
 * durations the caller measured), no globals. The reconciler acts on the verdict (store writes,
 * Docker actions) and keeps the phase; rollout_decide is the only place that decides a phase
 * change, so every transition is logged once, where it is acted on. */
#ifndef ORCH_ROLLOUT_ROLLOUT_H
#define ORCH_ROLLOUT_ROLLOUT_H

#include <stdbool.h>
#include <stdint.h>

enum rollout_phase {
    ROLLOUT_IDLE,         /* no rollout: the service is only kept running */
    ROLLOUT_PROGRESSING,  /* moving to a new revision */
    ROLLOUT_ROLLING_BACK, /* the new revision failed; going back to the last good one */
    ROLLOUT_FAILED,       /* failed with no way back: left as it is until the next change */
};

struct rollout_input {
    enum rollout_phase phase;
    bool converged;           /* the plan is empty and every instance is available */
    int64_t converged_for_ms; /* how long it has been converged */
    int64_t settle_ms;        /* converged this long = done (catches instances dying at once) */
    bool image_missing;       /* the revision's image is not on the engine */
    int crashes;              /* exits, refused starts and unhealthy replacements so far */
    int crash_limit;          /* that many = a crash loop */
    int64_t
        since_progress_ms;    /* time since the last progress (more updated instances, fewer old) */
    int64_t deadline_ms;      /* update.deadline */
    bool auto_rollback;       /* update.auto_rollback */
    bool has_rollback_target; /* an earlier revision that once ran fully and did not fail */
    bool give_up;             /* IDLE only: a CLI command ends a hopeless run (the daemon backs
                                 off forever instead) */
};

enum rollout_verdict {
    ROLLOUT_WAIT,     /* nothing to decide now */
    ROLLOUT_COMPLETE, /* record the revision as good (and the rollout, if any, as complete) */
    ROLLOUT_ROLLBACK, /* mark the revision failed; go back to the target revision */
    ROLLOUT_FAIL,     /* mark the rollout failed; leave the service as it is */
    ROLLOUT_GIVE_UP,  /* no rollout: stop trying in this command */
};

enum rollout_reason {
    ROLLOUT_REASON_NONE,
    ROLLOUT_REASON_IMAGE_MISSING,
    ROLLOUT_REASON_CRASH_LOOP,
    ROLLOUT_REASON_DEADLINE,
};

struct rollout_decision {
    enum rollout_verdict verdict;
    enum rollout_phase next; /* the phase after acting on the verdict */
    enum rollout_reason reason;
};

struct rollout_decision rollout_decide(const struct rollout_input *in);

/* True when a failure condition holds (so the caller may look up has_rollback_target only
 * then: it costs a store read). */
bool rollout_failing(const struct rollout_input *in);

const char *rollout_phase_name(enum rollout_phase p);
const char *rollout_verdict_name(enum rollout_verdict v);
const char *rollout_reason_name(enum rollout_reason r); /* "image missing", "crash loop", ... */

#endif
