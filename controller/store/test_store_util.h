/* Helpers shared by the store's tests: scratch folders and direct SQLite access to the
 * database file, for what the store API deliberately does not expose. */
#ifndef ORCH_STORE_TEST_STORE_UTIL_H
#define ORCH_STORE_TEST_STORE_UTIL_H

#include <stdint.h>

/* A new empty folder under $TMPDIR (or /tmp); new string. Aborts the test on failure. */
char *tst_mkdtemp(void);
/* rm -rf dir. */
void tst_rmrf(const char *dir);
/* Runs sql on dir/orch.db through a fresh connection; returns the SQLite result code. */
int tst_raw_exec(const char *dir, const char *sql);
/* The first column of the first row of sql as an integer (-1 when there is none). */
int64_t tst_raw_int(const char *dir, const char *sql);

#endif
