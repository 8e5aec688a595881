/* Spec validation of mappings and lists: unknown and duplicate keys (with a close-name
 * suggestion), schema mappings spread onto fields, argv lists and env/label maps. */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "spec/validate_internal.h"
#include "spec/yaml_tree.h"

/* --- mappings ---------------------------------------------------------------------------- */

/* A close candidate for a mistyped name: edit distance <= 2 (less than the name's length),
 * else a candidate that the name is a prefix of or that is a prefix of the name. */
const char *v_suggest(const char *name, const char *const *cands, size_t n)
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
    struct shown k = v_show(key);
    const char *s = memchr(key->text, '\0', key->len) ? NULL : v_suggest(key->text, names, nnames);
    if (s != NULL)
        v_err(v, key, path, "unknown key '%s'; did you mean '%s'?", k.s, s);
    else
        v_err(v, key, path, "unknown key '%s'", k.s);
}

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

bool *v_find_dups(struct vctx *v, const char *path, struct keyed *k, size_t n, size_t nflags,
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
          v_show_text(dup->key, dup->len).s, first->node->line);
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
            v_err(v, key, path, "keys must be strings, got %s", v_ytype_name(v_ytype_of(key)));
            skip_bad[i] = true;
            continue;
        }
        k[nk++] = (struct keyed){key->text, key->len, i, key};
    }
    bool *skip = v_find_dups(v, path, k, nk, map->n, report_dup_key);
    for (size_t i = 0; i < map->n; i++)
        skip[i] = skip[i] || skip_bad[i];
    free(skip_bad);
    free(k);
    return skip;
}

/* Distributes the pairs of a schema mapping onto names[]: vals[i]/keys[i] for names[i] (NULL
 * when absent). Unknown and duplicate keys are reported. */
void v_map_fields(struct vctx *v, const struct ynode *map, const char *path,
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
            v_err(v, key, path, "keys must be strings, got %s", v_ytype_name(v_ytype_of(key)));
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

void v_missing(struct vctx *v, const struct ynode *map, const char *path, const char *key)
{
    v_err(v, map, path, "missing required key '%s'", key);
}

/* --- argv lists, env and labels ---------------------------------------------------------- */

static bool env_name_valid(const char *s)
{
    if (!(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_'))
            return false;
    return true;
}

static void free_argv(char **argv, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(argv[i]);
    free(argv);
}

/* A non-empty list of scalars -> NULL-terminated argv. A plain string is refused with a hint
 * at the list form, since splitting it on spaces would guess at the user's quoting. */
bool v_get_argv(struct vctx *v, const struct ynode *n, const char *path, char ***out,
                size_t *out_len)
{
    if (!v_visit(v, n))
        return false;
    enum ytype t = v_ytype_of(n);
    if (t == YT_STR) {
        v_err(v, n, path,
              "must be a list, got a string; write it as a list like [\"/app\", \"serve\"], or "
              "[\"/bin/sh\", \"-c\", \"...\"] for a shell command");
        return false;
    }
    if (t != YT_SEQ) {
        v_type_err(v, n, path, "a list of strings");
        return false;
    }
    if (n->n == 0) {
        v_err(v, n, path, "must not be empty");
        return false;
    }
    char **argv = orch_xcalloc(n->n + 1, sizeof(char *));
    bool ok = true;
    for (size_t i = 0; i < n->n && !v_stopped(v); i++) {
        struct vpath p = v_path_index(path, i);
        if (!v_get_scalar_string(v, n->items[i], p.s, &argv[i])) {
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

void v_check_kv(struct vctx *v, const struct ynode *n, const char *path, enum kv_kind kind,
                struct spec_kv **out, size_t *out_len)
{
    if (!v_expect_kind(v, n, path, YT_MAP, "a mapping"))
        return;
    bool *skip = map_keys(v, n, path);
    struct spec_kv *kv = orch_xcalloc(n->n ? n->n : 1, sizeof(*kv));
    size_t len = 0;
    for (size_t i = 0; i < n->n && !v_stopped(v); i++) {
        if (skip[i])
            continue;
        const struct ynode *key = n->pairs[i].key;
        if (!v_text_ok(v, key, path))
            continue;
        struct shown ks = v_show(key);
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
        struct vpath p = v_path_key(path, key->text, key->len);
        char *value;
        if (!v_get_scalar_string(v, n->pairs[i].value, p.s, &value))
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
