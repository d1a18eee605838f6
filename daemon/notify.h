/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The service manager's notification protocol (sd_notify): what ersd tells
 * systemd about its lifecycle.  With libsystemd (HAVE_LIBSYSTEMD) the messages
 * go to $NOTIFY_SOCKET; without it, or when ersd is not started by systemd,
 * every function here does nothing.  Nothing here logs or fails: a manager
 * that does not listen must never stop a sync.
 *
 *   READY=1               configuration, database and e-RS checked; also after a reload
 *   RELOADING=1           a SIGHUP reload begins (with MONOTONIC_USEC=, as systemd ≥ 253 wants)
 *   STOPPING=1            SIGTERM/SIGINT seen: transfers end, a write in hand is finished, then exit
 *   STATUS=…              one line: the phase, or the last round's result and the next round time
 *   WATCHDOG=1            from the main loop, between referrals and while transfers move bytes (never
 *                         while they are stuck), when WatchdogSec= is set
 */

#include <stdbool.h>
#include <stdint.h>

/* The watchdog interval systemd asked for (WATCHDOG_USEC, for this pid), in
 * microseconds; 0 when there is none. */
uint64_t notify_watchdog_usec(void);

void notify_ready(void);
void notify_reloading(void);
void notify_stopping(void); /* sent once, however often called */
void notify_watchdog(void);
/* WATCHDOG=1 unless one was sent within a quarter of the interval: cheap to
 * call between referrals. */
void notify_watchdog_maybe(void);
void notify_status(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
