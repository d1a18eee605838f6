/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define UUID_STR_LEN 37 /* 36 characters and NUL */

/* A random (version 4) UUID in lower-case hex, from getrandom(). 0 or -errno. */
int uuid_v4(char ret[UUID_STR_LEN]);

/* Current UTC time as "YYYY-MM-DDTHH:MM:SSZ". */
void now_utc_iso(char ret[32]);

/* Instant t as "YYYY-MM-DDTHH:MM:SSZ" (UTC), the form every time ersd stores has. */
void utc_iso(time_t t, char ret[32]);

/* Reads that form back.  0, or -EINVAL for anything else. */
int utc_iso_parse(const char *s, time_t *ret);

/* Lower-case hex of `n` bytes into `ret` (2n+1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *ret);

/* Monotonic clock in seconds. */
double now_monotonic(void);

/* True for "localhost", an IPv4 literal in 127.0.0.0/8 or "[::1]" (a URL's host part);
 * "127.0.0.1.example" is not. */
bool host_is_loopback(const char *host);
