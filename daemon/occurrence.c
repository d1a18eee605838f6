/* SPDX-License-Identifier: MIT */
/*
 * The pairing of a referral's listed attachments with the documents the PAS
 * holds for their ids (occurrence.h).  Pure.  Not here: what is stored
 * (adapters), what is downloaded (fetch.c), what is marked (write.c).
 */
#include "occurrence.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>

static bool same_id(const char *a, const char *b) {
        return a && b && strcmp(a, b) == 0;
}

/* As plan_document() (fetch.c) takes "the same file": the declared size and
 * the creation time e-RS states, absent equal to absent. */
static bool described_same(const struct attachment *a, const struct occurrence_stored *s) {
        return a->declared_size == s->declared_size &&
               strcmp(a->creation ? a->creation : "", s->created ? s->created : "") == 0;
}

static bool attachments_alike(const struct attachment *a, const struct attachment *b) {
        return a->declared_size == b->declared_size &&
               strcmp(a->creation ? a->creation : "", b->creation ? b->creation : "") == 0;
}

/* Whether another document of a's id, stored (but `chosen`) or listed (but
 * attachment i), is described as a is. */
static bool alike_elsewhere(const struct referral *src, size_t i, const struct occurrence_stored *stored, size_t n,
                            size_t chosen) {
        const struct attachment *a = &src->attachments[i];

        for (size_t k = 0; k < n; k++)
                if (k != chosen && same_id(stored[k].id, a->id) && described_same(a, &stored[k]))
                        return true;
        for (size_t l = 0; l < src->n_attachments; l++)
                if (l != i && same_id(src->attachments[l].id, a->id) && attachments_alike(a, &src->attachments[l]))
                        return true;
        return false;
}

/* Of stored documents of a's id not yet used (and, with `described`, described
 * as a is), the one to pair: the one whose content is stored or not as a is
 * available or not, then the lowest occurrence.  n when none. */
static size_t candidate(const struct attachment *a, const struct occurrence_stored *stored, size_t n,
                        const bool *used, bool described) {
        bool want_fetched = a->availability == AVAILABILITY_AVAILABLE;
        size_t best = n;

        for (size_t k = 0; k < n; k++) {
                if (used[k] || !same_id(stored[k].id, a->id) || (described && !described_same(a, &stored[k])))
                        continue;
                if (best == n) {
                        best = k;
                        continue;
                }
                bool fits = !described || stored[k].fetched == want_fetched;
                bool best_fits = !described || stored[best].fetched == want_fetched;
                if ((fits && !best_fits) ||
                    (fits == best_fits && stored[k].occurrence < stored[best].occurrence))
                        best = k;
        }
        return best;
}

/* The occurrence one above every one of id, stored or picked so far (0 when none). */
static unsigned next_occurrence(const struct referral *src, const struct occurrence_pick *ret, const bool *picked,
                                const struct occurrence_stored *stored, size_t n, const char *id) {
        unsigned next = 0;

        for (size_t k = 0; k < n; k++)
                if (same_id(stored[k].id, id) && stored[k].occurrence >= next && stored[k].occurrence < UINT_MAX)
                        next = stored[k].occurrence + 1;
        for (size_t l = 0; l < src->n_attachments; l++)
                if (picked[l] && same_id(src->attachments[l].id, id) && ret[l].occurrence >= next &&
                    ret[l].occurrence < UINT_MAX)
                        next = ret[l].occurrence + 1;
        return next;
}

int occurrence_pair(const struct referral *src, const struct occurrence_stored *stored, size_t n,
                    struct occurrence_pick *ret) {
        size_t m = src->n_attachments;
        bool *used = calloc(n + 1, sizeof *used);   /* owned: stored[k] paired */
        bool *picked = calloc(m + 1, sizeof *picked); /* owned: attachment i paired */
        int r = 0;

        if (!used || !picked) {
                r = -ENOMEM;
                goto out;
        }
        for (size_t i = 0; i < m; i++)
                ret[i] = (struct occurrence_pick){ .occurrence = 0, .alike = false };
        /* 1. by description */
        for (size_t i = 0; i < m; i++) {
                const struct attachment *a = &src->attachments[i];
                size_t k = a->id ? candidate(a, stored, n, used, true) : n;
                if (k == n)
                        continue;
                used[k] = picked[i] = true;
                ret[i] = (struct occurrence_pick){ .occurrence = stored[k].occurrence,
                                                   .alike = alike_elsewhere(src, i, stored, n, k) };
        }
        /* 2. by order; 3. new */
        for (size_t i = 0; i < m; i++) {
                const struct attachment *a = &src->attachments[i];
                if (picked[i] || !a->id)
                        continue;
                size_t k = candidate(a, stored, n, used, false);
                if (k < n)
                        used[k] = true;
                ret[i].occurrence = k < n ? stored[k].occurrence : next_occurrence(src, ret, picked, stored, n, a->id);
                picked[i] = true;
        }
out:
        free(used);
        free(picked);
        return r;
}

bool occurrence_listed(const struct referral *src, const unsigned *occ, const char *id, unsigned occurrence) {
        for (size_t i = 0; i < src->n_attachments; i++)
                if (same_id(src->attachments[i].id, id) && occ[i] == occurrence)
                        return true;
        return false;
}
