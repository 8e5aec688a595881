/* One pass of a run: observe the app's containers, plan each service with the pure planner,
 * act on the rollout and decision verdicts, and execute the actions as one batch; and the
 * embedded driver (reconcile_app) that repeats passes until the app is done. */
#include "decide.h"
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
        if (sp == NULL ||
            !recon_published(c, sp->container, sp->protocol == SPEC_PROTO_UDP ? "udp" : "tcp",
                             &host, &port))
            return PLAN_HEALTH_STARTING; /* not recon_published (yet): cannot be probed */
    }
    /* from its start as this run saw it complete (ms), else the engine's Created (seconds) */
    struct ready_mark *m = recon_mark(run, c->id);
    int64_t started = m->started_wall_ms > 0 ? m->started_wall_ms : c->created * 1000;
    struct orch_error e = {0};
    if (health_prober_watch(p, c->id, h, host, port, started, &e) < 0) {
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

/* What one pass knows of one service while it is planned, decided and executed. */
struct svc_pass {
    struct plan_instance *inst; /* its containers (borrowed strings from the observation) */
    size_t n;
    int new_exits;   /* exits of the current revision first seen now */
    size_t unjudged; /* adopted running instances with no probe result yet */
    struct plan_service want;
    struct plan_counts counts;
    struct plan plan;
    struct reconcile_action *actions; /* parallel to plan.v */
    enum reconcile_verdict *verdicts; /* parallel to plan.v */
    struct reconcile_dep *deps;
    struct reconcile_decide_input in;
    struct reconcile_decision d;
    char *image_error; /* why the image is missing, when it is */
};

static void svc_pass_free(struct svc_pass *p)
{
    free(p->inst);
    plan_free(&p->plan);
    free(p->actions);
    free(p->verdicts);
    free(p->deps);
    free(p->image_error);
}

/* The service's containers as the planner sees them, probed (idempotently) as they go. */
static void svc_observe(struct reconcile_run *run, struct svc_run *s,
                        const struct docker_container_list *obs, int64_t now, struct svc_pass *p)
{
    const struct spec_service *t = &s->tmpl;
    p->inst = orch_xcalloc(obs->n + 1, sizeof(*p->inst));
    for (size_t i = 0; i < obs->n; i++) {
        const struct docker_container *c = &obs->v[i];
        const char *svc = docker_kvs_get(&c->labels, "orch.service");
        if (svc == NULL || strcmp(svc, s->name) != 0)
            continue;
        struct plan_instance *pi = &p->inst[p->n++];
        pi->id = c->id;
        pi->name = recon_container_name(c);
        pi->revision = recon_label_revision(c);
        /* An instance that lost the app network lost its endpoints too: replaced like a dead
         * one, but its loss is no crash of the revision. */
        bool detached = recon_detached(run->app, c);
        pi->state = detached ? PLAN_INST_DEAD : inst_state(c->state);
        pi->created_ms = c->created * 1000;
        pi->health = probe_instance(run, s, c, pi->state == PLAN_INST_RUNNING);
        bool draining = recon_mark(run, c->id)->drain_since != 0;
        if (draining && pi->health == PLAN_HEALTH_HEALTHY)
            pi->health = PLAN_HEALTH_STARTING; /* out of the registry: no longer serving */
        bool ready = !draining && pi->state == PLAN_INST_RUNNING &&
                     (t->health.kind == SPEC_PROBE_NONE || pi->health == PLAN_HEALTH_HEALTHY);
        pi->ready_since_ms = recon_ready_since(run, c->id, ready, now);
        if ((pi->state == PLAN_INST_EXITED || pi->state == PLAN_INST_DEAD) && !detached &&
            pi->revision == s->row.revision && recon_exit_first_seen(run, c->id))
            p->new_exits++;
    }
    /* Instances that were running before this run started have no verdict yet in this
     * process: until their first probe result is in, they are not known to be unready, and a
     * rolling update must not take them for unready old ones and remove them all at once. */
    if (t->health.kind == SPEC_PROBE_NONE || run->r->prober == NULL)
        return;
    for (size_t i = 0; i < p->n; i++) {
        struct health_state hs;
        if (p->inst[i].state == PLAN_INST_RUNNING && p->inst[i].created_ms < run->start_wall_ms &&
            health_prober_state(run->r->prober, p->inst[i].id, &hs) && hs.last_probe_ms < 0)
            p->unjudged++;
    }
}

/* Plans the service and gathers the decision's input from the plan and the run's state. */
static int svc_plan(struct reconcile_run *run, struct svc_run *s, int64_t now, struct svc_pass *p,
                    struct orch_error *err)
{
    const struct spec_service *t = &s->tmpl;
    p->want = (struct plan_service){
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
    plan_counts_compute(&p->want, p->inst, p->n, now, &p->counts);
    int rc = plan_service_compute(&p->want, p->inst, p->n, now, &p->plan, err);
    if (rc < 0)
        return rc;
    p->actions = orch_xcalloc(p->plan.n + 1, sizeof(*p->actions));
    p->verdicts = orch_xcalloc(p->plan.n + 1, sizeof(*p->verdicts));
    bool creates = false;
    for (size_t i = 0; i < p->plan.n; i++) {
        const struct plan_action *a = &p->plan.v[i];
        struct reconcile_action *ra = &p->actions[i];
        creates |= a->kind == PLAN_CREATE;
        ra->kind = a->kind == PLAN_REMOVE ? RECONCILE_ACT_REMOVE : RECONCILE_ACT_START;
        if (a->kind != PLAN_REMOVE)
            continue;
        for (size_t j = 0; j < p->n; j++)
            if (strcmp(p->inst[j].id, a->id) == 0)
                ra->serving =
                    p->inst[j].state == PLAN_INST_RUNNING && recon_in_registry(run, s, &p->inst[j]);
        ra->drain_since_ms = recon_mark(run, a->id)->drain_since;
        ra->counts_as_crash = a->revision == s->row.revision && strcmp(a->reason, "unhealthy") == 0;
    }
    /* without a probe, converged must last RECONCILE_SETTLE_MS (an instance that dies at once
     * is caught); with one, each healthy verdict already proves its instance lives */
    s->settle_ms = p->want.has_probe ? 0 : RECONCILE_SETTLE_MS;
    int64_t newest_start = 0;
    for (size_t j = 0; j < p->n; j++) {
        int64_t st = recon_mark(run, p->inst[j].id)->started_ms;
        if (p->inst[j].state == PLAN_INST_RUNNING && st > newest_start)
            newest_start = st;
    }
    p->deps = orch_xcalloc(run->n + 1, sizeof(*p->deps));
    size_t n_deps = 0;
    for (size_t j = 0; j < run->n; j++)
        if (run->svcs[j].present)
            p->deps[n_deps++] = (struct reconcile_dep){
                .name = run->svcs[j].name,
                .settled = run->svcs[j].settled,
                .failed = run->svcs[j].failed,
            };
    p->in = (struct reconcile_decide_input){
        .now_ms = now,
        .settle_ms = s->settle_ms,
        .backoff_max_ms = RECONCILE_BACKOFF_MAX_MS,
        .backoff_reset_ms = RECONCILE_BACKOFF_RESET_MS,
        .unjudged = p->unjudged,
        .new_exits = p->new_exits,
        .crashes = s->crashes,
        .backoff_ms = s->backoff_ms,
        .backoff_until_ms = s->backoff_until_ms,
        .score = (long)p->counts.updated_available * 100000L - p->counts.old,
        .last_score = s->last_score,
        .last_progress_ms = s->last_progress_ms,
        .plan_converged = p->plan.n == 0 && plan_counts_converged(&p->counts),
        .settled_since_ms = s->settled_since_ms,
        .settle_confirmed = s->settle_confirmed,
        .newest_start_ms = newest_start,
        .unrecorded = recon_svc_phase(s) == ROLLOUT_IDLE && !s->rev_active,
        .creates = creates,
        .depends_on = (const char *const *)t->depends_on,
        .n_depends_on = t->depends_on_len,
        .deps = p->deps,
        .n_deps = n_deps,
        .drain_ms = run->drain_ms,
        .actions = p->actions,
        .n_actions = p->plan.n,
    };
    return 0;
}

/* Decides, finding out what the decision asks for (is the image there, do the instances still
 * run) and deciding again with the answers; keeps the outcome in the run's state. Counted
 * crashes and progress are kept before any lookup, as they do not depend on it. */
static int svc_decide(struct reconcile_run *run, struct svc_run *s, struct svc_pass *p,
                      struct orch_error *err)
{
    struct reconcile_decision *d = &p->d;
    reconcile_decide(&p->in, d, p->verdicts);
    if (d->hold)
        return 0;
    s->counts = p->counts;
    s->crashes = d->crashes;
    s->backoff_ms = d->backoff_ms;
    s->backoff_until_ms = d->backoff_until_ms;
    if (p->new_exits > 0)
        recon_crash_event(run, s, p->new_exits, "exited", d->exit_delay_ms);
    s->last_score = d->last_score;
    s->last_progress_ms = d->last_progress_ms;
    if (d->check_image) {
        int rc = recon_check_image(run, s, err);
        if (rc == -ORCH_E_NOTFOUND) {
            p->image_error = orch_xstrdup(err->msg);
            orch_error_clear(err);
            rc = 0;
        }
        if (rc < 0)
            return rc;
        p->in.image_present = p->image_error ? RECONCILE_FACT_NO : RECONCILE_FACT_YES;
        reconcile_decide(&p->in, d, p->verdicts);
    }
    if (d->check_running) {
        bool yes = recon_still_running(run, p->inst, p->n);
        p->in.still_running = yes ? RECONCILE_FACT_YES : RECONCILE_FACT_NO;
        reconcile_decide(&p->in, d, p->verdicts);
    }
    s->settled_since_ms = d->settled_since_ms;
    s->settle_confirmed = d->settle_confirmed;
    if (d->backoff_reset) {
        s->crashes = 0;
        s->backoff_ms = RECONCILE_BACKOFF_MIN_MS;
    }
    return 0;
}

/* The rollout state machine decides; this acts. Returns 1 when the service failed or rolls
 * back (nothing more is done with it in this pass), 0 to go on, or a negative code. */
static int svc_rollout(struct reconcile_run *run, struct svc_run *s, struct svc_pass *p,
                       struct orch_error *err)
{
    const struct spec_service *t = &s->tmpl;
    struct rollout_input ri = {
        .phase = recon_svc_phase(s),
        .converged = p->d.converged,
        .converged_for_ms = p->d.converged_for_ms,
        .settle_ms = s->settle_ms,
        .image_missing = p->image_error != NULL,
        .crashes = s->crashes,
        .crash_limit = RECONCILE_CRASH_LIMIT,
        .since_progress_ms = p->in.now_ms - s->last_progress_ms,
        .deadline_ms = t->update.deadline_ms,
        .auto_rollback = t->update.auto_rollback,
        .give_up = run->give_up,
    };
    int64_t target = 0;
    if (rollout_failing(&ri) && ri.phase == ROLLOUT_PROGRESSING && ri.auto_rollback) {
        int rc = recon_last_good_revision(run->r, run->app, s->name, s->row.revision, &target, err);
        if (rc < 0)
            return rc;
        ri.has_rollback_target = target > 0;
    }
    struct rollout_decision dec = rollout_decide(&ri);
    switch (dec.verdict) {
    case ROLLOUT_WAIT:
        return p->d.record_good ? recon_rollout_complete(run, s, err) : 0;
    case ROLLOUT_COMPLETE:
        /* recorded as soon as this service is done, even if others of the app are not */
        return recon_rollout_complete(run, s, err);
    case ROLLOUT_ROLLBACK:
    case ROLLOUT_FAIL:
    case ROLLOUT_GIVE_UP:
        break;
    }
    char dl[32];
    orch_format_duration(t->update.deadline_ms, dl, sizeof(dl));
    _cleanup_free_ char *why =
        dec.reason == ROLLOUT_REASON_IMAGE_MISSING ? orch_xstrdup(p->image_error)
        : dec.reason == ROLLOUT_REASON_CRASH_LOOP
            ? orch_xasprintf("crash loop: instances exited, failed to start or turned "
                             "unhealthy %d times",
                             s->crashes)
            : orch_xasprintf("no progress for %s (update.deadline)", dl);
    s->crashes = 0;
    int rc = recon_rollout_fail(run, s, why, dec.verdict == ROLLOUT_ROLLBACK ? target : 0, err);
    s->settled = false;
    return rc < 0 ? rc : 1;
}

/* A removal the planner makes to replace a failed instance (not a scale-down or an update). */
static bool is_replacement(const char *reason)
{
    return strcmp(reason, "exited") == 0 || strcmp(reason, "dead") == 0 ||
           strcmp(reason, "unhealthy") == 0;
}

/* Carries out the plan's actions as decided. */
static int svc_execute(struct reconcile_run *run, struct batch *b, struct svc_run *s,
                       struct svc_pass *p, bool *acted, struct orch_error *err)
{
    const struct reconcile_decision *d = &p->d;
    if (d->waiting_for != NULL && p->in.creates && run->r->progress &&
        strcmp(s->waiting_for, d->waiting_for) != 0)
        orch_log(ORCH_LOG_INFO, "%s/%s: waiting for %s to be healthy (depends_on)", run->app,
                 s->name, d->waiting_for);
    snprintf(s->waiting_for, sizeof(s->waiting_for), "%s", d->waiting_for ? d->waiting_for : "");
    if (p->in.creates && !d->starts_held) {
        int rc = recon_ensure_volumes(run, s, err);
        if (rc < 0)
            return rc;
    }
    for (size_t i = 0; i < p->plan.n; i++) {
        const struct plan_action *a = &p->plan.v[i];
        const char *name = a->id;
        for (size_t j = 0; a->id != NULL && j < p->n; j++)
            if (strcmp(p->inst[j].id, a->id) == 0)
                name = p->inst[j].name;
        switch (p->verdicts[i]) {
        case RECONCILE_HOLD:
        case RECONCILE_DRAIN_WAIT:
            continue;
        case RECONCILE_DRAIN_BEGIN:
            recon_mark(run, a->id)->drain_since = p->in.now_ms;
            orch_log(ORCH_LOG_INFO, "%s/%s: %s leaves the registry; stopping it in %lldms",
                     run->app, s->name, name, (long long)run->drain_ms);
            continue;
        case RECONCILE_DO:
            break;
        }
        if (a->kind == PLAN_CREATE)
            recon_op_create(run, b, s);
        else if (a->kind == PLAN_START)
            recon_op_start(run, b, s, a->id);
        else
            recon_op_remove(run, b, s, a->id, name, s->tmpl.update.stop_grace_ms);
        if (a->kind == PLAN_REMOVE && is_replacement(a->reason)) {
            snprintf(s->replaced, sizeof(s->replaced), "%s", a->reason);
            s->replaced_ms = orch_now_wall_ms();
        }
        *acted = true;
    }
    /* an instance of the new revision that never got (or stayed) healthy counts like a crash:
     * replacements back off, and enough of them fail the rollout */
    if (d->crash_removals > 0)
        recon_note_crashes(run, s, d->crash_removals, "unhealthy", p->in.now_ms);
    return 0;
}

/* Plans, decides and executes one service. *acted is set when any action was issued. */
static int pass_service(struct reconcile_run *run, struct batch *b, struct svc_run *s,
                        const struct docker_container_list *obs, int64_t now, bool *acted,
                        struct orch_error *err)
{
    if (s->failed) {
        /* A failed rollout with no way back: its instances stay for inspection. */
        s->settled = true;
        return 0;
    }
    struct svc_pass p = {0};
    s->next_ms = 0;
    svc_observe(run, s, obs, now, &p);
    int rc = svc_plan(run, s, now, &p, err);
    if (rc == 0)
        rc = svc_decide(run, s, &p, err);
    if (rc == 0 && p.d.hold) {
        s->settled = false;
        s->settled_since_ms = 0;
    } else if (rc == 0) {
        rc = svc_rollout(run, s, &p, err);
        if (rc == 0)
            rc = svc_execute(run, b, s, &p, acted, err);
        if (rc == 0) {
            s->settled = p.d.converged;
            s->next_ms = p.d.next_ms;
            progress_line(run, s, &p.counts);
        }
    }
    svc_pass_free(&p);
    return rc < 0 ? rc : 0;
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

/* Takes in the outcome of a batch whose actions all completed, and frees it: an engine that
 * went away ends the pass; refused creates and starts count like crashes. */
static int batch_harvest(struct reconcile_run *run, struct batch *b, int64_t now,
                         struct orch_error *err)
{
    bool env_failed = b->env_failed;
    if (env_failed)
        *err = b->env_err;
    if (b->network_failed)
        run->network_ok = false; /* gone or ambiguous: found, made or repaired next pass */
    free(b);
    if (env_failed)
        return -ORCH_E_ENV;
    for (size_t i = 0; i < run->n; i++) {
        struct svc_run *s = &run->svcs[i];
        if (s->failed_actions > 0)
            recon_note_crashes(run, s, s->failed_actions, "could not be created or started", now);
        s->failed_actions = 0;
    }
    return 0;
}

int reconcile_run_pass(struct reconcile_run *run, struct reconcile_pass *out,
                       struct orch_error *err)
{
    struct reconciler *r = run->r;
    int64_t now = orch_now_mono_ms();
    memset(out, 0, sizeof(*out));
    if (run->inflight != NULL) {
        /* async: the last pass's actions first; nothing new while they are on their way */
        if (run->inflight->pending > 0) {
            out->inflight = true;
            return 0;
        }
        struct batch *done = run->inflight;
        run->inflight = NULL;
        int hrc = batch_harvest(run, done, now, err);
        if (hrc < 0)
            return hrc;
    }
    int rc = recon_run_load(run, err);
    if (rc == 0)
        rc = recon_deletions_load(run, err);
    if (rc < 0)
        return rc;
    struct docker_container_list obs = {0};
    rc = recon_observe_list(r, run->app, &obs, err);
    if (rc < 0)
        return rc;
    size_t n_present = 0;
    for (size_t i = 0; i < run->n; i++)
        n_present += run->svcs[i].present;
    /* The network is part of the desired state: an instance off it means it was removed or
     * disconnected by hand, so it is looked at (and made again) before anything is created. */
    for (size_t i = 0; i < obs.n && run->network_ok; i++)
        if (recon_detached(run->app, &obs.v[i])) {
            orch_log(ORCH_LOG_WARN, "%s: %s is not on network orch-%s any more; replacing it",
                     run->app, recon_container_name(&obs.v[i]), run->app);
            run->network_ok = false;
        }
    if (n_present > 0)
        rc = recon_ensure_network(run, err);
    struct batch *b = orch_xcalloc(1, sizeof(*b));
    b->r = r;
    b->run = run;
    bool acted = false;
    for (size_t i = 0; rc == 0 && i < run->n; i++) {
        if (run->svcs[i].present)
            rc = pass_service(run, b, &run->svcs[i], &obs, now, &acted, err);
    }
    size_t orphans = rc == 0 ? pass_orphans(run, b, &obs, &acted) : 0;
    if (rc == 0) {
        recon_forget_gone(run, &obs);
        recon_snapshot(run, &obs);
        rc = recon_deletions_settle(run, &obs, n_present, err);
    }
    docker_container_list_free(&obs);
    if (run->async && b->pending > 0) {
        /* the actions complete on the loop while other apps pass; on_idle says when */
        run->inflight = b;
        out->inflight = true;
        return rc;
    }
    struct orch_error werr = {0};
    int wrc = recon_batch_wait(b, &werr);
    int succeeded = b->succeeded;
    int hrc = batch_harvest(run, b, now, &werr);
    if (rc == 0 && (wrc < 0 || hrc < 0)) {
        *err = werr;
        rc = wrc < 0 ? wrc : hrc;
    }
    if (rc < 0)
        return rc;

    /* Done when every service has been converged for its settle time (without a probe, an
     * instance that dies right after starting is caught here rather than reported as running;
     * with one, its healthy verdict is the proof), and no container of an undesired service is
     * left. */
    bool done = orphans == 0;
    if (orphans > 0)
        run->quiet_since = 0;
    else if (run->quiet_since == 0)
        run->quiet_since = now;
    for (size_t i = 0; i < run->n; i++) {
        const struct svc_run *s = &run->svcs[i];
        if (s->present && !s->failed && (!s->settled || now - s->settled_since_ms < s->settle_ms))
            done = false;
    }
    if (n_present == 0 && (run->quiet_since == 0 || now - run->quiet_since < RECONCILE_IDLE_MS))
        done = false;
    out->busy = succeeded > 0;
    out->done = done && !out->busy;
    for (size_t i = 0; i < run->n; i++) {
        const struct svc_run *s = &run->svcs[i];
        if (s->present && s->next_ms > 0 && (out->wake_ms == 0 || s->next_ms < out->wake_ms))
            out->wake_ms = s->next_ms;
    }
    if (n_present == 0 && run->quiet_since != 0)
        out->wake_ms = run->quiet_since + RECONCILE_IDLE_MS;
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
        rc = recon_remove_app_infra(run, remove_volumes || recon_deleting_volumes(run), err);
    if (rc == 0 && n_present == 0)
        rc = recon_deletions_finish(run, err); /* a delete is over once its network went */
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
        if (r->stop != NULL && *r->stop != 0) {
            /* between passes: every request of the last one has finished, nothing is
             * half-made; the store says what is desired and the rollout goes on next time */
            report->outcome = RECONCILE_INTERRUPTED;
            snprintf(report->message, sizeof(report->message), "%s: interrupted", app);
            reconcile_run_free(run);
            return 0;
        }
        if (r->timeout_ms > 0 && orch_now_mono_ms() - run->start_ms > r->timeout_ms) {
            report->outcome = RECONCILE_TIMEOUT;
            snprintf(report->message, sizeof(report->message),
                     "%s: timed out before the rollout finished", app);
            reconcile_run_free(run);
            return 0;
        }
        /* Only actions the engine carried out call for an immediate next pass; otherwise
         * (waiting for readiness, backing off, refused actions) wait until a probe verdict
         * changes or a timed step is due, and at most RECONCILE_IDLE_MS (the engine's own
         * changes, such as an exit, are seen by looking again). */
        if (!pass.busy) {
            int64_t wait = RECONCILE_IDLE_MS;
            int64_t left = pass.wake_ms > 0 ? pass.wake_ms - orch_now_mono_ms() : wait;
            recon_wait(r, left < wait ? left : wait);
        }
    }
    if (rc == 0)
        rc = reconcile_run_finish(run, remove_volumes, report, err);
    reconcile_run_free(run);
    return rc;
}
