/* SPDX-License-Identifier: MIT */
#include "lease.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "../adapters/pas_lease.h"
#include "log.h"
#include "util.h"

void lease_init(struct lease *l, long seconds) {
        char host[64] = "";

        memset(l, 0, sizeof *l);
        l->seconds = (double) seconds;
        if (gethostname(host, sizeof host - 1) < 0 || !host[0])
                snprintf(host, sizeof host, "unknown-host");
        snprintf(l->holder, sizeof l->holder, "%.64s:%ld", host, (long) getpid());
}

static int take(struct lease *l, struct pas *p, struct errbuf *e) {
        bool over = l->seen.found && strcmp(l->seen.holder, PAS_LEASE_RELEASED) != 0;
        int r = pas_lease_take(p, LEASE_NAME, l->holder, &l->seen, e);

        if (r == -EBUSY) {
                l->seen_valid = false; /* read again next time */
                e->msg[0] = '\0';
                return 0;
        }
        if (r < 0)
                return r;
        l->held = true;
        l->renewed_at = now_monotonic();
        complaint_forget(&l->standby);
        if (over)
                log_notice("lease: taken over from %s, silent for %.1f s; this ersd (%s) now writes", l->seen.holder,
                           now_monotonic() - l->seen_since, l->holder);
        else
                log_notice("lease: taken; this ersd (%s) writes", l->holder);
        return 1;
}

int lease_tick(struct lease *l, struct pas *p, bool force, struct errbuf *e) {
        double now = now_monotonic();
        struct lease_state st;
        int r;

        if (l->held) {
                if (!force && now - l->renewed_at < l->seconds / 3)
                        return 1;
                r = pas_lease_renew(p, e);
                if (r == -ESTALE) {
                        l->held = false;
                        l->seen_valid = false;
                        log_error("lease: lost (%s); this ersd stops writing and waits", e->msg);
                        e->msg[0] = '\0';
                        return 0;
                }
                if (r < 0)
                        return r;
                l->renewed_at = now;
                return 1;
        }

        r = pas_lease_get(p, LEASE_NAME, &st, e);
        if (r < 0)
                return r;
        if (!st.found || strcmp(st.holder, PAS_LEASE_RELEASED) == 0) {
                l->seen = st;
                l->seen_since = now;
                return take(l, p, e);
        }
        if (!l->seen_valid || st.renewals != l->seen.renewals || strcmp(st.holder, l->seen.holder) != 0) {
                l->seen = st; /* it moved: alive */
                l->seen_since = now;
                l->seen_valid = true;
        } else if (now - l->seen_since >= l->seconds) {
                return take(l, p, e);
        }
        complain(&l->standby, 0, LOG_NOTICE, NULL, "lease: held by %s; this ersd (%s) is on standby", st.holder,
                 l->holder);
        return 0;
}
