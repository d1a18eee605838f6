/* SPDX-License-Identifier: MIT */
/*
 * The return path end to end (issue 16): ersd --once against the mock on
 * SQLite, requests inserted into ers_outbox as a PAS would, each state
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

#define ERSD(...) run_ersd(E.conf, E.manifest, ARGS(__VA_ARGS__), NULL)

static void once(void) {
        struct run r = ERSD("--once");
        if (getenv("OUTBOX_DEBUG"))
                fprintf(stderr, "--once: %d\n%s\n", r.status, r.err);
        run_free(&r); /* its exit status says how the sync went; the outbox is checked below */
}

/* The first referral synced in `state`, its version in *version. */
static void pick(const char *state, char ubrn[13], long long *version) {
        const char *p[] = { state };
        char *u = db_text(E.db, "SELECT MIN(ubrn) FROM ers_referral WHERE state = ?", 1, p, NULL);
        assert_non_null(u);
        snprintf(ubrn, 13, "%s", u);
        free(u);
        const char *q[] = { ubrn };
        *version = db_int(E.db, "SELECT version FROM ers_referral WHERE ubrn = ?", 1, q);
}

static void request(const char *ubrn, const char *action, long long version) {
        char v[24];
        snprintf(v, sizeof v, "%lld", version);
        const char *p[] = { ubrn, action, strcmp(action, "ACCEPT_REFERRAL") ? "ACCEPT_REFER_BOOK_LATER" : NULL,
                            strcmp(action, "ACCEPT_REFERRAL") ? "Seen at triage: book routine" : NULL, v };
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

static void assert_state(const char *ubrn, const char *want) {
        char *s = outbox_state(ubrn);
        if (strcmp(s, want) != 0)
                fail_msg("request for %s is %s, expected %s", ubrn, s, want);
        free(s);
}

static int group_setup(void **state) {
        static const char *const args[] = { "--referrals", "32", NULL };
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
        if (write_test_config(E.conf, E.mock.base_url, "  auth = \"none\";\n  worklist_calls_per_day = 100;\n",
                              E.connection, NULL, E.state,
                              "log_level = \"debug\";\nwriteback = { enabled = true; actions = [ \"RECORD_REVIEW_OUTCOME\", "
                              "\"ACCEPT_REFERRAL\" ]; };") < 0)
                return -1;
        struct run r = ERSD("--init-db");
        run_free(&r);
        once();
        E.db = db_open(E.connection);
        return E.db ? 0 : -1;
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

/* Every state through the mock; a request decided on a version that moved on is never sent. */
static void test_outbox_every_state(void **state) {
        char triage[13], booked[13];
        long long tv, bv;
        int applied;

        (void) state;
        pick("AWAITING_TRIAGE", triage, &tv);
        pick("BOOKED", booked, &bv);

        /* STALE: decided on an older version: A029 says so, nothing is sent */
        request(triage, "RECORD_REVIEW_OUTCOME", tv - 1);
        once();
        assert_state(triage, "STALE");
        assert_int_equal(writes_for(triage, &applied), 0);

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
        char path[160];
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

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_outbox_every_state),
        };
        return cmocka_run_group_tests_name("outbox", tests, group_setup, group_teardown);
}
