/* Unit tests of the state store: opening, migrating and refusing databases, every CRUD
 * function, revision numbering and trimming, rollouts, events, transactions and the default
 * state dir. Each test works in its own scratch folder. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <fcntl.h>
#include <sqlite3.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/util.h"
#include "store/store.h"
#include "store/store_internal.h"
#include "test_store_util.h"

static void put_app(struct store *s, const char *app)
{
    OK(store_app_put(s, app, "shop.yaml", 1000, E));
}

static void put_service(struct store *s, const char *app, const char *name, int64_t rev,
                        int replicas, int64_t now)
{
    struct store_service svc = {
        .app = (char *)app,
        .name = (char *)name,
        .revision = rev,
        .replicas = replicas,
        .spec_json = "{\"image\":\"x\"}",
        .created_ms = now,
        .updated_ms = now,
    };
    OK(store_service_put(s, &svc, E));
}

static int64_t add_revision(struct store *s, const char *app, const char *service,
                            const char *image)
{
    char hash[65];
    store_template_hash("{}", hash);
    struct store_revision rev = {
        .app = (char *)app,
        .service = (char *)service,
        .number = 999, /* ignored */
        .hash = hash,
        .template_json = "{}",
        .image = (char *)image,
        .message = "m",
        .created_ms = 5,
        .state = STORE_REV_PENDING,
    };
    int64_t n = 0;
    OK(store_revision_add(s, &rev, &n, E));
    return n;
}

static size_t count_revisions(struct store *s, const char *app, const char *service)
{
    struct store_revision *v = NULL;
    size_t n = 0;
    OK(store_revisions_list(s, app, service, &v, &n, E));
    store_revisions_free(v, n);
    return n;
}

/* ---- open, migrate, refuse ---- */

static void test_open_creates_and_reopens(void **state)
{
    struct fixture *f = *state;
    /* Two missing levels: mkdir -p. */
    char *deep = orch_xasprintf("%s/a/b", f->dir);
    struct orch_error err = {0};
    assert_int_equal(store_open(deep, &f->s, &err), 0);
    assert_string_equal(store_dir(f->s), deep);
    struct stat sb;
    assert_int_equal(stat(deep, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    assert_int_equal(stat(f->dir, &sb), 0);
    assert_int_equal(sb.st_mode & 0777, 0700);
    put_app(f->s, "shop");
    store_close(f->s);
    f->s = NULL;

    assert_int_equal(tst_raw_int(deep, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    assert_int_equal(tst_raw_int(deep, "PRAGMA application_id"), 0x6f726368);
    assert_int_equal(tst_raw_int(deep, "SELECT count(*) FROM sqlite_master WHERE name IN "
                                       "('apps','services','revisions','rollouts','events')"),
                     5);
    assert_int_equal(tst_raw_int(deep, "SELECT count(*) FROM sqlite_master WHERE type = 'index'"
                                       " AND name = 'events_by_service'"),
                     1);

    /* Reopen: the data is there and the schema is not applied twice. */
    assert_int_equal(store_open(deep, &f->s, &err), 0);
    struct store_app *apps = NULL;
    size_t n = 0;
    assert_int_equal(store_apps_list(f->s, &apps, &n, &err), 0);
    assert_int_equal(n, 1);
    assert_string_equal(apps[0].name, "shop");
    store_apps_free(apps, n);

    /* The connection settings the crash-safety argument rests on. */
    sqlite3 *db = NULL;
    char *path = orch_xasprintf("%s/orch.db", deep);
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA journal_mode", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "wal");
    sqlite3_finalize(st);
    sqlite3_close(db);
    free(path);
    free(deep);
}

static void test_open_through_symlink(void **state)
{
    struct fixture *f = *state;
    /* /var/lib or a home folder may be a symlink; the store must not mind. */
    char *real = orch_xasprintf("%s/real", f->tmp);
    char *link = orch_xasprintf("%s/link", f->tmp);
    char *dir = orch_xasprintf("%s/state", link);
    assert_int_equal(mkdir(real, 0700), 0);
    assert_int_equal(symlink(real, link), 0);
    struct orch_error err = {0};
    assert_int_equal(store_open(dir, &f->s, &err), 0);
    put_app(f->s, "shop");
    char *db = orch_xasprintf("%s/state/orch.db", real);
    assert_int_equal(access(db, F_OK), 0);
    free(db);
    free(dir);
    free(link);
    free(real);
}

static void test_open_migrates_empty_file(void **state)
{
    struct fixture *f = *state;
    /* A file left by a crash before the first migration committed: version 0, no tables. */
    assert_int_equal(mkdir(f->dir, 0700), 0);
    assert_int_equal(tst_raw_exec(f->dir, "PRAGMA journal_mode = WAL"), SQLITE_OK);
    assert_int_equal(tst_raw_int(f->dir, "PRAGMA user_version"), 0);
    struct orch_error err = {0};
    struct store *ro = NULL;
    assert_int_equal(store_open_readonly(f->dir, &ro, &err), -ORCH_E_NOTFOUND);
    assert_int_equal(store_open(f->dir, &f->s, &err), 0);
    assert_int_equal(tst_raw_int(f->dir, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    OK(store_integrity_check(f->s, E));
}

/* A version-1 database (without service_status and meta) is migrated to the current schema,
 * keeps its data and gets a state id; observed status then round-trips. */
static void test_migrates_v1_and_status(void **state)
{
    struct fixture *f = *state;
    struct orch_error err = {0};
    assert_int_equal(store_open(f->dir, &f->s, &err), 0);
    OK(store_app_put(f->s, "shop", "", 1, E));
    struct store_service svc = {.app = "shop", .name = "web", .replicas = 2, .spec_json = "{}"};
    OK(store_service_put(f->s, &svc, E));
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(tst_raw_exec(f->dir, "DROP TABLE deletions; DROP TABLE instance_health;"
                                          " DROP TABLE service_status;"
                                          " DROP TABLE meta; PRAGMA user_version = 1"),
                     SQLITE_OK);
    /* an orch of that schema kept no id file either */
    char *idf = orch_xasprintf("%s/%s", f->dir, STORE_ID_FILE);
    assert_int_equal(unlink(idf), 0);
    free(idf);

    assert_int_equal(store_open(f->dir, &f->s, &err), 0);
    assert_int_equal(tst_raw_int(f->dir, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    struct store_service got;
    OK(store_service_get(f->s, "shop", "web", &got, E));
    assert_int_equal(got.replicas, 2);
    store_service_free(&got);
    char *id = store_state_id(f->s, &err);
    assert_non_null(id);
    assert_int_equal(strlen(id), 16);
    free(id);

    struct store_status st;
    assert_int_equal(store_status_get(f->s, "shop", "web", &st, &err), -ORCH_E_NOTFOUND);
    struct store_status put = {.app = "shop",
                               .service = "web",
                               .observed_ms = 5,
                               .revision = 1,
                               .desired = 2,
                               .running = 2,
                               .healthy = 1,
                               .updated = 2,
                               .converged = false,
                               .message = "waiting"};
    OK(store_status_put(f->s, &put, E));
    put.healthy = 2;
    put.converged = true;
    put.message = NULL;
    OK(store_status_put(f->s, &put, E));
    OK(store_status_get(f->s, "shop", "web", &st, E));
    assert_int_equal(st.healthy, 2);
    assert_true(st.converged);
    assert_string_equal(st.message, "");
    store_status_free(&st);
    /* the status goes with its service */
    OK(store_service_delete(f->s, "shop", "web", E));
    assert_int_equal(store_status_get(f->s, "shop", "web", &st, &err), -ORCH_E_NOTFOUND);
}

static void test_open_refuses_newer_schema(void **state)
{
    struct fixture *f = *state;
    struct orch_error err = {0};
    assert_int_equal(store_open(f->dir, &f->s, &err), 0);
    store_close(f->s);
    f->s = NULL;
    char newer[64];
    snprintf(newer, sizeof(newer), "PRAGMA user_version = %d", STORE_SCHEMA_VERSION + 1);
    assert_int_equal(tst_raw_exec(f->dir, newer), SQLITE_OK);

    assert_int_equal(store_open(f->dir, &f->s, &err), -ORCH_E_ENV);
    assert_null(f->s);
    assert_non_null(strstr(err.msg, "upgrade orch"));
    assert_non_null(strstr(err.msg, f->dir));
    orch_error_clear(&err);
    assert_int_equal(store_open_readonly(f->dir, &f->s, &err), -ORCH_E_ENV);
    assert_non_null(strstr(err.msg, "upgrade orch"));
    /* Refusing must not have touched the file. */
    assert_int_equal(tst_raw_int(f->dir, "PRAGMA user_version"), STORE_SCHEMA_VERSION + 1);
}

static void test_open_refuses_foreign_database(void **state)
{
    struct fixture *f = *state;
    assert_int_equal(mkdir(f->dir, 0700), 0);
    assert_int_equal(tst_raw_exec(f->dir, "CREATE TABLE t (x); PRAGMA application_id = 42;"
                                          "PRAGMA user_version = 1;"),
                     SQLITE_OK);
    struct orch_error err = {0};
    assert_int_equal(store_open(f->dir, &f->s, &err), -ORCH_E_ENV);
    assert_non_null(strstr(err.msg, "not an orch state database"));
}

static void test_open_unusable_dir(void **state)
{
    struct fixture *f = *state;
    char *file = orch_xasprintf("%s/file", f->tmp);
    int fd = open(file, O_CREAT | O_WRONLY, 0600);
    assert_true(fd >= 0);
    close(fd);
    char *under_file = orch_xasprintf("%s/sub/state", file);
    char *db_is_dir = orch_xasprintf("%s/dbdir", f->tmp);
    char *db_dir = orch_xasprintf("%s/orch.db", db_is_dir);
    assert_int_equal(mkdir(db_is_dir, 0700), 0);
    assert_int_equal(mkdir(db_dir, 0700), 0);

    const struct {
        const char *dir;
        const char *msg_has;
    } cases[] = {
        {file, "Not a directory"},
        {under_file, "cannot create"},
        {db_is_dir, "orch.db"},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(cases); i++) {
        struct orch_error err = {0};
        struct store *s = NULL;
        assert_int_equal(store_open(cases[i].dir, &s, &err), -ORCH_E_ENV);
        assert_null(s);
        assert_non_null(strstr(err.msg, cases[i].dir));
        if (strstr(err.msg, cases[i].msg_has) == NULL)
            fail_msg("case %zu: '%s' lacks '%s'", i, err.msg, cases[i].msg_has);
    }
    struct orch_error err = {0};
    struct store *s = NULL;
    assert_int_equal(store_open("", &s, &err), -ORCH_E_ENV);

    /* Root writes anywhere, so the permission case only means something for other users. */
    if (geteuid() != 0) {
        char *ro = orch_xasprintf("%s/ro", f->tmp);
        assert_int_equal(mkdir(ro, 0500), 0);
        assert_int_equal(store_open(ro, &s, &err), -ORCH_E_ENV);
        assert_non_null(strstr(err.msg, "not writable"));
        free(ro);
    }
    free(db_dir);
    free(db_is_dir);
    free(under_file);
    free(file);
}

static void test_open_readonly(void **state)
{
    struct fixture *f = *state;
    struct orch_error err = {0};
    struct store *ro = NULL;
    /* No folder, then a folder without a database. */
    assert_int_equal(store_open_readonly(f->dir, &ro, &err), -ORCH_E_NOTFOUND);
    assert_int_equal(mkdir(f->dir, 0700), 0);
    assert_int_equal(store_open_readonly(f->dir, &ro, &err), -ORCH_E_NOTFOUND);
    assert_null(ro);
    /* Looking must not create the database. */
    char *path = orch_xasprintf("%s/orch.db", f->dir);
    assert_int_equal(access(path, F_OK), -1);

    assert_int_equal(store_open(f->dir, &f->s, &err), 0);
    put_app(f->s, "shop");
    assert_int_equal(store_open_readonly(f->dir, &ro, &err), 0);
    struct store_app *apps = NULL;
    size_t n = 0;
    assert_int_equal(store_apps_list(ro, &apps, &n, &err), 0);
    assert_int_equal(n, 1);
    store_apps_free(apps, n);
    /* Writes are refused with a store error naming the operation. */
    assert_int_equal(store_app_put(ro, "other", "", 1, &err), -ORCH_E_DB);
    assert_non_null(strstr(err.msg, "put app"));
    store_close(ro);
    free(path);
}

/* ---- apps ---- */

static void test_apps_crud(void **state)
{
    struct fixture *f = *state;
    struct store *s = f->s;
    struct orch_error err = {0};
    OK(store_app_put(s, "shop", "a.yaml", 100, E));
    OK(store_app_put(s, "blog", NULL, 200, E));
    OK(store_app_put(s, "shop", "b.yaml", 300, E));

    struct store_app *apps = NULL;
    size_t n = 0;
    OK(store_apps_list(s, &apps, &n, E));
    assert_int_equal(n, 2);
    assert_string_equal(apps[0].name, "blog");
    assert_string_equal(apps[0].spec_path, "");
    assert_string_equal(apps[1].name, "shop");
    assert_string_equal(apps[1].spec_path, "b.yaml");
    assert_int_equal(apps[1].created_ms, 100);
    assert_int_equal(apps[1].updated_ms, 300);
    store_apps_free(apps, n);

    OK(store_app_delete(s, "blog", E));
    assert_int_equal(store_app_delete(s, "blog", &err), -ORCH_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "blog"));
    OK(store_apps_list(s, &apps, &n, E));
    assert_int_equal(n, 1);
    store_apps_free(apps, n);
}

static void test_app_delete_cascades_but_keeps_events(void **state)
{
    struct fixture *f = *state;
    struct store *s = f->s;
    put_app(s, "shop");
    put_app(s, "blog");
    put_service(s, "shop", "web", 0, 1, 1);
    put_service(s, "shop", "db", 0, 1, 1);
    put_service(s, "blog", "web", 0, 1, 1);
    add_revision(s, "shop", "web", "img:1");
    add_revision(s, "blog", "web", "img:1");
    struct store_rollout ro = {.app = "shop", .service = "web", .to_revision = 1};
    OK(store_rollout_add(s, &ro, NULL, E));
    OK(store_event_add(s, "shop", "web", "applied", "x", 1, E));

    OK(store_app_delete(s, "shop", E));
    struct store_service *svcs = NULL;
    size_t n = 0;
    OK(store_services_list(s, NULL, &svcs, &n, E));
    assert_int_equal(n, 1);
    assert_string_equal(svcs[0].app, "blog");
    store_services_free(svcs, n);
    assert_int_equal(count_revisions(s, "shop", "web"), 0);
    assert_int_equal(count_revisions(s, "blog", "web"), 1);
    struct orch_error err = {0};
    struct store_rollout out;
    assert_int_equal(store_rollout_latest(s, "shop", "web", &out, &err), -ORCH_E_NOTFOUND);
    struct store_event *ev = NULL;
    OK(store_events_list(s, "shop", NULL, 0, &ev, &n, E));
    assert_int_equal(n, 1);
    store_events_free(ev, n);
    OK(store_integrity_check(s, E));
}

/* ---- services ---- */

static void test_services_crud(void **state)
{
    struct fixture *f = *state;
    struct store *s = f->s;
    struct orch_error err = {0};

    /* The app must exist; the error names the operation and the SQLite reason. */
    struct store_service orphan = {.app = "nope", .name = "web", .spec_json = "{}"};
    assert_int_equal(store_service_put(s, &orphan, &err), -ORCH_E_DB);
    assert_non_null(strstr(err.msg, "put service"));
    assert_non_null(strstr(err.msg, "FOREIGN KEY"));

    put_app(s, "shop");
    put_app(s, "blog");
    put_service(s, "shop", "web", 0, 3, 100);
    put_service(s, "shop", "api", 0, 2, 100);
    put_service(s, "blog", "web", 0, 1, 100);

    struct store_service got;
    assert_int_equal(store_service_get(s, "shop", "nope", &got, &err), -ORCH_E_NOTFOUND);
    assert_non_null(strstr(err.msg, "shop/nope"));
    OK(store_service_get(s, "shop", "web", &got, E));
    assert_string_equal(got.app, "shop");
    assert_string_equal(got.name, "web");
    assert_int_equal(got.replicas, 3);
    assert_int_equal(got.revision, 0);
    assert_string_equal(got.spec_json, "{\"image\":\"x\"}");
    store_service_free(&got);

    /* Replace: new values, created_ms of the first insert, and the revisions stay (an
     * INSERT OR REPLACE would have cascaded them away). */
    add_revision(s, "shop", "web", "img:1");
    put_service(s, "shop", "web", 1, 5, 900);
    OK(store_service_get(s, "shop", "web", &got, E));
    assert_int_equal(got.replicas, 5);
    assert_int_equal(got.revision, 1);
    assert_int_equal(got.created_ms, 100);
    assert_int_equal(got.updated_ms, 900);
    store_service_free(&got);
    assert_int_equal(count_revisions(s, "shop", "web"), 1);

    const struct {
        const char *app;
        const char *want[3];
        size_t n;
    } lists[] = {
        {NULL, {"blog/web", "shop/api", "shop/web"}, 3},
        {"shop", {"shop/api", "shop/web"}, 2},
        {"none", {NULL}, 0},
    };
    for (size_t i = 0; i < ORCH_ARRAY_LEN(lists); i++) {
        struct store_service *v = NULL;
        size_t n = 99;
        OK(store_services_list(s, lists[i].app, &v, &n, E));
        assert_int_equal(n, lists[i].n);
        for (size_t j = 0; j < n; j++) {
            char key[128];
            snprintf(key, sizeof(key), "%s/%s", v[j].app, v[j].name);
            assert_string_equal(key, lists[i].want[j]);
        }
        store_services_free(v, n);
    }

    /* Delete takes revisions and rollouts along, and only this service's. */
    struct store_rollout ro = {.app = "shop", .service = "web", .to_revision = 1};
    OK(store_rollout_add(s, &ro, NULL, E));
    add_revision(s, "shop", "api", "img:1");
    OK(store_service_delete(s, "shop", "web", E));
    assert_int_equal(store_service_get(s, "shop", "web", &got, &err), -ORCH_E_NOTFOUND);
    assert_int_equal(store_service_delete(s, "shop", "web", &err), -ORCH_E_NOTFOUND);
    assert_int_equal(count_revisions(s, "shop", "web"), 0);
    assert_int_equal(count_revisions(s, "shop", "api"), 1);
    struct store_rollout out;
    assert_int_equal(store_rollout_latest(s, "shop", "web", &out, &err), -ORCH_E_NOTFOUND);
    OK(store_integrity_check(s, E));
}

/* ---- revisions ---- */

static void test_revisions_numbering_and_fields(void **state)
{
    struct fixture *f = *state;
    struct store *s = f->s;
    struct orch_error err = {0};
    put_app(s, "shop");
    put_service(s, "shop", "web", 0, 1, 1);
    put_service(s, "shop", "api", 0, 1, 1);
    int64_t next = 0;
    OK(store_revision_next_number(s, "shop", "web", &next, E));
    assert_int_equal(next, 1);

    for (int64_t i = 1; i <= 4; i++)
        assert_int_equal(add_revision(s, "shop", "web", "img"), i);
    /* Per service: api starts at 1. */
    assert_int_equal(add_revision(s, "shop", "api", "img"), 1);
    OK(store_revision_next_number(s, "shop", "web", &next, E));
    assert_int_equal(next, 5);

    char hash[65];
    store_template_hash("{\"t\":1}", hash);
    struct store_revision r = {
        .app = "shop",
        .service = "web",
        .hash = hash,
        .template_json = "{\"t\":1}",
        .image = "img:5",
        .message = NULL, /* stored as "" */
        .created_ms = 77,
        .state = STORE_REV_ACTIVE,
        .was_healthy = true,
    };
    int64_t num = 0;
    OK(store_revision_add(s, &r, &num, E));
    assert_int_equal(num, 5);
    struct store_revision got;
    OK(store_revision_get(s, "shop", "web", 5, &got, E));
    assert_string_equal(got.app, "shop");
    assert_string_equal(got.service, "web");
    assert_int_equal(got.number, 5);
    assert_string_equal(got.hash, hash);
    assert_string_equal(got.template_json, "{\"t\":1}");
    assert_string_equal(got.image, "img:5");
    assert_string_equal(got.message, "");
    assert_int_equal(got.created_ms, 77);
    assert_int_equal(got.state, STORE_REV_ACTIVE);
    assert_true(got.was_healthy);
    store_revision_free(&got);
    assert_int_equal(store_revision_get(s, "shop", "web", 42, &got, &err), -ORCH_E_NOTFOUND);

    /* Newest first. */
    struct store_revision *v = NULL;
    size_t n = 0;
    OK(store_revisions_list(s, "shop", "web", &v, &n, E));
    assert_int_equal(n, 5);
    for (size_t i = 0; i < n; i++)
        assert_int_equal(v[i].number, 5 - (int64_t)i);
    store_revisions_free(v, n);

    /* State and was_healthy are the mutable part; the rest is refused by the schema. */
    OK(store_revision_set_state(s, "shop", "web", 2, STORE_REV_SUPERSEDED, true, E));
    OK(store_revision_get(s, "shop", "web", 2, &got, E));
    assert_int_equal(got.state, STORE_REV_SUPERSEDED);
    assert_true(got.was_healthy);
    store_revision_free(&got);
    OK(store_revision_set_state(s, "shop", "web", 2, STORE_REV_FAILED, false, E));
    OK(store_revision_get(s, "shop", "web", 2, &got, E));
    assert_int_equal(got.state, STORE_REV_FAILED);
    assert_false(got.was_healthy);
    store_revision_free(&got);
    assert_int_equal(store_revision_set_state(s, "shop", "web", 42, STORE_REV_ACTIVE, true, &err),
                     -ORCH_E_NOTFOUND);
    assert_int_not_equal(tst_raw_exec(f->dir, "UPDATE revisions SET image = 'evil' WHERE "
                                              "number = 2"),
                         SQLITE_OK);
    assert_int_equal(tst_raw_exec(f->dir, "UPDATE revisions SET state = 'active' WHERE "
                                          "number = 2"),
                     SQLITE_OK);

    /* A revision for a missing service fails and does not use up a number. */
    struct store_revision bad = {.app = "shop", .service = "ghost", .hash = "h"};
    assert_int_equal(store_revision_add(s, &bad, &num, &err), -ORCH_E_DB);
    assert_non_null(strstr(err.msg, "add revision"));
    OK(store_revision_next_number(s, "shop", "ghost", &next, E));
    assert_int_equal(next, 1);
}

static void test_revision_state_names(void **state)
{
    static const struct {
        int st;
        const char *name;
    } revs[] = {{STORE_REV_PENDING, "pending"},
                {STORE_REV_ACTIVE, "active"},
                {STORE_REV_SUPERSEDED, "superseded"},
                {STORE_REV_FAILED, "failed"},
                {99, "unknown"}};
    for (size_t i = 0; i < ORCH_ARRAY_LEN(revs); i++)
        assert_string_equal(store_revision_state_name(revs[i].st), revs[i].name);
    static const struct {
        int st;
        const char *name;
    } ros[] = {{STORE_ROLLOUT_PROGRESSING, "progressing"},
               {STORE_ROLLOUT_COMPLETE, "complete"},
               {STORE_ROLLOUT_FAILED, "failed"},
               {STORE_ROLLOUT_ROLLED_BACK, "rolled_back"},
               {99, "unknown"}};
    for (size_t i = 0; i < ORCH_ARRAY_LEN(ros); i++)
        assert_string_equal(store_rollout_state_name(ros[i].st), ros[i].name);
}

static void test_revisions_trim(void **state)
{
    struct fixture *f = *state;
    struct store *s = f->s;
    /* Revisions 1..6 exist before each case; the expected survivors, newest first. */
    static const struct {
        size_t keep;
        int64_t protect;
        int64_t want[7];
        size_t n;
    } cases[] = {
        {3, 6, {6, 5, 4}, 3},           /* protect among the kept: nothing extra */
        {3, 1, {6, 5, 4, 1}, 4},        /* an old protected one survives beyond keep */
        {0, 2, {2}, 1},                 /* keep none but the protected */
        {0, 0, {0}, 0},                 /* protect nothing: all go */
        {10, 0, {6, 5, 4, 3, 2, 1}, 6}, /* fewer than keep: nothing goes */
        {1, 99, {6}, 1},                /* protecting a missing number is harmless */
    };
    put_app(s, "shop");
    for (size_t c = 0; c < ORCH_ARRAY_LEN(cases); c++) {
        /* A fresh service each case; delete + put keeps counting, so offset the numbers. */
        put_service(s, "shop", "web", 0, 1, 1);
        int64_t base = 0;
        for (int i = 0; i < 6; i++) {
            int64_t num = add_revision(s, "shop", "web", "img");
            if (i == 0)
                base = num - 1;
        }
        assert_int_equal(base, (int64_t)c * 6); /* numbers continue across delete + re-apply */
        int64_t protect = cases[c].protect ? base + cases[c].protect : 0;
        OK(store_revisions_trim(s, "shop", "web", cases[c].keep, protect, E));
        struct store_revision *v = NULL;
        size_t n = 0;
        OK(store_revisions_list(s, "shop", "web", &v, &n, E));
        if (n != cases[c].n)
            fail_msg("case %zu: %zu survivors, want %zu", c, n, cases[c].n);
        for (size_t i = 0; i < n; i++)
            assert_int_equal(v[i].number, base + cases[c].want[i]);
        store_revisions_free(v, n);
        /* Trimming never frees numbers for reuse. */
        int64_t next = 0;
        OK(store_revision_next_number(s, "shop", "web", &next, E));
        assert_int_equal(next, base + 7);
        OK(store_service_delete(s, "shop", "web", E));
    }
}

static void test_revision_numbers_survive_trim_and_delete(void **state)
{
    struct fixture *f = *state;
    struct store *s = f->s;
    put_app(s, "shop");
    put_service(s, "shop", "web", 0, 1, 1);
    assert_int_equal(add_revision(s, "shop", "web", "a"), 1);
    assert_int_equal(add_revision(s, "shop", "web", "b"), 2);
    assert_int_equal(add_revision(s, "shop", "web", "c"), 3);
    /* Trim the newest away too (keep 0, protect 1): 3 is still never given out again. */
    OK(store_revisions_trim(s, "shop", "web", 0, 1, E));
    assert_int_equal(count_revisions(s, "shop", "web"), 1);
    assert_int_equal(add_revision(s, "shop", "web", "d"), 4);

    /* Deleted and applied again: the counter continues (our choice, unlike Kubernetes). */
    OK(store_service_delete(s, "shop", "web", E));
    put_service(s, "shop", "web", 0, 1, 1);
    assert_int_equal(add_revision(s, "shop", "web", "e"), 5);
    /* Even after the whole app went away. */
    OK(store_app_delete(s, "shop", E));
    put_app(s, "shop");
    put_service(s, "shop", "web", 0, 1, 1);
    assert_int_equal(add_revision(s, "shop", "web", "f"), 6);
    assert_int_equal(count_revisions(s, "shop", "web"), 1);
}

/* ---- rollouts ---- */

static void test_rollouts(void **state)
{
    struct fixture *f = *state;
    struct store *s = f->s;
    struct orch_error err = {0};
    put_app(s, "shop");
    put_service(s, "shop", "web", 0, 1, 1);
    put_service(s, "shop", "api", 0, 1, 1);
    struct store_rollout out;
    assert_int_equal(store_rollout_latest(s, "shop", "web", &out, &err), -ORCH_E_NOTFOUND);

    struct store_rollout r1 = {.app = "shop",
                               .service = "web",
                               .from_revision = 0,
                               .to_revision = 1,
                               .state = STORE_ROLLOUT_COMPLETE,
                               .message = "first",
                               .started_ms = 10,
                               .updated_ms = 11};
    struct store_rollout r2 = {.app = "shop",
                               .service = "web",
                               .from_revision = 1,
                               .to_revision = 2,
                               .state = STORE_ROLLOUT_PROGRESSING,
                               .message = NULL,
                               .started_ms = 20,
                               .updated_ms = 20};
    struct store_rollout other = {.app = "shop", .service = "api", .to_revision = 7};
    int64_t id1 = 0, id2 = 0, id3 = 0;
    OK(store_rollout_add(s, &r1, &id1, E));
    OK(store_rollout_add(s, &r2, &id2, E));
    OK(store_rollout_add(s, &other, &id3, E));
    assert_true(id1 < id2 && id2 < id3);

    OK(store_rollout_latest(s, "shop", "web", &out, E));
    assert_int_equal(out.id, id2);
    assert_string_equal(out.app, "shop");
    assert_string_equal(out.service, "web");
    assert_int_equal(out.from_revision, 1);
    assert_int_equal(out.to_revision, 2);
    assert_int_equal(out.state, STORE_ROLLOUT_PROGRESSING);
    assert_string_equal(out.message, "");
    assert_int_equal(out.started_ms, 20);
    store_rollout_free(&out);

    OK(store_rollout_set_state(s, id2, STORE_ROLLOUT_FAILED, "deadline exceeded", 30, E));
    OK(store_rollout_latest(s, "shop", "web", &out, E));
    assert_int_equal(out.state, STORE_ROLLOUT_FAILED);
    assert_string_equal(out.message, "deadline exceeded");
    assert_int_equal(out.updated_ms, 30);
    assert_int_equal(out.started_ms, 20);
    store_rollout_free(&out);
    /* NULL message keeps the old one. */
    OK(store_rollout_set_state(s, id2, STORE_ROLLOUT_ROLLED_BACK, NULL, 40, E));
    OK(store_rollout_latest(s, "shop", "web", &out, E));
    assert_int_equal(out.state, STORE_ROLLOUT_ROLLED_BACK);
    assert_string_equal(out.message, "deadline exceeded");
    assert_int_equal(out.updated_ms, 40);
    store_rollout_free(&out);
    assert_int_equal(store_rollout_set_state(s, 12345, STORE_ROLLOUT_COMPLETE, "", 1, &err),
                     -ORCH_E_NOTFOUND);

    /* The rollouts of a deleted service go, and their ids are not handed out again. */
    OK(store_service_delete(s, "shop", "api", E));
    put_service(s, "shop", "api", 0, 1, 1);
    int64_t id4 = 0;
    OK(store_rollout_add(s, &other, &id4, E));
    assert_true(id4 > id3);
    assert_int_equal(store_rollout_set_state(s, id3, STORE_ROLLOUT_COMPLETE, "", 1, &err),
                     -ORCH_E_NOTFOUND);
}

/* ---- events ---- */

static void test_events(void **state)
{
    struct fixture *f = *state;
    struct store *s = f->s;
    /* No foreign keys: events may name what no longer exists. */
    for (int i = 0; i < 10; i++) {
        char msg[16];
        snprintf(msg, sizeof(msg), "m%d", i);
        const char *svc = i % 3 == 0 ? "" : (i % 3 == 1 ? "web" : "api");
        OK(store_event_add(s, "shop", svc, "applied", msg, 100 + i, E));
    }
    OK(store_event_add(s, "blog", NULL, "deleted", NULL, 500, E));

    /* web got m1 m4 m7; api m2 m5 m8; app-wide m0 m3 m6 m9. */
    static const struct {
        const char *app;
        const char *service;
        size_t limit;
        const char *want[12];
        size_t n;
    } cases[] = {
        {"shop", "web", 0, {"m1", "m4", "m7"}, 3},
        {"shop", "web", 2, {"m4", "m7"}, 2},
        {"shop", "web", 1, {"m7"}, 1},
        {"shop", "", 0, {"m0", "m3", "m6", "m9"}, 4},
        {"shop", NULL, 4, {"m6", "m7", "m8", "m9"}, 4},
        {"shop", NULL, 0, {"m0", "m1", "m2", "m3", "m4", "m5", "m6", "m7", "m8", "m9"}, 10},
        {"blog", NULL, 5, {""}, 1},
        {NULL, NULL, 2, {"m9", ""}, 2},
        {"none", NULL, 0, {NULL}, 0},
    };
    for (size_t c = 0; c < ORCH_ARRAY_LEN(cases); c++) {
        struct store_event *v = NULL;
        size_t n = 99;
        OK(store_events_list(s, cases[c].app, cases[c].service, cases[c].limit, &v, &n, E));
        if (n != cases[c].n)
            fail_msg("case %zu: %zu events, want %zu", c, n, cases[c].n);
        for (size_t i = 0; i < n; i++) {
            assert_string_equal(v[i].message, cases[c].want[i]);
            if (i > 0)
                assert_true(v[i].id > v[i - 1].id);
            if (cases[c].app != NULL)
                assert_string_equal(v[i].app, cases[c].app);
        }
        store_events_free(v, n);
    }
    struct store_event *v = NULL;
    size_t n = 0;
    OK(store_events_list(s, "blog", NULL, 0, &v, &n, E));
    assert_int_equal(n, 1);
    assert_string_equal(v[0].service, "");
    assert_string_equal(v[0].kind, "deleted");
    assert_int_equal(v[0].time_ms, 500);
    store_events_free(v, n);

    /* the newest event of one of two kinds (the autoscaler's last decision) */
    OK(store_event_add(s, "shop", "web", "kept", "k1", 600, E));
    OK(store_event_add(s, "shop", "web", "scaled", "s1", 601, E));
    OK(store_event_add(s, "shop", "web", "applied", "a1", 602, E));
    struct store_event e;
    OK(store_event_latest(s, "shop", "web", "kept", "scaled", &e, E));
    assert_string_equal(e.message, "s1");
    assert_string_equal(e.kind, "scaled");
    assert_int_equal(e.time_ms, 601);
    store_event_free(&e);
    OK(store_event_latest(s, "shop", "web", "kept", NULL, &e, E));
    assert_string_equal(e.message, "k1");
    store_event_free(&e);
    struct orch_error err = {0};
    assert_int_equal(store_event_latest(s, "shop", "api", "kept", "scaled", &e, &err),
                     -ORCH_E_NOTFOUND);
}

/* ---- transactions ---- */

static void test_rollback_leaves_nothing(void **state)
{
    struct fixture *f = *state;
    struct store *s = f->s;
    struct orch_error err = {0};
    OK(store_begin(s, E));
    put_app(s, "shop");
    put_service(s, "shop", "web", 1, 2, 1);
    add_revision(s, "shop", "web", "img");
    struct store_rollout ro = {.app = "shop", .service = "web", .to_revision = 1};
    OK(store_rollout_add(s, &ro, NULL, E));
    OK(store_event_add(s, "shop", "web", "revision", "r1", 1, E));
    /* Nested begin is a caller bug, reported as such. */
    assert_int_equal(store_begin(s, &err), -ORCH_E_DB);
    store_rollback(s);
    store_rollback(s); /* outside a transaction: nothing */

    const char *tables[] = {"apps", "services", "revisions", "rollouts", "events", "revision_seq"};
    for (size_t i = 0; i < ORCH_ARRAY_LEN(tables); i++) {
        char sql[64];
        snprintf(sql, sizeof(sql), "SELECT count(*) FROM %s", tables[i]);
        if (tst_raw_int(f->dir, sql) != 0)
            fail_msg("%s not empty after rollback", tables[i]);
    }
    int64_t next = 0;
    OK(store_revision_next_number(s, "shop", "web", &next, E));
    assert_int_equal(next, 1);

    /* The same writes committed are all there, also for a second connection. */
    OK(store_begin(s, E));
    put_app(s, "shop");
    put_service(s, "shop", "web", 1, 2, 1);
    assert_int_equal(add_revision(s, "shop", "web", "img"), 1);
    /* A failing step inside the transaction undoes only itself. */
    struct store_revision bad = {.app = "shop", .service = "ghost", .hash = "h"};
    assert_int_equal(store_revision_add(s, &bad, NULL, &err), -ORCH_E_DB);
    OK(store_commit(s, E));
    assert_int_equal(tst_raw_int(f->dir, "SELECT count(*) FROM revisions"), 1);
    assert_int_equal(tst_raw_int(f->dir, "SELECT count(*) FROM services"), 1);
    assert_int_equal(tst_raw_int(f->dir, "SELECT count(*) FROM revision_seq"), 1);
    /* Commit with no transaction is an error, not a silent success. */
    assert_int_equal(store_commit(s, &err), -ORCH_E_DB);
    assert_non_null(strstr(err.msg, "commit"));
}

static void test_data_version(void **state)
{
    struct fixture *f = *state;
    struct orch_error err = {0};
    struct store *other = NULL;
    assert_int_equal(store_open(f->dir, &other, &err), 0);
    int64_t v0 = store_data_version(f->s);
    assert_true(v0 >= 0);
    /* Own commits do not move it; another connection's do. */
    put_app(f->s, "shop");
    assert_int_equal(store_data_version(f->s), v0);
    put_app(other, "blog");
    assert_int_not_equal(store_data_version(f->s), v0);
    store_close(other);
}

/* The daemon's view of instance health: replaced per service, listed per app or all, gone
 * with the service; the status row carries the last replacement. */
static void test_instance_health(void **state)
{
    struct fixture *f = *state;
    struct orch_error err = {0};
    put_app(f->s, "shop");
    put_app(f->s, "blog");
    put_service(f->s, "shop", "web", 1, 2, 1000);
    put_service(f->s, "shop", "db", 1, 1, 1000);
    put_service(f->s, "blog", "web", 1, 1, 1000);
    struct store_instance_health web[] = {
        {.id = "bbb", .health = "healthy", .observed_ms = 5},
        {.id = "aaa", .health = "starting", .observed_ms = 5},
    };
    OK(store_instance_health_set(f->s, "shop", "web", web, 2, E));
    struct store_instance_health db[] = {{.id = "ccc", .health = "unhealthy", .observed_ms = 6}};
    OK(store_instance_health_set(f->s, "shop", "db", db, 1, E));
    struct store_instance_health blog[] = {{.id = "ddd", .health = "none", .observed_ms = 7}};
    OK(store_instance_health_set(f->s, "blog", "web", blog, 1, E));

    struct store_instance_health *v = NULL;
    size_t n = 0;
    OK(store_instance_health_list(f->s, "shop", &v, &n, E));
    assert_int_equal(n, 3);
    assert_string_equal(v[0].service, "db"); /* ordered by service, then id */
    assert_string_equal(v[0].health, "unhealthy");
    assert_string_equal(v[1].id, "aaa");
    assert_string_equal(v[2].id, "bbb");
    assert_int_equal(v[2].observed_ms, 5);
    store_instance_health_free(v, n);
    OK(store_instance_health_list(f->s, NULL, &v, &n, E));
    assert_int_equal(n, 4);
    assert_string_equal(v[0].app, "blog");
    store_instance_health_free(v, n);

    /* a new view replaces the old one: instances not in it are dropped */
    struct store_instance_health web2[] = {{.id = "bbb", .health = "unhealthy", .observed_ms = 9}};
    OK(store_instance_health_set(f->s, "shop", "web", web2, 1, E));
    OK(store_instance_health_list(f->s, "shop", &v, &n, E));
    assert_int_equal(n, 2);
    assert_string_equal(v[1].id, "bbb");
    assert_string_equal(v[1].health, "unhealthy");
    store_instance_health_free(v, n);
    OK(store_instance_health_set(f->s, "shop", "web", NULL, 0, E));

    /* only the four verdicts; a service that does not exist is refused */
    struct store_instance_health bad[] = {{.id = "x", .health = "great", .observed_ms = 1}};
    assert_int_equal(store_instance_health_set(f->s, "shop", "web", bad, 1, &err), -ORCH_E_DB);
    orch_error_clear(&err);
    assert_int_equal(store_instance_health_set(f->s, "shop", "nope", db, 1, &err), -ORCH_E_DB);
    orch_error_clear(&err);
    /* nothing of the refused call was kept */
    OK(store_instance_health_list(f->s, "shop", &v, &n, E));
    assert_int_equal(n, 1);
    store_instance_health_free(v, n);

    /* the last replacement rides on the status row */
    struct store_status put = {.app = "shop",
                               .service = "db",
                               .observed_ms = 5,
                               .revision = 1,
                               .desired = 1,
                               .replaced = "unhealthy",
                               .replaced_ms = 1234};
    OK(store_status_put(f->s, &put, E));
    struct store_status st;
    OK(store_status_get(f->s, "shop", "db", &st, E));
    assert_string_equal(st.replaced, "unhealthy");
    assert_int_equal(st.replaced_ms, 1234);
    store_status_free(&st);
    /* a writer that knows of no replacement (a restarted daemon) keeps the recorded one */
    put.replaced = NULL;
    put.replaced_ms = 0;
    put.healthy = 1;
    OK(store_status_put(f->s, &put, E));
    OK(store_status_get(f->s, "shop", "db", &st, E));
    assert_int_equal(st.healthy, 1);
    assert_string_equal(st.replaced, "unhealthy");
    assert_int_equal(st.replaced_ms, 1234);
    store_status_free(&st);
    put.replaced = "exited";
    put.replaced_ms = 2000;
    OK(store_status_put(f->s, &put, E));
    OK(store_status_get(f->s, "shop", "db", &st, E));
    assert_string_equal(st.replaced, "exited");
    assert_int_equal(st.replaced_ms, 2000);
    store_status_free(&st);

    /* rows go with their service and app */
    OK(store_service_delete(f->s, "shop", "db", E));
    OK(store_instance_health_list(f->s, "shop", &v, &n, E));
    assert_int_equal(n, 0);
    store_instance_health_free(v, n);
    OK(store_app_delete(f->s, "blog", E));
    OK(store_instance_health_list(f->s, NULL, &v, &n, E));
    assert_int_equal(n, 0);
    store_instance_health_free(v, n);
}

/* A version-2 database keeps its status rows through migration 3, with no replacement. */
static void test_migrates_v2(void **state)
{
    struct fixture *f = *state;
    struct orch_error err = {0};
    assert_int_equal(store_open(f->dir, &f->s, &err), 0);
    put_app(f->s, "shop");
    put_service(f->s, "shop", "web", 1, 2, 1000);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(tst_raw_exec(f->dir,
                                  "DROP TABLE deletions; DROP TABLE instance_health;"
                                  "ALTER TABLE service_status DROP COLUMN replaced;"
                                  "ALTER TABLE service_status DROP COLUMN replaced_ms;"
                                  "INSERT INTO service_status (app, service, observed_ms, revision,"
                                  " desired, running, healthy, updated, converged, message)"
                                  " VALUES ('shop', 'web', 1, 1, 2, 2, 2, 2, 1, '');"
                                  "PRAGMA user_version = 2"),
                     SQLITE_OK);
    assert_int_equal(store_open(f->dir, &f->s, &err), 0);
    assert_int_equal(tst_raw_int(f->dir, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    struct store_status st;
    OK(store_status_get(f->s, "shop", "web", &st, E));
    assert_int_equal(st.healthy, 2);
    assert_string_equal(st.replaced, "");
    assert_int_equal(st.replaced_ms, 0);
    store_status_free(&st);
    OK(store_integrity_check(f->s, E));
}

/* Deletes in progress: recorded, listed, volumes only ever added, forgotten; a version-3
 * database gains the table through migration 4 and keeps its rows. */
static void test_deletions(void **state)
{
    struct fixture *f = *state;
    struct orch_error err = {0};
    assert_int_equal(store_open(f->dir, &f->s, &err), 0);
    put_app(f->s, "shop");
    put_service(f->s, "shop", "web", 1, 2, 1000);
    store_close(f->s);
    f->s = NULL;
    assert_int_equal(tst_raw_exec(f->dir, "DROP TABLE deletions; PRAGMA user_version = 3"),
                     SQLITE_OK);
    assert_int_equal(store_open(f->dir, &f->s, &err), 0);
    assert_int_equal(tst_raw_int(f->dir, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
    struct store_service row;
    OK(store_service_get(f->s, "shop", "web", &row, E));
    store_service_free(&row);

    struct store_deletion *v = NULL;
    size_t n = 0;
    OK(store_deletions_list(f->s, NULL, &v, &n, E));
    assert_int_equal(n, 0);
    store_deletions_free(v, n);
    OK(store_deletion_add(f->s, "shop", "web", false, 1000, E));
    OK(store_deletion_add(f->s, "shop", NULL, true, 1001, E));
    OK(store_deletion_add(f->s, "shop", "", false, 1002, E)); /* keeps volumes and the start */
    OK(store_deletion_add(f->s, "blog", "db", false, 1003, E));
    OK(store_deletions_list(f->s, "shop", &v, &n, E));
    assert_int_equal(n, 2);
    assert_string_equal(v[0].service, "");
    assert_true(v[0].volumes);
    assert_int_equal(v[0].started_ms, 1001);
    assert_string_equal(v[1].service, "web");
    assert_false(v[1].volumes);
    store_deletions_free(v, n);
    OK(store_deletion_remove(f->s, "shop", "web", E));
    OK(store_deletion_remove(f->s, "shop", "web", E)); /* gone already: fine */
    OK(store_deletion_remove(f->s, "shop", NULL, E));
    OK(store_deletions_list(f->s, NULL, &v, &n, E));
    assert_int_equal(n, 1);
    assert_string_equal(v[0].app, "blog");
    store_deletions_free(v, n);
    OK(store_integrity_check(f->s, E));
}

/* The daemon's lock of the state dir: one holder, visible to others with its pid, released
 * when the holder closes it (or dies). */
static void test_daemon_lock(void **state)
{
    struct fixture *f = *state;
    struct orch_error err = {0};
    pid_t pid = -1;
    assert_false(store_daemon_running(f->dir, &pid));
    assert_int_equal(pid, 0);
    int fd = -1;
    OK(store_daemon_lock(f->dir, &fd, E));
    assert_true(store_daemon_running(f->dir, &pid));
    assert_int_equal(pid, getpid());
    int fd2 = -1;
    assert_int_equal(store_daemon_lock(f->dir, &fd2, &err), -ORCH_E_LOCKED);
    assert_non_null(strstr(err.msg, "another orch daemon runs on"));
    close(fd);
    assert_false(store_daemon_running(f->dir, NULL));
    char *missing = orch_xasprintf("%s/nope/deeper", f->tmp);
    orch_error_clear(&err);
    assert_int_equal(store_daemon_lock(missing, &fd2, &err), -ORCH_E_ENV);
    free(missing);
}

/* ---- default dir ---- */

static void set_env(const char *name, const char *value)
{
    if (value == NULL)
        unsetenv(name);
    else
        setenv(name, value, 1);
}

static void test_default_dir(void **state)
{
    static const struct {
        const char *explicit_dir;
        const char *orch_state;
        const char *xdg;
        const char *home;
        uid_t uid;
        const char *want; /* NULL: no answer */
    } cases[] = {
        {"/x", "/env", "/xdg", "/home/u", 1000, "/x"},
        {"rel/dir", NULL, NULL, NULL, 0, "rel/dir"},
        {NULL, "/env", "/xdg", "/home/u", 1000, "/env"},
        {"", "/env", NULL, NULL, 0, "/env"},
        {NULL, NULL, "/xdg", "/home/u", 0, "/var/lib/orch"},
        {NULL, "", "/xdg", "/home/u", 0, "/var/lib/orch"},
        {NULL, NULL, "/xdg", "/home/u", 1000, "/xdg/orch"},
        {NULL, NULL, "relative", "/home/u", 1000, "/home/u/.local/state/orch"},
        {NULL, NULL, "", "/home/u", 1000, "/home/u/.local/state/orch"},
        {NULL, NULL, NULL, "/home/u", 1000, "/home/u/.local/state/orch"},
        /* No HOME and no passwd entry (an unassigned uid): nothing to offer. */
        {NULL, NULL, NULL, NULL, 3999999, NULL},
    };
    char *saved[3];
    const char *names[3] = {"ORCH_STATE", "XDG_STATE_HOME", "HOME"};
    for (size_t i = 0; i < 3; i++)
        saved[i] = orch_xstrdup(getenv(names[i]));
    for (size_t c = 0; c < ORCH_ARRAY_LEN(cases); c++) {
        set_env("ORCH_STATE", cases[c].orch_state);
        set_env("XDG_STATE_HOME", cases[c].xdg);
        set_env("HOME", cases[c].home);
        char *got = store_default_dir_for(cases[c].explicit_dir, cases[c].uid);
        if (cases[c].want == NULL) {
            if (got != NULL)
                fail_msg("case %zu: got %s, want NULL", c, got);
        } else if (got == NULL || strcmp(got, cases[c].want) != 0) {
            fail_msg("case %zu: got %s, want %s", c, got ? got : "NULL", cases[c].want);
        }
        free(got);
    }
    /* The public entry point uses the real euid. */
    set_env("ORCH_STATE", NULL);
    set_env("XDG_STATE_HOME", "/xdg");
    set_env("HOME", "/home/u");
    char *got = store_default_dir(NULL);
    assert_string_equal(got, geteuid() == 0 ? "/var/lib/orch" : "/xdg/orch");
    free(got);
    for (size_t i = 0; i < 3; i++) {
        set_env(names[i], saved[i]);
        free(saved[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_open_creates_and_reopens, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_open_through_symlink, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_open_migrates_empty_file, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_migrates_v1_and_status, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_deletions, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_newer_schema, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_open_refuses_foreign_database, tst_setup,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_open_unusable_dir, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_open_readonly, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_apps_crud, tst_setup_open, tst_teardown),
        cmocka_unit_test_setup_teardown(test_app_delete_cascades_but_keeps_events, tst_setup_open,
                                        tst_teardown),
        cmocka_unit_test_setup_teardown(test_services_crud, tst_setup_open, tst_teardown),
        cmocka_unit_test_setup_teardown(test_revisions_numbering_and_fields, tst_setup_open,
                                        tst_teardown),
        cmocka_unit_test(test_revision_state_names),
        cmocka_unit_test_setup_teardown(test_revisions_trim, tst_setup_open, tst_teardown),
        cmocka_unit_test_setup_teardown(test_revision_numbers_survive_trim_and_delete,
                                        tst_setup_open, tst_teardown),
        cmocka_unit_test_setup_teardown(test_rollouts, tst_setup_open, tst_teardown),
        cmocka_unit_test_setup_teardown(test_events, tst_setup_open, tst_teardown),
        cmocka_unit_test_setup_teardown(test_rollback_leaves_nothing, tst_setup_open, tst_teardown),
        cmocka_unit_test_setup_teardown(test_data_version, tst_setup_open, tst_teardown),
        cmocka_unit_test_setup_teardown(test_instance_health, tst_setup_open, tst_teardown),
        cmocka_unit_test_setup_teardown(test_migrates_v2, tst_setup, tst_teardown),
        cmocka_unit_test_setup_teardown(test_daemon_lock, tst_setup_open, tst_teardown),
        cmocka_unit_test(test_default_dir),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
