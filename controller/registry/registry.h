/* The DNS registry (docs/contract.md section 4): an immutable index of the healthy instances of
 * every service, and the pure function that turns a DNS query into its answer.
 *
 * Names served, under the zone (default "orch."):
 *   SERVICE.APP.ZONE               A    the healthy instances' addresses, deduplicated
 *                                  SRV  one per healthy instance, for its first port
 *   _PORT._PROTO.SERVICE.APP.ZONE  SRV  priority 0, weight 1, the published port, target
 *                                       ID12.SERVICE.APP.ZONE, with that A as additional data
 *   ID12.SERVICE.APP.ZONE          A    one instance's address (ID12: first 12 hex digits)
 *   ZONE                           SOA
 * A known name with no data of the asked type (a service with no healthy instance, an unhealthy
 * instance, "APP.ZONE") is NODATA: NOERROR, no answer, the SOA in the authority section. An
 * unknown name inside the zone is NXDOMAIN with the SOA; a name outside it is REFUSED. Names
 * compare case-insensitively. A service is known from the desired state (registry_options'
 * services), so its names stay NODATA with no instance at all (scaled to 0, crash-looping), and
 * from its instances while they run (a service just deleted keeps its names until they stop).
 *
 * Usage (the daemon): on every health or placement change, build a new registry from the
 * desired services and the observed instances and hand it to dns_server_set_registry(), which
 * takes it. A build of 1,000 services x 2 instances takes a few milliseconds (scripts/bench-dns
 * prints it).
 *
 * Pure: no I/O, no clock, no globals. A registry is never modified after registry_build(), so
 * any number of threads may call registry_lookup()/registry_answer() on it at once. */
#ifndef ORCH_REGISTRY_REGISTRY_H
#define ORCH_REGISTRY_REGISTRY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define REGISTRY_DEFAULT_ZONE "orch."
#define REGISTRY_DEFAULT_TTL 5
/* The largest UDP payload answered, whatever EDNS0 size a client announces. */
#define REGISTRY_MAX_UDP 4096
/* Responses are never larger than this (the TCP frame limit). */
#define REGISTRY_MAX_MESSAGE 65535

enum registry_proto { REGISTRY_TCP, REGISTRY_UDP };

struct registry_port {
    const char *name;          /* DNS label: the SRV name is _NAME._PROTO.SERVICE.APP.ZONE */
    enum registry_proto proto; /* tcp | udp */
    uint16_t port;             /* the published host port; 0 = not published (no SRV) */
};

/* One container. All pointers are borrowed for the duration of registry_build() only. */
struct registry_instance {
    const char *app;     /* DNS label */
    const char *service; /* DNS label */
    const char *id;      /* the full container id (at least 12 hex digits; case ignored) */
    const char *ipv4;    /* dotted quad to answer with, e.g. the publish address "127.0.0.1" */
    const struct registry_port *ports; /* in spec order: the first one answers SRV SERVICE */
    size_t n_ports;
    bool healthy; /* only healthy instances are answered; the others keep their names alive */
};

/* A service of the desired state, whatever its instances. Borrowed for registry_build() only. */
struct registry_service {
    const char *app;                   /* DNS label */
    const char *service;               /* DNS label */
    const struct registry_port *ports; /* its ports in spec order; port numbers are ignored */
    size_t n_ports;
};

struct registry_options {
    const char *zone; /* NULL: REGISTRY_DEFAULT_ZONE; a trailing dot is optional */
    uint32_t ttl;     /* seconds, for every record and the SOA minimum; 0: REGISTRY_DEFAULT_TTL */
    uint32_t serial;  /* SOA serial; the caller bumps it per build if it wants (0 is fine) */
    /* The services that exist (docs/contract.md section 4: "a service that exists with no healthy
     * instance" is NODATA): APP.ZONE, SERVICE.APP.ZONE, _PROTO.SERVICE.APP.ZONE and each port's
     * SRV name are known names even when no instance backs them. */
    const struct registry_service *services;
    size_t n_services;
};

struct registry;

/* Builds the index. *out is new (free with registry_free()). Fails with ORCH_E_INVALID, naming
 * the service or instance, when a name is not a DNS label, an id is not hex, an address is not
 * IPv4, or the zone is not a domain name; *out is then untouched. Duplicate records are merged. */
int registry_build(const struct registry_options *opt, const struct registry_instance *inst,
                   size_t n_inst, struct registry **out, struct orch_error *err);
void registry_free(struct registry *reg); /* NULL is fine */

/* The number of names the registry answers for (services, instances, SRV names, the apex and
 * the empty names between them). */
size_t registry_name_count(const struct registry *reg);

/* ---- lookups without the wire format (for callers and tests that want records) ---- */

enum registry_rcode {
    REGISTRY_NOERROR = 0, /* with no records: NODATA */
    REGISTRY_FORMERR = 1,
    REGISTRY_SERVFAIL = 2,
    REGISTRY_NXDOMAIN = 3,
    REGISTRY_NOTIMP = 4,
    REGISTRY_REFUSED = 5,
};

struct registry_srv {
    uint16_t priority, weight, port;
    const char *target;   /* "ID12.SERVICE.APP.ZONE." */
    uint32_t target_addr; /* the target's IPv4 address, network byte order */
};

/* Borrowed views into the registry: valid while it lives. */
struct registry_result {
    enum registry_rcode rcode;
    const uint32_t *addrs; /* qtype A: addresses in network byte order */
    size_t n_addrs;
    const struct registry_srv *srvs; /* qtype SRV */
    size_t n_srvs;
    bool soa; /* qtype SOA at the apex */
};

/* Looks name (text, trailing dot optional, any case) up for qtype (1 = A, 33 = SRV, 6 = SOA;
 * others get NODATA on a known name). O(1): one hash probe. */
void registry_lookup(const struct registry *reg, const char *name, uint16_t qtype,
                     struct registry_result *res);

/* ---- the wire format ---- */

enum registry_answer_status {
    REGISTRY_ANSWERED = 0, /* out[0..*out_len) is the response to send */
    REGISTRY_DROP = 1,     /* send nothing: too short to answer, a response (QR set), ... */
};

/* Answers one DNS message. query: the bytes received (borrowed). max_udp: the largest UDP
 * payload this server sends (clamped to 512..REGISTRY_MAX_UDP; the client's EDNS0 size, at
 * least 512, is honoured below it, 512 without EDNS0), or 0 for TCP (answers up to
 * min(out_cap, 65535)). out: caller-owned, out_cap >= 512 recommended; a response never
 * exceeds out_cap. reg may be NULL (not built yet): every query then gets SERVFAIL.
 *
 * An answer that does not fit gets TC set and keeps the records that fit whole; additional
 * records that do not fit are left out without TC (RFC 2181 9). Malformed queries get FORMERR,
 * opcodes other than QUERY NOTIMP, classes other than IN and zone transfers REFUSED. An OPT
 * record is echoed when the query had one (EDNS version > 0 gets BADVERS). Pure and thread-safe;
 * never reads outside query[0..qlen). */
enum registry_answer_status registry_answer(const struct registry *reg, const uint8_t *query,
                                            size_t qlen, size_t max_udp, uint8_t *out,
                                            size_t out_cap, size_t *out_len);

/* The same answer without the fast path: registry_answer() serves the common queries (A or
 * SRV of a known name, at most a plain OPT) from responses this function rendered at build
 * time, and hands everything else here. Exposed so that tests and the fuzz target can check
 * that both give the same bytes. */
enum registry_answer_status registry_answer_generic(const struct registry *reg,
                                                    const uint8_t *query, size_t qlen,
                                                    size_t max_udp, uint8_t *out, size_t out_cap,
                                                    size_t *out_len);

#endif
