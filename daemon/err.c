/* SPDX-License-Identifier: MIT */
#include "err.h"

#include <stdio.h>
#include <string.h>

static void sanitise(char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        *s = '?';
}

int err_set(struct errbuf *e, int r, const char *fmt, ...) {
        va_list ap;

        if (!e)
                return r;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        sanitise(e->msg);
        return r;
}

int err_prefix(struct errbuf *e, int r, const char *fmt, ...) {
        char prefix[ERRBUF_MAX], old[ERRBUF_MAX];
        va_list ap;

        if (!e)
                return r;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        memcpy(old, e->msg, sizeof old);
        if (snprintf(e->msg, sizeof e->msg, "%s: %s", prefix, old) >= (int) sizeof e->msg)
                memcpy(e->msg + sizeof e->msg - 4, "...", 4); /* say it was cut */
        sanitise(e->msg);
        return r;
}
