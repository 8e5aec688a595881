/* Error values: formatting messages into a caller-owned struct orch_error and mapping
 * codes to exit codes. No allocation, so it works when memory is short. */
#include "error.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

int orch_fail(struct orch_error *err, enum orch_errc code, int sys_errno, const char *fmt, ...)
{
    if (err == NULL)
        return -(int)code;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(err->msg, sizeof(err->msg), fmt, ap);
    va_end(ap);
    if (n < 0)
        err->msg[0] = '\0';
    if (sys_errno != 0) {
        size_t len = strlen(err->msg);
        snprintf(err->msg + len, sizeof(err->msg) - len, ": %s", strerror(sys_errno));
    }
    err->code = code;
    err->sys_errno = sys_errno;
    return -(int)code;
}

int orch_wrap(struct orch_error *err, const char *fmt, ...)
{
    if (err == NULL)
        return -(int)ORCH_E_INTERNAL;
    char prefix[512];
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(prefix, sizeof(prefix), fmt, ap);
    va_end(ap);
    if (n < 0)
        prefix[0] = '\0';
    /* Shift the old message right and put "prefix: " in front, truncating at the end. */
    size_t plen = strlen(prefix) + 2;
    size_t cap = sizeof(err->msg) - 1;
    if (plen > cap)
        plen = cap;
    size_t olen = strnlen(err->msg, cap);
    if (olen > cap - plen)
        olen = cap - plen;
    memmove(err->msg + plen, err->msg, olen);
    err->msg[plen + olen] = '\0';
    memcpy(err->msg, prefix, plen - 2);
    err->msg[plen - 2] = ':';
    err->msg[plen - 1] = ' ';
    if (err->code == ORCH_E_OK)
        err->code = ORCH_E_INTERNAL;
    return -(int)err->code;
}

void orch_error_clear(struct orch_error *err)
{
    if (err == NULL)
        return;
    err->code = ORCH_E_OK;
    err->sys_errno = 0;
    err->msg[0] = '\0';
}

enum orch_exit orch_errc_exit(enum orch_errc code)
{
    switch (code) {
    case ORCH_E_OK:
        return ORCH_EXIT_OK;
    case ORCH_E_USAGE:
    case ORCH_E_INVALID:
    case ORCH_E_NOTFOUND:
    case ORCH_E_NOTIMPL:
        return ORCH_EXIT_INVALID;
    case ORCH_E_ENV:
    case ORCH_E_LOCKED:
    case ORCH_E_IO:
    case ORCH_E_DB:
    case ORCH_E_TRANSIENT:
        return ORCH_EXIT_ENV;
    case ORCH_E_TIMEOUT:
        return ORCH_EXIT_TIMEOUT;
    case ORCH_E_ROLLEDBACK:
        return ORCH_EXIT_ROLLED_BACK;
    case ORCH_E_DOCKER:
    case ORCH_E_FAILED:
    case ORCH_E_INTERNAL:
        return ORCH_EXIT_FAILED;
    }
    return ORCH_EXIT_FAILED;
}

const char *orch_errc_name(enum orch_errc code)
{
    static const char *const names[] = {
        [ORCH_E_OK] = "ok",
        [ORCH_E_USAGE] = "usage",
        [ORCH_E_INVALID] = "invalid",
        [ORCH_E_NOTFOUND] = "not_found",
        [ORCH_E_ENV] = "environment",
        [ORCH_E_LOCKED] = "locked",
        [ORCH_E_IO] = "io",
        [ORCH_E_DB] = "store",
        [ORCH_E_DOCKER] = "docker",
        [ORCH_E_TRANSIENT] = "transient",
        [ORCH_E_TIMEOUT] = "timeout",
        [ORCH_E_FAILED] = "failed",
        [ORCH_E_ROLLEDBACK] = "rolled_back",
        [ORCH_E_NOTIMPL] = "not_implemented",
        [ORCH_E_INTERNAL] = "internal",
    };
    if ((size_t)code < sizeof(names) / sizeof(names[0]) && names[code] != NULL)
        return names[code];
    return "unknown";
}
