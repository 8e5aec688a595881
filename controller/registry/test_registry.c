/* Table tests of the registry: the index (registry_lookup), the wire answers (queries built and
 * responses parsed with ldns: A, SRV with additional data, instance names, NXDOMAIN + SOA,
 * NODATA, REFUSED, case, EDNS0 sizes, truncation), hostile packets, and build errors. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <ldns/ldns.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "registry/registry.h"

#define WEB1 "aaaaaaaaaaaa1111111111111111111111111111111111111111111111111111"
#define WEB2 "BBBBBBBBBBBB2222222222222222222222222222222222222222222222222222"
#define WEB3 "cccccccccccc3333333333333333333333333333333333333333333333333333"
#define DB1 "dddddddddddd4444444444444444444444444444444444444444444444444444"
#define API_N 40

static const struct registry_port web1_ports[] = {{"http", REGISTRY_TCP, 49153},
                                                  {"metrics", REGISTRY_TCP, 49154},
                                                  {"gossip", REGISTRY_UDP, 49155}};
static const struct registry_port web2_ports[] = {{"http", REGISTRY_TCP, 49160},
                                                  {"metrics", REGISTRY_TCP, 49161},
                                                  {"gossip", REGISTRY_UDP, 49162}};
static const struct registry_port web3_ports[] = {{"http", REGISTRY_TCP, 49170}};
static const struct registry_port db_ports[] = {{"pg", REGISTRY_TCP, 5432}};
static const struct registry_port api_ports[] = {{"http", REGISTRY_TCP, 8080}};

static char api_ids[API_N][65];
static char api_addrs[API_N][16];

/* shop/web: two healthy instances on the same address (deduplicated A) and one unhealthy;
 * shop/db: only an unhealthy instance; shop/api: 40 healthy ones on distinct addresses. */
static struct registry *fixture(const char *zone)
{
    struct registry_instance inst[4 + API_N] = {
        {"shop", "web", WEB1, "127.0.0.1", web1_ports, 3, true},
        {"shop", "web", WEB2, "127.0.0.1", web2_ports, 3, true},
        {"shop", "web", WEB3, "127.0.0.9", web3_ports, 1, false},
        {"shop", "db", DB1, "127.0.0.1", db_ports, 1, false},
    };
    for (int i = 0; i < API_N; i++) {
        snprintf(api_ids[i], sizeof(api_ids[i]), "%012x%052d", 0xe00000 + i, 0);
        snprintf(api_addrs[i], sizeof(api_addrs[i]), "10.0.0.%d", i + 1);
        inst[4 + i] =
            (struct registry_instance){"shop", "api", api_ids[i], api_addrs[i], api_ports, 1, true};
    }
    struct registry *reg = NULL;
    struct orch_error err = {0};
    int rc = registry_build(&(struct registry_options){.zone = zone, .ttl = 7, .serial = 3}, inst,
                            ORCH_ARRAY_LEN(inst), &reg, &err);
    if (rc != 0)
        fail_msg("registry_build: %s", err.msg);
    return reg;
}

static uint32_t ip(const char *s)
{
    struct in_addr a;
    assert_int_equal(inet_pton(AF_INET, s, &a), 1);
    return a.s_addr;
}

/* ---- registry_lookup ---- */

struct lookup_case {
    const char *name;
    uint16_t qtype;
    enum registry_rcode rcode;
    size_t n_addrs, n_srvs;
    bool soa;
};

static const struct lookup_case lookup_cases[] = {
    {"web.shop.orch.", LDNS_RR_TYPE_A, REGISTRY_NOERROR, 1, 0},
    {"web.shop.orch", LDNS_RR_TYPE_A, REGISTRY_NOERROR, 1, 0},
    {"WEB.Shop.ORCH.", LDNS_RR_TYPE_A, REGISTRY_NOERROR, 1, 0},
    {"web.shop.orch.", LDNS_RR_TYPE_SRV, REGISTRY_NOERROR, 0, 2},
    {"_http._tcp.web.shop.orch.", LDNS_RR_TYPE_SRV, REGISTRY_NOERROR, 0, 2},
    {"_metrics._tcp.web.shop.orch.", LDNS_RR_TYPE_SRV, REGISTRY_NOERROR, 0, 2},
    {"_gossip._udp.web.shop.orch.", LDNS_RR_TYPE_SRV, REGISTRY_NOERROR, 0, 2},
    {"_gossip._tcp.web.shop.orch.", LDNS_RR_TYPE_SRV, REGISTRY_NXDOMAIN, 0, 0},
    {"_tcp.web.shop.orch.", LDNS_RR_TYPE_SRV, REGISTRY_NOERROR, 0, 0},
    {"aaaaaaaaaaaa.web.shop.orch.", LDNS_RR_TYPE_A, REGISTRY_NOERROR, 1, 0},
    {"bbbbbbbbbbbb.web.shop.orch.", LDNS_RR_TYPE_A, REGISTRY_NOERROR, 1, 0},
    {"cccccccccccc.web.shop.orch.", LDNS_RR_TYPE_A, REGISTRY_NOERROR, 0, 0}, /* unhealthy */
    {"aaaaaaaaaaaa1.web.shop.orch.", LDNS_RR_TYPE_A, REGISTRY_NXDOMAIN, 0, 0},
    {"db.shop.orch.", LDNS_RR_TYPE_A, REGISTRY_NOERROR, 0, 0},
    {"_pg._tcp.db.shop.orch.", LDNS_RR_TYPE_SRV, REGISTRY_NOERROR, 0, 0},
    {"api.shop.orch.", LDNS_RR_TYPE_A, REGISTRY_NOERROR, API_N, 0},
    {"api.shop.orch.", LDNS_RR_TYPE_SRV, REGISTRY_NOERROR, 0, API_N},
    {"shop.orch.", LDNS_RR_TYPE_A, REGISTRY_NOERROR, 0, 0},
    {"orch.", LDNS_RR_TYPE_SOA, REGISTRY_NOERROR, 0, 0, true},
    {"nope.shop.orch.", LDNS_RR_TYPE_A, REGISTRY_NXDOMAIN, 0, 0},
    {"web.other.orch.", LDNS_RR_TYPE_A, REGISTRY_NXDOMAIN, 0, 0},
    {"x.web.shop.orch.", LDNS_RR_TYPE_A, REGISTRY_NXDOMAIN, 0, 0},
    {"example.com.", LDNS_RR_TYPE_A, REGISTRY_REFUSED, 0, 0},
    {"xorch.", LDNS_RR_TYPE_A, REGISTRY_REFUSED, 0, 0},
    {"web.shop.orch.example.", LDNS_RR_TYPE_A, REGISTRY_REFUSED, 0, 0},
    {".", LDNS_RR_TYPE_A, REGISTRY_REFUSED, 0, 0},
    {"web.shop.orch.", LDNS_RR_TYPE_AAAA, REGISTRY_NOERROR, 0, 0},
};

static void test_lookup_table(void **state)
{
    (void)state;
    struct registry *reg = fixture(NULL);
    for (size_t i = 0; i < ORCH_ARRAY_LEN(lookup_cases); i++) {
        const struct lookup_case *c = &lookup_cases[i];
        struct registry_result r;
        registry_lookup(reg, c->name, c->qtype, &r);
        if (r.rcode != c->rcode || r.n_addrs != c->n_addrs || r.n_srvs != c->n_srvs ||
            r.soa != c->soa)
            fail_msg("%s/%u: rcode %d addrs %zu srvs %zu soa %d", c->name, c->qtype, r.rcode,
                     r.n_addrs, r.n_srvs, r.soa);
    }
    registry_free(reg);
}

static void test_lookup_records(void **state)
{
    (void)state;
    struct registry *reg = fixture("Example.Test");
    struct registry_result r;

    registry_lookup(reg, "web.shop.example.test.", LDNS_RR_TYPE_A, &r);
    assert_int_equal(r.n_addrs, 1);
    assert_int_equal(r.addrs[0], ip("127.0.0.1"));

    /* SRV SERVICE answers each instance's first port; _NAME._PROTO its named port. */
    registry_lookup(reg, "web.shop.example.test", LDNS_RR_TYPE_SRV, &r);
    assert_int_equal(r.n_srvs, 2);
    assert_int_equal(r.srvs[0].port, 49153);
    assert_int_equal(r.srvs[1].port, 49160);
    assert_string_equal(r.srvs[0].target, "aaaaaaaaaaaa.web.shop.example.test.");
    assert_string_equal(r.srvs[1].target, "bbbbbbbbbbbb.web.shop.example.test.");
    assert_int_equal(r.srvs[0].priority, 0);
    assert_int_equal(r.srvs[0].weight, 1);
    registry_lookup(reg, "_metrics._tcp.web.shop.example.test", LDNS_RR_TYPE_SRV, &r);
    assert_int_equal(r.n_srvs, 2);
    assert_int_equal(r.srvs[0].port, 49154);
    assert_int_equal(r.srvs[1].port, 49161);
    assert_int_equal(r.srvs[1].target_addr, ip("127.0.0.1"));

    registry_lookup(reg, "api.shop.example.test", LDNS_RR_TYPE_A, &r);
    assert_int_equal(r.n_addrs, API_N);
    for (int i = 0; i < API_N; i++) {
        char want[16];
        snprintf(want, sizeof(want), "10.0.0.%d", i + 1);
        assert_int_equal(r.addrs[i], ip(want));
    }
    registry_lookup(reg, "web.shop.orch.", LDNS_RR_TYPE_A, &r);
    assert_int_equal(r.rcode, REGISTRY_REFUSED);
    registry_free(reg);
}

struct build_error_case {
    const char *label;
    struct registry_instance inst;
    const char *zone;
    const char *want; /* a fragment of the message */
};

static const struct registry_port bad_port_name[] = {{"Http", REGISTRY_TCP, 80}};
static const struct registry_port bad_port_proto[] = {{"http", (enum registry_proto)7, 80}};

static const struct build_error_case build_errors[] = {
    {"app", {"Shop", "web", WEB1, "127.0.0.1"}, NULL, "app 'Shop'"},
    {"service", {"shop", "web_1", WEB1, "127.0.0.1"}, NULL, "service 'web_1'"},
    {"service null", {"shop", NULL, WEB1, "127.0.0.1"}, NULL, "service '(null)'"},
    {"short id", {"shop", "web", "abc", "127.0.0.1"}, NULL, "12 hex digits"},
    {"non-hex id", {"shop", "web", "zzzzzzzzzzzzzz", "127.0.0.1"}, NULL, "12 hex digits"},
    {"ipv6", {"shop", "web", WEB1, "::1"}, NULL, "not an IPv4"},
    {"address", {"shop", "web", WEB1, "127.0.0"}, NULL, "not an IPv4"},
    {"port name", {"shop", "web", WEB1, "127.0.0.1", bad_port_name, 1}, NULL, "port name"},
    {"port proto", {"shop", "web", WEB1, "127.0.0.1", bad_port_proto, 1}, NULL, "protocol"},
    {"zone", {"shop", "web", WEB1, "127.0.0.1"}, "bad zone.", "zone"},
    {"empty zone", {"shop", "web", WEB1, "127.0.0.1"}, "", "zone"},
    {"root zone", {"shop", "web", WEB1, "127.0.0.1"}, ".", "zone"},
};

static void test_build_errors(void **state)
{
    (void)state;
    for (size_t i = 0; i < ORCH_ARRAY_LEN(build_errors); i++) {
        const struct build_error_case *c = &build_errors[i];
        struct registry *reg = (struct registry *)0x1;
        struct orch_error err = {0};
        int rc =
            registry_build(&(struct registry_options){.zone = c->zone}, &c->inst, 1, &reg, &err);
        if (rc != -ORCH_E_INVALID || strstr(err.msg, c->want) == NULL)
            fail_msg("%s: rc %d msg '%s'", c->label, rc, err.msg);
        assert_ptr_equal(reg, (struct registry *)0x1); /* untouched */
    }
}

/* ---- registry_answer ---- */

static size_t make_query(const char *name, uint16_t qtype, uint16_t qclass, int edns_size,
                         uint16_t id, uint8_t *out, size_t cap)
{
    ldns_pkt *q = ldns_pkt_query_new(ldns_dname_new_frm_str(name), qtype, qclass, LDNS_RD);
    assert_non_null(q);
    ldns_pkt_set_id(q, id);
    if (edns_size > 0)
        ldns_pkt_set_edns_udp_size(q, (uint16_t)edns_size);
    uint8_t *wire = NULL;
    size_t len = 0;
    assert_int_equal(ldns_pkt2wire(&wire, q, &len), LDNS_STATUS_OK);
    assert_true(len <= cap);
    memcpy(out, wire, len);
    free(wire);
    ldns_pkt_free(q);
    return len;
}

struct answer_case {
    const char *label;
    const char *name;
    uint16_t qtype;
    uint16_t qclass; /* 0: IN */
    int edns;        /* requested EDNS0 size; 0: no OPT */
    size_t max_udp;  /* 0: TCP */
    int rcode;
    int an, ns, ar; /* ar without OPT; -1: not checked */
    bool tc, aa;
    size_t max_len; /* the response must fit in this */
};

#define UDP 4096
#define TCP 0

static const struct answer_case answer_cases[] = {
    {"A service", "web.shop.orch.", LDNS_RR_TYPE_A, 0, 0, UDP, 0, 1, 0, 0, false, true, 512},
    {"A instance", "bbbbbbbbbbbb.web.shop.orch.", LDNS_RR_TYPE_A, 0, 0, UDP, 0, 1, 0, 0, false,
     true, 512},
    {"A mixed case", "wEb.SHOP.orch.", LDNS_RR_TYPE_A, 0, 0, UDP, 0, 1, 0, 0, false, true, 512},
    {"SRV port", "_http._tcp.web.shop.orch.", LDNS_RR_TYPE_SRV, 0, 0, UDP, 0, 2, 0, 2, false, true,
     512},
    {"SRV service", "web.shop.orch.", LDNS_RR_TYPE_SRV, 0, 0, UDP, 0, 2, 0, 2, false, true, 512},
    {"SRV udp", "_gossip._udp.web.shop.orch.", LDNS_RR_TYPE_SRV, 0, 0, TCP, 0, 2, 0, 2, false, true,
     65535},
    {"ANY service", "web.shop.orch.", LDNS_RR_TYPE_ANY, 0, 0, UDP, 0, 3, 0, 2, false, true, 512},
    {"SOA apex", "orch.", LDNS_RR_TYPE_SOA, 0, 0, UDP, 0, 1, 0, 0, false, true, 512},
    {"NODATA no healthy", "db.shop.orch.", LDNS_RR_TYPE_A, 0, 0, UDP, 0, 0, 1, 0, false, true, 512},
    {"NODATA unhealthy instance", "cccccccccccc.web.shop.orch.", LDNS_RR_TYPE_A, 0, 0, UDP, 0, 0, 1,
     0, false, true, 512},
    {"NODATA AAAA", "web.shop.orch.", LDNS_RR_TYPE_AAAA, 0, 0, UDP, 0, 0, 1, 0, false, true, 512},
    {"NODATA app", "shop.orch.", LDNS_RR_TYPE_A, 0, 0, UDP, 0, 0, 1, 0, false, true, 512},
    {"NXDOMAIN", "nope.shop.orch.", LDNS_RR_TYPE_A, 0, 0, UDP, 3, 0, 1, 0, false, true, 512},
    {"NXDOMAIN SRV", "_nope._tcp.web.shop.orch.", LDNS_RR_TYPE_SRV, 0, 0, UDP, 3, 0, 1, 0, false,
     true, 512},
    {"REFUSED outside", "example.com.", LDNS_RR_TYPE_A, 0, 0, UDP, 5, 0, 0, 0, false, false, 512},
    {"REFUSED CH", "version.bind.", LDNS_RR_TYPE_TXT, LDNS_RR_CLASS_CH, 0, UDP, 5, 0, 0, 0, false,
     false, 512},
    {"REFUSED ANY class", "web.shop.orch.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_ANY, 0, UDP, 5, 0, 0, 0,
     false, false, 512},
    {"REFUSED AXFR", "orch.", LDNS_RR_TYPE_AXFR, 0, 0, TCP, 5, 0, 0, 0, false, false, 512},
    {"REFUSED IXFR", "orch.", LDNS_RR_TYPE_IXFR, 0, 0, TCP, 5, 0, 0, 0, false, false, 512},
    {"NOTIMP MAILB", "web.shop.orch.", LDNS_RR_TYPE_MAILB, 0, 0, UDP, 4, 0, 0, 0, false, false,
     512},
    /* 40 A records: 40 x 16 bytes do not fit in 512. */
    {"A 40 UDP 512", "api.shop.orch.", LDNS_RR_TYPE_A, 0, 0, UDP, 0, -1, 0, 0, true, true, 512},
    {"A 40 EDNS 400 -> 512", "api.shop.orch.", LDNS_RR_TYPE_A, 0, 400, UDP, 0, -1, 0, 0, true, true,
     512},
    {"A 40 EDNS 1232", "api.shop.orch.", LDNS_RR_TYPE_A, 0, 1232, UDP, 0, API_N, 0, 0, false, true,
     1232},
    {"A 40 TCP", "api.shop.orch.", LDNS_RR_TYPE_A, 0, 0, TCP, 0, API_N, 0, 0, false, true, 65535},
    {"A 40 server cap 600", "api.shop.orch.", LDNS_RR_TYPE_A, 0, 4096, 600, 0, -1, 0, 0, true, true,
     600},
    {"SRV 40 UDP 512", "api.shop.orch.", LDNS_RR_TYPE_SRV, 0, 0, UDP, 0, -1, 0, 0, true, true, 512},
    {"SRV 40 EDNS 4096", "api.shop.orch.", LDNS_RR_TYPE_SRV, 0, 4096, UDP, 0, API_N, 0, API_N,
     false, true, 4096},
    {"SRV 40 TCP", "_http._tcp.api.shop.orch.", LDNS_RR_TYPE_SRV, 0, 0, TCP, 0, API_N, 0, API_N,
     false, true, 65535},
    /* SRV targets are not compressed (RFC 2782): 40 answers take ~1,900 bytes. They fit in
     * 2200, but not all their additional A records: those are left out, without TC. */
    {"SRV 40 EDNS 2200", "api.shop.orch.", LDNS_RR_TYPE_SRV, 0, 2200, UDP, 0, API_N, 0, -1, false,
     true, 2200},
};

static ldns_pkt *answer(const struct registry *reg, const struct answer_case *c, uint16_t id,
                        size_t *len_out)
{
    uint8_t q[512], out[65535];
    size_t qlen = make_query(c->name, c->qtype, c->qclass ? c->qclass : LDNS_RR_CLASS_IN, c->edns,
                             id, q, sizeof(q));
    size_t len = 0;
    assert_int_equal(registry_answer(reg, q, qlen, c->max_udp, out, sizeof(out), &len),
                     REGISTRY_ANSWERED);
    static uint8_t ref[65535];
    size_t ref_len = 0;
    assert_int_equal(registry_answer_generic(reg, q, qlen, c->max_udp, ref, sizeof(ref), &ref_len),
                     REGISTRY_ANSWERED);
    if (ref_len != len || memcmp(ref, out, len) != 0)
        fail_msg("%s: the fast and generic paths differ", c->label);
    ldns_pkt *r = NULL;
    if (ldns_wire2pkt(&r, out, len) != LDNS_STATUS_OK)
        fail_msg("%s: the response does not parse (a partial record?)", c->label);
    *len_out = len;
    return r;
}

static void test_answer_table(void **state)
{
    (void)state;
    struct registry *reg = fixture(NULL);
    for (size_t i = 0; i < ORCH_ARRAY_LEN(answer_cases); i++) {
        const struct answer_case *c = &answer_cases[i];
        size_t len;
        uint16_t id = (uint16_t)(0x1234 + i);
        ldns_pkt *r = answer(reg, c, id, &len);
        int ar = (int)ldns_pkt_arcount(r);
        bool ok = ldns_pkt_id(r) == id && ldns_pkt_qr(r) && ldns_pkt_rd(r) &&
                  (int)ldns_pkt_get_rcode(r) == c->rcode &&
                  (c->an < 0 || (int)ldns_pkt_ancount(r) == c->an) &&
                  (int)ldns_pkt_nscount(r) == c->ns && (c->ar < 0 || ar == c->ar) &&
                  ldns_pkt_tc(r) == c->tc && ldns_pkt_aa(r) == c->aa && len <= c->max_len &&
                  ldns_pkt_edns(r) == (c->edns > 0) && ldns_pkt_qdcount(r) == 1;
        if (!ok)
            fail_msg("%s: id %u rcode %d an %u ns %u ar %d tc %d aa %d len %zu edns %d", c->label,
                     ldns_pkt_id(r), ldns_pkt_get_rcode(r), ldns_pkt_ancount(r),
                     ldns_pkt_nscount(r), ar, ldns_pkt_tc(r), ldns_pkt_aa(r), len,
                     ldns_pkt_edns(r));
        if (c->tc) {
            /* Cut at a record boundary: what is there parsed whole, and is not everything. */
            assert_true(ldns_pkt_ancount(r) > 0 && ldns_pkt_ancount(r) < API_N);
        }
        if (c->ns == 1) {
            ldns_rr *soa = ldns_rr_list_rr(ldns_pkt_authority(r), 0);
            assert_int_equal(ldns_rr_get_type(soa), LDNS_RR_TYPE_SOA);
            assert_int_equal(ldns_rr_ttl(soa), 7);
        }
        if (c->edns > 0)
            assert_int_equal(ldns_pkt_edns_udp_size(r),
                             c->max_udp ? c->max_udp > 4096 ? 4096 : c->max_udp : 4096);
        if (c->ar < 0)
            assert_true(ar > 0 && ar < API_N);
        ldns_pkt_free(r);
    }
    registry_free(reg);
}

/* The records themselves: addresses, SRV fields, the additional A of each target, TTLs, and the
 * question echoed in the case it was asked. */
static void test_answer_records(void **state)
{
    (void)state;
    struct registry *reg = fixture(NULL);
    size_t len;
    const struct answer_case srv = {"srv", "_Http._TCP.web.shop.orch.", LDNS_RR_TYPE_SRV, 0, 0,
                                    UDP};
    ldns_pkt *r = answer(reg, &srv, 1, &len);
    ldns_rr *qrr = ldns_rr_list_rr(ldns_pkt_question(r), 0);
    char *qname = ldns_rdf2str(ldns_rr_owner(qrr));
    assert_string_equal(qname, "_Http._TCP.web.shop.orch.");
    free(qname);
    const uint16_t want_ports[] = {49153, 49160};
    const char *want_targets[] = {"aaaaaaaaaaaa.web.shop.orch.", "bbbbbbbbbbbb.web.shop.orch."};
    for (size_t i = 0; i < 2; i++) {
        ldns_rr *rr = ldns_rr_list_rr(ldns_pkt_answer(r), i);
        assert_int_equal(ldns_rr_get_type(rr), LDNS_RR_TYPE_SRV);
        assert_int_equal(ldns_rr_ttl(rr), 7);
        assert_int_equal(ldns_rdf2native_int16(ldns_rr_rdf(rr, 0)), 0);
        assert_int_equal(ldns_rdf2native_int16(ldns_rr_rdf(rr, 1)), 1);
        assert_int_equal(ldns_rdf2native_int16(ldns_rr_rdf(rr, 2)), want_ports[i]);
        char *target = ldns_rdf2str(ldns_rr_rdf(rr, 3));
        assert_string_equal(target, want_targets[i]);
        free(target);
        ldns_rr *add = ldns_rr_list_rr(ldns_pkt_additional(r), i);
        assert_int_equal(ldns_rr_get_type(add), LDNS_RR_TYPE_A);
        char *owner = ldns_rdf2str(ldns_rr_owner(add));
        assert_string_equal(owner, want_targets[i]);
        free(owner);
        char *addr = ldns_rdf2str(ldns_rr_rdf(add, 0));
        assert_string_equal(addr, "127.0.0.1");
        free(addr);
    }
    ldns_pkt_free(r);

    const struct answer_case a40 = {"a40", "api.shop.orch.", LDNS_RR_TYPE_A, 0, 0, TCP};
    r = answer(reg, &a40, 2, &len);
    assert_int_equal(ldns_pkt_ancount(r), API_N);
    for (size_t i = 0; i < API_N; i++) {
        char *addr = ldns_rdf2str(ldns_rr_rdf(ldns_rr_list_rr(ldns_pkt_answer(r), i), 0));
        char want[16];
        snprintf(want, sizeof(want), "10.0.0.%zu", i + 1);
        assert_string_equal(addr, want);
        free(addr);
    }
    ldns_pkt_free(r);
    registry_free(reg);
}

static void test_answer_no_registry(void **state)
{
    (void)state;
    uint8_t q[512], out[512];
    size_t qlen = make_query("web.shop.orch.", LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, 0, 9, q, 512);
    size_t len;
    assert_int_equal(registry_answer(NULL, q, qlen, 512, out, sizeof(out), &len),
                     REGISTRY_ANSWERED);
    assert_int_equal(LDNS_RCODE_WIRE(out), LDNS_RCODE_SERVFAIL);
}

/* ---- hostile packets ---- */

struct hostile_case {
    const char *label;
    uint8_t bytes[64];
    size_t len;
    int want; /* an rcode, or -1 for dropped */
};

#define HDR(flags1, qd, an, ns, ar) 0xab, 0xcd, flags1, 0x00, 0, qd, 0, an, 0, ns, 0, ar
#define WEBQ 3, 'w', 'e', 'b', 4, 's', 'h', 'o', 'p', 4, 'o', 'r', 'c', 'h', 0
#define DROP -1

static const struct hostile_case hostile[] = {
    {"empty", {0}, 0, DROP},
    {"one byte", {0x12}, 1, DROP},
    {"short header", {HDR(0, 1, 0, 0, 0)}, 11, DROP},
    {"response (QR)", {HDR(0x80, 1, 0, 0, 0), WEBQ, 0, 1, 0, 1}, 31, DROP},
    {"header only", {HDR(0, 0, 0, 0, 0)}, 12, LDNS_RCODE_FORMERR},
    {"qdcount 0 with data", {HDR(0, 0, 0, 0, 0), WEBQ, 0, 1, 0, 1}, 31, LDNS_RCODE_FORMERR},
    {"qdcount 2, one question", {HDR(0, 2, 0, 0, 0), WEBQ, 0, 1, 0, 1}, 31, LDNS_RCODE_FORMERR},
    {"ancount 5, no answers", {HDR(0, 1, 5, 0, 0), WEBQ, 0, 1, 0, 1}, 31, LDNS_RCODE_FORMERR},
    {"arcount 3, no records", {HDR(0, 1, 0, 0, 3), WEBQ, 0, 1, 0, 1}, 31, LDNS_RCODE_FORMERR},
    {"question cut in type", {HDR(0, 1, 0, 0, 0), WEBQ, 0}, 28, LDNS_RCODE_FORMERR},
    {"name cut", {HDR(0, 1, 0, 0, 0), 3, 'w', 'e'}, 15, LDNS_RCODE_FORMERR},
    {"label past end", {HDR(0, 1, 0, 0, 0), 60, 'a', 'b', 0, 0, 1, 0, 1}, 20, LDNS_RCODE_FORMERR},
    {"compression loop", {HDR(0, 1, 0, 0, 0), 0xc0, 12, 0, 1, 0, 1}, 18, LDNS_RCODE_FORMERR},
    {"pointer chain loop",
     {HDR(0, 1, 0, 0, 0), 1, 'a', 0xc0, 12, 0, 1, 0, 1},
     20,
     LDNS_RCODE_FORMERR},
    {"pointer out of packet", {HDR(0, 1, 0, 0, 0), 0xc0, 0xff, 0, 1, 0, 1}, 18, LDNS_RCODE_FORMERR},
    {"reserved label type", {HDR(0, 1, 0, 0, 0), 0x80, 'a', 0, 0, 1, 0, 1}, 19, LDNS_RCODE_FORMERR},
    {"qtype OPT", {HDR(0, 1, 0, 0, 0), WEBQ, 0, 41, 0, 1}, 31, LDNS_RCODE_FORMERR},
    {"opcode IQUERY", {HDR(1 << 3, 1, 0, 0, 0), WEBQ, 0, 1, 0, 1}, 31, LDNS_RCODE_NOTIMPL},
    {"opcode STATUS", {HDR(2 << 3, 1, 0, 0, 0), WEBQ, 0, 1, 0, 1}, 31, LDNS_RCODE_NOTIMPL},
    {"opcode NOTIFY", {HDR(4 << 3, 1, 0, 0, 0), WEBQ, 0, 1, 0, 1}, 31, LDNS_RCODE_NOTIMPL},
    {"opcode UPDATE", {HDR(5 << 3, 1, 0, 0, 0), WEBQ, 0, 6, 0, 1}, 31, LDNS_RCODE_NOTIMPL},
    {"opcode 15", {HDR(15 << 3, 1, 0, 0, 0), WEBQ, 0, 1, 0, 1}, 31, LDNS_RCODE_NOTIMPL},
    {"class NONE", {HDR(0, 1, 0, 0, 0), WEBQ, 0, 1, 0, 254}, 31, LDNS_RCODE_REFUSED},
    {"class HS", {HDR(0, 1, 0, 0, 0), WEBQ, 0, 1, 0, 4}, 31, LDNS_RCODE_REFUSED},
    {"class 0", {HDR(0, 1, 0, 0, 0), WEBQ, 0, 1, 0, 0}, 31, LDNS_RCODE_REFUSED},
    {"trailing garbage",
     {HDR(0, 1, 0, 0, 0), WEBQ, 0, 1, 0, 1, 0xde, 0xad},
     33,
     LDNS_RCODE_NOERROR},
    {"TC set in query", {HDR(0x02, 1, 0, 0, 0), WEBQ, 0, 1, 0, 1}, 31, LDNS_RCODE_NOERROR},
    /* OPT with version 1: BADVERS is extended rcode 16, so the header's 4 bits are 0. */
    {"EDNS version 1",
     {HDR(0, 1, 0, 0, 1), WEBQ, 0, 1, 0, 1, 0, 0, 41, 0x10, 0, 0, 1, 0, 0, 0, 0},
     42,
     LDNS_RCODE_NOERROR},
};

static void test_hostile_table(void **state)
{
    (void)state;
    struct registry *reg = fixture(NULL);
    for (size_t i = 0; i < ORCH_ARRAY_LEN(hostile); i++) {
        const struct hostile_case *c = &hostile[i];
        /* An exact-size heap copy: ASan flags any read past the packet. */
        uint8_t *q = orch_xmalloc(c->len ? c->len : 1);
        memcpy(q, c->bytes, c->len);
        uint8_t out[4096];
        size_t len = 99;
        enum registry_answer_status st =
            registry_answer(reg, q, c->len, 4096, out, sizeof(out), &len);
        free(q);
        if (c->want == DROP) {
            if (st != REGISTRY_DROP || len != 0)
                fail_msg("%s: answered, want dropped", c->label);
            continue;
        }
        if (st != REGISTRY_ANSWERED || len < 12)
            fail_msg("%s: dropped", c->label);
        if ((int)LDNS_RCODE_WIRE(out) != c->want || !LDNS_QR_WIRE(out) || out[0] != 0xab ||
            out[1] != 0xcd)
            fail_msg("%s: rcode %d, want %d", c->label, LDNS_RCODE_WIRE(out), c->want);
        /* The opcode is echoed, and whatever is sent parses. */
        assert_int_equal(LDNS_OPCODE_WIRE(out), LDNS_OPCODE_WIRE(c->bytes));
        ldns_pkt *r = NULL;
        if (ldns_wire2pkt(&r, out, len) != LDNS_STATUS_OK)
            fail_msg("%s: the response does not parse", c->label);
        if (strcmp(c->label, "EDNS version 1") == 0) {
            assert_true(ldns_pkt_edns(r));
            assert_int_equal(ldns_pkt_edns_extended_rcode(r), 1);
            assert_int_equal(ldns_pkt_ancount(r), 0);
        }
        ldns_pkt_free(r);
    }
    registry_free(reg);
}

/* A deterministic mutation run over valid queries: flipped bits, cut lengths, random counts.
 * Every result is either dropped or a well-formed response with the query's id that fits. */
static void test_mutations(void **state)
{
    (void)state;
    struct registry *reg = fixture(NULL);
    const char *names[] = {"web.shop.orch.", "_http._tcp.api.shop.orch.", "api.shop.orch.",
                           "example.com."};
    const uint16_t types[] = {LDNS_RR_TYPE_A, LDNS_RR_TYPE_SRV, LDNS_RR_TYPE_ANY};
    uint64_t seed = 0x9e3779b97f4a7c15ULL;
    for (int iter = 0; iter < 20000; iter++) {
        uint8_t base[512];
        size_t qlen = make_query(names[iter % 4], types[iter % 3], LDNS_RR_CLASS_IN,
                                 (iter & 4) ? 1232 : 0, (uint16_t)iter, base, sizeof(base));
        /* Some stay valid (with their name's case changed): the fast path's share. */
        int flips = iter % 8 == 7 ? 0 : 1 + iter % 4;
        if (flips == 0)
            for (size_t i = 13; i < 20 && i < qlen; i++)
                if (base[i] >= 'a' && base[i] <= 'z' && (iter & 16))
                    base[i] = (uint8_t)(base[i] - 32);
        for (int f = 0; f < flips; f++) {
            seed = seed * 6364136223846793005ULL + 1442695040888963407ULL;
            size_t at = (size_t)(seed >> 33) % qlen;
            if (at == 2)
                at = 3; /* keep QR clear so most are answered */
            base[at] ^= (uint8_t)(seed >> 17);
        }
        if (iter % 5 == 0 && flips > 0)
            qlen = 12 + (size_t)(seed >> 40) % (qlen - 11);
        uint8_t *q = orch_xmalloc(qlen);
        memcpy(q, base, qlen);
        size_t max_udp = iter % 7 == 0 ? 0 : 512 + (size_t)(iter % 4) * 1000;
        static uint8_t out[65535], ref[65535];
        size_t len = 0, ref_len = 0;
        enum registry_answer_status st =
            registry_answer(reg, q, qlen, max_udp, out, sizeof(out), &len);
        /* The fast path answers exactly as the generic one would. */
        if (registry_answer_generic(reg, q, qlen, max_udp, ref, sizeof(ref), &ref_len) != st ||
            ref_len != len || memcmp(ref, out, len) != 0)
            fail_msg("iteration %d: the fast and generic paths differ", iter);
        if (st == REGISTRY_ANSWERED) {
            assert_true(len >= 12 && len <= (max_udp ? 4096 : 65535));
            assert_memory_equal(out, q, 2);
            ldns_pkt *r = NULL;
            if (ldns_wire2pkt(&r, out, len) != LDNS_STATUS_OK)
                fail_msg("iteration %d: the response does not parse", iter);
            ldns_pkt_free(r);
        }
        free(q);
    }
    registry_free(reg);
}

/* ---- services with no instance (docs/contract.md section 4: NODATA, never NXDOMAIN) ---- */

static const struct registry_port cart_ports[] = {{"http", REGISTRY_TCP, 0},
                                                  {"events", REGISTRY_UDP, 0}};
static const struct registry_port web_decl_ports[] = {{"http", REGISTRY_TCP, 0},
                                                      {"metrics", REGISTRY_TCP, 0}};

/* shop/web: one healthy instance that publishes http only, though the spec also names metrics;
 * shop/cart: scaled to 0; other/idle: an app whose only service has no port and no instance. */
static struct registry *fixture_services(void)
{
    static const struct registry_port web_inst_ports[] = {{"http", REGISTRY_TCP, 49153}};
    const struct registry_service svcs[] = {
        {"shop", "web", web_decl_ports, 2},
        {"shop", "cart", cart_ports, 2},
        {"other", "idle", NULL, 0},
    };
    const struct registry_instance inst[] = {
        {"shop", "web", WEB1, "127.0.0.1", web_inst_ports, 1, true},
    };
    struct registry *reg = NULL;
    struct orch_error err = {0};
    struct registry_options opt = {.ttl = 7, .services = svcs, .n_services = 3};
    if (registry_build(&opt, inst, ORCH_ARRAY_LEN(inst), &reg, &err) != 0)
        fail_msg("registry_build: %s", err.msg);
    return reg;
}

static const struct lookup_case service_lookup_cases[] = {
    {"cart.shop.orch.", LDNS_RR_TYPE_A, REGISTRY_NOERROR, 0, 0},
    {"cart.shop.orch.", LDNS_RR_TYPE_SRV, REGISTRY_NOERROR, 0, 0},
    {"_http._tcp.cart.shop.orch.", LDNS_RR_TYPE_SRV, REGISTRY_NOERROR, 0, 0},
    {"_events._udp.cart.shop.orch.", LDNS_RR_TYPE_SRV, REGISTRY_NOERROR, 0, 0},
    {"_tcp.cart.shop.orch.", LDNS_RR_TYPE_SRV, REGISTRY_NOERROR, 0, 0},
    {"_udp.cart.shop.orch.", LDNS_RR_TYPE_SRV, REGISTRY_NOERROR, 0, 0},
    {"_events._tcp.cart.shop.orch.", LDNS_RR_TYPE_SRV, REGISTRY_NXDOMAIN, 0, 0},
    {"aaaaaaaaaaaa.cart.shop.orch.", LDNS_RR_TYPE_A, REGISTRY_NXDOMAIN, 0, 0},
    {"x.cart.shop.orch.", LDNS_RR_TYPE_A, REGISTRY_NXDOMAIN, 0, 0},
    {"idle.other.orch.", LDNS_RR_TYPE_A, REGISTRY_NOERROR, 0, 0},
    {"idle.other.orch.", LDNS_RR_TYPE_SRV, REGISTRY_NOERROR, 0, 0},
    {"other.orch.", LDNS_RR_TYPE_A, REGISTRY_NOERROR, 0, 0},
    {"_tcp.idle.other.orch.", LDNS_RR_TYPE_SRV, REGISTRY_NXDOMAIN, 0, 0},
    {"web.shop.orch.", LDNS_RR_TYPE_A, REGISTRY_NOERROR, 1, 0},
    {"web.shop.orch.", LDNS_RR_TYPE_SRV, REGISTRY_NOERROR, 0, 1},
    {"_http._tcp.web.shop.orch.", LDNS_RR_TYPE_SRV, REGISTRY_NOERROR, 0, 1},
    {"_metrics._tcp.web.shop.orch.", LDNS_RR_TYPE_SRV, REGISTRY_NOERROR, 0, 0},
    {"aaaaaaaaaaaa.web.shop.orch.", LDNS_RR_TYPE_A, REGISTRY_NOERROR, 1, 0},
    {"nope.shop.orch.", LDNS_RR_TYPE_A, REGISTRY_NXDOMAIN, 0, 0},
};

static const struct answer_case service_answer_cases[] = {
    {"scaled to 0 A", "cart.shop.orch.", LDNS_RR_TYPE_A, 0, 0, UDP, 0, 0, 1, 0, false, true, 512},
    {"scaled to 0 SRV", "cart.shop.orch.", LDNS_RR_TYPE_SRV, 0, 0, UDP, 0, 0, 1, 0, false, true,
     512},
    {"scaled to 0 port SRV", "_http._tcp.cart.shop.orch.", LDNS_RR_TYPE_SRV, 0, 0, UDP, 0, 0, 1, 0,
     false, true, 512},
    {"scaled to 0 port SRV TCP", "_events._udp.cart.shop.orch.", LDNS_RR_TYPE_SRV, 0, 0, TCP, 0, 0,
     1, 0, false, true, 65535},
    {"scaled to 0 EDNS", "cart.shop.orch.", LDNS_RR_TYPE_A, 0, 1232, UDP, 0, 0, 1, 0, false, true,
     1232},
    {"between names", "_tcp.cart.shop.orch.", LDNS_RR_TYPE_SRV, 0, 0, UDP, 0, 0, 1, 0, false, true,
     512},
    {"app with no instance", "other.orch.", LDNS_RR_TYPE_A, 0, 0, UDP, 0, 0, 1, 0, false, true,
     512},
    {"declared port, none published", "_metrics._tcp.web.shop.orch.", LDNS_RR_TYPE_SRV, 0, 0, UDP,
     0, 0, 1, 0, false, true, 512},
    {"unknown port", "_events._tcp.cart.shop.orch.", LDNS_RR_TYPE_SRV, 0, 0, UDP, 3, 0, 1, 0, false,
     true, 512},
    {"instance of none", "aaaaaaaaaaaa.cart.shop.orch.", LDNS_RR_TYPE_A, 0, 0, UDP, 3, 0, 1, 0,
     false, true, 512},
    {"healthy beside", "web.shop.orch.", LDNS_RR_TYPE_SRV, 0, 0, UDP, 0, 1, 0, 1, false, true, 512},
};

static void test_services_without_instances(void **state)
{
    (void)state;
    struct registry *reg = fixture_services();
    for (size_t i = 0; i < ORCH_ARRAY_LEN(service_lookup_cases); i++) {
        const struct lookup_case *c = &service_lookup_cases[i];
        struct registry_result r;
        registry_lookup(reg, c->name, c->qtype, &r);
        if (r.rcode != c->rcode || r.n_addrs != c->n_addrs || r.n_srvs != c->n_srvs)
            fail_msg("%s/%u: rcode %d addrs %zu srvs %zu", c->name, c->qtype, r.rcode, r.n_addrs,
                     r.n_srvs);
    }
    for (size_t i = 0; i < ORCH_ARRAY_LEN(service_answer_cases); i++) {
        const struct answer_case *c = &service_answer_cases[i];
        size_t len;
        ldns_pkt *r = answer(reg, c, (uint16_t)(0x4000 + i), &len);
        bool ok = (int)ldns_pkt_get_rcode(r) == c->rcode && (int)ldns_pkt_ancount(r) == c->an &&
                  (int)ldns_pkt_nscount(r) == c->ns && (int)ldns_pkt_arcount(r) == c->ar &&
                  ldns_pkt_aa(r) == c->aa && !ldns_pkt_tc(r) && len <= c->max_len &&
                  ldns_pkt_edns(r) == (c->edns > 0);
        if (!ok)
            fail_msg("%s: rcode %d an %u ns %u ar %u aa %d len %zu", c->label,
                     ldns_pkt_get_rcode(r), ldns_pkt_ancount(r), ldns_pkt_nscount(r),
                     ldns_pkt_arcount(r), ldns_pkt_aa(r), len);
        if (c->ns == 1) {
            ldns_rr *soa = ldns_rr_list_rr(ldns_pkt_authority(r), 0);
            assert_int_equal(ldns_rr_get_type(soa), LDNS_RR_TYPE_SOA);
            assert_int_equal(ldns_rr_ttl(soa), 7);
        }
        ldns_pkt_free(r);
    }
    registry_free(reg);

    /* A service is checked like an instance, and named by its index. */
    static const struct registry_port bad_ports[] = {{"Bad", REGISTRY_TCP, 0}};
    const struct registry_service bad[] = {
        {"shop", "Web", NULL, 0}, {"shop", "web", bad_ports, 1}, {"Shop", "web", NULL, 0}};
    const char *want[] = {"service 1: service 'Web'", "service 1 (shop/web): port name 'Bad'",
                          "service 1: app 'Shop'"};
    for (size_t i = 0; i < ORCH_ARRAY_LEN(bad); i++) {
        const struct registry_service two[] = {{"shop", "web", NULL, 0}, bad[i]};
        reg = (struct registry *)0x1;
        struct orch_error err = {0};
        int rc = registry_build(&(struct registry_options){.services = two, .n_services = 2}, NULL,
                                0, &reg, &err);
        if (rc != -ORCH_E_INVALID || strstr(err.msg, want[i]) == NULL)
            fail_msg("bad service %zu: rc %d msg '%s'", i, rc, err.msg);
        assert_ptr_equal(reg, (struct registry *)0x1);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lookup_table),
        cmocka_unit_test(test_lookup_records),
        cmocka_unit_test(test_build_errors),
        cmocka_unit_test(test_answer_table),
        cmocka_unit_test(test_answer_records),
        cmocka_unit_test(test_answer_no_registry),
        cmocka_unit_test(test_hostile_table),
        cmocka_unit_test(test_mutations),
        cmocka_unit_test(test_services_without_instances),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
