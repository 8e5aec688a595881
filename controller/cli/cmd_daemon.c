/* `orch daemon`: parses the daemon's options and runs it on the state dir. */
#include <getopt.h>
#include <stdio.h>
#include <stdbool.h>
#include <string.h>

#include "base/log.h"
#include "cli.h"
#include "daemon/daemon.h"

const char cli_usage_daemon[] =
    "Usage: orch daemon [--dns ADDR|off] [--dns-ttl DUR] [--domain NAME] [--resync DUR]\n"
    "                   [--autoscale-sync DUR|off]\n\n"
    "Runs the controller in the foreground: keeps every app of the state dir converged,\n"
    "replaces instances that exit, disappear or stay unhealthy (with exponential backoff for\n"
    "crash loops), and finishes rollouts that CLI commands record. One daemon per state dir;\n"
    "while it runs, apply/scale/delete/rollout undo record the desired state and return (or\n"
    "follow the rollout with --wait). SIGTERM or SIGINT stops it and leaves the containers\n"
    "running; a restarted daemon adopts them.\n\n"
    "Options:\n"
    "  --resync DUR     reconcile every app at least this often (default 10s)\n"
    "  --dns ADDR|off   DNS registry listener, UDP and TCP (default 127.0.0.1:8600)\n"
    "  --dns-ttl DUR    TTL of DNS answers (default 5s); a stopping instance leaves the\n"
    "                   registry this long before it is stopped\n"
    "  --domain NAME    DNS zone (default orch.)\n"
    "  --autoscale-sync DUR|off\n"
    "                   how often the autoscaler measures and decides for services with\n"
    "                   autoscale (default 5s; 0 or off: no autoscaling)\n"
    "Logs go to stderr, one line per event; --log-format json gives JSON lines.\n";

int cli_cmd_daemon(struct cli_ctx *ctx, int argc, char **argv)
{
    static const struct option long_opts[] = {
        {"resync", required_argument, NULL, 'r'},
        {"dns", required_argument, NULL, 'd'},
        {"dns-ttl", required_argument, NULL, 't'},
        {"domain", required_argument, NULL, 'z'},
        {"autoscale-sync", required_argument, NULL, 'a'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct daemon_options opts = {.resync_ms = 10000, .dns_ttl_ms = 5000};
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'r':
            if (spec_parse_duration(optarg, &opts.resync_ms) < 0 || opts.resync_ms < 100)
                return cli_usage_error("daemon",
                                       "--resync: '%s' is not a duration of at least "
                                       "100ms",
                                       optarg);
            break;
        case 'a':
            if (strcmp(optarg, "off") == 0)
                opts.autoscale_sync_ms = -1;
            else if (spec_parse_duration(optarg, &opts.autoscale_sync_ms) < 0 ||
                     (opts.autoscale_sync_ms != 0 && opts.autoscale_sync_ms < 100) ||
                     opts.autoscale_sync_ms > 3600000)
                return cli_usage_error("daemon",
                                       "--autoscale-sync: '%s' is not off or a duration from "
                                       "100ms to 1h",
                                       optarg);
            else if (opts.autoscale_sync_ms == 0)
                opts.autoscale_sync_ms = -1;
            break;
        case 'd':
            opts.dns_listen = optarg;
            break;
        case 't':
            if (spec_parse_duration(optarg, &opts.dns_ttl_ms) < 0 || opts.dns_ttl_ms < 1000 ||
                opts.dns_ttl_ms > 3600000)
                return cli_usage_error("daemon",
                                       "--dns-ttl: '%s' is not a duration from 1s to "
                                       "1h",
                                       optarg);
            break;
        case 'z': {
            size_t len = strlen(optarg);
            bool ok = len > 0 && len < 200;
            for (size_t i = 0; ok && i < len; i++) {
                char ch = optarg[i];
                ok = (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
                     (ch == '.' && i > 0 && optarg[i - 1] != '.');
            }
            if (!ok)
                return cli_usage_error("daemon",
                                       "--domain: '%s' is not a domain name like "
                                       "orch. or svc.example.",
                                       optarg);
            opts.domain = optarg;
            break;
        }
        case 'h':
            return cli_print_help(cli_usage_daemon);
        case ':':
            return cli_usage_error("daemon", "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error("daemon", "unknown option '%s'", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return cli_usage_error("daemon", "unexpected argument '%s'", argv[optind]);

    struct orch_error err = {0};
    struct store *s = NULL;
    struct ops_ctx octx = {.state_dir = ctx->state_dir, .actor = ctx->cmdline};
    if (ops_state_open(&octx, &s, &err) < 0)
        return cli_report(&err);
    orch_log_setup(ORCH_LOG_INFO, orch_log_current_format(), true);
    int rc = daemon_run(s, &opts, &err);
    ops_state_close(s);
    if (rc < 0)
        return cli_report(&err);
    return ORCH_EXIT_OK;
}
