/* Unit parsers of the spec module: durations, sizes, int-or-percent and its resolution,
 * image references and path normalisation, each from a table of valid and invalid inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include <cmocka.h>

#include "spec/spec.h"
#include "spec/spec_internal.h"

static void test_durations(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t ms;
    } ok[] = {
        {"0", 0},
        {"0s", 0},
        {"0ms", 0},
        {"500ms", 500},
        {"2s", 2000},
        {"1m", 60000},
        {"1m30s", 90000},
        {"1h", 3600000},
        {"1h2m3s4ms", 3723004},
        {"1h500ms", 3600500},
        {"90s", 90000},
        {"007s", 7000},
        {"2562047788015h", 2562047788015LL * 3600000},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t ms = -1;
        if (spec_parse_duration(ok[i].in, &ms) != 0)
            fail_msg("'%s' should parse", ok[i].in);
        if (ms != ok[i].ms)
            fail_msg("'%s' gave %lld, want %lld", ok[i].in, (long long)ms, (long long)ok[i].ms);
    }
    static const char *const bad[] = {
        "",
        " 2s",
        "2s ",
        "2",
        "1.5s",
        "-1s",
        "+1s",
        "1s1m",
        "1m1m",
        "1ms1s",
        "10X",
        "1Gi",
        "s",
        "ms",
        "1d",
        "1S",
        "1 s",
        "1h1h",
        "00",
        "1m30",
        "9223372036854775807s",
        "99999999999999999999ms",
        "2562047788016h",
        "2562047788015h13m",
        "0x10s",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t ms = 12345;
        if (spec_parse_duration(bad[i], &ms) != -1)
            fail_msg("'%s' should be refused", bad[i]);
        assert_int_equal(ms, 12345); /* untouched on failure */
    }
    assert_int_equal(spec_parse_duration(NULL, &(int64_t){0}), -1);
}

static void test_sizes(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int64_t bytes;
    } ok[] = {
        {"0", 0},
        {"1048576", 1048576},
        {"512K", 512LL << 10},
        {"256M", 256LL << 20},
        {"1G", 1LL << 30},
        {"2T", 2LL << 40},
        {"512Mi", 512LL << 20},
        {"1Gi", 1LL << 30},
        {"1GiB", 1LL << 30},
        {"64MB", 64LL << 20},
        {"512m", 512LL << 20},
        {"8388607T", 8388607LL << 40},
        {"9223372036854775807", INT64_MAX},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        int64_t b = -1;
        if (spec_parse_size(ok[i].in, &b) != 0)
            fail_msg("'%s' should parse", ok[i].in);
        if (b != ok[i].bytes)
            fail_msg("'%s' gave %lld", ok[i].in, (long long)b);
    }
    static const char *const bad[] = {
        "",    " 1G",  "1G ",  "1.5G",     "-1",
        "+1",  "10X",  "1Gii", "1GB2",     "G",
        "1iG", "1KK",  "1 G",  "8388608T", "9223372036854775808",
        "1e6", "0x10", "1P",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        int64_t b = 77;
        if (spec_parse_size(bad[i], &b) != -1)
            fail_msg("'%s' should be refused", bad[i]);
        assert_int_equal(b, 77);
    }
}

static void test_pct(void **state)
{
    (void)state;
    static const struct {
        const char *in;
        int value;
        bool percent;
    } ok[] = {
        {"0", 0, false}, {"3", 3, false},   {"2147483647", 2147483647, false},
        {"0%", 0, true}, {"25%", 25, true}, {"100%", 100, true},
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        struct spec_scalar_or_pct p = {-1, false};
        if (spec_parse_pct(ok[i].in, &p) != 0)
            fail_msg("'%s' should parse", ok[i].in);
        assert_int_equal(p.value, ok[i].value);
        assert_int_equal(p.percent, ok[i].percent);
    }
    static const char *const bad[] = {"",     "101%",       "-1",   "-1%",  "25 %", "%",
                                      "1.5%", "2147483648", "25%%", " 25%", "x",    "25%x"};
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        struct spec_scalar_or_pct p = {-1, false};
        if (spec_parse_pct(bad[i], &p) != -1)
            fail_msg("'%s' should be refused", bad[i]);
    }
}

static void test_resolve_pct(void **state)
{
    (void)state;
    static const struct {
        int value;
        bool percent;
        int replicas;
        bool round_up;
        int want;
    } cases[] = {
        {3, false, 10, true, 3},     {3, false, 10, false, 3}, /* absolute: as is */
        {25, true, 10, true, 3},     {25, true, 10, false, 2}, /* 2.5 */
        {25, true, 4, true, 1},      {25, true, 4, false, 1},  /* exact */
        {10, true, 1, true, 1},      {10, true, 1, false, 0},  /* 0.1 */
        {100, true, 7, true, 7},     {100, true, 7, false, 7},  {0, true, 7, true, 0},
        {50, true, 0, true, 0},      {1, true, 1000, true, 10}, {33, true, 1000, false, 330},
        {99, true, 1000, true, 990},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        struct spec_scalar_or_pct v = {cases[i].value, cases[i].percent};
        int got = spec_resolve_pct(v, cases[i].replicas, cases[i].round_up);
        if (got != cases[i].want)
            fail_msg("case %zu: %d%s of %d (%s) = %d, want %d", i, cases[i].value,
                     cases[i].percent ? "%" : "", cases[i].replicas,
                     cases[i].round_up ? "up" : "down", got, cases[i].want);
    }
}

static void test_path_normalise(void **state)
{
    (void)state;
    static const struct {
        const char *in, *want;
    } cases[] = {
        {"/", "/"},
        {"/a/b", "/a/b"},
        {"/a/b/", "/a/b"},
        {"//a///b", "/a/b"},
        {"/a/./b/.", "/a/b"},
        {"/a/../b", "/b"},
        {"/a/b/../../c", "/c"},
        {"/..", "/"},
        {"/../../x", "/x"},
        {"/srv/app/./conf", "/srv/app/conf"},
        {"/srv/app/../x/./y", "/srv/x/y"},
        {"/a/..b/c", "/a/..b/c"},
        {"/a/.b", "/a/.b"},
    };
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        char buf[64];
        snprintf(buf, sizeof(buf), "%s", cases[i].in);
        spec_path_normalise(buf);
        if (strcmp(buf, cases[i].want) != 0)
            fail_msg("'%s' -> '%s', want '%s'", cases[i].in, buf, cases[i].want);
    }
}

static void test_images(void **state)
{
    (void)state;
    static const char *const ok[] = {
        "nginx",
        "nginx:1.25",
        "orch-demo:1",
        "library/nginx:latest",
        "my_org/my__app:v1.0-rc_1",
        "a.b-c_d",
        "org/a.b-c_d",
        "localhost/app",
        "localhost:5000/app:2",
        "registry.example.com/team/app",
        "registry.example.com:443/a/b/c:TAG_1",
        "nginx@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "nginx:1@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
    };
    for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        const char *why = NULL;
        if (!spec_image_valid(ok[i], &why))
            fail_msg("'%s' should be valid: %s", ok[i], why);
        assert_true(spec_image_ref_valid(ok[i]));
    }
    static const char *const bad[] = {
        "",
        "Nginx",
        "nginx:",
        "nginx:-x",
        "nginx:.x",
        "nginx latest",
        "nginx\t",
        "/nginx",
        "nginx/",
        "a//b",
        "-nginx",
        "nginx-",
        "ngi$nx",
        "nginx@sha256:abc",
        "nginx@md5:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
        "nginx@sha256:0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
        "bad_host.com:abc/app",
        "-bad.com/app",
        "n\xc3\xa9ginx",
    };
    for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *why = NULL;
        if (spec_image_valid(bad[i], &why))
            fail_msg("'%s' should be invalid", bad[i]);
        assert_non_null(why);
        assert_false(spec_image_ref_valid(bad[i]));
    }
    /* A tag of 128 characters is the longest. */
    char tag[200] = "app:";
    memset(tag + 4, 'a', 128);
    tag[132] = '\0';
    const char *why;
    assert_true(spec_image_valid(tag, &why));
    tag[132] = 'a';
    tag[133] = '\0';
    assert_false(spec_image_valid(tag, &why));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_durations),
        cmocka_unit_test(test_sizes),
        cmocka_unit_test(test_pct),
        cmocka_unit_test(test_resolve_pct),
        cmocka_unit_test(test_path_normalise),
        cmocka_unit_test(test_images),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
