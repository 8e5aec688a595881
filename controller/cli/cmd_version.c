/* `orch version`: orch's version and the versions of the libraries it runs with. */
#include <curl/curl.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <sqlite3.h>
#include <stdio.h>
#include <string.h>
#include <uv.h>
#include <yaml.h>

#include "cli.h"
#include "orch_version.h"

const char cli_usage_version[] = "Usage: orch version\n\n"
                                 "Prints orch's version and the versions of the libraries it\n"
                                 "runs with.\n";

int cli_cmd_version(struct cli_ctx *ctx, int argc, char **argv)
{
    (void)ctx;
    if (argc > 1 && (strcmp(argv[1], "-h") == 0 || strcmp(argv[1], "--help") == 0))
        return cli_print_help(cli_usage_version);
    if (argc > 1)
        return cli_usage_error("version", "unexpected argument '%s'", argv[1]);
    printf("orch %s\n", ORCH_VERSION);
    printf("  libcurl  %s\n", curl_version_info(CURLVERSION_NOW)->version);
    printf("  jansson  %s\n", jansson_version_str());
    printf("  libyaml  %s\n", yaml_get_version_string());
    printf("  openssl  %s\n", OpenSSL_version(OPENSSL_VERSION));
    printf("  libuv    %s\n", uv_version_string());
    printf("  sqlite   %s\n", sqlite3_libversion());
    return ORCH_EXIT_OK;
}
