/* The daemon's published ports: keeps one listener of the balancer per `published` port of the
 * store's services, feeds it the registry's instances, turns a port it cannot bind into an
 * event, and writes the figures `status` shows. It decides nothing about instances (the
 * reconciler does) and never touches the engine. */
#include "daemon_lb.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "base/log.h"
#include "base/util.h"
#include "lb/lb.h"
#include "lb/lb_report.h"
#include "registry/registry.h"
#include "spec/spec.h"

#define RATE_SAMPLES (DAEMON_LB_RATE_WINDOW_MS / DAEMON_LB_TICK_MS + 1)

struct dl_port {
    char *key; /* APP/SERVICE/PORT */
    char *app;
    char *service;
    char *port;
    int published;
    enum lb_mode mode;
    bool listening;
    char *error;      /* why it is not listening ("" when it is) */
    int64_t retry_ms; /* next listen attempt while not listening */
    bool seen;        /* in the store at this sync */
    /* a ring of (time, requests, connections) samples for the rates */
    int64_t s_ms[RATE_SAMPLES];
    uint64_t s_req[RATE_SAMPLES];
    uint64_t s_conn[RATE_SAMPLES];
    size_t s_n, s_next;
    double rps, cps;
};

struct daemon_lb {
    struct lb *lb;
    struct store *store;
    char *address;
    char *state_dir;
    struct dl_port *v;
    size_t n;
    int64_t next_tick_ms;
    bool reported;         /* a report file was written (removed on close) */
    struct orch_strv dead; /* containers that died and may still be listed as running */
};

struct daemon_lb *daemon_lb_new(uv_loop_t *loop, struct store *store, const char *address,
                                const char *state_dir)
{
    struct daemon_lb *dl = orch_xcalloc(1, sizeof(*dl));
    dl->lb = lb_new(loop);
    dl->store = store;
    dl->address = orch_xstrdup(address);
    dl->state_dir = orch_xstrdup(state_dir);
    return dl;
}

static void port_free(struct dl_port *p)
{
    free(p->key);
    free(p->app);
    free(p->service);
    free(p->port);
    free(p->error);
}

static void event(struct daemon_lb *dl, const struct dl_port *p, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void event(struct daemon_lb *dl, const struct dl_port *p, const char *fmt, ...)
{
    char msg[512];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    orch_log(ORCH_LOG_INFO, "%s/%s: %s", p->app, p->service, msg);
    struct orch_error e = {0};
    if (store_event_add(dl->store, p->app, p->service, "published", msg, orch_now_wall_ms(), &e) <
        0)
        orch_log(ORCH_LOG_WARN, "%s/%s: event not recorded: %s", p->app, p->service, e.msg);
}

/* Listens for p; a failure is recorded (an event when the reason is new) and retried later. */
static void port_listen(struct daemon_lb *dl, struct dl_port *p, int64_t now)
{
    struct orch_error e = {0};
    if (lb_listen(dl->lb, p->key, dl->address, (uint16_t)p->published, p->mode, &e) == 0) {
        if (p->error != NULL && p->error[0] != '\0')
            event(dl, p, "serving %s:%d again (port %s)", dl->address, p->published, p->port);
        else
            orch_log(ORCH_LOG_INFO, "%s/%s: serving %s:%d (port %s, %s)", p->app, p->service,
                     dl->address, p->published, p->port, lb_mode_name(p->mode));
        p->listening = true;
        free(p->error);
        p->error = orch_xstrdup("");
        p->s_n = p->s_next = 0;
        p->rps = p->cps = 0;
        return;
    }
    p->listening = false;
    p->retry_ms = now + DAEMON_LB_RETRY_MS;
    if (p->error == NULL || strcmp(p->error, e.msg) != 0) {
        event(dl, p, "cannot serve published port %d: %s (retrying every %ds)", p->published, e.msg,
              DAEMON_LB_RETRY_MS / 1000);
        free(p->error);
        p->error = orch_xstrdup(e.msg);
    }
}

static struct dl_port *port_find(struct daemon_lb *dl, const char *key)
{
    for (size_t i = 0; i < dl->n; i++)
        if (strcmp(dl->v[i].key, key) == 0)
            return &dl->v[i];
    return NULL;
}

/* One published port of the store: keeps or (re)starts its listener. */
static bool port_want(struct daemon_lb *dl, const char *app, const char *service,
                      const struct spec_port *sp, int64_t now)
{
    _cleanup_free_ char *key = orch_xasprintf("%s/%s/%s", app, service, sp->name);
    enum lb_mode mode = sp->balance == SPEC_BALANCE_LEAST_CONN ? LB_LEAST_CONN : LB_ROUND_ROBIN;
    struct dl_port *p = port_find(dl, key);
    bool changed = false;
    if (p != NULL && p->published != sp->published) {
        lb_unlisten(dl->lb, p->key);
        p->listening = false;
        free(p->error);
        p->error = NULL;
        p->published = sp->published;
        p->mode = mode;
        p->retry_ms = 0;
        changed = true;
    } else if (p != NULL && p->mode != mode) {
        struct orch_error e = {0};
        p->mode = mode;
        if (p->listening && lb_set_mode(dl->lb, p->key, mode, &e) < 0)
            orch_log(ORCH_LOG_WARN, "%s: %s", p->key, e.msg);
    } else if (p == NULL) {
        dl->v = orch_xrealloc(dl->v, (dl->n + 1) * sizeof(*dl->v));
        p = &dl->v[dl->n++];
        memset(p, 0, sizeof(*p));
        p->key = orch_steal(&key);
        p->app = orch_xstrdup(app);
        p->service = orch_xstrdup(service);
        p->port = orch_xstrdup(sp->name);
        p->published = sp->published;
        p->mode = mode;
        changed = true;
    }
    p->seen = true;
    if (!p->listening && now >= p->retry_ms) {
        port_listen(dl, p, now);
        changed = changed || p->listening;
    }
    return changed;
}

bool daemon_lb_sync(struct daemon_lb *dl)
{
    struct store_service *rows = NULL;
    size_t n = 0;
    struct orch_error e = {0};
    if (store_services_list(dl->store, NULL, &rows, &n, &e) < 0) {
        orch_log(ORCH_LOG_WARN, "daemon: published ports not updated: %s", e.msg);
        return false;
    }
    int64_t now = orch_now_mono_ms();
    bool changed = false;
    for (size_t i = 0; i < dl->n; i++)
        dl->v[i].seen = false;
    for (size_t r = 0; r < n; r++) {
        struct spec_service svc = {0};
        if (rows[r].spec_json == NULL || spec_service_from_json(rows[r].spec_json, &svc, &e) < 0)
            continue;
        for (size_t k = 0; k < svc.ports_len; k++)
            if (svc.ports[k].published > 0 && svc.ports[k].protocol == SPEC_PROTO_TCP)
                changed = port_want(dl, rows[r].app, rows[r].name, &svc.ports[k], now) || changed;
        spec_service_free(&svc);
    }
    store_services_free(rows, n);
    if (changed)
        dl->next_tick_ms = 0; /* report at once: `apply --wait` waits for it */
    for (size_t i = 0; i < dl->n;) {
        struct dl_port *p = &dl->v[i];
        if (p->seen) {
            i++;
            continue;
        }
        if (p->listening)
            orch_log(ORCH_LOG_INFO, "%s/%s: no longer serving %s:%d", p->app, p->service,
                     dl->address, p->published);
        lb_unlisten(dl->lb, p->key);
        port_free(p);
        dl->v[i] = dl->v[--dl->n];
        changed = true;
    }
    return changed;
}

static bool is_dead(const struct daemon_lb *dl, const char *id)
{
    for (size_t i = 0; i < dl->dead.n; i++)
        if (strcmp(dl->dead.v[i], id) == 0)
            return true;
    return false;
}

static void dead_forget(struct daemon_lb *dl, size_t i)
{
    free(dl->dead.v[i]);
    dl->dead.v[i] = dl->dead.v[--dl->dead.n];
    dl->dead.v[dl->dead.n] = NULL;
}

void daemon_lb_on_event(struct daemon_lb *dl, const char *action, const char *id)
{
    if (dl == NULL || dl->n == 0 || action == NULL || id == NULL)
        return;
    if (strcmp(action, "die") == 0 && !is_dead(dl, id)) {
        lb_drain_instance(dl->lb, NULL, id, 0);
        if (dl->dead.n < 4096)
            orch_strv_push(&dl->dead, id);
    } else if (strcmp(action, "start") == 0) {
        for (size_t i = 0; i < dl->dead.n; i++)
            if (strcmp(dl->dead.v[i], id) == 0) {
                dead_forget(dl, i);
                break;
            }
    }
}

void daemon_lb_set_instances(struct daemon_lb *dl, const struct registry_instance *v, size_t n)
{
    /* the dead that left the engine's list are forgotten */
    for (size_t i = 0; i < dl->dead.n;) {
        bool listed = false;
        for (size_t j = 0; j < n && !listed; j++)
            listed = strcmp(v[j].id, dl->dead.v[i]) == 0;
        if (listed)
            i++;
        else
            dead_forget(dl, i);
    }
    struct lb_backend *b = orch_xcalloc(n + 1, sizeof(*b));
    for (size_t i = 0; i < dl->n; i++) {
        struct dl_port *p = &dl->v[i];
        if (!p->listening)
            continue;
        size_t nb = 0;
        for (size_t j = 0; j < n; j++) {
            const struct registry_instance *ri = &v[j];
            if (strcmp(ri->app, p->app) != 0 || strcmp(ri->service, p->service) != 0)
                continue;
            for (size_t k = 0; k < ri->n_ports; k++) {
                const struct registry_port *rp = &ri->ports[k];
                if (rp->proto != REGISTRY_TCP || rp->port == 0 || strcmp(rp->name, p->port) != 0)
                    continue;
                b[nb++] = (struct lb_backend){
                    .id = ri->id,
                    .address = ri->ipv4,
                    .port = rp->port,
                    .flags = ri->healthy && !is_dead(dl, ri->id) ? LB_BACKEND_HEALTHY : 0,
                };
                break;
            }
        }
        struct orch_error e = {0};
        if (lb_set_backends(dl->lb, p->key, b, nb, &e) < 0)
            orch_log(ORCH_LOG_WARN, "%s: backends not updated: %s", p->key, e.msg);
    }
    free(b);
}

void daemon_lb_on_stop(void *data, const char *id, int64_t grace_ms)
{
    struct daemon_lb *dl = data;
    if (dl != NULL && dl->n > 0)
        lb_drain_instance(dl->lb, NULL, id, (uint64_t)(grace_ms > 0 ? grace_ms : 0));
}

int64_t daemon_lb_drain_ms(const struct daemon_lb *dl)
{
    return dl != NULL && dl->n > 0 ? DAEMON_LB_DRAIN_MS : 0;
}

/* Adds a sample and measures the rates over the oldest sample kept. */
static void port_sample(struct dl_port *p, const struct lb_stats *st, int64_t now)
{
    size_t i = p->s_next;
    p->s_ms[i] = now;
    p->s_req[i] = st->requests;
    p->s_conn[i] = st->conns_total;
    p->s_next = (i + 1) % RATE_SAMPLES;
    if (p->s_n < RATE_SAMPLES)
        p->s_n++;
    size_t oldest = p->s_n < RATE_SAMPLES ? 0 : p->s_next;
    int64_t dt = now - p->s_ms[oldest];
    if (dt <= 0)
        return;
    p->rps = (double)(st->requests - p->s_req[oldest]) * 1000.0 / (double)dt;
    p->cps = (double)(st->conns_total - p->s_conn[oldest]) * 1000.0 / (double)dt;
}

void daemon_lb_tick(struct daemon_lb *dl, int64_t now_ms)
{
    if (now_ms < dl->next_tick_ms)
        return;
    dl->next_tick_ms = now_ms + DAEMON_LB_TICK_MS;
    if (dl->n == 0 && !dl->reported)
        return;
    struct lb_report r = {.written_ms = orch_now_wall_ms(), .pid = (long)getpid()};
    r.v = orch_xcalloc(dl->n + 1, sizeof(*r.v));
    char(*listen)[80] = orch_xcalloc(dl->n + 1, sizeof(*listen));
    for (size_t i = 0; i < dl->n; i++) {
        struct dl_port *p = &dl->v[i];
        if (!p->listening && now_ms >= p->retry_ms)
            port_listen(dl, p, now_ms);
        struct lb_stats st = {0};
        struct orch_error e = {0};
        if (p->listening && lb_stats(dl->lb, p->key, &st, &e) == 0)
            port_sample(p, &st, now_ms);
        snprintf(listen[i], sizeof(listen[i]), "%s:%d", dl->address, p->published);
        r.v[r.n++] = (struct lb_report_port){
            .app = p->app,
            .service = p->service,
            .port = p->port,
            .listen = listen[i],
            .balance = (char *)lb_mode_name(p->mode),
            .error = p->error ? p->error : "",
            .connections = st.conns_total,
            .active = st.conns_active,
            .rejected = st.conns_rejected,
            .connect_failed = st.connect_failed,
            .requests = st.requests,
            .bytes_in = st.bytes_in,
            .bytes_out = st.bytes_out,
            .requests_per_second = p->listening ? p->rps : 0,
            .connections_per_second = p->listening ? p->cps : 0,
            .backends = st.backends,
            .backends_usable = st.backends_usable,
        };
    }
    struct orch_error e = {0};
    if (lb_report_write(dl->state_dir, &r, &e) < 0)
        orch_log(ORCH_LOG_WARN, "daemon: %s", e.msg);
    else
        dl->reported = true;
    free(listen);
    free(r.v);
}

double daemon_lb_requests_per_second(const struct daemon_lb *dl, const char *app,
                                     const char *service)
{
    double sum = -1;
    for (size_t i = 0; dl != NULL && i < dl->n; i++) {
        const struct dl_port *p = &dl->v[i];
        if (!p->listening || strcmp(p->app, app) != 0 || strcmp(p->service, service) != 0)
            continue;
        sum = (sum < 0 ? 0 : sum) + p->rps;
    }
    return sum;
}

void daemon_lb_close(struct daemon_lb *dl)
{
    if (dl == NULL)
        return;
    lb_close(dl->lb, 1000, NULL, NULL);
    if (dl->reported) {
        _cleanup_free_ char *path = orch_xasprintf("%s/%s", dl->state_dir, LB_REPORT_FILE);
        unlink(path);
    }
    for (size_t i = 0; i < dl->n; i++)
        port_free(&dl->v[i]);
    free(dl->v);
    orch_strv_free(&dl->dead);
    free(dl->address);
    free(dl->state_dir);
    free(dl);
}
