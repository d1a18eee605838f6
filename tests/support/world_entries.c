/* SPDX-License-Identifier: MIT */
/*
 * The latest worklists against the model (world_check.h): after a settled
 * round, ers_worklist_entry holds what each worklist listed at that round's
 * poll, entry by entry: its UBRN, version and working state in e-RS.  Not
 * here: the referrals those entries led to (world_check.c).
 */
#include "world_check.h"

#include <inttypes.h>
#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define N_COLS 9 /* worklist, ubrn, version, then the working state's six */

static const char *const state_names[6] = { "ubrn_received",       "patient_contact_expected",
                                            "last_contact",        "clinical_information_status",
                                            "clinical_info_printed", "request_context_status" };

struct entry_row {
        char *v[N_COLS];     /* owned; NULL for SQL NULL */
        size_t len[N_COLS];
        bool used;
};

struct entry_rows {
        struct entry_row *rows;
        size_t n, cap;
};

static int collect_entry(void *userdata, int ncols, char **vals, const size_t *lens)
{
        struct entry_rows *t = userdata;

        if (ncols != N_COLS)
                return -1;
        if (t->n == t->cap) {
                size_t cap = t->cap ? 2 * t->cap : 64;
                struct entry_row *more = realloc(t->rows, cap * sizeof *more);
                if (!more)
                        return -1;
                t->rows = more;
                t->cap = cap;
        }
        struct entry_row *r = &t->rows[t->n++];
        memset(r, 0, sizeof *r);
        for (int i = 0; i < N_COLS; i++) {
                if (!vals[i])
                        continue;
                r->v[i] = malloc(lens[i] + 1);
                if (!r->v[i])
                        return -1;
                memcpy(r->v[i], vals[i], lens[i] + 1);
                r->len[i] = lens[i];
        }
        return 0;
}

static struct entry_row *find_entry(struct entry_rows *t, const char *worklist, const char *ubrn)
{
        for (size_t i = 0; i < t->n; i++)
                if (t->rows[i].v[0] && t->rows[i].v[1] && strcmp(t->rows[i].v[0], worklist) == 0 &&
                    strcmp(t->rows[i].v[1], ubrn) == 0)
                        return &t->rows[i];
        return NULL;
}

/* The UBRN of a junk entry when ersd can read one (then the entry is recorded as
 * listed, with nothing else): "ReferralRequest/<12 digits>" as its item.reference. */
static bool junk_ubrn(const char *junk, char ubrn[13])
{
        json_object *o = json_tokener_parse(junk), *item = NULL, *ref = NULL;
        const char *s;
        bool ok = false;

        if (json_object_is_type(o, json_type_object) && json_object_object_get_ex(o, "item", &item) &&
            json_object_object_get_ex(item, "reference", &ref) && json_object_is_type(ref, json_type_string)) {
                s = json_object_get_string(ref);
                ok = strncmp(s, "ReferralRequest/", 16) == 0 && strlen(s + 16) == 12 &&
                     strspn(s + 16, "0123456789") == 12;
                if (ok)
                        memcpy(ubrn, s + 16, 13);
        }
        json_object_put(o);
        return ok;
}

/* One expected entry against its row: version and working state. */
static void compare_entry(struct wcheck *c, struct entry_rows *t, const char *worklist, const char *ubrn,
                          const char *version, const struct wref *m)
{
        struct entry_row *r = find_entry(t, worklist, ubrn);
        char *want[6] = { NULL };
        size_t want_len[6] = { 0 };

        if (!r) {
                wcheck_say(c, "UBRN %s: worklist %s lists it, ers_worklist_entry has no row of it", ubrn, worklist);
                return;
        }
        r->used = true;
        if ((version == NULL) != (r->v[2] == NULL) || (version && strcmp(version, r->v[2]) != 0))
                wcheck_say(c, "UBRN %s: ers_worklist_entry of worklist %s: version %s, e-RS listed %s", ubrn, worklist,
                           r->v[2] ? r->v[2] : "NULL", version ? version : "none");
        if (m) {
                const struct wstate *texts[6] = { &m->e_received, &m->e_contact, &m->e_last, &m->e_information,
                                                  NULL, &m->e_context };
                for (int k = 0; k < 6; k++)
                        if (texts[k])
                                want[k] = wstate_joined(texts[k], &want_len[k]);
                const char *printed = wref_printed(m);
                want[4] = printed ? strdup(printed) : NULL;
                want_len[4] = printed ? strlen(printed) : 0;
        }
        for (int k = 0; k < 6; k++) {
                const char *got = r->v[3 + k];
                size_t got_len = r->len[3 + k];
                char a[96], b[96];
                if ((!want[k] && !got) || (want[k] && got && want_len[k] == got_len && memcmp(want[k], got, got_len) == 0))
                        continue;
                wcheck_say(c, "UBRN %s: ers_worklist_entry of worklist %s: %s: expected %s, got %s", ubrn, worklist,
                           state_names[k], wcheck_describe(want[k], want_len[k], false, a, sizeof a),
                           wcheck_describe(got, got_len, false, b, sizeof b));
        }
        for (int k = 0; k < 6; k++)
                free(want[k]);
}

unsigned wcheck_worklist_entries(struct wcheck *c)
{
        const struct world *now = c->history[c->n_history - 1];
        struct entry_rows t = { .rows = NULL };
        unsigned before = c->mismatches;
        bool judged[WORLD_WORKLISTS];

        if (db_each_row(c->d,
                        "SELECT worklist, ubrn, version, ubrn_received, patient_contact_expected, last_contact, "
                        "clinical_information_status, clinical_info_printed, request_context_status "
                        "FROM ers_worklist_entry",
                        0, NULL, collect_entry, &t) < 0) {
                wcheck_say(c, "ers_worklist_entry could not be read");
                goto out;
        }
        for (int k = 0; k < WORLD_WORKLISTS; k++) {
                const char *name = WORLD_WORKLIST[k].name;
                char ubrn[13];

                /* a skipped entry without a readable UBRN: that poll recorded nothing (who is listed
                 * cannot be told), so the rows are an earlier poll's: not judged */
                judged[k] = true;
                for (size_t j = 0; j < now->n_junk; j++)
                        if (now->junk_on[j] == k && !junk_ubrn(now->junk[j], ubrn))
                                judged[k] = false;
                if (!judged[k])
                        continue;
                for (size_t i = 0; i < now->n_refs; i++) {
                        const struct wref *m = &now->refs[i];
                        char v[32];
                        if (m->related_only || m->gone || m->worklist != k)
                                continue;
                        snprintf(v, sizeof v, "%" PRId64, m->version + m->entry_ahead);
                        compare_entry(c, &t, name, m->ubrn, k == 1 ? NULL : v, m); /* slot issues: no version */
                }
                /* a skipped entry whose UBRN is readable is recorded as listed, with nothing else */
                for (size_t j = 0; j < now->n_junk; j++)
                        if (now->junk_on[j] == k && junk_ubrn(now->junk[j], ubrn))
                                compare_entry(c, &t, name, ubrn, NULL, NULL);
        }
        for (size_t i = 0; i < t.n; i++) {
                const struct entry_row *r = &t.rows[i];
                int k = 0;
                while (k < WORLD_WORKLISTS && (!r->v[0] || strcmp(r->v[0], WORLD_WORKLIST[k].name) != 0))
                        k++;
                if (r->used || (k < WORLD_WORKLISTS && !judged[k]))
                        continue;
                wcheck_say(c, "UBRN %s: an ers_worklist_entry row of worklist %s, which does not list it",
                           r->v[1] ? r->v[1] : "NULL", r->v[0] ? r->v[0] : "NULL");
        }
out:
        for (size_t i = 0; i < t.n; i++)
                for (int k = 0; k < N_COLS; k++)
                        free(t.rows[i].v[k]);
        free(t.rows);
        return c->mismatches - before;
}
