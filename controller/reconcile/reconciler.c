/* The reconciler itself: its loop, Docker client, prober and publish address, and the engine
 * helpers every part of the module shares (one list call, waiting on the loop, label and port
 * readers). It keeps no per-app state and makes no decision; see pass.c for the work. */
#include "reconcile_internal.h"

#include <arpa/inet.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"
#include "spec/spec.h"

static void on_health_change(void *data, const char *id, enum health_status old_status,
                             enum health_status new_status)
{
    struct reconciler *r = data;
    r->health_changed = true;
    if (!orch_strv_contains(&r->changed_ids, id))
        orch_strv_push(&r->changed_ids, id);
    orch_log(ORCH_LOG_DEBUG, "instance %.12s: %s -> %s", id, health_status_name(old_status),
             health_status_name(new_status));
}

/* ---- set-up ---------------------------------------------------------------------------- */

int recon_sync(struct reconciler *r, struct docker_sync *s, size_t n, struct orch_error *err)
{
    return docker_sync_wait(r->dc, s, n, err);
}

int reconcile_publish_address_check(const char *addr, struct orch_error *err)
{
    struct in_addr a4;
    struct in6_addr a6;
    if (addr != NULL && (inet_pton(AF_INET, addr, &a4) == 1 || inet_pton(AF_INET6, addr, &a6) == 1))
        return 0;
    /* Docker binds a HostIp it cannot parse to every interface (0.0.0.0 and [::]): a name or a
     * typo would publish what is meant for loopback on the whole network. Names are refused
     * rather than resolved, so what is published never depends on a resolver. */
    return orch_fail(err, ORCH_E_INVALID, 0,
                     "ORCH_PUBLISH_ADDRESS '%s' is not an IP address (give an IPv4 or IPv6 "
                     "literal such as 127.0.0.1 or ::1; host names are not accepted)",
                     addr ? addr : "");
}

int reconciler_new(struct store *s, const struct reconcile_options *opts, struct reconciler **out,
                   struct orch_error *err)
{
    const char *pub =
        opts && opts->publish_address ? opts->publish_address : getenv("ORCH_PUBLISH_ADDRESS");
    if (pub != NULL && *pub != '\0' && reconcile_publish_address_check(pub, err) < 0)
        return -(int)err->code;
    struct reconciler *r = orch_xcalloc(1, sizeof(*r));
    r->store = s;
    r->progress = opts ? opts->progress : false;
    r->timeout_ms = opts ? opts->timeout_ms : 0;
    r->stop = opts ? opts->stop : NULL;
    r->publish_address = orch_xstrdup(pub && *pub ? pub : "127.0.0.1");
    int rc = uv_loop_init(&r->loop);
    if (rc < 0) {
        free(r->publish_address);
        free(r);
        return orch_fail(err, ORCH_E_ENV, 0, "cannot create an event loop: %s", uv_strerror(rc));
    }
    r->state_id = store_state_id(s, err);
    if (r->state_id == NULL) {
        uv_loop_close(&r->loop);
        free(r->publish_address);
        free(r);
        return -(int)err->code;
    }
    rc = docker_endpoint_from_env(&r->ep, err);
    if (rc == 0)
        rc = docker_client_new(&r->loop, &r->ep, NULL, &r->dc, err);
    if (rc == 0) {
        struct health_prober_options po = {.on_change = on_health_change, .data = r};
        r->prober = health_prober_new(&r->loop, r->dc, &po);
    }
    if (rc == 0) {
        struct docker_sync ping = {0};
        rc = docker_ping(r->dc, docker_sync_done, &ping, err);
        if (rc == 0)
            rc = recon_sync(r, &ping, 1, err);
    }
    if (rc < 0) {
        reconciler_free(r);
        return rc;
    }
    *out = r;
    return 0;
}

void reconciler_free(struct reconciler *r)
{
    if (r == NULL)
        return;
    health_prober_free(r->prober);
    if (r->dc != NULL)
        docker_client_close(r->dc);
    /* let the client's handles run their close callbacks */
    while (uv_run(&r->loop, UV_RUN_DEFAULT) != 0)
        ;
    uv_loop_close(&r->loop);
    docker_endpoint_free(&r->ep);
    orch_strv_free(&r->changed_ids);
    free(r->publish_address);
    free(r->state_id);
    free(r);
}

struct store *reconciler_store(struct reconciler *r)
{
    return r->store;
}

const char *reconciler_state_id(const struct reconciler *r)
{
    return r->state_id;
}

const char *reconciler_publish_address(const struct reconciler *r)
{
    return r->publish_address;
}

uv_loop_t *reconciler_loop(struct reconciler *r)
{
    return &r->loop;
}

struct docker_client *reconciler_docker(struct reconciler *r)
{
    return r->dc;
}

bool reconciler_take_health_changed(struct reconciler *r, struct orch_strv *ids)
{
    bool v = r->health_changed;
    r->health_changed = false;
    for (size_t i = 0; ids != NULL && i < r->changed_ids.n; i++)
        orch_strv_push(ids, r->changed_ids.v[i]);
    orch_strv_free(&r->changed_ids);
    return v;
}

/* ---- observation ------------------------------------------------------------------------ */

/* The containers of this state dir (orch.state) for one app or all: containers of other state
 * dirs on the same engine, or without orch.app, are never seen and so never touched. */
int recon_observe_list(struct reconciler *r, const char *app, struct docker_container_list *out,
                       struct orch_error *err)
{
    _cleanup_free_ char *label =
        app ? orch_xasprintf("orch.app=%s", app) : orch_xstrdup("orch.app");
    _cleanup_free_ char *state = orch_xasprintf("orch.state=%s", r->state_id);
    const char *labels[] = {label, state};
    struct docker_sync s = {0};
    int rc = docker_containers_list(r->dc, labels, 2, out, docker_sync_done, &s, err);
    if (rc < 0)
        return rc;
    return recon_sync(r, &s, 1, err);
}

int64_t recon_label_revision(const struct docker_container *c)
{
    const char *v = docker_kvs_get(&c->labels, "orch.revision");
    if (v == NULL)
        return 0;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    return (end && *end == '\0' && n > 0) ? n : 0;
}

const char *recon_container_name(const struct docker_container *c)
{
    return c->names.n > 0 ? c->names.v[0] : c->id;
}

/* The published endpoint of container port `port`/`proto`: host and host port. */
bool recon_published(const struct docker_container *c, int port, const char *proto,
                     const char **host, int *host_port)
{
    for (size_t i = 0; i < c->n_ports; i++) {
        const struct docker_port *p = &c->ports[i];
        if (p->private_port != port || p->public_port == 0)
            continue;
        if (p->type != NULL && strcmp(p->type, proto) != 0)
            continue;
        /* the engine may list a binding once per address family: prefer IPv4 */
        if (*host_port != 0 && p->ip != NULL && strchr(p->ip, ':') != NULL)
            continue;
        *host = p->ip != NULL && *p->ip ? p->ip : "127.0.0.1";
        *host_port = p->public_port;
    }
    return *host_port != 0;
}

bool recon_detached(const char *app, const struct docker_container *c)
{
    if (c->state == NULL || strcmp(c->state, "running") != 0 || !c->has_networks)
        return false;
    _cleanup_free_ char *name = orch_xasprintf("orch-%s", app);
    return !orch_strv_contains(&c->networks, name);
}

static void idle_fired(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Waits ms on the loop (other handles keep running meanwhile). */
void recon_idle(struct reconciler *r, int64_t ms)
{
    bool fired = false;
    uv_timer_t t;
    uv_timer_init(&r->loop, &t);
    t.data = &fired;
    if (uv_timer_start(&t, idle_fired, (uint64_t)ms, 0) == 0) {
        while (!fired)
            uv_run(&r->loop, UV_RUN_ONCE);
    }
    /* the handle lives on this stack frame: close it and let the loop finish the close */
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&r->loop, UV_RUN_NOWAIT);
}

/* Waits ms on the loop, or less: until a probe verdict changes (which may be what the run is
 * waiting for). The flag is taken. */
void recon_wait(struct reconciler *r, int64_t ms)
{
    bool fired = false;
    uv_timer_t t;
    uv_timer_init(&r->loop, &t);
    t.data = &fired;
    if (uv_timer_start(&t, idle_fired, (uint64_t)(ms > 0 ? ms : 0), 0) == 0) {
        while (!fired && !r->health_changed)
            uv_run(&r->loop, UV_RUN_ONCE);
    }
    r->health_changed = false;
    orch_strv_free(&r->changed_ids);
    uv_close((uv_handle_t *)&t, NULL);
    uv_run(&r->loop, UV_RUN_NOWAIT);
}

int reconciler_container_apps(struct reconciler *r, struct orch_strv *out, struct orch_error *err)
{
    struct docker_container_list obs = {0};
    int rc = recon_observe_list(r, NULL, &obs, err);
    for (size_t i = 0; rc == 0 && i < obs.n; i++) {
        const char *app = docker_kvs_get(&obs.v[i].labels, "orch.app");
        if (app != NULL && orch_is_dns_label(app, SPEC_NAME_MAX) && !orch_strv_contains(out, app))
            orch_strv_push(out, app);
    }
    docker_container_list_free(&obs);
    return rc;
}

void reconciler_idle(struct reconciler *r, int64_t ms)
{
    recon_idle(r, ms);
}
