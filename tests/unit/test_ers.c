/* SPDX-License-Identifier: MIT */
/*
 * The e-RS client's pure header parsers: Retry-After (delay-seconds or an
 * HTTP-date, on the raw header line libcurl hands over) and Content-Type
 * matching.  Both read outside input; tests/fuzz/fuzz_http_header.c fuzzes them.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/ers.h"

/* 2026-11-23T20:00:00Z, the instant the dates below are counted from. */
#define NOW ((time_t) 1795464000)

struct retry_case {
        const char *line;
        long want;
};

static const struct retry_case retry_cases[] = {
        { "Retry-After: 120\r\n", 120 },
        { "retry-after:7\r\n", 7 },
        { "RETRY-AFTER:   0\r\n", 0 },
        { "Retry-After: Mon, 23 Nov 2026 20:01:30 GMT\r\n", 90 },
        { "Retry-After: Mon, 23 Nov 2026 19:00:00 GMT\r\n", 0 },  /* a date already past: at once */
        { "Retry-After: -5\r\n", -1 },                            /* negative: neither form */
        { "Retry-After: soon\r\n", -1 },
        { "Retry-After:\r\n", -1 },
        { "Retry-After:", -1 },                                   /* the name alone */
        { "Retry-Afte: 5\r\n", -1 },
        { "Content-Type: application/json\r\n", -1 },
        { "HTTP/1.1 429 Too Many Requests\r\n", -1 },
        { "\r\n", -1 },
};

static void test_retry_after(void **state) {
        (void) state;
        for (size_t i = 0; i < sizeof retry_cases / sizeof retry_cases[0]; i++) {
                const struct retry_case *c = &retry_cases[i];
                long got = ers_header_retry_after(c->line, strlen(c->line), NOW);
                if (got != c->want)
                        fail_msg("case %zu (%s): got %ld, want %ld", i, c->line, got, c->want);
        }
}

/* The line is not NUL-terminated: only `len` bytes are read. */
static void test_retry_after_reads_only_len(void **state) {
        const char line[] = "Retry-After: 42999";

        (void) state;
        assert_int_equal(ers_header_retry_after(line, strlen("Retry-After: 42"), NOW), 42);
        assert_int_equal(ers_header_retry_after(line, strlen("Retry-After:"), NOW), -1);
        assert_int_equal(ers_header_retry_after(line, 0, NOW), -1);
}

/* A value longer than the parser keeps: cut, still a number. */
static void test_retry_after_long_value(void **state) {
        char line[256];

        (void) state;
        memset(line, ' ', sizeof line);
        memcpy(line, "Retry-After: 15", strlen("Retry-After: 15"));
        assert_int_equal(ers_header_retry_after(line, sizeof line, NOW), 15);
}

struct ct_case {
        const char *got;
        const char *want;
        bool match;
};

static const struct ct_case ct_cases[] = {
        { "application/fhir+json", "application/fhir+json", true },
        { "Application/FHIR+JSON", "application/fhir+json", true },
        { "application/fhir+json; charset=utf-8", "application/fhir+json", true },
        { "application/fhir+json;fhirVersion=3.0", "application/fhir+json", true },
        { "  application/pdf", "application/pdf", true },
        { "application/pdf ", "application/pdf", true },
        { "application/pdfx", "application/pdf", false },
        { "application/pd", "application/pdf", false },
        { "application/json", "application/fhir+json", false },
        { "text/html", "application/pdf", false },
        { "", "application/pdf", false },
        { NULL, "application/pdf", false },
};

static void test_content_type(void **state) {
        (void) state;
        for (size_t i = 0; i < sizeof ct_cases / sizeof ct_cases[0]; i++) {
                const struct ct_case *c = &ct_cases[i];
                if (ers_content_type_is(c->got, c->want) != c->match)
                        fail_msg("case %zu: '%s' vs '%s' should %smatch", i, c->got ? c->got : "(null)", c->want,
                                 c->match ? "" : "not ");
        }
}

/* Where the A042 redirect may lead: https anywhere, plain http only to loopback. */
static const struct {
        const char *location;
        bool allowed;
} redirect_cases[] = {
        { "https://objects.example/bucket/f?sig=x", true },
        { "HTTPS://objects.example/f", true },
        { "http://127.0.0.1:8443/store/f", true },
        { "http://127.10.0.3/store/f", true },
        { "http://localhost:9/store/f", true },
        { "http://[::1]:9/store/f", true },
        { "http://objects.example/f", false },
        { "http://127.0.0.1.attacker.example/f", false }, /* a name, not the loopback address */
        { "http://[::ffff:127.0.0.1]/f", false },
        { "ftp://127.0.0.1/f", false },
        { "/store/f", false },
        { "", false },
};

static void test_redirect_allowed(void **state) {
        (void) state;
        for (size_t i = 0; i < sizeof redirect_cases / sizeof redirect_cases[0]; i++)
                if (ers_redirect_allowed(redirect_cases[i].location) != redirect_cases[i].allowed)
                        fail_msg("'%s' should %sbe followed", redirect_cases[i].location,
                                 redirect_cases[i].allowed ? "" : "not ");
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_redirect_allowed),
                cmocka_unit_test(test_retry_after),
                cmocka_unit_test(test_retry_after_reads_only_len),
                cmocka_unit_test(test_retry_after_long_value),
                cmocka_unit_test(test_content_type),
        };
        return cmocka_run_group_tests_name("ers", tests, NULL, NULL);
}
