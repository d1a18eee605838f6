/* SPDX-License-Identifier: MIT */
/*
 * The write-back calls of the e-RS client (daemon/ers_writeback.h) against
 * the mock e-RS (tests/mock-ers/writeback.c), in this process: every outcome
 * the outbox sender acts on is reached through the mock as e-RS would give
 * it (DONE; REJECTED; STALE by 409 and by 412; RETRY by 423, 429, 503 and no
 * connection; FORBIDDEN; MAY_HAVE_REACHED by a connection dropped before or
 * after the write was applied, a 502 and a 504, and an answer that comes too
 * late), and after every failure the mock's record shows that the request
 * went exactly once: the transfer layer never sends a write again, nor does
 * libcurl on a connection it reused.  A write applied moves the referral to
 * its new version, which A005 and the worklist then show; a blind resend of
 * it would be refused by If-Match (409), never applied twice.
 *
 * Each test runs its own mock (the referrals of its seed, their states as
 * README.md "The data" gives them) and its own client; nothing sleeps.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/config.h"
#include "daemon/ers.h"
#include "daemon/ers_writeback.h"
#include "tests/support/testutil.h"

#define SERVICE "31001"

struct env {
        char *dir;        /* owned temp directory */
        struct mock mock; /* the running test's mock */
        struct config cfg;
        bool have_cfg;
        struct ers_client *ers;  /* owned */
        json_object *manifest;   /* owned: the mock's, as the test began */
        unsigned n;
};

static struct env E;

static int group_setup(void **state) {
        (void) state;
        E.dir = tmpdir_make();
        return E.dir ? 0 : -1;
}

static int group_teardown(void **state) {
        (void) state;
        tmpdir_remove(E.dir);
        free(E.dir);
        return 0;
}

static int test_teardown(void **state) {
        (void) state;
        ers_client_free(E.ers);
        E.ers = NULL;
        if (E.have_cfg)
                config_free(&E.cfg);
        E.have_cfg = false;
        json_object_put(E.manifest);
        E.manifest = NULL;
        mock_stop(&E.mock);
        return 0;
}

/* The test's mock and a client of it, with `ers_lines` in the ers group. */
static void start(const char *ers_lines) {
        static const char *const args[] = { "--referrals", "20", "--attachments", "1", "--big-attachment", "0", NULL };
        char conf[600], st[600], connection[700];
        struct errbuf e = { "" };

        assert_int_equal(mock_start(&E.mock, args), 0);
        E.manifest = mock_get(&E.mock, "/_mock/manifest?hashes=0");
        assert_non_null(E.manifest);
        E.n++;
        snprintf(conf, sizeof conf, "%s/ersd-%u.conf", E.dir, E.n);
        snprintf(st, sizeof st, "%s/state-%u", E.dir, E.n);
        snprintf(connection, sizeof connection, "Driver=SQLite3;Database=%s/pas-%u.db", E.dir, E.n);
        assert_int_equal(write_test_config(conf, E.mock.base_url, ers_lines, connection, NULL, st, NULL), 0);
        assert_int_equal(config_load(conf, NULL, NULL, &E.cfg), 0);
        E.have_cfg = true;
        if (ers_client_new(&E.cfg, &E.ers, &e) < 0)
                fail_msg("client: %s", e.msg);
}

/* A worklisted referral in `state` (the first, or the one after `skip` others) into ubrn, and its version. */
static const char *referral_in(const char *state, unsigned skip, char ubrn[13], int64_t *version) {
        json_object *refs = json_object_object_get(E.manifest, "referrals");

        for (size_t i = 0; i < json_object_array_length(refs); i++) {
                json_object *r = json_object_array_get_idx(refs, i);
                if (!json_object_get_boolean(json_object_object_get(r, "worklisted")) || strcmp(jstr(r, "state"), state) != 0 ||
                    skip-- > 0)
                        continue;
                snprintf(ubrn, 13, "%s", jstr(r, "ubrn"));
                *version = json_object_get_int64(json_object_object_get(r, "version"));
                return ubrn;
        }
        fail_msg("no referral in state %s", state);
        return NULL;
}

/* A field of the referral as the mock holds it now. */
static json_object *now(const char *ubrn) {
        char path[96];
        json_object *m, *r;

        snprintf(path, sizeof path, "/_mock/manifest?hashes=0&ubrn=%s", ubrn);
        m = mock_get(&E.mock, path);
        assert_non_null(m);
        r = json_object_get(json_object_array_get_idx(json_object_object_get(m, "referrals"), 0));
        json_object_put(m);
        assert_non_null(r);
        return r;
}

static int64_t version_now(const char *ubrn) {
        json_object *r = now(ubrn);
        int64_t v = json_object_get_int64(json_object_object_get(r, "version"));

        json_object_put(r);
        return v;
}

/* The mock's write-back record: the requests to `endpoint` for `ubrn`, and the last into *last (owned). */
static unsigned writes(const char *endpoint, const char *ubrn, json_object **last) {
        json_object *rec = mock_get(&E.mock, "/_mock/writeback/record"), *list;
        unsigned n = 0;

        assert_non_null(rec);
        list = json_object_object_get(rec, "writes");
        if (last)
                *last = NULL;
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                json_object *w = json_object_array_get_idx(list, i);
                if (strcmp(jstr(w, "endpoint"), endpoint) != 0 || strcmp(jstr(w, "ubrn"), ubrn) != 0)
                        continue;
                n++;
                if (last) {
                        json_object_put(*last);
                        *last = json_object_get(w);
                }
        }
        json_object_put(rec);
        return n;
}

/* The mock's call record (/_mock/calls): the API requests to `endpoint`, whatever their answer
 * or none (a dropped connection), checks or not. */
static unsigned calls(const char *endpoint) {
        json_object *rec = mock_get(&E.mock, "/_mock/calls"), *list;
        unsigned n = 0;

        assert_non_null(rec);
        list = json_object_object_get(rec, "calls");
        for (size_t i = 0; i < json_object_array_length(list); i++)
                n += strcmp(jstr(json_object_array_get_idx(list, i), "endpoint"), endpoint) == 0;
        json_object_put(rec);
        return n;
}

static void post(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void post(const char *fmt, ...) {
        char path[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(path, sizeof path, fmt, ap);
        va_end(ap);
        if (mock_post(&E.mock, path) != 200)
                fail_msg("mock control %s refused", path);
}

/* The line of a call: one line, naming the UBRN and the correlation id, no patient identifier. */
static void assert_line(const struct errbuf *e, const struct ers_call *call, const char *ubrn, const char *says) {
        assert_null(strchr(e->msg, '\n'));
        if (!strstr(e->msg, ubrn) || !strstr(e->msg, call->correlation_id) || (says && !strstr(e->msg, says)))
                fail_msg("line \"%s\": want the UBRN %s, the correlation id %s and \"%s\"", e->msg, ubrn,
                         call->correlation_id, says ? says : "");
        assert_no_patient_identifier("write-back line", e->msg, E.manifest, NULL);
}

static const char COMMENT[] = "Seen by Dr O'Brien \xe2\x80\x93 \"routine\" is fine;\nreturn if worse. caf\xc3\xa9 \\ "
                              "\xf0\x9f\xa9\xba";

/* A028 with the test's comment (and no new priority). */
static int review(const char *ubrn, int64_t decided, struct ers_wb_result *res, struct ers_call *call,
                  struct errbuf *e) {
        return ers_record_review_outcome(E.ers, ubrn, decided, ERS_REVIEW_RETURN_TO_REFERRER, COMMENT, NULL, res, call,
                                         e);
}

/* ---- A029 ------------------------------------------------------------------ */

static void test_allowed_actions(void **state) {
        struct ers_wb_result res;
        struct ers_call call;
        struct errbuf e = { "" };
        int64_t v, v2;
        char triage_buf[13];
        const char *triage;

        (void) state;
        start(NULL);
        triage = referral_in("AWAITING_TRIAGE", 0, triage_buf, &v);
        assert_int_equal(ers_allowed_actions(E.ers, triage, v, &res, &call, &e), 0);
        assert_int_equal(res.outcome, ERS_WB_DONE);
        assert_int_equal(res.actions, ERS_ACTION_RECORD_REVIEW_OUTCOME | ERS_ACTION_CANCEL_REFERRAL);
        assert_int_equal(res.unknown_actions, 0);
        /* Never cached: asked again, asked again. */
        assert_int_equal(ers_allowed_actions(E.ers, triage, v, &res, &call, &e), 0);
        assert_int_equal(res.outcome, ERS_WB_DONE);
        assert_int_equal(writes("A029", triage, NULL), 2);

        /* A referral not awaiting review: no review outcome to record. */
        char other_buf[13];
        const char *other = referral_in("NOT_BOOKED", 0, other_buf, &v2);
        assert_int_equal(ers_allowed_actions(E.ers, other, v2, &res, &call, &e), 0);
        assert_int_equal(res.outcome, ERS_WB_DONE);
        assert_int_equal(res.actions, ERS_ACTION_CANCEL_REFERRAL);

        /* Asked about a version that is no longer current: STALE (HISTORY_NOT_SUPPORTED). */
        post("/_mock/bump?ubrn=%s", triage);
        assert_int_equal(ers_allowed_actions(E.ers, triage, v, &res, &call, &e), 0);
        assert_int_equal(res.outcome, ERS_WB_STALE);
        assert_int_equal(res.http_status, 400);
        assert_string_equal(res.code, "HISTORY_NOT_SUPPORTED");
        assert_line(&e, &call, triage, "HTTP 400, e-RS HISTORY_NOT_SUPPORTED");

        /* A referral e-RS does not know: REJECTED. */
        assert_int_equal(ers_allowed_actions(E.ers, "300000009999", 1, &res, &call, &e), 0);
        assert_int_equal(res.outcome, ERS_WB_REJECTED);
        assert_string_equal(res.code, "REFERENCE_NOT_FOUND");

        /* The application not approved: FORBIDDEN. */
        post("/_mock/writeback/approve?action=A029&approved=0");
        assert_int_equal(ers_allowed_actions(E.ers, other, v2, &res, &call, &e), 0);
        assert_int_equal(res.outcome, ERS_WB_FORBIDDEN);
        assert_int_equal(res.http_status, 403);

        /* A read: a 503 is sent again by the transfer's tries, as any read is. */
        post("/_mock/writeback/approve?action=A029&approved=1");
        post("/_mock/writeback/fault?action=A029&kind=503&ubrn=%s", other);
        assert_int_equal(ers_allowed_actions(E.ers, other, v2, &res, &call, &e), 0);
        assert_int_equal(res.outcome, ERS_WB_DONE);
        assert_int_equal(writes("A029", other, NULL), 4);
        /* and none of it was a worklist call */
        assert_int_equal(calls("A008"), 0);
}

/* ---- DONE ------------------------------------------------------------------ */

/* A028 applied: the version e-RS answered, the request as the mock got it (If-Match on the
 * decided version, the comment byte for byte), and A005 and the worklist show the new version. */
static void test_review_done(void **state) {
        struct ers_wb_result res;
        struct ers_call call;
        struct errbuf e = { "" };
        json_object *w, *r, *answer = NULL;
        char sha[65], if_match[32], answered[24];
        struct worklist wl = { 0 };
        int64_t v, listed = -1;
        char ubrn_buf[13];
        const char *ubrn;

        (void) state;
        start(NULL);
        ubrn = referral_in("AWAITING_TRIAGE", 0, ubrn_buf, &v);
        assert_int_equal(ers_record_review_outcome(E.ers, ubrn, v, ERS_REVIEW_ACCEPT_BOOK_LATER, COMMENT, "TWO_WEEK_WAIT",
                                                   &res, &call, &e),
                         0);
        if (res.outcome != ERS_WB_DONE)
                fail_msg("%s: %s", ers_wb_outcome_name(res.outcome), e.msg);
        assert_int_equal(res.version, v + 1);
        assert_int_equal(res.http_status, 200);

        assert_int_equal(writes("A028", ubrn, &w), 1);
        snprintf(if_match, sizeof if_match, "W/\"%lld\"", (long long) v);
        assert_string_equal(jstr(w, "if_match"), if_match);
        sha256_hex(COMMENT, strlen(COMMENT), sha);
        assert_string_equal(jstr(w, "comment_sha256"), sha);
        assert_string_equal(jstr(w, "review_outcome"), ERS_REVIEW_ACCEPT_BOOK_LATER);
        assert_string_equal(jstr(w, "priority"), "TWO_WEEK_WAIT");
        assert_string_equal(jstr(w, "correlation_id"), call.correlation_id);
        assert_true(json_object_get_boolean(json_object_object_get(w, "applied")));
        json_object_put(w);

        r = now(ubrn);
        assert_int_equal(json_object_get_int64(json_object_object_get(r, "version")), v + 1);
        assert_string_equal(jstr(r, "state"), "TRIAGED_PROVIDER_TO_ACTION");
        assert_string_equal(jstr(r, "priority"), "TWO_WEEK_WAIT");
        json_object_put(r);

        assert_int_equal(ers_read_referral(E.ers, ubrn, &answer, NULL, &call, &e), 0);
        snprintf(answered, sizeof answered, "%lld", (long long) (v + 1));
        assert_string_equal(json_object_get_string(json_object_object_get(json_object_object_get(answer, "meta"),
                                                                          "versionId")),
                            answered);
        json_object_put(answer);
        assert_int_equal(ers_fetch_worklist(E.ers, "REFERRALS_FOR_REVIEW", SERVICE, &wl, &call, &e), 0);
        for (size_t i = 0; i < wl.n; i++)
                if (strcmp(wl.entries[i].ubrn, ubrn) == 0)
                        listed = wl.entries[i].version;
        worklist_free(&wl);
        assert_int_equal(listed, v + 1);

        /* Recorded now, the outcome is no longer on offer. */
        assert_int_equal(ers_allowed_actions(E.ers, ubrn, v + 1, &res, &call, &e), 0);
        assert_int_equal(res.outcome, ERS_WB_DONE);
        assert_int_equal(res.actions & ERS_ACTION_RECORD_REVIEW_OUTCOME, 0);
}

/* A013 applied; accepted twice is REJECTED with e-RS's code, as is A013 on a triage referral. */
static void test_accept_done_and_rejected(void **state) {
        struct ers_wb_result res;
        struct ers_call call;
        struct errbuf e = { "" };
        int64_t v, vt;
        char ubrn_buf[13], triage_buf[13];
        const char *ubrn, *triage;

        (void) state;
        start(NULL);
        ubrn = referral_in("BOOKED", 0, ubrn_buf, &v);
        assert_int_equal(ers_accept_referral(E.ers, ubrn, v, &res, &call, &e), 0);
        if (res.outcome != ERS_WB_DONE)
                fail_msg("%s: %s", ers_wb_outcome_name(res.outcome), e.msg);
        assert_int_equal(res.version, v + 1);
        assert_int_equal(version_now(ubrn), v + 1);

        assert_int_equal(ers_accept_referral(E.ers, ubrn, v + 1, &res, &call, &e), 0);
        assert_int_equal(res.outcome, ERS_WB_REJECTED);
        assert_int_equal(res.http_status, 422);
        assert_string_equal(res.code, "INVALID_REQUEST_STATE");
        assert_non_null(strstr(res.words, "is not allowed now"));
        assert_line(&e, &call, ubrn, "HTTP 422, e-RS INVALID_REQUEST_STATE");
        assert_int_equal(version_now(ubrn), v + 1);
        assert_int_equal(writes("A013", ubrn, NULL), 2);

        triage = referral_in("AWAITING_TRIAGE", 0, triage_buf, &vt);
        assert_int_equal(ers_accept_referral(E.ers, triage, vt, &res, &call, &e), 0);
        assert_int_equal(res.outcome, ERS_WB_REJECTED);
        assert_int_equal(writes("A013", triage, NULL), 1);
        assert_int_equal(version_now(triage), vt);
}

/* ---- STALE ------------------------------------------------------------------ */

static void test_stale_409_and_412(void **state) {
        struct ers_wb_result res;
        struct ers_call call;
        struct errbuf e = { "" };
        int64_t v;
        char ubrn_buf[13];
        const char *ubrn;

        (void) state;
        start(NULL);
        ubrn = referral_in("DEFERRED_TO_PROVIDER", 0, ubrn_buf, &v);
        /* The referral moved on since the decision (another version): 409, nothing applied. */
        for (int i = 0; i < 12; i++) /* twelve state changes: the same state again, at version v + 12 */
                post("/_mock/bump?ubrn=%s", ubrn);
        assert_int_equal(review(ubrn, v, &res, &call, &e), 0);
        assert_int_equal(res.outcome, ERS_WB_STALE);
        assert_int_equal(res.http_status, 409);
        assert_line(&e, &call, ubrn, "HTTP 409, e-RS CONFLICT");
        assert_int_equal(writes("A028", ubrn, NULL), 1);
        assert_int_equal(version_now(ubrn), v + 12);

        /* A version e-RS never had: 412, nothing applied. */
        assert_int_equal(review(ubrn, v + 40, &res, &call, &e), 0);
        assert_int_equal(res.outcome, ERS_WB_STALE);
        assert_int_equal(res.http_status, 412);
        assert_string_equal(res.code, "PRECONDITION_FAILED");
        assert_int_equal(writes("A028", ubrn, NULL), 2);
        assert_int_equal(version_now(ubrn), v + 12);

        /* On the current version it goes. */
        assert_int_equal(review(ubrn, v + 12, &res, &call, &e), 0);
        assert_int_equal(res.outcome, ERS_WB_DONE);
        assert_int_equal(res.version, v + 13);
}

/* ---- RETRY ------------------------------------------------------------------ */

/* Locked (423): RETRY, sent once; once free, it is sent and applied. */
static void test_retry_locked_then_free(void **state) {
        struct ers_wb_result res;
        struct ers_call call;
        struct errbuf e = { "" };
        int64_t v;
        char ubrn_buf[13];
        const char *ubrn;

        (void) state;
        start("  tries = 3;\n");
        ubrn = referral_in("AWAITING_TRIAGE", 1, ubrn_buf, &v);
        post("/_mock/writeback/lock?ubrn=%s", ubrn);
        assert_int_equal(review(ubrn, v, &res, &call, &e), 0);
        assert_int_equal(res.outcome, ERS_WB_RETRY);
        assert_int_equal(res.http_status, 423);
        assert_string_equal(res.code, "LOCKED");
        assert_line(&e, &call, ubrn, "HTTP 423");
        assert_int_equal(writes("A028", ubrn, NULL), 1);
        assert_int_equal(version_now(ubrn), v);

        post("/_mock/writeback/lock?ubrn=%s&locked=0", ubrn);
        assert_int_equal(review(ubrn, v, &res, &call, &e), 0);
        assert_int_equal(res.outcome, ERS_WB_DONE);
        assert_int_equal(res.version, v + 1);
        assert_int_equal(writes("A028", ubrn, NULL), 2);
}

/* 503, 500 and 429 are RETRY and the write goes once, though the client sends a read up to
 * three times: a write is never sent again by the transfer.  Retry-After reaches the caller. */
static void test_retry_status_sent_once(void **state) {
        static const char *const kinds[] = { "503", "500", "429" };
        struct ers_wb_result res;
        struct ers_call call;
        struct errbuf e = { "" };
        int64_t v;
        char ubrn_buf[13];
        const char *ubrn;

        (void) state;
        start("  tries = 3;\n");
        ubrn = referral_in("BOOKED", 1, ubrn_buf, &v);
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
                post("/_mock/writeback/fault?action=A013&kind=%s&count=3&retry_after=0", kinds[i]);
                assert_int_equal(ers_accept_referral(E.ers, ubrn, v, &res, &call, &e), 0);
                assert_int_equal(res.outcome, ERS_WB_RETRY);
                assert_int_equal(res.http_status, strtol(kinds[i], NULL, 10));
                assert_int_equal(call.retry_after, strcmp(kinds[i], "500") == 0 ? -1 : 0);
                assert_line(&e, &call, ubrn, kinds[i]);
                assert_int_equal(writes("A013", ubrn, NULL), i + 1);
                assert_int_equal(calls("A013"), i + 1);
                post("/_mock/writeback/fault/clear");
        }
        assert_int_equal(version_now(ubrn), v);
}

/* No connection at all: nothing left, RETRY (not MAY_HAVE_REACHED). */
static void test_retry_not_sent(void **state) {
        struct ers_wb_result res;
        struct ers_call call;
        struct errbuf e = { "" };
        int64_t v;
        char ubrn_buf[13];
        const char *ubrn;

        (void) state;
        start("  tries = 1;\n");
        ubrn = referral_in("BOOKED", 0, ubrn_buf, &v);
        mock_stop(&E.mock); /* its port now refuses connections */
        assert_int_equal(ers_accept_referral(E.ers, ubrn, v, &res, &call, &e), 0);
        if (res.outcome != ERS_WB_RETRY)
                fail_msg("%s: %s", ers_wb_outcome_name(res.outcome), e.msg);
        assert_int_equal(res.http_status, 0);
        assert_null(strstr(e.msg, "may have reached"));
}

/* ---- FORBIDDEN -------------------------------------------------------------- */

static void test_forbidden(void **state) {
        struct ers_wb_result res;
        struct ers_call call;
        struct errbuf e = { "" };
        int64_t v;
        char ubrn_buf[13];
        const char *ubrn;

        (void) state;
        start(NULL);
        ubrn = referral_in("AWAITING_TRIAGE", 0, ubrn_buf, &v);
        post("/_mock/writeback/approve?action=A028&approved=0");
        assert_int_equal(review(ubrn, v, &res, &call, &e), 0);
        assert_int_equal(res.outcome, ERS_WB_FORBIDDEN);
        assert_int_equal(res.http_status, 403);
        assert_string_equal(res.code, "ACCESS_DENIED");
        assert_line(&e, &call, ubrn, "HTTP 403");
        assert_int_equal(writes("A028", ubrn, NULL), 1);
        assert_int_equal(version_now(ubrn), v);
}

/* ---- MAY_HAVE_REACHED ------------------------------------------------------- */

/* The connection dropped after e-RS applied the write, on a connection the client had kept
 * open from a read before: MAY_HAVE_REACHED, and the request went once (libcurl would send it
 * again by itself on a reused connection that died).  A005 shows it applied; a blind resend
 * would be refused by If-Match, never applied twice. */
static void test_dropped_after_applied(void **state) {
        struct ers_wb_result res;
        struct ers_call call;
        struct errbuf e = { "" };
        json_object *answer = NULL, *w;
        int64_t v;
        char ubrn_buf[13];
        const char *ubrn;

        (void) state;
        start("  tries = 3;\n");
        ubrn = referral_in("AWAITING_TRIAGE", 0, ubrn_buf, &v);
        assert_int_equal(ers_read_referral(E.ers, ubrn, &answer, NULL, &call, &e), 0); /* a connection kept open */
        json_object_put(answer);
        post("/_mock/writeback/fault?action=A028&kind=drop&ubrn=%s", ubrn);
        assert_int_equal(review(ubrn, v, &res, &call, &e), 0);
        if (res.outcome != ERS_WB_MAY_HAVE_REACHED)
                fail_msg("%s: %s", ers_wb_outcome_name(res.outcome), e.msg);
        assert_int_equal(res.http_status, 0);
        assert_line(&e, &call, ubrn, "may have reached e-RS: read the referral (A005)");
        assert_int_equal(writes("A028", ubrn, &w), 1);
        assert_int_equal(calls("A028"), 1);
        assert_int_equal(json_object_get_int(json_object_object_get(w, "status")), 0);
        assert_true(json_object_get_boolean(json_object_object_get(w, "applied")));
        json_object_put(w);

        /* What the sender does next: read A005, which shows it applied. */
        assert_int_equal(version_now(ubrn), v + 1);
        /* Had it sent it again blindly: refused by If-Match, not applied twice. */
        assert_int_equal(review(ubrn, v, &res, &call, &e), 0);
        assert_int_equal(res.outcome, ERS_WB_STALE);
        assert_int_equal(version_now(ubrn), v + 1);
}

/* Dropped before e-RS applied it: the client cannot tell, MAY_HAVE_REACHED all the same; A005
 * shows the version unchanged, so the sender may send it (once) again. */
static void test_dropped_before_applied(void **state) {
        struct ers_wb_result res;
        struct ers_call call;
        struct errbuf e = { "" };
        int64_t v;
        char ubrn_buf[13];
        const char *ubrn;

        (void) state;
        start("  tries = 3;\n");
        ubrn = referral_in("BOOKED", 0, ubrn_buf, &v);
        post("/_mock/writeback/fault?action=A013&kind=drop_before&ubrn=%s", ubrn);
        assert_int_equal(ers_accept_referral(E.ers, ubrn, v, &res, &call, &e), 0);
        assert_int_equal(res.outcome, ERS_WB_MAY_HAVE_REACHED);
        assert_int_equal(writes("A013", ubrn, NULL), 1);
        assert_int_equal(calls("A013"), 1);
        assert_int_equal(version_now(ubrn), v);
        assert_int_equal(ers_accept_referral(E.ers, ubrn, v, &res, &call, &e), 0);
        assert_int_equal(res.outcome, ERS_WB_DONE);
        assert_int_equal(version_now(ubrn), v + 1);
}

/* A gateway that lost e-RS's answer (502, 504): MAY_HAVE_REACHED, sent once. */
static void test_gateway_lost_the_answer(void **state) {
        static const char *const kinds[] = { "502", "504" };
        struct ers_wb_result res;
        struct ers_call call;
        struct errbuf e = { "" };
        int64_t v;
        char ubrn_buf[13];
        const char *ubrn;

        (void) state;
        start("  tries = 3;\n");
        ubrn = referral_in("AWAITING_TRIAGE", 0, ubrn_buf, &v);
        for (size_t i = 0; i < sizeof kinds / sizeof kinds[0]; i++) {
                post("/_mock/writeback/fault?action=A028&kind=%s&count=3", kinds[i]);
                assert_int_equal(review(ubrn, v, &res, &call, &e), 0);
                assert_int_equal(res.outcome, ERS_WB_MAY_HAVE_REACHED);
                assert_int_equal(res.http_status, strtol(kinds[i], NULL, 10));
                assert_line(&e, &call, ubrn, "may have reached e-RS");
                assert_int_equal(writes("A028", ubrn, NULL), i + 1);
                post("/_mock/writeback/fault/clear");
        }
}

/* Applied, and the answer comes after the client's deadline: MAY_HAVE_REACHED, sent once. */
static void test_answer_too_late(void **state) {
        struct ers_wb_result res;
        struct ers_call call;
        struct errbuf e = { "" };
        int64_t v;
        char ubrn_buf[13];
        const char *ubrn;

        (void) state;
        start("  tries = 3;\n  transfer_timeout = 1;\n");
        ubrn = referral_in("AWAITING_TRIAGE", 1, ubrn_buf, &v);
        post("/_mock/writeback/fault?action=A028&kind=delay&delay_ms=4000&ubrn=%s", ubrn);
        assert_int_equal(review(ubrn, v, &res, &call, &e), 0);
        if (res.outcome != ERS_WB_MAY_HAVE_REACHED)
                fail_msg("%s: %s", ers_wb_outcome_name(res.outcome), e.msg);
        assert_line(&e, &call, ubrn, "may have reached e-RS");
        /* The write-back record holds a request once it is decided (the call record, once it is
         * answered: later than the client gave up). */
        assert_int_equal(writes("A028", ubrn, NULL), 1);
        assert_int_equal(version_now(ubrn), v + 1);
}

/* ---- refused before sending --------------------------------------------------- */

static void test_refused_before_sending(void **state) {
        struct ers_wb_result res;
        struct ers_call call;
        struct errbuf e = { "" };
        int64_t v;
        char ubrn_buf[13];
        const char *ubrn;

        (void) state;
        start(NULL);
        ubrn = referral_in("AWAITING_TRIAGE", 0, ubrn_buf, &v);
        assert_int_equal(ers_record_review_outcome(E.ers, ubrn, v, ERS_REVIEW_RETURN_TO_REFERRER, " ", NULL, &res, &call, &e),
                         -EINVAL);
        assert_non_null(strstr(e.msg, "the review comment is mandatory"));
        assert_non_null(strstr(e.msg, ubrn));
        assert_int_equal(ers_record_review_outcome(E.ers, ubrn, v, ERS_REVIEW_RETURN_TO_REFERRER, "fine", "URGENT", &res,
                                                   &call, &e),
                         -EINVAL);
        /* A UBRN that is not one is not shown: it may be any identifier in the wrong place. */
        assert_int_equal(ers_accept_referral(E.ers, "9990000107", v, &res, &call, &e), -EINVAL);
        assert_null(strstr(e.msg, "9990000107"));
        assert_int_equal(ers_accept_referral(E.ers, ubrn, -1, &res, &call, &e), -EINVAL);
        assert_int_equal(ers_allowed_actions(E.ers, "30000000000x", v, &res, &call, &e), -EINVAL);
        assert_int_equal(calls("A028") + calls("A013") + calls("A029"), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_allowed_actions, test_teardown),
                cmocka_unit_test_teardown(test_review_done, test_teardown),
                cmocka_unit_test_teardown(test_accept_done_and_rejected, test_teardown),
                cmocka_unit_test_teardown(test_stale_409_and_412, test_teardown),
                cmocka_unit_test_teardown(test_retry_locked_then_free, test_teardown),
                cmocka_unit_test_teardown(test_retry_status_sent_once, test_teardown),
                cmocka_unit_test_teardown(test_retry_not_sent, test_teardown),
                cmocka_unit_test_teardown(test_forbidden, test_teardown),
                cmocka_unit_test_teardown(test_dropped_after_applied, test_teardown),
                cmocka_unit_test_teardown(test_dropped_before_applied, test_teardown),
                cmocka_unit_test_teardown(test_gateway_lost_the_answer, test_teardown),
                cmocka_unit_test_teardown(test_answer_too_late, test_teardown),
                cmocka_unit_test_teardown(test_refused_before_sending, test_teardown),
        };
        return cmocka_run_group_tests_name("writeback", tests, group_setup, group_teardown);
}
