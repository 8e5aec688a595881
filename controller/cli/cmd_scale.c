/* `orch scale [APP/]SERVICE=N ...`: checks every argument, then one ops_scale call (new
 * desired counts, no new revision, the apps concerned converged) and its rendering. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "cli.h"

const char cli_usage_scale[] =
    "Usage: orch scale [APP/]SERVICE=N ...\n\n"
    "Sets the desired number of instances of one or more services (0 to 1000) and, with no\n"
    "daemon running, starts or stops instances until the count is reached. Scaling creates no\n"
    "revision. For a service with autoscale, the autoscaler may change the count later.\n";

struct scale_render {
    struct ops_scale_result *res;
    bool shown;
};

static void scale_recorded(void *arg)
{
    struct scale_render *r = arg;
    for (size_t i = 0; i < r->res->n; i++)
        printf("%s/%s: scaled %d -> %d\n", r->res->v[i].app, r->res->v[i].service,
               r->res->v[i].from, r->res->v[i].to);
    r->shown = true;
}

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

    size_t n = (size_t)argc - 1;
    struct ops_scale_item *items = orch_xcalloc(n, sizeof(*items));
    char **refs = orch_xcalloc(n, sizeof(*refs));
    for (size_t i = 0; i < n; i++) {
        const char *eq = strchr(argv[i + 1], '=');
        refs[i] = orch_xstrndup(argv[i + 1], (size_t)(eq - argv[i + 1]));
        items[i] = (struct ops_scale_item){.ref = refs[i], .replicas = atoi(eq + 1)};
    }
    struct ops_scale_result res;
    struct scale_render render = {.res = &res};
    struct cli_notes notes = {.recorded = scale_recorded, .arg = &render};
    struct ops_ctx octx;
    cli_ops_ctx(ctx, &notes, &octx);
    int rc = ops_scale(&octx, items, n, &res);
    if (res.err.code != ORCH_E_OK) {
        /* counts written before the failure were shown as they were written */
        if (!render.shown)
            scale_recorded(&render);
        rc = cli_report(&res.err);
    }
    ops_scale_result_free(&res);
    for (size_t i = 0; i < n; i++)
        free(refs[i]);
    free(refs);
    free(items);
    return rc;
}
