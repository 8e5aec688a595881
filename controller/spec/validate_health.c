/* Spec validation of a service's `health` probe: exactly one kind, its port resolved
 * against the service's ports, timings (docs/spec.md, health). */
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "spec/validate_internal.h"
#include "spec/yaml_tree.h"

/* Index of the port called name, or -1. */
static int port_find(const struct spec_service *svc, const char *name)
{
    for (size_t i = 0; i < svc->ports_len; i++)
        if (svc->ports[i].name != NULL && strcmp(svc->ports[i].name, name) == 0)
            return (int)i;
    return -1;
}

enum {
    F_HTTP,
    F_TCP,
    F_EXEC,
    F_PORT,
    F_INTERVAL,
    F_TIMEOUT,
    F_RETRIES,
    F_START,
    F_START_INTERVAL,
    F_N
};
static const char *const names[] = {"http",    "tcp",          "exec",
                                    "port",    "interval",     "timeout",
                                    "retries", "start_period", "start_interval"};

/* The probe kind's field (F_HTTP, F_TCP or F_EXEC), or -1 when none is given. */
static int probe_kind_field(struct vctx *v, const struct ynode *n, const char *path,
                            const struct ynode *const *keys)
{
    /* Exactly one kind: the first in the file wins, later ones are reported. */
    int kind_field = -1;
    for (int f = F_HTTP; f <= F_EXEC; f++) {
        if (keys[f] == NULL)
            continue;
        if (kind_field < 0) {
            kind_field = f;
            continue;
        }
        const struct ynode *a = keys[kind_field], *b = keys[f];
        bool b_later = b->line > a->line || (b->line == a->line && b->column > a->column);
        int later = b_later ? f : kind_field, earlier = b_later ? kind_field : f;
        v_err(v, keys[later], path, "'%s' and '%s' both given: a probe has exactly one kind",
              names[later], names[earlier]);
        kind_field = earlier;
    }
    if (kind_field < 0) {
        v_err(v, n, path, "needs exactly one probe kind: http, tcp or exec");
    }
    return kind_field;
}

/* Reads the value of the probe kind into h; *port_node is where a port name was written
 * (`tcp: NAME`). */
static void probe_kind_value(struct vctx *v, const char *path, int kind_field,
                             const struct ynode *const *vals, struct spec_health *h,
                             const struct ynode **port_node)
{
    if (kind_field == F_HTTP) {
        struct vpath p = v_path_key(path, "http", 4);
        if (v_get_str(v, vals[F_HTTP], p.s, &h->http_path)) {
            h->kind = SPEC_PROBE_HTTP;
            if (h->http_path[0] != '/')
                v_err(v, vals[F_HTTP], p.s, "must be a path starting with '/', got '%s'",
                      v_show(vals[F_HTTP]).s);
        }
    } else if (kind_field == F_TCP) {
        struct vpath p = v_path_key(path, "tcp", 3);
        const struct ynode *t = vals[F_TCP];
        if (v_visit(v, t)) {
            enum ytype ty = v_ytype_of(t);
            if (ty == YT_BOOL && (t->text[0] == 't' || t->text[0] == 'T')) {
                h->kind = SPEC_PROBE_TCP;
            } else if (ty == YT_STR && v_text_ok(v, t, p.s)) {
                h->kind = SPEC_PROBE_TCP;
                h->port = orch_xstrndup(t->text, t->len);
                *port_node = t;
            } else if (ty == YT_BOOL) {
                v_err(v, t, p.s, "must be true or a port name; leave 'health' out for no probe");
            } else if (ty != YT_STR) {
                v_type_err(v, t, p.s, "true or a port name");
            }
        }
    } else if (kind_field == F_EXEC) {
        struct vpath p = v_path_key(path, "exec", 4);
        const struct ynode *e = vals[F_EXEC];
        if (v_visit(v, e) && v_ytype_of(e) == YT_STR) {
            if (v_text_ok(v, e, p.s)) {
                if (e->len == 0) {
                    v_err(v, e, p.s, "must not be empty");
                } else {
                    h->kind = SPEC_PROBE_EXEC;
                    h->exec_argv = orch_xcalloc(4, sizeof(char *));
                    h->exec_argv[0] = orch_xstrdup("/bin/sh");
                    h->exec_argv[1] = orch_xstrdup("-c");
                    h->exec_argv[2] = orch_xstrndup(e->text, e->len);
                    h->exec_argc = 3;
                }
            }
        } else if (!v_stopped(v)) {
            v->visits--; /* get_argv counts this node again */
            if (v_get_argv(v, e, p.s, &h->exec_argv, &h->exec_argc))
                h->kind = SPEC_PROBE_EXEC;
        }
    }
}

/* `port`, unless the kind already named one (they must agree). */
static void probe_port_key(struct vctx *v, const char *path, int kind_field,
                           const struct ynode *const *keys, const struct ynode *const *vals,
                           struct spec_health *h, const struct ynode **port_node)
{
    if (vals[F_PORT] != NULL) {
        struct vpath p = v_path_key(path, "port", 4);
        char *port = NULL;
        if (v_get_str(v, vals[F_PORT], p.s, &port)) {
            if (kind_field == F_EXEC) {
                v_err(v, keys[F_PORT], path, "'port' is for http and tcp probes, not exec");
            } else if (h->port != NULL && strcmp(h->port, port) != 0) {
                v_err(v, vals[F_PORT], p.s, "'%s' conflicts with 'tcp: %s'", v_show(vals[F_PORT]).s,
                      v_show_text(h->port, strlen(h->port)).s);
            } else if (h->port == NULL) {
                h->port = orch_steal(&port);
                *port_node = vals[F_PORT];
            }
        }
        free(port);
    }
}

static void probe_timings(struct vctx *v, const char *path, const struct ynode *const *vals,
                          struct spec_health *h)
{
    if (vals[F_INTERVAL] != NULL) {
        struct vpath p = v_path_key(path, "interval", 8);
        v_get_duration(v, vals[F_INTERVAL], p.s, 1, INT64_MAX, &h->interval_ms);
    }
    if (vals[F_TIMEOUT] != NULL) {
        struct vpath p = v_path_key(path, "timeout", 7);
        v_get_duration(v, vals[F_TIMEOUT], p.s, 1, INT64_MAX, &h->timeout_ms);
    }
    if (vals[F_RETRIES] != NULL) {
        struct vpath p = v_path_key(path, "retries", 7);
        long long x;
        if (v_get_int(v, vals[F_RETRIES], p.s, 1, 100, &x))
            h->retries = (int)x;
    }
    if (vals[F_START] != NULL) {
        struct vpath p = v_path_key(path, "start_period", 12);
        v_get_duration(v, vals[F_START], p.s, 0, INT64_MAX, &h->start_period_ms);
    }
    if (vals[F_START_INTERVAL] != NULL) {
        struct vpath p = v_path_key(path, "start_interval", 14);
        v_get_duration(v, vals[F_START_INTERVAL], p.s, 1, INT64_MAX, &h->start_interval_ms);
    }
}

/* The port: named, or the first one; http and tcp probes need a tcp port. Resolves h->port
 * against svc's ports. */
static void probe_port_resolve(struct vctx *v, const char *path, struct spec_service *svc,
                               const struct ynode *kind_key, const struct ynode *port_key,
                               const struct ynode *port_node)
{
    struct spec_health *h = &svc->health;
    if (h->kind != SPEC_PROBE_HTTP && h->kind != SPEC_PROBE_TCP)
        return;
    const char *kname = h->kind == SPEC_PROBE_HTTP ? "an http" : "a tcp";
    if (h->port == NULL) {
        if (svc->ports_len == 0) {
            v_err(v, kind_key, path, "%s probe needs a port, and the service declares none", kname);
            return;
        }
        if (svc->ports[0].name == NULL)
            return; /* the port's own error says what is wrong */
        h->port = orch_xstrdup(svc->ports[0].name);
        h->port_index = 0;
        if (svc->ports[0].protocol == SPEC_PROTO_UDP)
            v_err(v, kind_key, path,
                  "the first port '%s' is udp; %s probe needs a tcp port (set 'port')",
                  v_show_text(h->port, strlen(h->port)).s, kname);
        return;
    }
    const char *where = port_node == port_key ? "port" : "tcp";
    struct vpath p = v_path_key(path, where, strlen(where));
    int idx = port_find(svc, h->port);
    if (idx < 0) {
        const char **cands = orch_xcalloc(svc->ports_len + 1, sizeof(char *));
        size_t nc = 0;
        for (size_t i = 0; i < svc->ports_len; i++)
            if (svc->ports[i].name != NULL)
                cands[nc++] = svc->ports[i].name;
        const char *s = v_suggest(h->port, cands, nc);
        struct shown pn = v_show_text(h->port, strlen(h->port));
        if (svc->ports_len == 0)
            v_err(v, port_node, p.s, "no port named '%s': the service declares no ports", pn.s);
        else if (s != NULL)
            v_err(v, port_node, p.s, "no port named '%s'; did you mean '%s'?", pn.s, s);
        else
            v_err(v, port_node, p.s, "no port named '%s' in this service's ports", pn.s);
        free(cands);
        return;
    }
    h->port_index = idx;
    if (svc->ports[idx].protocol == SPEC_PROTO_UDP)
        v_err(v, port_node, p.s, "port '%s' is udp; %s probe needs a tcp port",
              v_show_text(h->port, strlen(h->port)).s, kname);
}

void v_check_health(struct vctx *v, const struct ynode *n, const char *path,
                    struct spec_service *svc)
{
    struct spec_health *h = &svc->health;
    if (!v_expect_kind(v, n, path, YT_MAP, "a mapping"))
        return;
    const struct ynode *keys[F_N], *vals[F_N];
    v_map_fields(v, n, path, names, F_N, keys, vals);
    int kind_field = probe_kind_field(v, n, path, keys);
    const struct ynode *port_node = NULL; /* where the port name was written */
    probe_kind_value(v, path, kind_field, vals, h, &port_node);
    probe_port_key(v, path, kind_field, keys, vals, h, &port_node);
    probe_timings(v, path, vals, h);
    probe_port_resolve(v, path, svc, kind_field >= 0 ? keys[kind_field] : NULL, vals[F_PORT],
                       port_node);
}
