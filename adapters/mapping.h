/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Mapping into the PAS's own tables (docs/configuration.md, database.mapping):
 * SQL statements of the trust's, with named parameters (:ubrn, :priority, …),
 * that ersd runs in the same transaction as the staging rows and the ledger,
 * once for every referral version it writes and once for every document row
 * it writes.  This module only rewrites a statement's named parameters into
 * ODBC '?' markers and lists which field each marker takes, in order: the
 * values are always bound (adapters/pas_mapping.c), never put into the SQL.  Pure
 * functions; nothing here talks to a database.
 *
 * Rewriting: ":name" (a letter or '_', then letters, digits, '_') outside
 * quotes and comments is a parameter; the same name may appear several
 * times (each gets its own marker).  Left as written: '…' strings (with ''
 * inside; a backslash is not an escape), "…" and `…` quoted identifiers,
 * "--" comments to the end of the line, / * … * / comments, PostgreSQL's
 * "::type" casts, ":=" (PL/SQL assignment).  A '?' outside quotes is refused:
 * the statement must name its parameters.
 */

#include <stdbool.h>
#include <stddef.h>

#include "../daemon/err.h"

enum pas_map_kind {
        PAS_MAP_REFERRAL, /* run for every referral version written (ers_referral) */
        PAS_MAP_DOCUMENT, /* run for every document row written (ers_document) */
        PAS_MAP_KINDS_
};

/* The fields a statement may name.  The first group is a referral's, the
 * second a document's; pas_map_field_kind() says which. */
enum pas_map_field {
        /* referral */
        MAP_REFERRAL_UBRN,
        MAP_REFERRAL_VERSION,
        MAP_REFERRAL_NHS_NUMBER, /* PATIENT IDENTIFIER */
        MAP_REFERRAL_NHS_NUMBER_VALID,
        MAP_REFERRAL_PRIORITY,
        MAP_REFERRAL_STATE,
        MAP_REFERRAL_STATE_REASON,
        MAP_REFERRAL_STATE_COMMENT,
        MAP_REFERRAL_SPECIALTY,
        MAP_REFERRAL_SPECIALTY_DISPLAY,
        MAP_REFERRAL_SERVICE_ID,
        MAP_REFERRAL_SERVICE_NAME,
        MAP_REFERRAL_REFERRAL_TYPE,
        MAP_REFERRAL_PATHWAY_START,
        MAP_REFERRAL_CLINICAL_INFO_FIRST_SUBMITTED,
        MAP_REFERRAL_APPOINTMENT_START,
        MAP_REFERRAL_APPOINTMENT_END,
        MAP_REFERRAL_COMMISSIONING_ORG,
        MAP_REFERRAL_REQUEST_ID,
        MAP_REFERRAL_STATUS,
        MAP_REFERRAL_INTENT,
        MAP_REFERRAL_WORKLIST,
        MAP_REFERRAL_SYNCED_AT,
        MAP_REFERRAL_PAS_PATIENT_ID, /* PATIENT IDENTIFIER */
        MAP_REFERRAL_PATIENT_MATCH,
        MAP_REFERRAL_CLINICAL_INFO_LAST_UPDATED, /* the element walk of issue 15, from here */
        MAP_REFERRAL_STATE_REASON_SYSTEM,
        MAP_REFERRAL_STATE_REASON_DISPLAY,
        MAP_REFERRAL_APPOINTMENT_REFERENCE,
        MAP_REFERRAL_APPOINTMENT_STATUS,
        MAP_REFERRAL_APPOINTMENT_CREATED,
        MAP_REFERRAL_APPOINTMENT_REASON,
        MAP_REFERRAL_APPOINTMENT_REASON_SYSTEM,
        MAP_REFERRAL_APPOINTMENT_REASON_DISPLAY,
        MAP_REFERRAL_APPOINTMENT_COMMENT,
        MAP_REFERRAL_APPOINTMENT_SLOT,
        MAP_REFERRAL_APPOINTMENT_CLINICIAN,
        MAP_REFERRAL_CLINIC_TYPE,
        MAP_REFERRAL_NAMED_CLINICIAN,
        MAP_REFERRAL_ADVICE_REQUEST,
        MAP_REFERRAL_ADDITIONAL_REQUIREMENTS, /* a JSON array of the requirements; NULL when none */
        /* document */
        MAP_DOCUMENT_UBRN,
        MAP_DOCUMENT_SOURCE_UBRN,
        MAP_DOCUMENT_DOCUMENT_ID,
        MAP_DOCUMENT_KIND,
        MAP_DOCUMENT_ATTACHMENT_ID,
        MAP_DOCUMENT_REVISION,
        MAP_DOCUMENT_SOURCE_VERSION,
        MAP_DOCUMENT_TITLE,
        MAP_DOCUMENT_CONTENT_TYPE,
        MAP_DOCUMENT_DECLARED_SIZE,
        MAP_DOCUMENT_AVAILABILITY,
        MAP_DOCUMENT_ATTACHED_BY_USER,
        MAP_DOCUMENT_ATTACHED_BY_ORG,
        MAP_DOCUMENT_CREATED,
        MAP_DOCUMENT_DOCUMENT_TYPE,
        MAP_DOCUMENT_DESCRIPTION,
        MAP_DOCUMENT_ATTACHED_ON_BEHALF_OF,
        MAP_DOCUMENT_FETCH_STATUS,
        MAP_DOCUMENT_NOT_FETCHED_REASON,
        MAP_DOCUMENT_SIZE_BYTES,
        MAP_DOCUMENT_SHA256,
        MAP_DOCUMENT_CONTENT, /* the whole document, streamed (SQLPutData); NULL when not fetched */
        MAP_FIELDS_
};

/* The parameter name of a field, without ':' ("ubrn", "content", …). */
const char *pas_map_field_name(enum pas_map_field f);

/* Which statement offers the field. */
enum pas_map_kind pas_map_field_kind(enum pas_map_field f);

/* "referral" or "document". */
const char *pas_map_kind_name(enum pas_map_kind k);

/* Looks a name (without ':', `len` bytes) up among the fields of `kind`;
 * -ENOENT when unknown. */
int pas_map_field_by_name(enum pas_map_kind kind, const char *name, size_t len, enum pas_map_field *ret);

/* A statement rewritten for ODBC.  Owns both arrays (pas_map_sql_free). */
struct pas_map_sql {
        char *sql;                  /* with a '?' for each parameter */
        enum pas_map_field *params; /* the field of each '?', in order; NULL when there is none */
        size_t n_params;
};

/*
 * Rewrites `sql`'s named parameters for a statement of `kind`.  Returns 0
 * and fills *ret (the caller frees it), or -EINVAL with one line in `e` (an
 * unknown name, with its position; a '?'; an unterminated quote or comment;
 * no parameter at all), or -ENOMEM.  The line never quotes the statement
 * beyond the offending name.
 */
int pas_map_rewrite(enum pas_map_kind kind, const char *sql, struct pas_map_sql *ret, struct errbuf *e);

void pas_map_sql_free(struct pas_map_sql *m); /* accepts NULL and a zeroed struct */

/* True when the rewritten statement uses field f. */
bool pas_map_uses(const struct pas_map_sql *m, enum pas_map_field f);
