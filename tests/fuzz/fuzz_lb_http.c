/* libFuzzer target over lb_http_feed(), the one parser of untrusted bytes in the balancer (what
 * clients send): any input, fed whole and fed in two pieces split where its first byte says,
 * must give the same count and end state, and never read out of bounds. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lb/lb_pick.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    size_t split = data[0] % size;
    const char *s = (const char *)data + 1;
    size_t n = size - 1;
    if (split > n)
        split = n;
    struct lb_http whole = {0}, parts = {0};
    unsigned a = lb_http_feed(&whole, s, n);
    unsigned b = lb_http_feed(&parts, s, split);
    b += lb_http_feed(&parts, s + split, n - split);
    if (a != b || whole.state != parts.state || a > n / 4 + 1)
        abort();
    return 0;
}
