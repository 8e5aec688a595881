/* The reconciler: the one place that changes Docker state. For an app it repeats observe ->
 * plan -> execute until every service of the app matches the desired state in the store, a
 * rollout fails, or time runs out, and records the outcome of each rollout in the store.
 * Decisions come from the pure planner (plan/); this module only observes, acts and keeps the
 * rollout records. One libuv loop, the Docker client's requests run concurrently on it. */
#ifndef ORCH_RECONCILE_RECONCILE_H
#define ORCH_RECONCILE_RECONCILE_H

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "store/store.h"

struct reconciler;

struct reconcile_options {
    const char *publish_address;       /* HostIp of published ports; NULL: $ORCH_PUBLISH_ADDRESS or
                                          127.0.0.1 */
    int64_t timeout_ms;                /* give up waiting after this long (0: no limit beyond the
                                          services' update.deadline) */
    bool progress;                     /* print progress lines on stderr */
    const volatile sig_atomic_t *stop; /* may be NULL; once *stop is not 0, reconcile_app ends
                                          after the pass in flight (its engine requests
                                          finished) with RECONCILE_INTERRUPTED */
};

/* Pure: 0 when addr is an IPv4 or IPv6 literal, else ORCH_E_INVALID naming it (docs/cli.md,
 * "Environment": names are refused, Docker would publish on every interface instead). */
int reconcile_publish_address_check(const char *addr, struct orch_error *err);

/* Checks the publish address (ORCH_E_INVALID, before anything else), connects to the engine
 * named by DOCKER_HOST (and the TLS variables) and checks that it answers: ORCH_E_ENV naming the
 * endpoint when it does not. The store is borrowed. */
int reconciler_new(struct store *s, const struct reconcile_options *opts, struct reconciler **out,
                   struct orch_error *err);
void reconciler_free(struct reconciler *r);
/* Borrowed: the store it was created with. */
struct store *reconciler_store(struct reconciler *r);

enum reconcile_outcome {
    RECONCILE_CONVERGED,   /* every service of the app at its desired revision and count */
    RECONCILE_ROLLED_BACK, /* a rollout failed; the last good revision serves again */
    RECONCILE_FAILED,      /* a rollout failed and was not (or could not be) rolled back */
    RECONCILE_TIMEOUT,     /* --timeout ran out first */
    RECONCILE_INTERRUPTED, /* asked to stop (reconcile_options.stop) between two passes */
};

struct reconcile_report {
    enum reconcile_outcome outcome;
    char message[512]; /* what happened, for the final line */
};

/* Drives app to its desired state (services in the store; containers of services that are not
 * there are removed). When the store has no service of the app left, removes every container of
 * the app and its network; with remove_volumes also its named volumes. Returns 0 with *report
 * filled, or a negative orch_errc for an environment failure (engine gone, store failure). */
int reconcile_app(struct reconciler *r, const char *app, bool remove_volumes,
                  struct reconcile_report *report, struct orch_error *err);

/* The same work in steps, for the daemon: a run keeps what it learnt about an app (backoff,
 * crash counts, readiness, probes) across passes; each pass re-reads the store and the engine
 * and takes the next safe step. give_up: a service that keeps failing without a rollout (only
 * being kept running) ends the run as failed (a CLI command) instead of backing off forever
 * (the daemon). */
struct reconcile_run;
struct reconcile_run *reconcile_run_new(struct reconciler *r, const char *app, bool give_up);
void reconcile_run_free(struct reconcile_run *run);
/* Borrowed. */
const char *reconcile_run_app(const struct reconcile_run *run);

struct reconcile_pass {
    bool done;       /* every service converged (and settled), nothing left to remove */
    bool busy;       /* the engine carried out actions: pass again at once */
    bool inflight;   /* async: actions are still on their way (on_idle says when done) */
    int64_t wake_ms; /* monotonic: when a step waiting on time (a settle period, a backoff, a
                        drain) is due, 0 for none; a probe verdict may call for a pass sooner */
};
int reconcile_run_pass(struct reconcile_run *run, struct reconcile_pass *out,
                       struct orch_error *err);
/* Writes what the last pass observed of each service to the store (service_status) when it
 * changed, so other processes (apply --wait) can follow. */
int reconcile_run_write_status(struct reconcile_run *run, struct orch_error *err);

/* Records the rollouts of converged services and, for an app with no service left, removes its
 * network (and with remove_volumes its volumes); fills *report. */
int reconcile_run_finish(struct reconcile_run *run, bool remove_volumes,
                         struct reconcile_report *report, struct orch_error *err);

/* For the daemon: passes of this run no longer wait for their actions. A pass issues them and
 * returns (inflight); they complete while the loop runs other work, and on_idle(data, run) is
 * called on the loop after the last one; the next pass takes in their outcome. A pass while
 * actions are in flight does nothing. Only the actions wait: the pass's own reads stay
 * synchronous. */
void reconcile_run_set_async(struct reconcile_run *run,
                             void (*on_idle)(void *data, struct reconcile_run *run), void *data);
/* True when the run has seen container id (it is one of the app's instances). */
bool reconcile_run_knows(const struct reconcile_run *run, const char *id);

/* With a DNS registry (the daemon), an instance about to be stopped leaves it first and is
 * stopped drain_ms later (one TTL), so clients that follow the registry see no failures. */
void reconcile_run_set_drain(struct reconcile_run *run, int64_t drain_ms);

/* cb(data, id, grace_ms) runs as the run issues the stop of instance id (SIGTERM, then SIGKILL
 * after grace_ms), before the engine gets it: the daemon's balancer sends it no new connection
 * from then on and gives its open ones grace_ms. id is borrowed for the call. */
void reconcile_run_set_on_stop(struct reconcile_run *run,
                               void (*cb)(void *data, const char *id, int64_t grace_ms),
                               void *data);

/* The app's running instances as of the last pass, for the DNS registry: fills out[0..cap)
 * with views borrowed from the run (valid until its next pass or free) and returns how many;
 * reconcile_run_endpoint_count says how many there are. */
struct registry_instance;
size_t reconcile_run_endpoints(const struct reconcile_run *run, struct registry_instance *out,
                               size_t cap);
size_t reconcile_run_endpoint_count(const struct reconcile_run *run);

/* The app's services in the desired state as of the last pass, for the DNS registry (their
 * names answer NODATA while no instance is healthy, even with none at all): fills out[0..cap)
 * with views borrowed from the run (valid until its next pass or free) and returns how many;
 * reconcile_run_service_count says how many there are. */
struct registry_service;
size_t reconcile_run_services(const struct reconcile_run *run, struct registry_service *out,
                              size_t cap);
size_t reconcile_run_service_count(const struct reconcile_run *run);

/* The app's services in the desired state as of the last pass, for the DNS registry (their
 * names answer NODATA while no instance is healthy, even with none at all): fills out[0..cap)
 * with views borrowed from the run (valid until its next pass or free) and returns how many;
 * reconcile_run_service_count says how many there are. */
struct registry_service;
size_t reconcile_run_services(const struct reconcile_run *run, struct registry_service *out,
                              size_t cap);
size_t reconcile_run_service_count(const struct reconcile_run *run);

/* True when the last pass found no desired service and no container of the app. */
bool reconcile_run_is_empty(const struct reconcile_run *run);

/* The apps that have containers on the engine (distinct orch.app labels). */
struct orch_strv;
int reconciler_container_apps(struct reconciler *r, struct orch_strv *out, struct orch_error *err);

/* Runs the reconciler's loop for ms (probes and other handles keep running). */
void reconciler_idle(struct reconciler *r, int64_t ms);

/* The loop the reconciler runs its requests and probes on (borrowed), for the daemon's own
 * handles. */
struct uv_loop_s *reconciler_loop(struct reconciler *r);
/* The host address instances publish their ports on (borrowed): ORCH_PUBLISH_ADDRESS or
 * 127.0.0.1 unless the options named one. */
const char *reconciler_publish_address(const struct reconciler *r);
/* The identity of the state dir its containers carry as orch.state (borrowed). */
const char *reconciler_state_id(const struct reconciler *r);
/* The Docker client (borrowed). */
struct docker_client *reconciler_docker(struct reconciler *r);
/* True once after any probe verdict changed (the flag is cleared); *ids (may be NULL) gets the
 * instances whose verdict changed since (appended; they are cleared). */
bool reconciler_take_health_changed(struct reconciler *r, struct orch_strv *ids);

/* Observed state of one service, for status and get. */
struct reconcile_instance {
    char *id;
    char *name;
    int64_t revision;
    char *state;           /* Docker's: "running", "exited", ... */
    char *health;          /* "starting" | "healthy" | "unhealthy" | "none" */
    char **endpoint_names; /* port names, parallel to endpoints */
    char **endpoints;      /* "127.0.0.1:49153" */
    size_t n_endpoints;
    char *probe_host; /* internal: where its probe connects */
    int probe_port;
};

struct reconcile_service_status {
    char *app;
    char *service;
    int64_t revision;
    int desired;
    int running;
    int healthy;
    int updated;
    struct reconcile_instance *instances;
    size_t n_instances;
    bool daemon_view;    /* a daemon runs on the state dir: the health of the instances it
                            judges is its probes' verdict (the others were probed once) */
    char *replaced;      /* why the daemon last replaced an instance ("exited", "dead",
                            "unhealthy"), "" when it never did or no daemon ever ran */
    int64_t replaced_ms; /* when (wall clock ms), 0 for never */
    bool deleting;       /* a delete of the service is in progress: its containers are left
                            (desired 0, revision 0, no template) */
};

/* Lists the containers of every app (app NULL) or one app and counts them per service of the
 * store, then per service being deleted (deleting). Services that exist only as containers are
 * not listed. Health: with a daemon running
 * on the state dir (store_daemon_running), the verdicts it published to the store; without one,
 * or for instances it has not judged yet, one probe of each running instance (bounded by the
 * longest probe timeout). The same call serves both cases, so callers need not know which. */
int reconcile_observe(struct reconciler *r, const char *app, struct reconcile_service_status **out,
                      size_t *n, struct orch_error *err);
void reconcile_status_free(struct reconcile_service_status *v, size_t n);

#endif
