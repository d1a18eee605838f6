/* SPDX-License-Identifier: MIT */
#include "server_text.h"

#include <stdbool.h>
#include <stdio.h>

/* Whether the first byte that is not blank is '<': an HTML (or XML) page. */
static bool looks_like_markup(const char *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char) p[i];
                if (ch > ' ')
                        return ch == '<';
        }
        return false;
}

size_t server_text(const char *p, size_t n, char *buf, size_t size) {
        bool markup = looks_like_markup(p, n), in_tag = false, blank = true, cut = false;
        size_t most = size > 4 ? size - 4 : 0, o = 0;

        if (most > SERVER_TEXT_MAX)
                most = SERVER_TEXT_MAX;
        for (size_t i = 0; i < n && !cut; i++) {
                unsigned char ch = (unsigned char) p[i];
                char piece[5];
                size_t len = 1;

                if (markup && ch == '<')
                        in_tag = true;
                if (in_tag || ch <= ' ' || ch == 0x7f) {
                        if (in_tag && ch == '>')
                                in_tag = false;
                        blank = true; /* one space, written before the next word */
                        continue;
                }
                if (ch >= 0x80 || ch == '\\' || ch == '"')
                        len = (size_t) snprintf(piece, sizeof piece, "\\x%02x", ch);
                else
                        piece[0] = (char) ch;
                if (blank && o > 0) {
                        if (o + 1 > most) {
                                cut = true;
                                break;
                        }
                        buf[o++] = ' ';
                }
                blank = false;
                if (o + len > most) {
                        cut = true;
                        break;
                }
                for (size_t k = 0; k < len; k++)
                        buf[o++] = piece[k];
        }
        if (size == 0)
                return 0;
        if (cut && size >= 4) { /* o <= most = size - 4: room for the dots and the NUL */
                buf[o++] = '.';
                buf[o++] = '.';
                buf[o++] = '.';
        }
        buf[o] = '\0';
        return o;
}
