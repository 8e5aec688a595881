/* The daemon's lock of a state dir: a flock on STATE_DIR/daemon.lock holding the daemon's pid.
 * It lives beside the store because the state dir is the store's, and because readers below the
 * daemon (reconcile's status view, the CLI) must test it without depending on the daemon. It
 * only locks and reads the pid; it never kills or waits for the holder. */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/file.h>
#include <unistd.h>

#include "base/util.h"

static char *lock_path(const char *state_dir)
{
    return orch_xasprintf("%s/daemon.lock", state_dir);
}

bool store_daemon_running(const char *state_dir, pid_t *pid)
{
    if (pid)
        *pid = 0;
    _cleanup_free_ char *path = lock_path(state_dir);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool held = flock(fd, LOCK_SH | LOCK_NB) < 0 && errno == EWOULDBLOCK;
    if (held && pid) {
        char buf[32] = {0};
        if (read(fd, buf, sizeof(buf) - 1) > 0)
            *pid = (pid_t)atol(buf);
    }
    close(fd);
    return held;
}

int store_daemon_lock(const char *state_dir, int *fd_out, struct orch_error *err)
{
    _cleanup_free_ char *path = lock_path(state_dir);
    int fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (fd < 0)
        return orch_fail(err, ORCH_E_ENV, errno, "cannot open %s", path);
    if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
        int e = errno;
        char buf[32] = {0};
        if (read(fd, buf, sizeof(buf) - 1) < 0)
            buf[0] = '\0';
        close(fd);
        if (e == EWOULDBLOCK)
            return orch_fail(err, ORCH_E_LOCKED, 0,
                             "another orch daemon runs on %s (pid %ld); one per state dir",
                             state_dir, atol(buf));
        return orch_fail(err, ORCH_E_ENV, e, "cannot lock %s", path);
    }
    char pid[32];
    int len = snprintf(pid, sizeof(pid), "%ld\n", (long)getpid());
    if (ftruncate(fd, 0) < 0 || pwrite(fd, pid, (size_t)len, 0) != len) {
        int e = errno;
        close(fd);
        return orch_fail(err, ORCH_E_ENV, e, "cannot write %s", path);
    }
    *fd_out = fd;
    return 0;
}
