/* SPDX-License-Identifier: MIT */
/*
 * Every SQL statement the PAS target sends to the staging tables, in one
 * table a DBA can read: statements[] (run by id through run(), prepared once
 * per connection), grouped under the file that runs them, and the probes of
 * pas_check_schema().  Each statement is written once for every vendor:
 * portable SQL, '?' for every value (bound, never formatted in), no LIMIT,
 * no TEXT column compared, grouped, ordered or indexed (an NCLOB on Oracle:
 * schema.h).  Not here: the DDL and its
 * upgrade steps (schema.h, adapters/sql/, adapters/<vendor>.c,
 * document_key.c), the adapters' session and lock SQL, and the operator's
 * statements (the patient lookup and the mappings, from the configuration).
 */
#include "pas_internal.h"

const struct statement statements[ST_MAX_] = {
        /* pas_schema.c: the schema version. */
        [ST_VERSION_GET] = { "read ers_schema_version", "SELECT version FROM ers_schema_version" },
        [ST_VERSION_INSERT] = { "insert ers_schema_version",
                                "INSERT INTO ers_schema_version (version) VALUES (?)" },
        [ST_VERSION_UPDATE] = { "update ers_schema_version", "UPDATE ers_schema_version SET version = ?" },

        /* pas_write.c: the ledger, the referral's row and its related links. */
        [ST_LEDGER_GET] = { "read ers_ledger",
                            "SELECT version, complete, correlation_id FROM ers_ledger WHERE ubrn = ?" },
        [ST_LEDGER_UPDATE] = { "update ers_ledger",
                               "UPDATE ers_ledger SET version = ?, complete = ?, worklist = ?, "
                               "correlation_id = ?, synced_at = ? WHERE ubrn = ?" },
        [ST_LEDGER_INSERT] = { "insert ers_ledger",
                               "INSERT INTO ers_ledger (version, complete, worklist, correlation_id, "
                               "synced_at, ubrn, first_seen_at) VALUES (?, ?, ?, ?, ?, ?, ?)" },
        /* Parameters 1-37 are shared by UPDATE and INSERT, in this order;
         * the fields only a worklist entry carries are kept when absent. */
        [ST_REFERRAL_UPDATE] = { "update ers_referral",
                                 "UPDATE ers_referral SET version = ?, nhs_number = ?, nhs_number_valid = ?, "
                                 "priority = ?, state = ?, state_reason = ?, state_comment = ?, "
                                 "specialty = ?, specialty_display = ?, "
                                 "service_id = COALESCE(?, service_id), "
                                 "service_name = COALESCE(?, service_name), "
                                 "referral_type = COALESCE(?, referral_type), "
                                 "pathway_start = ?, clinical_info_first_submitted = ?, "
                                 "appointment_start = ?, appointment_end = ?, commissioning_org = ?, "
                                 "request_id = ?, status = ?, intent = ?, "
                                 "clinical_info_last_updated = ?, state_reason_system = ?, "
                                 "state_reason_display = ?, appointment_reference = ?, appointment_status = ?, "
                                 "appointment_created = ?, appointment_reason = ?, appointment_reason_system = ?, "
                                 "appointment_reason_display = ?, appointment_comment = ?, appointment_slot = ?, "
                                 "appointment_clinician = ?, clinic_type = ?, named_clinician = ?, "
                                 "advice_request = ?, answer_sha256 = NULL, "
                                 "worklist = COALESCE(?, worklist), last_synced_at = ? "
                                 "WHERE ubrn = ?" },
        [ST_REFERRAL_INSERT] = { "insert ers_referral",
                                 "INSERT INTO ers_referral (version, nhs_number, nhs_number_valid, "
                                 "priority, state, state_reason, state_comment, specialty, "
                                 "specialty_display, service_id, service_name, referral_type, "
                                 "pathway_start, clinical_info_first_submitted, appointment_start, "
                                 "appointment_end, commissioning_org, request_id, status, intent, "
                                 "clinical_info_last_updated, state_reason_system, state_reason_display, "
                                 "appointment_reference, appointment_status, appointment_created, "
                                 "appointment_reason, appointment_reason_system, appointment_reason_display, "
                                 "appointment_comment, appointment_slot, appointment_clinician, clinic_type, "
                                 "named_clinician, advice_request, "
                                 "worklist, last_synced_at, ubrn, first_synced_at) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                                 "?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
                                 "?, ?, ?, ?)" },
        [ST_REFERRAL_VERSION] = { "read ers_referral version", "SELECT version FROM ers_referral WHERE ubrn = ?" },
        [ST_RELATED_DELETE] = { "delete ers_referral_related",
                                "DELETE FROM ers_referral_related WHERE ubrn = ?" },
        [ST_RELATED_INSERT] = { "insert ers_referral_related",
                                "INSERT INTO ers_referral_related (ubrn, related_ubrn) VALUES (?, ?)" },
        [ST_REQUIREMENT_DELETE] = { "delete ers_referral_requirement",
                                    "DELETE FROM ers_referral_requirement WHERE ubrn = ?" },
        [ST_REQUIREMENT_INSERT] = { "insert ers_referral_requirement",
                                    "INSERT INTO ers_referral_requirement (ubrn, seq, code, display, code_system, "
                                    "comments) VALUES (?, ?, ?, ?, ?, ?)" },
        [ST_ENTRY_FIELDS] = { "read ers_referral",
                              "SELECT version, nhs_number, priority, specialty FROM ers_referral WHERE ubrn = ?" },

        /* pas_document.c: documents and their parts. */
        /* A document is found by its key (document_key.h), never by its id: a TEXT column. */
        [ST_DOCUMENT_GET] = { "read ers_document",
                              "SELECT document_id, fetch_status, sha256, revision, source_version, "
                              "availability, not_fetched_reason, declared_size, created FROM ers_document "
                              "WHERE ubrn = ? AND source_ubrn = ? AND kind = ? AND attachment_key = ? "
                              "ORDER BY revision DESC" },
        /* Parameters 1-17 are shared by INSERT and UPDATE, in this order. */
        [ST_DOCUMENT_INSERT] = { "insert ers_document",
                                 "INSERT INTO ers_document (source_version, title, content_type, "
                                 "declared_size, availability, attached_by_user, attached_by_org, "
                                 "created, document_type, description, attached_on_behalf_of, "
                                 "fetch_status, not_fetched_reason, size_bytes, sha256, "
                                 "part_count, stored_at, document_id, ubrn, source_ubrn, kind, "
                                 "attachment_id, revision, occurrence, attachment_key) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" },
        [ST_DOCUMENT_UPDATE] = { "update ers_document",
                                 "UPDATE ers_document SET source_version = ?, title = ?, "
                                 "content_type = ?, declared_size = ?, availability = ?, "
                                 "attached_by_user = ?, attached_by_org = ?, created = ?, "
                                 "document_type = ?, description = ?, attached_on_behalf_of = ?, "
                                 "fetch_status = ?, not_fetched_reason = ?, size_bytes = ?, "
                                 "sha256 = ?, part_count = ?, stored_at = ? WHERE document_id = ?" },
        [ST_PART_DELETE] = { "delete ers_document_part",
                             "DELETE FROM ers_document_part WHERE document_id = ?" },
        [ST_PART_INSERT] = { "insert ers_document_part",
                             "INSERT INTO ers_document_part (document_id, seq, data) VALUES (?, ?, ?)" },
        /* The document's identity, then the columns of ST_DOCUMENT_GET. */
        [ST_DOCUMENTS_KNOWN] = { "read ers_document of a referral",
                                 "SELECT source_ubrn, kind, attachment_key, occurrence, attachment_id, document_id, "
                                 "fetch_status, sha256, revision, source_version, availability, not_fetched_reason, "
                                 "declared_size, created FROM ers_document WHERE ubrn = ? "
                                 "ORDER BY source_ubrn, kind, attachment_key, revision DESC" },
        /* Every revision; one attachment's rows together (its key), read into one entry. */
        [ST_ATTACHMENTS_STORED] = { "read ers_document attachments",
                                    "SELECT attachment_key, occurrence, CASE WHEN removed_at IS NULL THEN 0 ELSE 1 END, "
                                    "attachment_id, declared_size, created, fetch_status FROM ers_document "
                                    "WHERE ubrn = ? AND source_ubrn = ? "
                                    "AND kind = 'ATTACHMENT' ORDER BY attachment_key, revision DESC" },
        /* Once per referral or related referral written at a new version: the index
         * ers_referral_related_related serves it (the key is (ubrn, related_ubrn)). */
        [ST_RELATED_LISTING] = { "read ers_referral_related by related referral",
                                 "SELECT ubrn FROM ers_referral_related WHERE related_ubrn = ? ORDER BY ubrn" },
        [ST_ATTACHMENT_REMOVED] = { "update ers_document removed_at",
                                    "UPDATE ers_document SET removed_at = ? WHERE ubrn = ? AND source_ubrn = ? "
                                    "AND kind = 'ATTACHMENT' AND attachment_key = ?" },

        /* pas_document_rows.c: ersd remap's documents, every revision, read whole; the
         * columns their answer gives set again; a part read back alone (one a statement,
         * so that no driver holds a document's parts at once).  The texts last. */
        [ST_DOCUMENT_ROWS] = { "read ers_document rows of a referral",
                               "SELECT document_id, source_ubrn, kind, occurrence, revision, source_version, "
                               "fetch_status, size_bytes, sha256, part_count, declared_size, attachment_id, "
                               "not_fetched_reason, title, content_type, availability, attached_by_user, "
                               "attached_by_org, created, document_type, description, attached_on_behalf_of "
                               "FROM ers_document WHERE ubrn = ? "
                               "ORDER BY source_ubrn, source_version, kind, attachment_key, revision" },
        [ST_DOCUMENT_DESCRIBED] = { "update ers_document from its answer",
                                    "UPDATE ers_document SET title = ?, content_type = ?, declared_size = ?, "
                                    "availability = ?, attached_by_user = ?, attached_by_org = ?, created = ?, "
                                    "document_type = ?, description = ?, attached_on_behalf_of = ? "
                                    "WHERE document_id = ?" },
        [ST_PART_GET] = { "read ers_document_part",
                          "SELECT data FROM ers_document_part WHERE document_id = ? AND seq = ?" },

        /* pas_patient.c: patient matching. */
        [ST_PATIENT_LOOKUP] = { "patient lookup", NULL },
        [ST_PATIENT_UPDATE] = { "update ers_referral patient match",
                                "UPDATE ers_referral SET pas_patient_id = ?, patient_match = ?, "
                                "patient_checked_at = ? WHERE ubrn = ?" },
        /* No LIMIT (each vendor spells it differently): the caller stops fetching. */
        [ST_PATIENT_REMATCH] = { "read ers_referral to match patients",
                                 "SELECT ubrn, nhs_number, patient_match, version FROM ers_referral "
                                 "WHERE patient_match IN ('UNMATCHED', 'AMBIGUOUS', 'NOT_CONFIGURED') "
                                 "AND nhs_number_valid = 1 AND nhs_number IS NOT NULL "
                                 "AND (patient_checked_at IS NULL OR patient_checked_at <= ?) "
                                 "ORDER BY COALESCE(patient_checked_at, '0'), ubrn" },

        /* pas_lease.c: the writer's lease. */
        [ST_LEASE_GET] = { "read ers_lease", "SELECT holder, renewals FROM ers_lease WHERE name = ?" },
        [ST_LEASE_INSERT] = { "insert ers_lease",
                              "INSERT INTO ers_lease (holder, renewals, renewed_at, name) VALUES (?, 1, ?, ?)" },
        /* Compare and swap: only when the row is still as the standby saw it. */
        [ST_LEASE_TAKE] = { "take ers_lease",
                            "UPDATE ers_lease SET holder = ?, renewals = renewals + 1, renewed_at = ? "
                            "WHERE name = ? AND holder = ? AND renewals = ?" },
        [ST_LEASE_RENEW] = { "renew ers_lease",
                             "UPDATE ers_lease SET renewals = renewals + 1, renewed_at = ? "
                             "WHERE name = ? AND holder = ?" },
        [ST_LEASE_RELEASE] = { "release ers_lease",
                               "UPDATE ers_lease SET holder = ?, renewed_at = ? WHERE name = ? AND holder = ?" },

        /* pas_audit.c: the audit trail. */
        [ST_REFERRAL_STORED] = { "read ers_referral for the audit trail",
                                 "SELECT version, state, state_reason, priority, status, specialty, service_id, "
                                 "appointment_start, appointment_end, appointment_status, appointment_reason, "
                                 "appointment_reference, appointment_slot, appointment_clinician, "
                                 "clinical_info_last_updated, clinic_type, named_clinician, advice_request, "
                                 "nhs_number, state_comment, state_reason_system, state_reason_display, "
                                 "specialty_display, service_name, referral_type, pathway_start, "
                                 "clinical_info_first_submitted, commissioning_org, request_id, intent, "
                                 "appointment_created, appointment_reason_system, appointment_reason_display, "
                                 "appointment_comment, patient_match "
                                 "FROM ers_referral WHERE ubrn = ?" },
        [ST_REQUIREMENT_GET] = { "read ers_referral_requirement",
                                 "SELECT code, display, code_system, comments FROM ers_referral_requirement "
                                 "WHERE ubrn = ? ORDER BY seq" },
        [ST_RELATED_GET] = { "read ers_referral_related",
                             "SELECT related_ubrn FROM ers_referral_related WHERE ubrn = ? ORDER BY related_ubrn" },
        [ST_AUDIT_SEQ] = { "read ers_audit seq", "SELECT MAX(seq) FROM ers_audit WHERE ubrn = ?" },
        [ST_AUDIT_INSERT] = { "insert ers_audit",
                              "INSERT INTO ers_audit (ubrn, seq, version, event_type, detail, documents, "
                              "recorded_at, correlation_id) VALUES (?, ?, ?, ?, ?, ?, ?, ?)" },
        [ST_AUDIT_READ] = { "read ers_audit",
                            "SELECT seq, version, event_type, detail, documents, recorded_at, correlation_id "
                            "FROM ers_audit WHERE ubrn = ? ORDER BY seq" },

        /* pas_worklist.c: the latest worklists, reconcile. */
        [ST_WORKLIST_CLEAR] = { "delete ers_worklist_entry", "DELETE FROM ers_worklist_entry WHERE worklist = ?" },
        [ST_WORKLIST_INSERT] = { "insert ers_worklist_entry",
                                 "INSERT INTO ers_worklist_entry (worklist, ubrn, version, listed_at, "
                                 "correlation_id, ubrn_received, patient_contact_expected, last_contact, "
                                 "clinical_information_status, clinical_info_printed, request_context_status) "
                                 "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)" },
        [ST_LEFT_FIND] = { "find referrals gone from the worklists",
                           "SELECT l.ubrn, l.version FROM ers_ledger l WHERE l.worklist = ? "
                           "AND l.left_worklist_at IS NULL AND NOT EXISTS "
                           "(SELECT 1 FROM ers_worklist_entry w WHERE w.ubrn = l.ubrn) ORDER BY l.ubrn" },
        [ST_RETURNED_FIND] = { "find referrals back on a worklist",
                               "SELECT l.ubrn, l.version FROM ers_ledger l WHERE l.left_worklist_at IS NOT NULL "
                               "AND EXISTS (SELECT 1 FROM ers_worklist_entry w WHERE w.ubrn = l.ubrn "
                               "AND w.worklist = ?) ORDER BY l.ubrn" },
        [ST_LEDGER_LEFT] = { "update ers_ledger left_worklist_at",
                             "UPDATE ers_ledger SET left_worklist_at = ? WHERE ubrn = ?" },
        [ST_RECONCILE_LISTED] = { "read ers_worklist_entry against ers_referral",
                                  "SELECT w.ubrn, w.worklist, w.listed_at, w.version, r.version "
                                  "FROM ers_worklist_entry w LEFT JOIN ers_referral r ON r.ubrn = w.ubrn "
                                  "ORDER BY w.ubrn, w.worklist" },
        [ST_RECONCILE_UNLISTED] = { "read ers_referral not on a worklist",
                                    "SELECT r.ubrn, r.version FROM ers_referral r WHERE NOT EXISTS "
                                    "(SELECT 1 FROM ers_worklist_entry w WHERE w.ubrn = r.ubrn) "
                                    "ORDER BY r.last_synced_at DESC, r.ubrn" },

        /* pas_schedule.c: the budget, the polls, the retries, what is due. */
        [ST_LEDGER_RECHECK] = { "update ers_ledger next check",
                                "UPDATE ers_ledger SET next_check_at = ? WHERE ubrn = ?" },
        /* A referral showing a related referral read at a new version with another: owed until read again. */
        [ST_LEDGER_OWE] = { "update ers_ledger owed",
                            "UPDATE ers_ledger SET complete = 0, next_check_at = ? WHERE ubrn = ?" },
        /* Counted only while under the budget: the row never goes past it. */
        [ST_BUDGET_SPEND] = { "count in ers_budget",
                              "UPDATE ers_budget SET calls = calls + 1 WHERE service_id = ? AND budget_day = ? "
                              "AND calls < ?" },
        [ST_BUDGET_GET] = { "read ers_budget",
                            "SELECT calls FROM ers_budget WHERE service_id = ? AND budget_day = ?" },
        [ST_BUDGET_INSERT] = { "insert ers_budget",
                               "INSERT INTO ers_budget (service_id, budget_day, calls) VALUES (?, ?, 1)" },
        [ST_POLL_GET] = { "read ers_poll", "SELECT last_poll_at FROM ers_poll WHERE worklist = ?" },
        /* Parameters 1-6 shared by UPDATE and INSERT; last_poll_at is kept when NULL. */
        [ST_POLL_UPDATE] = { "update ers_poll",
                             "UPDATE ers_poll SET last_poll_at = COALESCE(?, last_poll_at), last_result = ?, "
                             "last_correlation_id = ?, next_poll_at = ?, referrals = ? WHERE worklist = ?" },
        [ST_POLL_INSERT] = { "insert ers_poll",
                             "INSERT INTO ers_poll (last_poll_at, last_result, last_correlation_id, next_poll_at, "
                             "referrals, worklist) VALUES (?, ?, ?, ?, ?, ?)" },
        /* Parameters 1-7 shared by UPDATE and INSERT: what the worklist said of the referral. */
        [ST_RETRY_SEEN_UPDATE] = { "update ers_retry",
                                   "UPDATE ers_retry SET worklist = ?, entry_version = ?, priority = ?, "
                                   "service_id = ?, service_name = ?, referral_type = ? WHERE ubrn = ?" },
        [ST_RETRY_SEEN_INSERT] = { "insert ers_retry",
                                   "INSERT INTO ers_retry (worklist, entry_version, priority, service_id, "
                                   "service_name, referral_type, ubrn, first_seen_at, attempts, next_attempt_at, "
                                   "parked) VALUES (?, ?, ?, ?, ?, ?, ?, ?, 0, ?, 0)" },
        [ST_RETRY_GET] = { "read ers_retry", "SELECT attempts FROM ers_retry WHERE ubrn = ?" },
        [ST_RETRY_FAIL] = { "update ers_retry failure",
                            "UPDATE ers_retry SET attempts = ?, last_attempt_at = ?, next_attempt_at = ?, "
                            "parked = ?, reason = ?, last_sqlstate = ?, correlation_id = ? WHERE ubrn = ?" },
        [ST_RETRY_DELETE] = { "delete ers_retry", "DELETE FROM ers_retry WHERE ubrn = ?" },
        [ST_RETRY_DUE] = { "read ers_retry due",
                           "SELECT ubrn, worklist, entry_version, priority, service_id, service_name, "
                           "referral_type, attempts FROM ers_retry WHERE next_attempt_at <= ? "
                           "ORDER BY next_attempt_at, ubrn" },
        /* Documents still owed, not already waiting in ers_retry; a row from before schema 3 has no time. */
        [ST_RECHECK_DUE] = { "read ers_ledger due",
                             "SELECT ubrn, worklist FROM ers_ledger WHERE complete = 0 "
                             "AND COALESCE(next_check_at, '0') <= ? "
                             "AND NOT EXISTS (SELECT 1 FROM ers_retry t WHERE t.ubrn = ers_ledger.ubrn) "
                             "ORDER BY COALESCE(next_check_at, '0'), ubrn" },
        [ST_RETRY_NEXT] = { "read ers_retry next", "SELECT MIN(next_attempt_at) FROM ers_retry" },
        [ST_RECHECK_NEXT] = { "read ers_ledger next",
                              "SELECT MIN(COALESCE(next_check_at, '0')) FROM ers_ledger WHERE complete = 0 "
                              "AND NOT EXISTS (SELECT 1 FROM ers_retry t WHERE t.ubrn = ers_ledger.ubrn)" },

        /* pas_status.c: the operators' reads (ersd status, ersd sync UBRN). */
        [ST_POLL_LIST] = { "read ers_poll",
                           "SELECT worklist, last_poll_at, last_result, last_correlation_id, next_poll_at, "
                           "referrals FROM ers_poll ORDER BY worklist" },
        [ST_WAITING_DOCUMENTS] = { "read ers_ledger documents owed",
                                   "SELECT l.ubrn, l.worklist, r.priority, l.synced_at, l.next_check_at, "
                                   "l.version FROM ers_ledger l LEFT JOIN ers_referral r ON r.ubrn = l.ubrn "
                                   "WHERE l.complete = 0 ORDER BY l.ubrn" },
        /* Their documents not fetched, counted in C (pas_waiting_list): availability is a TEXT, which
         * no statement compares (an NCLOB on Oracle). */
        [ST_WAITING_NOT_FETCHED] = { "read ers_document not fetched",
                                     "SELECT d.ubrn, d.kind, d.availability FROM ers_document d "
                                     "WHERE d.fetch_status = 'NOT_FETCHED' AND EXISTS "
                                     "(SELECT 1 FROM ers_ledger l WHERE l.ubrn = d.ubrn AND l.complete = 0) "
                                     "ORDER BY d.ubrn" },
        [ST_WAITING_RETRY] = { "read ers_retry",
                               "SELECT t.ubrn, t.worklist, t.priority, t.first_seen_at, t.next_attempt_at, "
                               "t.entry_version, t.attempts, t.parked, t.reason, t.last_sqlstate, "
                               "t.correlation_id, "
                               "(SELECT COUNT(*) FROM ers_referral r WHERE r.ubrn = t.ubrn) "
                               "FROM ers_retry t ORDER BY t.ubrn" },
        [ST_ORIGIN_RETRY] = { "read ers_retry",
                              "SELECT worklist, priority, service_id, service_name, referral_type, "
                              "entry_version FROM ers_retry WHERE ubrn = ?" },
        [ST_ORIGIN_REFERRAL] = { "read ers_referral",
                                 "SELECT worklist, priority, service_id, service_name, referral_type "
                                 "FROM ers_referral WHERE ubrn = ?" },

        /* pas_answer.c: each A005 answer as received. */
        [ST_ANSWER_HAS] = { "read ers_referral_answer",
                            "SELECT COUNT(*) FROM ers_referral_answer WHERE ubrn = ? AND version = ? AND sha256 = ?" },
        [ST_ANSWER_INSERT] = { "insert ers_referral_answer",
                               "INSERT INTO ers_referral_answer (ubrn, version, sha256, size_bytes, body, "
                               "correlation_id, received_at) VALUES (?, ?, ?, ?, ?, ?, ?)" },
        [ST_ANSWER_LIST] = { "read ers_referral_answer of a referral",
                             "SELECT version, sha256, size_bytes, correlation_id, received_at FROM ers_referral_answer "
                             "WHERE ubrn = ? ORDER BY version, received_at, sha256" },
        [ST_ANSWER_GET] = { "read ers_referral_answer body",
                            "SELECT size_bytes, body, correlation_id, received_at FROM ers_referral_answer "
                            "WHERE ubrn = ? AND version = ? "
                            "AND sha256 = ?" },
        [ST_ANSWER_REFERRALS] = { "read the UBRNs of ers_referral", "SELECT ubrn FROM ers_referral ORDER BY ubrn" },
        [ST_ANSWER_DERIVED] = { "update ers_referral answer_sha256",
                                "UPDATE ers_referral SET answer_sha256 = ? WHERE ubrn = ? AND version = ?" },
        [ST_ANSWER_CURRENT] = { "read ers_referral answer_sha256",
                                "SELECT version, answer_sha256 FROM ers_referral WHERE ubrn = ?" },

        /* pas_outbox.c: the return path's requests.  One UBRN's requests go in id order: a request
         * waits while an earlier one of its UBRN is not settled. */
        [ST_OUTBOX_DUE] = { "read ers_outbox due",
                            "SELECT o.id, o.ubrn, o.action, o.state, o.review_outcome, o.comment_text, "
                            "o.new_priority, o.decided_version, o.attempts FROM ers_outbox o "
                            "WHERE (o.state = 'SENDING' OR ((o.state = 'NEW' OR o.state = 'RETRY') "
                            "AND (o.next_attempt_at IS NULL OR o.next_attempt_at <= ?))) "
                            "AND NOT EXISTS (SELECT 1 FROM ers_outbox b WHERE b.ubrn = o.ubrn AND b.id < o.id "
                            "AND b.state NOT IN ('DONE', 'REJECTED', 'STALE')) ORDER BY o.id" },
        [ST_OUTBOX_SENDING] = { "update ers_outbox sending",
                                "UPDATE ers_outbox SET state = 'SENDING', attempts = attempts + 1, updated_at = ? "
                                "WHERE id = ? AND state IN ('NEW', 'RETRY')" },
        /* A settled request is never changed again. */
        [ST_OUTBOX_RECORD] = { "update ers_outbox outcome",
                               "UPDATE ers_outbox SET state = ?, answered_version = ?, error_code = ?, "
                               "error_text = ?, next_attempt_at = ?, correlation_id = ?, updated_at = ? "
                               "WHERE id = ? AND state IN ('NEW', 'RETRY', 'SENDING')" },
        [ST_OUTBOX_COUNTS] = { "count ers_outbox",
                               "SELECT state, COUNT(*) FROM ers_outbox GROUP BY state ORDER BY state" },
        [ST_OUTBOX_NEXT] = { "read ers_outbox next",
                             "SELECT MIN(next_attempt_at) FROM ers_outbox WHERE state = 'RETRY'" },
        [ST_OUTBOX_ATTENTION] = { "read ers_outbox needing a person",
                                  "SELECT id, ubrn, action, state, decided_version, error_code, updated_at, "
                                  "correlation_id FROM ers_outbox WHERE state IN ('REJECTED', 'STALE', 'RETRY') "
                                  "ORDER BY id" },

        /* pas_mapping.c: the mapping into the PAS's own tables. */
        [ST_MAP_REFERRAL] = { "mapping of the referral", NULL },
        [ST_MAP_DOCUMENT] = { "mapping of the document", NULL },
};

const struct schema_object schema_objects[] = {
        { "ers_schema_version", "SELECT version FROM ers_schema_version WHERE 1 = 0" },
        { "ers_referral",
          "SELECT ubrn, version, nhs_number, nhs_number_valid, priority, state, state_reason, "
          "state_comment, specialty, specialty_display, service_id, service_name, referral_type, "
          "pathway_start, clinical_info_first_submitted, appointment_start, appointment_end, "
          "commissioning_org, request_id, status, intent, worklist, first_synced_at, last_synced_at, "
          "pas_patient_id, patient_match, patient_checked_at, clinical_info_last_updated, state_reason_system, "
          "state_reason_display, appointment_reference, appointment_status, appointment_created, appointment_reason, "
          "appointment_reason_system, appointment_reason_display, appointment_comment, appointment_slot, "
          "appointment_clinician, clinic_type, named_clinician, advice_request FROM ers_referral WHERE 1 = 0" },
        { "ers_referral_related", "SELECT ubrn, related_ubrn FROM ers_referral_related WHERE 1 = 0" },
        { "ers_referral_requirement",
          "SELECT ubrn, seq, code, display, code_system, comments FROM ers_referral_requirement WHERE 1 = 0" },
        { "ers_referral_answer",
          "SELECT ubrn, version, sha256, size_bytes, body, correlation_id, received_at FROM ers_referral_answer "
          "WHERE 1 = 0" },
        { "ers_document",
          "SELECT document_id, ubrn, source_ubrn, kind, attachment_id, revision, source_version, "
          "title, content_type, declared_size, availability, attached_by_user, attached_by_org, "
          "created, fetch_status, not_fetched_reason, size_bytes, sha256, part_count, stored_at, removed_at, "
          "occurrence, attachment_key, document_type, description, attached_on_behalf_of FROM ers_document "
          "WHERE 1 = 0" },
        { "ers_document_part", "SELECT document_id, seq, data FROM ers_document_part WHERE 1 = 0" },
        { "ers_ledger",
          "SELECT ubrn, version, complete, worklist, correlation_id, synced_at, first_seen_at, "
          "left_worklist_at, next_check_at FROM ers_ledger WHERE 1 = 0" },
        { "ers_lease", "SELECT name, holder, renewals, renewed_at FROM ers_lease WHERE 1 = 0" },
        { "ers_retry",
          "SELECT ubrn, worklist, entry_version, priority, service_id, service_name, referral_type, "
          "first_seen_at, attempts, last_attempt_at, next_attempt_at, parked, reason, last_sqlstate, "
          "correlation_id FROM ers_retry WHERE 1 = 0" },
        { "ers_budget", "SELECT service_id, budget_day, calls FROM ers_budget WHERE 1 = 0" },
        { "ers_poll",
          "SELECT worklist, last_poll_at, last_result, last_correlation_id, next_poll_at, referrals "
          "FROM ers_poll WHERE 1 = 0" },
        { "ers_audit",
          "SELECT ubrn, seq, version, event_type, detail, documents, recorded_at, correlation_id "
          "FROM ers_audit WHERE 1 = 0" },
        { "ers_worklist_entry",
          "SELECT worklist, ubrn, version, listed_at, correlation_id, ubrn_received, patient_contact_expected, "
          "last_contact, clinical_information_status, clinical_info_printed, request_context_status "
          "FROM ers_worklist_entry WHERE 1 = 0" },
        { "ers_outbox",
          "SELECT id, ubrn, action, review_outcome, comment_text, new_priority, decided_version, requested_by, "
          "requested_at, state, attempts, next_attempt_at, answered_version, error_code, error_text, "
          "correlation_id, updated_at FROM ers_outbox WHERE 1 = 0" },
        { "ers_referral_inbox",
          "SELECT ubrn, nhs_number, nhs_number_valid, priority, state, specialty, specialty_display, "
          "service_id, service_name, appointment_start, appointment_end, worklist, "
          "documents_fetched, documents_not_fetched, last_synced_at, pas_patient_id, patient_match, "
          "additional_requirements FROM ers_referral_inbox "
          "WHERE 1 = 0" },
};
const size_t n_schema_objects = sizeof schema_objects / sizeof schema_objects[0];
