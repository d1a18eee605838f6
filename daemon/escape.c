/* SPDX-License-Identifier: MIT */
/* The one rule for showing text from outside (escape.h). */
#include "escape.h"

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Decodes the UTF-8 character at s (n > 0 bytes): its code point, and its
 * length in *ret_len; false when s does not start a valid one (shortest form,
 * no surrogate, at most U+10FFFF, every byte there). */
static bool utf8_decode(const unsigned char *s, size_t n, uint32_t *ret_cp, size_t *ret_len) {
        uint32_t cp, min;
        size_t len;

        if (s[0] < 0x80) {
                *ret_cp = s[0];
                *ret_len = 1;
                return true;
        }
        if (s[0] >= 0xC2 && s[0] <= 0xDF) {
                len = 2;
                cp = s[0] & 0x1Fu;
                min = 0x80;
        } else if (s[0] >= 0xE0 && s[0] <= 0xEF) {
                len = 3;
                cp = s[0] & 0x0Fu;
                min = 0x800;
        } else if (s[0] >= 0xF0 && s[0] <= 0xF4) {
                len = 4;
                cp = s[0] & 0x07u;
                min = 0x10000;
        } else
                return false; /* a continuation byte, C0/C1 (always overlong), F5..FF */
        if (n < len)
                return false;
        for (size_t i = 1; i < len; i++) {
                if ((s[i] & 0xC0) != 0x80)
                        return false;
                cp = (cp << 6) | (s[i] & 0x3Fu);
        }
        if (cp < min || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
                return false;
        *ret_cp = cp;
        *ret_len = len;
        return true;
}

/* What a terminal or a text viewer acts on: C0, DEL, C1, the bidirectional
 * and deprecated format controls, the line and paragraph separators. */
static bool acted_on(uint32_t cp) {
        return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0x061C || cp == 0x200E || cp == 0x200F ||
               cp == 0x2028 || cp == 0x2029 || (cp >= 0x202A && cp <= 0x202E) || (cp >= 0x2066 && cp <= 0x206F);
}

size_t escape_char(const char *s, size_t n, enum escape_style style, char ret[ESCAPE_CHAR_MAX], size_t *ret_len) {
        static const char hex[] = "0123456789abcdef";
        const unsigned char *u = (const unsigned char *) s;
        uint32_t cp;
        size_t len;

        if (!utf8_decode(u, n, &cp, &len)) {
                /* One byte at a time: what follows may still be valid. */
                if (style == ESCAPE_JSON) {
                        memcpy(ret, "\\ufffd", 7);
                        *ret_len = 6;
                } else {
                        ret[0] = '\\';
                        ret[1] = 'x';
                        ret[2] = hex[u[0] >> 4];
                        ret[3] = hex[u[0] & 15];
                        ret[4] = '\0';
                        *ret_len = 4;
                }
                return 1;
        }
        if (!acted_on(cp) || (style == ESCAPE_JSON && cp < 0x20)) {
                memcpy(ret, s, len);
                ret[len] = '\0';
                *ret_len = len;
                return len;
        }
        if (style == ESCAPE_TEXT && cp < 0x80) {
                ret[0] = '\\';
                ret[1] = 'x';
                ret[2] = hex[cp >> 4];
                ret[3] = hex[cp & 15];
                ret[4] = '\0';
                *ret_len = 4;
                return len;
        }
        ret[0] = '\\';
        ret[1] = 'u';
        ret[2] = hex[(cp >> 12) & 15];
        ret[3] = hex[(cp >> 8) & 15];
        ret[4] = hex[(cp >> 4) & 15];
        ret[5] = hex[cp & 15];
        ret[6] = '\0';
        *ret_len = 6;
        return len;
}

void escape_each(const char *s, enum escape_style style, void (*put)(void *userdata, const char *piece, size_t len),
                 void *userdata) {
        size_t n = s ? strlen(s) : 0;

        while (n > 0) {
                /* A run that needs nothing done is handed on whole. */
                size_t plain = 0;
                while (plain < n && (unsigned char) s[plain] >= 0x20 && (unsigned char) s[plain] < 0x7F)
                        plain++;
                if (plain > 0) {
                        put(userdata, s, plain);
                        s += plain;
                        n -= plain;
                        continue;
                }
                char piece[ESCAPE_CHAR_MAX];
                size_t len, used = escape_char(s, n, style, piece, &len);
                put(userdata, piece, len);
                s += used;
                n -= used;
        }
}

/* ---- into a buffer -------------------------------------------------------- */

struct into_buffer {
        char *out;
        size_t size, len;
        bool full; /* a piece did not fit: nothing more is added */
};

static void put_buffer(void *userdata, const char *piece, size_t len) {
        struct into_buffer *b = userdata;

        if (b->full)
                return;
        if (len >= b->size - b->len) {
                /* A run of plain ASCII is cut where it must; an escape (a
                 * backslash and at most 5 more) or a character never. */
                bool atomic = (unsigned char) piece[0] >= 0x80 || (piece[0] == '\\' && len < ESCAPE_CHAR_MAX);
                if (!atomic) {
                        size_t fit = b->size - b->len - 1;
                        memcpy(b->out + b->len, piece, fit);
                        b->len += fit;
                }
                b->full = true;
                return;
        }
        memcpy(b->out + b->len, piece, len);
        b->len += len;
}

size_t escape_text(const char *s, char *out, size_t size) {
        struct into_buffer b = { .out = out, .size = size };

        if (size == 0)
                return 0;
        escape_each(s, ESCAPE_TEXT, put_buffer, &b);
        out[b.len] = '\0';
        return b.len;
}

static void put_count(void *userdata, const char *piece, size_t len) {
        (void) piece;
        *(size_t *) userdata += len;
}

size_t escape_text_len(const char *s) {
        size_t n = 0;

        escape_each(s, ESCAPE_TEXT, put_count, &n);
        return n;
}

/* ---- onto a stream ---------------------------------------------------------- */

static void put_file(void *userdata, const char *piece, size_t len) {
        fwrite(piece, 1, len, userdata);
}

void escape_fputs(const char *s, FILE *out) {
        escape_each(s, ESCAPE_TEXT, put_file, out);
}

void escape_fprintf(FILE *out, const char *fmt, ...) {
        char small[1024], *big;
        va_list ap;
        int n;

        va_start(ap, fmt);
        n = vsnprintf(small, sizeof small, fmt, ap);
        va_end(ap);
        if (n < 0)
                return;
        /* Kept whole: a longer line is formatted again into its own buffer (out
         * of memory: what fitted, a character cut at its end shown as the bytes
         * it kept). */
        big = (size_t) n >= sizeof small ? malloc((size_t) n + 1) : NULL; /* owned */
        if (!big) {
                escape_fputs(small, out);
                return;
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t) n + 1, fmt, ap);
        va_end(ap);
        escape_fputs(big, out);
        free(big);
}

void escape_json_fputs(const char *json, FILE *out) {
        escape_each(json, ESCAPE_JSON, put_file, out);
}

/* ---- JSON into a new string ---------------------------------------------------- */

char *escape_json_dup(const char *json) {
        size_t n = 0;
        char *p;

        escape_each(json, ESCAPE_JSON, put_count, &n);
        p = malloc(n + 1);
        if (!p)
                return NULL;
        struct into_buffer b = { .out = p, .size = n + 1 };
        escape_each(json, ESCAPE_JSON, put_buffer, &b);
        p[b.len] = '\0';
        return p;
}
