/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A referral's document rows as stored, every revision, for `ersd remap`
 * (daemon/remap_documents.c): read whole, the columns the A005 answer gives
 * set again, and a row's content read back from ers_document_part into a
 * file for database.mapping.document (pas_mapping.h).  Nothing here writes a
 * part, adds or removes a revision, or touches the fetch state
 * (fetch_status, not_fetched_reason, size_bytes, sha256, part_count,
 * stored_at, removed_at).  Not here: a sync's write of a document
 * (pas.h: pas_put_document_ex()).  Implemented in adapters/pas_document_rows.c;
 * every function keeps pas.h's contract (0 or a negative errno, one line in
 * e naming the SQLSTATE, never a bound value).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../daemon/err.h"
#include "../daemon/model.h"
#include "../daemon/util.h"
#include "pas.h"

struct pas;
struct pas_tx;

/* One ers_document row.  Texts are owned, whole, NULL for SQL NULL. */
struct document_row {
        char document_id[UUID_STR_LEN];
        char source_ubrn[UBRN_LEN + 1];
        enum document_kind kind;
        char *attachment_id; /* never NULL once read */
        unsigned occurrence;
        int64_t revision;
        int64_t source_version;
        /* The columns the A005 answer gives (document_describe(), daemon/fetch.h). */
        char *title, *content_type;
        int64_t declared_size; /* -1 when NULL */
        char *availability, *attached_by_user, *attached_by_org, *created;
        char *document_type, *description, *attached_on_behalf_of;
        /* The fetch's: read, never written here. */
        bool fetched; /* fetch_status FETCHED */
        char *not_fetched_reason;
        int64_t size;       /* size_bytes; -1 when NULL */
        char sha256[65];    /* "" when NULL */
        int64_t part_count; /* 0 when NULL */
};
void document_rows_free(struct document_row *rows, size_t n); /* the array and its texts; accepts NULL */

/* Every ers_document row shown with `ubrn` (its own documents and its related
 * referrals'), every revision, ordered by source referral, source version,
 * kind, attachment key and revision.  *ret (NULL when none), *ret_n:
 * document_rows_free(). */
int pas_document_rows(struct pas *p, const char *ubrn, struct document_row **ret, size_t *ret_n, struct errbuf *e);

/* Sets the columns the A005 answer gives of row `document_id` to d's (title,
 * content_type, declared_size, availability, attached_by_user,
 * attached_by_org, created, document_type, description,
 * attached_on_behalf_of), and nothing else.  Writes: takes the transaction. */
int pas_document_set_described(struct pas_tx *tx, const char *document_id, const struct document_rec *d,
                               struct errbuf *e);

/* Writes the content of `row` (fetched) from its ers_document_part rows,
 * read one part a statement (so that no driver holds more than one), into
 * `fd` from offset 0, truncating it first; -EBADMSG when a part is missing
 * or the bytes are not the row's size_bytes and SHA-256 (the mapping is then
 * never given them).  Memory: one part. */
int pas_document_content(struct pas *p, const struct document_row *row, int fd, struct errbuf *e);
