/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/fhir_service.c: e-RS services read from A033's
 * HealthcareService and A035's searchset Bundle, every element the commands
 * show, what refuses an answer, and each allocation failing in turn.
 *
 * Run from the repository root: fixtures are opened as "tests/fixtures/…",
 * our own, in the shape of the specification's R4 HealthcareService examples.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/fhir.h"
#include "daemon/fhir_service.h"
#include "tests/support/failalloc.h"

#define FIXTURES "tests/fixtures/"

#define assert_str(actual, expected)                                    \
        do {                                                            \
                const char *a_ = (actual), *e_ = (expected);            \
                if (!e_)                                                \
                        assert_null(a_);                                \
                else {                                                  \
                        assert_non_null(a_);                            \
                        assert_string_equal(a_, e_);                    \
                }                                                       \
        } while (0)

static json_object *parse_text(const char *text) {
        struct errbuf e = { "" };
        json_object *root = NULL;

        if (fhir_parse_text(text, strlen(text), &root, &e) < 0)
                fail_msg("not JSON: %s", e.msg);
        return root;
}

static json_object *fixture(const char *name) {
        char path[256], *text = NULL;
        size_t len = 0, cap = 0, n;
        char buf[4096];
        FILE *f;

        snprintf(path, sizeof path, FIXTURES "%s", name);
        f = fopen(path, "rb");
        assert_non_null(f);
        while ((n = fread(buf, 1, sizeof buf, f)) > 0) {
                if (len + n + 1 > cap) {
                        cap = (len + n + 1) * 2;
                        text = realloc(text, cap);
                        assert_non_null(text);
                }
                memcpy(text + len, buf, n);
                len += n;
                text[len] = '\0';
        }
        fclose(f);
        assert_non_null(text);
        json_object *root = parse_text(text);
        free(text);
        return root;
}

/* A033: every element shown, the request flow found among the characteristics. */
static void test_service_read(void **state) {
        json_object *root = fixture("service-read.json");
        struct ers_service s = { 0 };
        struct errbuf e = { "" };
        (void) state;

        assert_int_equal(fhir_parse_service(root, &s, &e), 0);
        assert_str(s.id, "41003");
        assert_str(s.version, "7");
        assert_str(s.name, "Meadowbank Heart Failure Triage");
        assert_str(s.type, "ASSESSMENT_SERVICE");
        assert_str(s.flow, "REVIEW");
        assert_str(s.location, "RX142");
        ers_service_free(&s);
        json_object_put(root);
}

/* A035: each entry's service in order; `type` as the examples give it (one
 * object) and as the schema does (an array); absent elements NULL. */
static void test_service_search(void **state) {
        json_object *root = fixture("service-search.json");
        struct ers_service_list l = { 0 };
        struct errbuf e = { "" };
        (void) state;

        assert_int_equal(fhir_parse_service_bundle(root, &l, &e), 0);
        assert_int_equal(l.n, 2);
        assert_str(l.services[0].id, "41003");
        assert_str(l.services[0].type, "ASSESSMENT_SERVICE");
        assert_str(l.services[0].flow, "REVIEW");
        assert_str(l.services[1].id, "41017");
        assert_str(l.services[1].version, "2");
        assert_str(l.services[1].name, "Meadowbank Rapid Access Chest Pain");
        assert_str(l.services[1].type, NULL);
        assert_str(l.services[1].flow, NULL);
        assert_str(l.services[1].location, "RX109");
        ers_service_list_free(&l);
        json_object_put(root);

        /* No match: a Bundle without entry is an empty list. */
        root = parse_text("{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"total\":0}");
        assert_int_equal(fhir_parse_service_bundle(root, &l, &e), 0);
        assert_int_equal(l.n, 0);
        json_object_put(root);
}

/* A name holding a NUL keeps every other byte (the NUL as U+FFFD), and
 * characters a terminal acts on are kept as sent: the printing escapes them. */
static void test_service_text_kept_whole(void **state) {
        json_object *root = parse_text("{\"resourceType\":\"HealthcareService\",\"id\":\"1\","
                                       "\"name\":\"a\\u0000b \\u001b[31m \\u202e\"}");
        struct ers_service s = { 0 };
        struct errbuf e = { "" };
        (void) state;

        assert_int_equal(fhir_parse_service(root, &s, &e), 0);
        assert_str(s.name, "a\xef\xbf\xbd" "b \x1b[31m \xe2\x80\xae");
        ers_service_free(&s);
        json_object_put(root);
}

/* What refuses an answer: another resource, no id, an entry that is not a
 * HealthcareService, entry not an array, more entries than a search answers.
 * One line naming the element, *ret untouched. */
static void test_service_refused(void **state) {
        static const struct {
                const char *text, *bundle_or_null, *why;
        } cases[] = {
                { "{\"resourceType\":\"Patient\",\"id\":\"1\"}", NULL, "expected a HealthcareService, got Patient" },
                { "{\"resourceType\":\"HealthcareService\",\"name\":\"x\"}", NULL, "id is missing" },
                { "{\"resourceType\":\"HealthcareService\",\"id\":7}", NULL, "id is missing or not a string" },
                { "[]", NULL, "got a JSON array" },
                { "{\"resourceType\":\"Bundle\",\"entry\":{}}", "", "entry is not an array" },
                { "{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":{\"resourceType\":\"OperationOutcome\"}}]}", "",
                  "entry[0].resource: expected a HealthcareService" },
                { "{\"resourceType\":\"Bundle\",\"entry\":[{\"search\":{}}]}", "", "entry[0].resource: expected" },
                { "{\"resourceType\":\"HealthcareService\",\"id\":\"1\"}", "", "expected a Bundle" },
        };
        (void) state;

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                json_object *root = parse_text(cases[i].text);
                struct errbuf e = { "" };
                struct ers_service s;
                struct ers_service_list l;
                int r;

                memset(&s, 0xa5, sizeof s);
                memset(&l, 0xa5, sizeof l);
                r = cases[i].bundle_or_null ? fhir_parse_service_bundle(root, &l, &e) : fhir_parse_service(root, &s, &e);
                if (r != -EBADMSG || !strstr(e.msg, cases[i].why) || strchr(e.msg, '\n'))
                        fail_msg("case %zu: got %d '%s', want -EBADMSG '%s'", i, r, e.msg, cases[i].why);
                for (size_t k = 0; k < sizeof s; k++)
                        assert_int_equal(((unsigned char *) &s)[k], 0xa5);
                for (size_t k = 0; k < sizeof l; k++)
                        assert_int_equal(((unsigned char *) &l)[k], 0xa5);
                json_object_put(root);
        }

        /* FHIR_SERVICES_MAX + 1 entries. */
        json_object *root = json_object_new_object(), *entries = json_object_new_array();
        json_object_object_add(root, "resourceType", json_object_new_string("Bundle"));
        for (int i = 0; i <= FHIR_SERVICES_MAX; i++) {
                json_object *entry = json_object_new_object(), *res = json_object_new_object();
                json_object_object_add(res, "resourceType", json_object_new_string("HealthcareService"));
                json_object_object_add(res, "id", json_object_new_string("1"));
                json_object_object_add(entry, "resource", res);
                json_object_array_add(entries, entry);
        }
        json_object_object_add(root, "entry", entries);
        struct ers_service_list l = { 0 };
        struct errbuf e = { "" };
        assert_int_equal(fhir_parse_service_bundle(root, &l, &e), -EBADMSG);
        assert_non_null(strstr(e.msg, "more than the 100 a search of services answers"));
        json_object_put(root);
}

/* Every allocation failing in turn: -ENOMEM, "out of memory", *ret untouched,
 * nothing leaked (ASan and valgrind say so). */
static void test_service_out_of_memory(void **state) {
        (void) state;

        if (!failalloc_linked())
                fail_msg("test_fhir_service must be linked with ALLOC_WRAP (see the Makefile)");
        for (int bundle = 0; bundle < 2; bundle++) {
                json_object *root = fixture(bundle ? "service-search.json" : "service-read.json");
                long n;

                for (n = 0;; n++) {
                        struct errbuf e = { "" };
                        struct ers_service s;
                        struct ers_service_list l;
                        int r;

                        memset(&s, 0xa5, sizeof s);
                        memset(&l, 0xa5, sizeof l);
                        failalloc_arm(n);
                        r = bundle ? fhir_parse_service_bundle(root, &l, &e) : fhir_parse_service(root, &s, &e);
                        if (!failalloc_disarm()) {
                                assert_int_equal(r, 0);
                                if (bundle)
                                        ers_service_list_free(&l);
                                else
                                        ers_service_free(&s);
                                break;
                        }
                        assert_int_equal(r, -ENOMEM);
                        assert_string_equal(e.msg, "out of memory");
                        for (size_t k = 0; k < sizeof s; k++)
                                assert_int_equal(((unsigned char *) &s)[k], 0xa5);
                        for (size_t k = 0; k < sizeof l; k++)
                                assert_int_equal(((unsigned char *) &l)[k], 0xa5);
                        assert_true(n < 1000);
                }
                assert_true(n > 5);
                json_object_put(root);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_service_read),
                cmocka_unit_test(test_service_search),
                cmocka_unit_test(test_service_text_kept_whole),
                cmocka_unit_test(test_service_refused),
                cmocka_unit_test(test_service_out_of_memory),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
