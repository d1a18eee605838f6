/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Which stored document each attachment of a referral is, when an id is
 * listed more than once (docs/schema.md, "Document identity").  A document
 * is (ubrn, source_ubrn, kind, attachment_id, occurrence); e-RS gives two
 * attachments with one id nothing to tell them apart but their order and how
 * it describes them.  When a new version lists fewer, more, or reordered
 * attachments with an id, each one it lists is paired with a document the
 * PAS holds for that id: first the one e-RS described the same at its latest
 * revision (declared size and creation time: what ersd already takes as "the
 * same file"), then, for the rest, by order; an attachment left over is a new
 * occurrence.  A stored document left unpaired is one e-RS no longer lists.
 * With nothing stored this is decision 2's rule: occurrence = index among the
 * attachments with the same id, in order of appearance.
 *
 * Pure: no PAS, no e-RS.  Not here: reading what is stored (adapters), the
 * download (fetch.c), the marks (write.c).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model.h"

/* One document of an attachment id the PAS holds (every revision together),
 * as its latest revision describes it.  Borrowed strings. */
struct occurrence_stored {
        const char *id;        /* the attachment id, whole */
        unsigned occurrence;
        int64_t declared_size; /* -1: none */
        const char *created;   /* NULL or "": none */
        bool fetched;          /* its content is stored */
};

/* Where one listed attachment goes. */
struct occurrence_pick {
        unsigned occurrence;
        /* Paired by its description while another document of its id, stored or
         * listed, is described the same: the description does not tell which is
         * which, so the bytes must (fetch.c downloads it again). */
        bool alike;
};

/*
 * Pairs each attachment src lists (src->attachments[i]) with a document of
 * `stored` (n entries, any order; those of other ids are ignored):
 *   1. in order, each attachment to the lowest occurrence of its id, not yet
 *      paired, that e-RS described the same (declared size and creation time),
 *      preferring one whose content is stored when the attachment is AVAILABLE
 *      and one whose content is not when it is not;
 *   2. in order, each attachment still unpaired to the lowest occurrence of its
 *      id not yet paired;
 *   3. each one left to a new occurrence, one above the highest of its id.
 * ret[i] (src->n_attachments entries) receives attachment i's.  0, or -ENOMEM.
 */
int occurrence_pair(const struct referral *src, const struct occurrence_stored *stored, size_t n,
                    struct occurrence_pick *ret);

/* Whether src lists occurrence `occurrence` of `id`: one of its attachments
 * with that id is that document, by occ (one occurrence per attachment of
 * src, as occurrence_pair() paired them). */
bool occurrence_listed(const struct referral *src, const unsigned *occ, const char *id, unsigned occurrence);
