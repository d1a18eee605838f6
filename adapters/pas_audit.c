/* SPDX-License-Identifier: MIT */
/*
 * The audit trail (pas_audit.h): reading what the PAS holds of a referral
 * before a write (its row and related links; never a patient identifier nor
 * free text), appending an ers_audit row (seq = the UBRN's last + 1, safe
 * under the one writer) and reading a referral's rows back.  Not here: what
 * a row says (daemon/audit.c), the attachments' removed_at marks
 * (pas_document.c), the worklists' entries (pas_worklist.c).
 */
#include "pas_audit.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pas_internal.h"

/* The text columns of ST_REFERRAL_STORED, from its second on, in s. */
#define STORED_TEXTS(s)                                                                                      \
        { &(s)->state,          &(s)->state_reason,          &(s)->priority,                                 \
          &(s)->status,         &(s)->specialty,             &(s)->service_id,                               \
          &(s)->appointment_start, &(s)->appointment_end,    &(s)->patient_match,                            \
          &(s)->clinical_info_last_updated, &(s)->appointment_reference, &(s)->appointment_status,           \
          &(s)->appointment_reason, &(s)->appointment_slot,  &(s)->appointment_clinician,                    \
          &(s)->clinic_type,    &(s)->named_clinician,       &(s)->advice_request }

void referral_stored_free(struct referral_stored *s) {
        if (!s)
                return;
        char **texts[] = STORED_TEXTS(s);
        for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
                free(*texts[i]);
                *texts[i] = NULL;
        }
        free(s->related);
        s->related = NULL;
        s->n_related = 0;
        for (size_t i = 0; i < s->n_requirements; i++)
                free(s->requirements[i]);
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
                char **cols[] = STORED_TEXTS(&st);
                st.found = true;
                r = get_int64(p, h, 1, what, &st.version, NULL, e);
                for (size_t i = 0; r >= 0 && i < sizeof cols / sizeof cols[0]; i++)
                        r = get_text_whole(p, h, (SQLUSMALLINT) (2 + i), what, cols[i], e);
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
                        if (r >= 0)
                                r = get_text_whole(p, h, 1, what_req, &st.requirements[st.n_requirements], e);
                        if (r >= 0)
                                st.n_requirements++;
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
