/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The fetch pool: fetch_referral() (fetch.h) on a number of threads, each
 * with a lane of the e-RS client (its own connections, the client's rate
 * limit), so downloads overlap each other and the PAS writes.  Jobs come back
 * in the order their fetches finish.  The thread that owns the pool submits,
 * waits and writes; nothing here touches the PAS.
 */

#include "err.h"
#include "fetch.h"

struct fetch_pool;

/*
 * A pool of `threads` fetchers, each with a lane of env->ers.  threads <= 1
 * makes none: fetch_pool_submit() then fetches in the caller's thread, with
 * env->ers itself.  *ret is the caller's (fetch_pool_free).
 */
int fetch_pool_new(const struct fetch_env *env, unsigned threads, struct fetch_pool **ret, struct errbuf *e);

/* Hands a job to the pool (owned by the caller still, untouched by it until
 * fetch_pool_wait returns it).  Never blocks on the network but when the pool
 * has no thread; the caller bounds how many are in flight. */
void fetch_pool_submit(struct fetch_pool *p, struct referral_job *j);

/* Jobs submitted and not yet returned by fetch_pool_wait(). */
unsigned fetch_pool_in_flight(const struct fetch_pool *p);

/* A fetched job (in the order fetches finish), waiting at most `timeout_s`
 * seconds for one: NULL when none finished in that time or none is in
 * flight. */
struct referral_job *fetch_pool_wait(struct fetch_pool *p, double timeout_s);

/* Stops the threads (after the jobs in hand) and frees the lanes.  Jobs
 * still in flight must have been waited for.  Accepts NULL. */
void fetch_pool_free(struct fetch_pool *p);
