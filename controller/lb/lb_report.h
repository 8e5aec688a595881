/* The balancer's figures as the daemon publishes them for readers in other processes
 * (`orch status`, `apply --wait`): one JSON file in the state dir (LB_REPORT_FILE), replaced
 * atomically (write then rename) about once a second while the daemon runs. Pure file I/O and
 * JSON, no libuv: the CLI links it without the proxy.
 *
 * Ownership: a report's strings and array are new, freed by lb_report_free (which also takes a
 * zeroed report); lb_report_write borrows everything. */
#ifndef ORCH_LB_LB_REPORT_H
#define ORCH_LB_LB_REPORT_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define LB_REPORT_FILE "published.json"
/* A report older than this is stale (its daemon stopped writing): readers ignore it. */
#define LB_REPORT_STALE_MS 10000

/* One published port of a service. */
struct lb_report_port {
    char *app;
    char *service;
    char *port;              /* the port's name in the spec */
    char *listen;            /* "127.0.0.1:8080" */
    char *balance;           /* "round_robin" | "least_conn" */
    char *error;             /* why it is not served ("" when listening): e.g. the port is taken */
    uint64_t connections;    /* accepted since the listener started */
    uint64_t active;         /* open now */
    uint64_t rejected;       /* closed at once: no healthy instance */
    uint64_t connect_failed; /* backend connects that failed (each retry counts) */
    uint64_t requests;       /* HTTP/1 requests (a connection that is not HTTP/1 counts 1) */
    uint64_t bytes_in;       /* client -> instances */
    uint64_t bytes_out;      /* instances -> client */
    double requests_per_second; /* over the last few seconds */
    double connections_per_second;
    unsigned backends;        /* instances in its set */
    unsigned backends_usable; /* healthy and not draining */
};

struct lb_report {
    int64_t written_ms; /* wall clock */
    long pid;           /* the daemon's */
    struct lb_report_port *v;
    size_t n;
};

/* Writes r to dir/LB_REPORT_FILE (via a temporary file and rename). */
int lb_report_write(const char *dir, const struct lb_report *r, struct orch_error *err);
/* Reads dir/LB_REPORT_FILE into *out (new). ORCH_E_NOTFOUND when there is none; ORCH_E_INVALID
 * when it does not parse. */
int lb_report_read(const char *dir, struct lb_report *out, struct orch_error *err);
void lb_report_free(struct lb_report *r);

#endif
