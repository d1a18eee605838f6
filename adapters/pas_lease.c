/* SPDX-License-Identifier: MIT */
/*
 * The writer's lease (pas_lease.h): reading the ers_lease row, taking it by
 * compare and swap, renewing it (by itself between transactions, and inside
 * every transaction through pas_begin(), which calls lease_renew()), and
 * giving it up.  Not here: when to take, renew or wait (daemon/lease.c).
 */
#include "pas_lease.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "../daemon/util.h"
#include "pas_internal.h"

int pas_lease_get(struct pas *p, const char *name, struct lease_state *ret, struct errbuf *e) {
        const char *what = statements[ST_LEASE_GET].what;
        struct param ps[] = { P_TEXT(name) };
        struct lease_state st = { 0 };
        SQLHSTMT h = SQL_NULL_HSTMT;
        int r;

        r = run(p, ST_LEASE_GET, ps, 1, &h, NULL, e);
        if (r < 0)
                return r;
        r = fetch(p, h, what, e);
        if (r > 0) {
                st.found = true;
                r = get_text(p, h, 1, what, st.holder, sizeof st.holder, NULL, e);
                if (r >= 0)
                        r = get_int64(p, h, 2, what, &st.renewals, NULL, e);
        }
        stmt_close(h);
        if (r < 0)
                return r;
        *ret = st;
        return 0;
}

int pas_lease_take(struct pas *p, const char *name, const char *holder, const struct lease_state *seen,
                   struct errbuf *e) {
        char now[32];
        SQLLEN rows = 0;
        int r;

        if (p->in_tx)
                return err_set(e, -EINVAL, "take the lease: a transaction is open");
        if (strlen(name) > PAS_LEASE_NAME_MAX || strlen(holder) > PAS_LEASE_HOLDER_MAX || !holder[0])
                return err_set(e, -EINVAL, "take the lease: name or holder too long or empty");
        now_utc_iso(now);
        if (!seen->found) {
                struct param ps[] = { P_TEXT(holder), P_TEXT(now), P_TEXT(name) };
                struct lease_state again;
                struct errbuf e2 = { { 0 } };

                r = run(p, ST_LEASE_INSERT, ps, 3, NULL, NULL, e);
                if (r < 0 && pas_lease_get(p, name, &again, &e2) == 0 && again.found)
                        return err_set(e, -EBUSY, "the lease was taken by %.128s meanwhile", again.holder);
                if (r < 0)
                        return r;
        } else {
                struct param ps[] = { P_TEXT(holder), P_TEXT(now), P_TEXT(name), P_TEXT(seen->holder),
                                      P_INT(seen->renewals) };

                r = run(p, ST_LEASE_TAKE, ps, 5, NULL, &rows, e);
                if (r < 0)
                        return r;
                if (rows != 1)
                        return err_set(e, -EBUSY, "the lease moved meanwhile");
        }
        snprintf(p->lease_name, sizeof p->lease_name, "%s", name);
        snprintf(p->lease_holder, sizeof p->lease_holder, "%s", holder);
        return 0;
}

int lease_renew(struct pas *p, const char *now, struct errbuf *e) {
        SQLLEN rows = 0;
        int r;

        struct param ps[] = { P_TEXT(now), P_TEXT(p->lease_name), P_TEXT(p->lease_holder) };
        r = run(p, ST_LEASE_RENEW, ps, 3, NULL, &rows, e);
        if (r < 0)
                return r;
        if (rows != 1)
                return err_set(e, -ESTALE, "the writer's lease is no longer ours: another ersd took it over");
        return 0;
}

int pas_lease_renew(struct pas *p, struct errbuf *e) {
        char now[32];

        if (!p->lease_name[0])
                return err_set(e, -EINVAL, "renew the lease: none taken");
        if (p->in_tx)
                return err_set(e, -EINVAL, "renew the lease: a transaction is open");
        now_utc_iso(now);
        return lease_renew(p, now, e);
}

void pas_lease_release(struct pas *p) {
        struct errbuf ignored = { { 0 } };
        char now[32];

        if (!p || !p->lease_name[0] || p->in_tx)
                return;
        now_utc_iso(now);
        /* PAS_LEASE_RELEASED is free: a standby takes it at once, without waiting. */
        struct param ps[] = { P_TEXT(PAS_LEASE_RELEASED), P_TEXT(now), P_TEXT(p->lease_name),
                              P_TEXT(p->lease_holder) };
        (void) run(p, ST_LEASE_RELEASE, ps, 4, NULL, NULL, &ignored);
        p->lease_name[0] = '\0';
}
