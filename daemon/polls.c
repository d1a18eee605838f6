/* SPDX-License-Identifier: MIT */
#include "polls.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "../adapters/pas_schedule.h"
#include "log.h"
#include "schedule.h"
#include "util.h"

void poll_schedule_free(struct poll_schedule *ps) {
        free(ps->next);
        free(ps->due);
        *ps = (struct poll_schedule){ 0 };
}

/* The polls still to come today for the worklists of `service`. */
static unsigned service_polls_left(const struct config *cfg, const char *service, time_t now) {
        unsigned left = 0;

        for (size_t i = 0; i < cfg->n_worklists; i++)
                if (strcmp(cfg->worklists[i].service_id, service) == 0)
                        left += sched_polls_left_today(cfg->worklists[i].poll_at, cfg->worklists[i].n_poll_at, now);
        return left;
}

/* Whether worklist i missed a poll time while ersd was down and may catch it up now. */
static int missed(const struct config *cfg, struct pas *pas, size_t i, time_t now, bool *ret, struct errbuf *e) {
        const struct worklist_conf *wl = &cfg->worklists[i];
        char last[32], day[SCHED_UK_DAY_LEN], prev_at[32];
        time_t prev = sched_prev_poll(wl->poll_at, wl->n_poll_at, now), last_t = 0;
        long calls = 0;
        int r;

        *ret = false;
        r = pas_poll_last(pas, wl->name, last, e);
        if (r < 0)
                return r;
        if (last[0] && utc_iso_parse(last, &last_t) == 0 && last_t >= prev)
                return 0; /* read since its last poll time */
        sched_uk_day(now, day);
        r = pas_budget_calls(pas, wl->service_id, day, &calls, e);
        if (r < 0)
                return r;
        utc_iso(prev, prev_at);
        unsigned later = service_polls_left(cfg, wl->service_id, now);
        if (cfg->worklist_calls_per_day - calls > (long) later) {
                log_ctx_notice(&(struct log_ctx){ .worklist = wl->name, .stage = "worklist" },
                               "worklist %s: %s; read now to catch up", wl->name,
                               last[0] ? "a poll time passed while ersd was not running" : "never read before");
                *ret = true;
        } else {
                log_ctx_notice(&(struct log_ctx){ .worklist = wl->name, .stage = "worklist" },
                               "worklist %s: the poll time %s (UTC) passed while ersd was not running; not caught up: "
                               "service %s has %ld worklist call(s) left today for its %u later poll time(s)",
                               wl->name, prev_at, wl->service_id, cfg->worklist_calls_per_day - calls, later);
        }
        return 0;
}

int poll_schedule_init(struct poll_schedule *ps, const struct config *cfg, struct pas *pas, time_t now,
                       bool catch_up, struct errbuf *e) {
        int r = 0;

        *ps = (struct poll_schedule){ .n = cfg->n_worklists };
        ps->next = calloc(ps->n ? ps->n : 1, sizeof *ps->next);
        ps->due = calloc(ps->n ? ps->n : 1, sizeof *ps->due);
        if (!ps->next || !ps->due) {
                poll_schedule_free(ps);
                return err_set(e, -ENOMEM, "out of memory");
        }
        for (size_t i = 0; i < ps->n; i++) {
                const struct worklist_conf *wl = &cfg->worklists[i];
                bool now_too = false;

                ps->next[i] = sched_next_poll(wl->poll_at, wl->n_poll_at, now);
                if (catch_up && r == 0)
                        r = missed(cfg, pas, i, now, &now_too, e);
                if (now_too)
                        ps->next[i] = now;
        }
        return r;
}

size_t poll_schedule_take(struct poll_schedule *ps, const struct config *cfg, time_t now) {
        size_t n = 0;

        for (size_t i = 0; i < ps->n; i++) {
                const struct worklist_conf *wl = &cfg->worklists[i];

                ps->due[i] = ps->next[i] <= now;
                if (ps->due[i]) {
                        ps->next[i] = sched_next_poll(wl->poll_at, wl->n_poll_at, now);
                        n++;
                }
        }
        return n;
}

time_t poll_schedule_next(const struct poll_schedule *ps) {
        time_t t = 0;

        for (size_t i = 0; i < ps->n; i++)
                if (t == 0 || ps->next[i] < t)
                        t = ps->next[i];
        return t;
}
