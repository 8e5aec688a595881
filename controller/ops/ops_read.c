/* The reads: get (every service) and status (one service with its instances). Both read the
 * store on a read-only connection, so they never block a writer, and ask the engine what runs;
 * they change nothing. */
#include <stdlib.h>
#include <string.h>

#include "lb/lb_report.h"
#include "ops_internal.h"
#include "reconcile/reconcile.h"

/* The engine's view of app (NULL: every app), or a failure in *err. */
static int observe(const struct ops_ctx *ctx, struct store *s, const char *app,
                   struct reconcile_service_status **obs, size_t *nobs, struct orch_error *err)
{
    struct reconciler *rec = NULL;
    int rc = ops_engine_open(ctx, s, 0, &rec, err);
    if (rc == 0)
        rc = reconcile_observe(rec, app, obs, nobs, err);
    reconciler_free(rec);
    return rc;
}

/* The autoscaler's view of a stored service (spec_json) with `running` instances. */
static void autoscale_view_set(struct store *s, const struct store_service *v, int running,
                               struct ops_autoscale_view *out)
{
    memset(out, 0, sizeof(*out));
    if (v->spec_json == NULL || strstr(v->spec_json, "\"autoscale\":{") == NULL)
        return;
    struct spec_service svc;
    struct orch_error err = {0};
    if (spec_service_from_json(v->spec_json, &svc, &err) < 0)
        return;
    const struct spec_autoscale *a = &svc.autoscale;
    out->enabled = a->enabled;
    out->min = a->min;
    out->max = a->max;
    out->cpu = a->cpu;
    out->requests = a->requests;
    out->scale_down_delay_ms = a->scale_down_delay_ms;
    out->current = running;
    out->desired = v->replicas;
    spec_service_free(&svc);
    struct store_event ev;
    if (out->enabled && store_event_latest(s, v->app, v->name, OPS_AUTOSCALE_SCALED,
                                           OPS_AUTOSCALE_KEPT, &ev, &err) == 0) {
        out->have_decision = true;
        out->decided_ms = ev.time_ms;
        out->scaled = strcmp(ev.kind, OPS_AUTOSCALE_SCALED) == 0;
        out->reason = orch_xstrdup(ev.message);
        store_event_free(&ev);
    }
}

static void autoscale_view_free(struct ops_autoscale_view *v)
{
    free(v->reason);
    memset(v, 0, sizeof(*v));
}

static void row_set(struct store *s, const struct store_service *v,
                    const struct reconcile_service_status *obs, size_t nobs,
                    struct ops_service_row *row)
{
    struct orch_error err = {0};
    struct store_rollout ro = {0};
    row->rollout_state = "none";
    if (store_rollout_latest(s, v->app, v->name, &ro, &err) == 0) {
        row->rollout_state = store_rollout_state_name(ro.state);
        store_rollout_free(&ro);
    }
    const struct reconcile_service_status *o = NULL;
    for (size_t j = 0; j < nobs; j++)
        if (strcmp(obs[j].app, v->app) == 0 && strcmp(obs[j].service, v->name) == 0)
            o = &obs[j];
    row->app = orch_xstrdup(v->app);
    row->service = orch_xstrdup(v->name);
    row->revision = v->revision;
    row->desired = v->replicas;
    row->running = o ? o->running : 0;
    row->healthy = o ? o->healthy : 0;
    row->updated = o ? o->updated : 0;
    autoscale_view_set(s, v, row->running, &row->autoscale);
}

/* A delete in progress shows as its service with rollout state "deleting" and the containers
 * still there, until they are gone (a whole app's own record shows through its services). When
 * the engine was asked (observed) and has no container of it left, the delete is as good as done:
 * the row is not shown (the next command that converges clears the record). */
static void deleting_row_add(struct ops_get_result *out, const struct store_deletion *d,
                             const struct store_service *v, size_t n, bool observed,
                             const struct reconcile_service_status *obs, size_t nobs)
{
    if (d->service[0] == '\0')
        return;
    for (size_t i = 0; i < n; i++)
        if (strcmp(v[i].app, d->app) == 0 && strcmp(v[i].name, d->service) == 0)
            return; /* applied again meanwhile */
    bool left = !observed;
    for (size_t j = 0; j < nobs; j++)
        left = left || (obs[j].deleting && strcmp(obs[j].app, d->app) == 0 &&
                        strcmp(obs[j].service, d->service) == 0);
    if (!left)
        return;
    struct ops_service_row *row = &out->v[out->n++];
    row->app = orch_xstrdup(d->app);
    row->service = orch_xstrdup(d->service);
    row->rollout_state = "deleting";
    for (size_t j = 0; j < nobs; j++)
        if (obs[j].deleting && strcmp(obs[j].app, d->app) == 0 &&
            strcmp(obs[j].service, d->service) == 0) {
            row->running = obs[j].running;
            row->healthy = obs[j].healthy;
            row->updated = obs[j].updated;
        }
}

int ops_get(const struct ops_ctx *ctx, struct ops_get_result *out)
{
    return ops_get_app(ctx, NULL, true, out);
}

int ops_get_app(const struct ops_ctx *ctx, const char *app, bool counts, struct ops_get_result *out)
{
    memset(out, 0, sizeof(*out));
    struct store *s = NULL;
    struct store_service *v = NULL;
    size_t n = 0;
    struct reconcile_service_status *obs = NULL;
    size_t nobs = 0;
    struct store_deletion *dels = NULL;
    size_t n_dels = 0;
    int rc = ops_store_open(ctx, false, &s, &out->err);
    if (rc == 0 && s != NULL)
        rc = store_services_list(s, app, &v, &n, &out->err);
    if (rc == 0 && s != NULL)
        rc = store_deletions_list(s, app, &dels, &n_dels, &out->err);
    /* Observed counts come from the engine; with nothing in the store it is not asked. */
    bool observed = false;
    if (rc == 0 && counts && n + n_dels > 0 && !ops_no_converge()) {
        rc = observe(ctx, s, app, &obs, &nobs, &out->err);
        observed = rc == 0;
    }
    if (rc == 0) {
        out->v = orch_xcalloc(n + n_dels + 1, sizeof(*out->v));
        out->n = n;
        for (size_t i = 0; i < n; i++)
            row_set(s, &v[i], obs, nobs, &out->v[i]);
        for (size_t i = 0; i < n_dels; i++)
            deleting_row_add(out, &dels[i], v, n, observed, obs, nobs);
    }
    store_deletions_free(dels, n_dels);
    out->exit_code = rc < 0 ? ops_error_exit(&out->err) : ORCH_EXIT_OK;
    reconcile_status_free(obs, nobs);
    store_services_free(v, n);
    if (s != NULL)
        store_close(s);
    return out->exit_code;
}

void ops_get_result_free(struct ops_get_result *r)
{
    for (size_t i = 0; i < r->n; i++) {
        free(r->v[i].app);
        free(r->v[i].service);
        autoscale_view_free(&r->v[i].autoscale);
    }
    free(r->v);
    memset(r, 0, sizeof(*r));
}

static void instance_set(struct ops_instance *o, const struct reconcile_instance *ri)
{
    o->id = orch_xstrdup(ri->id);
    o->name = orch_xstrdup(ri->name);
    o->revision = ri->revision;
    o->state = orch_xstrdup(ri->state);
    o->health = orch_xstrdup(ri->health);
    o->n_endpoints = ri->n_endpoints;
    o->endpoint_names = orch_xcalloc(ri->n_endpoints + 1, sizeof(char *));
    o->endpoints = orch_xcalloc(ri->n_endpoints + 1, sizeof(char *));
    for (size_t k = 0; k < ri->n_endpoints; k++) {
        o->endpoint_names[k] = orch_xstrdup(ri->endpoint_names[k]);
        o->endpoints[k] = orch_xstrdup(ri->endpoints[k]);
    }
}

/* Fills out from the engine's view of the service and the store's rollout and events. */
static void status_set(struct store *s, const struct reconcile_service_status *st,
                       struct ops_status_result *out)
{
    struct orch_error err = {0};
    out->found = true;
    out->revision = st->revision;
    out->desired = st->desired;
    out->running = st->running;
    out->healthy = st->healthy;
    out->updated = st->updated;
    out->instances = orch_xcalloc(st->n_instances + 1, sizeof(*out->instances));
    out->n_instances = st->n_instances;
    for (size_t i = 0; i < st->n_instances; i++)
        instance_set(&out->instances[i], &st->instances[i]);
    struct store_rollout ro = {0};
    if (store_rollout_latest(s, out->app, out->service, &ro, &err) == 0) {
        ops_rollout_end_set(&out->rollout, &ro);
        store_rollout_free(&ro);
    }
    struct store_event *ev = NULL;
    size_t nev = 0;
    if (store_events_list(s, out->app, out->service, 8, &ev, &nev, &err) < 0)
        nev = 0;
    out->events = orch_xcalloc(nev + 1, sizeof(*out->events));
    out->n_events = nev;
    for (size_t i = 0; i < nev; i++)
        out->events[i] = (struct ops_event){.time_ms = ev[i].time_ms,
                                            .kind = orch_xstrdup(ev[i].kind),
                                            .message = orch_xstrdup(ev[i].message)};
    store_events_free(ev, nev);
}

/* The published ports of the service and the figures the daemon reported for them (a report
 * counts only while a daemon holds the state dir and keeps writing it). */
static void traffic_set(struct store *s, struct ops_status_result *out)
{
    struct orch_error err = {0};
    struct store_service row;
    if (store_service_get(s, out->app, out->service, &row, &err) < 0)
        return;
    struct spec_service svc = {0};
    int rc = row.spec_json ? spec_service_from_json(row.spec_json, &svc, &err) : -1;
    store_service_free(&row);
    if (rc < 0)
        return;
    struct lb_report r = {0};
    bool daemon = store_daemon_running(store_dir(s), NULL);
    bool fresh = daemon && lb_report_read(store_dir(s), &r, &err) == 0 &&
                 orch_now_wall_ms() - r.written_ms < LB_REPORT_STALE_MS;
    const char *pub = getenv("ORCH_PUBLISH_ADDRESS");
    out->traffic = orch_xcalloc(svc.ports_len + 1, sizeof(*out->traffic));
    for (size_t k = 0; k < svc.ports_len; k++) {
        const struct spec_port *p = &svc.ports[k];
        if (p->published <= 0)
            continue;
        struct ops_traffic *t = &out->traffic[out->n_traffic++];
        t->port = orch_xstrdup(p->name);
        t->published = orch_xasprintf("%s:%d", pub && pub[0] ? pub : "127.0.0.1", p->published);
        t->balance =
            orch_xstrdup(p->balance == SPEC_BALANCE_LEAST_CONN ? "least_conn" : "round_robin");
        const struct lb_report_port *rp = NULL;
        for (size_t i = 0; fresh && i < r.n; i++)
            if (strcmp(r.v[i].app, out->app) == 0 && strcmp(r.v[i].service, out->service) == 0 &&
                strcmp(r.v[i].port, p->name) == 0)
                rp = &r.v[i];
        if (rp == NULL) {
            t->error = orch_xstrdup(daemon ? "not served yet"
                                           : "published ports are served while `orch daemon` "
                                             "runs; instances keep their own endpoints");
            continue;
        }
        free(t->published);
        t->published = orch_xstrdup(rp->listen);
        t->served = rp->error[0] == '\0';
        t->error = orch_xstrdup(rp->error);
        t->connections = rp->connections;
        t->active = rp->active;
        t->rejected = rp->rejected;
        t->requests = rp->requests;
        t->bytes_in = rp->bytes_in;
        t->bytes_out = rp->bytes_out;
        t->requests_per_second = rp->requests_per_second;
        t->connections_per_second = rp->connections_per_second;
    }
    lb_report_free(&r);
    spec_service_free(&svc);
}

int ops_status(const struct ops_ctx *ctx, const char *ref, struct ops_status_result *out)
{
    memset(out, 0, sizeof(*out));
    struct store *s = NULL;
    struct reconcile_service_status *v = NULL;
    size_t n = 0;
    int rc = ops_open_service(ctx, ref, false, &s, &out->app, &out->service, &out->err);
    if (rc == 0)
        rc = observe(ctx, s, out->app, &v, &n, &out->err);
    for (size_t i = 0; rc == 0 && i < n; i++)
        if (strcmp(v[i].service, out->service) == 0 && !out->found)
            status_set(s, &v[i], out);
    struct store_service row;
    struct orch_error e = {0};
    if (rc == 0 && store_service_get(s, out->app, out->service, &row, &e) == 0) {
        autoscale_view_set(s, &row, out->running, &out->autoscale);
        store_service_free(&row);
    }
    if (rc == 0 && out->found)
        traffic_set(s, out);
    out->exit_code = rc < 0 ? ops_error_exit(&out->err) : ORCH_EXIT_OK;
    reconcile_status_free(v, n);
    if (s != NULL)
        store_close(s);
    return out->exit_code;
}

void ops_status_result_free(struct ops_status_result *r)
{
    free(r->app);
    free(r->service);
    for (size_t i = 0; i < r->n_instances; i++) {
        struct ops_instance *o = &r->instances[i];
        free(o->id);
        free(o->name);
        free(o->state);
        free(o->health);
        for (size_t k = 0; k < o->n_endpoints; k++) {
            free(o->endpoint_names[k]);
            free(o->endpoints[k]);
        }
        free(o->endpoint_names);
        free(o->endpoints);
    }
    free(r->instances);
    ops_rollout_end_free(&r->rollout);
    for (size_t i = 0; i < r->n_events; i++) {
        free(r->events[i].kind);
        free(r->events[i].message);
    }
    free(r->events);
    autoscale_view_free(&r->autoscale);
    for (size_t i = 0; i < r->n_traffic; i++) {
        free(r->traffic[i].port);
        free(r->traffic[i].published);
        free(r->traffic[i].balance);
        free(r->traffic[i].error);
    }
    free(r->traffic);
    memset(r, 0, sizeof(*r));
}
