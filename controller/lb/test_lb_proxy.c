/* The proxy over real TCP on 127.0.0.1: the balancer and its test backends share one loop in a
 * thread; the test thread is the client, with blocking sockets and receive timeouts, and runs
 * the balancer's API on the loop thread through call(). Covered: proxying and half-close, the
 * spread in both modes, a refused backend and one that never accepts (connect timeout) retried
 * with another, removal from the set (no new connection, the open one continues,
 * lb_drain_instance closes it), the empty set, backpressure against a client that does not read,
 * traffic figures, a taken port, graceful lb_close. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "base/util.h"
#include "lb/lb.h"

#define N_BACKENDS 3
#define FIREHOSE_TOTAL (24u * 1024 * 1024)
#define CHUNK (64 * 1024)

/* ---- test backends on the loop: greet with their name, then echo (or stream FIREHOSE) ---- */

struct backend {
    uv_tcp_t srv;
    char name[16]; /* "b0\n" */
    int port;
    bool firehose;
    unsigned accepted;
};

struct bconn {
    uv_tcp_t h;
    struct backend *b;
    size_t sent; /* firehose bytes handed to uv_write */
};

struct bwrite {
    uv_write_t req;
    struct bconn *bc;
    bool firehose; /* the next chunk follows this one */
    char data[];
};

static char firehose_chunk[CHUNK];

static void bconn_closed(uv_handle_t *h)
{
    free(h->data);
}

static void bconn_close(struct bconn *bc)
{
    if (!uv_is_closing((uv_handle_t *)&bc->h))
        uv_close((uv_handle_t *)&bc->h, bconn_closed);
}

static void firehose_next(struct bconn *bc);

static void on_bwrite(uv_write_t *req, int status)
{
    struct bwrite *w = (struct bwrite *)req;
    struct bconn *bc = w->bc;
    bool next = w->firehose;
    free(w);
    if (status < 0)
        bconn_close(bc);
    else if (next && !uv_is_closing((uv_handle_t *)&bc->h))
        firehose_next(bc);
}

static void bsend(struct bconn *bc, const char *data, size_t len)
{
    struct bwrite *w = orch_xmalloc(sizeof(*w) + len);
    w->bc = bc;
    w->firehose = false;
    memcpy(w->data, data, len);
    uv_buf_t b = uv_buf_init(w->data, (unsigned)len);
    if (uv_write(&w->req, (uv_stream_t *)&bc->h, &b, 1, on_bwrite) < 0) {
        free(w);
        bconn_close(bc);
    }
}

/* One chunk at a time, so the backend's own memory stays bounded too. */
static void firehose_next(struct bconn *bc)
{
    if (bc->sent >= FIREHOSE_TOTAL) {
        bconn_close(bc);
        return;
    }
    bc->sent += CHUNK;
    struct bwrite *w = orch_xmalloc(sizeof(*w));
    w->bc = bc;
    w->firehose = true;
    uv_buf_t b = uv_buf_init(firehose_chunk, CHUNK);
    if (uv_write(&w->req, (uv_stream_t *)&bc->h, &b, 1, on_bwrite) < 0) {
        free(w);
        bconn_close(bc);
    }
}

static void balloc(uv_handle_t *h, size_t s, uv_buf_t *buf)
{
    static char mem[CHUNK];
    buf->base = mem;
    buf->len = sizeof(mem);
}

static void on_bshutdown(uv_shutdown_t *req, int status)
{
    bconn_close(req->data);
    free(req);
}

static void on_bread(uv_stream_t *st, ssize_t n, const uv_buf_t *buf)
{
    struct bconn *bc = st->data;
    if (n > 0) {
        bsend(bc, buf->base, (size_t)n);
    } else if (n == UV_EOF) {
        /* echo done: shut our side once the echo is written, close after */
        uv_read_stop(st);
        uv_shutdown_t *req = orch_xmalloc(sizeof(*req));
        req->data = bc;
        if (uv_shutdown(req, st, on_bshutdown) < 0) {
            free(req);
            bconn_close(bc);
        }
    } else if (n < 0) {
        bconn_close(bc);
    }
}

static void on_baccept(uv_stream_t *srv, int status)
{
    struct backend *b = srv->data;
    struct bconn *bc = orch_xcalloc(1, sizeof(*bc));
    bc->b = b;
    uv_tcp_init(srv->loop, &bc->h);
    bc->h.data = bc;
    if (uv_accept(srv, (uv_stream_t *)&bc->h) < 0) {
        bconn_close(bc);
        return;
    }
    b->accepted++;
    bsend(bc, b->name, strlen(b->name));
    if (b->firehose)
        firehose_next(bc);
    else
        uv_read_start((uv_stream_t *)&bc->h, balloc, on_bread);
}

static int tcp_port(uv_tcp_t *t)
{
    struct sockaddr_in sa;
    int len = sizeof(sa);
    uv_tcp_getsockname(t, (struct sockaddr *)&sa, &len);
    return ntohs(sa.sin_port);
}

/* ---- the harness: a loop thread, call() to run code on it ---- */

struct harness {
    uv_loop_t loop;
    uv_async_t async;
    pthread_t thread;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    void (*fn)(void *);
    void *arg;
    bool done;
    struct lb *lb;
    struct backend be[N_BACKENDS + 1]; /* the last one is the firehose */
    int refused_port;
    int hole_port; /* accepts nothing: its queue is full, so SYNs are dropped */
    int hole_fds[4];
    int lb_port;
    bool lb_closed;
};

static struct harness H;

static void on_async(uv_async_t *a)
{
    pthread_mutex_lock(&H.mu);
    void (*fn)(void *) = H.fn;
    void *arg = H.arg;
    H.fn = NULL;
    pthread_mutex_unlock(&H.mu);
    if (fn == NULL)
        return;
    fn(arg);
    pthread_mutex_lock(&H.mu);
    H.done = true;
    pthread_cond_broadcast(&H.cv);
    pthread_mutex_unlock(&H.mu);
}

static void call(void (*fn)(void *), void *arg)
{
    pthread_mutex_lock(&H.mu);
    H.fn = fn;
    H.arg = arg;
    H.done = false;
    uv_async_send(&H.async);
    while (!H.done)
        pthread_cond_wait(&H.cv, &H.mu);
    pthread_mutex_unlock(&H.mu);
}

static void *loop_thread(void *arg)
{
    uv_run(&H.loop, UV_RUN_DEFAULT);
    return NULL;
}

static void setup_on_loop(void *arg)
{
    for (int i = 0; i <= N_BACKENDS; i++) {
        struct backend *b = &H.be[i];
        struct sockaddr_in sa;
        uv_ip4_addr("127.0.0.1", 0, &sa);
        uv_tcp_init(&H.loop, &b->srv);
        b->srv.data = b;
        assert_int_equal(uv_tcp_bind(&b->srv, (struct sockaddr *)&sa, 0), 0);
        assert_int_equal(uv_listen((uv_stream_t *)&b->srv, 128, on_baccept), 0);
        b->port = tcp_port(&b->srv);
        b->firehose = i == N_BACKENDS;
        snprintf(b->name, sizeof(b->name), "b%d\n", i);
    }
    /* a port nothing listens on: bound then closed at once */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    bind(fd, (struct sockaddr *)&sa, sizeof(sa));
    getsockname(fd, (struct sockaddr *)&sa, &len);
    H.refused_port = ntohs(sa.sin_port);
    close(fd);

    H.lb = lb_new(&H.loop);
    struct orch_error err = {0};
    if (lb_listen(H.lb, "t/web/http", "127.0.0.1", 0, LB_ROUND_ROBIN, &err) < 0)
        fail_msg("lb_listen: %s", err.msg);
    H.lb_port = lb_port(H.lb, "t/web/http");
}

static int setup(void **state)
{
    memset(&H, 0, sizeof(H));
    memset(firehose_chunk, 'x', sizeof(firehose_chunk));
    uv_loop_init(&H.loop);
    uv_async_init(&H.loop, &H.async, on_async);
    pthread_mutex_init(&H.mu, NULL);
    pthread_cond_init(&H.cv, NULL);
    pthread_create(&H.thread, NULL, loop_thread, NULL);
    call(setup_on_loop, NULL);
    assert_true(H.lb_port > 0);
    return 0;
}

/* A listener whose accept queue is full and never drained: on Linux further SYNs are dropped,
 * so a connect to it hangs until its timeout. */
static void hole_open(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t len = sizeof(sa);
    assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    assert_int_equal(listen(fd, 0), 0);
    getsockname(fd, (struct sockaddr *)&sa, &len);
    H.hole_port = ntohs(sa.sin_port);
    H.hole_fds[0] = fd;
    for (int i = 1; i < 4; i++) {
        H.hole_fds[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
        connect(H.hole_fds[i], (struct sockaddr *)&sa, sizeof(sa));
    }
    usleep(100 * 1000);
}

static void hole_close(void)
{
    for (int i = 0; i < 4; i++)
        close(H.hole_fds[i]);
}

static void on_lb_closed(void *data)
{
    H.lb_closed = true;
}

static void teardown_on_loop(void *arg)
{
    if (H.lb != NULL)
        lb_close(H.lb, 200, on_lb_closed, NULL);
    for (int i = 0; i <= N_BACKENDS; i++)
        uv_close((uv_handle_t *)&H.be[i].srv, NULL);
    uv_close((uv_handle_t *)&H.async, NULL);
}

static int teardown(void **state)
{
    call(teardown_on_loop, NULL);
    pthread_join(H.thread, NULL); /* the loop ends when every handle is closed */
    assert_true(H.lb_closed);
    uv_walk(&H.loop, NULL, NULL);
    assert_int_equal(uv_loop_close(&H.loop), 0);
    return 0;
}

/* ---- calls run on the loop ---- */

struct set_args {
    int ids[8]; /* backend indexes; N_BACKENDS+1 = the refused port */
    size_t n;
    unsigned flags[8];
};

static void set_on_loop(void *arg)
{
    struct set_args *a = arg;
    struct lb_backend b[8];
    char ids[8][32];
    for (size_t i = 0; i < a->n; i++) {
        int k = a->ids[i];
        if (k == N_BACKENDS + 2)
            snprintf(ids[i], sizeof(ids[i]), "hole");
        else if (k == N_BACKENDS + 1)
            snprintf(ids[i], sizeof(ids[i]), "refused%u", (unsigned)(i & 7));
        else
            snprintf(ids[i], sizeof(ids[i]), "inst%d", k);
        b[i] = (struct lb_backend){
            .id = ids[i],
            .address = "127.0.0.1",
            .port = (uint16_t)(k == N_BACKENDS + 2   ? H.hole_port
                               : k == N_BACKENDS + 1 ? H.refused_port
                                                     : H.be[k].port),
            .flags = a->flags[i] != 0 ? a->flags[i] : LB_BACKEND_HEALTHY,
        };
    }
    struct orch_error err = {0};
    if (lb_set_backends(H.lb, "t/web/http", b, a->n, &err) < 0)
        fail_msg("lb_set_backends: %s", err.msg);
}

static void set_backends(struct set_args a)
{
    call(set_on_loop, &a);
}

static struct lb_stats stats_now;
static void stats_on_loop(void *arg)
{
    struct orch_error err = {0};
    if (lb_stats(H.lb, "t/web/http", &stats_now, &err) < 0)
        fail_msg("lb_stats: %s", err.msg);
}

static struct lb_stats stats(void)
{
    call(stats_on_loop, NULL);
    return stats_now;
}

static void mode_on_loop(void *arg)
{
    assert_int_equal(lb_set_mode(H.lb, "t/web/http", *(enum lb_mode *)arg, NULL), 0);
}

struct drain_args {
    const char *id;
    uint64_t grace;
    size_t open;
};

static void drain_on_loop(void *arg)
{
    struct drain_args *d = arg;
    d->open = lb_drain_instance(H.lb, "t/web/http", d->id, d->grace);
}

/* ---- the client side ---- */

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int client_connect(void)
{
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)H.lb_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    struct timeval tv = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof(sa)), 0);
    return fd;
}

/* Reads the backend's greeting line: its index, or -1 on EOF/error. */
static int read_greeting(int fd)
{
    char buf[4];
    size_t got = 0;
    while (got < 3) {
        ssize_t n = recv(fd, buf + got, 3 - got, 0);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    assert_true(buf[0] == 'b' && buf[2] == '\n');
    return buf[1] - '0';
}

static void recv_exact(int fd, char *buf, size_t len)
{
    size_t got = 0;
    while (got < len) {
        ssize_t n = recv(fd, buf + got, len - got, 0);
        if (n <= 0)
            fail_msg("recv: %zd after %zu of %zu bytes", n, got, len);
        got += (size_t)n;
    }
}

/* One connection: which backend answered (-1: closed without a greeting). */
static int one_conn(void)
{
    int fd = client_connect();
    int b = read_greeting(fd);
    close(fd);
    return b;
}

/* ---- tests ---- */

static void test_proxy_echo_half_close(void **state)
{
    set_backends((struct set_args){{0}, 1});
    int fd = client_connect();
    assert_int_equal(read_greeting(fd), 0);
    const char msg[] = "hello through the balancer";
    assert_int_equal(send(fd, msg, sizeof(msg), 0), (ssize_t)sizeof(msg));
    char buf[sizeof(msg)];
    recv_exact(fd, buf, sizeof(buf));
    assert_memory_equal(buf, msg, sizeof(msg));
    /* half-close: the backend sees EOF only through the proxy's shutdown, echoes the last bytes,
     * then closes; the client reads them and then EOF */
    assert_int_equal(send(fd, "bye", 3, 0), 3);
    shutdown(fd, SHUT_WR);
    recv_exact(fd, buf, 3);
    assert_memory_equal(buf, "bye", 3);
    assert_int_equal(recv(fd, buf, 1, 0), 0);
    close(fd);
    int64_t t0 = now_ms();
    while (stats().conns_active != 0 && now_ms() - t0 < 2000)
        usleep(10000);
    struct lb_stats st = stats();
    assert_int_equal(st.conns_active, 0);
    assert_int_equal(st.conns_total, 1);
    assert_int_equal(st.bytes_in, sizeof(msg) + 3);
    assert_int_equal(st.bytes_out, 3 + sizeof(msg) + 3);
    assert_int_equal(st.requests, 1); /* not HTTP: the connection counts */
}

static void test_spread_both_modes(void **state)
{
    const enum lb_mode modes[] = {LB_ROUND_ROBIN, LB_LEAST_CONN};
    set_backends((struct set_args){{0, 1, 2}, 3});
    for (size_t m = 0; m < 2; m++) {
        enum lb_mode mode = modes[m];
        call(mode_on_loop, &mode);
        int count[N_BACKENDS] = {0};
        const int rounds = 300;
        /* 10 connections open at a time, as a loaded client would have */
        int open[10];
        for (int i = 0; i < 10; i++)
            open[i] = -1;
        for (int r = 0; r < rounds; r++) {
            int slot = r % 10;
            if (open[slot] >= 0)
                close(open[slot]);
            open[slot] = client_connect();
            int b = read_greeting(open[slot]);
            assert_true(b >= 0 && b < N_BACKENDS);
            count[b]++;
        }
        for (int i = 0; i < 10; i++)
            close(open[i]);
        for (int i = 0; i < N_BACKENDS; i++) {
            print_message("%s: backend %d got %d of %d\n", lb_mode_name(mode), i, count[i], rounds);
            assert_true(count[i] >= rounds / N_BACKENDS * 0.9);
            assert_true(count[i] <= rounds / N_BACKENDS * 1.1);
        }
    }
}

static void test_refused_backend_retried(void **state)
{
    set_backends((struct set_args){{N_BACKENDS + 1, 0, N_BACKENDS + 1, 1}, 4});
    uint64_t failed0 = stats().connect_failed;
    for (int i = 0; i < 20; i++) {
        int b = one_conn();
        assert_true(b == 0 || b == 1);
    }
    struct lb_stats st = stats();
    assert_true(st.connect_failed - failed0 >= 10); /* round robin hit the refused one often */
    /* only refused backends: the client is closed, never queued */
    set_backends((struct set_args){{N_BACKENDS + 1}, 1});
    int64_t t0 = now_ms();
    assert_int_equal(one_conn(), -1);
    assert_true(now_ms() - t0 < 1000);
}

static void short_timeout_on_loop(void *arg)
{
    lb_set_connect_timeout(H.lb, 300);
}

/* A backend that never accepts is given up after the connect timeout and another one serves. */
static void test_connect_timeout_retried(void **state)
{
    hole_open();
    call(short_timeout_on_loop, NULL);
    set_backends((struct set_args){{N_BACKENDS + 2, 0}, 2});
    int64_t t0 = now_ms();
    int fd = client_connect();
    int b = read_greeting(fd);
    int64_t took = now_ms() - t0;
    close(fd);
    hole_close();
    assert_int_equal(b, 0);
    struct lb_stats st = stats();
    print_message("hole skipped after %lld ms, %llu failed connects\n", (long long)took,
                  (unsigned long long)st.connect_failed);
    assert_int_equal(st.connect_failed, 1);
    assert_true(took >= 250 && took < 2000);
}

static void test_removal_and_drain(void **state)
{
    set_backends((struct set_args){{0, 1, 2}, 3});
    /* find a connection to backend 0 */
    int fd = -1;
    for (int i = 0; i < 3 && fd < 0; i++) {
        int c = client_connect();
        if (read_greeting(c) == 0)
            fd = c;
        else
            close(c);
    }
    assert_true(fd >= 0);
    set_backends((struct set_args){{1, 2}, 2});
    unsigned before = H.be[0].accepted;
    for (int i = 0; i < 30; i++) {
        int b = one_conn();
        assert_true(b == 1 || b == 2);
    }
    assert_int_equal(H.be[0].accepted, before);
    /* the open connection to the removed backend continues */
    char buf[5];
    assert_int_equal(send(fd, "still", 5, 0), 5);
    recv_exact(fd, buf, 5);
    assert_memory_equal(buf, "still", 5);
    /* the daemon stops the instance: its connections close after the grace */
    struct drain_args d = {"inst0", 300, 0};
    int64_t t0 = now_ms();
    call(drain_on_loop, &d);
    assert_int_equal(d.open, 1);
    assert_int_equal(recv(fd, buf, 1, 0), 0); /* EOF once the grace ran out */
    int64_t waited = now_ms() - t0;
    assert_true(waited >= 250 && waited < 2000);
    close(fd);
}

static void test_empty_set_closes_promptly(void **state)
{
    set_backends((struct set_args){{0}, 0});
    for (int i = 0; i < 5; i++) {
        int64_t t0 = now_ms();
        assert_int_equal(one_conn(), -1);
        assert_true(now_ms() - t0 < 500);
    }
    /* draining or unhealthy backends are no better than none */
    set_backends((struct set_args){{0, 1}, 2, {LB_BACKEND_HEALTHY | LB_BACKEND_DRAINING, 0x100}});
    assert_int_equal(one_conn(), -1);
    struct lb_stats st = stats();
    assert_int_equal(st.conns_rejected, 6);
    assert_int_equal(st.backends, 2);
    assert_int_equal(st.backends_usable, 0);
}

/* A client that does not read while its backend streams: the balancer holds at most one read
 * of bytes for it, the backend is held back by TCP flow control, and every byte arrives once
 * the client reads. */
static void test_backpressure(void **state)
{
    set_backends((struct set_args){{N_BACKENDS}, 1});
    int fd = client_connect();
    int rcv = 64 * 1024;
    setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcv, sizeof(rcv));
    usleep(1000 * 1000);
    struct lb_stats st = stats();
    print_message("not reading for 1s: %llu bytes proxied, %llu queued in the balancer\n",
                  (unsigned long long)st.bytes_out, (unsigned long long)st.bytes_queued);
    assert_true(st.bytes_queued <= LB_READ_BUF);
    assert_true(st.bytes_out < FIREHOSE_TOTAL / 2); /* the backend was held back */
    usleep(300 * 1000);
    struct lb_stats st2 = stats();
    assert_true(st2.bytes_out - st.bytes_out <= LB_READ_BUF); /* stalled, not buffering */
    /* now read it all */
    size_t total = 0;
    char *buf = orch_xmalloc(CHUNK);
    assert_int_equal(read_greeting(fd), N_BACKENDS);
    for (;;) {
        ssize_t n = recv(fd, buf, CHUNK, 0);
        if (n <= 0)
            break;
        for (ssize_t i = 0; i < n; i++)
            if (buf[i] != 'x')
                fail_msg("byte %zu is %d", total + (size_t)i, buf[i]);
        total += (size_t)n;
    }
    free(buf);
    close(fd);
    assert_int_equal(total, FIREHOSE_TOTAL);
}

static void test_http_requests_counted(void **state)
{
    set_backends((struct set_args){{0, 1, 2}, 3});
    const char req[] = "GET / HTTP/1.1\r\nHost: a\r\n\r\n";
    const char post[] = "POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nGET /";
    for (int c = 0; c < 4; c++) {
        int fd = client_connect();
        assert_true(read_greeting(fd) >= 0);
        /* five requests, sent in two writes that split one of them */
        char all[512];
        size_t len = 0;
        for (int r = 0; r < 4; r++) {
            memcpy(all + len, req, strlen(req));
            len += strlen(req);
        }
        memcpy(all + len, post, strlen(post));
        len += strlen(post);
        assert_int_equal(send(fd, all, 20, 0), 20);
        usleep(20000);
        assert_int_equal(send(fd, all + 20, len - 20, 0), (ssize_t)(len - 20));
        char echo[512];
        recv_exact(fd, echo, len);
        close(fd);
    }
    int64_t t0 = now_ms();
    while (stats().conns_active != 0 && now_ms() - t0 < 2000)
        usleep(10000);
    struct lb_stats st = stats();
    assert_int_equal(st.http_conns, 4);
    assert_int_equal(st.requests, 20);
    assert_int_equal(st.conns_total, 4);
    assert_int_equal(st.connect_failed, 0);
}

static struct orch_error taken_err;
static int taken_rc;
static void listen_taken_on_loop(void *arg)
{
    taken_rc = lb_listen(H.lb, "t/other/http", "127.0.0.1", (uint16_t)H.be[0].port, LB_ROUND_ROBIN,
                         &taken_err);
}

static void listen_again_on_loop(void *arg)
{
    taken_rc = lb_listen(H.lb, "t/web/http", "127.0.0.1", 0, LB_ROUND_ROBIN, &taken_err);
}

static void test_port_taken(void **state)
{
    call(listen_taken_on_loop, NULL);
    assert_int_equal(taken_rc, -ORCH_E_ENV);
    print_message("%s\n", taken_err.msg);
    assert_non_null(strstr(taken_err.msg, "address already in use"));
    call(listen_again_on_loop, NULL);
    assert_int_equal(taken_rc, -ORCH_E_INVALID);
    /* the failed listener is gone without a trace: the service works */
    set_backends((struct set_args){{1}, 1});
    assert_int_equal(one_conn(), 1);
}

/* lb_close() with a connection open: the listener closes at once, the connection lasts until
 * the grace (200 ms in teardown) and is then closed; teardown checks the close callback. */
static void test_graceful_close(void **state)
{
    set_backends((struct set_args){{0}, 1});
    int fd = client_connect();
    assert_int_equal(read_greeting(fd), 0);
    int64_t t0 = now_ms();
    call(teardown_on_loop, NULL);
    char buf[8];
    assert_int_equal(send(fd, "abc", 3, 0), 3);
    recv_exact(fd, buf, 3); /* still proxying during the grace */
    assert_int_equal(recv(fd, buf, 1, 0), 0);
    assert_true(now_ms() - t0 >= 150);
    close(fd);
    H.lb = NULL; /* closed already: teardown must not close it again */
    pthread_join(H.thread, NULL);
    assert_true(H.lb_closed);
    assert_int_equal(uv_loop_close(&H.loop), 0);
    /* a new connection is refused: nothing listens any more */
    int c = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in sa = {.sin_family = AF_INET,
                             .sin_port = htons((uint16_t)H.lb_port),
                             .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    assert_int_not_equal(connect(c, (struct sockaddr *)&sa, sizeof(sa)), 0);
    close(c);
}

static int teardown_after_close(void **state)
{
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_proxy_echo_half_close, setup, teardown),
        cmocka_unit_test_setup_teardown(test_spread_both_modes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_refused_backend_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_connect_timeout_retried, setup, teardown),
        cmocka_unit_test_setup_teardown(test_removal_and_drain, setup, teardown),
        cmocka_unit_test_setup_teardown(test_empty_set_closes_promptly, setup, teardown),
        cmocka_unit_test_setup_teardown(test_backpressure, setup, teardown),
        cmocka_unit_test_setup_teardown(test_http_requests_counted, setup, teardown),
        cmocka_unit_test_setup_teardown(test_port_taken, setup, teardown),
        cmocka_unit_test_setup_teardown(test_graceful_close, setup, teardown_after_close),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
