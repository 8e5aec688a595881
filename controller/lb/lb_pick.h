/* The balancer's decisions (pure: no I/O, no clock, no globals): which backend of a service a
 * new connection goes to, and the cheap HTTP/1 request counter of the client->backend stream.
 *
 * Eligible backends are the healthy ones that are not draining. Round robin walks the set from
 * a cursor the caller keeps per service; least_conn takes the fewest open connections and
 * breaks ties with the same cursor, so equal backends share load evenly in both modes. A
 * connection whose connect failed asks again with the backends it already tried marked. */
#ifndef ORCH_LB_LB_PICK_H
#define ORCH_LB_LB_PICK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

enum lb_mode { LB_ROUND_ROBIN, LB_LEAST_CONN };

enum lb_backend_flags {
    LB_BACKEND_HEALTHY = 1 << 0,  /* listed by the registry: may get new connections */
    LB_BACKEND_DRAINING = 1 << 1, /* about to stop: no new connection, open ones continue */
};

/* One backend as pick sees it. */
struct lb_pick_backend {
    unsigned flags;  /* enum lb_backend_flags */
    uint32_t active; /* open connections now */
};

/* "round_robin" / "least_conn" (the spec's `balance` values); false when s is neither. */
bool lb_mode_parse(const char *s, enum lb_mode *out);
const char *lb_mode_name(enum lb_mode mode);

/* The index of the backend for a new connection, or -1 when no eligible backend is left.
 * tried (NULL, or n entries) marks backends this connection already failed to reach; they are
 * skipped. *cursor is the service's round-robin state: read and advanced past the choice. */
int lb_pick(const struct lb_pick_backend *b, size_t n, enum lb_mode mode, uint32_t *cursor,
            const bool *tried);

/* Counts HTTP/1 requests in the client->backend byte stream of one connection, chunk by chunk:
 * request lines are counted when the stream starts with an HTTP method; Content-Length bodies
 * are skipped; a chunked body, an upgrade or anything unexpected stops the counting (the
 * connection still counted as one request). Bounded state, no allocation. */
enum lb_http_state {
    LB_HTTP_START,   /* before a request line */
    LB_HTTP_HEADERS, /* inside the headers of a request */
    LB_HTTP_BODY,    /* skipping a Content-Length body */
    LB_HTTP_OPAQUE,  /* not HTTP/1 (or no longer countable): nothing more is counted */
};

struct lb_http {
    enum lb_http_state state;
    uint64_t body_left;
    uint64_t content_length;
    bool stop_after; /* chunked or upgrade seen in these headers */
    unsigned line_len;
    char line[40]; /* the start of the current line (method or header name) */
};

/* Feeds len bytes; returns how many new request lines started in them. */
unsigned lb_http_feed(struct lb_http *h, const char *data, size_t len);

#endif
