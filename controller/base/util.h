/* Small helpers every module uses: allocation that aborts on exhaustion (as crun's xmalloc
 * and redis' zmalloc do: an orchestrator that cannot allocate a few bytes cannot recover),
 * cleanup attributes for locals, a growable byte buffer and string helpers. No I/O. */
#ifndef ORCH_BASE_UTIL_H
#define ORCH_BASE_UTIL_H

#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#define ORCH_ARRAY_LEN(a) (sizeof(a) / sizeof((a)[0]))

/* New memory; never NULL (aborts on exhaustion). */
void *orch_xmalloc(size_t n);
void *orch_xcalloc(size_t nmemb, size_t size);
void *orch_xrealloc(void *p, size_t n);
char *orch_xstrdup(const char *s); /* NULL in, NULL out */
char *orch_xstrndup(const char *s, size_t n);
char *orch_xasprintf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* Hands ownership out of a cleanup-managed local: `return orch_steal(&p);` */
static inline void *orch_steal_ptr(void *pp)
{
    void **p = (void **)pp;
    void *v = *p;
    *p = NULL;
    return v;
}
#define orch_steal(pp) orch_steal_ptr(pp)

static inline void orch_freep(void *p)
{
    free(*(void **)p);
}
static inline void orch_fclosep(FILE **f)
{
    if (*f != NULL)
        fclose(*f);
}
#define _cleanup_free_ __attribute__((cleanup(orch_freep)))
#define _cleanup_fclose_ __attribute__((cleanup(orch_fclosep)))

/* A file descriptor local closed on every way out of its scope (negative = none); errno is
 * kept, so `return orch_fail(err, ..., errno, ...)` after a failed call still names the
 * cause. Hand it out with orch_steal_fd. */
static inline void orch_closep(int *fd)
{
    if (*fd >= 0) {
        int saved = errno;
        close(*fd);
        errno = saved;
    }
}
#define _cleanup_close_ __attribute__((cleanup(orch_closep)))

/* Hands a descriptor out of a _cleanup_close_ local: `return orch_steal_fd(&fd);` */
static inline int orch_steal_fd(int *fd)
{
    int r = *fd;
    *fd = -1;
    return r;
}

/* A growable byte buffer, always NUL-terminated once anything was appended. */
struct orch_buf {
    char *data;
    size_t len;
    size_t cap;
};

void orch_buf_append(struct orch_buf *b, const void *data, size_t len);
void orch_buf_puts(struct orch_buf *b, const char *s);
void orch_buf_putc(struct orch_buf *b, char c);
void orch_buf_printf(struct orch_buf *b, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
void orch_buf_vprintf(struct orch_buf *b, const char *fmt, va_list ap)
    __attribute__((format(printf, 2, 0)));
/* Taken: the buffer's bytes (never NULL); the buffer is empty afterwards. */
char *orch_buf_steal(struct orch_buf *b);
void orch_buf_free(struct orch_buf *b);

/* A list of owned strings. */
struct orch_strv {
    char **v;
    size_t n;
};
void orch_strv_push(struct orch_strv *sv, const char *s); /* copies s */
void orch_strv_free(struct orch_strv *sv);
bool orch_strv_contains(const struct orch_strv *sv, const char *s);

/* Levenshtein distance between two short strings (capped at 255). */
unsigned orch_edit_distance(const char *a, const char *b);

/* True when s is a DNS label: [a-z0-9]([a-z0-9-]*[a-z0-9])? of at most max_len bytes. */
bool orch_is_dns_label(const char *s, size_t max_len);

/* Milliseconds of CLOCK_MONOTONIC / CLOCK_REALTIME. The only clock readers: pure modules take
 * now_ms as an argument instead. */
int64_t orch_now_mono_ms(void);
int64_t orch_now_wall_ms(void);

/* Formats a wall-clock time (ms since the epoch) as RFC 3339 UTC into out (>= 32 bytes). */
void orch_format_rfc3339(int64_t wall_ms, char *out, size_t out_len);

/* Formats a duration in ms as the spec's syntax ("1m30s", "500ms", "0s") into out. */
void orch_format_duration(int64_t ms, char *out, size_t out_len);

#endif
