/* The published-port balancer (docs/contract.md sections 1 and 3): an L4 TCP proxy on the caller's
 * libuv loop. Each service key (e.g. "shop/web/http") listens on one address and spreads new
 * connections over its backend set with lb_pick() (round robin or least connections).
 *
 * Behaviour the daemon relies on:
 * - A backend set can be replaced at any time. A backend that leaves the set (or is marked
 *   draining or unhealthy) gets no new connection from then on; its open connections continue
 *   until they end, lb_drain_instance()'s grace runs out, or lb_close().
 * - A connect failure (refused, unreachable, LB_CONNECT_TIMEOUT_MS) tries another eligible
 *   backend; nothing is read from the client before a backend accepted, so no byte is lost or
 *   duplicated. With no eligible backend left the client connection is closed at once.
 * - Each direction reads at most one buffer ahead of its writer: while bytes wait to be written
 *   on one side, the other side is not read (LB_READ_BUF bytes per direction at most).
 * - Half-close: EOF from one side is passed on as shutdown() to the other; the connection
 *   closes when both directions ended, or at once on an error from either side.
 *
 * Threading: everything runs on the loop thread; call every function from it. Ownership: every
 * pointer argument is borrowed for the duration of the call; struct lb is new from lb_new()
 * and freed by lb_close() once its last handle closed. */
#ifndef ORCH_LB_LB_H
#define ORCH_LB_LB_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/error.h"
#include "lb/lb_pick.h"

#define LB_READ_BUF (64 * 1024)     /* one read; also the most bytes queued per direction */
#define LB_CONNECT_TIMEOUT_MS 3000  /* a backend that does not accept by then is skipped */
#define LB_MAX_ATTEMPTS 8           /* backends tried per client connection */
#define LB_DEFAULT_CLOSE_GRACE 5000 /* lb_close(): connections get this long to finish */

/* One backend of a service. */
struct lb_backend {
    const char *id;      /* instance id (the container id); unique in the set */
    const char *address; /* IPv4 or IPv6 literal, e.g. "127.0.0.1" */
    uint16_t port;
    unsigned flags; /* enum lb_backend_flags: only HEALTHY and not DRAINING get connections */
};

/* Traffic figures of one service since lb_listen(). Rates are the caller's: sample twice. */
struct lb_stats {
    uint64_t conns_total;     /* client connections accepted */
    uint64_t conns_active;    /* open now (connecting or proxying) */
    uint64_t conns_rejected;  /* closed at once: no eligible backend (or all attempts failed) */
    uint64_t connect_failed;  /* backend connect attempts that failed (each retry counts) */
    uint64_t bytes_in;        /* client -> backend */
    uint64_t bytes_out;       /* backend -> client */
    uint64_t requests;        /* HTTP/1 request lines; a connection that is not HTTP/1 counts 1 */
    uint64_t http_conns;      /* connections whose first bytes were an HTTP/1 method */
    uint64_t bytes_queued;    /* read and waiting to be written, now (backpressure bounds it) */
    unsigned backends;        /* in the set */
    unsigned backends_usable; /* healthy and not draining */
};

struct lb;

/* A balancer on loop with no service. New; release with lb_close(). */
struct lb *lb_new(uv_loop_t *loop);

/* The connect timeout of new attempts (0: LB_CONNECT_TIMEOUT_MS); checked every 100 ms. */
void lb_set_connect_timeout(struct lb *lb, uint64_t ms);

/* Listens for service key on address:port (port 0: any free port, see lb_port()). Fails with
 * ORCH_E_INVALID (bad address, key already listening) or ORCH_E_ENV (bind/listen failed: the
 * port is taken by something else; the message names address and port). The set starts empty:
 * connections are closed at once until lb_set_backends(). */
int lb_listen(struct lb *lb, const char *key, const char *address, uint16_t port, enum lb_mode mode,
              struct orch_error *err);

/* The port key listens on, or -1 when it does not. */
int lb_port(const struct lb *lb, const char *key);

/* Changes the mode of a listening service (next connection on). ORCH_E_NOTFOUND: no such key. */
int lb_set_mode(struct lb *lb, const char *key, enum lb_mode mode, struct orch_error *err);

/* Replaces key's backend set with b[0..n). Backends are matched by id: one kept keeps its open
 * connection count; one left out gets no new connection. ORCH_E_NOTFOUND: key not listening;
 * ORCH_E_INVALID: an address is not an IP literal or an id is missing (nothing changed). */
int lb_set_backends(struct lb *lb, const char *key, const struct lb_backend *b, size_t n,
                    struct orch_error *err);

/* The daemon's stop of instance id: no new connection to it from now (it is marked draining
 * if still in the set), and its open connections of key (NULL: of every service) are closed
 * after grace_ms (0: now). Returns how many connections it has open now. */
size_t lb_drain_instance(struct lb *lb, const char *key, const char *id, uint64_t grace_ms);

/* Stops listening for key and forgets it; its open connections continue to their end (or
 * lb_close()). Unknown keys are ignored. */
void lb_unlisten(struct lb *lb, const char *key);

/* The figures of key; ORCH_E_NOTFOUND when it is not listening. */
int lb_stats(const struct lb *lb, const char *key, struct lb_stats *out, struct orch_error *err);

/* Graceful stop: closes every listener at once, lets open connections finish for up to
 * grace_ms (0: LB_DEFAULT_CLOSE_GRACE), then closes the rest. When the last handle is closed,
 * lb is freed and cb(data) is called (cb may be NULL). lb must not be used after this call. */
void lb_close(struct lb *lb, uint64_t grace_ms, void (*cb)(void *data), void *data);

#endif
