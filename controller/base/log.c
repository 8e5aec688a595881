/* The log writer: formats one line per call on stderr. Holds the only logging globals
 * (level and format), set once at start-up by the CLI. */
#include "log.h"
#include "util.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static enum orch_log_level log_min = ORCH_LOG_INFO;
static enum orch_log_format log_format = ORCH_LOG_PLAIN;
static bool log_timestamps;
static bool progress_open; /* a live progress line is on the terminal, without its newline */

static bool progress_live(void)
{
    return log_format == ORCH_LOG_PLAIN && isatty(STDERR_FILENO);
}

void orch_log_progress_end(void)
{
    if (!progress_open)
        return;
    fputc('\n', stderr);
    fflush(stderr);
    progress_open = false;
}

enum orch_log_format orch_log_current_format(void)
{
    return log_format;
}

void orch_log_setup(enum orch_log_level min, enum orch_log_format format, bool timestamps)
{
    log_min = min;
    log_format = format;
    log_timestamps = timestamps;
}

static const char *level_name(enum orch_log_level l)
{
    switch (l) {
    case ORCH_LOG_DEBUG:
        return "debug";
    case ORCH_LOG_INFO:
        return "info";
    case ORCH_LOG_WARN:
        return "warning";
    case ORCH_LOG_ERROR:
        return "error";
    }
    return "info";
}

static void json_escape(struct orch_buf *b, const char *s)
{
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            orch_buf_printf(b, "\\%c", c);
        else if (c < 0x20)
            orch_buf_printf(b, "\\u%04x", c);
        else
            orch_buf_putc(b, (char)c);
    }
}

void orch_log(enum orch_log_level level, const char *fmt, ...)
{
    if (level < log_min)
        return;
    struct orch_buf msg = {0};
    va_list ap;
    va_start(ap, fmt);
    orch_buf_vprintf(&msg, fmt, ap);
    va_end(ap);

    struct orch_buf line = {0};
    char ts[40] = "";
    if (log_timestamps || log_format == ORCH_LOG_JSON)
        orch_format_rfc3339(orch_now_wall_ms(), ts, sizeof(ts));
    if (log_format == ORCH_LOG_JSON) {
        orch_buf_printf(&line, "{\"time\":\"%s\",\"level\":\"%s\",\"msg\":\"", ts,
                        level_name(level));
        json_escape(&line, msg.data ? msg.data : "");
        orch_buf_puts(&line, "\"}\n");
    } else {
        if (log_timestamps)
            orch_buf_printf(&line, "%s ", ts);
        if (level >= ORCH_LOG_WARN)
            orch_buf_printf(&line, "%s: ", level_name(level));
        orch_buf_printf(&line, "%s\n", msg.data ? msg.data : "");
    }
    orch_log_progress_end();
    fwrite(line.data, 1, line.len, stderr);
    fflush(stderr);
    orch_buf_free(&line);
    orch_buf_free(&msg);
}

void orch_log_progress(const char *fmt, ...)
{
    struct orch_buf msg = {0};
    va_list ap;
    va_start(ap, fmt);
    orch_buf_vprintf(&msg, fmt, ap);
    va_end(ap);
    if (!progress_live()) {
        orch_log(ORCH_LOG_INFO, "%s", msg.data ? msg.data : "");
    } else {
        /* carriage return + erase line: the new state replaces the old one in place */
        fprintf(stderr, "\r\033[K%s", msg.data ? msg.data : "");
        fflush(stderr);
        progress_open = true;
    }
    orch_buf_free(&msg);
}
