/* SPDX-License-Identifier: MIT */
/*
 * What reaches the log cannot forge a log line: log_msg escapes CR, LF and
 * every other control character as \xNN, and err_set / err_prefix (whose
 * lines the daemon logs) replace them by '?'.  Data from e-RS (diagnostics,
 * header values) goes through both.
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

static void test_log_keeps_printable_text(void **state) {
        char out[512];

        (void) state;
        capture_log(LOG_WARNING, "UBRN 000000070000 \"quoted\" 100% é", out, sizeof out);
        assert_string_equal(out, "ersd: warning: got UBRN 000000070000 \"quoted\" 100% é\n");
}

/* A line longer than the log keeps stays one line (cut, never split). */
static void test_log_long_line_stays_one_line(void **state) {
        static char text[4096], out[16384];

        (void) state;
        for (size_t i = 0; i < sizeof text - 1; i++)
                text[i] = i % 64 == 63 ? '\n' : 'x';
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

static void test_err_set_and_prefix_replace_control_characters(void **state) {
        struct errbuf e = { { 0 } };

        (void) state;
        assert_int_equal(err_set(&e, -22, "server said %s", "bad\r\nersd: error: forged\x1b"), -22);
        assert_string_equal(e.msg, "server said bad??ersd: error: forged?");
        assert_int_equal(err_prefix(&e, -5, "A005 %s\n", "000000070000"), -5);
        assert_string_equal(e.msg, "A005 000000070000?: server said bad??ersd: error: forged?");
        assert_int_equal(err_set(NULL, -1, "nowhere"), -1);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_log_escapes_control_characters),
                cmocka_unit_test(test_log_keeps_printable_text),
                cmocka_unit_test(test_log_long_line_stays_one_line),
                cmocka_unit_test(test_log_level_drops),
                cmocka_unit_test(test_err_set_and_prefix_replace_control_characters),
        };
        return cmocka_run_group_tests_name("log", tests, setup, NULL);
}
