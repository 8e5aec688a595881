/* Tests of the CPU metric sources' pure parts (the stats answer, the cgroup files, the rate
 * from two samples) and of the cgroup file lookup on a fake cgroup tree. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "autoscale/autoscale_metrics.h"
#include "base/util.h"

/* Trimmed from a real engine 20.10 answer (cgroup v1 host). */
static const char stats_running[] =
    "{\"read\":\"2026-12-03T12:50:09.428458107Z\",\"preread\":\"0001-01-01T00:00:00Z\","
    "\"pids_stats\":{\"current\":1},\"num_procs\":0,"
    "\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":39093860,\"percpu_usage\":[33061710,6032150],"
    "\"usage_in_kernelmode\":0,\"usage_in_usermode\":30000000},"
    "\"system_cpu_usage\":3233770000000,\"online_cpus\":2},"
    "\"precpu_stats\":{\"cpu_usage\":{\"total_usage\":0}}}";
/* What the engine answers for a container that is not running. */
static const char stats_stopped[] =
    "{\"read\":\"0001-01-01T00:00:00Z\",\"preread\":\"0001-01-01T00:00:00Z\","
    "\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":0},\"throttling_data\":{}}}";

static void test_stats_parse(void **state)
{
    (void)state;
    struct autoscale_cpu_sample s = {0};
    struct orch_error err = {0};

    assert_int_equal(autoscale_stats_parse(stats_running, strlen(stats_running), &s, &err), 0);
    assert_int_equal(s.usage_ns, 39093860);
    /* 2026-12-03T12:50:09Z is 1796302209 s after the epoch */
    assert_int_equal(s.at_ns, 1796302209LL * 1000000000 + 428458107);

    const char *offset = "{\"read\":\"2026-12-03T13:50:09.5+01:00\","
                         "\"cpu_stats\":{\"cpu_usage\":{\"total_usage\":7}}}";
    assert_int_equal(autoscale_stats_parse(offset, strlen(offset), &s, &err), 0);
    assert_int_equal(s.at_ns, 1796302209LL * 1000000000 + 500000000);

    s = (struct autoscale_cpu_sample){0};
    assert_int_equal(autoscale_stats_parse(stats_stopped, strlen(stats_stopped), &s, &err),
                     -ORCH_E_NOTFOUND);
    assert_int_equal(s.usage_ns, 0);
    assert_int_equal(autoscale_stats_parse("{", 1, &s, &err), -ORCH_E_DOCKER);
    assert_int_equal(autoscale_stats_parse("{}", 2, &s, &err), -ORCH_E_DOCKER);
    const char *bad_time = "{\"read\":\"yesterday\",\"cpu_stats\":{\"cpu_usage\":"
                           "{\"total_usage\":7}}}";
    assert_int_equal(autoscale_stats_parse(bad_time, strlen(bad_time), &s, &err), -ORCH_E_NOTFOUND);
}

static void test_cgroup_parse(void **state)
{
    (void)state;
    uint64_t ns = 0;
    struct orch_error err = {0};

    assert_int_equal(autoscale_cgroup_parse("usage_usec 39093\nuser_usec 31275\n"
                                            "system_usec 7818\nnice_usec 0\n",
                                            true, &ns, &err),
                     0);
    assert_int_equal(ns, 39093000);
    assert_int_equal(autoscale_cgroup_parse("nr_periods 0\nusage_usec 5\n", true, &ns, &err), 0);
    assert_int_equal(ns, 5000);
    assert_int_equal(autoscale_cgroup_parse("user_usec 1\n", true, &ns, &err), -ORCH_E_IO);
    assert_int_equal(autoscale_cgroup_parse("39093860\n", false, &ns, &err), 0);
    assert_int_equal(ns, 39093860);
    assert_int_equal(autoscale_cgroup_parse("x\n", false, &ns, &err), -ORCH_E_IO);
    assert_int_equal(autoscale_cgroup_parse("", false, &ns, &err), -ORCH_E_IO);
}

static void test_cpu_milli(void **state)
{
    (void)state;
    struct autoscale_cpu_sample a = {.usage_ns = 1000000000, .at_ns = 5000000000};
    struct autoscale_cpu_sample b = {.usage_ns = 3500000000, .at_ns = 10000000000};
    assert_int_equal(autoscale_cpu_milli(&a, &b), 500); /* 2.5 s of CPU in 5 s */
    b.usage_ns = 11000000000;                           /* 10 s of CPU in 5 s: two cores busy */
    assert_int_equal(autoscale_cpu_milli(&a, &b), 2000);
    b.usage_ns = 999; /* went back: restarted */
    assert_int_equal(autoscale_cpu_milli(&a, &b), -1);
    b = a; /* no time passed */
    assert_int_equal(autoscale_cpu_milli(&a, &b), -1);
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void mkdirs(const char *root, const char *rel)
{
    char path[512];
    snprintf(path, sizeof(path), "%s/%s", root, rel);
    for (char *p = path + strlen(root) + 1; *p; p++) {
        if (*p == '/') {
            *p = '\0';
            mkdir(path, 0755);
            *p = '/';
        }
    }
    mkdir(path, 0755);
}

static void test_cgroup_find_and_read(void **state)
{
    (void)state;
    char root[] = "/tmp/orch-cgroup-XXXXXX";
    char *path = NULL, file[512];
    bool v2 = false;
    struct orch_error err = {0};
    struct autoscale_cpu_sample s;
    const char *v2id = "aaaa", *v1id = "bbbb", *hyid = "cccc";

    assert_non_null(mkdtemp(root));
    /* cgroup v2, systemd driver */
    mkdirs(root, "system.slice/docker-aaaa.scope");
    snprintf(file, sizeof(file), "%s/system.slice/docker-aaaa.scope/cpu.stat", root);
    write_file(file, "usage_usec 1500\nuser_usec 1000\n");
    /* cgroup v1, cgroupfs driver; a hybrid host has the unified tree too, cpuacct wins */
    mkdirs(root, "cpuacct/docker/bbbb");
    snprintf(file, sizeof(file), "%s/cpuacct/docker/bbbb/cpuacct.usage", root);
    write_file(file, "2500000\n");
    mkdirs(root, "unified/docker/bbbb");
    snprintf(file, sizeof(file), "%s/unified/docker/bbbb/cpu.stat", root);
    write_file(file, "usage_usec 1\n");
    /* only the hybrid unified tree */
    mkdirs(root, "unified/docker/cccc");
    snprintf(file, sizeof(file), "%s/unified/docker/cccc/cpu.stat", root);
    write_file(file, "usage_usec 7\n");

    assert_int_equal(autoscale_cgroup_find(root, v2id, &path, &v2, &err), 0);
    assert_true(v2);
    assert_int_equal(autoscale_cgroup_read(path, v2, 42, &s, &err), 0);
    assert_int_equal(s.usage_ns, 1500000);
    assert_int_equal(s.at_ns, 42);
    free(path);

    assert_int_equal(autoscale_cgroup_find(root, v1id, &path, &v2, &err), 0);
    assert_false(v2);
    assert_int_equal(autoscale_cgroup_read(path, v2, 43, &s, &err), 0);
    assert_int_equal(s.usage_ns, 2500000);
    /* the container stops: its file goes */
    unlink(path);
    assert_int_equal(autoscale_cgroup_read(path, v2, 44, &s, &err), -ORCH_E_NOTFOUND);
    free(path);

    assert_int_equal(autoscale_cgroup_find(root, hyid, &path, &v2, &err), 0);
    assert_true(v2);
    assert_int_equal(autoscale_cgroup_read(path, v2, 45, &s, &err), 0);
    assert_int_equal(s.usage_ns, 7000);
    free(path);

    path = NULL;
    assert_int_equal(autoscale_cgroup_find(root, "dddd", &path, &v2, &err), -ORCH_E_NOTFOUND);
    assert_null(path);
    assert_int_equal(autoscale_cgroup_find(root, "../x", &path, &v2, &err), -ORCH_E_INVALID);

    char cmd[600];
    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
    assert_int_equal(system(cmd), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_stats_parse),
        cmocka_unit_test(test_cgroup_parse),
        cmocka_unit_test(test_cpu_milli),
        cmocka_unit_test(test_cgroup_find_and_read),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
