/* SPDX-License-Identifier: MIT */
#include "skipped.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "log.h"

#define LISTED_FORMAT  "%zu referral(s) listed"
#define SKIPPED_MARK   " malformed entr" /* "; K malformed entry skipped" or "… entries skipped" */

void skipped_log(const char *worklist, const struct worklist *w, const char *correlation_id) {
        for (size_t i = 0; i < w->n_skipped && i < SKIPPED_LINES_MAX; i++) {
                const struct worklist_skip *s = &w->skipped[i];
                struct log_ctx lc = { .ubrn = s->ubrn[0] ? s->ubrn : NULL, .worklist = worklist,
                                      .correlation_id = correlation_id, .stage = "worklist" };

                log_ctx_error(&lc, "worklist %s: entry[%zu]%s%s%s skipped, not synced: %s (correlation id %s)",
                              worklist, s->index, s->ubrn[0] ? " (UBRN " : "", s->ubrn, s->ubrn[0] ? ")" : "",
                              s->why, correlation_id);
        }
        if (w->n_skipped > SKIPPED_LINES_MAX)
                log_ctx_error(&(struct log_ctx){ .worklist = worklist, .correlation_id = correlation_id,
                                                 .stage = "worklist" },
                              "worklist %s: %zu more malformed entries skipped, not synced (correlation id %s)",
                              worklist, w->n_skipped - SKIPPED_LINES_MAX, correlation_id);
}

void skipped_poll_result(const struct worklist *w, char *buf, size_t size) {
        const struct worklist_skip *s = w->skipped;
        int n = snprintf(buf, size, LISTED_FORMAT, w->n);

        if (n < 0 || (size_t) n >= size || w->n_skipped == 0)
                return;
        snprintf(buf + n, size - (size_t) n, "; %zu" SKIPPED_MARK "%s entry[%zu]%s%s%s: %s", w->n_skipped,
                 w->n_skipped == 1 ? "y skipped:" : "ies skipped, the first:", s->index, s->ubrn[0] ? " (UBRN " : "",
                 s->ubrn, s->ubrn[0] ? ")" : "", s->why);
}

long skipped_in_poll_result(const char *last_result) {
        size_t listed;
        long skipped;
        int used = 0;

        if (!last_result || sscanf(last_result, LISTED_FORMAT "; %ld%n", &listed, &skipped, &used) != 2 ||
            strncmp(last_result + used, SKIPPED_MARK, strlen(SKIPPED_MARK)) != 0 || skipped < 0)
                return 0;
        return skipped;
}

static int compare_entry_ptr(const void *a, const void *b) {
        const struct worklist_entry *const *x = a, *const *y = b;

        return strcmp((*x)->ubrn, (*y)->ubrn);
}

int skipped_listing(const struct worklist_entry *const *sorted, size_t n, const struct worklist *w,
                    const struct worklist_entry ***ret, size_t *ret_n, struct worklist_entry **ret_extra) {
        const struct worklist_entry **all;
        struct worklist_entry *extra;
        size_t k = n;

        for (size_t i = 0; i < w->n_skipped; i++)
                if (!w->skipped[i].ubrn[0])
                        return 1;
        all = calloc(n + w->n_skipped + 1, sizeof *all);
        extra = calloc(w->n_skipped + 1, sizeof *extra);
        if (!all || !extra) {
                free(all);
                free(extra);
                return -ENOMEM;
        }
        memcpy(all, sorted, n * sizeof *all);
        for (size_t i = 0; i < w->n_skipped; i++) {
                memcpy(extra[i].ubrn, w->skipped[i].ubrn, sizeof extra[i].ubrn);
                extra[i].version = -1;
                all[k++] = &extra[i];
        }
        qsort(all, k, sizeof *all, compare_entry_ptr);
        *ret = all;
        *ret_n = k;
        *ret_extra = extra;
        return 0;
}
