/* Health verdicts: how a run of probe results becomes an instance's health status
 * (docs/contract.md section 1, `health:`), following Docker's HEALTHCHECK rules. Pure: no I/O, no
 * clock, no globals; every time is an argument, in whatever clock the caller uses for started_ms.
 */
#ifndef ORCH_HEALTH_VERDICT_H
#define ORCH_HEALTH_VERDICT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spec/spec.h"

/* The values `orch status -o json` shows as "health". */
enum health_status {
    HEALTH_NONE,      /* no probe configured, or not watched */
    HEALTH_STARTING,  /* no success yet and fewer than `retries` counted failures */
    HEALTH_HEALTHY,   /* the last result was a success, or failures since are < retries */
    HEALTH_UNHEALTHY, /* `retries` consecutive counted failures */
};

/* "none" | "starting" | "healthy" | "unhealthy" (static). */
const char *health_status_name(enum health_status s);

/* One instance's verdict state. Caller-owned, plain data: copy it freely. */
struct health_state {
    enum health_status status;
    int failures;          /* consecutive counted failures (start-period ones excluded) */
    int successes;         /* consecutive successes */
    int64_t started_ms;    /* when the instance started: the start period runs from here */
    int64_t changed_ms;    /* when status last changed (started_ms at first); for min_ready */
    int64_t last_probe_ms; /* when the last result was observed; -1 before the first */
    bool last_success;     /* that result; false before the first */
};

/* Resets *st for an instance started at started_ms: HEALTH_STARTING, or HEALTH_NONE when cfg
 * has no probe (cfg NULL or kind SPEC_PROBE_NONE). */
void health_state_init(struct health_state *st, const struct spec_health *cfg, int64_t started_ms);

/* Applies one probe result observed at now_ms and returns the new status:
 *   - a success resets the failure streak; from starting or unhealthy it makes the instance
 *     healthy (Docker: a container recovers without a restart);
 *   - a failure while still starting and less than start_period after started_ms does not
 *     count (Docker's rule: once a probe has succeeded, the start period no longer applies);
 *   - while starting with a start_interval shorter than the interval, the k-th counted failure
 *     needs k intervals since the start (probes come every start_interval then, but an
 *     instance is never found unhealthy sooner for it);
 *   - `retries` consecutive counted failures make it unhealthy (retries below 1 act as 1).
 * Without a probe configured the state stays HEALTH_NONE. */
enum health_status health_observe(const struct spec_health *cfg, struct health_state *st,
                                  bool success, int64_t now_ms);

/* When the next probe is due: at the start itself before the first result (a new instance is
 * probed at once: the first success is what a rollout or an apply waits for), then one period
 * (health_period_ms) after the last result; never before now_ms. INT64_MAX when there is no
 * probe. */
int64_t health_next_due_ms(const struct spec_health *cfg, const struct health_state *st,
                           int64_t now_ms);

/* The probe period: start_interval while the instance is starting (no verdict yet), capped at
 * interval; interval once it has one. */
int64_t health_period_ms(const struct spec_health *cfg, const struct health_state *st);

/* Parses the status line at the start of an HTTP/1.x response in buf[0..len). Returns 1 and
 * sets *status when the line is complete and well formed, 0 when more bytes are needed,
 * -1 when it is not an HTTP/1.x status line. Only "HTTP/1.0" or "HTTP/1.1", one space and
 * three digits (100..599) followed by a space or the line end are accepted. */
int health_http_parse_status(const char *buf, size_t len, int *status);

/* 2xx and 3xx are healthy (docs/contract.md section 1). */
bool health_http_status_healthy(int status);

#endif
