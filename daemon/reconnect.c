/* SPDX-License-Identifier: MIT */
#include "reconnect.h"

#include <errno.h>
#include <time.h>

#include "../adapters/pas.h"
#include "complain.h"
#include "log.h"
#include "util.h"

static const struct log_ctx pas_stage = { .stage = "pas" };

/* Sleeps `seconds` in steps of at most 1 s, ticking; false when stopped. */
static bool pause_for(double seconds, volatile sig_atomic_t *stop, void (*tick)(void *), void *userdata) {
        double end = now_monotonic() + seconds;

        for (;;) {
                double left = end - now_monotonic();

                if (stop && *stop)
                        return false;
                if (left <= 0)
                        return true;
                if (left > 1)
                        left = 1;
                struct timespec ts = { .tv_sec = (time_t) left,
                                       .tv_nsec = (long) ((left - (double) (time_t) left) * 1e9) };
                (void) nanosleep(&ts, NULL); /* a signal cuts it short: *stop is looked at again */
                if (tick)
                        tick(userdata);
        }
}

int reconnect_pas_once(struct reconnect *rc, struct pas *pas) {
        struct errbuf e = { { 0 } };
        double now = now_monotonic();

        if (!pas_connection_lost(pas))
                return 0;
        if (rc->lost_at == 0)
                *rc = (struct reconnect){ .lost_at = now, .delay = 1 };
        rc->attempts++;
        if (pas_reconnect(pas, &e) == 0) {
                if (!complain_release(&rc->unreachable, LOG_NOTICE, &pas_stage,
                                      "PAS database: connection back after %.1f s (%u attempt%s)",
                                      now_monotonic() - rc->lost_at, rc->attempts, rc->attempts == 1 ? "" : "s"))
                        /* back at once: the failure that lost it was logged with its referral */
                        log_ctx_debug(&pas_stage, "PAS database: connected again");
                *rc = (struct reconnect){ 0 };
                return 0;
        }
        now = now_monotonic();
        if (!complaining(&rc->unreachable))
                complain(&rc->unreachable, RECONNECT_LOG_EVERY_S, LOG_ERR, &pas_stage,
                         "PAS database: unreachable: %s; connecting again 1 s, 2 s, 4 s … apart, at most %d s", e.msg,
                         RECONNECT_DELAY_MAX_S);
        else
                complain(&rc->unreachable, RECONNECT_LOG_EVERY_S, LOG_ERR, &pas_stage,
                         "PAS database: still unreachable after %.0f s (%u attempts): %s", now - rc->lost_at,
                         rc->attempts, e.msg);
        return -ENOTCONN;
}

int reconnect_pas(struct reconnect *rc, struct pas *pas, volatile sig_atomic_t *stop, void (*tick)(void *),
                  void *userdata) {
        double start = now_monotonic();

        while (reconnect_pas_once(rc, pas) < 0) {
                if (now_monotonic() - start + rc->delay > RECONNECT_WINDOW_S)
                        return -ENOTCONN;
                if (!pause_for(rc->delay, stop, tick, userdata))
                        return -ECANCELED;
                rc->delay = rc->delay * 2 > RECONNECT_DELAY_MAX_S ? RECONNECT_DELAY_MAX_S : rc->delay * 2;
        }
        return 0;
}
