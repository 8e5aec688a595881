/* The executor: observe containers (one list call per pass), ask the pure planner what to do
 * for each service, run the actions concurrently on the Docker client, and keep the rollout
 * records in the store. Level-triggered: every pass re-reads the store and re-observes the
 * engine, so a pass that crashed half-way is simply finished by the next one. It decides
 * nothing itself beyond rollout bookkeeping (deadline, crash loop, rollback target). */
#include "reconcile.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <uv.h>

#include "base/log.h"
#include "base/util.h"
#include "docker/docker_client.h"
#include "health/health_probe.h"
#include "plan/plan.h"
#include "registry/registry.h"
#include "rollout/rollout.h"
#include "spec/spec.h"

#define RECONCILE_IDLE_MS 250    /* wait between passes when nothing was done */
#define RECONCILE_SETTLE_MS 1000 /* a converged app is observed once more after this */
#define RECONCILE_CRASH_LIMIT 3  /* exits of the new revision that fail its rollout */
#define RECONCILE_BACKOFF_MIN_MS 1000
#define RECONCILE_BACKOFF_MAX_MS 60000
#define RECONCILE_BACKOFF_RESET_MS 10000 /* converged this long: backoff starts over */

struct reconciler {
    struct store *store;
    uv_loop_t loop;
    struct docker_client *dc;
    struct docker_endpoint ep;
    char *publish_address;
    int64_t timeout_ms;
    bool progress;
    struct health_prober *prober;
    char *state_id;      /* orch.state of the containers of this state dir */
    bool health_changed; /* a probe verdict changed since the flag was last cleared */
};

static void on_health_change(void *data, const char *id, enum health_status old_status,
                             enum health_status new_status)
{
    struct reconciler *r = data;
    r->health_changed = true;
    orch_log(ORCH_LOG_DEBUG, "instance %.12s: %s -> %s", id, health_status_name(old_status),
             health_status_name(new_status));
}

/* ---- set-up ---------------------------------------------------------------------------- */

static int run_sync(struct reconciler *r, struct docker_sync *s, size_t n, struct orch_error *err)
{
    return docker_sync_wait(r->dc, s, n, err);
}

int reconciler_new(struct store *s, const struct reconcile_options *opts, struct reconciler **out,
                   struct orch_error *err)
{
    struct reconciler *r = orch_xcalloc(1, sizeof(*r));
    r->store = s;
    r->progress = opts ? opts->progress : false;
    r->timeout_ms = opts ? opts->timeout_ms : 0;
    const char *pub =
        opts && opts->publish_address ? opts->publish_address : getenv("ORCH_PUBLISH_ADDRESS");
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
            rc = run_sync(r, &ping, 1, err);
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

uv_loop_t *reconciler_loop(struct reconciler *r)
{
    return &r->loop;
}

struct docker_client *reconciler_docker(struct reconciler *r)
{
    return r->dc;
}

bool reconciler_take_health_changed(struct reconciler *r)
{
    bool v = r->health_changed;
    r->health_changed = false;
    return v;
}

/* ---- observation ------------------------------------------------------------------------ */

/* The containers of this state dir (orch.state) for one app or all: containers of other state
 * dirs on the same engine, or without orch.app, are never seen and so never touched. */
static int observe_list(struct reconciler *r, const char *app, struct docker_container_list *out,
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
    return run_sync(r, &s, 1, err);
}

static int64_t label_revision(const struct docker_container *c)
{
    const char *v = docker_kvs_get(&c->labels, "orch.revision");
    if (v == NULL)
        return 0;
    char *end = NULL;
    long long n = strtoll(v, &end, 10);
    return (end && *end == '\0' && n > 0) ? n : 0;
}

static const char *container_name(const struct docker_container *c)
{
    return c->names.n > 0 ? c->names.v[0] : c->id;
}

/* ---- per-service run state (kept across passes of one reconcile_app) ---------------------- */

struct ready_mark {
    char *id;
    int64_t since_ms;
    bool exit_counted;   /* its exit was counted as a crash already */
    int64_t drain_since; /* left the DNS registry at (0: serving); stopped one TTL later */
};

/* One instance as the DNS registry sees it (owned strings). */
struct endpoint_snap {
    char *service;
    char *id;
    char ipv4[64];
    struct registry_port *ports;
    char **port_names;
    size_t n_ports;
    bool healthy;
};

/* One service of the desired state as the DNS registry sees it (owned strings). */
struct service_snap {
    char *service;
    struct registry_port *ports;
    char **port_names;
    size_t n_ports;
};

struct svc_run {
    char *name;
    bool present;             /* in the store this pass */
    struct store_service row; /* this pass */
    struct spec_service tmpl; /* template of row.revision */
    int64_t tmpl_revision;    /* which revision tmpl was loaded for (0: none) */
    bool has_rollout;         /* a rollout of row.revision is progressing */
    struct store_rollout rollout;
    int64_t image_ok_revision; /* revision whose image was found on the engine */
    int64_t last_progress_ms;
    long last_score;
    int crashes;
    int failed_actions;       /* creates/starts the engine refused in the last batch */
    int64_t settled_since_ms; /* 0: not settled */
    bool settle_confirmed;    /* this settled period was checked by inspecting the instances */
    int64_t backoff_ms;
    int64_t backoff_until_ms;
    bool settled; /* plan empty and converged this pass */
    bool failed;  /* its rollout failed and it is not driven any more */
    bool rolled_back;
    int64_t rollback_rollout_id; /* the rollout that was rolled back, while rolling back */
    int64_t rollback_target;     /* the revision we rolled back to */
    bool rev_active;             /* the store calls the current revision active */
    char line[256];              /* last progress line printed */
    char waiting_for[64];        /* the dependency it waits for, "" for none */
    struct plan_counts counts;   /* as of the last pass */
    bool have_written;           /* status row written by this run */
    struct plan_counts written;  /* what it said */
    bool written_converged;
    int64_t written_revision;
};

struct reconcile_run {
    struct reconciler *r;
    char *app;
    bool give_up; /* a service that keeps failing with no rollout ends the run */
    int64_t start_ms;
    int64_t start_wall_ms;
    int64_t quiet_since;        /* when orphans were last seen gone (0: some are left) */
    bool empty;                 /* last pass: no service desired and no container left */
    int64_t drain_ms;           /* with a DNS registry: how long an instance is out of it before it
                                   is stopped (one TTL); 0: stop at once */
    struct endpoint_snap *snap; /* the instances of the last pass, for the registry */
    size_t n_snap;
    struct service_snap *svc_snap; /* the desired services of the last pass, for the registry */
    size_t n_svc_snap;
    struct svc_run *svcs;
    size_t n;
    struct ready_mark *ready;
    size_t n_ready;
    bool network_ok;
    char outcome_msg[512];
};

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
    snap_clear(run);
    for (size_t i = 0; i < run->n; i++) {
        svc_run_clear_pass(&run->svcs[i]);
        if (run->svcs[i].tmpl_revision)
            spec_service_free(&run->svcs[i].tmpl);
        free(run->svcs[i].name);
    }
    free(run->svcs);
    for (size_t i = 0; i < run->n_ready; i++) {
        if (run->r->prober != NULL)
            health_prober_unwatch(run->r->prober, run->ready[i].id);
        free(run->ready[i].id);
    }
    free(run->ready);
}

static struct ready_mark *mark_of(struct reconcile_run *run, const char *id)
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
static int64_t ready_since(struct reconcile_run *run, const char *id, bool running, int64_t now)
{
    struct ready_mark *m = mark_of(run, id);
    if (!running)
        m->since_ms = 0;
    else if (m->since_ms == 0)
        m->since_ms = now;
    return m->since_ms;
}

/* True the first time an exited container is seen: each exit counts once, even when its
 * removal fails and it is seen again on later passes. */
static bool exit_first_seen(struct reconcile_run *run, const char *id)
{
    struct ready_mark *m = mark_of(run, id);
    if (m->exit_counted)
        return false;
    m->exit_counted = true;
    return true;
}

/* Drops what is remembered about containers that are gone (and stops probing them). */
static void forget_gone(struct reconcile_run *run, const struct docker_container_list *obs)
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
static int run_load(struct reconcile_run *run, struct orch_error *err)
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

/* ---- actions ------------------------------------------------------------------------------ */

struct batch {
    struct reconciler *r;
    int pending;
    int succeeded;   /* actions the engine carried out */
    bool env_failed; /* the engine went away: stop */
    struct orch_error env_err;
};

enum op_kind { OP_CREATE, OP_START, OP_REMOVE };

struct op {
    struct batch *b;
    struct svc_run *svc;
    enum op_kind kind;
    int phase;
    char *id;
    char *name;
    int stop_grace_s;
    bool image_missing;
};

static void op_finish(struct op *op)
{
    op->b->pending--;
    free(op->id);
    free(op->name);
    free(op);
}

static bool op_env_failure(struct op *op, const struct orch_error *err)
{
    if (err->code != ORCH_E_ENV)
        return false;
    if (!op->b->env_failed) {
        op->b->env_failed = true;
        op->b->env_err = *err;
    }
    return true;
}

static void op_remove_step(void *data, long status, const struct orch_error *err);

/* A create or start the engine refused (bad command, port clash, missing bind source...):
 * counted like a crash, so the service backs off instead of retrying hot. */
static void op_refused(struct op *op, const char *what, const struct orch_error *err)
{
    if (op_env_failure(op, err))
        return;
    orch_log(ORCH_LOG_WARN, "%s %s: %s", what, op->name ? op->name : op->id, err->msg);
    if (op->svc != NULL)
        op->svc->failed_actions++;
}

static void op_start_done(void *data, long status, const struct orch_error *err)
{
    struct op *op = data;
    if (err->code != ORCH_E_OK)
        op_refused(op, "start", err);
    else
        op->b->succeeded++;
    op_finish(op);
}

static void op_create_done(void *data, long status, const struct orch_error *err)
{
    struct op *op = data;
    if (err->code != ORCH_E_OK) {
        if (err->code == ORCH_E_NOTFOUND && strstr(err->msg, "image") != NULL)
            op->svc->image_ok_revision = -1; /* re-checked and failed on the next pass */
        else
            op_refused(op, "create", err);
        op_finish(op);
        return;
    }
    struct orch_error e = {0};
    if (docker_container_start(op->b->r->dc, op->id, op_start_done, op, &e) < 0) {
        op_refused(op, "start", &e);
        op_finish(op);
    }
}

/* Remove = stop with the grace period (SIGTERM, then SIGKILL), then delete. */
static void op_remove_step(void *data, long status, const struct orch_error *err)
{
    struct op *op = data;
    struct orch_error e = {0};
    if (err != NULL && err->code != ORCH_E_OK && err->code != ORCH_E_NOTFOUND) {
        if (!op_env_failure(op, err))
            orch_log(ORCH_LOG_WARN, "remove %s: %s", op->name ? op->name : op->id, err->msg);
        op_finish(op);
        return;
    }
    int rc = 0;
    switch (op->phase++) {
    case 0:
        rc = docker_container_stop(op->b->r->dc, op->id, op->stop_grace_s, op_remove_step, op, &e);
        break;
    case 1:
        if (err != NULL && err->code == ORCH_E_NOTFOUND) {
            op->b->succeeded++;
            op_finish(op);
            return;
        }
        rc = docker_container_remove(op->b->r->dc, op->id, true, op_remove_step, op, &e);
        break;
    default:
        op->b->succeeded++;
        op_finish(op);
        return;
    }
    if (rc < 0) {
        orch_log(ORCH_LOG_WARN, "remove %s: %s", op->name ? op->name : op->id, e.msg);
        op_finish(op);
    }
}

static char *instance_name(const char *app, const char *service)
{
    unsigned char rnd[4] = {0};
    int fd = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        if (read(fd, rnd, sizeof(rnd)) != (ssize_t)sizeof(rnd))
            memset(rnd, 0, sizeof(rnd));
        close(fd);
    }
    uint32_t salt = (uint32_t)orch_now_wall_ms() ^ (uint32_t)getpid();
    return orch_xasprintf("%s-%s-%02x%02x%02x", app, service, rnd[0] ^ (salt & 0xff),
                          rnd[1] ^ ((salt >> 8) & 0xff), rnd[2] ^ ((salt >> 16) & 0xff));
}

/* Builds the create request of one instance of svc's current revision. */
static void create_spec_build(struct reconcile_run *run, struct svc_run *s,
                              struct docker_container_create *c, struct docker_port_spec *ports,
                              struct docker_mount *mounts, char **volume_names, char *network)
{
    const struct spec_service *t = &s->tmpl;
    memset(c, 0, sizeof(*c));
    c->image = t->image;
    for (size_t i = 0; t->has_command && i < t->command_len; i++)
        orch_strv_push(&c->cmd, t->command[i]);
    for (size_t i = 0; t->has_entrypoint && i < t->entrypoint_len; i++)
        orch_strv_push(&c->entrypoint, t->entrypoint[i]);
    for (size_t i = 0; i < t->env_len; i++)
        docker_kvs_add(&c->env, t->env[i].key, t->env[i].value);
    for (size_t i = 0; i < t->labels_len; i++)
        docker_kvs_add(&c->labels, t->labels[i].key, t->labels[i].value);
    char rev[32];
    snprintf(rev, sizeof(rev), "%lld", (long long)s->row.revision);
    docker_kvs_add(&c->labels, "orch.app", run->app);
    docker_kvs_add(&c->labels, "orch.service", s->name);
    docker_kvs_add(&c->labels, "orch.revision", rev);
    docker_kvs_add(&c->labels, "orch.state", run->r->state_id);
    for (size_t i = 0; i < t->ports_len; i++) {
        ports[i].port = t->ports[i].container;
        ports[i].protocol = t->ports[i].protocol == SPEC_PROTO_UDP ? "udp" : "tcp";
    }
    c->ports = ports;
    c->n_ports = t->ports_len;
    c->publish_address = run->r->publish_address;
    c->nano_cpus = t->resources.nano_cpus;
    c->memory_bytes = t->resources.memory_bytes;
    for (size_t i = 0; i < t->volumes_len; i++) {
        const struct spec_volume *v = &t->volumes[i];
        mounts[i].type = v->kind == SPEC_VOLUME_NAMED ? DOCKER_MOUNT_VOLUME : DOCKER_MOUNT_BIND;
        mounts[i].source = v->kind == SPEC_VOLUME_NAMED ? volume_names[i] : v->source;
        mounts[i].target = v->target;
        mounts[i].read_only = v->read_only;
    }
    c->mounts = mounts;
    c->n_mounts = t->volumes_len;
    c->network = network;
    c->network_alias = s->name;
    c->has_stop_grace = true;
    c->stop_grace_ms = t->update.stop_grace_ms;
}

static void create_spec_free(struct docker_container_create *c)
{
    orch_strv_free(&c->cmd);
    orch_strv_free(&c->entrypoint);
    docker_kvs_free(&c->env);
    docker_kvs_free(&c->labels);
}

static void op_create(struct reconcile_run *run, struct batch *b, struct svc_run *s)
{
    const struct spec_service *t = &s->tmpl;
    struct docker_port_spec *ports = orch_xcalloc(t->ports_len + 1, sizeof(*ports));
    struct docker_mount *mounts = orch_xcalloc(t->volumes_len + 1, sizeof(*mounts));
    char **vols = orch_xcalloc(t->volumes_len + 1, sizeof(char *));
    for (size_t i = 0; i < t->volumes_len; i++)
        vols[i] = orch_xasprintf("orch-%s-%s", run->app, t->volumes[i].source);
    _cleanup_free_ char *network = orch_xasprintf("orch-%s", run->app);
    struct docker_container_create c;
    create_spec_build(run, s, &c, ports, mounts, vols, network);

    struct op *op = orch_xcalloc(1, sizeof(*op));
    op->b = b;
    op->svc = s;
    op->kind = OP_CREATE;
    op->name = instance_name(run->app, s->name);
    struct orch_error e = {0};
    b->pending++;
    if (docker_container_create(run->r->dc, op->name, &c, &op->id, op_create_done, op, &e) < 0) {
        orch_log(ORCH_LOG_WARN, "create %s: %s", op->name, e.msg);
        op_finish(op);
    }
    create_spec_free(&c);
    for (size_t i = 0; i < t->volumes_len; i++)
        free(vols[i]);
    free(vols);
    free(ports);
    free(mounts);
}

static void op_start(struct reconcile_run *run, struct batch *b, struct svc_run *s, const char *id)
{
    struct op *op = orch_xcalloc(1, sizeof(*op));
    op->b = b;
    op->svc = s;
    op->kind = OP_START;
    op->id = orch_xstrdup(id);
    struct orch_error e = {0};
    b->pending++;
    if (docker_container_start(run->r->dc, id, op_start_done, op, &e) < 0) {
        orch_log(ORCH_LOG_WARN, "start %s: %s", id, e.msg);
        op_finish(op);
    }
}

static void op_remove(struct reconcile_run *run, struct batch *b, struct svc_run *s, const char *id,
                      const char *name, int64_t grace_ms)
{
    struct op *op = orch_xcalloc(1, sizeof(*op));
    op->b = b;
    op->svc = s;
    op->kind = OP_REMOVE;
    op->id = orch_xstrdup(id);
    op->name = orch_xstrdup(name);
    op->stop_grace_s = grace_ms < 0 ? -1 : (int)((grace_ms + 999) / 1000);
    b->pending++;
    op_remove_step(op, 0, NULL);
}

static int batch_wait(struct batch *b, struct orch_error *err)
{
    while (b->pending > 0)
        uv_run(&b->r->loop, UV_RUN_ONCE);
    if (b->env_failed) {
        *err = b->env_err;
        return -ORCH_E_ENV;
    }
    return 0;
}

/* ---- infrastructure: the app network and named volumes ------------------------------------ */

static int ensure_network(struct reconcile_run *run, struct orch_error *err)
{
    if (run->network_ok)
        return 0;
    struct reconciler *r = run->r;
    _cleanup_free_ char *name = orch_xasprintf("orch-%s", run->app);
    struct docker_network net = {0};
    struct docker_sync s = {0};
    int rc = docker_network_inspect(r->dc, name, &net, docker_sync_done, &s, err);
    if (rc == 0)
        rc = run_sync(r, &s, 1, err);
    docker_network_free(&net);
    if (rc == -ORCH_E_NOTFOUND) {
        orch_error_clear(err);
        struct docker_kvs labels = {0};
        docker_kvs_add(&labels, "orch.app", run->app);
        char *id = NULL;
        struct docker_sync c = {0};
        rc = docker_network_create(r->dc, name, &labels, &id, docker_sync_done, &c, err);
        if (rc == 0)
            rc = run_sync(r, &c, 1, err);
        free(id);
        docker_kvs_free(&labels);
        if (rc < 0 && c.status == 409) { /* created meanwhile by another orch */
            orch_error_clear(err);
            rc = 0;
        }
    }
    if (rc == 0)
        run->network_ok = true;
    return rc;
}

static int ensure_volumes(struct reconcile_run *run, struct svc_run *s, struct orch_error *err)
{
    struct reconciler *r = run->r;
    size_t n = s->tmpl.volumes_len;
    if (n == 0)
        return 0;
    struct docker_sync *sync = orch_xcalloc(n, sizeof(*sync));
    struct docker_kvs labels = {0};
    docker_kvs_add(&labels, "orch.app", run->app);
    int rc = 0;
    size_t issued = 0;
    for (size_t i = 0; i < n && rc == 0; i++) {
        if (s->tmpl.volumes[i].kind != SPEC_VOLUME_NAMED) {
            sync[i].done = true;
            continue;
        }
        _cleanup_free_ char *name =
            orch_xasprintf("orch-%s-%s", run->app, s->tmpl.volumes[i].source);
        rc = docker_volume_create(r->dc, name, &labels, docker_sync_done, &sync[i], err);
        issued = i + 1;
    }
    for (size_t i = issued; i < n; i++)
        sync[i].done = true;
    if (rc < 0 && issued > 0) {
        /* the slot of the failed call never completes; the others are in flight */
        sync[issued - 1].done = true;
        struct orch_error ignored = {0};
        run_sync(r, sync, n, &ignored);
    } else if (rc == 0) {
        rc = run_sync(r, sync, n, err);
    }
    docker_kvs_free(&labels);
    free(sync);
    return rc;
}

/* 0 when the image of s's revision is on the engine; -ORCH_E_NOTFOUND (err names it) if not. */
static int check_image(struct reconcile_run *run, struct svc_run *s, struct orch_error *err)
{
    if (s->image_ok_revision == s->row.revision)
        return 0;
    struct docker_image_info ii = {0};
    struct docker_sync sync = {0};
    int rc = docker_image_inspect(run->r->dc, s->tmpl.image, &ii, docker_sync_done, &sync, err);
    if (rc == 0)
        rc = run_sync(run->r, &sync, 1, err);
    docker_image_info_free(&ii);
    const char *registries = getenv("ORCH_REGISTRY");
    if (rc == -ORCH_E_NOTFOUND && docker_registry_allowed(s->tmpl.image, registries)) {
        /* a registry the user named: pull, once per revision */
        orch_error_clear(err);
        orch_log(ORCH_LOG_INFO, "%s/%s: pulling %s", run->app, s->name, s->tmpl.image);
        struct docker_sync ps = {0};
        rc = docker_image_pull(run->r->dc, s->tmpl.image, docker_sync_done, &ps, err);
        if (rc == 0)
            rc = run_sync(run->r, &ps, 1, err);
        if (rc == 0) {
            s->image_ok_revision = s->row.revision;
            return 0;
        }
        if (rc == -ORCH_E_NOTFOUND || rc == -ORCH_E_DOCKER) {
            _cleanup_free_ char *why = orch_xstrdup(err->msg);
            return orch_fail(err, ORCH_E_NOTFOUND, 0, "image %s could not be pulled: %s",
                             s->tmpl.image, why);
        }
        return rc;
    }
    if (rc == -ORCH_E_NOTFOUND)
        return orch_fail(err, ORCH_E_NOTFOUND, 0,
                         "image %s is not on the engine (orch pulls only from registries named "
                         "in ORCH_REGISTRY, so it was not pulled)",
                         s->tmpl.image);
    if (rc == 0)
        s->image_ok_revision = s->row.revision;
    return rc;
}

/* ---- rollout bookkeeping ------------------------------------------------------------------ */

#define RECONCILE_HISTORY_LIMIT 10 /* revisions kept per service, like revisionHistoryLimit */

/* The newest revision other than `not` that was fully running once and did not fail: the
 * rollback target, or 0 when there is none. */
static int last_good_revision(struct reconciler *r, const char *app, const char *svc, int64_t not,
                              int64_t *out, struct orch_error *err)
{
    struct store_revision *v = NULL;
    size_t n = 0;
    *out = 0;
    int rc = store_revisions_list(r->store, app, svc, &v, &n, err);
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < n; i++) {
        if (v[i].number != not &&v[i].was_healthy && v[i].state != STORE_REV_FAILED) {
            *out = v[i].number;
            break; /* newest first */
        }
    }
    store_revisions_free(v, n);
    return 0;
}

/* The service's revision is fully running: it becomes the active one (and a rollback target
 * when it ran at least one instance), the rollout completes, old history is trimmed. */
static int rollout_complete(struct reconcile_run *run, struct svc_run *s, struct orch_error *err)
{
    struct reconciler *r = run->r;
    int64_t now = orch_now_wall_ms();
    struct store_revision *v = NULL;
    size_t n = 0;
    int rc = store_begin(r->store, err);
    if (rc < 0)
        return rc;
    rc = store_revisions_list(r->store, run->app, s->name, &v, &n, err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        if (v[i].number == s->row.revision)
            rc =
                store_revision_set_state(r->store, run->app, s->name, v[i].number, STORE_REV_ACTIVE,
                                         v[i].was_healthy || s->row.replicas > 0, err);
        else if (v[i].state == STORE_REV_ACTIVE)
            rc = store_revision_set_state(r->store, run->app, s->name, v[i].number,
                                          STORE_REV_SUPERSEDED, v[i].was_healthy, err);
    }
    store_revisions_free(v, n);
    if (rc == 0 && s->has_rollout)
        rc = store_rollout_set_state(r->store, s->rollout.id, STORE_ROLLOUT_COMPLETE, NULL, now,
                                     err);
    if (rc == 0 && s->has_rollout) {
        _cleanup_free_ char *msg =
            orch_xasprintf("revision %lld complete: %d instance%s", (long long)s->row.revision,
                           s->row.replicas, s->row.replicas == 1 ? "" : "s");
        rc = store_event_add(r->store, run->app, s->name, "rollout", msg, now, err);
    }
    /* Trimmed only here, once the current revision is the good one, so neither the revision
     * that serves nor the rollback target is ever trimmed away. */
    if (rc == 0)
        rc = store_revisions_trim(r->store, run->app, s->name, RECONCILE_HISTORY_LIMIT,
                                  s->row.revision, err);
    if (rc == 0)
        rc = store_commit(r->store, err);
    else
        store_rollback(r->store);
    if (rc == 0 && s->has_rollout) {
        store_rollout_free(&s->rollout);
        s->has_rollout = false;
    }
    if (rc == 0)
        s->rev_active = true;
    return rc;
}

/* The service row as it should be after rolling back to `target`: spec_json rebuilt from the
 * target's template with the current replicas and autoscale, so a later diff of the good file
 * sees no change. New string, or NULL when the stored JSON does not parse. */
static char *rollback_spec_json(struct reconciler *r, const char *app,
                                const struct store_service *cur, int64_t target,
                                struct orch_error *err)
{
    struct store_revision rev;
    if (store_revision_get(r->store, app, cur->name, target, &rev, err) < 0)
        return NULL;
    char *json = spec_service_rebase_json(rev.template_json, cur->spec_json, err);
    store_revision_free(&rev);
    return json;
}

/* Acts on a ROLLBACK (target > 0), FAIL or GIVE_UP verdict of the rollout state machine for
 * `why`: with a target the service goes back to it (the next passes converge to it); otherwise
 * it is left as it is. Checked against the row as it is inside the transaction: if another
 * command changed the service's revision meanwhile, nothing is recorded and the newer revision
 * is left to converge. */
static int rollout_fail(struct reconcile_run *run, struct svc_run *s, const char *why,
                        int64_t target, struct orch_error *err)
{
    struct reconciler *r = run->r;
    int64_t now = orch_now_wall_ms();
    int64_t failed_rev = s->row.revision;
    bool in_rollout = s->has_rollout || s->rolled_back;
    _cleanup_free_ char *msg = NULL;

    int rc = store_begin(r->store, err);
    if (rc < 0)
        return rc;
    struct store_service cur = {0};
    rc = store_service_get(r->store, run->app, s->name, &cur, err);
    if (rc == -ORCH_E_NOTFOUND || (rc == 0 && cur.revision != failed_rev)) {
        /* deleted or re-applied meanwhile: nothing to roll back here */
        store_rollback(r->store);
        store_service_free(&cur);
        orch_error_clear(err);
        return 0;
    }
    if (rc == 0 && in_rollout && !s->rolled_back)
        rc = store_revision_set_state(r->store, run->app, s->name, failed_rev, STORE_REV_FAILED,
                                      false, err);
    if (rc == 0 && target > 0) {
        msg = orch_xasprintf("revision %lld failed (%s); rolling back to revision %lld",
                             (long long)failed_rev, why, (long long)target);
        _cleanup_free_ char *json = rollback_spec_json(r, run->app, &cur, target, err);
        if (json == NULL) {
            rc = orch_wrap(err, "roll back %s/%s", run->app, s->name);
        } else {
            struct store_service row = cur;
            row.revision = target;
            row.spec_json = json;
            row.updated_ms = now;
            rc = store_service_put(r->store, &row, err);
        }
        if (rc == 0 && s->has_rollout)
            rc = store_rollout_set_state(r->store, s->rollout.id, STORE_ROLLOUT_ROLLED_BACK, msg,
                                         now, err);
    } else if (rc == 0) {
        const char *tail = !in_rollout                    ? "giving up"
                           : s->rolled_back               ? "the rollback failed too"
                           : s->tmpl.update.auto_rollback ? "no earlier good revision to roll "
                                                            "back to"
                                                          : "auto_rollback is off";
        msg =
            in_rollout
                ? orch_xasprintf("revision %lld failed (%s); %s", (long long)failed_rev, why, tail)
                : orch_xasprintf("revision %lld: %s; %s", (long long)failed_rev, why, tail);
        int64_t rid = s->has_rollout ? s->rollout.id : s->rollback_rollout_id;
        if (rid > 0)
            rc = store_rollout_set_state(r->store, rid, STORE_ROLLOUT_FAILED, msg, now, err);
    }
    store_service_free(&cur);
    if (rc == 0)
        rc = store_event_add(r->store, run->app, s->name, "rollout-failed", msg, now, err);
    if (rc == 0)
        rc = store_commit(r->store, err);
    else
        store_rollback(r->store);
    if (rc < 0)
        return rc;
    orch_log(ORCH_LOG_WARN, "%s/%s: %s", run->app, s->name, msg);
    snprintf(run->outcome_msg, sizeof(run->outcome_msg), "%s/%s: %s", run->app, s->name, msg);
    if (target > 0) {
        s->rolled_back = true;
        s->rollback_target = target;
        s->rollback_rollout_id = s->has_rollout ? s->rollout.id : 0;
    } else {
        s->failed = true;
        s->rolled_back = false;
    }
    return 0;
}

/* An exit or a refused create/start: counts toward the crash limit and backs the service off
 * (1 s doubling to 60 s) so a crash loop never runs hot. */
static void note_crashes(struct reconcile_run *run, struct svc_run *s, int n, const char *what,
                         int64_t now)
{
    /* The first failure after a quiet period is replaced at once; repeated ones back off. */
    bool first = s->crashes == 0;
    s->crashes += n;
    int64_t delay = first ? 0 : s->backoff_ms;
    s->backoff_until_ms = now + delay;
    if (!first)
        s->backoff_ms = s->backoff_ms * 2 > RECONCILE_BACKOFF_MAX_MS ? RECONCILE_BACKOFF_MAX_MS
                                                                     : s->backoff_ms * 2;
    _cleanup_free_ char *msg =
        orch_xasprintf("%d instance%s of revision %lld %s; next start in %lldms", n,
                       n == 1 ? "" : "s", (long long)s->row.revision, what, (long long)delay);
    orch_log(ORCH_LOG_WARN, "%s/%s: %s", run->app, s->name, msg);
    /* in the event log too, so `orch status` shows a crash loop backing off */
    struct orch_error e = {0};
    if (store_event_add(run->r->store, run->app, s->name, "backoff", msg, orch_now_wall_ms(), &e) <
        0)
        orch_log(ORCH_LOG_WARN, "%s/%s: %s", run->app, s->name, e.msg);
}

static enum rollout_phase svc_phase(const struct svc_run *s)
{
    if (s->failed)
        return ROLLOUT_FAILED;
    if (s->rolled_back)
        return ROLLOUT_ROLLING_BACK;
    if (s->has_rollout)
        return ROLLOUT_PROGRESSING;
    return ROLLOUT_IDLE;
}

/* ---- one pass ----------------------------------------------------------------------------- */

static void progress_line(struct reconcile_run *run, struct svc_run *s, const struct plan_counts *c)
{
    if (!run->r->progress)
        return;
    char line[256];
    /* reads well in a CI log: "shop/web: 2/3 updated, 3 healthy, 4 running, revision 4" */
    snprintf(line, sizeof(line), "%s/%s: %d/%d updated, %d healthy, %d running, revision %lld",
             run->app, s->name, c->updated_available, c->desired, c->ready, c->running,
             (long long)s->row.revision);
    if (strcmp(line, s->line) == 0)
        return;
    snprintf(s->line, sizeof(s->line), "%s", line);
    orch_log_progress("%s", line);
}

static enum plan_inst_state inst_state(const char *s)
{
    enum plan_inst_state st = PLAN_INST_DEAD;
    if (s == NULL || !plan_inst_state_parse(s, &st))
        return PLAN_INST_DEAD;
    return st;
}

/* The published endpoint of container port `port`/`proto`: host and host port. */
static bool published(const struct docker_container *c, int port, const char *proto,
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

/* Keeps a running instance under its service's probe (idempotent) and returns its verdict. */
static enum plan_health probe_instance(struct reconcile_run *run, struct svc_run *s,
                                       const struct docker_container *c, bool running)
{
    const struct spec_health *h = &s->tmpl.health;
    struct health_prober *p = run->r->prober;
    if (h->kind == SPEC_PROBE_NONE || p == NULL)
        return PLAN_HEALTH_NONE;
    if (!running) {
        health_prober_unwatch(p, c->id);
        return PLAN_HEALTH_NONE;
    }
    const char *host = NULL;
    int port = 0;
    if (h->kind != SPEC_PROBE_EXEC) {
        const struct spec_port *sp = h->port_index >= 0 && (size_t)h->port_index < s->tmpl.ports_len
                                         ? &s->tmpl.ports[h->port_index]
                                         : NULL;
        if (sp == NULL || !published(c, sp->container,
                                     sp->protocol == SPEC_PROTO_UDP ? "udp" : "tcp", &host, &port))
            return PLAN_HEALTH_STARTING; /* not published (yet): cannot be probed */
    }
    struct orch_error e = {0};
    if (health_prober_watch(p, c->id, h, host, port, c->created * 1000, &e) < 0) {
        orch_log(ORCH_LOG_WARN, "%s/%s: cannot probe %.12s: %s", run->app, s->name, c->id, e.msg);
        return PLAN_HEALTH_STARTING;
    }
    switch (health_prober_status(p, c->id)) {
    case HEALTH_HEALTHY:
        return PLAN_HEALTH_HEALTHY;
    case HEALTH_UNHEALTHY:
        return PLAN_HEALTH_UNHEALTHY;
    case HEALTH_STARTING:
        return PLAN_HEALTH_STARTING;
    case HEALTH_NONE:
        break;
    }
    return PLAN_HEALTH_NONE;
}

/* Whether the registry lists this instance now: running, healthy (or no probe), not draining. */
static bool in_registry(struct reconcile_run *run, const struct svc_run *s,
                        const struct plan_instance *pi)
{
    if (pi->state != PLAN_INST_RUNNING || mark_of(run, pi->id)->drain_since != 0)
        return false;
    if (s->tmpl.health.kind == SPEC_PROBE_NONE)
        return true;
    return run->r->prober != NULL && health_prober_status(run->r->prober, pi->id) == HEALTH_HEALTHY;
}

/* True when every instance listed as running still runs, by inspecting each (concurrently). */
static bool still_running(struct reconcile_run *run, const struct plan_instance *inst, size_t n)
{
    struct docker_sync *sync = orch_xcalloc(n + 1, sizeof(*sync));
    struct docker_container_info *info = orch_xcalloc(n + 1, sizeof(*info));
    size_t issued = 0;
    for (size_t i = 0; i < n; i++) {
        if (inst[i].state != PLAN_INST_RUNNING) {
            sync[i].done = true;
            continue;
        }
        struct orch_error e = {0};
        if (docker_container_inspect(run->r->dc, inst[i].id, &info[i], docker_sync_done, &sync[i],
                                     &e) < 0)
            sync[i].done = true;
        else
            issued++;
    }
    struct orch_error e = {0};
    bool ok = true;
    if (issued > 0)
        docker_sync_wait(run->r->dc, sync, n, &e);
    for (size_t i = 0; i < n; i++) {
        if (inst[i].state != PLAN_INST_RUNNING)
            continue;
        if (sync[i].err.code != ORCH_E_OK || !info[i].running)
            ok = false;
        docker_container_info_free(&info[i]);
    }
    free(info);
    free(sync);
    return ok;
}

/* Plans and executes one service. *acted is set when any action was issued. */
static int pass_service(struct reconcile_run *run, struct batch *b, struct svc_run *s,
                        const struct docker_container_list *obs, int64_t now, bool *acted,
                        struct orch_error *err)
{
    const struct spec_service *t = &s->tmpl;
    if (s->failed) {
        /* A failed rollout with no way back: its instances stay for inspection. */
        s->settled = true;
        return 0;
    }
    struct plan_instance *inst = orch_xcalloc(obs->n + 1, sizeof(*inst));
    size_t n = 0;
    int new_exits = 0;
    for (size_t i = 0; i < obs->n; i++) {
        const struct docker_container *c = &obs->v[i];
        const char *svc = docker_kvs_get(&c->labels, "orch.service");
        if (svc == NULL || strcmp(svc, s->name) != 0)
            continue;
        struct plan_instance *pi = &inst[n++];
        pi->id = c->id;
        pi->name = container_name(c);
        pi->revision = label_revision(c);
        pi->state = inst_state(c->state);
        pi->created_ms = c->created * 1000;
        pi->health = probe_instance(run, s, c, pi->state == PLAN_INST_RUNNING);
        bool draining = mark_of(run, c->id)->drain_since != 0;
        if (draining && pi->health == PLAN_HEALTH_HEALTHY)
            pi->health = PLAN_HEALTH_STARTING; /* out of the registry: no longer serving */
        bool ready = !draining && pi->state == PLAN_INST_RUNNING &&
                     (t->health.kind == SPEC_PROBE_NONE || pi->health == PLAN_HEALTH_HEALTHY);
        pi->ready_since_ms = ready_since(run, c->id, ready, now);
        if ((pi->state == PLAN_INST_EXITED || pi->state == PLAN_INST_DEAD) &&
            pi->revision == s->row.revision && exit_first_seen(run, c->id))
            new_exits++;
    }

    /* Instances that were running before this run started have no verdict yet in this
     * process: until their first probe result is in, they are not known to be unready, and a
     * rolling update must not take them for unready old ones and remove them all at once. */
    if (t->health.kind != SPEC_PROBE_NONE && run->r->prober != NULL) {
        for (size_t i = 0; i < n; i++) {
            struct health_state hs;
            if (inst[i].state == PLAN_INST_RUNNING && inst[i].created_ms < run->start_wall_ms &&
                health_prober_state(run->r->prober, inst[i].id, &hs) && hs.last_probe_ms < 0) {
                s->settled = false;
                s->settled_since_ms = 0;
                free(inst);
                return 0;
            }
        }
    }

    struct plan_service want = {
        .app = run->app,
        .service = s->name,
        .revision = s->row.revision,
        .replicas = s->row.replicas,
        .recreate = t->update.strategy == SPEC_STRATEGY_RECREATE,
        .max_surge = spec_resolve_pct(t->update.max_surge, s->row.replicas, true),
        .max_unavailable = spec_resolve_pct(t->update.max_unavailable, s->row.replicas, false),
        .has_probe = t->health.kind != SPEC_PROBE_NONE,
        .min_ready_ms = t->update.min_ready_ms,
    };
    struct plan_counts counts;
    plan_counts_compute(&want, inst, n, now, &counts);
    s->counts = counts;

    int rc = 0;
    struct plan p = {0};
    char *image_error = NULL; /* freed at out: */
    if (new_exits > 0)
        note_crashes(run, s, new_exits, "exited", now);

    /* progress: more updated-and-available instances, or fewer old ones */
    long score = (long)counts.updated_available * 100000L - counts.old;
    if (score != s->last_score) {
        s->last_score = score;
        s->last_progress_ms = now;
    }

    rc = plan_service_compute(&want, inst, n, now, &p, err);
    if (rc < 0)
        goto out;
    bool creates = false;
    for (size_t i = 0; i < p.n; i++)
        if (p.v[i].kind == PLAN_CREATE)
            creates = true;
    if (creates) {
        rc = check_image(run, s, err);
        if (rc == -ORCH_E_NOTFOUND) {
            image_error = orch_xstrdup(err->msg);
            orch_error_clear(err);
            rc = 0;
        }
        if (rc < 0)
            goto out;
    }
    bool converged = p.n == 0 && plan_counts_converged(&counts);
    if (!converged) {
        s->settled_since_ms = 0;
    } else if (s->settled_since_ms == 0) {
        s->settled_since_ms = now; /* a new settled period: to be confirmed */
        s->settle_confirmed = false;
    }
    /* The engine's container list can lag a container's exit by a second or two: before the
     * settle time counts as proof, ask each running instance itself, once per settled period
     * (later passes of a converged service, e.g. the daemon's resyncs, trust the list). */
    if (converged && !s->settle_confirmed && now - s->settled_since_ms >= RECONCILE_SETTLE_MS) {
        if (still_running(run, inst, n)) {
            s->settle_confirmed = true;
        } else {
            converged = false;
            s->settled_since_ms = 0;
        }
    }
    /* Healthy for a while: the next failure starts from the shortest backoff again (like
     * Kubernetes resetting CrashLoopBackOff after a quiet period). */
    if (converged && now - s->settled_since_ms >= RECONCILE_BACKOFF_RESET_MS) {
        s->crashes = 0;
        s->backoff_ms = RECONCILE_BACKOFF_MIN_MS;
    }

    /* The rollout state machine decides; this function acts. */
    struct rollout_input ri = {
        .phase = svc_phase(s),
        .converged = converged,
        .converged_for_ms = converged ? now - s->settled_since_ms : 0,
        .settle_ms = RECONCILE_SETTLE_MS,
        .image_missing = image_error != NULL,
        .crashes = s->crashes,
        .crash_limit = RECONCILE_CRASH_LIMIT,
        .since_progress_ms = now - s->last_progress_ms,
        .deadline_ms = t->update.deadline_ms,
        .auto_rollback = t->update.auto_rollback,
        .give_up = run->give_up,
    };
    int64_t target = 0;
    if (rollout_failing(&ri) && ri.phase == ROLLOUT_PROGRESSING && ri.auto_rollback) {
        rc = last_good_revision(run->r, run->app, s->name, s->row.revision, &target, err);
        if (rc < 0)
            goto out;
        ri.has_rollback_target = target > 0;
    }
    struct rollout_decision dec = rollout_decide(&ri);
    switch (dec.verdict) {
    case ROLLOUT_WAIT:
        /* A revision that is serving fine with no rollout (e.g. its image was missing once and
         * has been loaded since) is recorded as the good one, so it can be rolled back to. */
        if (ri.phase == ROLLOUT_IDLE && !s->rev_active && ri.converged &&
            ri.converged_for_ms >= ri.settle_ms)
            rc = rollout_complete(run, s, err);
        break;
    case ROLLOUT_COMPLETE:
        /* recorded as soon as this service is done, even if others of the app are not */
        rc = rollout_complete(run, s, err);
        break;
    case ROLLOUT_ROLLBACK:
    case ROLLOUT_FAIL:
    case ROLLOUT_GIVE_UP: {
        char d[32];
        orch_format_duration(t->update.deadline_ms, d, sizeof(d));
        _cleanup_free_ char *why =
            dec.reason == ROLLOUT_REASON_IMAGE_MISSING ? orch_xstrdup(image_error)
            : dec.reason == ROLLOUT_REASON_CRASH_LOOP
                ? orch_xasprintf("crash loop: instances exited, failed to start or turned "
                                 "unhealthy %d times",
                                 s->crashes)
                : orch_xasprintf("no progress for %s (update.deadline)", d);
        s->crashes = 0;
        rc = rollout_fail(run, s, why, dec.verdict == ROLLOUT_ROLLBACK ? target : 0, err);
        s->settled = false;
        goto out;
    }
    }
    if (rc < 0)
        goto out;

    /* While backing off, nothing new is started; removals go on. Nor while a service this
     * one depends on is not converged and healthy (depends_on), nor without the image. */
    bool in_backoff = now < s->backoff_until_ms || image_error != NULL;
    const char *waiting_for = NULL;
    for (size_t i = 0; i < t->depends_on_len && waiting_for == NULL; i++) {
        const struct svc_run *dep = NULL;
        for (size_t j = 0; j < run->n; j++)
            if (run->svcs[j].present && strcmp(run->svcs[j].name, t->depends_on[i]) == 0)
                dep = &run->svcs[j];
        if (dep == NULL || !dep->settled || dep->failed)
            waiting_for = t->depends_on[i];
    }
    if (waiting_for != NULL && creates) {
        in_backoff = true;
        if (run->r->progress && strcmp(s->waiting_for, waiting_for) != 0)
            orch_log(ORCH_LOG_INFO, "%s/%s: waiting for %s to be healthy (depends_on)", run->app,
                     s->name, waiting_for);
    }
    snprintf(s->waiting_for, sizeof(s->waiting_for), "%s", waiting_for ? waiting_for : "");
    if (creates && !in_backoff) {
        rc = ensure_volumes(run, s, err);
        if (rc < 0)
            goto out;
    }
    int unhealthy_removed = 0;
    for (size_t i = 0; i < p.n; i++) {
        const struct plan_action *a = &p.v[i];
        switch (a->kind) {
        case PLAN_CREATE:
            if (in_backoff)
                continue;
            op_create(run, b, s);
            break;
        case PLAN_START:
            if (in_backoff)
                continue;
            op_start(run, b, s, a->id);
            break;
        case PLAN_REMOVE: {
            const char *name = a->id;
            bool serving = false;
            for (size_t j = 0; j < n; j++) {
                if (strcmp(inst[j].id, a->id) != 0)
                    continue;
                name = inst[j].name;
                serving = inst[j].state == PLAN_INST_RUNNING && in_registry(run, s, &inst[j]);
            }
            /* An instance clients may still find in the registry leaves it first and is
             * stopped only one TTL later, so they see no failed requests. */
            struct ready_mark *m = mark_of(run, a->id);
            if (run->drain_ms > 0 && (serving || m->drain_since != 0)) {
                if (m->drain_since == 0) {
                    m->drain_since = now;
                    orch_log(ORCH_LOG_INFO, "%s/%s: %s leaves the registry; stopping it in %lldms",
                             run->app, s->name, name, (long long)run->drain_ms);
                }
                if (now - m->drain_since < run->drain_ms)
                    continue;
            }
            op_remove(run, b, s, a->id, name, t->update.stop_grace_ms);
            if (a->revision == s->row.revision && strcmp(a->reason, "unhealthy") == 0)
                unhealthy_removed++;
            break;
        }
        }
        *acted = true;
    }
    /* an instance of the new revision that never got (or stayed) healthy counts like a crash:
     * replacements back off, and enough of them fail the rollout */
    if (unhealthy_removed > 0)
        note_crashes(run, s, unhealthy_removed, "unhealthy", now);
    s->settled = converged;
    progress_line(run, s, &counts);
out:
    free(image_error);
    plan_free(&p);
    free(inst);
    return rc;
}

/* Containers of the app whose service is not desired any more. Returns how many remain
 * (including those being removed), so the app is not called done while any is left. */
static size_t pass_orphans(struct reconcile_run *run, struct batch *b,
                           const struct docker_container_list *obs, bool *acted)
{
    size_t left = 0;
    for (size_t i = 0; i < obs->n; i++) {
        const struct docker_container *c = &obs->v[i];
        const char *svc = docker_kvs_get(&c->labels, "orch.service");
        bool desired = false;
        for (size_t j = 0; svc != NULL && j < run->n; j++)
            if (run->svcs[j].present && strcmp(run->svcs[j].name, svc) == 0)
                desired = true;
        if (desired)
            continue;
        left++;
        if (c->state != NULL && strcmp(c->state, "removing") == 0)
            continue;
        if (run->r->progress)
            orch_log(ORCH_LOG_INFO, "%s/%s: removing %s (service no longer desired)", run->app,
                     svc ? svc : "?", container_name(c));
        /* -1: the container's own StopTimeout, set from its update.stop_grace at create */
        op_remove(run, b, NULL, c->id, container_name(c), -1);
        *acted = true;
    }
    return left;
}

static int remove_app_infra(struct reconcile_run *run, bool remove_volumes, struct orch_error *err)
{
    struct reconciler *r = run->r;
    _cleanup_free_ char *name = orch_xasprintf("orch-%s", run->app);
    struct docker_sync s = {0};
    int rc = docker_network_remove(r->dc, name, docker_sync_done, &s, err);
    if (rc == 0)
        rc = run_sync(r, &s, 1, err);
    if (rc == -ORCH_E_NOTFOUND) {
        orch_error_clear(err);
        rc = 0;
    } else if (rc == -ORCH_E_DOCKER) {
        /* still in use, e.g. by a container orch does not manage: keep it, say so */
        orch_log(ORCH_LOG_WARN, "%s: network %s kept: %s", run->app, name, err->msg);
        orch_error_clear(err);
        rc = 0;
    }
    if (rc < 0 || !remove_volumes)
        return rc;
    _cleanup_free_ char *label = orch_xasprintf("orch.app=%s", run->app);
    const char *labels[] = {label};
    struct orch_strv names = {0};
    struct docker_sync ls = {0};
    rc = docker_volumes_list(r->dc, labels, 1, &names, docker_sync_done, &ls, err);
    if (rc == 0)
        rc = run_sync(r, &ls, 1, err);
    for (size_t i = 0; rc == 0 && i < names.n; i++) {
        struct docker_sync vs = {0};
        rc = docker_volume_remove(r->dc, names.v[i], docker_sync_done, &vs, err);
        if (rc == 0)
            rc = run_sync(r, &vs, 1, err);
        if (rc == -ORCH_E_NOTFOUND) {
            orch_error_clear(err);
            rc = 0;
        }
        if (rc == 0 && r->progress)
            orch_log(ORCH_LOG_INFO, "%s: removed volume %s", run->app, names.v[i]);
    }
    orch_strv_free(&names);
    return rc;
}

static void idle_fired(uv_timer_t *t)
{
    *(bool *)t->data = true;
}

/* Waits ms on the loop (other handles keep running meanwhile). */
static void idle(struct reconciler *r, int64_t ms)
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
static void snapshot(struct reconcile_run *run, const struct docker_container_list *obs)
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
        e->healthy = in_registry(run, s, &pi);
        snprintf(e->ipv4, sizeof(e->ipv4), "%s", pub_v4 ? pub : "127.0.0.1");
        e->ports = orch_xcalloc(s->tmpl.ports_len + 1, sizeof(*e->ports));
        e->port_names = orch_xcalloc(s->tmpl.ports_len + 1, sizeof(char *));
        for (size_t k = 0; k < s->tmpl.ports_len; k++) {
            const struct spec_port *sp = &s->tmpl.ports[k];
            const char *host = NULL;
            int port = 0;
            bool udp = sp->protocol == SPEC_PROTO_UDP;
            published(c, sp->container, udp ? "udp" : "tcp", &host, &port);
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

void reconcile_run_set_drain(struct reconcile_run *run, int64_t drain_ms)
{
    run->drain_ms = drain_ms;
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

int reconcile_run_pass(struct reconcile_run *run, struct reconcile_pass *out,
                       struct orch_error *err)
{
    struct reconciler *r = run->r;
    int64_t now = orch_now_mono_ms();
    memset(out, 0, sizeof(*out));
    int rc = run_load(run, err);
    if (rc < 0)
        return rc;
    struct docker_container_list obs = {0};
    rc = observe_list(r, run->app, &obs, err);
    if (rc < 0)
        return rc;
    size_t n_present = 0;
    for (size_t i = 0; i < run->n; i++)
        n_present += run->svcs[i].present;
    if (n_present > 0)
        rc = ensure_network(run, err);
    struct batch b = {.r = r};
    bool acted = false;
    for (size_t i = 0; rc == 0 && i < run->n; i++) {
        if (run->svcs[i].present)
            rc = pass_service(run, &b, &run->svcs[i], &obs, now, &acted, err);
    }
    size_t orphans = rc == 0 ? pass_orphans(run, &b, &obs, &acted) : 0;
    if (rc == 0) {
        forget_gone(run, &obs);
        snapshot(run, &obs);
    }
    struct orch_error werr = {0};
    int wrc = batch_wait(&b, &werr);
    docker_container_list_free(&obs);
    if (rc == 0 && wrc < 0) {
        *err = werr;
        rc = wrc;
    }
    if (rc < 0)
        return rc;
    for (size_t i = 0; i < run->n; i++) {
        struct svc_run *s = &run->svcs[i];
        if (s->failed_actions > 0)
            note_crashes(run, s, s->failed_actions, "could not be created or started", now);
        s->failed_actions = 0;
    }

    /* Done when every service has been converged for the settle time (an instance that dies
     * right after starting is caught here rather than reported as running), and no container
     * of an undesired service is left. */
    bool done = orphans == 0;
    if (orphans > 0)
        run->quiet_since = 0;
    else if (run->quiet_since == 0)
        run->quiet_since = now;
    for (size_t i = 0; i < run->n; i++) {
        const struct svc_run *s = &run->svcs[i];
        if (s->present && !s->failed &&
            (!s->settled || now - s->settled_since_ms < RECONCILE_SETTLE_MS))
            done = false;
    }
    if (n_present == 0 && (run->quiet_since == 0 || now - run->quiet_since < RECONCILE_IDLE_MS))
        done = false;
    out->busy = b.succeeded > 0;
    out->done = done && !out->busy;
    run->empty = n_present == 0 && orphans == 0;
    return 0;
}

bool reconcile_run_is_empty(const struct reconcile_run *run)
{
    return run->empty;
}

int reconciler_container_apps(struct reconciler *r, struct orch_strv *out, struct orch_error *err)
{
    struct docker_container_list obs = {0};
    int rc = observe_list(r, NULL, &obs, err);
    for (size_t i = 0; rc == 0 && i < obs.n; i++) {
        const char *app = docker_kvs_get(&obs.v[i].labels, "orch.app");
        if (app != NULL && orch_is_dns_label(app, SPEC_NAME_MAX) && !orch_strv_contains(out, app))
            orch_strv_push(out, app);
    }
    docker_container_list_free(&obs);
    return rc;
}

int reconcile_run_write_status(struct reconcile_run *run, struct orch_error *err)
{
    struct reconciler *r = run->r;
    int64_t now = orch_now_mono_ms();
    bool began = false;
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < run->n; i++) {
        struct svc_run *s = &run->svcs[i];
        if (!s->present)
            continue;
        bool converged = !s->failed && s->settled && s->settled_since_ms != 0 &&
                         now - s->settled_since_ms >= RECONCILE_SETTLE_MS;
        if (s->have_written && converged == s->written_converged &&
            s->written_revision == s->row.revision &&
            memcmp(&s->written, &s->counts, sizeof(s->counts)) == 0)
            continue;
        if (!began) {
            rc = store_begin(r->store, err);
            if (rc < 0)
                return rc;
            began = true;
        }
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
        };
        rc = store_status_put(r->store, &st, err);
        if (rc == 0) {
            s->have_written = true;
            s->written = s->counts;
            s->written_converged = converged;
            s->written_revision = s->row.revision;
        }
    }
    if (began) {
        if (rc == 0)
            rc = store_commit(r->store, err);
        else
            store_rollback(r->store);
    }
    return rc;
}

int reconcile_run_finish(struct reconcile_run *run, bool remove_volumes,
                         struct reconcile_report *report, struct orch_error *err)
{
    size_t n_present = 0;
    int rc = 0;
    memset(report, 0, sizeof(*report));
    report->outcome = RECONCILE_CONVERGED;
    for (size_t i = 0; rc == 0 && i < run->n; i++) {
        struct svc_run *s = &run->svcs[i];
        if (!s->present)
            continue;
        n_present++;
        if (s->failed) {
            report->outcome = RECONCILE_FAILED;
            continue;
        }
        if (s->rolled_back && report->outcome == RECONCILE_CONVERGED)
            report->outcome = RECONCILE_ROLLED_BACK;
        if (s->has_rollout)
            rc = rollout_complete(run, s, err);
    }
    if (rc == 0 && n_present == 0)
        rc = remove_app_infra(run, remove_volumes, err);
    if (rc == 0) {
        if (run->outcome_msg[0])
            snprintf(report->message, sizeof(report->message), "%s", run->outcome_msg);
        else if (n_present == 0)
            snprintf(report->message, sizeof(report->message), "%s: removed", run->app);
        else
            snprintf(report->message, sizeof(report->message), "%s: converged", run->app);
    }
    return rc;
}

void reconciler_idle(struct reconciler *r, int64_t ms)
{
    idle(r, ms);
}

int reconcile_app(struct reconciler *r, const char *app, bool remove_volumes,
                  struct reconcile_report *report, struct orch_error *err)
{
    struct reconcile_run *run = reconcile_run_new(r, app, true);
    memset(report, 0, sizeof(*report));
    int rc = 0;
    for (;;) {
        struct reconcile_pass pass;
        rc = reconcile_run_pass(run, &pass, err);
        if (rc < 0 || pass.done)
            break;
        if (r->timeout_ms > 0 && orch_now_mono_ms() - run->start_ms > r->timeout_ms) {
            report->outcome = RECONCILE_TIMEOUT;
            snprintf(report->message, sizeof(report->message),
                     "%s: timed out before the rollout finished", app);
            reconcile_run_free(run);
            return 0;
        }
        /* Only actions the engine carried out call for an immediate next pass; otherwise
         * (waiting for readiness, backing off, refused actions) wait a little. */
        if (!pass.busy)
            idle(r, RECONCILE_IDLE_MS);
    }
    if (rc == 0)
        rc = reconcile_run_finish(run, remove_volumes, report, err);
    reconcile_run_free(run);
    return rc;
}

/* ---- observation for status and get ------------------------------------------------------- */

static void instance_fill(struct reconcile_instance *ri, const struct docker_container *c,
                          const struct spec_service *tmpl)
{
    ri->id = orch_xstrdup(c->id);
    ri->name = orch_xstrdup(container_name(c));
    ri->revision = label_revision(c);
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
        idle(r, 20);
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

int reconcile_observe(struct reconciler *r, const char *app, struct reconcile_service_status **out,
                      size_t *n_out, struct orch_error *err)
{
    struct store_service *svcs = NULL;
    size_t n = 0;
    int rc = store_services_list(r->store, app, &svcs, &n, err);
    if (rc < 0)
        return rc;
    struct docker_container_list obs = {0};
    rc = observe_list(r, app, &obs, err);
    if (rc < 0) {
        store_services_free(svcs, n);
        return rc;
    }
    struct reconcile_service_status *v = orch_xcalloc(n + 1, sizeof(*v));
    struct spec_service *tmpls = orch_xcalloc(n + 1, sizeof(*tmpls));
    bool *have = orch_xcalloc(n + 1, sizeof(*have));
    struct oneshot *shots = orch_xcalloc(obs.n + 1, sizeof(*shots));
    size_t nshots = 0;
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
        const struct spec_service *t = have[i] ? &tmpls[i] : NULL;
        st->instances = orch_xcalloc(obs.n + 1, sizeof(*st->instances));
        for (size_t j = 0; j < obs.n; j++) {
            const struct docker_container *c = &obs.v[j];
            const char *capp = docker_kvs_get(&c->labels, "orch.app");
            const char *csvc = docker_kvs_get(&c->labels, "orch.service");
            if (!capp || !csvc || strcmp(capp, st->app) != 0 || strcmp(csvc, st->service) != 0)
                continue;
            struct reconcile_instance *ri = &st->instances[st->n_instances++];
            instance_fill(ri, c, t);
            bool running = c->state && strcmp(c->state, "running") == 0;
            st->running += running;
            st->updated += ri->revision == st->revision;
            if (!running || t == NULL || t->health.kind == SPEC_PROBE_NONE)
                continue;
            if (t->health.kind != SPEC_PROBE_EXEC) {
                const struct spec_port *sp =
                    t->health.port_index >= 0 ? &t->ports[t->health.port_index] : NULL;
                const char *host = NULL;
                int port = 0;
                if (sp == NULL ||
                    !published(c, sp->container, sp->protocol == SPEC_PROTO_UDP ? "udp" : "tcp",
                               &host, &port))
                    continue;
                ri->probe_host = orch_xstrdup(host);
                ri->probe_port = port;
            }
            shots[nshots++] = (struct oneshot){ri, &t->health, c->created * 1000};
        }
    }
    if (nshots > 0 && r->prober != NULL)
        probe_once(r, shots, nshots);
    for (size_t i = 0; i < n; i++) {
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
    free(shots);
    free(have);
    free(tmpls);
    docker_container_list_free(&obs);
    store_services_free(svcs, n);
    *out = v;
    *n_out = n;
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
    }
    free(v);
}
