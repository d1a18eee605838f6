/* SPDX-License-Identifier: MIT */
/*
 * The schedule's pure arithmetic (daemon/schedule.h): poll times, UK time
 * across midnight and both clock changes, the budget's day, backoff with a
 * seeded jitter, the referral retry pace and the request pacing.
 */
#include <errno.h>
#include <inttypes.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "daemon/schedule.h"

/* A UTC instant, written as the test reads it. */
static time_t utc(int y, int mo, int d, int h, int mi) {
        struct tm tm = { .tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi };
        return timegm(&tm);
}

static void test_parse_hhmm(void **state) {
        static const struct {
                const char *text;
                int want; /* -1: refused */
        } cases[] = {
                { "00:00", 0 },  { "07:00", 420 }, { "13:05", 785 }, { "23:59", 1439 }, { "24:00", -1 },
                { "7:00", -1 },  { "07:0", -1 },   { "07-00", -1 },  { "07:60", -1 },   { "", -1 },
                { "07:00 ", -1 }, { "ab:cd", -1 }, { "+7:00", -1 },
        };
        (void) state;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                int got = -1;
                int r = sched_parse_hhmm(cases[i].text, &got);
                if (cases[i].want < 0)
                        assert_int_equal(r, -EINVAL);
                else if (r != 0 || got != cases[i].want)
                        fail_msg("'%s': r %d, got %d, want %d", cases[i].text, r, got, cases[i].want);
        }
}

/* The clock changes of 2026: BST from 29 March 01:00 UTC to 25 October 01:00 UTC. */
static void test_uk_offset_at_the_changes(void **state) {
        (void) state;
        assert_int_equal(sched_uk_offset(utc(2026, 3, 29, 0, 59)), 0);
        assert_int_equal(sched_uk_offset(utc(2026, 3, 29, 1, 0)), 3600);
        assert_int_equal(sched_uk_offset(utc(2026, 10, 25, 0, 59)), 3600);
        assert_int_equal(sched_uk_offset(utc(2026, 10, 25, 1, 0)), 0);
        assert_int_equal(sched_uk_offset(utc(2026, 1, 1, 12, 0)), 0);
        assert_int_equal(sched_uk_offset(utc(2026, 7, 1, 12, 0)), 3600);
        /* 2027: 28 March and 31 October (the last Sunday is the 31st itself). */
        assert_int_equal(sched_uk_offset(utc(2027, 3, 28, 1, 0)), 3600);
        assert_int_equal(sched_uk_offset(utc(2027, 10, 31, 0, 59)), 3600);
        assert_int_equal(sched_uk_offset(utc(2027, 10, 31, 1, 0)), 0);
}

/* Against the system's tz database (package tzdata) every hour from 2020 to
 * 2035: the coded rule and Europe/London agree. */
static void test_uk_offset_matches_tz_database(void **state) {
        (void) state;
        assert_int_equal(setenv("TZ", "Europe/London", 1), 0);
        tzset();
        for (time_t t = utc(2020, 1, 1, 0, 0); t < utc(2035, 1, 1, 0, 0); t += 1800) {
                struct tm tm;
                assert_non_null(localtime_r(&t, &tm));
                if (tm.tm_gmtoff != sched_uk_offset(t))
                        fail_msg("at %" PRId64 ": tz database %ld, sched_uk_offset %d", (int64_t) t,
                                 (long) tm.tm_gmtoff, sched_uk_offset(t));
                char want[16], got[SCHED_UK_DAY_LEN];
                strftime(want, sizeof want, "%Y-%m-%d", &tm);
                sched_uk_day(t, got);
                assert_string_equal(got, want);
        }
        unsetenv("TZ");
        tzset();
}

/* The budget's day turns at UK midnight: 00:00 GMT in winter, 23:00 UTC in summer. */
static void test_uk_day(void **state) {
        char day[SCHED_UK_DAY_LEN];
        (void) state;
        sched_uk_day(utc(2026, 12, 31, 23, 59), day);
        assert_string_equal(day, "2026-12-31");
        sched_uk_day(utc(2027, 1, 1, 0, 0), day);
        assert_string_equal(day, "2027-01-01");
        sched_uk_day(utc(2026, 7, 1, 22, 59), day);
        assert_string_equal(day, "2026-07-01");
        sched_uk_day(utc(2026, 7, 1, 23, 0), day);
        assert_string_equal(day, "2026-07-02");
}

static void test_uk_instant(void **state) {
        (void) state;
        assert_int_equal(sched_uk_instant(2026, 1, 10, 7 * 60), utc(2026, 1, 10, 7, 0));
        assert_int_equal(sched_uk_instant(2026, 7, 10, 7 * 60), utc(2026, 7, 10, 6, 0));
        /* Spring forward: 01:30 does not exist; read as GMT (02:30 BST). 02:00 is BST. */
        assert_int_equal(sched_uk_instant(2026, 3, 29, 90), utc(2026, 3, 29, 1, 30));
        assert_int_equal(sched_uk_instant(2026, 3, 29, 120), utc(2026, 3, 29, 1, 0));
        assert_int_equal(sched_uk_instant(2026, 3, 29, 59), utc(2026, 3, 29, 0, 59));
        /* Fall back: 01:30 happens twice; the first (BST) is taken.  02:00 is GMT again. */
        assert_int_equal(sched_uk_instant(2026, 10, 25, 90), utc(2026, 10, 25, 0, 30));
        assert_int_equal(sched_uk_instant(2026, 10, 25, 120), utc(2026, 10, 25, 2, 0));
        assert_int_equal(sched_uk_instant(2026, 10, 25, 0), utc(2026, 10, 24, 23, 0));
}

struct poll_case {
        const char *what;
        int times[3];
        size_t n;
        time_t now, next, prev;
        unsigned left;
};

static void test_next_and_prev_poll(void **state) {
        const struct poll_case cases[] = {
                { "winter, before the first", { 420, 780 }, 2, utc(2026, 1, 10, 6, 0), utc(2026, 1, 10, 7, 0),
                  utc(2026, 1, 9, 13, 0), 2 },
                { "winter, exactly at one: it is the previous", { 420, 780 }, 2, utc(2026, 1, 10, 7, 0),
                  utc(2026, 1, 10, 13, 0), utc(2026, 1, 10, 7, 0), 1 },
                { "times in any order", { 780, 420 }, 2, utc(2026, 1, 10, 8, 0), utc(2026, 1, 10, 13, 0),
                  utc(2026, 1, 10, 7, 0), 1 },
                { "after the last: across midnight", { 420, 780 }, 2, utc(2026, 1, 10, 23, 30),
                  utc(2026, 1, 11, 7, 0), utc(2026, 1, 10, 13, 0), 0 },
                { "summer: BST", { 420, 780 }, 2, utc(2026, 7, 10, 5, 0), utc(2026, 7, 10, 6, 0),
                  utc(2026, 7, 9, 12, 0), 2 },
                { "summer, across UK midnight (00:30 BST is 23:30 UTC the day before)", { 30 }, 1,
                  utc(2026, 7, 10, 23, 10), utc(2026, 7, 10, 23, 30), utc(2026, 7, 9, 23, 30), 1 },
                { "the night the clocks go forward", { 420 }, 1, utc(2026, 3, 28, 12, 0), utc(2026, 3, 29, 6, 0),
                  utc(2026, 3, 28, 7, 0), 0 },
                { "the night the clocks go back", { 420 }, 1, utc(2026, 10, 24, 12, 0), utc(2026, 10, 25, 7, 0),
                  utc(2026, 10, 24, 6, 0), 0 },
                { "a time the clocks skip", { 90 }, 1, utc(2026, 3, 29, 0, 0), utc(2026, 3, 29, 1, 30),
                  utc(2026, 3, 28, 1, 30), 1 },
                { "a time that happens twice: once", { 90 }, 1, utc(2026, 10, 25, 0, 45), utc(2026, 10, 26, 1, 30),
                  utc(2026, 10, 25, 0, 30), 0 },
        };
        (void) state;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                const struct poll_case *c = &cases[i];
                time_t next = sched_next_poll(c->times, c->n, c->now), prev = sched_prev_poll(c->times, c->n, c->now);
                unsigned left = sched_polls_left_today(c->times, c->n, c->now);
                if (next != c->next || prev != c->prev || left != c->left)
                        fail_msg("%s: next %+" PRId64 " s, prev %+" PRId64 " s off, left %u (want %u)", c->what,
                                 (int64_t) (next - c->next), (int64_t) (prev - c->prev), left, c->left);
        }
}

/* 1, 2, 4 … s capped at 60, each plus less than a quarter, the jitter from the seed. */
static void test_backoff_sequence(void **state) {
        static const double nominal[] = { 1, 2, 4, 8, 16, 32, 60, 60, 60 };
        uint64_t seed = 0x5eed5eed12345678ULL, again = seed;
        (void) state;
        printf("backoff seed 0x%" PRIx64 "\n", seed);
        for (unsigned k = 1; k <= sizeof nominal / sizeof nominal[0]; k++) {
                double d = sched_backoff(k, &seed);
                if (d < nominal[k - 1] || d >= nominal[k - 1] * (1 + SCHED_BACKOFF_JITTER))
                        fail_msg("try %u: %.3f s, expected %.0f s plus under a quarter", k, d, nominal[k - 1]);
        }
        /* The same seed gives the same waits; the jitter really varies. */
        double first = sched_backoff(3, &again), second = sched_backoff(3, &again);
        uint64_t replay = 0x5eed5eed12345678ULL;
        assert_true(sched_backoff(3, &replay) == first);
        assert_true(first != second);
        /* A zero state still gives a jitter. */
        uint64_t zero = 0;
        double z = sched_backoff(1, &zero);
        assert_true(z >= 1.0 && z < 1.25);
        assert_true(zero != 0);
}

static void test_retry_delay(void **state) {
        (void) state;
        assert_int_equal(sched_retry_delay(1, 60, 5, 21600), 60);
        assert_int_equal(sched_retry_delay(2, 60, 5, 21600), 120);
        assert_int_equal(sched_retry_delay(4, 60, 5, 21600), 480);
        assert_int_equal(sched_retry_delay(5, 60, 5, 21600), 21600); /* parked */
        assert_int_equal(sched_retry_delay(50, 60, 5, 21600), 21600);
        assert_int_equal(sched_retry_delay(9, 60, 20, 21600), 60 * 64); /* capped */
        assert_int_equal(sched_retry_delay(40, 60, 100, 21600), 60 * 64);
}

/* 10 per second: spaced a little over 0.1 s, so no second ever holds more than
 * 10 requests, even with a few milliseconds of jitter on the way. */
static void test_rate_limit(void **state) {
        struct rate_limit rl;
        double sent[50], now = 100.0;
        (void) state;
        rate_limit_init(&rl, 10);
        for (int i = 0; i < 50; i++) {
                double wait = rate_limit_take(&rl, now);
                assert_true(wait >= 0);
                now += wait;
                sent[i] = now;
                now += 0.001; /* the request itself */
        }
        for (int i = 0; i < 50; i++) {
                int in_window = 0;
                for (int j = 0; j < 50; j++)
                        in_window += sent[j] >= sent[i] && sent[j] < sent[i] + 1.0 + 0.004;
                assert_true(in_window <= 10);
        }
        /* After a pause the first request goes at once; there is no burst credit. */
        now += 5;
        assert_true(rate_limit_take(&rl, now) == 0);
        assert_true(rate_limit_take(&rl, now) >= 0.1);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_parse_hhmm),       cmocka_unit_test(test_uk_offset_at_the_changes),
                cmocka_unit_test(test_uk_offset_matches_tz_database), cmocka_unit_test(test_uk_day),
                cmocka_unit_test(test_uk_instant),       cmocka_unit_test(test_next_and_prev_poll),
                cmocka_unit_test(test_backoff_sequence), cmocka_unit_test(test_retry_delay),
                cmocka_unit_test(test_rate_limit),
        };
        return cmocka_run_group_tests_name("schedule", tests, NULL, NULL);
}
