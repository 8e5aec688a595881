/* Helpers shared by the store's tests: scratch folders and direct SQLite access to the
 * database file, for what the store API deliberately does not expose. */
#ifndef ORCH_STORE_TEST_STORE_UTIL_H
#define ORCH_STORE_TEST_STORE_UTIL_H

#include <stdint.h>

#include "base/error.h"

struct store;

/* A test's scratch folder and state dir (tmp/state, not created by tst_setup) with its store. */
struct fixture {
    char *tmp; /* scratch folder, removed afterwards */
    char *dir; /* tmp/state */
    struct store *s;
};
/* cmocka fixtures: a new struct fixture in *state; tst_setup_open also opens the store there
 * (failing the test when it cannot); tst_teardown closes it and removes the folder. */
int tst_setup(void **state);
int tst_setup_open(void **state);
int tst_teardown(void **state);

/* OK(call) fails the test with the call's error; calls take `E` as their error argument. */
#define OK(call)                                                                                   \
    do {                                                                                           \
        struct orch_error e_ = {0};                                                                \
        int rc_ = (call);                                                                          \
        if (rc_ != 0)                                                                              \
            fail_msg("%s: %d %s", #call, rc_, e_.msg);                                             \
    } while (0)
#define E (&e_)

/* A new empty folder under $TMPDIR (or /tmp); new string. Aborts the test on failure. */
char *tst_mkdtemp(void);
/* rm -rf dir. */
void tst_rmrf(const char *dir);
/* Runs sql on dir/orch.db through a fresh connection; returns the SQLite result code. */
int tst_raw_exec(const char *dir, const char *sql);
/* The first column of the first row of sql as an integer (-1 when there is none). */
int64_t tst_raw_int(const char *dir, const char *sql);

#endif
