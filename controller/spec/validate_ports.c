/* Spec validation of a service's `ports`: names, container ports, protocols, duplicates, and
 * the published ports of the daemon's balancer (one service per published port in the app)
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

/* `published` and `balance` of one port (its protocol already read). */
static void check_published(struct vctx *v, const char *path, const struct ynode *pub,
                            const struct ynode *bal, struct spec_port *port)
{
    if (pub != NULL) {
        struct vpath pp = v_path_key(path, "published", 9);
        long long x;
        if (v_get_int(v, pub, pp.s, 1, 65535, &x)) {
            if (port->protocol == SPEC_PROTO_UDP) {
                v_err(v, pub, pp.s,
                      "a udp port cannot be published: the balancer proxies tcp connections");
            } else {
                port->published = (int)x;
                port->published_line = pub->line;
                port->published_column = pub->column;
            }
        }
    }
    if (bal != NULL) {
        struct vpath pp = v_path_key(path, "balance", 7);
        char *mode = NULL;
        if (v_get_str(v, bal, pp.s, &mode)) {
            if (strcmp(mode, "least_conn") == 0)
                port->balance = SPEC_BALANCE_LEAST_CONN;
            else if (strcmp(mode, "round_robin") != 0)
                v_err(v, bal, pp.s, "must be round_robin or least_conn, got '%s'", v_show(bal).s);
            if (pub == NULL)
                v_err(v, bal, pp.s,
                      "'balance' needs 'published': only a published port is "
                      "balanced");
        }
        free(mode);
    }
}

void v_check_ports(struct vctx *v, const struct ynode *n, const char *path,
                   struct spec_service *svc)
{
    if (!v_expect_kind(v, n, path, YT_SEQ, "a list of ports"))
        return;
    static const char *const names[] = {"name", "container", "protocol", "published", "balance"};
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
        const struct ynode *keys[5], *vals[5];
        v_map_fields(v, item, p.s, names, 5, keys, vals);
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
        check_published(v, p.s, vals[3], vals[4], &port);
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

void v_check_published(struct vctx *v, const struct spec_app *app)
{
    /* Quadratic in the published ports of one app: a handful in practice. */
    for (size_t i = 0; i < app->services_len; i++) {
        const struct spec_service *a = &app->services[i];
        for (size_t pi = 0; pi < a->ports_len; pi++) {
            const struct spec_port *p = &a->ports[pi];
            if (p->published <= 0)
                continue;
            for (size_t j = 0; j < i; j++) {
                const struct spec_service *b = &app->services[j];
                for (size_t qi = 0; qi < b->ports_len; qi++) {
                    if (b->ports[qi].published != p->published)
                        continue;
                    diag_add(&v->sink, p->published_line, p->published_column,
                             "services.%s.ports[%zu].published: port %d is already published "
                             "by service '%s' (line %d)",
                             a->name, pi, p->published, b->name, b->ports[qi].published_line);
                }
            }
        }
    }
}
