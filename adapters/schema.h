/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The staging schema (docs/schema.md), written once for every vendor: each
 * adapter expands STAGING_SCHEMA_DDL with its own dialect into the
 * NULL-terminated statement array its `schema` op returns (see adapter.h for
 * the rules every statement follows).  adapters/sql/<vendor>.sql holds the
 * expansion, for DBAs (tests/unit/test_pas.c and tests/unit/test_adapters.c
 * keep each file identical to its adapter).  The dialect:
 *
 *   TYPE(t, n)    the vendor's column type for the portable type t: one of
 *                 BIGINT, TEXT (n empty) and VARCHAR (n characters of UTF-8
 *                 text); SCHEMA_TYPE writes it as it is ("VARCHAR(64)").  A
 *                 dialect defines it as <D>_TYPE_##t(n) with one macro per
 *                 type (the size passed inside: cppcheck's preprocessor does
 *                 not take a pasted macro's arguments from after the paste).  CHAR(n) (ASCII codes:
 *                 UBRN, UUID, SHA-256, SQLSTATE, dates), INTEGER and SMALLINT
 *                 are the same everywhere and written as they are.
 *   BLOB          the type of ers_document_part.data: BLOB, BYTEA, LONGBLOB, …
 *   TABLE_OPTIONS appended to each CREATE TABLE's closing parenthesis: "" or
 *                 " ENGINE=InnoDB …"
 *   CREATE_TABLE(name, definition)
 *   CREATE_INDEX(name, table, columns)
 *                 the whole idempotent statement creating that table or index
 *                 when absent: SCHEMA_CREATE_TABLE / SCHEMA_CREATE_INDEX
 *                 ("CREATE … IF NOT EXISTS") where the vendor has it, else a
 *                 guarded statement (SQL Server: IF OBJECT_ID(…) IS NULL;
 *                 Oracle: a PL/SQL block ignoring ORA-00955)
 *   CREATE_VIEW   "CREATE VIEW IF NOT EXISTS", "CREATE OR REPLACE VIEW", …
 *
 * The foreign key is a table constraint: MySQL ignores a column's inline
 * REFERENCES without a word.
 */

/* The portable dialect: SQLite, PostgreSQL and MariaDB take these as written. */
#define SCHEMA_TYPE(t, n) SCHEMA_TYPE_##t(n)
#define SCHEMA_TYPE_BIGINT(n) "BIGINT"
#define SCHEMA_TYPE_TEXT(n) "TEXT"
#define SCHEMA_TYPE_VARCHAR(n) "VARCHAR(" #n ")"
#define SCHEMA_CREATE_TABLE(name, definition) "CREATE TABLE IF NOT EXISTS " name " " definition
#define SCHEMA_CREATE_INDEX(name, table, columns) "CREATE INDEX IF NOT EXISTS " name " ON " table " " columns

#define STAGING_SCHEMA_DDL(TYPE, BLOB, TABLE_OPTIONS, CREATE_TABLE, CREATE_INDEX, CREATE_VIEW)              \
        {                                                                                                   \
        CREATE_TABLE("ers_schema_version", "(\n"                                                            \
        "    version INTEGER NOT NULL\n"                                                                    \
        ")" TABLE_OPTIONS),                                                                                 \
                                                                                                            \
        CREATE_TABLE("ers_referral", "(\n"                                                                  \
        "    ubrn CHAR(12) NOT NULL PRIMARY KEY,\n"                                                         \
        "    version " TYPE(BIGINT, ) " NOT NULL,\n"                                                        \
        "    nhs_number " TYPE(VARCHAR, 10) ", -- PATIENT IDENTIFIER\n"                                     \
        "    nhs_number_valid SMALLINT NOT NULL,\n"                                                         \
        "    priority " TYPE(VARCHAR, 32) ",\n"                                                             \
        "    state " TYPE(VARCHAR, 64) ",\n"                                                                \
        "    state_reason " TYPE(VARCHAR, 64) ",\n"                                                         \
        "    state_comment " TYPE(TEXT, ) ",\n"                                                             \
        "    specialty " TYPE(VARCHAR, 64) ",\n"                                                            \
        "    specialty_display " TYPE(VARCHAR, 255) ",\n"                                                   \
        "    service_id " TYPE(VARCHAR, 16) ",\n"                                                           \
        "    service_name " TYPE(VARCHAR, 255) ",\n"                                                        \
        "    referral_type " TYPE(VARCHAR, 64) ",\n"                                                        \
        "    pathway_start " TYPE(VARCHAR, 40) ",\n"                                                        \
        "    clinical_info_first_submitted " TYPE(VARCHAR, 40) ",\n"                                        \
        "    appointment_start " TYPE(VARCHAR, 40) ",\n"                                                    \
        "    appointment_end " TYPE(VARCHAR, 40) ",\n"                                                      \
        "    commissioning_org " TYPE(VARCHAR, 16) ",\n"                                                    \
        "    request_id " TYPE(VARCHAR, 64) ",\n"                                                           \
        "    status " TYPE(VARCHAR, 32) ",\n"                                                               \
        "    intent " TYPE(VARCHAR, 32) ",\n"                                                               \
        "    worklist " TYPE(VARCHAR, 64) ",\n"                                                             \
        "    first_synced_at " TYPE(VARCHAR, 32) " NOT NULL,\n"                                             \
        "    last_synced_at " TYPE(VARCHAR, 32) " NOT NULL,\n"                                              \
        "    pas_patient_id " TYPE(VARCHAR, 64) ", -- PATIENT IDENTIFIER (in the PAS)\n"                    \
        "    patient_match " TYPE(VARCHAR, 16) " DEFAULT 'NOT_CONFIGURED' NOT NULL,\n"                      \
        "    patient_checked_at " TYPE(VARCHAR, 32) "\n"                                                    \
        ")" TABLE_OPTIONS),                                                                                 \
                                                                                                            \
        CREATE_INDEX("ers_referral_patient_match", "ers_referral", "(patient_match)"),                      \
                                                                                                            \
        CREATE_TABLE("ers_referral_related", "(\n"                                                          \
        "    ubrn CHAR(12) NOT NULL,\n"                                                                     \
        "    related_ubrn CHAR(12) NOT NULL,\n"                                                             \
        "    PRIMARY KEY (ubrn, related_ubrn)\n"                                                            \
        ")" TABLE_OPTIONS),                                                                                 \
                                                                                                            \
        CREATE_TABLE("ers_document", "(\n"                                                                  \
        "    document_id CHAR(36) NOT NULL PRIMARY KEY,\n"                                                  \
        "    ubrn CHAR(12) NOT NULL,\n"                                                                     \
        "    source_ubrn CHAR(12) NOT NULL,\n"                                                              \
        "    kind " TYPE(VARCHAR, 16) " NOT NULL,\n"                                                        \
        "    attachment_id " TYPE(VARCHAR, 64) " NOT NULL,\n"                                               \
        "    revision INTEGER NOT NULL,\n"                                                                  \
        "    source_version " TYPE(BIGINT, ) " NOT NULL,\n"                                                 \
        "    title " TYPE(VARCHAR, 255) ",\n"                                                               \
        "    content_type " TYPE(VARCHAR, 128) ",\n"                                                        \
        "    declared_size " TYPE(BIGINT, ) ",\n"                                                           \
        "    availability " TYPE(VARCHAR, 32) ",\n"                                                         \
        "    attached_by_user " TYPE(VARCHAR, 32) ",\n"                                                     \
        "    attached_by_org " TYPE(VARCHAR, 16) ",\n"                                                      \
        "    created " TYPE(VARCHAR, 40) ",\n"                                                              \
        "    fetch_status " TYPE(VARCHAR, 16) " NOT NULL,\n"                                                \
        "    not_fetched_reason " TYPE(VARCHAR, 255) ",\n"                                                  \
        "    size_bytes " TYPE(BIGINT, ) ",\n"                                                              \
        "    sha256 CHAR(64),\n"                                                                            \
        "    part_count INTEGER,\n"                                                                         \
        "    stored_at " TYPE(VARCHAR, 32) " NOT NULL,\n"                                                   \
        "    removed_at " TYPE(VARCHAR, 32) ",\n"                                                           \
        "    UNIQUE (ubrn, source_ubrn, attachment_id, revision)\n"                                         \
        ")" TABLE_OPTIONS),                                                                                 \
                                                                                                            \
        CREATE_INDEX("ers_document_ubrn", "ers_document", "(ubrn)"),                                        \
                                                                                                            \
        CREATE_TABLE("ers_document_part", "(\n"                                                             \
        "    document_id CHAR(36) NOT NULL,\n"                                                              \
        "    seq INTEGER NOT NULL,\n"                                                                       \
        "    data " BLOB " NOT NULL,\n"                                                                     \
        "    PRIMARY KEY (document_id, seq),\n"                                                             \
        "    FOREIGN KEY (document_id) REFERENCES ers_document (document_id)\n"                             \
        ")" TABLE_OPTIONS),                                                                                 \
                                                                                                            \
        CREATE_TABLE("ers_ledger", "(\n"                                                                    \
        "    ubrn CHAR(12) NOT NULL PRIMARY KEY,\n"                                                         \
        "    version " TYPE(BIGINT, ) " NOT NULL,\n"                                                        \
        "    complete SMALLINT NOT NULL,\n"                                                                 \
        "    worklist " TYPE(VARCHAR, 64) ",\n"                                                             \
        "    correlation_id " TYPE(VARCHAR, 36) ",\n"                                                       \
        "    synced_at " TYPE(VARCHAR, 32) " NOT NULL,\n"                                                   \
        "    first_seen_at " TYPE(VARCHAR, 32) ",\n"                                                        \
        "    left_worklist_at " TYPE(VARCHAR, 32) ",\n"                                                     \
        "    next_check_at " TYPE(VARCHAR, 32) "\n"                                                         \
        ")" TABLE_OPTIONS),                                                                                 \
                                                                                                            \
        CREATE_TABLE("ers_lease", "(\n"                                                                     \
        "    name " TYPE(VARCHAR, 64) " NOT NULL PRIMARY KEY,\n"                                            \
        "    holder " TYPE(VARCHAR, 128) " NOT NULL,\n"                                                     \
        "    renewals " TYPE(BIGINT, ) " NOT NULL,\n"                                                       \
        "    renewed_at " TYPE(VARCHAR, 32) " NOT NULL\n"                                                   \
        ")" TABLE_OPTIONS),                                                                                 \
                                                                                                            \
        CREATE_TABLE("ers_retry", "(\n"                                                                     \
        "    ubrn CHAR(12) NOT NULL PRIMARY KEY,\n"                                                         \
        "    worklist " TYPE(VARCHAR, 64) " NOT NULL,\n"                                                    \
        "    entry_version " TYPE(BIGINT, ) ",\n"                                                           \
        "    priority " TYPE(VARCHAR, 32) ",\n"                                                             \
        "    service_id " TYPE(VARCHAR, 16) ",\n"                                                           \
        "    service_name " TYPE(VARCHAR, 255) ",\n"                                                        \
        "    referral_type " TYPE(VARCHAR, 64) ",\n"                                                        \
        "    first_seen_at " TYPE(VARCHAR, 32) " NOT NULL,\n"                                               \
        "    attempts INTEGER NOT NULL,\n"                                                                  \
        "    last_attempt_at " TYPE(VARCHAR, 32) ",\n"                                                      \
        "    next_attempt_at " TYPE(VARCHAR, 32) " NOT NULL,\n"                                             \
        "    parked SMALLINT NOT NULL,\n"                                                                   \
        "    reason " TYPE(VARCHAR, 512) ",\n"                                                              \
        "    last_sqlstate CHAR(5),\n"                                                                      \
        "    correlation_id " TYPE(VARCHAR, 36) "\n"                                                        \
        ")" TABLE_OPTIONS),                                                                                 \
                                                                                                            \
        CREATE_INDEX("ers_retry_next", "ers_retry", "(next_attempt_at)"),                                   \
                                                                                                            \
        CREATE_TABLE("ers_budget", "(\n"                                                                    \
        "    service_id " TYPE(VARCHAR, 16) " NOT NULL,\n"                                                  \
        "    budget_day CHAR(10) NOT NULL,\n"                                                               \
        "    calls INTEGER NOT NULL,\n"                                                                     \
        "    PRIMARY KEY (service_id, budget_day)\n"                                                        \
        ")" TABLE_OPTIONS),                                                                                 \
                                                                                                            \
        CREATE_TABLE("ers_poll", "(\n"                                                                      \
        "    worklist " TYPE(VARCHAR, 64) " NOT NULL PRIMARY KEY,\n"                                        \
        "    last_poll_at " TYPE(VARCHAR, 32) ",\n"                                                         \
        "    last_result " TYPE(VARCHAR, 255) ",\n"                                                         \
        "    last_correlation_id " TYPE(VARCHAR, 36) ",\n"                                                  \
        "    next_poll_at " TYPE(VARCHAR, 32) ",\n"                                                         \
        "    referrals INTEGER\n"                                                                           \
        ")" TABLE_OPTIONS),                                                                                 \
                                                                                                            \
        CREATE_TABLE("ers_audit", "(\n"                                                                     \
        "    ubrn CHAR(12) NOT NULL,\n"                                                                     \
        "    seq INTEGER NOT NULL,\n"                                                                       \
        "    version " TYPE(BIGINT, ) ",\n"                                                                 \
        "    event_type " TYPE(VARCHAR, 32) " NOT NULL,\n"                                                  \
        "    detail " TYPE(TEXT, ) ",\n"                                                                    \
        "    documents " TYPE(TEXT, ) ",\n"                                                                 \
        "    recorded_at " TYPE(VARCHAR, 32) " NOT NULL,\n"                                                 \
        "    correlation_id " TYPE(VARCHAR, 36) ",\n"                                                       \
        "    PRIMARY KEY (ubrn, seq)\n"                                                                     \
        ")" TABLE_OPTIONS),                                                                                 \
                                                                                                            \
        CREATE_TABLE("ers_worklist_entry", "(\n"                                                            \
        "    worklist " TYPE(VARCHAR, 64) " NOT NULL,\n"                                                    \
        "    ubrn CHAR(12) NOT NULL,\n"                                                                     \
        "    version " TYPE(BIGINT, ) ",\n"                                                                 \
        "    listed_at " TYPE(VARCHAR, 32) " NOT NULL,\n"                                                   \
        "    correlation_id " TYPE(VARCHAR, 36) ",\n"                                                       \
        "    PRIMARY KEY (worklist, ubrn)\n"                                                                \
        ")" TABLE_OPTIONS),                                                                                 \
                                                                                                            \
        CREATE_INDEX("ers_worklist_entry_ubrn", "ers_worklist_entry", "(ubrn)"),                            \
                                                                                                            \
        CREATE_VIEW " ers_referral_inbox AS\n"                                                              \
        "SELECT r.ubrn,\n"                                                                                  \
        "       r.nhs_number, -- PATIENT IDENTIFIER\n"                                                      \
        "       r.nhs_number_valid,\n"                                                                      \
        "       r.priority,\n"                                                                              \
        "       r.state,\n"                                                                                 \
        "       r.specialty,\n"                                                                             \
        "       r.specialty_display,\n"                                                                     \
        "       r.service_id,\n"                                                                            \
        "       r.service_name,\n"                                                                          \
        "       r.appointment_start,\n"                                                                     \
        "       r.appointment_end,\n"                                                                       \
        "       r.worklist,\n"                                                                              \
        "       (SELECT COUNT(*) FROM ers_document d\n"                                                     \
        "         WHERE d.ubrn = r.ubrn AND d.fetch_status = 'FETCHED'\n"                                   \
        "           AND d.revision = (SELECT MAX(d2.revision) FROM ers_document d2\n"                       \
        "                              WHERE d2.ubrn = d.ubrn AND d2.source_ubrn = d.source_ubrn\n"         \
        "                                AND d2.attachment_id = d.attachment_id)) AS documents_fetched,\n"  \
        "       (SELECT COUNT(*) FROM ers_document d\n"                                                     \
        "         WHERE d.ubrn = r.ubrn AND d.fetch_status = 'NOT_FETCHED') AS documents_not_fetched,\n"    \
        "       r.last_synced_at,\n"                                                                        \
        "       r.pas_patient_id, -- PATIENT IDENTIFIER\n"                                                  \
        "       r.patient_match\n"                                                                          \
        "  FROM ers_referral r",                                                                            \
                                                                                                            \
        NULL,                                                                                               \
        }

/*
 * The upgrades of an older schema, as steps pas_init_schema() runs before
 * STAGING_SCHEMA_DDL, in one transaction, and only on a schema whose
 * ers_schema_version says 1 or 2.  A step with a column runs only when that
 * column is absent (SQLColumns): the upgrade may be run again after a DBMS
 * that commits DDL at once (MariaDB) stopped half-way.  New tables need no
 * step: STAGING_SCHEMA_DDL creates what is missing.
 *
 *   version 2: patient matching (ers_referral.pas_patient_id, …)
 *   version 3: the ledger's worklist times (first_seen_at, left_worklist_at,
 *              next_check_at), ers_document.removed_at; the ers_retry,
 *              ers_budget, ers_poll, ers_audit and ers_worklist_entry tables
 *
 *   TYPE          as for STAGING_SCHEMA_DDL
 *   ADD_COLUMN    what follows "ALTER TABLE <table>" to add one column:
 *                 " ADD COLUMN" (SQLite, PostgreSQL, MariaDB), " ADD" (SQL
 *                 Server, Oracle)
 *
 * An adapter's upgrade(from) returns STAGING_SCHEMA_UPGRADE(steps…) built
 * from the STEPS_TO_V<n> lists from `from` + 1 up, plus steps of its own
 * (e.g. SQLite drops the view so that CREATE VIEW IF NOT EXISTS recreates it
 * with the version-2 columns; where CREATE OR REPLACE VIEW appends them, and
 * keeps the view's grants, there is none).
 */
struct schema_step {
        const char *table;  /* with column: the step runs only when table.column is absent */
        const char *column; /* NULL: the step always runs */
        const char *sql;    /* one statement, same rules as the DDL */
};

#define STAGING_SCHEMA_STEPS_TO_V2(TYPE, ADD_COLUMN)                                                              \
        { "ers_referral", "pas_patient_id", "ALTER TABLE ers_referral" ADD_COLUMN " pas_patient_id " TYPE(VARCHAR, 64) }, \
        { "ers_referral", "patient_match",                                                                  \
          "ALTER TABLE ers_referral" ADD_COLUMN " patient_match " TYPE(VARCHAR, 16) " DEFAULT 'NOT_CONFIGURED' NOT NULL" }, \
        { "ers_referral", "patient_checked_at", "ALTER TABLE ers_referral" ADD_COLUMN " patient_checked_at " TYPE(VARCHAR, 32) },

#define STAGING_SCHEMA_STEPS_TO_V3(TYPE, ADD_COLUMN)                                                              \
        { "ers_ledger", "first_seen_at", "ALTER TABLE ers_ledger" ADD_COLUMN " first_seen_at " TYPE(VARCHAR, 32) }, \
        { "ers_ledger", "left_worklist_at", "ALTER TABLE ers_ledger" ADD_COLUMN " left_worklist_at " TYPE(VARCHAR, 32) }, \
        { "ers_ledger", "next_check_at", "ALTER TABLE ers_ledger" ADD_COLUMN " next_check_at " TYPE(VARCHAR, 32) }, \
        { "ers_document", "removed_at", "ALTER TABLE ers_document" ADD_COLUMN " removed_at " TYPE(VARCHAR, 32) },

#define STAGING_SCHEMA_UPGRADE(...)                                                                         \
        {                                                                                                   \
        __VA_ARGS__                                                                                         \
        { NULL, NULL, NULL },                                                                               \
        }
