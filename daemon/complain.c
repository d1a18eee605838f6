/* SPDX-License-Identifier: MIT */
/*
 * Rate-limited complaints (complain.h): the rule of when a lasting condition
 * is said again, and its end said once.  Not here: what is said (the
 * callers' texts) and how a line is written (log.c).
 */
#include "complain.h"

#include <stdarg.h>

#include "util.h"

bool complaint_due(const struct complaint *c, double every_s, double now) {
        return !c->said || (every_s > 0 && now - c->said_at >= every_s);
}

bool complain(struct complaint *c, double every_s, int priority, const struct log_ctx *ctx, const char *fmt, ...) {
        double now = now_monotonic();
        va_list ap;

        if (!complaint_due(c, every_s, now))
                return false;
        va_start(ap, fmt);
        log_ctx_vmsg(priority, ctx, fmt, ap);
        va_end(ap);
        c->said = true;
        c->said_at = now;
        return true;
}

bool complain_release(struct complaint *c, int priority, const struct log_ctx *ctx, const char *fmt, ...) {
        va_list ap;

        if (!c->said)
                return false;
        va_start(ap, fmt);
        log_ctx_vmsg(priority, ctx, fmt, ap);
        va_end(ap);
        complaint_forget(c);
        return true;
}

void complaint_forget(struct complaint *c) {
        *c = (struct complaint){ .said = false };
}
