/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `ersd status`: what the ledger database says about ersd, for a person or
 * for monitoring.  It reads the PAS database only (ers_poll, ers_budget,
 * ers_retry, ers_ledger, ers_document, ers_referral: docs/schema.md) and
 * makes no e-RS call.  Per configured worklist: the last poll and its result,
 * the next poll, the worklist calls left today; the referrals waiting
 * (documents owed, failing, parked) with UBRN and reason; the URGENT and
 * TWO_WEEK_WAIT referrals seen on a worklist and not in the PAS after
 * overdue_after_minutes; the requests to e-RS waiting and those needing a
 * person (status_outbox.h).
 *
 * Never a patient identifier in any form: UBRNs, codes, times, correlation
 * ids and the operators' reason lines only (the columns read hold nothing
 * else; the NHS number and free-text columns are never selected).
 *
 * Exit status (docs/operations.md, "ersd status"): the STATUS_* values below.
 */

#include <stdio.h>

#include "../adapters/pas.h"
#include "config.h"

#define STATUS_OK 0           /* all well: nothing needs a person */
#define STATUS_NEEDS_PERSON 1 /* a parked referral, a worklist whose last poll failed or skipped malformed
                                 entries, none polled for a day, or a write-back request held by
                                 FORBIDDEN (e-RS refused the application: nothing more is sent) */
#define STATUS_UNKNOWN 3      /* the database cannot be read, or its schema is absent or another version */
#define STATUS_OVERDUE 4      /* an URGENT / TWO_WEEK_WAIT referral is overdue (takes precedence over 1) */

#define STATUS_STALE_SECONDS (25 * 3600) /* a worklist not read for longer needs a person */
#define STATUS_LIST_MAX 1000             /* referrals listed in detail per kind; the counts are complete */

enum status_format { STATUS_FORMAT_TEXT, STATUS_FORMAT_JSON, STATUS_FORMAT_PROMETHEUS };

/*
 * Reads the status through `cfg`'s database connection and prints it to `out`
 * in `format`.  Returns the exit status (STATUS_*).  A database that cannot
 * be read is reported in the same format (STATUS_UNKNOWN), never as a crash
 * or an empty output.
 */
int status_run(const struct config *cfg, enum status_format format, FILE *out);

/* The UBRNs already warned about as overdue, so the journal gets one line per
 * referral (and one more if it becomes overdue again after leaving the list). */
struct overdue_memory {
        char (*ubrns)[UBRN_LEN + 1]; /* owned array of n */
        size_t n;
};

/*
 * For the daemon, at the end of each round: logs a warning (ERS_UBRN,
 * ERS_STAGE=priority) for each URGENT / TWO_WEEK_WAIT referral overdue and
 * not warned about yet; `memory` then holds the current overdue set.  Never
 * fails the round: a read that fails is logged at debug level and tried at
 * the next round.
 */
void status_warn_overdue(struct pas *pas, const struct config *cfg, struct overdue_memory *memory);
void overdue_memory_free(struct overdue_memory *m); /* accepts an empty one */
