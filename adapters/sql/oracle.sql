-- SPDX-License-Identifier: MIT
-- ersd staging schema, version 5, for Oracle Database (12.2 or later).
--
-- This is exactly what `ersd --init-db` creates (adapters/oracle.c; a unit
-- test keeps the two identical).  NOT YET RUN AGAINST A LIVE ORACLE
-- DATABASE: see docs/oracle.md for what has been checked.  Every statement
-- may be run again safely: before 23c Oracle has no CREATE TABLE IF NOT
-- EXISTS, so each CREATE is a PL/SQL block that ignores ORA-00955 (name
-- already used).  Text is NVARCHAR2/NCLOB (the national character set:
-- every Unicode character, 4-byte UTF-8 ones included, whatever the
-- database character set).  Oracle commits each DDL statement at once.
-- By hand, as the schema's owner:
--   sqlplus pas_owner@//host:1521/PASPDB @oracle.sql
-- then record the version ersd checks for (also safe to repeat):
--   INSERT INTO ers_schema_version (version)
--     SELECT 5 FROM DUAL WHERE NOT EXISTS (SELECT * FROM ers_schema_version);
--   COMMIT;
-- Grants for the ersd user: docs/oracle.md.  Documentation: docs/schema.md.

-- A schema of version 1 (before patient matching), 2 (before the retry,
-- budget, poll and audit tables), 3 (before texts of any length and the
-- document's attachment_key) or 4 (before every element of a referral, the
-- answers as received and the outbox) is upgraded in place by
-- `ersd --init-db`; the statements it runs are in docs/schema.md.
-- (Oracle: ALTER TABLE ... ADD, without COLUMN, and NVARCHAR2.)

-- The single row says which version of this schema the tables follow.
-- ersd refuses to write into a schema of another version.
BEGIN EXECUTE IMMEDIATE q'[CREATE TABLE ers_schema_version (
    version INTEGER NOT NULL
)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955) THEN RAISE; END IF;
END;
/

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
BEGIN EXECUTE IMMEDIATE q'[CREATE TABLE ers_referral (
    ubrn CHAR(12) NOT NULL PRIMARY KEY,
    version NUMBER(19) NOT NULL,
    nhs_number NCLOB, -- PATIENT IDENTIFIER
    nhs_number_valid SMALLINT NOT NULL,
    priority NCLOB,
    state NCLOB,
    state_reason NCLOB,
    state_comment NCLOB,
    specialty NCLOB,
    specialty_display NCLOB,
    service_id NCLOB,
    service_name NCLOB,
    referral_type NCLOB,
    pathway_start NCLOB,
    clinical_info_first_submitted NCLOB,
    appointment_start NCLOB,
    appointment_end NCLOB,
    commissioning_org NCLOB,
    request_id NCLOB,
    status NCLOB,
    intent NCLOB,
    worklist NVARCHAR2(64),
    first_synced_at NVARCHAR2(32) NOT NULL,
    last_synced_at NVARCHAR2(32) NOT NULL,
    pas_patient_id NVARCHAR2(64), -- PATIENT IDENTIFIER (in the PAS)
    patient_match NVARCHAR2(16) DEFAULT 'NOT_CONFIGURED' NOT NULL,
    patient_checked_at NVARCHAR2(32),
    clinical_info_last_updated NCLOB,
    state_reason_system NCLOB,
    state_reason_display NCLOB,
    appointment_reference NCLOB,
    appointment_status NCLOB,
    appointment_created NCLOB,
    appointment_reason NCLOB,
    appointment_reason_system NCLOB,
    appointment_reason_display NCLOB,
    appointment_comment NCLOB,
    appointment_slot NCLOB,
    appointment_clinician NCLOB,
    clinic_type NCLOB,
    named_clinician NCLOB,
    advice_request NCLOB,
    answer_sha256 CHAR(64)
)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955) THEN RAISE; END IF;
END;
/

-- Finding the referrals whose patient is still to be matched.
BEGIN EXECUTE IMMEDIATE q'[CREATE INDEX ers_referral_patient_match ON ers_referral (patient_match)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955, -1408) THEN RAISE; END IF;
END;
/

-- The related referrals a referral points to, as of its latest version.
BEGIN EXECUTE IMMEDIATE q'[CREATE TABLE ers_referral_related (
    ubrn CHAR(12) NOT NULL,
    related_ubrn CHAR(12) NOT NULL,
    PRIMARY KEY (ubrn, related_ubrn)
)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955) THEN RAISE; END IF;
END;
/

-- Finding the referrals that list a related referral (its documents shown
-- with them).
BEGIN EXECUTE IMMEDIATE q'[CREATE INDEX ers_referral_related_related ON ers_referral_related (related_ubrn)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955, -1408) THEN RAISE; END IF;
END;
/

-- The additional requirements of a referral (interpreter, advocacy,
-- transport, ...), as of its latest version, in the order e-RS lists them:
-- replaced as a whole on each new version.  code as e-RS sent it (ADVOCACY,
-- INTERPRETER, TRANSPORT, or one it adds later, verbatim); comments is the
-- referrer's free text (may name a patient).
BEGIN EXECUTE IMMEDIATE q'[CREATE TABLE ers_referral_requirement (
    ubrn CHAR(12) NOT NULL,
    seq INTEGER NOT NULL,
    code NCLOB,
    display NCLOB,
    code_system NCLOB,
    comments NCLOB,
    PRIMARY KEY (ubrn, seq)
)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955) THEN RAISE; END IF;
END;
/

-- Every A005 answer ersd read, as received: the bytes of the body before any
-- parsing (JSON, at most 10 MB), their SHA-256 (lower-case hex) and size,
-- the X-Correlation-ID of the call and when it arrived (UTC).  One row per
-- distinct answer of a referral version, written in the transaction of the
-- referral's rows.  PATIENT DATA: the whole referral.
BEGIN EXECUTE IMMEDIATE q'[CREATE TABLE ers_referral_answer (
    ubrn CHAR(12) NOT NULL,
    version NUMBER(19) NOT NULL,
    sha256 CHAR(64) NOT NULL,
    size_bytes NUMBER(19) NOT NULL,
    body BLOB NOT NULL,
    correlation_id NVARCHAR2(36),
    received_at NVARCHAR2(32) NOT NULL,
    PRIMARY KEY (ubrn, version, sha256)
)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955) THEN RAISE; END IF;
END;
/

-- One row per revision of each document (attachment or clinical referral
-- information letter).  The content is in ers_document_part.  A document is
-- (ubrn, source_ubrn, kind, attachment_id, occurrence): occurrence counts the
-- earlier attachments of its referral with the same id (0 for the first);
-- attachment_key is the lower-case hex SHA-256 of attachment_id (followed,
-- when occurrence > 0, by a NUL byte and the occurrence in decimal): the
-- fixed-width key it is found by, as attachment_id has no length limit.
-- document_type (REFERRER, PROVIDER, ...), description (free text) and
-- attached_on_behalf_of are the DocumentReference's (version 5).
BEGIN EXECUTE IMMEDIATE q'[CREATE TABLE ers_document (
    document_id CHAR(36) NOT NULL PRIMARY KEY,
    ubrn CHAR(12) NOT NULL,
    source_ubrn CHAR(12) NOT NULL,
    kind NVARCHAR2(16) NOT NULL,
    attachment_id NCLOB NOT NULL,
    revision INTEGER NOT NULL,
    source_version NUMBER(19) NOT NULL,
    title NCLOB,
    content_type NCLOB,
    declared_size NUMBER(19),
    availability NCLOB,
    attached_by_user NCLOB,
    attached_by_org NCLOB,
    created NCLOB,
    fetch_status NVARCHAR2(16) NOT NULL,
    not_fetched_reason NVARCHAR2(255),
    size_bytes NUMBER(19),
    sha256 CHAR(64),
    part_count INTEGER,
    stored_at NVARCHAR2(32) NOT NULL,
    removed_at NVARCHAR2(32),
    occurrence INTEGER DEFAULT 0 NOT NULL,
    attachment_key CHAR(64) NOT NULL,
    document_type NCLOB,
    description NCLOB,
    attached_on_behalf_of NCLOB,
    CONSTRAINT ers_document_identity UNIQUE (ubrn, source_ubrn, kind, attachment_key, revision)
)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955) THEN RAISE; END IF;
END;
/

-- Listing a referral's documents.
BEGIN EXECUTE IMMEDIATE q'[CREATE INDEX ers_document_ubrn ON ers_document (ubrn)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955, -1408) THEN RAISE; END IF;
END;
/

-- A document's content, as ordered parts of at most 1 MiB:
--   SELECT data FROM ers_document_part WHERE document_id = ... ORDER BY seq
BEGIN EXECUTE IMMEDIATE q'[CREATE TABLE ers_document_part (
    document_id CHAR(36) NOT NULL,
    seq INTEGER NOT NULL,
    data BLOB NOT NULL,
    PRIMARY KEY (document_id, seq),
    FOREIGN KEY (document_id) REFERENCES ers_document (document_id)
)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955) THEN RAISE; END IF;
END;
/

-- What ersd has written, per UBRN: written in the same transaction as the
-- referral's rows.  Do not edit: ersd decides what to fetch from it.
-- first_seen_at: when ersd first saw the UBRN on a worklist;
-- left_worklist_at: when it was seen to have left its worklist (NULL while
-- on it; the referral's rows stay as last written); next_check_at: when
-- documents still owed (e-RS scanning them: PENDING) are asked for again.
BEGIN EXECUTE IMMEDIATE q'[CREATE TABLE ers_ledger (
    ubrn CHAR(12) NOT NULL PRIMARY KEY,
    version NUMBER(19) NOT NULL,
    complete SMALLINT NOT NULL,
    worklist NVARCHAR2(64),
    correlation_id NVARCHAR2(36),
    synced_at NVARCHAR2(32) NOT NULL,
    first_seen_at NVARCHAR2(32),
    left_worklist_at NVARCHAR2(32),
    next_check_at NVARCHAR2(32)
)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955) THEN RAISE; END IF;
END;
/

-- The writer's lease (database.lease_seconds): which ersd may write, when
-- two or more run against this schema for failover.  One row per lease;
-- renewals counts its renewals (a standby takes over a lease that has not
-- moved for lease_seconds).  Do not edit while ersd runs.
BEGIN EXECUTE IMMEDIATE q'[CREATE TABLE ers_lease (
    name NVARCHAR2(64) NOT NULL PRIMARY KEY,
    holder NVARCHAR2(128) NOT NULL,
    renewals NUMBER(19) NOT NULL,
    renewed_at NVARCHAR2(32) NOT NULL
)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955) THEN RAISE; END IF;
END;
/

-- Referrals seen on a worklist but not yet written at the version seen:
-- failing (attempts, reason, last SQLSTATE, correlation id of the last try) or
-- parked (parked = 1 after repeated failures: tried again later, never
-- dropped).  The worklist entry's own fields are kept so a retry needs no
-- worklist call.  The row goes in the transaction that writes the referral.
-- reason is one line for operators: never a patient identifier.
BEGIN EXECUTE IMMEDIATE q'[CREATE TABLE ers_retry (
    ubrn CHAR(12) NOT NULL PRIMARY KEY,
    worklist NVARCHAR2(64) NOT NULL,
    entry_version NUMBER(19),
    priority NCLOB,
    service_id NCLOB,
    service_name NCLOB,
    referral_type NCLOB,
    first_seen_at NVARCHAR2(32) NOT NULL,
    attempts INTEGER NOT NULL,
    last_attempt_at NVARCHAR2(32),
    next_attempt_at NVARCHAR2(32) NOT NULL,
    parked SMALLINT NOT NULL,
    reason NVARCHAR2(512),
    last_sqlstate CHAR(5),
    correlation_id NVARCHAR2(36)
)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955) THEN RAISE; END IF;
END;
/

-- Finding the retries that are due.
BEGIN EXECUTE IMMEDIATE q'[CREATE INDEX ers_retry_next ON ers_retry (next_attempt_at)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955, -1408) THEN RAISE; END IF;
END;
/

-- The e-RS worklist budget: worklist (A008) calls made per e-RS service per
-- UK calendar day (Europe/London), counted before each call is sent so that
-- a restart or a crash loop cannot overspend.  Do not edit.
BEGIN EXECUTE IMMEDIATE q'[CREATE TABLE ers_budget (
    service_id NVARCHAR2(16) NOT NULL,
    budget_day CHAR(10) NOT NULL,
    calls INTEGER NOT NULL,
    PRIMARY KEY (service_id, budget_day)
)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955) THEN RAISE; END IF;
END;
/

-- One row per configured worklist, for `ersd status`: the last poll, its
-- result and correlation id, the next poll planned, the referrals listed.
BEGIN EXECUTE IMMEDIATE q'[CREATE TABLE ers_poll (
    worklist NVARCHAR2(64) NOT NULL PRIMARY KEY,
    last_poll_at NVARCHAR2(32),
    last_result NVARCHAR2(255),
    last_correlation_id NVARCHAR2(36),
    next_poll_at NVARCHAR2(32),
    referrals INTEGER
)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955) THEN RAISE; END IF;
END;
/

-- The audit trail: one row per write, append-only (ersd never updates nor
-- deletes a row).  seq counts 1, 2, ... per UBRN.  event_type: what
-- happened (NEW, UPDATED, DOCUMENTS, LEFT_WORKLIST, ...); detail: what
-- changed, by field name; documents: the document ids written with their
-- SHA-256.  `ersd audit UBRN` prints it.
BEGIN EXECUTE IMMEDIATE q'[CREATE TABLE ers_audit (
    ubrn CHAR(12) NOT NULL,
    seq INTEGER NOT NULL,
    version NUMBER(19),
    event_type NVARCHAR2(32) NOT NULL,
    detail NCLOB,
    documents NCLOB,
    recorded_at NVARCHAR2(32) NOT NULL,
    correlation_id NVARCHAR2(36),
    PRIMARY KEY (ubrn, seq)
)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955) THEN RAISE; END IF;
END;
/

-- The latest worklists: every entry of each worklist's last successful poll
-- (A008), replaced by the next poll.  How ersd notices a referral that left
-- its worklist, and what `ersd reconcile` compares the PAS with, without
-- spending a worklist call.
-- From ubrn_received on (version 5): the entry's working state in e-RS, as
-- e-RS lists it (appointment slot issues: when the UBRN was received, when
-- the patient expects contact, the last contact, the clinical information's
-- status; clinical_info_printed 1 or 0; request_context_status: what
-- changed since the referral was last reviewed in e-RS), NULL when absent.
BEGIN EXECUTE IMMEDIATE q'[CREATE TABLE ers_worklist_entry (
    worklist NVARCHAR2(64) NOT NULL,
    ubrn CHAR(12) NOT NULL,
    version NUMBER(19),
    listed_at NVARCHAR2(32) NOT NULL,
    correlation_id NVARCHAR2(36),
    ubrn_received NCLOB,
    patient_contact_expected NCLOB,
    last_contact NCLOB,
    clinical_information_status NCLOB,
    clinical_info_printed SMALLINT,
    request_context_status NCLOB,
    PRIMARY KEY (worklist, ubrn)
)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955) THEN RAISE; END IF;
END;
/

-- Finding a UBRN on any worklist.
BEGIN EXECUTE IMMEDIATE q'[CREATE INDEX ers_worklist_entry_ubrn ON ers_worklist_entry (ubrn)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955, -1408) THEN RAISE; END IF;
END;
/

-- Decisions the PAS sends to e-RS through ersd (off by default: writeback):
-- the PAS inserts a request (ubrn, action, review_outcome, comment_text,
-- new_priority, decided_version, requested_by: a staff identifier, never a
-- patient's; requested_at, UTC); the database numbers it (id: the order of
-- the requests of one UBRN); ersd sends it once and records the outcome in
-- state (NEW, SENDING, DONE, REJECTED, STALE, RETRY), answered_version,
-- error_code, error_text, correlation_id, updated_at.
BEGIN EXECUTE IMMEDIATE q'[CREATE TABLE ers_outbox (
    id NUMBER(19) GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    ubrn CHAR(12) NOT NULL,
    action NVARCHAR2(32) NOT NULL,
    review_outcome NVARCHAR2(64),
    comment_text NCLOB,
    new_priority NVARCHAR2(32),
    decided_version NUMBER(19) NOT NULL,
    requested_by NVARCHAR2(64) NOT NULL,
    requested_at NVARCHAR2(32) NOT NULL,
    state NVARCHAR2(16) DEFAULT 'NEW' NOT NULL,
    attempts INTEGER DEFAULT 0 NOT NULL,
    next_attempt_at NVARCHAR2(32),
    answered_version NUMBER(19),
    error_code NCLOB,
    error_text NCLOB,
    correlation_id NVARCHAR2(36),
    updated_at NVARCHAR2(32),
    CONSTRAINT ers_outbox_action CHECK (action IN ('RECORD_REVIEW_OUTCOME', 'ACCEPT_REFERRAL')),
    CONSTRAINT ers_outbox_state CHECK (state IN ('NEW', 'SENDING', 'DONE', 'REJECTED', 'STALE', 'RETRY'))
)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955) THEN RAISE; END IF;
END;
/

-- The requests due for sending.
BEGIN EXECUTE IMMEDIATE q'[CREATE INDEX ers_outbox_due ON ers_outbox (state, next_attempt_at)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955, -1408) THEN RAISE; END IF;
END;
/

-- The requests of one referral, in order.
BEGIN EXECUTE IMMEDIATE q'[CREATE INDEX ers_outbox_ubrn ON ers_outbox (ubrn, id)]';
EXCEPTION WHEN OTHERS THEN IF SQLCODE NOT IN (-955, -1408) THEN RAISE; END IF;
END;
/

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
