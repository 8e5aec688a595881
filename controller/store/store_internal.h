/* Store internals shared only with the store's own tests: the default-dir resolution with the
 * effective uid as a parameter, so the non-root branches are testable when tests run as root. */
#ifndef ORCH_STORE_STORE_INTERNAL_H
#define ORCH_STORE_STORE_INTERNAL_H

#include <sys/types.h>

/* store_default_dir as if running with effective uid euid. */
char *store_default_dir_for(const char *explicit_dir, uid_t euid);

#endif
