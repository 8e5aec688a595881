/* Probe runners: one repeating timer per watched instance on a libuv loop that the caller owns
 * and runs, feeding health_observe (health_verdict.h) and reporting every status change at once.
 *
 *   http  GET path from orch itself against the published endpoint host:port; a 2xx or 3xx
 *         status line within the timeout is a success (the body is never read)
 *   tcp   a connection to host:port accepted within the timeout, which the peer then keeps
 *         open for a settle window (100ms, at most half the timeout) or answers on, is a
 *         success: docker-proxy accepts on a published port even when nothing listens in the
 *         container and hangs up a moment later, so a bare connect would prove nothing
 *   exec  through the engine: exec create, start, then inspect polled until the process ends;
 *         exit code 0 within the timeout is a success, any engine error a failure
 *
 * At most one probe per instance is in flight: a tick that finds the previous probe still
 * running skips, except that an exec whose engine requests outlived their timeout makes every
 * tick count one more failure without sending another request, so an engine that stopped
 * answering still turns instances unhealthy but is never sent a pile of execs.
 *
 * Everything runs on the loop's thread; no function here may be called from another thread.
 * Times given to and reported by this module are wall-clock ms (orch_now_wall_ms), the clock
 * the engine's State.StartedAt is in. */
#ifndef ORCH_HEALTH_PROBE_H
#define ORCH_HEALTH_PROBE_H

#include <stdint.h>
#include <uv.h>

#include "base/error.h"
#include "docker/docker_client.h"
#include "health/health_verdict.h"
#include "spec/spec.h"

struct health_prober;

/* Called on the loop after a probe result changed an instance's status (starting -> healthy,
 * healthy -> unhealthy, ...); never for the initial status set by health_prober_watch and never
 * after health_prober_unwatch of that id. id is borrowed for the call. The callback may call
 * any health_prober_* function, health_prober_unwatch of this id included, but not
 * health_prober_free. */
typedef void (*health_change_fn)(void *data, const char *id, enum health_status old_status,
                                 enum health_status new_status);

struct health_prober_options {
    health_change_fn on_change; /* may be NULL */
    void *data;                 /* passed to on_change */
    int64_t exec_poll_ms;       /* exec: delay between inspects of a running exec; default 50 */
};

/* New prober on loop (borrowed; must outlive the prober). docker is borrowed and only needed
 * for exec probes (NULL refuses them); it must stay open until health_prober_free has returned
 * and the loop has run, because exec requests in flight complete through it. opts may be NULL.
 * Never fails: allocation aborts. */
struct health_prober *health_prober_new(uv_loop_t *loop, struct docker_client *docker,
                                        const struct health_prober_options *opts);

/* Stops every probe and frees the prober: handles are closed and memory is freed by their
 * close callbacks, and exec requests still in flight free their state when the engine (or
 * docker_client_close) completes them, so run the loop until uv_run returns 0 afterwards. No
 * callback runs after this. Not from inside on_change. NULL is allowed. */
void health_prober_free(struct health_prober *p);

/* Starts probing instance id (a container id; exec probes run in it) as cfg says (copied),
 * against host:port for http/tcp (host copied: an IPv4 or IPv6 literal such as the HostIp of a
 * port binding; "0.0.0.0" and "::" mean the loopback address, as a wildcard binding is
 * reachable there). started_ms is when the container started (wall clock), for start_period
 * and the first probe, which is due one interval after it (at once for an older container).
 * Status begins as HEALTH_STARTING.
 *
 * Idempotent, so a level-triggered reconciler may call it on every pass: watching an id again
 * with an equal cfg, host, port and started_ms changes nothing; with any of them different the
 * watch restarts from HEALTH_STARTING (no on_change for that reset).
 *
 * A cfg without a probe (SPEC_PROBE_NONE) unwatches id and returns 0: its status is
 * HEALTH_NONE. -ORCH_E_INVALID: empty id, http/tcp without a host literal or a port in
 * 1..65535, an http path that does not start with '/' or holds spaces or control characters,
 * an exec without argv, or an exec on a prober without a docker client. */
int health_prober_watch(struct health_prober *p, const char *id, const struct spec_health *cfg,
                        const char *host, int port, int64_t started_ms, struct orch_error *err);

/* Stops probing id; a probe in flight is abandoned and its result never reported. Unknown ids
 * are ignored. */
void health_prober_unwatch(struct health_prober *p, const char *id);

/* HEALTH_NONE for an id that is not watched. */
enum health_status health_prober_status(const struct health_prober *p, const char *id);

/* A copy of id's verdict state (false, *out untouched, when not watched). */
bool health_prober_state(const struct health_prober *p, const char *id, struct health_state *out);

/* Borrowed until the next probe result of id: why its last probe failed ("HTTP 503",
 * "connect 127.0.0.1:8080: connection refused", "timed out after 1000ms", "exit code 1"), ""
 * after a success or before the first result, NULL when id is not watched. */
const char *health_prober_last_error(const struct health_prober *p, const char *id);

/* Number of watched instances. */
size_t health_prober_count(const struct health_prober *p);

#endif
