/* `orch delete`: parses which services to forget (named, those of a file, or a whole app), then
 * one ops_delete call (one transaction, then their containers removed; the app's network goes
 * with its last service; named volumes only with `--app APP --volumes`) and its rendering. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli.h"

const char cli_usage_delete[] =
    "Usage: orch delete [APP/]SERVICE ...\n"
    "       orch delete -f FILE\n"
    "       orch delete --app APP [--volumes]\n\n"
    "Forgets the named services (or the services a spec file declares, or every service of an\n"
    "app) and stops and removes their instances (SIGTERM, then SIGKILL after stop_grace). The\n"
    "app's network is removed with its last service. Named volumes are kept unless --volumes is\n"
    "given with --app.\n\n"
    "Options:\n"
    "  -f, --file FILE   delete the services declared in FILE\n"
    "      --app APP     delete every service of APP, its network and (with --volumes) volumes\n"
    "      --volumes     with --app: also remove the app's named volumes (their data is lost)\n";

static void delete_recorded(void *arg)
{
    const struct ops_delete_result *res = arg;
    for (size_t i = 0; i < res->services.n; i++)
        printf("%s/%s: deleted\n", res->apps.v[i], res->services.v[i]);
}

int cli_cmd_delete(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"file", required_argument, NULL, 'f'},
        {"app", required_argument, NULL, 'a'},
        {"volumes", no_argument, NULL, 'v'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL, *app_opt = NULL;
    bool volumes = false;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":f:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'f':
            file = optarg;
            break;
        case 'a':
            app_opt = optarg;
            break;
        case 'v':
            volumes = true;
            break;
        case 'h':
            return cli_print_help(cli_usage_delete);
        case ':':
            return cli_usage_error("delete", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("delete", "unknown option '%s'", argv[optind - 1]);
        }
    }
    int npos = argc - optind;
    if ((file != NULL) + (app_opt != NULL) + (npos > 0) != 1)
        return cli_usage_error("delete", "give services, -f FILE or --app APP (one of them)");
    if (volumes && app_opt == NULL)
        return cli_usage_error("delete", "--volumes goes with --app APP");
    if (app_opt != NULL && !orch_is_dns_label(app_opt, SPEC_NAME_MAX))
        return cli_usage_error("delete", "'%s' is not an app name", app_opt);

    struct spec_app spec = {0};
    if (file != NULL) {
        int rc = cli_spec_load(file, &spec, NULL);
        if (rc != 0)
            return rc;
    }
    struct ops_delete_req req = {
        .refs = (const char *const *)argv + optind,
        .n_refs = (size_t)npos,
        .spec = file != NULL ? &spec : NULL,
        .app = app_opt,
        .volumes = volumes,
    };
    struct ops_delete_result res;
    struct cli_notes notes = {.recorded = delete_recorded, .arg = &res};
    struct ops_ctx octx;
    cli_ops_ctx(ctx, &notes, &octx);
    int rc = ops_delete(&octx, &req, &res);
    if (res.err.code != ORCH_E_OK)
        rc = cli_report(&res.err);
    ops_delete_result_free(&res);
    spec_app_free(&spec);
    return rc;
}
