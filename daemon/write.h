/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The one writer: a fetched referral_job (fetch.h) into the PAS, on the
 * thread that owns ctx->pas.
 */

#include <stdbool.h>
#include <stdint.h>

#include "../adapters/pas.h"
#include "../adapters/pas_patient.h"
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

/* A worklist entry made from what the PAS kept of one ("" for a field not
 * kept, version -1 when unknown), for a referral read again without a
 * worklist call: a field it has no value for is not known (the specialty and
 * the NHS number are never kept), and the referral's stored value stands for
 * it (write.c).  Borrows the strings; ubrn is copied. */
struct worklist_entry write_kept_entry(const char *ubrn, int64_t version, char *priority, char *service_id,
                                      char *service_name, char *referral_type);

/*
 * The fields A005 and a worklist entry both may give (NHS number, priority,
 * specialty: pas_put_referral() takes A005's, else the entry's) for a write
 * whose entry does not say them: a referral read again without a worklist
 * call (entry->kept: a NULL field is not known), or refreshed as another
 * referral's related one (entry NULL) at the version the PAS has, whose A005
 * lacks one: the stored values stand in (docs/schema.md, "Fields a worklist
 * entry also gives").  *ret is `entry`, or f->entry: entry with the stored
 * values for the fields neither A005 nor entry gives, borrowed from
 * f->stored (free with referral_entry_fields_free(&f->stored) after the
 * write).  0, or the PAS's error.  For the writer and `ersd remap` (remap.c).
 */
struct entry_fill {
        struct worklist_entry entry;         /* what the write uses, when filled */
        struct referral_entry_fields stored; /* owned: the values it borrows */
};
int write_fill_entry(struct pas *pas, const struct referral *r, const struct worklist_entry *entry,
                     struct entry_fill *f, const struct worklist_entry **ret, struct errbuf *e);

/* Finds the PAS patient of a referral with the configured lookup (NOT_CONFIGURED
 * without one).  Never fails the referral: a lookup that fails is UNMATCHED,
 * logged without the NHS number, and tried again by a later round. */
void write_match_patient(struct pas *pas, const struct referral *r, const struct worklist_entry *entry,
                         struct patient_match *ret);

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
