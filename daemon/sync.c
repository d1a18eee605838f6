/* SPDX-License-Identifier: MIT */
#include "sync.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "fetch.h"
#include "model.h"
#include "log.h"
#include "schedule.h"
#include "skipped.h"
#include "write.h"

#define REMATCH_MAX 200 /* referrals whose patient is looked up again per round */
#define DUE_MAX 1000    /* referrals read again (ers_retry, documents owed) per round; the rest next round */


/* The round stops at `ubrn`: the PAS stayed unreachable (reconnect.h).  `worklist`
 * is the worklist being synced, NULL for the referrals due again. */
static void say_unreachable(const char *worklist, const char *ubrn, struct sync_stats *stats) {
        if (worklist)
                stats->worklists_failed++;
        log_ctx_error(&(struct log_ctx){ .ubrn = ubrn, .worklist = worklist, .stage = "pas" },
                      "%s%s stopped at UBRN %s: the PAS database is unreachable; the rest waits in ers_retry",
                      worklist ? "worklist " : "referrals due again", worklist ? worklist : "", ubrn);
}

/* What a fetch uses: the round's e-RS client (or, on a fetching thread, a lane of it). */
static struct fetch_env fetch_env_of(const struct sync_ctx *ctx) {
        return (struct fetch_env){ .cfg = ctx->cfg, .ers = ctx->ers, .spool = ctx->spool, .stop = ctx->stop };
}

/* A job for `entry` with what the fetch needs of the PAS and cannot read
 * itself: the ledger's row, and when it has one, the documents stored with
 * the referral.  On failure the job holds nothing. */
static int prepare_job(struct sync_ctx *ctx, struct referral_job *j, const char *worklist,
                       const struct worklist_entry *entry, const struct ledger_state *ls, struct errbuf *e) {
        int r;

        referral_job_init(j, worklist, entry, ls);
        if (!ls->found)
                return 0;
        r = pas_documents_known(ctx->pas, entry->ubrn, &j->known, &j->n_known, e);
        return r < 0 ? err_prefix(e, r, "documents stored") : 0;
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
 * is -ECANCELED, -ESTALE or -ENOTCONN, fetched jobs are dropped unwritten, their
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
                        say_unreachable(worklist, j->entry->ubrn, stats);
        }
        if (r == -ECANCELED || r == -ESTALE || r == -ENOTCONN) {
                referral_job_free(j);
                free(j);
                return r;
        }
        t0 = now_monotonic();
        w = finish_referral(ctx, j, stats, NULL);
        stats->writer_busy_s += now_monotonic() - t0;
        free(j);
        if (w == -ECANCELED || w == -ESTALE)
                return w;
        if (w < 0)
                *failed = true;
        return r;
}

/* Every job in flight written (or dropped, see write_next()). */
static int write_all(struct sync_ctx *ctx, const char *worklist, int r, struct sync_stats *stats, bool *failed) {
        while (fetch_pool_in_flight(ctx->pool) > 0)
                r = write_next(ctx, worklist, r, stats, failed);
        return r;
}

/* Jobs in flight at most: each fetcher busy, and as many fetched and waiting
 * for the writer. */
static unsigned window(const struct sync_ctx *ctx) {
        return ctx->cfg->parallel_fetches > 1 ? 2 * (unsigned) ctx->cfg->parallel_fetches : 1;
}

/*
 * Hands one entry of `worklist` to the fetchers (prepare_job() first), after
 * writing what is fetched while the window is full (`phase`: as for
 * write_next()).  The entry (borrowed) must live until write_all().  Returns
 * the round's state (see write_next()).
 */
static int submit_referral(struct sync_ctx *ctx, const char *phase, const char *worklist,
                           const struct worklist_entry *entry, const struct ledger_state *ls, struct sync_stats *stats,
                           bool *failed) {
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
        r = prepare_job(ctx, j, worklist, entry, ls, &e);
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

static int cmp_entry_ptr(const void *a, const void *b) {
        const struct worklist_entry *const *x = a, *const *y = b;
        return strcmp((*x)->ubrn, (*y)->ubrn);
}

/* The ledger row of a UBRN, on a connection that is up: a lost one is
 * connected again first (reconnect.h), and a read that loses it is tried once
 * more.  -ENOTCONN when the PAS stays unreachable, -ECANCELED when stopped. */
static int ledger_get(struct sync_ctx *ctx, const char *ubrn, struct ledger_state *ret, struct errbuf *e) {
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

/* Whether the worklist's "budget spent" was said today already: said once a UK day. */
static bool over_budget_told(const char *worklist, const char *day) {
        static struct {
                char worklist[65];
                char day[SCHED_UK_DAY_LEN];
        } told[64];

        for (size_t i = 0; i < sizeof told / sizeof told[0]; i++) {
                if (strcmp(told[i].worklist, worklist) == 0 || !told[i].worklist[0]) {
                        bool said = strcmp(told[i].day, day) == 0;
                        snprintf(told[i].worklist, sizeof told[i].worklist, "%s", worklist);
                        memcpy(told[i].day, day, SCHED_UK_DAY_LEN);
                        return said;
                }
        }
        return false;
}

/* ers_poll for the worklist, in a transaction of its own; a failure is logged, never fatal. */
static void record_poll(struct sync_ctx *ctx, const char *worklist, const char *polled_at, const char *result,
                        const char *correlation_id, const char *next_at, long referrals) {
        struct errbuf e = { { 0 } };
        int r = pas_begin(ctx->pas, &e);

        if (r == 0)
                r = pas_poll_put(ctx->pas, worklist, polled_at, result, correlation_id, next_at, referrals, &e);
        if (r == 0)
                r = pas_commit(ctx->pas, &e);
        else
                pas_rollback(ctx->pas);
        if (r < 0)
                log_ctx_warning(&(struct log_ctx){ .worklist = worklist, .stage = "pas" },
                                "worklist %s: ers_poll not updated: %s", worklist, e.msg);
}

/*
 * Takes one call from the service's budget for the UK day, committed before
 * the call: 1 when taken, 0 when the budget is spent (said once a day, and in
 * ers_poll), <0 when it could not be counted (then no call is made).
 */
static int take_budget(struct sync_ctx *ctx, const struct worklist_conf *wl, const char *next_at,
                       struct sync_stats *stats) {
        struct log_ctx lc = { .worklist = wl->name, .stage = "worklist" };
        struct errbuf e = { { 0 } };
        char day[SCHED_UK_DAY_LEN], result[256];
        long calls = 0;
        int r;

        sched_uk_day(time(NULL), day);
        r = pas_budget_spend(ctx->pas, wl->service_id, day, ctx->cfg->worklist_calls_per_day, &calls, &e);
        if (r < 0) {
                stats->worklists_failed++;
                log_ctx_error(&lc, "worklist %s not read: its call could not be counted against the budget first: %s",
                              wl->name, e.msg);
                return r;
        }
        if (r == 0) {
                stats->worklists_over_budget++;
                snprintf(result, sizeof result,
                         "not read: service %s has had its %ld worklist calls for %s (UK day); next poll %s",
                         wl->service_id, calls, day, next_at);
                if (!over_budget_told(wl->name, day))
                        log_ctx_warning(&lc, "worklist %s %s", wl->name, result);
                if (!ctx->dry_run)
                        record_poll(ctx, wl->name, NULL, result, NULL, next_at, -1);
                return 0;
        }
        log_ctx_debug(&lc, "worklist %s: call %ld of %ld for service %s on %s", wl->name, calls,
                      ctx->cfg->worklist_calls_per_day, wl->service_id, day);
        return 1;
}

/* The ledger's state of a UBRN; a failure is the referral's (counted and logged). */
static int read_ledger(struct sync_ctx *ctx, const char *ubrn, const char *worklist, struct ledger_state *ret,
                       struct sync_stats *stats) {
        struct errbuf e = { { 0 } };
        int r = ledger_get(ctx, ubrn, ret, &e);

        if (r < 0 && r != -ECANCELED) {
                stats->referrals_failed++;
                log_ctx_error(&(struct log_ctx){ .ubrn = ubrn, .worklist = worklist, .stage = "pas" },
                              "UBRN %s not synced: ledger: %s", ubrn, e.msg);
        }
        return r;
}

/* Whether a worklist entry needs writing: not in the ledger, or at an older version. */
static bool entry_needs_write(const struct worklist_entry *entry, const struct ledger_state *ls) {
        return !ls->found || (entry->version >= 0 && entry->version > ls->version);
}

/*
 * After the A008: ers_poll, and an ers_retry row for each entry that needs
 * writing, in one transaction, so that a round cut short (crash, stop, lease
 * lost) leaves them due without another worklist call.  `ls` holds each
 * sorted entry's ledger state (found=false and version -2 when unread).
 */
static void record_worklist(struct sync_ctx *ctx, const struct worklist_conf *wl, const struct worklist *w,
                            const struct worklist_entry **order, const struct ledger_state *ls, const char *polled_at,
                            const char *correlation_id, const char *next_at) {
        struct errbuf e = { { 0 } };
        size_t n = w->n;
        char result[256];
        int r;

        skipped_poll_result(w, result, sizeof result);
        r = pas_begin(ctx->pas, &e);
        if (r == 0)
                r = pas_poll_put(ctx->pas, wl->name, polled_at, result, correlation_id, next_at, (long) n, &e);
        for (size_t i = 0; i < n && r == 0; i++)
                if (ls[i].version != -2 && entry_needs_write(order[i], &ls[i]) &&
                    (i == 0 || strcmp(order[i - 1]->ubrn, order[i]->ubrn) != 0))
                        r = pas_retry_seen(ctx->pas, wl->name, order[i], polled_at, &e);
        if (r == 0)
                r = pas_commit(ctx->pas, &e);
        else
                pas_rollback(ctx->pas);
        if (r < 0)
                log_ctx_warning(&(struct log_ctx){ .worklist = wl->name, .stage = "pas" },
                                "worklist %s: its referrals are synced now but not queued in ers_retry (a stop "
                                "before they are written leaves them to the next worklist call): %s",
                                wl->name, e.msg);
}

/* audit_worklist_poll() of what the worklist lists: its entries, and those
 * skipped as malformed whose UBRN was readable (they are listed still).  With
 * one skipped whose UBRN was not, nobody can say who left: nothing is
 * recorded (one line says so), and the next poll judges. */
static int record_listing(struct sync_ctx *ctx, const char *worklist, const struct worklist_entry **order,
                          const struct worklist *w, const char *correlation_id, unsigned *ret_left,
                          unsigned *ret_returned, struct errbuf *e) {
        const struct worklist_entry **listing = NULL;
        struct worklist_entry *extra = NULL;
        size_t n = 0;
        int r;

        if (w->n_skipped == 0)
                return audit_worklist_poll(ctx->pas, worklist, order, w->n, correlation_id, ret_left, ret_returned, e);
        r = skipped_listing(order, w->n, w, &listing, &n, &extra);
        if (r < 0)
                return err_set(e, r, "out of memory");
        if (r > 0) {
                log_ctx_warning(&(struct log_ctx){ .worklist = worklist, .correlation_id = correlation_id,
                                                   .stage = "worklist" },
                                "worklist %s: an entry without a readable UBRN was skipped: its latest entries and "
                                "who left it are not recorded this time (correlation id %s)",
                                worklist, correlation_id);
                return 0;
        }
        r = audit_worklist_poll(ctx->pas, worklist, listing, n, correlation_id, ret_left, ret_returned, e);
        free(listing);
        free(extra);
        return r;
}

static int sync_worklist(struct sync_ctx *ctx, const struct worklist_conf *wl, struct sync_stats *stats) {
        struct ers_call call = { .http_status = 0 };
        struct errbuf e = { { 0 } };
        struct worklist w = { 0 };
        const struct worklist_entry **order = NULL;
        struct ledger_state *ls = NULL;
        char polled_at[32], next_at[32], result[300];
        time_t now = time(NULL);
        bool failed = false;
        int r;

        /* A worklist call is budgeted: never spent while the PAS is known to be down. */
        r = reconnect_pas(&ctx->reconnect, ctx->pas, ctx->stop, ctx->between_referrals, ctx->userdata);
        if (r < 0) {
                stats->worklists_failed++;
                if (r == -ENOTCONN)
                        log_ctx_error(&(struct log_ctx){ .worklist = wl->name, .stage = "pas" },
                                      "worklist %s not read: the PAS database is unreachable", wl->name);
                return r;
        }
        utc_iso(now, polled_at);
        utc_iso(sched_next_poll(wl->poll_at, wl->n_poll_at, now), next_at);
        r = take_budget(ctx, wl, next_at, stats);
        if (r <= 0)
                return r < 0 ? r : -EAGAIN;

        r = ers_fetch_worklist(ctx->ers, wl->list_type, wl->service_id, &w, &call, &e);
        struct log_ctx lc = { .correlation_id = call.correlation_id[0] ? call.correlation_id : NULL,
                              .worklist = wl->name, .stage = "worklist" };
        if (r < 0) {
                stats->worklists_failed++;
                log_ctx_error(&lc, "worklist %s not read: %s", wl->name, e.msg);
                snprintf(result, sizeof result, "not read: %.240s", e.msg);
                if (!ctx->dry_run)
                        record_poll(ctx, wl->name, polled_at, result, call.correlation_id, next_at, -1);
                return r;
        }
        stats->worklists_read++;
        log_ctx_info(&lc, "worklist %s: %zu referral(s) (correlation id %s)", wl->name, w.n, call.correlation_id);
        if (w.n_skipped > 0) { /* the others go on; the round says it is incomplete */
                skipped_log(wl->name, &w, call.correlation_id);
                stats->worklist_entries_skipped += (unsigned) w.n_skipped;
                failed = true;
        }
        if (ctx->observer && ctx->observer->worklist_read)
                ctx->observer->worklist_read(ctx->observer->userdata, wl->name, w.n);

        /* Sorted, so a UBRN listed twice is synced once. */
        order = calloc(w.n ? w.n : 1, sizeof *order);
        ls = calloc(w.n ? w.n : 1, sizeof *ls);
        if (!order || !ls) {
                free(order);
                free(ls);
                worklist_free(&w);
                log_error("worklist %s: out of memory", wl->name);
                return -ENOMEM;
        }
        for (size_t i = 0; i < w.n; i++)
                order[i] = &w.entries[i];
        qsort(order, w.n, sizeof *order, cmp_entry_ptr);
        for (size_t i = 0; i < w.n; i++)
                if (pas_ledger_get(ctx->pas, order[i]->ubrn, &ls[i], &e) < 0)
                        ls[i] = (struct ledger_state){ .version = -2 }; /* read again below, which says why */
        /* A dry run writes nothing but the budget's count: no ers_poll, ers_retry or
         * ers_worklist_entry row, no referral marked as having left. */
        if (!ctx->dry_run)
                record_worklist(ctx, wl, &w, order, ls, polled_at, call.correlation_id, next_at);

        /* The latest entries, kept for `ersd reconcile`, and who left or came back. */
        unsigned left = 0, returned = 0;
        r = ctx->dry_run ? 0 : record_listing(ctx, wl->name, order, &w, call.correlation_id, &left, &returned, &e);
        if (r == -ESTALE) {
                free(order);
                free(ls);
                worklist_free(&w);
                return r;
        }
        if (r < 0) {
                failed = true;
                log_ctx_error(&(struct log_ctx){ .worklist = wl->name, .stage = "pas" },
                              "worklist %s: entries not recorded; who left it is checked on its next poll: %s",
                              wl->name, e.msg);
        } else if (left || returned)
                log_ctx_info(&lc, "worklist %s: %u referral(s) left the worklists, %u listed again", wl->name, left,
                             returned);
        r = 0;

        for (size_t i = 0; i < w.n; i++) {
                const struct worklist_entry *entry = order[i];

                if (ctx->between_referrals)
                        ctx->between_referrals(ctx->userdata);
                if (ctx->stop && *ctx->stop) {
                        r = -ECANCELED;
                        break;
                }
                if (i > 0 && strcmp(order[i - 1]->ubrn, entry->ubrn) == 0) {
                        log_warning("worklist %s lists UBRN %s twice; synced once", wl->name, entry->ubrn);
                        continue;
                }
                /* A connection lost with the referral before: back first, or the round stops here. */
                r = reconnect_pas(&ctx->reconnect, ctx->pas, ctx->stop, ctx->between_referrals, ctx->userdata);
                if (r == -ECANCELED)
                        break;
                if (r == -ENOTCONN) {
                        say_unreachable(wl->name, entry->ubrn, stats);
                        break;
                }
                if (ls[i].version == -2) {
                        r = ledger_get(ctx, entry->ubrn, &ls[i], &e);
                        if (r == -ECANCELED)
                                break; /* a stop came while waiting for the PAS */
                        if (r == -ENOTCONN) {
                                say_unreachable(wl->name, entry->ubrn, stats);
                                break;
                        }
                        if (r < 0) {
                                stats->referrals_failed++;
                                failed = true;
                                log_ctx_error(&(struct log_ctx){ .ubrn = entry->ubrn, .worklist = wl->name,
                                                                 .stage = "pas" },
                                              "UBRN %s not synced: ledger: %s", entry->ubrn, e.msg);
                                report_outcome(ctx, &(struct referral_outcome){ .ubrn = entry->ubrn,
                                                                                .worklist = wl->name,
                                                                                .version = entry->version,
                                                                                .result = REFERRAL_FAILED,
                                                                                .dry_run = ctx->dry_run });
                                continue;
                        }
                }
                if (ls[i].found && ls[i].complete && entry->version >= 0 && entry->version <= ls[i].version) {
                        stats->referrals_unchanged++;
                        report_outcome(ctx, &(struct referral_outcome){ .ubrn = entry->ubrn, .worklist = wl->name,
                                                                        .version = ls[i].version,
                                                                        .result = REFERRAL_UNCHANGED,
                                                                        .dry_run = ctx->dry_run });
                        continue;
                }
                r = submit_referral(ctx, wl->name, wl->name, entry, &ls[i], stats, &failed);
                if (r == -ECANCELED || r == -ESTALE) /* stopped, or the writer's lease lost */
                        break;
        }
        r = write_all(ctx, wl->name, r, stats, &failed); /* the entries stay alive until here */
        free(order);
        free(ls);
        worklist_free(&w);
        if (r == -ECANCELED || r == -ESTALE || r == -ENOTCONN)
                return r;
        return failed ? -EAGAIN : 0;
}

/* A worklist entry made from what the PAS kept of one ("" for a field not
 * kept, version -1 when unknown), for a referral read again without a
 * worklist call: a field it has no value for is not known (the specialty and
 * the NHS number are never kept), and the referral's stored value stands for
 * it (write.c).  Borrows the strings; ubrn is copied. */
static struct worklist_entry kept_entry(const char *ubrn, int64_t version, char *priority, char *service_id,
                                        char *service_name, char *referral_type) {
        struct worklist_entry entry = {
                .kept = true,
                .version = version,
                .priority = priority[0] ? priority : NULL,
                .service_id = service_id[0] ? service_id : NULL,
                .service_name = service_name[0] ? service_name : NULL,
                .referral_type = referral_type[0] ? referral_type : NULL,
        };

        snprintf(entry.ubrn, sizeof entry.ubrn, "%s", ubrn);
        return entry;
}

/*
 * Referrals due for another look without a worklist call: ers_retry rows
 * whose next attempt has come (failed before, parked, or queued by a round
 * that stopped) and ledger rows whose documents are owed and whose
 * next_check_at has come.  A005 and documents, as for a worklist entry made
 * from what ers_retry kept of it.
 */
static int sync_due(struct sync_ctx *ctx, struct sync_stats *stats) {
        struct due_referral *due = NULL;
        struct worklist_entry *entries = NULL; /* owned: each job's entry, alive until write_all() */
        struct errbuf e = { { 0 } };
        char now[32];
        size_t n = 0;
        bool failed = false;
        int r;

        now_utc_iso(now);
        r = reconnect_pas(&ctx->reconnect, ctx->pas, ctx->stop, ctx->between_referrals, ctx->userdata);
        if (r < 0)
                return r;
        r = pas_due_referrals(ctx->pas, now, DUE_MAX, &due, &n, &e);
        if (r < 0) {
                log_ctx_error(&(struct log_ctx){ .stage = "pas" }, "referrals due again not read: %s", e.msg);
                return r;
        }
        if (n > 0) {
                log_info("%zu referral(s) due for another look (failed before, or documents owed)", n);
                entries = calloc(n, sizeof *entries);
                if (!entries) {
                        due_referrals_free(due, n);
                        log_error("referrals due again: out of memory");
                        return -ENOMEM;
                }
        }
        for (size_t i = 0; i < n; i++) {
                struct due_referral *d = &due[i];
                struct ledger_state ls;

                entries[i] = kept_entry(d->ubrn, d->entry_version, d->priority, d->service_id, d->service_name,
                                        d->referral_type);
                if (ctx->between_referrals)
                        ctx->between_referrals(ctx->userdata);
                if (ctx->stop && *ctx->stop) {
                        r = -ECANCELED;
                        break;
                }
                r = reconnect_pas(&ctx->reconnect, ctx->pas, ctx->stop, ctx->between_referrals, ctx->userdata);
                if (r == 0)
                        r = read_ledger(ctx, d->ubrn, d->worklist, &ls, stats);
                if (r == -ECANCELED || r == -ENOTCONN)
                        break;
                if (r < 0) {
                        failed = true;
                        continue;
                }
                r = submit_referral(ctx, NULL, d->worklist[0] ? d->worklist : NULL, &entries[i], &ls, stats,
                                    &failed);
                if (r == -ECANCELED || r == -ESTALE)
                        break;
        }
        r = write_all(ctx, NULL, r, stats, &failed);
        free(entries);
        due_referrals_free(due, n);
        if (r == -ECANCELED || r == -ESTALE || r == -ENOTCONN)
                return r;
        return failed ? -EAGAIN : 0;
}

/*
 * Looks again for the PAS patient of referrals already in the PAS whose
 * patient was not found (UNMATCHED, AMBIGUOUS, or written before a lookup was
 * configured), at most REMATCH_MAX per round, the least recently checked
 * first, none checked after the round's first second.  Each outcome is written in its own
 * short transaction.  A failure is logged once and left to the next round: it
 * never fails the round (every referral is in the PAS already).
 */
static void rematch_patients(struct sync_ctx *ctx, const char *round_start, struct sync_stats *stats) {
        struct patient_rematch *list = NULL;
        struct errbuf e = { { 0 } };
        size_t n = 0;
        int r;

        r = pas_patients_to_rematch(ctx->pas, round_start, REMATCH_MAX, &list, &n, &e);
        if (r < 0) {
                log_ctx_warning(&(struct log_ctx){ .stage = "patient" }, "patient matching not retried: %s", e.msg);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                struct patient_match m;

                if (ctx->stop && *ctx->stop)
                        break;
                r = pas_match_patient(ctx->pas, list[i].nhs_number, &m, &e);
                if (r == 0)
                        r = pas_begin(ctx->pas, &e);
                if (r == 0)
                        r = pas_put_patient_match(ctx->pas, list[i].ubrn, &m, &e);
                if (r == 0 && strcmp(list[i].patient_match, patient_match_name(m.status)) != 0) {
                        /* a write like any other: its audit row, never the patient's id */
                        char detail[64];
                        snprintf(detail, sizeof detail, "patient_match %s -> %s", list[i].patient_match,
                                 patient_match_name(m.status));
                        r = pas_audit_append(ctx->pas, list[i].ubrn, list[i].version, "PATIENT_MATCH", detail, NULL,
                                             NULL, &e);
                }
                if (r == 0)
                        r = pas_commit(ctx->pas, &e);
                if (r < 0) {
                        pas_rollback(ctx->pas);
                        log_ctx_warning(&(struct log_ctx){ .ubrn = list[i].ubrn, .stage = "patient" },
                                        "UBRN %s: patient matching not retried: %s", list[i].ubrn, e.msg);
                        break;
                }
                if (m.status == PATIENT_MATCHED) {
                        stats->patients_matched_later++;
                        log_ctx_info(&(struct log_ctx){ .ubrn = list[i].ubrn, .stage = "patient" },
                                     "UBRN %s: patient now MATCHED", list[i].ubrn);
                }
        }
        if (list)
                explicit_bzero(list, n * sizeof *list); /* NHS numbers */
        free(list);
}

/* The fetchers of a round (ctx->pool), or none (threads <= 1: fetched in this thread). */
static int pool_start(struct sync_ctx *ctx, unsigned threads) {
        struct fetch_env env = fetch_env_of(ctx);
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
                if (r == -ECANCELED || r == -ESTALE || r == -ENOTCONN)
                        return r;
                if (r < 0)
                        failed = true;
        }
        if (!(ctx->stop && *ctx->stop)) {
                int r = sync_due(ctx, stats);
                if (r == -ECANCELED || r == -ESTALE || r == -ENOTCONN)
                        return r;
                if (r < 0)
                        failed = true;
        }
        if (ctx->cfg->patient_lookup && !ctx->dry_run && !(ctx->stop && *ctx->stop))
                rematch_patients(ctx, round_start, stats);
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
        if (r == 0)
                sync_spool_tidy(ctx, false); /* nothing to keep: every referral written */
        if (stats->writer_busy_s + stats->writer_waited_s >= 0.05)
                log_debug("round: the PAS writer was busy %.2f s and waited %.2f s for fetches from e-RS "
                          "(ers.parallel_fetches = %ld)", stats->writer_busy_s, stats->writer_waited_s,
                          ctx->cfg->parallel_fetches);
        return r;
}

int sync_one(struct sync_ctx *ctx, const char *ubrn, const struct referral_origin *origin,
             struct sync_stats *stats, enum referral_result *ret_result) {
        struct referral_origin o = *origin; /* the entry below points into this copy */
        struct worklist_entry entry;
        struct ledger_state ls;
        struct referral_job j;
        struct errbuf e = { { 0 } };
        int r;

        memset(stats, 0, sizeof *stats);
        if (!ubrn_valid(ubrn))
                return -EINVAL;
        if (!o.found) /* nothing kept: a UBRN never seen */
                o.priority[0] = o.service_id[0] = o.service_name[0] = o.referral_type[0] = '\0';
        entry = kept_entry(ubrn, o.entry_version, o.priority, o.service_id, o.service_name, o.referral_type);
        r = ledger_get(ctx, ubrn, &ls, &e); /* on a connection that is up (reconnect.h) */
        if (r < 0 && e.msg[0])
                err_prefix(&e, r, "ledger");
        if (r == 0)
                r = prepare_job(ctx, &j, o.found && o.worklist[0] ? o.worklist : NULL, &entry, &ls, &e);
        if (r < 0) {
                stats->referrals_failed++;
                log_ctx_error(&(struct log_ctx){ .ubrn = ubrn, .stage = "pas" }, "UBRN %s not synced: %s", ubrn,
                              e.msg[0] ? e.msg : strerror(-r));
                return r;
        }
        /* One referral: fetched here, in this thread. */
        struct fetch_env env = fetch_env_of(ctx);
        fetch_referral(&env, &j);
        return finish_referral(ctx, &j, stats, ret_result);
}
