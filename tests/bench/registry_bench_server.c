/* A standalone DNS server over a synthetic registry, for scripts/bench-dns: N services of app
 * "bench", 2 healthy instances each (addresses 10.X.Y.1 and 10.X.Y.2, ids svcNNNNNN(a|b)...), then
 * serves them until SIGINT/SIGTERM. It also times registry_build for the same input.
 *
 *   registry_bench_server [--services N] [--listen ADDR] [--build-rounds R] [--hosts FILE]
 *
 * --hosts writes the same names as a hosts file (for dnsmasq) and exits. Not part of orch. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "base/util.h"
#include "registry/dns_server.h"
#include "registry/registry.h"

struct synth {
    size_t n;
    struct registry_instance *inst;
    char (*ids)[65];
    char (*svcs)[16];
    char (*addrs)[16];
    struct registry_port port;
};

static void synth_make(struct synth *s, size_t services)
{
    s->n = services * 2;
    s->inst = orch_xcalloc(s->n, sizeof(*s->inst));
    s->ids = orch_xcalloc(s->n, sizeof(*s->ids));
    s->svcs = orch_xcalloc(services, sizeof(*s->svcs));
    s->addrs = orch_xcalloc(s->n, sizeof(*s->addrs));
    s->port = (struct registry_port){"http", REGISTRY_TCP, 8080};
    for (size_t i = 0; i < services; i++) {
        /* services are at most 60000 (checked in main); the masks let the compiler see
         * that every name fits its buffer */
        snprintf(s->svcs[i], sizeof(s->svcs[i]), "svc%u", (unsigned)(i % 1000000));
        for (size_t k = 0; k < 2; k++) {
            size_t j = i * 2 + k;
            snprintf(s->ids[j], sizeof(s->ids[j]), "%06x%06x%052d", (unsigned)(i & 0xffffff),
                     (unsigned)(k & 0xffffff), 0);
            snprintf(s->addrs[j], sizeof(s->addrs[j]), "10.%u.%u.%u", (unsigned)(i / 250 % 256),
                     (unsigned)(i % 250), (unsigned)(k + 1) & 0xff);
            s->inst[j] = (struct registry_instance){.app = "bench",
                                                    .service = s->svcs[i],
                                                    .id = s->ids[j],
                                                    .ipv4 = s->addrs[j],
                                                    .ports = &s->port,
                                                    .n_ports = 1,
                                                    .healthy = true};
        }
    }
}

static void synth_free(struct synth *s)
{
    free(s->inst);
    free(s->ids);
    free(s->svcs);
    free(s->addrs);
}

struct ctx {
    struct dns_server *srv;
    uv_signal_t sigs[2];
};

static void on_signal(uv_signal_t *sig, int signum)
{
    (void)signum;
    struct ctx *ctx = sig->data;
    struct dns_server *srv = ctx->srv;
    struct dns_server_stats st;
    dns_server_get_stats(srv, &st);
    fprintf(stderr, "registry_bench_server: udp %llu tcp %llu dropped %llu truncated %llu\n",
            (unsigned long long)st.udp_queries, (unsigned long long)st.tcp_queries,
            (unsigned long long)st.dropped, (unsigned long long)st.truncated);
    dns_server_close(srv, NULL, NULL);
    for (int i = 0; i < 2; i++)
        uv_close((uv_handle_t *)&ctx->sigs[i], NULL);
}

int main(int argc, char **argv)
{
    size_t services = 1000;
    int rounds = 20;
    const char *listen = "127.0.0.1:8653";
    const char *hosts = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--services") == 0 && i + 1 < argc)
            services = (size_t)strtoul(argv[++i], NULL, 10);
        else if (strcmp(argv[i], "--listen") == 0 && i + 1 < argc)
            listen = argv[++i];
        else if (strcmp(argv[i], "--build-rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--hosts") == 0 && i + 1 < argc)
            hosts = argv[++i];
        else {
            fprintf(stderr,
                    "usage: %s [--services N] [--listen ADDR] [--build-rounds R] "
                    "[--hosts FILE]\n",
                    argv[0]);
            return 2;
        }
    }
    if (services == 0 || services > 60000) {
        fprintf(stderr, "--services: 1..60000\n");
        return 2;
    }
    struct synth s;
    synth_make(&s, services);

    if (hosts != NULL) {
        FILE *f = fopen(hosts, "w");
        if (f == NULL) {
            perror(hosts);
            return 1;
        }
        for (size_t j = 0; j < s.n; j++) {
            fprintf(f, "%s %s.bench.orch\n", s.addrs[j], s.inst[j].service);
            fprintf(f, "%s %.12s.%s.bench.orch\n", s.addrs[j], s.ids[j], s.inst[j].service);
        }
        fclose(f);
        synth_free(&s);
        return 0;
    }

    struct orch_error err = {0};
    struct registry *reg = NULL;
    double best = 1e9;
    for (int r = 0; r < rounds; r++) {
        struct timespec a, b;
        clock_gettime(CLOCK_MONOTONIC, &a);
        struct registry *tmp;
        if (registry_build(NULL, s.inst, s.n, &tmp, &err) < 0) {
            fprintf(stderr, "registry_build: %s\n", err.msg);
            return 1;
        }
        clock_gettime(CLOCK_MONOTONIC, &b);
        double ms = (double)(b.tv_sec - a.tv_sec) * 1e3 + (double)(b.tv_nsec - a.tv_nsec) / 1e6;
        if (ms < best)
            best = ms;
        registry_free(tmp);
    }
    if (registry_build(NULL, s.inst, s.n, &reg, &err) < 0) {
        fprintf(stderr, "registry_build: %s\n", err.msg);
        return 1;
    }
    printf("build_ms %.2f services %zu instances %zu names %zu\n", best, services, s.n,
           registry_name_count(reg));
    fflush(stdout);
    synth_free(&s);

    uv_loop_t loop;
    uv_loop_init(&loop);
    struct dns_server *srv;
    if (dns_server_start(&loop, &(struct dns_server_options){.listen = listen}, &srv, &err) < 0) {
        fprintf(stderr, "dns_server_start: %s\n", err.msg);
        registry_free(reg);
        uv_run(&loop, UV_RUN_DEFAULT);
        uv_loop_close(&loop);
        return 1;
    }
    dns_server_set_registry(srv, reg);
    struct ctx ctx = {.srv = srv};
    const int signums[2] = {SIGINT, SIGTERM};
    for (int i = 0; i < 2; i++) {
        uv_signal_init(&loop, &ctx.sigs[i]);
        ctx.sigs[i].data = &ctx;
        uv_signal_start_oneshot(&ctx.sigs[i], on_signal, signums[i]);
    }
    printf("listening %s port %d\n", listen, dns_server_port(srv));
    fflush(stdout);
    uv_run(&loop, UV_RUN_DEFAULT);
    uv_loop_close(&loop);
    return 0;
}
