/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The one writer: a fetched referral_job (fetch.h) into the PAS, on the
 * thread that owns ctx->pas.
 */

#include <stdbool.h>
#include <stdint.h>

#include "err.h"
#include "fetch.h"
#include "sync.h"

/*
 * The one transaction: the patient lookups first (outside it), then the
 * related referrals, the referral, its documents streamed from their spool
 * files, the ledger row, the audit rows and the referral's schedule
 * (write_schedule).  0 when committed (*ret_docs, *ret_bytes: contents
 * stored); otherwise rolled back and e says why (a commit whose outcome was
 * unknown is settled by reading the ledger back).  The spool files are left
 * to the caller.
 */
int write_referral(struct sync_ctx *ctx, struct referral_job *j, unsigned *ret_docs, uint64_t *ret_bytes,
                   struct errbuf *e);

/* In a referral's transaction `tx`: when its documents still owed are asked
 * for again (ers.pending_recheck from now; never when complete), and its
 * ers_retry row, if any, goes. */
int write_schedule(struct sync_ctx *ctx, struct pas_tx *tx, const char *ubrn, bool complete, struct errbuf *e);

/* Tells the observer (progress line, dry-run report) what became of a referral. */
void report_outcome(struct sync_ctx *ctx, const struct referral_outcome *o);

/*
 * What became of a fetched referral, on the writer's thread: written (or, in
 * a dry run, what would be), nothing to write, or failed (logged here, once,
 * and recorded in ers_retry by record_failure(): attempts, reason, next
 * attempt, parked after park_after).  Tells the observer, frees the job's
 * contents (not j itself).  Returns 0 when written or nothing to do, <0 when
 * it failed; -ECANCELED (stopped) and -ESTALE (the lease lost) stop the round:
 * then the referral was not written and waits in ers_retry, nothing is
 * recorded or counted, and the observer is told nothing.  *ret_result (may be
 * NULL) says which (REFERRAL_FAILED, not written, after a stop).
 */
int finish_referral(struct sync_ctx *ctx, struct referral_job *j, struct sync_stats *stats,
                    enum referral_result *ret_result);
