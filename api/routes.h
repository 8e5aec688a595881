/* The API's route table (docs/contract.md section 6) and the pure pieces of request handling:
 * matching a method and path to a route, query parameters, If-Match against an ETag, and RFC 9457
 * problem+json bodies. No I/O, no HTTP library type: api/server.c owns the wire, api/handlers.c
 * the calls into ops. */
#ifndef ORCH_API_ROUTES_H
#define ORCH_API_ROUTES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/auth.h"
#include "base/util.h"

enum api_route_id {
    API_ROUTE_HEALTH = 1,
    API_ROUTE_APPS,
    API_ROUTE_APP_GET,
    API_ROUTE_APP_PUT,
    API_ROUTE_APP_DELETE,
    API_ROUTE_SERVICE,
    API_ROUTE_SCALE,
    API_ROUTE_REVISIONS,
    API_ROUTE_ROLLBACK,
    API_ROUTE_EVENTS,
    API_ROUTE_METRICS,
};

struct api_route {
    const char *method;  /* "GET", "PUT", "POST", "DELETE" */
    const char *pattern; /* OpenAPI path template: "/v1/apps/{app}" */
    enum api_route_id id;
    bool needs_auth; /* false only for GET /v1/health */
    enum auth_op op; /* what auth_allows is asked */
    bool mutating;   /* audited; serialized with the other writers */
};

/* The table, in the order `--routes` prints it. */
extern const struct api_route api_routes[];
extern const size_t api_routes_count;

/* Longest app or service name in a path (DNS labels). */
#define API_NAME_MAX 63

struct api_match {
    const struct api_route *route;
    char app[API_NAME_MAX + 1]; /* "" when the route has no {app} */
    char svc[API_NAME_MAX + 1]; /* "" when the route has no {svc} */
    /* 405: the methods the path allows, for the Allow header ("GET, PUT, DELETE"). */
    char allow[64];
};

/* Matches method and path (without the query). Path segments are literal or a name
 * ([a-z0-9-], 1..63 bytes, as the spec's app and service names; anything else, percent escapes
 * included, does not match). Returns 200 with m->route set, 404 when no route has the path, 405
 * when routes have the path but not the method (m->allow filled). Pure. */
int api_route_match(const char *method, size_t method_len, const char *path, size_t path_len,
                    struct api_match *m);

/* The value of query parameter `name` in query (the part after '?', may be NULL), copied into out
 * (out_len bytes, NUL-terminated; percent escapes decoded). Returns 1 when present, 0 when absent,
 * -1 when malformed or too long. Pure. */
int api_query_get(const char *query, size_t query_len, const char *name, char *out, size_t out_len);
/* "true"/"1" -> 1, "false"/"0"/absent -> 0, else -1. */
int api_query_bool(const char *query, size_t query_len, const char *name);

/* If-Match (RFC 9110 13.1.1) of a request against the resource's current strong ETag (quoted,
 * or NULL when the resource does not exist). header NULL: no precondition, true. "*" matches
 * any existing resource; otherwise one entity-tag of the comma-separated list must equal etag
 * exactly (weak tags never match, strong comparison). Pure. */
bool api_if_match(const char *header, size_t header_len, const char *etag);

/* A new RFC 9457 application/problem+json body: {"type","title","status","detail"} and, when
 * errors is not NULL, "errors": [...]. title defaults to the status's reason phrase; detail may
 * be NULL. */
char *api_problem_json(int status, const char *title, const char *detail,
                       const struct orch_strv *errors);

/* The reason phrase of the statuses the API sends ("Not Found"); "Error" for others. */
const char *api_status_reason(int status);

#endif
