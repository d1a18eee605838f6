/* SPDX-License-Identifier: MIT */
/*
 * The rows a referral's write puts in the staging tables besides its
 * documents (pas.h): its ers_referral row, related-UBRN links and additional
 * requirements, and its
 * ers_ledger row, which says what the PAS holds and is written in the same
 * transaction; with what the writer reads of them first (the ledger, the
 * fields a worklist entry also gives).  Not here: the documents
 * (pas_document.c), the patient match (pas_patient.c), the mapping into the
 * PAS's own tables (pas_mapping.c), the audit trail (pas_audit.c).
 */
#include "pas.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pas_internal.h"

/* ---------------------------------------------------------------------- */
/* Ledger.                                                                 */

int pas_ledger_get(struct pas *p, const char *ubrn, struct ledger_state *ret, struct errbuf *e) {
        const char *what = statements[ST_LEDGER_GET].what;
        struct param ps[] = { P_TEXT(ubrn) };
        struct ledger_state st = { 0 };
        SQLHSTMT h = SQL_NULL_HSTMT;
        int r;

        r = check_ubrn(ubrn, what, e);
        if (r < 0)
                return r;
        r = run(p, ST_LEDGER_GET, ps, 1, &h, NULL, e);
        if (r < 0)
                return err_prefix(e, r, "%s", ubrn);
        r = fetch(p, h, what, e);
        if (r > 0) {
                int64_t complete = 0;
                st.found = true;
                r = get_int64(p, h, 1, what, &st.version, NULL, e);
                if (r >= 0)
                        r = get_int64(p, h, 2, what, &complete, NULL, e);
                if (r >= 0)
                        r = get_text(p, h, 3, what, st.correlation_id, sizeof st.correlation_id, NULL, e);
                st.complete = complete != 0;
        }
        stmt_close(h);
        if (r < 0)
                return err_prefix(e, r, "%s", ubrn);
        *ret = st;
        return 0;
}

int pas_put_ledger(struct pas_tx *tx, const char *ubrn, int64_t version, bool complete, const char *worklist,
                   const char *correlation_id, struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        const char *now = tx_time(tx);
        SQLLEN rows = 0;
        int r;

        r = check_ubrn(ubrn, "ledger", e);
        if (r < 0)
                return r;

        struct param ps[] = {
                P_INT(version), P_INT(complete ? 1 : 0), P_TEXT(worklist), P_TEXT(correlation_id),
                P_TEXT(now),    P_TEXT(ubrn),
                P_TEXT(now), /* first_seen_at: INSERT only */
        };
        r = is_fresh(tx, ubrn) ? 0 : run(p, ST_LEDGER_UPDATE, ps, 6, NULL, &rows, e);
        if (r >= 0 && rows == 0)
                r = run(p, ST_LEDGER_INSERT, ps, 7, NULL, NULL, e);
        if (r < 0)
                return err_prefix(e, r, "%s", ubrn);
        return 0;
}

/* ---------------------------------------------------------------------- */
/* Referral.                                                               */

static const char *first_of(const char *a, const char *b) {
        return a ? a : b;
}

struct referral_values referral_values(const struct referral *ref, const struct worklist_entry *entry) {
        struct referral_values v = {
                .nhs_number = first_of(ref->nhs_number, entry ? entry->nhs_number : NULL),
                .priority = first_of(ref->priority, entry ? entry->priority : NULL),
                .specialty = first_of(ref->specialty, entry ? entry->specialty : NULL),
                .service_id = ref->service_id,
                .service_name = ref->service_name,
                .referral_type = entry ? entry->referral_type : NULL,
        };

        if (!v.service_id && entry) {
                v.service_id = entry->service_id;
                v.service_name = entry->service_name;
        }
        return v;
}

/* The version of the referral's staging row; *ret_found false when there is none. */
static int referral_version(struct pas *p, const char *ubrn, int64_t *ret, bool *ret_found, struct errbuf *e) {
        const char *what = statements[ST_REFERRAL_VERSION].what;
        struct param ps[] = { P_TEXT(ubrn) };
        SQLHSTMT h = SQL_NULL_HSTMT;
        bool found = false;
        int64_t v = 0;
        int r;

        r = run(p, ST_REFERRAL_VERSION, ps, 1, &h, NULL, e);
        if (r < 0)
                return r;
        r = fetch(p, h, what, e);
        if (r > 0) {
                found = true;
                r = get_int64(p, h, 1, what, &v, NULL, e);
        }
        stmt_close(h);
        if (r < 0)
                return r;
        *ret_found = found;
        *ret = v;
        return 0;
}

int pas_put_referral(struct pas_tx *tx, const struct referral *ref, const struct worklist_entry *entry,
                     const char *worklist, struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        struct referral_values v = referral_values(ref, entry);
        const char *now = tx_time(tx);
        SQLLEN rows = 0;
        int r;

        r = check_ubrn(ref->ubrn, "referral", e);
        if (r < 0)
                return r;

        struct param ps[] = {
                P_INT(ref->version),
                P_TEXT(v.nhs_number),
                P_INT(v.nhs_number && nhs_number_valid(v.nhs_number) ? 1 : 0),
                P_TEXT(v.priority),
                P_TEXT(ref->state),
                P_TEXT(ref->state_reason),
                P_TEXT(ref->state_comment),
                P_TEXT(v.specialty),
                P_TEXT(ref->specialty_display),
                P_TEXT(v.service_id),
                P_TEXT(v.service_name),
                P_TEXT(v.referral_type),
                P_TEXT(ref->pathway_start),
                P_TEXT(ref->clinical_info_first_submitted),
                P_TEXT(ref->appointment_start),
                P_TEXT(ref->appointment_end),
                P_TEXT(ref->commissioning_org),
                P_TEXT(ref->request_id),
                P_TEXT(ref->status),
                P_TEXT(ref->intent),
                P_TEXT(ref->clinical_info_last_updated),
                P_TEXT(ref->state_reason_system),
                P_TEXT(ref->state_reason_display),
                P_TEXT(ref->appointment_reference),
                P_TEXT(ref->appointment_status),
                P_TEXT(ref->appointment_created),
                P_TEXT(ref->appointment_reason),
                P_TEXT(ref->appointment_reason_system),
                P_TEXT(ref->appointment_reason_display),
                P_TEXT(ref->appointment_comment),
                P_TEXT(ref->appointment_slot),
                P_TEXT(ref->appointment_clinician),
                P_TEXT(ref->clinic_type),
                P_TEXT(ref->named_clinician),
                P_TEXT(ref->advice_request),
                P_TEXT(worklist),
                P_TEXT(now),
                P_TEXT(ref->ubrn),
                P_TEXT(now), /* first_synced_at: INSERT only */
        };
        p->put_ubrn[0] = '\0';
        if (p->map[PAS_MAP_REFERRAL].sql) {
                /* the mapping runs once per version: a related referral refreshed at
                 * the version it has is not written into the PAS's tables again */
                int64_t stored = 0;
                bool found = false;

                r = referral_version(p, ref->ubrn, &stored, &found, e);
                if (r < 0)
                        return err_prefix(e, r, "%s", ref->ubrn);
                p->put_new_version = !found || stored < ref->version;
        }
        bool fresh = is_fresh(tx, ref->ubrn);
        r = fresh ? 0 : run(p, ST_REFERRAL_UPDATE, ps, 38, NULL, &rows, e);
        if (r >= 0 && rows == 0)
                r = run(p, ST_REFERRAL_INSERT, ps, 39, NULL, NULL, e);
        if (r < 0)
                return err_prefix(e, r, "%s", ref->ubrn);

        /* The related links are replaced by what this version says. */
        struct param del[] = { P_TEXT(ref->ubrn) };
        r = fresh ? 0 : run(p, ST_RELATED_DELETE, del, 1, NULL, NULL, e);
        for (size_t i = 0; r >= 0 && i < ref->n_related; i++) {
                bool seen = false;

                if (!ubrn_valid(ref->related[i])) {
                        r = err_set(e, -EINVAL, "related referral %zu: not a UBRN (12 digits)", i + 1);
                        break;
                }
                for (size_t j = 0; j < i && !seen; j++)
                        seen = strcmp(ref->related[i], ref->related[j]) == 0;
                if (seen)
                        continue;
                struct param rel[] = { P_TEXT(ref->ubrn), P_TEXT(ref->related[i]) };
                r = run(p, ST_RELATED_INSERT, rel, 2, NULL, NULL, e);
        }
        /* So are the additional requirements, in e-RS's order. */
        if (r >= 0 && !fresh)
                r = run(p, ST_REQUIREMENT_DELETE, del, 1, NULL, NULL, e);
        for (size_t i = 0; r >= 0 && i < ref->n_requirements; i++) {
                const struct requirement *q = &ref->requirements[i];
                struct param req[] = { P_TEXT(ref->ubrn), P_INT((int64_t) i + 1), P_TEXT(q->code),
                                       P_TEXT(q->display), P_TEXT(q->system), P_TEXT(q->comments) };
                r = run(p, ST_REQUIREMENT_INSERT, req, 6, NULL, NULL, e);
        }
        if (r < 0)
                return err_prefix(e, r, "%s", ref->ubrn);
        if (p->map[PAS_MAP_REFERRAL].sql)
                snprintf(p->put_ubrn, sizeof p->put_ubrn, "%s", ref->ubrn);
        return 0;
}

void referral_entry_fields_free(struct referral_entry_fields *f) {
        if (!f)
                return;
        if (f->nhs_number)
                explicit_bzero(f->nhs_number, strlen(f->nhs_number));
        free(f->nhs_number);
        free(f->priority);
        free(f->specialty);
        f->nhs_number = f->priority = f->specialty = NULL;
}

int pas_referral_entry_fields(struct pas *p, const char *ubrn, struct referral_entry_fields *ret, struct errbuf *e) {
        const char *what = statements[ST_ENTRY_FIELDS].what;
        struct referral_entry_fields f = { .found = false };
        struct param ps[] = { P_TEXT(ubrn) };
        SQLHSTMT h = SQL_NULL_HSTMT;
        int r;

        r = check_ubrn(ubrn, "referral", e);
        if (r >= 0)
                r = run(p, ST_ENTRY_FIELDS, ps, 1, &h, NULL, e);
        if (r >= 0)
                r = fetch(p, h, what, e);
        if (r > 0) {
                f.found = true;
                r = get_int64(p, h, 1, what, &f.version, NULL, e);
                if (r >= 0)
                        r = get_text_alloc(p, h, 2, what, &f.nhs_number, e);
                if (r >= 0)
                        r = get_text_alloc(p, h, 3, what, &f.priority, e);
                if (r >= 0)
                        r = get_text_alloc(p, h, 4, what, &f.specialty, e);
        }
        stmt_close(h);
        if (r < 0) {
                referral_entry_fields_free(&f);
                return err_prefix(e, r, "%s", ubrn);
        }
        *ret = f;
        return 0;
}
