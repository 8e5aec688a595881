/* The operations layer: what the CLI verbs (and, next, the HTTP API) do, each as one function
 * taking a plain request and filling a result that carries the exit code it stands for
 * (enum orch_exit) and the messages to show. Nothing here prints: live progress and messages
 * go through the caller's note callback (struct ops_ctx), results are rendered by the caller
 * (ops_json.h has the JSON shared by `-o json` and the API). Beneath: desired, reconcile, store;
 * no store or JSON type appears in this header.
 *
 * Ownership: a result's strings and arrays are new, freed by its ops_*_result_free, which also
 * accepts a zeroed or partly filled result. Request fields are borrowed. */
#ifndef ORCH_OPS_OPS_H
#define ORCH_OPS_OPS_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/util.h"
#include "spec/spec.h"

/* ---- context and notes ---- */

enum ops_note_kind {
    OPS_NOTE_INFO,         /* a log line (text): who drives, waiting for the app lock */
    OPS_NOTE_PROGRESS,     /* a live progress line (text) that replaces the previous one */
    OPS_NOTE_PROGRESS_END, /* the last progress line is final */
    OPS_NOTE_MESSAGE,      /* an outcome or failure the user must see (text) */
    OPS_NOTE_SKIPPED,      /* delete of a spec: app/service is not in the store */
    OPS_NOTE_RECORDED,     /* the change is committed: the result's record part is final */
    OPS_NOTE_CONVERGED,    /* an embedded drive of one app ended: converge */
};

struct ops_converge_result;

struct ops_note {
    enum ops_note_kind kind;
    const char *text;                           /* borrowed; INFO, PROGRESS, MESSAGE */
    const char *app;                            /* borrowed; SKIPPED */
    const char *service;                        /* borrowed; SKIPPED */
    const struct ops_converge_result *converge; /* borrowed; CONVERGED */
};

struct ops_ctx {
    const char *state_dir; /* borrowed */
    const char *actor;     /* borrowed: the default change message ("orch apply web.yaml") */
    /* Called on the caller's thread while an operation runs (may be NULL: no notes); the note
     * and its strings are borrowed for the call only. */
    void (*note)(void *arg, const struct ops_note *note);
    void *note_arg;
    bool live_progress; /* the reconciler writes its own progress lines on stderr (a CLI) */
    /* May be NULL. The caller's signal handler stores the signal (SIGINT, SIGTERM) that asks
     * the operation to stop: nothing new is started, the engine requests in flight finish, and
     * the operation returns ORCH_EXIT_INTERRUPTED + the signal with a MESSAGE on how to resume.
     * Ops installs no handler itself. */
    const volatile sig_atomic_t *interrupt;
};

/* The signal that asked ctx's operation to stop, or 0. */
int ops_interrupted(const struct ops_ctx *ctx);

/* The exit code of a failure recorded in err (ORCH_EXIT_FAILED for a code of ORCH_E_OK, which
 * would be a bug: a failure must never look like success). */
int ops_error_exit(const struct orch_error *err);
/* Borrowed: err's message, or its code's name when it has none. */
const char *ops_error_text(const struct orch_error *err);

/* The state dir: explicit (--state) if not NULL, else $ORCH_STATE, else the default for the user.
 * New string, or NULL when no home folder can be found. */
char *ops_state_dir(const char *explicit_dir);

/* The store of ctx's state dir, opened for writing, for a caller that hands it to a layer above
 * ops (the daemon). New; close with ops_state_close. */
struct store;
int ops_state_open(const struct ops_ctx *ctx, struct store **out, struct orch_error *err);
void ops_state_close(struct store *s);

/* ---- service references ---- */

/* Resolves "[APP/]SERVICE" against the state: *app and *svc (new). When the app is left out the
 * name must be unique across apps, else ORCH_E_USAGE lists the candidates; an unknown service
 * (also with no state yet) is ORCH_E_NOTFOUND; a malformed one ORCH_E_USAGE. */
int ops_service_resolve(const struct ops_ctx *ctx, const char *ref, char **app, char **svc,
                        struct orch_error *err);

/* ---- who drives the work ---- */

enum ops_driver {
    OPS_DRIVER_EMBEDDED,    /* no daemon: this process converges */
    OPS_DRIVER_DAEMON,      /* a daemon runs on the state dir: record, it converges */
    OPS_DRIVER_RECORD_ONLY, /* ORCH_NO_CONVERGE=1: record, a later command converges */
};

/* Who converges what is recorded now on ctx's state dir. A daemon is announced with an INFO
 * note; *pid (may be NULL) gets its pid, or 0. */
enum ops_driver ops_who_drives(const struct ops_ctx *ctx, long *pid);

/* ---- converging (embedded) ---- */

/* The exit code of a drive's outcome name ("converged" 0, "rolled_back" 1, "timeout" 4,
 * "superseded" 6, else 5). */
int ops_outcome_exit(const char *outcome);

struct ops_converge_result {
    char *app;
    int exit_code;       /* enum orch_exit */
    const char *outcome; /* static: "converged" | "rolled_back" | "failed" | "timeout" |
                            "superseded" (another command changed what this one recorded; the
                            message names it); NULL when the drive could not run (exit_code then
                            says why) */
    char *message;       /* the reconciler's final line, or why it could not run */
};
void ops_converge_result_free(struct ops_converge_result *r);

/* Drives app to its desired state on the engine, holding the app lock. Emits PROGRESS_END, a
 * MESSAGE when it did not converge, then CONVERGED. Returns out->exit_code. */
int ops_converge(const struct ops_ctx *ctx, const char *app, bool remove_volumes,
                 int64_t timeout_ms, struct ops_converge_result *out);

/* ---- waiting for a daemon's work ---- */

struct ops_wait_target {
    const char *app;     /* borrowed */
    const char *service; /* borrowed */
    int64_t revision;    /* the desired revision after the change */
    int64_t rollout_id;  /* its new rollout (0: none; then wait for the status to converge) */
};

/* Follows the daemon's work on targets until each converged, rolled back or failed, or the
 * timeout (0: none) passed; progress and outcomes as notes. Returns the worst exit code. */
int ops_wait(const struct ops_ctx *ctx, const struct ops_wait_target *t, size_t n,
             int64_t since_wall_ms, int64_t timeout_ms);

/* ---- apply and diff ---- */

enum ops_change_kind {
    OPS_CHANGE_UNCHANGED,
    OPS_CHANGE_CREATE,   /* a service new to the store: revision 1 */
    OPS_CHANGE_REVISION, /* the template changed: a new revision (replicas may change too) */
    OPS_CHANGE_SCALE,    /* only replicas (or the autoscale block) changed */
    OPS_CHANGE_PRUNE,    /* --prune: in the store, not in the file */
};
/* "unchanged", "created", "revision", "scaled", "pruned". */
const char *ops_change_name(enum ops_change_kind kind);

struct ops_field {
    char *path;
    char *before; /* compact JSON, or NULL when absent */
    char *after;
};

struct ops_change {
    enum ops_change_kind kind;
    char *service;
    int64_t from_revision;
    int64_t to_revision;
    int from_replicas;
    int to_replicas;
    char *from_image;
    char *to_image;
    bool autoscale_changed;
    bool published_changed; /* only published ports (and maybe autoscale) changed */
    struct ops_field *fields;
    size_t n_fields;
};

struct ops_diff {
    char *app;
    struct ops_change *v; /* file order, then pruned services by name */
    size_t n;
};

struct ops_apply_req {
    struct spec_app *spec;     /* borrowed; the image overrides are written into it */
    const char *spec_path;     /* recorded on the app: absolute path, or "-" */
    const char *const *images; /* "SERVICE=IMAGE" overrides, n_images of them */
    size_t n_images;
    bool prune;
    bool dry_run;        /* compute the diff, change nothing (diff, apply --dry-run) */
    bool wait;           /* with a daemon: follow the rollouts to their end */
    int64_t timeout_ms;  /* 0: none */
    const char *message; /* -m; NULL: ctx->actor */
};

struct ops_apply_result {
    int exit_code;
    struct orch_error err;     /* set when the apply failed before anything was shown */
    struct orch_strv problems; /* wrong --image overrides, one line each (exit 2) */
    struct orch_strv diags;    /* positioned spec errors found against the store, one
                                  "FILE:LINE:COL: error: ..." line each (exit 2) */
    struct ops_diff diff;      /* what changes (dry_run: would change) */
    bool recorded;             /* the diff is committed */
    enum ops_driver driver;
    const char *outcome; /* static: "converged" | "rolled_back" | "failed" | "timeout" |
                            "superseded" | "recorded"; NULL when converging could not run */
    char *superseded;    /* with a daemon and wait: which later change superseded this one */
    struct ops_converge_result converge; /* the embedded drive, when there was one */
};
void ops_apply_result_free(struct ops_apply_result *r);

/* Applies the spec: checks the overrides, then with dry_run only computes the diff (exit 0 when
 * nothing would change, 1 when something would). Otherwise checks that the engine answers (when
 * this process drives), records the diff in one transaction (RECORDED note) and converges, or
 * with a daemon returns at once or waits. Returns out->exit_code. */
int ops_apply(const struct ops_ctx *ctx, const struct ops_apply_req *req,
              struct ops_apply_result *out);

/* ---- scale ---- */

struct ops_scale_item {
    const char *ref; /* [APP/]SERVICE */
    int replicas;    /* 0..SPEC_MAX_REPLICAS */
};

struct ops_scaled {
    char *app;
    char *service;
    int from;
    int to;
};

struct ops_scale_result {
    int exit_code;
    struct orch_error err; /* set when scaling failed; v holds what was written before */
    struct ops_scaled *v;
    size_t n;
    struct ops_converge_result *converged; /* per app, in order of first mention */
    size_t n_converged;
};
void ops_scale_result_free(struct ops_scale_result *r);

/* Sets the desired counts in one transaction (RECORDED note), then converges the apps concerned
 * when this process drives. Returns out->exit_code. */
int ops_scale(const struct ops_ctx *ctx, const struct ops_scale_item *items, size_t n,
              struct ops_scale_result *out);

/* ---- delete ---- */

struct ops_delete_req {
    const char *const *refs;     /* [APP/]SERVICE, n_refs of them; or */
    size_t n_refs;               /* */
    const struct spec_app *spec; /* the services a spec declares (absent ones are skipped); or */
    const char *app;             /* every service of app */
    bool volumes;                /* with app: remove its named volumes too */
};

struct ops_delete_result {
    int exit_code;
    struct orch_error err;
    struct orch_strv apps;     /* what was deleted: parallel to services */
    struct orch_strv services; /* */
    struct ops_converge_result *converged;
    size_t n_converged;
};
void ops_delete_result_free(struct ops_delete_result *r);

/* Forgets the services (and an app left with none) in one transaction (RECORDED note), then
 * removes their containers when this process drives. Returns out->exit_code. */
int ops_delete(const struct ops_ctx *ctx, const struct ops_delete_req *req,
               struct ops_delete_result *out);

/* ---- rollouts ---- */

/* The end of a service's latest rollout, as `rollout status` shows it. */
struct ops_rollout_end {
    bool have; /* false: no rollout recorded */
    int64_t to_revision;
    const char *state; /* static: "progressing" | "complete" | "failed" | "rolled_back" */
    char *message;
    int64_t updated_ms;
};

struct ops_follow_result {
    int exit_code;
    struct orch_error err;
    char *app;
    char *service;
    struct ops_rollout_end rollout;
};
void ops_follow_result_free(struct ops_follow_result *r);

/* rollout status: drives (no daemon) or follows (daemon) the service's latest rollout to its
 * end; out->rollout says how it ended. Returns out->exit_code (as apply). */
int ops_rollout_status(const struct ops_ctx *ctx, const char *ref, int64_t timeout_ms,
                       struct ops_follow_result *out);

struct ops_undo_req {
    const char *ref;
    int64_t to_revision; /* 0: the newest earlier revision that once ran fully */
    bool wait;           /* with a daemon: follow the rollout */
    int64_t timeout_ms;
};

struct ops_undo_result {
    struct ops_follow_result follow; /* exit code, error, app, service, the rollout's end */
    int64_t from_revision;
    int64_t to_revision;
    char *image;               /* of the target revision */
    bool target_failed_before; /* the target revision's rollout once failed */
};
void ops_undo_result_free(struct ops_undo_result *r);

/* Makes the target revision current again under its own number (RECORDED note), then drives or
 * follows it like rollout status (with a daemon only with wait). Returns the exit code. */
int ops_rollout_undo(const struct ops_ctx *ctx, const struct ops_undo_req *req,
                     struct ops_undo_result *out);

/* One revision as the history shows it. */
struct ops_revision {
    int64_t number;
    const char *state; /* static: "pending" | "active" | "superseded" | "failed" */
    bool was_healthy;
    char *image;
    char *message;
    char *hash;
    int64_t created_ms;
};

/* Pure: the revision undo goes back to, among v[0..n) (newest first): number `wanted`, or with
 * wanted 0 the newest one other than current that once ran fully and did not fail. Returns its
 * index, or -ORCH_E_NOTFOUND (no such revision) / -ORCH_E_INVALID (it is current already) with
 * *err naming app/svc. */
int ops_undo_target(const struct ops_revision *v, size_t n, int64_t current, int64_t wanted,
                    const char *app, const char *svc, struct orch_error *err);

struct ops_history_result {
    int exit_code;
    struct orch_error err;
    char *app;
    char *service;
    struct ops_revision *v; /* newest first */
    size_t n;
};
void ops_history_result_free(struct ops_history_result *r);
int ops_rollout_history(const struct ops_ctx *ctx, const char *ref, struct ops_history_result *out);

/* ---- reads: get and status ---- */

/* The autoscaler's view of a service with `autoscale`: its settings, the count it drives and
 * its last recorded decision (docs/autoscale.md). */
struct ops_autoscale_view {
    bool enabled; /* the service has an autoscale block; nothing else is set otherwise */
    int min;
    int max;
    int cpu;      /* target %, 0: none */
    int requests; /* target per second per instance, 0: none */
    int64_t scale_down_delay_ms;
    int current;        /* instances running now */
    int desired;        /* the service's count, which the autoscaler writes */
    bool have_decision; /* a decision was recorded */
    int64_t decided_ms; /* when (wall clock) */
    bool scaled;        /* it changed the count (else it kept it) */
    char *reason;       /* the decision with its inputs */
};

struct ops_service_row {
    char *app;
    char *service;
    int64_t revision;
    int desired;
    int running; /* observed on the engine (0 when it was not asked) */
    int healthy;
    int updated;
    const char *rollout_state; /* static: the latest rollout's state, or "none" */
    struct ops_autoscale_view autoscale;
};

struct ops_get_result {
    int exit_code;
    struct orch_error err;
    struct ops_service_row *v; /* ordered by app, then service */
    size_t n;
};
void ops_get_result_free(struct ops_get_result *r);
/* Every service with its desired state, latest rollout and (unless ORCH_NO_CONVERGE=1) the counts
 * observed on the engine, which is asked only when there is a service. */
int ops_get(const struct ops_ctx *ctx, struct ops_get_result *out);
/* The same for one app (NULL: every app); without counts the engine is not asked (running,
 * healthy and updated stay 0): what the store holds, e.g. for an ETag. */
int ops_get_app(const struct ops_ctx *ctx, const char *app, bool counts,
                struct ops_get_result *out);

struct ops_instance {
    char *id;
    char *name;
    int64_t revision;
    char *state;  /* Docker's: "running", "exited", ... */
    char *health; /* "starting" | "healthy" | "unhealthy" | "none" */
    char **endpoint_names;
    char **endpoints; /* "127.0.0.1:49153", parallel to endpoint_names */
    size_t n_endpoints;
};

struct ops_event {
    int64_t time_ms;
    char *kind;
    char *message;
};

/* One published port of a service and what the daemon's balancer measured on it. */
struct ops_traffic {
    char *port;      /* the port's name */
    char *published; /* "127.0.0.1:8080" */
    char *balance;   /* "round_robin" | "least_conn" */
    bool served;     /* a daemon listens on it now */
    char *error;     /* why not ("" when served) */
    uint64_t connections, active, rejected, requests, bytes_in, bytes_out;
    double requests_per_second;
    double connections_per_second;
};

struct ops_status_result {
    int exit_code;
    struct orch_error err;
    bool found; /* the engine view listed the service */
    char *app;
    char *service;
    int64_t revision;
    int desired;
    int running;
    int healthy;
    int updated;
    struct ops_instance *instances;
    size_t n_instances;
    struct ops_rollout_end rollout; /* the latest rollout */
    struct ops_event *events;       /* the newest 8, oldest first */
    size_t n_events;
    struct ops_autoscale_view autoscale;
    struct ops_traffic *traffic; /* its published ports, in spec order */
    size_t n_traffic;
};
void ops_status_result_free(struct ops_status_result *r);
/* One service: desired state, latest rollout, recent events and its instances on the engine. */
int ops_status(const struct ops_ctx *ctx, const char *ref, struct ops_status_result *out);

/* ---- the state database: backup, restore, init ---- */

enum ops_state_action { OPS_STATE_BACKUP, OPS_STATE_RESTORE, OPS_STATE_INIT };

struct ops_state_req {
    enum ops_state_action action;
    const char *file; /* backup, restore: the backup file */
    const char *id;   /* init: the state id to adopt (--id), or NULL */
    bool new_id;      /* init: start over with a new identity (--new) */
};

struct ops_state_result {
    int exit_code;
    struct orch_error err;
    struct orch_strv lines; /* what was done, one line each, for stdout */
    char *usage;            /* exit ORCH_EXIT_INVALID: the usage error to show, else NULL */
};
void ops_state_result_free(struct ops_state_result *r);

/* True when id is a state id (16 lowercase hex digits, the orch.state label). */
bool ops_state_id_valid(const char *id);

/* backup: a consistent copy of the state database to a new file, also while a daemon writes.
 * restore: replaces the database with the backup and takes on its state id; refused (a MESSAGE
 * note, ORCH_EXIT_ENV) while a daemon runs. init: an empty database where none is usable, never
 * replacing a usable one (MESSAGE note, ORCH_EXIT_ENV); with id, the engine's containers of that
 * id are listed (never changed) first and the revision counters raised above theirs. Returns
 * out->exit_code. */
int ops_state(const struct ops_ctx *ctx, const struct ops_state_req *req,
              struct ops_state_result *out);

/* ---- the autoscaler's writes (the daemon, on its open store) ---- */

#define OPS_AUTOSCALE_SCALED "autoscaled"   /* event kind: the autoscaler changed the count */
#define OPS_AUTOSCALE_KEPT "autoscale-hold" /* event kind: a decision that kept the count */

/* Records the autoscaler's count for app/svc in one transaction: the service's replicas (no
 * revision, as `orch scale`) and an OPS_AUTOSCALE_SCALED event "scaled from FROM to TO by the
 * autoscaler: REASON". ORCH_E_TRANSIENT when the stored count is no longer `from` (changed by a
 * command meanwhile: that count wins); nothing is written then. Does not converge. */
int ops_autoscale_set(struct store *s, const char *app, const char *svc, int from, int to,
                      const char *reason, int64_t now_ms, struct orch_error *err);
/* Records a decision that keeps the count (OPS_AUTOSCALE_KEPT, the reason as message). */
int ops_autoscale_note(struct store *s, const char *app, const char *svc, const char *reason,
                       int64_t now_ms, struct orch_error *err);

#endif
