/* The HTTP/1.1 server of `orch daemon --api` on the daemon's libuv loop (libh2o, the libuv
 * build; every h2o call stays in server.c because its API changes between releases). It owns
 * the listener (TCP or a unix socket), TLS and client certificates, the limits (header bytes,
 * body bytes, read timeout, connection cap), authentication before any route runs, and a
 * graceful shutdown. Routes run as api_call_run on libuv's thread pool (api/handlers.h). */
#ifndef ORCH_API_SERVER_H
#define ORCH_API_SERVER_H

#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "auth/auth.h"
#include "auth/token.h"
#include "base/error.h"

#define API_DEFAULT_LISTEN "127.0.0.1:8700"
#define API_MAX_BODY (4u << 20) /* the spec's input limit: a PUT carries one spec file */
#define API_MAX_HEADER_BYTES (16u << 10)
#define API_REQ_TIMEOUT_MS 10000
#define API_MAX_CONNS 512
#define API_SHUTDOWN_TIMEOUT_MS 10000

struct api_server_config {
    const char *listen;   /* "HOST:PORT", "[V6]:PORT", "unix:PATH" or "off"; NULL: default */
    const char *tls_cert; /* PEM chain; with tls_key turns TLS on (required off loopback) */
    const char *tls_key;
    const char *client_ca; /* PEM CA bundle: client certificates required and verified (mTLS) */
    const struct auth_config *auth;        /* borrowed; may be NULL (no JWTs, no mTLS rules) */
    const struct auth_token_store *tokens; /* borrowed; may be NULL (no orch tokens) */
    const char *state_dir;                 /* borrowed: what the routes' operations open */
    /* Limits; 0 takes the default above. */
    size_t max_body;
    size_t max_header_bytes;
    uint64_t req_timeout_ms; /* a request must arrive whole within this */
    unsigned max_conns;
    uint64_t shutdown_timeout_ms;
    /* SSE: how often the event log is polled (0: 1000 ms). */
    uint64_t events_poll_ms;
};

struct api_server;

/* Parses cfg->listen: 1 for "off" (nothing to start), 0 for a valid address (loopback set for
 * 127.0.0.0/8, ::1 and unix sockets), -ORCH_E_USAGE otherwise. Pure. */
int api_listen_parse(const char *listen, char *host, size_t host_len, int *port, bool *is_unix,
                     bool *loopback, struct orch_error *err);

/* Starts serving on loop. *out is NULL (and 0 returned) when cfg->listen is "off". An address
 * off loopback without tls_cert/tls_key is refused. Borrowed: cfg's pointers must outlive the
 * server. */
int api_server_start(uv_loop_t *loop, const struct api_server_config *cfg, struct api_server **out,
                     struct orch_error *err);

/* The bound TCP port (useful with port 0), or 0. */
int api_server_port(const struct api_server *srv);

/* Graceful shutdown: stops accepting, closes idle connections, lets in-flight requests finish
 * for at most shutdown_timeout_ms, then closes the rest, frees srv and calls done(arg) (may be
 * NULL) from the loop. srv is taken. */
void api_server_shutdown(struct api_server *srv, void (*done)(void *arg), void *arg);

#endif
