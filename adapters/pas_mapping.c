/* SPDX-License-Identifier: MIT */
/*
 * Mapping into the PAS's own tables (pas_mapping.h): setting the trust's
 * statements (rewritten by mapping.c, prepared and judged at start) and
 * running them with every field bound: the referral mapping after
 * pas_put_referral() wrote a new version (:additional_requirements made into
 * JSON here), the document mapping for every row pas_put_document_ex()
 * writes, :content streamed from the spool file; both again for
 * `ersd remap` (pas_put_mapped_referral_again(), pas_put_mapped_document_again(),
 * :content then read back from ers_document_part).  Not
 * here: the rewrite of named parameters (mapping.c, pure), what is mapped
 * (the configuration, docs/configuration.md).
 */
#include "pas_mapping.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../daemon/util.h"
#include "pas_internal.h"

int pas_set_mapping(struct pas *p, enum pas_map_kind kind, const char *sql, struct errbuf *e) {
        enum stmt_id id = kind == PAS_MAP_REFERRAL ? ST_MAP_REFERRAL : ST_MAP_DOCUMENT;
        const char *what = statements[id].what;
        SQLSMALLINT params = -1, columns = -1;
        SQLHSTMT h = SQL_NULL_HSTMT;
        int r;

        if (kind >= PAS_MAP_KINDS_)
                return err_set(e, -EINVAL, "no such mapping");
        if (p->in_tx)
                return err_set(e, -EINVAL, "%s: a transaction is open", what);
        if (p->stmt[id] != SQL_NULL_HSTMT) {
                SQLFreeStmt(p->stmt[id], SQL_CLOSE);
                SQLFreeHandle(SQL_HANDLE_STMT, p->stmt[id]);
                p->stmt[id] = SQL_NULL_HSTMT;
        }
        pas_map_sql_free(&p->map[kind]);
        if (!sql)
                return 0;
        r = pas_map_rewrite(kind, sql, &p->map[kind], e);
        if (r < 0)
                return r;

        /* Prepared now, so that the database judges it at start; describing
         * it makes drivers that defer the prepare (psqlodbc) send it. */
        r = stmt_get(p, id, &h, e);
        if (r >= 0 && !SQL_SUCCEEDED(SQLNumResultCols(h, &columns)))
                r = diag_stmt(p, h, what, e);
        if (r >= 0 && SQL_SUCCEEDED(SQLNumParams(h, &params)) && params >= 0 &&
            (size_t) params != p->map[kind].n_params)
                r = err_set(e, -EINVAL, "%s: the driver counts %d parameter markers, not the %zu named", what,
                            (int) params, p->map[kind].n_params);
        if (r >= 0 && columns > 0)
                r = err_set(e, -EINVAL, "%s: returns rows; it must write (INSERT, UPDATE, MERGE, a call)", what);
        if (r >= 0)
                r = p->adapter->ops->check_statement(p, p->map[kind].sql, e);
        if (r < 0 && !strstr(e->msg, what))
                err_prefix(e, r, "%s", what);
        if (h != SQL_NULL_HSTMT)
                SQLFreeStmt(h, SQL_CLOSE);
        if (r < 0) {
                if (p->stmt[id] != SQL_NULL_HSTMT)
                        SQLFreeHandle(SQL_HANDLE_STMT, p->stmt[id]);
                p->stmt[id] = SQL_NULL_HSTMT;
                pas_map_sql_free(&p->map[kind]);
        }
        return r;
}

/* A JSON text being built (text_put(), json_put_string()). */
struct json_text {
        char *p;
        size_t len, cap;
        bool oom;
};

static void text_put(struct json_text *b, const char *s, size_t n) {
        char *more;

        if (b->oom || n == 0)
                return;
        more = array_grow(b->p, &b->cap, b->len + n + 1, 1, 256);
        if (!more) {
                b->oom = true;
                return;
        }
        b->p = more;
        memcpy(b->p + b->len, s, n);
        b->len += n;
        b->p[b->len] = '\0';
}

/* Appends s to b as a JSON string literal, escaped as RFC 8259 asks ('"',
 * '\\' and the control characters; every other byte, UTF-8 included, as it
 * is), or null for NULL.  false when out of memory. */
static bool json_put_string(struct json_text *b, const char *s) {
        if (!s) {
                text_put(b, "null", 4);
                return !b->oom;
        }
        text_put(b, "\"", 1);
        for (const char *c = s; *c; c++) {
                char esc[8];
                if (*c == '"' || *c == '\\') {
                        esc[0] = '\\';
                        esc[1] = *c;
                        text_put(b, esc, 2);
                } else if ((unsigned char) *c < 0x20) {
                        snprintf(esc, sizeof esc, "\\u%04x", (unsigned) (unsigned char) *c);
                        text_put(b, esc, 6);
                } else
                        text_put(b, c, 1);
        }
        text_put(b, "\"", 1);
        return !b->oom;
}

/* :additional_requirements: the referral's requirements as a JSON array, in
 * e-RS's order, each {"code", "display", "system", "comments"} (null when e-RS
 * sent none): every value whole, so that a PAS's own JSON functions read it.
 * *ret NULL when the referral has none.  0 or -ENOMEM. */
static int requirements_json(const struct referral *ref, char **ret) {
        struct json_text b = { .p = NULL };

        *ret = NULL;
        if (ref->n_requirements == 0)
                return 0;
        text_put(&b, "[", 1);
        for (size_t i = 0; i < ref->n_requirements; i++) {
                const struct requirement *q = &ref->requirements[i];
                text_put(&b, i ? ",{\"code\":" : "{\"code\":", i ? 10 : 9);
                json_put_string(&b, q->code);
                text_put(&b, ",\"display\":", 11);
                json_put_string(&b, q->display);
                text_put(&b, ",\"system\":", 10);
                json_put_string(&b, q->system);
                text_put(&b, ",\"comments\":", 12);
                json_put_string(&b, q->comments);
                text_put(&b, "}", 1);
        }
        text_put(&b, "]", 1);
        if (b.oom) {
                free(b.p);
                return -ENOMEM;
        }
        *ret = b.p;
        return 0;
}

/* The referral mapping for the referral pas_put_referral() last wrote; with
 * !force, only when that call wrote a version the staging row did not have. */
static int map_referral(struct pas_tx *tx, const struct referral *ref, const struct worklist_entry *entry,
                        const char *worklist, const struct patient_match *match, bool force, struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        const struct pas_map_sql *m = &p->map[PAS_MAP_REFERRAL];
        struct referral_values v = referral_values(ref, entry);
        const char *now = tx_time(tx);
        char *requirements = NULL;
        struct param *ps;
        int r;

        if (!m->sql)
                return 0;
        r = check_ubrn(ref->ubrn, "referral", e);
        if (r >= 0 && strcmp(p->put_ubrn, ref->ubrn) != 0)
                r = err_set(e, -EINVAL, "referral mapping: not the referral pas_put_referral() last wrote");
        if (r < 0)
                return r;
        if (!p->put_new_version && !force)
                return 0; /* this version is in the PAS's tables already */
        if (pas_map_uses(m, MAP_REFERRAL_ADDITIONAL_REQUIREMENTS) && requirements_json(ref, &requirements) < 0)
                return err_set(e, -ENOMEM, "out of memory");
        ps = calloc(m->n_params, sizeof *ps);
        if (!ps) {
                free(requirements);
                return err_set(e, -ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < m->n_params; i++) {
                switch (m->params[i]) {
                case MAP_REFERRAL_UBRN: ps[i] = P_TEXT(ref->ubrn); break;
                case MAP_REFERRAL_VERSION: ps[i] = P_INT(ref->version); break;
                case MAP_REFERRAL_NHS_NUMBER: ps[i] = P_TEXT(v.nhs_number); break;
                case MAP_REFERRAL_NHS_NUMBER_VALID:
                        ps[i] = P_INT(v.nhs_number && nhs_number_valid(v.nhs_number) ? 1 : 0);
                        break;
                case MAP_REFERRAL_PRIORITY: ps[i] = P_TEXT(v.priority); break;
                case MAP_REFERRAL_STATE: ps[i] = P_TEXT(ref->state); break;
                case MAP_REFERRAL_STATE_REASON: ps[i] = P_TEXT(ref->state_reason); break;
                case MAP_REFERRAL_STATE_COMMENT: ps[i] = P_TEXT(ref->state_comment); break;
                case MAP_REFERRAL_SPECIALTY: ps[i] = P_TEXT(v.specialty); break;
                case MAP_REFERRAL_SPECIALTY_DISPLAY: ps[i] = P_TEXT(ref->specialty_display); break;
                case MAP_REFERRAL_SERVICE_ID: ps[i] = P_TEXT(v.service_id); break;
                case MAP_REFERRAL_SERVICE_NAME: ps[i] = P_TEXT(v.service_name); break;
                case MAP_REFERRAL_REFERRAL_TYPE: ps[i] = P_TEXT(v.referral_type); break;
                case MAP_REFERRAL_PATHWAY_START: ps[i] = P_TEXT(ref->pathway_start); break;
                case MAP_REFERRAL_CLINICAL_INFO_FIRST_SUBMITTED:
                        ps[i] = P_TEXT(ref->clinical_info_first_submitted);
                        break;
                case MAP_REFERRAL_APPOINTMENT_START: ps[i] = P_TEXT(ref->appointment_start); break;
                case MAP_REFERRAL_APPOINTMENT_END: ps[i] = P_TEXT(ref->appointment_end); break;
                case MAP_REFERRAL_COMMISSIONING_ORG: ps[i] = P_TEXT(ref->commissioning_org); break;
                case MAP_REFERRAL_REQUEST_ID: ps[i] = P_TEXT(ref->request_id); break;
                case MAP_REFERRAL_STATUS: ps[i] = P_TEXT(ref->status); break;
                case MAP_REFERRAL_INTENT: ps[i] = P_TEXT(ref->intent); break;
                case MAP_REFERRAL_WORKLIST: ps[i] = P_TEXT(worklist); break;
                case MAP_REFERRAL_SYNCED_AT: ps[i] = P_TEXT(now); break;
                case MAP_REFERRAL_PAS_PATIENT_ID:
                        ps[i] = P_TEXT(match && match->status == PATIENT_MATCHED ? match->pas_patient_id : NULL);
                        break;
                case MAP_REFERRAL_PATIENT_MATCH:
                        ps[i] = P_TEXT(patient_match_name(match ? match->status : PATIENT_NOT_CONFIGURED));
                        break;
                case MAP_REFERRAL_CLINICAL_INFO_LAST_UPDATED: ps[i] = P_TEXT(ref->clinical_info_last_updated); break;
                case MAP_REFERRAL_STATE_REASON_SYSTEM: ps[i] = P_TEXT(ref->state_reason_system); break;
                case MAP_REFERRAL_STATE_REASON_DISPLAY: ps[i] = P_TEXT(ref->state_reason_display); break;
                case MAP_REFERRAL_APPOINTMENT_REFERENCE: ps[i] = P_TEXT(ref->appointment_reference); break;
                case MAP_REFERRAL_APPOINTMENT_STATUS: ps[i] = P_TEXT(ref->appointment_status); break;
                case MAP_REFERRAL_APPOINTMENT_CREATED: ps[i] = P_TEXT(ref->appointment_created); break;
                case MAP_REFERRAL_APPOINTMENT_REASON: ps[i] = P_TEXT(ref->appointment_reason); break;
                case MAP_REFERRAL_APPOINTMENT_REASON_SYSTEM: ps[i] = P_TEXT(ref->appointment_reason_system); break;
                case MAP_REFERRAL_APPOINTMENT_REASON_DISPLAY: ps[i] = P_TEXT(ref->appointment_reason_display); break;
                case MAP_REFERRAL_APPOINTMENT_COMMENT: ps[i] = P_TEXT(ref->appointment_comment); break;
                case MAP_REFERRAL_APPOINTMENT_SLOT: ps[i] = P_TEXT(ref->appointment_slot); break;
                case MAP_REFERRAL_APPOINTMENT_CLINICIAN: ps[i] = P_TEXT(ref->appointment_clinician); break;
                case MAP_REFERRAL_CLINIC_TYPE: ps[i] = P_TEXT(ref->clinic_type); break;
                case MAP_REFERRAL_NAMED_CLINICIAN: ps[i] = P_TEXT(ref->named_clinician); break;
                case MAP_REFERRAL_ADVICE_REQUEST: ps[i] = P_TEXT(ref->advice_request); break;
                case MAP_REFERRAL_ADDITIONAL_REQUIREMENTS: ps[i] = P_TEXT(requirements); break;
                default:
                        ps[i] = P_TEXT(NULL); /* not a referral field: pas_map_rewrite() never gives one */
                        break;
                }
        }
        r = run(p, ST_MAP_REFERRAL, ps, m->n_params, NULL, NULL, e);
        free(ps);
        free(requirements);
        if (r < 0)
                return err_prefix(e, r, "%s", ref->ubrn);
        return 0;
}

int pas_put_mapped_referral(struct pas_tx *tx, const struct referral *ref, const struct worklist_entry *entry,
                            const char *worklist, const struct patient_match *match, struct errbuf *e) {
        return map_referral(tx, ref, entry, worklist, match, false, e);
}

int pas_put_mapped_referral_again(struct pas_tx *tx, const struct referral *ref, const struct worklist_entry *entry,
                                  const char *worklist, const struct patient_match *match, struct errbuf *e) {
        return map_referral(tx, ref, entry, worklist, match, true, e);
}

int map_document(struct pas_tx *tx, const struct document_rec *d, const char *document_id, int64_t revision,
                 const char *sha, int spool_fd, struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        const struct pas_map_sql *m = &p->map[PAS_MAP_DOCUMENT];
        struct param *ps;
        int r;

        ps = calloc(m->n_params, sizeof *ps);
        if (!ps)
                return err_set(e, -ENOMEM, "out of memory");
        for (size_t i = 0; i < m->n_params; i++) {
                switch (m->params[i]) {
                case MAP_DOCUMENT_UBRN: ps[i] = P_TEXT(d->ubrn); break;
                case MAP_DOCUMENT_SOURCE_UBRN: ps[i] = P_TEXT(d->source_ubrn); break;
                case MAP_DOCUMENT_DOCUMENT_ID: ps[i] = P_TEXT(document_id); break;
                case MAP_DOCUMENT_KIND: ps[i] = P_TEXT(d->kind == DOCUMENT_CRI ? "CRI" : "ATTACHMENT"); break;
                case MAP_DOCUMENT_ATTACHMENT_ID: ps[i] = P_TEXT(d->attachment_id); break;
                case MAP_DOCUMENT_REVISION: ps[i] = P_INT(revision); break;
                case MAP_DOCUMENT_SOURCE_VERSION: ps[i] = P_INT(d->source_version); break;
                case MAP_DOCUMENT_TITLE: ps[i] = P_TEXT(d->title); break;
                case MAP_DOCUMENT_CONTENT_TYPE: ps[i] = P_TEXT(d->content_type); break;
                case MAP_DOCUMENT_DECLARED_SIZE:
                        ps[i] = P_INT_OR_NULL(d->declared_size, d->declared_size < 0);
                        break;
                case MAP_DOCUMENT_AVAILABILITY: ps[i] = P_TEXT(d->availability); break;
                case MAP_DOCUMENT_ATTACHED_BY_USER: ps[i] = P_TEXT(d->attached_by_user); break;
                case MAP_DOCUMENT_ATTACHED_BY_ORG: ps[i] = P_TEXT(d->attached_by_org); break;
                case MAP_DOCUMENT_CREATED: ps[i] = P_TEXT(d->created); break;
                case MAP_DOCUMENT_DOCUMENT_TYPE: ps[i] = P_TEXT(d->document_type); break;
                case MAP_DOCUMENT_DESCRIPTION: ps[i] = P_TEXT(d->description); break;
                case MAP_DOCUMENT_ATTACHED_ON_BEHALF_OF: ps[i] = P_TEXT(d->attached_on_behalf_of); break;
                case MAP_DOCUMENT_FETCH_STATUS: ps[i] = P_TEXT(d->fetched ? "FETCHED" : "NOT_FETCHED"); break;
                case MAP_DOCUMENT_NOT_FETCHED_REASON: ps[i] = P_TEXT(d->fetched ? NULL : d->not_fetched_reason); break;
                case MAP_DOCUMENT_SIZE_BYTES: ps[i] = P_INT_OR_NULL(d->size, !d->fetched); break;
                case MAP_DOCUMENT_SHA256: ps[i] = P_TEXT(d->fetched ? sha : NULL); break;
                case MAP_DOCUMENT_CONTENT: ps[i] = P_STREAM(spool_fd, d->fetched ? d->size : 0, !d->fetched); break;
                default:
                        ps[i] = P_TEXT(NULL); /* not a document field: pas_map_rewrite() never gives one */
                        break;
                }
        }
        r = run(p, ST_MAP_DOCUMENT, ps, m->n_params, NULL, NULL, e);
        free(ps);
        return r;
}

bool pas_document_mapping(const struct pas *p, bool *ret_content) {
        const struct pas_map_sql *m = &p->map[PAS_MAP_DOCUMENT];

        if (ret_content)
                *ret_content = m->sql && pas_map_uses(m, MAP_DOCUMENT_CONTENT);
        return m->sql != NULL;
}

int pas_put_mapped_document_again(struct pas_tx *tx, const struct document_rec *d, const char *document_id,
                                  int64_t revision, int content_fd, struct errbuf *e) {
        const struct pas_map_sql *m = &tx_pas(tx)->map[PAS_MAP_DOCUMENT];

        if (!m->sql)
                return 0;
        if (d->fetched && content_fd < 0 && pas_map_uses(m, MAP_DOCUMENT_CONTENT))
                return err_set(e, -EINVAL, "%s: document %s: no content to stream", statements[ST_MAP_DOCUMENT].what,
                               document_id);
        return map_document(tx, d, document_id, revision, d->fetched ? d->sha256 : NULL, content_fd, e);
}
