/* The planner: desired state of one service + the instances observed for it -> the next safe
 * batch of actions (create, start, remove). Pure and level-triggered, like a Kubernetes
 * controller's Reconcile: no I/O, no clock (now_ms is an argument), no globals, no Docker types.
 * The executor maps containers into struct plan_instance, runs the plan, observes again and
 * plans again; each call decides only the next step from what it is shown, so a crashed or
 * repeated pass is harmless. */
#ifndef ORCH_PLAN_PLAN_H
#define ORCH_PLAN_PLAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/error.h"

/* Docker's container states. */
enum plan_inst_state {
    PLAN_INST_CREATED, /* created, never started (a pass crashed between create and start) */
    PLAN_INST_RUNNING,
    PLAN_INST_RESTARTING,
    PLAN_INST_PAUSED,
    PLAN_INST_EXITED,
    PLAN_INST_DEAD,
    PLAN_INST_REMOVING, /* being removed: ignored, the removal is in progress */
};

enum plan_health {
    PLAN_HEALTH_NONE, /* no probe verdict (no probe configured) */
    PLAN_HEALTH_STARTING,
    PLAN_HEALTH_HEALTHY,
    PLAN_HEALTH_UNHEALTHY, /* the probe gave up on it (after its retries): it is replaced */
};

/* One observed instance. Strings are borrowed for the duration of the call; actions point at
 * the id of the instance they name, so the instances must outlive the plan. */
struct plan_instance {
    const char *id;   /* container id, not NULL or empty */
    const char *name; /* container name, may be NULL; only used to spot duplicates */
    int64_t revision;
    enum plan_inst_state state;
    enum plan_health health;
    int64_t created_ms;     /* any clock, the same for all instances: orders "newest" */
    int64_t ready_since_ms; /* when it last became ready, on now_ms's clock; 0: not ready */
};

/* The desired state of one service. */
struct plan_service {
    const char *app;
    const char *service;
    int64_t revision;     /* the target revision */
    int replicas;         /* >= 0 */
    bool recreate;        /* update.strategy: recreate (else rolling) */
    int max_surge;        /* >= 0, already resolved against replicas (plan_resolve_surge) */
    int max_unavailable;  /* >= 0, already resolved (plan_resolve_unavailable) */
    bool has_probe;       /* without a probe, running == ready */
    int64_t min_ready_ms; /* >= 0: a ready instance counts as available once ready this long */
};

enum plan_action_kind { PLAN_CREATE, PLAN_START, PLAN_REMOVE };

struct plan_action {
    enum plan_action_kind kind;
    int64_t revision;   /* the instance's revision (CREATE: the target revision) */
    const char *id;     /* START/REMOVE: borrowed from the input; CREATE: NULL */
    const char *reason; /* static string, for logs: see below */
};

/* Reasons: CREATE "scale up" | "replace failed" | "update"; START "never started";
 * REMOVE "exited" | "dead" | "unhealthy" | "old revision never started" |
 * "old revision not ready" | "old revision" | "recreate" | "surplus" | "not desired".
 *
 * A plan is ordered: every CREATE, then every START, then every REMOVE in the order decided.
 * Executed in that order (or each kind in parallel, kinds in that order) it keeps the
 * invariants below at every moment: creates are counted against the surge limit as if nothing
 * were removed yet, and removals never count on anything created or started in the same plan.
 * An empty plan (n == 0, v == NULL) means "nothing to do now": converged, or waiting for
 * instances to become ready (see plan_counts_converged). */
struct plan {
    struct plan_action *v; /* owned */
    size_t n;
};

/* Decides the next step for one service. Rules, from the observed state only:
 * - alive = created/running/restarting/paused; ready = running, not unhealthy and (no probe or
 *   healthy); available = ready and (min_ready_ms == 0 or ready for >= min_ready_ms).
 * - Exited/dead instances are removed; a created one of the target revision is started, of
 *   another revision removed; an unhealthy one is removed and replaced (the replacement is
 *   created in the same plan when the surge limit allows, else in a later one). REMOVING ones
 *   are ignored, except that recreate waits for old ones to be gone.
 * - Target-revision instances are created up to min(replicas - new_alive,
 *   replicas + max_surge - alive); surplus target-revision instances are removed not-ready
 *   first, then newest first.
 * - Old-revision instances (rolling): not-ready ones are removed at once; ready ones only as
 *   far as both available - floor and ready - floor allow (floor = replicas - max_unavailable;
 *   max_surge == max_unavailable == 0 is treated as max_unavailable 1 so an update can
 *   progress). Counting ready ones too keeps serving capacity while the min_ready clock runs.
 * - Recreate: while any old instance is alive or being removed, remove old ones, create and
 *   start nothing.
 * - A paused instance of the target revision is left alone (orch never pauses: a person did);
 *   it counts as alive but never as ready, and goes early as surplus.
 * - Duplicate ids or names in the input are one instance (the first entry wins).
 * Returns 0 and fills *out (free with plan_free), or -ORCH_E_INVALID for invalid input (negative
 * replicas/surge/unavailable/min_ready, an instance without id); on failure *out is untouched. */
int plan_service_compute(const struct plan_service *want, const struct plan_instance *have,
                         size_t n_have, int64_t now_ms, struct plan *out, struct orch_error *err);

/* Instances of a service that is no longer desired (deleted or pruned): removes every one not
 * already being removed, reason "not desired". Same return convention. */
int plan_orphans_compute(const struct plan_instance *have, size_t n_have, struct plan *out,
                         struct orch_error *err);

void plan_free(struct plan *p);

/* Summary counts for progress lines and status, by the same definitions as the planner
 * (duplicates counted once). want must not be NULL; never fails. */
struct plan_counts {
    int desired;           /* replicas */
    int alive;             /* created, running, restarting or paused */
    int running;           /* state running */
    int ready;             /* running and healthy (or no probe) */
    int available;         /* ready for min_ready */
    int updated;           /* alive of the target revision */
    int updated_available; /* available of the target revision */
    int old;               /* alive of another revision */
    int unhealthy;         /* alive and health unhealthy */
    int exited;            /* exited or dead, awaiting removal */
    int removing;          /* being removed */
};

void plan_counts_compute(const struct plan_service *want, const struct plan_instance *have,
                         size_t n_have, int64_t now_ms, struct plan_counts *out);

/* True when the service is where it should be: exactly `desired` alive instances, all of the
 * target revision and available, and no exited leftovers. plan_service_compute then returns an
 * empty plan. */
bool plan_counts_converged(const struct plan_counts *c);

/* Resolves update.max_surge / max_unavailable against replicas, as Kubernetes does: a
 * percentage of replicas, surge rounded up, unavailable rounded down. Negative values give 0. */
int plan_resolve_surge(int value, bool percent, int replicas);
int plan_resolve_unavailable(int value, bool percent, int replicas);

/* Names for logs and JSON: "create" | "start" | "remove"; Docker's state names ("created",
 * "running", ...); health "none" | "starting" | "healthy" | "unhealthy" (docs/contract.md section
 * 2). */
const char *plan_action_kind_name(enum plan_action_kind k);
const char *plan_inst_state_name(enum plan_inst_state s);
const char *plan_health_name(enum plan_health h);

/* Docker's State.Status and State.Health.Status strings -> enums, for the executor. A NULL or
 * empty health string is PLAN_HEALTH_NONE. Return false for anything unknown. */
bool plan_inst_state_parse(const char *s, enum plan_inst_state *out);
bool plan_health_parse(const char *s, enum plan_health *out);

#endif
