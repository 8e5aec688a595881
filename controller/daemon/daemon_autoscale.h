/* The daemon's autoscaler sync (docs/autoscale.md): every sync period, for each service with an
 * `autoscale` block, the CPU of its running instances (cgroup files of the local engine, else
 * the Engine stats API), the pure decision (autoscale_decide) with a state kept per service, and
 * a changed count written through the operations layer (ops_autoscale_set). Decisions are
 * recorded as events: every change of the count, the first decision for a service after the
 * daemon starts, and a decision that keeps the count when its kind (the limits that applied:
 * held by the window, at max or min, missing metrics; no metric at all; off) differs from the
 * last recorded one, at most once a minute (but always the first after a change of the count);
 * the others are not, so the event log stays bounded whatever the load does: at most one such
 * event a minute plus one per change of the count.
 *
 * Runs on the daemon's loop and thread: daemon_autoscale_tick is called from the top of the
 * loop, never from a callback; the stats requests' callbacks only store their sample. */
#ifndef ORCH_DAEMON_DAEMON_AUTOSCALE_H
#define ORCH_DAEMON_DAEMON_AUTOSCALE_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"
#include "store/store.h"

#define DAEMON_AUTOSCALE_SYNC_MS 5000 /* --autoscale-sync default */

struct daemon_autoscale;
struct reconciler;
struct reconcile_run;

/* Requests per second of one instance, for the `requests` target: the load balancer fills it
 * (true with *rps_milli = requests per second × 1000), false when it has no figure. */
typedef bool (*daemon_autoscale_rps_fn)(void *arg, const char *app, const char *service,
                                        const char *id, int64_t *rps_milli);
/* The daemon's reconcile run of app (its last pass tells which instances run and are healthy),
 * or NULL. */
typedef struct reconcile_run *(*daemon_autoscale_run_fn)(void *arg, const char *app);
/* The autoscaler changed app's count: pass it soon. */
typedef void (*daemon_autoscale_changed_fn)(void *arg, const char *app);

struct daemon_autoscale_hooks {
    daemon_autoscale_run_fn run;
    daemon_autoscale_changed_fn changed;
    daemon_autoscale_rps_fn rps; /* NULL: no requests figures (services with only a requests
                                    target then never scale, as with missing metrics) */
    void *arg;
};

/* New; store and rec are borrowed and outlive it. sync_ms > 0. */
struct daemon_autoscale *daemon_autoscale_new(struct store *s, struct reconciler *rec,
                                              int64_t sync_ms,
                                              const struct daemon_autoscale_hooks *hooks);
/* Runs a sync when one is due (now_ms: the monotonic clock). */
void daemon_autoscale_tick(struct daemon_autoscale *a, int64_t now_ms);
/* Frees a now, or once the last stats request still pending has completed (the docker client
 * completes them when it closes). */
void daemon_autoscale_free(struct daemon_autoscale *a);

#endif
