/* The store's crash-safety proof and its locking behaviour, with real processes: a child
 * commits numbered transactions and is SIGKILLed at random moments; after each kill the
 * database must be intact, hold every transaction the child saw committed, and no part of any
 * other. A second part shows a writer waits for another's transaction, up to the busy timeout. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "store/store.h"
#include "test_store_util.h"

#define CRASH_ROUNDS 20
#define CRASH_MAX_DELAY_MS 150

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One transaction of the writer: the four writes of an apply, all carrying seq. The revision
 * counter must hand out exactly seq, which holds only if no earlier transaction was half kept. */
static int write_seq(struct store *s, int64_t seq, struct orch_error *err)
{
    char path[32], json[48], image[32], msg[32];
    snprintf(path, sizeof(path), "seq-%" PRId64, seq);
    snprintf(json, sizeof(json), "{\"seq\":%" PRId64 "}", seq);
    snprintf(image, sizeof(image), "img:%" PRId64, seq);
    snprintf(msg, sizeof(msg), "%" PRId64, seq);
    int rc = store_begin(s, err);
    if (rc < 0)
        return rc;
    rc = store_app_put(s, "crash", path, seq, err);
    struct store_service svc = {.app = "crash",
                                .name = "web",
                                .revision = seq,
                                .replicas = (int)(seq % 7),
                                .spec_json = json,
                                .created_ms = seq,
                                .updated_ms = seq};
    if (rc == 0)
        rc = store_service_put(s, &svc, err);
    char hash[65];
    store_template_hash(json, hash);
    struct store_revision rev = {.app = "crash",
                                 .service = "web",
                                 .hash = hash,
                                 .template_json = json,
                                 .image = image,
                                 .message = msg,
                                 .created_ms = seq,
                                 .state = STORE_REV_PENDING};
    int64_t number = 0;
    if (rc == 0)
        rc = store_revision_add(s, &rev, &number, err);
    if (rc == 0 && number != seq)
        rc = orch_fail(err, ORCH_E_INTERNAL, 0, "revision %" PRId64 " for seq %" PRId64, number,
                       seq);
    if (rc == 0)
        rc = store_event_add(s, "crash", "web", "seq", msg, seq, err);
    if (rc == 0)
        return store_commit(s, err);
    store_rollback(s);
    return rc;
}

/* The child: commit forever, reporting each sequence number once store_commit returned. */
__attribute__((noreturn)) static void writer_child(const char *dir, int64_t first, int wfd)
{
    struct orch_error err = {0};
    struct store *s = NULL;
    if (store_open(dir, &s, &err) < 0) {
        fprintf(stderr, "child: open: %s\n", err.msg);
        _exit(2);
    }
    for (int64_t seq = first;; seq++) {
        if (write_seq(s, seq, &err) < 0) {
            fprintf(stderr, "child: seq %" PRId64 ": %s\n", seq, err.msg);
            _exit(3);
        }
        /* 8 bytes into a pipe is one atomic write. */
        if (write(wfd, &seq, sizeof(seq)) != (ssize_t)sizeof(seq))
            _exit(4);
    }
}

/* Reads sequence numbers from fd until deadline (or EOF when deadline < 0); *last gets the
 * highest. */
static void read_reports(int fd, int64_t deadline, int64_t *last)
{
    for (;;) {
        int timeout = -1;
        if (deadline >= 0) {
            int64_t left = deadline - mono_ms();
            if (left <= 0)
                return;
            timeout = (int)left;
        }
        struct pollfd p = {.fd = fd, .events = POLLIN};
        int n = poll(&p, 1, timeout);
        if (n < 0 && errno == EINTR)
            continue;
        assert_true(n >= 0);
        if (n == 0)
            return;
        int64_t seq;
        ssize_t r = read(fd, &seq, sizeof(seq));
        if (r == 0)
            return; /* EOF: the child is gone */
        assert_int_equal(r, sizeof(seq));
        assert_true(seq > *last);
        *last = seq;
    }
}

/* Everything the store holds must be exactly the state after transaction `max` for some max
 * with reported <= max <= reported + 1 (the child may die between commit and report). Returns
 * max. */
static int64_t verify(const char *dir, int64_t reported)
{
    struct orch_error err = {0};
    struct store *s = NULL;
    if (store_open(dir, &s, &err) < 0)
        fail_msg("reopen after kill: %s", err.msg);
    if (store_integrity_check(s, &err) < 0)
        fail_msg("%s", err.msg);

    /* Revisions: exactly 1..max, each complete. */
    struct store_revision *revs = NULL;
    size_t nrev = 0;
    assert_int_equal(store_revisions_list(s, "crash", "web", &revs, &nrev, &err), 0);
    int64_t max = (int64_t)nrev;
    if (max < reported || max > reported + 1)
        fail_msg("%" PRId64 " transactions in the store, the child reported %" PRId64, max,
                 reported);
    for (size_t i = 0; i < nrev; i++) {
        int64_t want = max - (int64_t)i;
        char buf[32];
        assert_int_equal(revs[i].number, want);
        snprintf(buf, sizeof(buf), "%" PRId64, want);
        assert_string_equal(revs[i].message, buf);
        snprintf(buf, sizeof(buf), "img:%" PRId64, want);
        assert_string_equal(revs[i].image, buf);
    }
    store_revisions_free(revs, nrev);

    /* Events: one per transaction, in order. */
    struct store_event *ev = NULL;
    size_t nev = 0;
    assert_int_equal(store_events_list(s, "crash", "web", 0, &ev, &nev, &err), 0);
    assert_int_equal(nev, (size_t)max);
    for (size_t i = 0; i < nev; i++) {
        char buf[32];
        snprintf(buf, sizeof(buf), "%zu", i + 1);
        assert_string_equal(ev[i].message, buf);
    }
    store_events_free(ev, nev);

    /* The app and service rows are those of the last transaction, not of any other. */
    struct store_service svc;
    struct store_app *apps = NULL;
    size_t napps = 0;
    assert_int_equal(store_apps_list(s, &apps, &napps, &err), 0);
    if (max == 0) {
        assert_int_equal(napps, 0);
        assert_int_equal(store_service_get(s, "crash", "web", &svc, &err), -ORCH_E_NOTFOUND);
    } else {
        char buf[48];
        assert_int_equal(napps, 1);
        snprintf(buf, sizeof(buf), "seq-%" PRId64, max);
        assert_string_equal(apps[0].spec_path, buf);
        assert_int_equal(apps[0].updated_ms, max);
        assert_int_equal(store_service_get(s, "crash", "web", &svc, &err), 0);
        assert_int_equal(svc.revision, max);
        assert_int_equal(svc.replicas, max % 7);
        snprintf(buf, sizeof(buf), "{\"seq\":%" PRId64 "}", max);
        assert_string_equal(svc.spec_json, buf);
        store_service_free(&svc);
    }
    store_apps_free(apps, napps);
    int64_t next = 0;
    assert_int_equal(store_revision_next_number(s, "crash", "web", &next, &err), 0);
    assert_int_equal(next, max + 1);
    store_close(s);
    return max;
}

static void test_sigkill_keeps_committed_and_nothing_partial(void **state)
{
    char *dir = tst_mkdtemp();
    unsigned seed = (unsigned)time(NULL) ^ (unsigned)getpid();
    if (getenv("ORCH_TEST_SEED") != NULL)
        seed = (unsigned)strtoul(getenv("ORCH_TEST_SEED"), NULL, 10);
    fprintf(stderr, "crash test: seed %u (set ORCH_TEST_SEED to repeat), dir %s\n", seed, dir);
    srand(seed);

    int64_t t0 = mono_ms();
    int64_t committed = 0;
    for (int round = 0; round < CRASH_ROUNDS; round++) {
        /* The first rounds die early, inside store_open and the first migration. */
        int delay = round < 3 ? rand() % 4 : 1 + rand() % CRASH_MAX_DELAY_MS;
        int fds[2];
        assert_int_equal(pipe(fds), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            close(fds[0]);
            writer_child(dir, committed + 1, fds[1]);
        }
        close(fds[1]);
        int64_t reported = committed;
        read_reports(fds[0], mono_ms() + delay, &reported);
        assert_int_equal(kill(pid, SIGKILL), 0);
        read_reports(fds[0], -1, &reported); /* what was written before it died */
        close(fds[0]);
        int status = 0;
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFSIGNALED(status) || WTERMSIG(status) != SIGKILL)
            fail_msg("round %d: the writer ended by itself (status %d)", round, status);

        int64_t max = verify(dir, reported);
        fprintf(stderr,
                "round %2d: killed after %3d ms, %4" PRId64 " reported, %4" PRId64
                " in the store\n",
                round, delay, reported, max);
        committed = max;
    }
    /* A run where the child never got to commit would prove nothing. */
    assert_true(committed >= CRASH_ROUNDS);
    assert_true(mono_ms() - t0 < 30000);
    tst_rmrf(dir);
    free(dir);
}

/* ---- locking ---- */

static void test_writer_waits_then_locked(void **state)
{
    char *dir = tst_mkdtemp();
    struct orch_error err = {0};
    struct store *s = NULL;
    assert_int_equal(store_open(dir, &s, &err), 0); /* migrated before the child starts */
    store_close(s);
    s = NULL;

    int ready[2], release[2];
    assert_int_equal(pipe(ready), 0);
    assert_int_equal(pipe(release), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        /* The holder: a write transaction held open until told, then committed 200 ms later. */
        close(ready[0]);
        close(release[1]);
        struct store *h = NULL;
        char c = 'r';
        if (store_open(dir, &h, &err) < 0 || store_begin(h, &err) < 0 ||
            store_app_put(h, "holder", "", 1, &err) < 0 || write(ready[1], &c, 1) != 1 ||
            read(release[0], &c, 1) != 1)
            _exit(2);
        usleep(200 * 1000);
        if (store_commit(h, &err) < 0)
            _exit(3);
        store_close(h);
        _exit(0);
    }
    close(ready[1]);
    close(release[0]);
    char c;
    assert_int_equal(read(ready[0], &c, 1), 1);

    /* Opening and reading go on while another process writes (WAL). */
    assert_int_equal(store_open(dir, &s, &err), 0);
    struct store_app *apps = NULL;
    size_t n = 0;
    assert_int_equal(store_apps_list(s, &apps, &n, &err), 0);
    assert_int_equal(n, 0);
    store_apps_free(apps, n);

    /* Writing waits for the whole busy timeout, then reports the lock. */
    static const int timeouts[] = {100, 300};
    for (size_t i = 0; i < ORCH_ARRAY_LEN(timeouts); i++) {
        store_set_busy_timeout(s, timeouts[i]);
        int64_t t = mono_ms();
        orch_error_clear(&err);
        assert_int_equal(store_begin(s, &err), -ORCH_E_LOCKED);
        int64_t waited = mono_ms() - t;
        if (waited < timeouts[i] - 5 || waited > timeouts[i] + 2000)
            fail_msg("BEGIN gave up after %" PRId64 " ms with a %d ms timeout", waited,
                     timeouts[i]);
        assert_non_null(strstr(err.msg, "locked"));
        assert_non_null(strstr(err.msg, dir));
        t = mono_ms();
        assert_int_equal(store_app_put(s, "mine", "", 2, &err), -ORCH_E_LOCKED);
        assert_true(mono_ms() - t >= timeouts[i] - 5);
    }

    /* With a timeout longer than the holder needs, the second writer queues and succeeds. */
    store_set_busy_timeout(s, 5000);
    assert_int_equal(write(release[1], "g", 1), 1);
    int64_t t = mono_ms();
    assert_int_equal(store_begin(s, &err), 0);
    assert_true(mono_ms() - t >= 100);
    assert_int_equal(store_app_put(s, "mine", "", 2, &err), 0);
    assert_int_equal(store_commit(s, &err), 0);
    assert_int_equal(store_apps_list(s, &apps, &n, &err), 0);
    assert_int_equal(n, 2);
    assert_string_equal(apps[0].name, "holder");
    assert_string_equal(apps[1].name, "mine");
    store_apps_free(apps, n);

    int status = 0;
    assert_int_equal(waitpid(pid, &status, 0), pid);
    assert_true(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    close(ready[0]);
    close(release[1]);
    store_close(s);
    tst_rmrf(dir);
    free(dir);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sigkill_keeps_committed_and_nothing_partial),
        cmocka_unit_test(test_writer_waits_then_locked),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
