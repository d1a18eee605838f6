/* SPDX-License-Identifier: MIT */
/*
 * The outbox's table (pas_outbox.h): the due requests in order, the mark
 * SENDING committed before a request leaves, the outcome recorded with its
 * audit row, and what `ersd status` reads of it.  Not here: what is sent,
 * when, and how an e-RS answer maps to a state (daemon/outbox.c).
 */
#include "pas_outbox.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "pas_audit.h"
#include "pas_internal.h"

void outbox_requests_free(struct outbox_request *list, size_t n) {
        for (size_t i = 0; list && i < n; i++) {
                free(list[i].review_outcome);
                free(list[i].comment);
                free(list[i].new_priority);
        }
        free(list);
}

/* Reads one row of ST_OUTBOX_DUE into *o (its strings owned by *o, freed here on failure). */
static int due_row(struct pas *p, SQLHSTMT h, struct outbox_request *o, struct errbuf *e) {
        const char *what = statements[ST_OUTBOX_DUE].what;
        char **texts[] = { &o->review_outcome, &o->comment, &o->new_priority };
        int64_t n = 0;
        int r;

        memset(o, 0, sizeof *o);
        r = get_int64(p, h, 1, what, &o->id, NULL, e);
        if (r >= 0) {
                const struct text_col cols[] = { TEXT_COL(o->ubrn), TEXT_COL(o->action), TEXT_COL(o->state) };
                r = get_texts(p, h, what, 2, cols, 3, e);
        }
        for (size_t i = 0; r >= 0 && i < sizeof texts / sizeof texts[0]; i++)
                r = get_text_whole(p, h, (SQLUSMALLINT) (5 + i), what, texts[i], e);
        if (r >= 0)
                r = get_int64(p, h, 8, what, &o->decided_version, NULL, e);
        if (r >= 0)
                r = get_int64(p, h, 9, what, &n, NULL, e);
        o->attempts = n > 0 ? (unsigned) n : 0;
        if (r < 0) {
                for (size_t i = 0; i < sizeof texts / sizeof texts[0]; i++) {
                        free(*texts[i]); /* the row is not handed over */
                        *texts[i] = NULL;
                }
                return err_prefix(e, r, "ers_outbox request %" PRId64, o->id);
        }
        return 0;
}

int pas_outbox_due(struct pas *p, const char *now, size_t max, struct outbox_request **ret, size_t *ret_n,
                   struct errbuf *e) {
        struct outbox_request *list = max ? calloc(max, sizeof *list) : NULL;
        struct param ps[] = { P_TEXT(now) };
        SQLHSTMT h = SQL_NULL_HSTMT;
        size_t n = 0;
        int r;

        if (max && !list)
                return err_set(e, -ENOMEM, "out of memory");
        r = run(p, ST_OUTBOX_DUE, ps, 1, &h, NULL, e);
        if (r >= 0) {
                while (n < max && (r = fetch(p, h, statements[ST_OUTBOX_DUE].what, e)) > 0) {
                        r = due_row(p, h, &list[n], e);
                        if (r < 0)
                                break;
                        n++;
                }
                stmt_close(h);
        }
        if (r < 0) {
                outbox_requests_free(list, n);
                return r;
        }
        return list_hand_over(r, list, n, (void **) ret, ret_n);
}

int pas_outbox_sending(struct pas_tx *tx, int64_t id, struct errbuf *e) {
        struct param ps[] = { P_TEXT(tx_time(tx)), P_INT(id) };
        SQLLEN rows = 0;
        int r = run(tx_pas(tx), ST_OUTBOX_SENDING, ps, 2, NULL, &rows, e);

        if (r < 0)
                return err_prefix(e, r, "ers_outbox request %" PRId64, id);
        return rows == 1 ? 1 : 0;
}

int pas_outbox_record(struct pas_tx *tx, const struct outbox_outcome *o, struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        bool done = strcmp(o->state, "DONE") == 0;
        char cut[OUTBOX_ERROR_MAX + 1];
        char detail[256];
        SQLLEN rows = 0;
        int r;

        struct param ps[] = {
                P_TEXT(o->state),
                P_INT_OR_NULL(o->answered_version, !done || o->answered_version < 0),
                P_TEXT(o->error_code && *o->error_code ? o->error_code : NULL),
                P_TEXT(o->error_text && *o->error_text ? bounded(o->error_text, OUTBOX_ERROR_MAX, cut) : NULL),
                P_TEXT(strcmp(o->state, "RETRY") == 0 ? o->next_attempt_at : NULL),
                P_TEXT(o->correlation_id && *o->correlation_id ? o->correlation_id : NULL),
                P_TEXT(tx_time(tx)),
                P_INT(o->id),
        };
        r = run(p, ST_OUTBOX_RECORD, ps, 8, NULL, &rows, e);
        if (r >= 0 && rows != 1)
                r = err_set(e, -ESTALE, "settled or gone, nothing changed");
        if (r < 0)
                return err_prefix(e, r, "ers_outbox request %" PRId64 " (%s)", o->id, o->ubrn);
        /* The audit row: the request, its action and the versions; never the comment. */
        if (done)
                snprintf(detail, sizeof detail, "request %" PRId64 " %s decided on version %" PRId64
                         ": answered version %" PRId64, o->id, o->action, o->decided_version, o->answered_version);
        else
                snprintf(detail, sizeof detail, "request %" PRId64 " %s decided on version %" PRId64 ": %s%s%s",
                         o->id, o->action, o->decided_version, o->state, o->error_code && *o->error_code ? " " : "",
                         o->error_code && *o->error_code ? o->error_code : "");
        r = pas_audit_append(tx, o->ubrn, done ? o->answered_version : o->decided_version, o->event, detail, NULL,
                             o->correlation_id, e);
        return r < 0 ? err_prefix(e, r, "ers_outbox request %" PRId64, o->id) : 0;
}

/* ST_OUTBOX_COUNTS: one row per state. */
static int count_row(struct pas *p, SQLHSTMT h, const char *what, void *walk, struct errbuf *e) {
        struct outbox_counts *c = walk;
        char state[OUTBOX_STATE_MAX + 1];
        int64_t n = 0;
        int r = get_text(p, h, 1, what, state, sizeof state, NULL, e);

        if (r >= 0)
                r = get_int64(p, h, 2, what, &n, NULL, e);
        if (r < 0)
                return r;
        long *slot = strcmp(state, "NEW") == 0        ? &c->new_
                     : strcmp(state, "SENDING") == 0  ? &c->sending
                     : strcmp(state, "RETRY") == 0    ? &c->retry
                     : strcmp(state, "DONE") == 0     ? &c->done
                     : strcmp(state, "REJECTED") == 0 ? &c->rejected
                     : strcmp(state, "STALE") == 0    ? &c->stale
                                                      : NULL;
        if (slot)
                *slot = (long) n;
        return 0;
}

int pas_outbox_counts(struct pas *p, struct outbox_counts *ret, struct errbuf *e) {
        int r;

        memset(ret, 0, sizeof *ret);
        r = walk_rows(p, ST_OUTBOX_COUNTS, count_row, ret, e);
        if (r >= 0)
                r = query_text(p, ST_OUTBOX_NEXT, NULL, 0, ret->next_attempt_at, sizeof ret->next_attempt_at, e);
        return r < 0 ? r : 0;
}

int pas_outbox_attention(struct pas *p, size_t max, int (*fn)(void *userdata, const struct outbox_attention *a),
                         void *userdata, struct errbuf *e) {
        const char *what = statements[ST_OUTBOX_ATTENTION].what;
        SQLHSTMT h = SQL_NULL_HSTMT;
        size_t n = 0;
        int r = run(p, ST_OUTBOX_ATTENTION, NULL, 0, &h, NULL, e);

        while (r >= 0 && n < max && (r = fetch(p, h, what, e)) > 0) {
                struct outbox_attention a = { 0 };
                char ubrn[UBRN_LEN + 1], action[OUTBOX_ACTION_MAX + 1], state[OUTBOX_STATE_MAX + 1];
                char updated[32], corr[40];
                char *code = NULL;

                const struct text_col cols[] = { TEXT_COL(ubrn), TEXT_COL(action), TEXT_COL(state) };

                r = get_int64(p, h, 1, what, &a.id, NULL, e);
                if (r >= 0)
                        r = get_texts(p, h, what, 2, cols, 3, e);
                if (r >= 0)
                        r = get_int64(p, h, 5, what, &a.decided_version, NULL, e);
                if (r >= 0)
                        r = get_text_whole(p, h, 6, what, &code, e);
                if (r >= 0)
                        r = get_text(p, h, 7, what, updated, sizeof updated, NULL, e);
                if (r >= 0)
                        r = get_text(p, h, 8, what, corr, sizeof corr, NULL, e);
                if (r >= 0 && strcmp(state, "RETRY") == 0 && (!code || strcmp(code, OUTBOX_FORBIDDEN) != 0)) {
                        free(code); /* waiting its turn: no person needed */
                        continue;
                }
                if (r >= 0) {
                        a.ubrn = ubrn;
                        a.action = action;
                        a.state = state;
                        a.error_code = code;
                        a.updated_at = updated;
                        a.correlation_id = corr;
                        r = fn(userdata, &a);
                        if (r > 0) {
                                free(code);
                                stmt_close(h);
                                return r;
                        }
                        r = 1;
                }
                free(code);
                n++;
        }
        stmt_close(h);
        return r < 0 ? r : 0;
}
