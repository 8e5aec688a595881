/* Progress and log lines on stderr: plain lines (CI logs, the daemon) or JSON lines
 * (`--log-format json`). One writer, so lines never interleave within the process. */
#ifndef ORCH_BASE_LOG_H
#define ORCH_BASE_LOG_H

#include <stdbool.h>

enum orch_log_level { ORCH_LOG_DEBUG, ORCH_LOG_INFO, ORCH_LOG_WARN, ORCH_LOG_ERROR };
enum orch_log_format { ORCH_LOG_PLAIN, ORCH_LOG_JSON };

void orch_log_setup(enum orch_log_level min, enum orch_log_format format, bool timestamps);
void orch_log(enum orch_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

/* The format set by orch_log_setup. */
enum orch_log_format orch_log_current_format(void);

/* A progress line. On a terminal (plain format) it replaces the previous progress line in place,
 * so a rollout reads as one live line per step; elsewhere (CI logs, JSON) it is an ordinary info
 * line. The next orch_log line or orch_log_progress_end() keeps the last one on screen. */
void orch_log_progress(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void orch_log_progress_end(void);

#endif
