/* SPDX-License-Identifier: MIT */
/*
 * Oracle Database (12.2 or later), through unixODBC and the Oracle Instant
 * Client ODBC driver (libsqora, from Oracle: "Driver=Oracle 21 ODBC driver;
 * DBQ=//host:1521/PASPDB;UID=ersd;PWD=…").  NEVER RUN AGAINST A LIVE SERVER:
 * its SQL and error classification are unit-tested only
 * (tests/unit/test_adapters.c; docs/oracle.md says what that covers).
 *
 * What differs from the other vendors:
 *  - Types: NVARCHAR2(n) / NCLOB for text, whatever the database character
 *    set: the national character set (AL16UTF16, the default) holds every
 *    Unicode character, 4-byte UTF-8 ones as surrogate pairs, and counts n
 *    in characters.  (VARCHAR2 would hold them only in an AL32UTF8 database,
 *    and counts bytes unless declared n CHAR.)  Text that is not pure ASCII
 *    is bound as SQL_WVARCHAR (`national_text`), so that it travels as
 *    national text.  NUMBER(19) for BIGINT (Oracle has no BIGINT), BLOB for
 *    the document parts.  Oracle stores '' as NULL: an empty text value reads
 *    back as NULL (ersd never writes '' into a NOT NULL column).
 *  - Client character set: the driver converts our char data from the
 *    character set NLS_LANG names, US7ASCII when unset (every byte above 127
 *    lost).  environment() sets NLS_LANG=AMERICAN_AMERICA.AL32UTF8 when the
 *    environment has none, and refuses one that names another set.
 *  - Idempotent DDL: CREATE TABLE IF NOT EXISTS is 23c only: each CREATE is
 *    a PL/SQL block running it through EXECUTE IMMEDIATE (a q'[…]' literal,
 *    so the quotes inside need no doubling) that ignores ORA-00955 (name
 *    already used) and, for the index, ORA-01408 (those columns already
 *    indexed).  CREATE OR REPLACE VIEW keeps the view's grants.  Oracle
 *    commits each DDL statement at once: --init-db is not one transaction
 *    here (run it again after a failure).  Unquoted names are stored upper
 *    case (ERS_REFERRAL); odbc.c looks for both.
 *  - Driver settings (connect_options): LOB=T (LOB writes on: the parts are
 *    BLOBs), unless the operator set it.
 *  - Session: READ COMMITTED, said explicitly.
 *  - Single writer: a row lock, SELECT … FOR UPDATE NOWAIT on the one row of
 *    ers_schema_version, opened as a cursor in a PL/SQL block (the table
 *    does not exist yet during the first --init-db: ORA-00942 is then
 *    ignored).  Released by the commit or rollback; held elsewhere it fails
 *    at once with ORA-00054, transient.  Needs no grant beyond SELECT on the
 *    table (DBMS_LOCK would need EXECUTE ON SYS.DBMS_LOCK).
 *  - Errors: the ORA- number is the native error; see oracle_classify().
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapter.h"
#include "odbc.h"
#include "schema.h"

/* The dialect (schema.h). */
#define ORACLE_TYPE(t, n) ORACLE_TYPE_##t(n)
#define ORACLE_TYPE_BIGINT(n) "NUMBER(19)"
#define ORACLE_TYPE_TEXT(n) "NCLOB"
#define ORACLE_TYPE_VARCHAR(n) "NVARCHAR2(" #n ")"
#define ORACLE_TYPE_IDENTITY(n) "NUMBER(19) GENERATED ALWAYS AS IDENTITY PRIMARY KEY" /* 12c and later */
/* Ends a block started with "BEGIN EXECUTE IMMEDIATE q'[", ignoring the errors `codes`. */
#define ORACLE_IGNORING(codes) "]';\nEXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (" codes ") THEN RAISE; END IF;\nEND;"
#define ORACLE_CREATE_TABLE(name, definition)                                                                 \
        "BEGIN EXECUTE IMMEDIATE q'[CREATE TABLE " name " " definition ORACLE_IGNORING("-955")
#define ORACLE_CREATE_INDEX(name, table, columns)                                                             \
        "BEGIN EXECUTE IMMEDIATE q'[CREATE INDEX " name " ON " table " " columns ORACLE_IGNORING("-955, -1408")

#define ORACLE_NLS_LANG "AMERICAN_AMERICA.AL32UTF8"

/* ORA- numbers (the native error) */
#define ORA_RESOURCE_BUSY 54          /* NOWAIT, or a DDL lock */
#define ORA_DEADLOCK 60
#define ORA_SESSION_KILLED 28
#define ORA_NOT_LOGGED_ON 1012
#define ORA_CANCELLED 1013            /* user requested cancel: a query timeout */
#define ORA_INITIALIZING 1033         /* startup or shutdown in progress */
#define ORA_NOT_AVAILABLE 1034
#define ORA_SHUTTING_DOWN 1089
#define ORA_SNAPSHOT_TOO_OLD 1555
#define ORA_CANNOT_EXTEND_TABLE 1653  /* 1653, 1654: tablespace full */
#define ORA_CANNOT_EXTEND_INDEX 1654
#define ORA_CANNOT_EXTEND_LOB 1691
#define ORA_END_OF_CHANNEL 3113       /* end-of-file on communication channel */
#define ORA_NOT_CONNECTED 3114
#define ORA_LOST_CONTACT 3135
#define ORA_CANNOT_SERIALIZE 8177
#define ORA_TX_MUST_ROLL_BACK 25402   /* after a failover: the commit's outcome is unknown */
#define ORA_TX_STATUS_UNKNOWN 25405
#define ORA_CANNOT_REPLAY 25408
#define ORA_BUSY_TIMEOUT 30006        /* resource busy, WAIT timeout expired */
#define ORA_TNS_TIMEOUT 12170
#define ORA_TNS_NO_SERVICE 12514
#define ORA_TNS_NO_LISTENER 12541
#define ORA_TNS_EOF 12537

/* The staging schema; keep identical to adapters/sql/oracle.sql (tests/unit/test_adapters.c compares them). */
static const char *const oracle_ddl[] = STAGING_SCHEMA_DDL(ORACLE_TYPE, "BLOB", "", ORACLE_CREATE_TABLE,
                                                           ORACLE_CREATE_INDEX, "CREATE OR REPLACE VIEW");

static const char *const *oracle_schema(void) {
        return oracle_ddl;
}

/*
 * To version 4 (schema.h).  NEVER RUN AGAINST A LIVE SERVER (best effort,
 * docs/oracle.md).  Oracle commits each DDL statement at once, so every step
 * may run again after a stop half-way.  An NVARCHAR2 cannot become an NCLOB
 * in place (ORA-22858): widen() adds the NCLOB beside it as <column>_V4,
 * copies, drops the old one and renames, looking at the catalog first so
 * that it picks up where it stopped; a widened column moves to the end of
 * its table.  The old UNIQUE constraint, whose name Oracle made up, is
 * found in the catalog and dropped first (it holds attachment_id).
 */
#define ORACLE_STEPS_TO_V4                                                                                  \
        STAGING_SCHEMA_STEPS_TO_V4_KEY(" ADD")                                                              \
        { NULL, NULL,                                                                                       \
          "BEGIN\n"                                                                                         \
          "  FOR c IN (SELECT uc.constraint_name FROM user_constraints uc\n"                                \
          "             WHERE uc.table_name = 'ERS_DOCUMENT' AND uc.constraint_type = 'U'\n"                \
          "               AND EXISTS (SELECT 1 FROM user_cons_columns cc\n"                                 \
          "                            WHERE cc.constraint_name = uc.constraint_name\n"                     \
          "                              AND cc.column_name = 'ATTACHMENT_ID')) LOOP\n"                     \
          "    EXECUTE IMMEDIATE 'ALTER TABLE ers_document DROP CONSTRAINT \"' || c.constraint_name || '\" DROP INDEX';\n" \
          "  END LOOP;\n"                                                                                   \
          "END;",                                                                                           \
          NULL },                                                                                           \
        { NULL, NULL,                                                                                       \
          "DECLARE\n"                                                                                       \
          "  PROCEDURE widen(t VARCHAR2, c VARCHAR2, not_null BOOLEAN) IS\n"                                \
          "    n NUMBER;\n"                                                                                 \
          "  BEGIN\n"                                                                                       \
          "    SELECT COUNT(*) INTO n FROM user_tables WHERE table_name = t;\n"                             \
          "    IF n = 0 THEN RETURN; END IF;\n"                                                             \
          "    SELECT COUNT(*) INTO n FROM user_tab_columns\n"                                              \
          "     WHERE table_name = t AND column_name = c AND data_type = 'NCLOB';\n"                        \
          "    IF n > 0 THEN RETURN; END IF;\n"                                                             \
          "    SELECT COUNT(*) INTO n FROM user_tab_columns WHERE table_name = t AND column_name = c;\n"    \
          "    IF n > 0 THEN\n"                                                                             \
          "      SELECT COUNT(*) INTO n FROM user_tab_columns WHERE table_name = t AND column_name = c || '_V4';\n" \
          "      IF n = 0 THEN EXECUTE IMMEDIATE 'ALTER TABLE ' || t || ' ADD ' || c || '_V4 NCLOB'; END IF;\n" \
          "      EXECUTE IMMEDIATE 'UPDATE ' || t || ' SET ' || c || '_V4 = ' || c;\n"                      \
          "      EXECUTE IMMEDIATE 'ALTER TABLE ' || t || ' DROP COLUMN ' || c;\n"                          \
          "    END IF;\n"                                                                                   \
          "    EXECUTE IMMEDIATE 'ALTER TABLE ' || t || ' RENAME COLUMN ' || c || '_V4 TO ' || c;\n"        \
          "    IF not_null THEN EXECUTE IMMEDIATE 'ALTER TABLE ' || t || ' MODIFY ' || c || ' NOT NULL'; END IF;\n" \
          "  END;\n"                                                                                        \
          "BEGIN\n"                                                                                         \
          "  widen('ERS_DOCUMENT', 'ATTACHMENT_ID', TRUE);\n"                                               \
          "  widen('ERS_DOCUMENT', 'TITLE', FALSE);\n"                                                      \
          "  widen('ERS_DOCUMENT', 'CONTENT_TYPE', FALSE);\n"                                               \
          "  widen('ERS_DOCUMENT', 'AVAILABILITY', FALSE);\n"                                               \
          "  widen('ERS_DOCUMENT', 'ATTACHED_BY_USER', FALSE);\n"                                           \
          "  widen('ERS_DOCUMENT', 'ATTACHED_BY_ORG', FALSE);\n"                                            \
          "  widen('ERS_DOCUMENT', 'CREATED', FALSE);\n"                                                    \
          "  widen('ERS_REFERRAL', 'NHS_NUMBER', FALSE);\n"                                                 \
          "  widen('ERS_REFERRAL', 'PRIORITY', FALSE);\n"                                                   \
          "  widen('ERS_REFERRAL', 'STATE', FALSE);\n"                                                      \
          "  widen('ERS_REFERRAL', 'STATE_REASON', FALSE);\n"                                               \
          "  widen('ERS_REFERRAL', 'SPECIALTY', FALSE);\n"                                                  \
          "  widen('ERS_REFERRAL', 'SPECIALTY_DISPLAY', FALSE);\n"                                          \
          "  widen('ERS_REFERRAL', 'SERVICE_ID', FALSE);\n"                                                 \
          "  widen('ERS_REFERRAL', 'SERVICE_NAME', FALSE);\n"                                               \
          "  widen('ERS_REFERRAL', 'REFERRAL_TYPE', FALSE);\n"                                              \
          "  widen('ERS_REFERRAL', 'PATHWAY_START', FALSE);\n"                                              \
          "  widen('ERS_REFERRAL', 'CLINICAL_INFO_FIRST_SUBMITTED', FALSE);\n"                              \
          "  widen('ERS_REFERRAL', 'APPOINTMENT_START', FALSE);\n"                                          \
          "  widen('ERS_REFERRAL', 'APPOINTMENT_END', FALSE);\n"                                            \
          "  widen('ERS_REFERRAL', 'COMMISSIONING_ORG', FALSE);\n"                                          \
          "  widen('ERS_REFERRAL', 'REQUEST_ID', FALSE);\n"                                                 \
          "  widen('ERS_REFERRAL', 'STATUS', FALSE);\n"                                                     \
          "  widen('ERS_REFERRAL', 'INTENT', FALSE);\n"                                                     \
          "  widen('ERS_RETRY', 'PRIORITY', FALSE);\n"                                                      \
          "  widen('ERS_RETRY', 'SERVICE_ID', FALSE);\n"                                                    \
          "  widen('ERS_RETRY', 'SERVICE_NAME', FALSE);\n"                                                  \
          "  widen('ERS_RETRY', 'REFERRAL_TYPE', FALSE);\n"                                                 \
          "END;",                                                                                           \
          NULL },                                                                                           \
        { NULL, NULL, "BEGIN EXECUTE IMMEDIATE q'[ALTER TABLE ers_document MODIFY attachment_key NOT NULL" \
          ORACLE_IGNORING("-1442"), NULL }, /* already NOT NULL */                                          \
        { NULL, NULL,                                                                                       \
          "BEGIN EXECUTE IMMEDIATE q'[ALTER TABLE ers_document ADD CONSTRAINT ers_document_identity "       \
          "UNIQUE (ubrn, source_ubrn, kind, attachment_key, revision)" ORACLE_IGNORING("-2261, -2264"),     \
          NULL }, /* such a key, or that name, exists already */

/* To version 5: the columns (ADD, without COLUMN; each committed at once and
 * skipped when there).  NEVER RUN AGAINST A LIVE SERVER. */
#define ORACLE_STEPS_TO_V5 STAGING_SCHEMA_STEPS_TO_V5(ORACLE_TYPE, SCHEMA_ADD)

/* From version 1, 2, 3 or 4 (schema.h); CREATE OR REPLACE VIEW then gives the view its version-5 form. */
static const struct schema_step oracle_upgrade_v1[] =
        STAGING_SCHEMA_UPGRADE(STAGING_SCHEMA_STEPS_TO_V2(ORACLE_TYPE, " ADD")
                               STAGING_SCHEMA_STEPS_TO_V3(ORACLE_TYPE, " ADD") ORACLE_STEPS_TO_V4 ORACLE_STEPS_TO_V5);
static const struct schema_step oracle_upgrade_v2[] = STAGING_SCHEMA_UPGRADE(
        STAGING_SCHEMA_STEPS_TO_V3(ORACLE_TYPE, " ADD") ORACLE_STEPS_TO_V4 ORACLE_STEPS_TO_V5);
static const struct schema_step oracle_upgrade_v3[] = STAGING_SCHEMA_UPGRADE(ORACLE_STEPS_TO_V4 ORACLE_STEPS_TO_V5);
static const struct schema_step oracle_upgrade_v4[] = STAGING_SCHEMA_UPGRADE(ORACLE_STEPS_TO_V5);

static const struct schema_step *oracle_upgrade(long long from) {
        return STAGING_SCHEMA_UPGRADE_FROM(from, oracle_upgrade_v1, oracle_upgrade_v2, oracle_upgrade_v3,
                                           oracle_upgrade_v4);
}

static int oracle_environment(struct errbuf *e) {
        const char *nls = getenv("NLS_LANG"), *dot;

        if (!nls || !*nls) {
                if (setenv("NLS_LANG", ORACLE_NLS_LANG, 0) < 0)
                        return err_set(e, -errno, "cannot set NLS_LANG: %s", strerror(errno));
                return 0;
        }
        dot = strrchr(nls, '.');
        if (!dot || (strcasecmp(dot + 1, "AL32UTF8") != 0 && strcasecmp(dot + 1, "UTF8") != 0))
                return err_set(e, -EINVAL,
                               "NLS_LANG=%.64s: the client character set must be AL32UTF8 (e.g. NLS_LANG=%s), or "
                               "text outside ASCII is lost",
                               nls, ORACLE_NLS_LANG);
        return 0;
}

static int oracle_connect_options(const char *connection, char *ret, size_t n) {
        return odbc_connstr_append(connection, "LOB", "LOB=T", ret, n);
}

static int oracle_session(struct pas *p, const char *connection, struct errbuf *e) {
        (void) connection;
        return odbc_exec(p, "set READ COMMITTED", "ALTER SESSION SET ISOLATION_LEVEL = READ COMMITTED", e);
}

static int oracle_classify(const char *sqlstate, long native, const char *message, bool in_commit) {
        (void) sqlstate, (void) message;

        switch (native) {
        case ORA_RESOURCE_BUSY:
        case ORA_DEADLOCK:
        case ORA_CANNOT_SERIALIZE:
        case ORA_BUSY_TIMEOUT:
        case ORA_SNAPSHOT_TOO_OLD:
        case ORA_CANNOT_EXTEND_TABLE:
        case ORA_CANNOT_EXTEND_INDEX:
        case ORA_CANNOT_EXTEND_LOB:
                return -EAGAIN; /* the statement (or transaction) rolled back; the next round tries again */
        case ORA_CANCELLED:
                return in_commit ? -EINPROGRESS : -EAGAIN;
        case ORA_TX_MUST_ROLL_BACK:
        case ORA_TX_STATUS_UNKNOWN:
        case ORA_CANNOT_REPLAY:
                return -EINPROGRESS; /* failed over: whether the commit happened is unknown */
        case ORA_SESSION_KILLED:
        case ORA_NOT_LOGGED_ON:
        case ORA_INITIALIZING:
        case ORA_NOT_AVAILABLE:
        case ORA_SHUTTING_DOWN:
        case ORA_END_OF_CHANNEL:
        case ORA_NOT_CONNECTED:
        case ORA_LOST_CONTACT:
        case ORA_TNS_TIMEOUT:
        case ORA_TNS_NO_SERVICE:
        case ORA_TNS_NO_LISTENER:
        case ORA_TNS_EOF:
                return in_commit ? -EINPROGRESS : -ENOTCONN;
        default:
                return 0;
        }
}

static int oracle_lock_writer(struct pas *p, struct errbuf *e) {
        /* ORA-00054 when another session holds the row: -EAGAIN (classify). */
        return odbc_exec(p, "take the writer lock",
                         "DECLARE c SYS_REFCURSOR;\n"
                         "BEGIN\n"
                         "  OPEN c FOR 'SELECT version FROM ers_schema_version FOR UPDATE NOWAIT';\n"
                         "  CLOSE c;\n"
                         "EXCEPTION WHEN OTHERS THEN IF SQLCODE <> -942 THEN RAISE; END IF;\n"
                         "END;",
                         e);
}

static const struct adapter_ops oracle_ops = {
        .schema = oracle_schema,
        .upgrade = oracle_upgrade,
        .environment = oracle_environment,
        .probe_options = adapter_connect_options_default,
        .connect_options = oracle_connect_options,
        .session = oracle_session,
        .classify = oracle_classify,
        .check_statement = adapter_check_statement_default,
        .lock_writer = oracle_lock_writer,
        .unlock_writer = adapter_unlock_writer_default,
};

const struct adapter adapter_oracle = {
        .name = "oracle",
        .dbms_name = "Oracle",
        .national_text = true,
        .ops = &oracle_ops,
};
