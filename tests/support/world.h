/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Generated e-RS worlds and their histories, for the generative whole-system
 * test (tests/integration/test_world.c, issue 13).
 *
 * A world is everything e-RS presents at one instant: referrals with every
 * A005 field as the generator chose it (or absent), their worklist entries,
 * their attachments and letters.  wgen_first() makes the first world of a
 * seed and wgen_next() the next one, applying the changes e-RS makes between
 * two looks (new versions, attachments released, revised, removed or added,
 * referrals leaving the worklists, returning, gone); world_write() writes it
 * in the mock's world format (tests/mock-ers/README.md, "World mode").  The
 * same seed gives the same worlds, byte for byte.
 *
 * What is generated, and the rules that keep what the PAS must hold exact
 * (tests/support/world_check.h relies on them):
 *   - Every change to what A005 says bumps its version, but one: an
 *     attachment e-RS still owes (PENDING, an unknown availability, none)
 *     becoming AVAILABLE, THREATS_FOUND or VALIDATION_FAILED as a malware
 *     scan ends, at the same version.
 *   - A worklisted referral's A005 may lack its subject (NHS number),
 *     priority or specialty (never in a tame world): its worklist entry's
 *     is expected, and kept when ersd reads the referral again.
 *   - A revised attachment (same id, new bytes) has a new creation time and
 *     is AVAILABLE; an attachment larger than the first configured maximum is
 *     AVAILABLE from the start and never changes but by revision.
 *   - Related referrals are never on a worklist and never gone; two
 *     referrals point at the same one in every seed's first world (when two
 *     have room for it), and now and then later; when one changes, every
 *     referral pointing at it gets a new version too.  A new version of a
 *     referral may stop listing one of its related referrals (whose
 *     attachments shown with it are then kept, marked removed).
 *   - A worklist entry's referralRequestVersion is A005's, one ahead of it,
 *     or absent (APPOINTMENT_SLOT_ISSUES entries never carry one).
 *   - A referral is on one worklist at most, always the same one.
 *   - Additional requirements change only with a new version (they are
 *     drawn again with every one).
 *   - A worklist entry's working state in e-RS (struct wstate) changes from
 *     one world to the next without a new version, as e-RS changes it; it is
 *     drawn from a random stream of its own, so the rest of a seed's worlds
 *     is what it was before the working state was generated.
 * Texts and ids: every legal shape, lengths under, at and over the schema's
 * column widths with multi-byte UTF-8 at the boundary, control, C1 and bidi
 * characters, NULs, ids that collide once sanitised, duplicated ids, an id
 * equal to a letter's, missing fields, a number where a string belongs.
 *
 * Strings live in the generator's pool (freed by wgen_free): worlds share
 * them and copy only their arrays.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define WORLD_DOCS_MAX 40   /* documents of a referral and its related referrals together */
#define WORLD_RELATED_MAX 3 /* related referrals of one referral */
#define WORLD_WORKLISTS 3
#define WORLD_REQUIREMENTS_MAX 4 /* additional requirements of one referral (the specification allows 3) */

/* The worklists of the test's configuration: name, list type, service. */
struct world_worklist {
        const char *name;
        const char *list_type;
        const char *service;
};
extern const struct world_worklist WORLD_WORKLIST[WORLD_WORKLISTS];

/* A value as e-RS sends it: absent, a string (any bytes, a NUL included), or a number. */
enum wt_kind { WT_ABSENT, WT_STR, WT_NUM };
struct wt {
        enum wt_kind kind;
        const char *p; /* WT_STR: n bytes in the pool, NUL-terminated after them */
        size_t n;
        int64_t num;   /* WT_NUM */
};

struct wdoc {
        struct wt id, title, content_type, creation, availability, by_user, by_org, doc_type, description;
        struct wt size;  /* attachment.size as declared: WT_NUM (maybe wrong), absent, or a string */
        char binary[40]; /* Binary/{binary}: unique in a world's history for unique content */
        uint64_t seed;   /* the content: `bytes` bytes of the stream of `seed` (tests/mock-ers/stream.h) */
        uint64_t bytes;
};

/* An additional requirement (Extension-eRS-AdditionalRequirement-1, the published examples' shape: a
 * nested "type" coding of system eRS-AdditionalRequirementType-1 and "comments"). */
struct wreq {
        struct wt code, display, comments;
};

/* One element of a worklist entry's working state (ubrnReceived, …), as e-RS
 * lists it: each occurrence in order (the specification allows one; two is a
 * repetition whose every readable value the PAS keeps, joined by a space). */
#define WORLD_STATE_MAX 2
struct wstate {
        struct wt v[WORLD_STATE_MAX];
        size_t n;
};

/* clinicalInfoPrinted's occurrences: true, false, or a string where a boolean belongs. */
enum wprinted { WP_FALSE, WP_TRUE, WP_STRING };

struct wref {
        char ubrn[13];
        bool related_only;  /* reached only as another referral's related referral */
        bool gone;          /* e-RS no longer knows it (A005 404) */
        int64_t version;
        struct wt nhs, priority, state, reason, comment, specialty, specialty_display, status, intent,
                pathway_start, cifs, commissioning_org, request_id;
        bool pathway_instant;
        bool booked;        /* a contained #appointment */
        struct wt appt_start, appt_end, appt_service_id, appt_service_name;
        bool shortlist;     /* a #shortlist naming one service */
        struct wt sl_id, sl_name;
        char related[WORLD_RELATED_MAX][13];
        size_t n_related;
        struct wreq reqs[WORLD_REQUIREMENTS_MAX]; /* in e-RS's order; a new set with every new version */
        size_t n_reqs;
        struct wdoc *docs;  /* owned */
        size_t n_docs;
        uint64_t letter_bytes; /* the letter's seed is world_letter_seed(ubrn, version) */
        /* The worklist entry. */
        int worklist;       /* index into WORLD_WORKLIST; -1: on no worklist now */
        int home;           /* the worklist it is on when listed */
        bool entry_ahead;   /* referralRequestVersion is version + 1 (RFR only) */
        struct wt e_priority, e_specialty, e_service_id, e_service_name, e_referral_type, e_nhs;
        /* Its working state: on an APPOINTMENT_SLOT_ISSUES entry when the UBRN was received, when the
         * patient expects contact, the last contact, the clinical information's status; on a
         * REFERRALS_FOR_REVIEW one what changed since it was last reviewed; on both whether the letter
         * was printed. */
        struct wstate e_received, e_contact, e_last, e_information, e_context;
        enum wprinted e_printed[WORLD_STATE_MAX];
        size_t n_printed;
};

struct world {
        unsigned epoch;         /* 0, 1, …: which change of the seed's history */
        struct wref *refs;      /* owned */
        size_t n_refs;
        char **junk;            /* owned: malformed worklist entries (JSON text), on worklist junk_on[i] */
        int *junk_on;
        size_t n_junk;
        unsigned max_mib;       /* ers.max_attachment_mib in force */
        unsigned parallel;      /* ers.parallel_fetches in force */
};

/* How big and how wild a seed's worlds are. */
struct wgen_plan {
        unsigned referrals;     /* worklisted referrals at first */
        unsigned max_docs;      /* documents of one referral with its related ones at most (<= WORLD_DOCS_MAX) */
        unsigned big_every;     /* about one document in this many is over the first maximum (1 MiB) */
        bool tame;              /* only the usual shapes: no unusual text or id, no missing or duplicated
                                   id, no A005 without subject, priority or specialty, no malformed entry
                                   (a check of the model and the checker themselves) */
};

struct wgen;
struct wgen *wgen_new(uint64_t seed, const struct wgen_plan *plan);
void wgen_free(struct wgen *g);
/* The generator's random numbers, for the test's own choices (faults, kills). */
uint64_t wgen_rand(struct wgen *g);
struct world *wgen_first(struct wgen *g);
/* The world after the next changes; w is left as it was. */
struct world *wgen_next(struct wgen *g, const struct world *w);
/* The same, and about half the attachments of each of these referrals revised
 * (new bytes, new creation time, a new version): what e-RS does to a referral
 * whose last sync failed half-way is the test's to choose. */
struct world *wgen_revise(struct wgen *g, const struct world *w, const char *const *ubrns, size_t n_ubrns);
void world_free(struct world *w);
/* A copy of w (its arrays; the strings stay the generator's), without its malformed entries. */
struct world *world_copy(const struct world *w);
/* The same with its malformed entries too (their texts copied): a world e-RS serves whole. */
struct world *world_copy_whole(const struct world *w);

/* Writes w in the mock's world format.  0 or -errno. */
int world_write(const struct world *w, const char *path);

const struct wref *world_find(const struct world *w, const char *ubrn);
/* The seed of a referral's letter at a version: the same letter for the same version. */
uint64_t world_letter_seed(const char *ubrn, int64_t version);
/* SHA-256 hex of the stream of `seed`, `bytes` long (cached by the generator). */
void world_content_sha256(struct wgen *g, uint64_t seed, uint64_t bytes, char hex[65]);

/* The value as the PAS must hold it (docs/schema.md, Conventions): a code or id
 * is kept as sent, NULL when absent, not a string or holding a NUL; free text
 * the same with each NUL as U+FFFD.  Malloc'd (NULL: SQL NULL). */
char *wt_code(const struct wt *v, size_t *ret_len);
char *wt_text(const struct wt *v, size_t *ret_len);
/* Whether an id or code is readable (a string without a NUL). */
bool wt_readable(const struct wt *v);
/* An element of the working state as the PAS must hold it: its readable values
 * in order, joined by one space; NULL when none.  Malloc'd. */
char *wstate_joined(const struct wstate *s, size_t *ret_len);
/* clinical_info_printed as the PAS must hold it: "1", "0", or NULL (not said
 * as a boolean, or said both ways). */
const char *wref_printed(const struct wref *r);

/* Documents of one referral: how ersd must treat its availability. */
bool wdoc_available(const struct wdoc *d);    /* exactly AVAILABLE */
bool wdoc_never(const struct wdoc *d);        /* THREATS_FOUND, "THREATS FOUND", VALIDATION_FAILED */
/* A referral e-RS presents that ersd must refuse: an attachment without a readable id. */
bool wref_refused(const struct wref *r);
