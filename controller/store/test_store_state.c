/* Unit tests of the state dir's identity and the operator's way back (issue 16): the state-id
 * file and the refusal of a lost database, backup (also while another process writes), restore,
 * init with an adopted id, the checks of stored revisions on read, private files, and a
 * regular file given as state dir. Each test works in its own scratch folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "base/util.h"
#include "store/store.h"
#include "test_store_util.h"

static char *path_in(const char *dir, const char *name)
{
    return orch_xasprintf("%s/%s", dir, name);
}

static void reopen(struct fixture *f)
{
    store_close(f->s);
    f->s = NULL;
}

static void put_web(struct store *s, const char *image, int64_t created_ms)
{
    OK(store_app_put(s, "shop", "", 1000, E));
    struct store_service svc = {.app = "shop", .name = "web", .replicas = 1, .spec_json = "{}"};
    OK(store_service_put(s, &svc, E));
    _cleanup_free_ char *tmpl = orch_xasprintf("{\"image\":\"%s\"}", image);
    char hash[65];
    store_template_hash(tmpl, hash);
    struct store_revision rev = {.app = "shop",
                                 .service = "web",
                                 .hash = hash,
                                 .template_json = tmpl,
                                 .image = (char *)image,
                                 .created_ms = created_ms,
                                 .state = STORE_REV_PENDING};
    OK(store_revision_add(s, &rev, NULL, E));
}

static mode_t mode_of(const char *path)
{
    struct stat sb;
    assert_int_equal(stat(path, &sb), 0);
    return sb.st_mode & 07777;
}

static void test_id_file_and_private_files(void **state)
{
    struct fixture *f = *state;
    struct orch_error err = {0};
    char *id = store_state_id(f->s, &err);
    assert_non_null(id);
    char *file_id = NULL;
    OK(store_dir_state_id(f->dir, &file_id, E));
    assert_non_null(file_id);
    assert_string_equal(file_id, id);
    assert_true(store_state_id_valid(id));
    _cleanup_free_ char *idf = path_in(f->dir, STORE_ID_FILE);
    _cleanup_free_ char *db = path_in(f->dir, STORE_DB_NAME);
    _cleanup_free_ char *wal = path_in(f->dir, STORE_DB_NAME "-wal");
    assert_int_equal(mode_of(idf), 0600);
    assert_int_equal(mode_of(db), 0600);
    assert_int_equal(mode_of(wal), 0600);
    assert_int_equal(mode_of(f->dir), 0700);
    free(id);
    free(file_id);
    assert_false(store_state_id_valid("0123456789ABCDEF"));
    assert_false(store_state_id_valid("0123456789abcde"));
    assert_false(store_state_id_valid(NULL));
}

/* Emptied, missing, replaced: each refused by both opens, and the refusal writes nothing. */
static void test_lost_database_is_refused(void **state)
{
    struct fixture *f = *state;
    reopen(f);
    _cleanup_free_ char *db = path_in(f->dir, STORE_DB_NAME);
    struct orch_error err = {0};
    struct store *s = NULL;

    assert_int_equal(truncate(db, 0), 0);
    assert_int_equal(store_open(f->dir, &s, &err), -ORCH_E_ENV);
    assert_non_null(strstr(err.msg, "is empty"));
    assert_non_null(strstr(err.msg, "orch state restore FILE"));
    assert_non_null(strstr(err.msg, "orch state init --id"));
    assert_int_equal(store_open_readonly(f->dir, &s, &err), -ORCH_E_ENV);
    struct stat sb;
    assert_int_equal(stat(db, &sb), 0);
    assert_int_equal(sb.st_size, 0);

    assert_int_equal(unlink(db), 0);
    assert_int_equal(store_open(f->dir, &s, &err), -ORCH_E_ENV);
    assert_non_null(strstr(err.msg, "is missing"));
    assert_int_equal(store_open_readonly(f->dir, &s, &err), -ORCH_E_ENV);
    assert_int_equal(access(db, F_OK), -1);

    /* another state dir's database in its place */
    _cleanup_free_ char *other = path_in(f->tmp, "other");
    OK(store_open(other, &s, E));
    store_close(s);
    _cleanup_free_ char *odb = path_in(other, STORE_DB_NAME);
    assert_int_equal(link(odb, db), 0);
    assert_int_equal(store_open(f->dir, &s, &err), -ORCH_E_ENV);
    assert_non_null(strstr(err.msg, "carries state id"));
    assert_int_equal(store_open_readonly(f->dir, &s, &err), -ORCH_E_ENV);

    /* a damaged id file is refused too, not taken for "never used" */
    _cleanup_free_ char *idf = path_in(f->dir, STORE_ID_FILE);
    FILE *fp = fopen(idf, "w");
    fputs("garbage\n", fp);
    fclose(fp);
    assert_int_equal(store_open(f->dir, &s, &err), -ORCH_E_ENV);
    assert_non_null(strstr(err.msg, STORE_ID_FILE));
}

/* An existing state dir from an orch that kept no id file gets one from its database. */
static void test_id_file_written_for_old_state_dir(void **state)
{
    struct fixture *f = *state;
    struct orch_error err = {0};
    char *id = store_state_id(f->s, &err);
    reopen(f);
    _cleanup_free_ char *idf = path_in(f->dir, STORE_ID_FILE);
    assert_int_equal(unlink(idf), 0);
    /* reading writes nothing */
    OK(store_open_readonly(f->dir, &f->s, E));
    reopen(f);
    assert_int_equal(access(idf, F_OK), -1);
    OK(store_open(f->dir, &f->s, E));
    char *file_id = NULL;
    OK(store_dir_state_id(f->dir, &file_id, E));
    assert_string_equal(file_id, id);
    free(id);
    free(file_id);
}

static void test_regular_file_is_no_state_dir(void **state)
{
    struct fixture *f = *state;
    _cleanup_free_ char *file = path_in(f->tmp, "plain");
    FILE *fp = fopen(file, "w");
    fclose(fp);
    struct orch_error err = {0};
    struct store *s = NULL;
    assert_int_equal(store_open_readonly(file, &s, &err), -ORCH_E_ENV);
    assert_non_null(strstr(err.msg, "not a directory"));
    assert_int_equal(store_open(file, &s, &err), -ORCH_E_ENV);
    _cleanup_free_ char *missing = path_in(f->tmp, "missing");
    assert_int_equal(store_open_readonly(missing, &s, &err), -ORCH_E_NOTFOUND);
}

static void test_backup_and_restore(void **state)
{
    struct fixture *f = *state;
    struct orch_error err = {0};
    put_web(f->s, "img:1", 5);
    char *id = store_state_id(f->s, &err);
    _cleanup_free_ char *bak = path_in(f->tmp, "backup.db");
    OK(store_backup(f->s, bak, E));
    assert_int_equal(mode_of(bak), 0600);
    assert_int_equal(store_backup(f->s, bak, &err), -ORCH_E_INVALID);
    OK(store_app_delete(f->s, "shop", E));
    reopen(f);

    char *got_id = NULL;
    OK(store_restore(f->dir, bak, &got_id, E));
    assert_string_equal(got_id, id);
    OK(store_open(f->dir, &f->s, E));
    struct store_revision r;
    OK(store_revision_get(f->s, "shop", "web", 1, &r, E));
    assert_string_equal(r.image, "img:1");
    store_revision_free(&r);
    OK(store_integrity_check(f->s, E));
    reopen(f);

    /* an emptied database comes back from the backup */
    _cleanup_free_ char *db = path_in(f->dir, STORE_DB_NAME);
    assert_int_equal(truncate(db, 0), 0);
    OK(store_restore(f->dir, bak, NULL, E));
    OK(store_open_readonly(f->dir, &f->s, E));
    reopen(f);

    /* a damaged one is moved aside, not deleted */
    FILE *fp = fopen(db, "w");
    for (int i = 0; i < 200; i++)
        fputs("not a database at all\n", fp);
    fclose(fp);
    OK(store_restore(f->dir, bak, NULL, E));
    OK(store_open(f->dir, &f->s, E));

    /* refused inputs change nothing */
    _cleanup_free_ char *junk = path_in(f->tmp, "junk.db");
    fp = fopen(junk, "w");
    fputs("junk\n", fp);
    fclose(fp);
    assert_int_equal(store_restore(f->dir, junk, NULL, &err), -ORCH_E_INVALID);
    _cleanup_free_ char *none = path_in(f->tmp, "none.db");
    assert_int_equal(store_restore(f->dir, none, NULL, &err), -ORCH_E_INVALID);
    _cleanup_free_ char *newer = path_in(f->tmp, "newer");
    struct store *n = NULL;
    OK(store_open(newer, &n, E));
    store_close(n);
    assert_int_equal(tst_raw_exec(newer, "PRAGMA user_version = 99"), SQLITE_OK);
    _cleanup_free_ char *newer_db = path_in(newer, STORE_DB_NAME);
    assert_int_equal(store_restore(f->dir, newer_db, NULL, &err), -ORCH_E_INVALID);
    assert_non_null(strstr(err.msg, "99"));
    char *still = store_state_id(f->s, &err);
    assert_string_equal(still, id);
    free(still);
    free(got_id);
    free(id);
}

/* A child commits (app row + event) in a loop while the parent backs up: every backup is a
 * whole database as of one commit, never a mix. */
static void test_backup_while_another_process_writes(void **state)
{
    struct fixture *f = *state;
    reopen(f);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        struct orch_error err = {0};
        struct store *s = NULL;
        if (store_open(f->dir, &s, &err) < 0)
            _exit(1);
        for (int i = 0;; i++) {
            char name[32];
            snprintf(name, sizeof(name), "a%d", i);
            if (store_begin(s, &err) < 0 || store_app_put(s, name, "", i, &err) < 0 ||
                store_event_add(s, name, "", "applied", "x", i, &err) < 0 ||
                store_commit(s, &err) < 0)
                _exit(2);
        }
    }
    OK(store_open_readonly(f->dir, &f->s, E));
    int64_t last = -1;
    for (int n = 0; n < 20; n++) {
        _cleanup_free_ char *bak = orch_xasprintf("%s/b%d.db", f->tmp, n);
        OK(store_backup(f->s, bak, E));
        sqlite3 *db = NULL;
        assert_int_equal(sqlite3_open_v2(bak, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
        sqlite3_stmt *st = NULL;
        assert_int_equal(sqlite3_prepare_v2(db,
                                            "SELECT (SELECT count(*) FROM apps),"
                                            " (SELECT count(*) FROM events),"
                                            " (SELECT value FROM meta WHERE key = 'state_id')",
                                            -1, &st, NULL),
                         SQLITE_OK);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        int64_t apps = sqlite3_column_int64(st, 0);
        assert_int_equal(apps, sqlite3_column_int64(st, 1));
        assert_true(apps >= last);
        last = apps;
        sqlite3_finalize(st);
        sqlite3_close(db);
        usleep(5000);
    }
    kill(pid, SIGKILL);
    int status = 0;
    waitpid(pid, &status, 0);
    assert_true(WIFSIGNALED(status));
    assert_true(last > 0);
}

static void test_init_adopts_an_id(void **state)
{
    struct fixture *f = *state;
    struct orch_error err = {0};
    put_web(f->s, "img:1", 5);
    char *old = store_state_id(f->s, &err);
    /* a usable database is never replaced */
    assert_int_equal(store_init(f->dir, NULL, NULL, &err), -ORCH_E_ENV);
    reopen(f);
    assert_int_equal(store_init(f->dir, NULL, NULL, &err), -ORCH_E_ENV);
    _cleanup_free_ char *db = path_in(f->dir, STORE_DB_NAME);
    assert_int_equal(truncate(db, 0), 0);
    assert_int_equal(store_init(f->dir, "xyz", NULL, &err), -ORCH_E_INVALID);

    char *made = NULL;
    OK(store_init(f->dir, old, &made, E));
    assert_string_equal(made, old);
    OK(store_open(f->dir, &f->s, E));
    char *now = store_state_id(f->s, &err);
    assert_string_equal(now, old);
    struct store_app *apps = NULL;
    size_t n = 0;
    OK(store_apps_list(f->s, &apps, &n, E));
    assert_int_equal(n, 0);
    store_apps_free(apps, n);
    /* the revision counter continues above the adopted containers' numbers */
    OK(store_revision_seq_raise(f->s, "shop", "web", 7, E));
    OK(store_revision_seq_raise(f->s, "shop", "web", 3, E));
    int64_t next = 0;
    OK(store_revision_next_number(f->s, "shop", "web", &next, E));
    assert_int_equal(next, 8);
    reopen(f);

    /* --new: a fresh id, and the id file follows */
    assert_int_equal(unlink(db), 0);
    char *fresh = NULL;
    OK(store_init(f->dir, NULL, &fresh, E));
    assert_string_not_equal(fresh, old);
    char *file_id = NULL;
    OK(store_dir_state_id(f->dir, &file_id, E));
    assert_string_equal(file_id, fresh);
    OK(store_open(f->dir, &f->s, E));
    free(file_id);
    free(fresh);
    free(now);
    free(made);
    free(old);
}

/* A same-length edit of a stored template passes SQLite's integrity check; the hash does not. */
static void test_tampered_rows_are_refused(void **state)
{
    struct fixture *f = *state;
    put_web(f->s, "img:1", 5);
    reopen(f);
    static const struct {
        const char *sql;
        const char *why;
    } cases[] = {
        {"UPDATE revisions SET template_json = replace(template_json, 'img:1', 'img:2')",
         "does not match its stored hash"},
        {"UPDATE revisions SET image = 'img:2'", "differs from its template"},
        {"UPDATE revisions SET image = 'img' || char(7)", "not printable"},
        {"UPDATE revisions SET image = CAST(x'696dff3a31' AS TEXT)", "not printable"},
        {"UPDATE revisions SET created_ms = 57000000000000", "out of range"},
        {"UPDATE revisions SET created_ms = -1", "out of range"},
    };
    _cleanup_free_ char *bak = path_in(f->tmp, "good.db");
    OK(store_open_readonly(f->dir, &f->s, E));
    OK(store_backup(f->s, bak, E));
    reopen(f);
    for (size_t i = 0; i < ORCH_ARRAY_LEN(cases); i++) {
        OK(store_restore(f->dir, bak, NULL, E));
        _cleanup_free_ char *sql =
            orch_xasprintf("DROP TRIGGER revisions_immutable; %s", cases[i].sql);
        assert_int_equal(tst_raw_exec(f->dir, sql), SQLITE_OK);
        OK(store_open(f->dir, &f->s, E));
        struct orch_error err = {0};
        struct store_revision r;
        assert_int_equal(store_revision_get(f->s, "shop", "web", 1, &r, &err), -ORCH_E_DB);
        assert_non_null(strstr(err.msg, "shop/web revision 1"));
        if (strstr(err.msg, cases[i].why) == NULL)
            fail_msg("case %zu: %s", i, err.msg);
        struct store_revision *v = NULL;
        size_t n = 0;
        assert_int_equal(store_revisions_list(f->s, "shop", "web", &v, &n, &err), -ORCH_E_DB);
        reopen(f);
    }
    /* unicode is fine */
    OK(store_restore(f->dir, bak, NULL, E));
    OK(store_open(f->dir, &f->s, E));
    put_web(f->s, "registry.local/caf\xc3\xa9:1", 5);
    struct store_revision r;
    OK(store_revision_get(f->s, "shop", "web", 2, &r, E));
    store_revision_free(&r);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_id_file_and_private_files, tst_setup_open,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_lost_database_is_refused, tst_setup_open,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_id_file_written_for_old_state_dir, tst_setup_open,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_regular_file_is_no_state_dir, tst_setup_open,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_backup_and_restore, tst_setup_open, tst_teardown),
        cmocka_unit_test_setup_teardown(test_backup_while_another_process_writes, tst_setup_open,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_init_adopts_an_id, tst_setup_open, tst_teardown),
        cmocka_unit_test_setup_teardown(test_tampered_rows_are_refused, tst_setup_open,
                                        tst_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
