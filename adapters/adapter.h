/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One database vendor, as the PAS target (pas.h) sees it.
 *
 * Everything the PAS target does is written once, over ODBC, in
 * adapters/pas_*.c on the plumbing of adapters/odbc.c.  An adapter holds ONLY
 * what differs between vendors, as a static descriptor pointing at a const
 * table of ops (the curl backend pattern):
 *
 *     adapters/<vendor>.c:   const struct adapter adapter_<vendor> = {
 *                                    .name = "…", .dbms_name = "…", .ops = &ops };
 *
 * and one line in the table of adapters in registry.c.  Ops are stateless: each
 * call gets the connected target (`struct pas *`) and may use the helpers in
 * odbc.h on it.  A slot an adapter does not need points at the matching
 * adapter_*_default function below; the core calls every slot without testing
 * for NULL.
 *
 * What is deliberately NOT an op, because it is written portably once:
 *  - Upserts are UPDATE, then INSERT when no row was updated, inside the
 *    caller's transaction.  That is only safe with a single writer per
 *    staging schema, which is what the daemon is (and what `lock_writer`
 *    will enforce where a vendor needs it); it spares us MERGE / ON CONFLICT /
 *    ON DUPLICATE KEY in five dialects.
 *  - Documents are written to the staging tables as ordered parts of at most
 *    PAS_PART_MAX bytes, each bound as one SQL_C_BINARY parameter: no vendor
 *    LOB API (locators, BFILE) is needed, and memory stays bounded by one
 *    part whatever the driver does with a bound value.  The one value sent
 *    whole is :content of the document mapping (database.mapping.document),
 *    whose statement is the trust's: it is bound data-at-execution and
 *    streamed from the spool file with ODBC's own SQLParamData/SQLPutData,
 *    in pieces of at most PAS_PART_MAX bytes (odbc.c, put_streams()), the
 *    same for every vendor; what the driver holds of it meanwhile is the
 *    driver's (docs/configuration.md).
 *  - Text is bound as SQL_C_CHAR UTF-8 with explicit lengths; integers as
 *    SQL_C_SBIGINT.
 *  - The generic SQLSTATE mapping (40001, 40P01, HY008, HYT00 → -EAGAIN;
 *    08007, 08S01 during commit → -EINPROGRESS; 08xxx → -ENOTCONN; else
 *    -EIO) is in odbc.c; an adapter only adds what its driver reports
 *    differently (`classify`).
 *
 * Settings come in two kinds: driver attributes added to the connection
 * string (`connect_options`: some behaviour, e.g. the SQLite driver's lock
 * wait, can only be set there) and SQL run on the open connection
 * (`session`).  With adapter "auto" the vendor is only known once connected:
 * pas_open() then connects again with the added attributes, if any.  An
 * attribute the operator wrote in the connection string wins, except where
 * the adapter says it forces one (psqlodbc's logging stays off).  What must
 * hold from the very first packet (driver logging off) goes into
 * `probe_options`, which "auto" applies for every known adapter to the first,
 * probing connection, before the vendor is known.
 */

#include <stdbool.h>
#include <stddef.h>

#include "../daemon/err.h"

struct pas;

/*
 * The staging schema, as an ordered NULL-terminated array of SQL statements
 * without a trailing ';'.  Each statement must be idempotent in the vendor's
 * dialect (CREATE TABLE IF NOT EXISTS, or a guarded block), must not contain
 * a '?' (drivers may take it for a parameter marker anywhere) nor end a line
 * with ';' (that ends a statement in the .sql file; a statement that needs
 * ';' inside keeps it mid-line), and may carry "--" comments for DBAs.  The
 * one exception is a PL/SQL block (Oracle): it starts with "BEGIN" or
 * "DECLARE", ends with "END;" and may end lines with ';', as PL/SQL does;
 * in the .sql file it is followed by a line holding only "/" (as SQL*Plus
 * wants) instead of a ';'.  A line holding only "GO" (sqlcmd's batch
 * separator, SQL Server) may follow any statement in the .sql file.
 * pas_init_schema() runs them in order inside its caller's transaction,
 * then writes the schema version row.  adapters/sql/<vendor>.sql holds the same
 * statements, each followed by ";" at the end of a line, with commentary
 * lines starting with "--" between them (tests/unit/test_pas.c checks the
 * two are identical).
 */
typedef const char *const *adapter_schema_fn(void);

/*
 * The steps that bring a schema of version `from` up to the one `schema`
 * creates, run by pas_init_schema() before the `schema` statements, in the
 * same transaction (struct schema_step, schema.h: a step naming a column
 * runs only when that column is absent).  NULL when there is no way up from
 * `from`.  Pure function.
 */
struct schema_step;
typedef const struct schema_step *adapter_upgrade_fn(long long from);

/*
 * Driver attributes for the connection string: copies `connection` into ret
 * (n bytes), adding "Key=value" attributes this vendor's driver needs and the
 * operator did not set (odbc_connstr_has()).  Pure function.  Returns 0,
 * -ENAMETOOLONG when ret is too small, or -EPERM when the operator's string
 * turns TLS certificate verification off (pas_open() refuses it: TLS is
 * always verified).  Never puts `connection` (it may hold a password) into
 * an error line.
 */
typedef int adapter_connect_options_fn(const char *connection, char *ret, size_t n);

/*
 * Driver attributes for the probing connection of adapter "auto", whose
 * driver is not known yet: same contract as connect_options, but applied for
 * every known adapter in turn, so each attribute added must be harmless to
 * every other vendor's driver (drivers ignore attributes they do not know).
 * For what must never happen even once, e.g. a driver log of the login.
 */
typedef adapter_connect_options_fn adapter_probe_options_fn;

/*
 * Environment variables the vendor's client library reads when it connects
 * (Oracle's NLS_LANG: the character set of the text we bind), set in the
 * process environment before the first connection; for adapter "auto", every
 * known adapter's before the probing connection, so each must be harmless
 * to the other vendors' drivers.  A variable the operator set wins unless
 * it cannot work: then -EINVAL with one line in `e` naming the variable (its
 * value is not a secret).  Not thread-safe (setenv): pas_open() runs before
 * any thread.
 */
typedef int adapter_environment_fn(struct errbuf *e);

/*
 * Session settings, applied once right after the connection is made and the
 * adapter chosen, while the connection is still in autocommit mode (some
 * settings, e.g. SQLite's journal mode, cannot change inside a transaction).
 * `connection` is the connection string in use (as configured, plus what
 * `connect_options` added), so that an option the operator set there wins
 * over our default; it must never be copied into an error message (it may
 * hold a password).  May block (it talks to the DBMS).
 * Returns 0 or a negative errno with one line in `e`; pas_open() fails with it.
 */
typedef int adapter_session_fn(struct pas *p, const char *connection, struct errbuf *e);

/*
 * Classifies a diagnostic record the driver returned: `sqlstate` is the
 * 5-character SQLSTATE, `native` the driver's native error code, `message` the
 * driver's text (never shown to anyone from here).  Returns -EAGAIN
 * (transient: roll back, try later), -ENOTCONN (connection lost), -EINPROGRESS
 * (commit outcome unknown), -EIO (permanent), or 0 for "no opinion": the
 * generic mapping in odbc.c then decides.  `in_commit` is true during
 * SQLEndTran(SQL_COMMIT).  Pure function: must not touch the connection.
 */
typedef int adapter_classify_fn(const char *sqlstate, long native, const char *message, bool in_commit);

/*
 * Has the DBMS judge a statement of the operator's that writes (a mapping,
 * ersd --check-config), without running it, beyond the prepare and describe
 * pas_set_mapping() does for every vendor: for a driver that prepares a write
 * only when it runs it (the SQLite driver: EXPLAIN it instead).  `sql` holds
 * '?' markers; nothing is bound or executed.  Returns 0, or the database's error
 * (SQLSTATE) with one line in `e`.
 */
typedef int adapter_check_statement_fn(struct pas *p, const char *sql, struct errbuf *e);

/*
 * Takes the single-writer lock for the transaction pas_begin() just opened
 * (autocommit is already off): e.g. a row lock or an application lock, so
 * that two daemons pointed at one schema by mistake cannot interleave
 * UPDATE-then-INSERT upserts.  Released by the commit or rollback that ends
 * the transaction, or, where the vendor only has session locks (MariaDB's
 * GET_LOCK), by `unlock_writer` right after it.  May block up to the vendor's
 * lock timeout.  Returns 0,
 * -EAGAIN when the lock is held elsewhere, or another negative errno, with
 * one line in `e`; pas_begin() then rolls back and returns it.
 */
typedef int adapter_lock_writer_fn(struct pas *p, struct errbuf *e);

/*
 * Releases what lock_writer took when the vendor's lock outlives the
 * transaction (a session lock).  Called after every commit or rollback that
 * ends a transaction pas_begin() opened, back in autocommit mode.  Never
 * fails from the caller's view: a lock it cannot release goes with the
 * connection.
 */
typedef void adapter_unlock_writer_fn(struct pas *p);

struct adapter_ops {
        adapter_schema_fn *schema;                   /* required: there is no default schema */
        adapter_upgrade_fn *upgrade;                 /* required: from version 1 at least */
        adapter_environment_fn *environment;         /* default: nothing to set */
        adapter_probe_options_fn *probe_options;     /* default: the string as configured */
        adapter_connect_options_fn *connect_options; /* default: the string as configured */
        adapter_session_fn *session;                 /* default: nothing to set */
        adapter_classify_fn *classify;               /* default: no opinion (generic mapping) */
        adapter_check_statement_fn *check_statement; /* default: the prepare and describe are enough */
        adapter_lock_writer_fn *lock_writer;         /* default: no lock (one daemon per schema) */
        adapter_unlock_writer_fn *unlock_writer;     /* default: nothing (the transaction's end frees it) */
};

struct adapter {
        const char *name;      /* the configuration's `adapter` value: "sqlite", … */
        const char *dbms_name; /* case-insensitive prefix of SQLGetInfo(SQL_DBMS_NAME) for "auto";
                                  alternatives separated by '|': "MariaDB|MySQL" */
        bool national_text;    /* bind text that is not pure ASCII as SQL_WVARCHAR (national text), not
                                  SQL_VARCHAR: for NVARCHAR columns, where a VARCHAR value would pass
                                  through a code page (SQL Server, Oracle); the driver converts our UTF-8 */
        const struct adapter_ops *ops;
};

/* The defaults for unused slots (defined in registry.c). */
adapter_environment_fn adapter_environment_default;
adapter_connect_options_fn adapter_connect_options_default;
adapter_session_fn adapter_session_default;
adapter_classify_fn adapter_classify_default;
adapter_check_statement_fn adapter_check_statement_default;
adapter_lock_writer_fn adapter_lock_writer_default;
adapter_unlock_writer_fn adapter_unlock_writer_default;

/* The adapters this build knows (one per adapters/<vendor>.c). */
extern const struct adapter adapter_sqlite;
extern const struct adapter adapter_postgresql;
extern const struct adapter adapter_mariadb;
extern const struct adapter adapter_sqlserver;
extern const struct adapter adapter_oracle;

/* "sqlite, postgresql, mariadb, sqlserver, oracle": for error lines. */
extern const char adapter_names[];

/* Looks an adapter up by name (exact, lower case); NULL when unknown. */
const struct adapter *adapter_by_name(const char *name);

/* Finds the adapter whose dbms_name prefixes `dbms_name`; NULL when none. */
const struct adapter *adapter_by_dbms(const char *dbms_name);
