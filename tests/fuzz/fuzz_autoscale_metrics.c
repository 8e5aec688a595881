/* libFuzzer target for the untrusted text the metrics parse: the first byte picks the parser
 * (the Engine's stats answer, a cgroup v2 cpu.stat, a v1 cpuacct.usage), the rest is the text.
 * Built with -DORCH_FUZZ=ON (clang); seeded with tests/fuzz/autoscale_metrics_seeds/. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "autoscale/autoscale_metrics.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct orch_error err;
    struct autoscale_cpu_sample s;
    uint64_t ns;
    if (size == 0 || size > 1 << 20)
        return 0;
    /* the cgroup parsers take NUL-terminated text, as autoscale_cgroup_read gives them */
    char *text = malloc(size);
    memcpy(text, data + 1, size - 1);
    text[size - 1] = '\0';
    switch (data[0] % 3) {
    case 0:
        autoscale_stats_parse(text, size - 1, &s, &err);
        break;
    case 1:
        autoscale_cgroup_parse(text, true, &ns, &err);
        break;
    case 2:
        autoscale_cgroup_parse(text, false, &ns, &err);
        break;
    }
    free(text);
    return 0;
}
