/* Fixture files for the C tests: the invalid-spec corpus, example manifests, recorded Engine API
 * answers. Test code only: a file that cannot be read fails the running cmocka test. */
#ifndef ORCH_TEST_FIXTURE_H
#define ORCH_TEST_FIXTURE_H

#include <stddef.h>

/* New: the whole file at path, NUL-terminated (never NULL), its length in *len. Fails the
 * running test, naming the path, when the file cannot be opened or read. */
char *test_fixture_read(const char *path, size_t *len);

/* As test_fixture_read, for dir/name. */
char *test_fixture_read_in(const char *dir, const char *name, size_t *len);

#endif
