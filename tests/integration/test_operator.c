/* SPDX-License-Identifier: MIT */
/*
 * The operators' commands against the mock e-RS and a SQLite PAS:
 * `ersd status` (text, --json, --prometheus, each exit status) on an empty
 * database, after a sync, with a parked and an overdue URGENT referral (the
 * ers_retry / ers_poll rows the scheduler writes, inserted here as
 * docs/schema.md describes them); `ersd --once --dry-run` (every PAS table
 * unchanged, what it would write reported); `ersd sync UBRN` (one referral, no
 * worklist call); the progress line of `ersd --once` on a terminal and not in
 * a pipe.
 *
 * The tests run in order and share one mock and one database.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <poll.h>
#include <pty.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/support/testutil.h"
#include "tests/support/verify.h"

/* UBRNs the mock does not serve, for the rows the scheduler would write. */
#define UBRN_PARKED "300000099901"
#define UBRN_OVERDUE "300000099902"
#define UBRN_URGENT_RECENT "300000099903"
#define UBRN_QUEUED "300000099905"

struct env {
        struct mock mock;
        char *dir;             /* owned temp directory */
        char conf[512];
        char state[520];
        char connection[600];
        json_object *manifest; /* owned: what the mock serves */
        struct db *db;
};

static struct env E;

/* ersd -c E.conf ARGS…, its output checked for patient identifiers and secrets. */
#define ERSD(...) run_ersd(E.conf, E.manifest, ARGS(__VA_ARGS__), NULL)

static json_object *status_json(int expect_status) {
        struct run r = ERSD("status", "--json");
        json_object *o;

        if (r.status != expect_status)
                fail_msg("ersd status --json exited %d, expected %d: %s%s", r.status, expect_status, r.out, r.err);
        o = json_tokener_parse(r.out);
        if (!o)
                fail_msg("ersd status --json printed no JSON object: %s", r.out);
        assert_int_equal(json_object_get_int(json_object_object_get(o, "exit_status")), expect_status);
        run_free(&r);
        return o;
}

static int64_t jint(json_object *o, const char *key) {
        return json_object_get_int64(json_object_object_get(o, key));
}

static size_t jlen(json_object *o, const char *key) {
        json_object *a = json_object_object_get(o, key);
        assert_true(json_object_is_type(a, json_type_array));
        return json_object_array_length(a);
}

/* UTC ISO 8601 `seconds_ago` seconds ago, as ersd stores times. */
static void iso_ago(long seconds_ago, char ret[32]) {
        time_t t = time(NULL) - seconds_ago;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(ret, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void sql(const char *statement, int n, const char *const *params) {
        assert_int_equal(db_exec_with(E.db, statement, n, params), 0);
}

/* The ers_retry row the scheduler writes for a referral seen and not written:
 * after 6 failed attempts, or (reason NULL) queued and not tried yet. */
static void insert_retry(const char *ubrn, const char *priority, long seen_ago, int parked, const char *reason) {
        char seen[32], next[32];
        iso_ago(seen_ago, seen);
        iso_ago(-600, next);
        if (!reason) {
                const char *q[] = { ubrn, priority, seen, seen };
                sql("INSERT INTO ers_retry (ubrn, worklist, entry_version, priority, first_seen_at, attempts, "
                    "next_attempt_at, parked) VALUES (?, 'cardiology', 1, ?, ?, 0, ?, 0)",
                    4, q);
                return;
        }
        const char *p[] = { ubrn, priority, seen, parked ? "1" : "0", reason, next };
        sql("INSERT INTO ers_retry (ubrn, worklist, entry_version, priority, service_id, service_name, referral_type, "
            "first_seen_at, attempts, last_attempt_at, next_attempt_at, parked, reason, last_sqlstate, correlation_id) "
            "VALUES (?, 'cardiology', 3, ?, '31001', 'Cardiology clinic', 'APPOINTMENT', ?, 6, ?, ?, ?, ?, "
            "'HY000', '0b7e5c1a-4d2f-4b8e-9a61-3f0c2d9e8a71')",
            7, (const char *const[]){ p[0], p[1], p[2], p[5], p[5], p[3], p[4] });
}

/* The ers_poll row the scheduler writes after reading a worklist (docs/schema.md);
 * referrals < 0: not read, `why` saying whether the call failed or the budget was spent. */
static void set_poll_result(long ago, long referrals, const char *why) {
        char at[32], next[32], n[24];
        iso_ago(ago, at);
        iso_ago(-3600, next);
        snprintf(n, sizeof n, "%ld", referrals);
        sql("DELETE FROM ers_poll", 0, NULL);
        const char *p[] = { at, referrals < 0 ? why : "12 referral(s) listed", next, n };
        sql(referrals < 0 ? "INSERT INTO ers_poll (worklist, last_poll_at, last_result, last_correlation_id, "
                            "next_poll_at, referrals) "
                            "VALUES ('cardiology', ?, ?, '5f1d1b2e-6c0a-4a8e-b0f3-1a2b3c4d5e6f', ?, NULL)"
                          : "INSERT INTO ers_poll (worklist, last_poll_at, last_result, last_correlation_id, "
                            "next_poll_at, referrals) "
                            "VALUES ('cardiology', ?, ?, '5f1d1b2e-6c0a-4a8e-b0f3-1a2b3c4d5e6f', ?, ?)",
            referrals < 0 ? 3 : 4, p);
}

static void set_poll(long ago, long referrals) {
        set_poll_result(ago, referrals, "not read: A008 worklist cardiology: HTTP 503");
}

static int group_setup(void **state) {
        static const char *const args[] = { "--referrals", "12", "--attachments", "2", NULL };
        (void) state;
        E.dir = tmpdir_make();
        if (!E.dir || mock_start(&E.mock, args) < 0)
                return -1;
        snprintf(E.conf, sizeof E.conf, "%s/ersd.conf", E.dir);
        snprintf(E.state, sizeof E.state, "%s/state", E.dir);
        snprintf(E.connection, sizeof E.connection, "Driver=SQLite3;Database=%s/pas.db", E.dir);
        E.manifest = mock_get(&E.mock, "/_mock/manifest");
        if (!E.manifest)
                return -1;
        /* 100 worklist calls a day (a loopback mock may have more than e-RS's 2): a
         * round per test that wants one, and figures to check. */
        return write_test_config(E.conf, E.mock.base_url, "  auth = \"none\";\n  worklist_calls_per_day = 100;\n",
                                 E.connection, NULL, E.state, "overdue_after_minutes = 120;");
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

/* Before --init-db: status cannot tell, and says why, in every form (exit 3). */
static void test_status_without_schema(void **state) {
        (void) state;
        struct run r = ERSD("status");
        assert_int_equal(r.status, 3);
        assert_non_null(strstr(r.out, "ersd --init-db"));
        run_free(&r);

        json_object *o = status_json(3);
        assert_false(json_object_get_boolean(json_object_object_get(o, "database_ok")));
        assert_non_null(strstr(jstr(o, "problem"), "schema is absent"));
        json_object_put(o);

        r = ERSD("status", "--prometheus");
        assert_int_equal(r.status, 3);
        assert_non_null(strstr(r.out, "\nersd_database_up 0\n"));
        assert_non_null(strstr(r.out, "\nersd_status_exit_code 3\n"));
        run_free(&r);
}

/* Every line of the Prometheus text: HELP then TYPE before a metric's first
 * sample, samples named ersd_…, labels quoted, an integer value; returns the
 * value of `sample` (the whole text before the value), which must be there. */
static long long prometheus_check(const char *text, const char *sample) {
        char declared[64][64];
        size_t n_declared = 0;
        long long found = LLONG_MIN;
        char *copy = strdup(text), *save = NULL;
        const char *help = NULL;

        assert_non_null(copy);
        for (char *line = strtok_r(copy, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
                char name[64];
                if (strncmp(line, "# HELP ", 7) == 0) {
                        assert_int_equal(sscanf(line + 7, "%63s", name), 1);
                        assert_int_equal(strncmp(name, "ersd_", 5), 0);
                        assert_true(strlen(line) > 8 + strlen(name)); /* a help text */
                        help = line + 7;
                        continue;
                }
                if (strncmp(line, "# TYPE ", 7) == 0) {
                        char type[16];
                        assert_int_equal(sscanf(line + 7, "%63s %15s", name, type), 2);
                        assert_non_null(help);
                        assert_int_equal(strncmp(help, name, strlen(name)), 0); /* HELP of the same metric */
                        assert_string_equal(type, "gauge");
                        assert_true(n_declared < 64);
                        snprintf(declared[n_declared++], sizeof declared[0], "%s", name);
                        help = NULL;
                        continue;
                }
                assert_true(line[0] != '#');
                size_t len = strspn(line, "abcdefghijklmnopqrstuvwxyz_");
                assert_true(len > 5 && len < sizeof name);
                memcpy(name, line, len);
                name[len] = '\0';
                bool known = false;
                for (size_t i = 0; i < n_declared; i++)
                        known |= strcmp(declared[i], name) == 0;
                if (!known)
                        fail_msg("sample before its HELP and TYPE: %s", line);
                const char *rest = line + len;
                if (*rest == '{') {
                        const char *close = strchr(rest, '}');
                        assert_non_null(close);
                        for (const char *q = rest + 1; q < close;) { /* name="value", … */
                                size_t l = strspn(q, "abcdefghijklmnopqrstuvwxyz_");
                                assert_true(l > 0);
                                assert_int_equal(q[l], '=');
                                assert_int_equal(q[l + 1], '"');
                                const char *end = strchr(q + l + 2, '"');
                                assert_non_null(end);
                                q = end + 1;
                                if (*q == ',')
                                        q++;
                        }
                        rest = close + 1;
                }
                assert_int_equal(*rest, ' ');
                char *end;
                errno = 0;
                double d = strtod(rest + 1, &end);
                assert_true(end > rest + 1 && *end == '\0' && errno == 0);
                long long v = (long long) d;
                if (strstr(name, "_timestamp_seconds")) /* a time: never 10 digits in a row */
                        assert_true(d == 0 || strchr(rest + 1, 'e'));
                else
                        assert_true((double) v == d); /* counts and codes are integers */
                if ((size_t) (rest - line) == strlen(sample) && strncmp(line, sample, strlen(sample)) == 0)
                        found = v;
        }
        free(copy);
        if (found == LLONG_MIN)
                fail_msg("no sample %s in:\n%s", sample, text);
        return found;
}

static long long prometheus_value(const char *sample) {
        struct run r = ERSD("status", "--prometheus");
        long long v = prometheus_check(r.out, sample);
        run_free(&r);
        return v;
}

/* An empty database: all well (exit 0), the worklist not read yet, its budget whole. */
static void test_status_empty_database(void **state) {
        (void) state;
        struct run r = ERSD("--init-db");
        assert_int_equal(r.status, 0);
        run_free(&r);
        E.db = db_open(E.connection);
        assert_non_null(E.db);

        r = ERSD("status");
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.out, "all well"));
        assert_non_null(strstr(r.out, "cardiology (REFERRALS_FOR_REVIEW, service 31001): not read yet"));
        assert_non_null(strstr(r.out, "budget left today 100 of 100"));
        run_free(&r);

        json_object *o = status_json(0);
        assert_true(json_object_get_boolean(json_object_object_get(o, "ok")));
        assert_int_equal(jlen(o, "worklists"), 1);
        json_object *w = json_object_array_get_idx(json_object_object_get(o, "worklists"), 0);
        assert_string_equal(jstr(w, "name"), "cardiology");
        assert_string_equal(jstr(w, "service"), "31001");
        assert_false(json_object_get_boolean(json_object_object_get(w, "polled")));
        assert_int_equal(jint(w, "budget_left_today"), 100);
        assert_int_equal(jint(w, "budget_per_day"), 100);
        assert_int_equal(jlen(o, "documents_owed") + jlen(o, "retry") + jlen(o, "parked") + jlen(o, "overdue"), 0);
        assert_int_equal(jint(o, "overdue_after_minutes"), 120);
        json_object_put(o);

        assert_int_equal(prometheus_value("ersd_status_exit_code"), 0);
        assert_int_equal(prometheus_value("ersd_database_up"), 1);
        assert_int_equal(prometheus_value("ersd_worklist_budget_left{worklist=\"cardiology\",service=\"31001\"}"), 100);
        assert_int_equal(prometheus_value("ersd_referrals_overdue"), 0);
}

/* Every PAS table's rows and digest. */
struct snapshot {
        long long rows[16];
        char digest[16][65];
};

static const char *const pas_tables[] = {
        "ers_schema_version", "ers_referral", "ers_referral_related", "ers_document", "ers_document_part",
        "ers_ledger",         "ers_lease",    "ers_retry",            "ers_budget",   "ers_poll",
        "ers_audit",          "ers_worklist_entry",
};
#define N_TABLES (sizeof pas_tables / sizeof pas_tables[0])

static void snapshot(struct snapshot *s) {
        for (size_t i = 0; i < N_TABLES; i++)
                assert_int_equal(db_table_digest(E.db, pas_tables[i], s->digest[i], &s->rows[i]), 0);
}

static size_t manifest_worklisted(void) {
        json_object *refs = json_object_object_get(E.manifest, "referrals");
        size_t n = 0;
        for (size_t i = 0; i < json_object_array_length(refs); i++)
                n += json_object_get_boolean(json_object_object_get(json_object_array_get_idx(refs, i), "worklisted"));
        return n;
}

static size_t count_lines_with(const char *text, const char *needle) {
        size_t n = 0;
        for (const char *p = strstr(text, needle); p; p = strstr(p + 1, needle))
                n++;
        return n;
}

/*
 * --dry-run on the empty PAS: every referral read and every document fetched
 * and verified, each reported as "would be new" with its documents, and no
 * PAS table changed by a row or a byte.  Its one worklist call is a real one
 * (the mock counts it).  Nothing is left in the state directory.
 */
static void test_dry_run_writes_nothing(void **state) {
        struct snapshot before, after;
        (void) state;

        snapshot(&before);
        assert_int_equal(mock_post(&E.mock, "/_mock/stats/reset"), 200);
        struct run r = ERSD("--once", "--dry-run");
        if (r.status != 0)
                fail_msg("ersd --once --dry-run exited %d: %s", r.status, r.err);
        snapshot(&after);
        for (size_t i = 0; i < N_TABLES; i++) {
                if (strcmp(pas_tables[i], "ers_budget") == 0)
                        continue; /* the worklist call is counted: below */
                if (before.rows[i] != after.rows[i] || strcmp(before.digest[i], after.digest[i]) != 0)
                        fail_msg("--dry-run changed %s (%lld rows, then %lld)", pas_tables[i], before.rows[i],
                                 after.rows[i]);
        }
        assert_int_equal(after.rows[1], 0); /* no referral */
        /* Its one worklist call is real, and counted before it was sent. */
        assert_int_equal(db_int(E.db, "SELECT SUM(calls) FROM ers_budget WHERE service_id = '31001'", 0, NULL), 1);

        size_t n = manifest_worklisted();
        assert_int_equal(count_lines_with(r.out, ": would be new; documents "), n);
        assert_non_null(strstr(r.out, "ersd: dry run done, nothing written to the PAS: referrals "));
        assert_non_null(strstr(r.out, " to store ("));
        char expect[64];
        snprintf(expect, sizeof expect, "referrals %zu new, 0 updated", n);
        assert_non_null(strstr(r.out, expect));
        assert_non_null(strstr(r.out, "still PENDING")); /* the mock's PENDING attachment */
        /* A named referral, with its letter and attachments counted. */
        const char *ubrn = jstr(json_object_array_get_idx(json_object_object_get(E.manifest, "referrals"), 0), "ubrn");
        char line[64];
        snprintf(line, sizeof line, "dry run: UBRN %s version ", ubrn);
        assert_non_null(strstr(r.out, line));
        run_free(&r);

        assert_int_equal(stat_count(&E.mock, "A008"), 1); /* the worklist call is spent */
        assert_true(stat_count(&E.mock, "A005") >= (long long) n);
        assert_true(stat_count(&E.mock, "A007") >= (long long) n);
        assert_true(stat_count(&E.mock, "store") > 0); /* attachments fetched */

        /* Its private spool is gone, and it never made the daemon's one. */
        char path[700];
        struct stat st;
        snprintf(path, sizeof path, "%s/spool", E.state);
        assert_int_equal(stat(path, &st), -1);
        DIR *d = opendir(E.state);
        assert_non_null(d);
        for (struct dirent *de; (de = readdir(d));)
                if (strncmp(de->d_name, "oneoff-", 7) == 0)
                        fail_msg("a dry run left %s/%s behind", E.state, de->d_name);
        closedir(d);
}

static json_object *manifest_pending_referral(void) {
        json_object *refs = json_object_object_get(E.manifest, "referrals");
        for (size_t i = 0; i < json_object_array_length(refs); i++) {
                json_object *m = json_object_array_get_idx(refs, i);
                json_object *atts = json_object_object_get(m, "attachments");
                for (size_t a = 0; a < json_object_array_length(atts); a++)
                        if (strcmp(jstr(json_object_array_get_idx(atts, a), "availability"), "PENDING") == 0)
                                return m;
        }
        return NULL;
}

/* After a real sync: the referral whose attachment e-RS is still scanning is
 * listed as owed a document; that alone needs no person (exit 0). */
static void test_status_after_a_sync(void **state) {
        (void) state;
        struct run r = ERSD("--once");
        if (r.status != 0)
                fail_msg("ersd --once exited %d: %s", r.status, r.err);
        run_free(&r);

        json_object *pending = manifest_pending_referral();
        assert_non_null(pending);
        json_object *o = status_json(0);
        assert_int_equal(jlen(o, "documents_owed"), 1);
        json_object *w = json_object_array_get_idx(json_object_object_get(o, "documents_owed"), 0);
        assert_string_equal(jstr(w, "ubrn"), jstr(pending, "ubrn"));
        assert_string_equal(jstr(w, "state"), "documents_owed");
        assert_string_equal(jstr(w, "worklist"), "cardiology");
        assert_int_equal(jint(w, "documents_pending"), 1);
        assert_int_equal(jint(w, "documents_owed"), 1);
        assert_int_equal(jint(w, "version"), jint(pending, "version"));
        assert_int_equal(jint(json_object_object_get(o, "counts"), "documents_owed"), 1);
        json_object_put(o);

        r = ERSD("status");
        assert_int_equal(r.status, 0);
        char line[64];
        snprintf(line, sizeof line, "UBRN %s ", jstr(pending, "ubrn"));
        assert_non_null(strstr(r.out, line));
        assert_non_null(strstr(r.out, "1 PENDING (e-RS scanning)"));
        run_free(&r);
        assert_int_equal(prometheus_value("ersd_referrals_waiting{state=\"documents_owed\"}"), 1);
}

static json_object *first_with(json_object *o, const char *list, const char *ubrn) {
        json_object *a = json_object_object_get(o, list);
        for (size_t i = 0; i < json_object_array_length(a); i++)
                if (strcmp(jstr(json_object_array_get_idx(a, i), "ubrn"), ubrn) == 0)
                        return json_object_array_get_idx(a, i);
        fail_msg("UBRN %s not in %s", ubrn, list);
        return NULL;
}

/* Parked (exit 1), then an URGENT referral not in the PAS after 3 hours
 * (exit 4, and a warning naming it in the log of a round), then each worklist
 * condition: a failed last poll, none for 26 hours (exit 1), a spent budget
 * (exit 0: spending it is normal). */
static void test_status_parked_overdue_and_worklists(void **state) {
        (void) state;
        set_poll(60, 12);
        insert_retry(UBRN_PARKED, "ROUTINE", 5 * 3600, 1, "A005 UBRN " UBRN_PARKED ": HTTP 503, e-RS SERVICE_UNAVAILABLE");

        json_object *o = status_json(1);
        json_object *w = first_with(o, "parked", UBRN_PARKED);
        assert_string_equal(jstr(w, "state"), "parked");
        assert_string_equal(jstr(w, "reason"), "A005 UBRN " UBRN_PARKED ": HTTP 503, e-RS SERVICE_UNAVAILABLE");
        assert_string_equal(jstr(w, "sqlstate"), "HY000");
        assert_int_equal(jint(w, "attempts"), 6);
        assert_false(json_object_get_boolean(json_object_object_get(w, "in_pas")));
        assert_false(json_object_get_boolean(json_object_object_get(w, "overdue"))); /* ROUTINE */
        json_object *wl = json_object_array_get_idx(json_object_object_get(o, "worklists"), 0);
        assert_true(json_object_get_boolean(json_object_object_get(wl, "polled")));
        assert_true(json_object_get_boolean(json_object_object_get(wl, "last_poll_ok")));
        assert_int_equal(jint(wl, "referrals"), 12);
        json_object_put(o);
        struct run r = ERSD("status");
        assert_int_equal(r.status, 1);
        assert_non_null(strstr(r.out, "NEEDS A PERSON"));
        assert_non_null(strstr(r.out, "PARKED after repeated failures (need a person): 1\n  UBRN " UBRN_PARKED));
        run_free(&r);

        insert_retry(UBRN_OVERDUE, "URGENT", 3 * 3600, 0, "A005 UBRN " UBRN_OVERDUE ": HTTP 502");
        insert_retry(UBRN_URGENT_RECENT, "TWO_WEEK_WAIT", 600, 0, "A005 UBRN " UBRN_URGENT_RECENT ": HTTP 502");
        o = status_json(4);
        assert_int_equal(jlen(o, "overdue"), 1);
        w = first_with(o, "overdue", UBRN_OVERDUE);
        assert_string_equal(jstr(w, "priority"), "URGENT");
        assert_true(jint(w, "minutes_waiting") >= 180 && jint(w, "minutes_waiting") < 190);
        assert_int_equal(jlen(o, "retry"), 2);
        assert_false(json_object_get_boolean(json_object_object_get(first_with(o, "retry", UBRN_URGENT_RECENT),
                                                                    "overdue")));
        assert_string_equal(jstr(first_with(o, "retry", UBRN_OVERDUE), "state"), "retrying");
        assert_int_equal(jlen(o, "parked"), 1);
        json_object_put(o);
        r = ERSD("status");
        assert_int_equal(r.status, 4);
        assert_non_null(strstr(r.out, "URGENT REFERRALS OVERDUE"));
        assert_non_null(strstr(r.out, "not in the PAS after 120 minutes): 1\n  UBRN " UBRN_OVERDUE "  URGENT"));
        run_free(&r);
        assert_int_equal(prometheus_value("ersd_status_exit_code"), 4);
        assert_int_equal(prometheus_value("ersd_referrals_overdue"), 1);
        long long minutes = prometheus_value("ersd_referral_overdue_minutes{ubrn=\"" UBRN_OVERDUE "\",priority=\"URGENT\"}");
        assert_true(minutes >= 180 && minutes < 190);
        assert_int_equal(prometheus_value("ersd_referrals_waiting{state=\"parked\"}"), 1);
        assert_int_equal(prometheus_value("ersd_referrals_waiting{state=\"retrying\"}"), 2);

        /* A round warns about it in the log, once, by UBRN; not about the recent one. */
        r = ERSD("--once");
        assert_int_equal(r.status, 0);
        assert_int_equal(count_lines_with(r.err, "UBRN " UBRN_OVERDUE ": URGENT referral seen on worklist cardiology"), 1);
        assert_non_null(strstr(r.err, "is not in the PAS after 18")); /* 180 … 189 minutes */
        assert_null(strstr(r.err, UBRN_URGENT_RECENT));
        assert_null(strstr(r.err, "UBRN " UBRN_PARKED ":"));
        run_free(&r);

        /* Queued by the scheduler right after the worklist call, not tried yet: no failure to show. */
        insert_retry(UBRN_QUEUED, "ROUTINE", 60, 0, NULL);
        o = status_json(4);
        w = first_with(o, "retry", UBRN_QUEUED);
        assert_string_equal(jstr(w, "state"), "queued");
        assert_int_equal(jint(w, "attempts"), 0);
        assert_int_equal(jint(json_object_object_get(o, "counts"), "queued"), 1);
        assert_int_equal(jint(json_object_object_get(o, "counts"), "retrying"), 2);
        json_object_put(o);
        assert_int_equal(prometheus_value("ersd_referrals_waiting{state=\"queued\"}"), 1);

        sql("DELETE FROM ers_retry WHERE ubrn <> '" UBRN_PARKED "'", 0, NULL);
        json_object_put(status_json(1));
        sql("DELETE FROM ers_retry", 0, NULL);
        json_object_put(status_json(0));

        set_poll(60, -1); /* the last read failed */
        o = status_json(1);
        wl = json_object_array_get_idx(json_object_object_get(o, "worklists"), 0);
        assert_false(json_object_get_boolean(json_object_object_get(wl, "last_poll_ok")));
        assert_string_equal(jstr(wl, "last_result"), "not read: A008 worklist cardiology: HTTP 503");
        assert_true(json_object_get_boolean(json_object_object_get(wl, "last_poll_failed")));
        json_object_put(o);
        assert_int_equal(prometheus_value("ersd_worklist_last_poll_ok{worklist=\"cardiology\",service=\"31001\"}"), 0);
        assert_int_equal(prometheus_value("ersd_worklist_last_poll_failed{worklist=\"cardiology\",service=\"31001\"}"), 1);

        /* The scheduler did not call: the day's budget was spent.  Nothing failed. */
        set_poll_result(3600, -1, "not read: service 31001 has had its 2 worklist calls for 2026-11-23 (UK day); "
                                  "next poll 2026-11-24T07:00:00Z");
        o = status_json(0);
        wl = json_object_array_get_idx(json_object_object_get(o, "worklists"), 0);
        assert_true(json_object_get_boolean(json_object_object_get(wl, "budget_refused")));
        assert_false(json_object_get_boolean(json_object_object_get(wl, "last_poll_failed")));
        assert_false(json_object_get_boolean(json_object_object_get(wl, "last_poll_ok")));
        json_object_put(o);
        assert_int_equal(prometheus_value("ersd_worklist_last_poll_failed{worklist=\"cardiology\",service=\"31001\"}"), 0);
        set_poll_result(26 * 3600, -1, "not read: service 31001 has had its 2 worklist calls for 2026-11-23 (UK day); "
                                       "next poll 2026-11-24T07:00:00Z");
        json_object_put(status_json(1)); /* spent, and no read for over a day */

        set_poll(26 * 3600, 12); /* read fine, but not for 26 hours */
        o = status_json(1);
        wl = json_object_array_get_idx(json_object_object_get(o, "worklists"), 0);
        assert_true(json_object_get_boolean(json_object_object_get(wl, "stale")));
        json_object_put(o);
        r = ERSD("status");
        assert_non_null(strstr(r.out, "NOT READ FOR OVER 25 HOURS"));
        run_free(&r);

        set_poll(60, 12);
        o = status_json(0);
        wl = json_object_array_get_idx(json_object_object_get(o, "worklists"), 0);
        char day[16];
        snprintf(day, sizeof day, "%s", jstr(wl, "budget_day"));
        const char *p[] = { day };
        long long spent = jint(wl, "budget_calls_today");
        assert_true(spent >= 2); /* the dry run's call and the round's */
        sql("UPDATE ers_budget SET calls = 100 WHERE service_id = '31001' AND budget_day = ?", 1, p);
        json_object_put(o);
        o = status_json(0); /* spending the day's budget is normal */
        wl = json_object_array_get_idx(json_object_object_get(o, "worklists"), 0);
        assert_int_equal(jint(wl, "budget_calls_today"), 100);
        assert_int_equal(jint(wl, "budget_left_today"), 0);
        json_object_put(o);
        assert_int_equal(prometheus_value("ersd_worklist_budget_left{worklist=\"cardiology\",service=\"31001\"}"), 0);
        char back[24];
        snprintf(back, sizeof back, "%lld", spent);
        const char *q[] = { back, p[0] };
        sql("UPDATE ers_budget SET calls = ? WHERE service_id = '31001' AND budget_day = ?", 2, q);
}

/* Removes every row of a referral, as if it had never been synced. */
static void forget_referral(const char *ubrn) {
        const char *p[] = { ubrn };
        sql("DELETE FROM ers_document_part WHERE document_id IN (SELECT document_id FROM ers_document WHERE ubrn = ?)",
            1, p);
        sql("DELETE FROM ers_document WHERE ubrn = ?", 1, p);
        sql("DELETE FROM ers_referral_related WHERE ubrn = ?", 1, p);
        sql("DELETE FROM ers_referral WHERE ubrn = ?", 1, p);
        sql("DELETE FROM ers_ledger WHERE ubrn = ?", 1, p);
}

/* A worklisted referral of the manifest with no related referral and nothing PENDING, after `skip`. */
static json_object *plain_referral(size_t skip) {
        json_object *refs = json_object_object_get(E.manifest, "referrals"), *pending = manifest_pending_referral();
        for (size_t i = 0; i < json_object_array_length(refs); i++) {
                json_object *m = json_object_array_get_idx(refs, i);
                if (m == pending || !json_object_get_boolean(json_object_object_get(m, "worklisted")) ||
                    json_object_array_length(json_object_object_get(m, "related")) > 0)
                        continue;
                if (skip-- == 0)
                        return m;
        }
        fail_msg("the mock serves too few plain referrals");
        return NULL;
}

/* `ersd sync UBRN`: one referral written, with no worklist call; again,
 * nothing to write; the worklist taken from ers_retry when the scheduler
 * left a row; a UBRN e-RS does not know is not written (exit 1). */
static void test_sync_one_referral(void **state) {
        (void) state;
        json_object *m = plain_referral(0);
        const char *ubrn = jstr(m, "ubrn");
        const char *p[] = { ubrn };
        char expect[96];

        forget_referral(ubrn);
        assert_int_equal(mock_post(&E.mock, "/_mock/stats/reset"), 200);
        struct run r = ERSD("sync", ubrn);
        if (r.status != 0)
                fail_msg("ersd sync exited %d: %s", r.status, r.err);
        snprintf(expect, sizeof expect, "ersd: UBRN %s written (new) (worklist none)", ubrn);
        assert_non_null(strstr(r.out, expect));
        assert_non_null(strstr(r.err, "not seen on a worklist before; synced with no worklist"));
        run_free(&r);
        assert_int_equal(stat_count(&E.mock, "A008"), 0);
        assert_int_equal(stat_count(&E.mock, "A005"), 1);
        assert_int_equal(stat_count(&E.mock, "A007"), 1);
        assert_int_equal(db_int(E.db, "SELECT version FROM ers_referral WHERE ubrn = ?", 1, p), jint(m, "version"));
        assert_int_equal(db_int(E.db, "SELECT version FROM ers_ledger WHERE ubrn = ?", 1, p), jint(m, "version"));
        assert_int_equal(db_int(E.db, "SELECT COUNT(*) FROM ers_referral WHERE ubrn = ? AND worklist IS NULL", 1, p),
                         1);
        assert_true(db_int(E.db, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ? AND fetch_status = 'FETCHED'", 1,
                           p) >= 1);
        assert_int_equal(verify_consistent(E.db), 0);

        r = ERSD("sync", ubrn);
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.out, "already in the PAS at e-RS's version, nothing written"));
        run_free(&r);
        assert_int_equal(stat_count(&E.mock, "A008"), 0);

        /* Known to the scheduler only (ers_retry): synced with the worklist it was seen on. */
        m = plain_referral(1);
        ubrn = jstr(m, "ubrn");
        p[0] = ubrn;
        forget_referral(ubrn);
        insert_retry(ubrn, "ROUTINE", 600, 0, "A005: HTTP 503");
        r = ERSD("sync", ubrn);
        assert_int_equal(r.status, 0);
        snprintf(expect, sizeof expect, "ersd: UBRN %s written (new) (worklist cardiology)", ubrn);
        assert_non_null(strstr(r.out, expect));
        run_free(&r);
        char *wl = db_text(E.db, "SELECT worklist FROM ers_referral WHERE ubrn = ?", 1, p, NULL);
        assert_non_null(wl);
        assert_string_equal(wl, "cardiology");
        free(wl);
        /* written: its ers_retry row went in the same transaction */
        assert_int_equal(db_int(E.db, "SELECT COUNT(*) FROM ers_retry WHERE ubrn = ?", 1, p), 0);
        sql("DELETE FROM ers_retry", 0, NULL);
        assert_int_equal(stat_count(&E.mock, "A008"), 0);

        /* A UBRN e-RS does not know: nothing written, exit 1. */
        long long before = db_int(E.db, "SELECT COUNT(*) FROM ers_referral", 0, NULL);
        r = ERSD("sync", "300000099999");
        assert_int_equal(r.status, 1);
        assert_non_null(strstr(r.out, "UBRN 300000099999 not synced, PAS unchanged"));
        assert_non_null(strstr(r.err, "UBRN 300000099999 not synced, PAS unchanged: "));
        run_free(&r);
        assert_int_equal(db_int(E.db, "SELECT COUNT(*) FROM ers_referral", 0, NULL), before);
        /* and not queued for retries: no worklist listed it */
        assert_int_equal(db_int(E.db, "SELECT COUNT(*) FROM ers_retry WHERE ubrn = '300000099999'", 0, NULL), 0);

        r = ERSD("sync", "12345");
        assert_int_equal(r.status, 2);
        assert_non_null(strstr(r.err, "sync needs a UBRN (12 digits)"));
        run_free(&r);
}

/* The command line: every option in --help, and the combinations refused. */
static void test_command_line(void **state) {
        (void) state;
        struct run r = ERSD("--help");
        assert_int_equal(r.status, 0);
        static const char *const words[] = { "--once", "--dry-run", "--check-config", "--init-db", "--verbose",
                                             "--help", "--config", "status", "--json", "--prometheus", "sync UBRN" };
        for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
                if (!strstr(r.out, words[i]))
                        fail_msg("ersd --help does not mention %s", words[i]);
        run_free(&r);

        static const char *const bad[][4] = {
                { "--dry-run", NULL },           { "status", "--once", NULL }, { "--json", NULL },
                { "status", "--json", "--prometheus" }, { "sync", NULL },           { "frobnicate", NULL },
        };
        for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
                r = run_ersd(E.conf, E.manifest, bad[i], NULL);
                if (r.status != 2)
                        fail_msg("ersd %s %s exited %d, expected 2", bad[i][0], bad[i][1] ? bad[i][1] : "", r.status);
                run_free(&r);
        }
}

/* ersd --once with stdout and stderr on a pseudo-terminal; everything it printed. */
static char *run_on_pty(int *ret_status) {
        char path[512];
        const char *b = getenv("ERSD_BUILD");
        int master = -1, st = 0;
        size_t len = 0, cap = 65536;
        char *out = malloc(cap);
        pid_t pid;

        assert_non_null(out);
        snprintf(path, sizeof path, "%s/ersd", b && *b ? b : "build");
        pid = forkpty(&master, NULL, NULL, NULL);
        assert_true(pid >= 0);
        if (pid == 0) {
                unsetenv("JOURNAL_STREAM");
                execl(path, path, "-c", E.conf, "--once", (char *) NULL);
                _exit(127);
        }
        for (;;) {
                if (len + 4096 > cap) {
                        cap *= 2;
                        out = realloc(out, cap);
                        assert_non_null(out);
                }
                ssize_t n = read(master, out + len, cap - len - 1);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) /* EIO once the child has closed the terminal */
                        break;
                len += (size_t) n;
        }
        out[len] = '\0';
        close(master);
        waitpid(pid, &st, 0);
        *ret_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        return out;
}

/* The progress line: drawn in place on a terminal, erased before the summary;
 * never in a pipe. */
static void test_progress_line_on_a_terminal_only(void **state) {
        (void) state;
        int status = -1;
        char *out = run_on_pty(&status);
        output_log(out, NULL);
        assert_no_patient_identifier("ersd --once on a terminal", out, E.manifest, NULL);
        if (status != 0)
                fail_msg("ersd --once on a terminal exited %d: %s", status, out);
        const char *line = strstr(out, "\r\033[Kersd: referrals ");
        if (!line)
                fail_msg("no progress line on the terminal: %s", out);
        char expect[32];
        snprintf(expect, sizeof expect, "/%zu, documents ", manifest_worklisted());
        assert_non_null(strstr(line, expect));
        /* Erased before the summary: after the last drawing, an erase comes before it. */
        const char *last = line;
        for (const char *q = line; (q = strstr(q + 1, "\r\033[Kersd: referrals "));)
                last = q;
        const char *summary = strstr(last, "ersd: sync done");
        assert_non_null(summary);
        const char *erase = strstr(last + 1, "\r\033[K");
        assert_true(erase && erase < summary);
        free(out);

        struct run r = ERSD("--once");
        assert_int_equal(r.status, 0);
        assert_null(strstr(r.err, "ersd: referrals "));
        assert_null(strchr(r.err, '\r'));
        assert_null(strchr(r.out, '\r'));
        run_free(&r);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_status_without_schema),
                cmocka_unit_test(test_status_empty_database),
                cmocka_unit_test(test_dry_run_writes_nothing),
                cmocka_unit_test(test_status_after_a_sync),
                cmocka_unit_test(test_status_parked_overdue_and_worklists),
                cmocka_unit_test(test_sync_one_referral),
                cmocka_unit_test(test_command_line),
                cmocka_unit_test(test_progress_line_on_a_terminal_only),
        };
        return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
