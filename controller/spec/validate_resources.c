/* Spec validation of what a service's container gets: `resources` (CPUs, memory) and
 * `volumes` (bind mounts and named volumes, compose short syntax; docs/spec.md, volumes). */
#include <ctype.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "spec/validate_internal.h"
#include "spec/yaml_tree.h"

#define SPEC_MIN_MEMORY 6291456 /* Docker refuses less than 6 MiB */

static bool volume_name_valid(const char *s)
{
    if (!isalnum((unsigned char)s[0]))
        return false;
    for (const char *p = s; *p; p++)
        if (!(isalnum((unsigned char)*p) || *p == '_' || *p == '.' || *p == '-'))
            return false;
    return true;
}

void v_check_resources(struct vctx *v, const struct ynode *n, const char *path,
                       struct spec_resources *r)
{
    if (!v_expect_kind(v, n, path, YT_MAP, "a mapping"))
        return;
    static const char *const names[] = {"cpus", "memory"};
    const struct ynode *keys[2], *vals[2];
    v_map_fields(v, n, path, names, 2, keys, vals);
    if (vals[0] != NULL && v_visit(v, vals[0])) {
        struct vpath p = v_path_key(path, "cpus", 4);
        enum ytype t = v_ytype_of(vals[0]);
        if (t != YT_INT && t != YT_FLOAT) {
            v_type_err(v, vals[0], p.s, "a number of CPUs like 0.5 or 2");
        } else {
            double d = strtod(vals[0]->text, NULL);
            int64_t nano = isfinite(d) && d > 0 && d <= 1024 ? llround(d * 1e9) : 0;
            if (nano <= 0 || d > 1024)
                v_err(v, vals[0], p.s, "must be more than 0 and at most 1024, got %s",
                      v_show(vals[0]).s);
            else
                r->nano_cpus = nano;
        }
    }
    if (vals[1] != NULL && v_visit(v, vals[1])) {
        struct vpath p = v_path_key(path, "memory", 6);
        enum ytype t = v_ytype_of(vals[1]);
        int64_t bytes = -1;
        if (t != YT_INT && t != YT_STR) {
            v_type_err(v, vals[1], p.s, "a size like 256M or 1G");
        } else if (!v_text_ok(v, vals[1], p.s)) {
            /* reported */
        } else if (spec_parse_size(vals[1]->text, &bytes) < 0) {
            v_err(v, vals[1], p.s, "'%s' is not a size: write bytes or e.g. 512K, 256M, 1G, 1Gi",
                  v_show(vals[1]).s);
        } else if (bytes < SPEC_MIN_MEMORY) {
            v_err(v, vals[1], p.s, "must be at least 6M (Docker's minimum), got %s",
                  v_show(vals[1]).s);
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
    struct vpath p = v_path_index(path, dup->idx);
    v_err(v, dup->node, p.s, "target '%s' is already mounted by volumes[%zu]",
          v_show_text(dup->key, dup->len).s, first->idx);
}

void v_check_volumes(struct vctx *v, const struct ynode *n, const char *path,
                     struct spec_service *svc)
{
    if (!v_expect_kind(v, n, path, YT_SEQ, "a list of \"SOURCE:TARGET[:ro]\" strings"))
        return;
    svc->volumes = orch_xcalloc(n->n ? n->n : 1, sizeof(*svc->volumes));
    struct keyed *targets = orch_xcalloc(n->n ? n->n : 1, sizeof(*targets));
    size_t ntargets = 0;
    for (size_t i = 0; i < n->n && !v_stopped(v); i++) {
        struct vpath p = v_path_index(path, i);
        const struct ynode *item = n->items[i];
        _cleanup_free_ char *s = NULL;
        if (!v_get_str(v, item, p.s, &s))
            continue;
        struct shown sh = v_show(item);
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
            v_err(v, item, p.s, "mode must be ro or rw, got '%s'",
                  v_show_text(mode, strlen(mode)).s);
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
                      v_show_text(src, strlen(src)).s);
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
                  v_show_text(src, strlen(src)).s);
            continue;
        }
        if (target[0] != '/') {
            v_err(v, item, p.s, "target '%s' must be an absolute path",
                  v_show_text(target, strlen(target)).s);
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
    free(v_find_dups(v, path, targets, ntargets, n->n, report_dup_target));
    free(targets);
}
