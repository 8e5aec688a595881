/* The daemon's published ports (docs/contract.md sections 1 and 3): one balancer (controller/lb) on
 * the daemon's loop, its listeners following the `published` ports of the store's services, its
 * backends following the registry's instances, its figures written for `status` (lb_report.h).
 * The daemon calls these from the top of its loop only, never from a libuv callback, except
 * daemon_lb_on_stop (the reconciler's stop hook, also on the loop thread). */
#ifndef ORCH_DAEMON_DAEMON_LB_H
#define ORCH_DAEMON_DAEMON_LB_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "store/store.h"

/* With no DNS registry, an instance with published ports about to stop is out of the
 * balancer's set this long before its SIGTERM (the stop hook marks it draining too, so this
 * only covers connections accepted while the set was being republished). */
#define DAEMON_LB_DRAIN_MS 500
#define DAEMON_LB_TICK_MS 1000        /* figures sampled and written this often */
#define DAEMON_LB_RETRY_MS 3000       /* a listener that failed is tried again after this */
#define DAEMON_LB_RATE_WINDOW_MS 5000 /* requests_per_second is measured over this */

struct daemon_lb;
struct uv_loop_s;
struct registry_instance;

/* New, on loop; listens on address (the publish address, borrowed for the call); writes its
 * figures into state_dir; records events in store (borrowed for its life). */
struct daemon_lb *daemon_lb_new(struct uv_loop_s *loop, struct store *store, const char *address,
                                const char *state_dir);

/* Re-reads the published ports of every service in the store: new ones are listened on,
 * changed ones moved or switched to their new balance mode, gone ones closed (their open
 * connections finish). A port taken by something else is an event of the service and shows
 * in the figures; it is tried again every DAEMON_LB_RETRY_MS. Returns true when the set of
 * listeners changed (the caller then republishes the backends). */
bool daemon_lb_sync(struct daemon_lb *dl);

/* The backends of every listener from the registry's instances (v[0..n), borrowed): healthy
 * ones get new connections, the others none. */
void daemon_lb_set_instances(struct daemon_lb *dl, const struct registry_instance *v, size_t n);

/* The reconciler's stop hook (reconcile_run_set_on_stop): instance id gets no new connection
 * and its open ones are closed after grace_ms. data is the struct daemon_lb. */
void daemon_lb_on_stop(void *data, const char *id, int64_t grace_ms);

/* An engine event about container id (action "die", "start", ...): a container that died gets
 * no new connection at once, before any pass or probe noticed, and stays out of the set until
 * it starts again or leaves the instances (the engine's list lags its events). */
void daemon_lb_on_event(struct daemon_lb *dl, const char *action, const char *id);

/* How long an instance should be out of the set before it is stopped when no DNS registry
 * asks for longer: DAEMON_LB_DRAIN_MS while any port is published, else 0. */
int64_t daemon_lb_drain_ms(const struct daemon_lb *dl);

/* Samples the figures, retries failed listeners and writes the report, at most once per
 * DAEMON_LB_TICK_MS (now_ms: monotonic). */
void daemon_lb_tick(struct daemon_lb *dl, int64_t now_ms);

/* Requests per second (HTTP/1 requests; connections for other protocols) through the
 * published ports of app/service over the last DAEMON_LB_RATE_WINDOW_MS, summed over its
 * ports; -1 when the service publishes no port that is being served. For the autoscaler's
 * `requests` target. */
double daemon_lb_requests_per_second(const struct daemon_lb *dl, const char *app,
                                     const char *service);

/* Closes every listener, gives open connections a second to finish (the caller's loop runs
 * them out), removes the report and frees dl. NULL is ignored. */
void daemon_lb_close(struct daemon_lb *dl);

#endif
