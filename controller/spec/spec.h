/* The spec model (docs/spec.md): YAML text -> a typed, validated struct spec_app with
 * every default filled in, or a list of positioned diagnostics. Pure: the only input is the
 * text and the names it is told (file name for messages, folder for relative bind mounts);
 * it reads no files and touches no clock. */
#ifndef ORCH_SPEC_SPEC_H
#define ORCH_SPEC_SPEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define SPEC_NAME_MAX 40 /* app, service and port names */
#define SPEC_MAX_REPLICAS 1000
#define SPEC_MAX_INPUT (4u << 20) /* bytes of YAML accepted; larger files are refused */

/* One diagnostic: "FILE:LINE:COLUMN: error: MESSAGE". line and column are 1-based. */
struct spec_diag {
    int line;
    int column;
    char *message;
};

struct spec_diags {
    struct spec_diag *v;
    size_t n;
};

void spec_diags_free(struct spec_diags *d);
/* Writes every diagnostic as "FILE:LINE:COLUMN: error: MESSAGE\n" into a new string. */
char *spec_diags_format(const struct spec_diags *d, const char *file);

enum spec_protocol { SPEC_PROTO_TCP, SPEC_PROTO_UDP };

/* How the daemon's balancer spreads the connections of a published port. */
enum spec_balance { SPEC_BALANCE_ROUND_ROBIN, SPEC_BALANCE_LEAST_CONN };

struct spec_port {
    char *name;
    int container; /* 1..65535 */
    enum spec_protocol protocol;
    /* A stable host port served by the daemon's load balancer (0: none). Not part of the
     * template: changing it creates no revision (docs/spec.md, ports). */
    int published;
    enum spec_balance balance; /* default round_robin */
    int published_line;        /* where `published` was written, for later messages (0: unknown) */
    int published_column;
};

enum spec_probe_kind { SPEC_PROBE_NONE, SPEC_PROBE_HTTP, SPEC_PROBE_TCP, SPEC_PROBE_EXEC };

struct spec_health {
    enum spec_probe_kind kind;
    char *http_path;  /* SPEC_PROBE_HTTP: starts with '/' */
    char **exec_argv; /* SPEC_PROBE_EXEC: NULL-terminated argv */
    size_t exec_argc;
    char *port;                /* HTTP/TCP: port name (defaults to the first port) */
    int port_index;            /* index into spec_service.ports, -1 for none */
    int64_t interval_ms;       /* default 2000 */
    int64_t timeout_ms;        /* default 1000 */
    int retries;               /* default 3 */
    int64_t start_period_ms;   /* default 0 */
    int64_t start_interval_ms; /* default 250: probe period until a new instance's first
                                  verdict (SPEC_START_INTERVAL_MS) */
};

#define SPEC_START_INTERVAL_MS 250

/* An int or a percentage ("25%"). */
struct spec_scalar_or_pct {
    int value;
    bool percent;
};

enum spec_strategy { SPEC_STRATEGY_ROLLING, SPEC_STRATEGY_RECREATE };

struct spec_update {
    enum spec_strategy strategy;
    struct spec_scalar_or_pct max_surge;       /* default 1 */
    struct spec_scalar_or_pct max_unavailable; /* default 0 */
    int64_t min_ready_ms;                      /* default 0 */
    int64_t deadline_ms;                       /* default 120000 */
    bool auto_rollback;                        /* default true */
    int64_t stop_grace_ms;                     /* default 10000 */
};

#define SPEC_AUTOSCALE_DELAY_MS 300000 /* scale_down_delay's default: 5m */
#define SPEC_MAX_REQUESTS 1000000      /* autoscale.requests' upper bound (per second) */

struct spec_autoscale {
    bool enabled;
    int min;
    int max;
    int cpu;                     /* target average CPU percent per instance; 0: no CPU target */
    int requests;                /* target requests per second per instance; 0: none */
    int64_t scale_down_delay_ms; /* default SPEC_AUTOSCALE_DELAY_MS */
};

struct spec_resources {
    int64_t nano_cpus;    /* 0: unlimited; cpus: 0.5 -> 500000000 */
    int64_t memory_bytes; /* 0: unlimited */
};

enum spec_volume_kind { SPEC_VOLUME_NAMED, SPEC_VOLUME_BIND };

struct spec_volume {
    enum spec_volume_kind kind;
    char *source; /* NAMED: the name in the spec (created as orch-APP-NAME); BIND: absolute path */
    char *target; /* absolute path in the container */
    bool read_only;
};

struct spec_kv {
    char *key;
    char *value;
};

struct spec_service {
    char *name;
    char *image;
    int replicas; /* default 1 */
    bool has_command;
    char **command; /* NULL-terminated when has_command */
    size_t command_len;
    bool has_entrypoint;
    char **entrypoint;
    size_t entrypoint_len;
    struct spec_kv *env; /* sorted by key */
    size_t env_len;
    struct spec_kv *labels; /* sorted by key */
    size_t labels_len;
    struct spec_port *ports;
    size_t ports_len;
    struct spec_health health;
    struct spec_update update;
    struct spec_autoscale autoscale;
    struct spec_resources resources;
    struct spec_volume *volumes;
    size_t volumes_len;
    char **depends_on; /* NULL-terminated, each a service of the same app */
    size_t depends_on_len;
    int line; /* where the service was declared, for later messages */
};

struct spec_app {
    int version; /* 1 */
    char *app;
    struct spec_service *services; /* in file order */
    size_t services_len;
};

struct spec_parse_options {
    const char *file;     /* name used in diagnostics ("-" for standard input) */
    const char *base_dir; /* folder that relative bind mounts resolve against; absolute */
};

/* Parses and validates text[0..len). On success returns 0 and fills *out (new; free with
 * spec_app_free). On failure returns -ORCH_E_INVALID, leaves *out zeroed and fills *diags
 * (new) with every error found, sorted by position: at most 100, then one "too many errors"
 * line. err gets a one-line summary (may be NULL; so may opts). Hostile input stays cheap:
 * more than SPEC_MAX_INPUT bytes, nesting deeper than 64 or aliases that would multiply the
 * document are refused with a diagnostic. Columns count characters, as libyaml does. */
int spec_parse(const char *text, size_t len, const struct spec_parse_options *opts,
               struct spec_app *out, struct spec_diags *diags, struct orch_error *err);

void spec_app_free(struct spec_app *app);

/* True when a port of a service of app has `published`. */
bool spec_app_publishes(const struct spec_app *app);

/* Borrowed: the service called name, or NULL. */
const struct spec_service *spec_app_find(const struct spec_app *app, const char *name);

/* Canonical serialisation of a service's template (everything but replicas and autoscale) as
 * compact JSON with sorted keys and every default spelled out: new string. It includes the
 * service name; depends_on is written sorted, since its order means nothing. */
char *spec_template_canonical(const struct spec_service *svc);

/* The whole service (template plus replicas and autoscale) as canonical JSON: new string. */
char *spec_service_to_json(const struct spec_service *svc);

/* Parses JSON made by spec_service_to_json back into *out (new). Used by the store. On
 * failure returns -ORCH_E_INVALID and leaves *out zeroed. */
int spec_service_from_json(const char *json, struct spec_service *out, struct orch_error *err);

/* Parses JSON made by spec_template_canonical (a stored revision) into *out (new): the
 * template fields; replicas is 0 and autoscale disabled, since a template has no scale. */
int spec_template_from_json(const char *json, struct spec_service *out, struct orch_error *err);

/* The service as it is when it goes back to another revision (rollback, undo): that revision's
 * template (template_json, from spec_template_canonical) with the replicas and autoscale of the
 * service as it is now (service_json, from spec_service_to_json). New string, or NULL with *err
 * filled when either does not parse. */
char *spec_service_rebase_json(const char *template_json, const char *service_json,
                               struct orch_error *err);

/* SHA-256 of spec_template_canonical(svc), as 64 lowercase hex digits plus NUL. */
void spec_template_hash(const struct spec_service *svc, char out[65]);

void spec_service_free(struct spec_service *svc);

/* Unit parsers (strict; no sign, no spaces, no fractions unless stated). Return 0 or -1. */
int spec_parse_duration(const char *s, int64_t *out_ms); /* 500ms 2s 1m30s 1h 0 */
int spec_parse_size(const char *s, int64_t *out_bytes);  /* 1048576 512K 256M 1G 512Mi 1Gi */
int spec_parse_pct(const char *s, struct spec_scalar_or_pct *out); /* 3 or 25% */

/* True when ref is an image reference the spec accepts:
 * [host[:port]/]path[:tag][@sha256:64hex], lowercase path components. */
bool spec_image_ref_valid(const char *ref);

/* Resolves an int-or-percent against a replica count: round_up for max_surge. */
int spec_resolve_pct(struct spec_scalar_or_pct v, int replicas, bool round_up);

#endif
