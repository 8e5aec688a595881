/* Internals of the spec validator (validate*.c); not part of the spec module's API.
 * validate_scalar.c and validate_map.c hold the primitives every section uses; one file per
 * section of a service (ports, health, update, resources, depends_on) checks its keys;
 * validate.c walks the document. Every function reports its own errors at the node where
 * they are and fills the model only with values that passed. */
#ifndef ORCH_SPEC_VALIDATE_INTERNAL_H
#define ORCH_SPEC_VALIDATE_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "spec/spec_internal.h"
#include "spec/yaml_tree.h"

#define SPEC_SUGGEST_MAX_CANDIDATES 1000

#define NAME_RULE                                                                                  \
    "use 1-40 lowercase letters, digits and '-', starting and ending with a letter or digit"

struct vctx {
    struct diag_sink sink;
    const struct spec_parse_options *opts;
    size_t visits;
    size_t budget;
    bool stop; /* the alias budget ran out: validation ends */
    /* Per service of the model: the depends_on item nodes, for later positioned checks. */
    const struct ynode ***dep_nodes;
};

/* --- context (validate_scalar.c) --------------------------------------------------------- */

bool v_stopped(const struct vctx *v);
/* Reports "PATH: MESSAGE" (or "MESSAGE" at the top level) at node n. */
void v_err(struct vctx *v, const struct ynode *n, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/* Counts a visit of n; false (and one error) once the budget is spent. */
bool v_visit(struct vctx *v, const struct ynode *n);

/* --- scalar types (validate_scalar.c) ---------------------------------------------------- */

enum ytype { YT_NULL, YT_BOOL, YT_INT, YT_FLOAT, YT_STR, YT_SEQ, YT_MAP, YT_BADTAG };

/* The YAML 1.2 core schema type of n; YT_BADTAG for a tag that does not fit its text. */
enum ytype v_ytype_of(const struct ynode *n);
/* "a string", "an integer", ...: for messages. */
const char *v_ytype_name(enum ytype t);

/* A short, one-line rendering of a scalar for messages. */
struct shown {
    char s[96];
};
struct shown v_show_text(const char *text, size_t len);
struct shown v_show(const struct ynode *n);

/* Builds "PARENT.KEY" / "PARENT[i]" paths, keeping them short for hostile keys. */
struct vpath {
    char s[320];
};
struct vpath v_path_key(const char *parent, const char *text, size_t len);
struct vpath v_path_index(const char *parent, size_t i);

/* Scalar text usable as a C string and a JSON string. */
bool v_text_ok(struct vctx *v, const struct ynode *n, const char *path);
/* Reports "must be WANT, got TYPE" at n. */
void v_type_err(struct vctx *v, const struct ynode *n, const char *path, const char *want);

/* Typed getters: each visits the node and reports its own errors; *out is new on success. */
bool v_get_str(struct vctx *v, const struct ynode *n, const char *path, char **out);
bool v_get_int(struct vctx *v, const struct ynode *n, const char *path, long long lo, long long hi,
               long long *out);
bool v_get_bool(struct vctx *v, const struct ynode *n, const char *path, bool *out);
/* Env values, labels and argv items: any scalar, stringified. */
bool v_get_scalar_string(struct vctx *v, const struct ynode *n, const char *path, char **out);
/* Durations are strings with units; the plain integer 0 also means zero. */
bool v_get_duration(struct vctx *v, const struct ynode *n, const char *path, int64_t min,
                    int64_t max, int64_t *out);
/* Visits n and checks it is of type want (described as what in the error). */
bool v_expect_kind(struct vctx *v, const struct ynode *n, const char *path, enum ytype want,
                   const char *what);

/* --- mappings and lists (validate_map.c) ------------------------------------------------- */

/* A close candidate for a mistyped name: edit distance <= 2 (less than the name's length),
 * else a candidate that the name is a prefix of or that is a prefix of the name. */
const char *v_suggest(const char *name, const char *const *cands, size_t n);

/* Sorts entries by key and reports each repeated key at its later occurrence. */
struct keyed {
    const char *key;
    size_t len;
    size_t idx;
    const struct ynode *node;
};

/* Sorts k[0..n) and calls report(first, dup) for every repeat; returns a new array of n
 * flags, true for entries that repeat an earlier one (by idx). */
typedef void (*dup_report_fn)(struct vctx *v, const char *path, const struct keyed *first,
                              const struct keyed *dup);
bool *v_find_dups(struct vctx *v, const char *path, struct keyed *k, size_t n, size_t nflags,
                  dup_report_fn report);

/* Distributes the pairs of a schema mapping onto names[]: vals[i]/keys[i] for names[i] (NULL
 * when absent). Unknown and duplicate keys are reported. */
void v_map_fields(struct vctx *v, const struct ynode *map, const char *path,
                  const char *const *names, size_t nnames, const struct ynode **keys,
                  const struct ynode **vals);
/* Reports "missing required key 'KEY'" at map. */
void v_missing(struct vctx *v, const struct ynode *map, const char *path, const char *key);

/* A non-empty list of scalars -> NULL-terminated argv. A plain string is refused with a hint
 * at the list form, since splitting it on spaces would guess at the user's quoting. */
bool v_get_argv(struct vctx *v, const struct ynode *n, const char *path, char ***out,
                size_t *out_len);

enum kv_kind { KV_ENV, KV_LABELS };
/* An env or labels mapping -> key/value pairs sorted by key. */
void v_check_kv(struct vctx *v, const struct ynode *n, const char *path, enum kv_kind kind,
                struct spec_kv **out, size_t *out_len);

/* --- the sections of a service (one file each) ------------------------------------------- */

void v_check_ports(struct vctx *v, const struct ynode *n, const char *path,
                   struct spec_service *svc);
/* After v_check_ports: the probe's port is resolved against svc->ports. */
void v_check_health(struct vctx *v, const struct ynode *n, const char *path,
                    struct spec_service *svc);
void v_check_update(struct vctx *v, const struct ynode *n, const char *path, struct spec_update *u);
void v_check_autoscale(struct vctx *v, const struct ynode *n, const char *path,
                       struct spec_autoscale *a);
void v_check_resources(struct vctx *v, const struct ynode *n, const char *path,
                       struct spec_resources *r);
void v_check_volumes(struct vctx *v, const struct ynode *n, const char *path,
                     struct spec_service *svc);
/* The service's own depends_on list; *dep_nodes (new) keeps each item's node for
 * v_check_dependencies. */
void v_check_depends_on(struct vctx *v, const struct ynode *n, const char *path,
                        struct spec_service *svc, const struct ynode ***dep_nodes);
/* Across the services of app: one service per published port (the balancer listens once). */
void v_check_published(struct vctx *v, const struct spec_app *app);
/* Across the services of app: unknown names, duplicates, self-dependencies and cycles. */
void v_check_dependencies(struct vctx *v, struct spec_app *app, const struct ynode ***dep_nodes);

#endif
