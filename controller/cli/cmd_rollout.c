/* `orch rollout status|history|undo`: parses the subcommand, makes its one ops call (follow,
 * history, undo) and renders the rollout's end or the revision history of one service. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli.h"
#include "ops/ops_json.h"

const char cli_usage_rollout[] =
    "Usage: orch rollout status [APP/]SERVICE [--timeout DUR]\n"
    "       orch rollout history [APP/]SERVICE [-o table|json]\n"
    "       orch rollout undo [APP/]SERVICE [--to-revision N] [--wait] [--timeout DUR]\n\n"
    "status   follows the service's latest rollout to its end (with no daemon, drives it:\n"
    "         a rollout cut short by a killed command is finished or rolled back here);\n"
    "         exit code as apply\n"
    "history  lists the service's revisions, newest first: number, creation time, state\n"
    "         (active, superseded, failed), image and change message\n"
    "undo     goes back to the newest earlier revision that once ran fully, or to\n"
    "         --to-revision N (its template, today's replica count), as a health-gated\n"
    "         rolling update; with a daemon it records and returns unless --wait\n";

static int rollout_history(struct cli_ctx *ctx, int argc, char **argv)
{
    enum cli_output output;
    const char *ref = NULL;
    int prc =
        cli_parse_output_args("rollout history", cli_usage_rollout, argc, argv, 1, &output, &ref);
    if (prc != 0)
        return prc == CLI_HELP_SHOWN ? ORCH_EXIT_OK : prc;

    struct cli_notes notes = {0};
    struct ops_ctx octx;
    cli_ops_ctx(ctx, &notes, &octx);
    struct ops_history_result res;
    if (ops_rollout_history(&octx, ref, &res) != ORCH_EXIT_OK) {
        int rc = cli_report(&res.err);
        ops_history_result_free(&res);
        return rc;
    }
    if (output == CLI_OUTPUT_JSON) {
        _cleanup_free_ char *doc = ops_history_json(&res);
        printf("%s\n", doc);
    } else {
        struct cli_table t;
        static const char *const headers[] = {"REVISION", "CREATED", "STATE", "IMAGE", "MESSAGE"};
        cli_table_init(&t, ORCH_ARRAY_LEN(headers), headers);
        for (size_t i = 0; i < res.n; i++) {
            const struct ops_revision *v = &res.v[i];
            char created[40], num[32];
            orch_format_rfc3339(v->created_ms, created, sizeof(created));
            snprintf(num, sizeof(num), "%lld", (long long)v->number);
            const char *row[] = {num, created, v->state, v->image, v->message};
            cli_table_add(&t, row);
        }
        cli_table_print(&t);
        cli_table_free(&t);
    }
    ops_history_result_free(&res);
    return ORCH_EXIT_OK;
}

struct follow_args {
    const char *ref;
    int64_t timeout_ms;
    int64_t to_revision; /* undo */
    bool wait;           /* undo */
};

static int parse_follow_args(const char *verb, int argc, char **argv, bool undo,
                             struct follow_args *a)
{
    static const struct option long_opts[] = {
        {"timeout", required_argument, NULL, 't'},
        {"to-revision", required_argument, NULL, 'r'},
        {"wait", no_argument, NULL, 'w'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        switch (c) {
        case 't':
            if (spec_parse_duration(optarg, &a->timeout_ms) < 0 || a->timeout_ms <= 0)
                return cli_usage_error(verb, "--timeout: '%s' is not a duration like 90s or 5m",
                                       optarg);
            break;
        case 'r': {
            char *end = NULL;
            long long n = strtoll(optarg, &end, 10);
            if (!undo || *optarg == '\0' || *end != '\0' || n < 1)
                return cli_usage_error(verb, undo ? "--to-revision needs a revision number >= 1"
                                                  : "--to-revision is for rollout undo");
            a->to_revision = n;
            break;
        }
        case 'w':
            if (!undo)
                return cli_usage_error(verb, "--wait is for rollout undo");
            a->wait = true;
            break;
        case 'h':
            return cli_print_help(cli_usage_rollout), CLI_HELP_SHOWN;
        case ':':
            return cli_usage_error(verb, "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error(verb, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind + 1 != argc)
        return cli_usage_error(verb, "expected one [APP/]SERVICE");
    a->ref = argv[optind];
    return 0;
}

/* Renders how a followed rollout ended; returns the exit code. */
static int render_follow(const struct ops_follow_result *f)
{
    if (f->err.code != ORCH_E_OK)
        return cli_report(&f->err);
    const struct ops_rollout_end *ro = &f->rollout;
    if (ro->have)
        printf("%s/%s: rollout to revision %lld %s%s%s\n", f->app, f->service,
               (long long)ro->to_revision, ro->state, *ro->message ? ": " : "", ro->message);
    return f->exit_code;
}

static int rollout_status(struct cli_ctx *ctx, int argc, char **argv)
{
    struct follow_args a = {0};
    int rc = parse_follow_args("rollout status", argc, argv, false, &a);
    if (rc != 0)
        return rc == CLI_HELP_SHOWN ? 0 : rc;
    struct cli_notes notes = {0};
    struct ops_ctx octx;
    cli_ops_ctx(ctx, &notes, &octx);
    struct ops_follow_result res;
    ops_rollout_status(&octx, a.ref, a.timeout_ms, &res);
    rc = render_follow(&res);
    ops_follow_result_free(&res);
    return rc;
}

static void undo_recorded(void *arg)
{
    const struct ops_undo_result *u = arg;
    printf("%s/%s: rolling back from revision %lld to revision %lld (image %s)%s\n", u->follow.app,
           u->follow.service, (long long)u->from_revision, (long long)u->to_revision, u->image,
           u->target_failed_before ? " - note: that revision failed before" : "");
}

static int rollout_undo(struct cli_ctx *ctx, int argc, char **argv)
{
    struct follow_args a = {0};
    int rc = parse_follow_args("rollout undo", argc, argv, true, &a);
    if (rc != 0)
        return rc == CLI_HELP_SHOWN ? 0 : rc;
    struct ops_undo_result res;
    struct cli_notes notes = {.recorded = undo_recorded, .arg = &res};
    struct ops_ctx octx;
    cli_ops_ctx(ctx, &notes, &octx);
    struct ops_undo_req req = {
        .ref = a.ref, .to_revision = a.to_revision, .wait = a.wait, .timeout_ms = a.timeout_ms};
    ops_rollout_undo(&octx, &req, &res);
    rc = render_follow(&res.follow);
    ops_undo_result_free(&res);
    return rc;
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
    if (strcmp(argv[1], "status") == 0)
        return rollout_status(ctx, argc - 1, argv + 1);
    if (strcmp(argv[1], "undo") == 0)
        return rollout_undo(ctx, argc - 1, argv + 1);
    return cli_usage_error("rollout", "unknown subcommand '%s' (status, history or undo)", argv[1]);
}
