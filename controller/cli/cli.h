/* The orch command line: one file per verb, each parsing its own arguments and printing its
 * results. Verbs call the controller library and decide nothing themselves; this header holds
 * what they share (global options, output formats, service references, tables). */
#ifndef ORCH_CLI_CLI_H
#define ORCH_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "spec/spec.h"
#include "store/store.h"

enum cli_output { CLI_OUTPUT_TABLE, CLI_OUTPUT_JSON };

struct cli_ctx {
    const char *state_opt; /* --state, or NULL */
    char *state_dir;       /* resolved (new) */
    char *cmdline;         /* "orch apply web.yaml": recorded as the default change message */
};

struct cli_command {
    const char *name;
    int (*run)(struct cli_ctx *ctx, int argc, char **argv);
    const char *summary;
    const char *usage; /* full help text */
};

/* Verbs: each returns the process exit code (enum orch_exit). argv[0] is the verb. */
int cli_cmd_apply(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_diff(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_get(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_status(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_scale(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_rollout(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_delete(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_daemon(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_version(struct cli_ctx *ctx, int argc, char **argv);
int cli_cmd_state(struct cli_ctx *ctx, int argc, char **argv);

extern const char cli_usage_apply[], cli_usage_diff[], cli_usage_get[], cli_usage_status[],
    cli_usage_scale[], cli_usage_rollout[], cli_usage_delete[], cli_usage_daemon[],
    cli_usage_version[], cli_usage_state[];

/* Prints "orch: MESSAGE" on stderr and returns the exit code for err's code. */
int cli_report(const struct orch_error *err);
/* Prints "orch: <formatted>" and a hint to --help on stderr; returns ORCH_EXIT_INVALID. */
int cli_usage_error(const char *verb, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Prints the usage text of a verb to stdout; returns 0. */
int cli_print_help(const char *usage);

/* Parses the options of a verb that takes only -o/--output, -h/--help and npos positional
 * arguments (stored in pos). Returns 0, CLI_HELP_SHOWN after printing the help, or the exit
 * code of a usage error (already reported). */
#define CLI_HELP_SHOWN (-1000)
int cli_parse_output_args(const char *verb, const char *usage, int argc, char **argv, size_t npos,
                          enum cli_output *output, const char **pos);

/* Parses "table" or "json". */
int cli_parse_output(const char *verb, const char *arg, enum cli_output *out);

/* Opens the store for writing / reading. Read-only opening of a state dir with no database
 * yet gives *out == NULL and 0: commands that only read show an empty state. */
int cli_store_open(struct cli_ctx *ctx, struct store **out, struct orch_error *err);
int cli_store_open_read(struct cli_ctx *ctx, struct store **out, struct orch_error *err);

/* Reads and validates a spec file ("-" for stdin). On invalid input prints every diagnostic and
 * returns ORCH_EXIT_INVALID; on success fills *app (new) and returns 0. *path_out (new) gets the
 * absolute path of the file ("-" for stdin). */
int cli_spec_load(const char *path, struct spec_app *app, char **path_out);

/* Resolves "[APP/]SERVICE" against the store: fills *app_out and *svc_out (new). When the app is
 * left out the service name must be unique across apps, else the error lists the candidates. */
int cli_service_resolve(struct store *s, const char *ref, char **app_out, char **svc_out,
                        struct orch_error *err);

/* True when ORCH_NO_CONVERGE=1: commands record the desired state and leave converging to a
 * later command or a daemon (what they do anyway when a daemon runs). */
bool cli_no_converge(void);

/* True when this command only records the desired state: a daemon runs on the state dir (it
 * converges), or ORCH_NO_CONVERGE=1. Says so on stderr once. */
bool cli_record_only(struct cli_ctx *ctx);

/* What --wait follows: one service and the revision it should reach. */
struct cli_wait_target {
    const char *app;
    const char *service;
    int64_t revision;   /* the desired revision after the change */
    int64_t rollout_id; /* its new rollout (0: none; then wait for the status to converge) */
};
/* Follows the daemon's work on targets until each converged, rolled back or failed, or the
 * timeout (0: none) passed; progress lines on stderr. Returns the exit code. */
int cli_wait(struct store *s, const struct cli_wait_target *t, size_t n, int64_t since_wall_ms,
             int64_t timeout_ms);

/* Connects to the engine (exit 3 if it does not answer) for a command that will converge. */
struct reconciler;
int cli_reconciler_open(struct store *s, int64_t timeout_ms, struct reconciler **out,
                        struct orch_error *err);
/* Drives app to its desired state and prints the final line; returns the exit code
 * (0 converged, 1 rolled back, 4 timed out, 5 failed, 3 environment). */
int cli_converge(struct reconciler *r, const char *app, bool remove_volumes);
/* The same, printing nothing on stdout when quiet; *outcome (new, may be NULL) gets
 * "converged", "rolled_back", "failed" or "timeout". */
int cli_converge_quiet(struct reconciler *r, const char *app, bool remove_volumes, bool quiet,
                       char **outcome);

/* Opens the store (read-only unless write) and resolves ref: the prologue of every verb that
 * names one service. On failure the store is closed, *s is NULL and *err says why; read-only
 * with no state yet resolves nothing (ORCH_E_NOTFOUND). */
int cli_open_service(struct cli_ctx *ctx, const char *ref, bool write, struct store **s, char **app,
                     char **svc, struct orch_error *err);

/* A simple aligned text table: add rows of strings, then print. */
struct cli_table {
    size_t ncols;
    char **cells; /* rows * ncols, owned */
    size_t nrows;
};
void cli_table_init(struct cli_table *t, size_t ncols, const char *const *headers);
void cli_table_add(struct cli_table *t, const char *const *row);
void cli_table_print(const struct cli_table *t);
void cli_table_free(struct cli_table *t);

#endif
