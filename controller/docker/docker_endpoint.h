/* Where the Docker engine is: DOCKER_HOST, DOCKER_TLS_VERIFY and DOCKER_CERT_PATH parsed the
 * way the docker CLI parses them. docker_endpoint_parse is pure (the environment comes in as a
 * struct); docker_endpoint_from_env is the one place that reads the process environment. */
#ifndef ORCH_DOCKER_ENDPOINT_H
#define ORCH_DOCKER_ENDPOINT_H

#include <stdbool.h>

#include "base/error.h"

#define DOCKER_DEFAULT_HOST "unix:///var/run/docker.sock"
#define DOCKER_DEFAULT_TCP_PORT 2375
#define DOCKER_DEFAULT_TLS_PORT 2376

enum docker_transport {
    DOCKER_TRANSPORT_UNIX,
    DOCKER_TRANSPORT_TCP,
};

/* The inputs, borrowed; a NULL or empty string means "not set". */
struct docker_endpoint_env {
    const char *docker_host;       /* DOCKER_HOST */
    const char *docker_tls_verify; /* DOCKER_TLS_VERIFY: any non-empty value turns TLS on */
    const char *docker_cert_path;  /* DOCKER_CERT_PATH; default $HOME/.docker */
    const char *home;              /* HOME */
};

/* Every string is owned by the endpoint; free with docker_endpoint_free. */
struct docker_endpoint {
    enum docker_transport transport;
    char *socket_path; /* UNIX: the socket's path */
    char *host;        /* TCP: host name or address (IPv6 without brackets) */
    int port;          /* TCP: 1..65535 */
    bool tls;          /* TCP only: https with client certificates */
    char *ca_file;     /* TLS: DOCKER_CERT_PATH/ca.pem */
    char *cert_file;   /* TLS: DOCKER_CERT_PATH/cert.pem */
    char *key_file;    /* TLS: DOCKER_CERT_PATH/key.pem */
    char *display;     /* canonical form for messages: "unix:///var/run/docker.sock", "tcp://h:p" */
    char *base_url;    /* what libcurl is given: "http://localhost" (UNIX), "https://h:2376" */
};

/* Pure. Fills *out (zeroed first) or returns -ORCH_E_ENV with a message naming the bad value
 * (ssh://, npipe://, fd://, http://, a bad port, a path after tcp://host:port). */
int docker_endpoint_parse(const struct docker_endpoint_env *env, struct docker_endpoint *out,
                          struct orch_error *err);

/* Reads DOCKER_HOST, DOCKER_TLS_VERIFY, DOCKER_CERT_PATH and HOME, parses them, and with TLS
 * checks that ca.pem, cert.pem and key.pem are readable (-ORCH_E_ENV naming the file if not). */
int docker_endpoint_from_env(struct docker_endpoint *out, struct orch_error *err);

/* Deep copy; dst is overwritten. */
void docker_endpoint_copy(struct docker_endpoint *dst, const struct docker_endpoint *src);

void docker_endpoint_free(struct docker_endpoint *ep);

#endif
