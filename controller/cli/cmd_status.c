/* `orch status [APP/]SERVICE`: one service's desired state, its latest rollout and the
 * instances observed on the engine with their endpoints (CONTRACT section 2's JSON). */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "cli.h"
#include "reconcile/reconcile.h"

const char cli_usage_status[] = "Usage: orch status [APP/]SERVICE [-o table|json]\n\n"
                                "Shows one service: revision, replica counts (desired, running,\n"
                                "healthy, updated), its latest rollout and every instance with\n"
                                "its published endpoints.\n\n"
                                "Options:\n"
                                "  -o, --output FORMAT   table (default) or json\n";

static void print_status_json(const struct reconcile_service_status *st,
                              const struct store_rollout *ro, bool have_ro,
                              const struct store_event *events, size_t n_events)
{
    json_t *inst = json_array();
    for (size_t i = 0; i < st->n_instances; i++) {
        const struct reconcile_instance *ri = &st->instances[i];
        json_t *eps = json_object();
        for (size_t k = 0; k < ri->n_endpoints; k++)
            json_object_set_new(eps, ri->endpoint_names[k], json_string(ri->endpoints[k]));
        json_array_append_new(inst,
                              json_pack("{s:s, s:s, s:I, s:s, s:s, s:o}", "id", ri->id, "name",
                                        ri->name, "revision", (json_int_t)ri->revision, "state",
                                        ri->state, "health", ri->health, "endpoints", eps));
    }
    json_t *root = json_pack(
        "{s:s, s:s, s:I, s:{s:i, s:i, s:i, s:i}, s:{s:s, s:I, s:s}, s:o}", "app", st->app,
        "service", st->service, "revision", (json_int_t)st->revision, "replicas", "desired",
        st->desired, "running", st->running, "healthy", st->healthy, "updated", st->updated,
        "rollout", "state", have_ro ? store_rollout_state_name(ro->state) : "none", "revision",
        (json_int_t)(have_ro ? ro->to_revision : st->revision), "message",
        have_ro && ro->message ? ro->message : "", "instances", inst);
    json_t *ev = json_array();
    for (size_t i = 0; i < n_events; i++) {
        char when[40];
        orch_format_rfc3339(events[i].time_ms, when, sizeof(when));
        json_array_append_new(ev, json_pack("{s:s, s:s, s:s}", "time", when, "kind", events[i].kind,
                                            "message", events[i].message));
    }
    json_object_set_new(root, "events", ev);
    json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("\n");
    json_decref(root);
}

static void print_status_table(const struct reconcile_service_status *st,
                               const struct store_rollout *ro, bool have_ro,
                               const struct store_event *events, size_t n_events)
{
    printf("Service:   %s/%s\n", st->app, st->service);
    printf("Revision:  %lld\n", (long long)st->revision);
    printf("Replicas:  %d desired, %d running, %d healthy, %d updated\n", st->desired, st->running,
           st->healthy, st->updated);
    if (have_ro)
        printf("Rollout:   %s (revision %lld)%s%s\n", store_rollout_state_name(ro->state),
               (long long)ro->to_revision, ro->message && *ro->message ? ": " : "",
               ro->message ? ro->message : "");
    printf("\n");
    struct cli_table t;
    static const char *const headers[] = {"NAME", "ID", "REVISION", "STATE", "HEALTH", "ENDPOINTS"};
    cli_table_init(&t, ORCH_ARRAY_LEN(headers), headers);
    for (size_t i = 0; i < st->n_instances; i++) {
        const struct reconcile_instance *ri = &st->instances[i];
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

    struct orch_error err = {0};
    struct store *s = NULL;
    struct reconciler *rec = NULL;
    _cleanup_free_ char *app = NULL;
    _cleanup_free_ char *svc = NULL;
    struct reconcile_service_status *v = NULL;
    size_t n = 0;
    int rc = cli_open_service(ctx, ref, false, &s, &app, &svc, &err);
    if (rc == 0)
        rc = cli_reconciler_open(s, 0, &rec, &err);
    if (rc == 0)
        rc = reconcile_observe(rec, app, &v, &n, &err);
    if (rc < 0) {
        reconciler_free(rec);
        if (s)
            store_close(s);
        return cli_report(&err);
    }
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].service, svc) != 0)
            continue;
        struct store_rollout ro = {0};
        bool have_ro = store_rollout_latest(s, app, svc, &ro, &err) == 0;
        struct store_event *ev = NULL;
        size_t nev = 0;
        if (store_events_list(s, app, svc, 8, &ev, &nev, &err) < 0)
            nev = 0;
        if (output == CLI_OUTPUT_JSON)
            print_status_json(&v[i], &ro, have_ro, ev, nev);
        else
            print_status_table(&v[i], &ro, have_ro, ev, nev);
        store_events_free(ev, nev);
        if (have_ro)
            store_rollout_free(&ro);
    }
    reconcile_status_free(v, n);
    reconciler_free(rec);
    store_close(s);
    return ORCH_EXIT_OK;
}
