/* JSON renderings of ops results (jansson stays inside this file). Key order and formatting are
 * part of the user contract (docs/cli.md): keys may be added, never renamed or reordered. */
#include <jansson.h>

#include "ops/ops_json.h"

static char *dump(json_t *root)
{
    char *s = json_dumps(root, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    json_decref(root);
    if (s == NULL)
        abort(); /* only on allocation failure, as orch_xmalloc */
    char *copy = orch_xstrdup(s);
    free(s);
    return copy;
}

/* "autoscale": null, or its settings, counts and (status only) the last decision. */
static json_t *autoscale_json(const struct ops_autoscale_view *a, bool with_decision)
{
    if (!a->enabled)
        return json_null();
    json_t *targets = json_object();
    if (a->cpu > 0)
        json_object_set_new(targets, "cpu", json_integer(a->cpu));
    if (a->requests > 0)
        json_object_set_new(targets, "requests", json_integer(a->requests));
    json_t *o = json_pack("{s:i, s:i, s:o, s:I, s:i, s:i}", "min", a->min, "max", a->max, "targets",
                          targets, "scale_down_delay_ms", (json_int_t)a->scale_down_delay_ms,
                          "current", a->current, "desired", a->desired);
    if (!with_decision)
        return o;
    if (a->have_decision) {
        char when[40];
        orch_format_rfc3339(a->decided_ms, when, sizeof(when));
        json_object_set_new(o, "last_decision",
                            json_pack("{s:s, s:b, s:s}", "time", when, "scaled", a->scaled,
                                      "reason", a->reason ? a->reason : ""));
    } else {
        json_object_set_new(o, "last_decision", json_null());
    }
    return o;
}

char *ops_get_json(const struct ops_get_result *r)
{
    json_t *list = json_array();
    for (size_t i = 0; i < r->n; i++) {
        const struct ops_service_row *v = &r->v[i];
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:I, s:{s:i, s:i, s:i, s:i}, s:{s:s}, s:o}", "app", v->app,
                            "service", v->service, "revision", (json_int_t)v->revision, "replicas",
                            "desired", v->desired, "running", v->running, "healthy", v->healthy,
                            "updated", v->updated, "rollout", "state", v->rollout_state,
                            "autoscale", autoscale_json(&v->autoscale, false)));
    }
    return dump(json_pack("{s:o}", "services", list));
}

static json_t *traffic_port_json(const struct ops_traffic *t)
{
    json_t *o = json_pack("{s:s, s:s, s:s, s:b, s:s}", "port", t->port, "published", t->published,
                          "balance", t->balance, "served", t->served, "error", t->error);
    json_object_set_new(o, "connections", json_integer((json_int_t)t->connections));
    json_object_set_new(o, "active", json_integer((json_int_t)t->active));
    json_object_set_new(o, "rejected", json_integer((json_int_t)t->rejected));
    json_object_set_new(o, "requests", json_integer((json_int_t)t->requests));
    json_object_set_new(o, "requests_per_second", json_real(t->requests_per_second));
    json_object_set_new(o, "connections_per_second", json_real(t->connections_per_second));
    json_object_set_new(o, "bytes_in", json_integer((json_int_t)t->bytes_in));
    json_object_set_new(o, "bytes_out", json_integer((json_int_t)t->bytes_out));
    return o;
}

/* "traffic": the service's figures (its first published port's, summed over all of them when
 * it publishes several) and "ports" with each port's. */
static json_t *traffic_json(const struct ops_traffic *t, size_t n)
{
    struct ops_traffic sum = t[0];
    json_t *ports = json_array();
    for (size_t i = 0; i < n; i++) {
        json_array_append_new(ports, traffic_port_json(&t[i]));
        if (i == 0)
            continue;
        sum.served = sum.served && t[i].served;
        sum.connections += t[i].connections;
        sum.active += t[i].active;
        sum.rejected += t[i].rejected;
        sum.requests += t[i].requests;
        sum.bytes_in += t[i].bytes_in;
        sum.bytes_out += t[i].bytes_out;
        sum.requests_per_second += t[i].requests_per_second;
        sum.connections_per_second += t[i].connections_per_second;
    }
    json_t *o = traffic_port_json(&sum);
    json_object_del(o, "port");
    json_object_set_new(o, "ports", ports);
    return o;
}

char *ops_status_json(const struct ops_status_result *r)
{
    json_t *inst = json_array();
    for (size_t i = 0; i < r->n_instances; i++) {
        const struct ops_instance *ri = &r->instances[i];
        json_t *eps = json_object();
        for (size_t k = 0; k < ri->n_endpoints; k++)
            json_object_set_new(eps, ri->endpoint_names[k], json_string(ri->endpoints[k]));
        json_array_append_new(inst,
                              json_pack("{s:s, s:s, s:I, s:s, s:s, s:o}", "id", ri->id, "name",
                                        ri->name, "revision", (json_int_t)ri->revision, "state",
                                        ri->state, "health", ri->health, "endpoints", eps));
    }
    const struct ops_rollout_end *ro = &r->rollout;
    json_t *root =
        json_pack("{s:s, s:s, s:I, s:{s:i, s:i, s:i, s:i}, s:{s:s, s:I, s:s}, s:o}", "app", r->app,
                  "service", r->service, "revision", (json_int_t)r->revision, "replicas", "desired",
                  r->desired, "running", r->running, "healthy", r->healthy, "updated", r->updated,
                  "rollout", "state", ro->have ? ro->state : "none", "revision",
                  (json_int_t)(ro->have ? ro->to_revision : r->revision), "message",
                  ro->have && ro->message ? ro->message : "", "instances", inst);
    json_t *ev = json_array();
    for (size_t i = 0; i < r->n_events; i++) {
        char when[40];
        orch_format_rfc3339(r->events[i].time_ms, when, sizeof(when));
        json_array_append_new(ev, json_pack("{s:s, s:s, s:s}", "time", when, "kind",
                                            r->events[i].kind, "message", r->events[i].message));
    }
    json_object_set_new(root, "events", ev);
    json_object_set_new(root, "autoscale", autoscale_json(&r->autoscale, true));
    if (r->n_traffic > 0)
        json_object_set_new(root, "traffic", traffic_json(r->traffic, r->n_traffic));
    return dump(root);
}

char *ops_history_json(const struct ops_history_result *r)
{
    json_t *list = json_array();
    for (size_t i = 0; i < r->n; i++) {
        const struct ops_revision *v = &r->v[i];
        char created[40];
        orch_format_rfc3339(v->created_ms, created, sizeof(created));
        json_array_append_new(list, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "revision",
                                              (json_int_t)v->number, "image", v->image, "created",
                                              created, "state", v->state, "message", v->message,
                                              "hash", v->hash));
    }
    return dump(
        json_pack("{s:s, s:s, s:o}", "app", r->app, "service", r->service, "revisions", list));
}

char *ops_apply_json(const struct ops_apply_result *r)
{
    const struct ops_diff *d = &r->diff;
    json_t *svcs = json_array();
    for (size_t i = 0; i < d->n; i++) {
        const struct ops_change *c = &d->v[i];
        json_array_append_new(
            svcs, json_pack("{s:s, s:s, s:I, s:I, s:i}", "service", c->service, "change",
                            ops_change_name(c->kind), "from_revision", (json_int_t)c->from_revision,
                            "revision", (json_int_t)c->to_revision, "replicas", c->to_replicas));
    }
    return dump(json_pack("{s:s, s:s, s:i, s:o}", "app", d->app ? d->app : "", "outcome",
                          r->outcome ? r->outcome : "error", "exit_code", r->exit_code, "services",
                          svcs));
}
