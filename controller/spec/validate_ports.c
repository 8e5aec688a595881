/* Spec validation of a service's `ports`: names, container ports, protocols, duplicates
 * (docs/spec.md, ports). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "spec/validate_internal.h"
#include "spec/yaml_tree.h"

static void report_dup_port_name(struct vctx *v, const char *path, const struct keyed *first,
                                 const struct keyed *dup)
{
    struct vpath p = v_path_index(path, dup->idx);
    v_err(v, dup->node, p.s, "port name '%s' is already used by ports[%zu]",
          v_show_text(dup->key, dup->len).s, first->idx);
}

static void report_dup_port(struct vctx *v, const char *path, const struct keyed *first,
                            const struct keyed *dup)
{
    struct vpath p = v_path_index(path, dup->idx);
    v_err(v, dup->node, p.s, "port %s is already declared by ports[%zu]", dup->key, first->idx);
}

void v_check_ports(struct vctx *v, const struct ynode *n, const char *path,
                   struct spec_service *svc)
{
    if (!v_expect_kind(v, n, path, YT_SEQ, "a list of ports"))
        return;
    static const char *const names[] = {"name", "container", "protocol"};
    svc->ports = orch_xcalloc(n->n ? n->n : 1, sizeof(*svc->ports));
    struct keyed *byname = orch_xcalloc(n->n ? n->n : 1, sizeof(*byname));
    struct keyed *bynum = orch_xcalloc(n->n ? n->n : 1, sizeof(*bynum));
    char(*numkeys)[16] = orch_xcalloc(n->n ? n->n : 1, sizeof(*numkeys));
    size_t nbyname = 0, nbynum = 0;
    for (size_t i = 0; i < n->n && !v_stopped(v); i++) {
        struct vpath p = v_path_index(path, i);
        const struct ynode *item = n->items[i];
        if (!v_visit(v, item))
            break;
        if (item->kind != YNODE_MAP) {
            v_type_err(v, item, p.s, "a mapping with 'name' and 'container'");
            continue;
        }
        const struct ynode *keys[3], *vals[3];
        v_map_fields(v, item, p.s, names, 3, keys, vals);
        struct spec_port port = {.container = 0, .protocol = SPEC_PROTO_TCP};
        if (vals[0] == NULL) {
            v_missing(v, item, p.s, "name");
        } else {
            struct vpath pp = v_path_key(p.s, "name", 4);
            if (v_get_str(v, vals[0], pp.s, &port.name)) {
                if (!orch_is_dns_label(port.name, SPEC_NAME_MAX)) {
                    v_err(v, vals[0], pp.s, "'%s' is not a valid port name: " NAME_RULE,
                          v_show(vals[0]).s);
                } else {
                    byname[nbyname++] = (struct keyed){port.name, strlen(port.name), i, vals[0]};
                }
            }
        }
        if (vals[1] == NULL) {
            v_missing(v, item, p.s, "container");
        } else {
            struct vpath pp = v_path_key(p.s, "container", 9);
            long long x;
            if (v_get_int(v, vals[1], pp.s, 1, 65535, &x))
                port.container = (int)x;
        }
        if (vals[2] != NULL) {
            struct vpath pp = v_path_key(p.s, "protocol", 8);
            char *proto = NULL;
            if (v_get_str(v, vals[2], pp.s, &proto)) {
                if (strcmp(proto, "udp") == 0) {
                    port.protocol = SPEC_PROTO_UDP;
                } else if (strcmp(proto, "tcp") != 0) {
                    v_err(v, vals[2], pp.s, "must be tcp or udp, got '%s'", v_show(vals[2]).s);
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
    free(v_find_dups(v, path, byname, nbyname, n->n, report_dup_port_name));
    free(v_find_dups(v, path, bynum, nbynum, n->n, report_dup_port));
    free(byname);
    free(bynum);
    free(numkeys);
}
