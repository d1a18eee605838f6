/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Mapping into the PAS's own tables (adapters/mapping.h,
 * docs/configuration.md "database.mapping"): the trust's statements, set
 * and prepared at start, run in the write's transaction for every referral
 * version and every document row written.  For daemon/service.c and
 * daemon/commands.c (setting them) and the writer (daemon/write.c).
 * Implemented in adapters/pas_mapping.c; every function
 * keeps pas.h's contract (0 or a negative errno, one line in e, never the
 * SQL nor a bound value).
 */

#include <stdbool.h>
#include <stdint.h>

#include "../daemon/err.h"
#include "../daemon/model.h"
#include "mapping.h"
#include "pas_patient.h"

struct pas;
struct pas_tx;
struct document_rec; /* pas.h */

/*
 * Sets the mapping statement of `kind` (SQL with named parameters, as the
 * configuration holds it; NULL removes it): rewrites it (mapping.h) and
 * prepares it now, so that a statement the database refuses is reported at
 * start: -EINVAL (a name, a '?') or the database's error with its SQLSTATE,
 * one line in e, never the SQL.  Call outside a transaction.
 */
int pas_set_mapping(struct pas *p, enum pas_map_kind kind, const char *sql, struct errbuf *e);

/*
 * Runs the referral mapping, when one is set, for the referral the last
 * pas_put_referral() wrote (same arguments; `match` as found for it, or
 * NULL: NOT_CONFIGURED), in the same transaction (writes: takes the
 * transaction); only when that call wrote
 * a version the staging row did not have (a related referral refreshed at
 * its version is not mapped twice).  0 when none is set.  A sync's
 * document mapping needs no call: pas_put_document() runs it for every
 * document row it writes, with :content streamed from the spool file.
 */
int pas_put_mapped_referral(struct pas_tx *tx, const struct referral *r, const struct worklist_entry *entry,
                            const char *worklist, const struct patient_match *match, struct errbuf *e);

/* The same for `ersd remap` (daemon/remap.c): runs the referral mapping even
 * when the staging row had this version already, so that a changed mapping
 * reaches the PAS's tables for the version kept. */
int pas_put_mapped_referral_again(struct pas_tx *tx, const struct referral *r, const struct worklist_entry *entry,
                                  const char *worklist, const struct patient_match *match, struct errbuf *e);

/* Whether database.mapping.document is set; *ret_content (may be NULL):
 * whether it maps :content, the document's bytes. */
bool pas_document_mapping(const struct pas *p, bool *ret_content);

/* For `ersd remap` (daemon/remap_documents.c): runs the document mapping,
 * when one is set, for a stored row: `d` as stored (the columns the answer
 * gives derived again), `document_id` and `revision` the row's, :content
 * read from `content_fd` (d->size bytes from offset 0: the row's parts,
 * pas_document_content(); -1 when the row has no content or the mapping
 * does not map it).  Writes: takes the transaction.  0 when none is set. */
int pas_put_mapped_document_again(struct pas_tx *tx, const struct document_rec *d, const char *document_id,
                                  int64_t revision, int content_fd, struct errbuf *e);
