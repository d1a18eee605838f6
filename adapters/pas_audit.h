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

/* What the PAS holds of a referral, before a write changes it: what the
 * audit trail compares the new version with.  No patient identifier and no
 * free text is read.  Owns its strings and arrays: referral_stored_free().
 * The strings are whole, "" when NULL; NULL when !found. */
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
        /* the codes, times and references of the element walk (docs/schema.md) the trail names */
        char *clinical_info_last_updated;
        char *appointment_reference;
        char *appointment_status;
        char *appointment_reason;
        char *appointment_slot;
        char *appointment_clinician;
        char *clinic_type;
        char *named_clinician;
        char *advice_request;
        char **requirements;                /* owned: the additional requirements' codes ("" for NULL), by seq */
        size_t n_requirements;
};
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
