/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The documents' part of `ersd remap` (remap.h): every ers_document row
 * shown with a referral (its own documents and its related referrals', every
 * revision) gets the columns the A005 answer gives (document_describe(),
 * fetch.h) derived again from the answer kept of the version it was written
 * from (its source referral at its source_version; the letter's are ersd's
 * own), and database.mapping.document run again for it, its :content read
 * back from ers_document_part and checked against its SHA-256.  Never a
 * part written, never a revision added or removed, no fetch or ledger state
 * changed (docs/operations.md, "Re-deriving referrals from the kept
 * answers").
 *
 * Not here: the referral's rows and the transaction (remap.c), how a sync
 * writes a document (write.c, adapters/pas_document.c).
 */

#include "../adapters/pas.h"
#include "audit.h"
#include "err.h"
#include "model.h"

/*
 * In remap.c's transaction `tx` on `pas`, for the referral `ref` (parsed from
 * the answer remap chose for its current version): each row whose columns
 * differ from its answer's is set again, said in `detail` ("document
 * re-derived: ID (revision n; the changed columns that are codes: a free
 * text's change is not named)") and in `documents` (one line per row,
 * audit_document()); a clause counts the rows the mapping ran for and those
 * left as stored (no answer kept of their version lists them).  With :content
 * mapped, each document's bytes pass through one unnamed file in `state_dir`
 * (mode 0600, gone when closed).  0, or a negative errno with one line in e
 * naming the document and the SQLSTATE: the caller rolls back.
 */
int remap_documents(struct pas *pas, struct pas_tx *tx, const struct referral *ref, const char *state_dir,
                    struct audit_text *detail, struct audit_text *documents, struct errbuf *e);
