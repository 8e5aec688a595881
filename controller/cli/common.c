/* What the verbs share: error and usage reporting, loading spec files, rendering the notes of
 * an operation and printing aligned tables. Prints to stdout/stderr; decides nothing. */
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "cli.h"

int cli_report(const struct orch_error *err)
{
    fprintf(stderr, "orch: %s\n", ops_error_text(err));
    /* A failure reported without a code is a bug; it must never look like success. */
    return ops_error_exit(err);
}

int cli_usage_error(const char *verb, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "orch %s: ", verb);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\nSee 'orch %s --help'.\n", verb);
    return ORCH_EXIT_INVALID;
}

int cli_print_help(const char *usage)
{
    fputs(usage, stdout);
    return ORCH_EXIT_OK;
}

int cli_parse_output(const char *verb, const char *arg, enum cli_output *out)
{
    if (strcmp(arg, "table") == 0 || strcmp(arg, "text") == 0 || strcmp(arg, "wide") == 0) {
        *out = CLI_OUTPUT_TABLE;
        return 0;
    }
    if (strcmp(arg, "json") == 0) {
        *out = CLI_OUTPUT_JSON;
        return 0;
    }
    cli_usage_error(verb, "-o must be table (or text) or json, not '%s'", arg);
    return -1;
}

int cli_parse_output_args(const char *verb, const char *usage, int argc, char **argv, size_t npos,
                          enum cli_output *output, const char **pos)
{
    static const struct option long_opts[] = {
        {"output", required_argument, NULL, 'o'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    *output = CLI_OUTPUT_TABLE;
    optind = 0;
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, ":o:h", long_opts, NULL)) != -1) {
        switch (c) {
        case 'o':
            if (cli_parse_output(verb, optarg, output) < 0)
                return ORCH_EXIT_INVALID;
            break;
        case 'h':
            cli_print_help(usage);
            return CLI_HELP_SHOWN;
        case ':':
            return cli_usage_error(verb, "option '%s' needs a value", argv[optind - 1]);
        default:
            return cli_usage_error(verb, "unknown option '%s'", argv[optind - 1]);
        }
    }
    if ((size_t)(argc - optind) != npos) {
        if (npos == 0)
            return cli_usage_error(verb, "unexpected argument '%s'", argv[optind]);
        return cli_usage_error(verb, "expected one [APP/]SERVICE");
    }
    for (size_t i = 0; i < npos; i++)
        pos[i] = argv[optind + (int)i];
    return 0;
}

/* Reads at most max bytes of f; a larger input is cut at max + 1 bytes so the parser can
 * refuse it with a positioned message instead of us reading gigabytes. */
static int read_all(FILE *f, size_t max, char **out, size_t *len)
{
    struct orch_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0) {
        orch_buf_append(&b, chunk, n);
        if (b.len > max)
            break;
    }
    if (ferror(f)) {
        orch_buf_free(&b);
        return -1;
    }
    *len = b.len;
    *out = orch_buf_steal(&b);
    return 0;
}

int cli_spec_load(const char *path, struct spec_app *app, char **path_out)
{
    _cleanup_free_ char *text = NULL;
    _cleanup_free_ char *abs = NULL;
    _cleanup_free_ char *base = NULL;
    size_t len = 0;
    FILE *f;
    if (strcmp(path, "-") == 0) {
        f = stdin;
        abs = orch_xstrdup("-");
        char cwd[PATH_MAX];
        base = orch_xstrdup(getcwd(cwd, sizeof(cwd)) ? cwd : "/");
    } else {
        f = fopen(path, "rb");
        if (f == NULL) {
            fprintf(stderr, "orch: cannot read spec file %s: %s\n", path, strerror(errno));
            return ORCH_EXIT_INVALID;
        }
        struct stat st;
        if (fstat(fileno(f), &st) == 0 && !S_ISREG(st.st_mode) && !S_ISFIFO(st.st_mode) &&
            !S_ISSOCK(st.st_mode)) {
            fprintf(stderr, "orch: spec file %s is not a regular file (%s); nothing was changed\n",
                    path, S_ISDIR(st.st_mode) ? "a directory" : "a device");
            fclose(f);
            return ORCH_EXIT_INVALID;
        }
        char resolved[PATH_MAX];
        abs = orch_xstrdup(realpath(path, resolved) ? resolved : path);
        char *slash = strrchr(abs, '/');
        base =
            slash && slash != abs ? orch_xstrndup(abs, (size_t)(slash - abs)) : orch_xstrdup("/");
    }
    int rc = read_all(f, SPEC_MAX_INPUT, &text, &len);
    int saved = errno;
    if (f != stdin)
        fclose(f);
    if (rc < 0) {
        fprintf(stderr, "orch: cannot read spec file %s: %s\n", path, strerror(saved));
        return ORCH_EXIT_INVALID;
    }

    struct spec_parse_options opts = {.file = path, .base_dir = base};
    struct spec_diags diags = {0};
    struct orch_error err = {0};
    if (spec_parse(text, len, &opts, app, &diags, &err) < 0) {
        _cleanup_free_ char *msgs = spec_diags_format(&diags, path);
        fputs(msgs, stderr);
        fprintf(stderr, "orch: %s: %zu error%s; nothing was changed\n", path, diags.n,
                diags.n == 1 ? "" : "s");
        spec_diags_free(&diags);
        return ORCH_EXIT_INVALID;
    }
    spec_diags_free(&diags);
    if (path_out)
        *path_out = orch_steal(&abs);
    return 0;
}

void cli_table_init(struct cli_table *t, size_t ncols, const char *const *headers)
{
    memset(t, 0, sizeof(*t));
    t->ncols = ncols;
    cli_table_add(t, headers);
}

void cli_table_add(struct cli_table *t, const char *const *row)
{
    t->cells = orch_xrealloc(t->cells, (t->nrows + 1) * t->ncols * sizeof(char *));
    for (size_t c = 0; c < t->ncols; c++)
        t->cells[t->nrows * t->ncols + c] = orch_xstrdup(row[c] ? row[c] : "");
    t->nrows++;
}

void cli_table_print(const struct cli_table *t)
{
    size_t width[32] = {0};
    for (size_t r = 0; r < t->nrows; r++)
        for (size_t c = 0; c < t->ncols && c < 32; c++) {
            size_t w = strlen(t->cells[r * t->ncols + c]);
            if (w > width[c])
                width[c] = w;
        }
    for (size_t r = 0; r < t->nrows; r++) {
        for (size_t c = 0; c < t->ncols; c++) {
            const char *cell = t->cells[r * t->ncols + c];
            if (c + 1 == t->ncols)
                printf("%s\n", cell);
            else
                printf("%-*s  ", (int)width[c < 32 ? c : 31], cell);
        }
    }
}

void cli_table_free(struct cli_table *t)
{
    for (size_t i = 0; i < t->nrows * t->ncols; i++)
        free(t->cells[i]);
    free(t->cells);
    memset(t, 0, sizeof(*t));
}

/* Renders one note of an operation as the verbs always printed it. */
static void cli_note(void *arg, const struct ops_note *n)
{
    struct cli_notes *notes = arg;
    switch (n->kind) {
    case OPS_NOTE_INFO:
        orch_log(ORCH_LOG_INFO, "%s", n->text);
        break;
    case OPS_NOTE_PROGRESS:
        orch_log_progress("%s", n->text);
        break;
    case OPS_NOTE_PROGRESS_END:
        orch_log_progress_end();
        break;
    case OPS_NOTE_MESSAGE:
        fprintf(stderr, "orch: %s\n", n->text);
        break;
    case OPS_NOTE_SKIPPED:
        fprintf(stderr, "orch delete: %s/%s: not found, nothing to delete\n", n->app, n->service);
        break;
    case OPS_NOTE_RECORDED:
        if (notes->recorded != NULL)
            notes->recorded(notes->arg);
        fflush(stdout);
        break;
    case OPS_NOTE_CONVERGED: {
        /* the final line says what happened: on stdout for success, a short verdict otherwise
         * (the reason went to stderr as a message) */
        const struct ops_converge_result *c = n->converge;
        if (notes->quiet)
            break;
        if (c->exit_code == ORCH_EXIT_OK)
            printf("%s\n", c->message);
        else if (c->exit_code != ORCH_EXIT_TIMEOUT)
            printf("%s: %s\n", c->app,
                   c->exit_code == ORCH_EXIT_ROLLED_BACK  ? "rolled back"
                   : c->exit_code == ORCH_EXIT_SUPERSEDED ? "superseded"
                                                          : "failed");
        break;
    }
    }
}

/* The first SIGINT or SIGTERM asks the operation to stop (ops_ctx.interrupt): it lets the
 * engine requests in flight finish and says how to resume; a second one exits at once. */
static volatile sig_atomic_t cli_signal;

static void on_signal(int sig)
{
    if (cli_signal != 0)
        _exit(ORCH_EXIT_INTERRUPTED + sig);
    cli_signal = sig;
    static const char msg[] = "\norch: stopping: waiting for the engine requests in flight "
                              "(signal again to exit at once)\n";
    ssize_t w = write(STDERR_FILENO, msg, sizeof(msg) - 1);
    (void)w;
}

static void signals_install(void)
{
    static bool done;
    if (done)
        return;
    done = true;
    struct sigaction sa;
    memset(&sa, 0, sizeof(sa));
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: a wait for the app lock ends at once */
    sigaction(SIGINT, &sa, NULL);
    sigaction(SIGTERM, &sa, NULL);
}

void cli_ops_ctx(struct cli_ctx *ctx, struct cli_notes *notes, struct ops_ctx *out)
{
    signals_install();
    *out = (struct ops_ctx){
        .interrupt = &cli_signal,
        .state_dir = ctx->state_dir,
        .actor = ctx->cmdline,
        .note = cli_note,
        .note_arg = notes,
        .live_progress = true,
    };
}
