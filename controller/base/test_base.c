/* Unit tests of the base module: error formatting, exit-code mapping, buffers, names. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "base/error.h"
#include "base/util.h"

static void test_fail_and_wrap(void **state)
{
    struct orch_error err = {0};
    int rc = orch_fail(&err, ORCH_E_IO, ENOENT, "open %s", "/x");
    assert_int_equal(rc, -ORCH_E_IO);
    assert_string_equal(err.msg, "open /x: No such file or directory");
    rc = orch_wrap(&err, "state dir %s", "/s");
    assert_int_equal(rc, -ORCH_E_IO);
    assert_string_equal(err.msg, "state dir /s: open /x: No such file or directory");
}

static void test_exit_codes(void **state)
{
    static const struct {
        enum orch_errc code;
        enum orch_exit exit;
    } cases[] = {
        {ORCH_E_OK, 0},         {ORCH_E_USAGE, 2},  {ORCH_E_INVALID, 2}, {ORCH_E_NOTFOUND, 2},
        {ORCH_E_ENV, 3},        {ORCH_E_LOCKED, 3}, {ORCH_E_DB, 3},      {ORCH_E_TIMEOUT, 4},
        {ORCH_E_ROLLEDBACK, 1}, {ORCH_E_FAILED, 5}, {ORCH_E_DOCKER, 5},  {ORCH_E_TRANSIENT, 3},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(cases); i++)
        assert_int_equal(orch_errc_exit(cases[i].code), cases[i].exit);
}

static void test_dns_label(void **state)
{
    static const struct {
        const char *s;
        bool ok;
    } cases[] = {
        {"web", true},
        {"a", true},
        {"a-b", true},
        {"0", true},
        {"-a", false},
        {"a-", false},
        {"A", false},
        {"a_b", false},
        {"", false},
        {"a.b", false},
        {"0123456789012345678901234567890123456789", true},
        {"01234567890123456789012345678901234567890", false},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(cases); i++)
        assert_int_equal(orch_is_dns_label(cases[i].s, 40), cases[i].ok);
}

static void test_edit_distance(void **state)
{
    assert_int_equal(orch_edit_distance("replicas", "replicas"), 0);
    assert_int_equal(orch_edit_distance("replica", "replicas"), 1);
    assert_int_equal(orch_edit_distance("imgae", "image"), 2);
    assert_int_equal(orch_edit_distance("", "abc"), 3);
}

static void test_buf(void **state)
{
    struct orch_buf b = {0};
    for (int i = 0; i < 1000; i++)
        orch_buf_printf(&b, "%d,", i);
    assert_true(b.len > 1000);
    assert_int_equal(strlen(b.data), b.len);
    char *s = orch_buf_steal(&b);
    assert_null(b.data);
    assert_memory_equal(s, "0,1,2,", 6);
    free(s);
}

static void test_format_duration(void **state)
{
    char out[32];
    orch_format_duration(90000, out, sizeof(out));
    assert_string_equal(out, "1m30s");
    orch_format_duration(500, out, sizeof(out));
    assert_string_equal(out, "500ms");
    orch_format_duration(0, out, sizeof(out));
    assert_string_equal(out, "0s");
    orch_format_duration(3600000 + 1, out, sizeof(out));
    assert_string_equal(out, "1h1ms");
}

/* Opens /dev/null in a scope; returns the descriptor number, closed or handed out. */
static int open_scoped(bool steal)
{
    _cleanup_close_ int fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    assert_true(fd >= 0);
    return steal ? orch_steal_fd(&fd) : fd;
}

static void test_cleanup_close(void **state)
{
    int closed = open_scoped(false);
    errno = 0;
    assert_int_equal(fcntl(closed, F_GETFD), -1);
    assert_int_equal(errno, EBADF);
    int kept = open_scoped(true);
    assert_true(fcntl(kept, F_GETFD) >= 0);
    close(kept);
    _cleanup_close_ int none = -1; /* a negative descriptor is left alone */
    errno = ENOENT;
    orch_closep(&none);
    assert_int_equal(errno, ENOENT);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fail_and_wrap), cmocka_unit_test(test_exit_codes),
        cmocka_unit_test(test_dns_label),     cmocka_unit_test(test_edit_distance),
        cmocka_unit_test(test_buf),           cmocka_unit_test(test_format_duration),
        cmocka_unit_test(test_cleanup_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
