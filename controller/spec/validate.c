/* The spec's schema: struct ytree -> struct spec_app with every default filled in, every
 * error found reported as a positioned diagnostic (never only the first). Owns the rules of
 * CONTRACT section 1 and the spec decisions; it reads no files and the YAML syntax belongs
 * to yaml_tree.c. Aliases are followed under a visit budget so an alias bomb stays cheap. */
#include <ctype.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

#include "../base/util.h"
#include "spec_internal.h"
#include "yaml_tree.h"

/* Node visits allowed beyond twice the node count: only aliases can use them up. */
#define SPEC_ALIAS_BUDGET 100000u
#define SPEC_MIN_MEMORY 6291456 /* Docker refuses less than 6 MiB */
#define SPEC_SUGGEST_MAX_CANDIDATES 1000

struct vctx {
    struct diag_sink sink;
    const struct spec_parse_options *opts;
    size_t visits;
    size_t budget;
    bool stop; /* the alias budget ran out: validation ends */
    /* Per service of the model: the depends_on item nodes, for later positioned checks. */
    const struct ynode ***dep_nodes;
};

static bool v_stopped(const struct vctx *v)
{
    return v->stop || v->sink.full;
}

/* Reports "PATH: MESSAGE" (or "MESSAGE" at the top level) at node n. */
static void v_err(struct vctx *v, const struct ynode *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static void v_err(struct vctx *v, const struct ynode *n, const char *path, const char *fmt, ...)
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
static bool v_visit(struct vctx *v, const struct ynode *n)
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

enum ytype { YT_NULL, YT_BOOL, YT_INT, YT_FLOAT, YT_STR, YT_SEQ, YT_MAP, YT_BADTAG };

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

static enum ytype ytype_of(const struct ynode *n)
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

static const char *ytype_name(enum ytype t)
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

/* A short, one-line rendering of a scalar for messages. */
struct shown {
    char s[96];
};

static struct shown show_text(const char *text, size_t len)
{
    struct shown r;
    diag_show(text, len, r.s, sizeof(r.s));
    return r;
}

static struct shown show(const struct ynode *n)
{
    if (n->kind != YNODE_SCALAR)
        return show_text("...", 3);
    return show_text(n->text, n->len);
}

/* Builds "PARENT.KEY" / "PARENT[i]" paths, keeping them short for hostile keys. */
struct vpath {
    char s[320];
};

static struct vpath path_key(const char *parent, const char *text, size_t len)
{
    struct vpath p;
    struct shown k = show_text(text, len);
    if (parent[0] == '\0')
        snprintf(p.s, sizeof(p.s), "%s", k.s);
    else
        snprintf(p.s, sizeof(p.s), "%.200s.%s", parent, k.s);
    return p;
}

static struct vpath path_index(const char *parent, size_t i)
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
static bool text_ok(struct vctx *v, const struct ynode *n, const char *path)
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

static void type_err(struct vctx *v, const struct ynode *n, const char *path, const char *want)
{
    enum ytype t = ytype_of(n);
    if (t == YT_BADTAG) {
        const char *tag = n->tag;
        bool core = strncmp(tag, TAG_PREFIX, strlen(TAG_PREFIX)) == 0;
        if (core)
            tag += strlen(TAG_PREFIX);
        v_err(v, n, path, "must be %s, got a value tagged '%s%s'", want, core ? "!!" : "",
              show_text(tag, strlen(tag)).s);
    } else
        v_err(v, n, path, "must be %s, got %s", want, ytype_name(t));
}

/* --- typed getters: each visits the node and reports its own errors ---------------------- */

static bool get_str(struct vctx *v, const struct ynode *n, const char *path, char **out)
{
    if (!v_visit(v, n))
        return false;
    if (ytype_of(n) != YT_STR) {
        type_err(v, n, path, "a string");
        return false;
    }
    if (!text_ok(v, n, path))
        return false;
    *out = orch_xstrndup(n->text, n->len);
    return true;
}

static bool get_int(struct vctx *v, const struct ynode *n, const char *path, long long lo,
                    long long hi, long long *out)
{
    if (!v_visit(v, n))
        return false;
    if (ytype_of(n) != YT_INT) {
        type_err(v, n, path, "an integer");
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
            v_err(v, n, path, "must be at least %lld, got %s", lo, show(n).s);
        else if (hi >= INT_MAX)
            v_err(v, n, path, "%s is too large", show(n).s);
        else
            v_err(v, n, path, "must be between %lld and %lld, got %s", lo, hi, show(n).s);
        return false;
    }
    *out = x;
    return true;
}

static bool get_bool(struct vctx *v, const struct ynode *n, const char *path, bool *out)
{
    if (!v_visit(v, n))
        return false;
    if (ytype_of(n) != YT_BOOL) {
        type_err(v, n, path, "true or false");
        return false;
    }
    *out = n->text[0] == 't' || n->text[0] == 'T';
    return true;
}

/* Env values, labels and argv items: any scalar, stringified. */
static bool get_scalar_string(struct vctx *v, const struct ynode *n, const char *path, char **out)
{
    if (!v_visit(v, n))
        return false;
    switch (ytype_of(n)) {
    case YT_NULL:
        *out = orch_xstrdup("");
        return true;
    case YT_BOOL:
        *out = orch_xstrdup(n->text[0] == 't' || n->text[0] == 'T' ? "true" : "false");
        return true;
    case YT_INT:
    case YT_FLOAT:
    case YT_STR:
        if (!text_ok(v, n, path))
            return false;
        *out = orch_xstrndup(n->text, n->len);
        return true;
    default:
        type_err(v, n, path, "a scalar (string, number or boolean)");
        return false;
    }
}

/* Durations are strings with units; the plain integer 0 also means zero. */
static bool get_duration(struct vctx *v, const struct ynode *n, const char *path, int64_t min,
                         int64_t max, int64_t *out)
{
    if (!v_visit(v, n))
        return false;
    enum ytype t = ytype_of(n);
    int64_t ms;
    if (t == YT_INT) {
        const char *s = n->text + (n->text[0] == '+' || n->text[0] == '-');
        if (s[strspn(s, "0")] != '\0') {
            v_err(v, n, path, "%s has no unit: write e.g. %ss or %sms (only 0 needs no unit)",
                  show(n).s, show(n).s, show(n).s);
            return false;
        }
        ms = 0;
    } else if (t == YT_STR) {
        if (!text_ok(v, n, path))
            return false;
        if (spec_parse_duration(n->text, &ms) < 0) {
            v_err(v, n, path, "'%s' is not a duration: write e.g. 500ms, 2s, 1m30s or 1h",
                  show(n).s);
            return false;
        }
    } else {
        type_err(v, n, path, "a duration like 2s");
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

static bool expect_kind(struct vctx *v, const struct ynode *n, const char *path, enum ytype want,
                        const char *what)
{
    if (!v_visit(v, n))
        return false;
    if (ytype_of(n) != want) {
        type_err(v, n, path, what);
        return false;
    }
    return true;
}

/* --- mappings ---------------------------------------------------------------------------- */

/* A close candidate for a mistyped name: edit distance <= 2 (less than the name's length),
 * else a candidate that the name is a prefix of or that is a prefix of the name. */
static const char *suggest(const char *name, const char *const *cands, size_t n)
{
    size_t len = strlen(name);
    const char *best = NULL;
    unsigned best_d = 3;
    if (n > SPEC_SUGGEST_MAX_CANDIDATES || len == 0)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        unsigned d = orch_edit_distance(name, cands[i]);
        if (d < best_d && d < len) {
            best_d = d;
            best = cands[i];
        }
    }
    if (best != NULL || len < 3)
        return best;
    for (size_t i = 0; i < n; i++) {
        size_t cl = strlen(cands[i]);
        if ((cl > len && strncmp(cands[i], name, len) == 0) ||
            (cl >= 3 && cl < len && strncmp(name, cands[i], cl) == 0))
            return cands[i];
    }
    return NULL;
}

static void unknown_key(struct vctx *v, const struct ynode *key, const char *path,
                        const char *const *names, size_t nnames)
{
    struct shown k = show(key);
    const char *s = memchr(key->text, '\0', key->len) ? NULL : suggest(key->text, names, nnames);
    if (s != NULL)
        v_err(v, key, path, "unknown key '%s'; did you mean '%s'?", k.s, s);
    else
        v_err(v, key, path, "unknown key '%s'", k.s);
}

/* Sorts entries by key and reports each repeated key at its later occurrence. */
struct keyed {
    const char *key;
    size_t len;
    size_t idx;
    const struct ynode *node;
};

static int keyed_cmp(const void *a, const void *b)
{
    const struct keyed *x = a, *y = b;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->key, y->key, n);
    if (c != 0)
        return c;
    if (x->len != y->len)
        return x->len < y->len ? -1 : 1;
    return x->idx < y->idx ? -1 : x->idx > y->idx;
}

/* Sorts k[0..n) and calls report(first, dup) for every repeat; returns a new array of n
 * flags, true for entries that repeat an earlier one (by idx). */
typedef void (*dup_report_fn)(struct vctx *v, const char *path, const struct keyed *first,
                              const struct keyed *dup);

static bool *find_dups(struct vctx *v, const char *path, struct keyed *k, size_t n, size_t nflags,
                       dup_report_fn report)
{
    bool *dup = orch_xcalloc(nflags ? nflags : 1, sizeof(bool));
    qsort(k, n, sizeof(*k), keyed_cmp);
    size_t first = 0;
    for (size_t i = 1; i < n; i++) {
        if (k[i].len == k[first].len && memcmp(k[i].key, k[first].key, k[i].len) == 0) {
            dup[k[i].idx] = true;
            report(v, path, &k[first], &k[i]);
        } else {
            first = i;
        }
    }
    return dup;
}

static void report_dup_key(struct vctx *v, const char *path, const struct keyed *first,
                           const struct keyed *dup)
{
    v_err(v, dup->node, path, "duplicate key '%s' (first at line %d)",
          show_text(dup->key, dup->len).s, first->node->line);
}

/* Checks the keys of a mapping whose value was visited already: keys must be scalars and
 * unique. Returns a new array of map->n flags, true for pairs to skip. */
static bool *map_keys(struct vctx *v, const struct ynode *map, const char *path)
{
    struct keyed *k = orch_xcalloc(map->n ? map->n : 1, sizeof(*k));
    size_t nk = 0;
    bool *skip_bad = orch_xcalloc(map->n ? map->n : 1, sizeof(bool));
    for (size_t i = 0; i < map->n; i++) {
        const struct ynode *key = map->pairs[i].key;
        if (!v_visit(v, key)) {
            skip_bad[i] = true;
            continue;
        }
        if (key->kind != YNODE_SCALAR) {
            v_err(v, key, path, "keys must be strings, got %s", ytype_name(ytype_of(key)));
            skip_bad[i] = true;
            continue;
        }
        k[nk++] = (struct keyed){key->text, key->len, i, key};
    }
    bool *skip = find_dups(v, path, k, nk, map->n, report_dup_key);
    for (size_t i = 0; i < map->n; i++)
        skip[i] = skip[i] || skip_bad[i];
    free(skip_bad);
    free(k);
    return skip;
}

/* Distributes the pairs of a schema mapping onto names[]: vals[i]/keys[i] for names[i] (NULL
 * when absent). Unknown and duplicate keys are reported. */
static void map_fields(struct vctx *v, const struct ynode *map, const char *path,
                       const char *const *names, size_t nnames, const struct ynode **keys,
                       const struct ynode **vals)
{
    for (size_t i = 0; i < nnames; i++)
        keys[i] = vals[i] = NULL;
    for (size_t i = 0; i < map->n && !v_stopped(v); i++) {
        const struct ynode *key = map->pairs[i].key;
        if (!v_visit(v, key))
            return;
        if (key->kind != YNODE_SCALAR) {
            v_err(v, key, path, "keys must be strings, got %s", ytype_name(ytype_of(key)));
            continue;
        }
        size_t f = 0;
        for (; f < nnames; f++)
            if (strlen(names[f]) == key->len && memcmp(names[f], key->text, key->len) == 0)
                break;
        if (f == nnames) {
            unknown_key(v, key, path, names, nnames);
            continue;
        }
        if (keys[f] != NULL) {
            v_err(v, key, path, "duplicate key '%s' (first at line %d)", names[f], keys[f]->line);
            continue;
        }
        keys[f] = key;
        vals[f] = map->pairs[i].value;
    }
}

static void missing(struct vctx *v, const struct ynode *map, const char *path, const char *key)
{
    v_err(v, map, path, "missing required key '%s'", key);
}

/* --- small syntaxes ---------------------------------------------------------------------- */

static bool env_name_valid(const char *s)
{
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return false;
    return true;
}

static bool volume_name_valid(const char *s)
{
    if (!isalnum((unsigned char)s[0]))
        return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == '-'))
            return false;
    return true;
}

#define NAME_RULE                                                                                  \
    "use 1-40 lowercase letters, digits and '-', starting and ending with a letter or digit"

/* --- sections ---------------------------------------------------------------------------- */

static void free_argv(char **argv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(argv[i]);
    free(argv);
}

/* A non-empty list of scalars -> NULL-terminated argv. A plain string is refused with a hint
 * at the list form, since splitting it on spaces would guess at the user's quoting. */
static bool get_argv(struct vctx *v, const struct ynode *n, const char *path, char ***out,
                     size_t *out_len)
{
    if (!v_visit(v, n))
        return false;
    enum ytype t = ytype_of(n);
    if (t == YT_STR) {
        v_err(v, n, path,
              "must be a list, got a string; write it as a list like [\"/app\", \"serve\"], or "
              "[\"/bin/sh\", \"-c\", \"...\"] for a shell command");
        return false;
    }
    if (t != YT_SEQ) {
        type_err(v, n, path, "a list of strings");
        return false;
    }
    if (n->n == 0) {
        v_err(v, n, path, "must not be empty");
        return false;
    }
    char **argv = orch_xcalloc(n->n + 1, sizeof(char *));
    bool ok = true;
    for (size_t i = 0; i < n->n && !v_stopped(v); i++) {
        struct vpath p = path_index(path, i);
        if (!get_scalar_string(v, n->items[i], p.s, &argv[i])) {
            argv[i] = orch_xstrdup("");
            ok = false;
        }
    }
    if (!ok || v_stopped(v)) {
        free_argv(argv, n->n);
        return false;
    }
    *out = argv;
    *out_len = n->n;
    return true;
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct spec_kv *)a)->key, ((const struct spec_kv *)b)->key);
}

enum kv_kind { KV_ENV, KV_LABELS };

static void check_kv(struct vctx *v, const struct ynode *n, const char *path, enum kv_kind kind,
                     struct spec_kv **out, size_t *out_len)
{
    if (!expect_kind(v, n, path, YT_MAP, "a mapping"))
        return;
    bool *skip = map_keys(v, n, path);
    struct spec_kv *kv = orch_xcalloc(n->n ? n->n : 1, sizeof(*kv));
    size_t len = 0;
    for (size_t i = 0; i < n->n && !v_stopped(v); i++) {
        if (skip[i])
            continue;
        const struct ynode *key = n->pairs[i].key;
        if (!text_ok(v, key, path))
            continue;
        struct shown ks = show(key);
        if (kind == KV_ENV && !env_name_valid(key->text)) {
            v_err(v, key, path,
                  "'%s' is not a valid variable name: use letters, digits and '_', not "
                  "starting with a digit",
                  ks.s);
            continue;
        }
        if (kind == KV_LABELS && key->len == 0) {
            v_err(v, key, path, "label keys must not be empty");
            continue;
        }
        if (kind == KV_LABELS && strncmp(key->text, "orch.", 5) == 0) {
            v_err(v, key, path,
                  "'%s' is reserved: label keys starting with 'orch.' are set by orch", ks.s);
            continue;
        }
        struct vpath p = path_key(path, key->text, key->len);
        char *value;
        if (!get_scalar_string(v, n->pairs[i].value, p.s, &value))
            continue;
        kv[len].key = orch_xstrndup(key->text, key->len);
        kv[len].value = value;
        len++;
    }
    free(skip);
    qsort(kv, len, sizeof(*kv), kv_cmp);
    *out = kv;
    *out_len = len;
}

static void report_dup_port_name(struct vctx *v, const char *path, const struct keyed *first,
                                 const struct keyed *dup)
{
    struct vpath p = path_index(path, dup->idx);
    v_err(v, dup->node, p.s, "port name '%s' is already used by ports[%zu]",
          show_text(dup->key, dup->len).s, first->idx);
}

static void report_dup_port(struct vctx *v, const char *path, const struct keyed *first,
                            const struct keyed *dup)
{
    struct vpath p = path_index(path, dup->idx);
    v_err(v, dup->node, p.s, "port %s is already declared by ports[%zu]", dup->key, first->idx);
}

static void check_ports(struct vctx *v, const struct ynode *n, const char *path,
                        struct spec_service *svc)
{
    if (!expect_kind(v, n, path, YT_SEQ, "a list of ports"))
        return;
    static const char *const names[] = {"name", "container", "protocol"};
    svc->ports = orch_xcalloc(n->n ? n->n : 1, sizeof(*svc->ports));
    struct keyed *byname = orch_xcalloc(n->n ? n->n : 1, sizeof(*byname));
    struct keyed *bynum = orch_xcalloc(n->n ? n->n : 1, sizeof(*bynum));
    char(*numkeys)[16] = orch_xcalloc(n->n ? n->n : 1, sizeof(*numkeys));
    size_t nbyname = 0, nbynum = 0;
    for (size_t i = 0; i < n->n && !v_stopped(v); i++) {
        struct vpath p = path_index(path, i);
        const struct ynode *item = n->items[i];
        if (!v_visit(v, item))
            break;
        if (item->kind != YNODE_MAP) {
            type_err(v, item, p.s, "a mapping with 'name' and 'container'");
            continue;
        }
        const struct ynode *keys[3], *vals[3];
        map_fields(v, item, p.s, names, 3, keys, vals);
        struct spec_port port = {.container = 0, .protocol = SPEC_PROTO_TCP};
        if (vals[0] == NULL) {
            missing(v, item, p.s, "name");
        } else {
            struct vpath pp = path_key(p.s, "name", 4);
            if (get_str(v, vals[0], pp.s, &port.name)) {
                if (!orch_is_dns_label(port.name, SPEC_NAME_MAX)) {
                    v_err(v, vals[0], pp.s, "'%s' is not a valid port name: " NAME_RULE,
                          show(vals[0]).s);
                } else {
                    byname[nbyname++] = (struct keyed){port.name, strlen(port.name), i, vals[0]};
                }
            }
        }
        if (vals[1] == NULL) {
            missing(v, item, p.s, "container");
        } else {
            struct vpath pp = path_key(p.s, "container", 9);
            long long x;
            if (get_int(v, vals[1], pp.s, 1, 65535, &x))
                port.container = (int)x;
        }
        if (vals[2] != NULL) {
            struct vpath pp = path_key(p.s, "protocol", 8);
            char *proto = NULL;
            if (get_str(v, vals[2], pp.s, &proto)) {
                if (strcmp(proto, "udp") == 0) {
                    port.protocol = SPEC_PROTO_UDP;
                } else if (strcmp(proto, "tcp") != 0) {
                    v_err(v, vals[2], pp.s, "must be tcp or udp, got '%s'", show(vals[2]).s);
                }
            }
            free(proto);
        }
        if (port.container > 0) {
            snprintf(numkeys[i], sizeof(numkeys[i]), "%d/%s", port.container,
                     port.protocol == SPEC_PROTO_UDP ? "udp" : "tcp");
            bynum[nbynum++] = (struct keyed){numkeys[i], strlen(numkeys[i]), i, vals[1]};
        }
        svc->ports[svc->ports_len++] = port;
    }
    free(find_dups(v, path, byname, nbyname, n->n, report_dup_port_name));
    free(find_dups(v, path, bynum, nbynum, n->n, report_dup_port));
    free(byname);
    free(bynum);
    free(numkeys);
}

/* Index of the port called name, or -1. */
static int port_find(const struct spec_service *svc, const char *name)
{
    for (size_t i = 0; i < svc->ports_len; i++)
        if (svc->ports[i].name != NULL && strcmp(svc->ports[i].name, name) == 0)
            return (int)i;
    return -1;
}

static void check_health(struct vctx *v, const struct ynode *n, const char *path,
                         struct spec_service *svc)
{
    struct spec_health *h = &svc->health;
    if (!expect_kind(v, n, path, YT_MAP, "a mapping"))
        return;
    enum { F_HTTP, F_TCP, F_EXEC, F_PORT, F_INTERVAL, F_TIMEOUT, F_RETRIES, F_START, F_N };
    static const char *const names[] = {"http",     "tcp",     "exec",    "port",
                                        "interval", "timeout", "retries", "start_period"};
    const struct ynode *keys[F_N], *vals[F_N];
    map_fields(v, n, path, names, F_N, keys, vals);

    /* Exactly one kind: the first in the file wins, later ones are reported. */
    int kind_field = -1;
    for (int f = F_HTTP; f <= F_EXEC; f++) {
        if (keys[f] == NULL)
            continue;
        if (kind_field < 0) {
            kind_field = f;
            continue;
        }
        const struct ynode *a = keys[kind_field], *b = keys[f];
        bool b_later = b->line > a->line || (b->line == a->line && b->column > a->column);
        int later = b_later ? f : kind_field, earlier = b_later ? kind_field : f;
        v_err(v, keys[later], path, "'%s' and '%s' both given: a probe has exactly one kind",
              names[later], names[earlier]);
        kind_field = earlier;
    }
    if (kind_field < 0) {
        v_err(v, n, path, "needs exactly one probe kind: http, tcp or exec");
    }
    const struct ynode *port_node = NULL; /* where the port name was written */
    if (kind_field == F_HTTP) {
        struct vpath p = path_key(path, "http", 4);
        if (get_str(v, vals[F_HTTP], p.s, &h->http_path)) {
            h->kind = SPEC_PROBE_HTTP;
            if (h->http_path[0] != '/')
                v_err(v, vals[F_HTTP], p.s, "must be a path starting with '/', got '%s'",
                      show(vals[F_HTTP]).s);
        }
    } else if (kind_field == F_TCP) {
        struct vpath p = path_key(path, "tcp", 3);
        const struct ynode *t = vals[F_TCP];
        if (v_visit(v, t)) {
            enum ytype ty = ytype_of(t);
            if (ty == YT_BOOL && (t->text[0] == 't' || t->text[0] == 'T')) {
                h->kind = SPEC_PROBE_TCP;
            } else if (ty == YT_STR && text_ok(v, t, p.s)) {
                h->kind = SPEC_PROBE_TCP;
                h->port = orch_xstrndup(t->text, t->len);
                port_node = t;
            } else if (ty == YT_BOOL) {
                v_err(v, t, p.s, "must be true or a port name; leave 'health' out for no probe");
            } else if (ty != YT_STR) {
                type_err(v, t, p.s, "true or a port name");
            }
        }
    } else if (kind_field == F_EXEC) {
        struct vpath p = path_key(path, "exec", 4);
        const struct ynode *e = vals[F_EXEC];
        if (v_visit(v, e) && ytype_of(e) == YT_STR) {
            if (text_ok(v, e, p.s)) {
                if (e->len == 0) {
                    v_err(v, e, p.s, "must not be empty");
                } else {
                    h->kind = SPEC_PROBE_EXEC;
                    h->exec_argv = orch_xcalloc(4, sizeof(char *));
                    h->exec_argv[0] = orch_xstrdup("/bin/sh");
                    h->exec_argv[1] = orch_xstrdup("-c");
                    h->exec_argv[2] = orch_xstrndup(e->text, e->len);
                    h->exec_argc = 3;
                }
            }
        } else if (!v_stopped(v)) {
            v->visits--; /* get_argv counts this node again */
            if (get_argv(v, e, p.s, &h->exec_argv, &h->exec_argc))
                h->kind = SPEC_PROBE_EXEC;
        }
    }
    if (vals[F_PORT] != NULL) {
        struct vpath p = path_key(path, "port", 4);
        char *port = NULL;
        if (get_str(v, vals[F_PORT], p.s, &port)) {
            if (kind_field == F_EXEC) {
                v_err(v, keys[F_PORT], path, "'port' is for http and tcp probes, not exec");
            } else if (h->port != NULL && strcmp(h->port, port) != 0) {
                v_err(v, vals[F_PORT], p.s, "'%s' conflicts with 'tcp: %s'", show(vals[F_PORT]).s,
                      show_text(h->port, strlen(h->port)).s);
            } else if (h->port == NULL) {
                h->port = orch_steal(&port);
                port_node = vals[F_PORT];
            }
        }
        free(port);
    }
    if (vals[F_INTERVAL] != NULL) {
        struct vpath p = path_key(path, "interval", 8);
        get_duration(v, vals[F_INTERVAL], p.s, 1, INT64_MAX, &h->interval_ms);
    }
    if (vals[F_TIMEOUT] != NULL) {
        struct vpath p = path_key(path, "timeout", 7);
        get_duration(v, vals[F_TIMEOUT], p.s, 1, INT64_MAX, &h->timeout_ms);
    }
    if (vals[F_RETRIES] != NULL) {
        struct vpath p = path_key(path, "retries", 7);
        long long x;
        if (get_int(v, vals[F_RETRIES], p.s, 1, 100, &x))
            h->retries = (int)x;
    }
    if (vals[F_START] != NULL) {
        struct vpath p = path_key(path, "start_period", 12);
        get_duration(v, vals[F_START], p.s, 0, INT64_MAX, &h->start_period_ms);
    }

    /* The port: named, or the first one; http and tcp probes need a tcp port. */
    if (h->kind != SPEC_PROBE_HTTP && h->kind != SPEC_PROBE_TCP)
        return;
    const char *kname = h->kind == SPEC_PROBE_HTTP ? "an http" : "a tcp";
    if (h->port == NULL) {
        if (svc->ports_len == 0) {
            v_err(v, keys[kind_field], path, "%s probe needs a port, and the service declares none",
                  kname);
            return;
        }
        if (svc->ports[0].name == NULL)
            return; /* the port's own error says what is wrong */
        h->port = orch_xstrdup(svc->ports[0].name);
        h->port_index = 0;
        if (svc->ports[0].protocol == SPEC_PROTO_UDP)
            v_err(v, keys[kind_field], path,
                  "the first port '%s' is udp; %s probe needs a tcp port (set 'port')",
                  show_text(h->port, strlen(h->port)).s, kname);
        return;
    }
    const char *where = port_node == vals[F_PORT] ? "port" : "tcp";
    struct vpath p = path_key(path, where, strlen(where));
    int idx = port_find(svc, h->port);
    if (idx < 0) {
        const char **cands = orch_xcalloc(svc->ports_len + 1, sizeof(char *));
        size_t nc = 0;
        for (size_t i = 0; i < svc->ports_len; i++)
            if (svc->ports[i].name != NULL)
                cands[nc++] = svc->ports[i].name;
        const char *s = suggest(h->port, cands, nc);
        struct shown pn = show_text(h->port, strlen(h->port));
        if (svc->ports_len == 0)
            v_err(v, port_node, p.s, "no port named '%s': the service declares no ports", pn.s);
        else if (s != NULL)
            v_err(v, port_node, p.s, "no port named '%s'; did you mean '%s'?", pn.s, s);
        else
            v_err(v, port_node, p.s, "no port named '%s' in this service's ports", pn.s);
        free(cands);
        return;
    }
    h->port_index = idx;
    if (svc->ports[idx].protocol == SPEC_PROTO_UDP)
        v_err(v, port_node, p.s, "port '%s' is udp; %s probe needs a tcp port",
              show_text(h->port, strlen(h->port)).s, kname);
}

static bool get_surge(struct vctx *v, const struct ynode *n, const char *path,
                      struct spec_scalar_or_pct *out)
{
    if (!v_visit(v, n))
        return false;
    enum ytype t = ytype_of(n);
    if (t == YT_INT) {
        long long x;
        v->visits--; /* get_int counts this node again */
        if (!get_int(v, n, path, 0, INT_MAX, &x))
            return false;
        out->value = (int)x;
        out->percent = false;
        return true;
    }
    if (t == YT_STR && text_ok(v, n, path)) {
        if (n->len > 0 && n->text[n->len - 1] == '%' && spec_parse_pct(n->text, out) == 0)
            return true;
        v_err(v, n, path, "must be an integer >= 0 or a percentage \"0%%\"..\"100%%\", got '%s'",
              show(n).s);
        return false;
    }
    if (t != YT_STR)
        type_err(v, n, path, "an integer or a percentage like \"25%\"");
    return false;
}

static void check_update(struct vctx *v, const struct ynode *n, const char *path,
                         struct spec_update *u)
{
    if (!expect_kind(v, n, path, YT_MAP, "a mapping"))
        return;
    enum { F_STRATEGY, F_SURGE, F_UNAVAIL, F_MINREADY, F_DEADLINE, F_ROLLBACK, F_GRACE, F_N };
    static const char *const names[] = {"strategy", "max_surge",     "max_unavailable", "min_ready",
                                        "deadline", "auto_rollback", "stop_grace"};
    const struct ynode *keys[F_N], *vals[F_N];
    map_fields(v, n, path, names, F_N, keys, vals);
    struct vpath p;
    if (vals[F_STRATEGY] != NULL) {
        p = path_key(path, names[F_STRATEGY], strlen(names[F_STRATEGY]));
        char *s = NULL;
        if (get_str(v, vals[F_STRATEGY], p.s, &s)) {
            if (strcmp(s, "recreate") == 0)
                u->strategy = SPEC_STRATEGY_RECREATE;
            else if (strcmp(s, "rolling") != 0)
                v_err(v, vals[F_STRATEGY], p.s, "must be rolling or recreate, got '%s'",
                      show(vals[F_STRATEGY]).s);
        }
        free(s);
    }
    bool surge_ok = true, unavail_ok = true;
    if (vals[F_SURGE] != NULL) {
        p = path_key(path, names[F_SURGE], strlen(names[F_SURGE]));
        surge_ok = get_surge(v, vals[F_SURGE], p.s, &u->max_surge);
    }
    if (vals[F_UNAVAIL] != NULL) {
        p = path_key(path, names[F_UNAVAIL], strlen(names[F_UNAVAIL]));
        unavail_ok = get_surge(v, vals[F_UNAVAIL], p.s, &u->max_unavailable);
    }
    if (surge_ok && unavail_ok && u->strategy == SPEC_STRATEGY_ROLLING && u->max_surge.value == 0 &&
        u->max_unavailable.value == 0)
        v_err(v, n, path,
              "max_surge and max_unavailable are both 0: a rolling update could never replace "
              "an instance");
    if (vals[F_MINREADY] != NULL) {
        p = path_key(path, names[F_MINREADY], strlen(names[F_MINREADY]));
        get_duration(v, vals[F_MINREADY], p.s, 0, INT64_MAX, &u->min_ready_ms);
    }
    if (vals[F_DEADLINE] != NULL) {
        p = path_key(path, names[F_DEADLINE], strlen(names[F_DEADLINE]));
        get_duration(v, vals[F_DEADLINE], p.s, 1000, INT64_MAX, &u->deadline_ms);
    }
    if (vals[F_ROLLBACK] != NULL) {
        p = path_key(path, names[F_ROLLBACK], strlen(names[F_ROLLBACK]));
        get_bool(v, vals[F_ROLLBACK], p.s, &u->auto_rollback);
    }
    if (vals[F_GRACE] != NULL) {
        p = path_key(path, names[F_GRACE], strlen(names[F_GRACE]));
        get_duration(v, vals[F_GRACE], p.s, 0, 3600000, &u->stop_grace_ms);
    }
}

static void check_autoscale(struct vctx *v, const struct ynode *n, const char *path,
                            struct spec_autoscale *a)
{
    if (!expect_kind(v, n, path, YT_MAP, "a mapping"))
        return;
    static const char *const names[] = {"min", "max", "cpu"};
    const struct ynode *keys[3], *vals[3];
    map_fields(v, n, path, names, 3, keys, vals);
    long long x[3] = {0, 0, 0};
    bool ok[3] = {false, false, false};
    static const long long lo[] = {1, 1, 1}, hi[] = {SPEC_MAX_REPLICAS, SPEC_MAX_REPLICAS, 100};
    for (int i = 0; i < 3; i++) {
        if (vals[i] == NULL) {
            missing(v, n, path, names[i]);
            continue;
        }
        struct vpath p = path_key(path, names[i], strlen(names[i]));
        ok[i] = get_int(v, vals[i], p.s, lo[i], hi[i], &x[i]);
    }
    if (ok[0] && ok[1] && x[1] < x[0]) {
        struct vpath p = path_key(path, "max", 3);
        v_err(v, vals[1], p.s, "must be >= min (%lld), got %lld", x[0], x[1]);
    }
    a->enabled = true;
    a->min = (int)x[0];
    a->max = (int)x[1];
    a->cpu = (int)x[2];
}

static void check_resources(struct vctx *v, const struct ynode *n, const char *path,
                            struct spec_resources *r)
{
    if (!expect_kind(v, n, path, YT_MAP, "a mapping"))
        return;
    static const char *const names[] = {"cpus", "memory"};
    const struct ynode *keys[2], *vals[2];
    map_fields(v, n, path, names, 2, keys, vals);
    if (vals[0] != NULL && v_visit(v, vals[0])) {
        struct vpath p = path_key(path, "cpus", 4);
        enum ytype t = ytype_of(vals[0]);
        if (t != YT_INT && t != YT_FLOAT) {
            type_err(v, vals[0], p.s, "a number of CPUs like 0.5 or 2");
        } else {
            double d = strtod(vals[0]->text, NULL);
            int64_t nano = isfinite(d) && d > 0 && d <= 1024 ? llround(d * 1e9) : 0;
            if (nano <= 0 || d > 1024)
                v_err(v, vals[0], p.s, "must be more than 0 and at most 1024, got %s",
                      show(vals[0]).s);
            else
                r->nano_cpus = nano;
        }
    }
    if (vals[1] != NULL && v_visit(v, vals[1])) {
        struct vpath p = path_key(path, "memory", 6);
        enum ytype t = ytype_of(vals[1]);
        int64_t bytes = -1;
        if (t != YT_INT && t != YT_STR) {
            type_err(v, vals[1], p.s, "a size like 256M or 1G");
        } else if (!text_ok(v, vals[1], p.s)) {
            /* reported */
        } else if (spec_parse_size(vals[1]->text, &bytes) < 0) {
            v_err(v, vals[1], p.s, "'%s' is not a size: write bytes or e.g. 512K, 256M, 1G, 1Gi",
                  show(vals[1]).s);
        } else if (bytes < SPEC_MIN_MEMORY) {
            v_err(v, vals[1], p.s, "must be at least 6M (Docker's minimum), got %s",
                  show(vals[1]).s);
        } else {
            r->memory_bytes = bytes;
        }
    }
}

static bool is_bind_source(const char *s)
{
    return s[0] == '/' || strcmp(s, ".") == 0 || strcmp(s, "..") == 0 || strncmp(s, "./", 2) == 0 ||
           strncmp(s, "../", 3) == 0;
}

static void report_dup_target(struct vctx *v, const char *path, const struct keyed *first,
                              const struct keyed *dup)
{
    struct vpath p = path_index(path, dup->idx);
    v_err(v, dup->node, p.s, "target '%s' is already mounted by volumes[%zu]",
          show_text(dup->key, dup->len).s, first->idx);
}

static void check_volumes(struct vctx *v, const struct ynode *n, const char *path,
                          struct spec_service *svc)
{
    if (!expect_kind(v, n, path, YT_SEQ, "a list of \"SOURCE:TARGET[:ro]\" strings"))
        return;
    svc->volumes = orch_xcalloc(n->n ? n->n : 1, sizeof(*svc->volumes));
    struct keyed *targets = orch_xcalloc(n->n ? n->n : 1, sizeof(*targets));
    size_t ntargets = 0;
    for (size_t i = 0; i < n->n && !v_stopped(v); i++) {
        struct vpath p = path_index(path, i);
        const struct ynode *item = n->items[i];
        _cleanup_free_ char *s = NULL;
        if (!get_str(v, item, p.s, &s))
            continue;
        struct shown sh = show(item);
        char *c1 = strchr(s, ':');
        char *c2 = c1 ? strchr(c1 + 1, ':') : NULL;
        if (c1 == NULL || (c2 != NULL && strchr(c2 + 1, ':') != NULL)) {
            v_err(v, item, p.s, "'%s' is not SOURCE:TARGET or SOURCE:TARGET:ro|rw", sh.s);
            continue;
        }
        *c1 = '\0';
        if (c2 != NULL)
            *c2 = '\0';
        const char *src = s, *target = c1 + 1, *mode = c2 ? c2 + 1 : NULL;
        struct spec_volume vol = {0};
        if (mode != NULL && strcmp(mode, "ro") == 0) {
            vol.read_only = true;
        } else if (mode != NULL && strcmp(mode, "rw") != 0) {
            v_err(v, item, p.s, "mode must be ro or rw, got '%s'", show_text(mode, strlen(mode)).s);
            continue;
        }
        if (src[0] == '\0') {
            v_err(v, item, p.s, "'%s' has an empty source", sh.s);
            continue;
        }
        if (is_bind_source(src)) {
            vol.kind = SPEC_VOLUME_BIND;
            if (src[0] == '/') {
                vol.source = orch_xstrdup(src);
            } else if (v->opts->base_dir == NULL || v->opts->base_dir[0] != '/') {
                v_err(v, item, p.s,
                      "relative bind mount '%s' needs the spec file's folder, which is unknown",
                      show_text(src, strlen(src)).s);
                continue;
            } else {
                vol.source = orch_xasprintf("%s/%s", v->opts->base_dir, src);
            }
            spec_path_normalise(vol.source);
        } else if (volume_name_valid(src)) {
            vol.kind = SPEC_VOLUME_NAMED;
            vol.source = orch_xstrdup(src);
        } else {
            v_err(v, item, p.s,
                  "source '%s' is neither a path (starting with /, ./ or ../) nor a volume name "
                  "([a-zA-Z0-9][a-zA-Z0-9_.-]*)",
                  show_text(src, strlen(src)).s);
            continue;
        }
        if (target[0] != '/') {
            v_err(v, item, p.s, "target '%s' must be an absolute path",
                  show_text(target, strlen(target)).s);
            free(vol.source);
            continue;
        }
        vol.target = orch_xstrdup(target);
        spec_path_normalise(vol.target);
        if (strcmp(vol.target, "/") == 0) {
            v_err(v, item, p.s, "cannot mount over the container's root '/'");
            free(vol.source);
            free(vol.target);
            continue;
        }
        targets[ntargets++] = (struct keyed){vol.target, strlen(vol.target), i, item};
        svc->volumes[svc->volumes_len++] = vol;
    }
    free(find_dups(v, path, targets, ntargets, n->n, report_dup_target));
    free(targets);
}

static void check_depends_on(struct vctx *v, const struct ynode *n, const char *path,
                             struct spec_service *svc, const struct ynode ***dep_nodes)
{
    if (!expect_kind(v, n, path, YT_SEQ, "a list of service names"))
        return;
    free(svc->depends_on);
    svc->depends_on = orch_xcalloc(n->n + 1, sizeof(char *));
    *dep_nodes = orch_xcalloc(n->n + 1, sizeof(**dep_nodes));
    for (size_t i = 0; i < n->n && !v_stopped(v); i++) {
        struct vpath p = path_index(path, i);
        char *name;
        if (!get_str(v, n->items[i], p.s, &name))
            continue;
        (*dep_nodes)[svc->depends_on_len] = n->items[i];
        svc->depends_on[svc->depends_on_len++] = name;
    }
}

static void check_service(struct vctx *v, const struct ynode *n, const char *path,
                          struct spec_service *svc, const struct ynode ***dep_nodes)
{
    if (!v_visit(v, n))
        return;
    if (n->kind != YNODE_MAP) {
        type_err(v, n, path, "a mapping with at least 'image'");
        return;
    }
    enum {
        F_IMAGE,
        F_REPLICAS,
        F_COMMAND,
        F_ENTRYPOINT,
        F_ENV,
        F_LABELS,
        F_PORTS,
        F_HEALTH,
        F_UPDATE,
        F_AUTOSCALE,
        F_RESOURCES,
        F_VOLUMES,
        F_DEPENDS,
        F_N
    };
    static const char *const names[] = {
        "image",  "replicas", "command",   "entrypoint", "env",     "labels",    "ports",
        "health", "update",   "autoscale", "resources",  "volumes", "depends_on"};
    const struct ynode *keys[F_N], *vals[F_N];
    map_fields(v, n, path, names, F_N, keys, vals);
    struct vpath p;
#define FIELD_PATH(f) (p = path_key(path, names[f], strlen(names[f])), p.s)
    if (vals[F_IMAGE] == NULL) {
        missing(v, n, path, "image");
    } else if (get_str(v, vals[F_IMAGE], FIELD_PATH(F_IMAGE), &svc->image)) {
        const char *why = NULL;
        if (svc->image[0] == '\0')
            v_err(v, vals[F_IMAGE], p.s, "must not be empty");
        else if (!spec_image_valid(svc->image, &why))
            v_err(v, vals[F_IMAGE], p.s, "'%s' is not a valid image reference: %s",
                  show(vals[F_IMAGE]).s, why);
    }
    if (vals[F_REPLICAS] != NULL) {
        long long x;
        if (get_int(v, vals[F_REPLICAS], FIELD_PATH(F_REPLICAS), 0, SPEC_MAX_REPLICAS, &x))
            svc->replicas = (int)x;
    }
    if (vals[F_COMMAND] != NULL)
        svc->has_command =
            get_argv(v, vals[F_COMMAND], FIELD_PATH(F_COMMAND), &svc->command, &svc->command_len);
    if (vals[F_ENTRYPOINT] != NULL)
        svc->has_entrypoint = get_argv(v, vals[F_ENTRYPOINT], FIELD_PATH(F_ENTRYPOINT),
                                       &svc->entrypoint, &svc->entrypoint_len);
    if (vals[F_ENV] != NULL)
        check_kv(v, vals[F_ENV], FIELD_PATH(F_ENV), KV_ENV, &svc->env, &svc->env_len);
    if (vals[F_LABELS] != NULL)
        check_kv(v, vals[F_LABELS], FIELD_PATH(F_LABELS), KV_LABELS, &svc->labels,
                 &svc->labels_len);
    if (vals[F_PORTS] != NULL)
        check_ports(v, vals[F_PORTS], FIELD_PATH(F_PORTS), svc);
    if (vals[F_HEALTH] != NULL)
        check_health(v, vals[F_HEALTH], FIELD_PATH(F_HEALTH), svc);
    if (vals[F_UPDATE] != NULL)
        check_update(v, vals[F_UPDATE], FIELD_PATH(F_UPDATE), &svc->update);
    if (vals[F_AUTOSCALE] != NULL)
        check_autoscale(v, vals[F_AUTOSCALE], FIELD_PATH(F_AUTOSCALE), &svc->autoscale);
    if (vals[F_RESOURCES] != NULL)
        check_resources(v, vals[F_RESOURCES], FIELD_PATH(F_RESOURCES), &svc->resources);
    if (vals[F_VOLUMES] != NULL)
        check_volumes(v, vals[F_VOLUMES], FIELD_PATH(F_VOLUMES), svc);
    if (vals[F_DEPENDS] != NULL)
        check_depends_on(v, vals[F_DEPENDS], FIELD_PATH(F_DEPENDS), svc, dep_nodes);
#undef FIELD_PATH
}

/* Fills the defaults of spec.h into a fresh service before its keys are read. */
static void service_defaults(struct spec_service *svc)
{
    svc->replicas = 1;
    svc->health.kind = SPEC_PROBE_NONE;
    svc->health.port_index = -1;
    svc->health.interval_ms = 2000;
    svc->health.timeout_ms = 1000;
    svc->health.retries = 3;
    svc->health.start_period_ms = 0;
    svc->update.strategy = SPEC_STRATEGY_ROLLING;
    svc->update.max_surge = (struct spec_scalar_or_pct){1, false};
    svc->update.max_unavailable = (struct spec_scalar_or_pct){0, false};
    svc->update.min_ready_ms = 0;
    svc->update.deadline_ms = 120000;
    svc->update.auto_rollback = true;
    svc->update.stop_grace_ms = 10000;
    svc->depends_on = orch_xcalloc(1, sizeof(char *));
}

/* --- depends_on across services ---------------------------------------------------------- */

struct name_index {
    const char *name;
    size_t idx;
};

static int name_index_cmp(const void *a, const void *b)
{
    return strcmp(((const struct name_index *)a)->name, ((const struct name_index *)b)->name);
}

static void report_dup_dep(struct vctx *v, const char *path, const struct keyed *first,
                           const struct keyed *dup)
{
    struct vpath p = path_index(path, dup->idx);
    v_err(v, dup->node, p.s, "'%s' is listed twice (first as depends_on[%zu])",
          show_text(dup->key, dup->len).s, first->idx);
}

/* stack[from..depth) is a cycle: each service depends on the next, the last on stack[from]
 * through its depends_on[last_j]. It is told from the service declared first, so the message
 * does not depend on where the search started, and reported at that service's entry. */
static void report_cycle(struct vctx *v, const struct spec_app *app,
                         const struct ynode ***dep_nodes, const size_t *stack, const size_t *next,
                         size_t from, size_t depth, size_t last_j)
{
    size_t len = depth - from;
    size_t start = 0;
    for (size_t k = 1; k < len; k++)
        if (stack[from + k] < stack[from + start])
            start = k;
    size_t s0 = stack[from + start];
    size_t j0 = start == len - 1 ? last_j : next[s0] - 1;
    struct orch_buf b = {0};
    struct shown first = show_text(app->services[s0].name, strlen(app->services[s0].name));
    orch_buf_puts(&b, first.s);
    for (size_t k = 1; k <= len; k++) {
        if (len > 16 && k == 8) {
            orch_buf_puts(&b, " -> ...");
            k = len - 4;
            continue;
        }
        size_t w = stack[from + (start + k) % len];
        struct shown ws = show_text(app->services[w].name, strlen(app->services[w].name));
        orch_buf_printf(&b, " -> %s", ws.s);
    }
    char path[400];
    snprintf(path, sizeof(path), "services.%s.depends_on[%zu]", first.s, j0);
    v_err(v, dep_nodes[s0][j0], path, "depends_on cycle: %s", b.data);
    orch_buf_free(&b);
}

static void check_dependencies(struct vctx *v, struct spec_app *app,
                               const struct ynode ***dep_nodes)
{
    size_t n = app->services_len;
    struct name_index *ix = orch_xcalloc(n ? n : 1, sizeof(*ix));
    const char **cands = orch_xcalloc(n ? n : 1, sizeof(char *));
    for (size_t i = 0; i < n; i++)
        ix[i] = (struct name_index){app->services[i].name, i};
    qsort(ix, n, sizeof(*ix), name_index_cmp);
    /* Valid edges per service, in depends_on order; -1 marks an entry already reported. */
    long **edges = orch_xcalloc(n ? n : 1, sizeof(long *));
    for (size_t i = 0; i < n && !v_stopped(v); i++) {
        struct spec_service *s = &app->services[i];
        struct shown sn = show_text(s->name, strlen(s->name));
        char path[400];
        snprintf(path, sizeof(path), "services.%s.depends_on", sn.s);
        edges[i] = orch_xcalloc(s->depends_on_len + 1, sizeof(long));
        struct keyed *k = orch_xcalloc(s->depends_on_len + 1, sizeof(*k));
        for (size_t j = 0; j < s->depends_on_len; j++)
            k[j] = (struct keyed){s->depends_on[j], strlen(s->depends_on[j]), j, dep_nodes[i][j]};
        bool *dup = find_dups(v, path, k, s->depends_on_len, s->depends_on_len, report_dup_dep);
        for (size_t j = 0; j < s->depends_on_len; j++) {
            const char *d = s->depends_on[j];
            const struct ynode *dn = dep_nodes[i][j];
            struct vpath p = path_index(path, j);
            struct name_index key = {d, 0};
            struct name_index *hit = bsearch(&key, ix, n, sizeof(*ix), name_index_cmp);
            edges[i][j] = -1;
            if (dup[j])
                continue;
            if (strcmp(d, s->name) == 0) {
                v_err(v, dn, p.s, "a service cannot depend on itself");
            } else if (hit == NULL) {
                /* Suggest any service but the one that declares the dependency. */
                size_t nc = 0;
                for (size_t c = 0; c < n && n <= SPEC_SUGGEST_MAX_CANDIDATES; c++)
                    if (c != i)
                        cands[nc++] = app->services[c].name;
                const char *sg = suggest(d, cands, nc);
                struct shown ds = show_text(d, strlen(d));
                if (sg != NULL)
                    v_err(v, dn, p.s, "no service named '%s' in this app; did you mean '%s'?", ds.s,
                          sg);
                else
                    v_err(v, dn, p.s, "no service named '%s' in this app", ds.s);
            } else {
                edges[i][j] = (long)hit->idx;
            }
        }
        free(dup);
        free(k);
    }

    /* Iterative depth-first search (a long chain must not exhaust the C stack); a grey
     * target closes a cycle, reported once at the edge that closes it. */
    unsigned char *color = orch_xcalloc(n ? n : 1, 1); /* 0 white, 1 grey, 2 black */
    size_t *stack = orch_xcalloc(n ? n : 1, sizeof(size_t));
    size_t *next = orch_xcalloc(n ? n : 1, sizeof(size_t));
    size_t *pos = orch_xcalloc(n ? n : 1, sizeof(size_t));
    for (size_t root = 0; root < n && !v_stopped(v); root++) {
        if (color[root] != 0 || edges[root] == NULL)
            continue;
        size_t depth = 0;
        stack[depth] = root;
        pos[root] = depth++;
        next[root] = 0;
        color[root] = 1;
        while (depth > 0 && !v_stopped(v)) {
            size_t u = stack[depth - 1];
            if (edges[u] == NULL || next[u] >= app->services[u].depends_on_len) {
                color[u] = 2;
                depth--;
                continue;
            }
            size_t j = next[u]++;
            if (edges[u][j] < 0)
                continue;
            size_t w = (size_t)edges[u][j];
            if (color[w] == 1) {
                report_cycle(v, app, dep_nodes, stack, next, pos[w], depth, j);
            } else if (color[w] == 0 && edges[w] != NULL) {
                color[w] = 1;
                next[w] = 0;
                pos[w] = depth;
                stack[depth++] = w;
            } else if (color[w] == 0) {
                color[w] = 2;
            }
        }
    }
    for (size_t i = 0; i < n; i++)
        free(edges[i]);
    free(edges);
    free(color);
    free(stack);
    free(next);
    free(pos);
    free(ix);
    free(cands);
}

/* --- the document ------------------------------------------------------------------------ */

static void report_dup_service(struct vctx *v, const char *path, const struct keyed *first,
                               const struct keyed *dup)
{
    v_err(v, dup->node, path, "duplicate service '%s' (first at line %d)",
          show_text(dup->key, dup->len).s, first->node->line);
}

static void check_services(struct vctx *v, const struct ynode *n, struct spec_app *app)
{
    if (!v_visit(v, n))
        return;
    if (n->kind != YNODE_MAP) {
        type_err(v, n, "services", "a mapping of service names to services");
        return;
    }
    if (n->n == 0) {
        v_err(v, n, "services", "must declare at least one service");
        return;
    }
    /* Keys: scalars, unique (reported as duplicate services). */
    struct keyed *k = orch_xcalloc(n->n, sizeof(*k));
    bool *bad = orch_xcalloc(n->n, sizeof(bool));
    size_t nk = 0;
    for (size_t i = 0; i < n->n; i++) {
        const struct ynode *key = n->pairs[i].key;
        if (!v_visit(v, key)) {
            bad[i] = true;
            continue;
        }
        if (key->kind != YNODE_SCALAR) {
            v_err(v, key, "services", "service names must be strings, got %s",
                  ytype_name(ytype_of(key)));
            bad[i] = true;
            continue;
        }
        k[nk++] = (struct keyed){key->text, key->len, i, key};
    }
    bool *dup = find_dups(v, "services", k, nk, n->n, report_dup_service);
    free(k);

    app->services = orch_xcalloc(n->n, sizeof(*app->services));
    v->dep_nodes = orch_xcalloc(n->n, sizeof(*v->dep_nodes));
    for (size_t i = 0; i < n->n && !v_stopped(v); i++) {
        if (bad[i] || dup[i])
            continue;
        const struct ynode *key = n->pairs[i].key;
        struct vpath path = path_key("services", key->text, key->len);
        if (!text_ok(v, key, "services"))
            continue;
        if (!orch_is_dns_label(key->text, SPEC_NAME_MAX))
            v_err(v, key, "services", "'%s' is not a valid service name: " NAME_RULE, show(key).s);
        size_t si = app->services_len++;
        struct spec_service *svc = &app->services[si];
        service_defaults(svc);
        svc->name = orch_xstrndup(key->text, key->len);
        svc->line = key->line;
        check_service(v, n->pairs[i].value, path.s, svc, &v->dep_nodes[si]);
    }
    free(bad);
    free(dup);
    if (!v_stopped(v))
        check_dependencies(v, app, v->dep_nodes);
}

static void check_root(struct vctx *v, const struct ynode *root, struct spec_app *app)
{
    if (root == NULL || (root->kind == YNODE_SCALAR && ytype_of(root) == YT_NULL)) {
        diag_add(&v->sink, 1, 1, "empty spec: expected a mapping with 'app' and 'services'");
        return;
    }
    if (!v_visit(v, root))
        return;
    if (root->kind != YNODE_MAP) {
        diag_add(&v->sink, 1, 1, "a spec is a mapping with 'app' and 'services', got %s",
                 ytype_name(ytype_of(root)));
        return;
    }
    static const char *const names[] = {"version", "app", "services"};
    const struct ynode *keys[3], *vals[3];
    map_fields(v, root, "", names, 3, keys, vals);
    app->version = 1;
    if (vals[0] != NULL) {
        long long x;
        if (get_int(v, vals[0], "version", 0, 1000000, &x) && x != 1)
            v_err(v, vals[0], "version", "unsupported spec version %lld; this orch reads version 1",
                  x);
    }
    if (vals[1] == NULL) {
        missing(v, root, "", "app");
    } else if (get_str(v, vals[1], "app", &app->app) &&
               !orch_is_dns_label(app->app, SPEC_NAME_MAX)) {
        v_err(v, vals[1], "app", "'%s' is not a valid app name: " NAME_RULE, show(vals[1]).s);
    }
    if (vals[2] == NULL)
        missing(v, root, "", "services");
    else
        check_services(v, vals[2], app);
}

int spec_parse(const char *text, size_t len, const struct spec_parse_options *opts,
               struct spec_app *out, struct spec_diags *diags, struct orch_error *err)
{
    static const struct spec_parse_options no_opts = {.file = "-", .base_dir = NULL};
    if (opts == NULL)
        opts = &no_opts;
    if (text == NULL)
        text = "", len = 0;
    const char *file = opts->file ? opts->file : "-";
    memset(out, 0, sizeof(*out));
    memset(diags, 0, sizeof(*diags));
    struct vctx v = {.sink = {.diags = diags}, .opts = opts};
    struct spec_app app = {0};
    if (len > SPEC_MAX_INPUT) {
        diag_add(&v.sink, 1, 1, "spec is too large: %zu bytes, the limit is %u MiB", len,
                 SPEC_MAX_INPUT >> 20);
    } else {
        struct ytree tree;
        struct ytree_error yerr;
        if (ytree_parse(text, len, &tree, &yerr) < 0) {
            diag_add(&v.sink, yerr.line, yerr.column, "%s", yerr.msg);
        } else {
            v.budget = 2 * tree.all_len + SPEC_ALIAS_BUDGET;
            check_root(&v, tree.root, &app);
            if (v.dep_nodes != NULL) {
                for (size_t i = 0; i < app.services_len; i++)
                    free(v.dep_nodes[i]);
                free(v.dep_nodes);
            }
        }
        ytree_free(&tree);
    }
    if (diags->n == 0) {
        *out = app;
        return 0;
    }
    spec_app_free(&app);
    diag_sort(diags);
    return orch_fail(err, ORCH_E_INVALID, 0, "%s:%d:%d: %s%s", file, diags->v[0].line,
                     diags->v[0].column, diags->v[0].message,
                     diags->n > 1 ? " (and more errors)" : "");
}
