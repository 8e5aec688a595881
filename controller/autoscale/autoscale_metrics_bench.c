/* A driver for scripts/bench.d/metrics.sh: collects the CPU use of every container carrying a
 * label, every interval for a while, with one collector (the Engine stats API in parallel on
 * the docker client, or the cgroup files, or none for a baseline), the way the daemon's
 * autoscaler will. It prints one summary line with its own CPU time; the script adds dockerd's.
 * Not installed; it changes nothing on the engine.
 *
 *   autoscale_metrics_bench stats|cgroup|none LABEL INTERVAL_MS DURATION_MS [CGROUP_ROOT]
 *
 * INTERVAL_MS 0 runs the rounds back to back, each 1 ms after the last one is complete. */
#define _GNU_SOURCE
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <uv.h>

#include "autoscale/autoscale_metrics.h"
#include "base/util.h"
#include "docker/docker_client.h"

enum collector { COLLECT_STATS, COLLECT_CGROUP, COLLECT_NONE };

struct target {
    char *id;
    char *cgroup_path; /* cgroup collector: NULL when not found */
    bool cgroup_v2;
    bool has_prev;
    struct autoscale_cpu_sample prev, cur;
    struct bench *b;
};

struct bench {
    enum collector collector;
    struct docker_client *client;
    uv_timer_t tick, stop;
    struct target *t;
    size_t n;
    size_t pending;    /* stats requests of the current round still out */
    bool back_to_back; /* interval 0: the next round starts when one is complete */
    bool stopping;
    uint64_t round_start; /* uv_hrtime */
    uint64_t rounds, overruns, ok, failed, measured;
    int64_t milli_sum;
    double round_ms_sum, round_ms_max;
};

static void on_tick(uv_timer_t *h);

static void round_done(struct bench *b)
{
    double ms = (double)(uv_hrtime() - b->round_start) / 1e6;
    b->round_ms_sum += ms;
    if (ms > b->round_ms_max)
        b->round_ms_max = ms;
    b->rounds++;
    if (b->back_to_back && !b->stopping)
        uv_timer_start(&b->tick, on_tick, 1, 0); /* not 0: a timer re-armed for 0 ms from its own
                                                    callback starves the loop in this libuv */
}

static void sample_done(struct target *t)
{
    struct bench *b = t->b;
    b->ok++;
    if (t->has_prev) {
        int64_t m = autoscale_cpu_milli(&t->prev, &t->cur);
        if (m >= 0) {
            b->measured++;
            b->milli_sum += m;
        }
    }
    t->prev = t->cur;
    t->has_prev = true;
}

static void on_stats(void *data, long status, const struct orch_error *err)
{
    struct target *t = data;
    struct bench *b = t->b;
    if (err->code == ORCH_E_OK) {
        sample_done(t);
    } else {
        b->failed++;
        if (b->failed <= 3)
            fprintf(stderr, "stats %.12s: %s\n", t->id, err->msg);
    }
    if (--b->pending == 0)
        round_done(b);
}

static void on_tick(uv_timer_t *h)
{
    struct bench *b = h->data;
    struct orch_error err = {0};

    if (b->pending > 0) {
        b->overruns++; /* the last round is still out: skip this one, as the daemon would */
        return;
    }
    b->round_start = uv_hrtime();
    switch (b->collector) {
    case COLLECT_STATS:
        for (size_t k = 0; k < b->n; k++) {
            if (autoscale_stats_fetch(b->client, b->t[k].id, &b->t[k].cur, on_stats, &b->t[k],
                                      &err) < 0) {
                b->failed++;
                continue;
            }
            b->pending++;
        }
        if (b->pending == 0)
            round_done(b);
        break;
    case COLLECT_CGROUP:
        for (size_t k = 0; k < b->n; k++) {
            struct target *t = &b->t[k];
            if (t->cgroup_path == NULL ||
                autoscale_cgroup_read(t->cgroup_path, t->cgroup_v2, (int64_t)uv_hrtime(), &t->cur,
                                      &err) < 0) {
                b->failed++;
                continue;
            }
            sample_done(t);
        }
        round_done(b);
        break;
    case COLLECT_NONE:
        round_done(b);
        break;
    }
}

static void on_stop(uv_timer_t *h)
{
    struct bench *b = h->data;
    b->stopping = true;
    uv_timer_stop(&b->tick);
    if (b->pending > 0) {
        uv_timer_start(&b->stop, on_stop, 100, 0); /* let the last round finish */
        return;
    }
    uv_close((uv_handle_t *)&b->tick, NULL);
    uv_close((uv_handle_t *)&b->stop, NULL);
    docker_client_close(b->client);
}

static double cpu_ms_self(void)
{
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000.0 +
           (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) / 1000.0;
}

int main(int argc, char **argv)
{
    struct bench b = {0};
    struct orch_error err = {0};
    struct docker_endpoint ep = {0};
    struct docker_container_list list = {0};
    struct docker_sync s = {0};
    uv_loop_t loop;

    if (argc < 5 || argc > 6) {
        fprintf(stderr,
                "usage: %s stats|cgroup|none LABEL INTERVAL_MS DURATION_MS "
                "[CGROUP_ROOT]\n",
                argv[0]);
        return 2;
    }
    b.collector = strcmp(argv[1], "stats") == 0    ? COLLECT_STATS
                  : strcmp(argv[1], "cgroup") == 0 ? COLLECT_CGROUP
                                                   : COLLECT_NONE;
    const char *label = argv[2];
    uint64_t interval = strtoull(argv[3], NULL, 10), duration = strtoull(argv[4], NULL, 10);
    const char *root = argc == 6 ? argv[5] : NULL;

    uv_loop_init(&loop);
    if (docker_endpoint_from_env(&ep, &err) < 0 ||
        docker_client_new(&loop, &ep, NULL, &b.client, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 3;
    }
    if (docker_containers_list(b.client, &label, 1, &list, docker_sync_done, &s, &err) < 0 ||
        docker_sync_wait(b.client, &s, 1, &err) < 0) {
        fprintf(stderr, "list: %s\n", err.msg);
        return 3;
    }
    b.t = orch_xcalloc(list.n ? list.n : 1, sizeof(*b.t));
    size_t no_cgroup = 0;
    for (size_t k = 0; k < list.n; k++) {
        if (strcmp(list.v[k].state, "running") != 0)
            continue;
        struct target *t = &b.t[b.n++];
        t->id = orch_xstrdup(list.v[k].id);
        t->b = &b;
        if (b.collector == COLLECT_CGROUP &&
            autoscale_cgroup_find(root, t->id, &t->cgroup_path, &t->cgroup_v2, &err) < 0)
            no_cgroup++;
    }
    docker_container_list_free(&list);
    if (b.collector == COLLECT_CGROUP && b.n > 0 && b.t[0].cgroup_path != NULL)
        fprintf(stderr, "cgroup file of the first: %s\n", b.t[0].cgroup_path);

    double cpu0 = cpu_ms_self();
    uint64_t t0 = uv_hrtime();
    uv_timer_init(&loop, &b.tick);
    uv_timer_init(&loop, &b.stop);
    b.tick.data = b.stop.data = &b;
    b.back_to_back = interval == 0;
    uv_timer_start(&b.tick, on_tick, 0, interval);
    uv_timer_start(&b.stop, on_stop, duration, 0);
    uv_run(&loop, UV_RUN_DEFAULT);
    double wall_ms = (double)(uv_hrtime() - t0) / 1e6;
    double cpu_ms = cpu_ms_self() - cpu0;

    printf("collector=%s containers=%zu no_cgroup=%zu rounds=%" PRIu64 " overruns=%" PRIu64
           " ok=%" PRIu64 " failed=%" PRIu64 " measured=%" PRIu64
           " mean_cpu_milli=%.1f round_ms_mean=%.1f round_ms_max=%.1f wall_ms=%.0f"
           " self_cpu_ms=%.1f\n",
           argv[1], b.n, no_cgroup, b.rounds, b.overruns, b.ok, b.failed, b.measured,
           b.measured ? (double)b.milli_sum / (double)b.measured : 0.0,
           b.rounds ? b.round_ms_sum / (double)b.rounds : 0.0, b.round_ms_max, wall_ms, cpu_ms);
    for (size_t k = 0; k < b.n; k++) {
        free(b.t[k].id);
        free(b.t[k].cgroup_path);
    }
    free(b.t);
    uv_loop_close(&loop);
    docker_endpoint_free(&ep);
    return b.failed > 0 ? 1 : 0;
}
