/* Asynchronous Docker Engine API client: libcurl's multi interface driven by a libuv loop that
 * the caller owns and runs. All callbacks run on that loop's thread.
 *
 * Layers, bottom up:
 *   docker_request      raw exchange: method + path (prefixed with /v{negotiated}) + JSON body,
 *                       completion with status, borrowed body and a classified orch_error
 *   docker_stream_*     a long-lived GET (events) delivered line by line
 *   docker_<verb>       typed helpers: build the request, parse the answer into a caller-owned
 *                       struct, then call a docker_done_fn
 *   docker_sync_*       run the loop until one request or a batch completes (CLI code, tests)
 *
 * Contract for every function that takes a callback: it returns 0 and the callback runs exactly
 * once later (never from inside the call), or it returns a negative orch_errc, fills *err and
 * the callback never runs. Closing the client completes everything still pending with
 * ORCH_E_TRANSIENT "cancelled".
 *
 * Error codes the callbacks see (see docker_status_to_error in docker_json.h):
 *   ORCH_E_ENV        engine unreachable ("cannot reach the Docker engine at unix:///...: ..."),
 *                     TLS failure, or an engine older than API 1.40
 *   ORCH_E_NOTFOUND   404: no such container / image (names the image) / network / exec
 *   ORCH_E_DOCKER     409 conflict and other refusals, malformed answers, answers above the cap
 *   ORCH_E_TRANSIENT  500/502/503 or a broken connection after the retries, a request timeout
 * 2xx and 304 (already started / stopped) are success.
 *
 * Retries: connection failures are retried for every request (nothing was sent); broken
 * connections and 500/502/503 only for idempotent requests (GET, DELETE, start, stop, kill,
 * volume create), never for POST /containers/create, /networks/create or exec create, whose
 * effect may have happened: the caller re-observes instead. Backoff doubles from
 * retry_initial_ms to retry_max_ms, for at most max_attempts attempts within retry_budget_ms.
 *
 * The client pulls an image only when asked to (docker_image_pull); the reconciler asks only
 * for images of a registry the user configured (ORCH_REGISTRY). */
#ifndef ORCH_DOCKER_CLIENT_H
#define ORCH_DOCKER_CLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <uv.h>

#include "base/error.h"
#include "docker/docker_endpoint.h"
#include "docker/docker_json.h"

/* The newest API version orch speaks (Debian's engine 20.10) and the oldest it accepts. */
#define DOCKER_API_MAX_MAJOR 1
#define DOCKER_API_MAX_MINOR 41
#define DOCKER_API_MIN_MAJOR 1
#define DOCKER_API_MIN_MINOR 40

struct docker_client;

struct docker_client_options {
    size_t max_response_bytes;  /* default 8 MiB; a larger answer fails with ORCH_E_DOCKER */
    size_t max_line_bytes;      /* streams: longest line, default 1 MiB */
    int64_t connect_timeout_ms; /* default 5000 */
    int64_t request_timeout_ms; /* default 60000; stop adds its grace period to this */
    int max_attempts;           /* default 4 (1 = no retry) */
    int64_t retry_initial_ms;   /* default 100 */
    int64_t retry_max_ms;       /* default 2000 */
    int64_t retry_budget_ms;    /* default 10000: no retry starts later than this after the
                                   first attempt */
};
void docker_client_options_default(struct docker_client_options *o);

/* New client on loop for endpoint ep (copied). opts NULL = defaults. Opens no connection: the
 * first request negotiates the API version with GET /_ping. */
int docker_client_new(uv_loop_t *loop, const struct docker_endpoint *ep,
                      const struct docker_client_options *opts, struct docker_client **out,
                      struct orch_error *err);

/* Completes every pending request with a "cancelled" error, closes the libuv handles and frees
 * the client once the loop has run their close callbacks (keep running the loop, e.g. until
 * uv_run returns 0). May be called from a docker callback, not from a stream line callback. */
void docker_client_close(struct docker_client *c);

/* Borrowed. "unix:///var/run/docker.sock" */
const char *docker_client_endpoint(const struct docker_client *c);
/* Borrowed. The negotiated version ("1.41"), or "" before the first successful ping. */
const char *docker_client_api_version(const struct docker_client *c);

struct docker_client_stats {
    size_t in_flight;     /* transfers on the multi handle now */
    size_t max_in_flight; /* the most at once since the client was created */
    size_t sockets;       /* connections being polled now */
    size_t max_sockets;   /* the most at once: proves transfers really ran in parallel */
    uint64_t attempts;    /* HTTP attempts started, the negotiation ping included */
    uint64_t retries;
};
void docker_client_stats(const struct docker_client *c, struct docker_client_stats *out);

/* ---- raw requests ------------------------------------------------------------------------- */

struct docker_response {
    long status;      /* HTTP status, 0 when no answer came */
    const char *body; /* borrowed for the callback; NUL-terminated, never NULL */
    size_t body_len;
};
/* err->code is ORCH_E_OK on success (2xx, 304). res and err are borrowed for the call. */
typedef void (*docker_response_fn)(void *data, const struct docker_response *res,
                                   const struct orch_error *err);

struct docker_request_opts {
    const char *method; /* "GET", "POST", "DELETE", "HEAD" */
    const char *path;   /* "/containers/json?all=1", prefixed with /vX.Y; escape parts yourself */
    const char *body;   /* JSON text or NULL; copied */
    const char *what;   /* for messages ("inspect container web-1"); default "METHOD PATH" */
    bool idempotent;    /* may be resent after a broken connection or a 5xx */
    int64_t timeout_ms; /* 0 = the client's request_timeout_ms */
};
int docker_request(struct docker_client *c, const struct docker_request_opts *req,
                   docker_response_fn cb, void *data, struct orch_error *err);

/* ---- streams ------------------------------------------------------------------------------ */

struct docker_stream;
/* A complete line, borrowed and NUL-terminated. */
typedef void (*docker_stream_line_fn)(void *data, const char *line, size_t len);
/* How a stream ended: the engine closed it (OK) or an error. Not called after cancel. */
typedef void (*docker_stream_end_fn)(void *data, long status, const struct orch_error *err);

/* GET path with no response size cap and no request timeout, split into lines of at most
 * max_line_bytes. *out stays valid until on_end runs or docker_stream_cancel is called. */
int docker_stream_start(struct docker_client *c, const char *path, docker_stream_line_fn on_line,
                        docker_stream_end_fn on_end, void *data, struct docker_stream **out,
                        struct orch_error *err);
/* Stops the stream; no callback of it runs afterwards. Safe inside its own line callback. */
void docker_stream_cancel(struct docker_stream *s);

/* GET /events filtered on labels (as docker_containers_list), each line parsed; a line that
 * does not parse is logged and skipped. The event is borrowed for the callback. */
typedef void (*docker_event_fn)(void *data, const struct docker_event *ev);
int docker_events_watch(struct docker_client *c, const char *const *labels, size_t n_labels,
                        docker_event_fn on_event, docker_stream_end_fn on_end, void *data,
                        struct docker_stream **out, struct orch_error *err);

/* ---- typed helpers ------------------------------------------------------------------------ */

/* status is the HTTP status (0 when none came); err->code == ORCH_E_OK means the out struct
 * passed to the helper was filled. Out structs are caller-owned, must stay valid until the
 * callback, and are untouched (zeroed) on failure; free them with their docker_json.h
 * function. */
typedef void (*docker_done_fn)(void *data, long status, const struct orch_error *err);

/* Negotiates if not done yet, then GET /_ping. */
int docker_ping(struct docker_client *c, docker_done_fn cb, void *data, struct orch_error *err);

/* GET /containers/json?all=1 with label filters ("orch.app=shop", or a bare key). */
int docker_containers_list(struct docker_client *c, const char *const *labels, size_t n_labels,
                           struct docker_container_list *out, docker_done_fn cb, void *data,
                           struct orch_error *err);
int docker_container_inspect(struct docker_client *c, const char *id,
                             struct docker_container_info *out, docker_done_fn cb, void *data,
                             struct orch_error *err);
/* POST /containers/create?name=NAME (name may be NULL). *id_out is new on success. Not
 * retried once sent. A missing image is ORCH_E_NOTFOUND naming it; nothing is pulled. */
int docker_container_create(struct docker_client *c, const char *name,
                            const struct docker_container_create *spec, char **id_out,
                            docker_done_fn cb, void *data, struct orch_error *err);
int docker_container_start(struct docker_client *c, const char *id, docker_done_fn cb, void *data,
                           struct orch_error *err);
/* SIGTERM, then SIGKILL after timeout_s seconds (the engine's ?t=); -1 uses the container's own
 * StopTimeout (set at create from update.stop_grace). */
int docker_container_stop(struct docker_client *c, const char *id, int timeout_s, docker_done_fn cb,
                          void *data, struct orch_error *err);
/* signal: "SIGKILL", "TERM", ... or NULL for SIGKILL. */
int docker_container_kill(struct docker_client *c, const char *id, const char *signal,
                          docker_done_fn cb, void *data, struct orch_error *err);
/* DELETE /containers/{id}?force=F&v=0: anonymous volumes are kept too. */
int docker_container_remove(struct docker_client *c, const char *id, bool force, docker_done_fn cb,
                            void *data, struct orch_error *err);

/* GET /images/{ref}/json: 404 (ORCH_E_NOTFOUND) means the image is not on this engine. */
int docker_image_inspect(struct docker_client *c, const char *ref, struct docker_image_info *out,
                         docker_done_fn cb, void *data, struct orch_error *err);

/* POST /images/create?fromImage=REF: pulls ref (with its tag) from its registry. A failure the
 * engine reports inside its progress stream is ORCH_E_NOTFOUND naming the image. Never call it
 * for a registry the user did not configure: a pull sends DNS queries off the machine. */
int docker_image_pull(struct docker_client *c, const char *ref, docker_done_fn cb, void *data,
                      struct orch_error *err);

/* A bridge network with labels; 409 when the name exists. *id_out new on success. */
int docker_network_create(struct docker_client *c, const char *name,
                          const struct docker_kvs *labels, char **id_out, docker_done_fn cb,
                          void *data, struct orch_error *err);
/* An app's network: docker_network_create labelled orch.app=APP and, when state_id is not
 * NULL, orch.state=STATE_ID, so that a duplicate left by an interrupted create can be told
 * apart from a network orch does not own. Not retried once sent; 409 when the engine sees the
 * name taken (it may not: two creates at once can both succeed, hence docker_networks_find). */
int docker_app_network_create(struct docker_client *c, const char *name, const char *app,
                              const char *state_id, char **id_out, docker_done_fn cb, void *data,
                              struct orch_error *err);
/* GET /networks/{name_or_id}: out->containers lists the containers attached (running ones).
 * A name that two networks share is refused by the engine ("network X is ambiguous"):
 * find them with docker_networks_find and inspect each by id. */
int docker_network_inspect(struct docker_client *c, const char *name_or_id,
                           struct docker_network *out, docker_done_fn cb, void *data,
                           struct orch_error *err);
int docker_networks_list(struct docker_client *c, const char *const *labels, size_t n_labels,
                         struct docker_network_list *out, docker_done_fn cb, void *data,
                         struct orch_error *err);

/* What docker_networks_find selects; every field is optional (all empty = every network). */
struct docker_network_filter {
    const char *name;          /* exact name, e.g. "orch-shop"; NULL = any */
    const char *const *labels; /* all must match: "orch.app=shop", "orch.state=ID" or a key */
    size_t n_labels;
};
/* GET /networks filtered by name and labels. The engine matches names by substring; the answer
 * is filtered again here, so *out holds only networks called exactly f->name (in the engine's
 * order; no "Containers": inspect each by id for those). */
int docker_networks_find(struct docker_client *c, const struct docker_network_filter *f,
                         struct docker_network_list *out, docker_done_fn cb, void *data,
                         struct orch_error *err);

/* DELETE /networks/{name_or_id}. 404 (ORCH_E_NOTFOUND) when gone; a network still in use is
 * ORCH_E_DOCKER (403 from the engine). */
int docker_network_remove(struct docker_client *c, const char *name_or_id, docker_done_fn cb,
                          void *data, struct orch_error *err);
/* As docker_network_remove, but only by full id (64 hex digits; anything else is
 * ORCH_E_INVALID at the call): removing one of two networks that share a name must not
 * depend on which one the engine resolves the name to. */
int docker_network_remove_id(struct docker_client *c, const char *id, docker_done_fn cb, void *data,
                             struct orch_error *err);

/* Creating an existing volume succeeds and changes nothing (the engine's behaviour). */
int docker_volume_create(struct docker_client *c, const char *name, const struct docker_kvs *labels,
                         docker_done_fn cb, void *data, struct orch_error *err);
/* GET /volumes filtered on labels; the names are appended to *names. */
int docker_volumes_list(struct docker_client *c, const char *const *labels, size_t n_labels,
                        struct orch_strv *names, docker_done_fn cb, void *data,
                        struct orch_error *err);
int docker_volume_remove(struct docker_client *c, const char *name, docker_done_fn cb, void *data,
                         struct orch_error *err);

/* exec: create (detached, nothing attached), start, then poll inspect until !running. */
int docker_exec_create(struct docker_client *c, const char *container_id,
                       const struct orch_strv *cmd, char **exec_id_out, docker_done_fn cb,
                       void *data, struct orch_error *err);
int docker_exec_start(struct docker_client *c, const char *exec_id, docker_done_fn cb, void *data,
                      struct orch_error *err);
int docker_exec_inspect(struct docker_client *c, const char *exec_id, struct docker_exec_info *out,
                        docker_done_fn cb, void *data, struct orch_error *err);

/* ---- synchronous use ---------------------------------------------------------------------- */

/* One slot per request: pass docker_sync_done as the callback and the slot as its data. */
struct docker_sync {
    bool done;
    long status;
    struct orch_error err;
};
void docker_sync_done(void *sync, long status, const struct orch_error *err);

/* Runs the client's loop until every slot in s[0..n) is done. Returns 0 when all succeeded,
 * else the first failed slot's error (copied into *err). Other handles on the loop keep
 * running meanwhile. */
int docker_sync_wait(struct docker_client *c, struct docker_sync *s, size_t n,
                     struct orch_error *err);

#endif
