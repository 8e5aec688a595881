/* Reads the tail of the event log for GET /v1/events and renders it as SSE frames. It only
 * reads the store (a short SQLite read under WAL); it never writes. */
#include "events.h"

#include <jansson.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/util.h"
#include "store/store.h"

static void rfc3339(int64_t ms, char *out, size_t n)
{
    time_t s = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&s, &tm);
    strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static int read_tail(const char *state_dir, struct store_event **v, size_t *n,
                     struct orch_error *err)
{
    *v = NULL;
    *n = 0;
    struct store *s = NULL;
    if (store_open_readonly(state_dir, &s, err) < 0) {
        if (err->code == ORCH_E_NOTFOUND) {
            orch_error_clear(err);
            return 0;
        }
        return -err->code;
    }
    int rc = store_events_list(s, NULL, NULL, API_EVENTS_BATCH, v, n, err);
    store_close(s);
    return rc;
}

int api_events_last_id(const char *state_dir, int64_t *out, struct orch_error *err)
{
    struct store_event *v;
    size_t n;
    *out = 0;
    if (read_tail(state_dir, &v, &n, err) < 0)
        return -err->code;
    if (n > 0)
        *out = v[n - 1].id;
    store_events_free(v, n);
    return 0;
}

int api_events_sse_chunk(const char *state_dir, int64_t after_id,
                         bool (*admits)(void *arg, const char *app), void *arg, char **chunk,
                         int64_t *last_id, struct orch_error *err)
{
    *chunk = NULL;
    struct store_event *v;
    size_t n;
    if (read_tail(state_dir, &v, &n, err) < 0)
        return -err->code;
    struct orch_buf b = {0};
    for (size_t i = 0; i < n; i++) {
        if (v[i].id <= after_id)
            continue;
        *last_id = v[i].id;
        if (admits != NULL && !admits(arg, v[i].app))
            continue;
        char t[32];
        rfc3339(v[i].time_ms, t, sizeof(t));
        json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "id", (json_int_t)v[i].id, "time",
                              t, "app", v[i].app, "service", v[i].service, "kind", v[i].kind,
                              "message", v[i].message ? v[i].message : "");
        char *data = o ? json_dumps(o, JSON_COMPACT | JSON_PRESERVE_ORDER) : NULL;
        json_decref(o);
        if (data == NULL)
            continue;
        orch_buf_printf(&b, "id: %lld\nevent: %s\ndata: %s\n\n", (long long)v[i].id, v[i].kind,
                        data);
        free(data);
    }
    store_events_free(v, n);
    if (b.len > 0)
        *chunk = orch_buf_steal(&b);
    orch_buf_free(&b);
    return 0;
}
