/* SPDX-License-Identifier: MIT */
#pragma once

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define UUID_STR_LEN 37 /* 36 characters and NUL */

/* A random (version 4) UUID in lower-case hex, from getrandom(). 0 or -errno. */
int uuid_v4(char ret[UUID_STR_LEN]);

/* Current UTC time as "YYYY-MM-DDTHH:MM:SSZ", from the wall clock below. */
void now_utc_iso(char ret[32]);

/* The wall clock now_utc_iso() reads: time() itself, unless a test sets
 * another (one that moves a second per call, say) to prove that what must be
 * one time is read once.  NULL goes back to time().  Not thread-safe: set it
 * before anything runs. */
void wall_clock_set(time_t (*clock)(void));

/* Instant t as "YYYY-MM-DDTHH:MM:SSZ" (UTC), the form every time ersd stores has. */
void utc_iso(time_t t, char ret[32]);

/* Reads that form back.  0, or -EINVAL for anything else. */
int utc_iso_parse(const char *s, time_t *ret);

/* Lower-case hex of `n` bytes into `ret` (2n+1 bytes). */
void hex_encode(const unsigned char *in, size_t n, char *ret);

/* The lower-case hex SHA-256 of `n` bytes into `ret` (65 bytes).  0 or -EIO. */
int sha256_hex_of(const void *bytes, size_t n, char ret[65]);

/* Monotonic clock in seconds. */
double now_monotonic(void);

/*
 * Room for at least `need` elements of `size` bytes in `array` (malloc'd or
 * NULL), whose capacity *cap is doubled from `first`:
 *
 *     struct part *p = array_grow(t->parts, &t->cap_parts, t->n_parts + 1, sizeof *p, 8);
 *     if (!p)
 *             return -ENOMEM;
 *     t->parts = p;
 *
 * Returns the array (moved, perhaps), or NULL when memory ran out or the size
 * would overflow: then the array and *cap are as they were.
 */
void *array_grow(void *array, size_t *cap, size_t need, size_t size, size_t first);

/* The length of the UTF-8 character a byte starts: 2 to 4 for a lead byte, 1
 * for ASCII and for a byte that cannot start one. */
size_t utf8_char_length(unsigned char lead);

/* How many bytes at the end of s[0..n) start a UTF-8 character whose other
 * bytes are not there (0 to 3).  json-c 0.16 checks UTF-8 afresh on every
 * json_tokener_parse_ex() call and refuses a character cut between two as
 * invalid: a caller feeding it what the network delivers holds those back. */
size_t utf8_cut(const char *s, size_t n);

/* At most `max` bytes of s for a message (an e-RS id of any length), cut on
 * a character and followed by "…" when cut: s itself when it is no longer,
 * else a copy in ret (max + 4 bytes).  Printing it still needs escaping. */
const char *utf8_prefix(const char *s, size_t max, char *ret);

/*
 * Text fed on in the pieces the network delivers, never a UTF-8 character
 * cut in two:
 *
 *     size_t n = utf8_hold_complete(&h, &data, &len);  // the held character, once whole
 *     if (n > 0) feed(h.bytes, n);
 *     utf8_hold_tail(&h, data, &len);                   // holds what this piece cut
 *     feed(data, len);
 */
struct utf8_hold {
        char bytes[4]; /* the start of a character the last piece cut */
        size_t len;    /* 0: nothing held */
};
/* Completes the held character from the continuation bytes at the start of
 * *data (advanced, *len shortened): its length in h->bytes once whole, or
 * once a byte that cannot continue it shows it never will be (h is then empty
 * again); 0 while nothing is held or the rest has not come yet. */
size_t utf8_hold_complete(struct utf8_hold *h, const char **data, size_t *len);
/* Holds the character cut by the end of data[0..*len) and shortens *len. */
void utf8_hold_tail(struct utf8_hold *h, const char *data, size_t *len);

/* True for "localhost", an IPv4 literal in 127.0.0.0/8 or "[::1]" (a URL's host part);
 * "127.0.0.1.example" is not. */
bool host_is_loopback(const char *host);

/* True when `url` parses (libcurl's URL parser) and its host is loopback
 * (host_is_loopback()): the test suite's mock e-RS or object store. */
bool url_is_loopback(const char *url);
