/* SPDX-License-Identifier: MIT */
/*
 * Faults of the database and of the local machine, and text and sizes at
 * their edges, through the whole sync (build/ersd against the mock e-RS) on
 * every engine there is a server for here: SQLite (a file), PostgreSQL and
 * MariaDB (throwaway servers this binary starts, tests/support/engines.h).
 * Each test has its own mock and a fresh database.
 *
 * How each fault is made, without a line of ersd's code knowing:
 *  - a commit of unknown outcome: the LD_PRELOAD shim
 *    tests/support/preload/odbc_fault.c, which makes the Nth COMMIT commit (or
 *    roll back) and then report SQLSTATE 08S01;
 *  - the server restarted mid-transaction: a lock the test holds keeps ersd's
 *    transaction waiting (seen in pg_stat_activity), then the test stops
 *    PostgreSQL by its pid, and starts it again once ersd has found it
 *    unreachable;
 *  - SQLite locked: the test holds a write transaction;
 *  - a full disk: RLIMIT_FSIZE on the ersd process (SIGXFSZ at its default:
 *    ersd ignores it itself), so a write
 *    past the limit fails with EFBIG as it would with ENOSPC; no root, no
 *    small file system needed.  It bounds every file ersd writes: the spool,
 *    and with SQLite the database and its WAL;
 *  - a state directory not writable: its mode, with ersd run without
 *    CAP_DAC_OVERRIDE when the tests run as root.
 *
 * ERSD_SOAK=1 (make soak) adds the 100 MiB document on every engine; make
 * check stores it on SQLite only.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "daemon/spool.h"
#include "tests/support/engines.h"
#include "tests/support/testutil.h"
#include "tests/support/verify.h"

#define MIB (1024LL * 1024)
#define GUARD_S 60 /* a guard against a hung test, not a wait */
#define RSS_BOUND_MIB 64 /* ersd's peak resident memory while it stores a 100 MiB document (about 20 MiB here) */

static struct engine G; /* the engine of the group running */
static char work[256];  /* this binary's temp directory */
static bool soak;       /* ERSD_SOAK=1: the long version */

/* One test's world: its mock, its database, its configuration and state. */
struct fx {
        struct mock m;
        char conn[700];
        char conf[PATH_MAX];
        char state_dir[PATH_MAX];
        json_object *manifest; /* owned: what the mock serves */
        struct db *db;         /* owned: the test's own connection */
};

/* Runs ersd in `mode`, its output checked for patient identifiers and secrets. */
static struct run fx_run(struct fx *f, const char *mode, const struct run_opts *o) {
        return run_ersd(f->conf, f->manifest, ARGS(mode), o);
}

/* --once with an expected exit status and summary fragment; returns the run for more checks. */
static struct run run_once(struct fx *f, const struct run_opts *o, int status, const char *summary) {
        struct run r = fx_run(f, "--once", o);

        if (r.status != status || !strstr(r.out, summary))
                fail_msg("%s: ersd --once exited %d (expected %d) with '%s' (expected '%s'): %s", G.name, r.status,
                         status, r.out, summary, r.err);
        return r;
}

static void fx_start(struct fx *f, const char *const *mock_args, const char *conn_extra, const char *ers_lines) {
        static int n;
        char base[600];

        memset(f, 0, sizeof *f);
        n++;
        assert_int_equal(engine_new_database(&G, base, sizeof base), 0);
        snprintf(f->conn, sizeof f->conn, "%s%s", base, conn_extra ? conn_extra : "");
        assert_int_equal(mock_start(&f->m, mock_args), 0);
        f->manifest = mock_get(&f->m, "/_mock/manifest");
        assert_non_null(f->manifest);
        snprintf(f->conf, sizeof f->conf, "%s/%s-%d.conf", work, G.name, n);
        snprintf(f->state_dir, sizeof f->state_dir, "%s/state-%s-%d", work, G.name, n);
        assert_int_equal(write_test_config(f->conf, f->m.base_url, ers_lines, f->conn, NULL, f->state_dir, NULL), 0);
        struct run r = fx_run(f, "--init-db", NULL);
        if (r.status != 0)
                fail_msg("ersd --init-db exited %d: %s", r.status, r.err);
        run_free(&r);
        f->db = db_open(f->conn);
        assert_non_null(f->db);
}

static void fx_stop(struct fx *f) {
        db_close(f->db);
        json_object_put(f->manifest);
        mock_stop(&f->m);
        memset(f, 0, sizeof *f);
}

/* Everything the mock serves is in the PAS, once, byte for byte, consistent. */
static void assert_all_written_once(struct fx *f) {
        struct verify_result v;

        verify_pas(f->db, f->manifest, &v);
        assert_true(v.referrals_expected > 0);
        assert_int_equal(v.referrals_written, v.referrals_expected);
        assert_int_equal(v.referrals_missing + v.referrals_stale, 0);
        assert_int_equal(v.fields_mismatched, 0);
        assert_int_equal(v.documents_mismatched + v.documents_missing, 0);
        assert_int_equal(v.documents_duplicated, 0);
        assert_int_equal(verify_consistent(f->db), 0);
        assert_int_equal(db_int(f->db, "SELECT COUNT(*) FROM ers_ledger", 0, NULL), (long long) v.referrals_expected);
}

static size_t count_of(const char *haystack, const char *needle) {
        size_t n = 0;

        for (const char *p = haystack; (p = strstr(p, needle)); p += strlen(needle))
                n++;
        return n;
}

/* The one error line for a UBRN: it names the UBRN and `cause`. */
static void assert_failed_line(const struct run *r, const char *ubrn, const char *cause) {
        char want[64];

        snprintf(want, sizeof want, "UBRN %s not synced, PAS unchanged: ", ubrn);
        const char *line = strstr(r->err, want);
        const char *eol = line ? strchr(line, '\n') : NULL;
        if (!line || !eol || !memmem(line, (size_t) (eol - line), cause, strlen(cause)))
                fail_msg("%s: expected '%s… %s' on one line, got: %s", G.name, want, cause, r->err);
}

static const char *const small_mock[] = { "--referrals", "6", "--attachments", "1", "--big-attachment", "0", NULL };

/* The commit shim counts commits: which referral is the Nth written depends on
 * which fetch finishes first, unless they are fetched one at a time. */
static const char *const one_at_a_time = "  parallel_fetches = 1;\n";

/* ---------------------------------------------------------------------- */
/* A commit whose outcome is unknown.                                      */

/* The third referral's COMMIT (UBRN 300000000002 with its related referral,
 * the third written when fetched one at a time) commits, then the link
 * "fails": the ledger read back on a new connection says it happened; nothing
 * is sent again, and a second run writes nothing. */
static void test_unknown_commit_that_committed(void **state) {
        const char *env[] = { odbc_fault_preload(), "ERSD_FAULT_COMMIT=committed:3", NULL };
        struct run_opts o = { .env = env };
        struct fx f;
        (void) state;

        fx_start(&f, small_mock, NULL, one_at_a_time);
        struct run r = run_once(&f, &o, 0, "referrals 6 new, 0 updated, 0 unchanged, 0 failed");
        assert_non_null(strstr(r.err, "UBRN 300000000002: commit outcome was unknown"));
        assert_non_null(strstr(r.err, "SQLSTATE 08S01"));
        assert_non_null(strstr(r.err, "the ledger read back shows it committed"));
        assert_null(strstr(r.err, "unreachable")); /* the connection came back at once: no outage to report */
        run_free(&r);
        assert_all_written_once(&f);

        r = run_once(&f, NULL, 0, "referrals 0 new, 0 updated, 6 unchanged, 0 failed");
        run_free(&r);
        assert_all_written_once(&f);
        fx_stop(&f);
}

/* The same, but the server rolled it back: the ledger says so, the referral
 * waits for the next round (nothing of it in the PAS meanwhile), which writes
 * it once. */
static void test_unknown_commit_that_did_not(void **state) {
        const char *env[] = { odbc_fault_preload(), "ERSD_FAULT_COMMIT=lost:3", NULL };
        struct run_opts o = { .env = env };
        struct fx f;
        (void) state;

        fx_start(&f, small_mock, NULL, one_at_a_time);
        struct run r = run_once(&f, &o, 1, "referrals 5 new, 0 updated, 0 unchanged, 1 failed");
        assert_failed_line(&r, "300000000002", "the ledger read back shows this write did not commit");
        run_free(&r);
        assert_int_equal(db_rows_for(f.db, "300000000002"), 0);
        assert_int_equal(db_rows_for(f.db, "399999999999"), 0); /* its related referral, same transaction */
        assert_int_equal(verify_consistent(f.db), 0);

        r = run_once(&f, NULL, 0, "referrals 1 new, 0 updated, 5 unchanged, 0 failed");
        run_free(&r);
        assert_all_written_once(&f);
        fx_stop(&f);
}

/* ---------------------------------------------------------------------- */
/* A constraint of the PAS's own refuses one referral.                     */

static void test_constraint_violation_on_one_referral(void **state) {
        const char *rule, *sqlstate, *drop;
        struct fx f;
        (void) state;

        switch (G.kind) {
        case ENGINE_SQLITE: /* no ADD CONSTRAINT in SQLite: a trigger; its driver reports every error as HY000 */
                rule = "CREATE TRIGGER pas_local_rule BEFORE INSERT ON ers_referral WHEN NEW.ubrn = '300000000005' "
                       "BEGIN SELECT RAISE(ABORT, 'refused by a local PAS rule'); END";
                drop = "DROP TRIGGER pas_local_rule";
                sqlstate = "SQLSTATE HY000";
                break;
        case ENGINE_POSTGRESQL:
                rule = "ALTER TABLE ers_referral ADD CONSTRAINT pas_local_rule CHECK (ubrn <> '300000000005')";
                drop = "ALTER TABLE ers_referral DROP CONSTRAINT pas_local_rule";
                sqlstate = "SQLSTATE 23514";
                break;
        case ENGINE_MARIADB:
        default:
                rule = "ALTER TABLE ers_referral ADD CONSTRAINT pas_local_rule CHECK (ubrn <> '300000000005')";
                drop = "ALTER TABLE ers_referral DROP CONSTRAINT pas_local_rule";
                sqlstate = "SQLSTATE 23000";
                break;
        }
        fx_start(&f, small_mock, NULL, NULL);
        assert_int_equal(db_exec(f.db, rule), 0);
        struct run r = run_once(&f, NULL, 1, "referrals 5 new, 0 updated, 0 unchanged, 1 failed");
        assert_failed_line(&r, "300000000005", sqlstate);
        run_free(&r);
        assert_int_equal(db_rows_for(f.db, "300000000005"), 0);
        assert_true(db_rows_for(f.db, "300000000004") > 0); /* the one before and after went on */
        assert_int_equal(db_int(f.db, "SELECT COUNT(*) FROM ers_ledger", 0, NULL), 5);
        assert_int_equal(verify_consistent(f.db), 0);

        /* The PAS's rule lifted: the next round writes it, once. */
        assert_int_equal(db_exec(f.db, drop), 0);
        r = run_once(&f, NULL, 0, "referrals 1 new, 0 updated, 5 unchanged, 0 failed");
        run_free(&r);
        assert_all_written_once(&f);
        fx_stop(&f);
}

/* ---------------------------------------------------------------------- */
/* Text and sizes.                                                         */

/* The SQL for the hex of a text column's UTF-8 bytes, on this engine. */
static void hex_sql(const char *column, const char *from_where, char *ret, size_t n) {
        switch (G.kind) {
        case ENGINE_POSTGRESQL:
                snprintf(ret, n, "SELECT UPPER(encode(convert_to(%s, 'UTF8'), 'hex')) %s", column, from_where);
                break;
        default:
                snprintf(ret, n, "SELECT UPPER(HEX(%s)) %s", column, from_where);
                break;
        }
}

static char *upper_hex(const unsigned char *p, size_t n) {
        char *h = malloc(2 * n + 1);

        assert_non_null(h);
        for (size_t i = 0; i < n; i++)
                snprintf(h + 2 * i, 3, "%02X", p[i]);
        h[2 * n] = '\0';
        return h;
}

/* What ersd must store for a text e-RS sent: every byte, each NUL as U+FFFD. */
static char *expected_hex(json_object *v) {
        const unsigned char *s = (const unsigned char *) json_object_get_string(v);
        size_t len = (size_t) json_object_get_string_len(v), o = 0;
        unsigned char *want = malloc(3 * len + 1);

        assert_non_null(want);
        for (size_t i = 0; i < len; i++) {
                if (s[i] == 0) {
                        memcpy(want + o, "\xef\xbf\xbd", 3);
                        o += 3;
                } else
                        want[o++] = s[i];
        }
        char *h = upper_hex(want, o);
        free(want);
        return h;
}

static void assert_text_stored(struct fx *f, const char *what, json_object *sent, const char *column,
                               const char *from_where, const char *param) {
        char sql[400];
        const char *p[] = { param };

        hex_sql(column, from_where, sql, sizeof sql);
        char *want = expected_hex(sent);
        char *got = db_text(f->db, sql, 1, p, NULL);
        if (!got || strcmp(got, want) != 0)
                fail_msg("%s: %s not stored byte for byte:\n  sent   %s\n  stored %s", G.name, what, want,
                         got ? got : "(NULL)");
        free(want);
        free(got);
}

/* 4-byte UTF-8, quotes, a backslash and control characters round-trip byte
 * for byte; a NUL is stored as U+FFFD, the same on every engine; a declared
 * size that differs from the bytes records the bytes. */
static void test_text_round_trip(void **state) {
        static const char *const args[] = { "--referrals", "3", "--attachments", "1", "--big-attachment", "0",
                                            "--edge-text", NULL };
        struct fx f;
        (void) state;

        fx_start(&f, args, NULL, NULL);
        struct run r = run_once(&f, NULL, 0, "referrals 3 new, 0 updated, 0 unchanged, 0 failed");
        assert_non_null(strstr(r.err, "UBRN 300000000000: 1 text field(s) held a NUL character, stored as U+FFFD"));
        run_free(&r);

        json_object *m = json_object_array_get_idx(json_object_object_get(f.manifest, "referrals"), 0);
        json_object *att = json_object_array_get_idx(json_object_object_get(m, "attachments"), 0);
        json_object *comment = json_object_object_get(m, "state_comment");
        assert_non_null(comment);
        assert_non_null(memchr(json_object_get_string(comment), '\0', (size_t) json_object_get_string_len(comment)));
        assert_text_stored(&f, "state comment", comment, "state_comment", "FROM ers_referral WHERE ubrn = ?",
                           "300000000000");
        assert_text_stored(&f, "attachment title", json_object_object_get(att, "title"), "title",
                           "FROM ers_document WHERE attachment_id = ?", jstr(att, "id"));

        /* e-RS declared 3 bytes more than it served: the bytes are recorded, the declaration kept apart. */
        const char *aid[] = { jstr(att, "id") };
        assert_int_equal(db_int(f.db, "SELECT declared_size FROM ers_document WHERE attachment_id = ?", 1, aid),
                         json_object_get_int64(json_object_object_get(att, "declared_size")));
        assert_int_equal(db_int(f.db, "SELECT size_bytes FROM ers_document WHERE attachment_id = ?", 1, aid),
                         json_object_get_int64(json_object_object_get(att, "size")));
        assert_int_not_equal(json_object_get_int64(json_object_object_get(att, "declared_size")),
                             json_object_get_int64(json_object_object_get(att, "size")));
        assert_int_equal(verify_consistent(f.db), 0);
        fx_stop(&f);
}

/* Each attachment of referral 0 stored byte for byte, in ceil(size / 1 MiB) parts. */
static void assert_sizes_stored(struct fx *f, const long long *sizes, size_t n) {
        json_object *m = json_object_array_get_idx(json_object_object_get(f->manifest, "referrals"), 0);
        json_object *atts = json_object_object_get(m, "attachments");
        size_t found = 0;

        for (size_t a = 0; a < json_object_array_length(atts); a++) {
                json_object *att = json_object_array_get_idx(atts, a);
                long long size = json_object_get_int64(json_object_object_get(att, "size"));
                const char *q[] = { jstr(att, "id") };
                char hex[65];
                int64_t got = -1;

                char *id = db_text(f->db, "SELECT document_id FROM ers_document WHERE attachment_id = ? "
                                          "AND fetch_status = 'FETCHED'", 1, q, NULL);
                if (!id)
                        fail_msg("%s: attachment of %lld bytes not stored", G.name, size);
                assert_int_equal(db_document_sha256(f->db, id, hex, &got), 0);
                if (got != size || strcmp(hex, jstr(att, "sha256")) != 0)
                        fail_msg("%s: attachment of %lld bytes stored as %lld bytes, or other bytes", G.name, size,
                                 (long long) got);
                const char *d[] = { id };
                assert_int_equal(db_int(f->db, "SELECT part_count FROM ers_document WHERE document_id = ?", 1, d),
                                 (size + MIB - 1) / MIB);
                assert_int_equal(db_int(f->db, "SELECT size_bytes FROM ers_document WHERE document_id = ?", 1, d), size);
                free(id);
                for (size_t s = 0; s < n; s++)
                        found += sizes[s] == size;
        }
        assert_true(found >= n);
}

/* 0 bytes, 16 MiB - 1, 16 MiB, 16 MiB + 1 (MariaDB's default max_allowed_packet)
 * on every engine, and 100 MiB (the default ers.max_attachment_mib: e-RS takes
 * files up to 100 MB) on SQLite, or on every engine under make soak: byte for
 * byte, never truncated, through A042 and the object store with the default
 * limit, and streamed: ersd's peak memory stays far below the document's size
 * (RSS_BOUND_MIB; not asserted under a sanitizer or valgrind). */
static void test_sizes(void **state) {
        static const long long sizes[] = { 0, 16 * MIB - 1, 16 * MIB, 16 * MIB + 1, 100 * MIB };
        bool big = soak || G.kind == ENGINE_SQLITE;
        const char *args[6 + 2 * 5 + 1] = { "--referrals", "3", "--attachments", "0", "--big-attachment", "0" };
        char arg[5][24];
        size_t n = 6, count = big ? 5 : 4;
        struct fx f;
        (void) state;

        for (size_t i = 0; i < count; i++) {
                snprintf(arg[i], sizeof arg[i], "%lld", sizes[i]);
                args[n++] = "--extra-attachment";
                args[n++] = arg[i];
        }
        args[n] = NULL;
        fx_start(&f, args, NULL, NULL);
        struct timespec t0, t1;
        clock_gettime(CLOCK_MONOTONIC, &t0);
        struct run r = run_once(&f, NULL, 0, "referrals 3 new, 0 updated, 0 unchanged, 0 failed");
        clock_gettime(CLOCK_MONOTONIC, &t1);
        print_message("      %s: %s MiB of attachments synced in %.1f s, peak RSS %.1f MiB\n", G.name, big ? "148" : "48",
                      (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9,
                      (double) r.maxrss_kib / 1024);
        if (!run_instrumented() && r.maxrss_kib >= RSS_BOUND_MIB * 1024)
                fail_msg("%s: ersd's peak RSS %.1f MiB storing %s MiB of attachments: not streamed (bound %d MiB)",
                         G.name, (double) r.maxrss_kib / 1024, big ? "148" : "48", RSS_BOUND_MIB);
        run_free(&r);
        assert_sizes_stored(&f, sizes, count);
        assert_all_written_once(&f);
        fx_stop(&f);
}

/* Over ers.max_attachment_mib: refused with the reason recorded for staff, never stored cut short. */
static void test_size_over_the_maximum_is_refused(void **state) {
        static const char *const args[] = { "--referrals", "3", "--attachments", "0", "--big-attachment", "0",
                                            "--extra-attachment", "16777216", "--extra-attachment", "16777217",
                                            NULL };
        struct fx f;
        (void) state;

        fx_start(&f, args, NULL, "  max_attachment_mib = 16;\n");
        struct run r = run_once(&f, NULL, 0, "referrals 3 new, 0 updated, 0 unchanged, 0 failed");
        run_free(&r);
        const char *big[] = { "16777217" };
        assert_int_equal(db_int(f.db, "SELECT COUNT(*) FROM ers_document WHERE declared_size = ? "
                                      "AND fetch_status = 'NOT_FETCHED' AND size_bytes IS NULL "
                                      "AND not_fetched_reason LIKE '%larger than the configured maximum%'", 1, big),
                         1);
        assert_int_equal(db_int(f.db, "SELECT COUNT(*) FROM ers_document_part p JOIN ers_document d "
                                      "ON d.document_id = p.document_id WHERE d.declared_size = ?", 1, big),
                         0);
        assert_int_equal(db_int(f.db, "SELECT size_bytes FROM ers_document WHERE declared_size = 16777216", 0, NULL),
                         16 * MIB);
        assert_int_equal(verify_consistent(f.db), 0);
        fx_stop(&f);
}

/* ---------------------------------------------------------------------- */
/* The server restarted mid-transaction (PostgreSQL).                      */

/* Polls (a condition, not a wait: GUARD_S is only a guard) until a session of
 * this database waits on a lock: ersd's transaction, blocked by the test's. */
static void wait_for_lock_waiter(struct fx *f) {
        struct timespec pause = { .tv_nsec = 20 * 1000 * 1000 };
        time_t deadline = time(NULL) + GUARD_S;

        while (db_int(f->db, "SELECT COUNT(*) FROM pg_stat_activity WHERE datname = current_database() "
                             "AND wait_event_type = 'Lock'", 0, NULL) < 1) {
                if (time(NULL) > deadline)
                        fail_msg("ersd's transaction never came to wait on the test's lock");
                nanosleep(&pause, NULL);
        }
}

static void test_server_restart_mid_transaction(void **state) {
        struct proc p;
        struct fx f;
        (void) state;

        fx_start(&f, small_mock, NULL, NULL);
        /* The ledger locked against writes: ersd's first transaction writes the
         * referral and its documents, then waits at its ledger row. */
        struct db *holder = db_open(f.conn);
        assert_non_null(holder);
        assert_int_equal(db_autocommit(holder, false), 0);
        assert_int_equal(db_exec(holder, "LOCK TABLE ers_ledger IN EXCLUSIVE MODE"), 0);

        assert_int_equal(ersd_spawn(f.conf, &p), 0);
        wait_for_lock_waiter(&f);
        /* Stopped mid-transaction: ersd's transaction aborted, its connection closed.  The
         * server stays down until ersd has found it unreachable, then comes back. */
        assert_int_equal(engine_pause(&G), 0);
        if (proc_wait_for(&p, 2, "PAS database: unreachable: ", 0) < 0)
                fail_msg("ersd did not find the PAS unreachable: %s", p.err);
        assert_int_equal(engine_resume(&G), 0);
        db_close(holder);
        db_close(f.db);
        f.db = db_open(f.conn);
        assert_non_null(f.db);

        if (proc_wait_for(&p, 1, "ersd: sync ", 0) < 0)
                fail_msg("no end of round after the restart: %s", p.err);
        /* The referral whose transaction the restart aborted (the first whose fetch
         * finished) failed once, stayed due in ers_retry, and the same round's pass
         * over due referrals wrote it; the others waited for the connection. */
        if (!strstr(p.out, "referrals 6 new, 0 updated, 0 unchanged, 1 failed"))
                fail_msg("expected 6 new and 1 failure: %s\n%s", p.out, p.err);
        assert_int_equal(count_of(p.err, "not synced, PAS unchanged: "), 1);
        const char *failed_line = strstr(p.err, "not synced, PAS unchanged: ");
        const char *eol = strchr(failed_line, '\n');
        assert_non_null(eol);
        assert_non_null(memmem(failed_line, (size_t) (eol - failed_line), "terminating connection", 22));
        /* Rate-limited: the outage once, the recovery once, never a line per attempt. */
        assert_int_equal(count_of(p.err, "PAS database: unreachable: "), 1);
        assert_int_equal(count_of(p.err, "PAS database: connection back after"), 1);
        assert_int_equal(count_of(p.err, "PAS database: still unreachable"), 0); /* back within the minute */
        assert_int_equal(proc_end(&p, SIGTERM), 0);

        assert_int_equal(verify_consistent(f.db), 0); /* the aborted transaction left nothing half-written */
        assert_all_written_once(&f);
        struct run r = run_once(&f, NULL, 0, "referrals 0 new, 0 updated, 6 unchanged, 0 failed");
        run_free(&r);
        assert_all_written_once(&f);
        fx_stop(&f);
}

/* ---------------------------------------------------------------------- */
/* SQLite: locked by another writer, the disk full.                        */

static long long table_rows(struct db *d) {
        return db_int(d, "SELECT (SELECT COUNT(*) FROM ers_referral) + (SELECT COUNT(*) FROM ers_document)"
                         " + (SELECT COUNT(*) FROM ers_document_part) + (SELECT COUNT(*) FROM ers_ledger)",
                      0, NULL);
}

/* Another writer holds the database longer than the lock wait (Timeout=300 ms
 * here; the driver gives up after about twice that): the worklist call cannot
 * be counted against the day's budget first, so it is not sent — nothing is
 * asked of e-RS and nothing written — with one line naming the lock; the next
 * round, the lock gone, writes them all. */
static void test_sqlite_locked_longer_than_the_wait(void **state) {
        static const char *const args[] = { "--referrals", "4", "--attachments", "1", "--big-attachment", "0",
                                            NULL };
        struct fx f;
        (void) state;

        fx_start(&f, args, ";Timeout=300", NULL);
        struct db *holder = db_open(f.conn);
        assert_non_null(holder);
        assert_int_equal(db_autocommit(holder, false), 0);
        assert_int_equal(db_exec(holder, "UPDATE ers_schema_version SET version = version"), 0);

        struct run r = run_once(&f, NULL, 1, "referrals 0 new, 0 updated, 0 unchanged, 0 failed");
        if (!strstr(r.out, "worklists failed 1") ||
            !strstr(r.err, "worklist cardiology not read: its call could not be counted against the budget first") ||
            !strstr(r.err, "SQLSTATE HY000: database is locked"))
                fail_msg("expected the worklist not read for the lock, named: %s%s", r.out, r.err);
        run_free(&r);
        assert_int_equal(table_rows(f.db), 0);

        assert_int_equal(db_end(holder, false), 0);
        db_close(holder);
        r = run_once(&f, NULL, 0, "referrals 4 new, 0 updated, 0 unchanged, 0 failed");
        run_free(&r);
        assert_all_written_once(&f);
        fx_stop(&f);
}

/* The disk fills up under SQLite (RLIMIT_FSIZE at the database's size: its WAL
 * cannot grow past it): the referrals that do not fit fail with the driver's
 * I/O error and its SQLSTATE, nothing half-written; with room again, the next
 * round writes the rest. */
static void test_sqlite_disk_full(void **state) {
        static const char *const args[] = { "--referrals", "24", "--attachments", "0", "--big-attachment", "0",
                                            NULL };
        char path[PATH_MAX];
        struct stat st;
        struct fx f;
        (void) state;

        fx_start(&f, args, NULL, NULL);
        snprintf(path, sizeof path, "%s", strstr(f.conn, "Database=") + strlen("Database="));
        assert_int_equal(stat(path, &st), 0);
        struct run_opts o = { .fsize_limit = st.st_size };
        struct run r = fx_run(&f, "--once", &o);
        if (r.status != 1 || !strstr(r.err, "not synced, PAS unchanged: ") || !strstr(r.err, "SQLSTATE HY000"))
                fail_msg("expected failed referrals with the driver's SQLSTATE: exit %d: %s", r.status, r.err);
        assert_true(strstr(r.err, "disk I/O error") || strstr(r.err, "full"));
        run_free(&r);
        long long written = db_int(f.db, "SELECT COUNT(*) FROM ers_ledger", 0, NULL);
        print_message("      sqlite: %lld of 24 referrals fitted before the disk was full\n", written);
        assert_true(written < 24);
        assert_int_equal(verify_consistent(f.db), 0); /* what is there is whole */
        char *orphan = db_text(f.db, "SELECT ubrn FROM ers_referral WHERE ubrn NOT IN (SELECT ubrn FROM ers_ledger) "
                                     "AND ubrn <> '399999999999'", 0, NULL, NULL);
        if (orphan)
                fail_msg("UBRN %s is in ers_referral without its ledger row", orphan);

        r = run_once(&f, NULL, 0, "0 failed");
        run_free(&r);
        assert_all_written_once(&f);
        fx_stop(&f);
}

/* ---------------------------------------------------------------------- */
/* The local machine: the state directory, the spool.                      */

/* The spool directory not writable: one line naming it, nothing written; writable
 * again, everything is. */
static void test_state_dir_not_writable(void **state) {
        struct run_opts o = { .no_dac_override = true };
        char spool[PATH_MAX + 8];
        struct fx f;
        (void) state;

        fx_start(&f, small_mock, NULL, NULL);
        snprintf(spool, sizeof spool, "%s/spool", f.state_dir);
        assert_int_equal(mkdir(f.state_dir, 0700), 0);
        assert_int_equal(mkdir(spool, 0500), 0);
        struct run r = fx_run(&f, "--once", &o);
        char want[PATH_MAX + 64];
        snprintf(want, sizeof want, "spool directory %s is not writable: Permission denied", spool);
        if (r.status != 1 || !strstr(r.err, want))
                fail_msg("expected exit 1 and '%s': exit %d: %s", want, r.status, r.err);
        run_free(&r);
        assert_int_equal(table_rows(f.db), 0);

        assert_int_equal(chmod(spool, 0700), 0);
        r = run_once(&f, &o, 0, "referrals 6 new, 0 updated, 0 unchanged, 0 failed");
        run_free(&r);
        assert_all_written_once(&f);
        fx_stop(&f);
}

/* True when the spool holds a partial download. */
static bool spool_has_part(const char *spool) {
        DIR *d = opendir(spool);
        struct dirent *de;
        bool found = false;

        assert_non_null(d);
        while ((de = readdir(d)))
                found |= strstr(de->d_name, ".part") != NULL;
        closedir(d);
        return found;
}

/* The spool's disk fills up (RLIMIT_FSIZE of 64 KiB: attachments above it cannot
 * be kept): those referrals fail naming the spool file, nothing of them is
 * written, no partial download is left; a leftover from a crash (a .part, and
 * a finished file whose bytes do not hash to its name) is discarded, never
 * stored; with room again everything is written byte for byte. */
static void test_spool_disk_full(void **state) {
        static const char *const args[] = { "--referrals", "6", "--attachments", "2", "--big-attachment", "0", NULL };
        struct run_opts o = { .fsize_limit = 64 * 1024 };
        char spool[PATH_MAX + 8], path[PATH_MAX + 200];
        struct fx f;
        (void) state;

        fx_start(&f, args, NULL, NULL);
        snprintf(spool, sizeof spool, "%s/spool", f.state_dir);
        assert_int_equal(mkdir(f.state_dir, 0700), 0);
        assert_int_equal(mkdir(spool, 0700), 0);
        /* Leftovers: a download cut short, and a finished file for referral 5's first
         * attachment, named for its real SHA-256 and size, holding other bytes. */
        json_object *m = json_object_array_get_idx(json_object_object_get(f.manifest, "referrals"), 5);
        json_object *att = json_object_array_get_idx(json_object_object_get(m, "attachments"), 0);
        long long size = json_object_get_int64(json_object_object_get(att, "size"));
        char key[SPOOL_KEY_MAX];
        assert_int_equal(spool_key(key, "300000000005", json_object_get_int64(json_object_object_get(m, "version")), "ATTACHMENT",
                                   jstr(att, "id"), 0), 0);
        snprintf(path, sizeof path, "%s/%s.0.part", spool, key);
        assert_int_equal(write_text(path, "cut short", 0600), 0);
        snprintf(path, sizeof path, "%s/%s.3@%s-%lld", spool, key, jstr(att, "sha256"), size);
        char *junk = calloc(1, (size_t) size + 1);
        assert_non_null(junk);
        memset(junk, 'x', (size_t) size);
        assert_int_equal(write_text(path, junk, 0600), 0);
        free(junk);

        struct run r = fx_run(&f, "--once", &o);
        if (r.status != 1 || !strstr(r.err, "spool: cannot write ") || !strstr(r.err, "File too large (disk full?)"))
                fail_msg("expected referrals failing on the spool: exit %d: %s", r.status, r.err);
        assert_null(strstr(r.err, "larger than the configured maximum"));
        run_free(&r);
        assert_int_equal(verify_consistent(f.db), 0);
        assert_int_equal(db_int(f.db, "SELECT COUNT(*) FROM ers_document WHERE fetch_status = 'NOT_FETCHED' "
                                      "AND availability = 'AVAILABLE'", 0, NULL),
                         0); /* a full disk is never recorded as a refusal */
        assert_false(spool_has_part(spool));
        assert_int_equal(access(path, F_OK), -1); /* the file that did not hash to its name is gone */

        r = run_once(&f, NULL, 0, "0 failed");
        run_free(&r);
        assert_all_written_once(&f);
        fx_stop(&f);
}

/* ---------------------------------------------------------------------- */

#define EVERY_ENGINE                                                        \
        cmocka_unit_test(test_unknown_commit_that_committed),              \
        cmocka_unit_test(test_unknown_commit_that_did_not),                \
        cmocka_unit_test(test_constraint_violation_on_one_referral),       \
        cmocka_unit_test(test_text_round_trip),                            \
        cmocka_unit_test(test_sizes)

/* Each engine's group runs against a server started for it (a server that
 * does not start is a failure, never a skip). */
static int run_group(enum engine_kind kind, const char *name, const struct CMUnitTest *tests, size_t n) {
        int r = engine_start(&G, kind);

        if (r < 0) {
                fprintf(stderr, "%s: could not start the server (see above): %s\n", name, strerror(-r));
                return 1;
        }
        r = _cmocka_run_group_tests(name, tests, n, NULL, NULL);
        engine_stop(&G);
        return r;
}

int main(void) {
        char *dir = tmpdir_make();
        int failed = 0;

        soak = getenv("ERSD_SOAK") && strcmp(getenv("ERSD_SOAK"), "1") == 0;
        if (getenv("TEST_FILTER")) /* TEST_FILTER=test_sizes runs a subset (every server still starts) */
                cmocka_set_test_filter(getenv("TEST_FILTER"));
        if (!dir) {
                fprintf(stderr, "test_faults: cannot make a temporary directory\n");
                return 1;
        }
        snprintf(work, sizeof work, "%s", dir);
        const struct CMUnitTest sqlite_tests[] = {
                EVERY_ENGINE,
                cmocka_unit_test(test_size_over_the_maximum_is_refused),
                cmocka_unit_test(test_sqlite_locked_longer_than_the_wait),
                cmocka_unit_test(test_sqlite_disk_full),
                cmocka_unit_test(test_state_dir_not_writable),
        };
        const struct CMUnitTest postgresql_tests[] = {
                EVERY_ENGINE,
                cmocka_unit_test(test_server_restart_mid_transaction),
                cmocka_unit_test(test_spool_disk_full),
        };
        const struct CMUnitTest mariadb_tests[] = { EVERY_ENGINE };

        failed += run_group(ENGINE_SQLITE, "faults sqlite", sqlite_tests, sizeof sqlite_tests / sizeof *sqlite_tests);
        failed += run_group(ENGINE_POSTGRESQL, "faults postgresql", postgresql_tests,
                            sizeof postgresql_tests / sizeof *postgresql_tests);
        failed += run_group(ENGINE_MARIADB, "faults mariadb", mariadb_tests, sizeof mariadb_tests / sizeof *mariadb_tests);
        tmpdir_remove(dir);
        free(dir);
        return failed ? 1 : 0;
}
