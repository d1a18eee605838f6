/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Each A005 answer as received (docs/schema.md: ers_referral_answer): its
 * bytes kept whole, in the transaction of the referral's rows, so that what
 * e-RS said of a version is never lost (e-RS keeps no history), and read back
 * to derive a referral's rows again without asking e-RS.  For the writer
 * (daemon/write.c) and the commands that work from what is kept.
 * Implemented in adapters/pas_answer.c; every function keeps pas.h's
 * contract (0 or a negative errno, one line in e naming the UBRN and the
 * SQLSTATE, never a byte of the answer).  PATIENT DATA: an answer is the
 * whole referral, the NHS number included.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "../daemon/err.h"
#include "../daemon/model.h"

struct pas;
struct pas_tx;

/* The largest answer kept: ERS_JSON_MAX (daemon/ers.h), the bound of every
 * JSON answer the client takes (a static assertion in daemon/write.c keeps
 * the two equal).  One BLOB: within MariaDB's max_allowed_packet (16 MiB by
 * default), and the JSON is held whole by the parser anyway. */
#define PAS_ANSWER_MAX 10485760 /* 10 MiB */

/*
 * Keeps `a` (its bytes, correlation id and time) as an answer of (ubrn,
 * version), keyed by the SHA-256 of its bytes, which this function computes:
 * one row per distinct answer, so the same bytes read again write nothing
 * (*ret_written false) and other bytes for the same version (an attachment
 * released without a new version) are a row of their own.  *ret_written may
 * be NULL; ret_sha256, when not NULL, gets the key (65 bytes).  The
 * referral's row, when at `version`, then names it (pas_answer_derived()):
 * call it after the rows it was derived from are written.  -EINVAL for
 * no bytes, more than PAS_ANSWER_MAX, a UBRN that is not 12 digits or a
 * negative version.  Writes: takes the transaction.
 */
int pas_answer_put(struct pas_tx *tx, const char *ubrn, int64_t version, const struct referral_answer *a,
                   bool *ret_written, char *ret_sha256, struct errbuf *e);

/*
 * Names (ubrn, version, sha256) as the answer the referral's ers_referral
 * row was derived from (answer_sha256), when the row is at `version`
 * (nothing otherwise).  pas_answer_put() does it for the answer it keeps;
 * every write of the row's columns clears it first (pas_put_referral()), so
 * a row never names an answer it was not derived from.  Writes.
 */
int pas_answer_derived(struct pas_tx *tx, const char *ubrn, int64_t version, const char *sha256,
                       struct errbuf *e);

/*
 * The version of the referral's row and the SHA-256 of the answer it was
 * derived from ("" when it names none: a row written before answers were
 * kept, or from no answer).  *ret_version -1 when the PAS has no row.  Reads
 * outside any transaction; the one writer's own rows.
 */
int pas_answer_current(struct pas *p, const char *ubrn, int64_t *ret_version, char ret_sha256[65],
                       struct errbuf *e);

/* What is kept of one answer, without its bytes. */
struct answer_kept {
        int64_t version;
        char sha256[65];
        int64_t size;             /* its bytes */
        char correlation_id[37];  /* "" when NULL */
        char received_at[33];
};

/* Every answer kept of `ubrn`, by version, then by when it arrived.  *ret
 * (NULL when none) is the caller's to free(). */
int pas_answers_kept(struct pas *p, const char *ubrn, struct answer_kept **ret, size_t *ret_n, struct errbuf *e);

/* The answer (ubrn, version, sha256) read back whole into *ret (its bytes
 * owned: referral_answer_free(); the correlation id and time as kept).
 * -ENOENT when no such row; -EBADMSG when the bytes read back are not the
 * size and SHA-256 kept (a row altered by hand). */
int pas_answer_get(struct pas *p, const char *ubrn, int64_t version, const char *sha256,
                   struct referral_answer *ret, struct errbuf *e);

/* Every UBRN the PAS has a referral row of (ers_referral), in UBRN order, for
 * `ersd remap --all`.  *ret (NULL when none) is the caller's to free(). */
int pas_answer_referrals(struct pas *p, char (**ret)[UBRN_LEN + 1], size_t *ret_n, struct errbuf *e);
