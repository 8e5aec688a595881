/* `orch state backup|restore|init`: the operator's way back when a state dir's database is lost
 * or damaged. The store does the copying and the checks; `init --id` also lists (never changes)
 * the engine's containers of that id, so the adopted state's revision numbers continue above
 * theirs. Prints nothing: the lines to show come back in the result, refusals as MESSAGE notes. */
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "docker/docker_client.h"
#include "ops_internal.h"

/* Appends s (new, taken) to lines. */
static void push_line(struct orch_strv *lines, char *s)
{
    orch_strv_push(lines, s);
    free(s);
}

bool ops_state_id_valid(const char *id)
{
    return store_state_id_valid(id);
}

/* The engine's containers of state id `id` (listed, never changed). Exit 3 when the engine
 * does not answer: adopting blind could give a new revision the number of an old one that runs
 * another template. */
static int list_engine(const char *id, struct docker_container_list *out, struct orch_error *err)
{
    struct docker_endpoint ep = {0};
    uv_loop_t loop;
    struct docker_client *dc = NULL;
    int rc = uv_loop_init(&loop);
    if (rc < 0)
        return orch_fail(err, ORCH_E_ENV, 0, "cannot create an event loop: %s", uv_strerror(rc));
    rc = docker_endpoint_from_env(&ep, err);
    if (rc == 0)
        rc = docker_client_new(&loop, &ep, NULL, &dc, err);
    _cleanup_free_ char *label = orch_xasprintf("orch.state=%s", id);
    const char *labels[] = {"orch.app", label};
    if (rc == 0) {
        struct docker_sync sync = {0};
        rc = docker_containers_list(dc, labels, 2, out, docker_sync_done, &sync, err);
        if (rc == 0)
            rc = docker_sync_wait(dc, &sync, 1, err);
    }
    if (dc != NULL)
        docker_client_close(dc);
    while (uv_run(&loop, UV_RUN_DEFAULT) != 0)
        ;
    uv_loop_close(&loop);
    docker_endpoint_free(&ep);
    return rc;
}

/* Raises each app/service's revision counter to the highest orch.revision of its containers,
 * so the next apply makes a revision above theirs (a rolling update onto it), and names the
 * apps found. */
static int seed_revisions(struct store *s, const char *id, const struct docker_container_list *l,
                          struct orch_strv *lines, struct orch_error *err)
{
    struct orch_strv apps = {0};
    int rc = 0;
    for (size_t i = 0; rc == 0 && i < l->n; i++) {
        const struct docker_kvs *kv = &l->v[i].labels;
        const char *app = docker_kvs_get(kv, "orch.app");
        const char *svc = docker_kvs_get(kv, "orch.service");
        const char *rev = docker_kvs_get(kv, "orch.revision");
        if (app == NULL || svc == NULL || rev == NULL)
            continue;
        char *end = NULL;
        long long n = strtoll(rev, &end, 10);
        if (end == rev || *end != '\0' || n <= 0)
            continue;
        rc = store_revision_seq_raise(s, app, svc, n, err);
        if (!orch_strv_contains(&apps, app))
            orch_strv_push(&apps, app);
    }
    if (rc == 0 && apps.n == 0)
        push_line(lines, orch_xasprintf("no container of state id %s on the engine", id));
    for (size_t j = 0; rc == 0 && j < apps.n; j++)
        push_line(lines,
                  orch_xasprintf("app %s: its containers are managed again once you apply its spec",
                                 apps.v[j]));
    orch_strv_free(&apps);
    return rc;
}

static int refuse_while_daemon(const struct ops_ctx *ctx, const char *what)
{
    pid_t pid = 0;
    if (!store_daemon_running(ctx->state_dir, &pid))
        return 0;
    ops_note_text(ctx, OPS_NOTE_MESSAGE,
                  "orch daemon (pid %ld) runs on %s: stop it before %s (it would go on with the "
                  "database it has open)",
                  (long)pid, ctx->state_dir, what);
    return ORCH_EXIT_ENV;
}

/* The exit code of a failure in *err. */
static int state_fail(struct ops_state_result *out)
{
    return out->exit_code = ops_error_exit(&out->err);
}

static int state_init(const struct ops_ctx *ctx, const struct ops_state_req *req,
                      struct ops_state_result *out)
{
    const char *id = req->id;
    bool new_id = req->new_id;
    struct orch_error *err = &out->err;
    _cleanup_free_ char *old = NULL;
    if (store_dir_state_id(ctx->state_dir, &old, err) < 0)
        return state_fail(out);
    struct store *usable = NULL;
    if (id == NULL && !new_id && old != NULL &&
        store_open_readonly(ctx->state_dir, &usable, err) == 0) {
        store_close(usable);
        ops_note_text(ctx, OPS_NOTE_MESSAGE,
                      "state dir %s has a usable database (state id %s): orch state init "
                      "never replaces one",
                      ctx->state_dir, old);
        return out->exit_code = ORCH_EXIT_ENV;
    }
    orch_error_clear(err);
    if (id == NULL && !new_id && old != NULL) {
        out->usage = orch_xasprintf("this state dir was used by state id %s: choose `--id %s` to "
                                    "manage its containers again, or `--new` to start over",
                                    old, old);
        return out->exit_code = ORCH_EXIT_INVALID;
    }
    int rc = refuse_while_daemon(ctx, "making a new database");
    if (rc != 0)
        return out->exit_code = rc;
    /* Ask the engine first: when it does not answer, nothing is made. */
    struct docker_container_list list = {0};
    if (id != NULL && list_engine(id, &list, err) < 0) {
        orch_wrap(err, "adopting state id %s needs the engine's list of its containers", id);
        return state_fail(out);
    }
    _cleanup_free_ char *made = NULL;
    if (store_init(ctx->state_dir, id, &made, err) < 0) {
        docker_container_list_free(&list);
        return state_fail(out);
    }
    if (id == NULL) {
        push_line(&out->lines,
                  orch_xasprintf("state dir %s: new empty state, id %s", ctx->state_dir, made));
        if (old != NULL)
            push_line(&out->lines,
                      orch_xasprintf("the containers labelled orch.state=%s are left "
                                     "alone; remove them with docker when they are not "
                                     "needed",
                                     old));
        return out->exit_code = ORCH_EXIT_OK;
    }
    struct store *s = NULL;
    rc = store_open(ctx->state_dir, &s, err);
    if (rc == 0)
        rc = seed_revisions(s, id, &list, &out->lines, err);
    store_close(s);
    docker_container_list_free(&list);
    if (rc < 0) {
        orch_wrap(err,
                  "the state (id %s) is made, but its revision counters could not be set; move "
                  "%s/%s away and run `orch state init --id %s` again",
                  id, ctx->state_dir, STORE_DB_NAME, id);
        return state_fail(out);
    }
    push_line(&out->lines,
              orch_xasprintf("state dir %s: empty state with id %s", ctx->state_dir, id));
    return out->exit_code = ORCH_EXIT_OK;
}

static int state_backup(const struct ops_ctx *ctx, const char *file, struct ops_state_result *out)
{
    struct orch_error *err = &out->err;
    struct store *s = NULL;
    if (store_open_readonly(ctx->state_dir, &s, err) < 0) {
        if (err->code == ORCH_E_NOTFOUND)
            err->code = ORCH_E_ENV;
        return state_fail(out);
    }
    int rc = store_backup(s, file, err);
    store_close(s);
    if (rc < 0)
        return state_fail(out);
    push_line(&out->lines, orch_xasprintf("backed up %s to %s", ctx->state_dir, file));
    return out->exit_code = ORCH_EXIT_OK;
}

static int state_restore(const struct ops_ctx *ctx, const char *file, struct ops_state_result *out)
{
    int rc = refuse_while_daemon(ctx, "restoring");
    if (rc != 0)
        return out->exit_code = rc;
    _cleanup_free_ char *restored = NULL;
    if (store_restore(ctx->state_dir, file, &restored, &out->err) < 0)
        return state_fail(out);
    push_line(&out->lines,
              orch_xasprintf("restored %s from %s (state id %s)", ctx->state_dir, file, restored));
    return out->exit_code = ORCH_EXIT_OK;
}

int ops_state(const struct ops_ctx *ctx, const struct ops_state_req *req,
              struct ops_state_result *out)
{
    memset(out, 0, sizeof(*out));
    switch (req->action) {
    case OPS_STATE_BACKUP:
        return state_backup(ctx, req->file, out);
    case OPS_STATE_RESTORE:
        return state_restore(ctx, req->file, out);
    case OPS_STATE_INIT:
        break;
    }
    return state_init(ctx, req, out);
}

void ops_state_result_free(struct ops_state_result *r)
{
    orch_strv_free(&r->lines);
    free(r->usage);
    memset(r, 0, sizeof(*r));
}
