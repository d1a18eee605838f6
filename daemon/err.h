/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Error reporting between modules.
 *
 * Convention (systemd style): functions return 0 on success or a negative
 * errno on failure.  A function that fails also writes ONE line saying why
 * into the caller's `struct errbuf` (when the caller passed one).  Library
 * modules (config, fhir, ers, spool, adapters) never log; the daemon logs
 * the line once, adding the context it knows (UBRN, correlation id, stage).
 *
 * The line must never contain a patient identifier (NHS number, name, date of
 * birth), a credential, or a token.  UBRN, correlation id, SQLSTATE, endpoint
 * id, HTTP status and file:line are fine.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>

#define ERRBUF_MAX 512

struct errbuf {
        char msg[ERRBUF_MAX]; /* NUL-terminated; empty when nothing was said */
};

/* Formats a message into `e` (if non-NULL) and returns `r`, so callers write
 * `return err_set(e, -EINVAL, "bad %s", what);`.  The formatted text is
 * escaped by the one rule of escape.h (control, bidirectional and invalid
 * UTF-8 as \xNN or \uNNNN), so that a hostile server can neither forge a log
 * line nor act on a terminal; cut to fit between whole characters. */
int err_set(struct errbuf *e, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* Prefixes `e->msg` with the formatted text followed by ": ", escaped the same
 * way; a message cut to fit ends in "...".  Returns `r`. */
int err_prefix(struct errbuf *e, int r, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

/* The SQLSTATE a message names ("SQLSTATE xxxxx", the form the PAS adapters
 * write) into ret; false when it names none. */
bool err_sqlstate(const char *message, char ret[6]);
