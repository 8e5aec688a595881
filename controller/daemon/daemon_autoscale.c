/* The daemon's autoscaler sync: collects the CPU of each autoscaled service's instances, asks
 * the pure decision (autoscale/autoscale.h) and records the result through the operations
 * layer. It keeps per service the decision's state and per instance the previous CPU sample;
 * it never touches Docker state (the reconciler acts on the count it writes). */
#include "daemon_autoscale.h"

#include <stdlib.h>
#include <string.h>

#include "autoscale/autoscale.h"
#include "autoscale/autoscale_metrics.h"
#include "base/log.h"
#include "base/util.h"
#include "ops/ops.h"
#include "reconcile/reconcile.h"
#include "registry/registry.h"
#include "spec/spec.h"

#define DAEMON_AUTOSCALE_KEPT_EVERY_MS 60000

struct as_inst {
    char *id;
    bool seen;
    bool cg_tried; /* autoscale_cgroup_find was asked */
    char *cg_path; /* NULL: use the stats API */
    bool cg_v2;
    bool have_prev; /* prev is a sample taken while the instance was ready */
    struct autoscale_cpu_sample prev;
    bool fetching;   /* a stats request is on its way */
    bool have_fresh; /* a stats sample arrived since the last sync */
    struct autoscale_cpu_sample fresh;
};

struct as_svc {
    char *app;
    char *name;
    bool seen;
    char *spec_json; /* what autoscale and nano_cpus were parsed from */
    struct spec_autoscale autoscale;
    int64_t nano_cpus;
    struct autoscale_state state;
    bool recorded;       /* a decision was recorded since the daemon started */
    unsigned last_class; /* the kind of the last recorded decision */
    bool last_scaled;    /* the last recorded decision changed the count */
    int64_t kept_ms;     /* when the last decision that kept the count was recorded */
    struct as_inst *inst;
    size_t n_inst;
};

struct daemon_autoscale {
    struct store *store;
    struct reconciler *rec;
    int64_t sync_ms;
    struct daemon_autoscale_hooks hooks;
    int64_t next_ms;
    struct as_svc *svcs;
    size_t n_svcs;
    size_t pending; /* stats requests in flight */
    bool closing;
};

/* One stats request; completes into the instance it was made for if it still exists. */
struct as_fetch {
    struct daemon_autoscale *a;
    char *app, *service, *id;
    struct autoscale_cpu_sample sample;
};

struct daemon_autoscale *daemon_autoscale_new(struct store *s, struct reconciler *rec,
                                              int64_t sync_ms,
                                              const struct daemon_autoscale_hooks *hooks)
{
    struct daemon_autoscale *a = orch_xcalloc(1, sizeof(*a));
    a->store = s;
    a->rec = rec;
    a->sync_ms = sync_ms > 0 ? sync_ms : DAEMON_AUTOSCALE_SYNC_MS;
    if (hooks != NULL)
        a->hooks = *hooks;
    return a;
}

static void inst_clear(struct as_inst *in)
{
    free(in->id);
    free(in->cg_path);
}

static void svc_clear(struct as_svc *v)
{
    for (size_t i = 0; i < v->n_inst; i++)
        inst_clear(&v->inst[i]);
    free(v->inst);
    free(v->app);
    free(v->name);
    free(v->spec_json);
}

static void autoscale_destroy(struct daemon_autoscale *a)
{
    for (size_t i = 0; i < a->n_svcs; i++)
        svc_clear(&a->svcs[i]);
    free(a->svcs);
    free(a);
}

void daemon_autoscale_free(struct daemon_autoscale *a)
{
    if (a == NULL)
        return;
    a->closing = true;
    if (a->pending == 0)
        autoscale_destroy(a);
}

static struct as_svc *svc_find(struct daemon_autoscale *a, const char *app, const char *name)
{
    for (size_t i = 0; i < a->n_svcs; i++)
        if (strcmp(a->svcs[i].app, app) == 0 && strcmp(a->svcs[i].name, name) == 0)
            return &a->svcs[i];
    return NULL;
}

static struct as_inst *inst_find(struct as_svc *v, const char *id)
{
    for (size_t i = 0; i < v->n_inst; i++)
        if (strcmp(v->inst[i].id, id) == 0)
            return &v->inst[i];
    return NULL;
}

static void on_stats(void *data, long status, const struct orch_error *err)
{
    (void)status;
    struct as_fetch *f = data;
    struct daemon_autoscale *a = f->a;
    a->pending--;
    struct as_svc *v = a->closing ? NULL : svc_find(a, f->app, f->service);
    struct as_inst *in = v != NULL ? inst_find(v, f->id) : NULL;
    if (in != NULL) {
        in->fetching = false;
        if (err == NULL || err->code == ORCH_E_OK) {
            in->fresh = f->sample;
            in->have_fresh = true;
        }
    }
    free(f->app);
    free(f->service);
    free(f->id);
    free(f);
    if (a->closing && a->pending == 0)
        autoscale_destroy(a);
}

static void stats_start(struct daemon_autoscale *a, struct as_svc *v, struct as_inst *in)
{
    struct as_fetch *f = orch_xcalloc(1, sizeof(*f));
    f->a = a;
    f->app = orch_xstrdup(v->app);
    f->service = orch_xstrdup(v->name);
    f->id = orch_xstrdup(in->id);
    struct orch_error e = {0};
    if (autoscale_stats_fetch(reconciler_docker(a->rec), in->id, &f->sample, on_stats, f, &e) < 0) {
        orch_log(ORCH_LOG_DEBUG, "autoscale: stats of %.12s: %s", in->id, e.msg);
        free(f->app);
        free(f->service);
        free(f->id);
        free(f);
        return;
    }
    a->pending++;
    in->fetching = true;
}

/* The CPU measure of one ready instance this sync: -1 when there is none yet. Local engine:
 * its cgroup counter now; otherwise the stats sample that arrived since the last sync (one
 * sync late), and a new request for the next one. */
static int64_t inst_cpu(struct daemon_autoscale *a, struct as_svc *v, struct as_inst *in,
                        int64_t now_ns)
{
    struct orch_error e = {0};
    if (!in->cg_tried) {
        in->cg_tried = true;
        if (autoscale_cgroup_find(NULL, in->id, &in->cg_path, &in->cg_v2, &e) < 0)
            in->cg_path = NULL;
    }
    struct autoscale_cpu_sample cur;
    bool have = false;
    if (in->cg_path != NULL) {
        if (autoscale_cgroup_read(in->cg_path, in->cg_v2, now_ns, &cur, &e) == 0)
            have = true;
        else {
            /* gone or moved: look again next time, the stats API meanwhile */
            free(in->cg_path);
            in->cg_path = NULL;
            in->cg_tried = false;
        }
    } else {
        if (in->have_fresh) {
            cur = in->fresh;
            in->have_fresh = false;
            have = true;
        }
        if (!in->fetching)
            stats_start(a, v, in);
    }
    if (!have)
        return -1;
    int64_t milli = in->have_prev ? autoscale_cpu_milli(&in->prev, &cur) : -1;
    in->prev = cur;
    in->have_prev = true;
    return milli;
}

/* Parses the service's stored spec when it changed; false when it has no autoscale. */
static bool svc_spec(struct as_svc *v, const char *spec_json)
{
    if (v->spec_json == NULL || strcmp(v->spec_json, spec_json) != 0) {
        free(v->spec_json);
        v->spec_json = orch_xstrdup(spec_json);
        struct spec_service svc;
        struct orch_error e = {0};
        memset(&v->autoscale, 0, sizeof(v->autoscale));
        v->nano_cpus = 0;
        if (spec_service_from_json(spec_json, &svc, &e) == 0) {
            v->autoscale = svc.autoscale;
            v->nano_cpus = svc.resources.nano_cpus;
            spec_service_free(&svc);
        } else {
            orch_log(ORCH_LOG_WARN, "autoscale: %s/%s: %s", v->app, v->name, e.msg);
        }
    }
    return v->autoscale.enabled;
}

static struct as_svc *svc_get(struct daemon_autoscale *a, const char *app, const char *name)
{
    struct as_svc *v = svc_find(a, app, name);
    if (v != NULL)
        return v;
    a->svcs = orch_xrealloc(a->svcs, (a->n_svcs + 1) * sizeof(*a->svcs));
    v = &a->svcs[a->n_svcs++];
    memset(v, 0, sizeof(*v));
    v->app = orch_xstrdup(app);
    v->name = orch_xstrdup(name);
    return v;
}

/* The kind of a decision, to record only the first of a run of alike ones: its direction,
 * the limits that applied, no metric at all, autoscaling off (count 0). */
static unsigned decision_class(const struct autoscale_decision *d)
{
    unsigned dir = d->desired > d->current ? 1u : d->desired < d->current ? 2u : 0u;
    return dir | d->limits << 2 | (d->recommendation < 0 ? 1u << 10 : 0) |
           (d->current == 0 ? 1u << 11 : 0);
}

static void target_format(struct orch_buf *b, const char *name,
                          const struct autoscale_target_result *t, bool rps)
{
    if (!t->used)
        return;
    if (!t->valid)
        orch_buf_printf(b, "; %s: no metric (%d unready, %d without a metric)", name, t->unready,
                        t->missing);
    else if (rps)
        orch_buf_printf(b, "; %s %.1f/s of target %.1f/s over %d ready -> %d", name,
                        (double)t->measured / 1000.0, (double)t->target / 1000.0, t->ready,
                        t->recommendation);
    else
        orch_buf_printf(b, "; %s %lld%% of target %lld%% over %d ready -> %d", name,
                        (long long)t->measured, (long long)t->target, t->ready, t->recommendation);
}

/* The decision's reason followed by its inputs, as recorded in the event. */
static char *decision_message(const struct autoscale_decision *d)
{
    struct orch_buf b = {0};
    char limits[128];
    autoscale_limits_format(d->limits, limits, sizeof(limits));
    orch_buf_printf(&b, "%s [current %d", d->reason, d->current);
    target_format(&b, "cpu", &d->cpu, false);
    target_format(&b, "requests", &d->rps, true);
    orch_buf_printf(&b, "; recommendation %d; desired %d; limits: %s]", d->recommendation,
                    d->desired, limits[0] ? limits : "none");
    return b.data;
}

/* One service: its instances' metrics, the decision, the record. */
static void sync_service(struct daemon_autoscale *a, struct as_svc *v, int current,
                         const struct registry_instance *ri, size_t n_ri, int64_t now_ms)
{
    for (size_t i = 0; i < v->n_inst; i++)
        v->inst[i].seen = false;
    struct autoscale_instance *inst = orch_xcalloc(n_ri + 1, sizeof(*inst));
    size_t n = 0;
    int64_t limit = v->nano_cpus > 0 ? v->nano_cpus / 1000000 : 1000;
    for (size_t i = 0; i < n_ri; i++) {
        if (strcmp(ri[i].service, v->name) != 0)
            continue;
        struct as_inst *in = inst_find(v, ri[i].id);
        if (in == NULL) {
            v->inst = orch_xrealloc(v->inst, (v->n_inst + 1) * sizeof(*v->inst));
            in = &v->inst[v->n_inst++];
            memset(in, 0, sizeof(*in));
            in->id = orch_xstrdup(ri[i].id);
        }
        in->seen = true;
        struct autoscale_instance *x = &inst[n++];
        x->ready = ri[i].healthy;
        x->cpu_limit_milli = limit > 0 ? limit : 1000;
        if (x->ready) {
            int64_t milli = inst_cpu(a, v, in, now_ms * 1000000);
            x->has_cpu = milli >= 0;
            x->cpu_milli = milli;
            int64_t rps = 0;
            if (a->hooks.rps != NULL && a->hooks.rps(a->hooks.arg, v->app, v->name, in->id, &rps)) {
                x->has_rps = true;
                x->rps_milli = rps;
            }
        } else {
            /* a starting or unhealthy instance: its CPU counts from its second ready sample */
            in->have_prev = false;
            in->have_fresh = false;
        }
    }
    for (size_t i = 0; i < v->n_inst;) {
        if (v->inst[i].seen || v->inst[i].fetching) {
            i++;
            continue;
        }
        inst_clear(&v->inst[i]);
        v->inst[i] = v->inst[--v->n_inst];
    }
    struct autoscale_policy policy = {
        .min = v->autoscale.min,
        .max = v->autoscale.max,
        .cpu_percent = v->autoscale.cpu,
        .rps_milli = (int64_t)v->autoscale.requests * 1000,
        .scale_down_delay_ms = v->autoscale.scale_down_delay_ms,
    };
    struct autoscale_input in = {.now_ms = now_ms,
                                 .current = current,
                                 .instances = inst,
                                 .n_instances = n,
                                 .policy = &policy};
    struct autoscale_decision d;
    struct orch_error e = {0};
    int rc = autoscale_decide(&in, &v->state, &d, &e);
    free(inst);
    if (rc < 0) {
        orch_log(ORCH_LOG_WARN, "autoscale: %s/%s: %s", v->app, v->name, e.msg);
        return;
    }
    unsigned cls = decision_class(&d);
    /* A count that stays is recorded when its kind changed, at most once a minute unless the
     * count changed since (what follows a scaling is always told): a load near a limit flips
     * between kinds every sync and must not flood the event log. */
    if (d.desired == d.current && v->recorded &&
        (cls == v->last_class ||
         (!v->last_scaled && now_ms - v->kept_ms < DAEMON_AUTOSCALE_KEPT_EVERY_MS)))
        return;
    _cleanup_free_ char *msg = decision_message(&d);
    int64_t wall = orch_now_wall_ms();
    if (d.desired != d.current) {
        rc = ops_autoscale_set(a->store, v->app, v->name, d.current, d.desired, msg, wall, &e);
        if (rc == 0) {
            orch_log(ORCH_LOG_INFO, "autoscale: %s/%s: %s", v->app, v->name, d.reason);
            if (a->hooks.changed != NULL)
                a->hooks.changed(a->hooks.arg, v->app);
        }
    } else {
        rc = ops_autoscale_note(a->store, v->app, v->name, msg, wall, &e);
    }
    if (rc < 0) {
        orch_log(rc == -ORCH_E_TRANSIENT ? ORCH_LOG_INFO : ORCH_LOG_WARN, "autoscale: %s", e.msg);
        return;
    }
    v->recorded = true;
    v->last_class = cls;
    v->last_scaled = d.desired != d.current;
    if (!v->last_scaled)
        v->kept_ms = now_ms;
}

void daemon_autoscale_tick(struct daemon_autoscale *a, int64_t now_ms)
{
    if (now_ms < a->next_ms)
        return;
    a->next_ms = now_ms + a->sync_ms;
    struct store_service *rows = NULL;
    size_t n_rows = 0;
    struct orch_error e = {0};
    if (store_services_list(a->store, NULL, &rows, &n_rows, &e) < 0) {
        orch_log(ORCH_LOG_WARN, "autoscale: %s", e.msg);
        return;
    }
    for (size_t i = 0; i < a->n_svcs; i++)
        a->svcs[i].seen = false;
    for (size_t i = 0; i < n_rows; i++) {
        const struct store_service *row = &rows[i];
        /* cheap test first: most services have no autoscale block */
        if (row->spec_json == NULL || strstr(row->spec_json, "\"autoscale\":{") == NULL)
            continue;
        struct as_svc *v = svc_get(a, row->app, row->name);
        v->seen = true;
        if (!svc_spec(v, row->spec_json) || row->revision == 0)
            continue;
        struct reconcile_run *run = a->hooks.run ? a->hooks.run(a->hooks.arg, row->app) : NULL;
        if (run == NULL)
            continue;
        size_t cap = reconcile_run_endpoint_count(run);
        struct registry_instance *ri = orch_xcalloc(cap + 1, sizeof(*ri));
        size_t n_ri = reconcile_run_endpoints(run, ri, cap);
        sync_service(a, v, row->replicas, ri, n_ri, now_ms);
        free(ri);
    }
    store_services_free(rows, n_rows);
    /* services deleted or without autoscale now: forget them (a new block starts afresh) */
    for (size_t i = 0; i < a->n_svcs;) {
        bool busy = false;
        for (size_t k = 0; k < a->svcs[i].n_inst; k++)
            busy = busy || a->svcs[i].inst[k].fetching;
        if (a->svcs[i].seen || busy) {
            i++;
            continue;
        }
        svc_clear(&a->svcs[i]);
        a->svcs[i] = a->svcs[--a->n_svcs];
    }
}
