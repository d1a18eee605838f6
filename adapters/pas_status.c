/* SPDX-License-Identifier: MIT */
/*
 * What the operators' commands read (pas_status.h): the ers_poll rows, the
 * referrals waiting (documents owed, queued, retried, parked, with their
 * documents not fetched counted by UBRN), and a referral's origin for
 * `ersd sync UBRN`.  Reads only.  Not here: how they are judged and printed
 * (daemon/status.c), the budget's count (pas_schedule.c).
 */
#include "pas_status.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pas_internal.h"

struct poll_walk {
        int (*fn)(void *userdata, const struct poll_row *row);
        void *userdata;
};

static int poll_row_read(struct pas *p, SQLHSTMT h, const char *what, void *walk, struct errbuf *e) {
        struct poll_walk *w = walk;
        struct poll_row row = { .referrals = -1 };
        const struct text_col cols[] = {
                TEXT_COL(row.worklist),            TEXT_COL(row.last_poll_at), TEXT_COL(row.last_result),
                TEXT_COL(row.last_correlation_id), TEXT_COL(row.next_poll_at),
        };
        bool null = false;
        int r;

        r = get_texts(p, h, what, 1, cols, sizeof cols / sizeof cols[0], e);
        if (r >= 0)
                r = get_int64(p, h, 6, what, &row.referrals, &null, e);
        if (r < 0)
                return r;
        if (null)
                row.referrals = -1;
        return w->fn(w->userdata, &row);
}

int pas_poll_list(struct pas *p, int (*fn)(void *userdata, const struct poll_row *row), void *userdata,
                  struct errbuf *e) {
        struct poll_walk w = { fn, userdata };
        return walk_rows(p, ST_POLL_LIST, poll_row_read, &w, e);
}

/* What ST_WAITING_NOT_FETCHED counts for one referral owed documents. */
struct not_fetched_count {
        char ubrn[UBRN_LEN + 1];
        int64_t pending; /* e-RS is still scanning them */
        int64_t owed;    /* attachments still to be asked for: neither a file e-RS will never release nor a letter */
};

struct waiting_walk {
        int (*fn)(void *userdata, const struct waiting_row *row);
        void *userdata;
        struct not_fetched_count *counts; /* owned, by UBRN */
        size_t n_counts, next;
};

/* An availability e-RS gives a file it will never release. */
static bool availability_never(const char *availability) {
        static const char *const never[] = { "THREATS_FOUND", "THREATS FOUND", "VALIDATION_FAILED" };

        for (size_t i = 0; availability && i < sizeof never / sizeof never[0]; i++)
                if (strcmp(availability, never[i]) == 0)
                        return true;
        return false;
}

/* The documents not fetched of every referral owed some, counted by UBRN. */
static int count_not_fetched(struct pas *p, struct waiting_walk *w, struct errbuf *e) {
        const char *what = statements[ST_WAITING_NOT_FETCHED].what;
        SQLHSTMT h = SQL_NULL_HSTMT;
        size_t cap = 0;
        int r;

        r = run(p, ST_WAITING_NOT_FETCHED, NULL, 0, &h, NULL, e);
        if (r < 0)
                return r;
        while ((r = fetch(p, h, what, e)) > 0) {
                char ubrn[UBRN_LEN + 2], kind[16], *availability = NULL;

                r = get_text(p, h, 1, what, ubrn, sizeof ubrn, NULL, e);
                if (r >= 0)
                        r = get_text(p, h, 2, what, kind, sizeof kind, NULL, e);
                if (r >= 0)
                        r = get_text_alloc(p, h, 3, what, &availability, e);
                if (r >= 0 && (w->n_counts == 0 || strcmp(w->counts[w->n_counts - 1].ubrn, ubrn) != 0)) {
                        r = grow(&w->counts, &cap, w->n_counts, sizeof *w->counts, e);
                        if (r >= 0) {
                                struct not_fetched_count *c = &w->counts[w->n_counts++];
                                *c = (struct not_fetched_count){ .pending = 0 };
                                memcpy(c->ubrn, ubrn, UBRN_LEN); /* a CHAR(12) */
                                c->ubrn[UBRN_LEN] = '\0';
                        }
                }
                if (r >= 0) {
                        struct not_fetched_count *c = &w->counts[w->n_counts - 1];
                        c->pending += availability && strcmp(availability, "PENDING") == 0;
                        c->owed += strcmp(kind, "ATTACHMENT") == 0 && !availability_never(availability);
                }
                free(availability);
                if (r < 0)
                        break;
        }
        stmt_close(h);
        return r < 0 ? r : 0;
}

static int documents_row_read(struct pas *p, SQLHSTMT h, const char *what, void *walk, struct errbuf *e) {
        struct waiting_walk *w = walk;
        struct waiting_row row = { .kind = WAITING_DOCUMENTS };
        const struct text_col head[] = { TEXT_COL(row.ubrn), TEXT_COL(row.worklist) };
        const struct text_col tail[] = { TEXT_COL(row.since), TEXT_COL(row.next_at) };
        char *priority = NULL;
        int r;

        r = get_texts(p, h, what, 1, head, sizeof head / sizeof head[0], e);
        if (r >= 0)
                r = get_text_alloc(p, h, 3, what, &priority, e);
        if (r >= 0)
                r = get_texts(p, h, what, 4, tail, sizeof tail / sizeof tail[0], e);
        if (r >= 0)
                r = get_int64(p, h, 6, what, &row.version, NULL, e);
        if (r >= 0) {
                /* both lists are ordered by UBRN */
                while (w->next < w->n_counts && strcmp(w->counts[w->next].ubrn, row.ubrn) < 0)
                        w->next++;
                if (w->next < w->n_counts && strcmp(w->counts[w->next].ubrn, row.ubrn) == 0) {
                        row.documents_pending = w->counts[w->next].pending;
                        row.documents_owed = w->counts[w->next].owed;
                }
                row.priority = priority ? priority : "";
                r = w->fn(w->userdata, &row);
        }
        free(priority);
        return r;
}

static int retry_row_read(struct pas *p, SQLHSTMT h, const char *what, void *walk, struct errbuf *e) {
        struct waiting_walk *w = walk;
        struct waiting_row row = { .kind = WAITING_RETRY };
        const struct text_col head[] = { TEXT_COL(row.ubrn), TEXT_COL(row.worklist) };
        const struct text_col times[] = { TEXT_COL(row.since), TEXT_COL(row.next_at) };
        const struct text_col tail[] = {
                TEXT_COL(row.reason), TEXT_COL(row.sqlstate), TEXT_COL(row.correlation_id),
        };
        char *priority = NULL;
        int64_t parked = 0, in_pas = 0;
        bool null = false;
        int r;

        r = get_texts(p, h, what, 1, head, sizeof head / sizeof head[0], e);
        if (r >= 0)
                r = get_text_alloc(p, h, 3, what, &priority, e);
        if (r >= 0)
                r = get_texts(p, h, what, 4, times, sizeof times / sizeof times[0], e);
        if (r >= 0)
                r = get_int64(p, h, 6, what, &row.version, &null, e);
        if (r >= 0)
                r = get_int64(p, h, 7, what, &row.attempts, NULL, e);
        if (r >= 0)
                r = get_int64(p, h, 8, what, &parked, NULL, e);
        if (r >= 0)
                r = get_texts(p, h, what, 9, tail, sizeof tail / sizeof tail[0], e);
        if (r >= 0)
                r = get_int64(p, h, 12, what, &in_pas, NULL, e);
        if (r >= 0) {
                if (null)
                        row.version = -1;
                row.kind = parked ? WAITING_PARKED : WAITING_RETRY;
                row.in_pas = in_pas > 0;
                row.priority = priority ? priority : "";
                r = w->fn(w->userdata, &row);
        }
        free(priority);
        return r;
}

int pas_waiting_list(struct pas *p, int (*fn)(void *userdata, const struct waiting_row *row), void *userdata,
                     struct errbuf *e) {
        struct waiting_walk w = { .fn = fn, .userdata = userdata };
        int r = count_not_fetched(p, &w, e);

        if (r >= 0)
                r = walk_rows(p, ST_WAITING_DOCUMENTS, documents_row_read, &w, e);
        if (r >= 0)
                r = walk_rows(p, ST_WAITING_RETRY, retry_row_read, &w, e);
        free(w.counts);
        return r;
}

void referral_origin_free(struct referral_origin *o) {
        if (!o)
                return;
        free(o->priority);
        free(o->service_id);
        free(o->service_name);
        free(o->referral_type);
        o->priority = o->service_id = o->service_name = o->referral_type = NULL;
}

int pas_referral_origin(struct pas *p, const char *ubrn, struct referral_origin *ret, struct errbuf *e) {
        static const enum stmt_id sources[] = { ST_ORIGIN_RETRY, ST_ORIGIN_REFERRAL };
        struct referral_origin o = { .entry_version = -1 };
        char **texts[] = { &o.priority, &o.service_id, &o.service_name, &o.referral_type };
        struct param ps[] = { P_TEXT(ubrn) };
        int r;

        r = check_ubrn(ubrn, "referral origin", e);
        if (r < 0)
                return r;
        for (size_t i = 0; i < sizeof sources / sizeof sources[0] && !o.found && r >= 0; i++) {
                const char *what = statements[sources[i]].what;
                SQLHSTMT h = SQL_NULL_HSTMT;

                r = run(p, sources[i], ps, 1, &h, NULL, e);
                if (r < 0)
                        break;
                r = fetch(p, h, what, e);
                if (r > 0) {
                        bool null = false;
                        o.found = true;
                        o.source = sources[i] == ST_ORIGIN_RETRY ? "ers_retry" : "ers_referral";
                        r = get_text(p, h, 1, what, o.worklist, sizeof o.worklist, NULL, e);
                        for (size_t k = 0; r >= 0 && k < sizeof texts / sizeof texts[0]; k++)
                                r = get_text_whole(p, h, (SQLUSMALLINT) (2 + k), what, texts[k], e);
                        if (r >= 0 && sources[i] == ST_ORIGIN_RETRY) {
                                r = get_int64(p, h, 6, what, &o.entry_version, &null, e);
                                if (null)
                                        o.entry_version = -1;
                        }
                }
                stmt_close(h);
        }
        for (size_t k = 0; r >= 0 && k < sizeof texts / sizeof texts[0]; k++)
                if (!*texts[k] && !(*texts[k] = strdup("")))
                        r = err_set(e, -ENOMEM, "out of memory");
        if (r < 0) {
                referral_origin_free(&o);
                return err_prefix(e, r, "%s", ubrn);
        }
        *ret = o;
        return 0;
}
