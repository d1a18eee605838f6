/* SPDX-License-Identifier: MIT */
#include "err.h"

#include <ctype.h>
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

/* "SQLSTATE xxxxx" in a message (the form the PAS adapters write): the five characters, or false. */
bool err_sqlstate(const char *message, char ret[6]) {
        const char *p = strstr(message, "SQLSTATE ");

        if (!p)
                return false;
        p += 9;
        for (int i = 0; i < 5; i++)
                if (!isalnum((unsigned char) p[i]))
                        return false;
        if (isalnum((unsigned char) p[5]))
                return false;
        memcpy(ret, p, 5);
        ret[5] = '\0';
        return true;
}
