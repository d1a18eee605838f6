/* SPDX-License-Identifier: MIT */
#include "statelock.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

/* The pid the holder wrote, or 0 when unreadable. */
static long holder_pid(int fd) {
        char text[24];
        ssize_t n = pread(fd, text, sizeof text - 1, 0);
        char *end;
        long pid;

        if (n <= 0)
                return 0;
        text[n] = '\0';
        errno = 0;
        pid = strtol(text, &end, 10);
        return errno == 0 && end != text && (*end == '\n' || *end == '\0') && pid > 0 ? pid : 0;
}

int state_lock_take(const char *state_dir, int *ret_fd, struct errbuf *e) {
        char path[PATH_MAX], text[24];
        int fd, r, len;

        if (snprintf(path, sizeof path, "%s/ersd.lock", state_dir) >= (int) sizeof path)
                return err_set(e, -ENAMETOOLONG, "state directory path too long");
        if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
                return err_set(e, -errno, "cannot create state directory %s: %s", state_dir, strerror(errno));
        fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return err_set(e, -errno, "cannot open %s: %s", path, strerror(errno));
        if (flock(fd, LOCK_EX | LOCK_NB) < 0) {
                r = -errno;
                long pid = r == -EWOULDBLOCK ? holder_pid(fd) : 0;
                close(fd);
                if (r != -EWOULDBLOCK)
                        return err_set(e, r, "cannot lock %s: %s", path, strerror(-r));
                if (pid > 0)
                        return err_set(e, -EBUSY,
                                       "state directory %s is in use by another ersd (pid %ld, %s): one ersd per "
                                       "state_dir; a dry run or `ersd sync UBRN` may run beside it",
                                       state_dir, pid, path);
                return err_set(e, -EBUSY,
                               "state directory %s is in use by another ersd (%s): one ersd per state_dir; a dry run "
                               "or `ersd sync UBRN` may run beside it",
                               state_dir, path);
        }
        len = snprintf(text, sizeof text, "%ld\n", (long) getpid());
        if (ftruncate(fd, 0) < 0 || pwrite(fd, text, (size_t) len, 0) != len) {
                r = -errno;
                close(fd);
                return err_set(e, r, "cannot write %s: %s", path, strerror(-r));
        }
        *ret_fd = fd;
        return 0;
}
