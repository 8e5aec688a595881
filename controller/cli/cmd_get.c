/* `orch get`: every service of every app with its desired state and rollout. Reads the store
 * only (read-only connection), so it never blocks a writer. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli.h"
#include "reconcile/reconcile.h"

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

    struct orch_error err = {0};
    struct store *s = NULL;
    if (cli_store_open_read(ctx, &s, &err) < 0)
        return cli_report(&err);
    struct store_service *v = NULL;
    size_t n = 0;
    if (s != NULL && store_services_list(s, NULL, &v, &n, &err) < 0) {
        store_close(s);
        return cli_report(&err);
    }

    /* Observed counts come from the engine; with nothing in the store it is not asked. */
    struct reconciler *rec = NULL;
    struct reconcile_service_status *obs = NULL;
    size_t nobs = 0;
    if (n > 0 && !cli_no_converge()) {
        int rc = cli_reconciler_open(s, 0, &rec, &err);
        if (rc == 0)
            rc = reconcile_observe(rec, NULL, &obs, &nobs, &err);
        if (rc < 0) {
            reconciler_free(rec);
            store_services_free(v, n);
            store_close(s);
            return cli_report(&err);
        }
    }

    json_t *list = json_array();
    struct cli_table t;
    static const char *const headers[] = {"APP",     "SERVICE", "REVISION", "DESIRED",
                                          "RUNNING", "HEALTHY", "UPDATED",  "ROLLOUT"};
    cli_table_init(&t, ORCH_ARRAY_LEN(headers), headers);
    for (size_t i = 0; i < n; i++) {
        struct store_rollout ro = {0};
        const char *state = "none";
        if (store_rollout_latest(s, v[i].app, v[i].name, &ro, &err) == 0)
            state = store_rollout_state_name(ro.state);
        const struct reconcile_service_status *o = NULL;
        for (size_t j = 0; j < nobs; j++)
            if (strcmp(obs[j].app, v[i].app) == 0 && strcmp(obs[j].service, v[i].name) == 0)
                o = &obs[j];
        int running = o ? o->running : 0, healthy = o ? o->healthy : 0,
            updated = o ? o->updated : 0;
        json_t *jo = json_pack("{s:s, s:s, s:I, s:{s:i, s:i, s:i, s:i}, s:{s:s}}", "app", v[i].app,
                               "service", v[i].name, "revision", (json_int_t)v[i].revision,
                               "replicas", "desired", v[i].replicas, "running", running, "healthy",
                               healthy, "updated", updated, "rollout", "state", state);
        json_array_append_new(list, jo);
        char rev[32], des[32], run[32], hea[32], upd[32];
        snprintf(rev, sizeof(rev), "%lld", (long long)v[i].revision);
        snprintf(des, sizeof(des), "%d", v[i].replicas);
        snprintf(run, sizeof(run), "%d", running);
        snprintf(hea, sizeof(hea), "%d", healthy);
        snprintf(upd, sizeof(upd), "%d", updated);
        const char *row[] = {v[i].app, v[i].name, rev, des, run, hea, upd, state};
        cli_table_add(&t, row);
        store_rollout_free(&ro);
    }
    if (output == CLI_OUTPUT_JSON) {
        json_t *root = json_pack("{s:o}", "services", list);
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("\n");
        json_decref(root);
    } else {
        json_decref(list);
        if (n == 0)
            printf("No services.\n");
        else
            cli_table_print(&t);
    }
    cli_table_free(&t);
    reconcile_status_free(obs, nobs);
    reconciler_free(rec);
    store_services_free(v, n);
    if (s)
        store_close(s);
    return ORCH_EXIT_OK;
}
