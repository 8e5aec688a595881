/* `orch rollout status|history|undo`: the rollout records and the revision history of one
 * service. history reads the store only. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli.h"
#include "reconcile/reconcile.h"

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

    struct orch_error err = {0};
    struct store *s = NULL;
    _cleanup_free_ char *app = NULL;
    _cleanup_free_ char *svc = NULL;
    if (cli_open_service(ctx, ref, false, &s, &app, &svc, &err) < 0)
        return cli_report(&err);
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

/* The exit code a finished rollout stands for (CONTRACT: as apply). */
static int rollout_exit(const struct store_rollout *ro)
{
    switch (ro->state) {
    case STORE_ROLLOUT_COMPLETE:
        return ORCH_EXIT_OK;
    case STORE_ROLLOUT_ROLLED_BACK:
        return ORCH_EXIT_ROLLED_BACK;
    case STORE_ROLLOUT_FAILED:
        return ORCH_EXIT_FAILED;
    case STORE_ROLLOUT_PROGRESSING:
        break;
    }
    return ORCH_EXIT_TIMEOUT;
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

/* Drives (no daemon) or follows (daemon) the service's latest rollout to its end. */
static int follow(struct cli_ctx *ctx, struct store *s, const char *app, const char *svc,
                  int64_t since_ms, int64_t timeout_ms)
{
    struct orch_error err = {0};
    int rc;
    if (!cli_record_only(ctx)) {
        struct reconciler *rec = NULL;
        if (cli_reconciler_open(s, timeout_ms, &rec, &err) < 0)
            return cli_report(&err);
        rc = cli_converge(rec, app, false);
        reconciler_free(rec);
        if (rc == ORCH_EXIT_ENV || rc == ORCH_EXIT_TIMEOUT)
            return rc;
    } else {
        struct store_rollout ro;
        struct cli_wait_target t = {.app = app, .service = svc};
        struct store_service row;
        if (store_service_get(s, app, svc, &row, &err) < 0)
            return cli_report(&err);
        t.revision = row.revision;
        store_service_free(&row);
        if (store_rollout_latest(s, app, svc, &ro, &err) == 0) {
            t.rollout_id = ro.state == STORE_ROLLOUT_PROGRESSING ? ro.id : 0;
            store_rollout_free(&ro);
        }
        orch_error_clear(&err);
        rc = cli_wait(s, &t, 1, since_ms, timeout_ms);
        if (rc == ORCH_EXIT_TIMEOUT)
            return rc;
    }
    struct store_rollout ro;
    if (store_rollout_latest(s, app, svc, &ro, &err) < 0) {
        if (err.code == ORCH_E_NOTFOUND)
            return rc; /* no rollout recorded: whatever converging said */
        return cli_report(&err);
    }
    int code = rollout_exit(&ro);
    char when[40];
    orch_format_rfc3339(ro.updated_ms, when, sizeof(when));
    printf("%s/%s: rollout to revision %lld %s%s%s\n", app, svc, (long long)ro.to_revision,
           store_rollout_state_name(ro.state), ro.message && *ro.message ? ": " : "",
           ro.message ? ro.message : "");
    store_rollout_free(&ro);
    return code;
}

static int rollout_status(struct cli_ctx *ctx, int argc, char **argv)
{
    struct follow_args a = {0};
    int rc = parse_follow_args("rollout status", argc, argv, false, &a);
    if (rc != 0)
        return rc == CLI_HELP_SHOWN ? 0 : rc;
    struct orch_error err = {0};
    struct store *s = NULL;
    _cleanup_free_ char *app = NULL;
    _cleanup_free_ char *svc = NULL;
    if (cli_open_service(ctx, a.ref, true, &s, &app, &svc, &err) < 0)
        return cli_report(&err);
    rc = follow(ctx, s, app, svc, 0, a.timeout_ms);
    store_close(s);
    return rc;
}

/* The revision undo goes back to: --to-revision N, or the newest earlier one that once ran
 * fully and did not fail. */
static int undo_target(struct store *s, const char *app, const char *svc, int64_t current,
                       int64_t wanted, struct store_revision *out, struct orch_error *err)
{
    struct store_revision *v = NULL;
    size_t n = 0;
    int rc = store_revisions_list(s, app, svc, &v, &n, err);
    if (rc < 0)
        return rc;
    size_t pick = n;
    for (size_t i = 0; i < n && pick == n; i++) {
        if (wanted > 0
                ? v[i].number == wanted
                : (v[i].number != current && v[i].was_healthy && v[i].state != STORE_REV_FAILED))
            pick = i;
    }
    if (pick == n) {
        rc = wanted > 0 ? orch_fail(err, ORCH_E_NOTFOUND, 0,
                                    "%s/%s has no revision %lld (see orch rollout history)", app,
                                    svc, (long long)wanted)
                        : orch_fail(err, ORCH_E_NOTFOUND, 0,
                                    "%s/%s has no earlier good revision to go back to", app, svc);
    } else if (v[pick].number == current) {
        rc = orch_fail(err, ORCH_E_INVALID, 0, "%s/%s is at revision %lld already", app, svc,
                       (long long)current);
    } else {
        *out = v[pick];
        memset(&v[pick], 0, sizeof(v[pick]));
    }
    store_revisions_free(v, n);
    return rc;
}

static int rollout_undo(struct cli_ctx *ctx, int argc, char **argv)
{
    struct follow_args a = {0};
    int rc = parse_follow_args("rollout undo", argc, argv, true, &a);
    if (rc != 0)
        return rc == CLI_HELP_SHOWN ? 0 : rc;
    struct orch_error err = {0};
    struct store *s = NULL;
    _cleanup_free_ char *app = NULL;
    _cleanup_free_ char *svc = NULL;
    _cleanup_free_ char *spec_json = NULL;
    struct store_service row = {0};
    struct store_revision target = {0};
    bool have_row = false, have_target = false, in_tx = false;
    int64_t now = orch_now_wall_ms();

    rc = cli_open_service(ctx, a.ref, true, &s, &app, &svc, &err);
    if (rc == 0 && !cli_record_only(ctx)) {
        /* the engine must answer before anything is recorded */
        struct reconciler *probe = NULL;
        rc = cli_reconciler_open(s, 0, &probe, &err);
        reconciler_free(probe);
    }
    if (rc == 0)
        rc = store_begin(s, &err);
    in_tx = rc == 0;
    if (rc == 0)
        rc = store_service_get(s, app, svc, &row, &err);
    have_row = rc == 0;
    if (rc == 0)
        rc = undo_target(s, app, svc, row.revision, a.to_revision, &target, &err);
    have_target = rc == 0;
    if (rc == 0) {
        /* the service as it was at the target revision, with today's count and autoscale */
        spec_json = spec_service_rebase_json(target.template_json, row.spec_json, &err);
        if (spec_json == NULL)
            rc = -(int)err.code;
    }
    int64_t from = row.revision;
    if (rc == 0) {
        struct store_service put = row;
        put.revision = target.number;
        put.spec_json = spec_json;
        put.updated_ms = now;
        rc = store_service_put(s, &put, &err);
    }
    if (rc == 0) {
        struct store_rollout ro = {.app = app,
                                   .service = svc,
                                   .from_revision = from,
                                   .to_revision = target.number,
                                   .state = STORE_ROLLOUT_PROGRESSING,
                                   .message = "",
                                   .started_ms = now,
                                   .updated_ms = now};
        int64_t id = 0;
        rc = store_rollout_add(s, &ro, &id, &err);
    }
    if (rc == 0) {
        _cleanup_free_ char *msg =
            orch_xasprintf("undo: revision %lld -> %lld (%s)", (long long)from,
                           (long long)target.number, ctx->cmdline);
        rc = store_event_add(s, app, svc, "undo", msg, now, &err);
    }
    if (rc == 0)
        rc = store_commit(s, &err);
    else if (in_tx)
        store_rollback(s);
    if (rc == 0) {
        printf("%s/%s: rolling back from revision %lld to revision %lld (image %s)%s\n", app, svc,
               (long long)from, (long long)target.number, target.image,
               target.state == STORE_REV_FAILED ? " - note: that revision failed before" : "");
        fflush(stdout);
    }
    if (have_row)
        store_service_free(&row);
    if (have_target)
        store_revision_free(&target);
    if (rc < 0) {
        if (s)
            store_close(s);
        return cli_report(&err);
    }
    if (cli_record_only(ctx) && !a.wait)
        rc = ORCH_EXIT_OK;
    else
        rc = follow(ctx, s, app, svc, now, a.timeout_ms);
    store_close(s);
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
