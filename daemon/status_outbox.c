/* SPDX-License-Identifier: MIT */
/*
 * The outbox's part of `ersd status` (status_outbox.h): collected from
 * ers_outbox, printed in the three forms.  Not here: the rest of the status
 * (status.c), the table's statements (adapters/pas_outbox.c).
 */
#include "status_outbox.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"

static int on_attention(void *userdata, const struct outbox_attention *a) {
        struct status_outbox *o = userdata;

        if (strcmp(a->state, "RETRY") == 0)
                o->forbidden++;
        if (o->n_attention < STATUS_OUTBOX_LIST_MAX) {
                struct status_outbox_row *w = &o->rows[o->n_attention];
                *w = (struct status_outbox_row){ .id = a->id, .decided_version = a->decided_version };
                w->error_code = strdup(a->error_code ? a->error_code : "");
                if (!w->error_code)
                        return 1; /* out of memory: the walk stops */
                snprintf(w->ubrn, sizeof w->ubrn, "%s", a->ubrn);
                snprintf(w->action, sizeof w->action, "%s", a->action);
                snprintf(w->state, sizeof w->state, "%s", a->state);
                snprintf(w->updated_at, sizeof w->updated_at, "%s", a->updated_at ? a->updated_at : "");
                snprintf(w->correlation_id, sizeof w->correlation_id, "%s", a->correlation_id ? a->correlation_id : "");
        }
        o->n_attention++;
        return 0;
}

int status_outbox_collect(struct pas *pas, struct status_outbox *o, struct errbuf *e) {
        int r;

        memset(o, 0, sizeof *o);
        r = pas_outbox_counts(pas, &o->counts, e);
        if (r < 0)
                return r;
        o->rows = calloc(STATUS_OUTBOX_LIST_MAX, sizeof *o->rows);
        if (!o->rows)
                return err_set(e, -ENOMEM, "out of memory reading ers_outbox");
        /* every row walked, so that the counts are complete; the first STATUS_OUTBOX_LIST_MAX kept */
        r = pas_outbox_attention(pas, SIZE_MAX, on_attention, o, e);
        if (r > 0)
                r = err_set(e, -ENOMEM, "out of memory reading ers_outbox");
        if (r < 0)
                status_outbox_free(o);
        return r;
        return 0;
}

void status_outbox_free(struct status_outbox *o) {
        size_t n = o->n_attention < STATUS_OUTBOX_LIST_MAX ? o->n_attention : STATUS_OUTBOX_LIST_MAX;

        for (size_t i = 0; o->rows && i < n; i++)
                free(o->rows[i].error_code);
        free(o->rows);
        memset(o, 0, sizeof *o);
}

/* RETRY not held by FORBIDDEN.  The two are read by two statements, not one snapshot: never below 0. */
static long retry_waiting(const struct status_outbox *o) {
        return o->counts.retry > o->forbidden ? o->counts.retry - o->forbidden : 0;
}

long status_outbox_waiting(const struct status_outbox *o) {
        return o->counts.new_ + retry_waiting(o) + o->counts.sending;
}

/* What a person does about a request in `state` (docs/operations.md, "Writing back to e-RS"). */
static const char *what_to_do(const struct status_outbox_row *w) {
        if (strcmp(w->state, "RETRY") == 0)
                return "e-RS refused the application (403): check its approval for this action";
        if (strcmp(w->state, "STALE") == 0)
                return "the referral moved on: decide again on its current version";
        return "e-RS refused it: see its code, then act in e-RS or insert a new request";
}

void status_outbox_text(const struct status_outbox *o, bool enabled, FILE *out) {
        size_t n = o->n_attention < STATUS_OUTBOX_LIST_MAX ? o->n_attention : STATUS_OUTBOX_LIST_MAX;

        fprintf(out, "\nWrite-back to e-RS (writeback.enabled = %s): %ld waiting (%ld new, %ld to retry, %ld sending), "
                     "%ld done, %zu need a person\n",
                enabled ? "true" : "false", status_outbox_waiting(o), o->counts.new_, retry_waiting(o),
                o->counts.sending, o->counts.done, o->n_attention);
        if (o->counts.next_attempt_at[0]) {
                escape_fprintf(out, "  next retry at %s", o->counts.next_attempt_at);
                fputc('\n', out);
        }
        for (size_t i = 0; i < n; i++) {
                const struct status_outbox_row *w = &o->rows[i];
                escape_fprintf(out, "  request %" PRId64 "  UBRN %s  %s  decided on version %" PRId64 "  %s%s%s  at %s%s%s%s",
                               w->id, w->ubrn, w->action, w->decided_version, w->state, w->error_code[0] ? " " : "",
                               w->error_code, w->updated_at, w->correlation_id[0] ? " (correlation id " : "",
                               w->correlation_id, w->correlation_id[0] ? ")" : "");
                fprintf(out, ": %s\n", what_to_do(w));
        }
        if (o->n_attention > n)
                fprintf(out, "  ... and %zu more\n", o->n_attention - n);
}

static json_object *jstr(const char *s) {
        return s && s[0] ? json_object_new_string(s) : NULL; /* NULL is JSON null */
}

json_object *status_outbox_json(const struct status_outbox *o, bool enabled) {
        json_object *root = json_object_new_object();
        json_object *counts = json_object_new_object();
        json_object *list = json_object_new_array();
        size_t n = o->n_attention < STATUS_OUTBOX_LIST_MAX ? o->n_attention : STATUS_OUTBOX_LIST_MAX;

        json_object_object_add(root, "enabled", json_object_new_boolean(enabled));
        json_object_object_add(counts, "waiting", json_object_new_int64(status_outbox_waiting(o)));
        json_object_object_add(counts, "new", json_object_new_int64(o->counts.new_));
        json_object_object_add(counts, "retry", json_object_new_int64(retry_waiting(o)));
        json_object_object_add(counts, "sending", json_object_new_int64(o->counts.sending));
        json_object_object_add(counts, "done", json_object_new_int64(o->counts.done));
        json_object_object_add(counts, "needs_person", json_object_new_int64((int64_t) o->n_attention));
        json_object_object_add(counts, "rejected", json_object_new_int64(o->counts.rejected));
        json_object_object_add(counts, "stale", json_object_new_int64(o->counts.stale));
        json_object_object_add(counts, "forbidden", json_object_new_int64(o->forbidden));
        json_object_object_add(root, "counts", counts);
        json_object_object_add(root, "next_retry_at", jstr(o->counts.next_attempt_at));
        for (size_t i = 0; i < n; i++) {
                const struct status_outbox_row *w = &o->rows[i];
                json_object *x = json_object_new_object();
                json_object_object_add(x, "id", json_object_new_int64(w->id));
                json_object_object_add(x, "ubrn", json_object_new_string(w->ubrn));
                json_object_object_add(x, "action", json_object_new_string(w->action));
                json_object_object_add(x, "state", json_object_new_string(w->state));
                json_object_object_add(x, "decided_version", json_object_new_int64(w->decided_version));
                json_object_object_add(x, "error_code", jstr(w->error_code));
                json_object_object_add(x, "updated_at", jstr(w->updated_at));
                json_object_object_add(x, "correlation_id", jstr(w->correlation_id));
                json_object_array_add(list, x);
        }
        json_object_object_add(root, "needs_person", list);
        return root;
}

void status_outbox_prometheus(const struct status_outbox *o, FILE *out) {
        const struct {
                const char *state;
                long n;
        } by_state[] = {
                { "new", o->counts.new_ },           { "retry", retry_waiting(o) },
                { "sending", o->counts.sending },    { "done", o->counts.done },
                { "rejected", o->counts.rejected },  { "stale", o->counts.stale },
                { "forbidden", o->forbidden },
        };

        fputs("# HELP ersd_outbox_requests Requests to e-RS in ers_outbox by state (forbidden: RETRY held by a 403).\n"
              "# TYPE ersd_outbox_requests gauge\n",
              out);
        for (size_t i = 0; i < sizeof by_state / sizeof by_state[0]; i++)
                fprintf(out, "ersd_outbox_requests{state=\"%s\"} %ld\n", by_state[i].state, by_state[i].n);
        fputs("# HELP ersd_outbox_waiting Requests to e-RS waiting to be sent or settled (new, retry, sending).\n"
              "# TYPE ersd_outbox_waiting gauge\n",
              out);
        fprintf(out, "ersd_outbox_waiting %ld\n", status_outbox_waiting(o));
        fputs("# HELP ersd_outbox_needs_person Requests to e-RS needing a person (rejected, stale, forbidden).\n"
              "# TYPE ersd_outbox_needs_person gauge\n",
              out);
        fprintf(out, "ersd_outbox_needs_person %zu\n", o->n_attention);
}
