/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Faults of the PAS connection for the sync engine's unit test
 * (tests/unit/test_engine.c), on a real SQLite PAS: linked into test_engine
 * only, with -Wl,--wrap=SQLPrepare,--wrap=SQLExecute,--wrap=SQLExecDirect,
 * --wrap=SQLEndTran,--wrap=SQLDriverConnect,--wrap=SQLGetDiagRec (Makefile),
 * so that every such call our objects make (adapters/odbc.c, and the test's
 * own reads through tests/support/harness.c) comes here first.  The calls
 * go on to unixODBC unchanged unless a fault is armed; a call failed here
 * does nothing and reports SQL_ERROR with one diagnostic record of ours
 * (the SQLSTATE armed), which the adapters read and classify as they would
 * the driver's.  The same idea as tests/support/preload/odbc_fault.c (an
 * LD_PRELOAD shim for the integration tests), done by the linker.
 *
 * Not thread-safe: the PAS is used by one thread (the engine's writer, or
 * the test between rounds).
 */

#include <stdbool.h>

#include <sql.h>

/* While down, every statement, commit and connection attempt fails with
 * SQLSTATE 08S01 (08001 for a connection): a database server gone. */
void fake_odbc_down(bool down);

/* How the next commit of a transaction that wrote ers_ledger ends. */
enum fake_commit {
        FAKE_COMMIT_COMMITTED, /* committed, then reported failed with 08S01: the answer was lost */
        FAKE_COMMIT_LOST,      /* rolled back, and reported the same: the client cannot tell */
};
void fake_odbc_fail_ledger_commit(enum fake_commit how);

/* The next execution of a statement whose SQL starts with `sql_prefix`
 * fails with `sqlstate`, executing nothing.  At most one armed at a time. */
void fake_odbc_fail_statement(const char *sql_prefix, const char *sqlstate);

/* ODBC calls failed here since the last reset (each statement, commit or
 * connection attempt refused): what a test checks to know its fault fired. */
unsigned fake_odbc_failed(void);

/* Disarms everything and counts from 0 again. */
void fake_odbc_reset(void);

/* The wraps (declared for -Wmissing-prototypes; called by the linker's redirection only). */
SQLRETURN __wrap_SQLPrepare(SQLHSTMT stmt, SQLCHAR *text, SQLINTEGER len);
SQLRETURN __wrap_SQLExecute(SQLHSTMT stmt);
SQLRETURN __wrap_SQLExecDirect(SQLHSTMT stmt, SQLCHAR *text, SQLINTEGER len);
SQLRETURN __wrap_SQLEndTran(SQLSMALLINT type, SQLHANDLE handle, SQLSMALLINT completion);
SQLRETURN __wrap_SQLDriverConnect(SQLHDBC dbc, SQLHWND window, SQLCHAR *in, SQLSMALLINT in_len, SQLCHAR *out,
                                  SQLSMALLINT out_max, SQLSMALLINT *out_len, SQLUSMALLINT completion);
SQLRETURN __wrap_SQLGetDiagRec(SQLSMALLINT type, SQLHANDLE handle, SQLSMALLINT rec, SQLCHAR *state, SQLINTEGER *native,
                               SQLCHAR *text, SQLSMALLINT max, SQLSMALLINT *len);
SQLRETURN __real_SQLPrepare(SQLHSTMT stmt, SQLCHAR *text, SQLINTEGER len);
SQLRETURN __real_SQLExecute(SQLHSTMT stmt);
SQLRETURN __real_SQLExecDirect(SQLHSTMT stmt, SQLCHAR *text, SQLINTEGER len);
SQLRETURN __real_SQLEndTran(SQLSMALLINT type, SQLHANDLE handle, SQLSMALLINT completion);
SQLRETURN __real_SQLDriverConnect(SQLHDBC dbc, SQLHWND window, SQLCHAR *in, SQLSMALLINT in_len, SQLCHAR *out,
                                  SQLSMALLINT out_max, SQLSMALLINT *out_len, SQLUSMALLINT completion);
SQLRETURN __real_SQLGetDiagRec(SQLSMALLINT type, SQLHANDLE handle, SQLSMALLINT rec, SQLCHAR *state, SQLINTEGER *native,
                               SQLCHAR *text, SQLSMALLINT max, SQLSMALLINT *len);
