/* SPDX-License-Identifier: MIT */
/*
 * server_text(): what a server said, as one log line may quote it.  Outside
 * input: every byte value, pages in HTML, texts far longer than a line.
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

#include "daemon/server_text.h"

struct text_case {
        const char *in;
        size_t len; /* 0: strlen(in) */
        const char *want;
};

static const struct text_case cases[] = {
        { "400 No required SSL certificate was sent\n", 0, "400 No required SSL certificate was sent" },
        { "AccessDenied: Request has expired\r\n", 0, "AccessDenied: Request has expired" },
        /* A gateway's HTML page: its tags go, its words stay. */
        { "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>\n<body><h1>Bad\tGateway</h1>"
          "<p>The upstream server failed.</p></body></html>\n",
          0, "502 Bad Gateway Bad Gateway The upstream server failed." },
        /* Not HTML: a '<' in plain text is a word like any other. */
        { "error: 3 < 4", 0, "error: 3 < 4" },
        /* Blanks and control characters: one space, none at the ends. */
        { "  \t a \r\n\x1b[31m b\x7f  ", 0, "a [31m b" },
        /* A NUL inside the text is a blank too: nothing after it is lost. */
        { "before\0after", 12, "before after" },
        /* Quotes, backslashes and every byte outside ASCII escaped: the words can be quoted,
         * and neither C1 controls nor bidi overrides reach a terminal. */
        { "say \"hi\" \\ caf\xc3\xa9 \xc2\x9b \xe2\x80\xae", 0,
          "say \\x22hi\\x22 \\x5c caf\\xc3\\xa9 \\xc2\\x9b \\xe2\\x80\\xae" },
        { "", 0, "" },
        { " \r\n\t", 0, "" },
        { "<html><body></body></html>", 0, "" },
};

static void test_server_text_words(void **state) {
        (void) state;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                const struct text_case *c = &cases[i];
                char buf[SERVER_TEXT_MAX + 4];
                size_t n = server_text(c->in, c->len ? c->len : strlen(c->in), buf, sizeof buf);
                if (strcmp(buf, c->want) != 0 || n != strlen(buf))
                        fail_msg("case %zu: got \"%s\" (%zu), want \"%s\"", i, buf, n, c->want);
        }
}

/* A text far longer than a line: cut at SERVER_TEXT_MAX with "...", never
 * inside an escape, whatever the buffer. */
static void test_server_text_cap(void **state) {
        char in[4000], buf[1024];
        (void) state;

        memset(in, 'w', sizeof in);
        for (size_t i = 7; i < sizeof in; i += 8)
                in[i] = ' ';
        size_t n = server_text(in, sizeof in, buf, sizeof buf);
        assert_true(n <= SERVER_TEXT_MAX + 3);
        assert_int_equal(n, strlen(buf));
        assert_string_equal(buf + n - 3, "...");

        /* Escapes only: each is whole. */
        memset(in, 0xff, sizeof in);
        n = server_text(in, sizeof in, buf, sizeof buf);
        assert_string_equal(buf + n - 3, "...");
        assert_int_equal((n - 3) % 4, 0);
        for (size_t i = 0; i + 3 < n; i += 4)
                assert_memory_equal(buf + i, "\\xff", 4);

        /* A small buffer bounds it too; one too small for "..." still ends in a NUL. */
        n = server_text(in, sizeof in, buf, 12);
        assert_true(n < 12);
        assert_string_equal(buf, "\\xff\\xff...");
        n = server_text("abc", 3, buf, 3);
        assert_int_equal(n, 0);
        assert_string_equal(buf, "");
        n = server_text("abc", 3, buf, 1);
        assert_int_equal(n, 0);
}

/* Every single byte value, alone and between words: printable or escaped, one line. */
static void test_server_text_every_byte(void **state) {
        char in[3], buf[64];
        (void) state;

        for (int b = 0; b < 256; b++) {
                in[0] = 'a';
                in[1] = (char) b;
                in[2] = 'z';
                server_text(in, sizeof in, buf, sizeof buf);
                for (const char *p = buf; *p; p++)
                        if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f || *p == '"')
                                fail_msg("byte 0x%02x: \"%s\" holds 0x%02x", b, buf, (unsigned char) *p);
        }
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_server_text_words),
                cmocka_unit_test(test_server_text_cap),
                cmocka_unit_test(test_server_text_every_byte),
        };
        return cmocka_run_group_tests_name("server_text", tests, NULL, NULL);
}
