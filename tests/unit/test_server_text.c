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

#include "daemon/escape.h"
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
        /* The one rule (escape.h): letters of every script kept, C1 controls, bidi overrides and
         * bytes that are not UTF-8 escaped. */
        { "say \"hi\" \\ caf\xc3\xa9 \xf0\x9f\x99\x82 \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xc2\x9b \xe2\x80\xae \xff\xc3", 0,
          "say \"hi\" \\ caf\xc3\xa9 \xf0\x9f\x99\x82 \xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \\u009b \\u202e \\xff\\xc3" },
        { "", 0, "" },
        { " \r\n\t", 0, "" },
        { "<html><body></body></html>", 0, "" },
};

static void test_server_text_words(void **state) {
        (void) state;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                const struct text_case *c = &cases[i];
                char buf[SERVER_TEXT_MAX + 4];
                size_t n = server_text(c->in, c->len ? c->len : strlen(c->in), NULL, buf, sizeof buf);
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
        size_t n = server_text(in, sizeof in, NULL, buf, sizeof buf);
        assert_true(n <= SERVER_TEXT_MAX + 3);
        assert_int_equal(n, strlen(buf));
        assert_string_equal(buf + n - 3, "...");

        /* Escapes only: each is whole. */
        memset(in, 0xff, sizeof in);
        n = server_text(in, sizeof in, NULL, buf, sizeof buf);
        assert_string_equal(buf + n - 3, "...");
        assert_int_equal((n - 3) % 4, 0);
        for (size_t i = 0; i + 3 < n; i += 4)
                assert_memory_equal(buf + i, "\\xff", 4);

        /* A small buffer bounds it too; one too small for "..." still ends in a NUL. */
        n = server_text(in, sizeof in, NULL, buf, 12);
        assert_true(n < 12);
        assert_string_equal(buf, "\\xff\\xff...");
        n = server_text("abc", 3, NULL, buf, 3);
        assert_int_equal(n, 0);
        assert_string_equal(buf, "");
        n = server_text("abc", 3, NULL, buf, 1);
        assert_int_equal(n, 0);
}

/* Every single byte value, alone and between words: printable or escaped (alone, a
 * byte from 0x80 on is not UTF-8), one line, and shown as the one rule shows it:
 * escaping it again changes nothing. */
static void test_server_text_every_byte(void **state) {
        char in[3], buf[64], again[256];
        (void) state;

        for (int b = 0; b < 256; b++) {
                in[0] = 'a';
                in[1] = (char) b;
                in[2] = 'z';
                server_text(in, sizeof in, NULL, buf, sizeof buf);
                for (const char *p = buf; *p; p++)
                        if ((unsigned char) *p < 0x20 || (unsigned char) *p >= 0x7f)
                                fail_msg("byte 0x%02x: \"%s\" holds 0x%02x", b, buf, (unsigned char) *p);
                escape_text(buf, again, sizeof again);
                assert_string_equal(again, buf);
        }
}

/* Our own secrets never come out, whole or in part, wherever they stand:
 * quoted by the token endpoint (an `iss` claim, the API key), by an API's
 * error page (the bearer token), or cut off by the answer's end; a JWT (an
 * assertion, ours or anyone's) neither.  Scrubbed before the cap, so a cap
 * never leaves a piece of one. */
static void test_server_text_scrubs_our_secrets(void **state) {
        static const char key[] = "ersd-test-api-key-7d41b9", token[] = "Zq8xv1Tk5mPw0aLr3Nc7Yb2Hd9";
        static const char jwt[] = "eyJhbGciOiJSUzUxMiJ9.eyJpc3MiOiJlcnNkLXRlc3QifQ.c2lnbmF0dXJlLWJ5dGVz";
        const struct secrets secrets = { { key, NULL, token, "" } };
        static const struct {
                const char *in, *want;
        } scrub_cases[] = {
                { "Invalid 'iss'/'sub' claims in JWT - unknown API key 'ersd-test-api-key-7d41b9'",
                  "Invalid 'iss'/'sub' claims in JWT - unknown API key '[secret]'" },
                { "{\"iss\":\"ersd-test-api-key-7d41b9\",\"sub\":\"ersd-test-api-key-7d41b9\"}",
                  "{\"iss\":\"[secret]\",\"sub\":\"[secret]\"}" },
                { "<html><body>401: token Zq8xv1Tk5mPw0aLr3Nc7Yb2Hd9 refused</body></html>",
                  "401: token [secret] refused" },
                /* A start of a secret long enough to matter (the answer cut there). */
                { "bad key ersd-test-api", "bad key [secret]" },
                { "bad key ersd-te", "bad key ersd-te" },
                { "assertion eyJhbGciOiJSUzUxMiJ9.eyJpc3MiOiJlcnNkLXRlc3QifQ.c2lnbmF0dXJlLWJ5dGVz was refused",
                  "assertion [JWT] was refused" },
                { "a short eyJ is no JWT", "a short eyJ is no JWT" },
        };
        char buf[SERVER_TEXT_MAX + 4], in[400];
        (void) state;

        for (size_t i = 0; i < sizeof scrub_cases / sizeof scrub_cases[0]; i++) {
                server_text(scrub_cases[i].in, strlen(scrub_cases[i].in), &secrets, buf, sizeof buf);
                if (strcmp(buf, scrub_cases[i].want) != 0)
                        fail_msg("case %zu: got \"%s\", want \"%s\"", i, buf, scrub_cases[i].want);
        }
        /* At every place of a text past the cap, the key whole or cut by the cap: never a piece of it. */
        for (size_t at = 0; at + sizeof key < sizeof in; at++) {
                memset(in, 'x', sizeof in);
                memcpy(in + at, key, sizeof key - 1);
                server_text(in, sizeof in, &secrets, buf, sizeof buf);
                if (strstr(buf, "ersd-test") || strstr(buf, "7d41b9"))
                        fail_msg("key at %zu: \"%s\"", at, buf);
                server_text(jwt, sizeof jwt - 1, NULL, buf, sizeof buf);
                assert_string_equal(buf, SERVER_TEXT_JWT);
        }
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_server_text_words),
                cmocka_unit_test(test_server_text_cap),
                cmocka_unit_test(test_server_text_every_byte),
                cmocka_unit_test(test_server_text_scrubs_our_secrets),
        };
        return cmocka_run_group_tests_name("server_text", tests, NULL, NULL);
}
