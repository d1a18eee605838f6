/* SPDX-License-Identifier: MIT */
/*
 * daemon/escape.c, the one rule for showing text from outside: every class
 * a terminal acts on (C0, DEL, C1, bidirectional and format controls, the
 * line and paragraph separators) and every kind of invalid UTF-8 is escaped,
 * as text and as JSON; valid text (é, emoji, Arabic, Hebrew, a backslash) is
 * left alone; escaping is idempotent; a buffer too small is cut between
 * whole escapes only.  Table-driven.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#include "daemon/escape.h"

struct row {
        const char *what;
        const char *in;
        const char *text; /* ESCAPE_TEXT */
        const char *json; /* ESCAPE_JSON; NULL: the same as `in` (nothing to do in JSON) */
};

static const struct row rows[] = {
        /* left alone */
        { "ASCII", "Scan 03/2025 (left) #7; 100%", "Scan 03/2025 (left) #7; 100%", NULL },
        { "a backslash, quotes", "a\\b \"c\" 'd' \\x41", "a\\b \"c\" 'd' \\x41", NULL },
        { "e acute, en dash", "caf\xc3\xa9 \xe2\x80\x93 na\xc3\xafve", "caf\xc3\xa9 \xe2\x80\x93 na\xc3\xafve", NULL },
        { "emoji, 4 bytes", "\xf0\x9f\x98\x80 \xf0\x9f\xa9\xba", "\xf0\x9f\x98\x80 \xf0\x9f\xa9\xba", NULL },
        { "emoji joined (ZWJ U+200D kept)", "\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb",
          "\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x92\xbb", NULL },
        { "Arabic letters", "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7", "\xd9\x85\xd8\xb1\xd8\xad\xd8\xa8\xd8\xa7", NULL },
        { "Hebrew letters", "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d", "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d", NULL },
        { "CJK", "\xe6\x96\x87\xe6\x9b\xb8", "\xe6\x96\x87\xe6\x9b\xb8", NULL },
        { "NBSP U+00A0 (after C1)", "a\xc2\xa0" "b", "a\xc2\xa0" "b", NULL },
        { "U+FFFD", "\xef\xbf\xbd", "\xef\xbf\xbd", NULL },
        { "U+10FFFF, the last", "\xf4\x8f\xbf\xbf", "\xf4\x8f\xbf\xbf", NULL },
        { "U+2010, U+2027, U+202F, U+2065, U+2070 (next to the escaped ones)",
          "\xe2\x80\x90\xe2\x80\xa7\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xb0",
          "\xe2\x80\x90\xe2\x80\xa7\xe2\x80\xaf\xe2\x81\xa5\xe2\x81\xb0", NULL },
        { "U+061B, U+061D (next to ALM)", "\xd8\x9b\xd8\x9d", "\xd8\x9b\xd8\x9d", NULL },
        { "empty", "", "", NULL },

        /* C0 and DEL */
        { "CR LF", "a\r\nersd: error: forged", "a\\x0d\\x0aersd: error: forged", NULL },
        { "ESC sequence (SGR, title, clear)", "\x1b[31mred\x1b]0;pwned\x07\x1b[2J",
          "\\x1b[31mred\\x1b]0;pwned\\x07\\x1b[2J", NULL },
        { "tab, BEL, NUL-free C0 ends", "\t\x01\x1f", "\\x09\\x01\\x1f", NULL },
        { "DEL", "a\x7f" "b", "a\\x7fb", "a\\u007fb" },

        /* C1 */
        { "U+0080", "\xc2\x80", "\\u0080", "\\u0080" },
        { "U+0085 NEL", "a\xc2\x85" "b", "a\\u0085b", "a\\u0085b" },
        { "U+009B CSI", "\xc2\x9b" "31m", "\\u009b31m", "\\u009b31m" },
        { "U+009D OSC, U+009C ST", "\xc2\x9d" "0;t\xc2\x9c", "\\u009d0;t\\u009c", "\\u009d0;t\\u009c" },
        { "U+009F", "\xc2\x9f", "\\u009f", "\\u009f" },

        /* bidirectional and format controls, separators */
        { "U+061C ALM", "\xd8\x9c", "\\u061c", "\\u061c" },
        { "U+200E LRM, U+200F RLM", "\xe2\x80\x8e\xe2\x80\x8f", "\\u200e\\u200f", "\\u200e\\u200f" },
        { "U+202A..U+202E embeddings and overrides", "\xe2\x80\xaa\xe2\x80\xab\xe2\x80\xac\xe2\x80\xad\xe2\x80\xae",
          "\\u202a\\u202b\\u202c\\u202d\\u202e", "\\u202a\\u202b\\u202c\\u202d\\u202e" },
        { "RLO hiding a reversed name", "invoice\xe2\x80\xae" "fdp.exe", "invoice\\u202efdp.exe",
          "invoice\\u202efdp.exe" },
        { "U+2066..U+2069 isolates", "\xe2\x81\xa6\xe2\x81\xa7\xe2\x81\xa8\xe2\x81\xa9",
          "\\u2066\\u2067\\u2068\\u2069", "\\u2066\\u2067\\u2068\\u2069" },
        { "U+206A..U+206F deprecated format controls", "\xe2\x81\xaa\xe2\x81\xaf", "\\u206a\\u206f",
          "\\u206a\\u206f" },
        { "U+2028, U+2029 separators", "a\xe2\x80\xa8" "b\xe2\x80\xa9", "a\\u2028b\\u2029", "a\\u2028b\\u2029" },
        { "Hebrew with an override inside", "\xd7\xa9\xe2\x80\xae\xd7\x9c", "\xd7\xa9\\u202e\xd7\x9c",
          "\xd7\xa9\\u202e\xd7\x9c" },

        /* not UTF-8: each byte on its own */
        { "raw C1 byte 0x9B (Latin-1 CSI)", "\x9b" "31m", "\\x9b31m", "\\ufffd31m" },
        { "stray continuation bytes", "a\x80\xbf" "b", "a\\x80\\xbfb", "a\\ufffd\\ufffdb" },
        { "lead byte cut at the end", "a\xc3", "a\\xc3", "a\\ufffd" },
        { "lead byte then ASCII", "\xc3" "A", "\\xc3A", "\\ufffdA" },
        { "3-byte sequence cut short", "\xe2\x80", "\\xe2\\x80", "\\ufffd\\ufffd" },
        { "overlong U+001B (C0 9B)", "\xc0\x9b", "\\xc0\\x9b", "\\ufffd\\ufffd" },
        { "overlong '/' (C1 AF)", "\xc1\xaf", "\\xc1\\xaf", "\\ufffd\\ufffd" },
        { "overlong 3-byte (E0 80 80)", "\xe0\x80\x80", "\\xe0\\x80\\x80", "\\ufffd\\ufffd\\ufffd" },
        { "overlong 4-byte (F0 80 80 80)", "\xf0\x80\x80\x80", "\\xf0\\x80\\x80\\x80",
          "\\ufffd\\ufffd\\ufffd\\ufffd" },
        { "surrogate U+D800", "\xed\xa0\x80", "\\xed\\xa0\\x80", "\\ufffd\\ufffd\\ufffd" },
        { "past U+10FFFF (F4 90 80 80)", "\xf4\x90\x80\x80", "\\xf4\\x90\\x80\\x80",
          "\\ufffd\\ufffd\\ufffd\\ufffd" },
        { "F5..FF", "\xf5\xfe\xff", "\\xf5\\xfe\\xff", "\\ufffd\\ufffd\\ufffd" },
        { "valid after invalid", "\xff\xc3\xa9", "\\xff\xc3\xa9", "\\ufffd\xc3\xa9" },
};

static char *escaped(const char *in) {
        size_t n = escape_text_len(in);
        char *out = malloc(n + 1);

        assert_non_null(out);
        assert_int_equal(escape_text(in, out, n + 1), n);
        return out;
}

/* Each row as text and as JSON. */
static void test_escape_each_class(void **state) {
        (void) state;
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
                char *text = escaped(rows[i].in), *json = escape_json_dup(rows[i].in);
                assert_non_null(json);
                if (strcmp(text, rows[i].text) != 0)
                        fail_msg("%s: escaped wrongly", rows[i].what);
                /* C0 is json-c's to escape: left as it is in JSON */
                if (strcmp(json, rows[i].json ? rows[i].json : rows[i].in) != 0)
                        fail_msg("%s: JSON escaped wrongly", rows[i].what);
                free(text);
                free(json);
        }
}

/* What is shown holds no byte a terminal acts on: printable ASCII and valid
 * UTF-8 of characters outside every escaped class only. */
static void test_output_is_inert(void **state) {
        (void) state;
        for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
                char *out = escaped(rows[i].in);
                for (const unsigned char *p = (const unsigned char *) out; *p; p++) {
                        if (*p < 0x20 || *p == 0x7f)
                                fail_msg("%s: control byte 0x%02x left", rows[i].what, *p);
                        if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
                                fail_msg("%s: C1 left", rows[i].what);
                        if (p[0] == 0xe2 && ((p[1] == 0x80 && (p[2] == 0x8e || p[2] == 0x8f ||
                                                                 (p[2] >= 0xa8 && p[2] <= 0xae))) ||
                                              (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xaf)))
                                fail_msg("%s: bidi control or separator left", rows[i].what);
                }
                /* every byte of what is shown is valid UTF-8: escaping it again changes nothing */
                char *again = escaped(out);
                if (strcmp(again, out) != 0)
                        fail_msg("%s: not idempotent", rows[i].what);
                free(again);
                free(out);
        }
}

/* Every C0 character and DEL, one by one; and U+0000 through escape_char. */
static void test_every_c0(void **state) {
        char in[2] = "", want[8], out[8], piece[ESCAPE_CHAR_MAX];
        size_t len;

        (void) state;
        for (int c = 1; c < 0x80; c++) {
                if (c >= 0x20 && c < 0x7f)
                        continue;
                in[0] = (char) c;
                snprintf(want, sizeof want, "\\x%02x", c);
                escape_text(in, out, sizeof out);
                assert_string_equal(out, want);
        }
        assert_int_equal(escape_char("\0x", 2, ESCAPE_TEXT, piece, &len), 1);
        assert_string_equal(piece, "\\x00");
        assert_int_equal(len, 4);
}

/* Every C1 character, one by one, as text and as JSON. */
static void test_every_c1(void **state) {
        char in[3] = "", want[8], piece[ESCAPE_CHAR_MAX];
        size_t len;

        (void) state;
        for (int c = 0x80; c <= 0x9f; c++) {
                in[0] = (char) 0xc2;
                in[1] = (char) c;
                snprintf(want, sizeof want, "\\u%04x", c);
                assert_int_equal(escape_char(in, 2, ESCAPE_TEXT, piece, &len), 2);
                assert_string_equal(piece, want);
                assert_int_equal(escape_char(in, 2, ESCAPE_JSON, piece, &len), 2);
                assert_string_equal(piece, want);
        }
}

/* JSON escaped by the rule parses back to exactly the original text. */
static void test_json_round_trip(void **state) {
        static const char *const texts[] = {
                "x\n{\"document_id\":\"forged\"}",
                "\x1b[2J\xc2\x9b" "1m\xe2\x80\xae" "cod.exe\xe2\x81\xa6",
                "caf\xc3\xa9 \xf0\x9f\x98\x80 \xd7\xa9\xd7\x9c \\ \"q\" \x7f",
        };
        (void) state;
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
                json_object *s = json_object_new_string(texts[i]);
                char *j = escape_json_dup(json_object_to_json_string_ext(s, JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object *back = json_tokener_parse(j);
                assert_non_null(back);
                assert_string_equal(json_object_get_string(back), texts[i]);
                /* and nothing raw left in the JSON text */
                char *again = escape_json_dup(j);
                assert_string_equal(again, j);
                for (const unsigned char *p = (const unsigned char *) j; *p; p++)
                        assert_true(*p >= 0x20 && *p != 0x7f && !(p[0] == 0xc2 && p[1] <= 0x9f));
                free(again);
                json_object_put(back);
                json_object_put(s);
                free(j);
        }
}

/* A buffer too small: NUL-terminated, never past its end, never a piece of
 * an escape or of a character. */
static void test_cut_between_whole_escapes(void **state) {
        static const char in[] = "ab\x1b[1m\xc3\xa9\xe2\x80\xae\xf0\x9f\x98\x80" "cd";
        char full[64];
        (void) state;

        size_t n = escape_text(in, full, sizeof full);
        assert_string_equal(full, "ab\\x1b[1m\xc3\xa9\\u202e\xf0\x9f\x98\x80" "cd");
        assert_int_equal(n, escape_text_len(in));
        for (size_t size = 1; size <= n + 1; size++) {
                char out[64];
                memset(out, 'Z', sizeof out);
                size_t got = escape_text(in, out, size);
                assert_true(got < size);
                assert_int_equal(out[got], '\0');
                for (size_t k = size; k < sizeof out; k++)
                        assert_int_equal(out[k], 'Z');
                /* a prefix of the whole, ending at a boundary of the whole */
                assert_memory_equal(out, full, got);
                static const size_t bounds[] = { 0, 1, 2, 6, 7, 8, 9, 11, 17, 21, 22, 23 };
                bool at_bound = false;
                for (size_t b = 0; b < sizeof bounds / sizeof bounds[0]; b++)
                        at_bound |= got == bounds[b];
                if (!at_bound)
                        fail_msg("size %zu: cut at %zu, inside an escape or a character", size, got);
        }
        assert_int_equal(escape_text(in, full, 0), 0);
}

/* escape_fprintf: a line longer than its first buffer is kept whole. */
static void test_fprintf_long_line(void **state) {
        char *big = malloc(5001), *text;
        size_t len;
        FILE *f = tmpfile();
        (void) state;

        assert_non_null(big);
        assert_non_null(f);
        memset(big, 'a', 5000);
        big[4999] = '\x1b';
        big[5000] = '\0';
        escape_fprintf(f, "[%s]", big);
        len = (size_t) ftell(f);
        assert_int_equal(len, 1 + 4999 + 4 + 1);
        rewind(f);
        text = calloc(1, len + 1);
        assert_non_null(text);
        assert_int_equal(fread(text, 1, len, f), len);
        assert_memory_equal(text + len - 5, "\\x1b]", 5);
        free(text);
        free(big);
        fclose(f);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_escape_each_class),
                cmocka_unit_test(test_output_is_inert),
                cmocka_unit_test(test_every_c0),
                cmocka_unit_test(test_every_c1),
                cmocka_unit_test(test_json_round_trip),
                cmocka_unit_test(test_cut_between_whole_escapes),
                cmocka_unit_test(test_fprintf_long_line),
        };
        return cmocka_run_group_tests_name("escape", tests, NULL, NULL);
}
