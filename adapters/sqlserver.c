/* SPDX-License-Identifier: MIT */
/*
 * Microsoft SQL Server (2016 SP1 or later, Azure SQL), through unixODBC and
 * Microsoft ODBC Driver 18 for SQL Server (msodbcsql18, Microsoft's apt
 * repository: "Driver={ODBC Driver 18 for SQL Server};Server=tcp:host,1433;
 * Database=pas;UID=ersd;PWD=…").  NEVER RUN AGAINST A LIVE SERVER: its SQL
 * and error classification are unit-tested only (tests/unit/test_adapters.c;
 * docs/sqlserver.md says what that covers).
 *
 * What differs from the other vendors:
 *  - Types: NVARCHAR(n) / NVARCHAR(MAX) for text.  SQL Server's VARCHAR
 *    holds the database collation's code page (Latin1_General: Windows-1252),
 *    which cannot hold most of Unicode; NVARCHAR is UTF-16 whatever the
 *    collation, so 4-byte UTF-8 characters (emoji, rare CJK) arrive as
 *    surrogate pairs and come back whole.  Text that is not pure ASCII is
 *    bound as SQL_WVARCHAR (`national_text`): bound as SQL_VARCHAR it would
 *    travel as VARCHAR and be converted to the code page on the way.  ASCII
 *    values (UBRN, codes, ids) stay SQL_VARCHAR, so a lookup on a CHAR column
 *    keeps its index seek.  The driver reads our char data as UTF-8 (its
 *    default under the C or any UTF-8 locale).  VARBINARY(MAX) for the
 *    document parts.  CHAR(n) only holds ASCII (UBRN, UUID, SHA-256).
 *  - Idempotent DDL: no CREATE TABLE IF NOT EXISTS; each CREATE is guarded
 *    by IF OBJECT_ID(…) IS NULL (tables) or IF INDEXPROPERTY(…) IS NULL
 *    (indexes); CREATE OR ALTER VIEW (2016 SP1) keeps the view's grants.
 *  - Driver settings (connect_options): Encrypt=yes and
 *    TrustServerCertificate=no unless the operator set them; a string that
 *    turns verification off (Encrypt=no|optional|false,
 *    TrustServerCertificate=yes|true, in any occurrence: the driver may use
 *    the first) is refused.  APP=ersd names the session for DBAs
 *    (sys.dm_exec_sessions.program_name).
 *  - Session: XACT_ABORT ON (any error rolls the whole transaction back, as
 *    on every other vendor), LOCK_TIMEOUT 10000 (a blocked statement fails
 *    after 10 s with 1222, transient, instead of waiting for ever), READ
 *    COMMITTED, ANSI_WARNINGS ON (a value too long for its column is an
 *    error, not a silent truncation).  NOCOUNT stays OFF: the upserts read
 *    the row count, which NOCOUNT ON takes away.
 *  - Single writer: sp_getapplock with @LockOwner = 'Transaction' on
 *    "ersd:<database>:<schema>", without waiting: released by the commit or
 *    rollback.  Needs no grant beyond connecting (public).
 *  - Errors: the native error number tells (SQLSTATE is often 42000 or
 *    HY000 for very different things); see sqlserver_classify().
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "adapter.h"
#include "odbc.h"
#include "schema.h"

/* The dialect (schema.h). */
#define SQLSERVER_TYPE(t, n) SQLSERVER_TYPE_##t(n)
#define SQLSERVER_TYPE_BIGINT(n) "BIGINT"
#define SQLSERVER_TYPE_TEXT(n) "NVARCHAR(MAX)"
#define SQLSERVER_TYPE_VARCHAR(n) "NVARCHAR(" #n ")"
#define SQLSERVER_TYPE_IDENTITY(n) "BIGINT IDENTITY(1,1) NOT NULL PRIMARY KEY"
#define SQLSERVER_CREATE_TABLE(name, definition)                                                              \
        "IF OBJECT_ID(N'" name "', N'U') IS NULL\nCREATE TABLE " name " " definition
#define SQLSERVER_CREATE_INDEX(name, table, columns)                                                          \
        "IF INDEXPROPERTY(OBJECT_ID(N'" table "'), N'" name "', 'IndexID') IS NULL\nCREATE INDEX " name " ON " \
        table " " columns

/* Native error numbers (sys.messages) */
#define MSSQL_DEADLOCK_VICTIM 1205
#define MSSQL_LOCK_TIMEOUT 1222
#define MSSQL_LOCK_RESOURCES 1204
#define MSSQL_SNAPSHOT_CONFLICT 3960
#define MSSQL_OUT_OF_MEMORY 701
#define MSSQL_MEMORY_TIMEOUT 8645
#define MSSQL_FILEGROUP_FULL 1105
#define MSSQL_LOG_FULL 9002
#define MSSQL_DB_READ_ONLY 3906     /* an availability-group failover left us on a secondary */
#define MSSQL_AG_NOT_ACCESSIBLE 976 /* database not accessible on this replica */
#define MSSQL_AG_ROLE_CHANGE 983    /* replica role changing */
#define MSSQL_NO_PROCESS 233        /* no process is on the other end of the pipe */
#define MSSQL_TRANSPORT_ABORTED 10053
#define MSSQL_TRANSPORT_RESET 10054
#define MSSQL_TRANSPORT_TIMEOUT 10060
#define MSSQL_AZURE_RECONFIGURING 40197
#define MSSQL_AZURE_BUSY 40501
#define MSSQL_AZURE_UNAVAILABLE 40613
#define MSSQL_AZURE_THROTTLED 49918 /* 49918-49920: not enough resources to process the request */

#define SQLSERVER_LOCK_TIMEOUT_MS "10000"

/* The staging schema; keep identical to adapters/sql/sqlserver.sql (tests/unit/test_adapters.c compares them). */
static const char *const sqlserver_ddl[] = STAGING_SCHEMA_DDL(SQLSERVER_TYPE, "VARBINARY(MAX)", "",
                                                              SQLSERVER_CREATE_TABLE, SQLSERVER_CREATE_INDEX,
                                                              "CREATE OR ALTER VIEW");

static const char *const *sqlserver_schema(void) {
        return sqlserver_ddl;
}

/*
 * To version 4 (schema.h).  NEVER RUN AGAINST A LIVE SERVER (best effort,
 * docs/sqlserver.md).  One transaction (SQL Server's DDL is transactional).
 * ALTER COLUMN changes one column at a time and must restate NOT NULL; a
 * column in an index or with statistics on it cannot change its type: the
 * statistics SQL Server made itself on these tables are dropped first (it
 * makes them again), and the old UNIQUE constraint, whose name SQL Server
 * made up, is found in the catalog and dropped.  A step names the table it
 * needs (ers_retry is absent in an upgrade from version 1 or 2).
 */
#define SQLSERVER_TEXT(table, column) { table, NULL, "ALTER TABLE " table " ALTER COLUMN " column " NVARCHAR(MAX)", NULL },
#define SQLSERVER_STEPS_TO_V4                                                                               \
        STAGING_SCHEMA_STEPS_TO_V4_KEY(" ADD")                                                              \
        { NULL, NULL,                                                                                       \
          "DECLARE @sql NVARCHAR(MAX) = N''; "                                                              \
          "SELECT @sql = @sql + N'DROP STATISTICS ' + QUOTENAME(OBJECT_NAME(s.object_id)) + N'.' + QUOTENAME(s.name) + N'; ' " \
          "FROM sys.stats s WHERE s.auto_created = 1 AND s.object_id IN "                                   \
          "(OBJECT_ID(N'ers_document'), OBJECT_ID(N'ers_referral'), OBJECT_ID(N'ers_retry')); "             \
          "EXEC (@sql)",                                                                                    \
          NULL },                                                                                           \
        { NULL, NULL,                                                                                       \
          "DECLARE @name sysname; "                                                                         \
          "SELECT @name = kc.name FROM sys.key_constraints kc WHERE kc.type = 'UQ' "                        \
          "AND kc.parent_object_id = OBJECT_ID(N'ers_document') AND EXISTS (SELECT 1 FROM sys.index_columns ic " \
          "JOIN sys.columns c ON c.object_id = ic.object_id AND c.column_id = ic.column_id "                \
          "WHERE ic.object_id = kc.parent_object_id AND ic.index_id = kc.unique_index_id "                  \
          "AND c.name = N'attachment_id'); "                                                                \
          "IF @name IS NOT NULL EXEC (N'ALTER TABLE ers_document DROP CONSTRAINT ' + QUOTENAME(@name))",    \
          NULL },                                                                                           \
        { NULL, NULL, "ALTER TABLE ers_document ALTER COLUMN attachment_key CHAR(64) NOT NULL", NULL },     \
        { NULL, NULL, "ALTER TABLE ers_document ALTER COLUMN attachment_id NVARCHAR(MAX) NOT NULL", NULL }, \
        SQLSERVER_TEXT("ers_document", "title")                                                             \
        SQLSERVER_TEXT("ers_document", "content_type")                                                      \
        SQLSERVER_TEXT("ers_document", "availability")                                                      \
        SQLSERVER_TEXT("ers_document", "attached_by_user")                                                  \
        SQLSERVER_TEXT("ers_document", "attached_by_org")                                                   \
        SQLSERVER_TEXT("ers_document", "created")                                                           \
        { NULL, NULL,                                                                                       \
          "IF OBJECT_ID(N'ers_document_identity', N'UQ') IS NULL\n"                                         \
          "ALTER TABLE ers_document ADD CONSTRAINT ers_document_identity "                                  \
          "UNIQUE (ubrn, source_ubrn, kind, attachment_key, revision)",                                     \
          NULL },                                                                                           \
        SQLSERVER_TEXT("ers_referral", "nhs_number")                                                        \
        SQLSERVER_TEXT("ers_referral", "priority")                                                          \
        SQLSERVER_TEXT("ers_referral", "state")                                                             \
        SQLSERVER_TEXT("ers_referral", "state_reason")                                                      \
        SQLSERVER_TEXT("ers_referral", "specialty")                                                         \
        SQLSERVER_TEXT("ers_referral", "specialty_display")                                                 \
        SQLSERVER_TEXT("ers_referral", "service_id")                                                        \
        SQLSERVER_TEXT("ers_referral", "service_name")                                                      \
        SQLSERVER_TEXT("ers_referral", "referral_type")                                                     \
        SQLSERVER_TEXT("ers_referral", "pathway_start")                                                     \
        SQLSERVER_TEXT("ers_referral", "clinical_info_first_submitted")                                     \
        SQLSERVER_TEXT("ers_referral", "appointment_start")                                                 \
        SQLSERVER_TEXT("ers_referral", "appointment_end")                                                   \
        SQLSERVER_TEXT("ers_referral", "commissioning_org")                                                 \
        SQLSERVER_TEXT("ers_referral", "request_id")                                                        \
        SQLSERVER_TEXT("ers_referral", "status")                                                            \
        SQLSERVER_TEXT("ers_referral", "intent")                                                            \
        SQLSERVER_TEXT("ers_retry", "priority")                                                             \
        SQLSERVER_TEXT("ers_retry", "service_id")                                                           \
        SQLSERVER_TEXT("ers_retry", "service_name")                                                         \
        SQLSERVER_TEXT("ers_retry", "referral_type")

/* To version 5: the columns (ADD, without COLUMN).  NEVER RUN AGAINST A LIVE SERVER. */
#define SQLSERVER_STEPS_TO_V5 STAGING_SCHEMA_STEPS_TO_V5(SQLSERVER_TYPE, SCHEMA_ADD)

/* From version 1, 2, 3 or 4 (schema.h); CREATE OR ALTER VIEW then gives the view its version-5 form. */
static const struct schema_step sqlserver_upgrade_v1[] =
        STAGING_SCHEMA_UPGRADE(STAGING_SCHEMA_STEPS_TO_V2(SQLSERVER_TYPE, " ADD")
                               STAGING_SCHEMA_STEPS_TO_V3(SQLSERVER_TYPE, " ADD") SQLSERVER_STEPS_TO_V4
                               SQLSERVER_STEPS_TO_V5);
static const struct schema_step sqlserver_upgrade_v2[] = STAGING_SCHEMA_UPGRADE(
        STAGING_SCHEMA_STEPS_TO_V3(SQLSERVER_TYPE, " ADD") SQLSERVER_STEPS_TO_V4 SQLSERVER_STEPS_TO_V5);
static const struct schema_step sqlserver_upgrade_v3[] =
        STAGING_SCHEMA_UPGRADE(SQLSERVER_STEPS_TO_V4 SQLSERVER_STEPS_TO_V5);
static const struct schema_step sqlserver_upgrade_v4[] = STAGING_SCHEMA_UPGRADE(SQLSERVER_STEPS_TO_V5);

static const struct schema_step *sqlserver_upgrade(long long from) {
        return STAGING_SCHEMA_UPGRADE_FROM(from, sqlserver_upgrade_v1, sqlserver_upgrade_v2, sqlserver_upgrade_v3,
                                           sqlserver_upgrade_v4);
}

/* True when any occurrence of `key` in `connection` has one of the values in `bad`. */
static bool connstr_any(const char *connection, const char *key, const char *const *bad) {
        char value[32];

        for (const char *s = connection; (s = odbc_connstr_find(s, key, value, sizeof value));)
                for (size_t i = 0; bad[i]; i++)
                        if (strcasecmp(value, bad[i]) == 0)
                                return true;
        return false;
}

static int sqlserver_connect_options(const char *connection, char *ret, size_t n) {
        static const char *const encrypt_off[] = { "no", "false", "optional", NULL };
        static const char *const trust_any[] = { "yes", "true", NULL };
        int r;

        if (connstr_any(connection, "Encrypt", encrypt_off) ||
            connstr_any(connection, "TrustServerCertificate", trust_any))
                return -EPERM;
        r = odbc_connstr_append(connection, "Encrypt", "Encrypt=yes", ret, n);
        if (r >= 0)
                r = odbc_connstr_append(ret, "TrustServerCertificate", "TrustServerCertificate=no", ret, n);
        if (r >= 0)
                r = odbc_connstr_append(ret, "APP", "APP=ersd", ret, n);
        return r;
}

static int sqlserver_session(struct pas *p, const char *connection, struct errbuf *e) {
        (void) connection;
        return odbc_exec(p, "session settings",
                         "SET XACT_ABORT ON; SET LOCK_TIMEOUT " SQLSERVER_LOCK_TIMEOUT_MS "; "
                         "SET TRANSACTION ISOLATION LEVEL READ COMMITTED; SET ANSI_WARNINGS ON",
                         e);
}

static int sqlserver_classify(const char *sqlstate, long native, const char *message, bool in_commit) {
        (void) sqlstate, (void) message;

        switch (native) {
        case MSSQL_DEADLOCK_VICTIM:
        case MSSQL_LOCK_TIMEOUT:
        case MSSQL_LOCK_RESOURCES:
        case MSSQL_SNAPSHOT_CONFLICT:
        case MSSQL_OUT_OF_MEMORY:
        case MSSQL_MEMORY_TIMEOUT:
        case MSSQL_FILEGROUP_FULL:
        case MSSQL_LOG_FULL:
        case MSSQL_AZURE_BUSY:
        case MSSQL_AZURE_THROTTLED:
        case MSSQL_AZURE_THROTTLED + 1:
        case MSSQL_AZURE_THROTTLED + 2:
                return -EAGAIN; /* rolled back (XACT_ABORT); the next round tries again */
        case MSSQL_DB_READ_ONLY:
        case MSSQL_AG_NOT_ACCESSIBLE:
        case MSSQL_AG_ROLE_CHANGE:
        case MSSQL_NO_PROCESS:
        case MSSQL_TRANSPORT_ABORTED:
        case MSSQL_TRANSPORT_RESET:
        case MSSQL_TRANSPORT_TIMEOUT:
        case MSSQL_AZURE_RECONFIGURING:
        case MSSQL_AZURE_UNAVAILABLE:
                return in_commit ? -EINPROGRESS : -ENOTCONN; /* failover, link down: reconnect */
        default:
                return 0;
        }
}

static int sqlserver_lock_writer(struct pas *p, struct errbuf *e) {
        int64_t got = 0;
        int r;

        /* sp_getapplock answers 0 (granted) or 1 (granted after a wait), -1
         * (timed out: held elsewhere), -2 (cancelled), -3 (deadlock victim),
         * -999 (bad call).  NOCOUNT only around the call, so that its inner
         * statements add no row-count results before ours. */
        r = odbc_query_int(p, "take the writer lock",
                           "SET NOCOUNT ON; "
                           "DECLARE @resource NVARCHAR(255) = N'ersd:' + DB_NAME() + N':' + SCHEMA_NAME(); "
                           "DECLARE @result INT; "
                           "EXEC @result = sp_getapplock @Resource = @resource, @LockMode = 'Exclusive', "
                           "@LockOwner = 'Transaction', @LockTimeout = 0; "
                           "SET NOCOUNT OFF; SELECT @result",
                           &got, e);
        if (r < 0)
                return r;
        if (got == -1 || got == -3)
                return err_set(e, -EAGAIN, "another ersd holds this schema's writer lock (sp_getapplock %lld)",
                               (long long) got);
        if (got < 0)
                return err_set(e, -EIO, "sp_getapplock failed with %lld", (long long) got);
        return 0;
}

static const struct adapter_ops sqlserver_ops = {
        .schema = sqlserver_schema,
        .upgrade = sqlserver_upgrade,
        .environment = adapter_environment_default,
        .probe_options = adapter_connect_options_default,
        .connect_options = sqlserver_connect_options,
        .session = sqlserver_session,
        .classify = sqlserver_classify,
        .check_statement = adapter_check_statement_default,
        .lock_writer = sqlserver_lock_writer,
        .unlock_writer = adapter_unlock_writer_default,
};

const struct adapter adapter_sqlserver = {
        .name = "sqlserver",
        .dbms_name = "Microsoft SQL Server",
        .national_text = true,
        .ops = &sqlserver_ops,
};
