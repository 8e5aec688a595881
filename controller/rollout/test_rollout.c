/* Table tests of the rollout state machine: every phase against every condition. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>

#include "base/util.h"
#include "rollout/rollout.h"

/* A baseline: progressing, not converged, nothing wrong, rollback possible. */
static struct rollout_input base(enum rollout_phase phase)
{
    return (struct rollout_input){
        .phase = phase,
        .settle_ms = 1000,
        .crash_limit = 3,
        .since_progress_ms = 10,
        .deadline_ms = 120000,
        .auto_rollback = true,
        .has_rollback_target = true,
    };
}

enum tweak {
    T_NONE,
    T_SETTLED,       /* converged for the settle time */
    T_CONVERGING,    /* converged, not for long enough */
    T_IMAGE,         /* image missing */
    T_CRASHES,       /* crash limit reached */
    T_CRASHES_BELOW, /* one crash short */
    T_DEADLINE,      /* no progress past the deadline */
    T_DEADLINE_CONV, /* past the deadline but converged */
};

struct row {
    const char *name;
    enum rollout_phase phase;
    enum tweak tweak;
    bool auto_rollback;
    bool target;
    bool give_up;
    enum rollout_verdict verdict;
    enum rollout_phase next;
    enum rollout_reason reason;
};

static const struct row rows[] = {
    /* progressing */
    {"prog waits", ROLLOUT_PROGRESSING, T_NONE, true, true, false, ROLLOUT_WAIT,
     ROLLOUT_PROGRESSING, ROLLOUT_REASON_NONE},
    {"prog settles", ROLLOUT_PROGRESSING, T_SETTLED, true, true, false, ROLLOUT_COMPLETE,
     ROLLOUT_IDLE, ROLLOUT_REASON_NONE},
    {"prog converging", ROLLOUT_PROGRESSING, T_CONVERGING, true, true, false, ROLLOUT_WAIT,
     ROLLOUT_PROGRESSING, ROLLOUT_REASON_NONE},
    {"prog image -> rollback", ROLLOUT_PROGRESSING, T_IMAGE, true, true, false, ROLLOUT_ROLLBACK,
     ROLLOUT_ROLLING_BACK, ROLLOUT_REASON_IMAGE_MISSING},
    {"prog image, no target", ROLLOUT_PROGRESSING, T_IMAGE, true, false, false, ROLLOUT_FAIL,
     ROLLOUT_FAILED, ROLLOUT_REASON_IMAGE_MISSING},
    {"prog crash loop -> rollback", ROLLOUT_PROGRESSING, T_CRASHES, true, true, false,
     ROLLOUT_ROLLBACK, ROLLOUT_ROLLING_BACK, ROLLOUT_REASON_CRASH_LOOP},
    {"prog one crash short", ROLLOUT_PROGRESSING, T_CRASHES_BELOW, true, true, false, ROLLOUT_WAIT,
     ROLLOUT_PROGRESSING, ROLLOUT_REASON_NONE},
    {"prog crash loop, auto_rollback off", ROLLOUT_PROGRESSING, T_CRASHES, false, true, false,
     ROLLOUT_FAIL, ROLLOUT_FAILED, ROLLOUT_REASON_CRASH_LOOP},
    {"prog deadline -> rollback", ROLLOUT_PROGRESSING, T_DEADLINE, true, true, false,
     ROLLOUT_ROLLBACK, ROLLOUT_ROLLING_BACK, ROLLOUT_REASON_DEADLINE},
    {"prog deadline, no target", ROLLOUT_PROGRESSING, T_DEADLINE, true, false, false, ROLLOUT_FAIL,
     ROLLOUT_FAILED, ROLLOUT_REASON_DEADLINE},
    {"prog deadline but converged", ROLLOUT_PROGRESSING, T_DEADLINE_CONV, true, true, false,
     ROLLOUT_COMPLETE, ROLLOUT_IDLE, ROLLOUT_REASON_NONE},
    /* rolling back */
    {"back waits", ROLLOUT_ROLLING_BACK, T_NONE, true, true, false, ROLLOUT_WAIT,
     ROLLOUT_ROLLING_BACK, ROLLOUT_REASON_NONE},
    {"back settles", ROLLOUT_ROLLING_BACK, T_SETTLED, true, true, false, ROLLOUT_COMPLETE,
     ROLLOUT_IDLE, ROLLOUT_REASON_NONE},
    {"back crash loop: no second rollback", ROLLOUT_ROLLING_BACK, T_CRASHES, true, true, false,
     ROLLOUT_FAIL, ROLLOUT_FAILED, ROLLOUT_REASON_CRASH_LOOP},
    {"back deadline", ROLLOUT_ROLLING_BACK, T_DEADLINE, true, true, false, ROLLOUT_FAIL,
     ROLLOUT_FAILED, ROLLOUT_REASON_DEADLINE},
    {"back image", ROLLOUT_ROLLING_BACK, T_IMAGE, true, true, false, ROLLOUT_FAIL, ROLLOUT_FAILED,
     ROLLOUT_REASON_IMAGE_MISSING},
    /* idle: only kept running */
    {"idle fine", ROLLOUT_IDLE, T_SETTLED, true, true, false, ROLLOUT_WAIT, ROLLOUT_IDLE,
     ROLLOUT_REASON_NONE},
    {"idle crash loop, daemon backs off", ROLLOUT_IDLE, T_CRASHES, true, true, false, ROLLOUT_WAIT,
     ROLLOUT_IDLE, ROLLOUT_REASON_NONE},
    {"idle crash loop, command gives up", ROLLOUT_IDLE, T_CRASHES, true, true, true,
     ROLLOUT_GIVE_UP, ROLLOUT_FAILED, ROLLOUT_REASON_CRASH_LOOP},
    {"idle deadline, command gives up", ROLLOUT_IDLE, T_DEADLINE, true, true, true, ROLLOUT_GIVE_UP,
     ROLLOUT_FAILED, ROLLOUT_REASON_DEADLINE},
    {"idle deadline, daemon waits", ROLLOUT_IDLE, T_DEADLINE, true, true, false, ROLLOUT_WAIT,
     ROLLOUT_IDLE, ROLLOUT_REASON_NONE},
    {"idle image gone, command gives up", ROLLOUT_IDLE, T_IMAGE, true, true, true, ROLLOUT_GIVE_UP,
     ROLLOUT_FAILED, ROLLOUT_REASON_IMAGE_MISSING},
    /* failed: stays until the next change */
    {"failed stays", ROLLOUT_FAILED, T_CRASHES, true, true, true, ROLLOUT_WAIT, ROLLOUT_FAILED,
     ROLLOUT_REASON_NONE},
    {"failed stays converged", ROLLOUT_FAILED, T_SETTLED, true, true, false, ROLLOUT_WAIT,
     ROLLOUT_FAILED, ROLLOUT_REASON_NONE},
};

static void apply_tweak(struct rollout_input *in, enum tweak t)
{
    switch (t) {
    case T_NONE:
        break;
    case T_SETTLED:
        in->converged = true;
        in->converged_for_ms = in->settle_ms;
        break;
    case T_CONVERGING:
        in->converged = true;
        in->converged_for_ms = in->settle_ms - 1;
        break;
    case T_IMAGE:
        in->image_missing = true;
        break;
    case T_CRASHES:
        in->crashes = in->crash_limit;
        break;
    case T_CRASHES_BELOW:
        in->crashes = in->crash_limit - 1;
        break;
    case T_DEADLINE:
        in->since_progress_ms = in->deadline_ms + 1;
        break;
    case T_DEADLINE_CONV:
        in->since_progress_ms = in->deadline_ms + 1;
        in->converged = true;
        in->converged_for_ms = in->settle_ms;
        break;
    }
}

static void test_table(void **state)
{
    for (size_t i = 0; i < ORCH_ARRAY_LEN(rows); i++) {
        const struct row *r = &rows[i];
        struct rollout_input in = base(r->phase);
        in.auto_rollback = r->auto_rollback;
        in.has_rollback_target = r->target;
        in.give_up = r->give_up;
        apply_tweak(&in, r->tweak);
        struct rollout_decision d = rollout_decide(&in);
        if (d.verdict != r->verdict || d.next != r->next || d.reason != r->reason)
            fail_msg("%s: got %s -> %s (%s), want %s -> %s (%s)", r->name,
                     rollout_verdict_name(d.verdict), rollout_phase_name(d.next),
                     rollout_reason_name(d.reason), rollout_verdict_name(r->verdict),
                     rollout_phase_name(r->next), rollout_reason_name(r->reason));
        /* a failure condition holds exactly for these tweaks, whatever the phase decides */
        bool failing = r->tweak == T_IMAGE || r->tweak == T_CRASHES || r->tweak == T_DEADLINE;
        assert_int_equal(rollout_failing(&in), failing);
    }
}

/* Every (phase, verdict) pair the machine can produce leads to the phase the table says, and
 * no phase is a dead end except FAILED (which waits for the next change). */
static void test_every_phase_reaches_a_verdict(void **state)
{
    static const enum rollout_phase phases[] = {ROLLOUT_IDLE, ROLLOUT_PROGRESSING,
                                                ROLLOUT_ROLLING_BACK, ROLLOUT_FAILED};
    static const enum tweak tweaks[] = {T_NONE,    T_SETTLED,       T_CONVERGING, T_IMAGE,
                                        T_CRASHES, T_CRASHES_BELOW, T_DEADLINE,   T_DEADLINE_CONV};
    for (size_t p = 0; p < ORCH_ARRAY_LEN(phases); p++) {
        bool moved = false;
        for (size_t t = 0; t < ORCH_ARRAY_LEN(tweaks); t++) {
            for (int bits = 0; bits < 8; bits++) {
                struct rollout_input in = base(phases[p]);
                in.auto_rollback = bits & 1;
                in.has_rollback_target = bits & 2;
                in.give_up = bits & 4;
                apply_tweak(&in, tweaks[t]);
                struct rollout_decision d = rollout_decide(&in);
                moved |= d.next != phases[p];
                /* a rollback needs somewhere to go and permission */
                if (d.verdict == ROLLOUT_ROLLBACK)
                    assert_true(in.auto_rollback && in.has_rollback_target &&
                                phases[p] == ROLLOUT_PROGRESSING);
                /* WAIT never changes the phase */
                if (d.verdict == ROLLOUT_WAIT)
                    assert_int_equal(d.next, phases[p]);
            }
        }
        assert_int_equal(moved, phases[p] != ROLLOUT_FAILED);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_every_phase_reaches_a_verdict),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
