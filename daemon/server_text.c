/* SPDX-License-Identifier: MIT */
#include "server_text.h"

#include <stdbool.h>
#include <string.h>

#include "escape.h"

#define SECRET_START_MIN 12 /* bytes of a secret's start that are scrubbed as if it were whole */
#define JWT_MIN 20          /* bytes of base64url from "eyJ" on taken to be a JWT */

/* Whether the first byte that is not blank is '<': an HTML (or XML) page. */
static bool looks_like_markup(const char *p, size_t n) {
        for (size_t i = 0; i < n; i++) {
                unsigned char ch = (unsigned char) p[i];
                if (ch > ' ')
                        return ch == '<';
        }
        return false;
}

/* The bytes of p[i..n) that are a secret of s (or its start, SECRET_START_MIN
 * long at least), or 0. */
static size_t secret_at(const char *p, size_t n, size_t i, const struct secrets *s) {
        for (size_t k = 0; s && k < SERVER_TEXT_SECRETS; k++) {
                const char *secret = s->s[k];
                size_t len = secret ? strlen(secret) : 0, m = 0;

                while (m < len && i + m < n && p[i + m] == secret[m])
                        m++;
                if (len > 0 && (m == len || m >= SECRET_START_MIN))
                        return m;
        }
        return 0;
}

static bool base64url_or_dot(unsigned char ch) {
        return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-' ||
               ch == '_' || ch == '.';
}

/* The bytes of p[i..n) that are a JWT (a JSON object's base64url: "eyJ" on), or 0. */
static size_t jwt_at(const char *p, size_t n, size_t i) {
        size_t m = 0;

        if (n - i < 3 || memcmp(p + i, "eyJ", 3) != 0 || (i > 0 && base64url_or_dot((unsigned char) p[i - 1])))
                return 0;
        while (i + m < n && base64url_or_dot((unsigned char) p[i + m]))
                m++;
        return m >= JWT_MIN ? m : 0;
}

size_t server_text(const char *p, size_t n, const struct secrets *secrets, char *buf, size_t size) {
        bool markup = looks_like_markup(p, n), in_tag = false, blank = true, cut = false;
        size_t most = size > 4 ? size - 4 : 0, o = 0;

        if (most > SERVER_TEXT_MAX)
                most = SERVER_TEXT_MAX;
        for (size_t i = 0; i < n && !cut; i++) {
                unsigned char ch = (unsigned char) p[i];
                const char *word = NULL; /* a marker written whole instead of bytes of p */
                char piece[ESCAPE_CHAR_MAX];
                size_t len = 1, skip = 0;

                if (!in_tag && (skip = secret_at(p, n, i, secrets)) > 0)
                        word = SERVER_TEXT_SECRET;
                else if (!in_tag && (skip = jwt_at(p, n, i)) > 0)
                        word = SERVER_TEXT_JWT;
                if (word) {
                        i += skip - 1;
                        len = strlen(word);
                } else {
                        if (markup && ch == '<')
                                in_tag = true;
                        if (in_tag || ch <= ' ' || ch == 0x7f) {
                                if (in_tag && ch == '>')
                                        in_tag = false;
                                blank = true; /* one space, written before the next word */
                                continue;
                        }
                        i += escape_char(p + i, n - i, ESCAPE_TEXT, piece, &len) - 1; /* the one rule */
                }
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
                memcpy(buf + o, word ? word : piece, len);
                o += len;
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
