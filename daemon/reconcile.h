/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `ersd reconcile`: the PAS against the latest worklists, without spending a
 * worklist call.  "The latest worklists" are the entries of each worklist's
 * last successful poll, which every round records in ers_worklist_entry (the
 * A008 budget is two calls per service a day: reconcile never makes one).
 *
 *   MISSING  a UBRN a latest worklist lists, absent from ers_referral
 *   STALE    the PAS holds an older version than the worklist lists (or, for
 *            a referral on no worklist, than e-RS answers)
 *   UNKNOWN  a referral in the PAS that no latest worklist lists and e-RS
 *            answers 404 for (A005): e-RS does not know it
 *
 * "Unknown to e-RS" can only be established by asking: one A005 per referral
 * in the PAS that no latest worklist lists, the most recently written first,
 * at most RECONCILE_CHECK_MAX per run and RECONCILE_CHECKS_PER_SECOND (half
 * the platform's 10 requests/s per application, which the running daemon
 * shares).  The referrals past that bound are counted as not checked.
 *
 * Prints one line per finding and a summary line to `out`; logs nothing
 * else.  Returns 0 when everything matches, 1 when anything is off or could
 * not be checked (an A005 that failed other than with 404), or a negative
 * errno when the PAS could not be read (one line in e).
 */

#include <stdio.h>

#include "../adapters/pas.h"
#include "ers.h"

#define RECONCILE_CHECK_MAX 100       /* A005 calls per run */
#define RECONCILE_CHECKS_PER_SECOND 5 /* and their pace */

int reconcile_run(struct pas *p, struct ers_client *ers, FILE *out, struct errbuf *e);
