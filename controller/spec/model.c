/* Ownership of the spec model: freeing apps and services (also half-built ones, whose
 * fields may be NULL after a validation error) and looking services up. No parsing here. */
#include <string.h>

#include "base/util.h"
#include "spec/spec_internal.h"

static void strv_free(char **v, size_t n)
{
    if (v == NULL)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

static void kv_free(struct spec_kv *kv, size_t n)
{
    if (kv == NULL)
        return;
    for (size_t i = 0; i < n; i++) {
        free(kv[i].key);
        free(kv[i].value);
    }
    free(kv);
}

void spec_service_free(struct spec_service *svc)
{
    if (svc == NULL)
        return;
    free(svc->name);
    free(svc->image);
    strv_free(svc->command, svc->command_len);
    strv_free(svc->entrypoint, svc->entrypoint_len);
    kv_free(svc->env, svc->env_len);
    kv_free(svc->labels, svc->labels_len);
    for (size_t i = 0; svc->ports != NULL && i < svc->ports_len; i++)
        free(svc->ports[i].name);
    free(svc->ports);
    free(svc->health.http_path);
    strv_free(svc->health.exec_argv, svc->health.exec_argc);
    free(svc->health.port);
    for (size_t i = 0; svc->volumes != NULL && i < svc->volumes_len; i++) {
        free(svc->volumes[i].source);
        free(svc->volumes[i].target);
    }
    free(svc->volumes);
    strv_free(svc->depends_on, svc->depends_on_len);
    memset(svc, 0, sizeof(*svc));
}

void spec_app_free(struct spec_app *app)
{
    if (app == NULL)
        return;
    for (size_t i = 0; i < app->services_len; i++)
        spec_service_free(&app->services[i]);
    free(app->services);
    free(app->app);
    memset(app, 0, sizeof(*app));
}

const struct spec_service *spec_app_find(const struct spec_app *app, const char *name)
{
    for (size_t i = 0; i < app->services_len; i++)
        if (app->services[i].name != NULL && strcmp(app->services[i].name, name) == 0)
            return &app->services[i];
    return NULL;
}

bool spec_app_publishes(const struct spec_app *app)
{
    for (size_t i = 0; i < app->services_len; i++)
        for (size_t k = 0; k < app->services[i].ports_len; k++)
            if (app->services[i].ports[k].published > 0)
                return true;
    return false;
}
