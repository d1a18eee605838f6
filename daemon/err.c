/* SPDX-License-Identifier: MIT */
#include "err.h"

#include <ctype.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "escape.h"
#include "util.h"

/* The formatted text `raw` (n: what vsnprintf returned) into e->msg, escaped by
 * the one rule (escape.h), cut between whole characters and escapes; with
 * `say_cut`, a cut ends in "...". */
static void put_escaped(struct errbuf *e, char raw[ERRBUF_MAX], int n, bool say_cut) {
        bool cut = n >= ERRBUF_MAX;

        if (cut)
                raw[ERRBUF_MAX - 1 - utf8_cut(raw, ERRBUF_MAX - 1)] = '\0';
        cut = cut || escape_text_len(raw) >= sizeof e->msg;
        if (!cut || !say_cut) {
                escape_text(raw, e->msg, sizeof e->msg);
                return;
        }
        size_t len = escape_text(raw, e->msg, sizeof e->msg - 3);
        memcpy(e->msg + len, "...", 4);
}

int err_set(struct errbuf *e, int r, const char *fmt, ...) {
        char raw[ERRBUF_MAX];
        va_list ap;
        int n;

        if (!e)
                return r;
        va_start(ap, fmt);
        n = vsnprintf(raw, sizeof raw, fmt, ap);
        va_end(ap);
        put_escaped(e, raw, n, false);
        return r;
}

int err_prefix(struct errbuf *e, int r, const char *fmt, ...) {
        char prefix[ERRBUF_MAX], raw[ERRBUF_MAX];
        va_list ap;

        if (!e)
                return r;
        va_start(ap, fmt);
        vsnprintf(prefix, sizeof prefix, fmt, ap);
        va_end(ap);
        put_escaped(e, raw, snprintf(raw, sizeof raw, "%s: %s", prefix, e->msg), true);
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
