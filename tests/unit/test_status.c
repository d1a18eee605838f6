/* SPDX-License-Identifier: MIT */
/*
 * daemon/status.c on a SQLite PAS: the daemon's overdue warning is logged
 * once per referral (again only after it left the list), and `ersd status`
 * in every form survives each allocation failing in turn, saying it cannot
 * tell (exit 3) rather than printing half a picture as all well.
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/config.h"
#include "daemon/log.h"
#include "daemon/status.h"
#include "tests/support/failalloc.h"
#include "tests/support/harness.h"

#define UBRN_OVERDUE "300000099902"
#define UBRN_RECENT "300000099903"
#define UBRN_ROUTINE "300000099904"

struct fixture {
        char *dir;
        char connection[600];
        struct config cfg;
        struct pas *pas;
        struct db *db;
};

static void iso_ago(long seconds_ago, char ret[32]) {
        time_t t = time(NULL) - seconds_ago;
        struct tm tm;
        gmtime_r(&t, &tm);
        strftime(ret, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void insert_retry(struct fixture *f, const char *ubrn, const char *priority, long seen_ago) {
        char seen[32];
        iso_ago(seen_ago, seen);
        const char *p[] = { ubrn, priority, seen, seen };
        assert_int_equal(db_exec_with(f->db,
                                 "INSERT INTO ers_retry (ubrn, worklist, entry_version, priority, first_seen_at, "
                                 "attempts, next_attempt_at, parked, reason) "
                                 "VALUES (?, 'cardiology', 1, ?, ?, 2, ?, 0, 'A005: HTTP 503')",
                                 4, p),
                         0);
}

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        char conf[512], st[512];
        struct errbuf e = { { 0 } };

        if (!f || !(f->dir = tmpdir_make()))
                return -1;
        snprintf(conf, sizeof conf, "%s/ersd.conf", f->dir);
        snprintf(st, sizeof st, "%s/state", f->dir);
        snprintf(f->connection, sizeof f->connection, "Driver=SQLite3;Database=%s/pas.db", f->dir);
        if (write_test_config(conf, "http://127.0.0.1:1/referrals", NULL, f->connection, NULL, st,
                              "overdue_after_minutes = 60;") < 0 ||
            config_load(conf, NULL, NULL, &f->cfg) < 0 ||
            pas_open(f->connection, "auto", &f->pas, &e) < 0 || pas_init_schema(f->pas, &e) < 0 ||
            !(f->db = db_open(f->connection))) {
                fprintf(stderr, "setup: %s\n", e.msg);
                return -1;
        }
        insert_retry(f, UBRN_OVERDUE, "URGENT", 2 * 3600);     /* overdue after 60 minutes */
        insert_retry(f, UBRN_RECENT, "TWO_WEEK_WAIT", 10 * 60); /* not yet */
        insert_retry(f, UBRN_ROUTINE, "ROUTINE", 5 * 3600);    /* never */
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        db_close(f->db);
        pas_close(f->pas);
        config_free(&f->cfg);
        tmpdir_remove(f->dir);
        free(f->dir);
        free(f);
        return 0;
}

/* What status_warn_overdue() logged (stderr, caught in a file). */
static char *warn_overdue(struct fixture *f, struct overdue_memory *m) {
        char path[600];
        int fd, saved;
        char *text;
        long n;
        FILE *in;

        snprintf(path, sizeof path, "%s/stderr", f->dir);
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        fflush(stderr);
        saved = dup(STDERR_FILENO);
        assert_true(saved >= 0);
        dup2(fd, STDERR_FILENO);
        status_warn_overdue(f->pas, &f->cfg, m);
        fflush(stderr);
        dup2(saved, STDERR_FILENO);
        close(saved);
        close(fd);
        in = fopen(path, "r");
        assert_non_null(in);
        fseek(in, 0, SEEK_END);
        n = ftell(in);
        rewind(in);
        text = calloc(1, (size_t) n + 1);
        assert_non_null(text);
        assert_int_equal(fread(text, 1, (size_t) n, in), (size_t) n);
        fclose(in);
        fputs(text, stderr); /* into the test's output too, for the output scan */
        return text;
}

static void test_overdue_warned_once_per_referral(void **state) {
        struct fixture *f = *state;
        struct overdue_memory m = { 0 };

        char *text = warn_overdue(f, &m);
        assert_non_null(strstr(text, "warning: UBRN " UBRN_OVERDUE ": URGENT referral seen on worklist cardiology"));
        assert_non_null(strstr(text, "is not in the PAS after 1")); /* 120 minutes */
        assert_null(strstr(text, UBRN_RECENT));
        assert_null(strstr(text, UBRN_ROUTINE));
        assert_int_equal(m.n, 1);
        free(text);

        text = warn_overdue(f, &m); /* the next round: nothing new */
        assert_string_equal(text, "");
        assert_int_equal(m.n, 1);
        free(text);

        assert_int_equal(db_exec(f->db, "DELETE FROM ers_retry WHERE ubrn = '" UBRN_OVERDUE "'"), 0);
        text = warn_overdue(f, &m); /* written: it leaves the list */
        assert_string_equal(text, "");
        assert_int_equal(m.n, 0);
        free(text);

        insert_retry(f, UBRN_OVERDUE, "URGENT", 2 * 3600); /* failing again later: warned again */
        text = warn_overdue(f, &m);
        assert_non_null(strstr(text, "UBRN " UBRN_OVERDUE ": URGENT referral"));
        free(text);
        overdue_memory_free(&m);
        assert_null(m.ubrns);
}

/* Every allocation of status_warn_overdue() failing in turn: the memory kept
 * as it was, nothing leaked (the sanitizer runs say so). */
static void test_overdue_every_allocation_failing(void **state) {
        struct fixture *f = *state;
        struct overdue_memory m = { 0 };

        assert_true(failalloc_linked()); /* the Makefile links every unit test with it */
        long n;
        for (n = 0;; n++) {
                failalloc_arm(n);
                status_warn_overdue(f->pas, &f->cfg, &m);
                if (!failalloc_disarm())
                        break;
                assert_int_equal(m.n, 0); /* untouched: still empty */
        }
        assert_true(n > 0); /* some allocation did fail */
        assert_int_equal(m.n, 1);
        overdue_memory_free(&m);
}

/* ersd status in each form, with each allocation failing in turn: exit 3 and
 * output that says the database could not be read, or the true answer (4). */
static void test_status_every_allocation_failing(void **state) {
        struct fixture *f = *state;
        static const enum status_format formats[] = { STATUS_FORMAT_TEXT, STATUS_FORMAT_JSON,
                                                      STATUS_FORMAT_PROMETHEUS };
        static const char *const unknown[] = { "UNKNOWN", "\"database_ok\":false", "ersd_database_up 0" };
        char path[600];

        assert_true(failalloc_linked()); /* the Makefile links every unit test with it */
        snprintf(path, sizeof path, "%s/status.out", f->dir);
        for (size_t k = 0; k < sizeof formats / sizeof formats[0]; k++) {
                long n;
                for (n = 0;; n++) {
                        FILE *out = fopen(path, "w+e");
                        char text[8192] = "";
                        assert_non_null(out);
                        failalloc_arm(n);
                        int r = status_run(&f->cfg, formats[k], out);
                        bool failed = failalloc_disarm();
                        rewind(out);
                        size_t len = fread(text, 1, sizeof text - 1, out);
                        text[len] = '\0';
                        fclose(out);
                        if (!failed) {
                                assert_int_equal(r, STATUS_OVERDUE);
                                break;
                        }
                        assert_int_equal(r, STATUS_UNKNOWN);
                        if (!strstr(text, unknown[k]))
                                fail_msg("allocation %ld failing: no '%s' in:\n%s", n, unknown[k], text);
                }
                assert_true(n >= 3); /* pas_open, the worklists, the lists */
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_overdue_warned_once_per_referral),
                cmocka_unit_test(test_overdue_every_allocation_failing),
                cmocka_unit_test(test_status_every_allocation_failing),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
