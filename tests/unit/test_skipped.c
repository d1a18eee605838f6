/* SPDX-License-Identifier: MIT */
/*
 * daemon/skipped.c: what ers_poll.last_result says of a worklist read that
 * skipped malformed entries (bounded to the column, read back by `ersd
 * status`), and the listing handed to the record of who left the worklist.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "daemon/skipped.h"

#define VERSION_WHY "referralRequestVersion is not a non-negative integer"

static void test_poll_result(void **state) {
        struct worklist_skip skips[] = {
                { .index = 5, .ubrn = "300000000005", .why = VERSION_WHY },
                { .index = 9, .ubrn = "", .why = "not an object" },
        };
        struct worklist w = { .n = 6 };
        char buf[256];
        (void) state;

        skipped_poll_result(&w, buf, sizeof buf);
        assert_string_equal(buf, "6 referral(s) listed");
        assert_int_equal(skipped_in_poll_result(buf), 0);

        w.skipped = skips;
        w.n_skipped = 1;
        skipped_poll_result(&w, buf, sizeof buf);
        assert_string_equal(buf, "6 referral(s) listed; 1 malformed entry skipped: entry[5] (UBRN 300000000005): "
                                 VERSION_WHY);
        assert_int_equal(skipped_in_poll_result(buf), 1);

        w.n_skipped = 2;
        skipped_poll_result(&w, buf, sizeof buf);
        assert_string_equal(buf, "6 referral(s) listed; 2 malformed entries skipped, the first: entry[5] (UBRN "
                                 "300000000005): " VERSION_WHY);
        assert_int_equal(skipped_in_poll_result(buf), 2);

        w.skipped = skips + 1;
        w.n_skipped = 1;
        skipped_poll_result(&w, buf, sizeof buf);
        assert_string_equal(buf, "6 referral(s) listed; 1 malformed entry skipped: entry[9]: not an object");

        /* The largest numbers still fit the column (255 bytes), whole. */
        struct worklist_skip big = { .index = SIZE_MAX, .ubrn = "300000000005", .why = VERSION_WHY };
        struct worklist huge = { .n = SIZE_MAX, .skipped = &big, .n_skipped = SIZE_MAX };
        skipped_poll_result(&huge, buf, sizeof buf);
        assert_true(strlen(buf) <= 255);
        assert_non_null(strstr(buf, VERSION_WHY));
        /* and a smaller buffer cuts, never overruns */
        char small[24];
        skipped_poll_result(&huge, small, sizeof small);
        assert_int_equal(strlen(small), sizeof small - 1);
}

/* Any other result reads as nothing skipped. */
static void test_other_results(void **state) {
        static const char *const results[] = {
                "", "12 referral(s) listed", "not read: HTTP 500 (correlation id x)",
                "not read: service 31001 has had its 2 worklist calls for 2026-01-01 (UK day); next poll x",
                "6 referral(s) listed; 2 things", "6 referral(s) listed; -2 malformed entries skipped",
        };
        (void) state;

        assert_int_equal(skipped_in_poll_result(NULL), 0);
        for (size_t i = 0; i < sizeof results / sizeof *results; i++)
                assert_int_equal(skipped_in_poll_result(results[i]), 0);
}

/* The listing: the entries and the skipped ones with a UBRN, sorted by UBRN;
 * none when a skipped one had no readable UBRN. */
static void test_listing(void **state) {
        struct worklist_entry e[2] = { { .ubrn = "300000000002", .version = 1 }, { .ubrn = "300000000009", .version = 4 } };
        const struct worklist_entry *sorted[] = { &e[0], &e[1] };
        struct worklist_skip skips[] = {
                { .index = 0, .ubrn = "300000000005", .why = VERSION_WHY },
                { .index = 3, .ubrn = "300000000001", .why = VERSION_WHY },
                { .index = 4, .ubrn = "", .why = "not an object" },
        };
        struct worklist w = { .n = 2, .skipped = skips, .n_skipped = 2 };
        const struct worklist_entry **listing = NULL;
        struct worklist_entry *extra = NULL;
        size_t n = 0;
        (void) state;

        assert_int_equal(skipped_listing(sorted, 2, &w, &listing, &n, &extra), 0);
        assert_int_equal(n, 4);
        static const char *const want[] = { "300000000001", "300000000002", "300000000005", "300000000009" };
        for (size_t i = 0; i < n; i++)
                assert_string_equal(listing[i]->ubrn, want[i]);
        assert_int_equal(listing[0]->version, -1);
        assert_int_equal(listing[1]->version, 1);
        free(listing);
        free(extra);

        w.n_skipped = 3;
        listing = NULL;
        assert_int_equal(skipped_listing(sorted, 2, &w, &listing, &n, &extra), 1);
        assert_null(listing);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_poll_result),
                cmocka_unit_test(test_other_results),
                cmocka_unit_test(test_listing),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
