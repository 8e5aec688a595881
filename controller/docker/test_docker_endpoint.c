/* DOCKER_HOST parsing: a table of what the docker CLI accepts and refuses, plus the TLS file
 * checks of docker_endpoint_from_env. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "docker/docker_endpoint.h"

struct ep_case {
    const char *docker_host, *tls_verify, *cert_path, *home;
    int want_code;       /* 0 or ORCH_E_* */
    const char *display; /* or the error substring */
    const char *base_url;
    const char *socket_path; /* UNIX */
    const char *host;        /* TCP */
    int port;
    const char *ca_file; /* TLS */
};

static const struct ep_case cases[] = {
    {NULL, NULL, NULL, NULL, 0, "unix:///var/run/docker.sock", "http://localhost",
     "/var/run/docker.sock"},
    {"", NULL, NULL, NULL, 0, "unix:///var/run/docker.sock", "http://localhost",
     "/var/run/docker.sock"},
    {"  unix:///run/user/1000/docker.sock \n", NULL, NULL, NULL, 0,
     "unix:///run/user/1000/docker.sock", "http://localhost", "/run/user/1000/docker.sock"},
    {"unix://", NULL, NULL, NULL, 0, "unix:///var/run/docker.sock", "http://localhost",
     "/var/run/docker.sock"},
    /* TLS settings do not apply to a unix socket. */
    {"unix:///tmp/d.sock", "1", "/certs", NULL, 0, "unix:///tmp/d.sock", "http://localhost",
     "/tmp/d.sock"},
    {"tcp://127.0.0.1:2375", NULL, NULL, NULL, 0, "tcp://127.0.0.1:2375", "http://127.0.0.1:2375",
     NULL, "127.0.0.1", 2375},
    {"tcp://docker.example:1234/", NULL, NULL, NULL, 0, "tcp://docker.example:1234",
     "http://docker.example:1234", NULL, "docker.example", 1234},
    {"tcp://127.0.0.1", NULL, NULL, NULL, 0, "tcp://127.0.0.1:2375", "http://127.0.0.1:2375", NULL,
     "127.0.0.1", 2375},
    {"tcp://127.0.0.1", "1", "/certs", NULL, 0, "tcp://127.0.0.1:2376", "https://127.0.0.1:2376",
     NULL, "127.0.0.1", 2376, "/certs/ca.pem"},
    {"tcp://127.0.0.1:4243", "yes", NULL, "/home/u", 0, "tcp://127.0.0.1:4243",
     "https://127.0.0.1:4243", NULL, "127.0.0.1", 4243, "/home/u/.docker/ca.pem"},
    {"tcp://:2375", NULL, NULL, NULL, 0, "tcp://localhost:2375", "http://localhost:2375", NULL,
     "localhost", 2375},
    {"tcp://[::1]:2375", NULL, NULL, NULL, 0, "tcp://[::1]:2375", "http://[::1]:2375", NULL, "::1",
     2375},
    {"tcp://[::1]", NULL, NULL, NULL, 0, "tcp://[::1]:2375", "http://[::1]:2375", NULL, "::1",
     2375},
    {"localhost:2375", NULL, NULL, NULL, 0, "tcp://localhost:2375", "http://localhost:2375", NULL,
     "localhost", 2375},
    {"tcp://127.0.0.1:1", NULL, NULL, NULL, 0, "tcp://127.0.0.1:1", "http://127.0.0.1:1", NULL,
     "127.0.0.1", 1},
    /* Refused. */
    {"ssh://user@host", NULL, NULL, NULL, ORCH_E_ENV, "ssh:// endpoints are not supported"},
    {"npipe:////./pipe/docker_engine", NULL, NULL, NULL, ORCH_E_ENV, "Windows named pipe"},
    {"fd://", NULL, NULL, NULL, ORCH_E_ENV, "unsupported scheme 'fd'"},
    {"http://127.0.0.1:2375", NULL, NULL, NULL, ORCH_E_ENV, "unsupported scheme 'http'"},
    {"tcp://127.0.0.1:0", NULL, NULL, NULL, ORCH_E_ENV, "invalid port '0'"},
    {"tcp://127.0.0.1:65536", NULL, NULL, NULL, ORCH_E_ENV, "invalid port '65536'"},
    {"tcp://127.0.0.1:99999999999", NULL, NULL, NULL, ORCH_E_ENV, "invalid port"},
    {"tcp://127.0.0.1:abc", NULL, NULL, NULL, ORCH_E_ENV, "invalid port 'abc'"},
    {"tcp://127.0.0.1:", NULL, NULL, NULL, ORCH_E_ENV, "invalid port ''"},
    {"tcp://127.0.0.1:2375/v1.41", NULL, NULL, NULL, ORCH_E_ENV, "path after the address"},
    {"tcp://::1:2375", NULL, NULL, NULL, ORCH_E_ENV, "needs brackets"},
    {"tcp://[::1", NULL, NULL, NULL, ORCH_E_ENV, "missing ']'"},
    {"tcp://[::1]x", NULL, NULL, NULL, ORCH_E_ENV, "expected ':PORT'"},
    {"tcp://ho st:1", NULL, NULL, NULL, ORCH_E_ENV, "invalid host name"},
    {"   ", NULL, NULL, NULL, ORCH_E_ENV, "blank"},
    {"tcp://127.0.0.1", "1", NULL, NULL, ORCH_E_ENV, "neither DOCKER_CERT_PATH nor HOME"},
};

static void test_parse_table(void **state)
{
    (void)state;
    for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const struct ep_case *t = &cases[i];
        struct docker_endpoint_env env = {t->docker_host, t->tls_verify, t->cert_path, t->home};
        struct docker_endpoint ep;
        struct orch_error err = {0};
        int r = docker_endpoint_parse(&env, &ep, &err);
        print_message("case %zu: DOCKER_HOST=%s -> %d %s\n", i,
                      t->docker_host ? t->docker_host : "(unset)", r, r < 0 ? err.msg : ep.display);
        if (t->want_code != 0) {
            assert_int_equal(r, -t->want_code);
            assert_int_equal(err.code, t->want_code);
            assert_non_null(strstr(err.msg, t->display));
            continue;
        }
        assert_int_equal(r, 0);
        assert_string_equal(ep.display, t->display);
        assert_string_equal(ep.base_url, t->base_url);
        if (t->socket_path) {
            assert_int_equal(ep.transport, DOCKER_TRANSPORT_UNIX);
            assert_string_equal(ep.socket_path, t->socket_path);
            assert_false(ep.tls);
        } else {
            assert_int_equal(ep.transport, DOCKER_TRANSPORT_TCP);
            assert_string_equal(ep.host, t->host);
            assert_int_equal(ep.port, t->port);
        }
        if (t->ca_file) {
            assert_true(ep.tls);
            assert_string_equal(ep.ca_file, t->ca_file);
            assert_non_null(strstr(ep.cert_file, "/cert.pem"));
            assert_non_null(strstr(ep.key_file, "/key.pem"));
        } else {
            assert_null(ep.ca_file);
        }
        struct docker_endpoint copy;
        docker_endpoint_copy(&copy, &ep);
        assert_string_equal(copy.display, ep.display);
        assert_ptr_not_equal(copy.display, ep.display);
        docker_endpoint_free(&copy);
        docker_endpoint_free(&ep);
    }
}

static void write_file(const char *dir, const char *name)
{
    char p[512];
    snprintf(p, sizeof(p), "%s/%s", dir, name);
    FILE *f = fopen(p, "w");
    assert_non_null(f);
    fputs("x\n", f);
    fclose(f);
}

/* With TLS, every certificate file must be readable, and the error names the missing one. */
static void test_from_env_tls_files(void **state)
{
    (void)state;
    char dir[] = "/tmp/orch-docker-certs-XXXXXX";
    assert_non_null(mkdtemp(dir));
    setenv("DOCKER_HOST", "tcp://127.0.0.1:2376", 1);
    setenv("DOCKER_TLS_VERIFY", "1", 1);
    setenv("DOCKER_CERT_PATH", dir, 1);

    struct docker_endpoint ep;
    struct orch_error err = {0};
    write_file(dir, "ca.pem");
    write_file(dir, "cert.pem");
    assert_int_equal(docker_endpoint_from_env(&ep, &err), -ORCH_E_ENV);
    assert_non_null(strstr(err.msg, "key.pem"));

    write_file(dir, "key.pem");
    assert_int_equal(docker_endpoint_from_env(&ep, &err), 0);
    assert_true(ep.tls);
    assert_string_equal(ep.base_url, "https://127.0.0.1:2376");
    docker_endpoint_free(&ep);

    unsetenv("DOCKER_TLS_VERIFY");
    setenv("DOCKER_HOST", "ssh://me@box", 1);
    assert_int_equal(docker_endpoint_from_env(&ep, &err), -ORCH_E_ENV);

    const char *names[] = {"ca.pem", "cert.pem", "key.pem"};
    for (size_t i = 0; i < 3; i++) {
        char p[512];
        snprintf(p, sizeof(p), "%s/%s", dir, names[i]);
        unlink(p);
    }
    rmdir(dir);
    unsetenv("DOCKER_HOST");
    unsetenv("DOCKER_CERT_PATH");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_table),
        cmocka_unit_test(test_from_env_tls_files),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
