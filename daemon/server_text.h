/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What a server said, made fit to quote in one log line.  Every text ersd
 * quotes from an answer goes through server_text(): an error page's first
 * words (a TLS front end's "400 No required SSL certificate was sent", an
 * object store's "AccessDenied: Request has expired"), an OAuth error and its
 * description, an e-RS error code, a Content-Type.  A server may quote back
 * what we sent it (the token endpoint an assertion's `iss`, which is the API
 * key): our own secrets never come out.  Nothing here logs.
 */

#include <stddef.h>

#define SERVER_TEXT_MAX 160 /* bytes of a server's words one line quotes, escapes included */
#define SERVER_TEXT_SECRETS 4 /* secrets one text is scrubbed of */
#define SERVER_TEXT_SECRET "[secret]"  /* what stands where one of them was */
#define SERVER_TEXT_JWT "[JWT]"        /* … and where a JWT was */

/* Our own secrets (the API key, the access token a request sent, the
 * assertion a token request sent): borrowed, NULL or "" entries skipped. */
struct secrets {
        const char *s[SERVER_TEXT_SECRETS];
};

/*
 * The first words of p[0..n) (not NUL-terminated; may hold NULs) into buf
 * (size > 0, always NUL-terminated):
 *  - every occurrence of a secret of `secrets` (may be NULL), and any start
 *    of one 12 bytes long or more, becomes SERVER_TEXT_SECRET; every JWT
 *    (a run of base64url and dots starting "eyJ", 20 bytes or more: an
 *    assertion, ours or not) SERVER_TEXT_JWT; this before anything is cut;
 *  - an HTML page (its first non-blank byte '<') loses its tags;
 *  - C0 control characters (NUL, CR, LF, ESC …), DEL and blanks become one
 *    space; leading and trailing ones go;
 *  - the rest is shown by the one rule for text from outside (escape.h,
 *    escape_char()): valid UTF-8 as it is, C1 and bidirectional controls and
 *    bytes that are not UTF-8 escaped, so nothing in the words acts on a
 *    terminal or splits a line;
 *  - cut after SERVER_TEXT_MAX bytes (or size - 4), never inside an escape
 *    or a character,
 *    with "..." to say so.
 * Returns the length written.
 */
size_t server_text(const char *p, size_t n, const struct secrets *secrets, char *buf, size_t size);
