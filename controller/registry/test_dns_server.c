/* The DNS server on 127.0.0.1 with an ephemeral port, its loop running in a thread: dig over
 * UDP and TCP (answers, NXDOMAIN, truncation then TCP retry), a registry swap while serving,
 * 50 concurrent UDP clients x 100 queries and 10 TCP clients x 100 pipelined queries, and the
 * TCP limits against hostile clients (eviction at the caps in all and per source, the per-query
 * deadline against trickling, garbage frames, oversized frames). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <errno.h>
#include <ldns/ldns.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "registry/dns_server.h"

#define API_N 40

static const struct registry_port web_ports[] = {{"http", REGISTRY_TCP, 49153}};
static const struct registry_port web2_ports[] = {{"http", REGISTRY_TCP, 49160}};
static const struct registry_port api_ports[] = {{"http", REGISTRY_TCP, 8080}};
static char api_ids[API_N][65];
static char api_addrs[API_N][16];

static struct registry *build(bool web_healthy)
{
    struct registry_instance inst[2 + API_N] = {
        {"shop", "web", "aaaaaaaaaaaa1111", "127.0.0.1", web_ports, 1, web_healthy},
        {"shop", "web", "bbbbbbbbbbbb2222", "127.0.0.2", web2_ports, 1, web_healthy},
    };
    for (int i = 0; i < API_N; i++) {
        snprintf(api_ids[i], sizeof(api_ids[i]), "%012x", 0xe00000 + i);
        snprintf(api_addrs[i], sizeof(api_addrs[i]), "10.0.0.%d", i + 1);
        inst[2 + i] =
            (struct registry_instance){"shop", "api", api_ids[i], api_addrs[i], api_ports, 1, true};
    }
    struct registry *reg;
    struct orch_error err = {0};
    if (registry_build(NULL, inst, ORCH_ARRAY_LEN(inst), &reg, &err) < 0)
        fail_msg("registry_build: %s", err.msg);
    return reg;
}

/* A server whose loop runs in its own thread; other threads reach it through async handles. */
struct harness {
    uv_loop_t loop;
    uv_async_t swap, stop;
    pthread_t thread;
    pthread_mutex_t mu;
    struct registry *next; /* handed over by swap */
    struct dns_server *srv;
    bool closed;
    int port;
};

static void on_swap(uv_async_t *a)
{
    struct harness *h = a->data;
    pthread_mutex_lock(&h->mu);
    struct registry *reg = h->next;
    h->next = NULL;
    pthread_mutex_unlock(&h->mu);
    dns_server_set_registry(h->srv, reg);
}

static void on_closed(void *data)
{
    struct harness *h = data;
    h->closed = true;
}

static void on_stop(uv_async_t *a)
{
    struct harness *h = a->data;
    dns_server_close(h->srv, on_closed, h);
    uv_close((uv_handle_t *)&h->swap, NULL);
    uv_close((uv_handle_t *)&h->stop, NULL);
}

static void *loop_main(void *arg)
{
    struct harness *h = arg;
    uv_run(&h->loop, UV_RUN_DEFAULT);
    return NULL;
}

static void harness_start(struct harness *h, const struct dns_server_options *opt)
{
    memset(h, 0, sizeof(*h));
    assert_int_equal(uv_loop_init(&h->loop), 0);
    pthread_mutex_init(&h->mu, NULL);
    uv_async_init(&h->loop, &h->swap, on_swap);
    uv_async_init(&h->loop, &h->stop, on_stop);
    h->swap.data = h->stop.data = h;
    struct orch_error err = {0};
    if (dns_server_start(&h->loop, opt, &h->srv, &err) < 0)
        fail_msg("dns_server_start: %s", err.msg);
    h->port = dns_server_port(h->srv);
    assert_true(h->port > 0);
    dns_server_set_registry(h->srv, build(true));
    assert_int_equal(pthread_create(&h->thread, NULL, loop_main, h), 0);
}

static void harness_swap(struct harness *h, struct registry *reg)
{
    pthread_mutex_lock(&h->mu);
    registry_free(h->next);
    h->next = reg;
    pthread_mutex_unlock(&h->mu);
    uv_async_send(&h->swap);
    usleep(100 * 1000); /* the loop thread takes it at once; dig is far slower anyway */
}

static void harness_stop(struct harness *h)
{
    uv_async_send(&h->stop);
    pthread_join(h->thread, NULL);
    assert_true(h->closed);
    registry_free(h->next);
    assert_int_equal(uv_loop_close(&h->loop), 0); /* every handle was closed */
    pthread_mutex_destroy(&h->mu);
}

/* ---- dig ---- */

static bool have_dig(void)
{
    return system("command -v dig >/dev/null 2>&1") == 0;
}

static char *dig(int port, const char *args)
{
    char cmd[512];
    snprintf(cmd, sizeof(cmd), "dig @127.0.0.1 -p %d +time=2 +tries=1 %s 2>&1", port, args);
    FILE *p = popen(cmd, "r");
    assert_non_null(p);
    struct orch_buf b = {0};
    char line[512];
    while (fgets(line, sizeof(line), p) != NULL)
        orch_buf_puts(&b, line);
    pclose(p);
    orch_buf_putc(&b, '\0');
    return orch_buf_steal(&b);
}

static size_t count_lines(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += *s == '\n';
    return n;
}

struct dig_case {
    const char *args;
    const char *want;   /* the exact output */
    const char *substr; /* or a fragment of it */
    size_t lines;       /* or this many lines (with +short) */
};

static const struct dig_case dig_cases[] = {
    {"+short web.shop.orch A", "127.0.0.1\n127.0.0.2\n"},
    {"+short +tcp web.shop.orch A", "127.0.0.1\n127.0.0.2\n"},
    {"+short WEB.Shop.Orch A", "127.0.0.1\n127.0.0.2\n"},
    {"+short aaaaaaaaaaaa.web.shop.orch A", "127.0.0.1\n"},
    {"+short _http._tcp.web.shop.orch SRV",
     "0 1 49153 aaaaaaaaaaaa.web.shop.orch.\n0 1 49160 bbbbbbbbbbbb.web.shop.orch.\n"},
    {"+short +tcp web.shop.orch SRV",
     "0 1 49153 aaaaaaaaaaaa.web.shop.orch.\n0 1 49160 bbbbbbbbbbbb.web.shop.orch.\n"},
    {"_http._tcp.web.shop.orch SRV", NULL,
     ";; ADDITIONAL SECTION:\naaaaaaaaaaaa.web.shop.orch. 5\tIN\tA\t127.0.0.1\n"
     "bbbbbbbbbbbb.web.shop.orch. 5\tIN\tA\t127.0.0.2\n"},
    {"nope.shop.orch A", NULL, "status: NXDOMAIN"},
    {"nope.shop.orch A", NULL,
     ";; AUTHORITY SECTION:\norch.\t\t\t5\tIN\tSOA\tns.orch. hostmaster.orch."},
    {"example.com A", NULL, "status: REFUSED"},
    {"+noedns +ignore api.shop.orch A", NULL, "flags: qr aa tc rd;"},
    /* dig retries a truncated answer over TCP and gets all 40. */
    {"+noedns +short api.shop.orch A", NULL, NULL, API_N},
    {"+bufsize=4096 +short api.shop.orch SRV", NULL, NULL, API_N},
    {"+tcp +short api.shop.orch SRV", NULL, NULL, API_N},
    {"+bufsize=1232 api.shop.orch A", NULL, "; EDNS: version: 0, flags:; udp: 4096"},
};

static void test_dig(void **state)
{
    (void)state;
    if (!have_dig())
        skip();
    struct harness h;
    harness_start(&h, &(struct dns_server_options){.listen = "127.0.0.1:0"});
    for (size_t i = 0; i < ORCH_ARRAY_LEN(dig_cases); i++) {
        const struct dig_case *c = &dig_cases[i];
        char *out = dig(h.port, c->args);
        bool ok = c->want != NULL     ? strcmp(out, c->want) == 0
                  : c->substr != NULL ? strstr(out, c->substr) != NULL
                                      : count_lines(out) == c->lines;
        if (!ok)
            fail_msg("dig %s:\n%s", c->args, out);
        free(out);
    }

    /* Health changes: a rebuilt registry shows at the next query. */
    harness_swap(&h, build(false));
    char *out = dig(h.port, "web.shop.orch A");
    if (strstr(out, "status: NOERROR") == NULL || strstr(out, "ANSWER: 0,") == NULL)
        fail_msg("after the swap, want NODATA:\n%s", out);
    free(out);
    harness_swap(&h, build(true));
    out = dig(h.port, "+short web.shop.orch A");
    assert_string_equal(out, "127.0.0.1\n127.0.0.2\n");
    free(out);
    harness_swap(&h, NULL);
    out = dig(h.port, "web.shop.orch A");
    if (strstr(out, "status: SERVFAIL") == NULL)
        fail_msg("without a registry, want SERVFAIL:\n%s", out);
    free(out);
    harness_stop(&h);
}

/* ---- own clients ---- */

static size_t query_bytes(const char *name, uint16_t id, uint8_t *out)
{
    ldns_pkt *q =
        ldns_pkt_query_new(ldns_dname_new_frm_str(name), LDNS_RR_TYPE_A, LDNS_RR_CLASS_IN, LDNS_RD);
    ldns_pkt_set_id(q, id);
    uint8_t *wire;
    size_t len;
    assert_int_equal(ldns_pkt2wire(&wire, q, &len), LDNS_STATUS_OK);
    memcpy(out, wire, len);
    free(wire);
    ldns_pkt_free(q);
    return len;
}

/* True when resp answers query id with n A records. */
static bool check_answer(const uint8_t *resp, size_t len, uint16_t id, size_t n)
{
    ldns_pkt *r = NULL;
    if (ldns_wire2pkt(&r, resp, len) != LDNS_STATUS_OK)
        return false;
    bool ok = ldns_pkt_id(r) == id && ldns_pkt_get_rcode(r) == LDNS_RCODE_NOERROR &&
              ldns_pkt_ancount(r) == n;
    ldns_pkt_free(r);
    return ok;
}

static int connect_to(int port, int type)
{
    int fd = socket(AF_INET, type, 0);
    assert_true(fd >= 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    if (connect(fd, (struct sockaddr *)&a, sizeof(a)) < 0) {
        close(fd);
        return -1;
    }
    return fd;
}

struct client {
    int port;
    int index;
    int ok; /* queries answered correctly */
};

#define UDP_CLIENTS 50
#define TCP_CLIENTS 10
#define QUERIES 100

static void *udp_client(void *arg)
{
    struct client *c = arg;
    int fd = connect_to(c->port, SOCK_DGRAM);
    if (fd < 0)
        return NULL;
    for (int i = 0; i < QUERIES; i++) {
        uint8_t q[512], r[4096];
        uint16_t id = (uint16_t)(c->index * QUERIES + i);
        const char *name = i % 2 ? "web.shop.orch." : "aaaaaaaaaaaa.web.shop.orch.";
        size_t qlen = query_bytes(name, id, q);
        if (send(fd, q, qlen, 0) != (ssize_t)qlen)
            break;
        ssize_t n = recv(fd, r, sizeof(r), 0);
        if (n > 0 && check_answer(r, (size_t)n, id, i % 2 ? 2 : 1))
            c->ok++;
    }
    close(fd);
    return NULL;
}

static bool read_full(int fd, uint8_t *p, size_t len)
{
    while (len > 0) {
        ssize_t n = recv(fd, p, len, 0);
        if (n <= 0)
            return false;
        p += n;
        len -= (size_t)n;
    }
    return true;
}

/* Pipelined: all queries written in one go, then every answer read in order. */
static void *tcp_client(void *arg)
{
    struct client *c = arg;
    int fd = connect_to(c->port, SOCK_STREAM);
    if (fd < 0)
        return NULL;
    struct orch_buf out = {0};
    for (int i = 0; i < QUERIES; i++) {
        uint8_t q[514];
        size_t qlen = query_bytes("api.shop.orch.", (uint16_t)i, q + 2);
        q[0] = (uint8_t)(qlen >> 8);
        q[1] = (uint8_t)qlen;
        orch_buf_append(&out, q, qlen + 2);
    }
    if (send(fd, out.data, out.len, 0) == (ssize_t)out.len) {
        for (int i = 0; i < QUERIES; i++) {
            uint8_t len2[2], r[65535];
            if (!read_full(fd, len2, 2))
                break;
            size_t len = ((size_t)len2[0] << 8) | len2[1];
            if (!read_full(fd, r, len))
                break;
            if (check_answer(r, len, (uint16_t)i, API_N))
                c->ok++;
        }
    }
    orch_buf_free(&out);
    close(fd);
    return NULL;
}

static void test_concurrent_clients(void **state)
{
    (void)state;
    struct harness h;
    harness_start(&h, &(struct dns_server_options){.listen = "127.0.0.1:0"});
    struct client clients[UDP_CLIENTS + TCP_CLIENTS];
    pthread_t threads[UDP_CLIENTS + TCP_CLIENTS];
    for (int i = 0; i < UDP_CLIENTS + TCP_CLIENTS; i++) {
        clients[i] = (struct client){.port = h.port, .index = i};
        assert_int_equal(pthread_create(&threads[i], NULL,
                                        i < UDP_CLIENTS ? udp_client : tcp_client, &clients[i]),
                         0);
    }
    int ok = 0;
    for (int i = 0; i < UDP_CLIENTS + TCP_CLIENTS; i++) {
        pthread_join(threads[i], NULL);
        ok += clients[i].ok;
    }
    assert_int_equal(ok, (UDP_CLIENTS + TCP_CLIENTS) * QUERIES);
    /* The loop thread is still running: read the counters after it stopped. */
    harness_stop(&h);
}

/* ---- TCP limits ---- */

static bool closed_by_peer(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 3000) != 1)
        return false;
    uint8_t b;
    return recv(fd, &b, 1, 0) == 0;
}

/* A TCP connection to the server from the loopback address 127.0.0.SRC (any 127/8 address is
 * local on Linux), so tests can play several client hosts. */
static int connect_from(int port, int src)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fd >= 0);
    struct sockaddr_in from = {.sin_family = AF_INET};
    from.sin_addr.s_addr = htonl(0x7f000000u | (uint32_t)src);
    assert_int_equal(bind(fd, (struct sockaddr *)&from, sizeof(from)), 0);
    struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&a, sizeof(a)), 0);
    return fd;
}

/* Whether the server has closed fd (EOF or reset), without waiting. */
static bool peer_gone(int fd)
{
    struct pollfd p = {.fd = fd, .events = POLLIN};
    if (poll(&p, 1, 0) != 1)
        return false;
    uint8_t b[512];
    ssize_t n = recv(fd, b, sizeof(b), MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
}

/* One query over TCP on fd: true when answered with n A records. */
static bool tcp_query(int fd, uint16_t id, size_t n)
{
    uint8_t q[514], r[65535], len2[2];
    size_t qlen = query_bytes("web.shop.orch.", id, q + 2);
    q[0] = (uint8_t)(qlen >> 8);
    q[1] = (uint8_t)qlen;
    if (send(fd, q, qlen + 2, MSG_NOSIGNAL) != (ssize_t)(qlen + 2) || !read_full(fd, len2, 2))
        return false;
    size_t len = ((size_t)len2[0] << 8) | len2[1];
    return read_full(fd, r, len) && check_answer(r, len, id, n);
}

static bool udp_query_ok(int port)
{
    int fd = connect_to(port, SOCK_DGRAM);
    uint8_t q[512], r[4096];
    size_t qlen = query_bytes("web.shop.orch.", 4242, q);
    bool ok = fd >= 0 && send(fd, q, qlen, 0) == (ssize_t)qlen;
    ssize_t n = ok ? recv(fd, r, sizeof(r), 0) : -1;
    if (fd >= 0)
        close(fd);
    return n > 0 && check_answer(r, (size_t)n, 4242, 2);
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Over the cap the oldest idle connection makes room; a connection is closed when its next
 * query is not whole by the deadline after its previous answer; an oversized frame closes it. */
static void test_tcp_limits(void **state)
{
    (void)state;
    struct harness h;
    harness_start(&h, &(struct dns_server_options){
                          .listen = "127.0.0.1:0", .max_tcp_conns = 2, .tcp_idle_ms = 1000});
    int a = connect_to(h.port, SOCK_STREAM);
    int b = connect_to(h.port, SOCK_STREAM);
    usleep(100 * 1000); /* both accepted before the third arrives */
    int c = connect_to(h.port, SOCK_STREAM);
    assert_true(a >= 0 && b >= 0 && c >= 0);
    assert_true(closed_by_peer(a)); /* over the cap: the oldest idle one made room */

    /* c answers, then waits for a query that does not come and is closed. */
    assert_true(tcp_query(c, 77, 2));
    int64_t answered = mono_ms();

    /* An oversized frame closes the connection. */
    const uint8_t huge[2] = {0xff, 0xff};
    assert_int_equal(send(b, huge, 2, 0), 2);
    assert_true(closed_by_peer(b));

    assert_true(closed_by_peer(c));
    int64_t waited = mono_ms() - answered;
    if (waited < 800 || waited > 2500)
        fail_msg("closed %lld ms after the answer, want about 1000", (long long)waited);
    close(a);
    close(b);
    close(c);
    harness_stop(&h);
}

/* ---- hostile TCP clients (issue 16 item 10) ---- */

#define TRICKLERS 40
#define TRICKLE_CAP 32
#define TRICKLE_DEADLINE_MS 1500

/* Tricklers from 4 hosts (10 each, under the per-source bound) fill the connection cap and send
 * one byte of a never-finished 4 KiB query every 100 ms. A new client must still be answered at
 * once (the oldest idle connection makes room), UDP must not notice, and every trickler must be
 * closed by the message deadline however often it sends a byte. */
static void test_tcp_trickle_lockout(void **state)
{
    (void)state;
    struct harness h;
    harness_start(&h, &(struct dns_server_options){.listen = "127.0.0.1:0",
                                                   .max_tcp_conns = TRICKLE_CAP,
                                                   .tcp_idle_ms = TRICKLE_DEADLINE_MS});
    int fds[TRICKLERS];
    int64_t closed_at[TRICKLERS] = {0};
    int64_t start = mono_ms();
    for (int i = 0; i < TRICKLERS; i++) {
        fds[i] = connect_from(h.port, 10 + i / 10);
        const uint8_t len_hi = 0x10; /* a 4 KiB frame: never completed */
        (void)send(fds[i], &len_hi, 1, MSG_NOSIGNAL);
    }
    /* A few rounds of trickling, then a new client: served, not refused. */
    for (int round = 0; round < 3; round++) {
        usleep(100 * 1000);
        for (int i = 0; i < TRICKLERS; i++)
            (void)send(fds[i], "\0", 1, MSG_NOSIGNAL);
    }
    int fresh = connect_from(h.port, 1);
    int64_t t0 = mono_ms();
    if (!tcp_query(fresh, 99, 2))
        fail_msg("a new TCP client was locked out by %d trickling connections", TRICKLERS);
    assert_true(mono_ms() - t0 < 1000);
    close(fresh);
    assert_true(udp_query_ok(h.port));

    /* Keep trickling: each must be closed within the deadline (plus slack) of its connection. */
    int open = TRICKLERS;
    while (open > 0 && mono_ms() - start < TRICKLE_DEADLINE_MS + 2000) {
        usleep(100 * 1000);
        for (int i = 0; i < TRICKLERS; i++) {
            if (closed_at[i] != 0)
                continue;
            if (peer_gone(fds[i])) {
                closed_at[i] = mono_ms();
                open--;
                continue;
            }
            (void)send(fds[i], "\0", 1, MSG_NOSIGNAL);
        }
    }
    if (open > 0)
        fail_msg("%d trickling connections outlived the %d ms message deadline", open,
                 TRICKLE_DEADLINE_MS);
    for (int i = 0; i < TRICKLERS; i++)
        close(fds[i]);
    harness_stop(&h);
}

/* A client that pipelines queries and never reads its answers has answers in flight: it is
 * not idle, so at the cap a new connection is refused rather than cutting it off. */
static void test_tcp_busy_not_evicted(void **state)
{
    (void)state;
    struct harness h;
    harness_start(&h, &(struct dns_server_options){.listen = "127.0.0.1:0", .max_tcp_conns = 1});
    int a = socket(AF_INET, SOCK_STREAM, 0);
    int small = 2048;
    setsockopt(a, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    struct sockaddr_in to = {.sin_family = AF_INET, .sin_port = htons((uint16_t)h.port)};
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(a, (struct sockaddr *)&to, sizeof(to)), 0);
    /* Up to 4 MB of queries for 40 records each (~700 bytes an answer), as far as they go. */
    uint8_t q[514];
    size_t qlen = query_bytes("api.shop.orch.", 1, q + 2);
    q[0] = (uint8_t)(qlen >> 8);
    q[1] = (uint8_t)qlen;
    size_t sent = 0;
    for (int64_t end = mono_ms() + 2000; sent < (4u << 20) && mono_ms() < end;) {
        ssize_t n = send(a, q, qlen + 2, MSG_DONTWAIT | MSG_NOSIGNAL);
        if (n > 0)
            sent += (size_t)n;
        else
            usleep(10 * 1000);
    }
    int b = connect_to(h.port, SOCK_STREAM);
    assert_true(b >= 0);
    assert_true(closed_by_peer(b)); /* refused: nothing idle to evict */
    assert_false(peer_gone(a));
    close(a);
    close(b);
    harness_stop(&h);
}

/* 20 connections from one host: only the newest 16 stay (the oldest idle ones make room), and
 * another host is not affected. */
static void test_tcp_per_source(void **state)
{
    (void)state;
    struct harness h;
    harness_start(&h, &(struct dns_server_options){.listen = "127.0.0.1:0"});
    int fds[20];
    for (int i = 0; i < 20; i++) {
        fds[i] = connect_from(h.port, 2);
        usleep(5 * 1000); /* accepted in this order */
    }
    usleep(200 * 1000);
    int gone = 0;
    for (int i = 0; i < 20; i++) {
        bool g = peer_gone(fds[i]);
        gone += g;
        if (g && i >= 4)
            fail_msg("connection %d of 20 was closed, want the 4 oldest", i);
    }
    assert_int_equal(gone, 4);
    /* The survivors still work; so does another host. */
    assert_true(tcp_query(fds[19], 1, 2));
    int other = connect_from(h.port, 3);
    assert_true(tcp_query(other, 2, 2));
    close(other);
    for (int i = 0; i < 20; i++)
        close(fds[i]);
    harness_stop(&h);
}

/* Whole frames that hold no readable header (0-11 bytes) or a response close the connection;
 * a bare header gets FORMERR and the connection stays. */
static void test_tcp_garbage_frames(void **state)
{
    (void)state;
    struct harness h;
    harness_start(&h, &(struct dns_server_options){.listen = "127.0.0.1:0"});
    for (size_t n = 0; n < 12; n++) {
        int fd = connect_from(h.port, 1);
        uint8_t frame[2 + 11] = {0, (uint8_t)n, 0xab, 0xcd};
        assert_int_equal(send(fd, frame, 2 + n, MSG_NOSIGNAL), (ssize_t)(2 + n));
        if (!closed_by_peer(fd))
            fail_msg("a %zu-byte frame: the connection stays open", n);
        close(fd);
    }
    /* A response (QR set) is not answered: closed too. */
    int fd = connect_from(h.port, 1);
    uint8_t resp[2 + 12] = {0, 12, 0xab, 0xcd, 0x80};
    assert_int_equal(send(fd, resp, sizeof(resp), MSG_NOSIGNAL), (ssize_t)sizeof(resp));
    assert_true(closed_by_peer(fd));
    close(fd);
    /* A header alone: FORMERR, and the connection still answers. */
    fd = connect_from(h.port, 1);
    uint8_t hdr[2 + 12] = {0, 12, 0xab, 0xcd, 0, 0, 0, 1};
    assert_int_equal(send(fd, hdr, sizeof(hdr), MSG_NOSIGNAL), (ssize_t)sizeof(hdr));
    uint8_t len2[2], r[512];
    assert_true(read_full(fd, len2, 2));
    size_t len = ((size_t)len2[0] << 8) | len2[1];
    assert_true(len >= 12 && len <= sizeof(r) && read_full(fd, r, len));
    assert_int_equal(LDNS_RCODE_WIRE(r), LDNS_RCODE_FORMERR);
    assert_true(r[0] == 0xab && r[1] == 0xcd);
    assert_true(tcp_query(fd, 5, 2));
    close(fd);
    harness_stop(&h);
}

static void test_bad_address(void **state)
{
    (void)state;
    uv_loop_t loop;
    uv_loop_init(&loop);
    const char *bad[] = {"127.0.0.1", "127.0.0.1:99999", "localhost:53", "[::1:53", "1.2.3:5"};
    for (size_t i = 0; i < ORCH_ARRAY_LEN(bad); i++) {
        struct dns_server *srv = NULL;
        struct orch_error err = {0};
        assert_int_equal(
            dns_server_start(&loop, &(struct dns_server_options){.listen = bad[i]}, &srv, &err),
            -ORCH_E_INVALID);
        assert_null(srv);
    }
    /* A port in use: ORCH_E_ENV, and the half-opened handles are closed on the next run. */
    struct dns_server *first = NULL, *second = NULL;
    struct orch_error err = {0};
    assert_int_equal(dns_server_start(&loop, &(struct dns_server_options){.listen = "127.0.0.1:0"},
                                      &first, &err),
                     0);
    char addr[64];
    snprintf(addr, sizeof(addr), "127.0.0.1:%d", dns_server_port(first));
    assert_int_equal(
        dns_server_start(&loop, &(struct dns_server_options){.listen = addr}, &second, &err),
        -ORCH_E_ENV);
    assert_null(second);
    dns_server_close(first, NULL, NULL);
    uv_run(&loop, UV_RUN_DEFAULT);
    assert_int_equal(uv_loop_close(&loop), 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dig),
        cmocka_unit_test(test_concurrent_clients),
        cmocka_unit_test(test_tcp_limits),
        cmocka_unit_test(test_tcp_trickle_lockout),
        cmocka_unit_test(test_tcp_per_source),
        cmocka_unit_test(test_tcp_busy_not_evicted),
        cmocka_unit_test(test_tcp_garbage_frames),
        cmocka_unit_test(test_bad_address),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
