/* `orch state backup|restore|init`: the operator's way back when a state dir's database is lost
 * or damaged. Parses arguments, makes one ops_state call and prints what it tells; ops does the
 * work (the store the copying and the checks, the engine's list for `init --id`). */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "cli.h"

const char cli_usage_state[] =
    "Usage: orch state backup FILE\n"
    "       orch state restore FILE\n"
    "       orch state init [--id ID | --new]\n\n"
    "backup   writes a consistent copy of the state database to FILE (a new file, mode 0600),\n"
    "         also while a daemon runs and writes.\n"
    "restore  replaces the state dir's database with the backup FILE and takes on its state\n"
    "         id. Refused while a daemon runs on the state dir.\n"
    "init     makes an empty database where none is usable (missing, emptied or damaged).\n"
    "         --id ID adopts the containers labelled orch.state=ID: the next apply of each\n"
    "         app's spec manages them again (apply every app before starting a daemon: it\n"
    "         removes containers of apps the state does not know). --new starts over with a\n"
    "         new identity and leaves the old containers alone. Never replaces a usable "
    "database.\n";

/* ops_state tells only MESSAGE notes (its refusals). */
static void state_note(void *arg, const struct ops_note *n)
{
    (void)arg;
    if (n->kind == OPS_NOTE_MESSAGE)
        fprintf(stderr, "orch: %s\n", n->text);
}

/* One ops_state call: the lines it made on stdout, a usage error or a failure on stderr. No
 * signal handler (cli_ops_ctx would install one): a signal ends the command at once, as ever. */
static int state_run(struct cli_ctx *ctx, const struct ops_state_req *req)
{
    struct ops_ctx octx = {.state_dir = ctx->state_dir, .actor = ctx->cmdline, .note = state_note};
    struct ops_state_result res;
    int rc = ops_state(&octx, req, &res);
    for (size_t i = 0; i < res.lines.n; i++)
        printf("%s\n", res.lines.v[i]);
    if (res.usage != NULL)
        rc = cli_usage_error("state", "%s", res.usage);
    else if (rc != ORCH_EXIT_OK && res.err.code != ORCH_E_OK)
        rc = cli_report(&res.err);
    ops_state_result_free(&res);
    return rc;
}

int cli_cmd_state(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"id", required_argument, NULL, 'i'},
        {"new", no_argument, NULL, 'n'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *id = NULL;
    bool new_id = false;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'i':
            id = optarg;
            break;
        case 'n':
            new_id = true;
            break;
        case 'h':
            return cli_print_help(cli_usage_state);
        case ':':
            return cli_usage_error("state", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("state", "unknown option '%s'", argv[optind - 1]);
        }
    }
    int npos = argc - optind;
    const char *sub = npos > 0 ? argv[optind] : NULL;
    const char *file = npos > 1 ? argv[optind + 1] : NULL;
    if (sub == NULL)
        return cli_usage_error("state", "expected backup FILE, restore FILE or init");
    bool is_init = strcmp(sub, "init") == 0;
    if (!is_init && (id != NULL || new_id))
        return cli_usage_error("state", "--id and --new go with init only");
    if (is_init) {
        if (npos != 1)
            return cli_usage_error("state", "init takes no argument");
        if (id != NULL && new_id)
            return cli_usage_error("state", "--id and --new exclude each other");
        if (id != NULL && !ops_state_id_valid(id))
            return cli_usage_error("state",
                                   "'%s' is not a state id (16 lowercase hex digits, the "
                                   "orch.state label of the containers)",
                                   id);
        return state_run(
            ctx, &(struct ops_state_req){.action = OPS_STATE_INIT, .id = id, .new_id = new_id});
    }
    if (strcmp(sub, "backup") != 0 && strcmp(sub, "restore") != 0)
        return cli_usage_error("state", "unknown subcommand '%s'", sub);
    if (npos != 2)
        return cli_usage_error("state", "%s takes one FILE", sub);

    return state_run(ctx, &(struct ops_state_req){.action = strcmp(sub, "backup") == 0
                                                                ? OPS_STATE_BACKUP
                                                                : OPS_STATE_RESTORE,
                                                  .file = file});
}
