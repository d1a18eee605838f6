/* SPDX-License-Identifier: MIT */
/*
 * The wrapped clocks of fake_clock.h: a wall clock the test sets, a
 * monotonic clock that runs on with the real one, and sleeps that only
 * move them.
 */
#include "fake_clock.h"

#include <pthread.h>
#include <stdbool.h>

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static bool wall_set; /* time() answers `wall` (else the real clock) */
static double wall;   /* seconds, fractions kept from the sleeps */
static double slept;  /* seconds asked of nanosleep() since the last set */
static double ahead;  /* seconds the monotonic clock is ahead of the real one */

void fake_clock_set(time_t t) {
        pthread_mutex_lock(&lock);
        wall_set = true;
        wall = (double) t;
        slept = 0;
        pthread_mutex_unlock(&lock);
}

static void move_on(double seconds) {
        pthread_mutex_lock(&lock);
        wall += seconds;
        ahead += seconds;
        pthread_mutex_unlock(&lock);
}

void fake_clock_advance(long seconds) {
        move_on((double) seconds);
}

double fake_clock_slept(void) {
        double s;

        pthread_mutex_lock(&lock);
        s = slept;
        pthread_mutex_unlock(&lock);
        return s;
}

time_t __wrap_time(time_t *t) {
        time_t now;

        pthread_mutex_lock(&lock);
        now = wall_set ? (time_t) wall : __real_time(NULL);
        pthread_mutex_unlock(&lock);
        if (t)
                *t = now;
        return now;
}

double __wrap_now_monotonic(void) {
        double a;

        pthread_mutex_lock(&lock);
        a = ahead;
        pthread_mutex_unlock(&lock);
        return __real_now_monotonic() + a;
}

int __wrap_nanosleep(const struct timespec *req, struct timespec *rem) {
        double seconds = (double) req->tv_sec + (double) req->tv_nsec / 1e9;

        move_on(seconds);
        pthread_mutex_lock(&lock);
        slept += seconds;
        pthread_mutex_unlock(&lock);
        if (rem)
                *rem = (struct timespec){ 0 };
        return 0;
}
