/* SPDX-License-Identifier: MIT */
/*
 * The service: a sync run as the daemon, `--once` (with `--dry-run`) or
 * `ersd sync UBRN`.  The start-up checks (PAS schema, configured
 * statements, spool, e-RS origin and first token), READY=1, the lease's
 * standby, the rounds (sync.h) and the sleep between them, woken by a poll
 * time, a referral due again or a signal; a SIGHUP's reload applied in one
 * place between rounds.  Also the one-off spool of `--dry-run` and `sync
 * UBRN`.  Not here: the command line (main.c), the commands (commands.c),
 * what a round does (round.c), the progress line (progress.c).
 */
#include "service.h"

#include <dirent.h>
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "../adapters/pas.h"
#include "../adapters/pas_lease.h"
#include "../adapters/pas_mapping.h"
#include "../adapters/pas_patient.h"
#include "../adapters/pas_schedule.h"
#include "commands.h"
#include "complain.h"
#include "ers.h"
#include "lease.h"
#include "log.h"
#include "notify.h"
#include "polls.h"
#include "progress.h"
#include "reload.h"
#include "schedule.h"
#include "spool.h"
#include "statelock.h"
#include "status.h"
#include "sync.h"

static volatile sig_atomic_t stop_requested;   /* SIGTERM, SIGINT: end transfers, finish a write in hand, exit */
static volatile sig_atomic_t reload_requested; /* SIGHUP: re-read the configuration between rounds */

static void on_signal(int sig) {
        if (sig == SIGHUP)
                reload_requested = 1;
        else
                stop_requested = 1;
}

void service_catch_signals(void) {
        struct sigaction sa = { .sa_handler = on_signal };

        sigemptyset(&sa.sa_mask);
        sigaction(SIGTERM, &sa, NULL);
        sigaction(SIGINT, &sa, NULL);
        sigaction(SIGHUP, &sa, NULL);
        signal(SIGPIPE, SIG_IGN);
}

/* Between referrals (round.c calls it, and while it waits for fetches that move)
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
        struct complaint failing = { .said = false }; /* the lease's table: said once per wait */

        while (!stop_requested) {
                struct errbuf e = { { 0 } };
                int r = reconnect_pas_once(rc, pas); /* a lost connection: one attempt per tick */

                if (r == 0)
                        r = lease_tick(l, pas, false, &e);

                if (r > 0)
                        return 1;
                if (r < 0 && r != -ENOTCONN)
                        complain(&failing, 0, LOG_ERR, NULL, "lease: PAS database: %s; trying again", e.msg);
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
 * A SIGHUP, applied between rounds, here and only here: the configuration,
 * its e-RS client and its poll schedule replaced together or not at all
 * (reload_config()), the log level -v asked for kept, and the round's
 * context pointed at whatever now runs.
 */
static void apply_reload(struct config *cfg, struct ers_client **ers, int log_override, struct poll_schedule *polls,
                         struct sync_ctx *ctx) {
        notify_reloading();
        reload_requested = 0;
        (void) reload_config(cfg, ers, polls, time(NULL), keep_alive, &stop_requested); /* refused: said, kept */
        if (log_override >= 0)
                log_set_level(log_override);
        ctx->cfg = cfg;
        ctx->ers = *ers;
        ctx->poll = polls->due;
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

int service_run(struct config *cfg, const struct run_mode *mode, int log_override) {
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
        if (command_open_pas(cfg, &pas) < 0)
                goto out;
        r = pas_check_schema(pas, &e);
        if (r < 0) {
                log_error("PAS database: %s", e.msg);
                goto out;
        }
        if (command_set_statements(cfg, pas) < 0)
                goto out;
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
                                .between_referrals = keep_alive, .poll = polls.due, .observer = &progress_observer,
                                .dry_run = mode->dry_run };
        if (!private_dir[0]) /* what an earlier run left and no referral waiting for a retry needs */
                sync_spool_tidy(&ctx, true);
        if (mode->sync_ubrn) {
                /* No lease: one referral in one transaction is safe beside the daemon that holds it
                 * (the ledger and the vendor's writer lock keep it written once). */
                status = command_sync_one(&ctx, mode->sync_ubrn);
                poll_schedule_free(&polls);
                goto out;
        }
        progress_start(mode->once, mode->dry_run);
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
                progress_round();
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
                                apply_reload(cfg, &ers, log_override, &polls, &ctx);
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
        progress_stop();
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
