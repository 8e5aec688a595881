/* A small YAML node tree built from libyaml's event parser, internal to the spec module.
 * It keeps what the validator needs and libyaml's document loader throws away or cannot
 * bound: 1-based positions of every node, the explicit tag and whether a scalar was plain
 * (so a quoted "3" stays a string), and hard limits on nesting and node count. */
#ifndef ORCH_SPEC_YAML_TREE_H
#define ORCH_SPEC_YAML_TREE_H

#include <stdbool.h>
#include <stddef.h>

#define YTREE_MAX_DEPTH 64       /* collections nested deeper than this are refused */
#define YTREE_MAX_NODES 1000000u /* bounds memory for hostile input of SPEC_MAX_INPUT bytes */

enum ynode_kind { YNODE_SCALAR, YNODE_SEQ, YNODE_MAP };

struct ypair {
    struct ynode *key;
    struct ynode *value;
};

struct ynode {
    enum ynode_kind kind;
    int line;   /* 1-based */
    int column; /* 1-based, in characters as libyaml counts them */
    /* A scalar written without quotes or block indicators: only plain scalars resolve to
     * null, booleans and numbers. */
    bool plain;
    /* A shallow copy made where an alias (*name) was used: it has the alias' position but
     * shares tag, text and children with the anchored node, which owns them. */
    bool alias;
    char *tag;            /* explicit tag ("tag:yaml.org,2002:str"), NULL when none */
    char *text;           /* SCALAR: the value, NUL-terminated (may contain NUL bytes before len) */
    size_t len;           /* SCALAR: bytes of text */
    size_t n;             /* SEQ: items; MAP: pairs */
    struct ynode **items; /* SEQ */
    struct ypair *pairs;  /* MAP */
};

struct ytree {
    struct ynode *root; /* borrowed from all[]; NULL for an empty stream */
    struct ynode **all; /* every node allocated, for freeing */
    size_t all_len;
    size_t all_cap;
    size_t documents; /* documents seen (the parse stops at the second) */
};

/* A parse failure: position (1-based) and message. */
struct ytree_error {
    int line;
    int column;
    char msg[512];
};

/* Parses text[0..len) into *tree (new; free with ytree_free even on failure). Returns 0, or
 * -1 with *yerr filled: libyaml's syntax/encoding errors at its problem mark, an undefined
 * alias, nesting deeper than YTREE_MAX_DEPTH, too many nodes, more than one document. */
int ytree_parse(const char *text, size_t len, struct ytree *tree, struct ytree_error *yerr);

void ytree_free(struct ytree *tree);

#endif
