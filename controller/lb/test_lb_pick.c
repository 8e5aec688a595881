/* lb_pick() tables: even spread over equal backends in both modes, draining and unhealthy
 * backends skipped, retry order with tried backends, the empty set; least_conn preferring the
 * idlest; and the HTTP/1 request counter over split and pipelined streams. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <string.h>

#include "base/util.h"
#include "lb/lb_pick.h"

#define H LB_BACKEND_HEALTHY
#define D LB_BACKEND_DRAINING

/* Picks `rounds` times, counting choices per backend. In least_conn mode a connection is opened
 * on each choice and the oldest one closes once `open` are open, as under steady load. */
static void spread(struct lb_pick_backend *b, size_t n, enum lb_mode mode, int rounds, int open,
                   int *count)
{
    uint32_t cursor = 0;
    int ring[64];
    int head = 0, len = 0;
    memset(count, 0, n * sizeof(*count));
    for (int r = 0; r < rounds; r++) {
        int i = lb_pick(b, n, mode, &cursor, NULL);
        assert_true(i >= 0);
        count[i]++;
        b[i].active++;
        ring[(head + len++) % 64] = i;
        if (len > open) {
            b[ring[head]].active--;
            head = (head + 1) % 64;
            len--;
        }
    }
}

static void test_even_spread(void **state)
{
    const enum lb_mode modes[] = {LB_ROUND_ROBIN, LB_LEAST_CONN};
    const int opens[] = {0, 1, 7, 40};
    for (size_t m = 0; m < ORCH_ARRAY_LEN(modes); m++) {
        for (size_t o = 0; o < ORCH_ARRAY_LEN(opens); o++) {
            for (size_t n = 1; n <= 7; n++) {
                struct lb_pick_backend b[7];
                int count[7];
                for (size_t i = 0; i < n; i++)
                    b[i] = (struct lb_pick_backend){H, 0};
                int rounds = 3000;
                spread(b, n, modes[m], rounds, opens[o], count);
                double want = (double)rounds / (double)n;
                for (size_t i = 0; i < n; i++)
                    if (count[i] < want * 0.9 || count[i] > want * 1.1)
                        fail_msg("%s open %d n %zu: backend %zu got %d of %d",
                                 lb_mode_name(modes[m]), opens[o], n, i, count[i], rounds);
            }
        }
    }
}

static void test_skip_ineligible(void **state)
{
    /* healthy, draining, unhealthy, healthy+draining, healthy */
    struct lb_pick_backend b[] = {{H, 0}, {D, 0}, {0, 0}, {H | D, 0}, {H, 0}};
    const enum lb_mode modes[] = {LB_ROUND_ROBIN, LB_LEAST_CONN};
    for (size_t m = 0; m < 2; m++) {
        int count[5];
        spread(b, 5, modes[m], 1000, 0, count);
        assert_int_equal(count[1] + count[2] + count[3], 0);
        assert_int_equal(count[0], 500);
        assert_int_equal(count[4], 500);
    }
    struct lb_pick_backend none[] = {{D, 0}, {0, 0}, {H | D, 0}};
    uint32_t cursor = 0;
    assert_int_equal(lb_pick(none, 3, LB_ROUND_ROBIN, &cursor, NULL), -1);
    assert_int_equal(lb_pick(none, 3, LB_LEAST_CONN, &cursor, NULL), -1);
}

static void test_empty_set(void **state)
{
    uint32_t cursor = 5;
    assert_int_equal(lb_pick(NULL, 0, LB_ROUND_ROBIN, &cursor, NULL), -1);
    assert_int_equal(lb_pick(NULL, 0, LB_LEAST_CONN, &cursor, NULL), -1);
    assert_int_equal(cursor, 5);
}

/* A connection whose connect failed asks again: the next untried backend in cursor order, and
 * -1 once every eligible one was tried. */
static void test_retry_order(void **state)
{
    static const struct {
        enum lb_mode mode;
        uint32_t cursor;
        bool tried[4];
        int want;
    } cases[] = {
        {LB_ROUND_ROBIN, 0, {false, false, false, false}, 0},
        {LB_ROUND_ROBIN, 0, {true, false, false, false}, 1},
        {LB_ROUND_ROBIN, 1, {true, true, false, false}, 2},
        {LB_ROUND_ROBIN, 3, {false, false, false, true}, 0},
        {LB_ROUND_ROBIN, 2, {true, true, true, true}, -1},
        {LB_LEAST_CONN, 0, {false, true, false, false}, 2}, /* 0 busier; 1 tried; 2 then 3 */
        {LB_LEAST_CONN, 0, {false, true, true, true}, 0},
        {LB_LEAST_CONN, 0, {true, true, true, true}, -1},
    };
    for (size_t k = 0; k < ORCH_ARRAY_LEN(cases); k++) {
        struct lb_pick_backend b[4] = {{H, 0}, {H, 0}, {H, 0}, {H, 0}};
        if (cases[k].mode == LB_LEAST_CONN)
            b[0].active = 3;
        uint32_t cursor = cases[k].cursor;
        int got = lb_pick(b, 4, cases[k].mode, &cursor, cases[k].tried);
        if (got != cases[k].want)
            fail_msg("case %zu: got %d, want %d", k, got, cases[k].want);
        if (got >= 0)
            assert_int_equal(cursor, (uint32_t)((got + 1) % 4));
    }
    /* a refused backend in the middle: a retried connection goes on round the ring */
    struct lb_pick_backend b[3] = {{H, 0}, {H, 0}, {H, 0}};
    bool tried[3] = {false, false, false};
    uint32_t cursor = 1;
    int first = lb_pick(b, 3, LB_ROUND_ROBIN, &cursor, tried);
    tried[first] = true;
    int second = lb_pick(b, 3, LB_ROUND_ROBIN, &cursor, tried);
    assert_int_equal(first, 1);
    assert_int_equal(second, 2);
}

static void test_least_conn_prefers_idle(void **state)
{
    struct lb_pick_backend b[] = {{H, 5}, {H, 2}, {H, 9}, {H | D, 0}, {H, 2}};
    uint32_t cursor = 0;
    assert_int_equal(lb_pick(b, 5, LB_LEAST_CONN, &cursor, NULL), 1);
    assert_int_equal(lb_pick(b, 5, LB_LEAST_CONN, &cursor, NULL), 4); /* tie: rotates */
    assert_int_equal(lb_pick(b, 5, LB_LEAST_CONN, &cursor, NULL), 1);
}

static void test_mode_names(void **state)
{
    enum lb_mode m;
    assert_true(lb_mode_parse("round_robin", &m));
    assert_int_equal(m, LB_ROUND_ROBIN);
    assert_true(lb_mode_parse("least_conn", &m));
    assert_int_equal(m, LB_LEAST_CONN);
    assert_false(lb_mode_parse("random", &m));
    assert_false(lb_mode_parse(NULL, &m));
    assert_string_equal(lb_mode_name(LB_LEAST_CONN), "least_conn");
}

/* Feeds a stream in pieces of every size from 1 to its length; each split must count the same. */
static void http_case(const char *stream, unsigned want, enum lb_http_state want_state)
{
    size_t len = strlen(stream);
    for (size_t step = 1; step <= len; step++) {
        struct lb_http h = {0};
        unsigned got = 0;
        for (size_t off = 0; off < len; off += step)
            got += lb_http_feed(&h, stream + off, off + step <= len ? step : len - off);
        if (got != want || h.state != want_state)
            fail_msg("step %zu of %s: %u requests (want %u), state %d (want %d)", step, stream, got,
                     want, h.state, want_state);
    }
}

static void test_http_counting(void **state)
{
    http_case("GET / HTTP/1.1\r\nHost: a\r\n\r\n", 1, LB_HTTP_START);
    http_case("GET / HTTP/1.1\r\nHost: a\r\n\r\nGET /b HTTP/1.1\r\nHost: a\r\n\r\n"
              "HEAD / HTTP/1.1\r\n\r\n",
              3, LB_HTTP_START);
    /* a body with something that looks like a request is skipped */
    http_case("POST /x HTTP/1.1\r\nContent-Length: 18\r\n\r\nGET / HTTP/1.1\r\n\r\n"
              "GET /y HTTP/1.0\r\n\r\n",
              2, LB_HTTP_START);
    http_case("POST /x HTTP/1.1\r\ncontent-length:4\r\n\r\nabcd\r\nDELETE /z HTTP/1.1\n\n", 2,
              LB_HTTP_START);
    /* chunked and upgrades stop the counting after their headers */
    http_case("POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nGET /\r\n0\r\n\r\n", 1,
              LB_HTTP_OPAQUE);
    http_case("GET /ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\nGET / HTTP/1.1\r\n\r\n", 1,
              LB_HTTP_OPAQUE);
    /* not HTTP/1 */
    http_case("\x16\x03\x01\x02\x00", 0, LB_HTTP_OPAQUE);
    http_case("PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", 0, LB_HTTP_OPAQUE);
    http_case("get / HTTP/1.1\r\n\r\n", 0, LB_HTTP_OPAQUE);
    http_case("LONGMETHOD / HTTP/1.1\r\n\r\n", 0, LB_HTTP_OPAQUE);
    /* an incomplete request line is neither yet */
    http_case("GE", 0, LB_HTTP_START);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_even_spread),
        cmocka_unit_test(test_skip_ineligible),
        cmocka_unit_test(test_empty_set),
        cmocka_unit_test(test_retry_order),
        cmocka_unit_test(test_least_conn_prefers_idle),
        cmocka_unit_test(test_mode_names),
        cmocka_unit_test(test_http_counting),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
