/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * ersd's sync runs (service.c): the daemon's loop, `--once` (with
 * `--dry-run`) and `ersd sync UBRN`, from the start-up checks to the exit
 * status.
 */

#include <stdbool.h>

#include "config.h"

/* How service_run() runs: the loop, --once, --once --dry-run, or `sync UBRN`. */
struct run_mode {
        bool once;
        bool dry_run;
        const char *sync_ubrn; /* `ersd sync UBRN`, else NULL */
};

/* SIGTERM and SIGINT (stop: end transfers, finish a write in hand, exit) and
 * SIGHUP (reload between rounds) caught for service_run(); SIGPIPE ignored.
 * Before any command that may be stopped. */
void service_catch_signals(void);

/*
 * Runs `mode` with `cfg` (owned by the caller; a reload replaces its
 * contents).  `log_override` >= 0 is the log level -v asked for, kept across
 * reloads.  Returns the exit status (commands.h): EXIT_SUCCESS (stopped by a
 * signal included), EXIT_SYNC_FAILED when something was not synced.
 */
int service_run(struct config *cfg, const struct run_mode *mode, int log_override);
