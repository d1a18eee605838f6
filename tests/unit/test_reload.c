/* SPDX-License-Identifier: MIT */
/*
 * SIGHUP's reload (daemon/reload.h): the configuration, its e-RS client and
 * its poll schedule replaced together or not at all.  The running daemon's
 * round reads all three (service.c points its context at them), so a reload
 * that fails half-way must leave the old three whole: every allocation of a
 * reload fails in turn (tests/support/failalloc.h), and after each refused
 * reload the three running are the ones from before, consistent and usable
 * (ASan would see a use of what was freed); the reload that goes through
 * replaces all three, consistent with each other.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <syslog.h>
#include <time.h>

#include <cmocka.h>

#include "daemon/config.h"
#include "daemon/ers.h"
#include "daemon/log.h"
#include "daemon/polls.h"
#include "daemon/reload.h"
#include "daemon/schedule.h"
#include "tests/support/failalloc.h"
#include "tests/support/harness.h"

#define NOW ((time_t) 1900000000) /* 2030-03-17T17:46:40Z */

struct fix {
        char *dir;                  /* owned: the temporary directory */
        char path[600];             /* the configuration file */
        struct config cfg;          /* owned contents: what runs */
        struct ers_client *ers;     /* owned */
        struct poll_schedule polls; /* owned contents */
        volatile sig_atomic_t stop;
};

/* The configuration file with one worklist (polled at 07:00) or two (the second at 09:30 and 15:00). */
static void write_conf(const struct fix *f, int worklists) {
        char text[2048];

        snprintf(text, sizeof text,
                 "ers: {\n"
                 "  base_url = \"http://127.0.0.1:1/referrals\";\n"
                 "  auth = \"none\";\n"
                 "};\n"
                 "worklists = (\n"
                 "  { name = \"cardiology\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"31001\"; "
                 "poll_at = [\"07:00\"]; }%s\n"
                 ");\n"
                 "database: { connection = \"Driver=SQLite3;Database=%s/pas.db\"; };\n"
                 "state_dir = \"%s/state\";\n"
                 "log_level = \"error\";\n",
                 worklists == 2 ? ",\n  { name = \"renal\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = "
                                  "\"31002\"; poll_at = [\"09:30\", \"15:00\"]; }"
                                : "",
                 f->dir, f->dir);
        assert_int_equal(write_text(f->path, text, 0600), 0);
}

static int setup(void **state) {
        struct fix *f = calloc(1, sizeof *f);
        struct errbuf e = { { 0 } };

        if (!f || !(f->dir = tmpdir_make()))
                return -1;
        log_set_level(LOG_CRIT);
        snprintf(f->path, sizeof f->path, "%s/ersd.conf", f->dir);
        write_conf(f, 1);
        if (config_load(f->path, NULL, NULL, &f->cfg) < 0 || ers_client_new(&f->cfg, &f->ers, &e) < 0 ||
            poll_schedule_init(&f->polls, &f->cfg, NULL, NOW, false, &e) < 0) {
                fprintf(stderr, "setup: %s\n", e.msg);
                return -1;
        }
        write_conf(f, 2); /* what each reload reads */
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fix *f = *state;

        poll_schedule_free(&f->polls);
        ers_client_free(f->ers);
        config_free(&f->cfg);
        tmpdir_remove(f->dir);
        free(f->dir);
        free(f);
        return 0;
}

/* What runs is the configuration of `worklists` worklists, with the client `ers` (NULL: any), and a poll
 * schedule planned for exactly those worklists at NOW: whole, and usable as a round uses it. */
static void assert_running(struct fix *f, size_t worklists, const struct ers_client *ers) {
        assert_int_equal(f->cfg.n_worklists, worklists);
        assert_int_equal(f->polls.n, worklists);
        assert_non_null(f->polls.next);
        assert_non_null(f->polls.due);
        if (ers)
                assert_ptr_equal(f->ers, ers);
        for (size_t i = 0; i < worklists; i++) {
                const struct worklist_conf *wl = &f->cfg.worklists[i];
                assert_int_equal(f->polls.next[i], sched_next_poll(wl->poll_at, wl->n_poll_at, NOW));
                assert_false(f->polls.due[i]);
        }
        assert_int_equal(poll_schedule_next(&f->polls), sched_next_poll(f->cfg.worklists[0].poll_at,
                                                                          f->cfg.worklists[0].n_poll_at, NOW));
        ers_client_on_stop(f->ers, &f->stop); /* the client is alive */
}

/* Every allocation of a reload fails in turn: refused, and the three running stay as they were; none
 * failing, all three replaced. */
static void test_reload_all_or_nothing(void **state) {
        struct fix *f = *state;
        long n;

        if (!failalloc_linked())
                skip();
        assert_running(f, 1, f->ers);
        for (n = 0;; n++) {
                const struct ers_client *before = f->ers;
                const bool *due = f->polls.due; /* as the round's context holds it (service.c) */
                failalloc_arm(n);
                int r = reload_config(&f->cfg, &f->ers, &f->polls, NOW, NULL, &f->stop);
                bool failed = failalloc_disarm();
                if (r < 0) {
                        if (!failed)
                                fail_msg("reload refused with no allocation failed: %d", r);
                        assert_false(due[0]); /* what the round reads is still there (ASan) */
                        assert_ptr_equal(f->polls.due, due);
                        assert_running(f, 1, before);
                        continue;
                }
                log_set_level(LOG_CRIT);
                assert_running(f, 2, NULL);
                if (!failed)
                        break; /* the walk is over */
                /* An allocation failure the reload took in its stride: back to one worklist for the next step. */
                write_conf(f, 1);
                assert_int_equal(reload_config(&f->cfg, &f->ers, &f->polls, NOW, NULL, &f->stop), 0);
                log_set_level(LOG_CRIT);
                assert_running(f, 1, NULL);
                write_conf(f, 2);
        }
        assert_true(n > 10); /* the reload's own allocations were walked */
}

/* A file that does not load: refused, the running three kept. */
static void test_reload_of_a_bad_file_keeps_what_runs(void **state) {
        struct fix *f = *state;
        const struct ers_client *before = f->ers;

        assert_int_equal(write_text(f->path, "worklists = oops;\n", 0600), 0);
        assert_int_equal(reload_config(&f->cfg, &f->ers, &f->polls, NOW, NULL, &f->stop), -EINVAL);
        assert_running(f, 1, before);
}

int main(void) {
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_reload_all_or_nothing, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reload_of_a_bad_file_keeps_what_runs, setup, teardown),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
