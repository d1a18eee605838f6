/* SPDX-License-Identifier: MIT */
/*
 * The return path in the generated worlds: see world_outbox.h.
 */
#include "world_outbox.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *jtext(json_object *o, const char *key)
{
        json_object *v = NULL;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string)
                       ? json_object_get_string(v)
                       : NULL;
}

static int64_t jint(json_object *o, const char *key, int64_t none)
{
        json_object *v = NULL;

        return json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_int) ? json_object_get_int64(v)
                                                                                               : none;
}

/* The codes a write sets, as static texts (the model's strings outlive any answer). */
static struct wt code_wt(const char *code)
{
        static const char *const known[] = { "TRIAGE_RESPONSE", "TRIAGED_PROVIDER_TO_ACTION", "ROUTINE", "URGENT",
                                             "TWO_WEEK_WAIT" };

        for (size_t i = 0; code && i < sizeof known / sizeof known[0]; i++)
                if (strcmp(code, known[i]) == 0)
                        return (struct wt){ .kind = WT_STR, .p = known[i], .n = strlen(known[i]) };
        return (struct wt){ .kind = WT_ABSENT };
}

struct world *world_served(const struct world *w, json_object *applied)
{
        struct world *s = world_copy_whole(w); /* its malformed entries are served too */
        json_object *list = NULL;

        if (!json_object_object_get_ex(applied, "referrals", &list))
                return s;
        for (size_t i = 0; i < json_object_array_length(list); i++) {
                json_object *a = json_object_array_get_idx(list, i);
                const char *ubrn = jtext(a, "ubrn");
                for (size_t k = 0; ubrn && k < s->n_refs; k++) {
                        struct wref *r = &s->refs[k];
                        if (strcmp(r->ubrn, ubrn) != 0)
                                continue;
                        bool still = jint(a, "at", -1) == r->version; /* what it set, served while so */
                        r->version += jint(a, "bumps", 0);
                        if (still && jtext(a, "state"))
                                r->state = code_wt(jtext(a, "state"));
                        if (still && jtext(a, "priority"))
                                r->priority = r->e_priority = code_wt(jtext(a, "priority"));
                }
        }
        return s;
}

/* ---- the check ---------------------------------------------------------------------------- */

/* Whether e-RS served referral `ubrn` BOOKED at `version` in any world of the history: what an
 * acceptance would have left, had it been applied. */
static bool served_booked_at(const struct wcheck *c, const char *ubrn, int64_t version)
{
        for (size_t i = 0; i < c->n_history; i++) {
                const struct wref *m = world_find(c->history[i], ubrn);
                if (m && m->version == version && m->state.kind == WT_STR && m->state.n == 6 &&
                    memcmp(m->state.p, "BOOKED", 6) == 0)
                        return true;
        }
        return false;
}

enum { O_ID, O_UBRN, O_ACTION, O_DECIDED, O_STATE, O_ANSWERED, O_BY, O_CODE, O_COLS };

struct orow {
        char *v[O_COLS];
};

struct orows {
        struct orow *rows;
        size_t n;
};

static int collect(void *userdata, int ncols, char **vals, const size_t *lens)
{
        struct orows *t = userdata;
        struct orow *n = realloc(t->rows, (t->n + 1) * sizeof *n);

        (void)lens;
        if (!n || ncols != O_COLS)
                return -1;
        t->rows = n;
        for (int i = 0; i < O_COLS; i++)
                n[t->n].v[i] = vals[i] ? strdup(vals[i]) : NULL;
        t->n++;
        return 0;
}

/* Whether write x of the mock's record is one request q could have made: its UBRN, its call,
 * its If-Match on the decided version, and for A028 its comment, outcome and priority. */
static bool write_of(json_object *x, const struct wrequest *q, const char *comment_sha)
{
        const char *ep = jtext(x, "endpoint"), *ubrn = jtext(x, "ubrn"), *if_match = jtext(x, "if_match");
        char want[40];

        snprintf(want, sizeof want, "W/\"%" PRId64 "\"", q->decided);
        if (!ep || !ubrn || strcmp(ubrn, q->ubrn) != 0 || strcmp(ep, q->review ? "A028" : "A013") != 0 || !if_match ||
            strcmp(if_match, want) != 0)
                return false;
        if (!q->review)
                return true;
        const char *sha = jtext(x, "comment_sha256"), *outcome = jtext(x, "review_outcome"),
                   *priority = jtext(x, "priority");
        return sha && strcmp(sha, comment_sha) == 0 && outcome && strcmp(outcome, q->outcome) == 0 &&
               !q->priority == !priority && (!priority || strcmp(priority, q->priority) == 0);
}

unsigned wcheck_outbox(struct wcheck *c, const struct wrequest *reqs, size_t n, json_object *record,
                       struct wrequest_figures *fig)
{
        struct orows t = { 0 };
        json_object *writes = NULL;
        unsigned before = c->mismatches;
        size_t n_writes;
        bool *claimed = NULL; /* the writes some request made */

        memset(fig, 0, sizeof *fig);
        if (db_each_row(c->d,
                        "SELECT id, ubrn, action, decided_version, state, answered_version, requested_by, error_code "
                        "FROM ers_outbox ORDER BY id",
                        0, NULL, collect, &t) < 0) {
                wcheck_say(c, "ers_outbox could not be read");
                goto out;
        }
        if (!json_object_object_get_ex(record, "writes", &writes) || !json_object_is_type(writes, json_type_array)) {
                wcheck_say(c, "the mock's write-back record could not be read");
                goto out;
        }
        n_writes = json_object_array_length(writes);
        claimed = calloc(n_writes + 1, sizeof *claimed);
        if (!claimed)
                abort();
        for (size_t i = 0; i < n; i++) {
                const struct wrequest *q = &reqs[i];
                char by[32], sha[65];
                const struct orow *row = NULL;
                unsigned rows = 0;
                if (!q->inserted)
                        continue;
                fig->inserted++;
                snprintf(by, sizeof by, "STAFF-W%u", q->n);
                for (size_t k = 0; k < t.n; k++)
                        if (t.rows[k].v[O_BY] && strcmp(t.rows[k].v[O_BY], by) == 0) {
                                row = &t.rows[k];
                                rows++;
                        }
                if (rows != 1) {
                        wcheck_say(c, "UBRN %s: request W%u (%s): %u row(s) in ers_outbox, expected 1%s", q->ubrn, q->n,
                                   q->review ? "RECORD_REVIEW_OUTCOME" : "ACCEPT_REFERRAL", rows, rows ? "" : ": lost");
                        continue;
                }
                const char *state = row->v[O_STATE] ? row->v[O_STATE] : "NULL";
                bool done = strcmp(state, "DONE") == 0, rejected = strcmp(state, "REJECTED") == 0,
                     stale = strcmp(state, "STALE") == 0;
                fig->done += done;
                fig->rejected += rejected;
                fig->stale += stale;
                if (!done && !rejected && !stale)
                        wcheck_say(c, "UBRN %s: request W%u: %s after a settle (expected DONE, REJECTED or STALE)",
                                   q->ubrn, q->n, state);
                /* Its writes: A013 has no body, so requests alike in every way share theirs. */
                sha256_hex(q->comment, strlen(q->comment), sha);
                unsigned applied = 0, alike = 0, alike_done = 0, alike_stale = 0, alike_current = 0;
                int64_t answered = -1;
                for (size_t w = 0; w < n_writes; w++) {
                        json_object *x = json_object_array_get_idx(writes, w);
                        if (!write_of(x, q, sha))
                                continue;
                        claimed[w] = true;
                        if (json_object_get_boolean(json_object_object_get(x, "applied"))) {
                                applied++;
                                answered = jint(x, "version", -1);
                        }
                }
                for (size_t k = 0; k < n; k++) {
                        const struct wrequest *o = &reqs[k];
                        if (!o->inserted || o->review != q->review || strcmp(o->ubrn, q->ubrn) != 0 ||
                            o->decided != q->decided || (q->review && strcmp(o->comment, q->comment) != 0))
                                continue;
                        char oby[32];
                        snprintf(oby, sizeof oby, "STAFF-W%u", o->n);
                        for (size_t j = 0; j < t.n; j++)
                                if (t.rows[j].v[O_BY] && strcmp(t.rows[j].v[O_BY], oby) == 0 && t.rows[j].v[O_STATE]) {
                                        bool settled = strcmp(t.rows[j].v[O_STATE], "DONE") == 0 ||
                                                       strcmp(t.rows[j].v[O_STATE], "STALE") == 0;
                                        alike_done += strcmp(t.rows[j].v[O_STATE], "DONE") == 0;
                                        alike_stale += strcmp(t.rows[j].v[O_STATE], "STALE") == 0;
                                        alike_current += settled && !o->behind; /* may own an applied write */
                                }
                        alike++;
                }
                if (applied > 1)
                        wcheck_say(c, "UBRN %s: request W%u: applied %u times in e-RS", q->ubrn, q->n, applied);
                /* STALE, or REJECTED when a fault said so first; a write alike it (the same call on the same
                 * version) applied is another request's, decided on the version it was at */
                if (q->behind && (applied > alike_current || done))
                        wcheck_say(c, "UBRN %s: request W%u, decided on a version the referral had left: %s, applied "
                                      "%u time(s) (expected never applied)", q->ubrn, q->n, state, applied);
                if (done && applied == 1 && alike_done == 1 &&
                    (!row->v[O_ANSWERED] || strtoll(row->v[O_ANSWERED], NULL, 10) != answered))
                        wcheck_say(c, "UBRN %s: request W%u: DONE with answered_version %s, e-RS answered %" PRId64,
                                   q->ubrn, q->n, row->v[O_ANSWERED] ? row->v[O_ANSWERED] : "NULL", answered);
                /* C-13.4's residual (H-13): an acceptance not applied (dropped, or refused and
                 * that answer lost) while e-RS moved the referral on by itself exactly one
                 * version, BOOKED, unseen by ersd before it sent: settled by A005, which
                 * tells no acceptance, as applied.  Only exactly that case; counted. */
                bool guessed = done && !applied && alike == 1 && !q->review && !q->behind &&
                               row->v[O_ANSWERED] && strtoll(row->v[O_ANSWERED], NULL, 10) == q->decided + 1 &&
                               served_booked_at(c, q->ubrn, q->decided + 1);
                fig->guessed += guessed;
                if (alike_done > applied && !guessed)
                        wcheck_say(c, "UBRN %s: request W%u: DONE, yet e-RS applied it %u time(s)%s", q->ubrn, q->n,
                                   applied, alike > 1 ? " (with the requests alike)" : "");
                if (applied > alike_done + alike_stale)
                        wcheck_say(c, "UBRN %s: request W%u: e-RS applied it, the PAS says %s%s", q->ubrn, q->n, state,
                                   alike > 1 ? " (with the requests alike)" : "");
        }
        for (size_t w = 0; w < n_writes; w++) {
                json_object *x = json_object_array_get_idx(writes, w);
                const char *ep = jtext(x, "endpoint");
                bool applied = json_object_get_boolean(json_object_object_get(x, "applied"));
                if (!ep || strcmp(ep, "A029") == 0)
                        continue;
                fig->applied += applied;
                if (!claimed[w])
                        wcheck_say(c, "UBRN %s: e-RS was sent %s with If-Match %s%s that no request asked for so "
                                      "(another version, outcome, priority or comment)",
                                   jtext(x, "ubrn") ? jtext(x, "ubrn") : "?", ep,
                                   jtext(x, "if_match") ? jtext(x, "if_match") : "none", applied ? ", and applied it" : "");
        }
        for (size_t k = 0; k < t.n; k++) {
                const char *by = t.rows[k].v[O_BY];
                bool planned = false;
                for (size_t i = 0; by && i < n; i++) {
                        char want[32];
                        snprintf(want, sizeof want, "STAFF-W%u", reqs[i].n);
                        planned |= reqs[i].inserted && strcmp(by, want) == 0;
                }
                if (!planned)
                        wcheck_say(c, "ers_outbox holds request %s that the PAS never inserted",
                                   t.rows[k].v[O_ID] ? t.rows[k].v[O_ID] : "?");
        }
out:
        free(claimed);
        for (size_t k = 0; k < t.n; k++)
                for (int i = 0; i < O_COLS; i++)
                        free(t.rows[k].v[i]);
        free(t.rows);
        return c->mismatches - before;
}
