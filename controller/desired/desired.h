/* The desired state of an app: what applying a spec changes (new revisions, scaling, new and
 * pruned services) as a pure diff, and the one-transaction write of that diff to the store.
 * Shared by `apply`, `apply --dry-run` and `diff`, so what diff shows is what apply does. */
#ifndef ORCH_DESIRED_DESIRED_H
#define ORCH_DESIRED_DESIRED_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "spec/spec.h"
#include "store/store.h"

/* What the store holds for one service now: the input of the pure diff. All borrowed. */
struct desired_current {
    const char *service;
    int64_t revision; /* 0: none yet */
    const char *hash; /* template hash of that revision */
    const char *template_json;
    const char *image;
    int replicas;
    const char *spec_json; /* the whole service as last applied (spec_service_to_json) */
};

enum desired_change_kind {
    DESIRED_UNCHANGED,
    DESIRED_CREATE,   /* a service new to the store: revision 1 */
    DESIRED_REVISION, /* the template changed: a new revision (replicas may change too) */
    DESIRED_SCALE,    /* only replicas changed */
    DESIRED_PRUNE,    /* --prune: in the store, not in the file */
};

/* One field of the template that differs, for diff output ("image", "env.GREETING", ...). */
struct desired_field {
    char *path;
    char *before; /* compact JSON, or NULL when absent */
    char *after;
};

struct desired_change {
    enum desired_change_kind kind;
    char *service;
    int64_t from_revision;
    int64_t to_revision; /* the number the new revision will get (from + 1 for DESIRED_REVISION) */
    int from_replicas;
    int to_replicas;
    char *from_image;
    char *to_image;
    bool autoscale_kept;    /* replicas kept because the autoscaler owns the count */
    bool autoscale_changed; /* only the autoscale block changed (no revision, no scaling) */
    bool published_changed; /* published ports changed (no revision, no scaling) */
    struct desired_field *fields;
    size_t fields_len;
    const struct spec_service *spec; /* borrowed from the spec app; NULL for PRUNE */
};

struct desired_diff {
    char *app;
    struct desired_change *v; /* file order, then pruned services by name */
    size_t n;
};

/* Pure: what applying app over current[0..n) changes. next_revision[i] is the number the next
 * revision of current[i] gets (numbers are never reused); pass NULL to use revision + 1. */
int desired_diff_compute(const struct spec_app *app, const struct desired_current *current,
                         const int64_t *next_revision, size_t n, bool prune,
                         struct desired_diff *out, struct orch_error *err);
void desired_diff_free(struct desired_diff *d);

/* True when the diff changes anything. */
bool desired_diff_has_changes(const struct desired_diff *d);

/* Loads the current state of app from the store and computes the diff (read-only). */
int desired_diff_load(struct store *s, const struct spec_app *app, bool prune,
                      struct desired_diff *out, struct orch_error *err);

struct desired_apply_options {
    const char *spec_path; /* recorded on the app; may be "" */
    const char *message;   /* -m, or the command line */
    int64_t now_ms;
};

/* Computes the diff of app against the store and writes it, both in one transaction: app row,
 * new revisions (state pending), services, a rollout record per new revision, events. Nothing
 * is written when nothing changed. *d (new) gets the diff, with each new revision's number as
 * the store gave it. */
int desired_apply(struct store *s, const struct spec_app *app, bool prune,
                  const struct desired_apply_options *opts, struct desired_diff *d,
                  struct orch_error *err);

#endif
