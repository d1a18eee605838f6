/* SPDX-License-Identifier: MIT */
#pragma once

#include <stddef.h>
#include <stdint.h>

#define UUID_STR_LEN 37 /* 36 characters and NUL */

/* A random (version 4) UUID in lower-case hex, from getrandom(). 0 or -errno. */
int uuid_v4(char ret[UUID_STR_LEN]);

/* Current UTC time as "YYYY-MM-DDTHH:MM:SSZ". */
void now_utc_iso(char ret[32]);

/* Lower-case hex of `n` bytes into `ret` (2n+1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *ret);

/* Monotonic clock in seconds. */
double now_monotonic(void);
