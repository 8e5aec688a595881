/* What the ops files share beneath the public ops.h: notes, opening the store, resolving on an
 * open store, the engine check and the embedded drive, the wait's pure decision. For ops/ and
 * its tests only; callers of ops never include it. */
#ifndef ORCH_OPS_OPS_INTERNAL_H
#define ORCH_OPS_OPS_INTERNAL_H

#include "ops/ops.h"
#include "store/store.h"

struct reconciler;

/* Notes: sent to ctx->note when there is one. */
void ops_note_text(const struct ops_ctx *ctx, enum ops_note_kind kind, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void ops_note_simple(const struct ops_ctx *ctx, enum ops_note_kind kind);

/* Opens the store for writing, or read-only: with no database yet, read-only gives *out NULL
 * and 0 (commands that only read show an empty state). */
int ops_store_open(const struct ops_ctx *ctx, bool write, struct store **out,
                   struct orch_error *err);

/* ops_service_resolve on an open store (s may be NULL: no state yet). */
int ops_resolve_in(struct store *s, const char *ref, char **app, char **svc,
                   struct orch_error *err);

/* Opens the store (read-only unless write) and resolves ref. On failure the store is closed and
 * *s is NULL. */
int ops_open_service(const struct ops_ctx *ctx, const char *ref, bool write, struct store **s,
                     char **app, char **svc, struct orch_error *err);

/* True when ORCH_NO_CONVERGE=1. */
bool ops_no_converge(void);

/* Connects to the engine (ORCH_E_ENV naming it when it does not answer). *out is new. */
int ops_engine_open(const struct ops_ctx *ctx, struct store *s, int64_t timeout_ms,
                    struct reconciler **out, struct orch_error *err);

/* Holds an exclusive lock on STATE/locks/APP.lock (waiting, with an INFO note, while another
 * command holds it): the fd, or -1 with *err filled. */
int ops_app_lock(const struct ops_ctx *ctx, const char *state_dir, const char *app,
                 struct orch_error *err);

/* What a command recorded for one service: at the end of its drive or wait, a store that no
 * longer says so means a later change superseded it (exit 6). */
struct ops_target {
    const char *app;     /* borrowed */
    const char *service; /* borrowed */
    bool gone;           /* the command deleted the service */
    int64_t revision;    /* the revision it set (0: any) */
    int replicas;        /* the count it set (-1: any) */
};

/* 1 with *why (new: "APP/SVC: superseded by revision 3 ('orch apply b.yaml')") when the store
 * no longer holds what one of t (those of app, or all when app is NULL) says; 0 when it does;
 * a negative code when the store cannot be read. */
int ops_superseded(struct store *s, const struct ops_target *t, size_t n, const char *app,
                   char **why);
/* code, or ORCH_EXIT_SUPERSEDED with *why (new) when superseded; an environment failure, a usage
 * error or an interruption keeps its code. */
int ops_supersede_exit(struct store *s, const struct ops_target *t, size_t n, const char *app,
                       int code, char **why);

/* The exit code of an operation interrupted by ctx's signal (128 + it) and *message (new) on
 * what was left and how to finish it (`orch rollout status` of the targets of app, or all when
 * app is NULL); recorded false: nothing was changed. */
int ops_interrupt_exit(const struct ops_ctx *ctx, const char *app, const struct ops_target *t,
                       size_t nt, bool recorded, char **message);

/* Drives app with r under the app lock and fills *out (new); notes as ops_converge. With targets
 * (t, n: may be 0), a change of another command to them meanwhile makes the outcome
 * "superseded" (exit 6). */
int ops_drive(const struct ops_ctx *ctx, struct reconciler *r, const char *app, bool remove_volumes,
              const struct ops_target *t, size_t n, struct ops_converge_result *out);

/* Drives each app of apps in turn with r (remove_volumes and targets as ops_drive), appending one
 * result per app to (*v, *n); returns the worst exit code, at least worst. */
int ops_drive_apps(const struct ops_ctx *ctx, struct reconciler *r, const struct orch_strv *apps,
                   bool remove_volumes, const struct ops_target *t, size_t nt, int worst,
                   struct ops_converge_result **v, size_t *n);

/* ops_wait on an open store. */
int ops_wait_in(const struct ops_ctx *ctx, struct store *s, const struct ops_wait_target *t,
                size_t n, int64_t since_wall_ms, int64_t timeout_ms);

/* What a wait sees of one target in one poll. */
struct ops_wait_view {
    bool have_rollout; /* the target has a rollout id and the service has a latest rollout */
    int64_t rollout_id;
    enum store_rollout_state rollout_state;
    bool have_status; /* the daemon published a status */
    bool converged;
    int64_t status_revision;
    int64_t observed_ms;
    bool gone;               /* the service was deleted meanwhile */
    bool publishes;          /* the service has published ports */
    bool published_reported; /* the daemon reported its published ports since the change */
    bool published_error;    /* ... and one of them cannot be served (port taken) */
};

/* Pure: the exit code the target ended with, or -1 while it goes on. *say_message: the
 * rollout's message tells how it ended (a failure or a rollback). */
int ops_wait_decide(const struct ops_wait_target *t, const struct ops_wait_view *v,
                    int64_t since_wall_ms, bool *say_message);

/* Copies what a store rollout says into *out (new message). */
void ops_rollout_end_set(struct ops_rollout_end *out, const struct store_rollout *ro);
void ops_rollout_end_free(struct ops_rollout_end *r);

/* The exit code a finished rollout stands for (as apply); a rollout still going on is 4. */
int ops_rollout_exit(enum store_rollout_state st);

#endif
