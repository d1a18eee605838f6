/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The whole PAS against the model of the generative whole-system test
 * (tests/integration/test_world.c): after a round that settled (nothing
 * left to do), the PAS must hold exactly what e-RS served at the last
 * successful read of each referral, by the rules of docs/schema.md and the
 * lead's decisions of issue 13:
 *   - a referral on a worklist now (not gone, not refused) is in the PAS at
 *     e-RS's version: every column, its related referrals, every document
 *     of it and of its related referrals (kind, id, occurrence; every field;
 *     fetched ones by size and SHA-256, their parts reassembled), owed ones
 *     owed (ledger complete = 0), nothing more; no ers_retry row;
 *   - any other referral in the PAS (left the worklists, gone, related only,
 *     refused now) equals what e-RS served at the version the PAS holds;
 *   - a referral ersd must refuse (an attachment without a readable id) is
 *     not in the PAS at any version e-RS served that way, and waits in
 *     ers_retry (parked from park_after attempts on);
 *   - the NHS number, priority and specialty A005 lacks are the worklist
 *     entry's, never lost by a later read (within the limits docs/schema.md
 *     states: compare_referral());
 *   - a document that fits is stored whatever size e-RS declares; one
 *     withheld for good shows its availability and whom to ask;
 *   - documents no longer listed are kept, marked removed; older revisions
 *     hold bytes e-RS served under that id; letters of older versions stay;
 *   - every document row is named by an audit row of its referral, every
 *     line of an audit row's document list names a document of it, and no
 *     audit row records a write that changed nothing;
 *   - a referral's additional requirements are the model's, in order, whole;
 *     every A005 answer kept is one the mock served, byte for byte;
 *   - ers_worklist_entry holds each worklist's entries as the last poll
 *     listed them: version and working state in e-RS, nothing more.
 * Texts: whole; a NUL in free text as U+FFFD, a code or id holding a NUL
 * NULL.  Each mismatch is one line on stderr naming the UBRN and what
 * differs, expected against got: never a patient identifier, never the
 * bytes of a free text (described by length and SHA-256 instead).
 */

#include <stdbool.h>
#include <stddef.h>

#include "harness.h"
#include "world.h"

/* The referrals whose NHS number (bit 0) or specialty (bit 1) the PAS held
 * at an earlier check: world_check() adds to it.  The caller's, kept across
 * checks; free with wcheck_seen_free(). */
struct wcheck_seen {
        struct wcheck_seen_row {
                char ubrn[13];
                unsigned cols;
        } *rows;
        size_t n, cap;
};
void wcheck_seen_free(struct wcheck_seen *s);

struct wcheck {
        /* In. */
        struct db *d;
        struct wgen *g;
        struct world *const *history; /* every world e-RS presented, oldest first; the last is now */
        size_t n_history;
        unsigned park_after;          /* the configuration's park_after */
        struct wcheck_seen *seen;     /* may be NULL (then none was held before) */
        /* May be NULL: takes each mismatch line (without "world: MISMATCH "), else stderr. */
        void (*sink)(void *userdata, const char *line);
        void *userdata;
        /* Out: what was checked and what differed. */
        unsigned referrals;           /* referrals compared */
        unsigned documents;           /* documents compared (fetched ones reassembled) */
        unsigned mismatches;
        unsigned said;                /* mismatch lines printed (at most WCHECK_SAY_MAX) */
        /* Issue 15.  In, may be NULL: the mock's note of every A005 answer it rendered (world mode,
         * "<world file>.answers"), against which the answers kept are checked. */
        const char *answers_served;
        unsigned answers;             /* out: answers kept that were checked */
};

#define WCHECK_SAY_MAX 60

/* Compares; returns c->mismatches. */
unsigned world_check(struct wcheck *c);

/* Issue 15 (world_elements.c).  The additional requirements of referral m
 * (ers_referral_requirement) against the model: their number and order, each
 * value whole; the differences (told when say). */
unsigned wcheck_compare_requirements(struct wcheck *c, bool say, const char *who, const struct wref *m);

/* Every A005 answer the PAS keeps is one the mock served (c->answers_served),
 * byte for byte (its UBRN, version, SHA-256 and size as noted, its body
 * rehashed from the PAS), and every referral row has an answer of its
 * version.  The mismatches (told); nothing without c->answers_served. */
unsigned wcheck_answers(struct wcheck *c);

/* Issue 15 (world_entries.c).  ers_worklist_entry against the worklists of the
 * world served now, as the settled round's poll listed them: a row for each
 * entry (and for a malformed one whose UBRN is readable, holding nothing
 * else), its version and its working state (each element's readable values
 * joined by a space, clinical_info_printed 1, 0 or NULL), no other row.  A
 * worklist listing a malformed entry without a readable UBRN is not judged:
 * that poll recorded nothing.  The mismatches (told). */
unsigned wcheck_worklist_entries(struct wcheck *c);

/* One mismatch line ("world: MISMATCH …"), counted; printf-like. */
void wcheck_say(struct wcheck *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* A value described for a mismatch line without showing it when it could be
 * patient data: NULL, a short printable code in quotes, else its length and
 * the start of its SHA-256.  Returns buf. */
const char *wcheck_describe(const char *v, size_t len, bool sensitive, char *buf, size_t n);
/* A line of ersd's (a log line, an ers_retry reason) for a mismatch line: letters,
 * digits, blanks and punctuation kept, a run of ten digits or more as '#'s,
 * anything else '?', at most 200 characters (never a patient text, never what
 * could read as an NHS number).  Returns buf. */
const char *wcheck_gist(const char *s, char *buf, size_t n);
