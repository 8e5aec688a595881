/* orch's entry point: global options (--state, --log-format, --help), then dispatch to one verb.
 * Owns nothing but the argument vector; every verb lives in its own file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>

#include "base/log.h"
#include "base/util.h"
#include "cli.h"

static const struct cli_command commands[] = {
    {"apply", cli_cmd_apply, "create or update the services of a spec file", cli_usage_apply},
    {"diff", cli_cmd_diff, "show what apply would change", cli_usage_diff},
    {"get", cli_cmd_get, "list services", cli_usage_get},
    {"status", cli_cmd_status, "show one service and its instances", cli_usage_status},
    {"scale", cli_cmd_scale, "change the number of instances", cli_usage_scale},
    {"rollout", cli_cmd_rollout, "follow, list or undo rollouts", cli_usage_rollout},
    {"delete", cli_cmd_delete, "delete services or a whole app", cli_usage_delete},
    {"daemon", cli_cmd_daemon, "run the long-running controller", cli_usage_daemon},
    {"state", cli_cmd_state, "back up, restore or re-create the state database", cli_usage_state},
    {"version", cli_cmd_version, "print version information", cli_usage_version},
};

static void print_main_usage(FILE *f)
{
    fprintf(f, "Usage: orch [--state DIR] COMMAND [ARGS...]\n\n"
               "orch keeps the services declared in YAML spec files running on the local Docker\n"
               "engine: it starts, scales and health-checks containers and rolls out new\n"
               "revisions with automatic rollback.\n\nCommands:\n");
    for (size_t i = 0; i < ORCH_ARRAY_LEN(commands); i++)
        fprintf(f, "  %-9s %s\n", commands[i].name, commands[i].summary);
    fprintf(f, "\nGlobal options:\n"
               "  --state DIR          state directory (env ORCH_STATE; default /var/lib/orch as\n"
               "                       root, else $XDG_STATE_HOME/orch or ~/.local/state/orch)\n"
               "  --log-format FORMAT  plain (default) or json, for progress and log lines\n"
               "  -h, --help           show help; `orch COMMAND --help` for a command\n\n"
               "Exit codes: 0 done, 1 failed and rolled back, 2 invalid usage or spec,\n"
               "3 environment (engine, state dir), 4 timed out, 5 failed and not rolled back,\n"
               "6 superseded by a later change.\n");
}

/* Removes the global options from argv wherever they stand (before or after the verb), so
 * `orch apply x.yaml --state /tmp/s` works like `orch --state /tmp/s apply x.yaml`. Stops at
 * "--". Returns -1 on a malformed global option. */
static int take_global_options(int *argc, char **argv, struct cli_ctx *ctx,
                               enum orch_log_format *log_format)
{
    int out = 1;
    bool rest = false;
    for (int i = 1; i < *argc; i++) {
        const char *a = argv[i];
        const char *val = NULL;
        bool is_state = false, is_log = false;
        if (!rest && strcmp(a, "--") == 0) {
            rest = true;
        } else if (!rest && strcmp(a, "--state") == 0) {
            is_state = true;
        } else if (!rest && strncmp(a, "--state=", 8) == 0) {
            is_state = true;
            val = a + 8;
        } else if (!rest && strcmp(a, "--log-format") == 0) {
            is_log = true;
        } else if (!rest && strncmp(a, "--log-format=", 13) == 0) {
            is_log = true;
            val = a + 13;
        }
        if (!is_state && !is_log) {
            argv[out++] = argv[i];
            continue;
        }
        if (val == NULL) {
            if (i + 1 >= *argc) {
                fprintf(stderr, "orch: %s needs a value\n", a);
                return -1;
            }
            val = argv[++i];
        }
        if (is_state) {
            if (*val == '\0') {
                fprintf(stderr, "orch: --state needs a non-empty directory\n");
                return -1;
            }
            ctx->state_opt = val;
        } else if (strcmp(val, "plain") == 0) {
            *log_format = ORCH_LOG_PLAIN;
        } else if (strcmp(val, "json") == 0) {
            *log_format = ORCH_LOG_JSON;
        } else {
            fprintf(stderr, "orch: --log-format must be plain or json, not '%s'\n", val);
            return -1;
        }
    }
    argv[out] = NULL;
    *argc = out;
    return 0;
}

static char *join_cmdline(int argc, char **argv)
{
    struct orch_buf b = {0};
    orch_buf_puts(&b, "orch");
    for (int i = 1; i < argc; i++) {
        orch_buf_putc(&b, ' ');
        orch_buf_puts(&b, argv[i]);
    }
    return orch_buf_steal(&b);
}

int main(int argc, char **argv)
{
    struct cli_ctx ctx = {0};
    enum orch_log_format log_format = ORCH_LOG_PLAIN;
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "orch: cannot initialise libcurl\n");
        return ORCH_EXIT_ENV;
    }
    if (take_global_options(&argc, argv, &ctx, &log_format) < 0)
        return ORCH_EXIT_INVALID;
    orch_log_setup(ORCH_LOG_INFO, log_format, false);

    if (argc < 2) {
        print_main_usage(stderr);
        return ORCH_EXIT_INVALID;
    }
    const char *verb = argv[1];
    if (strcmp(verb, "-h") == 0 || strcmp(verb, "--help") == 0 || strcmp(verb, "help") == 0) {
        if (argc >= 3) {
            for (size_t i = 0; i < ORCH_ARRAY_LEN(commands); i++)
                if (strcmp(commands[i].name, argv[2]) == 0)
                    return cli_print_help(commands[i].usage);
        }
        print_main_usage(stdout);
        return 0;
    }
    if (strcmp(verb, "--version") == 0)
        verb = "version";

    for (size_t i = 0; i < ORCH_ARRAY_LEN(commands); i++) {
        if (strcmp(commands[i].name, verb) != 0)
            continue;
        ctx.cmdline = join_cmdline(argc, argv);
        ctx.state_dir = ops_state_dir(ctx.state_opt);
        if (ctx.state_dir == NULL) {
            fprintf(stderr, "orch: no state dir: set --state DIR or ORCH_STATE (no home folder "
                            "was found for the default)\n");
            free(ctx.cmdline);
            return ORCH_EXIT_ENV;
        }
        int rc = commands[i].run(&ctx, argc - 1, argv + 1);
        free(ctx.cmdline);
        free(ctx.state_dir);
        curl_global_cleanup();
        return rc;
    }
    const char *best = NULL;
    unsigned best_d = 3;
    for (size_t i = 0; i < ORCH_ARRAY_LEN(commands); i++) {
        unsigned d = orch_edit_distance(verb, commands[i].name);
        if (d < best_d) {
            best_d = d;
            best = commands[i].name;
        }
    }
    if (best != NULL)
        fprintf(stderr, "orch: unknown command '%s'; did you mean '%s'?\n", verb, best);
    else
        fprintf(stderr, "orch: unknown command '%s'; see 'orch --help'\n", verb);
    return ORCH_EXIT_INVALID;
}
