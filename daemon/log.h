/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Logging for the daemon (never called from library modules: they fill an
 * errbuf and the daemon logs once).  Lines go to stderr; when stderr is the
 * journal (JOURNAL_STREAM matches it) they go to the journal natively, with
 * structured fields (struct log_ctx), or, built without libsystemd, with the
 * "<N>" priority prefix systemd understands.  Each line and each field is
 * escaped by the one rule of escape.h (control and bidirectional characters,
 * invalid UTF-8), so no input can forge a log line or act on a terminal.
 *
 * NEVER pass a patient identifier (NHS number, name, date of birth), a token
 * or a connection string to these functions.  UBRN and correlation id only.
 */

#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/uio.h>
#include <syslog.h>

void log_set_level(int priority);     /* LOG_ERR … LOG_DEBUG; messages above it are dropped */
int log_get_level(void);
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/*
 * What a line is about.  Under the journal each non-NULL member becomes a
 * field of the entry (journalctl -o verbose, or `journalctl ERS_UBRN=…`);
 * on plain stderr only the message is printed, so put the UBRN and
 * correlation id in the message too.  Every member may be NULL.
 */
struct log_ctx {
        const char *ubrn;           /* ERS_UBRN: the 12-digit referral number */
        const char *correlation_id; /* ERS_CORRELATION_ID: X-Correlation-ID of the e-RS call */
        const char *worklist;       /* ERS_WORKLIST: the configured worklist name */
        const char *stage;          /* ERS_STAGE: start, worklist (A008), referral (A005), documents, pas,
                                     * patient, priority (an overdue urgent referral) */
        const char *sqlstate;       /* SQLSTATE; when NULL, taken from "SQLSTATE xxxxx" in the message */
};

void log_ctx_msg(int priority, const struct log_ctx *ctx, const char *fmt, ...)
        __attribute__((format(printf, 3, 4)));

/* log_ctx_msg() with a va_list, for a helper that logs on its caller's behalf
 * (complain.h).  The format attribute lets clang (-Wformat-nonliteral, from
 * -Wformat=2) accept the vsnprintf inside. */
void log_ctx_vmsg(int priority, const struct log_ctx *ctx, const char *fmt, va_list ap)
        __attribute__((format(printf, 3, 0)));

#define log_ctx_error(ctx, ...)   log_ctx_msg(LOG_ERR, ctx, __VA_ARGS__)
#define log_ctx_warning(ctx, ...) log_ctx_msg(LOG_WARNING, ctx, __VA_ARGS__)
#define log_ctx_notice(ctx, ...)  log_ctx_msg(LOG_NOTICE, ctx, __VA_ARGS__)
#define log_ctx_info(ctx, ...)    log_ctx_msg(LOG_INFO, ctx, __VA_ARGS__)
#define log_ctx_debug(ctx, ...)   log_ctx_msg(LOG_DEBUG, ctx, __VA_ARGS__)

#define LOG_JOURNAL_FIELDS_MAX 8

/*
 * The journal entry for one line (what log_ctx_msg hands to sd_journal_sendv),
 * for the tests: each field "NAME=value" is written into buf and pointed to by
 * ret_iov (at most LOG_JOURNAL_FIELDS_MAX).  MESSAGE is the escaped message,
 * PRIORITY the syslog priority, SYSLOG_IDENTIFIER "ersd", then the context's
 * fields that are set, escaped as the message is.  Returns
 * the number of fields; a field that does not fit in buf is left out.
 */
size_t log_journal_fields(int priority, const struct log_ctx *ctx, const char *message, char *buf,
                          size_t size, struct iovec ret_iov[LOG_JOURNAL_FIELDS_MAX]);

/* True when lines go to the journal (stderr is the journal's stream). */
bool log_to_journal(void);

/*
 * A function called before each line is written to stderr when stderr is not
 * the journal (NULL: none).  `ersd --once` on a terminal erases its progress
 * line there, so that a log line never lands in the middle of it.
 */
void log_set_stderr_hook(void (*before_line)(void));

/* Held while a log line (and the hook before it) is written: whoever else
 * writes to stderr (the progress line) takes it too.  Not recursive: never
 * log while holding it. */
void log_stderr_lock(void);
void log_stderr_unlock(void);

#define log_error(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   log_msg(LOG_DEBUG, __VA_ARGS__)
