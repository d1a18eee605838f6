/* SPDX-License-Identifier: MIT */
/*
 * e-RS services for IT choosing and checking worklists, end to end against
 * the mock's R4 HealthcareService (A033 read, A035 search, A037 version):
 * `ersd services` (text and --json, every e-RS text escaped, ids unknown to
 * e-RS said, 20 ids a search), `ersd --check-config --network` (each
 * worklist's service confirmed, one unknown refused at its FILE:LINE), each
 * saying one clear line against an application that may not call them (403),
 * and none of them spending a worklist call or touching the PAS; one rule for
 * a service id in the configuration, on the command line and in the client.
 *
 * Each test has its own mock and configuration; no PAS is ever created.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <curl/curl.h>
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "daemon/config.h"
#include "daemon/ers.h"
#include "tests/support/testutil.h"

/* A service name a terminal would act on: ESC, CSI sequence, a bidi override, a newline. */
#define HOSTILE_NAME "Heart\x1b[31m \xe2\x80\xae" "Clinic\nFAKE LINE"

static char work[256]; /* this binary's temp directory */

struct fx {
        struct mock m;
        char conf[PATH_MAX];
        char pas[PATH_MAX + 32];
};

/* The two worklists every test configures (services 31001 and 31002), and
 * `more` after them (NULL: none): one a line, so their lines are known. */
static void fx_start(struct fx *f, const char *const *mock_args, const char *ers_lines, const char *more) {
        static int n;
        char conn[PATH_MAX + 64], state[PATH_MAX], extra[1024];

        memset(f, 0, sizeof *f);
        n++;
        assert_int_equal(mock_start(&f->m, mock_args), 0);
        snprintf(f->conf, sizeof f->conf, "%s/ersd-%d.conf", work, n);
        snprintf(f->pas, sizeof f->pas, "%s/pas-%d.db", work, n);
        snprintf(conn, sizeof conn, "Driver=SQLite3;Database=%s", f->pas);
        snprintf(state, sizeof state, "%s/state-%d", work, n);
        snprintf(extra, sizeof extra,
                 "worklists = (\n"
                 "  { name = \"cardiology\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"31001\"; },\n"
                 "  { name = \"slots\"; list_type = \"APPOINTMENT_SLOT_ISSUES\"; service = \"31001\"; },\n"
                 "  { name = \"dermatology\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"31002\"; }%s\n"
                 ");\n",
                 more ? more : "");
        assert_int_equal(write_test_config(f->conf, f->m.base_url, ers_lines, conn, NULL, state, extra), 0);
}

/* Nothing of the PAS, no worklist call: what every one of these commands keeps to. */
static void fx_stop(struct fx *f) {
        assert_int_equal(stat_count(&f->m, "A008"), 0);
        assert_int_equal(access(f->pas, F_OK), -1);
        mock_stop(&f->m);
}

static const char *const two_services[] = { "--service", "31001", "--service", "31002", "--service-name", HOSTILE_NAME,
                                            NULL };

static size_t lines_of(const char *s) {
        size_t n = 0;

        for (; s && *s; s++)
                n += *s == '\n';
        return n;
}

/* `ersd services`: the configured worklists' services, once each, in one
 * A035; every e-RS text escaped on a terminal's table, exact in JSON. */
static void test_services_lists_the_configured_ones(void **state) {
        struct fx f;
        (void) state;

        fx_start(&f, two_services, NULL, NULL);
        struct run r = run_ersd(f.conf, NULL, ARGS("services"), NULL);
        if (r.status != 0)
                fail_msg("ersd services exited %d: %s%s", r.status, r.out, r.err);
        assert_int_equal(lines_of(r.out), 3); /* the heading and the two services */
        assert_non_null(strstr(r.out, "SERVICE"));
        const char *one = strstr(r.out, "\n31001 "), *two = strstr(r.out, "\n31002 ");
        assert_non_null(one);
        assert_non_null(two);
        assert_non_null(strstr(one, "FIRST_OUTPATIENT"));
        assert_non_null(strstr(one, "BOOKABLE"));
        assert_non_null(strstr(one, "Heart\\x1b[31m \\u202eClinic\\x0aFAKE LINE"));
        assert_non_null(strstr(two, "ASSESSMENT_SERVICE"));
        assert_non_null(strstr(two, "REVIEW"));
        assert_null(strchr(r.out, '\x1b'));
        assert_null(strstr(r.out, "\xe2\x80\xae"));
        run_free(&r);
        assert_int_equal(stat_count(&f.m, "A035"), 1);

        r = run_ersd(f.conf, NULL, ARGS("services", "--json"), NULL);
        assert_int_equal(r.status, 0);
        assert_null(strchr(r.out, '\x1b'));
        json_object *o = json_tokener_parse(r.out), *list = json_object_object_get(o, "services");
        assert_int_equal(json_object_array_length(list), 2);
        json_object *s = json_object_array_get_idx(list, 0);
        assert_string_equal(jstr(s, "id"), "31001");
        assert_string_equal(jstr(s, "name"), HOSTILE_NAME); /* exact, as e-RS sent it */
        assert_string_equal(jstr(s, "version"), "1");
        assert_string_equal(jstr(s, "flow"), "BOOKABLE");
        assert_string_equal(jstr(s, "site"), "R6900");
        assert_int_equal(json_object_array_length(json_object_object_get(o, "not_known")), 0);
        json_object_put(o);
        run_free(&r);
        fx_stop(&f);
}

/* Ids given on the command line instead; one e-RS does not know is said
 * (exit 1); more than 20 take a second A035. */
static void test_services_named_and_unknown(void **state) {
        const char *args[32] = { "services", "31002", "39999", NULL };
        char ids[24][8];
        struct fx f;
        (void) state;

        fx_start(&f, two_services, NULL, NULL);
        struct run r = run_ersd(f.conf, NULL, args, NULL);
        if (r.status != 1 || !strstr(r.out, "\n39999            not known to e-RS\n") || strstr(r.out, "\n31001 "))
                fail_msg("ersd services 31002 39999: exit %d: %s%s", r.status, r.out, r.err);
        run_free(&r);

        args[0] = "services";
        for (int i = 0; i < 24; i++) {
                snprintf(ids[i], sizeof ids[i], "%d", 31001 + i);
                args[1 + i] = ids[i];
        }
        args[25] = "--json";
        args[26] = NULL;
        assert_int_equal(mock_post(&f.m, "/_mock/stats/reset"), 200);
        r = run_ersd(f.conf, NULL, args, NULL);
        assert_int_equal(r.status, 1);
        json_object *o = json_tokener_parse(r.out);
        assert_int_equal(json_object_array_length(json_object_object_get(o, "services")), 2);
        assert_int_equal(json_object_array_length(json_object_object_get(o, "not_known")), 22);
        json_object_put(o);
        run_free(&r);
        assert_int_equal(stat_count(&f.m, "A035"), 2);

        r = run_ersd(f.conf, NULL, ARGS("services", "31001/x"), NULL);
        assert_int_equal(r.status, 2);
        assert_non_null(strstr(r.err, "'31001/x' is not one"));
        assert_int_equal(lines_of(r.err), 1);
        run_free(&r);
        fx_stop(&f);
}

/* An application e-RS does not let search services (A035 is for referring
 * clinicians under user-restricted access; the mock refuses it with
 * --app-restricted as e-RS does): one line saying so, with the status, the
 * e-RS code and the correlation id. */
static void test_services_forbidden_is_one_line(void **state) {
        static const char *const args[] = { "--app-restricted", NULL };
        struct fx f;
        (void) state;

        fx_start(&f, args, NULL, NULL);
        struct run r = run_ersd(f.conf, NULL, ARGS("services"), NULL);
        if (r.status != 1 || lines_of(r.err) != 1 || r.out[0] ||
            !strstr(r.err, "error: services: e-RS does not let this application search services") ||
            !strstr(r.err, "HTTP 403, e-RS ACCESS_DENIED (correlation id "))
                fail_msg("ersd services against a 403: exit %d, expected one line: %s%s", r.status, r.out, r.err);
        run_free(&r);
        fx_stop(&f);
}

/* --check-config --network: each worklist's service read once with A033 and
 * said; without --network no e-RS request at all. */
static void test_check_config_network_confirms_each_service(void **state) {
        struct fx f;
        (void) state;

        fx_start(&f, two_services, NULL, NULL);
        struct run r = run_ersd(f.conf, NULL, ARGS("--check-config"), NULL);
        assert_int_equal(r.status, 0);
        run_free(&r);
        assert_int_equal(stat_count(&f.m, "A033") + stat_count(&f.m, "A035"), 0);

        r = run_ersd(f.conf, NULL, ARGS("--check-config", "--network"), NULL);
        if (r.status != 0 || !strstr(r.out, "worklist cardiology: service 31001 \"Heart\\x1b[31m \\u202eClinic") ||
            !strstr(r.out, "worklist slots: service 31001 ") ||
            !strstr(r.out, "worklist dermatology: service 31002 \"Hillcrest Skin Service (31002)\" (REVIEW) is in "
                           "e-RS, version 2") ||
            !strstr(r.out, "configuration OK (3 worklists, their services in e-RS)") || strchr(r.out, '\x1b'))
                fail_msg("--check-config --network: exit %d: %s%s", r.status, r.out, r.err);
        run_free(&r);
        assert_int_equal(stat_count(&f.m, "A033"), 2); /* 31001 once for its two worklists */

        r = run_ersd(f.conf, NULL, ARGS("--network"), NULL);
        assert_int_equal(r.status, 2);
        assert_non_null(strstr(r.err, "--network goes with --check-config"));
        run_free(&r);
        fx_stop(&f);
}

/* A worklist whose service e-RS does not know is refused at its FILE:LINE,
 * the others said; the configuration is refused (exit 2). */
static void test_check_config_network_refuses_an_unknown_service(void **state) {
        struct fx f;
        char want[PATH_MAX + 128];
        (void) state;

        fx_start(&f, two_services, NULL,
                 ",\n  { name = \"retired\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"39999\"; }");
        struct run r = run_ersd(f.conf, NULL, ARGS("--check-config", "--network"), NULL);
        /* ers (lines 1-5), database (6-8), state_dir (9), worklists from line 10: the fourth on 14 */
        snprintf(want, sizeof want, "%s:14: worklists[3].service: service 39999 is not known to e-RS: A033 service "
                                    "39999: HTTP 404, e-RS REC_NOT_FOUND (correlation id ", f.conf);
        if (r.status != 2 || !strstr(r.err, want) || !strstr(r.err, "configuration refused") ||
            strstr(r.out, "configuration OK") || !strstr(r.out, "worklist dermatology: service 31002 "))
                fail_msg("an unknown service: exit %d: %s%s", r.status, r.out, r.err);
        run_free(&r);
        fx_stop(&f);
}

/* e-RS refusing this application A033 (403): one line saying the services
 * were not checked and why; exit 1 (not a configuration error). */
static void test_check_config_network_forbidden_is_one_line(void **state) {
        struct fx f;
        (void) state;

        fx_start(&f, two_services, NULL, NULL);
        assert_int_equal(mock_post(&f.m, "/_mock/fault?endpoint=A033&kind=403&count=10"), 200);
        struct run r = run_ersd(f.conf, NULL, ARGS("--check-config", "--network"), NULL);
        if (r.status != 1 || lines_of(r.err) != 1 || strstr(r.out, "configuration OK") ||
            !strstr(r.err, "the worklists' services not checked: e-RS does not let this application read services") ||
            !strstr(r.err, "A033 service 31001: HTTP 403, e-RS ACCESS_DENIED (correlation id "))
                fail_msg("--check-config --network against a 403: exit %d, expected one line: %s%s", r.status, r.out,
                         r.err);
        run_free(&r);
        assert_int_equal(stat_count(&f.m, "A033"), 1); /* the first refusal is the answer: no more asked */
        fx_stop(&f);
}

/* Whether each way ersd takes a service id took `id`: a worklist's `service`
 * (`ersd --check-config`), `ersd services ID`, and the e-RS client's A033 and
 * A035, which put it into a URL; a refusal by the client comes before any
 * request. */
struct taken {
        bool config, command, a033, a035;
};

static struct taken service_id_taken(struct fx *f, struct ers_client *ers, const char *id) {
        static int n;
        char conf[PATH_MAX + 32], conn[PATH_MAX + 64], state[PATH_MAX + 32], extra[256];
        struct ers_service one = { 0 };
        struct ers_service_list many = { 0 };
        struct ers_call call;
        struct errbuf e = { { 0 } };
        struct taken t;
        long long asked;
        int r;

        n++;
        snprintf(conf, sizeof conf, "%s/rule-%d.conf", work, n);
        snprintf(conn, sizeof conn, "Driver=SQLite3;Database=%s", f->pas);
        snprintf(state, sizeof state, "%s/rule-state-%d", work, n);
        snprintf(extra, sizeof extra,
                 "worklists = ( { name = \"probe\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"%s\"; } );\n", id);
        assert_int_equal(write_test_config(conf, f->m.base_url, NULL, conn, NULL, state, extra), 0);
        struct run run = run_ersd(conf, NULL, ARGS("--check-config"), NULL);
        t.config = run.status == 0;
        run_free(&run);

        run = run_ersd(f->conf, NULL, ARGS("services", id), NULL);
        t.command = run.status != 2; /* 2: refused; 0 or 1 (not known to e-RS): asked */
        run_free(&run);

        asked = stat_count(&f->m, "A033");
        r = ers_read_service(ers, id, &one, &call, &e);
        ers_service_free(&one);
        t.a033 = r != -EINVAL;
        assert_int_equal(stat_count(&f->m, "A033") - asked, t.a033 ? 1 : 0);

        asked = stat_count(&f->m, "A035");
        r = ers_search_services(ers, &id, 1, &many, &call, &e);
        ers_service_list_free(&many);
        t.a035 = r != -EINVAL;
        assert_int_equal(stat_count(&f->m, "A035") - asked, t.a035 ? 1 : 0);
        return t;
}

/* One rule for a service id (service_id_valid(), model.h): each id below is
 * taken by the configuration, the command line and the e-RS client alike, or
 * refused by all three.  (The configuration and `ersd services` once took 1
 * to 16 digits, the client 1 to 16 of A-Z a-z 0-9 . _ -.) */
static void test_one_rule_for_a_service_id(void **state) {
        static const struct {
                const char *id;
                bool taken;
        } cases[] = {
                { "31001", true }, { "1", true }, { "1234567890123456", true }, { "RX1", true }, { "rx-1.2", true },
                { "a1b2c3d4e5f6g7h8", true }, { "12345678901234567", false }, { "A1_2", false }, { "1_2", false },
                { ".", false }, { "..", false }, { ".1", false }, { "-1", false }, { "1/2", false }, { "1,2", false },
                { "1 2", false }, { "1%2F", false }, { "1?a=b", false }, { "1#", false }, { "\xc3\xa9" "1", false },
        };
        struct config cfg;
        struct ers_client *ers = NULL;
        struct errbuf e = { { 0 } };
        struct fx f;
        (void) state;

        fx_start(&f, two_services, NULL, NULL);
        assert_int_equal(config_load(f.conf, NULL, NULL, &cfg), 0);
        if (ers_client_new(&cfg, &ers, &e) < 0)
                fail_msg("client: %s", e.msg);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                const char *id = cases[i].id;
                struct taken t = service_id_taken(&f, ers, id);
                if (t.config != t.command || t.config != t.a033 || t.config != t.a035)
                        fail_msg("service id '%s': configuration %s, ersd services %s, A033 %s, A035 %s", id,
                                 t.config ? "takes it" : "refuses it", t.command ? "takes it" : "refuses it",
                                 t.a033 ? "takes it" : "refuses it", t.a035 ? "takes it" : "refuses it");
                if (t.config != cases[i].taken)
                        fail_msg("service id '%s': %s everywhere, not by the rule", id, t.config ? "taken" : "refused");
        }
        ers_client_free(ers);
        config_free(&cfg);
        fx_stop(&f);
}

static size_t discard(char *p, size_t size, size_t n, void *userdata) {
        (void) p;
        *(size_t *) userdata += size * n;
        return size * n;
}

/* The mock's A037: HEAD of a service, its version in the ETag, no body; 404
 * for one it does not know. */
static void test_mock_serves_the_service_version(void **state) {
        static const char *const args[] = { "--service", "31001", "--service", "31002", NULL };
        struct fx f;
        (void) state;

        fx_start(&f, args, NULL, NULL);
        for (int known = 1; known >= 0; known--) {
                char url[256];
                size_t body = 0;
                long status = 0;
                struct curl_slist *h = curl_slist_append(NULL, "Accept: application/fhir+json");
                struct curl_header *etag = NULL;
                CURL *c = curl_easy_init();

                assert_non_null(c);
                snprintf(url, sizeof url, "%s/FHIR/R4/HealthcareService/%s", f.m.base_url, known ? "31002" : "39999");
                curl_easy_setopt(c, CURLOPT_URL, url);
                curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
                curl_easy_setopt(c, CURLOPT_HTTPHEADER, h);
                curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, discard);
                curl_easy_setopt(c, CURLOPT_WRITEDATA, &body);
                assert_int_equal(curl_easy_perform(c), CURLE_OK);
                curl_easy_getinfo(c, CURLINFO_RESPONSE_CODE, &status);
                assert_int_equal(status, known ? 200 : 404);
                if (known) {
                        assert_int_equal(curl_easy_header(c, "ETag", 0, CURLH_HEADER, -1, &etag), CURLHE_OK);
                        assert_string_equal(etag->value, "W/\"2\"");
                }
                assert_int_equal(body, 0);
                curl_easy_cleanup(c);
                curl_slist_free_all(h);
        }
        assert_int_equal(stat_count(&f.m, "A037"), 2);
        fx_stop(&f);
}

int main(void) {
        char *dir = tmpdir_make();
        int failed;

        if (getenv("TEST_FILTER"))
                cmocka_set_test_filter(getenv("TEST_FILTER"));
        if (!dir) {
                fprintf(stderr, "test_services: cannot make a temporary directory\n");
                return 1;
        }
        snprintf(work, sizeof work, "%s", dir);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_services_lists_the_configured_ones),
                cmocka_unit_test(test_services_named_and_unknown),
                cmocka_unit_test(test_services_forbidden_is_one_line),
                cmocka_unit_test(test_check_config_network_confirms_each_service),
                cmocka_unit_test(test_check_config_network_refuses_an_unknown_service),
                cmocka_unit_test(test_check_config_network_forbidden_is_one_line),
                cmocka_unit_test(test_mock_serves_the_service_version),
                cmocka_unit_test(test_one_rule_for_a_service_id),
        };
        failed = cmocka_run_group_tests_name("services", tests, NULL, NULL);
        tmpdir_remove(dir);
        free(dir);
        return failed ? 1 : 0;
}
