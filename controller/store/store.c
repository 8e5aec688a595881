/* The state store: apps, services, revisions, rollouts and events in one SQLite database (WAL,
 * synchronous=FULL) inside the state dir. It owns the schema and its migrations, the state dir's
 * files (orch.db, state-id) with their checks, backup and restore, and turns every SQLite
 * failure into an orch_error. It must not decide anything (no planning, no clock reads)
 * and must not build SQL from strings: every statement is a constant with bound parameters. */
#include "store.h"
#include "store_internal.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pwd.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

#define STORE_BUSY_DEFAULT_MS 5000
/* 'orch' in ASCII: marks the file as ours so a stray SQLite file is refused, not migrated. */
#define STORE_APPLICATION_ID 0x6f726368

struct store {
    sqlite3 *db;
    char *dir;
    char *path;
    int busy_ms;
    bool readonly;
};

/* ---- schema ---- */

/* migrations[i] upgrades a database from user_version i to i + 1. Each step runs in its own
 * BEGIN IMMEDIATE transaction and ends by setting user_version, so a crash mid-migration leaves
 * the previous version intact. Append steps; never edit a released one.
 *
 * Revision numbers live in revision_seq, which has no foreign key: deleting a service (or its
 * app) keeps its counter, so a service deleted and applied again continues at the next number
 * instead of restarting at 1 as Kubernetes does. Container labels carry the revision number, and
 * an orphan container of the old incarnation must never look like a revision of the new one. */
static const char *const migrations[] = {
    "CREATE TABLE apps ("
    "  name TEXT NOT NULL PRIMARY KEY,"
    "  spec_path TEXT NOT NULL DEFAULT '',"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL"
    ") WITHOUT ROWID;"
    "CREATE TABLE services ("
    "  app TEXT NOT NULL REFERENCES apps(name) ON DELETE CASCADE,"
    "  name TEXT NOT NULL,"
    "  revision INTEGER NOT NULL DEFAULT 0 CHECK (revision >= 0),"
    "  replicas INTEGER NOT NULL DEFAULT 0 CHECK (replicas >= 0),"
    "  spec_json TEXT NOT NULL DEFAULT '',"
    "  created_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (app, name)"
    ") WITHOUT ROWID;"
    "CREATE TABLE revision_seq ("
    "  app TEXT NOT NULL,"
    "  service TEXT NOT NULL,"
    "  last INTEGER NOT NULL,"
    "  PRIMARY KEY (app, service)"
    ") WITHOUT ROWID;"
    "CREATE TABLE revisions ("
    "  app TEXT NOT NULL,"
    "  service TEXT NOT NULL,"
    "  number INTEGER NOT NULL CHECK (number > 0),"
    "  hash TEXT NOT NULL,"
    "  template_json TEXT NOT NULL,"
    "  image TEXT NOT NULL,"
    "  message TEXT NOT NULL DEFAULT '',"
    "  created_ms INTEGER NOT NULL,"
    "  state TEXT NOT NULL CHECK (state IN ('pending', 'active', 'superseded', 'failed')),"
    "  was_healthy INTEGER NOT NULL DEFAULT 0 CHECK (was_healthy IN (0, 1)),"
    "  PRIMARY KEY (app, service, number),"
    "  FOREIGN KEY (app, service) REFERENCES services(app, name) ON DELETE CASCADE"
    ") WITHOUT ROWID;"
    /* The schema, not only the API, keeps revisions immutable: a template that changed after
     * the fact would make rollback targets lie. */
    "CREATE TRIGGER revisions_immutable"
    "  BEFORE UPDATE OF app, service, number, hash, template_json, image, message, created_ms"
    "  ON revisions"
    "  BEGIN SELECT RAISE(ABORT, 'revisions are immutable except state and was_healthy'); END;"
    /* AUTOINCREMENT: a daemon holding the id of a rollout whose service was deleted must not
     * update an unrelated newer rollout that reused the id. */
    "CREATE TABLE rollouts ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  app TEXT NOT NULL,"
    "  service TEXT NOT NULL,"
    "  from_revision INTEGER NOT NULL,"
    "  to_revision INTEGER NOT NULL,"
    "  state TEXT NOT NULL"
    "    CHECK (state IN ('progressing', 'complete', 'failed', 'rolled_back')),"
    "  message TEXT NOT NULL DEFAULT '',"
    "  started_ms INTEGER NOT NULL,"
    "  updated_ms INTEGER NOT NULL,"
    "  FOREIGN KEY (app, service) REFERENCES services(app, name) ON DELETE CASCADE"
    ");"
    "CREATE INDEX rollouts_by_service ON rollouts(app, service, id);"
    /* Events have no foreign key: the log outlives what it talks about ("deleted"). */
    "CREATE TABLE events ("
    "  id INTEGER PRIMARY KEY AUTOINCREMENT,"
    "  time_ms INTEGER NOT NULL,"
    "  app TEXT NOT NULL,"
    "  service TEXT NOT NULL DEFAULT '',"
    "  kind TEXT NOT NULL,"
    "  message TEXT NOT NULL DEFAULT ''"
    ");"
    "CREATE INDEX events_by_service ON events(app, service, id);"
    "PRAGMA application_id = 1869767528;"
    "PRAGMA user_version = 1;",
    /* 1 -> 2: what the daemon last observed of each service, so `apply --wait` and friends can
     * follow its work from another process. */
    "CREATE TABLE service_status ("
    "  app TEXT NOT NULL,"
    "  service TEXT NOT NULL,"
    "  observed_ms INTEGER NOT NULL,"
    "  revision INTEGER NOT NULL,"
    "  desired INTEGER NOT NULL,"
    "  running INTEGER NOT NULL,"
    "  healthy INTEGER NOT NULL,"
    "  updated INTEGER NOT NULL,"
    "  converged INTEGER NOT NULL CHECK (converged IN (0, 1)),"
    "  message TEXT NOT NULL DEFAULT '',"
    "  PRIMARY KEY (app, service),"
    "  FOREIGN KEY (app, service) REFERENCES services(app, name) ON DELETE CASCADE"
    ") WITHOUT ROWID;"
    /* A random identity of this state dir: its containers carry it (orch.state), so two state
     * dirs on one engine never take each other's containers for their own. */
    "CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL) WITHOUT ROWID;"
    "INSERT INTO meta (key, value) VALUES ('state_id', lower(hex(randomblob(8))));"
    "PRAGMA user_version = 2;",
    /* 2 -> 3: the daemon's view of each instance's health, and why it last replaced an
     * instance of a service, so `status` and `get` can show what the daemon sees instead of
     * probing once themselves. */
    "CREATE TABLE instance_health ("
    "  app TEXT NOT NULL,"
    "  service TEXT NOT NULL,"
    "  id TEXT NOT NULL,"
    "  health TEXT NOT NULL CHECK (health IN ('starting', 'healthy', 'unhealthy', 'none')),"
    "  observed_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (app, service, id),"
    "  FOREIGN KEY (app, service) REFERENCES services(app, name) ON DELETE CASCADE"
    ") WITHOUT ROWID;"
    "ALTER TABLE service_status ADD COLUMN replaced TEXT NOT NULL DEFAULT '';"
    "ALTER TABLE service_status ADD COLUMN replaced_ms INTEGER NOT NULL DEFAULT 0;"
    "PRAGMA user_version = 3;",
    /* 3 -> 4: deletes in progress. A delete forgets the services at once (as before) and
     * records here what is being deleted until its containers (and for a whole app, its network
     * and volumes) are gone, so a command killed meanwhile leaves it visible (`deleting`) and
     * the next command finishes it. No foreign key: the services are already gone. */
    "CREATE TABLE deletions ("
    "  app TEXT NOT NULL,"
    "  service TEXT NOT NULL DEFAULT '',"
    "  volumes INTEGER NOT NULL DEFAULT 0 CHECK (volumes IN (0, 1)),"
    "  started_ms INTEGER NOT NULL,"
    "  PRIMARY KEY (app, service)"
    ") WITHOUT ROWID;"
    "PRAGMA user_version = 4;",
};
_Static_assert(ORCH_ARRAY_LEN(migrations) == STORE_SCHEMA_VERSION,
               "one migration step per schema version");
_Static_assert(STORE_APPLICATION_ID == 1869767528, "the migration hard-codes the application id");

/* ---- statement helpers ---- */

static void stmt_finalizep(sqlite3_stmt **st)
{
    if (*st != NULL)
        sqlite3_finalize(*st);
}
#define _cleanup_stmt_ __attribute__((cleanup(stmt_finalizep)))

enum db_arg_type { DB_ARG_TEXT, DB_ARG_INT };
struct db_arg {
    enum db_arg_type type;
    const char *text;
    int64_t i;
};
/* Typed parameters as compound literals, so a call site reads like the statement's columns. */
#define ARG_TEXT(x) ((struct db_arg){.type = DB_ARG_TEXT, .text = (x)})
#define ARG_INT(x) ((struct db_arg){.type = DB_ARG_INT, .i = (int64_t)(x)})
#define DB_ARGS(...)                                                                               \
    (const struct db_arg[]){__VA_ARGS__}, ORCH_ARRAY_LEN(((const struct db_arg[]){__VA_ARGS__}))

static bool is_busy(int rc)
{
    return (rc & 0xff) == SQLITE_BUSY || (rc & 0xff) == SQLITE_LOCKED;
}

/* The one place SQLite errors become orch errors: busy past the timeout is ORCH_E_LOCKED (the
 * CLI reports "another orch is writing"), everything else ORCH_E_DB naming the operation. */
static int db_fail_rc(struct store *s, int rc, const char *op, struct orch_error *err)
{
    const char *msg = s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc);
    if (is_busy(rc))
        return orch_fail(err, ORCH_E_LOCKED, 0,
                         "%s: state dir %s is locked by another orch process (waited %d ms): %s",
                         op, s->dir, s->busy_ms, msg);
    return orch_fail(err, ORCH_E_DB, 0, "%s: %s", op, msg);
}

static int db_fail(struct store *s, const char *op, struct orch_error *err)
{
    return db_fail_rc(s, sqlite3_extended_errcode(s->db), op, err);
}

/* Prepares sql and binds args; NULL text binds as "" since every text column is NOT NULL and
 * the API treats NULL optional strings as empty. */
static int db_prepare(struct store *s, const char *op, const char *sql, const struct db_arg *args,
                      size_t nargs, sqlite3_stmt **out, struct orch_error *err)
{
    sqlite3_stmt *st = NULL;
    int rc = sqlite3_prepare_v2(s->db, sql, -1, &st, NULL);
    if (rc != SQLITE_OK)
        return db_fail_rc(s, rc, op, err);
    for (size_t i = 0; i < nargs; i++) {
        int idx = (int)i + 1;
        if (args[i].type == DB_ARG_TEXT)
            rc = sqlite3_bind_text(st, idx, args[i].text ? args[i].text : "", -1, SQLITE_STATIC);
        else
            rc = sqlite3_bind_int64(st, idx, args[i].i);
        if (rc != SQLITE_OK) {
            int r = db_fail_rc(s, rc, op, err);
            sqlite3_finalize(st);
            return r;
        }
    }
    *out = st;
    return 0;
}

/* Runs a statement that returns no rows; *changes (if not NULL) gets the rows it changed. */
static int db_exec(struct store *s, const char *op, const char *sql, const struct db_arg *args,
                   size_t nargs, int64_t *changes, struct orch_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc = db_prepare(s, op, sql, args, nargs, &st, err);
    if (rc < 0)
        return rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW)
        ;
    if (rc != SQLITE_DONE)
        return db_fail_rc(s, sqlite3_extended_errcode(s->db), op, err);
    if (changes != NULL)
        *changes = sqlite3_changes64(s->db);
    return 0;
}

/* Runs a statement expected to return at most one integer; *found says whether it did. */
static int db_query_int(struct store *s, const char *op, const char *sql, const struct db_arg *args,
                        size_t nargs, int64_t *out, bool *found, struct orch_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc = db_prepare(s, op, sql, args, nargs, &st, err);
    if (rc < 0)
        return rc;
    bool got = false;
    /* Step to the end even after the row: an INSERT ... RETURNING outside a transaction
     * commits only then, and a failed commit must be reported here, not lost in finalize. */
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!got)
            *out = sqlite3_column_int64(st, 0);
        got = true;
    }
    if (rc != SQLITE_DONE)
        return db_fail(s, op, err);
    if (found != NULL)
        *found = got;
    return 0;
}

static char *col_str(sqlite3_stmt *st, int col)
{
    const unsigned char *t = sqlite3_column_text(st, col);
    return orch_xstrdup(t != NULL ? (const char *)t : "");
}

/* Makes a group of statements atomic whether or not the caller opened a transaction: inside
 * one a savepoint (so a failure undoes only this group), outside one BEGIN IMMEDIATE. */
struct db_group {
    bool own_tx;
};

static int group_begin(struct store *s, struct db_group *g, const char *op, struct orch_error *err)
{
    g->own_tx = sqlite3_get_autocommit(s->db) != 0;
    return db_exec(s, op, g->own_tx ? "BEGIN IMMEDIATE" : "SAVEPOINT store_group", NULL, 0, NULL,
                   err);
}

static int group_end(struct store *s, struct db_group *g, int rc, const char *op,
                     struct orch_error *err)
{
    if (rc == 0) {
        rc = db_exec(s, op, g->own_tx ? "COMMIT" : "RELEASE store_group", NULL, 0, NULL, err);
        if (rc == 0)
            return 0;
    }
    /* Failure: undo this group only; the caller's own error in *err stays as it is. */
    if (g->own_tx) {
        if (sqlite3_get_autocommit(s->db) == 0)
            sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    } else {
        sqlite3_exec(s->db, "ROLLBACK TO store_group; RELEASE store_group", NULL, NULL, NULL);
    }
    return rc;
}

/* ---- the state dir ---- */

char *store_default_dir_for(const char *explicit_dir, uid_t euid)
{
    if (explicit_dir != NULL && explicit_dir[0] != '\0')
        return orch_xstrdup(explicit_dir);
    const char *env = getenv("ORCH_STATE");
    if (env != NULL && env[0] != '\0')
        return orch_xstrdup(env);
    if (euid == 0)
        return orch_xstrdup("/var/lib/orch");
    /* The XDG base-dir spec says a relative XDG_STATE_HOME is invalid and must be ignored. */
    const char *xdg = getenv("XDG_STATE_HOME");
    if (xdg != NULL && xdg[0] == '/')
        return orch_xasprintf("%s/orch", xdg);
    const char *home = getenv("HOME");
    if (home == NULL || home[0] == '\0') {
        struct passwd *pw = getpwuid(euid);
        home = pw != NULL ? pw->pw_dir : NULL;
    }
    if (home == NULL || home[0] == '\0')
        return NULL;
    return orch_xasprintf("%s/.local/state/orch", home);
}

char *store_default_dir(const char *explicit_dir)
{
    return store_default_dir_for(explicit_dir, geteuid());
}

/* mkdir -p with 0700 for every folder it creates: the state may hold image names and env
 * values, and the XDG spec asks for 0700 on the state home. Existing folders keep their mode. */
static int mkdir_p(const char *dir, struct orch_error *err)
{
    _cleanup_free_ char *p = orch_xstrdup(dir);
    size_t len = strlen(p);
    while (len > 1 && p[len - 1] == '/')
        p[--len] = '\0';
    for (char *c = p + 1;; c++) {
        bool last = *c == '\0';
        if (*c != '/' && !last)
            continue;
        *c = '\0';
        if (mkdir(p, 0700) < 0 && errno != EEXIST)
            return orch_fail(err, ORCH_E_ENV, errno, "state dir %s: cannot create %s", dir, p);
        if (last)
            break;
        *c = '/';
    }
    struct stat sb;
    if (stat(dir, &sb) < 0)
        return orch_fail(err, ORCH_E_ENV, errno, "state dir %s", dir);
    if (!S_ISDIR(sb.st_mode))
        return orch_fail(err, ORCH_E_ENV, ENOTDIR, "state dir %s", dir);
    /* SQLite creates the -wal and -shm files beside the database, so the folder itself must
     * be writable, not only orch.db. */
    if (access(dir, W_OK | X_OK) < 0) {
        if (errno == EROFS)
            return orch_fail(err, ORCH_E_ENV, 0,
                             "state dir %s is on a read-only file system: commands that change "
                             "the state cannot run (get, status and rollout history still work)",
                             dir);
        return orch_fail(err, ORCH_E_ENV, errno, "state dir %s is not writable", dir);
    }
    return 0;
}

/* The state holds image names, env values and, later, token hashes: say so once per process
 * when the folder (or the database) is open to the group or others. A warning, not a refusal:
 * the operator may have chosen it. */
static void warn_open_mode(const char *dir, const char *db_path)
{
    static bool warned;
    struct stat sb;
    if (warned)
        return;
    const char *what = NULL;
    mode_t mode = 0;
    if (stat(dir, &sb) == 0 && (sb.st_mode & 077) != 0) {
        what = dir;
        mode = sb.st_mode & 07777;
    } else if (stat(db_path, &sb) == 0 && (sb.st_mode & 077) != 0) {
        what = db_path;
        mode = sb.st_mode & 07777;
    }
    if (what == NULL)
        return;
    warned = true;
    orch_log(ORCH_LOG_WARN,
             "%s is accessible to its group or others (mode %04o); the state holds image names, "
             "env values and history: chmod go-rwx %s",
             what, (unsigned)mode, what);
}

/* ---- the state id file ---- */

bool store_state_id_valid(const char *id)
{
    if (id == NULL || strlen(id) != 16)
        return false;
    for (const char *c = id; *c; c++)
        if (!((*c >= '0' && *c <= '9') || (*c >= 'a' && *c <= 'f')))
            return false;
    return true;
}

int store_dir_state_id(const char *state_dir, char **out, struct orch_error *err)
{
    *out = NULL;
    _cleanup_free_ char *path = orch_xasprintf("%s/%s", state_dir, STORE_ID_FILE);
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        if (errno == ENOENT)
            return 0;
        return orch_fail(err, ORCH_E_ENV, errno, "cannot read %s", path);
    }
    char buf[64] = {0};
    ssize_t n = read(fd, buf, sizeof(buf) - 1);
    int e = errno;
    close(fd);
    if (n < 0)
        return orch_fail(err, ORCH_E_ENV, e, "cannot read %s", path);
    buf[n] = '\0';
    if (n > 0 && buf[n - 1] == '\n')
        buf[n - 1] = '\0';
    if (!store_state_id_valid(buf))
        return orch_fail(err, ORCH_E_ENV, 0,
                         "%s does not hold a state id (16 hex digits); it was edited or damaged: "
                         "write the id of this state dir's containers (their orch.state label) "
                         "into it",
                         path);
    *out = orch_xstrdup(buf);
    return 0;
}

/* Writes STATE/state-id atomically: a new 0600 file, fsync, rename over, fsync the folder, so
 * a crash leaves the old content or the new, never a torn one. */
static int write_id_file(const char *state_dir, const char *id, struct orch_error *err)
{
    _cleanup_free_ char *path = orch_xasprintf("%s/%s", state_dir, STORE_ID_FILE);
    _cleanup_free_ char *tmp = orch_xasprintf("%s.tmp-%ld", path, (long)getpid());
    unlink(tmp);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0)
        return orch_fail(err, ORCH_E_ENV, errno, "cannot write %s", tmp);
    _cleanup_free_ char *line = orch_xasprintf("%s\n", id);
    size_t len = strlen(line);
    bool ok = write(fd, line, len) == (ssize_t)len && fsync(fd) == 0;
    int e = errno;
    if (close(fd) < 0 && ok) {
        ok = false;
        e = errno;
    }
    if (!ok || rename(tmp, path) < 0) {
        if (ok)
            e = errno;
        unlink(tmp);
        return orch_fail(err, ORCH_E_ENV, e, "cannot write %s", path);
    }
    int dfd = open(state_dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

/* The refusal of a state dir whose database is lost: what happened and the three ways back. */
static int state_lost(const char *dir, const char *id, const char *what, struct orch_error *err)
{
    return orch_fail(err, ORCH_E_ENV, 0,
                     "state dir %s belongs to state id %s (%s), but %s; nothing was changed. "
                     "Restore a backup: `orch state restore FILE`; or keep managing the "
                     "containers labelled orch.state=%s with an empty state: `orch state init "
                     "--id %s`, then apply each app's spec; or start over with a new identity "
                     "(those containers are left alone): `orch state init --new`",
                     dir, id, STORE_ID_FILE, what, id, id);
}

/* ---- open / close ---- */

static struct store *store_new(const char *dir, bool readonly)
{
    struct store *s = orch_xcalloc(1, sizeof(*s));
    s->dir = orch_xstrdup(dir);
    s->path = orch_xasprintf("%s/%s", dir, STORE_DB_NAME);
    s->busy_ms = STORE_BUSY_DEFAULT_MS;
    s->readonly = readonly;
    return s;
}

void store_close(struct store *s)
{
    if (s == NULL)
        return;
    /* Closing rolls back an open transaction; the last connection also checkpoints the WAL. */
    if (s->db != NULL)
        sqlite3_close_v2(s->db);
    free(s->path);
    free(s->dir);
    free(s);
}

const char *store_dir(const struct store *s)
{
    return s->dir;
}

void store_set_busy_timeout(struct store *s, int ms)
{
    s->busy_ms = ms < 0 ? 0 : ms;
    sqlite3_busy_timeout(s->db, s->busy_ms);
}

/* Opens the file (or the URI, for the read-only fallbacks); nothing is read yet. Failures here
 * mean the file or the folder is unusable: ORCH_E_ENV with the path. */
static int store_connect(struct store *s, int flags, const char *uri, struct orch_error *err)
{
    int rc = sqlite3_open_v2(uri != NULL ? uri : s->path, &s->db,
                             flags | (uri != NULL ? SQLITE_OPEN_URI : 0), NULL);
    if (rc != SQLITE_OK) {
        int r = orch_fail(err, ORCH_E_ENV, 0, "state db %s: %s", s->path,
                          s->db != NULL ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
        sqlite3_close_v2(s->db);
        s->db = NULL;
        return r;
    }
    sqlite3_extended_result_codes(s->db, 1);
    sqlite3_busy_timeout(s->db, s->busy_ms);
    return 0;
}

static void store_disconnect(struct store *s)
{
    if (s->db != NULL)
        sqlite3_close_v2(s->db);
    s->db = NULL;
}

/* Applies the per-connection settings. foreign_keys and synchronous are per connection and must
 * be set outside a transaction; journal_mode=WAL is persistent in the file, so read-only
 * connections just inherit it (and so write nothing). */
static int store_settings(struct store *s, struct orch_error *err)
{
    static const char *const rw_pragmas[] = {
        "PRAGMA journal_mode = WAL",
        "PRAGMA synchronous = FULL",
        "PRAGMA foreign_keys = ON",
    };
    static const char *const ro_pragmas[] = {
        "PRAGMA foreign_keys = ON",
    };
    const char *const *pragmas = s->readonly ? ro_pragmas : rw_pragmas;
    size_t n = s->readonly ? ORCH_ARRAY_LEN(ro_pragmas) : ORCH_ARRAY_LEN(rw_pragmas);
    for (size_t i = 0; i < n; i++) {
        _cleanup_stmt_ sqlite3_stmt *st = NULL;
        int rc = sqlite3_prepare_v2(s->db, pragmas[i], -1, &st, NULL);
        if (rc == SQLITE_OK) {
            while ((rc = sqlite3_step(st)) == SQLITE_ROW)
                if (i == 0 && !s->readonly) {
                    const unsigned char *mode = sqlite3_column_text(st, 0);
                    if (mode == NULL || strcmp((const char *)mode, "wal") != 0)
                        return orch_fail(err, ORCH_E_ENV, 0,
                                         "state db %s: cannot switch to WAL mode (got %s)", s->path,
                                         mode ? (const char *)mode : "nothing");
                }
            if (rc == SQLITE_DONE)
                rc = SQLITE_OK;
        }
        if (rc != SQLITE_OK) {
            rc = sqlite3_extended_errcode(s->db);
            if (is_busy(rc))
                return db_fail_rc(s, rc, "open", err);
            return orch_fail(err, ORCH_E_ENV, 0, "state db %s: %s", s->path, sqlite3_errmsg(s->db));
        }
    }
    return 0;
}

static int read_pragma_int(struct store *s, const char *sql, int64_t *out, struct orch_error *err)
{
    return db_query_int(s, "read schema version", sql, NULL, 0, out, NULL, err);
}

/* Checks the versions of an opened file: *version gets its user_version. */
static int check_version(struct store *s, int64_t *version, struct orch_error *err)
{
    int64_t v = 0, app_id = 0;
    int rc = read_pragma_int(s, "PRAGMA user_version", &v, err);
    if (rc == 0)
        rc = read_pragma_int(s, "PRAGMA application_id", &app_id, err);
    if (rc < 0) {
        if (err != NULL && err->code == ORCH_E_DB)
            err->code = ORCH_E_ENV;
        return orch_wrap(err, "state db %s", s->path);
    }
    if (app_id != 0 && app_id != STORE_APPLICATION_ID)
        return orch_fail(err, ORCH_E_ENV, 0, "state db %s is not an orch state database", s->path);
    if (v > STORE_SCHEMA_VERSION)
        return orch_fail(err, ORCH_E_ENV, 0,
                         "state db %s has schema version %lld, newer than this orch supports "
                         "(%d): upgrade orch",
                         s->path, (long long)v, STORE_SCHEMA_VERSION);
    *version = v;
    return 0;
}

static int migrate(struct store *s, struct orch_error *err)
{
    int64_t v = 0;
    int rc = check_version(s, &v, err);
    while (rc == 0 && v < STORE_SCHEMA_VERSION) {
        /* Another process may be migrating too: take the write lock, then look again. */
        rc = db_exec(s, "migrate", "BEGIN IMMEDIATE", NULL, 0, NULL, err);
        if (rc < 0)
            break;
        rc = check_version(s, &v, err);
        if (rc == 0 && v < STORE_SCHEMA_VERSION) {
            if (sqlite3_exec(s->db, migrations[v], NULL, NULL, NULL) != SQLITE_OK) {
                rc = db_fail(s, "migrate", err);
                orch_wrap(err, "state db %s: schema step %lld -> %lld", s->path, (long long)v,
                          (long long)v + 1);
            }
        }
        if (rc == 0)
            rc = db_exec(s, "migrate", "COMMIT", NULL, 0, NULL, err);
        if (rc < 0) {
            if (sqlite3_get_autocommit(s->db) == 0)
                sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
            break;
        }
        rc = check_version(s, &v, err);
    }
    return rc;
}

/* The state id the database carries (meta), or NULL with *err filled. */
static char *db_state_id(struct store *s, struct orch_error *err);

/* A database whose id differs from STATE/state-id is another state's: refuse it. */
static int check_state_id(struct store *s, const char *want, struct orch_error *err)
{
    _cleanup_free_ char *have = db_state_id(s, err);
    if (have == NULL)
        return orch_wrap(err, "state db %s", s->path);
    if (strcmp(have, want) == 0)
        return 0;
    _cleanup_free_ char *what = orch_xasprintf(
        "its database %s carries state id %s (another state dir's database, or a replaced one)",
        s->path, have);
    return state_lost(s->dir, want, what, err);
}

/* Creates orch.db 0600 before SQLite does (it would use 0644 under the usual umask); SQLite
 * gives the -wal and -shm files the mode of the database. */
static int create_db_file(const char *path, struct orch_error *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0 && errno != EEXIST)
        return orch_fail(err, ORCH_E_ENV, errno, "cannot create state db %s", path);
    if (fd >= 0)
        close(fd);
    return 0;
}

int store_open(const char *state_dir, struct store **out, struct orch_error *err)
{
    if (state_dir == NULL || state_dir[0] == '\0')
        return orch_fail(err, ORCH_E_ENV, 0, "no state dir: pass --state or set ORCH_STATE");
    int rc = mkdir_p(state_dir, err);
    if (rc < 0)
        return rc;
    _cleanup_free_ char *id = NULL;
    rc = store_dir_state_id(state_dir, &id, err);
    if (rc < 0)
        return rc;
    struct store *s = store_new(state_dir, false);
    warn_open_mode(state_dir, s->path);
    struct stat sb;
    if (id != NULL && stat(s->path, &sb) < 0) {
        if (errno == ENOENT) {
            _cleanup_free_ char *what = orch_xasprintf("its database %s is missing", s->path);
            rc = state_lost(state_dir, id, what, err);
        } else {
            rc = orch_fail(err, ORCH_E_ENV, errno, "state db %s", s->path);
        }
    } else if (id == NULL) {
        rc = create_db_file(s->path, err);
    }
    if (rc == 0)
        rc = store_connect(s, SQLITE_OPEN_READWRITE, NULL, err);
    /* Look before the settings: switching to WAL writes to the file, and a refused file must
     * stay as the operator left it. */
    int64_t v = 0;
    if (rc == 0 && id != NULL)
        rc = check_version(s, &v, err);
    if (rc == 0 && id != NULL && v == 0) {
        _cleanup_free_ char *what = orch_xasprintf("its database %s is empty", s->path);
        rc = state_lost(state_dir, id, what, err);
    }
    if (rc == 0)
        rc = store_settings(s, err);
    if (rc == 0)
        rc = migrate(s, err);
    if (rc == 0 && id != NULL)
        rc = check_state_id(s, id, err);
    if (rc == 0 && id == NULL) {
        /* A new state dir, or one from an orch that kept no id file: record the id now that
         * the database carrying it has committed. */
        _cleanup_free_ char *have = db_state_id(s, err);
        rc = have != NULL ? write_id_file(state_dir, have, err) : orch_wrap(err, "state db");
    }
    if (rc < 0) {
        /* SQLite reports a full disk met while growing the -shm as a plain I/O error. */
        struct statvfs vfs;
        if (err != NULL && statvfs(state_dir, &vfs) == 0 &&
            (uint64_t)vfs.f_bavail * vfs.f_frsize < 64 * 1024)
            orch_wrap(err,
                      "the file system of state dir %s is full (get, status and rollout "
                      "history still work; free some space and retry)",
                      state_dir);
        store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

static bool io_failure(int rc)
{
    switch (rc & 0xff) {
    case SQLITE_IOERR:
    case SQLITE_FULL:
    case SQLITE_CANTOPEN:
    case SQLITE_READONLY:
    case SQLITE_PERM:
        return true;
    default:
        return false;
    }
}

/* "file:" URI of path with the bytes SQLite's URI parser treats specially escaped. */
static char *file_uri(const char *path, const char *query)
{
    struct orch_buf b = {0};
    orch_buf_puts(&b, "file:");
    for (const unsigned char *c = (const unsigned char *)path; *c; c++) {
        if (*c == '%' || *c == '?' || *c == '#' || *c <= ' ' || *c >= 0x7f)
            orch_buf_printf(&b, "%%%02X", *c);
        else
            orch_buf_putc(&b, (char)*c);
    }
    orch_buf_printf(&b, "?%s", query);
    return orch_buf_steal(&b);
}

/* Connects read-only and reads the versions. A WAL database normally needs its -shm file
 * written even by readers, which fails on a full disk ("disk I/O error") or a read-only file
 * system. Then, when no -wal holds frames, the database file alone is the whole state and is
 * read as immutable (no locks, no -shm); when one does and a -shm exists, the -shm is used
 * read-only (SQLite reads the WAL into private memory when it cannot trust it). */
static int connect_readonly(struct store *s, int64_t *version, struct orch_error *err)
{
    int rc = store_connect(s, SQLITE_OPEN_READONLY, NULL, err);
    if (rc == 0)
        rc = store_settings(s, err);
    if (rc == 0)
        rc = check_version(s, version, err);
    if (rc == 0 || s->db == NULL || !io_failure(sqlite3_extended_errcode(s->db)))
        return rc;
    struct orch_error first = *err;
    store_disconnect(s);
    _cleanup_free_ char *wal = orch_xasprintf("%s-wal", s->path);
    _cleanup_free_ char *shm = orch_xasprintf("%s-shm", s->path);
    struct stat sb;
    bool frames = stat(wal, &sb) == 0 && sb.st_size > 0;
    bool have_shm = stat(shm, &sb) == 0;
    if (frames && !have_shm) {
        *err = first;
        return -first.code;
    }
    _cleanup_free_ char *uri =
        file_uri(s->path, frames ? "mode=ro&readonly_shm=1" : "mode=ro&immutable=1");
    orch_error_clear(err);
    rc = store_connect(s, SQLITE_OPEN_READONLY, uri, err);
    if (rc == 0)
        rc = store_settings(s, err);
    if (rc == 0)
        rc = check_version(s, version, err);
    if (rc < 0) {
        store_disconnect(s);
        *err = first;
        return -first.code;
    }
    return 0;
}

int store_open_readonly(const char *state_dir, struct store **out, struct orch_error *err)
{
    if (state_dir == NULL || state_dir[0] == '\0')
        return orch_fail(err, ORCH_E_ENV, 0, "no state dir: pass --state or set ORCH_STATE");
    struct stat sb;
    if (stat(state_dir, &sb) < 0) {
        if (errno == ENOENT)
            return orch_fail(err, ORCH_E_NOTFOUND, 0, "no state in %s yet", state_dir);
        return orch_fail(err, ORCH_E_ENV, errno, "state dir %s", state_dir);
    }
    if (!S_ISDIR(sb.st_mode))
        return orch_fail(err, ORCH_E_ENV, 0, "state dir %s is not a directory", state_dir);
    _cleanup_free_ char *id = NULL;
    int rc = store_dir_state_id(state_dir, &id, err);
    if (rc < 0)
        return rc;
    struct store *s = store_new(state_dir, true);
    warn_open_mode(state_dir, s->path);
    if (stat(s->path, &sb) < 0) {
        if (errno == ENOENT && id != NULL) {
            _cleanup_free_ char *what = orch_xasprintf("its database %s is missing", s->path);
            rc = state_lost(state_dir, id, what, err);
        } else if (errno == ENOENT) {
            rc = orch_fail(err, ORCH_E_NOTFOUND, 0, "no state in %s yet", state_dir);
        } else {
            rc = orch_fail(err, ORCH_E_ENV, errno, "state db %s", s->path);
        }
    }
    int64_t v = 0;
    if (rc == 0)
        rc = connect_readonly(s, &v, err);
    /* A file whose first migration never committed holds nothing: the same as no file, unless
     * the state dir was used before. */
    if (rc == 0 && v == 0 && id != NULL) {
        _cleanup_free_ char *what = orch_xasprintf("its database %s is empty", s->path);
        rc = state_lost(state_dir, id, what, err);
    } else if (rc == 0 && v == 0) {
        rc = orch_fail(err, ORCH_E_NOTFOUND, 0, "no state in %s yet", state_dir);
    } else if (rc == 0 && v < STORE_SCHEMA_VERSION) {
        rc = orch_fail(err, ORCH_E_ENV, 0,
                       "state db %s has the older schema version %lld: run a command that "
                       "writes (such as orch apply) to upgrade it",
                       s->path, (long long)v);
    }
    if (rc == 0 && id != NULL)
        rc = check_state_id(s, id, err);
    if (rc < 0) {
        store_close(s);
        return rc;
    }
    *out = s;
    return 0;
}

/* ---- transactions ---- */

int store_begin(struct store *s, struct orch_error *err)
{
    /* IMMEDIATE takes the write lock now: two writers queue on the busy timeout instead of
     * both reading and then failing to upgrade (a deadlock SQLite resolves with SQLITE_BUSY). */
    return db_exec(s, "begin transaction", "BEGIN IMMEDIATE", NULL, 0, NULL, err);
}

int store_commit(struct store *s, struct orch_error *err)
{
    int rc = db_exec(s, "commit", "COMMIT", NULL, 0, NULL, err);
    if (rc < 0 && sqlite3_get_autocommit(s->db) == 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
    return rc;
}

void store_rollback(struct store *s)
{
    if (s != NULL && s->db != NULL && sqlite3_get_autocommit(s->db) == 0)
        sqlite3_exec(s->db, "ROLLBACK", NULL, NULL, NULL);
}

int64_t store_data_version(struct store *s)
{
    int64_t v = -1;
    if (db_query_int(s, "data_version", "PRAGMA data_version", NULL, 0, &v, NULL, NULL) < 0)
        return -1;
    return v;
}

int store_integrity_check(struct store *s, struct orch_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc = db_prepare(s, "integrity check", "PRAGMA integrity_check", NULL, 0, &st, err);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc != SQLITE_ROW)
        return db_fail(s, "integrity check", err);
    const unsigned char *first = sqlite3_column_text(st, 0);
    if (first == NULL || strcmp((const char *)first, "ok") != 0)
        return orch_fail(err, ORCH_E_DB, 0, "integrity check of %s: %s", s->path,
                         first ? (const char *)first : "no answer");
    /* integrity_check does not look at foreign keys. */
    _cleanup_stmt_ sqlite3_stmt *fk = NULL;
    rc = db_prepare(s, "foreign key check", "PRAGMA foreign_key_check", NULL, 0, &fk, err);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(fk);
    if (rc == SQLITE_ROW)
        return orch_fail(err, ORCH_E_DB, 0,
                         "integrity check of %s: a row of %s breaks its foreign key", s->path,
                         (const char *)sqlite3_column_text(fk, 0));
    if (rc != SQLITE_DONE)
        return db_fail(s, "foreign key check", err);
    return 0;
}

/* ---- apps ---- */

int store_app_put(struct store *s, const char *name, const char *spec_path, int64_t now_ms,
                  struct orch_error *err)
{
    return db_exec(
        s, "put app",
        "INSERT INTO apps (name, spec_path, created_ms, updated_ms) VALUES (?1, ?2, ?3, ?3)"
        " ON CONFLICT (name) DO UPDATE SET spec_path = ?2, updated_ms = ?3",
        DB_ARGS(ARG_TEXT(name), ARG_TEXT(spec_path), ARG_INT(now_ms)), NULL, err);
}

int store_app_delete(struct store *s, const char *name, struct orch_error *err)
{
    int64_t changes = 0;
    int rc = db_exec(s, "delete app", "DELETE FROM apps WHERE name = ?1", DB_ARGS(ARG_TEXT(name)),
                     &changes, err);
    if (rc == 0 && changes == 0)
        return orch_fail(err, ORCH_E_NOTFOUND, 0, "app %s not found", name);
    return rc;
}

int store_apps_list(struct store *s, struct store_app **out, size_t *n, struct orch_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc = db_prepare(s, "list apps",
                        "SELECT name, spec_path, created_ms, updated_ms FROM apps ORDER BY name",
                        NULL, 0, &st, err);
    if (rc < 0)
        return rc;
    struct store_app *v = NULL;
    size_t len = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        v = orch_xrealloc(v, (len + 1) * sizeof(*v));
        v[len++] = (struct store_app){
            .name = col_str(st, 0),
            .spec_path = col_str(st, 1),
            .created_ms = sqlite3_column_int64(st, 2),
            .updated_ms = sqlite3_column_int64(st, 3),
        };
    }
    if (rc != SQLITE_DONE) {
        store_apps_free(v, len);
        return db_fail(s, "list apps", err);
    }
    *out = v;
    *n = len;
    return 0;
}

void store_apps_free(struct store_app *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].name);
        free(v[i].spec_path);
    }
    free(v);
}

/* ---- services ---- */

#define SERVICE_COLUMNS "app, name, revision, replicas, spec_json, created_ms, updated_ms"

static void service_row(sqlite3_stmt *st, struct store_service *out)
{
    *out = (struct store_service){
        .app = col_str(st, 0),
        .name = col_str(st, 1),
        .revision = sqlite3_column_int64(st, 2),
        .replicas = sqlite3_column_int(st, 3),
        .spec_json = col_str(st, 4),
        .created_ms = sqlite3_column_int64(st, 5),
        .updated_ms = sqlite3_column_int64(st, 6),
    };
}

int store_service_put(struct store *s, const struct store_service *svc, struct orch_error *err)
{
    /* An upsert, not INSERT OR REPLACE: REPLACE deletes the old row first, which would fire the
     * ON DELETE CASCADE and take the service's revisions and rollouts with it. */
    return db_exec(s, "put service",
                   "INSERT INTO services (" SERVICE_COLUMNS ") VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)"
                   " ON CONFLICT (app, name) DO UPDATE SET revision = ?3, replicas = ?4,"
                   " spec_json = ?5, updated_ms = ?7",
                   DB_ARGS(ARG_TEXT(svc->app), ARG_TEXT(svc->name), ARG_INT(svc->revision),
                           ARG_INT(svc->replicas), ARG_TEXT(svc->spec_json),
                           ARG_INT(svc->created_ms), ARG_INT(svc->updated_ms)),
                   NULL, err);
}

int store_service_get(struct store *s, const char *app, const char *name, struct store_service *out,
                      struct orch_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc = db_prepare(s, "get service",
                        "SELECT " SERVICE_COLUMNS " FROM services WHERE app = ?1 AND name = ?2",
                        DB_ARGS(ARG_TEXT(app), ARG_TEXT(name)), &st, err);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return orch_fail(err, ORCH_E_NOTFOUND, 0, "service %s/%s not found", app, name);
    if (rc != SQLITE_ROW)
        return db_fail(s, "get service", err);
    service_row(st, out);
    return 0;
}

int store_service_delete(struct store *s, const char *app, const char *name, struct orch_error *err)
{
    /* Revisions and rollouts go with it through ON DELETE CASCADE, in this one statement. */
    int64_t changes = 0;
    int rc = db_exec(s, "delete service", "DELETE FROM services WHERE app = ?1 AND name = ?2",
                     DB_ARGS(ARG_TEXT(app), ARG_TEXT(name)), &changes, err);
    if (rc == 0 && changes == 0)
        return orch_fail(err, ORCH_E_NOTFOUND, 0, "service %s/%s not found", app, name);
    return rc;
}

int store_services_list(struct store *s, const char *app, struct store_service **out, size_t *n,
                        struct orch_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc;
    if (app != NULL)
        rc =
            db_prepare(s, "list services",
                       "SELECT " SERVICE_COLUMNS " FROM services WHERE app = ?1 ORDER BY app, name",
                       DB_ARGS(ARG_TEXT(app)), &st, err);
    else
        rc = db_prepare(s, "list services",
                        "SELECT " SERVICE_COLUMNS " FROM services ORDER BY app, name", NULL, 0, &st,
                        err);
    if (rc < 0)
        return rc;
    struct store_service *v = NULL;
    size_t len = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        v = orch_xrealloc(v, (len + 1) * sizeof(*v));
        service_row(st, &v[len++]);
    }
    if (rc != SQLITE_DONE) {
        store_services_free(v, len);
        return db_fail(s, "list services", err);
    }
    *out = v;
    *n = len;
    return 0;
}

void store_service_free(struct store_service *svc)
{
    if (svc == NULL)
        return;
    free(svc->app);
    free(svc->name);
    free(svc->spec_json);
    memset(svc, 0, sizeof(*svc));
}

void store_services_free(struct store_service *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_service_free(&v[i]);
    free(v);
}

/* ---- revisions ---- */

static const char *const revision_state_names[] = {
    [STORE_REV_PENDING] = "pending",
    [STORE_REV_ACTIVE] = "active",
    [STORE_REV_SUPERSEDED] = "superseded",
    [STORE_REV_FAILED] = "failed",
};

const char *store_revision_state_name(enum store_revision_state st)
{
    if ((size_t)st >= ORCH_ARRAY_LEN(revision_state_names))
        return "unknown";
    return revision_state_names[st];
}

static enum store_revision_state revision_state_parse(const char *name)
{
    for (size_t i = 0; i < ORCH_ARRAY_LEN(revision_state_names); i++)
        if (strcmp(revision_state_names[i], name) == 0)
            return (enum store_revision_state)i;
    return STORE_REV_PENDING; /* unreachable: the CHECK constraint admits only the names */
}

#define REVISION_COLUMNS                                                                           \
    "app, service, number, hash, template_json, image, message, created_ms, state, was_healthy"

void store_template_hash(const char *template_json, char out[65])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(template_json, strlen(template_json), md, &mdlen, EVP_sha256(), NULL) ||
        mdlen != 32) {
        fprintf(stderr, "orch: SHA-256 failed\n");
        abort();
    }
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

/* Valid UTF-8 without control characters (C0, DEL, C1): what an image name may hold. */
static bool printable_utf8(const char *t)
{
    const unsigned char *p = (const unsigned char *)t;
    while (*p) {
        unsigned c = *p;
        size_t len = c < 0x80 ? 1 : (c & 0xe0) == 0xc0 ? 2 : (c & 0xf0) == 0xe0 ? 3 : 4;
        if (c < 0x20 || c == 0x7f || (c >= 0x80 && c < 0xc2) || c > 0xf4)
            return false;
        uint32_t cp = len == 1 ? c : len == 2 ? c & 0x1f : len == 3 ? c & 0x0f : c & 0x07;
        for (size_t i = 1; i < len; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        if ((len == 3 && cp < 0x800) || (len == 4 && (cp < 0x10000 || cp > 0x10ffff)) ||
            (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp < 0xa0))
            return false;
        p += len;
    }
    return true;
}

/* 2500-01-01T00:00:00Z: no row of a working orch is dated after it. */
#define STORE_TIME_MAX_MS INT64_C(16725225600000)

/* SQLite's integrity check sees pages, not meaning: a same-length edit of a template passes
 * it. Refuse a row whose template does not hash to its stored hash, whose image is garbage or
 * is not the template's, or whose time is absurd, rather than run or print it. */
static int revision_check(struct store *s, const struct store_revision *r, struct orch_error *err)
{
    char hash[65];
    store_template_hash(r->template_json, hash);
    _cleanup_free_ char *why = NULL;
    if (strcmp(hash, r->hash) != 0) {
        why = orch_xstrdup("its template does not match its stored hash");
    } else if (r->image[0] == '\0' || strlen(r->image) > 4096 || !printable_utf8(r->image)) {
        why = orch_xstrdup("its image name is not printable UTF-8");
    } else if (r->created_ms < 0 || r->created_ms > STORE_TIME_MAX_MS) {
        why =
            orch_xasprintf("its created time (%lld ms) is out of range", (long long)r->created_ms);
    } else {
        json_t *t = json_loads(r->template_json, 0, NULL);
        const char *timg = json_string_value(json_object_get(t, "image"));
        if (timg != NULL && strcmp(timg, r->image) != 0)
            why = orch_xstrdup("its image name differs from its template's");
        json_decref(t);
    }
    if (why == NULL)
        return 0;
    return orch_fail(err, ORCH_E_DB, 0,
                     "state db %s: %s/%s revision %lld: %s (the file was edited or damaged); "
                     "restore a backup with `orch state restore FILE`",
                     s->path, r->app, r->service, (long long)r->number, why);
}

static int revision_row(struct store *s, sqlite3_stmt *st, struct store_revision *out,
                        struct orch_error *err)
{
    const unsigned char *state = sqlite3_column_text(st, 8);
    *out = (struct store_revision){
        .app = col_str(st, 0),
        .service = col_str(st, 1),
        .number = sqlite3_column_int64(st, 2),
        .hash = col_str(st, 3),
        .template_json = col_str(st, 4),
        .image = col_str(st, 5),
        .message = col_str(st, 6),
        .created_ms = sqlite3_column_int64(st, 7),
        .state = revision_state_parse(state ? (const char *)state : ""),
        .was_healthy = sqlite3_column_int(st, 9) != 0,
    };
    int rc = revision_check(s, out, err);
    if (rc < 0)
        store_revision_free(out);
    return rc;
}

int store_revision_next_number(struct store *s, const char *app, const char *service, int64_t *out,
                               struct orch_error *err)
{
    int64_t last = 0;
    bool found = false;
    int rc = db_query_int(s, "next revision number",
                          "SELECT last FROM revision_seq WHERE app = ?1 AND service = ?2",
                          DB_ARGS(ARG_TEXT(app), ARG_TEXT(service)), &last, &found, err);
    if (rc < 0)
        return rc;
    *out = (found ? last : 0) + 1;
    return 0;
}

int store_revision_add(struct store *s, const struct store_revision *rev, int64_t *number_out,
                       struct orch_error *err)
{
    const char *op = "add revision";
    struct db_group g;
    int rc = group_begin(s, &g, op, err);
    if (rc < 0)
        return rc;
    int64_t number = 0;
    bool found = false;
    rc = db_query_int(s, op,
                      "INSERT INTO revision_seq (app, service, last) VALUES (?1, ?2, 1)"
                      " ON CONFLICT (app, service) DO UPDATE SET last = last + 1 RETURNING last",
                      DB_ARGS(ARG_TEXT(rev->app), ARG_TEXT(rev->service)), &number, &found, err);
    if (rc == 0 && !found)
        rc = orch_fail(err, ORCH_E_DB, 0, "%s: the revision counter returned nothing", op);
    if (rc == 0)
        rc = db_exec(s, op,
                     "INSERT INTO revisions (" REVISION_COLUMNS ")"
                     " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)",
                     DB_ARGS(ARG_TEXT(rev->app), ARG_TEXT(rev->service), ARG_INT(number),
                             ARG_TEXT(rev->hash), ARG_TEXT(rev->template_json),
                             ARG_TEXT(rev->image), ARG_TEXT(rev->message), ARG_INT(rev->created_ms),
                             ARG_TEXT(store_revision_state_name(rev->state)),
                             ARG_INT(rev->was_healthy ? 1 : 0)),
                     NULL, err);
    rc = group_end(s, &g, rc, op, err);
    if (rc == 0 && number_out != NULL)
        *number_out = number;
    return rc;
}

int store_revision_get(struct store *s, const char *app, const char *service, int64_t number,
                       struct store_revision *out, struct orch_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc = db_prepare(s, "get revision",
                        "SELECT " REVISION_COLUMNS " FROM revisions"
                        " WHERE app = ?1 AND service = ?2 AND number = ?3",
                        DB_ARGS(ARG_TEXT(app), ARG_TEXT(service), ARG_INT(number)), &st, err);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return orch_fail(err, ORCH_E_NOTFOUND, 0, "revision %lld of %s/%s not found",
                         (long long)number, app, service);
    if (rc != SQLITE_ROW)
        return db_fail(s, "get revision", err);
    return revision_row(s, st, out, err);
}

int store_revisions_list(struct store *s, const char *app, const char *service,
                         struct store_revision **out, size_t *n, struct orch_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc = db_prepare(s, "list revisions",
                        "SELECT " REVISION_COLUMNS " FROM revisions"
                        " WHERE app = ?1 AND service = ?2 ORDER BY number DESC",
                        DB_ARGS(ARG_TEXT(app), ARG_TEXT(service)), &st, err);
    if (rc < 0)
        return rc;
    struct store_revision *v = NULL;
    size_t len = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        v = orch_xrealloc(v, (len + 1) * sizeof(*v));
        int r = revision_row(s, st, &v[len], err);
        if (r < 0) {
            store_revisions_free(v, len);
            return r;
        }
        len++;
    }
    if (rc != SQLITE_DONE) {
        store_revisions_free(v, len);
        return db_fail(s, "list revisions", err);
    }
    *out = v;
    *n = len;
    return 0;
}

int store_revision_set_state(struct store *s, const char *app, const char *service, int64_t number,
                             enum store_revision_state st, bool was_healthy, struct orch_error *err)
{
    int64_t changes = 0;
    int rc = db_exec(s, "set revision state",
                     "UPDATE revisions SET state = ?4, was_healthy = ?5"
                     " WHERE app = ?1 AND service = ?2 AND number = ?3",
                     DB_ARGS(ARG_TEXT(app), ARG_TEXT(service), ARG_INT(number),
                             ARG_TEXT(store_revision_state_name(st)), ARG_INT(was_healthy ? 1 : 0)),
                     &changes, err);
    if (rc == 0 && changes == 0)
        return orch_fail(err, ORCH_E_NOTFOUND, 0, "revision %lld of %s/%s not found",
                         (long long)number, app, service);
    return rc;
}

int store_revisions_trim(struct store *s, const char *app, const char *service, size_t keep,
                         int64_t protect, struct orch_error *err)
{
    int64_t lim = keep > (size_t)INT64_MAX ? INT64_MAX : (int64_t)keep;
    return db_exec(s, "trim revisions",
                   "DELETE FROM revisions WHERE app = ?1 AND service = ?2 AND number <> ?3"
                   " AND number NOT IN (SELECT number FROM revisions"
                   "   WHERE app = ?1 AND service = ?2 ORDER BY number DESC LIMIT ?4)",
                   DB_ARGS(ARG_TEXT(app), ARG_TEXT(service), ARG_INT(protect), ARG_INT(lim)), NULL,
                   err);
}

void store_revision_free(struct store_revision *r)
{
    if (r == NULL)
        return;
    free(r->app);
    free(r->service);
    free(r->hash);
    free(r->template_json);
    free(r->image);
    free(r->message);
    memset(r, 0, sizeof(*r));
}

void store_revisions_free(struct store_revision *v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        store_revision_free(&v[i]);
    free(v);
}

/* ---- rollouts ---- */

static const char *const rollout_state_names[] = {
    [STORE_ROLLOUT_PROGRESSING] = "progressing",
    [STORE_ROLLOUT_COMPLETE] = "complete",
    [STORE_ROLLOUT_FAILED] = "failed",
    [STORE_ROLLOUT_ROLLED_BACK] = "rolled_back",
};

const char *store_rollout_state_name(enum store_rollout_state st)
{
    if ((size_t)st >= ORCH_ARRAY_LEN(rollout_state_names))
        return "unknown";
    return rollout_state_names[st];
}

static enum store_rollout_state rollout_state_parse(const char *name)
{
    for (size_t i = 0; i < ORCH_ARRAY_LEN(rollout_state_names); i++)
        if (strcmp(rollout_state_names[i], name) == 0)
            return (enum store_rollout_state)i;
    return STORE_ROLLOUT_PROGRESSING; /* unreachable: the CHECK constraint admits only names */
}

int store_rollout_add(struct store *s, const struct store_rollout *r, int64_t *id_out,
                      struct orch_error *err)
{
    int64_t id = 0;
    bool found = false;
    int rc = db_query_int(
        s, "add rollout",
        "INSERT INTO rollouts (app, service, from_revision, to_revision, state, message,"
        " started_ms, updated_ms) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) RETURNING id",
        DB_ARGS(ARG_TEXT(r->app), ARG_TEXT(r->service), ARG_INT(r->from_revision),
                ARG_INT(r->to_revision), ARG_TEXT(store_rollout_state_name(r->state)),
                ARG_TEXT(r->message), ARG_INT(r->started_ms), ARG_INT(r->updated_ms)),
        &id, &found, err);
    if (rc == 0 && !found)
        return orch_fail(err, ORCH_E_DB, 0, "add rollout: no id returned");
    if (rc == 0 && id_out != NULL)
        *id_out = id;
    return rc;
}

int store_rollout_latest(struct store *s, const char *app, const char *service,
                         struct store_rollout *out, struct orch_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc = db_prepare(s, "latest rollout",
                        "SELECT id, app, service, from_revision, to_revision, state, message,"
                        " started_ms, updated_ms FROM rollouts WHERE app = ?1 AND service = ?2"
                        " ORDER BY id DESC LIMIT 1",
                        DB_ARGS(ARG_TEXT(app), ARG_TEXT(service)), &st, err);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return orch_fail(err, ORCH_E_NOTFOUND, 0, "no rollout of %s/%s", app, service);
    if (rc != SQLITE_ROW)
        return db_fail(s, "latest rollout", err);
    const unsigned char *state = sqlite3_column_text(st, 5);
    *out = (struct store_rollout){
        .id = sqlite3_column_int64(st, 0),
        .app = col_str(st, 1),
        .service = col_str(st, 2),
        .from_revision = sqlite3_column_int64(st, 3),
        .to_revision = sqlite3_column_int64(st, 4),
        .state = rollout_state_parse(state ? (const char *)state : ""),
        .message = col_str(st, 6),
        .started_ms = sqlite3_column_int64(st, 7),
        .updated_ms = sqlite3_column_int64(st, 8),
    };
    return 0;
}

int store_rollout_set_state(struct store *s, int64_t id, enum store_rollout_state st,
                            const char *message, int64_t now_ms, struct orch_error *err)
{
    int64_t changes = 0;
    int rc;
    if (message != NULL)
        rc = db_exec(s, "set rollout state",
                     "UPDATE rollouts SET state = ?2, message = ?3, updated_ms = ?4 WHERE id = ?1",
                     DB_ARGS(ARG_INT(id), ARG_TEXT(store_rollout_state_name(st)), ARG_TEXT(message),
                             ARG_INT(now_ms)),
                     &changes, err);
    else
        rc = db_exec(s, "set rollout state",
                     "UPDATE rollouts SET state = ?2, updated_ms = ?3 WHERE id = ?1",
                     DB_ARGS(ARG_INT(id), ARG_TEXT(store_rollout_state_name(st)), ARG_INT(now_ms)),
                     &changes, err);
    if (rc == 0 && changes == 0)
        return orch_fail(err, ORCH_E_NOTFOUND, 0, "rollout %lld not found", (long long)id);
    return rc;
}

void store_rollout_free(struct store_rollout *r)
{
    if (r == NULL)
        return;
    free(r->app);
    free(r->service);
    free(r->message);
    memset(r, 0, sizeof(*r));
}

/* ---- events ---- */

int store_event_add(struct store *s, const char *app, const char *service, const char *kind,
                    const char *message, int64_t now_ms, struct orch_error *err)
{
    return db_exec(s, "add event",
                   "INSERT INTO events (time_ms, app, service, kind, message)"
                   " VALUES (?1, ?2, ?3, ?4, ?5)",
                   DB_ARGS(ARG_INT(now_ms), ARG_TEXT(app), ARG_TEXT(service), ARG_TEXT(kind),
                           ARG_TEXT(message)),
                   NULL, err);
}

int store_events_list(struct store *s, const char *app, const char *service, size_t limit,
                      struct store_event **out, size_t *n, struct orch_error *err)
{
    /* The newest `limit` by id, handed out oldest first; LIMIT -1 is SQLite's "no limit". */
    int64_t lim = limit == 0 || limit > (size_t)INT64_MAX ? -1 : (int64_t)limit;
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc;
    if (app == NULL)
        rc = db_prepare(s, "list events",
                        "SELECT * FROM (SELECT id, time_ms, app, service, kind, message"
                        " FROM events ORDER BY id DESC LIMIT ?1) ORDER BY id",
                        DB_ARGS(ARG_INT(lim)), &st, err);
    else if (service == NULL)
        rc = db_prepare(s, "list events",
                        "SELECT * FROM (SELECT id, time_ms, app, service, kind, message"
                        " FROM events WHERE app = ?1 ORDER BY id DESC LIMIT ?2) ORDER BY id",
                        DB_ARGS(ARG_TEXT(app), ARG_INT(lim)), &st, err);
    else
        rc = db_prepare(s, "list events",
                        "SELECT * FROM (SELECT id, time_ms, app, service, kind, message"
                        " FROM events WHERE app = ?1 AND service = ?2 ORDER BY id DESC LIMIT ?3)"
                        " ORDER BY id",
                        DB_ARGS(ARG_TEXT(app), ARG_TEXT(service), ARG_INT(lim)), &st, err);
    if (rc < 0)
        return rc;
    struct store_event *v = NULL;
    size_t len = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        v = orch_xrealloc(v, (len + 1) * sizeof(*v));
        v[len++] = (struct store_event){
            .id = sqlite3_column_int64(st, 0),
            .time_ms = sqlite3_column_int64(st, 1),
            .app = col_str(st, 2),
            .service = col_str(st, 3),
            .kind = col_str(st, 4),
            .message = col_str(st, 5),
        };
    }
    if (rc != SQLITE_DONE) {
        store_events_free(v, len);
        return db_fail(s, "list events", err);
    }
    *out = v;
    *n = len;
    return 0;
}

int store_event_latest(struct store *s, const char *app, const char *service, const char *kind_a,
                       const char *kind_b, struct store_event *out, struct orch_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc = db_prepare(s, "latest event",
                        "SELECT id, time_ms, app, service, kind, message FROM events"
                        " WHERE app = ?1 AND service = ?2 AND (kind = ?3 OR kind = ?4)"
                        " ORDER BY id DESC LIMIT 1",
                        DB_ARGS(ARG_TEXT(app), ARG_TEXT(service), ARG_TEXT(kind_a),
                                ARG_TEXT(kind_b != NULL ? kind_b : kind_a)),
                        &st, err);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return -ORCH_E_NOTFOUND;
    if (rc != SQLITE_ROW)
        return db_fail(s, "latest event", err);
    *out = (struct store_event){
        .id = sqlite3_column_int64(st, 0),
        .time_ms = sqlite3_column_int64(st, 1),
        .app = col_str(st, 2),
        .service = col_str(st, 3),
        .kind = col_str(st, 4),
        .message = col_str(st, 5),
    };
    return 0;
}

void store_event_free(struct store_event *e)
{
    free(e->app);
    free(e->service);
    free(e->kind);
    free(e->message);
    memset(e, 0, sizeof(*e));
}

void store_events_free(struct store_event *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].app);
        free(v[i].service);
        free(v[i].kind);
        free(v[i].message);
    }
    free(v);
}

/* ---- observed status ---- */

int store_status_put(struct store *s, const struct store_status *st, struct orch_error *err)
{
    return db_exec(s, "put service status",
                   "INSERT INTO service_status (app, service, observed_ms, revision, desired,"
                   " running, healthy, updated, converged, message, replaced, replaced_ms)"
                   " VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)"
                   " ON CONFLICT (app, service) DO UPDATE SET observed_ms = ?3, revision = ?4,"
                   " desired = ?5, running = ?6, healthy = ?7, updated = ?8, converged = ?9,"
                   " message = ?10,"
                   " replaced = CASE WHEN ?12 = 0 THEN replaced ELSE ?11 END,"
                   " replaced_ms = CASE WHEN ?12 = 0 THEN replaced_ms ELSE ?12 END",
                   DB_ARGS(ARG_TEXT(st->app), ARG_TEXT(st->service), ARG_INT(st->observed_ms),
                           ARG_INT(st->revision), ARG_INT(st->desired), ARG_INT(st->running),
                           ARG_INT(st->healthy), ARG_INT(st->updated), ARG_INT(st->converged),
                           ARG_TEXT(st->message ? st->message : ""), ARG_TEXT(st->replaced),
                           ARG_INT(st->replaced_ms)),
                   NULL, err);
}

int store_status_get(struct store *s, const char *app, const char *service,
                     struct store_status *out, struct orch_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc = db_prepare(s, "get service status",
                        "SELECT app, service, observed_ms, revision, desired, running, healthy,"
                        " updated, converged, message, replaced, replaced_ms FROM service_status"
                        " WHERE app = ?1 AND service = ?2",
                        DB_ARGS(ARG_TEXT(app), ARG_TEXT(service)), &st, err);
    if (rc < 0)
        return rc;
    rc = sqlite3_step(st);
    if (rc == SQLITE_DONE)
        return orch_fail(err, ORCH_E_NOTFOUND, 0, "no observed status of %s/%s", app, service);
    if (rc != SQLITE_ROW)
        return db_fail(s, "get service status", err);
    *out = (struct store_status){
        .app = col_str(st, 0),
        .service = col_str(st, 1),
        .observed_ms = sqlite3_column_int64(st, 2),
        .revision = sqlite3_column_int64(st, 3),
        .desired = sqlite3_column_int(st, 4),
        .running = sqlite3_column_int(st, 5),
        .healthy = sqlite3_column_int(st, 6),
        .updated = sqlite3_column_int(st, 7),
        .converged = sqlite3_column_int(st, 8) != 0,
        .message = col_str(st, 9),
        .replaced = col_str(st, 10),
        .replaced_ms = sqlite3_column_int64(st, 11),
    };
    return 0;
}

void store_status_free(struct store_status *st)
{
    free(st->app);
    free(st->service);
    free(st->message);
    free(st->replaced);
    memset(st, 0, sizeof(*st));
}

/* ---- the daemon's view of instance health ---- */

int store_instance_health_set(struct store *s, const char *app, const char *service,
                              const struct store_instance_health *v, size_t n,
                              struct orch_error *err)
{
    const char *op = "publish instance health";
    struct db_group g;
    int rc = group_begin(s, &g, op, err);
    if (rc < 0)
        return rc;
    rc = db_exec(s, op, "DELETE FROM instance_health WHERE app = ?1 AND service = ?2",
                 DB_ARGS(ARG_TEXT(app), ARG_TEXT(service)), NULL, err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        rc = db_exec(s, op,
                     "INSERT INTO instance_health (app, service, id, health, observed_ms)"
                     " VALUES (?1, ?2, ?3, ?4, ?5) ON CONFLICT (app, service, id) DO UPDATE"
                     " SET health = ?4, observed_ms = ?5",
                     DB_ARGS(ARG_TEXT(app), ARG_TEXT(service), ARG_TEXT(v[i].id),
                             ARG_TEXT(v[i].health), ARG_INT(v[i].observed_ms)),
                     NULL, err);
    return group_end(s, &g, rc, op, err);
}

int store_instance_health_list(struct store *s, const char *app, struct store_instance_health **out,
                               size_t *n, struct orch_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc = db_prepare(s, "list instance health",
                        "SELECT app, service, id, health, observed_ms FROM instance_health"
                        " WHERE ?1 = '' OR app = ?1 ORDER BY app, service, id",
                        DB_ARGS(ARG_TEXT(app ? app : "")), &st, err);
    if (rc < 0)
        return rc;
    struct store_instance_health *v = NULL;
    size_t len = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        v = orch_xrealloc(v, (len + 1) * sizeof(*v));
        v[len++] = (struct store_instance_health){
            .app = col_str(st, 0),
            .service = col_str(st, 1),
            .id = col_str(st, 2),
            .health = col_str(st, 3),
            .observed_ms = sqlite3_column_int64(st, 4),
        };
    }
    if (rc != SQLITE_DONE) {
        store_instance_health_free(v, len);
        return db_fail(s, "list instance health", err);
    }
    *out = v;
    *n = len;
    return 0;
}

void store_instance_health_free(struct store_instance_health *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].app);
        free(v[i].service);
        free(v[i].id);
        free(v[i].health);
    }
    free(v);
}

char *store_state_id(struct store *s, struct orch_error *err)
{
    return db_state_id(s, err);
}

static char *db_state_id(struct store *s, struct orch_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    if (db_prepare(s, "read state id", "SELECT value FROM meta WHERE key = 'state_id'", DB_ARGS(),
                   &st, err) < 0)
        return NULL;
    int rc = sqlite3_step(st);
    if (rc != SQLITE_ROW) {
        if (rc == SQLITE_DONE)
            orch_fail(err, ORCH_E_DB, 0, "%s has no state id", s->path);
        else
            db_fail(s, "read state id", err);
        return NULL;
    }
    return col_str(st, 0);
}

/* ---- backup, restore, init ---- */

int store_revision_seq_raise(struct store *s, const char *app, const char *service, int64_t last,
                             struct orch_error *err)
{
    return db_exec(s, "raise revision counter",
                   "INSERT INTO revision_seq (app, service, last) VALUES (?1, ?2, ?3)"
                   " ON CONFLICT (app, service) DO UPDATE SET last = max(last, ?3)",
                   DB_ARGS(ARG_TEXT(app), ARG_TEXT(service), ARG_INT(last)), NULL, err);
}

/* Copies every page of src's main database into dst's in one step (one read transaction on
 * src, one write transaction on dst), retrying while either is busy for up to busy_ms. */
static int copy_db(sqlite3 *dst, sqlite3 *src, int busy_ms, const char *what,
                   struct orch_error *err)
{
    sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
    if (b == NULL)
        return orch_fail(err, ORCH_E_DB, 0, "%s: %s", what, sqlite3_errmsg(dst));
    int rc;
    int waited = 0;
    while (is_busy(rc = sqlite3_backup_step(b, -1))) {
        if (waited >= busy_ms)
            break;
        sqlite3_sleep(20);
        waited += 20;
    }
    sqlite3_backup_finish(b);
    if (rc != SQLITE_DONE) {
        int ext = sqlite3_extended_errcode(dst);
        return orch_fail(err, is_busy(rc) ? ORCH_E_LOCKED : ORCH_E_DB, 0, "%s: %s", what,
                         sqlite3_errstr(rc == SQLITE_OK ? ext : rc));
    }
    return 0;
}

int store_backup(struct store *s, const char *path, struct orch_error *err)
{
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (fd < 0) {
        if (errno == EEXIST)
            return orch_fail(err, ORCH_E_INVALID, 0,
                             "backup file %s exists already: name a new file", path);
        return orch_fail(err, ORCH_E_ENV, errno, "cannot create backup file %s", path);
    }
    close(fd);
    sqlite3 *dst = NULL;
    int rc = sqlite3_open_v2(path, &dst, SQLITE_OPEN_READWRITE, NULL);
    if (rc != SQLITE_OK) {
        rc = orch_fail(err, ORCH_E_ENV, 0, "backup file %s: %s", path,
                       dst ? sqlite3_errmsg(dst) : sqlite3_errstr(rc));
    } else {
        _cleanup_free_ char *what = orch_xasprintf("backup of %s to %s", s->path, path);
        rc = copy_db(dst, s->db, s->busy_ms, what, err);
    }
    /* The copy keeps the WAL flag of its source; fold it into one self-contained file. */
    if (rc == 0 && sqlite3_exec(dst, "PRAGMA journal_mode = DELETE", NULL, NULL, NULL) != SQLITE_OK)
        rc = orch_fail(err, ORCH_E_DB, 0, "backup file %s: %s", path, sqlite3_errmsg(dst));
    if (sqlite3_close(dst) != SQLITE_OK && rc == 0)
        rc = orch_fail(err, ORCH_E_DB, 0, "backup file %s: cannot close", path);
    if (rc < 0)
        unlink(path);
    return rc;
}

/* Reads what a restore needs to know of a backup file and refuses anything else: an orch
 * database (application id), with a state id, of a schema this orch reads, that passes
 * SQLite's integrity check. *id_out gets its state id (new). */
static int backup_check(const char *path, char **id_out, struct orch_error *err)
{
    struct stat sb;
    if (stat(path, &sb) < 0)
        return orch_fail(err, ORCH_E_INVALID, errno, "backup file %s", path);
    if (!S_ISREG(sb.st_mode))
        return orch_fail(err, ORCH_E_INVALID, 0, "backup file %s is not a regular file", path);
    struct store *b = store_new("", true);
    free(b->path);
    b->path = orch_xstrdup(path);
    int64_t v = 0;
    int rc = connect_readonly(b, &v, err);
    if (rc == 0 && v == 0)
        rc = orch_fail(err, ORCH_E_INVALID, 0, "%s is not an orch state database (it is empty)",
                       path);
    else if (rc == 0 && v < 2)
        rc = orch_fail(err, ORCH_E_INVALID, 0,
                       "%s has schema version %lld, older than any that carries a state id: "
                       "open it with an orch of that time first",
                       path, (long long)v);
    if (rc == 0) {
        int64_t app_id = 0;
        rc = read_pragma_int(b, "PRAGMA application_id", &app_id, err);
        if (rc == 0 && app_id != STORE_APPLICATION_ID)
            rc = orch_fail(err, ORCH_E_INVALID, 0, "%s is not an orch state database", path);
    }
    if (rc == 0)
        rc = store_integrity_check(b, err);
    char *id = NULL;
    if (rc == 0) {
        id = db_state_id(b, err);
        if (id == NULL)
            rc = -ORCH_E_DB;
        else if (!store_state_id_valid(id))
            rc = orch_fail(err, ORCH_E_INVALID, 0, "%s holds no valid state id", path);
    }
    store_close(b);
    if (rc < 0) {
        free(id);
        /* whatever is wrong with it, the file is the operator's input, not the state dir */
        if (err != NULL && err->code != ORCH_E_INVALID && err->code != ORCH_E_LOCKED) {
            orch_wrap(err, "backup file %s", path);
            err->code = ORCH_E_INVALID;
            rc = -ORCH_E_INVALID;
        }
        return rc;
    }
    *id_out = id;
    return 0;
}

/* Renames a database SQLite cannot use (and its -wal, -shm) to the first free
 * orch.db.damaged-N; never deletes. */
static int move_aside(const char *db_path, struct orch_error *err)
{
    int n = 1;
    for (;; n++) {
        _cleanup_free_ char *to = orch_xasprintf("%s.damaged-%d", db_path, n);
        if (access(to, F_OK) < 0 && errno == ENOENT)
            break;
        if (n >= 1000)
            return orch_fail(err, ORCH_E_ENV, 0, "cannot move %s aside: %s exists", db_path, to);
    }
    static const char *const suffixes[] = {"", "-wal", "-shm"};
    for (size_t i = 0; i < ORCH_ARRAY_LEN(suffixes); i++) {
        _cleanup_free_ char *from = orch_xasprintf("%s%s", db_path, suffixes[i]);
        _cleanup_free_ char *to = orch_xasprintf("%s.damaged-%d%s", db_path, n, suffixes[i]);
        if (rename(from, to) < 0 && errno != ENOENT)
            return orch_fail(err, ORCH_E_ENV, errno, "cannot move %s aside", from);
        if (i == 0)
            orch_log(ORCH_LOG_WARN, "%s is not a usable database; kept as %s", from, to);
    }
    return 0;
}

/* Opens the state dir's database file for writing without any of store_open's checks, for
 * restore and init, which are what repairs a database those checks refuse. A file that is not
 * a database at all is moved aside and a new one made. *version gets its user_version. */
static int open_raw(struct store *s, int64_t *version, struct orch_error *err)
{
    for (int attempt = 0;; attempt++) {
        int rc = create_db_file(s->path, err);
        if (rc == 0)
            rc = store_connect(s, SQLITE_OPEN_READWRITE, NULL, err);
        if (rc < 0)
            return rc;
        int64_t app_id = 0;
        rc = read_pragma_int(s, "PRAGMA user_version", version, err);
        if (rc == 0)
            rc = read_pragma_int(s, "PRAGMA application_id", &app_id, err);
        if (rc == 0 && app_id != 0 && app_id != STORE_APPLICATION_ID)
            return orch_fail(err, ORCH_E_ENV, 0,
                             "state db %s is not an orch state database: move it away first",
                             s->path);
        if (rc == 0)
            return 0;
        int ext = sqlite3_extended_errcode(s->db);
        store_disconnect(s);
        if (attempt > 0 || ((ext & 0xff) != SQLITE_NOTADB && (ext & 0xff) != SQLITE_CORRUPT))
            return rc;
        orch_error_clear(err);
        rc = move_aside(s->path, err);
        if (rc < 0)
            return rc;
    }
}

int store_restore(const char *state_dir, const char *path, char **state_id_out,
                  struct orch_error *err)
{
    _cleanup_free_ char *id = NULL;
    int rc = backup_check(path, &id, err);
    if (rc < 0)
        return rc;
    rc = mkdir_p(state_dir, err);
    if (rc < 0)
        return rc;
    struct store *s = store_new(state_dir, false);
    int64_t v = 0;
    rc = open_raw(s, &v, err);
    sqlite3 *src = NULL;
    if (rc == 0 && sqlite3_open_v2(path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        rc = orch_fail(err, ORCH_E_INVALID, 0, "backup file %s: %s", path,
                       src ? sqlite3_errmsg(src) : "cannot open");
    if (rc == 0) {
        _cleanup_free_ char *what = orch_xasprintf("restore of %s from %s", s->path, path);
        rc = copy_db(s->db, src, s->busy_ms, what, err);
    }
    sqlite3_close(src);
    /* The copy carries the backup's journal mode; the state dir's database is WAL. */
    if (rc == 0)
        rc = store_settings(s, err);
    if (rc == 0)
        rc = check_state_id(s, id, err);
    store_close(s);
    if (rc == 0)
        rc = write_id_file(state_dir, id, err);
    if (rc == 0 && state_id_out != NULL)
        *state_id_out = orch_steal(&id);
    return rc;
}

int store_init(const char *state_dir, const char *state_id, char **state_id_out,
               struct orch_error *err)
{
    if (state_id != NULL && !store_state_id_valid(state_id))
        return orch_fail(err, ORCH_E_INVALID, 0,
                         "'%s' is not a state id (16 lowercase hex digits, as in the "
                         "orch.state label of the containers)",
                         state_id);
    int rc = mkdir_p(state_dir, err);
    if (rc < 0)
        return rc;
    struct store *s = store_new(state_dir, false);
    int64_t v = 0;
    rc = open_raw(s, &v, err);
    if (rc == 0 && v > 0) {
        _cleanup_free_ char *have = v >= 2 ? db_state_id(s, NULL) : NULL;
        rc = orch_fail(err, ORCH_E_ENV, 0,
                       "state dir %s has a database already (state id %s): orch state init "
                       "never replaces one; restore a backup with `orch state restore FILE`, or "
                       "move %s away first",
                       state_dir, have ? have : "unknown", s->path);
    }
    /* Every migration and the id in one transaction: a crash leaves an empty file (init can
     * run again) or the whole new state, never a database with a random id. */
    if (rc == 0)
        rc = store_settings(s, err);
    if (rc == 0)
        rc = db_exec(s, "init", "BEGIN IMMEDIATE", NULL, 0, NULL, err);
    for (size_t i = 0; rc == 0 && i < ORCH_ARRAY_LEN(migrations); i++)
        if (sqlite3_exec(s->db, migrations[i], NULL, NULL, NULL) != SQLITE_OK)
            rc = db_fail(s, "init", err);
    if (rc == 0 && state_id != NULL)
        rc = db_exec(s, "init", "UPDATE meta SET value = ?1 WHERE key = 'state_id'",
                     DB_ARGS(ARG_TEXT(state_id)), NULL, err);
    if (rc == 0)
        rc = db_exec(s, "init", "COMMIT", NULL, 0, NULL, err);
    store_rollback(s);
    _cleanup_free_ char *id = rc == 0 ? db_state_id(s, err) : NULL;
    if (rc == 0 && id == NULL)
        rc = -ORCH_E_DB;
    store_close(s);
    if (rc == 0)
        rc = write_id_file(state_dir, id, err);
    if (rc == 0 && state_id_out != NULL)
        *state_id_out = orch_steal(&id);
    return rc;
}

/* ---- deletes in progress ---- */

int store_deletion_add(struct store *s, const char *app, const char *service, bool volumes,
                       int64_t now_ms, struct orch_error *err)
{
    return db_exec(
        s, "record deletion",
        "INSERT INTO deletions (app, service, volumes, started_ms) VALUES (?1, ?2, ?3, ?4)"
        " ON CONFLICT (app, service) DO UPDATE SET volumes = max(volumes, ?3)",
        DB_ARGS(ARG_TEXT(app), ARG_TEXT(service ? service : ""), ARG_INT(volumes), ARG_INT(now_ms)),
        NULL, err);
}

int store_deletion_remove(struct store *s, const char *app, const char *service,
                          struct orch_error *err)
{
    return db_exec(s, "forget deletion", "DELETE FROM deletions WHERE app = ?1 AND service = ?2",
                   DB_ARGS(ARG_TEXT(app), ARG_TEXT(service ? service : "")), NULL, err);
}

int store_deletions_list(struct store *s, const char *app, struct store_deletion **out, size_t *n,
                         struct orch_error *err)
{
    _cleanup_stmt_ sqlite3_stmt *st = NULL;
    int rc = db_prepare(s, "list deletions",
                        "SELECT app, service, volumes, started_ms FROM deletions"
                        " WHERE ?1 = '' OR app = ?1 ORDER BY app, service",
                        DB_ARGS(ARG_TEXT(app ? app : "")), &st, err);
    if (rc < 0)
        return rc;
    struct store_deletion *v = NULL;
    size_t len = 0;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        v = orch_xrealloc(v, (len + 1) * sizeof(*v));
        v[len++] = (struct store_deletion){
            .app = col_str(st, 0),
            .service = col_str(st, 1),
            .volumes = sqlite3_column_int(st, 2) != 0,
            .started_ms = sqlite3_column_int64(st, 3),
        };
    }
    if (rc != SQLITE_DONE) {
        store_deletions_free(v, len);
        return db_fail(s, "list deletions", err);
    }
    *out = v;
    *n = len;
    return 0;
}

void store_deletions_free(struct store_deletion *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        free(v[i].app);
        free(v[i].service);
    }
    free(v);
}
