/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for writing back to e-RS without a network: the A028 body
 * (daemon/fhir_writeback.c: what it holds, byte for byte what the comment
 * was, and every request refused before it is sent), the answers read (the
 * ReferralRequest A028 and A013 answer, the Tasks of A029), and what each
 * answer means for the sender (daemon/ers_outcome.c).  The calls themselves
 * against the mock: tests/integration/test_writeback.c.
 *
 * Run from the repository root: fixtures are opened as "tests/fixtures/…",
 * our own, in the shape of the published examples.
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

#include "daemon/ers_writeback.h"
#include "daemon/fhir.h"
#include "daemon/fhir_writeback.h"
#include "tests/support/failalloc.h"

#define FIXTURES "tests/fixtures/"
#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))
#define UBRN "000000300001"

/* ---- helpers ------------------------------------------------------------- */

static json_object *parse(const char *text) {
        struct errbuf e = { "" };
        json_object *root = NULL;

        if (fhir_parse_text(text, strlen(text), &root, &e) < 0)
                fail_msg("not JSON: %s", e.msg);
        return root;
}

/* A fixture (valid JSON, ours). */
static json_object *load(const char *name) {
        char path[256];
        json_object *root;

        snprintf(path, sizeof path, FIXTURES "%s", name);
        root = json_object_from_file(path);
        if (!root)
                fail_msg("cannot read %s (run the tests from the repository root)", path);
        return root;
}

/* The string at a dotted path of the body ("parameter.1.valueString"). */
static const char *at(json_object *o, const char *path) {
        char seg[64];

        while (o && *path) {
                size_t n = strcspn(path, ".");
                memcpy(seg, path, n);
                seg[n] = '\0';
                path += n + (path[n] == '.');
                if (json_object_is_type(o, json_type_array))
                        o = json_object_array_get_idx(o, (size_t) strtoul(seg, NULL, 10));
                else if (!json_object_object_get_ex(o, seg, &o))
                        o = NULL;
        }
        return o && json_object_is_type(o, json_type_string) ? json_object_get_string(o) : NULL;
}

/* The A028 body for these, parsed back. */
static json_object *body_of(const char *outcome, const char *comment, const char *priority) {
        struct errbuf e = { "" };
        char *body = NULL;
        json_object *root;

        if (fhir_review_request(outcome, comment, priority, &body, &e) < 0)
                fail_msg("refused: %s", e.msg);
        root = parse(body);
        free(body);
        return root;
}

/* ---- the A028 body --------------------------------------------------------- */

static void test_review_body_shape(void **state) {
        json_object *b = body_of(ERS_REVIEW_ACCEPT_BOOK_LATER, "Please book into the clinic.", "URGENT");

        (void) state;
        assert_string_equal(at(b, "resourceType"), "Parameters");
        assert_string_equal(at(b, "meta.profile.0"),
                            "https://fhir.nhs.uk/STU3/StructureDefinition/eRS-RecordReviewOutcome-Parameters-1");
        assert_int_equal(json_object_array_length(json_object_object_get(b, "parameter")), 3);
        assert_string_equal(at(b, "parameter.0.name"), "reviewOutcome");
        assert_string_equal(at(b, "parameter.0.valueCoding.system"),
                            "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReviewOutcome-1");
        assert_string_equal(at(b, "parameter.0.valueCoding.code"), "ACCEPT_REFER_BOOK_LATER");
        assert_string_equal(at(b, "parameter.1.name"), "reviewComments");
        assert_string_equal(at(b, "parameter.1.valueString"), "Please book into the clinic.");
        assert_string_equal(at(b, "parameter.2.name"), "reviewPriority");
        assert_string_equal(at(b, "parameter.2.valueCoding.system"), "https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1");
        assert_string_equal(at(b, "parameter.2.valueCoding.code"), "URGENT");
        json_object_put(b);

        /* No priority: no reviewPriority at all. */
        b = body_of(ERS_REVIEW_RETURN_TO_REFERRER, "Advice: start a trial of treatment first.", NULL);
        assert_int_equal(json_object_array_length(json_object_object_get(b, "parameter")), 2);
        assert_string_equal(at(b, "parameter.0.valueCoding.code"), "RETURN_TO_REFERRER_WITH_ADVICE");
        json_object_put(b);
}

/* What a person may write arrives as written: quotes, a backslash, line ends, a tab,
 * 2-, 3- and 4-byte UTF-8, and text that looks like JSON. */
static void test_review_comment_round_trip(void **state) {
        static const char *const comments[] = {
                "He said \"not urgent\" \\ O'Brien's letter",
                "line one\nline two\r\nthird\tcolumn",
                "caf\xc3\xa9 \xe2\x80\x93 \xf0\x9f\xa9\xba \xe4\xb8\xad\xe6\x96\x87",
                "\"},{\"name\":\"reviewPriority\",\"valueCoding\":{\"code\":\"URGENT\"}}",
                "</script><!-- -->&amp; %s %n",
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(comments); i++) {
                json_object *b = body_of(ERS_REVIEW_RETURN_TO_REFERRER, comments[i], NULL);
                assert_string_equal(at(b, "parameter.1.valueString"), comments[i]);
                assert_int_equal(json_object_array_length(json_object_object_get(b, "parameter")), 2);
                json_object_put(b);
        }
}

struct refusal {
        const char *outcome, *comment, *priority;
        const char *line; /* what the line says (a part of it) */
};

static void test_review_refused_before_sending(void **state) {
        static char longest[ERS_REVIEW_COMMENT_MAX + 1], too_long[ERS_REVIEW_COMMENT_MAX + 2];
        const struct refusal cases[] = {
                { ERS_REVIEW_RETURN_TO_REFERRER, NULL, NULL, "mandatory and there is none" },
                { ERS_REVIEW_RETURN_TO_REFERRER, "", NULL, "mandatory and is empty" },
                { ERS_REVIEW_RETURN_TO_REFERRER, " \t\r\n ", NULL, "mandatory and is empty" },
                { ERS_REVIEW_RETURN_TO_REFERRER, too_long, NULL, "over the 4000 bytes" },
                { ERS_REVIEW_RETURN_TO_REFERRER, "secret\xff", NULL, "not valid UTF-8 at byte 6" },
                { ERS_REVIEW_RETURN_TO_REFERRER, "secret\xc0\x80", NULL, "not valid UTF-8 at byte 6" },
                { ERS_REVIEW_RETURN_TO_REFERRER, "secret\xed\xa0\x80", NULL, "not valid UTF-8 at byte 6" },
                { ERS_REVIEW_RETURN_TO_REFERRER, "secret\xf0\x9f\xa9", NULL, "not valid UTF-8 at byte 6" },
                { ERS_REVIEW_RETURN_TO_REFERRER, "secret\x01", NULL, "control character at byte 6" },
                { ERS_REVIEW_RETURN_TO_REFERRER, "secret\x1b[2J", NULL, "control character at byte 6" },
                { ERS_REVIEW_RETURN_TO_REFERRER, "secret\x7f", NULL, "control character at byte 6" },
                { ERS_REVIEW_RETURN_TO_REFERRER, "secret\xc2\x85", NULL, "control character at byte 6" },
                { ERS_REVIEW_RETURN_TO_REFERRER, "secret\xe2\x80\xae", NULL, "control character at byte 6" },
                { NULL, "secret", NULL, "review outcome must be" },
                { "REFER_BOOK_NOW", "secret", NULL, "review outcome must be" },
                { "CANCEL_APPOINTMENT_ACTION_LATER", "secret", NULL, "review outcome must be" },
                { ERS_REVIEW_RETURN_TO_REFERRER, "secret", "URGENT", "a new priority goes only with" },
                { ERS_REVIEW_ACCEPT_BOOK_LATER, "secret", "EMERGENCY", "a new priority must be" },
                { ERS_REVIEW_ACCEPT_BOOK_LATER, "secret", "", "a new priority must be" },
        };

        (void) state;
        memset(longest, 'a', ERS_REVIEW_COMMENT_MAX);
        memset(too_long, 'a', ERS_REVIEW_COMMENT_MAX + 1);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct errbuf e = { "" };
                char *body = (char *) &e; /* a value the refusal must leave alone */
                int r = fhir_review_request(cases[i].outcome, cases[i].comment, cases[i].priority, &body, &e);

                if (r != -EINVAL || !strstr(e.msg, cases[i].line))
                        fail_msg("case %zu: got %d \"%s\", want -EINVAL \"…%s…\"", i, r, e.msg, cases[i].line);
                assert_ptr_equal(body, (char *) &e);
                /* never the comment's words: it is the trust's text, and may name a patient */
                assert_null(strstr(e.msg, "secret"));
                assert_null(strchr(e.msg, '\n'));
        }
        /* The longest sent, exactly. */
        json_object *b = body_of(ERS_REVIEW_RETURN_TO_REFERRER, longest, NULL);
        assert_string_equal(at(b, "parameter.1.valueString"), longest);
        json_object_put(b);
}

/* A request refused for want of memory says so and hands nothing back. */
static void test_review_body_out_of_memory(void **state) {
        long n;

        (void) state;
        if (!failalloc_linked())
                fail_msg("test_writeback must be linked with ALLOC_WRAP (see the Makefile)");
        for (n = 0;; n++) {
                struct errbuf e = { "" };
                char *body = NULL;
                int r;

                failalloc_arm(n);
                r = fhir_review_request(ERS_REVIEW_ACCEPT_BOOK_LATER, "comment", "ROUTINE", &body, &e);
                if (!failalloc_disarm()) {
                        assert_int_equal(r, 0);
                        free(body);
                        break;
                }
                assert_int_equal(r, -ENOMEM);
                assert_null(body);
                assert_string_equal(e.msg, "out of memory");
                assert_true(n < 100);
        }
}

/* ---- the answers --------------------------------------------------------- */

static void test_written_referral(void **state) {
        json_object *root = load("written-referral.json");
        struct errbuf e = { "" };
        int64_t version = -7;

        (void) state;
        assert_int_equal(fhir_parse_written(root, UBRN, &version, &e), 0);
        assert_int_equal(version, 5);

        /* Another referral's answer is not this one's. */
        version = -7;
        assert_int_equal(fhir_parse_written(root, "000000300002", &version, &e), -EBADMSG);
        assert_string_equal(e.msg, "the referral answered is not UBRN 000000300002");
        assert_int_equal(version, -7);
        json_object_put(root);
}

struct answer_case {
        const char *json;
        const char *line;
};

static void test_written_referral_refused(void **state) {
        static const struct answer_case cases[] = {
                { "{\"resourceType\":\"OperationOutcome\",\"issue\":[]}", "expected a ReferralRequest, got OperationOutcome" },
                { "[]", "expected a ReferralRequest, got a JSON array" },
                { "{\"resourceType\":\"ReferralRequest\",\"meta\":{\"versionId\":\"3\"}}", "the referral answered has no id" },
                { "{\"resourceType\":\"ReferralRequest\",\"id\":\"" UBRN "\"}", "has no meta.versionId" },
                { "{\"resourceType\":\"ReferralRequest\",\"id\":\"" UBRN "\",\"meta\":{\"versionId\":\"-3\"}}",
                  "meta.versionId is not a non-negative integer" },
                { "{\"resourceType\":\"ReferralRequest\",\"id\":\"" UBRN "\",\"meta\":{\"versionId\":\"3a\"}}",
                  "meta.versionId is not a non-negative integer" },
                { "{\"resourceType\":\"ReferralRequest\",\"id\":7,\"meta\":{\"versionId\":3}}", "has no id" },
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_object *root = parse(cases[i].json);
                struct errbuf e = { "" };
                int64_t version = -7;
                int r = fhir_parse_written(root, UBRN, &version, &e);

                if (r != -EBADMSG || !strstr(e.msg, cases[i].line))
                        fail_msg("case %zu: got %d \"%s\", want -EBADMSG \"…%s…\"", i, r, e.msg, cases[i].line);
                assert_int_equal(version, -7);
                json_object_put(root);
        }
        /* A version sent as a JSON number is read as well. */
        json_object *root = parse("{\"resourceType\":\"ReferralRequest\",\"id\":\"" UBRN "\",\"meta\":{\"versionId\":12}}");
        int64_t version = -1;
        assert_int_equal(fhir_parse_written(root, UBRN, &version, NULL), 0);
        assert_int_equal(version, 12);
        json_object_put(root);
}

/* Settling reads the version and the state's code, whatever else the referral holds: an
 * attachment without an id (which the sync refuses) keeps no request from being settled. */
static void test_settling_reads_version_and_state(void **state) {
        static const char *const answers[] = {
                "{\"resourceType\":\"ReferralRequest\",\"id\":\"" UBRN "\",\"meta\":{\"versionId\":\"6\"},"
                "\"extension\":[{\"url\":\"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-ReferralState-1\","
                "\"extension\":[{\"url\":\"state\",\"valueCoding\":{\"code\":\"BOOKED\"}}]}],"
                "\"contained\":[{\"resourceType\":\"DocumentReference\",\"id\":\"d1\",\"content\":[{\"attachment\":{}}]}]}",
                /* no state; a code holding a NUL is unreadable */
                "{\"resourceType\":\"ReferralRequest\",\"id\":\"" UBRN "\",\"meta\":{\"versionId\":6}}",
                "{\"resourceType\":\"ReferralRequest\",\"id\":\"" UBRN "\",\"meta\":{\"versionId\":\"6\"},"
                "\"extension\":[{\"url\":\"Extension-eRS-ReferralState-1\","
                "\"extension\":[{\"url\":\"state\",\"valueCoding\":{\"code\":\"BOO\\u0000KED\"}}]}]}",
        };
        struct errbuf e = { "" };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(answers); i++) {
                json_object *root = parse(answers[i]);
                int64_t version = -7;
                char *st = (char *) "unset";

                assert_int_equal(fhir_parse_settling(root, UBRN, &version, &st, &e), 0);
                assert_int_equal(version, 6);
                if (i == 0)
                        assert_string_equal(st, "BOOKED");
                else
                        assert_null(st);
                free(st);
                json_object_put(root);
        }
        /* Another referral's answer settles nothing. */
        json_object *root = parse(answers[0]);
        char *st = (char *) "unset";
        assert_int_equal(fhir_parse_settling(root, "000000300002", &(int64_t){ 0 }, &st, &e), -EBADMSG);
        assert_null(st);
        json_object_put(root);
}

static void test_actions(void **state) {
        json_object *root = load("actions-review.json");
        struct errbuf e = { "" };
        unsigned actions = 0, unknown = 0;

        (void) state;
        assert_int_equal(fhir_parse_actions(root, UBRN, &actions, &unknown, &e), 0);
        /* RECORD_REVIEW_OUTCOME and CANCEL_REFERRAL; a code of another system and a Task that is
         * not ready (CHANGE_SHORTLIST, completed) are no action; a code e-RS adds one day is counted
         * as unknown, never taken as allowed. */
        assert_int_equal(actions, ERS_ACTION_RECORD_REVIEW_OUTCOME | ERS_ACTION_CANCEL_REFERRAL);
        assert_int_equal(unknown, 1);
        json_object_put(root);

        root = load("actions-empty.json");
        actions = unknown = 99;
        assert_int_equal(fhir_parse_actions(root, UBRN, &actions, &unknown, &e), 0);
        assert_int_equal(actions, 0);
        assert_int_equal(unknown, 0);
        json_object_put(root);

        /* A search set without entry at all: no action either. */
        root = parse("{\"resourceType\":\"Bundle\",\"type\":\"searchset\"}");
        actions = unknown = 99;
        assert_int_equal(fhir_parse_actions(root, UBRN, &actions, &unknown, &e), 0);
        assert_int_equal(actions, 0);
        json_object_put(root);
}

static void test_actions_refused(void **state) {
#define TASK(focus) "{\"resource\":{\"resourceType\":\"Task\",\"status\":\"ready\",\"intent\":\"proposal\"," \
                    "\"focus\":{\"reference\":\"" focus "\"},\"code\":{\"coding\":[{\"system\":"            \
                    "\"https://fhir.nhs.uk/STU3/CodeSystem/eRS-AvailableActionsForUser-1\",\"code\":"       \
                    "\"RECORD_REVIEW_OUTCOME\"}]}}}"
        static const struct answer_case cases[] = {
                { "{\"resourceType\":\"OperationOutcome\"}", "expected a Bundle, got OperationOutcome" },
                { "{\"resourceType\":\"Bundle\",\"entry\":{}}", "entry is not an array" },
                { "{\"resourceType\":\"Bundle\",\"entry\":[" TASK("ReferralRequest/000000300002/_history/4") "]}",
                  "entry[0]: a Task for another referral than UBRN " UBRN },
                { "{\"resourceType\":\"Bundle\",\"entry\":[" TASK("ReferralRequest/" UBRN "/_history/4") ","
                  TASK("Patient/9990000107") "]}", "entry[1]: focus.reference is not a ReferralRequest" },
                { "{\"resourceType\":\"Bundle\",\"entry\":[{\"resource\":{\"resourceType\":\"Patient\"}}]}",
                  "entry[0].resource: expected a Task, got Patient" },
                { "{\"resourceType\":\"Bundle\",\"entry\":[7]}", "entry[0].resource: expected a Task" },
        };
#undef TASK

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_object *root = parse(cases[i].json);
                struct errbuf e = { "" };
                unsigned actions = 77, unknown = 77;
                int r = fhir_parse_actions(root, UBRN, &actions, &unknown, &e);

                if (r != -EBADMSG || !strstr(e.msg, cases[i].line))
                        fail_msg("case %zu: got %d \"%s\", want -EBADMSG \"…%s…\"", i, r, e.msg, cases[i].line);
                assert_int_equal(actions, 77);
                assert_int_equal(unknown, 77);
                assert_null(strstr(e.msg, "9990000107"));
                json_object_put(root);
        }
}

/* ---- what an answer means ------------------------------------------------ */

struct classify_case {
        int r;
        long status;
        bool sent;
        const char *code;
        enum ers_wb_outcome want;
};

static void test_classify_write(void **state) {
        static const struct classify_case cases[] = {
                { 0, 200, true, NULL, ERS_WB_DONE },
                { 0, 201, true, NULL, ERS_WB_DONE },
                /* applied (2xx), its answer cut, refused or unreadable: settle by A005 */
                { -EAGAIN, 200, true, NULL, ERS_WB_MAY_HAVE_REACHED },
                { -EBADMSG, 200, true, NULL, ERS_WB_MAY_HAVE_REACHED },
                { -EFBIG, 200, true, NULL, ERS_WB_MAY_HAVE_REACHED },
                /* no answer: what matters is whether it left */
                { -EAGAIN, 0, true, NULL, ERS_WB_MAY_HAVE_REACHED },
                { -ECANCELED, 0, true, NULL, ERS_WB_MAY_HAVE_REACHED },
                { -EAGAIN, 0, false, NULL, ERS_WB_RETRY },
                { -EPROTO, 0, false, NULL, ERS_WB_RETRY },
                { -EACCES, 403, true, "ACCESS_DENIED", ERS_WB_FORBIDDEN },
                { -EPROTO, 409, true, "CONFLICT", ERS_WB_STALE },
                { -EPROTO, 412, true, "PRECONDITION_FAILED", ERS_WB_STALE },
                { -ENODATA, 422, true, "INVALID_REQUEST_STATE", ERS_WB_REJECTED },
                { -ENODATA, 422, true, "HISTORY_NOT_SUPPORTED", ERS_WB_REJECTED },
                { -ENOENT, 404, true, "REC_NOT_FOUND", ERS_WB_REJECTED },
                { -EPROTO, 400, true, "MISSING_VALUE", ERS_WB_REJECTED },
                { -EPROTO, 415, true, NULL, ERS_WB_REJECTED },
                { -EPROTO, 307, true, NULL, ERS_WB_REJECTED },
                { -EACCES, 401, true, "NO_ACCESS", ERS_WB_RETRY },
                { -EPROTO, 423, true, "LOCKED", ERS_WB_RETRY },
                { -EAGAIN, 429, true, "TOO_MANY_REQUESTS", ERS_WB_RETRY },
                { -EAGAIN, 500, true, "SERVICE_ERROR", ERS_WB_RETRY },
                { -EAGAIN, 503, true, "SERVICE_UNAVAILABLE", ERS_WB_RETRY },
                /* a gateway that lost e-RS's answer, and a 5xx nobody named */
                { -EAGAIN, 502, true, NULL, ERS_WB_MAY_HAVE_REACHED },
                { -EAGAIN, 504, true, NULL, ERS_WB_MAY_HAVE_REACHED },
                { -EAGAIN, 507, true, NULL, ERS_WB_MAY_HAVE_REACHED },
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const struct classify_case *c = &cases[i];
                enum ers_wb_outcome got = ers_wb_classify_write(c->r, c->status, c->sent, c->code);
                if (got != c->want)
                        fail_msg("case %zu (HTTP %ld%s): got %s, want %s", i, c->status, c->sent ? ", sent" : "",
                                 ers_wb_outcome_name(got), ers_wb_outcome_name(c->want));
        }
}

static void test_classify_read(void **state) {
        static const struct classify_case cases[] = {
                { 0, 200, true, NULL, ERS_WB_DONE },
                { -EBADMSG, 200, true, NULL, ERS_WB_RETRY },
                { -EPROTO, 400, true, "HISTORY_NOT_SUPPORTED", ERS_WB_STALE },
                { -EPROTO, 400, true, "REFERENCE_NOT_FOUND", ERS_WB_REJECTED },
                { -EPROTO, 400, true, NULL, ERS_WB_REJECTED },
                { -EACCES, 403, true, NULL, ERS_WB_FORBIDDEN },
                { -EACCES, 401, true, NULL, ERS_WB_RETRY },
                { -EAGAIN, 429, true, NULL, ERS_WB_RETRY },
                { -EAGAIN, 502, true, NULL, ERS_WB_RETRY },
                { -EAGAIN, 504, true, NULL, ERS_WB_RETRY },
                { -EAGAIN, 0, true, NULL, ERS_WB_RETRY },
        };

        (void) state;
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                const struct classify_case *c = &cases[i];
                enum ers_wb_outcome got = ers_wb_classify_read(c->r, c->status, c->code);
                if (got != c->want)
                        fail_msg("case %zu (HTTP %ld): got %s, want %s", i, c->status, ers_wb_outcome_name(got),
                                 ers_wb_outcome_name(c->want));
        }
        assert_string_equal(ers_wb_outcome_name(ERS_WB_MAY_HAVE_REACHED), "MAY_HAVE_REACHED");
        assert_string_equal(ers_wb_outcome_name(ERS_WB_FORBIDDEN), "FORBIDDEN");
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_review_body_shape),
                cmocka_unit_test(test_review_comment_round_trip),
                cmocka_unit_test(test_review_refused_before_sending),
                cmocka_unit_test(test_review_body_out_of_memory),
                cmocka_unit_test(test_written_referral),
                cmocka_unit_test(test_written_referral_refused),
                cmocka_unit_test(test_settling_reads_version_and_state),
                cmocka_unit_test(test_actions),
                cmocka_unit_test(test_actions_refused),
                cmocka_unit_test(test_classify_write),
                cmocka_unit_test(test_classify_read),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
