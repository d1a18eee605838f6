/* SPDX-License-Identifier: MIT */
/*
 * MariaDB (and MySQL), through unixODBC and MariaDB Connector/ODBC (Debian
 * odbc-mariadb: "Driver=MariaDB Unicode;Server=…;Port=3306;Database=pas;
 * UID=ersd;PWD=…").
 *
 * What differs from the other vendors:
 *  - Types: LONGBLOB for the document parts (BLOB stops at 64 KiB), LONGTEXT
 *    for text of any length (TEXT stops at 64 KiB, MEDIUMTEXT at 16 MiB); every
 *    table InnoDB (transactions) in utf8mb4 (MariaDB's "utf8" is 3-byte and
 *    refuses 4-byte UTF-8 such as emoji) with the binary collation, so that
 *    attachment ids and codes compare byte for byte as on the other vendors
 *    (the default collation would take "att-a" and "ATT-A" for one key).
 *    The foreign key is a table constraint: an inline column REFERENCES is
 *    silently ignored by MySQL.  CREATE INDEX IF NOT EXISTS is MariaDB only
 *    (MySQL 8 lacks it: create that index by hand there).
 *  - A document part travels in one packet: PAS_PART_MAX (1 MiB) stays well
 *    below max_allowed_packet (16 MiB by default).
 *  - Connection: CHARSET=utf8mb4 (the connector's default character set may
 *    be the 3-byte utf8), unless the operator set CHARSET.
 *  - Session: strict SQL mode (STRICT_ALL_TABLES): a value too long for its
 *    column is an error, not a silent truncation with a warning.
 *  - Single writer: GET_LOCK on a name derived from the database name,
 *    without waiting.  MariaDB's named locks belong to the session, not to
 *    the transaction: RELEASE_LOCK after each commit or rollback
 *    (unlock_writer), so that the lock lasts exactly as long as the
 *    transaction, as on PostgreSQL.
 *  - Errors: the native error code is what tells: 1213 (deadlock, SQLSTATE
 *    40001) and 1205 (lock wait timeout, reported as HY000), 1317 (query
 *    interrupted) are transient; 2006 / 2013 (server gone, connection lost)
 *    are a lost connection, or an unknown outcome during the commit.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapter.h"
#include "odbc.h"
#include "schema.h"

#define MARIADB_TABLE_OPTIONS " ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_bin"

#define ER_LOCK_WAIT_TIMEOUT 1205
#define ER_LOCK_DEADLOCK 1213
#define ER_QUERY_INTERRUPTED 1317
#define CR_SERVER_GONE_ERROR 2006
#define CR_SERVER_LOST 2013

/* The dialect (schema.h): MariaDB's TEXT stops at 64 KiB, MEDIUMTEXT at 16 MiB; LONGTEXT holds anything. */
#define MARIADB_TYPE(t, n) MARIADB_TYPE_##t(n)
#define MARIADB_TYPE_BIGINT(n) "BIGINT"
#define MARIADB_TYPE_TEXT(n) "LONGTEXT"
#define MARIADB_TYPE_VARCHAR(n) "VARCHAR(" #n ")"
#define MARIADB_TYPE_IDENTITY(n) "BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY"

/* The staging schema; keep identical to adapters/sql/mariadb.sql (tests/unit/test_pas.c compares them). */
static const char *const mariadb_ddl[] = STAGING_SCHEMA_DDL(MARIADB_TYPE, "LONGBLOB", MARIADB_TABLE_OPTIONS,
                                                            SCHEMA_CREATE_TABLE, SCHEMA_CREATE_INDEX,
                                                            "CREATE OR REPLACE VIEW");

static const char *const *mariadb_schema(void) {
        return mariadb_ddl;
}

/*
 * To version 4 (schema.h).  MariaDB commits each ALTER TABLE at once: every
 * step may run again after an upgrade stopped half-way.  The old UNIQUE
 * index is named after its first column ("ubrn"); it goes first, as a
 * LONGTEXT cannot be in an index.  MODIFY restates each column as a fresh
 * schema has it (the table's utf8mb4 and binary collation).  A step names
 * the table it needs (ers_retry, ers_audit are absent in an upgrade from
 * version 1 or 2).
 */
#define MARIADB_STEPS_TO_V4                                                                                 \
        STAGING_SCHEMA_STEPS_TO_V4_KEY(" ADD COLUMN")                                                       \
        { NULL, NULL, "ALTER TABLE ers_document DROP INDEX IF EXISTS ubrn", NULL },                         \
        { NULL, NULL,                                                                                       \
          "ALTER TABLE ers_document MODIFY attachment_id LONGTEXT NOT NULL, MODIFY title LONGTEXT, "        \
          "MODIFY content_type LONGTEXT, MODIFY availability LONGTEXT, MODIFY attached_by_user LONGTEXT, "  \
          "MODIFY attached_by_org LONGTEXT, MODIFY created LONGTEXT, MODIFY attachment_key CHAR(64) NOT NULL", \
          NULL },                                                                                           \
        { NULL, NULL,                                                                                       \
          "ALTER TABLE ers_document ADD CONSTRAINT ers_document_identity UNIQUE IF NOT EXISTS "             \
          "(ubrn, source_ubrn, kind, attachment_key, revision)",                                            \
          NULL },                                                                                           \
        { NULL, NULL,                                                                                       \
          "ALTER TABLE ers_referral MODIFY nhs_number LONGTEXT, MODIFY priority LONGTEXT, MODIFY state LONGTEXT, " \
          "MODIFY state_reason LONGTEXT, MODIFY state_comment LONGTEXT, MODIFY specialty LONGTEXT, "        \
          "MODIFY specialty_display LONGTEXT, MODIFY service_id LONGTEXT, MODIFY service_name LONGTEXT, "   \
          "MODIFY referral_type LONGTEXT, MODIFY pathway_start LONGTEXT, "                                  \
          "MODIFY clinical_info_first_submitted LONGTEXT, MODIFY appointment_start LONGTEXT, "              \
          "MODIFY appointment_end LONGTEXT, MODIFY commissioning_org LONGTEXT, MODIFY request_id LONGTEXT, " \
          "MODIFY status LONGTEXT, MODIFY intent LONGTEXT",                                                 \
          NULL },                                                                                           \
        { "ers_retry", NULL,                                                                                \
          "ALTER TABLE ers_retry MODIFY priority LONGTEXT, MODIFY service_id LONGTEXT, "                    \
          "MODIFY service_name LONGTEXT, MODIFY referral_type LONGTEXT",                                    \
          NULL },                                                                                           \
        { "ers_audit", NULL, "ALTER TABLE ers_audit MODIFY detail LONGTEXT, MODIFY documents LONGTEXT", NULL },

/* To version 5: the columns, each ALTER committed at once and skipped when
 * its column is there already; CREATE OR REPLACE VIEW gives the view its new
 * column and keeps its grants. */
#define MARIADB_STEPS_TO_V5 STAGING_SCHEMA_STEPS_TO_V5(MARIADB_TYPE, SCHEMA_ADD_COLUMN)

/* From version 1, 2, 3 or 4 (schema.h). */
static const struct schema_step mariadb_upgrade_v1[] =
        STAGING_SCHEMA_UPGRADE(STAGING_SCHEMA_STEPS_TO_V2(MARIADB_TYPE, " ADD COLUMN")
                               STAGING_SCHEMA_STEPS_TO_V3(MARIADB_TYPE, " ADD COLUMN") MARIADB_STEPS_TO_V4
                               MARIADB_STEPS_TO_V5);
static const struct schema_step mariadb_upgrade_v2[] = STAGING_SCHEMA_UPGRADE(
        STAGING_SCHEMA_STEPS_TO_V3(MARIADB_TYPE, " ADD COLUMN") MARIADB_STEPS_TO_V4 MARIADB_STEPS_TO_V5);
static const struct schema_step mariadb_upgrade_v3[] = STAGING_SCHEMA_UPGRADE(MARIADB_STEPS_TO_V4 MARIADB_STEPS_TO_V5);
static const struct schema_step mariadb_upgrade_v4[] = STAGING_SCHEMA_UPGRADE(MARIADB_STEPS_TO_V5);

static const struct schema_step *mariadb_upgrade(long long from) {
        return STAGING_SCHEMA_UPGRADE_FROM(from, mariadb_upgrade_v1, mariadb_upgrade_v2, mariadb_upgrade_v3,
                                           mariadb_upgrade_v4);
}

/* Connector/ODBC's OPTION bit that makes an UPDATE report the rows it matched. */
#define MARIADB_FLAG_FOUND_ROWS 2UL

/*
 * utf8mb4 unless the operator chose a character set, and always found rows:
 * the upserts are an UPDATE, then an INSERT when it matched no row, and
 * without FLAG_FOUND_ROWS an UPDATE that changes no value says 0 rows, so the
 * INSERT after it collides with the row there (23000).  The operator's other
 * OPTION flags are kept: the value is given again with the bit added (the
 * driver takes an attribute's last value).  A value that is not a number is
 * -EINVAL.
 */
static int mariadb_connect_options(const char *connection, char *ret, size_t n) {
        char value[32] = "", option[48], *end;
        unsigned long flags = 0;
        int r;

        if (odbc_connstr_find(connection, "OPTION", value, sizeof value)) {
                errno = 0;
                flags = strtoul(value, &end, 10);
                if (errno != 0 || end == value || *end != '\0' || value[0] == '-')
                        return -EINVAL;
        }
        r = odbc_connstr_append(connection, "CHARSET", "CHARSET=utf8mb4", ret, n);
        if (r < 0 || (flags & MARIADB_FLAG_FOUND_ROWS))
                return r;
        snprintf(option, sizeof option, "OPTION=%lu", flags | MARIADB_FLAG_FOUND_ROWS);
        return odbc_connstr_append(ret, NULL, option, ret, n);
}

static int mariadb_session(struct pas *p, const char *connection, struct errbuf *e) {
        (void) connection;
        return odbc_exec(p, "set strict SQL mode",
                         "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'STRICT_ALL_TABLES')",
                         e);
}

static int mariadb_classify(const char *sqlstate, long native, const char *message, bool in_commit) {
        (void) sqlstate, (void) message;

        switch (native) {
        case ER_LOCK_DEADLOCK:
        case ER_LOCK_WAIT_TIMEOUT:
        case ER_QUERY_INTERRUPTED:
                return -EAGAIN;
        case CR_SERVER_GONE_ERROR:
        case CR_SERVER_LOST:
                return in_commit ? -EINPROGRESS : -ENOTCONN;
        default:
                return 0;
        }
}

static int mariadb_lock_writer(struct pas *p, struct errbuf *e) {
        int64_t got = 0;
        int r;

        /* Ours already (IS_USED_LOCK names the holding session), else try
         * without waiting: 1 taken, 0 held elsewhere. */
        r = odbc_query_int(p, "take the writer lock",
                           "SELECT IF(IS_USED_LOCK(CONCAT('ersd:', DATABASE())) <=> CONNECTION_ID(), 1,"
                           " GET_LOCK(CONCAT('ersd:', DATABASE()), 0))",
                           &got, e);
        if (r < 0)
                return r;
        if (got != 1)
                return err_set(e, -EAGAIN, "another ersd holds this database's writer lock");
        return 0;
}

static void mariadb_unlock_writer(struct pas *p) {
        struct errbuf ignored = { "" };

        /* a lock that cannot be released here goes with the session */
        odbc_exec(p, "release the writer lock", "DO RELEASE_LOCK(CONCAT('ersd:', DATABASE()))", &ignored);
}

static const struct adapter_ops mariadb_ops = {
        .schema = mariadb_schema,
        .upgrade = mariadb_upgrade,
        .environment = adapter_environment_default,
        .probe_options = adapter_connect_options_default,
        .connect_options = mariadb_connect_options,
        .session = mariadb_session,
        .classify = mariadb_classify,
        .check_statement = adapter_check_statement_default,
        .lock_writer = mariadb_lock_writer,
        .unlock_writer = mariadb_unlock_writer,
};

const struct adapter adapter_mariadb = {
        .name = "mariadb",
        .dbms_name = "MariaDB|MySQL",
        .ops = &mariadb_ops,
};
