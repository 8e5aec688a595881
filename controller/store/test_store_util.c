/* Test helpers for the store: scratch folders and raw SQLite access. Tests only. */
#define _GNU_SOURCE
#include "test_store_util.h"

#include <ftw.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "base/util.h"
#include "store/store.h"

char *tst_mkdtemp(void)
{
    const char *tmp = getenv("TMPDIR");
    char *p = orch_xasprintf("%s/orch-store-test.XXXXXX", tmp && tmp[0] ? tmp : "/tmp");
    if (mkdtemp(p) == NULL) {
        perror("mkdtemp");
        abort();
    }
    return p;
}

static int rm_one(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
    remove(path);
    return 0;
}

void tst_rmrf(const char *dir)
{
    nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

static sqlite3 *raw_open(const char *dir)
{
    char *path = orch_xasprintf("%s/orch.db", dir);
    sqlite3 *db = NULL;
    if (sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, NULL) != SQLITE_OK) {
        fprintf(stderr, "open %s: %s\n", path, sqlite3_errmsg(db));
        abort();
    }
    sqlite3_busy_timeout(db, 5000);
    free(path);
    return db;
}

int tst_raw_exec(const char *dir, const char *sql)
{
    sqlite3 *db = raw_open(dir);
    int rc = sqlite3_exec(db, sql, NULL, NULL, NULL);
    sqlite3_close(db);
    return rc;
}

int64_t tst_raw_int(const char *dir, const char *sql)
{
    sqlite3 *db = raw_open(dir);
    sqlite3_stmt *st = NULL;
    int64_t v = -1;
    if (sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

int tst_setup(void **state)
{
    struct fixture *f = orch_xcalloc(1, sizeof(*f));
    f->tmp = tst_mkdtemp();
    f->dir = orch_xasprintf("%s/state", f->tmp);
    *state = f;
    return 0;
}

int tst_setup_open(void **state)
{
    tst_setup(state);
    struct fixture *f = *state;
    struct orch_error err = {0};
    if (store_open(f->dir, &f->s, &err) < 0) {
        fprintf(stderr, "store_open: %s\n", err.msg);
        return -1;
    }
    return 0;
}

int tst_teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->s);
    tst_rmrf(f->tmp);
    free(f->dir);
    free(f->tmp);
    free(f);
    return 0;
}
