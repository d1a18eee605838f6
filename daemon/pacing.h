/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The e-RS client's pacing, shared by a client and all its lanes (threads):
 * one rate limiter for every request to the e-RS origin (the token endpoint
 * included), the hold every e-RS endpoint keeps after a 429, and each
 * endpoint's breaker (once 3 calls in a row to an endpoint failed on every
 * try, calls to it fail at once until a backoff runs out, then one tries).  Also the
 * waits the client chooses, fed to the progress callback once a second and
 * cut short by the stop flag, and the count of steps of work done.
 *
 * Not here: the transfer that asks the gate before each send (http.c), the
 * e-RS calls and what they send (ers.c).  The behaviour is ers.h's
 * "Limits" paragraph.
 *
 * Thread safety: a struct pacing is shared; each thread has its own struct
 * pacer (its stop flag and progress callback).  The pacing's lock is never
 * held across a sleep or a transfer.
 */

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "err.h"

/* What the client paces and backs off separately: each e-RS endpoint, the
 * token endpoint, and the object store A042 redirects to (not the API: no
 * rate slot, no 429 hold).  A033 and A035 are the services' (R4
 * HealthcareService read and search: `ersd services`, `--check-config
 * --network`).  A029, A028 and A013 are the write-back calls
 * (ers_writeback.c): the same rate slot and 429 hold as the reads, their own
 * breakers, and never a worklist call. */
enum ers_endpoint {
        EP_TOKEN, EP_A008, EP_A005, EP_A042, EP_A007, EP_STORE, EP_A033, EP_A035,
        EP_A029, EP_A028, EP_A013,
        EP_COUNT_
};

struct pacing; /* the shared state: limiter, 429 hold, breakers, progress count */

/* One thread's view of a pacing: its own stop flag and progress callback. */
struct pacer {
        struct pacing *shared;               /* borrowed: the client's */
        const volatile sig_atomic_t *stop;   /* borrowed, may be NULL: see ers_client_on_stop() */
        void (*on_progress)(void *userdata); /* borrowed, may be NULL: see ers_client_on_progress() */
        void *progress_userdata;
};

/* A pacing of max_requests_per_second (config: ers.max_requests_per_second),
 * with its jitter seeded from getrandom.  Caller owns *ret (pacing_free()).
 * 0 or -ENOMEM. */
int pacing_new(long max_requests_per_second, struct pacing **ret);
void pacing_free(struct pacing *p); /* accepts NULL */

/* A step of work done (bytes moved, a second of a chosen wait): the shared
 * count goes up and the pacer's progress callback, if any, is called. */
void pacer_progressed(struct pacer *pc);

/* The shared count of steps (ers_client_progress()).  Any thread. */
uint64_t pacing_progress(const struct pacing *p);

/* Waits `seconds` (monotonic), feeding the progress callback every second;
 * 0, or -ECANCELED as soon as a stop is asked for. */
int pacer_wait(struct pacer *pc, double seconds);

/*
 * Before each send of a call to `ep` (`what` names the call for the error
 * line): an endpoint whose last 3 calls all failed is not
 * tried until its backoff runs out (-EAGAIN, "<what>: not tried: …"); then
 * the 429 hold and the rate limiter's slot (both for the e-RS origin only,
 * never EP_STORE) are waited for.  0, -EAGAIN, or -ECANCELED when stopped
 * while waiting; the line in e.
 */
int pacer_gate(struct pacer *pc, enum ers_endpoint ep, const char *what, struct errbuf *e);

/* The wait before another try after a transient answer with `status`:
 * Retry-After (`retry_after` seconds, -1 when none) on a 429 or 503 when it
 * gave one (capped at SCHED_BACKOFF_CAP), else 1, 2, 4 … s with jitter by the
 * tries without one (*steps, counted up).  A 429 holds every e-RS endpoint
 * (not EP_STORE) back for as long, on every lane. */
double pacing_retry_wait(struct pacing *p, enum ers_endpoint ep, long status, long retry_after, unsigned *steps);

/* After a call's last try: a call that failed for good (5xx, 429 or no
 * connection to the end) adds to its endpoint's run, anything else ends it. */
void pacing_note_call(struct pacing *p, enum ers_endpoint ep, bool failed);
