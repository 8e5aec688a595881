/* Diagnostics of the spec module: collecting them under a cap, sorting them by position and
 * formatting them gcc-style. Owns no parsing: messages are composed by the validator. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "spec/spec_internal.h"

static void diag_push(struct spec_diags *d, int line, int column, char *msg)
{
    d->v = orch_xrealloc(d->v, (d->n + 1) * sizeof(*d->v));
    d->v[d->n].line = line > 0 ? line : 1;
    d->v[d->n].column = column > 0 ? column : 1;
    d->v[d->n].message = msg;
    d->n++;
}

bool diag_add(struct diag_sink *s, int line, int column, const char *fmt, ...)
{
    if (s->full)
        return false;
    if (s->diags->n >= SPEC_MAX_DIAGS) {
        diag_push(s->diags, line, column,
                  orch_xasprintf("too many errors (more than %d); stopping here", SPEC_MAX_DIAGS));
        s->full = true;
        return false;
    }
    struct orch_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    orch_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    diag_push(s->diags, line, column, orch_buf_steal(&b));
    return true;
}

struct diag_order {
    struct spec_diag d;
    size_t seq;
};

static int diag_cmp(const void *a, const void *b)
{
    const struct diag_order *x = a, *y = b;
    if (x->d.line != y->d.line)
        return x->d.line < y->d.line ? -1 : 1;
    if (x->d.column != y->d.column)
        return x->d.column < y->d.column ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

void diag_sort(struct spec_diags *d)
{
    size_t n = d->n;
    if (n < 2)
        return;
    /* The cap line stays last: it says where the reading stopped. */
    if (n > SPEC_MAX_DIAGS)
        n = SPEC_MAX_DIAGS;
    struct diag_order *tmp = orch_xmalloc(n * sizeof(*tmp));
    for (size_t i = 0; i < n; i++) {
        tmp[i].d = d->v[i];
        tmp[i].seq = i;
    }
    qsort(tmp, n, sizeof(*tmp), diag_cmp);
    for (size_t i = 0; i < n; i++)
        d->v[i] = tmp[i].d;
    free(tmp);
}

void spec_diags_free(struct spec_diags *d)
{
    if (d == NULL)
        return;
    for (size_t i = 0; i < d->n; i++)
        free(d->v[i].message);
    free(d->v);
    d->v = NULL;
    d->n = 0;
}

char *spec_diags_format(const struct spec_diags *d, const char *file)
{
    struct orch_buf b = {0};
    for (size_t i = 0; i < d->n; i++)
        orch_buf_printf(&b, "%s:%d:%d: error: %s\n", file ? file : "-", d->v[i].line,
                        d->v[i].column, d->v[i].message);
    return orch_buf_steal(&b);
}

void diag_show(const char *text, size_t len, char *out, size_t out_size)
{
    const size_t limit = 60;
    size_t o = 0;
    size_t i = 0;
    for (; i < len && i < limit && o + 8 < out_size; i++) {
        unsigned char c = (unsigned char)text[i];
        if (c < 0x20 || c == 0x7f) {
            o += (size_t)snprintf(out + o, out_size - o, "\\x%02x", c);
        } else {
            out[o++] = (char)c;
        }
    }
    if (i < len) {
        /* Do not leave half a UTF-8 sequence before the ellipsis. */
        while (o > 0 && ((unsigned char)out[o - 1] & 0xc0) == 0x80)
            o--;
        if (o > 0 && ((unsigned char)out[o - 1] & 0xc0) == 0xc0)
            o--;
        if (o + 4 > out_size)
            o = out_size - 4;
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}
