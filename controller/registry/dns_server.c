/* The DNS listener: UDP (recvmmsg in, sendmmsg out, so a busy socket costs a few system calls
 * per batch rather than three per query) and TCP (2-byte framing, bounded buffers, a deadline
 * per query, connection bounds in all and per source with eviction of the oldest idle one) on
 * the caller's loop. It owns its handles and the current registry; what to answer is
 * registry_answer()'s business, never this file's. */
#define _GNU_SOURCE
#include "registry/dns_server.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

#include "base/log.h"
#include "base/util.h"

#define UDP_DGRAM_SLOT (64 * 1024) /* libuv's recvmmsg slot size (UV__UDP_DGRAM_MAXSIZE) */
#define UDP_BATCH 20 /* datagrams per recvmmsg / sendmmsg: libuv reads at most 20 at once */
#define UDP_QUEUE_MAX (1 << 20) /* bytes of answers waiting for a writable socket */
#define TCP_MAX_QUERY 4096      /* a longer TCP query closes the connection */
#define TCP_MAX_PENDING                                                                            \
    (256 * 1024) /* answer bytes queued on one connection before reads pause                       \
                  */
#define TCP_BACKLOG 128
#define TCP_DEFAULT_MAX_CONNS 128
#define TCP_DEFAULT_PER_SOURCE 16
#define TCP_DEFAULT_DEADLINE_MS 5000

struct udp_out {
    size_t len;
    struct sockaddr_storage addr;
    socklen_t addr_len;
    uint8_t data[REGISTRY_MAX_UDP];
};

struct tcp_conn {
    uv_tcp_t tcp;
    uv_timer_t deadline; /* the next query must be whole by then */
    struct dns_server *srv;
    struct tcp_conn *prev, *next;
    struct sockaddr_storage peer; /* family 0: unknown */
    uint64_t seq; /* stamped at accept and at each answer: the lowest has waited longest */
    int open_handles;
    bool closing;
    bool reading;
    size_t pending; /* answer bytes written but not yet sent */
    size_t len;
    uint8_t buf[2 + TCP_MAX_QUERY];
};

struct tcp_write {
    uv_write_t req;
    struct tcp_conn *conn;
    size_t len;
    uint8_t data[];
};

struct udp_send {
    uv_udp_send_t req;
    struct dns_server *srv;
    size_t len;
    uint8_t data[];
};

struct dns_server {
    uv_loop_t *loop;
    uv_udp_t udp;
    uv_tcp_t tcp;
    struct registry *reg;
    size_t max_udp;
    unsigned max_conns, max_per_source;
    uint64_t deadline_ms;
    uint64_t seq;
    int port;
    struct dns_server_stats stats;

    uint8_t *udp_in; /* one buffer for every recvmmsg: answers are written before the next */
    size_t udp_in_len;
    struct udp_out *udp_out; /* answers of the current batch, sent together */
    size_t n_out;
    size_t udp_queued; /* bytes in uv_udp_send requests */

    struct tcp_conn *conns;
    int open_handles;
    bool udp_open; /* uv_udp_init_ex succeeded */
    bool closing;
    void (*close_cb)(void *data);
    void *close_data;
};

/* ---- closing ---- */

static void server_release(struct dns_server *srv)
{
    void (*cb)(void *) = srv->close_cb;
    void *data = srv->close_data;
    registry_free(srv->reg);
    free(srv->udp_in);
    free(srv->udp_out);
    free(srv);
    if (cb != NULL)
        cb(data);
}

static void on_server_handle_closed(uv_handle_t *h)
{
    struct dns_server *srv = h->data;
    if (--srv->open_handles == 0 && srv->conns == NULL)
        server_release(srv);
}

static void on_conn_handle_closed(uv_handle_t *h)
{
    struct tcp_conn *c = h->data;
    if (--c->open_handles > 0)
        return;
    struct dns_server *srv = c->srv;
    if (c->prev != NULL)
        c->prev->next = c->next;
    else
        srv->conns = c->next;
    if (c->next != NULL)
        c->next->prev = c->prev;
    free(c);
    if (srv->closing && srv->open_handles == 0 && srv->conns == NULL)
        server_release(srv);
}

static void conn_close(struct tcp_conn *c)
{
    if (c->closing)
        return;
    c->closing = true;
    c->srv->stats.tcp_conns--; /* counts the connections not closing, as the bounds do */
    uv_close((uv_handle_t *)&c->tcp, on_conn_handle_closed);
    uv_close((uv_handle_t *)&c->deadline, on_conn_handle_closed);
}

void dns_server_close(struct dns_server *srv, void (*cb)(void *data), void *data)
{
    if (srv == NULL)
        return;
    srv->close_cb = cb;
    srv->close_data = data;
    if (srv->closing)
        return;
    srv->closing = true;
    if (srv->udp_open) {
        uv_udp_recv_stop(&srv->udp);
        uv_close((uv_handle_t *)&srv->udp, on_server_handle_closed);
    }
    uv_close((uv_handle_t *)&srv->tcp, on_server_handle_closed);
    for (struct tcp_conn *c = srv->conns; c != NULL; c = c->next)
        conn_close(c);
}

/* ---- UDP ---- */

static void on_udp_sent(uv_udp_send_t *req, int status)
{
    struct udp_send *s = (struct udp_send *)req;
    s->srv->udp_queued -= s->len;
    if (status < 0)
        s->srv->stats.dropped++;
    free(s);
}

/* The socket would block: hand the rest to libuv's send queue, within UDP_QUEUE_MAX. */
static void udp_queue(struct dns_server *srv, const struct udp_out *o)
{
    if (srv->udp_queued + o->len > UDP_QUEUE_MAX) {
        srv->stats.dropped++; /* the client retries, as after any lost datagram */
        return;
    }
    struct udp_send *s = orch_xmalloc(sizeof(*s) + o->len);
    s->srv = srv;
    s->len = o->len;
    memcpy(s->data, o->data, o->len);
    uv_buf_t b = uv_buf_init((char *)s->data, (unsigned)o->len);
    if (uv_udp_send(&s->req, &srv->udp, &b, 1, (const struct sockaddr *)&o->addr, on_udp_sent) <
        0) {
        srv->stats.dropped++;
        free(s);
        return;
    }
    srv->udp_queued += o->len;
}

static void udp_flush(struct dns_server *srv)
{
    size_t done = 0;
    uv_os_fd_t fd;
    if (srv->n_out == 0)
        return;
    if (uv_fileno((uv_handle_t *)&srv->udp, &fd) == 0 && srv->udp_queued == 0) {
        struct mmsghdr msgs[UDP_BATCH];
        struct iovec iov[UDP_BATCH];
        memset(msgs, 0, sizeof(msgs));
        for (size_t i = 0; i < srv->n_out; i++) {
            iov[i] =
                (struct iovec){.iov_base = srv->udp_out[i].data, .iov_len = srv->udp_out[i].len};
            msgs[i].msg_hdr.msg_name = &srv->udp_out[i].addr;
            msgs[i].msg_hdr.msg_namelen = srv->udp_out[i].addr_len;
            msgs[i].msg_hdr.msg_iov = &iov[i];
            msgs[i].msg_hdr.msg_iovlen = 1;
        }
        while (done < srv->n_out) {
            int n = sendmmsg(fd, msgs + done, (unsigned)(srv->n_out - done), MSG_DONTWAIT);
            if (n > 0) {
                done += (size_t)n;
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == ENOBUFS)) {
                break;
            } else {
                /* This datagram cannot go (e.g. an unreachable peer): skip it, send the rest. */
                srv->stats.dropped++;
                done++;
            }
        }
    }
    for (; done < srv->n_out; done++)
        udp_queue(srv, &srv->udp_out[done]);
    srv->n_out = 0;
}

static void on_udp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct dns_server *srv = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)srv->udp_in, (unsigned)srv->udp_in_len);
}

static void on_udp_recv(uv_udp_t *h, ssize_t nread, const uv_buf_t *buf,
                        const struct sockaddr *addr, unsigned flags)
{
    struct dns_server *srv = h->data;
    (void)buf;
    if (nread < 0 || addr == NULL) {
        /* An error, the end of a recvmmsg batch (UV_UDP_MMSG_FREE) or nothing more to read:
         * send what this batch answered. */
        udp_flush(srv);
        return;
    }
    srv->stats.udp_queries++;
    struct udp_out *o = &srv->udp_out[srv->n_out];
    if ((flags & UV_UDP_PARTIAL) ||
        registry_answer(srv->reg, (const uint8_t *)buf->base, (size_t)nread, srv->max_udp, o->data,
                        sizeof(o->data), &o->len) != REGISTRY_ANSWERED) {
        srv->stats.dropped++;
    } else {
        if (o->data[2] & 0x02)
            srv->stats.truncated++;
        o->addr_len =
            addr->sa_family == AF_INET6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in);
        memcpy(&o->addr, addr, o->addr_len);
        srv->n_out++;
    }
    /* Without UV_UDP_MMSG_CHUNK the datagram came alone: no end-of-batch call follows. */
    if (srv->n_out == UDP_BATCH || !(flags & UV_UDP_MMSG_CHUNK))
        udp_flush(srv);
}

/* ---- TCP ---- */

static void on_conn_deadline(uv_timer_t *t)
{
    struct tcp_conn *c = t->data;
    c->srv->stats.tcp_timed_out++;
    conn_close(c);
}

/* The next query is due within the deadline from now (the connection or an answer). */
static void conn_rearm(struct tcp_conn *c)
{
    c->seq = ++c->srv->seq;
    uv_timer_start(&c->deadline, on_conn_deadline, c->srv->deadline_ms, 0);
}

static void on_tcp_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf)
{
    struct tcp_conn *c = h->data;
    (void)suggested;
    *buf = uv_buf_init((char *)c->buf + c->len, (unsigned)(sizeof(c->buf) - c->len));
}

static void on_tcp_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf);

static void on_tcp_written(uv_write_t *req, int status)
{
    struct tcp_write *w = (struct tcp_write *)req;
    struct tcp_conn *c = w->conn;
    c->pending -= w->len;
    free(w);
    if (status < 0) {
        conn_close(c);
        return;
    }
    if (!c->closing && !c->reading && c->pending < TCP_MAX_PENDING / 2) {
        /* The client reads its answers again: resume reading its queries, which waited on us
         * rather than on it, so their deadline starts afresh. */
        c->reading = true;
        conn_rearm(c);
        (void)uv_read_start((uv_stream_t *)&c->tcp, on_tcp_alloc, on_tcp_read);
    }
}

static void conn_answer(struct tcp_conn *c, const uint8_t *query, size_t len)
{
    struct dns_server *srv = c->srv;
    srv->stats.tcp_queries++;
    /* Answer into a 64 KiB scratch, then copy out only what is used. */
    static __thread uint8_t scratch[2 + REGISTRY_MAX_MESSAGE];
    size_t out_len = 0;
    if (registry_answer(srv->reg, query, len, 0, scratch + 2, REGISTRY_MAX_MESSAGE, &out_len) !=
        REGISTRY_ANSWERED) {
        /* No readable header (0-11 bytes) or a response: over UDP it is dropped and forgotten;
         * on a connection it would stay open doing nothing, so it is closed. */
        srv->stats.dropped++;
        conn_close(c);
        return;
    }
    scratch[0] = (uint8_t)(out_len >> 8);
    scratch[1] = (uint8_t)out_len;
    struct tcp_write *w = orch_xmalloc(sizeof(*w) + 2 + out_len);
    w->conn = c;
    w->len = 2 + out_len;
    memcpy(w->data, scratch, w->len);
    uv_buf_t b = uv_buf_init((char *)w->data, (unsigned)w->len);
    if (uv_write(&w->req, (uv_stream_t *)&c->tcp, &b, 1, on_tcp_written) < 0) {
        free(w);
        conn_close(c);
        return;
    }
    c->pending += w->len;
}

static void on_tcp_read(uv_stream_t *stream, ssize_t nread, const uv_buf_t *buf)
{
    struct tcp_conn *c = stream->data;
    (void)buf;
    if (nread < 0) {
        conn_close(c); /* EOF or error */
        return;
    }
    if (nread == 0)
        return;
    /* No timer is touched here: bytes that trickle in do not extend the query's deadline. */
    c->len += (size_t)nread;

    /* Answer every complete frame; keep a partial one for the next read. */
    size_t pos = 0;
    while (!c->closing && c->len - pos >= 2) {
        size_t flen = ((size_t)c->buf[pos] << 8) | c->buf[pos + 1];
        if (flen > TCP_MAX_QUERY) {
            c->srv->stats.dropped++;
            conn_close(c);
            return;
        }
        if (c->len - pos < 2 + flen)
            break;
        conn_answer(c, c->buf + pos + 2, flen);
        pos += 2 + flen;
    }
    if (pos > 0 && !c->closing) {
        memmove(c->buf, c->buf + pos, c->len - pos);
        c->len -= pos;
        conn_rearm(c);
    }
    if (!c->closing && c->pending >= TCP_MAX_PENDING) {
        /* The client does not read its answers: stop reading its queries until it does. */
        uv_read_stop(stream);
        c->reading = false;
    }
}

static bool same_host(const struct sockaddr_storage *a, const struct sockaddr_storage *b)
{
    if (a->ss_family != b->ss_family)
        return false;
    if (a->ss_family == AF_INET)
        return ((const struct sockaddr_in *)a)->sin_addr.s_addr ==
               ((const struct sockaddr_in *)b)->sin_addr.s_addr;
    if (a->ss_family == AF_INET6)
        return memcmp(&((const struct sockaddr_in6 *)a)->sin6_addr,
                      &((const struct sockaddr_in6 *)b)->sin6_addr, sizeof(struct in6_addr)) == 0;
    return false;
}

/* Makes room for the new connection self, or says there is none: at the per-source bound the
 * oldest idle connection from its address is evicted, at the global bound the oldest idle one of
 * all. Idle: no answer in flight (a client trickling a query in counts as idle). Linear in the
 * number of connections (at most max_conns), and only on accept. */
static bool conn_make_room(struct dns_server *srv, const struct tcp_conn *self)
{
    unsigned others = 0, from_peer = 0;
    struct tcp_conn *oldest = NULL, *oldest_peer = NULL;
    for (struct tcp_conn *c = srv->conns; c != NULL; c = c->next) {
        if (c == self || c->closing)
            continue;
        bool same = same_host(&c->peer, &self->peer);
        others++;
        from_peer += same;
        if (c->pending > 0)
            continue;
        if (oldest == NULL || c->seq < oldest->seq)
            oldest = c;
        if (same && (oldest_peer == NULL || c->seq < oldest_peer->seq))
            oldest_peer = c;
    }
    struct tcp_conn *victim = NULL;
    if (from_peer >= srv->max_per_source)
        victim = oldest_peer;
    else if (others >= srv->max_conns)
        victim = oldest;
    else
        return true;
    if (victim == NULL)
        return false;
    srv->stats.tcp_evicted++;
    conn_close(victim);
    return true;
}

static void on_tcp_connection(uv_stream_t *listener, int status)
{
    struct dns_server *srv = listener->data;
    if (status < 0 || srv->closing)
        return;
    /* Accepted at once in any case: left in the backlog it would only wait for a timeout. */
    struct tcp_conn *c = orch_xcalloc(1, sizeof(*c));
    c->srv = srv;
    uv_tcp_init(srv->loop, &c->tcp);
    uv_timer_init(srv->loop, &c->deadline);
    c->tcp.data = c;
    c->deadline.data = c;
    c->open_handles = 2;
    c->next = srv->conns;
    if (srv->conns != NULL)
        srv->conns->prev = c;
    srv->conns = c;
    srv->stats.tcp_conns++;
    if (uv_accept(listener, (uv_stream_t *)&c->tcp) < 0) {
        conn_close(c);
        return;
    }
    int plen = sizeof(c->peer);
    if (uv_tcp_getpeername(&c->tcp, (struct sockaddr *)&c->peer, &plen) < 0)
        c->peer.ss_family = 0; /* gone already: its first read fails */
    if (!conn_make_room(srv, c)) {
        srv->stats.tcp_rejected++;
        conn_close(c);
        return;
    }
    (void)uv_tcp_nodelay(&c->tcp, 1);
    conn_rearm(c);
    c->reading = true;
    if (uv_read_start((uv_stream_t *)&c->tcp, on_tcp_alloc, on_tcp_read) < 0)
        conn_close(c);
}

/* ---- setup ---- */

static int parse_listen(const char *s, struct sockaddr_storage *ss, struct orch_error *err)
{
    char host[64];
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s || colon[1] == '\0')
        return orch_fail(err, ORCH_E_INVALID, 0, "DNS address '%s': want HOST:PORT", s);
    char *end;
    long port = strtol(colon + 1, &end, 10);
    if (*end != '\0' || port < 0 || port > 65535)
        return orch_fail(err, ORCH_E_INVALID, 0, "DNS address '%s': bad port", s);
    size_t hlen = (size_t)(colon - s);
    const char *h = s;
    bool v6 = s[0] == '[';
    if (v6) {
        if (hlen < 2 || s[hlen - 1] != ']')
            return orch_fail(err, ORCH_E_INVALID, 0, "DNS address '%s': want [IPV6]:PORT", s);
        h++;
        hlen -= 2;
    }
    if (hlen >= sizeof(host))
        return orch_fail(err, ORCH_E_INVALID, 0, "DNS address '%s': bad host", s);
    memcpy(host, h, hlen);
    host[hlen] = '\0';
    int rc = v6 ? uv_ip6_addr(host, (int)port, (struct sockaddr_in6 *)ss)
                : uv_ip4_addr(host, (int)port, (struct sockaddr_in *)ss);
    if (rc < 0)
        return orch_fail(err, ORCH_E_INVALID, 0, "DNS address '%s': '%s' is not an IP%s address", s,
                         host, v6 ? "v6" : "v4");
    return 0;
}

static void set_port(struct sockaddr_storage *ss, int port)
{
    if (ss->ss_family == AF_INET6)
        ((struct sockaddr_in6 *)ss)->sin6_port = htons((uint16_t)port);
    else
        ((struct sockaddr_in *)ss)->sin_port = htons((uint16_t)port);
}

static int get_port(const struct sockaddr_storage *ss)
{
    return ntohs(ss->ss_family == AF_INET6 ? ((const struct sockaddr_in6 *)ss)->sin6_port
                                           : ((const struct sockaddr_in *)ss)->sin_port);
}

int dns_server_start(uv_loop_t *loop, const struct dns_server_options *opt, struct dns_server **out,
                     struct orch_error *err)
{
    const char *listen =
        opt != NULL && opt->listen != NULL ? opt->listen : DNS_SERVER_DEFAULT_LISTEN;
    struct sockaddr_storage ss;
    memset(&ss, 0, sizeof(ss));
    int ret = parse_listen(listen, &ss, err);
    if (ret < 0)
        return ret;

    struct dns_server *srv = orch_xcalloc(1, sizeof(*srv));
    srv->loop = loop;
    srv->max_udp = opt != NULL && opt->max_udp != 0 ? opt->max_udp : REGISTRY_MAX_UDP;
    if (srv->max_udp < 512)
        srv->max_udp = 512;
    if (srv->max_udp > REGISTRY_MAX_UDP)
        srv->max_udp = REGISTRY_MAX_UDP;
    srv->max_conns =
        opt != NULL && opt->max_tcp_conns != 0 ? opt->max_tcp_conns : TCP_DEFAULT_MAX_CONNS;
    srv->max_per_source = opt != NULL && opt->max_tcp_per_source != 0 ? opt->max_tcp_per_source
                                                                      : TCP_DEFAULT_PER_SOURCE;
    srv->deadline_ms =
        opt != NULL && opt->tcp_idle_ms != 0 ? opt->tcp_idle_ms : TCP_DEFAULT_DEADLINE_MS;
    srv->udp_in_len = (size_t)UDP_DGRAM_SLOT * UDP_BATCH;
    srv->udp_in = orch_xmalloc(srv->udp_in_len);
    srv->udp_out = orch_xcalloc(UDP_BATCH, sizeof(*srv->udp_out));

    uv_tcp_init(loop, &srv->tcp);
    srv->tcp.data = srv;
    srv->open_handles++;
    int rc = uv_udp_init_ex(loop, &srv->udp, ss.ss_family | UV_UDP_RECVMMSG);
    if (rc < 0) {
        dns_server_close(srv, NULL, NULL);
        return orch_fail(err, ORCH_E_ENV, 0, "DNS %s: udp: %s", listen, uv_strerror(rc));
    }
    srv->udp.data = srv;
    srv->udp_open = true;
    srv->open_handles++;

    /* TCP first: with port 0 it picks the port, and UDP takes the same number. */
    const char *what = "tcp bind";
    rc = uv_tcp_bind(&srv->tcp, (const struct sockaddr *)&ss, 0);
    if (rc == 0) {
        what = "tcp listen";
        rc = uv_listen((uv_stream_t *)&srv->tcp, TCP_BACKLOG, on_tcp_connection);
    }
    if (rc == 0) {
        struct sockaddr_storage bound;
        int blen = sizeof(bound);
        what = "tcp getsockname";
        rc = uv_tcp_getsockname(&srv->tcp, (struct sockaddr *)&bound, &blen);
        if (rc == 0) {
            srv->port = get_port(&bound);
            set_port(&ss, srv->port);
        }
    }
    if (rc == 0) {
        what = "udp bind";
        rc = uv_udp_bind(&srv->udp, (const struct sockaddr *)&ss,
                         ss.ss_family == AF_INET6 ? UV_UDP_IPV6ONLY : 0);
    }
    if (rc == 0) {
        /* Room for bursts: dnsperf-like load keeps a few hundred queries in flight. The kernel
         * caps it at net.core.rmem_max. */
        int size = 4 << 20;
        (void)uv_recv_buffer_size((uv_handle_t *)&srv->udp, &size);
        what = "udp recv";
        rc = uv_udp_recv_start(&srv->udp, on_udp_alloc, on_udp_recv);
    }
    if (rc < 0) {
        dns_server_close(srv, NULL, NULL);
        return orch_fail(err, ORCH_E_ENV, 0, "DNS %s: %s: %s", listen, what, uv_strerror(rc));
    }
    *out = srv;
    return 0;
}

int dns_server_port(const struct dns_server *srv)
{
    return srv->port;
}

void dns_server_set_registry(struct dns_server *srv, struct registry *reg)
{
    struct registry *old = srv->reg;
    srv->reg = reg;
    registry_free(old);
}

void dns_server_get_stats(const struct dns_server *srv, struct dns_server_stats *st)
{
    *st = srv->stats;
}
