/* SPDX-License-Identifier: MIT */
/*
 * daemon/status.c on a SQLite PAS: the daemon's overdue warning is logged
 * once per referral (again only after it left the list), `ersd status`
 * in every form survives each allocation failing in turn, saying it cannot
 * tell (exit 3) rather than printing half a picture as all well, and shows
 * what the database holds (reasons, codes, poll results) by the one rule of
 * daemon/escape.h, the JSON exactly.
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

#include "adapters/pas.h"
#include "daemon/config.h"
#include "daemon/escape.h"
#include "daemon/log.h"
#include "daemon/status.h"
#include "tests/support/failalloc.h"
#include "tests/support/pas_data.h"
#include "tests/support/testutil.h"

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
            pas_open(f->connection, "auto", &f->pas, &e) < 0 || pas_data_init_schema(f->pas, &e) < 0 ||
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

/* All of f, from its start (caller frees). */
static char *read_all(FILE *f) {
        long n;
        char *text;

        fseek(f, 0, SEEK_END);
        n = ftell(f);
        rewind(f);
        text = calloc(1, (size_t) n + 1);
        assert_non_null(text);
        assert_int_equal(fread(text, 1, (size_t) n, f), (size_t) n);
        return text;
}

/* What status_warn_overdue() logged (stderr, caught in a file). */
static char *warn_overdue(struct fixture *f, struct overdue_memory *m) {
        char path[600];
        int fd, saved;
        char *text;
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
        text = read_all(in);
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

/* Text a server or an older ersd could have put in the database: control
 * characters, an SGR, a C1 CSI, a bidi override and isolate, a byte that is
 * not UTF-8, and letters that must stay as they are. */
#define HOSTILE "x\r\nersd: error: forged \x1b[31m \xc2\x9b" "2J \xe2\x80\xae" "fdp.exe \xe2\x81\xa6 \xff caf\xc3\xa9 \xd7\xa9"
/* The same in 19 bytes, for the narrow columns (priority, correlation id). */
#define HOSTILE_SHORT "\x1b[31m\xc2\x9b" "2J\xe2\x80\xae" "x\xe2\x81\xa6\xff\r\n"
#define UBRN_HOSTILE "300000099905"

/* The bytes a terminal acts on, raw: none may be printed. */
static void assert_inert(const char *what, const char *text) {
        for (const unsigned char *p = (const unsigned char *) text; *p; p++) {
                if ((*p < 0x20 && *p != '\n') || *p == 0x7f)
                        fail_msg("%s: raw control byte 0x%02x at %td", what, *p, (const char *) p - text);
                if (p[0] == 0xc2 && p[1] >= 0x80 && p[1] <= 0x9f)
                        fail_msg("%s: raw C1 control at %td", what, (const char *) p - text);
                if (p[0] == 0xe2 && ((p[1] == 0x80 && p[2] >= 0xaa && p[2] <= 0xae) || (p[1] == 0x81 && p[2] >= 0xa6)))
                        fail_msg("%s: raw bidi control at %td", what, (const char *) p - text);
                if (*p == 0xff)
                        fail_msg("%s: raw invalid UTF-8 at %td", what, (const char *) p - text);
        }
}

static char *status_text(struct fixture *f, enum status_format format) {
        char path[600];
        FILE *out;
        char *text;

        snprintf(path, sizeof path, "%s/status.out", f->dir);
        out = fopen(path, "w+e");
        assert_non_null(out);
        status_run(&f->cfg, format, out);
        text = read_all(out);
        fclose(out);
        return text;
}

/* Every field status shows from the database, hostile: the text and the
 * Prometheus forms show it escaped, never raw; the JSON holds it exactly. */
static void test_status_escapes_what_the_database_holds(void **state) {
        struct fixture *f = *state;
        char seen[32];

        iso_ago(600, seen);
        const char *p[] = { UBRN_HOSTILE, HOSTILE_SHORT, seen, HOSTILE_SHORT, HOSTILE, HOSTILE_SHORT };
        assert_int_equal(db_exec_with(f->db,
                                      "INSERT INTO ers_retry (ubrn, worklist, entry_version, priority, first_seen_at, "
                                      "attempts, next_attempt_at, parked, reason, last_sqlstate, correlation_id) "
                                      "VALUES (?, 'cardiology', 1, ?, ?, 3, ?, 1, ?, 'HY000', ?)",
                                      6, p),
                         0);
        const char *q[] = { HOSTILE, HOSTILE_SHORT };
        assert_int_equal(db_exec_with(f->db,
                                      "INSERT INTO ers_poll (worklist, last_poll_at, last_result, last_correlation_id, "
                                      "next_poll_at, referrals) VALUES ('cardiology', '2026-01-01T00:00:00Z', ?, ?, "
                                      "NULL, NULL)",
                                      2, q),
                         0);

        char *text = status_text(f, STATUS_FORMAT_TEXT);
        assert_inert("status", text);
        char shown[256];
        escape_text(HOSTILE, shown, sizeof shown);
        if (!strstr(text, shown))
                fail_msg("status does not show the reason escaped: %s", text);
        assert_non_null(strstr(text, "\\x0d\\x0aersd: error: forged \\x1b[31m \\u009b2J \\u202efdp.exe \\u2066 \\xff caf\xc3\xa9 \xd7\xa9"));
        assert_null(strstr(text, "\nersd: error: forged"));
        free(text);

        text = status_text(f, STATUS_FORMAT_PROMETHEUS);
        assert_inert("status --prometheus", text);
        free(text);

        text = status_text(f, STATUS_FORMAT_JSON);
        assert_inert("status --json", text);
        json_object *o = json_tokener_parse(text);
        assert_non_null(o);
        json_object *parked = json_object_object_get(o, "parked");
        bool found = false;
        for (size_t i = 0; i < json_object_array_length(parked); i++) {
                json_object *w = json_object_array_get_idx(parked, i);
                if (strcmp(json_object_get_string(json_object_object_get(w, "ubrn")), UBRN_HOSTILE) != 0)
                        continue;
                found = true;
                /* exactly what the database holds, but the byte JSON cannot carry (U+FFFD for it) */
                char want[sizeof HOSTILE + 8];
                const char *ff = strchr(HOSTILE, '\xff');
                snprintf(want, sizeof want, "%.*s\xef\xbf\xbd%s", (int) (ff - HOSTILE), HOSTILE, ff + 1);
                assert_string_equal(json_object_get_string(json_object_object_get(w, "reason")), want);
                ff = strchr(HOSTILE_SHORT, '\xff');
                snprintf(want, sizeof want, "%.*s\xef\xbf\xbd%s", (int) (ff - HOSTILE_SHORT), HOSTILE_SHORT, ff + 1);
                assert_string_equal(json_object_get_string(json_object_object_get(w, "priority")), want);
                assert_string_equal(json_object_get_string(json_object_object_get(w, "correlation_id")), want);
        }
        assert_true(found);
        json_object_put(o);
        free(text);

        assert_int_equal(db_exec(f->db, "DELETE FROM ers_retry WHERE ubrn = '" UBRN_HOSTILE "'"), 0);
        assert_int_equal(db_exec(f->db, "DELETE FROM ers_poll"), 0);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_overdue_warned_once_per_referral),
                cmocka_unit_test(test_overdue_every_allocation_failing),
                cmocka_unit_test(test_status_every_allocation_failing),
                cmocka_unit_test(test_status_escapes_what_the_database_holds),
        };
        return cmocka_run_group_tests(tests, setup, teardown);
}
