/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The FHIR side of writing back to e-RS: the A028 request body
 * (eRS-RecordReviewOutcome-Parameters) built from what the PAS decided, the
 * checks on what it may hold, and the answers read: the ReferralRequest A028
 * and A013 answer (its version), and the Bundle of Tasks A029 answers (the
 * actions allowed now).
 *
 * Not here: the calls (ers_writeback.c), the parsers of what the sync reads
 * (fhir.h).  The answers are untrusted and fuzzed (tests/fuzz/fuzz_writeback.c);
 * the parsers return 0, or -EBADMSG with one line saying which element was
 * wrong (never its value: a version or a UBRN at most), or -ENOMEM.
 */

#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "err.h"

/* The review outcomes A028 takes from an application (the spec's other codes
 * are not ours to send). */
#define ERS_REVIEW_RETURN_TO_REFERRER "RETURN_TO_REFERRER_WITH_ADVICE"
#define ERS_REVIEW_ACCEPT_BOOK_LATER  "ACCEPT_REFER_BOOK_LATER"

/*
 * The longest review comment we send, in bytes of UTF-8.  The published
 * specification sets no maximum on reviewComments; this bound is ours (the
 * widest a text column of many databases holds), so that what a PAS inserts
 * is refused here, with a line, rather than by e-RS or a gateway.
 */
#define ERS_REVIEW_COMMENT_MAX 4000

/* The actions A029 can answer (eRS-AvailableActionsForUser-1), as bits. */
enum ers_action {
        ERS_ACTION_RECORD_REVIEW_OUTCOME = 1u << 0,
        ERS_ACTION_CREATE_APPOINTMENT = 1u << 1,
        ERS_ACTION_CHANGE_SHORTLIST = 1u << 2,
        ERS_ACTION_CHANGE_SHORTLIST_AND_SEND_FOR_TRIAGE = 1u << 3,
        ERS_ACTION_CANCEL_REFERRAL = 1u << 4,
        ERS_ACTION_CANCEL_DIRECTLY_BOOKED_APPOINTMENT = 1u << 5,
};

/*
 * Whether a request may be sent as it is, before anything is: `outcome` is
 * one of the two above; `comment` is mandatory: not NULL, not blank, valid
 * UTF-8, at most ERS_REVIEW_COMMENT_MAX bytes, no control character but tab,
 * line feed and carriage return; `priority` is NULL or ROUTINE, URGENT or
 * TWO_WEEK_WAIT, and only with ACCEPT_REFER_BOOK_LATER (e-RS refuses a new
 * priority on a referral returned to its referrer: PRIORITY_NOT_CURRENT).
 * 0, or -EINVAL with one line naming what is wrong (never the comment's
 * text: it is the trust's, and may name a patient).
 */
int fhir_review_check(const char *outcome, const char *comment, const char *priority, struct errbuf *e);

/*
 * The A028 body for a request fhir_review_check() passed: a Parameters with
 * reviewOutcome, reviewComments (the comment as it is, escaped as JSON wants)
 * and, when priority is not NULL, reviewPriority.  The caller owns *ret
 * (free()).  0, the check's -EINVAL, or -ENOMEM.
 */
int fhir_review_request(const char *outcome, const char *comment, const char *priority, char **ret,
                        struct errbuf *e);

/*
 * What A028 and A013 answer: the ReferralRequest `ubrn` as e-RS holds it now.
 * *ret_version is its meta.versionId.  -EBADMSG when it is not a
 * ReferralRequest, is another referral's, or carries no readable version.
 */
int fhir_parse_written(json_object *root, const char *ubrn, int64_t *ret_version, struct errbuf *e);

/*
 * What settling a write that may have reached e-RS reads of A005's answer, and
 * nothing more: the version (as fhir_parse_written()) and the state's code
 * (Extension-eRS-ReferralState-1, nested "state", valueCoding.code) into
 * *ret_state (malloc'd; NULL when absent or unreadable).  An element the sync
 * refuses elsewhere in the referral (an attachment without a readable id) does
 * not keep a request from being settled.  0, fhir_parse_written()'s -EBADMSG,
 * or -ENOMEM; on failure *ret_state is NULL.
 */
int fhir_parse_settling(json_object *root, const char *ubrn, int64_t *ret_version, char **ret_state,
                        struct errbuf *e);

/*
 * What A029 answers: a Bundle of Tasks, each an action allowed now on the
 * referral its focus names.  *ret_actions gets the bit of every known action
 * whose Task is ready and a proposal; *ret_unknown counts the codes of the
 * system that are not known here (kept out: never taken as allowed).  A Task
 * whose focus names another referral, an entry that is not a Task, or a
 * Bundle without an entry array where one is due is -EBADMSG.  No entry at
 * all is no action (an empty search set).
 */
int fhir_parse_actions(json_object *root, const char *ubrn, unsigned *ret_actions, unsigned *ret_unknown,
                       struct errbuf *e);
