/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The return path's sender (issue 16): once per round, after the worklists
 * and the referrals due again, the due requests of ers_outbox
 * (adapters/pas_outbox.h) are sent to e-RS (daemon/ers_writeback.h), each
 * exactly once, one UBRN's in order; off unless writeback.enabled, and only
 * the actions writeback.actions names.  Never costs a worklist call.
 *
 * For each due request, in id order:
 *   - decided on a version older than the PAS's row of the referral: STALE
 *     (error code OUTBOX_MOVED_ON), never sent: e-RS has left that version,
 *     and a refusal whose answer was lost must not be settled as applied;
 *   - found SENDING (a crash, or MAY_HAVE_REACHED, after it left): the
 *     referral is read (A005), its version and state only (a referral the
 *     sync refuses is settled all the same), and the request settled by
 *     what e-RS shows, never sent blindly: at a version past the decided one showing the
 *     action's effect, DONE (A013, which leaves the referral BOOKED: only at
 *     exactly the decided version + 1, as nothing else tells an accepted
 *     referral); still at the decided version, nothing was
 *     applied: RETRY at once (sent again, once, by a later round); anything
 *     else STALE (a person looks);
 *   - RECORD_REVIEW_OUTCOME: A029 at the decided version first (STALE when
 *     e-RS says it is no longer current; REJECTED when the action is not
 *     allowed now); A013 has no A029 action and relies on its 422;
 *   - marked SENDING in a transaction committed before the call; the call's
 *     outcome recorded with its audit row (pas_outbox_record()): DONE,
 *     REJECTED, STALE, RETRY (backoff from retry_delay, doubled per attempt,
 *     at most parked_retry, or e-RS's Retry-After when longer);
 *   - FORBIDDEN (403: the application is not approved): the request goes back
 *     to RETRY, error code FORBIDDEN, and nothing more is sent this round.
 *
 * --dry-run prints, per request, the UBRN, the action and the decided version
 * (never the comment, nor who asked) and sends and writes nothing.  Lines
 * name the request, the UBRN and the correlation id only.
 *
 * Returns 0, or the round's state when it stops it (round.h: -ECANCELED,
 * -ESTALE, -ENOTCONN); a request that failed is only logged and recorded.
 */

#include "sync.h"

int outbox_send(struct sync_ctx *ctx);

/* The seconds before try number `attempts` + 1 of a request that got RETRY
 * (attempts >= 1 sends made): retry_delay * 2^(attempts - 1), at most
 * parked_retry, and at least `retry_after` (e-RS's, < 0: none). */
long outbox_backoff(const struct config *cfg, unsigned attempts, long retry_after);
