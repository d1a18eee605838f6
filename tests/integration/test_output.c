/* SPDX-License-Identifier: MIT */
/*
 * Text from outside in every output of ersd, end to end: the mock e-RS lists
 * two attachments of referral 300000000000 under hostile ids (a newline that
 * would forge an audit entry; an OSC title, a C1 CSI and a bidi override) and
 * hostile titles (--attachment-id, --attachment-title), and answers failures
 * with a hostile OperationOutcome code (/_mock/fault code=).  Each output
 * must show it by the one rule of daemon/escape.h, never raw: the log
 * (`--once` at log level debug), `ersd status` (text, --json, --prometheus),
 * `ersd audit` (text and --json: no forged entry, the id exactly as e-RS sent
 * it), the `--once --dry-run` report, `ersd sync UBRN`, `ersd reconcile`.  The
 * PAS itself keeps ids and titles byte for byte.  An audit row written by an
 * earlier version (the old documents form) still prints as it did.
 *
 * The tests run in order and share one mock and one SQLite database.
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

#include "tests/support/testutil.h"

#define UBRN_HOSTILE "300000000000" /* referral 0: the hostile ids */
#define UBRN_FAILING "300000000003" /* answers with a hostile OperationOutcome code */
#define UBRN_RELATED "399999999999" /* on no worklist: reconcile asks e-RS about it */
#define UBRN_OLD_ROW "300000000001" /* gets an audit row in the old documents form */
#define UBRN_DUE "300000000005"     /* due again, with a hostile worklist in its ers_retry row */
#define UBRN_MISSING "300000000099" /* listed, by a hostile ers_worklist_entry row, not in the PAS */

/* A newline, then what an old documents line looks like: "F S A r9" read as
 * document F, SHA-256 S, attachment A, revision 9. */
#define ID_FORGE "a\nF S A r9"
/* An OSC window title, BEL, a C1 CSI "2J" (clear screen), an RLO reversing what follows. */
#define ID_TERMINAL "\x1b]0;pwn\x07\xc2\x9b" "2J\xe2\x80\xae" "fdp.exe"
#define ID_TERMINAL_SHOWN "\\x1b]0;pwn\\x07\\u009b2J\\u202efdp.exe"   /* in the log */
#define ID_TERMINAL_QUOTED "\"\\u001b]0;pwn\\u0007\\u009b2J\\u202efdp.exe\"" /* in the audit trail */
#define TITLE_1 "Scan \x1b[31mred\xc2\x85 \xe2\x81\xa6isolated\xe2\x81\xa9 \xd8\x9c" "caf\xc3\xa9.pdf"
#define TITLE_2 "\xd7\xa9\xd7\x9c\xd7\x95\xd7\x9d \xe2\x80\x8f\xe2\x80\xab" "x\r\n.pdf"
/* The OperationOutcome code of the failures: C0, C1, bidi. */
#define CODE_HOSTILE "E\x1b[2J\xc2\x9b" "31m\xe2\x80\xae\xe2\x81\xa6X"
/* As every server text is quoted (daemon/server_text.h): C0 a blank, the rest by escape.h's rule. */
#define CODE_HOSTILE_SAID "e-RS E [2J\\u009b31m\\u202e\\u2066X"
#define CODE_HOSTILE_URL "E%1B%5B2J%C2%9B31m%E2%80%AE%E2%81%A6X"
/* What the PAS may hold where ersd keeps its own words (another program, a hand, an older ersd). */
#define PAS_HOSTILE "cardio\x1b[2J\xc2\x9b\xe2\x80\xae"
#define PAS_HOSTILE_SHOWN "cardio\\x1b[2J\\u009b\\u202e"

struct env {
        struct mock mock;
        char *dir; /* owned temp directory: config, state, database */
        char conf[512];
        char conf_one_try[512]; /* the same with ers.tries = 1: an error answer is the call's answer at once */
        char connection[600];
        json_object *manifest; /* owned */
        struct db *db;
};

static struct env E;

/* No byte a terminal acts on, raw: C0 but newline, DEL, C1, the bidi and
 * format controls, U+2028/U+2029. */
static void assert_inert(const char *what, const char *text) {
        for (const unsigned char *p = (const unsigned char *) text; p && *p; p++) {
                long at = (long) ((const char *) p - text);
                if ((*p < 0x20 && *p != '\n') || *p == 0x7f)
                        fail_msg("%s: raw control byte 0x%02x at byte %ld", what, *p, at);
                if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
                        fail_msg("%s: raw C1 control U+00%02X at byte %ld", what, p[1], at);
                if (p[0] == 0xe2 && ((p[1] == 0x80 && (p[2] == 0x8e || p[2] == 0x8f || (p[2] >= 0xa8 && p[2] <= 0xae))) ||
                                     (p[1] == 0x81 && p[2] >= 0xa6 && p[2] <= 0xaf)))
                        fail_msg("%s: raw bidi control or separator at byte %ld", what, at);
                if (p[0] == 0xd8 && p[1] == 0x9c)
                        fail_msg("%s: raw U+061C at byte %ld", what, at);
        }
}

static void assert_contains(const char *what, const char *text, const char *needle) {
        if (!text || !strstr(text, needle))
                fail_msg("%s: expected \"%s\" in: %s", what, needle, text ? text : "(null)");
}

/* ersd -c conf args…; both streams checked for patient identifiers and
 * secrets (run_ersd) and for raw terminal controls. */
static struct run run_conf(const char *conf, const char *const *args) {
        struct run r = run_ersd(conf, E.manifest, args, NULL);
        char what[128];

        snprintf(what, sizeof what, "ersd %s %s: stdout", args[0], args[1] ? args[1] : "");
        assert_inert(what, r.out);
        snprintf(what, sizeof what, "ersd %s %s: stderr", args[0], args[1] ? args[1] : "");
        assert_inert(what, r.err);
        return r;
}

#define ERSD(...) run_conf(E.conf, ARGS(__VA_ARGS__))

static int group_setup(void **state) {
        static const char *const args[] = { "--referrals", "6", "--attachments", "2", "--big-attachment", "0",
                                             "--attachment-id", ID_FORGE, "--attachment-id", ID_TERMINAL,
                                             "--attachment-title", TITLE_1, "--attachment-title", TITLE_2, NULL };
        char state_dir[520];
        (void) state;

        E.dir = tmpdir_make();
        if (!E.dir || mock_start(&E.mock, args) < 0)
                return -1;
        snprintf(E.conf, sizeof E.conf, "%s/ersd.conf", E.dir);
        snprintf(E.conf_one_try, sizeof E.conf_one_try, "%s/one-try.conf", E.dir);
        snprintf(E.connection, sizeof E.connection, "Driver=SQLite3;Database=%s/pas.db", E.dir);
        snprintf(state_dir, sizeof state_dir, "%s/state", E.dir);
        E.manifest = mock_get(&E.mock, "/_mock/manifest");
        if (!E.manifest ||
            write_test_config(E.conf, E.mock.base_url, NULL, E.connection, NULL, state_dir, "log_level = \"debug\";\n") < 0 ||
            write_test_config(E.conf_one_try, E.mock.base_url, "  auth = \"none\";\n  tries = 1;\n", E.connection, NULL,
                              state_dir, "log_level = \"debug\";\n") < 0)
                return -1;
        return 0;
}

static int group_teardown(void **state) {
        (void) state;
        db_close(E.db);
        json_object_put(E.manifest);
        mock_stop(&E.mock);
        tmpdir_remove(E.dir);
        free(E.dir);
        return 0;
}

/* The sync: the log shows the hostile ids escaped; the PAS keeps ids and
 * titles exactly as e-RS sent them. */
static void test_sync_log_escaped_pas_exact(void **state) {
        (void) state;

        struct run r = ERSD("--init-db");
        assert_int_equal(r.status, 0);
        run_free(&r);
        E.db = db_open(E.connection);
        assert_non_null(E.db);

        r = ERSD("--once");
        if (r.status != 0)
                fail_msg("ersd --once exited %d: %s", r.status, r.err);
        assert_contains("--once log", r.err, ID_TERMINAL_SHOWN);
        assert_contains("--once log", r.err, "a\\x0aF S A r9");
        run_free(&r);

        const char *ids[] = { ID_FORGE, ID_TERMINAL }, *titles[] = { TITLE_1, TITLE_2 };
        for (size_t i = 0; i < 2; i++) {
                const char *ps[] = { UBRN_HOSTILE, ids[i] };
                char *title = db_text(E.db, "SELECT title FROM ers_document WHERE ubrn = ? AND attachment_id = ?", 2,
                                      ps, NULL);
                if (!title)
                        fail_msg("attachment %zu not stored under its exact id", i);
                assert_string_equal(title, titles[i]);
                free(title);
        }
}

/* `ersd audit`: every line escaped, one "document" line per document row
 * written (the newline in an id forges none). */
static void test_audit_text(void **state) {
        (void) state;

        struct run r = ERSD("audit", UBRN_HOSTILE);
        assert_int_equal(r.status, 0);
        assert_contains("audit", r.out, "NEW");
        long long docs = q_int(E.db, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ?", UBRN_HOSTILE);
        long long lines = 0;
        for (const char *s = r.out; (s = strstr(s, "\n       document ")); s++)
                lines++;
        assert_int_equal(lines, docs);
        /* an id that is not a plain token is shown as the JSON literal the trail keeps */
        assert_contains("audit", r.out, " \"a\\nF S A r9\" r1\n");
        assert_contains("audit", r.out, " " ID_TERMINAL_QUOTED " r1\n");
        run_free(&r);
}

/* Every document entry of every row of `ersd audit --json`; caller puts. */
static json_object *audit_json(const char *ubrn) {
        struct run r = ERSD("audit", "--json", ubrn);
        assert_int_equal(r.status, 0);
        json_object *o = json_tokener_parse(r.out);
        if (!o)
                fail_msg("audit --json printed no JSON: %s", r.out);
        run_free(&r);
        return o;
}

/* `ersd audit --json`: no forged entry, and each id exactly as e-RS sent it. */
static void test_audit_json_exact(void **state) {
        (void) state;

        json_object *o = audit_json(UBRN_HOSTILE);
        json_object *rows = json_object_object_get(o, "audit");
        assert_int_equal(json_object_array_length(rows), 1);
        json_object *docs = json_object_object_get(json_object_array_get_idx(rows, 0), "documents");
        assert_int_equal(json_object_array_length(docs),
                         q_int(E.db, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ?", UBRN_HOSTILE));
        bool seen[2] = { false, false };
        for (size_t i = 0; i < json_object_array_length(docs); i++) {
                json_object *d = json_object_array_get_idx(docs, i);
                const char *id = json_object_get_string(json_object_object_get(d, "document_id"));
                const char *att = json_object_get_string(json_object_object_get(d, "attachment_id"));
                if (!id || !att)
                        fail_msg("documents[%zu] is not a document: %s", i, json_object_to_json_string(d));
                /* each entry names a document row that exists, with its attachment id */
                const char *ps[] = { id };
                char *stored = db_text(E.db, "SELECT attachment_id FROM ers_document WHERE document_id = ?", 1, ps,
                                       NULL);
                if (!stored)
                        fail_msg("documents[%zu]: document_id '%s' is no document row (a forged entry)", i, id);
                assert_string_equal(att, stored);
                free(stored);
                seen[0] |= strcmp(att, ID_FORGE) == 0;
                seen[1] |= strcmp(att, ID_TERMINAL) == 0;
        }
        assert_true(seen[0] && seen[1]);
        json_object_put(o);
}

/* The same ids in `detail`: a change that names them (removed, then listed
 * again) quotes them, so no id can end a clause; --json gives the literal. */
static void test_audit_detail_quotes_ids(void **state) {
        (void) state;
        assert_int_equal(mock_post(&E.mock, "/_mock/change?ubrn=" UBRN_HOSTILE "&what=attachment_removed&attachment=a%0AF%20S%20A%20r9"),
                         200);
        struct run r = ERSD("--once");
        assert_int_equal(r.status, 0);
        run_free(&r);

        r = ERSD("audit", UBRN_HOSTILE);
        assert_contains("audit", r.out, "attachment removed: \"a\\nF S A r9\"");
        run_free(&r);
        json_object *o = audit_json(UBRN_HOSTILE);
        json_object *rows = json_object_object_get(o, "audit");
        assert_int_equal(json_object_array_length(rows), 2);
        const char *detail = json_object_get_string(json_object_object_get(json_object_array_get_idx(rows, 1), "detail"));
        assert_contains("audit --json detail", detail, "attachment removed: \"a\\nF S A r9\"");
        assert_null(strchr(detail, '\n'));
        json_object_put(o);
}

/* A failure whose OperationOutcome code is hostile: the log line, the
 * reason `ersd status` shows (text, JSON, Prometheus) are escaped. */
static void test_status_reason_escaped(void **state) {
        (void) state;
        assert_int_equal(mock_post(&E.mock, "/_mock/bump?ubrn=" UBRN_FAILING), 200);
        assert_int_equal(mock_post(&E.mock, "/_mock/fault?endpoint=A005&kind=422&count=100&ubrn=" UBRN_FAILING
                                            "&code=" CODE_HOSTILE_URL),
                         200);
        struct run r = ERSD("--once");
        assert_int_equal(r.status, 1);
        assert_contains("--once log", r.err, CODE_HOSTILE_SAID);
        run_free(&r);
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM ers_retry WHERE ubrn = ?", UBRN_FAILING), 1);

        r = ERSD("status");
        assert_contains("status", r.out, "UBRN " UBRN_FAILING);
        assert_contains("status", r.out, "\\u009b31m\\u202e\\u2066X");
        run_free(&r);
        r = ERSD("status", "--json");
        json_object *o = json_tokener_parse(r.out);
        assert_non_null(o);
        assert_contains("status --json", json_object_to_json_string(o), "u009b31m");
        json_object_put(o);
        run_free(&r);
        r = ERSD("status", "--prometheus");
        run_free(&r);
        assert_int_equal(mock_post(&E.mock, "/_mock/fault/clear"), 200);
}

/* The dry run's report and log, and `ersd sync UBRN`, with the hostile
 * attachment revised (fetched again by both), and a referral due again whose
 * ers_retry row names a hostile worklist (both print the worklist). */
static void test_dry_run_and_sync_one(void **state) {
        (void) state;
        assert_int_equal(mock_post(&E.mock, "/_mock/change?ubrn=" UBRN_HOSTILE "&what=attachment_revised&attachment="
                                            "%1B%5D0%3Bpwn%07%C2%9B2J%E2%80%AEfdp.exe"),
                         200);
        const char *ps[] = { UBRN_DUE, PAS_HOSTILE };
        assert_int_equal(db_exec_with(E.db,
                                      "INSERT INTO ers_retry (ubrn, worklist, priority, first_seen_at, attempts, "
                                      "next_attempt_at, parked, reason) VALUES (?, ?, 'ROUTINE', "
                                      "'2025-01-01T00:00:00Z', 1, '2025-01-01T00:00:00Z', 0, 'A005: HTTP 503')",
                                      2, ps),
                         0);
        struct run r = ERSD("--once", "--dry-run");
        assert_contains("dry run", r.out, "ersd: dry run: UBRN " UBRN_HOSTILE);
        assert_contains("dry run", r.out, "ersd: dry run: UBRN " UBRN_DUE);
        assert_contains("dry run", r.out, "(worklist " PAS_HOSTILE_SHOWN "): unchanged");
        assert_contains("dry run log", r.err, ID_TERMINAL_SHOWN);
        run_free(&r);

        r = ERSD("sync", UBRN_HOSTILE);
        assert_int_equal(r.status, 0);
        assert_contains("sync UBRN", r.out, "ersd: UBRN " UBRN_HOSTILE " written (updated)");
        assert_contains("sync UBRN log", r.err, ID_TERMINAL_SHOWN);
        run_free(&r);
        r = ERSD("sync", UBRN_DUE);
        assert_int_equal(r.status, 0);
        assert_contains("sync UBRN", r.out, "(worklist " PAS_HOSTILE_SHOWN "): documents 0 stored");
        run_free(&r);
        r = ERSD("audit", UBRN_HOSTILE);
        assert_contains("audit", r.out, "attachment revised: " ID_TERMINAL_QUOTED " (revision 2)");
        run_free(&r);
}

/* `ersd reconcile`: e-RS's hostile answer about a referral on no worklist,
 * and a hostile time in the latest worklist's entries. */
static void test_reconcile_escaped(void **state) {
        (void) state;
        assert_int_equal(mock_post(&E.mock, "/_mock/fault?endpoint=A005&kind=500&count=100&ubrn=" UBRN_RELATED
                                            "&code=" CODE_HOSTILE_URL),
                         200);
        const char *ps[] = { UBRN_MISSING, PAS_HOSTILE };
        assert_int_equal(db_exec_with(E.db,
                                      "INSERT INTO ers_worklist_entry (worklist, ubrn, version, listed_at) "
                                      "VALUES ('cardiology', ?, 1, ?)",
                                      2, ps),
                         0);
        /* One try: the 500s are the answer at once, not after ers.tries' back-offs (15 s and more). */
        struct run r = run_conf(E.conf_one_try, ARGS("reconcile"));
        assert_int_equal(r.status, 1);
        assert_contains("reconcile", r.out, "UNCHECKED " UBRN_RELATED);
        assert_contains("reconcile", r.out, "\\u009b31m\\u202e\\u2066X");
        assert_contains("reconcile", r.out, "MISSING  " UBRN_MISSING "  worklist cardiology lists version 1 ("
                                            PAS_HOSTILE_SHOWN "); not in the PAS");
        run_free(&r);
        assert_int_equal(mock_post(&E.mock, "/_mock/fault/clear"), 200);
}

/* An audit row written by an earlier version (documents as "<id> <sha256>
 * <attachment id> r<revision>[ of <UBRN>]" lines) prints as it did. */
static void test_old_audit_row(void **state) {
        static const char old[] = "3f9a1c7e-5b2d-4f60-8434-765919000001 "
                                  "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef 7000010 r2\n"
                                  "3f9a1c7e-5b2d-4f60-8434-765919000002 NOT_FETCHED CRI-v4 r1 of 399999999999";
        const char *ps[] = { UBRN_OLD_ROW, old };
        (void) state;

        assert_int_equal(db_exec_with(E.db,
                                      "INSERT INTO ers_audit (ubrn, seq, version, event_type, detail, documents, "
                                      "recorded_at, correlation_id) VALUES (?, 100, 4, 'UPDATED', "
                                      "'attachment revised: 7000010 (revision 2)', ?, '2025-01-01T00:00:00Z', NULL)",
                                      2, ps),
                         0);
        struct run r = ERSD("audit", UBRN_OLD_ROW);
        assert_contains("audit", r.out,
                        "       document 3f9a1c7e-5b2d-4f60-8434-765919000001 "
                        "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef 7000010 r2\n");
        assert_contains("audit", r.out,
                        "       document 3f9a1c7e-5b2d-4f60-8434-765919000002 NOT_FETCHED CRI-v4 r1 of 399999999999\n");
        run_free(&r);

        json_object *o = audit_json(UBRN_OLD_ROW);
        json_object *rows = json_object_object_get(o, "audit");
        json_object *last = json_object_array_get_idx(rows, json_object_array_length(rows) - 1);
        json_object *docs = json_object_object_get(last, "documents");
        assert_int_equal(json_object_array_length(docs), 2);
        json_object *d0 = json_object_array_get_idx(docs, 0), *d1 = json_object_array_get_idx(docs, 1);
        assert_string_equal(json_object_get_string(json_object_object_get(d0, "attachment_id")), "7000010");
        assert_int_equal(json_object_get_int64(json_object_object_get(d0, "revision")), 2);
        assert_true(json_object_get_boolean(json_object_object_get(d0, "fetched")));
        assert_string_equal(json_object_get_string(json_object_object_get(d1, "attachment_id")), "CRI-v4");
        assert_false(json_object_get_boolean(json_object_object_get(d1, "fetched")));
        assert_null(json_object_object_get(d1, "sha256"));
        assert_string_equal(json_object_get_string(json_object_object_get(d1, "source_ubrn")), "399999999999");
        json_object_put(o);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_sync_log_escaped_pas_exact),
                cmocka_unit_test(test_audit_text),
                cmocka_unit_test(test_audit_json_exact),
                cmocka_unit_test(test_audit_detail_quotes_ids),
                cmocka_unit_test(test_status_reason_escaped),
                cmocka_unit_test(test_dry_run_and_sync_one),
                cmocka_unit_test(test_reconcile_escaped),
                cmocka_unit_test(test_old_audit_row),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
