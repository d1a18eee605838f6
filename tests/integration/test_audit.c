/* SPDX-License-Identifier: MIT */
/*
 * The audit trail, referrals that change or leave, and reconcile, end to end:
 * the mock e-RS changes referrals between runs of build/ersd --once
 * (POST /_mock/change, /_mock/bump), the PAS is SQLite through unixODBC.
 *
 * Each kind of change gives exactly one ers_audit row saying what changed,
 * written with the PAS rows in one transaction; an older version arriving late
 * writes nothing; a referral leaving its worklist and coming back is recorded,
 * nothing deleted; a new file under the same attachment id is a new revision,
 * the old one kept, both byte-identical to what the mock served; `ersd audit`
 * prints the trail; `ersd reconcile` finds missing, stale and unknown referrals
 * without a worklist call.
 *
 * The tests run in order and share one mock and one database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "tests/support/engines.h"
#include "tests/support/testutil.h"

#define N_REFERRALS 12

struct env {
        struct mock mock;
        char *dir; /* owned temp directory: config, state, database */
        char conf[512];
        char conf_one_try[512]; /* the same with ers.tries = 1: an error answer is the call's answer at once */
        char connection[600];
        json_object *manifest; /* owned: what the mock serves, refreshed by refresh_manifest() */
        struct db *db;
};

static struct env E;

static json_object *manifest_referral(const char *ubrn) {
        json_object *refs = json_object_object_get(E.manifest, "referrals");
        for (size_t i = 0; i < json_object_array_length(refs); i++) {
                json_object *r = json_object_array_get_idx(refs, i);
                if (strcmp(jstr(r, "ubrn"), ubrn) == 0)
                        return r;
        }
        fail_msg("UBRN %s not in the manifest", ubrn);
        return NULL;
}

static void refresh_manifest(void) {
        json_object_put(E.manifest);
        E.manifest = mock_get(&E.mock, "/_mock/manifest");
        assert_non_null(E.manifest);
}

/* ersd -c E.conf args…, its output checked for patient identifiers and secrets. */
static struct run run_args(const char *const *args) {
        return run_ersd(E.conf, E.manifest, args, NULL);
}

static struct run run_once(void) {
        static const char *const once[] = { "--once", NULL };
        return run_args(once);
}

static void run_once_ok(void) {
        struct run r = run_once();
        if (r.status != 0)
                fail_msg("ersd --once exited %d: %s", r.status, r.err);
        run_free(&r);
}

static long long audit_rows(const char *ubrn) {
        return q_int(E.db, "SELECT COUNT(*) FROM ers_audit WHERE ubrn = ?", ubrn);
}

/* The newest audit row of ubrn: its event, detail and documents (caller frees). */
struct audit_row {
        long long seq, version;
        char *event, *detail, *documents;
};

static struct audit_row last_row(const char *ubrn) {
        struct audit_row a = { .seq = q_int(E.db, "SELECT MAX(seq) FROM ers_audit WHERE ubrn = ?", ubrn) };
        char seq[24];
        const char *ps[] = { ubrn, seq };

        snprintf(seq, sizeof seq, "%lld", a.seq);
        a.version = db_int(E.db, "SELECT version FROM ers_audit WHERE ubrn = ? AND seq = ?", 2, ps);
        a.event = db_text(E.db, "SELECT event_type FROM ers_audit WHERE ubrn = ? AND seq = ?", 2, ps, NULL);
        a.detail = db_text(E.db, "SELECT detail FROM ers_audit WHERE ubrn = ? AND seq = ?", 2, ps, NULL);
        a.documents = db_text(E.db, "SELECT documents FROM ers_audit WHERE ubrn = ? AND seq = ?", 2, ps, NULL);
        assert_non_null(a.event);
        return a;
}

static void row_free(struct audit_row *a) {
        free(a->event);
        free(a->detail);
        free(a->documents);
}

static void assert_contains(const char *text, const char *needle) {
        if (!text || !strstr(text, needle))
                fail_msg("expected \"%s\" in: %s", needle, text ? text : "(null)");
}

static void change(const char *ubrn, const char *what, const char *attachment) {
        char path[200];
        snprintf(path, sizeof path, "/_mock/change?ubrn=%s&what=%s%s%s", ubrn, what, attachment ? "&attachment=" : "",
                 attachment ? attachment : "");
        assert_int_equal(mock_post(&E.mock, path), 200);
}

static int group_setup(void **state) {
        static const char *const args[] = { "--referrals", "12", "--attachments", "2", "--big-attachment", "0", NULL };
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
        if (!E.manifest || write_test_config(E.conf, E.mock.base_url, NULL, E.connection, NULL, state_dir, NULL) < 0 ||
            write_test_config(E.conf_one_try, E.mock.base_url, "  auth = \"none\";\n  tries = 1;\n", E.connection, NULL,
                              state_dir, NULL) < 0)
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

/* The first sync: one NEW row per referral written (related one included),
 * listing every document row with its SHA-256, and the latest worklist kept. */
static void test_first_sync_one_new_row_each(void **state) {
        static const char *const init[] = { "--init-db", NULL };
        json_object *refs = json_object_object_get(E.manifest, "referrals");
        (void) state;

        struct run r = run_args(init);
        assert_int_equal(r.status, 0);
        run_free(&r);
        E.db = db_open(E.connection);
        assert_non_null(E.db);
        run_once_ok();

        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM ers_audit", NULL), (long long) json_object_array_length(refs));
        for (size_t i = 0; i < json_object_array_length(refs); i++) {
                json_object *m = json_object_array_get_idx(refs, i);
                const char *ubrn = jstr(m, "ubrn");
                struct audit_row a = last_row(ubrn);

                assert_int_equal(audit_rows(ubrn), 1);
                assert_int_equal(a.seq, 1);
                assert_string_equal(a.event, "NEW");
                assert_int_equal(a.version, json_object_get_int64(json_object_object_get(m, "version")));
                assert_contains(a.detail, "new referral: state ");
                /* every document row of a worklisted referral is named with its SHA-256 */
                if (json_object_get_boolean(json_object_object_get(m, "worklisted"))) {
                        long long docs = q_int(E.db, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ?", ubrn);
                        size_t lines = 0;
                        for (const char *s = a.documents; s && *s; s = strchr(s, '\n') ? strchr(s, '\n') + 1 : "")
                                lines++;
                        assert_int_equal(lines, docs);
                        const char *ps[] = { ubrn };
                        char *id = db_text(E.db, "SELECT document_id FROM ers_document WHERE ubrn = ? AND "
                                                 "fetch_status = 'FETCHED' ORDER BY document_id",
                                           1, ps, NULL);
                        char *sha = db_text(E.db, "SELECT sha256 FROM ers_document WHERE ubrn = ? AND "
                                                  "fetch_status = 'FETCHED' ORDER BY document_id",
                                            1, ps, NULL);
                        char line[160];
                        snprintf(line, sizeof line, "{\"document_id\":\"%s\",\"sha256\":\"%s\",", id, sha);
                        assert_contains(a.documents, line);
                        free(id);
                        free(sha);
                }
                row_free(&a);
        }
        /* the ledger's times, and the worklist's entries */
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM ers_ledger WHERE first_seen_at IS NULL", NULL), 0);
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM ers_ledger WHERE left_worklist_at IS NOT NULL", NULL), 0);
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM ers_worklist_entry WHERE worklist = 'cardiology'", NULL),
                         N_REFERRALS);
        /* never a patient identifier or free text in the trail */
        for (size_t i = 0; i < json_object_array_length(refs); i++) {
                const char *ubrn = jstr(json_object_array_get_idx(refs, i), "ubrn");
                struct audit_row a = last_row(ubrn);
                assert_no_patient_identifier("an audit row's detail", a.detail, E.manifest, NULL);
                if (a.documents)
                        assert_no_patient_identifier("an audit row's documents", a.documents, E.manifest, NULL);
                row_free(&a);
        }
}

static void test_noop_sync_writes_no_row(void **state) {
        long long before = q_int(E.db, "SELECT COUNT(*) FROM ers_audit", NULL);
        (void) state;
        run_once_ok();
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM ers_audit", NULL), before);
}

/* One kind of change per referral, all in one run: each gives one UPDATED row
 * saying exactly what changed, and the PAS rows at the new version. */
static void test_each_change_one_row(void **state) {
        struct {
                const char *ubrn;
                const char *what; /* a /_mock/change kind, or "bump" (state) */
                bool first_attachment;
        } cases[] = {
                { "300000000005", "bump", false },
                { "300000000007", "priority", false },
                { "300000000008", "appointment", false },
                { "300000000009", "attachment_added", false },
                { "300000000010", "attachment_removed", true },
                { "300000000011", "attachment_revised", true },
        };
        enum { N = sizeof cases / sizeof cases[0] };
        json_object *old[N];
        char att[N][24] = { "" };
        (void) state;

        for (size_t i = 0; i < N; i++) {
                old[i] = json_object_get(manifest_referral(cases[i].ubrn));
                if (cases[i].first_attachment)
                        snprintf(att[i], sizeof att[i], "%s",
                                 jstr(json_object_array_get_idx(json_object_object_get(old[i], "attachments"), 0),
                                      "id"));
                if (strcmp(cases[i].what, "bump") == 0) {
                        char path[64];
                        snprintf(path, sizeof path, "/_mock/bump?ubrn=%s", cases[i].ubrn);
                        assert_int_equal(mock_post(&E.mock, path), 200);
                } else
                        change(cases[i].ubrn, cases[i].what, att[i][0] ? att[i] : NULL);
        }
        refresh_manifest();
        run_once_ok();

        for (size_t i = 0; i < N; i++) {
                const char *ubrn = cases[i].ubrn;
                json_object *now = manifest_referral(ubrn);
                long long v_old = json_object_get_int64(json_object_object_get(old[i], "version"));
                long long v_new = json_object_get_int64(json_object_object_get(now, "version"));
                struct audit_row a = last_row(ubrn);
                char expect[256];

                assert_int_equal(audit_rows(ubrn), 2);
                assert_string_equal(a.event, "UPDATED");
                assert_int_equal(a.version, v_new);
                snprintf(expect, sizeof expect, "version %lld -> %lld", v_old, v_new);
                assert_contains(a.detail, expect);
                /* the PAS rows went with it */
                assert_int_equal(q_int(E.db, "SELECT version FROM ers_referral WHERE ubrn = ?", ubrn), v_new);
                assert_int_equal(q_int(E.db, "SELECT version FROM ers_ledger WHERE ubrn = ?", ubrn), v_new);

                if (strcmp(cases[i].what, "bump") == 0) {
                        snprintf(expect, sizeof expect, "state %s -> %s", jstr(old[i], "state"), jstr(now, "state"));
                        assert_contains(a.detail, expect);
                        char *st = q_text(E.db, "SELECT state FROM ers_referral WHERE ubrn = ?", ubrn);
                        assert_string_equal(st, jstr(now, "state"));
                        free(st);
                } else if (strcmp(cases[i].what, "priority") == 0) {
                        snprintf(expect, sizeof expect, "priority %s -> %s", jstr(old[i], "priority"),
                                 jstr(now, "priority"));
                        assert_contains(a.detail, expect);
                        char *p = q_text(E.db, "SELECT priority FROM ers_referral WHERE ubrn = ?", ubrn);
                        assert_string_equal(p, jstr(now, "priority"));
                        free(p);
                } else if (strcmp(cases[i].what, "appointment") == 0) {
                        snprintf(expect, sizeof expect, "appointment moved: %s -> %s",
                                 jstr(old[i], "appointment_start"), jstr(now, "appointment_start"));
                        assert_contains(a.detail, expect);
                        char *s = q_text(E.db, "SELECT appointment_start FROM ers_referral WHERE ubrn = ?", ubrn);
                        assert_string_equal(s, jstr(now, "appointment_start"));
                        free(s);
                } else if (strcmp(cases[i].what, "attachment_added") == 0) {
                        json_object *atts = json_object_object_get(now, "attachments");
                        json_object *added = json_object_array_get_idx(atts, json_object_array_length(atts) - 1);
                        snprintf(expect, sizeof expect, "attachment added: %s", jstr(added, "id"));
                        assert_contains(a.detail, expect);
                        const char *ps[] = { ubrn, jstr(added, "id") };
                        char *sha = db_text(E.db, "SELECT sha256 FROM ers_document WHERE ubrn = ? AND attachment_id = ?",
                                            2, ps, NULL);
                        assert_string_equal(sha, jstr(added, "sha256"));
                        assert_contains(a.documents, sha);
                        free(sha);
                } else if (strcmp(cases[i].what, "attachment_removed") == 0) {
                        snprintf(expect, sizeof expect, "attachment removed: %s", att[i]);
                        assert_contains(a.detail, expect);
                        /* kept, marked */
                        const char *ps[] = { ubrn, att[i] };
                        assert_int_equal(db_int(E.db, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ? AND "
                                                      "attachment_id = ? AND removed_at IS NOT NULL AND "
                                                      "fetch_status = 'FETCHED'",
                                                2, ps),
                                         1);
                } else {
                        /* a new file under the same id: revision 2 stored, revision 1 kept, both as served */
                        snprintf(expect, sizeof expect, "attachment revised: %s (revision 2)", att[i]);
                        assert_contains(a.detail, expect);
                        const char *old_sha = jstr(json_object_array_get_idx(json_object_object_get(old[i], "attachments"),
                                                                             0),
                                                   "sha256");
                        const char *new_sha = jstr(json_object_array_get_idx(json_object_object_get(now, "attachments"), 0),
                                                   "sha256");
                        assert_string_not_equal(old_sha, new_sha);
                        for (int rev = 1; rev <= 2; rev++) {
                                const char *ps[] = { ubrn, att[i], rev == 1 ? "1" : "2" };
                                char *id = db_text(E.db, "SELECT document_id FROM ers_document WHERE ubrn = ? AND "
                                                         "attachment_id = ? AND revision = ?",
                                                   3, ps, NULL);
                                char hex[65];
                                int64_t size = 0;
                                assert_non_null(id);
                                assert_int_equal(db_document_sha256(E.db, id, hex, &size), 0);
                                assert_string_equal(hex, rev == 1 ? old_sha : new_sha);
                                if (rev == 2)
                                        assert_contains(a.documents, id);
                                free(id);
                        }
                }
                row_free(&a);
                json_object_put(old[i]);
        }
}

/* The audit row is in the referral's transaction: when it cannot be written,
 * nothing of the new version is, and the next round writes both. */
static void test_audit_row_in_the_same_transaction(void **state) {
        const char *ubrn = "300000000002";
        long long version = q_int(E.db, "SELECT version FROM ers_referral WHERE ubrn = ?", ubrn);
        long long docs = q_int(E.db, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ?", ubrn);
        (void) state;

        assert_int_equal(mock_post(&E.mock, "/_mock/bump?ubrn=300000000002"), 200);
        assert_int_equal(engine_exec(E.connection,
                                     "CREATE TRIGGER ers_audit_refused BEFORE INSERT ON ers_audit "
                                     "BEGIN SELECT RAISE(ABORT, 'audit row refused by the test'); END",
                                     false), 0);
        struct run r = run_once();
        assert_int_equal(r.status, 1);
        assert_contains(r.err, "UBRN 300000000002 not synced, PAS unchanged");
        run_free(&r);
        assert_int_equal(q_int(E.db, "SELECT version FROM ers_referral WHERE ubrn = ?", ubrn), version);
        assert_int_equal(q_int(E.db, "SELECT version FROM ers_ledger WHERE ubrn = ?", ubrn), version);
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ?", ubrn), docs);
        assert_int_equal(audit_rows(ubrn), 1);

        assert_int_equal(engine_exec(E.connection, "DROP TRIGGER ers_audit_refused", false), 0);
        run_once_ok();
        assert_int_equal(q_int(E.db, "SELECT version FROM ers_referral WHERE ubrn = ?", ubrn), version + 1);
        assert_int_equal(audit_rows(ubrn), 2);
}

/* A lagging answer (A005 older than the PAS) writes nothing and says so. */
static void test_older_version_ignored_and_logged(void **state) {
        const char *ubrn = "300000000005";
        long long version = q_int(E.db, "SELECT version FROM ers_referral WHERE ubrn = ?", ubrn);
        long long rows = audit_rows(ubrn);
        (void) state;

        assert_int_equal(mock_post(&E.mock, "/_mock/bump?ubrn=300000000005"), 200);
        assert_int_equal(mock_post(&E.mock, "/_mock/fault?endpoint=A005&kind=stale&ubrn=300000000005"), 200);
        struct run r = run_once();
        assert_int_equal(r.status, 0);
        assert_contains(r.err, "UBRN 300000000005: e-RS answered version");
        assert_contains(r.err, "already in the PAS; ignored");
        run_free(&r);
        assert_int_equal(q_int(E.db, "SELECT version FROM ers_referral WHERE ubrn = ?", ubrn), version);
        assert_int_equal(audit_rows(ubrn), rows);

        run_once_ok(); /* the right answer: written, one row */
        assert_int_equal(q_int(E.db, "SELECT version FROM ers_referral WHERE ubrn = ?", ubrn), version + 1);
        assert_int_equal(audit_rows(ubrn), rows + 1);
}

/* A related referral answered at an older version than the PAS has is kept
 * as it is, and gets no audit row; the referral that lists it is written. */
static void test_related_older_version_kept(void **state) {
        const char *related = "399999999999";
        long long version = q_int(E.db, "SELECT version FROM ers_referral WHERE ubrn = ?", related);
        long long rows = audit_rows(related), main_rows = audit_rows("300000000002");
        assert_int_equal(version, 2); /* as the mock serves it */
        (void) state;

        assert_int_equal(mock_post(&E.mock, "/_mock/bump?ubrn=300000000002"), 200);
        assert_int_equal(mock_post(&E.mock, "/_mock/fault?endpoint=A005&kind=stale&ubrn=399999999999"), 200);
        struct run r = run_once();
        assert_int_equal(r.status, 0);
        assert_contains(r.err, "UBRN 399999999999 (related to 300000000002): e-RS answered version 1, older than the");
        run_free(&r);
        assert_int_equal(q_int(E.db, "SELECT version FROM ers_referral WHERE ubrn = ?", related), version);
        assert_int_equal(audit_rows(related), rows);
        assert_int_equal(audit_rows("300000000002"), main_rows + 1);
        /* nor a letter of that older version */
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM ers_document WHERE source_ubrn = ? AND source_version < 2", related),
                         0);
}

/* A file e-RS was still scanning, released at the same version: one
 * DOCUMENTS row naming it, with its SHA-256. */
static void test_documents_completed_one_row(void **state) {
        const char *ubrn = "300000000001";
        json_object *atts = json_object_object_get(manifest_referral(ubrn), "attachments");
        char id[24] = "", path[96];
        long long rows = audit_rows(ubrn), version = q_int(E.db, "SELECT version FROM ers_referral WHERE ubrn = ?", ubrn);
        (void) state;

        for (size_t i = 0; i < json_object_array_length(atts); i++)
                if (strcmp(jstr(json_object_array_get_idx(atts, i), "availability"), "PENDING") == 0)
                        snprintf(id, sizeof id, "%s", jstr(json_object_array_get_idx(atts, i), "id"));
        assert_true(id[0]);
        snprintf(path, sizeof path, "/_mock/availability?attachment=%s&status=AVAILABLE", id);
        assert_int_equal(mock_post(&E.mock, path), 200);
        refresh_manifest();
        run_once_ok();

        assert_int_equal(audit_rows(ubrn), rows + 1);
        struct audit_row a = last_row(ubrn);
        char expect[64];
        assert_string_equal(a.event, "DOCUMENTS");
        assert_int_equal(a.version, version);
        snprintf(expect, sizeof expect, "document fetched: %s", id);
        assert_contains(a.detail, expect);
        const char *ps[] = { ubrn, id };
        char *sha = db_text(E.db, "SELECT sha256 FROM ers_document WHERE ubrn = ? AND attachment_id = ?", 2, ps, NULL);
        assert_non_null(sha);
        assert_contains(a.documents, sha);
        free(sha);
        row_free(&a);
}

/* Leaving the worklist deletes nothing; the ledger and the trail say when. */
static void test_leave_and_return(void **state) {
        const char *ubrn = "300000000004";
        long long version = q_int(E.db, "SELECT version FROM ers_referral WHERE ubrn = ?", ubrn);
        long long rows = audit_rows(ubrn);
        (void) state;

        change(ubrn, "delist", NULL);
        struct run r = run_once();
        assert_int_equal(r.status, 0);
        assert_contains(r.err, "UBRN 300000000004: left the worklists; its rows stay in the PAS");
        run_free(&r);
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM ers_ledger WHERE ubrn = ? AND left_worklist_at IS NOT NULL", ubrn),
                         1);
        assert_int_equal(q_int(E.db, "SELECT version FROM ers_referral WHERE ubrn = ?", ubrn), version);
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM ers_worklist_entry WHERE ubrn = ?", ubrn), 0);
        assert_int_equal(audit_rows(ubrn), rows + 1);
        struct audit_row a = last_row(ubrn);
        assert_string_equal(a.event, "LEFT_WORKLIST");
        assert_int_equal(a.version, version);
        row_free(&a);

        run_once_ok(); /* still gone: nothing more to say */
        assert_int_equal(audit_rows(ubrn), rows + 1);

        change(ubrn, "relist", NULL);
        run_once_ok();
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM ers_ledger WHERE ubrn = ? AND left_worklist_at IS NULL", ubrn), 1);
        assert_int_equal(audit_rows(ubrn), rows + 2);
        a = last_row(ubrn);
        assert_string_equal(a.event, "RETURNED");
        assert_contains(a.detail, "listed again on worklist cardiology");
        row_free(&a);
}

static void test_audit_command(void **state) {
        static const char *const table[] = { "audit", "300000000011", NULL };
        static const char *const json[] = { "audit", "--json", "300000000011", NULL };
        static const char *const unknown[] = { "audit", "300000099999", NULL };
        static const char *const bad[] = { "audit", "30000", NULL };
        (void) state;

        struct run r = run_args(table);
        assert_int_equal(r.status, 0);
        assert_contains(r.out, "SEQ");
        assert_contains(r.out, "NEW");
        assert_contains(r.out, "UPDATED");
        assert_contains(r.out, "attachment revised: ");
        char *id = q_text(E.db, "SELECT document_id FROM ers_document WHERE ubrn = ? AND revision = 2", "300000000011");
        assert_contains(r.out, id);
        run_free(&r);

        r = run_args(json);
        assert_int_equal(r.status, 0);
        json_object *o = json_tokener_parse(r.out);
        assert_non_null(o);
        assert_string_equal(jstr(o, "ubrn"), "300000000011");
        json_object *rows = json_object_object_get(o, "audit");
        assert_int_equal(json_object_array_length(rows), audit_rows("300000000011"));
        json_object *second = json_object_array_get_idx(rows, 1);
        assert_int_equal(json_object_get_int64(json_object_object_get(second, "seq")), 2);
        assert_string_equal(jstr(second, "event"), "UPDATED");
        bool found = false;
        json_object *docs = json_object_object_get(second, "documents");
        for (size_t i = 0; i < json_object_array_length(docs); i++) {
                json_object *d = json_object_array_get_idx(docs, i);
                if (strcmp(jstr(d, "document_id"), id) == 0) {
                        found = true;
                        assert_int_equal(json_object_get_int64(json_object_object_get(d, "revision")), 2);
                        assert_int_equal(strlen(jstr(d, "sha256")), 64);
                }
        }
        assert_true(found);
        json_object_put(o);
        free(id);
        run_free(&r);

        r = run_args(unknown);
        assert_int_equal(r.status, 1);
        assert_contains(r.err, "UBRN 300000099999: unknown to this PAS");
        run_free(&r);
        r = run_args(bad);
        assert_int_equal(r.status, 2);
        run_free(&r);
}

static void test_reconcile_clean(void **state) {
        static const char *const reconcile[] = { "reconcile", NULL };
        (void) state;

        long long a008 = stat_count(&E.mock, "A008");
        struct run r = run_args(reconcile);
        if (r.status != 0)
                fail_msg("reconcile exited %d: %s%s", r.status, r.out, r.err);
        assert_contains(r.out, "reconcile: 12 listed on the latest worklists: 0 missing, 0 stale;");
        assert_contains(r.out, "0 unknown to e-RS");
        run_free(&r);
        assert_int_equal(stat_count(&E.mock, "A008"), a008); /* no worklist call spent */
}

/* One referral missing (its rows removed by hand, its ledger row left), one
 * stale (e-RS has a newer version the last round could not read), one unknown
 * to e-RS: each listed by UBRN, exit 1. */
static void test_reconcile_finds_missing_stale_unknown(void **state) {
        static const char *const once[] = { "--once", NULL }, *const reconcile[] = { "reconcile", NULL };
        (void) state;

        assert_int_equal(engine_exec(E.connection, "DELETE FROM ers_referral WHERE ubrn = '300000000000'", false), 0);
        assert_int_equal(mock_post(&E.mock, "/_mock/bump?ubrn=300000000006"), 200);
        assert_int_equal(mock_post(&E.mock, "/_mock/fault?endpoint=A005&kind=503&ubrn=300000000006&count=10"), 200);
        change("300000000003", "gone", NULL);
        /* One try: the 503s are the answer at once, not after ers.tries' back-offs (15 s and more). */
        struct run r = run_ersd(E.conf_one_try, E.manifest, once, NULL);
        assert_int_equal(r.status, 1); /* 300000000006 not read */
        run_free(&r);
        assert_int_equal(mock_post(&E.mock, "/_mock/fault/clear"), 200);

        long long a008 = stat_count(&E.mock, "A008"), a005 = stat_count(&E.mock, "A005");
        r = run_args(reconcile);
        assert_int_equal(r.status, 1);
        assert_contains(r.out, "MISSING  300000000000");
        assert_contains(r.out, "STALE    300000000006");
        assert_contains(r.out, "UNKNOWN  300000000003");
        assert_contains(r.out, "1 missing, 1 stale;");
        assert_contains(r.out, "1 unknown to e-RS");
        run_free(&r);
        assert_int_equal(stat_count(&E.mock, "A008"), a008);
        /* one A005 per referral in the PAS on no worklist: the gone one and the related one */
        assert_int_equal(stat_count(&E.mock, "A005") - a005, 2);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_first_sync_one_new_row_each),
                cmocka_unit_test(test_noop_sync_writes_no_row),
                cmocka_unit_test(test_each_change_one_row),
                cmocka_unit_test(test_audit_row_in_the_same_transaction),
                cmocka_unit_test(test_older_version_ignored_and_logged),
                cmocka_unit_test(test_related_older_version_kept),
                cmocka_unit_test(test_documents_completed_one_row),
                cmocka_unit_test(test_leave_and_return),
                cmocka_unit_test(test_audit_command),
                cmocka_unit_test(test_reconcile_clean),
                cmocka_unit_test(test_reconcile_finds_missing_stale_unknown),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
