/* The orch command line: one file per verb, each parsing its own arguments, making one call to
 * the operations layer (ops/) and rendering its result. Verbs decide nothing and never touch the
 * store; this header holds what they share (global options, output formats, notes, tables). */
#ifndef ORCH_CLI_CLI_H
#define ORCH_CLI_CLI_H

#include <stdbool.h>
#include <stddef.h>

#include "base/error.h"
#include "spec/spec.h"
#include "ops/ops.h"

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

/* Reads and validates a spec file ("-" for stdin). On invalid input prints every diagnostic and
 * returns ORCH_EXIT_INVALID; on success fills *app (new) and returns 0. *path_out (new) gets the
 * absolute path of the file ("-" for stdin). */
int cli_spec_load(const char *path, struct spec_app *app, char **path_out);

/* How the verbs render what an operation tells while it runs (struct ops_note): log and
 * progress lines and messages on stderr, the final line of each converged app on stdout. */
struct cli_notes {
    bool quiet;                  /* -o json: no final converge lines on stdout */
    void (*recorded)(void *arg); /* prints what was recorded (may be NULL) */
    void *arg;                   /* for recorded */
};
/* Fills *out (borrowing ctx and notes, which must outlive it) for one ops call. */
void cli_ops_ctx(struct cli_ctx *ctx, struct cli_notes *notes, struct ops_ctx *out);

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
