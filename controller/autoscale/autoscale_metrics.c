/* CPU counters of containers (see autoscale_metrics.h): the stats answer and cgroup file
 * parsers (pure), the stats request through the docker client, and the cgroup file reads. It
 * decides nothing (autoscale.c does) and changes nothing on the engine. */
#define _GNU_SOURCE
#include "autoscale_metrics.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <stdio.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "../base/util.h"

int64_t autoscale_cpu_milli(const struct autoscale_cpu_sample *prev,
                            const struct autoscale_cpu_sample *cur)
{
    if (cur->at_ns <= prev->at_ns || cur->usage_ns < prev->usage_ns)
        return -1;
    uint64_t used = cur->usage_ns - prev->usage_ns;
    uint64_t span = (uint64_t)(cur->at_ns - prev->at_ns);
    if (used > UINT64_MAX / 1000)
        return -1; /* a counter that jumped by centuries: not a measure */
    return (int64_t)(used * 1000 / span);
}

/* RFC 3339 with nanoseconds, as Go writes it: 2026-12-03T12:40:57.123456789Z or ...+01:00.
 * Returns ns since the epoch, or -1 (also for Go's zero time, year 1). */
static int64_t parse_rfc3339_ns(const char *s)
{
    struct tm tm = {0};
    int n = 0;
    if (sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday, &tm.tm_hour,
               &tm.tm_min, &tm.tm_sec, &n) != 6 ||
        n == 0)
        return -1;
    const char *p = s + n;
    int64_t frac = 0, scale = 1000000000;
    if (*p == '.') {
        p++;
        while (*p >= '0' && *p <= '9') {
            if (scale > 1) {
                scale /= 10;
                frac += (*p - '0') * scale;
            }
            p++;
        }
    }
    int64_t offset_s = 0;
    if (*p == '+' || *p == '-') {
        int hh, mm;
        if (sscanf(p + 1, "%2d:%2d", &hh, &mm) != 2)
            return -1;
        offset_s = (int64_t)(hh * 3600 + mm * 60) * (*p == '-' ? -1 : 1);
    } else if (*p != 'Z') {
        return -1;
    }
    if (tm.tm_year < 1970)
        return -1;
    tm.tm_year -= 1900;
    tm.tm_mon -= 1;
    time_t t = timegm(&tm);
    if (t == (time_t)-1)
        return -1;
    /* nanoseconds in an int64_t end in 2262: a later (or negative) time is not a sample time */
    int64_t secs = (int64_t)t - offset_s;
    if (secs < 0 || secs > INT64_MAX / 1000000000 - 1)
        return -1;
    return secs * 1000000000 + frac;
}

int autoscale_stats_parse(const char *body, size_t len, struct autoscale_cpu_sample *out,
                          struct orch_error *err)
{
    json_error_t jerr;
    json_t *root = json_loadb(body, len, 0, &jerr);
    int rc = 0;

    if (root == NULL)
        return orch_fail(err, ORCH_E_DOCKER, 0, "stats: invalid JSON: %s", jerr.text);
    json_t *cpu = json_object_get(json_object_get(root, "cpu_stats"), "cpu_usage");
    json_t *usage = json_object_get(cpu, "total_usage");
    json_t *read = json_object_get(root, "read");
    if (!json_is_integer(usage) || !json_is_string(read)) {
        rc = orch_fail(err, ORCH_E_DOCKER, 0,
                       "stats: no cpu_stats.cpu_usage.total_usage or read in the answer");
        goto out;
    }
    int64_t at = parse_rfc3339_ns(json_string_value(read));
    if (at < 0) {
        rc = orch_fail(err, ORCH_E_NOTFOUND, 0, "stats: the container is not running");
        goto out;
    }
    out->usage_ns = (uint64_t)json_integer_value(usage);
    out->at_ns = at;
out:
    json_decref(root);
    return rc;
}

int autoscale_cgroup_parse(const char *text, bool v2, uint64_t *usage_ns, struct orch_error *err)
{
    unsigned long long v;
    if (!v2) {
        char *end;
        errno = 0;
        v = strtoull(text, &end, 10);
        if (errno != 0 || end == text || (*end != '\n' && *end != '\0'))
            return orch_fail(err, ORCH_E_IO, 0, "cpuacct.usage: not a number");
        *usage_ns = v;
        return 0;
    }
    for (const char *line = text; line != NULL && *line != '\0';) {
        if (sscanf(line, "usage_usec %llu", &v) == 1) {
            *usage_ns = v * 1000;
            return 0;
        }
        line = strchr(line, '\n');
        if (line != NULL)
            line++;
    }
    return orch_fail(err, ORCH_E_IO, 0, "cpu.stat: no usage_usec line");
}

/* ---- the stats request -------------------------------------------------------------------- */

struct stats_req {
    struct autoscale_cpu_sample *out;
    docker_done_fn cb;
    void *data;
};

static void on_stats(void *data, const struct docker_response *res, const struct orch_error *err)
{
    struct stats_req *r = data;
    struct orch_error perr = *err;

    if (err->code == ORCH_E_OK)
        autoscale_stats_parse(res->body, res->body_len, r->out, &perr);
    r->cb(r->data, res->status, &perr);
    free(r);
}

int autoscale_stats_fetch(struct docker_client *c, const char *id, struct autoscale_cpu_sample *out,
                          docker_done_fn cb, void *data, struct orch_error *err)
{
    char path[256], what[96];

    if (*id == '\0' || strlen(id) > 128 || strspn(id, "0123456789abcdefABCDEF") != strlen(id))
        return orch_fail(err, ORCH_E_INVALID, 0, "stats: '%s' is not a container id", id);
    snprintf(path, sizeof(path), "/containers/%s/stats?stream=false&one-shot=true", id);
    snprintf(what, sizeof(what), "stats of container %.12s", id);
    struct stats_req *r = orch_xmalloc(sizeof(*r));
    *r = (struct stats_req){.out = out, .cb = cb, .data = data};
    const struct docker_request_opts req = {
        .method = "GET", .path = path, .what = what, .idempotent = true};
    int rc = docker_request(c, &req, on_stats, r, err);
    if (rc < 0)
        free(r);
    return rc;
}

/* ---- the cgroup files --------------------------------------------------------------------- */

int autoscale_cgroup_find(const char *root, const char *id, char **path_out, bool *v2_out,
                          struct orch_error *err)
{
    /* v2 first (its cpu.stat is the whole truth there); on a v1 or hybrid host the cpu
     * controller lives in the v1 tree, so cpuacct comes before the hybrid unified tree. */
    static const struct {
        const char *before, *after; /* around the id, under root */
        bool v2;
    } layouts[] = {
        {"system.slice/docker-", ".scope/cpu.stat", true},
        {"docker/", "/cpu.stat", true},
        {"cpu,cpuacct/docker/", "/cpuacct.usage", false},
        {"cpuacct/docker/", "/cpuacct.usage", false},
        {"cpu,cpuacct/system.slice/docker-", ".scope/cpuacct.usage", false},
        {"cpuacct/system.slice/docker-", ".scope/cpuacct.usage", false},
        {"unified/system.slice/docker-", ".scope/cpu.stat", true},
        {"unified/docker/", "/cpu.stat", true},
    };
    if (root == NULL)
        root = "/sys/fs/cgroup";
    if (*id == '\0' || strchr(id, '/') != NULL || strcmp(id, "..") == 0)
        return orch_fail(err, ORCH_E_INVALID, 0, "cgroup: '%s' is not a container id", id);
    for (size_t k = 0; k < ORCH_ARRAY_LEN(layouts); k++) {
        char *p = orch_xasprintf("%s/%s%s%s", root, layouts[k].before, id, layouts[k].after);
        if (access(p, R_OK) == 0) {
            *path_out = p;
            *v2_out = layouts[k].v2;
            return 0;
        }
        free(p);
    }
    return orch_fail(err, ORCH_E_NOTFOUND, 0, "no cgroup CPU counter for container %.12s under %s",
                     id, root);
}

int autoscale_cgroup_read(const char *path, bool v2, int64_t now_ns,
                          struct autoscale_cpu_sample *out, struct orch_error *err)
{
    char buf[4096];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return orch_fail(err, errno == ENOENT ? ORCH_E_NOTFOUND : ORCH_E_IO, errno, "open %s",
                         path);
    ssize_t n;
    do
        n = read(fd, buf, sizeof(buf) - 1);
    while (n < 0 && errno == EINTR);
    int saved = errno;
    close(fd);
    if (n < 0)
        return orch_fail(err, saved == ENODEV ? ORCH_E_NOTFOUND : ORCH_E_IO, saved, "read %s",
                         path);
    buf[n] = '\0';
    uint64_t usage;
    if (autoscale_cgroup_parse(buf, v2, &usage, err) < 0)
        return orch_wrap(err, "%s", path);
    out->usage_ns = usage;
    out->at_ns = now_ns;
    return 0;
}
