/* Who drives the work on a state dir (this process, a daemon, or nobody yet) and the embedded
 * drive itself: the app lock and reconcile_app, its outcome as an exit code. The only ops file
 * that knows the daemon (its lock); it never starts one. */
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include "ops_internal.h"
#include "store/store.h"
#include "reconcile/reconcile.h"

bool ops_no_converge(void)
{
    const char *v = getenv("ORCH_NO_CONVERGE");
    return v != NULL && strcmp(v, "1") == 0;
}

enum ops_driver ops_who_drives(const struct ops_ctx *ctx, long *pid_out)
{
    if (pid_out != NULL)
        *pid_out = 0;
    if (ops_no_converge())
        return OPS_DRIVER_RECORD_ONLY;
    pid_t pid = 0;
    if (!store_daemon_running(ctx->state_dir, &pid))
        return OPS_DRIVER_EMBEDDED;
    if (pid_out != NULL)
        *pid_out = (long)pid;
    ops_note_text(ctx, OPS_NOTE_INFO, "orch daemon (pid %ld) runs on %s: it converges", (long)pid,
                  ctx->state_dir);
    return OPS_DRIVER_DAEMON;
}

int ops_engine_open(const struct ops_ctx *ctx, struct store *s, int64_t timeout_ms,
                    struct reconciler **out, struct orch_error *err)
{
    struct reconcile_options opts = {
        .timeout_ms = timeout_ms, .progress = ctx->live_progress, .stop = ctx->interrupt};
    return reconciler_new(s, &opts, out, err);
}

/* Two commands converging the same app at once would undo each other's steps: each holds an
 * exclusive lock on STATE/locks/APP.lock while it drives the app. The kernel drops the lock when
 * the process dies, so a killed command never leaves a stale one. */
int ops_app_lock(const struct ops_ctx *ctx, const char *state_dir, const char *app,
                 struct orch_error *err)
{
    _cleanup_free_ char *dir = orch_xasprintf("%s/locks", state_dir);
    _cleanup_free_ char *path = orch_xasprintf("%s/%s.lock", dir, app);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return orch_fail(err, ORCH_E_ENV, errno, "cannot create %s", dir), -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return orch_fail(err, ORCH_E_ENV, errno, "cannot open %s", path), -1;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK) {
            orch_fail(err, ORCH_E_ENV, errno, "cannot lock %s", path);
            close(fd);
            return -1;
        }
        ops_note_text(ctx, OPS_NOTE_INFO,
                      "%s: another orch command is converging this app; waiting", app);
        int rc;
        while ((rc = flock(fd, LOCK_EX)) < 0 && errno == EINTR && !ops_interrupted(ctx))
            ;
        if (rc < 0) {
            if (errno == EINTR)
                orch_fail(err, ORCH_E_ENV, 0,
                          "%s: interrupted while waiting for the other command; nothing of "
                          "this one was driven",
                          app);
            else
                orch_fail(err, ORCH_E_ENV, errno, "cannot lock %s", path);
            close(fd);
            return -1;
        }
    }
    return fd;
}

int ops_interrupt_exit(const struct ops_ctx *ctx, const char *app, const struct ops_target *t,
                       size_t nt, bool recorded, char **message)
{
    int sig = ops_interrupted(ctx);
    const char *name = sig == SIGTERM ? "SIGTERM" : sig == SIGINT ? "SIGINT" : "a signal";
    struct orch_buf b = {0};
    if (app != NULL)
        orch_buf_printf(&b, "%s: ", app);
    orch_buf_printf(&b, "interrupted by %s", name);
    if (!recorded) {
        orch_buf_printf(&b, " before anything was recorded; nothing was changed");
    } else {
        size_t shown = 0;
        orch_buf_printf(&b, "; the engine requests in flight finished and the store is "
                            "consistent. To finish the work: ");
        for (size_t i = 0; i < nt; i++) {
            if ((app != NULL && strcmp(t[i].app, app) != 0) || t[i].gone)
                continue;
            orch_buf_printf(&b, "%s`orch rollout status %s/%s`", shown ? ", " : "", t[i].app,
                            t[i].service);
            shown++;
        }
        if (shown == 0 && nt > 0)
            orch_buf_printf(&b, "run the same delete again, or any command that converges the "
                                "app (or `orch daemon`), to remove what is left");
        else if (shown == 0)
            orch_buf_printf(&b, "`orch rollout status APP/SERVICE`");
        else
            orch_buf_printf(&b, " (or run `orch daemon`)");
    }
    *message = orch_buf_steal(&b);
    return ORCH_EXIT_INTERRUPTED + (sig > 0 ? sig : SIGINT);
}

static void drive_failed(const struct ops_ctx *ctx, const struct orch_error *err,
                         struct ops_converge_result *out)
{
    out->exit_code = ops_error_exit(err);
    out->message = orch_xstrdup(ops_error_text(err));
    ops_note_text(ctx, OPS_NOTE_MESSAGE, "%s", out->message);
}

int ops_drive(const struct ops_ctx *ctx, struct reconciler *r, const char *app, bool remove_volumes,
              const struct ops_target *t, size_t nt, struct ops_converge_result *out)
{
    static const char *const names[] = {
        [RECONCILE_CONVERGED] = "converged",     [RECONCILE_ROLLED_BACK] = "rolled_back",
        [RECONCILE_FAILED] = "failed",           [RECONCILE_TIMEOUT] = "timeout",
        [RECONCILE_INTERRUPTED] = "interrupted",
    };
    struct reconcile_report rep;
    struct orch_error err = {0};
    memset(out, 0, sizeof(*out));
    out->app = orch_xstrdup(app);
    int lock =
        ops_interrupted(ctx) ? -1 : ops_app_lock(ctx, store_dir(reconciler_store(r)), app, &err);
    if (lock < 0 && ops_interrupted(ctx)) {
        out->outcome = "interrupted";
        out->exit_code = ops_interrupt_exit(ctx, app, t, nt, true, &out->message);
        ops_note_text(ctx, OPS_NOTE_MESSAGE, "%s", out->message);
        return out->exit_code;
    }
    if (lock < 0) {
        drive_failed(ctx, &err, out);
        return out->exit_code;
    }
    int rc = reconcile_app(r, app, remove_volumes, &rep, &err);
    close(lock);
    ops_note_simple(ctx, OPS_NOTE_PROGRESS_END);
    if (rc < 0) {
        drive_failed(ctx, &err, out);
        return out->exit_code;
    }
    if (rep.outcome == RECONCILE_INTERRUPTED) {
        out->outcome = "interrupted";
        out->exit_code = ops_interrupt_exit(ctx, app, t, nt, true, &out->message);
        ops_note_text(ctx, OPS_NOTE_MESSAGE, "%s", out->message);
        return out->exit_code;
    }
    out->outcome = names[rep.outcome];
    out->exit_code = ops_outcome_exit(out->outcome);
    char *why = NULL;
    out->exit_code = ops_supersede_exit(reconciler_store(r), t, nt, app, out->exit_code, &why);
    if (why != NULL) {
        out->outcome = "superseded";
        out->message = why;
    } else {
        out->message = orch_xstrdup(rep.message);
    }
    if (out->exit_code != ORCH_EXIT_OK)
        ops_note_text(ctx, OPS_NOTE_MESSAGE, "%s", out->message);
    if (ctx->note != NULL) {
        struct ops_note n = {.kind = OPS_NOTE_CONVERGED, .app = app, .converge = out};
        ctx->note(ctx->note_arg, &n);
    }
    return out->exit_code;
}

int ops_drive_apps(const struct ops_ctx *ctx, struct reconciler *r, const struct orch_strv *apps,
                   bool remove_volumes, const struct ops_target *t, size_t nt, int worst,
                   struct ops_converge_result **v, size_t *n)
{
    *v = orch_xcalloc(apps->n + 1, sizeof(**v));
    *n = 0;
    for (size_t i = 0; i < apps->n && (i == 0 || !ops_interrupted(ctx)); i++) {
        int e = ops_drive(ctx, r, apps->v[i], remove_volumes, t, nt, &(*v)[(*n)++]);
        if (e > worst)
            worst = e;
    }
    return worst;
}

int ops_converge(const struct ops_ctx *ctx, const char *app, bool remove_volumes,
                 int64_t timeout_ms, struct ops_converge_result *out)
{
    struct orch_error err = {0};
    struct store *s = NULL;
    struct reconciler *r = NULL;
    memset(out, 0, sizeof(*out));
    int rc = ops_store_open(ctx, true, &s, &err);
    if (rc == 0)
        rc = ops_engine_open(ctx, s, timeout_ms, &r, &err);
    if (rc < 0) {
        out->app = orch_xstrdup(app);
        drive_failed(ctx, &err, out);
    } else {
        ops_drive(ctx, r, app, remove_volumes, NULL, 0, out);
    }
    reconciler_free(r);
    if (s != NULL)
        store_close(s);
    return out->exit_code;
}
