/* SPDX-License-Identifier: MIT */
/*
 * `ersd status` and the overdue warning (status.h).  Collects what the ledger
 * database says into struct status, then prints it as text, JSON (json-c) or
 * Prometheus text (node_exporter's textfile collector).
 */
#include "status.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "../adapters/pas.h"
#include "../adapters/pas_audit.h"
#include "../adapters/pas_schedule.h"
#include "../adapters/pas_status.h"
#include "escape.h"
#include "fetch.h"
#include "log.h"
#include "schedule.h"
#include "skipped.h"
#include "status_outbox.h"
#include "util.h"

/* One configured worklist and what ers_poll and ers_budget say of it. */
struct worklist_status {
        const struct worklist_conf *conf; /* borrowed from the configuration */
        bool polled;                      /* ers_poll has a row with a last poll */
        struct poll_row poll;
        long calls_today;                 /* ers_budget, the UK day */
        bool failed;                      /* its last poll failed */
        bool budget_refused;              /* its last poll was not made: the day's budget was spent */
        bool stale;                       /* not read for STATUS_STALE_SECONDS */
        long skipped;                     /* malformed entries its last read skipped (not synced) */
};

/* A list of waiting rows, the first STATUS_LIST_MAX kept; n counts them all. */
struct row_list {
        struct waiting_row *rows; /* owned array of min(n, STATUS_LIST_MAX), each row's priority a copy it owns */
        size_t n;
};

struct status {
        const struct config *cfg;       /* borrowed */
        int64_t now;                    /* seconds since the epoch */
        char now_iso[32];
        char budget_day[SCHED_UK_DAY_LEN]; /* the UK calendar day ers_budget counts in */
        int exit_status;
        char problem[ERRBUF_MAX + 32];  /* why the database could not be read; "" when it could */
        struct worklist_status *worklists; /* owned array, one per configured worklist */
        struct row_list documents, retrying, parked, overdue;
        /* For documents.rows[i]: of its documents owed, those e-RS served larger than
         * ers.max_attachment_mib (owed until it is raised); -1 when not read. */
        int64_t too_large[STATUS_LIST_MAX];
        /* For documents.rows[i]: the related referrals it lists beyond RELATED_MAX, which
         * ersd does not read (owed while it lists them); -1 when not read. */
        int64_t related_unread[STATUS_LIST_MAX];
        size_t n_failing;               /* of retrying: those with failed attempts (the others are queued) */
        struct status_outbox outbox;    /* the requests to e-RS (status_outbox.h) */
};

/* ---- collecting ---------------------------------------------------------- */

/* The start of ers_poll.last_result when the scheduler did not call because
 * the service's budget for the day was spent (docs/schema.md, ers_poll):
 * referrals is NULL then too, but nothing failed. */
#define POLL_RESULT_BUDGET_SPENT "not read: service "

/* Worklist calls per service per UK day (ers.worklist_calls_per_day). */
static long calls_per_day(const struct config *cfg) {
        return cfg->worklist_calls_per_day;
}

static bool is_urgent(const char *priority) {
        return strcmp(priority, "URGENT") == 0 || strcmp(priority, "TWO_WEEK_WAIT") == 0;
}

/* Minutes an URGENT / TWO_WEEK_WAIT referral has waited beyond its first
 * sighting, when it is overdue; -1 when it is not. */
static int64_t overdue_minutes(const struct waiting_row *row, const struct config *cfg, int64_t now) {
        time_t seen;

        if (row->kind == WAITING_DOCUMENTS || !is_urgent(row->priority) || utc_iso_parse(row->since, &seen) < 0)
                return -1;
        if (now - seen < (int64_t) cfg->overdue_after_min * 60)
                return -1;
        return (now - seen) / 60;
}

static int list_add(struct row_list *l, const struct waiting_row *row) {
        if (l->n < STATUS_LIST_MAX) {
                char *priority = strdup(row->priority); /* the row's is borrowed (pas.h) */
                if (!priority)
                        return -ENOMEM;
                if (!l->rows) {
                        l->rows = calloc(STATUS_LIST_MAX, sizeof *l->rows);
                        if (!l->rows) {
                                free(priority);
                                return -ENOMEM;
                        }
                }
                l->rows[l->n] = *row;
                l->rows[l->n].priority = priority;
        }
        l->n++;
        return 0;
}

static void row_list_free(struct row_list *l) {
        for (size_t i = 0; l->rows && i < l->n && i < STATUS_LIST_MAX; i++)
                free((char *) l->rows[i].priority); /* the list's copy */
        free(l->rows);
}

static int on_waiting(void *userdata, const struct waiting_row *row) {
        struct status *s = userdata;
        int r;

        switch (row->kind) {
        case WAITING_DOCUMENTS:
                return list_add(&s->documents, row);
        case WAITING_RETRY:
                r = list_add(&s->retrying, row);
                s->n_failing += row->attempts > 0;
                break;
        case WAITING_PARKED:
                r = list_add(&s->parked, row);
                break;
        default:
                return 0;
        }
        if (r == 0 && overdue_minutes(row, s->cfg, s->now) >= 0)
                r = list_add(&s->overdue, row);
        return r;
}

static int on_poll(void *userdata, const struct poll_row *row) {
        struct status *s = userdata;

        for (size_t i = 0; i < s->cfg->n_worklists; i++) {
                struct worklist_status *w = &s->worklists[i];
                if (strcmp(w->conf->name, row->worklist) == 0) {
                        w->poll = *row;
                        w->polled = row->last_poll_at[0] != '\0';
                }
        }
        return 0; /* a worklist no longer configured is not shown */
}

static void status_free(struct status *s) {
        free(s->worklists);
        row_list_free(&s->documents);
        row_list_free(&s->retrying);
        row_list_free(&s->parked);
        row_list_free(&s->overdue);
        status_outbox_free(&s->outbox);
}

/* How many documents shown with `ubrn` are not stored because e-RS served
 * them larger than ers.max_attachment_mib as it is now (the size e-RS declares
 * is not trusted); -1 when that cannot be read (then not shown). */
static int64_t count_too_large(struct pas *pas, const struct config *cfg, const char *ubrn) {
        struct document_known *known = NULL;
        struct errbuf e = { { 0 } };
        char reason[NOT_FETCHED_REASON_MAX];
        size_t n = 0;
        int64_t count = 0;

        if (pas_documents_known(pas, ubrn, &known, &n, &e) < 0)
                return -1;
        fetch_too_large_reason(cfg->max_attachment_bytes, reason);
        for (size_t i = 0; i < n; i++)
                count += !known[i].state.fetched && known[i].state.reason && strcmp(known[i].state.reason, reason) == 0;
        documents_known_free(known, n);
        return count;
}

/* How many related referrals `ubrn` lists (ers_referral_related) beyond the
 * RELATED_MAX a sync reads (fetch.h); -1 when that cannot be read. */
static int64_t count_related_unread(struct pas *pas, const char *ubrn) {
        struct referral_stored st = { .found = false };
        struct errbuf e = { { 0 } };
        int64_t n;

        if (pas_referral_stored(pas, ubrn, &st, &e) < 0)
                return -1;
        n = st.n_related > RELATED_MAX ? (int64_t) (st.n_related - RELATED_MAX) : 0;
        referral_stored_free(&st);
        return n;
}

/* Fills s from the database; on failure s->problem says why and the exit
 * status is STATUS_UNKNOWN. */
static void status_collect(struct status *s, const struct config *cfg) {
        struct errbuf e = { { 0 } };
        struct pas *pas = NULL;
        int r;

        memset(s, 0, sizeof *s);
        s->cfg = cfg;
        s->now = (int64_t) time(NULL);
        now_utc_iso(s->now_iso);
        sched_uk_day((time_t) s->now, s->budget_day);
        s->worklists = calloc(cfg->n_worklists, sizeof *s->worklists);
        if (!s->worklists) {
                snprintf(s->problem, sizeof s->problem, "out of memory");
                s->exit_status = STATUS_UNKNOWN;
                return;
        }
        for (size_t i = 0; i < cfg->n_worklists; i++)
                s->worklists[i] = (struct worklist_status){ .conf = &cfg->worklists[i], .poll.referrals = -1 };

        r = pas_open(cfg->odbc_connection, cfg->adapter, &pas, &e);
        if (r >= 0)
                r = pas_check_schema(pas, &e);
        if (r >= 0)
                r = pas_poll_list(pas, on_poll, s, &e);
        for (size_t i = 0; i < cfg->n_worklists && r >= 0; i++)
                r = pas_budget_calls(pas, cfg->worklists[i].service_id, s->budget_day, &s->worklists[i].calls_today,
                                     &e);
        if (r >= 0)
                r = pas_waiting_list(pas, on_waiting, s, &e);
        for (size_t i = 0; r >= 0 && i < s->documents.n && i < STATUS_LIST_MAX; i++) {
                s->too_large[i] = count_too_large(pas, cfg, s->documents.rows[i].ubrn);
                s->related_unread[i] = count_related_unread(pas, s->documents.rows[i].ubrn);
        }
        if (r >= 0)
                r = status_outbox_collect(pas, &s->outbox, &e);
        pas_close(pas);
        if (r < 0) {
                snprintf(s->problem, sizeof s->problem, "PAS database: %s", e.msg[0] ? e.msg : strerror(-r));
                s->exit_status = STATUS_UNKNOWN;
                return;
        }

        bool worklist_trouble = false;
        for (size_t i = 0; i < cfg->n_worklists; i++) {
                struct worklist_status *w = &s->worklists[i];
                time_t at;
                if (!w->polled)
                        continue; /* not read yet: a new worklist, or ersd has not run a round */
                w->budget_refused = w->poll.referrals < 0 &&
                                    strncmp(w->poll.last_result, POLL_RESULT_BUDGET_SPENT,
                                            strlen(POLL_RESULT_BUDGET_SPENT)) == 0;
                w->failed = w->poll.referrals < 0 && !w->budget_refused;
                w->stale = utc_iso_parse(w->poll.last_poll_at, &at) == 0 && s->now - at > STATUS_STALE_SECONDS;
                w->skipped = skipped_in_poll_result(w->poll.last_result);
                worklist_trouble |= w->failed || w->stale || w->skipped > 0;
        }
        if (s->overdue.n > 0)
                s->exit_status = STATUS_OVERDUE;
        else if (s->parked.n > 0 || worklist_trouble || s->outbox.forbidden > 0)
                s->exit_status = STATUS_NEEDS_PERSON;
        else
                s->exit_status = STATUS_OK;
}

static int64_t budget_left(const struct status *s, const struct worklist_status *w) {
        long left = calls_per_day(s->cfg) - w->calls_today;
        return left > 0 ? left : 0;
}

/* documents_owed, queued (seen, not tried yet), retrying (after failures), parked. */
static const char *state_name(const struct waiting_row *w) {
        switch (w->kind) {
        case WAITING_DOCUMENTS:
                return "documents_owed";
        case WAITING_RETRY:
                return w->attempts > 0 ? "retrying" : "queued";
        case WAITING_PARKED:
                return "parked";
        }
        return "unknown";
}

static const char *poll_verdict(const struct worklist_status *w) {
        return w->failed           ? "FAILED"
               : w->budget_refused ? "not made (budget spent)"
               : w->skipped > 0    ? "ok, MALFORMED ENTRIES SKIPPED"
                                   : "ok";
}

/* ---- text ---------------------------------------------------------------- */
/* Every line that shows what the database holds (names, codes, reasons, times)
 * is written through escape_fprintf(): the one rule of escape.h. */

static const char *or_dash(const char *s) {
        return s && s[0] ? s : "-";
}

static void text_waiting(FILE *out, const struct status *s, const struct row_list *l, const char *title) {
        fprintf(out, "\n%s: %zu\n", title, l->n);
        for (size_t i = 0; i < l->n && i < STATUS_LIST_MAX; i++) {
                const struct waiting_row *w = &l->rows[i];
                if (w->kind == WAITING_DOCUMENTS) {
                        escape_fprintf(out, "  UBRN %s  version %" PRId64 "  worklist %s  priority %s: %" PRId64
                                            " document(s) owed, %" PRId64 " PENDING (e-RS scanning); next check %s",
                                       w->ubrn, w->version, or_dash(w->worklist), or_dash(w->priority),
                                       w->documents_owed, w->documents_pending, or_dash(w->next_at));
                        fputc('\n', out);
                        if (s->too_large[i] > 0)
                                fprintf(out, "    reason: %" PRId64 " larger than ers.max_attachment_mib (%" PRId64
                                             " MiB): fetched once it is raised\n",
                                        s->too_large[i], s->cfg->max_attachment_bytes / (1024 * 1024));
                        if (s->related_unread[i] > 0)
                                fprintf(out, "    reason: lists %" PRId64 " related referrals, more than the %d ersd "
                                             "reads: %" PRId64 " not read (see e-RS; their UBRNs are in "
                                             "ers_referral_related)\n",
                                        s->related_unread[i] + RELATED_MAX, RELATED_MAX, s->related_unread[i]);
                        continue;
                }
                escape_fprintf(out, "  UBRN %s  worklist %s  priority %s  seen %s  %" PRId64 " attempt(s)%s; next %s",
                               w->ubrn, or_dash(w->worklist), or_dash(w->priority), or_dash(w->since), w->attempts,
                               w->in_pas ? "; the PAS holds an older version" : "; not in the PAS", or_dash(w->next_at));
                fputc('\n', out);
                if (w->attempts == 0 && w->kind == WAITING_RETRY)
                        continue; /* queued: no failure to show */
                escape_fprintf(out, "    reason: %s", or_dash(w->reason));
                if (w->sqlstate[0] && !strstr(w->reason, w->sqlstate))
                        escape_fprintf(out, " (SQLSTATE %s)", w->sqlstate);
                if (w->correlation_id[0] && !strstr(w->reason, w->correlation_id))
                        escape_fprintf(out, " (correlation id %s)", w->correlation_id);
                fputc('\n', out);
        }
        if (l->n > STATUS_LIST_MAX)
                fprintf(out, "  … and %zu more\n", l->n - STATUS_LIST_MAX);
}

static void print_text(const struct status *s, FILE *out) {
        static const char *const verdicts[] = {
                [STATUS_OK] = "all well",
                [STATUS_NEEDS_PERSON] = "NEEDS A PERSON",
                [2] = "",
                [STATUS_UNKNOWN] = "UNKNOWN: the PAS database cannot be read",
                [STATUS_OVERDUE] = "URGENT REFERRALS OVERDUE",
        };

        fprintf(out, "ersd status at %s: %s (exit %d)\n", s->now_iso, verdicts[s->exit_status], s->exit_status);
        if (s->problem[0]) {
                escape_fprintf(out, "  %s", s->problem);
                fputc('\n', out);
                return;
        }
        fprintf(out, "\nWorklists (calls per service per day: %ld; UK day %s)\n", calls_per_day(s->cfg),
                s->budget_day);
        for (size_t i = 0; i < s->cfg->n_worklists; i++) {
                const struct worklist_status *w = &s->worklists[i];
                escape_fprintf(out, "  %s (%s, service %s): ", w->conf->name, w->conf->list_type, w->conf->service_id);
                if (!w->polled)
                        fprintf(out, "not read yet");
                else
                        escape_fprintf(out, "last poll %s %s: %s%s%s", w->poll.last_poll_at, poll_verdict(w),
                                       or_dash(w->poll.last_result),
                                       w->poll.last_correlation_id[0] ? " (correlation id " : "",
                                       w->poll.last_correlation_id[0] ? w->poll.last_correlation_id : "");
                if (w->polled && w->poll.last_correlation_id[0])
                        fputc(')', out);
                fputc('\n', out);
                escape_fprintf(out, "    next poll %s; budget left today %" PRId64 " of %ld%s",
                               or_dash(w->poll.next_poll_at), budget_left(s, w), calls_per_day(s->cfg),
                               w->stale ? "; NOT READ FOR OVER 25 HOURS" : "");
                fputc('\n', out);
        }
        text_waiting(out, s, &s->documents, "Referrals owed documents (fetched by later rounds)");
        text_waiting(out, s, &s->retrying, "Referrals queued or failing (read again on their own schedule)");
        text_waiting(out, s, &s->parked, "Referrals PARKED after repeated failures (need a person)");
        fprintf(out, "\nOverdue (URGENT or TWO_WEEK_WAIT, not in the PAS after %ld minutes): %zu\n",
                s->cfg->overdue_after_min, s->overdue.n);
        for (size_t i = 0; i < s->overdue.n && i < STATUS_LIST_MAX; i++) {
                const struct waiting_row *w = &s->overdue.rows[i];
                int64_t minutes = overdue_minutes(w, s->cfg, s->now);
                escape_fprintf(out, "  UBRN %s  %s  worklist %s  seen %s, %" PRId64 " minutes ago%s", w->ubrn,
                               w->priority, or_dash(w->worklist), w->since, minutes,
                               w->in_pas ? "; the PAS holds an older version" : "; not in the PAS");
                fputc('\n', out);
        }
        status_outbox_text(&s->outbox, s->cfg->writeback_enabled, out);
}

/* ---- JSON ---------------------------------------------------------------- */
/* Values exactly as the database holds them; written through
 * escape_json_fputs(), so the characters a terminal acts on are JSON escapes. */

static json_object *jstr(const char *s) {
        return s && s[0] ? json_object_new_string(s) : NULL; /* NULL is JSON null */
}

/* too_large, related_unread: s->too_large and s->related_unread of a documents row, else unused. */
static json_object *json_waiting(const struct waiting_row *w, const struct status *s, int64_t too_large,
                                 int64_t related_unread) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "ubrn", json_object_new_string(w->ubrn));
        json_object_object_add(o, "state", json_object_new_string(state_name(w)));
        json_object_object_add(o, "worklist", jstr(w->worklist));
        json_object_object_add(o, "priority", jstr(w->priority));
        json_object_object_add(o, "version", w->version >= 0 ? json_object_new_int64(w->version) : NULL);
        json_object_object_add(o, "next_at", jstr(w->next_at));
        if (w->kind == WAITING_DOCUMENTS) {
                json_object_object_add(o, "synced_at", jstr(w->since));
                json_object_object_add(o, "documents_owed", json_object_new_int64(w->documents_owed));
                json_object_object_add(o, "documents_pending", json_object_new_int64(w->documents_pending));
                json_object_object_add(o, "documents_too_large",
                                       too_large >= 0 ? json_object_new_int64(too_large) : NULL);
                json_object_object_add(o, "related_not_read",
                                       related_unread >= 0 ? json_object_new_int64(related_unread) : NULL);
                return o;
        }
        int64_t minutes = overdue_minutes(w, s->cfg, s->now);
        json_object_object_add(o, "first_seen_at", jstr(w->since));
        json_object_object_add(o, "attempts", json_object_new_int64(w->attempts));
        json_object_object_add(o, "in_pas", json_object_new_boolean(w->in_pas));
        json_object_object_add(o, "reason", jstr(w->reason));
        json_object_object_add(o, "sqlstate", jstr(w->sqlstate));
        json_object_object_add(o, "correlation_id", jstr(w->correlation_id));
        json_object_object_add(o, "overdue", json_object_new_boolean(minutes >= 0));
        if (minutes >= 0)
                json_object_object_add(o, "minutes_waiting", json_object_new_int64(minutes));
        return o;
}

static json_object *json_list(const struct row_list *l, const struct status *s) {
        json_object *a = json_object_new_array();

        for (size_t i = 0; i < l->n && i < STATUS_LIST_MAX; i++) {
                bool documents = l == &s->documents;
                json_object_array_add(a, json_waiting(&l->rows[i], s, documents ? s->too_large[i] : -1,
                                                      documents ? s->related_unread[i] : -1));
        }
        return a;
}

static void print_json(const struct status *s, FILE *out) {
        json_object *root = json_object_new_object();
        json_object *counts = json_object_new_object();

        json_object_object_add(root, "generated_at", json_object_new_string(s->now_iso));
        json_object_object_add(root, "exit_status", json_object_new_int(s->exit_status));
        json_object_object_add(root, "ok", json_object_new_boolean(s->exit_status == STATUS_OK));
        json_object_object_add(root, "database_ok", json_object_new_boolean(!s->problem[0]));
        json_object_object_add(root, "problem", jstr(s->problem));
        if (!s->problem[0]) {
                json_object *wls = json_object_new_array();
                for (size_t i = 0; i < s->cfg->n_worklists; i++) {
                        const struct worklist_status *w = &s->worklists[i];
                        json_object *o = json_object_new_object();
                        json_object_object_add(o, "name", json_object_new_string(w->conf->name));
                        json_object_object_add(o, "list_type", json_object_new_string(w->conf->list_type));
                        json_object_object_add(o, "service", json_object_new_string(w->conf->service_id));
                        json_object_object_add(o, "polled", json_object_new_boolean(w->polled));
                        json_object_object_add(o, "last_poll_at", jstr(w->poll.last_poll_at));
                        json_object_object_add(o, "last_poll_ok",
                                               w->polled ? json_object_new_boolean(!w->failed && !w->budget_refused)
                                                         : NULL);
                        json_object_object_add(o, "last_poll_failed", json_object_new_boolean(w->failed));
                        json_object_object_add(o, "budget_refused", json_object_new_boolean(w->budget_refused));
                        json_object_object_add(o, "last_result", jstr(w->poll.last_result));
                        json_object_object_add(o, "last_correlation_id", jstr(w->poll.last_correlation_id));
                        json_object_object_add(o, "referrals",
                                               w->poll.referrals >= 0 ? json_object_new_int64(w->poll.referrals) : NULL);
                        json_object_object_add(o, "entries_skipped", json_object_new_int64(w->skipped));
                        json_object_object_add(o, "next_poll_at", jstr(w->poll.next_poll_at));
                        json_object_object_add(o, "budget_day", json_object_new_string(s->budget_day));
                        json_object_object_add(o, "budget_calls_today", json_object_new_int64(w->calls_today));
                        json_object_object_add(o, "budget_per_day", json_object_new_int64(calls_per_day(s->cfg)));
                        json_object_object_add(o, "budget_left_today", json_object_new_int64(budget_left(s, w)));
                        json_object_object_add(o, "stale", json_object_new_boolean(w->stale));
                        json_object_array_add(wls, o);
                }
                json_object_object_add(root, "worklists", wls);
                json_object_object_add(root, "documents_owed", json_list(&s->documents, s));
                json_object_object_add(root, "retry", json_list(&s->retrying, s)); /* queued and retrying */
                json_object_object_add(root, "parked", json_list(&s->parked, s));
                json_object_object_add(root, "overdue", json_list(&s->overdue, s));
                json_object_object_add(counts, "documents_owed", json_object_new_int64((int64_t) s->documents.n));
                json_object_object_add(counts, "queued", json_object_new_int64((int64_t) (s->retrying.n - s->n_failing)));
                json_object_object_add(counts, "retrying", json_object_new_int64((int64_t) s->n_failing));
                json_object_object_add(counts, "parked", json_object_new_int64((int64_t) s->parked.n));
                json_object_object_add(counts, "overdue", json_object_new_int64((int64_t) s->overdue.n));
                json_object_object_add(root, "counts", counts);
                json_object_object_add(root, "overdue_after_minutes", json_object_new_int64(s->cfg->overdue_after_min));
                json_object_object_add(root, "outbox", status_outbox_json(&s->outbox, s->cfg->writeback_enabled));
        } else
                json_object_put(counts);
        escape_json_fputs(json_object_to_json_string_ext(root, JSON_C_TO_STRING_PRETTY | JSON_C_TO_STRING_NOSLASHESCAPE),
                          out);
        fputc('\n', out);
        json_object_put(root);
}

/* ---- Prometheus ------------------------------------------------------------ */

/* Writes a piece of a label value, backslash and double quote escaped as
 * the text format wants them. */
static void prom_put(void *userdata, const char *piece, size_t len) {
        FILE *out = userdata;

        for (size_t i = 0; i < len; i++) {
                if (piece[i] == '\\' || piece[i] == '"')
                        fputc('\\', out);
                fputc(piece[i], out);
        }
}

/* A label value: the value as escape.h shows it (no newline, no control
 * left), then escaped as a label value, so Prometheus reads back the
 * escaped text. */
static void prom_label(FILE *out, const char *v) {
        escape_each(v, ESCAPE_TEXT, prom_put, out);
}

static void prom_head(FILE *out, const char *name, const char *help) {
        fprintf(out, "# HELP %s %s\n# TYPE %s gauge\n", name, help, name);
}

/*
 * A sample's value and the end of its line.  A time (Unix seconds) is written
 * in exponent form, 1.795472917e+09: a standalone run of 10 digits could pass
 * the NHS number check, and no output of ersd may look like one (the tests'
 * output scan, and anyone searching logs for NHS numbers, would flag it).
 * Prometheus reads both forms alike.
 */
static void prom_value(FILE *out, int64_t v, bool is_time) {
        if (is_time && v != 0)
                fprintf(out, " %.9e\n", (double) v);
        else
                fprintf(out, " %" PRId64 "\n", v);
}

static void prom_worklist(FILE *out, const char *name, const struct worklist_status *w, int64_t value,
                          bool is_time) {
        fprintf(out, "%s{worklist=\"", name);
        prom_label(out, w->conf->name);
        fputs("\",service=\"", out);
        prom_label(out, w->conf->service_id);
        fputc('"', out);
        fputc('}', out);
        prom_value(out, value, is_time);
}

static int64_t iso_or_zero(const char *s) {
        time_t t = 0;
        return utc_iso_parse(s, &t) == 0 ? (int64_t) t : 0;
}

static void print_prometheus(const struct status *s, FILE *out) {
        prom_head(out, "ersd_status_exit_code",
                  "Exit status of ersd status: 0 all well, 1 needs a person, 3 database unreadable, 4 urgent referral overdue.");
        fprintf(out, "ersd_status_exit_code %d\n", s->exit_status);
        prom_head(out, "ersd_status_timestamp_seconds", "When ersd status read the database (Unix time).");
        fputs("ersd_status_timestamp_seconds", out);
        prom_value(out, s->now, true);
        prom_head(out, "ersd_database_up", "1 when the PAS database was read and its schema is the version ersd writes.");
        fprintf(out, "ersd_database_up %d\n", s->problem[0] ? 0 : 1);
        if (s->problem[0])
                return;

        static const struct {
                const char *name, *help;
        } per_worklist[] = {
                { "ersd_worklist_polled", "1 when the worklist has been read at least once." },
                { "ersd_worklist_last_poll_ok", "1 when the last read of the worklist succeeded (0 before the first read)." },
                { "ersd_worklist_last_poll_failed", "1 when the last call for the worklist failed (not when the budget was spent)." },
                { "ersd_worklist_last_poll_timestamp_seconds", "When the worklist was last read (Unix time; 0 never)." },
                { "ersd_worklist_next_poll_timestamp_seconds", "When the next read is planned (Unix time; 0 none)." },
                { "ersd_worklist_referrals", "Referrals the last successful read listed (-1 when it failed or none yet)." },
                { "ersd_worklist_budget_left", "Worklist calls left today (UK day) for the worklist's e-RS service." },
                { "ersd_worklist_stale", "1 when the worklist has not been read for over 25 hours." },
                { "ersd_worklist_entries_skipped", "Malformed entries the last read of the worklist skipped (not synced)." },
        };
        for (size_t k = 0; k < sizeof per_worklist / sizeof per_worklist[0]; k++) {
                prom_head(out, per_worklist[k].name, per_worklist[k].help);
                for (size_t i = 0; i < s->cfg->n_worklists; i++) {
                        const struct worklist_status *w = &s->worklists[i];
                        int64_t v = 0;
                        switch (k) {
                        case 0: v = w->polled; break;
                        case 1: v = w->polled && !w->failed && !w->budget_refused; break;
                        case 2: v = w->failed; break;
                        case 3: v = iso_or_zero(w->poll.last_poll_at); break;
                        case 4: v = iso_or_zero(w->poll.next_poll_at); break;
                        case 5: v = w->poll.referrals; break;
                        case 6: v = budget_left(s, w); break;
                        case 7: v = w->stale; break;
                        default: v = w->skipped; break;
                        }
                        prom_worklist(out, per_worklist[k].name, w, v, k == 3 || k == 4);
                }
        }
        prom_head(out, "ersd_referrals_waiting",
                  "Referrals waiting: documents_owed (fetched by later rounds), queued, retrying, parked (need a person).");
        fprintf(out, "ersd_referrals_waiting{state=\"documents_owed\"} %zu\n", s->documents.n);
        fprintf(out, "ersd_referrals_waiting{state=\"queued\"} %zu\n", s->retrying.n - s->n_failing);
        fprintf(out, "ersd_referrals_waiting{state=\"retrying\"} %zu\n", s->n_failing);
        fprintf(out, "ersd_referrals_waiting{state=\"parked\"} %zu\n", s->parked.n);
        prom_head(out, "ersd_referrals_overdue",
                  "URGENT or TWO_WEEK_WAIT referrals seen on a worklist and not in the PAS after overdue_after_minutes.");
        fprintf(out, "ersd_referrals_overdue %zu\n", s->overdue.n);
        prom_head(out, "ersd_referral_overdue_minutes", "Minutes an overdue referral has waited since first seen, by UBRN.");
        for (size_t i = 0; i < s->overdue.n && i < STATUS_LIST_MAX; i++) {
                const struct waiting_row *w = &s->overdue.rows[i];
                fputs("ersd_referral_overdue_minutes{ubrn=\"", out);
                prom_label(out, w->ubrn);
                fputs("\",priority=\"", out);
                prom_label(out, w->priority);
                fprintf(out, "\"} %" PRId64 "\n", overdue_minutes(w, s->cfg, s->now));
        }
        status_outbox_prometheus(&s->outbox, out);
}

int status_run(const struct config *cfg, enum status_format format, FILE *out) {
        struct status s;

        status_collect(&s, cfg);
        switch (format) {
        case STATUS_FORMAT_JSON:
                print_json(&s, out);
                break;
        case STATUS_FORMAT_PROMETHEUS:
                print_prometheus(&s, out);
                break;
        default:
                print_text(&s, out);
                break;
        }
        fflush(out);
        status_free(&s);
        return s.exit_status;
}

/* ---- the daemon's overdue warning ------------------------------------------ */

struct overdue_walk {
        const struct config *cfg;
        int64_t now;
        const struct overdue_memory *before; /* warned already */
        struct overdue_memory after;         /* overdue now (owned until swapped in) */
        size_t cap;
};

static bool memory_has(const struct overdue_memory *m, const char *ubrn) {
        for (size_t i = 0; i < m->n; i++)
                if (strcmp(m->ubrns[i], ubrn) == 0)
                        return true;
        return false;
}

static int on_overdue(void *userdata, const struct waiting_row *row) {
        struct overdue_walk *w = userdata;
        int64_t minutes = overdue_minutes(row, w->cfg, w->now);

        if (minutes < 0)
                return 0;
        if (w->after.n == w->cap) {
                size_t cap = w->cap ? w->cap * 2 : 16;
                char(*u)[UBRN_LEN + 1] = realloc(w->after.ubrns, cap * sizeof *u);
                if (!u)
                        return -ENOMEM;
                w->after.ubrns = u;
                w->cap = cap;
        }
        memcpy(w->after.ubrns[w->after.n++], row->ubrn, UBRN_LEN + 1);
        if (memory_has(w->before, row->ubrn))
                return 0;
        log_ctx_warning(&(struct log_ctx){ .ubrn = row->ubrn, .worklist = row->worklist[0] ? row->worklist : NULL,
                                           .correlation_id = row->correlation_id[0] ? row->correlation_id : NULL,
                                           .stage = "priority" },
                        "UBRN %s: %s referral seen on worklist %s at %s is %s after %" PRId64
                        " minutes (overdue after %ld); %s: %s",
                        row->ubrn, row->priority, row->worklist[0] ? row->worklist : "-", row->since,
                        row->in_pas ? "not in the PAS at the version listed" : "not in the PAS", minutes,
                        w->cfg->overdue_after_min, row->kind == WAITING_PARKED ? "parked" : "last failure",
                        row->reason[0] ? row->reason : "not tried yet");
        return 0;
}

void status_warn_overdue(struct pas *pas, const struct config *cfg, struct overdue_memory *memory) {
        struct overdue_walk w = { .cfg = cfg, .now = (int64_t) time(NULL), .before = memory };
        struct errbuf e = { { 0 } };
        int r = pas_waiting_list(pas, on_overdue, &w, &e);

        if (r < 0) {
                log_debug("overdue referrals not checked this round: %s", e.msg[0] ? e.msg : strerror(-r));
                free(w.after.ubrns);
                return;
        }
        overdue_memory_free(memory);
        *memory = w.after;
}

void overdue_memory_free(struct overdue_memory *m) {
        free(m->ubrns);
        m->ubrns = NULL;
        m->n = 0;
}
