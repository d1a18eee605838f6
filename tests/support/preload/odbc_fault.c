/* SPDX-License-Identifier: MIT */
/*
 * An LD_PRELOAD shim for the tests: makes one COMMIT of the process it is
 * loaded into end as a commit whose outcome is unknown, without a line of
 * ersd's own code knowing about it.  It wraps unixODBC's SQLEndTran and
 * SQLGetDiagRec (the real ones through dlsym(RTLD_NEXT)):
 *
 *   ERSD_FAULT_COMMIT=committed:N  the COMMIT of the Nth transaction that wrote
 *                                  the ledger (the Nth referral written) commits,
 *                                  then reports SQL_ERROR with SQLSTATE 08S01
 *                                  (the link failed before the answer came back);
 *   ERSD_FAULT_COMMIT=lost:N       that one rolls back instead, and reports the
 *                                  same: the client cannot tell the two apart.
 *
 * Only transactions that wrote ers_ledger are counted (seen through SQLPrepare
 * and SQLExecute); with ERSD_FAULT_TABLE=ers_outbox, only those that recorded
 * a write-back request's outcome (UPDATE ers_outbox SET state = ?: the commit
 * after e-RS answered, not the one marking it SENDING), so that the commits of other bookkeeping (worklist entries,
 * the budget, polls) do not move the fault to another referral.  The
 * diagnostic record of the failed call is the shim's until the next
 * SQLEndTran on that connection.  Counting is per process, from 1; ersd is
 * single-threaded.
 */
#include <dlfcn.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sql.h>
#include <sqlext.h>

static SQLHANDLE failed_dbc; /* the connection whose last SQLEndTran the shim failed */
static long commits;         /* commits of transactions that wrote the ledger, so far */
static bool ledger_written;  /* an INSERT or UPDATE of ers_ledger ran since the last SQLEndTran */
static SQLHSTMT ledger_stmts[64]; /* prepared statements that write ers_ledger (never freed: ersd keeps them) */
static size_t n_ledger_stmts;

SQLRETURN SQL_API SQLEndTran(SQLSMALLINT type, SQLHANDLE handle, SQLSMALLINT completion);
SQLRETURN SQL_API SQLPrepare(SQLHSTMT stmt, SQLCHAR *text, SQLINTEGER len);
SQLRETURN SQL_API SQLExecute(SQLHSTMT stmt);
SQLRETURN SQL_API SQLGetDiagRec(SQLSMALLINT type, SQLHANDLE handle, SQLSMALLINT rec, SQLCHAR *state,
                                SQLINTEGER *native, SQLCHAR *text, SQLSMALLINT max, SQLSMALLINT *len);

static bool fault_now(bool *ret_commit) {
        const char *spec = getenv("ERSD_FAULT_COMMIT");
        const char *colon = spec ? strchr(spec, ':') : NULL;

        if (!colon || strtol(colon + 1, NULL, 10) != commits)
                return false;
        *ret_commit = strncmp(spec, "committed:", 10) == 0;
        return true;
}

SQLRETURN SQL_API SQLPrepare(SQLHSTMT stmt, SQLCHAR *text, SQLINTEGER len) {
        SQLRETURN (*real)(SQLHSTMT, SQLCHAR *, SQLINTEGER) =
                (SQLRETURN(*)(SQLHSTMT, SQLCHAR *, SQLINTEGER)) dlsym(RTLD_NEXT, "SQLPrepare");
        const char *sql = (const char *) text;
        const char *table = getenv("ERSD_FAULT_TABLE");
        bool outbox = table && strcmp(table, "ers_outbox") == 0;

        if (sql && len == SQL_NTS && n_ledger_stmts < sizeof ledger_stmts / sizeof *ledger_stmts &&
            (outbox ? strncmp(sql, "UPDATE ers_outbox SET state = ?", 31) == 0
                    : (strncmp(sql, "INSERT INTO ers_ledger ", 23) == 0 || strncmp(sql, "UPDATE ers_ledger ", 18) == 0)))
                ledger_stmts[n_ledger_stmts++] = stmt;
        return real(stmt, text, len);
}

SQLRETURN SQL_API SQLExecute(SQLHSTMT stmt) {
        SQLRETURN (*real)(SQLHSTMT) = (SQLRETURN(*)(SQLHSTMT)) dlsym(RTLD_NEXT, "SQLExecute");

        for (size_t i = 0; i < n_ledger_stmts; i++)
                if (ledger_stmts[i] == stmt)
                        ledger_written = true;
        return real(stmt);
}

SQLRETURN SQL_API SQLEndTran(SQLSMALLINT type, SQLHANDLE handle, SQLSMALLINT completion) {
        SQLRETURN (*real)(SQLSMALLINT, SQLHANDLE, SQLSMALLINT) =
                (SQLRETURN(*)(SQLSMALLINT, SQLHANDLE, SQLSMALLINT)) dlsym(RTLD_NEXT, "SQLEndTran");
        bool commit = false;
        SQLRETURN rc;

        bool counted = ledger_written && completion == SQL_COMMIT;

        ledger_written = false;
        if (failed_dbc == handle)
                failed_dbc = NULL;
        if (!counted)
                return real(type, handle, completion);
        commits++;
        if (!fault_now(&commit))
                return real(type, handle, completion);
        rc = real(type, handle, commit ? SQL_COMMIT : SQL_ROLLBACK);
        if (!SQL_SUCCEEDED(rc))
                return rc;
        failed_dbc = handle;
        return SQL_ERROR;
}

SQLRETURN SQL_API SQLGetDiagRec(SQLSMALLINT type, SQLHANDLE handle, SQLSMALLINT rec, SQLCHAR *state,
                                SQLINTEGER *native, SQLCHAR *text, SQLSMALLINT max, SQLSMALLINT *len) {
        static const char message[] = "[odbc_fault] communication link failure during COMMIT (injected)";
        SQLRETURN (*real)(SQLSMALLINT, SQLHANDLE, SQLSMALLINT, SQLCHAR *, SQLINTEGER *, SQLCHAR *, SQLSMALLINT,
                          SQLSMALLINT *) =
                (SQLRETURN(*)(SQLSMALLINT, SQLHANDLE, SQLSMALLINT, SQLCHAR *, SQLINTEGER *, SQLCHAR *, SQLSMALLINT,
                              SQLSMALLINT *)) dlsym(RTLD_NEXT, "SQLGetDiagRec");

        if (type != SQL_HANDLE_DBC || handle != failed_dbc || !failed_dbc)
                return real(type, handle, rec, state, native, text, max, len);
        if (rec != 1)
                return SQL_NO_DATA;
        if (state)
                memcpy(state, "08S01", 6);
        if (native)
                *native = 0;
        if (text && max > 0) {
                size_t n = strlen(message) < (size_t) max - 1 ? strlen(message) : (size_t) max - 1;
                memcpy(text, message, n);
                text[n] = '\0';
        }
        if (len)
                *len = (SQLSMALLINT) strlen(message);
        return SQL_SUCCESS;
}
