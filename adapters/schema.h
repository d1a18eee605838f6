/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The staging schema (docs/schema.md), written once for every vendor: each
 * adapter expands STAGING_SCHEMA_DDL with its own column type for binary
 * data, the options every table gets, and its idempotent way to create the
 * view, into the NULL-terminated statement array its `schema` op returns
 * (see adapter.h for the rules every statement follows).  Everything else
 * (INTEGER, BIGINT, SMALLINT, CHAR, VARCHAR, TEXT) means the same on
 * every vendor built so far.  adapters/sql/<vendor>.sql holds the expansion,
 * for DBAs (tests/unit/test_pas.c keeps each file identical to its adapter).
 *
 *   BLOB          the type of ers_document_part.data: BLOB, BYTEA, LONGBLOB
 *   TABLE_OPTIONS appended to each CREATE TABLE's closing parenthesis: "" or
 *                 " ENGINE=InnoDB …"
 *   CREATE_VIEW   "CREATE VIEW IF NOT EXISTS" or "CREATE OR REPLACE VIEW"
 *
 * The foreign key is a table constraint: MySQL ignores a column's inline
 * REFERENCES without a word.
 */

#define STAGING_SCHEMA_DDL(BLOB, TABLE_OPTIONS, CREATE_VIEW)                                                \
        {                                                                                                   \
        "CREATE TABLE IF NOT EXISTS ers_schema_version (\n"                                                 \
        "    version INTEGER NOT NULL\n"                                                                    \
        ")" TABLE_OPTIONS,                                                                                  \
                                                                                                            \
        "CREATE TABLE IF NOT EXISTS ers_referral (\n"                                                       \
        "    ubrn CHAR(12) NOT NULL PRIMARY KEY,\n"                                                         \
        "    version BIGINT NOT NULL,\n"                                                                    \
        "    nhs_number VARCHAR(10), -- PATIENT IDENTIFIER\n"                                               \
        "    nhs_number_valid SMALLINT NOT NULL,\n"                                                         \
        "    priority VARCHAR(32),\n"                                                                       \
        "    state VARCHAR(64),\n"                                                                          \
        "    state_reason VARCHAR(64),\n"                                                                   \
        "    state_comment TEXT,\n"                                                                         \
        "    specialty VARCHAR(64),\n"                                                                      \
        "    specialty_display VARCHAR(255),\n"                                                             \
        "    service_id VARCHAR(16),\n"                                                                     \
        "    service_name VARCHAR(255),\n"                                                                  \
        "    referral_type VARCHAR(64),\n"                                                                  \
        "    pathway_start VARCHAR(40),\n"                                                                  \
        "    clinical_info_first_submitted VARCHAR(40),\n"                                                  \
        "    appointment_start VARCHAR(40),\n"                                                              \
        "    appointment_end VARCHAR(40),\n"                                                                \
        "    commissioning_org VARCHAR(16),\n"                                                              \
        "    request_id VARCHAR(64),\n"                                                                     \
        "    status VARCHAR(32),\n"                                                                         \
        "    intent VARCHAR(32),\n"                                                                         \
        "    worklist VARCHAR(64),\n"                                                                       \
        "    first_synced_at VARCHAR(32) NOT NULL,\n"                                                       \
        "    last_synced_at VARCHAR(32) NOT NULL,\n"                                                        \
        "    pas_patient_id VARCHAR(64), -- PATIENT IDENTIFIER (in the PAS)\n"                            \
        "    patient_match VARCHAR(16) DEFAULT 'NOT_CONFIGURED' NOT NULL,\n"                                \
        "    patient_checked_at VARCHAR(32)\n"                                                              \
        ")" TABLE_OPTIONS,                                                                                  \
                                                                                                            \
        "CREATE INDEX IF NOT EXISTS ers_referral_patient_match ON ers_referral (patient_match)",            \
                                                                                                            \
        "CREATE TABLE IF NOT EXISTS ers_referral_related (\n"                                               \
        "    ubrn CHAR(12) NOT NULL,\n"                                                                     \
        "    related_ubrn CHAR(12) NOT NULL,\n"                                                             \
        "    PRIMARY KEY (ubrn, related_ubrn)\n"                                                            \
        ")" TABLE_OPTIONS,                                                                                  \
                                                                                                            \
        "CREATE TABLE IF NOT EXISTS ers_document (\n"                                                       \
        "    document_id CHAR(36) NOT NULL PRIMARY KEY,\n"                                                  \
        "    ubrn CHAR(12) NOT NULL,\n"                                                                     \
        "    source_ubrn CHAR(12) NOT NULL,\n"                                                              \
        "    kind VARCHAR(16) NOT NULL,\n"                                                                  \
        "    attachment_id VARCHAR(64) NOT NULL,\n"                                                         \
        "    revision INTEGER NOT NULL,\n"                                                                  \
        "    source_version BIGINT NOT NULL,\n"                                                             \
        "    title VARCHAR(255),\n"                                                                         \
        "    content_type VARCHAR(128),\n"                                                                  \
        "    declared_size BIGINT,\n"                                                                       \
        "    availability VARCHAR(32),\n"                                                                   \
        "    attached_by_user VARCHAR(32),\n"                                                               \
        "    attached_by_org VARCHAR(16),\n"                                                                \
        "    created VARCHAR(40),\n"                                                                        \
        "    fetch_status VARCHAR(16) NOT NULL,\n"                                                          \
        "    not_fetched_reason VARCHAR(255),\n"                                                            \
        "    size_bytes BIGINT,\n"                                                                          \
        "    sha256 CHAR(64),\n"                                                                            \
        "    part_count INTEGER,\n"                                                                         \
        "    stored_at VARCHAR(32) NOT NULL,\n"                                                             \
        "    removed_at VARCHAR(32),\n"                                                                     \
        "    UNIQUE (ubrn, source_ubrn, attachment_id, revision)\n"                                         \
        ")" TABLE_OPTIONS,                                                                                  \
                                                                                                            \
        "CREATE INDEX IF NOT EXISTS ers_document_ubrn ON ers_document (ubrn)",                              \
                                                                                                            \
        "CREATE TABLE IF NOT EXISTS ers_document_part (\n"                                                  \
        "    document_id CHAR(36) NOT NULL,\n"                                                              \
        "    seq INTEGER NOT NULL,\n"                                                                       \
        "    data " BLOB " NOT NULL,\n"                                                                     \
        "    PRIMARY KEY (document_id, seq),\n"                                                             \
        "    FOREIGN KEY (document_id) REFERENCES ers_document (document_id)\n"                             \
        ")" TABLE_OPTIONS,                                                                                  \
                                                                                                            \
        "CREATE TABLE IF NOT EXISTS ers_ledger (\n"                                                         \
        "    ubrn CHAR(12) NOT NULL PRIMARY KEY,\n"                                                         \
        "    version BIGINT NOT NULL,\n"                                                                    \
        "    complete SMALLINT NOT NULL,\n"                                                                 \
        "    worklist VARCHAR(64),\n"                                                                       \
        "    correlation_id VARCHAR(36),\n"                                                                 \
        "    synced_at VARCHAR(32) NOT NULL,\n"                                                             \
        "    first_seen_at VARCHAR(32),\n"                                                                  \
        "    left_worklist_at VARCHAR(32),\n"                                                               \
        "    next_check_at VARCHAR(32)\n"                                                                   \
        ")" TABLE_OPTIONS,                                                                                  \
                                                                                                            \
        "CREATE TABLE IF NOT EXISTS ers_lease (\n"                                                          \
        "    name VARCHAR(64) NOT NULL PRIMARY KEY,\n"                                                     \
        "    holder VARCHAR(128) NOT NULL,\n"                                                              \
        "    renewals BIGINT NOT NULL,\n"                                                                  \
        "    renewed_at VARCHAR(32) NOT NULL\n"                                                            \
        ")" TABLE_OPTIONS,                                                                                  \
                                                                                                            \
        "CREATE TABLE IF NOT EXISTS ers_retry (\n"                                                          \
        "    ubrn CHAR(12) NOT NULL PRIMARY KEY,\n"                                                         \
        "    worklist VARCHAR(64) NOT NULL,\n"                                                              \
        "    entry_version BIGINT,\n"                                                                       \
        "    priority VARCHAR(32),\n"                                                                       \
        "    service_id VARCHAR(16),\n"                                                                     \
        "    service_name VARCHAR(255),\n"                                                                  \
        "    referral_type VARCHAR(64),\n"                                                                  \
        "    first_seen_at VARCHAR(32) NOT NULL,\n"                                                         \
        "    attempts INTEGER NOT NULL,\n"                                                                  \
        "    last_attempt_at VARCHAR(32),\n"                                                                \
        "    next_attempt_at VARCHAR(32) NOT NULL,\n"                                                       \
        "    parked SMALLINT NOT NULL,\n"                                                                   \
        "    reason VARCHAR(512),\n"                                                                        \
        "    last_sqlstate CHAR(5),\n"                                                                         \
        "    correlation_id VARCHAR(36)\n"                                                                  \
        ")" TABLE_OPTIONS,                                                                                  \
                                                                                                            \
        "CREATE INDEX IF NOT EXISTS ers_retry_next ON ers_retry (next_attempt_at)",                         \
                                                                                                            \
        "CREATE TABLE IF NOT EXISTS ers_budget (\n"                                                         \
        "    service_id VARCHAR(16) NOT NULL,\n"                                                            \
        "    budget_day CHAR(10) NOT NULL,\n"                                                               \
        "    calls INTEGER NOT NULL,\n"                                                                     \
        "    PRIMARY KEY (service_id, budget_day)\n"                                                        \
        ")" TABLE_OPTIONS,                                                                                  \
                                                                                                            \
        "CREATE TABLE IF NOT EXISTS ers_poll (\n"                                                           \
        "    worklist VARCHAR(64) NOT NULL PRIMARY KEY,\n"                                                  \
        "    last_poll_at VARCHAR(32),\n"                                                                   \
        "    last_result VARCHAR(255),\n"                                                                   \
        "    last_correlation_id VARCHAR(36),\n"                                                            \
        "    next_poll_at VARCHAR(32),\n"                                                                   \
        "    referrals INTEGER\n"                                                                           \
        ")" TABLE_OPTIONS,                                                                                  \
                                                                                                            \
        "CREATE TABLE IF NOT EXISTS ers_audit (\n"                                                          \
        "    ubrn CHAR(12) NOT NULL,\n"                                                                     \
        "    seq INTEGER NOT NULL,\n"                                                                       \
        "    version BIGINT,\n"                                                                             \
        "    event_type VARCHAR(32) NOT NULL,\n"                                                            \
        "    detail TEXT,\n"                                                                                \
        "    documents TEXT,\n"                                                                             \
        "    recorded_at VARCHAR(32) NOT NULL,\n"                                                           \
        "    correlation_id VARCHAR(36),\n"                                                                 \
        "    PRIMARY KEY (ubrn, seq)\n"                                                                     \
        ")" TABLE_OPTIONS,                                                                                  \
                                                                                                            \
        "CREATE TABLE IF NOT EXISTS ers_worklist_entry (\n"                                                 \
        "    worklist VARCHAR(64) NOT NULL,\n"                                                              \
        "    ubrn CHAR(12) NOT NULL,\n"                                                                     \
        "    version BIGINT,\n"                                                                             \
        "    listed_at VARCHAR(32) NOT NULL,\n"                                                             \
        "    correlation_id VARCHAR(36),\n"                                                                 \
        "    PRIMARY KEY (worklist, ubrn)\n"                                                                \
        ")" TABLE_OPTIONS,                                                                                  \
                                                                                                            \
        "CREATE INDEX IF NOT EXISTS ers_worklist_entry_ubrn ON ers_worklist_entry (ubrn)",                  \
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
 *   ADD_COLUMN    " ADD COLUMN" (SQLite, PostgreSQL, MariaDB): what follows
 *                 "ALTER TABLE <table>" to add one column
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

#define STAGING_SCHEMA_STEPS_TO_V2(ADD_COLUMN)                                                              \
        { "ers_referral", "pas_patient_id", "ALTER TABLE ers_referral" ADD_COLUMN " pas_patient_id VARCHAR(64)" }, \
        { "ers_referral", "patient_match",                                                                  \
          "ALTER TABLE ers_referral" ADD_COLUMN " patient_match VARCHAR(16) DEFAULT 'NOT_CONFIGURED' NOT NULL" }, \
        { "ers_referral", "patient_checked_at", "ALTER TABLE ers_referral" ADD_COLUMN " patient_checked_at VARCHAR(32)" },

#define STAGING_SCHEMA_STEPS_TO_V3(ADD_COLUMN)                                                              \
        { "ers_ledger", "first_seen_at", "ALTER TABLE ers_ledger" ADD_COLUMN " first_seen_at VARCHAR(32)" }, \
        { "ers_ledger", "left_worklist_at", "ALTER TABLE ers_ledger" ADD_COLUMN " left_worklist_at VARCHAR(32)" }, \
        { "ers_ledger", "next_check_at", "ALTER TABLE ers_ledger" ADD_COLUMN " next_check_at VARCHAR(32)" }, \
        { "ers_document", "removed_at", "ALTER TABLE ers_document" ADD_COLUMN " removed_at VARCHAR(32)" },

#define STAGING_SCHEMA_UPGRADE(...)                                                                         \
        {                                                                                                   \
        __VA_ARGS__                                                                                         \
        { NULL, NULL, NULL },                                                                               \
        }
