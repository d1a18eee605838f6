/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * SIGHUP's reload: the configuration file read again and checked in full,
 * and what the running daemon builds from it (its e-RS client, its poll
 * schedule) built anew, all before anything running is let go, so that the
 * three are replaced together or not at all.  Not here: when a reload is
 * applied (between rounds), the log level -v asked for, and the round's
 * context that points at the three (service.c).
 */

#include <signal.h>

#include "config.h"
#include "ers.h"
#include "polls.h"

/*
 * Reads cfg->path again.  When it loads, has no problem, changes no key that
 * needs a restart, and its e-RS client and its poll schedule (planned from
 * the poll times at `now`, nothing caught up: polls.h) can be built: the
 * three replace *cfg, *ers and *polls (the old ones freed), the new client is
 * given `on_progress` (may be NULL) and `stop`, the log level is the new
 * file's, and one line says so.  Otherwise nothing running changes and one
 * line says why.  0 when replaced; a negative errno when refused (-EINVAL:
 * the file; -ENOMEM and others: what was to be built from it).
 */
int reload_config(struct config *cfg, struct ers_client **ers, struct poll_schedule *polls, time_t now,
                  void (*on_progress)(void *userdata), const volatile sig_atomic_t *stop);
