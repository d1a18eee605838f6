/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The PAS target: what the sync engine asks of the PAS database, whatever its
 * vendor.  Implemented once over ODBC, by concern in adapters/pas_*.c over the
 * plumbing of adapters/odbc.c (every statement in adapters/pas_sql.c), with
 * the per-vendor differences in one `const struct adapter` per vendor
 * (adapters/<vendor>.c, see adapter.h).  Schema: docs/schema.md and
 * adapters/sql/<vendor>.sql.
 *
 * This header: the connection, the schema, transactions and the write path
 * (the ledger, the referral's row, its documents).  Each other area has a
 * narrow header of its own: pas_patient.h, pas_lease.h, pas_audit.h,
 * pas_worklist.h, pas_schedule.h, pas_status.h, pas_mapping.h.
 *
 * Contract for every function: returns 0 or a negative errno; on failure one
 * line in the errbuf naming the cause with the SQLSTATE (never a value that
 * was bound, never the connection string).  -EAGAIN means the SQLSTATE is
 * transient (deadlock, serialization, lock busy): roll back and try later.
 * -EIO is a permanent database error, -ENOTCONN a lost connection,
 * -EINPROGRESS a commit whose outcome is unknown (08007 / 08S01 during
 * SQLEndTran): read the ledger back before re-sending anything.
 *
 * All SQL uses bound parameters.  Writes happen only between pas_begin()
 * and pas_commit()/pas_rollback(): one referral, its documents and its ledger
 * row in one transaction.  Every write takes that transaction (struct pas_tx,
 * below) rather than the connection, so that a write outside one does not
 * compile; and no function here opens a transaction of its own.  Reads take
 * the connection and run inside or outside a transaction.
 */

#include <stdbool.h>
#include <stdint.h>

#include "../daemon/err.h"
#include "../daemon/model.h"
#include "../daemon/util.h"

#define PAS_PART_MAX (1024 * 1024) /* a document is stored as ordered parts of at most 1 MiB */

struct pas;    /* a connected target: {adapter ops, ODBC handles, prepared statements} */
struct pas_tx; /* an open transaction on one (pas_begin()) */

/*
 * Text read back from the PAS that e-RS sent (ids, codes, times as sent) is
 * of any length, as stored (docs/schema.md): it is read into owned strings,
 * never into a fixed buffer, and each struct holding some has a *_free()
 * function (which accepts NULL and leaves the struct empty).  Unless a field
 * says otherwise, such a string is "" for SQL NULL, as the fixed buffers
 * were, and NULL only in a struct that says nothing was found.
 */

/* ---------------------------------------------------------------------- */
/* Connection.                                                             */

/* Connects with an ODBC connection string; `adapter` is "auto" (detect from
 * SQLGetInfo(SQL_DBMS_NAME)) or an adapter name.  Caller owns *ret
 * (pas_close). */
int pas_open(const char *connection, const char *adapter, struct pas **ret, struct errbuf *e);
void pas_close(struct pas *p); /* accepts NULL; rolls back an open transaction */

/* True once a call has failed with -ENOTCONN or -EINPROGRESS, or a COMMIT or
 * ROLLBACK has failed at all: the connection is gone (server restarted,
 * network cut) or its transaction state in doubt.  Nothing more is sent on it;
 * call pas_reconnect(). */
bool pas_connection_lost(const struct pas *p);

/*
 * Drops the connection (an open transaction is the server's to roll back)
 * and connects again with the same connection string, adapter and session
 * settings; statements are prepared again on first use, a lease taken is
 * renewed by the next pas_begin() (-ESTALE if another ersd took it
 * meanwhile).  0, or a negative errno with one line in e, the connection
 * still lost.  Called by the daemon only (reconnect.c), which decides when.
 */
int pas_reconnect(struct pas *p, struct errbuf *e);

/* Name of the adapter in use ("sqlite", …) and the DBMS name/version the
 * driver reported, for the start-up log line.  Owned by p. */
const char *pas_adapter_name(const struct pas *p);
const char *pas_dbms(const struct pas *p);

/* How many of the sync's statements (the cached ones: reads and writes of
 * referrals, documents, parts, the ledger) this connection has executed: each
 * is a round trip to a database server.  For the tests and the benchmark. */
uint64_t pas_statements(const struct pas *p);

/* ---------------------------------------------------------------------- */
/* Schema.                                                                 */

/* Creates the staging schema if absent (idempotent), or upgrades one of an
 * older version in place, inside the caller's transaction: commit it to
 * keep the schema (some DBMSs commit DDL at once whatever the caller does:
 * the DDL is idempotent, and the version row is written last). */
int pas_init_schema(struct pas_tx *tx, struct errbuf *e);

/* Checks the schema exists and is the version this build writes. */
int pas_check_schema(struct pas *p, struct errbuf *e);
/* (Added:) pas_check_schema() fails with -ENOENT when the schema is absent
 * (run --init-db), -EPROTO when it is another version or lacks a table or
 * column; pas_init_schema() fails with -EPROTO rather than touch a schema of
 * another version.  Reads (pas_ledger_get, pas_document_get) may be called
 * inside or outside a transaction; outside one they run in autocommit and
 * leave nothing open. */

/* ---------------------------------------------------------------------- */
/* Transactions.                                                           */

/*
 * A transaction is a value: pas_begin() gives it, every function that writes
 * takes it (the contracts below and in the narrow headers say "Writes: takes
 * the transaction"), and pas_commit() or pas_rollback() ends it.  So "inside
 * a transaction" is checked by the compiler, and a transaction is opened
 * only where its caller can see it.  One at a time per connection; the
 * connection owns it (nothing to free).  After pas_commit() or
 * pas_rollback() the value is dead: using it again is a bug, caught by an
 * assertion while no transaction is open (once pas_begin() has opened the
 * next one, the old value names that one).
 */

/* Opens a transaction on p, in which the single-writer lock is taken
 * (-EAGAIN while another ersd holds it) and the writer's lease, when one is
 * taken, renewed (-ESTALE when another ersd took it over; pas_lease.h).
 * *ret: the transaction, NULL on failure (nothing left open).  -EINVAL when
 * one is open on p already. */
int pas_begin(struct pas *p, struct pas_tx **ret, struct errbuf *e);

/* Commits.  Whatever it returns the transaction is over: on failure it has
 * been rolled back (or, for -EINPROGRESS, its outcome is unknown: read the
 * ledger back on a new connection). */
int pas_commit(struct pas_tx *tx, struct errbuf *e);

/* Rolls back; never fails from the caller's view.  Accepts NULL (a
 * pas_begin() that failed), and a transaction pas_reconnect() has already
 * dropped. */
void pas_rollback(struct pas_tx *tx);

/*
 * Tells the transaction that nothing of `ubrn` is stored: no referral,
 * ledger, related-link, requirement or document row shown with it, as the caller read
 * inside this transaction, under the writer lock.  Its rows are then inserted
 * without first looking for or deleting old ones, and its ledger row's
 * next_check_at is not cleared when it was never set (6 or more statements
 * fewer for a new referral, each a round trip); a row there after all is
 * refused by the table's key, never duplicated.  Lasts until the transaction
 * ends.
 */
void pas_referral_fresh(struct pas_tx *tx, const char *ubrn);

/* ---------------------------------------------------------------------- */
/* The write path: the ledger, the referral's row, its documents.          */

/* What the ledger remembers of a UBRN.  found=false when never synced. */
struct ledger_state {
        bool found;
        int64_t version;  /* version last written */
        bool complete;    /* false when documents are still owed (PENDING, failed fetch) */
        char correlation_id[37]; /* of the A005 behind the last write ("" when none): tells one
                                    write from another, e.g. after a commit of unknown outcome */
};
int pas_ledger_get(struct pas *p, const char *ubrn, struct ledger_state *ret, struct errbuf *e);

/* Records that `ubrn` is synced at `version`; complete=false when documents
 * are still owed.  Upsert.  Writes: takes the transaction. */
int pas_put_ledger(struct pas_tx *tx, const char *ubrn, int64_t version, bool complete, const char *worklist,
                   const char *correlation_id, struct errbuf *e);

/* Inserts or updates the referral's row, its related-UBRN links and its
 * additional requirements (ers_referral_requirement: replaced by this
 * version's, in e-RS's order, seq 1, 2, …).
 * `worklist` and the worklist entry fields not carried by A005 (service,
 * referral type) come from `entry`, which may be NULL (a related referral).
 * Writes: takes the transaction. */
int pas_put_referral(struct pas_tx *tx, const struct referral *r, const struct worklist_entry *entry,
                     const char *worklist, struct errbuf *e);
/* (Added:) each field is A005's value, else the entry's (NHS number,
 * priority, specialty; the service id and name as one pair): for a write
 * without a worklist call the writer puts the stored values into the entry
 * first (write.c, docs/schema.md "Fields a worklist entry also gives").  On update,
 * service, referral type and worklist keep their stored value when this call
 * has none (a referral refreshed as someone's related referral keeps the
 * worklist it was last seen on); every other column takes this version's
 * value, NULL included.  first_synced_at is set on insert only. */

/* What the referral's row holds of the fields A005 and a worklist entry both
 * may give (pas_put_referral()), for a write whose entry does not say them
 * (docs/schema.md, "Fields a worklist entry also gives").  found=false when
 * the PAS has no row.  Owned strings, NULL for NULL: free with
 * referral_entry_fields_free() (which zeroes the NHS number). */
struct referral_entry_fields {
        bool found;
        int64_t version;
        char *nhs_number; /* PATIENT IDENTIFIER */
        char *priority;
        char *specialty;
};
int pas_referral_entry_fields(struct pas *p, const char *ubrn, struct referral_entry_fields *ret, struct errbuf *e);
void referral_entry_fields_free(struct referral_entry_fields *f); /* accepts NULL */

enum document_kind { DOCUMENT_ATTACHMENT, DOCUMENT_CRI };

/* What is stored of one document (an attachment of source_ubrn shown with ubrn,
 * or the clinical information letter).  found=false when no row exists. */
struct document_state {
        bool found;
        bool fetched;     /* content stored (fetch_status FETCHED) */
        char sha256[65];  /* hex, when fetched */
        int64_t revision; /* highest revision stored */
        int64_t declared_size; /* as e-RS declared it for that revision; -1 when NULL */
        char *created;         /* owned: as e-RS sent it for that revision; "" when NULL */
        int64_t source_version; /* of that revision */
        char *availability;    /* owned: as stored for that revision; NULL when NULL */
        char *reason;          /* owned: its not_fetched_reason; NULL when fetched (or NULL) */
};
void document_state_free(struct document_state *s); /* frees the contents; accepts NULL */

/* The document (kind, attachment_id, occurrence) of source_ubrn shown with
 * ubrn: found by its attachment key (document_key.h).  *ret owns its
 * contents (document_state_free). */
int pas_document_get(struct pas *p, const char *ubrn, const char *source_ubrn, enum document_kind kind,
                     const char *attachment_id, unsigned occurrence, struct document_state *ret, struct errbuf *e);

/* Every document stored with `ubrn` (its own and its related referrals'), at
 * its latest revision: what pas_document_get() would say of each, read in one
 * statement, so that the fetching threads can decide what to download without
 * the database.  *ret (NULL when none) and *ret_n: free with
 * documents_known_free(*ret, *ret_n). */
struct document_known {
        char source_ubrn[UBRN_LEN + 1];
        enum document_kind kind;
        char *attachment_id;         /* owned: the e-RS attachment id ("CRI-v<version>" for a letter), whole */
        unsigned occurrence;         /* as in struct document_rec */
        struct document_state state; /* owned contents */
};
int pas_documents_known(struct pas *p, const char *ubrn, struct document_known **ret, size_t *ret_n,
                        struct errbuf *e);
void documents_known_free(struct document_known *list, size_t n); /* the array and its contents; accepts NULL */

/* One document row.  Borrowed pointers, valid for the call.  Its identity is
 * (ubrn, source_ubrn, kind, attachment_id, occurrence): a letter and an
 * attachment whose id is "CRI-v1" are two documents, and so are two
 * attachments of one referral that share an id. */
struct document_rec {
        const char *ubrn;            /* referral the document is shown with */
        const char *source_ubrn;     /* referral it was fetched for (ubrn or a related one) */
        enum document_kind kind;
        const char *attachment_id;   /* e-RS attachment id; for the CRI: "CRI-v<version>" */
        unsigned occurrence;         /* 0 for the first attachment with this id in source_ubrn's A005 (in the
                                        order listed), 1 for the second with the same id, …; 0 for the CRI */
        int64_t source_version;      /* version of source_ubrn when fetched */
        const char *title;
        const char *content_type;
        int64_t declared_size;       /* -1 when unknown */
        const char *availability;    /* verbatim code, NULL for the CRI */
        const char *attached_by_user;
        const char *attached_by_org;
        const char *created;
        const char *document_type;   /* the DocumentReference's type code (REFERRER, PROVIDER, …); NULL for the CRI */
        const char *description;     /* its description (free text); NULL for the CRI */
        const char *attached_on_behalf_of; /* AttachedOnBehalfOf: an SDS user id; NULL for the CRI */
        bool fetched;                /* content follows from spool_fd */
        const char *not_fetched_reason; /* when !fetched: one line for staff; stored cut to 255 bytes on a
                                           character */
        int64_t size;                /* bytes received (fetched) */
        const char *sha256;          /* hex of the bytes received (fetched) */
};

/*
 * Writes a document row and, when fetched, its content read from `spool_fd`
 * (positioned anywhere; read with pread from offset 0, `size` bytes) as ordered
 * parts of at most PAS_PART_MAX bytes: memory stays bounded by one part.
 * Rules: the same document (its identity above) with the same sha256 already
 * stored → nothing written; stored as not fetched → that row is completed;
 * stored fetched with another sha256 → a new revision row, the old one kept.
 * *ret_written (may be NULL) says whether anything was written.  Writes:
 * takes the transaction.
 */
int pas_put_document(struct pas_tx *tx, const struct document_rec *d, int spool_fd, bool *ret_written,
                     struct errbuf *e);
/* (Added:) the rules compare with the highest revision stored.  Stored
 * fetched and now not fetched → nothing written (the content stays); stored
 * not fetched and still not fetched → the row is updated only when the
 * availability, reason or source version changed.  Parts are numbered seq =
 * 1…part_count.  The bytes are hashed again while they stream in: -EBADMSG
 * when the spool file is shorter than `size` or its SHA-256 is not
 * `sha256` (discard the spool copy, fetch again); -EINVAL for a malformed
 * record (UBRN not 12 digits, no attachment id, fetched without a 64-hex
 * SHA-256).  Roll back after any failure. */

/* What pas_put_document_ex() did. */
struct document_written {
        bool written;                    /* a row was inserted or completed */
        char document_id[UUID_STR_LEN];  /* the row written, when written */
        int64_t revision;                /* its revision, when written */
};

/* pas_put_document(), telling which row it wrote.  *ret is untouched on failure. */
int pas_put_document_ex(struct pas_tx *tx, const struct document_rec *d, int spool_fd, struct document_written *ret,
                        struct errbuf *e);

/* An attachment stored with a referral (ers_document, kind ATTACHMENT). */
struct stored_attachment {
        char *id;            /* owned: the e-RS attachment id, whole */
        unsigned occurrence; /* as in struct document_rec */
        bool removed;        /* e-RS no longer lists it on the referral (removed_at set) */
        /* As its latest revision has them (which listed attachment it is: daemon/occurrence.h): */
        int64_t declared_size; /* -1 when NULL */
        char *created;         /* owned: NULL when NULL */
        bool fetched;          /* content stored (fetch_status FETCHED) */
};
void stored_attachments_free(struct stored_attachment *list, size_t n); /* the array and its strings; accepts NULL */

/* The attachments stored for (ubrn, source_ubrn), one entry per attachment
 * (its id and occurrence; all revisions together; described as its latest
 * revision), ordered by id then occurrence.  *ret (NULL when *ret_n is 0):
 * stored_attachments_free(). */
int pas_attachments_stored(struct pas *p, const char *ubrn, const char *source_ubrn, struct stored_attachment **ret,
                           size_t *ret_n, struct errbuf *e);

/* The referrals whose latest version lists `related_ubrn` as a related
 * referral (ers_referral_related), by UBRN: those that show its documents.
 * *ret (NULL when *ret_n is 0): free(). */
int pas_referrals_listing(struct pas *p, const char *related_ubrn, char (**ret)[UBRN_LEN + 1], size_t *ret_n,
                          struct errbuf *e);

/* Marks every revision of the attachment (attachment_id, occurrence) as no
 * longer listed by e-RS (removed=true: removed_at = now) or listed again
 * (removed_at = NULL).  Writes: takes the transaction.  Nothing is deleted. */
int pas_attachment_set_removed(struct pas_tx *tx, const char *ubrn, const char *source_ubrn,
                               const char *attachment_id, unsigned occurrence, bool removed, struct errbuf *e);
