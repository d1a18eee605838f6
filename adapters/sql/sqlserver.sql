-- SPDX-License-Identifier: MIT
-- ersd staging schema, version 5, for Microsoft SQL Server (2016 SP1 or
-- later; Azure SQL Database).
--
-- This is exactly what `ersd --init-db` creates (adapters/sqlserver.c; a
-- unit test keeps the two identical).  NOT YET RUN AGAINST A LIVE SQL SERVER:
-- see docs/sqlserver.md for what has been checked.  Every statement may be
-- run again safely (each CREATE is guarded; CREATE OR ALTER VIEW).  Text is
-- NVARCHAR (UTF-16: every Unicode character, 4-byte UTF-8 ones included,
-- whatever the database collation); CHAR columns hold ASCII codes only.
-- By hand, as the schema's owner, in the database ersd will use:
--   sqlcmd -S tcp:host,1433 -d pas -i sqlserver.sql
-- then record the version ersd checks for (also safe to repeat):
--   IF NOT EXISTS (SELECT * FROM ers_schema_version)
--     INSERT INTO ers_schema_version (version) VALUES (5);
-- `ersd --init-db` does both in one transaction.  Grants for the ersd
-- user: docs/sqlserver.md.  Documentation: docs/schema.md.

-- A schema of version 1 (before patient matching), 2 (before the retry,
-- budget, poll and audit tables), 3 (before texts of any length and the
-- document's attachment_key) or 4 (before every element of a referral, the
-- answers as received and the outbox) is upgraded in place by
-- `ersd --init-db`; the statements it runs are in docs/schema.md.
-- (SQL Server: ALTER TABLE ... ADD, without COLUMN, and NVARCHAR.)

-- The single row says which version of this schema the tables follow.
-- ersd refuses to write into a schema of another version.
IF OBJECT_ID(N'ers_schema_version', N'U') IS NULL
CREATE TABLE ers_schema_version (
    version INTEGER NOT NULL
);
GO

-- One row per referral (UBRN), at the latest version ersd has synced.
-- PATIENT IDENTIFIER: nhs_number.  nhs_number_valid is 1 when the number
-- passes the NHS modulus-11 check, else 0 (staff check it).
-- Times in *_synced_at are UTC, ISO 8601: 2026-11-23T19:52:39Z.
-- pas_patient_id is the PAS's own id of the patient, found by the
-- configured database.patient_lookup; patient_match says how it went:
-- MATCHED, UNMATCHED, AMBIGUOUS (more than one PAS patient) or
-- NOT_CONFIGURED; patient_checked_at is when it was last looked up.
-- The columns from clinical_info_last_updated on (version 5) hold the rest
-- of what a referral says (docs/schema.md, "Every element of a referral");
-- appointment_comment is free text (may name a patient).
-- answer_sha256 names the A005 answer the row was derived from
-- (ers_referral_answer, at this version): what a referral read again
-- without a version is compared with, and what `ersd remap` derives from.
IF OBJECT_ID(N'ers_referral', N'U') IS NULL
CREATE TABLE ers_referral (
    ubrn CHAR(12) NOT NULL PRIMARY KEY,
    version BIGINT NOT NULL,
    nhs_number NVARCHAR(MAX), -- PATIENT IDENTIFIER
    nhs_number_valid SMALLINT NOT NULL,
    priority NVARCHAR(MAX),
    state NVARCHAR(MAX),
    state_reason NVARCHAR(MAX),
    state_comment NVARCHAR(MAX),
    specialty NVARCHAR(MAX),
    specialty_display NVARCHAR(MAX),
    service_id NVARCHAR(MAX),
    service_name NVARCHAR(MAX),
    referral_type NVARCHAR(MAX),
    pathway_start NVARCHAR(MAX),
    clinical_info_first_submitted NVARCHAR(MAX),
    appointment_start NVARCHAR(MAX),
    appointment_end NVARCHAR(MAX),
    commissioning_org NVARCHAR(MAX),
    request_id NVARCHAR(MAX),
    status NVARCHAR(MAX),
    intent NVARCHAR(MAX),
    worklist NVARCHAR(64),
    first_synced_at NVARCHAR(32) NOT NULL,
    last_synced_at NVARCHAR(32) NOT NULL,
    pas_patient_id NVARCHAR(64), -- PATIENT IDENTIFIER (in the PAS)
    patient_match NVARCHAR(16) DEFAULT 'NOT_CONFIGURED' NOT NULL,
    patient_checked_at NVARCHAR(32),
    clinical_info_last_updated NVARCHAR(MAX),
    state_reason_system NVARCHAR(MAX),
    state_reason_display NVARCHAR(MAX),
    appointment_reference NVARCHAR(MAX),
    appointment_status NVARCHAR(MAX),
    appointment_created NVARCHAR(MAX),
    appointment_reason NVARCHAR(MAX),
    appointment_reason_system NVARCHAR(MAX),
    appointment_reason_display NVARCHAR(MAX),
    appointment_comment NVARCHAR(MAX),
    appointment_slot NVARCHAR(MAX),
    appointment_clinician NVARCHAR(MAX),
    clinic_type NVARCHAR(MAX),
    named_clinician NVARCHAR(MAX),
    advice_request NVARCHAR(MAX),
    answer_sha256 CHAR(64)
);
GO

-- Finding the referrals whose patient is still to be matched.
IF INDEXPROPERTY(OBJECT_ID(N'ers_referral'), N'ers_referral_patient_match', 'IndexID') IS NULL
CREATE INDEX ers_referral_patient_match ON ers_referral (patient_match);
GO

-- The related referrals a referral points to, as of its latest version.
IF OBJECT_ID(N'ers_referral_related', N'U') IS NULL
CREATE TABLE ers_referral_related (
    ubrn CHAR(12) NOT NULL,
    related_ubrn CHAR(12) NOT NULL,
    PRIMARY KEY (ubrn, related_ubrn)
);
GO

-- Finding the referrals that list a related referral (its documents shown
-- with them).
IF INDEXPROPERTY(OBJECT_ID(N'ers_referral_related'), N'ers_referral_related_related', 'IndexID') IS NULL
CREATE INDEX ers_referral_related_related ON ers_referral_related (related_ubrn);
GO

-- The additional requirements of a referral (interpreter, advocacy,
-- transport, ...), as of its latest version, in the order e-RS lists them:
-- replaced as a whole on each new version.  code as e-RS sent it (ADVOCACY,
-- INTERPRETER, TRANSPORT, or one it adds later, verbatim); comments is the
-- referrer's free text (may name a patient).
IF OBJECT_ID(N'ers_referral_requirement', N'U') IS NULL
CREATE TABLE ers_referral_requirement (
    ubrn CHAR(12) NOT NULL,
    seq INTEGER NOT NULL,
    code NVARCHAR(MAX),
    display NVARCHAR(MAX),
    code_system NVARCHAR(MAX),
    comments NVARCHAR(MAX),
    PRIMARY KEY (ubrn, seq)
);
GO

-- Every A005 answer ersd read, as received: the bytes of the body before any
-- parsing (JSON, at most 10 MB), their SHA-256 (lower-case hex) and size,
-- the X-Correlation-ID of the call and when it arrived (UTC).  One row per
-- distinct answer of a referral version, written in the transaction of the
-- referral's rows.  PATIENT DATA: the whole referral.
IF OBJECT_ID(N'ers_referral_answer', N'U') IS NULL
CREATE TABLE ers_referral_answer (
    ubrn CHAR(12) NOT NULL,
    version BIGINT NOT NULL,
    sha256 CHAR(64) NOT NULL,
    size_bytes BIGINT NOT NULL,
    body VARBINARY(MAX) NOT NULL,
    correlation_id NVARCHAR(36),
    received_at NVARCHAR(32) NOT NULL,
    PRIMARY KEY (ubrn, version, sha256)
);
GO

-- One row per revision of each document (attachment or clinical referral
-- information letter).  The content is in ers_document_part.  A document is
-- (ubrn, source_ubrn, kind, attachment_id, occurrence): occurrence counts the
-- earlier attachments of its referral with the same id (0 for the first);
-- attachment_key is the lower-case hex SHA-256 of attachment_id (followed,
-- when occurrence > 0, by a NUL byte and the occurrence in decimal): the
-- fixed-width key it is found by, as attachment_id has no length limit.
-- document_type (REFERRER, PROVIDER, ...), description (free text) and
-- attached_on_behalf_of are the DocumentReference's (version 5).
IF OBJECT_ID(N'ers_document', N'U') IS NULL
CREATE TABLE ers_document (
    document_id CHAR(36) NOT NULL PRIMARY KEY,
    ubrn CHAR(12) NOT NULL,
    source_ubrn CHAR(12) NOT NULL,
    kind NVARCHAR(16) NOT NULL,
    attachment_id NVARCHAR(MAX) NOT NULL,
    revision INTEGER NOT NULL,
    source_version BIGINT NOT NULL,
    title NVARCHAR(MAX),
    content_type NVARCHAR(MAX),
    declared_size BIGINT,
    availability NVARCHAR(MAX),
    attached_by_user NVARCHAR(MAX),
    attached_by_org NVARCHAR(MAX),
    created NVARCHAR(MAX),
    fetch_status NVARCHAR(16) NOT NULL,
    not_fetched_reason NVARCHAR(255),
    size_bytes BIGINT,
    sha256 CHAR(64),
    part_count INTEGER,
    stored_at NVARCHAR(32) NOT NULL,
    removed_at NVARCHAR(32),
    occurrence INTEGER DEFAULT 0 NOT NULL,
    attachment_key CHAR(64) NOT NULL,
    document_type NVARCHAR(MAX),
    description NVARCHAR(MAX),
    attached_on_behalf_of NVARCHAR(MAX),
    CONSTRAINT ers_document_identity UNIQUE (ubrn, source_ubrn, kind, attachment_key, revision)
);
GO

-- Listing a referral's documents.
IF INDEXPROPERTY(OBJECT_ID(N'ers_document'), N'ers_document_ubrn', 'IndexID') IS NULL
CREATE INDEX ers_document_ubrn ON ers_document (ubrn);
GO

-- A document's content, as ordered parts of at most 1 MiB:
--   SELECT data FROM ers_document_part WHERE document_id = ... ORDER BY seq
IF OBJECT_ID(N'ers_document_part', N'U') IS NULL
CREATE TABLE ers_document_part (
    document_id CHAR(36) NOT NULL,
    seq INTEGER NOT NULL,
    data VARBINARY(MAX) NOT NULL,
    PRIMARY KEY (document_id, seq),
    FOREIGN KEY (document_id) REFERENCES ers_document (document_id)
);
GO

-- What ersd has written, per UBRN: written in the same transaction as the
-- referral's rows.  Do not edit: ersd decides what to fetch from it.
-- first_seen_at: when ersd first saw the UBRN on a worklist;
-- left_worklist_at: when it was seen to have left its worklist (NULL while
-- on it; the referral's rows stay as last written); next_check_at: when
-- documents still owed (e-RS scanning them: PENDING) are asked for again.
IF OBJECT_ID(N'ers_ledger', N'U') IS NULL
CREATE TABLE ers_ledger (
    ubrn CHAR(12) NOT NULL PRIMARY KEY,
    version BIGINT NOT NULL,
    complete SMALLINT NOT NULL,
    worklist NVARCHAR(64),
    correlation_id NVARCHAR(36),
    synced_at NVARCHAR(32) NOT NULL,
    first_seen_at NVARCHAR(32),
    left_worklist_at NVARCHAR(32),
    next_check_at NVARCHAR(32)
);
GO

-- The writer's lease (database.lease_seconds): which ersd may write, when
-- two or more run against this schema for failover.  One row per lease;
-- renewals counts its renewals (a standby takes over a lease that has not
-- moved for lease_seconds).  Do not edit while ersd runs.
IF OBJECT_ID(N'ers_lease', N'U') IS NULL
CREATE TABLE ers_lease (
    name NVARCHAR(64) NOT NULL PRIMARY KEY,
    holder NVARCHAR(128) NOT NULL,
    renewals BIGINT NOT NULL,
    renewed_at NVARCHAR(32) NOT NULL
);
GO

-- Referrals seen on a worklist but not yet written at the version seen:
-- failing (attempts, reason, last SQLSTATE, correlation id of the last try) or
-- parked (parked = 1 after repeated failures: tried again later, never
-- dropped).  The worklist entry's own fields are kept so a retry needs no
-- worklist call.  The row goes in the transaction that writes the referral.
-- reason is one line for operators: never a patient identifier.
IF OBJECT_ID(N'ers_retry', N'U') IS NULL
CREATE TABLE ers_retry (
    ubrn CHAR(12) NOT NULL PRIMARY KEY,
    worklist NVARCHAR(64) NOT NULL,
    entry_version BIGINT,
    priority NVARCHAR(MAX),
    service_id NVARCHAR(MAX),
    service_name NVARCHAR(MAX),
    referral_type NVARCHAR(MAX),
    first_seen_at NVARCHAR(32) NOT NULL,
    attempts INTEGER NOT NULL,
    last_attempt_at NVARCHAR(32),
    next_attempt_at NVARCHAR(32) NOT NULL,
    parked SMALLINT NOT NULL,
    reason NVARCHAR(512),
    last_sqlstate CHAR(5),
    correlation_id NVARCHAR(36)
);
GO

-- Finding the retries that are due.
IF INDEXPROPERTY(OBJECT_ID(N'ers_retry'), N'ers_retry_next', 'IndexID') IS NULL
CREATE INDEX ers_retry_next ON ers_retry (next_attempt_at);
GO

-- The e-RS worklist budget: worklist (A008) calls made per e-RS service per
-- UK calendar day (Europe/London), counted before each call is sent so that
-- a restart or a crash loop cannot overspend.  Do not edit.
IF OBJECT_ID(N'ers_budget', N'U') IS NULL
CREATE TABLE ers_budget (
    service_id NVARCHAR(16) NOT NULL,
    budget_day CHAR(10) NOT NULL,
    calls INTEGER NOT NULL,
    PRIMARY KEY (service_id, budget_day)
);
GO

-- One row per configured worklist, for `ersd status`: the last poll, its
-- result and correlation id, the next poll planned, the referrals listed.
IF OBJECT_ID(N'ers_poll', N'U') IS NULL
CREATE TABLE ers_poll (
    worklist NVARCHAR(64) NOT NULL PRIMARY KEY,
    last_poll_at NVARCHAR(32),
    last_result NVARCHAR(255),
    last_correlation_id NVARCHAR(36),
    next_poll_at NVARCHAR(32),
    referrals INTEGER
);
GO

-- The audit trail: one row per write, append-only (ersd never updates nor
-- deletes a row).  seq counts 1, 2, ... per UBRN.  event_type: what
-- happened (NEW, UPDATED, DOCUMENTS, LEFT_WORKLIST, ...); detail: what
-- changed, by field name; documents: the document ids written with their
-- SHA-256.  `ersd audit UBRN` prints it.
IF OBJECT_ID(N'ers_audit', N'U') IS NULL
CREATE TABLE ers_audit (
    ubrn CHAR(12) NOT NULL,
    seq INTEGER NOT NULL,
    version BIGINT,
    event_type NVARCHAR(32) NOT NULL,
    detail NVARCHAR(MAX),
    documents NVARCHAR(MAX),
    recorded_at NVARCHAR(32) NOT NULL,
    correlation_id NVARCHAR(36),
    PRIMARY KEY (ubrn, seq)
);
GO

-- The latest worklists: every entry of each worklist's last successful poll
-- (A008), replaced by the next poll.  How ersd notices a referral that left
-- its worklist, and what `ersd reconcile` compares the PAS with, without
-- spending a worklist call.
-- From ubrn_received on (version 5): the entry's working state in e-RS, as
-- e-RS lists it (appointment slot issues: when the UBRN was received, when
-- the patient expects contact, the last contact, the clinical information's
-- status; clinical_info_printed 1 or 0; request_context_status: what
-- changed since the referral was last reviewed in e-RS), NULL when absent.
IF OBJECT_ID(N'ers_worklist_entry', N'U') IS NULL
CREATE TABLE ers_worklist_entry (
    worklist NVARCHAR(64) NOT NULL,
    ubrn CHAR(12) NOT NULL,
    version BIGINT,
    listed_at NVARCHAR(32) NOT NULL,
    correlation_id NVARCHAR(36),
    ubrn_received NVARCHAR(MAX),
    patient_contact_expected NVARCHAR(MAX),
    last_contact NVARCHAR(MAX),
    clinical_information_status NVARCHAR(MAX),
    clinical_info_printed SMALLINT,
    request_context_status NVARCHAR(MAX),
    PRIMARY KEY (worklist, ubrn)
);
GO

-- Finding a UBRN on any worklist.
IF INDEXPROPERTY(OBJECT_ID(N'ers_worklist_entry'), N'ers_worklist_entry_ubrn', 'IndexID') IS NULL
CREATE INDEX ers_worklist_entry_ubrn ON ers_worklist_entry (ubrn);
GO

-- Decisions the PAS sends to e-RS through ersd (off by default: writeback):
-- the PAS inserts a request (ubrn, action, review_outcome, comment_text,
-- new_priority, decided_version, requested_by: a staff identifier, never a
-- patient's; requested_at, UTC); the database numbers it (id: the order of
-- the requests of one UBRN); ersd sends it once and records the outcome in
-- state (NEW, SENDING, DONE, REJECTED, STALE, RETRY), answered_version,
-- error_code, error_text, correlation_id, updated_at.
IF OBJECT_ID(N'ers_outbox', N'U') IS NULL
CREATE TABLE ers_outbox (
    id BIGINT IDENTITY(1,1) NOT NULL PRIMARY KEY,
    ubrn CHAR(12) NOT NULL,
    action NVARCHAR(32) NOT NULL,
    review_outcome NVARCHAR(64),
    comment_text NVARCHAR(MAX),
    new_priority NVARCHAR(32),
    decided_version BIGINT NOT NULL,
    requested_by NVARCHAR(64) NOT NULL,
    requested_at NVARCHAR(32) NOT NULL,
    state NVARCHAR(16) DEFAULT 'NEW' NOT NULL,
    attempts INTEGER DEFAULT 0 NOT NULL,
    next_attempt_at NVARCHAR(32),
    answered_version BIGINT,
    error_code NVARCHAR(MAX),
    error_text NVARCHAR(MAX),
    correlation_id NVARCHAR(36),
    updated_at NVARCHAR(32),
    CONSTRAINT ers_outbox_action CHECK (action IN ('RECORD_REVIEW_OUTCOME', 'ACCEPT_REFERRAL')),
    CONSTRAINT ers_outbox_state CHECK (state IN ('NEW', 'SENDING', 'DONE', 'REJECTED', 'STALE', 'RETRY'))
);
GO

-- The requests due for sending.
IF INDEXPROPERTY(OBJECT_ID(N'ers_outbox'), N'ers_outbox_due', 'IndexID') IS NULL
CREATE INDEX ers_outbox_due ON ers_outbox (state, next_attempt_at);
GO

-- The requests of one referral, in order.
IF INDEXPROPERTY(OBJECT_ID(N'ers_outbox'), N'ers_outbox_ubrn', 'IndexID') IS NULL
CREATE INDEX ers_outbox_ubrn ON ers_outbox (ubrn, id);
GO

-- One row per referral, for admin staff.  PATIENT IDENTIFIER: nhs_number.
-- additional_requirements: how many the referral has (interpreter, ...).
CREATE OR ALTER VIEW ers_referral_inbox AS
SELECT r.ubrn,
       r.nhs_number, -- PATIENT IDENTIFIER
       r.nhs_number_valid,
       r.priority,
       r.state,
       r.specialty,
       r.specialty_display,
       r.service_id,
       r.service_name,
       r.appointment_start,
       r.appointment_end,
       r.worklist,
       (SELECT COUNT(*) FROM ers_document d
         WHERE d.ubrn = r.ubrn AND d.fetch_status = 'FETCHED'
           AND d.revision = (SELECT MAX(d2.revision) FROM ers_document d2
                              WHERE d2.ubrn = d.ubrn AND d2.source_ubrn = d.source_ubrn
                                AND d2.kind = d.kind
                                AND d2.attachment_key = d.attachment_key)) AS documents_fetched,
       (SELECT COUNT(*) FROM ers_document d
         WHERE d.ubrn = r.ubrn AND d.fetch_status = 'NOT_FETCHED') AS documents_not_fetched,
       r.last_synced_at,
       r.pas_patient_id, -- PATIENT IDENTIFIER
       r.patient_match,
       (SELECT COUNT(*) FROM ers_referral_requirement q
         WHERE q.ubrn = r.ubrn) AS additional_requirements
  FROM ers_referral r;
GO
