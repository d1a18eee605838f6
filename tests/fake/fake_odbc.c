/* SPDX-License-Identifier: MIT */
/*
 * The wrapped ODBC calls of fake_odbc.h.  What each prepared statement
 * holds is remembered by handle (SQLPrepare), so that a fault can be aimed
 * at a statement by its SQL, and the writes of ers_ledger seen.
 */
#include "fake_odbc.h"

#include <stdio.h>
#include <string.h>

#include <sqlext.h>

#define PREPARED_MAX 512 /* statements remembered, the latest replacing the oldest */
#define PREFIX_MAX   128

static struct {
        bool down;
        bool commit_armed;
        enum fake_commit commit_how;
        bool ledger_written;          /* a statement writing ers_ledger ran since the last SQLEndTran */
        char fail_prefix[PREFIX_MAX]; /* "" when no statement fault is armed */
        char fail_state[6];
        struct {
                SQLHSTMT stmt;
                char sql[PREFIX_MAX]; /* its start */
        } prepared[PREPARED_MAX];
        size_t next;      /* where the next one goes */
        SQLHANDLE failed; /* the handle of the call failed last, and its record */
        char failed_state[6];
        unsigned n_failed; /* calls failed since the last reset */
} odbc;

void fake_odbc_down(bool down) {
        odbc.down = down;
}

void fake_odbc_fail_ledger_commit(enum fake_commit how) {
        odbc.commit_armed = true;
        odbc.commit_how = how;
}

void fake_odbc_fail_statement(const char *sql_prefix, const char *sqlstate) {
        snprintf(odbc.fail_prefix, sizeof odbc.fail_prefix, "%s", sql_prefix);
        snprintf(odbc.fail_state, sizeof odbc.fail_state, "%s", sqlstate);
}

unsigned fake_odbc_failed(void) {
        return odbc.n_failed;
}

void fake_odbc_reset(void) {
        odbc.n_failed = 0;
        odbc.down = false;
        odbc.commit_armed = false;
        odbc.ledger_written = false;
        odbc.fail_prefix[0] = '\0';
        odbc.failed = NULL;
}

/* Fails the call on `handle` with `state`: its diagnostic record is ours. */
static SQLRETURN fail(SQLHANDLE handle, const char *state) {
        odbc.n_failed++;
        odbc.failed = handle;
        snprintf(odbc.failed_state, sizeof odbc.failed_state, "%s", state);
        return SQL_ERROR;
}

static const char *prepared_sql(SQLHSTMT stmt) {
        for (size_t i = 0; i < PREPARED_MAX; i++)
                if (odbc.prepared[i].stmt == stmt)
                        return odbc.prepared[i].sql;
        return "";
}

static bool writes_ledger(const char *sql) {
        return strncmp(sql, "INSERT INTO ers_ledger ", 23) == 0 || strncmp(sql, "UPDATE ers_ledger ", 18) == 0;
}

/* Whether a statement about to run is failed; notes a ledger write otherwise. */
static bool statement_fails(SQLHSTMT stmt, const char *sql, SQLRETURN *ret) {
        odbc.failed = NULL;
        if (odbc.down) {
                *ret = fail(stmt, "08S01");
                return true;
        }
        if (odbc.fail_prefix[0] && strncmp(sql, odbc.fail_prefix, strlen(odbc.fail_prefix)) == 0) {
                odbc.fail_prefix[0] = '\0';
                *ret = fail(stmt, odbc.fail_state);
                return true;
        }
        if (writes_ledger(sql))
                odbc.ledger_written = true;
        return false;
}

SQLRETURN __wrap_SQLPrepare(SQLHSTMT stmt, SQLCHAR *text, SQLINTEGER len) {
        size_t slot = PREPARED_MAX;

        for (size_t i = 0; i < PREPARED_MAX && slot == PREPARED_MAX; i++)
                if (odbc.prepared[i].stmt == stmt)
                        slot = i;
        if (slot == PREPARED_MAX) {
                slot = odbc.next;
                odbc.next = (odbc.next + 1) % PREPARED_MAX;
        }
        odbc.prepared[slot].stmt = stmt;
        snprintf(odbc.prepared[slot].sql, sizeof odbc.prepared[slot].sql, "%.*s",
                 len == SQL_NTS ? PREFIX_MAX - 1 : (int) (len < PREFIX_MAX - 1 ? len : PREFIX_MAX - 1),
                 text ? (const char *) text : "");
        return __real_SQLPrepare(stmt, text, len);
}

SQLRETURN __wrap_SQLExecute(SQLHSTMT stmt) {
        SQLRETURN rc;

        if (statement_fails(stmt, prepared_sql(stmt), &rc))
                return rc;
        return __real_SQLExecute(stmt);
}

SQLRETURN __wrap_SQLExecDirect(SQLHSTMT stmt, SQLCHAR *text, SQLINTEGER len) {
        SQLRETURN rc;
        char sql[PREFIX_MAX];

        snprintf(sql, sizeof sql, "%.*s",
                 len == SQL_NTS ? PREFIX_MAX - 1 : (int) (len < PREFIX_MAX - 1 ? len : PREFIX_MAX - 1),
                 text ? (const char *) text : "");
        if (statement_fails(stmt, sql, &rc))
                return rc;
        return __real_SQLExecDirect(stmt, text, len);
}

SQLRETURN __wrap_SQLEndTran(SQLSMALLINT type, SQLHANDLE handle, SQLSMALLINT completion) {
        bool ledger = odbc.ledger_written;

        odbc.failed = NULL;
        odbc.ledger_written = false;
        if (odbc.down)
                return fail(handle, "08S01");
        if (completion == SQL_COMMIT && ledger && odbc.commit_armed) {
                odbc.commit_armed = false;
                (void) __real_SQLEndTran(type, handle,
                                         odbc.commit_how == FAKE_COMMIT_COMMITTED ? SQL_COMMIT : SQL_ROLLBACK);
                return fail(handle, "08S01");
        }
        return __real_SQLEndTran(type, handle, completion);
}

SQLRETURN __wrap_SQLDriverConnect(SQLHDBC dbc, SQLHWND window, SQLCHAR *in, SQLSMALLINT in_len, SQLCHAR *out,
                                  SQLSMALLINT out_max, SQLSMALLINT *out_len, SQLUSMALLINT completion) {
        odbc.failed = NULL;
        if (odbc.down)
                return fail(dbc, "08001");
        return __real_SQLDriverConnect(dbc, window, in, in_len, out, out_max, out_len, completion);
}

SQLRETURN __wrap_SQLGetDiagRec(SQLSMALLINT type, SQLHANDLE handle, SQLSMALLINT rec, SQLCHAR *state, SQLINTEGER *native,
                               SQLCHAR *text, SQLSMALLINT max, SQLSMALLINT *len) {
        if (!odbc.failed || handle != odbc.failed)
                return __real_SQLGetDiagRec(type, handle, rec, state, native, text, max, len);
        if (rec != 1)
                return SQL_NO_DATA;
        memcpy(state, odbc.failed_state, sizeof odbc.failed_state);
        if (native)
                *native = 0;
        int n = snprintf((char *) text, text && max > 0 ? (size_t) max : 0, "[fake] %s",
                         strcmp(odbc.failed_state, "08001") == 0   ? "cannot connect to the server"
                         : strcmp(odbc.failed_state, "08S01") == 0 ? "communication link failure"
                                                                   : "statement failed");
        if (len)
                *len = (SQLSMALLINT) n;
        return SQL_SUCCESS;
}
