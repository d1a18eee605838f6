/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The schedule (docs/schema.md: ers_budget, ers_poll, ers_retry, and
 * ers_ledger.next_check_at): the daily worklist budget, each worklist's last
 * and next poll, the referrals queued or retried after a failure, and what
 * is due when.  Times are ISO 8601 UTC text, as stored.  For the sync and
 * the writer (daemon/worklist_sync.c, daemon/due.c, daemon/write.c,
 * daemon/polls.c, daemon/service.c, daemon/status.c).  Implemented in adapters/pas_schedule.c; every function
 * keeps pas.h's contract (0 or a negative errno, one line in e), and the
 * strings read back follow pas.h's rule for text e-RS sent (owned, whole).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../daemon/err.h"
#include "../daemon/model.h"

struct pas;
struct pas_tx;

/* Sets when a referral whose documents are still owed is looked at again
 * (NULL: not at all, it is complete).  Writes: takes the transaction (the
 * one that writes its ledger row, or one of the caller's for this alone).
 * NULL for a referral the transaction was told is fresh (pas_referral_fresh())
 * sends nothing: its ledger row, inserted by this transaction, has none. */
int pas_ledger_recheck_at(struct pas_tx *tx, const char *ubrn, const char *next_check_at, struct errbuf *e);

/* Makes a referral owed: its ledger row incomplete (complete = 0) and due at
 * `at` (next_check_at), so that the next look at what is due reads it again
 * (A005, never a worklist call) and writes what it lacks; for a referral
 * showing a related referral that another referral's read found at a new
 * version (daemon/write.c).  Writes: takes the transaction.  Returns 1 when
 * the referral has a ledger row (now owed), 0 when it has none (nothing
 * changed: a referral never written as one of its own shows no documents),
 * or a negative errno. */
int pas_ledger_owe(struct pas_tx *tx, const char *ubrn, const char *at, struct errbuf *e);

/*
 * Counts one worklist (A008) call for `service_id` on UK day `day` in
 * ers_budget, when fewer than `max` are counted already.  Writes: takes the
 * transaction, which the caller commits, alone, before the call is sent (a
 * call made is a call counted, whatever happens next).  Returns 1 when
 * counted (the call may go once committed), 0 when the day's budget is spent
 * (nothing changed), or a negative errno (roll back; do not call).
 * *ret_calls: the calls counted that day, this one included.
 */
int pas_budget_spend(struct pas_tx *tx, const char *service_id, const char *day, long max, long *ret_calls,
                     struct errbuf *e);
/* The calls counted for the service that day (0 when none). */
int pas_budget_calls(struct pas *p, const char *service_id, const char *day, long *ret_calls, struct errbuf *e);

/* When the worklist was last read (or its read began), "" when never. */
int pas_poll_last(struct pas *p, const char *worklist, char ret[32], struct errbuf *e);

/* Upserts the worklist's ers_poll row (writes: takes the transaction): last_poll_at (NULL
 * keeps the stored one), the result line (cut to 255 bytes on a character),
 * the correlation id (NULL or "": none), the next poll planned, the
 * referrals listed (< 0: NULL). */
int pas_poll_put(struct pas_tx *tx, const char *worklist, const char *last_poll_at, const char *result,
                 const char *correlation_id, const char *next_poll_at, long referrals, struct errbuf *e);

/* A worklist entry that needs writing (not in the ledger at its version): its
 * ers_retry row, so that it is synced even if this round stops (a crash, a
 * lease lost) without another worklist call.  A new row is due at `now`
 * with no attempt yet; an existing one keeps its attempts and schedule and
 * takes the entry's fields.  Writes: takes the transaction. */
int pas_retry_seen(struct pas_tx *tx, const char *worklist, const struct worklist_entry *w, const char *now,
                   struct errbuf *e);

/* Failed attempts recorded for the UBRN (0 when it has no row, or is queued
 * untried).  Returns 1 when it has an ers_retry row, 0 when not, or < 0. */
int pas_retry_attempts(struct pas *p, const char *ubrn, unsigned *ret, struct errbuf *e);

/* One failed attempt, as ers_retry records it.  Borrowed strings. */
struct retry_failure {
        unsigned attempts;          /* failed attempts so far, this one included */
        bool parked;                /* attempts reached park_after */
        const char *at;             /* this attempt (ISO UTC) */
        const char *next_at;        /* the next one planned */
        const char *reason;         /* one line, never a patient identifier; cut to 511 bytes on a character */
        const char *sqlstate;       /* when the PAS refused it, else NULL */
        const char *correlation_id; /* of the e-RS call behind it, else NULL */
};

/* Records a failed attempt on the UBRN's ers_retry row (created for a
 * referral not seen on a worklist this time, with `worklist`).  Writes:
 * takes the transaction. */
int pas_retry_fail(struct pas_tx *tx, const char *ubrn, const char *worklist, const struct retry_failure *f,
                   struct errbuf *e);

/* Deletes the UBRN's ers_retry row.  Writes: takes the transaction (the one
 * that writes the referral, or one of the caller's for this alone). */
int pas_retry_delete(struct pas_tx *tx, const char *ubrn, struct errbuf *e);

/* A referral to read again without a worklist call. */
struct due_referral {
        char ubrn[UBRN_LEN + 1];
        char worklist[65];
        bool retry;                /* from ers_retry (else: the ledger's documents owed) */
        /* ers_retry only: what the worklist said of it ("" / -1 when not known); owned, whole */
        int64_t entry_version;
        char *priority;
        char *service_id;
        char *service_name;
        char *referral_type;
        unsigned attempts;
};

/* At most `max` referrals due at `now`: ers_retry rows whose next attempt has
 * come, then ledger rows with documents owed whose next check has come (none
 * of those already in ers_retry), the earliest first.  *ret (NULL when *ret_n
 * is 0): due_referrals_free(*ret, *ret_n). */
int pas_due_referrals(struct pas *p, const char *now, size_t max, struct due_referral **ret, size_t *ret_n,
                      struct errbuf *e);
void due_referrals_free(struct due_referral *list, size_t n); /* the array and its strings; accepts NULL */

/* The earliest time something of the above is due ("0" for a ledger row
 * without a time: at once), "" when nothing waits. */
int pas_next_due(struct pas *p, char ret[32], struct errbuf *e);
