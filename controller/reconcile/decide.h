/* The decisions of one pass for one service that are not the planner's (plan/) or the rollout
 * state machine's (rollout/): whether to wait for the first verdicts of adopted instances, how
 * crashes back off, when a converged service counts as settled (and when to confirm that by
 * asking the engine), when the backoff starts over, whether new instances may start (backoff,
 * missing image, depends_on) and when each instance to stop leaves the registry and is stopped.
 *
 * Pure: no I/O, no clock (now_ms is an argument), no globals. Facts that cost I/O (is the image
 * there, do the running instances still run) are inputs that start out unknown: the decision
 * says when the caller should find one out, and the caller decides again with the answer. The
 * same input always gives the same decision, so deciding again is always safe. */
#ifndef ORCH_RECONCILE_DECIDE_H
#define ORCH_RECONCILE_DECIDE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum reconcile_fact {
    RECONCILE_FACT_UNKNOWN, /* not looked up (yet) */
    RECONCILE_FACT_YES,
    RECONCILE_FACT_NO,
};

/* Another service of the app, as of this pass (for depends_on). */
struct reconcile_dep {
    const char *name;
    bool settled; /* converged at its last pass */
    bool failed;  /* its rollout failed and it is not driven any more */
};

enum reconcile_action_kind {
    RECONCILE_ACT_START,  /* a create or a start: a new instance comes up */
    RECONCILE_ACT_REMOVE, /* stop then remove */
};

/* One action of the plan, as far as the decision needs it. */
struct reconcile_action {
    enum reconcile_action_kind kind;
    bool serving;           /* REMOVE: running and listed in the registry now */
    int64_t drain_since_ms; /* REMOVE: when it left the registry (0: it has not) */
    bool counts_as_crash;   /* REMOVE: an unhealthy instance of the current revision */
};

enum reconcile_verdict {
    RECONCILE_DO,          /* carry it out in this pass */
    RECONCILE_HOLD,        /* START: not now (backoff, missing image, depends_on) */
    RECONCILE_DRAIN_BEGIN, /* REMOVE: leaves the registry now, is stopped drain_ms later */
    RECONCILE_DRAIN_WAIT,  /* REMOVE: out of the registry, not for long enough yet */
};

struct reconcile_decide_input {
    int64_t now_ms;
    int64_t settle_ms;        /* converged this long counts as done; 0 when a probe judges the
                                 instances: their healthy verdicts already prove they live, so
                                 converged is settled at once, with no inspection */
    int64_t backoff_max_ms;   /* the delay doubles up to this */
    int64_t backoff_reset_ms; /* converged this long: the next crash starts over */

    /* Running instances that were there before this run started and have no probe result in
     * this process yet: until they have, none can be told unready. */
    size_t unjudged;

    /* crashes: exits of the current revision first seen in this pass, and the state so far */
    int new_exits;
    int crashes;
    int64_t backoff_ms;
    int64_t backoff_until_ms;

    /* progress: more updated-and-available instances, or fewer old ones */
    long score;
    long last_score;
    int64_t last_progress_ms;

    /* settling */
    bool plan_converged; /* the plan is empty and every instance counts as available */
    int64_t settled_since_ms;
    bool settle_confirmed;
    int64_t newest_start_ms; /* when this run started the newest running instance (0: unknown):
                                a new settled period counts from there, as each instance only
                                needs to have lived settle_ms since its own start */
    enum reconcile_fact still_running; /* every running instance still runs (by inspect) */
    bool unrecorded; /* no rollout, and the store does not call the revision active */

    /* starting new instances */
    bool creates; /* the plan creates an instance */
    enum reconcile_fact image_present;
    const char *const *depends_on;
    size_t n_depends_on;
    const struct reconcile_dep *deps; /* the app's other services present this pass */
    size_t n_deps;

    /* stopping instances */
    int64_t drain_ms; /* 0: no registry to leave, stop at once */
    const struct reconcile_action *actions;
    size_t n_actions;
};

struct reconcile_decision {
    bool hold; /* wait for the adopted instances' first verdicts: do nothing else this pass;
                  the service is not settled */

    int crashes; /* after counting new_exits (before a backoff_reset) */
    int64_t backoff_ms;
    int64_t backoff_until_ms;
    int64_t exit_delay_ms; /* new_exits > 0: how long the replacement waits (for the event) */

    long last_score;
    int64_t last_progress_ms;

    bool check_image;   /* creates with the image unknown: look it up, decide again */
    bool check_running; /* settled long enough, unconfirmed: inspect the running instances,
                           decide again with still_running */
    bool converged;     /* converged (and not disproved by the inspection) */
    int64_t settled_since_ms;
    bool settle_confirmed;
    int64_t converged_for_ms;
    bool backoff_reset; /* converged for backoff_reset_ms: crashes and backoff start over (the
                           caller resets them after acting on the exits counted above) */
    bool record_good;   /* unrecorded and settled: record the revision as the good one (e.g.
                           its image was missing once and has been loaded since) */

    bool starts_held;        /* new instances wait */
    const char *waiting_for; /* the dependency not ready yet, or NULL; borrowed from input */
    int crash_removals;      /* REMOVE actions done now that count as crashes */
    int64_t next_ms;         /* when a held or waiting action could go ahead (0: none) */
};

/* Fills *out and verdicts[0..in->n_actions). */
void reconcile_decide(const struct reconcile_decide_input *in, struct reconcile_decision *out,
                      enum reconcile_verdict *verdicts);

/* Counts n crashes: the first one after a quiet period (crashes == 0) is replaced at once,
 * repeated ones wait backoff_ms, which then doubles up to max_ms. */
struct reconcile_backoff {
    int crashes;
    int64_t backoff_ms;
    int64_t until_ms;
    int64_t delay_ms;
};
struct reconcile_backoff reconcile_decide_crashes(int crashes, int64_t backoff_ms, int n,
                                                  int64_t now_ms, int64_t max_ms);

#endif
