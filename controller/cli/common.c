/* What the verbs share: error and usage reporting, opening the store, loading spec files,
 * resolving [APP/]SERVICE and printing aligned tables. Prints to stdout/stderr; decides nothing. */
#include <errno.h>
#include <getopt.h>
#include <fcntl.h>
#include <sys/file.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "base/log.h"
#include "base/util.h"
#include "cli.h"
#include "daemon/daemon.h"
#include "reconcile/reconcile.h"

int cli_report(const struct orch_error *err)
{
    fprintf(stderr, "orch: %s\n", err->msg[0] ? err->msg : orch_errc_name(err->code));
    /* A failure reported without a code is a bug; it must never look like success. */
    if (err->code == ORCH_E_OK)
        return ORCH_EXIT_FAILED;
    return (int)orch_errc_exit(err->code);
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
    if (strcmp(arg, "table") == 0 || strcmp(arg, "wide") == 0) {
        *out = CLI_OUTPUT_TABLE;
        return 0;
    }
    if (strcmp(arg, "json") == 0) {
        *out = CLI_OUTPUT_JSON;
        return 0;
    }
    cli_usage_error(verb, "-o must be table or json, not '%s'", arg);
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

int cli_store_open(struct cli_ctx *ctx, struct store **out, struct orch_error *err)
{
    return store_open(ctx->state_dir, out, err);
}

int cli_store_open_read(struct cli_ctx *ctx, struct store **out, struct orch_error *err)
{
    *out = NULL;
    int rc = store_open_readonly(ctx->state_dir, out, err);
    if (rc == -ORCH_E_NOTFOUND) {
        orch_error_clear(err);
        *out = NULL;
        return 0;
    }
    return rc;
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

int cli_service_resolve(struct store *s, const char *ref, char **app_out, char **svc_out,
                        struct orch_error *err)
{
    const char *slash = strchr(ref, '/');
    if (slash != NULL) {
        _cleanup_free_ char *app = orch_xstrndup(ref, (size_t)(slash - ref));
        const char *svc = slash + 1;
        if (!orch_is_dns_label(app, SPEC_NAME_MAX) || !orch_is_dns_label(svc, SPEC_NAME_MAX))
            return orch_fail(err, ORCH_E_USAGE, 0, "'%s' is not APP/SERVICE", ref);
        if (s != NULL) {
            struct store_service row;
            int rc = store_service_get(s, app, svc, &row, err);
            if (rc == -ORCH_E_NOTFOUND)
                return orch_fail(err, ORCH_E_NOTFOUND, 0, "no service %s/%s", app, svc);
            if (rc < 0)
                return rc;
            store_service_free(&row);
        } else {
            return orch_fail(err, ORCH_E_NOTFOUND, 0, "no service %s/%s", app, svc);
        }
        *app_out = orch_steal(&app);
        *svc_out = orch_xstrdup(svc);
        return 0;
    }
    if (!orch_is_dns_label(ref, SPEC_NAME_MAX))
        return orch_fail(err, ORCH_E_USAGE, 0, "'%s' is not a service name", ref);
    struct store_service *v = NULL;
    size_t n = 0;
    if (s != NULL) {
        int rc = store_services_list(s, NULL, &v, &n, err);
        if (rc < 0)
            return rc;
    }
    size_t found = 0, idx = 0;
    struct orch_buf cands = {0};
    for (size_t i = 0; i < n; i++) {
        if (strcmp(v[i].name, ref) != 0)
            continue;
        orch_buf_printf(&cands, "%s%s/%s", found ? ", " : "", v[i].app, v[i].name);
        found++;
        idx = i;
    }
    int rc = 0;
    if (found == 0) {
        rc = orch_fail(err, ORCH_E_NOTFOUND, 0, "no service '%s'", ref);
    } else if (found > 1) {
        rc = orch_fail(err, ORCH_E_USAGE, 0, "service '%s' is in %zu apps; name one of: %s", ref,
                       found, cands.data);
    } else {
        *app_out = orch_xstrdup(v[idx].app);
        *svc_out = orch_xstrdup(v[idx].name);
    }
    orch_buf_free(&cands);
    store_services_free(v, n);
    return rc;
}

int cli_open_service(struct cli_ctx *ctx, const char *ref, bool write, struct store **s, char **app,
                     char **svc, struct orch_error *err)
{
    *s = NULL;
    int rc = write ? cli_store_open(ctx, s, err) : cli_store_open_read(ctx, s, err);
    if (rc == 0)
        rc = cli_service_resolve(*s, ref, app, svc, err);
    if (rc < 0 && *s != NULL) {
        store_close(*s);
        *s = NULL;
    }
    return rc;
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

bool cli_record_only(struct cli_ctx *ctx)
{
    if (cli_no_converge())
        return true;
    pid_t pid = 0;
    if (!daemon_is_running(ctx->state_dir, &pid))
        return false;
    orch_log(ORCH_LOG_INFO, "orch daemon (pid %ld) runs on %s: it converges", (long)pid,
             ctx->state_dir);
    return true;
}

int cli_wait(struct store *s, const struct cli_wait_target *t, size_t n, int64_t since_wall_ms,
             int64_t timeout_ms)
{
    int64_t start = orch_now_mono_ms();
    int worst = ORCH_EXIT_OK;
    bool *done = orch_xcalloc(n + 1, sizeof(*done));
    char **lines = orch_xcalloc(n + 1, sizeof(char *));
    size_t left = n;
    while (left > 0) {
        for (size_t i = 0; i < n; i++) {
            if (done[i])
                continue;
            struct orch_error err = {0};
            int outcome = -1; /* -1: not yet */
            struct store_rollout ro = {0};
            bool have_ro = t[i].rollout_id > 0 &&
                           store_rollout_latest(s, t[i].app, t[i].service, &ro, &err) == 0;
            struct store_status st = {0};
            bool have_st = store_status_get(s, t[i].app, t[i].service, &st, &err) == 0;
            if (have_ro && ro.id == t[i].rollout_id) {
                if (ro.state == STORE_ROLLOUT_COMPLETE)
                    outcome = ORCH_EXIT_OK;
                else if (ro.state == STORE_ROLLOUT_FAILED)
                    outcome = ORCH_EXIT_FAILED;
                else if (ro.state == STORE_ROLLOUT_ROLLED_BACK && have_st && st.converged &&
                         st.revision != t[i].revision)
                    outcome = ORCH_EXIT_ROLLED_BACK;
                if (outcome > 0)
                    fprintf(stderr, "orch: %s/%s: %s\n", t[i].app, t[i].service, ro.message);
            } else if (have_ro && ro.id != t[i].rollout_id) {
                outcome = ORCH_EXIT_OK; /* superseded by a newer change: not ours to follow */
            } else if (t[i].rollout_id == 0 && have_st && st.observed_ms >= since_wall_ms &&
                       st.converged && st.revision == t[i].revision) {
                outcome = ORCH_EXIT_OK;
            }
            if (have_st) {
                _cleanup_free_ char *line = orch_xasprintf(
                    "%s/%s: %d/%d updated, %d healthy, revision %lld", t[i].app, t[i].service,
                    st.updated, st.desired, st.healthy, (long long)st.revision);
                if (lines[i] == NULL || strcmp(lines[i], line) != 0) {
                    orch_log_progress("%s", line);
                    free(lines[i]);
                    lines[i] = orch_steal(&line);
                }
            }
            if (have_ro)
                store_rollout_free(&ro);
            if (have_st)
                store_status_free(&st);
            struct store_service row;
            int q = store_service_get(s, t[i].app, t[i].service, &row, &err);
            if (q == 0)
                store_service_free(&row);
            else if (q == -ORCH_E_NOTFOUND)
                outcome = ORCH_EXIT_OK; /* deleted meanwhile */
            if (outcome >= 0) {
                done[i] = true;
                left--;
                if (outcome > worst)
                    worst = outcome;
            }
        }
        if (left == 0)
            break;
        if (timeout_ms > 0 && orch_now_mono_ms() - start > timeout_ms) {
            orch_log_progress_end();
            fprintf(stderr, "orch: timed out waiting; the daemon goes on with the rollout\n");
            worst = ORCH_EXIT_TIMEOUT;
            break;
        }
        usleep(200 * 1000);
    }
    orch_log_progress_end();
    for (size_t i = 0; i < n; i++)
        free(lines[i]);
    free(lines);
    free(done);
    return worst;
}

bool cli_no_converge(void)
{
    const char *v = getenv("ORCH_NO_CONVERGE");
    return v != NULL && strcmp(v, "1") == 0;
}

int cli_reconciler_open(struct store *s, int64_t timeout_ms, struct reconciler **out,
                        struct orch_error *err)
{
    struct reconcile_options opts = {.timeout_ms = timeout_ms, .progress = true};
    return reconciler_new(s, &opts, out, err);
}

/* Two commands converging the same app at once would undo each other's steps: each holds an
 * exclusive lock on STATE/locks/APP.lock while it drives the app. The kernel drops the lock when
 * the process dies, so a killed command never leaves a stale one. Returns the fd, or -1. */
static int app_lock(const char *state_dir, const char *app, struct orch_error *err)
{
    _cleanup_free_ char *dir = orch_xasprintf("%s/locks", state_dir);
    _cleanup_free_ char *path = orch_xasprintf("%s/%s.lock", dir, app);
    if (mkdir(dir, 0700) < 0 && errno != EEXIST)
        return orch_fail(err, ORCH_E_ENV, errno, "cannot create %s", dir), -1;
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return orch_fail(err, ORCH_E_ENV, errno, "cannot open %s", path), -1;
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        if (errno != EWOULDBLOCK) {
            orch_fail(err, ORCH_E_ENV, errno, "cannot lock %s", path);
            close(fd);
            return -1;
        }
        orch_log(ORCH_LOG_INFO, "%s: another orch command is converging this app; waiting", app);
        if (flock(fd, LOCK_EX) < 0) {
            orch_fail(err, ORCH_E_ENV, errno, "cannot lock %s", path);
            close(fd);
            return -1;
        }
    }
    return fd;
}

int cli_converge(struct reconciler *r, const char *app, bool remove_volumes)
{
    return cli_converge_quiet(r, app, remove_volumes, false, NULL);
}

int cli_converge_quiet(struct reconciler *r, const char *app, bool remove_volumes, bool quiet,
                       char **outcome)
{
    struct reconcile_report rep;
    struct orch_error err = {0};
    int lock = app_lock(store_dir(reconciler_store(r)), app, &err);
    if (lock < 0)
        return cli_report(&err);
    int rc = reconcile_app(r, app, remove_volumes, &rep, &err);
    close(lock);
    orch_log_progress_end();
    if (rc < 0)
        return cli_report(&err);
    static const char *const names[] = {
        [RECONCILE_CONVERGED] = "converged",
        [RECONCILE_ROLLED_BACK] = "rolled_back",
        [RECONCILE_FAILED] = "failed",
        [RECONCILE_TIMEOUT] = "timeout",
    };
    if (outcome != NULL)
        *outcome = orch_xstrdup(names[rep.outcome]);
    /* the final line says what happened: on stdout for success, on stderr with the reason
     * otherwise (and a short verdict on stdout) */
    int code = ORCH_EXIT_FAILED;
    switch (rep.outcome) {
    case RECONCILE_CONVERGED:
        code = ORCH_EXIT_OK;
        break;
    case RECONCILE_ROLLED_BACK:
        code = ORCH_EXIT_ROLLED_BACK;
        break;
    case RECONCILE_TIMEOUT:
        code = ORCH_EXIT_TIMEOUT;
        break;
    case RECONCILE_FAILED:
        code = ORCH_EXIT_FAILED;
        break;
    }
    if (code != ORCH_EXIT_OK)
        fprintf(stderr, "orch: %s\n", rep.message);
    if (!quiet) {
        if (code == ORCH_EXIT_OK)
            printf("%s\n", rep.message);
        else if (code != ORCH_EXIT_TIMEOUT)
            printf("%s: %s\n", app, code == ORCH_EXIT_ROLLED_BACK ? "rolled back" : "failed");
    }
    return code;
}
