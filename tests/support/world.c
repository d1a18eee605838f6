/* SPDX-License-Identifier: MIT */
/*
 * The world generator of the generative whole-system test: see world.h.
 * Every choice comes from one splitmix64 stream seeded by the test's seed.
 */
#include "world.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tests/mock-ers/stream.h"

#define MIB (1024 * 1024)
#define SHA_CACHE 4096

const struct world_worklist WORLD_WORKLIST[WORLD_WORKLISTS] = {
        { "cardiology", "REFERRALS_FOR_REVIEW", "31001" },
        { "slots", "APPOINTMENT_SLOT_ISSUES", "31001" },
        { "renal", "REFERRALS_FOR_REVIEW", "31002" },
};

struct sha_entry {
        uint64_t seed, bytes;
        bool used;
        char hex[65];
};

struct wgen {
        uint64_t rng;
        uint64_t state_rng;     /* the working state's stream (entry_state()) */
        struct wgen_plan plan;
        char **pool;            /* owned strings the worlds point into */
        size_t n_pool, cap_pool;
        uint64_t ubrn_base;     /* this seed's UBRNs: 3 followed by 11 digits from here */
        unsigned next_ubrn, next_binary, next_id;
        struct sha_entry sha[SHA_CACHE];
};

/* ---- randomness and the pool ------------------------------------------------------ */

uint64_t wgen_rand(struct wgen *g)
{
        return stream_mix64(g->rng += 0x9e3779b97f4a7c15ULL);
}

static unsigned below(struct wgen *g, unsigned n)
{
        return n ? (unsigned)(wgen_rand(g) % n) : 0;
}

/* True with probability permille / 1000. */
static bool chance(struct wgen *g, unsigned permille)
{
        return below(g, 1000) < permille;
}

static struct wt absent(void)
{
        return (struct wt){ .kind = WT_ABSENT };
}

static struct wt num(int64_t v)
{
        return (struct wt){ .kind = WT_NUM, .num = v };
}

/* n bytes of p, kept in the pool. */
static struct wt bytes_(struct wgen *g, const char *p, size_t n)
{
        char *copy = malloc(n + 1);

        if (!copy)
                abort(); /* a test: out of memory ends it */
        if (g->n_pool == g->cap_pool) {
                size_t cap = g->cap_pool ? 2 * g->cap_pool : 1024;
                char **np = realloc(g->pool, cap * sizeof *np);
                if (!np)
                        abort();
                g->pool = np;
                g->cap_pool = cap;
        }
        if (n > 0)
                memcpy(copy, p, n);
        copy[n] = '\0';
        g->pool[g->n_pool++] = copy;
        return (struct wt){ .kind = WT_STR, .p = copy, .n = n };
}

static struct wt str(struct wgen *g, const char *s)
{
        return bytes_(g, s, strlen(s));
}

static const char *pick(struct wgen *g, const char *const *list, size_t n)
{
        return list[below(g, (unsigned)n)];
}
#define PICK(g, list) pick(g, list, sizeof list / sizeof list[0])

/* ---- texts of every shape ------------------------------------------------------------ */

/* A growable text being made. */
struct tb {
        char *p;
        size_t n, cap;
};

static void tb_add(struct tb *t, const char *s, size_t n)
{
        if (t->n + n + 1 > t->cap) {
                size_t cap = (t->n + n + 1) * 2;
                char *np = realloc(t->p, cap);
                if (!np)
                        abort();
                t->p = np;
                t->cap = cap;
        }
        if (n > 0)
                memcpy(t->p + t->n, s, n);
        t->n += n;
        t->p[t->n] = '\0';
}

static void tb_str(struct tb *t, const char *s)
{
        tb_add(t, s, strlen(s));
}

static struct wt tb_take(struct wgen *g, struct tb *t)
{
        struct wt v = bytes_(g, t->p ? t->p : "", t->n);
        free(t->p);
        *t = (struct tb){ 0 };
        return v;
}

/* Multi-byte characters of each length, and the characters terminals and
 * audit records must not take raw. */
static const char *const MULTI[] = { "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xe6\xb7\xbb" };
static const char *const HOSTILE[] = {
        "\x1b[31m", "\r\n", "\t", "\x7f", "\x01", "\n",        /* C0, DEL */
        "\xc2\x9b", "\xc2\x85", "\xc2\x80",                    /* C1: CSI, NEL, PAD */
        "\xe2\x80\xae", "\xe2\x80\xaa", "\xe2\x81\xa6", "\xe2\x81\xa9", /* bidi overrides and isolates */
        "\xe2\x80\x8b", "\xcc\x81",                            /* zero width space, a combining accent */
};

/* Appends ASCII letters (never digits: a run of ten could read as an NHS number). */
static void tb_letters(struct tb *t, struct wgen *g, size_t n)
{
        static const char letters[] = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ.-_";
        char chunk[256];

        while (n) {
                size_t k = n < sizeof chunk ? n : sizeof chunk;
                uint64_t x = wgen_rand(g);
                for (size_t i = 0; i < k; i++, x = x >> 6 | x << 58)
                        chunk[i] = letters[(x & 63) % (sizeof letters - 1)];
                tb_add(t, chunk, k);
                n -= k;
        }
}

/*
 * A value around a column width: under, at and over it in characters, with a
 * multi-byte character at the boundary, or `width` bytes that are fewer
 * characters.  `width` 0 means TEXT: lengths of 64 KiB either side.
 */
static void tb_at_width(struct tb *t, struct wgen *g, unsigned width)
{
        const char *mb = PICK(g, MULTI);
        size_t mbl = strlen(mb);

        if (width == 0) {
                static const unsigned long texts[] = { 255, 256, 4000, 65535, 65536, 70000 };
                unsigned long n = texts[below(g, sizeof texts / sizeof texts[0])];
                tb_letters(t, g, n - mbl);
                tb_add(t, mb, mbl);
                return;
        }
        switch (below(g, 5)) {
        case 0: /* width characters, the last multi-byte */
                tb_letters(t, g, width - 1);
                tb_add(t, mb, mbl);
                break;
        case 1: /* width + 1 characters, the last multi-byte */
                tb_letters(t, g, width);
                tb_add(t, mb, mbl);
                break;
        case 2: /* width bytes exactly, a multi-byte character ending on the boundary */
                tb_letters(t, g, width > mbl ? width - mbl : 0);
                tb_add(t, mb, mbl);
                break;
        case 3: /* width - 1 characters */
                tb_letters(t, g, width - 1);
                break;
        default: /* far over */
                tb_letters(t, g, (size_t)width * (2 + below(g, 3)));
                tb_add(t, mb, mbl);
                break;
        }
}

enum { TEXT_FREE = 1, TEXT_NO_NUL = 2 };

/*
 * `base`, or one of its unusual shapes (permille: how often): around `width`,
 * with hostile characters, with a NUL (free text: stored as U+FFFD; a code:
 * unreadable, stored NULL), or a number where a string belongs.
 */
static struct wt shaped(struct wgen *g, const char *base, unsigned width, unsigned permille, unsigned flags)
{
        struct tb t = { 0 };

        if (g->plan.tame || !chance(g, permille))
                return str(g, base);
        unsigned shape = below(g, 10);
        if (shape == 7 && (flags & TEXT_NO_NUL))
                shape = 8;
        if (shape == 8 && (flags & TEXT_FREE))
                shape = 9;
        switch (shape) {
        case 0:
        case 1:
        case 2:
                tb_at_width(&t, g, width);
                break;
        case 3:
        case 4:
                tb_str(&t, base);
                tb_str(&t, PICK(g, HOSTILE));
                tb_letters(&t, g, 1 + below(g, 4));
                break;
        case 5:
                tb_str(&t, PICK(g, HOSTILE));
                tb_str(&t, base);
                tb_str(&t, PICK(g, HOSTILE));
                break;
        case 6:
                tb_str(&t, base);
                tb_str(&t, PICK(g, MULTI));
                tb_str(&t, PICK(g, MULTI));
                break;
        case 7:
                tb_str(&t, base);
                tb_add(&t, "\0", 1);
                tb_letters(&t, g, 1 + below(g, 3));
                break;
        case 8:
                free(t.p);
                return num(7 + below(g, 90));
        default:
                tb_str(&t, base);
                tb_str(&t, " ");
                tb_str(&t, PICK(g, MULTI));
                break;
        }
        return tb_take(g, &t);
}

/* An optional code: absent sometimes, else shaped. */
static struct wt code(struct wgen *g, const char *const *list, size_t n, unsigned width, unsigned absent_permille)
{
        static const char *const unknown[] = { "FUTURE_CODE", "NOT_YET_DEFINED", "X" };

        if (chance(g, absent_permille))
                return absent();
        if (!g->plan.tame && chance(g, 40))
                return str(g, PICK(g, unknown));
        return shaped(g, pick(g, list, n), width, 60, 0);
}
#define CODE(g, list, width, absent_permille) code(g, list, sizeof list / sizeof list[0], width, absent_permille)

static struct wt free_text(struct wgen *g, const char *base, unsigned width, unsigned absent_permille, unsigned flags)
{
        if (chance(g, absent_permille))
                return absent();
        return shaped(g, base, width, 150, TEXT_FREE | flags);
}

static struct wt when(struct wgen *g, bool date_only)
{
        char buf[64];
        unsigned mo = 1 + below(g, 12), d = 1 + below(g, 28), h = below(g, 24), mi = below(g, 60);

        if (date_only)
                snprintf(buf, sizeof buf, "2026-%02u-%02u", mo, d);
        else if (chance(g, 300))
                snprintf(buf, sizeof buf, "2026-%02u-%02uT%02u:%02u:%02u.%06u+01:00", mo, d, h, mi, below(g, 60),
                         below(g, 1000000));
        else
                snprintf(buf, sizeof buf, "2026-%02u-%02uT%02u:%02u:00Z", mo, d, h, mi);
        return shaped(g, buf, 40, 40, 0);
}

static struct wt nhs_number(struct wgen *g)
{
        for (;;) {
                char d[11];
                unsigned sum = 0;
                snprintf(d, sizeof d, "999%06u", below(g, 1000000));
                for (unsigned i = 0; i < 9; i++)
                        sum += (unsigned)(d[i] - '0') * (10 - i);
                unsigned check = 11 - sum % 11;
                if (check == 11)
                        check = 0;
                if (check == 10)
                        continue;
                d[9] = (char)('0' + (chance(g, 60) ? (check + 1) % 10 : check)); /* a few fail the check */
                d[10] = '\0';
                return str(g, d);
        }
}

static struct wt uuidish(struct wgen *g)
{
        char buf[40];
        uint64_t a = wgen_rand(g), b = wgen_rand(g);

        snprintf(buf, sizeof buf, "%08" PRIx64 "-%04" PRIx64 "-4%03" PRIx64 "-a%03" PRIx64 "-%012" PRIx64,
                 a >> 32, (a >> 16) & 0xffff, a & 0xfff, b >> 52, b & UINT64_C(0xffffffffffff));
        return str(g, buf);
}

/* ---- documents ------------------------------------------------------------------------------ */

/* An attachment id of one of the shapes e-RS may send. */
static struct wt doc_id(struct wgen *g, const struct wref *r)
{
        struct tb t = { 0 };
        char buf[64];

        switch (g->plan.tame ? 7 + below(g, 3) % 2 : below(g, 20)) {
        case 0:
        case 1:
                return uuidish(g);
        case 2: /* the id of a letter */
                snprintf(buf, sizeof buf, "CRI-v%" PRId64, r->version);
                return str(g, buf);
        case 3: /* longer than any column, and than a spool name */
                tb_at_width(&t, g, chance(g, 500) ? 64 : 128);
                if (chance(g, 300))
                        tb_letters(&t, g, 300);
                return tb_take(g, &t);
        case 4: {
                static const char *const mb[] = { "pi\303\250ce-jointe", "\xe6\xb7\xbb\xe4\xbb\x98",
                                                  "scan-\xf0\x9f\x98\x80", "r\xc3\xa9sum\xc3\xa9" };
                snprintf(buf, sizeof buf, "%s-%u", PICK(g, mb), g->next_id++ % 1000);
                return str(g, buf);
        }
        case 5: {
                static const char *const hostile[] = { "a\x1b[31mb", "tab\tid", "nl\nid",
                                                       "id\n00000000-0000-4000-8000-000000000000 forged r1",
                                                       "\342\200\256fdp.exe", "id\302\2332J", "cr\rid" };
                return str(g, PICK(g, hostile));
        }
        case 6: {
                static const char *const paths[] = { "..", ".", "../../etc/passwd", "a/b", "/", "id with spaces" };
                return str(g, PICK(g, paths));
        }
        default:
                snprintf(buf, sizeof buf, "%u", 80000 + g->next_id++);
                return str(g, buf);
        }
}

static void new_binary(struct wgen *g, struct wdoc *d)
{
        snprintf(d->binary, sizeof d->binary, "b%08x-%06x", (unsigned)(g->ubrn_base & 0xffffffff), g->next_binary++);
}

/* New content for d: its bytes, seed, declared size. */
static void doc_content(struct wgen *g, struct wdoc *d, bool allow_big)
{
        static const uint64_t edges[] = { MIB - 1, MIB, MIB + 1 };
        unsigned x = below(g, 1000);

        d->seed = wgen_rand(g);
        if (x < 30)
                d->bytes = 0;
        else if (allow_big && g->plan.big_every && below(g, g->plan.big_every) == 0)
                d->bytes = MIB + 1 + below(g, 2 * MIB);
        else if (allow_big && x < 45)
                d->bytes = edges[below(g, 3)];
        else
                d->bytes = 1 + below(g, 48 * 1024);
        x = below(g, 100);
        d->size = x < 75 ? num((int64_t)d->bytes) : x < 85 ? num((int64_t)d->bytes + 3 - (int64_t)below(g, 5))
                : x < 93 ? absent() : x < 97 ? num(-1) : str(g, "1024");
        new_binary(g, d);
}

static struct wt availability(struct wgen *g)
{
        static const char *const never[] = { "THREATS_FOUND", "THREATS FOUND", "VALIDATION_FAILED" };
        static const char *const unknown[] = { "QUARANTINED", "SCAN_QUEUED" };
        unsigned x = below(g, 100);

        if (x < 72)
                return str(g, "AVAILABLE");
        if (x < 82)
                return str(g, "PENDING");
        if (x < 90)
                return str(g, PICK(g, never));
        if (x < 94)
                return str(g, PICK(g, unknown));
        if (x < 97)
                return absent();
        return shaped(g, "PENDING", 32, 1000, 0);
}

static void make_doc(struct wgen *g, const struct wref *r, struct wdoc *d)
{
        static const char *const titles[] = { "Referral letter.pdf", "ECG trace.png", "Bloods 03/2025.pdf",
                                              "\303\211chographie \342\200\223 compte rendu.pdf", "Scan.tif",
                                              "Discharge summary.rtf", "photo.jpg" };
        static const char *const types[] = { "application/pdf", "image/png", "image/jpeg", "image/tiff",
                                             "application/rtf", "text/plain",
                                             "application/vnd.openxmlformats-officedocument.wordprocessingml.document" };
        static const char *const doc_types[] = { "REFERRER", "PROVIDER" };
        static const char *const users[] = { "012345678901", "SDS123", "U1" };
        static const char *const orgs[] = { "A81001", "R69", "RX1", "00L" };

        memset(d, 0, sizeof *d);
        d->id = doc_id(g, r);
        d->title = free_text(g, PICK(g, titles), 255, 30, 0);
        d->content_type = CODE(g, types, 128, 30);
        d->creation = when(g, chance(g, 300));
        d->by_user = CODE(g, users, 32, 80);
        d->by_org = CODE(g, orgs, 16, 80);
        d->doc_type = CODE(g, doc_types, 64, 50);
        d->description = free_text(g, "attachment", 255, 500, 0);
        doc_content(g, d, true);
        /* A document over the first maximum (1 MiB) is AVAILABLE from the start:
         * its availability never changes but by revision (world.h). */
        d->availability = d->bytes > MIB ? str(g, "AVAILABLE") : availability(g);
}

/* ---- referrals ------------------------------------------------------------------------------- */

static void new_ubrn(struct wgen *g, char ubrn[13])
{
        snprintf(ubrn, 13, "%012" PRIu64, UINT64_C(300000000000) + g->ubrn_base * 1000 + g->next_ubrn++);
}

static void service_pair(struct wgen *g, const char *service, struct wt *id, struct wt *name)
{
        static const char *const names[] = { "Cardiology Outpatients", "Renal \xe2\x80\x93 General",
                                             "Rapid Access Chest Pain" };
        *id = shaped(g, service, 16, 50, TEXT_FREE | TEXT_NO_NUL); /* never a number: a referral has a service */
        *name = free_text(g, PICK(g, names), 255, 30, TEXT_NO_NUL);
}

/* Fields that a new version may change. */
/* A referral's additional requirements, now and then (issue 15): one to four, a code e-RS knows or not,
 * a display, the referrer's words about it; unusual shapes as every value has them. */
static void requirements(struct wgen *g, struct wref *r)
{
        static const char *const codes[] = { "INTERPRETER", "ADVOCACY", "TRANSPORT" };
        static const char *const displays[] = { "Interpreter", "Advocacy", "Transport" };
        static const char *const words[] = { "Needs a Polish interpreter", "Wheelchair transport \xe2\x80\x94 both ways",
                                             "Advocate to attend \"all\" visits" };

        r->n_reqs = chance(g, 300) ? 1 + below(g, WORLD_REQUIREMENTS_MAX) : 0;
        for (size_t i = 0; i < r->n_reqs; i++) {
                r->reqs[i].code = CODE(g, codes, 32, 30);
                r->reqs[i].display = free_text(g, PICK(g, displays), 64, 100, 0);
                r->reqs[i].comments = free_text(g, PICK(g, words), 255, 500, 0);
        }
}

static void vary(struct wgen *g, struct wref *r)
{
        static const char *const states[] = { "APPT_CANCELLED_BY_PATIENT", "APPT_CANCELLED_BY_PROVIDER",
                                              "ASSESSMENT_RESULT", "AWAITING_TRIAGE", "BOOKED", "CANCELLED_REFERRAL",
                                              "DEFERRED_TO_PROVIDER", "DID_NOT_ATTEND", "NOT_BOOKED", "REJECTED",
                                              "TRIAGE_RESPONSE", "TRIAGED_PROVIDER_TO_ACTION" };
        static const char *const reasons[] = { "NO_SLOTS_AT_SERVICE", "INSUFFICIENT_INFORMATION", "PATIENT_UNAVAILABLE" };
        static const char *const priorities[] = { "ROUTINE", "URGENT", "TWO_WEEK_WAIT" };
        static const char *const statuses[] = { "active", "cancelled", "completed" };
        static const char *const comments[] = { "Please see attached letter.", "Patient prefers mornings \xe2\x80\x94 \"asap\"",
                                                "Seen in clinic; re-referred \xf0\x9f\x98\x80" };

        r->priority = CODE(g, priorities, 32, 20);
        if (!r->related_only && g->plan.tame && !wt_readable(&r->priority))
                r->priority = str(g, PICK(g, priorities)); /* else the entry's, kept on a re-read */
        r->state = CODE(g, states, 64, 20);
        r->reason = chance(g, 300) ? CODE(g, reasons, 64, 0) : absent();
        r->comment = chance(g, 500) ? free_text(g, PICK(g, comments), 0, 0, 0) : absent();
        r->status = CODE(g, statuses, 32, 30);
        requirements(g, r);
        if (r->booked) {
                r->appt_start = when(g, false);
                r->appt_end = when(g, false);
        }
}

static struct wref *add_ref(struct world *w)
{
        struct wref *nr = realloc(w->refs, (w->n_refs + 1) * sizeof *nr);
        if (!nr)
                abort();
        w->refs = nr;
        memset(&nr[w->n_refs], 0, sizeof *nr);
        return &nr[w->n_refs++];
}

static size_t total_docs(const struct world *w, const struct wref *r)
{
        size_t n = r->n_docs;

        for (size_t i = 0; i < r->n_related; i++) {
                const struct wref *rel = world_find(w, r->related[i]);
                n += rel ? rel->n_docs : 0;
        }
        return n;
}

static void add_docs(struct wgen *g, struct wref *r, size_t n)
{
        struct wdoc *nd = realloc(r->docs, (r->n_docs + n + 1) * sizeof *nd);

        if (!nd)
                abort();
        r->docs = nd;
        for (size_t k = 0; k < n; k++) {
                struct wdoc *d = &r->docs[r->n_docs];
                make_doc(g, r, d);
                if (r->n_docs > 0 && !g->plan.tame && chance(g, 60)) { /* an id twice on one referral */
                        d->id = r->docs[below(g, (unsigned)r->n_docs)].id;
                        while (d->bytes == 0) /* two documents, never the same bytes (an empty one twice) */
                                doc_content(g, d, d->bytes > MIB);
                }
                r->n_docs++;
        }
        /* ids that differ but collide once sanitised, on one referral */
        if (n >= 3 && !g->plan.tame && chance(g, 250)) {
                static const char *const seps[] = { "-", "_", "/", ".", " ", ":" };
                char buf[32];
                unsigned stem = below(g, 26);
                for (size_t k = 0; k < 3; k++) {
                        snprintf(buf, sizeof buf, "%c%s1", 'A' + stem, seps[(k * 2 + below(g, 2)) % 6]);
                        r->docs[r->n_docs - 1 - k].id = str(g, buf);
                }
        }
}

/* How many documents a new referral has with its related ones. */
static size_t docs_wanted(struct wgen *g, const struct world *w)
{
        unsigned x = below(g, 100), most = g->plan.max_docs;

        if (w->n_refs == 0)
                return most; /* the first referral of a seed has them all (findings 1 and 15) */
        if (x < 60)
                return below(g, 5);
        if (x < 85)
                return 5 + below(g, 8);
        return most > 13 ? 13 + below(g, most - 12) : most;
}

static void make_related(struct wgen *g, struct wref *r)
{
        static const char *const names[] = { "Onward Cardiology Clinic", "Community Renal" };

        new_ubrn(g, r->ubrn);
        r->related_only = true;
        r->version = 1 + below(g, 3);
        r->worklist = r->home = -1;
        r->nhs = chance(g, 900) ? nhs_number(g) : absent();
        r->specialty = str(g, "CARDIOLOGY");
        r->specialty_display = free_text(g, "Cardiology", 255, 100, 0);
        r->intent = str(g, "plan");
        r->request_id = uuidish(g);
        r->booked = chance(g, 300);
        vary(g, r);
        if (r->booked) {
                r->appt_service_id = str(g, "31077");
                r->appt_service_name = str(g, PICK(g, names));
        } else if (chance(g, 700)) {
                r->shortlist = true;
                r->sl_id = shaped(g, "31088", 16, 100, TEXT_NO_NUL);
                r->sl_name = free_text(g, PICK(g, names), 255, 0, TEXT_NO_NUL);
        }
        r->letter_bytes = 300 + below(g, 20000);
}

/* Zero, one or (now and then, never in a tame world) two occurrences of an
 * element: `permille` how often it is there. */
static void state_values(struct wgen *g, struct wstate *s, unsigned permille, struct wt (*value)(struct wgen *g))
{
        s->n = 0;
        if (!chance(g, permille))
                return;
        s->v[s->n++] = value(g);
        if (!g->plan.tame && chance(g, 40))
                s->v[s->n++] = value(g);
}

static struct wt a_date_time(struct wgen *g)
{
        return when(g, false);
}

static struct wt a_date(struct wgen *g)
{
        return when(g, chance(g, 900));
}

static struct wt an_information_status(struct wgen *g)
{
        static const char *const statuses[] = { "PRESENT", "NOT_APPLICABLE", "NOT_DUE", "OVERDUE" };
        return CODE(g, statuses, 32, 0);
}

static struct wt a_context_status(struct wgen *g)
{
        static const char *const statuses[] = { "LETTER_CHANGED", "PRIORITY_CHANGED", "PRIORITY_AND_LETTER_CHANGED",
                                                "NEVER_REVIEWED" };
        return CODE(g, statuses, 32, 0);
}

/*
 * A worklist entry's working state, as the specification gives it to the
 * entry's worklist (world.h), drawn from the working state's own stream: the
 * main stream, and so every other value of the seed's worlds, is left as it
 * was.
 */
static void entry_state(struct wgen *g, struct wref *r)
{
        uint64_t main_rng = g->rng;
        bool slots = r->home == 1;

        g->rng = g->state_rng;
        state_values(g, &r->e_received, slots ? 850 : 0, a_date_time);
        state_values(g, &r->e_contact, slots ? 800 : 0, a_date);
        state_values(g, &r->e_last, slots ? 600 : 0, a_date_time);
        state_values(g, &r->e_information, slots ? 850 : 0, an_information_status);
        state_values(g, &r->e_context, slots ? 0 : 950, a_context_status);
        r->n_printed = 0;
        if (g->plan.tame || chance(g, 980)) {
                r->e_printed[r->n_printed++] = !g->plan.tame && chance(g, 20) ? WP_STRING
                                               : chance(g, 300)               ? WP_TRUE
                                                                              : WP_FALSE;
                if (!g->plan.tame && chance(g, 40))
                        r->e_printed[r->n_printed++] = chance(g, 500) ? WP_TRUE : WP_FALSE;
        }
        g->state_rng = g->rng;
        g->rng = main_rng;
}

static void make_main(struct wgen *g, struct world *w)
{
        static const char *const specialties[] = { "CARDIOLOGY", "RENAL_MEDICINE", "DERMATOLOGY" };
        static const char *const displays[] = { "Cardiology", "Renal medicine", "Ear, Nose & Throat" };
        static const char *const orgs[] = { "R69", "00L", "RX1" };
        static const char *const types[] = { "APPOINTMENT", "TRIAGE_DEFERRAL" };
        static const char *const intents[] = { "plan", "order" };
        static const char *const urgent[] = { "URGENT" };
        struct wref m = { .n_docs = 0 }; /* made here, added last: add_ref() moves the array */
        size_t want = docs_wanted(g, w);

        new_ubrn(g, m.ubrn);
        m.version = 1 + below(g, 5);
        unsigned x = below(g, 100);
        m.home = m.worklist = x < 55 ? 0 : x < 75 ? 1 : 2;
        m.entry_ahead = m.home != 1 && chance(g, 50);
        const char *service = WORLD_WORKLIST[m.home].service;
        m.nhs = g->plan.tame || chance(g, 950) ? nhs_number(g) : absent(); /* absent: the entry's, kept on a re-read */
        m.e_nhs = m.nhs.kind == WT_STR && chance(g, 950) ? m.nhs : nhs_number(g);
        m.specialty = CODE(g, specialties, 64, 30);
        if (g->plan.tame && !wt_readable(&m.specialty))
                m.specialty = str(g, PICK(g, specialties)); /* else the entry's, kept on a re-read */
        m.specialty_display = free_text(g, PICK(g, displays), 255, 50, 0);
        m.intent = CODE(g, intents, 32, 30);
        m.pathway_start = chance(g, 850) ? when(g, chance(g, 200)) : absent();
        m.pathway_instant = chance(g, 500);
        m.cifs = chance(g, 800) ? when(g, false) : absent();
        m.commissioning_org = chance(g, 700) ? CODE(g, orgs, 16, 0) : absent();
        m.request_id = chance(g, 950) ? (chance(g, 50) ? shaped(g, "req", 64, 1000, 0) : uuidish(g)) : absent();
        m.booked = chance(g, 400);
        vary(g, &m);
        service_pair(g, service, &m.e_service_id, &m.e_service_name);
        if (m.booked) {
                if (chance(g, 700)) {
                        m.appt_service_id = m.e_service_id;
                        m.appt_service_name = m.e_service_name;
                } else
                        service_pair(g, chance(g, 500) ? "31077" : service, &m.appt_service_id, &m.appt_service_name);
        } else if (chance(g, 600)) {
                /* unbooked: the shortlist names the worklist's own service, so A005 and
                 * the entry agree whichever ersd takes */
                m.shortlist = true;
                m.sl_id = m.e_service_id;
                m.sl_name = m.e_service_name;
        }
        m.e_priority = chance(g, 900) ? m.priority : CODE(g, urgent, 32, 100);
        m.e_specialty = chance(g, 900) ? m.specialty : CODE(g, specialties, 64, 100);
        m.e_referral_type = chance(g, 900) ? CODE(g, types, 64, 0) : absent();
        entry_state(g, &m);
        m.letter_bytes = 300 + below(g, 30000);

        /* Its documents, some on related referrals: new ones, or one another referral points at. */
        size_t n_rel = chance(g, 250) ? 1 + below(g, WORLD_RELATED_MAX) : 0;
        for (size_t i = 0; i < n_rel; i++) {
                const struct wref *shared = NULL;
                for (size_t k = 0; k < w->n_refs && !shared; k++)
                        if (w->refs[k].related_only && chance(g, 200)) /* one related referral, two pointing at it */
                                shared = &w->refs[k];
                char rel[13];
                if (shared)
                        memcpy(rel, shared->ubrn, sizeof rel);
                else {
                        struct wref *nr = add_ref(w);
                        make_related(g, nr);
                        add_docs(g, nr, want / (n_rel + 1));
                        memcpy(rel, nr->ubrn, sizeof rel);
                }
                bool dup = false;
                for (size_t k = 0; k < m.n_related; k++)
                        dup |= strcmp(m.related[k], rel) == 0;
                if (!dup)
                        memcpy(m.related[m.n_related++], rel, sizeof rel);
        }
        if (total_docs(w, &m) < want)
                add_docs(g, &m, want - total_docs(w, &m));
        /* now and then an attachment without a readable id: ersd must refuse the referral */
        if (m.n_docs > 0 && !g->plan.tame && chance(g, 25)) {
                struct wdoc *d = &m.docs[below(g, (unsigned)m.n_docs)];
                d->id = chance(g, 600) ? absent() : chance(g, 500) ? bytes_(g, "id\0x", 4) : num(12);
        }
        *add_ref(w) = m;
}

/* ---- worlds ---------------------------------------------------------------------------------- */

struct wgen *wgen_new(uint64_t seed, const struct wgen_plan *plan)
{
        struct wgen *g = calloc(1, sizeof *g);

        if (!g)
                return NULL;
        g->rng = seed;
        g->plan = *plan;
        if (g->plan.max_docs > WORLD_DOCS_MAX)
                g->plan.max_docs = WORLD_DOCS_MAX;
        g->ubrn_base = wgen_rand(g) % 90000000;
        g->state_rng = seed ^ 0x5747a7e5747a7e57ULL;
        return g;
}

void wgen_free(struct wgen *g)
{
        if (!g)
                return;
        for (size_t i = 0; i < g->n_pool; i++)
                free(g->pool[i]);
        free(g->pool);
        free(g);
}

void world_free(struct world *w)
{
        if (!w)
                return;
        for (size_t i = 0; i < w->n_refs; i++)
                free(w->refs[i].docs);
        for (size_t i = 0; i < w->n_junk; i++)
                free(w->junk[i]);
        free(w->junk);
        free(w->junk_on);
        free(w->refs);
        free(w);
}

struct world *world_copy(const struct world *w)
{
        struct world *c = calloc(1, sizeof *c);

        if (!c)
                abort();
        *c = *w;
        c->refs = calloc(w->n_refs + 1, sizeof *c->refs);
        c->junk = NULL;
        c->junk_on = NULL;
        c->n_junk = 0;
        if (!c->refs)
                abort();
        if (w->n_refs > 0) /* memcpy takes no NULL, even for nothing */
                memcpy(c->refs, w->refs, w->n_refs * sizeof *c->refs);
        for (size_t i = 0; i < w->n_refs; i++) {
                c->refs[i].docs = malloc((w->refs[i].n_docs + 1) * sizeof *c->refs[i].docs);
                if (!c->refs[i].docs)
                        abort();
                if (w->refs[i].n_docs > 0)
                        memcpy(c->refs[i].docs, w->refs[i].docs, w->refs[i].n_docs * sizeof *c->refs[i].docs);
        }
        return c;
}

struct world *world_copy_whole(const struct world *w)
{
        struct world *c = world_copy(w);

        c->junk = calloc(w->n_junk + 1, sizeof *c->junk);
        c->junk_on = calloc(w->n_junk + 1, sizeof *c->junk_on);
        if (!c->junk || !c->junk_on)
                abort();
        for (; c->n_junk < w->n_junk; c->n_junk++) {
                c->junk_on[c->n_junk] = w->junk_on[c->n_junk];
                if (!(c->junk[c->n_junk] = strdup(w->junk[c->n_junk])))
                        abort();
        }
        return c;
}

/* Malformed worklist entries, now and then: ersd must skip each, and sync the rest. */
static void add_junk(struct wgen *g, struct world *w)
{
        char buf[512], ubrn[13];

        if (g->plan.tame || !chance(g, 250))
                return;
        new_ubrn(g, ubrn);
        switch (below(g, 5)) {
        case 0:
                snprintf(buf, sizeof buf, "42");
                break;
        case 1:
                snprintf(buf, sizeof buf, "{\"item\":{}}");
                break;
        case 2:
                snprintf(buf, sizeof buf, "{\"item\":{\"reference\":\"ReferralRequest/12345\"}}");
                break;
        case 3:
                snprintf(buf, sizeof buf,
                         "{\"item\":{\"reference\":\"ReferralRequest/%s\"},\"extension\":[{\"url\":\"https://fhir.nhs.uk/"
                         "STU3/StructureDefinition/Extension-eRS-ReferralsforReview-WorkListItem-1\",\"extension\":"
                         "[{\"url\":\"referralRequestVersion\",\"valueInteger\":\"seven\"}]}]}",
                         ubrn);
                break;
        default:
                snprintf(buf, sizeof buf, "[\"ReferralRequest/%s\"]", ubrn);
                break;
        }
        w->junk = realloc(w->junk, (w->n_junk + 1) * sizeof *w->junk);
        w->junk_on = realloc(w->junk_on, (w->n_junk + 1) * sizeof *w->junk_on);
        if (!w->junk || !w->junk_on || !(w->junk[w->n_junk] = strdup(buf)))
                abort();
        int on = (int)below(g, WORLD_WORKLISTS);
        w->junk_on[w->n_junk++] = on == 1 ? 0 : on; /* an RFR list: every entry carries a version there */
}

/* Every seed's first world has a related referral two referrals point at (when two have room for it): e-RS
 * allows it, and what a read of one of them finds changed in it must reach the other (C-10.6). */
static void share_a_related(struct wgen *g, struct world *w)
{
        size_t pick[2], n = 0;

        for (size_t i = 0; i < w->n_refs; i++) {
                unsigned pointing = 0;
                for (size_t k = 0; w->refs[i].related_only && k < w->n_refs; k++)
                        for (size_t j = 0; j < w->refs[k].n_related; j++)
                                pointing += strcmp(w->refs[k].related[j], w->refs[i].ubrn) == 0;
                if (pointing >= 2)
                        return;
        }
        for (size_t i = 0; i < w->n_refs && n < 2; i++)
                if (!w->refs[i].related_only && w->refs[i].n_related < WORLD_RELATED_MAX &&
                    total_docs(w, &w->refs[i]) + 3 <= g->plan.max_docs)
                        pick[n++] = i; /* indexes: add_ref() moves the array */
        if (n < 2)
                return;
        struct wref *r = add_ref(w);
        make_related(g, r);
        add_docs(g, r, 1 + below(g, 3));
        for (size_t i = 0; i < 2; i++) {
                struct wref *m = &w->refs[pick[i]];
                memcpy(m->related[m->n_related++], r->ubrn, sizeof m->related[0]);
        }
}

struct world *wgen_first(struct wgen *g)
{
        struct world *w = calloc(1, sizeof *w);

        if (!w)
                abort();
        w->max_mib = 1;
        w->parallel = 1 + below(g, 4);
        for (unsigned i = 0; i < g->plan.referrals; i++)
                make_main(g, w);
        share_a_related(g, w);
        add_junk(g, w);
        return w;
}

/* An attachment e-RS still owes: PENDING, an unknown availability, none. */
static bool owed_availability(const struct wdoc *d)
{
        return !wdoc_available(d) && !wdoc_never(d);
}

/* e-RS finishes scanning some owed attachments, at the same version (world.h):
 * released, or found never to be (while another may still be owed). */
static void release(struct wgen *g, struct wref *r)
{
        static const char *const outcomes[] = { "AVAILABLE", "AVAILABLE", "AVAILABLE", "THREATS_FOUND",
                                                "VALIDATION_FAILED" };

        for (size_t k = 0; k < r->n_docs; k++)
                if (owed_availability(&r->docs[k]) && chance(g, 600))
                        r->docs[k].availability = str(g, PICK(g, outcomes));
}

/* An attachment revised (if it can be): same id, new bytes and creation time. */
static void revise(struct wgen *g, struct wdoc *d)
{
        uint64_t before = d->bytes;

        if (!wdoc_available(d) && d->bytes <= MIB)
                return;
        do
                doc_content(g, d, before > MIB);
        while (d->bytes == 0 && before == 0); /* new bytes: never empty twice */
        d->creation = when(g, false);
        d->availability = str(g, "AVAILABLE");
}

/* A new version: some of what A005 says changes. */
static void new_version(struct wgen *g, struct world *w, struct wref *r)
{
        r->version++;
        switch (below(g, 8)) {
        case 0: /* an attachment revised: same id, new bytes and creation time */
                if (r->n_docs)
                        revise(g, &r->docs[below(g, (unsigned)r->n_docs)]);
                break;
        case 1: /* an attachment removed */
                if (r->n_docs) {
                        size_t k = below(g, (unsigned)r->n_docs);
                        memmove(&r->docs[k], &r->docs[k + 1], (r->n_docs - k - 1) * sizeof *r->docs);
                        r->n_docs--;
                }
                break;
        case 2: /* attachments added */
                if (total_docs(w, r) < g->plan.max_docs) {
                        size_t room = g->plan.max_docs - total_docs(w, r);
                        add_docs(g, r, 1 + below(g, room < 6 ? (unsigned)room : 6));
                }
                break;
        case 3: /* an id lost, or found again */
                if (wref_refused(r)) {
                        for (size_t k = 0; k < r->n_docs; k++)
                                if (!wt_readable(&r->docs[k].id))
                                        r->docs[k].id = doc_id(g, r);
                } else if (r->n_docs && !r->related_only && !g->plan.tame && chance(g, 300))
                        r->docs[below(g, (unsigned)r->n_docs)].id = absent();
                break;
        default:
                break;
        }
        if (r->n_related && !r->related_only && chance(g, 250)) {
                /* a related referral no longer listed: its attachments shown with r are kept, marked removed */
                size_t k = below(g, (unsigned)r->n_related);
                memmove(r->related[k], r->related[k + 1], (r->n_related - k - 1) * sizeof r->related[0]);
                r->n_related--;
        }
        vary(g, r);
}

/* e-RS changes a worklisted referral's working state between two looks, about
 * one time in three, with no new version (its own stream, as entry_state()). */
static void entry_state_changes(struct wgen *g, struct wref *r)
{
        uint64_t main_rng = g->rng;
        bool change;

        g->rng = g->state_rng;
        change = chance(g, 350);
        g->state_rng = g->rng;
        g->rng = main_rng;
        if (change)
                entry_state(g, r);
}

struct world *wgen_next(struct wgen *g, const struct world *w)
{
        struct world *n = world_copy(w);

        n->epoch = w->epoch + 1;
        n->parallel = 1 + below(g, 4);
        if (n->epoch >= 3 && n->max_mib == 1 && chance(g, 400))
                n->max_mib = 3; /* as the docs advise: raise it, and what was too large is fetched */
        for (size_t i = 0; i < n->n_refs; i++) {
                struct wref *r = &n->refs[i];
                if (r->gone)
                        continue;
                if (chance(g, 300))
                        release(g, r);
                if (r->related_only) {
                        if (!chance(g, 150))
                                continue;
                        new_version(g, n, r);
                        /* every referral pointing at it gets a new version too (world.h) */
                        for (size_t k = 0; k < n->n_refs; k++)
                                for (size_t j = 0; j < n->refs[k].n_related; j++)
                                        if (strcmp(n->refs[k].related[j], r->ubrn) == 0 && !n->refs[k].gone &&
                                            n->refs[k].version == w->refs[k].version)
                                                n->refs[k].version++;
                        continue;
                }
                if (chance(g, 300))
                        new_version(g, n, r);
                if (r->worklist >= 0 && chance(g, 60))
                        r->worklist = -1; /* leaves every worklist */
                else if (r->worklist < 0 && chance(g, 400))
                        r->worklist = r->home; /* comes back */
                if (r->home != 1 && chance(g, 60))
                        r->entry_ahead = !r->entry_ahead;
                entry_state_changes(g, r);
                if (chance(g, 15) && !r->related_only)
                        r->gone = true;
        }
        if (chance(g, 300)) {
                unsigned more = 1 + below(g, 2);
                for (unsigned i = 0; i < more; i++)
                        make_main(g, n);
        }
        add_junk(g, n);
        return n;
}

struct world *wgen_revise(struct wgen *g, const struct world *w, const char *const *ubrns, size_t n_ubrns)
{
        struct world *n = wgen_next(g, w);

        for (size_t i = 0; i < n_ubrns; i++)
                for (size_t k = 0; k < n->n_refs; k++) {
                        struct wref *r = &n->refs[k];
                        bool bumped = false;
                        if (strcmp(r->ubrn, ubrns[i]) != 0 || r->gone || r->related_only)
                                continue;
                        for (size_t j = 0; j < r->n_docs; j++)
                                if (chance(g, 500) && (wdoc_available(&r->docs[j]) || r->docs[j].bytes > MIB)) {
                                        revise(g, &r->docs[j]);
                                        bumped = true;
                                }
                        const struct wref *before = world_find(w, r->ubrn);
                        if (bumped && before && r->version == before->version)
                                r->version++;
                }
        return n;
}

const struct wref *world_find(const struct world *w, const char *ubrn)
{
        for (size_t i = 0; i < w->n_refs; i++)
                if (strcmp(w->refs[i].ubrn, ubrn) == 0)
                        return &w->refs[i];
        return NULL;
}

/* ---- values as the PAS must hold them ---------------------------------------------------------- */

bool wt_readable(const struct wt *v)
{
        return v->kind == WT_STR && memchr(v->p, '\0', v->n) == NULL;
}

char *wt_code(const struct wt *v, size_t *ret_len)
{
        char *s = wt_readable(v) ? strdup(v->p) : NULL;

        if (ret_len)
                *ret_len = s ? v->n : 0;
        return s;
}

char *wt_text(const struct wt *v, size_t *ret_len)
{
        struct tb t = { 0 };

        if (v->kind != WT_STR)
                return NULL;
        for (size_t i = 0; i < v->n; i++) {
                if (v->p[i] == '\0')
                        tb_add(&t, "\xef\xbf\xbd", 3);
                else
                        tb_add(&t, &v->p[i], 1);
        }
        if (!t.p)
                t.p = calloc(1, 1);
        if (ret_len)
                *ret_len = t.n;
        return t.p;
}

char *wstate_joined(const struct wstate *s, size_t *ret_len)
{
        struct tb t = { 0 };
        size_t values = 0;

        for (size_t i = 0; i < s->n; i++) {
                if (!wt_readable(&s->v[i]))
                        continue;
                if (values++ > 0)
                        tb_add(&t, " ", 1);
                tb_add(&t, s->v[i].p, s->v[i].n);
        }
        if (values > 0 && !t.p)
                t.p = calloc(1, 1); /* one empty value: "", not NULL */
        if (ret_len)
                *ret_len = t.n;
        return t.p;
}

const char *wref_printed(const struct wref *r)
{
        bool yes = false, no = false;

        for (size_t i = 0; i < r->n_printed; i++) {
                yes |= r->e_printed[i] == WP_TRUE;
                no |= r->e_printed[i] == WP_FALSE;
        }
        return yes == no ? NULL : yes ? "1" : "0";
}

static bool wt_is(const struct wt *v, const char *s)
{
        return v->kind == WT_STR && v->n == strlen(s) && memcmp(v->p, s, v->n) == 0;
}

bool wdoc_available(const struct wdoc *d)
{
        return wt_is(&d->availability, "AVAILABLE");
}

bool wdoc_never(const struct wdoc *d)
{
        return wt_is(&d->availability, "THREATS_FOUND") || wt_is(&d->availability, "THREATS FOUND") ||
               wt_is(&d->availability, "VALIDATION_FAILED");
}

bool wref_refused(const struct wref *r)
{
        for (size_t k = 0; k < r->n_docs; k++)
                if (!wt_readable(&r->docs[k].id))
                        return true;
        return false;
}

uint64_t world_letter_seed(const char *ubrn, int64_t version)
{
        return stream_mix64(strtoull(ubrn, NULL, 10) * 1000003ULL + (uint64_t)version);
}

void world_content_sha256(struct wgen *g, uint64_t seed, uint64_t bytes, char hex[65])
{
        struct sha_entry *e = &g->sha[stream_mix64(seed ^ bytes) % SHA_CACHE];
        unsigned char buf[65536], digest[32];
        EVP_MD_CTX *md;

        if (e->used && e->seed == seed && e->bytes == bytes) {
                memcpy(hex, e->hex, 65);
                return;
        }
        md = EVP_MD_CTX_new();
        if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL))
                abort();
        for (uint64_t pos = 0; pos < bytes;) {
                size_t n = bytes - pos < sizeof buf ? (size_t)(bytes - pos) : sizeof buf;
                stream_fill(seed, pos, buf, n);
                EVP_DigestUpdate(md, buf, n);
                pos += n;
        }
        EVP_DigestFinal_ex(md, digest, NULL);
        EVP_MD_CTX_free(md);
        for (int i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", digest[i]);
        *e = (struct sha_entry){ .seed = seed, .bytes = bytes, .used = true };
        memcpy(e->hex, hex, 65);
}

/* ---- the mock's world format ----------------------------------------------------------------- */

static void put_wt(json_object *o, const char *key, const struct wt *v)
{
        if (v->kind == WT_STR)
                json_object_object_add(o, key, json_object_new_string_len(v->p, (int)v->n));
        else if (v->kind == WT_NUM)
                json_object_object_add(o, key, json_object_new_int64(v->num));
}

/* An element of the working state: an array of its occurrences (absent when none). */
static void put_state(json_object *o, const char *key, const struct wstate *s)
{
        json_object *a;

        if (s->n == 0)
                return;
        a = json_object_new_array();
        for (size_t i = 0; i < s->n; i++) {
                json_object *holder = json_object_new_object(), *v = NULL;
                put_wt(holder, "v", &s->v[i]);
                json_object_object_get_ex(holder, "v", &v);
                json_object_array_add(a, v ? json_object_get(v) : NULL);
                json_object_put(holder);
        }
        json_object_object_add(o, key, a);
}

static json_object *doc_json(const struct wdoc *d)
{
        json_object *o = json_object_new_object();

        json_object_object_add(o, "binary", json_object_new_string(d->binary));
        json_object_object_add(o, "seed", json_object_new_int64((int64_t)d->seed));
        json_object_object_add(o, "bytes", json_object_new_int64((int64_t)d->bytes));
        put_wt(o, "id", &d->id);
        put_wt(o, "title", &d->title);
        put_wt(o, "content_type", &d->content_type);
        put_wt(o, "creation", &d->creation);
        put_wt(o, "size", &d->size);
        put_wt(o, "availability", &d->availability);
        put_wt(o, "attached_by_user", &d->by_user);
        put_wt(o, "attached_by_org", &d->by_org);
        put_wt(o, "doc_type", &d->doc_type);
        put_wt(o, "description", &d->description);
        return o;
}

static json_object *ref_json(const struct wref *r)
{
        json_object *o = json_object_new_object(), *docs = json_object_new_array(), *rel = json_object_new_array();

        json_object_object_add(o, "ubrn", json_object_new_string(r->ubrn));
        json_object_object_add(o, "version", json_object_new_int64(r->version));
        json_object_object_add(o, "gone", json_object_new_boolean(r->gone));
        put_wt(o, "nhs_number", &r->nhs);
        put_wt(o, "priority", &r->priority);
        put_wt(o, "state", &r->state);
        put_wt(o, "state_reason", &r->reason);
        put_wt(o, "state_comment", &r->comment);
        put_wt(o, "specialty", &r->specialty);
        put_wt(o, "specialty_display", &r->specialty_display);
        put_wt(o, "status", &r->status);
        put_wt(o, "intent", &r->intent);
        put_wt(o, "pathway_start", &r->pathway_start);
        json_object_object_add(o, "pathway_instant", json_object_new_boolean(r->pathway_instant));
        put_wt(o, "clinical_info_first_submitted", &r->cifs);
        put_wt(o, "commissioning_org", &r->commissioning_org);
        put_wt(o, "request_id", &r->request_id);
        if (r->booked) {
                json_object *a = json_object_new_object();
                put_wt(a, "start", &r->appt_start);
                put_wt(a, "end", &r->appt_end);
                put_wt(a, "service_id", &r->appt_service_id);
                put_wt(a, "service_name", &r->appt_service_name);
                json_object_object_add(o, "appointment", a);
        }
        if (r->shortlist) {
                json_object *s = json_object_new_object(), *list = json_object_new_array();
                put_wt(s, "id", &r->sl_id);
                put_wt(s, "name", &r->sl_name);
                json_object_array_add(list, s);
                json_object_object_add(o, "shortlist", list);
        }
        for (size_t i = 0; i < r->n_related; i++)
                json_object_array_add(rel, json_object_new_string(r->related[i]));
        json_object_object_add(o, "related", rel);
        if (r->n_reqs > 0) {
                json_object *reqs = json_object_new_array();
                for (size_t i = 0; i < r->n_reqs; i++) {
                        json_object *q = json_object_new_object();
                        put_wt(q, "code", &r->reqs[i].code);
                        put_wt(q, "display", &r->reqs[i].display);
                        put_wt(q, "comments", &r->reqs[i].comments);
                        json_object_array_add(reqs, q);
                }
                json_object_object_add(o, "requirements", reqs);
        }
        for (size_t k = 0; k < r->n_docs; k++)
                json_object_array_add(docs, doc_json(&r->docs[k]));
        json_object_object_add(o, "attachments", docs);
        json_object *letter = json_object_new_object();
        json_object_object_add(letter, "seed", json_object_new_int64((int64_t)world_letter_seed(r->ubrn, r->version)));
        json_object_object_add(letter, "bytes", json_object_new_int64((int64_t)r->letter_bytes));
        json_object_object_add(o, "letter", letter);
        if (r->worklist >= 0) {
                const struct world_worklist *wl = &WORLD_WORKLIST[r->worklist];
                json_object *e = json_object_new_object();
                json_object_object_add(e, "service", json_object_new_string(wl->service));
                json_object_object_add(e, "list", json_object_new_string(wl->list_type));
                if (r->worklist != 1)
                        json_object_object_add(e, "version", json_object_new_int64(r->version + r->entry_ahead));
                put_wt(e, "priority", &r->e_priority);
                put_wt(e, "specialty", &r->e_specialty);
                put_wt(e, "service_id", &r->e_service_id);
                put_wt(e, "service_name", &r->e_service_name);
                put_wt(e, "referral_type", &r->e_referral_type);
                put_wt(e, "nhs_number", &r->e_nhs);
                put_wt(e, "pathway_start", &r->pathway_start);
                put_state(e, "ubrn_received", &r->e_received);
                put_state(e, "patient_contact_expected", &r->e_contact);
                put_state(e, "last_contact", &r->e_last);
                put_state(e, "clinical_information_status", &r->e_information);
                put_state(e, "request_context_status", &r->e_context);
                if (r->n_printed > 0) {
                        json_object *printed = json_object_new_array();
                        for (size_t i = 0; i < r->n_printed; i++)
                                json_object_array_add(printed, r->e_printed[i] == WP_STRING
                                                                       ? json_object_new_string("true")
                                                                       : json_object_new_boolean(r->e_printed[i] == WP_TRUE));
                        json_object_object_add(e, "clinical_info_printed", printed);
                }
                json_object_object_add(o, "entry", e);
        }
        return o;
}

int world_write(const struct world *w, const char *path)
{
        json_object *root = json_object_new_object(), *refs = json_object_new_array(), *junk = json_object_new_array();
        int r;

        for (size_t i = 0; i < w->n_refs; i++)
                json_object_array_add(refs, ref_json(&w->refs[i]));
        json_object_object_add(root, "referrals", refs);
        for (size_t i = 0; i < w->n_junk; i++) {
                const struct world_worklist *wl = &WORLD_WORKLIST[w->junk_on[i]];
                json_object *j = json_object_new_object();
                json_object_object_add(j, "service", json_object_new_string(wl->service));
                json_object_object_add(j, "list", json_object_new_string(wl->list_type));
                json_object_object_add(j, "entry", json_tokener_parse(w->junk[i]));
                json_object_array_add(junk, j);
        }
        json_object_object_add(root, "junk", junk);
        r = json_object_to_file_ext(path, root, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE) < 0 ? -EIO
                                                                                                               : 0;
        json_object_put(root);
        return r;
}
