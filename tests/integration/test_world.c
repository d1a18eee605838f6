/* SPDX-License-Identifier: MIT */
/*
 * The generative whole-system test (issue 13): worlds of e-RS generated from
 * a seed (tests/support/world.h), served by the mock in world mode, synced
 * by $ERSD_BUILD/ersd round after round, with faults at any request and
 * ersd stopped and killed at exact requests; after every round the
 * invariants, and after every round that settled (nothing left to do) the
 * whole PAS against the model (tests/support/world_check.h).
 *
 * A seed's history: epochs of e-RS changing (wgen_next), each epoch a few
 * rounds of chaos (faults aimed at referrals ersd has work for in the world
 * served; a kill at the Nth request, after counting ersd's descriptors and
 * memory there; two ersd on one state_dir; a small file size limit), e-RS
 * changing between them too (revising what a chaos round spoiled), then
 * rounds without faults until one writes nothing, fails nothing it should
 * not and leaves no outbox request waiting, then the check.  From the second
 * epoch on, "the PAS" inserts decisions into ers_outbox (the return path,
 * issue 16: review outcomes and acceptances, now and then on a version left
 * already), with write-back faults at any call, a referral locked until the
 * settle, and kills aimed at the requests about one of them; the mock keeps
 * what the writes applied, and the checks compare with the world as e-RS
 * serves it (tests/support/world_outbox.h).
 *
 * A seed replays: everything served and planned (worlds, faults, kills,
 * limits, requests) is drawn from the seed and the worlds alone, never from
 * what ersd did (the decided version of a request is the PAS's, as a person
 * saw it).  Each seed is planned twice with nothing running (plan_digest())
 * and the history served must be that one: its SHA-256 is printed with the
 * seed's figures.  Time moves on between rounds as it would: every retry and
 * re-check ersd scheduled is made due (its times in ers_retry and ers_ledger
 * set to the past), so no round waits for a clock.  Every round runs under
 * umask 022 and RLIMIT_NOFILE NOFILE_LIMIT, a seed's first referral has 40
 * documents.
 *
 * After every round: ersd did not crash (a signal, a sanitizer report: the
 * line names the frames of ersd's code), hang (ROUND_LIMIT_S) or refuse its
 * configuration; the PAS is consistent (verify_consistent_why); nothing it
 * printed holds a raw control, C1 or bidi character; a failure the object
 * store explained in plain text quotes its words; when it was not killed,
 * the spool holds no partial download and nothing of a referral synced
 * (nothing at all after exit 0); the files it made are private; at a kill
 * point it held at most FD_BASE + FD_PER_LANE x its fetch lanes descriptors.  In a round without faults a
 * malformed worklist entry refuses no worklist.  After a settle, besides the
 * model: a referral whose worklist entry is ahead of A005 has been named in
 * a line with both versions; `ersd sync UBRN` counts the documents still
 * owed; `ersd audit` and `ersd status` print nothing raw; ersd's peak memory
 * has not grown.
 *
 * `make check` runs fixed seeds plus one fresh seed (printed first) on
 * SQLite, PostgreSQL and MariaDB; fewer under ASan.  `make soak`
 * (ERSD_SOAK=1) runs many seeds (SOAK_SEEDS an engine; ERSD_SOAK_SEEDS=N
 * another number, for a soak that must fit a window), bigger worlds, more
 * kills, and ends with its figures.  A failing seed replays from the one command printed with
 * the failure.  ERSD_WORLD_SEED=0x… one seed; ERSD_WORLD_ENGINE=sqlite |
 * postgresql | mariadb one engine; ERSD_WORLD_SLOW=1 also answers that
 * trickle for ever (the mock's `slow` fault; ERSD_WORLD_ROUND_LIMIT=S
 * shortens the wait for a hung round); ERSD_WORLD_TAME=1 only usual shapes
 * (checks the model itself); ERSD_WORLD_CALM=1 the same worlds without faults, kills, a second
 * ersd, a file size limit, write-back faults or locks; ERSD_WORLD_NOFILE=N another RLIMIT_NOFILE (0:
 * none); ERSD_WORLD_REFERRALS=N worlds of N referrals at first;
 * ERSD_WORLD_KEEP=1 keeps the temp directory, every round's log and the
 * history served, a line each (`history`: diff two runs' to see where they part).
 * No output carries a patient identifier: seeds are printed in hex, texts by
 * length and hash, ersd's lines with runs of ten digits masked.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "tests/support/engines.h"
#include "tests/support/testutil.h"
#include "tests/support/verify.h"
#include "tests/support/world.h"
#include "tests/support/world_check.h"
#include "tests/support/world_outbox.h"

#if defined(__SANITIZE_ADDRESS__)
#define INSTRUMENTED 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define INSTRUMENTED 1
#endif
#endif
#ifndef INSTRUMENTED
#define INSTRUMENTED 0
#endif

#define ROUND_LIMIT_S 120      /* a round that runs longer hangs (issue 13, finding 7) */
#define ROUND_LIMIT_SLOW_S 400 /* with `slow` faults: the fixed ersd gives up on each within its deadline */
#define SETTLE_MAX 8           /* rounds without faults before the PAS must have settled */
/* Descriptors ersd may hold at any request, whatever the documents: its own
 * (stdio, the lock, the PAS and its -wal and -shm, the spool directory, …)
 * and, per fetch lane (ers.parallel_fetches, the main client's when there is
 * none), an API and a store connection, each with libcurl's wakeup socket
 * pair, and the one download it writes. */
#define FD_BASE 16
#define FD_PER_LANE 7
#define PARK_AFTER 3
#define NOFILE_LIMIT 48        /* every round runs with this RLIMIT_NOFILE: a referral of 40 documents too */

struct plan {
        unsigned epochs;          /* changes of e-RS per seed */
        unsigned chaos;           /* rounds with faults and kills per epoch */
        unsigned faults_max;      /* faults posted per chaos round at most */
        unsigned kill_permille;   /* chaos rounds that stop and kill ersd at a request */
        unsigned pair_permille;   /* chaos rounds with two ersd on one state_dir */
        unsigned fsize_permille;  /* chaos rounds under a small file size limit */
        struct wgen_plan gen;
};

static const struct plan CHECK = {
        .epochs = 5, .chaos = 2, .faults_max = 3, .kill_permille = 350, .pair_permille = 100, .fsize_permille = 80,
        .gen = { .referrals = 8, .max_docs = 40, .big_every = 40 },
};
static const struct plan CHECK_ASAN = {
        .epochs = 3, .chaos = 1, .faults_max = 2, .kill_permille = 300, .pair_permille = 100, .fsize_permille = 80,
        .gen = { .referrals = 6, .max_docs = 40, .big_every = 60 },
};
static const struct plan SOAK = {
        .epochs = 14, .chaos = 3, .faults_max = 5, .kill_permille = 500, .pair_permille = 100, .fsize_permille = 80,
        .gen = { .referrals = 40, .max_docs = 40, .big_every = 30 },
};

static const uint64_t FIXED_SEEDS[] = { 0x5eed0001, 0x5eed0002 };
#define SOAK_SEEDS 24

/* What the runs did, for the figures line. */
struct figures {
        unsigned seeds, rounds, referrals, documents, faults, kills, mismatches, leftovers, failed_seeds;
        unsigned unlisted;  /* related referrals a new version stopped listing */
        unsigned requests;  /* outbox requests the PAS inserted */
        long most_fds; /* descriptors ersd held at a kill point, at most */
};

static struct engine E;       /* the engine of the group running */
static char work[256];        /* this binary's temp dir: odbcinst.ini, driver logs */
static uint64_t fresh_seed;
static struct figures total;

static const char *build_dir(void)
{
        const char *b = getenv("ERSD_BUILD");
        return b && *b ? b : "build";
}

static bool slow_faults(void)
{
        const char *s = getenv("ERSD_WORLD_SLOW");
        return s && *s && strcmp(s, "0") != 0;
}

/* How long a round may run: ERSD_WORLD_ROUND_LIMIT seconds, else ROUND_LIMIT_S
 * (ROUND_LIMIT_SLOW_S with `slow` faults). */
static double round_limit(void)
{
        const char *s = getenv("ERSD_WORLD_ROUND_LIMIT");
        double v = s && *s ? strtod(s, NULL) : 0;
        return v > 0 ? v : slow_faults() ? ROUND_LIMIT_SLOW_S : ROUND_LIMIT_S;
}

/* The test's own random choices (faults, kills): a stream apart from the generator's,
 * so that changing one never changes the other's worlds. */
static uint64_t chaos_rand(uint64_t *state)
{
        uint64_t x = (*state += 0x9e3779b97f4a7c15ULL);
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
        return x ^ (x >> 31);
}

static unsigned chaos_below(uint64_t *state, unsigned n)
{
        return n ? (unsigned)(chaos_rand(state) % n) : 0;
}

/* ---- one seed's run --------------------------------------------------------------------------- */

struct run_ctx {
        uint64_t seed;
        const struct plan *plan;
        char *dir;               /* owned temp dir */
        char conf[512], conn[700], state[512], spool[600], pas_file[600], world_file[600];
        struct mock mock;
        struct db *db;
        struct wgen *g;
        struct world **history;  /* owned: every world served, oldest first */
        size_t n_history;
        uint64_t chaos;          /* the chaos stream */
        bool nofile;             /* every round under RLIMIT_NOFILE = NOFILE_LIMIT */
        unsigned round;
        unsigned n_chaos;        /* chaos rounds so far (the rounds the history plans) */
        long first_peak_kib, peak_kib; /* ersd's peak RSS: first settle, all */
        struct figures fig;
        char said[1024][16];     /* what say_line() said already (hash prefixes) */
        struct {                 /* every line of ersd's so far naming a UBRN and a version (finding 21: once
                                    a pair is enough) */
                char *p;
                size_t n;
        } lines;
        struct wcheck_seen seen; /* what earlier checks saw the PAS hold (world_check.h) */
        char **left;             /* spool files of synced referrals after the last round (owned) */
        size_t n_left;
        char *spoiled[64];       /* UBRNs the last chaos round aimed its faults (and a kill) at, which e-RS
                                    may revise before the next (point into spoiled_buf) */
        size_t n_spoiled;
        char spoiled_buf[64][13];
        size_t n_said;
        bool dry;                /* planning only: what would be served, no mock, no ersd (plan_digest()) */
        EVP_MD_CTX *history_md;  /* owned: the digest of the history served (note()) */
        FILE *history_log;       /* ERSD_WORLD_KEEP: the history noted, line by line (owned) */
        /* The return path (world_outbox.h). */
        struct wrequest reqs[256]; /* the requests the PAS inserts, in the order planned */
        size_t n_reqs;
        char locked[16][13];     /* referrals e-RS holds locked (423) until the settle */
        size_t n_locked;
        char aim[8][13];         /* this epoch's requests' UBRNs: a kill may be aimed at one */
        size_t n_aim;
        struct world **served;   /* owned: every world as e-RS served it (writes applied), oldest first */
        size_t n_served;
        char *applied;           /* owned: the mock's /_mock/writeback/applied when served[] was last added to */
        struct wrequest_figures outbox;
};

/* The world the generator made last: what the history plans from. */
static const struct world *now(const struct run_ctx *x)
{
        return x->history[x->n_history - 1];
}

/* The world e-RS serves now: now() with what the writes applied (world_served()): what checks compare with. */
static const struct world *served_now(const struct run_ctx *x)
{
        return x->served[x->n_served - 1];
}

/* After a round, and when a world is served: the world as e-RS serves it joins served[] when the
 * writes applied have changed it (force: always). */
static void refresh_served(struct run_ctx *x, bool force)
{
        json_object *a = mock_get(&x->mock, "/_mock/writeback/applied");
        const char *text = a ? json_object_to_json_string(a) : "";

        assert_non_null(a);
        if (force || !x->applied || strcmp(text, x->applied) != 0) {
                struct world **n = realloc(x->served, (x->n_served + 1) * sizeof *n);
                assert_non_null(n);
                x->served = n;
                x->served[x->n_served++] = world_served(now(x), a);
                free(x->applied);
                x->applied = strdup(text);
                assert_non_null(x->applied);
        }
        json_object_put(a);
}

/* A mismatch line, said and counted once a seed however many rounds show it
 * again (the run's own, and the model's through world_check's sink). */
static void say_line(void *userdata, const char *line)
{
        struct run_ctx *x = userdata;
        char hex[65];

        sha256_hex(line, strlen(line), hex);
        for (size_t i = 0; i < x->n_said; i++)
                if (memcmp(x->said[i], hex, 16) == 0)
                        return;
        if (x->n_said < sizeof x->said / sizeof x->said[0])
                memcpy(x->said[x->n_said++], hex, 16);
        x->fig.mismatches++;
        fprintf(stderr, "world: MISMATCH seed 0x%" PRIx64 " round %u: %s\n", x->seed, x->round, line);
}

static void say(struct run_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void say(struct run_ctx *x, const char *fmt, ...)
{
        char line[512];
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        say_line(x, line);
}

/* One line of the history served (a world, a fault, a kill, a limit): into its digest, which the
 * same seed must give whatever ersd does (plan_digest()). */
static void note(struct run_ctx *x, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void note(struct run_ctx *x, const char *fmt, ...)
{
        char line[1024];
        va_list ap;

        va_start(ap, fmt);
        int n = vsnprintf(line, sizeof line - 1, fmt, ap);
        va_end(ap);
        n = n < 0 ? 0 : n > (int)sizeof line - 2 ? (int)sizeof line - 2 : n;
        line[n++] = '\n';
        line[n] = '\0';
        EVP_DigestUpdate(x->history_md, line, (size_t)n);
        if (x->history_log)
                fputs(line, x->history_log);
}

/* The configuration of the world served now: its document limit and fetch lanes, the
 * world's worklists, retries due at once and parking after PARK_AFTER tries. */
static void world_conf(struct run_ctx *x)
{
        const struct world *w = now(x);
        char ers[512], extra[2048];
        int n = snprintf(extra, sizeof extra, "worklists = (\n");

        for (int i = 0; i < WORLD_WORKLISTS; i++)
                n += snprintf(extra + n, sizeof extra - (size_t)n,
                              "  { name = \"%s\"; list_type = \"%s\"; service = \"%s\"; }%s\n", WORLD_WORKLIST[i].name,
                              WORLD_WORKLIST[i].list_type, WORLD_WORKLIST[i].service,
                              i + 1 < WORLD_WORKLISTS ? "," : "");
        snprintf(extra + n, sizeof extra - (size_t)n,
                 ");\nretry_delay = 1;\npark_after = %d;\nparked_retry = 1;\nlog_level = \"info\";\n"
                 "writeback = { enabled = true; actions = [ \"RECORD_REVIEW_OUTCOME\", \"ACCEPT_REFERRAL\" ]; };\n",
                 PARK_AFTER);
        snprintf(ers, sizeof ers,
                 "  max_attachment_mib = %u;\n  parallel_fetches = %u;\n  tries = 2;\n"
                 "  pending_recheck = 1;\n  transfer_timeout = 10;\n",
                 w->max_mib, w->parallel);
        assert_int_equal(write_test_config(x->conf, x->mock.base_url, ers, x->conn, NULL, x->state, extra), 0);
}

static char *slurp(const char *path, size_t *ret_len);

/* Serves world w from now on: it joins the history. */
static void serve(struct run_ctx *x, struct world *w)
{
        char path[700];

        x->history = realloc(x->history, (x->n_history + 1) * sizeof *x->history);
        assert_non_null(x->history);
        x->history[x->n_history++] = w;
        assert_int_equal(world_write(w, x->world_file), 0);
        size_t len;
        char *text = slurp(x->world_file, &len), hex[65];
        sha256_hex(text, len, hex);
        free(text);
        note(x, "world %u: %zu bytes, sha256 %s", w->epoch, len, hex);
        if (x->dry)
                return;
        snprintf(path, sizeof path, "/_mock/world?file=%s", x->world_file);
        assert_int_equal(mock_post(&x->mock, path), 200);
        world_conf(x);
        refresh_served(x, true);
}

/* ---- running ersd ---------------------------------------------------------------------------- */

struct round {
        int status;         /* exit status, or 128 + signal */
        bool killed;        /* by us, at the kill point */
        bool hung;          /* ran past the limit: killed */
        long fds, rss_kib;  /* at the kill point (-1: not stopped there) */
        long peak_kib;      /* peak RSS */
        char *out, *err;    /* owned */
        size_t out_len, err_len;
        bool summary;       /* a "sync done" line */
        unsigned n_new, n_updated, n_failed;
};

static void round_free(struct round *r)
{
        free(r->out);
        free(r->err);
        memset(r, 0, sizeof *r);
}

struct spawn {
        const char *const *args;  /* after -c FILE */
        long long fsize;          /* RLIMIT_FSIZE, 0: none (SIGXFSZ left at its default) */
        bool kill_at;             /* stop at the kill point, count, kill */
        uint64_t kill_after;
        const char *kill_ubrn;    /* counting only the requests about this referral (NULL: all) */
};

static char *slurp(const char *path, size_t *ret_len)
{
        FILE *f = fopen(path, "re");
        char *p = NULL;
        size_t len = 0, cap = 0, n;
        char chunk[65536];

        while (f && (n = fread(chunk, 1, sizeof chunk, f)) > 0) {
                if (len + n + 1 > cap) {
                        cap = (len + n + 1) * 2;
                        char *np = realloc(p, cap);
                        assert_non_null(np);
                        p = np;
                }
                memcpy(p + len, chunk, n);
                len += n;
        }
        if (f)
                fclose(f);
        if (!p)
                p = calloc(1, 1);
        assert_non_null(p);
        p[len] = '\0';
        *ret_len = len;
        return p;
}

static pid_t spawn_ersd(struct run_ctx *x, const struct spawn *s, int which, int gate)
{
        char path[512], out[700], err[700];
        const char *argv[16];
        int n = 0;

        snprintf(path, sizeof path, "%s/ersd", build_dir());
        snprintf(out, sizeof out, "%s/out.%d", x->dir, which);
        snprintf(err, sizeof err, "%s/err.%d", x->dir, which);
        argv[n++] = path;
        argv[n++] = "-c";
        argv[n++] = x->conf;
        for (size_t i = 0; s->args[i] && n < 15; i++)
                argv[n++] = s->args[i];
        argv[n] = NULL;
        pid_t pid = fork();
        if (pid != 0)
                return pid;
        /* The child: as a service manager would start it, but under umask 022. */
        sigset_t none;
        sigemptyset(&none);
        sigprocmask(SIG_SETMASK, &none, NULL);
        prctl(PR_SET_PDEATHSIG, SIGKILL);
        signal(SIGXFSZ, SIG_DFL);
        umask(022);
        unsetenv("NOTIFY_SOCKET");
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        if (s->fsize > 0) {
                struct rlimit rl = { (rlim_t)s->fsize, (rlim_t)s->fsize };
                setrlimit(RLIMIT_FSIZE, &rl);
        }
        if (x->nofile) {
                const char *nofile = getenv("ERSD_WORLD_NOFILE");
                rlim_t lim = nofile && *nofile ? (rlim_t)strtoul(nofile, NULL, 10) : NOFILE_LIMIT;
                struct rlimit rl = { lim, lim };
                if (lim > 0)
                        setrlimit(RLIMIT_NOFILE, &rl);
        }
        int o = open(out, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        int e = open(err, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        if (o < 0 || e < 0 || dup2(o, STDOUT_FILENO) < 0 || dup2(e, STDERR_FILENO) < 0)
                _exit(126);
        char go;
        if (gate >= 0 && read(gate, &go, 1) != 1) /* until the kill point is armed */
                _exit(126);
        execv(path, (char *const *)argv);
        _exit(127);
}

static long count_fds(pid_t pid)
{
        char path[64];
        long n = 0;
        struct dirent *de;

        snprintf(path, sizeof path, "/proc/%d/fd", (int)pid);
        DIR *d = opendir(path);
        while (d && (de = readdir(d)))
                n += de->d_name[0] != '.';
        if (d)
                closedir(d);
        return d ? n : -1;
}

static long rss_kib(pid_t pid)
{
        char path[64], line[256];
        long kib = -1;

        snprintf(path, sizeof path, "/proc/%d/status", (int)pid);
        FILE *f = fopen(path, "re");
        while (f && fgets(line, sizeof line, f))
                if (sscanf(line, "VmRSS: %ld kB", &kib) == 1)
                        break;
        if (f)
                fclose(f);
        return kib;
}

/* Waits for pid to exit (or stop: *ret_stopped) within limit_s.  SIGCHLD is
 * blocked in this process: sigtimedwait takes it, no handler, no sleep. */
static int wait_child(pid_t pid, double limit_s, bool *ret_stopped, int *ret_status, struct rusage *ru)
{
        sigset_t chld;
        struct timespec t0, t;

        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        *ret_stopped = false;
        for (;;) {
                int st;
                pid_t r = wait4(pid, &st, WNOHANG | WUNTRACED, ru);
                if (r == pid) {
                        if (WIFSTOPPED(st)) {
                                *ret_stopped = true;
                                return 0;
                        }
                        *ret_status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
                        return 0;
                }
                if (r < 0)
                        return -errno;
                clock_gettime(CLOCK_MONOTONIC, &t);
                double left = limit_s - ((double)(t.tv_sec - t0.tv_sec) + (double)(t.tv_nsec - t0.tv_nsec) / 1e9);
                if (left <= 0)
                        return -ETIMEDOUT;
                struct timespec wait = { (time_t)left, (long)((left - (double)(time_t)left) * 1e9) };
                if (wait.tv_sec > 1)
                        wait = (struct timespec){ 1, 0 }; /* other children (the mock) signal too */
                sigtimedwait(&chld, NULL, &wait);
        }
}

/* The --once summary on stdout: "sync done: referrals …" ("sync incomplete: …" when
 * something failed). */
static void parse_summary(struct round *r)
{
        const char *p = strstr(r->out, "ersd: sync ");
        const char *q = p ? strstr(p, ": referrals ") : NULL;
        r->summary = q && sscanf(q, ": referrals %u new, %u updated, %*u unchanged, %u failed", &r->n_new,
                                 &r->n_updated, &r->n_failed) == 3;
}

/* Keeps the lines of ersd's that name a UBRN and a version, for check_version_lines(). */
static void keep_version_lines(struct run_ctx *x, const char *err)
{
        for (const char *l = err; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                size_t n = strcspn(l, "\n");
                char line[1024];
                snprintf(line, sizeof line, "%.*s", (int)n, l);
                if (!strstr(line, "UBRN ") || x->lines.n + n + 2 > 8 * 1024 * 1024)
                        continue;
                char *np = realloc(x->lines.p, x->lines.n + n + 2);
                assert_non_null(np);
                x->lines.p = np;
                memcpy(np + x->lines.n, l, n);
                x->lines.n += n;
                np[x->lines.n++] = '\n';
                np[x->lines.n] = '\0';
        }
}

/* Runs ersd once (to its end, or to the kill point) and collects what it printed. */
static void run_round(struct run_ctx *x, const struct spawn *s, int which, struct round *ret)
{
        int gate[2] = { -1, -1 };
        struct rusage ru = { .ru_maxrss = 0 };
        char path[700], q[128];
        bool stopped = false;

        memset(ret, 0, sizeof *ret);
        ret->fds = ret->rss_kib = -1;
        if (s->kill_at)
                assert_int_equal(pipe2(gate, O_CLOEXEC), 0);
        pid_t pid = spawn_ersd(x, s, which, gate[0]);
        assert_true(pid > 0);
        if (s->kill_at) {
                snprintf(q, sizeof q, "/_mock/killpoint?pid=%d&after=%" PRIu64 "&signal=STOP%s%s", (int)pid,
                         s->kill_after, s->kill_ubrn ? "&ubrn=" : "", s->kill_ubrn ? s->kill_ubrn : "");
                assert_int_equal(mock_post(&x->mock, q), 200);
                assert_int_equal(write(gate[1], "g", 1), 1);
                close(gate[0]);
                close(gate[1]);
        }
        int r = wait_child(pid, round_limit(), &stopped, &ret->status, &ru);
        if (r == -ETIMEDOUT) {
                ret->hung = true;
                kill(pid, SIGKILL);
                waitpid(pid, NULL, 0);
                ret->status = 128 + SIGKILL;
        } else if (stopped) {
                /* at the kill point: what it holds there, then the kill */
                ret->fds = count_fds(pid);
                ret->rss_kib = rss_kib(pid);
                kill(pid, SIGKILL);
                int st;
                wait4(pid, &st, 0, &ru);
                ret->killed = true;
                ret->status = 128 + SIGKILL;
        }
        if (s->kill_at)
                assert_int_equal(mock_post(&x->mock, "/_mock/killpoint?pid=0"), 200);
        ret->peak_kib = ru.ru_maxrss;
        snprintf(path, sizeof path, "%s/out.%d", x->dir, which);
        ret->out = slurp(path, &ret->out_len);
        snprintf(path, sizeof path, "%s/err.%d", x->dir, which);
        ret->err = slurp(path, &ret->err_len);
        output_log(ret->out, ret->err); /* the output scan of make check reads it */
        if (mocks_a006_requests() != 0) /* retired: never called (harness.h, HARNESS_A006_SENT) */
                fail_msg("ersd sent a request to A006, which is retired and never called");
        parse_summary(ret);
        keep_version_lines(x, ret->err);
        if (getenv("ERSD_WORLD_KEEP")) { /* every round's log, to look at */
                snprintf(path, sizeof path, "%s/log.%03u.%d", x->dir, x->round, which);
                write_text(path, ret->err, 0600);
        }
}

/* ---- after every round -------------------------------------------------------------------------- */

/* A character no output may carry raw (issue 13, finding 10): C0 but newline and
 * tab, DEL, C1, bidi overrides and isolates.  Its kind, or NULL; *ret_at its offset. */
static const char *raw_control(const char *p, size_t n, size_t *ret_at)
{
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char)p[i];
                const char *kind = NULL;
                if ((c < 0x20 && c != '\n' && c != '\t') || c == 0x7f)
                        kind = "C0 control";
                else if (c == 0xc2 && i + 1 < n && (unsigned char)p[i + 1] >= 0x80 && (unsigned char)p[i + 1] <= 0x9f)
                        kind = "C1 control";
                else if (c == 0xe2 && i + 2 < n && (((unsigned char)p[i + 1] == 0x80 && (unsigned char)p[i + 2] >= 0xaa &&
                                                     (unsigned char)p[i + 2] <= 0xae) ||
                                                    ((unsigned char)p[i + 1] == 0x81 && (unsigned char)p[i + 2] >= 0xa6 &&
                                                     (unsigned char)p[i + 2] <= 0xa9)))
                        kind = "bidi override";
                if (kind) {
                        *ret_at = i;
                        return kind;
                }
        }
        return NULL;
}

static void scan_output(struct run_ctx *x, const char *what, const char *p, size_t n)
{
        size_t at = 0;
        const char *kind = raw_control(p, n, &at);
        char buf[128];

        if (!kind)
                return;
        size_t line = at;
        while (line > 0 && p[line - 1] != '\n')
                line--;
        say(x, "%s printed a raw %s, in a line starting \"%s\"", what, kind, wcheck_gist(p + line, buf, sizeof buf));
}

/* The first frame of ersd's own code ("func daemon/file.c:line") after `from` in a
 * sanitizer report, into buf; "" when none. */
static const char *own_frame(const char *from, char *buf, size_t n)
{
        buf[0] = '\0';
        for (const char *l = from; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                char line[512];
                snprintf(line, sizeof line, "%.*s", (int)strcspn(l, "\n"), l);
                const char *in = strstr(line, " in ");
                const char *src = in ? strstr(in, "/daemon/") : NULL;
                if (!src && in)
                        src = strstr(in, "/adapters/");
                if (!src)
                        continue;
                snprintf(buf, n, "%.*s %.*s", (int)strcspn(in + 4, " "), in + 4, (int)strcspn(src + 1, " "), src + 1);
                return buf;
        }
        return buf;
}

/* Whether ersd crashed, hung, or refused its configuration (`second`: another ersd
 * beside it, which may be refused at start with any status). */
static bool crashed(struct run_ctx *x, const struct round *r, const char *what, bool second)
{
        const char *markers[] = { "SUMMARY: AddressSanitizer", "SUMMARY: UndefinedBehaviorSanitizer",
                                  "ERROR: AddressSanitizer", "ERROR: LeakSanitizer", "runtime error:" };
        char buf[128];

        for (size_t i = 0; i < sizeof markers / sizeof markers[0]; i++) {
                const char *m = strstr(r->err, markers[i]);
                if (m) {
                        const char *error = strstr(r->err, "ERROR: "), *freed = strstr(r->err, "freed by");
                        char at[160], by[160];
                        own_frame(error ? error : m, at, sizeof at);
                        own_frame(freed, by, sizeof by);
                        wcheck_gist(error ? error : m, buf, sizeof buf);
                        buf[strcspn(buf, "(")] = '\0';
                        char *on = strstr(buf, " on address");
                        if (on)
                                *on = '\0'; /* addresses differ from run to run */
                        say(x, "%s: a sanitizer report: \"%s\"%s%s%s%s", what, buf, at[0] ? " at " : "", at,
                            by[0] ? ", freed in " : "", by);
                        return true;
                }
        }
        if (r->hung) {
                say(x, "%s did not finish within %.0f s: killed (a transfer without a deadline?)", what, round_limit());
                return true;
        }
        if (r->status > 128 && !r->killed) {
                say(x, "%s died of signal %d (%s)", what, r->status - 128, strsignal(r->status - 128));
                return true;
        }
        if (r->status == 86 || (r->status == 2 && !second)) {
                say(x, "%s exited %d: \"%s\"", what, r->status, wcheck_gist(r->err, buf, sizeof buf));
                return true;
        }
        return false;
}

/* Whether worklist referral m is synced: in the PAS at e-RS's version (complete, when
 * `complete`), not waiting in ers_retry. */
static bool synced(struct run_ctx *x, const struct wref *m, bool complete)
{
        if (x->dry)
                return false; /* planning: no PAS */
        const char *p[] = { m->ubrn };
        char *v = db_text(x->db, complete ? "SELECT version FROM ers_ledger WHERE ubrn = ? AND complete = 1"
                                          : "SELECT version FROM ers_ledger WHERE ubrn = ?",
                          1, p, NULL);
        bool done = v && strtoll(v, NULL, 10) == m->version &&
                    db_int(x->db, "SELECT COUNT(*) FROM ers_retry WHERE ubrn = ?", 1, p) == 0;

        free(v);
        return done;
}

/* Whether a spool file name was left over by the round before (x->left). */
static bool left_before(const struct run_ctx *x, const char *name)
{
        for (size_t i = 0; i < x->n_left; i++)
                if (strcmp(x->left[i], name) == 0)
                        return true;
        return false;
}

/* After a round that ended (was not killed), the spool holds no partial download;
 * after a round that finished cleanly (exit 0), nothing at all; after any other,
 * nothing of a referral synced that a start has had the chance to sweep (it was
 * there, and synced, after the round before too): it holds patient documents
 * (finding 3). */
static void check_spool(struct run_ctx *x, const struct round *r)
{
        DIR *d = opendir(x->spool);
        struct dirent *de;
        unsigned said = 0;
        char **left = NULL;
        size_t n_left = 0;

        while (d && (de = readdir(d))) {
                char ubrn[13];
                bool owned = false, waiting = false;
                if (de->d_name[0] == '.')
                        continue;
                snprintf(ubrn, sizeof ubrn, "%.12s", de->d_name);
                for (size_t i = 0; i < served_now(x)->n_refs; i++) {
                        const struct wref *m = &served_now(x)->refs[i];
                        bool mine = !m->related_only && strcmp(m->ubrn, ubrn) == 0;
                        for (size_t k = 0; !m->related_only && k < m->n_related; k++)
                                mine |= strcmp(m->related[k], ubrn) == 0;
                        owned |= mine;
                        waiting |= mine && (m->gone || !synced(x, m, true));
                }
                bool synced_doc = owned && !waiting;
                if (synced_doc && (left = realloc(left, (n_left + 1) * sizeof *left)) &&
                    (left[n_left] = strdup(de->d_name)))
                        n_left++;
                const char *why = strstr(de->d_name, ".part")                   ? "a partial download"
                                  : r->status == 0                              ? "a document, after a round that synced everything"
                                  : synced_doc && left_before(x, de->d_name) ? "a document of a referral synced already, "
                                                                                 "after a start could sweep it"
                                                                               : NULL;
                if (why && said++ < 3) { /* a few names a round are enough to act on */
                        char name[128];
                        x->fig.leftovers++;
                        say(x, "the spool holds %s (UBRN %s): %.80s", why, ubrn,
                            wcheck_gist(de->d_name, name, sizeof name));
                }
        }
        if (d)
                closedir(d);
        for (size_t i = 0; i < x->n_left; i++)
                free(x->left[i]);
        free(x->left);
        x->left = left;
        x->n_left = n_left;
}

/* Files ersd made hold patient data: private whatever the umask (finding 11). */
static void check_modes(struct run_ctx *x)
{
        const char *suffix[] = { "", "-wal", "-shm" };
        char path[700];
        struct stat st;

        for (size_t i = 0; x->pas_file[0] && i < 3; i++) {
                snprintf(path, sizeof path, "%s%s", x->pas_file, suffix[i]);
                if (stat(path, &st) == 0 && (st.st_mode & 077))
                        say(x, "the SQLite PAS file%s is mode %03o under umask 022: readable by others", suffix[i],
                            (unsigned)(st.st_mode & 0777));
        }
        if (stat(x->spool, &st) == 0 && (st.st_mode & 077))
                say(x, "the spool directory is mode %03o", (unsigned)(st.st_mode & 0777));
}

/* A failure the object store answered in plain text names its words, not only the
 * status (finding 20): the mock's store says AccessDenied, InternalError, SlowDown, Error. */
static void check_store_words(struct run_ctx *x, const struct round *r)
{
        static const char *const words[] = { "AccessDenied", "InternalError", "SlowDown", "Error" };
        char buf[256];

        for (const char *l = r->err; l && *l; l = strchr(l, '\n') ? strchr(l, '\n') + 1 : NULL) {
                char line[1024];
                bool quoted = false;
                snprintf(line, sizeof line, "%.*s", (int)strcspn(l, "\n"), l);
                const char *st = strstr(line, "object store: HTTP ");
                if (!st || !strstr(line, " not synced") || (st[19] != '4' && st[19] != '5'))
                        continue; /* an error status only: "HTTP 200: spool: …" is ours */
                for (size_t i = 0; i < sizeof words / sizeof words[0]; i++)
                        quoted |= strstr(st, words[i]) != NULL;
                if (!quoted)
                        say(x, "a failure the object store explained in plain text quotes none of its words: \"%s\"",
                            wcheck_gist(strstr(line, "ersd: ") ? strstr(line, "ersd: ") : line, buf, sizeof buf));
        }
}

/* In a round without faults, a worklist with a malformed entry is read all the same,
 * the entry skipped (finding 9). */
static void check_worklists_read(struct run_ctx *x, const struct round *r)
{
        const struct world *w = now(x);
        char needle[96], buf[256];

        for (size_t i = 0; i < w->n_junk; i++) {
                const char *name = WORLD_WORKLIST[w->junk_on[i]].name;
                snprintf(needle, sizeof needle, "worklist %s not read", name);
                const char *l = strstr(r->err, needle);
                if (l) {
                        wcheck_gist(l, buf, sizeof buf);
                        char *corr = strstr(buf, " (correlation id");
                        if (corr)
                                *corr = '\0'; /* the same line every round */
                        say(x, "one malformed entry refused worklist %s whole: \"%s\"", name, buf);
                }
        }
}

static void after_round(struct run_ctx *x, const struct round *r, const char *what)
{
        char buf[128];

        x->fig.rounds++;
        refresh_served(x, false); /* what the writes of the round applied, before anything compares */
        if (r->killed)
                x->fig.kills++;
        crashed(x, r, what, false);
        char why[400];
        if (verify_consistent_why(x->db, why, sizeof why))
                say(x, "the PAS is inconsistent after a round: %s", why);
        scan_output(x, what, r->err, r->err_len);
        scan_output(x, what, r->out, r->out_len);
        check_store_words(x, r);
        const char *oom = strcasestr(r->err, "out of memory");
        if (oom) { /* nothing here comes near a memory limit: a 300 KB header is no reason (finding 20) */
                while (oom > r->err && oom[-1] != '\n')
                        oom--;
                say(x, "%s said it ran out of memory: \"%s\"", what, wcheck_gist(oom, buf, sizeof buf));
        }
        if (r->status < 128) /* ended by itself: not killed, not crashed (said above) */
                check_spool(x, r);
        check_modes(x);
        if (r->fds > x->fig.most_fds)
                x->fig.most_fds = r->fds;
        long bound = FD_BASE + FD_PER_LANE * (long)now(x)->parallel;
        if (r->fds > bound)
                say(x, "%s held %ld descriptors at a request (at most %ld with %u fetch lanes, whatever the documents)",
                    what, r->fds, bound, now(x)->parallel);
        if (r->peak_kib > x->peak_kib)
                x->peak_kib = r->peak_kib;
        (void)buf;
}

/* Time passes: every retry and re-check ersd scheduled is due now. */
static void advance_clock(struct run_ctx *x)
{
        if (x->dry)
                return;
        db_exec(x->db, "UPDATE ers_retry SET next_attempt_at = '2000-01-01T00:00:00Z'");
        db_exec(x->db, "UPDATE ers_ledger SET next_check_at = '2000-01-01T00:00:00Z' WHERE next_check_at IS NOT NULL");
        db_exec(x->db, "UPDATE ers_outbox SET next_attempt_at = '2000-01-01T00:00:00Z' WHERE state = 'RETRY'");
}

/* ---- chaos ------------------------------------------------------------------------------------- */

static const struct {
        const char *endpoint, *kind;
        bool slow; /* costs a stall timeout, or (slow) a transfer deadline */
} FAULTS[] = {
        { "A008", "500", false },       { "A008", "503", false },       { "A008", "429", false },
        { "A008", "truncated", false }, { "A008", "malformed", false }, { "A008", "wrong_type", false },
        { "A008", "oversized", false }, { "A005", "500", false },       { "A005", "502", false },
        { "A005", "429_bare", false },  { "A005", "truncated", false }, { "A005", "malformed", false },
        { "A005", "wrong_content_type", false }, { "A005", "trickle", false }, { "A042", "500", false },
        { "A042", "404", false },       { "A042", "422", false },       { "A042", "503", false },
        { "A042", "malformed", false }, { "store", "500", false },      { "store", "403", false },
        { "store", "truncated", false }, { "store", "trickle", false }, { "A007", "500", false },
        { "A042", "long_location", false }, { "A005", "endless", false }, { "store", "endless_500", false },
        { "A008", "endless_500", false },
        { "A007", "503", false },       { "A007", "truncated", false }, { "A005", "stall", true },
        { "store", "stall", true },
};

/* Whether ersd has work for worklist referral m of the world served now, as the history
 * alone tells (never what ersd did: the history is the seed's): it is new, at a new
 * version, back on a worklist, or an attachment of it or of a related one was released. */
static bool has_work(const struct run_ctx *x, const struct wref *m)
{
        const struct world *before = x->n_history >= 2 ? x->history[x->n_history - 2] : NULL;
        const struct wref *was = before ? world_find(before, m->ubrn) : NULL;

        if (m->related_only || m->gone || m->worklist < 0)
                return false;
        if (!was || was->version != m->version || was->worklist < 0)
                return true;
        for (size_t k = 0; k <= m->n_related; k++) {
                const struct wref *s = k ? world_find(now(x), m->related[k - 1]) : m;
                const struct wref *t = k ? world_find(before, m->related[k - 1]) : was;
                for (size_t d = 0; s && t && d < s->n_docs && d < t->n_docs; d++)
                        if (wdoc_available(&s->docs[d]) != wdoc_available(&t->docs[d]))
                                return true;
        }
        return false;
}

/* The requests a round would make for the work of the world served now, about: its
 * worklists, and for each referral with work (has_work()) A005 and A007 of it and of
 * each related one, A042 and the store for each attachment e-RS serves.  The kill point
 * is drawn below it. */
static unsigned requests_planned(const struct run_ctx *x)
{
        const struct world *w = now(x);
        unsigned n = WORLD_WORKLISTS;

        for (size_t i = 0; i < w->n_refs; i++) {
                const struct wref *m = &w->refs[i];
                if (!has_work(x, m))
                        continue;
                for (size_t k = 0; k <= m->n_related; k++) {
                        const struct wref *s = k ? world_find(w, m->related[k - 1]) : m;
                        n += 2;
                        for (size_t d = 0; s && d < s->n_docs; d++)
                                n += wdoc_available(&s->docs[d]) ? 2 : 0;
                }
        }
        return n;
}

/* Notes that this chaos round spoils ubrn's requests (e-RS may revise it before the next). */
static void spoil(struct run_ctx *x, const char *ubrn)
{
        for (size_t i = 0; i < x->n_spoiled; i++)
                if (strcmp(x->spoiled[i], ubrn) == 0)
                        return;
        if (x->n_spoiled < sizeof x->spoiled / sizeof x->spoiled[0]) {
                snprintf(x->spoiled_buf[x->n_spoiled], sizeof x->spoiled_buf[0], "%s", ubrn);
                x->spoiled[x->n_spoiled] = x->spoiled_buf[x->n_spoiled];
                x->n_spoiled++;
        }
}

/* A UBRN whose requests a fault spoils: one ersd has work to do for (a fault on the
 * others would never be taken), or any. */
static const char *fault_ubrn(struct run_ctx *x)
{
        const struct world *w = now(x);
        const char *pick[64];
        size_t n = 0;

        for (size_t i = 0; i < w->n_refs && n < 64; i++) {
                const struct wref *m = &w->refs[i];
                if (!has_work(x, m) || wref_refused(m))
                        continue;
                pick[n++] = m->ubrn;
                for (size_t k = 0; k < m->n_related && n < 64; k++)
                        pick[n++] = m->related[k];
        }
        const char *u = n ? pick[chaos_below(&x->chaos, (unsigned)n)]
                          : w->n_refs ? w->refs[chaos_below(&x->chaos, (unsigned)w->n_refs)].ubrn : NULL;
        if (u)
                spoil(x, u);
        return u;
}

static unsigned post_faults(struct run_ctx *x)
{
        unsigned n = chaos_below(&x->chaos, x->plan->faults_max + 1), posted = 0;
        char q[256];

        for (unsigned i = 0; i < n; i++) {
                size_t k = chaos_below(&x->chaos, sizeof FAULTS / sizeof FAULTS[0]);
                const char *endpoint = FAULTS[k].endpoint, *kind = FAULTS[k].kind, *ubrn = NULL;
                if (FAULTS[k].slow && chaos_below(&x->chaos, 4) != 0)
                        continue; /* a stall costs ersd's stall timeout: now and then */
                if (slow_faults() && chaos_below(&x->chaos, 4) == 0)
                        kind = "slow";
                if (strcmp(endpoint, "A008") != 0)
                        ubrn = fault_ubrn(x);
                snprintf(q, sizeof q, "/_mock/fault?endpoint=%s&kind=%s&count=%u%s%s", endpoint, kind,
                         1 + chaos_below(&x->chaos, 2), ubrn ? "&ubrn=" : "", ubrn ? ubrn : "");
                note(x, "chaos %u: %s", x->n_chaos, q);
                if (x->dry || mock_post(&x->mock, q) == 200)
                        posted++;
        }
        if (slow_faults() && chaos_below(&x->chaos, 3) == 0) {
                /* an answer that trickles for ever, where it is sure to be asked for (finding 7) */
                const char *ubrn = fault_ubrn(x);
                bool a008 = chaos_below(&x->chaos, 2) == 0 || !ubrn;
                snprintf(q, sizeof q, "/_mock/fault?endpoint=%s&kind=slow%s%s", a008 ? "A008" : "A005",
                         a008 ? "" : "&ubrn=", a008 ? "" : ubrn);
                note(x, "chaos %u: %s", x->n_chaos, q);
                if (x->dry || mock_post(&x->mock, q) == 200)
                        posted++;
        }
        return posted;
}

static void chaos_round(struct run_ctx *x)
{
        static const char *const once[] = { "--once", NULL };
        struct spawn s = { .args = once };
        struct round r, r2;
        char what[64];

        x->round++;
        x->n_chaos++;
        x->n_spoiled = 0;
        advance_clock(x);
        x->fig.faults += post_faults(x);
        if (chaos_below(&x->chaos, 1000) < x->plan->kill_permille) {
                s.kill_at = true;
                s.kill_after = 1 + chaos_below(&x->chaos, requests_planned(x) + 2);
                if (x->n_aim && chaos_below(&x->chaos, 2) == 0) { /* at a request being sent back, or about it */
                        s.kill_ubrn = x->aim[chaos_below(&x->chaos, (unsigned)x->n_aim)];
                        s.kill_after = 1 + chaos_below(&x->chaos, 4);
                }
                for (size_t i = 0; i < now(x)->n_refs; i++) /* a kill may leave any of them half-done */
                        if (has_work(x, &now(x)->refs[i]))
                                spoil(x, now(x)->refs[i].ubrn);
        } else if (chaos_below(&x->chaos, 1000) < x->plan->fsize_permille)
                s.fsize = 64 * 1024 * (1 + chaos_below(&x->chaos, 16));
        bool pair = !s.kill_at && chaos_below(&x->chaos, 1000) < x->plan->pair_permille;
        note(x, "chaos %u: kill %s%" PRIu64 "%s%s, file size limit %lld, two ersd %d", x->n_chaos,
             s.kill_at ? "at " : "no ", s.kill_after, s.kill_ubrn ? " about " : "", s.kill_ubrn ? s.kill_ubrn : "",
             s.fsize, pair);
        if (x->dry)
                return;
        if (pair) {
                /* two ersd on one state_dir: one must be refused at start (finding 17) */
                int gate[2];
                assert_int_equal(pipe2(gate, O_CLOEXEC), 0);
                pid_t a = spawn_ersd(x, &s, 1, gate[0]), b = spawn_ersd(x, &s, 2, gate[0]);
                assert_int_equal(write(gate[1], "gg", 2), 2);
                close(gate[0]);
                close(gate[1]);
                struct round *rs[2] = { &r, &r2 };
                pid_t ps[2] = { a, b };
                for (int i = 0; i < 2; i++) {
                        bool stopped;
                        struct rusage ru;
                        char path[700];
                        memset(rs[i], 0, sizeof *rs[i]);
                        rs[i]->fds = -1;
                        if (wait_child(ps[i], round_limit(), &stopped, &rs[i]->status, &ru) == -ETIMEDOUT) {
                                kill(ps[i], SIGKILL);
                                waitpid(ps[i], NULL, 0);
                                rs[i]->hung = true;
                                rs[i]->status = 128 + SIGKILL;
                        }
                        snprintf(path, sizeof path, "%s/out.%d", x->dir, i + 1);
                        rs[i]->out = slurp(path, &rs[i]->out_len);
                        snprintf(path, sizeof path, "%s/err.%d", x->dir, i + 1);
                        rs[i]->err = slurp(path, &rs[i]->err_len);
                        output_log(rs[i]->out, rs[i]->err);
                        parse_summary(rs[i]);
                }
                snprintf(what, sizeof what, "two ersd --once on one state_dir");
                if (r.summary && r2.summary)
                        say(x, "%s: both ran (a second ersd on a state_dir must be refused at start)", what);
                after_round(x, &r, what);
                crashed(x, &r2, what, true);
                scan_output(x, what, r2.err, r2.err_len);
                round_free(&r2);
        } else {
                snprintf(what, sizeof what, "ersd --once (%s)",
                         s.kill_at ? "a chaos round, killed at a request" : s.fsize ? "a chaos round, file size limit"
                                                                              : "a chaos round");
                run_round(x, &s, 1, &r);
                after_round(x, &r, what);
        }
        assert_int_equal(mock_post(&x->mock, "/_mock/fault/clear"), 200);
        round_free(&r);
}

/* ---- settling, and what is checked then ---------------------------------------------------------- */

/* Referrals that may fail every round once settled: refused ones, gone ones. */
static bool may_fail(const struct world *w, const char *ubrn)
{
        const struct wref *m = world_find(w, ubrn);
        return !m || m->gone || wref_refused(m);
}

/* Rounds without faults until one writes nothing and fails only what must fail.
 * Returns the last round (caller frees), or false when it did not settle. */
static bool settle(struct run_ctx *x, struct round *last)
{
        static const char *const once[] = { "--once", NULL };
        const struct spawn s = { .args = once };
        char what[64];

        memset(last, 0, sizeof *last);
        assert_int_equal(mock_post(&x->mock, "/_mock/writeback/fault/clear"), 200);
        for (size_t i = 0; i < x->n_locked; i++) { /* e-RS lets go: what waited is sent */
                char q[96];
                const struct wref *m = world_find(now(x), x->locked[i]);
                snprintf(q, sizeof q, "/_mock/writeback/lock?ubrn=%s&locked=0", x->locked[i]);
                int status = mock_post(&x->mock, q);
                if (!(status == 200 || (status == 404 && (!m || m->gone)))) /* gone since: nothing to let go */
                        fail_msg("unlocking %s: HTTP %d", x->locked[i], status);
        }
        x->n_locked = 0;
        for (unsigned i = 0; i < SETTLE_MAX; i++) {
                round_free(last);
                x->round++;
                advance_clock(x);
                size_t served_before = x->n_served;
                snprintf(what, sizeof what, "ersd --once (a settling round)");
                run_round(x, &s, 1, last);
                after_round(x, last, what);
                if (x->n_served != served_before)
                        continue; /* a write it sent back moved a referral on: the next round reads it */
                check_worklists_read(x, last);
                if (last->status > 1 || !last->summary || last->n_new || last->n_updated ||
                    db_int(x->db, "SELECT COUNT(*) FROM ers_outbox WHERE state IN ('NEW', 'RETRY', 'SENDING')", 0,
                           NULL) != 0)
                        continue;
                bool unexpected = false;
                for (const char *p = last->err; (p = strstr(p, "UBRN ")); p += 5)
                        if (strncmp(p + 17, " not synced", 11) == 0) {
                                char ubrn[13];
                                snprintf(ubrn, sizeof ubrn, "%.12s", p + 5);
                                unexpected |= !may_fail(now(x), ubrn);
                        }
                if (!unexpected)
                        return true;
        }
        char buf[128];
        const char *p = strstr(last->err, " not synced, PAS unchanged");
        while (p && p > last->err && p[-1] != '\n')
                p--;
        say(x, "did not settle in %d rounds without faults: the last wrote %u new, %u updated, failed %u; \"%s\"",
            SETTLE_MAX, last->n_new, last->n_updated, last->n_failed, p ? wcheck_gist(p, buf, sizeof buf) : "");
        return false;
}

/* A worklist entry ahead of A005: one line names the UBRN and both versions (finding 21). */
/* Whether a line holds the number v standing alone: not inside a longer run of
 * digits, a word or a hex id (a correlation id is full of small numbers). */
static bool has_number(const char *line, int64_t v)
{
        for (const char *p = line; *p; p++) {
                size_t run = strspn(p, "0123456789");
                bool alone = run && (p == line || !(isalnum((unsigned char)p[-1]) || p[-1] == '-')) &&
                             !(isalnum((unsigned char)p[run]) || p[run] == '-');
                if (alone && run < 19 && strtoll(p, NULL, 10) == v)
                        return true;
                p += run ? run - 1 : 0;
        }
        return false;
}

static void check_version_lines(struct run_ctx *x)
{
        const struct world *w = served_now(x);

        for (size_t i = 0; i < w->n_refs; i++) {
                const struct wref *m = &w->refs[i];
                bool said = false;
                if (m->related_only || m->gone || m->worklist < 0 || m->worklist == 1 || !m->entry_ahead ||
                    wref_refused(m))
                        continue;
                for (const char *line = x->lines.p; line && *line && !said;) {
                        const char *end = strchr(line, '\n');
                        size_t n = end ? (size_t)(end - line) : strlen(line);
                        char *l = strndup(line, n);
                        assert_non_null(l);
                        said = strstr(l, m->ubrn) && strcasestr(l, "worklist") && has_number(l, m->version) &&
                               has_number(l, m->version + 1);
                        free(l);
                        line = end ? end + 1 : NULL;
                }
                if (!said)
                        say(x, "UBRN %s: the worklist lists version %" PRId64 ", A005 answers %" PRId64
                               ", and no line of ersd's has said so", m->ubrn, m->version + 1, m->version);
        }
}

/* `ersd sync UBRN` twice: the second counts the documents still not fetched (finding 22). */
static void check_sync_command(struct run_ctx *x)
{
        const struct world *w = served_now(x);

        for (size_t i = 0; i < w->n_refs; i++) {
                const struct wref *m = &w->refs[i];
                unsigned owed = 0, others = 0;
                if (m->related_only || m->gone || m->worklist < 0 || wref_refused(m) || m->n_related ||
                    !synced(x, m, false))
                        continue;
                for (size_t k = 0; k < m->n_docs; k++) {
                        bool available = wdoc_available(&m->docs[k]);
                        if (!available && !wdoc_never(&m->docs[k]))
                                owed++;
                        else if (!available || m->docs[k].bytes > (uint64_t)w->max_mib * 1024 * 1024)
                                others++;
                }
                if (!owed || others)
                        continue; /* only documents e-RS still owes: every reading of the count agrees */
                const char *const args[] = { "sync", m->ubrn, NULL };
                const struct spawn s = { .args = args };
                struct round r;
                unsigned stored = 0, not_fetched = 0;
                for (int n = 0; n < 2; n++) {
                        if (n)
                                round_free(&r);
                        run_round(x, &s, 3, &r);
                        scan_output(x, "ersd sync", r.out, r.out_len);
                        scan_output(x, "ersd sync", r.err, r.err_len);
                }
                const char *p = strstr(r.out, "documents ");
                if (!p || sscanf(p, "documents %u stored (%*[^)]), %u not fetched", &stored, &not_fetched) != 2)
                        say(x, "ersd sync %s (a second time) printed no document counts (exit %d)", m->ubrn, r.status);
                else if (not_fetched != owed)
                        say(x, "ersd sync %s (a second time) says %u not fetched; %u are still owed", m->ubrn,
                            not_fetched, owed);
                round_free(&r);
                return; /* one referral a settle is enough */
        }
}

/* `ersd audit UBRN` of a referral with the most unusual attachment ids, and `ersd status`:
 * nothing raw on a terminal (finding 10). */
static void check_commands(struct run_ctx *x)
{
        const struct world *w = now(x);
        const struct wref *pick = NULL;
        struct round r;

        for (size_t i = 0; i < w->n_refs && !pick; i++)
                for (size_t k = 0; k < w->refs[i].n_docs && !w->refs[i].related_only; k++) {
                        size_t at;
                        const struct wt *id = &w->refs[i].docs[k].id;
                        if (id->kind == WT_STR && raw_control(id->p, id->n, &at))
                                pick = &w->refs[i];
                }
        if (pick) {
                const char *const args[] = { "audit", pick->ubrn, NULL };
                const struct spawn s = { .args = args };
                run_round(x, &s, 3, &r);
                scan_output(x, "ersd audit", r.out, r.out_len);
                scan_output(x, "ersd audit", r.err, r.err_len);
                round_free(&r);
        }
        const char *const args[] = { "status", NULL };
        const struct spawn s = { .args = args };
        run_round(x, &s, 3, &r);
        scan_output(x, "ersd status", r.out, r.out_len);
        scan_output(x, "ersd status", r.err, r.err_len);
        round_free(&r);
}

static void check_settled(struct run_ctx *x, const struct round *last)
{
        char answers[sizeof x->world_file + 16];
        snprintf(answers, sizeof answers, "%s.answers", x->world_file); /* the mock's note of the A005s it served */
        struct wcheck c = { .d = x->db, .g = x->g, .history = x->served, .n_history = x->n_served,
                            .park_after = PARK_AFTER, .seen = &x->seen, .sink = say_line, .userdata = x,
                            .answers_served = answers };

        world_check(&c); /* its mismatches are counted by say_line(), once each */
        json_object *record = mock_get(&x->mock, "/_mock/writeback/record");
        wcheck_outbox(&c, x->reqs, x->n_reqs, record, &x->outbox);
        json_object_put(record);
        x->fig.documents = c.documents > x->fig.documents ? c.documents : x->fig.documents;
        check_version_lines(x);
        check_sync_command(x);
        check_commands(x);
        if (!INSTRUMENTED) {
                if (!x->first_peak_kib)
                        x->first_peak_kib = last->peak_kib;
                else if (last->peak_kib > 2 * x->first_peak_kib + 32 * 1024)
                        say(x, "ersd's peak RSS grew from %ld KiB at the first settled round to %ld KiB", x->first_peak_kib,
                            last->peak_kib);
        }
}

/* ---- the return path ------------------------------------------------------------------------------- */

/* What e-RS may do to a write-back request (the mock's /_mock/writeback/fault kinds); `slow` costs
 * ersd's transfer deadline (a timeout), so now and then only. */
static const struct {
        const char *kind;
        bool slow;
} WB_FAULTS[] = {
        { "drop_before", false }, { "drop", false }, { "422", false }, { "429", false }, { "500", false },
        { "502", false },         { "503", false },  { "504", false }, { "delay", true },
};

/* Decisions the PAS inserts into ers_outbox (as docs/schema.md lets it: ubrn, action, outcome, comment,
 * priority, decided version, who, when) on referrals of the world served now, planned from the seed:
 * a review outcome mostly on a referral awaiting triage, an acceptance mostly on a booked one, now and
 * then one decided on a version already left; and, unless calm, a fault at one of its calls or the
 * referral locked until the settle.  The decided version is the PAS's (what a person saw): a referral
 * the PAS does not hold yet gets no request. */
static void plan_outbox(struct run_ctx *x)
{
        static const char *const comments[] = {
                "Seen at triage: book routine",
                "Return: please add bloods \xe2\x80\x94 \"ECG\" too",
                "R\xc3\xa9sum\xc3\xa9 read; clinic in 6 weeks \xf0\x9f\x98\x80",
                "Advice sent by letter",
        };
        static const char *const priorities[] = { "ROUTINE", "URGENT", "TWO_WEEK_WAIT" };
        const struct world *w = now(x);
        unsigned n = 1 + chaos_below(&x->chaos, 2);

        x->n_aim = 0;
        for (unsigned i = 0; i < n && x->n_reqs < sizeof x->reqs / sizeof x->reqs[0]; i++) {
                struct wrequest *q = &x->reqs[x->n_reqs];
                const char *fit[64], *any[64];
                size_t n_fit = 0, n_any = 0;
                memset(q, 0, sizeof *q);
                q->n = (unsigned)x->n_reqs + 1;
                q->review = chaos_below(&x->chaos, 2) == 0;
                for (size_t k = 0; k < w->n_refs && n_any < 64; k++) {
                        const struct wref *m = &w->refs[k];
                        if (m->related_only || m->gone || m->worklist < 0)
                                continue;
                        any[n_any++] = m->ubrn;
                        bool fits = m->state.kind == WT_STR &&
                                    (q->review ? strcmp(m->state.p, "AWAITING_TRIAGE") == 0 ||
                                                         strcmp(m->state.p, "DEFERRED_TO_PROVIDER") == 0
                                               : strcmp(m->state.p, "BOOKED") == 0);
                        if (fits)
                                fit[n_fit++] = m->ubrn;
                }
                if (!n_any)
                        break;
                bool fitting = n_fit && chaos_below(&x->chaos, 4) != 0;
                snprintf(q->ubrn, sizeof q->ubrn, "%s",
                         fitting ? fit[chaos_below(&x->chaos, (unsigned)n_fit)] : any[chaos_below(&x->chaos, (unsigned)n_any)]);
                if (q->review) {
                        q->outcome = chaos_below(&x->chaos, 2) ? "ACCEPT_REFER_BOOK_LATER" : "RETURN_TO_REFERRER_WITH_ADVICE";
                        if (chaos_below(&x->chaos, 4) == 0) /* with a return: refused (PRIORITY_NOT_CURRENT) */
                                q->priority = priorities[chaos_below(&x->chaos, 3)];
                        snprintf(q->comment, sizeof q->comment, "W%u: %s", q->n,
                                 comments[chaos_below(&x->chaos, sizeof comments / sizeof comments[0])]);
                }
                q->behind = chaos_below(&x->chaos, 6) == 0;
                char sha[65];
                sha256_hex(q->comment, strlen(q->comment), sha);
                note(x, "request W%u: %s %s %s %s, comment sha256 %.16s, behind %u", q->n, q->ubrn,
                     q->review ? "RECORD_REVIEW_OUTCOME" : "ACCEPT_REFERRAL", q->outcome ? q->outcome : "-",
                     q->priority ? q->priority : "-", sha, q->behind);
                x->n_reqs++;
                if (x->n_aim < sizeof x->aim / sizeof x->aim[0])
                        memcpy(x->aim[x->n_aim++], q->ubrn, sizeof x->aim[0]);
                char fault[200] = "";
                if (x->plan->faults_max && chaos_below(&x->chaos, 2) == 0) {
                        size_t k = chaos_below(&x->chaos, sizeof WB_FAULTS / sizeof WB_FAULTS[0]);
                        const char *action = !q->review ? "A013" : chaos_below(&x->chaos, 2) ? "A028" : "A029";
                        if (!WB_FAULTS[k].slow || chaos_below(&x->chaos, 3) == 0)
                                snprintf(fault, sizeof fault, "/_mock/writeback/fault?action=%s&kind=%s&ubrn=%s&count=%u%s",
                                         action, WB_FAULTS[k].kind, q->ubrn, 1 + chaos_below(&x->chaos, 2),
                                         WB_FAULTS[k].slow ? "&delay_ms=12000" : "");
                }
                bool lock = x->plan->faults_max && chaos_below(&x->chaos, 6) == 0;
                note(x, "request W%u: fault %s, locked %d", q->n, fault[0] ? fault : "none", lock);
                if (x->dry)
                        continue;
                if (fault[0])
                        assert_int_equal(mock_post(&x->mock, fault), 200);
                if (lock && x->n_locked < sizeof x->locked / sizeof x->locked[0]) {
                        char path[96];
                        snprintf(path, sizeof path, "/_mock/writeback/lock?ubrn=%s", q->ubrn);
                        assert_int_equal(mock_post(&x->mock, path), 200);
                        memcpy(x->locked[x->n_locked++], q->ubrn, sizeof x->locked[0]);
                }
                /* The PAS: a person decided on the version it shows. */
                const char *p[] = { q->ubrn };
                char *v = db_text(x->db, "SELECT version FROM ers_referral WHERE ubrn = ?", 1, p, NULL);
                if (!v)
                        continue;
                q->decided = strtoll(v, NULL, 10) - q->behind;
                free(v);
                char decided[24], by[32];
                snprintf(decided, sizeof decided, "%" PRId64, q->decided);
                snprintf(by, sizeof by, "STAFF-W%u", q->n);
                const char *ins[] = { q->ubrn, q->review ? "RECORD_REVIEW_OUTCOME" : "ACCEPT_REFERRAL", q->outcome,
                                      q->review ? q->comment : NULL, q->priority, decided, by };
                assert_int_equal(db_exec_with(x->db,
                                              "INSERT INTO ers_outbox (ubrn, action, review_outcome, comment_text, "
                                              "new_priority, decided_version, requested_by, requested_at) VALUES (?, ?, "
                                              "?, ?, ?, ?, ?, '2026-07-01T09:30:00Z')",
                                              7, ins),
                                 0);
                q->inserted = true;
        }
}

/* ---- a seed ------------------------------------------------------------------------------------------ */

/* A seed's history: its worlds served one after the other, chaos rounds between, settles and checks.
 * With x->dry only what would be served is noted (note()): nothing runs. */
static void history(struct run_ctx *x)
{
        static const char *const init[] = { "--init-db", NULL };
        const struct plan *plan = x->plan;
        struct round r;

        x->g = wgen_new(x->seed, &plan->gen);
        assert_non_null(x->g);
        serve(x, wgen_first(x->g));
        if (!x->dry) {
                const struct spawn s = { .args = init };
                run_round(x, &s, 1, &r);
                if (r.status != 0)
                        say(x, "ersd --init-db exited %d", r.status);
                round_free(&r);
                x->db = db_open(x->conn);
                assert_non_null(x->db);
        }
        for (unsigned e = 0; e < plan->epochs; e++) {
                if (e > 0) {
                        serve(x, wgen_next(x->g, now(x)));
                        plan_outbox(x); /* on what the PAS shows after the settle before */
                }
                for (unsigned k = 0; k < plan->chaos; k++) {
                        if (k > 0 && chaos_below(&x->chaos, 2) == 0) /* e-RS changes between two chaos rounds, */
                                serve(x, wgen_revise(x->g, now(x), (const char *const *)x->spoiled, x->n_spoiled));
                        chaos_round(x); /* revising what the last one spoiled half-way (finding 2) */
                }
                if (x->dry)
                        continue;
                assert_int_equal(mock_post(&x->mock, "/_mock/fault/clear"), 200);
                struct round last;
                settle(x, &last);
                check_settled(x, &last); /* settled or not: what differs helps whoever reads it */
                round_free(&last);
        }
}

static void history_free(struct run_ctx *x)
{
        for (size_t i = 0; i < x->n_history; i++)
                world_free(x->history[i]);
        free(x->history);
        for (size_t i = 0; i < x->n_served; i++)
                world_free(x->served[i]);
        free(x->served);
        free(x->applied);
        wgen_free(x->g);
        EVP_MD_CTX_free(x->history_md);
        if (x->history_log)
                fclose(x->history_log);
}

static void history_begin(struct run_ctx *x, uint64_t seed, const struct plan *plan)
{
        *x = (struct run_ctx){ .seed = seed, .plan = plan, .chaos = seed ^ 0xc4a05c4a05ULL };
        x->history_md = EVP_MD_CTX_new();
        assert_non_null(x->history_md);
        assert_int_equal(EVP_DigestInit_ex(x->history_md, EVP_sha256(), NULL), 1);
        x->nofile = true; /* descriptors bounded whatever the documents (finding 15) */
}

static void history_digest(struct run_ctx *x, char hex[65])
{
        unsigned char d[32];

        assert_int_equal(EVP_DigestFinal_ex(x->history_md, d, NULL), 1);
        for (int i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", d[i]);
}

/* The digest of the history a seed plans: its worlds, faults, kills and limits, made without a mock,
 * a PAS or ersd.  The history a run serves must be this one, byte for byte: a seed replays. */
static void plan_digest(uint64_t seed, const struct plan *plan, char hex[65])
{
        struct run_ctx *x = calloc(1, sizeof *x);

        assert_non_null(x);
        history_begin(x, seed, plan);
        x->dry = true;
        x->dir = tmpdir_make();
        assert_non_null(x->dir);
        snprintf(x->world_file, sizeof x->world_file, "%s/world.json", x->dir);
        history(x);
        history_digest(x, hex);
        history_free(x);
        tmpdir_remove(x->dir);
        free(x->dir);
        free(x);
}

static void run_seed(uint64_t seed, const struct plan *plan, struct figures *fig)
{
        const char *args[] = { "--referrals", "1", "--attachments", "0", "--big-attachment", "0", "--stall-seconds",
                               "600", NULL };
        struct run_ctx *xp = calloc(1, sizeof *xp); /* large: not on the stack */
        char planned[65], again[65], served[65];

        assert_non_null(xp);
        struct run_ctx *x = xp;
        plan_digest(seed, plan, planned);
        plan_digest(seed, plan, again);
        history_begin(x, seed, plan);
        if (strcmp(planned, again) != 0)
                say(x, "one seed planned twice gives two histories (sha256 %.16s, then %.16s)", planned, again);
        x->dir = tmpdir_make();
        assert_non_null(x->dir);
        snprintf(x->conf, sizeof x->conf, "%s/ersd.conf", x->dir);
        snprintf(x->state, sizeof x->state, "%s/state", x->dir);
        snprintf(x->spool, sizeof x->spool, "%s/spool", x->state);
        snprintf(x->world_file, sizeof x->world_file, "%s/world.json", x->dir);
        assert_int_equal(mkdir(x->state, 0700), 0);
        if (getenv("ERSD_WORLD_KEEP")) { /* the history served, a line each, to compare two runs */
                char path[700];
                snprintf(path, sizeof path, "%s/history", x->dir);
                x->history_log = fopen(path, "we");
        }
        if (E.kind == ENGINE_SQLITE) {
                snprintf(x->pas_file, sizeof x->pas_file, "%s/pas.db", x->dir);
                snprintf(x->conn, sizeof x->conn, "Driver=SQLite3;Database=%s", x->pas_file);
        } else
                assert_int_equal(engine_new_database(&E, x->conn, sizeof x->conn), 0);
        assert_int_equal(mock_start(&x->mock, args), 0);

        history(x);
        history_digest(x, served);
        if (strcmp(served, planned) != 0) /* the world depended on something besides the seed */
                say(x, "the history served (sha256 %.16s) is not the one its seed plans (sha256 %.16s): it depends on "
                       "more than the seed, and a failure will not replay", served, planned);
        json_object *stats = mock_get(&x->mock, "/_mock/stats");
        if (stats)
                x->fig.faults = (unsigned)json_object_get_int64(json_object_object_get(stats, "faults_served"));
        json_object_put(stats);
        x->fig.referrals = (unsigned)now(x)->n_refs;
        x->fig.seeds = 1;
        for (size_t h = 1; h < x->n_history; h++) /* each referral's related ones a world stopped listing */
                for (size_t i = 0; i < x->history[h - 1]->n_refs; i++) {
                        const struct wref *was = &x->history[h - 1]->refs[i], *is = world_find(x->history[h], was->ubrn);
                        for (size_t k = 0; is && k < was->n_related; k++) {
                                bool kept = false;
                                for (size_t j = 0; j < is->n_related; j++)
                                        kept |= strcmp(is->related[j], was->related[k]) == 0;
                                x->fig.unlisted += !kept;
                        }
                }

        printf("world: %s seed 0x%" PRIx64 ": epochs %u, rounds %u, referrals %u, documents %u, faults %u, kills %u, "
               "related unlisted %u, requests %u (done %u, rejected %u, stale %u; writes applied %u; taken for applied %u), "
               "mismatches %u, "
               "spool leftovers %u; at most %ld descriptors at a kill point; history sha256 %.16s\n",
               E.name, seed, plan->epochs, x->fig.rounds, x->fig.referrals, x->fig.documents, x->fig.faults,
               x->fig.kills, x->fig.unlisted, x->outbox.inserted, x->outbox.done, x->outbox.rejected, x->outbox.stale,
               x->outbox.applied, x->outbox.guessed, x->fig.mismatches, x->fig.leftovers, x->fig.most_fds, served);
        if (x->fig.mismatches) {
                const char *b = getenv("ERSD_BUILD");
                printf("world: FAILED seed 0x%" PRIx64 " on %s; replay: %s%s%sERSD_WORLD_SEED=0x%" PRIx64
                       " ERSD_WORLD_ENGINE=%s %s/tests/integration/test_world\n",
                       seed, E.name, b ? "ERSD_BUILD=" : "", b ? b : "", b ? " " : "", seed, E.name, build_dir());
                fig->failed_seeds++;
        }
        fflush(stdout);
        fig->seeds += x->fig.seeds;
        fig->rounds += x->fig.rounds;
        fig->referrals += x->fig.referrals;
        fig->documents += x->fig.documents;
        fig->faults += x->fig.faults;
        fig->kills += x->fig.kills;
        fig->unlisted += x->fig.unlisted;
        fig->requests += x->outbox.inserted;
        fig->mismatches += x->fig.mismatches;
        fig->leftovers += x->fig.leftovers;

        db_close(x->db);
        mock_stop(&x->mock);
        history_free(x);
        free(x->lines.p);
        wcheck_seen_free(&x->seen);
        for (size_t i = 0; i < x->n_left; i++)
                free(x->left[i]);
        free(x->left);
        if (getenv("ERSD_WORLD_KEEP")) /* to look at: the world, the config, the PAS, the last outputs */
                printf("world: kept %s\n", x->dir);
        else
                tmpdir_remove(x->dir);
        free(x->dir);
        free(xp);
}

static uint64_t parse_seed(const char *s)
{
        return strtoull(s, NULL, 0);
}

/* The seeds an engine a soak runs: SOAK_SEEDS, or ERSD_SOAK_SEEDS (1 to 1000). */
static unsigned soak_seeds(void)
{
        const char *s = getenv("ERSD_SOAK_SEEDS");
        char *end = NULL;
        unsigned long n = s && *s ? strtoul(s, &end, 10) : 0;

        return end && *end == '\0' && n >= 1 && n <= 1000 ? (unsigned)n : SOAK_SEEDS;
}

static void run_engine(void)
{
        const char *one = getenv("ERSD_WORLD_SEED");
        bool soak = getenv("ERSD_SOAK") != NULL;
        struct plan plan_ = *(soak ? &SOAK : INSTRUMENTED ? &CHECK_ASAN : &CHECK);
        const struct plan *plan = &plan_;
        struct figures fig = { .seeds = 0 };

        plan_.gen.tame = getenv("ERSD_WORLD_TAME") != NULL;     /* checks the model itself */
        if (getenv("ERSD_WORLD_REFERRALS")) /* a bigger (or smaller) world */
                plan_.gen.referrals = (unsigned)strtoul(getenv("ERSD_WORLD_REFERRALS"), NULL, 10);
        if (getenv("ERSD_WORLD_CALM")) { /* the same worlds, without faults, kills or limits: what is left is not theirs */
                plan_.faults_max = plan_.kill_permille = plan_.pair_permille = plan_.fsize_permille = 0;
        }

        if (one && *one)
                run_seed(parse_seed(one), plan, &fig);
        else if (soak)
                for (unsigned i = 0; i < soak_seeds(); i++)
                        run_seed(fresh_seed + i * 0x10001ULL, plan, &fig);
        else {
                for (size_t i = 0; i < (INSTRUMENTED ? 1 : sizeof FIXED_SEEDS / sizeof FIXED_SEEDS[0]); i++)
                        run_seed(FIXED_SEEDS[i], plan, &fig);
                run_seed(fresh_seed, plan, &fig);
        }
        printf("world: %s: seeds %u, rounds %u, referrals %u, documents %u, faults %u, kills %u, mismatches %u, "
               "spool leftovers %u\n",
               E.name, fig.seeds, fig.rounds, fig.referrals, fig.documents, fig.faults, fig.kills, fig.mismatches,
               fig.leftovers);
        fflush(stdout);
        total.seeds += fig.seeds;
        total.rounds += fig.rounds;
        total.referrals += fig.referrals;
        total.documents += fig.documents;
        total.faults += fig.faults;
        total.kills += fig.kills;
        total.mismatches += fig.mismatches;
        total.leftovers += fig.leftovers;
        assert_int_equal(fig.mismatches, 0);
        assert_int_equal(fig.leftovers, 0);
}

static void test_world_sqlite(void **state)
{
        (void)state;
        run_engine();
}

static void test_world_postgresql(void **state)
{
        (void)state;
        run_engine();
}

static void test_world_mariadb(void **state)
{
        (void)state;
        run_engine();
}

static enum engine_kind group_kind; /* the engine of the group to start */

static int group_setup(void **state)
{
        (void)state;
        int r = engine_start(&E, group_kind);

        if (r < 0)
                print_error("could not start a database server (see above): %s\n", strerror(-r));
        return r < 0 ? -1 : 0;
}

static int group_teardown(void **state)
{
        (void)state;
        engine_stop(&E);
        return 0;
}

static bool engine_wanted(const char *name)
{
        const char *only = getenv("ERSD_WORLD_ENGINE");
        return !only || !*only || strcmp(only, name) == 0;
}

int main(void)
{
        static const struct {
                enum engine_kind kind;
                const char *name;
                const char *test_name; /* as cmocka prints it, and the hazard log names it */
                void (*test)(void **);
        } groups[] = {
                { ENGINE_SQLITE, "sqlite", "test_world_sqlite", test_world_sqlite },
                { ENGINE_POSTGRESQL, "postgresql", "test_world_postgresql", test_world_postgresql },
                { ENGINE_MARIADB, "mariadb", "test_world_mariadb", test_world_mariadb },
        };
        const char *tmp = getenv("TMPDIR"), *one = getenv("ERSD_WORLD_SEED");
        char logs[300];
        sigset_t chld;
        int failed = 0;

        /* The fresh seed first, so that a run that dies still says what it was. */
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        fresh_seed = ((uint64_t)ts.tv_sec << 20) ^ (uint64_t)ts.tv_nsec ^ ((uint64_t)getpid() << 40);
        if (one && *one)
                printf("world: seed %s (ERSD_WORLD_SEED)\n", one);
        else
                printf("world: fresh seed 0x%" PRIx64 " (replay: ERSD_WORLD_SEED=0x%" PRIx64
                       " %s/tests/integration/test_world)\n",
                       fresh_seed, fresh_seed, build_dir());
        fflush(stdout);

        sigemptyset(&chld);
        sigaddset(&chld, SIGCHLD);
        sigprocmask(SIG_BLOCK, &chld, NULL); /* wait_child() takes it with sigtimedwait */
        snprintf(work, sizeof work, "%s/ersd-test-world-XXXXXX", tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(work) || snprintf(logs, sizeof logs, "%s/driver-logs", work) < 0 || engine_odbcinst(work, logs) < 0) {
                fprintf(stderr, "test_world: cannot make %s or its odbcinst.ini\n", work);
                return 1;
        }
        for (size_t i = 0; i < sizeof groups / sizeof groups[0]; i++) {
                if (!engine_wanted(groups[i].name))
                        continue;
                const struct CMUnitTest tests[] = {
                        { .name = groups[i].test_name, .test_func = groups[i].test },
                };
                group_kind = groups[i].kind;
                failed += cmocka_run_group_tests_name(groups[i].name, tests, group_setup, group_teardown);
        }
        if (total.seeds)
                printf("world: all engines: seeds %u, rounds %u, referrals %u, documents %u, faults %u, kills %u, "
                       "mismatches %u, spool leftovers %u\n",
                       total.seeds, total.rounds, total.referrals, total.documents, total.faults, total.kills,
                       total.mismatches, total.leftovers);
        tmpdir_remove(work);
        return failed;
}
