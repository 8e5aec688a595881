/* `orch daemon`: the long-running controller. One libuv loop; a level-triggered work queue of
 * apps, each with its reconcile run kept across passes. Docker events (filtered on orch.app),
 * probe verdicts and desired-state changes made by CLI commands (SQLite's data_version) only
 * make it faster; a periodic resync makes it certain. One daemon per state dir (a lock that CLI
 * commands test to decide whether they drive the work themselves). */
#ifndef ORCH_DAEMON_DAEMON_H
#define ORCH_DAEMON_DAEMON_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "base/error.h"
#include "server.h"
#include "store/store.h"

struct daemon_options {
    int64_t resync_ms;         /* every app is reconciled at least this often; default 10000 */
    const char *dns_listen;    /* "127.0.0.1:8600" (NULL: that), or "off" */
    int64_t dns_ttl_ms;        /* TTL of answers, and how long a stopping instance is out of the
                                  registry before it is stopped; default 5000 */
    const char *domain;        /* zone; NULL: "orch." */
    int64_t autoscale_sync_ms; /* the autoscaler's sync period; 0: 5000; < 0: no autoscaler */
    /* The HTTP API on the daemon's loop (api/server.h); NULL: none. Its state_dir is set to the
     * store's. Borrowed. */
    const struct api_server_config *api;
};

/* Runs until SIGTERM or SIGINT, then returns 0 leaving every container running (a restarted
 * daemon adopts them). ORCH_E_LOCKED when another daemon holds the state dir; ORCH_E_ENV when
 * the DNS address cannot be bound. The engine may be down at start or go away later: the
 * daemon waits for it with backoff and resyncs. */
int daemon_run(struct store *s, const struct daemon_options *opts, struct orch_error *err);

/* True when a daemon holds the lock of state_dir; *pid (may be NULL) gets its pid or 0. */
bool daemon_is_running(const char *state_dir, pid_t *pid);

#endif
