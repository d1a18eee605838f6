/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A document's identity in the PAS (docs/schema.md, ers_document): the
 * referral it is shown with, the referral it was fetched for, its kind
 * (ATTACHMENT or CRI), its e-RS attachment id, and its occurrence (0 for the
 * first attachment with that id in its source referral, 1 for the second,
 * and so on).  The id is text of any length, which no vendor can index or
 * compare cheaply everywhere (an NCLOB on Oracle cannot be compared at all),
 * so the schema keys a document by a fixed-width digest of (id, occurrence):
 * ers_document.attachment_key, unique together with the UBRNs, the kind and
 * the revision.  Every lookup goes through the key, never through the id.
 */

#include "../daemon/err.h"

#define DOCUMENT_KEY_HEX 64 /* characters of an attachment key (lower-case hex SHA-256) */

struct pas;

/*
 * The attachment key of (attachment_id, occurrence) into ret: the lower-case
 * hex SHA-256 of the id's bytes, followed, when occurrence > 0, by one NUL
 * byte and the occurrence in decimal ASCII ("\0" "1" for the second).  An id
 * never holds a NUL (such an id is unreadable), so no two (id, occurrence)
 * pairs share a key.  Returns 0, -EINVAL for a NULL id, or -ENOMEM / -EIO
 * when libcrypto fails (ret untouched).
 */
int document_key(const char *attachment_id, unsigned occurrence, char ret[DOCUMENT_KEY_HEX + 1]);

/*
 * The C step of the upgrade to schema version 4 (schema.h): computes the key
 * of every ers_document row whose attachment_key is NULL (rows written before
 * version 4: their occurrence is 0) and stores it, inside the upgrade's
 * transaction.  SHA-256 has no portable SQL spelling, hence C.  Reads the
 * rows a slice of document ids at a time (their first character), so that
 * memory holds a sixteenth of the table's ids and no statement is left open
 * while another runs (SQL Server allows one active statement per connection).
 * Returns 0 or a negative errno with one line in e.
 */
int document_key_fill(struct pas *p, struct errbuf *e);
