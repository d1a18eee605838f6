/* SPDX-License-Identifier: MIT */
/*
 * What `ersd --once` shows while it runs: the progress line on a terminal
 * (referrals done of those listed, documents, MiB), the --dry-run report (a
 * line per referral: what would be written), both built on the engine's
 * observer (sync.h), and the round's summary line.  Not here: the service
 * loop (service.c), the log (log.c).
 */
#include "progress.h"

#include <inttypes.h>
#include <stdio.h>
#include <unistd.h>

#include "escape.h"
#include "log.h"
#include "util.h"

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

void progress_clear(void) {
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

const struct sync_observer progress_observer = {
        .worklist_read = on_worklist_read,
        .referral_done = on_referral_done,
};

void progress_start(bool once, bool dry_run) {
        report = (struct run_report){ .dry_run = dry_run,
                                      .progress = once && isatty(STDERR_FILENO) && !log_to_journal() };
        if (report.progress)
                log_set_stderr_hook(progress_erase);
}

void progress_round(void) {
        report.total = report.done = 0;
        report.documents = 0;
        report.bytes = 0;
}

void progress_stop(void) {
        progress_clear();
        log_set_stderr_hook(NULL);
}

void format_summary(const struct sync_stats *s, bool dry_run, double seconds, char *buf, size_t size) {
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

void print_summary(const char *summary) {
        printf("ersd: %s\n", summary);
        fflush(stdout);
}
