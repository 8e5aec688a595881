/* `orch apply` and `orch diff`: load and validate a spec, compute the desired-state diff, then
 * show it (diff, --dry-run) or store it in one transaction (apply). Nothing is stored or touched
 * unless the whole spec, and every --image override, is valid. */
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli.h"
#include "desired/desired.h"
#include "reconcile/reconcile.h"

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
    "  -o, --output FORMAT      text (default) or json: one JSON object on stdout at the end\n"
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
        case 'o':
            if (strcmp(optarg, "json") == 0)
                a->json = true;
            else if (strcmp(optarg, "text") != 0 && strcmp(optarg, "table") != 0)
                return cli_usage_error(verb, "-o must be text or json, not '%s'", optarg);
            break;
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

/* Applies --image SERVICE=IMAGE overrides to the parsed app. Every override is checked before
 * any is used, and all problems are reported. */
static int apply_image_overrides(const char *verb, struct spec_app *app,
                                 const struct orch_strv *images)
{
    int bad = 0;
    for (size_t i = 0; i < images->n; i++) {
        const char *eq = strchr(images->v[i], '=');
        if (eq == NULL || eq == images->v[i] || eq[1] == '\0') {
            fprintf(stderr, "orch %s: --image '%s': expected SERVICE=IMAGE\n", verb, images->v[i]);
            bad++;
            continue;
        }
        _cleanup_free_ char *svc = orch_xstrndup(images->v[i], (size_t)(eq - images->v[i]));
        if (spec_app_find(app, svc) == NULL) {
            fprintf(stderr, "orch %s: --image '%s': the spec declares no service '%s'\n", verb,
                    images->v[i], svc);
            bad++;
            continue;
        }
        if (!spec_image_ref_valid(eq + 1)) {
            fprintf(stderr, "orch %s: --image '%s': '%s' is not a valid image reference\n", verb,
                    images->v[i], eq + 1);
            bad++;
        }
    }
    if (bad)
        return ORCH_EXIT_INVALID;
    for (size_t i = 0; i < images->n; i++) {
        const char *eq = strchr(images->v[i], '=');
        _cleanup_free_ char *svc = orch_xstrndup(images->v[i], (size_t)(eq - images->v[i]));
        for (size_t j = 0; j < app->services_len; j++) {
            if (strcmp(app->services[j].name, svc) != 0)
                continue;
            free(app->services[j].image);
            app->services[j].image = orch_xstrdup(eq + 1);
        }
    }
    return 0;
}

static void print_diff(const struct desired_diff *d)
{
    for (size_t i = 0; i < d->n; i++) {
        const struct desired_change *c = &d->v[i];
        switch (c->kind) {
        case DESIRED_UNCHANGED:
            printf("  %s/%s: unchanged (revision %lld, %d replicas)\n", d->app, c->service,
                   (long long)c->from_revision, c->from_replicas);
            break;
        case DESIRED_CREATE:
            printf("+ %s/%s: create revision %lld, %d replica%s, image %s\n", d->app, c->service,
                   (long long)c->to_revision, c->to_replicas, c->to_replicas == 1 ? "" : "s",
                   c->to_image);
            break;
        case DESIRED_REVISION:
            printf("~ %s/%s: new revision %lld (from %lld)", d->app, c->service,
                   (long long)c->to_revision, (long long)c->from_revision);
            if (c->from_replicas != c->to_replicas)
                printf(", scale %d -> %d", c->from_replicas, c->to_replicas);
            printf("\n");
            for (size_t j = 0; j < c->fields_len; j++) {
                const struct desired_field *f = &c->fields[j];
                if (f->before == NULL)
                    printf("    + %s: %s\n", f->path, f->after);
                else if (f->after == NULL)
                    printf("    - %s: %s\n", f->path, f->before);
                else
                    printf("    ~ %s: %s => %s\n", f->path, f->before, f->after);
            }
            break;
        case DESIRED_SCALE:
            if (c->autoscale_changed)
                printf("~ %s/%s: autoscale settings change (no new revision)\n", d->app,
                       c->service);
            else
                printf("~ %s/%s: scale %d -> %d (no new revision)\n", d->app, c->service,
                       c->from_replicas, c->to_replicas);
            break;
        case DESIRED_PRUNE:
            printf("- %s/%s: delete (not in the file; %d replica%s)\n", d->app, c->service,
                   c->from_replicas, c->from_replicas == 1 ? "" : "s");
            break;
        }
    }
}

static const char *change_name(enum desired_change_kind k)
{
    switch (k) {
    case DESIRED_UNCHANGED:
        return "unchanged";
    case DESIRED_CREATE:
        return "created";
    case DESIRED_REVISION:
        return "revision";
    case DESIRED_SCALE:
        return "scaled";
    case DESIRED_PRUNE:
        return "pruned";
    }
    return "?";
}

/* apply -o json: what changed and how it ended, for CI scripts. */
static void print_apply_json(const struct desired_diff *d, const char *outcome, int exit_code)
{
    json_t *svcs = json_array();
    for (size_t i = 0; i < d->n; i++) {
        const struct desired_change *c = &d->v[i];
        json_array_append_new(
            svcs, json_pack("{s:s, s:s, s:I, s:I, s:i}", "service", c->service, "change",
                            change_name(c->kind), "from_revision", (json_int_t)c->from_revision,
                            "revision", (json_int_t)c->to_revision, "replicas", c->to_replicas));
    }
    json_t *root = json_pack("{s:s, s:s, s:i, s:o}", "app", d->app ? d->app : "", "outcome",
                             outcome, "exit_code", exit_code, "services", svcs);
    json_dumpf(root, stdout, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
    printf("\n");
    json_decref(root);
}

static void print_applied(const struct desired_diff *d)
{
    for (size_t i = 0; i < d->n; i++) {
        const struct desired_change *c = &d->v[i];
        switch (c->kind) {
        case DESIRED_UNCHANGED:
            printf("%s/%s: unchanged (revision %lld)\n", d->app, c->service,
                   (long long)c->from_revision);
            break;
        case DESIRED_CREATE:
            printf("%s/%s: created (revision %lld, %d replica%s)\n", d->app, c->service,
                   (long long)c->to_revision, c->to_replicas, c->to_replicas == 1 ? "" : "s");
            break;
        case DESIRED_REVISION:
            printf("%s/%s: revision %lld (was %lld), image %s\n", d->app, c->service,
                   (long long)c->to_revision, (long long)c->from_revision, c->to_image);
            break;
        case DESIRED_SCALE:
            if (c->autoscale_changed)
                printf("%s/%s: autoscale settings updated\n", d->app, c->service);
            else
                printf("%s/%s: scaled %d -> %d\n", d->app, c->service, c->from_replicas,
                       c->to_replicas);
            break;
        case DESIRED_PRUNE:
            printf("%s/%s: deleted (pruned)\n", d->app, c->service);
            break;
        }
    }
}

/* --wait with a daemon: follow every service the apply touched (new revisions by their
 * rollout, the rest until the daemon reports them converged). */
static int wait_for_daemon(struct store *s, const struct desired_diff *d, int64_t since_ms,
                           int64_t timeout_ms, bool quiet)
{
    struct cli_wait_target *t = orch_xcalloc(d->n + 1, sizeof(*t));
    size_t n = 0;
    for (size_t i = 0; i < d->n; i++) {
        const struct desired_change *c = &d->v[i];
        if (c->kind == DESIRED_PRUNE)
            continue;
        t[n].app = d->app;
        t[n].service = c->service;
        t[n].revision = c->kind == DESIRED_UNCHANGED ? c->from_revision : c->to_revision;
        struct store_rollout ro;
        struct orch_error e = {0};
        if ((c->kind == DESIRED_CREATE || c->kind == DESIRED_REVISION) &&
            store_rollout_latest(s, d->app, c->service, &ro, &e) == 0) {
            t[n].rollout_id = ro.id;
            store_rollout_free(&ro);
        }
        n++;
    }
    int rc = cli_wait(s, t, n, since_ms, timeout_ms);
    if (rc == ORCH_EXIT_OK && !quiet)
        printf("%s: converged\n", d->app);
    free(t);
    return rc;
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
    if (rc == 0)
        rc = apply_image_overrides(verb, &app, &a.images);
    orch_strv_free(&a.images);
    if (rc != 0) {
        spec_app_free(&app);
        return rc;
    }

    struct orch_error err = {0};
    struct store *s = NULL;
    struct reconciler *rec = NULL;
    struct desired_diff d = {0};
    char *outcome = NULL; /* freed at out: (gotos below jump past later declarations) */
    rc = show_only ? cli_store_open_read(ctx, &s, &err) : cli_store_open(ctx, &s, &err);
    if (rc < 0)
        goto fail;
    if (show_only) {
        if (s == NULL) /* no state yet: everything in the file is new */
            rc = desired_diff_compute(&app, NULL, NULL, 0, a.prune, &d, &err);
        else
            rc = desired_diff_load(s, &app, a.prune, &d, &err);
        if (rc < 0)
            goto fail;
        print_diff(&d);
        rc = desired_diff_has_changes(&d) ? 1 : 0;
        goto out;
    }

    /* The engine must answer before anything is stored: exit 3 then changes nothing. With a
     * daemon on the state dir, it converges: this command records and returns (or waits). */
    bool record_only = cli_record_only(ctx);
    if (!record_only) {
        rc = cli_reconciler_open(s, a.timeout_ms, &rec, &err);
        if (rc < 0)
            goto fail;
    }
    struct desired_apply_options opts = {
        .spec_path = abs_path,
        .message = a.message ? a.message : ctx->cmdline,
        .now_ms = orch_now_wall_ms(),
    };
    rc = desired_apply(s, &app, a.prune, &opts, &d, &err);
    if (rc < 0)
        goto fail;
    if (!a.json)
        print_applied(&d);
    fflush(stdout);
    if (rec != NULL) {
        rc = cli_converge_quiet(rec, app.app, false, a.json, &outcome);
    } else if (a.wait) {
        rc = wait_for_daemon(s, &d, opts.now_ms, a.timeout_ms, a.json);
        outcome = orch_xstrdup(rc == ORCH_EXIT_OK            ? "converged"
                               : rc == ORCH_EXIT_ROLLED_BACK ? "rolled_back"
                               : rc == ORCH_EXIT_TIMEOUT     ? "timeout"
                                                             : "failed");
    } else {
        rc = ORCH_EXIT_OK;
        outcome = orch_xstrdup("recorded");
    }
    if (a.json)
        print_apply_json(&d, outcome ? outcome : "error", rc);
    goto out;

fail:
    rc = cli_report(&err);
out:
    free(outcome);
    desired_diff_free(&d);
    reconciler_free(rec);
    if (s)
        store_close(s);
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
