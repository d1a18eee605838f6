/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Logging for the daemon (never called from library modules: they fill an
 * errbuf and the daemon logs once).  Lines go to stderr; when stderr is the
 * journal (JOURNAL_STREAM matches it) each line carries the "<N>" priority
 * prefix systemd understands.  Control characters in a line are escaped so
 * no input can forge a log line.
 *
 * NEVER pass a patient identifier (NHS number, name, date of birth), a token
 * or a connection string to these functions.  UBRN and correlation id only.
 */

#include <syslog.h>

void log_set_level(int priority);     /* LOG_ERR … LOG_DEBUG; messages above it are dropped */
int log_get_level(void);
void log_msg(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define log_error(...)   log_msg(LOG_ERR, __VA_ARGS__)
#define log_warning(...) log_msg(LOG_WARNING, __VA_ARGS__)
#define log_notice(...)  log_msg(LOG_NOTICE, __VA_ARGS__)
#define log_info(...)    log_msg(LOG_INFO, __VA_ARGS__)
#define log_debug(...)   log_msg(LOG_DEBUG, __VA_ARGS__)
