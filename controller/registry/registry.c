/* The DNS registry: builds an immutable hash index of names -> prebuilt ldns records from the
 * observed instances, and answers DNS messages from it. Parsing and encoding (names, records,
 * compression) go through libldns; this file decides which records go where and what fits.
 * Pure: no I/O, no clock, no globals, no uv.h; it never learns where instances come from and
 * never mutates a registry after registry_build(). */
#include "registry/registry.h"

#include <arpa/inet.h>
#include <ctype.h>
#include <ldns/ldns.h>
#include <string.h>

#include "base/util.h"

/* One name the registry knows. Records are prebuilt ldns_rr objects so that an answer only
 * encodes them; the parallel plain arrays serve registry_lookup(). */
struct reg_node {
    uint8_t *key; /* the name in lowercase wire format */
    size_t key_len;
    uint64_t hash;
    bool apex;

    uint32_t *addrs; /* A, network byte order, deduplicated */
    ldns_rr **a_rrs;
    size_t n_a, cap_a;

    struct registry_srv *srvs; /* SRV */
    ldns_rr **srv_rrs;
    ldns_rr **srv_add; /* the A record of each SRV's target, for the additional section */
    size_t n_srv, cap_srv;

    /* Whole responses to "NAME IN A" and "NAME IN SRV" as the generic path renders them over
     * TCP (id 0, no RD/CD, no OPT); NULL when the node has no such records. */
    uint8_t *tpl[2];
    uint16_t tpl_len[2];
};

enum { TPL_A, TPL_SRV };

/* A healthy instance's own A record and name, shared by every SRV that targets it. */
struct reg_inst {
    char *name; /* "id12.service.app.zone." */
    ldns_rdf *name_rdf;
    uint32_t addr;
    ldns_rr *a_rr;
};

struct registry {
    uint8_t zone[LDNS_MAX_DOMAINLEN + 1]; /* lowercase wire format */
    size_t zone_len;
    char *zone_text; /* "orch." */
    uint32_t ttl;
    ldns_rr *soa;

    struct reg_node *nodes;
    size_t n_nodes, cap_nodes;
    uint32_t *table; /* open addressing: node index + 1, 0 = empty */
    size_t table_mask;

    struct reg_inst *insts;
    size_t n_insts, cap_insts;
};

/* FNV-1a: the keys are short and built by us; queries only probe, so flooding is no concern. */
static uint64_t name_hash(const uint8_t *key, size_t len)
{
    uint64_t h = 14695981039346656037ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= key[i];
        h *= 1099511628211ULL;
    }
    return h;
}

static const struct reg_node *reg_find(const struct registry *reg, const uint8_t *key, size_t len)
{
    uint64_t h = name_hash(key, len);
    for (size_t i = h & reg->table_mask;; i = (i + 1) & reg->table_mask) {
        uint32_t slot = reg->table[i];
        if (slot == 0)
            return NULL;
        const struct reg_node *n = &reg->nodes[slot - 1];
        if (n->hash == h && n->key_len == len && memcmp(n->key, key, len) == 0)
            return n;
    }
}

static void table_insert(struct registry *reg, uint32_t idx)
{
    for (size_t i = reg->nodes[idx].hash & reg->table_mask;; i = (i + 1) & reg->table_mask) {
        if (reg->table[i] == 0) {
            reg->table[i] = idx + 1;
            return;
        }
    }
}

/* Keeps the table at most half full, so a probe sequence stays short. */
static void table_grow(struct registry *reg)
{
    size_t cap = reg->table_mask + 1;
    if (reg->table != NULL && reg->n_nodes * 2 < cap)
        return;
    cap = cap < 64 ? 64 : cap * 2;
    free(reg->table);
    reg->table = orch_xcalloc(cap, sizeof(*reg->table));
    reg->table_mask = cap - 1;
    for (size_t i = 0; i < reg->n_nodes; i++)
        table_insert(reg, (uint32_t)i);
}

/* The node for a canonical (lowercase) wire name, created empty when new. Returns its index:
 * node pointers move while the array grows. */
static size_t node_get(struct registry *reg, const ldns_rdf *name)
{
    const uint8_t *key = ldns_rdf_data(name);
    size_t len = ldns_rdf_size(name);
    const struct reg_node *found = reg->table != NULL ? reg_find(reg, key, len) : NULL;
    if (found != NULL)
        return (size_t)(found - reg->nodes);
    if (reg->n_nodes == reg->cap_nodes) {
        reg->cap_nodes = reg->cap_nodes ? reg->cap_nodes * 2 : 64;
        reg->nodes = orch_xrealloc(reg->nodes, reg->cap_nodes * sizeof(*reg->nodes));
    }
    struct reg_node *n = &reg->nodes[reg->n_nodes];
    memset(n, 0, sizeof(*n));
    n->key = orch_xmalloc(len);
    memcpy(n->key, key, len);
    n->key_len = len;
    n->hash = name_hash(key, len);
    reg->n_nodes++;
    size_t before = reg->table_mask;
    table_grow(reg); /* a regrown table already holds the new node */
    if (reg->table_mask == before)
        table_insert(reg, (uint32_t)(reg->n_nodes - 1));
    return reg->n_nodes - 1;
}

/* A canonical name from validated labels: "a.b." + zone. NULL when too long (> 255 bytes). */
static ldns_rdf *name_new(const struct registry *reg, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
static ldns_rdf *name_new(const struct registry *reg, const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    int len = vsnprintf(buf, sizeof(buf) - LDNS_MAX_DOMAINLEN - 2, fmt, ap);
    va_end(ap);
    if (len < 0 || (size_t)len >= sizeof(buf) - LDNS_MAX_DOMAINLEN - 2)
        return NULL;
    strcat(buf, reg->zone_text);
    ldns_rdf *rdf = ldns_dname_new_frm_str(buf);
    if (rdf != NULL)
        ldns_dname2canonical(rdf);
    return rdf;
}

static ldns_rr *rr_new(ldns_rr_type type, const ldns_rdf *owner, uint32_t ttl)
{
    ldns_rr *rr = ldns_rr_new();
    if (rr == NULL)
        abort();
    ldns_rr_set_owner(rr, ldns_rdf_clone(owner));
    ldns_rr_set_type(rr, type);
    ldns_rr_set_class(rr, LDNS_RR_CLASS_IN);
    ldns_rr_set_ttl(rr, ttl);
    return rr;
}

static ldns_rr *rr_new_a(const ldns_rdf *owner, uint32_t ttl, uint32_t addr)
{
    ldns_rr *rr = rr_new(LDNS_RR_TYPE_A, owner, ttl);
    ldns_rr_push_rdf(rr, ldns_rdf_new_frm_data(LDNS_RDF_TYPE_A, 4, &addr));
    return rr;
}

static void node_add_a(struct registry *reg, size_t idx, const ldns_rdf *owner, uint32_t addr)
{
    struct reg_node *n = &reg->nodes[idx];
    for (size_t i = 0; i < n->n_a; i++)
        if (n->addrs[i] == addr)
            return;
    if (n->n_a == n->cap_a) {
        n->cap_a = n->cap_a ? n->cap_a * 2 : 2;
        n->addrs = orch_xrealloc(n->addrs, n->cap_a * sizeof(*n->addrs));
        n->a_rrs = orch_xrealloc(n->a_rrs, n->cap_a * sizeof(*n->a_rrs));
    }
    n->addrs[n->n_a] = addr;
    n->a_rrs[n->n_a] = rr_new_a(owner, reg->ttl, addr);
    n->n_a++;
}

static void node_add_srv(struct registry *reg, size_t idx, const ldns_rdf *owner, uint16_t port,
                         const struct reg_inst *target)
{
    struct reg_node *n = &reg->nodes[idx];
    for (size_t i = 0; i < n->n_srv; i++)
        if (n->srvs[i].port == port && n->srvs[i].target == target->name)
            return;
    if (n->n_srv == n->cap_srv) {
        n->cap_srv = n->cap_srv ? n->cap_srv * 2 : 2;
        n->srvs = orch_xrealloc(n->srvs, n->cap_srv * sizeof(*n->srvs));
        n->srv_rrs = orch_xrealloc(n->srv_rrs, n->cap_srv * sizeof(*n->srv_rrs));
        n->srv_add = orch_xrealloc(n->srv_add, n->cap_srv * sizeof(*n->srv_add));
    }
    n->srvs[n->n_srv] = (struct registry_srv){.priority = 0,
                                              .weight = 1,
                                              .port = port,
                                              .target = target->name,
                                              .target_addr = target->addr};
    ldns_rr *rr = rr_new(LDNS_RR_TYPE_SRV, owner, reg->ttl);
    ldns_rr_push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, 0));
    ldns_rr_push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, 1));
    ldns_rr_push_rdf(rr, ldns_native2rdf_int16(LDNS_RDF_TYPE_INT16, port));
    ldns_rr_push_rdf(rr, ldns_rdf_clone(target->name_rdf));
    n->srv_rrs[n->n_srv] = rr;
    n->srv_add[n->n_srv] = target->a_rr;
    n->n_srv++;
}

void registry_free(struct registry *reg)
{
    if (reg == NULL)
        return;
    for (size_t i = 0; i < reg->n_nodes; i++) {
        struct reg_node *n = &reg->nodes[i];
        for (size_t j = 0; j < n->n_a; j++)
            ldns_rr_free(n->a_rrs[j]);
        for (size_t j = 0; j < n->n_srv; j++)
            ldns_rr_free(n->srv_rrs[j]);
        free(n->key);
        free(n->addrs);
        free(n->a_rrs);
        free(n->srvs);
        free(n->srv_rrs);
        free(n->srv_add);
        free(n->tpl[TPL_A]);
        free(n->tpl[TPL_SRV]);
    }
    for (size_t i = 0; i < reg->n_insts; i++) {
        free(reg->insts[i].name);
        ldns_rdf_deep_free(reg->insts[i].name_rdf);
        ldns_rr_free(reg->insts[i].a_rr);
    }
    if (reg->soa != NULL)
        ldns_rr_free(reg->soa);
    free(reg->insts);
    free(reg->nodes);
    free(reg->table);
    free(reg->zone_text);
    free(reg);
}

size_t registry_name_count(const struct registry *reg)
{
    return reg != NULL ? reg->n_nodes : 0;
}

static bool id12_parse(const char *id, char out[13])
{
    if (id == NULL || strlen(id) < 12)
        return false;
    for (size_t i = 0; i < 12; i++) {
        if (!isxdigit((unsigned char)id[i]))
            return false;
        out[i] = (char)tolower((unsigned char)id[i]);
    }
    out[12] = '\0';
    return true;
}

static int zone_setup(struct registry *reg, const struct registry_options *opt,
                      struct orch_error *err)
{
    const char *zone = opt != NULL && opt->zone != NULL ? opt->zone : REGISTRY_DEFAULT_ZONE;
    size_t zlen = strlen(zone);
    if (zlen == 0 || zone[0] == '.')
        return orch_fail(err, ORCH_E_INVALID, 0, "DNS zone '%s' is not a domain name", zone);
    _cleanup_free_ char *text = orch_xasprintf("%s%s", zone, zone[zlen - 1] == '.' ? "" : ".");
    for (char *p = text; *p != '\0'; p++) {
        *p = (char)tolower((unsigned char)*p);
        /* Labels of letters, digits, '-' and '_' only: the zone is pasted into record text. */
        if (!isalnum((unsigned char)*p) && *p != '-' && *p != '.' && *p != '_')
            return orch_fail(err, ORCH_E_INVALID, 0, "DNS zone '%s' is not a domain name", zone);
    }
    ldns_rdf *rdf = ldns_dname_new_frm_str(text);
    if (rdf == NULL || ldns_dname_label_count(rdf) == 0 ||
        ldns_rdf_size(rdf) > LDNS_MAX_DOMAINLEN - 40) {
        ldns_rdf_deep_free(rdf);
        return orch_fail(err, ORCH_E_INVALID, 0, "DNS zone '%s' is not a domain name", zone);
    }
    memcpy(reg->zone, ldns_rdf_data(rdf), ldns_rdf_size(rdf));
    reg->zone_len = ldns_rdf_size(rdf);
    reg->zone_text = orch_steal(&text);

    uint32_t serial = opt != NULL ? opt->serial : 0;
    _cleanup_free_ char *soa_text =
        orch_xasprintf("%s %u IN SOA ns.%s hostmaster.%s %u 3600 600 86400 %u", reg->zone_text,
                       reg->ttl, reg->zone_text, reg->zone_text, serial, reg->ttl);
    ldns_status st = ldns_rr_new_frm_str(&reg->soa, soa_text, 0, NULL, NULL);
    if (st != LDNS_STATUS_OK) {
        ldns_rdf_deep_free(rdf);
        return orch_fail(err, ORCH_E_INVALID, 0, "DNS zone '%s': SOA: %s", zone,
                         ldns_get_errorstr_by_id(st));
    }
    size_t apex = node_get(reg, rdf);
    reg->nodes[apex].apex = true;
    ldns_rdf_deep_free(rdf);
    return 0;
}

/* What a service and an instance have in common: labels for app, service and port names. what
 * and i name the entry in messages ("instance 3", "service 0"). */
static int names_check(const char *what, size_t i, const char *app, const char *service,
                       const struct registry_port *ports, size_t n_ports, struct orch_error *err)
{
    if (app == NULL || !orch_is_dns_label(app, 63))
        return orch_fail(err, ORCH_E_INVALID, 0, "%s %zu: app '%s' is not a DNS label", what, i,
                         app ? app : "(null)");
    if (service == NULL || !orch_is_dns_label(service, 63))
        return orch_fail(err, ORCH_E_INVALID, 0, "%s %zu: service '%s' is not a DNS label", what, i,
                         service ? service : "(null)");
    for (size_t p = 0; p < n_ports; p++) {
        const struct registry_port *port = &ports[p];
        /* 62: the SRV label is the port name with a leading underscore. */
        if (port->name == NULL || !orch_is_dns_label(port->name, 62))
            return orch_fail(err, ORCH_E_INVALID, 0,
                             "%s %zu (%s/%s): port name '%s' is not a DNS label", what, i, app,
                             service, port->name ? port->name : "(null)");
        if (port->proto != REGISTRY_TCP && port->proto != REGISTRY_UDP)
            return orch_fail(err, ORCH_E_INVALID, 0, "%s %zu (%s/%s): port '%s': bad protocol",
                             what, i, app, service, port->name);
    }
    return 0;
}

static int inst_check(const struct registry_instance *in, size_t i, char id12[13], uint32_t *addr,
                      struct orch_error *err)
{
    int ret = names_check("instance", i, in->app, in->service, NULL, 0, err);
    if (ret < 0)
        return ret;
    if (!id12_parse(in->id, id12))
        return orch_fail(err, ORCH_E_INVALID, 0,
                         "instance %zu (%s/%s): id '%s' does not start with 12 hex digits", i,
                         in->app, in->service, in->id ? in->id : "(null)");
    struct in_addr a;
    if (in->ipv4 == NULL || inet_pton(AF_INET, in->ipv4, &a) != 1)
        return orch_fail(err, ORCH_E_INVALID, 0,
                         "instance %zu (%s/%s): address '%s' is not an IPv4 address", i, in->app,
                         in->service, in->ipv4 ? in->ipv4 : "(null)");
    *addr = a.s_addr;
    return names_check("instance", i, in->app, in->service, in->ports, in->n_ports, err);
}

static struct reg_inst *inst_add(struct registry *reg, ldns_rdf *name, uint32_t addr)
{
    /* Two ids with the same 12 digits in one service (unlikely) share one name. */
    char *text = ldns_rdf2str(name);
    for (size_t i = 0; i < reg->n_insts; i++) {
        if (strcmp(reg->insts[i].name, text) == 0 && reg->insts[i].addr == addr) {
            free(text);
            ldns_rdf_deep_free(name);
            return &reg->insts[i];
        }
    }
    if (reg->n_insts == reg->cap_insts) {
        reg->cap_insts = reg->cap_insts ? reg->cap_insts * 2 : 16;
        reg->insts = orch_xrealloc(reg->insts, reg->cap_insts * sizeof(*reg->insts));
    }
    struct reg_inst *ri = &reg->insts[reg->n_insts++];
    ri->name = orch_xstrdup(text);
    free(text);
    ri->name_rdf = name;
    ri->addr = addr;
    ri->a_rr = rr_new_a(name, reg->ttl, addr);
    return ri;
}

/* The nodes of one port of a service: "_PROTO.SERVICE.APP.ZONE" (empty) and
 * "_NAME._PROTO.SERVICE.APP.ZONE", whose index goes to *pidx and name to *pname (new). */
static bool port_nodes(struct registry *reg, const char *app, const char *service,
                       const struct registry_port *port, size_t *pidx, ldns_rdf **pname)
{
    const char *proto = port->proto == REGISTRY_UDP ? "udp" : "tcp";
    ldns_rdf *mid = name_new(reg, "_%s.%s.%s.", proto, service, app);
    *pname = name_new(reg, "_%s._%s.%s.%s.", port->name, proto, service, app);
    if (mid == NULL || *pname == NULL) {
        ldns_rdf_deep_free(mid);
        ldns_rdf_deep_free(*pname);
        *pname = NULL;
        return false;
    }
    (void)node_get(reg, mid);
    *pidx = node_get(reg, *pname);
    ldns_rdf_deep_free(mid);
    return true;
}

/* A service of the desired state: its names exist (NODATA) whatever its instances. */
static int service_index(struct registry *reg, const struct registry_service *sv, size_t i,
                         struct orch_error *err)
{
    int ret = names_check("service", i, sv->app, sv->service, sv->ports, sv->n_ports, err);
    if (ret < 0)
        return ret;
    ldns_rdf *app = name_new(reg, "%s.", sv->app);
    ldns_rdf *svc = name_new(reg, "%s.%s.", sv->service, sv->app);
    if (app != NULL && svc != NULL) {
        (void)node_get(reg, app);
        (void)node_get(reg, svc);
    }
    bool ok = app != NULL && svc != NULL;
    ldns_rdf_deep_free(app);
    ldns_rdf_deep_free(svc);
    for (size_t p = 0; ok && p < sv->n_ports; p++) {
        size_t pidx;
        ldns_rdf *pname = NULL;
        ok = port_nodes(reg, sv->app, sv->service, &sv->ports[p], &pidx, &pname);
        ldns_rdf_deep_free(pname);
    }
    if (!ok)
        return orch_fail(err, ORCH_E_INVALID, 0, "service %zu (%s/%s): name too long", i, sv->app,
                         sv->service);
    return 0;
}

static int inst_index(struct registry *reg, const struct registry_instance *in, size_t i,
                      struct orch_error *err)
{
    char id12[13];
    uint32_t addr = 0;
    int ret = inst_check(in, i, id12, &addr, err);
    if (ret < 0)
        return ret;

    ldns_rdf *app = name_new(reg, "%s.", in->app);
    ldns_rdf *svc = name_new(reg, "%s.%s.", in->service, in->app);
    ldns_rdf *inst = name_new(reg, "%s.%s.%s.", id12, in->service, in->app);
    if (app == NULL || svc == NULL || inst == NULL) {
        ldns_rdf_deep_free(app);
        ldns_rdf_deep_free(svc);
        ldns_rdf_deep_free(inst);
        return orch_fail(err, ORCH_E_INVALID, 0, "instance %zu (%s/%s): name too long", i, in->app,
                         in->service);
    }
    (void)node_get(reg, app); /* "APP.ZONE" exists (NODATA), it is not NXDOMAIN */
    ldns_rdf_deep_free(app);
    size_t svc_idx = node_get(reg, svc);
    size_t inst_idx = node_get(reg, inst);

    struct reg_inst *ri = NULL;
    if (in->healthy) {
        ri = inst_add(reg, ldns_rdf_clone(inst), addr);
        node_add_a(reg, svc_idx, svc, addr);
        node_add_a(reg, inst_idx, inst, addr);
    }
    ldns_rdf_deep_free(inst);

    for (size_t p = 0; p < in->n_ports; p++) {
        const struct registry_port *port = &in->ports[p];
        size_t pidx;
        ldns_rdf *pname = NULL;
        if (!port_nodes(reg, in->app, in->service, port, &pidx, &pname)) {
            ldns_rdf_deep_free(svc);
            return orch_fail(err, ORCH_E_INVALID, 0, "instance %zu (%s/%s): name too long", i,
                             in->app, in->service);
        }
        if (ri != NULL && port->port != 0) {
            node_add_srv(reg, pidx, pname, port->port, ri);
            if (p == 0)
                node_add_srv(reg, svc_idx, svc, port->port, ri);
        }
        ldns_rdf_deep_free(pname);
    }
    ldns_rdf_deep_free(svc);
    return 0;
}

static void render_templates(struct registry *reg);

int registry_build(const struct registry_options *opt, const struct registry_instance *inst,
                   size_t n_inst, struct registry **out, struct orch_error *err)
{
    struct registry *reg = orch_xcalloc(1, sizeof(*reg));
    reg->ttl = opt != NULL && opt->ttl != 0 ? opt->ttl : REGISTRY_DEFAULT_TTL;
    int ret = zone_setup(reg, opt, err);
    for (size_t i = 0; ret == 0 && opt != NULL && i < opt->n_services; i++)
        ret = service_index(reg, &opt->services[i], i, err);
    for (size_t i = 0; ret == 0 && i < n_inst; i++)
        ret = inst_index(reg, &inst[i], i, err);
    if (ret < 0) {
        registry_free(reg);
        return ret;
    }
    render_templates(reg);
    *out = reg;
    return 0;
}

/* ---- lookups ---- */

/* Whether a lowercase wire name lies in the zone (is the apex or below it). */
static bool in_zone(const struct registry *reg, const uint8_t *name, size_t len)
{
    size_t pos = 0;
    while (pos < len) {
        if (len - pos == reg->zone_len)
            return memcmp(name + pos, reg->zone, reg->zone_len) == 0;
        if (name[pos] == 0)
            return false;
        pos += (size_t)name[pos] + 1;
    }
    return false;
}

static enum registry_rcode lookup_wire(const struct registry *reg, const uint8_t *name, size_t len,
                                       const struct reg_node **node)
{
    *node = NULL;
    if (!in_zone(reg, name, len))
        return REGISTRY_REFUSED;
    *node = reg_find(reg, name, len);
    return *node != NULL ? REGISTRY_NOERROR : REGISTRY_NXDOMAIN;
}

void registry_lookup(const struct registry *reg, const char *name, uint16_t qtype,
                     struct registry_result *res)
{
    memset(res, 0, sizeof(*res));
    if (reg == NULL) {
        res->rcode = REGISTRY_SERVFAIL;
        return;
    }
    ldns_rdf *rdf = ldns_dname_new_frm_str(name);
    if (rdf == NULL) {
        res->rcode = REGISTRY_FORMERR;
        return;
    }
    ldns_dname2canonical(rdf);
    const struct reg_node *n;
    res->rcode = lookup_wire(reg, ldns_rdf_data(rdf), ldns_rdf_size(rdf), &n);
    ldns_rdf_deep_free(rdf);
    if (n == NULL)
        return;
    if (qtype == LDNS_RR_TYPE_A) {
        res->addrs = n->addrs;
        res->n_addrs = n->n_a;
    } else if (qtype == LDNS_RR_TYPE_SRV) {
        res->srvs = n->srvs;
        res->n_srvs = n->n_srv;
    } else if (qtype == LDNS_RR_TYPE_SOA) {
        res->soa = n->apex;
    }
}

/* ---- answering ---- */

#define HDR_LEN 12
#define OPT_LEN 11 /* root owner, type, class, ttl, rdlength: no options */
#define EDNS_BADVERS 16

enum { SEC_AN, SEC_NS, SEC_AR };

/* A response being written: records are appended whole or not at all. */
struct resp {
    ldns_buffer *buf;
    ldns_rbtree_t *names; /* ldns' compression table */
    size_t limit;         /* bytes available for everything but the OPT record */
    uint16_t count[3];
    bool full; /* a record did not fit: nothing but OPT is written after it */
};

static void compression_node_free(ldns_rbnode_t *node, void *arg)
{
    (void)arg;
    ldns_rdf_deep_free((ldns_rdf *)node->key);
    free(node);
}

/* Appends rr to section sec; false (and nothing written) when it does not fit. Once one record
 * did not fit, later ones are refused too: ldns' compression table may then remember names at
 * offsets past the cut, which a later record must never point to. */
static bool resp_put(struct resp *r, const ldns_rr *rr, int sec)
{
    if (r->full)
        return false;
    static const int ldns_sec[] = {LDNS_SECTION_ANSWER, LDNS_SECTION_AUTHORITY,
                                   LDNS_SECTION_ADDITIONAL};
    size_t mark = ldns_buffer_position(r->buf);
    ldns_status st = ldns_rr2buffer_wire_compress(r->buf, rr, ldns_sec[sec], r->names);
    if (st != LDNS_STATUS_OK || ldns_buffer_position(r->buf) > r->limit) {
        ldns_buffer_set_position(r->buf, mark);
        r->full = true;
        return false;
    }
    r->count[sec]++;
    return true;
}

struct query {
    uint16_t id;
    uint8_t opcode;
    bool rd, cd;
    bool edns;
    bool edns_do;
    uint8_t edns_version;
    uint16_t edns_size;
    const ldns_rr *question; /* NULL: answer with the header only */
};

/* Writes the answer records for node n and qtype, and their additional data. */
static void put_records(struct resp *r, const struct registry *reg, const struct reg_node *n,
                        uint16_t qtype, bool *tc)
{
    bool any = qtype == LDNS_RR_TYPE_ANY;
    if (n->apex && (qtype == LDNS_RR_TYPE_SOA || any) && !resp_put(r, reg->soa, SEC_AN))
        *tc = true;
    if (qtype == LDNS_RR_TYPE_A || any)
        for (size_t i = 0; i < n->n_a && !*tc; i++)
            if (!resp_put(r, n->a_rrs[i], SEC_AN))
                *tc = true;
    if (qtype == LDNS_RR_TYPE_SRV || any) {
        for (size_t i = 0; i < n->n_srv && !*tc; i++)
            if (!resp_put(r, n->srv_rrs[i], SEC_AN))
                *tc = true;
        /* Additional data is a courtesy: what does not fit is left out without TC. */
        for (size_t i = 0; i < n->n_srv && !*tc; i++)
            if (!resp_put(r, n->srv_add[i], SEC_AR))
                break;
    }
}

static enum registry_answer_status respond(const struct registry *reg, const struct query *q,
                                           const uint8_t *qname, size_t qname_len, uint16_t qtype,
                                           int rcode, size_t limit, uint16_t srv_udp, uint8_t *out,
                                           size_t *out_len)
{
    const struct reg_node *n = NULL;
    bool aa = false, tc = false;
    if (rcode == REGISTRY_NOERROR && q->question != NULL) {
        rcode = lookup_wire(reg, qname, qname_len, &n);
        aa = rcode != REGISTRY_REFUSED;
    }
    bool opt = q->edns && rcode != REGISTRY_FORMERR && rcode != REGISTRY_NOTIMP;
    if (opt && q->edns_version > 0) {
        rcode = EDNS_BADVERS;
        n = NULL;
        aa = false;
    }
    if (limit < HDR_LEN + (opt ? OPT_LEN : 0))
        return REGISTRY_DROP;

    struct resp r = {.limit = limit - (opt ? OPT_LEN : 0)};
    r.buf = ldns_buffer_new(limit < 4096 ? limit : 4096);
    r.names = ldns_rbtree_create((int (*)(const void *, const void *))ldns_dname_compare);
    if (r.buf == NULL || r.names == NULL)
        abort();
    ldns_buffer_write_u16(r.buf, q->id);
    ldns_buffer_write_u16(r.buf, 0); /* flags, filled in at the end */
    for (int i = 0; i < 4; i++)
        ldns_buffer_write_u16(r.buf, 0); /* counts, filled in at the end */

    uint16_t qdcount = 0;
    if (q->question != NULL && rcode != EDNS_BADVERS) {
        ldns_status st =
            ldns_rr2buffer_wire_compress(r.buf, q->question, LDNS_SECTION_QUESTION, r.names);
        if (st != LDNS_STATUS_OK || ldns_buffer_position(r.buf) > r.limit) {
            ldns_buffer_set_position(r.buf, HDR_LEN); /* cannot even echo the question */
            r.full = true;
            tc = true;
        } else {
            qdcount = 1;
        }
    }

    if (n != NULL && !r.full) {
        put_records(&r, reg, n, qtype, &tc);
        if (r.count[SEC_AN] == 0 && !tc)
            (void)resp_put(&r, reg->soa, SEC_NS); /* NODATA */
    } else if (rcode == REGISTRY_NXDOMAIN && !r.full) {
        (void)resp_put(&r, reg->soa, SEC_NS);
    }

    size_t len = ldns_buffer_position(r.buf);
    if (opt) {
        /* The OPT pseudo-record (RFC 6891 6.1.2): our payload size in the class field; the TTL
         * carries the extended rcode, version 0 and the DO bit copied from the query. */
        if (!ldns_buffer_reserve(r.buf, OPT_LEN))
            abort(); /* out of memory, as orch_xmalloc */
        ldns_buffer_write_u8(r.buf, 0);
        ldns_buffer_write_u16(r.buf, LDNS_RR_TYPE_OPT);
        ldns_buffer_write_u16(r.buf, srv_udp);
        ldns_buffer_write_u8(r.buf, (uint8_t)(rcode >> 4));
        ldns_buffer_write_u8(r.buf, 0);
        ldns_buffer_write_u16(r.buf, q->edns_do ? 0x8000 : 0);
        ldns_buffer_write_u16(r.buf, 0);
        len += OPT_LEN;
    }
    uint8_t flags1 =
        (uint8_t)(LDNS_QR_MASK | (q->opcode << LDNS_OPCODE_SHIFT) | (aa ? LDNS_AA_MASK : 0) |
                  (tc ? LDNS_TC_MASK : 0) | (q->rd ? LDNS_RD_MASK : 0));
    uint8_t flags2 = (uint8_t)((q->cd ? LDNS_CD_MASK : 0) | (rcode & 0x0f));
    ldns_buffer_write_u8_at(r.buf, 2, flags1);
    ldns_buffer_write_u8_at(r.buf, 3, flags2);
    ldns_buffer_write_u16_at(r.buf, LDNS_QDCOUNT_OFF, qdcount);
    ldns_buffer_write_u16_at(r.buf, LDNS_ANCOUNT_OFF, r.count[SEC_AN]);
    ldns_buffer_write_u16_at(r.buf, LDNS_NSCOUNT_OFF, r.count[SEC_NS]);
    ldns_buffer_write_u16_at(r.buf, LDNS_ARCOUNT_OFF, (uint16_t)(r.count[SEC_AR] + (opt ? 1 : 0)));
    memcpy(out, ldns_buffer_begin(r.buf), len);
    *out_len = len;

    ldns_traverse_postorder(r.names, compression_node_free, NULL);
    ldns_rbtree_free(r.names);
    ldns_buffer_free(r.buf);
    return REGISTRY_ANSWERED;
}

enum registry_answer_status registry_answer_generic(const struct registry *reg,
                                                    const uint8_t *query, size_t qlen,
                                                    size_t max_udp, uint8_t *out, size_t out_cap,
                                                    size_t *out_len)
{
    *out_len = 0;
    /* Too short to carry an id, or a response: answering could start a loop between servers. */
    if (query == NULL || qlen < HDR_LEN || LDNS_QR_WIRE(query))
        return REGISTRY_DROP;

    struct query q = {
        .id = LDNS_ID_WIRE(query),
        .opcode = (uint8_t)LDNS_OPCODE_WIRE(query),
        .rd = LDNS_RD_WIRE(query) != 0,
        .cd = LDNS_CD_WIRE(query) != 0,
    };
    size_t srv_udp = max_udp == 0 ? REGISTRY_MAX_UDP : max_udp;
    if (srv_udp < 512)
        srv_udp = 512;
    if (srv_udp > REGISTRY_MAX_UDP)
        srv_udp = REGISTRY_MAX_UDP;
    size_t limit = max_udp == 0 ? REGISTRY_MAX_MESSAGE : 512;
    if (limit > out_cap)
        limit = out_cap;

    if (q.opcode != LDNS_PACKET_QUERY)
        return respond(reg, &q, NULL, 0, 0, REGISTRY_NOTIMP, limit, (uint16_t)srv_udp, out,
                       out_len);

    ldns_pkt *pkt = NULL;
    if (ldns_wire2pkt(&pkt, query, qlen) != LDNS_STATUS_OK || ldns_pkt_qdcount(pkt) != 1 ||
        ldns_rr_list_rr_count(ldns_pkt_question(pkt)) != 1) {
        ldns_pkt_free(pkt);
        return respond(reg, &q, NULL, 0, 0, REGISTRY_FORMERR, limit, (uint16_t)srv_udp, out,
                       out_len);
    }
    q.question = ldns_rr_list_rr(ldns_pkt_question(pkt), 0);
    if (ldns_pkt_edns(pkt)) {
        q.edns = true;
        q.edns_do = ldns_pkt_edns_do(pkt);
        q.edns_version = ldns_pkt_edns_version(pkt);
        q.edns_size = ldns_pkt_edns_udp_size(pkt);
        if (max_udp != 0) {
            limit = q.edns_size < 512 ? 512 : q.edns_size;
            if (limit > srv_udp)
                limit = srv_udp;
            if (limit > out_cap)
                limit = out_cap;
        }
    }

    uint8_t qname[LDNS_MAX_DOMAINLEN + 1];
    const ldns_rdf *owner = ldns_rr_owner(q.question);
    size_t qname_len = ldns_rdf_size(owner);
    int rcode = REGISTRY_NOERROR;
    uint16_t qtype = ldns_rr_get_type(q.question);
    uint16_t qclass = ldns_rr_get_class(q.question);
    if (qname_len == 0 || qname_len > sizeof(qname) || qtype == LDNS_RR_TYPE_OPT) {
        rcode = REGISTRY_FORMERR;
        q.question = NULL;
    } else {
        /* The lookup key is the lowercase wire name; the question is echoed as sent. */
        const uint8_t *d = ldns_rdf_data(owner);
        for (size_t i = 0; i < qname_len; i++)
            qname[i] = d[i] >= 'A' && d[i] <= 'Z' ? (uint8_t)(d[i] + 32) : d[i];
        if (qclass != LDNS_RR_CLASS_IN || qtype == LDNS_RR_TYPE_AXFR || qtype == LDNS_RR_TYPE_IXFR)
            rcode = REGISTRY_REFUSED;
        else if (qtype == LDNS_RR_TYPE_MAILA || qtype == LDNS_RR_TYPE_MAILB)
            rcode = REGISTRY_NOTIMP;
        else if (reg == NULL)
            rcode = REGISTRY_SERVFAIL;
    }
    enum registry_answer_status st =
        respond(reg, &q, qname, qname_len, qtype, rcode, limit, (uint16_t)srv_udp, out, out_len);
    ldns_pkt_free(pkt);
    return st;
}

/* ---- the fast path ----
 *
 * Measured with scripts/bench-dns, the generic path above (ldns parses the query into a
 * ldns_pkt, ldns encodes and compresses every record) cost as much CPU per query as dnsmasq
 * does in total. Answers only change when the registry does, so registry_build() has the
 * generic path render the response to "NAME A" and "NAME SRV" of every name once, and a query
 * of that common shape is answered by copying the rendered bytes and patching the id, flags
 * and question. Anything else (other types, unknown names, compression in the question, extra
 * records, EDNS options other than a plain OPT, an answer that needs truncation) goes to the
 * generic path. tests and the fuzz target check that both paths give the same bytes. */

static void render_templates(struct registry *reg)
{
    uint8_t *buf = orch_xmalloc(REGISTRY_MAX_MESSAGE);
    for (size_t i = 0; i < reg->n_nodes; i++) {
        struct reg_node *n = &reg->nodes[i];
        for (int k = 0; k < 2; k++) {
            if ((k == TPL_A ? n->n_a : n->n_srv) == 0)
                continue;
            ldns_rr *qrr = ldns_rr_new();
            if (qrr == NULL)
                abort();
            ldns_rr_set_owner(qrr, ldns_dname_new_frm_data((uint16_t)n->key_len, n->key));
            ldns_rr_set_type(qrr, k == TPL_A ? LDNS_RR_TYPE_A : LDNS_RR_TYPE_SRV);
            ldns_rr_set_class(qrr, LDNS_RR_CLASS_IN);
            ldns_rr_set_question(qrr, true);
            struct query q = {.question = qrr};
            size_t len = 0;
            if (respond(reg, &q, n->key, n->key_len, ldns_rr_get_type(qrr), REGISTRY_NOERROR,
                        REGISTRY_MAX_MESSAGE, REGISTRY_MAX_UDP, buf, &len) == REGISTRY_ANSWERED &&
                !(buf[2] & LDNS_TC_MASK)) {
                n->tpl[k] = orch_xmalloc(len);
                memcpy(n->tpl[k], buf, len);
                n->tpl_len[k] = (uint16_t)len;
            }
            ldns_rr_free(qrr);
        }
    }
    free(buf);
}

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)((p[0] << 8) | p[1]);
}

/* Answers a query of exactly this shape from a template, or returns false:
 * header (QUERY, QD=1, AN=NS=0, AR<=1), one uncompressed name, type A or SRV, class IN, then
 * nothing or one OPT record (root owner, version 0) and nothing after it. */
static bool answer_fast(const struct registry *reg, const uint8_t *query, size_t qlen,
                        size_t max_udp, uint8_t *out, size_t out_cap, size_t *out_len)
{
    if (reg == NULL || qlen < HDR_LEN + 5 || (query[2] & (LDNS_QR_MASK | LDNS_OPCODE_MASK)) ||
        rd16(query + 4) != 1 || rd16(query + 6) != 0 || rd16(query + 8) != 0 ||
        rd16(query + 10) > 1)
        return false;
    uint8_t key[LDNS_MAX_DOMAINLEN + 1];
    size_t pos = HDR_LEN;
    while (pos < qlen && query[pos] != 0) {
        size_t l = query[pos];
        if (l > LDNS_MAX_LABELLEN || pos + 1 + l >= qlen || pos + 1 + l - HDR_LEN >= sizeof(key))
            return false;
        key[pos - HDR_LEN] = (uint8_t)l;
        for (size_t i = 1; i <= l; i++) {
            uint8_t c = query[pos + i];
            key[pos - HDR_LEN + i] = c >= 'A' && c <= 'Z' ? (uint8_t)(c + 32) : c;
        }
        pos += 1 + l;
    }
    if (pos + 5 > qlen)
        return false;
    key[pos - HDR_LEN] = 0;
    size_t name_len = pos + 1 - HDR_LEN;
    if (name_len > LDNS_MAX_DOMAINLEN)
        return false;
    uint16_t qtype = rd16(query + pos + 1);
    if (rd16(query + pos + 3) != LDNS_RR_CLASS_IN ||
        (qtype != LDNS_RR_TYPE_A && qtype != LDNS_RR_TYPE_SRV))
        return false;
    size_t end = pos + 5;

    bool edns = rd16(query + 10) == 1, edns_do = false;
    size_t limit = max_udp == 0 ? REGISTRY_MAX_MESSAGE : 512;
    size_t srv_udp = max_udp == 0 ? REGISTRY_MAX_UDP : max_udp;
    srv_udp = srv_udp < 512 ? 512 : srv_udp > REGISTRY_MAX_UDP ? REGISTRY_MAX_UDP : srv_udp;
    if (edns) {
        if (end + OPT_LEN > qlen || query[end] != 0 || rd16(query + end + 1) != LDNS_RR_TYPE_OPT ||
            query[end + 6] != 0 /* version */ || end + OPT_LEN + rd16(query + end + 9) != qlen)
            return false;
        if (max_udp != 0) {
            size_t want = rd16(query + end + 3);
            limit = want < 512 ? 512 : want > srv_udp ? srv_udp : want;
        }
        edns_do = (query[end + 7] & 0x80) != 0;
    } else if (end != qlen) {
        return false;
    }
    if (limit > out_cap)
        limit = out_cap;

    if (!in_zone(reg, key, name_len))
        return false;
    const struct reg_node *n = reg_find(reg, key, name_len);
    int k = qtype == LDNS_RR_TYPE_A ? TPL_A : TPL_SRV;
    if (n == NULL || n->tpl[k] == NULL || (size_t)n->tpl_len[k] + (edns ? OPT_LEN : 0u) > limit)
        return false;

    size_t len = n->tpl_len[k];
    memcpy(out, n->tpl[k], len);
    memcpy(out, query, 2); /* id */
    out[2] = (uint8_t)((out[2] & ~LDNS_RD_MASK) | (query[2] & LDNS_RD_MASK));
    out[3] = (uint8_t)((out[3] & ~LDNS_CD_MASK) | (query[3] & LDNS_CD_MASK));
    memcpy(out + HDR_LEN, query + HDR_LEN, name_len + 4); /* the question as asked */
    if (edns) {
        const uint8_t opt[OPT_LEN] = {0,
                                      0,
                                      LDNS_RR_TYPE_OPT,
                                      (uint8_t)(srv_udp >> 8),
                                      (uint8_t)srv_udp,
                                      0,
                                      0,
                                      edns_do ? 0x80 : 0,
                                      0,
                                      0,
                                      0};
        memcpy(out + len, opt, OPT_LEN);
        len += OPT_LEN;
        uint16_t ar = (uint16_t)(rd16(out + 10) + 1);
        out[10] = (uint8_t)(ar >> 8);
        out[11] = (uint8_t)ar;
    }
    *out_len = len;
    return true;
}

enum registry_answer_status registry_answer(const struct registry *reg, const uint8_t *query,
                                            size_t qlen, size_t max_udp, uint8_t *out,
                                            size_t out_cap, size_t *out_len)
{
    if (query != NULL && answer_fast(reg, query, qlen, max_udp, out, out_cap, out_len))
        return REGISTRY_ANSWERED;
    return registry_answer_generic(reg, query, qlen, max_udp, out, out_cap, out_len);
}
