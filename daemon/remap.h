/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `ersd remap [UBRN ... | --all]`: a referral's staging rows derived again,
 * and database.mapping's referral statement run again, from the A005 answer
 * the PAS kept of its current version (ers_referral_answer), with no e-RS
 * request: for an upgrade that stores or maps a new element, or a DBA's
 * changed mapping (docs/operations.md, "Re-deriving referrals from the kept
 * answers").
 *
 * The current version is the one the referral's staging row holds
 * (ers_referral.version: the ledger's, or newer when the referral was since
 * read as another's related one); of the answers kept for it, the latest
 * received.  One transaction per referral: the staging row and its child
 * rows (pas_put_referral()), the patient match when a lookup is configured,
 * the mapping (forced: pas_put_mapped_referral_again()) and one audit row
 * REMAPPED.  Every run writes again (the operator asked for it: the PAS's
 * own tables may have been emptied or changed), each with its audit row.
 * In the same transaction, the documents shown with the referral: their
 * rows' columns from the answer derived again and database.mapping.document
 * run again for each, never a byte or a revision changed (remap_documents.h).
 *
 * Not here: how the answers are kept (adapters/pas_answer.c), how a referral
 * is parsed (fhir.c) and written by a sync (write.c).
 */

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

struct pas;
struct answer_kept; /* adapters/pas_answer.h */
struct referral;    /* model.h */
struct errbuf;      /* err.h */

/*
 * Remaps each of `ubrns` (n of them, each a valid UBRN: the caller checked),
 * or with `all` every referral in the PAS, in UBRN order.  One line on stdout
 * per referral named (remapped, or why not: unknown to the PAS, no answer
 * kept for its version); with `all`, one line for each referral not remapped
 * and a summary.  A referral that fails is rolled back alone and logged once
 * (UBRN, cause, SQLSTATE).  EXIT_SUCCESS when every referral asked for was
 * remapped (with `all`: none failed), EXIT_SYNC_FAILED otherwise.
 */
int command_remap(const struct config *cfg, const char *const *ubrns, size_t n, bool all);

/* The referral parsed from the answer kept as `k` of `ubrn`, checked to be
 * that UBRN at that version; *correlation_id gets the answer's.  *ret's
 * contents are the caller's (referral_free()), on failure too.  For
 * remap.c and remap_documents.c (a related referral's answer). */
int remap_parse_kept(struct pas *pas, const char *ubrn, const struct answer_kept *k, struct referral *ret,
                     char correlation_id[37], struct errbuf *e);
