/* SPDX-License-Identifier: MIT */
/*
 * The schedule's tables (pas_schedule.h): the daily worklist budget in
 * ers_budget (counted in a transaction of its own, before the call), the
 * polls in ers_poll, the referrals queued or failing in ers_retry, the
 * ledger's next_check_at (and a referral made owed: pas_ledger_owe()), and
 * the reads of what is due.  Not here: when
 * anything is due (daemon/schedule.c, daemon/polls.c), what the operators'
 * commands read of the same tables (pas_status.c).
 */
#include "pas_schedule.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pas_internal.h"

#define RETRY_REASON_MAX 511   /* bytes of ers_retry.reason, VARCHAR(512) */
#define POLL_RESULT_MAX 255    /* bytes of ers_poll.last_result, VARCHAR(255) */

int pas_ledger_recheck_at(struct pas_tx *tx, const char *ubrn, const char *next_check_at, struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        struct param ps[] = { P_TEXT(next_check_at), P_TEXT(ubrn) };
        int r;

        if (!next_check_at && is_fresh(tx, ubrn))
                return 0; /* its ledger row, if any, is this transaction's insert: next_check_at NULL already */
        r = run(p, ST_LEDGER_RECHECK, ps, 2, NULL, NULL, e);
        return r < 0 ? err_prefix(e, r, "%s", ubrn) : 0;
}

int pas_ledger_owe(struct pas_tx *tx, const char *ubrn, const char *at, struct errbuf *e) {
        struct param ps[] = { P_TEXT(at), P_TEXT(ubrn) };
        SQLLEN rows = 0;
        int r = run(tx_pas(tx), ST_LEDGER_OWE, ps, 2, NULL, &rows, e);

        return r < 0 ? err_prefix(e, r, "%s", ubrn) : rows > 0;
}

int pas_budget_spend(struct pas_tx *tx, const char *service_id, const char *day, long max, long *ret_calls,
                     struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        struct param key[] = { P_TEXT(service_id), P_TEXT(day) };
        struct param spend[] = { P_TEXT(service_id), P_TEXT(day), P_INT(max) };
        SQLLEN rows = 0;
        int64_t calls = 0;
        bool found = false;
        int r, counted = 0;

        r = run(p, ST_BUDGET_SPEND, spend, 3, NULL, &rows, e);
        if (r >= 0 && rows == 1)
                counted = 1;
        if (r >= 0 && !counted) {
                r = query_int(p, ST_BUDGET_GET, key, 2, &calls, &found, e);
                if (r >= 0 && !found && max > 0) {
                        r = run(p, ST_BUDGET_INSERT, key, 2, NULL, NULL, e);
                        counted = r >= 0;
                }
        }
        if (r >= 0 && counted)
                r = query_int(p, ST_BUDGET_GET, key, 2, &calls, &found, e);
        if (r < 0)
                return err_prefix(e, r, "worklist budget of service %s", service_id);
        *ret_calls = (long) calls;
        return counted;
}

int pas_budget_calls(struct pas *p, const char *service_id, const char *day, long *ret_calls, struct errbuf *e) {
        struct param key[] = { P_TEXT(service_id), P_TEXT(day) };
        int64_t calls = 0;
        bool found = false;
        int r = query_int(p, ST_BUDGET_GET, key, 2, &calls, &found, e);

        if (r < 0)
                return err_prefix(e, r, "worklist budget of service %s", service_id);
        *ret_calls = (long) calls;
        return 0;
}

int pas_poll_last(struct pas *p, const char *worklist, char ret[32], struct errbuf *e) {
        struct param ps[] = { P_TEXT(worklist) };
        int r = query_text(p, ST_POLL_GET, ps, 1, ret, 32, e);

        return r < 0 ? err_prefix(e, r, "worklist %s", worklist) : 0;
}

int pas_poll_put(struct pas_tx *tx, const char *worklist, const char *last_poll_at, const char *result,
                 const char *correlation_id, const char *next_poll_at, long referrals, struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        char cut[POLL_RESULT_MAX + 1];
        SQLLEN rows = 0;
        int r;

        struct param ps[] = { P_TEXT(last_poll_at),   P_TEXT(bounded(result ? result : "", POLL_RESULT_MAX, cut)),
                              P_TEXT(correlation_id && correlation_id[0] ? correlation_id : NULL),
                              P_TEXT(next_poll_at),   P_INT_OR_NULL(referrals, referrals < 0),
                              P_TEXT(worklist) };
        r = run(p, ST_POLL_UPDATE, ps, 6, NULL, &rows, e);
        if (r >= 0 && rows == 0)
                r = run(p, ST_POLL_INSERT, ps, 6, NULL, NULL, e);
        return r < 0 ? err_prefix(e, r, "worklist %s", worklist) : 0;
}

int pas_retry_seen(struct pas_tx *tx, const char *worklist, const struct worklist_entry *w, const char *now,
                   struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        SQLLEN rows = 0;
        int r = check_ubrn(w->ubrn, "ers_retry", e);

        if (r < 0)
                return r;
        struct param ps[] = { P_TEXT(worklist),         P_INT_OR_NULL(w->version, w->version < 0),
                              P_TEXT(w->priority),      P_TEXT(w->service_id),
                              P_TEXT(w->service_name),  P_TEXT(w->referral_type),
                              P_TEXT(w->ubrn),          P_TEXT(now),
                              P_TEXT(now) };
        r = run(p, ST_RETRY_SEEN_UPDATE, ps, 7, NULL, &rows, e);
        if (r >= 0 && rows == 0)
                r = run(p, ST_RETRY_SEEN_INSERT, ps, 9, NULL, NULL, e);
        return r < 0 ? err_prefix(e, r, "%s", w->ubrn) : 0;
}

int pas_retry_attempts(struct pas *p, const char *ubrn, unsigned *ret, struct errbuf *e) {
        struct param ps[] = { P_TEXT(ubrn) };
        int64_t attempts = 0;
        bool found = false;
        int r = query_int(p, ST_RETRY_GET, ps, 1, &attempts, &found, e);

        if (r < 0)
                return err_prefix(e, r, "%s", ubrn);
        *ret = attempts > 0 ? (unsigned) attempts : 0;
        return found ? 1 : 0;
}

int pas_retry_fail(struct pas_tx *tx, const char *ubrn, const char *worklist, const struct retry_failure *f,
                   struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        char cut[RETRY_REASON_MAX + 1];
        SQLLEN rows = 0;
        int r = check_ubrn(ubrn, "ers_retry", e);

        if (r < 0)
                return r;
        struct param ps[] = { P_INT(f->attempts),        P_TEXT(f->at),
                              P_TEXT(f->next_at),        P_INT(f->parked ? 1 : 0),
                              P_TEXT(bounded(f->reason ? f->reason : "", RETRY_REASON_MAX, cut)),            P_TEXT(f->sqlstate && f->sqlstate[0] ? f->sqlstate : NULL),
                              P_TEXT(f->correlation_id && f->correlation_id[0] ? f->correlation_id : NULL),
                              P_TEXT(ubrn) };
        r = run(p, ST_RETRY_FAIL, ps, 8, NULL, &rows, e);
        if (r >= 0 && rows == 0) {
                /* Not seen on a worklist this time (a referral whose documents are owed): its row now. */
                struct param seen[] = { P_TEXT(worklist ? worklist : ""), P_INT_OR_NULL(0, true),
                                        P_TEXT(NULL), P_TEXT(NULL), P_TEXT(NULL), P_TEXT(NULL),
                                        P_TEXT(ubrn), P_TEXT(f->at), P_TEXT(f->next_at) };
                r = run(p, ST_RETRY_SEEN_INSERT, seen, 9, NULL, NULL, e);
                if (r >= 0)
                        r = run(p, ST_RETRY_FAIL, ps, 8, NULL, NULL, e);
        }
        return r < 0 ? err_prefix(e, r, "%s", ubrn) : 0;
}

int pas_retry_delete(struct pas_tx *tx, const char *ubrn, struct errbuf *e) {
        struct param ps[] = { P_TEXT(ubrn) };
        int r = run(tx_pas(tx), ST_RETRY_DELETE, ps, 1, NULL, NULL, e);

        return r < 0 ? err_prefix(e, r, "%s", ubrn) : 0;
}

void due_referrals_free(struct due_referral *list, size_t n) {
        for (size_t i = 0; list && i < n; i++) {
                free(list[i].priority);
                free(list[i].service_id);
                free(list[i].service_name);
                free(list[i].referral_type);
        }
        free(list);
}

/* Appends one row of ST_RETRY_DUE (retry) or ST_RECHECK_DUE to *list. */
static int due_row(struct pas *p, SQLHSTMT h, enum stmt_id id, struct due_referral *d, struct errbuf *e) {
        const char *what = statements[id].what;
        char **texts[] = { &d->priority, &d->service_id, &d->service_name, &d->referral_type };
        int64_t n = 0;
        bool null = false;
        int r;

        memset(d, 0, sizeof *d);
        d->retry = id == ST_RETRY_DUE;
        d->entry_version = -1;
        r = get_text(p, h, 1, what, d->ubrn, sizeof d->ubrn, NULL, e);
        if (r >= 0)
                r = get_text(p, h, 2, what, d->worklist, sizeof d->worklist, NULL, e);
        if (r >= 0 && d->retry) {
                r = get_int64(p, h, 3, what, &n, &null, e);
                d->entry_version = null ? -1 : n;
                for (size_t i = 0; r >= 0 && i < sizeof texts / sizeof texts[0]; i++)
                        r = get_text_whole(p, h, (SQLUSMALLINT) (4 + i), what, texts[i], e);
                if (r >= 0)
                        r = get_int64(p, h, 8, what, &n, NULL, e);
                d->attempts = n > 0 ? (unsigned) n : 0;
        }
        for (size_t i = 0; r >= 0 && i < sizeof texts / sizeof texts[0]; i++)
                if (!*texts[i] && !(*texts[i] = strdup("")))
                        r = err_set(e, -ENOMEM, "out of memory");
        for (size_t i = 0; r < 0 && i < sizeof texts / sizeof texts[0]; i++) {
                free(*texts[i]); /* the row is not handed over */
                *texts[i] = NULL;
        }
        return r;
}

int pas_due_referrals(struct pas *p, const char *now, size_t max, struct due_referral **ret, size_t *ret_n,
                      struct errbuf *e) {
        static const enum stmt_id ids[] = { ST_RETRY_DUE, ST_RECHECK_DUE };
        struct due_referral *list = max ? calloc(max, sizeof *list) : NULL;
        size_t n = 0;
        int r = 0;

        if (max && !list)
                return err_set(e, -ENOMEM, "out of memory");
        for (size_t q = 0; q < 2 && r >= 0 && n < max; q++) {
                struct param ps[] = { P_TEXT(now) };
                SQLHSTMT h = SQL_NULL_HSTMT;

                r = run(p, ids[q], ps, 1, &h, NULL, e);
                if (r < 0)
                        break;
                while (n < max && (r = fetch(p, h, statements[ids[q]].what, e)) > 0) {
                        r = due_row(p, h, ids[q], &list[n], e);
                        if (r < 0)
                                break;
                        n++;
                }
                stmt_close(h);
        }
        if (r < 0) {
                due_referrals_free(list, n);
                return r;
        }
        return list_hand_over(r, list, n, (void **) ret, ret_n);
}

int pas_next_due(struct pas *p, char ret[32], struct errbuf *e) {
        char retry[32], recheck[32];
        int r = query_text(p, ST_RETRY_NEXT, NULL, 0, retry, sizeof retry, e);

        if (r == 0)
                r = query_text(p, ST_RECHECK_NEXT, NULL, 0, recheck, sizeof recheck, e);
        if (r < 0)
                return r;
        if (!retry[0] || (recheck[0] && strcmp(recheck, retry) < 0))
                memcpy(ret, recheck, 32);
        else
                memcpy(ret, retry, 32);
        return 0;
}
