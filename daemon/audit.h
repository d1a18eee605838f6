/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The audit trail (ers_audit, docs/schema.md): one append-only row per write,
 * in the transaction of the write it records.  This module builds what a row
 * says and prints a referral's history; write.c decides when a referral's
 * row is written, worklist_sync.c writes LEFT_WORKLIST and RETURNED.
 *
 *   event_type  NEW            a referral written for the first time
 *               UPDATED        a newer version written
 *               DOCUMENTS      the same version, documents completed (a PENDING
 *                              attachment released, a failed fetch done)
 *               LEFT_WORKLIST  a poll of its worklist no longer lists it (and
 *                              no other latest worklist does): nothing deleted
 *               RETURNED       listed again after it left
 *               RELATED_DOCS   a related referral it lists, read at a newer
 *                              version with another referral, no longer lists
 *                              (or lists again) attachments this referral's
 *                              rows show: marked so here too (write.c)
 *               PATIENT_MATCH  a later round found (or lost) the referral's PAS
 *                              patient: "patient_match UNMATCHED -> MATCHED"
 *               REMAPPED       `ersd remap` derived the referral's rows, and its
 *                              documents' rows, again from the answers kept
 *                              (remap.c, remap_documents.c): its documents
 *                              column lists the document rows it changed
 *   detail      what changed, by field name: "state BOOKED -> CANCELLED_REFERRAL;
 *               appointment moved: … -> …; attachment added: 7000123".  Every
 *               value from outside (codes, times, attachment ids) is written by
 *               audit_q(): as it is when it is a plain token, otherwise as a JSON
 *               string literal ("attachment added: \"a; b\""), so no value can
 *               end a clause or forge one
 *   documents   one JSON object per line, per document row written (no field
 *               can hold a newline: JSON escapes it):
 *               {"document_id":…,"sha256":… or null when recorded without
 *               content,"kind":"ATTACHMENT" or "CRI","attachment_id":…,
 *               "revision":…[,"occurrence":n when > 0: the (n+1)th
 *               attachment of its referral with that id][,"source_ubrn":…
 *               for a related referral's]}.
 *               Rows written by an earlier ersd hold lines
 *               "<document_id> <sha256 or NOT_FETCHED> <attachment id>
 *               r<revision>[ of <UBRN>]": such a row starts with a hex digit
 *               (its first document_id, a UUID), a row of this form with '{'.
 *               audit_print() reads both
 *
 * Never a patient identifier: no NHS number, no PAS patient id, no free text
 * (state comment, displays, comments); codes, times, UBRNs and attachment ids
 * only.  A change of free text or of the NHS number is named without its
 * value: "state_comment changed".
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "../adapters/pas.h"
#include "../adapters/pas_audit.h"
#include "err.h"
#include "model.h"

/* A growable text; on allocation failure `oom` is set and later appends are
 * dropped (the caller then fails the write with -ENOMEM). */
struct audit_text {
        char *p; /* owned, NUL-terminated (NULL while empty) */
        size_t len, cap;
        bool oom;
        char **values;   /* owned: the strings audit_q() returned, freed with the text */
        size_t n_values;
};
/* Appends one clause, "; " between clauses. */
void audit_clause(struct audit_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends one line, "\n" between lines. */
void audit_line(struct audit_text *t, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void audit_text_free(struct audit_text *t);

/* A value from outside as the trail writes it: itself when it is a plain token
 * (A-Z a-z 0-9 . _ : / + @ -, not "none"), otherwise a JSON string literal,
 * escaped by escape.h (ESCAPE_JSON): "a\nb", "\u202e".  The caller frees it;
 * NULL when out of memory. */
char *audit_quote(const char *s);
/* The same, owned by t (valid until audit_text_free(t)), for a clause's
 * arguments; "" and t->oom set when out of memory. */
const char *audit_q(struct audit_text *t, const char *s);

/* Appends the line of one document row written (the documents column's form,
 * above); sha256 NULL for a row recorded without content, source_ubrn NULL for
 * the referral's own document. */
void audit_document(struct audit_text *t, const char *document_id, const char *sha256, enum document_kind kind,
                    const char *attachment_id, int64_t revision, unsigned occurrence, const char *source_ubrn);

/* "NEW", "UPDATED" or "DOCUMENTS" for a write of `version` over `before`. */
const char *audit_event(const struct referral_stored *before, int64_t version);

/* The clauses saying what the write of `now` (with its worklist `entry`, may
 * be NULL) changes in `before`: every column of referral_columns[]
 * (pas_audit.h) by name, codes and times old -> new, free text "name
 * changed"; additional requirements added, removed and changed; related
 * referrals added and removed.  For a NEW referral, a summary of what it is. */
void audit_describe(struct audit_text *t, const struct referral_stored *before, const struct referral *now,
                    const struct worklist_entry *entry);

/*
 * The clauses "attachment added: ID" for each attachment `src` lists that is
 * not among the `n` `stored` for it, prefixed with `prefix` when not NULL.
 * occurrence[i]: the occurrence of src's attachment i (daemon/occurrence.h).
 * (Those e-RS no longer lists are marked by the write, write.c, which says
 * each with audit_attachment_listing().)
 */
void audit_attachments_added(struct audit_text *t, const struct referral *src, const unsigned *occurrence,
                             const struct stored_attachment *stored, size_t n, const char *prefix);

/* The clause "attachment removed: ID", or "attachment listed again: ID" when
 * `listed_again`, prefixed with `prefix` when not NULL. */
void audit_attachment_listing(struct audit_text *t, const char *prefix, const char *id, bool listed_again);

/*
 * `ersd audit UBRN`: prints the referral's history to `out`, as a table or as
 * JSON.  Returns the number of rows (0 when the PAS has none for that UBRN:
 * the caller says the UBRN is unknown), or a negative errno with one line in e.
 */
int audit_print(struct pas *p, const char *ubrn, bool json, FILE *out, struct errbuf *e);
