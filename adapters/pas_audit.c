/* SPDX-License-Identifier: MIT */
/*
 * The audit trail (pas_audit.h): the columns of ers_referral it compares
 * (referral_columns[]), reading what the PAS holds of a referral before a
 * write (its row, related links and additional requirements: free text and
 * the NHS number too, compared and never printed), appending an ers_audit row (seq = the UBRN's last + 1, safe
 * under the one writer) and reading a referral's rows back.  Not here: what
 * a row says (daemon/audit.c), the attachments' removed_at marks
 * (pas_document.c), the worklists' entries (pas_worklist.c).
 */
#include "pas_audit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pas_internal.h"

#include <stddef.h>

#define STORED(m) offsetof(struct referral_stored, m)
#define REF(m) FROM_REFERRAL, offsetof(struct referral, m)
#define VAL(m) FROM_VALUES, offsetof(struct referral_values, m)

const struct referral_column referral_columns[] = {
        { "state", "state", COLUMN_CODE, STORED(state), REF(state), false },
        { "state_reason", "state_reason", COLUMN_CODE, STORED(state_reason), REF(state_reason), false },
        { "priority", "priority", COLUMN_CODE, STORED(priority), VAL(priority), false },
        { "status", "status", COLUMN_CODE, STORED(status), REF(status), false },
        { "specialty", "specialty", COLUMN_CODE, STORED(specialty), VAL(specialty), false },
        { "service_id", "service", COLUMN_CODE, STORED(service_id), VAL(service_id), true },
        { "appointment_start", "appointment", COLUMN_APPOINTMENT, STORED(appointment_start), REF(appointment_start), false },
        { "appointment_end", "appointment", COLUMN_APPOINTMENT, STORED(appointment_end), REF(appointment_end), false },
        { "appointment_status", "appointment_status", COLUMN_CODE, STORED(appointment_status), REF(appointment_status), false },
        { "appointment_reason", "appointment_reason", COLUMN_CODE, STORED(appointment_reason), REF(appointment_reason), false },
        { "appointment_reference", "appointment_reference", COLUMN_CODE, STORED(appointment_reference),
          REF(appointment_reference), false },
        { "appointment_slot", "appointment_slot", COLUMN_CODE, STORED(appointment_slot), REF(appointment_slot), false },
        { "appointment_clinician", "appointment_clinician", COLUMN_CODE, STORED(appointment_clinician),
          REF(appointment_clinician), false },
        { "clinical_info_last_updated", "clinical_info_last_updated", COLUMN_TIME, STORED(clinical_info_last_updated),
          REF(clinical_info_last_updated), false },
        { "clinic_type", "clinic_type", COLUMN_CODE, STORED(clinic_type), REF(clinic_type), false },
        { "named_clinician", "named_clinician", COLUMN_CODE, STORED(named_clinician), REF(named_clinician), false },
        { "advice_request", "advice_request", COLUMN_CODE, STORED(advice_request), REF(advice_request), false },
        { "nhs_number", "nhs_number", COLUMN_TEXT, STORED(nhs_number), VAL(nhs_number), false },
        { "state_comment", "state_comment", COLUMN_TEXT, STORED(state_comment), REF(state_comment), false },
        { "state_reason_system", "state_reason_system", COLUMN_CODE, STORED(state_reason_system),
          REF(state_reason_system), false },
        { "state_reason_display", "state_reason_display", COLUMN_TEXT, STORED(state_reason_display),
          REF(state_reason_display), false },
        { "specialty_display", "specialty_display", COLUMN_TEXT, STORED(specialty_display), REF(specialty_display),
          false },
        { "service_name", "service_name", COLUMN_TEXT, STORED(service_name), VAL(service_name), true },
        { "referral_type", "referral_type", COLUMN_CODE, STORED(referral_type), VAL(referral_type), true },
        { "pathway_start", "pathway_start", COLUMN_TIME, STORED(pathway_start), REF(pathway_start), false },
        { "clinical_info_first_submitted", "clinical_info_first_submitted", COLUMN_TIME,
          STORED(clinical_info_first_submitted), REF(clinical_info_first_submitted), false },
        { "commissioning_org", "commissioning_org", COLUMN_CODE, STORED(commissioning_org), REF(commissioning_org),
          false },
        { "request_id", "request_id", COLUMN_CODE, STORED(request_id), REF(request_id), false },
        { "intent", "intent", COLUMN_CODE, STORED(intent), REF(intent), false },
        { "appointment_created", "appointment_created", COLUMN_TIME, STORED(appointment_created),
          REF(appointment_created), false },
        { "appointment_reason_system", "appointment_reason_system", COLUMN_CODE, STORED(appointment_reason_system),
          REF(appointment_reason_system), false },
        { "appointment_reason_display", "appointment_reason_display", COLUMN_TEXT,
          STORED(appointment_reason_display), REF(appointment_reason_display), false },
        { "appointment_comment", "appointment_comment", COLUMN_TEXT, STORED(appointment_comment),
          REF(appointment_comment), false },
};
const size_t n_referral_columns = sizeof referral_columns / sizeof referral_columns[0];

const char *const referral_columns_not_compared[][2] = {
        { "ubrn", "the referral's key" },
        { "version", "said first, as version a -> b" },
        { "nhs_number_valid", "follows from nhs_number" },
        { "worklist", "where it is listed: LEFT_WORKLIST and RETURNED say it" },
        { "first_synced_at", "ersd's own time" },
        { "last_synced_at", "ersd's own time" },
        { "pas_patient_id", "a patient identifier in the PAS: the patient_match outcome says a change" },
        { "patient_match", "said by the writer and PATIENT_MATCH (patient_match X -> Y)" },
        { "patient_checked_at", "ersd's own time" },
        { "answer_sha256", "ersd's own record of the answer the row came from (ers_referral_answer)" },
        { NULL, NULL },
};

/* A column of the table, in s. */
static char **stored_column(struct referral_stored *s, size_t i) {
        return (char **) (void *) ((char *) s + referral_columns[i].stored);
}

void referral_stored_free(struct referral_stored *s) {
        if (!s)
                return;
        if (s->nhs_number)
                explicit_bzero(s->nhs_number, strlen(s->nhs_number));
        for (size_t i = 0; i < n_referral_columns; i++) {
                free(*stored_column(s, i));
                *stored_column(s, i) = NULL;
        }
        free(s->patient_match);
        s->patient_match = NULL;
        free(s->related);
        s->related = NULL;
        s->n_related = 0;
        for (size_t i = 0; i < s->n_requirements; i++) {
                free(s->requirements[i].code);
                free(s->requirements[i].display);
                free(s->requirements[i].system);
                free(s->requirements[i].comments);
        }
        free(s->requirements);
        s->requirements = NULL;
        s->n_requirements = 0;
}

int pas_referral_stored(struct pas *p, const char *ubrn, struct referral_stored *ret, struct errbuf *e) {
        const char *what = statements[ST_REFERRAL_STORED].what;
        struct param ps[] = { P_TEXT(ubrn) };
        struct referral_stored st = { .found = false };
        SQLHSTMT h = SQL_NULL_HSTMT;
        size_t cap = 0;
        int r;

        r = check_ubrn(ubrn, what, e);
        if (r < 0)
                return r;
        r = run(p, ST_REFERRAL_STORED, ps, 1, &h, NULL, e);
        if (r < 0)
                return err_prefix(e, r, "%s", ubrn);
        r = fetch(p, h, what, e);
        if (r > 0) {
                st.found = true;
                r = get_int64(p, h, 1, what, &st.version, NULL, e);
                for (size_t i = 0; r >= 0 && i < n_referral_columns; i++)
                        r = get_text_whole(p, h, (SQLUSMALLINT) (2 + i), what, stored_column(&st, i), e);
                if (r >= 0)
                        r = get_text_whole(p, h, (SQLUSMALLINT) (2 + n_referral_columns), what, &st.patient_match, e);
        }
        stmt_close(h);
        if (r >= 0 && st.found) {
                r = run(p, ST_RELATED_GET, ps, 1, &h, NULL, e);
                while (r >= 0 && (r = fetch(p, h, statements[ST_RELATED_GET].what, e)) > 0) {
                        r = grow(&st.related, &cap, st.n_related, sizeof *st.related, e);
                        if (r < 0)
                                break;
                        r = get_text(p, h, 1, statements[ST_RELATED_GET].what, st.related[st.n_related],
                                     UBRN_LEN + 1, NULL, e);
                        if (r >= 0)
                                st.n_related++;
                }
                if (h != SQL_NULL_HSTMT)
                        stmt_close(h);
        }
        if (r >= 0 && st.found) {
                const char *what_req = statements[ST_REQUIREMENT_GET].what;
                h = SQL_NULL_HSTMT;
                cap = 0;
                r = run(p, ST_REQUIREMENT_GET, ps, 1, &h, NULL, e);
                while (r >= 0 && (r = fetch(p, h, what_req, e)) > 0) {
                        r = grow(&st.requirements, &cap, st.n_requirements, sizeof *st.requirements, e);
                        struct stored_requirement *q = r >= 0 ? &st.requirements[st.n_requirements] : NULL;
                        if (q) {
                                *q = (struct stored_requirement){ .code = NULL };
                                st.n_requirements++; /* freed with st from here on */
                                r = get_text_whole(p, h, 1, what_req, &q->code, e);
                        }
                        if (r >= 0)
                                r = get_text_whole(p, h, 2, what_req, &q->display, e);
                        if (r >= 0)
                                r = get_text_whole(p, h, 3, what_req, &q->system, e);
                        if (r >= 0)
                                r = get_text_whole(p, h, 4, what_req, &q->comments, e);
                }
                if (h != SQL_NULL_HSTMT)
                        stmt_close(h);
        }
        if (r < 0) {
                referral_stored_free(&st);
                return err_prefix(e, r, "%s", ubrn);
        }
        *ret = st;
        return 0;
}

int pas_audit_append(struct pas_tx *tx, const char *ubrn, int64_t version, const char *event, const char *detail,
                     const char *documents, const char *correlation_id, struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        const char *what = statements[ST_AUDIT_SEQ].what;
        const char *now = tx_time(tx);
        struct param key[] = { P_TEXT(ubrn) };
        SQLHSTMT h = SQL_NULL_HSTMT;
        int64_t seq = 0;
        int r;

        r = check_ubrn(ubrn, "audit", e);
        if (r >= 0 && (!event || !*event))
                r = err_set(e, -EINVAL, "audit: no event type");
        if (r < 0)
                return r;
        /* One writer per schema (the lease, the writer lock): MAX + 1 is safe
         * inside its transaction, and the primary key refuses a second seq. */
        r = run(p, ST_AUDIT_SEQ, key, 1, &h, NULL, e);
        if (r < 0)
                return err_prefix(e, r, "%s", ubrn);
        r = fetch(p, h, what, e);
        if (r > 0)
                r = get_int64(p, h, 1, what, &seq, NULL, e);
        stmt_close(h);
        if (r < 0)
                return err_prefix(e, r, "%s", ubrn);
        struct param ps[] = {
                P_TEXT(ubrn),   P_INT(seq + 1), P_INT_OR_NULL(version, version < 0), P_TEXT(event),
                P_TEXT(detail), P_TEXT(documents), P_TEXT(now), P_TEXT(correlation_id && *correlation_id ? correlation_id : NULL),
        };
        r = run(p, ST_AUDIT_INSERT, ps, 8, NULL, NULL, e);
        if (r < 0)
                return err_prefix(e, r, "%s", ubrn);
        return 0;
}

int pas_audit_read(struct pas *p, const char *ubrn, int (*fn)(void *userdata, const struct audit_entry *a),
                   void *userdata, size_t *ret_n, struct errbuf *e) {
        const char *what = statements[ST_AUDIT_READ].what;
        SQLHSTMT h = SQL_NULL_HSTMT;
        size_t n = 0;
        int r;

        r = run_for_ubrn(p, ST_AUDIT_READ, ubrn, &h, e);
        if (r < 0)
                return r;
        while ((r = fetch(p, h, what, e)) > 0) {
                char event[40], recorded_at[40], corr[UUID_STR_LEN + 4];
                char *detail = NULL, *documents = NULL;
                bool version_null = false, corr_null = false;
                struct audit_entry a = { .event = event, .recorded_at = recorded_at };

                r = get_int64(p, h, 1, what, &a.seq, NULL, e);
                if (r >= 0)
                        r = get_int64(p, h, 2, what, &a.version, &version_null, e);
                if (r >= 0)
                        r = get_text(p, h, 3, what, event, sizeof event, NULL, e);
                if (r >= 0)
                        r = get_text_alloc(p, h, 4, what, &detail, e);
                if (r >= 0)
                        r = get_text_alloc(p, h, 5, what, &documents, e);
                if (r >= 0)
                        r = get_text(p, h, 6, what, recorded_at, sizeof recorded_at, NULL, e);
                if (r >= 0)
                        r = get_text(p, h, 7, what, corr, sizeof corr, &corr_null, e);
                if (r >= 0) {
                        if (version_null)
                                a.version = -1;
                        a.detail = detail;
                        a.documents = documents;
                        a.correlation_id = corr_null ? NULL : corr;
                        n++;
                        r = fn(userdata, &a);
                }
                free(detail);
                free(documents);
                if (r != 0)
                        break;
        }
        stmt_close(h);
        if (r < 0)
                return err_prefix(e, r, "%s", ubrn);
        if (ret_n)
                *ret_n = n;
        return r;
}
