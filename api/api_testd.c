/* orch-api-testd: the API server alone on a loop, for the integration tests and the benchmark
 * until `orch daemon --api` carries it. Orch tokens come from a file (the store keeps none yet):
 * one per line, `TOKEN ROLE APP[,APP...]|* [TTL_SECONDS]`. Changes are recorded only
 * (ORCH_NO_CONVERGE=1), as when a daemon drives. `--routes` prints the route table. */
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <uv.h>

#include "auth/auth.h"
#include "auth/token.h"
#include "base/log.h"
#include "routes.h"
#include "server.h"

static struct api_server *server;
static uv_signal_t sigterm, sigint;

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int load_tokens(const char *path, struct auth_token_memstore *mem)
{
    FILE *f = fopen(path, "r");
    if (f == NULL) {
        perror(path);
        return -1;
    }
    char line[1024];
    while (fgets(line, sizeof(line), f)) {
        char tok[128], role[32], apps[512];
        long long ttl = 0;
        if (line[0] == '#' || sscanf(line, "%127s %31s %511s %lld", tok, role, apps, &ttl) < 3)
            continue;
        struct auth_token_record rec = {0};
        if (auth_token_parse(tok, strlen(tok), rec.id, rec.hash) < 0) {
            fprintf(stderr, "%s: not an orch token\n", path);
            fclose(f);
            return -1;
        }
        rec.role = auth_role_parse(role);
        for (char *save = NULL, *a = strtok_r(apps, ",", &save); a; a = strtok_r(NULL, ",", &save))
            orch_strv_push(&rec.apps, a);
        snprintf(rec.name, sizeof(rec.name), "test-%s", role);
        rec.created_ms = now_ms();
        rec.expires_ms = ttl != 0 ? now_ms() + ttl * 1000 : 0;
        struct auth_token_store st = auth_token_memstore(mem);
        struct orch_error err = {0};
        st.put(st.ctx, &rec, &err);
        auth_token_record_free(&rec);
    }
    fclose(f);
    return 0;
}

static void on_stopped(void *arg)
{
    uv_close((uv_handle_t *)&sigterm, NULL);
    uv_close((uv_handle_t *)&sigint, NULL);
}

static void on_signal(uv_signal_t *s, int signum)
{
    orch_log(ORCH_LOG_INFO, "api-testd: signal %d: shutting down", signum);
    uv_signal_stop(&sigterm);
    uv_signal_stop(&sigint);
    api_server_shutdown(server, on_stopped, NULL);
    server = NULL;
}

int main(int argc, char **argv)
{
    struct api_server_config cfg = {0};
    const char *tokens = NULL, *auth_file = NULL;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        const char *v = i + 1 < argc ? argv[i + 1] : NULL;
        if (strcmp(a, "--routes") == 0) {
            for (size_t r = 0; r < api_routes_count; r++)
                printf("%s %s\n", api_routes[r].method, api_routes[r].pattern);
            return 0;
        }
        if (v == NULL) {
            fprintf(stderr, "%s needs a value\n", a);
            return 2;
        }
        i++;
        if (strcmp(a, "--state") == 0)
            cfg.state_dir = v;
        else if (strcmp(a, "--api") == 0)
            cfg.listen = v;
        else if (strcmp(a, "--tls-cert") == 0)
            cfg.tls_cert = v;
        else if (strcmp(a, "--tls-key") == 0)
            cfg.tls_key = v;
        else if (strcmp(a, "--client-ca") == 0)
            cfg.client_ca = v;
        else if (strcmp(a, "--auth") == 0)
            auth_file = v;
        else if (strcmp(a, "--token-file") == 0)
            tokens = v;
        else if (strcmp(a, "--req-timeout-ms") == 0)
            cfg.req_timeout_ms = strtoull(v, NULL, 10);
        else if (strcmp(a, "--max-conns") == 0)
            cfg.max_conns = (unsigned)strtoul(v, NULL, 10);
        else if (strcmp(a, "--events-poll-ms") == 0)
            cfg.events_poll_ms = strtoull(v, NULL, 10);
        else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
    }
    if (cfg.state_dir == NULL) {
        fprintf(stderr, "--state DIR is required\n");
        return 2;
    }
    orch_log_setup(ORCH_LOG_INFO, ORCH_LOG_PLAIN, true);
    setenv("ORCH_NO_CONVERGE", "1", 1);
    signal(SIGPIPE, SIG_IGN);
    struct auth_token_memstore mem = {0};
    struct auth_token_store store = auth_token_memstore(&mem);
    if (tokens != NULL && load_tokens(tokens, &mem) < 0)
        return 2;
    cfg.tokens = &store;
    struct auth_config *auth = NULL;
    struct orch_error err = {0};
    if (auth_file != NULL && auth_config_load(auth_file, &auth, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 2;
    }
    cfg.auth = auth;
    uv_loop_t *loop = uv_default_loop();
    if (api_server_start(loop, &cfg, &server, &err) < 0) {
        fprintf(stderr, "%s\n", err.msg);
        return 3;
    }
    printf("listening %d\n", api_server_port(server));
    fflush(stdout);
    uv_signal_init(loop, &sigterm);
    uv_signal_init(loop, &sigint);
    uv_signal_start(&sigterm, on_signal, SIGTERM);
    uv_signal_start(&sigint, on_signal, SIGINT);
    uv_run(loop, UV_RUN_DEFAULT);
    uv_loop_close(loop);
    auth_config_free(auth);
    auth_token_memstore_free(&mem);
    return 0;
}
