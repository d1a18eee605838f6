/* SPDX-License-Identifier: MIT */
/* A lasting condition said once, then at most once every so often, and its end once (daemon/complain.h). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "daemon/complain.h"
#include "daemon/log.h"

static int quiet(void **state) {
        (void) state;
        log_set_level(LOG_EMERG); /* the lines themselves are the callers' texts: not what is tested here */
        return 0;
}

/* The rule, at given instants: first at once, then not before `every` seconds. */
static void test_due_first_then_every(void **state) {
        struct complaint c = { .said = false };
        (void) state;

        assert_true(complaint_due(&c, 60, 1000.0));
        c = (struct complaint){ .said = true, .said_at = 1000.0 };
        assert_false(complaint_due(&c, 60, 1000.0));
        assert_false(complaint_due(&c, 60, 1059.9));
        assert_true(complaint_due(&c, 60, 1060.0));
        assert_false(complaint_due(&c, 0, 1e9)); /* 0: once, until it is over */
}

static void test_complain_once(void **state) {
        struct complaint c = { .said = false };
        (void) state;

        assert_false(complaining(&c));
        assert_true(complain(&c, 0, LOG_NOTICE, NULL, "held by %s", "another"));
        assert_true(complaining(&c));
        assert_false(complain(&c, 0, LOG_NOTICE, NULL, "held by %s", "another"));
        assert_false(complain(&c, 3600, LOG_NOTICE, NULL, "still held")); /* said a moment ago */
}

/* The end is said only after the condition was, and then the next one is said again. */
static void test_release(void **state) {
        struct complaint c = { .said = false };
        (void) state;

        assert_false(complain_release(&c, LOG_NOTICE, NULL, "back")); /* nothing said: nothing to end */
        assert_true(complain(&c, 60, LOG_ERR, NULL, "unreachable"));
        assert_true(complain_release(&c, LOG_NOTICE, NULL, "back"));
        assert_false(complaining(&c));
        assert_false(complain_release(&c, LOG_NOTICE, NULL, "back")); /* once */
        assert_true(complain(&c, 60, LOG_ERR, NULL, "unreachable again"));
}

static void test_forget_says_nothing(void **state) {
        struct complaint c = { .said = false };
        (void) state;

        assert_true(complain(&c, 0, LOG_NOTICE, NULL, "standby"));
        complaint_forget(&c);
        assert_false(complaining(&c));
        assert_false(complain_release(&c, LOG_NOTICE, NULL, "back"));
        assert_true(complain(&c, 0, LOG_NOTICE, NULL, "standby"));
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_due_first_then_every),
                cmocka_unit_test(test_complain_once),
                cmocka_unit_test(test_release),
                cmocka_unit_test(test_forget_says_nothing),
        };
        return cmocka_run_group_tests(tests, quiet, NULL);
}
