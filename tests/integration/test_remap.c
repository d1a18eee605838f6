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

#include "adapters/mapping.h"
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

/* E.conf with the referral mapping tagging its rows `tag`; every other field listed unmapped. */
static void conf_with_tag(const char *tag) {
        char sql[512], unmapped[2048] = "", lines[4096], state[600];
        struct pas_map_sql m = { 0 };
        struct errbuf e = { { 0 } };
        size_t o = 0;

        snprintf(sql, sizeof sql, MAP_SQL, tag);
        assert_int_equal(pas_map_rewrite(PAS_MAP_REFERRAL, sql, &m, &e), 0);
        for (size_t i = 0; i < MAP_FIELDS_; i++) {
                const char *name = pas_map_field_name((enum pas_map_field) i);
                if (pas_map_uses(&m, (enum pas_map_field) i) || strcmp(name, "ubrn") == 0)
                        continue;
                o += (size_t) snprintf(unmapped + o, sizeof unmapped - o, "%s\"%s\"", o ? ", " : "", name);
        }
        pas_map_sql_free(&m);
        snprintf(lines, sizeof lines, "  mapping: {\n    referral = \"%s\";\n    unmapped = [ %s ];\n  };\n", sql,
                 unmapped);
        snprintf(state, sizeof state, "%s/state", E.dir);
        assert_int_equal(write_test_config(E.conf, E.mock.base_url, NULL, E.connection, lines, state, NULL), 0);
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
        conf_with_tag("A");
        r = run_ersd(E.conf, E.manifest, ARGS("--init-db"), NULL);
        assert_int_equal(r.status, 0);
        run_free(&r);
        r = run_ersd(E.conf, E.manifest, ARGS("--once"), NULL);
        if (r.status != 0)
                fail_msg("ersd --once exited %d: %s", r.status, r.err);
        run_free(&r);
        referrals = count("SELECT COUNT(*) FROM ers_referral");
        assert_true(referrals >= 6);
        assert_int_equal(count("SELECT COUNT(*) FROM pas_map WHERE tag = 'A'"), referrals);

        /* the trust changes its mapping, and a staging value is altered by hand */
        conf_with_tag("B");
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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_remap_all_maps_each_version_once_without_ers),
                cmocka_unit_test(test_remap_without_an_answer_says_one_line),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
