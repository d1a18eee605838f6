/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * `ersd --once`'s progress line and --dry-run report (an observer of the
 * engine, sync.h), and the round's summary line.  One run per process: the
 * state is the module's own.  Lines go to stderr under the log's lock, so a
 * log line never lands in the middle of the progress line.
 */

#include <stdbool.h>
#include <stddef.h>

#include "sync.h"

/* The observer to hand the engine (sync_ctx.observer): counts each
 * worklist's referrals and each referral done, draws the line, and with a
 * dry run prints what would be written of each referral on stdout. */
extern const struct sync_observer progress_observer;

/* A run starts: with `once`, the progress line is drawn on stderr when it is
 * a terminal and not the journal; with `dry_run`, one line per referral. */
void progress_start(bool once, bool dry_run);

/* A round starts: the counts start again. */
void progress_round(void);

/* The progress line erased, if shown, before something else is printed. */
void progress_clear(void);

/* The run ends: the line erased, the log's hook removed.  Safe when
 * progress_start() was never called. */
void progress_stop(void);

/* "sync done: referrals …; 0.1 s": the round's one line, printed and sent as
 * STATUS=.  A dry run's says what would have been written. */
void format_summary(const struct sync_stats *s, bool dry_run, double seconds, char *buf, size_t size);

/* The summary line on stdout, "ersd: " first, flushed. */
void print_summary(const char *summary);
