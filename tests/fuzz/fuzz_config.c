/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: a configuration file, as an operator (or a mistake)
 * writes it, through config_load: it loads, or every problem is reported as
 * FILE:LINE and nothing is kept.  The file lives in a private temporary
 * directory, which is also where relative paths and @include resolve.
 */
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static char conf_path[4200];

static void count_report(void *userdata, const char *line) {
        (void) line;
        ++*(unsigned *) userdata;
}

static void setup_once(void) {
        const char *tmp = getenv("TMPDIR");
        char dir[4096];

        snprintf(dir, sizeof dir, "%s/ersd-fuzz-config-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(dir))
                abort();
        snprintf(conf_path, sizeof conf_path, "%s/ersd.conf", dir);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct config c;
        unsigned reports = 0;
        int fd, r;

        if (!conf_path[0])
                setup_once();
        fd = open(conf_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (fd < 0)
                abort();
        if (write(fd, data, size) != (ssize_t) size)
                abort();
        close(fd);

        memset(&c, 0, sizeof c);
        r = config_load(conf_path, count_report, &reports, &c);
        if (r == 0)
                config_free(&c);
        else if (reports == 0)
                abort(); /* a refused file always says why */
        return 0;
}
