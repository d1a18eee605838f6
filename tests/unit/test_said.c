/* SPDX-License-Identifier: MIT */
/* What the daemon has said once: each (UBRN, version) pair once, within a bounded memory. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <cmocka.h>

#include "daemon/said.h"

static void test_each_pair_once(void **state) {
        struct said_once *s = calloc(1, sizeof *s);
        (void) state;

        assert_non_null(s);
        assert_true(said_first(s, "300000000001", 4));
        assert_false(said_first(s, "300000000001", 4)); /* the next round: not again */
        assert_true(said_first(s, "300000000001", 5));  /* a newer version listed: said */
        assert_true(said_first(s, "300000000002", 4));  /* another referral */
        assert_false(said_first(s, "300000000002", 4));
        free(s);
}

/* Past SAID_MAX pairs the oldest is forgotten, never the memory grown. */
static void test_memory_is_bounded(void **state) {
        struct said_once *s = calloc(1, sizeof *s);
        char ubrn[16];
        (void) state;

        assert_non_null(s);
        for (int i = 0; i < SAID_MAX; i++) {
                snprintf(ubrn, sizeof ubrn, "3%011d", i);
                assert_true(said_first(s, ubrn, 1));
        }
        assert_false(said_first(s, "300000000000", 1));
        assert_true(said_first(s, "399999999999", 1));  /* pushes out the oldest… */
        assert_true(said_first(s, "300000000000", 1));  /* …which is said again */
        assert_false(said_first(s, "300000000511", 1)); /* the newest are kept */
        assert_int_equal(s->n, SAID_MAX);
        free(s);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_each_pair_once),
                cmocka_unit_test(test_memory_is_bounded),
        };
        return cmocka_run_group_tests_name("said", tests, NULL, NULL);
}
