/* Actions on the engine: creates, starts and stop-then-removes issued concurrently as one batch
 * on the Docker client, and the synchronous helpers around them (the app network, named
 * volumes, the image check, inspecting running instances, removing an app's infrastructure).
 * It carries out what the pass decided and decides nothing. */
#include "reconcile_internal.h"

#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"

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
    struct batch *b = op->b;
    b->pending--;
    free(op->id);
    free(op->name);
    free(op);
    if (b->pending > 0)
        return;
    if (b->orphaned) /* its run is gone: nobody else holds it */
        free(b);
    else if (b->run->async && b->run->inflight == b && b->run->on_idle != NULL)
        b->run->on_idle(b->run->on_idle_data, b->run);
}

/* The service the op acts for, or NULL once its run is gone. */
static struct svc_run *op_svc(const struct op *op)
{
    return op->b->orphaned ? NULL : op->svc;
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
    /* The app network gone or ambiguous is not the instance's fault: the pass repairs the
     * network and creates again, and no crash is counted (nor reported as a crash loop). */
    if (recon_network_error(err)) {
        op->b->network_failed = true;
        return;
    }
    if (op_svc(op) != NULL)
        op->svc->failed_actions++;
}

static void op_start_done(void *data, long status, const struct orch_error *err)
{
    struct op *op = data;
    if (err->code != ORCH_E_OK) {
        op_refused(op, "start", err);
    } else if (!op->b->orphaned) {
        op->b->succeeded++;
        /* its own start: the crash-at-start check and its probe count from here */
        struct ready_mark *m = recon_mark(op->b->run, op->id);
        m->started_ms = orch_now_mono_ms();
        m->started_wall_ms = orch_now_wall_ms();
    }
    op_finish(op);
}

static void op_create_done(void *data, long status, const struct orch_error *err)
{
    struct op *op = data;
    if (err->code != ORCH_E_OK) {
        if (err->code == ORCH_E_NOTFOUND && !recon_network_error(err) &&
            strstr(err->msg, "image") != NULL) {
            if (op_svc(op) != NULL)
                op->svc->image_ok_revision = -1; /* re-checked and failed on the next pass */
        } else
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

void recon_op_create(struct reconcile_run *run, struct batch *b, struct svc_run *s)
{
    const struct spec_service *t = &s->tmpl;
    struct docker_port_spec *ports = orch_xcalloc(t->ports_len + 1, sizeof(*ports));
    struct docker_mount *mounts = orch_xcalloc(t->volumes_len + 1, sizeof(*mounts));
    char **vols = orch_xcalloc(t->volumes_len + 1, sizeof(char *));
    for (size_t i = 0; i < t->volumes_len; i++)
        vols[i] = orch_xasprintf("orch-%s-%s", run->app, t->volumes[i].source);
    /* by id: a duplicate name (being repaired) or a network recreated meanwhile must not
     * leave the instance on the wrong one; a stale id fails and the pass looks again */
    _cleanup_free_ char *network =
        run->network_id ? orch_xstrdup(run->network_id) : orch_xasprintf("orch-%s", run->app);
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

void recon_op_start(struct reconcile_run *run, struct batch *b, struct svc_run *s, const char *id)
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

void recon_op_remove(struct reconcile_run *run, struct batch *b, struct svc_run *s, const char *id,
                     const char *name, int64_t grace_ms)
{
    struct op *op = orch_xcalloc(1, sizeof(*op));
    op->b = b;
    op->svc = s;
    op->kind = OP_REMOVE;
    op->id = orch_xstrdup(id);
    op->name = orch_xstrdup(name);
    op->stop_grace_s = grace_ms < 0 ? -1 : (int)((grace_ms + 999) / 1000);
    if (run->on_stop != NULL)
        run->on_stop(run->on_stop_data, id, grace_ms < 0 ? 0 : grace_ms);
    b->pending++;
    op_remove_step(op, 0, NULL);
}

int recon_batch_wait(struct batch *b, struct orch_error *err)
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

int recon_ensure_volumes(struct reconcile_run *run, struct svc_run *s, struct orch_error *err)
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
        recon_sync(r, sync, n, &ignored);
    } else if (rc == 0) {
        rc = recon_sync(r, sync, n, err);
    }
    docker_kvs_free(&labels);
    free(sync);
    return rc;
}

/* 0 when the image of s's revision is on the engine; -ORCH_E_NOTFOUND (err names it) if not. */
int recon_check_image(struct reconcile_run *run, struct svc_run *s, struct orch_error *err)
{
    if (s->image_ok_revision == s->row.revision)
        return 0;
    struct docker_image_info ii = {0};
    struct docker_sync sync = {0};
    int rc = docker_image_inspect(run->r->dc, s->tmpl.image, &ii, docker_sync_done, &sync, err);
    if (rc == 0)
        rc = recon_sync(run->r, &sync, 1, err);
    docker_image_info_free(&ii);
    const char *registries = getenv("ORCH_REGISTRY");
    if (rc == -ORCH_E_NOTFOUND && docker_registry_allowed(s->tmpl.image, registries)) {
        /* a registry the user named: pull, once per revision */
        orch_error_clear(err);
        orch_log(ORCH_LOG_INFO, "%s/%s: pulling %s", run->app, s->name, s->tmpl.image);
        struct docker_sync ps = {0};
        rc = docker_image_pull(run->r->dc, s->tmpl.image, docker_sync_done, &ps, err);
        if (rc == 0)
            rc = recon_sync(run->r, &ps, 1, err);
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

/* True when every instance listed as running still runs, by inspecting each (concurrently). */
bool recon_still_running(struct reconcile_run *run, const struct plan_instance *inst, size_t n)
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

/* Removes the app network (kept with a warning while something else uses it) and, with
 * remove_volumes, the app's named volumes. */
int recon_remove_app_infra(struct reconcile_run *run, bool remove_volumes, struct orch_error *err)
{
    struct reconciler *r = run->r;
    int rc = recon_remove_app_networks(run, err);
    if (rc < 0 || !remove_volumes)
        return rc;
    _cleanup_free_ char *label = orch_xasprintf("orch.app=%s", run->app);
    const char *labels[] = {label};
    struct orch_strv names = {0};
    struct docker_sync ls = {0};
    rc = docker_volumes_list(r->dc, labels, 1, &names, docker_sync_done, &ls, err);
    if (rc == 0)
        rc = recon_sync(r, &ls, 1, err);
    for (size_t i = 0; rc == 0 && i < names.n; i++) {
        struct docker_sync vs = {0};
        rc = docker_volume_remove(r->dc, names.v[i], docker_sync_done, &vs, err);
        if (rc == 0)
            rc = recon_sync(r, &vs, 1, err);
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
