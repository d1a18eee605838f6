-- SPDX-License-Identifier: MIT
-- ersd staging schema, version 5, for PostgreSQL.
--
-- This is exactly what `ersd --init-db` creates (adapters/postgresql.c; a
-- unit test keeps the two identical).  Every statement may be run again
-- safely.  By hand, as the schema's owner, in the database (and schema, see
-- search_path) ersd will use:
--   psql -v ON_ERROR_STOP=1 -d pas -f postgresql.sql
-- then record the version ersd checks for (also safe to repeat):
--   INSERT INTO ers_schema_version (version)
--     SELECT 5 WHERE NOT EXISTS (SELECT * FROM ers_schema_version);
-- `ersd --init-db` does both in one transaction.  Grants for the ersd
-- user: docs/postgresql.md.  Documentation: docs/schema.md.

-- A schema of version 1 (before patient matching), 2 (before the retry,
-- budget, poll and audit tables), 3 (before texts of any length and the
-- document's attachment_key) or 4 (before every element of a referral, the
-- answers as received and the outbox) is upgraded in place by
-- `ersd --init-db`; the statements it runs are in docs/schema.md.

-- The single row says which version of this schema the tables follow.
-- ersd refuses to write into a schema of another version.
CREATE TABLE IF NOT EXISTS ers_schema_version (
    version INTEGER NOT NULL
);

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
CREATE TABLE IF NOT EXISTS ers_referral (
    ubrn CHAR(12) NOT NULL PRIMARY KEY,
    version BIGINT NOT NULL,
    nhs_number TEXT, -- PATIENT IDENTIFIER
    nhs_number_valid SMALLINT NOT NULL,
    priority TEXT,
    state TEXT,
    state_reason TEXT,
    state_comment TEXT,
    specialty TEXT,
    specialty_display TEXT,
    service_id TEXT,
    service_name TEXT,
    referral_type TEXT,
    pathway_start TEXT,
    clinical_info_first_submitted TEXT,
    appointment_start TEXT,
    appointment_end TEXT,
    commissioning_org TEXT,
    request_id TEXT,
    status TEXT,
    intent TEXT,
    worklist VARCHAR(64),
    first_synced_at VARCHAR(32) NOT NULL,
    last_synced_at VARCHAR(32) NOT NULL,
    pas_patient_id VARCHAR(64), -- PATIENT IDENTIFIER (in the PAS)
    patient_match VARCHAR(16) DEFAULT 'NOT_CONFIGURED' NOT NULL,
    patient_checked_at VARCHAR(32),
    clinical_info_last_updated TEXT,
    state_reason_system TEXT,
    state_reason_display TEXT,
    appointment_reference TEXT,
    appointment_status TEXT,
    appointment_created TEXT,
    appointment_reason TEXT,
    appointment_reason_system TEXT,
    appointment_reason_display TEXT,
    appointment_comment TEXT,
    appointment_slot TEXT,
    appointment_clinician TEXT,
    clinic_type TEXT,
    named_clinician TEXT,
    advice_request TEXT,
    answer_sha256 CHAR(64)
);

-- Finding the referrals whose patient is still to be matched.
CREATE INDEX IF NOT EXISTS ers_referral_patient_match ON ers_referral (patient_match);

-- The related referrals a referral points to, as of its latest version.
CREATE TABLE IF NOT EXISTS ers_referral_related (
    ubrn CHAR(12) NOT NULL,
    related_ubrn CHAR(12) NOT NULL,
    PRIMARY KEY (ubrn, related_ubrn)
);

-- Finding the referrals that list a related referral (its documents shown
-- with them).
CREATE INDEX IF NOT EXISTS ers_referral_related_related ON ers_referral_related (related_ubrn);

-- The additional requirements of a referral (interpreter, advocacy,
-- transport, ...), as of its latest version, in the order e-RS lists them:
-- replaced as a whole on each new version.  code as e-RS sent it (ADVOCACY,
-- INTERPRETER, TRANSPORT, or one it adds later, verbatim); comments is the
-- referrer's free text (may name a patient).
CREATE TABLE IF NOT EXISTS ers_referral_requirement (
    ubrn CHAR(12) NOT NULL,
    seq INTEGER NOT NULL,
    code TEXT,
    display TEXT,
    code_system TEXT,
    comments TEXT,
    PRIMARY KEY (ubrn, seq)
);

-- Every A005 answer ersd read, as received: the bytes of the body before any
-- parsing (JSON, at most 10 MB), their SHA-256 (lower-case hex) and size,
-- the X-Correlation-ID of the call and when it arrived (UTC).  One row per
-- distinct answer of a referral version, written in the transaction of the
-- referral's rows.  PATIENT DATA: the whole referral.
CREATE TABLE IF NOT EXISTS ers_referral_answer (
    ubrn CHAR(12) NOT NULL,
    version BIGINT NOT NULL,
    sha256 CHAR(64) NOT NULL,
    size_bytes BIGINT NOT NULL,
    body BYTEA NOT NULL,
    correlation_id VARCHAR(36),
    received_at VARCHAR(32) NOT NULL,
    PRIMARY KEY (ubrn, version, sha256)
);

-- One row per revision of each document (attachment or clinical referral
-- information letter).  The content is in ers_document_part.  A document is
-- (ubrn, source_ubrn, kind, attachment_id, occurrence): occurrence counts the
-- earlier attachments of its referral with the same id (0 for the first);
-- attachment_key is the lower-case hex SHA-256 of attachment_id (followed,
-- when occurrence > 0, by a NUL byte and the occurrence in decimal): the
-- fixed-width key it is found by, as attachment_id has no length limit.
-- document_type (REFERRER, PROVIDER, ...), description (free text) and
-- attached_on_behalf_of are the DocumentReference's (version 5).
CREATE TABLE IF NOT EXISTS ers_document (
    document_id CHAR(36) NOT NULL PRIMARY KEY,
    ubrn CHAR(12) NOT NULL,
    source_ubrn CHAR(12) NOT NULL,
    kind VARCHAR(16) NOT NULL,
    attachment_id TEXT NOT NULL,
    revision INTEGER NOT NULL,
    source_version BIGINT NOT NULL,
    title TEXT,
    content_type TEXT,
    declared_size BIGINT,
    availability TEXT,
    attached_by_user TEXT,
    attached_by_org TEXT,
    created TEXT,
    fetch_status VARCHAR(16) NOT NULL,
    not_fetched_reason VARCHAR(255),
    size_bytes BIGINT,
    sha256 CHAR(64),
    part_count INTEGER,
    stored_at VARCHAR(32) NOT NULL,
    removed_at VARCHAR(32),
    occurrence INTEGER DEFAULT 0 NOT NULL,
    attachment_key CHAR(64) NOT NULL,
    document_type TEXT,
    description TEXT,
    attached_on_behalf_of TEXT,
    CONSTRAINT ers_document_identity UNIQUE (ubrn, source_ubrn, kind, attachment_key, revision)
);

-- Listing a referral's documents.
CREATE INDEX IF NOT EXISTS ers_document_ubrn ON ers_document (ubrn);

-- A document's content, as ordered parts of at most 1 MiB:
--   SELECT data FROM ers_document_part WHERE document_id = ... ORDER BY seq
CREATE TABLE IF NOT EXISTS ers_document_part (
    document_id CHAR(36) NOT NULL,
    seq INTEGER NOT NULL,
    data BYTEA NOT NULL,
    PRIMARY KEY (document_id, seq),
    FOREIGN KEY (document_id) REFERENCES ers_document (document_id)
);

-- What ersd has written, per UBRN: written in the same transaction as the
-- referral's rows.  Do not edit: ersd decides what to fetch from it.
-- first_seen_at: when ersd first saw the UBRN on a worklist;
-- left_worklist_at: when it was seen to have left its worklist (NULL while
-- on it; the referral's rows stay as last written); next_check_at: when
-- documents still owed (e-RS scanning them: PENDING) are asked for again.
CREATE TABLE IF NOT EXISTS ers_ledger (
    ubrn CHAR(12) NOT NULL PRIMARY KEY,
    version BIGINT NOT NULL,
    complete SMALLINT NOT NULL,
    worklist VARCHAR(64),
    correlation_id VARCHAR(36),
    synced_at VARCHAR(32) NOT NULL,
    first_seen_at VARCHAR(32),
    left_worklist_at VARCHAR(32),
    next_check_at VARCHAR(32)
);

-- The writer's lease (database.lease_seconds): which ersd may write, when
-- two or more run against this schema for failover.  One row per lease;
-- renewals counts its renewals (a standby takes over a lease that has not
-- moved for lease_seconds).  Do not edit while ersd runs.
CREATE TABLE IF NOT EXISTS ers_lease (
    name VARCHAR(64) NOT NULL PRIMARY KEY,
    holder VARCHAR(128) NOT NULL,
    renewals BIGINT NOT NULL,
    renewed_at VARCHAR(32) NOT NULL
);

-- Referrals seen on a worklist but not yet written at the version seen:
-- failing (attempts, reason, last SQLSTATE, correlation id of the last try) or
-- parked (parked = 1 after repeated failures: tried again later, never
-- dropped).  The worklist entry's own fields are kept so a retry needs no
-- worklist call.  The row goes in the transaction that writes the referral.
-- reason is one line for operators: never a patient identifier.
CREATE TABLE IF NOT EXISTS ers_retry (
    ubrn CHAR(12) NOT NULL PRIMARY KEY,
    worklist VARCHAR(64) NOT NULL,
    entry_version BIGINT,
    priority TEXT,
    service_id TEXT,
    service_name TEXT,
    referral_type TEXT,
    first_seen_at VARCHAR(32) NOT NULL,
    attempts INTEGER NOT NULL,
    last_attempt_at VARCHAR(32),
    next_attempt_at VARCHAR(32) NOT NULL,
    parked SMALLINT NOT NULL,
    reason VARCHAR(512),
    last_sqlstate CHAR(5),
    correlation_id VARCHAR(36)
);

CREATE INDEX IF NOT EXISTS ers_retry_next ON ers_retry (next_attempt_at);

-- The e-RS worklist budget: worklist (A008) calls made per e-RS service per
-- UK calendar day (Europe/London), counted before each call is sent so that
-- a restart or a crash loop cannot overspend.  Do not edit.
CREATE TABLE IF NOT EXISTS ers_budget (
    service_id VARCHAR(16) NOT NULL,
    budget_day CHAR(10) NOT NULL,
    calls INTEGER NOT NULL,
    PRIMARY KEY (service_id, budget_day)
);

-- One row per configured worklist, for `ersd status`: the last poll, its
-- result and correlation id, the next poll planned, the referrals listed.
CREATE TABLE IF NOT EXISTS ers_poll (
    worklist VARCHAR(64) NOT NULL PRIMARY KEY,
    last_poll_at VARCHAR(32),
    last_result VARCHAR(255),
    last_correlation_id VARCHAR(36),
    next_poll_at VARCHAR(32),
    referrals INTEGER
);

-- The audit trail: one row per write, append-only (ersd never updates nor
-- deletes a row).  seq counts 1, 2, ... per UBRN.  event_type: what
-- happened (NEW, UPDATED, DOCUMENTS, LEFT_WORKLIST, ...); detail: what
-- changed, by field name; documents: the document ids written with their
-- SHA-256.  `ersd audit UBRN` prints it.
CREATE TABLE IF NOT EXISTS ers_audit (
    ubrn CHAR(12) NOT NULL,
    seq INTEGER NOT NULL,
    version BIGINT,
    event_type VARCHAR(32) NOT NULL,
    detail TEXT,
    documents TEXT,
    recorded_at VARCHAR(32) NOT NULL,
    correlation_id VARCHAR(36),
    PRIMARY KEY (ubrn, seq)
);

-- The latest worklists: every entry of each worklist's last successful poll
-- (A008), replaced by the next poll.  How ersd notices a referral that left
-- its worklist, and what `ersd reconcile` compares the PAS with, without
-- spending a worklist call.
-- From ubrn_received on (version 5): the entry's working state in e-RS, as
-- e-RS lists it (appointment slot issues: when the UBRN was received, when
-- the patient expects contact, the last contact, the clinical information's
-- status; clinical_info_printed 1 or 0; request_context_status: what
-- changed since the referral was last reviewed in e-RS), NULL when absent.
CREATE TABLE IF NOT EXISTS ers_worklist_entry (
    worklist VARCHAR(64) NOT NULL,
    ubrn CHAR(12) NOT NULL,
    version BIGINT,
    listed_at VARCHAR(32) NOT NULL,
    correlation_id VARCHAR(36),
    ubrn_received TEXT,
    patient_contact_expected TEXT,
    last_contact TEXT,
    clinical_information_status TEXT,
    clinical_info_printed SMALLINT,
    request_context_status TEXT,
    PRIMARY KEY (worklist, ubrn)
);

-- Finding a UBRN on any worklist.
CREATE INDEX IF NOT EXISTS ers_worklist_entry_ubrn ON ers_worklist_entry (ubrn);

-- Decisions the PAS sends to e-RS through ersd (off by default: writeback):
-- the PAS inserts a request (ubrn, action, review_outcome, comment_text,
-- new_priority, decided_version, requested_by: a staff identifier, never a
-- patient's; requested_at, UTC); the database numbers it (id: the order of
-- the requests of one UBRN); ersd sends it once and records the outcome in
-- state (NEW, SENDING, DONE, REJECTED, STALE, RETRY), answered_version,
-- error_code, error_text, correlation_id, updated_at.
CREATE TABLE IF NOT EXISTS ers_outbox (
    id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ubrn CHAR(12) NOT NULL,
    action VARCHAR(32) NOT NULL,
    review_outcome VARCHAR(64),
    comment_text TEXT,
    new_priority VARCHAR(32),
    decided_version BIGINT NOT NULL,
    requested_by VARCHAR(64) NOT NULL,
    requested_at VARCHAR(32) NOT NULL,
    state VARCHAR(16) DEFAULT 'NEW' NOT NULL,
    attempts INTEGER DEFAULT 0 NOT NULL,
    next_attempt_at VARCHAR(32),
    answered_version BIGINT,
    error_code TEXT,
    error_text TEXT,
    correlation_id VARCHAR(36),
    updated_at VARCHAR(32),
    CONSTRAINT ers_outbox_action CHECK (action IN ('RECORD_REVIEW_OUTCOME', 'ACCEPT_REFERRAL')),
    CONSTRAINT ers_outbox_state CHECK (state IN ('NEW', 'SENDING', 'DONE', 'REJECTED', 'STALE', 'RETRY'))
);

-- The requests due for sending.
CREATE INDEX IF NOT EXISTS ers_outbox_due ON ers_outbox (state, next_attempt_at);

-- The requests of one referral, in order.
CREATE INDEX IF NOT EXISTS ers_outbox_ubrn ON ers_outbox (ubrn, id);

-- One row per referral, for admin staff.  PATIENT IDENTIFIER: nhs_number.
-- additional_requirements: how many the referral has (interpreter, ...).
CREATE OR REPLACE VIEW ers_referral_inbox AS
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
