/* Table tests of the pure health verdict: every status transition (start period boundary,
 * retries=1, flapping, recovery, Docker's "a success ends the start period"), the next-due
 * computation and the HTTP status line parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "health/health_verdict.h"

#define S HEALTH_STARTING
#define H HEALTH_HEALTHY
#define U HEALTH_UNHEALTHY
#define N HEALTH_NONE

struct step {
    bool ok;
    int64_t at;
    enum health_status want;
    int failures;  /* expected consecutive counted failures after the step */
    int successes; /* expected consecutive successes */
};

struct verdict_case {
    const char *name;
    enum spec_probe_kind kind; /* 0 (NONE) means http */
    int retries;
    int64_t start_period_ms;
    int64_t started_ms;
    struct step steps[12];
    size_t n;
    int64_t start_interval_ms; /* 0: none (probes every interval from the start) */
};

static const struct verdict_case cases[] = {
    {"first success is healthy", 0, 3, 0, 0, {{true, 2000, H, 0, 1}}, 1},
    {"failures below retries stay starting",
     0,
     3,
     0,
     0,
     {{false, 2000, S, 1, 0}, {false, 4000, S, 2, 0}, {false, 6000, U, 3, 0}},
     3},
    {"retries=1: one failure is unhealthy", 0, 1, 0, 0, {{false, 10, U, 1, 0}}, 1},
    {"retries below 1 act as 1", 0, 0, 0, 0, {{false, 10, U, 1, 0}}, 1},
    {"start period: a failure 1ms before its end does not count, at its end it does",
     0,
     1,
     1000,
     5000,
     {{false, 5000, S, 0, 0}, {false, 5999, S, 0, 0}, {false, 6000, U, 1, 0}},
     3},
    {"start period: a failure before the start (clock skew) does not count",
     0,
     1,
     1000,
     5000,
     {{false, 4000, S, 0, 0}},
     1},
    {"start period 0: the very first failure counts",
     0,
     2,
     0,
     0,
     {{false, 0, S, 1, 0}, {false, 1, U, 2, 0}},
     2},
    {"start period: failures then success inside it, then counted failures",
     0,
     2,
     10000,
     0,
     {{false, 1000, S, 0, 0},
      {false, 2000, S, 0, 0},
      {true, 3000, H, 0, 1},
      {false, 4000, H, 1, 0},
      {false, 5000, U, 2, 0}},
     5},
    {"start period ends for good after a success (Docker): failure inside it counts",
     0,
     1,
     60000,
     0,
     {{true, 100, H, 0, 1}, {false, 200, U, 1, 0}},
     2},
    {"starting with counted failures recovers on a success",
     0,
     3,
     0,
     0,
     {{false, 1, S, 1, 0}, {false, 2, S, 2, 0}, {true, 3, H, 0, 1}},
     3},
    {"flapping never reaches retries consecutive failures",
     0,
     3,
     0,
     0,
     {{true, 1, H, 0, 1},
      {false, 2, H, 1, 0},
      {false, 3, H, 2, 0},
      {true, 4, H, 0, 1},
      {false, 5, H, 1, 0},
      {false, 6, H, 2, 0},
      {true, 7, H, 0, 1},
      {false, 8, H, 1, 0}},
     8},
    {"healthy -> unhealthy -> healthy -> unhealthy (recovery like Docker)",
     0,
     2,
     0,
     0,
     {{true, 1, H, 0, 1},
      {true, 2, H, 0, 2},
      {false, 3, H, 1, 0},
      {false, 4, U, 2, 0},
      {false, 5, U, 3, 0},
      {true, 6, H, 0, 1},
      {false, 7, H, 1, 0},
      {false, 8, U, 2, 0}},
     8},
    {"unhealthy stays unhealthy while failing and ignores the start period",
     0,
     1,
     100000,
     0,
     {{true, 1, H, 0, 1}, {false, 2, U, 1, 0}, {false, 3, U, 2, 0}, {false, 4, U, 3, 0}},
     4},
    {"tcp follows the same rules",
     SPEC_PROBE_TCP,
     2,
     0,
     0,
     {{false, 1, S, 1, 0}, {false, 2, U, 2, 0}, {true, 3, H, 0, 1}},
     3},
    {"exec follows the same rules",
     SPEC_PROBE_EXEC,
     1,
     0,
     0,
     {{true, 1, H, 0, 1}, {false, 2, U, 1, 0}},
     2},
    {"start_interval: brisk failures count one per interval since the start",
     0,
     2,
     0,
     0,
     {{false, 0, S, 0, 0},
      {false, 250, S, 0, 0},
      {false, 1999, S, 0, 0},
      {false, 2000, S, 1, 0},
      {false, 2250, S, 1, 0},
      {false, 3999, S, 1, 0},
      {false, 4000, U, 2, 0}},
     7,
     250},
    {"start_interval: a brisk success is healthy at once",
     0,
     3,
     0,
     1000,
     {{false, 1000, S, 0, 0}, {true, 1250, H, 0, 1}},
     2,
     250},
    {"start_interval: once healthy, failures count as they come",
     0,
     1,
     0,
     0,
     {{true, 250, H, 0, 1}, {false, 500, U, 1, 0}},
     2,
     250},
    {"start_interval with a start period: the period shields first",
     0,
     1,
     5000,
     0,
     {{false, 1000, S, 0, 0}, {false, 4999, S, 0, 0}, {false, 5000, U, 1, 0}},
     3,
     1000},
    {"start_interval not shorter than interval: no pacing",
     0,
     1,
     0,
     0,
     {{false, 10, U, 1, 0}},
     1,
     2000},
};

static struct spec_health cfg_of(const struct verdict_case *c)
{
    return (struct spec_health){.kind = c->kind == SPEC_PROBE_NONE ? SPEC_PROBE_HTTP : c->kind,
                                .interval_ms = 2000,
                                .timeout_ms = 1000,
                                .retries = c->retries,
                                .start_period_ms = c->start_period_ms,
                                .start_interval_ms = c->start_interval_ms};
}

static void test_transitions(void **state)
{
    for (size_t i = 0; i < ORCH_ARRAY_LEN(cases); i++) {
        const struct verdict_case *c = &cases[i];
        struct spec_health cfg = cfg_of(c);
        struct health_state st;

        health_state_init(&st, &cfg, c->started_ms);
        assert_int_equal(st.status, S);
        assert_int_equal(st.last_probe_ms, -1);
        for (size_t j = 0; j < c->n; j++) {
            const struct step *s = &c->steps[j];
            enum health_status got = health_observe(&cfg, &st, s->ok, s->at);
            if (got != s->want || st.status != s->want || st.failures != s->failures ||
                st.successes != s->successes)
                fail_msg("%s, step %zu: got %s failures=%d successes=%d, want %s %d %d", c->name, j,
                         health_status_name(got), st.failures, st.successes,
                         health_status_name(s->want), s->failures, s->successes);
            assert_int_equal(st.last_probe_ms, s->at);
            assert_int_equal(st.last_success, s->ok);
        }
    }
}

/* changed_ms moves only when the status does. */
static void test_changed_ms(void **state)
{
    struct spec_health cfg = {.kind = SPEC_PROBE_HTTP, .retries = 2};
    struct health_state st;

    health_state_init(&st, &cfg, 100);
    assert_int_equal(st.changed_ms, 100);
    health_observe(&cfg, &st, false, 200);
    assert_int_equal(st.changed_ms, 100); /* still starting */
    health_observe(&cfg, &st, true, 300);
    assert_int_equal(st.changed_ms, 300);
    health_observe(&cfg, &st, true, 400);
    assert_int_equal(st.changed_ms, 300);
    health_observe(&cfg, &st, false, 500);
    health_observe(&cfg, &st, false, 600);
    assert_int_equal(st.status, U);
    assert_int_equal(st.changed_ms, 600);
}

static void test_no_probe(void **state)
{
    struct spec_health none = {.kind = SPEC_PROBE_NONE, .retries = 1};
    struct health_state st;

    health_state_init(&st, &none, 0);
    assert_int_equal(st.status, N);
    assert_int_equal(health_observe(&none, &st, false, 10), N);
    assert_int_equal(health_observe(&none, &st, true, 20), N);
    assert_int_equal(st.last_probe_ms, -1);
    health_state_init(&st, NULL, 0);
    assert_int_equal(st.status, N);
    assert_true(health_next_due_ms(&none, &st, 5) == INT64_MAX);
    assert_true(health_next_due_ms(NULL, &st, 5) == INT64_MAX);
}

static void test_next_due(void **state)
{
    static const struct {
        int64_t interval, start_interval;
        enum health_status status;
        int64_t started, last, now, want;
    } t[] = {
        {2000, 0, S, 1000, -1, 1000, 1000},     /* a new instance is probed at its start */
        {2000, 0, S, 1000, -1, 2500, 2500},     /* ... at once when watched later */
        {2000, 0, S, 1000, -1, 500, 1000},      /* ... not before it started */
        {2000, 0, S, 1000, -1, 90000, 90000},   /* an old container is probed at once */
        {2000, 0, S, 1000, 5000, 5000, 7000},   /* one interval after the last result */
        {2000, 0, H, 1000, 5000, 8000, 8000},   /* overdue: now */
        {2000, 250, S, 1000, 5000, 5000, 5250}, /* starting: one start_interval */
        {2000, 250, H, 1000, 5000, 5000, 7000}, /* a verdict: back to the interval */
        {2000, 250, U, 1000, 5000, 5000, 7000}, /* ... either verdict */
        {200, 250, S, 1000, 5000, 5000, 5200},  /* start_interval capped at interval */
        {100, 0, H, 0, 0, 0, 100},              /* a result at time 0 is a result */
        {0, 0, H, 0, 0, 0, 1},                  /* a zero interval cannot spin */
        {INT64_MAX, 0, H, 5, 5, 0, INT64_MAX},  /* no overflow */
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(t); i++) {
        struct spec_health cfg = {.kind = SPEC_PROBE_TCP,
                                  .interval_ms = t[i].interval,
                                  .start_interval_ms = t[i].start_interval,
                                  .retries = 3};
        struct health_state st;
        health_state_init(&st, &cfg, t[i].started);
        st.status = t[i].status;
        st.last_probe_ms = t[i].last;
        int64_t got = health_next_due_ms(&cfg, &st, t[i].now);
        if (got != t[i].want)
            fail_msg("case %zu: got %lld, want %lld", i, (long long)got, (long long)t[i].want);
    }
}

static void test_http_status(void **state)
{
    static const struct {
        const char *in;
        int want_rc;
        int want_status;
    } t[] = {
        {"HTTP/1.1 200 OK\r\n", 1, 200},
        {"HTTP/1.0 204 No Content\r\nServer: x\r\n\r\n", 1, 204},
        {"HTTP/1.1 302 Found\n", 1, 302},
        {"HTTP/1.1 503\r\n", 1, 503},  /* no reason phrase */
        {"HTTP/1.1 404 \r\n", 1, 404}, /* empty reason phrase */
        {"HTTP/1.1 399 x\r\n", 1, 399},
        {"HTTP/1.1 200 OK", 0, 0}, /* line not complete yet */
        {"HTTP/1.", 0, 0},
        {"HT", 0, 0},
        {"", 0, 0},
        {"XTTP/1.1 200 OK\r\n", -1, 0},
        {"HX", -1, 0}, /* a wrong prefix fails before the line ends */
        {"SSH-2.0-OpenSSH_9.2", -1, 0},
        {"HTTP/2 200\r\n", -1, 0},
        {"HTTP/1.2 200 OK\r\n", -1, 0},
        {"HTTP/1.1  200 OK\r\n", -1, 0},
        {"HTTP/1.1 20 OK\r\n", -1, 0},
        {"HTTP/1.1 2000 OK\r\n", -1, 0},
        {"HTTP/1.1 2x0 OK\r\n", -1, 0},
        {"HTTP/1.1 099 OK\r\n", -1, 0},
        {"HTTP/1.1 600 OK\r\n", -1, 0},
        {"HTTP/1.1\r\n", -1, 0},
        {"\r\n", -1, 0},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(t); i++) {
        int status = -7;
        int rc = health_http_parse_status(t[i].in, strlen(t[i].in), &status);
        if (rc != t[i].want_rc || (rc == 1 && status != t[i].want_status) ||
            (rc != 1 && status != -7))
            fail_msg("'%s': rc %d status %d, want rc %d status %d", t[i].in, rc, status,
                     t[i].want_rc, t[i].want_status);
    }
    /* Only the bytes given are read: a complete line beyond len is not seen. */
    int status = 0;
    assert_int_equal(health_http_parse_status("HTTP/1.1 200 OK\r\n", 10, &status), 0);
}

static void test_http_healthy(void **state)
{
    static const struct {
        int status;
        bool healthy;
    } t[] = {{100, false}, {199, false}, {200, true},  {204, true},  {299, true}, {301, true},
             {399, true},  {400, false}, {404, false}, {500, false}, {503, false}};
    for (size_t i = 0; i < ORCH_ARRAY_LEN(t); i++)
        if (health_http_status_healthy(t[i].status) != t[i].healthy)
            fail_msg("status %d", t[i].status);
}

static void test_status_names(void **state)
{
    assert_string_equal(health_status_name(N), "none");
    assert_string_equal(health_status_name(S), "starting");
    assert_string_equal(health_status_name(H), "healthy");
    assert_string_equal(health_status_name(U), "unhealthy");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transitions),  cmocka_unit_test(test_changed_ms),
        cmocka_unit_test(test_no_probe),     cmocka_unit_test(test_next_due),
        cmocka_unit_test(test_http_status),  cmocka_unit_test(test_http_healthy),
        cmocka_unit_test(test_status_names),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
