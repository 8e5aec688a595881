/* DOCKER_HOST parsing, as the docker CLI does it. Owns the endpoint strings; the only
 * environment and file-system reads are in docker_endpoint_from_env. Opens no connection. */
#include "docker/docker_endpoint.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "base/util.h"

static bool is_set(const char *s)
{
    return s != NULL && s[0] != '\0';
}

static int parse_port(const char *s, size_t n, int *port)
{
    long v = 0;
    if (n == 0 || n > 5)
        return -1;
    for (size_t i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    if (v < 1 || v > 65535)
        return -1;
    *port = (int)v;
    return 0;
}

/* "HOST:PORT", "[V6]:PORT", "HOST", ":PORT", each optionally followed by "/". */
static int parse_tcp(const char *orig, const char *addr, bool tls, struct docker_endpoint *out,
                     struct orch_error *err)
{
    size_t len = strlen(addr);
    const char *host = addr, *port = NULL;
    size_t host_len, port_len = 0;
    const char *slash = strchr(addr, '/');

    if (slash != NULL) {
        /* The CLI accepts a base path after the address; nothing orch talks to needs one. */
        if (slash[1] != '\0')
            return orch_fail(err, ORCH_E_ENV, 0,
                             "DOCKER_HOST=%s: a path after the address is not supported", orig);
        len = (size_t)(slash - addr);
    }
    if (len > 0 && addr[0] == '[') {
        const char *close = memchr(addr, ']', len);
        if (close == NULL)
            return orch_fail(err, ORCH_E_ENV, 0, "DOCKER_HOST=%s: missing ']' after IPv6 address",
                             orig);
        host = addr + 1;
        host_len = (size_t)(close - host);
        size_t rest = len - (size_t)(close + 1 - addr);
        if (rest > 0) {
            if (close[1] != ':')
                return orch_fail(err, ORCH_E_ENV, 0,
                                 "DOCKER_HOST=%s: expected ':PORT' after the IPv6 address", orig);
            port = close + 2;
            port_len = rest - 1;
        }
    } else {
        const char *colon = memchr(addr, ':', len);
        if (colon != NULL && memchr(colon + 1, ':', len - (size_t)(colon + 1 - addr)) != NULL)
            return orch_fail(err, ORCH_E_ENV, 0,
                             "DOCKER_HOST=%s: an IPv6 address needs brackets: tcp://[ADDR]:PORT",
                             orig);
        host_len = colon ? (size_t)(colon - addr) : len;
        if (colon != NULL) {
            port = colon + 1;
            port_len = len - host_len - 1;
        }
    }
    for (size_t i = 0; i < host_len; i++) {
        unsigned char ch = (unsigned char)host[i];
        if (!(isalnum(ch) || ch == '.' || ch == '-' || ch == '_' || ch == ':' || ch == '%'))
            return orch_fail(err, ORCH_E_ENV, 0, "DOCKER_HOST=%s: invalid host name", orig);
    }
    out->port = tls ? DOCKER_DEFAULT_TLS_PORT : DOCKER_DEFAULT_TCP_PORT;
    if (port != NULL && parse_port(port, port_len, &out->port) < 0)
        return orch_fail(err, ORCH_E_ENV, 0, "DOCKER_HOST=%s: invalid port '%.*s'", orig,
                         (int)port_len, port);
    /* An empty host means the local machine, as in the CLI's default tcp://localhost:2375. */
    out->host = host_len ? orch_xstrndup(host, host_len) : orch_xstrdup("localhost");
    out->transport = DOCKER_TRANSPORT_TCP;
    out->tls = tls;

    bool v6 = strchr(out->host, ':') != NULL;
    const char *lb = v6 ? "[" : "", *rb = v6 ? "]" : "";
    out->display = orch_xasprintf("tcp://%s%s%s:%d", lb, out->host, rb, out->port);
    out->base_url =
        orch_xasprintf("%s://%s%s%s:%d", tls ? "https" : "http", lb, out->host, rb, out->port);
    return 0;
}

int docker_endpoint_parse(const struct docker_endpoint_env *env, struct docker_endpoint *out,
                          struct orch_error *err)
{
    struct docker_endpoint ep = {0};
    _cleanup_free_ char *trimmed = NULL;
    const char *raw = is_set(env->docker_host) ? env->docker_host : DOCKER_DEFAULT_HOST;
    bool tls = is_set(env->docker_tls_verify);
    int r;

    /* The CLI trims surrounding space: DOCKER_HOST often comes from a hand-edited file. */
    while (isspace((unsigned char)*raw))
        raw++;
    size_t n = strlen(raw);
    while (n > 0 && isspace((unsigned char)raw[n - 1]))
        n--;
    trimmed = orch_xstrndup(raw, n);
    if (n == 0)
        return orch_fail(err, ORCH_E_ENV, 0, "DOCKER_HOST is blank");

    const char *sep = strstr(trimmed, "://");
    if (sep == NULL) {
        /* Like the CLI, a bare "host:port" means tcp. */
        r = parse_tcp(trimmed, trimmed, tls, &ep, err);
    } else {
        size_t scheme_len = (size_t)(sep - trimmed);
        const char *rest = sep + 3;
        if (scheme_len == 4 && strncmp(trimmed, "unix", 4) == 0) {
            ep.transport = DOCKER_TRANSPORT_UNIX;
            ep.socket_path = orch_xstrdup(rest[0] ? rest : "/var/run/docker.sock");
            ep.display = orch_xasprintf("unix://%s", ep.socket_path);
            /* The host part of the URL is ignored on a unix socket; the engine checks none. */
            ep.base_url = orch_xstrdup("http://localhost");
            r = 0;
        } else if (scheme_len == 3 && strncmp(trimmed, "tcp", 3) == 0) {
            r = parse_tcp(trimmed, rest, tls, &ep, err);
        } else if (scheme_len == 3 && strncmp(trimmed, "ssh", 3) == 0) {
            r = orch_fail(err, ORCH_E_ENV, 0,
                          "DOCKER_HOST=%s: ssh:// endpoints are not supported; forward the "
                          "engine's socket (ssh -L) and use unix:// or tcp://",
                          trimmed);
        } else if (scheme_len == 5 && strncmp(trimmed, "npipe", 5) == 0) {
            r = orch_fail(err, ORCH_E_ENV, 0,
                          "DOCKER_HOST=%s: npipe:// is a Windows named pipe; orch supports "
                          "unix:// and tcp://",
                          trimmed);
        } else {
            r = orch_fail(err, ORCH_E_ENV, 0,
                          "DOCKER_HOST=%s: unsupported scheme '%.*s' (use unix:// or tcp://)",
                          trimmed, (int)scheme_len, trimmed);
        }
    }
    if (r < 0) {
        docker_endpoint_free(&ep);
        return r;
    }

    if (ep.tls) {
        const char *dir = env->docker_cert_path;
        _cleanup_free_ char *def = NULL;
        if (!is_set(dir)) {
            if (!is_set(env->home)) {
                docker_endpoint_free(&ep);
                return orch_fail(err, ORCH_E_ENV, 0,
                                 "DOCKER_TLS_VERIFY is set but neither DOCKER_CERT_PATH nor "
                                 "HOME is: cannot find the client certificates");
            }
            def = orch_xasprintf("%s/.docker", env->home);
            dir = def;
        }
        ep.ca_file = orch_xasprintf("%s/ca.pem", dir);
        ep.cert_file = orch_xasprintf("%s/cert.pem", dir);
        ep.key_file = orch_xasprintf("%s/key.pem", dir);
    }
    *out = ep;
    return 0;
}

int docker_endpoint_from_env(struct docker_endpoint *out, struct orch_error *err)
{
    struct docker_endpoint_env env = {
        .docker_host = getenv("DOCKER_HOST"),
        .docker_tls_verify = getenv("DOCKER_TLS_VERIFY"),
        .docker_cert_path = getenv("DOCKER_CERT_PATH"),
        .home = getenv("HOME"),
    };
    struct docker_endpoint ep;
    int r = docker_endpoint_parse(&env, &ep, err);
    if (r < 0)
        return r;
    if (ep.tls) {
        const char *files[] = {ep.ca_file, ep.cert_file, ep.key_file};
        for (size_t i = 0; i < ORCH_ARRAY_LEN(files); i++) {
            if (access(files[i], R_OK) < 0) {
                r = orch_fail(err, ORCH_E_ENV, errno,
                              "DOCKER_TLS_VERIFY is set but %s is not readable", files[i]);
                docker_endpoint_free(&ep);
                return r;
            }
        }
    }
    *out = ep;
    return 0;
}

void docker_endpoint_copy(struct docker_endpoint *dst, const struct docker_endpoint *src)
{
    *dst = *src;
    dst->socket_path = orch_xstrdup(src->socket_path);
    dst->host = orch_xstrdup(src->host);
    dst->ca_file = orch_xstrdup(src->ca_file);
    dst->cert_file = orch_xstrdup(src->cert_file);
    dst->key_file = orch_xstrdup(src->key_file);
    dst->display = orch_xstrdup(src->display);
    dst->base_url = orch_xstrdup(src->base_url);
}

void docker_endpoint_free(struct docker_endpoint *ep)
{
    free(ep->socket_path);
    free(ep->host);
    free(ep->ca_file);
    free(ep->cert_file);
    free(ep->key_file);
    free(ep->display);
    free(ep->base_url);
    *ep = (struct docker_endpoint){0};
}
