/* The event log as Server-Sent Events: the tail of the store's append-only log after a given
 * id, rendered as SSE frames (id, event, data: one JSON object). Reads only. */
#ifndef ORCH_API_EVENTS_H
#define ORCH_API_EVENTS_H

#include <stdbool.h>
#include <stdint.h>

#include "base/error.h"

/* Events read per poll at most; a subscriber that falls further behind skips the oldest. */
#define API_EVENTS_BATCH 512

/* *chunk (new, or NULL when nothing is new): the frames of the events with an id above
 * after_id whose app admits(arg, app) accepts, oldest first; *last_id the newest id seen. A
 * state dir without a database yet has no events. */
int api_events_sse_chunk(const char *state_dir, int64_t after_id,
                         bool (*admits)(void *arg, const char *app), void *arg, char **chunk,
                         int64_t *last_id, struct orch_error *err);
/* The newest event's id (0 when none). */
int api_events_last_id(const char *state_dir, int64_t *out, struct orch_error *err);

#endif
