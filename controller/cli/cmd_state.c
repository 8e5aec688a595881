/* `orch state backup|restore|init`: the operator's way back when a state dir's database is lost
 * or damaged. Parses arguments and prints; the store does the copying and the checks. `init
 * --id` also lists (never changes) the engine's containers of that id, so the adopted state's
 * revision numbers continue above theirs. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/util.h"
#include "cli.h"
#include "docker/docker_client.h"
#include "daemon/daemon.h"

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

/* The highest orch.revision per app/service among the engine's containers of state id `id`;
 * prints the apps found. Exit 3 when the engine does not answer: adopting blind could give a
 * new revision the number of an old one with another template. */
static int seed_from_engine(struct store *s, const char *id, struct orch_error *err)
{
    struct docker_endpoint ep = {0};
    uv_loop_t loop;
    struct docker_client *dc = NULL;
    struct docker_container_list list = {0};
    int rc = uv_loop_init(&loop);
    if (rc < 0)
        return orch_fail(err, ORCH_E_ENV, 0, "cannot create an event loop: %s", uv_strerror(rc));
    rc = docker_endpoint_from_env(&ep, err);
    if (rc == 0)
        rc = docker_client_new(&loop, &ep, NULL, &dc, err);
    _cleanup_free_ char *label = orch_xasprintf("orch.state=%s", id);
    const char *labels[] = {"orch.app", label};
    if (rc == 0) {
        struct docker_sync sync = {0};
        rc = docker_containers_list(dc, labels, 2, &list, docker_sync_done, &sync, err);
        if (rc == 0)
            rc = docker_sync_wait(dc, &sync, 1, err);
    }
    struct orch_strv apps = {0};
    for (size_t i = 0; rc == 0 && i < list.n; i++) {
        const struct docker_kvs *l = &list.v[i].labels;
        const char *app = docker_kvs_get(l, "orch.app");
        const char *svc = docker_kvs_get(l, "orch.service");
        const char *rev = docker_kvs_get(l, "orch.revision");
        if (app == NULL || svc == NULL || rev == NULL)
            continue;
        char *end = NULL;
        long long n = strtoll(rev, &end, 10);
        if (end == rev || *end != '\0' || n <= 0)
            continue;
        rc = store_revision_seq_raise(s, app, svc, n, err);
        bool seen = false;
        for (size_t j = 0; j < apps.n; j++)
            seen = seen || strcmp(apps.v[j], app) == 0;
        if (!seen)
            orch_strv_push(&apps, app);
    }
    if (rc == 0) {
        if (apps.n == 0)
            printf("no container of state id %s on the engine\n", id);
        for (size_t j = 0; j < apps.n; j++)
            printf("app %s: its containers are managed again once you apply its spec\n", apps.v[j]);
    }
    orch_strv_free(&apps);
    docker_container_list_free(&list);
    if (dc != NULL)
        docker_client_close(dc);
    while (uv_run(&loop, UV_RUN_DEFAULT) != 0)
        ;
    uv_loop_close(&loop);
    docker_endpoint_free(&ep);
    return rc;
}

static int refuse_while_daemon(struct cli_ctx *ctx, const char *what)
{
    pid_t pid = 0;
    if (!daemon_is_running(ctx->state_dir, &pid))
        return 0;
    fprintf(stderr,
            "orch: orch daemon (pid %ld) runs on %s: stop it before %s (it would go on with the "
            "database it has open)\n",
            (long)pid, ctx->state_dir, what);
    return ORCH_EXIT_ENV;
}

static int state_init(struct cli_ctx *ctx, const char *id, bool new_id)
{
    struct orch_error err = {0};
    _cleanup_free_ char *old = NULL;
    if (store_dir_state_id(ctx->state_dir, &old, &err) < 0)
        return cli_report(&err);
    struct store *usable = NULL;
    if (id == NULL && !new_id && old != NULL &&
        store_open_readonly(ctx->state_dir, &usable, &err) == 0) {
        store_close(usable);
        fprintf(stderr,
                "orch: state dir %s has a usable database (state id %s): orch state init "
                "never replaces one\n",
                ctx->state_dir, old);
        return ORCH_EXIT_ENV;
    }
    orch_error_clear(&err);
    if (id == NULL && !new_id && old != NULL)
        return cli_usage_error("state",
                               "this state dir was used by state id %s: choose `--id %s` to "
                               "manage its containers again, or `--new` to start over",
                               old, old);
    int rc = refuse_while_daemon(ctx, "making a new database");
    if (rc != 0)
        return rc;
    _cleanup_free_ char *made = NULL;
    if (store_init(ctx->state_dir, id, &made, &err) < 0)
        return cli_report(&err);
    if (id == NULL) {
        printf("state dir %s: new empty state, id %s\n", ctx->state_dir, made);
        if (old != NULL)
            printf("the containers labelled orch.state=%s are left alone; remove them with "
                   "docker when they are not needed\n",
                   old);
        return ORCH_EXIT_OK;
    }
    struct store *s = NULL;
    if (store_open(ctx->state_dir, &s, &err) < 0)
        return cli_report(&err);
    rc = seed_from_engine(s, id, &err);
    store_close(s);
    if (rc < 0) {
        orch_wrap(&err,
                  "the state (id %s) is made, but its containers could not be listed; "
                  "run `orch state init --id %s` again once the engine answers (move "
                  "%s/%s away first)",
                  id, id, ctx->state_dir, STORE_DB_NAME);
        return cli_report(&err);
    }
    printf("state dir %s: empty state with id %s\n", ctx->state_dir, id);
    return ORCH_EXIT_OK;
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
        if (id != NULL && !store_state_id_valid(id))
            return cli_usage_error("state",
                                   "'%s' is not a state id (16 lowercase hex digits, the "
                                   "orch.state label of the containers)",
                                   id);
        return state_init(ctx, id, new_id);
    }
    if (strcmp(sub, "backup") != 0 && strcmp(sub, "restore") != 0)
        return cli_usage_error("state", "unknown subcommand '%s'", sub);
    if (npos != 2)
        return cli_usage_error("state", "%s takes one FILE", sub);

    struct orch_error err = {0};
    if (strcmp(sub, "backup") == 0) {
        struct store *s = NULL;
        if (store_open_readonly(ctx->state_dir, &s, &err) < 0) {
            if (err.code == ORCH_E_NOTFOUND)
                err.code = ORCH_E_ENV;
            return cli_report(&err);
        }
        int rc = store_backup(s, file, &err);
        store_close(s);
        if (rc < 0)
            return cli_report(&err);
        printf("backed up %s to %s\n", ctx->state_dir, file);
        return ORCH_EXIT_OK;
    }
    int rc = refuse_while_daemon(ctx, "restoring");
    if (rc != 0)
        return rc;
    _cleanup_free_ char *restored = NULL;
    if (store_restore(ctx->state_dir, file, &restored, &err) < 0)
        return cli_report(&err);
    printf("restored %s from %s (state id %s)\n", ctx->state_dir, file, restored);
    return ORCH_EXIT_OK;
}
