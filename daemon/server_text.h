/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What a server said, made fit to quote in one log line.  Every text ersd
 * quotes from an answer goes through server_text(): an error page's first
 * words (a TLS front end's "400 No required SSL certificate was sent", an
 * object store's "AccessDenied: Request has expired"), an OAuth error and its
 * description, an e-RS error code, a Content-Type.  Nothing here logs.
 */

#include <stddef.h>

#define SERVER_TEXT_MAX 160 /* bytes of a server's words one line quotes, escapes included */

/*
 * The first words of p[0..n) (not NUL-terminated; may hold NULs) into buf
 * (size > 0, always NUL-terminated):
 *  - an HTML page (its first non-blank byte '<') loses its tags;
 *  - control characters (NUL, CR, LF, ESC …) and blanks become one space;
 *    leading and trailing ones go;
 *  - a byte outside printable ASCII, a backslash and a double quote are
 *    written \xNN, so the words can be quoted and nothing in them acts on a
 *    terminal or splits a line;
 *  - cut after SERVER_TEXT_MAX bytes (or size - 4), never inside an escape,
 *    with "..." to say so.
 * Returns the length written.
 */
size_t server_text(const char *p, size_t n, char *buf, size_t size);
