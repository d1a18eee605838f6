/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The pure arithmetic of the schedule (docs/internals/schedule.md, "The schedule"):
 * poll times, the UK day the worklist budget is counted in, backoff delays
 * and the request pacing of the rate limiter.  Nothing here reads a clock,
 * the database or the environment: every time is passed in, so each rule is
 * unit-tested (tests/unit/test_schedule.c), midnight and the clock changes
 * included.
 *
 * UK time.  Poll times (`poll_at`) and the budget's day are UK civil time
 * (Europe/London) whatever the server's time zone (servers often run in UTC):
 * GMT, and BST (UTC+1) from 01:00 UTC on the last Sunday of March to 01:00
 * UTC on the last Sunday of October, the rule in force since 1998 (Summer
 * Time Order 2002).  It is computed here rather than through TZ and the tz
 * database so that no process-wide state is touched and the rule is tested.
 * A poll time that does not exist (01:00 to 01:59 on the March Sunday) is
 * read as GMT, i.e. an hour later by the clock (as mktime does); one that
 * happens twice (01:00 to 01:59 on the October Sunday) is taken once, at
 * its first (BST) occurrence.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define SCHED_POLL_TIMES_MAX 8   /* poll times per worklist */
#define SCHED_UK_DAY_LEN 11      /* "YYYY-MM-DD" and NUL */
#define SCHED_BACKOFF_CAP 60.0   /* seconds: the longest wait between two tries of one e-RS call */
#define SCHED_BACKOFF_JITTER 0.25 /* a wait is its nominal 1, 2, 4 … s plus up to this fraction */

/* "HH:MM" (00:00 to 23:59, two digits each) into minutes after midnight.
 * 0 or -EINVAL. */
int sched_parse_hhmm(const char *s, int *ret_minutes);

/* Seconds UK civil time is ahead of UTC at instant t: 0 (GMT) or 3600 (BST). */
int sched_uk_offset(time_t t);

/* The UK calendar day of instant t, "YYYY-MM-DD" (the budget's day). */
void sched_uk_day(time_t t, char ret[SCHED_UK_DAY_LEN]);

/* The instant of UK wall-clock time `minutes` after midnight on the UK day
 * year-month-day (month 1..12), with the rules above for the clock changes. */
time_t sched_uk_instant(int year, int month, int day, int minutes);

/* The first poll instant strictly after `now`, for poll times `minutes`
 * (n ≥ 1, any order). */
time_t sched_next_poll(const int *minutes, size_t n, time_t now);

/* The last poll instant at or before `now`. */
time_t sched_prev_poll(const int *minutes, size_t n, time_t now);

/* How many poll instants are still to come after `now` on now's UK day. */
unsigned sched_polls_left_today(const int *minutes, size_t n, time_t now);

/*
 * The wait before try k+1 of an e-RS call after its k-th failure that came
 * without a usable Retry-After (k ≥ 1): 1, 2, 4 … s, capped at
 * SCHED_BACKOFF_CAP, plus a jitter of up to SCHED_BACKOFF_JITTER of it drawn
 * from *rng (a xorshift state, advanced; never 0), so that clients that
 * failed together do not come back together.
 */
double sched_backoff(unsigned k, uint64_t *rng);

/*
 * When a referral that failed `attempts` times (≥ 1) is tried again, in
 * seconds from now: `first` doubled with each failure up to 64 × `first`;
 * from `park_after` failures on (parked), every `parked` seconds.
 */
long sched_retry_delay(unsigned attempts, long first, unsigned park_after, long parked);

/*
 * The request-rate limiter: requests are spaced at least 1.05/rate seconds
 * apart (no bursts, and 5% to spare), so no window of one second ever holds
 * more than `rate` of them, even when the network delays one request a few
 * milliseconds more than the next.
 */
struct rate_limit {
        double interval; /* seconds between two requests: 1.05 / rate */
        double next;     /* monotonic instant the next request may go; 0 at first */
};

void rate_limit_init(struct rate_limit *rl, long per_second);

/* Books the next slot for a request wanted at `now` (monotonic seconds) and
 * returns how long to wait for it (0 when it may go at once). */
double rate_limit_take(struct rate_limit *rl, double now);
