/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The sync engine's parts, for each other (not for its callers: they use
 * sync.h).  round.c runs a round and the writer's window every referral goes
 * through; worklist_sync.c syncs one worklist; due.c the referrals due again,
 * `ersd sync UBRN` and patient re-matching; write.c what becomes of each
 * fetched referral.  Everything here runs on the thread that owns the PAS.
 *
 * A round's state is an `int r` carried from referral to referral: 0 while
 * it goes on, or the reason it stops (see sync_once() in sync.h).
 */

#include <errno.h>
#include <stdbool.h>

#include "fetch.h"
#include "pool.h"
#include "sync.h"

/*
 * Whether `r`, a round's state, stops the round: stopped by SIGTERM or
 * SIGINT (-ECANCELED), the writer's lease lost to another ersd (-ESTALE), or
 * the PAS connection lost and not back within reconnect.h's window
 * (-ENOTCONN).  Then nothing more is fetched or written this round.
 */
static inline bool round_stops(int r) {
        return r == -ECANCELED || r == -ESTALE || r == -ENOTCONN;
}

/*
 * Whether one referral's result stops the round: stopped, or the lease lost.
 * A referral whose own write lost the PAS connection (-ENOTCONN) failed
 * alone: the next one connects again first, and only a PAS that stays
 * unreachable (round_stops()) ends the round.
 */
static inline bool referral_stops_round(int r) {
        return round_stops(r) && r != -ENOTCONN;
}

/* What a fetch uses: the round's e-RS client (or, on a fetching thread, a lane of it). */
struct fetch_env round_fetch_env(const struct sync_ctx *ctx);

/* A job for `entry` with what the fetch needs of the PAS and cannot read
 * itself: the ledger's row, and when it has one, the documents stored with
 * the referral.  On failure the job holds nothing (e says why). */
int round_prepare_job(struct sync_ctx *ctx, struct referral_job *j, const char *worklist,
                      const struct worklist_entry *entry, const struct ledger_state *ls, struct errbuf *e);

/*
 * Hands one entry of `worklist` (NULL: no worklist) to the fetchers
 * (round_prepare_job() first), after writing what is fetched while the
 * window is full: at most twice as many jobs in flight as there are
 * fetchers.  `phase` names the worklist being synced, NULL for the referrals
 * due again (for the line that says the round stopped).  The entry (borrowed)
 * must live until round_write_all().  Returns the round's state: once
 * round_stops() it, fetched jobs are dropped unwritten, their verified
 * downloads left in the spool for the next round, the referrals waiting in
 * ers_retry.  *failed is set when a referral failed.
 *
 * A write's own lost connection fails that referral alone (the next write
 * connects again first); -ENOTCONN here means the writer, connecting again
 * before a write (the connection lost meanwhile, e.g. by the lease's renewal
 * while it waited for fetches), waited out reconnect.h's window in vain and
 * said the round stopped (round_say_unreachable(), the worklist counted
 * failed).  So its callers stop at round_stops(), -ENOTCONN included, and
 * hand the state to round_write_all(): the round is not waited for a
 * second time, nor said stopped twice, nor carried on.
 */
int round_submit(struct sync_ctx *ctx, const char *phase, const char *worklist, const struct worklist_entry *entry,
                 const struct ledger_state *ls, struct sync_stats *stats, bool *failed);

/* Every job in flight written, or dropped once `r`, the round's state, says
 * the round stops (as for round_submit()).  Returns the round's state. */
int round_write_all(struct sync_ctx *ctx, const char *phase, int r, struct sync_stats *stats, bool *failed);

/* The ledger row of a UBRN, on a connection that is up: a lost one is
 * connected again first (reconnect.h), and a read that loses it is tried once
 * more.  -ENOTCONN when the PAS stays unreachable, -ECANCELED when stopped. */
int round_ledger_get(struct sync_ctx *ctx, const char *ubrn, struct ledger_state *ret, struct errbuf *e);

/* round_ledger_get(), a failure counted and logged as the referral's (but a stop). */
int round_read_ledger(struct sync_ctx *ctx, const char *ubrn, const char *worklist, struct ledger_state *ret,
                      struct sync_stats *stats);

/* The round stops at `ubrn`: the PAS stayed unreachable (reconnect.h).  `worklist`
 * is the worklist being synced (counted failed), NULL for the referrals due again. */
void round_say_unreachable(const char *worklist, const char *ubrn, struct sync_stats *stats);

/* worklist_sync.c: one worklist of the round (ctx->poll chose it), its
 * entries through the writer's window.  0, -EAGAIN when something failed
 * (see stats), or the round's state when it must stop. */
int sync_worklist(struct sync_ctx *ctx, const struct worklist_conf *wl, struct sync_stats *stats);

/* due.c: the referrals due for another look without a worklist call
 * (ers_retry rows whose time has come, ledger rows with documents owed whose
 * next_check_at has come), at most DUE_MAX a round.  Returns as sync_worklist(). */
int sync_due(struct sync_ctx *ctx, struct sync_stats *stats);

/* due.c: looks again for the PAS patient of referrals already in the PAS
 * whose patient was not found, at most REMATCH_MAX a round, none checked
 * after `round_start`.  Never fails the round: a failure is logged once. */
void sync_rematch_patients(struct sync_ctx *ctx, const char *round_start, struct sync_stats *stats);
