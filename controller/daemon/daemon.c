/* The daemon: one loop that wires the reconciler, its probes and the DNS server together. It
 * owns the lock of the state dir, the signal, wake-up and event-stream handles, the work queue
 * with one reconcile run per app, and the registry it publishes; every change to Docker goes
 * through reconcile_run_pass. Callbacks only mark apps dirty or set flags: passes run from the
 * top of the loop, never from inside a libuv callback. */
#include "daemon.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "base/log.h"
#include "base/util.h"
#include "daemon_autoscale.h"
#include "daemon_lb.h"
#include "docker/docker_client.h"
#include "reconcile/reconcile.h"
#include "registry/dns_server.h"
#include "server.h"
#include "registry/registry.h"

#define DAEMON_WAKE_MS 100  /* longest sleep between looks at the queue */
#define DAEMON_RETRY_MS 250 /* an app that is not done is passed again after this */
#define DAEMON_ENGINE_BACKOFF_MAX 30000
#define DAEMON_EVENT_FOLLOW_MS 3000 /* passes keep coming this long after an event */

struct app_entry {
    char *name;
    struct reconcile_run *run;
    bool dirty;
    int64_t next_ms;       /* next pass due (INT64_MAX: only when dirty) */
    bool done;             /* converged at the last pass */
    int64_t last_event_ms; /* the engine's last event about the app */
};

struct daemon {
    struct store *store;
    struct reconciler *rec;
    int64_t resync_ms;
    struct app_entry *apps;
    size_t n_apps;
    bool stop;
    uv_signal_t sigterm, sigint;
    uv_timer_t wake;
    bool handles_open;
    struct docker_stream *events;
    bool events_ended;
    int64_t events_retry_ms;
    int64_t engine_backoff_ms;
    struct dns_server *dns;
    struct api_server *api;
    struct api_server_config api_cfg;
    struct daemon_lb *lb; /* the published ports */
    int64_t dns_ttl_ms;
    const char *domain;
    uint32_t serial;
    bool registry_dirty;
    int64_t next_resync;                /* next discovery of apps (0: at once) */
    int64_t data_version;               /* the store's, as last seen */
    struct daemon_autoscale *autoscale; /* NULL: --autoscale-sync off */
};

bool daemon_is_running(const char *state_dir, pid_t *pid)
{
    return store_daemon_running(state_dir, pid);
}

static void on_run_idle(void *data, struct reconcile_run *run);

static struct app_entry *app_get(struct daemon *d, const char *name)
{
    for (size_t i = 0; i < d->n_apps; i++)
        if (strcmp(d->apps[i].name, name) == 0)
            return &d->apps[i];
    d->apps = orch_xrealloc(d->apps, (d->n_apps + 1) * sizeof(*d->apps));
    struct app_entry *a = &d->apps[d->n_apps++];
    memset(a, 0, sizeof(*a));
    a->name = orch_xstrdup(name);
    a->run = reconcile_run_new(d->rec, name, false);
    reconcile_run_set_drain(a->run, d->dns != NULL ? d->dns_ttl_ms : 0);
    reconcile_run_set_on_stop(a->run, daemon_lb_on_stop, d->lb);
    reconcile_run_set_async(a->run, on_run_idle, d);
    a->dirty = true;
    return a;
}

/* The autoscaler's hooks (daemon_autoscale.h): the run of a known app, and a changed count. */
static struct reconcile_run *autoscale_run_of(void *arg, const char *app)
{
    struct daemon *d = arg;
    for (size_t i = 0; i < d->n_apps; i++)
        if (strcmp(d->apps[i].name, app) == 0)
            return d->apps[i].run;
    return NULL;
}

static void autoscale_changed(void *arg, const char *app)
{
    app_get(arg, app)->dirty = true;
}

static void app_drop(struct daemon *d, size_t i)
{
    reconcile_run_free(d->apps[i].run);
    free(d->apps[i].name);
    d->apps[i] = d->apps[--d->n_apps];
}

static void mark_all(struct daemon *d)
{
    for (size_t i = 0; i < d->n_apps; i++)
        d->apps[i].dirty = true;
}

/* The actions an app's pass issued have all completed: its next pass takes them in. */
static void on_run_idle(void *data, struct reconcile_run *run)
{
    struct daemon *d = data;
    for (size_t i = 0; i < d->n_apps; i++)
        if (d->apps[i].run == run)
            d->apps[i].dirty = true;
}

/* Probe verdicts changed: only the apps of those instances need a pass (all of them when an
 * instance is no app's, which should not happen). */
static void mark_changed(struct daemon *d, const struct orch_strv *ids)
{
    for (size_t k = 0; k < ids->n; k++) {
        bool found = false;
        for (size_t i = 0; i < d->n_apps; i++) {
            if (reconcile_run_knows(d->apps[i].run, ids->v[k])) {
                d->apps[i].dirty = true;
                found = true;
            }
        }
        if (!found) {
            mark_all(d);
            return;
        }
    }
}

/* Every app the store knows, plus every app that still has containers (deleted ones must be
 * cleaned up): one list call. */
static int discover_apps(struct daemon *d, struct orch_error *err)
{
    struct store_app *apps = NULL;
    size_t n = 0;
    int rc = store_apps_list(d->store, &apps, &n, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        app_get(d, apps[i].name);
    store_apps_free(apps, n);
    /* deletes in progress, even with no container left (their network may be) */
    struct store_deletion *dels = NULL;
    rc = store_deletions_list(d->store, NULL, &dels, &n, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++)
        app_get(d, dels[i].app);
    store_deletions_free(dels, n);
    struct orch_strv names = {0};
    rc = reconciler_container_apps(d->rec, &names, err);
    for (size_t i = 0; rc == 0 && i < names.n; i++)
        app_get(d, names.v[i]);
    orch_strv_free(&names);
    mark_all(d);
    return rc;
}

static void on_signal(uv_signal_t *h, int signum)
{
    struct daemon *d = h->data;
    orch_log(ORCH_LOG_INFO, "daemon: %s received; stopping (containers keep running)",
             strsignal(signum));
    d->stop = true;
}

static void on_wake(uv_timer_t *t)
{
    (void)t; /* only bounds how long uv_run(UV_RUN_ONCE) sleeps */
}

static void on_event(void *data, const struct docker_event *ev)
{
    struct daemon *d = data;
    const char *app = docker_kvs_get(&ev->attributes, "orch.app");
    if (app == NULL || d->stop)
        return;
    /* die, destroy, kill, oom, health_status...: any change of an instance of the app */
    orch_log(ORCH_LOG_DEBUG, "event: %s %s %.12s (%s)", ev->type ? ev->type : "?",
             ev->action ? ev->action : "?", ev->actor_id ? ev->actor_id : "", app);
    daemon_lb_on_event(d->lb, ev->action, ev->actor_id); /* a dead instance: no new connection */
    struct app_entry *a = app_get(d, app);
    a->dirty = true;
    a->last_event_ms = orch_now_mono_ms();
}

static void on_events_end(void *data, long status, const struct orch_error *err)
{
    struct daemon *d = data;
    d->events = NULL;
    d->events_ended = true;
    if (!d->stop)
        orch_log(ORCH_LOG_WARN, "daemon: the engine's event stream ended%s%s; reconnecting",
                 err && err->msg[0] ? ": " : "", err ? err->msg : "");
}

static void events_start(struct daemon *d)
{
    _cleanup_free_ char *state = orch_xasprintf("orch.state=%s", reconciler_state_id(d->rec));
    const char *labels[] = {"orch.app", state};
    struct orch_error e = {0};
    d->events_ended = false;
    if (docker_events_watch(reconciler_docker(d->rec), labels, 2, on_event, on_events_end, d,
                            &d->events, &e) < 0) {
        orch_log(ORCH_LOG_WARN, "daemon: cannot watch engine events: %s", e.msg);
        d->events = NULL;
        d->events_ended = true;
    }
}

/* The engine went away: wait for it with backoff (1 s doubling to 30 s), then resync. */
static void engine_wait(struct daemon *d)
{
    int64_t backoff = 1000;
    while (!d->stop) {
        struct docker_sync s = {0};
        struct orch_error e = {0};
        if (docker_ping(reconciler_docker(d->rec), docker_sync_done, &s, &e) == 0 &&
            docker_sync_wait(reconciler_docker(d->rec), &s, 1, &e) == 0) {
            orch_log(ORCH_LOG_INFO, "daemon: the engine answers again; resyncing");
            return;
        }
        orch_log(ORCH_LOG_WARN, "daemon: %s; retrying in %llds", e.msg,
                 (long long)(backoff / 1000));
        reconciler_idle(d->rec, backoff);
        backoff = backoff * 2 > DAEMON_ENGINE_BACKOFF_MAX ? DAEMON_ENGINE_BACKOFF_MAX : backoff * 2;
    }
}

/* Rebuilds the registry from every app's services and instances of the last pass and swaps it
 * in; the published ports' backends follow the same instances. */
static void registry_publish(struct daemon *d)
{
    size_t total = 0, total_svcs = 0;
    for (size_t i = 0; i < d->n_apps; i++) {
        total += reconcile_run_endpoint_count(d->apps[i].run);
        total_svcs += reconcile_run_service_count(d->apps[i].run);
    }
    struct registry_instance *inst = orch_xcalloc(total + 1, sizeof(*inst));
    struct registry_service *svcs = orch_xcalloc(total_svcs + 1, sizeof(*svcs));
    size_t n = 0, n_svcs = 0;
    for (size_t i = 0; i < d->n_apps; i++) {
        n += reconcile_run_endpoints(d->apps[i].run, inst + n, total - n);
        n_svcs += reconcile_run_services(d->apps[i].run, svcs + n_svcs, total_svcs - n_svcs);
    }
    daemon_lb_set_instances(d->lb, inst, n);
    if (d->dns == NULL) {
        free(inst);
        free(svcs);
        return;
    }
    struct registry_options ro = {
        .zone = d->domain,
        .ttl = (uint32_t)((d->dns_ttl_ms + 999) / 1000),
        .serial = ++d->serial,
        .services = svcs,
        .n_services = n_svcs,
    };
    struct registry *reg = NULL;
    struct orch_error e = {0};
    if (registry_build(&ro, inst, n, &reg, &e) == 0)
        dns_server_set_registry(d->dns, reg);
    else
        orch_log(ORCH_LOG_WARN, "daemon: registry not updated: %s", e.msg);
    free(inst);
    free(svcs);
}

static void api_stopped(void *arg)
{
    *(bool *)arg = true;
}

static void close_handles(struct daemon *d)
{
    if (d->events != NULL) {
        docker_stream_cancel(d->events);
        d->events = NULL;
    }
    if (d->dns != NULL) {
        dns_server_close(d->dns, NULL, NULL);
        d->dns = NULL;
    }
    if (d->api != NULL) {
        /* Graceful: in-flight calls finish (bounded by the server's shutdown timeout). */
        bool api_done = false;
        api_server_shutdown(d->api, api_stopped, &api_done);
        d->api = NULL;
        while (!api_done)
            uv_run(reconciler_loop(d->rec), UV_RUN_ONCE);
    }
    daemon_lb_close(d->lb);
    d->lb = NULL;
    if (d->handles_open) {
        uv_close((uv_handle_t *)&d->sigterm, NULL);
        uv_close((uv_handle_t *)&d->sigint, NULL);
        uv_close((uv_handle_t *)&d->wake, NULL);
        d->handles_open = false;
        uv_run(reconciler_loop(d->rec), UV_RUN_NOWAIT);
    }
}

/* One pass of one app; returns a negative code only for the engine going away. */
static int pass_app(struct daemon *d, struct app_entry *a, int64_t now)
{
    struct reconcile_pass pass;
    struct orch_error e = {0};
    a->dirty = false;
    /* without DNS, published ports still want a short drain before a stop */
    reconcile_run_set_drain(a->run, d->dns != NULL ? d->dns_ttl_ms : daemon_lb_drain_ms(d->lb));
    int rc = reconcile_run_pass(a->run, &pass, &e);
    if (rc == 0)
        rc = reconcile_run_write_status(a->run, &e);
    if (rc < 0) {
        if (e.code == ORCH_E_ENV)
            return rc;
        orch_log(ORCH_LOG_WARN, "%s: %s", a->name, e.msg);
        a->next_ms = now + 1000;
        return 0;
    }
    if (pass.done) {
        struct reconcile_report rep;
        if (!a->done) {
            if (reconcile_run_finish(a->run, false, &rep, &e) < 0)
                orch_log(ORCH_LOG_WARN, "%s: %s", a->name, e.msg);
            else
                orch_log(ORCH_LOG_INFO, "%s", rep.message);
        }
        a->done = true;
        a->next_ms = INT64_MAX;
    } else {
        /* with actions in flight, their completion marks the app dirty; the retry is only a
         * safety net */
        a->done = false;
        a->next_ms = pass.busy ? now : now + DAEMON_RETRY_MS;
    }
    /* The engine's container list lags its events (a container whose die event has arrived
     * may still be listed as running for a moment): after an event, look again shortly. */
    if (now - a->last_event_ms < DAEMON_EVENT_FOLLOW_MS && a->next_ms > now + DAEMON_RETRY_MS)
        a->next_ms = now + DAEMON_RETRY_MS;
    return 0;
}

/* Connects to the engine, waiting for it with backoff like after a restart. */
static int daemon_connect(struct daemon *d, struct orch_error *err)
{
    struct reconcile_options ro = {.progress = true};
    int64_t backoff = 1000;
    for (;;) {
        int rc = reconciler_new(d->store, &ro, &d->rec, err);
        if (rc == 0)
            break;
        if (rc != -ORCH_E_ENV)
            return rc;
        orch_log(ORCH_LOG_WARN, "daemon: %s; retrying in %llds", err->msg,
                 (long long)(backoff / 1000));
        sleep((unsigned)(backoff / 1000));
        backoff = backoff * 2 > DAEMON_ENGINE_BACKOFF_MAX ? DAEMON_ENGINE_BACKOFF_MAX : backoff * 2;
    }
    orch_error_clear(err);
    return 0;
}

/* Starts the DNS server (unless listen is "off") and the signal and wake-up handles. */
static int daemon_start_handles(struct daemon *d, const char *listen, struct orch_error *err)
{
    uv_loop_t *loop = reconciler_loop(d->rec);
    d->lb = daemon_lb_new(loop, d->store, reconciler_publish_address(d->rec), store_dir(d->store));
    if (strcmp(listen, "off") != 0) {
        struct dns_server_options dso = {.listen = listen};
        int rc = dns_server_start(loop, &dso, &d->dns, err);
        if (rc < 0)
            return orch_wrap(err, "DNS registry on %s", listen);
        orch_log(ORCH_LOG_INFO, "daemon: DNS registry on %s (UDP and TCP), zone %s, TTL %llds",
                 listen, d->domain, (long long)((d->dns_ttl_ms + 999) / 1000));
        registry_publish(d); /* empty but valid: NXDOMAIN/REFUSED rather than SERVFAIL */
    }
    if (d->api_cfg.listen == NULL || strcmp(d->api_cfg.listen, "off") != 0) {
        if (api_server_start(loop, &d->api_cfg, &d->api, err) < 0)
            return orch_wrap(err, "HTTP API");
    }
    uv_signal_init(loop, &d->sigterm);
    uv_signal_init(loop, &d->sigint);
    uv_timer_init(loop, &d->wake);
    d->sigterm.data = d->sigint.data = d->wake.data = d;
    d->handles_open = true;
    uv_signal_start(&d->sigterm, on_signal, SIGTERM);
    uv_signal_start(&d->sigint, on_signal, SIGINT);
    uv_timer_start(&d->wake, on_wake, DAEMON_WAKE_MS, DAEMON_WAKE_MS);
    return 0;
}

/* The engine went away mid-pass: wait for it, then resync everything and follow its events
 * again. */
static void daemon_engine_lost(struct daemon *d)
{
    orch_log(ORCH_LOG_WARN, "daemon: lost the engine");
    engine_wait(d);
    d->next_resync = 0;
    if (d->events != NULL) {
        docker_stream_cancel(d->events);
        d->events = NULL;
    }
    d->events_ended = true;
    d->events_retry_ms = 0;
}

/* One turn of the loop: rediscover apps when due, pass the apps that are due, republish the
 * registry, and sleep on the loop when nothing is due. */
static void daemon_turn(struct daemon *d)
{
    int64_t now = orch_now_mono_ms();
    bool engine_down = false;
    if (now >= d->next_resync) {
        struct orch_error e = {0};
        if (discover_apps(d, &e) < 0) {
            if (e.code == ORCH_E_ENV)
                engine_down = true;
            else
                orch_log(ORCH_LOG_WARN, "daemon: %s", e.msg);
        }
        d->next_resync = now + d->resync_ms;
        if (daemon_lb_sync(d->lb))
            d->registry_dirty = true;
    }
    daemon_lb_tick(d->lb, now);
    int64_t dv = store_data_version(d->store);
    if (dv != d->data_version) {
        /* a CLI command changed the desired state: look at every app now */
        d->data_version = dv;
        d->next_resync = 0;
        return;
    }
    struct orch_strv changed = {0};
    if (reconciler_take_health_changed(d->rec, &changed)) {
        mark_changed(d, &changed);
        d->registry_dirty = true;
    }
    orch_strv_free(&changed);
    if (d->events_ended && now >= d->events_retry_ms) {
        events_start(d);
        d->events_retry_ms = now + 2000;
    }
    for (size_t i = 0; !engine_down && !d->stop && i < d->n_apps; i++) {
        struct app_entry *a = &d->apps[i];
        if (!a->dirty && now < a->next_ms)
            continue;
        if (pass_app(d, a, now) < 0)
            engine_down = true;
        d->registry_dirty = true;
    }
    if (d->registry_dirty && !engine_down) {
        /* a change in health or placement shows at the next query */
        registry_publish(d);
        d->registry_dirty = false;
    }
    if (engine_down) {
        daemon_engine_lost(d);
        return;
    }
    /* apps with nothing left anywhere are forgotten */
    for (size_t i = 0; i < d->n_apps;) {
        struct app_entry *a = &d->apps[i];
        if (a->done && reconcile_run_is_empty(a->run))
            app_drop(d, i);
        else
            i++;
    }
    if (d->autoscale != NULL && !d->stop)
        daemon_autoscale_tick(d->autoscale, orch_now_mono_ms());
    bool due = false;
    for (size_t i = 0; i < d->n_apps; i++)
        if (d->apps[i].dirty || d->apps[i].next_ms <= orch_now_mono_ms())
            due = true;
    if (!due && !d->stop)
        uv_run(reconciler_loop(d->rec), UV_RUN_ONCE);
}

int daemon_run(struct store *s, const struct daemon_options *opts, struct orch_error *err)
{
    int lock_fd = -1;
    int rc = store_daemon_lock(store_dir(s), &lock_fd, err);
    if (rc < 0)
        return rc;
    signal(SIGPIPE, SIG_IGN);

    struct daemon d = {
        .store = s,
        .resync_ms = opts && opts->resync_ms > 0 ? opts->resync_ms : 10000,
        .dns_ttl_ms = opts && opts->dns_ttl_ms > 0 ? opts->dns_ttl_ms : 5000,
        .domain = opts && opts->domain ? opts->domain : REGISTRY_DEFAULT_ZONE,
    };
    const char *listen = opts && opts->dns_listen ? opts->dns_listen : DNS_SERVER_DEFAULT_LISTEN;
    if (opts && opts->api) {
        d.api_cfg = *opts->api;
        d.api_cfg.state_dir = store_dir(s);
    } else {
        d.api_cfg.listen = "off";
    }
    rc = daemon_connect(&d, err);
    if (rc == 0) {
        rc = daemon_start_handles(&d, listen, err);
        if (rc < 0) {
            close_handles(&d);
            reconciler_free(d.rec);
        }
    }
    if (rc < 0) {
        close(lock_fd);
        return rc;
    }
    orch_log(ORCH_LOG_INFO, "daemon: running on %s (pid %ld), resync every %llds", store_dir(s),
             (long)getpid(), (long long)(d.resync_ms / 1000));

    d.data_version = store_data_version(s);
    if (!opts || opts->autoscale_sync_ms >= 0) {
        struct daemon_autoscale_hooks hooks = {
            .run = autoscale_run_of, .changed = autoscale_changed, .arg = &d};
        int64_t sync_ms = opts && opts->autoscale_sync_ms > 0 ? opts->autoscale_sync_ms
                                                              : DAEMON_AUTOSCALE_SYNC_MS;
        d.autoscale = daemon_autoscale_new(s, d.rec, sync_ms, &hooks);
        orch_log(ORCH_LOG_INFO, "daemon: autoscaler sync every %lldms", (long long)sync_ms);
    }
    events_start(&d);
    while (!d.stop)
        daemon_turn(&d);

    close_handles(&d);
    while (d.n_apps > 0)
        app_drop(&d, d.n_apps - 1);
    free(d.apps);
    daemon_autoscale_free(d.autoscale); /* its pending stats requests end with the client */
    reconciler_free(d.rec);
    close(lock_fd);
    orch_log(ORCH_LOG_INFO, "daemon: stopped");
    return 0;
}
