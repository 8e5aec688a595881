/* Waiting for a daemon's work: polls the store for each target's rollout and published status
 * until it ended, and maps how it ended to an exit code. The decision is pure
 * (ops_wait_decide); the loop only reads the store and sends notes. Never acts on the engine. */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lb/lb_report.h"
#include "ops_internal.h"

int ops_wait_decide(const struct ops_wait_target *t, const struct ops_wait_view *v,
                    int64_t since_wall_ms, bool *say_message)
{
    int outcome = -1; /* not yet */
    *say_message = false;
    if (v->have_rollout && v->rollout_id == t->rollout_id) {
        if (v->rollout_state == STORE_ROLLOUT_COMPLETE)
            outcome = ORCH_EXIT_OK;
        else if (v->rollout_state == STORE_ROLLOUT_FAILED)
            outcome = ORCH_EXIT_FAILED;
        else if (v->rollout_state == STORE_ROLLOUT_ROLLED_BACK && v->have_status && v->converged &&
                 v->status_revision != t->revision)
            outcome = ORCH_EXIT_ROLLED_BACK;
        *say_message = outcome > 0;
    } else if (v->have_rollout) {
        outcome = ORCH_EXIT_OK; /* superseded by a newer change: not ours to follow */
    } else if (t->rollout_id == 0 && v->have_status && v->observed_ms >= since_wall_ms &&
               v->converged && v->status_revision == t->revision) {
        outcome = ORCH_EXIT_OK;
    }
    /* A published port the daemon cannot serve (taken by something else) fails the wait; a
     * service that publishes is done only once the daemon reported its ports since. */
    if (v->published_error)
        outcome = ORCH_EXIT_ENV;
    else if (outcome == ORCH_EXIT_OK && v->publishes && !v->published_reported)
        outcome = -1;
    if (v->gone)
        outcome = ORCH_EXIT_OK; /* deleted meanwhile */
    return outcome;
}

/* What the daemon's balancer report says of the service's published ports (*error: new, the
 * reason one is not served). */
static void published_view(struct store *s, const struct store_service *row, int64_t since_wall_ms,
                           struct ops_wait_view *v, char **error)
{
    struct spec_service svc = {0};
    struct orch_error err = {0};
    if (row->spec_json == NULL || spec_service_from_json(row->spec_json, &svc, &err) < 0)
        return;
    for (size_t k = 0; k < svc.ports_len; k++)
        v->publishes = v->publishes || svc.ports[k].published > 0;
    spec_service_free(&svc);
    struct lb_report r = {0};
    if (!v->publishes || lb_report_read(store_dir(s), &r, &err) < 0)
        return;
    v->published_reported = r.written_ms >= since_wall_ms;
    for (size_t i = 0; v->published_reported && i < r.n; i++) {
        const struct lb_report_port *p = &r.v[i];
        if (strcmp(p->app, row->app) == 0 && strcmp(p->service, row->name) == 0 &&
            p->error[0] != '\0' && *error == NULL) {
            v->published_error = true;
            *error = orch_xasprintf("published port %s is not served: %s", p->listen, p->error);
        }
    }
    lb_report_free(&r);
}

/* One poll of one target: reads what the store says, sends the outcome message and a progress
 * line when it changed (*line, new), and returns the outcome (-1: not yet). */
static int poll_target(const struct ops_ctx *ctx, struct store *s, const struct ops_wait_target *t,
                       int64_t since_wall_ms, char **line)
{
    struct orch_error err = {0};
    struct ops_wait_view v = {0};
    struct store_rollout ro = {0};
    v.have_rollout =
        t->rollout_id > 0 && store_rollout_latest(s, t->app, t->service, &ro, &err) == 0;
    if (v.have_rollout) {
        v.rollout_id = ro.id;
        v.rollout_state = ro.state;
    }
    struct store_status st = {0};
    v.have_status = store_status_get(s, t->app, t->service, &st, &err) == 0;
    if (v.have_status) {
        v.converged = st.converged;
        v.status_revision = st.revision;
        v.observed_ms = st.observed_ms;
    }
    struct store_service row;
    int q = store_service_get(s, t->app, t->service, &row, &err);
    _cleanup_free_ char *pub_error = NULL;
    if (q == 0) {
        published_view(s, &row, since_wall_ms, &v, &pub_error);
        store_service_free(&row);
    }
    v.gone = q == -ORCH_E_NOTFOUND;

    bool say = false;
    int outcome = ops_wait_decide(t, &v, since_wall_ms, &say);
    if (outcome == ORCH_EXIT_ENV && pub_error != NULL)
        ops_note_text(ctx, OPS_NOTE_MESSAGE, "%s/%s: %s", t->app, t->service, pub_error);
    if (say)
        ops_note_text(ctx, OPS_NOTE_MESSAGE, "%s/%s: %s", t->app, t->service, ro.message);
    if (v.have_status) {
        _cleanup_free_ char *now =
            orch_xasprintf("%s/%s: %d/%d updated, %d healthy, revision %lld", t->app, t->service,
                           st.updated, st.desired, st.healthy, (long long)st.revision);
        if (*line == NULL || strcmp(*line, now) != 0) {
            ops_note_text(ctx, OPS_NOTE_PROGRESS, "%s", now);
            free(*line);
            *line = orch_steal(&now);
        }
    }
    if (v.have_rollout)
        store_rollout_free(&ro);
    if (v.have_status)
        store_status_free(&st);
    return outcome;
}

int ops_wait_in(const struct ops_ctx *ctx, struct store *s, const struct ops_wait_target *t,
                size_t n, int64_t since_wall_ms, int64_t timeout_ms)
{
    int64_t start = orch_now_mono_ms();
    int worst = ORCH_EXIT_OK;
    bool *done = orch_xcalloc(n + 1, sizeof(*done));
    char **lines = orch_xcalloc(n + 1, sizeof(char *));
    size_t left = n;
    while (left > 0) {
        for (size_t i = 0; i < n; i++) {
            if (done[i])
                continue;
            int outcome = poll_target(ctx, s, &t[i], since_wall_ms, &lines[i]);
            if (outcome >= 0) {
                done[i] = true;
                left--;
                if (outcome > worst)
                    worst = outcome;
            }
        }
        if (left == 0)
            break;
        if (ops_interrupted(ctx)) {
            int sig = ops_interrupted(ctx);
            ops_note_simple(ctx, OPS_NOTE_PROGRESS_END);
            ops_note_text(ctx, OPS_NOTE_MESSAGE,
                          "interrupted by %s; the daemon goes on with the rollout (follow it "
                          "with `orch rollout status %s/%s`)",
                          sig == SIGTERM ? "SIGTERM" : "SIGINT", t[0].app, t[0].service);
            worst = ORCH_EXIT_INTERRUPTED + sig;
            break;
        }
        if (timeout_ms > 0 && orch_now_mono_ms() - start > timeout_ms) {
            ops_note_simple(ctx, OPS_NOTE_PROGRESS_END);
            ops_note_text(ctx, OPS_NOTE_MESSAGE,
                          "timed out waiting; the daemon goes on with the rollout");
            worst = ORCH_EXIT_TIMEOUT;
            break;
        }
        usleep(200 * 1000);
    }
    ops_note_simple(ctx, OPS_NOTE_PROGRESS_END);
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    free(done);
    return worst;
}

int ops_wait(const struct ops_ctx *ctx, const struct ops_wait_target *t, size_t n,
             int64_t since_wall_ms, int64_t timeout_ms)
{
    struct orch_error err = {0};
    struct store *s = NULL;
    if (ops_store_open(ctx, false, &s, &err) < 0) {
        ops_note_text(ctx, OPS_NOTE_MESSAGE, "%s", ops_error_text(&err));
        return ops_error_exit(&err);
    }
    if (s == NULL) /* no state: nothing to wait for */
        return ORCH_EXIT_OK;
    int rc = ops_wait_in(ctx, s, t, n, since_wall_ms, timeout_ms);
    store_close(s);
    return rc;
}
