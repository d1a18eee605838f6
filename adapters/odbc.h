/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Shared ODBC plumbing, for the adapters (adapters/<vendor>.c) and the tests.
 * The sync engine uses pas.h and the pas_*.h headers only.
 *
 * Every function returns 0 or a negative errno and, on failure, writes one
 * line into `e`: "<what>: SQLSTATE xxxxx: <driver message>", the message
 * cleaned by odbc_clean_message().  A driver's SQLSTATE is converted to an
 * errno at this boundary: the adapter's `classify` op first, then the
 * generic mapping (see adapter.h).
 */

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "../daemon/err.h"

struct pas;

#define ODBC_MESSAGE_MAX 300 /* bytes of a driver message kept in an error line */

/* Executes one SQL statement without parameters on p's connection, in
 * whatever transaction state the connection is in, discarding any rows it
 * returns.  `what` names the statement in the error line.  Only for
 * constant SQL: anything that varies goes through a bound parameter. */
int odbc_exec(struct pas *p, const char *what, const char *sql, struct errbuf *e);

/* True when the ODBC connection string sets attribute `key` (matched
 * case-insensitively, as ODBC does), e.g. odbc_connstr_has(c, "Timeout"). */
bool odbc_connstr_has(const char *connection, const char *key);

/* Finds the first occurrence of attribute `key` in `connection`: copies its
 * value (spaces around it and enclosing braces removed, truncated to n - 1
 * bytes) into ret, when ret is not NULL, and returns where the attribute
 * ends, to look for the next occurrence from there; NULL (ret untouched) when
 * there is none. */
const char *odbc_connstr_find(const char *connection, const char *key, char *ret, size_t n);

/*
 * Copies `connection` into ret (n bytes; ret may be `connection` itself),
 * without trailing ';' or spaces, and appends ";" `attributes` — unless `key`
 * is non-NULL and the connection string sets it already (the operator's
 * value wins).  Returns 0, or -ENAMETOOLONG when ret is too small.
 */
int odbc_connstr_append(const char *connection, const char *key, const char *attributes, char *ret, size_t n);

/* Prepares `sql` on p's connection and describes it (SQLNumResultCols:
 * drivers that defer the prepare send it then), without running it; the
 * statement may hold '?' markers.  0, or the database's error in e. */
int odbc_prepare_only(struct pas *p, const char *what, const char *sql, struct errbuf *e);

/* Runs one constant SQL query (no parameters) on p's connection, in whatever
 * transaction state it is in, and reads the first column of its first row as
 * an integer into *ret (untouched on failure).  No row, or SQL NULL, is
 * -ENODATA.  For adapters' lock and session queries. */
int odbc_query_int(struct pas *p, const char *what, const char *sql, int64_t *ret, struct errbuf *e);

/*
 * Runs one SQL statement with text parameters (`params[i]` NULL: SQL NULL;
 * at most 8), on p's connection, in whatever transaction state it is in,
 * prepared for this call only.  For a query, `fn` (non-NULL) is called for
 * each row with its first n_cols columns (at most 8) as text of any length,
 * NULL for SQL NULL, borrowed during the call; it returns 0 to go on, or a
 * negative errno that ends the walk and is returned as it is (e is then the
 * caller's to fill).  The statement is closed before this returns, and fn
 * must not run another: some drivers (SQL Server's) allow one statement with
 * pending rows per connection.  For the adapters' upgrade steps (the
 * attachment keys, document_key.c).  0 or a negative errno (one line in e).
 */
int odbc_run_texts(struct pas *p, const char *what, const char *sql, const char *const *params, size_t n_params,
                   size_t n_cols, int (*fn)(void *userdata, char *const *cols), void *userdata, struct errbuf *e);

/*
 * Makes a driver's diagnostic text fit for an error line, into ret (n bytes,
 * NUL-terminated): drops the leading "[vendor][driver]" tags, keeps only the
 * first line (PostgreSQL puts "DETAIL: Key (…)=(…)" with bound values on the
 * next ones), replaces every run of exactly 10 digits — alone or spaced
 * 3-3-4 — by "<redacted>" (an NHS number a driver might echo), and truncates
 * to ODBC_MESSAGE_MAX bytes on a UTF-8 boundary.  Never adds anything that was
 * bound; this is defence in depth, not a licence to format values.
 */
void odbc_clean_message(const char *message, char *ret, size_t n);

/* The generic SQLSTATE → errno mapping (used when the adapter has no
 * opinion).  `in_commit`: during SQLEndTran(SQL_COMMIT). */
int odbc_classify_sqlstate(const char *sqlstate, bool in_commit);
