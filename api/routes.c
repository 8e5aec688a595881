/* The route table and the pure request pieces the server and the tests share: matching,
 * query parameters, If-Match, problem+json. Nothing here reads a socket, a clock or the store. */
#include "routes.h"

#include <jansson.h>
#include <string.h>

const struct api_route api_routes[] = {
    {"GET", "/v1/health", API_ROUTE_HEALTH, false, AUTH_OP_READ, false},
    {"GET", "/v1/apps", API_ROUTE_APPS, true, AUTH_OP_READ, false},
    {"GET", "/v1/apps/{app}", API_ROUTE_APP_GET, true, AUTH_OP_READ, false},
    {"PUT", "/v1/apps/{app}", API_ROUTE_APP_PUT, true, AUTH_OP_DEPLOY, true},
    {"DELETE", "/v1/apps/{app}", API_ROUTE_APP_DELETE, true, AUTH_OP_DEPLOY, true},
    {"GET", "/v1/apps/{app}/services/{svc}", API_ROUTE_SERVICE, true, AUTH_OP_READ, false},
    {"POST", "/v1/apps/{app}/services/{svc}/scale", API_ROUTE_SCALE, true, AUTH_OP_DEPLOY, true},
    {"GET", "/v1/apps/{app}/services/{svc}/revisions", API_ROUTE_REVISIONS, true, AUTH_OP_READ,
     false},
    {"POST", "/v1/apps/{app}/services/{svc}/rollback", API_ROUTE_ROLLBACK, true, AUTH_OP_DEPLOY,
     true},
    {"GET", "/v1/events", API_ROUTE_EVENTS, true, AUTH_OP_READ, false},
    {"GET", "/metrics", API_ROUTE_METRICS, true, AUTH_OP_READ, false},
};
const size_t api_routes_count = sizeof(api_routes) / sizeof(api_routes[0]);

static bool name_char(char c)
{
    return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-';
}

/* Matches one path against one pattern; fills app/svc on success. */
static bool pattern_match(const char *pat, const char *path, size_t len, struct api_match *m)
{
    size_t i = 0;
    while (*pat) {
        if (*pat == '{') {
            const char *close = strchr(pat, '}');
            size_t start = i;
            while (i < len && name_char(path[i]))
                i++;
            size_t n = i - start;
            if (n == 0 || n > API_NAME_MAX)
                return false;
            char *dst = strncmp(pat, "{app}", 5) == 0 ? m->app : m->svc;
            memcpy(dst, path + start, n);
            dst[n] = '\0';
            pat = close + 1;
            continue;
        }
        if (i >= len || path[i] != *pat)
            return false;
        i++;
        pat++;
    }
    return i == len;
}

int api_route_match(const char *method, size_t method_len, const char *path, size_t path_len,
                    struct api_match *m)
{
    memset(m, 0, sizeof(*m));
    bool path_seen = false;
    for (size_t r = 0; r < api_routes_count; r++) {
        struct api_match tmp = {0};
        if (!pattern_match(api_routes[r].pattern, path, path_len, &tmp))
            continue;
        const char *rm = api_routes[r].method;
        if (strlen(rm) == method_len && memcmp(rm, method, method_len) == 0) {
            *m = tmp;
            m->route = &api_routes[r];
            return 200;
        }
        size_t used = strlen(m->allow);
        snprintf(m->allow + used, sizeof(m->allow) - used, "%s%s", path_seen ? ", " : "", rm);
        path_seen = true;
    }
    return path_seen ? 405 : 404;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int api_query_get(const char *query, size_t query_len, const char *name, char *out, size_t out_len)
{
    if (query == NULL)
        return 0;
    size_t name_len = strlen(name);
    size_t i = 0;
    while (i < query_len) {
        size_t end = i;
        while (end < query_len && query[end] != '&')
            end++;
        size_t eq = i;
        while (eq < end && query[eq] != '=')
            eq++;
        if (eq - i == name_len && memcmp(query + i, name, name_len) == 0) {
            size_t o = 0;
            for (size_t k = eq + 1; k < end; k++) {
                char c = query[k];
                if (c == '%') {
                    int hi = k + 2 < end ? hexval(query[k + 1]) : -1;
                    int lo = k + 2 < end ? hexval(query[k + 2]) : -1;
                    if (hi < 0 || lo < 0)
                        return -1;
                    c = (char)(hi * 16 + lo);
                    k += 2;
                } else if (c == '+') {
                    c = ' ';
                }
                if (c == '\0' || o + 1 >= out_len)
                    return -1;
                out[o++] = c;
            }
            out[o] = '\0';
            return 1;
        }
        i = end + 1;
    }
    return 0;
}

int api_query_bool(const char *query, size_t query_len, const char *name)
{
    char v[8];
    int rc = api_query_get(query, query_len, name, v, sizeof(v));
    if (rc <= 0)
        return rc;
    if (strcmp(v, "true") == 0 || strcmp(v, "1") == 0)
        return 1;
    if (strcmp(v, "false") == 0 || strcmp(v, "0") == 0)
        return 0;
    return -1;
}

bool api_if_match(const char *header, size_t len, const char *etag)
{
    if (header == NULL)
        return true;
    size_t etag_len = etag ? strlen(etag) : 0;
    size_t i = 0;
    while (i < len) {
        while (i < len && (header[i] == ' ' || header[i] == '\t' || header[i] == ','))
            i++;
        size_t start = i;
        if (i < len && header[i] == '*') {
            i++;
        } else {
            if (i + 1 < len && header[i] == 'W' && header[i + 1] == '/')
                i += 2;
            if (i >= len || header[i] != '"')
                return false; /* malformed: fail closed */
            i++;
            while (i < len && header[i] != '"')
                i++;
            if (i >= len)
                return false;
            i++;
        }
        size_t n = i - start;
        if (n == 1 && header[start] == '*') {
            if (etag != NULL)
                return true;
        } else if (etag != NULL && n == etag_len && memcmp(header + start, etag, n) == 0) {
            return true;
        }
        while (i < len && (header[i] == ' ' || header[i] == '\t'))
            i++;
        if (i < len && header[i] != ',')
            return false;
    }
    return false;
}

const char *api_status_reason(int status)
{
    switch (status) {
    case 200:
        return "OK";
    case 202:
        return "Accepted";
    case 204:
        return "No Content";
    case 400:
        return "Bad Request";
    case 401:
        return "Unauthorized";
    case 403:
        return "Forbidden";
    case 404:
        return "Not Found";
    case 405:
        return "Method Not Allowed";
    case 409:
        return "Conflict";
    case 412:
        return "Precondition Failed";
    case 413:
        return "Content Too Large";
    case 415:
        return "Unsupported Media Type";
    case 422:
        return "Unprocessable Content";
    case 428:
        return "Precondition Required";
    case 431:
        return "Request Header Fields Too Large";
    case 500:
        return "Internal Server Error";
    case 501:
        return "Not Implemented";
    case 503:
        return "Service Unavailable";
    case 504:
        return "Gateway Timeout";
    default:
        return "Error";
    }
}

char *api_problem_json(int status, const char *title, const char *detail,
                       const struct orch_strv *errors)
{
    json_t *o = json_object();
    json_object_set_new(o, "type", json_string("about:blank"));
    json_object_set_new(o, "title", json_string(title ? title : api_status_reason(status)));
    json_object_set_new(o, "status", json_integer(status));
    if (detail != NULL) {
        /* Messages come from our own errors; jansson refuses invalid UTF-8, so keep ASCII. */
        json_t *d = json_string(detail);
        json_object_set_new(o, "detail", d ? d : json_string("(unprintable detail)"));
    }
    if (errors != NULL) {
        json_t *a = json_array();
        for (size_t i = 0; i < errors->n; i++) {
            json_t *e = json_string(errors->v[i]);
            if (e)
                json_array_append_new(a, e);
        }
        json_object_set_new(o, "errors", a);
    }
    char *s = json_dumps(o, JSON_PRESERVE_ORDER | JSON_COMPACT);
    json_decref(o);
    return s;
}
