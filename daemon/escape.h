/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The one rule for showing text from outside: whatever e-RS sent (ids, codes,
 * titles, error text), what the PAS holds, what a server said.  Every output
 * of ersd applies it: the log and its journal fields (log.c), error lines
 * (err.c), `ersd status` (text, JSON, Prometheus), `ersd audit` (text and
 * JSON), `ersd reconcile`, the --once report and `ersd sync UBRN`.
 * docs/internals/output.md ("Text from outside") says it for readers.
 *
 * Valid UTF-8 is shown as it is (é, emoji, Arabic and Hebrew letters, a
 * backslash), except what a terminal or a text viewer would act on:
 *
 *   C0 controls U+0000..U+001F and DEL U+007F            \xNN     \x0a \x1b \x7f
 *   C1 controls U+0080..U+009F                           \uNNNN   \u009b (CSI) \u0085 (NEL)
 *   bidirectional controls U+061C, U+200E, U+200F,
 *     U+202A..U+202E, U+2066..U+2069, and the deprecated
 *     format controls U+206A..U+206F                     \uNNNN   \u202e
 *   line and paragraph separators U+2028, U+2029         \uNNNN
 *   each byte that is not part of valid UTF-8 (a stray
 *     continuation, a sequence cut short, an overlong
 *     form, a surrogate, past U+10FFFF)                  \xNN     \xc0 \x80
 *
 * A backslash is not doubled, so the rule is idempotent: escaped text
 * escapes to itself, and text escaped before it was stored (error lines, the
 * audit trail) is never escaped twice.  What is shown is for reading; where
 * the exact value matters it is given in JSON (`ersd audit --json`).
 *
 * In JSON text (ESCAPE_JSON, for json-c's output, which escapes C0 inside
 * strings itself and puts its layout's newlines between them) the same
 * characters are written as JSON escapes, \u007f \u009b \u202e, which a JSON
 * reader turns back into exactly the character sent; a byte that is not
 * UTF-8 cannot be JSON and becomes \ufffd.  C0 is left to json-c.
 */

#include <stdarg.h>
#include <stdio.h>

enum escape_style {
        ESCAPE_TEXT, /* a terminal, a log line */
        ESCAPE_JSON, /* inside JSON text written by json-c */
};

#define ESCAPE_CHAR_MAX 7 /* "\u202e" or a 4-byte character, and the NUL */

/*
 * The rule itself, for the character that starts at s (n > 0 bytes left; a
 * NUL byte there counts as U+0000): writes what is shown for it into ret,
 * NUL-terminated (the character itself, or its escape), and its length into
 * *ret_len.  Returns how many bytes of s that was (1 to 4).
 */
size_t escape_char(const char *s, size_t n, enum escape_style style, char ret[ESCAPE_CHAR_MAX], size_t *ret_len);

/* Calls put(userdata, piece, len) for each piece of s as escape_char() shows it. */
void escape_each(const char *s, enum escape_style style, void (*put)(void *userdata, const char *piece, size_t len),
                 void *userdata);

/* s escaped (ESCAPE_TEXT) into out (size > 0), NUL-terminated; cut only between
 * whole escapes and characters.  Returns the length written. */
size_t escape_text(const char *s, char *out, size_t size);

/* The length escape_text() needs for the whole of s, without the NUL. */
size_t escape_text_len(const char *s);

/* Writes s escaped (ESCAPE_TEXT) to out. */
void escape_fputs(const char *s, FILE *out);

/*
 * Formats and writes the result escaped (ESCAPE_TEXT), for a line or part of
 * a line that holds text from outside: the format is the caller's, so its own
 * newlines would be escaped too; write those with fputc().
 */
void escape_fprintf(FILE *out, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Writes JSON text (from json-c) to out escaped with ESCAPE_JSON. */
void escape_json_fputs(const char *json, FILE *out);

/* The same into a new string (the caller frees it); NULL when out of memory. */
char *escape_json_dup(const char *json);
