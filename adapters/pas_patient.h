/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Patient matching (docs/schema.md, "Patient matching"): the PAS's own
 * lookup of a patient by NHS number, the outcome stored on the referral's
 * row, and the referrals whose patient is still to be found.  For the
 * writer and the sync's re-matching (daemon/write.c, daemon/due.c).
 * Implemented in adapters/pas_patient.c; every function keeps pas.h's
 * contract (0 or a negative errno, one line in e, never a bound value).
 */

#include <stddef.h>
#include <stdint.h>

#include "../daemon/err.h"
#include "../daemon/model.h"

struct pas;
struct pas_tx;

enum patient_match_status {
        PATIENT_NOT_CONFIGURED, /* no lookup configured when the row was written */
        PATIENT_MATCHED,        /* the lookup returned one PAS patient id */
        PATIENT_UNMATCHED,      /* no row, no valid NHS number, or the lookup failed */
        PATIENT_AMBIGUOUS,      /* rows with more than one distinct PAS patient id */
};

#define PAS_PATIENT_ID_MAX 64 /* bytes of a PAS patient id (ers_referral.pas_patient_id) */

/* The outcome of one lookup.  pas_patient_id holds a PATIENT IDENTIFIER: it
 * is never logged nor put into an error line. */
struct patient_match {
        enum patient_match_status status;
        char pas_patient_id[PAS_PATIENT_ID_MAX + 1]; /* when MATCHED, else "" */
};

/* "MATCHED", "UNMATCHED", … as stored in ers_referral.patient_match. */
const char *patient_match_name(enum patient_match_status s);

/*
 * Sets the PAS's own patient lookup: one SQL statement with exactly one
 * parameter marker (the NHS number, bound as text) returning the PAS patient
 * id as its first column (e.g. "SELECT patient_id FROM patient WHERE
 * nhs_number = ?").  Prepares it now, so a statement the database refuses is
 * reported at start (-EIO, or -EINVAL for a parameter or column count that
 * is not 1, with one line in e naming the SQLSTATE, never the SQL).  NULL
 * removes the lookup.  Call outside a transaction.
 */
int pas_set_patient_lookup(struct pas *p, const char *sql, struct errbuf *e);

/*
 * Looks the NHS number up with the configured statement: NOT_CONFIGURED
 * when there is none, UNMATCHED without a query when the number is absent or
 * fails the modulus-11 check, else MATCHED / UNMATCHED / AMBIGUOUS by the rows
 * it returns (NULL ids ignored; the same id twice is one patient).  Call
 * outside a transaction: a failing statement aborts a PostgreSQL transaction.
 * Returns 0 or a negative errno (the statement failed, or an id longer than
 * PAS_PATIENT_ID_MAX), *ret untouched on failure.
 */
int pas_match_patient(struct pas *p, const char *nhs_number, struct patient_match *ret, struct errbuf *e);

/* Stores a match outcome on the referral's row (pas_patient_id,
 * patient_match, patient_checked_at = the transaction's time).  Writes:
 * takes the transaction.  A UBRN without a row is not an error (nothing to
 * update). */
int pas_put_patient_match(struct pas_tx *tx, const char *ubrn, const struct patient_match *m, struct errbuf *e);

/* A referral whose patient is still to be found.  nhs_number is a PATIENT
 * IDENTIFIER. */
struct patient_rematch {
        char ubrn[UBRN_LEN + 1];
        char nhs_number[11];
        char patient_match[17]; /* as stored now: "UNMATCHED", … */
        int64_t version;        /* the referral's version in the PAS */
};

/*
 * Lists at most `max` referrals whose patient_match is UNMATCHED, AMBIGUOUS
 * or NOT_CONFIGURED, with a valid NHS number, last checked at or before
 * `before` (ISO 8601 UTC to the second, as stored) or never: the least
 * recently checked first, so that a bounded pass per round goes through all
 * of them in turn.  *ret is
 * an array the caller frees (NULL when *ret_n is 0).
 */
int pas_patients_to_rematch(struct pas *p, const char *before, size_t max, struct patient_rematch **ret,
                            size_t *ret_n, struct errbuf *e);
