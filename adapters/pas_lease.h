/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The writer's lease (docs/schema.md, "One writer at a time"): a row in
 * ers_lease that says which ersd writes, taken by compare and swap and
 * renewed inside every transaction (pas_begin()).  For daemon/lease.c and
 * the daemon's exit.  Implemented in adapters/pas_lease.c; every function
 * keeps pas.h's contract (0 or a negative errno, one line in e).
 */

#include <stdbool.h>
#include <stdint.h>

#include "../daemon/err.h"

struct pas;

#define PAS_LEASE_NAME_MAX 64
#define PAS_LEASE_HOLDER_MAX 128
#define PAS_LEASE_RELEASED "(released)" /* the holder of a lease given up: free at once */

/* A lease row as read.  found=false when there is no row yet. */
struct lease_state {
        bool found;
        char holder[PAS_LEASE_HOLDER_MAX + 1];
        int64_t renewals; /* grows with every renewal: a lease that stops growing is dead */
};
int pas_lease_get(struct pas *p, const char *name, struct lease_state *ret, struct errbuf *e);

/*
 * Takes the lease `name` for `holder` when its row is still exactly `seen`
 * (compare and swap: no row → insert; else update where holder and renewals
 * are as seen).  Outside a transaction.  0 when taken; -EBUSY when it moved
 * meanwhile (another ersd renewed or took it).  From then on every
 * pas_begin() renews it inside its transaction and fails with -ESTALE, writing
 * nothing, once another holder has it: the row lock taken by that renewal
 * holds a takeover off until the commit, so two holders never both write.
 */
int pas_lease_take(struct pas *p, const char *name, const char *holder, const struct lease_state *seen,
                   struct errbuf *e);

/* Renews the lease taken, outside a transaction (between referrals, during
 * a long download, between rounds).  -ESTALE when another ersd has it now. */
int pas_lease_renew(struct pas *p, struct errbuf *e);

/* Gives the lease up (holder PAS_LEASE_RELEASED) so that a standby takes it
 * at once; never fails from the caller's view.  Accepts NULL and no lease. */
void pas_lease_release(struct pas *p);
