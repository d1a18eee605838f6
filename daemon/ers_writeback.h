/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Writing back to e-RS: the calls the outbox sender makes (issue 16), on
 * the e-RS client of ers.h, application-restricted or not as it is
 * configured.
 *
 *   A029  GET  {base}/FHIR/STU3/Task?focus=ReferralRequest/{ubrn}/_history/{v}
 *                  &intent=proposal&status=ready                  → Bundle of Task
 *   A028  POST {base}/FHIR/STU3/ReferralRequest/{ubrn}/$ers.recordReviewOutcome
 *                  If-Match: W/"{v}", a Parameters body           → ReferralRequest
 *   A013  POST {base}/FHIR/STU3/ReferralRequest/{ubrn}/$ers.acceptReferral
 *                  If-Match: W/"{v}", no body                     → ReferralRequest
 *
 * Every request goes through the client's one transfer (http.c) and pacing:
 * the same rate slot and 429 hold as the reads (the limit is the
 * application's), a breaker of its own per endpoint, and never a worklist
 * call.  A029 is a read: sent again on a 429, 5xx or failed connection as
 * any read is (ers.h, "Limits"), never cached.  A028 and A013 are writes:
 *
 *   - sent ONCE: the transfer never sends one again (send_once, as A008),
 *     whatever came back; on a fresh connection, so that libcurl cannot send
 *     it again itself (it resends a request whose reused connection died
 *     before any answer, which is exactly when a write may have been applied);
 *   - with If-Match: W/"{decided_version}", the version of the referral the
 *     decision was made on: e-RS applies it to that version or to none;
 *   - only a 401 is sent again, once, with a renewed token (signed-JWT access:
 *     ers.h): the gateway refused it, so nothing was applied.
 *
 * Each call classifies what happened into a struct ers_wb_result the sender
 * acts on; see enum ers_wb_outcome.  The error line (e) says it in one line:
 * the call, the UBRN, the HTTP status or transport error, the e-RS code, the
 * correlation id, and for ERS_WB_MAY_HAVE_REACHED that it may have reached
 * e-RS.  Text e-RS sent is quoted only through server_text() (escaped,
 * capped, our secrets scrubbed); the comment a person wrote is never quoted.
 *
 * Returns 0 when the call was made (or refused by the client's limits) and
 * *res says how it ended; a negative errno when nothing was sent and there is
 * nothing to classify: -EINVAL (the request may not be sent as it is: a UBRN
 * that is not 12 digits, a negative version, a missing or unfit comment, a
 * priority where none may go: fhir_review_check()), -ENOMEM, -ECANCELED
 * (stopped before anything was sent).  The line is in e either way.
 */

#include <stdbool.h>
#include <stdint.h>

#include "ers.h"
#include "err.h"
#include "fhir_writeback.h"
#include "server_text.h"

enum ers_wb_outcome {
        /* e-RS answered 2xx with the referral: the request was applied; res->version is the
         * version e-RS answered (A029: it answered, res->actions holds the actions allowed). */
        ERS_WB_DONE,
        /* e-RS refused it and will again as it is: 422 (the action is not allowed now: its
         * code, e.g. INVALID_REQUEST_STATE), 404, 400 and any other 4xx but those below.
         * Nothing was applied; a person must look (res->code, res->words). */
        ERS_WB_REJECTED,
        /* The referral moved on: 409 or 412 to If-Match (A029: 400 HISTORY_NOT_SUPPORTED, the
         * version asked about is not the current one).  Nothing was applied; never send it on a
         * newer version: a person decided on the old one. */
        ERS_WB_STALE,
        /* Not applied, try later with backoff: 423 (locked), 429, 500, 503, 401 after a renewed
         * token, no connection made, the client's breaker open, a token endpoint failing; and
         * for A029 any transport failure or unreadable answer.  res->http_status and the
         * call's retry_after (ers_call) say how long e-RS asked for. */
        ERS_WB_RETRY,
        /* A write was sent and what became of it is unknown: no answer after it left (a
         * timeout, a connection reset or closed, a stop), a 502 or 504 (a gateway lost the
         * answer of an e-RS that may have applied it), or a 2xx whose answer could not be
         * read.  Read the referral (A005) and settle by what e-RS shows before anything
         * else: never send it again blindly. */
        ERS_WB_MAY_HAVE_REACHED,
        /* 403: the application is not approved for this (or the caller's access refused).
         * Nothing was applied; a person must look before anything is sent again. */
        ERS_WB_FORBIDDEN,
};

/* The outcome's name as the outbox and the log spell it: "DONE", "REJECTED", "STALE",
 * "RETRY", "MAY_HAVE_REACHED", "FORBIDDEN". */
const char *ers_wb_outcome_name(enum ers_wb_outcome o);

struct ers_wb_result {
        enum ers_wb_outcome outcome;
        int64_t version;      /* DONE of A028/A013: meta.versionId e-RS answered; else -1 */
        long http_status;     /* the answer's status, 0 when none came */
        unsigned actions;     /* A029 DONE: the ERS_ACTION_* bits allowed now (fhir_writeback.h) */
        unsigned unknown_actions; /* A029 DONE: action codes not known here (never taken as allowed) */
        /* An error answer's OperationOutcome: its e-RS code (issue[0].details.coding[0].code)
         * and words (diagnostics), each through server_text(); else the answer's first
         * words in `words`.  "" when there is nothing to quote. */
        char code[SERVER_TEXT_MAX + 4];
        char words[SERVER_TEXT_MAX + 4];
};

/*
 * A029: the actions allowed now on referral `ubrn` at `version` (its current
 * version: e-RS answers 400 HISTORY_NOT_SUPPORTED, STALE here, for any other).
 * DONE with res->actions; STALE, FORBIDDEN, REJECTED, RETRY as above (never
 * MAY_HAVE_REACHED: it changes nothing).  An answer that is not a Bundle of
 * Tasks for this referral is RETRY with the parser's line.  A029 offers no
 * action for A013: whether a referral can be accepted shows only in A013's
 * answer (422 INVALID_REQUEST_STATE when it cannot).
 */
int ers_allowed_actions(struct ers_client *c, const char *ubrn, int64_t version, struct ers_wb_result *res,
                        struct ers_call *call, struct errbuf *e);

/*
 * A028: records review outcome `outcome` (ERS_REVIEW_RETURN_TO_REFERRER or
 * ERS_REVIEW_ACCEPT_BOOK_LATER) with the mandatory `comment` and, with
 * ACCEPT_REFER_BOOK_LATER only, a new priority (NULL: unchanged), on the
 * referral at `decided_version`.  Checked before anything is sent
 * (fhir_review_check(): -EINVAL with its line).
 */
int ers_record_review_outcome(struct ers_client *c, const char *ubrn, int64_t decided_version, const char *outcome,
                              const char *comment, const char *new_priority, struct ers_wb_result *res,
                              struct ers_call *call, struct errbuf *e);

/* A013: accepts the referral (booked into a bookable service) at `decided_version`. */
int ers_accept_referral(struct ers_client *c, const char *ubrn, int64_t decided_version, struct ers_wb_result *res,
                        struct ers_call *call, struct errbuf *e);

/*
 * How a write that was made ends, from what came back (pure, for the tests
 * and the calls above): `r` the transfer's result (0 for a 2xx), `status` the
 * HTTP status (0: no answer), `sent` whether any byte of the request left,
 * `code` the e-RS code of an error answer (may be NULL).  A 2xx is DONE here;
 * the caller makes it MAY_HAVE_REACHED when its answer cannot be read.
 */
enum ers_wb_outcome ers_wb_classify_write(int r, long status, bool sent, const char *code);

/* The same for A029, a read: never MAY_HAVE_REACHED. */
enum ers_wb_outcome ers_wb_classify_read(int r, long status, const char *code);
