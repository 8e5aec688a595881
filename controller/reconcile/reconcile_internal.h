/* What the files of the reconcile module share, and nothing outside it includes: the
 * reconciler's and a run's state, the batch of engine actions, and the helpers each file
 * offers the others (recon_*). See reconcile.h for the public contract. */
#ifndef ORCH_RECONCILE_INTERNAL_H
#define ORCH_RECONCILE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "docker/docker_client.h"
#include "health/health_probe.h"
#include "plan/plan.h"
#include "reconcile.h"
#include "registry/registry.h"
#include "rollout/rollout.h"
#include "spec/spec.h"
#include "store/store.h"

#define RECONCILE_IDLE_MS 250    /* wait between passes when nothing was done */
#define RECONCILE_SETTLE_MS 1000 /* a converged app is observed once more after this */
#define RECONCILE_CRASH_LIMIT 3  /* exits of the new revision that fail its rollout */
#define RECONCILE_BACKOFF_MIN_MS 1000
#define RECONCILE_BACKOFF_MAX_MS 60000
#define RECONCILE_BACKOFF_RESET_MS 10000 /* converged this long: backoff starts over */
#define RECONCILE_HISTORY_LIMIT 10       /* revisions kept per service, like revisionHistoryLimit */

struct reconciler {
    struct store *store;
    uv_loop_t loop;
    struct docker_client *dc;
    struct docker_endpoint ep;
    char *publish_address;
    int64_t timeout_ms;
    bool progress;
    const volatile sig_atomic_t *stop; /* reconcile_options.stop */
    struct health_prober *prober;
    char *state_id;               /* orch.state of the containers of this state dir */
    bool health_changed;          /* a probe verdict changed since the flag was last cleared */
    struct orch_strv changed_ids; /* the instances whose verdict changed since then */
};

struct ready_mark {
    char *id;
    int64_t since_ms;
    int64_t started_ms;      /* when this run's start of it completed (monotonic; 0: not ours) */
    int64_t started_wall_ms; /* the same on the wall clock, for its probe */
    bool exit_counted;       /* its exit was counted as a crash already */
    int64_t drain_since;     /* left the DNS registry at (0: serving); stopped one TTL later */
};

/* One instance as the DNS registry sees it (owned strings). */
struct endpoint_snap {
    char *service;
    char *id;
    char ipv4[64];
    struct registry_port *ports;
    char **port_names;
    size_t n_ports;
    bool healthy;
};

/* One service of the desired state as the DNS registry sees it (owned strings). */
struct service_snap {
    char *service;
    struct registry_port *ports;
    char **port_names;
    size_t n_ports;
};

struct svc_run {
    char *name;
    bool present;             /* in the store this pass */
    struct store_service row; /* this pass */
    struct spec_service tmpl; /* template of row.revision */
    int64_t tmpl_revision;    /* which revision tmpl was loaded for (0: none) */
    bool has_rollout;         /* a rollout of row.revision is progressing */
    struct store_rollout rollout;
    int64_t image_ok_revision; /* revision whose image was found on the engine */
    int64_t last_progress_ms;
    long last_score;
    int crashes;
    int failed_actions;       /* creates/starts the engine refused in the last batch */
    int64_t settled_since_ms; /* 0: not settled */
    int64_t settle_ms;        /* how long converged must last to count: 0 with a probe */
    int64_t next_ms;          /* when a held or settling step is due (0: none), last pass */
    bool settle_confirmed;    /* this settled period was checked by inspecting the instances */
    int64_t backoff_ms;
    int64_t backoff_until_ms;
    bool settled; /* plan empty and converged this pass */
    bool failed;  /* its rollout failed and it is not driven any more */
    bool rolled_back;
    int64_t rollback_rollout_id; /* the rollout that was rolled back, while rolling back */
    int64_t rollback_target;     /* the revision we rolled back to */
    bool rev_active;             /* the store calls the current revision active */
    char line[256];              /* last progress line printed */
    char waiting_for[64];        /* the dependency it waits for, "" for none */
    struct plan_counts counts;   /* as of the last pass */
    bool have_written;           /* status row written by this run */
    struct plan_counts written;  /* what it said */
    bool written_converged;
    int64_t written_revision;
    char replaced[32];           /* why an instance was last replaced ("" for never) */
    int64_t replaced_ms;         /* when (wall clock) */
    int64_t written_replaced_ms; /* what the status row says of it */
    int64_t written_updated_ms;  /* the service row's updated_ms when the status was written: a
                                    change that moves no count (published ports, autoscale
                                    settings) still gets a fresh status for apply --wait */
    char *written_health;        /* the instance health last published ("ID=HEALTH;"...) */
};

struct reconcile_run {
    struct reconciler *r;
    char *app;
    bool give_up; /* a service that keeps failing with no rollout ends the run */
    int64_t start_ms;
    int64_t start_wall_ms;
    int64_t quiet_since; /* when orphans were last seen gone (0: some are left) */
    bool empty;          /* last pass: no service desired and no container left */
    int64_t drain_ms;    /* with a DNS registry: how long an instance is out of it before it
                            is stopped (one TTL); 0: stop at once */
    void (*on_stop)(void *data, const char *id, int64_t grace_ms); /* may be NULL */
    void *on_stop_data;
    struct endpoint_snap *snap; /* the instances of the last pass, for the registry */
    size_t n_snap;
    struct service_snap *svc_snap; /* the desired services of the last pass, for the registry */
    size_t n_svc_snap;
    struct svc_run *svcs;
    size_t n;
    struct ready_mark *ready;
    size_t n_ready;
    bool network_ok;  /* the app network was found (or made) and is the only one of its name */
    char *network_id; /* its id, what instances are created on */
    struct store_deletion *dels; /* deletes of the app in progress, as of this pass */
    size_t n_dels;
    char outcome_msg[512];
    /* async (the daemon): a pass issues its actions and returns; they complete on the loop
     * while other apps pass, and on_idle tells the daemon when the last one did */
    bool async;
    struct batch *inflight; /* the actions of the last pass, until a pass harvests them */
    void (*on_idle)(void *data, struct reconcile_run *run);
    void *on_idle_data;
};

/* One batch of engine actions issued concurrently and waited for together. */
struct batch {
    struct reconciler *r;
    struct reconcile_run *run; /* whose instances the actions are (marks their starts) */
    int pending;
    int succeeded;       /* actions the engine carried out */
    bool env_failed;     /* the engine went away: stop */
    bool network_failed; /* a create or start failed on the app network: look at it again */
    struct orch_error env_err;
    bool orphaned; /* its run was freed while actions were in flight: the last one frees it */
};

/* reconciler.c: the engine helpers */
int recon_sync(struct reconciler *r, struct docker_sync *s, size_t n, struct orch_error *err);
int recon_observe_list(struct reconciler *r, const char *app, struct docker_container_list *out,
                       struct orch_error *err);
int64_t recon_label_revision(const struct docker_container *c);
const char *recon_container_name(const struct docker_container *c);
bool recon_published(const struct docker_container *c, int port, const char *proto,
                     const char **host, int *host_port);
void recon_idle(struct reconciler *r, int64_t ms);
/* True for a running container that is not attached to the app network orch-APP (removed or
 * disconnected by hand): it lost its alias and its published ports, so it is not serving. */
bool recon_detached(const char *app, const struct docker_container *c);
void recon_wait(struct reconciler *r, int64_t ms);

/* run_state.c: what a run remembers */
struct ready_mark *recon_mark(struct reconcile_run *run, const char *id);
int64_t recon_ready_since(struct reconcile_run *run, const char *id, bool running, int64_t now);
bool recon_exit_first_seen(struct reconcile_run *run, const char *id);
void recon_forget_gone(struct reconcile_run *run, const struct docker_container_list *obs);
int recon_run_load(struct reconcile_run *run, struct orch_error *err);
bool recon_in_registry(struct reconcile_run *run, const struct svc_run *s,
                       const struct plan_instance *pi);
void recon_snapshot(struct reconcile_run *run, const struct docker_container_list *obs);

/* actions.c: carrying out the pass's actions */
void recon_op_create(struct reconcile_run *run, struct batch *b, struct svc_run *s);
void recon_op_start(struct reconcile_run *run, struct batch *b, struct svc_run *s, const char *id);
void recon_op_remove(struct reconcile_run *run, struct batch *b, struct svc_run *s, const char *id,
                     const char *name, int64_t grace_ms);
int recon_batch_wait(struct batch *b, struct orch_error *err);
int recon_ensure_volumes(struct reconcile_run *run, struct svc_run *s, struct orch_error *err);
int recon_check_image(struct reconcile_run *run, struct svc_run *s, struct orch_error *err);
bool recon_still_running(struct reconcile_run *run, const struct plan_instance *inst, size_t n);
int recon_remove_app_infra(struct reconcile_run *run, bool remove_volumes, struct orch_error *err);

/* network.c: the app network */
int recon_ensure_network(struct reconcile_run *run, struct orch_error *err);
bool recon_network_error(const struct orch_error *err);
int recon_remove_app_networks(struct reconcile_run *run, struct orch_error *err);

/* deletions.c: deletes in progress */
int recon_deletions_load(struct reconcile_run *run, struct orch_error *err);
bool recon_deleting_volumes(const struct reconcile_run *run);
int recon_deletions_settle(struct reconcile_run *run, const struct docker_container_list *obs,
                           size_t n_present, struct orch_error *err);
int recon_deletions_finish(struct reconcile_run *run, struct orch_error *err);
void recon_deletions_free(struct reconcile_run *run);

/* rollout_records.c: the rollout records in the store */
int recon_last_good_revision(struct reconciler *r, const char *app, const char *svc, int64_t not,
                             int64_t *out, struct orch_error *err);
int recon_rollout_complete(struct reconcile_run *run, struct svc_run *s, struct orch_error *err);
int recon_rollout_fail(struct reconcile_run *run, struct svc_run *s, const char *why,
                       int64_t target, struct orch_error *err);
void recon_crash_event(struct reconcile_run *run, struct svc_run *s, int n, const char *what,
                       int64_t delay_ms);
void recon_note_crashes(struct reconcile_run *run, struct svc_run *s, int n, const char *what,
                        int64_t now);
enum rollout_phase recon_svc_phase(const struct svc_run *s);

#endif
