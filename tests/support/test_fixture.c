/* Reads fixture files for the C tests (test_fixture.h); the one copy of what three tests used
 * to carry each. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "base/util.h"
#include "support/test_fixture.h"

char *test_fixture_read(const char *path, size_t *len)
{
    _cleanup_fclose_ FILE *f = fopen(path, "rb");
    if (f == NULL)
        fail_msg("cannot open fixture %s: %s", path, strerror(errno));
    struct orch_buf b = {0};
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof(chunk), f)) > 0)
        orch_buf_append(&b, chunk, n);
    if (ferror(f))
        fail_msg("cannot read fixture %s", path);
    *len = b.len;
    return orch_buf_steal(&b);
}

char *test_fixture_read_in(const char *dir, const char *name, size_t *len)
{
    _cleanup_free_ char *path = orch_xasprintf("%s/%s", dir, name);
    return test_fixture_read(path, len);
}
