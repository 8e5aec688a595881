/* libFuzzer target for every Engine API answer the docker module parses: the first byte picks
 * the parser, the rest is the body. Built with -DORCH_FUZZ=ON (clang); seed it with fixtures/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "docker/docker_json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int fuzz_line(void *data, const char *line, size_t len)
{
    struct docker_event ev;
    struct orch_error err;
    docker_json_parse_event(line, len, &ev, &err);
    docker_event_free(&ev);
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct orch_error err;
    if (size == 0)
        return 0;
    const char *b = (const char *)data + 1;
    size_t n = size - 1;
    switch (data[0] % 9) {
    case 0: {
        struct docker_container_list l;
        docker_json_parse_container_list(b, n, &l, &err);
        docker_container_list_free(&l);
        break;
    }
    case 1: {
        struct docker_container_info ci;
        docker_json_parse_container_info(b, n, &ci, &err);
        docker_container_info_free(&ci);
        break;
    }
    case 2: {
        char *id = NULL;
        docker_json_parse_id(b, n, &id, &err);
        free(id);
        break;
    }
    case 3: {
        struct docker_image_info ii;
        docker_json_parse_image_info(b, n, &ii, &err);
        docker_image_info_free(&ii);
        break;
    }
    case 4: {
        struct docker_network_list nl;
        docker_json_parse_network_list(b, n, &nl, &err);
        docker_network_list_free(&nl);
        break;
    }
    case 5: {
        struct docker_exec_info ei;
        docker_json_parse_exec_info(b, n, &ei, &err);
        docker_exec_info_free(&ei);
        break;
    }
    case 6: {
        struct docker_event ev;
        docker_json_parse_event(b, n, &ev, &err);
        docker_event_free(&ev);
        break;
    }
    case 7:
        docker_status_to_error(404, b, n, "fuzz", &err);
        break;
    default: {
        struct docker_lines ls = {.max_line = 256};
        docker_lines_feed(&ls, b, n, fuzz_line, NULL, &err);
        docker_lines_free(&ls);
        break;
    }
    }
    return 0;
}
