/* Spec validation of `depends_on`: the per-service list, then across services (unknown
 * names, duplicates, self-dependencies and cycles, found without recursion). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "spec/validate_internal.h"
#include "spec/yaml_tree.h"

void v_check_depends_on(struct vctx *v, const struct ynode *n, const char *path,
                        struct spec_service *svc, const struct ynode ***dep_nodes)
{
    if (!v_expect_kind(v, n, path, YT_SEQ, "a list of service names"))
        return;
    free(svc->depends_on);
    svc->depends_on = orch_xcalloc(n->n + 1, sizeof(char *));
    *dep_nodes = orch_xcalloc(n->n + 1, sizeof(**dep_nodes));
    for (size_t i = 0; i < n->n && !v_stopped(v); i++) {
        struct vpath p = v_path_index(path, i);
        char *name;
        if (!v_get_str(v, n->items[i], p.s, &name))
            continue;
        (*dep_nodes)[svc->depends_on_len] = n->items[i];
        svc->depends_on[svc->depends_on_len++] = name;
    }
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
    struct vpath p = v_path_index(path, dup->idx);
    v_err(v, dup->node, p.s, "'%s' is listed twice (first as depends_on[%zu])",
          v_show_text(dup->key, dup->len).s, first->idx);
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
    struct shown first = v_show_text(app->services[s0].name, strlen(app->services[s0].name));
    orch_buf_puts(&b, first.s);
    for (size_t k = 1; k <= len; k++) {
        if (len > 16 && k == 8) {
            orch_buf_puts(&b, " -> ...");
            k = len - 4;
            continue;
        }
        size_t w = stack[from + (start + k) % len];
        struct shown ws = v_show_text(app->services[w].name, strlen(app->services[w].name));
        orch_buf_printf(&b, " -> %s", ws.s);
    }
    char path[400];
    snprintf(path, sizeof(path), "services.%s.depends_on[%zu]", first.s, j0);
    v_err(v, dep_nodes[s0][j0], path, "depends_on cycle: %s", b.data);
    orch_buf_free(&b);
}

void v_check_dependencies(struct vctx *v, struct spec_app *app, const struct ynode ***dep_nodes)
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
        struct shown sn = v_show_text(s->name, strlen(s->name));
        char path[400];
        snprintf(path, sizeof(path), "services.%s.depends_on", sn.s);
        edges[i] = orch_xcalloc(s->depends_on_len + 1, sizeof(long));
        struct keyed *k = orch_xcalloc(s->depends_on_len + 1, sizeof(*k));
        for (size_t j = 0; j < s->depends_on_len; j++)
            k[j] = (struct keyed){s->depends_on[j], strlen(s->depends_on[j]), j, dep_nodes[i][j]};
        bool *dup = v_find_dups(v, path, k, s->depends_on_len, s->depends_on_len, report_dup_dep);
        for (size_t j = 0; j < s->depends_on_len; j++) {
            const char *d = s->depends_on[j];
            const struct ynode *dn = dep_nodes[i][j];
            struct vpath p = v_path_index(path, j);
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
                const char *sg = v_suggest(d, cands, nc);
                struct shown ds = v_show_text(d, strlen(d));
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
