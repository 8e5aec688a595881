/* Observation for `status` and `get`: the containers of each service of the store with their
 * endpoints and health: the daemon's verdicts from the store when a daemon runs on the state
 * dir, else (and for instances it has not judged) one probe of each running instance. It
 * changes nothing on the engine or in the store and keeps no state between calls. */
#include "reconcile_internal.h"

#include <stdlib.h>
#include <string.h>

#include "base/util.h"

/* ---- observation for status and get ------------------------------------------------------- */

static void instance_fill(struct reconcile_instance *ri, const struct docker_container *c,
                          const struct spec_service *tmpl)
{
    ri->id = orch_xstrdup(c->id);
    ri->name = orch_xstrdup(recon_container_name(c));
    ri->revision = recon_label_revision(c);
    ri->state = orch_xstrdup(c->state ? c->state : "unknown");
    ri->health = orch_xstrdup("none");
    ri->endpoint_names = orch_xcalloc(c->n_ports + 1, sizeof(char *));
    ri->endpoints = orch_xcalloc(c->n_ports + 1, sizeof(char *));
    for (size_t p = 0; p < c->n_ports; p++) {
        const struct docker_port *dp = &c->ports[p];
        if (dp->public_port == 0)
            continue;
        /* The engine may list a binding once per address family: keep the first. */
        const char *pname = NULL;
        for (size_t k = 0; tmpl && k < tmpl->ports_len; k++) {
            const char *proto = tmpl->ports[k].protocol == SPEC_PROTO_UDP ? "udp" : "tcp";
            if (tmpl->ports[k].container == dp->private_port && dp->type &&
                strcmp(dp->type, proto) == 0)
                pname = tmpl->ports[k].name;
        }
        _cleanup_free_ char *fallback =
            orch_xasprintf("%d/%s", dp->private_port, dp->type ? dp->type : "tcp");
        const char *key = pname ? pname : fallback;
        bool dup = false;
        for (size_t k = 0; k < ri->n_endpoints; k++)
            if (strcmp(ri->endpoint_names[k], key) == 0)
                dup = true;
        if (dup)
            continue;
        ri->endpoint_names[ri->n_endpoints] = orch_xstrdup(key);
        ri->endpoints[ri->n_endpoints++] =
            orch_xasprintf("%s:%d", dp->ip && *dp->ip ? dp->ip : "127.0.0.1", dp->public_port);
    }
}

/* One probe of each running instance whose service has a probe, for a one-shot status: the
 * verdict of that single result (healthy, or unhealthy once past start_period). Bounded by the
 * longest probe timeout. */
struct oneshot {
    struct reconcile_instance *ri;
    const struct spec_health *cfg;
    int64_t started_ms;
};

static void probe_once(struct reconciler *r, struct oneshot *v, size_t n)
{
    int64_t wait_ms = 0;
    size_t watched = 0;
    for (size_t i = 0; i < n; i++) {
        struct orch_error e = {0};
        /* started_ms 0: an "old" container, probed at once */
        if (health_prober_watch(r->prober, v[i].ri->id, v[i].cfg, v[i].ri->probe_host,
                                v[i].ri->probe_port, 0, &e) < 0) {
            v[i].cfg = NULL;
            continue;
        }
        watched++;
        if (v[i].cfg->timeout_ms > wait_ms)
            wait_ms = v[i].cfg->timeout_ms;
    }
    int64_t deadline = orch_now_mono_ms() + wait_ms + 500;
    while (watched > 0 && orch_now_mono_ms() < deadline) {
        size_t pending = 0;
        for (size_t i = 0; i < n; i++) {
            struct health_state st;
            if (v[i].cfg != NULL && health_prober_state(r->prober, v[i].ri->id, &st) &&
                st.last_probe_ms < 0)
                pending++;
        }
        if (pending == 0)
            break;
        recon_idle(r, 20);
    }
    int64_t now = orch_now_wall_ms();
    for (size_t i = 0; i < n; i++) {
        struct health_state st;
        const char *verdict = "starting";
        if (v[i].cfg != NULL && health_prober_state(r->prober, v[i].ri->id, &st) &&
            st.last_probe_ms >= 0) {
            if (st.last_success)
                verdict = "healthy";
            else if (now - v[i].started_ms >= v[i].cfg->start_period_ms)
                verdict = "unhealthy";
        }
        free(v[i].ri->health);
        v[i].ri->health = orch_xstrdup(verdict);
        health_prober_unwatch(r->prober, v[i].ri->id);
    }
}

/* False for a running instance that cannot serve: off the app network (removed or
 * disconnected by hand) or with a declared port not published. */
static bool serving(const char *app, const struct docker_container *c, const struct spec_service *t)
{
    if (recon_detached(app, c))
        return false;
    for (size_t k = 0; t != NULL && k < t->ports_len; k++) {
        const char *host = NULL;
        int port = 0;
        if (!recon_published(c, t->ports[k].container,
                             t->ports[k].protocol == SPEC_PROTO_UDP ? "udp" : "tcp", &host, &port))
            return false;
    }
    return true;
}

/* Fills st's instances from the observed containers of its service and queues a one-shot
 * probe for each running one that has a probe. */
static void observe_service(struct reconcile_service_status *st, const struct spec_service *t,
                            const struct docker_container_list *obs, struct oneshot *shots,
                            size_t *nshots)
{
    st->instances = orch_xcalloc(obs->n + 1, sizeof(*st->instances));
    for (size_t j = 0; j < obs->n; j++) {
        const struct docker_container *c = &obs->v[j];
        const char *capp = docker_kvs_get(&c->labels, "orch.app");
        const char *csvc = docker_kvs_get(&c->labels, "orch.service");
        if (!capp || !csvc || strcmp(capp, st->app) != 0 || strcmp(csvc, st->service) != 0)
            continue;
        struct reconcile_instance *ri = &st->instances[st->n_instances++];
        instance_fill(ri, c, t);
        bool running = c->state && strcmp(c->state, "running") == 0;
        st->running += running;
        st->updated += ri->revision == st->revision;
        if (running && !serving(st->app, c, t)) {
            /* off the app network or without its endpoints: whatever a probe said before */
            free(ri->health);
            ri->health = orch_xstrdup("unhealthy");
            continue;
        }
        if (!running || t == NULL || t->health.kind == SPEC_PROBE_NONE)
            continue;
        if (t->health.kind != SPEC_PROBE_EXEC) {
            const struct spec_port *sp =
                t->health.port_index >= 0 ? &t->ports[t->health.port_index] : NULL;
            const char *host = NULL;
            int port = 0;
            if (sp == NULL ||
                !recon_published(c, sp->container, sp->protocol == SPEC_PROTO_UDP ? "udp" : "tcp",
                                 &host, &port))
                continue;
            ri->probe_host = orch_xstrdup(host);
            ri->probe_port = port;
        }
        shots[(*nshots)++] = (struct oneshot){ri, &t->health, c->created * 1000};
    }
}

/* With a daemon running on the state dir, the verdicts its probes published stand in for the
 * one-shot probe of each instance it judges; the others (just created, not yet judged) are
 * still probed once. Returns how many shots are left, compacted at the front. */
static size_t daemon_view(struct reconciler *r, const char *app, struct oneshot *shots, size_t n,
                          bool *used)
{
    *used = false;
    if (!store_daemon_running(store_dir(r->store), NULL))
        return n;
    struct store_instance_health *h = NULL;
    size_t nh = 0;
    struct orch_error e = {0};
    if (store_instance_health_list(r->store, app, &h, &nh, &e) < 0)
        return n; /* no view: probe as without a daemon */
    *used = true;
    size_t keep = 0;
    for (size_t i = 0; i < n; i++) {
        const struct store_instance_health *found = NULL;
        for (size_t k = 0; k < nh && found == NULL; k++)
            if (strcmp(h[k].id, shots[i].ri->id) == 0)
                found = &h[k];
        if (found == NULL) {
            shots[keep++] = shots[i];
            continue;
        }
        free(shots[i].ri->health);
        shots[i].ri->health = orch_xstrdup(found->health);
    }
    store_instance_health_free(h, nh);
    return keep;
}

/* The daemon's record of why it last replaced an instance of the service. */
static void replacement_fill(struct reconciler *r, struct reconcile_service_status *st)
{
    struct store_status ss;
    struct orch_error e = {0};
    if (store_status_get(r->store, st->app, st->service, &ss, &e) == 0) {
        st->replaced = orch_xstrdup(ss.replaced);
        st->replaced_ms = ss.replaced_ms;
        store_status_free(&ss);
    } else {
        st->replaced = orch_xstrdup("");
    }
}

int reconcile_observe(struct reconciler *r, const char *app, struct reconcile_service_status **out,
                      size_t *n_out, struct orch_error *err)
{
    struct store_service *svcs = NULL;
    size_t n = 0;
    int rc = store_services_list(r->store, app, &svcs, &n, err);
    if (rc < 0)
        return rc;
    struct docker_container_list obs = {0};
    rc = recon_observe_list(r, app, &obs, err);
    if (rc < 0) {
        store_services_free(svcs, n);
        return rc;
    }
    /* services being deleted: listed (deleting) while any of their containers is left */
    struct store_deletion *dels = NULL;
    size_t n_dels = 0;
    struct orch_error de = {0};
    if (store_deletions_list(r->store, app, &dels, &n_dels, &de) < 0)
        n_dels = 0;
    struct reconcile_service_status *v = orch_xcalloc(n + n_dels + 1, sizeof(*v));
    struct spec_service *tmpls = orch_xcalloc(n + 1, sizeof(*tmpls));
    bool *have = orch_xcalloc(n + 1, sizeof(*have));
    struct oneshot *shots = orch_xcalloc(obs.n + 1, sizeof(*shots));
    size_t nshots = 0;
    size_t n_all = n;
    for (size_t i = 0; i < n_dels; i++) {
        bool listed = dels[i].service[0] == '\0';
        for (size_t k = 0; k < n && !listed; k++)
            listed =
                strcmp(svcs[k].app, dels[i].app) == 0 && strcmp(svcs[k].name, dels[i].service) == 0;
        if (listed)
            continue;
        struct reconcile_service_status *st = &v[n_all++];
        st->app = orch_xstrdup(dels[i].app);
        st->service = orch_xstrdup(dels[i].service);
        st->deleting = true;
        st->replaced = orch_xstrdup("");
        observe_service(st, NULL, &obs, shots, &nshots);
        if (st->n_instances == 0) { /* its containers are gone: the delete is as good as done */
            free(st->instances);
            free(st->app);
            free(st->service);
            free(st->replaced);
            memset(st, 0, sizeof(*st));
            n_all--;
        }
    }
    store_deletions_free(dels, n_dels);
    for (size_t i = 0; i < n; i++) {
        struct reconcile_service_status *st = &v[i];
        st->app = orch_xstrdup(svcs[i].app);
        st->service = orch_xstrdup(svcs[i].name);
        st->revision = svcs[i].revision;
        st->desired = svcs[i].replicas;
        struct store_revision rev;
        struct orch_error e = {0};
        if (store_revision_get(r->store, svcs[i].app, svcs[i].name, svcs[i].revision, &rev, &e) ==
            0) {
            have[i] = spec_template_from_json(rev.template_json, &tmpls[i], &e) == 0;
            store_revision_free(&rev);
        }
        observe_service(st, have[i] ? &tmpls[i] : NULL, &obs, shots, &nshots);
        replacement_fill(r, st);
    }
    bool used = false;
    nshots = daemon_view(r, app, shots, nshots, &used);
    if (nshots > 0 && r->prober != NULL)
        probe_once(r, shots, nshots);
    for (size_t i = 0; i < n; i++) {
        v[i].daemon_view = used;
        for (size_t j = 0; j < v[i].n_instances; j++) {
            const struct reconcile_instance *ri = &v[i].instances[j];
            bool running = strcmp(ri->state, "running") == 0;
            /* without a probe a running instance counts as healthy */
            if (running && (strcmp(ri->health, "healthy") == 0 || strcmp(ri->health, "none") == 0))
                v[i].healthy++;
        }
        if (have[i])
            spec_service_free(&tmpls[i]);
    }
    for (size_t i = n; i < n_all; i++)
        for (size_t j = 0; j < v[i].n_instances; j++)
            v[i].healthy += strcmp(v[i].instances[j].state, "running") == 0 &&
                            strcmp(v[i].instances[j].health, "none") == 0;
    free(shots);
    free(have);
    free(tmpls);
    docker_container_list_free(&obs);
    store_services_free(svcs, n);
    *out = v;
    *n_out = n_all;
    return 0;
}

void reconcile_status_free(struct reconcile_service_status *v, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        for (size_t j = 0; j < v[i].n_instances; j++) {
            struct reconcile_instance *ri = &v[i].instances[j];
            free(ri->id);
            free(ri->name);
            free(ri->state);
            free(ri->health);
            free(ri->probe_host);
            for (size_t k = 0; k < ri->n_endpoints; k++) {
                free(ri->endpoint_names[k]);
                free(ri->endpoints[k]);
            }
            free(ri->endpoint_names);
            free(ri->endpoints);
        }
        free(v[i].instances);
        free(v[i].app);
        free(v[i].service);
        free(v[i].replaced);
    }
    free(v);
}
