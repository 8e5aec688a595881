/* Health verdicts: turns probe results into starting/healthy/unhealthy with Docker's rules, and
 * parses an HTTP status line for the http probe. Pure: no I/O, no clock, no allocation; the
 * probe runners (health_probe.c) feed it results and times. */
#include "health/health_verdict.h"

#include <string.h>

const char *health_status_name(enum health_status s)
{
    switch (s) {
    case HEALTH_NONE:
        return "none";
    case HEALTH_STARTING:
        return "starting";
    case HEALTH_HEALTHY:
        return "healthy";
    case HEALTH_UNHEALTHY:
        return "unhealthy";
    }
    return "none";
}

static bool has_probe(const struct spec_health *cfg)
{
    return cfg != NULL && cfg->kind != SPEC_PROBE_NONE;
}

void health_state_init(struct health_state *st, const struct spec_health *cfg, int64_t started_ms)
{
    *st = (struct health_state){
        .status = has_probe(cfg) ? HEALTH_STARTING : HEALTH_NONE,
        .started_ms = started_ms,
        .changed_ms = started_ms,
        .last_probe_ms = -1,
    };
}

/* The only place a status is assigned, so changed_ms always follows it. */
static void set_status(struct health_state *st, enum health_status s, int64_t now_ms)
{
    if (st->status != s)
        st->changed_ms = now_ms;
    st->status = s;
}

enum health_status health_observe(const struct spec_health *cfg, struct health_state *st,
                                  bool success, int64_t now_ms)
{
    if (!has_probe(cfg))
        return st->status;
    st->last_probe_ms = now_ms;
    st->last_success = success;
    if (success) {
        st->failures = 0;
        if (st->successes < INT32_MAX)
            st->successes++;
        set_status(st, HEALTH_HEALTHY, now_ms);
        return st->status;
    }
    st->successes = 0;
    /* Docker's rule: the start period only shields an instance that has never succeeded, and
     * the window is half-open: a failure exactly start_period after the start counts. */
    if (st->status == HEALTH_STARTING && now_ms - st->started_ms < cfg->start_period_ms)
        return st->status;
    /* Until the first verdict a new instance is probed every start_interval, more often than
     * every interval; its failures count no faster than probes at the interval would have
     * counted them (the k-th at k intervals after the start), so brisk probing finds it healthy
     * sooner but never unhealthy sooner. */
    int64_t interval = cfg->interval_ms > 0 ? cfg->interval_ms : 1;
    bool brisk = cfg->start_interval_ms > 0 && cfg->start_interval_ms < interval;
    if (brisk && st->status == HEALTH_STARTING &&
        now_ms - st->started_ms < (int64_t)(st->failures + 1) * interval)
        return st->status;
    if (st->failures < INT32_MAX)
        st->failures++;
    int retries = cfg->retries < 1 ? 1 : cfg->retries;
    if (st->failures >= retries)
        set_status(st, HEALTH_UNHEALTHY, now_ms);
    return st->status;
}

int64_t health_next_due_ms(const struct spec_health *cfg, const struct health_state *st,
                           int64_t now_ms)
{
    if (!has_probe(cfg))
        return INT64_MAX;
    if (st->last_probe_ms < 0)
        return st->started_ms < now_ms ? now_ms : st->started_ms;
    int64_t interval = health_period_ms(cfg, st);
    int64_t base = st->last_probe_ms;
    int64_t due = base > INT64_MAX - interval ? INT64_MAX : base + interval;
    return due < now_ms ? now_ms : due;
}

int64_t health_period_ms(const struct spec_health *cfg, const struct health_state *st)
{
    int64_t interval = cfg != NULL && cfg->interval_ms > 0 ? cfg->interval_ms : 1;
    if (cfg == NULL || st->status != HEALTH_STARTING || cfg->start_interval_ms <= 0)
        return interval;
    return cfg->start_interval_ms < interval ? cfg->start_interval_ms : interval;
}

int health_http_parse_status(const char *buf, size_t len, int *status)
{
    static const char prefix[] = "HTTP/1.";
    const size_t plen = sizeof(prefix) - 1;
    const char *nl = memchr(buf, '\n', len);
    size_t line = nl != NULL ? (size_t)(nl - buf) : len;

    /* Refuse a wrong prefix as soon as it shows, so a non-HTTP peer fails fast. */
    if (memcmp(buf, prefix, line < plen ? line : plen) != 0)
        return -1;
    if (nl == NULL)
        return 0;
    if (line > 0 && buf[line - 1] == '\r')
        line--;
    /* "HTTP/1.x SSS" is 12 bytes; after it the line ends or a reason phrase follows a space. */
    if (line < 12 || (buf[7] != '0' && buf[7] != '1') || buf[8] != ' ')
        return -1;
    int code = 0;
    for (size_t i = 9; i < 12; i++) {
        if (buf[i] < '0' || buf[i] > '9')
            return -1;
        code = code * 10 + (buf[i] - '0');
    }
    if (line > 12 && buf[12] != ' ')
        return -1;
    if (code < 100 || code > 599)
        return -1;
    *status = code;
    return 1;
}

bool health_http_status_healthy(int status)
{
    return status >= 200 && status < 400;
}
