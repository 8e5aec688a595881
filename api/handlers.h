/* One authenticated API call as the route handlers see it: the request's parts copied out of
 * the HTTP library (so a worker thread may read them) and the response they fill. api/server.c
 * runs api_call_run on libuv's thread pool, because the operations layer it calls is blocking
 * (SQLite, the engine); the call never touches the loop or the connection. */
#ifndef ORCH_API_HANDLERS_H
#define ORCH_API_HANDLERS_H

#include <pthread.h>
#include <stddef.h>

#include "auth/auth.h"
#include "routes.h"

struct api_call {
    /* request: owned by the call, read-only for the handler */
    const struct api_route *route;
    char app[API_NAME_MAX + 1];
    char svc[API_NAME_MAX + 1];
    char *query; /* after '?', NULL when none */
    size_t query_len;
    char *body;
    size_t body_len;
    char *if_match; /* the If-Match header, NULL when absent */
    struct auth_identity identity;
    const char *state_dir;       /* borrowed from the server */
    pthread_mutex_t *write_lock; /* borrowed: held around If-Match check + change */
    /* response: filled by api_call_run */
    int status;
    char *resp_body;       /* new */
    const char *resp_type; /* static: "application/json", "application/problem+json" */
    char etag[80];         /* "" when none */
    char location[256];    /* "" when none */
    char outcome[64];      /* for the audit line: "recorded", "converged", "412", ... */
};

/* Runs the route's operation and fills the response (worker thread). */
void api_call_run(struct api_call *c);

/* Frees what the call owns. */
void api_call_free(struct api_call *c);

/* Fills c's response with a problem+json body. Returns status. */
int api_call_problem(struct api_call *c, int status, const char *detail);

#endif
