/* SPDX-License-Identifier: MIT */
#include "schedule.h"

#include <errno.h>
#include <string.h>

#define DAY 86400
#define RATE_LIMIT_MARGIN 1.05 /* requests spaced 5% wider than the rate: network jitter cannot crowd a second */

/* Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's algorithm). */
static int64_t days_from_civil(int64_t y, int m, int d) {
        y -= m <= 2;
        int64_t era = (y >= 0 ? y : y - 399) / 400;
        int64_t yoe = y - era * 400;
        int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
        int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int *ret_y, int *ret_m, int *ret_d) {
        z += 719468;
        int64_t era = (z >= 0 ? z : z - 146096) / 146097;
        int64_t doe = z - era * 146097;
        int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
        int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
        int64_t mp = (5 * doy + 2) / 153;
        int d = (int) (doy - (153 * mp + 2) / 5 + 1);
        int m = (int) (mp < 10 ? mp + 3 : mp - 9);
        *ret_y = (int) (yoe + era * 400 + (m <= 2));
        *ret_m = m;
        *ret_d = d;
}

static int64_t floor_div(int64_t a, int64_t b) {
        return a / b - (a % b != 0 && (a < 0) != (b < 0));
}

/* 01:00 UTC on the last Sunday of `month` (3 or 10) of `year`. */
static time_t last_sunday_0100(int year, int month) {
        int64_t last = days_from_civil(year, month, 31);
        int64_t weekday = ((last + 4) % 7 + 7) % 7; /* 1970-01-01 was a Thursday (4); Sunday is 0 */
        return (time_t) ((last - weekday) * DAY + 3600);
}

int sched_uk_offset(time_t t) {
        int y, m, d;

        civil_from_days(floor_div((int64_t) t, DAY), &y, &m, &d);
        return t >= last_sunday_0100(y, 3) && t < last_sunday_0100(y, 10) ? 3600 : 0;
}

/* The UK calendar date of t. */
static void uk_date(time_t t, int *y, int *m, int *d) {
        civil_from_days(floor_div((int64_t) t + sched_uk_offset(t), DAY), y, m, d);
}

void sched_uk_day(time_t t, char ret[SCHED_UK_DAY_LEN]) {
        int y, m, d;

        uk_date(t, &y, &m, &d);
        ret[0] = (char) ('0' + y / 1000 % 10);
        ret[1] = (char) ('0' + y / 100 % 10);
        ret[2] = (char) ('0' + y / 10 % 10);
        ret[3] = (char) ('0' + y % 10);
        ret[4] = '-';
        ret[5] = (char) ('0' + m / 10);
        ret[6] = (char) ('0' + m % 10);
        ret[7] = '-';
        ret[8] = (char) ('0' + d / 10);
        ret[9] = (char) ('0' + d % 10);
        ret[10] = '\0';
}

time_t sched_uk_instant(int year, int month, int day, int minutes) {
        time_t wall = (time_t) (days_from_civil(year, month, day) * DAY + (int64_t) minutes * 60);

        if (sched_uk_offset(wall - 3600) == 3600)
                return wall - 3600; /* BST; of a time that happens twice, the first */
        return wall;                /* GMT; or a time the clocks skip, read as GMT */
}

int sched_parse_hhmm(const char *s, int *ret_minutes) {
        if (strlen(s) != 5 || s[2] != ':')
                return -EINVAL;
        for (size_t i = 0; i < 5; i++)
                if (i != 2 && (s[i] < '0' || s[i] > '9'))
                        return -EINVAL;
        int h = (s[0] - '0') * 10 + (s[1] - '0'), m = (s[3] - '0') * 10 + (s[4] - '0');
        if (h > 23 || m > 59)
                return -EINVAL;
        *ret_minutes = h * 60 + m;
        return 0;
}

/* The instant of poll time `minutes` on the UK day `offset` days after now's. */
static time_t day_instant(time_t now, int offset, int minutes) {
        int y, m, d;

        uk_date(now, &y, &m, &d);
        civil_from_days(days_from_civil(y, m, d) + offset, &y, &m, &d);
        return sched_uk_instant(y, m, d, minutes);
}

time_t sched_next_poll(const int *minutes, size_t n, time_t now) {
        time_t best = 0;

        for (int day = 0; day <= 2; day++) {
                for (size_t i = 0; i < n; i++) {
                        time_t t = day_instant(now, day, minutes[i]);
                        if (t > now && (best == 0 || t < best))
                                best = t;
                }
                if (best)
                        return best;
        }
        return now + DAY; /* not reached with n ≥ 1 */
}

time_t sched_prev_poll(const int *minutes, size_t n, time_t now) {
        time_t best = 0;

        for (int day = 0; day >= -2; day--) {
                for (size_t i = 0; i < n; i++) {
                        time_t t = day_instant(now, day, minutes[i]);
                        if (t <= now && (best == 0 || t > best))
                                best = t;
                }
                if (best)
                        return best;
        }
        return now - DAY; /* not reached with n ≥ 1 */
}

unsigned sched_polls_left_today(const int *minutes, size_t n, time_t now) {
        char today[SCHED_UK_DAY_LEN], day[SCHED_UK_DAY_LEN];
        unsigned left = 0;

        sched_uk_day(now, today);
        for (size_t i = 0; i < n; i++) {
                time_t t = day_instant(now, 0, minutes[i]);
                sched_uk_day(t, day);
                if (t > now && strcmp(day, today) == 0)
                        left++;
        }
        return left;
}

double sched_backoff(unsigned k, uint64_t *rng) {
        double nominal = 1.0;
        uint64_t x = *rng ? *rng : 0x9e3779b97f4a7c15ULL;

        for (unsigned i = 1; i < k && nominal < SCHED_BACKOFF_CAP; i++)
                nominal *= 2;
        if (nominal > SCHED_BACKOFF_CAP)
                nominal = SCHED_BACKOFF_CAP;
        /* xorshift64 */
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        *rng = x;
        return nominal * (1.0 + SCHED_BACKOFF_JITTER * (double) (x >> 11) / 9007199254740992.0);
}

long sched_retry_delay(unsigned attempts, long first, unsigned park_after, long parked) {
        long d = first;

        if (attempts >= park_after)
                return parked;
        for (unsigned i = 1; i < attempts && d < 64 * first; i++)
                d *= 2;
        return d < 64 * first ? d : 64 * first;
}

void rate_limit_init(struct rate_limit *rl, long per_second) {
        rl->interval = per_second > 0 ? RATE_LIMIT_MARGIN / (double) per_second : 0;
        rl->next = 0;
}

double rate_limit_take(struct rate_limit *rl, double now) {
        double at = rl->next > now ? rl->next : now;

        rl->next = at + rl->interval;
        return at - now;
}
