/* The Engine API's JSON, mapped to and from plain structs: request bodies for container,
 * exec, network and volume creation, response parsers, error classification, query strings
 * and the line framing of the events stream. Pure: no I/O, no clock, no globals; json_t never
 * leaves docker_json.c.
 *
 * Parsers follow one rule for untrusted input: a field that is absent or null takes its zero
 * value; a field that is present with the wrong type or out of range is an error
 * (-ORCH_E_DOCKER naming the field); required fields (ids) must be present. On failure the
 * output is left zeroed, so freeing it is always safe. */
#ifndef ORCH_DOCKER_JSON_H
#define ORCH_DOCKER_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/util.h"

/* ---- shared pieces ------------------------------------------------------------------------ */

/* An owned key/value list (labels, env, event attributes), in the order given or received
 * (parsers sort labels by key so output is deterministic). */
struct docker_kv {
    char *key;
    char *value;
};
struct docker_kvs {
    struct docker_kv *v;
    size_t n;
};
void docker_kvs_add(struct docker_kvs *kvs, const char *key, const char *value); /* copies */
const char *docker_kvs_get(const struct docker_kvs *kvs, const char *key);       /* borrowed */
void docker_kvs_free(struct docker_kvs *kvs);

/* ---- request bodies ----------------------------------------------------------------------- */

struct docker_port_spec {
    int port;             /* container port, 1..65535 */
    const char *protocol; /* "tcp" (NULL means tcp) or "udp" */
};

enum docker_mount_type {
    DOCKER_MOUNT_VOLUME, /* source is a volume name (orch-APP-NAME) */
    DOCKER_MOUNT_BIND,   /* source is an absolute host path */
};

struct docker_mount {
    enum docker_mount_type type;
    const char *source;
    const char *target; /* absolute path in the container */
    bool read_only;
};

/* Everything POST /containers/create needs. All pointers are borrowed. An empty cmd or
 * entrypoint keeps the image's own. */
struct docker_container_create {
    const char *image;                    /* required */
    struct orch_strv cmd;                 /* Cmd */
    struct orch_strv entrypoint;          /* Entrypoint */
    struct docker_kvs env;                /* Env, sent as KEY=VALUE */
    struct docker_kvs labels;             /* Labels: orch.app, orch.service, orch.revision, ... */
    const struct docker_port_spec *ports; /* ExposedPorts + PortBindings */
    size_t n_ports;
    const char *publish_address;       /* HostIp of every binding; NULL means 127.0.0.1 */
    int64_t nano_cpus;                 /* HostConfig.NanoCpus; 0 = unlimited */
    int64_t memory_bytes;              /* HostConfig.Memory; 0 = unlimited */
    const struct docker_mount *mounts; /* HostConfig.Mounts */
    size_t n_mounts;
    const char *network;       /* NetworkingConfig endpoint; NULL = the default bridge */
    const char *network_alias; /* alias on that network: the service name */
    bool has_stop_grace;
    int64_t stop_grace_ms; /* StopTimeout, rounded up to whole seconds */
};

/* New JSON text in *out. -ORCH_E_INVALID when a field cannot be sent (no image, port out of
 * range, unknown protocol, relative mount target, a label or env key that is empty). */
int docker_json_container_create(const struct docker_container_create *in, char **out,
                                 struct orch_error *err);

/* POST /containers/{id}/exec body: runs cmd detached, nothing attached. */
int docker_json_exec_create(const struct orch_strv *cmd, char **out, struct orch_error *err);
/* POST /exec/{id}/start body: {"Detach": true, "Tty": false}. Never fails. */
char *docker_json_exec_start(void);

/* POST /networks/create body: a bridge network with labels, refusing duplicates (as far as
 * the engine can: two creates at once may still both succeed). */
int docker_json_network_create(const char *name, const struct docker_kvs *labels, char **out,
                               struct orch_error *err);
/* POST /volumes/create body: local driver with labels. */
int docker_json_volume_create(const char *name, const struct docker_kvs *labels, char **out,
                              struct orch_error *err);

/* ---- query strings and paths -------------------------------------------------------------- */

/* New: s percent-encoded for a URL. Unreserved characters stay; with keep_path_chars, '/', ':'
 * and '@' stay too (image references in a path). */
char *docker_url_escape(const char *s, bool keep_path_chars);

/* New: the URL-encoded value of a `filters` parameter selecting containers (or networks,
 * volumes) that carry every label in `labels` ("orch.app=shop" or just "orch.app"). */
char *docker_label_filter(const char *const *labels, size_t n);
/* New: as docker_label_filter, plus {"name": [name]} when name is not NULL (a substring match
 * on the engine's side: see docker_network_list_keep_name). */
char *docker_name_label_filter(const char *name, const char *const *labels, size_t n);

/* ---- responses ---------------------------------------------------------------------------- */

struct docker_api_version {
    int major;
    int minor;
};
/* "1.41" -> {1, 41}. -ORCH_E_DOCKER on anything else. */
int docker_api_version_parse(const char *s, struct docker_api_version *out, struct orch_error *err);
/* Negotiation: min(engine, max); -ORCH_E_ENV when the engine is older than min. */
int docker_api_version_negotiate(struct docker_api_version engine, struct docker_api_version min,
                                 struct docker_api_version max, struct docker_api_version *out,
                                 struct orch_error *err);

/* New: the "message" of an error body, or NULL when the body is not such an object. */
char *docker_json_error_message(const char *body, size_t len);

/* How a finished HTTP exchange maps to an orch error. `what` names the request for messages
 * ("create container web-1"). 2xx and 304 (already started/stopped) are success and return 0;
 * 404 -> ORCH_E_NOTFOUND ("no such image: X" keeps the image's name); 409 -> ORCH_E_DOCKER
 * ("conflict: ..."); 500/502/503 -> ORCH_E_TRANSIENT; other statuses -> ORCH_E_DOCKER. */
int docker_status_to_error(long status, const char *body, size_t len, const char *what,
                           struct orch_error *err);
/* True for the statuses worth retrying (the engine restarting or overloaded). */
bool docker_status_is_transient(long status);

/* A published port as the list endpoint reports it. */
struct docker_port {
    char *ip; /* "127.0.0.1"; NULL when not published */
    int private_port;
    int public_port; /* 0 when not published */
    char *type;      /* "tcp" | "udp" | "sctp" */
};

/* One row of GET /containers/json. */
struct docker_container {
    char *id;
    struct orch_strv names; /* without the leading '/' */
    char *image;
    struct docker_kvs labels;
    char *state;     /* "created" | "running" | "exited" | ... */
    char *status;    /* human text: "Up 3 minutes" */
    int64_t created; /* unix seconds */
    struct docker_port *ports;
    size_t n_ports;
    /* NetworkSettings.Networks: the names of the networks it is attached to; has_networks is
     * false when the answer had no such object (nothing can be said then). */
    struct orch_strv networks;
    bool has_networks;
};
struct docker_container_list {
    struct docker_container *v;
    size_t n;
};
int docker_json_parse_container_list(const char *body, size_t len,
                                     struct docker_container_list *out, struct orch_error *err);
void docker_container_list_free(struct docker_container_list *l);

/* A port binding from NetworkSettings.Ports: "8080/tcp": [{HostIp, HostPort}]. */
struct docker_port_binding {
    int container_port;
    char *protocol;
    char *host_ip; /* NULL when the port is exposed but not bound */
    int host_port; /* 0 when not bound */
};
struct docker_network_attachment {
    char *network;    /* name */
    char *ip_address; /* "" when not connected yet */
};

/* GET /containers/{id}/json. Timestamps are also given as ms since the epoch: 0 for the
 * engine's "0001-01-01T00:00:00Z" (never). */
struct docker_container_info {
    char *id;
    char *name;   /* without the leading '/' */
    char *image;  /* Config.Image: the reference it was created from */
    char *status; /* State.Status */
    bool running;
    bool oom_killed;
    int exit_code;
    char *error;      /* State.Error */
    char *started_at; /* RFC 3339 as sent */
    char *finished_at;
    int64_t started_at_ms;
    int64_t finished_at_ms;
    char *health; /* State.Health.Status ("starting", "healthy", "unhealthy"); NULL = none */
    int restart_count;
    struct docker_kvs labels; /* Config.Labels */
    struct docker_port_binding *ports;
    size_t n_ports;
    struct docker_network_attachment *networks;
    size_t n_networks;
};
int docker_json_parse_container_info(const char *body, size_t len,
                                     struct docker_container_info *out, struct orch_error *err);
void docker_container_info_free(struct docker_container_info *ci);

/* {"Id": "...", ...}: container, exec and network creation answers. New string in *id. */
int docker_json_parse_id(const char *body, size_t len, char **id, struct orch_error *err);

/* GET /images/{name}/json: the image exists; its id and tags. */
struct docker_image_info {
    char *id;
    struct orch_strv repo_tags;
};
int docker_json_parse_image_info(const char *body, size_t len, struct docker_image_info *out,
                                 struct orch_error *err);
void docker_image_info_free(struct docker_image_info *ii);

/* A container attached to a network ("Containers" of GET /networks/{id}: running containers
 * have an endpoint there, created or stopped ones do not). */
struct docker_network_endpoint {
    char *id;   /* the container's full id */
    char *name; /* its name, without '/' */
    char *ipv4; /* "172.18.0.2/16"; NULL when none */
};

/* GET /networks/{id} and each element of GET /networks. */
struct docker_network {
    char *id;
    char *name;
    char *driver;
    char *created; /* "Created" as the engine wrote it (RFC 3339, nanoseconds); NULL if absent */
    struct docker_kvs labels;
    /* GET /networks/{id} only (the list leaves "Containers" empty): sorted by id. */
    struct docker_network_endpoint *containers;
    size_t n_containers;
};
int docker_json_parse_network(const char *body, size_t len, struct docker_network *out,
                              struct orch_error *err);
void docker_network_free(struct docker_network *n);
struct docker_network_list {
    struct docker_network *v;
    size_t n;
};
int docker_json_parse_network_list(const char *body, size_t len, struct docker_network_list *out,
                                   struct orch_error *err);
void docker_network_list_free(struct docker_network_list *l);
/* Keeps only the networks called exactly name (all when name is NULL), in order; returns how
 * many remain. The engine's
 * `name` filter matches substrings ("orch-shop" also finds "orch-shop2"), so a lookup by name
 * filters its answer again with this. */
size_t docker_network_list_keep_name(struct docker_network_list *l, const char *name);

/* GET /volumes: {"Volumes": [{"Name": ...}, ...]} -> the names, into *out (appended). */
int docker_json_parse_volume_names(const char *body, size_t len, struct orch_strv *out,
                                   struct orch_error *err);

/* GET /exec/{id}/json. exit_code is meaningful only once running is false. */
struct docker_exec_info {
    bool running;
    int exit_code;
    int pid;
    char *container_id;
};
int docker_json_parse_exec_info(const char *body, size_t len, struct docker_exec_info *out,
                                struct orch_error *err);
void docker_exec_info_free(struct docker_exec_info *ei);

/* One line of GET /events. */
struct docker_event {
    char *type;   /* "container", "network", "image", ... */
    char *action; /* "start", "die", "health_status: healthy", ... */
    char *actor_id;
    struct docker_kvs attributes; /* Actor.Attributes: the labels plus name, image, exitCode */
    int64_t time_nano;
};
int docker_json_parse_event(const char *line, size_t len, struct docker_event *out,
                            struct orch_error *err);
void docker_event_free(struct docker_event *ev);

/* RFC 3339 with optional fraction ("2026-11-27T01:53:51.740247357Z", "...+02:00") -> ms since
 * the epoch. The engine's zero time (year 1) gives 0. -ORCH_E_DOCKER when malformed. */
int docker_time_parse(const char *s, int64_t *out_ms, struct orch_error *err);

/* The failure reported inside the 200 progress stream of POST /images/create (an object with
 * an "error" member), as a new string, or NULL when the pull succeeded. */
char *docker_json_pull_error(const char *body, size_t len);

/* The registry host of an image reference ("127.0.0.1:5000" of "127.0.0.1:5000/web:1") into
 * out; false for a Docker Hub image (no registry component) or when out is too small. */
bool docker_image_registry(const char *ref, char *out, size_t out_len);

/* True when ref's registry is one of the comma-separated hosts in allowed (ORCH_REGISTRY). A
 * Docker Hub image is never allowed: orch pulls only from registries named explicitly. */
bool docker_registry_allowed(const char *ref, const char *allowed);

/* ---- line framing for streams ------------------------------------------------------------- */

/* Splits a byte stream into '\n'-terminated lines (a trailing '\r' is dropped, empty lines are
 * skipped), holding at most max_line bytes of an unfinished line. */
struct docker_lines {
    struct orch_buf partial;
    size_t max_line;
};
/* Called per complete line; the line is borrowed and NUL-terminated. A non-zero return stops
 * the feed and is returned by docker_lines_feed. */
typedef int (*docker_line_fn)(void *data, const char *line, size_t len);
/* Returns 0, the callback's non-zero value, or -ORCH_E_DOCKER when a line exceeds max_line. */
int docker_lines_feed(struct docker_lines *ls, const char *data, size_t len, docker_line_fn fn,
                      void *fn_data, struct orch_error *err);
void docker_lines_free(struct docker_lines *ls);

#endif
