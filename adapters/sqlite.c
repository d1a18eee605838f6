/* SPDX-License-Identifier: MIT */
/*
 * SQLite, through unixODBC and the SQLite3 ODBC driver (Debian
 * libsqliteodbc; "Driver=SQLite3;Database=/path/pas.db").
 *
 * What differs from the other vendors:
 *  - Types: SQLite keeps the declared types as written (they steer the
 *    driver's SQLDescribeCol and the column affinity); a PRIMARY KEY that is
 *    not an INTEGER PRIMARY KEY admits NULL in SQLite, hence the explicit
 *    NOT NULLs.  SQLite does not enforce VARCHAR(n) lengths.
 *  - Lock wait: only the driver's "Timeout=" attribute bounds it.  Measured
 *    with 0.9998: on SQLITE_BUSY the driver retries the statement until
 *    Timeout ms have passed since the first attempt, each attempt also
 *    running SQLite's busy handler (the driver's own, Timeout ms, unless a
 *    PRAGMA busy_timeout replaced it), so a statement gives up after about
 *    2 x Timeout; without the attribute that is 100 s, and Timeout=0 waits
 *    for ever.  We add Timeout=5000 (a lock held elsewhere becomes -EAGAIN
 *    after ~10 s) and no PRAGMA busy_timeout, which would only stack on top.
 *  - Session: WAL journal (readers such as the PAS or a DBA's browser do not
 *    block the daemon's commit, nor it them) and foreign keys enforced.  An
 *    operator's "Timeout=" or "JournalMode=" in the connection string wins
 *    (e.g. JournalMode=DELETE on a file system without shared memory).
 *  - Checking a statement of the operator's (a mapping): the driver prepares
 *    anything but a SELECT only when it runs it, so --check-config has SQLite
 *    compile "EXPLAIN <statement>" instead.
 *  - Errors: the driver reports every SQLite error as SQLSTATE HY000 with the
 *    SQLite result code as the native error (and at the end of the text, e.g.
 *    "database is locked (5)"); SQLITE_BUSY and SQLITE_LOCKED are transient.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "odbc.h"
#include "schema.h"

#define SQLITE_DRIVER_TIMEOUT "5000" /* ms: the driver's Timeout= attribute (see above) */

#define SQLITE_BUSY_ 5   /* SQLITE_BUSY: another connection holds the lock */
#define SQLITE_LOCKED_ 6 /* SQLITE_LOCKED: a conflict inside this connection's cache */

/* The dialect (schema.h): the portable types, and SQLite's own numbered key
 * (AUTOINCREMENT: a number is never used again, even after the last row is
 * deleted). */
#define SQLITE_TYPE(t, n) SQLITE_TYPE_##t(n)
#define SQLITE_TYPE_BIGINT(n) SCHEMA_TYPE_BIGINT(n)
#define SQLITE_TYPE_TEXT(n) SCHEMA_TYPE_TEXT(n)
#define SQLITE_TYPE_VARCHAR(n) "VARCHAR(" #n ")"
#define SQLITE_TYPE_IDENTITY(n) "INTEGER PRIMARY KEY AUTOINCREMENT"

/* The staging schema; keep identical to adapters/sql/sqlite.sql (tests/unit/test_pas.c compares them). */
static const char *const sqlite_ddl[] = STAGING_SCHEMA_DDL(SQLITE_TYPE, "BLOB", "", SCHEMA_CREATE_TABLE,
                                                                  SCHEMA_CREATE_INDEX, "CREATE VIEW IF NOT EXISTS");

static const char *const *sqlite_schema(void) {
        return sqlite_ddl;
}

/*
 * To version 4 (schema.h).  SQLite does not enforce a column's width, but a
 * table keeps the text of its CREATE statement, and its UNIQUE constraint,
 * for ever: the tables version 4 changes are rebuilt from the very
 * definitions a fresh schema has (copied aside, dropped, created, filled
 * back), so that a fresh and an upgraded schema are the same to the text
 * SQLite keeps.  ers_audit is the same in both.  Dropping ers_document
 * leaves its parts without their row until it is filled back: the foreign
 * key is checked at the commit (defer_foreign_keys, which the commit turns
 * off again).  A step names the table it needs: a version-3 table is absent
 * in an upgrade from version 1 or 2, and created as version 4 has it.
 */
#define SQLITE_REBUILD(name, definition)                                                                    \
        { name, NULL, "CREATE TABLE " name "_v3 AS SELECT * FROM " name, NULL },                            \
        { name, NULL, "DROP TABLE " name, NULL },                                                           \
        { name "_v3", NULL, SCHEMA_CREATE_TABLE(name, definition), NULL },                                  \
        { name "_v3", NULL, "INSERT INTO " name " SELECT * FROM " name "_v3", NULL },                        \
        { name "_v3", NULL, "DROP TABLE " name "_v3", NULL },

#define SQLITE_STEPS_TO_V4                                                                                  \
        STAGING_SCHEMA_STEPS_TO_V4_KEY(" ADD COLUMN")                                                       \
        { NULL, NULL, "DROP VIEW IF EXISTS ers_referral_inbox", NULL }, /* recreated by CREATE VIEW */      \
        { NULL, NULL, "PRAGMA defer_foreign_keys = ON", NULL },                                             \
        SQLITE_REBUILD("ers_referral", STAGING_TABLE_REFERRAL_V4(SQLITE_TYPE, ""))                          \
        SQLITE_REBUILD("ers_document", STAGING_TABLE_DOCUMENT_V4(SQLITE_TYPE, ""))                          \
        SQLITE_REBUILD("ers_retry", STAGING_TABLE_RETRY(SQLITE_TYPE, ""))

/* To version 5: the columns (ALTER TABLE … ADD COLUMN appends them, as a fresh
 * table has them last), and the view dropped for CREATE VIEW IF NOT EXISTS to
 * give it its new column. */
#define SQLITE_STEPS_TO_V5                                                                                  \
        STAGING_SCHEMA_STEPS_TO_V5(SQLITE_TYPE, SCHEMA_ADD_COLUMN)                                          \
        { NULL, NULL, "DROP VIEW IF EXISTS ers_referral_inbox", NULL },

/* From version 1, 2, 3 or 4 (schema.h). */
static const struct schema_step sqlite_upgrade_v1[] = STAGING_SCHEMA_UPGRADE(
        STAGING_SCHEMA_STEPS_TO_V2(SQLITE_TYPE, " ADD COLUMN") STAGING_SCHEMA_STEPS_TO_V3(SQLITE_TYPE, " ADD COLUMN")
        SQLITE_STEPS_TO_V4 SQLITE_STEPS_TO_V5);
static const struct schema_step sqlite_upgrade_v2[] = STAGING_SCHEMA_UPGRADE(
        STAGING_SCHEMA_STEPS_TO_V3(SQLITE_TYPE, " ADD COLUMN") SQLITE_STEPS_TO_V4 SQLITE_STEPS_TO_V5);
static const struct schema_step sqlite_upgrade_v3[] = STAGING_SCHEMA_UPGRADE(SQLITE_STEPS_TO_V4 SQLITE_STEPS_TO_V5);
static const struct schema_step sqlite_upgrade_v4[] = STAGING_SCHEMA_UPGRADE(SQLITE_STEPS_TO_V5);

static const struct schema_step *sqlite_upgrade(long long from) {
        return STAGING_SCHEMA_UPGRADE_FROM(from, sqlite_upgrade_v1, sqlite_upgrade_v2, sqlite_upgrade_v3,
                                           sqlite_upgrade_v4);
}

static int sqlite_connect_options(const char *connection, char *ret, size_t n) {
        return odbc_connstr_append(connection, "Timeout", "Timeout=" SQLITE_DRIVER_TIMEOUT, ret, n);
}

static int sqlite_session(struct pas *p, const char *connection, struct errbuf *e) {
        int r;

        r = odbc_exec(p, "enable foreign keys", "PRAGMA foreign_keys = ON", e);
        if (r < 0)
                return r;
        if (!odbc_connstr_has(connection, "JournalMode")) {
                /* Answers the mode now in force; a file system that cannot do
                 * WAL keeps the old one, which is still correct, only slower. */
                r = odbc_exec(p, "set WAL journal", "PRAGMA journal_mode = WAL", e);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int sqlite_classify(const char *sqlstate, long native, const char *message, bool in_commit) {
        (void) sqlstate, (void) in_commit;

        /* extended result codes (SQLITE_BUSY_SNAPSHOT = 517, …) keep the primary code in the low byte */
        switch (native & 0xff) {
        case SQLITE_BUSY_:
        case SQLITE_LOCKED_:
                return -EAGAIN;
        default:
                break;
        }
        if (native == 0 && message &&
            (strstr(message, "database is locked") || strstr(message, "database table is locked")))
                return -EAGAIN;
        return 0;
}

/* The driver prepares a statement that is not a SELECT only when it runs it:
 * EXPLAIN has SQLite compile it (tables, columns, syntax) without running it. */
static int sqlite_check_statement(struct pas *p, const char *sql, struct errbuf *e) {
        char *explain = NULL;
        int r;

        if (asprintf(&explain, "EXPLAIN %s", sql) < 0)
                return err_set(e, -ENOMEM, "out of memory");
        r = odbc_prepare_only(p, "check the statement", explain, e);
        free(explain);
        return r;
}

static const struct adapter_ops sqlite_ops = {
        .schema = sqlite_schema,
        .upgrade = sqlite_upgrade,
        .environment = adapter_environment_default,
        .probe_options = adapter_connect_options_default,
        .connect_options = sqlite_connect_options,
        .session = sqlite_session,
        .classify = sqlite_classify,
        .check_statement = sqlite_check_statement,
        .lock_writer = adapter_lock_writer_default,
        .unlock_writer = adapter_unlock_writer_default,
};

const struct adapter adapter_sqlite = {
        .name = "sqlite",
        .dbms_name = "SQLite",
        .ops = &sqlite_ops,
};
