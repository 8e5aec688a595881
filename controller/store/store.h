/* The state store (docs/contract.md section 5): desired state, immutable revisions, rollout records
 * and an event log in SQLite (WAL) inside the state dir. Every function runs on the caller's thread
 * and does blocking I/O on the database file only; callers group the writes of one command in
 * one transaction with store_begin/store_commit so a SIGKILL at any moment leaves either all of
 * them or none. Strings in out-structs are new unless stated; free them with the matching
 * store_*_free. */
#ifndef ORCH_STORE_STORE_H
#define ORCH_STORE_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "../base/error.h"

#define STORE_DB_NAME "orch.db"
#define STORE_SCHEMA_VERSION 4
/* The state id kept outside the database too (16 hex digits and a newline, mode 0600), written
 * once the database that carries it has committed. Its presence means the state dir was used:
 * a database that is then missing, empty or of another id is refused rather than silently
 * replaced by a new identity (the containers of the old one would be orphaned for good). */
#define STORE_ID_FILE "state-id"

struct store;

/* Resolves the state dir: explicit (--state) if not NULL, else $ORCH_STATE, else /var/lib/orch
 * for root, else $XDG_STATE_HOME/orch or ~/.local/state/orch. Returns a new string. Empty
 * strings count as unset; a relative $XDG_STATE_HOME is ignored (XDG base-dir spec); $HOME
 * falls back to the passwd entry. NULL only when no home directory can be found at all. */
char *store_default_dir(const char *explicit_dir);

/* Opens (creating the folder 0700 and the database 0600 when missing) and migrates the schema to
 * STORE_SCHEMA_VERSION. A database from a newer orch is refused (ORCH_E_ENV). Failures to create
 * or open are ORCH_E_ENV, a database locked past the busy timeout (5 s) is ORCH_E_LOCKED. When
 * STATE/state-id exists, a database that is missing, empty or carries another id is refused with
 * ORCH_E_ENV and a message saying how to recover (nothing is written); when it does not exist it
 * is written from the database. Warns once per process (stderr) about a state dir that its
 * group or others can access. */
int store_open(const char *state_dir, struct store **out, struct orch_error *err);
/* Opens an existing store read-only and writes nothing, so it works on a full disk and on a
 * read-only file system; ORCH_E_NOTFOUND when the state dir or its database does not exist yet
 * (or one whose creation never committed) and no state-id says it was used; ORCH_E_ENV when
 * state_dir is not a directory, and for a lost database as store_open. Cannot migrate: an older
 * schema is ORCH_E_ENV. */
int store_open_readonly(const char *state_dir, struct store **out, struct orch_error *err);
void store_close(struct store *s);
/* Borrowed: the state dir this store lives in. */
const char *store_dir(const struct store *s);
/* How long a statement waits for another process' write lock before failing with
 * ORCH_E_LOCKED (default 5000 ms). Tests and the daemon use shorter waits. */
void store_set_busy_timeout(struct store *s, int ms);
/* PRAGMA integrity_check and foreign_key_check: 0, or ORCH_E_DB with the first problem. */
int store_integrity_check(struct store *s, struct orch_error *err);

/* BEGIN IMMEDIATE / COMMIT / ROLLBACK. store_commit returns only once the transaction is
 * durable (synchronous=FULL); when it fails the transaction is rolled back. store_rollback
 * does nothing outside a transaction. Every write function called outside a transaction is a
 * transaction of its own. */
int store_begin(struct store *s, struct orch_error *err);
int store_commit(struct store *s, struct orch_error *err);
void store_rollback(struct store *s);

/* SQLite's data_version: changes whenever another connection commits. Lets a daemon notice
 * CLI writes cheaply. */
int64_t store_data_version(struct store *s);

/* ---- apps ---- */
struct store_app {
    char *name;
    char *spec_path; /* the last file applied for it, or "" */
    int64_t created_ms;
    int64_t updated_ms;
};
int store_app_put(struct store *s, const char *name, const char *spec_path, int64_t now_ms,
                  struct orch_error *err);
/* Deletes the app with its services, their revisions and rollouts (events stay);
 * -ORCH_E_NOTFOUND when there is no such app. */
int store_app_delete(struct store *s, const char *name, struct orch_error *err);
int store_apps_list(struct store *s, struct store_app **out, size_t *n, struct orch_error *err);
void store_apps_free(struct store_app *v, size_t n);

/* ---- services: the desired state ---- */
struct store_service {
    char *app;
    char *name;
    int64_t revision; /* the desired (current) revision; 0 before the first */
    int replicas;     /* desired instance count (the autoscaler may change it) */
    char *spec_json;  /* spec_service_to_json of the last applied service */
    int64_t created_ms;
    int64_t updated_ms;
};
/* Inserts or replaces the row keyed by (app, name). On replace, created_ms keeps the value
 * of the first insert. The app must exist (else ORCH_E_DB: a foreign key failure). */
int store_service_put(struct store *s, const struct store_service *svc, struct orch_error *err);
/* 0 and *out filled, or -ORCH_E_NOTFOUND. */
int store_service_get(struct store *s, const char *app, const char *name, struct store_service *out,
                      struct orch_error *err);
/* Deletes the service with its revisions and rollouts (events stay); -ORCH_E_NOTFOUND when
 * there is no such service. Its revision counter stays: applied again, it continues counting. */
int store_service_delete(struct store *s, const char *app, const char *name,
                         struct orch_error *err);
/* Every service, or those of app when app is not NULL, ordered by app then name. */
int store_services_list(struct store *s, const char *app, struct store_service **out, size_t *n,
                        struct orch_error *err);
void store_service_free(struct store_service *svc);
void store_services_free(struct store_service *v, size_t n);

/* ---- revisions: immutable templates, numbered 1, 2, 3 ... per service ---- */
enum store_revision_state {
    STORE_REV_PENDING,    /* created, its rollout has not finished */
    STORE_REV_ACTIVE,     /* the revision serving now */
    STORE_REV_SUPERSEDED, /* served once, replaced by a later one */
    STORE_REV_FAILED,     /* its rollout failed */
};
const char *store_revision_state_name(enum store_revision_state st);

struct store_revision {
    char *app;
    char *service;
    int64_t number;
    char *hash;          /* spec_template_hash */
    char *template_json; /* spec_template_canonical */
    char *image;
    char *message; /* -m, or the command line that made it */
    int64_t created_ms;
    enum store_revision_state state;
    bool was_healthy; /* every instance of it was healthy at some point: a rollback target */
};
/* SHA-256 of a stored template as 64 lowercase hex digits: what revisions' hash must be (the
 * spec module's spec_template_hash of the same template). Every revision read is checked
 * against it, so a template edited or damaged in the file is refused (ORCH_E_DB naming the row)
 * instead of being run or shown; so are an image name that is not printable UTF-8 or differs
 * from the template's, and a created time outside 1970..2500. */
void store_template_hash(const char *template_json, char out[65]);
/* Adds a revision numbered one past the highest ever used for the service (numbers are never
 * reused, even after trimming or after the service was deleted and applied again); rev->number
 * is ignored on input. *number_out gets the number. The service must exist. */
int store_revision_add(struct store *s, const struct store_revision *rev, int64_t *number_out,
                       struct orch_error *err);
/* The number store_revision_add would give the service's next revision (1 for one never seen). */
int store_revision_next_number(struct store *s, const char *app, const char *service, int64_t *out,
                               struct orch_error *err);
/* 0 and *out filled, or -ORCH_E_NOTFOUND. */
int store_revision_get(struct store *s, const char *app, const char *service, int64_t number,
                       struct store_revision *out, struct orch_error *err);
/* Newest first. */
int store_revisions_list(struct store *s, const char *app, const char *service,
                         struct store_revision **out, size_t *n, struct orch_error *err);
/* The only change a revision admits (the schema refuses others); -ORCH_E_NOTFOUND if absent. */
int store_revision_set_state(struct store *s, const char *app, const char *service, int64_t number,
                             enum store_revision_state st, bool was_healthy,
                             struct orch_error *err);
/* Deletes the oldest revisions beyond keep, never the one numbered `protect`: what remains is
 * the `keep` newest plus `protect` (so keep + 1 rows when protect is older than those). */
int store_revisions_trim(struct store *s, const char *app, const char *service, size_t keep,
                         int64_t protect, struct orch_error *err);
void store_revision_free(struct store_revision *r);
void store_revisions_free(struct store_revision *v, size_t n);

/* ---- rollouts: one record per change of revision ---- */
enum store_rollout_state {
    STORE_ROLLOUT_PROGRESSING,
    STORE_ROLLOUT_COMPLETE,
    STORE_ROLLOUT_FAILED,
    STORE_ROLLOUT_ROLLED_BACK,
};
const char *store_rollout_state_name(enum store_rollout_state st);

struct store_rollout {
    int64_t id;
    char *app;
    char *service;
    int64_t from_revision; /* 0 for the first */
    int64_t to_revision;
    enum store_rollout_state state;
    char *message;
    int64_t started_ms;
    int64_t updated_ms;
};
int store_rollout_add(struct store *s, const struct store_rollout *r, int64_t *id_out,
                      struct orch_error *err);
/* The newest rollout of the service, or -ORCH_E_NOTFOUND. */
int store_rollout_latest(struct store *s, const char *app, const char *service,
                         struct store_rollout *out, struct orch_error *err);
/* message NULL keeps the current message. -ORCH_E_NOTFOUND for an unknown id. */
int store_rollout_set_state(struct store *s, int64_t id, enum store_rollout_state st,
                            const char *message, int64_t now_ms, struct orch_error *err);
void store_rollout_free(struct store_rollout *r);

/* ---- events: an append-only log ---- */
struct store_event {
    int64_t id;
    int64_t time_ms;
    char *app;
    char *service; /* "" for app-wide events */
    char *kind;    /* "applied", "scaled", "revision", "deleted", ... */
    char *message;
};
int store_event_add(struct store *s, const char *app, const char *service, const char *kind,
                    const char *message, int64_t now_ms, struct orch_error *err);
/* The newest `limit` events of the service (or app when service is NULL, or of everything when
 * app is NULL too), oldest first. limit 0 means all. */
int store_events_list(struct store *s, const char *app, const char *service, size_t limit,
                      struct store_event **out, size_t *n, struct orch_error *err);
void store_events_free(struct store_event *v, size_t n);
/* The newest event of app/service whose kind is kind_a or kind_b (NULL: kind_a only): 0 with
 * *out filled (free with store_event_free), or -ORCH_E_NOTFOUND. */
int store_event_latest(struct store *s, const char *app, const char *service, const char *kind_a,
                       const char *kind_b, struct store_event *out, struct orch_error *err);
void store_event_free(struct store_event *e);

/* The random identity of this state dir (16 hex digits), made when the database was created:
 * new string, or NULL with *err filled. */
char *store_state_id(struct store *s, struct orch_error *err);

/* ---- backup, restore, init: the operator's way back (`orch state`) ---- */

/* True for 16 lowercase hex digits, the form of every state id. */
bool store_state_id_valid(const char *id);
/* Reads STATE/state-id: 0 with *out new, or 0 with *out NULL when the file does not exist;
 * ORCH_E_ENV when it cannot be read or holds no valid id. */
int store_dir_state_id(const char *state_dir, char **out, struct orch_error *err);
/* Writes a consistent copy of the database to path (a new file, 0600; an existing one is
 * ORCH_E_INVALID) with SQLite's online backup API: one read transaction, so writers of other
 * processes (a daemon) go on meanwhile and the copy is the state as of one commit. */
int store_backup(struct store *s, const char *path, struct orch_error *err);
/* Replaces the database of state_dir with the backup at path and points STATE/state-id at the
 * backup's id (*state_id_out, new, may be NULL). The backup must be an orch database with a
 * state id whose schema this orch reads (else ORCH_E_INVALID; nothing changed). The copy goes
 * through SQLite (one write transaction), so a reader of the old database never sees a mix; a
 * damaged file that SQLite cannot open as a database is renamed to orch.db.damaged-N first.
 * The caller makes sure no daemon runs on the state dir. */
int store_restore(const char *state_dir, const char *path, char **state_id_out,
                  struct orch_error *err);
/* Makes an empty database in a state dir that has no usable one (missing, empty, or not a
 * database at all, which is renamed to orch.db.damaged-N) with state id `state_id`, or a new
 * random one when NULL, and writes STATE/state-id; *state_id_out (new, may be NULL) gets it. A
 * usable database is ORCH_E_ENV (never replaced); an invalid id ORCH_E_INVALID. Adopting an old
 * id makes its containers (orch.state=ID) this state dir's again. */
int store_init(const char *state_dir, const char *state_id, char **state_id_out,
               struct orch_error *err);
/* Makes sure the next revision of app/service is numbered above `last` (a revision counter
 * that only goes up): after adopting an old state id, containers of that id carry revision
 * numbers the empty database has never seen, and a new revision must not reuse them. */
int store_revision_seq_raise(struct store *s, const char *app, const char *service, int64_t last,
                             struct orch_error *err);

/* ---- observed status: what the daemon last saw of each service ---- */
struct store_status {
    char *app;
    char *service;
    int64_t observed_ms; /* wall clock */
    int64_t revision;    /* the desired revision it was driving */
    int desired;
    int running;
    int healthy;
    int updated;
    bool converged; /* every instance of that revision healthy, nothing else left */
    char *message;
    char *replaced;      /* why it last replaced an instance ("exited", "unhealthy", ...), or "" */
    int64_t replaced_ms; /* when (wall clock), 0 for never */
};
/* Inserts or replaces the row of (app, service); the service must exist. replaced_ms 0 keeps
 * the replacement the row already records (a restarted daemon does not know it). */
int store_status_put(struct store *s, const struct store_status *st, struct orch_error *err);
/* 0 and *out filled, or -ORCH_E_NOTFOUND. */
int store_status_get(struct store *s, const char *app, const char *service,
                     struct store_status *out, struct orch_error *err);
void store_status_free(struct store_status *st);

/* ---- the daemon's view of each instance's health ---- */
struct store_instance_health {
    char *app;
    char *service;
    char *id;     /* full container id */
    char *health; /* "starting" | "healthy" | "unhealthy" | "none" */
    int64_t observed_ms;
};
/* Replaces what is published of the service's instances with v[0..n) (in one transaction;
 * instances not in v are dropped). The service must exist; its rows go with it. The strings of
 * v are borrowed. */
int store_instance_health_set(struct store *s, const char *app, const char *service,
                              const struct store_instance_health *v, size_t n,
                              struct orch_error *err);
/* Every published instance of app (NULL: of every app), ordered by app, service, id. */
int store_instance_health_list(struct store *s, const char *app, struct store_instance_health **out,
                               size_t *n, struct orch_error *err);
void store_instance_health_free(struct store_instance_health *v, size_t n);

/* ---- deletes in progress (schema 4) ---- */
/* A delete forgets its services at once; what it deletes stays recorded here until the
 * reconciler has removed their containers (and for a whole app its network, and volumes when
 * asked), so a command killed meanwhile leaves the delete visible (`deleting`) and the next
 * command finishes it. */
struct store_deletion {
    char *app;
    char *service; /* "" for the whole app */
    bool volumes;  /* whole app: its named volumes go too */
    int64_t started_ms;
};
/* Records (app, service) as being deleted (service NULL or "": the whole app); recording it
 * again keeps the first start and adds volumes, never takes them away. */
int store_deletion_add(struct store *s, const char *app, const char *service, bool volumes,
                       int64_t now_ms, struct orch_error *err);
/* The delete is finished (or overtaken by an apply): 0 also when none was recorded. */
int store_deletion_remove(struct store *s, const char *app, const char *service,
                          struct orch_error *err);
/* Those of app (NULL: of every app), ordered by app then service ("" first). */
int store_deletions_list(struct store *s, const char *app, struct store_deletion **out, size_t *n,
                         struct orch_error *err);
void store_deletions_free(struct store_deletion *v, size_t n);

/* The daemon's lock of a state dir (the file daemon.lock in it), held for the daemon's life;
 * the kernel drops it when the process dies, so a SIGKILLed daemon never leaves a stale one.
 * store_daemon_lock takes it (*fd_out: close it to let go): ORCH_E_LOCKED naming the holder's
 * pid when another process holds it. store_daemon_running tells whether some process holds it;
 * *pid (may be NULL) gets its pid or 0. */
int store_daemon_lock(const char *state_dir, int *fd_out, struct orch_error *err);
bool store_daemon_running(const char *state_dir, pid_t *pid);

#endif
