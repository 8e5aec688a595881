/* Allocation, buffers, string helpers and the clock readers. Owns no global state. */
#include "util.h"

#include <string.h>
#include <time.h>

static void orch_oom(size_t n)
{
    fprintf(stderr, "orch: out of memory allocating %zu bytes\n", n);
    abort();
}

void *orch_xmalloc(size_t n)
{
    void *p = malloc(n ? n : 1);
    if (p == NULL)
        orch_oom(n);
    return p;
}

void *orch_xcalloc(size_t nmemb, size_t size)
{
    void *p = calloc(nmemb ? nmemb : 1, size ? size : 1);
    if (p == NULL)
        orch_oom(nmemb * size);
    return p;
}

void *orch_xrealloc(void *p, size_t n)
{
    void *q = realloc(p, n ? n : 1);
    if (q == NULL)
        orch_oom(n);
    return q;
}

char *orch_xstrdup(const char *s)
{
    if (s == NULL)
        return NULL;
    return orch_xstrndup(s, strlen(s));
}

char *orch_xstrndup(const char *s, size_t n)
{
    char *p = orch_xmalloc(n + 1);
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

char *orch_xasprintf(const char *fmt, ...)
{
    struct orch_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    orch_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    return orch_buf_steal(&b);
}

static void orch_buf_reserve(struct orch_buf *b, size_t extra)
{
    size_t need = b->len + extra + 1;
    if (need <= b->cap)
        return;
    size_t cap = b->cap ? b->cap : 64;
    while (cap < need)
        cap *= 2;
    b->data = orch_xrealloc(b->data, cap);
    b->cap = cap;
}

void orch_buf_append(struct orch_buf *b, const void *data, size_t len)
{
    orch_buf_reserve(b, len);
    if (len > 0)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
}

void orch_buf_puts(struct orch_buf *b, const char *s)
{
    orch_buf_append(b, s, strlen(s));
}

void orch_buf_putc(struct orch_buf *b, char c)
{
    orch_buf_append(b, &c, 1);
}

void orch_buf_vprintf(struct orch_buf *b, const char *fmt, va_list ap)
{
    va_list ap2;
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        return;
    orch_buf_reserve(b, (size_t)n);
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
}

void orch_buf_printf(struct orch_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    orch_buf_vprintf(b, fmt, ap);
    va_end(ap);
}

char *orch_buf_steal(struct orch_buf *b)
{
    if (b->data == NULL)
        return orch_xstrdup("");
    char *p = b->data;
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void orch_buf_free(struct orch_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

void orch_strv_push(struct orch_strv *sv, const char *s)
{
    sv->v = orch_xrealloc(sv->v, (sv->n + 2) * sizeof(char *));
    sv->v[sv->n++] = orch_xstrdup(s);
    sv->v[sv->n] = NULL;
}

void orch_strv_free(struct orch_strv *sv)
{
    for (size_t i = 0; i < sv->n; i++)
        free(sv->v[i]);
    free(sv->v);
    sv->v = NULL;
    sv->n = 0;
}

bool orch_strv_contains(const struct orch_strv *sv, const char *s)
{
    for (size_t i = 0; i < sv->n; i++)
        if (strcmp(sv->v[i], s) == 0)
            return true;
    return false;
}

unsigned orch_edit_distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return 255;
    unsigned row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = (unsigned)j;
    for (size_t i = 1; i <= la; i++) {
        unsigned diag = row[0];
        row[0] = (unsigned)i;
        for (size_t j = 1; j <= lb; j++) {
            unsigned up = row[j];
            unsigned cost = a[i - 1] == b[j - 1] ? 0 : 1;
            unsigned best = diag + cost;
            if (row[j] + 1 < best)
                best = row[j] + 1;
            if (row[j - 1] + 1 < best)
                best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb] > 255 ? 255 : row[lb];
}

bool orch_is_dns_label(const char *s, size_t max_len)
{
    size_t n = strlen(s);
    if (n == 0 || n > max_len)
        return false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        bool alnum = (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9');
        if (!alnum && !(c == '-' && i > 0 && i < n - 1))
            return false;
    }
    return true;
}

int64_t orch_now_mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t orch_now_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void orch_format_rfc3339(int64_t wall_ms, char *out, size_t out_len)
{
    time_t t = (time_t)(wall_ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, out_len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void orch_format_duration(int64_t ms, char *out, size_t out_len)
{
    if (ms <= 0) {
        snprintf(out, out_len, "0s");
        return;
    }
    struct orch_buf b = {0};
    int64_t h = ms / 3600000, m = ms / 60000 % 60, s = ms / 1000 % 60, r = ms % 1000;
    if (h)
        orch_buf_printf(&b, "%lldh", (long long)h);
    if (m)
        orch_buf_printf(&b, "%lldm", (long long)m);
    if (s)
        orch_buf_printf(&b, "%llds", (long long)s);
    if (r)
        orch_buf_printf(&b, "%lldms", (long long)r);
    snprintf(out, out_len, "%s", b.data);
    orch_buf_free(&b);
}
