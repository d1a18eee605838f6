/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A condition that lasts, said in the log without flooding it (collectd's
 * c_complain): said the first time, then at most once every `every_s`
 * seconds while it lasts (never again with 0, until it is over), and its end
 * said once, only if it was said at all.  Used for the PAS found unreachable
 * (reconnect.c), another ersd holding the lease (lease.c) and the lease's
 * table failing while on standby (service.c).  Conditions remembered by key
 * rather than by time live elsewhere: a (UBRN, version) said once (said.h),
 * a worklist's spent budget said once a UK day (worklist_sync.c), an overdue
 * referral warned once (status.c).
 *
 * A complaint is one thread's: no lock.  Zero-initialised, it has said
 * nothing.  Lines go through log_ctx_msg(), so they are the caller's text
 * exactly, with its context (may be NULL).
 */

#include <stdbool.h>

#include "log.h"

struct complaint {
        bool said;      /* said since the condition began (or since complaint_forget()) */
        double said_at; /* monotonic seconds: when it was last said */
};

/* Whether a complaint is due at monotonic time `now`: never said, or said at
 * least `every_s` seconds ago (every_s > 0).  Pure: complain()'s rule. */
bool complaint_due(const struct complaint *c, double every_s, double now);

/* The condition holds: the line is said when complaint_due() (now), and the
 * complaint remembers it.  Returns whether it was said. */
bool complain(struct complaint *c, double every_s, int priority, const struct log_ctx *ctx, const char *fmt, ...)
        __attribute__((format(printf, 5, 6)));

/* The condition is over: the line is said when the condition was, and the
 * complaint is forgotten.  Returns whether it was said (then the caller need
 * say nothing more). */
bool complain_release(struct complaint *c, int priority, const struct log_ctx *ctx, const char *fmt, ...)
        __attribute__((format(printf, 4, 5)));

/* Whether the condition has been said (and not released or forgotten). */
static inline bool complaining(const struct complaint *c) {
        return c->said;
}

/* Forgotten without a line: the next complain() says it again. */
void complaint_forget(struct complaint *c);
