/* SPDX-License-Identifier: MIT */
/*
 * The e-RS client's pacing shared across threads (pacing.h): the rate slot,
 * the 429 hold, the per-endpoint breaker, the chosen waits and the progress
 * count.
 *
 * Not here: the transfer and its tries (http.c), what each e-RS call sends
 * (ers.c), the limiter's and backoff's arithmetic (schedule.c).
 */
#include "pacing.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <sys/random.h>
#include <time.h>

#include "schedule.h"
#include "util.h"

static const char *const endpoint_names[EP_COUNT_] = { "token endpoint", "A008", "A005", "A042", "A007",
                                                       "object store", "A033", "A035", "A029", "A028", "A013" };

#define ENDPOINT_FAILING 3 /* calls in a row that failed for good: the endpoint is taken to be down */

/* One endpoint's run of calls that failed for good (every try 5xx, 429 or no connection). */
struct endpoint_state {
        unsigned failed_calls; /* in a row; from ENDPOINT_FAILING on, calls fail at once until not_before */
        double not_before;     /* monotonic: while failing, the next call goes no sooner (1, 2, 4 … s, capped) */
};

/* What every lane of one client shares: the application's limits. */
struct pacing {
        pthread_mutex_t lock;                /* never held across a sleep or a transfer */
        struct rate_limit rate;              /* every request to the e-RS origin, token included */
        double throttled_until;              /* monotonic: after a 429 nothing goes to e-RS before this */
        struct endpoint_state ep[EP_COUNT_];
        uint64_t jitter;                     /* backoff jitter state (xorshift), seeded from getrandom */
        atomic_uint_least64_t progress;      /* steps of work done on every lane: see ers_client_progress() */
};

int pacing_new(long max_requests_per_second, struct pacing **ret) {
        struct pacing *p = calloc(1, sizeof *p);

        if (!p)
                return -ENOMEM;
        if (pthread_mutex_init(&p->lock, NULL) != 0) {
                free(p);
                return -ENOMEM;
        }
        rate_limit_init(&p->rate, max_requests_per_second);
        atomic_init(&p->progress, 0);
        if (getrandom(&p->jitter, sizeof p->jitter, 0) != (ssize_t) sizeof p->jitter || p->jitter == 0)
                p->jitter = (uint64_t) time(NULL) | 1;
        *ret = p;
        return 0;
}

void pacing_free(struct pacing *p) {
        if (!p)
                return;
        pthread_mutex_destroy(&p->lock);
        free(p);
}

void pacer_progressed(struct pacer *pc) {
        atomic_fetch_add_explicit(&pc->shared->progress, 1, memory_order_relaxed);
        if (pc->on_progress)
                pc->on_progress(pc->progress_userdata);
}

uint64_t pacing_progress(const struct pacing *p) {
        return atomic_load_explicit(&p->progress, memory_order_relaxed);
}

int pacer_wait(struct pacer *pc, double seconds) {
        double until = now_monotonic() + seconds;

        for (;;) {
                double left = until - now_monotonic();
                if (pc->stop && *pc->stop)
                        return -ECANCELED;
                if (left <= 0)
                        return 0;
                if (left > 1.0)
                        left = 1.0;
                struct timespec ts = { .tv_sec = (time_t) left, .tv_nsec = (long) ((left - (double) (time_t) left) * 1e9) };
                (void) nanosleep(&ts, NULL);
                pacer_progressed(pc); /* a wait chosen (and bounded) is not a hang */
        }
}

/*
 * An endpoint that is down (5xx or no connection on every try) is not tried
 * until its backoff runs out (-EAGAIN, so that a failing object store does
 * not hold up A005, and the referrals wait in ers_retry); then one call tries
 * it again.  A 429 holds every e-RS endpoint back until its wait is over (the
 * limit is the application's).  Then the rate limiter's slot (the e-RS
 * origin only: the object store is not the API).
 */
int pacer_gate(struct pacer *pc, enum ers_endpoint ep, const char *what, struct errbuf *e) {
        struct pacing *sh = pc->shared;
        struct endpoint_state *st = &sh->ep[ep];
        double now = now_monotonic(), wait = 0;
        int r;

        pthread_mutex_lock(&sh->lock);
        if (st->failed_calls >= ENDPOINT_FAILING && st->not_before > now) {
                unsigned failed = st->failed_calls;
                double next = st->not_before - now;
                pthread_mutex_unlock(&sh->lock);
                return err_set(e, -EAGAIN, "%s: not tried: the last %u %s calls failed, next try in %.0f s", what,
                               failed, endpoint_names[ep], next);
        }
        if (ep != EP_STORE && sh->throttled_until > now)
                wait = sh->throttled_until - now;
        pthread_mutex_unlock(&sh->lock);
        if (wait > 0) {
                r = pacer_wait(pc, wait);
                if (r < 0)
                        return err_set(e, r, "%s: stopped while e-RS asked us to slow down", what);
        }
        if (ep != EP_STORE) {
                pthread_mutex_lock(&sh->lock);
                wait = rate_limit_take(&sh->rate, now_monotonic()); /* a slot booked for this lane */
                pthread_mutex_unlock(&sh->lock);
                r = wait > 0 ? pacer_wait(pc, wait) : 0;
                if (r < 0)
                        return err_set(e, r, "%s: stopped", what);
        }
        return 0;
}

double pacing_retry_wait(struct pacing *sh, enum ers_endpoint ep, long status, long retry_after, unsigned *steps) {
        long ra = status == 429 || status == 503 ? retry_after : -1;
        double wait;

        pthread_mutex_lock(&sh->lock);
        wait = ra >= 0 ? ((double) ra < SCHED_BACKOFF_CAP ? (double) ra : SCHED_BACKOFF_CAP)
                       : sched_backoff(++*steps, &sh->jitter);
        if (status == 429 && ep != EP_STORE && now_monotonic() + wait > sh->throttled_until)
                sh->throttled_until = now_monotonic() + wait;
        pthread_mutex_unlock(&sh->lock);
        return wait;
}

void pacing_note_call(struct pacing *sh, enum ers_endpoint ep, bool failed) {
        struct endpoint_state *st = &sh->ep[ep];

        pthread_mutex_lock(&sh->lock);
        if (!failed) {
                st->failed_calls = 0;
                st->not_before = 0;
        } else {
                st->failed_calls++;
                if (st->failed_calls >= ENDPOINT_FAILING)
                        st->not_before = now_monotonic() +
                                         sched_backoff(st->failed_calls - ENDPOINT_FAILING + 1, &sh->jitter);
        }
        pthread_mutex_unlock(&sh->lock);
}
