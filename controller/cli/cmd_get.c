/* `orch get`: every service of every app with its desired state, observed counts and rollout
 * (ops_get), as a table or JSON. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli.h"
#include "ops/ops_json.h"

const char cli_usage_get[] = "Usage: orch get [-o table|json]\n\n"
                             "Lists every service: app, name, current revision, desired replicas\n"
                             "and the state of its latest rollout.\n\n"
                             "Options:\n"
                             "  -o, --output FORMAT   table (default) or json\n";

int cli_cmd_get(struct cli_ctx *ctx, int argc, char **argv)
{
    enum cli_output output;
    int prc = cli_parse_output_args("get", cli_usage_get, argc, argv, 0, &output, NULL);
    if (prc != 0)
        return prc == CLI_HELP_SHOWN ? ORCH_EXIT_OK : prc;

    struct cli_notes notes = {0};
    struct ops_ctx octx;
    cli_ops_ctx(ctx, &notes, &octx);
    struct ops_get_result res;
    if (ops_get(&octx, &res) != ORCH_EXIT_OK) {
        int rc = cli_report(&res.err);
        ops_get_result_free(&res);
        return rc;
    }
    if (output == CLI_OUTPUT_JSON) {
        _cleanup_free_ char *doc = ops_get_json(&res);
        printf("%s\n", doc);
    } else if (res.n == 0) {
        printf("No services.\n");
    } else {
        struct cli_table t;
        static const char *const headers[] = {"APP",     "SERVICE", "REVISION",
                                              "DESIRED", "RUNNING", "HEALTHY",
                                              "UPDATED", "ROLLOUT", "AUTOSCALE"};
        cli_table_init(&t, ORCH_ARRAY_LEN(headers), headers);
        for (size_t i = 0; i < res.n; i++) {
            const struct ops_service_row *v = &res.v[i];
            char rev[32], des[32], run[32], hea[32], upd[32], as[64] = "-";
            snprintf(rev, sizeof(rev), "%lld", (long long)v->revision);
            snprintf(des, sizeof(des), "%d", v->desired);
            snprintf(run, sizeof(run), "%d", v->running);
            snprintf(hea, sizeof(hea), "%d", v->healthy);
            snprintf(upd, sizeof(upd), "%d", v->updated);
            /* current/desired (min..max), as kubectl get hpa shows them */
            if (v->autoscale.enabled)
                snprintf(as, sizeof(as), "%d/%d (%d..%d)", v->autoscale.current,
                         v->autoscale.desired, v->autoscale.min, v->autoscale.max);
            const char *row[] = {v->app, v->service, rev, des, run, hea, upd, v->rollout_state, as};
            cli_table_add(&t, row);
        }
        cli_table_print(&t);
        cli_table_free(&t);
    }
    ops_get_result_free(&res);
    return ORCH_EXIT_OK;
}
