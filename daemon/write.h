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

/* In a referral's transaction: when its documents still owed are asked for
 * again (ers.pending_recheck from now; never when complete), and its
 * ers_retry row, if any, goes. */
int write_schedule(struct sync_ctx *ctx, const char *ubrn, bool complete, struct errbuf *e);
