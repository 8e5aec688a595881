/* The DNS server of `orch daemon` (docs/contract.md section 4): UDP and TCP on one address,
 * answering from the current struct registry with registry_answer().
 *
 * Threading: everything runs on the caller's loop thread. Call every function here from that
 * thread (from another thread, hand the registry over with a uv_async_t).
 *
 * Wiring it into the daemon:
 *
 *     struct dns_server *dns;
 *     struct dns_server_options o = {.listen = "127.0.0.1:8600"};   // --dns ADDR
 *     if (dns_server_start(loop, &o, &dns, &err) < 0) ...           // exit 3: address in use
 *     ...on every health or placement change (on the loop thread):
 *     struct registry *reg;
 *     if (registry_build(&(struct registry_options){.zone = domain, .ttl = ttl_s}, inst, n,
 *                        &reg, &err) == 0)
 *         dns_server_set_registry(dns, reg);                        // takes reg
 *     ...at shutdown:
 *     dns_server_close(dns, on_dns_closed, NULL);                   // then let the loop run
 *
 * Until the first dns_server_set_registry(), every query is answered SERVFAIL. */
#ifndef ORCH_REGISTRY_DNS_SERVER_H
#define ORCH_REGISTRY_DNS_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/error.h"
#include "registry/registry.h"

#define DNS_SERVER_DEFAULT_LISTEN "127.0.0.1:8600"

/* TCP clients are held to bounds so that none can lock others out (issue 16 item 10): at most
 * max_tcp_conns connections in all and max_tcp_per_source from one address; at either bound a new
 * connection evicts the oldest idle one in that set (the one waiting longest for its next query
 * with no answer in flight), and is refused only when every one of them has answers in flight.
 * Each query must arrive whole within tcp_idle_ms of the connection or of the previous answer,
 * however slowly its bytes trickle in. A whole frame that is not a query with a readable header
 * (0-11 bytes, a response) closes the connection; a malformed query with a header gets FORMERR.
 * UDP is served the same whatever TCP clients do. */
struct dns_server_options {
    /* "IPV4:PORT" or "[IPV6]:PORT"; NULL: DNS_SERVER_DEFAULT_LISTEN. Port 0 picks a free port
     * (the same for UDP and TCP); dns_server_port() tells which. */
    const char *listen;
    size_t max_udp;              /* largest UDP answer (512..4096); 0: REGISTRY_MAX_UDP */
    unsigned max_tcp_conns;      /* open TCP connections in all; 0: 128 */
    unsigned max_tcp_per_source; /* open TCP connections from one address; 0: 16 */
    uint64_t tcp_idle_ms;        /* the deadline of each query (see above); 0: 5000 */
};

struct dns_server_stats {
    uint64_t udp_queries, tcp_queries;
    uint64_t dropped;       /* not answered: malformed beyond an id, responses, send failures */
    uint64_t truncated;     /* answered with TC set */
    uint64_t tcp_rejected;  /* connections closed at once: a bound reached, none idle to evict */
    uint64_t tcp_evicted;   /* idle connections closed to make room for a new one */
    uint64_t tcp_timed_out; /* connections closed because a query did not arrive in time */
    unsigned tcp_conns;     /* open now */
};

struct dns_server;

/* Binds UDP and TCP and starts serving. *out is new: release it with dns_server_close(). On
 * failure (ORCH_E_INVALID: bad address; ORCH_E_ENV: bind/listen failed, e.g. in use) *out is
 * untouched and the handles already opened are closed on the loop's next run. */
int dns_server_start(uv_loop_t *loop, const struct dns_server_options *opt, struct dns_server **out,
                     struct orch_error *err);

/* The port bound (useful with port 0). */
int dns_server_port(const struct dns_server *srv);

/* Takes reg (NULL allowed: back to SERVFAIL) and answers from it from the next query on; the
 * previous registry is freed at once. Safe because queries are answered synchronously on the
 * loop thread: no answer is ever half-built from the old one. */
void dns_server_set_registry(struct dns_server *srv, struct registry *reg);

void dns_server_get_stats(const struct dns_server *srv, struct dns_server_stats *st);

/* Stops serving and closes every handle; when the last one is closed, frees the registry and
 * srv and calls cb(data) (cb may be NULL). srv must not be used after this call. */
void dns_server_close(struct dns_server *srv, void (*cb)(void *data), void *data);

#endif
