/* The spec's value syntaxes: durations, sizes, int-or-percent, image references and path
 * normalisation. Pure string functions: no YAML, no positions, no messages beyond a short
 * static reason; the validator turns their failures into diagnostics. */
#include <limits.h>
#include <stdint.h>
#include <string.h>

#include "base/util.h"
#include "spec/spec_internal.h"

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

/* Reads one or more decimal digits at *p into *out; -1 on no digit or int64 overflow. */
static int read_digits(const char **p, int64_t *out)
{
    const char *s = *p;
    int64_t v = 0;
    if (!is_digit(*s))
        return -1;
    for (; is_digit(*s); s++) {
        if (__builtin_mul_overflow(v, 10, &v) || __builtin_add_overflow(v, *s - '0', &v))
            return -1;
    }
    *p = s;
    *out = v;
    return 0;
}

int spec_parse_duration(const char *s, int64_t *out_ms)
{
    if (s == NULL || *s == '\0')
        return -1;
    if (strcmp(s, "0") == 0) {
        *out_ms = 0;
        return 0;
    }
    /* Units in decreasing size, each at most once: rank must strictly increase. */
    int64_t total = 0;
    int last_rank = -1;
    const char *p = s;
    while (*p != '\0') {
        int64_t v = 0;
        if (read_digits(&p, &v) < 0)
            return -1;
        int rank;
        int64_t mult;
        if (p[0] == 'h') {
            rank = 0, mult = 3600000, p += 1;
        } else if (p[0] == 'm' && p[1] == 's') {
            rank = 3, mult = 1, p += 2;
        } else if (p[0] == 'm') {
            rank = 1, mult = 60000, p += 1;
        } else if (p[0] == 's') {
            rank = 2, mult = 1000, p += 1;
        } else {
            return -1;
        }
        if (rank <= last_rank)
            return -1;
        last_rank = rank;
        if (__builtin_mul_overflow(v, mult, &v) || __builtin_add_overflow(total, v, &total))
            return -1;
    }
    *out_ms = total;
    return 0;
}

int spec_parse_size(const char *s, int64_t *out_bytes)
{
    if (s == NULL)
        return -1;
    const char *p = s;
    int64_t v = 0;
    if (read_digits(&p, &v) < 0)
        return -1;
    if (*p == '\0') {
        *out_bytes = v;
        return 0;
    }
    int shift;
    switch (*p) {
    case 'K':
    case 'k':
        shift = 10;
        break;
    case 'M':
    case 'm':
        shift = 20;
        break;
    case 'G':
    case 'g':
        shift = 30;
        break;
    case 'T':
    case 't':
        shift = 40;
        break;
    default:
        return -1;
    }
    p++;
    if (*p == 'i')
        p++;
    if (*p == 'B' || *p == 'b')
        p++;
    if (*p != '\0')
        return -1;
    if (v > (INT64_MAX >> shift))
        return -1;
    *out_bytes = v << shift;
    return 0;
}

int spec_parse_pct(const char *s, struct spec_scalar_or_pct *out)
{
    if (s == NULL)
        return -1;
    const char *p = s;
    int64_t v = 0;
    if (read_digits(&p, &v) < 0 || v > INT_MAX)
        return -1;
    if (p[0] == '%' && p[1] == '\0') {
        if (v > 100)
            return -1;
        out->value = (int)v;
        out->percent = true;
        return 0;
    }
    if (*p != '\0')
        return -1;
    out->value = (int)v;
    out->percent = false;
    return 0;
}

int spec_resolve_pct(struct spec_scalar_or_pct v, int replicas, bool round_up)
{
    if (!v.percent)
        return v.value;
    if (replicas <= 0 || v.value <= 0)
        return 0;
    /* Kubernetes: maxSurge rounds up (progress is always possible), maxUnavailable rounds
     * down (availability is never below what was asked). */
    int64_t num = (int64_t)v.value * replicas;
    return (int)(round_up ? (num + 99) / 100 : num / 100);
}

void spec_path_normalise(char *path)
{
    size_t len = strlen(path);
    char *out = orch_xmalloc(len + 2);
    size_t o = 0;
    out[o++] = '/';
    const char *p = path;
    while (*p != '\0') {
        while (*p == '/')
            p++;
        if (*p == '\0')
            break;
        const char *e = p;
        while (*e != '\0' && *e != '/')
            e++;
        size_t n = (size_t)(e - p);
        if (n == 1 && p[0] == '.') {
            /* nothing */
        } else if (n == 2 && p[0] == '.' && p[1] == '.') {
            while (o > 1 && out[o - 1] != '/')
                o--;
            if (o > 1)
                o--;
        } else {
            if (o > 1)
                out[o++] = '/';
            memcpy(out + o, p, n);
            o += n;
        }
        p = e;
    }
    out[o] = '\0';
    memcpy(path, out, o + 1);
    free(out);
}

static bool is_lower_alnum(char c)
{
    return (c >= 'a' && c <= 'z') || is_digit(c);
}

static bool is_alnum(char c)
{
    return is_lower_alnum(c) || (c >= 'A' && c <= 'Z');
}

/* A path component: [a-z0-9]+([._-]+[a-z0-9]+)* */
static bool image_component_valid(const char *s, size_t n, const char **why)
{
    if (n == 0) {
        *why = "empty path component";
        return false;
    }
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z') {
            *why = "repository names must be lowercase";
            return false;
        }
        if (!is_lower_alnum(c) && c != '.' && c != '_' && c != '-') {
            *why = "path components use only a-z, 0-9, '.', '_' and '-'";
            return false;
        }
    }
    if (!is_lower_alnum(s[0]) || !is_lower_alnum(s[n - 1])) {
        *why = "path components start and end with a letter or digit";
        return false;
    }
    return true;
}

/* A registry host: [A-Za-z0-9.-]+ with an optional :port. */
static bool image_host_valid(const char *s, size_t n)
{
    const char *colon = memchr(s, ':', n);
    size_t hn = colon ? (size_t)(colon - s) : n;
    if (hn == 0 || !is_alnum(s[0]) || !is_alnum(s[hn - 1]))
        return false;
    for (size_t i = 0; i < hn; i++)
        if (!is_alnum(s[i]) && s[i] != '.' && s[i] != '-')
            return false;
    if (colon != NULL) {
        size_t pn = n - hn - 1;
        if (pn == 0 || pn > 5)
            return false;
        for (size_t i = hn + 1; i < n; i++)
            if (!is_digit(s[i]))
                return false;
    }
    return true;
}

bool spec_image_valid(const char *ref, const char **why)
{
    size_t len = strlen(ref);
    if (len == 0) {
        *why = "it is empty";
        return false;
    }
    if (len > 1024) {
        *why = "it is longer than 1024 characters";
        return false;
    }
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)ref[i];
        if (c <= ' ' || c >= 0x7f) {
            *why = "it contains whitespace or a character outside ASCII";
            return false;
        }
    }
    const char *end = ref + len;
    const char *at = strchr(ref, '@');
    if (at != NULL) {
        const char *d = at + 1;
        bool ok = strncmp(d, "sha256:", 7) == 0 && strlen(d + 7) == 64;
        for (size_t i = 0; ok && i < 64; i++)
            ok = is_digit(d[7 + i]) || (d[7 + i] >= 'a' && d[7 + i] <= 'f');
        if (!ok) {
            *why = "a digest is '@sha256:' followed by 64 lowercase hex digits";
            return false;
        }
        end = at;
    }
    const char *slash = NULL, *colon = NULL;
    for (const char *p = ref; p < end; p++) {
        if (*p == '/')
            slash = p;
        else if (*p == ':')
            colon = p;
    }
    if (colon != NULL && (slash == NULL || colon > slash)) {
        const char *tag = colon + 1;
        size_t tn = (size_t)(end - tag);
        bool ok = tn >= 1 && tn <= 128 && (is_alnum(tag[0]) || tag[0] == '_');
        for (size_t i = 1; ok && i < tn; i++)
            ok = is_alnum(tag[i]) || tag[i] == '_' || tag[i] == '.' || tag[i] == '-';
        if (!ok) {
            *why = "a tag is 1-128 of A-Z, a-z, 0-9, '_', '.', '-' and does not start with '.' "
                   "or '-'";
            return false;
        }
        end = colon;
    }
    const char *p = ref;
    bool first = true;
    for (;;) {
        const char *e = memchr(p, '/', (size_t)(end - p));
        if (e == NULL)
            e = end;
        size_t n = (size_t)(e - p);
        /* The first of several components is a registry host when it looks like one. */
        bool host =
            first && e != end &&
            (memchr(p, '.', n) || memchr(p, ':', n) || (n == 9 && memcmp(p, "localhost", 9) == 0));
        if (host) {
            if (!image_host_valid(p, n)) {
                *why = "the registry host is not a valid host[:port]";
                return false;
            }
        } else if (!image_component_valid(p, n, why)) {
            return false;
        }
        first = false;
        if (e == end)
            break;
        p = e + 1;
    }
    return true;
}

bool spec_image_ref_valid(const char *ref)
{
    const char *why;
    return ref != NULL && spec_image_valid(ref, &why);
}
