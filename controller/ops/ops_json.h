/* The JSON documents of the reads and of apply, shared by the CLI's `-o json` and the HTTP API
 * so both say the same thing: each returns a new NUL-terminated string (2-space indent, keys in
 * a fixed order, no trailing newline) made from a result filled by ops. Pure: no I/O. */
#ifndef ORCH_OPS_OPS_JSON_H
#define ORCH_OPS_OPS_JSON_H

#include "ops/ops.h"

/* `get -o json`: {"services": [{"app", "service", "revision", "replicas", "rollout"}, ...]}. New.
 */
char *ops_get_json(const struct ops_get_result *r);
/* `status -o json`: the service, its rollout, instances and events. New. */
char *ops_status_json(const struct ops_status_result *r);
/* `rollout history -o json`: {"app", "service", "revisions": [...]}, newest first. New. */
char *ops_history_json(const struct ops_history_result *r);
/* `apply -o json`: the app, outcome ("error" when converging could not run), exit code and the
 * change of each service. New. */
char *ops_apply_json(const struct ops_apply_result *r);

#endif
