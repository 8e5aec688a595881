/* Pure decisions of the balancer: the backend for a new connection (round robin or least
 * connections over the eligible set) and the HTTP/1 request counter. No I/O, no clock, no
 * globals: the proxy (lb.c) keeps the state and acts. */
#include "lb/lb_pick.h"

#include <string.h>
#include <strings.h>

bool lb_mode_parse(const char *s, enum lb_mode *out)
{
    if (s != NULL && strcmp(s, "round_robin") == 0)
        *out = LB_ROUND_ROBIN;
    else if (s != NULL && strcmp(s, "least_conn") == 0)
        *out = LB_LEAST_CONN;
    else
        return false;
    return true;
}

const char *lb_mode_name(enum lb_mode mode)
{
    return mode == LB_LEAST_CONN ? "least_conn" : "round_robin";
}

static bool eligible(const struct lb_pick_backend *b, size_t i, const bool *tried)
{
    return (b[i].flags & LB_BACKEND_HEALTHY) && !(b[i].flags & LB_BACKEND_DRAINING) &&
           (tried == NULL || !tried[i]);
}

int lb_pick(const struct lb_pick_backend *b, size_t n, enum lb_mode mode, uint32_t *cursor,
            const bool *tried)
{
    if (n == 0)
        return -1;
    size_t start = *cursor % n;
    int best = -1;
    for (size_t k = 0; k < n; k++) {
        size_t i = (start + k) % n;
        if (!eligible(b, i, tried))
            continue;
        if (mode == LB_ROUND_ROBIN) {
            best = (int)i;
            break;
        }
        /* least_conn: the first of the fewest in cursor order, so ties rotate */
        if (best < 0 || b[i].active < b[best].active)
            best = (int)i;
    }
    if (best >= 0)
        *cursor = (uint32_t)(((size_t)best + 1) % n);
    return best;
}

/* ---- HTTP/1 request counting ---- */

static const char *const http_methods[] = {"GET",    "HEAD",    "POST",  "PUT",     "DELETE",
                                           "PATCH",  "OPTIONS", "TRACE", "CONNECT", "PROPFIND",
                                           "REPORT", "MKCOL",   "COPY",  "MOVE",    "LOCK"};

static bool is_method(const char *s, size_t n)
{
    for (size_t i = 0; i < sizeof(http_methods) / sizeof(http_methods[0]); i++)
        if (strlen(http_methods[i]) == n && memcmp(http_methods[i], s, n) == 0)
            return true;
    return false;
}

static bool line_has_prefix(const struct lb_http *h, const char *prefix)
{
    size_t n = strlen(prefix);
    size_t have = h->line_len < sizeof(h->line) ? h->line_len : sizeof(h->line);
    return have >= n && strncasecmp(h->line, prefix, n) == 0;
}

/* A whole header line (its first sizeof(line) bytes) ended. */
static void header_line_end(struct lb_http *h)
{
    size_t have = h->line_len < sizeof(h->line) ? h->line_len : sizeof(h->line);
    if (have == 0 || (have == 1 && h->line[0] == '\r')) {
        if (h->stop_after) {
            h->state = LB_HTTP_OPAQUE;
        } else if (h->content_length > 0) {
            h->body_left = h->content_length;
            h->state = LB_HTTP_BODY;
        } else {
            h->state = LB_HTTP_START;
        }
        h->content_length = 0;
        h->line_len = 0;
        return;
    }
    if (line_has_prefix(h, "content-length:")) {
        uint64_t v = 0;
        size_t i = strlen("content-length:");
        while (i < have && (h->line[i] == ' ' || h->line[i] == '\t'))
            i++;
        size_t digits = 0;
        for (; i < have && h->line[i] >= '0' && h->line[i] <= '9' && digits < 18; i++, digits++)
            v = v * 10 + (uint64_t)(h->line[i] - '0');
        if (digits == 0 || digits == 18 || h->line_len > sizeof(h->line))
            h->stop_after = true; /* a length we cannot read: stop counting after these headers */
        h->content_length = v;
    } else if (line_has_prefix(h, "transfer-encoding:") || line_has_prefix(h, "upgrade:")) {
        h->stop_after = true;
    }
    h->line_len = 0;
}

unsigned lb_http_feed(struct lb_http *h, const char *data, size_t len)
{
    unsigned requests = 0;
    size_t i = 0;
    while (i < len && h->state != LB_HTTP_OPAQUE) {
        if (h->state == LB_HTTP_BODY) {
            uint64_t take = len - i < h->body_left ? len - i : h->body_left;
            i += (size_t)take;
            h->body_left -= take;
            if (h->body_left == 0)
                h->state = LB_HTTP_START;
            continue;
        }
        char c = data[i++];
        if (h->state == LB_HTTP_START) {
            if (h->line_len == 0 && (c == '\r' || c == '\n'))
                continue; /* empty lines between requests are allowed */
            if (c == ' ') {
                if (!is_method(h->line, h->line_len)) {
                    h->state = LB_HTTP_OPAQUE;
                    break;
                }
                requests++;
                h->stop_after = h->line_len == 7 && memcmp(h->line, "CONNECT", 7) == 0;
                h->content_length = 0;
                /* the rest of the request line is read as a line that is no header */
                h->state = LB_HTTP_HEADERS;
                h->line[0] = '_';
                h->line_len = 1;
                continue;
            }
            if (c < 'A' || c > 'Z' || h->line_len >= 8) {
                h->state = LB_HTTP_OPAQUE;
                break;
            }
            h->line[h->line_len++] = c;
            continue;
        }
        /* LB_HTTP_HEADERS */
        if (c == '\n') {
            header_line_end(h);
            continue;
        }
        if (h->line_len < sizeof(h->line))
            h->line[h->line_len] = c;
        if (h->line_len < UINT32_MAX)
            h->line_len++;
    }
    return requests;
}
