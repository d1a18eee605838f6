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
 *                 BIGINT, TEXT (n empty: text of any length, for every id,
 *                 code and text e-RS sends, kept whole), VARCHAR (n
 *                 characters of UTF-8 text: only text ersd writes itself and
 *                 bounds, or names from its configuration) and IDENTITY
 *                 (n empty: the whole definition, after the column's name,
 *                 of a primary key the database numbers 1, 2, … in the
 *                 order rows are inserted, never reused, never given by the
 *                 inserter: ers_outbox.id); SCHEMA_TYPE writes the first
 *                 three as they are ("VARCHAR(64)") and IDENTITY as
 *                 PostgreSQL has it (SQLite's own: sqlite.c).  A
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
 * A TEXT column is a LOB on Oracle (NCLOB) and NVARCHAR(MAX) on SQL Server:
 * no statement of ersd compares, groups, orders or indexes one.  A document
 * is found by its fixed-width attachment_key instead (document_key.h).
 *
 * The foreign key is a table constraint: MySQL ignores a column's inline
 * REFERENCES without a word.
 */

#include "../daemon/err.h"
#include "document_key.h"

/* The portable dialect: SQLite, PostgreSQL and MariaDB take these as written
 * (MariaDB's own TEXT, which stops at 64 KiB, is LONGTEXT: mariadb.c). */
#define SCHEMA_TYPE(t, n) SCHEMA_TYPE_##t(n)
#define SCHEMA_TYPE_BIGINT(n) "BIGINT"
#define SCHEMA_TYPE_TEXT(n) "TEXT"
#define SCHEMA_TYPE_VARCHAR(n) "VARCHAR(" #n ")"
#define SCHEMA_TYPE_IDENTITY(n) "BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY"
#define SCHEMA_CREATE_TABLE(name, definition) "CREATE TABLE IF NOT EXISTS " name " " definition
#define SCHEMA_CREATE_INDEX(name, table, columns) "CREATE INDEX IF NOT EXISTS " name " ON " table " " columns

/* The definitions of the tables an upgrade rebuilds or widens (SQLite
 * rebuilds them from these very strings: a fresh and an upgraded schema are
 * then the same, to the text SQLite keeps of each table). */
#define STAGING_COLUMNS_REFERRAL_V4(TYPE)                                                                   \
        "    ubrn CHAR(12) NOT NULL PRIMARY KEY,\n"                                                         \
        "    version " TYPE(BIGINT, ) " NOT NULL,\n"                                                        \
        "    nhs_number " TYPE(TEXT, ) ", -- PATIENT IDENTIFIER\n"                                          \
        "    nhs_number_valid SMALLINT NOT NULL,\n"                                                         \
        "    priority " TYPE(TEXT, ) ",\n"                                                                  \
        "    state " TYPE(TEXT, ) ",\n"                                                                     \
        "    state_reason " TYPE(TEXT, ) ",\n"                                                              \
        "    state_comment " TYPE(TEXT, ) ",\n"                                                             \
        "    specialty " TYPE(TEXT, ) ",\n"                                                                 \
        "    specialty_display " TYPE(TEXT, ) ",\n"                                                         \
        "    service_id " TYPE(TEXT, ) ",\n"                                                                \
        "    service_name " TYPE(TEXT, ) ",\n"                                                              \
        "    referral_type " TYPE(TEXT, ) ",\n"                                                             \
        "    pathway_start " TYPE(TEXT, ) ",\n"                                                             \
        "    clinical_info_first_submitted " TYPE(TEXT, ) ",\n"                                             \
        "    appointment_start " TYPE(TEXT, ) ",\n"                                                         \
        "    appointment_end " TYPE(TEXT, ) ",\n"                                                           \
        "    commissioning_org " TYPE(TEXT, ) ",\n"                                                         \
        "    request_id " TYPE(TEXT, ) ",\n"                                                                \
        "    status " TYPE(TEXT, ) ",\n"                                                                    \
        "    intent " TYPE(TEXT, ) ",\n"                                                                    \
        "    worklist " TYPE(VARCHAR, 64) ",\n"                                                             \
        "    first_synced_at " TYPE(VARCHAR, 32) " NOT NULL,\n"                                             \
        "    last_synced_at " TYPE(VARCHAR, 32) " NOT NULL,\n"                                              \
        "    pas_patient_id " TYPE(VARCHAR, 64) ", -- PATIENT IDENTIFIER (in the PAS)\n"                    \
        "    patient_match " TYPE(VARCHAR, 16) " DEFAULT 'NOT_CONFIGURED' NOT NULL,\n"                      \
        "    patient_checked_at " TYPE(VARCHAR, 32)

#define STAGING_COLUMNS_DOCUMENT_V4(TYPE)                                                                   \
        "    document_id CHAR(36) NOT NULL PRIMARY KEY,\n"                                                  \
        "    ubrn CHAR(12) NOT NULL,\n"                                                                     \
        "    source_ubrn CHAR(12) NOT NULL,\n"                                                              \
        "    kind " TYPE(VARCHAR, 16) " NOT NULL,\n"                                                        \
        "    attachment_id " TYPE(TEXT, ) " NOT NULL,\n"                                                    \
        "    revision INTEGER NOT NULL,\n"                                                                  \
        "    source_version " TYPE(BIGINT, ) " NOT NULL,\n"                                                 \
        "    title " TYPE(TEXT, ) ",\n"                                                                     \
        "    content_type " TYPE(TEXT, ) ",\n"                                                              \
        "    declared_size " TYPE(BIGINT, ) ",\n"                                                           \
        "    availability " TYPE(TEXT, ) ",\n"                                                              \
        "    attached_by_user " TYPE(TEXT, ) ",\n"                                                          \
        "    attached_by_org " TYPE(TEXT, ) ",\n"                                                           \
        "    created " TYPE(TEXT, ) ",\n"                                                                   \
        "    fetch_status " TYPE(VARCHAR, 16) " NOT NULL,\n"                                                \
        "    not_fetched_reason " TYPE(VARCHAR, 255) ",\n"                                                  \
        "    size_bytes " TYPE(BIGINT, ) ",\n"                                                              \
        "    sha256 CHAR(64),\n"                                                                            \
        "    part_count INTEGER,\n"                                                                         \
        "    stored_at " TYPE(VARCHAR, 32) " NOT NULL,\n"                                                   \
        "    removed_at " TYPE(VARCHAR, 32) ",\n"                                                           \
        "    occurrence INTEGER DEFAULT 0 NOT NULL,\n"                                                      \
        "    attachment_key CHAR(64) NOT NULL"

#define STAGING_DOCUMENT_IDENTITY                                                                           \
        ",\n    CONSTRAINT ers_document_identity UNIQUE (ubrn, source_ubrn, kind, attachment_key, revision)"

/*
 * The columns version 5 adds to ers_referral and ers_document (the element
 * walk of an A005, docs/schema.md "Every element of a referral"), each as
 * COLUMN(table, name, type): appended to the tables' version-4 columns in
 * the fresh DDL (SCHEMA_COLUMN), and added one by one by the upgrade
 * (SCHEMA_ADD_COLUMN, SCHEMA_ADD), so that both end with them in this order.
 * Every one holds what e-RS sends: TEXT, kept whole.
 */
#define STAGING_REFERRAL_V5(COLUMN, TYPE)                                                                   \
        COLUMN(ers_referral, clinical_info_last_updated, TYPE(TEXT, ))                                      \
        COLUMN(ers_referral, state_reason_system, TYPE(TEXT, ))                                             \
        COLUMN(ers_referral, state_reason_display, TYPE(TEXT, ))                                            \
        COLUMN(ers_referral, appointment_reference, TYPE(TEXT, ))                                           \
        COLUMN(ers_referral, appointment_status, TYPE(TEXT, ))                                              \
        COLUMN(ers_referral, appointment_created, TYPE(TEXT, ))                                             \
        COLUMN(ers_referral, appointment_reason, TYPE(TEXT, ))                                              \
        COLUMN(ers_referral, appointment_reason_system, TYPE(TEXT, ))                                       \
        COLUMN(ers_referral, appointment_reason_display, TYPE(TEXT, ))                                      \
        COLUMN(ers_referral, appointment_comment, TYPE(TEXT, ))                                             \
        COLUMN(ers_referral, appointment_slot, TYPE(TEXT, ))                                                \
        COLUMN(ers_referral, appointment_clinician, TYPE(TEXT, ))                                           \
        COLUMN(ers_referral, clinic_type, TYPE(TEXT, ))                                                     \
        COLUMN(ers_referral, named_clinician, TYPE(TEXT, ))                                                 \
        COLUMN(ers_referral, advice_request, TYPE(TEXT, ))                                                  \
        COLUMN(ers_referral, answer_sha256, "CHAR(64)")

#define STAGING_DOCUMENT_V5(COLUMN, TYPE)                                                                   \
        COLUMN(ers_document, document_type, TYPE(TEXT, ))                                                   \
        COLUMN(ers_document, description, TYPE(TEXT, ))                                                    \
        COLUMN(ers_document, attached_on_behalf_of, TYPE(TEXT, ))

/* The working state e-RS lists with a worklist entry (A008), kept with the
 * entry in ers_worklist_entry: the slot-issues worklist's dates and status,
 * whether the letter was printed in e-RS, what changed since it was last
 * reviewed there.  TEXT as e-RS sends them; clinical_info_printed 1 or 0. */
#define STAGING_WORKLIST_ENTRY_V5(COLUMN, TYPE)                                                             \
        COLUMN(ers_worklist_entry, ubrn_received, TYPE(TEXT, ))                                             \
        COLUMN(ers_worklist_entry, patient_contact_expected, TYPE(TEXT, ))                                  \
        COLUMN(ers_worklist_entry, last_contact, TYPE(TEXT, ))                                              \
        COLUMN(ers_worklist_entry, clinical_information_status, TYPE(TEXT, ))                               \
        COLUMN(ers_worklist_entry, clinical_info_printed, "SMALLINT")                                       \
        COLUMN(ers_worklist_entry, request_context_status, TYPE(TEXT, ))

/* A column of a CREATE TABLE, after the one before it. */
#define SCHEMA_COLUMN(table, name, type) ",\n    " #name " " type

/* The tables as version 4 had them (SQLite rebuilds them so in the upgrade
 * to version 4, before the version-5 columns are added), and as they are. */
#define STAGING_TABLE_REFERRAL_V4(TYPE, TABLE_OPTIONS)                                                      \
        "(\n" STAGING_COLUMNS_REFERRAL_V4(TYPE) "\n)" TABLE_OPTIONS
#define STAGING_TABLE_REFERRAL(TYPE, TABLE_OPTIONS)                                                         \
        "(\n" STAGING_COLUMNS_REFERRAL_V4(TYPE) STAGING_REFERRAL_V5(SCHEMA_COLUMN, TYPE) "\n)" TABLE_OPTIONS
#define STAGING_TABLE_DOCUMENT_V4(TYPE, TABLE_OPTIONS)                                                      \
        "(\n" STAGING_COLUMNS_DOCUMENT_V4(TYPE) STAGING_DOCUMENT_IDENTITY "\n)" TABLE_OPTIONS
#define STAGING_TABLE_DOCUMENT(TYPE, TABLE_OPTIONS)                                                         \
        "(\n" STAGING_COLUMNS_DOCUMENT_V4(TYPE) STAGING_DOCUMENT_V5(SCHEMA_COLUMN, TYPE)                    \
        STAGING_DOCUMENT_IDENTITY "\n)" TABLE_OPTIONS

#define STAGING_TABLE_RETRY(TYPE, TABLE_OPTIONS)                                                            \
        "(\n"                                                                                               \
        "    ubrn CHAR(12) NOT NULL PRIMARY KEY,\n"                                                         \
        "    worklist " TYPE(VARCHAR, 64) " NOT NULL,\n"                                                    \
        "    entry_version " TYPE(BIGINT, ) ",\n"                                                           \
        "    priority " TYPE(TEXT, ) ",\n"                                                                  \
        "    service_id " TYPE(TEXT, ) ",\n"                                                                \
        "    service_name " TYPE(TEXT, ) ",\n"                                                              \
        "    referral_type " TYPE(TEXT, ) ",\n"                                                             \
        "    first_seen_at " TYPE(VARCHAR, 32) " NOT NULL,\n"                                               \
        "    attempts INTEGER NOT NULL,\n"                                                                  \
        "    last_attempt_at " TYPE(VARCHAR, 32) ",\n"                                                      \
        "    next_attempt_at " TYPE(VARCHAR, 32) " NOT NULL,\n"                                             \
        "    parked SMALLINT NOT NULL,\n"                                                                   \
        "    reason " TYPE(VARCHAR, 512) ",\n"                                                              \
        "    last_sqlstate CHAR(5),\n"                                                                      \
        "    correlation_id " TYPE(VARCHAR, 36) "\n"                                                        \
        ")" TABLE_OPTIONS

#define STAGING_TABLE_AUDIT(TYPE, TABLE_OPTIONS)                                                            \
        "(\n"                                                                                               \
        "    ubrn CHAR(12) NOT NULL,\n"                                                                     \
        "    seq INTEGER NOT NULL,\n"                                                                       \
        "    version " TYPE(BIGINT, ) ",\n"                                                                 \
        "    event_type " TYPE(VARCHAR, 32) " NOT NULL,\n"                                                  \
        "    detail " TYPE(TEXT, ) ",\n"                                                                    \
        "    documents " TYPE(TEXT, ) ",\n"                                                                 \
        "    recorded_at " TYPE(VARCHAR, 32) " NOT NULL,\n"                                                 \
        "    correlation_id " TYPE(VARCHAR, 36) ",\n"                                                       \
        "    PRIMARY KEY (ubrn, seq)\n"                                                                     \
        ")" TABLE_OPTIONS

/* The view for admin staff.  A document is counted once, at its latest
 * revision: the subquery finds it by its key, never by its id (a TEXT). */
#define STAGING_VIEW_INBOX(CREATE_VIEW)                                                                     \
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
        "                                AND d2.kind = d.kind\n"                                            \
        "                                AND d2.attachment_key = d.attachment_key)) AS documents_fetched,\n" \
        "       (SELECT COUNT(*) FROM ers_document d\n"                                                     \
        "         WHERE d.ubrn = r.ubrn AND d.fetch_status = 'NOT_FETCHED') AS documents_not_fetched,\n"    \
        "       r.last_synced_at,\n"                                                                        \
        "       r.pas_patient_id, -- PATIENT IDENTIFIER\n"                                                  \
        "       r.patient_match,\n"                                                                         \
        "       (SELECT COUNT(*) FROM ers_referral_requirement q\n"                                          \
        "         WHERE q.ubrn = r.ubrn) AS additional_requirements\n"                                        \
        "  FROM ers_referral r"

#define STAGING_SCHEMA_DDL(TYPE, BLOB, TABLE_OPTIONS, CREATE_TABLE, CREATE_INDEX, CREATE_VIEW)              \
        {                                                                                                   \
        CREATE_TABLE("ers_schema_version", "(\n"                                                            \
        "    version INTEGER NOT NULL\n"                                                                    \
        ")" TABLE_OPTIONS),                                                                                 \
                                                                                                            \
        CREATE_TABLE("ers_referral", STAGING_TABLE_REFERRAL(TYPE, TABLE_OPTIONS)),                          \
                                                                                                            \
        CREATE_INDEX("ers_referral_patient_match", "ers_referral", "(patient_match)"),                      \
                                                                                                            \
        CREATE_TABLE("ers_referral_related", "(\n"                                                          \
        "    ubrn CHAR(12) NOT NULL,\n"                                                                     \
        "    related_ubrn CHAR(12) NOT NULL,\n"                                                             \
        "    PRIMARY KEY (ubrn, related_ubrn)\n"                                                            \
        ")" TABLE_OPTIONS),                                                                                 \
                                                                                                            \
        CREATE_INDEX("ers_referral_related_related", "ers_referral_related", "(related_ubrn)"),             \
                                                                                                            \
        CREATE_TABLE("ers_referral_requirement", "(\n"                                                      \
        "    ubrn CHAR(12) NOT NULL,\n"                                                                     \
        "    seq INTEGER NOT NULL,\n"                                                                       \
        "    code " TYPE(TEXT, ) ",\n"                                                                      \
        "    display " TYPE(TEXT, ) ",\n"                                                                   \
        "    code_system " TYPE(TEXT, ) ",\n"                                                               \
        "    comments " TYPE(TEXT, ) ",\n"                                                                  \
        "    PRIMARY KEY (ubrn, seq)\n"                                                                     \
        ")" TABLE_OPTIONS),                                                                                 \
                                                                                                            \
        CREATE_TABLE("ers_referral_answer", "(\n"                                                           \
        "    ubrn CHAR(12) NOT NULL,\n"                                                                     \
        "    version " TYPE(BIGINT, ) " NOT NULL,\n"                                                        \
        "    sha256 CHAR(64) NOT NULL,\n"                                                                   \
        "    size_bytes " TYPE(BIGINT, ) " NOT NULL,\n"                                                     \
        "    body " BLOB " NOT NULL,\n"                                                                     \
        "    correlation_id " TYPE(VARCHAR, 36) ",\n"                                                       \
        "    received_at " TYPE(VARCHAR, 32) " NOT NULL,\n"                                                 \
        "    PRIMARY KEY (ubrn, version, sha256)\n"                                                         \
        ")" TABLE_OPTIONS),                                                                                 \
                                                                                                            \
        CREATE_TABLE("ers_document", STAGING_TABLE_DOCUMENT(TYPE, TABLE_OPTIONS)),                          \
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
        CREATE_TABLE("ers_retry", STAGING_TABLE_RETRY(TYPE, TABLE_OPTIONS)),                                \
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
        CREATE_TABLE("ers_audit", STAGING_TABLE_AUDIT(TYPE, TABLE_OPTIONS)),                                \
                                                                                                            \
        CREATE_TABLE("ers_worklist_entry", "(\n"                                                            \
        "    worklist " TYPE(VARCHAR, 64) " NOT NULL,\n"                                                    \
        "    ubrn CHAR(12) NOT NULL,\n"                                                                     \
        "    version " TYPE(BIGINT, ) ",\n"                                                                 \
        "    listed_at " TYPE(VARCHAR, 32) " NOT NULL,\n"                                                   \
        "    correlation_id " TYPE(VARCHAR, 36)                                                             \
        STAGING_WORKLIST_ENTRY_V5(SCHEMA_COLUMN, TYPE) ",\n"                                                \
        "    PRIMARY KEY (worklist, ubrn)\n"                                                                \
        ")" TABLE_OPTIONS),                                                                                 \
                                                                                                            \
        CREATE_INDEX("ers_worklist_entry_ubrn", "ers_worklist_entry", "(ubrn)"),                            \
                                                                                                            \
        CREATE_TABLE("ers_outbox", "(\n"                                                                    \
        "    id " TYPE(IDENTITY, ) ",\n"                                                                    \
        "    ubrn CHAR(12) NOT NULL,\n"                                                                     \
        "    action " TYPE(VARCHAR, 32) " NOT NULL,\n"                                                      \
        "    review_outcome " TYPE(VARCHAR, 64) ",\n"                                                       \
        "    comment_text " TYPE(TEXT, ) ",\n"                                                              \
        "    new_priority " TYPE(VARCHAR, 32) ",\n"                                                         \
        "    decided_version " TYPE(BIGINT, ) " NOT NULL,\n"                                                \
        "    requested_by " TYPE(VARCHAR, 64) " NOT NULL,\n"                                                \
        "    requested_at " TYPE(VARCHAR, 32) " NOT NULL,\n"                                                \
        "    state " TYPE(VARCHAR, 16) " DEFAULT 'NEW' NOT NULL,\n"                                         \
        "    attempts INTEGER DEFAULT 0 NOT NULL,\n"                                                        \
        "    next_attempt_at " TYPE(VARCHAR, 32) ",\n"                                                      \
        "    answered_version " TYPE(BIGINT, ) ",\n"                                                        \
        "    error_code " TYPE(TEXT, ) ",\n"                                                                \
        "    error_text " TYPE(TEXT, ) ",\n"                                                                \
        "    correlation_id " TYPE(VARCHAR, 36) ",\n"                                                       \
        "    updated_at " TYPE(VARCHAR, 32) ",\n"                                                           \
        "    CONSTRAINT ers_outbox_action CHECK (action IN ('RECORD_REVIEW_OUTCOME', 'ACCEPT_REFERRAL')),\n" \
        "    CONSTRAINT ers_outbox_state CHECK (state IN ('NEW', 'SENDING', 'DONE', 'REJECTED', 'STALE', "  \
        "'RETRY'))\n"                                                                                       \
        ")" TABLE_OPTIONS),                                                                                 \
                                                                                                            \
        CREATE_INDEX("ers_outbox_due", "ers_outbox", "(state, next_attempt_at)"),                           \
                                                                                                            \
        CREATE_INDEX("ers_outbox_ubrn", "ers_outbox", "(ubrn, id)"),                                        \
                                                                                                            \
        STAGING_VIEW_INBOX(CREATE_VIEW),                                                                    \
                                                                                                            \
        NULL,                                                                                               \
        }

/*
 * The upgrades of an older schema, as steps pas_init_schema() runs before
 * STAGING_SCHEMA_DDL, in one transaction, and only on a schema whose
 * ers_schema_version says 1, 2, 3 or 4.  A step with a column runs only when
 * that column is absent (SQLColumns): the upgrade may be run again after a
 * DBMS that commits DDL at once (MariaDB, Oracle) stopped half-way; every
 * other step must be safe to run again.  A step with a table runs only when
 * that table exists (a version-3 table is absent during an
 * upgrade from version 1 or 2: STAGING_SCHEMA_DDL creates it afterwards, as
 * version 4 has it).  New tables need no step: STAGING_SCHEMA_DDL creates
 * what is missing.
 *
 *   version 2: patient matching (ers_referral.pas_patient_id, …)
 *   version 3: the ledger's worklist times (first_seen_at, left_worklist_at,
 *              next_check_at), ers_document.removed_at; the ers_retry,
 *              ers_budget, ers_poll, ers_audit and ers_worklist_entry tables
 *   version 4: every id, code and text from e-RS held whole (TEXT); a
 *              document identified by (ubrn, source_ubrn, kind,
 *              attachment_key, revision): ers_document.occurrence and
 *              .attachment_key, filled by a C step (document_key_fill), the
 *              old UNIQUE (ubrn, source_ubrn, attachment_id, revision)
 *              replaced by the constraint ers_document_identity, and the
 *              view's latest-revision subquery on the key.  Each vendor has
 *              its own way to widen a column and drop an auto-named
 *              constraint: the adapter writes those steps.
 *   version 5: every element of an A005 accounted for: the columns of
 *              STAGING_REFERRAL_V5 and STAGING_DOCUMENT_V5 (with
 *              ers_referral.answer_sha256, the answer its rows come from),
 *              STAGING_WORKLIST_ENTRY_V5 (a worklist entry's working
 *              state), the tables
 *              ers_referral_requirement (additional requirements),
 *              ers_referral_answer (each A005 answer as received) and
 *              ers_outbox (decisions for e-RS), the view's
 *              additional_requirements.
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
        const char *table;  /* with column: the step runs only when table.column is absent; without: only
                               when the table exists; NULL: the step always runs */
        const char *column;
        const char *sql;    /* one statement, same rules as the DDL; NULL for a C step */
        int (*run)(struct pas *p, struct errbuf *e); /* a C step (when sql is NULL): 0 or a negative errno */
};

#define STAGING_SCHEMA_STEPS_TO_V2(TYPE, ADD_COLUMN)                                                              \
        { "ers_referral", "pas_patient_id", "ALTER TABLE ers_referral" ADD_COLUMN " pas_patient_id " TYPE(VARCHAR, 64), NULL }, \
        { "ers_referral", "patient_match",                                                                  \
          "ALTER TABLE ers_referral" ADD_COLUMN " patient_match " TYPE(VARCHAR, 16) " DEFAULT 'NOT_CONFIGURED' NOT NULL", NULL }, \
        { "ers_referral", "patient_checked_at", "ALTER TABLE ers_referral" ADD_COLUMN " patient_checked_at " TYPE(VARCHAR, 32), NULL },

#define STAGING_SCHEMA_STEPS_TO_V3(TYPE, ADD_COLUMN)                                                              \
        { "ers_ledger", "first_seen_at", "ALTER TABLE ers_ledger" ADD_COLUMN " first_seen_at " TYPE(VARCHAR, 32), NULL }, \
        { "ers_ledger", "left_worklist_at", "ALTER TABLE ers_ledger" ADD_COLUMN " left_worklist_at " TYPE(VARCHAR, 32), NULL }, \
        { "ers_ledger", "next_check_at", "ALTER TABLE ers_ledger" ADD_COLUMN " next_check_at " TYPE(VARCHAR, 32), NULL }, \
        { "ers_document", "removed_at", "ALTER TABLE ers_document" ADD_COLUMN " removed_at " TYPE(VARCHAR, 32), NULL },

/* The first steps to version 4, on every vendor: the two columns of the
 * document's identity (attachment_key NULL until filled), then the C step
 * that fills the key.  Before any column is widened, so that the C step
 * reads attachment_id as the version-3 column it still is. */
#define STAGING_SCHEMA_STEPS_TO_V4_KEY(ADD_COLUMN)                                                          \
        { "ers_document", "occurrence", "ALTER TABLE ers_document" ADD_COLUMN " occurrence INTEGER DEFAULT 0 NOT NULL", NULL }, \
        { "ers_document", "attachment_key", "ALTER TABLE ers_document" ADD_COLUMN " attachment_key CHAR(64)", NULL }, \
        { NULL, NULL, NULL, document_key_fill },

/* The steps to version 5, on every vendor: the columns of STAGING_REFERRAL_V5,
 * STAGING_DOCUMENT_V5 and STAGING_WORKLIST_ENTRY_V5, each only when absent, added with ADD (SCHEMA_ADD_COLUMN
 * or SCHEMA_ADD), after those of version 4; its three new tables come from
 * STAGING_SCHEMA_DDL, and the view's new column from its CREATE (SQLite drops
 * the view first: sqlite.c). */
#define SCHEMA_ADD_COLUMN(table, name, type) { #table, #name, "ALTER TABLE " #table " ADD COLUMN " #name " " type, NULL },
#define SCHEMA_ADD(table, name, type) { #table, #name, "ALTER TABLE " #table " ADD " #name " " type, NULL },
#define STAGING_SCHEMA_STEPS_TO_V5(TYPE, ADD)                                                               \
        STAGING_REFERRAL_V5(ADD, TYPE) STAGING_DOCUMENT_V5(ADD, TYPE) STAGING_WORKLIST_ENTRY_V5(ADD, TYPE)

/* What an adapter's upgrade(from) returns, given its step lists from versions 1, 2, 3 and 4. */
#define STAGING_SCHEMA_UPGRADE_FROM(from, v1, v2, v3, v4)                                                   \
        ((from) == 1 ? (v1) : (from) == 2 ? (v2) : (from) == 3 ? (v3) : (from) == 4 ? (v4) : NULL)

#define STAGING_SCHEMA_UPGRADE(...)                                                                         \
        {                                                                                                   \
        __VA_ARGS__                                                                                         \
        { NULL, NULL, NULL, NULL },                                                                         \
        }
