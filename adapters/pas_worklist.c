/* SPDX-License-Identifier: MIT */
/*
 * The latest worklists (pas_worklist.h): recording a poll's entries in
 * ers_worklist_entry, finding the referrals that left every worklist or came
 * back (two queries whatever the entries), marking the ledger's
 * left_worklist_at, and the two reads of `ersd reconcile`.  Not here: what a
 * poll does with them (daemon/audit.c), the reconcile's questions to e-RS
 * (daemon/reconcile.c).
 */
#include "pas_worklist.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pas_internal.h"

#define WORKLIST_NAME_MAX 64   /* a worklist's name (the configuration's: 1 to 64 characters) */

int pas_worklist_record(struct pas_tx *tx, const char *worklist, const struct worklist_entry *const *sorted,
                        size_t n, const char *correlation_id, struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        struct param clear[] = { P_TEXT(worklist) };
        const char *now = tx_time(tx);
        int r;

        r = run(p, ST_WORKLIST_CLEAR, clear, 1, NULL, NULL, e);
        for (size_t i = 0; r >= 0 && i < n; i++) {
                const struct worklist_entry *w = sorted[i];
                if (i > 0 && strcmp(sorted[i - 1]->ubrn, w->ubrn) == 0)
                        continue; /* listed twice: recorded once */
                r = check_ubrn(w->ubrn, "worklist entry", e);
                if (r < 0)
                        break;
                struct param ps[] = {
                        P_TEXT(worklist),
                        P_TEXT(w->ubrn),
                        P_INT_OR_NULL(w->version, w->version < 0),
                        P_TEXT(now),
                        P_TEXT(correlation_id && *correlation_id ? correlation_id : NULL),
                        P_TEXT(w->ubrn_received),
                        P_TEXT(w->patient_contact_expected),
                        P_TEXT(w->last_contact),
                        P_TEXT(w->clinical_information_status),
                        P_INT_OR_NULL(w->clinical_info_printed == PRINTED_YES,
                                      w->clinical_info_printed != PRINTED_YES && w->clinical_info_printed != PRINTED_NO),
                        P_TEXT(w->request_context_status),
                };
                r = run(p, ST_WORKLIST_INSERT, ps, sizeof ps / sizeof ps[0], NULL, NULL, e);
        }
        if (r < 0)
                return err_prefix(e, r, "worklist %s", worklist);
        return 0;
}

/* Appends the (ubrn, version) rows of a finished query to *list. */
static int collect_changes(struct pas *p, enum stmt_id id, const char *worklist, bool left,
                           struct listing_change **list, size_t *n, size_t *cap, struct errbuf *e) {
        const char *what = statements[id].what;
        struct param ps[] = { P_TEXT(worklist) };
        SQLHSTMT h = SQL_NULL_HSTMT;
        int r;

        r = run(p, id, ps, 1, &h, NULL, e);
        if (r < 0)
                return r;
        while ((r = fetch(p, h, what, e)) > 0) {
                r = grow(list, cap, *n, sizeof **list, e);
                if (r < 0)
                        break;
                struct listing_change *c = &(*list)[*n];
                r = get_text(p, h, 1, what, c->ubrn, sizeof c->ubrn, NULL, e);
                if (r >= 0)
                        r = get_int64(p, h, 2, what, &c->version, NULL, e);
                if (r < 0)
                        break;
                c->left = left;
                (*n)++;
        }
        stmt_close(h);
        return r;
}

int pas_worklist_changes(struct pas_tx *tx, const char *worklist, struct listing_change **ret, size_t *ret_n,
                         struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        struct listing_change *list = NULL;
        size_t n = 0, cap = 0;
        int r;

        r = collect_changes(p, ST_LEFT_FIND, worklist, true, &list, &n, &cap, e);
        if (r >= 0)
                r = collect_changes(p, ST_RETURNED_FIND, worklist, false, &list, &n, &cap, e);
        if (r < 0) {
                free(list);
                return err_prefix(e, r, "worklist %s", worklist);
        }
        if (n == 0) {
                free(list);
                list = NULL;
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

int pas_ledger_set_left(struct pas_tx *tx, const char *ubrn, bool left, struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        const char *now = tx_time(tx);
        int r;

        r = check_ubrn(ubrn, "ledger", e);
        if (r < 0)
                return r;
        struct param ps[] = { P_TEXT(left ? now : NULL), P_TEXT(ubrn) };
        r = run(p, ST_LEDGER_LEFT, ps, 2, NULL, NULL, e);
        if (r < 0)
                return err_prefix(e, r, "%s", ubrn);
        return 0;
}

int pas_reconcile_listed(struct pas *p, int (*fn)(void *userdata, const struct reconcile_listed *l), void *userdata,
                         struct errbuf *e) {
        const char *what = statements[ST_RECONCILE_LISTED].what;
        SQLHSTMT h = SQL_NULL_HSTMT;
        int r;

        r = run(p, ST_RECONCILE_LISTED, NULL, 0, &h, NULL, e);
        if (r < 0)
                return r;
        while ((r = fetch(p, h, what, e)) > 0) {
                char ubrn[UBRN_LEN + 1], worklist[WORKLIST_NAME_MAX + 1], listed_at[40];
                bool listed_null = false, pas_null = false;
                struct reconcile_listed l = { .ubrn = ubrn, .worklist = worklist, .listed_at = listed_at };

                r = get_text(p, h, 1, what, ubrn, sizeof ubrn, NULL, e);
                if (r >= 0)
                        r = get_text(p, h, 2, what, worklist, sizeof worklist, NULL, e);
                if (r >= 0)
                        r = get_text(p, h, 3, what, listed_at, sizeof listed_at, NULL, e);
                if (r >= 0)
                        r = get_int64(p, h, 4, what, &l.listed_version, &listed_null, e);
                if (r >= 0)
                        r = get_int64(p, h, 5, what, &l.pas_version, &pas_null, e);
                if (r < 0)
                        break;
                if (listed_null)
                        l.listed_version = -1;
                l.in_pas = !pas_null;
                r = fn(userdata, &l);
                if (r != 0)
                        break;
        }
        stmt_close(h);
        return r;
}

int pas_reconcile_unlisted(struct pas *p, int (*fn)(void *userdata, const char *ubrn, int64_t version),
                           void *userdata, struct errbuf *e) {
        const char *what = statements[ST_RECONCILE_UNLISTED].what;
        SQLHSTMT h = SQL_NULL_HSTMT;
        int r;

        r = run(p, ST_RECONCILE_UNLISTED, NULL, 0, &h, NULL, e);
        if (r < 0)
                return r;
        while ((r = fetch(p, h, what, e)) > 0) {
                char ubrn[UBRN_LEN + 1];
                int64_t version = 0;

                r = get_text(p, h, 1, what, ubrn, sizeof ubrn, NULL, e);
                if (r >= 0)
                        r = get_int64(p, h, 2, what, &version, NULL, e);
                if (r >= 0)
                        r = fn(userdata, ubrn, version);
                if (r != 0)
                        break;
        }
        stmt_close(h);
        return r;
}
