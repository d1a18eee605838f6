/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One ersd per state directory.  The daemon and `--once` download into
 * STATE_DIR/spool; two of them on one state_dir removed each other's
 * downloads in progress (each spool_open() removes every ".part") and both
 * wrote every referral.  The first takes an exclusive lock on
 * STATE_DIR/ersd.lock (flock: released by the kernel when the process ends,
 * however it ends) and writes its pid there; any other is refused at start.
 * One-off runs (`--dry-run`, `ersd sync UBRN`) have a spool of their own
 * and take no lock.
 */

#include "err.h"

/* Creates state_dir (0700) if absent, then takes the lock.  0 and the lock's
 * descriptor in *ret_fd (held until the process ends; the caller may close it
 * to let go); -EBUSY when another process holds it, with one line naming the
 * directory and that process's pid; another negative errno when the lock
 * file cannot be made. */
int state_lock_take(const char *state_dir, int *ret_fd, struct errbuf *e);
