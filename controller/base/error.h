/* Error reporting shared by every module: a caller-owned struct orch_error that a fallible
 * function fills with a code and a message, and the mapping from codes to the CLI's exit codes
 * (docs/contract.md section 2). */
#ifndef ORCH_BASE_ERROR_H
#define ORCH_BASE_ERROR_H

#include <stddef.h>

enum orch_errc {
    ORCH_E_OK = 0,
    ORCH_E_USAGE,      /* bad command line: exit 2 */
    ORCH_E_INVALID,    /* invalid spec or argument value: exit 2 */
    ORCH_E_NOTFOUND,   /* an app, service or revision that does not exist: exit 2 */
    ORCH_E_ENV,        /* environment: engine unreachable, state dir unusable: exit 3 */
    ORCH_E_LOCKED,     /* state dir locked by another process: exit 3 */
    ORCH_E_IO,         /* a system call failed: exit 3 */
    ORCH_E_DB,         /* the state store failed: exit 3 */
    ORCH_E_DOCKER,     /* the engine refused a request: exit 5 unless rolled back */
    ORCH_E_TRANSIENT,  /* worth retrying: engine restarting, 5xx, connection refused */
    ORCH_E_TIMEOUT,    /* a wait ran out: exit 4 */
    ORCH_E_FAILED,     /* a rollout failed and was not rolled back: exit 5 */
    ORCH_E_ROLLEDBACK, /* a rollout failed and the last good revision serves again: exit 1 */
    ORCH_E_NOTIMPL,    /* the verb is not built yet: exit 2 */
    ORCH_E_INTERNAL,   /* a bug: exit 5 */
};

/* The CLI's exit codes (docs/contract.md section 2). */
enum orch_exit {
    ORCH_EXIT_OK = 0,
    ORCH_EXIT_ROLLED_BACK = 1,
    ORCH_EXIT_INVALID = 2,
    ORCH_EXIT_ENV = 3,
    ORCH_EXIT_TIMEOUT = 4,
    ORCH_EXIT_FAILED = 5,
    ORCH_EXIT_SUPERSEDED = 6,    /* a later change to the same service replaced this one */
    ORCH_EXIT_INTERRUPTED = 128, /* + the signal: 130 SIGINT, 143 SIGTERM */
};

struct orch_error {
    enum orch_errc code;
    int sys_errno; /* errno of the failed call, or 0 */
    char msg[1024];
};

/* Records a failure and returns -code: `return orch_fail(err, ORCH_E_IO, errno, "open %s", p);`
 * When sys_errno is not 0, ": strerror(sys_errno)" is appended. err may be NULL. */
int orch_fail(struct orch_error *err, enum orch_errc code, int sys_errno, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Prepends "<context>: " to the message already in *err; returns -err->code. */
int orch_wrap(struct orch_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Clears *err to ORCH_E_OK and an empty message. */
void orch_error_clear(struct orch_error *err);

/* The exit code a CLI command reports for a failure of this kind. */
enum orch_exit orch_errc_exit(enum orch_errc code);

/* A short stable name for the code ("invalid", "env", ...), for logs and JSON. */
const char *orch_errc_name(enum orch_errc code);

#endif
