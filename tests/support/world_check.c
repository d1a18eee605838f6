/* SPDX-License-Identifier: MIT */
/*
 * The PAS against the model: see world_check.h.  The PAS is read whole,
 * table by table, into memory (a test's PAS is small), then compared.
 */
#include "world_check.h"

#include <inttypes.h>
#include <stddef.h>
#include <json-c/json.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MIB (1024 * 1024)
#define SCHEMA_KEYED 4 /* from this schema version on, ers_document has attachment_key (issue 13) */

/* ---- the PAS in memory ------------------------------------------------------------------ */

struct row {
        char **v;   /* owned; NULL for SQL NULL */
        size_t *len;
        int n;
        bool used;  /* matched with an expectation */
};

struct table {
        struct row *rows;
        size_t n, cap;
};

static int collect(void *userdata, int ncols, char **vals, const size_t *lens)
{
        struct table *t = userdata;

        if (t->n == t->cap) {
                size_t cap = t->cap ? 2 * t->cap : 64;
                struct row *nr = realloc(t->rows, cap * sizeof *nr);
                if (!nr)
                        return -1;
                t->rows = nr;
                t->cap = cap;
        }
        struct row *r = &t->rows[t->n];
        r->v = calloc((size_t)ncols, sizeof *r->v);
        r->len = calloc((size_t)ncols, sizeof *r->len);
        if (!r->v || !r->len) {
                free(r->v);
                free(r->len);
                return -1;
        }
        r->n = ncols;
        r->used = false;
        for (int i = 0; i < ncols; i++) {
                r->len[i] = lens[i];
                if (vals[i] && !(r->v[i] = malloc(lens[i] + 1)))
                        return -1;
                if (vals[i])
                        memcpy(r->v[i], vals[i], lens[i] + 1);
        }
        t->n++;
        return 0;
}

static void table_free(struct table *t)
{
        for (size_t i = 0; i < t->n; i++) {
                for (int k = 0; k < t->rows[i].n; k++)
                        free(t->rows[i].v[k]);
                free(t->rows[i].v);
                free(t->rows[i].len);
        }
        free(t->rows);
        *t = (struct table){ 0 };
}

static int load(struct wcheck *c, struct table *t, const char *sql)
{
        if (db_each_row(c->d, sql, 0, NULL, collect, t) < 0) {
                wcheck_say(c, "the PAS could not be read: %s", sql);
                return -1;
        }
        return 0;
}

/* Columns of the queries below. */
enum { R_UBRN, R_VERSION, R_NHS, R_NHS_VALID, R_PRIORITY, R_STATE, R_REASON, R_COMMENT, R_SPECIALTY,
       R_SPECIALTY_DISPLAY, R_SERVICE_ID, R_SERVICE_NAME, R_REFERRAL_TYPE, R_PATHWAY_START, R_CIFS, R_APPT_START,
       R_APPT_END, R_COMMISSIONING_ORG, R_REQUEST_ID, R_STATUS, R_INTENT, R_WORKLIST, R_COLS };
static const char *const R_NAMES[R_COLS] = {
        "ubrn", "version", "nhs_number", "nhs_number_valid", "priority", "state", "state_reason", "state_comment",
        "specialty", "specialty_display", "service_id", "service_name", "referral_type", "pathway_start",
        "clinical_info_first_submitted", "appointment_start", "appointment_end", "commissioning_org", "request_id",
        "status", "intent", "worklist",
};
/* Free text, or a patient identifier: described, never shown. */
static const bool R_SENSITIVE[R_COLS] = { [R_NHS] = true, [R_COMMENT] = true, [R_SPECIALTY_DISPLAY] = true,
                                          [R_SERVICE_NAME] = true };

enum { D_UBRN, D_SOURCE, D_KIND, D_ID, D_REVISION, D_SOURCE_VERSION, D_TITLE, D_CONTENT_TYPE, D_DECLARED,
       D_AVAILABILITY, D_BY_USER, D_BY_ORG, D_CREATED, D_STATUS, D_REASON, D_SIZE, D_SHA, D_REMOVED, D_DOCUMENT_ID,
       D_KEY, D_OCCURRENCE, D_COLS };
#define DOC_COLUMNS                                                                                            \
        "ubrn, source_ubrn, kind, attachment_id, revision, source_version, title, content_type, declared_size, " \
        "availability, attached_by_user, attached_by_org, created, fetch_status, not_fetched_reason, size_bytes, " \
        "sha256, removed_at, document_id"

struct pas {
        struct table referrals, related, documents, ledger, retry, audit;
        bool keyed; /* ers_document has attachment_key */
};

static void pas_free(struct pas *p)
{
        table_free(&p->referrals);
        table_free(&p->related);
        table_free(&p->documents);
        table_free(&p->ledger);
        table_free(&p->retry);
        table_free(&p->audit);
}

static int pas_load(struct wcheck *c, struct pas *p)
{
        p->keyed = db_int(c->d, "SELECT version FROM ers_schema_version", 0, NULL) >= SCHEMA_KEYED;
        if (load(c, &p->referrals,
                 "SELECT ubrn, version, nhs_number, nhs_number_valid, priority, state, state_reason, state_comment,"
                 " specialty, specialty_display, service_id, service_name, referral_type, pathway_start,"
                 " clinical_info_first_submitted, appointment_start, appointment_end, commissioning_org, request_id,"
                 " status, intent, worklist FROM ers_referral") < 0 ||
            load(c, &p->related, "SELECT ubrn, related_ubrn FROM ers_referral_related") < 0 ||
            load(c, &p->documents,
                 p->keyed ? "SELECT " DOC_COLUMNS ", attachment_key, occurrence FROM ers_document ORDER BY revision"
                          : "SELECT " DOC_COLUMNS ", NULL, 0 FROM ers_document ORDER BY revision") < 0 ||
            load(c, &p->ledger, "SELECT ubrn, version, complete FROM ers_ledger") < 0 ||
            load(c, &p->retry, "SELECT ubrn, attempts, parked, reason FROM ers_retry") < 0 ||
            load(c, &p->audit, "SELECT ubrn, seq, event_type, detail, documents FROM ers_audit") < 0)
                return -1;
        return 0;
}

static struct row *find_row(struct table *t, const char *ubrn)
{
        for (size_t i = 0; i < t->n; i++)
                if (t->rows[i].v[0] && strcmp(t->rows[i].v[0], ubrn) == 0)
                        return &t->rows[i];
        return NULL;
}

/* ---- saying what differs ------------------------------------------------------------------ */

void wcheck_say(struct wcheck *c, const char *fmt, ...)
{
        char line[512];
        va_list ap;

        c->mismatches++;
        if (c->said++ >= WCHECK_SAY_MAX)
                return;
        va_start(ap, fmt);
        vsnprintf(line, sizeof line, fmt, ap);
        va_end(ap);
        if (c->sink)
                c->sink(c->userdata, line);
        else
                fprintf(stderr, "world: MISMATCH %s\n", line);
}

const char *wcheck_gist(const char *s, char *buf, size_t n)
{
        size_t o = 0;

        for (; s && *s && *s != '\n' && o + 1 < n && o < 200; s++) {
                unsigned char c = (unsigned char)*s;
                if (c >= '0' && c <= '9') { /* a run of ten digits or more could read as an NHS number */
                        size_t run = strspn(s, "0123456789");
                        for (size_t k = 0; k < run && o + 1 < n; k++)
                                buf[o++] = run >= 10 ? '#' : s[k];
                        s += run - 1;
                        continue;
                }
                buf[o++] = (char)((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || strchr(" :;,.()=-_/'+#", c) ? c
                                                                                                                  : '?');
        }
        buf[o] = '\0';
        return buf;
}

const char *wcheck_describe(const char *v, size_t len, bool sensitive, char *buf, size_t n)
{
        char hex[65];
        size_t digits = 0, most = 0;
        bool plain = !sensitive && len <= 48;

        if (!v) {
                snprintf(buf, n, "NULL");
                return buf;
        }
        for (size_t i = 0; plain && i < len; i++) {
                unsigned char ch = (unsigned char)v[i];
                digits = ch >= '0' && ch <= '9' ? digits + 1 : 0;
                most = digits > most ? digits : most;
                plain = ch >= 0x20 && ch < 0x7f && ch != '"' && ch != '\\';
        }
        if (plain && most < 10) { /* never a run of ten digits: it could read as an NHS number */
                snprintf(buf, n, "\"%.*s\"", (int)len, v);
                return buf;
        }
        sha256_hex(v, len, hex);
        snprintf(buf, n, "<%zu bytes, sha256 %.12s>", len, hex);
        return buf;
}

static bool same(const char *a, size_t alen, const char *b, size_t blen)
{
        return (!a && !b) || (a && b && alen == blen && memcmp(a, b, alen) == 0);
}

/* Compares one column; counts and (when say) tells a difference. */
static unsigned differ(struct wcheck *c, bool say, const char *who, const char *column, bool sensitive,
                       const char *want, size_t want_len, const char *got, size_t got_len)
{
        char a[96], b[96];

        if (same(want, want_len, got, got_len))
                return 0;
        if (say)
                wcheck_say(c, "%s: %s: expected %s, got %s", who, column,
                           wcheck_describe(want, want_len, sensitive, a, sizeof a),
                           wcheck_describe(got, got_len, sensitive, b, sizeof b));
        return 1;
}

/* ---- what the PAS must hold of a referral ----------------------------------------------------- */

static char *first_code(const struct wt *a, const struct wt *b, size_t *ret_len)
{
        if (wt_readable(a))
                return wt_code(a, ret_len);
        return b ? wt_code(b, ret_len) : (*ret_len = 0, NULL);
}

static char *dup_len(const char *s, size_t *ret_len)
{
        *ret_len = s ? strlen(s) : 0;
        return s ? strdup(s) : NULL;
}

static bool nhs_valid(const char *s)
{
        unsigned sum = 0, check;

        if (!s || strlen(s) != 10 || strspn(s, "0123456789") != 10)
                return false;
        for (unsigned i = 0; i < 9; i++)
                sum += (unsigned)(s[i] - '0') * (10 - i);
        check = 11 - sum % 11;
        check = check == 11 ? 0 : check;
        return check != 10 && check == (unsigned)(s[9] - '0');
}

/* The row of ers_referral for referral s (a worklist's referral when it is not related only). */
static void expect_referral(const struct wref *s, char *v[R_COLS], size_t len[R_COLS])
{
        bool main = !s->related_only;
        char buf[32];

        v[R_UBRN] = dup_len(s->ubrn, &len[R_UBRN]);
        snprintf(buf, sizeof buf, "%" PRId64, s->version);
        v[R_VERSION] = dup_len(buf, &len[R_VERSION]);
        v[R_NHS] = first_code(&s->nhs, main ? &s->e_nhs : NULL, &len[R_NHS]);
        v[R_NHS_VALID] = dup_len(nhs_valid(v[R_NHS]) ? "1" : "0", &len[R_NHS_VALID]);
        v[R_PRIORITY] = first_code(&s->priority, main ? &s->e_priority : NULL, &len[R_PRIORITY]);
        v[R_STATE] = wt_code(&s->state, &len[R_STATE]);
        v[R_REASON] = wt_code(&s->reason, &len[R_REASON]);
        v[R_COMMENT] = wt_text(&s->comment, &len[R_COMMENT]);
        v[R_SPECIALTY] = first_code(&s->specialty, main ? &s->e_specialty : NULL, &len[R_SPECIALTY]);
        /* the display goes with a specialty coding: none without a code */
        v[R_SPECIALTY_DISPLAY] = s->specialty.kind != WT_ABSENT ? wt_text(&s->specialty_display, &len[R_SPECIALTY_DISPLAY])
                                                                : NULL;
        /* The service: the booked one; else, for a referral reached only as a related one,
         * the one its shortlist names (issue 13, finding 19); else the worklist entry's. */
        if (s->booked && wt_readable(&s->appt_service_id)) {
                v[R_SERVICE_ID] = wt_code(&s->appt_service_id, &len[R_SERVICE_ID]);
                v[R_SERVICE_NAME] = wt_text(&s->appt_service_name, &len[R_SERVICE_NAME]);
        } else if (!main && s->shortlist && wt_readable(&s->sl_id)) {
                v[R_SERVICE_ID] = wt_code(&s->sl_id, &len[R_SERVICE_ID]);
                v[R_SERVICE_NAME] = wt_text(&s->sl_name, &len[R_SERVICE_NAME]);
        } else if (main) {
                v[R_SERVICE_ID] = wt_code(&s->e_service_id, &len[R_SERVICE_ID]);
                v[R_SERVICE_NAME] = wt_text(&s->e_service_name, &len[R_SERVICE_NAME]);
        } else {
                v[R_SERVICE_ID] = v[R_SERVICE_NAME] = NULL;
                len[R_SERVICE_ID] = len[R_SERVICE_NAME] = 0;
        }
        /* an APPOINTMENT_SLOT_ISSUES entry carries no referral type */
        v[R_REFERRAL_TYPE] = main && s->home != 1 ? wt_code(&s->e_referral_type, &len[R_REFERRAL_TYPE]) : NULL;
        v[R_PATHWAY_START] = wt_code(&s->pathway_start, &len[R_PATHWAY_START]);
        v[R_CIFS] = wt_code(&s->cifs, &len[R_CIFS]);
        v[R_APPT_START] = s->booked ? wt_code(&s->appt_start, &len[R_APPT_START]) : NULL;
        v[R_APPT_END] = s->booked ? wt_code(&s->appt_end, &len[R_APPT_END]) : NULL;
        v[R_COMMISSIONING_ORG] = wt_code(&s->commissioning_org, &len[R_COMMISSIONING_ORG]);
        v[R_REQUEST_ID] = wt_code(&s->request_id, &len[R_REQUEST_ID]);
        v[R_STATUS] = wt_code(&s->status, &len[R_STATUS]);
        v[R_INTENT] = wt_code(&s->intent, &len[R_INTENT]);
        v[R_WORKLIST] = main ? dup_len(WORLD_WORKLIST[s->home].name, &len[R_WORKLIST]) : NULL;
        for (int i = 0; i < R_COLS; i++)
                if (!v[i])
                        len[i] = 0;
}

/* The fields A005 and the worklist entry both give: with A005 silent, the
 * entry's is expected; but a read without a worklist call (a recheck, a
 * retry) keeps the value stored, and which of the two gave it is not stored
 * (docs/schema.md, "Fields a worklist entry also gives"): a value A005 gave
 * at an earlier version of the history may stand too.  Never NULL once the
 * PAS held a value (issue 13's test, beyond its findings: lost on a re-read);
 * NULL before, for the NHS number and the specialty, which ers_retry does not
 * keep: a referral first written from its ers_retry row, its worklist not
 * read that round, has not had them (the known limit of docs/schema.md). */
static const struct {
        int col;
        size_t field;  /* offsetof(struct wref, …): A005's */
        unsigned seen; /* its bit in struct wcheck_seen; 0: kept by ers_retry */
} ENTRY_FIELDS[] = {
        { R_NHS, offsetof(struct wref, nhs), 1 },
        { R_PRIORITY, offsetof(struct wref, priority), 0 },
        { R_SPECIALTY, offsetof(struct wref, specialty), 2 },
};

void wcheck_seen_free(struct wcheck_seen *s)
{
        free(s->rows);
        memset(s, 0, sizeof *s);
}

static struct wcheck_seen_row *seen_row(struct wcheck_seen *s, const char *ubrn, bool add)
{
        for (size_t i = 0; s && i < s->n; i++)
                if (strcmp(s->rows[i].ubrn, ubrn) == 0)
                        return &s->rows[i];
        if (!s || !add)
                return NULL;
        if (s->n == s->cap) {
                s->cap = s->cap ? 2 * s->cap : 64;
                s->rows = realloc(s->rows, s->cap * sizeof *s->rows);
                if (!s->rows)
                        abort();
        }
        struct wcheck_seen_row *r = &s->rows[s->n++];
        snprintf(r->ubrn, sizeof r->ubrn, "%s", ubrn);
        r->cols = 0;
        return r;
}

/* After a check: what the PAS holds now was held before the next one. */
static void remember_seen(struct wcheck *c, const struct table *referrals)
{
        for (size_t i = 0; c->seen && i < referrals->n; i++) {
                const struct row *r = &referrals->rows[i];
                unsigned cols = 0;
                for (size_t k = 0; k < sizeof ENTRY_FIELDS / sizeof ENTRY_FIELDS[0]; k++)
                        if (ENTRY_FIELDS[k].seen && r->v[ENTRY_FIELDS[k].col])
                                cols |= ENTRY_FIELDS[k].seen;
                if (cols && r->v[R_UBRN])
                        seen_row(c->seen, r->v[R_UBRN], true)->cols |= cols;
        }
}

static bool given_earlier(const struct wcheck *c, const struct wref *s, size_t field, const char *got, size_t got_len)
{
        for (size_t h = 0; got && h < c->n_history; h++) {
                const struct wref *r = world_find(c->history[h], s->ubrn);
                if (!r || r->version >= s->version)
                        continue;
                const struct wt *v = (const struct wt *)((const char *)r + field);
                size_t len;
                char *was = wt_readable(v) ? wt_code(v, &len) : NULL;
                bool same_value = was && same(was, len, got, got_len);
                free(was);
                if (same_value)
                        return true;
        }
        return false;
}

static unsigned compare_referral(struct wcheck *c, bool say, const char *who, const struct wref *s, const struct row *got)
{
        char *want[R_COLS];
        size_t wlen[R_COLS];
        unsigned n = 0;

        expect_referral(s, want, wlen);
        for (size_t k = 0; !s->related_only && k < sizeof ENTRY_FIELDS / sizeof ENTRY_FIELDS[0]; k++) {
                int i = ENTRY_FIELDS[k].col;
                const struct wcheck_seen_row *seen = seen_row(c->seen, s->ubrn, false);
                bool never_held = ENTRY_FIELDS[k].seen && !got->v[i] && !(seen && (seen->cols & ENTRY_FIELDS[k].seen));
                if (wt_readable((const struct wt *)((const char *)s + ENTRY_FIELDS[k].field)) ||
                    !(never_held || given_earlier(c, s, ENTRY_FIELDS[k].field, got->v[i], got->len[i])))
                        continue;
                free(want[i]);
                want[i] = dup_len(got->v[i], &wlen[i]);
                if (i == R_NHS) {
                        free(want[R_NHS_VALID]);
                        want[R_NHS_VALID] = dup_len(nhs_valid(want[R_NHS]) ? "1" : "0", &wlen[R_NHS_VALID]);
                }
        }
        for (int i = 1; i < R_COLS; i++)
                n += differ(c, say, who, R_NAMES[i], R_SENSITIVE[i], want[i], wlen[i], got->v[i], got->len[i]);
        for (int i = 0; i < R_COLS; i++)
                free(want[i]);
        return n;
}

/* ---- what the PAS must hold of a referral's documents ------------------------------------------ */

/* One document e-RS lists with a referral: an attachment (d) or a letter (d NULL). */
struct want_doc {
        const struct wref *src;
        const struct wdoc *d;
        unsigned occurrence;  /* among the source's attachments with the same id, in order */
        char letter_id[32];   /* CRI-v<version> */
        bool matched;
        bool delisted;        /* a related referral's attachment its version in the PAS no longer lists */
};

/* The referral's sources: itself, then its related referrals (sorted, once each). */
static size_t sources(const struct world *w, const struct wref *m, const struct wref *out[1 + WORLD_RELATED_MAX])
{
        size_t n = 0;

        out[n++] = m;
        for (size_t i = 0; i < m->n_related; i++) {
                const struct wref *r = world_find(w, m->related[i]);
                bool dup = false;
                for (size_t k = 1; k < n; k++)
                        dup |= out[k] == r;
                if (r && r != m && !dup)
                        out[n++] = r;
        }
        for (size_t i = 2; i < n; i++) /* sorted by UBRN, as ersd reads them */
                for (size_t k = i; k > 1 && strcmp(out[k - 1]->ubrn, out[k]->ubrn) > 0; k--) {
                        const struct wref *t = out[k];
                        out[k] = out[k - 1];
                        out[k - 1] = t;
                }
        return n;
}

static size_t want_docs(const struct world *w, const struct wref *m, struct want_doc *out)
{
        const struct wref *src[1 + WORLD_RELATED_MAX];
        size_t n_src = sources(w, m, src), n = 0;

        for (size_t s = 0; s < n_src; s++) {
                for (size_t k = 0; k < src[s]->n_docs; k++) {
                        const struct wdoc *d = &src[s]->docs[k];
                        unsigned occ = 0;
                        for (size_t j = 0; j < k; j++)
                                occ += src[s]->docs[j].id.n == d->id.n && memcmp(src[s]->docs[j].id.p, d->id.p, d->id.n) == 0;
                        out[n++] = (struct want_doc){ .src = src[s], .d = d, .occurrence = occ };
                }
                out[n] = (struct want_doc){ .src = src[s] };
                snprintf(out[n].letter_id, sizeof out[n].letter_id, "CRI-v%" PRId64, src[s]->version);
                n++;
        }
        return n;
}

static size_t count_want_docs(const struct world *w, const struct wref *m)
{
        const struct wref *src[1 + WORLD_RELATED_MAX];
        size_t n_src = sources(w, m, src), n = 0;

        for (size_t s = 0; s < n_src; s++)
                n += src[s]->n_docs + 1;
        return n;
}

/* The range of ers.max_attachment_mib a write may have had (bytes). */
struct limits {
        uint64_t lo, hi;
};

/* Whether ersd must have stored the document's content: NO, YES, or EITHER (the
 * limit in force at the write is not known). */
enum fetch_want { FETCH_NO, FETCH_YES, FETCH_EITHER };

static enum fetch_want fetch_wanted(const struct want_doc *w, struct limits lim)
{
        if (!w->d)
                return w->src->letter_bytes <= lim.lo ? FETCH_YES : w->src->letter_bytes > lim.hi ? FETCH_NO
                                                                                                    : FETCH_EITHER;
        if (!wdoc_available(w->d) || w->d->bytes > lim.hi)
                return FETCH_NO;
        /* The declared size is not trusted: a document that fits is stored, whatever
         * e-RS declares (issue 13's test, beyond its findings). */
        return w->d->bytes <= lim.lo ? FETCH_YES : FETCH_EITHER;
}

/* A document ersd still owes: e-RS may release it (PENDING, unknown, none), or it is
 * over the maximum (issue 13, finding 4), whatever size e-RS declares. */
static bool owed(const struct want_doc *w, struct limits lim)
{
        if (!w->d)
                return false;
        return (!wdoc_available(w->d) && !wdoc_never(w->d)) || (wdoc_available(w->d) && w->d->bytes > lim.lo);
}

static const char *doc_who(const struct want_doc *w, char *buf, size_t n)
{
        char id[96];

        if (!w->d)
                snprintf(buf, n, "letter %s of %s", w->letter_id, w->src->ubrn);
        else
                snprintf(buf, n, "attachment %s (occurrence %u) of %s",
                         wcheck_describe(w->d->id.p, w->d->id.n, false, id, sizeof id), w->occurrence, w->src->ubrn);
        return buf;
}

/* The latest revision of a document against what e-RS lists. */
static const char *whose_bytes(struct wcheck *c, const struct world *w, const struct wref *m, const struct want_doc *own,
                               const char *sha, char *buf, size_t n);

static unsigned compare_doc(struct wcheck *c, bool say, bool deep, const struct world *world, const struct wref *m,
                            const struct want_doc *w, struct limits lim, const struct row *r)
{
        const char *ubrn = m->ubrn;
        char who[256], what[200], reason[96], buf[64], sha[65];
        unsigned n = 0;
        size_t l;
        char *v;

        snprintf(who, sizeof who, "UBRN %s: %s", ubrn, doc_who(w, what, sizeof what));
        enum fetch_want fw = fetch_wanted(w, lim);
        bool fetched = r->v[D_STATUS] && strcmp(r->v[D_STATUS], "FETCHED") == 0;
        if ((fw == FETCH_YES && !fetched) || (fw == FETCH_NO && fetched)) {
                if (say)
                        wcheck_say(c, "%s: fetch_status: expected %s, got %s%s%s%s", who,
                                   fw == FETCH_YES ? "FETCHED" : "NOT_FETCHED",
                                   r->v[D_STATUS] ? r->v[D_STATUS] : "NULL", fetched ? "" : " (reason ",
                                   fetched ? "" : wcheck_describe(r->v[D_REASON], r->len[D_REASON], true, reason,
                                                                  sizeof reason),
                                   fetched ? "" : ")");
                n++;
        }
        if (fetched) {
                uint64_t bytes = w->d ? w->d->bytes : w->src->letter_bytes;
                uint64_t seed = w->d ? w->d->seed : world_letter_seed(w->src->ubrn, w->src->version);
                world_content_sha256(c->g, seed, bytes, sha);
                snprintf(buf, sizeof buf, "%" PRIu64, bytes);
                if (r->v[D_SHA] && strcmp(r->v[D_SHA], sha) != 0) {
                        char whose[200];
                        if (say)
                                wcheck_say(c, "%s: holds %s (size %s, e-RS serves %s bytes)", who,
                                           whose_bytes(c, world, m, w, r->v[D_SHA], whose, sizeof whose),
                                           r->v[D_SIZE] ? r->v[D_SIZE] : "NULL", buf);
                        n++;
                } else
                        n += differ(c, say, who, "size_bytes", false, buf, strlen(buf), r->v[D_SIZE], r->len[D_SIZE]);
                char hex[65];
                int64_t size = -1;
                if (deep && (db_document_sha256(c->d, r->v[D_DOCUMENT_ID], hex, &size) < 0 || !r->v[D_SHA] ||
                             strcmp(hex, r->v[D_SHA]) != 0 || !r->v[D_SIZE] ||
                             size != strtoll(r->v[D_SIZE], NULL, 10))) {
                        if (say)
                                wcheck_say(c, "%s: its parts do not reassemble to its size_bytes and sha256", who);
                        n++;
                }
        } else {
                if (!r->v[D_REASON] || !r->len[D_REASON]) {
                        if (say)
                                wcheck_say(c, "%s: not fetched without a reason", who);
                        n++;
                } else if (w->d && wdoc_never(w->d) && wt_readable(&w->d->by_org)) {
                        /* staff are told whom to ask: the attaching organisation (a reason cut at
                         * its 255 bytes may have lost it) */
                        size_t ol;
                        char *org = wt_code(&w->d->by_org, &ol);
                        if (org && r->len[D_REASON] < 250 && !memmem(r->v[D_REASON], r->len[D_REASON], org, ol)) {
                                if (say)
                                        wcheck_say(c, "%s: never to be released, its reason does not name the "
                                                      "attaching organisation", who);
                                n++;
                        }
                        free(org);
                }
                snprintf(buf, sizeof buf, "%" PRId64, w->src->version);
                n += differ(c, say, who, "source_version (not fetched: the version last read)", false, buf,
                            strlen(buf), r->v[D_SOURCE_VERSION], r->len[D_SOURCE_VERSION]);
        }
        if (!r->v[D_REMOVED] != !w->delisted) {
                if (say)
                        wcheck_say(c, w->delisted ? "%s: its related referral, at the version the PAS holds of it, "
                                                    "no longer lists it; not marked removed"
                                                  : "%s: marked removed while e-RS lists it",
                                   who);
                n++;
        }
        if (!w->d)
                return n;
        v = wt_text(&w->d->title, &l);
        n += differ(c, say, who, "title", true, v, l, r->v[D_TITLE], r->len[D_TITLE]);
        free(v);
        const struct {
                const char *column;
                int col;
                const struct wt *value;
        } codes[] = {
                { "content_type", D_CONTENT_TYPE, &w->d->content_type },
                { "availability", D_AVAILABILITY, &w->d->availability },
                { "attached_by_user", D_BY_USER, &w->d->by_user },
                { "attached_by_org", D_BY_ORG, &w->d->by_org },
                { "created", D_CREATED, &w->d->creation },
        };
        for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++) {
                v = wt_code(codes[i].value, &l);
                n += differ(c, say, who, codes[i].column, false, v, l, r->v[codes[i].col], r->len[codes[i].col]);
                free(v);
        }
        v = NULL;
        if (w->d->size.kind == WT_NUM && w->d->size.num >= 0) {
                snprintf(buf, sizeof buf, "%" PRId64, w->d->size.num);
                v = buf;
        }
        n += differ(c, say, who, "declared_size", false, v, v ? strlen(v) : 0, r->v[D_DECLARED], r->len[D_DECLARED]);
        return n;
}

/* Whose bytes a document holds when they are not its own: "the bytes of an earlier
 * revision of it", "the bytes of attachment X of U" (another document of the same
 * referral), or "bytes e-RS never served with this referral".  Into buf. */
static const char *whose_bytes(struct wcheck *c, const struct world *w, const struct wref *m, const struct want_doc *own,
                               const char *sha, char *buf, size_t n)
{
        const struct wref *src[1 + WORLD_RELATED_MAX];
        size_t n_src = sources(w, m, src);
        char hex[65], id[96];

        for (size_t h = 0; own->d && h < c->n_history; h++) {
                const struct wref *s = world_find(c->history[h], own->src->ubrn);
                for (size_t k = 0; s && k < s->n_docs; k++)
                        if (s->docs[k].id.n == own->d->id.n && memcmp(s->docs[k].id.p, own->d->id.p, own->d->id.n) == 0) {
                                world_content_sha256(c->g, s->docs[k].seed, s->docs[k].bytes, hex);
                                if (strcmp(hex, sha) == 0) {
                                        snprintf(buf, n, "the bytes of an earlier revision of it");
                                        return buf;
                                }
                        }
        }
        for (size_t i = 0; i < n_src; i++)
                for (size_t k = 0; k < src[i]->n_docs; k++) {
                        const struct wdoc *d = &src[i]->docs[k];
                        world_content_sha256(c->g, d->seed, d->bytes, hex);
                        if (d != own->d && strcmp(hex, sha) == 0) {
                                snprintf(buf, n, "the bytes of attachment %s of %s",
                                         wcheck_describe(d->id.p, d->id.n, false, id, sizeof id), src[i]->ubrn);
                                return buf;
                        }
                }
        snprintf(buf, n, "bytes e-RS never served with this referral");
        return buf;
}

/* Whether e-RS ever served these bytes under this source, kind and id (older revisions). */
static bool ever_served(struct wcheck *c, const char *src, bool letter, const char *id, size_t id_len, const char *sha)
{
        char hex[65];

        for (size_t h = 0; h < c->n_history; h++) {
                const struct wref *s = world_find(c->history[h], src);
                if (!s)
                        continue;
                if (letter) {
                        char lid[32];
                        snprintf(lid, sizeof lid, "CRI-v%" PRId64, s->version);
                        if (strlen(lid) != id_len || memcmp(lid, id, id_len) != 0)
                                continue;
                        world_content_sha256(c->g, world_letter_seed(s->ubrn, s->version), s->letter_bytes, hex);
                        if (strcmp(hex, sha) == 0)
                                return true;
                        continue;
                }
                for (size_t k = 0; k < s->n_docs; k++) {
                        const struct wdoc *d = &s->docs[k];
                        if (d->id.kind != WT_STR || d->id.n != id_len || memcmp(d->id.p, id, id_len) != 0)
                                continue;
                        world_content_sha256(c->g, d->seed, d->bytes, hex);
                        if (strcmp(hex, sha) == 0)
                                return true;
                }
        }
        return false;
}

/* The revisions of one document in the PAS: rows with the same source, kind, id and key. */
struct group {
        struct row **revs; /* by revision */
        size_t n;
        bool matched;
};

static bool same_doc(const struct row *a, const struct row *b)
{
        for (int col = D_SOURCE; col <= D_ID; col++)
                if (!same(a->v[col], a->len[col], b->v[col], b->len[col]))
                        return false;
        return same(a->v[D_KEY], a->len[D_KEY], b->v[D_KEY], b->len[D_KEY]);
}

static size_t group_docs(struct pas *p, const char *ubrn, struct group **ret)
{
        struct group *g = NULL;
        size_t n = 0;

        for (size_t i = 0; i < p->documents.n; i++) {
                struct row *r = &p->documents.rows[i];
                if (!r->v[D_UBRN] || strcmp(r->v[D_UBRN], ubrn) != 0)
                        continue;
                size_t k = 0;
                while (k < n && !same_doc(g[k].revs[0], r))
                        k++;
                if (k == n) {
                        struct group *ng = realloc(g, (n + 1) * sizeof *ng);
                        if (!ng)
                                abort();
                        g = ng;
                        g[n++] = (struct group){ .revs = NULL };
                }
                struct row **nr = realloc(g[k].revs, (g[k].n + 1) * sizeof *nr);
                if (!nr)
                        abort();
                g[k].revs = nr;
                g[k].revs[g[k].n++] = r; /* the query orders by revision */
        }
        *ret = g;
        return n;
}

static void groups_free(struct group *g, size_t n)
{
        for (size_t i = 0; i < n; i++)
                free(g[i].revs);
        free(g);
}

static bool group_is(const struct group *g, const struct want_doc *w)
{
        const struct row *r = g->revs[0];
        const char *id = w->d ? w->d->id.p : w->letter_id;
        size_t id_len = w->d ? w->d->id.n : strlen(w->letter_id);

        return r->v[D_SOURCE] && strcmp(r->v[D_SOURCE], w->src->ubrn) == 0 && r->v[D_KIND] &&
               strcmp(r->v[D_KIND], w->d ? "ATTACHMENT" : "CRI") == 0 && same(r->v[D_ID], r->len[D_ID], id, id_len);
}

/* Two texts as ersd compares an attachment's creation time: absent equal to empty. */
static bool same_or_empty(const char *a, size_t alen, const char *b, size_t blen)
{
        return same(a ? a : "", a ? alen : 0, b ? b : "", b ? blen : 0);
}

/*
 * The rule of document identity (docs/schema.md, "Document identity";
 * daemon/occurrence.h), stated here again from the documentation: which of
 * the documents of one attachment id stored with a referral (its groups, as
 * their latest revisions describe them) the attachments of that id a source
 * lists (s) are.  In order, each listed attachment to the lowest occurrence
 * not yet taken that e-RS described the same (declared size, creation time;
 * among those, one fetched when the attachment is AVAILABLE, one not fetched
 * when it is not, first); then each one left to the lowest occurrence not yet
 * taken.  Whether `g` is taken: a document s still lists.
 */
static bool listed_by_rule(const struct wref *s, const struct wdoc *d, struct group *groups, size_t n_groups,
                           const struct group *g)
{
        size_t n_st = 0, n_l = 0;
        size_t *st = calloc(n_groups + 1, sizeof *st); /* indexes of the groups of d's id from s */
        const struct wdoc **l = calloc(s->n_docs + 1, sizeof *l);
        bool *used = calloc(n_groups + 1, sizeof *used), *paired = calloc(s->n_docs + 1, sizeof *paired), found = false;

        if (!st || !l || !used || !paired)
                abort();
        for (size_t k = 0; k < n_groups; k++) {
                const struct row *r = groups[k].revs[0];
                if (r->v[D_SOURCE] && strcmp(r->v[D_SOURCE], s->ubrn) == 0 && r->v[D_KIND] &&
                    strcmp(r->v[D_KIND], "ATTACHMENT") == 0 && same(r->v[D_ID], r->len[D_ID], d->id.p, d->id.n))
                        st[n_st++] = k;
        }
        for (size_t i = 0; i < s->n_docs; i++)
                if (s->docs[i].id.kind == WT_STR && same(s->docs[i].id.p, s->docs[i].id.n, d->id.p, d->id.n))
                        l[n_l++] = &s->docs[i];
        for (int pass = 0; pass < 2; pass++)
                for (size_t i = 0; i < n_l; i++) {
                        char size[32] = "";
                        size_t cl = 0;
                        char *created = wt_code(&l[i]->creation, &cl);
                        bool available = wdoc_available(l[i]);
                        size_t best = SIZE_MAX;
                        if (l[i]->size.kind == WT_NUM && l[i]->size.num >= 0)
                                snprintf(size, sizeof size, "%" PRId64, l[i]->size.num);
                        for (size_t k = 0; !paired[i] && k < n_st; k++) {
                                const struct group *gk = &groups[st[k]];
                                const struct row *last = gk->revs[gk->n - 1];
                                bool fetched = last->v[D_STATUS] && strcmp(last->v[D_STATUS], "FETCHED") == 0;
                                if (used[k])
                                        continue;
                                if (pass == 0 && (!same(size[0] ? size : NULL, strlen(size), last->v[D_DECLARED],
                                                        last->len[D_DECLARED]) ||
                                                  !same_or_empty(created, cl, last->v[D_CREATED], last->len[D_CREATED])))
                                        continue;
                                long occ = strtol(gk->revs[0]->v[D_OCCURRENCE] ? gk->revs[0]->v[D_OCCURRENCE] : "0",
                                                  NULL, 10);
                                if (best == SIZE_MAX) {
                                        best = k;
                                        continue;
                                }
                                const struct group *gb = &groups[st[best]];
                                const struct row *lb = gb->revs[gb->n - 1];
                                bool fits = pass == 1 || fetched == available;
                                bool best_fits = pass == 1 || (lb->v[D_STATUS] && strcmp(lb->v[D_STATUS], "FETCHED") == 0) ==
                                                                      available;
                                long best_occ = strtol(gb->revs[0]->v[D_OCCURRENCE] ? gb->revs[0]->v[D_OCCURRENCE] : "0",
                                                       NULL, 10);
                                if ((fits && !best_fits) || (fits == best_fits && occ < best_occ))
                                        best = k;
                        }
                        free(created);
                        if (best == SIZE_MAX)
                                continue;
                        used[best] = paired[i] = true;
                        found |= &groups[st[best]] == g;
                }
        free(st);
        free(l);
        free(used);
        free(paired);
        return found;
}

/*
 * Whether w, an attachment of a related referral of m as e-RS served it at m's
 * read and held by group g, is one ersd has since seen that related referral
 * stop listing: the version of it the PAS holds (read with whichever referral
 * read it last) does not list it, by the rule of document identity.  Its
 * removed mark then reaches every referral showing the related referral's
 * documents, read again or not: the PAS never shows as current an attachment
 * ersd knows e-RS no longer lists (C-10.6).
 */
static bool delisted_since(struct wcheck *c, struct pas *p, const struct wref *m, const struct want_doc *w,
                           struct group *groups, size_t n_groups, const struct group *g)
{
        struct row *got;
        int64_t version;

        if (!w->d || w->src == m || !(got = find_row(&p->referrals, w->src->ubrn)) || !got->v[R_VERSION])
                return false;
        version = strtoll(got->v[R_VERSION], NULL, 10);
        if (version == w->src->version)
                return false;
        for (size_t h = c->n_history; h-- > 0;) {
                const struct wref *s = world_find(c->history[h], w->src->ubrn);
                if (s && s->version == version)
                        return !listed_by_rule(s, w->d, groups, n_groups, g);
        }
        return false;
}

/* Older revisions: fetched, bytes e-RS served under that id, each unlike the one before. */
static unsigned compare_history(struct wcheck *c, bool say, const char *ubrn, const struct group *g, size_t upto)
{
        char id[96];
        unsigned n = 0;

        if (g->n >= 2 && g->revs[g->n - 1]->v[D_SHA] &&
            same(g->revs[g->n - 2]->v[D_SHA], g->revs[g->n - 2]->len[D_SHA], g->revs[g->n - 1]->v[D_SHA],
                 g->revs[g->n - 1]->len[D_SHA])) {
                if (say)
                        wcheck_say(c, "UBRN %s: %s %s of %s: its latest revision repeats the bytes of the one before "
                                      "(stored twice)", ubrn, g->revs[0]->v[D_KIND] ? g->revs[0]->v[D_KIND] : "NULL",
                                   wcheck_describe(g->revs[0]->v[D_ID], g->revs[0]->len[D_ID], false, id, sizeof id),
                                   g->revs[0]->v[D_SOURCE]);
                n++;
        }
        for (size_t i = 0; i < upto; i++) {
                const struct row *r = g->revs[i];
                bool fetched = r->v[D_STATUS] && strcmp(r->v[D_STATUS], "FETCHED") == 0;
                bool letter = r->v[D_KIND] && strcmp(r->v[D_KIND], "CRI") == 0;
                if (!fetched || !r->v[D_SHA] ||
                    !ever_served(c, r->v[D_SOURCE], letter, r->v[D_ID], r->len[D_ID], r->v[D_SHA]) ||
                    (i > 0 && same(g->revs[i - 1]->v[D_SHA], g->revs[i - 1]->len[D_SHA], r->v[D_SHA], r->len[D_SHA]))) {
                        if (say)
                                wcheck_say(c, "UBRN %s: %s %s of %s: revision %s holds bytes e-RS never served under "
                                              "that id (or is not fetched, or repeats the one before)",
                                           ubrn, letter ? "letter" : "attachment",
                                           wcheck_describe(r->v[D_ID], r->len[D_ID], false, id, sizeof id),
                                           r->v[D_SOURCE], r->v[D_REVISION] ? r->v[D_REVISION] : "?");
                        n++;
                }
        }
        return n;
}

/* Whether a document no longer listed was ever listed with this referral. */
static bool ever_listed(struct wcheck *c, const char *ubrn, const struct row *r)
{
        bool letter = r->v[D_KIND] && strcmp(r->v[D_KIND], "CRI") == 0;

        for (size_t h = 0; h < c->n_history; h++) {
                const struct wref *m = world_find(c->history[h], ubrn);
                const struct wref *src[1 + WORLD_RELATED_MAX];
                if (!m)
                        continue;
                size_t n_src = sources(c->history[h], m, src);
                for (size_t s = 0; s < n_src; s++) {
                        if (!r->v[D_SOURCE] || strcmp(src[s]->ubrn, r->v[D_SOURCE]) != 0)
                                continue;
                        if (letter) {
                                char lid[32];
                                snprintf(lid, sizeof lid, "CRI-v%" PRId64, src[s]->version);
                                if (same(lid, strlen(lid), r->v[D_ID], r->len[D_ID]))
                                        return true;
                                continue;
                        }
                        for (size_t k = 0; k < src[s]->n_docs; k++)
                                if (src[s]->docs[k].id.kind == WT_STR &&
                                    same(src[s]->docs[k].id.p, src[s]->docs[k].id.n, r->v[D_ID], r->len[D_ID]))
                                        return true;
                }
        }
        return false;
}

/*
 * Every document shown with referral m as of world w: each listed one at its
 * latest revision, older revisions, documents no longer listed, nothing
 * more.  Returns the differences (told when say).  *ret_owed: whether a
 * document is still owed.
 */
static unsigned compare_documents(struct wcheck *c, bool say, struct pas *p, const struct world *w,
                                  const struct wref *m, struct limits lim, bool *ret_owed)
{
        size_t n_want = count_want_docs(w, m), n_groups;
        struct want_doc *want = calloc(n_want + 1, sizeof *want);
        struct group *groups;
        char who[256], id[96];
        unsigned n = 0;

        if (!want)
                abort();
        want_docs(w, m, want);
        n_groups = group_docs(p, m->ubrn, &groups);
        *ret_owed = false;
        for (size_t i = 0; i < n_want; i++)
                *ret_owed |= owed(&want[i], lim);

        /* Each listed document to the revisions that hold it: when an id is there more than
         * once, each occurrence to the group that matches it best. */
        for (size_t i = 0; i < n_want; i++) {
                size_t best = SIZE_MAX;
                unsigned best_diff = ~0u;
                for (size_t k = 0; k < n_groups; k++) {
                        if (groups[k].matched || !group_is(&groups[k], &want[i]))
                                continue;
                        want[i].delisted = delisted_since(c, p, m, &want[i], groups, n_groups, &groups[k]);
                        unsigned d = compare_doc(c, false, false, w, m, &want[i], lim, groups[k].revs[groups[k].n - 1]);
                        if (d < best_diff) {
                                best_diff = d;
                                best = k;
                        }
                }
                if (best == SIZE_MAX) {
                        if (say)
                                wcheck_say(c, "UBRN %s: %s: missing", m->ubrn, doc_who(&want[i], who, sizeof who));
                        n++;
                        continue;
                }
                struct group *g = &groups[best];
                g->matched = want[i].matched = true;
                want[i].delisted = delisted_since(c, p, m, &want[i], groups, n_groups, g);
                n += compare_doc(c, say, true, w, m, &want[i], lim, g->revs[g->n - 1]);
                n += compare_history(c, say, m->ubrn, g, g->n - 1);
        }
        /* What is left: documents e-RS no longer lists, kept and marked; nothing else. */
        for (size_t k = 0; k < n_groups; k++) {
                struct group *g = &groups[k];
                const struct row *last = g->revs[g->n - 1];
                bool letter = last->v[D_KIND] && strcmp(last->v[D_KIND], "CRI") == 0;
                if (g->matched)
                        continue;
                wcheck_describe(last->v[D_ID], last->len[D_ID], false, id, sizeof id);
                if (!ever_listed(c, m->ubrn, last)) {
                        if (say)
                                wcheck_say(c, "UBRN %s: a document e-RS never listed with it: %s %s of %s",
                                           m->ubrn, last->v[D_KIND] ? last->v[D_KIND] : "NULL", id,
                                           last->v[D_SOURCE] ? last->v[D_SOURCE] : "NULL");
                        n++;
                        continue;
                }
                if (!letter && !last->v[D_REMOVED]) {
                        if (say)
                                wcheck_say(c, "UBRN %s: attachment %s of %s: no longer listed by e-RS, not marked removed",
                                           m->ubrn, id, last->v[D_SOURCE]);
                        n++;
                }
                bool fetched = last->v[D_STATUS] && strcmp(last->v[D_STATUS], "FETCHED") == 0;
                n += compare_history(c, say, m->ubrn, g, fetched ? g->n : g->n - 1);
        }
        groups_free(groups, n_groups);
        free(want);
        return n;
}

/* ers_referral_related of m: its related referrals, as of w. */
static unsigned compare_related(struct wcheck *c, bool say, struct pas *p, const struct world *w, const struct wref *m)
{
        const struct wref *src[1 + WORLD_RELATED_MAX];
        size_t n_src = sources(w, m, src), found = 0;
        unsigned n = 0;

        for (size_t i = 0; i < p->related.n; i++) {
                const struct row *r = &p->related.rows[i];
                if (!r->v[0] || strcmp(r->v[0], m->ubrn) != 0)
                        continue;
                bool listed = false;
                for (size_t s = 1; s < n_src; s++)
                        listed |= r->v[1] && strcmp(r->v[1], src[s]->ubrn) == 0;
                if (listed)
                        found++;
                else {
                        if (say)
                                wcheck_say(c, "UBRN %s: related referral %s in the PAS, not in A005", m->ubrn,
                                           r->v[1] ? r->v[1] : "NULL");
                        n++;
                }
        }
        if (found != n_src - 1) {
                if (say)
                        wcheck_say(c, "UBRN %s: %zu related referral(s) in the PAS, A005 names %zu", m->ubrn, found,
                                   n_src - 1);
                n++;
        }
        return n;
}

/* ---- one referral ------------------------------------------------------------------------- */

static struct limits limits_now(const struct world *w)
{
        return (struct limits){ (uint64_t)w->max_mib * MIB, (uint64_t)w->max_mib * MIB };
}

static struct limits limits_ever(struct wcheck *c)
{
        struct limits l = { UINT64_MAX, 0 };

        for (size_t h = 0; h < c->n_history; h++) {
                uint64_t b = (uint64_t)c->history[h]->max_mib * MIB;
                l.lo = b < l.lo ? b : l.lo;
                l.hi = b > l.hi ? b : l.hi;
        }
        return l;
}

/* Everything of referral m (as of world w) against the PAS; a referral of a
 * worklist also its ledger row.  Returns the differences (told when say). */
static unsigned compare_all(struct wcheck *c, bool say, struct pas *p, const struct world *w, const struct wref *m,
                            struct limits lim, bool strict_ledger)
{
        struct row *got = find_row(&p->referrals, m->ubrn);
        char who[64];
        unsigned n = 0;
        bool owed_now = false;

        snprintf(who, sizeof who, "UBRN %s", m->ubrn);
        if (!got) {
                if (say)
                        wcheck_say(c, "%s: not in ers_referral (e-RS serves version %" PRId64 ")", who, m->version);
                return 1;
        }
        n += compare_referral(c, say, who, m, got);
        n += wcheck_compare_requirements(c, say, who, m);
        if (m->related_only)
                return n; /* its documents are shown with the referrals pointing at it */
        n += compare_related(c, say, p, w, m);
        n += compare_documents(c, say, p, w, m, lim, &owed_now);
        struct row *l = find_row(&p->ledger, m->ubrn);
        if (!l) {
                if (say)
                        wcheck_say(c, "%s: no ledger row", who);
                return n + 1;
        }
        if (strict_ledger && l->v[2] && (strcmp(l->v[2], "0") == 0) != owed_now) {
                if (say)
                        wcheck_say(c, "%s: ledger complete = %s, expected %s (documents %s)", who, l->v[2],
                                   owed_now ? "0" : "1", owed_now ? "still owed" : "all stored or never to be");
                n++;
        }
        return n;
}

/* A referral the PAS holds at a version e-RS served at some time, not now
 * (left the worklists, gone, refused now, related only): the PAS must equal
 * one of the worlds that served that version. */
static void check_at_its_version(struct wcheck *c, struct pas *p, const char *ubrn)
{
        struct row *got = find_row(&p->referrals, ubrn);
        const struct world *best = NULL;
        unsigned best_diff = ~0u;
        struct limits lim = limits_ever(c);

        if (!got || !got->v[R_VERSION])
                return;
        int64_t version = strtoll(got->v[R_VERSION], NULL, 10);
        for (size_t h = c->n_history; h-- > 0;) {
                const struct wref *s = world_find(c->history[h], ubrn);
                if (!s || s->gone || s->version != version || wref_refused(s))
                        continue;
                unsigned d = compare_all(c, false, p, c->history[h], s, lim, false);
                if (d < best_diff) {
                        best_diff = d;
                        best = c->history[h];
                }
                if (d == 0)
                        break;
        }
        c->referrals++;
        if (!best) {
                wcheck_say(c, "UBRN %s: the PAS holds version %" PRId64 ", which e-RS never served as a referral "
                              "ersd may take", ubrn, version);
                return;
        }
        if (best_diff > 0)
                compare_all(c, true, p, best, world_find(best, ubrn), lim, false);
}

static void check_retry(struct wcheck *c, struct pas *p, const struct wref *m, bool refused)
{
        struct row *r = find_row(&p->retry, m->ubrn);

        if (!refused) {
                char why[200];
                if (r)
                        wcheck_say(c, "UBRN %s: in the PAS at e-RS's version, yet still failing (ers_retry attempts %s): %s",
                                   m->ubrn, r->v[1] ? r->v[1] : "NULL", wcheck_gist(r->v[3], why, sizeof why));
                return;
        }
        if (!r) {
                wcheck_say(c, "UBRN %s: an attachment without an id must keep it waiting in ers_retry; no row",
                           m->ubrn);
                return;
        }
        long attempts = r->v[1] ? strtol(r->v[1], NULL, 10) : 0;
        bool parked = r->v[2] && strcmp(r->v[2], "1") == 0;
        if (attempts < 1 || parked != (attempts >= (long)c->park_after))
                wcheck_say(c, "UBRN %s: ers_retry attempts %ld, parked %d: expected parked from %u attempts on",
                           m->ubrn, attempts, parked, c->park_after);
}

/* ---- the audit trail ------------------------------------------------------------------------ */

static bool is_uuid(const char *s)
{
        for (int i = 0; i < 36; i++) {
                bool dash = i == 8 || i == 13 || i == 18 || i == 23;
                if (dash ? s[i] != '-' : !strchr("0123456789abcdef", s[i]) || !s[i])
                        return false;
        }
        return true;
}

static bool document_of(struct pas *p, const char *ubrn, const char *id, size_t n)
{
        for (size_t i = 0; i < p->documents.n; i++) {
                const struct row *r = &p->documents.rows[i];
                if (r->v[D_DOCUMENT_ID] && strlen(r->v[D_DOCUMENT_ID]) == n && memcmp(r->v[D_DOCUMENT_ID], id, n) == 0)
                        return r->v[D_UBRN] && strcmp(r->v[D_UBRN], ubrn) == 0;
        }
        return false;
}

/* Whether one line of an audit row's document list names a document of the referral:
 * a JSON object {"document_id":…, …} (schema version 4), or, as written before,
 * "<document_id> <sha256|NOT_FETCHED> <attachment id> r<revision>[ of <UBRN>]". */
static bool audit_line_names_document(struct pas *p, const char *ubrn, const char *line, size_t len)
{
        if (len > 0 && line[0] == '{') {
                struct json_tokener *tok = json_tokener_new();
                json_object *o = tok ? json_tokener_parse_ex(tok, line, (int)len) : NULL;
                json_object *id = NULL;
                bool named = tok && json_tokener_get_error(tok) == json_tokener_success &&
                             (size_t)json_tokener_get_parse_end(tok) == len &&
                             json_object_object_get_ex(o, "document_id", &id) &&
                             json_object_is_type(id, json_type_string) && json_object_get_string_len(id) == 36 &&
                             document_of(p, ubrn, json_object_get_string(id), 36);
                json_object_put(o);
                if (tok)
                        json_tokener_free(tok);
                return named;
        }
        return len >= 37 && is_uuid(line) && line[36] == ' ' && document_of(p, ubrn, line, 36);
}

static void check_audit(struct wcheck *c, struct pas *p)
{
        for (size_t i = 0; i < p->audit.n; i++) {
                const struct row *a = &p->audit.rows[i];
                const char *ubrn = a->v[0] ? a->v[0] : "NULL", *docs = a->v[4];
                if (a->v[2] && (strcmp(a->v[2], "UPDATED") == 0 || strcmp(a->v[2], "DOCUMENTS") == 0) &&
                    (!docs || !*docs) && a->v[3] && strcmp(a->v[3], "documents written") == 0)
                        wcheck_say(c, "UBRN %s: audit row %s records a write that changed nothing", ubrn,
                                   a->v[1] ? a->v[1] : "?");
                for (const char *line = docs; line && *line;) {
                        const char *end = strchr(line, '\n');
                        size_t len = end ? (size_t)(end - line) : strlen(line);
                        if (!audit_line_names_document(p, ubrn, line, len)) {
                                wcheck_say(c, "UBRN %s: audit row %s: a line of its document list names no document "
                                              "of the referral (a field split the record?)",
                                           ubrn, a->v[1] ? a->v[1] : "?");
                                break;
                        }
                        line = end ? end + 1 : line + len;
                }
        }
        /* Every document row is named by an audit row of its referral. */
        for (size_t i = 0; i < p->documents.n; i++) {
                const struct row *r = &p->documents.rows[i];
                bool named = false;
                for (size_t k = 0; k < p->audit.n && !named; k++) {
                        const struct row *a = &p->audit.rows[k];
                        named = a->v[0] && r->v[D_UBRN] && strcmp(a->v[0], r->v[D_UBRN]) == 0 && a->v[4] &&
                                r->v[D_DOCUMENT_ID] && strstr(a->v[4], r->v[D_DOCUMENT_ID]);
                }
                if (!named)
                        wcheck_say(c, "UBRN %s: document row %s is named by no audit row", r->v[D_UBRN],
                                   r->v[D_DOCUMENT_ID] ? r->v[D_DOCUMENT_ID] : "NULL");
        }
}

/* ---- the whole PAS ---------------------------------------------------------------------------- */

static bool ever_known(struct wcheck *c, const char *ubrn, bool *ret_main)
{
        for (size_t h = 0; h < c->n_history; h++) {
                const struct wref *r = world_find(c->history[h], ubrn);
                if (r) {
                        *ret_main = !r->related_only;
                        return true;
                }
        }
        return false;
}

unsigned world_check(struct wcheck *c)
{
        const struct world *now = c->history[c->n_history - 1];
        struct pas p = { .keyed = false };

        c->referrals = c->documents = c->mismatches = c->said = 0;
        if (pas_load(c, &p) < 0) {
                pas_free(&p);
                return c->mismatches;
        }
        for (size_t i = 0; i < now->n_refs; i++) {
                const struct wref *m = &now->refs[i];
                bool refused = !m->related_only && wref_refused(m);
                if (!m->related_only && m->worklist >= 0 && !m->gone && !refused) {
                        /* on a worklist now: in the PAS exactly as e-RS serves it now */
                        struct row *got = find_row(&p.referrals, m->ubrn), *retry = find_row(&p.retry, m->ubrn);
                        struct row *l = find_row(&p.ledger, m->ubrn);
                        char v[32], why[200];
                        c->referrals++;
                        snprintf(v, sizeof v, "%" PRId64, m->version);
                        if (!got || !got->v[R_VERSION] || strcmp(got->v[R_VERSION], v) != 0 || !l || !l->v[1] ||
                            strcmp(l->v[1], v) != 0) {
                                /* not written at e-RS's version: one line, with ersd's own reason */
                                bool junk = false;
                                for (size_t k = 0; k < now->n_junk; k++)
                                        junk |= now->junk_on[k] == m->worklist;
                                wcheck_say(c, "UBRN %s: e-RS serves version %s, the PAS holds %s (ledger %s); ersd: %s%s",
                                           m->ubrn, v, got && got->v[R_VERSION] ? got->v[R_VERSION] : "none",
                                           l && l->v[1] ? l->v[1] : "none",
                                           retry && retry->v[3] ? wcheck_gist(retry->v[3], why, sizeof why)
                                                                : "(no ers_retry row)",
                                           junk ? " (its worklist lists a malformed entry too)" : "");
                                continue;
                        }
                        if (compare_all(c, false, &p, now, m, limits_now(now), true) > 0)
                                compare_all(c, true, &p, now, m, limits_now(now), true);
                        check_retry(c, &p, m, false);
                        continue;
                }
                if (refused && m->worklist >= 0 && !m->gone)
                        check_retry(c, &p, m, true);
                check_at_its_version(c, &p, m->ubrn);
        }
        /* Nothing in the PAS that e-RS never presented; no documents shown with a related referral. */
        for (size_t i = 0; i < p.referrals.n; i++) {
                const char *ubrn = p.referrals.rows[i].v[R_UBRN];
                bool main = false;
                if (!ubrn || !ever_known(c, ubrn, &main))
                        wcheck_say(c, "a referral e-RS never presented is in the PAS (%s)", ubrn ? "UBRN set" : "no UBRN");
        }
        for (size_t i = 0; i < p.documents.n; i++) {
                const char *ubrn = p.documents.rows[i].v[D_UBRN];
                bool main = false;
                if (!ubrn || !ever_known(c, ubrn, &main) || !main) {
                        wcheck_say(c, "UBRN %s: a document shown with a referral no worklist listed",
                                   ubrn ? ubrn : "NULL");
                        break;
                }
        }
        for (size_t i = 0; i < p.ledger.n; i++) {
                const char *ubrn = p.ledger.rows[i].v[0];
                bool main = false;
                if (!ubrn || !ever_known(c, ubrn, &main) || !main)
                        wcheck_say(c, "UBRN %s: a ledger row for a referral no worklist listed", ubrn ? ubrn : "NULL");
        }
        check_audit(c, &p);
        c->answers = 0;
        wcheck_answers(c);
        wcheck_worklist_entries(c);
        c->documents = (unsigned)p.documents.n;
        remember_seen(c, &p.referrals);
        pas_free(&p);
        if (c->said > WCHECK_SAY_MAX)
                fprintf(stderr, "world: … and %u more mismatch line(s) not shown\n", c->said - WCHECK_SAY_MAX);
        return c->mismatches;
}
