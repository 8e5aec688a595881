/* A service as canonical JSON (sorted keys, compact, every default spelled out), its
 * template hash and the way back from JSON for the store. Owns the JSON shape of a service;
 * json_t never leaves this file. Template = everything but replicas, autoscale and published ports,
 * so a scale changes no hash (docs/spec.md, Revisions). */
#include <jansson.h>
#include <openssl/evp.h>
#include <string.h>

#include "base/util.h"
#include "spec/spec_internal.h"

/* The model holds UTF-8 from spec_parse or from jansson; anything else is a caller's bug. */
static json_t *jstr(const char *s)
{
    json_t *j = json_string(s);
    if (j == NULL) {
        fprintf(stderr, "orch: spec model holds a string that is not UTF-8\n");
        abort();
    }
    return j;
}

static json_t *jstr_or_null(const char *s)
{
    return s != NULL ? jstr(s) : json_null();
}

static json_t *jargv(char *const *argv, size_t n, bool present)
{
    if (!present)
        return json_null();
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, jstr(argv[i]));
    return a;
}

static json_t *jkv(const struct spec_kv *kv, size_t n)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++)
        json_object_set_new(o, kv[i].key, jstr(kv[i].value));
    return o;
}

static json_t *jpct(struct spec_scalar_or_pct p)
{
    if (!p.percent)
        return json_integer(p.value);
    char buf[16];
    snprintf(buf, sizeof(buf), "%d%%", p.value);
    return jstr(buf);
}

static const char *probe_kind_name(enum spec_probe_kind k)
{
    switch (k) {
    case SPEC_PROBE_HTTP:
        return "http";
    case SPEC_PROBE_TCP:
        return "tcp";
    case SPEC_PROBE_EXEC:
        return "exec";
    case SPEC_PROBE_NONE:
        break;
    }
    return "none";
}

static int strp_cmp(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static int bad(struct orch_error *err, const char *what, const json_error_t *je);

static json_t *template_json(const struct spec_service *svc)
{
    json_t *o = json_object();
    json_object_set_new(o, "name", jstr_or_null(svc->name));
    json_object_set_new(o, "image", jstr_or_null(svc->image));
    json_object_set_new(o, "command", jargv(svc->command, svc->command_len, svc->has_command));
    json_object_set_new(o, "entrypoint",
                        jargv(svc->entrypoint, svc->entrypoint_len, svc->has_entrypoint));
    json_object_set_new(o, "env", jkv(svc->env, svc->env_len));
    json_object_set_new(o, "labels", jkv(svc->labels, svc->labels_len));

    json_t *ports = json_array();
    for (size_t i = 0; i < svc->ports_len; i++) {
        const struct spec_port *p = &svc->ports[i];
        json_array_append_new(ports, json_pack("{s:o, s:i, s:s}", "name", jstr_or_null(p->name),
                                               "container", p->container, "protocol",
                                               p->protocol == SPEC_PROTO_UDP ? "udp" : "tcp"));
    }
    json_object_set_new(o, "ports", ports);

    const struct spec_health *h = &svc->health;
    json_t *health = json_object();
    json_object_set_new(health, "kind", jstr(probe_kind_name(h->kind)));
    json_object_set_new(health, "http",
                        jstr_or_null(h->kind == SPEC_PROBE_HTTP ? h->http_path : NULL));
    json_object_set_new(health, "exec",
                        jargv(h->exec_argv, h->exec_argc, h->kind == SPEC_PROBE_EXEC));
    bool has_port = h->kind == SPEC_PROBE_HTTP || h->kind == SPEC_PROBE_TCP;
    json_object_set_new(health, "port", jstr_or_null(has_port ? h->port : NULL));
    json_object_set_new(health, "interval_ms", json_integer(h->interval_ms));
    json_object_set_new(health, "timeout_ms", json_integer(h->timeout_ms));
    json_object_set_new(health, "retries", json_integer(h->retries));
    json_object_set_new(health, "start_period_ms", json_integer(h->start_period_ms));
    /* Only when it is not the default: templates written before the key existed keep their
     * hash (no new revision, no rolling restart, after an upgrade), and changing it is a
     * template change like interval. */
    if (h->start_interval_ms != SPEC_START_INTERVAL_MS)
        json_object_set_new(health, "start_interval_ms", json_integer(h->start_interval_ms));
    json_object_set_new(o, "health", health);

    const struct spec_update *u = &svc->update;
    json_t *update = json_object();
    json_object_set_new(update, "strategy",
                        jstr(u->strategy == SPEC_STRATEGY_RECREATE ? "recreate" : "rolling"));
    json_object_set_new(update, "max_surge", jpct(u->max_surge));
    json_object_set_new(update, "max_unavailable", jpct(u->max_unavailable));
    json_object_set_new(update, "min_ready_ms", json_integer(u->min_ready_ms));
    json_object_set_new(update, "deadline_ms", json_integer(u->deadline_ms));
    json_object_set_new(update, "auto_rollback", json_boolean(u->auto_rollback));
    json_object_set_new(update, "stop_grace_ms", json_integer(u->stop_grace_ms));
    json_object_set_new(o, "update", update);

    json_object_set_new(o, "resources",
                        json_pack("{s:I, s:I}", "nano_cpus", (json_int_t)svc->resources.nano_cpus,
                                  "memory_bytes", (json_int_t)svc->resources.memory_bytes));

    json_t *volumes = json_array();
    for (size_t i = 0; i < svc->volumes_len; i++) {
        const struct spec_volume *vol = &svc->volumes[i];
        json_array_append_new(volumes,
                              json_pack("{s:s, s:o, s:o, s:b}", "type",
                                        vol->kind == SPEC_VOLUME_BIND ? "bind" : "volume", "source",
                                        jstr_or_null(vol->source), "target",
                                        jstr_or_null(vol->target), "read_only", vol->read_only));
    }
    json_object_set_new(o, "volumes", volumes);

    /* depends_on is a set: its order in the file changes nothing. */
    char **deps = orch_xcalloc(svc->depends_on_len + 1, sizeof(char *));
    if (svc->depends_on_len > 0)
        memcpy(deps, svc->depends_on, svc->depends_on_len * sizeof(char *));
    qsort(deps, svc->depends_on_len, sizeof(char *), strp_cmp);
    json_object_set_new(o, "depends_on", jargv(deps, svc->depends_on_len, true));
    free(deps);
    return o;
}

static char *dump(json_t *o)
{
    char *s = json_dumps(o, JSON_SORT_KEYS | JSON_COMPACT);
    json_decref(o);
    if (s == NULL) {
        fprintf(stderr, "orch: cannot serialise a service\n");
        abort();
    }
    /* Hand out memory from our allocator, so callers free() it like any other string. */
    char *r = orch_xstrdup(s);
    free(s);
    return r;
}

char *spec_template_canonical(const struct spec_service *svc)
{
    return dump(template_json(svc));
}

/* The published ports of a service ({"publish": [...]} next to replicas; written only when a
 * port is published, so a service without one serialises as before). Not in the template:
 * serving a port on the host changes nothing in a container, so it makes no revision. */
static void publish_json_add(json_t *o, const struct spec_service *svc)
{
    json_t *a = json_array();
    for (size_t i = 0; i < svc->ports_len; i++) {
        const struct spec_port *p = &svc->ports[i];
        if (p->published <= 0)
            continue;
        json_array_append_new(
            a, json_pack("{s:o, s:i, s:s}", "port", jstr_or_null(p->name), "published",
                         p->published, "balance",
                         p->balance == SPEC_BALANCE_LEAST_CONN ? "least_conn" : "round_robin"));
    }
    if (json_array_size(a) > 0)
        json_object_set_new(o, "publish", a);
    else
        json_decref(a);
}

/* Reads "publish" (may be absent) onto the ports of svc, which read_template filled. */
static int publish_json_read(json_t *root, struct spec_service *svc, struct orch_error *err)
{
    json_t *a = json_object_get(root, "publish");
    if (a == NULL)
        return 0;
    if (!json_is_array(a))
        return bad(err, "publish", NULL);
    for (size_t i = 0; i < json_array_size(a); i++) {
        json_error_t je;
        const char *port, *balance;
        int published;
        if (json_unpack_ex(json_array_get(a, i), &je, JSON_STRICT, "{s:s, s:i, s:s}", "port", &port,
                           "published", &published, "balance", &balance) < 0)
            return bad(err, "publish", &je);
        struct spec_port *p = NULL;
        for (size_t k = 0; k < svc->ports_len; k++)
            if (strcmp(svc->ports[k].name, port) == 0)
                p = &svc->ports[k];
        bool least = strcmp(balance, "least_conn") == 0;
        if (p == NULL || published < 1 || published > 65535 ||
            (!least && strcmp(balance, "round_robin") != 0))
            return bad(err, "publish", NULL);
        p->published = published;
        p->balance = least ? SPEC_BALANCE_LEAST_CONN : SPEC_BALANCE_ROUND_ROBIN;
    }
    return 0;
}

char *spec_service_to_json(const struct spec_service *svc)
{
    json_t *o = template_json(svc);
    publish_json_add(o, svc);
    json_object_set_new(o, "replicas", json_integer(svc->replicas));
    if (svc->autoscale.enabled)
        json_object_set_new(o, "autoscale",
                            json_pack("{s:i, s:i, s:i, s:i, s:I}", "min", svc->autoscale.min, "max",
                                      svc->autoscale.max, "cpu", svc->autoscale.cpu, "requests",
                                      svc->autoscale.requests, "scale_down_delay_ms",
                                      (json_int_t)svc->autoscale.scale_down_delay_ms));
    else
        json_object_set_new(o, "autoscale", json_null());
    return dump(o);
}

void spec_template_hash(const struct spec_service *svc, char out[65])
{
    _cleanup_free_ char *canon = spec_template_canonical(svc);
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    if (!EVP_Digest(canon, strlen(canon), md, &mdlen, EVP_sha256(), NULL) || mdlen != 32) {
        fprintf(stderr, "orch: SHA-256 failed\n");
        abort();
    }
    static const char hex[] = "0123456789abcdef";
    for (unsigned i = 0; i < 32; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[64] = '\0';
}

/* --- from JSON --------------------------------------------------------------------------- */

static int bad(struct orch_error *err, const char *what, const json_error_t *je)
{
    if (je != NULL)
        return orch_fail(err, ORCH_E_INVALID, 0, "service JSON: %s: %s", what, je->text);
    return orch_fail(err, ORCH_E_INVALID, 0, "service JSON: %s", what);
}

/* null -> absent; an array of strings -> a new NULL-terminated argv. */
static int read_argv(json_t *j, const char *what, bool nullable, char ***out, size_t *out_len,
                     bool *present, struct orch_error *err)
{
    if (json_is_null(j) && nullable) {
        *present = false;
        return 0;
    }
    if (!json_is_array(j))
        return bad(err, what, NULL);
    size_t n = json_array_size(j);
    char **argv = orch_xcalloc(n + 1, sizeof(char *));
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(j, i);
        if (!json_is_string(s)) {
            for (size_t k = 0; k < i; k++)
                free(argv[k]);
            free(argv);
            return bad(err, what, NULL);
        }
        argv[i] = orch_xstrdup(json_string_value(s));
    }
    *out = argv;
    *out_len = n;
    *present = true;
    return 0;
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const struct spec_kv *)a)->key, ((const struct spec_kv *)b)->key);
}

static int read_kv(json_t *j, const char *what, struct spec_kv **out, size_t *out_len,
                   struct orch_error *err)
{
    if (!json_is_object(j))
        return bad(err, what, NULL);
    struct spec_kv *kv = orch_xcalloc(json_object_size(j) + 1, sizeof(*kv));
    size_t n = 0;
    const char *key;
    json_t *value;
    json_object_foreach(j, key, value)
    {
        if (!json_is_string(value)) {
            for (size_t i = 0; i < n; i++) {
                free(kv[i].key);
                free(kv[i].value);
            }
            free(kv);
            return bad(err, what, NULL);
        }
        kv[n].key = orch_xstrdup(key);
        kv[n].value = orch_xstrdup(json_string_value(value));
        n++;
    }
    qsort(kv, n, sizeof(*kv), kv_cmp);
    *out = kv;
    *out_len = n;
    return 0;
}

static int read_pct(json_t *j, const char *what, struct spec_scalar_or_pct *out,
                    struct orch_error *err)
{
    if (json_is_integer(j) && json_integer_value(j) >= 0 && json_integer_value(j) <= INT32_MAX) {
        out->value = (int)json_integer_value(j);
        out->percent = false;
        return 0;
    }
    if (json_is_string(j) && spec_parse_pct(json_string_value(j), out) == 0 && out->percent)
        return 0;
    return bad(err, what, NULL);
}

/* "ports": the service's ports, in order. */
static int read_ports(json_t *ports, struct spec_service *svc, struct orch_error *err)
{
    json_error_t je;
    if (!json_is_array(ports))
        return bad(err, "ports", NULL);
    svc->ports = orch_xcalloc(json_array_size(ports) + 1, sizeof(*svc->ports));
    for (size_t i = 0; i < json_array_size(ports); i++) {
        const char *pname, *proto;
        int container;
        if (json_unpack_ex(json_array_get(ports, i), &je, JSON_STRICT, "{s:s, s:i, s:s}", "name",
                           &pname, "container", &container, "protocol", &proto) < 0)
            return bad(err, "ports", &je);
        bool udp = strcmp(proto, "udp") == 0;
        if ((!udp && strcmp(proto, "tcp") != 0) || container < 1 || container > 65535)
            return bad(err, "ports", NULL);
        svc->ports[svc->ports_len++] = (struct spec_port){
            .name = orch_xstrdup(pname),
            .container = container,
            .protocol = udp ? SPEC_PROTO_UDP : SPEC_PROTO_TCP,
        };
    }
    return 0;
}

/* "health": the probe; its port must name one of svc's ports (read before). */
static int read_health(json_t *health, struct spec_service *svc, struct orch_error *err)
{
    json_error_t je;
    int rc;
    bool present;
    struct spec_health *h = &svc->health;
    const char *kind;
    json_t *http, *exec, *port;
    json_int_t interval, timeout, retries, start, start_interval = SPEC_START_INTERVAL_MS;
    if (json_unpack_ex(health, &je, JSON_STRICT, "{s:s, s:o, s:o, s:o, s:I, s:I, s:I, s:I, s?I}",
                       "kind", &kind, "http", &http, "exec", &exec, "port", &port, "interval_ms",
                       &interval, "timeout_ms", &timeout, "retries", &retries, "start_period_ms",
                       &start, "start_interval_ms", &start_interval) < 0)
        return bad(err, "health", &je);
    if (start_interval < 1)
        return bad(err, "health.start_interval_ms out of range", NULL);
    h->start_interval_ms = start_interval;
    h->interval_ms = interval;
    h->timeout_ms = timeout;
    h->retries = retries < 1 || retries > 100 ? -1 : (int)retries;
    h->start_period_ms = start;
    if (h->retries < 0)
        return bad(err, "health.retries out of range", NULL);
    if (strcmp(kind, "none") == 0) {
        h->kind = SPEC_PROBE_NONE;
    } else if (strcmp(kind, "http") == 0 && json_is_string(http)) {
        h->kind = SPEC_PROBE_HTTP;
        h->http_path = orch_xstrdup(json_string_value(http));
    } else if (strcmp(kind, "tcp") == 0) {
        h->kind = SPEC_PROBE_TCP;
    } else if (strcmp(kind, "exec") == 0) {
        h->kind = SPEC_PROBE_EXEC;
        if ((rc = read_argv(exec, "health.exec", false, &h->exec_argv, &h->exec_argc, &present,
                            err)) < 0)
            return rc;
    } else {
        return bad(err, "health.kind", NULL);
    }
    if (h->kind == SPEC_PROBE_HTTP || h->kind == SPEC_PROBE_TCP) {
        if (!json_is_string(port))
            return bad(err, "health.port", NULL);
        h->port = orch_xstrdup(json_string_value(port));
        for (size_t i = 0; i < svc->ports_len; i++)
            if (strcmp(svc->ports[i].name, h->port) == 0) {
                h->port_index = (int)i;
                break;
            }
        if (h->port_index < 0)
            return bad(err, "health.port names no port", NULL);
    }
    return 0;
}

/* "update": the rollout strategy and its limits. */
static int read_update(json_t *update, struct spec_update *u, struct orch_error *err)
{
    json_error_t je;
    int rc;
    const char *strategy;
    json_t *surge, *unavail;
    json_int_t min_ready, deadline, grace;
    int rollback;
    if (json_unpack_ex(update, &je, JSON_STRICT, "{s:s, s:o, s:o, s:I, s:I, s:b, s:I}", "strategy",
                       &strategy, "max_surge", &surge, "max_unavailable", &unavail, "min_ready_ms",
                       &min_ready, "deadline_ms", &deadline, "auto_rollback", &rollback,
                       "stop_grace_ms", &grace) < 0)
        return bad(err, "update", &je);
    if (strcmp(strategy, "rolling") == 0)
        u->strategy = SPEC_STRATEGY_ROLLING;
    else if (strcmp(strategy, "recreate") == 0)
        u->strategy = SPEC_STRATEGY_RECREATE;
    else
        return bad(err, "update.strategy", NULL);
    if ((rc = read_pct(surge, "update.max_surge", &u->max_surge, err)) < 0 ||
        (rc = read_pct(unavail, "update.max_unavailable", &u->max_unavailable, err)) < 0)
        return rc;
    u->min_ready_ms = min_ready;
    u->deadline_ms = deadline;
    u->auto_rollback = rollback != 0;
    u->stop_grace_ms = grace;
    return 0;
}

/* "resources": the CPU and memory limits. */
static int read_resources(json_t *resources, struct spec_service *svc, struct orch_error *err)
{
    json_error_t je;
    json_int_t nano, mem;
    if (json_unpack_ex(resources, &je, JSON_STRICT, "{s:I, s:I}", "nano_cpus", &nano,
                       "memory_bytes", &mem) < 0)
        return bad(err, "resources", &je);
    svc->resources.nano_cpus = nano;
    svc->resources.memory_bytes = mem;
    return 0;
}

/* "volumes": the mounts, in order. */
static int read_volumes(json_t *volumes, struct spec_service *svc, struct orch_error *err)
{
    json_error_t je;
    if (!json_is_array(volumes))
        return bad(err, "volumes", NULL);
    svc->volumes = orch_xcalloc(json_array_size(volumes) + 1, sizeof(*svc->volumes));
    for (size_t i = 0; i < json_array_size(volumes); i++) {
        const char *type, *source, *target;
        int ro;
        if (json_unpack_ex(json_array_get(volumes, i), &je, JSON_STRICT, "{s:s, s:s, s:s, s:b}",
                           "type", &type, "source", &source, "target", &target, "read_only",
                           &ro) < 0)
            return bad(err, "volumes", &je);
        bool bind = strcmp(type, "bind") == 0;
        if (!bind && strcmp(type, "volume") != 0)
            return bad(err, "volumes.type", NULL);
        svc->volumes[svc->volumes_len++] = (struct spec_volume){
            .kind = bind ? SPEC_VOLUME_BIND : SPEC_VOLUME_NAMED,
            .source = orch_xstrdup(source),
            .target = orch_xstrdup(target),
            .read_only = ro != 0,
        };
    }
    return 0;
}

/* Reads a template object (exactly the keys template_json writes) into *svc. */
static int read_template(json_t *root, struct spec_service *svc, struct orch_error *err)
{
    json_error_t je;
    json_t *command, *entrypoint, *env, *labels, *ports, *health, *update, *resources, *volumes,
        *depends_on;
    const char *name, *image;
    if (json_unpack_ex(
            root, &je, JSON_STRICT, "{s:s, s:s, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}",
            "name", &name, "image", &image, "command", &command, "entrypoint", &entrypoint, "env",
            &env, "labels", &labels, "ports", &ports, "health", &health, "update", &update,
            "resources", &resources, "volumes", &volumes, "depends_on", &depends_on) < 0)
        return bad(err, "service", &je);
    svc->name = orch_xstrdup(name);
    svc->image = orch_xstrdup(image);
    svc->health.port_index = -1;
    int rc;
    bool present;
    if ((rc = read_argv(command, "command", true, &svc->command, &svc->command_len,
                        &svc->has_command, err)) < 0 ||
        (rc = read_argv(entrypoint, "entrypoint", true, &svc->entrypoint, &svc->entrypoint_len,
                        &svc->has_entrypoint, err)) < 0 ||
        (rc = read_argv(depends_on, "depends_on", false, &svc->depends_on, &svc->depends_on_len,
                        &present, err)) < 0 ||
        (rc = read_kv(env, "env", &svc->env, &svc->env_len, err)) < 0 ||
        (rc = read_kv(labels, "labels", &svc->labels, &svc->labels_len, err)) < 0)
        return rc;
    if ((rc = read_ports(ports, svc, err)) < 0 || (rc = read_health(health, svc, err)) < 0 ||
        (rc = read_update(update, &svc->update, err)) < 0 ||
        (rc = read_resources(resources, svc, err)) < 0)
        return rc;
    return read_volumes(volumes, svc, err);
}

/* The scale part of a full service: replicas and autoscale. */
static int read_scale(json_t *root, struct spec_service *svc, struct orch_error *err)
{
    json_error_t je;
    json_int_t replicas;
    json_t *autoscale;
    if (json_unpack_ex(root, &je, 0, "{s:I, s:o}", "replicas", &replicas, "autoscale", &autoscale) <
        0)
        return bad(err, "service", &je);
    if (replicas < 0 || replicas > SPEC_MAX_REPLICAS)
        return bad(err, "replicas out of range", NULL);
    svc->replicas = (int)replicas;
    if (!json_is_null(autoscale)) {
        /* requests and scale_down_delay_ms are optional: services stored before they existed
         * have neither (no requests target, the default delay). */
        int mn, mx, cpu = 0, requests = 0;
        json_int_t delay = SPEC_AUTOSCALE_DELAY_MS;
        if (json_unpack_ex(autoscale, &je, JSON_STRICT, "{s:i, s:i, s?i, s?i, s?I}", "min", &mn,
                           "max", &mx, "cpu", &cpu, "requests", &requests, "scale_down_delay_ms",
                           &delay) < 0)
            return bad(err, "autoscale", &je);
        if (cpu < 0 || requests < 0 || delay < 0)
            return bad(err, "autoscale out of range", NULL);
        svc->autoscale = (struct spec_autoscale){.enabled = true,
                                                 .min = mn,
                                                 .max = mx,
                                                 .cpu = cpu,
                                                 .requests = requests,
                                                 .scale_down_delay_ms = delay};
    }
    return 0;
}

static int from_json(const char *json, bool with_scale, struct spec_service *out,
                     struct orch_error *err)
{
    memset(out, 0, sizeof(*out));
    if (json == NULL)
        return bad(err, "no JSON", NULL);
    json_error_t je;
    json_t *root = json_loads(json, JSON_REJECT_DUPLICATES, &je);
    if (root == NULL)
        return bad(err, "not JSON", &je);
    struct spec_service svc = {0};
    int rc = 0;
    if (!json_is_object(root)) {
        rc = bad(err, "not an object", NULL);
    } else if (with_scale) {
        rc = read_scale(root, &svc, err);
        /* The rest is exactly a template. */
        json_t *t = json_copy(root);
        json_object_del(t, "replicas");
        json_object_del(t, "autoscale");
        json_object_del(t, "publish");
        if (rc == 0)
            rc = read_template(t, &svc, err);
        if (rc == 0)
            rc = publish_json_read(root, &svc, err);
        json_decref(t);
    } else {
        rc = read_template(root, &svc, err);
    }
    json_decref(root);
    if (rc < 0) {
        spec_service_free(&svc);
        return rc;
    }
    *out = svc;
    return 0;
}

int spec_service_from_json(const char *json, struct spec_service *out, struct orch_error *err)
{
    return from_json(json, true, out, err);
}

int spec_template_from_json(const char *json, struct spec_service *out, struct orch_error *err)
{
    return from_json(json, false, out, err);
}

char *spec_service_rebase_json(const char *template_json, const char *service_json,
                               struct orch_error *err)
{
    struct spec_service tmpl = {0}, now = {0};
    char *json = NULL;
    if (spec_template_from_json(template_json, &tmpl, err) == 0 &&
        spec_service_from_json(service_json, &now, err) == 0) {
        tmpl.replicas = now.replicas;
        tmpl.autoscale = now.autoscale;
        /* published ports are the service's as it is now, like its scale */
        for (size_t i = 0; i < tmpl.ports_len; i++)
            for (size_t k = 0; k < now.ports_len; k++)
                if (strcmp(tmpl.ports[i].name, now.ports[k].name) == 0) {
                    tmpl.ports[i].published = now.ports[k].published;
                    tmpl.ports[i].balance = now.ports[k].balance;
                }
        json = spec_service_to_json(&tmpl);
    }
    spec_service_free(&now);
    spec_service_free(&tmpl);
    return json;
}
