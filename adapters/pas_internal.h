/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the files of the PAS target share among themselves; nothing outside
 * adapters/ includes this.  Holds the connected target (struct pas), the
 * statement ids, the parameters bound to them, and the prototypes of the
 * helpers one file of the PAS target calls in another: chiefly the ODBC
 * plumbing of odbc.c that every pas_*.c file runs its statements through.
 * Not here: what callers see (pas.h and the narrow pas_*.h headers of each
 * area) and the vendor contract (adapter.h).
 *
 * Every function here follows pas.h's contract (0 or a negative errno, one
 * line in e naming the SQLSTATE, never a bound value).  They are hidden:
 * none is part of the library's interface.
 */

#include <stdbool.h>
#include <stdint.h>

#include <sql.h>
#include <sqlext.h>

#include "../daemon/err.h"
#include "../daemon/model.h"
#include "adapter.h"
#include "mapping.h"
#include "pas.h"
#include "pas_audit.h"
#include "pas_lease.h"

#pragma GCC visibility push(hidden)

/* ---------------------------------------------------------------------- */
/* The statements: one id each, their SQL in pas_sql.c.                    */

enum stmt_id {
        /* pas_schema.c */
        ST_VERSION_GET,
        ST_VERSION_INSERT,
        ST_VERSION_UPDATE,
        /* pas_write.c */
        ST_LEDGER_GET,
        ST_LEDGER_UPDATE,
        ST_LEDGER_INSERT,
        ST_REFERRAL_UPDATE,
        ST_REFERRAL_INSERT,
        ST_REFERRAL_VERSION,
        ST_RELATED_DELETE,
        ST_RELATED_INSERT,
        ST_REQUIREMENT_DELETE,
        ST_REQUIREMENT_INSERT,
        ST_ENTRY_FIELDS,
        /* pas_document.c */
        ST_DOCUMENT_GET,
        ST_DOCUMENT_INSERT,
        ST_DOCUMENT_UPDATE,
        ST_PART_DELETE,
        ST_PART_INSERT,
        ST_DOCUMENTS_KNOWN,
        ST_ATTACHMENTS_STORED,
        ST_RELATED_LISTING,
        ST_ATTACHMENT_REMOVED,
        /* pas_document_rows.c */
        ST_DOCUMENT_ROWS,
        ST_DOCUMENT_DESCRIBED,
        ST_PART_GET,
        /* pas_patient.c */
        ST_PATIENT_LOOKUP, /* the operator's statement (pas_set_patient_lookup), not in the table */
        ST_PATIENT_UPDATE,
        ST_PATIENT_REMATCH,
        /* pas_lease.c */
        ST_LEASE_GET,
        ST_LEASE_INSERT,
        ST_LEASE_TAKE,
        ST_LEASE_RENEW,
        ST_LEASE_RELEASE,
        /* pas_audit.c */
        ST_REFERRAL_STORED,
        ST_REQUIREMENT_GET,
        ST_RELATED_GET,
        ST_AUDIT_SEQ,
        ST_AUDIT_INSERT,
        ST_AUDIT_READ,
        /* pas_worklist.c */
        ST_WORKLIST_CLEAR,
        ST_WORKLIST_INSERT,
        ST_LEFT_FIND,
        ST_RETURNED_FIND,
        ST_LEDGER_LEFT,
        ST_RECONCILE_LISTED,
        ST_RECONCILE_UNLISTED,
        /* pas_schedule.c */
        ST_LEDGER_RECHECK,
        ST_LEDGER_OWE,
        ST_BUDGET_SPEND,
        ST_BUDGET_GET,
        ST_BUDGET_INSERT,
        ST_POLL_GET,
        ST_POLL_UPDATE,
        ST_POLL_INSERT,
        ST_RETRY_SEEN_UPDATE,
        ST_RETRY_SEEN_INSERT,
        ST_RETRY_GET,
        ST_RETRY_FAIL,
        ST_RETRY_DELETE,
        ST_RETRY_DUE,
        ST_RECHECK_DUE,
        ST_RETRY_NEXT,
        ST_RECHECK_NEXT,
        /* pas_status.c */
        ST_POLL_LIST,
        ST_WAITING_DOCUMENTS,
        ST_WAITING_NOT_FETCHED,
        ST_WAITING_RETRY,
        ST_ORIGIN_RETRY,
        ST_ORIGIN_REFERRAL,
        /* pas_answer.c */
        ST_ANSWER_HAS,
        ST_ANSWER_INSERT,
        ST_ANSWER_LIST,
        ST_ANSWER_GET,
        ST_ANSWER_REFERRALS,
        ST_ANSWER_DERIVED,
        ST_ANSWER_CURRENT,
        /* pas_outbox.c */
        ST_OUTBOX_DUE,
        ST_OUTBOX_SENDING,
        ST_OUTBOX_RECORD,
        ST_OUTBOX_COUNTS,
        ST_OUTBOX_NEXT,
        ST_OUTBOX_ATTENTION,
        /* pas_mapping.c */
        ST_MAP_REFERRAL, /* the operator's mapping statements (pas_set_mapping), not in the table */
        ST_MAP_DOCUMENT,
        ST_MAX_
};

/* A statement's SQL and what names it in error lines: statements[id] (pas_sql.c). */
struct statement {
        const char *what; /* names it in error lines */
        const char *sql;
};
extern const struct statement statements[ST_MAX_];

/* What pas_check_schema() expects to read: every table and view with every
 * column this build writes or documents (pas_sql.c), n_schema_objects of them. */
struct schema_object {
        const char *name;
        const char *probe;
};
extern const struct schema_object schema_objects[];
extern const size_t n_schema_objects;

/* ---------------------------------------------------------------------- */
/* The connected target.                                                   */

/* An open transaction (pas.h): the connection it runs on.  One per
 * connection, held in it (struct pas .tx): pas_begin() hands out its address. */
struct pas_tx {
        struct pas *p;
};

struct pas {
        const struct adapter *adapter; /* the vendor's ops; never NULL once open */
        SQLHENV env;                   /* owned */
        SQLHDBC dbc;                   /* owned */
        bool connected;                /* SQLDriverConnect succeeded: SQLDisconnect on close */
        bool in_tx;                    /* between pas_begin and pas_commit/pas_rollback */
        struct pas_tx tx;              /* the transaction pas_begin() hands out: tx.p is this pas */
        bool keep_stmts;               /* prepared statements survive the end of a transaction */
        char dbms[128];                /* "SQLite 3.40.1": SQL_DBMS_NAME and SQL_DBMS_VER */
        SQLHSTMT stmt[ST_MAX_];        /* prepared on first use; SQL_NULL_HSTMT until then */
        unsigned char *part;           /* PAS_PART_MAX bytes, allocated on the first document */
        char *lookup_sql;              /* the patient lookup (ST_PATIENT_LOOKUP), NULL when none */
        struct pas_map_sql map[PAS_MAP_KINDS_]; /* the mapping statements (ST_MAP_*), sql NULL when none */
        char put_ubrn[UBRN_LEN + 1];   /* with a referral mapping: the referral pas_put_referral() last wrote, */
        bool put_new_version;          /* and whether that was a version the staging row did not have yet */
        char fresh_ubrn[UBRN_LEN + 1]; /* pas_referral_fresh() in this transaction: nothing of it stored; "" none */
        char tx_time[32];              /* the transaction's time, read once at pas_begin(): every time it writes */
        char lease_name[PAS_LEASE_NAME_MAX + 1];     /* the lease taken, "" when none */
        char lease_holder[PAS_LEASE_HOLDER_MAX + 1]; /* as whom */
        char *connection;              /* owned: the connection string in use, for pas_reconnect(); may
                                          hold a password: wiped on close, never in an error line */
        bool lost;                     /* a call failed with -ENOTCONN or -EINPROGRESS since connecting */
        uint64_t statements;           /* cached statements executed: round trips, for pas_statements() */
};

/* ---------------------------------------------------------------------- */
/* Parameters.                                                             */

struct param {
        SQLSMALLINT ctype;    /* SQL_C_CHAR, SQL_C_SBIGINT or SQL_C_BINARY */
        const void *ptr;      /* text (NUL-terminated) or bytes; NULL text is SQL NULL */
        SQLLEN len;           /* bytes of a blob, or of the stream */
        SQLBIGINT i;          /* an integer's value */
        bool null;            /* an integer, or a stream, that is SQL NULL */
        int fd;               /* a stream: `len` bytes read from this file at offset 0, sent with SQLPutData */
        bool stream;
        SQLLEN ind;           /* length / indicator, filled in when binding */
};

#define P_TEXT(s) ((struct param){ .ctype = SQL_C_CHAR, .ptr = (s) })
#define P_INT(v) ((struct param){ .ctype = SQL_C_SBIGINT, .i = (v) })
#define P_INT_OR_NULL(v, isnull) ((struct param){ .ctype = SQL_C_SBIGINT, .i = (v), .null = (isnull) })
#define P_BLOB(b, n) ((struct param){ .ctype = SQL_C_BINARY, .ptr = (b), .len = (SQLLEN) (n) })
#define P_STREAM(f, n, isnull)                                                                                    \
        ((struct param){ .ctype = SQL_C_BINARY, .fd = (f), .len = (SQLLEN) (n), .stream = true, .null = (isnull) })

/* The ten columns of ers_document that a document's A005 answer gives, as
 * parameters from a struct document_rec *: title, content_type,
 * declared_size, availability, attached_by_user, attached_by_org, created,
 * document_type, description, attached_on_behalf_of, the order in which
 * every statement that writes them lists them (pas_sql.c). */
#define P_DOCUMENT_DESCRIBED(d)                                                                                   \
        P_TEXT((d)->title), P_TEXT((d)->content_type), P_INT_OR_NULL((d)->declared_size, (d)->declared_size < 0), \
                P_TEXT((d)->availability), P_TEXT((d)->attached_by_user), P_TEXT((d)->attached_by_org),           \
                P_TEXT((d)->created), P_TEXT((d)->document_type), P_TEXT((d)->description),                       \
                P_TEXT((d)->attached_on_behalf_of)

/* ---------------------------------------------------------------------- */
/* The adapters (registry.c).                                              */

/* Every adapter this build knows, n_adapters of them, in the order "auto"
 * tries their DBMS names. */
extern const struct adapter *const adapters[];
extern const size_t n_adapters;

/* ---------------------------------------------------------------------- */
/* Diagnostics (odbc.c).                                                   */

/*
 * Reads the first error record of handle `h` (skipping "01xxx" warnings),
 * classifies it and writes "<what>: SQLSTATE xxxxx: <message>" into e.
 * `a` may be NULL before the adapter is known.
 */
int diag(const struct adapter *a, SQLSMALLINT type, SQLHANDLE h, bool in_commit, const char *what,
         struct errbuf *e);
/* diag() of a statement's or of p's connection handle; a lost connection marks p lost. */
int diag_stmt(struct pas *p, SQLHSTMT h, const char *what, struct errbuf *e);
int diag_dbc(struct pas *p, bool in_commit, const char *what, struct errbuf *e);

/* ---------------------------------------------------------------------- */
/* Statements and rows (odbc.c).                                           */

/* Frees every cached statement handle of p. */
void stmt_drop_all(struct pas *p);

/* The cached, prepared handle of statement `id` (prepared on first use). */
int stmt_get(struct pas *p, enum stmt_id id, SQLHSTMT *ret, struct errbuf *e);

/* Closes a statement's cursor and unbinds its parameters, for its next run. */
void stmt_close(SQLHSTMT h);

/*
 * Executes a cached statement with parameters.  For a statement that returns
 * rows, *ret_h (when non-NULL) gets the handle positioned before the first
 * row: the caller fetches, then calls stmt_close().  Otherwise the cursor is
 * closed here and *ret_rows (when non-NULL) gets the row count (0 when the
 * driver says SQL_NO_DATA).
 */
int run(struct pas *p, enum stmt_id id, struct param *ps, size_t n, SQLHSTMT *ret_h, SQLLEN *ret_rows,
        struct errbuf *e);

/* Fetches the next row: 1 when there is one, 0 at the end, or a negative errno. */
int fetch(struct pas *p, SQLHSTMT h, const char *what, struct errbuf *e);

/* Reads an integer column; *ret_null (may be NULL) says whether it was NULL (*ret 0). */
int get_int64(struct pas *p, SQLHSTMT h, SQLUSMALLINT col, const char *what, int64_t *ret, bool *ret_null,
              struct errbuf *e);

/* Reads a text column into ret (n bytes); NULL reads as "".  A value that
 * does not fit is an error: the columns read back here are short codes. */
int get_text(struct pas *p, SQLHSTMT h, SQLUSMALLINT col, const char *what, char *ret, size_t n, bool *ret_null,
             struct errbuf *e);

/* Reads a text column of any length into a new string (*ret, NULL for SQL
 * NULL): every text from e-RS, and the audit trail's detail and documents,
 * have no fixed bound. */
int get_text_alloc(struct pas *p, SQLHSTMT h, SQLUSMALLINT col, const char *what, char **ret, struct errbuf *e);

/* Reads a binary column whole into a new buffer (*ret, *ret_len bytes, with a
 * NUL after them; *ret NULL for SQL NULL); -EFBIG past `max` bytes (0: no bound). */
int get_bytes_alloc(struct pas *p, SQLHSTMT h, SQLUSMALLINT col, const char *what, size_t max, unsigned char **ret,
                    size_t *ret_len, struct errbuf *e);

/* Reads a text column whole into *ret: "" for SQL NULL (the convention of pas.h). */
int get_text_whole(struct pas *p, SQLHSTMT h, SQLUSMALLINT col, const char *what, char **ret, struct errbuf *e);

/* A text column's buffer, for get_texts(). */
struct text_col {
        char *buf;
        size_t size;
};

#define TEXT_COL(field) { (field), sizeof(field) }

/* Reads text columns first..first+n-1 of the current row into the buffers. */
int get_texts(struct pas *p, SQLHSTMT h, const char *what, SQLUSMALLINT first, const struct text_col *cols, size_t n,
              struct errbuf *e);

/* The one integer column of the first row of a query (0 and *ret_found false without a row). */
int query_int(struct pas *p, enum stmt_id id, struct param *ps, size_t n, int64_t *ret, bool *ret_found,
              struct errbuf *e);

/* The one text column of the first row of a query ("" without a row or for NULL). */
int query_text(struct pas *p, enum stmt_id id, struct param *ps, size_t n, char *ret, size_t size, struct errbuf *e);

/* Runs a statement whose one parameter is a UBRN (checked first); its error names the UBRN. */
int run_for_ubrn(struct pas *p, enum stmt_id id, const char *ubrn, SQLHSTMT *h, struct errbuf *e);

/* Runs a statement without parameters and hands each row to `row` (which
 * reads its columns and passes them on); stops at the first error. */
int walk_rows(struct pas *p, enum stmt_id id,
              int (*row)(struct pas *p, SQLHSTMT h, const char *what, void *walk, struct errbuf *e), void *walk,
              struct errbuf *e);

/* Makes room in *list (elements of `size` bytes, *cap of them) for element
 * number n: the arrays the PAS files' reads fill as rows come. */
int grow(void *list, size_t *cap, size_t n, size_t size, struct errbuf *e);

/* A list read row by row, to the caller: NULL when empty; freed when r < 0 (returned). */
int list_hand_over(int r, void *list, size_t n, void **ret, size_t *ret_n);
/* Every row of h's result, its first column a UBRN, into *ret (NULL when none;
 * the caller's to free()); closes h.  (pas_document.c) */
int fetch_ubrns(struct pas *p, SQLHSTMT h, const char *what, char (**ret)[UBRN_LEN + 1], size_t *ret_n,
                struct errbuf *e);

/* True when the table or view `name` exists (as stored, or upper-cased as
 * some DBMSs store unquoted identifiers), or with `column` non-NULL, when
 * that table has that column.  SQLTables and SQLColumns take patterns: the
 * '_' in our names matches any one character, which no other table of a
 * PAS is expected to exploit. */
int catalog_has(struct pas *p, const char *name, const char *column, bool *ret, struct errbuf *e);

/* ---------------------------------------------------------------------- */
/* Transactions and the checks every write makes (pas_conn.c).             */

/* The connection of an open transaction.  A transaction used after its
 * pas_commit() or pas_rollback() is a bug in the caller: asserted here, the
 * one check of "inside a transaction" left, which the types make unreachable
 * but for that. */
struct pas *tx_pas(struct pas_tx *tx);

/* The time a write stores: its transaction's, read once at pas_begin(), so
 * that every time one transaction writes is the same (a DBA joins
 * last_synced_at with the mapped row's :synced_at).  32 bytes, owned by the
 * connection. */
const char *tx_time(const struct pas_tx *tx);

/* Whether the transaction was told nothing of ubrn is stored (pas_referral_fresh). */
bool is_fresh(const struct pas_tx *tx, const char *ubrn);

/* -EINVAL with one line in e unless ubrn is a UBRN (12 digits). */
int check_ubrn(const char *ubrn, const char *what, struct errbuf *e);

/* Text ersd writes itself into a column of `max` bytes (ers_document.not_fetched_reason,
 * ers_retry.reason, ers_poll.last_result): s, or its first bytes cut on a character into ret
 * (max + 1 bytes): never a character cut in two, which PostgreSQL would refuse (22021), be the
 * cut ours or the caller's (a line it made with snprintf). */
const char *bounded(const char *s, size_t max, char *ret);

/* ---------------------------------------------------------------------- */
/* Between the concerns.                                                   */

/* Renews the lease p holds at time `now` (ISO UTC), in whatever transaction
 * state p is in (pas_begin() renews it inside each transaction, at the
 * transaction's time): -ESTALE when another holder has it (pas_lease.c). */
int lease_renew(struct pas *p, const char *now, struct errbuf *e);

/* What a referral's row holds where A005 and the worklist entry both may say:
 * the A005 value first, the entry's when A005 has none; the service as a
 * pair, from one source.  Borrowed pointers.  For the referral's row and its
 * mapping (pas_write.c). */

/* The document mapping, for a row pas_put_document() has just written (pas_mapping.c). */
int map_document(struct pas_tx *tx, const struct document_rec *d, const char *document_id, int64_t revision,
                 const char *sha, int spool_fd, struct errbuf *e);

#pragma GCC visibility pop
