/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the operators' commands read (ersd status, ersd sync UBRN): the
 * polls, the referrals waiting for something, and what the PAS holds of a
 * referral's worklist fields to sync it again without a worklist call.
 * Reads only, outside a transaction.  The tables are the scheduler's:
 * ers_poll, ers_budget, ers_retry (docs/schema.md).  No row holds a patient
 * identifier.  Text ersd wrote itself that does not fit its buffer is an
 * error; text from e-RS is read whole.  For daemon/status.c, daemon/round.c
 * and daemon/commands.c.  Implemented in adapters/pas_status.c; every
 * function keeps pas.h's contract (0 or a negative errno, one line in e).
 */

#include <stdbool.h>
#include <stdint.h>

#include "../daemon/err.h"
#include "../daemon/model.h"

struct pas;

/* One ers_poll row: the last read of a worklist and the next one planned. */
struct poll_row {
        char worklist[65];
        char last_poll_at[33];        /* UTC ISO 8601; "" when never read */
        char last_result[1024];       /* one line: how many referrals, or why the read failed */
        char last_correlation_id[37];
        char next_poll_at[33];        /* "" when none planned */
        int64_t referrals;            /* referrals listed; -1 (NULL) when that read failed */
};

/* Calls fn for every ers_poll row, ordered by worklist; fn returns 0 to go
 * on, or a negative errno that ends the walk and is returned. */
int pas_poll_list(struct pas *p, int (*fn)(void *userdata, const struct poll_row *row), void *userdata,
                  struct errbuf *e);

/* (The calls counted in ers_budget: pas_budget_calls(), pas_schedule.h.) */

/* A referral waiting for something. */
enum waiting_kind {
        WAITING_DOCUMENTS, /* in the PAS, documents still owed (ers_ledger.complete = 0) */
        WAITING_RETRY,     /* seen on a worklist, not in the PAS at that version: queued (attempts 0)
                            * or retried after failures (ers_retry) */
        WAITING_PARKED,    /* the same after repeated failures: needs a person (ers_retry.parked = 1) */
};

struct waiting_row {
        enum waiting_kind kind;
        char ubrn[UBRN_LEN + 1];
        char worklist[65];            /* "" when unknown */
        const char *priority;         /* as the worklist said (retry rows), else ers_referral's; "" unknown;
                                       * whole, borrowed: valid during the callback only (copy it to keep it) */
        char since[33];               /* retry rows: first_seen_at; documents rows: when last written */
        char next_at[33];             /* next_attempt_at / next_check_at; "" when none planned */
        int64_t version;              /* retry: the version the worklist listed (-1 unknown); documents: in the PAS */
        int64_t attempts;             /* retry rows: failed attempts so far */
        int64_t documents_pending;    /* documents rows: not fetched, e-RS still scanning (PENDING) */
        int64_t documents_owed;       /* documents rows: not fetched and still to be asked for, PENDING included */
        bool in_pas;                  /* retry rows: ers_referral holds the UBRN at an older version */
        char reason[2048];            /* retry rows: the last failure, one line for operators */
        char sqlstate[6];
        char correlation_id[37];
};

/* Calls fn for every referral waiting: documents rows first, then retry and
 * parked rows, each ordered by UBRN.  fn as for pas_poll_list. */
int pas_waiting_list(struct pas *p, int (*fn)(void *userdata, const struct waiting_row *row), void *userdata,
                     struct errbuf *e);

/* What the PAS already holds of a referral's worklist-only fields, for
 * re-syncing it without a worklist call: ers_retry first (what the worklist
 * said), else ers_referral (as last written).  found=false when neither has
 * the UBRN.  The strings are owned and whole, "" when none (found or not):
 * referral_origin_free(). */
struct referral_origin {
        bool found;
        const char *source;           /* "ers_retry" or "ers_referral" (static), NULL when not found */
        char worklist[65];            /* "" when none */
        char *priority;
        char *service_id;
        char *service_name;
        char *referral_type;
        int64_t entry_version;        /* ers_retry.entry_version; -1 when unknown */
};
int pas_referral_origin(struct pas *p, const char *ubrn, struct referral_origin *ret, struct errbuf *e);
void referral_origin_free(struct referral_origin *o); /* frees the contents; accepts NULL */
