/* libFuzzer target for the spec parser, the one input orch takes from users as text. Any
 * input must give either a model or 1..101 positioned diagnostics, never a crash, leak or
 * hang; a model must survive to_json/from_json and template_from_json with its canonical
 * form unchanged. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "spec/spec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void check(bool ok, const char *what)
{
    if (!ok) {
        fprintf(stderr, "fuzz_spec: property violated: %s\n", what);
        abort();
    }
}

static void check_service(const struct spec_service *svc)
{
    char *canon = spec_template_canonical(svc);
    char *json = spec_service_to_json(svc);
    char hash[65];
    spec_template_hash(svc, hash);
    check(strlen(hash) == 64, "hash is 64 hex digits");

    struct spec_service back;
    struct orch_error err = {0};
    check(spec_service_from_json(json, &back, &err) == 0, "from_json(to_json(x)) succeeds");
    char *canon2 = spec_template_canonical(&back);
    char *json2 = spec_service_to_json(&back);
    check(strcmp(canon, canon2) == 0, "canonical form survives to_json/from_json");
    check(strcmp(json, json2) == 0, "service JSON survives to_json/from_json");
    char hash2[65];
    spec_template_hash(&back, hash2);
    check(strcmp(hash, hash2) == 0, "hash survives to_json/from_json");
    check(back.health.port_index == svc->health.port_index, "port_index is rebuilt");

    struct spec_service tmpl;
    check(spec_template_from_json(canon, &tmpl, &err) == 0, "template_from_json succeeds");
    char *canon3 = spec_template_canonical(&tmpl);
    check(strcmp(canon, canon3) == 0, "canonical form survives template_from_json");

    free(canon3);
    spec_service_free(&tmpl);
    free(canon2);
    free(json2);
    spec_service_free(&back);
    free(canon);
    free(json);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct spec_parse_options opts = {.file = "fuzz.yaml", .base_dir = "/srv/app"};
    struct spec_app app;
    struct spec_diags diags;
    struct orch_error err = {0};
    int rc = spec_parse((const char *)data, size, &opts, &app, &diags, &err);
    if (rc == 0) {
        check(diags.n == 0, "no diagnostics on success");
        check(app.services_len > 0, "a valid spec has a service");
        for (size_t i = 0; i < app.services_len; i++) {
            check(spec_app_find(&app, app.services[i].name) == &app.services[i],
                  "service names are unique");
            check_service(&app.services[i]);
        }
        spec_app_free(&app);
        return 0;
    }
    check(rc == -ORCH_E_INVALID, "failure is -ORCH_E_INVALID");
    check(diags.n > 0 && diags.n <= 101, "1..101 diagnostics");
    check(app.services == NULL && app.app == NULL, "no model on failure");
    for (size_t i = 0; i < diags.n; i++) {
        check(diags.v[i].line >= 1 && diags.v[i].column >= 1, "positions are 1-based");
        check(strchr(diags.v[i].message, '\n') == NULL, "a diagnostic is one line");
    }
    char *text = spec_diags_format(&diags, "fuzz.yaml");
    free(text);
    spec_diags_free(&diags);
    return 0;
}
