/* SPDX-License-Identifier: MIT */
/*
 * ersd: brings NHS e-Referral Service referrals into the PAS database.
 * Lifecycle, command line and modes; the work is in sync.c.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../adapters/pas.h"
#include "audit.h"
#include "config.h"
#include "ers.h"
#include "escape.h"
#include "lease.h"
#include "log.h"
#include "notify.h"
#include "reconcile.h"
#include "polls.h"
#include "schedule.h"
#include "spool.h"
#include "statelock.h"
#include "status.h"
#include "sync.h"

#define EXIT_SYNC_FAILED 1 /* something was not synced: see the log */
#define EXIT_USAGE 2       /* bad command line or configuration */

static volatile sig_atomic_t stop_requested;   /* SIGTERM, SIGINT: end transfers, finish a write in hand, exit */
static volatile sig_atomic_t reload_requested; /* SIGHUP: re-read the configuration between rounds */

static void on_signal(int sig) {
        if (sig == SIGHUP)
                reload_requested = 1;
        else
                stop_requested = 1;
}

static void usage(FILE *out) {
        fprintf(out,
                "Usage: ersd [-c FILE] [--once [--dry-run] | --check-config | --init-db] [-v]\n"
                "       ersd [-c FILE] status [--json | --prometheus]\n"
                "       ersd [-c FILE] sync UBRN [-v]\n"
                "       ersd [-c FILE] audit [--json] UBRN\n"
                "       ersd [-c FILE] reconcile\n"
                "Brings NHS e-Referral Service referrals, their letters and attachments into the PAS database.\n"
                "\n"
                "  -c, --config FILE   configuration file (default " CONFIG_DEFAULT_PATH ")\n"
                "      --once          sync every configured worklist once, print a summary, exit\n"
                "      --dry-run       with --once: read and fetch everything, write nothing to the PAS,\n"
                "                      say per referral what would be written (worklist calls still count)\n"
                "      --check-config  report every problem in the configuration as FILE:LINE: message\n"
                "      --init-db       create the staging schema in the PAS database (idempotent)\n"
                "  -v, --verbose       log debug lines too\n"
                "  -h, --help          this text\n"
                "\n"
                "Commands:\n"
                "  status              what the PAS database says: worklist polls, budget left today,\n"
                "                      referrals waiting, parked and overdue; no e-RS call\n"
                "      --json          the same as one JSON object\n"
                "      --prometheus    the same as Prometheus text (node_exporter textfile collector)\n"
                "  sync UBRN           sync one referral now (A005, related referrals, documents), no worklist call\n"
                "  audit UBRN          print the referral's audit trail (--json: as JSON); exit 1 when the\n"
                "                      PAS does not know the UBRN\n"
                "  reconcile           compare the PAS with the latest worklists (no worklist call is made)\n"
                "                      and list referrals missing, stale or unknown to e-RS; exit 1 if any\n"
                "\n"
                "Without a mode, reads each worklist at its poll times (within the e-RS budget of\n"
                "worklist calls) and re-reads unfinished referrals in between, until SIGTERM;\n"
                "SIGHUP re-reads the configuration (a file with any problem is refused and the old\n"
                "one kept).  --once reads every worklist now, budget permitting.\n"
                "Exit status: 0 success, 1 something was not synced (see the log), 2 bad usage or configuration;\n"
                "of status: 0 all well, 1 something needs a person, 3 the database cannot be read,\n"
                "4 an URGENT or TWO_WEEK_WAIT referral is overdue.\n");
}

static void report_to_stderr(void *userdata, const char *line) {
        (void) userdata;
        escape_fputs(line, stderr); /* it may quote the file (escape.h) */
        fputc('\n', stderr);
}

static void report_to_log(void *userdata, const char *line) {
        (void) userdata;
        log_error("%s", line);
}

/* Between referrals (sync.c calls it, and while it waits for fetches that move)
 * and while a transfer moves bytes (the e-RS client calls it): keep the
 * watchdog fed, and the lease renewed, through a long round or a long download
 * (never through a stuck one), and tell systemd as soon as a stop was asked for. */
static struct lease *held_lease; /* with database.lease_seconds: renewed from keep_alive too */
static struct pas *lease_pas;

static void keep_alive(void *userdata) {
        (void) userdata;
        notify_watchdog_maybe();
        if (stop_requested)
                notify_stopping();
        if (held_lease && held_lease->held) {
                /* A long download must not let the lease lapse; never inside a transaction. */
                struct errbuf e = { { 0 } };
                (void) lease_tick(held_lease, lease_pas, false, &e);
        }
}

/* With database.lease_seconds: waits, as standby, until this ersd holds the
 * lease (1), or a stop was asked for, or (--once) the lease stayed with a live
 * holder for twice its length (0).  Signals are blocked except inside ppoll. */
static int lease_wait(struct lease *l, struct pas *pas, struct reconnect *rc, bool once, const sigset_t *old_set) {
        double t0 = now_monotonic();
        bool error_logged = false;

        while (!stop_requested) {
                struct errbuf e = { { 0 } };
                int r = reconnect_pas_once(rc, pas); /* a lost connection: one attempt per tick */

                if (r == 0)
                        r = lease_tick(l, pas, false, &e);

                if (r > 0)
                        return 1;
                if (r < 0 && r != -ENOTCONN && !error_logged) {
                        log_error("lease: PAS database: %s; trying again", e.msg);
                        error_logged = true;
                }
                if (once && now_monotonic() - t0 > 2 * l->seconds) {
                        log_error("lease: another ersd holds it and is alive; --once does not sync");
                        return 0;
                }
                keep_alive(NULL);
                double left = l->seconds / 3;
                struct timespec ts = { .tv_sec = (time_t) left,
                                       .tv_nsec = (long) ((left - (double) (time_t) left) * 1e9) };
                (void) ppoll(NULL, 0, &ts, old_set);
        }
        return 0;
}

/*
 * SIGHUP: the new file is read and checked in full; it replaces the running
 * configuration (and the e-RS client built from it) only if it has no problem
 * and changes no key that needs a restart.  Otherwise the old one keeps running.
 */
static void reload(struct config *cfg, struct ers_client **ers) {
        struct config next;
        struct ers_client *next_ers = NULL;
        struct errbuf e = { { 0 } };

        reload_requested = 0;
        if (config_load(cfg->path, report_to_log, NULL, &next) < 0) {
                log_error("%s: reload refused; the running configuration is kept", cfg->path);
                return;
        }
        if (config_check_reload(cfg, &next, report_to_log, NULL) > 0) {
                log_error("%s: reload refused (restart needed); the running configuration is kept", cfg->path);
                config_free(&next);
                return;
        }
        if (ers_client_new(&next, &next_ers, &e) < 0) {
                log_error("%s: reload refused: e-RS client: %s", cfg->path, e.msg);
                config_free(&next);
                return;
        }
        ers_client_on_progress(next_ers, keep_alive, NULL);
        ers_client_free(*ers);
        *ers = next_ers;
        config_free(cfg);
        *cfg = next;
        log_set_level(cfg->log_level);
        log_notice("%s: configuration reloaded (%zu worklist%s)", cfg->path, cfg->n_worklists,
                   cfg->n_worklists == 1 ? "" : "s");
}

/* "sync done: referrals …; 0.1 s": the round's one line, printed and sent as STATUS=.
 * A dry run's says what would have been written. */
static void format_summary(const struct sync_stats *s, bool dry_run, double seconds, char *buf, size_t size) {
        char over[64] = "", skipped[64] = "";

        if (s->worklists_over_budget)
                snprintf(over, sizeof over, "; worklists over budget %u (not read)", s->worklists_over_budget);
        if (s->worklist_entries_skipped)
                snprintf(skipped, sizeof skipped, "; worklist entries skipped %u (malformed)",
                         s->worklist_entries_skipped);
        snprintf(buf, size,
                 "%s %s%s: referrals %u new, %u updated, %u unchanged, %u failed; "
                 "documents %u %s (%.1f MiB), %u not fetched; worklists failed %u%s%s; %.1f s",
                 dry_run ? "dry run" : "sync",
                 s->referrals_failed || s->worklists_failed || s->worklists_over_budget ||
                                 s->worklist_entries_skipped
                         ? "incomplete"
                         : "done",
                 dry_run ? ", nothing written to the PAS" : "", s->referrals_new, s->referrals_updated,
                 s->referrals_unchanged, s->referrals_failed, s->documents_stored, dry_run ? "to store" : "stored",
                 (double) s->bytes_stored / (1024.0 * 1024.0), s->documents_not_fetched, s->worklists_failed, over,
                 skipped, seconds);
}

static void print_summary(const char *summary) {
        printf("ersd: %s\n", summary);
        fflush(stdout);
}

/* "2026-11-23 07:00 GMT": an instant in UK time, as poll times are written. */
static void uk_time(time_t t, char ret[32]) {
        int offset = sched_uk_offset(t);
        time_t wall = t + offset;
        struct tm tm;

        if (!gmtime_r(&wall, &tm) || !strftime(ret, 32, "%Y-%m-%d %H:%M", &tm))
                snprintf(ret, 32, "?");
        snprintf(ret + strlen(ret), 32 - strlen(ret), " %s", offset ? "BST" : "GMT");
}

/* STATUS= while waiting: the last round's line, when the next round starts, and the next worklist poll. */
static void status_waiting(const char *summary, double seconds_left, time_t next_poll) {
        time_t at = time(NULL) + (time_t) seconds_left;
        char when[32], poll_at[32];

        uk_time(at, when);
        uk_time(next_poll, poll_at);
        notify_status("%s; next round at %s (UK); next worklist poll %s", summary, when + 11, poll_at);
}

/* Seconds from now to the next thing to do: a worklist's poll time, a referral
 * due again (ers_retry, documents owed), and at the latest poll_interval. */
static double seconds_to_next(const struct config *cfg, struct pas *pas, const struct poll_schedule *ps) {
        struct errbuf e = { { 0 } };
        time_t now = time(NULL), next = now + cfg->poll_interval_s, t;
        char due[32];

        t = poll_schedule_next(ps);
        if (t && t < next)
                next = t;
        if (pas_next_due(pas, due, &e) == 0 && due[0]) {
                if (strcmp(due, "0") == 0)
                        next = now;
                else if (utc_iso_parse(due, &t) == 0 && t < next)
                        next = t;
        }
        return next > now ? (double) (next - now) : 0;
}

/* The checks that need the database: the PAS prepares the configured
 * statements (patient lookup, mappings).  Reports each one it refuses as
 * FILE:LINE on stderr; returns how many. */
static unsigned check_statements(const struct config *cfg) {
        static const char *const keys[] = { "database.patient_lookup", "database.mapping.referral",
                                             "database.mapping.document" };
        const char *sql[] = { cfg->patient_lookup, cfg->map_referral, cfg->map_document };
        const char *at[] = { cfg->patient_lookup_at, cfg->map_referral_at, cfg->map_document_at };
        struct errbuf e = { { 0 } };
        struct pas *pas = NULL;
        unsigned refused = 0;

        if (!sql[0] && !sql[1] && !sql[2])
                return 0;
        if (pas_open(cfg->odbc_connection, cfg->adapter, &pas, &e) < 0) {
                for (size_t i = 0; i < 3; i++)
                        if (sql[i]) {
                                escape_fprintf(stderr, "%s: %s: cannot check it: %s", at[i], keys[i], e.msg);
                                fputc('\n', stderr);
                                refused++;
                        }
                return refused;
        }
        for (size_t i = 0; i < 3; i++) {
                int r;

                if (!sql[i])
                        continue;
                if (i == 0)
                        r = pas_set_patient_lookup(pas, sql[i], &e);
                else
                        r = pas_set_mapping(pas, i == 1 ? PAS_MAP_REFERRAL : PAS_MAP_DOCUMENT, sql[i], &e);
                if (r < 0) {
                        escape_fprintf(stderr, "%s: %s: %s", at[i], keys[i], e.msg);
                        fputc('\n', stderr);
                        refused++;
                }
        }
        pas_close(pas);
        return refused;
}

/* ---- --once on a terminal: the progress line; --dry-run: the report ---------------- */

struct run_report {
        bool progress;          /* draw the progress line on stderr (a terminal, not the journal) */
        bool shown;             /* the line is on screen now */
        double last_draw;       /* monotonic seconds */
        size_t total, done;     /* referrals listed by the worklists read so far, and done */
        unsigned documents;     /* stored (dry run: fetched and verified) */
        uint64_t bytes;
        bool dry_run;           /* print one line per referral on stdout */
};

static struct run_report report; /* one run per process */

/* The log's hook, called under the log's lock: lines come from the fetching threads too. */
static void progress_erase(void) {
        if (report.shown) {
                fputs("\r\033[K", stderr);
                fflush(stderr);
                report.shown = false;
        }
}

/* progress_erase() from anywhere else. */
static void progress_clear(void) {
        log_stderr_lock();
        progress_erase();
        log_stderr_unlock();
}

static void progress_draw(bool force) {
        double now = now_monotonic();

        if (!report.progress || (!force && report.shown && now - report.last_draw < 0.2))
                return;
        log_stderr_lock();
        fprintf(stderr, "\r\033[Kersd: referrals %zu/%zu, documents %u (%.1f MiB)", report.done, report.total,
                report.documents, (double) report.bytes / (1024.0 * 1024.0));
        fflush(stderr);
        report.shown = true;
        report.last_draw = now;
        log_stderr_unlock();
}

static void on_worklist_read(void *userdata, const char *worklist, size_t n) {
        (void) userdata;
        (void) worklist;
        report.total += n;
        progress_draw(false);
}

static const char *result_name(enum referral_result r, bool dry_run) {
        switch (r) {
        case REFERRAL_NEW:
                return dry_run ? "would be new" : "new";
        case REFERRAL_UPDATED:
                return dry_run ? "would be updated" : "updated";
        case REFERRAL_UNCHANGED:
                return "unchanged";
        case REFERRAL_FAILED:
                return "not read (see the log)";
        }
        return "?";
}

static void on_referral_done(void *userdata, const struct referral_outcome *o) {
        (void) userdata;
        report.done++;
        report.documents += o->documents;
        report.bytes += o->bytes;
        if (report.dry_run) {
                progress_clear();
                printf("ersd: dry run: UBRN %s", o->ubrn);
                if (o->version >= 0)
                        printf(" version %" PRId64, o->version);
                escape_fprintf(stdout, " (worklist %s): %s", o->worklist ? o->worklist : "-",
                               result_name(o->result, true));
                if (o->result == REFERRAL_NEW || o->result == REFERRAL_UPDATED)
                        printf("; documents %u to store (%.1f MiB), %u recorded not fetched", o->documents,
                               (double) o->bytes / (1024.0 * 1024.0), o->not_fetched);
                if (o->pending)
                        printf("; %u still PENDING", o->pending);
                printf("\n");
                fflush(stdout);
        }
        progress_draw(false);
}

static const struct sync_observer observer = {
        .worklist_read = on_worklist_read,
        .referral_done = on_referral_done,
};

/* ---- a spool of its own for --dry-run and ersd sync UBRN ---------------------------- */

/* Removes dir/spool's files, dir/spool and dir.  Missing is fine. */
static void private_state_remove(const char *dir) {
        char path[PATH_MAX];
        DIR *d;
        struct dirent *de;

        if (snprintf(path, sizeof path, "%s/spool", dir) >= (int) sizeof path)
                return;
        d = opendir(path);
        if (d) {
                while ((de = readdir(d)))
                        if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0)
                                (void) unlinkat(dirfd(d), de->d_name, 0);
                closedir(d);
        }
        (void) rmdir(path);
        (void) rmdir(dir);
}

/* Removes the one-off spools (below) of runs that died: their pid is gone.
 * They hold patient documents. */
static void remove_dead_oneoffs(const char *state_dir) {
        DIR *d = opendir(state_dir);
        struct dirent *de;

        if (d) {
                while ((de = readdir(d))) {
                        char *end;
                        char stale[PATH_MAX];
                        if (strncmp(de->d_name, "oneoff-", 7) != 0)
                                continue;
                        long pid = strtol(de->d_name + 7, &end, 10);
                        if (*end || pid <= 0 || (kill((pid_t) pid, 0) == 0 || errno != ESRCH))
                                continue;
                        if (snprintf(stale, sizeof stale, "%s/%s", state_dir, de->d_name) < (int) sizeof stale)
                                private_state_remove(stale);
                }
                closedir(d);
        }
}

/*
 * --dry-run and `ersd sync UBRN` may run while the daemon does: they download
 * into STATE_DIR/oneoff-<pid>/spool, never into the daemon's spool (whose
 * unfinished downloads a new spool_open() would remove), and remove it when
 * they end.  One left by a one-off run that died is removed by the next start
 * of either kind.
 */
static int private_state_dir(const char *state_dir, char *ret, size_t n) {
        if (mkdir(state_dir, 0700) < 0 && errno != EEXIST) {
                log_error("cannot create state directory %s: %s", state_dir, strerror(errno));
                return -errno;
        }
        remove_dead_oneoffs(state_dir);
        if (snprintf(ret, n, "%s/oneoff-%ld", state_dir, (long) getpid()) >= (int) n) {
                log_error("state directory path too long");
                return -ENAMETOOLONG;
        }
        return 0;
}

static int open_pas(const struct config *cfg, struct pas **ret) {
        struct errbuf e = { { 0 } };
        int r = pas_open(cfg->odbc_connection, cfg->adapter, ret, &e);

        if (r < 0) {
                log_error("PAS database: cannot connect: %s", e.msg);
                return r;
        }
        log_info("PAS database: adapter %s, %s", pas_adapter_name(*ret), pas_dbms(*ret));
        return 0;
}

static int run_init_db(const struct config *cfg) {
        struct errbuf e = { { 0 } };
        struct pas *pas = NULL;
        int r = open_pas(cfg, &pas);

        if (r < 0)
                return EXIT_SYNC_FAILED;
        r = pas_init_schema(pas, &e);
        if (r < 0)
                log_error("PAS database: cannot create the schema: %s", e.msg);
        else
                printf("ersd: PAS schema ready (adapter %s, %s)\n", pas_adapter_name(pas), pas_dbms(pas));
        pas_close(pas);
        return r < 0 ? EXIT_SYNC_FAILED : EXIT_SUCCESS;
}

/* ersd audit UBRN: the referral's history, for staff and auditors. */
static int run_audit(const struct config *cfg, const char *ubrn, bool json) {
        struct errbuf e = { { 0 } };
        struct pas *pas = NULL;
        int status = EXIT_SYNC_FAILED, r;

        if (open_pas(cfg, &pas) < 0)
                return EXIT_SYNC_FAILED;
        r = pas_check_schema(pas, &e);
        if (r >= 0)
                r = audit_print(pas, ubrn, json, stdout, &e);
        if (r == 0) {
                struct referral_stored st = { .found = false };
                r = pas_referral_stored(pas, ubrn, &st, &e);
                if (r >= 0 && st.found) {
                        printf("UBRN %s: in the PAS at version %" PRId64 ", with no audit row (written before "
                               "the audit trail existed)\n",
                               ubrn, st.version);
                        status = EXIT_SUCCESS;
                } else if (r >= 0)
                        fprintf(stderr, "ersd: UBRN %s: unknown to this PAS (no referral, no audit row)\n", ubrn);
                referral_stored_free(&st);
        } else if (r > 0)
                status = EXIT_SUCCESS;
        if (r < 0)
                log_error("PAS database: %s", e.msg);
        fflush(stdout);
        pas_close(pas);
        return status;
}

/* ersd reconcile: the PAS against the latest worklists (reconcile.h). */
static int run_reconcile(const struct config *cfg) {
        struct errbuf e = { { 0 } };
        struct pas *pas = NULL;
        struct ers_client *ers = NULL;
        int r;

        if (open_pas(cfg, &pas) < 0)
                return EXIT_SYNC_FAILED;
        r = pas_check_schema(pas, &e);
        if (r < 0)
                log_error("PAS database: %s", e.msg);
        if (r >= 0) {
                r = ers_client_new(cfg, &ers, &e);
                if (r < 0)
                        log_error("e-RS client: %s", e.msg);
        }
        if (r >= 0) {
                r = reconcile_run(pas, ers, stdout, &e);
                if (r < 0)
                        log_error("reconcile: PAS database: %s", e.msg);
        }
        fflush(stdout);
        ers_client_free(ers);
        pas_close(pas);
        return r == 0 ? EXIT_SUCCESS : EXIT_SYNC_FAILED;
}

/* How run_sync() runs: the loop, --once, --once --dry-run, or `sync UBRN`. */
struct run_mode {
        bool once;
        bool dry_run;
        const char *sync_ubrn; /* `ersd sync UBRN`, else NULL */
};

/* `ersd sync UBRN`: one referral now.  Exit 0 when the PAS holds it at e-RS's version. */
static int run_sync_one(struct sync_ctx *ctx, const char *ubrn) {
        struct referral_origin origin;
        struct errbuf e = { { 0 } };
        struct sync_stats stats;
        enum referral_result result = REFERRAL_FAILED;
        double t0 = now_monotonic();
        int r;

        r = pas_referral_origin(ctx->pas, ubrn, &origin, &e);
        if (r < 0) {
                log_ctx_error(&(struct log_ctx){ .ubrn = ubrn, .stage = "pas" }, "UBRN %s not synced: %s", ubrn, e.msg);
                return EXIT_SYNC_FAILED;
        }
        if (!origin.found)
                log_ctx_notice(&(struct log_ctx){ .ubrn = ubrn },
                               "UBRN %s: not seen on a worklist before; synced with no worklist", ubrn);
        else
                log_ctx_info(&(struct log_ctx){ .ubrn = ubrn }, "UBRN %s: worklist %s, as %s holds it", ubrn,
                             origin.worklist[0] ? origin.worklist : "none", origin.source);
        r = sync_one(ctx, ubrn, &origin, &stats, &result);
        if (r < 0) {
                printf("ersd: UBRN %s not synced, PAS unchanged (the log says why); %.1f s\n", ubrn,
                       now_monotonic() - t0);
                referral_origin_free(&origin);
                return EXIT_SYNC_FAILED;
        }
        escape_fprintf(stdout, "ersd: UBRN %s %s (worklist %s): documents %u stored (%.1f MiB), %u not fetched; %.1f s",
                       ubrn,
                       result == REFERRAL_UNCHANGED ? "already in the PAS at e-RS's version, nothing written"
                                                    : result == REFERRAL_NEW ? "written (new)" : "written (updated)",
                       origin.found && origin.worklist[0] ? origin.worklist : "none", stats.documents_stored,
                       (double) stats.bytes_stored / (1024.0 * 1024.0), stats.documents_not_fetched,
                       now_monotonic() - t0);
        putchar('\n');
        fflush(stdout);
        referral_origin_free(&origin);
        return EXIT_SUCCESS;
}

static int run_sync(struct config *cfg, const struct run_mode *mode, int log_override) {
        struct errbuf e = { { 0 } };
        struct pas *pas = NULL;
        struct ers_client *ers = NULL;
        struct spool *spool = NULL;
        struct sync_stats stats;
        sigset_t stop_set, old_set;
        struct overdue_memory overdue = { 0 };
        char private_dir[PATH_MAX] = "";
        int state_lock = -1;
        bool once = mode->once || mode->sync_ubrn;
        int status = EXIT_SYNC_FAILED, r;

        /* One ersd per state_dir, before anything is touched: a second one's spool_open()
         * would remove this one's downloads.  One-off runs have a spool of their own. */
        if (!mode->dry_run && !mode->sync_ubrn && state_lock_take(cfg->state_dir, &state_lock, &e) < 0) {
                log_error("%s", e.msg);
                goto out;
        }
        if (open_pas(cfg, &pas) < 0)
                goto out;
        r = pas_check_schema(pas, &e);
        if (r < 0) {
                log_error("PAS database: %s", e.msg);
                goto out;
        }
        if (cfg->patient_lookup && pas_set_patient_lookup(pas, cfg->patient_lookup, &e) < 0) {
                log_error("%s: database.patient_lookup: %s", cfg->patient_lookup_at, e.msg);
                goto out;
        }
        if (cfg->map_referral && pas_set_mapping(pas, PAS_MAP_REFERRAL, cfg->map_referral, &e) < 0) {
                log_error("%s: database.mapping.referral: %s", cfg->map_referral_at, e.msg);
                goto out;
        }
        if (cfg->map_document && pas_set_mapping(pas, PAS_MAP_DOCUMENT, cfg->map_document, &e) < 0) {
                log_error("%s: database.mapping.document: %s", cfg->map_document_at, e.msg);
                goto out;
        }
        if ((mode->dry_run || mode->sync_ubrn) &&
            private_state_dir(cfg->state_dir, private_dir, sizeof private_dir) < 0) {
                private_dir[0] = '\0';
                goto out;
        }
        r = spool_open(private_dir[0] ? private_dir : cfg->state_dir, &spool, &e);
        if (r < 0) {
                log_error("%s", e.msg);
                goto out;
        }
        if (!private_dir[0])
                remove_dead_oneoffs(cfg->state_dir);
        r = ers_client_new(cfg, &ers, &e);
        if (r < 0) {
                log_error("e-RS client: %s", e.msg);
                goto out;
        }
        ers_client_on_progress(ers, keep_alive, NULL);
        ers_client_on_stop(ers, &stop_requested); /* a stop ends a transfer within a second, the start's too */
        if (!once) {
                /* A connection and TLS handshake only: no call budget spent.  A certificate
                 * problem is configuration and stops the start; a network one is retried by
                 * every round, so ersd starts and says so. */
                notify_status("checking that the e-RS origin is reachable");
                r = ers_check_reachable(ers, &e);
                if (r == -EPROTO) {
                        log_ctx_error(&(struct log_ctx){ .stage = "start" }, "%s", e.msg);
                        goto out;
                }
                if (r < 0)
                        log_ctx_warning(&(struct log_ctx){ .stage = "start" }, "%s; every round tries again",
                                        e.msg);
                if (r == 0 && cfg->auth == AUTH_JWT) {
                        /* A first token: a refused key or kid is configuration, said before READY=1. */
                        notify_status("fetching a first access token");
                        r = ers_prepare_token(ers, &e);
                        if (r == -EACCES || r == -EPROTO) {
                                log_ctx_error(&(struct log_ctx){ .stage = "start" }, "%s", e.msg);
                                goto out;
                        }
                        if (r < 0)
                                log_ctx_warning(&(struct log_ctx){ .stage = "start" }, "%s; every round tries again",
                                                e.msg);
                }
                notify_status("ready: configuration, PAS database and e-RS origin checked; first round starting");
                notify_ready();
        }

        if (cfg->test_limits)
                log_notice("ers.base_url is a loopback address (a test mock): e-RS limits beyond production's are in "
                           "force: %ld worklist call(s) per service a day, %ld requests/s, PENDING re-checked after "
                           "%ld s, retries after %ld s",
                           cfg->worklist_calls_per_day, cfg->max_requests_per_second, cfg->pending_recheck_s,
                           cfg->retry_delay_s);
        /* --once reads every worklist now (budget permitting); loop mode at the poll times. */
        struct poll_schedule polls;
        r = poll_schedule_init(&polls, cfg, pas, time(NULL), !once, &e);
        if (r == -ENOMEM) {
                log_error("out of memory");
                goto out;
        }
        if (r < 0)
                log_ctx_warning(&(struct log_ctx){ .stage = "pas" }, "PAS database: %s; worklists are read at their "
                                "poll times, nothing caught up", e.msg);
        if (once)
                for (size_t i = 0; i < polls.n; i++)
                        polls.next[i] = 0;
        struct sync_ctx ctx = { .cfg = cfg, .ers = ers, .pas = pas, .spool = spool, .stop = &stop_requested,
                                .between_referrals = keep_alive, .poll = polls.due, .observer = &observer,
                                .dry_run = mode->dry_run };
        if (!private_dir[0]) /* what an earlier run left and no referral waiting for a retry needs */
                sync_spool_tidy(&ctx, true);
        if (mode->sync_ubrn) {
                /* No lease: one referral in one transaction is safe beside the daemon that holds it
                 * (the ledger and the vendor's writer lock keep it written once). */
                status = run_sync_one(&ctx, mode->sync_ubrn);
                poll_schedule_free(&polls);
                goto out;
        }
        report.dry_run = mode->dry_run;
        report.progress = mode->once && isatty(STDERR_FILENO) && !log_to_journal();
        if (report.progress)
                log_set_stderr_hook(progress_erase);
        struct lease lease;
        bool use_lease = cfg->lease_seconds > 0 && !mode->dry_run; /* a dry run writes nothing */
        if (use_lease) {
                lease_init(&lease, cfg->lease_seconds);
                held_lease = &lease;
                lease_pas = pas;
        }
        uint64_t watchdog_usec = notify_watchdog_usec();
        char summary[320];
        sigemptyset(&stop_set);
        sigaddset(&stop_set, SIGTERM);
        sigaddset(&stop_set, SIGINT);
        sigaddset(&stop_set, SIGHUP);
        sigprocmask(SIG_BLOCK, &stop_set, &old_set);
        for (;;) {
                if (use_lease && lease_wait(&lease, pas, &ctx.reconnect, once, &old_set) <= 0) {
                        status = EXIT_SYNC_FAILED;
                        break;
                }
                double t0 = now_monotonic();

                sigprocmask(SIG_SETMASK, &old_set, NULL); /* a stop signal may arrive during the round */
                (void) poll_schedule_take(&polls, cfg, time(NULL));
                report.total = report.done = 0;
                report.documents = 0;
                report.bytes = 0;
                r = sync_once(&ctx, &stats);
                sigprocmask(SIG_BLOCK, &stop_set, NULL);
                if (use_lease && r == -ESTALE) /* lost mid-round: say so, then wait as standby */
                        (void) lease_tick(&lease, pas, true, &e);
                progress_clear();
                if (r != -ESTALE)
                        status_warn_overdue(pas, cfg, &overdue);
                format_summary(&stats, mode->dry_run, now_monotonic() - t0, summary, sizeof summary);
                print_summary(summary);
                status = r == 0 ? EXIT_SUCCESS : EXIT_SYNC_FAILED;
                if (once || stop_requested)
                        break;
                /* Sleep until the next round: a poll time, a referral due again, or poll_interval,
                 * waking at once for a signal (no lost wake-up: the signals stay blocked except
                 * inside ppoll).  A reload is applied while waiting and does not bring a worklist
                 * call forward: e-RS budgets them. */
                /* At least a second between rounds: a row that stays due cannot make a busy loop. */
                double wait = seconds_to_next(cfg, pas, &polls);
                double next = now_monotonic() + (wait < 1 ? 1 : wait);
                status_waiting(summary, next - now_monotonic(), poll_schedule_next(&polls));
                while (!stop_requested) {
                        if (reload_requested) { /* may have come during the round */
                                struct errbuf re = { { 0 } };
                                notify_reloading();
                                reload(cfg, &ers);
                                if (log_override >= 0)
                                        log_set_level(log_override);
                                ers_client_on_stop(ers, &stop_requested);
                                poll_schedule_free(&polls);
                                if (poll_schedule_init(&polls, cfg, pas, time(NULL), false, &re) == -ENOMEM) {
                                        log_error("out of memory");
                                        break;
                                }
                                ctx.cfg = cfg;
                                ctx.ers = ers;
                                ctx.poll = polls.due;
                                next = now_monotonic() + seconds_to_next(cfg, pas, &polls);
                                status_waiting(summary, next - now_monotonic(), poll_schedule_next(&polls));
                                notify_ready();
                        }
                        if (watchdog_usec > 0)
                                notify_watchdog();
                        double left = next - now_monotonic();
                        if (left <= 0)
                                break;
                        /* With WatchdogSec=, wake at half its interval to feed it. */
                        if (watchdog_usec > 0 && left > (double) watchdog_usec / 2e6)
                                left = (double) watchdog_usec / 2e6;
                        /* With a lease, wake to renew it (or find it lost) every third of its length. */
                        if (use_lease && left > lease.seconds / 3)
                                left = lease.seconds / 3;
                        /* At least once a minute: the wall clock may have jumped (a poll time is wall time). */
                        if (left > 60)
                                left = 60;
                        struct timespec ts = { .tv_sec = (time_t) left,
                                               .tv_nsec = (long) ((left - (double) (time_t) left) * 1e9) };
                        (void) ppoll(NULL, 0, &ts, &old_set);
                        if (use_lease && lease_tick(&lease, pas, false, &e) == 0)
                                break; /* lost: standby until it is ours again */
                }
                if (stop_requested)
                        break;
        }
        sigprocmask(SIG_SETMASK, &old_set, NULL);
        poll_schedule_free(&polls);
        if (stop_requested) {
                notify_stopping();
                log_notice("stopped by signal");
                status = EXIT_SUCCESS;
        }
out:
        progress_clear();
        log_set_stderr_hook(NULL);
        overdue_memory_free(&overdue);
        held_lease = NULL;
        pas_lease_release(pas); /* a standby takes over at once */
        ers_client_free(ers);
        spool_close(spool);
        if (private_dir[0])
                private_state_remove(private_dir);
        if (state_lock >= 0)
                close(state_lock);
        pas_close(pas);
        return status;
}

int main(int argc, char **argv) {
        enum { OPT_ONCE = 0x100, OPT_CHECK, OPT_INIT_DB, OPT_DRY_RUN, OPT_JSON, OPT_PROMETHEUS };
        static const struct option options[] = {
                { "config", required_argument, NULL, 'c' }, { "once", no_argument, NULL, OPT_ONCE },
                { "check-config", no_argument, NULL, OPT_CHECK }, { "init-db", no_argument, NULL, OPT_INIT_DB },
                { "dry-run", no_argument, NULL, OPT_DRY_RUN }, { "json", no_argument, NULL, OPT_JSON },
                { "prometheus", no_argument, NULL, OPT_PROMETHEUS },
                { "verbose", no_argument, NULL, 'v' },      { "help", no_argument, NULL, 'h' },
                { NULL, 0, NULL, 0 },
        };
        const char *path = CONFIG_DEFAULT_PATH;
        int mode = 0, verbose = 0, c, status;
        bool dry_run = false, json = false, prometheus = false;
        struct config cfg;
        struct sigaction sa = { .sa_handler = on_signal };

        /* Before anything is created: the PAS (SQLite, its -wal and -shm), the
         * state directory and the spool hold patient data, and are never for
         * group or others, whatever umask ersd was started with (runuser,
         * sudo and a shell leave 022). */
        umask(0077);
        /* A file size limit (RLIMIT_FSIZE, LimitFSIZE=) reached must fail the
         * write with EFBIG, taken like a full disk (the referral waits, nothing
         * half-written), not kill ersd mid-transaction. */
        signal(SIGXFSZ, SIG_IGN);
        /* Before a secret is read: no core dump (it would hold the bearer token
         * and NHS numbers), and no other process of our user may read our
         * memory (/proc/PID/mem, ptrace).  The unit also sets LimitCORE=0. */
        if (prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) < 0) {
                fprintf(stderr, "ersd: cannot stop core dumps (prctl PR_SET_DUMPABLE): %s; not starting\n",
                        strerror(errno));
                return EXIT_USAGE;
        }

        while ((c = getopt_long(argc, argv, "c:vh", options, NULL)) != -1) {
                switch (c) {
                case 'c':
                        path = optarg;
                        break;
                case 'v':
                        verbose = 1;
                        break;
                case 'h':
                        usage(stdout);
                        return EXIT_SUCCESS;
                case OPT_ONCE:
                case OPT_CHECK:
                case OPT_INIT_DB:
                        if (mode && mode != c) {
                                fprintf(stderr, "ersd: --once, --check-config and --init-db exclude each other\n");
                                return EXIT_USAGE;
                        }
                        mode = c;
                        break;
                case OPT_DRY_RUN:
                        dry_run = true;
                        break;
                case OPT_JSON:
                        json = true;
                        break;
                case OPT_PROMETHEUS:
                        prometheus = true;
                        break;
                default:
                        usage(stderr);
                        return EXIT_USAGE;
                }
        }

        /* The commands: status, sync UBRN, audit UBRN, reconcile. */
        const char *command = optind < argc ? argv[optind++] : NULL;
        const char *ubrn = NULL;
        if (command && (strcmp(command, "sync") == 0 || strcmp(command, "audit") == 0)) {
                ubrn = optind < argc ? argv[optind++] : NULL;
                if (!ubrn || !ubrn_valid(ubrn)) {
                        escape_fprintf(stderr, "ersd: %s needs a UBRN (12 digits)%s%.40s%s", command,
                                       ubrn ? ": '" : "", ubrn ? ubrn : "", ubrn ? "' is not one" : "");
                        fputc('\n', stderr);
                        return EXIT_USAGE;
                }
        } else if (command && strcmp(command, "status") != 0 && strcmp(command, "reconcile") != 0) {
                escape_fprintf(stderr, "ersd: unexpected argument '%.80s'", command);
                fputc('\n', stderr);
                usage(stderr);
                return EXIT_USAGE;
        }
        if (optind < argc) {
                escape_fprintf(stderr, "ersd: unexpected argument '%.80s'", argv[optind]);
                fputc('\n', stderr);
                usage(stderr);
                return EXIT_USAGE;
        }
        bool is_status = command && strcmp(command, "status") == 0;
        if (command && mode) {
                fprintf(stderr, "ersd: %s takes none of --once, --check-config, --init-db\n", command);
                return EXIT_USAGE;
        }
        if (dry_run && mode != OPT_ONCE) {
                fprintf(stderr, "ersd: --dry-run goes with --once\n");
                return EXIT_USAGE;
        }
        if (json && !(is_status || (command && strcmp(command, "audit") == 0))) {
                fprintf(stderr, "ersd: --json goes with status or audit\n");
                return EXIT_USAGE;
        }
        if (prometheus && (!is_status || json)) {
                fprintf(stderr, "ersd: --prometheus goes with status, without --json\n");
                return EXIT_USAGE;
        }

        if (config_load(path, report_to_stderr, NULL, &cfg) < 0) {
                fprintf(stderr, "ersd: %s: configuration refused\n", path);
                return EXIT_USAGE;
        }
        if (mode == OPT_CHECK && check_statements(&cfg) > 0) {
                fprintf(stderr, "ersd: %s: configuration refused\n", path);
                config_free(&cfg);
                return EXIT_USAGE;
        }
        if (mode == OPT_CHECK) {
                printf("%s: configuration OK (%zu worklist%s)\n", path, cfg.n_worklists,
                       cfg.n_worklists == 1 ? "" : "s");
                config_free(&cfg);
                return EXIT_SUCCESS;
        }
        log_set_level(verbose ? LOG_DEBUG : cfg.log_level);
        if (is_status) { /* reads the database only, prints, exits */
                status = status_run(&cfg, json ? STATUS_FORMAT_JSON : prometheus ? STATUS_FORMAT_PROMETHEUS
                                                                                 : STATUS_FORMAT_TEXT,
                                    stdout);
                config_free(&cfg);
                return status;
        }

        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);

        if (command && strcmp(command, "audit") == 0)
                status = run_audit(&cfg, ubrn, json);
        else if (command && strcmp(command, "reconcile") == 0)
                status = run_reconcile(&cfg);
        else if (mode == OPT_INIT_DB)
                status = run_init_db(&cfg);
        else {
                struct run_mode run = { .once = mode == OPT_ONCE, .dry_run = dry_run,
                                        .sync_ubrn = command ? ubrn : NULL };
                status = run_sync(&cfg, &run, verbose ? LOG_DEBUG : -1);
        }
        config_free(&cfg);
        return status;
}
