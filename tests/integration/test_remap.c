/* SPDX-License-Identifier: MIT */
/*
 * End to end: `ersd remap` against a PAS in SQLite that a sync from the mock
 * e-RS filled.  After the trust changes database.mapping, `remap --all`
 * derives each referral's staging rows again and runs the new mapping once
 * per referral version, with one REMAPPED audit row each, from the A005
 * answers the PAS kept: the mock's call record shows no request.  A second
 * remap writes again (the operator asked for it); a UBRN the PAS kept no
 * answer of, or does not know, is said in one line.
 *
 * The tests run in order and share one mock and one database.
 *
 * Then the documents, on SQLite, PostgreSQL and MariaDB: a referral whose
 * document rows an old build left without the columns the answer gives (and
 * with an attachment in two revisions) is remapped: every row's columns are
 * derived again, database.mapping.document runs again with the stored bytes
 * (:content), and no part, revision, ledger row or answer changes; a second
 * remap changes nothing; a mapping that fails leaves everything as it was;
 * a row whose version's answer was pruned keeps its columns, and is mapped.
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
#include <openssl/evp.h>

#include "adapters/mapping.h"
#include "tests/support/engines.h"
#include "tests/support/testutil.h"

#define MAP_SQL "INSERT INTO pas_map (ubrn, version, priority, tag) VALUES (:ubrn, :version, :priority, '%s')"

static struct {
        struct mock mock;
        char *dir; /* owned temp directory */
        char conf[512];
        char connection[600];
        json_object *manifest; /* owned */
        struct db *db;
} E;

#define DOC_SQL                                                                                                        \
        "INSERT INTO pas_doc (ubrn, document_id, revision, document_type, description, sha256, content, tag) "         \
        "VALUES (:ubrn, :document_id, :revision, :document_type, :description, :sha256, :content, '%s')"

/* E.conf with the referral mapping, and with `documents` the document
 * mapping (its :content too), tagging their rows `tag`; every other field
 * listed unmapped. */
static void conf_with(const char *tag, bool documents) {
        char sql[2][512], unmapped[2048] = "", lines[4096], state[600];
        struct pas_map_sql m[2] = { { 0 } };
        struct errbuf e = { { 0 } };
        size_t o = 0;

        snprintf(sql[0], sizeof sql[0], MAP_SQL, tag);
        snprintf(sql[1], sizeof sql[1], DOC_SQL, tag);
        assert_int_equal(pas_map_rewrite(PAS_MAP_REFERRAL, sql[0], &m[0], &e), 0);
        if (documents)
                assert_int_equal(pas_map_rewrite(PAS_MAP_DOCUMENT, sql[1], &m[1], &e), 0);
        for (size_t i = 0; i < MAP_FIELDS_; i++) {
                const char *name = pas_map_field_name((enum pas_map_field) i);
                if (pas_map_uses(&m[0], (enum pas_map_field) i) || pas_map_uses(&m[1], (enum pas_map_field) i) ||
                    strcmp(name, "ubrn") == 0)
                        continue;
                o += (size_t) snprintf(unmapped + o, sizeof unmapped - o, "%s\"%s\"", o ? ", " : "", name);
        }
        pas_map_sql_free(&m[0]);
        pas_map_sql_free(&m[1]);
        if (documents)
                snprintf(lines, sizeof lines,
                         "  mapping: {\n    referral = \"%s\";\n    document = \"%s\";\n    unmapped = [ %s ];\n  };\n",
                         sql[0], sql[1], unmapped);
        else
                snprintf(lines, sizeof lines, "  mapping: {\n    referral = \"%s\";\n    unmapped = [ %s ];\n  };\n",
                         sql[0], unmapped);
        snprintf(state, sizeof state, "%s/state", E.dir);
        assert_int_equal(write_test_config(E.conf, E.mock.base_url, NULL, E.connection, lines, state, NULL), 0);
}

/* Runs ersd with E.conf and args; fails the test, with what ersd said, unless it exits 0. */
static void run_ok(const char *const *args) {
        struct run r = run_ersd(E.conf, E.manifest, args, NULL);

        if (r.status != 0)
                fail_msg("ersd %s exited %d: %s", args[0], r.status, r.err);
        run_free(&r);
}

static long long count(const char *sql) {
        return q_int(E.db, sql, NULL);
}

/* The API and store requests the mock answered since its record was reset. */
static size_t mock_requests(void) {
        json_object *rec = mock_get(&E.mock, "/_mock/calls");
        size_t n;

        assert_non_null(rec);
        n = json_object_array_length(json_object_object_get(rec, "calls"));
        json_object_put(rec);
        return n;
}

static int group_setup(void **state) {
        static const char *const args[] = { "--referrals", "6", "--attachments", "1", NULL };
        (void) state;
        E.dir = tmpdir_make();
        if (!E.dir || mock_start(&E.mock, args) < 0)
                return -1;
        snprintf(E.conf, sizeof E.conf, "%s/ersd.conf", E.dir);
        snprintf(E.connection, sizeof E.connection, "Driver=SQLite3;Database=%s/pas.db", E.dir);
        E.manifest = mock_get(&E.mock, "/_mock/manifest");
        E.db = db_open(E.connection);
        if (!E.manifest || !E.db)
                return -1;
        return db_exec(E.db, "CREATE TABLE pas_map (ubrn CHAR(12) NOT NULL, version BIGINT NOT NULL, "
                             "priority VARCHAR(32), tag VARCHAR(8) NOT NULL)");
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

static void test_remap_all_maps_each_version_once_without_ers(void **state) {
        long long referrals;
        struct run r;

        (void) state;
        conf_with("A", false);
        run_ok(ARGS("--init-db"));
        run_ok(ARGS("--once"));
        referrals = count("SELECT COUNT(*) FROM ers_referral");
        assert_true(referrals >= 6);
        assert_int_equal(count("SELECT COUNT(*) FROM pas_map WHERE tag = 'A'"), referrals);

        /* the trust changes its mapping, and a staging value is altered by hand */
        conf_with("B", false);
        assert_int_equal(db_exec(E.db, "UPDATE ers_referral SET priority = 'ALTERED'"), 0);
        assert_true(mock_post(&E.mock, "/_mock/calls/reset") == 200);
        r = run_ersd(E.conf, E.manifest, ARGS("remap", "--all"), NULL);
        if (r.status != 0)
                fail_msg("ersd remap --all exited %d: %s", r.status, r.err);
        assert_non_null(strstr(r.out, "remapped, 0 without an answer kept, 0 failed"));
        run_free(&r);
        assert_int_equal(mock_requests(), 0);
        /* each current version once, into the new mapping, with its audit row */
        assert_int_equal(count("SELECT COUNT(*) FROM pas_map m JOIN ers_referral r ON r.ubrn = m.ubrn "
                               "AND r.version = m.version WHERE m.tag = 'B'"),
                         referrals);
        assert_int_equal(count("SELECT COUNT(*) FROM pas_map WHERE tag = 'B'"), referrals);
        assert_int_equal(count("SELECT COUNT(*) FROM ers_audit WHERE event_type = 'REMAPPED'"), referrals);
        assert_int_equal(count("SELECT COUNT(DISTINCT ubrn) FROM ers_audit WHERE event_type = 'REMAPPED'"), referrals);
        /* the staging rows derived again from the answers */
        assert_int_equal(count("SELECT COUNT(*) FROM ers_referral WHERE priority = 'ALTERED'"), 0);
        assert_int_equal(count("SELECT COUNT(*) FROM pas_map WHERE tag = 'B' AND priority = 'ALTERED'"), 0);

        /* asked again, it writes again: one more row and audit row each */
        r = run_ersd(E.conf, E.manifest, ARGS("remap", "--all"), NULL);
        assert_int_equal(r.status, 0);
        run_free(&r);
        assert_int_equal(count("SELECT COUNT(*) FROM pas_map WHERE tag = 'B'"), 2 * referrals);
        assert_int_equal(count("SELECT COUNT(*) FROM ers_audit WHERE event_type = 'REMAPPED'"), 2 * referrals);
        assert_int_equal(mock_requests(), 0);
}

static void test_remap_without_an_answer_says_one_line(void **state) {
        char *ubrn = q_text(E.db, "SELECT MIN(ubrn) FROM ers_referral", NULL);
        char line[160];
        long long before;
        struct run r;

        (void) state;
        assert_non_null(ubrn);
        const char *const p[] = { ubrn };
        assert_int_equal(db_exec_with(E.db, "DELETE FROM ers_referral_answer WHERE ubrn = ?", 1, p), 0);
        before = count("SELECT COUNT(*) FROM ers_audit");
        r = run_ersd(E.conf, E.manifest, ARGS("remap", ubrn), NULL);
        assert_int_equal(r.status, 1);
        snprintf(line, sizeof line, "ersd: UBRN %s: no A005 answer kept for version ", ubrn);
        assert_non_null(strstr(r.out, line));
        run_free(&r);
        assert_int_equal(count("SELECT COUNT(*) FROM ers_audit"), before);

        r = run_ersd(E.conf, E.manifest, ARGS("remap", "000000000000"), NULL);
        assert_int_equal(r.status, 1);
        assert_non_null(strstr(r.out, "ersd: UBRN 000000000000: unknown to this PAS; nothing to remap\n"));
        run_free(&r);

        r = run_ersd(E.conf, E.manifest, ARGS("remap"), NULL);
        assert_int_equal(r.status, 2);
        assert_non_null(strstr(r.err, "ersd: remap takes UBRNs or --all\n"));
        run_free(&r);
        free(ubrn);
}

/* ---- the documents, on every engine ---------------------------------------- */

static struct engine G;

/* Each row's every column, its length first (NULL apart from ""), into md. */
static int digest_row(void *userdata, int ncols, char **vals, const size_t *lens) {
        EVP_MD_CTX *md = userdata;

        for (int i = 0; i < ncols; i++) {
                char head[32];
                int n = vals[i] ? snprintf(head, sizeof head, "%zu:", lens[i]) : snprintf(head, sizeof head, "N:");
                EVP_DigestUpdate(md, head, (size_t) n);
                if (vals[i])
                        EVP_DigestUpdate(md, vals[i], lens[i]);
        }
        return 0;
}

/* The SHA-256 of every row `sql` (with `param`, may be NULL) returns, in its order; the row count. */
static long long rows_digest(const char *sql, const char *param, char hex[65]) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char d[32];
        long long n;

        assert_non_null(md);
        assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
        n = db_each_row(E.db, sql, param ? 1 : 0, (const char *const[]){ param }, digest_row, md);
        assert_true(n >= 0);
        assert_int_equal(EVP_DigestFinal_ex(md, d, NULL), 1);
        EVP_MD_CTX_free(md);
        for (size_t i = 0; i < sizeof d; i++)
                snprintf(hex + 2 * i, 3, "%02x", d[i]);
        return n;
}

/* What a remap must never change, and what it derives. */
#define DERIVED_COLUMNS                                                                                                \
        "SELECT document_id, title, content_type, declared_size, availability, attached_by_user, "                     \
        "attached_by_org, created, document_type, description, attached_on_behalf_of FROM ers_document "               \
        "ORDER BY document_id"
#define DERIVED_OF_ONE                                                                                                 \
        "SELECT document_id, title, content_type, declared_size, availability, attached_by_user, "                     \
        "attached_by_org, created, document_type, description, attached_on_behalf_of FROM ers_document "               \
        "WHERE ubrn = ? ORDER BY document_id"
#define FIXED_COLUMNS                                                                                                  \
        "SELECT document_id, ubrn, source_ubrn, kind, attachment_id, revision, source_version, fetch_status, "         \
        "not_fetched_reason, size_bytes, sha256, part_count, stored_at, removed_at, occurrence, "                      \
        "attachment_key FROM ers_document ORDER BY document_id"
#define PARTS   "SELECT document_id, seq, data FROM ers_document_part ORDER BY document_id, seq"
#define LEDGER  "SELECT ubrn, version, complete, correlation_id, synced_at FROM ers_ledger ORDER BY ubrn"
#define ANSWERS "SELECT ubrn, version, sha256, received_at FROM ers_referral_answer ORDER BY ubrn, version, sha256"

struct untouched {
        char fixed[65], parts[65], ledger[65], answers[65];
        long long documents, parts_n;
};

static void untouched_read(struct untouched *u) {
        u->documents = rows_digest(FIXED_COLUMNS, NULL, u->fixed);
        u->parts_n = rows_digest(PARTS, NULL, u->parts);
        rows_digest(LEDGER, NULL, u->ledger);
        rows_digest(ANSWERS, NULL, u->answers);
}

static void assert_untouched(const struct untouched *before, const char *when) {
        struct untouched now;

        untouched_read(&now);
        if (now.documents != before->documents || strcmp(now.fixed, before->fixed) != 0)
                fail_msg("%s: a document row's identity, revision or fetch state changed (%lld rows, were %lld)", when,
                         now.documents, before->documents);
        if (now.parts_n != before->parts_n || strcmp(now.parts, before->parts) != 0)
                fail_msg("%s: ers_document_part changed (%lld parts, were %lld)", when, now.parts_n, before->parts_n);
        if (strcmp(now.ledger, before->ledger) != 0)
                fail_msg("%s: ers_ledger changed", when);
        if (strcmp(now.answers, before->answers) != 0)
                fail_msg("%s: ers_referral_answer changed", when);
}

/* The detail and documents of the latest REMAPPED row of ubrn (owned; NULL when none). */
static void last_remapped(const char *ubrn, char **detail, char **documents) {
        const char *const p[] = { ubrn };
        *detail = db_text(E.db,
                          "SELECT detail FROM ers_audit WHERE ubrn = ? AND event_type = 'REMAPPED' ORDER BY seq DESC",
                          1, p, NULL);
        *documents = db_text(E.db,
                             "SELECT documents FROM ers_audit WHERE ubrn = ? AND event_type = 'REMAPPED' "
                             "ORDER BY seq DESC",
                             1, p, NULL);
}

struct mapped_check {
        const char *tag;
        size_t checked;
};

#define MAPPED_CONTENT "SELECT content FROM pas_doc WHERE document_id = ? AND tag = ?"

/* A row of (document_id, sha256, fetch_status): the mapping's row of that tag holds its bytes. */
static int check_mapped_content(void *userdata, int ncols, char **vals, const size_t *lens) {
        struct mapped_check *c = userdata;
        const char *const p[] = { vals[0], c->tag };
        char hex[65];
        int64_t size = -1;

        (void) ncols;
        (void) lens;
        if (strcmp(vals[2], "FETCHED") != 0)
                return 0;
        if (db_bytes_sha256(E.db, MAPPED_CONTENT, 2, p, hex, &size) < 0)
                fail_msg("the mapping's row of document %s (tag %s) cannot be read", vals[0], c->tag);
        if (strcmp(hex, vals[1]) != 0)
                fail_msg("the mapping's :content of document %s (tag %s) is not the stored bytes", vals[0], c->tag);
        c->checked++;
        return 0;
}

static int group_setup_documents(enum engine_kind kind) {
        static const char *const args[] = {
                "--referrals", "4", "--attachments", "2", "--big-attachment", "3000000", NULL,
        };
        static const char *const blob[] = {
                [ENGINE_SQLITE] = "BLOB", [ENGINE_POSTGRESQL] = "BYTEA", [ENGINE_MARIADB] = "LONGBLOB"
        };
        char ddl[512];
        int r = engine_start(&G, kind);

        if (r < 0) {
                print_error("could not start a %s server (see above): %s\n", G.name, strerror(-r));
                return -1;
        }
        E.dir = tmpdir_make();
        if (!E.dir || mock_start(&E.mock, args) < 0 || engine_new_database(&G, E.connection, sizeof E.connection) < 0)
                return -1;
        snprintf(E.conf, sizeof E.conf, "%s/ersd.conf", E.dir);
        E.manifest = mock_get(&E.mock, "/_mock/manifest");
        E.db = db_open(E.connection);
        if (!E.manifest || !E.db)
                return -1;
        snprintf(ddl, sizeof ddl,
                 "CREATE TABLE pas_doc (ubrn CHAR(12) NOT NULL, document_id CHAR(36) NOT NULL, revision INTEGER, "
                 "document_type VARCHAR(64), description VARCHAR(4000), sha256 CHAR(64), content %s, "
                 "tag VARCHAR(8) NOT NULL)",
                 blob[kind]);
        if (db_exec(E.db, "CREATE TABLE pas_map (ubrn CHAR(12) NOT NULL, version BIGINT NOT NULL, "
                          "priority VARCHAR(32), tag VARCHAR(8) NOT NULL)") < 0 ||
            db_exec(E.db, ddl) < 0 ||
            db_exec(E.db, "CREATE UNIQUE INDEX pas_doc_once ON pas_doc (document_id, tag)") < 0)
                return -1;
        return 0;
}

static int group_setup_documents_sqlite(void **state) {
        (void) state;
        return group_setup_documents(ENGINE_SQLITE);
}

static int group_setup_documents_postgresql(void **state) {
        (void) state;
        return group_setup_documents(ENGINE_POSTGRESQL);
}

static int group_setup_documents_mariadb(void **state) {
        (void) state;
        return group_setup_documents(ENGINE_MARIADB);
}

static int group_teardown_documents(void **state) {
        group_teardown(state);
        engine_stop(&G);
        E.db = NULL;
        E.manifest = NULL;
        E.dir = NULL;
        return 0;
}

static char U[13]; /* the referral the document tests remap */

/* The number of REMAPPED rows whose detail holds `needle`. */
static long long remapped_saying(const char *needle) {
        char like[160];

        snprintf(like, sizeof like, "%%%s%%", needle);
        return q_int(E.db, "SELECT COUNT(*) FROM ers_audit WHERE event_type = 'REMAPPED' AND detail LIKE ?", like);
}

static void test_remap_documents_derived_again_bytes_untouched(void **state) {
        struct untouched before;
        char derived[65], derived_u[65], now[65], path[160], want[200], *id, *detail = NULL, *documents = NULL;
        const char *const p[] = { U };
        long long rows, all, referrals;

        (void) state;
        conf_with("A", true);
        run_ok(ARGS("--init-db"));
        run_ok(ARGS("--once"));

        /* a referral with a fetched attachment, which e-RS then revises: two revisions of it */
        char *u = q_text(E.db,
                         "SELECT MIN(ubrn) FROM ers_document WHERE kind = 'ATTACHMENT' AND fetch_status = 'FETCHED'",
                         NULL);
        assert_non_null(u);
        snprintf(U, sizeof U, "%s", u);
        free(u);
        id = q_text(E.db,
                    "SELECT MIN(attachment_id) FROM ers_document WHERE ubrn = ? AND source_ubrn = ubrn "
                    "AND kind = 'ATTACHMENT' AND fetch_status = 'FETCHED'",
                    U);
        assert_non_null(id);
        snprintf(path, sizeof path, "/_mock/change?ubrn=%s&what=attachment_revised&attachment=%s", U, id);
        assert_int_equal(mock_post(&E.mock, path), 200);
        run_ok(ARGS("--once"));
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ? AND revision = 2", U), 1);
        rows = q_int(E.db, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ?", U);
        assert_true(rows >= 4); /* the letter of each version, the attachments, the revision */
        all = q_int(E.db, "SELECT COUNT(*) FROM ers_document", NULL);
        referrals = q_int(E.db, "SELECT COUNT(*) FROM ers_referral", NULL);
        /* what the others hold too: a related referral's attachment, attachments not fetched */
        assert_true(q_int(E.db, "SELECT COUNT(*) FROM ers_document WHERE source_ubrn <> ubrn", NULL) > 0);
        assert_true(q_int(E.db, "SELECT COUNT(*) FROM ers_document WHERE fetch_status <> 'FETCHED'", NULL) > 0);

        rows_digest(DERIVED_COLUMNS, NULL, derived);
        rows_digest(DERIVED_OF_ONE, U, derived_u);
        untouched_read(&before);

        /* an older build that did not derive them; the trust changes its mapping */
        assert_int_equal(db_exec(E.db, "UPDATE ers_document SET document_type = NULL, description = NULL, "
                                       "title = 'ALTERED', attached_by_org = NULL, declared_size = NULL"),
                         0);
        rows_digest(DERIVED_COLUMNS, NULL, now);
        assert_string_not_equal(now, derived);
        conf_with("B", true);
        assert_true(mock_post(&E.mock, "/_mock/calls/reset") == 200);

        /* the one referral named: its rows, every revision, and only its */
        run_ok(ARGS("remap", U));
        assert_int_equal(mock_requests(), 0);
        rows_digest(DERIVED_OF_ONE, U, now);
        if (strcmp(now, derived_u) != 0)
                fail_msg("the document rows of %s are not as the sync derived them", U);
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM ers_document WHERE title = 'ALTERED'", NULL), all - rows);
        assert_untouched(&before, "remap UBRN");
        /* the document mapping ran again for every row, every revision, with the stored bytes */
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM pas_doc WHERE tag = 'B'", NULL), rows);
        assert_int_equal(q_int(E.db,
                               "SELECT COUNT(*) FROM pas_doc m JOIN ers_document d ON d.document_id = m.document_id "
                               "WHERE m.tag = 'B' AND d.ubrn = ? AND d.revision = m.revision "
                               "AND d.document_type = m.document_type",
                               U),
                         rows - q_int(E.db, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ? AND kind = 'CRI'", U));
        struct mapped_check c = { .tag = "B" };
        assert_int_equal(db_each_row(E.db, "SELECT document_id, sha256, fetch_status FROM ers_document WHERE ubrn = ?",
                                     1, p, check_mapped_content, &c),
                         rows);
        assert_true(c.checked >= 3);

        /* one audit row, naming each document it changed, by id and revision; no value of a free text */
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM ers_audit WHERE ubrn = ? AND event_type = 'REMAPPED'", U),
                         1);
        last_remapped(U, &detail, &documents);
        assert_non_null(detail);
        assert_non_null(documents);
        snprintf(want, sizeof want,
                 "document re-derived: %s (revision 1; declared_size, attached_by_org, document_type)", id);
        if (!strstr(detail, want))
                fail_msg("the REMAPPED row does not say \"%s\": %s", want, detail);
        snprintf(want, sizeof want, "document re-derived: %s (revision 2; ", id);
        assert_non_null(strstr(detail, want));
        assert_non_null(strstr(detail, "letter re-derived: CRI-v1 (revision 1)"));
        snprintf(want, sizeof want, "database.mapping.document run for %lld document row(s)", rows);
        assert_non_null(strstr(detail, want));
        assert_null(strstr(detail, "ALTERED"));
        assert_null(strstr(detail, "description"));
        assert_null(strstr(detail, "title"));
        long long lines = 0;
        for (const char *l = documents; *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : l + strlen(l))
                lines++;
        assert_int_equal(lines, rows);
        assert_no_patient_identifier("the REMAPPED row", detail, E.manifest, NULL);
        assert_no_patient_identifier("the REMAPPED row's documents", documents, E.manifest, NULL);
        free(detail);
        free(documents);

        /* every referral: the related referral's attachment and those not fetched too */
        conf_with("C", true);
        run_ok(ARGS("remap", "--all"));
        rows_digest(DERIVED_COLUMNS, NULL, now);
        if (strcmp(now, derived) != 0)
                fail_msg("after remap --all, the document rows are not as the sync derived them");
        assert_untouched(&before, "remap --all");
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM pas_doc WHERE tag = 'C'", NULL), all);
        assert_int_equal(remapped_saying(": document re-derived: "), 1); /* "related R: document …" */
        assert_int_equal(mock_requests(), 0);

        /* again, nothing to change: the same rows, the mapping run again, no document named */
        conf_with("D", true);
        long long audit = q_int(E.db, "SELECT COUNT(*) FROM ers_audit WHERE event_type = 'REMAPPED'", NULL);
        long long changed = remapped_saying("re-derived");
#define WITH_DOCUMENTS "SELECT COUNT(*) FROM ers_audit WHERE event_type = 'REMAPPED' AND documents IS NOT NULL"
        long long with_documents = q_int(E.db, WITH_DOCUMENTS, NULL);
        run_ok(ARGS("remap", "--all"));
        rows_digest(DERIVED_COLUMNS, NULL, now);
        assert_string_equal(now, derived);
        assert_untouched(&before, "a second remap --all");
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM pas_doc WHERE tag = 'D'", NULL), all);
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM ers_audit WHERE event_type = 'REMAPPED'", NULL),
                         audit + referrals);
        assert_int_equal(remapped_saying("re-derived"), changed);
        assert_int_equal(q_int(E.db, WITH_DOCUMENTS, NULL), with_documents);
        assert_int_equal(mock_requests(), 0);
        free(id);
}

static void test_remap_documents_failure_leaves_everything(void **state) {
        struct untouched before;
        char derived[65], now[65], line[120];
        const char *const p[] = { U };
        long long audit, mapped;
        struct run r;

        (void) state;
        assert_int_equal(db_exec_with(E.db, "UPDATE ers_document SET document_type = NULL WHERE ubrn = ?", 1, p), 0);
        rows_digest(DERIVED_COLUMNS, NULL, derived);
        untouched_read(&before);
        /* the mapping refuses the last row remap writes, after the others were written */
        char *last = q_text(E.db,
                            "SELECT document_id FROM ers_document WHERE ubrn = ? ORDER BY source_ubrn DESC, "
                            "source_version DESC, kind DESC, attachment_key DESC, revision DESC",
                            U);
        assert_non_null(last);
        const char *const q[] = { U, last };
        assert_int_equal(db_exec_with(E.db, "INSERT INTO pas_doc (ubrn, document_id, tag) VALUES (?, ?, 'E')", 2, q),
                         0);
        free(last);
        conf_with("E", true);
        audit = q_int(E.db, "SELECT COUNT(*) FROM ers_audit", NULL);
        mapped = q_int(E.db, "SELECT COUNT(*) FROM pas_map", NULL);

        r = run_ersd(E.conf, E.manifest, ARGS("remap", U), NULL);
        assert_int_equal(r.status, 1);
        snprintf(line, sizeof line, "UBRN %s not remapped, PAS unchanged: document ", U);
        if (!strstr(r.err, line) || !strstr(r.err, "SQLSTATE"))
                fail_msg("no line naming %s, the document and the SQLSTATE: %s", U, r.err);
        run_free(&r);
        rows_digest(DERIVED_COLUMNS, NULL, now);
        assert_string_equal(now, derived); /* still as altered: rolled back */
        assert_untouched(&before, "a failed remap");
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM ers_audit", NULL), audit);
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM pas_map", NULL), mapped);
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM pas_doc WHERE tag = 'E'", NULL), 1);
}

static void test_remap_documents_without_their_answer_left_as_stored(void **state) {
        const char *const p[] = { U };
        char *detail = NULL, *documents = NULL, want[120];
        long long rows, left, cri_old;

        (void) state;
        /* the answers of the referral's older versions pruned: what was written from them stays */
        assert_int_equal(db_exec_with(E.db,
                                      "DELETE FROM ers_referral_answer WHERE ubrn = ? AND version < "
                                      "(SELECT version FROM ers_referral WHERE ubrn = ers_referral_answer.ubrn)",
                                      1, p),
                         0);
        assert_int_equal(db_exec_with(E.db, "UPDATE ers_document SET document_type = 'ALTERED' WHERE ubrn = ?", 1, p),
                         0);
        const char *old = "FROM ers_document d WHERE d.ubrn = ? AND d.source_version < "
                          "(SELECT r.version FROM ers_referral r WHERE r.ubrn = d.source_ubrn)";
        char sql[300];
        snprintf(sql, sizeof sql, "SELECT COUNT(*) %s AND d.kind = 'ATTACHMENT'", old);
        left = q_int(E.db, sql, U);
        snprintf(sql, sizeof sql, "SELECT COUNT(*) %s AND d.kind = 'CRI'", old);
        cri_old = q_int(E.db, sql, U);
        assert_true(left >= 3); /* version 1's attachments, revision 1 of the revised one among them */
        rows = q_int(E.db, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ?", U);
        conf_with("F", true);

        run_ok(ARGS("remap", U));
        /* the current version's attachments derived again (its letter has no type); the older kept as they were */
        assert_int_equal(
                q_int(E.db, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ? AND document_type = 'ALTERED'", U), left);
        assert_int_equal(q_int(E.db,
                               "SELECT COUNT(*) FROM ers_document WHERE ubrn = ? AND kind = 'CRI' "
                               "AND document_type IS NULL",
                               U),
                         q_int(E.db, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ? AND kind = 'CRI'", U));
        assert_true(cri_old >= 1);
        last_remapped(U, &detail, &documents);
        assert_non_null(detail);
        snprintf(want, sizeof want, "; %lld document row(s) left as stored: no answer kept of their version lists them",
                 left);
        if (!strstr(detail, want))
                fail_msg("the REMAPPED row does not say \"%s\": %s", want + 2, detail);
        /* still mapped, every one */
        assert_int_equal(q_int(E.db, "SELECT COUNT(*) FROM pas_doc WHERE tag = 'F'", NULL), rows);
        free(detail);
        free(documents);
}

int main(void) {
        const char *tmp = getenv("TMPDIR");
        char work[200], logs[240];
        int failed = 0;
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_remap_all_maps_each_version_once_without_ers),
                cmocka_unit_test(test_remap_without_an_answer_says_one_line),
        };
        const struct CMUnitTest documents[] = {
                cmocka_unit_test(test_remap_documents_derived_again_bytes_untouched),
                cmocka_unit_test(test_remap_documents_failure_leaves_everything),
                cmocka_unit_test(test_remap_documents_without_their_answer_left_as_stored),
        };

        snprintf(work, sizeof work, "%s/ersd-test-remap-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(work) || snprintf(logs, sizeof logs, "%s/driver-logs", work) < 0 ||
            engine_odbcinst(work, logs) < 0) {
                fprintf(stderr, "test_remap: cannot make %s or its odbcinst.ini\n", work);
                return 1;
        }
        failed += cmocka_run_group_tests_name("remap", tests, group_setup, group_teardown);
        failed += cmocka_run_group_tests_name("remap documents sqlite", documents, group_setup_documents_sqlite,
                                              group_teardown_documents);
        failed += cmocka_run_group_tests_name("remap documents postgresql", documents, group_setup_documents_postgresql,
                                              group_teardown_documents);
        failed += cmocka_run_group_tests_name("remap documents mariadb", documents, group_setup_documents_mariadb,
                                              group_teardown_documents);
        tmpdir_remove(work);
        return failed ? 1 : 0;
}
