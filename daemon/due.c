/* SPDX-License-Identifier: MIT */
/*
 * Referrals read without a worklist call: those due again in a round
 * (ers_retry rows whose time has come, ledger rows with documents owed),
 * `ersd sync UBRN`, and the patient re-matching of referrals already in the
 * PAS.  Each referral is read as a worklist entry made from what the PAS kept
 * of one (kept_entry) and goes through the same writer's window (round.c) as
 * a worklist's.  Not here: worklists (worklist_sync.c).
 */
#include "round.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../adapters/pas.h"
#include "../adapters/pas_audit.h"
#include "../adapters/pas_patient.h"
#include "../adapters/pas_schedule.h"
#include "../adapters/pas_status.h"
#include "fetch.h"
#include "log.h"
#include "write.h"

#define REMATCH_MAX 200 /* referrals whose patient is looked up again per round */
#define DUE_MAX 1000    /* referrals read again (ers_retry, documents owed) per round; the rest next round */

/*
 * Referrals due for another look without a worklist call: ers_retry rows
 * whose next attempt has come (failed before, parked, or queued by a round
 * that stopped) and ledger rows whose documents are owed and whose
 * next_check_at has come.  A005 and documents, as for a worklist entry made
 * from what ers_retry kept of it.
 */
int sync_due(struct sync_ctx *ctx, struct sync_stats *stats) {
        struct due_referral *due = NULL;
        struct worklist_entry *entries = NULL; /* owned: each job's entry, alive until round_write_all() */
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

                entries[i] = write_kept_entry(d->ubrn, d->entry_version, d->priority, d->service_id, d->service_name,
                                              d->referral_type);
                if (ctx->between_referrals)
                        ctx->between_referrals(ctx->userdata);
                if (ctx->stop && *ctx->stop) {
                        r = -ECANCELED;
                        break;
                }
                r = reconnect_pas(&ctx->reconnect, ctx->pas, ctx->stop, ctx->between_referrals, ctx->userdata);
                if (r == 0)
                        r = round_read_ledger(ctx, d->ubrn, d->worklist, &ls, stats);
                if (round_stops(r))
                        break;
                if (r < 0) {
                        failed = true;
                        continue;
                }
                r = round_submit(ctx, NULL, d->worklist[0] ? d->worklist : NULL, &entries[i], &ls, stats, &failed);
                if (round_stops(r)) /* stopped, the writer's lease lost, or the PAS stayed unreachable (said) */
                        break;
        }
        r = round_write_all(ctx, NULL, r, stats, &failed);
        free(entries);
        due_referrals_free(due, n);
        if (round_stops(r))
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
void sync_rematch_patients(struct sync_ctx *ctx, const char *round_start, struct sync_stats *stats) {
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
                struct pas_tx *tx = NULL;

                if (ctx->stop && *ctx->stop)
                        break;
                r = pas_match_patient(ctx->pas, list[i].nhs_number, &m, &e);
                if (r == 0)
                        r = pas_begin(ctx->pas, &tx, &e);
                if (r == 0)
                        r = pas_put_patient_match(tx, list[i].ubrn, &m, &e);
                if (r == 0 && strcmp(list[i].patient_match, patient_match_name(m.status)) != 0) {
                        /* a write like any other: its audit row, never the patient's id */
                        char detail[64];
                        snprintf(detail, sizeof detail, "patient_match %s -> %s", list[i].patient_match,
                                 patient_match_name(m.status));
                        r = pas_audit_append(tx, list[i].ubrn, list[i].version, "PATIENT_MATCH", detail, NULL,
                                             NULL, &e);
                }
                if (r == 0)
                        r = pas_commit(tx, &e);
                else
                        pas_rollback(tx);
                if (r < 0) {
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
        entry = write_kept_entry(ubrn, o.entry_version, o.priority, o.service_id, o.service_name, o.referral_type);
        r = round_ledger_get(ctx, ubrn, &ls, &e); /* on a connection that is up (reconnect.h) */
        if (r < 0 && e.msg[0])
                err_prefix(&e, r, "ledger");
        if (r == 0)
                r = round_prepare_job(ctx, &j, o.found && o.worklist[0] ? o.worklist : NULL, &entry, &ls, &e);
        if (r < 0) {
                stats->referrals_failed++;
                log_ctx_error(&(struct log_ctx){ .ubrn = ubrn, .stage = "pas" }, "UBRN %s not synced: %s", ubrn,
                              e.msg[0] ? e.msg : strerror(-r));
                return r;
        }
        /* One referral: fetched here, in this thread. */
        struct fetch_env env = round_fetch_env(ctx);
        fetch_referral(&env, &j);
        return finish_referral(ctx, &j, stats, ret_result);
}
