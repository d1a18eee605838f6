/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The outbox (docs/schema.md: ers_outbox): the decisions the PAS asks ersd
 * to send back to e-RS (issue 16).  The PAS inserts a request; ersd takes the
 * due ones, marks each SENDING in a transaction of its own committed before
 * the call (so that a crash after it left is known to have maybe reached
 * e-RS), and records how it ended in the same transaction as its audit row.
 * For the sender (daemon/outbox.c); the counts and the list of requests
 * needing a person are for `ersd status` (daemon/status_outbox.c).
 * Implemented in adapters/pas_outbox.c; every function keeps pas.h's contract
 * (0 or a negative errno, one line in e naming the request's number and UBRN,
 * never the comment).  Not here: what is sent and when (daemon/outbox.c).
 */

#include <stddef.h>
#include <stdint.h>

#include "../daemon/err.h"
#include "../daemon/model.h"

struct pas;
struct pas_tx;

#define OUTBOX_ACTION_MAX 32   /* ers_outbox.action, VARCHAR(32) */
#define OUTBOX_STATE_MAX 16    /* ers_outbox.state, VARCHAR(16) */
#define OUTBOX_ERROR_MAX 1024  /* bytes of error_text ersd writes (e-RS's words, already capped, and ours) */
#define OUTBOX_FORBIDDEN "FORBIDDEN" /* error_code of a RETRY e-RS refused with 403: a person must look */
#define OUTBOX_MOVED_ON "NEWER_IN_PAS" /* error_code of a STALE never sent: the PAS held a newer version */

/* One request as read back.  Owns its strings (outbox_requests_free()). */
struct outbox_request {
        int64_t id;
        char ubrn[UBRN_LEN + 1];
        char action[OUTBOX_ACTION_MAX + 1];  /* RECORD_REVIEW_OUTCOME or ACCEPT_REFERRAL */
        char state[OUTBOX_STATE_MAX + 1];    /* NEW, RETRY or SENDING */
        char *review_outcome;                /* whole; "" when NULL */
        char *comment;                       /* whole; "" when NULL: never printed */
        char *new_priority;                  /* whole; "" when NULL */
        int64_t decided_version;
        unsigned attempts;
};

/*
 * The requests due at `now`, at most `max`, oldest (lowest id) first: those
 * NEW or RETRY whose next_attempt_at is NULL or has come, and those found
 * SENDING (a send whose outcome is not known: settle it by what e-RS shows
 * before anything else).  A request waits while an earlier request of its
 * UBRN is not settled (DONE, REJECTED or STALE): one UBRN's requests go
 * strictly in id order.  A UBRN that is not 12 digits is read as it is (the
 * sender refuses it).  *ret (NULL when *ret_n is 0): outbox_requests_free().
 */
int pas_outbox_due(struct pas *p, const char *now, size_t max, struct outbox_request **ret, size_t *ret_n,
                   struct errbuf *e);
void outbox_requests_free(struct outbox_request *list, size_t n); /* accepts NULL */

/*
 * Marks request `id` SENDING and counts the attempt (attempts + 1), only
 * from NEW or RETRY.  Writes: takes the transaction, which the caller
 * commits, alone, before the request is sent.  Returns 1 when marked, 0 when
 * the request is no longer NEW or RETRY (nothing changed: do not send), or a
 * negative errno (roll back; do not send).
 */
int pas_outbox_sending(struct pas_tx *tx, int64_t id, struct errbuf *e);

/* How a request ended, or what is known of it.  Borrowed strings. */
struct outbox_outcome {
        int64_t id;
        const char *ubrn;            /* for the audit row */
        const char *action;          /* for the audit row's detail */
        int64_t decided_version;     /* for the audit row */
        const char *state;           /* DONE, REJECTED, STALE, RETRY, or SENDING (still not known) */
        int64_t answered_version;    /* DONE: the version e-RS answered (else ignored) */
        const char *error_code;      /* REJECTED and failures: e-RS's code (may be NULL) */
        const char *error_text;      /* one line, never the comment (may be NULL); cut to OUTBOX_ERROR_MAX */
        const char *next_attempt_at; /* RETRY: when (NULL: at once) */
        const char *correlation_id;  /* of the last request about it (may be NULL) */
        const char *event;           /* the audit event: WRITEBACK_DONE, _REJECTED, _STALE, _RETRY, ... */
};

/*
 * Records the outcome on the request's row (state, answered_version,
 * error_code, error_text, next_attempt_at, correlation_id, updated_at) and
 * appends its audit row, both in the caller's transaction.  A settled
 * request (DONE, REJECTED, STALE) is never changed again: -ESTALE when the
 * row is settled or gone (nothing changed).
 */
int pas_outbox_record(struct pas_tx *tx, const struct outbox_outcome *o, struct errbuf *e);

/* What `ersd status` shows of the outbox: counts by state, and the earliest
 * next attempt of a RETRY ("" when none). */
struct outbox_counts {
        long new_;
        long sending;
        long retry;
        long done;
        long rejected;
        long stale;
        char next_attempt_at[32];
};
int pas_outbox_counts(struct pas *p, struct outbox_counts *ret, struct errbuf *e);

/* One request needing a person (REJECTED, STALE, or RETRY held by FORBIDDEN:
 * e-RS refused the application with 403, and each round stops at it), for
 * `ersd status`.  Borrowed strings, valid during the callback; never the comment. */
struct outbox_attention {
        int64_t id;
        const char *ubrn;
        const char *action;
        const char *state;
        int64_t decided_version;
        const char *error_code;     /* "" when none */
        const char *updated_at;
        const char *correlation_id; /* "" when none */
};
/* Calls fn for each request needing a person, by id, at most `max`; stops when fn returns
 * non-zero (returned).  The RETRY rows are told apart by their error_code in C, never
 * compared in SQL (a CLOB on Oracle): a RETRY not held by FORBIDDEN is passed over. */
int pas_outbox_attention(struct pas *p, size_t max, int (*fn)(void *userdata, const struct outbox_attention *a),
                         void *userdata, struct errbuf *e);
