/* `orch delete`: forget services (named, those of a file, or a whole app) in one transaction,
 * then remove their containers; the app's network goes with its last service. Named volumes are
 * kept unless `--app APP --volumes` asks for them. */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli.h"
#include "reconcile/reconcile.h"

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

    struct orch_error err = {0};
    struct store *s = NULL;
    struct reconciler *rec = NULL;
    struct orch_strv apps = {0}, svcs = {0}; /* parallel: what to delete */
    struct orch_strv touched = {0};          /* apps to converge */
    int rc = 0;

    struct spec_app spec = {0};
    if (file != NULL) {
        rc = cli_spec_load(file, &spec, NULL);
        if (rc != 0)
            return rc;
    }
    rc = cli_store_open(ctx, &s, &err);
    if (rc == 0 && file != NULL) {
        for (size_t i = 0; i < spec.services_len; i++) {
            struct store_service row;
            int q = store_service_get(s, spec.app, spec.services[i].name, &row, &err);
            if (q == 0) {
                orch_strv_push(&apps, spec.app);
                orch_strv_push(&svcs, spec.services[i].name);
                store_service_free(&row);
            } else if (q == -ORCH_E_NOTFOUND) {
                fprintf(stderr, "orch delete: %s/%s: not found, nothing to delete\n", spec.app,
                        spec.services[i].name);
                orch_error_clear(&err);
            } else {
                rc = q;
                break;
            }
        }
        orch_strv_push(&touched, spec.app);
    } else if (rc == 0 && app_opt != NULL) {
        struct store_service *v = NULL;
        size_t n = 0;
        rc = store_services_list(s, app_opt, &v, &n, &err);
        for (size_t i = 0; rc == 0 && i < n; i++) {
            orch_strv_push(&apps, v[i].app);
            orch_strv_push(&svcs, v[i].name);
        }
        store_services_free(v, n);
        orch_strv_push(&touched, app_opt);
    } else if (rc == 0) {
        for (int i = optind; rc == 0 && i < argc; i++) {
            char *a = NULL, *sv = NULL;
            rc = cli_service_resolve(s, argv[i], &a, &sv, &err);
            if (rc == 0) {
                orch_strv_push(&apps, a);
                orch_strv_push(&svcs, sv);
                if (!orch_strv_contains(&touched, a))
                    orch_strv_push(&touched, a);
            }
            free(a);
            free(sv);
        }
    }
    if (rc == 0 && !cli_record_only(ctx))
        rc = cli_reconciler_open(s, 0, &rec, &err);
    if (rc == 0)
        rc = store_begin(s, &err);
    int64_t now = orch_now_wall_ms();
    for (size_t i = 0; rc == 0 && i < svcs.n; i++) {
        rc = store_service_delete(s, apps.v[i], svcs.v[i], &err);
        if (rc == 0)
            rc = store_event_add(s, apps.v[i], svcs.v[i], "deleted", ctx->cmdline, now, &err);
    }
    /* an app with no service left is forgotten too */
    for (size_t i = 0; rc == 0 && i < touched.n; i++) {
        struct store_service *v = NULL;
        size_t n = 0;
        rc = store_services_list(s, touched.v[i], &v, &n, &err);
        store_services_free(v, n);
        if (rc == 0 && n == 0) {
            int q = store_app_delete(s, touched.v[i], &err);
            if (q == -ORCH_E_NOTFOUND)
                orch_error_clear(&err);
            else
                rc = q;
        }
    }
    if (rc == 0)
        rc = store_commit(s, &err);
    else if (s != NULL)
        store_rollback(s);

    int exit_code = rc < 0 ? cli_report(&err) : ORCH_EXIT_OK;
    for (size_t i = 0; rc == 0 && i < svcs.n; i++)
        printf("%s/%s: deleted\n", apps.v[i], svcs.v[i]);
    fflush(stdout);
    for (size_t i = 0; rc == 0 && rec && i < touched.n; i++) {
        int e = cli_converge(rec, touched.v[i], volumes);
        if (e > exit_code)
            exit_code = e;
    }
    orch_strv_free(&apps);
    orch_strv_free(&svcs);
    orch_strv_free(&touched);
    spec_app_free(&spec);
    reconciler_free(rec);
    if (s)
        store_close(s);
    return exit_code;
}
