/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The return path in the generated worlds (issue 16; tests/integration/test_world.c):
 * the requests "the PAS" inserts into ers_outbox between rounds, the world as
 * e-RS serves it once writes were applied, and the check of the outbox
 * against what e-RS recorded.  Not here: planning the requests from the seed
 * (test_world.c, beside the rest of the chaos), the comparison of the rest of
 * the PAS (world_check.c).
 *
 * The mock serves a world's referral at the world's version plus the writes
 * applied to it, and the state and priority the last write set while the
 * world still gives the version it was set at (tests/mock-ers/README.md,
 * "World mode"): world_served() makes the same of a generated world, from the
 * mock's GET /_mock/writeback/applied.
 */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "world.h"
#include "world_check.h"

/* One request the PAS inserts: planned from the seed; its decided version is the
 * PAS's (ers_referral.version as a person saw it) less `behind`. */
struct wrequest {
        unsigned n;            /* its number in the seed's history: requested_by "STAFF-W<n>" */
        char ubrn[13];
        bool review;           /* RECORD_REVIEW_OUTCOME (A028), else ACCEPT_REFERRAL (A013) */
        const char *outcome;   /* static: review outcome, NULL for A013 */
        const char *priority;  /* static: a new priority, or NULL */
        char comment[200];     /* review only: unique in the history (it names the request) */
        unsigned behind;       /* 1: decided on a version older than the PAS's (a stale decision) */
        bool inserted;         /* the PAS held the referral, so a person could decide: inserted */
        int64_t decided;       /* the decided version inserted */
};

/* What the return path did in one seed, for the figures line. */
struct wrequest_figures {
        unsigned inserted, done, rejected, stale, applied;
        unsigned guessed; /* DONE though never applied, as H-13's C-13.4 residual lets it (wcheck_outbox()) */
};

/* A world as e-RS serves it: a copy of w, its malformed entries too (world_copy_whole),
 * with what the writes the mock applied (`applied`, GET /_mock/writeback/applied) made
 * of each referral. */
struct world *world_served(const struct world *w, json_object *applied);

/* The ers_outbox rows against the requests inserted and the mock's record of the
 * writes (GET /_mock/writeback/record): every request inserted has exactly one row,
 * settled (DONE, REJECTED, STALE); no action applied twice; a DONE one applied once,
 * with the version e-RS answered, but for the one case the design settles by a guess
 * (docs/safety/hazard-log.md, H-13, C-13.4's residual: counted in fig->guessed): an
 * acceptance, decided on the version the PAS held, not applied, DONE at exactly its decided
 * version + 1, at which e-RS served the referral BOOKED by a change of its own; a REJECTED one never applied; a STALE one applied
 * at most once (an answer lost, e-RS since moved on: a person looks); a stale
 * decision never applied nor DONE; every write sent on its request's decided version, as
 * asked; every write e-RS applied is a request's; no row nobody inserted.
 * Returns the mismatches (told through c); *fig counted. */
unsigned wcheck_outbox(struct wcheck *c, const struct wrequest *reqs, size_t n, json_object *record,
                       struct wrequest_figures *fig);
