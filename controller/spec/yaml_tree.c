/* YAML text -> struct ytree with libyaml's event parser. Owns the limits that make hostile
 * input cheap (nesting depth, node count, one document) and alias resolution; it knows
 * nothing of the spec's schema and resolves no types. Anchors are registered only when their
 * node is complete, so an alias can never form a cycle. */
#include "spec/yaml_tree.h"

#include <string.h>
#include <yaml.h>

#include "base/util.h"

/* Anchor name -> node: open addressing, so a file with many anchors stays linear. */
struct anchor_slot {
    char *name; /* owned */
    struct ynode *node;
};

struct anchor_map {
    struct anchor_slot *slots;
    size_t cap; /* power of two */
    size_t len;
};

static uint64_t anchor_hash(const char *s)
{
    uint64_t h = 1469598103934665603ull;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 1099511628211ull;
    }
    return h;
}

static struct anchor_slot *anchor_find_slot(struct anchor_slot *slots, size_t cap, const char *name)
{
    size_t i = anchor_hash(name) & (cap - 1);
    while (slots[i].name != NULL && strcmp(slots[i].name, name) != 0)
        i = (i + 1) & (cap - 1);
    return &slots[i];
}

/* Takes name. A later anchor of the same name replaces the earlier one, as YAML says. */
static void anchor_put(struct anchor_map *m, char *name, struct ynode *node)
{
    if ((m->len + 1) * 2 > m->cap) {
        size_t ncap = m->cap ? m->cap * 2 : 16;
        struct anchor_slot *ns = orch_xcalloc(ncap, sizeof(*ns));
        for (size_t i = 0; i < m->cap; i++)
            if (m->slots[i].name != NULL)
                *anchor_find_slot(ns, ncap, m->slots[i].name) = m->slots[i];
        free(m->slots);
        m->slots = ns;
        m->cap = ncap;
    }
    struct anchor_slot *s = anchor_find_slot(m->slots, m->cap, name);
    if (s->name != NULL) {
        free(name);
    } else {
        s->name = name;
        m->len++;
    }
    s->node = node;
}

static struct ynode *anchor_get(const struct anchor_map *m, const char *name)
{
    if (m->cap == 0)
        return NULL;
    return anchor_find_slot(m->slots, m->cap, name)->node;
}

static void anchor_map_free(struct anchor_map *m)
{
    for (size_t i = 0; i < m->cap; i++)
        free(m->slots[i].name);
    free(m->slots);
}

struct frame {
    struct ynode *node;
    struct ynode *pending_key; /* MAP: a key waiting for its value */
    char *anchor;              /* owned until the collection ends */
    size_t cap;                /* capacity of items/pairs */
};

struct builder {
    struct ytree *tree;
    struct ytree_error *yerr;
    struct anchor_map anchors;
    struct frame stack[YTREE_MAX_DEPTH];
    int depth;
};

static int build_fail(struct builder *b, const yaml_mark_t *m, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int build_fail(struct builder *b, const yaml_mark_t *m, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(b->yerr->msg, sizeof(b->yerr->msg), fmt, ap);
    va_end(ap);
    b->yerr->line = (int)m->line + 1;
    b->yerr->column = (int)m->column + 1;
    return -1;
}

static struct ynode *node_new(struct builder *b, enum ynode_kind kind, const yaml_mark_t *m)
{
    struct ytree *t = b->tree;
    if (t->all_len >= YTREE_MAX_NODES)
        return NULL;
    if (t->all_len == t->all_cap) {
        t->all_cap = t->all_cap ? t->all_cap * 2 : 64;
        t->all = orch_xrealloc(t->all, t->all_cap * sizeof(*t->all));
    }
    struct ynode *n = orch_xcalloc(1, sizeof(*n));
    n->kind = kind;
    n->line = (int)m->line + 1;
    n->column = (int)m->column + 1;
    t->all[t->all_len++] = n;
    return n;
}

/* Hangs a finished node under the innermost open collection (or makes it the root). */
static void attach(struct builder *b, struct ynode *n)
{
    if (b->depth == 0) {
        b->tree->root = n;
        return;
    }
    struct frame *f = &b->stack[b->depth - 1];
    struct ynode *parent = f->node;
    if (parent->kind == YNODE_SEQ) {
        if (parent->n == f->cap) {
            f->cap = f->cap ? f->cap * 2 : 4;
            parent->items = orch_xrealloc(parent->items, f->cap * sizeof(*parent->items));
        }
        parent->items[parent->n++] = n;
        return;
    }
    if (f->pending_key == NULL) {
        f->pending_key = n;
        return;
    }
    if (parent->n == f->cap) {
        f->cap = f->cap ? f->cap * 2 : 4;
        parent->pairs = orch_xrealloc(parent->pairs, f->cap * sizeof(*parent->pairs));
    }
    parent->pairs[parent->n].key = f->pending_key;
    parent->pairs[parent->n].value = n;
    parent->n++;
    f->pending_key = NULL;
}

/* Steals a libyaml-allocated string out of an event (yaml_event_delete then frees NULL). */
static char *steal_yaml_str(yaml_char_t **p)
{
    char *s = (char *)*p;
    *p = NULL;
    return s;
}

static int too_many_nodes(struct builder *b, const yaml_mark_t *m)
{
    return build_fail(b, m, "too many YAML nodes (more than %u)", YTREE_MAX_NODES);
}

static int on_event(struct builder *b, yaml_event_t *ev, bool *done)
{
    struct ynode *n;
    switch (ev->type) {
    case YAML_NO_EVENT:
    case YAML_STREAM_START_EVENT:
    case YAML_DOCUMENT_END_EVENT:
        return 0;
    case YAML_STREAM_END_EVENT:
        *done = true;
        return 0;
    case YAML_DOCUMENT_START_EVENT:
        if (b->tree->documents++ > 0)
            return build_fail(b, &ev->start_mark,
                              "more than one YAML document: a spec file holds exactly one");
        return 0;
    case YAML_ALIAS_EVENT: {
        const char *name = (const char *)ev->data.alias.anchor;
        struct ynode *target = anchor_get(&b->anchors, name);
        if (target == NULL)
            return build_fail(b, &ev->start_mark,
                              "alias '*%.64s' refers to no anchor defined before it", name);
        n = node_new(b, target->kind, &ev->start_mark);
        if (n == NULL)
            return too_many_nodes(b, &ev->start_mark);
        int line = n->line, column = n->column;
        *n = *target;
        n->line = line;
        n->column = column;
        n->alias = true;
        attach(b, n);
        return 0;
    }
    case YAML_SCALAR_EVENT:
        n = node_new(b, YNODE_SCALAR, &ev->start_mark);
        if (n == NULL)
            return too_many_nodes(b, &ev->start_mark);
        n->len = ev->data.scalar.length;
        n->text = steal_yaml_str(&ev->data.scalar.value);
        n->plain = ev->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
        n->tag = steal_yaml_str(&ev->data.scalar.tag);
        if (n->tag != NULL && strcmp(n->tag, "!") == 0) {
            /* The non-specific tag "!" forces a plain scalar to be a string. */
            free(n->tag);
            n->tag = NULL;
            n->plain = false;
        }
        if (ev->data.scalar.anchor != NULL)
            anchor_put(&b->anchors, steal_yaml_str(&ev->data.scalar.anchor), n);
        attach(b, n);
        return 0;
    case YAML_SEQUENCE_START_EVENT:
    case YAML_MAPPING_START_EVENT: {
        if (b->depth >= YTREE_MAX_DEPTH)
            return build_fail(b, &ev->start_mark, "nesting deeper than %d levels", YTREE_MAX_DEPTH);
        bool seq = ev->type == YAML_SEQUENCE_START_EVENT;
        n = node_new(b, seq ? YNODE_SEQ : YNODE_MAP, &ev->start_mark);
        if (n == NULL)
            return too_many_nodes(b, &ev->start_mark);
        struct frame *f = &b->stack[b->depth++];
        memset(f, 0, sizeof(*f));
        f->node = n;
        if (seq) {
            n->tag = steal_yaml_str(&ev->data.sequence_start.tag);
            f->anchor = steal_yaml_str(&ev->data.sequence_start.anchor);
        } else {
            n->tag = steal_yaml_str(&ev->data.mapping_start.tag);
            f->anchor = steal_yaml_str(&ev->data.mapping_start.anchor);
        }
        return 0;
    }
    case YAML_SEQUENCE_END_EVENT:
    case YAML_MAPPING_END_EVENT: {
        struct frame *f = &b->stack[--b->depth];
        n = f->node;
        if (f->anchor != NULL)
            anchor_put(&b->anchors, f->anchor, n);
        f->anchor = NULL;
        attach(b, n);
        return 0;
    }
    }
    return 0;
}

/* libyaml's reader errors carry a byte offset but no mark: count lines and characters. */
static void offset_to_mark(const char *text, size_t len, size_t off, int *line, int *column)
{
    if (off > len)
        off = len;
    int l = 1, c = 1;
    for (size_t i = 0; i < off; i++) {
        unsigned char ch = (unsigned char)text[i];
        if (ch == '\n') {
            l++;
            c = 1;
        } else if ((ch & 0xc0) != 0x80) {
            c++;
        }
    }
    *line = l;
    *column = c;
}

/* The byte at a 0-based line and character column, or 0 past the end. */
static char char_at_mark(const char *text, size_t len, size_t line, size_t column)
{
    size_t i = 0;
    for (size_t l = 0; l < line && i < len; i++)
        if (text[i] == '\n')
            l++;
    for (size_t c = 0; i < len && text[i] != '\n'; i++) {
        if (((unsigned char)text[i] & 0xc0) == 0x80)
            continue;
        if (c++ == column)
            return text[i];
    }
    return 0;
}

/* libyaml takes a key longer than 1024 characters for a plain scalar and then trips on its ':'
 * ("mapping values are not allowed", or "could not find expected ':'" when scanning the key):
 * report that as the key's length, at the key. True when it was that. */
static bool long_key(const yaml_parser_t *p, const char *text, size_t len, struct ytree_error *yerr)
{
    const yaml_mark_t *m =
        p->context && strstr(p->context, "simple key") ? &p->context_mark : &p->problem_mark;
    size_t i = 0;
    for (size_t l = 0; l < m->line && i < len; i++)
        if (text[i] == '\n')
            l++;
    size_t line_start = i;
    size_t end = line_start;
    while (end < len && text[end] != '\n')
        end++;
    size_t k = line_start;
    while (k < end &&
           (text[k] == ' ' || text[k] == '-' || text[k] == '?' || text[k] == '{' || text[k] == '['))
        k++;
    size_t colon = k;
    while (colon < end && !(text[colon] == ':' && (colon + 1 == end || text[colon + 1] == ' ')))
        colon++;
    size_t chars = 0;
    for (size_t j = k; j < colon; j++)
        chars += ((unsigned char)text[j] & 0xc0) != 0x80;
    if (colon >= end || chars <= 1024)
        return false;
    yerr->line = (int)m->line + 1;
    yerr->column = (int)(k - line_start) + 1;
    snprintf(yerr->msg, sizeof(yerr->msg),
             "key is too long: %zu characters, the limit is 1024 (YAML's limit for a key)", chars);
    return true;
}

static void parser_error(const yaml_parser_t *p, const char *text, size_t len,
                         struct ytree_error *yerr)
{
    const char *problem = p->problem ? p->problem : "unknown error";
    switch (p->error) {
    case YAML_READER_ERROR:
        offset_to_mark(text, len, p->problem_offset, &yerr->line, &yerr->column);
        if (p->problem_value != -1)
            snprintf(yerr->msg, sizeof(yerr->msg), "invalid input: %s (value 0x%x)", problem,
                     (unsigned)p->problem_value);
        else
            snprintf(yerr->msg, sizeof(yerr->msg), "invalid input: %s", problem);
        return;
    case YAML_MEMORY_ERROR:
        yerr->line = yerr->column = 1;
        snprintf(yerr->msg, sizeof(yerr->msg), "out of memory while parsing YAML");
        return;
    default:
        if (long_key(p, text, len, yerr))
            return;
        yerr->line = (int)p->problem_mark.line + 1;
        yerr->column = (int)p->problem_mark.column + 1;
        const char *hint =
            char_at_mark(text, len, p->problem_mark.line, p->problem_mark.column) == '\t'
                ? "; YAML does not allow tabs for indentation"
                : "";
        if (p->context != NULL)
            snprintf(yerr->msg, sizeof(yerr->msg),
                     "YAML syntax error: %s (%s that starts at line %zu, column %zu)%s", problem,
                     p->context, p->context_mark.line + 1, p->context_mark.column + 1, hint);
        else
            snprintf(yerr->msg, sizeof(yerr->msg), "YAML syntax error: %s%s", problem, hint);
        return;
    }
}

int ytree_parse(const char *text, size_t len, struct ytree *tree, struct ytree_error *yerr)
{
    memset(tree, 0, sizeof(*tree));
    struct builder b = {.tree = tree, .yerr = yerr};
    yaml_parser_t p;
    if (!yaml_parser_initialize(&p)) {
        yerr->line = yerr->column = 1;
        snprintf(yerr->msg, sizeof(yerr->msg), "cannot initialise the YAML parser");
        return -1;
    }
    yaml_parser_set_input_string(&p, (const unsigned char *)text, len);
    int rc = 0;
    bool done = false;
    while (!done) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&p, &ev)) {
            parser_error(&p, text, len, yerr);
            rc = -1;
            break;
        }
        rc = on_event(&b, &ev, &done);
        yaml_event_delete(&ev);
        if (rc < 0)
            break;
    }
    for (int i = 0; i < b.depth; i++)
        free(b.stack[i].anchor);
    anchor_map_free(&b.anchors);
    yaml_parser_delete(&p);
    return rc;
}

void ytree_free(struct ytree *tree)
{
    for (size_t i = 0; i < tree->all_len; i++) {
        struct ynode *n = tree->all[i];
        if (!n->alias) {
            free(n->tag);
            free(n->text);
            free(n->items);
            free(n->pairs);
        }
        free(n);
    }
    free(tree->all);
    memset(tree, 0, sizeof(*tree));
}
