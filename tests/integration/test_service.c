/* SPDX-License-Identifier: MIT */
/*
 * ersd as a systemd service: what it tells the service manager, read from a
 * NOTIFY_SOCKET the test owns (an AF_UNIX datagram socket in a temp directory,
 * as systemd's own), and what SIGTERM in the middle of a sync leaves in the PAS.
 *
 * Each test starts plain `ersd` (loop mode) on a fresh PAS database against one
 * shared mock e-RS, and waits for what ersd says, never for time to pass.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/support/testutil.h"

#define MESSAGES_MAX 4096

struct env {
        struct mock mock;  /* shared by the tests */
        struct mock side;  /* a test's own mock, stopped by the teardown if the test fails */
        const struct mock *target; /* what instance_config points ersd at: &mock unless a test says */
        const char *base_url;      /* or this URL, when a test sets it */
        const char *ers_lines;     /* lines in the ers group (NULL: auth = "none"), when a test sets them */
        char *dir;         /* owned temp directory */
        json_object *manifest;
};

static struct env E;

/* The test's end of NOTIFY_SOCKET, and every datagram ersd sent, in order. */
struct notify {
        int fd;
        char path[600];
        char env[620];               /* "NOTIFY_SOCKET=<path>" */
        char *messages[MESSAGES_MAX]; /* owned */
        size_t n;
};

/* A fresh PAS and configuration for one test, under E.dir/<name>. */
struct instance {
        char dir[512];
        char conf[560];
        char connection[600];
        struct notify notify;
        struct proc proc;
};

static void notify_open(struct notify *n, const char *dir) {
        struct sockaddr_un sa = { .sun_family = AF_UNIX };

        memset(n, 0, sizeof *n);
        snprintf(n->path, sizeof n->path, "%s/notify", dir);
        assert_true(strlen(n->path) < sizeof sa.sun_path);
        memcpy(sa.sun_path, n->path, strlen(n->path) + 1);
        n->fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        assert_true(n->fd >= 0);
        assert_int_equal(bind(n->fd, (struct sockaddr *) &sa, sizeof sa), 0);
        snprintf(n->env, sizeof n->env, "NOTIFY_SOCKET=%s", n->path);
}

static void notify_close(struct notify *n) {
        if (n->fd > 0)
                close(n->fd);
        n->fd = -1;
        for (size_t i = 0; i < n->n; i++)
                free(n->messages[i]);
        n->n = 0;
}

/* True when one line of the datagram is exactly `line`, or starts with it when
 * `line` ends in '=' (an assignment whose value does not matter). */
static bool has_line(const char *msg, const char *line) {
        size_t len = strlen(line);
        bool prefix = len > 0 && line[len - 1] == '=';

        for (const char *p = msg; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL) {
                const char *end = strchr(p, '\n');
                size_t n = end ? (size_t) (end - p) : strlen(p);
                if (prefix ? n >= len && strncmp(p, line, len) == 0 : n == len && strncmp(p, line, len) == 0)
                        return true;
        }
        return false;
}

/* Reads one datagram into n->messages, waiting up to timeout_ms; false when none came. */
static bool notify_read(struct notify *n, int timeout_ms) {
        char buf[4096];
        struct pollfd p = { .fd = n->fd, .events = POLLIN };
        ssize_t got;

        if (poll(&p, 1, timeout_ms) <= 0)
                return false;
        got = recv(n->fd, buf, sizeof buf - 1, 0);
        assert_true(got >= 0);
        assert_true(n->n < MESSAGES_MAX);
        buf[got] = '\0';
        n->messages[n->n] = strdup(buf);
        assert_non_null(n->messages[n->n]);
        n->n++;
        return true;
}

/* Index of the first message at or after `from` that has `line` (see has_line)
 * and, when `also` is not NULL, contains `also`; reads datagrams until one comes.
 * -1 when none came within 60 s (a guard against a hung test, not a wait). */
static long notify_wait_for(struct notify *n, const char *line, const char *also, size_t from) {
        for (size_t i = from;; i++) {
                while (i >= n->n)
                        if (!notify_read(n, 60000))
                                return -1;
                if (has_line(n->messages[i], line) && (!also || strstr(n->messages[i], also)))
                        return (long) i;
        }
}

static void instance_config(struct instance *in, const char *extra) {
        char state[600];

        snprintf(state, sizeof state, "%s/state", in->dir);
        assert_int_equal(write_test_config(in->conf, E.base_url ? E.base_url : (E.target ? E.target : &E.mock)->base_url,
                                           E.ers_lines, in->connection, NULL, state, extra),
                         0);
}

static void instance_start(struct instance *in, const char *name, const char *extra, const char *const *more_env) {
        const char *env[8] = { NULL };
        size_t n = 0;
        struct run r;

        snprintf(in->dir, sizeof in->dir, "%s/%s", E.dir, name);
        assert_int_equal(mkdir(in->dir, 0700), 0);
        snprintf(in->conf, sizeof in->conf, "%s/ersd.conf", in->dir);
        snprintf(in->connection, sizeof in->connection, "Driver=SQLite3;Database=%s/pas.db", in->dir);
        instance_config(in, extra);
        r = run_ersd(in->conf, NULL, ARGS("--init-db"), NULL);
        assert_int_equal(r.status, 0);
        run_free(&r);

        notify_open(&in->notify, in->dir);
        env[n++] = in->notify.env;
        for (size_t i = 0; more_env && more_env[i] && n < 7; i++)
                env[n++] = more_env[i];
        assert_int_equal(ersd_spawn_env(in->conf, env, &in->proc), 0);
}

static void instance_end(struct instance *in) {
        if (in->proc.pid > 0)
                proc_end(&in->proc, SIGKILL);
        notify_close(&in->notify);
}

static int group_setup(void **state) {
        static const char *const args[] = { "--referrals", "40", "--attachments", "2", "--stall-seconds", "2", NULL };
        (void) state;
        E.dir = tmpdir_make();
        if (!E.dir || mock_start(&E.mock, args) < 0)
                return -1;
        E.manifest = mock_get(&E.mock, "/_mock/manifest?hashes=0");
        return E.manifest ? 0 : -1;
}

static int group_teardown(void **state) {
        (void) state;
        json_object_put(E.manifest);
        mock_stop(&E.side);
        mock_stop(&E.mock);
        tmpdir_remove(E.dir);
        free(E.dir);
        return 0;
}

/* READY=1 once checked, STATUS= after the round with its result and the next
 * round time, RELOADING=1 (with MONOTONIC_USEC=) then READY=1 around each
 * SIGHUP, a good file or a bad one, and STOPPING=1 on SIGTERM. */
static void test_notify_lifecycle(void **state) {
        struct instance in;
        long ready, status, reloading, again, stopping;
        (void) state;

        instance_start(&in, "lifecycle", NULL, NULL);
        ready = notify_wait_for(&in.notify, "READY=1", NULL, 0);
        assert_true(ready >= 0);
        status = notify_wait_for(&in.notify, "STATUS=", "sync done: referrals ", 0);
        assert_true(status > ready); /* READY=1 before the first round, not after it */
        assert_non_null(strstr(in.notify.messages[status], "next round at "));
        assert_non_null(strstr(in.notify.messages[status], "; next worklist poll 20")); /* "2026-11-24 07:00 GMT" */
        assert_non_null(strstr(in.notify.messages[status], " 0 failed;"));
        assert_true(proc_wait_for(&in.proc, 1, "ersd: sync done", 0) >= 0);

        /* A good reload. */
        kill(in.proc.pid, SIGHUP);
        reloading = notify_wait_for(&in.notify, "RELOADING=1", NULL, (size_t) status + 1);
        assert_true(reloading > status);
        assert_true(has_line(in.notify.messages[reloading], "MONOTONIC_USEC="));
        again = notify_wait_for(&in.notify, "READY=1", NULL, (size_t) reloading + 1);
        assert_true(again > reloading);
        assert_true(proc_wait_for(&in.proc, 2, "configuration reloaded", 0) >= 0);

        /* A bad file: refused, the old one runs on, and systemd hears it is ready again. */
        assert_int_equal(write_text(in.conf, "ers: { base_url = 12; };\n", 0600), 0);
        kill(in.proc.pid, SIGHUP);
        reloading = notify_wait_for(&in.notify, "RELOADING=1", NULL, (size_t) again + 1);
        assert_true(reloading > again);
        assert_true(notify_wait_for(&in.notify, "READY=1", NULL, (size_t) reloading + 1) > reloading);
        assert_true(proc_wait_for(&in.proc, 2, "reload refused", 0) >= 0);

        kill(in.proc.pid, SIGTERM);
        stopping = notify_wait_for(&in.notify, "STOPPING=1", NULL, 0);
        assert_true(stopping > reloading);
        assert_int_equal(proc_end(&in.proc, SIGTERM), 0);
        /* Nothing after STOPPING=1 says ready again. */
        for (size_t i = (size_t) stopping + 1; i < in.notify.n; i++)
                assert_false(has_line(in.notify.messages[i], "READY=1"));
        instance_end(&in);
}

/* With WATCHDOG_USEC (and WATCHDOG_PID naming ersd), WATCHDOG=1 comes during the
 * round (between referrals) and keeps coming while ersd waits for the next one. */
static void test_watchdog(void **state) {
        static const char *const env[] = { "WATCHDOG_USEC=20000", "WATCHDOG_PID=self", NULL };
        struct instance in;
        long ready, status, ping;
        (void) state;

        instance_start(&in, "watchdog", NULL, env);
        ready = notify_wait_for(&in.notify, "READY=1", NULL, 0);
        assert_true(ready >= 0);
        status = notify_wait_for(&in.notify, "STATUS=", "sync done: referrals ", (size_t) ready);
        assert_true(status > ready);
        /* During the round: 40 referrals and a 20 MiB attachment take far longer than 5 ms. */
        ping = notify_wait_for(&in.notify, "WATCHDOG=1", NULL, (size_t) ready);
        assert_true(ping > ready && ping < status);
        /* While waiting (poll_interval is 300 s): at half the interval, again and again. */
        ping = (long) status;
        for (int i = 0; i < 5; i++) {
                ping = notify_wait_for(&in.notify, "WATCHDOG=1", NULL, (size_t) ping + 1);
                assert_true(ping > status);
        }
        /* Close our end first: a manager that went away must not hold ersd up. */
        notify_close(&in.notify);
        assert_int_equal(proc_end(&in.proc, SIGTERM), 0);
        instance_end(&in);
}

/* Without WATCHDOG_USEC there is no WATCHDOG=1 at all. */
static void test_no_watchdog_without_watchdog_usec(void **state) {
        struct instance in;
        long stopping;
        (void) state;

        instance_start(&in, "nowatchdog", NULL, NULL);
        assert_true(notify_wait_for(&in.notify, "STATUS=", "sync done: referrals ", 0) >= 0);
        kill(in.proc.pid, SIGTERM);
        stopping = notify_wait_for(&in.notify, "STOPPING=1", NULL, 0);
        assert_true(stopping >= 0);
        assert_int_equal(proc_end(&in.proc, SIGTERM), 0);
        for (size_t i = 0; i < in.notify.n; i++)
                assert_false(has_line(in.notify.messages[i], "WATCHDOG=1"));
        instance_end(&in);
}

/* A reload whose file includes a FIFO (by a relative path): refused at once
 * with one line naming the @include, the running configuration kept, and
 * SIGTERM still ends ersd (libconfig's own open of the FIFO blocked the
 * reload for ever, and with it the signal handling). */
static void test_reload_with_a_fifo_included(void **state) {
        struct instance in;
        char path[600];
        FILE *f;
        (void) state;

        instance_start(&in, "fifo", NULL, NULL);
        assert_true(notify_wait_for(&in.notify, "STATUS=", "sync done: referrals ", 0) >= 0);
        snprintf(path, sizeof path, "%s/fifo.conf", in.dir);
        assert_int_equal(mkfifo(path, 0600), 0);
        f = fopen(in.conf, "a");
        assert_non_null(f);
        fputs("@include \"fifo.conf\"\n", f);
        assert_int_equal(fclose(f), 0);

        size_t from = in.proc.err_len;
        kill(in.proc.pid, SIGHUP);
        if (proc_wait_for(&in.proc, 2, "reload refused", from) < 0) {
                instance_end(&in); /* SIGKILL: SIGTERM would not end it */
                fail_msg("no 'reload refused' within 60 s of SIGHUP: the reload is stuck on the FIFO");
        }
        if (!strstr(in.proc.err + from, "@include \"fifo.conf\": cannot read: not a regular file"))
                fail_msg("expected the @include named: %s", in.proc.err + from);
        assert_int_equal(proc_end(&in.proc, SIGTERM), 0);
        instance_end(&in);
}

/* Asserts that `path` gives group and others no permission at all. */
static void assert_private(const char *path) {
        struct stat st;

        if (stat(path, &st) < 0)
                fail_msg("%s: %s", path, strerror(errno));
        if (st.st_mode & (S_IRWXG | S_IRWXO))
                fail_msg("%s has mode %04o: group or others may read it", path, (unsigned) (st.st_mode & 07777));
}

/* Started under umask 022 (as `runuser -u ersd -- ersd --init-db` leaves it),
 * ersd still creates nothing that others can read: the SQLite PAS (made by
 * --init-db), its -wal and -shm (made by the running daemon), the state
 * directory and the spool, all hold patient data. */
static void test_files_private_whatever_the_umask(void **state) {
        struct instance in;
        char path[600];
        mode_t old = umask(022);
        (void) state;

        instance_start(&in, "umask", NULL, NULL);
        umask(old);
        assert_true(notify_wait_for(&in.notify, "STATUS=", "sync done: referrals ", 0) >= 0);
        /* Read while ersd runs: its connection holds the -wal and -shm open. */
        static const char *const files[] = { "pas.db", "pas.db-wal", "pas.db-shm", "state", "state/spool" };
        for (size_t i = 0; i < sizeof files / sizeof files[0]; i++) {
                snprintf(path, sizeof path, "%s/%s", in.dir, files[i]);
                assert_private(path);
        }
        assert_int_equal(proc_end(&in.proc, SIGTERM), 0);
        instance_end(&in);
}

/* Whether a process of the test's user without CAP_SYS_PTRACE may open
 * /proc/PID/mem (as a debugger would).  The kernel lets it for a dumpable
 * process of the same user only, so this tells a dumpable process (one that
 * may leave a core) from one that made itself non-dumpable.  As root, the
 * reader drops CAP_SYS_PTRACE; main() kept it out of every process the test
 * starts, so the reader's capabilities still cover theirs. */
static bool proc_memory_readable(pid_t pid) {
        char path[64];
        int status;
        pid_t child;

        snprintf(path, sizeof path, "/proc/%ld/mem", (long) pid);
        child = fork();
        assert_true(child >= 0);
        if (child == 0) {
                struct __user_cap_header_struct h = { .version = _LINUX_CAPABILITY_VERSION_3 };
                struct __user_cap_data_struct d[2];

                if (geteuid() == 0) {
                        if (syscall(SYS_capget, &h, d) < 0)
                                _exit(3);
                        d[0].effective &= ~(1u << CAP_SYS_PTRACE);
                        d[0].permitted &= ~(1u << CAP_SYS_PTRACE);
                        if (syscall(SYS_capset, &h, d) < 0)
                                _exit(3);
                }
                int fd = open(path, O_RDONLY | O_CLOEXEC);
                _exit(fd >= 0 ? 0 : errno == EACCES || errno == EPERM ? 1 : 2);
        }
        assert_int_equal(waitpid(child, &status, 0), child);
        assert_true(WIFEXITED(status));
        if (WEXITSTATUS(status) > 1)
                fail_msg("could not ask whether %s is readable (%d)", path, WEXITSTATUS(status));
        return WEXITSTATUS(status) == 0;
}

/* ersd makes itself non-dumpable before it reads a secret: a crash leaves no
 * core (which would hold the bearer token and NHS numbers), and no other
 * process of its user may read its memory.  The mock, started the same way,
 * is the control: dumpable, so readable. */
static void test_not_dumpable(void **state) {
        struct instance in;
        (void) state;

        assert_true(proc_memory_readable(E.mock.pid));
        instance_start(&in, "dumpable", NULL, NULL);
        assert_true(notify_wait_for(&in.notify, "READY=1", NULL, 0) >= 0);
        if (proc_memory_readable(in.proc.pid))
                fail_msg("ersd is dumpable: a crash may write a core holding secrets and patient data");
        assert_int_equal(proc_end(&in.proc, SIGTERM), 0);
        instance_end(&in);
}

static int cmp_str(const void *a, const void *b) {
        return strcmp(*(const char *const *) a, *(const char *const *) b);
}

/*
 * SIGTERM while a referral's attachment is half downloaded (the object store
 * stalls it): ersd finishes nothing half-way.  Every referral in the ledger is
 * in the PAS with all its documents, each document whole (its parts hash to its
 * SHA-256 and add up to its size); the referral in hand is absent; no document
 * belongs to a referral the ledger does not have.
 */
static void test_sigterm_during_sync_leaves_nothing_half_written(void **state) {
        json_object *refs = json_object_object_get(E.manifest, "referrals");
        const char *ubrns[512];
        const char *stalled = NULL;
        size_t n = 0;
        struct instance in;
        struct db *db;
        char fault[256], needle[64];
        (void) state;

        /* The referral in the middle of the round (ersd goes in UBRN order) with an attachment to fetch. */
        for (size_t i = 0; i < json_object_array_length(refs) && n < 512; i++) {
                json_object *m = json_object_array_get_idx(refs, i);
                if (json_object_get_boolean(json_object_object_get(m, "worklisted")))
                        ubrns[n++] = jstr(m, "ubrn");
        }
        qsort(ubrns, n, sizeof *ubrns, cmp_str);
        for (size_t i = n / 2; i < n && !stalled; i++) {
                json_object *m = NULL;
                for (size_t k = 0; k < json_object_array_length(refs); k++)
                        if (strcmp(jstr(json_object_array_get_idx(refs, k), "ubrn"), ubrns[i]) == 0)
                                m = json_object_array_get_idx(refs, k);
                json_object *atts = json_object_object_get(m, "attachments");
                for (size_t a = 0; a < json_object_array_length(atts); a++)
                        if (strcmp(jstr(json_object_array_get_idx(atts, a), "availability"), "AVAILABLE") == 0)
                                stalled = ubrns[i];
        }
        assert_non_null(stalled);
        assert_int_equal(mock_post(&E.mock, "/_mock/fault/clear"), 200);
        assert_int_equal(mock_post(&E.mock, "/_mock/stats/reset"), 200);
        snprintf(fault, sizeof fault, "/_mock/fault?endpoint=store&kind=stall&ubrn=%s&count=10", stalled);
        assert_int_equal(mock_post(&E.mock, fault), 200);

        instance_start(&in, "sigterm", "log_level = \"debug\";\n", NULL);
        /* In progress: ersd says it is fetching the stalled referral's document, and the
         * store has begun to serve it (half the body, then nothing). */
        snprintf(needle, sizeof needle, "UBRN %s: fetching ", stalled);
        assert_true(proc_wait_for(&in.proc, 2, needle, 0) >= 0);
        for (int i = 0; stat_count(&E.mock, "faults_served") < 1; i++)
                assert_true(i < 100000); /* a guard: ersd reaches the store within moments */
        kill(in.proc.pid, SIGTERM);
        assert_true(notify_wait_for(&in.notify, "STOPPING=1", NULL, 0) >= 0);
        assert_true(proc_wait_for(&in.proc, 2, "stopped by signal", 0) >= 0);
        assert_int_equal(proc_end(&in.proc, SIGTERM), 0);
        assert_int_equal(mock_post(&E.mock, "/_mock/fault/clear"), 200);

        db = db_open(in.connection);
        assert_non_null(db);
        /* The round stopped: something was written before the stalled referral, it and what follows were not. */
        long long in_ledger = db_int(db, "SELECT COUNT(*) FROM ers_ledger", 0, NULL);
        assert_true(in_ledger >= 1);
        assert_true(in_ledger < (long long) n);
        const char *p[] = { stalled };
        assert_int_equal(db_int(db, "SELECT COUNT(*) FROM ers_ledger WHERE ubrn = ?", 1, p), 0);
        assert_int_equal(db_int(db, "SELECT COUNT(*) FROM ers_referral WHERE ubrn = ?", 1, p), 0);
        assert_int_equal(db_int(db, "SELECT COUNT(*) FROM ers_document WHERE ubrn = ? OR source_ubrn = ?", 2,
                                (const char *const[]){ stalled, stalled }),
                         0);
        /* Every ledger row has its referral at its version, and its letter. */
        assert_int_equal(db_int(db,
                                "SELECT COUNT(*) FROM ers_ledger l LEFT JOIN ers_referral r ON r.ubrn = l.ubrn "
                                "WHERE r.ubrn IS NULL OR r.version <> l.version",
                                0, NULL),
                         0);
        assert_int_equal(db_int(db,
                                "SELECT COUNT(*) FROM ers_ledger l WHERE NOT EXISTS (SELECT 1 FROM ers_document d "
                                "WHERE d.ubrn = l.ubrn AND d.kind = 'CRI')",
                                0, NULL),
                         0);
        /* Every referral belongs to a ledger row, its own or (a related referral) that of
         * the referral that lists it; every document to a ledger row. */
        assert_int_equal(db_int(db,
                                "SELECT COUNT(*) FROM ers_referral r WHERE NOT EXISTS "
                                "(SELECT 1 FROM ers_ledger l WHERE l.ubrn = r.ubrn) AND NOT EXISTS "
                                "(SELECT 1 FROM ers_referral_related rr JOIN ers_ledger l ON l.ubrn = rr.ubrn "
                                "WHERE rr.related_ubrn = r.ubrn)",
                                0, NULL),
                         0);
        assert_int_equal(db_int(db,
                                "SELECT COUNT(*) FROM ers_document d WHERE NOT EXISTS "
                                "(SELECT 1 FROM ers_ledger l WHERE l.ubrn = d.ubrn)",
                                0, NULL),
                         0);
        /* Each ledger row has every attachment the mock lists for it, and every fetched
         * document is whole: its parts add up to its size and hash to its SHA-256. */
        for (size_t i = 0; i < json_object_array_length(refs); i++) {
                json_object *m = json_object_array_get_idx(refs, i);
                const char *q[] = { jstr(m, "ubrn"), jstr(m, "ubrn") };
                if (db_int(db, "SELECT COUNT(*) FROM ers_ledger WHERE ubrn = ?", 1, q) != 1)
                        continue;
                assert_int_equal(db_int(db,
                                        "SELECT COUNT(*) FROM ers_document WHERE ubrn = ? AND source_ubrn = ? "
                                        "AND kind = 'ATTACHMENT'",
                                        2, q),
                                 json_object_array_length(json_object_object_get(m, "attachments")));
        }
        long long fetched = db_int(db, "SELECT COUNT(*) FROM ers_document WHERE fetch_status = 'FETCHED'", 0, NULL);
        assert_true(fetched >= 1);
        for (long long k = 0; k < fetched; k++) {
                char off[32], hex[65];
                int64_t size;
                snprintf(off, sizeof off, "%lld", k);
                char *id = db_text(db,
                                   "SELECT document_id FROM ers_document WHERE fetch_status = 'FETCHED' "
                                   "ORDER BY document_id LIMIT 1 OFFSET CAST(? AS INTEGER)",
                                   1, (const char *const[]){ off }, NULL);
                assert_non_null(id);
                char *sha = db_text(db, "SELECT sha256 FROM ers_document WHERE document_id = ?", 1,
                                    (const char *const[]){ id }, NULL);
                long long want = db_int(db, "SELECT size_bytes FROM ers_document WHERE document_id = ?", 1,
                                        (const char *const[]){ id });
                assert_int_equal(db_document_sha256(db, id, hex, &size), 0);
                assert_non_null(sha);
                assert_string_equal(hex, sha);
                assert_int_equal(size, want);
                free(sha);
                free(id);
        }
        db_close(db);
        instance_end(&in);
}

/* The worklisted referral synced last (ersd goes in UBRN order) in the side
 * mock's manifest, which the caller owns (*ret_manifest), and its first
 * attachment's size. */
static const char *last_referral(json_object **ret_manifest, long long *ret_size) {
        json_object *manifest = mock_get(&E.side, "/_mock/manifest?hashes=0"), *last_ref = NULL;
        const char *last = NULL;

        assert_non_null(manifest);
        json_object *refs = json_object_object_get(manifest, "referrals");
        for (size_t i = 0; i < json_object_array_length(refs); i++) {
                json_object *m = json_object_array_get_idx(refs, i);
                if (json_object_get_boolean(json_object_object_get(m, "worklisted")) &&
                    (!last || strcmp(jstr(m, "ubrn"), last) > 0)) {
                        last = jstr(m, "ubrn");
                        last_ref = m;
                }
        }
        assert_non_null(last_ref);
        json_object *atts = json_object_object_get(last_ref, "attachments");
        assert_true(json_object_array_length(atts) > 0);
        assert_string_equal(jstr(json_object_array_get_idx(atts, 0), "availability"), "AVAILABLE");
        *ret_size = json_object_get_int64(json_object_object_get(json_object_array_get_idx(atts, 0), "size"));
        *ret_manifest = manifest;
        return last;
}

/*
 * ersd against the side mock with a fault on the store for the last
 * referral's document, WATCHDOG_USEC 2 s (a ping at most every 0.5 s, so the
 * datagrams stay few: without systemd the kernel queues only 10 on our socket
 * before ersd would block) and `ers_lines`: the WATCHDOG=1 pings ersd sent
 * while that download was in hand.  Everything sent before the store began to
 * answer it is read first; the round's STATUS= ends the count.
 */
static size_t pings_during_download(const char *kind, const char *rate, const char *ers_lines) {
        static const char *const args[] = { "--referrals", "6", "--big-attachment", "0", "--stall-seconds", "30", NULL };
        static const char *const env[] = { "WATCHDOG_USEC=2000000", "WATCHDOG_PID=self", NULL };
        json_object *manifest;
        struct instance in;
        char fault[256], needle[64];
        long long size;
        size_t from, pings = 0;
        long status;

        assert_int_equal(mock_start(&E.side, args), 0);
        const char *last = last_referral(&manifest, &size);
        snprintf(fault, sizeof fault, "/_mock/fault?endpoint=store&kind=%s&ubrn=%s&count=10%s%s", kind, last,
                 rate ? "&rate=" : "", rate ? rate : "");
        assert_int_equal(mock_post(&E.side, fault), 200);

        E.target = &E.side;
        E.ers_lines = ers_lines;
        instance_start(&in, kind, "log_level = \"debug\";\n", env);
        E.target = NULL;
        E.ers_lines = NULL;
        snprintf(needle, sizeof needle, "UBRN %s: fetching ", last);
        assert_true(proc_wait_for(&in.proc, 2, needle, 0) >= 0);
        for (int i = 0; stat_count(&E.side, "faults_served") < 1; i++)
                assert_true(i < 100000); /* a guard: ersd reaches the store within moments */
        while (notify_read(&in.notify, 0)) /* everything sent before the download began */
                ;
        from = in.notify.n;
        status = notify_wait_for(&in.notify, "STATUS=", "sync ", from);
        assert_true(status >= 0);
        for (size_t i = from; i < (size_t) status; i++)
                if (has_line(in.notify.messages[i], "WATCHDOG=1"))
                        pings++;
        notify_close(&in.notify);
        assert_int_equal(proc_end(&in.proc, SIGTERM), 0);
        instance_end(&in);
        json_object_put(manifest);
        mock_stop(&E.side);
        return pings;
}

/*
 * A download that takes long but moves (the store sends the document at a
 * few KB a second, for about 4 s) feeds the watchdog: the e-RS client's
 * progress callback pings as its bytes come.
 */
static void test_watchdog_fed_during_a_slow_download(void **state) {
        char rate[32];
        json_object *manifest;
        long long size;
        (void) state;

        /* The document's size, to send it in about 4 s. */
        assert_int_equal(mock_start(&E.side, (const char *const[]){ "--referrals", "6", "--big-attachment", "0", NULL }),
                         0);
        (void) last_referral(&manifest, &size);
        json_object_put(manifest);
        mock_stop(&E.side);
        snprintf(rate, sizeof rate, "%lld", size / 4 > 0 ? size / 4 : 1);

        size_t pings = pings_during_download("slow", rate, "  auth = \"none\";\n  transfer_timeout = 60;\n");
        print_message("%zu WATCHDOG=1 during a download of %lld bytes at %s bytes a second\n", pings, size, rate);
        if (pings < 3)
                fail_msg("%zu WATCHDOG=1 during a 4 s download that moves, expected about two a second", pings);
}

/*
 * A download that is stuck (the store sends half the document, then nothing)
 * does not feed the watchdog: nothing moves, so nothing pings, until its
 * deadline (ers.transfer_timeout 4 s) cuts it and the round goes on.  At most
 * one ping may come from the half that was sent just as the count began.
 */
static void test_watchdog_not_fed_while_a_download_is_stuck(void **state) {
        (void) state;
        size_t pings = pings_during_download("stall", NULL, "  auth = \"none\";\n  transfer_timeout = 4;\n");
        print_message("%zu WATCHDOG=1 while a download was stuck until its deadline\n", pings);
        if (pings > 1)
                fail_msg("%zu WATCHDOG=1 while a download was stuck for 4 s, expected none", pings);
}

/* e-RS not reachable at start (connection refused): a network problem, which
 * every round retries, so ersd says so, is READY, and the round fails. */
static void test_ready_when_e_rs_unreachable(void **state) {
        struct sockaddr_in sa = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof sa;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
        char url[96];
        struct instance in;
        long ready, status;
        (void) state;

        /* A port that is bound but not listening: connections to it are refused. */
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *) &sa, sizeof sa), 0);
        assert_int_equal(getsockname(fd, (struct sockaddr *) &sa, &len), 0);
        snprintf(url, sizeof url, "http://127.0.0.1:%d/referrals", ntohs(sa.sin_port));
        E.base_url = url;
        instance_start(&in, "unreachable", NULL, NULL);
        E.base_url = NULL;
        ready = notify_wait_for(&in.notify, "READY=1", NULL, 0);
        assert_true(ready >= 0);
        assert_true(proc_wait_for(&in.proc, 2, "e-RS origin not reachable", 0) >= 0);
        assert_true(proc_wait_for(&in.proc, 2, "every round tries again", 0) >= 0);
        status = notify_wait_for(&in.notify, "STATUS=", "sync incomplete: ", (size_t) ready);
        assert_true(status > ready);
        assert_non_null(strstr(in.notify.messages[status], "worklists failed 1"));
        assert_int_equal(proc_end(&in.proc, SIGTERM), 0);
        instance_end(&in);
        close(fd);
}

/* A TLS handshake that fails at start (here https to a plain-http port) is a
 * configuration problem: ersd says why and exits 1 without READY=1, before any call. */
static void test_tls_failure_at_start_is_not_ready(void **state) {
        char url[96];
        struct instance in;
        (void) state;

        assert_int_equal(mock_post(&E.mock, "/_mock/stats/reset"), 200);
        snprintf(url, sizeof url, "https://127.0.0.1:%d/referrals", E.mock.api_port);
        E.base_url = url;
        instance_start(&in, "tls", NULL, NULL);
        E.base_url = NULL;
        assert_true(proc_wait_for(&in.proc, 2, "e-RS origin not reachable", 0) >= 0);
        assert_int_equal(proc_wait_for(&in.proc, 2, "\x01", 0), -1); /* until ersd closes stderr: it exits */
        assert_int_equal(proc_end(&in.proc, SIGTERM), 1);
        while (notify_read(&in.notify, 0))
                ;
        for (size_t i = 0; i < in.notify.n; i++)
                assert_false(has_line(in.notify.messages[i], "READY=1"));
        assert_int_equal(stat_count(&E.mock, "A008"), 0);
        instance_end(&in);
}

int main(void) {
        /* As root: no process the tests start gets CAP_SYS_PTRACE (see proc_memory_readable()). */
        if (geteuid() == 0 && prctl(PR_CAPBSET_DROP, CAP_SYS_PTRACE, 0, 0, 0) < 0) {
                perror("prctl(PR_CAPBSET_DROP)");
                return 1;
        }
        static const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_notify_lifecycle),
                cmocka_unit_test(test_watchdog),
                cmocka_unit_test(test_no_watchdog_without_watchdog_usec),
                cmocka_unit_test(test_files_private_whatever_the_umask),
                cmocka_unit_test(test_not_dumpable),
                cmocka_unit_test(test_reload_with_a_fifo_included),
                cmocka_unit_test(test_watchdog_fed_during_a_slow_download),
                cmocka_unit_test(test_watchdog_not_fed_while_a_download_is_stuck),
                cmocka_unit_test(test_ready_when_e_rs_unreachable),
                cmocka_unit_test(test_tls_failure_at_start_is_not_ready),
                cmocka_unit_test(test_sigterm_during_sync_leaves_nothing_half_written),
        };
        return cmocka_run_group_tests_name("service", tests, group_setup, group_teardown);
}
