/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Getting the PAS connection back: the one place that decides when ersd
 * reconnects to a database that went away (server restarted, network cut,
 * a commit whose outcome is unknown).  The PAS target (adapters/pas.h) only
 * says that its connection is lost and knows how to connect again.
 *
 * Attempts come 1 s, 2 s, 4 s … apart, at most RECONNECT_DELAY_MAX_S, for at
 * most RECONNECT_WINDOW_S per call; the next call (the next referral, the next
 * round) goes on where the last one stopped.  A connection that comes back at
 * the first attempt costs no line (the failure that lost it was logged with
 * its referral).  Otherwise the log gets one line with the cause when the
 * database is found unreachable, then at most one every RECONNECT_LOG_EVERY_S
 * while it stays so, and one when it is back, with how long it was down:
 * never a line per attempt.
 */

#include <signal.h>

#include "../adapters/pas.h"
#include "complain.h"

#define RECONNECT_DELAY_MAX_S 30
#define RECONNECT_WINDOW_S 120
#define RECONNECT_LOG_EVERY_S 60

/* What the daemon remembers of an outage, across calls and rounds. */
struct reconnect {
        double lost_at;       /* monotonic time the loss was seen; 0 while connected */
        struct complaint unreachable; /* "unreachable", then at most once a minute, then "back" */
        double delay;         /* seconds to wait before the next attempt */
        unsigned attempts;    /* attempts since lost_at */
};

/*
 * When pas_connection_lost(pas): tries to connect again as above, sleeping
 * between attempts in steps of at most a second, calling `tick` (may be NULL;
 * feeds the watchdog) at each step and stopping early when *stop (may be NULL)
 * is set.  0 when connected (at once when it never was lost); -ENOTCONN when
 * the window ran out, the PAS still unreachable; -ECANCELED when stopped.
 */
int reconnect_pas(struct reconnect *rc, struct pas *pas, volatile sig_atomic_t *stop, void (*tick)(void *),
                  void *userdata);

/* One attempt, with the same log lines, without waiting: for a caller that
 * has its own pace (the standby's lease loop).  0 or -ENOTCONN. */
int reconnect_pas_once(struct reconnect *rc, struct pas *pas);
