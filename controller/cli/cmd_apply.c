/* `orch apply` and `orch diff`: parse the options, load and validate the spec, hand it to
 * ops_apply and render the diff (diff, --dry-run) or what was recorded and how it ended (apply).
 * Nothing is stored or touched unless the whole spec, and every --image override, is valid. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli.h"
#include "ops/ops_json.h"

const char cli_usage_apply[] =
    "Usage: orch apply FILE|-f FILE|- [--wait] [--timeout DUR] [--image SERVICE=IMAGE]...\n"
    "                  [--prune] [--dry-run] [-m MESSAGE]\n\n"
    "Validates the spec file and records it as the desired state of its app: a service whose\n"
    "template (everything but replicas and autoscale) changed gets a new revision; a changed\n"
    "replica count scales in place. An invalid spec changes nothing.\n\n"
    "Options:\n"
    "  -f, --file FILE          the spec file ('-' reads standard input)\n"
    "      --image SVC=IMAGE    override one service's image (repeatable)\n"
    "      --prune              delete services of the app that the file no longer declares\n"
    "      --dry-run            show what would change and change nothing (exit 0: nothing\n"
    "                           would change, 1: something would)\n"
    "  -m, --message MSG        change message recorded in the rollout history\n"
    "  -o, --output FORMAT      table (default; also text) or json: one JSON object on stdout\n"
    "                           at the end\n"
    "      --wait               follow the rollout to its end when a daemon drives it\n"
    "      --timeout DUR        give up waiting after DUR (exit 4), e.g. 5m\n"
    "  -h, --help               show this help\n";

const char cli_usage_diff[] =
    "Usage: orch diff FILE [--image SERVICE=IMAGE]... [--prune]\n\n"
    "Shows what `orch apply FILE` would change: new services and\n"
    "revisions (with the fields that differ), scaling and pruning.\n"
    "Exit 0 when nothing would change, 1 when something would, 2 or 3 on\n"
    "errors.\n";

struct apply_args {
    const char *file;
    bool wait;
    int64_t timeout_ms;
    struct orch_strv images; /* "SERVICE=IMAGE" */
    bool prune;
    bool dry_run;
    const char *message;
    bool json;
};

static int parse_apply_args(const char *verb, int argc, char **argv, struct apply_args *a,
                            bool is_diff)
{
    static const struct option long_opts[] = {
        {"file", required_argument, NULL, 'f'},    {"wait", no_argument, NULL, 'w'},
        {"timeout", required_argument, NULL, 't'}, {"image", required_argument, NULL, 'i'},
        {"prune", no_argument, NULL, 'p'},         {"dry-run", no_argument, NULL, 'n'},
        {"message", required_argument, NULL, 'm'}, {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},          {NULL, 0, NULL, 0},
    };
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":f:m:o:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            if (a->file != NULL)
                return cli_usage_error(verb, "give one spec file, not '%s' and '%s'", a->file,
                                       optarg);
            a->file = optarg;
            break;
        case 'w':
            a->wait = true;
            break;
        case 't':
            if (spec_parse_duration(optarg, &a->timeout_ms) < 0 || a->timeout_ms <= 0)
                return cli_usage_error(verb, "--timeout: '%s' is not a duration like 90s or 5m",
                                       optarg);
            break;
        case 'i':
            orch_strv_push(&a->images, optarg);
            break;
        case 'p':
            a->prune = true;
            break;
        case 'n':
            a->dry_run = true;
            break;
        case 'm':
            a->message = optarg;
            break;
        case 'o': {
            enum cli_output o;
            if (cli_parse_output(verb, optarg, &o) < 0)
                return ORCH_EXIT_INVALID;
            a->json = o == CLI_OUTPUT_JSON;
            break;
        }
        case 'h':
            return CLI_HELP_SHOWN;
        case ':':
            return cli_usage_error(verb, "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error(verb, "unknown option '%s'", argv[optind - 1]);
        }
        if (is_diff && (c == 'w' || c == 't' || c == 'n' || c == 'm'))
            return cli_usage_error(verb, "option '%s' is for apply, not diff", argv[optind - 1]);
    }
    for (; optind < argc; optind++) {
        if (a->file != NULL)
            return cli_usage_error(verb, "give one spec file, not '%s' and '%s'", a->file,
                                   argv[optind]);
        a->file = argv[optind];
    }
    if (a->file == NULL)
        return cli_usage_error(verb, "no spec file given");
    return 0;
}

static void print_diff(const struct ops_diff *d)
{
    for (size_t i = 0; i < d->n; i++) {
        const struct ops_change *c = &d->v[i];
        switch (c->kind) {
        case OPS_CHANGE_UNCHANGED:
            printf("  %s/%s: unchanged (revision %lld, %d replicas)\n", d->app, c->service,
                   (long long)c->from_revision, c->from_replicas);
            break;
        case OPS_CHANGE_CREATE:
            printf("+ %s/%s: create revision %lld, %d replica%s, image %s\n", d->app, c->service,
                   (long long)c->to_revision, c->to_replicas, c->to_replicas == 1 ? "" : "s",
                   c->to_image);
            break;
        case OPS_CHANGE_REVISION:
            printf("~ %s/%s: new revision %lld (from %lld)", d->app, c->service,
                   (long long)c->to_revision, (long long)c->from_revision);
            if (c->from_replicas != c->to_replicas)
                printf(", scale %d -> %d", c->from_replicas, c->to_replicas);
            printf("\n");
            for (size_t j = 0; j < c->n_fields; j++) {
                const struct ops_field *f = &c->fields[j];
                if (f->before == NULL)
                    printf("    + %s: %s\n", f->path, f->after);
                else if (f->after == NULL)
                    printf("    - %s: %s\n", f->path, f->before);
                else
                    printf("    ~ %s: %s => %s\n", f->path, f->before, f->after);
            }
            break;
        case OPS_CHANGE_SCALE:
            if (c->published_changed)
                printf("~ %s/%s: published ports change (no new revision)\n", d->app, c->service);
            if (c->autoscale_changed)
                printf("~ %s/%s: autoscale settings change (no new revision)\n", d->app,
                       c->service);
            if (!c->autoscale_changed && !c->published_changed)
                printf("~ %s/%s: scale %d -> %d (no new revision)\n", d->app, c->service,
                       c->from_replicas, c->to_replicas);
            break;
        case OPS_CHANGE_PRUNE:
            printf("- %s/%s: delete (not in the file; %d replica%s)\n", d->app, c->service,
                   c->from_replicas, c->from_replicas == 1 ? "" : "s");
            break;
        }
    }
}

static void print_applied(const struct ops_diff *d)
{
    for (size_t i = 0; i < d->n; i++) {
        const struct ops_change *c = &d->v[i];
        switch (c->kind) {
        case OPS_CHANGE_UNCHANGED:
            printf("%s/%s: unchanged (revision %lld)\n", d->app, c->service,
                   (long long)c->from_revision);
            break;
        case OPS_CHANGE_CREATE:
            printf("%s/%s: created (revision %lld, %d replica%s)\n", d->app, c->service,
                   (long long)c->to_revision, c->to_replicas, c->to_replicas == 1 ? "" : "s");
            break;
        case OPS_CHANGE_REVISION:
            printf("%s/%s: revision %lld (was %lld), image %s\n", d->app, c->service,
                   (long long)c->to_revision, (long long)c->from_revision, c->to_image);
            break;
        case OPS_CHANGE_SCALE:
            if (c->published_changed)
                printf("%s/%s: published ports updated (no new revision)\n", d->app, c->service);
            if (c->autoscale_changed)
                printf("%s/%s: autoscale settings updated\n", d->app, c->service);
            if (!c->autoscale_changed && !c->published_changed)
                printf("%s/%s: scaled %d -> %d\n", d->app, c->service, c->from_replicas,
                       c->to_replicas);
            break;
        case OPS_CHANGE_PRUNE:
            printf("%s/%s: deleted (pruned)\n", d->app, c->service);
            break;
        }
    }
}

static void apply_recorded(void *arg)
{
    print_applied(&((struct ops_apply_result *)arg)->diff);
}

/* Renders the result of ops_apply; returns the exit code. */
static int render_apply(const char *verb, const struct apply_args *a, bool show_only,
                        const struct ops_apply_result *res)
{
    for (size_t i = 0; i < res->problems.n; i++)
        fprintf(stderr, "orch %s: %s\n", verb, res->problems.v[i]);
    for (size_t i = 0; i < res->diags.n; i++)
        fprintf(stderr, "%s\n", res->diags.v[i]);
    if (res->diags.n > 0)
        fprintf(stderr, "orch: %s: %zu error%s; nothing was changed\n", a->file, res->diags.n,
                res->diags.n == 1 ? "" : "s");
    if (res->problems.n > 0 || res->diags.n > 0)
        return res->exit_code;
    if (show_only) {
        if (res->err.code != ORCH_E_OK)
            return cli_report(&res->err);
        print_diff(&res->diff);
        return res->exit_code;
    }
    if (!res->recorded)
        return cli_report(&res->err);
    if (res->driver != OPS_DRIVER_EMBEDDED && a->wait && !a->json &&
        (res->exit_code == ORCH_EXIT_OK || res->exit_code == ORCH_EXIT_SUPERSEDED))
        printf("%s: %s\n", res->diff.app,
               res->exit_code == ORCH_EXIT_OK ? "converged" : "superseded");
    if (a->json) {
        _cleanup_free_ char *doc = ops_apply_json(res);
        printf("%s\n", doc);
    }
    return res->exit_code;
}

static int run_apply(struct cli_ctx *ctx, int argc, char **argv, bool is_diff)
{
    const char *verb = is_diff ? "diff" : "apply";
    struct apply_args a = {0};
    int rc = parse_apply_args(verb, argc, argv, &a, is_diff);
    if (rc == CLI_HELP_SHOWN) {
        orch_strv_free(&a.images);
        return cli_print_help(is_diff ? cli_usage_diff : cli_usage_apply);
    }
    if (rc != 0) {
        orch_strv_free(&a.images);
        return rc;
    }
    bool show_only = is_diff || a.dry_run;

    struct spec_app app = {0};
    _cleanup_free_ char *abs_path = NULL;
    rc = cli_spec_load(a.file, &app, &abs_path);
    if (rc != 0) {
        orch_strv_free(&a.images);
        return rc;
    }
    struct ops_apply_result res;
    struct cli_notes notes = {
        .quiet = a.json, .recorded = a.json ? NULL : apply_recorded, .arg = &res};
    struct ops_ctx octx;
    cli_ops_ctx(ctx, &notes, &octx);
    struct ops_apply_req req = {
        .spec = &app,
        .spec_path = abs_path,
        .images = (const char *const *)a.images.v,
        .n_images = a.images.n,
        .prune = a.prune,
        .dry_run = show_only,
        .wait = a.wait,
        .timeout_ms = a.timeout_ms,
        .message = a.message,
    };
    ops_apply(&octx, &req, &res);
    rc = render_apply(verb, &a, show_only, &res);
    ops_apply_result_free(&res);
    orch_strv_free(&a.images);
    spec_app_free(&app);
    return rc;
}

int cli_cmd_apply(struct cli_ctx *ctx, int argc, char **argv)
{
    return run_apply(ctx, argc, argv, false);
}

int cli_cmd_diff(struct cli_ctx *ctx, int argc, char **argv)
{
    return run_apply(ctx, argc, argv, true);
}
