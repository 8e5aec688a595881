/* libFuzzer target over the --auth file parser: arbitrary bytes as YAML (or JSON) through
 * libyaml's event parser, the YAML -> JSON conversion and the validator. A file that parses is
 * then used once, to map a certificate name and to answer a decision, so the rules it built are
 * exercised as well. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth/auth.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct auth_config *cfg = NULL;
    struct orch_error err = {0};
    if (auth_config_parse((const char *)data, size, "fuzz.yaml", &cfg, &err) < 0) {
        if (cfg != NULL || strncmp(err.msg, "fuzz.yaml: ", 11) != 0)
            abort(); /* a failure leaves *out alone and names the file */
        return 0;
    }
    for (size_t i = 0; i < auth_config_issuer_count(cfg); i++)
        if (auth_config_issuer_name(cfg, i) == NULL || auth_config_issuer_jwks(cfg, i) == NULL)
            abort();
    struct auth_identity id;
    if (auth_cert_authenticate(cfg, "runner-1.ci.acme.internal", 0, &id, &err) != 0)
        abort();
    (void)auth_allows(&id, AUTH_ROLE_DEPLOYER, "shop", 0);
    auth_identity_free(&id);
    auth_config_free(cfg);
    return 0;
}
