/* SPDX-License-Identifier: MIT */
/*
 * End to end: the mock e-RS on loopback, build/ersd --once, the PAS in SQLite
 * through unixODBC.  Checks every mapped field and every document's SHA-256
 * against what the mock served (its manifest), then what a second run, a
 * PENDING attachment becoming available, and each kind of bad answer do.
 *
 * The tests run in order and share one mock and one database.
 */
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/support/testutil.h"
#include "tests/support/verify.h"

struct env {
        struct mock mock;    /* the shared mock */
        struct mock side;    /* a test's own mock, stopped by the teardown if the test fails */
        char *dir;           /* owned temp directory: config, token, state, database */
        char conf[512];
        char connection[600];
        json_object *manifest; /* owned: what the mock serves */
        struct db *db;
};

static struct env E;

/* E.conf for mock m, with `ers_lines` (may be NULL) in the ers group, E.connection and the shared state. */
static void conf_for(const struct mock *m, const char *ers_lines) {
        char state[520];

        snprintf(state, sizeof state, "%s/state", E.dir);
        assert_int_equal(write_test_config(E.conf, m->base_url, ers_lines, E.connection, NULL, state, NULL), 0);
}

/* ersd -c E.conf mode, its output checked for patient identifiers and secrets. */
static struct run ersd(const char *mode) {
        return run_ersd(E.conf, E.manifest, ARGS(mode), NULL);
}

/* ersd --once that must succeed: a failure shows what ersd said. */
static struct run run_once_ok(void) {
        struct run r = ersd("--once");
        if (r.status != 0)
                fail_msg("ersd --once exited %d: %s", r.status, r.err);
        return r;
}

static int group_setup(void **state) {
        static const char *const args[] = { "--referrals", "52", "--attachments", "2", NULL };
        (void) state;
        E.dir = tmpdir_make();
        if (!E.dir || mock_start(&E.mock, args) < 0)
                return -1;
        snprintf(E.conf, sizeof E.conf, "%s/ersd.conf", E.dir);
        snprintf(E.connection, sizeof E.connection, "Driver=SQLite3;Database=%s/pas.db", E.dir);
        E.manifest = mock_get(&E.mock, "/_mock/manifest");
        if (!E.manifest)
                return -1;
        conf_for(&E.mock, NULL);
        return 0;
}

static int group_teardown(void **state) {
        (void) state;
        db_close(E.db);
        json_object_put(E.manifest);
        mock_stop(&E.side);
        mock_stop(&E.mock);
        tmpdir_remove(E.dir);
        free(E.dir);
        return 0;
}

static void test_init_db_is_idempotent(void **state) {
        (void) state;
        for (int i = 0; i < 2; i++) {
                struct run r = ersd("--init-db");
                assert_int_equal(r.status, 0);
                assert_non_null(strstr(r.out, "schema ready"));
                run_free(&r);
        }
        E.db = db_open(E.connection);
        assert_non_null(E.db);
}

/* The first sync: every referral, every field, every document byte. */
static void test_first_sync_maps_every_field_and_document(void **state) {
        json_object *refs = json_object_object_get(E.manifest, "referrals");
        size_t n_attachments = 0, n_not_fetched = 0, n_big = 0;
        struct verify_result v;
        struct run r;
        (void) state;

        r = run_once_ok();
        assert_non_null(strstr(r.out, "0 failed"));
        run_free(&r);

        /* Everything, against the manifest (tests/support/verify.c names any difference on stderr). */
        verify_pas(E.db, E.manifest, &v);
        assert_true(v.referrals_expected >= 50);
        assert_int_equal(v.referrals_written, v.referrals_expected);
        assert_int_equal(v.referrals_missing + v.referrals_stale, 0);
        assert_int_equal(v.fields_mismatched, 0);
        assert_int_equal(v.documents_mismatched, 0);
        assert_int_equal(v.documents_duplicated, 0);
        assert_int_equal(v.documents_missing, 0);
        assert_int_equal(verify_consistent(E.db), 0);

        /* The scale, and what staff read about the files e-RS would not release. */
        for (size_t i = 0; i < json_object_array_length(refs); i++) {
                json_object *m = json_object_array_get_idx(refs, i);
                json_object *atts = json_object_object_get(m, "attachments");
                for (size_t a = 0; a < json_object_array_length(atts); a++) {
                        json_object *att = json_object_array_get_idx(atts, a);
                        const char *avail = jstr(att, "availability");
                        if (strcmp(avail, "AVAILABLE") == 0) {
                                n_attachments++;
                                n_big += json_object_get_int64(json_object_object_get(att, "size")) >= 20 * 1024 * 1024;
                                continue;
                        }
                        const char *q[] = { jstr(m, "ubrn"), jstr(att, "id") };
                        char *why = db_text(E.db,
                                            "SELECT not_fetched_reason FROM ers_document WHERE source_ubrn = ? AND attachment_id = ?",
                                            2, q, NULL);
                        assert_non_null(why);
                        assert_non_null(strstr(why, strncmp(avail, "THREATS", 7) == 0 ? "THREATS" : avail));
                        free(why);
                        n_not_fetched++;
                }
        }
        assert_true(n_attachments >= 100);
        assert_int_equal(n_not_fetched, 3); /* PENDING, THREATS_FOUND, VALIDATION_FAILED */
        assert_int_equal(n_big, 1);
        assert_true(v.documents_checked >= n_attachments + v.referrals_expected); /* and a letter each */
}

/* A second run writes nothing: no referral read again but the one still owed a document. */
static void test_second_run_writes_nothing(void **state) {
        long long docs_before = db_int(E.db, "SELECT COUNT(*) FROM ers_document", 0, NULL);
        char *synced_before = db_text(E.db, "SELECT MAX(last_synced_at) || COUNT(*) FROM ers_referral", 0, NULL, NULL);
        struct run r;
        (void) state;

        assert_int_equal(mock_post(&E.mock, "/_mock/stats/reset"), 200);
        r = ersd("--once");
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.out, " 0 new, 0 updated, 52 unchanged, 0 failed"));
        assert_non_null(strstr(r.out, "documents 0 stored"));
        run_free(&r);
        assert_int_equal(stat_count(&E.mock, "A008"), 1);
        assert_true(stat_count(&E.mock, "A005") <= 1); /* only the referral with a PENDING attachment */
        assert_int_equal(stat_count(&E.mock, "A007"), 0);
        assert_int_equal(stat_count(&E.mock, "store"), 0);
        assert_int_equal(db_int(E.db, "SELECT COUNT(*) FROM ers_document", 0, NULL), docs_before);
        char *synced_after = db_text(E.db, "SELECT MAX(last_synced_at) || COUNT(*) FROM ers_referral", 0, NULL, NULL);
        assert_string_equal(synced_before, synced_after);
        free(synced_before);
        free(synced_after);
}

/* The PENDING attachment becomes AVAILABLE: a later run fetches it. */
static void test_pending_attachment_fetched_later(void **state) {
        json_object *refs = json_object_object_get(E.manifest, "referrals");
        const char *pending = NULL, *ubrn = NULL;
        char path[256], hex[65];
        int64_t size;
        bool found;
        (void) state;

        for (size_t i = 0; i < json_object_array_length(refs) && !pending; i++) {
                json_object *m = json_object_array_get_idx(refs, i);
                json_object *atts = json_object_object_get(m, "attachments");
                for (size_t a = 0; a < json_object_array_length(atts); a++)
                        if (strcmp(jstr(json_object_array_get_idx(atts, a), "availability"), "PENDING") == 0) {
                                pending = jstr(json_object_array_get_idx(atts, a), "id");
                                ubrn = jstr(m, "ubrn");
                        }
        }
        assert_non_null(pending);
        snprintf(path, sizeof path, "/_mock/availability?attachment=%s&status=AVAILABLE", pending);
        assert_int_equal(mock_post(&E.mock, path), 200);

        struct run r = ersd("--once");
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.out, "1 updated"));
        run_free(&r);

        json_object *fresh = mock_get(&E.mock, "/_mock/manifest");
        const char *want_sha = NULL;
        json_object *frefs = json_object_object_get(fresh, "referrals");
        for (size_t i = 0; i < json_object_array_length(frefs); i++) {
                json_object *atts = json_object_object_get(json_object_array_get_idx(frefs, i), "attachments");
                for (size_t a = 0; a < json_object_array_length(atts); a++)
                        if (strcmp(jstr(json_object_array_get_idx(atts, a), "id"), pending) == 0)
                                want_sha = jstr(json_object_array_get_idx(atts, a), "sha256");
        }
        assert_non_null(want_sha);
        const char *q[] = { ubrn, pending };
        char *doc_id = db_text(E.db,
                               "SELECT document_id FROM ers_document WHERE source_ubrn = ? AND attachment_id = ? AND fetch_status = 'FETCHED'",
                               2, q, &found);
        assert_true(found);
        assert_int_equal(db_document_sha256(E.db, doc_id, hex, &size), 0);
        assert_string_equal(hex, want_sha);
        assert_int_equal(db_int(E.db, "SELECT complete FROM ers_ledger WHERE ubrn = ?", 1, (const char *const[]){ ubrn }), 1);
        free(doc_id);
        json_object_put(fresh);
}

/* Each bad answer from e-RS: one line naming UBRN, endpoint and correlation id; PAS unchanged. */
struct fault_case {
        const char *endpoint;
        const char *kind;
        const char *expect; /* in the error line */
};

static const struct fault_case faults[] = {
        { "A005", "500", "HTTP 500" },
        { "A005", "503", "HTTP 503" },
        { "A005", "502", "HTTP 502" },
        { "A005", "429", "Retry-After 1 s" },
        { "A005", "429_bare", "HTTP 429" },
        { "A005", "malformed", "malformed JSON" },
        { "A005", "wrong_type", "ReferralRequest" },
        { "A005", "wrong_content_type", "Content-Type" },
        { "A005", "truncated", "truncated" },
        { "A005", "stall", "stalled" },
        { "A007", "500", "A007" },
        { "A042", "503", "A042" },
        { "A042", "404", "HTTP 404" }, /* no fallback: A006 is retired */
        { "A042", "400", "HTTP 400, e-RS REC_BAD_REQUEST" }, /* a bad request, not "not available" */
        { "store", "truncated", "object store" },
};

/*
 * A test's own mock (E.side) and fresh PAS: side_start() keeps the shared
 * configuration aside, side_pas() points E.conf/E.connection at a new empty
 * PAS named `name`, side_stop() stops the mock and restores the shared ones.
 */
static char shared_conf[sizeof E.conf], shared_connection[sizeof E.connection];

static void side_start(const char *const *args) {
        memcpy(shared_conf, E.conf, sizeof shared_conf);
        memcpy(shared_connection, E.connection, sizeof shared_connection);
        assert_int_equal(mock_start(&E.side, args), 0);
}

static void side_pas(const char *name, const char *auth) {
        snprintf(E.conf, sizeof E.conf, "%s/%s.conf", E.dir, name);
        snprintf(E.connection, sizeof E.connection, "Driver=SQLite3;Database=%s/%s.db", E.dir, name);
        conf_for(&E.side, auth);
        struct run r = ersd("--init-db");
        assert_int_equal(r.status, 0);
        run_free(&r);
}

static void side_stop(void) {
        mock_stop(&E.side);
        memcpy(E.conf, shared_conf, sizeof shared_conf);
        memcpy(E.connection, shared_connection, sizeof shared_connection);
}

static const char *const small_mock[] = { "--referrals", "8", "--big-attachment", "0", NULL };

/* The SHA-256 of each of a referral's attachments as stored, against the manifest; how many. */
static size_t assert_attachments_stored(struct db *d, const char *ubrn) {
        char path[128], hex[65];
        int64_t size;

        snprintf(path, sizeof path, "/_mock/manifest?ubrn=%s", ubrn);
        json_object *man = mock_get(&E.side, path);
        assert_non_null(man);
        json_object *atts = json_object_object_get(json_object_array_get_idx(json_object_object_get(man, "referrals"), 0),
                                                   "attachments");
        size_t n = json_object_array_length(atts);
        for (size_t a = 0; a < n; a++) {
                json_object *att = json_object_array_get_idx(atts, a);
                const char *q[] = { ubrn, jstr(att, "id") };
                char *doc_id = db_text(d,
                                       "SELECT document_id FROM ers_document WHERE source_ubrn = ? AND attachment_id = ?"
                                       " AND fetch_status = 'FETCHED'",
                                       2, q, NULL);
                if (!doc_id)
                        fail_msg("UBRN %s: attachment %s not stored", ubrn, q[1]);
                assert_int_equal(db_document_sha256(d, doc_id, hex, &size), 0);
                assert_string_equal(hex, jstr(att, "sha256"));
                free(doc_id);
        }
        json_object_put(man);
        return n;
}

/*
 * Each case gets its own mock and a fresh PAS, so every endpoint is really
 * called for the faulted referral (on the shared PAS its documents are stored
 * already and would not be fetched again).
 */
static void test_bad_answers_change_nothing(void **state) {
        struct mock *m = &E.side;
        char path[256], name[32];
        const char *ubrn = "300000000007";
        (void) state;

        side_start(small_mock);
        for (size_t i = 0; i < sizeof faults / sizeof *faults; i++) {
                const struct fault_case *f = &faults[i];
                struct db *d;

                snprintf(name, sizeof name, "fault%zu", i);
                /* One send per call: the fault is the answer ersd gets (ers.tries repeats a 5xx or 429). */
                side_pas(name, "  auth = \"none\";\n  tries = 1;\n");
                snprintf(path, sizeof path, "/_mock/fault?endpoint=%s&kind=%s&ubrn=%s&count=1", f->endpoint, f->kind,
                         ubrn);
                assert_int_equal(mock_post(m, path), 200);

                struct run r = ersd("--once");
                if (r.status != 1)
                        fail_msg("%s %s: ersd exited %d, expected 1: %s", f->endpoint, f->kind, r.status, r.err);
                /* One error line naming the UBRN, the cause and the correlation id. */
                const char *line = strstr(r.err, "error: UBRN ");
                const char *eol = line ? strchr(line, '\n') : NULL;
                if (!line || !strstr(line, ubrn) || !strstr(line, f->expect) || !strstr(line, "correlation id") ||
                    (eol && strstr(eol, "error:")))
                        fail_msg("%s %s: expected one error line naming UBRN, '%s' and the correlation id; got: %s",
                                 f->endpoint, f->kind, f->expect, r.err);
                assert_non_null(strstr(r.out, "7 new, 0 updated, 0 unchanged, 1 failed"));
                run_free(&r);

                d = db_open(E.connection);
                assert_non_null(d);
                assert_int_equal(db_rows_for(d, ubrn), 0); /* nothing of that referral */
                assert_true(db_rows_for(d, "300000000006") > 0); /* the others went on */

                /* Without the fault, the next run catches up. */
                r = ersd("--once");
                if (r.status != 0)
                        fail_msg("%s %s: recovery run exited %d: %s", f->endpoint, f->kind, r.status, r.err);
                assert_non_null(strstr(r.out, "1 new, 0 updated, 7 unchanged, 0 failed"));
                run_free(&r);
                assert_true(db_rows_for(d, ubrn) > 0);
                db_close(d);
        }
        side_stop();
}

/* A042 answering 404 is an error like any other (A006, retired, is never
 * tried in its place): one line naming the UBRN and the correlation id, the
 * referral's failure recorded, tried again, and parked after park_after
 * failures; nothing of it written. */
static void test_a042_not_found_is_an_error(void **state) {
        const char *ubrn = "300000000007";
        struct db *d;
        (void) state;

        side_start(small_mock);
        side_pas("a042-404", "  tries = 1;\n");
        /* conf_for() writes no top-level lines: park at the second failure */
        FILE *f = fopen(E.conf, "a");
        assert_non_null(f);
        fputs("retry_delay = 1;\npark_after = 2;\n", f);
        fclose(f);
        assert_int_equal(mock_post(&E.side, "/_mock/fault?endpoint=A042&kind=404&ubrn=300000000007&count=100"), 200);
        d = db_open(E.connection);
        assert_non_null(d);
        const char *p[] = { ubrn };
        for (int round = 1; round <= 2; round++) {
                struct run r = ersd("--once");
                const char *at = strstr(r.err, "error: UBRN 300000000007 not synced");
                const char *eol = at ? strchr(at, '\n') : NULL;
                const char *next = eol ? strstr(eol, "error:") : NULL;
                char line[1024] = "";
                if (eol)
                        snprintf(line, sizeof line, "%.*s", (int) (eol - at), at);
                bool parked_line = next && strncmp(next, "error: UBRN 300000000007 parked after 2 failed attempts",
                                                   strlen("error: UBRN 300000000007 parked after 2 failed attempts")) == 0;
                if (r.status != 1 || !strstr(line, "A042 UBRN 300000000007 Binary/") || !strstr(line, "HTTP 404") ||
                    !strstr(line, "(correlation id ") || (round == 1 ? next != NULL : !parked_line))
                        fail_msg("round %d: expected exit 1 and one error line naming A042's 404, the UBRN and the "
                                 "correlation id%s: exit %d: %s", round, round == 2 ? ", then the parking" : "",
                                 r.status, r.err);
                assert_non_null(strstr(r.out, "1 failed"));
                run_free(&r);
                assert_int_equal(db_rows_for(d, ubrn), 0);
                assert_int_equal(db_int(d, "SELECT attempts FROM ers_retry WHERE ubrn = ?", 1, p), round);
                assert_int_equal(db_int(d, "SELECT parked FROM ers_retry WHERE ubrn = ?", 1, p), round == 2);
                /* due again now */
                assert_int_equal(db_exec(d, "UPDATE ers_retry SET next_attempt_at = '2000-01-01T00:00:00Z'"), 0);
        }
        assert_int_equal(stat_count(&E.side, "A006"), 0);
        db_close(d);
        side_stop();
}

/* The object store's signed link expired (403): ersd asks A042 for a new one at once. */
static void test_expired_store_link_is_asked_again(void **state) {
        struct db *d;
        (void) state;

        side_start(small_mock);
        side_pas("expired", NULL);
        assert_int_equal(mock_post(&E.side, "/_mock/fault?endpoint=store&kind=403&ubrn=300000000007&count=1"), 200);
        struct run r = run_once_ok();
        assert_non_null(strstr(r.out, "0 failed"));
        run_free(&r);
        d = db_open(E.connection);
        assert_non_null(d);
        size_t n = assert_attachments_stored(d, "300000000007");
        db_close(d);
        /* one A042 per attachment of each referral, plus the one asked again */
        long long a042 = stat_count(&E.side, "A042"), store = stat_count(&E.side, "store");
        assert_true(n > 0);
        assert_int_equal(a042, store);   /* every link was used once */
        side_stop();
}

/* Referral 300000000001 at `version` (the mock's world mode) whose A005 names
 * no patient, priority or specialty; its attachment att-2 `availability`,
 * att-1 PENDING throughout (so its documents stay owed, and it is looked at
 * again); on the cardiology worklist when `entry` (the entry's members, after
 * its routing) is not NULL. */
static void serve_silent_a005(int version, const char *availability, const char *entry) {
        char json[4096], listed[1024] = "";

        if (entry)
                snprintf(listed, sizeof listed,
                         ", \"entry\": {\"service\": \"31001\", \"list\": \"REFERRALS_FOR_REVIEW\", \"version\": %d, "
                         "\"service_id\": \"31001\", \"service_name\": \"Cardiology\"%s}",
                         version, entry);
        snprintf(json, sizeof json,
                 "{\"referrals\": [{\"ubrn\": \"300000000001\", \"version\": %d, \"state\": \"AWAITING_TRIAGE\", "
                 "\"status\": \"active\", \"intent\": \"plan\", \"attachments\": ["
                 "{\"binary\": \"b1\", \"seed\": 1, \"bytes\": 100, \"id\": \"att-1\", \"availability\": \"PENDING\"}, "
                 "{\"binary\": \"b2\", \"seed\": 2, \"bytes\": 200, \"id\": \"att-2\", \"availability\": \"%s\"}], "
                 "\"letter\": {\"seed\": 9, \"bytes\": 3000}%s}]}",
                 version, availability, listed);
        assert_int_equal(mock_serve_world(&E.side, E.dir, json), 200);
}

/* The referral's NHS number (whether set), priority and specialty as stored, in one line. */
static void assert_entry_fields(struct db *d, const char *when, const char *want) {
        char *got = db_text(d, "SELECT CASE WHEN nhs_number = '9990000018' AND nhs_number_valid = 1 THEN 'nhs' "
                               "WHEN nhs_number IS NULL THEN 'no nhs' ELSE 'other nhs' END || ' ' || "
                               "COALESCE(priority, 'NULL') || ' ' || COALESCE(specialty, 'NULL') "
                               "FROM ers_referral WHERE ubrn = '300000000001'",
                            0, NULL, NULL);
        if (!got || strcmp(got, want) != 0)
                fail_msg("%s: expected '%s', got '%s'", when, want, got ? got : "no row");
        free(got);
}

/*
 * Where A005 says nothing of the patient, priority or specialty, the
 * worklist entry's are stored, and a read of the referral without a
 * worklist call (documents still owed, the referral off the worklists) keeps
 * them, at its version and at a new one: they are not lost.  A worklist that
 * lists the referral again says what it says: an entry without a priority
 * leaves none.
 */
static void test_worklist_fields_kept_when_read_again(void **state) {
        static const char *const entry = ", \"priority\": \"TWO_WEEK_WAIT\", \"specialty\": \"CARDIOLOGY\", "
                                         "\"nhs_number\": \"9990000018\"";
        const char *const due = "UPDATE ers_ledger SET next_check_at = '2000-01-01T00:00:00Z' "
                                "WHERE next_check_at IS NOT NULL";
        struct db *d;
        (void) state;

        side_start(small_mock);
        side_pas("reread", NULL);
        d = db_open(E.connection);
        assert_non_null(d);
        serve_silent_a005(1, "PENDING", entry);
        struct run r = run_once_ok();
        run_free(&r);
        assert_entry_fields(d, "written from the worklist", "nhs TWO_WEEK_WAIT CARDIOLOGY");

        /* Off the worklists; att-2 released at the same version: read again, written. */
        serve_silent_a005(1, "AVAILABLE", NULL);
        assert_int_equal(db_exec(d, due), 0);
        r = run_once_ok();
        run_free(&r);
        assert_int_equal(db_int(d, "SELECT COUNT(*) FROM ers_document WHERE attachment_id = 'att-2' AND "
                                   "fetch_status = 'FETCHED'", 0, NULL),
                         1);
        assert_entry_fields(d, "read again at its version", "nhs TWO_WEEK_WAIT CARDIOLOGY");

        /* A new version, read again without a worklist call. */
        serve_silent_a005(2, "AVAILABLE", NULL);
        assert_int_equal(db_exec(d, due), 0);
        r = run_once_ok();
        run_free(&r);
        assert_int_equal(db_int(d, "SELECT version FROM ers_referral WHERE ubrn = '300000000001'", 0, NULL), 2);
        assert_entry_fields(d, "read again at a new version", "nhs TWO_WEEK_WAIT CARDIOLOGY");

        /* Listed again at a new version, its entry without a priority: none. */
        serve_silent_a005(3, "AVAILABLE", ", \"specialty\": \"CARDIOLOGY\", \"nhs_number\": \"9990000018\"");
        r = run_once_ok();
        run_free(&r);
        assert_int_equal(db_int(d, "SELECT version FROM ers_referral WHERE ubrn = '300000000001'", 0, NULL), 3);
        assert_entry_fields(d, "listed without a priority", "nhs NULL CARDIOLOGY");
        assert_int_equal(verify_consistent(d), 0);
        db_close(d);
        side_stop();
}

/* A042 refuses an attachment the referral called AVAILABLE: 422 with an
 * OperationOutcome naming the availability, or, from older deployments, 400
 * with the same codes.  Each is read as "not available", never as a fault:
 * the referral is written with that document recorded as not fetched with the
 * code, the ledger owes it, and a later round fetches it. */
static void test_attachment_refused_then_fetched(void **state) {
        static const struct {
                const char *kind, *code;
        } cases[] = {
                { "422", "PENDING" },
                { "422", "THREATS_FOUND" },
                { "422", "VALIDATION_FAILED" },
                { "400", "PENDING" },
                { "400", "THREATS_FOUND" },
                { "400", "VALIDATION_FAILED" },
        };
        const char *ubrn = "300000000007";
        (void) state;

        side_start(small_mock);
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char name[32], path[160], like[64];
                snprintf(name, sizeof name, "refused%zu", i);
                side_pas(name, NULL);
                snprintf(path, sizeof path, "/_mock/fault?endpoint=A042&kind=%s&code=%s&ubrn=%s&count=1", cases[i].kind,
                         cases[i].code, ubrn);
                assert_int_equal(mock_post(&E.side, path), 200);
                struct run r = ersd("--once");
                if (r.status != 0 || !strstr(r.out, "0 failed"))
                        fail_msg("A042 %s %s: expected a written referral, the document not fetched: exit %d: %s",
                                 cases[i].kind, cases[i].code, r.status, r.err);
                run_free(&r);
                struct db *d = db_open(E.connection);
                assert_non_null(d);
                const char *p[] = { ubrn, like };
                snprintf(like, sizeof like, "e-RS would not release it: %%HTTP %s, e-RS %s %%", cases[i].kind,
                         cases[i].code);
                if (db_int(d, "SELECT COUNT(*) FROM ers_document WHERE source_ubrn = ? AND fetch_status = "
                              "'NOT_FETCHED' AND not_fetched_reason LIKE ?", 2, p) != 1)
                        fail_msg("A042 %s %s: no document recorded not fetched with the code", cases[i].kind,
                                 cases[i].code);
                assert_int_equal(db_int(d, "SELECT complete FROM ers_ledger WHERE ubrn = ?", 1, p), 0);

                r = ersd("--once");
                assert_int_equal(r.status, 0);
                assert_non_null(strstr(r.out, "1 updated"));
                run_free(&r);
                assert_attachments_stored(d, ubrn);
                assert_int_equal(db_int(d, "SELECT complete FROM ers_ledger WHERE ubrn = ?", 1, p), 1);
                assert_int_equal(verify_consistent(d), 0);
                db_close(d);
        }
        side_stop();
}

/* A worklist that lists a UBRN twice: synced once, with a warning naming it. */
static void test_same_ubrn_twice_in_a_worklist(void **state) {
        static const char *const args[] = { "--referrals", "8", "--big-attachment", "0", "--duplicate-entry", NULL };
        (void) state;

        side_start(args);
        side_pas("twice", NULL);
        struct run r = run_once_ok();
        assert_non_null(strstr(r.err, "lists UBRN 300000000000 twice; synced once"));
        assert_non_null(strstr(r.out, "8 new, 0 updated, 0 unchanged, 0 failed"));
        run_free(&r);
        struct db *d = db_open(E.connection);
        assert_non_null(d);
        assert_int_equal(db_int(d, "SELECT COUNT(*) FROM ers_ledger", 0, NULL), 8);
        assert_int_equal(verify_consistent(d), 0);
        db_close(d);
        /* one A005 for each of the 8 referrals and the related one: none for the repeat */
        assert_int_equal(stat_count(&E.side, "A005"), 9);
        side_stop();
}

/*
 * An attachment listed without its id, on a referral already in the PAS (the
 * lookup of what the PAS holds compared the missing id: SIGSEGV, and the
 * referral stayed queued, so every start crashed again).  Refused while the
 * A005 is read, with one line naming the UBRN and the element; the referral
 * waits (ers_retry), is parked after park_after failures, and keeps what the
 * PAS had; the other referrals go on.
 */
static void test_attachment_without_id_waits(void **state) {
        const char *ubrn = "300000000005", *other = "300000000006";
        char path[256], state_dir[520];
        (void) state;

        side_start(small_mock);
        side_pas("noid", NULL);
        snprintf(state_dir, sizeof state_dir, "%s/state", E.dir);
        assert_int_equal(write_test_config(E.conf, E.side.base_url, NULL, E.connection, NULL, state_dir,
                                           "park_after = 2;\n"),
                         0);
        struct run r = run_once_ok();
        run_free(&r);

        snprintf(path, sizeof path, "/_mock/manifest?ubrn=%s", ubrn);
        json_object *man = mock_get(&E.side, path);
        assert_non_null(man);
        json_object *att = json_object_array_get_idx(
                json_object_object_get(json_object_array_get_idx(json_object_object_get(man, "referrals"), 0),
                                       "attachments"),
                0);
        snprintf(path, sizeof path, "/_mock/change?ubrn=%s&what=attachment_id_dropped&attachment=%s", ubrn,
                 jstr(att, "id"));
        json_object_put(man);
        assert_int_equal(mock_post(&E.side, path), 200);
        snprintf(path, sizeof path, "/_mock/change?ubrn=%s&what=priority", other);
        assert_int_equal(mock_post(&E.side, path), 200);

        struct db *d = db_open(E.connection);
        assert_non_null(d);
        const char *p[] = { ubrn };
        long long version = db_int(d, "SELECT version FROM ers_ledger WHERE ubrn = ?", 1, p);
        for (int round = 1; round <= 2; round++) {
                r = ersd("--once");
                if (r.status != 1)
                        fail_msg("round %d: ersd exited %d, expected 1: %s", round, r.status, r.err);
                const char *line = strstr(r.err, "error: UBRN 300000000005 not synced, PAS unchanged: A005 UBRN 300000000005");
                if (!line || !strstr(line, "content[0].attachment.id is missing"))
                        fail_msg("round %d: expected one line naming the UBRN and the missing id: %s", round, r.err);
                assert_non_null(strstr(r.out, round == 1 ? "1 updated, 6 unchanged, 1 failed" : "0 updated, 7 unchanged, 1 failed"));
                assert_true((strstr(r.err, "UBRN 300000000005 parked after 2 failed attempts") != NULL) == (round == 2));
                run_free(&r);
                assert_int_equal(db_int(d, "SELECT attempts FROM ers_retry WHERE ubrn = ?", 1, p), round);
        }
        assert_int_equal(db_int(d, "SELECT parked FROM ers_retry WHERE ubrn = ?", 1, p), 1);
        assert_int_equal(db_int(d, "SELECT version FROM ers_ledger WHERE ubrn = ?", 1, p), version);
        const char *q[] = { other };
        assert_int_equal(db_int(d, "SELECT version FROM ers_referral WHERE ubrn = ?", 1, q),
                         db_int(d, "SELECT version FROM ers_ledger WHERE ubrn = ?", 1, q));
        assert_int_equal(verify_consistent(d), 0);
        db_close(d);
        side_stop();
}

/* Sets how the mock lists a referral's worklist entry (entry_good, entry_bad_version, entry_bad_reference). */
static void entry_change(const char *ubrn, const char *what) {
        char path[128];

        snprintf(path, sizeof path, "/_mock/change?ubrn=%s&what=%s", ubrn, what);
        assert_int_equal(mock_post(&E.side, path), 200);
}

/* ersd --once that skips malformed entries: exit 1, the summary names `counts`
 * and how many were skipped, and each skipped entry has its own line. */
static void run_skipping(const char *counts, unsigned n_skipped, const char *const *lines) {
        char want[96];
        struct run r = ersd("--once");

        snprintf(want, sizeof want, "worklist entries skipped %u (malformed)", n_skipped);
        if (r.status != 1 || !strstr(r.out, counts) || !strstr(r.out, want) || !strstr(r.out, "sync incomplete"))
                fail_msg("expected exit 1, '%s' and '%s': exit %d: %s%s", counts, want, r.status, r.out, r.err);
        for (size_t i = 0; lines[i]; i++)
                if (!strstr(r.err, lines[i]))
                        fail_msg("expected the line '%s': %s", lines[i], r.err);
        assert_null(strstr(r.err, "worklist cardiology not read"));
        run_free(&r);
}

/*
 * A malformed worklist entry (a version that is no integer, a reference
 * holding no UBRN) is skipped with one line naming its position, and its
 * UBRN when readable; the rest of the worklist is synced (it used to refuse
 * the whole worklist, one of the day's two calls, on every poll).  The poll's
 * ers_poll row says so and `ersd status` shows it (exit 1); a referral in the
 * PAS whose entry is skipped has not left the worklists (with an unreadable
 * UBRN, who left is not judged at all); with the entries well formed again,
 * everything is synced and status is all well.
 */
static void test_malformed_entry_skipped(void **state) {
        static const char *const round1[] = {
                "worklist cardiology: entry[5] (UBRN 300000000005) skipped, not synced: referralRequestVersion is not a "
                "non-negative integer (correlation id ",
                "worklist cardiology: entry[6] skipped, not synced: item.reference is not ReferralRequest/<12-digit "
                "UBRN> (correlation id ",
                "worklist cardiology: an entry without a readable UBRN was skipped: its latest entries and who left "
                "it are not recorded this time",
                NULL,
        };
        static const char *const round2[] = {
                "entry[3] skipped, not synced: item.reference",
                "entry[4] (UBRN 300000000004) skipped, not synced: referralRequestVersion",
                "entry[5] (UBRN 300000000005) skipped, not synced: referralRequestVersion",
                NULL,
        };
        static const char *const round3[] = {
                "entry[4] (UBRN 300000000004) skipped, not synced: referralRequestVersion",
                NULL,
        };
        (void) state;

        side_start(small_mock);
        side_pas("malformed", NULL);
        entry_change("300000000005", "entry_bad_version");
        entry_change("300000000006", "entry_bad_reference");
        run_skipping("6 new, 0 updated, 0 unchanged, 0 failed", 2, round1);

        struct db *d = db_open(E.connection);
        assert_non_null(d);
        assert_int_equal(db_rows_for(d, "300000000005"), 0);
        assert_int_equal(db_rows_for(d, "300000000006"), 0);
        assert_true(db_rows_for(d, "300000000007") > 0); /* the others went on */
        char *result = db_text(d, "SELECT last_result FROM ers_poll WHERE worklist = 'cardiology'", 0, NULL, NULL);
        assert_non_null(result);
        assert_string_equal(result, "6 referral(s) listed; 2 malformed entries skipped, the first: entry[5] "
                                    "(UBRN 300000000005): referralRequestVersion is not a non-negative integer");
        free(result);

        const char *const status_args[] = { "status", NULL }, *const json_args[] = { "status", "--json", NULL };
        struct run r;
        r = run_ersd(E.conf, E.manifest, status_args, NULL);
        if (r.status != 1 || !strstr(r.out, "NEEDS A PERSON") || !strstr(r.out, "ok, MALFORMED ENTRIES SKIPPED: 6 "
                                                                           "referral(s) listed; 2 malformed entries"))
                fail_msg("ersd status: exit %d: %s", r.status, r.out);
        run_free(&r);
        r = run_ersd(E.conf, E.manifest, json_args, NULL);
        json_object *o = json_tokener_parse(r.out);
        assert_non_null(o);
        json_object *wl = json_object_array_get_idx(json_object_object_get(o, "worklists"), 0);
        assert_int_equal(json_object_get_int64(json_object_object_get(wl, "entries_skipped")), 2);
        json_object_put(o);
        run_free(&r);

        /* Referrals in the PAS with a skipped entry: listed still, never "left". */
        entry_change("300000000006", "entry_good");
        entry_change("300000000004", "entry_bad_version");
        entry_change("300000000003", "entry_bad_reference");
        run_skipping("1 new, 0 updated, 4 unchanged, 0 failed", 3, round2);
        entry_change("300000000003", "entry_good");
        entry_change("300000000005", "entry_good");
        run_skipping("1 new, 0 updated, 6 unchanged, 0 failed", 1, round3);
        assert_int_equal(db_int(d, "SELECT COUNT(*) FROM ers_ledger WHERE left_worklist_at IS NOT NULL", 0, NULL), 0);
        assert_int_equal(db_int(d, "SELECT COUNT(*) FROM ers_audit WHERE event_type = 'LEFT_WORKLIST'", 0, NULL), 0);

        entry_change("300000000004", "entry_good");
        r = run_once_ok();
        assert_non_null(strstr(r.out, "0 new, 0 updated, 8 unchanged, 0 failed"));
        assert_null(strstr(r.out, "skipped"));
        run_free(&r);
        r = run_ersd(E.conf, E.manifest, status_args, NULL);
        if (r.status != 0)
                fail_msg("ersd status after the entries came right: exit %d: %s", r.status, r.out);
        run_free(&r);
        assert_int_equal(db_int(d, "SELECT COUNT(*) FROM ers_ledger", 0, NULL), 8);
        assert_int_equal(verify_consistent(d), 0);
        db_close(d);
        side_stop();
}

/* How often needle occurs in text. */
static size_t count_of(const char *text, const char *needle) {
        size_t n = 0;

        for (const char *p = text; p && (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* Issue 13, defect 16: referral 0 has two attachments with one id, and one with the id of its letter
 * (CRI-v1), each with other bytes.  Each is a document of its own, stored with its own bytes and a
 * warning naming the UBRN, nothing parked; when the referral's next version comes, none of them is
 * fetched again. */
static void test_repeated_attachment_ids(void **state) {
        static const char *const args[] = { "--referrals", "3", "--big-attachment", "0", "--attachments", "3",
                                            "--attachment-id", "dup-1", "--attachment-id", "dup-1",
                                            "--attachment-id", "CRI-v1", NULL };
        const char *const ubrn[] = { "300000000000" };
        struct verify_result v;
        (void) state;

        side_start(args);
        side_pas("repeated", NULL);
        struct run r = run_once_ok();
        if (!strstr(r.err, "UBRN 300000000000: 1 attachment(s) repeat the id of an earlier one"))
                fail_msg("no warning naming the UBRN: %s", r.err);
        assert_non_null(strstr(r.out, "0 failed"));
        run_free(&r);
        struct db *d = db_open(E.connection);
        assert_non_null(d);
        json_object *man = mock_get(&E.side, "/_mock/manifest");
        assert_non_null(man);
        verify_pas(d, man, &v);
        json_object_put(man);
        assert_int_equal(v.referrals_missing + v.referrals_stale + v.fields_mismatched + v.documents_mismatched +
                                 v.documents_duplicated + v.documents_missing,
                         0);
        assert_true(v.documents_checked >= 5);
        assert_int_equal(db_int(d, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ? AND attachment_id = 'CRI-v1'", 1,
                                ubrn),
                         2); /* the letter, and the attachment with its id */
        assert_int_equal(db_int(d, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ? AND occurrence = 1", 1, ubrn), 1);
        assert_int_equal(verify_consistent(d), 0);

        /* The audit trail tells the two dup-1 apart: the second with its occurrence, in the
         * record, in `ersd audit` and in its --json. */
        assert_int_equal(db_int(d, "SELECT COUNT(*) FROM ers_audit WHERE ubrn = ? AND documents LIKE "
                                   "'%\"attachment_id\":\"dup-1\",\"revision\":1,\"occurrence\":1}%'",
                                1, ubrn),
                         1);
        const char *const audit[] = { "audit", "300000000000", NULL }, *const audit_json[] = { "audit", "--json",
                                                                                               "300000000000", NULL };
        r = run_ersd(E.conf, E.manifest, audit, NULL);
        if (r.status != 0 || count_of(r.out, " dup-1 r1") != 2 || count_of(r.out, " dup-1 r1 occurrence 1") != 1)
                fail_msg("ersd audit does not tell the two dup-1 apart: %s%s", r.out, r.err);
        run_free(&r);
        r = run_ersd(E.conf, E.manifest, audit_json, NULL);
        assert_int_equal(r.status, 0);
        json_object *o = json_tokener_parse(r.out), *rows = json_object_object_get(o, "audit");
        json_object *docs = json_object_object_get(json_object_array_get_idx(rows, 0), "documents");
        int seen[2] = { 0, 0 };
        for (size_t i = 0; i < json_object_array_length(docs); i++) {
                json_object *doc = json_object_array_get_idx(docs, i), *occ = json_object_object_get(doc, "occurrence");
                if (strcmp(json_object_get_string(json_object_object_get(doc, "attachment_id")), "dup-1") == 0)
                        seen[occ ? 1 : 0] += !occ || json_object_get_int64(occ) == 1;
        }
        if (seen[0] != 1 || seen[1] != 1)
                fail_msg("ersd audit --json: expected dup-1 once without and once with occurrence 1: %s", r.out);
        json_object_put(o);
        run_free(&r);

        /* its next version: read again, its attachments known (by id and occurrence), none fetched again */
        long long a042 = stat_count(&E.side, "A042");
        assert_int_equal(mock_post(&E.side, "/_mock/bump?ubrn=300000000000"), 200);
        r = run_once_ok();
        assert_non_null(strstr(r.out, "1 updated"));
        assert_non_null(strstr(r.out, "0 failed"));
        run_free(&r);
        assert_int_equal(stat_count(&E.side, "A042"), a042);
        man = mock_get(&E.side, "/_mock/manifest");
        verify_pas(d, man, &v);
        json_object_put(man);
        assert_int_equal(v.referrals_stale + v.documents_mismatched + v.documents_duplicated + v.documents_missing, 0);
        assert_int_equal(verify_consistent(d), 0);
        db_close(d);
        side_stop();
}

/* What the mock's A005 hold saw: how many waited together at most, and whether it timed out. */
static void assert_hold(const struct mock *m, long long want_reached, bool want_timed_out) {
        json_object *h = mock_get(m, "/_mock/hold");
        assert_non_null(h);
        assert_int_equal(json_object_get_int64(json_object_object_get(h, "reached")), want_reached);
        assert_int_equal(json_object_get_boolean(json_object_object_get(h, "timed_out")), want_timed_out);
        json_object_put(h);
}

/* ers.parallel_fetches: that many referrals are fetched at once (the mock
 * holds every A005 until 4 wait together: met, not timed out), never more
 * (the mock's peak of requests in progress), and each is written once, all
 * checked as after a sequential sync.  With 1, no two requests are ever in
 * progress together. */
static void test_referrals_fetched_in_parallel(void **state) {
        static const char *const args[] = { "--referrals", "12", "--big-attachment", "0", NULL };
        (void) state;

        side_start(args);
        side_pas("parallel", "  auth = \"none\";\n  parallel_fetches = 4;\n");
        assert_int_equal(mock_post(&E.side, "/_mock/hold?together=4&timeout_ms=30000"), 200);
        assert_int_equal(mock_post(&E.side, "/_mock/stats/reset"), 200);
        struct run r = run_once_ok();
        assert_non_null(strstr(r.out, "12 new, 0 updated, 0 unchanged, 0 failed"));
        run_free(&r);
        assert_hold(&E.side, 4, false);
        assert_int_equal(stat_count(&E.side, "in_flight_max"), 4);
        struct db *d = db_open(E.connection);
        assert_non_null(d);
        assert_int_equal(db_int(d, "SELECT COUNT(*) FROM ers_ledger", 0, NULL), 12);
        assert_int_equal(db_int(d, "SELECT COUNT(*) FROM ers_audit WHERE event_type = 'NEW'", 0, NULL),
                         db_int(d, "SELECT COUNT(DISTINCT ubrn) FROM ers_referral", 0, NULL));
        assert_int_equal(verify_consistent(d), 0);
        db_close(d);

        side_pas("sequential", "  auth = \"none\";\n  parallel_fetches = 1;\n");
        assert_int_equal(mock_post(&E.side, "/_mock/hold?together=2&timeout_ms=300"), 200);
        assert_int_equal(mock_post(&E.side, "/_mock/stats/reset"), 200);
        r = run_once_ok();
        assert_non_null(strstr(r.out, "12 new, 0 updated, 0 unchanged, 0 failed"));
        run_free(&r);
        assert_hold(&E.side, 1, true);
        assert_int_equal(stat_count(&E.side, "in_flight_max"), 1);
        side_stop();
}

/* e-RS unreachable: one line for the worklist, exit 1, nothing written. */
static void test_connection_refused(void **state) {
        (void) state;
        side_start(small_mock);
        side_pas("refused-conn", NULL);
        mock_stop(&E.side); /* nothing listens on its port now */
        struct run r = ersd("--once");
        assert_int_equal(r.status, 1);
        const char *line = strstr(r.err, "worklist cardiology not read");
        if (!line || !strstr(line, "correlation id"))
                fail_msg("expected 'worklist cardiology not read … correlation id', got: %s", r.err);
        run_free(&r);
        struct db *d = db_open(E.connection);
        assert_non_null(d);
        assert_int_equal(db_int(d, "SELECT COUNT(*) FROM ers_ledger", 0, NULL), 0);
        db_close(d);
        side_stop();
}

/* Plain `ersd`: a round at start, SIGHUP with a bad file keeps the running
 * configuration, with a good one takes it (no extra round: e-RS budgets
 * worklist calls), SIGTERM ends it cleanly. */
static void test_loop_mode_reload_and_stop(void **state) {
        char good[1024], want[700];
        struct proc p;
        long at;
        (void) state;

        /* A PAS of its own, never read: plain ersd catches up at once (the shared one was read
         * after today's last poll time, so its worklist is read next at the next poll time). */
        memcpy(shared_conf, E.conf, sizeof shared_conf);
        memcpy(shared_connection, E.connection, sizeof shared_connection);
        snprintf(E.conf, sizeof E.conf, "%s/loop.conf", E.dir);
        snprintf(E.connection, sizeof E.connection, "Driver=SQLite3;Database=%s/loop.db", E.dir);
        conf_for(&E.mock, "  auth = \"none\";\n");
        struct run init = ersd("--init-db");
        assert_int_equal(init.status, 0);
        run_free(&init);
        assert_int_equal(mock_post(&E.mock, "/_mock/stats/reset"), 200);
        assert_int_equal(ersd_spawn(E.conf, &p), 0);
        at = proc_wait_for(&p, 1, "ersd: sync done", 0);
        if (at < 0)
                fail_msg("no first round: %s", p.err);

        /* A file with a problem: refused, with its FILE:LINE, and the old one kept. */
        assert_int_equal(write_text(E.conf, "ers: { base_url = \"http://127.0.0.1:1/referrals\"; auth = \"none\"; };\n"
                                            "worklists = ( { name = \"w\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"1\"; } );\n"
                                            "database: { connection = \"Driver=SQLite3;Database=x\"; };\n"
                                            "unknown_key = 1;\n",
                                     0600),
                         0);
        kill(p.pid, SIGHUP);
        assert_true(proc_wait_for(&p, 2, "reload refused", 0) >= 0);
        snprintf(want, sizeof want, "%s:4:", E.conf);
        assert_non_null(strstr(p.err, want));

        /* A good one (log level changed): taken, and no second worklist call for it. */
        conf_for(&E.mock, "  auth = \"none\";\n");
        snprintf(good, sizeof good, "log_level = \"debug\";\n");
        FILE *f = fopen(E.conf, "a");
        assert_non_null(f);
        fputs(good, f);
        fclose(f);
        kill(p.pid, SIGHUP);
        assert_true(proc_wait_for(&p, 2, "configuration reloaded", 0) >= 0);
        assert_int_equal(stat_count(&E.mock, "A008"), 1);

        assert_int_equal(proc_end(&p, SIGTERM), 0);
        side_stop();
}

/* A static bearer token: sent to e-RS, never to the object store; a wrong one
 * is one clear line and changes nothing. */
static void test_bearer_token(void **state) {
        static const char *const args[] = { "--referrals", "3", "--big-attachment", "0", "--token",
                                             "test-token-5f1c9e", NULL };
        char token_file[600], auth[800];
        struct mock *m = &E.side;
        struct db *d;
        (void) state;

        side_start(args);
        snprintf(E.conf, sizeof E.conf, "%s/token.conf", E.dir);
        snprintf(E.connection, sizeof E.connection, "Driver=SQLite3;Database=%s/token.db", E.dir);
        snprintf(token_file, sizeof token_file, "%s/bearer-token", E.dir);
        snprintf(auth, sizeof auth, "  auth = \"bearer\";\n  bearer_token_file = \"%s\";\n", token_file);

        /* The wrong token: refused by e-RS, nothing written, the token never printed. */
        assert_int_equal(write_text(token_file, "not-the-token\n", 0600), 0);
        conf_for(m, auth);
        struct run r = ersd("--init-db");
        assert_int_equal(r.status, 0);
        run_free(&r);
        r = ersd("--once");
        assert_int_equal(r.status, 1);
        if (!strstr(r.err, "HTTP 401") || !strstr(r.err, "correlation id"))
                fail_msg("expected an HTTP 401 line with its correlation id, got: %s", r.err);
        assert_null(strstr(r.err, "not-the-token"));
        run_free(&r);
        d = db_open(E.connection);
        assert_non_null(d);
        assert_int_equal(db_int(d, "SELECT COUNT(*) FROM ers_referral", 0, NULL), 0);

        /* The right one. */
        assert_int_equal(write_text(token_file, "test-token-5f1c9e\n", 0600), 0);
        r = ersd("--once");
        if (r.status != 0)
                fail_msg("ersd --once with the right token exited %d: %s", r.status, r.err);
        assert_null(strstr(r.err, "test-token-5f1c9e"));
        assert_null(strstr(r.out, "test-token-5f1c9e"));
        run_free(&r);
        assert_int_equal(db_int(d, "SELECT COUNT(*) FROM ers_ledger", 0, NULL), 3);
        db_close(d);
        /* The object store was reached with a token configured, and never saw it (nor any
         * Authorization, Cookie or NHSD-* header: the mock answers 400 and counts each). */
        assert_true(stat_count(m, "store") > 0);
        assert_int_equal(stat_count(m, "credential_leaks"), 0);

        side_stop();
}

/* A bad configuration: every problem as FILE:LINE, exit 2, nothing touched. */
static void test_bad_configuration(void **state) {
        char conf[600], want[700];
        struct run r;
        (void) state;

        snprintf(conf, sizeof conf, "%s/bad.conf", E.dir);
        assert_int_equal(write_text(conf,
                                    "ers: { base_url = \"http://192.0.2.10/referrals\"; auth = \"none\"; };\n"
                                    "worklists = ( { name = \"w\"; list_type = \"REFERRALS\"; service = \"31001\"; } );\n"
                                    "database: { connection = \"Driver=SQLite3;Database=secret-db;PWD=hunter2\"; };\n"
                                    "pol_interval = 60;\n",
                                    0600),
                         0);
        for (int i = 0; i < 2; i++) {
                r = run_ersd(conf, NULL, ARGS(i == 0 ? "--check-config" : "--once"), NULL);
                assert_int_equal(r.status, 2);
                snprintf(want, sizeof want, "%s:1:", conf);
                assert_non_null(strstr(r.err, want)); /* http to a host that is not loopback */
                snprintf(want, sizeof want, "%s:2:", conf);
                assert_non_null(strstr(r.err, want)); /* the list type */
                snprintf(want, sizeof want, "%s:4:", conf);
                assert_non_null(strstr(r.err, want)); /* the unknown key */
                assert_null(strstr(r.err, "hunter2"));
                run_free(&r);
        }
}

/* A worklist that cannot be read changes nothing and says so. */
static void test_bad_worklist_changes_nothing(void **state) {
        static const char *const kinds[] = { "500", "malformed", "wrong_type", "oversized" };
        (void) state;

        for (size_t i = 0; i < sizeof kinds / sizeof *kinds; i++) {
                char path[128];
                long long refs = db_int(E.db, "SELECT COUNT(*) FROM ers_ledger", 0, NULL);
                snprintf(path, sizeof path, "/_mock/fault?endpoint=A008&kind=%s&count=1", kinds[i]);
                assert_int_equal(mock_post(&E.mock, path), 200);
                struct run r = ersd("--once");
                assert_int_equal(r.status, 1);
                const char *line = strstr(r.err, "worklist cardiology not read");
                if (!line || !strstr(line, "correlation id"))
                        fail_msg("A008 %s: expected 'worklist cardiology not read … correlation id', got: %s", kinds[i], r.err);
                assert_non_null(strstr(r.out, "worklists failed 1"));
                run_free(&r);
                assert_int_equal(db_int(E.db, "SELECT COUNT(*) FROM ers_ledger", 0, NULL), refs);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_init_db_is_idempotent),
                cmocka_unit_test(test_first_sync_maps_every_field_and_document),
                cmocka_unit_test(test_second_run_writes_nothing),
                cmocka_unit_test(test_pending_attachment_fetched_later),
                cmocka_unit_test(test_bad_answers_change_nothing),
                cmocka_unit_test(test_bad_worklist_changes_nothing),
                cmocka_unit_test(test_a042_not_found_is_an_error),
                cmocka_unit_test(test_expired_store_link_is_asked_again),
                cmocka_unit_test(test_attachment_refused_then_fetched),
                cmocka_unit_test(test_worklist_fields_kept_when_read_again),
                cmocka_unit_test(test_connection_refused),
                cmocka_unit_test(test_same_ubrn_twice_in_a_worklist),
                cmocka_unit_test(test_attachment_without_id_waits),
                cmocka_unit_test(test_malformed_entry_skipped),
                cmocka_unit_test(test_repeated_attachment_ids),
                cmocka_unit_test(test_referrals_fetched_in_parallel),
                cmocka_unit_test(test_loop_mode_reload_and_stop),
                cmocka_unit_test(test_bearer_token),
                cmocka_unit_test(test_bad_configuration),
        };
        if (getenv("TEST_FILTER")) /* TEST_FILTER=test_bearer_token runs a subset (the side-mock tests stand alone) */
                cmocka_set_test_filter(getenv("TEST_FILTER"));
        return cmocka_run_group_tests_name("integration: sync into SQLite", tests, group_setup, group_teardown);
}
