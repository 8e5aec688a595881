/* CPU metrics of containers for the autoscaler, from two sources:
 *
 *   the Engine stats API  GET /containers/{id}/stats?stream=false&one-shot=true through the
 *                         docker client (works for any engine, remote ones too; without
 *                         one-shot the engine waits ~2 s per container for a second sample);
 *   the cgroup files      the local engine's containers' CPU counters, read directly:
 *                         cgroup v2 cpu.stat (usage_usec) or v1 cpuacct.usage (ns).
 *
 * Both give a cumulative counter; CPU use is the difference of two samples over the time
 * between them (autoscale_cpu_milli), so the first sync of a container has no measure yet.
 * scripts/bench.d/metrics.sh compares their cost at 100 containers (docs/autoscale.md).
 *
 * The parsers and autoscale_cpu_milli are pure; the fetch functions do I/O on the caller's
 * loop (stats) or read small files synchronously (cgroup: microseconds each). */
#ifndef ORCH_AUTOSCALE_METRICS_H
#define ORCH_AUTOSCALE_METRICS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../base/error.h"
#include "../docker/docker_client.h"

/* A container's cumulative CPU time at one moment. */
struct autoscale_cpu_sample {
    uint64_t usage_ns; /* CPU time used since the container started, all CPUs together */
    int64_t at_ns;     /* when: the engine's "read" time (stats, wall clock) or the caller's
                          monotonic clock (cgroup); only differences of one source matter */
};

/* Millicores used between two samples of one container (1000 = one core busy all the time),
 * or -1 when they cannot be compared: no time passed, or the counter went back (the container
 * restarted, or the id now names another one). Pure. */
int64_t autoscale_cpu_milli(const struct autoscale_cpu_sample *prev,
                            const struct autoscale_cpu_sample *cur);

/* Pure: the stats answer -> cpu_stats.cpu_usage.total_usage and read. A container that is not
 * running (the engine answers zeros and a zero time) is ORCH_E_NOTFOUND. */
int autoscale_stats_parse(const char *body, size_t len, struct autoscale_cpu_sample *out,
                          struct orch_error *err);

/* Pure: the text of a cgroup CPU counter file: cgroup v2 cpu.stat ("usage_usec N" line) when
 * v2, else v1 cpuacct.usage (one number, ns). */
int autoscale_cgroup_parse(const char *text, bool v2, uint64_t *usage_ns, struct orch_error *err);

/* GET /containers/{id}/stats?stream=false&one-shot=true; *out (caller-owned, valid until the
 * callback) is filled when cb sees ORCH_E_OK. The docker_client.h callback contract holds.
 * Idempotent: retried on 5xx. */
int autoscale_stats_fetch(struct docker_client *c, const char *id, struct autoscale_cpu_sample *out,
                          docker_done_fn cb, void *data, struct orch_error *err);

/* Where the local engine keeps container id's CPU counter under root ("/sys/fs/cgroup" when
 * NULL), trying the layouts of the cgroup v2 and v1 drivers (systemd: system.slice/docker-ID
 * .scope, cgroupfs: docker/ID) and of a hybrid host. *path_out is new; *v2_out says which file
 * format it is. ORCH_E_NOTFOUND when none exists (a remote engine, another cgroup parent, a
 * container that is not running): the caller falls back to the stats API. */
int autoscale_cgroup_find(const char *root, const char *id, char **path_out, bool *v2_out,
                          struct orch_error *err);

/* Reads the counter at path (from autoscale_cgroup_find) as of now_ns (the caller's clock).
 * ORCH_E_NOTFOUND when the file is gone (the container stopped). */
int autoscale_cgroup_read(const char *path, bool v2, int64_t now_ns,
                          struct autoscale_cpu_sample *out, struct orch_error *err);

#endif
