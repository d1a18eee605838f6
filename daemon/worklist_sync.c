/* SPDX-License-Identifier: MIT */
/*
 * One worklist in a round (round.c): its call taken from the service's
 * budget for the UK day, A008, the poll recorded (ers_poll) with an ers_retry
 * row for every entry that needs writing, the listing recorded (who left the
 * worklists, who came back), then each entry the ledger has not got handed
 * to the writer's window.  Not here: the fetch and write of a referral
 * (fetch.c, write.c), referrals due again without a worklist call (due.c).
 */
#include "round.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../adapters/pas.h"
#include "../adapters/pas_audit.h"
#include "../adapters/pas_schedule.h"
#include "../adapters/pas_worklist.h"
#include "log.h"
#include "schedule.h"
#include "skipped.h"
#include "write.h"

static int cmp_entry_ptr(const void *a, const void *b) {
        const struct worklist_entry *const *x = a, *const *y = b;
        return strcmp((*x)->ubrn, (*y)->ubrn);
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
        struct pas_tx *tx = NULL;
        int r = pas_begin(ctx->pas, &tx, &e);

        if (r == 0)
                r = pas_poll_put(tx, worklist, polled_at, result, correlation_id, next_at, referrals, &e);
        if (r == 0)
                r = pas_commit(tx, &e);
        else
                pas_rollback(tx);
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
        struct pas_tx *tx = NULL;
        char day[SCHED_UK_DAY_LEN], result[256];
        long calls = 0;
        int r;

        sched_uk_day(time(NULL), day);
        /* In a transaction of its own, committed before the call goes: a call made is a call counted. */
        r = pas_begin(ctx->pas, &tx, &e);
        if (r == 0)
                r = pas_budget_spend(tx, wl->service_id, day, ctx->cfg->worklist_calls_per_day, &calls, &e);
        if (r >= 0) {
                int counted = r;
                r = pas_commit(tx, &e);
                r = r < 0 ? err_prefix(&e, r, "worklist budget of service %s", wl->service_id) : counted;
        } else
                pas_rollback(tx);
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

/* Whether a worklist entry needs writing: not in the ledger, or at an older version. */
static bool entry_needs_write(const struct worklist_entry *entry, const struct ledger_state *ls) {
        return !ls->found || (entry->version >= 0 && entry->version > ls->version);
}

/* The ledger's row of one entry of the worklist, read after the A008. */
struct entry_ledger {
        struct ledger_state ls; /* when read */
        bool read;              /* false: the read failed; read again before the entry is synced, which says why */
};

/*
 * After the A008: ers_poll, and an ers_retry row for each entry that needs
 * writing, in one transaction, so that a round cut short (crash, stop, lease
 * lost) leaves them due without another worklist call.  `ledger` holds each
 * sorted entry's ledger row (an entry whose row was not read is not queued).
 */
static void record_worklist(struct sync_ctx *ctx, const struct worklist_conf *wl, const struct worklist *w,
                            const struct worklist_entry **order, const struct entry_ledger *ledger,
                            const char *polled_at, const char *correlation_id, const char *next_at) {
        struct errbuf e = { { 0 } };
        struct pas_tx *tx = NULL;
        size_t n = w->n;
        char result[256];
        int r;

        skipped_poll_result(w, result, sizeof result);
        r = pas_begin(ctx->pas, &tx, &e);
        if (r == 0)
                r = pas_poll_put(tx, wl->name, polled_at, result, correlation_id, next_at, (long) n, &e);
        for (size_t i = 0; i < n && r == 0; i++)
                if (ledger[i].read && entry_needs_write(order[i], &ledger[i].ls) &&
                    (i == 0 || strcmp(order[i - 1]->ubrn, order[i]->ubrn) != 0))
                        r = pas_retry_seen(tx, wl->name, order[i], polled_at, &e);
        if (r == 0)
                r = pas_commit(tx, &e);
        else
                pas_rollback(tx);
        if (r < 0)
                log_ctx_warning(&(struct log_ctx){ .worklist = wl->name, .stage = "pas" },
                                "worklist %s: its referrals are synced now but not queued in ers_retry (a stop "
                                "before they are written leaves them to the next worklist call): %s",
                                wl->name, e.msg);
}

/*
 * After a successful poll of `worklist` (entries `sorted` by UBRN): records
 * its entries as the latest (ers_worklist_entry), then marks the referrals
 * that left the worklists and those that came back (ers_ledger.left_worklist_at),
 * each with an audit row (LEFT_WORKLIST, RETURNED), in one transaction, and
 * logs each.  *ret_left and *ret_returned count them.  0 or a negative errno
 * (-ESTALE: the writer's lease was lost).
 */
static int write_listing(struct pas *p, const char *worklist, const struct worklist_entry *const *sorted, size_t n,
                         const char *correlation_id, unsigned *ret_left, unsigned *ret_returned, struct errbuf *e) {
        struct listing_change *changes = NULL;
        struct pas_tx *tx = NULL;
        size_t n_changes = 0;
        unsigned left = 0, returned = 0;
        int r;

        r = pas_begin(p, &tx, e);
        if (r < 0)
                return r;
        r = pas_worklist_record(tx, worklist, sorted, n, correlation_id, e);
        if (r >= 0)
                r = pas_worklist_changes(tx, worklist, &changes, &n_changes, e);
        for (size_t i = 0; r >= 0 && i < n_changes; i++) {
                const struct listing_change *c = &changes[i];
                char detail[160];

                if (c->left)
                        snprintf(detail, sizeof detail,
                                 "no longer listed: worklist %s does not list it, nor does any other; "
                                 "its rows stay as last written",
                                 worklist);
                else
                        snprintf(detail, sizeof detail, "listed again on worklist %s", worklist);
                r = pas_ledger_set_left(tx, c->ubrn, c->left, e);
                if (r >= 0)
                        r = pas_audit_append(tx, c->ubrn, c->version, c->left ? "LEFT_WORKLIST" : "RETURNED", detail,
                                             NULL, correlation_id, e);
                if (c->left)
                        left++;
                else
                        returned++;
        }
        if (r >= 0)
                r = pas_commit(tx, e);
        else
                pas_rollback(tx);
        if (r < 0) {
                free(changes);
                return r;
        }
        for (size_t i = 0; i < n_changes; i++)
                log_ctx_info(&(struct log_ctx){ .ubrn = changes[i].ubrn, .worklist = worklist, .stage = "worklist" },
                             "UBRN %s: %s (correlation id %s)", changes[i].ubrn,
                             changes[i].left ? "left the worklists; its rows stay in the PAS"
                                             : "listed again on a worklist",
                             correlation_id);
        free(changes);
        *ret_left = left;
        *ret_returned = returned;
        return 0;
}

/* write_listing() of what the worklist lists: its entries, and those
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
                return write_listing(ctx->pas, worklist, order, w->n, correlation_id, ret_left, ret_returned, e);
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
        r = write_listing(ctx->pas, worklist, listing, n, correlation_id, ret_left, ret_returned, e);
        free(listing);
        free(extra);
        return r;
}

int sync_worklist(struct sync_ctx *ctx, const struct worklist_conf *wl, struct sync_stats *stats) {
        struct ers_call call = { .http_status = 0 };
        struct errbuf e = { { 0 } };
        struct worklist w = { 0 };
        const struct worklist_entry **order = NULL;
        struct entry_ledger *ledger = NULL; /* owned: [i] of order[i] */
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
        ledger = calloc(w.n ? w.n : 1, sizeof *ledger);
        if (!order || !ledger) {
                free(order);
                free(ledger);
                worklist_free(&w);
                log_error("worklist %s: out of memory", wl->name);
                return -ENOMEM;
        }
        for (size_t i = 0; i < w.n; i++)
                order[i] = &w.entries[i];
        qsort(order, w.n, sizeof *order, cmp_entry_ptr);
        for (size_t i = 0; i < w.n; i++) /* one that fails is read again below, which says why */
                ledger[i].read = pas_ledger_get(ctx->pas, order[i]->ubrn, &ledger[i].ls, &e) >= 0;
        /* A dry run writes nothing but the budget's count: no ers_poll, ers_retry or
         * ers_worklist_entry row, no referral marked as having left. */
        if (!ctx->dry_run)
                record_worklist(ctx, wl, &w, order, ledger, polled_at, call.correlation_id, next_at);

        /* The latest entries, kept for `ersd reconcile`, and who left or came back. */
        unsigned left = 0, returned = 0;
        r = ctx->dry_run ? 0 : record_listing(ctx, wl->name, order, &w, call.correlation_id, &left, &returned, &e);
        if (r == -ESTALE) {
                free(order);
                free(ledger);
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
                if (round_stops(r)) {
                        if (r == -ENOTCONN)
                                round_say_unreachable(wl->name, entry->ubrn, stats);
                        break;
                }
                if (!ledger[i].read) {
                        r = round_ledger_get(ctx, entry->ubrn, &ledger[i].ls, &e);
                        if (round_stops(r)) { /* a stop came while waiting for the PAS, or it stayed down */
                                if (r == -ENOTCONN)
                                        round_say_unreachable(wl->name, entry->ubrn, stats);
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
                const struct ledger_state *ls = &ledger[i].ls;
                if (ls->found && ls->complete && entry->version >= 0 && entry->version <= ls->version) {
                        stats->referrals_unchanged++;
                        report_outcome(ctx, &(struct referral_outcome){ .ubrn = entry->ubrn, .worklist = wl->name,
                                                                        .version = ls->version,
                                                                        .result = REFERRAL_UNCHANGED,
                                                                        .dry_run = ctx->dry_run });
                        continue;
                }
                r = round_submit(ctx, wl->name, wl->name, entry, ls, stats, &failed);
                if (round_stops(r)) /* stopped, the writer's lease lost, or the PAS stayed unreachable (said) */
                        break;
        }
        r = round_write_all(ctx, wl->name, r, stats, &failed); /* the entries stay alive until here */
        free(order);
        free(ledger);
        worklist_free(&w);
        if (round_stops(r))
                return r;
        return failed ? -EAGAIN : 0;
}
