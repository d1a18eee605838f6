/* SPDX-License-Identifier: MIT */
/*
 * What issue 15 adds to the check of the generated worlds (world_check.h):
 * a referral's additional requirements against the model, and the A005
 * answers the PAS keeps against what the mock served, byte for byte.  Not
 * here: the rest of the comparison (world_check.c).
 */
#include "world_check.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define REQUIREMENT_SYSTEM "https://fhir.nhs.uk/STU3/CodeSystem/eRS-AdditionalRequirementType-1"

/* The rows of ers_referral_requirement of one referral, by seq. */
struct req_rows {
        char *v[WORLD_REQUIREMENTS_MAX + 1][4]; /* code, display, code_system, comments; owned */
        size_t len[WORLD_REQUIREMENTS_MAX + 1][4];
        size_t n;    /* rows kept (at most WORLD_REQUIREMENTS_MAX + 1) */
        size_t seen; /* rows read */
};

static int collect_req(void *userdata, int ncols, char **vals, const size_t *lens)
{
        struct req_rows *t = userdata;

        if (ncols != 5)
                return -1;
        if (t->n < WORLD_REQUIREMENTS_MAX + 1 && vals[0] && strtoull(vals[0], NULL, 10) == t->seen + 1) {
                for (int k = 0; k < 4; k++) {
                        t->v[t->n][k] = vals[k + 1] ? malloc(lens[k + 1] + 1) : NULL;
                        if (vals[k + 1] && !t->v[t->n][k])
                                return -1;
                        if (vals[k + 1])
                                memcpy(t->v[t->n][k], vals[k + 1], lens[k + 1] + 1);
                        t->len[t->n][k] = vals[k + 1] ? lens[k + 1] : 0;
                }
                t->n++;
        }
        t->seen++;
        return 0;
}

static bool same_value(const char *a, size_t alen, const char *b, size_t blen)
{
        return (!a && !b) || (a && b && alen == blen && memcmp(a, b, alen) == 0);
}

unsigned wcheck_compare_requirements(struct wcheck *c, bool say, const char *who, const struct wref *m)
{
        static const char *const names[4] = { "code", "display", "code_system", "comments" };
        static const bool sensitive[4] = { false, true, false, true };
        struct req_rows t = { .n = 0 };
        const char *params[] = { m->ubrn };
        unsigned n = 0;

        if (db_each_row(c->d,
                        "SELECT seq, code, display, code_system, comments FROM ers_referral_requirement "
                        "WHERE ubrn = ? ORDER BY seq",
                        1, params, collect_req, &t) < 0) {
                if (say)
                        wcheck_say(c, "%s: ers_referral_requirement could not be read", who);
                n = 1;
                goto out;
        }
        if (t.seen != m->n_reqs || t.n != t.seen) {
                if (say)
                        wcheck_say(c, "%s: %zu additional requirement row(s) (seq 1, 2, … %s), expected %zu", who, t.seen,
                                   t.n == t.seen ? "in order" : "not in order", m->n_reqs);
                n = 1;
                goto out;
        }
        for (size_t i = 0; i < m->n_reqs; i++) {
                const struct wreq *q = &m->reqs[i];
                char *want[4];
                size_t want_len[4] = { 0 };
                bool typed = q->code.kind != WT_ABSENT || q->display.kind != WT_ABSENT;

                want[0] = wt_code(&q->code, &want_len[0]);
                want[1] = wt_text(&q->display, &want_len[1]);
                want[2] = typed ? strdup(REQUIREMENT_SYSTEM) : NULL;
                want_len[2] = typed ? strlen(REQUIREMENT_SYSTEM) : 0;
                want[3] = wt_text(&q->comments, &want_len[3]);
                for (int k = 0; k < 4; k++) {
                        char a[96], b[96];
                        if (same_value(want[k], want_len[k], t.v[i][k], t.len[i][k]))
                                continue;
                        if (say)
                                wcheck_say(c, "%s: additional requirement %zu: %s: expected %s, got %s", who, i + 1,
                                           names[k], wcheck_describe(want[k], want_len[k], sensitive[k], a, sizeof a),
                                           wcheck_describe(t.v[i][k], t.len[i][k], sensitive[k], b, sizeof b));
                        n++;
                }
                for (int k = 0; k < 4; k++)
                        free(want[k]);
        }
out:
        for (size_t i = 0; i < t.n; i++)
                for (int k = 0; k < 4; k++)
                        free(t.v[i][k]);
        return n;
}

/* ---- the answers kept --------------------------------------------------------------------- */

struct served {
        char (*lines)[128]; /* "<ubrn> <version> <sha256> <bytes>", as the mock notes them */
        size_t n, cap;
};

static bool served_has(const struct served *s, const char *line)
{
        for (size_t i = 0; i < s->n; i++)
                if (strcmp(s->lines[i], line) == 0)
                        return true;
        return false;
}

struct answers_walk {
        struct wcheck *c;
        const struct served *served;
        unsigned rows;
};

static int check_answer(void *userdata, int ncols, char **vals, const size_t *lens)
{
        struct answers_walk *a = userdata;
        char line[160], hex[65] = "";
        int64_t size = -1;

        (void)lens;
        if (ncols != 4 || !vals[0] || !vals[1] || !vals[2] || !vals[3])
                return -1;
        a->rows++;
        snprintf(line, sizeof line, "%s %s %s %s", vals[0], vals[1], vals[2], vals[3]);
        if (!served_has(a->served, line))
                wcheck_say(a->c, "UBRN %s: an answer of version %s kept (%s bytes, SHA-256 %.12s…) that the mock never "
                                 "served", vals[0], vals[1], vals[3], vals[2]);
        const char *params[] = { vals[0], vals[2] };
        if (db_bytes_sha256(a->c->d, "SELECT body FROM ers_referral_answer WHERE ubrn = ? AND sha256 = ?", 2, params,
                            hex, &size) < 0 ||
            strcmp(hex, vals[2]) != 0 || size != strtoll(vals[3], NULL, 10))
                wcheck_say(a->c, "UBRN %s: the answer of version %s kept is not its SHA-256 and size_bytes", vals[0],
                           vals[1]);
        return 0;
}

unsigned wcheck_answers(struct wcheck *c)
{
        struct served s = { .lines = NULL };
        struct answers_walk a = { .c = c, .served = &s };
        unsigned before = c->mismatches;
        char line[256];
        FILE *f;

        if (!c->answers_served)
                return 0;
        f = fopen(c->answers_served, "r");
        while (f && fgets(line, sizeof line, f)) {
                line[strcspn(line, "\n")] = '\0';
                if (s.n == s.cap) {
                        size_t cap = s.cap ? 2 * s.cap : 256;
                        char (*more)[128] = realloc(s.lines, cap * sizeof *more);
                        if (!more)
                                break;
                        s.lines = more;
                        s.cap = cap;
                }
                if (strlen(line) < sizeof s.lines[0]) /* a UBRN, a version, a SHA-256 and a size: short */
                        memcpy(s.lines[s.n++], line, strlen(line) + 1);
        }
        if (f)
                fclose(f);
        if (db_each_row(c->d, "SELECT ubrn, version, sha256, size_bytes FROM ers_referral_answer", 0, NULL,
                        check_answer, &a) < 0)
                wcheck_say(c, "ers_referral_answer could not be read");
        /* every referral the PAS holds, at its version, with the answer it was written from */
        long long bare = db_int(c->d,
                                "SELECT COUNT(*) FROM ers_referral r WHERE NOT EXISTS (SELECT 1 FROM "
                                "ers_referral_answer a WHERE a.ubrn = r.ubrn AND a.version = r.version)",
                                0, NULL);
        if (bare != 0)
                wcheck_say(c, "%lld referral(s) in ers_referral without an answer kept of their version", bare);
        c->answers += a.rows;
        free(s.lines);
        return c->mismatches - before;
}
