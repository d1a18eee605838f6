/* SPDX-License-Identifier: MIT */
/*
 * Unit tests for daemon/fhir.c: the FHIR model parsers, the JSON text parser,
 * the A008 request body, and model.h's checks: UBRN, NHS number, service id.
 *
 * Run from the repository root: fixtures are opened as "tests/fixtures/…".
 * Every fixture is our own, in the shape of the e-RS API's published examples;
 * NHS numbers are from the 999 test range.
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
#include "tests/support/failalloc.h"

#define FIXTURES "tests/fixtures/"
#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* Every NHS number in the fixtures and inline cases: no error line may hold one. */
static const char *const nhs_numbers[] = {
        "9990000018", "9990000026", "9990000034", "9990000042", "9990000050",
        "9990000069", "9990000077", "9990000085", "9990000093",
};

/* ---- Helpers ----------------------------------------------------------- */

/* Asserts that a string field is `expected`, or NULL when expected is NULL. */
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

/* Asserts that an error line is one line that holds no NHS number. */
static void assert_clean_message(const char *msg) {
        assert_true(msg[0] != '\0');
        assert_null(strchr(msg, '\n'));
        for (size_t i = 0; i < ELEMENTSOF(nhs_numbers); i++)
                if (strstr(msg, nhs_numbers[i])) {
                        fail_msg("error line holds NHS number %s: %s", nhs_numbers[i], msg);
                }
}

/* The whole of a file, NUL-terminated; *len its size. */
static char *read_file(const char *path, size_t *len) {
        FILE *f = fopen(path, "rb");
        char *buf = NULL;
        size_t n = 0, cap = 0;

        if (!f)
                fail_msg("cannot open %s (run the tests from the repository root)", path);
        for (;;) {
                size_t got;

                if (cap - n < 4096) {
                        cap = cap ? cap * 2 : 8192;
                        buf = realloc(buf, cap);
                        assert_non_null(buf);
                }
                got = fread(buf + n, 1, cap - n - 1, f);
                n += got;
                if (got == 0)
                        break;
        }
        assert_false(ferror(f));
        fclose(f);
        buf[n] = '\0';
        *len = n;
        return buf;
}

/* Parses a JSON text that must be valid. */
static json_object *parse(const char *text) {
        struct errbuf e = { "" };
        json_object *root = NULL;
        int r = fhir_parse_text(text, strlen(text), &root, &e);

        if (r != 0)
                fail_msg("parse failed: %s", e.msg);
        assert_non_null(root);
        return root;
}

/* Parses a fixture file that must be valid JSON. */
static json_object *load(const char *name) {
        size_t len;
        char *text = read_file(name, &len);
        json_object *root = parse(text);

        free(text);
        return root;
}

/* The worklist parser reads text as it streams: the tests that build or
 * mutate json-c trees hand it the tree's text. */
static int worklist_of(json_object *root, struct worklist *ret, struct errbuf *e) {
        size_t len = 0;
        const char *text = json_object_to_json_string_length(root, JSON_C_TO_STRING_PLAIN, &len);

        assert_non_null(text);
        return fhir_parse_worklist(text, len, ret, e);
}

/* The parsers under test, behind one signature, for the table-driven and
 * mutation tests. */
enum kind { WORKLIST, REFERRAL, OUTCOME };

union parsed {
        struct worklist worklist;
        struct referral referral;
        struct outcome outcome;
};

/* Runs the parser of kind k on root into a sentinel-filled struct.  On
 * failure asserts that the struct is untouched and the line is clean; on
 * success frees the result unless keep is non-NULL (then it is copied there). */
static int run_parser(enum kind k, json_object *root, struct errbuf *e, union parsed *keep) {
        union parsed out, sentinel;
        int r;

        memset(&sentinel, 0xA5, sizeof sentinel);
        memcpy(&out, &sentinel, sizeof out);
        e->msg[0] = '\0';
        switch (k) {
        case WORKLIST:
                r = worklist_of(root, &out.worklist, e);
                break;
        case REFERRAL:
                r = fhir_parse_referral(root, &out.referral, e);
                break;
        default:
                r = fhir_parse_outcome(root, &out.outcome, e);
                break;
        }
        if (r < 0) {
                assert_int_equal(r, -EBADMSG);
                assert_memory_equal(&out, &sentinel, sizeof out);
                assert_clean_message(e->msg);
                return r;
        }
        assert_int_equal(r, 0);
        if (keep) {
                *keep = out;
                return r;
        }
        switch (k) {
        case WORKLIST:
                worklist_free(&out.worklist);
                break;
        case REFERRAL:
                referral_free(&out.referral);
                break;
        default:
                outcome_free(&out.outcome);
                break;
        }
        return r;
}

/* ---- UBRN and NHS number checks ---------------------------------------- */

static void test_ubrn_valid(void **state) {
        static const struct {
                const char *s;
                bool valid;
        } cases[] = {
                { "000000100001", true },
                { "123456789012", true },
                { "12345678901", false },   /* 11 digits */
                { "1234567890123", false }, /* 13 */
                { "12345678901a", false },
                { " 23456789012", false },
                { "+23456789012", false },
                { "", false },
                { NULL, false },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                assert_int_equal(ubrn_valid(cases[i].s), cases[i].valid);
}

static void test_nhs_number_valid(void **state) {
        static const struct {
                const char *s;
                bool valid;
        } cases[] = {
                { "9434765919", true },
                { "9991234578", true },
                { "9990000018", true },
                { "9990000050", true },  /* check digit 11 → 0 */
                { "9434765918", false }, /* wrong check digit */
                { "9434756919", false }, /* transposed digits */
                { "9990000000", false }, /* check digit would be 10: never issued */
                { "9990000001", false },
                { "999000001", false },  /* 9 digits */
                { "99900000180", false },
                { "999000001X", false },
                { "999 000 0018", false },
                { "", false },
                { NULL, false },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                if (nhs_number_valid(cases[i].s) != cases[i].valid)
                        fail_msg("case %zu: expected %d", i, cases[i].valid);
}

/* ---- the service id rule (model.h) --------------------------------------- */

/* At and past the bound, each kind of character first and after, the URL's
 * dot segments, empty, NULL. */
static void test_service_id_valid(void **state) {
        static const struct {
                const char *s;
                bool valid;
        } cases[] = {
                { "1", true },
                { "0", true },
                { "A", true },
                { "z", true },
                { "31001", true },
                { "1234567890123456", true },   /* 16: the bound */
                { "12345678901234567", false }, /* 17 */
                { "aBcDeFgHiJkLmNoP", true },
                { "aBcDeFgHiJkLmNoPq", false },
                { "1.2-3.4-5.6-7.8-", true },   /* 16, '.' and '-' after the first, last included */
                { "1.", true },
                { "1-", true },
                { "1..2", true },
                { ".", false },                 /* URL dot segments */
                { "..", false },
                { ".1", false },
                { "-1", false },                /* an option on a command line */
                { "-", false },
                { "1_2", false },               /* not in a FHIR id */
                { "_1", false },
                { "1~2", false },
                { "1 2", false },
                { " 1", false },
                { "1 ", false },
                { "1\t", false },
                { "1\n", false },
                { "1/2", false },
                { "1%2F", false },
                { "1,2", false },               /* A035's separator */
                { "1?a", false },
                { "1#", false },
                { "1&2", false },
                { "1+2", false },
                { "1:2", false },
                { "1@2", false },
                { "1\"", false },
                { "1\\", false },
                { "\x7f", false },
                { "\xc3\xa9", false },          /* a letter, but not ASCII */
                { "1\xef\xbc\x91", false },     /* FULLWIDTH DIGIT ONE */
                { "", false },
                { NULL, false },
        };
        char rule[32];
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++)
                if (service_id_valid(cases[i].s) != cases[i].valid)
                        fail_msg("case %zu (%s): expected %d", i, cases[i].s ? cases[i].s : "NULL", cases[i].valid);
        /* The words every refusal says name the bound the code keeps. */
        snprintf(rule, sizeof rule, "1 to %d ", SERVICE_ID_MAX);
        assert_non_null(strstr(SERVICE_ID_RULE, rule));
}

/* Every byte value, alone and after a first character that is valid. */
static void test_service_id_every_byte(void **state) {
        (void) state;

        for (int c = 1; c < 256; c++) {
                bool alnum = (c >= '0' && c <= '9') || (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z');
                const char alone[] = { (char) c, '\0' }, after[] = { '7', (char) c, '\0' };

                if (service_id_valid(alone) != alnum)
                        fail_msg("byte 0x%02x alone: expected %d", c, alnum);
                if (service_id_valid(after) != (alnum || c == '.' || c == '-'))
                        fail_msg("byte 0x%02x after a digit: expected %d", c, alnum || c == '.' || c == '-');
        }
}

/* An id is the bytes before its NUL, and the rule reads none after it: each
 * id below ends its own allocation (so ASan sees any read past it). */
static void test_service_id_ends_at_its_nul(void **state) {
        static const char with_nul[] = "12\0/..";
        (void) state;

        assert_true(service_id_valid(with_nul));
        for (size_t len = 0; len <= SERVICE_ID_MAX + 1; len++) {
                char *id = malloc(len + 1);

                assert_non_null(id);
                memset(id, '9', len);
                id[len] = '\0';
                if (service_id_valid(id) != (len >= 1 && len <= SERVICE_ID_MAX))
                        fail_msg("%zu digits: expected %d", len, len >= 1 && len <= SERVICE_ID_MAX);
                free(id);
        }
}

/* ---- JSON text ---------------------------------------------------------- */

static void test_parse_text_valid(void **state) {
        static const struct {
                const char *text;
                size_t len; /* 0: strlen */
                json_type type;
        } cases[] = {
                { "{\"a\":1}", 0, json_type_object },
                { " \r\n\t{\"a\":[1,2]} \n\t\r ", 0, json_type_object },
                { "[1,2,3]", 0, json_type_array },
                { "12", 0, json_type_int },              /* a bare number needs the end marker */
                { "{\"a\":1}GARBAGE", 7, json_type_object }, /* len stops before the garbage */
                { "\"caf\xc3\xa9\"", 0, json_type_string },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct errbuf e = { "" };
                json_object *root = NULL;
                size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);

                assert_int_equal(fhir_parse_text(cases[i].text, len, &root, &e), 0);
                assert_non_null(root);
                assert_int_equal(json_object_get_type(root), cases[i].type);
                assert_string_equal(e.msg, "");
                json_object_put(root);
        }
}

static void test_parse_text_malformed(void **state) {
        static char deep[200];
        static const struct {
                const char *text;
                size_t len; /* 0: strlen */
                const char *msg;
        } cases[] = {
                { "", 0, "malformed JSON at byte 0: unexpected end of data" },
                { "   ", 0, "malformed JSON at byte 3: unexpected end of data" },
                { "{\"a\":", 0, "malformed JSON at byte 5: unexpected end of data" },
                { "{\"a\":1} x", 0, "malformed JSON at byte 8: unexpected character" },
                { "{\"a\":1}{}", 0, "malformed JSON at byte 7: unexpected character" },
                { "{\"a\":1}\n]", 0, "malformed JSON at byte 8: unexpected character" },
                { "[1,]", 0, "malformed JSON at byte 3: unexpected character" },
                { "{\"a\":1,}", 0, "malformed JSON at byte 7: unexpected character" },
                { "\"\xc3\x28\"", 0, "malformed JSON at byte 2: invalid utf-8 string" },
                { "{\"a\":1}\0 trailing", 17, "malformed JSON at byte 7: NUL byte" },
                { "{\"a\":tru}", 0, "malformed JSON at byte 8: boolean expected" },
                { "null", 0, "JSON text is null, not a resource" },
                { deep, 0, "malformed JSON at byte 64: nesting too deep" },
        };
        (void) state;

        memset(deep, '[', 100);
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct errbuf e = { "" };
                json_object *root = (json_object *) &e; /* sentinel: must stay */
                size_t len = cases[i].len ? cases[i].len : strlen(cases[i].text);

                assert_int_equal(fhir_parse_text(cases[i].text, len, &root, &e), -EBADMSG);
                assert_ptr_equal(root, (json_object *) &e);
                assert_string_equal(e.msg, cases[i].msg);
        }
        /* no errbuf: still an error, and no crash */
        {
                json_object *root = NULL;

                assert_int_equal(fhir_parse_text("{", 1, &root, NULL), -EBADMSG);
                assert_null(root);
                assert_int_equal(fhir_parse_text(NULL, 5, &root, NULL), -EBADMSG);
                assert_null(root);
        }
}

/* Every proper prefix of a fixture is incomplete JSON, and every fixture
 * followed by garbage is refused.  (The small fixtures: the work is quadratic
 * in the size, and the suite runs under valgrind.) */
static void test_parse_text_truncated_and_trailing(void **state) {
        static const char *const files[] = {
                FIXTURES "worklist-bad-ubrn.json",
                FIXTURES "referral-rejected.json",
                FIXTURES "referral-unknown-codes.json",
                FIXTURES "outcome-patient-error.json",
        };
        (void) state;

        for (size_t f = 0; f < ELEMENTSOF(files); f++) {
                size_t len;
                char *text = read_file(files[f], &len);
                char *garbage;

                while (len > 0 && strchr(" \n\r\t", text[len - 1]))
                        len--;
                for (size_t n = 0; n < len; n++) {
                        struct errbuf e = { "" };
                        json_object *root = NULL;

                        if (fhir_parse_text(text, n, &root, &e) != -EBADMSG)
                                fail_msg("%s: prefix of %zu bytes accepted", files[f], n);
                        assert_null(root);
                        assert_non_null(strstr(e.msg, "malformed JSON at byte "));
                }
                garbage = malloc(len + 3);
                assert_non_null(garbage);
                memcpy(garbage, text, len);
                memcpy(garbage + len, "\n}", 3);
                {
                        struct errbuf e = { "" };
                        json_object *root = NULL;
                        char want[80];

                        assert_int_equal(fhir_parse_text(garbage, len + 2, &root, &e), -EBADMSG);
                        assert_null(root);
                        snprintf(want, sizeof want, "malformed JSON at byte %zu: ", len + 1);
                        assert_non_null(strstr(e.msg, want));
                }
                free(garbage);
                free(text);
        }
}

/* ---- A008 worklist ----------------------------------------------------- */

static void test_worklist_fixture(void **state) {
        static const struct {
                const char *ubrn;
                int64_t version;
                const char *priority, *specialty, *service_id, *service_name, *referral_type,
                        *nhs_number;
        } want[] = {
                { "000000100001", 3, "ROUTINE", "GASTROENTEROLOGY", "20001", "Northgate Endoscopy Clinic",
                  "APPOINTMENT", "9990000018" },
                { "000000100002", 1, "URGENT", "RESPIRATORY", "20002",
                  "Harbour Respiratory Assessment Service", "TRIAGE_DEFERRAL", "9990000026" },
                { "000000100003", 12, "TWO_WEEK_WAIT", NULL, "20001", "Northgate Endoscopy Clinic",
                  "APPOINTMENT", "9990000034" },
                { "000000100004", -1, "FASTER_THAN_LIGHT", "DERMATOLOGY", NULL, NULL,
                  "ADVICE_AND_GUIDANCE_CONVERSION", NULL },
        };
        json_object *root = load(FIXTURES "worklist-review.json");
        struct errbuf e = { "" };
        struct worklist w;
        (void) state;

        assert_int_equal(worklist_of(root, &w, &e), 0);
        assert_string_equal(e.msg, "");
        assert_int_equal(w.n, ELEMENTSOF(want));
        for (size_t i = 0; i < w.n; i++) {
                const struct worklist_entry *we = &w.entries[i];

                assert_string_equal(we->ubrn, want[i].ubrn);
                assert_int_equal(we->version, want[i].version);
                assert_str(we->priority, want[i].priority);
                assert_str(we->specialty, want[i].specialty);
                assert_str(we->service_id, want[i].service_id);
                assert_str(we->service_name, want[i].service_name);
                assert_str(we->referral_type, want[i].referral_type);
                assert_str(we->nhs_number, want[i].nhs_number);
        }
        worklist_free(&w);
        assert_null(w.entries);
        assert_int_equal(w.n, 0);
        worklist_free(&w); /* twice is harmless */
        worklist_free(NULL);
        json_object_put(root);
}

static void test_worklist_empty(void **state) {
        static const char *const texts[] = {
                NULL, /* the fixture */
                "{\"resourceType\":\"List\",\"entry\":[]}",
                "{\"resourceType\":\"List\",\"entry\":null}",
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(texts); i++) {
                json_object *root = texts[i] ? parse(texts[i]) : load(FIXTURES "worklist-empty.json");
                struct errbuf e = { "" };
                struct worklist w;

                memset(&w, 0xA5, sizeof w);
                assert_int_equal(worklist_of(root, &w, &e), 0);
                assert_int_equal(w.n, 0);
                assert_null(w.entries);
                worklist_free(&w);
                json_object_put(root);
        }
}

/* Shapes the API does not send but that must be read liberally. */
static void test_worklist_liberal(void **state) {
#define ITEM(x) "{\"url\":\"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-ReferralsforReview-WorkListItem-1\",\"extension\":[" x "]}"
#define PATIENT_EXT(ref) "{\"url\":\"patient\",\"valueReference\":{\"reference\":\"" ref "\"}}"
#define NHS_PATIENT(id, nhs) "{\"resourceType\":\"Patient\",\"id\":\"" id "\",\"identifier\":[{\"system\":\"http://fhir.nhs.net/Id/nhs-number\",\"value\":\"" nhs "\"}]}"
        static const struct {
                const char *name, *json, *ubrn;
                int64_t version;
                const char *nhs_number, *priority;
        } cases[] = {
                { "versioned reference",
                  "{\"resourceType\":\"List\",\"entry\":[{\"item\":{\"reference\":\"ReferralRequest/000000300001/_history/4\"}}]}",
                  "000000300001", -1, NULL, NULL },
                { "absolute reference",
                  "{\"resourceType\":\"List\",\"entry\":[{\"item\":{\"reference\":\"https://sandbox.example/FHIR/STU3/ReferralRequest/000000300002\"}}]}",
                  "000000300002", -1, NULL, NULL },
                { "version as a string",
                  "{\"resourceType\":\"List\",\"entry\":[{\"item\":{\"reference\":\"ReferralRequest/000000300003\"},\"extension\":["
                  ITEM("{\"url\":\"referralRequestVersion\",\"valueInteger\":\"8\"}") "]}]}",
                  "000000300003", 8, NULL, NULL },
                { "version 0",
                  "{\"resourceType\":\"List\",\"entry\":[{\"item\":{\"reference\":\"ReferralRequest/000000300003\"},\"extension\":["
                  ITEM("{\"url\":\"referralRequestVersion\",\"valueInteger\":0}") "]}]}",
                  "000000300003", 0, NULL, NULL },
                { "contained is a string",
                  "{\"resourceType\":\"List\",\"contained\":\"9990000093\",\"entry\":[{\"item\":{\"reference\":\"ReferralRequest/000000300004\"},\"extension\":["
                  ITEM(PATIENT_EXT("#Patient-1")) "]}]}",
                  "000000300004", -1, NULL, NULL },
                { "patient reference to a Practitioner",
                  "{\"resourceType\":\"List\",\"contained\":[{\"resourceType\":\"Practitioner\",\"id\":\"p\",\"identifier\":[{\"system\":\"http://fhir.nhs.net/Id/nhs-number\",\"value\":\"9990000093\"}]}],"
                  "\"entry\":[{\"item\":{\"reference\":\"ReferralRequest/000000300005\"},\"extension\":[" ITEM(PATIENT_EXT("#p")) "]}]}",
                  "000000300005", -1, NULL, NULL },
                { "patient reference not local",
                  "{\"resourceType\":\"List\",\"contained\":[" NHS_PATIENT("p", "9990000093") "],"
                  "\"entry\":[{\"item\":{\"reference\":\"ReferralRequest/000000300006\"},\"extension\":[" ITEM(PATIENT_EXT("Patient/p")) "]}]}",
                  "000000300006", -1, NULL, NULL },
                { "two patients with one id: the first wins",
                  "{\"resourceType\":\"List\",\"contained\":[" NHS_PATIENT("p", "9990000093") "," NHS_PATIENT("p", "9990000085") "],"
                  "\"entry\":[{\"item\":{\"reference\":\"ReferralRequest/000000300007\"},\"extension\":[" ITEM(PATIENT_EXT("#p")) "]}]}",
                  "000000300007", -1, "9990000093", NULL },
                { "patient without an nhs-number identifier",
                  "{\"resourceType\":\"List\",\"contained\":[{\"resourceType\":\"Patient\",\"id\":\"p\",\"identifier\":[{\"system\":\"x\",\"value\":\"9990000093\"}]}],"
                  "\"entry\":[{\"item\":{\"reference\":\"ReferralRequest/000000300008\"},\"extension\":[" ITEM(PATIENT_EXT("#p")) "]}]}",
                  "000000300008", -1, NULL, NULL },
                { "extension is an object",
                  "{\"resourceType\":\"List\",\"entry\":[{\"item\":{\"reference\":\"ReferralRequest/000000300009\"},\"extension\":{\"url\":\"x\"}}]}",
                  "000000300009", -1, NULL, NULL },
                { "item extension matched by URL suffix on another host",
                  "{\"resourceType\":\"List\",\"entry\":[{\"item\":{\"reference\":\"ReferralRequest/000000300010\"},\"extension\":["
                  "{\"url\":\"https://int.example/X/Extension-eRS-ReferralsforReview-WorkListItem-1\",\"extension\":["
                  "{\"url\":\"priority\",\"valueCodeableConcept\":{\"coding\":[{\"code\":\"URGENT\"}]}}]}]}]}",
                  "000000300010", -1, NULL, "URGENT" },
                { "URL that only ends like the extension name is not it",
                  "{\"resourceType\":\"List\",\"entry\":[{\"item\":{\"reference\":\"ReferralRequest/000000300011\"},\"extension\":["
                  "{\"url\":\"https://x/NotExtension-eRS-ReferralsforReview-WorkListItem-1\",\"extension\":["
                  "{\"url\":\"priority\",\"valueCodeableConcept\":{\"coding\":[{\"code\":\"URGENT\"}]}}]}]}]}",
                  "000000300011", -1, NULL, NULL },
                { "code with a NUL escape is unreadable, not cut short",
                  "{\"resourceType\":\"List\",\"entry\":[{\"item\":{\"reference\":\"ReferralRequest/000000300012\"},\"extension\":["
                  ITEM("{\"url\":\"priority\",\"valueCodeableConcept\":{\"coding\":[{\"code\":\"URGENT\\u0000X\"}]}}") "]}]}",
                  "000000300012", -1, NULL, NULL },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_object *root = parse(cases[i].json);
                struct errbuf e = { "" };
                struct worklist w;
                int r = worklist_of(root, &w, &e);

                if (r != 0)
                        fail_msg("%s: %s", cases[i].name, e.msg);
                assert_int_equal(w.n, 1);
                assert_string_equal(w.entries[0].ubrn, cases[i].ubrn);
                assert_int_equal(w.entries[0].version, cases[i].version);
                assert_str(w.entries[0].nhs_number, cases[i].nhs_number);
                assert_str(w.entries[0].priority, cases[i].priority);
                worklist_free(&w);
                json_object_put(root);
        }
#undef ITEM
#undef PATIENT_EXT
#undef NHS_PATIENT
}

/* The every-element fixture: an entry of each worklist with every element the
 * specification defines, the working state of each kept (docs/schema.md,
 * "Every element of a worklist entry"). */
static void test_worklist_every_element(void **state) {
        json_object *root = load(FIXTURES "worklist-every-element.json");
        struct errbuf e = { "" };
        struct worklist w;
        (void) state;

        assert_int_equal(worklist_of(root, &w, &e), 0);
        assert_int_equal(w.n, 2);
        assert_int_equal(w.n_skipped, 0);

        const struct worklist_entry *rfr = &w.entries[0], *slots = &w.entries[1];
        assert_string_equal(rfr->ubrn, "000000300021");
        assert_int_equal(rfr->version, 6);
        assert_str(rfr->priority, "URGENT");
        assert_str(rfr->referral_type, "APPOINTMENT");
        assert_str(rfr->nhs_number, "9990000042");
        assert_int_equal(rfr->clinical_info_printed, PRINTED_YES);
        assert_str(rfr->request_context_status, "LETTER_CHANGED");
        assert_str(rfr->ubrn_received, NULL);
        assert_str(rfr->patient_contact_expected, NULL);
        assert_str(rfr->last_contact, NULL);
        assert_str(rfr->clinical_information_status, NULL);

        assert_string_equal(slots->ubrn, "000000300022");
        assert_int_equal(slots->version, -1);
        assert_str(slots->priority, "ROUTINE");
        assert_str(slots->service_id, "20731");
        assert_int_equal(slots->clinical_info_printed, PRINTED_NO);
        assert_str(slots->ubrn_received, "2025-03-11T09:05:12.700Z");
        assert_str(slots->patient_contact_expected, "2025-03-18");
        assert_str(slots->last_contact, "2025-03-14T15:30:00.000Z");
        assert_str(slots->clinical_information_status, "OVERDUE");
        assert_str(slots->request_context_status, NULL);
        worklist_free(&w);
        json_object_put(root);
}

/* The working state of an entry, element by element: present, absent,
 * repeated (every value kept, in order, one space between), of another type
 * or holding a NUL (unreadable: left out), on either worklist's item. */
static void test_worklist_working_state(void **state) {
#define RFR_ITEM "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-ReferralsforReview-WorkListItem-1"
#define SLOT_ITEM "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-AppointmentSlotIssues-WorkListItem-1"
#define LIST(item, x) "{\"resourceType\":\"List\",\"entry\":[{\"item\":{\"reference\":\"ReferralRequest/000000300030\"}," \
                      "\"extension\":[{\"url\":\"" item "\",\"extension\":[" x "]}]}]}"
#define EXT(url, key, v) "{\"url\":\"" url "\",\"" key "\":" v "}"
#define CODES(...) "{\"coding\":[" __VA_ARGS__ "]}"
#define CODE(c) "{\"system\":\"https://fhir.nhs.uk/STU3/CodeSystem/x\",\"code\":" c "}"
        static const struct {
                const char *name, *json;
                const char *received, *contact_expected, *last_contact, *information_status, *context_status;
                enum printed printed;
        } cases[] = {
                { "none said", LIST(SLOT_ITEM, EXT("priority", "valueCodeableConcept", CODES(CODE("\"ROUTINE\"")))),
                  NULL, NULL, NULL, NULL, NULL, PRINTED_UNKNOWN },
                { "no item extension", "{\"resourceType\":\"List\",\"entry\":[{\"item\":{\"reference\":"
                                       "\"ReferralRequest/000000300030\"}}]}",
                  NULL, NULL, NULL, NULL, NULL, PRINTED_UNKNOWN },
                { "item extension not an array",
                  "{\"resourceType\":\"List\",\"entry\":[{\"item\":{\"reference\":\"ReferralRequest/000000300030\"},"
                  "\"extension\":[{\"url\":\"" SLOT_ITEM "\",\"extension\":{\"url\":\"lastContact\","
                  "\"valueDateTime\":\"2025-01-02T03:04:05Z\"}}]}]}",
                  NULL, NULL, NULL, NULL, NULL, PRINTED_UNKNOWN },
                /* ubrnReceived */
                { "ubrnReceived", LIST(SLOT_ITEM, EXT("ubrnReceived", "valueDateTime", "\"2025-03-11T09:05:12.700Z\"")),
                  "2025-03-11T09:05:12.700Z", NULL, NULL, NULL, NULL, PRINTED_UNKNOWN },
                { "ubrnReceived repeated",
                  LIST(SLOT_ITEM, EXT("ubrnReceived", "valueDateTime", "\"2025-03-11T09:05:12Z\"") ","
                                  EXT("ubrnReceived", "valueDateTime", "\"2025-03-12T10:00:00Z\"")),
                  "2025-03-11T09:05:12Z 2025-03-12T10:00:00Z", NULL, NULL, NULL, NULL, PRINTED_UNKNOWN },
                { "ubrnReceived empty, then repeated: both kept",
                  LIST(SLOT_ITEM, EXT("ubrnReceived", "valueDateTime", "\"\"") ","
                                  EXT("ubrnReceived", "valueDateTime", "\"2025-03-12T10:00:00Z\"")),
                  " 2025-03-12T10:00:00Z", NULL, NULL, NULL, NULL, PRINTED_UNKNOWN },
                { "ubrnReceived a number", LIST(SLOT_ITEM, EXT("ubrnReceived", "valueDateTime", "20250311")),
                  NULL, NULL, NULL, NULL, NULL, PRINTED_UNKNOWN },
                { "ubrnReceived with a NUL", LIST(SLOT_ITEM, EXT("ubrnReceived", "valueDateTime", "\"2025\\u0000-03\"")),
                  NULL, NULL, NULL, NULL, NULL, PRINTED_UNKNOWN },
                { "ubrnReceived an instant, whole past any width",
                  LIST(SLOT_ITEM, EXT("ubrnReceived", "valueInstant",
                                      "\"2025-03-11T09:05:12.700123456789012345678901234567890+01:00\"")),
                  "2025-03-11T09:05:12.700123456789012345678901234567890+01:00", NULL, NULL, NULL, NULL,
                  PRINTED_UNKNOWN },
                /* patientContactExpected */
                { "patientContactExpected", LIST(SLOT_ITEM, EXT("patientContactExpected", "valueDate", "\"2025-03-18\"")),
                  NULL, "2025-03-18", NULL, NULL, NULL, PRINTED_UNKNOWN },
                { "patientContactExpected as a dateTime",
                  LIST(SLOT_ITEM, EXT("patientContactExpected", "valueDateTime", "\"2025-03-18T00:00:00Z\"")),
                  NULL, "2025-03-18T00:00:00Z", NULL, NULL, NULL, PRINTED_UNKNOWN },
                { "patientContactExpected repeated, one unreadable",
                  LIST(SLOT_ITEM, EXT("patientContactExpected", "valueDate", "\"2025-03-18\"") ","
                                  EXT("patientContactExpected", "valueDate", "true") ","
                                  EXT("patientContactExpected", "valueDate", "\"2025-03-19\"")),
                  NULL, "2025-03-18 2025-03-19", NULL, NULL, NULL, PRINTED_UNKNOWN },
                { "patientContactExpected an object", LIST(SLOT_ITEM, EXT("patientContactExpected", "valueDate", "{}")),
                  NULL, NULL, NULL, NULL, NULL, PRINTED_UNKNOWN },
                /* lastContact */
                { "lastContact", LIST(SLOT_ITEM, EXT("lastContact", "valueDateTime", "\"2025-03-14T15:30:00.000Z\"")),
                  NULL, NULL, "2025-03-14T15:30:00.000Z", NULL, NULL, PRINTED_UNKNOWN },
                { "lastContact repeated",
                  LIST(SLOT_ITEM, EXT("lastContact", "valueDateTime", "\"2025-03-14\"") ","
                                  EXT("lastContact", "valueDateTime", "\"2025-03-15\"")),
                  NULL, NULL, "2025-03-14 2025-03-15", NULL, NULL, PRINTED_UNKNOWN },
                { "lastContact null", LIST(SLOT_ITEM, EXT("lastContact", "valueDateTime", "null")),
                  NULL, NULL, NULL, NULL, NULL, PRINTED_UNKNOWN },
                /* clinicalInformationStatus */
                { "clinicalInformationStatus",
                  LIST(SLOT_ITEM, EXT("clinicalInformationStatus", "valueCodeableConcept", CODES(CODE("\"OVERDUE\"")))),
                  NULL, NULL, NULL, "OVERDUE", NULL, PRINTED_UNKNOWN },
                { "clinicalInformationStatus unknown code, kept verbatim",
                  LIST(SLOT_ITEM, EXT("clinicalInformationStatus", "valueCodeableConcept",
                                      CODES(CODE("\"ASKED_AGAIN_2026\"")))),
                  NULL, NULL, NULL, "ASKED_AGAIN_2026", NULL, PRINTED_UNKNOWN },
                { "clinicalInformationStatus two codings",
                  LIST(SLOT_ITEM, EXT("clinicalInformationStatus", "valueCodeableConcept",
                                      CODES(CODE("\"NOT_DUE\"") "," CODE("\"OVERDUE\"")))),
                  NULL, NULL, NULL, "NOT_DUE OVERDUE", NULL, PRINTED_UNKNOWN },
                { "clinicalInformationStatus code a number",
                  LIST(SLOT_ITEM, EXT("clinicalInformationStatus", "valueCodeableConcept", CODES(CODE("4")))),
                  NULL, NULL, NULL, NULL, NULL, PRINTED_UNKNOWN },
                { "clinicalInformationStatus coding an object",
                  LIST(SLOT_ITEM, EXT("clinicalInformationStatus", "valueCodeableConcept",
                                      "{\"coding\":{\"code\":\"OVERDUE\"}}")),
                  NULL, NULL, NULL, NULL, NULL, PRINTED_UNKNOWN },
                /* requestContextStatus */
                { "requestContextStatus",
                  LIST(RFR_ITEM, EXT("requestContextStatus", "valueCodeableConcept", CODES(CODE("\"NEVER_REVIEWED\"")))),
                  NULL, NULL, NULL, NULL, "NEVER_REVIEWED", PRINTED_UNKNOWN },
                { "requestContextStatus repeated: every code, in order",
                  LIST(RFR_ITEM, EXT("requestContextStatus", "valueCodeableConcept",
                                     CODES(CODE("\"LETTER_CHANGED\"") "," CODE("\"PRIORITY_CHANGED\""))) ","
                                 EXT("requestContextStatus", "valueCodeableConcept", CODES(CODE("\"NEVER_REVIEWED\"")))),
                  NULL, NULL, NULL, NULL, "LETTER_CHANGED PRIORITY_CHANGED NEVER_REVIEWED", PRINTED_UNKNOWN },
                { "requestContextStatus a NUL in one code",
                  LIST(RFR_ITEM, EXT("requestContextStatus", "valueCodeableConcept",
                                     CODES(CODE("\"LETTER\\u0000CHANGED\"") "," CODE("\"PRIORITY_CHANGED\"")))),
                  NULL, NULL, NULL, NULL, "PRIORITY_CHANGED", PRINTED_UNKNOWN },
                { "requestContextStatus a string", LIST(RFR_ITEM, EXT("requestContextStatus", "valueCodeableConcept",
                                                                      "\"LETTER_CHANGED\"")),
                  NULL, NULL, NULL, NULL, NULL, PRINTED_UNKNOWN },
                /* clinicalInfoPrinted */
                { "clinicalInfoPrinted true", LIST(RFR_ITEM, EXT("clinicalInfoPrinted", "valueBoolean", "true")),
                  NULL, NULL, NULL, NULL, NULL, PRINTED_YES },
                { "clinicalInfoPrinted false", LIST(SLOT_ITEM, EXT("clinicalInfoPrinted", "valueBoolean", "false")),
                  NULL, NULL, NULL, NULL, NULL, PRINTED_NO },
                { "clinicalInfoPrinted a string", LIST(RFR_ITEM, EXT("clinicalInfoPrinted", "valueBoolean", "\"true\"")),
                  NULL, NULL, NULL, NULL, NULL, PRINTED_UNKNOWN },
                { "clinicalInfoPrinted a number", LIST(RFR_ITEM, EXT("clinicalInfoPrinted", "valueBoolean", "1")),
                  NULL, NULL, NULL, NULL, NULL, PRINTED_UNKNOWN },
                { "clinicalInfoPrinted repeated alike",
                  LIST(RFR_ITEM, EXT("clinicalInfoPrinted", "valueBoolean", "true") ","
                                 EXT("clinicalInfoPrinted", "valueBoolean", "\"no\"") ","
                                 EXT("clinicalInfoPrinted", "valueBoolean", "true")),
                  NULL, NULL, NULL, NULL, NULL, PRINTED_YES },
                { "clinicalInfoPrinted said both ways: not known",
                  LIST(RFR_ITEM, EXT("clinicalInfoPrinted", "valueBoolean", "false") ","
                                 EXT("clinicalInfoPrinted", "valueBoolean", "true")),
                  NULL, NULL, NULL, NULL, NULL, PRINTED_UNKNOWN },
                /* all at once, in another order than the specification's, beside other elements */
                { "all six",
                  LIST(SLOT_ITEM, EXT("requestContextStatus", "valueCodeableConcept", CODES(CODE("\"LETTER_CHANGED\""))) ","
                                  EXT("lastContact", "valueDateTime", "\"2025-03-14T15:30:00Z\"") ","
                                  EXT("priority", "valueCodeableConcept", CODES(CODE("\"URGENT\""))) ","
                                  EXT("clinicalInfoPrinted", "valueBoolean", "false") ","
                                  EXT("clinicalInformationStatus", "valueCodeableConcept", CODES(CODE("\"PRESENT\""))) ","
                                  EXT("patientContactExpected", "valueDate", "\"2025-03-18\"") ","
                                  EXT("ubrnReceived", "valueDateTime", "\"2025-03-11T09:05:12Z\"")),
                  "2025-03-11T09:05:12Z", "2025-03-18", "2025-03-14T15:30:00Z", "PRESENT", "LETTER_CHANGED",
                  PRINTED_NO },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct errbuf e = { "" };
                struct worklist w;

                if (fhir_parse_worklist(cases[i].json, strlen(cases[i].json), &w, &e) != 0)
                        fail_msg("%s: %s", cases[i].name, e.msg);
                if (w.n != 1)
                        fail_msg("%s: %zu entries read", cases[i].name, w.n);
                const struct worklist_entry *we = &w.entries[0];
                const char *got[] = { we->ubrn_received, we->patient_contact_expected, we->last_contact,
                                      we->clinical_information_status, we->request_context_status };
                const char *want[] = { cases[i].received, cases[i].contact_expected, cases[i].last_contact,
                                       cases[i].information_status, cases[i].context_status };
                static const char *const field[] = { "ubrn_received", "patient_contact_expected", "last_contact",
                                                     "clinical_information_status", "request_context_status" };
                for (size_t k = 0; k < ELEMENTSOF(got); k++)
                        if (!got[k] != !want[k] || (got[k] && strcmp(got[k], want[k]) != 0))
                                fail_msg("%s: %s is %s%s%s, expected %s%s%s", cases[i].name, field[k],
                                         got[k] ? "\"" : "", got[k] ? got[k] : "NULL", got[k] ? "\"" : "",
                                         want[k] ? "\"" : "", want[k] ? want[k] : "NULL", want[k] ? "\"" : "");
                if (we->clinical_info_printed != cases[i].printed)
                        fail_msg("%s: clinical_info_printed is %d, expected %d", cases[i].name,
                                 (int) we->clinical_info_printed, (int) cases[i].printed);
                worklist_free(&w);
        }
#undef RFR_ITEM
#undef SLOT_ITEM
#undef LIST
#undef EXT
#undef CODES
#undef CODE
}

/* Error cases: each names the element, never the NHS number in the input. */
static void test_worklist_errors(void **state) {
#define PATIENTS "\"contained\":[{\"resourceType\":\"Patient\",\"id\":\"Patient-9990000093\",\"identifier\":[{\"system\":\"http://fhir.nhs.net/Id/nhs-number\",\"value\":\"9990000093\"}]}]"
        static const struct {
                const char *json, *msg;
        } cases[] = {
                { "{\"resourceType\":\"Bundle\"," PATIENTS "}", "expected a List, got Bundle" },
                { "{\"resourceType\":\"Patient-9990000093\"," PATIENTS "}",
                  "expected a List, got an unrecognisable resourceType" },
                /* server text, quoted by the one rule (server_text.h): a control is a blank, a bidi
                 * control escaped; one with a digit (it could be a patient's number) is not quoted */
                { "{\"resourceType\":\"Bad\\nLine\"}", "expected a List, got Bad Line" },
                { "{\"resourceType\":\"Bund\\u202ele\\u009b\"}", "expected a List, got Bund\\u202ele\\u009b" },
                { "{\"resourceType\":\"List 1\"}", "expected a List, got an unrecognisable resourceType" },
                { "{\"resourceType\":\" \\t\"}", "expected a List, got an unrecognisable resourceType" },
                { "{\"resourceType\":\"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\"}",
                  "expected a List, got an unrecognisable resourceType" },
                { "{\"resourceType\":7}", "expected a List, got an unrecognisable resourceType" },
                { "{" PATIENTS "}", "expected a List, got no resourceType" },
                { "[{\"resourceType\":\"List\"}]", "expected a List, got a JSON array" },
                { "\"List\"", "expected a List, got a JSON string" },
                { "{\"resourceType\":\"List\",\"entry\":{}}", "entry is not an array" },
                { "{\"resourceType\":\"List\",\"entry\":\"9990000093\"}", "entry is not an array" },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_object *root = parse(cases[i].json);
                struct errbuf e = { "" };
                struct worklist w;

                assert_int_equal(run_parser(WORKLIST, root, &e, NULL), -EBADMSG);
                assert_string_equal(e.msg, cases[i].msg);
                /* the errbuf is optional */
                assert_int_equal(worklist_of(root, &w, NULL), -EBADMSG);
                json_object_put(root);
        }
        {
                struct errbuf e = { "" };

                assert_int_equal(run_parser(WORKLIST, NULL, &e, NULL), -EBADMSG);
                assert_string_equal(e.msg, "expected a List, got a JSON null");
        }
#undef PATIENTS
}

/* "index UBRN why" for each skipped entry, one a line, into buf. */
static const char *skips_text(const struct worklist *w, char *buf, size_t size) {
        size_t used = 0;

        buf[0] = '\0';
        for (size_t i = 0; i < w->n_skipped && used < size; i++) {
                int n = snprintf(buf + used, size - used, "%zu %s %s\n", w->skipped[i].index,
                                 w->skipped[i].ubrn[0] ? w->skipped[i].ubrn : "-", w->skipped[i].why);
                if (n < 0)
                        break;
                used += (size_t) n;
        }
        return buf;
}

/* An entry that is valid JSON but not a worklist entry is skipped, never the
 * whole worklist: its position, its UBRN when readable, and why; the other
 * entries are read as if it were not there (its patient too). */
static void test_worklist_skips(void **state) {
#define PATIENTS "\"contained\":[{\"resourceType\":\"Patient\",\"id\":\"Patient-9990000093\",\"identifier\":[{\"system\":\"http://fhir.nhs.net/Id/nhs-number\",\"value\":\"9990000093\"}]}]"
#define GOOD_ENTRY "{\"item\":{\"reference\":\"ReferralRequest/000000400001\"}}"
#define VERSION_ENTRY(v) "{\"item\":{\"reference\":\"ReferralRequest/000000400002\"},\"extension\":[{\"url\":\"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-ReferralsforReview-WorkListItem-1\",\"extension\":[{\"url\":\"patient\",\"valueReference\":{\"reference\":\"#Patient-9990000093\"}},{\"url\":\"referralRequestVersion\",\"valueInteger\":" v "}]}]}"
#define REF_WHY "item.reference is not ReferralRequest/<12-digit UBRN>"
#define VERSION_WHY "referralRequestVersion is not a non-negative integer"
        static const struct {
                const char *json;
                size_t n;           /* entries read */
                const char *skips;  /* skips_text() */
        } cases[] = {
                { "{\"resourceType\":\"List\"," PATIENTS ",\"entry\":[" GOOD_ENTRY ",{\"item\":{\"reference\":\"ReferralRequest/12345\"}}]}",
                  1, "1 - " REF_WHY "\n" },
                { "{\"resourceType\":\"List\",\"entry\":[{\"item\":{\"reference\":\"ReferralRequest/0000004000011\"}}]}", 0,
                  "0 - " REF_WHY "\n" },
                { "{\"resourceType\":\"List\",\"entry\":[{\"item\":{\"reference\":\"ReferralRequest/000000400001/extra\"}}]}", 0,
                  "0 - " REF_WHY "\n" },
                { "{\"resourceType\":\"List\",\"entry\":[{\"item\":{\"reference\":\"Patient/9990000093\"}}]}", 0,
                  "0 - " REF_WHY "\n" },
                { "{\"resourceType\":\"List\",\"entry\":[{\"item\":{}}]}", 0, "0 - " REF_WHY "\n" },
                { "{\"resourceType\":\"List\",\"entry\":[" GOOD_ENTRY "," GOOD_ENTRY ",null]}", 2, "2 - not an object\n" },
                { "{\"resourceType\":\"List\",\"entry\":[\"9990000093\"]}", 0, "0 - not an object\n" },
                { "{\"resourceType\":\"List\"," PATIENTS ",\"entry\":[" VERSION_ENTRY("\"seven\"") "]}", 0,
                  "0 000000400002 " VERSION_WHY "\n" },
                { "{\"resourceType\":\"List\"," PATIENTS ",\"entry\":[" GOOD_ENTRY "," VERSION_ENTRY("-2") "]}", 1,
                  "1 000000400002 " VERSION_WHY "\n" },
                { "{\"resourceType\":\"List\"," PATIENTS ",\"entry\":[" VERSION_ENTRY("2.5") "]}", 0,
                  "0 000000400002 " VERSION_WHY "\n" },
                { "{\"resourceType\":\"List\"," PATIENTS ",\"entry\":[" VERSION_ENTRY("\"9990000093x\"") "]}", 0,
                  "0 000000400002 " VERSION_WHY "\n" },
                { "{\"resourceType\":\"List\"," PATIENTS ",\"entry\":[7,[]," VERSION_ENTRY("1") ",{}," GOOD_ENTRY "," VERSION_ENTRY("true") "]}", 2,
                  "0 - not an object\n1 - not an object\n3 - " REF_WHY "\n5 000000400002 " VERSION_WHY "\n" },
                /* a name given twice: the skips of the first entry array go with it */
                { "{\"resourceType\":\"List\",\"entry\":[null],\"entry\":[" GOOD_ENTRY "]}", 1, "" },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct errbuf e = { "" };
                struct worklist w;
                char got[512];

                if (fhir_parse_worklist(cases[i].json, strlen(cases[i].json), &w, &e) != 0)
                        fail_msg("case %zu: %s", i, e.msg);
                assert_int_equal(w.n, cases[i].n);
                assert_string_equal(skips_text(&w, got, sizeof got), cases[i].skips);
                for (size_t k = 0; k < w.n; k++) {
                        if (strcmp(w.entries[k].ubrn, "000000400002") == 0) /* the good one of VERSION_ENTRY */
                                assert_string_equal(w.entries[k].nhs_number, "9990000093");
                        assert_int_not_equal(w.entries[k].ubrn[0], '\0');
                }
                assert_true((w.skipped == NULL) == (w.n_skipped == 0));
                assert_true((w.entries == NULL) == (w.n == 0));
                worklist_free(&w);
        }
#undef PATIENTS
#undef GOOD_ENTRY
#undef VERSION_ENTRY
#undef REF_WHY
#undef VERSION_WHY
}

/* A worklist fixture whose second entry has a bad UBRN: that entry is
 * skipped, the first read; nothing in the skip holds the patient's
 * identifiers. */
static void test_worklist_error_fixture(void **state) {
        json_object *root = load(FIXTURES "worklist-bad-ubrn.json");
        struct errbuf e = { "" };
        struct worklist w;
        char got[256];
        (void) state;

        assert_int_equal(worklist_of(root, &w, &e), 0);
        assert_int_equal(w.n, 1);
        assert_string_equal(w.entries[0].ubrn, "000000100011");
        assert_string_equal(skips_text(&w, got, sizeof got),
                            "1 - item.reference is not ReferralRequest/<12-digit UBRN>\n");
        assert_null(strstr(got, "9990000085"));
        worklist_free(&w);
        json_object_put(root);
}

/* ---- A008 worklist, streamed --------------------------------------------- */

/* Parses text fed in pieces: first `split` bytes, then the rest (split = 0:
 * one byte at a time).  The result and the line go to *ret and e. */
static int worklist_fed(const char *text, size_t len, size_t split, struct worklist *ret, struct errbuf *e) {
        struct worklist_parser *p = NULL;
        int r;

        e->msg[0] = '\0';
        assert_int_equal(worklist_parser_new(&p, e), 0);
        if (split == 0) {
                r = 0;
                for (size_t i = 0; i < len && r == 0; i++)
                        r = worklist_parser_feed(p, text + i, 1, e);
        } else {
                r = worklist_parser_feed(p, text, split, e);
                if (r == 0)
                        r = worklist_parser_feed(p, text + split, len - split, e);
        }
        if (r == 0)
                r = worklist_parser_finish(p, ret, e);
        worklist_parser_free(p);
        return r;
}

static void assert_worklists_equal(const struct worklist *a, const struct worklist *b) {
        assert_int_equal(a->n_skipped, b->n_skipped);
        for (size_t i = 0; i < a->n_skipped; i++) {
                assert_int_equal(a->skipped[i].index, b->skipped[i].index);
                assert_string_equal(a->skipped[i].ubrn, b->skipped[i].ubrn);
                assert_string_equal(a->skipped[i].why, b->skipped[i].why);
        }
        assert_int_equal(a->n, b->n);
        for (size_t i = 0; i < a->n; i++) {
                const struct worklist_entry *x = &a->entries[i], *y = &b->entries[i];

                assert_string_equal(x->ubrn, y->ubrn);
                assert_int_equal(x->version, y->version);
                assert_str(x->priority, y->priority);
                assert_str(x->specialty, y->specialty);
                assert_str(x->service_id, y->service_id);
                assert_str(x->service_name, y->service_name);
                assert_str(x->referral_type, y->referral_type);
                assert_str(x->nhs_number, y->nhs_number);
        }
}

/* Asserts that text (whole) and text cut at `split` give the same answer. */
static void assert_split_same(const char *name, const char *text, size_t len, size_t split) {
        struct errbuf e_whole = { "" }, e_split = { "" };
        struct worklist whole, cut;
        int r_whole = fhir_parse_worklist(text, len, &whole, &e_whole);
        int r_split = worklist_fed(text, len, split, &cut, &e_split);

        if (r_whole != r_split || strcmp(e_whole.msg, e_split.msg) != 0)
                fail_msg("%s cut at %zu: %d '%s', whole: %d '%s'", name, split, r_split, e_split.msg, r_whole,
                         e_whole.msg);
        if (r_whole == 0) {
                assert_worklists_equal(&whole, &cut);
                worklist_free(&whole);
                worklist_free(&cut);
        }
}

#define ITEM_URL "https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-ReferralsforReview-WorkListItem-1"

/* Braces, brackets, quotes and backslashes inside strings, escapes, UTF-8 of
 * two, three and four bytes (json-c 0.16 refuses a character cut between two
 * of its calls: the parser must never cut one), nested
 * objects and arrays, every JSON type, members before and after entry, the
 * contained Patients after the entries and resourceType last. */
static const char tricky[] =
        "{\"meta\":{\"note\":\"} ] { [ \\\" \\\\ \",\"deep\":[[{\"a\":[1,2,{\"b\":\"]\"}]}]]},\n"
        " \"entry\" : [\n"
        "  {\"item\":{\"reference\":\"ReferralRequest/000000500001\"},\"extension\":[{\"url\":\"" ITEM_URL "\","
        "\"extension\":[{\"url\":\"priority\",\"valueCodeableConcept\":{\"coding\":[{\"code\":\"R\\\"}]OUTINE\"}]}},"
        "{\"url\":\"service\",\"valueReference\":{\"identifier\":{\"value\":\"20001\"},\"display\":\"Clinic {North} [2] \\u00e9 caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x91\x8d\"}},"
        "{\"url\":\"patient\",\"valueReference\":{\"reference\":\"#p\\u0031\"}},"
        "{\"url\":\"referralRequestVersion\",\"valueInteger\":7}]}]},\n"
        "  {\"item\":{\"reference\":\"ReferralRequest/000000500002\"},\"x\":{\"y\":{\"z\":[\"}\",\"]\",\"\\\\\",\"\\\"\"]}},"
        "\"n\":-1.5e+3,\"t\":true,\"f\":false,\"nul\":null}\n"
        " ],\n"
        " \"contained\":[{\"resourceType\":\"Patient\",\"id\":\"p1\",\"identifier\":[{\"system\":"
        "\"http://fhir.nhs.net/Id/nhs-number\",\"value\":\"9990000093\"}]},7,\"s\",null,[1],{}],\n"
        " \"status\":\"current\",\"count\":12,\"flag\":true,\"none\":null,\"empty\":[],\"obj\":{},\n"
        " \"resourceType\":\"List\"}\n";

static void test_worklist_stream_tricky(void **state) {
        struct errbuf e = { "" };
        struct worklist w;
        (void) state;

        assert_int_equal(fhir_parse_worklist(tricky, strlen(tricky), &w, &e), 0);
        assert_int_equal(w.n, 2);
        assert_string_equal(w.entries[0].ubrn, "000000500001");
        assert_int_equal(w.entries[0].version, 7);
        assert_string_equal(w.entries[0].priority, "R\"}]OUTINE");
        assert_string_equal(w.entries[0].service_id, "20001");
        assert_string_equal(w.entries[0].service_name,
                            "Clinic {North} [2] \xc3\xa9 caf\xc3\xa9 \xe2\x80\x94 \xf0\x9f\x91\x8d");
        assert_string_equal(w.entries[0].nhs_number, "9990000093"); /* "#p\u0031" is "#p1" */
        assert_string_equal(w.entries[1].ubrn, "000000500002");
        assert_int_equal(w.entries[1].version, -1);
        assert_null(w.entries[1].nhs_number);
        worklist_free(&w);
}

/* Every place a network read can end: the answer cut in two at every byte
 * (inside a UTF-8 character too), and fed one byte at a time, reads as it does whole (the same entries, or the
 * same error line). */
static void test_worklist_stream_every_split(void **state) {
        static const char *const files[] = {
                FIXTURES "worklist-bad-ubrn.json",
                FIXTURES "worklist-empty.json",
        };
        (void) state;

        for (size_t i = 1; i < strlen(tricky); i++)
                assert_split_same("tricky", tricky, strlen(tricky), i);
        /* invalid UTF-8 and numbers are refused with the same line wherever
         * the cut falls (a lead byte cut from what follows must not swallow a
         * ']'; json-c reads "8" then "-" as 8 but "8-" as an error) */
        static const char *const invalid[] = { "8-   ", "{\"entry\":[8-]}", "[-]", "{\"v\":1.}", "\t\xe0]", "[\"\xe0]\"]", "{\"a\":\"\xf0\x9f\"}", "[\"\xc3\"]",
                                               "{\"resourceType\":\"List\"}\xe2\x80" };
        for (size_t k = 0; k < ELEMENTSOF(invalid); k++)
                for (size_t i = 0; i <= strlen(invalid[k]); i++)
                        assert_split_same(invalid[k], invalid[k], strlen(invalid[k]), i);
        assert_split_same("tricky", tricky, strlen(tricky), 0);
        for (size_t f = 0; f < ELEMENTSOF(files); f++) {
                size_t len;
                char *text = read_file(files[f], &len);

                for (size_t i = 0; i < len; i++)
                        assert_split_same(files[f], text, len, i);
                free(text);
        }
        { /* the big fixture one byte at a time, and cut every 61 bytes */
                size_t len;
                char *text = read_file(FIXTURES "worklist-review.json", &len);

                assert_split_same("worklist-review.json", text, len, 0);
                for (size_t i = 1; i < len; i += 61)
                        assert_split_same("worklist-review.json", text, len, i);
                free(text);
        }
}

/* Every proper prefix of a worklist is refused as incomplete, never read as a
 * shorter worklist. */
static void test_worklist_stream_truncated(void **state) {
        size_t len = strlen(tricky);
        (void) state;

        while (len > 0 && strchr(" \n", tricky[len - 1]))
                len--;
        for (size_t n = 0; n < len; n++) {
                struct errbuf e = { "" };
                struct worklist w;

                memset(&w, 0xA5, sizeof w);
                assert_int_equal(worklist_fed(tricky, n, n / 2, &w, &e), -EBADMSG);
                assert_string_equal(e.msg, n == 0 ? "empty answer, expected JSON"
                                                  : "malformed JSON: the document ends before it is complete");
                assert_int_equal(w.n, (size_t) 0xA5A5A5A5A5A5A5A5ULL);
        }
}

/* What the List says is judged at the end, whatever the order of its members:
 * a wrong resourceType after the entries is refused as such (before a bad
 * entry's line), and a name given twice counts with its last value, as in a
 * json-c object. */
static void test_worklist_stream_order(void **state) {
#define GOOD "{\"item\":{\"reference\":\"ReferralRequest/000000600001\"}}"
#define BAD "{\"item\":{\"reference\":\"ReferralRequest/12\"}}"
        static const struct {
                const char *json, *msg; /* msg NULL: a worklist of n entries */
                size_t n;
        } cases[] = {
                { "{\"resourceType\":\"Bundle\",\"entry\":[" GOOD "]}", "expected a List, got Bundle", 0 },
                { "{\"entry\":[" GOOD "],\"resourceType\":\"Bundle\"}", "expected a List, got Bundle", 0 },
                { "{\"entry\":[" BAD "],\"resourceType\":\"Bundle\"}", "expected a List, got Bundle", 0 },
                { "{\"entry\":[" GOOD "," GOOD "]}", "expected a List, got no resourceType", 0 },
                { "{\"entry\":[" GOOD "," BAD "],\"resourceType\":\"List\"}", NULL, 1 }, /* BAD skipped */
                { "{\"entry\":7,\"resourceType\":\"List\"}", "entry is not an array", 0 },
                { "{\"entry\":[" BAD "],\"entry\":[" GOOD "," GOOD "],\"resourceType\":\"List\"}", NULL, 2 },
                { "{\"entry\":[" GOOD "],\"entry\":null,\"resourceType\":\"List\"}", NULL, 0 },
                { "{\"resourceType\":\"Bundle\",\"resourceType\":\"List\",\"entry\":[" GOOD "]}", NULL, 1 },
                { "{\"resourceType\":\"List\",\"entry\":[" GOOD "],\"resourceType\":null}",
                  "expected a List, got no resourceType", 0 },
                { "{\"resourceType\":\"List\"}", NULL, 0 },
                { "{\"resourceType\":\"List\",\"entry\":[]}", NULL, 0 },
                { " \r\n\t{ \"resourceType\" : \"List\" , \"entry\" : [ ] } \n", NULL, 0 },
                { "[{\"resourceType\":\"List\"}]", "expected a List, got a JSON array", 0 },
                { "12", "expected a List, got a JSON int", 0 },
                { "null", "expected a List, got a JSON null", 0 },
                { "\"List\"", "expected a List, got a JSON string", 0 },
                { "", "empty answer, expected JSON", 0 },
                { "  \n", "malformed JSON: the document ends before it is complete", 0 },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                struct errbuf e = { "" };
                struct worklist w;
                int r = fhir_parse_worklist(cases[i].json, strlen(cases[i].json), &w, &e);

                if (cases[i].msg) {
                        if (r != -EBADMSG || strcmp(e.msg, cases[i].msg) != 0)
                                fail_msg("case %zu: %d '%s', want '%s'", i, r, e.msg, cases[i].msg);
                        continue;
                }
                if (r != 0)
                        fail_msg("case %zu: %s", i, e.msg);
                assert_int_equal(w.n, cases[i].n);
                worklist_free(&w);
        }
#undef GOOD
#undef BAD
}

/* Syntax: whatever json-c refuses as a whole document the stream refuses too,
 * with a "malformed JSON" line (json-c, fhir_parse_text(), is the reference);
 * and the odd but valid is read. */
static void test_worklist_stream_syntax(void **state) {
        static char deep[2][300];
        static const struct {
                const char *json;
                size_t len; /* 0: strlen */
                bool malformed;
        } cases[] = {
                { "{\"resourceType\":\"List\",\"entry\":[1,]}", 0, true },
                { "{\"resourceType\":\"List\",}", 0, true },
                { "{\"resourceType\" \"List\"}", 0, true },
                { "{\"resourceType\":\"List\" \"entry\":[]}", 0, true },
                { "{\"resourceType\":\"List\",\"entry\":[{\"a\":1} {\"b\":2}]}", 0, true },
                { "{\"resourceType\":\"List\",\"entry\":[{\"a\":tru}]}", 0, true },
                { "{\"resourceType\":\"List\",\"entry\":[truex]}", 0, true },
                { "{\"resourceType\":\"List\",\"entry\":[{\"a\":\"\\u12\"}]}", 0, true },
                { "{\"resourceType\":\"List\",\"entry\":[\"\xc3\x28\"]}", 0, true },
                { "{\"resourceType\":\"List\",\"x\":\"\xc3\x28\"}", 0, true },
                { "{\"resourceType\":\"List\",\"\xc3\x28\":1}", 0, true },
                { "{\"resourceType\":\"List\"}}", 0, true },
                { "{\"resourceType\":\"List\"} x", 0, true },
                { "{\"resourceType\":\"List\"}{}", 0, true },
                { "{1:2}", 0, true },
                { "{\"a\":1,\"b\"}", 0, true },
                { "{\"a\"}", 0, true },
                { "{\"v\":-}", 0, true },
                { "{\"v\":}", 0, true },
                { "{\"v\":1 2}", 0, true },
                { "[1 2]", 0, true },
                { "[,1]", 0, true },
                { "{,}", 0, true },
                { "{\"a\":[1,2}", 0, true },
                { "{\"a\":{\"b\":1]}", 0, true },
                { "{\"resourceType\":\"List\",\"entry\":[]}\0", 35, true },
                { "{\"resourceType\":\"Li\0st\"}", 24, true },
                { "{\"resourceType\":\"List\" , \"entry\":[ {} , [] , \"\" , 0 , null ]}", 0, false },
                { "{\"resourceType\":\"List\",\"x\":\"\\u0000\",\"entry\":null}", 0, false },
                { "{\"resourceType\":\"List\",\"n\":[0,-0,1e5,-2.5E-3,true,false,null]}", 0, false },
                { "{\"resourceType\":\"List\",\"entr\\u0079\":[]}", 0, false },
                { deep[0], 0, false },
                { deep[1], 0, true },
        };
        (void) state;

        /* an entry of 62 nested arrays (the document 64 deep, as deep as json-c
         * reads a whole one), and of 63 */
        for (int d = 0; d < 2; d++) {
                size_t n = 0, k = 63 + (size_t) d;

                n += (size_t) snprintf(deep[d], sizeof deep[d], "{\"entry\":[");
                memset(deep[d] + n, '[', k - 1);
                n += k - 1;
                memset(deep[d] + n, ']', k);
                n += k;
                snprintf(deep[d] + n, sizeof deep[d] - n, "}");
        }
        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                size_t len = cases[i].len ? cases[i].len : strlen(cases[i].json);
                struct errbuf e = { "" }, ref = { "" };
                json_object *root = NULL;
                struct worklist w;
                int r = fhir_parse_worklist(cases[i].json, len, &w, &e);
                int r_ref = fhir_parse_text(cases[i].json, len, &root, &ref);

                json_object_put(root);
                if ((r_ref < 0) != cases[i].malformed)
                        fail_msg("case %zu: json-c says %s, the case says otherwise", i, ref.msg);
                if (r == 0)
                        worklist_free(&w);
                if (cases[i].malformed != (r < 0 && strncmp(e.msg, "malformed JSON", 14) == 0))
                        fail_msg("case %zu: %d '%s', json-c: '%s'", i, r, e.msg, ref.msg);
                if (r < 0)
                        assert_clean_message(e.msg);
        }
}

/* ---- A005 referral ----------------------------------------------------- */

/* Asserts every string and scalar field of a referral except attachments and
 * related UBRNs. */
struct referral_want {
        const char *ubrn;
        int64_t version;
        const char *nhs_number, *priority, *state, *state_reason, *state_comment, *specialty,
                *specialty_display, *service_id, *service_name, *pathway_start,
                *clinical_info_first_submitted, *appointment_start, *appointment_end,
                *commissioning_org, *request_id, *status, *intent;
        /* the element walk of issue 15 */
        const char *clinical_info_last_updated, *state_reason_system, *state_reason_display, *appointment_reference,
                *appointment_status, *appointment_created, *appointment_reason, *appointment_reason_system,
                *appointment_reason_display, *appointment_comment, *appointment_slot, *appointment_clinician,
                *clinic_type, *named_clinician, *advice_request;
};

static void assert_referral(const struct referral *r, const struct referral_want *w) {
        assert_string_equal(r->ubrn, w->ubrn);
        assert_int_equal(r->version, w->version);
        assert_str(r->nhs_number, w->nhs_number);
        assert_str(r->priority, w->priority);
        assert_str(r->state, w->state);
        assert_str(r->state_reason, w->state_reason);
        assert_str(r->state_comment, w->state_comment);
        assert_str(r->specialty, w->specialty);
        assert_str(r->specialty_display, w->specialty_display);
        assert_str(r->service_id, w->service_id);
        assert_str(r->service_name, w->service_name);
        assert_str(r->pathway_start, w->pathway_start);
        assert_str(r->clinical_info_first_submitted, w->clinical_info_first_submitted);
        assert_str(r->appointment_start, w->appointment_start);
        assert_str(r->appointment_end, w->appointment_end);
        assert_str(r->commissioning_org, w->commissioning_org);
        assert_str(r->request_id, w->request_id);
        assert_str(r->status, w->status);
        assert_str(r->intent, w->intent);
        assert_str(r->clinical_info_last_updated, w->clinical_info_last_updated);
        assert_str(r->state_reason_system, w->state_reason_system);
        assert_str(r->state_reason_display, w->state_reason_display);
        assert_str(r->appointment_reference, w->appointment_reference);
        assert_str(r->appointment_status, w->appointment_status);
        assert_str(r->appointment_created, w->appointment_created);
        assert_str(r->appointment_reason, w->appointment_reason);
        assert_str(r->appointment_reason_system, w->appointment_reason_system);
        assert_str(r->appointment_reason_display, w->appointment_reason_display);
        assert_str(r->appointment_comment, w->appointment_comment);
        assert_str(r->appointment_slot, w->appointment_slot);
        assert_str(r->appointment_clinician, w->appointment_clinician);
        assert_str(r->clinic_type, w->clinic_type);
        assert_str(r->named_clinician, w->named_clinician);
        assert_str(r->advice_request, w->advice_request);
}

/* Parses a fixture that must parse as a referral. */
static void load_referral(const char *name, struct referral *r) {
        json_object *root = load(name);
        struct errbuf e = { "" };

        if (fhir_parse_referral(root, r, &e) != 0)
                fail_msg("%s: %s", name, e.msg);
        assert_string_equal(e.msg, "");
        json_object_put(root); /* the referral owns copies, not references */
}

static void test_referral_booked(void **state) {
        static const struct referral_want want = {
                .ubrn = "000000200001",
                .version = 7,
                .nhs_number = "9990000042",
                .priority = "URGENT",
                .state = "BOOKED",
                .specialty = "DERMATOLOGY",
                .specialty_display = "Dermatology",
                .service_id = "20003",
                .service_name = "Eastfield Dermatology Clinic",
                .pathway_start = "2024-04-09T15:20:05.000Z",
                .clinical_info_first_submitted = "2024-04-10T07:58:31.412Z",
                .appointment_start = "2024-05-02T14:15:00.000Z",
                .appointment_end = "2024-05-02T14:35:00.000Z",
                .commissioning_org = "Z99C1",
                .request_id = "r.10e3a48f-068d-44fe-854c-edc04315e716",
                .status = "active",
                .intent = "plan",
                .appointment_reference = "Appointment/55501",
                .appointment_status = "booked",
                .appointment_created = "2024-04-12T16:02:11.004Z",
                .appointment_slot = "Slot/20003077",
                .appointment_clinician = "100000000005",
        };
        static const struct attachment want_att[] = {
                { "51001", "Binary/a0f6c99f-48f9-4121-8acc-43ddac662920", "a0f6c99f-48f9-4121-8acc-43ddac662920",
                  "gp-letter.pdf", "application/pdf", "2024-04-11T08:01:00.000Z", 48213, "AVAILABLE",
                  AVAILABILITY_AVAILABLE, "100000000001", "Z99001", "REFERRER", "GP referral letter", NULL, 0, false },
                { "51002", "Binary/69619e44-e67f-4671-a5ca-9991b1b4ba12", "69619e44-e67f-4671-a5ca-9991b1b4ba12",
                  "lesion-photo.jpg", "image/jpeg", "2024-04-12", 1048576, "PENDING",
                  AVAILABILITY_PENDING, "100000000002", "Z99002", "PROVIDER", "Photograph of lesion", NULL, 0, false },
                { "51003", "Binary/df453ea1-a4ec-46e6-b844-524c6f0582b0", "df453ea1-a4ec-46e6-b844-524c6f0582b0",
                  "history.doc", "application/msword", "2024-04-13T08:03:00.000Z", 20480, "THREATS_FOUND",
                  AVAILABILITY_NEVER, "100000000001", "Z99001", "REFERRER", "Past history", NULL, 0, false },
                { "51004", "Binary/6a6a5429-d475-44e0-91ba-e26ed371ea4e", "6a6a5429-d475-44e0-91ba-e26ed371ea4e",
                  "scans.zip", "application/zip", "2024-04-14", 999999, "THREATS FOUND",
                  AVAILABILITY_NEVER, "100000000003", "Z99003", "REFERRER", "Scans archive", NULL, 0, false },
                { "51005", "Binary/6b1a6e3c-6d8b-48f2-b648-1c99da53866a", "6b1a6e3c-6d8b-48f2-b648-1c99da53866a",
                  "notes.txt", "text/plain", "2024-04-15T08:05:00.000Z", 0, "VALIDATION_FAILED",
                  AVAILABILITY_NEVER, "100000000001", "Z99001", "REFERRER", "Typed notes", NULL, 0, false },
                { "51006", "Binary/fbf08c66-6ae7-463c-8b35-e4d32b209bd8", "fbf08c66-6ae7-463c-8b35-e4d32b209bd8",
                  "triage-note.pdf", "application/pdf", "2024-04-16", 7331, "QUARANTINED_FOR_REVIEW",
                  AVAILABILITY_UNKNOWN, "100000000004", "Z99004", "PROVIDER", "Triage note", NULL, 0, false },
                /* not in supportingInfo, no status, no size */
                { "51007", "Binary/d695fd2f-8c53-40e8-ae3a-4b8f35a62ad7", "d695fd2f-8c53-40e8-ae3a-4b8f35a62ad7",
                  "ecg.png", "image/png", "2024-04-17T08:07:00.000Z", -1, NULL,
                  AVAILABILITY_UNKNOWN, "100000000001", "Z99001", "REFERRER", "ECG trace", NULL, 0, false },
        };
        static const char *const want_related[] = { "000000200005", "000000200009" };
        struct referral r;
        (void) state;

        load_referral(FIXTURES "referral-booked.json", &r);
        assert_referral(&r, &want);
        assert_int_equal(r.n_attachments, ELEMENTSOF(want_att));
        for (size_t i = 0; i < r.n_attachments; i++) {
                const struct attachment *a = &r.attachments[i], *w = &want_att[i];

                assert_str(a->id, w->id);
                assert_str(a->url, w->url);
                assert_str(a->binary_id, w->binary_id);
                assert_str(a->title, w->title);
                assert_str(a->content_type, w->content_type);
                assert_str(a->creation, w->creation);
                assert_int_equal(a->declared_size, w->declared_size);
                assert_str(a->availability_code, w->availability_code);
                assert_int_equal(a->availability, w->availability);
                assert_str(a->attached_by_user, w->attached_by_user);
                assert_str(a->attached_by_org, w->attached_by_org);
                assert_str(a->doc_type, w->doc_type);
                assert_str(a->description, w->description);
        }
        assert_int_equal(r.n_related, ELEMENTSOF(want_related));
        for (size_t i = 0; i < ELEMENTSOF(want_related); i++)
                assert_string_equal(r.related[i], want_related[i]);
        referral_free(&r);
        assert_null(r.attachments);
        referral_free(&r); /* twice is harmless */
        referral_free(NULL);
}

static void test_referral_minimal(void **state) {
        static const struct referral_want want = { .ubrn = "000000200002", .version = -1 };
        struct referral r;
        (void) state;

        load_referral(FIXTURES "referral-minimal.json", &r);
        assert_referral(&r, &want);
        assert_int_equal(r.n_attachments, 0);
        assert_null(r.attachments);
        assert_int_equal(r.n_related, 0);
        assert_null(r.related);
        referral_free(&r);
}

/* Not booked: no appointment names a service, the shortlist of one does. */
static void test_referral_unbooked(void **state) {
        static const struct referral_want want = {
                .ubrn = "000000200004",
                .version = 3,
                .nhs_number = "9990000107",
                .priority = "URGENT",
                .state = "NOT_BOOKED",
                .service_id = "20417",
                .service_name = "Northgate Chest Clinic",
                .status = "active",
                .intent = "plan",
        };
        struct referral r;
        (void) state;

        load_referral(FIXTURES "referral-unbooked.json", &r);
        assert_referral(&r, &want);
        assert_int_equal(r.n_attachments, 1);
        referral_free(&r);
}

/* Which service a referral names: its appointment's (booked, deferred, sent for
 * triage), else the one service of its shortlist; a shortlist of several names
 * none, and only the List the shortlist extension points at counts. */
static void test_referral_service(void **state) {
#define RR(x) "{\"resourceType\":\"ReferralRequest\",\"id\":\"000000500004\"" x "}"
#define SHORTLIST_EXT(ref) "{\"url\":\"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-ReferralShortlist-1\"," \
                           "\"valueReference\":{\"reference\":\"" ref "\"}}"
#define APPT_EXT "{\"url\":\"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-Appointment-1\"," \
                 "\"valueReference\":{\"reference\":\"#a\"}}"
#define SERVICE(id, name) "{\"item\":{\"identifier\":{\"system\":\"http://fhir.nhs.net/Id/ers-service\",\"value\":\"" id "\"}," \
                          "\"display\":\"" name "\"}}"
#define LIST(id, entries) "{\"resourceType\":\"List\",\"id\":\"" id "\",\"entry\":[" entries "]}"
#define APPT "{\"resourceType\":\"Appointment\",\"id\":\"a\",\"participant\":[{\"actor\":{\"identifier\":" \
             "{\"system\":\"http://fhir.nhs.net/Id/ers-service\",\"value\":\"777\"},\"display\":\"Booked\"}}]}"
        static const struct {
                const char *name, *json, *service_id, *service_name;
                unsigned nul_fields;
        } cases[] = {
                { "shortlist of one", RR(",\"extension\":[" SHORTLIST_EXT("#s") "],\"contained\":[" LIST("s", SERVICE("11", "One")) "]"),
                  "11", "One", 0 },
                { "shortlist of two", RR(",\"extension\":[" SHORTLIST_EXT("#s") "],\"contained\":[" LIST("s", SERVICE("11", "One") "," SERVICE("12", "Two")) "]"),
                  NULL, NULL, 0 },
                { "one service listed twice", RR(",\"extension\":[" SHORTLIST_EXT("#s") "],\"contained\":[" LIST("s", SERVICE("11", "One") "," SERVICE("11", "Again")) "]"),
                  "11", "One", 0 },
                { "entries without a service identifier",
                  RR(",\"extension\":[" SHORTLIST_EXT("#s") "],\"contained\":[" LIST("s", "{\"item\":{\"display\":\"x\"}},7,null,"
                     "{\"item\":{\"identifier\":{\"system\":\"other\",\"value\":\"9\"}}}," SERVICE("13", "Three")) "]"),
                  "13", "Three", 0 },
                { "empty shortlist", RR(",\"extension\":[" SHORTLIST_EXT("#s") "],\"contained\":[" LIST("s", "") "]"), NULL, NULL, 0 },
                { "shortlist extension pointing at nothing",
                  RR(",\"extension\":[" SHORTLIST_EXT("#gone") "],\"contained\":[" LIST("s", SERVICE("11", "One")) "]"), NULL, NULL, 0 },
                { "a List the extension does not point at", RR(",\"contained\":[" LIST("shortlist", SERVICE("11", "One")) "]"),
                  NULL, NULL, 0 },
                { "shortlist pointing at another type",
                  RR(",\"extension\":[" SHORTLIST_EXT("#s") "],\"contained\":[{\"resourceType\":\"Parameters\",\"id\":\"s\",\"entry\":[" SERVICE("11", "One") "]}]"),
                  NULL, NULL, 0 },
                { "booked: the appointment's service, whatever the shortlist",
                  RR(",\"extension\":[" SHORTLIST_EXT("#s") "," APPT_EXT "],\"contained\":[" LIST("s", SERVICE("11", "One")) "," APPT "]"),
                  "777", "Booked", 0 },
                { "a service name holding a NUL",
                  RR(",\"extension\":[" SHORTLIST_EXT("#s") "],\"contained\":[" LIST("s", SERVICE("11", "O\\u0000ne")) "]"),
                  "11", "O\xef\xbf\xbdne", 1 },
                { "a service without a name", RR(",\"extension\":[" SHORTLIST_EXT("#s") "],\"contained\":[" LIST("s",
                  "{\"item\":{\"identifier\":{\"system\":\"http://fhir.nhs.net/Id/ers-service\",\"value\":\"14\"}}}") "]"),
                  "14", NULL, 0 },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_object *root = parse(cases[i].json);
                struct errbuf e = { "" };
                struct referral r;

                if (fhir_parse_referral(root, &r, &e) != 0)
                        fail_msg("%s: %s", cases[i].name, e.msg);
                if (!((r.service_id == NULL && cases[i].service_id == NULL) ||
                      (r.service_id && cases[i].service_id && strcmp(r.service_id, cases[i].service_id) == 0)))
                        fail_msg("%s: service_id %s", cases[i].name, r.service_id ? r.service_id : "NULL");
                assert_str(r.service_name, cases[i].service_name);
                assert_int_equal(r.text_nul_fields, cases[i].nul_fields);
                referral_free(&r);
                json_object_put(root);
        }
#undef RR
#undef SHORTLIST_EXT
#undef APPT_EXT
#undef SERVICE
#undef LIST
#undef APPT
}

static void test_referral_unknown_codes(void **state) {
        static const struct referral_want want = {
                .ubrn = "000000200003",
                .version = 12, /* sent as a JSON integer */
                .nhs_number = "9990000050",
                .priority = "WITHIN_THE_HOUR",
                .state = "AWAITING_TELEPORTATION",
                .specialty = "CARDIOLOGY",
                .specialty_display = "Cardiology",
                .pathway_start = "2024-01-22T11:00:00+00:00", /* valueDateTime, on another host */
                .clinical_info_first_submitted = "2024-01-22T11:04:10.500Z",
                .commissioning_org = "Z99C2",
                .request_id = "r.ccb66ff4-d7c5-413f-9ae7-6033c2f60c47",
                .status = "active",
                .intent = "plan",
        };
        struct referral r;
        (void) state;

        load_referral(FIXTURES "referral-unknown-codes.json", &r);
        assert_referral(&r, &want);
        assert_int_equal(r.n_attachments, 0);
        assert_int_equal(r.n_related, 0);
        referral_free(&r);
}

static void test_referral_state_reason_utf8(void **state) {
        static const struct referral_want want = {
                .ubrn = "000000200004",
                .version = 3,
                .nhs_number = "9990000069",
                .priority = "ROUTINE",
                .state = "REJECTED",
                .state_reason = "CLINICALLY_INAPPROPRIATE",
                /* raw UTF-8 (2, 3 and 4 bytes) and \u escapes (é, a surrogate pair) */
                .state_comment = "Seen in the caf\xc3\xa9 clinic last week \xe2\x80\x94 please re-refer to "
                                 "Ophthalmology \xe2\x9c\x93 \xf0\x9f\x91\x81 \xc3\xa9\xf0\x9f\x91\x8d",
                .specialty = "OPHTHALMOLOGY",
                .specialty_display = "Ophthalmology",
                .pathway_start = "2024-03-18T09:00:00.000Z",
                .status = "cancelled",
                .intent = "plan",
                .state_reason_system = "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralReason-1",
                .state_reason_display = "Clinically inappropriate",
        };
        struct referral r;
        (void) state;

        load_referral(FIXTURES "referral-rejected.json", &r);
        assert_referral(&r, &want);
        referral_free(&r);
}

/* Issue 15: every element the walk keeps (docs/schema.md, "Every element of a
 * referral"), from a referral in the published examples' shape that has each:
 * additional requirements in both shapes e-RS uses, an appointment deferred to
 * the provider with its reason and comment, the search criteria, the advice
 * request it was converted from, an attachment attached on someone's behalf. */
static void test_referral_every_element(void **state) {
        static const struct referral_want want = {
                .ubrn = "000000200011",
                .version = 4,
                .nhs_number = "9990000123",
                .priority = "TWO_WEEK_WAIT",
                .state = "DEFERRED_TO_PROVIDER",
                .state_reason = "NO_SLOTS_AT_SERVICE",
                .state_comment = "Clinic full until March; provider to book.",
                .specialty = "GASTROENTEROLOGY",
                .specialty_display = "Gastroenterology",
                .service_id = "20511",
                .service_name = "Westbrook Lower GI Clinic",
                .pathway_start = "2025-02-01T08:00:00.000Z",
                .clinical_info_first_submitted = "2025-02-03T09:12:44.120Z",
                .commissioning_org = "Z99K7",
                .request_id = "r.5d0b2c44-8e1f-4a37-b0c2-93de61f0a7b5",
                .status = "active",
                .intent = "plan",
                .clinical_info_last_updated = "2025-02-05T16:40:02.981Z",
                .state_reason_system = "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReviewReason-1",
                .state_reason_display = "No slots at service",
                .appointment_reference = "Appointment/66120",
                .appointment_status = "proposed",
                .appointment_created = "2025-02-05T16:41:10.500Z",
                .appointment_reason = "NO_SLOTS_AT_SERVICE",
                .appointment_reason_system = "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReviewReason-1",
                .appointment_reason_display = "No slots at service",
                .appointment_comment = "Deferred: please book within two weeks.",
                .appointment_slot = "Slot/20511090",
                .appointment_clinician = "100000000031",
                .clinic_type = "LOWER_GI",
                .named_clinician = "100000000031",
                .advice_request = "CommunicationRequest/000000200010",
        };
#define REQUIREMENT_SYSTEM "https://fhir.nhs.uk/STU3/CodeSystem/eRS-AdditionalRequirementType-1"
        static const struct requirement want_req[] = {
                { "INTERPRETER", "Interpreter", REQUIREMENT_SYSTEM, "Needs a Tigrinya interpreter for every visit." },
                { "TRANSPORT", "Transport", REQUIREMENT_SYSTEM, NULL },
                { "ADVOCACY", "Advocacy", REQUIREMENT_SYSTEM, NULL }, /* the specification's own shape */
        };
        struct referral r;
        (void) state;

        load_referral(FIXTURES "referral-every-element.json", &r);
        assert_referral(&r, &want);
        assert_int_equal(r.n_requirements, ELEMENTSOF(want_req));
        for (size_t i = 0; i < r.n_requirements; i++) {
                assert_str(r.requirements[i].code, want_req[i].code);
                assert_str(r.requirements[i].display, want_req[i].display);
                assert_str(r.requirements[i].system, want_req[i].system);
                assert_str(r.requirements[i].comments, want_req[i].comments);
        }
        assert_int_equal(r.n_attachments, 1);
        assert_str(r.attachments[0].doc_type, "ADVICE_REQUEST");
        assert_str(r.attachments[0].description, "Blood results");
        assert_str(r.attachments[0].attached_on_behalf_of, "100000000033");
        assert_int_equal(r.n_related, 1); /* the CommunicationRequest is no related referral */
        assert_string_equal(r.related[0], "000000200012");
        assert_int_equal(r.text_nul_fields, 0);
        assert_null(r.answer.bytes); /* the parser reads a tree: the bytes are the client's (ers.h) */
        referral_free(&r);
        assert_null(r.requirements);
#undef REQUIREMENT_SYSTEM
}

/* Additional requirements as they may come: every one is kept, in order, an
 * unknown code verbatim, one without a coding too (there is one; the answer
 * kept says what); a NUL in their words is U+FFFD; what is not one is not. */
static void test_referral_requirements(void **state) {
#define RQ(x) "{\"resourceType\":\"ReferralRequest\",\"id\":\"000000500011\",\"extension\":[" x "]}"
#define NESTED(code, more) "{\"url\":\"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-AdditionalRequirement-1\"," \
                           "\"extension\":[{\"url\":\"type\",\"valueCoding\":{\"code\":\"" code "\"}}" more "]}"
#define FLAT(code) "{\"url\":\"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-PatientAdditionalRequirement-1\"," \
                   "\"valueCoding\":{\"code\":\"" code "\",\"display\":\"D\"}}"
        static const struct {
                const char *name, *json;
                size_t n;
                const char *first_code, *last_code, *first_comments;
                unsigned nul_fields;
        } cases[] = {
                { "none", RQ(""), 0, NULL, NULL, NULL, 0 },
                { "one nested", RQ(NESTED("INTERPRETER", "")), 1, "INTERPRETER", "INTERPRETER", NULL, 0 },
                { "both shapes, in order", RQ(NESTED("TRANSPORT", "") "," FLAT("ADVOCACY")), 2, "TRANSPORT", "ADVOCACY",
                  NULL, 0 },
                { "an unknown code, kept verbatim", RQ(NESTED("SIGN LANGUAGE (BSL)", "")), 1, "SIGN LANGUAGE (BSL)",
                  "SIGN LANGUAGE (BSL)", NULL, 0 },
                { "more than the three the specification allows", RQ(NESTED("A", "") "," NESTED("B", "") "," NESTED("C", "")
                  "," NESTED("D", "")), 4, "A", "D", NULL, 0 },
                { "no coding at all: still one",
                  RQ("{\"url\":\"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-AdditionalRequirement-1\"}"), 1,
                  NULL, NULL, NULL, 0 },
                { "words with a NUL", RQ(NESTED("TRANSPORT", ",{\"url\":\"comments\",\"valueString\":\"wheel\\u0000chair\"}")),
                  1, "TRANSPORT", "TRANSPORT", "wheel\xef\xbf\xbd" "chair", 1 },
                { "a code holding a NUL is no code", RQ(NESTED("INTER\\u0000PRETER", "")), 1, NULL, NULL, NULL, 0 },
                { "other extensions and junk skipped",
                  RQ("7,null,\"x\",{\"url\":\"https://x/Extension-eRS-AdditionalRequirement-2\"}," NESTED("TRANSPORT", "")),
                  1, "TRANSPORT", "TRANSPORT", NULL, 0 },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_object *root = parse(cases[i].json);
                struct errbuf e = { "" };
                struct referral r;

                if (fhir_parse_referral(root, &r, &e) != 0)
                        fail_msg("%s: %s", cases[i].name, e.msg);
                if (r.n_requirements != cases[i].n)
                        fail_msg("%s: %zu requirements, not %zu", cases[i].name, r.n_requirements, cases[i].n);
                if (cases[i].n > 0) {
                        assert_str(r.requirements[0].code, cases[i].first_code);
                        assert_str(r.requirements[cases[i].n - 1].code, cases[i].last_code);
                        assert_str(r.requirements[0].comments, cases[i].first_comments);
                } else
                        assert_null(r.requirements);
                assert_int_equal(r.text_nul_fields, cases[i].nul_fields);
                referral_free(&r);
                json_object_put(root);
        }
#undef RQ
#undef NESTED
#undef FLAT
}

/* Shapes the API does not send but that must be read liberally. */
static void test_referral_liberal(void **state) {
#define RR(x) "{\"resourceType\":\"ReferralRequest\",\"id\":\"000000500001\"" x "}"
#define DOC(id, att) "{\"resourceType\":\"DocumentReference\",\"id\":\"" id "\",\"content\":[{\"attachment\":" att "}]}"
        static const struct {
                const char *name, *json;
                int64_t version;
                size_t n_attachments;
                const char *binary_id; /* of the first attachment */
                int64_t declared_size; /* of the first attachment */
                size_t n_related;
                const char *nhs_number, *appointment_start;
        } cases[] = {
                { "versionId as an integer", RR(",\"meta\":{\"versionId\":9}"), 9, 0, NULL, 0, 0, NULL, NULL },
                { "versionId 0", RR(",\"meta\":{\"versionId\":\"0\"}"), 0, 0, NULL, 0, 0, NULL, NULL },
                { "meta is a string", RR(",\"meta\":\"v1\""), -1, 0, NULL, 0, 0, NULL, NULL },
                { "contained is a string", RR(",\"contained\":\"x\""), -1, 0, NULL, 0, 0, NULL, NULL },
                { "extension is an object", RR(",\"extension\":{\"url\":\"x\"}"), -1, 0, NULL, 0, 0, NULL, NULL },
                { "subject is a string", RR(",\"subject\":\"9990000093\""), -1, 0, NULL, 0, 0, NULL, NULL },
                { "subject.identifier is an array",
                  RR(",\"subject\":{\"identifier\":[{\"value\":\"9990000093\"}]}"), -1, 0, NULL, 0, 0, NULL, NULL },
                { "self reference is not related",
                  RR(",\"supportingInfo\":[{\"reference\":\"ReferralRequest/000000500001\"},{\"reference\":\"ReferralRequest/000000500002/_history/1\"}]"),
                  -1, 0, NULL, 0, 1, NULL, NULL },
                { "supportingInfo with other references and junk",
                  RR(",\"supportingInfo\":[{\"reference\":\"#DocumentReference-1\"},{\"reference\":\"Patient/1\"},{},7,null,{\"reference\":3}]"),
                  -1, 0, NULL, 0, 0, NULL, NULL },
                { "document without content, with content not an array, with an empty attachment list",
                  RR(",\"contained\":[{\"resourceType\":\"DocumentReference\"},{\"resourceType\":\"DocumentReference\",\"content\":{}},"
                     "{\"resourceType\":\"DocumentReference\",\"content\":[]},{\"resourceType\":\"DocumentReference\",\"content\":[{\"attachment\":\"x\"}]}]"),
                  -1, 0, NULL, 0, 0, NULL, NULL },
                { "attachment with nothing but its id", RR(",\"contained\":[" DOC("d", "{\"id\":\"1\"}") "]"), -1, 1, NULL, -1, 0, NULL, NULL },
                { "absolute Binary url", RR(",\"contained\":[" DOC("d", "{\"id\":\"1\",\"url\":\"https://x.example/FHIR/R4/Binary/abc-1.2\",\"size\":5}") "]"),
                  -1, 1, "abc-1.2", 5, 0, NULL, NULL },
                { "versioned Binary url", RR(",\"contained\":[" DOC("d", "{\"id\":\"1\",\"url\":\"Binary/abc/_history/2\"}") "]"), -1, 1, "abc", -1, 0, NULL, NULL },
                { "Binary url escaping its path", RR(",\"contained\":[" DOC("d", "{\"id\":\"1\",\"url\":\"Binary/../../admin\"}") "]"), -1, 1, NULL, -1, 0, NULL, NULL },
                { "Binary url with a query", RR(",\"contained\":[" DOC("d", "{\"id\":\"1\",\"url\":\"Binary/abc?x=1\"}") "]"), -1, 1, NULL, -1, 0, NULL, NULL },
                { "Binary url without an id", RR(",\"contained\":[" DOC("d", "{\"id\":\"1\",\"url\":\"Binary/\"}") "]"), -1, 1, NULL, -1, 0, NULL, NULL },
                { "url of another type", RR(",\"contained\":[" DOC("d", "{\"id\":\"1\",\"url\":\"Document/abc\"}") "]"), -1, 1, NULL, -1, 0, NULL, NULL },
                { "negative size", RR(",\"contained\":[" DOC("d", "{\"id\":\"1\",\"size\":-4}") "]"), -1, 1, NULL, -1, 0, NULL, NULL },
                { "size as a string", RR(",\"contained\":[" DOC("d", "{\"id\":\"1\",\"size\":\"4\"}") "]"), -1, 1, NULL, -1, 0, NULL, NULL },
                { "appointment reference to nothing",
                  RR(",\"extension\":[{\"url\":\"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-Appointment-1\",\"valueReference\":{\"reference\":\"#gone\"}}],"
                     "\"contained\":[{\"resourceType\":\"Appointment\",\"id\":\"appointment\",\"start\":\"2024-01-01\"}]"),
                  -1, 0, NULL, 0, 0, NULL, NULL },
                { "appointment without participants",
                  RR(",\"extension\":[{\"url\":\"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-Appointment-1\",\"valueReference\":{\"reference\":\"#a\"}}],"
                     "\"contained\":[{\"resourceType\":\"Appointment\",\"id\":\"a\",\"start\":\"2024-01-01T09:00:00Z\",\"participant\":\"x\"}]"),
                  -1, 0, NULL, 0, 0, NULL, "2024-01-01T09:00:00Z" },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_object *root = parse(cases[i].json);
                struct errbuf e = { "" };
                struct referral r;

                if (fhir_parse_referral(root, &r, &e) != 0)
                        fail_msg("%s: %s", cases[i].name, e.msg);
                assert_int_equal(r.version, cases[i].version);
                assert_int_equal(r.n_attachments, cases[i].n_attachments);
                if (r.n_attachments) {
                        assert_str(r.attachments[0].binary_id, cases[i].binary_id);
                        assert_int_equal(r.attachments[0].declared_size, cases[i].declared_size);
                        assert_int_equal(r.attachments[0].availability, AVAILABILITY_UNKNOWN);
                }
                assert_int_equal(r.n_related, cases[i].n_related);
                assert_str(r.nhs_number, cases[i].nhs_number);
                assert_str(r.appointment_start, cases[i].appointment_start);
                assert_null(r.service_id);
                /* each DocumentReference without content[0].attachment counted, for the reader's warning */
                assert_int_equal(r.documents_without_content,
                                 strstr(cases[i].name, "document without content") == cases[i].name ? 4 : 0);
                referral_free(&r);
                json_object_put(root);
        }
#undef RR
#undef DOC
}

/* The one rule for a NUL in text: free text keeps every byte, each NUL
 * becoming U+FFFD (PostgreSQL text cannot hold a NUL, and a C string would
 * cut the rest off); a code holding a NUL stays unreadable. */
/* A repeated attachment id: each is a document of its own, numbered in the
 * order listed (docs/schema.md, ers_document.occurrence). */
static void test_attachment_occurrence(void **state) {
        struct attachment atts[] = {
                { .id = "att-1" }, { .id = "att-2" }, { .id = "att-1" }, { .id = NULL },
                { .id = "CRI-v1" }, { .id = "att-1" }, { .id = NULL },
        };
        struct referral r = { .attachments = atts, .n_attachments = sizeof atts / sizeof atts[0] };
        const unsigned want[] = { 0, 0, 1, 0, 0, 2, 0 };

        (void) state;
        for (size_t i = 0; i < r.n_attachments; i++)
                assert_int_equal(attachment_occurrence(&r, i), want[i]);
        assert_int_equal(attachment_occurrence(&r, r.n_attachments), 0); /* past the end */
}

static void test_referral_text_with_nul(void **state) {
        static const char json[] =
                "{\"resourceType\":\"ReferralRequest\",\"id\":\"000000500003\","
                "\"specialty\":{\"coding\":[{\"code\":\"CARD\\u0000X\",\"display\":\"Cardio\\u0000logy\"}]},"
                "\"extension\":[{\"url\":\"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-ReferralState-1\","
                "\"extension\":[{\"url\":\"state\",\"valueCoding\":{\"code\":\"BOOKED\"}},"
                "{\"url\":\"comment\",\"valueString\":\"\\u0000a \\\"b\\\"\\u0000\\u0000\\u0001\\t\\ud83e\\udec0\"}]}],"
                "\"contained\":[{\"resourceType\":\"DocumentReference\",\"id\":\"d\",\"content\":[{\"attachment\":"
                "{\"id\":\"1\",\"title\":\"scan\\u0000.pdf\"}}]}]}";
        json_object *root = parse(json);
        struct errbuf e = { "" };
        struct referral r;
        (void) state;

        if (fhir_parse_referral(root, &r, &e) != 0)
                fail_msg("%s", e.msg);
        assert_string_equal(r.state_comment, "\xef\xbf\xbd" "a \"b\"\xef\xbf\xbd\xef\xbf\xbd\x01\t\xf0\x9f\xab\x80");
        assert_string_equal(r.specialty_display, "Cardio\xef\xbf\xbdlogy");
        assert_null(r.specialty); /* a code with a NUL is not a code */
        assert_int_equal(r.n_attachments, 1);
        assert_string_equal(r.attachments[0].title, "scan\xef\xbf\xbd.pdf");
        assert_int_equal(r.text_nul_fields, 3);
        referral_free(&r);
        json_object_put(root);
}

static void test_referral_errors(void **state) {
#define SUBJECT ",\"subject\":{\"identifier\":{\"system\":\"http://fhir.nhs.net/Id/nhs-number\",\"value\":\"9990000093\"}}"
#define RR(id, x) "{\"resourceType\":\"ReferralRequest\",\"id\":" id SUBJECT x "}"
#define VERSION(v) RR("\"000000600001\"", ",\"meta\":{\"versionId\":" v "}")
        static const struct {
                const char *json, *msg;
        } cases[] = {
                { "{\"resourceType\":\"List\"" SUBJECT "}", "expected a ReferralRequest, got List" },
                { "{\"resourceType\":\"9990000093\"" SUBJECT "}",
                  "expected a ReferralRequest, got an unrecognisable resourceType" },
                { "{\"id\":\"000000600001\"" SUBJECT "}", "expected a ReferralRequest, got no resourceType" },
                { "[]", "expected a ReferralRequest, got a JSON array" },
                { RR("\"12345\"", ""), "id is not a 12-digit UBRN" },
                { RR("\"9990000093\"", ""), "id is not a 12-digit UBRN" },
                { RR("\"0000006000011\"", ""), "id is not a 12-digit UBRN" },
                { RR("\"00000060000a\"", ""), "id is not a 12-digit UBRN" },
                { RR("\"000000600001\\u0000\"", ""), "id is not a 12-digit UBRN" },
                { RR("600001", ""), "id is not a 12-digit UBRN" },
                { RR("null", ""), "id is not a 12-digit UBRN" },
                { "{\"resourceType\":\"ReferralRequest\"" SUBJECT "}", "id is not a 12-digit UBRN" },
                { VERSION("\"5a\""), "meta.versionId is not a non-negative integer" },
                { VERSION("\"\""), "meta.versionId is not a non-negative integer" },
                { VERSION("\" 5\""), "meta.versionId is not a non-negative integer" },
                { VERSION("\"+5\""), "meta.versionId is not a non-negative integer" },
                { VERSION("\"-5\""), "meta.versionId is not a non-negative integer" },
                { VERSION("-5"), "meta.versionId is not a non-negative integer" },
                { VERSION("5.5"), "meta.versionId is not a non-negative integer" },
                { VERSION("true"), "meta.versionId is not a non-negative integer" },
                { VERSION("[5]"), "meta.versionId is not a non-negative integer" },
                { VERSION("\"99999999999999999999\""), "meta.versionId is not a non-negative integer" },
                { VERSION("\"9990000093\\n\""), "meta.versionId is not a non-negative integer" },
                { RR("\"000000600001\"", ",\"supportingInfo\":[{\"reference\":\"#DocumentReference-1\"},{\"reference\":\"ReferralRequest/123\"}]"),
                  "supportingInfo[1]: reference is not ReferralRequest/<12-digit UBRN>" },
                { RR("\"000000600001\"", ",\"supportingInfo\":[{\"reference\":\"ReferralRequest/9990000093\"}]"),
                  "supportingInfo[0]: reference is not ReferralRequest/<12-digit UBRN>" },
                { RR("\"000000600001\"", ",\"supportingInfo\":[{\"reference\":\"ReferralRequest/000000600002/x\"}]"),
                  "supportingInfo[0]: reference is not ReferralRequest/<12-digit UBRN>" },
                /* an attachment without a readable id: nothing can identify the document */
                { RR("\"000000600001\"", ",\"contained\":[{\"resourceType\":\"DocumentReference\",\"content\":[{\"attachment\":{\"url\":\"Binary/x\"}}]}]"),
                  "contained[0] (DocumentReference): content[0].attachment.id is missing or not a string" },
                { RR("\"000000600001\"", ",\"contained\":[{\"resourceType\":\"Parameters\"},{\"resourceType\":\"DocumentReference\",\"content\":[{\"attachment\":{\"id\":\"1\"}}]},"
                                         "{\"resourceType\":\"DocumentReference\",\"content\":[{\"attachment\":{}}]}]"),
                  "contained[2] (DocumentReference): content[0].attachment.id is missing or not a string" },
                { RR("\"000000600001\"", ",\"contained\":[{\"resourceType\":\"DocumentReference\",\"content\":[{\"attachment\":{\"id\":80000}}]}]"),
                  "contained[0] (DocumentReference): content[0].attachment.id is missing or not a string" },
                { RR("\"000000600001\"", ",\"contained\":[{\"resourceType\":\"DocumentReference\",\"content\":[{\"attachment\":{\"id\":null}}]}]"),
                  "contained[0] (DocumentReference): content[0].attachment.id is missing or not a string" },
                { RR("\"000000600001\"", ",\"contained\":[{\"resourceType\":\"DocumentReference\",\"content\":[{\"attachment\":{\"id\":\"8\\u00000\"}}]}]"),
                  "contained[0] (DocumentReference): content[0].attachment.id is missing or not a string" },
                /* the failure comes after attachments and the appointment were copied: all freed */
                { RR("\"000000600001\"", ",\"contained\":[{\"resourceType\":\"DocumentReference\",\"content\":[{\"attachment\":{\"id\":\"1\",\"url\":\"Binary/x\"}}]},"
                                         "{\"resourceType\":\"Appointment\",\"id\":\"a\",\"start\":\"s\",\"participant\":[{\"actor\":{\"identifier\":{\"system\":\"http://fhir.nhs.net/Id/ers-service\",\"value\":\"1\"},\"display\":\"d\"}}]}],"
                                         "\"extension\":[{\"url\":\"https://fhir.nhs.uk/STU3/StructureDefinition/Extension-eRS-Appointment-1\",\"valueReference\":{\"reference\":\"#a\"}}],"
                                         "\"supportingInfo\":[{\"reference\":\"ReferralRequest/000000600002\"},{\"reference\":\"ReferralRequest/1\"}]"),
                  "supportingInfo[1]: reference is not ReferralRequest/<12-digit UBRN>" },
        };
        (void) state;

        for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                json_object *root = parse(cases[i].json);
                struct errbuf e = { "" };

                assert_int_equal(run_parser(REFERRAL, root, &e, NULL), -EBADMSG);
                if (strcmp(e.msg, cases[i].msg) != 0)
                        fail_msg("case %zu: got \"%s\", want \"%s\"", i, e.msg, cases[i].msg);
                json_object_put(root);
        }
#undef SUBJECT
#undef RR
#undef VERSION
}

/* A referral fixture with a non-integer versionId: the line says which
 * element, and holds none of the patient's identifiers. */
static void test_referral_error_fixture(void **state) {
        json_object *root = load(FIXTURES "referral-bad-version.json");
        struct errbuf e = { "" };
        struct referral r;
        (void) state;

        memset(&r, 0x5A, sizeof r);
        assert_int_equal(fhir_parse_referral(root, &r, &e), -EBADMSG);
        assert_string_equal(e.msg, "meta.versionId is not a non-negative integer");
        assert_null(strstr(e.msg, "9990000077"));
        assert_int_equal(r.version, (int64_t) 0x5A5A5A5A5A5A5A5AULL); /* untouched */
        json_object_put(root);
}

/* ---- OperationOutcome -------------------------------------------------- */

static void test_outcome_fixture(void **state) {
        json_object *root = load(FIXTURES "outcome-patient-error.json");
        struct errbuf e = { "" };
        struct outcome o;
        (void) state;

        assert_int_equal(fhir_parse_outcome(root, &o, &e), 0);
        assert_str(o.severity, "error");
        assert_str(o.code, "PATIENT_ERROR");
        /* as sent: quoting it is server_text()'s (daemon/server_text.h), at the line that quotes it */
        assert_str(o.diagnostics, "Clinical information cannot be generated for 000000200001:\n"
                                  "the patient record is not available");
        outcome_free(&o);
        assert_null(o.code);
        outcome_free(&o);
        outcome_free(NULL);
        json_object_put(root);
}

static void test_outcome_cases(void **state) {
        char long_text[1200], long_json[1400], want[300];
        struct errbuf e = { "" };
        struct outcome o;
        json_object *root;
        (void) state;

        /* codes as sent too: no rule of its own here (the one rule is server_text()'s) */
        root = parse("{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"error\\r\","
                     "\"details\":{\"coding\":[{\"code\":\"FORGED\\nLINE\"}]}}]}");
        assert_int_equal(fhir_parse_outcome(root, &o, &e), 0);
        assert_str(o.severity, "error\r");
        assert_str(o.code, "FORGED\nLINE");
        assert_null(o.diagnostics);
        outcome_free(&o);
        json_object_put(root);

        /* issue[0] without details or diagnostics */
        root = parse("{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"severity\":\"fatal\"}]}");
        assert_int_equal(fhir_parse_outcome(root, &o, &e), 0);
        assert_str(o.severity, "fatal");
        assert_null(o.code);
        assert_null(o.diagnostics);
        outcome_free(&o);
        json_object_put(root);

        /* long diagnostics are cut at 256 bytes, not inside a UTF-8 sequence:
         * "x" then 2-byte "é"s put byte 256 in the middle of one. */
        long_text[0] = 'x';
        for (size_t i = 0; i < 500; i++)
                memcpy(long_text + 1 + 2 * i, "\xc3\xa9", 2);
        long_text[1001] = '\0';
        snprintf(long_json, sizeof long_json,
                 "{\"resourceType\":\"OperationOutcome\",\"issue\":[{\"diagnostics\":\"%s\"}]}", long_text);
        memcpy(want, long_text, 255);
        want[255] = '\0';
        root = parse(long_json);
        assert_int_equal(fhir_parse_outcome(root, &o, &e), 0);
        assert_str(o.diagnostics, want);
        outcome_free(&o);
        json_object_put(root);

        /* errors */
        {
                static const struct {
                        const char *json, *msg;
                } cases[] = {
                        { "{\"resourceType\":\"ReferralRequest\"}", "expected an OperationOutcome, got ReferralRequest" },
                        { "{\"resourceType\":\"OperationOutcome\"}", "issue[0] is missing or not an object" },
                        { "{\"resourceType\":\"OperationOutcome\",\"issue\":[]}", "issue[0] is missing or not an object" },
                        { "{\"resourceType\":\"OperationOutcome\",\"issue\":{\"severity\":\"error\"}}", "issue[0] is missing or not an object" },
                        { "{\"resourceType\":\"OperationOutcome\",\"issue\":[\"error\"]}", "issue[0] is missing or not an object" },
                };

                for (size_t i = 0; i < ELEMENTSOF(cases); i++) {
                        root = parse(cases[i].json);
                        assert_int_equal(run_parser(OUTCOME, root, &e, NULL), -EBADMSG);
                        assert_string_equal(e.msg, cases[i].msg);
                        json_object_put(root);
                }
        }
}

/* ---- A008 request body -------------------------------------------------- */

static void test_worklist_request(void **state) {
        static const char want_plain[] =
                "{\"resourceType\":\"Parameters\","
                "\"meta\":{\"profile\":[\"https://fhir.nhs.uk/STU3/StructureDefinition/eRS-FetchWorklist-Parameters-1\"]},"
                "\"parameter\":[{\"name\":\"listType\",\"valueCodeableConcept\":{\"coding\":[{"
                "\"system\":\"https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralListSelector-1\","
                "\"code\":\"REFERRALS_FOR_REVIEW\"}]}}]}";
        static const char want_service[] =
                "{\"resourceType\":\"Parameters\","
                "\"meta\":{\"profile\":[\"https://fhir.nhs.uk/STU3/StructureDefinition/eRS-FetchWorklist-Parameters-1\"]},"
                "\"parameter\":[{\"name\":\"listType\",\"valueCodeableConcept\":{\"coding\":[{"
                "\"system\":\"https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralListSelector-1\","
                "\"code\":\"APPOINTMENT_SLOT_ISSUES\"}]}},"
                "{\"name\":\"service\",\"valueIdentifier\":{"
                "\"system\":\"http://fhir.nhs.net/Id/ers-service\",\"value\":\"20003\"}}]}";
        json_object *root;
        char *body;
        (void) state;

        body = fhir_worklist_request("REFERRALS_FOR_REVIEW", NULL);
        assert_non_null(body);
        assert_string_equal(body, want_plain);
        free(body);

        body = fhir_worklist_request("APPOINTMENT_SLOT_ISSUES", "20003");
        assert_non_null(body);
        assert_string_equal(body, want_service);
        free(body);

        /* values are escaped, never spliced */
        body = fhir_worklist_request("A\"B", "1\"},{\"x");
        assert_non_null(body);
        root = parse(body);
        assert_string_equal(json_object_get_string(
                                    json_object_object_get(json_object_array_get_idx(
                                            json_object_object_get(json_object_object_get(
                                                    json_object_array_get_idx(json_object_object_get(root, "parameter"), 0),
                                                    "valueCodeableConcept"), "coding"), 0), "code")),
                            "A\"B");
        assert_int_equal(json_object_array_length(json_object_object_get(root, "parameter")), 2);
        json_object_put(root);
        free(body);

        assert_null(fhir_worklist_request(NULL, "20003"));
}

/* ---- Robustness: every element of every fixture, retyped ---------------- */

#define N_REPLACEMENTS 11

/* A fresh value of the i-th kind that replaces an element. */
static json_object *replacement(size_t i) {
        switch (i) {
        case 0: return NULL; /* JSON null */
        case 1: return json_object_new_int(-1);
        case 2: return json_object_new_int64(INT64_MAX);
        case 3: return json_object_new_double(1.5);
        case 4: return json_object_new_boolean(1);
        case 5: return json_object_new_string("");
        case 6: return json_object_new_string("#appointment");
        case 7: return json_object_new_string_len("000000200001\0x", 14);
        case 8: return json_object_new_array();
        case 9: return json_object_new_object();
        default: {
                json_object *a = json_object_new_array();

                json_object_array_add(a, json_object_new_object());
                return a;
        }
        }
}

/* Runs every parser on root: none may crash, leak, touch its output on
 * failure or put patient data in its line. */
static void check_all_parsers(json_object *root) {
        struct errbuf e;

        run_parser(WORKLIST, root, &e, NULL);
        run_parser(REFERRAL, root, &e, NULL);
        run_parser(OUTCOME, root, &e, NULL);
}

/* Replaces each element below node (in the tree of root) in turn by each
 * replacement, checks the parsers, and puts the element back. */
static void mutate_below(json_object *root, json_object *node) {
        if (json_object_is_type(node, json_type_object)) {
                json_object_object_foreach(node, key, val) {
                        for (size_t i = 0; i < N_REPLACEMENTS; i++) {
                                json_object_get(val); /* keep it while replaced */
                                assert_int_equal(json_object_object_add(node, key, replacement(i)), 0);
                                check_all_parsers(root);
                                assert_int_equal(json_object_object_add(node, key, val), 0);
                        }
                        mutate_below(root, val);
                }
        } else if (json_object_is_type(node, json_type_array)) {
                for (size_t k = 0; k < json_object_array_length(node); k++) {
                        json_object *val = json_object_array_get_idx(node, k);

                        for (size_t i = 0; i < N_REPLACEMENTS; i++) {
                                json_object_get(val);
                                assert_int_equal(json_object_array_put_idx(node, k, replacement(i)), 0);
                                check_all_parsers(root);
                                assert_int_equal(json_object_array_put_idx(node, k, val), 0);
                        }
                        mutate_below(root, val);
                }
        }
}

static void test_mutations(void **state) {
        static const char *const files[] = {
                FIXTURES "worklist-review.json",    FIXTURES "worklist-empty.json",
                FIXTURES "worklist-bad-ubrn.json",  FIXTURES "referral-booked.json",
                FIXTURES "referral-minimal.json",   FIXTURES "referral-unknown-codes.json",
                FIXTURES "referral-rejected.json",  FIXTURES "referral-bad-version.json",
                FIXTURES "outcome-patient-error.json", FIXTURES "referral-every-element.json",
                FIXTURES "worklist-every-element.json",
        };
        (void) state;

        for (size_t i = 0; i < N_REPLACEMENTS; i++) {
                json_object *root = replacement(i);

                check_all_parsers(root);
                json_object_put(root);
        }
        for (size_t f = 0; f < ELEMENTSOF(files); f++) {
                json_object *root = load(files[f]);

                check_all_parsers(root);
                mutate_below(root, root);
                json_object_put(root);
        }
}

/* ---- Allocation failures ----------------------------------------------- */

/* Parses `fixture` with `kind`'s parser once with each of its allocations
 * failing in turn: each such run is -ENOMEM with "out of memory", leaves the
 * output untouched, and frees what it took (the ASan and valgrind runs say
 * so); then a run with nothing failing parses it.  Returns how many runs failed. */
static long walk_allocation_failures(enum kind kind, const char *fixture) {
        json_object *root = load(fixture);
        union {
                struct worklist w;
                struct referral r;
                struct outcome o;
        } out, poison;
        long n;
        int r;

        if (!failalloc_linked())
                fail_msg("test_fhir must be linked with ALLOC_WRAP (see the Makefile)");
        memset(&poison, 0xa5, sizeof poison);
        for (n = 0;; n++) {
                struct errbuf e = { "" };

                memcpy(&out, &poison, sizeof out);
                failalloc_arm(n);
                r = kind == WORKLIST ? worklist_of(root, &out.w, &e)
                  : kind == REFERRAL ? fhir_parse_referral(root, &out.r, &e)
                                     : fhir_parse_outcome(root, &out.o, &e);
                if (!failalloc_disarm()) {
                        assert_int_equal(r, 0);
                        break;
                }
                if (r != -ENOMEM)
                        fail_msg("%s, allocation %ld failing: got %d (%s), want -ENOMEM", fixture, n, r, e.msg);
                assert_true(strlen(e.msg) >= strlen("out of memory"));
                assert_string_equal(e.msg + strlen(e.msg) - strlen("out of memory"), "out of memory");
                assert_clean_message(e.msg);
                assert_memory_equal(&out, &poison, sizeof out);
                assert_true(n < 10000);
        }
        if (kind == WORKLIST)
                worklist_free(&out.w);
        else if (kind == REFERRAL)
                referral_free(&out.r);
        else
                outcome_free(&out.o);
        json_object_put(root);
        return n;
}

static void test_allocation_failures_worklist(void **state) {
        (void) state;
        assert_true(walk_allocation_failures(WORKLIST, FIXTURES "worklist-review.json") > 5);
        assert_true(walk_allocation_failures(WORKLIST, FIXTURES "worklist-bad-ubrn.json") > 2); /* with a skip */
        assert_true(walk_allocation_failures(WORKLIST, FIXTURES "worklist-every-element.json") > 10);
}

static void test_allocation_failures_referral(void **state) {
        (void) state;
        assert_true(walk_allocation_failures(REFERRAL, FIXTURES "referral-booked.json") > 10);
        assert_true(walk_allocation_failures(REFERRAL, FIXTURES "referral-unknown-codes.json") > 5);
        assert_true(walk_allocation_failures(REFERRAL, FIXTURES "referral-unbooked.json") > 5);
        assert_true(walk_allocation_failures(REFERRAL, FIXTURES "referral-every-element.json") > 20);
}

static void test_allocation_failures_outcome(void **state) {
        (void) state;
        assert_true(walk_allocation_failures(OUTCOME, FIXTURES "outcome-patient-error.json") > 1);
}

/* The A008 request body: NULL when an allocation fails, never a partial body. */
static void test_allocation_failures_worklist_request(void **state) {
        char *body;
        long n;

        (void) state;
        for (n = 0;; n++) {
                failalloc_arm(n);
                body = fhir_worklist_request("REFERRALS_FOR_REVIEW", "1234");
                if (!failalloc_disarm())
                        break;
                assert_null(body);
        }
        assert_non_null(body);
        assert_non_null(strstr(body, "REFERRALS_FOR_REVIEW"));
        free(body);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ubrn_valid),
                cmocka_unit_test(test_allocation_failures_worklist),
                cmocka_unit_test(test_allocation_failures_referral),
                cmocka_unit_test(test_allocation_failures_outcome),
                cmocka_unit_test(test_allocation_failures_worklist_request),
                cmocka_unit_test(test_nhs_number_valid),
                cmocka_unit_test(test_service_id_valid),
                cmocka_unit_test(test_service_id_every_byte),
                cmocka_unit_test(test_service_id_ends_at_its_nul),
                cmocka_unit_test(test_parse_text_valid),
                cmocka_unit_test(test_parse_text_malformed),
                cmocka_unit_test(test_parse_text_truncated_and_trailing),
                cmocka_unit_test(test_worklist_fixture),
                cmocka_unit_test(test_worklist_empty),
                cmocka_unit_test(test_worklist_liberal),
                cmocka_unit_test(test_worklist_every_element),
                cmocka_unit_test(test_worklist_working_state),
                cmocka_unit_test(test_worklist_errors),
                cmocka_unit_test(test_worklist_skips),
                cmocka_unit_test(test_worklist_error_fixture),
                cmocka_unit_test(test_worklist_stream_tricky),
                cmocka_unit_test(test_worklist_stream_every_split),
                cmocka_unit_test(test_worklist_stream_truncated),
                cmocka_unit_test(test_worklist_stream_order),
                cmocka_unit_test(test_worklist_stream_syntax),
                cmocka_unit_test(test_referral_booked),
                cmocka_unit_test(test_referral_minimal),
                cmocka_unit_test(test_referral_unbooked),
                cmocka_unit_test(test_referral_service),
                cmocka_unit_test(test_referral_unknown_codes),
                cmocka_unit_test(test_referral_state_reason_utf8),
                cmocka_unit_test(test_referral_every_element),
                cmocka_unit_test(test_referral_requirements),
                cmocka_unit_test(test_referral_liberal),
                cmocka_unit_test(test_referral_text_with_nul),
                cmocka_unit_test(test_attachment_occurrence),
                cmocka_unit_test(test_referral_errors),
                cmocka_unit_test(test_referral_error_fixture),
                cmocka_unit_test(test_outcome_fixture),
                cmocka_unit_test(test_outcome_cases),
                cmocka_unit_test(test_worklist_request),
                cmocka_unit_test(test_mutations),
        };

        /* TEST_FILTER=test_referral_* runs a subset */
        if (getenv("TEST_FILTER"))
                cmocka_set_test_filter(getenv("TEST_FILTER"));
        return cmocka_run_group_tests(tests, NULL, NULL);
}
