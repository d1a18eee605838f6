/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The latest worklists (docs/schema.md: ers_worklist_entry,
 * ers_ledger.left_worklist_at): each poll's entries recorded, the referrals
 * that left every worklist or came back, and what `ersd reconcile` compares
 * with the PAS.  For daemon/worklist_sync.c (a poll's bookkeeping) and
 * daemon/reconcile.c.  Implemented in adapters/pas_worklist.c; every
 * function keeps pas.h's contract (0 or a negative errno, one line in e).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../daemon/err.h"
#include "../daemon/model.h"

struct pas;
struct pas_tx;

/* Replaces the recorded entries of `worklist` (ers_worklist_entry) by the
 * entries of its latest poll, `sorted` by UBRN (a UBRN listed twice is
 * recorded once).  Writes: takes the transaction. */
int pas_worklist_record(struct pas_tx *tx, const char *worklist, const struct worklist_entry *const *sorted,
                        size_t n, const char *correlation_id, struct errbuf *e);

/* A referral whose presence on the worklists changed with a poll. */
struct listing_change {
        char ubrn[UBRN_LEN + 1];
        int64_t version; /* the ledger's */
        bool left;       /* true: listed on no worklist now; false: listed again after it left */
};
/* After pas_worklist_record() of `worklist`, in the same transaction (a
 * read that takes the transaction, as it reads what that call wrote): the
 * ledger's referrals read from `worklist` that no recorded worklist lists any
 * more (left_worklist_at still NULL), and those that had left and `worklist`
 * lists again.  Two queries whatever the number of entries.  *ret is an owned
 * array (NULL when *ret_n is 0). */
int pas_worklist_changes(struct pas_tx *tx, const char *worklist, struct listing_change **ret, size_t *ret_n,
                         struct errbuf *e);

/* Sets (left=true: the transaction's time) or clears ers_ledger.left_worklist_at.
 * Writes: takes the transaction. */
int pas_ledger_set_left(struct pas_tx *tx, const char *ubrn, bool left, struct errbuf *e);

/* For `ersd reconcile`: each UBRN the latest worklists list, with what the
 * PAS holds of it.  Borrowed strings, valid during the callback. */
struct reconcile_listed {
        const char *ubrn;
        const char *worklist;
        const char *listed_at;
        int64_t listed_version; /* -1 when the worklist did not say */
        bool in_pas;            /* an ers_referral row exists */
        int64_t pas_version;    /* when in_pas */
};
int pas_reconcile_listed(struct pas *p, int (*fn)(void *userdata, const struct reconcile_listed *l), void *userdata,
                         struct errbuf *e);

/* For `ersd reconcile`: the referrals in the PAS that no latest worklist
 * lists, the most recently written first.  Borrowed, valid during the callback. */
int pas_reconcile_unlisted(struct pas *p, int (*fn)(void *userdata, const char *ubrn, int64_t version),
                           void *userdata, struct errbuf *e);
