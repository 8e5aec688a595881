/* `orch rollout status|history|undo`: the rollout records and the revision history of one
 * service. history reads the store only. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli.h"

const char cli_usage_rollout[] =
    "Usage: orch rollout status [APP/]SERVICE [--timeout DUR]\n"
    "       orch rollout history [APP/]SERVICE [-o table|json]\n"
    "       orch rollout undo [APP/]SERVICE [--to-revision N] [--wait] [--timeout DUR]\n\n"
    "status   follows the service's latest rollout to its end; exit code as apply\n"
    "history  lists the service's revisions, newest first: number, creation time, state\n"
    "         (active, superseded, failed), image and change message\n"
    "undo     rolls back to the previous good revision, or to --to-revision N\n";

static int rollout_history(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    enum cli_output output = CLI_OUTPUT_TABLE;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (cli_parse_output("rollout history", optarg, &output) < 0)
                return ORCH_EXIT_INVALID;
            break;
        case 'h':
            return cli_print_help(cli_usage_rollout);
        case ':':
            return cli_usage_error("rollout history", "option '%s' needs a value",
                                   argv[optind - 1]);
        default:
            return cli_usage_error("rollout history", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error("rollout history", "expected one [APP/]SERVICE");

    struct orch_error err = {0};
    struct store *s = NULL;
    if (cli_store_open_read(ctx, &s, &err) < 0)
        return cli_report(&err);
    _cleanup_free_ char *app = NULL;
    _cleanup_free_ char *svc = NULL;
    if (cli_service_resolve(s, argv[optind], &app, &svc, &err) < 0) {
        if (s)
            store_close(s);
        return cli_report(&err);
    }
    struct store_revision *v = NULL;
    size_t n = 0;
    if (store_revisions_list(s, app, svc, &v, &n, &err) < 0) {
        store_close(s);
        return cli_report(&err);
    }
    json_t *list = json_array();
    struct cli_table t;
    static const char *const headers[] = {"REVISION", "CREATED", "STATE", "IMAGE", "MESSAGE"};
    cli_table_init(&t, ORCH_ARRAY_LEN(headers), headers);
    for (size_t i = 0; i < n; i++) {
        char created[40], num[32];
        orch_format_rfc3339(v[i].created_ms, created, sizeof(created));
        snprintf(num, sizeof(num), "%lld", (long long)v[i].number);
        const char *state = store_revision_state_name(v[i].state);
        json_array_append_new(list, json_pack("{s:I, s:s, s:s, s:s, s:s, s:s}", "revision",
                                              (json_int_t)v[i].number, "image", v[i].image,
                                              "created", created, "state", state, "message",
                                              v[i].message, "hash", v[i].hash));
        const char *row[] = {num, created, state, v[i].image, v[i].message};
        cli_table_add(&t, row);
    }
    if (output == CLI_OUTPUT_JSON) {
        json_t *root = json_pack("{s:s, s:s, s:o}", "app", app, "service", svc, "revisions", list);
        json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
        printf("\n");
        json_decref(root);
    } else {
        json_decref(list);
        cli_table_print(&t);
    }
    cli_table_free(&t);
    store_revisions_free(v, n);
    store_close(s);
    return ORCH_EXIT_OK;
}

int cli_cmd_rollout(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc < 2 || strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0) {
        if (argc < 2)
            return cli_usage_error("rollout", "expected status, history or undo");
        return cli_print_help(cli_usage_rollout);
    }
    if (strcmp(argv[1], "history") == 0)
        return rollout_history(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "status") == 0 || strcmp(argv[1], "undo") == 0) {
        fprintf(stderr, "orch rollout %s: not yet implemented\n", argv[1]);
        return ORCH_EXIT_INVALID;
    }
    return cli_usage_error("rollout", "unknown subcommand '%s' (status, history or undo)", argv[1]);
}
