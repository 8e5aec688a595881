/* Table tests of the pass's pure decisions (decide.h): adoption hold, crash backoff, settling
 * and its confirmation, backoff reset, start gating and drain timing; and the property that
 * deciding again with the same input gives the same decision. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "reconcile/decide.h"

#define NOW 100000
#define SETTLE 1000
#define RESET 10000
#define MAX 60000

enum dep_state { DEP_NONE, DEP_SETTLED, DEP_UNSETTLED, DEP_FAILED, DEP_ABSENT };

/* One row's input; zero fields take the baseline (now NOW, one START or REMOVE action). */
struct tin {
    size_t unjudged;
    int new_exits, crashes;
    int64_t backoff_ms, backoff_until_ms;
    long score, last_score;
    int64_t last_progress_ms;
    bool conv;
    int64_t since;
    bool confirmed;
    bool probe;           /* a probe judges the instances: settle_ms 0 */
    int64_t newest_start; /* newest_start_ms */
    enum reconcile_fact running;
    bool unrecorded;
    bool creates;
    enum reconcile_fact image;
    enum dep_state dep; /* depends_on: [db] and db's state */
    int64_t drain_ms;
    bool remove; /* the one action is a REMOVE (else a START) */
    bool serving;
    int64_t drain_since;
    bool crash;
};

struct tout {
    bool hold;
    int crashes;
    int64_t backoff_ms, until_ms, delay_ms;
    long last_score;
    int64_t last_progress_ms;
    bool check_image, check_running, converged;
    int64_t since;
    bool confirmed;
    int64_t converged_for;
    bool reset, record, held;
    const char *waiting_for;
    enum reconcile_verdict verdict;
    int crash_removals;
    int64_t next_ms;
};

struct row {
    const char *name;
    struct tin in;
    struct tout want;
};

static const struct row rows[] = {
    /* adoption */
    {"adopted without verdict: hold",
     {.unjudged = 1, .conv = true, .since = NOW - 5000},
     {.hold = true, .verdict = RECONCILE_HOLD, .last_score = 0}},
    /* crashes */
    {"first exit: replaced at once",
     {.new_exits = 1, .backoff_ms = 1000},
     {.crashes = 1, .backoff_ms = 1000, .until_ms = NOW, .delay_ms = 0}},
    {"repeated exit: waits and doubles",
     {.new_exits = 1, .crashes = 1, .backoff_ms = 1000},
     {.crashes = 2,
      .backoff_ms = 2000,
      .until_ms = NOW + 1000,
      .delay_ms = 1000,
      .held = true,
      .verdict = RECONCILE_HOLD,
      .next_ms = NOW + 1000}},
    {"backoff capped",
     {.new_exits = 2, .crashes = 5, .backoff_ms = 40000},
     {.crashes = 7,
      .backoff_ms = MAX,
      .until_ms = NOW + 40000,
      .delay_ms = 40000,
      .held = true,
      .verdict = RECONCILE_HOLD,
      .next_ms = NOW + 40000}},
    {"still backing off: start held",
     {.crashes = 2, .backoff_ms = 4000, .backoff_until_ms = NOW + 1},
     {.crashes = 2,
      .backoff_ms = 4000,
      .until_ms = NOW + 1,
      .held = true,
      .verdict = RECONCILE_HOLD,
      .next_ms = NOW + 1}},
    {"backoff over: start goes",
     {.crashes = 2, .backoff_ms = 4000, .backoff_until_ms = NOW},
     {.crashes = 2, .backoff_ms = 4000, .until_ms = NOW}},
    {"backoff does not hold removals",
     {.crashes = 2, .backoff_until_ms = NOW + 5000, .remove = true},
     {.crashes = 2, .until_ms = NOW + 5000, .held = true}},
    /* progress */
    {"progress: new score",
     {.score = 200000, .last_score = 100000, .last_progress_ms = 5},
     {.last_score = 200000, .last_progress_ms = NOW}},
    {"no progress: kept",
     {.score = 100000, .last_score = 100000, .last_progress_ms = 5},
     {.last_score = 100000, .last_progress_ms = 5}},
    /* settling */
    {"converged: a settled period starts",
     {.conv = true},
     {.converged = true, .since = NOW, .next_ms = NOW + SETTLE}},
    {"converging: not long enough",
     {.conv = true, .since = NOW - 999},
     {.converged = true, .since = NOW - 999, .converged_for = 999, .next_ms = NOW + 1}},
    {"settle time reached: confirm by inspect",
     {.conv = true, .since = NOW - SETTLE},
     {.check_running = true, .converged = true, .since = NOW - SETTLE, .converged_for = SETTLE}},
    {"confirmed running",
     {.conv = true, .since = NOW - SETTLE, .running = RECONCILE_FACT_YES},
     {.converged = true, .since = NOW - SETTLE, .confirmed = true, .converged_for = SETTLE}},
    {"inspect disproves",
     {.conv = true, .since = NOW - SETTLE, .running = RECONCILE_FACT_NO},
     {.converged = false, .since = 0}},
    {"confirmed once: later passes trust the list",
     {.conv = true, .since = NOW - 5000, .confirmed = true},
     {.converged = true, .since = NOW - 5000, .confirmed = true, .converged_for = 5000}},
    {"not converged: period ends",
     {.conv = false, .since = NOW - 5000, .confirmed = true},
     {.converged = false, .since = 0, .confirmed = true}},
    {"quiet long enough: backoff reset",
     {.conv = true, .since = NOW - RESET, .confirmed = true, .crashes = 2, .backoff_ms = 8000},
     {.converged = true,
      .since = NOW - RESET,
      .confirmed = true,
      .converged_for = RESET,
      .reset = true,
      .crashes = 2,
      .backoff_ms = 8000}},
    {"quiet, not long enough: no reset",
     {.conv = true, .since = NOW - RESET + 1, .confirmed = true, .crashes = 2},
     {.converged = true,
      .since = NOW - RESET + 1,
      .confirmed = true,
      .converged_for = RESET - 1,
      .crashes = 2}},
    {"serving with no rollout, unrecorded: record it",
     {.conv = true, .since = NOW - 2000, .confirmed = true, .unrecorded = true},
     {.converged = true,
      .since = NOW - 2000,
      .confirmed = true,
      .converged_for = 2000,
      .record = true}},
    {"probed, converged: settled at once, no inspection",
     {.conv = true, .probe = true},
     {.converged = true, .since = NOW, .confirmed = true}},
    {"probed, converged and unrecorded: recorded at once",
     {.conv = true, .probe = true, .unrecorded = true},
     {.converged = true, .since = NOW, .confirmed = true, .record = true}},
    {"probed, not converged: not settled",
     {.conv = false, .probe = true},
     {.converged = false, .since = 0}},
    {"newest instance started 600ms ago: the period counts from its start",
     {.conv = true, .newest_start = NOW - 600},
     {.converged = true, .since = NOW - 600, .converged_for = 600, .next_ms = NOW + 400}},
    {"newest start long ago: confirm by inspect now",
     {.conv = true, .newest_start = NOW - 3000},
     {.check_running = true, .converged = true, .since = NOW - 3000, .converged_for = 3000}},
    {"newest start in the future (clock skew): from now",
     {.conv = true, .newest_start = NOW + 5},
     {.converged = true, .since = NOW, .next_ms = NOW + SETTLE}},
    {"a settled period already runs: the start does not move it",
     {.conv = true, .since = NOW - 200, .newest_start = NOW - 900},
     {.converged = true, .since = NOW - 200, .converged_for = 200, .next_ms = NOW + 800}},
    {"unrecorded, not settled yet: not yet",
     {.conv = true, .since = NOW - 10, .unrecorded = true},
     {.converged = true, .since = NOW - 10, .converged_for = 10, .next_ms = NOW + SETTLE - 10}},
    /* image */
    {"creates, image unknown: look it up", {.creates = true}, {.check_image = true}},
    {"creates, image there", {.creates = true, .image = RECONCILE_FACT_YES}, {}},
    {"creates, image missing: held",
     {.creates = true, .image = RECONCILE_FACT_NO},
     {.held = true, .verdict = RECONCILE_HOLD}},
    {"image only matters for creates", {.image = RECONCILE_FACT_NO}, {}},
    /* depends_on */
    {"dependency settled", {.creates = true, .image = RECONCILE_FACT_YES, .dep = DEP_SETTLED}, {}},
    {"dependency unsettled: creates wait",
     {.creates = true, .image = RECONCILE_FACT_YES, .dep = DEP_UNSETTLED},
     {.held = true, .waiting_for = "db", .verdict = RECONCILE_HOLD}},
    {"dependency failed: creates wait",
     {.creates = true, .image = RECONCILE_FACT_YES, .dep = DEP_FAILED},
     {.held = true, .waiting_for = "db", .verdict = RECONCILE_HOLD}},
    {"dependency absent: creates wait",
     {.creates = true, .image = RECONCILE_FACT_YES, .dep = DEP_ABSENT},
     {.held = true, .waiting_for = "db", .verdict = RECONCILE_HOLD}},
    {"dependency unsettled, a start only: named, not held",
     {.dep = DEP_UNSETTLED},
     {.waiting_for = "db"}},
    /* stops and drains */
    {"remove, no registry: at once", {.remove = true, .serving = true}, {}},
    {"remove, serving: leaves the registry first",
     {.remove = true, .serving = true, .drain_ms = 5000},
     {.verdict = RECONCILE_DRAIN_BEGIN, .next_ms = NOW + 5000}},
    {"remove, draining: not long enough",
     {.remove = true, .drain_ms = 5000, .drain_since = NOW - 4999},
     {.verdict = RECONCILE_DRAIN_WAIT, .next_ms = NOW + 1}},
    {"remove, drained one TTL: stop",
     {.remove = true, .drain_ms = 5000, .drain_since = NOW - 5000},
     {}},
    {"remove, not serving: no drain", {.remove = true, .drain_ms = 5000}, {}},
    {"unhealthy removal counts as a crash", {.remove = true, .crash = true}, {.crash_removals = 1}},
    {"draining unhealthy removal: not yet a crash",
     {.remove = true, .crash = true, .serving = true, .drain_ms = 5000},
     {.verdict = RECONCILE_DRAIN_BEGIN, .next_ms = NOW + 5000}},
};

static const char *const depends_on[] = {"db"};

static void build(const struct tin *t, struct reconcile_decide_input *in,
                  struct reconcile_dep *deps, struct reconcile_action *act)
{
    *act = (struct reconcile_action){
        .kind = t->remove ? RECONCILE_ACT_REMOVE : RECONCILE_ACT_START,
        .serving = t->serving,
        .drain_since_ms = t->drain_since,
        .counts_as_crash = t->crash,
    };
    deps[0] = (struct reconcile_dep){.name = "web", .settled = true};
    deps[1] = (struct reconcile_dep){
        .name = "db",
        .settled = t->dep == DEP_SETTLED || t->dep == DEP_FAILED,
        .failed = t->dep == DEP_FAILED,
    };
    *in = (struct reconcile_decide_input){
        .now_ms = NOW,
        .settle_ms = t->probe ? 0 : SETTLE,
        .backoff_max_ms = MAX,
        .backoff_reset_ms = RESET,
        .unjudged = t->unjudged,
        .new_exits = t->new_exits,
        .crashes = t->crashes,
        .backoff_ms = t->backoff_ms,
        .backoff_until_ms = t->backoff_until_ms,
        .score = t->score,
        .last_score = t->last_score,
        .last_progress_ms = t->last_progress_ms,
        .plan_converged = t->conv,
        .settled_since_ms = t->since,
        .settle_confirmed = t->confirmed,
        .newest_start_ms = t->newest_start,
        .still_running = t->running,
        .unrecorded = t->unrecorded,
        .creates = t->creates,
        .image_present = t->image,
        .depends_on = t->dep != DEP_NONE ? depends_on : NULL,
        .n_depends_on = t->dep != DEP_NONE ? 1 : 0,
        .deps = deps,
        .n_deps = t->dep == DEP_ABSENT ? 1 : 2,
        .drain_ms = t->drain_ms,
        .actions = act,
        .n_actions = 1,
    };
}

static void check_row(const struct row *r)
{
    struct reconcile_decide_input in;
    struct reconcile_dep deps[2];
    struct reconcile_action act;
    build(&r->in, &in, deps, &act);
    struct reconcile_decision d;
    enum reconcile_verdict v = RECONCILE_DO;
    reconcile_decide(&in, &d, &v);
    const struct tout *w = &r->want;
    print_message("row: %s\n", r->name);
    assert_int_equal(d.hold, w->hold);
    assert_int_equal(v, w->verdict);
    if (w->hold)
        return;
    assert_int_equal(d.crashes, w->crashes);
    assert_int_equal(d.backoff_ms, w->backoff_ms);
    assert_int_equal(d.backoff_until_ms, w->until_ms);
    assert_int_equal(d.exit_delay_ms, w->delay_ms);
    assert_int_equal(d.last_score, w->last_score);
    assert_int_equal(d.last_progress_ms, w->last_progress_ms);
    assert_int_equal(d.check_image, w->check_image);
    assert_int_equal(d.check_running, w->check_running);
    assert_int_equal(d.converged, w->converged);
    assert_int_equal(d.settled_since_ms, w->since);
    assert_int_equal(d.settle_confirmed, w->confirmed);
    assert_int_equal(d.converged_for_ms, w->converged_for);
    assert_int_equal(d.backoff_reset, w->reset);
    assert_int_equal(d.record_good, w->record);
    assert_int_equal(d.starts_held, w->held);
    if (w->waiting_for == NULL)
        assert_null(d.waiting_for);
    else
        assert_string_equal(d.waiting_for, w->waiting_for);
    assert_int_equal(d.crash_removals, w->crash_removals);
    assert_int_equal(d.next_ms, w->next_ms);

    /* deciding again with the same input gives the same decision */
    struct reconcile_decision again;
    enum reconcile_verdict v2 = RECONCILE_DO;
    reconcile_decide(&in, &again, &v2);
    assert_memory_equal(&d, &again, sizeof(d));
    assert_int_equal(v, v2);
}

static void test_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < ORCH_ARRAY_LEN(rows); i++)
        check_row(&rows[i]);
}

/* The executor's loop: an unknown fact asked for, looked up, decided again. */
static void test_facts_fed_back(void **state)
{
    (void)state;
    struct tin t = {.conv = true, .since = NOW - SETTLE, .creates = true};
    struct reconcile_decide_input in;
    struct reconcile_dep deps[2];
    struct reconcile_action act;
    build(&t, &in, deps, &act);
    struct reconcile_decision d;
    enum reconcile_verdict v;
    reconcile_decide(&in, &d, &v);
    assert_true(d.check_image);
    assert_true(d.check_running);
    in.image_present = RECONCILE_FACT_NO;
    reconcile_decide(&in, &d, &v);
    assert_false(d.check_image);
    assert_true(d.starts_held);
    assert_int_equal(v, RECONCILE_HOLD);
    in.still_running = RECONCILE_FACT_NO;
    reconcile_decide(&in, &d, &v);
    assert_false(d.check_running);
    assert_false(d.converged);
    assert_int_equal(d.settled_since_ms, 0);
}

/* Several actions: each gets its own verdict; starts and removals gated independently. */
static void test_mixed_actions(void **state)
{
    (void)state;
    struct reconcile_action acts[] = {
        {.kind = RECONCILE_ACT_START},
        {.kind = RECONCILE_ACT_REMOVE, .serving = true},
        {.kind = RECONCILE_ACT_REMOVE, .drain_since_ms = NOW - 6000, .counts_as_crash = true},
        {.kind = RECONCILE_ACT_REMOVE, .counts_as_crash = true},
    };
    struct reconcile_decide_input in = {
        .now_ms = NOW,
        .settle_ms = SETTLE,
        .backoff_max_ms = MAX,
        .backoff_reset_ms = RESET,
        .backoff_until_ms = NOW + 3000,
        .creates = true,
        .image_present = RECONCILE_FACT_YES,
        .drain_ms = 5000,
        .actions = acts,
        .n_actions = ORCH_ARRAY_LEN(acts),
    };
    struct reconcile_decision d;
    enum reconcile_verdict v[ORCH_ARRAY_LEN(acts)];
    reconcile_decide(&in, &d, v);
    assert_int_equal(v[0], RECONCILE_HOLD);
    assert_int_equal(v[1], RECONCILE_DRAIN_BEGIN);
    assert_int_equal(v[2], RECONCILE_DO);
    assert_int_equal(v[3], RECONCILE_DO);
    assert_int_equal(d.crash_removals, 2);
    assert_int_equal(d.next_ms, NOW + 3000); /* the backoff ends before the drain */
}

static void test_crashes(void **state)
{
    (void)state;
    static const struct {
        int crashes;
        int64_t backoff;
        int n;
        int want_crashes;
        int64_t want_backoff, want_delay;
    } t[] = {
        {0, 1000, 1, 1, 1000, 0},      {1, 1000, 1, 2, 2000, 1000}, {2, 2000, 3, 5, 4000, 2000},
        {9, 32000, 1, 10, MAX, 32000}, {10, MAX, 1, 11, MAX, MAX},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(t); i++) {
        struct reconcile_backoff b =
            reconcile_decide_crashes(t[i].crashes, t[i].backoff, t[i].n, NOW, MAX);
        assert_int_equal(b.crashes, t[i].want_crashes);
        assert_int_equal(b.backoff_ms, t[i].want_backoff);
        assert_int_equal(b.delay_ms, t[i].want_delay);
        assert_int_equal(b.until_ms, NOW + t[i].want_delay);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_table),
        cmocka_unit_test(test_facts_fed_back),
        cmocka_unit_test(test_mixed_actions),
        cmocka_unit_test(test_crashes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
