/* SPDX-License-Identifier: MIT */
/*
 * PostgreSQL, through unixODBC and psqlodbc (Debian odbc-postgresql:
 * "Driver=PostgreSQL Unicode;Server=…;Port=5432;Database=pas;UID=ersd;PWD=…").
 *
 * What differs from the other vendors:
 *  - Types: BYTEA for the document parts (bound as SQL_LONGVARBINARY, which
 *    psqlodbc maps to bytea only with ByteaAsLongVarBinary=1: otherwise it
 *    takes the value for a large-object OID), TEXT, BIGINT.  No
 *    "CREATE VIEW IF NOT EXISTS": CREATE OR REPLACE VIEW is idempotent.
 *  - Driver settings forced in the connection string, whatever the DSN or
 *    odbcinst.ini says (Debian's odbcinst entry sets CommLog=1):
 *      CommLog=0;Debug=0 — psqlodbc's logs (/tmp/psqlodbc_*.log, mylog_*)
 *        hold the whole wire protocol, bound values included: patient data.
 *        Appended last, so they win over the operator's own attribute
 *        (psqlodbc takes the last occurrence), and also added to the first,
 *        probing connection of adapter "auto".
 *      Protocol=7.4-1 — on an error psqlodbc rolls the whole transaction
 *        back instead of wrapping every statement in a SAVEPOINT (the
 *        "statement-level rollback" of 7.4-2), a round trip per statement
 *        that we never use: any failure rolls the referral back anyway.
 *      ByteaAsLongVarBinary=1 — see Types.
 *    The last two only when the operator did not set them.
 *  - Single writer: pg_try_advisory_xact_lock on a key derived from the
 *    schema name, released by the commit or rollback; never waits.
 *  - Errors: psqlodbc passes the server's SQLSTATE through.  Transient beyond
 *    the generic 40001/40P01: 55P03 (lock not available), 57014 (statement
 *    cancelled, e.g. statement_timeout), 53xxx (insufficient resources: out
 *    of connections, disk full); 57P0x (administrator shutdown, crash
 *    recovery) is a lost connection.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "adapter.h"
#include "odbc.h"
#include "schema.h"

/* The staging schema; keep identical to adapters/sql/postgresql.sql (tests/unit/test_pas.c compares them). */
static const char *const postgresql_ddl[] = STAGING_SCHEMA_DDL(SCHEMA_TYPE, "BYTEA", "", SCHEMA_CREATE_TABLE,
                                                                      SCHEMA_CREATE_INDEX, "CREATE OR REPLACE VIEW");

static const char *const *postgresql_schema(void) {
        return postgresql_ddl;
}

/*
 * To version 4 (schema.h).  PostgreSQL will not change the type of a column
 * a view uses: the view is dropped (its grants with it: docs/postgresql.md)
 * and created again by the DDL.  VARCHAR(n) to TEXT rewrites nothing.  The
 * old UNIQUE constraint has the name PostgreSQL gave it.  One transaction,
 * DDL included.  A step names the table it needs (ers_retry is absent in an
 * upgrade from version 1 or 2).
 */
#define POSTGRESQL_TEXT(column) "ALTER COLUMN " column " TYPE TEXT"
#define POSTGRESQL_STEPS_TO_V4                                                                              \
        { NULL, NULL, "DROP VIEW IF EXISTS ers_referral_inbox", NULL },                                     \
        STAGING_SCHEMA_STEPS_TO_V4_KEY(" ADD COLUMN")                                                       \
        { NULL, NULL,                                                                                       \
          "ALTER TABLE ers_document DROP CONSTRAINT IF EXISTS ers_document_ubrn_source_ubrn_attachment_id_revision_key", \
          NULL },                                                                                           \
        { NULL, NULL,                                                                                       \
          "ALTER TABLE ers_document ALTER COLUMN attachment_key SET NOT NULL, " POSTGRESQL_TEXT("attachment_id") ", " \
          POSTGRESQL_TEXT("title") ", " POSTGRESQL_TEXT("content_type") ", " POSTGRESQL_TEXT("availability") ", " \
          POSTGRESQL_TEXT("attached_by_user") ", " POSTGRESQL_TEXT("attached_by_org") ", " POSTGRESQL_TEXT("created") \
          ", ADD CONSTRAINT ers_document_identity UNIQUE (ubrn, source_ubrn, kind, attachment_key, revision)", \
          NULL },                                                                                           \
        { NULL, NULL,                                                                                       \
          "ALTER TABLE ers_referral " POSTGRESQL_TEXT("nhs_number") ", " POSTGRESQL_TEXT("priority") ", "   \
          POSTGRESQL_TEXT("state") ", " POSTGRESQL_TEXT("state_reason") ", " POSTGRESQL_TEXT("specialty") ", " \
          POSTGRESQL_TEXT("specialty_display") ", " POSTGRESQL_TEXT("service_id") ", "                      \
          POSTGRESQL_TEXT("service_name") ", " POSTGRESQL_TEXT("referral_type") ", "                        \
          POSTGRESQL_TEXT("pathway_start") ", " POSTGRESQL_TEXT("clinical_info_first_submitted") ", "       \
          POSTGRESQL_TEXT("appointment_start") ", " POSTGRESQL_TEXT("appointment_end") ", "                 \
          POSTGRESQL_TEXT("commissioning_org") ", " POSTGRESQL_TEXT("request_id") ", " POSTGRESQL_TEXT("status") \
          ", " POSTGRESQL_TEXT("intent"),                                                                   \
          NULL },                                                                                           \
        { "ers_retry", NULL,                                                                                \
          "ALTER TABLE ers_retry " POSTGRESQL_TEXT("priority") ", " POSTGRESQL_TEXT("service_id") ", "      \
          POSTGRESQL_TEXT("service_name") ", " POSTGRESQL_TEXT("referral_type"),                            \
          NULL },

/* To version 5: the columns; CREATE OR REPLACE VIEW appends the view's new
 * column and keeps its grants. */
#define POSTGRESQL_STEPS_TO_V5 STAGING_SCHEMA_STEPS_TO_V5(SCHEMA_TYPE, SCHEMA_ADD_COLUMN)

/* From version 1, 2, 3 or 4 (schema.h). */
static const struct schema_step postgresql_upgrade_v1[] =
        STAGING_SCHEMA_UPGRADE(STAGING_SCHEMA_STEPS_TO_V2(SCHEMA_TYPE, " ADD COLUMN")
                               STAGING_SCHEMA_STEPS_TO_V3(SCHEMA_TYPE, " ADD COLUMN") POSTGRESQL_STEPS_TO_V4
                               POSTGRESQL_STEPS_TO_V5);
static const struct schema_step postgresql_upgrade_v2[] = STAGING_SCHEMA_UPGRADE(
        STAGING_SCHEMA_STEPS_TO_V3(SCHEMA_TYPE, " ADD COLUMN") POSTGRESQL_STEPS_TO_V4 POSTGRESQL_STEPS_TO_V5);
static const struct schema_step postgresql_upgrade_v3[] =
        STAGING_SCHEMA_UPGRADE(POSTGRESQL_STEPS_TO_V4 POSTGRESQL_STEPS_TO_V5);
static const struct schema_step postgresql_upgrade_v4[] = STAGING_SCHEMA_UPGRADE(POSTGRESQL_STEPS_TO_V5);

static const struct schema_step *postgresql_upgrade(long long from) {
        return STAGING_SCHEMA_UPGRADE_FROM(from, postgresql_upgrade_v1, postgresql_upgrade_v2, postgresql_upgrade_v3,
                                           postgresql_upgrade_v4);
}

/* Driver logging off, appended last so that it wins over anything earlier. */
static int postgresql_probe_options(const char *connection, char *ret, size_t n) {
        return odbc_connstr_append(connection, NULL, "CommLog=0;Debug=0", ret, n);
}

static int postgresql_connect_options(const char *connection, char *ret, size_t n) {
        int r;

        r = odbc_connstr_append(connection, "Protocol", "Protocol=7.4-1", ret, n);
        if (r >= 0)
                r = odbc_connstr_append(ret, "ByteaAsLongVarBinary", "ByteaAsLongVarBinary=1", ret, n);
        if (r >= 0)
                r = odbc_connstr_append(ret, NULL, "CommLog=0;Debug=0", ret, n);
        return r;
}

static int postgresql_classify(const char *sqlstate, long native, const char *message, bool in_commit) {
        (void) native, (void) message;

        if (strcmp(sqlstate, "55P03") == 0 || strncmp(sqlstate, "53", 2) == 0)
                return -EAGAIN; /* lock not available; out of connections, memory or disk */
        if (strcmp(sqlstate, "57014") == 0)
                return in_commit ? -EINPROGRESS : -EAGAIN; /* cancelled (statement_timeout) */
        if (strncmp(sqlstate, "57P", 3) == 0)
                return in_commit ? -EINPROGRESS : -ENOTCONN; /* server shutting down or restarting */
        return 0;
}

static int postgresql_lock_writer(struct pas *p, struct errbuf *e) {
        int64_t got = 0;
        int r;

        /* One key per schema: two daemons on two schemas of one database do not contend. */
        r = odbc_query_int(p, "take the advisory lock",
                           "SELECT CASE WHEN pg_try_advisory_xact_lock(hashtext('ersd:' || current_schema()))"
                           " THEN 1 ELSE 0 END",
                           &got, e);
        if (r < 0)
                return r;
        if (got != 1)
                return err_set(e, -EAGAIN, "another ersd holds this schema's advisory lock");
        return 0;
}

static const struct adapter_ops postgresql_ops = {
        .schema = postgresql_schema,
        .upgrade = postgresql_upgrade,
        .environment = adapter_environment_default,
        .probe_options = postgresql_probe_options,
        .connect_options = postgresql_connect_options,
        .session = adapter_session_default,
        .classify = postgresql_classify,
        .check_statement = adapter_check_statement_default,
        .lock_writer = postgresql_lock_writer,
        .unlock_writer = adapter_unlock_writer_default,
};

const struct adapter adapter_postgresql = {
        .name = "postgresql",
        .dbms_name = "PostgreSQL",
        .ops = &postgresql_ops,
};
