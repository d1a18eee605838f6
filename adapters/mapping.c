/* SPDX-License-Identifier: MIT */
/*
 * Named parameters of the mapping statements (mapping.h): rewritten into '?'
 * markers, each with the field it takes.
 */
#include "mapping.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct {
        enum pas_map_kind kind;
        const char *name;
} fields[MAP_FIELDS_] = {
        [MAP_REFERRAL_UBRN] = { PAS_MAP_REFERRAL, "ubrn" },
        [MAP_REFERRAL_VERSION] = { PAS_MAP_REFERRAL, "version" },
        [MAP_REFERRAL_NHS_NUMBER] = { PAS_MAP_REFERRAL, "nhs_number" },
        [MAP_REFERRAL_NHS_NUMBER_VALID] = { PAS_MAP_REFERRAL, "nhs_number_valid" },
        [MAP_REFERRAL_PRIORITY] = { PAS_MAP_REFERRAL, "priority" },
        [MAP_REFERRAL_STATE] = { PAS_MAP_REFERRAL, "state" },
        [MAP_REFERRAL_STATE_REASON] = { PAS_MAP_REFERRAL, "state_reason" },
        [MAP_REFERRAL_STATE_COMMENT] = { PAS_MAP_REFERRAL, "state_comment" },
        [MAP_REFERRAL_SPECIALTY] = { PAS_MAP_REFERRAL, "specialty" },
        [MAP_REFERRAL_SPECIALTY_DISPLAY] = { PAS_MAP_REFERRAL, "specialty_display" },
        [MAP_REFERRAL_SERVICE_ID] = { PAS_MAP_REFERRAL, "service_id" },
        [MAP_REFERRAL_SERVICE_NAME] = { PAS_MAP_REFERRAL, "service_name" },
        [MAP_REFERRAL_REFERRAL_TYPE] = { PAS_MAP_REFERRAL, "referral_type" },
        [MAP_REFERRAL_PATHWAY_START] = { PAS_MAP_REFERRAL, "pathway_start" },
        [MAP_REFERRAL_CLINICAL_INFO_FIRST_SUBMITTED] = { PAS_MAP_REFERRAL, "clinical_info_first_submitted" },
        [MAP_REFERRAL_APPOINTMENT_START] = { PAS_MAP_REFERRAL, "appointment_start" },
        [MAP_REFERRAL_APPOINTMENT_END] = { PAS_MAP_REFERRAL, "appointment_end" },
        [MAP_REFERRAL_COMMISSIONING_ORG] = { PAS_MAP_REFERRAL, "commissioning_org" },
        [MAP_REFERRAL_REQUEST_ID] = { PAS_MAP_REFERRAL, "request_id" },
        [MAP_REFERRAL_STATUS] = { PAS_MAP_REFERRAL, "status" },
        [MAP_REFERRAL_INTENT] = { PAS_MAP_REFERRAL, "intent" },
        [MAP_REFERRAL_WORKLIST] = { PAS_MAP_REFERRAL, "worklist" },
        [MAP_REFERRAL_SYNCED_AT] = { PAS_MAP_REFERRAL, "synced_at" },
        [MAP_REFERRAL_PAS_PATIENT_ID] = { PAS_MAP_REFERRAL, "pas_patient_id" },
        [MAP_REFERRAL_PATIENT_MATCH] = { PAS_MAP_REFERRAL, "patient_match" },
        [MAP_REFERRAL_CLINICAL_INFO_LAST_UPDATED] = { PAS_MAP_REFERRAL, "clinical_info_last_updated" },
        [MAP_REFERRAL_STATE_REASON_SYSTEM] = { PAS_MAP_REFERRAL, "state_reason_system" },
        [MAP_REFERRAL_STATE_REASON_DISPLAY] = { PAS_MAP_REFERRAL, "state_reason_display" },
        [MAP_REFERRAL_APPOINTMENT_REFERENCE] = { PAS_MAP_REFERRAL, "appointment_reference" },
        [MAP_REFERRAL_APPOINTMENT_STATUS] = { PAS_MAP_REFERRAL, "appointment_status" },
        [MAP_REFERRAL_APPOINTMENT_CREATED] = { PAS_MAP_REFERRAL, "appointment_created" },
        [MAP_REFERRAL_APPOINTMENT_REASON] = { PAS_MAP_REFERRAL, "appointment_reason" },
        [MAP_REFERRAL_APPOINTMENT_REASON_SYSTEM] = { PAS_MAP_REFERRAL, "appointment_reason_system" },
        [MAP_REFERRAL_APPOINTMENT_REASON_DISPLAY] = { PAS_MAP_REFERRAL, "appointment_reason_display" },
        [MAP_REFERRAL_APPOINTMENT_COMMENT] = { PAS_MAP_REFERRAL, "appointment_comment" },
        [MAP_REFERRAL_APPOINTMENT_SLOT] = { PAS_MAP_REFERRAL, "appointment_slot" },
        [MAP_REFERRAL_APPOINTMENT_CLINICIAN] = { PAS_MAP_REFERRAL, "appointment_clinician" },
        [MAP_REFERRAL_CLINIC_TYPE] = { PAS_MAP_REFERRAL, "clinic_type" },
        [MAP_REFERRAL_NAMED_CLINICIAN] = { PAS_MAP_REFERRAL, "named_clinician" },
        [MAP_REFERRAL_ADVICE_REQUEST] = { PAS_MAP_REFERRAL, "advice_request" },
        [MAP_REFERRAL_ADDITIONAL_REQUIREMENTS] = { PAS_MAP_REFERRAL, "additional_requirements" },
        [MAP_DOCUMENT_UBRN] = { PAS_MAP_DOCUMENT, "ubrn" },
        [MAP_DOCUMENT_SOURCE_UBRN] = { PAS_MAP_DOCUMENT, "source_ubrn" },
        [MAP_DOCUMENT_DOCUMENT_ID] = { PAS_MAP_DOCUMENT, "document_id" },
        [MAP_DOCUMENT_KIND] = { PAS_MAP_DOCUMENT, "kind" },
        [MAP_DOCUMENT_ATTACHMENT_ID] = { PAS_MAP_DOCUMENT, "attachment_id" },
        [MAP_DOCUMENT_REVISION] = { PAS_MAP_DOCUMENT, "revision" },
        [MAP_DOCUMENT_SOURCE_VERSION] = { PAS_MAP_DOCUMENT, "source_version" },
        [MAP_DOCUMENT_TITLE] = { PAS_MAP_DOCUMENT, "title" },
        [MAP_DOCUMENT_CONTENT_TYPE] = { PAS_MAP_DOCUMENT, "content_type" },
        [MAP_DOCUMENT_DECLARED_SIZE] = { PAS_MAP_DOCUMENT, "declared_size" },
        [MAP_DOCUMENT_AVAILABILITY] = { PAS_MAP_DOCUMENT, "availability" },
        [MAP_DOCUMENT_ATTACHED_BY_USER] = { PAS_MAP_DOCUMENT, "attached_by_user" },
        [MAP_DOCUMENT_ATTACHED_BY_ORG] = { PAS_MAP_DOCUMENT, "attached_by_org" },
        [MAP_DOCUMENT_CREATED] = { PAS_MAP_DOCUMENT, "created" },
        [MAP_DOCUMENT_DOCUMENT_TYPE] = { PAS_MAP_DOCUMENT, "document_type" },
        [MAP_DOCUMENT_DESCRIPTION] = { PAS_MAP_DOCUMENT, "description" },
        [MAP_DOCUMENT_ATTACHED_ON_BEHALF_OF] = { PAS_MAP_DOCUMENT, "attached_on_behalf_of" },
        [MAP_DOCUMENT_FETCH_STATUS] = { PAS_MAP_DOCUMENT, "fetch_status" },
        [MAP_DOCUMENT_NOT_FETCHED_REASON] = { PAS_MAP_DOCUMENT, "not_fetched_reason" },
        [MAP_DOCUMENT_SIZE_BYTES] = { PAS_MAP_DOCUMENT, "size_bytes" },
        [MAP_DOCUMENT_SHA256] = { PAS_MAP_DOCUMENT, "sha256" },
        [MAP_DOCUMENT_CONTENT] = { PAS_MAP_DOCUMENT, "content" },
};

const char *pas_map_field_name(enum pas_map_field f) {
        return f < MAP_FIELDS_ ? fields[f].name : "?";
}

enum pas_map_kind pas_map_field_kind(enum pas_map_field f) {
        return f < MAP_FIELDS_ ? fields[f].kind : PAS_MAP_KINDS_;
}

const char *pas_map_kind_name(enum pas_map_kind k) {
        return k == PAS_MAP_REFERRAL ? "referral" : "document";
}

int pas_map_field_by_name(enum pas_map_kind kind, const char *name, size_t len, enum pas_map_field *ret) {
        for (size_t i = 0; i < MAP_FIELDS_; i++)
                if (fields[i].kind == kind && strlen(fields[i].name) == len && memcmp(fields[i].name, name, len) == 0) {
                        *ret = (enum pas_map_field) i;
                        return 0;
                }
        return -ENOENT;
}

static bool name_start(char c) {
        return isalpha((unsigned char) c) || c == '_';
}

static bool name_char(char c) {
        return isalnum((unsigned char) c) || c == '_';
}

void pas_map_sql_free(struct pas_map_sql *m) {
        if (!m)
                return;
        free(m->sql);
        free(m->params);
        *m = (struct pas_map_sql){ 0 };
}

bool pas_map_uses(const struct pas_map_sql *m, enum pas_map_field f) {
        for (size_t i = 0; i < m->n_params; i++)
                if (m->params[i] == f)
                        return true;
        return false;
}

int pas_map_rewrite(enum pas_map_kind kind, const char *sql, struct pas_map_sql *ret, struct errbuf *e) {
        size_t n = strlen(sql), o = 0, np = 0;
        struct pas_map_sql m = { 0 };
        int r = 0;

        /* The rewritten text is never longer; one marker per ':' at most. */
        m.sql = malloc(n + 1);
        m.params = calloc(n / 2 + 1, sizeof *m.params);
        if (!m.sql || !m.params) {
                pas_map_sql_free(&m);
                return err_set(e, -ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < n;) {
                char c = sql[i];

                if (c == '\'' || c == '"' || c == '`') {
                        size_t start = i++;
                        for (;;) {
                                if (i >= n) {
                                        r = err_set(e, -EINVAL, "a quote opened at character %zu is never closed",
                                                    start + 1);
                                        goto fail;
                                }
                                if (sql[i] == c && sql[i + 1] == c) {
                                        i += 2; /* a doubled quote inside */
                                        continue;
                                }
                                if (sql[i++] == c)
                                        break;
                        }
                        memcpy(m.sql + o, sql + start, i - start);
                        o += i - start;
                        continue;
                }
                if (c == '-' && sql[i + 1] == '-') {
                        size_t start = i;
                        while (i < n && sql[i] != '\n')
                                i++;
                        memcpy(m.sql + o, sql + start, i - start);
                        o += i - start;
                        continue;
                }
                if (c == '/' && sql[i + 1] == '*') {
                        const char *end = strstr(sql + i + 2, "*/");
                        size_t len;
                        if (!end) {
                                r = err_set(e, -EINVAL, "a comment opened at character %zu is never closed", i + 1);
                                goto fail;
                        }
                        len = (size_t) (end + 2 - (sql + i));
                        memcpy(m.sql + o, sql + i, len);
                        o += len;
                        i += len;
                        continue;
                }
                if (c == '?') {
                        r = err_set(e, -EINVAL,
                                    "a '?' at character %zu: name each parameter instead (:ubrn, :priority, …)", i + 1);
                        goto fail;
                }
                if (c == ':' && sql[i + 1] == ':') {
                        /* a PostgreSQL cast: ::type */
                        m.sql[o++] = sql[i++];
                        m.sql[o++] = sql[i++];
                        while (i < n && name_char(sql[i]))
                                m.sql[o++] = sql[i++];
                        continue;
                }
                if (c == ':' && name_start(sql[i + 1]) && (i == 0 || !name_char(sql[i - 1]))) {
                        size_t len = 1;
                        enum pas_map_field f;

                        while (name_char(sql[i + 1 + len]))
                                len++;
                        if (pas_map_field_by_name(kind, sql + i + 1, len, &f) < 0) {
                                r = err_set(e, -EINVAL, "unknown parameter :%.*s at character %zu: not a %s field",
                                            (int) (len > 64 ? 64 : len), sql + i + 1, i + 1, pas_map_kind_name(kind));
                                goto fail;
                        }
                        m.params[np++] = f;
                        m.sql[o++] = '?';
                        i += 1 + len;
                        continue;
                }
                m.sql[o++] = sql[i++];
        }
        m.sql[o] = '\0';
        m.n_params = np;
        if (np == 0) {
                r = err_set(e, -EINVAL, "names no parameter (:ubrn, …)");
                goto fail;
        }
        *ret = m;
        return 0;
fail:
        pas_map_sql_free(&m);
        return r;
}
