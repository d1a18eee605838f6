/* SPDX-License-Identifier: MIT */
/*
 * The connection to the PAS and its transactions (pas.h): pas_open() with
 * adapter "auto" detection and the driver attributes each adapter adds,
 * pas_reconnect(), pas_close(); pas_begin() (which renews the writer's lease
 * inside the transaction and hands out the struct pas_tx every write takes),
 * pas_commit(), pas_rollback(); and what every write uses before it binds
 * (tx_pas(), the transaction's time, the UBRN check, a text of ours cut to
 * its column).
 *
 * Transactions: the connection is in autocommit mode outside pas_begin() …
 * pas_commit()/pas_rollback(), and in manual-commit mode inside.  So a read
 * between transactions (pas_ledger_get() for each worklist entry) never
 * leaves a transaction open: no SQLite WAL snapshot pinned for hours, no
 * PostgreSQL "idle in transaction" session holding back vacuum.
 *
 * Not here: the statements and their cache (odbc.c), what the transactions
 * write (pas_write.c and the other pas_*.c files).
 */
#include "pas.h"

#include <assert.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../daemon/util.h"
#include "adapter.h"
#include "odbc.h"
#include "pas_internal.h"

/* ---------------------------------------------------------------------- */
/* Connection.                                                             */

/*
 * After a failed connect: when the connection string names a database file
 * (Database=/absolute/path, as for SQLite), says in e whether its directory
 * is missing or not writable, the usual causes, which the SQLite driver
 * reports only as "connect failed".  Only the directory goes into the line,
 * never the rest of the connection string.
 */
static void explain_database_file(const char *connection, struct errbuf *e) {
        char dir[512];
        char *slash;

        if (!odbc_connstr_find(connection, "Database", dir, sizeof dir) || dir[0] != '/' ||
            strlen(dir) >= sizeof dir - 1)
                return;
        slash = strrchr(dir, '/');
        slash[slash == dir ? 1 : 0] = '\0';
        if (access(dir, F_OK) != 0)
                err_prefix(e, -ENOENT, "the directory of Database=, %s, does not exist", dir);
        else if (access(dir, W_OK | X_OK) != 0)
                err_prefix(e, -EACCES, "the directory of Database=, %s, is not writable by this user", dir);
}

static int get_info_text(struct pas *p, SQLUSMALLINT what, char *ret, size_t n) {
        SQLSMALLINT len = 0;

        if (!SQL_SUCCEEDED(SQLGetInfo(p->dbc, what, ret, (SQLSMALLINT) n, &len)))
                ret[0] = '\0';
        return 0;
}

/* Connects p->dbc with `connection` (which never reaches an error line). */
static int connect_dbc(struct pas *p, const struct adapter *a, const char *connection, struct errbuf *e) {
        SQLRETURN rc = SQLDriverConnect(p->dbc, NULL, (SQLCHAR *) connection, SQL_NTS, NULL, 0, NULL,
                                        SQL_DRIVER_NOPROMPT);

        if (!SQL_SUCCEEDED(rc)) {
                int r = diag(a, SQL_HANDLE_DBC, p->dbc, false, "connect", e);
                explain_database_file(connection, e);
                return r;
        }
        p->connected = true;
        return 0;
}

/* The configured connection string with the adapter's driver attributes
 * added; caller frees *ret. */
static int connection_for(const struct adapter *a, const char *connection, char **ret, struct errbuf *e) {
        size_t n = strlen(connection) + 256;
        char *s = malloc(n);
        int r;

        if (!s) {
                err_set(e, -ENOMEM, "out of memory");
                return -ENOMEM;
        }
        r = a->ops->connect_options(connection, s, n);
        if (r < 0) {
                free(s);
                if (r == -EPERM)
                        err_set(e, r, "%s: the connection string turns TLS certificate verification off; ersd "
                                      "always verifies it (docs/%s.md)", a->name, a->name);
                else if (r == -EINVAL)
                        err_set(e, r, "%s: the connection string holds a driver attribute ersd cannot read "
                                      "(OPTION must be a number; docs/%s.md)", a->name, a->name);
                else
                        err_set(e, r, "%s: cannot add the driver attributes to the connection string", a->name);
                return r;
        }
        *ret = s;
        return 0;
}

/* The connection string for the probing connection of adapter "auto": every
 * adapter's probe attributes added in turn; caller frees *ret. */
static int connection_probe(const char *connection, char **ret, struct errbuf *e) {
        size_t n = strlen(connection) + 256;
        char *s = malloc(n);
        int r = 0;

        if (!s)
                return err_set(e, -ENOMEM, "out of memory");
        memcpy(s, connection, strlen(connection) + 1);
        for (size_t i = 0; r >= 0 && i < n_adapters; i++)
                r = adapters[i]->ops->probe_options(s, s, n);
        if (r < 0) {
                free(s);
                return err_set(e, r, "cannot add the driver attributes to the connection string");
        }
        *ret = s;
        return 0;
}

int pas_open(const char *connection, const char *adapter, struct pas **ret, struct errbuf *e) {
        struct pas *p = NULL;
        const struct adapter *a = NULL;
        char name[64] = "", version[64] = "", *amended = NULL, *probe = NULL;
        SQLUSMALLINT commit_cb = 0, rollback_cb = 0, txn = 0;
        SQLRETURN rc;
        int r;

        if (!connection || !*connection)
                return err_set(e, -EINVAL, "no database connection string");
        if (adapter && strcmp(adapter, "auto") != 0) {
                a = adapter_by_name(adapter);
                if (!a)
                        return err_set(e, -EINVAL, "unknown database adapter \"%.32s\" (known: auto, %s)",
                                       adapter, adapter_names);
        }

        p = calloc(1, sizeof *p);
        if (!p)
                return err_set(e, -ENOMEM, "out of memory");
        p->adapter = a;

        rc = SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &p->env);
        if (!SQL_SUCCEEDED(rc)) {
                p->env = SQL_NULL_HENV;
                r = err_set(e, -ENOMEM, "cannot allocate an ODBC environment");
                goto fail;
        }
        rc = SQLSetEnvAttr(p->env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER) SQL_OV_ODBC3, 0);
        if (!SQL_SUCCEEDED(rc)) {
                r = diag(NULL, SQL_HANDLE_ENV, p->env, false, "select ODBC 3", e);
                goto fail;
        }
        rc = SQLAllocHandle(SQL_HANDLE_DBC, p->env, &p->dbc);
        if (!SQL_SUCCEEDED(rc)) {
                p->dbc = SQL_NULL_HDBC;
                r = diag(NULL, SQL_HANDLE_ENV, p->env, false, "allocate an ODBC connection", e);
                goto fail;
        }

        /* The client libraries' environment, before any connection loads them:
         * the adapter's, or, before the vendor is known, every adapter's (what
         * one refuses is judged once the vendor is known, below). */
        if (a)
                r = a->ops->environment(e);
        else {
                for (size_t i = 0; i < n_adapters; i++) {
                        struct errbuf ignored = { { 0 } };
                        (void) adapters[i]->ops->environment(&ignored);
                }
                r = 0;
        }
        if (r < 0)
                goto fail;
        if (a)
                r = connection_for(a, connection, &amended, e);
        else
                r = connection_probe(connection, &amended, e);
        if (r < 0)
                goto fail;
        r = connect_dbc(p, a, amended, e);
        if (r < 0)
                goto fail;

        get_info_text(p, SQL_DBMS_NAME, name, sizeof name);
        get_info_text(p, SQL_DBMS_VER, version, sizeof version);
        snprintf(p->dbms, sizeof p->dbms, "%s %s", name[0] ? name : "unknown DBMS", version);
        if (!a) {
                a = adapter_by_dbms(name);
                if (!a) {
                        r = err_set(e, -ENOTSUP,
                                    "no adapter for DBMS \"%.40s\" (known: %s); set the adapter explicitly",
                                    name, adapter_names);
                        goto fail;
                }
                p->adapter = a;
                r = a->ops->environment(e);
                if (r < 0)
                        goto fail;
                /* Now that the vendor is known: connect again if its driver needs other attributes. */
                probe = amended;
                amended = NULL;
                r = connection_for(a, connection, &amended, e);
                if (r < 0)
                        goto fail;
                if (strcmp(amended, probe) != 0) {
                        /* The new connection first, then the probe closed: psqlodbc
                         * falls back to odbcinst.ini's CommLog when its last
                         * connection closes, and would log that disconnect. */
                        SQLHDBC probe_dbc = p->dbc;

                        rc = SQLAllocHandle(SQL_HANDLE_DBC, p->env, &p->dbc);
                        if (!SQL_SUCCEEDED(rc)) {
                                p->dbc = probe_dbc;
                                r = diag(NULL, SQL_HANDLE_ENV, p->env, false, "allocate an ODBC connection", e);
                                goto fail;
                        }
                        p->connected = false;
                        r = connect_dbc(p, a, amended, e);
                        SQLDisconnect(probe_dbc);
                        SQLFreeHandle(SQL_HANDLE_DBC, probe_dbc);
                        if (r < 0)
                                goto fail;
                }
        }

        if (!SQL_SUCCEEDED(SQLGetInfo(p->dbc, SQL_TXN_CAPABLE, &txn, sizeof txn, NULL)) || txn == SQL_TC_NONE) {
                r = err_set(e, -ENOTSUP, "%s: the driver does not support transactions", p->dbms);
                goto fail;
        }
        if (SQL_SUCCEEDED(SQLGetInfo(p->dbc, SQL_CURSOR_COMMIT_BEHAVIOR, &commit_cb, sizeof commit_cb, NULL)) &&
            SQL_SUCCEEDED(SQLGetInfo(p->dbc, SQL_CURSOR_ROLLBACK_BEHAVIOR, &rollback_cb, sizeof rollback_cb,
                                     NULL)))
                p->keep_stmts = commit_cb != SQL_CB_DELETE && rollback_cb != SQL_CB_DELETE;

        rc = SQLSetConnectAttr(p->dbc, SQL_ATTR_AUTOCOMMIT, (SQLPOINTER) SQL_AUTOCOMMIT_ON, 0);
        if (!SQL_SUCCEEDED(rc)) {
                r = diag_dbc(p, false, "set autocommit", e);
                goto fail;
        }
        r = a->ops->session(p, amended, e);
        if (r < 0) {
                err_prefix(e, r, "%s session settings", a->name);
                goto fail;
        }
        p->connection = amended; /* kept for pas_reconnect() */
        free(probe);
        *ret = p;
        return 0;
fail:
        free(amended);
        free(probe);
        pas_close(p);
        return r;
}

static void end_tx(struct pas *p, SQLSMALLINT how) {
        /* A transaction that did not end cleanly leaves the driver's idea of it in doubt (the
         * SQLite driver, after a COMMIT that failed for a full disk, runs the next "transaction"
         * in autocommit, statement by statement): the connection is not used again as it is. */
        if (!SQL_SUCCEEDED(SQLEndTran(SQL_HANDLE_DBC, p->dbc, how)))
                p->lost = true;
        SQLSetConnectAttr(p->dbc, SQL_ATTR_AUTOCOMMIT, (SQLPOINTER) SQL_AUTOCOMMIT_ON, 0);
        p->in_tx = false;
        p->adapter->ops->unlock_writer(p);
        if (!p->keep_stmts)
                stmt_drop_all(p);
}

void pas_close(struct pas *p) {
        if (!p)
                return;
        if (p->in_tx)
                end_tx(p, SQL_ROLLBACK);
        stmt_drop_all(p);
        if (p->connected)
                SQLDisconnect(p->dbc);
        if (p->dbc != SQL_NULL_HDBC)
                SQLFreeHandle(SQL_HANDLE_DBC, p->dbc);
        if (p->env != SQL_NULL_HENV)
                SQLFreeHandle(SQL_HANDLE_ENV, p->env);
        free(p->part);
        free(p->lookup_sql);
        if (p->connection) {
                explicit_bzero(p->connection, strlen(p->connection));
                free(p->connection);
        }
        for (size_t k = 0; k < PAS_MAP_KINDS_; k++)
                pas_map_sql_free(&p->map[k]);
        free(p);
}

bool pas_connection_lost(const struct pas *p) {
        return p->lost;
}

int pas_reconnect(struct pas *p, struct errbuf *e) {
        SQLRETURN rc;
        int r;

        /* Whatever the old connection held is gone with it: an open
         * transaction (rolled back by the server), the prepared statements,
         * a session lock. */
        p->in_tx = false;
        stmt_drop_all(p);
        if (p->connected)
                SQLDisconnect(p->dbc);
        p->connected = false;
        p->lost = true;
        if (p->dbc != SQL_NULL_HDBC)
                SQLFreeHandle(SQL_HANDLE_DBC, p->dbc);
        p->dbc = SQL_NULL_HDBC;
        rc = SQLAllocHandle(SQL_HANDLE_DBC, p->env, &p->dbc);
        if (!SQL_SUCCEEDED(rc)) {
                p->dbc = SQL_NULL_HDBC;
                return err_set(e, -ENOMEM, "allocate an ODBC connection");
        }
        r = connect_dbc(p, p->adapter, p->connection, e);
        if (r < 0)
                return r;
        rc = SQLSetConnectAttr(p->dbc, SQL_ATTR_AUTOCOMMIT, (SQLPOINTER) SQL_AUTOCOMMIT_ON, 0);
        if (!SQL_SUCCEEDED(rc))
                return diag_dbc(p, false, "set autocommit", e);
        r = p->adapter->ops->session(p, p->connection, e);
        if (r < 0)
                return err_prefix(e, r, "%s session settings", p->adapter->name);
        p->lost = false;
        return 0;
}

const char *pas_adapter_name(const struct pas *p) {
        return p->adapter->name;
}

const char *pas_dbms(const struct pas *p) {
        return p->dbms;
}

uint64_t pas_statements(const struct pas *p) {
        return p->statements;
}

/* ---------------------------------------------------------------------- */
/* Transactions.                                                           */

int pas_begin(struct pas *p, struct pas_tx **ret, struct errbuf *e) {
        SQLRETURN rc;
        int r;

        *ret = NULL;
        if (p->in_tx)
                return err_set(e, -EINVAL, "begin: a transaction is already open");
        p->put_ubrn[0] = '\0'; /* pas_put_mapped_referral() pairs with a pas_put_referral() of this transaction */
        p->fresh_ubrn[0] = '\0'; /* and pas_referral_fresh() holds for this transaction only */
        now_utc_iso(p->tx_time);
        rc = SQLSetConnectAttr(p->dbc, SQL_ATTR_AUTOCOMMIT, (SQLPOINTER) SQL_AUTOCOMMIT_OFF, 0);
        if (!SQL_SUCCEEDED(rc))
                return diag_dbc(p, false, "begin", e);
        p->in_tx = true;
        r = p->adapter->ops->lock_writer(p, e);
        if (r < 0) {
                end_tx(p, SQL_ROLLBACK);
                return err_prefix(e, r, "begin: single-writer lock");
        }
        if (p->lease_name[0]) {
                /* Renewed inside the transaction: its row lock holds a takeover
                 * off until the commit, and a lease lost meanwhile writes nothing. */
                r = lease_renew(p, p->tx_time, e);
                if (r < 0) {
                        end_tx(p, SQL_ROLLBACK);
                        return err_prefix(e, r, "begin");
                }
        }
        p->tx.p = p;
        *ret = &p->tx;
        return 0;
}

int pas_commit(struct pas_tx *tx, struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        SQLRETURN rc;
        int r;

        rc = SQLEndTran(SQL_HANDLE_DBC, p->dbc, SQL_COMMIT);
        if (!SQL_SUCCEEDED(rc)) {
                r = diag_dbc(p, true, "commit", e);
                end_tx(p, SQL_ROLLBACK); /* closes the transaction whatever happened */
                p->lost = true;          /* and the connection is connected again before its next use */
                return r;
        }
        /* Committed.  Back to autocommit; a failure here is the next call's to report. */
        SQLSetConnectAttr(p->dbc, SQL_ATTR_AUTOCOMMIT, (SQLPOINTER) SQL_AUTOCOMMIT_ON, 0);
        p->in_tx = false;
        p->adapter->ops->unlock_writer(p);
        if (!p->keep_stmts)
                stmt_drop_all(p);
        return 0;
}

void pas_rollback(struct pas_tx *tx) {
        /* Not tx_pas(): the transaction may have ended without its caller (a
         * connection dropped by pas_reconnect()), and rolling back what is
         * over is a no-op. */
        if (tx && tx->p->in_tx)
                end_tx(tx->p, SQL_ROLLBACK);
}

struct pas *tx_pas(struct pas_tx *tx) {
        assert(tx && tx->p && tx->p->in_tx && tx == &tx->p->tx);
        return tx->p;
}

const char *tx_time(const struct pas_tx *tx) {
        return tx->p->tx_time;
}

void pas_referral_fresh(struct pas_tx *tx, const char *ubrn) {
        struct pas *p = tx_pas(tx);

        if (ubrn_valid(ubrn))
                memcpy(p->fresh_ubrn, ubrn, sizeof p->fresh_ubrn);
}

bool is_fresh(const struct pas_tx *tx, const char *ubrn) {
        const struct pas *p = tx->p;

        return p->fresh_ubrn[0] && ubrn && strcmp(p->fresh_ubrn, ubrn) == 0;
}

/* ---------------------------------------------------------------------- */
/* What every write checks.                                                */

int check_ubrn(const char *ubrn, const char *what, struct errbuf *e) {
        if (!ubrn || !ubrn_valid(ubrn))
                return err_set(e, -EINVAL, "%s: not a UBRN (12 digits)", what);
        return 0;
}

const char *bounded(const char *s, size_t max, char *ret) {
        size_t whole, len;

        if (!s)
                return s;
        whole = strlen(s);
        len = whole < max ? whole : max;
        len -= utf8_cut(s, len);
        if (len == whole)
                return s;
        memcpy(ret, s, len);
        ret[len] = '\0';
        return ret;
}
