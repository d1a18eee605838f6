/* SPDX-License-Identifier: MIT */
/*
 * The return path end to end (issue 16): ersd --once against the mock on
 * SQLite, PostgreSQL and MariaDB (a server each, tests/support/engines.h), requests inserted into ers_outbox as a PAS would, each state
 * reached, and the mock's write-back record checked for what was sent.
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
#include <fcntl.h>
#include <ftw.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/support/engines.h"
#include "tests/support/testutil.h"
#include "tests/support/verify.h"

struct env {
        struct mock mock;
        char *dir;
        char conf[512];
        char state[520];
        char connection[600];
        json_object *manifest;
        struct db *db;
};

static struct env E;
static struct engine G; /* the engine of the group running */
static char work[200];   /* this binary's directory: the odbcinst.ini and the driver's logs */

#define ERSD(...) run_ersd(E.conf, E.manifest, ARGS(__VA_ARGS__), NULL)

static void once(void) {
        struct run r = ERSD("--once");
        if (getenv("OUTBOX_DEBUG"))
                fprintf(stderr, "--once: %d\n%s\n", r.status, r.err);
        run_free(&r); /* its exit status says how the sync went; the outbox is checked below */
}

/* ersd --once, SIGKILLed by the mock at the `after`th API request of the run about ubrn
 * (the request is then answered as usual, so a write is applied); true when it was
 * killed, false when the run ended before that request. */
static bool once_killed_at(const char *ubrn, unsigned after) {
        const char *b = getenv("ERSD_BUILD");
        char path[512], q[128];
        int gate[2], st = 0;

        snprintf(path, sizeof path, "%s/ersd", b && *b ? b : "build");
        assert_int_equal(pipe2(gate, O_CLOEXEC), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                char g;
                prctl(PR_SET_PDEATHSIG, SIGKILL);
                if (read(gate[0], &g, 1) != 1 || !freopen("/dev/null", "w", stdout) ||
                    !freopen("/dev/null", "w", stderr))
                        _exit(126);
                execl(path, path, "-c", E.conf, "--once", (char *) NULL);
                _exit(127);
        }
        snprintf(q, sizeof q, "/_mock/killpoint?pid=%d&after=%u&ubrn=%s", (int) pid, after, ubrn);
        assert_int_equal(mock_post(&E.mock, q), 200);
        assert_int_equal(write(gate[1], "g", 1), 1); /* armed: now it may start */
        close(gate[0]);
        close(gate[1]);
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_int_equal(mock_post(&E.mock, "/_mock/killpoint?pid=0"), 200);
        return WIFSIGNALED(st) && WTERMSIG(st) == SIGKILL;
}

/* The endpoint of the last API request the mock answered (static storage). */
static const char *last_endpoint(void) {
        static char ep[16];
        json_object *c = mock_get(&E.mock, "/_mock/calls");
        json_object *a = json_object_object_get(c, "calls");
        size_t n = a ? json_object_array_length(a) : 0;

        snprintf(ep, sizeof ep, "%s",
                 n ? json_object_get_string(json_object_object_get(json_object_array_get_idx(a, n - 1), "endpoint"))
                   : "none");
        json_object_put(c);
        return ep;
}

/* A referral synced in `state` that no request is about yet, its version in *version. */
static void pick(const char *state, char ubrn[13], long long *version) {
        const char *p[] = { state };
        char *u = db_text(E.db, "SELECT MIN(ubrn) FROM ers_referral WHERE state = ? AND ubrn NOT IN "
                                "(SELECT ubrn FROM ers_outbox)", 1, p, NULL);
        assert_non_null(u);
        snprintf(ubrn, 13, "%s", u);
        free(u);
        const char *q[] = { ubrn };
        *version = db_int(E.db, "SELECT version FROM ers_referral WHERE ubrn = ?", 1, q);
}

static void request(const char *ubrn, const char *action, long long version) {
        char v[24];
        snprintf(v, sizeof v, "%lld", version);
        if (strcmp(action, "ACCEPT_REFERRAL") == 0) { /* no outcome, no comment: NULL (written so: every driver) */
                const char *p[] = { ubrn, action, v };
                assert_int_equal(db_exec_with(E.db, "INSERT INTO ers_outbox (ubrn, action, decided_version, "
                                                    "requested_by, requested_at) VALUES (?, ?, ?, 'STAFF-1', "
                                                    "'2030-01-01T00:00:00Z')", 3, p), 0);
                return;
        }
        const char *p[] = { ubrn, action, "ACCEPT_REFER_BOOK_LATER", "Seen at triage: book routine", v };
        assert_int_equal(db_exec_with(E.db, "INSERT INTO ers_outbox (ubrn, action, review_outcome, comment_text, "
                                            "decided_version, requested_by, requested_at) VALUES (?, ?, ?, ?, ?, "
                                            "'STAFF-1', '2030-01-01T00:00:00Z')", 5, p), 0);
}

static char *outbox_state(const char *ubrn) {
        const char *p[] = { ubrn };
        char *s = db_text(E.db, "SELECT state FROM ers_outbox WHERE ubrn = ? ORDER BY id DESC", 1, p, NULL);
        assert_non_null(s);
        return s;
}

/* Writes (A028 or A013) the mock recorded for ubrn; *applied those applied. */
static int writes_for(const char *ubrn, int *applied) {
        json_object *rec = mock_get(&E.mock, "/_mock/writeback/record");
        json_object *w = json_object_object_get(rec, "writes");
        int n = 0;

        *applied = 0;
        for (size_t i = 0; w && i < json_object_array_length(w); i++) {
                json_object *x = json_object_array_get_idx(w, i);
                const char *ep = json_object_get_string(json_object_object_get(x, "endpoint"));
                if (strcmp(json_object_get_string(json_object_object_get(x, "ubrn")), ubrn) != 0 ||
                    (ep && strstr(ep, "A029")))
                        continue;
                n++;
                *applied += json_object_get_boolean(json_object_object_get(x, "applied"));
        }
        json_object_put(rec);
        return n;
}

/* The error code of the latest request for ubrn is `want`. */
static void assert_code(const char *ubrn, const char *want) {
        const char *p[] = { ubrn };
        char *code = db_text(E.db, "SELECT error_code FROM ers_outbox WHERE ubrn = ? ORDER BY id DESC", 1, p, NULL);

        if (!code || strcmp(code, want) != 0)
                fail_msg("request for %s has error code %s, expected %s", ubrn, code ? code : "NULL", want);
        free(code);
}

static void assert_state(const char *ubrn, const char *want) {
        char *s = outbox_state(ubrn);
        if (strcmp(s, want) != 0)
                fail_msg("request for %s is %s, expected %s", ubrn, s, want);
        free(s);
}

/* A mock, a server of `kind` with a fresh database, ersd's configuration, and one sync. */
static int group_setup(enum engine_kind kind) {
        static const char *const args[] = { "--referrals", "160", NULL };
        int r = engine_start(&G, kind);

        if (r < 0) {
                print_error("could not start a %s server (see above): %s\n", G.name, strerror(-r));
                return -1;
        }
        E.dir = tmpdir_make();
        if (!E.dir || mock_start(&E.mock, args) < 0 ||
            engine_new_database(&G, E.connection, sizeof E.connection) < 0)
                return -1;
        snprintf(E.conf, sizeof E.conf, "%s/ersd.conf", E.dir);
        snprintf(E.state, sizeof E.state, "%s/state", E.dir);
        E.manifest = mock_get(&E.mock, "/_mock/manifest");
        if (!E.manifest)
                return -1;
        if (write_test_config(E.conf, E.mock.base_url, "  auth = \"none\";\n  worklist_calls_per_day = 100;\n",
                              E.connection, NULL, E.state,
                              "log_level = \"debug\";\nwriteback = { enabled = true; actions = [ \"RECORD_REVIEW_OUTCOME\", "
                              "\"ACCEPT_REFERRAL\" ]; };") < 0)
                return -1;
        struct run init = ERSD("--init-db");
        r = init.status;
        run_free(&init);
        if (r != 0)
                return -1;
        once();
        E.db = db_open(E.connection);
        return E.db ? 0 : -1;
}

static int group_setup_sqlite(void **state) {
        (void) state;
        return group_setup(ENGINE_SQLITE);
}

static int group_setup_postgresql(void **state) {
        (void) state;
        return group_setup(ENGINE_POSTGRESQL);
}

static int group_setup_mariadb(void **state) {
        (void) state;
        return group_setup(ENGINE_MARIADB);
}

static int group_teardown(void **state) {
        (void) state;
        db_close(E.db);
        json_object_put(E.manifest);
        mock_stop(&E.mock);
        tmpdir_remove(E.dir);
        free(E.dir);
        engine_stop(&G);
        E = (struct env){ .db = NULL };
        return 0;
}

/* Every state through the mock; a request decided on a version that moved on is never sent. */
static void test_outbox_every_state(void **state) {
        char triage[13], booked[13];
        long long tv, bv;
        int applied;

        (void) state;
        pick("AWAITING_TRIAGE", triage, &tv);
        pick("BOOKED", booked, &bv);

        /* STALE: decided on a version the PAS has left: nothing is asked or sent */
        request(triage, "RECORD_REVIEW_OUTCOME", tv - 1);
        once();
        assert_state(triage, "STALE");
        assert_code(triage, "NEWER_IN_PAS");
        assert_int_equal(writes_for(triage, &applied), 0);

        /* STALE: e-RS moved on and the PAS did not see it (its A005 failing): A029 says so,
         * nothing is sent */
        char moved[13], path[160];
        long long mv;
        pick("AWAITING_TRIAGE", moved, &mv);
        snprintf(path, sizeof path, "/_mock/bump?ubrn=%s", moved);
        assert_int_equal(mock_post(&E.mock, path), 200);
        snprintf(path, sizeof path, "/_mock/fault?endpoint=A005&kind=500&count=20&ubrn=%s", moved);
        assert_int_equal(mock_post(&E.mock, path), 200);
        request(moved, "RECORD_REVIEW_OUTCOME", mv);
        once();
        assert_int_equal(mock_post(&E.mock, "/_mock/fault/clear"), 200);
        assert_state(moved, "STALE");
        assert_code(moved, "HISTORY_NOT_SUPPORTED");
        assert_int_equal(writes_for(moved, &applied), 0);

        /* DONE: A028 applied once, the version e-RS answered kept */
        request(triage, "RECORD_REVIEW_OUTCOME", tv);
        once();
        assert_state(triage, "DONE");
        assert_int_equal(writes_for(triage, &applied), 1);
        assert_int_equal(applied, 1);
        const char *p[] = { triage };
        assert_int_equal(db_int(E.db, "SELECT answered_version FROM ers_outbox WHERE ubrn = ? AND state = 'DONE'", 1,
                                p), tv + 1);

        /* REJECTED: A013 on a referral that is not booked (422) */
        request(triage, "ACCEPT_REFERRAL", tv + 1);
        once();
        assert_state(triage, "REJECTED");

        /* RETRY while locked (423), then DONE once unlocked: sent again, applied once */
        snprintf(path, sizeof path, "/_mock/writeback/lock?ubrn=%s", booked);
        assert_int_equal(mock_post(&E.mock, path), 200);
        request(booked, "ACCEPT_REFERRAL", bv);
        once();
        assert_state(booked, "RETRY");
        snprintf(path, sizeof path, "/_mock/writeback/lock?ubrn=%s&locked=0", booked);
        assert_int_equal(mock_post(&E.mock, path), 200);
        assert_int_equal(db_exec(E.db, "UPDATE ers_outbox SET next_attempt_at = '2000-01-01T00:00:00Z' "
                                       "WHERE state = 'RETRY'"), 0); /* its backoff over */
        once();
        assert_state(booked, "DONE");
        assert_int_equal(writes_for(booked, &applied), 2);
        assert_int_equal(applied, 1);

        /* FORBIDDEN: the application unapproved: the request waits in RETRY, marked */
        assert_int_equal(mock_post(&E.mock, "/_mock/writeback/approve?action=A013&approved=0"), 200);
        request(booked, "ACCEPT_REFERRAL", bv + 1);
        once();
        assert_state(booked, "RETRY");
        assert_int_equal(writes_for(booked, &applied), 3);
        assert_int_equal(applied, 1);
        assert_int_equal(mock_post(&E.mock, "/_mock/writeback/approve?action=all&approved=1"), 200);
}

static long long jcount(json_object *counts, const char *key) {
        json_object *v = json_object_object_get(counts, key);
        if (!v)
                fail_msg("ersd status --json: outbox.counts.%s missing", key);
        return json_object_get_int64(v);
}

/* After every state: ersd status shows the requests waiting and those needing a person
 * (REJECTED, STALE, RETRY held by FORBIDDEN) in its three forms; a FORBIDDEN makes it
 * exit 1. */
static void test_outbox_status(void **state) {
        (void) state;
        long long stale = db_int(E.db, "SELECT COUNT(*) FROM ers_outbox WHERE state = 'STALE'", 0, NULL);
        long long rejected = db_int(E.db, "SELECT COUNT(*) FROM ers_outbox WHERE state = 'REJECTED'", 0, NULL);
        long long retry = db_int(E.db, "SELECT COUNT(*) FROM ers_outbox WHERE state = 'RETRY'", 0, NULL);
        long long done = db_int(E.db, "SELECT COUNT(*) FROM ers_outbox WHERE state = 'DONE'", 0, NULL);
        char ubrn[13];
        long long v;

        assert_true(stale >= 1 && rejected >= 1 && retry == 1); /* test_outbox_every_state left them */
        pick("AWAITING_TRIAGE", ubrn, &v);
        request(ubrn, "RECORD_REVIEW_OUTCOME", v); /* one NEW, waiting */

        struct run r = ERSD("status", "--json");
        json_object *root = json_tokener_parse(r.out);
        json_object *ob = json_object_object_get(root, "outbox");
        json_object *c = json_object_object_get(ob, "counts");
        if (!c)
                fail_msg("ersd status --json printed no outbox counts: %s", r.out);
        assert_int_equal(r.status, 1); /* the FORBIDDEN one */
        assert_int_equal(jcount(c, "new"), 1);
        assert_int_equal(jcount(c, "waiting"), 1);
        assert_int_equal(jcount(c, "retry"), 0);
        assert_int_equal(jcount(c, "forbidden"), 1);
        assert_int_equal(jcount(c, "stale"), stale);
        assert_int_equal(jcount(c, "rejected"), rejected);
        assert_int_equal(jcount(c, "done"), done);
        assert_int_equal(jcount(c, "needs_person"), stale + rejected + 1);
        json_object *list = json_object_object_get(ob, "needs_person");
        assert_int_equal(json_object_array_length(list), stale + rejected + 1);
        bool forbidden_listed = false;
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                json_object *x = json_object_array_get_idx(list, i);
                assert_non_null(jstr(x, "ubrn"));
                assert_null(json_object_object_get(x, "comment")); /* never the comment */
                forbidden_listed |= strcmp(jstr(x, "state"), "RETRY") == 0 &&
                                    strcmp(jstr(x, "error_code"), "FORBIDDEN") == 0;
        }
        assert_true(forbidden_listed);
        assert_null(strstr(r.out, "Seen at triage")); /* the comment */
        assert_null(strstr(r.out, "STAFF-1"));        /* who asked */
        json_object_put(root);
        run_free(&r);

        r = ERSD("status");
        if (getenv("OUTBOX_DEBUG"))
                fprintf(stderr, "%s", r.out);
        assert_int_equal(r.status, 1);
        char want[160];
        snprintf(want, sizeof want, "1 waiting (1 new, 0 to retry, 0 sending), %lld done, %lld need a person", done,
                 stale + rejected + 1);
        if (!strstr(r.out, want) || !strstr(r.out, "RETRY FORBIDDEN") || !strstr(r.out, "STALE") ||
            strstr(r.out, "\\x0a"))
                fail_msg("ersd status: the outbox not shown as expected (%s): %s", want, r.out);
        run_free(&r);

        r = ERSD("status", "--prometheus");
        snprintf(want, sizeof want, "ersd_outbox_needs_person %lld\n", stale + rejected + 1);
        if (!strstr(r.out, want) || !strstr(r.out, "ersd_outbox_waiting 1\n") ||
            !strstr(r.out, "ersd_outbox_requests{state=\"forbidden\"} 1\n"))
                fail_msg("ersd status --prometheus: the outbox not counted as expected: %s", r.out);
        run_free(&r);
        /* the NEW one sent by the next round, so that the tests after start from none waiting */
        once();
        assert_state(ubrn, "DONE");
}

/* The mock's version of ubrn now (A005 as it serves it, by the record's last write). */
static long long answered_version(const char *ubrn) {
        const char *p[] = { ubrn };
        return db_int(E.db, "SELECT answered_version FROM ers_outbox WHERE ubrn = ? AND state = 'DONE'", 1, p);
}

/* After a request for ubrn decided on `version`, however ersd was killed on the way and
 * restarted: e-RS applied it exactly once, and the row is DONE with the version e-RS answered. */
static void assert_applied_once(const char *ubrn, long long version, const char *when) {
        int applied = 0;
        int writes = writes_for(ubrn, &applied);
        char *s = outbox_state(ubrn);

        if (applied != 1 || writes != 1 || strcmp(s, "DONE") != 0)
                fail_msg("%s: request for %s: %d write(s) sent, %d applied, state %s (expected 1, 1, DONE)", when,
                         ubrn, writes, applied, s);
        free(s);
        assert_int_equal(answered_version(ubrn), version + 1);
}

/* --dry-run prints each request it would send (number, action, UBRN, decided version;
 * never the comment nor who asked) and sends nothing: no A029, no write, the row as it was. */
static void test_outbox_dry_run(void **state) {
        char ubrn[13], booked[13], want[200];
        long long v, bv;

        (void) state;
        pick("AWAITING_TRIAGE", ubrn, &v);
        pick("BOOKED", booked, &bv);
        request(ubrn, "RECORD_REVIEW_OUTCOME", v);
        request(booked, "ACCEPT_REFERRAL", bv);
        const char *p[] = { ubrn }, *bp[] = { booked };
        long long id = db_int(E.db, "SELECT id FROM ers_outbox WHERE ubrn = ?", 1, p);
        long long bid = db_int(E.db, "SELECT id FROM ers_outbox WHERE ubrn = ?", 1, bp);
        assert_int_equal(mock_post(&E.mock, "/_mock/calls/reset"), 200);

        struct run r = ERSD("--once", "--dry-run");
        snprintf(want, sizeof want, "writeback: would send request %lld RECORD_REVIEW_OUTCOME %s decided on version %lld\n",
                 id, ubrn, v);
        if (!strstr(r.out, want))
                fail_msg("--dry-run did not print \"%s\": %s", want, r.out);
        snprintf(want, sizeof want, "writeback: would send request %lld ACCEPT_REFERRAL %s decided on version %lld\n",
                 bid, booked, bv);
        if (!strstr(r.out, want))
                fail_msg("--dry-run did not print \"%s\": %s", want, r.out);
        assert_null(strstr(r.out, "Seen at triage")); /* the comment */
        assert_null(strstr(r.out, "STAFF-1"));        /* who asked */
        assert_null(strstr(r.err, "Seen at triage"));
        run_free(&r);

        int applied;
        assert_int_equal(writes_for(ubrn, &applied), 0);
        assert_int_equal(writes_for(booked, &applied), 0);
        json_object *calls = mock_get(&E.mock, "/_mock/calls");
        json_object *a = json_object_object_get(calls, "calls");
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                const char *ep = jstr(json_object_array_get_idx(a, i), "endpoint");
                if (ep && (strcmp(ep, "A029") == 0 || strcmp(ep, "A028") == 0 || strcmp(ep, "A013") == 0))
                        fail_msg("--dry-run called %s", ep);
        }
        json_object_put(calls);
        assert_state(ubrn, "NEW");
        assert_state(booked, "NEW");
        assert_int_equal(db_int(E.db, "SELECT attempts FROM ers_outbox WHERE ubrn = ?", 1, p), 0);

        once(); /* a real round sends them */
        assert_applied_once(ubrn, v, "after a dry run");
        assert_applied_once(booked, bv, "after a dry run");
}

/* A write that reached e-RS, its answer lost (drop: applied, then the connection closed):
 * settled by what A005 shows in the same round, never sent again. */
static void test_outbox_answer_lost(void **state) {
        char triage[13], booked[13], path[200];
        long long tv, bv;

        (void) state;
        pick("AWAITING_TRIAGE", triage, &tv);
        pick("BOOKED", booked, &bv);
        snprintf(path, sizeof path, "/_mock/writeback/fault?action=A028&kind=drop&ubrn=%s", triage);
        assert_int_equal(mock_post(&E.mock, path), 200);
        snprintf(path, sizeof path, "/_mock/writeback/fault?action=A013&kind=drop&ubrn=%s", booked);
        assert_int_equal(mock_post(&E.mock, path), 200);
        request(triage, "RECORD_REVIEW_OUTCOME", tv);
        request(booked, "ACCEPT_REFERRAL", bv);
        once();
        assert_applied_once(triage, tv, "answer lost");
        assert_applied_once(booked, bv, "answer lost");
        once(); /* settled: nothing more is sent */
        assert_applied_once(triage, tv, "answer lost, a round later");
        assert_applied_once(booked, bv, "answer lost, a round later");
}

/* SIGKILL at every request of a round that sends (the sync's reads, A029, the write, and
 * for a drop the A005 that settles it), then ersd restarted: never a second applied write,
 * never a blind resend, never a lost request. */
static void kill_sweep(const char *state_name, const char *action, const char *drop) {
        unsigned after = 1;
        bool killed = true;
        char path[200];

        for (; killed && after < 200; after++) {
                char ubrn[13], when[96];
                long long v;

                pick(state_name, ubrn, &v);
                if (drop) {
                        snprintf(path, sizeof path, "/_mock/writeback/fault?action=%s&kind=drop&ubrn=%s", drop, ubrn);
                        assert_int_equal(mock_post(&E.mock, path), 200);
                }
                request(ubrn, action, v);
                killed = once_killed_at(ubrn, after);
                if (killed && getenv("OUTBOX_DEBUG"))
                        fprintf(stderr, "%s: killed at request %u about %s: %s\n", action, after, ubrn,
                                last_endpoint());
                if (killed) /* and again at the restart's first request about it (A005 or A029) */
                        (void) once_killed_at(ubrn, 1);
                once(); /* restarted */
                snprintf(when, sizeof when, "%s%s killed at request %u", action, drop ? " (answer lost)" : "", after);
                if (!killed)
                        snprintf(when, sizeof when, "%s%s not killed", action, drop ? " (answer lost)" : "");
                assert_applied_once(ubrn, v, when);
                assert_int_equal(mock_post(&E.mock, "/_mock/writeback/fault/clear"), 200);
        }
        assert_false(killed); /* the sweep reached a run that ended on its own */
        if (getenv("OUTBOX_DEBUG"))
                fprintf(stderr, "%s: %u kill points\n", action, after - 2);
}

/* The answer came and its outcome's COMMIT did not (as a crash between the two would leave
 * it): the row stays SENDING and the next round settles it DONE by A005, never sending it
 * again; a COMMIT that went through though reported failed leaves it DONE. */
static void test_outbox_outcome_commit_lost(void **state) {
        const char *lost[] = { odbc_fault_preload(), "ERSD_FAULT_COMMIT=lost:1", "ERSD_FAULT_TABLE=ers_outbox", NULL };
        const char *committed[] = { odbc_fault_preload(), "ERSD_FAULT_COMMIT=committed:1", "ERSD_FAULT_TABLE=ers_outbox",
                                    NULL };
        char a[13], b[13];
        long long av, bv;
        int applied;

        (void) state;
        pick("AWAITING_TRIAGE", a, &av);
        request(a, "RECORD_REVIEW_OUTCOME", av);
        struct run r = run_ersd(E.conf, E.manifest, ARGS("--once"), &(struct run_opts){ .env = lost });
        run_free(&r);
        assert_state(a, "SENDING");
        assert_int_equal(writes_for(a, &applied), 1);
        once();
        assert_applied_once(a, av, "outcome's commit lost");

        pick("AWAITING_TRIAGE", b, &bv);
        request(b, "RECORD_REVIEW_OUTCOME", bv);
        r = run_ersd(E.conf, E.manifest, ARGS("--once"), &(struct run_opts){ .env = committed });
        run_free(&r);
        assert_applied_once(b, bv, "outcome committed, reported failed");
        once();
        assert_applied_once(b, bv, "outcome committed, reported failed, a round later");
}

/* A013 leaves the referral BOOKED: killed at it (applied), then the appointment moved (one
 * version more, still BOOKED) before the restart: what e-RS shows no longer tells whose the
 * new version is, so the request is STALE for a person, never DONE by a guess, nor sent again. */
static void test_outbox_accept_settled_only_when_sure(void **state) {
        char booked[13], path[200];
        long long bv;
        int applied;

        (void) state;
        pick("BOOKED", booked, &bv);
        request(booked, "ACCEPT_REFERRAL", bv);
        assert_true(once_killed_at(booked, 1)); /* at A013, then applied */
        assert_state(booked, "SENDING");
        snprintf(path, sizeof path, "/_mock/change?ubrn=%s&what=appointment", booked);
        assert_int_equal(mock_post(&E.mock, path), 200);
        once();
        assert_state(booked, "STALE");
        assert_int_equal(writes_for(booked, &applied), 1);
        assert_int_equal(applied, 1);
}

/* An acceptance decided on a version the PAS has already left (a person looked at an older
 * screen): never sent.  Sent, e-RS would refuse it (409); with that answer lost, A005 would
 * show the referral BOOKED exactly one version past the decided one, which settling takes for
 * the acceptance applied: DONE, though e-RS never accepted it. */
static void test_outbox_accept_on_left_version(void **state) {
        char booked[13], path[200];
        long long bv;
        int applied;

        (void) state;
        pick("BOOKED", booked, &bv);
        snprintf(path, sizeof path, "/_mock/writeback/fault?action=A013&kind=drop&ubrn=%s", booked);
        assert_int_equal(mock_post(&E.mock, path), 200);
        request(booked, "ACCEPT_REFERRAL", bv - 1);
        once();
        assert_state(booked, "STALE");
        assert_int_equal(writes_for(booked, &applied), 0);
        assert_code(booked, "NEWER_IN_PAS");
        assert_int_equal(mock_post(&E.mock, "/_mock/writeback/fault/clear"), 200);
}

/* A review outcome that reached e-RS (killed at A028, applied), then the referral changed so
 * that the sync refuses it (an attachment without an id): settling reads only its version and
 * state, so the request is DONE, not left SENDING for as long as e-RS serves it that way. */
static void test_outbox_settled_though_the_referral_is_refused(void **state) {
        char path[200];
        int applied;

        (void) state;
        char *triage = db_text(E.db, "SELECT MIN(r.ubrn) FROM ers_referral r WHERE r.state = 'AWAITING_TRIAGE' AND "
                                     "r.ubrn NOT IN (SELECT ubrn FROM ers_outbox) AND EXISTS (SELECT 1 FROM "
                                     "ers_document d WHERE d.ubrn = r.ubrn AND d.source_ubrn = r.ubrn AND d.kind = "
                                     "'ATTACHMENT')", 0, NULL, NULL);
        assert_non_null(triage);
        const char *p[] = { triage };
        long long tv = db_int(E.db, "SELECT version FROM ers_referral WHERE ubrn = ?", 1, p);
        char *att = db_text(E.db, "SELECT MIN(attachment_id) FROM ers_document WHERE ubrn = ? AND source_ubrn = ubrn "
                                  "AND kind = 'ATTACHMENT'", 1, p, NULL);
        assert_non_null(att);
        request(triage, "RECORD_REVIEW_OUTCOME", tv);
        assert_true(once_killed_at(triage, 2)); /* A029, then at A028: applied */
        assert_state(triage, "SENDING");
        snprintf(path, sizeof path, "/_mock/change?ubrn=%s&what=attachment_id_dropped&attachment=%s", triage, att);
        assert_int_equal(mock_post(&E.mock, path), 200);
        once();
        assert_state(triage, "DONE");
        assert_int_equal(writes_for(triage, &applied), 1);
        assert_int_equal(applied, 1);
        free(att);
        free(triage);
}

static void test_outbox_killed_while_sending(void **state) {
        (void) state;
        kill_sweep("AWAITING_TRIAGE", "RECORD_REVIEW_OUTCOME", NULL);
        kill_sweep("AWAITING_TRIAGE", "RECORD_REVIEW_OUTCOME", "A028");
        kill_sweep("BOOKED", "ACCEPT_REFERRAL", NULL);
        kill_sweep("BOOKED", "ACCEPT_REFERRAL", "A013");
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st, (void) flag, (void) ftw;
        remove(path);
        return 0;
}

int main(void) {
        const char *tmp = getenv("TMPDIR");
        char logs[240];
        int failed = 0;
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_outbox_every_state),
                cmocka_unit_test(test_outbox_status),
                cmocka_unit_test(test_outbox_answer_lost),
                cmocka_unit_test(test_outbox_dry_run),
                cmocka_unit_test(test_outbox_killed_while_sending),
                cmocka_unit_test(test_outbox_accept_settled_only_when_sure),
                cmocka_unit_test(test_outbox_accept_on_left_version),
                cmocka_unit_test(test_outbox_outcome_commit_lost),
                cmocka_unit_test(test_outbox_settled_though_the_referral_is_refused), /* last: it leaves a
                                                                                         referral refused */
        };

        snprintf(work, sizeof work, "%s/ersd-test-outbox-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(work) || snprintf(logs, sizeof logs, "%s/driver-logs", work) < 0 || engine_odbcinst(work, logs) < 0) {
                fprintf(stderr, "test_outbox: cannot make %s or its odbcinst.ini\n", work);
                return 1;
        }
        failed += cmocka_run_group_tests_name("outbox sqlite", tests, group_setup_sqlite, group_teardown);
        failed += cmocka_run_group_tests_name("outbox postgresql", tests, group_setup_postgresql, group_teardown);
        failed += cmocka_run_group_tests_name("outbox mariadb", tests, group_setup_mariadb, group_teardown);
        nftw(work, rm_one, 16, FTW_DEPTH | FTW_PHYS);
        return failed ? 1 : 0;
}
