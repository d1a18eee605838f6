/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One writer at a time among several ersd on one PAS database (two hosts, for
 * failover): a lease row in the PAS itself (ers_lease, adapters/pas.h), so it
 * works alike on every vendor, SQLite included, needs no privilege beyond the
 * staging schema's, and is visible to a DBA (SELECT * FROM ers_lease).
 *
 * The holder renews it (a counter) every third of lease_seconds, and inside
 * every write transaction.  A standby reads the row every third of
 * lease_seconds and takes it over, by compare and swap, once it has not
 * moved for lease_seconds by the standby's own monotonic clock: no two
 * hosts' wall clocks are ever compared.  A lease given up on exit is taken
 * at once.
 */

#include <stdbool.h>

#include "../adapters/pas_lease.h"
#include "complain.h"

#define LEASE_NAME "ersd" /* one lease per staging schema */

struct lease {
        double seconds;                        /* database.lease_seconds */
        char holder[PAS_LEASE_HOLDER_MAX + 1]; /* "host:pid": who we are in ers_lease.holder */
        bool held;                             /* taken and not known lost */
        double renewed_at;                     /* monotonic: our last renewal, when held */
        struct lease_state seen;               /* standby: the row as last read */
        double seen_since;                     /* monotonic: since when it has stood still */
        bool seen_valid;                       /* seen has been read at least once */
        struct complaint standby;              /* "on standby" said once per wait */
};

void lease_init(struct lease *l, long seconds);

/*
 * One step, called at least every third of l->seconds: held → renew (when a
 * third has passed, or `force`); standby → read, and take over a lease that
 * is free, absent, or has stood still for l->seconds.  Logs each change
 * (taken, taken over, standby, lost) once.  Returns 1 when held, 0 when not,
 * or a negative errno with e (the database failed: try again later).
 */
int lease_tick(struct lease *l, struct pas *p, bool force, struct errbuf *e);
