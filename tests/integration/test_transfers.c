/* SPDX-License-Identifier: MIT */
/*
 * Transfers that do not end by themselves: an answer that trickles, one that
 * never ends (200 JSON, a 500, a 307's note, a document from the store), and
 * what ersd does about them: every transfer has a deadline (ers.transfer_timeout
 * plus one second per ers.min_transfer_rate KiB it carried), an error body or a
 * redirect's note is read to a small cap only, and the cut is said in one line
 * naming the UBRN and the correlation id; a stop (SIGTERM) ends a stuck
 * transfer within a second; a writer stuck on one stops renewing its lease,
 * so a standby takes over (the watchdog's side is in test_service.c); and an
 * error answer's own words are quoted in its line.
 *
 * The mock paces the answers itself (its `slow` and `endless` faults, with a
 * rate in bytes a second), so nothing here sleeps: each test waits for what
 * ersd prints, and a guard of 60 s ends a test whose ersd never stops.  Every
 * test runs its own mock into its own fresh SQLite PAS.
 */
#include <errno.h>
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

#include "tests/support/testutil.h"

#define DEADLINE_S 1 /* ers.transfer_timeout of these tests */

struct env {
        char *dir;        /* owned temp directory */
        struct mock mock; /* the running test's mock, stopped by the teardown if the test fails */
        char conf[600];
        char connection[700];
        char ubrn[13];    /* a worklisted referral with an AVAILABLE attachment: the one faults aim at */
        unsigned n;       /* databases made so far */
};

static struct env E;

static double now_s(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
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

static int test_teardown(void **state) {
        (void) state;
        mock_stop(&E.mock);
        return 0;
}

/* The test's mock (3 referrals, one small attachment each), the referral the
 * faults aim at, and a fresh PAS; ersd's deadline `deadline_s`, and
 * `ers_lines` in the ers group. */
static void start(int deadline_s, const char *ers_lines) {
        static const char *const args[] = { "--referrals", "3", "--attachments", "1", "--big-attachment", "0", NULL };
        char state[650], ers[512];
        struct run r;

        assert_int_equal(mock_start(&E.mock, args), 0);
        json_object *manifest = mock_get(&E.mock, "/_mock/manifest?hashes=0");
        assert_non_null(manifest);
        json_object *refs = json_object_object_get(manifest, "referrals");
        E.ubrn[0] = '\0';
        for (size_t i = 0; i < json_object_array_length(refs) && !E.ubrn[0]; i++) {
                json_object *m = json_object_array_get_idx(refs, i);
                json_object *atts = json_object_object_get(m, "attachments");
                if (!json_object_get_boolean(json_object_object_get(m, "worklisted")) ||
                    json_object_array_length(atts) == 0 ||
                    strcmp(jstr(json_object_array_get_idx(atts, 0), "availability"), "AVAILABLE") != 0)
                        continue;
                snprintf(E.ubrn, sizeof E.ubrn, "%s", jstr(m, "ubrn"));
        }
        json_object_put(manifest);
        assert_int_equal(strlen(E.ubrn), 12);

        E.n++;
        snprintf(E.conf, sizeof E.conf, "%s/ersd-%u.conf", E.dir, E.n);
        snprintf(E.connection, sizeof E.connection, "Driver=SQLite3;Database=%s/pas-%u.db", E.dir, E.n);
        snprintf(state, sizeof state, "%s/state-%u", E.dir, E.n);
        /* One send a call (no retry to wait for), and the deadline. */
        snprintf(ers, sizeof ers, "  auth = \"none\";\n  tries = 1;\n  transfer_timeout = %d;\n%s", deadline_s,
                 ers_lines ? ers_lines : "");
        assert_int_equal(write_test_config(E.conf, E.mock.base_url, ers, E.connection, NULL, state, NULL), 0);
        r = run_ersd(E.conf, NULL, ARGS("--init-db"), NULL);
        if (r.status != 0)
                fail_msg("ersd --init-db exited %d: %s", r.status, r.err);
        run_free(&r);
}

/* The next `count` requests to `endpoint` for the referral (any, for A008) misbehave. */
static void fault_n(const char *endpoint, const char *kind, unsigned rate, unsigned count) {
        char path[256];
        int n = snprintf(path, sizeof path, "/_mock/fault?endpoint=%s&kind=%s&count=%u", endpoint, kind, count);

        if (strcmp(endpoint, "A008") != 0)
                n += snprintf(path + n, sizeof path - (size_t) n, "&ubrn=%s", E.ubrn);
        if (rate)
                snprintf(path + n, sizeof path - (size_t) n, "&rate=%u", rate);
        assert_int_equal(mock_post(&E.mock, path), 200);
}

static void fault(const char *endpoint, const char *kind, unsigned rate) {
        fault_n(endpoint, kind, rate, 1);
}

/* A count from the PAS, `?` the UBRN the faults aim at. */
static long long pas_int(const char *sql) {
        const char *params[] = { E.ubrn };
        struct db *d = db_open(E.connection);
        long long n;

        assert_non_null(d);
        n = db_int(d, sql, strchr(sql, '?') ? 1 : 0, params);
        db_close(d);
        return n;
}

/* The lines of `text` that contain `needle`: how many, and the first into line. */
static size_t lines_with(const char *text, const char *needle, char *line, size_t size) {
        size_t n = 0;

        line[0] = '\0';
        for (const char *p = text; p && *p;) {
                const char *end = strchr(p, '\n');
                size_t len = end ? (size_t) (end - p) : strlen(p);
                char *hit = memmem(p, len, needle, strlen(needle));
                if (hit && n++ == 0)
                        snprintf(line, size, "%.*s", (int) len, p);
                p = end ? end + 1 : NULL;
        }
        return n;
}

/* Starts ersd (the service) and waits for its first round's summary line
 * (into summary): the round's seconds, from the start.  Fails the test when
 * the round never ends (a transfer never cut).  The caller ends *p. */
static double first_round(struct proc *p, const char *label, char *summary, size_t size) {
        double t0 = now_s();

        assert_int_equal(ersd_spawn(E.conf, p), 0);
        long at = proc_wait_for(p, 1, "ersd: ", 0);
        double took = now_s() - t0;
        if (at < 0) {
                proc_end(p, SIGKILL);
                fail_msg("%s: ersd's round did not end in %.0f s: the transfer was never cut", label, took);
        }
        assert_true(proc_wait_for(p, 1, "\n", (size_t) at) >= 0);
        snprintf(summary, size, "%.*s", (int) strcspn(p->out + at, "\n"), p->out + at);
        return took;
}

/* A fault that makes the referral's transfer go on for ever (or for hours):
 * it is cut at its deadline, the round ends, the referral is not written, and
 * one line says so, naming the UBRN, the cause and the correlation id. */
struct cut_case {
        const char *endpoint;
        const char *kind;
        unsigned rate;    /* bytes a second, 0: as fast as it goes */
        const char *call;  /* the line names the call: "<call> UBRN <ubrn><after>" */
        const char *after;
        const char *cause;
};

static const struct cut_case cut_cases[] = {
        /* A005's answer at 1 byte a second: hours for a referral. */
        { "A005", "slow", 1, "A005", ": HTTP 200: ", "too slow: " },
        /* A005: a referral, then spaces that never end, at 100 bytes a second. */
        { "A005", "endless", 100, "A005", ": HTTP 200: ", "too slow: " },
        /* The object store's document at 1000 bytes a second, and one that never ends. */
        { "store", "slow", 1000, "A042", " Binary/", "too slow: " },
        { "store", "endless", 1000, "A042", " Binary/", "too slow: " },
        /* The letter (A007) trickling. */
        { "A007", "slow", 100, "A007", ": HTTP 200: ", "too slow: " },
        /* A 500 whose body never ends, fast (cut at the error body's cap) and slow (at the
         * deadline): the answer stands as a 500. */
        { "A005", "endless_500", 0, "A005", ": HTTP 500", "HTTP 500" },
        { "A005", "endless_500", 100, "A005", ": HTTP 500", "HTTP 500" },
};

static void test_cut_at_the_deadline(void **state) {
        (void) state;
        for (size_t i = 0; i < sizeof cut_cases / sizeof cut_cases[0]; i++) {
                const struct cut_case *c = &cut_cases[i];
                char what[128], line[2048], summary[512];
                struct proc p;

                start(DEADLINE_S, NULL);
                fault(c->endpoint, c->kind, c->rate);
                snprintf(what, sizeof what, "%s UBRN %s%s", c->call, E.ubrn, c->after);
                double took = first_round(&p, c->kind, summary, sizeof summary);
                size_t n = lines_with(p.err, c->cause, line, sizeof line);
                print_message("%s %s rate %u: round of %.1f s; %s\n", c->endpoint, c->kind, c->rate, took, line);
                if (n != 1 || !strstr(line, what) || !strstr(line, "correlation id ") ||
                    !strstr(line, E.ubrn))
                        fail_msg("%s %s: expected one line with \"%s\" … \"%s\" … correlation id, got %zu: %s",
                                 c->endpoint, c->kind, what, c->cause, n, p.err);
                if (!strstr(summary, "1 failed"))
                        fail_msg("%s %s: the referral should have failed: %s", c->endpoint, c->kind, summary);
                /* Cut at its deadline, not before it: a transfer cut for being too slow says how long
                 * it ran, and that must be there to be checked. */
                const char *in = strstr(line, " bytes in ");
                if (strcmp(c->cause, "too slow: ") == 0 && (!in || strtod(in + 10, NULL) < DEADLINE_S))
                        fail_msg("%s %s: not said to be cut at its deadline of %d s: %s", c->endpoint, c->kind,
                                 DEADLINE_S, line);
                assert_int_equal(proc_end(&p, SIGTERM), 0);
                assert_int_equal(stat_count(&E.mock, "faults_served"), 1);
                mock_stop(&E.mock);
        }
}

/* A042's 307 whose note never ends, fast and slow: the note is read to a
 * small cap or to the deadline, the redirect is followed, the document stored. */
static void test_endless_redirect_note_is_followed(void **state) {
        static const unsigned rates[] = { 0, 100 };
        (void) state;

        for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
                char summary[512];
                struct proc p;

                start(DEADLINE_S, NULL);
                fault("A042", "endless", rates[i]);
                (void) first_round(&p, "A042 endless 307", summary, sizeof summary);
                if (!strstr(summary, "sync done: referrals 3 new") || !strstr(summary, " 0 failed"))
                        fail_msg("A042 endless 307 (rate %u): %s: %s", rates[i], summary, p.err);
                assert_int_equal(proc_end(&p, SIGTERM), 0);
                assert_int_equal(stat_count(&E.mock, "faults_served"), 1);
                /* The referral's attachment, through the endless 307, is stored. */
                assert_int_equal(pas_int("SELECT COUNT(*) FROM ers_document WHERE fetch_status = 'FETCHED' AND "
                                         "kind = 'ATTACHMENT' AND source_ubrn = ?"),
                                 1);
                mock_stop(&E.mock);
        }
}

/*
 * An error answer that is not an OperationOutcome keeps its words in the
 * line: quoted, escaped and capped (server_text()).  A Location longer than
 * libcurl takes is said to be that, not "Out of memory".
 */
static void test_what_the_server_said(void **state) {
        static const struct {
                const char *endpoint, *kind;
                unsigned count;
                const char *after; /* the line holds "UBRN <ubrn>" and this */
        } cases[] = {
                /* The object store's own words, twice (a new link is asked for once). */
                { "store", "403", 2, " object store: HTTP 403: \"AccessDenied: Request has expired\" (correlation id " },
                /* A server failing with a page that never ends: its first words, capped. */
                { "A005", "endless_500", 1, ": HTTP 500: \"500 Internal Server Error: the answer goes on and on\" "
                                            "(correlation id " },
                /* A 307 with a 300 KiB Location. */
                { "A042", "long_location", 1, ": HTTP 307: its headers were refused: a header line over libcurl's "
                                              "100 KB limit" },
        };
        (void) state;

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char line[2048], summary[512], ubrn[32];
                struct proc p;

                start(DEADLINE_S, NULL);
                fault_n(cases[i].endpoint, cases[i].kind, 0, cases[i].count);
                (void) first_round(&p, cases[i].kind, summary, sizeof summary);
                snprintf(ubrn, sizeof ubrn, "UBRN %s", E.ubrn);
                size_t n = lines_with(p.err, "not synced", line, sizeof line);
                print_message("%s %s: %s\n", cases[i].endpoint, cases[i].kind, line);
                if (n != 1 || !strstr(line, ubrn) || !strstr(line, cases[i].after) || strstr(p.err, "Out of memory"))
                        fail_msg("%s %s: expected one line with \"%s\", got %zu: %s", cases[i].endpoint,
                                 cases[i].kind, cases[i].after, n, p.err);
                assert_int_equal(proc_end(&p, SIGTERM), 0);
                mock_stop(&E.mock);
        }
}

/*
 * SIGTERM while a transfer is stuck (an A005 at 1 byte a second, a document
 * the store stalls half-way), on a fetching thread and on the main thread
 * (ers.parallel_fetches = 1), with a deadline far off: ersd stops within about
 * a second (measured from the signal to its last line), writes nothing of the
 * referral in hand, and exits 0.
 */
static void test_sigterm_ends_a_stuck_transfer(void **state) {
        static const struct {
                const char *endpoint, *kind;
                unsigned rate;
                const char *ers_lines;
        } cases[] = {
                { "A005", "slow", 1, NULL },
                { "store", "stall", 0, NULL },
                { "A005", "slow", 1, "  parallel_fetches = 1;\n" },
                { "store", "stall", 0, "  parallel_fetches = 1;\n" },
        };
        (void) state;

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                struct proc p;

                start(600, cases[i].ers_lines);
                fault(cases[i].endpoint, cases[i].kind, cases[i].rate);
                assert_int_equal(ersd_spawn(E.conf, &p), 0);
                /* In the transfer: the mock has begun to answer it (a guard, not a wait). */
                for (int k = 0; stat_count(&E.mock, "faults_served") < 1; k++)
                        assert_true(k < 100000);
                double t0 = now_s();
                kill(p.pid, SIGTERM);
                long at = proc_wait_for(&p, 2, "stopped by signal", 0);
                double took = now_s() - t0;
                print_message("%s %s%s: stopped %.2f s after SIGTERM\n", cases[i].endpoint, cases[i].kind,
                              cases[i].ers_lines ? " (main thread)" : "", took);
                if (at < 0 || took > 2.0) {
                        proc_end(&p, SIGKILL);
                        fail_msg("%s %s: ersd did not stop within about a second of SIGTERM (%.1f s)",
                                 cases[i].endpoint, cases[i].kind, took);
                }
                assert_int_equal(proc_end(&p, SIGTERM), 0);
                assert_int_equal(pas_int("SELECT COUNT(*) FROM ers_ledger WHERE ubrn = ?"), 0);
                assert_int_equal(pas_int("SELECT COUNT(*) FROM ers_referral WHERE ubrn = ?"), 0);
                mock_stop(&E.mock);
        }
}

/*
 * Two ersd on one PAS with a 2-second lease.  The writer's download of the
 * referral's document is stuck (the store sends half of it, then nothing),
 * its deadline 8 s off: stuck, it renews its lease no more, so the standby
 * takes it over well before that deadline, and the writer, once its transfer
 * is cut, finds the lease gone and stops writing.  The standby syncs the
 * referral.
 */
static void test_lease_lapses_while_a_transfer_is_stuck(void **state) {
        char conf_a[700], conf_b[700], state_dir[700];
        struct proc a, b;
        (void) state;

        start(8, NULL);
        snprintf(conf_a, sizeof conf_a, "%s/ersd-lease-a.conf", E.dir);
        snprintf(conf_b, sizeof conf_b, "%s/ersd-lease-b.conf", E.dir);
        /* Each as on its own host: a state directory (spool) of its own. */
        snprintf(state_dir, sizeof state_dir, "%s/state-lease-a", E.dir);
        assert_int_equal(write_test_config(conf_a, E.mock.base_url, "  auth = \"none\";\n  transfer_timeout = 8;\n",
                                           E.connection, "  lease_seconds = 2;\n", state_dir, NULL),
                         0);
        snprintf(state_dir, sizeof state_dir, "%s/state-lease-b", E.dir);
        assert_int_equal(write_test_config(conf_b, E.mock.base_url, "  auth = \"none\";\n  transfer_timeout = 8;\n",
                                           E.connection, "  lease_seconds = 2;\n", state_dir, NULL),
                         0);
        fault("store", "stall", 0);

        assert_int_equal(ersd_spawn(conf_a, &a), 0);
        assert_true(proc_wait_for(&a, 2, "lease: taken;", 0) >= 0);
        assert_int_equal(ersd_spawn(conf_b, &b), 0);
        assert_true(proc_wait_for(&b, 2, "is on standby", 0) >= 0);
        for (int k = 0; stat_count(&E.mock, "faults_served") < 1; k++)
                assert_true(k < 100000); /* a guard: the writer reaches the store within moments */
        double t0 = now_s();
        long at = proc_wait_for(&b, 2, "lease: taken over from", 0);
        double took = now_s() - t0;
        print_message("the standby took over %.1f s after the writer's download got stuck (lease 2 s, deadline 8 s)\n",
                      took);
        if (at < 0 || took >= 6) {
                proc_end(&a, SIGKILL);
                proc_end(&b, SIGKILL);
                fail_msg("the standby did not take over while the writer was stuck (%.1f s)", took);
        }
        assert_true(proc_wait_for(&a, 2, "lease: lost", 0) >= 0);
        assert_true(proc_wait_for(&b, 1, "sync done: referrals", 0) >= 0);
        assert_int_equal(proc_end(&a, SIGTERM), 0);
        assert_int_equal(proc_end(&b, SIGTERM), 0);
        assert_int_equal(pas_int("SELECT COUNT(*) FROM ers_ledger WHERE ubrn = ?"), 1);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_cut_at_the_deadline, test_teardown),
                cmocka_unit_test_teardown(test_endless_redirect_note_is_followed, test_teardown),
                cmocka_unit_test_teardown(test_what_the_server_said, test_teardown),
                cmocka_unit_test_teardown(test_sigterm_ends_a_stuck_transfer, test_teardown),
                cmocka_unit_test_teardown(test_lease_lapses_while_a_transfer_is_stuck, test_teardown),
        };
        return cmocka_run_group_tests_name("transfers", tests, group_setup, group_teardown);
}
