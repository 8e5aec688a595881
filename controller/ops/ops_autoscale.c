/* The autoscaler's writes: the daemon's decisions recorded on its open store, the same way
 * `orch scale` records a count (the service's replicas, no revision) but marked as the
 * autoscaler's, and the decisions that keep the count as events of their own. Nothing here
 * converges: the daemon that calls it does. */
#include <string.h>

#include "ops_internal.h"

int ops_autoscale_set(struct store *s, const char *app, const char *svc, int from, int to,
                      const char *reason, int64_t now_ms, struct orch_error *err)
{
    int rc = store_begin(s, err);
    if (rc < 0)
        return rc;
    struct store_service row;
    rc = store_service_get(s, app, svc, &row, err);
    if (rc < 0) {
        store_rollback(s);
        return rc;
    }
    if (row.replicas != from)
        /* Changed meanwhile (orch scale, an apply): that count wins, the next sync decides
         * again from it. */
        rc = orch_fail(err, ORCH_E_TRANSIENT, 0,
                       "%s/%s: the count changed from %d to %d meanwhile; not scaled to %d", app,
                       svc, from, row.replicas, to);
    if (rc == 0) {
        row.replicas = to;
        row.updated_ms = now_ms;
        rc = store_service_put(s, &row, err);
    }
    store_service_free(&row);
    if (rc == 0) {
        _cleanup_free_ char *msg =
            orch_xasprintf("scaled from %d to %d by the autoscaler: %s", from, to, reason);
        rc = store_event_add(s, app, svc, OPS_AUTOSCALE_SCALED, msg, now_ms, err);
    }
    if (rc == 0)
        return store_commit(s, err);
    store_rollback(s);
    return rc;
}

int ops_autoscale_note(struct store *s, const char *app, const char *svc, const char *reason,
                       int64_t now_ms, struct orch_error *err)
{
    return store_event_add(s, app, svc, OPS_AUTOSCALE_KEPT, reason, now_ms, err);
}
