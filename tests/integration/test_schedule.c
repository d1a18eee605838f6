/* SPDX-License-Identifier: MIT */
/*
 * Scheduling within what e-RS allows, end to end: build/ersd against the mock
 * e-RS, whose call record (/_mock/calls: every request with its arrival time,
 * endpoint, UBRN or service, and status) says what ersd sent and when.  Each
 * test has its own PAS (SQLite) and waits on the mock's record, ersd's output
 * or the PAS, with a deadline as a guard, never on time passing.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/schedule.h"
#include "daemon/util.h"
#include "tests/support/testutil.h"

#define DEADLINE 60.0 /* seconds: a guard against a hung test, not a wait */

struct env {
        struct mock mock; /* a test's own mock, stopped by the teardown if the test fails */
        char *dir;        /* owned temp directory */
        char conf[512];
        char connection[600];
        char state[560];
};

static struct env E;

static double mono(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* A short pause between two looks at the mock's record or the PAS (not a wait for an outcome). */
static void breathe(void) {
        struct timespec ts = { .tv_nsec = 50 * 1000 * 1000 };
        nanosleep(&ts, NULL);
}

static int group_setup(void **state) {
        (void) state;
        E.dir = tmpdir_make();
        return E.dir ? 0 : -1;
}

static int group_teardown(void **state) {
        (void) state;
        mock_stop(&E.mock);
        tmpdir_remove(E.dir);
        free(E.dir);
        return 0;
}

/* A fresh PAS named `name` and a configuration for E.mock with `ers_lines` and `extra`. */
static void fresh(const char *name, const char *const *mock_args, const char *ers_lines, const char *extra) {
        struct run r;

        mock_stop(&E.mock);
        assert_int_equal(mock_start(&E.mock, mock_args), 0);
        snprintf(E.conf, sizeof E.conf, "%s/%s.conf", E.dir, name);
        snprintf(E.connection, sizeof E.connection, "Driver=SQLite3;Database=%s/%s.db", E.dir, name);
        snprintf(E.state, sizeof E.state, "%s/%s-state", E.dir, name);
        assert_int_equal(write_test_config(E.conf, E.mock.base_url, ers_lines, E.connection, NULL, E.state, extra), 0);
        r = run_ersd(E.conf, NULL, ARGS("--init-db"), NULL);
        assert_int_equal(r.status, 0);
        run_free(&r);
}

static struct run once(void) {
        struct run r = run_ersd(E.conf, NULL, ARGS("--once"), NULL);
        return r;
}

/* The mock's record of the calls to `endpoint` (for `key` when not NULL): their arrival
 * times and statuses, at most max; how many. */
static size_t calls_of(const char *endpoint, const char *key, double *t, int *status, size_t max) {
        json_object *o = mock_get(&E.mock, "/_mock/calls");
        json_object *list;
        size_t n = 0;

        assert_non_null(o);
        list = json_object_object_get(o, "calls");
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                json_object *c = json_object_array_get_idx(list, i);
                if (strcmp(json_object_get_string(json_object_object_get(c, "endpoint")), endpoint) != 0)
                        continue;
                if (key && strcmp(json_object_get_string(json_object_object_get(c, "key")), key) != 0)
                        continue;
                if (n < max) {
                        if (t)
                                t[n] = json_object_get_double(json_object_object_get(c, "t"));
                        if (status)
                                status[n] = json_object_get_int(json_object_object_get(c, "status"));
                }
                n++;
        }
        json_object_put(o);
        return n;
}

/* A count of the mock's call record (GET /_mock/calls: "rate_limited"). */
static long long calls_count(const char *name) {
        json_object *o = mock_get(&E.mock, "/_mock/calls");
        long long v;

        assert_non_null(o);
        v = json_object_get_int64(json_object_object_get(o, name));
        json_object_put(o);
        return v;
}

static long long pas_int(const char *sql, const char *param) {
        struct db *d = db_open(E.connection);
        long long v;

        assert_non_null(d);
        v = db_int(d, sql, param ? 1 : 0, (const char *const[]){ param });
        db_close(d);
        return v;
}

static char *pas_text(const char *sql, const char *param) {
        struct db *d = db_open(E.connection);
        char *v;

        assert_non_null(d);
        v = db_text(d, sql, param ? 1 : 0, (const char *const[]){ param }, NULL);
        db_close(d);
        return v;
}

/* The query's text contains `needle`. */
static void assert_pas_text_has(const char *sql, const char *param, const char *needle) {
        char *got = pas_text(sql, param);

        if (!got || !strstr(got, needle))
                fail_msg("%s (%s) gives '%s', expected it to contain '%s'", sql, param, got ? got : "NULL", needle);
        free(got);
}

/* Waits (with the deadline as a guard) until the query's integer is `want`. */
static void wait_pas(const char *sql, const char *param, long long want) {
        double t0 = mono();
        long long got;

        while ((got = pas_int(sql, param)) != want) {
                if (mono() - t0 > DEADLINE)
                        fail_msg("after %.0f s, %s gives %lld, expected %lld", DEADLINE, sql, got, want);
                breathe();
        }
}

/* Waits until the mock has recorded at least n calls to endpoint/key; returns how many. */
static size_t wait_calls(const char *endpoint, const char *key, size_t n) {
        double t0 = mono();
        size_t got;

        while ((got = calls_of(endpoint, key, NULL, NULL, 0)) < n) {
                if (mono() - t0 > DEADLINE)
                        fail_msg("after %.0f s, %zu %s call(s) for %s, expected %zu", DEADLINE, got, endpoint,
                                 key ? key : "any", n);
                breathe();
        }
        return got;
}

/* ---- the worklist budget ------------------------------------------------------ */

/*
 * Two worklist calls a day whatever happens: five --once runs, then plain ersd
 * started and stopped three times, then started and killed (SIGKILL) three
 * times: the mock saw two A008 calls for the service, ers_budget says 2 for
 * the UK day, the runs beyond the budget said so and read nothing.
 */
static void test_budget_holds_across_restarts(void **state) {
        static const char *const args[] = { "--referrals", "4", "--big-attachment", "0", NULL };
        char day[SCHED_UK_DAY_LEN];
        struct proc p;
        (void) state;

        fresh("budget", args, "  auth = \"none\";\n  worklist_calls_per_day = 2;\n", NULL);
        for (int i = 0; i < 5; i++) {
                struct run r = once();
                if (i < 2 && r.status != 0)
                        fail_msg("run %d exited %d: %s", i, r.status, r.err);
                if (i >= 2) {
                        assert_int_equal(r.status, 1);
                        assert_non_null(strstr(r.err, "worklist cardiology not read: service 31001 has had its 2 "
                                                      "worklist calls for "));
                        assert_non_null(strstr(r.out, "worklists over budget 1 (not read)"));
                }
                run_free(&r);
        }
        for (int i = 0; i < 6; i++) {
                assert_int_equal(ersd_spawn(E.conf, &p), 0);
                if (i < 3) {
                        if (proc_wait_for(&p, 1, "ersd: sync ", 0) < 0)
                                fail_msg("loop run %d: no round: %s", i, p.err);
                        assert_int_equal(proc_end(&p, SIGTERM), 0);
                } else {
                        proc_end(&p, SIGKILL); /* at any instant: a crash loop */
                }
        }
        assert_int_equal(calls_of("A008", "31001", NULL, NULL, 0), 2);
        sched_uk_day(time(NULL), day);
        assert_int_equal(pas_int("SELECT calls FROM ers_budget WHERE service_id = '31001' AND budget_day = ?", day), 2);
        assert_pas_text_has("SELECT last_result FROM ers_poll WHERE worklist = ?", "cardiology",
                            "not read: service 31001 has had its 2 worklist calls");
        /* The four referrals were written by the first run; nothing was lost by the others. */
        assert_int_equal(pas_int("SELECT COUNT(*) FROM ers_ledger", NULL), 4);
}

/* Above two against a real e-RS: refused by --check-config with FILE:LINE; the
 * same against the loopback mock: accepted, and ersd says so at start. */
static void test_budget_above_two_refused_unless_loopback(void **state) {
        char conf[600], want[700], text[1024];
        struct run r;
        (void) state;

        snprintf(conf, sizeof conf, "%s/real.conf", E.dir);
        snprintf(text, sizeof text,
                 "ers: {\n"
                 "  base_url = \"https://api.service.nhs.uk/referrals\";\n"
                 "  auth = \"none\";\n"
                 "  worklist_calls_per_day = 3;\n"
                 "};\n"
                 "worklists = ( { name = \"w\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"31001\"; } );\n"
                 "database: { connection = \"Driver=SQLite3;Database=%s/real.db\"; };\n",
                 E.dir);
        assert_int_equal(write_text(conf, text, 0600), 0);
        r = run_ersd(conf, NULL, ARGS("--check-config"), NULL);
        assert_int_equal(r.status, 2);
        snprintf(want, sizeof want, "%s:4: ers.worklist_calls_per_day: 3 is beyond what e-RS allows (1..2)", conf);
        if (!strstr(r.err, want))
                fail_msg("expected '%s', got: %s", want, r.err);
        run_free(&r);

        static const char *const args[] = { "--referrals", "2", "--big-attachment", "0", NULL };
        fresh("loopback", args, "  auth = \"none\";\n  worklist_calls_per_day = 3;\n", NULL);
        r = run_ersd(E.conf, NULL, ARGS("--check-config"), NULL);
        assert_int_equal(r.status, 0);
        run_free(&r);
        r = once();
        assert_int_equal(r.status, 0);
        assert_non_null(strstr(r.err, "ers.base_url is a loopback address (a test mock): e-RS limits beyond "
                                      "production's are in force: 3 worklist call(s)"));
        run_free(&r);
}

/* "HH:MM" of UK time `minutes_ago` minutes before now. */
static void uk_hhmm_ago(int minutes_ago, char ret[6]) {
        time_t t = time(NULL) - minutes_ago * 60;
        time_t wall = t + sched_uk_offset(t);
        struct tm tm;

        assert_non_null(gmtime_r(&wall, &tm));
        snprintf(ret, 6, "%02d:%02d", tm.tm_hour, tm.tm_min);
}

/*
 * A poll time passed while ersd was not running (here: a fresh PAS, never
 * read, its only poll time 10 minutes ago): read at start, once.  Started
 * again, ersd sees the worklist was read since that poll time and does not
 * read it again.
 */
static void test_missed_poll_caught_up_once(void **state) {
        static const char *const args[] = { "--referrals", "3", "--big-attachment", "0", NULL };
        char hhmm[6], worklists[256];
        struct proc p;
        (void) state;

        uk_hhmm_ago(10, hhmm);
        fresh("missed", args, NULL, NULL);
        snprintf(worklists, sizeof worklists,
                 "worklists = ( { name = \"cardiology\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"31001\"; "
                 "poll_at = [\"%s\"]; } );\n",
                 hhmm);
        assert_int_equal(write_test_config(E.conf, E.mock.base_url, "  worklist_calls_per_day = 2;\n", E.connection, NULL,
                                           E.state, worklists),
                         0);

        assert_int_equal(ersd_spawn(E.conf, &p), 0);
        if (proc_wait_for(&p, 1, "ersd: sync ", 0) < 0)
                fail_msg("no first round: %s", p.err);
        assert_non_null(strstr(p.err, "worklist cardiology: never read before; read now to catch up"));
        assert_int_equal(proc_end(&p, SIGTERM), 0);
        assert_int_equal(calls_of("A008", "31001", NULL, NULL, 0), 1);
        assert_int_equal(pas_int("SELECT COUNT(*) FROM ers_ledger", NULL), 3);

        assert_int_equal(ersd_spawn(E.conf, &p), 0);
        if (proc_wait_for(&p, 1, "ersd: sync ", 0) < 0)
                fail_msg("no round after the restart: %s", p.err);
        assert_null(strstr(p.err, "catch up"));
        assert_int_equal(proc_end(&p, SIGTERM), 0);
        assert_int_equal(calls_of("A008", "31001", NULL, NULL, 0), 1);
        char *next = pas_text("SELECT next_poll_at FROM ers_poll WHERE worklist = 'cardiology'", NULL);
        time_t next_t;
        assert_non_null(next);
        assert_int_equal(utc_iso_parse(next, &next_t), 0);
        free(next);
        /* Tomorrow's poll time (UK): within a day, and after now. */
        assert_true(next_t > time(NULL) && next_t <= time(NULL) + 86400 + 3600);
}

/* ---- re-reading unfinished referrals -------------------------------------------- */

/*
 * A PENDING attachment (referral 1 of the mock): plain ersd asks A005 for the
 * referral again no sooner than ers.pending_recheck (3 s here), between
 * worklist polls and without one; once e-RS has scanned the file it is fetched
 * and the ledger row completed.
 */
static void test_pending_rechecked_no_sooner_than_the_minimum(void **state) {
        static const char *const args[] = { "--referrals", "3", "--big-attachment", "0", NULL };
        const char *ubrn = "300000000001";
        double t[8];
        struct proc p;
        (void) state;

        fresh("pending", args, "  auth = \"none\";\n  pending_recheck = 3;\n", NULL);
        assert_int_equal(ersd_spawn(E.conf, &p), 0);
        wait_calls("A005", ubrn, 3);
        size_t n = calls_of("A005", ubrn, t, NULL, 8);
        assert_true(n >= 3);
        for (size_t i = 1; i < n && i < 8; i++)
                if (t[i] - t[i - 1] < 3.0)
                        fail_msg("A005 %zu came %.2f s after the one before: sooner than pending_recheck (3 s)", i,
                                 t[i] - t[i - 1]);
        assert_int_equal(calls_of("A008", NULL, NULL, NULL, 0), 1); /* no worklist call for it */
        assert_int_equal(pas_int("SELECT complete FROM ers_ledger WHERE ubrn = ?", ubrn), 0);
        assert_int_equal(pas_int("SELECT COUNT(*) FROM ers_ledger WHERE ubrn = ? AND next_check_at IS NOT NULL", ubrn), 1);

        /* The scan ends: the next look fetches it. */
        json_object *man = mock_get(&E.mock, "/_mock/manifest?ubrn=300000000001&hashes=0");
        json_object *atts = json_object_object_get(json_object_array_get_idx(json_object_object_get(man, "referrals"), 0),
                                                   "attachments");
        char path[160];
        for (size_t i = 0; i < json_object_array_length(atts); i++) {
                json_object *a = json_object_array_get_idx(atts, i);
                if (strcmp(json_object_get_string(json_object_object_get(a, "availability")), "PENDING") == 0) {
                        snprintf(path, sizeof path, "/_mock/availability?attachment=%s&status=AVAILABLE",
                                 json_object_get_string(json_object_object_get(a, "id")));
                        assert_int_equal(mock_post(&E.mock, path), 200);
                }
        }
        json_object_put(man);
        wait_pas("SELECT complete FROM ers_ledger WHERE ubrn = ?", ubrn, 1);
        assert_int_equal(pas_int("SELECT COUNT(*) FROM ers_ledger WHERE ubrn = ? AND next_check_at IS NULL", ubrn), 1);
        assert_int_equal(proc_end(&p, SIGTERM), 0);
        assert_int_equal(calls_of("A008", NULL, NULL, NULL, 0), 1);
}

/* ---- backoff and the rate limit ------------------------------------------------- */

/*
 * A005 answers 429 with Retry-After: 2, 429 without, 503, 503, then 200: ersd
 * waits 2 s (Retry-After), then 1, 2 and 4 s (exponential, plus at most a
 * quarter of jitter), and writes the referral.  Intervals from the mock's
 * record of arrival times.  Never sooner than specified: that holds however
 * loaded the machine.  The upper bound is the nearest wrong wait (Retry-After
 * plus a step, the next step), so that it tells which wait ersd chose, not how
 * fast this machine answered: no window of a few tenths of a second.
 */
static void test_429_and_503_backed_off_as_specified(void **state) {
        static const char *const args[] = { "--referrals", "2", "--big-attachment", "0", NULL };
        static const struct {
                int status;
                double min, below; /* the wait before the next try: at least min, less than below */
        } want[] = { { 429, 2.0, 3.0 }, { 429, 1.0, 2.0 }, { 503, 2.0, 4.0 }, { 503, 4.0, 8.0 }, { 200, 0, 0 } };
        const char *ubrn = "300000000001";
        double t[8];
        int status[8];
        char path[160];
        (void) state;

        fresh("backoff", args, NULL, NULL);
        snprintf(path, sizeof path, "/_mock/fault?endpoint=A005&ubrn=%s&kind=429&retry_after=2", ubrn);
        assert_int_equal(mock_post(&E.mock, path), 200);
        snprintf(path, sizeof path, "/_mock/fault?endpoint=A005&ubrn=%s&kind=429_bare", ubrn);
        assert_int_equal(mock_post(&E.mock, path), 200);
        snprintf(path, sizeof path, "/_mock/fault?endpoint=A005&ubrn=%s&kind=503&count=2", ubrn);
        assert_int_equal(mock_post(&E.mock, path), 200);

        struct run r = once();
        if (r.status != 0)
                fail_msg("ersd --once exited %d: %s", r.status, r.err);
        run_free(&r);
        size_t n = calls_of("A005", ubrn, t, status, 8);
        assert_int_equal(n, 5);
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(status[i], want[i].status);
                if (i + 1 < n && (t[i + 1] - t[i] < want[i].min || t[i + 1] - t[i] >= want[i].below))
                        fail_msg("after the %d (try %zu): %.3f s, expected at least %.2f s and less than %.2f s",
                                 want[i].status, i + 1, t[i + 1] - t[i], want[i].min, want[i].below);
        }
        assert_int_equal(pas_int("SELECT COUNT(*) FROM ers_ledger WHERE ubrn = ?", ubrn), 1);
}

/* The mock enforces 10 requests a second (429 beyond): ersd at its production
 * rate causes none, and no second of the mock's record holds more than 10. */
static void test_rate_limit_holds_the_rate(void **state) {
        static const char *const args[] = { "--referrals", "8", "--big-attachment", "0", NULL };
        static const char *const endpoints[] = { "A008", "A005", "A042", "A007" };
        double t[512], all[512];
        size_t n = 0;
        (void) state;

        fresh("rate", args, "  auth = \"none\";\n  max_requests_per_second = 10;\n", NULL);
        assert_int_equal(mock_post(&E.mock, "/_mock/ratelimit?per_second=10"), 200);
        struct run r = once();
        if (r.status != 0)
                fail_msg("ersd --once exited %d: %s", r.status, r.err);
        run_free(&r);
        assert_int_equal(calls_count("rate_limited"), 0);
        for (size_t e = 0; e < sizeof endpoints / sizeof endpoints[0]; e++) {
                size_t k = calls_of(endpoints[e], NULL, t, NULL, 512);
                for (size_t i = 0; i < k && n < 512; i++)
                        all[n++] = t[i];
        }
        assert_true(n >= 30); /* 8 referrals: their A005, attachments and letters */
        for (size_t i = 0; i < n; i++) {
                size_t in_second = 0;
                for (size_t j = 0; j < n; j++)
                        in_second += all[j] >= all[i] && all[j] < all[i] + 1.0;
                if (in_second > 10)
                        fail_msg("%zu requests in the second after one of them: above 10/s", in_second);
        }
        assert_int_equal(mock_post(&E.mock, "/_mock/ratelimit?per_second=0"), 200);
}

/* ---- retries, parking, recovery ----------------------------------------------------- */

/*
 * One referral's A005 keeps failing (500) and another is refused by the PAS
 * itself (a trigger of its own, as a PAS constraint would): each is recorded
 * in ers_retry with its attempts, reason, correlation id (and SQLSTATE for
 * the PAS), parked after park_after (3) attempts, while the rest are written.
 * Once the causes go, both are written at the parked pace and their ers_retry
 * rows go in that very transaction.
 */
static void test_parking_and_recovery(void **state) {
        static const char *const args[] = { "--referrals", "5", "--big-attachment", "0", NULL };
        const char *failing = "300000000003", *refused = "300000000004";
        char path[160];
        struct proc p;
        struct db *d;
        (void) state;

        fresh("park", args, "  auth = \"none\";\n  tries = 1;\n",
              "retry_delay = 1;\npark_after = 3;\nparked_retry = 2;\n");
        snprintf(path, sizeof path, "/_mock/fault?endpoint=A005&ubrn=%s&kind=500&count=100000", failing);
        assert_int_equal(mock_post(&E.mock, path), 200);
        d = db_open(E.connection);
        assert_non_null(d);
        char trigger[256];
        snprintf(trigger, sizeof trigger,
                 "CREATE TRIGGER pas_refuses BEFORE INSERT ON ers_referral WHEN NEW.ubrn = '%s' "
                 "BEGIN SELECT RAISE(ABORT, 'refused by a PAS rule'); END",
                 refused);
        bool found;
        free(db_text(d, trigger, 0, NULL, &found));
        db_close(d);

        assert_int_equal(ersd_spawn(E.conf, &p), 0);
        wait_pas("SELECT COUNT(*) FROM ers_retry WHERE parked = 1", NULL, 2);
        assert_int_equal(pas_int("SELECT attempts FROM ers_retry WHERE ubrn = ?", failing), 3);
        assert_pas_text_has("SELECT reason FROM ers_retry WHERE ubrn = ?", failing, "HTTP 500");
        assert_int_equal(pas_int("SELECT COUNT(*) FROM ers_retry WHERE ubrn = ? AND correlation_id IS NOT NULL", failing), 1);
        char *sqlstate = pas_text("SELECT last_sqlstate FROM ers_retry WHERE ubrn = ?", refused);
        if (!sqlstate) {
                char *why = pas_text("SELECT reason FROM ers_retry WHERE ubrn = ?", refused);
                fail_msg("no SQLSTATE recorded for the referral the PAS refused; reason: %s", why ? why : "(none)");
        }
        assert_int_equal(strlen(sqlstate), 5);
        free(sqlstate);
        assert_null(pas_text("SELECT last_sqlstate FROM ers_retry WHERE ubrn = ?", failing));
        /* The others went on. */
        assert_int_equal(pas_int("SELECT COUNT(*) FROM ers_ledger", NULL), 3);
        if (proc_wait_for(&p, 2, "parked after 3 failed attempts", 0) < 0)
                fail_msg("no 'parked' line: %s", p.err);

        /* The causes go: both are written, their rows with them. */
        assert_int_equal(mock_post(&E.mock, "/_mock/fault/clear"), 200);
        d = db_open(E.connection);
        assert_non_null(d);
        free(db_text(d, "DROP TRIGGER pas_refuses", 0, NULL, &found));
        db_close(d);
        wait_pas("SELECT COUNT(*) FROM ers_ledger", NULL, 5);
        assert_int_equal(pas_int("SELECT COUNT(*) FROM ers_retry", NULL), 0);
        assert_int_equal(proc_end(&p, SIGTERM), 0);
        assert_int_equal(calls_of("A008", NULL, NULL, NULL, 0), 1); /* all of it without another worklist call */
}

/* Two services, two worklists: the first one's A008 fails (500), the second
 * is read and synced all the same. */
static void test_one_worklist_failing_while_another_syncs(void **state) {
        static const char *const args[] = { "--referrals", "6", "--big-attachment", "0", "--service", "31001",
                                             "--service", "31002", NULL };
        char text[2048];
        struct run r;
        (void) state;

        fresh("two", args, NULL, NULL);
        snprintf(text, sizeof text,
                 "ers: { base_url = \"%s\"; auth = \"none\"; worklist_calls_per_day = 100; tries = 1; };\n"
                 "worklists = (\n"
                 "  { name = \"first\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"31001\"; },\n"
                 "  { name = \"second\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"31002\"; }\n"
                 ");\n"
                 "database: { connection = \"%s\"; };\n"
                 "state_dir = \"%s\";\n",
                 E.mock.base_url, E.connection, E.state);
        assert_int_equal(write_text(E.conf, text, 0600), 0);
        assert_int_equal(mock_post(&E.mock, "/_mock/fault?endpoint=A008&kind=500"), 200);
        r = once();
        if (r.status != 1 || !strstr(r.err, "worklist first not read: ") || strstr(r.err, "worklist second not read"))
                fail_msg("exit %d: %s", r.status, r.err);
        assert_null(strstr(r.err, "worklist second not read"));
        assert_non_null(strstr(r.out, "referrals 3 new, 0 updated, 0 unchanged, 0 failed"));
        assert_non_null(strstr(r.out, "worklists failed 1"));
        run_free(&r);
        assert_int_equal(pas_int("SELECT COUNT(*) FROM ers_ledger WHERE worklist = 'second'", NULL), 3);
        assert_pas_text_has("SELECT last_result FROM ers_poll WHERE worklist = ?", "first", "not read: ");
        assert_pas_text_has("SELECT last_result FROM ers_poll WHERE worklist = ?", "second", "3 referral(s) listed");
}

/* A queued ers_retry row for a referral the PAS already has at e-RS's version
 * (written meanwhile by another round): read once, found unchanged, and the
 * row goes; it does not stay due for ever. */
static void test_queued_referral_already_written_leaves_the_queue(void **state) {
        static const char *const args[] = { "--referrals", "2", "--big-attachment", "0", NULL };
        struct run r;
        struct db *d;
        bool found;
        (void) state;

        fresh("queued", args, NULL, NULL);
        r = once();
        assert_int_equal(r.status, 0);
        run_free(&r);
        d = db_open(E.connection);
        assert_non_null(d);
        free(db_text(d,
                     "INSERT INTO ers_retry (ubrn, worklist, first_seen_at, attempts, next_attempt_at, parked) "
                     "VALUES ('300000000000', 'cardiology', '2026-01-01T00:00:00Z', 0, '2026-01-01T00:00:00Z', 0)",
                     0, NULL, &found));
        db_close(d);
        assert_int_equal(pas_int("SELECT COUNT(*) FROM ers_retry", NULL), 1);
        assert_int_equal(mock_post(&E.mock, "/_mock/calls/reset"), 200);
        r = once();
        if (r.status != 0 || !strstr(r.out, "0 new, 0 updated, 3 unchanged, 0 failed"))
                fail_msg("exit %d: %s%s", r.status, r.out, r.err);
        run_free(&r);
        assert_int_equal(pas_int("SELECT COUNT(*) FROM ers_retry", NULL), 0);
        assert_int_equal(calls_of("A005", "300000000000", NULL, NULL, 0), 1);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_budget_holds_across_restarts),
                cmocka_unit_test(test_budget_above_two_refused_unless_loopback),
                cmocka_unit_test(test_missed_poll_caught_up_once),
                cmocka_unit_test(test_pending_rechecked_no_sooner_than_the_minimum),
                cmocka_unit_test(test_429_and_503_backed_off_as_specified),
                cmocka_unit_test(test_rate_limit_holds_the_rate),
                cmocka_unit_test(test_parking_and_recovery),
                cmocka_unit_test(test_one_worklist_failing_while_another_syncs),
                cmocka_unit_test(test_queued_referral_already_written_leaves_the_queue),
        };
        return cmocka_run_group_tests_name("schedule", tests, group_setup, group_teardown);
}
