/* SPDX-License-Identifier: MIT */
#include "pas_whole.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "adapters/document_key.h"
#include "adapters/pas.h"
#include "adapters/pas_audit.h"
#include "adapters/pas_schedule.h"
#include "adapters/pas_status.h"
#include "tests/support/harness.h"
#include "tests/support/pas_data.h"

static const size_t widths[] = { 10, 12, 16, 32, 36, 40, 64, 65, 128, 255, 256, 512, 1024, 4000, 4096, 8192, 65535, 65536 };

char *pas_whole_text(size_t len, unsigned seed) {
        static const char *const mix[] = { "a", "'", "\xc3\xa9", "\\", "\xe2\x82\xac", "%", "\xf0\x9f\x98\x80", "_",
                                           "Z", "\xe4\xb8\xad", "\"", "\xc3\xbc", "\xef\xbf\xbd", "0", " " };
        char *s = malloc(len + 1);
        size_t pos = 0, k = seed;

        assert_non_null(s);
        while (pos < len) {
                size_t target = SIZE_MAX; /* where the next 4-byte character across a width starts */
                for (size_t w = 0; w < sizeof widths / sizeof widths[0]; w++)
                        if (widths[w] >= 2 && widths[w] - 2 >= pos && widths[w] - 2 < target)
                                target = widths[w] - 2;
                const char *c = mix[k++ % (sizeof mix / sizeof mix[0])];
                if (pos == target && len - pos >= 4)
                        c = "\xf0\x9f\x98\x80";
                else if (strlen(c) > len - pos || (target != SIZE_MAX && pos + strlen(c) > target))
                        c = "x";
                memcpy(s + pos, c, strlen(c));
                pos += strlen(c);
        }
        s[len] = '\0';
        return s;
}

void pas_whole_assert_read(struct db *raw, const char *sql, const char *param, const char *want) {
        const char *ps[] = { param };
        char *got = db_text(raw, sql, 1, ps, NULL);

        if (!got || strlen(got) != strlen(want) || memcmp(got, want, strlen(want)) != 0)
                fail_msg("%s: read back %zu bytes, not the %zu written%s", sql, got ? strlen(got) : 0, strlen(want),
                         got && strlen(got) == strlen(want) ? " (other bytes)" : "");
        free(got);
}

static void assert_same(const char *what, const char *got, const char *want) {
        if (!got || strcmp(got, want) != 0)
                fail_msg("%s: %zu bytes, not the %zu written", what, got ? strlen(got) : 0, strlen(want));
}

/* The document_id of the document (kind, id, occurrence) of `ubrn`, at `revision`, through the independent
 * connection: found by its key, as ersd finds it. */
static char *document_id_of(struct db *raw, const char *ubrn, const char *kind, const char *id, unsigned occurrence,
                            int revision) {
        char key[DOCUMENT_KEY_HEX + 1], rev[16];
        const char *ps[] = { ubrn, kind, key, rev };
        char *doc;

        assert_int_equal(document_key(id, occurrence, key), 0);
        snprintf(rev, sizeof rev, "%d", revision);
        doc = db_text(raw,
                      "SELECT document_id FROM ers_document WHERE ubrn = ? AND source_ubrn = ubrn AND kind = ? "
                      "AND attachment_key = ? AND revision = ?",
                      4, ps, NULL);
        assert_non_null(doc);
        return doc;
}

static void assert_bytes(struct db *raw, const char *document_id, const char *sha, int64_t size) {
        char hex[65];
        int64_t got = -1;

        assert_int_equal(db_document_sha256(raw, document_id, hex, &got), 0);
        assert_int_equal(got, size);
        assert_string_equal(hex, sha);
}

struct waiting_seen {
        const char *ubrn;
        const char *referral_priority; /* expected on the documents row (ers_referral's) */
        const char *retry_priority;    /* on the retry row (what the worklist said) */
        int rows;
};

static int on_waiting(void *userdata, const struct waiting_row *row) {
        struct waiting_seen *w = userdata;

        if (strcmp(row->ubrn, w->ubrn) != 0)
                return 0;
        if (row->kind == WAITING_DOCUMENTS) {
                assert_same("waiting documents row priority", row->priority, w->referral_priority);
                assert_int_equal(row->documents_owed, 1); /* an availability nobody knows: asked for again */
                assert_int_equal(row->documents_pending, 0);
        } else {
                assert_same("waiting retry row priority", row->priority, w->retry_priority);
        }
        w->rows++;
        return 0;
}

void pas_whole_texts(struct pas *p, const char *connection, const char *dir) {
        static const char ubrn[] = "000000000801";
        static const char ods[] = "ODSCODEOF40CHARACTERSABCDEFGHIJKLMNOPQRS"; /* 40 */
        struct errbuf e = { "" };
        struct db *raw = db_open(connection);
        struct referral r;
        struct worklist_entry w = { .ubrn = "000000000801", .version = 1 };
        char sha[65], now[32];
        int fd;
        char *t[24];
        struct pas_tx *tx = NULL;

        assert_non_null(raw);
        assert_int_equal(strlen(ods), 40);
        for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++) {
                static const size_t lens[] = { 70000, 70000, 70000, 70000, 300, 300, 100, 100, 100, 100, 70, 50,
                                               45, 45, 300, 40, 100, 100, 200, 60, 50, 100, 70000, 66000 };
                t[i] = pas_whole_text(lens[i], i + 1);
        }
        pas_data_referral(&r, ubrn, 1, PAS_DATA_NHS_VALID);
        r.specialty_display = t[0];
        r.state_comment = t[1];
        w.service_name = t[2];
        char *title = t[3], *id = t[4], *id2 = t[5];
        r.specialty = t[6];
        r.state = t[7];
        r.state_reason = t[8];
        w.referral_type = t[9];
        r.priority = t[10];
        r.pathway_start = t[11];
        r.appointment_start = t[12];
        r.appointment_end = t[13];
        r.request_id = t[14];
        w.service_id = t[15];
        r.status = t[16];
        r.intent = t[17];
        r.commissioning_org = (char *) ods;
        w.priority = t[21];
        r.clinical_info_first_submitted = t[20];

        fd = pas_data_file(dir, "whole-texts", 5000, 801, sha);
        struct document_rec d = pas_data_document(ubrn, id, 5000, sha);
        d.title = title;
        d.content_type = t[18];
        d.created = t[19];
        d.attached_by_user = t[20];
        d.attached_by_org = ods;
        struct document_rec pending = pas_data_document(ubrn, id2, 0, NULL);
        pending.fetched = false;
        pending.availability = t[21]; /* an availability code nobody knows, kept whole */
        pending.not_fetched_reason = "availability unknown: not fetched; checked again on a later run";
        pending.title = t[22];
        pending.content_type = t[23];

        /* written: nothing refused for its length, nothing parked */
        now_utc_iso(now);
        assert_int_equal(pas_begin(p, &tx, &e), 0);
        if (pas_put_referral(tx, &r, &w, "wl", &e) < 0 || pas_put_document(tx, &d, fd, NULL, &e) < 0 ||
            pas_put_document(tx, &pending, -1, NULL, &e) < 0 || pas_retry_seen(tx, "wl", &w, now, &e) < 0 ||
            pas_put_ledger(tx, ubrn, 1, false, "wl", NULL, &e) < 0)
                fail_msg("a referral with long texts refused: %s", e.msg);
        assert_int_equal(pas_commit(tx, &e), 0);

        /* read back whole and exactly, as a PAS reads it */
        static const struct {
                const char *column;
                int text;
        } whole_columns[] = {
                { "specialty_display", 0 }, { "state_comment", 1 },  { "service_name", 2 },  { "specialty", 6 },
                { "state", 7 },             { "state_reason", 8 },   { "referral_type", 9 }, { "priority", 10 },
                { "pathway_start", 11 },    { "appointment_start", 12 }, { "appointment_end", 13 },
                { "request_id", 14 },       { "service_id", 15 },    { "status", 16 },       { "intent", 17 },
                { "clinical_info_first_submitted", 20 },
        };
        for (size_t i = 0; i < sizeof whole_columns / sizeof whole_columns[0]; i++) {
                char sql[128];
                snprintf(sql, sizeof sql, "SELECT %s FROM ers_referral WHERE ubrn = ?", whole_columns[i].column);
                pas_whole_assert_read(raw, sql, ubrn, t[whole_columns[i].text]);
        }
        pas_whole_assert_read(raw, "SELECT commissioning_org FROM ers_referral WHERE ubrn = ?", ubrn, ods);
        pas_whole_assert_read(raw, "SELECT service_name FROM ers_retry WHERE ubrn = ?", ubrn, t[2]);
        pas_whole_assert_read(raw, "SELECT priority FROM ers_retry WHERE ubrn = ?", ubrn, t[21]);
        pas_whole_assert_read(raw, "SELECT service_name FROM ers_referral_inbox WHERE ubrn = ?", ubrn, t[2]);

        char *doc = document_id_of(raw, ubrn, "ATTACHMENT", id, 0, 1);
        pas_whole_assert_read(raw, "SELECT attachment_id FROM ers_document WHERE document_id = ?", doc, id);
        pas_whole_assert_read(raw, "SELECT title FROM ers_document WHERE document_id = ?", doc, title);
        pas_whole_assert_read(raw, "SELECT content_type FROM ers_document WHERE document_id = ?", doc, t[18]);
        pas_whole_assert_read(raw, "SELECT created FROM ers_document WHERE document_id = ?", doc, t[19]);
        pas_whole_assert_read(raw, "SELECT attached_by_user FROM ers_document WHERE document_id = ?", doc, t[20]);
        pas_whole_assert_read(raw, "SELECT attached_by_org FROM ers_document WHERE document_id = ?", doc, ods);
        assert_bytes(raw, doc, sha, 5000);
        char *doc2 = document_id_of(raw, ubrn, "ATTACHMENT", id2, 0, 1);
        pas_whole_assert_read(raw, "SELECT attachment_id FROM ers_document WHERE document_id = ?", doc2, id2);
        pas_whole_assert_read(raw, "SELECT availability FROM ers_document WHERE document_id = ?", doc2, t[21]);
        pas_whole_assert_read(raw, "SELECT title FROM ers_document WHERE document_id = ?", doc2, t[22]);
        free(doc2);

        /* and through every read of pas.h that returns them */
        struct document_state st;
        assert_int_equal(pas_document_get(p, ubrn, ubrn, DOCUMENT_ATTACHMENT, id, 0, &st, &e), 0);
        assert_true(st.found && st.fetched);
        assert_same("pas_document_get created", st.created, t[19]);
        document_state_free(&st);
        struct document_known *known = NULL;
        size_t n_known = 0;
        assert_int_equal(pas_documents_known(p, ubrn, &known, &n_known, &e), 0);
        assert_int_equal(n_known, 2);
        for (size_t i = 0; i < n_known; i++) {
                bool first = strcmp(known[i].attachment_id, id) == 0;
                assert_same("pas_documents_known attachment_id", known[i].attachment_id, first ? id : id2);
                assert_int_equal(known[i].kind, DOCUMENT_ATTACHMENT);
                assert_int_equal(known[i].occurrence, 0);
                if (first)
                        assert_same("pas_documents_known created", known[i].state.created, t[19]);
        }
        documents_known_free(known, n_known);
        struct stored_attachment *atts = NULL;
        size_t n_atts = 0;
        assert_int_equal(pas_attachments_stored(p, ubrn, ubrn, &atts, &n_atts, &e), 0);
        assert_int_equal(n_atts, 2);
        assert_same("pas_attachments_stored", atts[strcmp(id, id2) < 0 ? 0 : 1].id, id);
        stored_attachments_free(atts, n_atts);
        struct referral_stored rs;
        assert_int_equal(pas_referral_stored(p, ubrn, &rs, &e), 0);
        assert_same("pas_referral_stored specialty", rs.specialty, t[6]);
        assert_same("pas_referral_stored state", rs.state, t[7]);
        assert_same("pas_referral_stored service_id", rs.service_id, t[15]);
        assert_same("pas_referral_stored appointment_start", rs.appointment_start, t[12]);
        referral_stored_free(&rs);
        struct due_referral *due = NULL;
        size_t n_due = 0;
        assert_int_equal(pas_due_referrals(p, now, 10, &due, &n_due, &e), 0);
        assert_true(n_due >= 1);
        assert_string_equal(due[0].ubrn, ubrn);
        assert_same("pas_due_referrals service_name", due[0].service_name, t[2]);
        assert_same("pas_due_referrals referral_type", due[0].referral_type, t[9]);
        due_referrals_free(due, n_due);
        struct referral_origin o;
        assert_int_equal(pas_referral_origin(p, ubrn, &o, &e), 0);
        assert_true(o.found);
        assert_same("pas_referral_origin service_name", o.service_name, t[2]);
        assert_same("pas_referral_origin service_id", o.service_id, t[15]);
        referral_origin_free(&o);
        struct waiting_seen ws = { .ubrn = ubrn, .referral_priority = t[10], .retry_priority = t[21] };
        assert_int_equal(pas_waiting_list(p, on_waiting, &ws, &e), 0);
        assert_int_equal(ws.rows, 2); /* documents owed (the ledger), and queued (ers_retry) */

        /* the same again: recognised by its key, nothing written */
        bool written = true;
        assert_int_equal(pas_begin(p, &tx, &e), 0);
        assert_int_equal(pas_put_document(tx, &d, fd, &written, &e), 0);
        assert_false(written);
        assert_int_equal(pas_put_document(tx, &pending, -1, &written, &e), 0);
        assert_false(written);
        assert_int_equal(pas_commit(tx, &e), 0);
        const char *u[] = { ubrn };
        assert_int_equal(db_int(raw, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ?", 1, u), 2);

        free(doc);
        close(fd);
        for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++)
                free(t[i]);
        db_close(raw);
}

/* Whether s is well-formed UTF-8 (no character cut, no stray continuation byte). */
static bool utf8_whole(const char *s) {
        for (const unsigned char *u = (const unsigned char *) s; *u;) {
                size_t n = *u < 0x80 ? 1 : (*u & 0xe0) == 0xc0 ? 2 : (*u & 0xf0) == 0xe0 ? 3 : (*u & 0xf8) == 0xf0 ? 4 : 0;
                if (n == 0)
                        return false;
                for (size_t i = 1; i < n; i++)
                        if ((u[i] & 0xc0) != 0x80)
                                return false;
                u += n;
        }
        return true;
}

/* The column holds a prefix of `full`, cut on a character within `max` bytes (and at most 3 short of it). */
static void assert_cut(struct db *raw, const char *sql, const char *param, const char *full, size_t max) {
        const char *ps[] = { param };
        char *got = db_text(raw, sql, 1, ps, NULL);

        assert_non_null(got);
        if (strlen(got) > max || strlen(got) + 3 < max || strncmp(got, full, strlen(got)) != 0 || !utf8_whole(got))
                fail_msg("%s: %zu bytes stored of %zu, not a prefix cut on a character within %zu", sql, strlen(got),
                         strlen(full), max);
        free(got);
}

void pas_whole_own_texts(struct pas *p, const char *connection, const char *dir) {
        static const char ubrn[] = "000000000803";
        struct errbuf e = { "" };
        struct db *raw = db_open(connection);
        struct referral r;
        struct worklist_entry w = { .ubrn = "000000000803", .version = 1, .priority = "URGENT" };
        char *reason = pas_whole_text(600, 41), *retry = pas_whole_text(1000, 42), *result = pas_whole_text(600, 43);
        char now[32];
        bool written = true;
        struct pas_tx *tx = NULL;

        (void) dir;
        assert_non_null(raw);
        pas_data_referral(&r, ubrn, 1, PAS_DATA_NHS_VALID);
        struct document_rec d = pas_data_document(ubrn, "att-reason", 0, NULL);
        d.fetched = false;
        d.availability = "PENDING";
        d.not_fetched_reason = reason;
        struct retry_failure f = { .attempts = 1, .at = "2026-11-20T09:00:00Z", .next_at = "2026-11-20T09:01:00Z",
                                   .reason = retry };

        now_utc_iso(now);
        assert_int_equal(pas_begin(p, &tx, &e), 0);
        if (pas_put_referral(tx, &r, NULL, "wl", &e) < 0 || pas_put_document(tx, &d, -1, NULL, &e) < 0 ||
            pas_put_ledger(tx, ubrn, 1, false, "wl", NULL, &e) < 0 || pas_retry_seen(tx, "wl", &w, now, &e) < 0 ||
            pas_retry_fail(tx, ubrn, "wl", &f, &e) < 0 ||
            pas_poll_put(tx, "wl", now, result, NULL, now, -1, &e) < 0)
                fail_msg("ersd's own long texts refused: %s", e.msg);
        assert_int_equal(pas_commit(tx, &e), 0);
        assert_cut(raw, "SELECT not_fetched_reason FROM ers_document WHERE ubrn = ?", ubrn, reason, 255);
        assert_cut(raw, "SELECT reason FROM ers_retry WHERE ubrn = ?", ubrn, retry, 511);
        assert_cut(raw, "SELECT last_result FROM ers_poll WHERE worklist = ?", "wl", result, 255);

        /* the same reason again: the row stands as it is */
        assert_int_equal(pas_begin(p, &tx, &e), 0);
        assert_int_equal(pas_put_document(tx, &d, -1, &written, &e), 0);
        assert_false(written);
        assert_int_equal(pas_commit(tx, &e), 0);

        /* a line that fits but whose maker cut its last character (snprintf into a buffer): stored
         * without the piece */
        static const char cut_short[] = "e-RS would not release it: caf\xc3\xa9 \xf0\x9f";
        struct document_rec d2 = pas_data_document(ubrn, "att-cut", 0, NULL);
        d2.fetched = false;
        d2.availability = "AVAILABLE";
        d2.not_fetched_reason = cut_short;
        assert_int_equal(pas_begin(p, &tx, &e), 0);
        if (pas_put_document(tx, &d2, -1, NULL, &e) < 0)
                fail_msg("a reason ending in a cut character refused: %s", e.msg);
        assert_int_equal(pas_commit(tx, &e), 0);
        pas_whole_assert_read(raw, "SELECT not_fetched_reason FROM ers_document WHERE attachment_id = 'att-cut' AND ubrn = ?",
                    ubrn, "e-RS would not release it: caf\xc3\xa9 ");

        free(reason);
        free(retry);
        free(result);
        db_close(raw);
}

void pas_whole_identity(struct pas *p, const char *connection, const char *dir) {
        static const char ubrn[] = "000000000802";
        static const struct {
                enum document_kind kind;
                const char *kind_name;
                const char *id;
                unsigned occurrence;
                int64_t size;
        } docs[] = {
                { DOCUMENT_CRI, "CRI", "CRI-v1", 0, 1000 },
                { DOCUMENT_ATTACHMENT, "ATTACHMENT", "CRI-v1", 0, 2000 },
                { DOCUMENT_ATTACHMENT, "ATTACHMENT", "dup", 0, 3000 },
                { DOCUMENT_ATTACHMENT, "ATTACHMENT", "dup", 1, 4000 },
        };
        enum { N = sizeof docs / sizeof docs[0] };
        struct errbuf e = { "" };
        struct db *raw = db_open(connection);
        struct referral r;
        struct document_rec rec[N];
        char sha[N][65], name[32], sha_new[65];
        int fd[N], fd_new;
        bool written;
        struct pas_tx *tx = NULL;

        assert_non_null(raw);
        pas_data_referral(&r, ubrn, 1, PAS_DATA_NHS_VALID);
        for (size_t i = 0; i < N; i++) {
                snprintf(name, sizeof name, "identity-%zu", i);
                fd[i] = pas_data_file(dir, name, docs[i].size, 900 + i, sha[i]);
                rec[i] = pas_data_document(ubrn, docs[i].id, docs[i].size, sha[i]);
                rec[i].kind = docs[i].kind;
                rec[i].occurrence = docs[i].occurrence;
        }

        /* a new referral, as the sync writes one: nothing looked up first */
        assert_int_equal(pas_begin(p, &tx, &e), 0);
        pas_referral_fresh(tx, ubrn);
        assert_int_equal(pas_put_referral(tx, &r, NULL, "wl", &e), 0);
        for (size_t i = 0; i < N; i++)
                if (pas_put_document(tx, &rec[i], fd[i], &written, &e) < 0 || !written)
                        fail_msg("document %zu (%s %s, occurrence %u): %s", i, docs[i].kind_name, docs[i].id,
                                 docs[i].occurrence, e.msg);
        assert_int_equal(pas_put_ledger(tx, ubrn, 1, true, "wl", NULL, &e), 0);
        assert_int_equal(pas_commit(tx, &e), 0);

        /* four documents, each with its own bytes */
        const char *u[] = { ubrn };
        assert_int_equal(db_int(raw, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ?", 1, u), N);
        for (size_t i = 0; i < N; i++) {
                char *doc = document_id_of(raw, ubrn, docs[i].kind_name, docs[i].id, docs[i].occurrence, 1);
                char occurrence[16];
                snprintf(occurrence, sizeof occurrence, "%u", docs[i].occurrence);
                assert_bytes(raw, doc, sha[i], docs[i].size);
                pas_whole_assert_read(raw, "SELECT attachment_id FROM ers_document WHERE document_id = ?", doc, docs[i].id);
                pas_whole_assert_read(raw, "SELECT kind FROM ers_document WHERE document_id = ?", doc, docs[i].kind_name);
                pas_whole_assert_read(raw, "SELECT occurrence FROM ers_document WHERE document_id = ?", doc, occurrence);
                free(doc);
                struct document_state st;
                assert_int_equal(pas_document_get(p, ubrn, ubrn, docs[i].kind, docs[i].id, docs[i].occurrence, &st,
                                                  &e), 0);
                assert_true(st.found && st.fetched);
                assert_string_equal(st.sha256, sha[i]);
                document_state_free(&st);
        }
        struct document_known *known = NULL;
        size_t n_known = 0;
        assert_int_equal(pas_documents_known(p, ubrn, &known, &n_known, &e), 0);
        assert_int_equal(n_known, N);
        for (size_t i = 0; i < N; i++) {
                size_t k = 0;
                while (k < n_known && !(known[k].kind == docs[i].kind && known[k].occurrence == docs[i].occurrence &&
                                        strcmp(known[k].attachment_id, docs[i].id) == 0))
                        k++;
                assert_true(k < n_known);
                assert_string_equal(known[k].state.sha256, sha[i]);
        }
        documents_known_free(known, n_known);
        assert_int_equal(db_int(raw, "SELECT documents_fetched FROM ers_referral_inbox WHERE ubrn = ?", 1, u), N);

        /* written again, as a later round would: each recognised, nothing written */
        assert_int_equal(pas_begin(p, &tx, &e), 0);
        for (size_t i = 0; i < N; i++) {
                assert_int_equal(pas_put_document(tx, &rec[i], fd[i], &written, &e), 0);
                assert_false(written);
        }
        /* the second "dup" with new bytes: a revision of it alone */
        fd_new = pas_data_file(dir, "identity-new", 5000, 999, sha_new);
        struct document_rec revised = rec[3];
        revised.size = revised.declared_size = 5000;
        revised.sha256 = sha_new;
        assert_int_equal(pas_put_document(tx, &revised, fd_new, &written, &e), 0);
        assert_true(written);
        assert_int_equal(pas_commit(tx, &e), 0);
        char *doc = document_id_of(raw, ubrn, "ATTACHMENT", "dup", 1, 2);
        assert_bytes(raw, doc, sha_new, 5000);
        free(doc);
        doc = document_id_of(raw, ubrn, "ATTACHMENT", "dup", 0, 1);
        assert_bytes(raw, doc, sha[2], docs[2].size);
        free(doc);
        assert_int_equal(db_int(raw, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ? AND revision = 2", 1, u), 1);
        assert_int_equal(db_int(raw, "SELECT documents_fetched FROM ers_referral_inbox WHERE ubrn = ?", 1, u), N);

        /* the attachments as the audit trail sees them: letters apart, each occurrence its own */
        struct stored_attachment *atts = NULL;
        size_t n_atts = 0;
        assert_int_equal(pas_attachments_stored(p, ubrn, ubrn, &atts, &n_atts, &e), 0);
        assert_int_equal(n_atts, 3);
        assert_string_equal(atts[0].id, "CRI-v1");
        assert_string_equal(atts[1].id, "dup");
        assert_int_equal(atts[1].occurrence, 0);
        assert_string_equal(atts[2].id, "dup");
        assert_int_equal(atts[2].occurrence, 1);
        stored_attachments_free(atts, n_atts);
        assert_int_equal(pas_begin(p, &tx, &e), 0);
        assert_int_equal(pas_attachment_set_removed(tx, ubrn, ubrn, "dup", 1, true, &e), 0);
        assert_int_equal(pas_commit(tx, &e), 0);
        assert_int_equal(db_int(raw,
                                "SELECT COUNT(*) FROM ers_document WHERE ubrn = ? AND removed_at IS NOT NULL "
                                "AND occurrence = 1",
                                1, u),
                         2); /* both revisions of the second "dup", nothing else */
        assert_int_equal(db_int(raw, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ? AND removed_at IS NOT NULL",
                                1, u),
                         2);

        for (size_t i = 0; i < N; i++)
                close(fd[i]);
        close(fd_new);
        db_close(raw);
}
