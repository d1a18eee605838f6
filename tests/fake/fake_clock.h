/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The clocks of the sync engine's unit test (tests/unit/test_engine.c), so
 * that a round's times are the test's to choose and a wait costs nothing.
 * Linked into test_engine only, with -Wl,--wrap=time,--wrap=now_monotonic,
 * --wrap=nanosleep (Makefile): every call our objects make to time(),
 * now_monotonic() (daemon/util.h) and nanosleep() comes here.
 *
 *   - time() answers the wall clock set here (the real one until set): every
 *     time ersd stores (ledger, retry, audit, poll rows) is then known;
 *   - nanosleep() does not sleep: it moves both clocks on by what was asked,
 *     so the PAS reconnect's 1, 2, 4 … s waits over its two-minute window
 *     (daemon/reconnect.h) pass in microseconds, and in order;
 *   - now_monotonic() is the real monotonic clock plus everything "slept".
 *
 * Thread-safe.
 */

#include <time.h>

/* The wall clock reads `t` from now on (and moves only by fake_clock_advance()
 * and what nanosleep() is asked for). */
void fake_clock_set(time_t t);

/* Moves both clocks on by `seconds`. */
void fake_clock_advance(long seconds);

/* Seconds nanosleep() was asked for since the last fake_clock_set(). */
double fake_clock_slept(void);

/* The wraps (declared for -Wmissing-prototypes; called by the linker's redirection only). */
time_t __wrap_time(time_t *t);
double __wrap_now_monotonic(void);
int __wrap_nanosleep(const struct timespec *req, struct timespec *rem);
time_t __real_time(time_t *t);
double __real_now_monotonic(void);
