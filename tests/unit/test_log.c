/* SPDX-License-Identifier: MIT */
/*
 * What reaches the log cannot forge a log line nor act on a terminal:
 * log_msg, its journal fields, and err_set / err_prefix (whose lines the
 * daemon logs) all escape by the one rule of daemon/escape.h (tested on its
 * own in test_escape): CR, LF and every other C0 control and DEL as \xNN,
 * C1 and bidirectional controls as \uNNNN, invalid UTF-8 byte by byte.
 * Data from e-RS (diagnostics, header values, ids) goes through both.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/err.h"
#include "daemon/log.h"

/* Runs log_msg with stderr sent to a temporary file; returns what it wrote. */
static void capture_log(int priority, const char *text, char *ret, size_t size) {
        FILE *f = tmpfile();
        int saved;
        size_t n;

        assert_non_null(f);
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        assert_true(saved >= 0);
        assert_true(dup2(fileno(f), STDERR_FILENO) >= 0);
        log_msg(priority, "got %s", text);
        fflush(stderr);
        assert_true(dup2(saved, STDERR_FILENO) >= 0);
        close(saved);
        rewind(f);
        n = fread(ret, 1, size - 1, f);
        ret[n] = '\0';
        fclose(f);
}

static int setup(void **state) {
        (void) state;
        unsetenv("JOURNAL_STREAM"); /* the plain "ersd: level: " form */
        log_set_level(LOG_DEBUG);
        return 0;
}

static void test_log_escapes_control_characters(void **state) {
        char out[512];

        (void) state;
        capture_log(LOG_ERR, "a\r\nersd: error: forged\tb\x1b[31m\x7f" "c\x01", out, sizeof out);
        assert_string_equal(out, "ersd: error: got a\\x0d\\x0aersd: error: forged\\x09b\\x1b[31m\\x7fc\\x01\n");
        /* One call, one line. */
        assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
        assert_null(strchr(out, '\r'));
}

/* C1 controls (U+009B is CSI on many terminals), bidirectional overrides and
 * isolates, and bytes that are not UTF-8: escaped as well. */
static void test_log_escapes_c1_bidi_and_invalid_utf8(void **state) {
        char out[512];

        (void) state;
        capture_log(LOG_ERR, "id \xc2\x9b" "2J \xc2\x85 \xe2\x80\xae" "fdp.exe \xe2\x81\xa6x\xe2\x81\xa9 \xd8\x9c\xe2\x80\x8f \x9b\xff\xc0\xaf",
                    out, sizeof out);
        assert_string_equal(out, "ersd: error: got id \\u009b2J \\u0085 \\u202efdp.exe \\u2066x\\u2069 \\u061c\\u200f "
                                 "\\x9b\\xff\\xc0\\xaf\n");
}

static void test_log_keeps_printable_text(void **state) {
        char out[512];

        (void) state;
        capture_log(LOG_WARNING, "UBRN 000000070000 \"quoted\" 100% é \\ \xf0\x9f\x98\x80 \xd7\xa9\xd7\x9c", out, sizeof out);
        assert_string_equal(out, "ersd: warning: got UBRN 000000070000 \"quoted\" 100% é \\ \xf0\x9f\x98\x80 \xd7\xa9\xd7\x9c\n");
}

/* A line longer than the log keeps stays one line (cut, never split), and
 * is not cut in the middle of a character. */
static void test_log_long_line_stays_one_line(void **state) {
        static char text[4096], out[32768];

        (void) state;
        for (size_t i = 0; i < sizeof text - 1; i++)
                text[i] = i % 64 == 63 ? '\n' : 'x';
        capture_log(LOG_ERR, text, out, sizeof out);
        assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
        /* all 3-byte characters, and at the worst, every byte escaped */
        for (size_t i = 0; i + 3 < sizeof text; i += 3)
                memcpy(text + i, "\xe2\x80\xae", 3);
        text[sizeof text - 1] = '\0';
        capture_log(LOG_ERR, text, out, sizeof out);
        assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
        assert_null(strstr(out, "\\xe2"));
        memset(text, 0x01, sizeof text - 1);
        capture_log(LOG_ERR, text, out, sizeof out);
        assert_ptr_equal(strchr(out, '\n'), out + strlen(out) - 1);
}

static void test_log_level_drops(void **state) {
        char out[64];

        (void) state;
        log_set_level(LOG_NOTICE);
        capture_log(LOG_DEBUG, "hidden", out, sizeof out);
        log_set_level(LOG_DEBUG);
        assert_string_equal(out, "");
}

static void test_err_set_and_prefix_escape(void **state) {
        struct errbuf e = { { 0 } };

        (void) state;
        assert_int_equal(err_set(&e, -22, "server said %s", "bad\r\nersd: error: forged\x1b\xc2\x9b\xe2\x80\xae"), -22);
        assert_string_equal(e.msg, "server said bad\\x0d\\x0aersd: error: forged\\x1b\\u009b\\u202e");
        assert_int_equal(err_prefix(&e, -5, "A005 %s\n", "000000070000"), -5);
        /* escaped once: what was escaped already stays as it is */
        assert_string_equal(e.msg, "A005 000000070000\\x0a: server said bad\\x0d\\x0aersd: error: forged\\x1b\\u009b\\u202e");
        assert_int_equal(err_set(NULL, -1, "nowhere"), -1);
}

/* A message too long: cut between whole escapes and characters, never
 * past the buffer; err_prefix says it was cut. */
static void test_err_cut(void **state) {
        struct errbuf e = { { 0 } };
        char text[2 * ERRBUF_MAX];

        (void) state;
        for (size_t i = 0; i + 3 < sizeof text; i += 3)
                memcpy(text + i, "\xe2\x80\xae", 3); /* U+202E, shown as 6 bytes */
        text[sizeof text - 1 - (sizeof text - 1) % 3] = '\0';
        err_set(&e, -1, "%s", text);
        assert_true(strlen(e.msg) < ERRBUF_MAX);
        assert_int_equal(strlen(e.msg) % 6, 0);
        assert_null(strchr(e.msg, '\xe2'));
        memset(text, 'a', sizeof text - 1);
        text[sizeof text - 1] = '\0';
        err_set(&e, -1, "%s", text);
        err_prefix(&e, -1, "A005 \x1b");
        assert_int_equal(strlen(e.msg), ERRBUF_MAX - 1);
        assert_memory_equal(e.msg, "A005 \\x1b: aaa", 14);
        assert_string_equal(e.msg + ERRBUF_MAX - 4, "...");
}

/* The journal entry's fields as "NAME=value" strings, in order. */
static size_t fields_of(int priority, const struct log_ctx *ctx, const char *message, char *buf, size_t size,
                        char out[LOG_JOURNAL_FIELDS_MAX][512]) {
        struct iovec iov[LOG_JOURNAL_FIELDS_MAX];
        size_t n = log_journal_fields(priority, ctx, message, buf, size, iov);

        assert_true(n <= LOG_JOURNAL_FIELDS_MAX);
        for (size_t i = 0; i < n; i++) {
                assert_true(iov[i].iov_len < 512);
                assert_ptr_not_equal(memchr(iov[i].iov_base, '=', iov[i].iov_len), NULL);
                memcpy(out[i], iov[i].iov_base, iov[i].iov_len);
                out[i][iov[i].iov_len] = '\0';
        }
        return n;
}

static void test_journal_fields_name_what_the_line_is_about(void **state) {
        const struct log_ctx ctx = { .ubrn = "000000070000",
                                     .correlation_id = "0b7c2a1e-3f4d-4c5b-9a8e-7d6c5b4a3f2e",
                                     .worklist = "cardiology",
                                     .stage = "documents" };
        char buf[4096], f[LOG_JOURNAL_FIELDS_MAX][512];
        (void) state;

        assert_int_equal(fields_of(LOG_ERR, &ctx, "UBRN 000000070000 not synced", buf, sizeof buf, f), 7);
        assert_string_equal(f[0], "MESSAGE=UBRN 000000070000 not synced");
        assert_string_equal(f[1], "PRIORITY=3");
        assert_string_equal(f[2], "SYSLOG_IDENTIFIER=ersd");
        assert_string_equal(f[3], "ERS_UBRN=000000070000");
        assert_string_equal(f[4], "ERS_CORRELATION_ID=0b7c2a1e-3f4d-4c5b-9a8e-7d6c5b4a3f2e");
        assert_string_equal(f[5], "ERS_WORKLIST=cardiology");
        assert_string_equal(f[6], "ERS_STAGE=documents");
}

/* Fields not set are left out; without a context only the message, priority and identifier. */
static void test_journal_fields_only_those_set(void **state) {
        const struct log_ctx ctx = { .worklist = "", .stage = "worklist" };
        char buf[4096], f[LOG_JOURNAL_FIELDS_MAX][512];
        (void) state;

        assert_int_equal(fields_of(LOG_DEBUG, NULL, "plain", buf, sizeof buf, f), 3);
        assert_string_equal(f[1], "PRIORITY=7");
        assert_int_equal(fields_of(LOG_WARNING, &ctx, "w", buf, sizeof buf, f), 4);
        assert_string_equal(f[3], "ERS_STAGE=worklist");
}

/* SQLSTATE: given, or read from the "SQLSTATE xxxxx" the PAS adapters write; never a guess. */
static void test_journal_fields_sqlstate(void **state) {
        const struct log_ctx given = { .stage = "pas", .sqlstate = "40001" };
        const struct log_ctx pas = { .stage = "pas" };
        char buf[4096], f[LOG_JOURNAL_FIELDS_MAX][512];
        (void) state;

        assert_int_equal(fields_of(LOG_ERR, &pas, "PAS database: insert: SQLSTATE 23000 (constraint)", buf,
                                   sizeof buf, f), 5);
        assert_string_equal(f[4], "SQLSTATE=23000");
        assert_int_equal(fields_of(LOG_ERR, &given, "PAS database: SQLSTATE 23000", buf, sizeof buf, f), 5);
        assert_string_equal(f[4], "SQLSTATE=40001");
        assert_int_equal(fields_of(LOG_ERR, &pas, "SQLSTATE 2300", buf, sizeof buf, f), 4);
        assert_int_equal(fields_of(LOG_ERR, &pas, "SQLSTATE 230001", buf, sizeof buf, f), 4);
        assert_int_equal(fields_of(LOG_ERR, &pas, "no state here", buf, sizeof buf, f), 4);
}

/* A value cannot add a field or a line: control characters are escaped as in the message. */
static void test_journal_fields_escape_control_characters(void **state) {
        const struct log_ctx ctx = { .worklist = "cardio\nERS_UBRN=999999999999" };
        char buf[4096], f[LOG_JOURNAL_FIELDS_MAX][512];
        (void) state;

        assert_int_equal(fields_of(LOG_INFO, &ctx, "a\nMESSAGE=forged", buf, sizeof buf, f), 4);
        assert_string_equal(f[0], "MESSAGE=a\\x0aMESSAGE=forged");
        assert_string_equal(f[3], "ERS_WORKLIST=cardio\\x0aERS_UBRN=999999999999");
}

/* A buffer too small keeps the fields that fit, whole, and never writes past its end. */
static void test_journal_fields_small_buffer(void **state) {
        const struct log_ctx ctx = { .ubrn = "000000070000", .stage = "referral" };
        char buf[64 + 8], f[LOG_JOURNAL_FIELDS_MAX][512];
        (void) state;

        memset(buf, 'Z', sizeof buf);
        /* 48 bytes for the first three; ERS_UBRN=000000070000 does not fit in the 16 left. */
        assert_int_equal(fields_of(LOG_INFO, &ctx, "short", buf, 64, f), 3);
        assert_string_equal(f[0], "MESSAGE=short");
        assert_string_equal(f[2], "SYSLOG_IDENTIFIER=ersd");
        for (size_t i = 64; i < sizeof buf; i++)
                assert_int_equal(buf[i], 'Z');
        /* With 21 left: no cut UBRN (22 bytes with its NUL), but the stage that fits (19). */
        assert_int_equal(fields_of(LOG_INFO, &ctx, "short", buf, 48 + 21, f), 4);
        assert_string_equal(f[3], "ERS_STAGE=referral");
        for (size_t i = 48 + 21; i < sizeof buf; i++)
                assert_int_equal(buf[i], 'Z');
        /* With 22 left, both whole. */
        assert_int_equal(fields_of(LOG_INFO, &ctx, "short", buf, 48 + 22, f), 4);
        assert_string_equal(f[3], "ERS_UBRN=000000070000");
        /* An escaped value counts as escaped: "\x1b" takes 4 bytes, whole or not at all. */
        const struct log_ctx esc = { .stage = "a\x1b" };
        assert_int_equal(fields_of(LOG_INFO, &esc, "short", buf, 48 + 15, f), 3);
        assert_int_equal(fields_of(LOG_INFO, &esc, "short", buf, 48 + 16, f), 4);
        assert_string_equal(f[3], "ERS_STAGE=a\\x1b");
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_log_escapes_control_characters),
                cmocka_unit_test(test_log_escapes_c1_bidi_and_invalid_utf8),
                cmocka_unit_test(test_log_keeps_printable_text),
                cmocka_unit_test(test_log_long_line_stays_one_line),
                cmocka_unit_test(test_log_level_drops),
                cmocka_unit_test(test_err_set_and_prefix_escape),
                cmocka_unit_test(test_err_cut),
                cmocka_unit_test(test_journal_fields_name_what_the_line_is_about),
                cmocka_unit_test(test_journal_fields_only_those_set),
                cmocka_unit_test(test_journal_fields_sqlstate),
                cmocka_unit_test(test_journal_fields_escape_control_characters),
                cmocka_unit_test(test_journal_fields_small_buffer),
        };
        return cmocka_run_group_tests_name("log", tests, setup, NULL);
}
