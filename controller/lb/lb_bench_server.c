/* A standalone balancer over static backends, for scripts/bench-lb: listens on one address and
 * proxies to the given backends until SIGINT/SIGTERM, then prints its traffic figures.
 *
 *   lb_bench_server --listen ADDR:PORT [--mode round_robin|least_conn] --backend ADDR:PORT...
 *
 * Not part of orch (not installed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uv.h>

#include "base/util.h"
#include "lb/lb.h"

#define MAX_BACKENDS 64

struct ctx {
    struct lb *lb;
    uv_signal_t sigs[2];
};

static void on_signal(uv_signal_t *sig, int signum)
{
    struct ctx *ctx = sig->data;
    struct lb_stats st;
    if (lb_stats(ctx->lb, "bench", &st, NULL) == 0)
        fprintf(stderr,
                "lb_bench_server: conns %llu rejected %llu connect_failed %llu requests %llu "
                "bytes_in %llu bytes_out %llu\n",
                (unsigned long long)st.conns_total, (unsigned long long)st.conns_rejected,
                (unsigned long long)st.connect_failed, (unsigned long long)st.requests,
                (unsigned long long)st.bytes_in, (unsigned long long)st.bytes_out);
    lb_close(ctx->lb, 100, NULL, NULL);
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&ctx->sigs[i], NULL);
}

/* "HOST:PORT" into host (a copy) and port; IPv6 as "[HOST]:PORT". */
static int split_addr(const char *s, char *host, size_t host_len, uint16_t *port)
{
    const char *colon = strrchr(s, ':');
    if (colon == NULL || colon == s)
        return -1;
    const char *h = s;
    size_t n = (size_t)(colon - s);
    if (*h == '[' && n >= 2 && h[n - 1] == ']') {
        h++;
        n -= 2;
    }
    if (n >= host_len)
        return -1;
    memcpy(host, h, n);
    host[n] = '\0';
    long p = strtol(colon + 1, NULL, 10);
    if (p < 0 || p > 65535)
        return -1;
    *port = (uint16_t)p;
    return 0;
}

int main(int argc, char **argv)
{
    const char *listen = "127.0.0.1:18080";
    enum lb_mode mode = LB_ROUND_ROBIN;
    struct lb_backend be[MAX_BACKENDS];
    char hosts[MAX_BACKENDS][64], ids[MAX_BACKENDS][16];
    size_t n = 0;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc) {
            listen = argv[++i];
        } else if (strcmp(argv[i], "--mode") == 0 && i + 1 < argc) {
            if (!lb_mode_parse(argv[++i], &mode)) {
                fprintf(stderr, "--mode: round_robin or least_conn\n");
                return 2;
            }
        } else if (strcmp(argv[i], "--backend") == 0 && i + 1 < argc && n < MAX_BACKENDS) {
            uint16_t port;
            if (split_addr(argv[++i], hosts[n], sizeof(hosts[n]), &port) < 0) {
                fprintf(stderr, "--backend %s: want HOST:PORT\n", argv[i]);
                return 2;
            }
            snprintf(ids[n], sizeof(ids[n]), "b%zu", n);
            be[n] = (struct lb_backend){ids[n], hosts[n], port, LB_BACKEND_HEALTHY};
            n++;
        } else {
            fprintf(stderr,
                    "usage: %s --listen ADDR:PORT [--mode round_robin|least_conn] "
                    "--backend ADDR:PORT...\n",
                    argv[0]);
            return 2;
        }
    }
    char lhost[64];
    uint16_t lport;
    if (split_addr(listen, lhost, sizeof(lhost), &lport) < 0) {
        fprintf(stderr, "--listen %s: want HOST:PORT\n", listen);
        return 2;
    }

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct ctx ctx = {.lb = lb_new(&loop)};
    struct orch_error err = {0};
    if (lb_listen(ctx.lb, "bench", lhost, lport, mode, &err) < 0 ||
        lb_set_backends(ctx.lb, "bench", be, n, &err) < 0) {
        fprintf(stderr, "lb_bench_server: %s\n", err.msg);
        lb_close(ctx.lb, 1, NULL, NULL);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    const int signums[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        uv_signal_init(&loop, &ctx.sigs[i]);
        ctx.sigs[i].data = &ctx;
        uv_signal_start_oneshot(&ctx.sigs[i], on_signal, signums[i]);
    }
    printf("listening %s:%d mode %s backends %zu\n", lhost, lb_port(ctx.lb, "bench"),
           lb_mode_name(mode), n);
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
