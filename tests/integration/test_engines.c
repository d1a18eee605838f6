/* SPDX-License-Identifier: MIT */
/*
 * The same behaviour on every database engine there is a server for here:
 * SQLite (a file), PostgreSQL and MariaDB (throwaway servers this binary
 * starts on loopback and stops, tests/support/engines.h).  Each engine is one
 * group of the same tests, each test on a fresh database: the PAS target
 * (adapters/pas.h) through the adapter that "auto" detects, read back through
 * a second, independent ODBC connection as a PAS would; then, on PostgreSQL
 * and MariaDB, the whole sync (build/ersd --once against the mock e-RS).
 *
 * A server that does not start is a failure, not a skip.  The binary runs
 * with its own odbcinst.ini (ODBCSYSINI): the system's, with psqlodbc's
 * CommLog=1 as Debian ships it and its Logdir in our temp directory, so that
 * what the driver would log is seen by the tests and lands nowhere else.
 *
 * Run from the repository root (it runs $ERSD_BUILD/ersd and mock-ers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <ftw.h>
#include <strings.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <sql.h>
#include <sqlext.h>

#include "adapters/document_key.h"
#include "adapters/mapping.h"
#include "adapters/pas.h"
#include "adapters/pas_audit.h"
#include "adapters/pas_lease.h"
#include "adapters/pas_outbox.h"
#include "adapters/pas_patient.h"
#include "adapters/pas_worklist.h"
#include "daemon/fhir.h"
#include "tests/support/engines.h"
#include "tests/support/pas_data.h"
#include "tests/support/pas_elements.h"
#include "tests/support/pas_whole.h"
#include "tests/support/testutil.h"

#define MIB PAS_DATA_MIB
#define NHS_VALID PAS_DATA_NHS_VALID
#define NHS_INVALID PAS_DATA_NHS_INVALID
#define MARKER "zz-marker-7c1e"  /* a value no log may ever hold */

static struct engine G;          /* the engine of the group running */
static char work[256];        /* this binary's temp dir: odbcinst.ini, driver logs, files */
static char driver_logs[300]; /* psqlodbc's Logdir */
static const char *self_path;

struct fix {
        char conn[600];
        struct pas *p;
        struct db *raw; /* the independent connection, opened on first use */
};

/* ---------------------------------------------------------------------- */
/* Helpers.                                                                */

static struct db *raw(struct fix *f) {
        if (!f->raw)
                f->raw = db_open(f->conn);
        assert_non_null(f->raw);
        return f->raw;
}

static long long count(struct fix *f, const char *table) {
        char sql[128];

        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", table);
        return db_int(raw(f), sql, 0, NULL);
}

/* The text of the first column, "" when NULL or no row (and *ret_null says which). */
static char *text_of(struct fix *f, const char *sql, const char *a, bool *ret_null) {
        const char *p[] = { a };
        char *s = db_text(raw(f), sql, a ? 1 : 0, p, NULL);

        if (ret_null)
                *ret_null = s == NULL;
        return s ? s : strdup("");
}

static void assert_q_text(struct fix *f, const char *sql, const char *a, const char *want) {
        char *got = text_of(f, sql, a, NULL);

        if (strcmp(got, want) != 0)
                fail_msg("%s: got \"%s\", expected \"%s\"", sql, got, want);
        free(got);
}

static int make_file(const char *name, int64_t size, uint64_t seed, char sha[65]) {
        return pas_data_file(work, name, size, seed, sha);
}

static char *document_id(struct fix *f, const char *aid, int revision) {
        const char *p[] = { aid, revision == 2 ? "2" : "1" };
        char *id = db_text(raw(f), "SELECT document_id FROM ers_document WHERE attachment_id = ? AND revision = ?", 2,
                           p, NULL);
        assert_non_null(id);
        return id;
}

static void assert_document(struct fix *f, const char *id, const char *sha, int64_t size) {
        char hex[65];
        int64_t got = -1;

        assert_int_equal(db_document_sha256(raw(f), id, hex, &got), 0);
        assert_int_equal(got, size);
        assert_string_equal(hex, sha);
}

/* An error line never carries a patient identifier, nor the marker of a free text. */
static void assert_clean(const struct errbuf *e) {
        assert_no_patient_identifier("the error line", e->msg, NULL, ARGS(NHS_VALID, NHS_INVALID, MARKER));
}

/* ---------------------------------------------------------------------- */
/* Fixtures.                                                               */

static int setup_empty(void **state) {
        struct fix *f = calloc(1, sizeof *f);
        struct errbuf e = { "" };

        if (!f || engine_new_database(&G, f->conn, sizeof f->conn) < 0)
                return -1;
        if (pas_open(f->conn, "auto", &f->p, &e) < 0) {
                print_error("pas_open on %s: %s\n", G.name, e.msg);
                return -1;
        }
        *state = f;
        return 0;
}

static int setup(void **state) {
        struct errbuf e = { "" };

        if (setup_empty(state) < 0)
                return -1;
        if (pas_data_init_schema(((struct fix *) *state)->p, &e) < 0) {
                print_error("pas_init_schema on %s: %s\n", G.name, e.msg);
                return -1;
        }
        return 0;
}

static int teardown(void **state) {
        struct fix *f = *state;

        wall_clock_set(NULL); /* a test that failed with the clock set leaves none behind */
        pas_close(f->p);
        db_close(f->raw);
        free(f);
        return 0;
}

/* ---------------------------------------------------------------------- */
/* The schema.                                                             */

static void test_detect_and_schema_idempotent(void **state) {
        struct fix *f = *state;
        struct errbuf e = { "" };

        assert_string_equal(pas_adapter_name(f->p), G.name); /* detected from SQL_DBMS_NAME */
        print_message("      %s: %s\n", G.name, pas_dbms(f->p));
        assert_int_equal(pas_check_schema(f->p, &e), -ENOENT);
        assert_non_null(strstr(e.msg, G.name)); /* names adapters/sql/<vendor>.sql */
        assert_int_equal(pas_data_init_schema(f->p, &e), 0);
        assert_int_equal(pas_data_init_schema(f->p, &e), 0);
        assert_int_equal(pas_check_schema(f->p, &e), 0);
        assert_int_equal(count(f, "ers_schema_version"), 1);
        assert_int_equal(q_int(raw(f), "SELECT version FROM ers_schema_version", NULL), 5);
        assert_int_equal(count(f, "ers_referral_inbox"), 0);
}

/* ---------------------------------------------------------------------- */
/* Referrals and the ledger.                                               */

/* The wall clock the PAS writes read (wall_clock_set): moved by a test, never waited for. */
static time_t clock_now;

static time_t test_clock(void) {
        return clock_now;
}

static void test_referral_put_update(void **state) {
        struct fix *f = *state;
        struct errbuf e = { "" };
        struct referral r;
        struct worklist_entry w = { .version = 1, .priority = "ROUTINE", .service_id = "12345",
                                    .service_name = "Cardiology clinic", .referral_type = "REFERRAL" };
        char rel1[2][UBRN_LEN + 1] = { "000000000002", "000000000003" };
        char rel2[3][UBRN_LEN + 1] = { "000000000003", "000000000004", "000000000003" };
        struct pas_tx *tx = NULL;

        clock_now = 1700000000; /* 2023-11-14T22:13:20Z */
        wall_clock_set(test_clock);
        pas_data_referral(&r, "000000000001", 1, NHS_VALID);
        r.related = rel1;
        r.n_related = 2;
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_referral(tx, &r, &w, "cardiology-new", &e), 0);
        assert_int_equal(pas_commit(tx, &e), 0);
        assert_int_equal(q_int(raw(f), "SELECT version FROM ers_referral WHERE ubrn = ?", "000000000001"), 1);
        assert_int_equal(q_int(raw(f), "SELECT nhs_number_valid FROM ers_referral WHERE ubrn = ?", "000000000001"), 1);
        assert_q_text(f, "SELECT nhs_number FROM ers_referral WHERE ubrn = ?", "000000000001", NHS_VALID);
        assert_q_text(f, "SELECT service_name FROM ers_referral WHERE ubrn = ?", "000000000001", "Cardiology clinic");
        assert_q_text(f, "SELECT worklist FROM ers_referral WHERE ubrn = ?", "000000000001", "cardiology-new");
        assert_q_text(f, "SELECT first_synced_at FROM ers_referral WHERE ubrn = ?", "000000000001",
                      "2023-11-14T22:13:20Z");
        assert_int_equal(count(f, "ers_referral_related"), 2);

        /* version 2 a minute later, seen again as someone else's related referral (no worklist entry) */
        clock_now += 60;
        pas_data_referral(&r, "000000000001", 2, NHS_INVALID);
        r.state = "CANCELLED";
        r.related = rel2;
        r.n_related = 3; /* a duplicate link is written once */
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_referral(tx, &r, NULL, NULL, &e), 0);
        assert_int_equal(pas_commit(tx, &e), 0);
        assert_int_equal(count(f, "ers_referral"), 1);
        assert_int_equal(q_int(raw(f), "SELECT version FROM ers_referral WHERE ubrn = ?", "000000000001"), 2);
        assert_int_equal(q_int(raw(f), "SELECT nhs_number_valid FROM ers_referral WHERE ubrn = ?", "000000000001"), 0);
        assert_q_text(f, "SELECT state FROM ers_referral WHERE ubrn = ?", "000000000001", "CANCELLED");
        /* what only the worklist entry carries is kept; the first sync's time too, the last one's moves on */
        assert_q_text(f, "SELECT worklist FROM ers_referral WHERE ubrn = ?", "000000000001", "cardiology-new");
        assert_q_text(f, "SELECT referral_type FROM ers_referral WHERE ubrn = ?", "000000000001", "REFERRAL");
        assert_q_text(f, "SELECT first_synced_at FROM ers_referral WHERE ubrn = ?", "000000000001",
                      "2023-11-14T22:13:20Z");
        assert_q_text(f, "SELECT last_synced_at FROM ers_referral WHERE ubrn = ?", "000000000001",
                      "2023-11-14T22:14:20Z");
        /* related links replaced */
        assert_int_equal(count(f, "ers_referral_related"), 2);
        assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM ers_referral_related WHERE related_ubrn = ?", "000000000002"),
                         0);
        assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM ers_referral_related WHERE related_ubrn = ?", "000000000004"),
                         1);
        assert_int_equal(count(f, "ers_referral_inbox"), 1);

        /* a related referral never on a worklist, without an NHS number */
        pas_data_referral(&r, "000000000002", 7, NULL);
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_referral(tx, &r, NULL, NULL, &e), 0);
        assert_int_equal(pas_commit(tx, &e), 0);
        assert_null(q_text(raw(f), "SELECT worklist FROM ers_referral WHERE ubrn = ?", "000000000002"));
        assert_null(q_text(raw(f), "SELECT nhs_number FROM ers_referral WHERE ubrn = ?", "000000000002"));
        assert_int_equal(q_int(raw(f), "SELECT nhs_number_valid FROM ers_referral WHERE ubrn = ?", "000000000002"), 0);
        assert_int_equal(count(f, "ers_referral_inbox"), 2);
        wall_clock_set(NULL);
}

static void test_ledger(void **state) {
        struct fix *f = *state;
        struct errbuf e = { "" };
        struct ledger_state st = { .found = true };
        struct pas_tx *tx = NULL;

        assert_int_equal(pas_ledger_get(f->p, "000000000001", &st, &e), 0);
        assert_false(st.found);
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_ledger(tx, "000000000001", 3, false, "wl", "6f1c6f2e-1b7e-4c1a-9a55-0a4c1f0e2d11", &e),
                         0);
        assert_int_equal(pas_commit(tx, &e), 0);
        assert_int_equal(pas_ledger_get(f->p, "000000000001", &st, &e), 0);
        assert_true(st.found);
        assert_int_equal(st.version, 3);
        assert_false(st.complete);
        /* upsert; a version beyond 32 bits survives */
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_ledger(tx, "000000000001", 5000000000LL, true, NULL, NULL, &e), 0);
        assert_int_equal(pas_commit(tx, &e), 0);
        assert_int_equal(pas_ledger_get(f->p, "000000000001", &st, &e), 0);
        assert_true(st.found);
        assert_int_equal(st.version, 5000000000LL);
        assert_true(st.complete);
        assert_int_equal(count(f, "ers_ledger"), 1);

        /* bad input changes nothing */
        assert_int_equal(pas_ledger_get(f->p, "12345", &st, &e), -EINVAL);
        assert_int_equal(st.version, 5000000000LL); /* untouched on failure */
}

/*
 * The same rows written again with the same values, within one second (the
 * world test's seeds hit it: a referral re-read, a retry row re-queued).  The
 * upserts are an UPDATE, then an INSERT when it matched no row: MariaDB counts
 * the rows an UPDATE changed, not those it matched, unless the connection asks
 * for found rows, and the INSERT then collided with the row there
 * (SQLSTATE 23000, Duplicate entry ... for key 'PRIMARY').
 */
static void test_unchanged_rows_written_again(void **state) {
        struct fix *f = *state;
        struct errbuf e = { "" };
        struct referral r;
        struct worklist_entry w = { .version = 1, .priority = "ROUTINE", .service_id = "12345",
                                    .service_name = "Cardiology clinic", .referral_type = "REFERRAL" };
        struct pas_tx *tx = NULL;

        clock_now = 1700000000; /* every write of a transaction, and of the next, at the same second */
        wall_clock_set(test_clock);
        pas_data_referral(&r, "000000000001", 1, NHS_VALID);
        for (int round = 0; round < 2; round++) {
                assert_int_equal(pas_begin(f->p, &tx, &e), 0);
                if (pas_put_referral(tx, &r, &w, "wl", &e) < 0 ||
                    pas_put_ledger(tx, "000000000001", 1, true, "wl", "6f1c6f2e-1b7e-4c1a-9a55-0a4c1f0e2d11", &e) < 0)
                        fail_msg("%s: the same rows a second time (round %d): %s", G.name, round + 1, e.msg);
                assert_int_equal(pas_commit(tx, &e), 0);
        }
        assert_int_equal(count(f, "ers_referral"), 1);
        assert_int_equal(count(f, "ers_ledger"), 1);

        /* An operator's own OPTION flags are kept, the found-rows bit added to them; one
         * that is not a number is refused at connect, in one line. */
        if (strcmp(G.name, "mariadb") == 0) {
                char conn[1024];
                struct pas *other = NULL;
                snprintf(conn, sizeof conn, "%s;OPTION=0", f->conn);
                assert_int_equal(pas_open(conn, "auto", &other, &e), 0);
                assert_int_equal(pas_begin(other, &tx, &e), 0);
                if (pas_put_ledger(tx, "000000000001", 1, true, "wl", "6f1c6f2e-1b7e-4c1a-9a55-0a4c1f0e2d11", &e) < 0)
                        fail_msg("with OPTION=0 in the connection string: %s", e.msg);
                assert_int_equal(pas_commit(tx, &e), 0);
                pas_close(other);
                snprintf(conn, sizeof conn, "%s;OPTION=lots", f->conn);
                assert_int_equal(pas_open(conn, "auto", &other, &e), -EINVAL);
                assert_non_null(strstr(e.msg, "OPTION must be a number"));
        }
        wall_clock_set(NULL);
}

/* ---------------------------------------------------------------------- */
/* Documents.                                                              */

/* A document of 2.5 MiB: three parts of 1 MiB, 1 MiB and 0.5 MiB, byte for byte, in five round trips. */
static void test_document_parts_byte_identical(void **state) {
        struct fix *f = *state;
        struct errbuf e = { "" };
        const int64_t size = 5 * MIB / 2;
        char sha[65];
        int fd = make_file("parts.bin", size, 42, sha);
        struct document_rec d = pas_data_document("000000000001", "att-1", size, sha);
        struct document_state st;
        bool written = false;
        char *id;
        struct pas_tx *tx = NULL;

        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        uint64_t before = pas_statements(f->p);
        assert_int_equal(pas_put_document(tx, &d, fd, &written, &e), 0);
        assert_true(written);
        /* one round trip each: the latest revision read, the row, its 3 parts (a new row has no
         * parts to delete first) */
        assert_int_equal(pas_statements(f->p) - before, 1 + 1 + 3);
        assert_int_equal(pas_commit(tx, &e), 0);
        id = document_id(f, "att-1", 1);
        assert_int_equal(strlen(id), 36);
        assert_int_equal(id[14], '4'); /* UUID version 4 */
        assert_int_equal(q_int(raw(f), "SELECT part_count FROM ers_document WHERE document_id = ?", id), 3);
        assert_int_equal(q_int(raw(f), "SELECT size_bytes FROM ers_document WHERE document_id = ?", id), size);
        assert_int_equal(q_int(raw(f), "SELECT LENGTH(data) FROM ers_document_part WHERE document_id = ? AND seq = 1", id),
                         MIB);
        assert_int_equal(q_int(raw(f), "SELECT LENGTH(data) FROM ers_document_part WHERE document_id = ? AND seq = 2", id),
                         MIB);
        assert_int_equal(q_int(raw(f), "SELECT LENGTH(data) FROM ers_document_part WHERE document_id = ? AND seq = 3", id),
                         MIB / 2);
        assert_q_text(f, "SELECT sha256 FROM ers_document WHERE document_id = ?", id, sha);
        assert_q_text(f, "SELECT fetch_status FROM ers_document WHERE document_id = ?", id, "FETCHED");
        assert_q_text(f, "SELECT kind FROM ers_document WHERE document_id = ?", id, "ATTACHMENT");
        assert_document(f, id, sha, size);

        assert_int_equal(pas_document_get(f->p, "000000000001", "000000000001", DOCUMENT_ATTACHMENT, "att-1", 0, &st, &e),
                         0);
        document_state_free(&st); /* frees its texts only: the fields below stay */
        assert_true(st.found);
        assert_true(st.fetched);
        assert_int_equal(st.revision, 1);
        assert_string_equal(st.sha256, sha);
        assert_int_equal(pas_document_get(f->p, "000000000001", "000000000001", DOCUMENT_ATTACHMENT, "att-2", 0, &st, &e),
                         0);
        document_state_free(&st);
        assert_false(st.found);
        free(id);
        close(fd);
}

/* An attachment not fetched (PENDING, malware scan running).  What is stored of it. */
static struct document_rec not_fetched(const char *aid, const char *availability, const char *reason) {
        struct document_rec d = pas_data_document("000000000001", aid, 0, NULL);

        d.declared_size = -1;
        d.availability = availability;
        d.fetched = false;
        d.not_fetched_reason = reason;
        return d;
}

/* One attachment's life: not fetched, fetched later into the same row, the same content
 * again (nothing written), not fetched again (the content stays), other content (a new
 * revision, the old one kept whole); the inbox view counts each document once. */
static void test_document_dedup(void **state) {
        struct fix *f = *state;
        struct errbuf e = { "" };
        char sha_a[65], sha_b[65], *id1, *id1b, *id2;
        int fa = make_file("a.bin", MIB + 10, 7, sha_a), fb = make_file("b.bin", 300, 8, sha_b);
        struct document_rec pending = not_fetched("att-9", "PENDING", "malware scan running");
        struct document_rec a = pas_data_document("000000000001", "att-9", MIB + 10, sha_a);
        struct document_rec b = pas_data_document("000000000001", "att-9", 300, sha_b);
        struct document_state st;
        bool written;
        struct pas_tx *tx = NULL;

        /* not fetched: one row, no parts */
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_document(tx, &pending, -1, &written, &e), 0);
        assert_true(written);
        assert_int_equal(pas_put_document(tx, &pending, -1, &written, &e), 0);
        assert_false(written); /* the same reason again: nothing */
        assert_int_equal(pas_commit(tx, &e), 0);
        id1 = document_id(f, "att-9", 1);
        assert_q_text(f, "SELECT fetch_status FROM ers_document WHERE document_id = ?", id1, "NOT_FETCHED");
        assert_q_text(f, "SELECT not_fetched_reason FROM ers_document WHERE document_id = ?", id1, "malware scan running");
        assert_null(q_text(raw(f), "SELECT part_count FROM ers_document WHERE document_id = ?", id1));
        assert_int_equal(pas_document_get(f->p, "000000000001", "000000000001", DOCUMENT_ATTACHMENT, "att-9", 0, &st, &e),
                         0);
        assert_true(st.found);
        assert_false(st.fetched);
        /* what the fetch compares with what it would record now (fetch.c) */
        assert_int_equal(st.source_version, pending.source_version);
        assert_string_equal(st.availability, "PENDING");
        assert_string_equal(st.reason, "malware scan running");
        document_state_free(&st);

        /* fetched later: the same row completed (any parts it had deleted first) */
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        uint64_t before = pas_statements(f->p);
        assert_int_equal(pas_put_document(tx, &a, fa, &written, &e), 0);
        assert_true(written);
        assert_int_equal(pas_statements(f->p) - before, 1 + 1 + 1 + 2);
        /* the same content again: nothing */
        assert_int_equal(pas_put_document(tx, &a, fa, &written, &e), 0);
        assert_false(written);
        assert_int_equal(pas_commit(tx, &e), 0);
        id1b = document_id(f, "att-9", 1);
        assert_string_equal(id1b, id1);
        assert_int_equal(count(f, "ers_document"), 1);
        assert_q_text(f, "SELECT fetch_status FROM ers_document WHERE document_id = ?", id1, "FETCHED");
        assert_null(q_text(raw(f), "SELECT not_fetched_reason FROM ers_document WHERE document_id = ?", id1));
        assert_int_equal(q_int(raw(f), "SELECT part_count FROM ers_document WHERE document_id = ?", id1), 2);
        assert_int_equal(count(f, "ers_document_part"), 2);

        /* not fetched this time (say, a transient failure): the stored content stays */
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_document(tx, &pending, -1, &written, &e), 0);
        assert_false(written);
        assert_int_equal(pas_commit(tx, &e), 0);
        assert_int_equal(count(f, "ers_document"), 1);
        assert_int_equal(count(f, "ers_document_part"), 2);
        assert_document(f, id1, sha_a, MIB + 10);

        /* other content: a new revision, the old one kept whole */
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_document(tx, &b, fb, &written, &e), 0);
        assert_true(written);
        assert_int_equal(pas_commit(tx, &e), 0);
        assert_int_equal(count(f, "ers_document"), 2);
        id2 = document_id(f, "att-9", 2);
        assert_string_not_equal(id2, id1);
        assert_document(f, id1, sha_a, MIB + 10);
        assert_document(f, id2, sha_b, 300);
        assert_int_equal(pas_document_get(f->p, "000000000001", "000000000001", DOCUMENT_ATTACHMENT, "att-9", 0, &st, &e),
                         0);
        document_state_free(&st); /* frees its texts only: the fields below stay */
        assert_int_equal(st.revision, 2);
        assert_string_equal(st.sha256, sha_b);

        /* the inbox view counts each document once, at its latest revision */
        struct referral r;
        struct document_rec other = not_fetched("att-10", "THREATS_FOUND", "malware found");
        pas_data_referral(&r, "000000000001", 1, NHS_VALID);
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_referral(tx, &r, NULL, NULL, &e), 0);
        assert_int_equal(pas_put_document(tx, &other, -1, NULL, &e), 0);
        assert_int_equal(pas_commit(tx, &e), 0);
        assert_int_equal(q_int(raw(f), "SELECT documents_fetched FROM ers_referral_inbox WHERE ubrn = ?", "000000000001"),
                         1);
        assert_int_equal(
                q_int(raw(f), "SELECT documents_not_fetched FROM ers_referral_inbox WHERE ubrn = ?", "000000000001"), 1);
        free(id1);
        free(id1b);
        free(id2);
        close(fa);
        close(fb);
}

/* ---------------------------------------------------------------------- */
/* Transactions and errors.                                                */

static void test_rollback_and_failing_statement(void **state) {
        struct fix *f = *state;
        struct errbuf e = { "" };
        struct ledger_state st = { .found = true };
        struct referral a, b;
        char sha[65];
        int fd = make_file("rb.bin", MIB + 1, 3, sha);
        struct document_rec d = pas_data_document("000000000001", "att-1", MIB + 1, sha);
        struct db *admin;
        struct pas_tx *tx = NULL;

        /* everything of a rolled-back transaction is gone */
        pas_data_referral(&a, "000000000001", 1, NHS_VALID);
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_referral(tx, &a, NULL, "wl", &e), 0);
        assert_int_equal(pas_put_document(tx, &d, fd, NULL, &e), 0);
        assert_int_equal(pas_put_ledger(tx, "000000000001", 1, true, "wl", NULL, &e), 0);
        pas_rollback(tx);
        assert_int_equal(count(f, "ers_referral"), 0);
        assert_int_equal(count(f, "ers_document"), 0);
        assert_int_equal(count(f, "ers_document_part"), 0);
        assert_int_equal(count(f, "ers_ledger"), 0);
        assert_int_equal(pas_ledger_get(f->p, "000000000001", &st, &e), 0);
        assert_false(st.found);

        /* pas_close on an open transaction rolls back too */
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_referral(tx, &a, NULL, "wl", &e), 0);
        assert_int_equal(pas_put_document(tx, &d, fd, NULL, &e), 0);
        assert_int_equal(pas_put_ledger(tx, "000000000001", 1, true, "wl", NULL, &e), 0);
        pas_close(f->p);
        f->p = NULL;
        assert_int_equal(count(f, "ers_referral"), 0);
        assert_int_equal(count(f, "ers_document"), 0);
        assert_int_equal(count(f, "ers_ledger"), 0);
        assert_int_equal(pas_open(f->conn, "auto", &f->p, &e), 0);

        /* a rule of the PAS we do not know about: one referral per NHS number */
        admin = db_open(f->conn);
        assert_non_null(admin);
        assert_null(db_text(admin, "CREATE UNIQUE INDEX test_one_per_patient ON ers_referral (nhs_number)", 0, NULL,
                            NULL));
        db_close(admin);
        pas_data_referral(&b, "000000000002", 1, NHS_VALID);
        b.state_comment = MARKER;
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_referral(tx, &a, NULL, NULL, &e), 0);
        assert_int_equal(pas_put_referral(tx, &b, NULL, NULL, &e), -EIO);
        pas_rollback(tx);
        print_message("      constraint: %s\n", e.msg);
        assert_non_null(strstr(e.msg, "SQLSTATE "));
        if (G.kind != ENGINE_SQLITE) /* the SQLite driver says HY000 for every error */
                assert_non_null(strstr(e.msg, "SQLSTATE 23")); /* integrity constraint violation */
        assert_non_null(strstr(e.msg, "000000000002")); /* the UBRN is fine to show */
        assert_clean(&e);
        assert_int_equal(count(f, "ers_referral"), 0);

        /* and the connection goes on */
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_referral(tx, &a, NULL, NULL, &e), 0);
        assert_int_equal(pas_commit(tx, &e), 0);
        assert_int_equal(count(f, "ers_referral"), 1);
        close(fd);
}

/* The first column of the first row of constant SQL, read in pieces however long it is. */
static char *long_text(const char *connection, const char *sql) {
        SQLHENV env = SQL_NULL_HENV;
        SQLHDBC dbc = SQL_NULL_HDBC;
        SQLHSTMT st = SQL_NULL_HSTMT;
        char piece[4096], *all = NULL;
        size_t len = 0;
        SQLRETURN rc;
        SQLLEN ind;

        SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &env);
        SQLSetEnvAttr(env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER) SQL_OV_ODBC3, 0);
        SQLAllocHandle(SQL_HANDLE_DBC, env, &dbc);
        assert_true(SQL_SUCCEEDED(SQLDriverConnect(dbc, NULL, (SQLCHAR *) connection, SQL_NTS, NULL, 0, NULL,
                                                   SQL_DRIVER_NOPROMPT)));
        SQLAllocHandle(SQL_HANDLE_STMT, dbc, &st);
        assert_true(SQL_SUCCEEDED(SQLExecDirect(st, (SQLCHAR *) sql, SQL_NTS)));
        assert_true(SQL_SUCCEEDED(SQLFetch(st)));
        while ((rc = SQLGetData(st, 1, SQL_C_CHAR, piece, sizeof piece, &ind)) != SQL_NO_DATA) {
                size_t n;

                assert_true(SQL_SUCCEEDED(rc));
                assert_true(ind != SQL_NULL_DATA);
                n = rc == SQL_SUCCESS_WITH_INFO ? sizeof piece - 1 : (size_t) ind; /* less the NUL */
                all = realloc(all, len + n + 1);
                assert_non_null(all);
                memcpy(all + len, piece, n);
                len += n;
                all[len] = '\0';
                if (rc == SQL_SUCCESS)
                        break;
        }
        SQLFreeHandle(SQL_HANDLE_STMT, st);
        SQLDisconnect(dbc);
        SQLFreeHandle(SQL_HANDLE_DBC, dbc);
        SQLFreeHandle(SQL_HANDLE_ENV, env);
        return all ? all : strdup("");
}

static void test_utf8_4byte_round_trip(void **state) {
        struct fix *f = *state;
        struct errbuf e = { "" };
        static const char comment[] = "O'Brien said \"it's urgent\" -- ; DROP TABLE ers_referral; "
                                      "\xf0\x9f\x98\x80 \xf0\x9d\x84\x9e Z\xc3\xbcrich \xe2\x9c\x93 '' \\ %s";
        static const char aid[] = "att-\xf0\x9f\x98\x80";
        char sha[65], *id;
        int fd = make_file("u.bin", 10, 2, sha);
        struct referral r;
        struct document_rec d = pas_data_document("000000000001", aid, 10, sha);
        struct pas_tx *tx = NULL;

        pas_data_referral(&r, "000000000001", 1, NHS_VALID);
        r.state_comment = (char *) comment;
        r.specialty_display = "Ear, nose & throat \xf0\x9f\x91\x82";
        r.state_reason = ""; /* empty is not NULL */
        d.title = "Letter \xe2\x80\x94 \"final\" \xf0\x9f\x93\x84.pdf";
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_referral(tx, &r, NULL, NULL, &e), 0);
        assert_int_equal(pas_put_document(tx, &d, fd, NULL, &e), 0);
        assert_int_equal(pas_commit(tx, &e), 0);

        assert_q_text(f, "SELECT state_comment FROM ers_referral WHERE ubrn = ?", "000000000001", comment);
        assert_q_text(f, "SELECT specialty_display FROM ers_referral WHERE ubrn = ?", "000000000001",
                      r.specialty_display);
        if (G.kind == ENGINE_SQLITE) { /* stored as text, not as a blob, and every byte of it */
                assert_q_text(f, "SELECT typeof(state_comment) FROM ers_referral WHERE ubrn = ?", "000000000001", "text");
                assert_q_text(f, "SELECT typeof(state_reason) FROM ers_referral WHERE ubrn = ?", "000000000001", "text");
                assert_int_equal(q_int(raw(f), "SELECT length(CAST(state_comment AS BLOB)) FROM ers_referral WHERE ubrn = ?",
                                       "000000000001"),
                                 (long long) strlen(comment));
        }
        bool null = true;
        char *reason = text_of(f, "SELECT state_reason FROM ers_referral WHERE ubrn = ?", "000000000001", &null);
        assert_false(null);
        assert_string_equal(reason, "");
        free(reason);
        id = document_id(f, aid, 1);
        assert_q_text(f, "SELECT title FROM ers_document WHERE document_id = ?", id, d.title);
        /* a long comment (bound as SQL_LONGVARCHAR past 4000 bytes), 4-byte characters across it */
        char *big = malloc(20001);
        assert_non_null(big);
        for (size_t i = 0; i < 20000; i += 4)
                memcpy(big + i, i % 8 ? "abcd" : "\xf0\x9f\x98\x80", 4);
        big[20000] = '\0';
        r.state_comment = big;
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_referral(tx, &r, NULL, NULL, &e), 0);
        assert_int_equal(pas_commit(tx, &e), 0);
        char *got = long_text(f->conn, "SELECT state_comment FROM ers_referral WHERE ubrn = '000000000001'");
        assert_int_equal(strlen(got), 20000);
        assert_string_equal(got, big);
        free(got);
        free(big);
        /* an attachment id differing only in case is another document (binary collation) */
        struct document_rec upper = pas_data_document("000000000001", "ATT-\xf0\x9f\x98\x80", 10, sha);
        bool written = false;
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_document(tx, &upper, fd, &written, &e), 0);
        assert_int_equal(pas_commit(tx, &e), 0);
        assert_true(written);
        assert_int_equal(count(f, "ers_document"), 2);
        free(id);
        close(fd);
}

/* Two daemons on one schema: the second cannot open a transaction while the
 * first holds the writer lock. */
static void test_single_writer_lock(void **state) {
        struct fix *f = *state;
        struct errbuf e = { "" };
        struct pas *other = NULL;
        struct pas_tx *tx = NULL, *tx_other = NULL;

        assert_int_equal(pas_open(f->conn, "auto", &other, &e), 0);
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_ledger(tx, "000000000001", 1, true, NULL, NULL, &e), 0);
        assert_int_equal(pas_begin(other, &tx_other, &e), -EAGAIN);
        print_message("      second writer: %s\n", e.msg);
        assert_null(tx_other); /* no transaction: nothing it could write with */
        assert_int_equal(pas_commit(tx, &e), 0);
        /* the first one goes away: the second one writes */
        pas_close(f->p);
        f->p = NULL;
        assert_int_equal(pas_begin(other, &tx_other, &e), 0);
        assert_int_equal(pas_put_ledger(tx_other, "000000000002", 1, true, NULL, NULL, &e), 0);
        assert_int_equal(pas_commit(tx_other, &e), 0);
        assert_int_equal(count(f, "ers_ledger"), 2);
        pas_close(other);
}

/* tpl with every "{user}" and "{db}" replaced. */
static void fill_in(const char *tpl, const char *user, const char *db, char *ret, size_t n) {
        size_t o = 0;

        while (*tpl && o + 1 < n) {
                const char *v = strncmp(tpl, "{user}", 6) == 0 ? user : strncmp(tpl, "{db}", 4) == 0 ? db : NULL;
                if (v) {
                        o += (size_t) snprintf(ret + o, n - o, "%s", v);
                        tpl += v == user ? 6 : 4;
                } else
                        ret[o++] = *tpl++;
        }
        assert_true(o + 1 < n);
        ret[o] = '\0';
}

/* A fresh database user "<prefix>_<database>" of the engine, made and granted by the statements of its kind
 * ({user}, {db} filled in); *conn (n bytes) connects as that user. */
static void make_user(struct fix *f, const char *const *pg, const char *const *maria, const char *prefix,
                      char *conn, size_t n) {
        const char *db_attr = strstr(f->conn, "Database="), *uid = strstr(f->conn, ";UID=");
        char user[48], database[32], sql[512];

        assert_non_null(db_attr);
        assert_non_null(uid);
        snprintf(database, sizeof database, "%.*s", (int) strcspn(db_attr + 9, ";"), db_attr + 9);
        snprintf(user, sizeof user, "%s_%s", prefix, database);
        for (const char *const *q = G.kind == ENGINE_POSTGRESQL ? pg : maria; *q; q++) {
                fill_in(*q, user, database, sql, sizeof sql);
                assert_int_equal(engine_exec(f->conn, sql, false), 0);
        }
        snprintf(conn, n, "%.*s;UID=%s", (int) (uid - f->conn), f->conn, user);
}

/* The grants docs/postgresql.md and docs/mariadb.md give the ersd user are
 * enough to sync, and no more: it can neither drop nor create a table. */
static void test_least_privilege_grants(void **state) {
        static const char *const pg[] = {
                "CREATE ROLE {user} LOGIN",
                "GRANT CONNECT ON DATABASE {db} TO {user}",
                "GRANT USAGE ON SCHEMA public TO {user}",
                "GRANT SELECT ON ers_schema_version TO {user}",
                "GRANT SELECT, INSERT, UPDATE ON ers_referral, ers_document, ers_ledger, ers_lease, ers_budget, "
                "ers_poll TO {user}",
                "GRANT SELECT, INSERT, DELETE ON ers_referral_related, ers_referral_requirement, ers_document_part, "
                "ers_worklist_entry TO {user}",
                "GRANT SELECT, INSERT, UPDATE, DELETE ON ers_retry TO {user}",
                "GRANT SELECT, INSERT ON ers_audit, ers_referral_answer TO {user}",
                "GRANT SELECT, UPDATE ON ers_outbox TO {user}",
                "GRANT SELECT ON ers_referral_inbox TO {user}",
                NULL,
        };
        static const char *const maria[] = {
                "CREATE USER '{user}'@'127.0.0.1'",
                "GRANT SELECT ON {db}.ers_schema_version TO '{user}'@'127.0.0.1'",
                "GRANT SELECT, INSERT, UPDATE ON {db}.ers_referral TO '{user}'@'127.0.0.1'",
                "GRANT SELECT, INSERT, UPDATE ON {db}.ers_document TO '{user}'@'127.0.0.1'",
                "GRANT SELECT, INSERT, UPDATE ON {db}.ers_ledger TO '{user}'@'127.0.0.1'",
                "GRANT SELECT, INSERT, UPDATE ON {db}.ers_lease TO '{user}'@'127.0.0.1'",
                "GRANT SELECT, INSERT, UPDATE ON {db}.ers_budget TO '{user}'@'127.0.0.1'",
                "GRANT SELECT, INSERT, UPDATE ON {db}.ers_poll TO '{user}'@'127.0.0.1'",
                "GRANT SELECT, INSERT, UPDATE, DELETE ON {db}.ers_retry TO '{user}'@'127.0.0.1'",
                "GRANT SELECT, INSERT ON {db}.ers_audit TO '{user}'@'127.0.0.1'",
                "GRANT SELECT, INSERT ON {db}.ers_referral_answer TO '{user}'@'127.0.0.1'",
                "GRANT SELECT, UPDATE ON {db}.ers_outbox TO '{user}'@'127.0.0.1'",
                "GRANT SELECT, INSERT, DELETE ON {db}.ers_referral_related TO '{user}'@'127.0.0.1'",
                "GRANT SELECT, INSERT, DELETE ON {db}.ers_referral_requirement TO '{user}'@'127.0.0.1'",
                "GRANT SELECT, INSERT, DELETE ON {db}.ers_document_part TO '{user}'@'127.0.0.1'",
                "GRANT SELECT, INSERT, DELETE ON {db}.ers_worklist_entry TO '{user}'@'127.0.0.1'",
                "GRANT SELECT ON {db}.ers_referral_inbox TO '{user}'@'127.0.0.1'",
                NULL,
        };
        struct fix *f = *state;
        struct errbuf e = { "" };
        char conn[700], sha1[65], sha2[65], rel[1][UBRN_LEN + 1] = { "000000000009" };
        int fa = make_file("g1.bin", MIB + MIB / 2, 11, sha1), fb = make_file("g2.bin", 1000, 12, sha2);
        struct document_rec a = pas_data_document("000000000001", "att-1", MIB + MIB / 2, sha1);
        struct document_rec b = pas_data_document("000000000001", "att-1", 1000, sha2);
        struct pas *p = NULL;
        struct referral r;
        struct pas_tx *tx = NULL;

        make_user(f, pg, maria, "ersd", conn, sizeof conn);
        assert_int_equal(pas_open(conn, "auto", &p, &e), 0);
        assert_int_equal(pas_check_schema(p, &e), 0);
        /* a referral with a related one and a document, then its next version with new content */
        for (int v = 1; v <= 2; v++) {
                pas_data_referral(&r, "000000000001", v, NHS_VALID);
                r.related = rel;
                r.n_related = 1;
                struct referral_stored before;
                struct stored_attachment *atts = NULL;
                size_t n_atts = 0;
                assert_int_equal(pas_begin(p, &tx, &e), 0);
                /* what the sync reads and writes for the audit trail, in the same transaction */
                assert_int_equal(pas_referral_stored(p, "000000000001", &before, &e), 0);
                assert_int_equal(pas_attachments_stored(p, "000000000001", "000000000001", &atts, &n_atts, &e), 0);
                assert_int_equal(n_atts, v == 1 ? 0 : 1);
                stored_attachments_free(atts, n_atts);
                referral_stored_free(&before);
                assert_int_equal(pas_put_referral(tx, &r, NULL, "wl", &e), 0);
                assert_int_equal(pas_put_document(tx, v == 1 ? &a : &b, v == 1 ? fa : fb, NULL, &e), 0);
                assert_int_equal(pas_put_ledger(tx, "000000000001", v, true, "wl", NULL, &e), 0);
                assert_int_equal(pas_audit_append(tx, "000000000001", v, v == 1 ? "NEW" : "UPDATED", "detail",
                                                  NULL, NULL, &e), 0);
                if (pas_commit(tx, &e) < 0)
                        fail_msg("as the ersd user: %s", e.msg);
        }
        /* a poll that no longer lists it: the latest entries replaced, the ledger marked, an audit row */
        struct listing_change *changes = NULL;
        size_t n_changes = 0;
        assert_int_equal(pas_begin(p, &tx, &e), 0);
        assert_int_equal(pas_worklist_record(tx, "wl", NULL, 0, NULL, &e), 0);
        assert_int_equal(pas_worklist_changes(tx, "wl", &changes, &n_changes, &e), 0);
        assert_int_equal(n_changes, 1);
        assert_true(changes[0].left);
        free(changes);
        assert_int_equal(pas_ledger_set_left(tx, "000000000001", true, &e), 0);
        assert_int_equal(pas_attachment_set_removed(tx, "000000000001", "000000000001", "att-1", 0, true, &e), 0);
        assert_int_equal(pas_audit_append(tx, "000000000001", 2, "LEFT_WORKLIST", NULL, NULL, NULL, &e), 0);
        if (pas_commit(tx, &e) < 0)
                fail_msg("as the ersd user: %s", e.msg);
        pas_close(p);
        assert_int_equal(count(f, "ers_audit"), 3);
        assert_int_equal(q_int(raw(f), "SELECT MAX(seq) FROM ers_audit WHERE ubrn = ?", "000000000001"), 3);
        assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM ers_ledger WHERE left_worklist_at IS NOT NULL", NULL), 1);
        /* the audit trail is append-only for ersd: it can change no row of it */
        assert_int_equal(engine_exec(conn, "UPDATE ers_audit SET event_type = 'EDITED'", true), -2);
        assert_int_equal(engine_exec(conn, "DELETE FROM ers_audit", true), -2);
        assert_int_equal(count(f, "ers_audit"), 3);
        assert_int_equal(q_int(raw(f), "SELECT version FROM ers_ledger WHERE ubrn = ?", "000000000001"), 2);
        assert_int_equal(count(f, "ers_document"), 2);
        assert_int_equal(count(f, "ers_document_part"), 3);
        /* and no more than that */
        assert_int_equal(engine_exec(conn, "DROP TABLE ers_ledger", true), -2);
        assert_int_equal(engine_exec(conn, "CREATE TABLE ersd_probe (a INTEGER)", true), -2);
        assert_int_equal(engine_exec(conn, "DELETE FROM ers_ledger", true), -2);
        assert_int_equal(count(f, "ers_ledger"), 1);
        close(fa);
        close(fb);
}

/* Issue 15/16: the grants docs/schema.md ("ers_outbox") gives the PAS's own user: it inserts requests and
 * reads their outcome, and nothing more: no outcome of its own, no order of its own (the id is the
 * database's), no other table, no delete.  The database numbers the requests in the order inserted. */
static void test_outbox_pas_grants(void **state) {
        static const char *const pg[] = {
                "CREATE ROLE {user} LOGIN",
                "GRANT CONNECT ON DATABASE {db} TO {user}",
                "GRANT USAGE ON SCHEMA public TO {user}",
                "GRANT INSERT (ubrn, action, review_outcome, comment_text, new_priority, decided_version, requested_by, "
                "requested_at) ON ers_outbox TO {user}",
                "GRANT SELECT ON ers_outbox TO {user}",
                NULL,
        };
        static const char *const maria[] = {
                "CREATE USER '{user}'@'127.0.0.1'",
                "GRANT INSERT (ubrn, action, review_outcome, comment_text, new_priority, decided_version, requested_by, "
                "requested_at), SELECT ON {db}.ers_outbox TO '{user}'@'127.0.0.1'",
                NULL,
        };
        struct fix *f = *state;
        char conn[700];

        make_user(f, pg, maria, "pas", conn, sizeof conn);
        /* two requests, as a PAS form or trigger would insert them */
        assert_int_equal(engine_exec(conn, "INSERT INTO ers_outbox (ubrn, action, review_outcome, comment_text, "
                                           "decided_version, requested_by, requested_at) VALUES ('000000000001', "
                                           "'RECORD_REVIEW_OUTCOME', 'ACCEPT_REFER_BOOK_LATER', 'Seen by the triage "
                                           "nurse', 3, 'STAFF-0042', '2030-03-04T09:00:00Z')", false),
                         0);
        assert_int_equal(engine_exec(conn, "INSERT INTO ers_outbox (ubrn, action, decided_version, requested_by, "
                                           "requested_at) VALUES ('000000000001', 'ACCEPT_REFERRAL', 3, 'STAFF-0042', "
                                           "'2030-03-04T09:00:00Z')", false),
                         0);
        assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM ers_outbox WHERE state = 'NEW' AND attempts = 0", NULL), 2);
        assert_int_equal(q_int(raw(f), "SELECT MIN(id) FROM ers_outbox WHERE action = 'RECORD_REVIEW_OUTCOME'", NULL),
                         q_int(raw(f), "SELECT MIN(id) FROM ers_outbox", NULL));
        assert_true(q_int(raw(f), "SELECT MAX(id) - MIN(id) FROM ers_outbox", NULL) > 0); /* in insertion order */
        assert_int_equal(engine_exec(conn, "SELECT state, answered_version, error_code FROM ers_outbox", false), 0);
        /* and no more than that */
        assert_int_equal(engine_exec(conn, "UPDATE ers_outbox SET state = 'DONE'", true), -2);
        assert_int_equal(engine_exec(conn, "DELETE FROM ers_outbox", true), -2);
        assert_int_equal(engine_exec(conn, "INSERT INTO ers_outbox (id, ubrn, action, decided_version, requested_by, "
                                           "requested_at) VALUES (1000, '000000000001', 'ACCEPT_REFERRAL', 3, 'S', "
                                           "'2030-03-04T09:00:00Z')", true),
                         -2);
        assert_int_equal(engine_exec(conn, "SELECT ubrn FROM ers_referral", true), -2);
        assert_int_equal(engine_exec(conn, "INSERT INTO ers_referral_answer (ubrn, version, sha256, size_bytes, body, "
                                           "received_at) VALUES ('000000000001', 1, 'x', 0, '', 'x')", true),
                         -2);
        /* a request ersd cannot send is refused at its insert */
        assert_int_equal(engine_exec(conn, "INSERT INTO ers_outbox (ubrn, action, decided_version, requested_by, "
                                           "requested_at) VALUES ('000000000001', 'CANCEL_REFERRAL', 3, 'S', "
                                           "'2030-03-04T09:00:00Z')", true),
                         -2);
        assert_int_equal(count(f, "ers_outbox"), 2);
}

/* Issue 16: the outbox's data layer (adapters/pas_outbox.c) on every engine: the due requests oldest
 * first, one UBRN's strictly in id order (a later one waits while an earlier one is not settled), the
 * mark SENDING only from NEW or RETRY, each outcome with its audit row, a settled request never changed
 * again, a RETRY due only once its time has come, and what `ersd status` reads. */
static int outbox_attention_row(void *userdata, const struct outbox_attention *a) {
        char *seen = userdata;
        size_t n = strlen(seen);

        snprintf(seen + n, 256 - n, "%" PRId64 ":%s:%s:%s;", a->id, a->ubrn, a->state, a->error_code);
        return 0;
}

static void outbox_record(struct fix *f, const struct outbox_outcome *o, int want) {
        struct errbuf e = { "" };
        struct pas_tx *tx = NULL;

        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        int r = pas_outbox_record(tx, o, &e);
        if (r != want)
                fail_msg("pas_outbox_record: %d (%s), expected %d", r, e.msg, want);
        if (r < 0) {
                assert_non_null(strstr(e.msg, o->ubrn));
                pas_rollback(tx);
                return;
        }
        assert_int_equal(pas_commit(tx, &e), 0);
}

static int outbox_sending(struct fix *f, int64_t id) {
        struct errbuf e = { "" };
        struct pas_tx *tx = NULL;

        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        int r = pas_outbox_sending(tx, id, &e);
        assert_true(r >= 0);
        assert_int_equal(pas_commit(tx, &e), 0);
        return r;
}

static size_t outbox_due(struct fix *f, const char *now, int64_t ids[8]) {
        struct errbuf e = { "" };
        struct outbox_request *due = NULL;
        size_t n = 0;

        assert_int_equal(pas_outbox_due(f->p, now, 8, &due, &n, &e), 0);
        for (size_t i = 0; i < n; i++)
                ids[i] = due[i].id;
        outbox_requests_free(due, n);
        return n;
}

static void test_outbox_due_and_settle(void **state) {
        struct fix *f = *state;
        struct errbuf e = { "" };
        struct outbox_request *due = NULL;
        struct outbox_counts c;
        int64_t ids[8];
        char seen[256] = "";
        size_t n = 0;

        assert_int_equal(db_exec(raw(f), "INSERT INTO ers_outbox (ubrn, action, review_outcome, comment_text, "
                                         "decided_version, requested_by, requested_at) VALUES ('000000000001', "
                                         "'RECORD_REVIEW_OUTCOME', 'ACCEPT_REFER_BOOK_LATER', 'Seen " MARKER "', 3, "
                                         "'STAFF-1', '2030-01-01T00:00:00Z')"), 0);
        assert_int_equal(db_exec(raw(f), "INSERT INTO ers_outbox (ubrn, action, decided_version, requested_by, "
                                         "requested_at) VALUES ('000000000001', 'ACCEPT_REFERRAL', 3, 'STAFF-1', "
                                         "'2030-01-01T00:00:00Z')"), 0);
        assert_int_equal(db_exec(raw(f), "INSERT INTO ers_outbox (ubrn, action, decided_version, requested_by, "
                                         "requested_at) VALUES ('000000000002', 'ACCEPT_REFERRAL', 5, 'STAFF-2', "
                                         "'2030-01-01T00:00:00Z')"), 0);
        int64_t a = db_int(raw(f), "SELECT MIN(id) FROM ers_outbox", 0, NULL);
        int64_t b = db_int(raw(f), "SELECT MIN(id) FROM ers_outbox WHERE action = 'ACCEPT_REFERRAL'", 0, NULL);
        int64_t cc = db_int(raw(f), "SELECT MAX(id) FROM ers_outbox", 0, NULL);

        /* the first request of each UBRN, oldest first, read whole */
        assert_int_equal(pas_outbox_due(f->p, "2030-01-01T00:01:00Z", 8, &due, &n, &e), 0);
        assert_int_equal(n, 2);
        assert_int_equal(due[0].id, a);
        assert_string_equal(due[0].ubrn, "000000000001");
        assert_string_equal(due[0].action, "RECORD_REVIEW_OUTCOME");
        assert_string_equal(due[0].state, "NEW");
        assert_string_equal(due[0].review_outcome, "ACCEPT_REFER_BOOK_LATER");
        assert_string_equal(due[0].comment, "Seen " MARKER);
        assert_string_equal(due[0].new_priority, "");
        assert_int_equal(due[0].decided_version, 3);
        assert_int_equal(due[0].attempts, 0);
        assert_int_equal(due[1].id, cc);
        outbox_requests_free(due, n);

        /* SENDING only from NEW or RETRY, counted; a request found SENDING is due (to be settled) */
        assert_int_equal(outbox_sending(f, a), 1);
        assert_int_equal(outbox_sending(f, a), 0);
        assert_int_equal(db_int(raw(f), "SELECT attempts FROM ers_outbox WHERE state = 'SENDING'", 0, NULL), 1);
        assert_int_equal(outbox_due(f, "2030-01-01T00:01:00Z", ids), 2);
        assert_int_equal(ids[0], a);

        /* RETRY: due once its time has come, and the later request of its UBRN still waits */
        struct outbox_outcome o = { .id = a, .ubrn = "000000000001", .action = "RECORD_REVIEW_OUTCOME",
                                    .decided_version = 3, .state = "RETRY", .error_code = "LOCKED",
                                    .error_text = "A028 000000000001: HTTP 423", .next_attempt_at = "2030-01-01T00:10:00Z",
                                    .correlation_id = "11111111-2222-3333-4444-555555555555",
                                    .event = "WRITEBACK_RETRY" };
        outbox_record(f, &o, 0);
        assert_int_equal(outbox_due(f, "2030-01-01T00:05:00Z", ids), 1);
        assert_int_equal(ids[0], cc);
        assert_int_equal(outbox_due(f, "2030-01-01T00:10:00Z", ids), 2);
        assert_int_equal(ids[0], a);

        /* DONE with the version answered, and its audit row; then the next request of the UBRN is due */
        assert_int_equal(outbox_sending(f, a), 1);
        o.state = "DONE";
        o.answered_version = 4;
        o.error_code = NULL;
        o.error_text = NULL;
        o.event = "WRITEBACK_DONE";
        outbox_record(f, &o, 0);
        assert_q_text(f, "SELECT state FROM ers_outbox WHERE answered_version = 4 AND attempts = 2", NULL, "DONE");
        assert_q_text(f, "SELECT event_type FROM ers_audit WHERE ubrn = '000000000001' AND version = 4", NULL,
                      "WRITEBACK_DONE");
        assert_int_equal(db_int(raw(f), "SELECT COUNT(*) FROM ers_audit WHERE ubrn = '000000000001'", 0, NULL), 2);
        assert_int_equal(outbox_due(f, "2030-01-01T00:10:00Z", ids), 2);
        assert_int_equal(ids[0], b);
        assert_int_equal(ids[1], cc);
        /* a settled request is never changed again */
        o.state = "RETRY";
        outbox_record(f, &o, -ESTALE);
        assert_clean(&e);

        /* REJECTED with e-RS's code, STALE: both need a person */
        struct outbox_outcome rej = { .id = cc, .ubrn = "000000000002", .action = "ACCEPT_REFERRAL",
                                      .decided_version = 5, .state = "REJECTED", .error_code = "INVALID_REQUEST_STATE",
                                      .error_text = "A013 000000000002: HTTP 422", .event = "WRITEBACK_REJECTED" };
        outbox_record(f, &rej, 0);
        struct outbox_outcome st = { .id = b, .ubrn = "000000000001", .action = "ACCEPT_REFERRAL",
                                     .decided_version = 3, .state = "STALE", .event = "WRITEBACK_STALE" };
        outbox_record(f, &st, 0);
        assert_int_equal(outbox_due(f, "2030-01-02T00:00:00Z", ids), 0);
        assert_q_text(f, "SELECT error_code FROM ers_outbox WHERE state = 'REJECTED'", NULL, "INVALID_REQUEST_STATE");
        assert_int_equal(pas_outbox_counts(f->p, &c, &e), 0);
        assert_int_equal(c.done, 1);
        assert_int_equal(c.rejected, 1);
        assert_int_equal(c.stale, 1);
        assert_int_equal(c.new_ + c.retry + c.sending, 0);
        assert_string_equal(c.next_attempt_at, "");
        assert_int_equal(pas_outbox_attention(f->p, 10, outbox_attention_row, seen, &e), 0);
        char want[256];
        snprintf(want, sizeof want, "%" PRId64 ":000000000001:STALE:;%" PRId64 ":000000000002:REJECTED:INVALID_REQUEST_STATE;",
                 b, cc);
        if (b > cc)
                snprintf(want, sizeof want, "%" PRId64 ":000000000002:REJECTED:INVALID_REQUEST_STATE;%" PRId64
                         ":000000000001:STALE:;", cc, b);
        assert_string_equal(seen, want);
}

static double seconds_since(const struct timespec *t0);

/* Another session holds the row ersd must write: once the vendor's lock wait
 * runs out, the error is transient (-EAGAIN, try again later), with its
 * SQLSTATE; when that session ends, ersd goes through. */
static void test_lock_wait_is_transient(void **state) {
        struct fix *f = *state;
        struct errbuf e = { "" };
        char conn[800];
        SQLHENV env = SQL_NULL_HENV;
        SQLHDBC other = SQL_NULL_HDBC;
        SQLHSTMT st = SQL_NULL_HSTMT;
        struct timespec t0;
        struct pas *p = NULL;
        struct pas_tx *tx = NULL;
        double waited;
        int r;

        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_ledger(tx, "000000000001", 1, true, NULL, NULL, &e), 0);
        assert_int_equal(pas_commit(tx, &e), 0);

        /* the other session: a PAS job updating that row, not yet committed */
        assert_true(SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &env)));
        SQLSetEnvAttr(env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER) SQL_OV_ODBC3, 0);
        assert_true(SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_DBC, env, &other)));
        assert_true(SQL_SUCCEEDED(SQLDriverConnect(other, NULL, (SQLCHAR *) f->conn, SQL_NTS, NULL, 0, NULL,
                                                   SQL_DRIVER_NOPROMPT)));
        SQLSetConnectAttr(other, SQL_ATTR_AUTOCOMMIT, (SQLPOINTER) SQL_AUTOCOMMIT_OFF, 0);
        assert_true(SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, other, &st)));
        assert_true(SQL_SUCCEEDED(
                SQLExecDirect(st, (SQLCHAR *) "UPDATE ers_ledger SET complete = 0 WHERE ubrn = '000000000001'", SQL_NTS)));
        SQLFreeHandle(SQL_HANDLE_STMT, st);

        /* ersd with a short lock wait, set the way an operator would */
        snprintf(conn, sizeof conn, "%s;%s", f->conn,
                 G.kind == ENGINE_POSTGRESQL ? "ConnSettings={SET lock_timeout = 300}"
                                             : "INITSTMT={SET innodb_lock_wait_timeout = 1}");
        assert_int_equal(pas_open(conn, "auto", &p, &e), 0);
        assert_int_equal(pas_begin(p, &tx, &e), 0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = pas_put_ledger(tx, "000000000001", 2, true, NULL, NULL, &e);
        waited = seconds_since(&t0);
        print_message("      %s, after %.2f s: %s\n", G.name, waited, e.msg);
        assert_int_equal(r, -EAGAIN);
        assert_non_null(strstr(e.msg, "SQLSTATE "));
        /* the operator's wait was honoured: not an error at once, nor the server's default (PostgreSQL:
         * for ever; MariaDB: 50 s) */
        assert_true(waited >= 0.25 && waited < 10);
        pas_rollback(tx);

        /* the other session ends: ersd goes through */
        SQLEndTran(SQL_HANDLE_DBC, other, SQL_ROLLBACK);
        SQLDisconnect(other);
        SQLFreeHandle(SQL_HANDLE_DBC, other);
        SQLFreeHandle(SQL_HANDLE_ENV, env);
        assert_int_equal(pas_begin(p, &tx, &e), 0);
        assert_int_equal(pas_put_ledger(tx, "000000000001", 2, true, NULL, NULL, &e), 0);
        assert_int_equal(pas_commit(tx, &e), 0);
        pas_close(p);
        assert_int_equal(q_int(raw(f), "SELECT version FROM ers_ledger WHERE ubrn = ?", "000000000001"), 2);
}

/* ---------------------------------------------------------------------- */
/* Volume.                                                                 */

static double seconds_since(const struct timespec *t0) {
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double) (t.tv_sec - t0->tv_sec) + (double) (t.tv_nsec - t0->tv_nsec) / 1e9;
}

static void test_ledger_rate(void **state) {
        struct fix *f = *state;
        struct errbuf e = { "" };
        enum { N = 2000 };
        struct timespec t0;
        struct ledger_state st;
        char ubrn[UBRN_LEN + 1];
        double put_s, get_s;
        struct pas_tx *tx = NULL;

        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        for (int i = 0; i < N; i++) {
                snprintf(ubrn, sizeof ubrn, "%012d", 100000 + i);
                assert_int_equal(pas_put_ledger(tx, ubrn, i, true, "wl", "6f1c6f2e-1b7e-4c1a-9a55-0a4c1f0e2d11", &e), 0);
        }
        assert_int_equal(pas_commit(tx, &e), 0);
        put_s = seconds_since(&t0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        for (int i = 0; i < N; i++) {
                snprintf(ubrn, sizeof ubrn, "%012d", 100000 + i);
                assert_int_equal(pas_ledger_get(f->p, ubrn, &st, &e), 0);
                assert_int_equal(st.version, i);
        }
        get_s = seconds_since(&t0);
        print_message("      %s ledger: %d upserts in one transaction %.0f/s; %d reads %.0f/s\n", G.name, N, N / put_s,
                      N, N / get_s);
        assert_int_equal(count(f, "ers_ledger"), N);
}

/* A 20 MiB+ document is streamed in parts: memory stays bounded by a part or two. */
static void test_big_document_bounded_rss(void **state) {
        struct fix *f = *state;
        const int64_t size = 21 * (int64_t) MIB + 12345;
        char sha[65], small_sha[65], big_path[PATH_MAX], small_path[PATH_MAX];
        int fd = make_file("big.bin", size, 64, sha), small = make_file("small.bin", MIB, 65, small_sha);
        struct pas_data_rss rss;
        char *id;

        snprintf(big_path, sizeof big_path, "%s/big.bin", work);
        snprintf(small_path, sizeof small_path, "%s/small.bin", work);
        pas_data_store_measured(self_path, f->conn, big_path, size, sha, small_path, small_sha, &rss);
        print_message("      %s: 21 MiB document stored in %.2f s; peak RSS grew by %ld KiB, to %ld KiB%s\n", G.name,
                      rss.seconds, rss.grown_kib, rss.peak_kib, rss.instrumented ? " (instrumented: not asserted)" : "");
        if (!rss.instrumented)
                assert_true(rss.grown_kib < 8 * 1024);
        id = document_id(f, "big", 1);
        assert_int_equal(q_int(raw(f), "SELECT part_count FROM ers_document WHERE document_id = ?", id), 22);
        assert_document(f, id, sha, size);
        free(id);
        close(fd);
        close(small);
}

/* ---------------------------------------------------------------------- */
/* psqlodbc's logs.                                                        */

/* Every file psqlodbc wrote into its Logdir, concatenated (NULL when none). */
static char *driver_log_text(void) {
        DIR *d = opendir(driver_logs);
        struct dirent *de;
        char *all = NULL;
        size_t len = 0;

        assert_non_null(d);
        while ((de = readdir(d))) {
                char path[PATH_MAX + 300], buf[4096];
                FILE *fp;
                size_t n;

                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof path, "%s/%s", driver_logs, de->d_name);
                fp = fopen(path, "r");
                if (!fp)
                        continue;
                while ((n = fread(buf, 1, sizeof buf, fp)) > 0) {
                        all = realloc(all, len + n + 1);
                        assert_non_null(all);
                        memcpy(all + len, buf, n);
                        len += n;
                        all[len] = '\0';
                }
                fclose(fp);
                if (!all)
                        all = strdup(""); /* an empty file is a file */
        }
        closedir(d);
        return all;
}

static void clear_driver_logs(void) {
        DIR *d = opendir(driver_logs);
        struct dirent *de;

        assert_non_null(d);
        while ((de = readdir(d))) {
                char path[PATH_MAX + 300];
                if (de->d_name[0] == '.')
                        continue;
                snprintf(path, sizeof path, "%s/%s", driver_logs, de->d_name);
                unlink(path);
        }
        closedir(d);
}

/*
 * The machine's odbcinst.ini turns psqlodbc's CommLog on (as Debian's does)
 * and the operator even asks for it in the connection string: still nothing
 * of what ersd sends or receives is logged.
 */
static void test_psqlodbc_logs_nothing(void **state) {
        struct fix *f = *state;
        struct errbuf e = { "" };
        char conn[700], *text;
        struct pas *p = NULL;
        struct referral r;
        struct db *d;
        struct pas_tx *tx = NULL;

        /* The control: with CommLog on, the driver does log, and where we look. */
        clear_driver_logs();
        snprintf(conn, sizeof conn, "%s;CommLog=1", f->conn);
        d = db_open(conn);
        assert_non_null(d);
        free(db_text(d, "SELECT '" MARKER "'", 0, NULL, NULL));
        db_close(d);
        text = driver_log_text();
        assert_non_null(text);
        assert_non_null(strstr(text, MARKER));
        free(text);

        /* ersd's connection: the same request for CommLog, with both adapters' ways in. */
        for (int i = 0; i < 2; i++) {
                clear_driver_logs();
                assert_int_equal(pas_open(conn, i == 0 ? "postgresql" : "auto", &p, &e), 0);
                pas_data_referral(&r, "000000000001", 1, NHS_VALID);
                r.state_comment = MARKER;
                assert_int_equal(pas_begin(p, &tx, &e), 0);
                assert_int_equal(pas_put_referral(tx, &r, NULL, "wl", &e), 0);
                assert_int_equal(pas_commit(tx, &e), 0);
                text = driver_log_text();
                if (text)
                        fail_msg("psqlodbc wrote a log while ersd was connected: %.200s", text);
                free(text);
                pas_close(p);
                /* psqlodbc quirk: at SQLDisconnect it falls back to odbcinst.ini's CommLog
                 * and logs one "PQfinish: <address>" line; nothing else may be there. */
                text = driver_log_text();
                if (text) {
                        assert_null(strstr(text, MARKER));
                        assert_null(strstr(text, NHS_VALID));
                        assert_null(strstr(text, "ers_"));
                        char *save = NULL;
                        for (char *line = strtok_r(text, "\n", &save); line; line = strtok_r(NULL, "\n", &save))
                                if (strncmp(line, "PQfinish: ", 10) != 0)
                                        fail_msg("psqlodbc logged more than its disconnect: %.200s", line);
                }
                free(text);
        }
}

/* ---------------------------------------------------------------------- */
/* Schema upgrade and patient matching.                                    */

#define NHS_A "9990000018" /* test range, each passes modulus 11 */
#define NHS_B "9990000026"
#define NHS_C "9990000034"
#define NHS_D "9990000042"
#define SHA_ONE_ZERO "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d" /* one byte 0x00 */

/* The documents an old schema holds before its upgrade. */
static const struct {
        const char *document_id, *kind, *attachment_id;
} old_documents[] = {
        { "0b4e7a0e-1b2c-4d3e-8f40-000000000001", "ATTACHMENT", "att-\xc3\xa9" },
        { "f13a9c55-7d2e-4b1f-9a0c-000000000002", "CRI", "CRI-v3" },
        { "by-hand-not-a-uuid-0000000000000003", "ATTACHMENT", "att-2" },
};

static void exec_ok(const char *conn, const char *sql) {
        if (engine_exec(conn, sql, false) != 0)
                fail_msg("%s: %s failed", G.name, sql);
}

/* Runs tests/fixtures/schema-v<N>/<engine>.sql: the DDL of an older version as
 * it was shipped, so that an upgrade is tested from what trusts really have. */
static void exec_statement(void *userdata, size_t i, const char *stmt) {
        (void) i;
        exec_ok(userdata, stmt);
}

static void create_old_schema(const char *conn, int version) {
        char path[128], sql[512];

        snprintf(path, sizeof path, "tests/fixtures/schema-v%d/%s.sql", version, G.name);
        assert_true(pas_data_sql_statements(path, exec_statement, (void *) conn) >= 8);
        snprintf(sql, sizeof sql, "INSERT INTO ers_schema_version (version) VALUES (%d)", version);
        exec_ok(conn, sql);
        exec_ok(conn, "INSERT INTO ers_referral (ubrn, version, nhs_number, nhs_number_valid, first_synced_at, "
                      "last_synced_at) VALUES ('000000000001', 3, '" NHS_A "', 1, '2026-01-01T00:00:00Z', "
                      "'2026-01-01T00:00:00Z')");
        exec_ok(conn, "INSERT INTO ers_ledger (ubrn, version, complete, synced_at) "
                      "VALUES ('000000000001', 3, 1, '2026-01-01T00:00:00Z')");
        /* its documents: an attachment with its one part, its letter, and a row a DBA made by hand
         * (a document id that is not a UUID: the key step reads it too) */
        for (size_t i = 0; i < sizeof old_documents / sizeof old_documents[0]; i++) {
                char key[DOCUMENT_KEY_HEX + 1] = "";

                /* from version 4 on, every document row has its key */
                assert_int_equal(document_key(old_documents[i].attachment_id, 0, key), 0);
                snprintf(sql, sizeof sql,
                         "INSERT INTO ers_document (document_id, ubrn, source_ubrn, kind, attachment_id, revision, "
                         "source_version, title, fetch_status, size_bytes, sha256, part_count, stored_at%s) VALUES "
                         "('%s', '000000000001', '000000000001', '%s', '%s', 1, 3, 'a letter', 'FETCHED', 1, '"
                         SHA_ONE_ZERO "', 1, '2026-01-01T00:00:00Z'%s%s%s)",
                         version >= 4 ? ", attachment_key" : "", old_documents[i].document_id, old_documents[i].kind,
                         old_documents[i].attachment_id, version >= 4 ? ", '" : "", version >= 4 ? key : "",
                         version >= 4 ? "'" : "");
                exec_ok(conn, sql);
                snprintf(sql, sizeof sql, "INSERT INTO ers_document_part (document_id, seq, data) VALUES ('%s', 1, %s)",
                         old_documents[i].document_id, G.kind == ENGINE_POSTGRESQL ? "decode('00', 'hex')" : "X'00'");
                exec_ok(conn, sql);
        }
}

/* The documents of the old schema kept whole, keyed, and found by their key. */
static void assert_old_documents(struct fix *f) {
        struct errbuf e = { "" };

        for (size_t i = 0; i < sizeof old_documents / sizeof old_documents[0]; i++) {
                char key[DOCUMENT_KEY_HEX + 1];
                struct document_state st;
                bool cri = strcmp(old_documents[i].kind, "CRI") == 0;

                assert_int_equal(document_key(old_documents[i].attachment_id, 0, key), 0);
                assert_q_text(f, "SELECT attachment_key FROM ers_document WHERE document_id = ?",
                              old_documents[i].document_id, key);
                /* what docs/schema.md ("Upgrading") gives DBAs to compute it by hand */
                if (G.kind == ENGINE_POSTGRESQL)
                        assert_q_text(f, "SELECT encode(sha256(convert_to(attachment_id, 'UTF8')), 'hex') FROM "
                                         "ers_document WHERE document_id = ?",
                                      old_documents[i].document_id, key);
                if (G.kind == ENGINE_MARIADB)
                        assert_q_text(f, "SELECT SHA2(attachment_id, 256) FROM ers_document WHERE document_id = ?",
                                      old_documents[i].document_id, key);
                assert_int_equal(q_int(raw(f), "SELECT occurrence FROM ers_document WHERE document_id = ?",
                                       old_documents[i].document_id),
                                 0);
                assert_q_text(f, "SELECT attachment_id FROM ers_document WHERE document_id = ?",
                              old_documents[i].document_id, old_documents[i].attachment_id);
                assert_document(f, old_documents[i].document_id, SHA_ONE_ZERO, 1);
                assert_int_equal(pas_document_get(f->p, "000000000001", "000000000001",
                                                  cri ? DOCUMENT_CRI : DOCUMENT_ATTACHMENT,
                                                  old_documents[i].attachment_id, 0, &st, &e),
                                 0);
                assert_true(st.found && st.fetched);
                assert_string_equal(st.sha256, SHA_ONE_ZERO);
                document_state_free(&st);
        }
}

/* What the old UNIQUE (ubrn, source_ubrn, attachment_id, revision) refused: an attachment with the letter's id,
 * an id twice.  Written on the upgraded schema, nothing refused. */
static void assert_new_identity(struct fix *f) {
        struct errbuf e = { "" };
        char sha[65];
        int fd = make_file("upgraded-identity", 10, 31, sha);
        struct document_rec as_letter = pas_data_document("000000000001", "CRI-v3", 10, sha);
        struct document_rec again = pas_data_document("000000000001", "att-\xc3\xa9", 10, sha);
        bool written = false;
        struct pas_tx *tx = NULL;

        again.occurrence = 1;
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        if (pas_put_document(tx, &as_letter, fd, &written, &e) < 0 || !written ||
            pas_put_document(tx, &again, fd, &written, &e) < 0 || !written)
                fail_msg("%s: on the upgraded schema: %s", G.name, e.msg);
        assert_int_equal(pas_commit(tx, &e), 0);
        assert_int_equal(count(f, "ers_document"), 5);
        close(fd);
}

static void assert_upgraded(struct fix *f) {
        struct errbuf e = { "" };

        assert_old_documents(f);
        assert_int_equal(pas_check_schema(f->p, &e), 0);
        assert_int_equal(q_int(raw(f), "SELECT version FROM ers_schema_version", NULL), 5);
        assert_int_equal(count(f, "ers_schema_version"), 1);
        /* the referral and its ledger row kept, the new columns at their defaults */
        assert_q_text(f, "SELECT nhs_number FROM ers_referral WHERE ubrn = ?", "000000000001", NHS_A);
        assert_q_text(f, "SELECT patient_match FROM ers_referral WHERE ubrn = ?", "000000000001", "NOT_CONFIGURED");
        assert_q_text(f, "SELECT patient_match FROM ers_referral_inbox WHERE ubrn = ?", "000000000001",
                      "NOT_CONFIGURED");
        assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM ers_referral WHERE pas_patient_id IS NULL", NULL), 1);
        assert_int_equal(q_int(raw(f), "SELECT version FROM ers_ledger WHERE ubrn = ?", "000000000001"), 3);
        assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM ers_ledger WHERE first_seen_at IS NULL AND "
                                  "left_worklist_at IS NULL AND next_check_at IS NULL", NULL), 1);
        /* the version-3 tables, empty */
        assert_int_equal(count(f, "ers_retry"), 0);
        assert_int_equal(count(f, "ers_budget"), 0);
        assert_int_equal(count(f, "ers_poll"), 0);
        assert_int_equal(count(f, "ers_audit"), 0);
        assert_int_equal(count(f, "ers_worklist_entry"), 0);
        assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM ers_document WHERE removed_at IS NULL", NULL), count(f, "ers_document"));
        assert_int_equal(count(f, "ers_document"), 3);
        assert_int_equal(count(f, "ers_document_part"), 3);
        assert_int_equal(q_int(raw(f), "SELECT documents_fetched FROM ers_referral_inbox WHERE ubrn = ?", "000000000001"), 3);
        /* version 5: the new columns NULL, the new tables empty, the view's new column */
        assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM ers_referral WHERE clinical_info_last_updated IS NULL "
                                  "AND appointment_status IS NULL AND advice_request IS NULL", NULL), 1);
        assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM ers_document WHERE document_type IS NULL AND "
                                  "description IS NULL AND attached_on_behalf_of IS NULL", NULL), 3);
        assert_int_equal(count(f, "ers_referral_requirement"), 0);
        assert_int_equal(count(f, "ers_referral_answer"), 0);
        assert_int_equal(count(f, "ers_outbox"), 0);
        assert_int_equal(q_int(raw(f), "SELECT additional_requirements FROM ers_referral_inbox WHERE ubrn = ?",
                               "000000000001"), 0);
}

static void upgrade_from(struct fix *f, int version, const char *first_step) {
        struct fix g = { .p = NULL };
        struct errbuf e = { "" };

        create_old_schema(f->conn, version);
        assert_int_equal(pas_check_schema(f->p, &e), -EPROTO);
        assert_non_null(strstr(e.msg, "--init-db")); /* says how to upgrade */
        assert_int_equal(pas_data_init_schema(f->p, &e), 0);
        assert_upgraded(f);
        assert_int_equal(pas_data_init_schema(f->p, &e), 0); /* idempotent */
        assert_upgraded(f);
        assert_new_identity(f);

        /* An upgrade stopped after its first step (MariaDB commits each ALTER
         * at once): run again, it completes. */
        assert_int_equal(engine_new_database(&G, g.conn, sizeof g.conn), 0);
        assert_int_equal(pas_open(g.conn, "auto", &g.p, &e), 0);
        create_old_schema(g.conn, version);
        exec_ok(g.conn, first_step);
        assert_int_equal(pas_data_init_schema(g.p, &e), 0);
        assert_upgraded(&g);
        assert_new_identity(&g);
        pas_close(g.p);
        db_close(g.raw);
}

static void test_schema_upgrade_from_v1(void **state) {
        upgrade_from(*state, 1, "ALTER TABLE ers_referral ADD COLUMN pas_patient_id VARCHAR(64)");
}

static void test_schema_upgrade_from_v2(void **state) {
        upgrade_from(*state, 2, "ALTER TABLE ers_ledger ADD COLUMN first_seen_at VARCHAR(32)");
}

static void test_schema_upgrade_from_v3(void **state) {
        upgrade_from(*state, 3, "ALTER TABLE ers_document ADD COLUMN occurrence INTEGER DEFAULT 0 NOT NULL");
}

static void test_schema_upgrade_from_v4(void **state) {
        upgrade_from(*state, 4, G.kind == ENGINE_MARIADB
                                        ? "ALTER TABLE ers_referral ADD COLUMN clinical_info_last_updated LONGTEXT"
                                        : "ALTER TABLE ers_referral ADD COLUMN clinical_info_last_updated TEXT");
}

/* The schema's shape as the engine's catalog describes it: columns (name, position, type, nullability,
 * default), indexes and constraints, the view.  Nothing that names the database. */
static char *schema_shape(struct fix *f) {
        static const char *const sqlite[] = {
                "SELECT group_concat(line, char(10)) FROM (SELECT m.name || '.' || c.name || ' ' || c.cid || ' ' || "
                "c.type || ' ' || c.\"notnull\" || ' ' || COALESCE(c.dflt_value, '-') || ' ' || c.pk AS line "
                "FROM sqlite_master m, pragma_table_info(m.name) c WHERE m.type = 'table' AND m.name LIKE 'ers%' "
                "ORDER BY m.name, c.cid)",
                "SELECT group_concat(line, char(10)) FROM (SELECT m.name || ' ' || i.name || ' ' || i.\"unique\" || "
                "' ' || i.origin || ' ' || k.seqno || ' ' || k.name AS line FROM sqlite_master m, "
                "pragma_index_list(m.name) i, pragma_index_info(i.name) k WHERE m.type = 'table' "
                "AND m.name LIKE 'ers%' ORDER BY m.name, i.name, k.seqno)",
                "SELECT group_concat(line, char(10)) FROM (SELECT m.name || ' ' || k.\"table\" || ' ' || k.\"from\" "
                "|| ' ' || k.\"to\" AS line FROM sqlite_master m, pragma_foreign_key_list(m.name) k "
                "WHERE m.type = 'table' AND m.name LIKE 'ers%' ORDER BY m.name, k.id, k.seq)",
                ("SELECT group_concat(name || ': ' || sql, char(10)) FROM (SELECT name, sql FROM sqlite_master "
                 "WHERE type IN ('view', 'index') AND sql IS NOT NULL ORDER BY name)"),
        };
        static const char *const postgresql[] = {
                "SELECT string_agg(table_name || '.' || column_name || ' ' || ordinal_position || ' ' || data_type || "
                "' ' || COALESCE(character_maximum_length::text, '-') || ' ' || is_nullable || ' ' || "
                "COALESCE(column_default, '-'), E'\\n' ORDER BY table_name, ordinal_position) "
                "FROM information_schema.columns WHERE table_schema = current_schema()",
                "SELECT string_agg(tablename || ' ' || indexname || ' ' || indexdef, E'\\n' ORDER BY tablename, "
                "indexname) FROM pg_indexes WHERE schemaname = current_schema()",
                "SELECT string_agg(conrelid::regclass::text || ' ' || conname || ' ' || pg_get_constraintdef(oid), "
                "E'\\n' ORDER BY conrelid::regclass::text, conname) FROM pg_constraint "
                "WHERE connamespace = current_schema()::regnamespace",
                "SELECT pg_get_viewdef('ers_referral_inbox'::regclass, true)",
        };
        static const char *const mariadb[] = {
                "SELECT GROUP_CONCAT(CONCAT_WS(' ', table_name, column_name, ordinal_position, column_type, "
                "is_nullable, COALESCE(column_default, '-'), COALESCE(collation_name, '-')) "
                "ORDER BY table_name, ordinal_position SEPARATOR '\\n') FROM information_schema.columns "
                "WHERE table_schema = DATABASE()",
                "SELECT GROUP_CONCAT(CONCAT_WS(' ', table_name, index_name, seq_in_index, column_name, non_unique) "
                "ORDER BY table_name, index_name, seq_in_index SEPARATOR '\\n') FROM information_schema.statistics "
                "WHERE table_schema = DATABASE()",
                "SELECT GROUP_CONCAT(CONCAT_WS(' ', table_name, constraint_name, constraint_type) "
                "ORDER BY table_name, constraint_name SEPARATOR '\\n') FROM information_schema.table_constraints "
                "WHERE table_schema = DATABASE()",
                "SELECT GROUP_CONCAT(CONCAT_WS(' ', table_name, engine, table_collation) ORDER BY table_name "
                "SEPARATOR '\\n') FROM information_schema.tables WHERE table_schema = DATABASE()",
                "SELECT REPLACE(view_definition, CONCAT('`', DATABASE(), '`.'), '') FROM information_schema.views "
                "WHERE table_schema = DATABASE()",
        };
        const char *const *q = G.kind == ENGINE_SQLITE ? sqlite : G.kind == ENGINE_POSTGRESQL ? postgresql : mariadb;
        size_t n = G.kind == ENGINE_MARIADB ? 5 : 4, len = 0;
        char *shape = strdup("");

        for (size_t i = 0; i < n && shape; i++) {
                char *part = db_text(raw(f), q[i], 0, NULL, NULL);
                if (!part)
                        fail_msg("%s: %s: no answer", G.name, q[i]);
                char *more = realloc(shape, len + strlen(part) + 2);
                assert_non_null(more);
                shape = more;
                memcpy(shape + len, part, strlen(part));
                len += strlen(part);
                shape[len++] = '\n';
                shape[len] = '\0';
                free(part);
        }
        assert_non_null(shape);
        return shape;
}

/* A schema upgraded from each older version is the schema --init-db creates: the same columns (name,
 * position, type, nullability, default), indexes, keys and view. */
static void test_schema_upgraded_is_fresh(void **state) {
        struct fix *fresh = *state;
        struct errbuf e = { "" };
        char *want;

        assert_int_equal(pas_data_init_schema(fresh->p, &e), 0);
        want = schema_shape(fresh);
        /* the document's identity: (ubrn, source_ubrn, kind, attachment_key, revision) unique */
        assert_non_null(strstr(want, G.kind == ENGINE_SQLITE ? "ers_document sqlite_autoindex_ers_document_2 1 u 3 "
                                                               "attachment_key"
                                                             : "ers_document_identity"));
        for (int version = 1; version <= 4; version++) {
                struct fix g = { .p = NULL };
                char *got;

                assert_int_equal(engine_new_database(&G, g.conn, sizeof g.conn), 0);
                assert_int_equal(pas_open(g.conn, "auto", &g.p, &e), 0);
                create_old_schema(g.conn, version);
                if (pas_data_init_schema(g.p, &e) < 0)
                        fail_msg("%s: upgrade from version %d: %s", G.name, version, e.msg);
                got = schema_shape(&g);
                if (strcmp(got, want) != 0) {
                        const char *a = got, *b = want;
                        while (*a && *a == *b)
                                a++, b++;
                        while (a > got && a[-1] != '\n')
                                a--, b--;
                        fail_msg("%s: upgraded from version %d differs from fresh at:\n  upgraded: %.200s\n  fresh:    %.200s",
                                 G.name, version, a, b);
                }
                free(got);
                pas_close(g.p);
                db_close(g.raw);
        }
        free(want);
}

/* Issue 13, defect 8: every e-RS text of any length stored whole and exactly (tests/support/pas_whole.h).
 * Fails before schema version 4 with SQLSTATE 22001 on PostgreSQL and MariaDB. */
static void test_long_texts_stored_whole(void **state) {
        struct fix *f = *state;

        pas_whole_texts(f->p, f->conn, work);
}

/* Issue 13, defect 8: text ersd writes itself, quoting text of any length, cut on a character. */
static void test_own_texts_cut_on_a_character(void **state) {
        struct fix *f = *state;

        pas_whole_own_texts(f->p, f->conn, work);
}

/* Issue 15: every element the walk keeps, the additional requirements, whole; a new version replaces them. */
static void test_every_element_stored_whole(void **state) {
        struct fix *f = *state;

        pas_elements_whole(f->p, f->conn, work);
}

/* Issue 15: each A005 answer kept exactly (SHA-256, size), one row per distinct answer of a version. */
static void test_answers_kept_exact(void **state) {
        struct fix *f = *state;

        pas_elements_answers(f->p, f->conn);
}

/* Issue 13, defect 16: a letter and an attachment with one id; one id twice. */
static void test_document_identity(void **state) {
        struct fix *f = *state;

        pas_whole_identity(f->p, f->conn, work);
}

static void put_match(struct fix *f, const char *ubrn, const char *nhs, bool lookup) {
        struct referral ref;
        struct patient_match m;
        struct errbuf e = { "" };
        struct pas_tx *tx = NULL;

        pas_data_referral(&ref, ubrn, 1, nhs);
        assert_int_equal(pas_match_patient(f->p, nhs, &m, &e), 0);
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_referral(tx, &ref, NULL, "wl", &e), 0);
        if (lookup)
                assert_int_equal(pas_put_patient_match(tx, ubrn, &m, &e), 0);
        assert_int_equal(pas_commit(tx, &e), 0); /* ref borrows literals: nothing to free */
}

static void test_patient_matching(void **state) {
        static const char *const bad[] = {
                "SELEC patient_id FROM pas_patient WHERE nhs_number = ?",          /* syntax */
                "SELECT patient_id FROM no_such_table WHERE nhs_number = ?",       /* no table */
                "SELECT patient_id, nhs_number FROM pas_patient WHERE nhs_number = ?", /* two columns */
                "SELECT patient_id FROM pas_patient WHERE nhs_number = ? OR patient_id = ?", /* two markers */
        };
        struct fix *f = *state;
        struct errbuf e = { "" };
        struct patient_match m;
        struct patient_rematch *list = NULL;
        size_t n = 0;
        struct pas_tx *tx = NULL;

        exec_ok(f->conn, "CREATE TABLE pas_patient (patient_id VARCHAR(20), nhs_number VARCHAR(10))");
        exec_ok(f->conn, "INSERT INTO pas_patient VALUES ('H100', '" NHS_A "'), ('H200', '" NHS_B "'), "
                         "('H201', '" NHS_B "'), ('H300', '" NHS_C "'), ('H300', '" NHS_C "'), (NULL, '" NHS_D "')");

        /* Not configured: nothing is looked up. */
        assert_int_equal(pas_match_patient(f->p, NHS_A, &m, &e), 0);
        assert_int_equal(m.status, PATIENT_NOT_CONFIGURED);

        for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
                e.msg[0] = '\0';
                assert_true(pas_set_patient_lookup(f->p, bad[i], &e) < 0);
                print_message("      %s: bad lookup %zu: %s\n", G.name, i + 1, e.msg);
                assert_non_null(strstr(e.msg, "patient lookup"));
                assert_clean(&e);
                assert_int_equal(pas_match_patient(f->p, NHS_A, &m, &e), 0); /* refused: none set */
                assert_int_equal(m.status, PATIENT_NOT_CONFIGURED);
        }

        assert_int_equal(pas_set_patient_lookup(f->p, "SELECT patient_id FROM pas_patient WHERE nhs_number = ?", &e),
                         0);
        assert_int_equal(pas_match_patient(f->p, NHS_A, &m, &e), 0);
        assert_int_equal(m.status, PATIENT_MATCHED);
        assert_string_equal(m.pas_patient_id, "H100");
        assert_int_equal(pas_match_patient(f->p, NHS_B, &m, &e), 0);
        assert_int_equal(m.status, PATIENT_AMBIGUOUS);
        assert_string_equal(m.pas_patient_id, "");
        assert_int_equal(pas_match_patient(f->p, NHS_C, &m, &e), 0); /* one patient listed twice */
        assert_int_equal(m.status, PATIENT_MATCHED);
        assert_string_equal(m.pas_patient_id, "H300");
        assert_int_equal(pas_match_patient(f->p, NHS_D, &m, &e), 0); /* a NULL id is no patient */
        assert_int_equal(m.status, PATIENT_UNMATCHED);
        assert_int_equal(pas_match_patient(f->p, NHS_INVALID, &m, &e), 0);
        assert_int_equal(m.status, PATIENT_UNMATCHED);
        assert_int_equal(pas_match_patient(f->p, NULL, &m, &e), 0);
        assert_int_equal(m.status, PATIENT_UNMATCHED);

        /* Every referral is written, whatever the match. */
        put_match(f, "000000000001", NHS_A, true);
        put_match(f, "000000000002", NHS_B, true);
        put_match(f, "000000000003", NHS_C, false); /* written before a lookup was configured */
        put_match(f, "000000000004", NHS_D, true);
        put_match(f, "000000000005", NHS_INVALID, true);
        assert_int_equal(count(f, "ers_referral"), 5);
        assert_q_text(f, "SELECT pas_patient_id FROM ers_referral_inbox WHERE ubrn = ?", "000000000001", "H100");
        assert_q_text(f, "SELECT patient_match FROM ers_referral_inbox WHERE ubrn = ?", "000000000001", "MATCHED");
        assert_q_text(f, "SELECT patient_match FROM ers_referral WHERE ubrn = ?", "000000000002", "AMBIGUOUS");
        assert_q_text(f, "SELECT patient_match FROM ers_referral WHERE ubrn = ?", "000000000003", "NOT_CONFIGURED");
        assert_q_text(f, "SELECT patient_match FROM ers_referral WHERE ubrn = ?", "000000000004", "UNMATCHED");
        assert_q_text(f, "SELECT patient_match FROM ers_referral WHERE ubrn = ?", "000000000005", "UNMATCHED");
        assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM ers_referral WHERE pas_patient_id IS NOT NULL", NULL), 1);

        /* To match again: not the MATCHED one, not the invalid number; never
         * checked first; bounded. */
        assert_int_equal(pas_patients_to_rematch(f->p, "9999", 10, &list, &n, &e), 0);
        assert_int_equal(n, 3);
        assert_string_equal(list[0].ubrn, "000000000003");
        assert_string_equal(list[0].nhs_number, NHS_C);
        assert_true(strcmp(list[1].ubrn, "000000000002") == 0 || strcmp(list[1].ubrn, "000000000004") == 0);
        free(list);
        assert_int_equal(pas_patients_to_rematch(f->p, "9999", 1, &list, &n, &e), 0);
        assert_int_equal(n, 1);
        assert_string_equal(list[0].ubrn, "000000000003");
        free(list);
        assert_int_equal(pas_patients_to_rematch(f->p, "2000", 10, &list, &n, &e), 0); /* checked after that */
        assert_int_equal(n, 1);
        free(list);

        /* The PAS registers the patient: the next try fills the id in. */
        exec_ok(f->conn, "INSERT INTO pas_patient VALUES ('H400', '" NHS_D "')");
        assert_int_equal(pas_match_patient(f->p, NHS_D, &m, &e), 0);
        assert_int_equal(m.status, PATIENT_MATCHED);
        assert_int_equal(pas_begin(f->p, &tx, &e), 0);
        assert_int_equal(pas_put_patient_match(tx, "000000000004", &m, &e), 0);
        assert_int_equal(pas_commit(tx, &e), 0);
        assert_q_text(f, "SELECT pas_patient_id FROM ers_referral WHERE ubrn = ?", "000000000004", "H400");
        assert_q_text(f, "SELECT patient_match FROM ers_referral WHERE ubrn = ?", "000000000004", "MATCHED");

        /* A lookup that fails when run (the table went): an error, no NHS number in it. */
        exec_ok(f->conn, "DROP TABLE pas_patient");
        e.msg[0] = '\0';
        if (pas_match_patient(f->p, NHS_A, &m, &e) < 0) {
                print_message("      %s: lookup on a dropped table: %s\n", G.name, e.msg);
                assert_clean(&e);
        }
        assert_int_equal(pas_set_patient_lookup(f->p, NULL, &e), 0);
}

/* ---------------------------------------------------------------------- */
/* The whole sync: build/ersd --once against the mock e-RS.                */

static struct mock M;

/* ersd status --json: the exit status expected, the database read, the
 * documents owed as the ledger has them, an overdue UBRN when exit 4. */
static void check_status(const char *conf, json_object *manifest, struct fix *f, int expect) {
        struct run r = run_ersd(conf, manifest, ARGS("status"), NULL);
        const char *const json_args[] = { "status", "--json", NULL };

        if (r.status != expect)
                fail_msg("ersd status exited %d, expected %d: %s%s", r.status, expect, r.out, r.err);
        run_free(&r);
        r = run_ersd(conf, manifest, json_args, NULL);
        json_object *o = json_tokener_parse(r.out);
        if (!o)
                fail_msg("ersd status --json printed no JSON: %s%s", r.out, r.err);
        assert_int_equal(r.status, expect);
        assert_true(json_object_get_boolean(json_object_object_get(o, "database_ok")));
        json_object *counts = json_object_object_get(o, "counts");
        assert_int_equal(json_object_get_int64(json_object_object_get(counts, "documents_owed")),
                         db_int(raw(f), "SELECT COUNT(*) FROM ers_ledger WHERE complete = 0", 0, NULL));
        json_object *overdue = json_object_object_get(o, "overdue");
        assert_int_equal(json_object_array_length(overdue), expect == 4 ? 1 : 0);
        if (expect == 4)
                assert_string_equal(jstr(json_object_array_get_idx(overdue, 0), "ubrn"), "300000099902");
        json_object_put(o);
        run_free(&r);
}

static void test_sync_end_to_end(void **state) {
        static const char *const fields[] = { "nhs_number", "priority", "state", "specialty", "appointment_start",
                                              "request_id" };
        static const char *const args[] = { "--referrals", "12", "--attachments", "2", NULL };
        struct fix *f = *state;
        char conf[PATH_MAX + 32], text[2048];
        json_object *manifest, *refs;
        size_t docs = 0, big = 0;
        struct timespec t0;
        struct run r;

        assert_int_equal(mock_start(&M, args), 0);
        manifest = mock_get(&M, "/_mock/manifest");
        assert_non_null(manifest);
        refs = json_object_object_get(manifest, "referrals");
        snprintf(conf, sizeof conf, "%s/ersd-%s.conf", work, G.name);
        snprintf(text, sizeof text, "%s/state-%s", work, G.name);
        assert_int_equal(write_test_config(conf, M.base_url, NULL, f->conn, NULL, text, NULL), 0);

        for (int i = 0; i < 2; i++) {
                r = run_ersd(conf, manifest, ARGS("--init-db"), NULL);
                if (r.status != 0)
                        fail_msg("ersd --init-db exited %d: %s", r.status, r.err);
                assert_non_null(strstr(r.out, G.name)); /* "schema ready (adapter <name>, …)" */
                run_free(&r);
        }
        clock_gettime(CLOCK_MONOTONIC, &t0);
        r = run_ersd(conf, manifest, ARGS("--once"), NULL);
        if (r.status != 0)
                fail_msg("ersd --once exited %d: %s", r.status, r.err);
        assert_non_null(strstr(r.out, "0 failed"));
        print_message("      %s: ersd --once synced %zu referrals in %.2f s\n", G.name, json_object_array_length(refs),
                      seconds_since(&t0));
        run_free(&r);

        for (size_t i = 0; i < json_object_array_length(refs); i++) {
                json_object *m = json_object_array_get_idx(refs, i), *atts = json_object_object_get(m, "attachments");
                const char *ubrn = jstr(m, "ubrn");
                char sql[128];

                for (size_t k = 0; k < sizeof fields / sizeof *fields; k++) {
                        bool null;
                        snprintf(sql, sizeof sql, "SELECT %s FROM ers_referral WHERE ubrn = ?", fields[k]);
                        char *got = text_of(f, sql, ubrn, &null);
                        const char *want = jstr(m, fields[k]);
                        if ((want == NULL) != null || (want && strcmp(want, got) != 0))
                                fail_msg("UBRN %s: %s differs from what e-RS served", ubrn, fields[k]);
                        free(got);
                }
                assert_int_equal(q_int(raw(f), "SELECT version FROM ers_referral WHERE ubrn = ?", ubrn),
                                 json_object_get_int64(json_object_object_get(m, "version")));
                for (size_t a = 0; a < json_object_array_length(atts); a++) {
                        json_object *att = json_object_array_get_idx(atts, a);
                        const char *q[] = { ubrn, jstr(att, "id") };
                        char *id;

                        if (strcmp(jstr(att, "availability"), "AVAILABLE") != 0)
                                continue;
                        id = db_text(raw(f),
                                     "SELECT document_id FROM ers_document WHERE source_ubrn = ? AND attachment_id = ?",
                                     2, q, NULL);
                        assert_non_null(id);
                        assert_document(f, id, jstr(att, "sha256"),
                                        json_object_get_int64(json_object_object_get(att, "size")));
                        if (json_object_get_int64(json_object_object_get(att, "size")) >= 20 * MIB)
                                big++;
                        docs++;
                        free(id);
                }
        }
        assert_true(docs >= 12);
        assert_int_equal(big, 1); /* the mock's 20 MiB attachment, byte for byte */

        /* a second run writes nothing */
        r = run_ersd(conf, manifest, ARGS("--once"), NULL);
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.out, " 0 new, 0 updated,"));
        run_free(&r);

        /* a new file under the same attachment id: a new revision, in the audit trail as read back
         * by ersd audit; and reconcile finds nothing off */
        json_object *eleven = json_object_array_get_idx(refs, 11);
        const char *att = jstr(json_object_array_get_idx(json_object_object_get(eleven, "attachments"), 0), "id");
        snprintf(text, sizeof text, "/_mock/change?ubrn=300000000011&what=attachment_revised&attachment=%s", att);
        assert_int_equal(mock_post(&M, text), 200);
        r = run_ersd(conf, manifest, ARGS("--once"), NULL);
        assert_int_equal(r.status, 0);
        run_free(&r);
        const char *q[] = { "300000000011", att };
        assert_int_equal(db_int(raw(f), "SELECT MAX(revision) FROM ers_document WHERE ubrn = ? AND attachment_id = ?", 2,
                                q),
                         2);
        static const char *const audit[] = { "audit", "--json", "300000000011", NULL };
        r = run_ersd(conf, manifest, audit, NULL);
        assert_int_equal(r.status, 0);
        json_object *trail = json_tokener_parse(r.out);
        assert_non_null(trail);
        json_object *rows = json_object_object_get(trail, "audit");
        assert_int_equal(json_object_array_length(rows), 2);
        snprintf(text, sizeof text, "attachment revised: %s (revision 2)", att);
        assert_non_null(strstr(jstr(json_object_array_get_idx(rows, 1), "detail"), text));
        json_object_put(trail);
        run_free(&r);
        static const char *const reconcile[] = { "reconcile", NULL };
        r = run_ersd(conf, manifest, reconcile, NULL);
        if (r.status != 0)
                fail_msg("%s: reconcile exited %d: %s%s", G.name, r.status, r.out, r.err);
        assert_non_null(strstr(r.out, "12 listed on the latest worklists: 0 missing, 0 stale;"));
        run_free(&r);
        /* ersd status reads this vendor's tables: the documents owed, then an overdue URGENT
         * referral as the scheduler records it (exit 4), in JSON. */
        check_status(conf, manifest, f, 0);
        char seen[32];
        time_t t = time(NULL) - 3 * 3600;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(seen, sizeof seen, "%Y-%m-%dT%H:%M:%SZ", &tm);
        const char *p[] = { seen };
        assert_int_equal(db_exec_with(raw(f),
                                 "INSERT INTO ers_retry (ubrn, worklist, entry_version, priority, first_seen_at, "
                                 "attempts, next_attempt_at, parked, reason) VALUES ('300000099902', 'cardiology', 2, "
                                 "'URGENT', ?, 1, ?, 0, 'A005: HTTP 503')",
                                 2, (const char *const[]){ p[0], p[0] }),
                         0);
        check_status(conf, manifest, f, 4);
        assert_int_equal(db_exec(raw(f), "DELETE FROM ers_retry"), 0);
        json_object_put(manifest);
        mock_stop(&M);
}

/* The sync with a patient lookup, through build/ersd: --check-config
 * prepares the lookup against the live database and names its file:line;
 * every referral is written whatever the match; a later round fills in a
 * patient the PAS has registered since. */
static void test_sync_patient_matching(void **state) {
        static const char *const args[] = { "--referrals", "6", "--attachments", "0", NULL };
        struct fix *f = *state;
        char conf[PATH_MAX + 32], text[2048], where[PATH_MAX + 96], sql[256];
        const char *valid[6] = { NULL };
        size_t n_valid = 0;
        json_object *manifest, *refs;
        struct run r;

        assert_int_equal(mock_start(&M, args), 0);
        manifest = mock_get(&M, "/_mock/manifest");
        assert_non_null(manifest);
        refs = json_object_object_get(manifest, "referrals");
        snprintf(conf, sizeof conf, "%s/ersd-match-%s.conf", work, G.name);
        snprintf(text, sizeof text, "%s/state-match-%s", work, G.name);
        assert_int_equal(write_test_config(conf, M.base_url, NULL, f->conn,
                                           "  patient_lookup = \"SELECT patient_id FROM pas_patient WHERE nhs_number = ?\";\n",
                                           text, NULL),
                         0);
        snprintf(where, sizeof where, "%s:9: database.patient_lookup: ", conf); /* its line in that file */

        /* The PAS has no pas_patient table yet: the check names the line. */
        r = run_ersd(conf, manifest, ARGS("--check-config"), NULL);
        assert_int_equal(r.status, 2);
        print_message("      %s: %s", G.name, r.err);
        assert_non_null(strstr(r.err, where));
        assert_non_null(strstr(r.err, "SQLSTATE"));
        run_free(&r);

        exec_ok(f->conn, "CREATE TABLE pas_patient (patient_id VARCHAR(20), nhs_number VARCHAR(10))");
        for (size_t i = 0; i < json_object_array_length(refs) && n_valid < 6; i++) {
                const char *nhs = jstr(json_object_array_get_idx(refs, i), "nhs_number");
                if (nhs && nhs_number_valid(nhs))
                        valid[n_valid++] = jstr(json_object_array_get_idx(refs, i), "ubrn");
        }
        assert_true(n_valid >= 3);
        /* [0] one PAS patient, [1] two, [2] none yet */
        for (size_t k = 0; k < 2; k++) {
                for (size_t i = 0; i < json_object_array_length(refs); i++) {
                        json_object *m = json_object_array_get_idx(refs, i);
                        if (strcmp(jstr(m, "ubrn"), valid[k]) != 0)
                                continue;
                        snprintf(sql, sizeof sql, "INSERT INTO pas_patient VALUES ('P%zu', '%s')", k,
                                 jstr(m, "nhs_number"));
                        exec_ok(f->conn, sql);
                        if (k == 1) {
                                snprintf(sql, sizeof sql, "INSERT INTO pas_patient VALUES ('Q%zu', '%s')", k,
                                         jstr(m, "nhs_number"));
                                exec_ok(f->conn, sql);
                        }
                }
        }
        r = run_ersd(conf, manifest, ARGS("--check-config"), NULL);
        if (r.status != 0)
                fail_msg("ersd --check-config exited %d: %s", r.status, r.err);
        run_free(&r);

        r = run_ersd(conf, manifest, ARGS("--once"), NULL);
        if (r.status != 0)
                fail_msg("ersd --once exited %d: %s", r.status, r.err);
        assert_non_null(strstr(r.out, "0 failed"));
        run_free(&r);
        assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM ers_referral WHERE patient_match = 'NOT_CONFIGURED'", NULL),
                         0);
        for (size_t i = 0; i < json_object_array_length(refs); i++) /* every one written */
                assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM ers_referral WHERE ubrn = ?",
                                       jstr(json_object_array_get_idx(refs, i), "ubrn")),
                                 1);
        assert_q_text(f, "SELECT patient_match FROM ers_referral WHERE ubrn = ?", valid[0], "MATCHED");
        assert_q_text(f, "SELECT pas_patient_id FROM ers_referral WHERE ubrn = ?", valid[0], "P0");
        assert_q_text(f, "SELECT patient_match FROM ers_referral WHERE ubrn = ?", valid[1], "AMBIGUOUS");
        assert_q_text(f, "SELECT patient_match FROM ers_referral WHERE ubrn = ?", valid[2], "UNMATCHED");

        /* The PAS registers the third patient; the next round fills it in,
         * though e-RS has nothing new. */
        for (size_t i = 0; i < json_object_array_length(refs); i++) {
                json_object *m = json_object_array_get_idx(refs, i);
                if (strcmp(jstr(m, "ubrn"), valid[2]) == 0) {
                        snprintf(sql, sizeof sql, "INSERT INTO pas_patient VALUES ('P2', '%s')", jstr(m, "nhs_number"));
                        exec_ok(f->conn, sql);
                }
        }
        r = run_ersd(conf, manifest, ARGS("--once"), NULL);
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.out, " 0 new, 0 updated,"));
        assert_non_null(strstr(r.err, "patient now MATCHED"));
        run_free(&r);
        assert_q_text(f, "SELECT patient_match FROM ers_referral WHERE ubrn = ?", valid[2], "MATCHED");
        assert_q_text(f, "SELECT pas_patient_id FROM ers_referral WHERE ubrn = ?", valid[2], "P2");
        assert_q_text(f, "SELECT patient_match FROM ers_referral WHERE ubrn = ?", valid[1], "AMBIGUOUS");
        /* the audit trail: the outcome with each referral written, then the match found later,
         * never the PAS's patient id */
        assert_q_text(f, "SELECT detail FROM ers_audit WHERE ubrn = ? AND seq = 2", valid[2],
                      "patient_match UNMATCHED -> MATCHED");
        assert_q_text(f, "SELECT event_type FROM ers_audit WHERE ubrn = ? AND seq = 2", valid[2], "PATIENT_MATCH");
        assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM ers_audit WHERE ubrn = ? AND detail LIKE '%patient_match AMBIGUOUS%'",
                               valid[1]),
                         1);
        assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM ers_audit WHERE detail LIKE '%P2%' OR detail LIKE '%P0%'", NULL), 0);
        json_object_put(manifest);
        mock_stop(&M);
}

/* The mapping into a PAS's own tables (database.mapping), through
 * build/ersd: --check-config prepares each statement against the live
 * database and names its file:line when the PAS refuses it; a full sync
 * lands every referral version and every document row once in PAS-like
 * tables, in the same transactions as the staging rows (each document's
 * content streamed whole into one BLOB column, byte for byte); a re-run
 * writes nothing. */
static void test_sync_mapping(void **state) {
        static const char *const args[] = { "--referrals", "8", "--attachments", "2", NULL };
        static const char *const referral_sql =
                "INSERT INTO pas_inbound_referral (ubrn, version, nhs_number, priority, pathway_start, received_at)"
                " VALUES (:ubrn, :version, :nhs_number, :priority, :pathway_start, :synced_at)";
        static const char *const document_sql =
                "INSERT INTO pas_inbound_document (ubrn, document_id, kind, fetch_status, sha256, size_bytes, content)"
                " VALUES (:ubrn, :document_id, :kind, :fetch_status, :sha256, :size_bytes, :content)";
        struct fix *f = *state;
        char conf[PATH_MAX + 32], dir[PATH_MAX], lines[4096], unmapped[2048] = "", where[PATH_MAX + 96];
        json_object *manifest, *refs;
        struct pas_map_sql rm = { 0 }, dm = { 0 };
        struct errbuf e = { { 0 } };
        long long referrals, documents, fetched = 0;
        size_t o = 0;
        struct run r;

        /* every field the two statements leave out, listed as left out on purpose */
        assert_int_equal(pas_map_rewrite(PAS_MAP_REFERRAL, referral_sql, &rm, &e), 0);
        assert_int_equal(pas_map_rewrite(PAS_MAP_DOCUMENT, document_sql, &dm, &e), 0);
        for (size_t i = 0; i < MAP_FIELDS_; i++) {
                const char *name = pas_map_field_name((enum pas_map_field) i);
                if (pas_map_uses(&rm, (enum pas_map_field) i) || pas_map_uses(&dm, (enum pas_map_field) i) ||
                    strcmp(name, "ubrn") == 0)
                        continue;
                o += (size_t) snprintf(unmapped + o, sizeof unmapped - o, "%s\"%s\"", o ? ", " : "", name);
        }
        pas_map_sql_free(&rm);
        pas_map_sql_free(&dm);

        assert_int_equal(mock_start(&M, args), 0);
        manifest = mock_get(&M, "/_mock/manifest");
        assert_non_null(manifest);
        refs = json_object_object_get(manifest, "referrals");
        snprintf(conf, sizeof conf, "%s/ersd-map-%s.conf", work, G.name);
        snprintf(dir, sizeof dir, "%s/state-map-%s", work, G.name);
        snprintf(lines, sizeof lines,
                 "  mapping: {\n"
                 "    referral = \"%s\";\n"
                 "    document = \"%s\";\n"
                 "    unmapped = [ %s ];\n"
                 "  };\n",
                 referral_sql, document_sql, unmapped);
        assert_int_equal(write_test_config(conf, M.base_url, NULL, f->conn, lines, dir, NULL), 0);

        /* The PAS has no such tables yet: each statement refused, at its line. */
        r = run_ersd(conf, manifest, ARGS("--check-config"), NULL);
        assert_int_equal(r.status, 2);
        print_message("      %s: %s", G.name, r.err);
        snprintf(where, sizeof where, "%s:10: database.mapping.referral: ", conf);
        assert_non_null(strstr(r.err, where));
        snprintf(where, sizeof where, "%s:11: database.mapping.document: ", conf);
        assert_non_null(strstr(r.err, where));
        assert_non_null(strstr(r.err, "SQLSTATE"));
        run_free(&r);
        /* ersd refuses to sync with a statement the PAS refuses, and writes nothing */
        r = run_ersd(conf, manifest, ARGS("--once"), NULL);
        assert_true(r.status != 0);
        run_free(&r);
        assert_int_equal(count(f, "ers_referral"), 0);

        /* The PAS's own inbound tables. */
        exec_ok(f->conn, "CREATE TABLE pas_inbound_referral (ubrn CHAR(12) NOT NULL, version BIGINT NOT NULL, "
                         "nhs_number VARCHAR(10), priority VARCHAR(32), pathway_start VARCHAR(40), "
                         "received_at VARCHAR(32) NOT NULL, PRIMARY KEY (ubrn, version))");
        snprintf(lines, sizeof lines,
                 "CREATE TABLE pas_inbound_document (ubrn CHAR(12) NOT NULL, document_id CHAR(36) NOT NULL, "
                 "kind VARCHAR(16) NOT NULL, fetch_status VARCHAR(16) NOT NULL, sha256 CHAR(64), size_bytes BIGINT, "
                 "content %s)",
                 G.kind == ENGINE_POSTGRESQL ? "BYTEA" : G.kind == ENGINE_MARIADB ? "LONGBLOB" : "BLOB");
        exec_ok(f->conn, lines);
        r = run_ersd(conf, manifest, ARGS("--check-config"), NULL);
        if (r.status != 0)
                fail_msg("ersd --check-config exited %d: %s", r.status, r.err);
        run_free(&r);

        if (G.kind == ENGINE_MARIADB) {
                /* One value travels in one packet: the mock's 20 MiB attachment
                 * cannot go into one LONGBLOB under the default 16 MiB
                 * max_allowed_packet.  Its referral fails whole (not even its
                 * staging rows), the others go on; raised, the next run syncs it. */
                const char *big = NULL;
                char admin[600];

                for (size_t i = 0; i < json_object_array_length(refs) && !big; i++) {
                        json_object *m = json_object_array_get_idx(refs, i), *atts = json_object_object_get(m, "attachments");
                        for (size_t a = 0; a < json_object_array_length(atts); a++)
                                if (json_object_get_int64(json_object_object_get(json_object_array_get_idx(atts, a),
                                                                                 "size")) >= 20 * MIB)
                                        big = jstr(m, "ubrn");
                }
                assert_non_null(big);
                r = run_ersd(conf, manifest, ARGS("--once"), NULL);
                assert_true(r.status != 0);
                assert_non_null(strstr(r.err, big));
                assert_non_null(strstr(r.err, "max_allowed_packet"));
                assert_non_null(strstr(r.out, "1 failed"));
                run_free(&r);
                assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM ers_ledger WHERE ubrn = ?", big), 0);
                assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM pas_inbound_referral WHERE ubrn = ?", big), 0);
                assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM pas_inbound_document WHERE ubrn = ?", big), 0);
                assert_true(count(f, "pas_inbound_referral") > 0);
                engine_admin_connection(&G, admin, sizeof admin);
                assert_int_equal(engine_exec(admin, "SET GLOBAL max_allowed_packet = 67108864", false), 0);
        }
        {
                /* the same sync without the mapping, into a database of its own, for the memory it takes */
                char plain[PATH_MAX + 32], db[PATH_MAX + 64];
                if (G.kind == ENGINE_SQLITE)
                        snprintf(db, sizeof db, "Driver=SQLite3;Database=%s/plain-%s.db", work, G.name);
                else
                        assert_int_equal(engine_new_database(&G, db, sizeof db), 0);
                snprintf(plain, sizeof plain, "%s/ersd-plain-%s.conf", work, G.name);
                snprintf(dir, sizeof dir, "%s/state-plain-%s", work, G.name);
                assert_int_equal(write_test_config(plain, M.base_url, NULL, db, NULL, dir, NULL), 0);
                r = run_ersd(plain, manifest, ARGS("--init-db"), NULL);
                assert_int_equal(r.status, 0);
                run_free(&r);
                r = run_ersd(plain, manifest, ARGS("--once"), NULL);
                assert_int_equal(r.status, 0);
                print_message("      %s: ersd --once without a mapping (documents in 1 MiB parts only): peak RSS "
                              "%.1f MiB\n", G.name, (double) r.maxrss_kib / 1024);
                run_free(&r);
                snprintf(dir, sizeof dir, "%s/state-map-%s", work, G.name);
        }
        r = run_ersd(conf, manifest, ARGS("--once"), NULL);
        if (r.status != 0)
                fail_msg("ersd --once exited %d: %s", r.status, r.err);
        assert_non_null(strstr(r.out, "0 failed"));
        print_message("      %s: ersd --once with the 20 MiB document mapped whole into one BLOB column: "
                      "peak RSS %.1f MiB\n", G.name, (double) r.maxrss_kib / 1024);
        run_free(&r);
        if (G.kind == ENGINE_MARIADB) {
                char admin[600];
                engine_admin_connection(&G, admin, sizeof admin);
                assert_int_equal(engine_exec(admin, "SET GLOBAL max_allowed_packet = 16777216", false), 0);
        }

        /* Every referral version once, with the staging row's values. */
        referrals = count(f, "ers_referral");
        assert_true(referrals >= (long long) json_object_array_length(refs));
        assert_int_equal(count(f, "pas_inbound_referral"), referrals);
        assert_int_equal(q_int(raw(f),
                               "SELECT COUNT(*) FROM pas_inbound_referral p JOIN ers_referral r ON r.ubrn = p.ubrn"
                               " AND r.version = p.version AND COALESCE(r.nhs_number, '-') = COALESCE(p.nhs_number, '-')"
                               " AND COALESCE(r.priority, '-') = COALESCE(p.priority, '-')"
                               " AND COALESCE(r.pathway_start, '-') = COALESCE(p.pathway_start, '-')"
                               " AND r.last_synced_at = p.received_at",
                               NULL),
                         referrals);
        /* Every document row once; each fetched one's content byte for byte, one BLOB each. */
        documents = count(f, "ers_document");
        assert_int_equal(count(f, "pas_inbound_document"), documents);
        assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM pas_inbound_document WHERE fetch_status = 'NOT_FETCHED'"
                                  " AND content IS NULL AND sha256 IS NULL",
                               NULL),
                         q_int(raw(f), "SELECT COUNT(*) FROM ers_document WHERE fetch_status = 'NOT_FETCHED'", NULL));
        for (size_t i = 0; i < json_object_array_length(refs); i++) {
                json_object *m = json_object_array_get_idx(refs, i), *atts = json_object_object_get(m, "attachments");

                for (size_t a = 0; a < json_object_array_length(atts); a++) {
                        json_object *att = json_object_array_get_idx(atts, a);
                        const char *q[] = { jstr(m, "ubrn"), jstr(att, "id") };
                        char hex[65], *id;
                        int64_t size = -1;

                        if (strcmp(jstr(att, "availability"), "AVAILABLE") != 0)
                                continue;
                        id = db_text(raw(f),
                                     "SELECT document_id FROM ers_document WHERE source_ubrn = ? AND attachment_id = ?",
                                     2, q, NULL);
                        assert_non_null(id);
                        const char *qid[] = { id };
                        assert_int_equal(db_bytes_sha256(raw(f), "SELECT content FROM pas_inbound_document WHERE "
                                                                 "document_id = ?", 1, qid, hex, &size), 0);
                        assert_string_equal(hex, jstr(att, "sha256"));
                        assert_int_equal(size, json_object_get_int64(json_object_object_get(att, "size")));
                        assert_q_text(f, "SELECT sha256 FROM pas_inbound_document WHERE document_id = ?", id,
                                      jstr(att, "sha256"));
                        fetched++;
                        free(id);
                }
        }
        assert_true(fetched >= 8);
        print_message("      %s: %lld referrals, %lld documents (%lld attachments checked byte for byte) "
                      "in the PAS's tables\n", G.name, referrals, documents, fetched);

        /* A second run writes nothing, into either. */
        r = run_ersd(conf, manifest, ARGS("--once"), NULL);
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.out, " 0 new, 0 updated,"));
        run_free(&r);
        assert_int_equal(count(f, "pas_inbound_referral"), referrals);
        assert_int_equal(count(f, "pas_inbound_document"), documents);
        json_object_put(manifest);
        mock_stop(&M);
}

/* The lease at the PAS level: taking it is a compare and swap, and a holder
 * that lost it writes nothing more (pas_begin fails with -ESTALE). */
static void test_lease_compare_and_swap(void **state) {
        struct fix *f = *state, g = { .p = NULL };
        struct errbuf e = { "" };
        struct lease_state seen, stale;
        struct referral ref;
        struct pas_tx *tx = NULL;

        snprintf(g.conn, sizeof g.conn, "%s", f->conn);
        assert_int_equal(pas_open(g.conn, "auto", &g.p, &e), 0);

        assert_int_equal(pas_lease_get(f->p, "ersd", &seen, &e), 0);
        assert_false(seen.found);
        assert_int_equal(pas_lease_take(f->p, "ersd", "host-a:1", &seen, &e), 0);
        assert_int_equal(pas_lease_take(g.p, "ersd", "host-b:2", &seen, &e), -EBUSY); /* no row: taken first */
        assert_int_equal(pas_lease_get(g.p, "ersd", &stale, &e), 0);
        assert_string_equal(stale.holder, "host-a:1");
        assert_int_equal(pas_lease_renew(f->p, &e), 0);
        assert_int_equal(pas_lease_take(g.p, "ersd", "host-b:2", &stale, &e), -EBUSY); /* it moved: alive */

        /* The standby decides it is dead and takes it over... */
        assert_int_equal(pas_lease_get(g.p, "ersd", &stale, &e), 0);
        assert_int_equal(pas_lease_take(g.p, "ersd", "host-b:2", &stale, &e), 0);
        /* ...and the old holder can no longer write. */
        pas_data_referral(&ref, "000000000001", 1, NHS_VALID);
        assert_int_equal(pas_begin(f->p, &tx, &e), -ESTALE);
        assert_null(tx);
        assert_non_null(strstr(e.msg, "lease"));
        assert_int_equal(pas_lease_renew(f->p, &e), -ESTALE);
        assert_int_equal(pas_begin(g.p, &tx, &e), 0);
        assert_int_equal(pas_put_referral(tx, &ref, NULL, "wl", &e), 0);
        assert_int_equal(pas_commit(tx, &e), 0);
        assert_int_equal(count(f, "ers_referral"), 1);

        pas_lease_release(g.p); /* free at once for the next */
        assert_q_text(f, "SELECT holder FROM ers_lease WHERE name = ?", "ersd", PAS_LEASE_RELEASED);
        assert_int_equal(pas_lease_get(f->p, "ersd", &seen, &e), 0);
        pas_close(f->p);
        assert_int_equal(pas_open(f->conn, "auto", &f->p, &e), 0);
        assert_int_equal(pas_lease_take(f->p, "ersd", "host-a:3", &seen, &e), 0);
        pas_close(g.p);
}

/* Two ersd in loop mode on one PAS with a 2-second lease: one writes, the
 * other stands by; the writer is SIGKILLed in the middle of its round; the
 * standby takes over within the lease time (seen in its output, timed) and
 * finishes the round; every referral and document is in the PAS exactly once. */
static void test_lease_handover(void **state) {
        static const char *const args[] = { "--referrals", "60", "--attachments", "1", NULL };
        struct fix *f = *state;
        char conf[PATH_MAX + 32], conf_b[PATH_MAX + 32], text[2048];
        json_object *manifest, *refs;
        struct proc a, b;
        struct timespec t0;
        long at;

        assert_int_equal(mock_start(&M, args), 0);
        manifest = mock_get(&M, "/_mock/manifest");
        assert_non_null(manifest);
        refs = json_object_object_get(manifest, "referrals");
        snprintf(conf, sizeof conf, "%s/ersd-lease-%s.conf", work, G.name);
        snprintf(text, sizeof text, "%s/state-lease-%s", work, G.name);
        assert_int_equal(write_test_config(conf, M.base_url, NULL, f->conn, "  lease_seconds = 2;\n", text,
                                           "poll_interval = 60;\n"),
                         0);
        /* The standby as on a second host: a state directory (spool) of its own.  Sharing one,
         * its start would remove the writer's downloads in progress. */
        snprintf(conf_b, sizeof conf_b, "%s/ersd-lease-b-%s.conf", work, G.name);
        snprintf(text, sizeof text, "%s/state-lease-b-%s", work, G.name);
        assert_int_equal(write_test_config(conf_b, M.base_url, NULL, f->conn, "  lease_seconds = 2;\n", text,
                                           "poll_interval = 60;\n"),
                         0);

        assert_int_equal(ersd_spawn(conf, &a), 0);
        assert_true(proc_wait_for(&a, 2, "lease: taken;", 0) >= 0);
        assert_int_equal(ersd_spawn(conf_b, &b), 0);
        assert_true(proc_wait_for(&b, 2, "is on standby", 0) >= 0);

        /* Killed in the middle of its round (after its first referral). */
        assert_true(proc_wait_for(&a, 2, ": new,", 0) >= 0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        assert_int_equal(proc_end(&a, SIGKILL), 128 + SIGKILL);
        at = proc_wait_for(&b, 2, "lease: taken over from", 0);
        assert_true(at >= 0);
        double takeover = seconds_since(&t0);
        print_message("      %s: standby took over %.2f s after the writer was killed (lease 2 s)\n", G.name,
                      takeover);
        assert_true(takeover < 2 * 2 + 1); /* within the lease time, plus one renewal period of slack */
        at = proc_wait_for(&b, 1, "sync done: referrals", 0);
        assert_true(at >= 0);
        print_message("      %s: the standby's round: %.*s\n", G.name, (int) strcspn(b.out + at, "\n"), b.out + at);
        assert_int_equal(proc_end(&b, SIGTERM), 0);

        /* every referral of the mock (its related one included) once, and once in the ledger */
        assert_int_equal(count(f, "ers_referral"), (long long) json_object_array_length(refs));
        assert_int_equal(count(f, "ers_ledger"),
                         q_int(raw(f), "SELECT COUNT(*) FROM ers_referral WHERE worklist IS NOT NULL", NULL));
        assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM ers_document WHERE revision > 1", NULL), 0);
        assert_int_equal(q_int(raw(f), "SELECT COUNT(*) FROM (SELECT ubrn, source_ubrn, attachment_id FROM ers_document "
                                  "GROUP BY ubrn, source_ubrn, attachment_id HAVING COUNT(*) > 1) d", NULL),
                         0);
        assert_q_text(f, "SELECT holder FROM ers_lease WHERE name = ?", "ersd", PAS_LEASE_RELEASED);
        json_object_put(manifest);
        mock_stop(&M);
}

/* ---------------------------------------------------------------------- */

static int group_setup_sqlite(void **state) {
        (void) state;
        return engine_start(&G, ENGINE_SQLITE) < 0 ? -1 : 0;
}

static int group_start(enum engine_kind kind) {
        int r = engine_start(&G, kind);

        if (r < 0) {
                print_error("could not start a %s server (see above): %s\n", G.name, strerror(-r));
                return -1;
        }
        print_message("%s: server up on 127.0.0.1:%d in %.2f s (initialise and start)\n", G.name, G.port, G.startup_s);
        return 0;
}

static int group_setup_postgresql(void **state) {
        (void) state;
        return group_start(ENGINE_POSTGRESQL);
}

static int group_setup_mariadb(void **state) {
        (void) state;
        return group_start(ENGINE_MARIADB);
}

static int group_teardown(void **state) {
        (void) state;
        mock_stop(&M);
        engine_stop(&G);
        return 0;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st, (void) flag, (void) ftw;
        remove(path);
        return 0;
}

#define ENGINE_TESTS                                                                          \
        cmocka_unit_test_setup_teardown(test_detect_and_schema_idempotent, setup_empty, teardown), \
        cmocka_unit_test_setup_teardown(test_referral_put_update, setup, teardown),                \
        cmocka_unit_test_setup_teardown(test_ledger, setup, teardown),                             \
        cmocka_unit_test_setup_teardown(test_unchanged_rows_written_again, setup, teardown),      \
        cmocka_unit_test_setup_teardown(test_document_parts_byte_identical, setup, teardown),     \
        cmocka_unit_test_setup_teardown(test_document_dedup, setup, teardown),                     \
        cmocka_unit_test_setup_teardown(test_rollback_and_failing_statement, setup, teardown),     \
        cmocka_unit_test_setup_teardown(test_utf8_4byte_round_trip, setup, teardown),              \
        cmocka_unit_test_setup_teardown(test_ledger_rate, setup, teardown),                        \
        cmocka_unit_test_setup_teardown(test_big_document_bounded_rss, setup, teardown),           \
        cmocka_unit_test_setup_teardown(test_schema_upgrade_from_v1, setup_empty, teardown),       \
        cmocka_unit_test_setup_teardown(test_schema_upgrade_from_v2, setup_empty, teardown),       \
        cmocka_unit_test_setup_teardown(test_schema_upgrade_from_v3, setup_empty, teardown),       \
        cmocka_unit_test_setup_teardown(test_schema_upgrade_from_v4, setup_empty, teardown),       \
        cmocka_unit_test_setup_teardown(test_schema_upgraded_is_fresh, setup_empty, teardown),     \
        cmocka_unit_test_setup_teardown(test_long_texts_stored_whole, setup, teardown),            \
        cmocka_unit_test_setup_teardown(test_own_texts_cut_on_a_character, setup, teardown),       \
        cmocka_unit_test_setup_teardown(test_document_identity, setup, teardown),                  \
        cmocka_unit_test_setup_teardown(test_every_element_stored_whole, setup, teardown),         \
        cmocka_unit_test_setup_teardown(test_answers_kept_exact, setup, teardown),                 \
        cmocka_unit_test_setup_teardown(test_outbox_due_and_settle, setup, teardown),              \
        cmocka_unit_test_setup_teardown(test_patient_matching, setup, teardown),                \
        cmocka_unit_test_setup_teardown(test_sync_patient_matching, setup, teardown),                  \
        cmocka_unit_test_setup_teardown(test_sync_mapping, setup, teardown),                           \
        cmocka_unit_test_setup_teardown(test_lease_compare_and_swap, setup, teardown),           \
        cmocka_unit_test_setup_teardown(test_lease_handover, setup, teardown)

int main(int argc, char **argv) {
        const char *tmp = getenv("TMPDIR");
        int failed = 0;

        int child = pas_data_store_child(argc, argv);

        if (child >= 0)
                return child;
        self_path = argv[0];
        snprintf(work, sizeof work, "%s/ersd-test-engines-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(work) || snprintf(driver_logs, sizeof driver_logs, "%s/driver-logs", work) < 0 ||
            engine_odbcinst(work, driver_logs) < 0) {
                fprintf(stderr, "test_engines: cannot make %s or its odbcinst.ini\n", work);
                return 1;
        }

        const struct CMUnitTest sqlite_tests[] = { ENGINE_TESTS };
        const struct CMUnitTest postgresql_tests[] = {
                ENGINE_TESTS,
                cmocka_unit_test_setup_teardown(test_single_writer_lock, setup, teardown),
                cmocka_unit_test_setup_teardown(test_least_privilege_grants, setup, teardown),
                cmocka_unit_test_setup_teardown(test_outbox_pas_grants, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lock_wait_is_transient, setup, teardown),
                cmocka_unit_test_setup_teardown(test_psqlodbc_logs_nothing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sync_end_to_end, setup, teardown),
        };
        const struct CMUnitTest mariadb_tests[] = {
                ENGINE_TESTS,
                cmocka_unit_test_setup_teardown(test_single_writer_lock, setup, teardown),
                cmocka_unit_test_setup_teardown(test_least_privilege_grants, setup, teardown),
                cmocka_unit_test_setup_teardown(test_outbox_pas_grants, setup, teardown),
                cmocka_unit_test_setup_teardown(test_lock_wait_is_transient, setup, teardown),
                cmocka_unit_test_setup_teardown(test_sync_end_to_end, setup, teardown),
        };

        failed += cmocka_run_group_tests_name("engine sqlite", sqlite_tests, group_setup_sqlite, group_teardown);
        failed += cmocka_run_group_tests_name("engine postgresql", postgresql_tests, group_setup_postgresql,
                                              group_teardown);
        failed += cmocka_run_group_tests_name("engine mariadb", mariadb_tests, group_setup_mariadb, group_teardown);
        nftw(work, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return failed ? 1 : 0;
}
