/* `orch scale [APP/]SERVICE=N ...`: change desired replica counts (no new revision), then
 * converge the apps concerned. Every argument is checked before anything is stored. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli.h"
#include "reconcile/reconcile.h"

const char cli_usage_scale[] =
    "Usage: orch scale [APP/]SERVICE=N ...\n\n"
    "Sets the desired number of instances of one or more services (0 to 1000) and, with no\n"
    "daemon running, starts or stops instances until the count is reached. Scaling creates no\n"
    "revision. For a service with autoscale, the autoscaler may change the count later.\n";

struct scale_arg {
    char *app;
    char *svc;
    int replicas;
};

int cli_cmd_scale(struct cli_ctx *ctx, int argc, char **argv)
{
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
        return cli_print_help(cli_usage_scale);
    if (argc < 2)
        return cli_usage_error("scale", "expected [APP/]SERVICE=N");
    for (int i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        if (argv[i][0] == '-' || eq == NULL)
            return cli_usage_error("scale", "'%s' is not [APP/]SERVICE=N", argv[i]);
        char *end = NULL;
        long n = strtol(eq + 1, &end, 10);
        if (eq[1] == '\0' || *end != '\0' || n < 0 || n > SPEC_MAX_REPLICAS)
            return cli_usage_error("scale", "'%s': the count must be a whole number from 0 to %d",
                                   argv[i], SPEC_MAX_REPLICAS);
    }

    struct orch_error err = {0};
    struct store *s = NULL;
    struct reconciler *rec = NULL;
    size_t n = (size_t)argc - 1;
    struct scale_arg *args = orch_xcalloc(n, sizeof(*args));
    int rc = cli_store_open(ctx, &s, &err);
    for (size_t i = 0; rc == 0 && i < n; i++) {
        const char *a = argv[i + 1];
        const char *eq = strchr(a, '=');
        _cleanup_free_ char *ref = orch_xstrndup(a, (size_t)(eq - a));
        args[i].replicas = atoi(eq + 1);
        rc = cli_service_resolve(s, ref, &args[i].app, &args[i].svc, &err);
    }
    if (rc == 0 && !cli_record_only(ctx))
        rc = cli_reconciler_open(s, 0, &rec, &err);
    if (rc == 0)
        rc = store_begin(s, &err);
    int64_t now = orch_now_wall_ms();
    for (size_t i = 0; rc == 0 && i < n; i++) {
        struct store_service row;
        rc = store_service_get(s, args[i].app, args[i].svc, &row, &err);
        if (rc < 0)
            break;
        int before = row.replicas;
        row.replicas = args[i].replicas;
        row.updated_ms = now;
        rc = store_service_put(s, &row, &err);
        store_service_free(&row);
        if (rc == 0) {
            _cleanup_free_ char *msg =
                orch_xasprintf("scaled from %d to %d (orch scale)", before, args[i].replicas);
            rc = store_event_add(s, args[i].app, args[i].svc, "scaled", msg, now, &err);
        }
        if (rc == 0)
            printf("%s/%s: scaled %d -> %d\n", args[i].app, args[i].svc, before, args[i].replicas);
    }
    if (rc == 0)
        rc = store_commit(s, &err);
    else if (s != NULL)
        store_rollback(s);

    int exit_code = rc < 0 ? cli_report(&err) : ORCH_EXIT_OK;
    fflush(stdout);
    for (size_t i = 0; rc == 0 && rec && i < n; i++) {
        bool seen = false;
        for (size_t j = 0; j < i; j++)
            if (strcmp(args[j].app, args[i].app) == 0)
                seen = true;
        if (seen)
            continue;
        int e = cli_converge(rec, args[i].app, false);
        if (e > exit_code)
            exit_code = e;
    }
    for (size_t i = 0; i < n; i++) {
        free(args[i].app);
        free(args[i].svc);
    }
    free(args);
    reconciler_free(rec);
    if (s)
        store_close(s);
    return exit_code;
}
