/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The outbox's part of `ersd status` (issue 16): the requests to e-RS
 * waiting (NEW, RETRY, SENDING) and those needing a person (REJECTED,
 * STALE, and RETRY held by FORBIDDEN), read from ers_outbox
 * (adapters/pas_outbox.h), printed as text, JSON or Prometheus by status.c.
 * Never the comment nor who asked: request numbers, UBRNs, actions, states,
 * versions, e-RS's codes, times and correlation ids only.  Not here: the
 * rest of `ersd status` (status.c), what is sent (outbox.c).
 */

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include <json-c/json.h>

#include "../adapters/pas.h"
#include "../adapters/pas_outbox.h"

#define STATUS_OUTBOX_LIST_MAX 1000 /* requests needing a person listed in detail; the counts are complete */

/* One request needing a person, as listed. */
struct status_outbox_row {
        int64_t id;
        char ubrn[UBRN_LEN + 1];
        char action[OUTBOX_ACTION_MAX + 1];
        char state[OUTBOX_STATE_MAX + 1];
        int64_t decided_version;
        char *error_code; /* owned; "" when none */
        char updated_at[32];
        char correlation_id[40];
};

struct status_outbox {
        struct outbox_counts counts;
        long forbidden;                 /* of counts.retry: those held by FORBIDDEN */
        struct status_outbox_row *rows; /* owned array of min(n_attention, STATUS_OUTBOX_LIST_MAX) */
        size_t n_attention;             /* REJECTED + STALE + forbidden */
};

/* Reads the counts and the requests needing a person.  0 or a negative errno
 * (pas.h's contract: one line in e); *o is then empty but freeable. */
int status_outbox_collect(struct pas *pas, struct status_outbox *o, struct errbuf *e);
void status_outbox_free(struct status_outbox *o); /* accepts a zeroed one */

/* Waiting: NEW + RETRY not held by FORBIDDEN + SENDING. */
long status_outbox_waiting(const struct status_outbox *o);

/* The text section; `enabled` is writeback.enabled (shown, as nothing is sent while off). */
void status_outbox_text(const struct status_outbox *o, bool enabled, FILE *out);
/* The JSON object "outbox": {"enabled", "counts": {...}, "needs_person": [...]}. */
json_object *status_outbox_json(const struct status_outbox *o, bool enabled);
/* The Prometheus gauges ersd_outbox_requests{state=...} and ersd_outbox_needs_person. */
void status_outbox_prometheus(const struct status_outbox *o, FILE *out);
