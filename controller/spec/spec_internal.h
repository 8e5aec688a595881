/* Internals shared by the spec module's files; not part of its API. */
#ifndef ORCH_SPEC_INTERNAL_H
#define ORCH_SPEC_INTERNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "spec/spec.h"

#define SPEC_MAX_DIAGS 100 /* after this many errors, one "too many errors" line and stop */

/* Collects diagnostics up to SPEC_MAX_DIAGS. */
struct diag_sink {
    struct spec_diags *diags;
    bool full; /* the "too many errors" line was written: callers should stop */
};

/* Appends "MESSAGE" at line:column unless the sink is full. Returns false when full. */
bool diag_add(struct diag_sink *s, int line, int column, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Sorts the diagnostics by position, keeping the "too many errors" line last and the order
 * of diagnostics at the same position. */
void diag_sort(struct spec_diags *d);

/* Writes text[0..len) for a message into out (size >= 80): at most ~60 bytes, control
 * characters escaped, cut on a UTF-8 boundary with "..." when longer. Keeps diagnostics
 * one line each and small when a hostile file has megabyte-long keys. */
void diag_show(const char *text, size_t len, char *out, size_t out_size);

/* Normalises an absolute path in place: collapses "//", "." and ".." (".." at the root stays
 * at the root) and drops a trailing '/' except for "/" itself. */
void spec_path_normalise(char *path);

/* Checks an image reference ([host[:port]/]path[:tag][@sha256:64hex]); on failure returns
 * false and points *why at a static reason. */
bool spec_image_valid(const char *ref, const char **why);

#endif
