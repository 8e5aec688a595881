/* `orch status [APP/]SERVICE`: one service's desired state, its latest rollout and the
 * instances observed on the engine with their endpoints (ops_status), as text or JSON. */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "cli.h"
#include "ops/ops_json.h"

const char cli_usage_status[] = "Usage: orch status [APP/]SERVICE [-o table|json]\n\n"
                                "Shows one service: revision, replica counts (desired, running,\n"
                                "healthy, updated), its latest rollout and every instance with\n"
                                "its published endpoints.\n\n"
                                "Options:\n"
                                "  -o, --output FORMAT   table (default) or json\n";

static void print_status_table(const struct ops_status_result *st)
{
    const struct ops_rollout_end *ro = &st->rollout;
    const struct ops_event *events = st->events;
    size_t n_events = st->n_events;
    printf("Service:   %s/%s\n", st->app, st->service);
    printf("Revision:  %lld\n", (long long)st->revision);
    printf("Replicas:  %d desired, %d running, %d healthy, %d updated\n", st->desired, st->running,
           st->healthy, st->updated);
    if (ro->have)
        printf("Rollout:   %s (revision %lld)%s%s\n", ro->state, (long long)ro->to_revision,
               ro->message && *ro->message ? ": " : "", ro->message ? ro->message : "");
    const struct ops_autoscale_view *as = &st->autoscale;
    if (as->enabled) {
        printf("Autoscale: %d..%d", as->min, as->max);
        if (as->cpu > 0)
            printf(", cpu %d%%", as->cpu);
        if (as->requests > 0)
            printf(", requests %d/s", as->requests);
        printf(", scale down after %llds; %d current, %d desired%s\n",
               (long long)(as->scale_down_delay_ms / 1000), as->current, as->desired,
               as->desired == 0 ? " (off: scaled to 0 by hand)" : "");
        if (as->have_decision) {
            char when[40];
            orch_format_rfc3339(as->decided_ms, when, sizeof(when));
            printf("Decision:  %s %s\n", when, as->reason ? as->reason : "");
        }
    }
    for (size_t i = 0; i < st->n_traffic; i++) {
        const struct ops_traffic *tr = &st->traffic[i];
        if (!tr->served) {
            printf("Published: %s (%s, %s): not served: %s\n", tr->published, tr->port, tr->balance,
                   tr->error);
            continue;
        }
        printf("Published: %s (%s, %s): %llu connections (%llu active, %llu rejected), "
               "%.1f requests/s, %llu bytes in, %llu bytes out\n",
               tr->published, tr->port, tr->balance, (unsigned long long)tr->connections,
               (unsigned long long)tr->active, (unsigned long long)tr->rejected,
               tr->requests_per_second, (unsigned long long)tr->bytes_in,
               (unsigned long long)tr->bytes_out);
    }
    printf("\n");
    struct cli_table t;
    static const char *const headers[] = {"NAME", "ID", "REVISION", "STATE", "HEALTH", "ENDPOINTS"};
    cli_table_init(&t, ORCH_ARRAY_LEN(headers), headers);
    for (size_t i = 0; i < st->n_instances; i++) {
        const struct ops_instance *ri = &st->instances[i];
        struct orch_buf eps = {0};
        for (size_t k = 0; k < ri->n_endpoints; k++)
            orch_buf_printf(&eps, "%s%s=%s", k ? "," : "", ri->endpoint_names[k], ri->endpoints[k]);
        char rev[32], id[16];
        snprintf(rev, sizeof(rev), "%lld", (long long)ri->revision);
        snprintf(id, sizeof(id), "%.12s", ri->id);
        const char *row[] = {ri->name, id, rev, ri->state, ri->health, eps.data ? eps.data : ""};
        cli_table_add(&t, row);
        orch_buf_free(&eps);
    }
    if (st->n_instances == 0)
        printf("No instances.\n");
    else
        cli_table_print(&t);
    cli_table_free(&t);
    if (n_events > 0) {
        printf("\nEvents:\n");
        for (size_t i = 0; i < n_events; i++) {
            char when[40];
            orch_format_rfc3339(events[i].time_ms, when, sizeof(when));
            printf("  %s  %-14s %s\n", when, events[i].kind, events[i].message);
        }
    }
}

int cli_cmd_status(struct cli_ctx *ctx, int argc, char **argv)
{
    enum cli_output output;
    const char *ref = NULL;
    int prc = cli_parse_output_args("status", cli_usage_status, argc, argv, 1, &output, &ref);
    if (prc != 0)
        return prc == CLI_HELP_SHOWN ? ORCH_EXIT_OK : prc;

    struct cli_notes notes = {0};
    struct ops_ctx octx;
    cli_ops_ctx(ctx, &notes, &octx);
    struct ops_status_result res;
    int rc = ops_status(&octx, ref, &res);
    if (rc != ORCH_EXIT_OK) {
        rc = cli_report(&res.err);
    } else if (res.found && output == CLI_OUTPUT_JSON) {
        _cleanup_free_ char *doc = ops_status_json(&res);
        printf("%s\n", doc);
    } else if (res.found) {
        print_status_table(&res);
    }
    ops_status_result_free(&res);
    return rc;
}
