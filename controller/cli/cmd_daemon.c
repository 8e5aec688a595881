/* `orch daemon`: the long-running controller. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

const char cli_usage_daemon[] =
    "Usage: orch daemon [--dns ADDR|off] [--dns-ttl DUR] [--domain NAME] [--resync DUR]\n\n"
    "Runs the controller: keeps every app converged, replaces failed instances and serves the\n"
    "DNS registry of healthy endpoints (default 127.0.0.1:8600, zone orch.).\n";

int cli_cmd_daemon(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
        return cli_print_help(cli_usage_daemon);
    fprintf(stderr, "orch daemon: not yet implemented\n");
    return ORCH_EXIT_INVALID;
}
