/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Worklist entries skipped as malformed (struct worklist_skip, model.h): what
 * the daemon says of them, records with the poll, and shows in `ersd status`.
 * One bad entry costs that entry only: the rest of the worklist is synced,
 * and the call (one of the service's two a day) is not lost.
 *
 * Everything here is our own words, UBRNs and counts: a skip holds no text
 * from the answer.
 */

#include <stddef.h>

#include "model.h"

#define SKIPPED_LINES_MAX 20 /* skipped entries logged one by one; the rest are counted in one line */

/* Logs each skipped entry of w (one line: worklist, position, UBRN when
 * readable, why, correlation id), at most SKIPPED_LINES_MAX, then one line
 * for the rest. */
void skipped_log(const char *worklist, const struct worklist *w, const char *correlation_id);

/*
 * ers_poll.last_result of a worklist read (docs/schema.md): "N referral(s)
 * listed", and when entries were skipped "; 1 malformed entry skipped:
 * entry[I] (UBRN U): why" or "; K malformed entries skipped, the first:
 * entry[I]: why".  Into buf (its size bounds it: 256 is the column's width;
 * every byte is ASCII, so no cut splits a character).
 */
void skipped_poll_result(const struct worklist *w, char *buf, size_t size);

/* The K of such a result: how many entries the read it records skipped; 0
 * for any other result. */
long skipped_in_poll_result(const char *last_result);

/*
 * What the worklist lists, for the record of its latest entries and of who
 * left it (write_listing(), worklist_sync.c): the `n` entries `sorted` and
 * the skipped entries whose UBRN was readable (with no version), sorted by UBRN.  0 with
 * *ret (owned, free() it and *ret_extra) and *ret_n; 1 when an entry was
 * skipped without a readable UBRN: then nobody can say who left (*ret
 * untouched); -ENOMEM.
 */
int skipped_listing(const struct worklist_entry *const *sorted, size_t n, const struct worklist *w,
                    const struct worklist_entry ***ret, size_t *ret_n, struct worklist_entry **ret_extra);
