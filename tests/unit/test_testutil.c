/* SPDX-License-Identifier: MIT */
/*
 * The test scaffold's own checks (tests/support/testutil.h): the check every
 * test puts ersd's output through finds each kind of patient identifier and
 * secret, and stays quiet on what ersd prints every day (UUIDs, UBRNs,
 * timestamps, hashes); the configuration writer leaves to the caller the keys
 * it sets, and moves none of its lines; the generated worlds' model of what
 * e-RS serves after the writes it applied (world_served()) keeps what the
 * mock serves of the world, its malformed entries too.  A check that cannot
 * fail guards nothing: these prove that it can.
 *
 * Run from the repository root (it reads tests/secrets.list).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/support/testutil.h"
#include "tests/support/world.h"
#include "tests/support/world_outbox.h"

#define NHS_INVALID "9991234577" /* fails modulus 11: only the manifest says it is one */
#define LOOPBACK "http://127.0.0.1:9/referrals"

static void assert_finds(const char *text, json_object *manifest, const char *const *also, const char *kind) {
        long at = -1;
        const char *got = patient_identifier_in(text, manifest, also, &at);

        if (!got || !strstr(got, kind))
                fail_msg("\"%s\": expected %s, found %s", text, kind, got ? got : "nothing");
        assert_true(at >= 0 && (size_t) at < strlen(text));
}

static void assert_quiet(const char *text, json_object *manifest) {
        long at = -1;
        const char *got = patient_identifier_in(text, manifest, NULL, &at);

        if (got)
                fail_msg("\"%s\": %s found at byte %ld, expected nothing", text, got, at);
}

static void test_finds_every_kind(void **state) {
        json_object *manifest = json_tokener_parse("{\"referrals\": [{\"nhs_number\": \"" NHS_INVALID "\", "
                                                   "\"state_comment\": \"Seen by Dr Ann Other on Tuesday\"}]}");
        char secret[128];
        FILE *f = fopen("tests/secrets.list", "re");
        (void) state;

        assert_non_null(manifest);
        /* any valid NHS number, whoever's, in each printed form */
        assert_finds("patient 9434765919 written", NULL, NULL, "modulus 11");
        assert_finds("patient 943 476 5919 written", NULL, NULL, "modulus 11");
        assert_finds("patient 943-476-5919", NULL, NULL, "modulus 11");
        assert_finds("9434765919", NULL, NULL, "modulus 11");
        /* the manifest's, valid or not, and its free text */
        assert_quiet("value " NHS_INVALID " rejected", NULL);
        assert_finds("value " NHS_INVALID " rejected", manifest, NULL, "of the fixtures");
        assert_finds("value 999-123-4577 rejected", manifest, NULL, "of the fixtures");
        assert_finds("value 999 123 4577 rejected", manifest, NULL, "of the fixtures");
        assert_finds("comment: Seen by Dr Ann Other on Tuesday", manifest, NULL, "free text");
        /* tokens, keys, the suite's secrets, the test's own */
        assert_finds("Authorization: Bearer abc.def", NULL, NULL, "bearer token");
        assert_finds("token eyJhbGciOiJIUzI1NiJ9.e30.x", NULL, NULL, "JWT");
        assert_finds("-----BEGIN PRIVATE KEY-----", NULL, NULL, "private key");
        assert_non_null(f);
        do
                assert_non_null(fgets(secret, sizeof secret, f));
        while (secret[0] == '#' || secret[0] == '\n');
        fclose(f);
        secret[strcspn(secret, "\n")] = '\0';
        char line[256];
        snprintf(line, sizeof line, "connect: PWD=%s refused", secret);
        assert_finds(line, NULL, NULL, "tests/secrets.list");
        assert_finds("born 1961-04-12 in Leeds", NULL, ARGS("1961-04-12"), "of the test");
        json_object_put(manifest);
}

static void test_quiet_on_what_ersd_prints(void **state) {
        json_object *manifest = json_tokener_parse("{\"referrals\": [{\"nhs_number\": \"" NHS_INVALID "\", "
                                                   "\"state_comment\": null}, {\"nhs_number\": null}]}");
        (void) state;

        assert_quiet("id 3f9a1c7e-5b2d-4f60-9434-765919000000 at 2026-11-23T20:00:00Z", manifest);
        assert_quiet("UBRN 000000070000, number 9434765918, digits 19434765919 and x9434765919", manifest);
        assert_quiet("sha256 ab9434765919cd, part_9434765919, 9434765919_x", manifest);
        assert_quiet("mixed separators 943 476-5919", manifest);
        assert_quiet("token_type is not Bearer", manifest);
        assert_quiet("", manifest);
        long at = 7;
        assert_null(patient_identifier_in(NULL, manifest, NULL, &at));
        assert_int_equal(at, 7); /* untouched when nothing is found */
        json_object_put(manifest);
}

/* What write_test_config() writes to `path` for these arguments (caller frees). */
static char *written(const char *path, const char *base_url, const char *ers_lines, const char *extra) {
        FILE *f;
        char *text = calloc(1, 8192);

        assert_int_equal(write_test_config(path, base_url, ers_lines, "DSN=pas", NULL, "/s", extra), 0);
        f = fopen(path, "re");
        assert_non_null(f);
        assert_non_null(text);
        assert_true(fread(text, 1, 8191, f) > 0);
        fclose(f);
        return text;
}

/* The line (1-based) of text on which `needle` starts; 0 when it is not there. */
static int line_of(const char *text, const char *needle) {
        const char *at = strstr(text, needle);
        int line = 1;

        for (const char *p = text; at && p < at; p++)
                line += *p == '\n';
        return at ? line : 0;
}

static void test_config_defaults_left_to_the_caller(void **state) {
        char *dir = tmpdir_make(), path[512], *text;
        (void) state;

        assert_non_null(dir);
        snprintf(path, sizeof path, "%s/ersd.conf", dir);

        /* nothing set: every default, the ers lines where a caller's would be */
        text = written(path, LOOPBACK, NULL, NULL);
        assert_int_equal(line_of(text, "auth = \"none\""), 3);
        assert_int_equal(line_of(text, "stall_timeout = 5;"), 4);
        assert_non_null(strstr(text, "worklist_calls_per_day = 100000;"));
        assert_non_null(strstr(text, "max_requests_per_second = 10000;"));
        assert_non_null(strstr(text, "name = \"cardiology\""));
        free(text);

        /* what the caller sets is theirs, and its lines keep their numbers */
        text = written(path, LOOPBACK, "  auth = \"jwt\";\n  worklist_calls_per_day = 2;\n  stall_timeout = 9;\n",
                       "worklists = ( { name = \"w\"; list_type = \"REFERRALS\"; service = \"1\"; } );\n");
        assert_int_equal(line_of(text, "auth = \"jwt\""), 3);
        assert_int_equal(line_of(text, "worklist_calls_per_day = 2;"), 4);
        assert_null(strstr(text, "auth = \"none\""));
        assert_null(strstr(text, "100000"));
        assert_null(strstr(text, "stall_timeout = 5"));
        assert_non_null(strstr(text, "max_requests_per_second = 10000;"));
        assert_null(strstr(text, "cardiology"));
        free(text);

        /* lines without auth: auth = "none" added after them, on the defaults' line */
        text = written(path, LOOPBACK, "  tries = 1;\n  oauth_scope = \"x\";\n", NULL);
        assert_int_equal(line_of(text, "tries = 1;"), 3);
        assert_int_equal(line_of(text, "auth = \"none\""), 5);
        free(text);

        /* another host: production's limits */
        text = written(path, "https://api.example.nhs.uk/referrals", NULL, NULL);
        assert_null(strstr(text, "worklist_calls_per_day"));
        free(text);
        tmpdir_remove(dir);
        free(dir);
}

/* A world as e-RS serves it after a write (world_served()) lists the malformed entries
 * the world lists: a worklist whose poll recorded nothing (an entry without a readable
 * UBRN) is judged so by the checks, not against entries that poll never recorded. */
static void test_world_served_keeps_malformed_entries(void **state) {
        const struct wgen_plan plan = { .referrals = 8, .max_docs = 40, .big_every = 40 };
        struct wgen *g = wgen_new(0x5eed0001, &plan);
        struct world *w, *served;
        char applied[160];
        (void) state;

        assert_non_null(g);
        w = wgen_first(g);
        for (int i = 0; i < 200 && w->n_junk == 0; i++) { /* the seed's first world with one */
                struct world *n = wgen_next(g, w);
                world_free(w);
                w = n;
        }
        assert_true(w->n_junk > 0);
        assert_true(w->n_refs > 0);
        snprintf(applied, sizeof applied, "{\"referrals\":[{\"ubrn\":\"%s\",\"at\":%lld,\"bumps\":1}]}",
                 w->refs[0].ubrn, (long long) w->refs[0].version);
        json_object *a = json_tokener_parse(applied);
        assert_non_null(a);
        served = world_served(w, a);
        assert_int_equal(served->refs[0].version, w->refs[0].version + 1); /* the write applied */
        assert_int_equal(served->n_junk, w->n_junk);
        for (size_t i = 0; i < w->n_junk; i++) {
                assert_int_equal(served->junk_on[i], w->junk_on[i]);
                assert_string_equal(served->junk[i], w->junk[i]);
        }
        json_object_put(a);
        world_free(w); /* each owns its own: freeing one leaves the other whole */
        for (size_t i = 0; i < served->n_junk; i++)
                assert_true(strlen(served->junk[i]) > 0);
        world_free(served);
        wgen_free(g);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_finds_every_kind),
                cmocka_unit_test(test_quiet_on_what_ersd_prints),
                cmocka_unit_test(test_config_defaults_left_to_the_caller),
                cmocka_unit_test(test_world_served_keeps_malformed_entries),
        };
        return cmocka_run_group_tests_name("unit: the test scaffold", tests, NULL, NULL);
}
