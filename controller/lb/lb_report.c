/* The balancer's published figures (lb_report.h): JSON in the state dir, written by the daemon
 * and read by other processes. Owns the file's shape; json_t stays in this file. */
#include "lb/lb_report.h"

#include <errno.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

int lb_report_write(const char *dir, const struct lb_report *r, struct orch_error *err)
{
    json_t *ports = json_array();
    for (size_t i = 0; i < r->n; i++) {
        const struct lb_report_port *p = &r->v[i];
        json_t *o = json_object();
        json_object_set_new(o, "app", json_string(p->app));
        json_object_set_new(o, "service", json_string(p->service));
        json_object_set_new(o, "port", json_string(p->port));
        json_object_set_new(o, "listen", json_string(p->listen));
        json_object_set_new(o, "balance", json_string(p->balance));
        json_object_set_new(o, "error", json_string(p->error ? p->error : ""));
        json_object_set_new(o, "connections", json_integer((json_int_t)p->connections));
        json_object_set_new(o, "active", json_integer((json_int_t)p->active));
        json_object_set_new(o, "rejected", json_integer((json_int_t)p->rejected));
        json_object_set_new(o, "connect_failed", json_integer((json_int_t)p->connect_failed));
        json_object_set_new(o, "requests", json_integer((json_int_t)p->requests));
        json_object_set_new(o, "bytes_in", json_integer((json_int_t)p->bytes_in));
        json_object_set_new(o, "bytes_out", json_integer((json_int_t)p->bytes_out));
        json_object_set_new(o, "requests_per_second", json_real(p->requests_per_second));
        json_object_set_new(o, "connections_per_second", json_real(p->connections_per_second));
        json_object_set_new(o, "backends", json_integer(p->backends));
        json_object_set_new(o, "backends_usable", json_integer(p->backends_usable));
        json_array_append_new(ports, o);
    }
    json_t *root = json_pack("{s:I, s:I, s:o}", "written_ms", (json_int_t)r->written_ms, "pid",
                             (json_int_t)r->pid, "ports", ports);
    _cleanup_free_ char *path = orch_xasprintf("%s/%s", dir, LB_REPORT_FILE);
    _cleanup_free_ char *tmp = orch_xasprintf("%s.tmp", path);
    int rc = json_dump_file(root, tmp, JSON_COMPACT | JSON_SORT_KEYS);
    json_decref(root);
    if (rc != 0 || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return orch_fail(err, ORCH_E_IO, e, "cannot write %s", path);
    }
    return 0;
}

static char *str_of(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return orch_xstrdup(s ? s : "");
}

static uint64_t u64_of(json_t *o, const char *key)
{
    json_int_t x = json_integer_value(json_object_get(o, key));
    return x > 0 ? (uint64_t)x : 0;
}

int lb_report_read(const char *dir, struct lb_report *out, struct orch_error *err)
{
    memset(out, 0, sizeof(*out));
    _cleanup_free_ char *path = orch_xasprintf("%s/%s", dir, LB_REPORT_FILE);
    if (access(path, F_OK) != 0)
        return orch_fail(err, ORCH_E_NOTFOUND, errno, "no %s", path);
    json_error_t je;
    json_t *root = json_load_file(path, 0, &je);
    json_t *ports = json_object_get(root, "ports");
    if (root == NULL || !json_is_array(ports)) {
        json_decref(root);
        return orch_fail(err, ORCH_E_INVALID, 0, "%s: not a balancer report", path);
    }
    out->written_ms = json_integer_value(json_object_get(root, "written_ms"));
    out->pid = (long)json_integer_value(json_object_get(root, "pid"));
    out->v = orch_xcalloc(json_array_size(ports) + 1, sizeof(*out->v));
    for (size_t i = 0; i < json_array_size(ports); i++) {
        json_t *o = json_array_get(ports, i);
        if (!json_is_object(o))
            continue;
        struct lb_report_port *p = &out->v[out->n++];
        p->app = str_of(o, "app");
        p->service = str_of(o, "service");
        p->port = str_of(o, "port");
        p->listen = str_of(o, "listen");
        p->balance = str_of(o, "balance");
        p->error = str_of(o, "error");
        p->connections = u64_of(o, "connections");
        p->active = u64_of(o, "active");
        p->rejected = u64_of(o, "rejected");
        p->connect_failed = u64_of(o, "connect_failed");
        p->requests = u64_of(o, "requests");
        p->bytes_in = u64_of(o, "bytes_in");
        p->bytes_out = u64_of(o, "bytes_out");
        p->requests_per_second = json_number_value(json_object_get(o, "requests_per_second"));
        p->connections_per_second = json_number_value(json_object_get(o, "connections_per_second"));
        p->backends = (unsigned)u64_of(o, "backends");
        p->backends_usable = (unsigned)u64_of(o, "backends_usable");
    }
    json_decref(root);
    return 0;
}

void lb_report_free(struct lb_report *r)
{
    for (size_t i = 0; i < r->n; i++) {
        struct lb_report_port *p = &r->v[i];
        free(p->app);
        free(p->service);
        free(p->port);
        free(p->listen);
        free(p->balance);
        free(p->error);
    }
    free(r->v);
    memset(r, 0, sizeof(*r));
}
