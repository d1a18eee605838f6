/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * When plain `ersd` reads each worklist (A008): at its poll times (UK time,
 * worklists[].poll_at), within the service's budget of worklist calls per UK
 * day.  At start a poll time missed while ersd was down (ers_poll says the
 * worklist was last read before it, or never) is caught up at once, unless
 * that would take a call a later poll time of the same UK day needs: then the
 * next poll time comes as planned.  A reload keeps to the poll times and
 * catches nothing up.  `ersd --once` reads every worklist now, budget
 * permitting (worklist_sync.c counts every call in ers_budget first).
 */

#include <stdbool.h>
#include <stddef.h>
#include <time.h>

#include "../adapters/pas.h"
#include "config.h"

struct poll_schedule {
        time_t *next; /* owned, n entries: when worklists[i] is read next */
        bool *due;    /* owned, n entries: whether worklists[i] is read this round (sync_ctx.poll) */
        size_t n;     /* the configuration's n_worklists */
};

/* Plans every worklist's next read from ers_poll and ers_budget (`catch_up`
 * false: from the poll times alone, for a reload; the PAS is then not read
 * and `pas` may be NULL).  Logs each catch-up, or why a missed poll time is
 * not caught up.  0 or a negative errno with e (the PAS could not be read:
 * the plan then follows the poll times alone); *ps is usable either way
 * unless -ENOMEM (then *ps holds nothing). */
int poll_schedule_init(struct poll_schedule *ps, const struct config *cfg, struct pas *pas, time_t now,
                       bool catch_up, struct errbuf *e);
void poll_schedule_free(struct poll_schedule *ps); /* accepts a zeroed one */

/* Sets due[] for each worklist whose time has come at `now` and plans its
 * next read; returns how many are due. */
size_t poll_schedule_take(struct poll_schedule *ps, const struct config *cfg, time_t now);

/* The earliest planned read. */
time_t poll_schedule_next(const struct poll_schedule *ps);
