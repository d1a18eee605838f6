/* SPDX-License-Identifier: MIT */
/*
 * The rule of document identity for an attachment id listed more than once
 * (daemon/occurrence.h; docs/schema.md, "Document identity"): each listed
 * attachment paired with a stored document of its id, by its description
 * first, then by order, the rest new occurrences.  Pure: no PAS, no e-RS.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "daemon/occurrence.h"

#define MAX 6

/* An attachment as A005 lists it: its id, declared size, creation time, AVAILABLE or not. */
struct listed {
        const char *id;
        int64_t size;
        const char *created;
        bool pending;
};

struct pair_case {
        const char *name;
        struct listed listed[MAX];          /* up to the first without an id */
        struct occurrence_stored stored[MAX]; /* up to the first without an id */
        unsigned want[MAX];                 /* the occurrence of each listed one */
        bool alike[MAX];                    /* whether its bytes must decide */
};

static const struct pair_case CASES[] = {
        { "nothing stored: the order (decision 2)",
          .listed = { { "A", 1, "t1", false }, { "B", 2, "t2", false }, { "A", 3, "t3", false }, { "A", 4, "t4", false } },
          .want = { 0, 0, 1, 2 } },
        { "as stored: each its own",
          .listed = { { "A", 1, "t1", false }, { "A", 2, "t2", false } },
          .stored = { { "A", 0, 1, "t1", true }, { "A", 1, 2, "t2", true } },
          .want = { 0, 1 } },
        { "the first gone: the one left is the second, by its description",
          .listed = { { "A", 2, "t2", false } },
          .stored = { { "A", 0, 1, "t1", true }, { "A", 1, 2, "t2", true } },
          .want = { 1 } },
        { "the second gone",
          .listed = { { "A", 1, "t1", false } },
          .stored = { { "A", 0, 1, "t1", true }, { "A", 1, 2, "t2", true } },
          .want = { 0 } },
        { "listed in the other order: nothing moves",
          .listed = { { "A", 2, "t2", false }, { "A", 1, "t1", false } },
          .stored = { { "A", 1, 2, "t2", true }, { "A", 0, 1, "t1", true } },
          .want = { 1, 0 } },
        { "revised (described anew): the stored one by order, as with an id listed once",
          .listed = { { "A", 9, "t9", false } },
          .stored = { { "A", 0, 1, "t1", true } },
          .want = { 0 } },
        { "the first gone and a new one: the new one takes the place left, by order",
          .listed = { { "A", 2, "t2", false }, { "A", 9, "t9", false } },
          .stored = { { "A", 0, 1, "t1", true }, { "A", 1, 2, "t2", true } },
          .want = { 1, 0 } },
        { "one added: a new occurrence above the highest",
          .listed = { { "A", 9, "t9", false }, { "A", 1, "t1", false } },
          .stored = { { "A", 0, 1, "t1", true } },
          .want = { 1, 0 } },
        { "a removed one counts: a new occurrence above it",
          .listed = { { "A", 1, "t1", false }, { "A", 8, "t8", false }, { "A", 9, "t9", false } },
          .stored = { { "A", 0, 1, "t1", true }, { "A", 2, 3, "t3", true } },
          .want = { 0, 2, 3 } },
        { "absent size and creation are a description too",
          .listed = { { "A", -1, NULL, false } },
          .stored = { { "A", 0, 1, "t1", true }, { "A", 1, -1, "", false } },
          .want = { 1 } },
        { "other ids and kinds of numbering apart",
          .listed = { { "B", 5, "t5", false }, { "A", 2, "t2", false } },
          .stored = { { "A", 0, 1, "t1", true }, { "A", 1, 2, "t2", true }, { "B", 0, 5, "t5", true } },
          .want = { 0, 1 } },
        { "described alike: the lowest, and the bytes decide",
          .listed = { { "A", 1, "t", false } },
          .stored = { { "A", 0, 1, "t", true }, { "A", 1, 1, "t", true } },
          .want = { 0 },
          .alike = { true } },
        { "described alike, one still scanned: the one not fetched for the one not available",
          .listed = { { "A", 1, "t", true } },
          .stored = { { "A", 0, 1, "t", true }, { "A", 1, 1, "t", false } },
          .want = { 1 },
          .alike = { true } },
        { "listed alike twice, stored once: both checked by their bytes where stored",
          .listed = { { "A", 1, "t", false }, { "A", 1, "t", false } },
          .stored = { { "A", 0, 1, "t", true } },
          .want = { 0, 1 },
          .alike = { true, false } },
        { "alike under another id does not count",
          .listed = { { "A", 1, "t", false } },
          .stored = { { "A", 0, 1, "t", true }, { "B", 0, 1, "t", true } },
          .want = { 0 } },
};

static void test_pairing(void **state) {
        (void) state;
        for (size_t c = 0; c < sizeof CASES / sizeof CASES[0]; c++) {
                const struct pair_case *pc = &CASES[c];
                struct attachment atts[MAX];
                struct occurrence_pick picks[MAX];
                unsigned occ[MAX];
                size_t n_l = 0, n_s = 0;

                memset(atts, 0, sizeof atts);
                while (n_l < MAX && pc->listed[n_l].id) {
                        atts[n_l] = (struct attachment){
                                .id = (char *) pc->listed[n_l].id,
                                .declared_size = pc->listed[n_l].size,
                                .creation = (char *) pc->listed[n_l].created,
                                .availability = pc->listed[n_l].pending ? AVAILABILITY_PENDING
                                                                        : AVAILABILITY_AVAILABLE,
                        };
                        n_l++;
                }
                while (n_s < MAX && pc->stored[n_s].id)
                        n_s++;
                struct referral r = { .attachments = atts, .n_attachments = n_l };
                assert_int_equal(occurrence_pair(&r, pc->stored, n_s, picks), 0);
                for (size_t i = 0; i < n_l; i++) {
                        if (picks[i].occurrence != pc->want[i] || picks[i].alike != pc->alike[i])
                                fail_msg("%s: attachment %zu: occurrence %u%s, expected %u%s", pc->name, i,
                                         picks[i].occurrence, picks[i].alike ? " (alike)" : "", pc->want[i],
                                         pc->alike[i] ? " (alike)" : "");
                        occ[i] = picks[i].occurrence;
                }
                /* what is stored and not paired is what e-RS no longer lists */
                for (size_t k = 0; k < n_s; k++) {
                        bool paired = false;
                        for (size_t i = 0; i < n_l; i++)
                                paired |= strcmp(atts[i].id, pc->stored[k].id) == 0 &&
                                          occ[i] == pc->stored[k].occurrence;
                        if (occurrence_listed(&r, occ, pc->stored[k].id, pc->stored[k].occurrence) != paired)
                                fail_msg("%s: occurrence_listed(%s, %u) is not %d", pc->name, pc->stored[k].id,
                                         pc->stored[k].occurrence, paired);
                }
        }
}

/* Nothing listed: nothing paired, whatever is stored. */
static void test_nothing_listed(void **state) {
        const struct occurrence_stored stored[] = { { "A", 0, 1, "t1", true } };
        struct referral r = { .n_attachments = 0 };
        struct occurrence_pick pick;

        (void) state;
        assert_int_equal(occurrence_pair(&r, stored, 1, &pick), 0);
        assert_false(occurrence_listed(&r, NULL, "A", 0));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_pairing),
                cmocka_unit_test(test_nothing_listed),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
