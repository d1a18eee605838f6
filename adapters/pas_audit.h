/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The audit trail (docs/schema.md: ers_audit): what the PAS holds of a
 * referral before a write changes it (what a new version is compared with),
 * appending a row inside the transaction of the write it records, and
 * reading a referral's rows back for `ersd audit`.  For daemon/audit.c, the
 * writer and the operators' commands.  Implemented in adapters/pas_audit.c;
 * every function keeps pas.h's contract (0 or a negative errno, one line in
 * e), and no row holds a patient identifier.
 */

#include <stddef.h>
#include <stdint.h>

#include "../daemon/err.h"
#include "../daemon/model.h"

struct pas;
struct pas_tx;

/* An additional requirement as stored (ers_referral_requirement): "" for NULL. */
struct stored_requirement {
        char *code, *display, *system, *comments;
};

/* What the PAS holds of a referral, before a write changes it: what the
 * audit trail compares the new version with.  Every column of ers_referral
 * the trail compares (referral_columns[] below), free text and the NHS
 * number included: they are compared, and a change of one is named without
 * its value (never printed; the NHS number is wiped when freed).  Owns its
 * strings and arrays: referral_stored_free().  The strings are whole, ""
 * when NULL; NULL when !found. */
struct referral_stored {
        bool found;                         /* an ers_referral row exists */
        int64_t version;
        char *state;
        char *state_reason;
        char *priority;
        char *status;
        char *specialty;
        char *service_id;
        char *appointment_start;
        char *appointment_end;
        char *patient_match;                /* MATCHED, UNMATCHED, …: the outcome, never the id */
        char (*related)[UBRN_LEN + 1];      /* owned: ers_referral_related, n_related of them */
        size_t n_related;
        char *clinical_info_last_updated;
        char *appointment_reference;
        char *appointment_status;
        char *appointment_reason;
        char *appointment_slot;
        char *appointment_clinician;
        char *clinic_type;
        char *named_clinician;
        char *advice_request;
        char *nhs_number;                   /* PATIENT IDENTIFIER: compared, never shown */
        char *state_comment;
        char *state_reason_system;
        char *state_reason_display;
        char *specialty_display;
        char *service_name;
        char *referral_type;
        char *pathway_start;
        char *clinical_info_first_submitted;
        char *commissioning_org;
        char *request_id;
        char *intent;
        char *appointment_created;
        char *appointment_reason_system;
        char *appointment_reason_display;
        char *appointment_comment;
        struct stored_requirement *requirements; /* owned: ers_referral_requirement, by seq */
        size_t n_requirements;
};

/*
 * The columns of ers_referral the audit trail compares, one row each, in the
 * order the trail names them (and ST_REFERRAL_STORED reads them, after
 * version).  A new column is one row here (and one in that SELECT):
 * tests/unit/test_audit_columns.c fails when a column of the DDL is neither
 * here nor in referral_columns_not_compared[].
 */
enum referral_column_kind {
        COLUMN_CODE, /* a code, id or reference: "name OLD -> NEW" */
        COLUMN_TIME, /* a time: "name OLD -> NEW" */
        COLUMN_TEXT, /* free text (or a patient identifier): "name changed", never its value */
        COLUMN_APPOINTMENT, /* appointment_start/_end: "appointment booked/moved/removed" */
};
/* Where the value a write puts in the column comes from. */
enum referral_column_source {
        FROM_REFERRAL, /* the struct referral member at `now` */
        FROM_VALUES,   /* the struct referral_values member at `now` (A005's, else the worklist entry's) */
};
struct referral_column {
        const char *name;                   /* the ers_referral column */
        const char *change;                 /* its name in the trail ("service" for service_id) */
        enum referral_column_kind kind;
        size_t stored;                      /* offsetof(struct referral_stored, …): a char * */
        enum referral_column_source source;
        size_t now;                         /* offsetof in the source: a const char * */
        bool kept_when_absent;              /* the write keeps the stored value when it has none (COALESCE) */
};
extern const struct referral_column referral_columns[];
extern const size_t n_referral_columns;
/* The columns of ers_referral the trail does not compare, each with why
 * ({ name, why }), NULL-terminated. */
extern const char *const referral_columns_not_compared[][2];

/* The values a write puts in the columns a worklist entry also gives (pas_write.c). */
struct referral_values {
        const char *nhs_number, *priority, *specialty, *service_id, *service_name, *referral_type;
};
struct referral_values referral_values(const struct referral *ref, const struct worklist_entry *entry);

/* Reads it (inside the write's transaction, so that it is what the write replaces). */
int pas_referral_stored(struct pas *p, const char *ubrn, struct referral_stored *ret, struct errbuf *e);
void referral_stored_free(struct referral_stored *s); /* frees the contents; accepts NULL */

/* Appends one row to the audit trail, inside the transaction of the write it
 * records (writes: takes the transaction): seq is the UBRN's last + 1.
 * version < 0 is NULL.  detail and documents may be NULL; neither may hold a
 * patient identifier. */
int pas_audit_append(struct pas_tx *tx, const char *ubrn, int64_t version, const char *event, const char *detail,
                     const char *documents, const char *correlation_id, struct errbuf *e);

/* One audit row as read back.  Borrowed strings, valid during the callback. */
struct audit_entry {
        int64_t seq;
        int64_t version;        /* -1 when NULL */
        const char *event;
        const char *detail;     /* may be NULL */
        const char *documents;  /* may be NULL */
        const char *recorded_at;
        const char *correlation_id; /* may be NULL */
};
/* Calls fn for each audit row of ubrn, by seq; stops when fn returns non-zero
 * (returned).  *ret_n (may be NULL) gets the rows read. */
int pas_audit_read(struct pas *p, const char *ubrn, int (*fn)(void *userdata, const struct audit_entry *a),
                   void *userdata, size_t *ret_n, struct errbuf *e);
