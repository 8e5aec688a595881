/* libFuzzer target over registry_answer(): arbitrary bytes as a DNS query, over UDP (the first
 * byte picks the server's payload limit) and TCP, against a small fixed registry (with a
 * service that has no instance). Every answer must fit the limit and echo the query id. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/util.h"
#include "registry/registry.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct registry *fixture(void)
{
    static const struct registry_port ports[] = {{"http", REGISTRY_TCP, 49153},
                                                 {"dns", REGISTRY_UDP, 49154}};
    static char ids[30][13], addrs[30][16];
    struct registry_instance inst[30];
    for (int i = 0; i < 30; i++) {
        snprintf(ids[i], sizeof(ids[i]), "%012x", 0xabc000 + i);
        snprintf(addrs[i], sizeof(addrs[i]), "10.0.%d.%d", i / 10, i + 1);
        inst[i] = (struct registry_instance){
            "shop", i < 25 ? "web" : "db", ids[i], addrs[i], ports, 2, i % 7 != 0};
    }
    /* shop/cart exists with no instance (scaled to 0): its names are NODATA. */
    static const struct registry_service svcs[] = {{"shop", "cart", ports, 2}};
    struct registry *reg = NULL;
    if (registry_build(&(struct registry_options){.services = svcs, .n_services = 1}, inst, 30,
                       &reg, NULL) < 0)
        abort();
    return reg;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static struct registry *reg;
    static uint8_t out[REGISTRY_MAX_MESSAGE], ref[REGISTRY_MAX_MESSAGE];
    if (reg == NULL)
        reg = fixture();
    if (size < 1)
        return 0;
    static const size_t limits[] = {0, 512, 1232, 4096};
    size_t max_udp = limits[data[0] & 3];
    /* An exact-size copy so that ASan sees any read past the packet. */
    uint8_t *q = malloc(size - 1 ? size - 1 : 1);
    memcpy(q, data + 1, size - 1);
    size_t len = 0, ref_len = 0;
    enum registry_answer_status st =
        registry_answer(reg, q, size - 1, max_udp, out, sizeof(out), &len);
    /* The fast path must answer byte for byte as the generic one. */
    if (registry_answer_generic(reg, q, size - 1, max_udp, ref, sizeof(ref), &ref_len) != st ||
        ref_len != len || memcmp(ref, out, len) != 0)
        abort();
    if (st == REGISTRY_ANSWERED) {
        if (len < 12 || len > (max_udp ? REGISTRY_MAX_UDP : REGISTRY_MAX_MESSAGE) ||
            memcmp(out, q, 2) != 0)
            abort();
    }
    free(q);
    return 0;
}
