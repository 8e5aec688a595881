/* What one reconcile run remembers across its passes: per-service state (templates, backoff,
 * settle times, what status was written), per-instance marks (first seen ready, exits counted,
 * draining) and the registry snapshot of the last pass. It loads the desired state from the
 * store; it never talks to the engine. */
#include "reconcile_internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

static struct svc_run *run_svc(struct reconcile_run *run, const char *name)
{
    for (size_t i = 0; i < run->n; i++)
        if (strcmp(run->svcs[i].name, name) == 0)
            return &run->svcs[i];
    run->svcs = orch_xrealloc(run->svcs, (run->n + 1) * sizeof(*run->svcs));
    struct svc_run *s = &run->svcs[run->n++];
    memset(s, 0, sizeof(*s));
    s->name = orch_xstrdup(name);
    s->backoff_ms = RECONCILE_BACKOFF_MIN_MS;
    return s;
}

static void svc_run_clear_pass(struct svc_run *s)
{
    store_service_free(&s->row);
    memset(&s->row, 0, sizeof(s->row));
    if (s->has_rollout)
        store_rollout_free(&s->rollout);
    s->has_rollout = false;
    s->present = false;
}

static void snap_clear(struct reconcile_run *run)
{
    for (size_t i = 0; i < run->n_snap; i++) {
        struct endpoint_snap *e = &run->snap[i];
        free(e->service);
        free(e->id);
        for (size_t k = 0; k < e->n_ports; k++)
            free(e->port_names[k]);
        free(e->port_names);
        free(e->ports);
    }
    free(run->snap);
    run->snap = NULL;
    run->n_snap = 0;
    for (size_t i = 0; i < run->n_svc_snap; i++) {
        struct service_snap *v = &run->svc_snap[i];
        free(v->service);
        for (size_t k = 0; k < v->n_ports; k++)
            free(v->port_names[k]);
        free(v->port_names);
        free(v->ports);
    }
    free(run->svc_snap);
    run->svc_snap = NULL;
    run->n_svc_snap = 0;
}

static void run_free(struct reconcile_run *run)
{
    if (run->inflight != NULL) {
        /* actions still on their way complete into the batch alone, the last frees it */
        if (run->inflight->pending > 0)
            run->inflight->orphaned = true;
        else
            free(run->inflight);
        run->inflight = NULL;
    }
    snap_clear(run);
    for (size_t i = 0; i < run->n; i++) {
        svc_run_clear_pass(&run->svcs[i]);
        if (run->svcs[i].tmpl_revision)
            spec_service_free(&run->svcs[i].tmpl);
        free(run->svcs[i].name);
        free(run->svcs[i].written_health);
    }
    free(run->svcs);
    for (size_t i = 0; i < run->n_ready; i++) {
        if (run->r->prober != NULL)
            health_prober_unwatch(run->r->prober, run->ready[i].id);
        free(run->ready[i].id);
    }
    free(run->ready);
    free(run->network_id);
    recon_deletions_free(run);
}

struct ready_mark *recon_mark(struct reconcile_run *run, const char *id)
{
    for (size_t i = 0; i < run->n_ready; i++)
        if (strcmp(run->ready[i].id, id) == 0)
            return &run->ready[i];
    run->ready = orch_xrealloc(run->ready, (run->n_ready + 1) * sizeof(*run->ready));
    struct ready_mark *m = &run->ready[run->n_ready++];
    memset(m, 0, sizeof(*m));
    m->id = orch_xstrdup(id);
    return m;
}

/* When each running container was first seen running: a stand-in for readiness until health
 * probes judge it, so an instance that dies at once is not counted as ready. */
int64_t recon_ready_since(struct reconcile_run *run, const char *id, bool running, int64_t now)
{
    struct ready_mark *m = recon_mark(run, id);
    if (!running)
        m->since_ms = 0;
    else if (m->since_ms == 0)
        m->since_ms = now;
    return m->since_ms;
}

/* True the first time an exited container is seen: each exit counts once, even when its
 * removal fails and it is seen again on later passes. */
bool recon_exit_first_seen(struct reconcile_run *run, const char *id)
{
    struct ready_mark *m = recon_mark(run, id);
    if (m->exit_counted)
        return false;
    m->exit_counted = true;
    return true;
}

/* Drops what is remembered about containers that are gone (and stops probing them). */
void recon_forget_gone(struct reconcile_run *run, const struct docker_container_list *obs)
{
    size_t keep = 0;
    for (size_t i = 0; i < run->n_ready; i++) {
        bool seen = false;
        for (size_t j = 0; j < obs->n && !seen; j++)
            seen = strcmp(obs->v[j].id, run->ready[i].id) == 0;
        if (seen) {
            run->ready[keep++] = run->ready[i];
            continue;
        }
        if (run->r->prober != NULL)
            health_prober_unwatch(run->r->prober, run->ready[i].id);
        free(run->ready[i].id);
    }
    run->n_ready = keep;
}

/* Loads this pass's desired state of every service of the app. */
int recon_run_load(struct reconcile_run *run, struct orch_error *err)
{
    struct reconciler *r = run->r;
    for (size_t i = 0; i < run->n; i++)
        svc_run_clear_pass(&run->svcs[i]);
    struct store_service *v = NULL;
    size_t n = 0;
    int rc = store_services_list(r->store, run->app, &v, &n, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n && rc == 0; i++) {
        struct svc_run *s = run_svc(run, v[i].name);
        s->present = true;
        s->row = v[i];
        memset(&v[i], 0, sizeof(v[i]));
        if (s->tmpl_revision != s->row.revision) {
            struct store_revision rev;
            rc = store_revision_get(r->store, run->app, s->name, s->row.revision, &rev, err);
            if (rc < 0)
                break;
            if (s->tmpl_revision)
                spec_service_free(&s->tmpl);
            s->tmpl_revision = 0;
            rc = spec_template_from_json(rev.template_json, &s->tmpl, err);
            s->rev_active = rev.state == STORE_REV_ACTIVE;
            store_revision_free(&rev);
            if (rc < 0) {
                orch_wrap(err, "revision %lld of %s/%s", (long long)s->row.revision, run->app,
                          s->name);
                break;
            }
            s->tmpl_revision = s->row.revision;
            /* A revision that someone else set (a new apply, an undo) starts afresh; the
             * one we rolled back to keeps the rollback going. */
            if (s->row.revision != s->rollback_target) {
                s->failed = false;
                s->rolled_back = false;
                s->rollback_target = 0;
            }
            s->crashes = 0;
            s->backoff_ms = RECONCILE_BACKOFF_MIN_MS;
            s->backoff_until_ms = 0;
            s->last_progress_ms = orch_now_mono_ms();
            s->last_score = -1;
        }
        struct store_rollout ro;
        int q = store_rollout_latest(r->store, run->app, s->name, &ro, err);
        if (q == 0) {
            if (ro.state == STORE_ROLLOUT_PROGRESSING && ro.to_revision == s->row.revision) {
                s->rollout = ro;
                s->has_rollout = true;
            } else {
                store_rollout_free(&ro);
            }
        } else if (q == -ORCH_E_NOTFOUND) {
            orch_error_clear(err);
        } else {
            rc = q;
        }
    }
    store_services_free(v, n);
    return rc;
}

/* Whether the registry lists this instance now: running, healthy (or no probe), not draining. */
bool recon_in_registry(struct reconcile_run *run, const struct svc_run *s,
                       const struct plan_instance *pi)
{
    if (pi->state != PLAN_INST_RUNNING || recon_mark(run, pi->id)->drain_since != 0)
        return false;
    if (s->tmpl.health.kind == SPEC_PROBE_NONE)
        return true;
    return run->r->prober != NULL && health_prober_status(run->r->prober, pi->id) == HEALTH_HEALTHY;
}

struct reconcile_run *reconcile_run_new(struct reconciler *r, const char *app, bool give_up)
{
    struct reconcile_run *run = orch_xcalloc(1, sizeof(*run));
    run->r = r;
    run->app = orch_xstrdup(app);
    run->give_up = give_up;
    run->start_ms = orch_now_mono_ms();
    run->start_wall_ms = orch_now_wall_ms();
    return run;
}

void reconcile_run_free(struct reconcile_run *run)
{
    if (run == NULL)
        return;
    run_free(run);
    free(run->app);
    free(run);
}

const char *reconcile_run_app(const struct reconcile_run *run)
{
    return run->app;
}

/* What the DNS registry should say about the app's instances after this pass. */
void recon_snapshot(struct reconcile_run *run, const struct docker_container_list *obs)
{
    snap_clear(run);
    const char *pub = run->r->publish_address;
    struct in_addr a4;
    bool pub_v4 = inet_pton(AF_INET, pub, &a4) == 1 && strcmp(pub, "0.0.0.0") != 0;
    run->snap = orch_xcalloc(obs->n + 1, sizeof(*run->snap));
    for (size_t i = 0; i < obs->n; i++) {
        const struct docker_container *c = &obs->v[i];
        const char *svc = docker_kvs_get(&c->labels, "orch.service");
        struct svc_run *s = NULL;
        for (size_t j = 0; svc != NULL && j < run->n; j++)
            if (run->svcs[j].present && strcmp(run->svcs[j].name, svc) == 0)
                s = &run->svcs[j];
        if (s == NULL || s->tmpl_revision == 0 || c->state == NULL ||
            strcmp(c->state, "running") != 0)
            continue;
        struct endpoint_snap *e = &run->snap[run->n_snap++];
        e->service = orch_xstrdup(s->name);
        e->id = orch_xstrdup(c->id);
        struct plan_instance pi = {.id = c->id, .state = PLAN_INST_RUNNING};
        e->healthy = recon_in_registry(run, s, &pi);
        snprintf(e->ipv4, sizeof(e->ipv4), "%s", pub_v4 ? pub : "127.0.0.1");
        e->ports = orch_xcalloc(s->tmpl.ports_len + 1, sizeof(*e->ports));
        e->port_names = orch_xcalloc(s->tmpl.ports_len + 1, sizeof(char *));
        for (size_t k = 0; k < s->tmpl.ports_len; k++) {
            const struct spec_port *sp = &s->tmpl.ports[k];
            const char *host = NULL;
            int port = 0;
            bool udp = sp->protocol == SPEC_PROTO_UDP;
            recon_published(c, sp->container, udp ? "udp" : "tcp", &host, &port);
            e->port_names[k] = orch_xstrdup(sp->name);
            e->ports[k].name = e->port_names[k];
            e->ports[k].proto = udp ? REGISTRY_UDP : REGISTRY_TCP;
            e->ports[k].port = (uint16_t)port;
        }
        e->n_ports = s->tmpl.ports_len;
    }
    /* The services that exist keep their names (NODATA) with no instance running. */
    run->svc_snap = orch_xcalloc(run->n + 1, sizeof(*run->svc_snap));
    for (size_t j = 0; j < run->n; j++) {
        const struct svc_run *s = &run->svcs[j];
        if (!s->present || s->tmpl_revision == 0)
            continue;
        struct service_snap *v = &run->svc_snap[run->n_svc_snap++];
        v->service = orch_xstrdup(s->name);
        v->ports = orch_xcalloc(s->tmpl.ports_len + 1, sizeof(*v->ports));
        v->port_names = orch_xcalloc(s->tmpl.ports_len + 1, sizeof(char *));
        for (size_t k = 0; k < s->tmpl.ports_len; k++) {
            const struct spec_port *sp = &s->tmpl.ports[k];
            v->port_names[k] = orch_xstrdup(sp->name);
            v->ports[k].name = v->port_names[k];
            v->ports[k].proto = sp->protocol == SPEC_PROTO_UDP ? REGISTRY_UDP : REGISTRY_TCP;
        }
        v->n_ports = s->tmpl.ports_len;
    }
}

void reconcile_run_set_async(struct reconcile_run *run,
                             void (*on_idle)(void *data, struct reconcile_run *run), void *data)
{
    run->async = true;
    run->on_idle = on_idle;
    run->on_idle_data = data;
}

bool reconcile_run_knows(const struct reconcile_run *run, const char *id)
{
    for (size_t i = 0; i < run->n_ready; i++)
        if (strcmp(run->ready[i].id, id) == 0)
            return true;
    return false;
}

void reconcile_run_set_drain(struct reconcile_run *run, int64_t drain_ms)
{
    run->drain_ms = drain_ms;
}

void reconcile_run_set_on_stop(struct reconcile_run *run,
                               void (*cb)(void *data, const char *id, int64_t grace_ms), void *data)
{
    run->on_stop = cb;
    run->on_stop_data = data;
}

size_t reconcile_run_endpoints(const struct reconcile_run *run, struct registry_instance *out,
                               size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < run->n_snap && n < cap; i++) {
        const struct endpoint_snap *e = &run->snap[i];
        out[n++] = (struct registry_instance){
            .app = run->app,
            .service = e->service,
            .id = e->id,
            .ipv4 = e->ipv4,
            .ports = e->ports,
            .n_ports = e->n_ports,
            .healthy = e->healthy,
        };
    }
    return n;
}

size_t reconcile_run_endpoint_count(const struct reconcile_run *run)
{
    return run->n_snap;
}

size_t reconcile_run_services(const struct reconcile_run *run, struct registry_service *out,
                              size_t cap)
{
    size_t n = 0;
    for (size_t i = 0; i < run->n_svc_snap && n < cap; i++) {
        const struct service_snap *v = &run->svc_snap[i];
        out[n++] = (struct registry_service){
            .app = run->app,
            .service = v->service,
            .ports = v->ports,
            .n_ports = v->n_ports,
        };
    }
    return n;
}

size_t reconcile_run_service_count(const struct reconcile_run *run)
{
    return run->n_svc_snap;
}

bool reconcile_run_is_empty(const struct reconcile_run *run)
{
    return run->empty;
}

/* The health of the service's running instances as the daemon's probes judge them (those it
 * does not probe are left out, so a reader probes them itself), and their signature. */
static size_t health_view(struct reconcile_run *run, const struct svc_run *s, int64_t now_wall,
                          struct store_instance_health *v, struct orch_buf *sig)
{
    size_t n = 0;
    struct health_prober *p = run->r->prober;
    if (p == NULL || s->tmpl_revision == 0 || s->tmpl.health.kind == SPEC_PROBE_NONE)
        return 0;
    for (size_t i = 0; i < run->n_snap; i++) {
        const struct endpoint_snap *e = &run->snap[i];
        enum health_status hs = health_prober_status(p, e->id);
        if (strcmp(e->service, s->name) != 0 || hs == HEALTH_NONE)
            continue;
        v[n++] = (struct store_instance_health){
            .id = e->id,
            .health = (char *)health_status_name(hs),
            .observed_ms = now_wall,
        };
        orch_buf_printf(sig, "%s=%s;", e->id, health_status_name(hs));
    }
    return n;
}

/* Opens the transaction of this round of writes at its first write. */
static int begin_once(struct reconcile_run *run, bool *began, struct orch_error *err)
{
    if (*began)
        return 0;
    int rc = store_begin(run->r->store, err);
    *began = rc == 0;
    return rc;
}

/* Publishes the service's instance health when it changed since the last write. */
static int write_health(struct reconcile_run *run, struct svc_run *s, bool *began,
                        struct orch_error *err)
{
    struct store_instance_health *v = orch_xcalloc(run->n_snap + 1, sizeof(*v));
    struct orch_buf sig = {0};
    orch_buf_printf(&sig, "%s", "");
    size_t n = health_view(run, s, orch_now_wall_ms(), v, &sig);
    int rc = 0;
    if (s->written_health == NULL || strcmp(s->written_health, sig.data) != 0) {
        rc = begin_once(run, began, err);
        if (rc == 0)
            rc = store_instance_health_set(run->r->store, run->app, s->name, v, n, err);
        if (rc == 0) {
            free(s->written_health);
            s->written_health = orch_xstrdup(sig.data);
        }
    }
    orch_buf_free(&sig);
    free(v);
    return rc;
}

/* Writes the service's status row when what it says changed. */
static int write_service_status(struct reconcile_run *run, struct svc_run *s, int64_t now,
                                bool *began, struct orch_error *err)
{
    bool converged = !s->failed && s->settled && s->settled_since_ms != 0 &&
                     now - s->settled_since_ms >= s->settle_ms;
    if (s->have_written && converged == s->written_converged &&
        s->written_revision == s->row.revision && s->written_replaced_ms == s->replaced_ms &&
        s->written_updated_ms == s->row.updated_ms &&
        memcmp(&s->written, &s->counts, sizeof(s->counts)) == 0)
        return 0;
    struct store_status st = {
        .app = run->app,
        .service = s->name,
        .observed_ms = orch_now_wall_ms(),
        .revision = s->row.revision,
        .desired = s->row.replicas,
        .running = s->counts.running,
        .healthy = s->counts.ready,
        .updated = s->counts.updated,
        .converged = converged,
        .message = s->failed        ? "failed"
                   : s->rolled_back ? "rolled back"
                                    : "",
        .replaced = s->replaced,
        .replaced_ms = s->replaced_ms,
    };
    int rc = begin_once(run, began, err);
    if (rc == 0)
        rc = store_status_put(run->r->store, &st, err);
    if (rc == 0) {
        s->have_written = true;
        s->written = s->counts;
        s->written_updated_ms = s->row.updated_ms;
        s->written_converged = converged;
        s->written_revision = s->row.revision;
        s->written_replaced_ms = s->replaced_ms;
    }
    return rc;
}

int reconcile_run_write_status(struct reconcile_run *run, struct orch_error *err)
{
    int64_t now = orch_now_mono_ms();
    bool began = false;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < run->n; i++) {
        struct svc_run *s = &run->svcs[i];
        if (!s->present)
            continue;
        rc = write_service_status(run, s, now, &began, err);
        if (rc == 0)
            rc = write_health(run, s, &began, err);
    }
    if (began) {
        if (rc == 0)
            rc = store_commit(run->r->store, err);
        else
            store_rollback(run->r->store);
    }
    return rc;
}
