/* One pass of a run: observe the app's containers, plan each service with the pure planner,
 * act on the rollout and decision verdicts, and execute the actions as one batch; and the
 * embedded driver (reconcile_app) that repeats passes until the app is done. */
#include "reconcile_internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/log.h"
#include "base/util.h"

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
        if (sp == NULL ||
            !recon_published(c, sp->container, sp->protocol == SPEC_PROTO_UDP ? "udp" : "tcp",
                             &host, &port))
            return PLAN_HEALTH_STARTING; /* not recon_published (yet): cannot be probed */
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
        pi->name = recon_container_name(c);
        pi->revision = recon_label_revision(c);
        pi->state = inst_state(c->state);
        pi->created_ms = c->created * 1000;
        pi->health = probe_instance(run, s, c, pi->state == PLAN_INST_RUNNING);
        bool draining = recon_mark(run, c->id)->drain_since != 0;
        if (draining && pi->health == PLAN_HEALTH_HEALTHY)
            pi->health = PLAN_HEALTH_STARTING; /* out of the registry: no longer serving */
        bool ready = !draining && pi->state == PLAN_INST_RUNNING &&
                     (t->health.kind == SPEC_PROBE_NONE || pi->health == PLAN_HEALTH_HEALTHY);
        pi->ready_since_ms = recon_ready_since(run, c->id, ready, now);
        if ((pi->state == PLAN_INST_EXITED || pi->state == PLAN_INST_DEAD) &&
            pi->revision == s->row.revision && recon_exit_first_seen(run, c->id))
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
        recon_note_crashes(run, s, new_exits, "exited", now);

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
        rc = recon_check_image(run, s, err);
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
        if (recon_still_running(run, inst, n)) {
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
        .phase = recon_svc_phase(s),
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
        rc = recon_last_good_revision(run->r, run->app, s->name, s->row.revision, &target, err);
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
            rc = recon_rollout_complete(run, s, err);
        break;
    case ROLLOUT_COMPLETE:
        /* recorded as soon as this service is done, even if others of the app are not */
        rc = recon_rollout_complete(run, s, err);
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
        rc = recon_rollout_fail(run, s, why, dec.verdict == ROLLOUT_ROLLBACK ? target : 0, err);
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
        rc = recon_ensure_volumes(run, s, err);
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
            recon_op_create(run, b, s);
            break;
        case PLAN_START:
            if (in_backoff)
                continue;
            recon_op_start(run, b, s, a->id);
            break;
        case PLAN_REMOVE: {
            const char *name = a->id;
            bool serving = false;
            for (size_t j = 0; j < n; j++) {
                if (strcmp(inst[j].id, a->id) != 0)
                    continue;
                name = inst[j].name;
                serving = inst[j].state == PLAN_INST_RUNNING && recon_in_registry(run, s, &inst[j]);
            }
            /* An instance clients may still find in the registry leaves it first and is
             * stopped only one TTL later, so they see no failed requests. */
            struct ready_mark *m = recon_mark(run, a->id);
            if (run->drain_ms > 0 && (serving || m->drain_since != 0)) {
                if (m->drain_since == 0) {
                    m->drain_since = now;
                    orch_log(ORCH_LOG_INFO, "%s/%s: %s leaves the registry; stopping it in %lldms",
                             run->app, s->name, name, (long long)run->drain_ms);
                }
                if (now - m->drain_since < run->drain_ms)
                    continue;
            }
            recon_op_remove(run, b, s, a->id, name, t->update.stop_grace_ms);
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
        recon_note_crashes(run, s, unhealthy_removed, "unhealthy", now);
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
                     svc ? svc : "?", recon_container_name(c));
        /* -1: the container's own StopTimeout, set from its update.stop_grace at create */
        recon_op_remove(run, b, NULL, c->id, recon_container_name(c), -1);
        *acted = true;
    }
    return left;
}

int reconcile_run_pass(struct reconcile_run *run, struct reconcile_pass *out,
                       struct orch_error *err)
{
    struct reconciler *r = run->r;
    int64_t now = orch_now_mono_ms();
    memset(out, 0, sizeof(*out));
    int rc = recon_run_load(run, err);
    if (rc < 0)
        return rc;
    struct docker_container_list obs = {0};
    rc = recon_observe_list(r, run->app, &obs, err);
    if (rc < 0)
        return rc;
    size_t n_present = 0;
    for (size_t i = 0; i < run->n; i++)
        n_present += run->svcs[i].present;
    if (n_present > 0)
        rc = recon_ensure_network(run, err);
    struct batch b = {.r = r};
    bool acted = false;
    for (size_t i = 0; rc == 0 && i < run->n; i++) {
        if (run->svcs[i].present)
            rc = pass_service(run, &b, &run->svcs[i], &obs, now, &acted, err);
    }
    size_t orphans = rc == 0 ? pass_orphans(run, &b, &obs, &acted) : 0;
    if (rc == 0) {
        recon_forget_gone(run, &obs);
        recon_snapshot(run, &obs);
    }
    struct orch_error werr = {0};
    int wrc = recon_batch_wait(&b, &werr);
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
            recon_note_crashes(run, s, s->failed_actions, "could not be created or started", now);
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
            rc = recon_rollout_complete(run, s, err);
    }
    if (rc == 0 && n_present == 0)
        rc = recon_remove_app_infra(run, remove_volumes, err);
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
            recon_idle(r, RECONCILE_IDLE_MS);
    }
    if (rc == 0)
        rc = reconcile_run_finish(run, remove_volumes, report, err);
    reconcile_run_free(run);
    return rc;
}
