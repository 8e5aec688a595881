/* Spec validation, the primitives: the visit budget, diagnostics at a node, YAML 1.2 core
 * schema types of scalars, short renderings of values and paths, and typed getters that
 * each visit their node and report their own errors. Knows no spec key. */
#include <limits.h>
#include <stdarg.h>
#include <string.h>

#include "base/util.h"
#include "spec/validate_internal.h"
#include "spec/yaml_tree.h"

bool v_stopped(const struct vctx *v)
{
    return v->stop || v->sink.full;
}

void v_err(struct vctx *v, const struct ynode *n, const char *path, const char *fmt, ...)
{
    if (v_stopped(v))
        return;
    struct orch_buf b = {0};
    va_list ap;
    va_start(ap, fmt);
    orch_buf_vprintf(&b, fmt, ap);
    va_end(ap);
    int line = n ? n->line : 1, column = n ? n->column : 1;
    if (path != NULL && path[0] != '\0')
        diag_add(&v->sink, line, column, "%s: %s", path, b.data);
    else
        diag_add(&v->sink, line, column, "%s", b.data);
    orch_buf_free(&b);
}

/* Counts a visit of n; false (and one error) once the budget is spent. */
bool v_visit(struct vctx *v, const struct ynode *n)
{
    if (v_stopped(v))
        return false;
    if (++v->visits > v->budget) {
        v_err(v, n, NULL,
              "alias expansion exceeds limit (%zu nodes visited); aliases may not "
              "multiply the spec's size",
              v->budget);
        v->stop = true;
        return false;
    }
    return true;
}

/* --- scalar types ---------------------------------------------------------------------- */

#define TAG_PREFIX "tag:yaml.org,2002:"

static bool text_is(const struct ynode *n, const char *const *words)
{
    for (; *words; words++)
        if (strlen(*words) == n->len && memcmp(n->text, *words, n->len) == 0)
            return true;
    return false;
}

static bool is_digits(const char *s, const char *e)
{
    if (s == e)
        return false;
    for (; s < e; s++)
        if (*s < '0' || *s > '9')
            return false;
    return true;
}

/* YAML 1.2 core schema resolution of a plain scalar, restricted to decimal integers. */
static enum ytype resolve_plain(const struct ynode *n)
{
    static const char *const nulls[] = {"", "~", "null", "Null", "NULL", NULL};
    static const char *const bools[] = {"true", "True", "TRUE", "false", "False", "FALSE", NULL};
    static const char *const specials[] = {".inf",  ".Inf",  ".INF",  "+.inf", "+.Inf",
                                           "+.INF", "-.inf", "-.Inf", "-.INF", ".nan",
                                           ".NaN",  ".NAN",  NULL};
    if (text_is(n, nulls))
        return YT_NULL;
    if (text_is(n, bools))
        return YT_BOOL;
    if (text_is(n, specials))
        return YT_FLOAT;
    const char *s = n->text, *e = n->text + n->len;
    if (s < e && (*s == '+' || *s == '-'))
        s++;
    if (is_digits(s, e))
        return YT_INT;
    /* [0-9]*(\.[0-9]*)?([eE][-+]?[0-9]+)? with at least one digit in the mantissa */
    const char *p = s;
    bool digits = false;
    while (p < e && *p >= '0' && *p <= '9')
        p++, digits = true;
    if (p < e && *p == '.') {
        p++;
        while (p < e && *p >= '0' && *p <= '9')
            p++, digits = true;
    }
    if (!digits)
        return YT_STR;
    if (p < e && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < e && (*p == '+' || *p == '-'))
            p++;
        const char *q = p;
        while (p < e && *p >= '0' && *p <= '9')
            p++;
        if (p == q)
            return YT_STR;
    }
    return p == e ? YT_FLOAT : YT_STR;
}

enum ytype v_ytype_of(const struct ynode *n)
{
    if (n->kind == YNODE_SEQ)
        return YT_SEQ;
    if (n->kind == YNODE_MAP)
        return YT_MAP;
    if (n->tag == NULL)
        return n->plain ? resolve_plain(n) : YT_STR;
    if (strcmp(n->tag, TAG_PREFIX "str") == 0)
        return YT_STR;
    enum ytype want;
    if (strcmp(n->tag, TAG_PREFIX "int") == 0)
        want = YT_INT;
    else if (strcmp(n->tag, TAG_PREFIX "float") == 0)
        want = YT_FLOAT;
    else if (strcmp(n->tag, TAG_PREFIX "bool") == 0)
        want = YT_BOOL;
    else if (strcmp(n->tag, TAG_PREFIX "null") == 0)
        want = YT_NULL;
    else
        return YT_BADTAG;
    enum ytype got = resolve_plain(n);
    if (got == want || (want == YT_FLOAT && got == YT_INT))
        return want;
    return YT_BADTAG;
}

const char *v_ytype_name(enum ytype t)
{
    switch (t) {
    case YT_NULL:
        return "null";
    case YT_BOOL:
        return "a boolean";
    case YT_INT:
        return "an integer";
    case YT_FLOAT:
        return "a number";
    case YT_STR:
        return "a string";
    case YT_SEQ:
        return "a list";
    case YT_MAP:
        return "a mapping";
    case YT_BADTAG:
        break;
    }
    return "a value with an unsupported tag";
}

struct shown v_show_text(const char *text, size_t len)
{
    struct shown r;
    diag_show(text, len, r.s, sizeof(r.s));
    return r;
}

struct shown v_show(const struct ynode *n)
{
    if (n->kind != YNODE_SCALAR)
        return v_show_text("...", 3);
    return v_show_text(n->text, n->len);
}

struct vpath v_path_key(const char *parent, const char *text, size_t len)
{
    struct vpath p;
    struct shown k = v_show_text(text, len);
    if (parent[0] == '\0')
        snprintf(p.s, sizeof(p.s), "%s", k.s);
    else
        snprintf(p.s, sizeof(p.s), "%.200s.%s", parent, k.s);
    return p;
}

struct vpath v_path_index(const char *parent, size_t i)
{
    struct vpath p;
    snprintf(p.s, sizeof(p.s), "%.200s[%zu]", parent, i);
    return p;
}

static bool utf8_valid(const char *s, size_t n)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        unsigned c = p[i];
        size_t k;
        unsigned cp;
        if (c < 0x80) {
            i++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            k = 1, cp = c & 0x1f;
        } else if ((c & 0xf0) == 0xe0) {
            k = 2, cp = c & 0x0f;
        } else if ((c & 0xf8) == 0xf0) {
            k = 3, cp = c & 0x07;
        } else {
            return false;
        }
        if (i + k >= n)
            return false;
        for (size_t j = 1; j <= k; j++) {
            if ((p[i + j] & 0xc0) != 0x80)
                return false;
            cp = (cp << 6) | (p[i + j] & 0x3f);
        }
        static const unsigned min[] = {0, 0x80, 0x800, 0x10000};
        if (cp < min[k] || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff))
            return false;
        i += k + 1;
    }
    return true;
}

/* Scalar text usable as a C string and a JSON string. */
bool v_text_ok(struct vctx *v, const struct ynode *n, const char *path)
{
    if (memchr(n->text, '\0', n->len) != NULL) {
        v_err(v, n, path, "must not contain NUL characters");
        return false;
    }
    if (!utf8_valid(n->text, n->len)) {
        v_err(v, n, path, "must be valid UTF-8");
        return false;
    }
    return true;
}

void v_type_err(struct vctx *v, const struct ynode *n, const char *path, const char *want)
{
    enum ytype t = v_ytype_of(n);
    if (t == YT_BADTAG) {
        const char *tag = n->tag;
        bool core = strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) == 0;
        if (core)
            tag += strlen(TAG_PREFIX);
        v_err(v, n, path, "must be %s, got a value tagged '%s%s'", want, core ? "!!" : "",
              v_show_text(tag, strlen(tag)).s);
    } else
        v_err(v, n, path, "must be %s, got %s", want, v_ytype_name(t));
}

/* --- typed getters: each visits the node and reports its own errors ---------------------- */

bool v_get_str(struct vctx *v, const struct ynode *n, const char *path, char **out)
{
    if (!v_visit(v, n))
        return false;
    if (v_ytype_of(n) != YT_STR) {
        v_type_err(v, n, path, "a string");
        return false;
    }
    if (!v_text_ok(v, n, path))
        return false;
    *out = orch_xstrndup(n->text, n->len);
    return true;
}

bool v_get_int(struct vctx *v, const struct ynode *n, const char *path, long long lo, long long hi,
               long long *out)
{
    if (!v_visit(v, n))
        return false;
    if (v_ytype_of(n) != YT_INT) {
        v_type_err(v, n, path, "an integer");
        return false;
    }
    const char *s = n->text;
    bool neg = *s == '-';
    if (*s == '+' || *s == '-')
        s++;
    long long x = 0;
    bool overflow = false;
    for (; *s; s++)
        if (__builtin_mul_overflow(x, 10, &x) || __builtin_add_overflow(x, *s - '0', &x))
            overflow = true;
    if (neg)
        x = -x;
    if (overflow || x < lo || x > hi) {
        if (hi >= INT_MAX && !overflow)
            v_err(v, n, path, "must be at least %lld, got %s", lo, v_show(n).s);
        else if (hi >= INT_MAX)
            v_err(v, n, path, "%s is too large", v_show(n).s);
        else
            v_err(v, n, path, "must be between %lld and %lld, got %s", lo, hi, v_show(n).s);
        return false;
    }
    *out = x;
    return true;
}

bool v_get_bool(struct vctx *v, const struct ynode *n, const char *path, bool *out)
{
    if (!v_visit(v, n))
        return false;
    if (v_ytype_of(n) != YT_BOOL) {
        v_type_err(v, n, path, "true or false");
        return false;
    }
    *out = n->text[0] == 't' || n->text[0] == 'T';
    return true;
}

/* Env values, labels and argv items: any scalar, stringified. */
bool v_get_scalar_string(struct vctx *v, const struct ynode *n, const char *path, char **out)
{
    if (!v_visit(v, n))
        return false;
    switch (v_ytype_of(n)) {
    case YT_NULL:
        *out = orch_xstrdup("");
        return true;
    case YT_BOOL:
        *out = orch_xstrdup(n->text[0] == 't' || n->text[0] == 'T' ? "true" : "false");
        return true;
    case YT_INT:
    case YT_FLOAT:
    case YT_STR:
        if (!v_text_ok(v, n, path))
            return false;
        *out = orch_xstrndup(n->text, n->len);
        return true;
    default:
        v_type_err(v, n, path, "a scalar (string, number or boolean)");
        return false;
    }
}

/* Durations are strings with units; the plain integer 0 also means zero. */
bool v_get_duration(struct vctx *v, const struct ynode *n, const char *path, int64_t min,
                    int64_t max, int64_t *out)
{
    if (!v_visit(v, n))
        return false;
    enum ytype t = v_ytype_of(n);
    int64_t ms;
    if (t == YT_INT) {
        const char *s = n->text + (n->text[0] == '+' || n->text[0] == '-');
        if (s[strspn(s, "0")] != '\0') {
            v_err(v, n, path, "%s has no unit: write e.g. %ss or %sms (only 0 needs no unit)",
                  v_show(n).s, v_show(n).s, v_show(n).s);
            return false;
        }
        ms = 0;
    } else if (t == YT_STR) {
        if (!v_text_ok(v, n, path))
            return false;
        if (spec_parse_duration(n->text, &ms) < 0) {
            v_err(v, n, path, "'%s' is not a duration: write e.g. 500ms, 2s, 1m30s or 1h",
                  v_show(n).s);
            return false;
        }
    } else {
        v_type_err(v, n, path, "a duration like 2s");
        return false;
    }
    char a[32], b[32];
    if (ms < min) {
        orch_format_duration(min, a, sizeof(a));
        orch_format_duration(ms, b, sizeof(b));
        if (min == 1)
            v_err(v, n, path, "must be longer than 0s");
        else
            v_err(v, n, path, "must be at least %s, got %s", a, b);
        return false;
    }
    if (ms > max) {
        orch_format_duration(max, a, sizeof(a));
        orch_format_duration(ms, b, sizeof(b));
        v_err(v, n, path, "must be at most %s, got %s", a, b);
        return false;
    }
    *out = ms;
    return true;
}

bool v_expect_kind(struct vctx *v, const struct ynode *n, const char *path, enum ytype want,
                   const char *what)
{
    if (!v_visit(v, n))
        return false;
    if (v_ytype_of(n) != want) {
        v_type_err(v, n, path, what);
        return false;
    }
    return true;
}
