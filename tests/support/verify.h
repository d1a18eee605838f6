/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the PAS holds against what the mock e-RS serves (its manifest), and
 * the invariants that must hold at every instant, whatever was interrupted.
 * Both count problems rather than assert, so a soak run can print figures.
 */

#include <json-c/json.h>

#include "harness.h"

struct verify_result {
        unsigned referrals_expected;   /* worklisted referrals in the manifest */
        unsigned referrals_written;    /* of those, in ers_referral at the manifest's version */
        unsigned referrals_missing;    /* absent from ers_referral */
        unsigned referrals_stale;      /* present at another version */
        unsigned fields_mismatched;    /* mapped fields that differ from the manifest */
        unsigned documents_checked;    /* fetched documents reassembled and hashed */
        unsigned documents_mismatched; /* wrong bytes, size, sha256 column, or wrong status */
        unsigned documents_duplicated; /* a revision holding the content of the one before it */
        unsigned documents_missing;    /* expected and not there */
};

/* Compares everything: every worklisted referral (and its related ones) at
 * the manifest's version, every mapped field, every document byte, and the
 * working state each ers_worklist_entry row of it holds (one a worklist of it
 * lists it with: the manifest's entry_state, counted in fields_mismatched). */
void verify_pas(struct db *d, json_object *manifest, struct verify_result *ret);

/* The invariants of a PAS at any instant: every ledger row has its referral
 * at that version, and the audit row of the write that put it there; every
 * fetched document reassembles to its size and sha256; no document stored
 * twice (a revision holding the content of the one before it); no part without its document; each UBRN's audit seq runs 1… without
 * a gap.  Returns the number of problems (0 = consistent). */
unsigned verify_consistent(struct db *d);
/* The same, and which invariants are broken, with their counts, in why (n bytes). */
unsigned verify_consistent_why(struct db *d, char *why, size_t n);
