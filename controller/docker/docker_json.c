/* Engine API JSON <-> plain structs, error classification, query escaping and stream line
 * framing. Pure: no I/O, no clock, no globals. jansson is used here and nowhere in a header, so
 * callers never see json_t. Every input parsed here is untrusted: wrong types, missing ids and
 * out-of-range numbers are errors, never crashes. */
#include "docker/docker_json.h"

#include <ctype.h>
#include <inttypes.h>
#include <jansson.h>
#include <limits.h>
#include <string.h>

static void docker_json_decrefp(json_t **j)
{
    json_decref(*j);
}
#define _cleanup_json_ __attribute__((cleanup(docker_json_decrefp)))

static int digits(const char *s, int n, int *out);

/* ---- key/value lists ---------------------------------------------------------------------- */

void docker_kvs_add(struct docker_kvs *kvs, const char *key, const char *value)
{
    kvs->v = orch_xrealloc(kvs->v, (kvs->n + 1) * sizeof(*kvs->v));
    kvs->v[kvs->n].key = orch_xstrdup(key);
    kvs->v[kvs->n].value = orch_xstrdup(value);
    kvs->n++;
}

const char *docker_kvs_get(const struct docker_kvs *kvs, const char *key)
{
    for (size_t i = 0; i < kvs->n; i++)
        if (strcmp(kvs->v[i].key, key) == 0)
            return kvs->v[i].value;
    return NULL;
}

void docker_kvs_free(struct docker_kvs *kvs)
{
    for (size_t i = 0; i < kvs->n; i++) {
        free(kvs->v[i].key);
        free(kvs->v[i].value);
    }
    free(kvs->v);
    kvs->v = NULL;
    kvs->n = 0;
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct docker_kv *)a)->key, ((const struct docker_kv *)b)->key);
}

/* ---- request bodies ----------------------------------------------------------------------- */

static json_t *strv_to_json(const struct orch_strv *sv)
{
    json_t *a = json_array();
    for (size_t i = 0; i < sv->n; i++)
        json_array_append_new(a, json_string(sv->v[i]));
    return a;
}

/* Labels as a JSON object; -ORCH_E_INVALID for an empty key or a value that is not UTF-8. */
static int labels_to_json(const struct docker_kvs *kvs, json_t **out, struct orch_error *err)
{
    json_t *o = json_object();
    for (size_t i = 0; i < kvs->n; i++) {
        bool key_ok = kvs->v[i].key != NULL && kvs->v[i].key[0] != '\0';
        json_t *v = key_ok ? json_string(kvs->v[i].value ? kvs->v[i].value : "") : NULL;
        /* json_object_set_new takes v even when it fails. */
        if (v == NULL || json_object_set_new(o, kvs->v[i].key, v) < 0) {
            json_decref(o);
            return orch_fail(err, ORCH_E_INVALID, 0, "label '%s': empty key or not UTF-8",
                             kvs->v[i].key ? kvs->v[i].key : "");
        }
    }
    *out = o;
    return 0;
}

static int dump(json_t *j, char **out, struct orch_error *err)
{
    char *s = json_dumps(j, JSON_COMPACT);
    if (s == NULL)
        return orch_fail(err, ORCH_E_INVALID, 0, "request body: a string is not valid UTF-8");
    /* Hand out memory from our allocator so callers free it like every other string. */
    *out = orch_xstrdup(s);
    free(s);
    return 0;
}

static bool strv_utf8(const struct orch_strv *sv)
{
    for (size_t i = 0; i < sv->n; i++) {
        json_t *t = json_string(sv->v[i]);
        if (t == NULL)
            return false;
        json_decref(t);
    }
    return true;
}

int docker_json_container_create(const struct docker_container_create *in, char **out,
                                 struct orch_error *err)
{
    _cleanup_json_ json_t *root = json_object();
    json_t *host = json_object();
    json_t *labels = NULL;
    int r;

    json_object_set_new(root, "HostConfig", host);
    if (in->image == NULL || in->image[0] == '\0')
        return orch_fail(err, ORCH_E_INVALID, 0, "container create: no image");
    json_t *image = json_string(in->image);
    if (image == NULL)
        return orch_fail(err, ORCH_E_INVALID, 0, "container create: image is not UTF-8");
    json_object_set_new(root, "Image", image);
    if (!strv_utf8(&in->cmd) || !strv_utf8(&in->entrypoint))
        return orch_fail(err, ORCH_E_INVALID, 0, "container create: command is not UTF-8");
    if (in->cmd.n > 0)
        json_object_set_new(root, "Cmd", strv_to_json(&in->cmd));
    if (in->entrypoint.n > 0)
        json_object_set_new(root, "Entrypoint", strv_to_json(&in->entrypoint));

    json_t *env = json_array();
    json_object_set_new(root, "Env", env);
    for (size_t i = 0; i < in->env.n; i++) {
        const char *k = in->env.v[i].key, *v = in->env.v[i].value ? in->env.v[i].value : "";
        if (k == NULL || k[0] == '\0' || strchr(k, '=') != NULL)
            return orch_fail(err, ORCH_E_INVALID, 0,
                             "env '%s': a name must be non-empty and "
                             "without '='",
                             k ? k : "");
        _cleanup_free_ char *kv = orch_xasprintf("%s=%s", k, v);
        json_t *s = json_string(kv);
        if (s == NULL)
            return orch_fail(err, ORCH_E_INVALID, 0, "env '%s': not UTF-8", k);
        json_array_append_new(env, s);
    }

    r = labels_to_json(&in->labels, &labels, err);
    if (r < 0)
        return r;
    json_object_set_new(root, "Labels", labels);

    json_t *exposed = json_object(), *bindings = json_object();
    json_object_set_new(root, "ExposedPorts", exposed);
    json_object_set_new(host, "PortBindings", bindings);
    const char *addr = in->publish_address ? in->publish_address : "127.0.0.1";
    for (size_t i = 0; i < in->n_ports; i++) {
        const struct docker_port_spec *p = &in->ports[i];
        const char *proto = p->protocol ? p->protocol : "tcp";
        if (p->port < 1 || p->port > 65535)
            return orch_fail(err, ORCH_E_INVALID, 0, "port %d: out of range 1..65535", p->port);
        if (strcmp(proto, "tcp") != 0 && strcmp(proto, "udp") != 0)
            return orch_fail(err, ORCH_E_INVALID, 0, "port %d: protocol '%s' is not tcp or udp",
                             p->port, proto);
        char key[16];
        snprintf(key, sizeof(key), "%d/%s", p->port, proto);
        if (json_object_get(exposed, key) != NULL)
            return orch_fail(err, ORCH_E_INVALID, 0, "port %s: declared twice", key);
        json_object_set_new(exposed, key, json_object());
        /* HostPort "" lets the engine choose a free host port: instances never collide. */
        json_t *b = json_pack("[{s:s, s:s}]", "HostIp", addr, "HostPort", "");
        if (b == NULL)
            return orch_fail(err, ORCH_E_INVALID, 0, "publish address is not UTF-8");
        json_object_set_new(bindings, key, b);
    }

    if (in->nano_cpus < 0 || in->memory_bytes < 0)
        return orch_fail(err, ORCH_E_INVALID, 0, "container create: negative resource limit");
    if (in->nano_cpus > 0)
        json_object_set_new(host, "NanoCpus", json_integer(in->nano_cpus));
    if (in->memory_bytes > 0)
        json_object_set_new(host, "Memory", json_integer(in->memory_bytes));

    json_t *mounts = json_array();
    json_object_set_new(host, "Mounts", mounts);
    for (size_t i = 0; i < in->n_mounts; i++) {
        const struct docker_mount *m = &in->mounts[i];
        if (m->source == NULL || m->source[0] == '\0' || m->target == NULL || m->target[0] != '/')
            return orch_fail(err, ORCH_E_INVALID, 0,
                             "mount %zu: needs a source and an absolute target", i + 1);
        if (m->type == DOCKER_MOUNT_BIND && m->source[0] != '/')
            return orch_fail(err, ORCH_E_INVALID, 0,
                             "bind mount %s: the host path must be absolute", m->source);
        json_t *jm = json_pack("{s:s, s:s?, s:s?, s:b}", "Type",
                               m->type == DOCKER_MOUNT_BIND ? "bind" : "volume", "Source",
                               m->source, "Target", m->target, "ReadOnly", m->read_only);
        if (jm == NULL)
            return orch_fail(err, ORCH_E_INVALID, 0, "mount %zu: not UTF-8", i + 1);
        json_array_append_new(mounts, jm);
    }

    /* orch replaces failed instances itself, with backoff; the engine must not race it. */
    json_object_set_new(host, "RestartPolicy", json_pack("{s:s}", "Name", "no"));

    if (in->network != NULL) {
        json_t *ep = json_object();
        if (in->network_alias != NULL) {
            json_t *alias = json_string(in->network_alias);
            if (alias == NULL) {
                json_decref(ep);
                return orch_fail(err, ORCH_E_INVALID, 0, "network alias is not UTF-8");
            }
            json_object_set_new(ep, "Aliases", json_pack("[o]", alias));
        }
        json_t *eps = json_object();
        if (json_object_set_new(eps, in->network, ep) < 0) {
            json_decref(eps);
            return orch_fail(err, ORCH_E_INVALID, 0, "network name is not UTF-8");
        }
        /* Like `docker run --network X`: X is the primary network, not the default bridge. */
        json_object_set_new(host, "NetworkMode", json_string(in->network));
        json_object_set_new(root, "NetworkingConfig", json_pack("{s:o}", "EndpointsConfig", eps));
    }

    if (in->has_stop_grace) {
        if (in->stop_grace_ms < 0 || in->stop_grace_ms > (int64_t)INT_MAX * 1000)
            return orch_fail(err, ORCH_E_INVALID, 0, "stop grace out of range");
        json_object_set_new(root, "StopTimeout", json_integer((in->stop_grace_ms + 999) / 1000));
    }
    return dump(root, out, err);
}

int docker_json_exec_create(const struct orch_strv *cmd, char **out, struct orch_error *err)
{
    if (cmd->n == 0)
        return orch_fail(err, ORCH_E_INVALID, 0, "exec: empty command");
    if (!strv_utf8(cmd))
        return orch_fail(err, ORCH_E_INVALID, 0, "exec: command is not UTF-8");
    _cleanup_json_ json_t *root =
        json_pack("{s:o, s:b, s:b, s:b, s:b}", "Cmd", strv_to_json(cmd), "AttachStdin", 0,
                  "AttachStdout", 0, "AttachStderr", 0, "Tty", 0);
    return dump(root, out, err);
}

char *docker_json_exec_start(void)
{
    return orch_xstrdup("{\"Detach\":true,\"Tty\":false}");
}

static int named_create(const char *kind, const char *name, const struct docker_kvs *labels,
                        json_t *root, char **out, struct orch_error *err)
{
    json_t *jl = NULL;
    json_t *jn = name ? json_string(name) : NULL;
    if (jn == NULL || name[0] == '\0') {
        json_decref(jn);
        return orch_fail(err, ORCH_E_INVALID, 0, "%s create: empty or non-UTF-8 name", kind);
    }
    json_object_set_new(root, "Name", jn);
    if (labels != NULL) {
        int r = labels_to_json(labels, &jl, err);
        if (r < 0)
            return r;
        json_object_set_new(root, "Labels", jl);
    }
    return dump(root, out, err);
}

int docker_json_network_create(const char *name, const struct docker_kvs *labels, char **out,
                               struct orch_error *err)
{
    /* CheckDuplicate: the engine otherwise happily creates two networks with one name. */
    _cleanup_json_ json_t *root =
        json_pack("{s:s, s:b, s:b}", "Driver", "bridge", "CheckDuplicate", 1, "Attachable", 0);
    return named_create("network", name, labels, root, out, err);
}

int docker_json_volume_create(const char *name, const struct docker_kvs *labels, char **out,
                              struct orch_error *err)
{
    _cleanup_json_ json_t *root = json_pack("{s:s}", "Driver", "local");
    return named_create("volume", name, labels, root, out, err);
}

/* ---- query strings ------------------------------------------------------------------------ */

char *docker_url_escape(const char *s, bool keep_path_chars)
{
    static const char hex[] = "0123456789ABCDEF";
    struct orch_buf b = {0};
    orch_buf_puts(&b, "");
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (isalnum(*p) || *p == '-' || *p == '.' || *p == '_' || *p == '~' ||
            (keep_path_chars && (*p == '/' || *p == ':' || *p == '@'))) {
            orch_buf_putc(&b, (char)*p);
        } else {
            char enc[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            orch_buf_append(&b, enc, 3);
        }
    }
    return orch_buf_steal(&b);
}

char *docker_label_filter(const char *const *labels, size_t n)
{
    return docker_name_label_filter(NULL, labels, n);
}

char *docker_name_label_filter(const char *name, const char *const *labels, size_t n)
{
    _cleanup_json_ json_t *arr = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_string(labels[i]);
        if (s != NULL)
            json_array_append_new(arr, s);
    }
    _cleanup_json_ json_t *root = json_pack("{s:O}", "label", arr);
    json_t *jn = name != NULL ? json_string(name) : NULL;
    if (jn != NULL)
        json_object_set_new(root, "name", json_pack("[o]", jn));
    char *text = json_dumps(root, JSON_COMPACT);
    char *escaped = docker_url_escape(text ? text : "{}", false);
    free(text);
    return escaped;
}

/* ---- field readers ------------------------------------------------------------------------ */

static json_t *load(const char *body, size_t len, const char *what, struct orch_error *err)
{
    json_error_t je;
    if (body == NULL)
        body = "";
    json_t *j = json_loadb(body, len, JSON_REJECT_DUPLICATES, &je);
    if (j == NULL)
        orch_fail(err, ORCH_E_DOCKER, 0, "%s: invalid JSON from the engine: %s (at %d:%d)", what,
                  je.text, je.line, je.column);
    return j;
}

static int want_object(json_t *j, const char *what, struct orch_error *err)
{
    if (!json_is_object(j))
        return orch_fail(err, ORCH_E_DOCKER, 0, "%s: expected a JSON object", what);
    return 0;
}

/* Absent or null: *out = NULL (or an error when required). */
static int get_str(json_t *o, const char *key, bool required, char **out, const char *what,
                   struct orch_error *err)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL || json_is_null(v)) {
        if (required)
            return orch_fail(err, ORCH_E_DOCKER, 0, "%s: missing \"%s\"", what, key);
        return 0;
    }
    if (!json_is_string(v))
        return orch_fail(err, ORCH_E_DOCKER, 0, "%s: \"%s\" is not a string", what, key);
    if (required && json_string_length(v) == 0)
        return orch_fail(err, ORCH_E_DOCKER, 0, "%s: \"%s\" is empty", what, key);
    *out = orch_xstrndup(json_string_value(v), json_string_length(v));
    return 0;
}

static int get_int(json_t *o, const char *key, int64_t min, int64_t max, int64_t *out,
                   const char *what, struct orch_error *err)
{
    json_t *v = json_object_get(o, key);
    *out = 0;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_integer(v))
        return orch_fail(err, ORCH_E_DOCKER, 0, "%s: \"%s\" is not an integer", what, key);
    json_int_t i = json_integer_value(v);
    if (i < min || i > max)
        return orch_fail(err, ORCH_E_DOCKER, 0,
                         "%s: \"%s\" = %" JSON_INTEGER_FORMAT " is out of range", what, key, i);
    *out = (int64_t)i;
    return 0;
}

static int get_bool(json_t *o, const char *key, bool *out, const char *what, struct orch_error *err)
{
    json_t *v = json_object_get(o, key);
    *out = false;
    if (v == NULL || json_is_null(v))
        return 0;
    if (!json_is_boolean(v))
        return orch_fail(err, ORCH_E_DOCKER, 0, "%s: \"%s\" is not a boolean", what, key);
    *out = json_is_true(v);
    return 0;
}

/* Absent or null: *out = NULL; otherwise must be an object (or array when is_array). */
static int get_container(json_t *o, const char *key, bool is_array, json_t **out, const char *what,
                         struct orch_error *err)
{
    json_t *v = json_object_get(o, key);
    *out = NULL;
    if (v == NULL || json_is_null(v))
        return 0;
    if (is_array ? !json_is_array(v) : !json_is_object(v))
        return orch_fail(err, ORCH_E_DOCKER, 0, "%s: \"%s\" is not an %s", what, key,
                         is_array ? "array" : "object");
    *out = v;
    return 0;
}

static int get_labels(json_t *o, const char *key, struct docker_kvs *out, const char *what,
                      struct orch_error *err)
{
    json_t *m, *v;
    const char *k;
    int r = get_container(o, key, false, &m, what, err);
    if (r < 0 || m == NULL)
        return r;
    json_object_foreach(m, k, v)
    {
        if (!json_is_string(v))
            return orch_fail(err, ORCH_E_DOCKER, 0, "%s: %s[\"%s\"] is not a string", what, key, k);
        docker_kvs_add(out, k, json_string_value(v));
    }
    if (out->n > 1)
        qsort(out->v, out->n, sizeof(*out->v), kv_cmp);
    return 0;
}

static int get_strv(json_t *o, const char *key, struct orch_strv *out, const char *what,
                    struct orch_error *err)
{
    json_t *a, *v;
    size_t i;
    int r = get_container(o, key, true, &a, what, err);
    if (r < 0 || a == NULL)
        return r;
    json_array_foreach(a, i, v)
    {
        if (!json_is_string(v))
            return orch_fail(err, ORCH_E_DOCKER, 0, "%s: %s[%zu] is not a string", what, key, i);
        orch_strv_push(out, json_string_value(v));
    }
    return 0;
}

/* "32768" -> 32768; -1 unless all digits in 1..65535. */
static int port_str(const char *s, int *out)
{
    int v = 0;
    size_t n = strlen(s);
    if (n == 0 || n > 5 || digits(s, (int)n, &v) < 0 || v < 1 || v > 65535)
        return -1;
    *out = v;
    return 0;
}

/* "8080/tcp" -> 8080, "tcp". */
static int parse_port_key(const char *key, int *port, char **proto)
{
    char *end;
    long p = strtol(key, &end, 10);
    if (end == key || *end != '/' || p < 1 || p > 65535 || end[1] == '\0')
        return -1;
    *port = (int)p;
    *proto = orch_xstrdup(end + 1);
    return 0;
}

/* ---- version and errors ------------------------------------------------------------------- */

int docker_api_version_parse(const char *s, struct docker_api_version *out, struct orch_error *err)
{
    int major = 0, minor = 0, n = 0;
    if (s == NULL || sscanf(s, "%3d.%3d%n", &major, &minor, &n) != 2 || s[n] != '\0' ||
        !isdigit((unsigned char)s[0]) || major < 0 || minor < 0)
        return orch_fail(err, ORCH_E_DOCKER, 0, "engine API version '%s' is not MAJOR.MINOR",
                         s ? s : "(none)");
    out->major = major;
    out->minor = minor;
    return 0;
}

static int version_cmp(struct docker_api_version a, struct docker_api_version b)
{
    if (a.major != b.major)
        return a.major < b.major ? -1 : 1;
    return a.minor < b.minor ? -1 : a.minor > b.minor;
}

int docker_api_version_negotiate(struct docker_api_version engine, struct docker_api_version min,
                                 struct docker_api_version max, struct docker_api_version *out,
                                 struct orch_error *err)
{
    if (version_cmp(engine, min) < 0)
        return orch_fail(err, ORCH_E_ENV, 0,
                         "the Docker engine speaks API %d.%d; orch needs %d.%d or newer "
                         "(Docker 19.03 or later)",
                         engine.major, engine.minor, min.major, min.minor);
    *out = version_cmp(engine, max) < 0 ? engine : max;
    return 0;
}

char *docker_json_error_message(const char *body, size_t len)
{
    json_error_t je;
    if (body == NULL || len == 0)
        return NULL;
    _cleanup_json_ json_t *j = json_loadb(body, len, 0, &je);
    json_t *m = json_object_get(j, "message");
    if (!json_is_string(m))
        return NULL;
    /* Engine messages end up in terminals and logs: no control characters. */
    char *s = orch_xstrndup(json_string_value(m), json_string_length(m));
    for (char *p = s; *p; p++)
        if ((unsigned char)*p < 0x20 || *p == 0x7f)
            *p = ' ';
    return s;
}

bool docker_status_is_transient(long status)
{
    return status == 500 || status == 502 || status == 503;
}

int docker_status_to_error(long status, const char *body, size_t len, const char *what,
                           struct orch_error *err)
{
    if ((status >= 200 && status < 300) || status == 304)
        return 0;
    _cleanup_free_ char *msg = docker_json_error_message(body, len);
    const char *m = msg ? msg : "(no message)";
    if (status == 404) {
        /* "No such image: X" (create) or "no such image: X: No such image: X" (inspect). */
        if (strncasecmp(m, "no such image: ", 15) == 0) {
            const char *name = m + 15;
            const char *end = strstr(name, ": ");
            int n = end ? (int)(end - name) : (int)strlen(name);
            return orch_fail(err, ORCH_E_NOTFOUND, 0,
                             "%s: no such image: %.*s (orch never pulls images: build or pull it "
                             "first)",
                             what, n, name);
        }
        return orch_fail(err, ORCH_E_NOTFOUND, 0, "%s: %s", what, m);
    }
    if (status == 409)
        return orch_fail(err, ORCH_E_DOCKER, 0, "%s: conflict: %s", what, m);
    if (docker_status_is_transient(status))
        return orch_fail(err, ORCH_E_TRANSIENT, 0, "%s: engine error (HTTP %ld): %s", what, status,
                         m);
    return orch_fail(err, ORCH_E_DOCKER, 0, "%s: the engine refused (HTTP %ld): %s", what, status,
                     m);
}

/* ---- container list ----------------------------------------------------------------------- */

static void container_free(struct docker_container *c)
{
    free(c->id);
    orch_strv_free(&c->names);
    free(c->image);
    docker_kvs_free(&c->labels);
    free(c->state);
    free(c->status);
    for (size_t i = 0; i < c->n_ports; i++) {
        free(c->ports[i].ip);
        free(c->ports[i].type);
    }
    free(c->ports);
    orch_strv_free(&c->networks);
    *c = (struct docker_container){0};
}

static int parse_container(json_t *o, struct docker_container *c, struct orch_error *err)
{
    const char *w = "container list";
    struct orch_strv names = {0};
    json_t *ports, *p;
    size_t i;
    int64_t v;
    int r;

    if ((r = want_object(o, w, err)) < 0 || (r = get_str(o, "Id", true, &c->id, w, err)) < 0 ||
        (r = get_strv(o, "Names", &names, w, err)) < 0 ||
        (r = get_str(o, "Image", false, &c->image, w, err)) < 0 ||
        (r = get_labels(o, "Labels", &c->labels, w, err)) < 0 ||
        (r = get_str(o, "State", false, &c->state, w, err)) < 0 ||
        (r = get_str(o, "Status", false, &c->status, w, err)) < 0 ||
        (r = get_int(o, "Created", 0, INT64_MAX / 1000, &c->created, w, err)) < 0 ||
        (r = get_container(o, "Ports", true, &ports, w, err)) < 0) {
        orch_strv_free(&names);
        return r;
    }
    for (size_t k = 0; k < names.n; k++)
        orch_strv_push(&c->names, names.v[k][0] == '/' ? names.v[k] + 1 : names.v[k]);
    orch_strv_free(&names);
    json_t *ns = NULL, *nets = NULL, *nv;
    const char *nk;
    if ((r = get_container(o, "NetworkSettings", false, &ns, w, err)) < 0 ||
        (ns != NULL && (r = get_container(ns, "Networks", false, &nets, w, err)) < 0))
        return r;
    c->has_networks = nets != NULL;
    json_object_foreach(nets, nk, nv) orch_strv_push(&c->networks, nk);
    if (ports == NULL)
        return 0;
    c->ports = orch_xcalloc(json_array_size(ports), sizeof(*c->ports));
    json_array_foreach(ports, i, p)
    {
        struct docker_port *dp = &c->ports[c->n_ports++];
        if ((r = want_object(p, "container list: Ports[]", err)) < 0 ||
            (r = get_str(p, "IP", false, &dp->ip, w, err)) < 0 ||
            (r = get_str(p, "Type", false, &dp->type, w, err)) < 0 ||
            (r = get_int(p, "PrivatePort", 0, 65535, &v, w, err)) < 0)
            return r;
        dp->private_port = (int)v;
        if ((r = get_int(p, "PublicPort", 0, 65535, &v, w, err)) < 0)
            return r;
        dp->public_port = (int)v;
    }
    return 0;
}

int docker_json_parse_container_list(const char *body, size_t len,
                                     struct docker_container_list *out, struct orch_error *err)
{
    _cleanup_json_ json_t *j = load(body, len, "container list", err);
    struct docker_container_list l = {0};
    json_t *o;
    size_t i;

    *out = l;
    if (j == NULL)
        return -err->code;
    if (!json_is_array(j))
        return orch_fail(err, ORCH_E_DOCKER, 0, "container list: expected a JSON array");
    l.v = orch_xcalloc(json_array_size(j), sizeof(*l.v));
    json_array_foreach(j, i, o)
    {
        int r = parse_container(o, &l.v[l.n++], err);
        if (r < 0) {
            docker_container_list_free(&l);
            return r;
        }
    }
    *out = l;
    return 0;
}

void docker_container_list_free(struct docker_container_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        container_free(&l->v[i]);
    free(l->v);
    *l = (struct docker_container_list){0};
}

/* ---- container inspect -------------------------------------------------------------------- */

void docker_container_info_free(struct docker_container_info *ci)
{
    free(ci->id);
    free(ci->name);
    free(ci->image);
    free(ci->status);
    free(ci->error);
    free(ci->started_at);
    free(ci->finished_at);
    free(ci->health);
    docker_kvs_free(&ci->labels);
    for (size_t i = 0; i < ci->n_ports; i++) {
        free(ci->ports[i].protocol);
        free(ci->ports[i].host_ip);
    }
    free(ci->ports);
    for (size_t i = 0; i < ci->n_networks; i++) {
        free(ci->networks[i].network);
        free(ci->networks[i].ip_address);
    }
    free(ci->networks);
    *ci = (struct docker_container_info){0};
}

static int parse_inspect_ports(json_t *ports, struct docker_container_info *ci,
                               struct orch_error *err)
{
    const char *w = "container inspect: NetworkSettings.Ports";
    const char *key;
    json_t *bindings;
    int r;

    json_object_foreach(ports, key, bindings)
    {
        int port;
        char *proto;
        if (parse_port_key(key, &port, &proto) < 0)
            return orch_fail(err, ORCH_E_DOCKER, 0, "%s: bad port key \"%s\"", w, key);
        size_t nb = json_is_array(bindings) ? json_array_size(bindings) : 0;
        if (!json_is_null(bindings) && !json_is_array(bindings)) {
            free(proto);
            return orch_fail(err, ORCH_E_DOCKER, 0, "%s[\"%s\"] is not an array", w, key);
        }
        /* An exposed but unbound port still gets one row, with no host side. */
        size_t rows = nb ? nb : 1;
        ci->ports = orch_xrealloc(ci->ports, (ci->n_ports + rows) * sizeof(*ci->ports));
        for (size_t i = 0; i < rows; i++) {
            struct docker_port_binding *pb = &ci->ports[ci->n_ports++];
            *pb = (struct docker_port_binding){.container_port = port};
            pb->protocol = i == 0 ? proto : orch_xstrdup(proto);
            if (nb == 0)
                continue;
            json_t *b = json_array_get(bindings, i);
            char *host_port = NULL;
            if ((r = want_object(b, w, err)) < 0 ||
                (r = get_str(b, "HostIp", false, &pb->host_ip, w, err)) < 0 ||
                (r = get_str(b, "HostPort", false, &host_port, w, err)) < 0)
                return r;
            if (host_port != NULL && host_port[0] != '\0' &&
                port_str(host_port, &pb->host_port) < 0) {
                r = orch_fail(err, ORCH_E_DOCKER, 0, "%s: bad HostPort \"%s\"", w, host_port);
                free(host_port);
                return r;
            }
            free(host_port);
        }
    }
    return 0;
}

int docker_json_parse_container_info(const char *body, size_t len,
                                     struct docker_container_info *out, struct orch_error *err)
{
    const char *w = "container inspect";
    _cleanup_json_ json_t *j = load(body, len, w, err);
    struct docker_container_info ci = {0};
    json_t *state, *config, *net, *ports, *networks, *health;
    int64_t v;
    int r;

    *out = ci;
    if (j == NULL)
        return -err->code;
    if ((r = want_object(j, w, err)) < 0 || (r = get_str(j, "Id", true, &ci.id, w, err)) < 0 ||
        (r = get_str(j, "Name", false, &ci.name, w, err)) < 0 ||
        (r = get_int(j, "RestartCount", 0, INT_MAX, &v, w, err)) < 0)
        goto fail;
    ci.restart_count = (int)v;
    if (ci.name != NULL && ci.name[0] == '/')
        memmove(ci.name, ci.name + 1, strlen(ci.name));

    if ((r = get_container(j, "State", false, &state, w, err)) < 0)
        goto fail;
    if (state == NULL) {
        r = orch_fail(err, ORCH_E_DOCKER, 0, "%s: missing \"State\"", w);
        goto fail;
    }
    if ((r = get_str(state, "Status", true, &ci.status, "State", err)) < 0 ||
        (r = get_bool(state, "Running", &ci.running, "State", err)) < 0 ||
        (r = get_bool(state, "OOMKilled", &ci.oom_killed, "State", err)) < 0 ||
        (r = get_int(state, "ExitCode", INT_MIN, INT_MAX, &v, "State", err)) < 0)
        goto fail;
    ci.exit_code = (int)v;
    if ((r = get_str(state, "Error", false, &ci.error, "State", err)) < 0 ||
        (r = get_str(state, "StartedAt", false, &ci.started_at, "State", err)) < 0 ||
        (r = get_str(state, "FinishedAt", false, &ci.finished_at, "State", err)) < 0)
        goto fail;
    if ((ci.started_at && (r = docker_time_parse(ci.started_at, &ci.started_at_ms, err)) < 0) ||
        (ci.finished_at && (r = docker_time_parse(ci.finished_at, &ci.finished_at_ms, err)) < 0))
        goto fail;
    if ((r = get_container(state, "Health", false, &health, "State", err)) < 0 ||
        (health && (r = get_str(health, "Status", false, &ci.health, "State.Health", err)) < 0))
        goto fail;

    if ((r = get_container(j, "Config", false, &config, w, err)) < 0 ||
        (config && (r = get_str(config, "Image", false, &ci.image, "Config", err)) < 0) ||
        (config && (r = get_labels(config, "Labels", &ci.labels, "Config", err)) < 0))
        goto fail;

    if ((r = get_container(j, "NetworkSettings", false, &net, w, err)) < 0)
        goto fail;
    if (net != NULL) {
        if ((r = get_container(net, "Ports", false, &ports, "NetworkSettings", err)) < 0 ||
            (ports && (r = parse_inspect_ports(ports, &ci, err)) < 0) ||
            (r = get_container(net, "Networks", false, &networks, "NetworkSettings", err)) < 0)
            goto fail;
        if (networks != NULL) {
            const char *name;
            json_t *n;
            ci.networks = orch_xcalloc(json_object_size(networks), sizeof(*ci.networks));
            json_object_foreach(networks, name, n)
            {
                struct docker_network_attachment *a = &ci.networks[ci.n_networks++];
                a->network = orch_xstrdup(name);
                if ((r = want_object(n, "NetworkSettings.Networks", err)) < 0 ||
                    (r = get_str(n, "IPAddress", false, &a->ip_address, "NetworkSettings.Networks",
                                 err)) < 0)
                    goto fail;
                if (a->ip_address == NULL)
                    a->ip_address = orch_xstrdup("");
            }
        }
    }
    *out = ci;
    return 0;
fail:
    docker_container_info_free(&ci);
    return r;
}

/* ---- small answers ------------------------------------------------------------------------ */

int docker_json_parse_id(const char *body, size_t len, char **id, struct orch_error *err)
{
    _cleanup_json_ json_t *j = load(body, len, "create", err);
    *id = NULL;
    if (j == NULL)
        return -err->code;
    int r = want_object(j, "create", err);
    return r < 0 ? r : get_str(j, "Id", true, id, "create", err);
}

int docker_json_parse_image_info(const char *body, size_t len, struct docker_image_info *out,
                                 struct orch_error *err)
{
    _cleanup_json_ json_t *j = load(body, len, "image inspect", err);
    struct docker_image_info ii = {0};
    int r;
    *out = ii;
    if (j == NULL)
        return -err->code;
    if ((r = want_object(j, "image inspect", err)) < 0 ||
        (r = get_str(j, "Id", true, &ii.id, "image inspect", err)) < 0 ||
        (r = get_strv(j, "RepoTags", &ii.repo_tags, "image inspect", err)) < 0) {
        docker_image_info_free(&ii);
        return r;
    }
    *out = ii;
    return 0;
}

void docker_image_info_free(struct docker_image_info *ii)
{
    free(ii->id);
    orch_strv_free(&ii->repo_tags);
    *ii = (struct docker_image_info){0};
}

static int endpoint_cmp(const void *a, const void *b)
{
    return strcmp(((const struct docker_network_endpoint *)a)->id,
                  ((const struct docker_network_endpoint *)b)->id);
}

/* "Containers": {"<id>": {"Name": ..., "IPv4Address": ...}, ...}; absent, null or {} = none. */
static int parse_network_containers(json_t *j, struct docker_network *n, struct orch_error *err)
{
    const char *w = "network Containers";
    json_t *m, *v;
    const char *id;
    int r = get_container(j, "Containers", false, &m, "network", err);
    if (r < 0 || m == NULL)
        return r;
    n->containers = orch_xcalloc(json_object_size(m) + 1, sizeof(*n->containers));
    json_object_foreach(m, id, v)
    {
        if (id[0] == '\0')
            return orch_fail(err, ORCH_E_DOCKER, 0, "%s: empty container id", w);
        struct docker_network_endpoint *e = &n->containers[n->n_containers++];
        e->id = orch_xstrdup(id);
        char *name = NULL;
        if ((r = want_object(v, w, err)) < 0 ||
            (r = get_str(v, "Name", false, &name, w, err)) < 0 ||
            (r = get_str(v, "IPv4Address", false, &e->ipv4, w, err)) < 0)
            return r;
        e->name = orch_xstrdup(name && name[0] == '/' ? name + 1 : name);
        free(name);
        if (e->ipv4 != NULL && e->ipv4[0] == '\0') {
            free(e->ipv4);
            e->ipv4 = NULL;
        }
    }
    if (n->n_containers > 1)
        qsort(n->containers, n->n_containers, sizeof(*n->containers), endpoint_cmp);
    return 0;
}

static int parse_network_obj(json_t *j, struct docker_network *n, struct orch_error *err)
{
    const char *w = "network";
    int r;
    if ((r = want_object(j, w, err)) < 0 || (r = get_str(j, "Id", true, &n->id, w, err)) < 0 ||
        (r = get_str(j, "Name", true, &n->name, w, err)) < 0 ||
        (r = get_str(j, "Driver", false, &n->driver, w, err)) < 0 ||
        (r = get_str(j, "Created", false, &n->created, w, err)) < 0 ||
        (r = get_labels(j, "Labels", &n->labels, w, err)) < 0 ||
        (r = parse_network_containers(j, n, err)) < 0)
        return r;
    return 0;
}

int docker_json_parse_network(const char *body, size_t len, struct docker_network *out,
                              struct orch_error *err)
{
    _cleanup_json_ json_t *j = load(body, len, "network inspect", err);
    struct docker_network n = {0};
    *out = n;
    if (j == NULL)
        return -err->code;
    int r = parse_network_obj(j, &n, err);
    if (r < 0) {
        docker_network_free(&n);
        return r;
    }
    *out = n;
    return 0;
}

void docker_network_free(struct docker_network *n)
{
    free(n->id);
    free(n->name);
    free(n->driver);
    free(n->created);
    docker_kvs_free(&n->labels);
    for (size_t i = 0; i < n->n_containers; i++) {
        free(n->containers[i].id);
        free(n->containers[i].name);
        free(n->containers[i].ipv4);
    }
    free(n->containers);
    *n = (struct docker_network){0};
}

int docker_json_parse_network_list(const char *body, size_t len, struct docker_network_list *out,
                                   struct orch_error *err)
{
    _cleanup_json_ json_t *j = load(body, len, "network list", err);
    struct docker_network_list l = {0};
    json_t *o;
    size_t i;
    *out = l;
    if (j == NULL)
        return -err->code;
    if (!json_is_array(j))
        return orch_fail(err, ORCH_E_DOCKER, 0, "network list: expected a JSON array");
    l.v = orch_xcalloc(json_array_size(j), sizeof(*l.v));
    json_array_foreach(j, i, o)
    {
        int r = parse_network_obj(o, &l.v[l.n++], err);
        if (r < 0) {
            docker_network_list_free(&l);
            return r;
        }
    }
    *out = l;
    return 0;
}

void docker_network_list_free(struct docker_network_list *l)
{
    for (size_t i = 0; i < l->n; i++)
        docker_network_free(&l->v[i]);
    free(l->v);
    *l = (struct docker_network_list){0};
}

size_t docker_network_list_keep_name(struct docker_network_list *l, const char *name)
{
    if (name == NULL)
        return l->n;
    size_t kept = 0;
    for (size_t i = 0; i < l->n; i++) {
        if (l->v[i].name != NULL && strcmp(l->v[i].name, name) == 0)
            l->v[kept++] = l->v[i];
        else
            docker_network_free(&l->v[i]);
    }
    l->n = kept;
    return kept;
}

int docker_json_parse_volume_names(const char *body, size_t len, struct orch_strv *out,
                                   struct orch_error *err)
{
    const char *w = "volume list";
    _cleanup_json_ json_t *j = load(body, len, w, err);
    struct orch_strv names = {0};
    json_t *vols, *v;
    size_t i;
    int r;
    if (j == NULL)
        return -err->code;
    if ((r = want_object(j, w, err)) < 0 ||
        (r = get_container(j, "Volumes", true, &vols, w, err)) < 0)
        return r;
    if (vols != NULL) {
        json_array_foreach(vols, i, v)
        {
            char *name = NULL;
            if ((r = want_object(v, w, err)) < 0 ||
                (r = get_str(v, "Name", true, &name, w, err)) < 0) {
                orch_strv_free(&names);
                return r;
            }
            orch_strv_push(&names, name);
            free(name);
        }
    }
    for (i = 0; i < names.n; i++)
        orch_strv_push(out, names.v[i]);
    orch_strv_free(&names);
    return 0;
}

int docker_json_parse_exec_info(const char *body, size_t len, struct docker_exec_info *out,
                                struct orch_error *err)
{
    const char *w = "exec inspect";
    _cleanup_json_ json_t *j = load(body, len, w, err);
    struct docker_exec_info ei = {0};
    int64_t v;
    int r;
    *out = ei;
    if (j == NULL)
        return -err->code;
    if ((r = want_object(j, w, err)) < 0 || (r = get_bool(j, "Running", &ei.running, w, err)) < 0 ||
        (r = get_int(j, "ExitCode", INT_MIN, INT_MAX, &v, w, err)) < 0)
        goto fail;
    ei.exit_code = (int)v;
    if ((r = get_int(j, "Pid", 0, INT_MAX, &v, w, err)) < 0)
        goto fail;
    ei.pid = (int)v;
    if ((r = get_str(j, "ContainerID", false, &ei.container_id, w, err)) < 0)
        goto fail;
    *out = ei;
    return 0;
fail:
    docker_exec_info_free(&ei);
    return r;
}

void docker_exec_info_free(struct docker_exec_info *ei)
{
    free(ei->container_id);
    *ei = (struct docker_exec_info){0};
}

int docker_json_parse_event(const char *line, size_t len, struct docker_event *out,
                            struct orch_error *err)
{
    const char *w = "event";
    _cleanup_json_ json_t *j = load(line, len, w, err);
    struct docker_event ev = {0};
    json_t *actor;
    int r;
    *out = ev;
    if (j == NULL)
        return -err->code;
    if ((r = want_object(j, w, err)) < 0 || (r = get_str(j, "Type", true, &ev.type, w, err)) < 0 ||
        (r = get_str(j, "Action", true, &ev.action, w, err)) < 0 ||
        (r = get_int(j, "timeNano", 0, INT64_MAX, &ev.time_nano, w, err)) < 0 ||
        (r = get_container(j, "Actor", false, &actor, w, err)) < 0 ||
        (actor && (r = get_str(actor, "ID", false, &ev.actor_id, "event Actor", err)) < 0) ||
        (actor && (r = get_labels(actor, "Attributes", &ev.attributes, "event Actor", err)) < 0)) {
        docker_event_free(&ev);
        return r;
    }
    *out = ev;
    return 0;
}

void docker_event_free(struct docker_event *ev)
{
    free(ev->type);
    free(ev->action);
    free(ev->actor_id);
    docker_kvs_free(&ev->attributes);
    *ev = (struct docker_event){0};
}

/* ---- time --------------------------------------------------------------------------------- */

/* Days since 1970-01-01 of a proleptic Gregorian date (the era arithmetic of civil calendars). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

static int digits(const char *s, int n, int *out)
{
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (!isdigit((unsigned char)s[i]))
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

int docker_time_parse(const char *s, int64_t *out_ms, struct orch_error *err)
{
    int y, mo, d, h, mi, sec, ms = 0;
    size_t n = strlen(s);
    const char *p = s + 19;

    if (n < 20 || digits(s, 4, &y) < 0 || s[4] != '-' || digits(s + 5, 2, &mo) < 0 || s[7] != '-' ||
        digits(s + 8, 2, &d) < 0 || (s[10] != 'T' && s[10] != 't') || digits(s + 11, 2, &h) < 0 ||
        s[13] != ':' || digits(s + 14, 2, &mi) < 0 || s[16] != ':' || digits(s + 17, 2, &sec) < 0 ||
        mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 || mi > 59 || sec > 60)
        goto bad;
    if (*p == '.') {
        int k = 0;
        for (p++; isdigit((unsigned char)*p); p++, k++)
            if (k < 3)
                ms = ms * 10 + (*p - '0');
        if (k == 0)
            goto bad;
        for (; k < 3; k++)
            ms *= 10;
    }
    int offset_min = 0;
    if (*p == 'Z' || *p == 'z') {
        p++;
    } else if (*p == '+' || *p == '-') {
        int oh, om;
        if (digits(p + 1, 2, &oh) < 0 || p[3] != ':' || digits(p + 4, 2, &om) < 0 || oh > 23 ||
            om > 59)
            goto bad;
        offset_min = (oh * 60 + om) * (*p == '-' ? -1 : 1);
        p += 6;
    } else {
        goto bad;
    }
    if (*p != '\0')
        goto bad;
    /* Go's zero time.Time, which the engine sends for "never started/finished". */
    if (y == 1) {
        *out_ms = 0;
        return 0;
    }
    int64_t secs =
        days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - (int64_t)offset_min * 60;
    *out_ms = secs * 1000 + ms;
    return 0;
bad:
    return orch_fail(err, ORCH_E_DOCKER, 0, "timestamp '%.40s' is not RFC 3339", s);
}

/* ---- line framing ------------------------------------------------------------------------- */

int docker_lines_feed(struct docker_lines *ls, const char *data, size_t len, docker_line_fn fn,
                      void *fn_data, struct orch_error *err)
{
    while (len > 0) {
        const char *nl = memchr(data, '\n', len);
        size_t chunk = nl ? (size_t)(nl - data) : len;
        if (ls->partial.len + chunk > ls->max_line)
            return orch_fail(err, ORCH_E_DOCKER, 0, "stream line longer than %zu bytes",
                             ls->max_line);
        orch_buf_append(&ls->partial, data, chunk);
        if (nl == NULL)
            return 0;
        data += chunk + 1;
        len -= chunk + 1;
        size_t n = ls->partial.len;
        if (n > 0 && ls->partial.data[n - 1] == '\r')
            ls->partial.data[--n] = '\0';
        ls->partial.len = 0;
        if (n == 0)
            continue;
        int r = fn(fn_data, ls->partial.data, n);
        if (r != 0)
            return r;
    }
    return 0;
}

void docker_lines_free(struct docker_lines *ls)
{
    orch_buf_free(&ls->partial);
}

char *docker_json_pull_error(const char *body, size_t len)
{
    /* the engine answers 200 and streams progress objects; a failure is an object with an
     * "error" member, usually the last one */
    char *found = NULL;
    size_t start = 0;
    for (size_t i = 0; i <= len; i++) {
        if (i < len && body[i] != '\n')
            continue;
        if (i > start) {
            json_t *o = json_loadb(body + start, i - start, 0, NULL);
            const char *e =
                json_is_object(o) ? json_string_value(json_object_get(o, "error")) : NULL;
            if (e != NULL) {
                free(found);
                found = orch_xstrdup(e);
            }
            json_decref(o);
        }
        start = i + 1;
    }
    return found;
}

bool docker_image_registry(const char *ref, char *out, size_t out_len)
{
    /* Docker's rule: the first path component names a registry when it has a '.' or a ':' or
     * is "localhost"; otherwise the image lives on Docker Hub. */
    const char *slash = strchr(ref, '/');
    if (slash == NULL)
        return false;
    size_t n = (size_t)(slash - ref);
    bool host = n > 0 && (memchr(ref, '.', n) != NULL || memchr(ref, ':', n) != NULL ||
                          (n == 9 && strncmp(ref, "localhost", 9) == 0));
    if (!host || n + 1 > out_len)
        return false;
    memcpy(out, ref, n);
    out[n] = '\0';
    return true;
}

bool docker_registry_allowed(const char *ref, const char *allowed)
{
    char host[256];
    if (allowed == NULL || *allowed == '\0' || !docker_image_registry(ref, host, sizeof(host)))
        return false;
    size_t hl = strlen(host);
    for (const char *p = allowed; *p;) {
        const char *end = strchr(p, ',');
        size_t n = end ? (size_t)(end - p) : strlen(p);
        while (n > 0 && *p == ' ') {
            p++;
            n--;
        }
        while (n > 0 && p[n - 1] == ' ')
            n--;
        if (n == hl && strncmp(p, host, n) == 0)
            return true;
        if (end == NULL)
            break;
        p = end + 1;
    }
    return false;
}
