/* SPDX-License-Identifier: MIT */
#include "log.h"

#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static int level = LOG_INFO;

void log_set_level(int priority) {
        level = priority;
}

int log_get_level(void) {
        return level;
}

/* True when stderr is the journal's stream (systemd sets JOURNAL_STREAM=dev:ino). */
static bool stderr_is_journal(void) {
        static int cached = -1;
        const char *e;
        struct stat st;
        unsigned long long dev, ino;

        if (cached >= 0)
                return cached;
        cached = 0;
        e = getenv("JOURNAL_STREAM");
        if (e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
            (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino)
                cached = 1;
        return cached;
}

static const char *prio_name(int priority) {
        static const char *const names[] = { "emergency", "alert", "critical", "error",
                                             "warning",   "notice", "info",    "debug" };
        return names[priority & 7];
}

void log_msg(int priority, const char *fmt, ...) {
        char line[2048], out[sizeof line * 4];
        size_t o = 0;
        va_list ap;

        if (priority > level)
                return;
        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);

        /* Escape control characters: one call, one line. */
        for (const unsigned char *s = (const unsigned char *) line; *s && o + 5 < sizeof out; s++) {
                if (*s < 0x20 || *s == 0x7f)
                        o += (size_t) snprintf(out + o, sizeof out - o, "\\x%02x", *s);
                else
                        out[o++] = (char) *s;
        }
        out[o] = '\0';

        if (stderr_is_journal())
                fprintf(stderr, "<%d>%s\n", priority & 7, out);
        else
                fprintf(stderr, "ersd: %s: %s\n", prio_name(priority), out);
}
