/* SPDX-License-Identifier: MIT */
/*
 * One round of the sync engine (sync.h): the worklists due, then the
 * referrals due again, then patient re-matching; the fetch pool it runs; and
 * the writer's window, shared by both kinds of work: entries handed to the
 * fetchers, at most twice as many in flight as there are fetchers, each
 * written (write.c) as its fetch finishes, and dropped unwritten once the
 * round must stop.  Also the ledger read that reconnects first, and the
 * spool's tidy.  Not here: what one worklist does (worklist_sync.c), which
 * referrals are due again (due.c), the fetch (fetch.c) and the write (write.c).
 */
#include "round.h"
#include "outbox.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../adapters/pas.h"
#include "../adapters/pas_answer.h"
#include "../adapters/pas_status.h"
#include "log.h"
#include "write.h"

void round_say_unreachable(const char *worklist, const char *ubrn, struct sync_stats *stats) {
        if (worklist)
                stats->worklists_failed++;
        log_ctx_error(&(struct log_ctx){ .ubrn = ubrn, .worklist = worklist, .stage = "pas" },
                      "%s%s stopped at UBRN %s: the PAS database is unreachable; the rest waits in ers_retry",
                      worklist ? "worklist " : "referrals due again", worklist ? worklist : "", ubrn);
}

struct fetch_env round_fetch_env(const struct sync_ctx *ctx) {
        return (struct fetch_env){ .cfg = ctx->cfg, .ers = ctx->ers, .spool = ctx->spool, .stop = ctx->stop };
}

/* For an entry without a version: the SHA-256 of the answer the PAS's rows
 * were derived from (ers_referral.answer_sha256), at the version it has,
 * which A005's answer is compared with (daemon/fetch.c, answer_changed()).
 * Never "the latest kept": two answers of a version may arrive within one
 * second, and an answer may come back after another. */
static int kept_answer(struct sync_ctx *ctx, struct referral_job *j, struct errbuf *e) {
        char sha[65] = "";
        int64_t version = -1;
        int r;

        r = pas_answer_current(ctx->pas, j->entry->ubrn, &version, sha, e);
        if (r < 0)
                return r;
        j->compare_answer = true;
        if (version == j->ls.version)
                memcpy(j->kept_sha256, sha, sizeof sha);
        return 0;
}

int round_prepare_job(struct sync_ctx *ctx, struct referral_job *j, const char *worklist,
                      const struct worklist_entry *entry, const struct ledger_state *ls, struct errbuf *e) {
        int r;

        referral_job_init(j, worklist, entry, ls);
        if (!ls->found)
                return 0;
        r = pas_documents_known(ctx->pas, entry->ubrn, &j->known, &j->n_known, e);
        if (r < 0)
                return err_prefix(e, r, "documents stored");
        if (entry->version < 0 && ls->complete) {
                r = kept_answer(ctx, j, e);
                if (r < 0)
                        return err_prefix(e, r, "answers kept");
        }
        return 0;
}

/* The next fetched job, the watchdog (and lease) fed while waiting as long as
 * the fetchers' transfers move (never while all are stuck: see
 * ers_client_progress()); NULL when none is in flight. */
static struct referral_job *next_fetched(struct sync_ctx *ctx, struct sync_stats *stats) {
        struct referral_job *j = NULL;
        double t0 = now_monotonic();
        uint64_t seen = ers_client_progress(ctx->ers);

        while (!j && fetch_pool_in_flight(ctx->pool) > 0) {
                j = fetch_pool_wait(ctx->pool, 1.0);
                uint64_t now = ers_client_progress(ctx->ers);
                if (!j && now != seen && ctx->between_referrals)
                        ctx->between_referrals(ctx->userdata);
                seen = now;
        }
        stats->writer_waited_s += now_monotonic() - t0;
        return j;
}

/*
 * Writes the next fetched job (after `r`, the round's state so far: once it
 * round_stops() it, fetched jobs are dropped unwritten, their
 * verified downloads left in the spool for the next round, the referrals
 * waiting in ers_retry).  A connection lost with the job before is connected
 * again first (reconnect.h), or the round stops there.  `worklist` names the
 * worklist being synced, NULL for the referrals due again.  Returns the
 * round's new state; *failed is set when a referral failed.
 */
static int write_next(struct sync_ctx *ctx, const char *worklist, int r, struct sync_stats *stats, bool *failed) {
        struct referral_job *j = next_fetched(ctx, stats);
        double t0;
        int w;

        if (!j)
                return r;
        if (r == 0) {
                r = reconnect_pas(&ctx->reconnect, ctx->pas, ctx->stop, ctx->between_referrals, ctx->userdata);
                if (r == -ENOTCONN)
                        round_say_unreachable(worklist, j->entry->ubrn, stats);
        }
        if (round_stops(r)) {
                referral_job_free(j);
                free(j);
                return r;
        }
        t0 = now_monotonic();
        w = finish_referral(ctx, j, stats, NULL);
        stats->writer_busy_s += now_monotonic() - t0;
        free(j);
        if (referral_stops_round(w))
                return w;
        if (w < 0)
                *failed = true;
        return r;
}

int round_write_all(struct sync_ctx *ctx, const char *worklist, int r, struct sync_stats *stats, bool *failed) {
        while (fetch_pool_in_flight(ctx->pool) > 0)
                r = write_next(ctx, worklist, r, stats, failed);
        return r;
}

/* Jobs in flight at most: each fetcher busy, and as many fetched and waiting
 * for the writer. */
static unsigned window(const struct sync_ctx *ctx) {
        return ctx->cfg->parallel_fetches > 1 ? 2 * (unsigned) ctx->cfg->parallel_fetches : 1;
}

int round_submit(struct sync_ctx *ctx, const char *phase, const char *worklist, const struct worklist_entry *entry,
                 const struct ledger_state *ls, struct sync_stats *stats, bool *failed) {
        struct referral_job *j;
        struct errbuf e = { { 0 } };
        int r = 0;

        while (fetch_pool_in_flight(ctx->pool) >= window(ctx) && r == 0)
                r = write_next(ctx, phase, r, stats, failed);
        if (r < 0)
                return r;
        j = malloc(sizeof *j);
        if (!j) {
                log_error("UBRN %s not synced: out of memory", entry->ubrn);
                stats->referrals_failed++;
                *failed = true;
                return 0;
        }
        r = round_prepare_job(ctx, j, worklist, entry, ls, &e);
        if (r < 0) {
                j->r = r;
                j->e = e;
                (void) finish_referral(ctx, j, stats, NULL); /* logged, recorded in ers_retry */
                free(j);
                *failed = true;
                return 0;
        }
        fetch_pool_submit(ctx->pool, j);
        return 0;
}

int round_ledger_get(struct sync_ctx *ctx, const char *ubrn, struct ledger_state *ret, struct errbuf *e) {
        int r;

        for (int attempt = 0;; attempt++) {
                r = reconnect_pas(&ctx->reconnect, ctx->pas, ctx->stop, ctx->between_referrals, ctx->userdata);
                if (r < 0)
                        return r;
                r = pas_ledger_get(ctx->pas, ubrn, ret, e);
                if (r >= 0 || !pas_connection_lost(ctx->pas) || attempt > 0)
                        return r;
        }
}

int round_read_ledger(struct sync_ctx *ctx, const char *ubrn, const char *worklist, struct ledger_state *ret,
                      struct sync_stats *stats) {
        struct errbuf e = { { 0 } };
        int r = round_ledger_get(ctx, ubrn, ret, &e);

        if (r < 0 && r != -ECANCELED) {
                stats->referrals_failed++;
                log_ctx_error(&(struct log_ctx){ .ubrn = ubrn, .worklist = worklist, .stage = "pas" },
                              "UBRN %s not synced: ledger: %s", ubrn, e.msg);
        }
        return r;
}

/* The fetchers of a round (ctx->pool), or none (threads <= 1: fetched in this thread). */
static int pool_start(struct sync_ctx *ctx, unsigned threads) {
        struct fetch_env env = round_fetch_env(ctx);
        struct errbuf e = { { 0 } };
        int r = fetch_pool_new(&env, threads, &ctx->pool, &e);

        if (r < 0)
                log_error("round not started: %s", e.msg);
        return r;
}

static void pool_stop(struct sync_ctx *ctx) {
        fetch_pool_free(ctx->pool);
        ctx->pool = NULL;
}

/* A sweep of the spool: the UBRNs waiting in ers_retry (queued, retrying or
 * parked), sorted, read at the first file found. */
struct queued {
        struct pas *pas;             /* borrowed */
        char (*ubrns)[UBRN_LEN + 1]; /* owned array */
        size_t n, cap;
        bool read;                   /* looked up (or tried to: then none is kept) */
};

static int on_queued(void *userdata, const struct waiting_row *row) {
        struct queued *q = userdata;

        if (row->kind == WAITING_DOCUMENTS)
                return 0;
        if (q->n == q->cap) {
                size_t cap = q->cap ? 2 * q->cap : 64;
                char (*p)[UBRN_LEN + 1] = realloc(q->ubrns, cap * sizeof *p);
                if (!p)
                        return -ENOMEM;
                q->ubrns = p;
                q->cap = cap;
        }
        memcpy(q->ubrns[q->n++], row->ubrn, sizeof q->ubrns[0]);
        return 0;
}

static int ubrn_cmp(const void *a, const void *b) {
        return strcmp(a, b);
}

/* spool_sweep()'s question: is `ubrn` waiting for a retry?  The list is read
 * once, at the first file; when it cannot be, nothing is kept (a download
 * removed is only fetched again). */
static bool keep_queued(void *userdata, const char *ubrn) {
        struct queued *q = userdata;

        if (!q->read) {
                struct errbuf e = { { 0 } };
                q->read = true;
                if (pas_waiting_list(q->pas, on_queued, q, &e) < 0) {
                        log_ctx_debug(&(struct log_ctx){ .stage = "spool" },
                                      "spool: referrals waiting for a retry not read (%s): their downloads go too",
                                      e.msg[0] ? e.msg : "out of memory");
                        q->n = 0;
                }
                if (q->n > 1)
                        qsort(q->ubrns, q->n, sizeof q->ubrns[0], ubrn_cmp);
        }
        return q->n > 0 && bsearch(ubrn, q->ubrns, q->n, sizeof q->ubrns[0], ubrn_cmp);
}

void sync_spool_tidy(struct sync_ctx *ctx, bool keep_queued_downloads) {
        struct queued q = { .pas = ctx->pas };
        int r = spool_sweep(ctx->spool, keep_queued_downloads ? keep_queued : NULL, &q);
        const char *what = keep_queued_downloads ? "at start, left by an earlier run that no referral waiting for "
                                                   "a retry needs"
                                                 : "after a round that finished cleanly";

        if (r < 0)
                log_ctx_warning(&(struct log_ctx){ .stage = "spool" }, "spool: not read %s: %s", what, strerror(-r));
        else if (r > 0)
                log_ctx_notice(&(struct log_ctx){ .stage = "spool" }, "spool: %d file(s) removed %s", r, what);
        free(q.ubrns);
}

static int round_worklists_and_due(struct sync_ctx *ctx, struct sync_stats *stats, const char *round_start) {
        bool failed = false;

        for (size_t i = 0; i < ctx->cfg->n_worklists; i++) {
                if (!ctx->poll || !ctx->poll[i])
                        continue;
                int r = sync_worklist(ctx, &ctx->cfg->worklists[i], stats);
                if (round_stops(r))
                        return r;
                if (r < 0)
                        failed = true;
        }
        if (!(ctx->stop && *ctx->stop)) {
                int r = sync_due(ctx, stats);
                if (round_stops(r))
                        return r;
                if (r < 0)
                        failed = true;
        }
        if (ctx->cfg->patient_lookup && !ctx->dry_run && !(ctx->stop && *ctx->stop))
                sync_rematch_patients(ctx, round_start, stats);
        return failed ? -EAGAIN : 0;
}

int sync_once(struct sync_ctx *ctx, struct sync_stats *stats) {
        char round_start[32];
        int r;

        memset(stats, 0, sizeof *stats);
        now_utc_iso(round_start);
        r = pool_start(ctx, (unsigned) ctx->cfg->parallel_fetches);
        if (r < 0)
                return r;
        r = round_worklists_and_due(ctx, stats, round_start);
        pool_stop(ctx);
        /* The return path last, never before a worklist: its requests share the rate limit only. */
        if (!round_stops(r) && !(ctx->stop && *ctx->stop)) {
                int w = outbox_send(ctx);
                if (round_stops(w))
                        r = w;
        }
        if (r == 0)
                sync_spool_tidy(ctx, false); /* nothing to keep: every referral written */
        if (stats->writer_busy_s + stats->writer_waited_s >= 0.05)
                log_debug("round: the PAS writer was busy %.2f s and waited %.2f s for fetches from e-RS "
                          "(ers.parallel_fetches = %ld)", stats->writer_busy_s, stats->writer_waited_s,
                          ctx->cfg->parallel_fetches);
        return r;
}
