/* SPDX-License-Identifier: MIT */
/*
 * The mock's synthetic data.  Every referral and attachment is derived from
 * (seed, index) alone, so two runs with the same options serve the same bytes.
 * Attachment content is a counter-based PRNG stream: byte `pos` of an attachment
 * is a pure function of (key, pos), computed on demand while streaming.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "mock.h"
#include "stream.h"

/* ---- small helpers ------------------------------------------------------- */

void buf_append(struct buf *b, const void *p, size_t n)
{
        if (b->oom || n == 0)
                return;
        if (b->len + n + 1 > b->cap) {
                size_t cap = b->cap ? b->cap : 256;
                while (cap < b->len + n + 1)
                        cap *= 2;
                char *np = realloc(b->p, cap);
                if (!np) {
                        b->oom = true;
                        return;
                }
                b->p = np;
                b->cap = cap;
        }
        memcpy(b->p + b->len, p, n);
        b->len += n;
        b->p[b->len] = '\0';
}

void buf_printf(struct buf *b, const char *fmt, ...)
{
        char small[512];
        va_list ap;

        va_start(ap, fmt);
        int n = vsnprintf(small, sizeof small, fmt, ap);
        va_end(ap);
        if (n < 0) {
                b->oom = true;
                return;
        }
        if ((size_t)n < sizeof small) {
                buf_append(b, small, (size_t)n);
                return;
        }
        char *big = malloc((size_t)n + 1);
        if (!big) {
                b->oom = true;
                return;
        }
        va_start(ap, fmt);
        vsnprintf(big, (size_t)n + 1, fmt, ap);
        va_end(ap);
        buf_append(b, big, (size_t)n);
        free(big);
}

/* splitmix64's output function: a good 64-bit mixer (stream.h). */
uint64_t mix64(uint64_t x)
{
        return stream_mix64(x);
}

/* A hash of (seed, a, b): the source of every "random" choice. */
static uint64_t h3(uint64_t seed, uint64_t a, uint64_t b)
{
        return mix64(mix64(mix64(seed) ^ a) ^ (b * 0xd6e8feb86659fd93ULL));
}

static void uuid_format(uint64_t hi, uint64_t lo, char out[40])
{
        snprintf(out, 40, "%08llx-%04llx-4%03llx-%04llx-%012llx",
                 (unsigned long long)(hi >> 32), (unsigned long long)((hi >> 16) & 0xffff),
                 (unsigned long long)(hi & 0xfff),
                 (unsigned long long)(0x8000 | ((lo >> 48) & 0x3fff)),
                 (unsigned long long)(lo & 0xffffffffffffULL));
}

/* "2025-03-03T08:00:00.123Z" (ms < 1000), or a bare date when ms < 0. */
static void format_time(time_t t, int ms, char out[32])
{
        struct tm tm;

        gmtime_r(&t, &tm);
        if (ms < 0)
                strftime(out, 32, "%Y-%m-%d", &tm);
        else {
                char s[24];
                strftime(s, sizeof s, "%Y-%m-%dT%H:%M:%S", &tm);
                snprintf(out, 32, "%s.%03dZ", s, ms % 1000);
        }
}

/* ---- code tables ---------------------------------------------------------- */

static const struct code PRIORITIES[] = {
        { SYS_PRIORITY, "ROUTINE", "Routine" },
        { SYS_PRIORITY, "URGENT", "Urgent" },
        { SYS_PRIORITY, "TWO_WEEK_WAIT", "2 Week Wait" },
};
static const struct code PRIORITY_FUTURE = { SYS_PRIORITY, "FUTURE_PRIORITY", "Future Priority" };

static const struct code SPECIALTIES[] = {
        { SYS_SPECIALTY, "CARDIOLOGY", "Cardiology" },
        { SYS_SPECIALTY, "DERMATOLOGY", "Dermatology" },
        { SYS_SPECIALTY, "ENT", "Ear, Nose & Throat" },
        { SYS_SPECIALTY, "GASTROENTEROLOGY", "Gastroenterology" },
        { SYS_SPECIALTY, "ORTHOPAEDICS", "Orthopaedics" },
        { SYS_SPECIALTY, "NEUROLOGY", "Neurology" },
        { SYS_SPECIALTY, "OPHTHALMOLOGY", "Ophthalmology" },
        { SYS_SPECIALTY, "UROLOGY", "Urology" },
};

static const struct code REFERRAL_TYPES[] = {
        { CS "eRS-ReferralType-1", "APPOINTMENT", NULL },
        { CS "eRS-ReferralType-1", "TRIAGE_DEFERRAL", NULL },
};

static const struct code DOC_TYPES[] = {
        { CS "eRS-AttachmentType-1", "REFERRER", "Referrer" },
        { CS "eRS-AttachmentType-1", "PROVIDER", "Provider" },
};

static const struct code R_TRIAGED = { CS "eRS-ReviewOutcome-1", "BOOK_APPOINTMENT", "Book an appointment" };
static const struct code R_TRIAGE_RESPONSE = { CS "eRS-ReviewOutcome-1", "RETURN_TO_REFERRER_WITH_ADVICE",
                                               "Return to referrer with advice" };
static const struct code R_DEFERRED = { CS "eRS-ReviewReason-1", "NO_SLOTS_AT_SERVICE", "No slots at service" };
static const struct code R_CANCEL_PATIENT = { CS "APPOINTMENT-CANCELLATION-REASON", "PATIENT_UNAVAILABLE",
                                              "Patient unavailable" };
static const struct code R_CANCEL_PROVIDER = { CS "APPOINTMENT-CANCELLATION-REASON", "CLINIC_CANCELLED",
                                               "Clinic cancelled" };
static const struct code R_DNA = { CS "APPOINTMENT-NON-ATTENDANCE-REASON", "NO_REASON_GIVEN", "No reason given" };
static const struct code R_ASSESSMENT = { CS "eRS-AssessmentOutcome-1", "ONWARD_REFERRAL", "Onward referral" };
static const struct code R_REJECTED = { CS "eRS-ReviewReason-1", "INSUFFICIENT_INFORMATION",
                                        "Insufficient information" };
static const struct code R_CANCELLED = { CS "REFERRAL-CANCELLATION-REASON", "NO_LONGER_REQUIRED",
                                         "No longer required" };

const struct state_def STATES[N_REAL_STATES + 1] = {
        { "NOT_BOOKED", "Not Booked", NULL, "active" },
        { "BOOKED", "Booked", NULL, "active" },
        { "AWAITING_TRIAGE", "Awaiting Triage", NULL, "active" },
        { "TRIAGED_PROVIDER_TO_ACTION", "Triaged - Provider To Action", &R_TRIAGED, "active" },
        { "TRIAGE_RESPONSE", "Triage Response", &R_TRIAGE_RESPONSE, "active" },
        { "DEFERRED_TO_PROVIDER", "Deferred To Provider", &R_DEFERRED, "active" },
        { "APPT_CANCELLED_BY_PATIENT", "Appointment Cancelled By Patient", &R_CANCEL_PATIENT, "active" },
        { "APPT_CANCELLED_BY_PROVIDER", "Appointment Cancelled By Provider", &R_CANCEL_PROVIDER, "active" },
        { "DID_NOT_ATTEND", "Did Not Attend", &R_DNA, "active" },
        { "ASSESSMENT_RESULT", "Assessment Result", &R_ASSESSMENT, "active" },
        { "REJECTED", "Rejected", &R_REJECTED, "active" },
        { "CANCELLED_REFERRAL", "Cancelled Referral", &R_CANCELLED, "cancelled" },
        { "FUTURE_STATE", "Future State", NULL, "active" }, /* STATE_FUTURE */
};

/* Initial state of referral i: STATE_PATTERN[i % 16] (index 6 is overridden to FUTURE_STATE). */
static const int STATE_PATTERN[16] = { 1, 2, 0, 2, 1, 5, 3, 10, 1, 6, 5, 8, 9, 4, 11, 7 };

static const char *const SERVICE_NAMES[] = {
        "Riverside Heart & Lung Clinic",
        "Hillcrest Skin Service",
        "Northgate ENT Triage",
        "Westfield Bone and Joint Clinic",
        "Eastbrook Eye Unit",
        "Meadowbank Neurology Outpatients",
};

struct att_spec {
        const char *title;
        const char *content_type;
        enum content_kind kind;
};

static const struct att_spec ATT_SPECS[] = {
        { "Referral letter.pdf", "application/pdf", KIND_PDF },
        { "Lesion photo.jpg", "image/jpeg", KIND_JPEG },
        { "Blood results.docx", "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
          KIND_DOCX },
        { "ECG trace.png", "image/png", KIND_PNG },
        { "Medication list.txt", "text/plain", KIND_TEXT },
        { "\xc3\x89" "chographie \xe2\x80\x93 compte rendu.pdf", "application/pdf", KIND_PDF },
        { "Discharge summary.rtf", "application/rtf", KIND_RTF },
        { "Bloods 03/2025.pdf", "application/pdf", KIND_PDF },
};
static const struct att_spec SPEC_BIG = { "Scanned notes.tif", "image/tiff", KIND_TIFF };
static const struct att_spec SPEC_PENDING = { "Awaiting scan.pdf", "application/pdf", KIND_PDF };
static const struct att_spec SPEC_THREAT = { "Macro form.docm", "application/vnd.ms-word.document.macroEnabled.12",
                                             KIND_DOCX };
static const struct att_spec SPEC_INVALID = { "Unreadable scan.pdf", "application/pdf", KIND_PDF };
static const struct att_spec SPEC_RELATED = { "Assessment summary.pdf", "application/pdf", KIND_PDF };

#define COMMENT_SPECIAL \
        "Patient asked for \"early\" slots \xe2\x80\x93 works at the caf\xc3\xa9 until 2pm \xf0\x9f\x98\x80"
#define COMMENT_PLAIN "Reviewed against the service criteria; letter to follow."
/* --edge-text: what a free-text field may hold, for the round-trip tests: 4-byte UTF-8,
 * quotes, a backslash, control characters and a NUL (kept by ersd as U+FFFD). */
static const char COMMENT_EDGE[] =
        "Edge \xf0\x9f\xa9\xba \xf0\x9d\x84\x9e \"double\" 'single' `back` \\ O'Brien \xe2\x80\x93 caf\xc3\xa9; "
        "tab\there CR\rLF\n bell\x07 unit\x1f del\x7f NUL\0after the NUL \xf0\x9f\x98\x80";
#define TITLE_EDGE "Scan \"left\" 'knee' \xf0\x9f\xa6\xb4 tab\t ctl\x01\x1f \\ end.pdf"

/* ---- states --------------------------------------------------------------- */

int state_after(const struct referral *r, unsigned bumps)
{
        if (bumps == 0)
                return r->state0;
        int base = r->state0 == STATE_FUTURE ? N_REAL_STATES - 1 : r->state0;
        return (int)(((unsigned)base + bumps) % N_REAL_STATES);
}

/* Older versions are approximate: the state as of that many bumps. */
int state_at_version(const struct referral *r, int64_t version)
{
        if (version >= r->version)
                return state_after(r, r->bumps);
        if (version <= r->version0)
                return r->state0;
        int64_t d = version - r->version0;
        return state_after(r, d < (int64_t)r->bumps ? (unsigned)d : r->bumps);
}

bool referral_booked(const struct referral *r, int state)
{
        return !r->bare && state == STATE_BOOKED;
}

const struct code *referral_reason(const struct referral *r, int state)
{
        return r->bare ? NULL : STATES[state].reason;
}

const char *referral_comment(const struct referral *r, int state)
{
        if (r->bare || (!STATES[state].reason && !r->comment_always))
                return NULL;
        if (r->comment_edge)
                return COMMENT_EDGE;
        return r->comment_special ? COMMENT_SPECIAL : COMMENT_PLAIN;
}

size_t referral_comment_len(const char *comment)
{
        return comment == COMMENT_EDGE ? sizeof COMMENT_EDGE - 1 : strlen(comment);
}

/* ---- NHS numbers ------------------------------------------------------------ */

/* A 999-prefixed NHS number, unique per index for up to 500000 referrals; with
 * `invalid` the check digit is deliberately wrong. */
static void nhs_number_for(uint64_t seed, size_t i, bool invalid, char out[11])
{
        uint64_t slot = ((uint64_t)i + seed * 7919u) % 500000u;
        uint64_t prefix = 999000000u + slot * 2;

        for (int attempt = 0; attempt < 2; attempt++, prefix++) {
                char d[10];
                snprintf(d, sizeof d, "%09llu", (unsigned long long)prefix);
                unsigned sum = 0;
                for (int k = 0; k < 9; k++)
                        sum += (unsigned)(d[k] - '0') * (unsigned)(10 - k);
                unsigned check = 11 - sum % 11;
                if (check == 11)
                        check = 0;
                if (check == 10)
                        continue; /* never issued: try the next candidate */
                if (invalid)
                        check = (check + 1) % 10;
                snprintf(out, 11, "%s%u", d, check);
                return;
        }
        /* unreachable: of two consecutive candidates at most one has check 10 */
        snprintf(out, 11, "9990000000");
}

/* ---- building --------------------------------------------------------------- */

/* Size of an ordinary attachment: 1 KiB .. 300 KiB, skewed up (median ~212 KiB). */
static uint64_t ordinary_size(uint64_t r)
{
        uint64_t a = r & 0xffffffffu, b = r >> 32;
        uint64_t u = a > b ? a : b;
        return 1024 + ((u * (300 * 1024 - 1024)) >> 32);
}

/* Size of a tail attachment (--tail-every): 300 KiB .. max, u³-skewed so most
 * are a few MiB and a few come near max (median ~ 1/8 of the way up). */
static uint64_t tail_size(uint64_t r, uint64_t max)
{
        const uint64_t lo = 300 * 1024;
        uint64_t u = r & 0xfffff;              /* 20 bits */
        uint64_t u3 = (u * u * u) >> 40;       /* 20 bits */
        return lo + (((max - lo) * u3) >> 20); /* max < 2^41: no overflow */
}

static const time_t EPOCH_2025_03_03_0800 = 1740988800;

/* Adds attachment number m->n_attachments to referral `ref` (SIZE_MAX: a spare
 * that belongs to none until /_mock/change adds it to one). */
static void add_attachment(struct mock *m, size_t ref, const struct att_spec *spec, uint64_t size,
                           const char *availability)
{
        struct referral *r = ref != SIZE_MAX ? &m->referrals[ref] : NULL;
        size_t n = m->n_attachments++;
        struct attachment *a = &m->attachments[n];
        uint64_t seed = m->opt.seed;
        size_t tref = ref != SIZE_MAX ? ref : n; /* what the organisation and times derive from */

        if (ref != SIZE_MAX) {
                if (r->att_count == 0)
                        r->att_first = n;
                r->att_count++;
        }
        a->referral = ref;
        snprintf(a->id, sizeof a->id, "%llu", (unsigned long long)(ATTACHMENT_ID_FIRST + n));
        uuid_format(h3(seed, n, 'B'), h3(seed, n, 'b'), a->binary_id);
        snprintf(a->title, sizeof a->title, "%s", spec->title);
        a->content_type = spec->content_type;
        a->kind = spec->kind;
        a->size = size;
        a->declared_size = size;
        a->key = h3(seed, n, 'K');
        a->doc_type = &DOC_TYPES[n % 5 == 4 ? 1 : 0];
        snprintf(a->attached_by_user, sizeof a->attached_by_user, "5%011llu",
                 (unsigned long long)(h3(seed, n, 'U') % 100000000000ULL));
        if (a->doc_type == &DOC_TYPES[1])
                snprintf(a->attached_by_org, sizeof a->attached_by_org, "R9%c", 'A' + (int)(n % 26));
        else
                snprintf(a->attached_by_org, sizeof a->attached_by_org, "Y9%04u",
                         (unsigned)((tref * 7 + seed) % 10000));
        time_t t = EPOCH_2025_03_03_0800 + (time_t)((tref * 613 + seed * 3607) % (300 * 86400)) -
                   (time_t)(3600 + n % 7200);
        format_time(t, n % 2 ? (int)(n % 1000) : -1, a->creation);
        format_time(t + 60, (int)((n * 7) % 1000), a->indexed);
        snprintf(a->availability, sizeof a->availability, "%s", availability);
}

static void fill_referral(struct mock *m, size_t i)
{
        struct referral *r = &m->referrals[i];
        uint64_t seed = m->opt.seed;

        snprintf(r->ubrn, sizeof r->ubrn, "%012llu", (unsigned long long)(UBRN_FIRST + i));
        r->worklisted = true;
        r->bare = i == 3;
        r->service = i % m->n_services;
        nhs_number_for(seed, i, i == 4, r->nhs_number);
        r->nhs_number_valid = i != 4;
        r->priority = i == 5 ? &PRIORITY_FUTURE : &PRIORITIES[i % 3];
        r->specialty = &SPECIALTIES[(i * 3 + seed) % 8];
        r->referral_type = &REFERRAL_TYPES[i % 3 == 1 ? 1 : 0];
        r->state0 = i == 6 ? STATE_FUTURE : STATE_PATTERN[i % 16];
        r->version0 = 1 + (int64_t)(i % 5);
        r->version = r->version0;
        r->related = SIZE_MAX;
        r->comment_always = i % 7 == 0;
        r->comment_special = i % 2 == 0;
        r->comment_edge = i == 0 && m->opt.edge_text;

        time_t start = EPOCH_2025_03_03_0800 + (time_t)((i * 613 + seed * 3607) % (300 * 86400));
        int ms = (int)((i * 37 + seed) % 1000);
        if (!r->bare) {
                format_time(start, ms, r->pathway_start);
                r->pathway_instant = i % 2 == 0;
                format_time(start + 127, (ms + 211) % 1000, r->clinical_info_first_submitted);
                snprintf(r->commissioning_org, sizeof r->commissioning_org, "X9%c%u", 'A' + (int)(i % 26),
                         (unsigned)(i % 10));
        }
        time_t day = start - start % 86400;
        time_t appt = day + (time_t)(10 + i % 20) * 86400 + 9 * 3600 + (time_t)(i % 16) * 900;
        format_time(appt, 0, r->appointment_start);
        format_time(appt + 900, 0, r->appointment_end);
        format_time(start + 3600, ms, r->appointment_created);
        char uuid[40];
        uuid_format(h3(seed, i, 'R'), h3(seed, i, 'r'), uuid);
        snprintf(r->request_id, sizeof r->request_id, "r.%s", uuid);
}

static int by_binary_id_cmp(const void *x, const void *y)
{
        const struct attachment *const *a = x, *const *b = y;
        return strcmp((*a)->binary_id, (*b)->binary_id);
}

int mock_build(struct mock *m)
{
        size_t n = m->opt.referrals;
        size_t k = m->opt.attachments;
        bool related = n > 2;

        m->n_services = m->opt.n_services;
        m->services = calloc(m->n_services, sizeof *m->services);
        m->n_worklisted = n;
        m->n_referrals = n + (related ? 1 : 0);
        m->referrals = calloc(m->n_referrals ? m->n_referrals : 1, sizeof *m->referrals);
        size_t max_att = n * k + 1 /* big */ + m->opt.n_extra + 3 /* unavailable */ + 1 /* related */ +
                         SPARE_ATTACHMENTS;
        m->attachments = calloc(max_att, sizeof *m->attachments);
        if (!m->services || !m->referrals || !m->attachments)
                return -ENOMEM;

        for (size_t s = 0; s < m->n_services; s++) {
                snprintf(m->services[s].id, sizeof m->services[s].id, "%s", m->opt.services[s]);
                if (s < m->opt.n_service_names)
                        snprintf(m->services[s].name, sizeof m->services[s].name, "%s", m->opt.service_names[s]);
                else
                        snprintf(m->services[s].name, sizeof m->services[s].name, "%s (%s)",
                                 SERVICE_NAMES[s % (sizeof SERVICE_NAMES / sizeof SERVICE_NAMES[0])],
                                 m->opt.services[s]);
        }

        for (size_t i = 0; i < n; i++) {
                fill_referral(m, i);
                if (m->referrals[i].bare)
                        continue;
                for (size_t j = 0; j < k; j++) {
                        size_t serial = m->n_attachments;
                        uint64_t size = ordinary_size(h3(m->opt.seed, serial, 'S'));
                        if (m->opt.tail_every && serial % m->opt.tail_every == m->opt.tail_every - 1)
                                size = tail_size(h3(m->opt.seed, serial, 'T'), m->opt.tail_max);
                        if (i == 2 && j == 0)
                                size = 0; /* the empty file */
                        add_attachment(m, i, &ATT_SPECS[(serial + m->opt.seed) % 8], size, "AVAILABLE");
                        if (i == 0 && j == 0) /* declared size is not to be trusted */
                                m->attachments[serial].declared_size = size + 3;
                        if (i == 0 && j == 0 && m->opt.edge_text)
                                snprintf(m->attachments[serial].title, sizeof m->attachments[serial].title, "%s",
                                         TITLE_EDGE);
                        if (i == 0 && j < m->opt.n_attachment_ids) /* fits: main.c checks the length */
                                snprintf(m->attachments[serial].id, sizeof m->attachments[serial].id, "%s",
                                         m->opt.attachment_ids[j]);
                        if (i == 0 && j < m->opt.n_attachment_titles)
                                snprintf(m->attachments[serial].title, sizeof m->attachments[serial].title, "%s",
                                         m->opt.attachment_titles[j]);
                }
                if (i == 0 && m->opt.big_attachment > 0)
                        add_attachment(m, i, &SPEC_BIG, m->opt.big_attachment, "AVAILABLE");
                for (size_t x = 0; i == 0 && x < m->opt.n_extra; x++)
                        add_attachment(m, i, &SPEC_BIG, m->opt.extra_sizes[x], "AVAILABLE");
                if (i == 1) {
                        add_attachment(m, i, &SPEC_PENDING, 48213, "PENDING");
                        add_attachment(m, i, &SPEC_THREAT, 30977, "THREATS_FOUND");
                        add_attachment(m, i, &SPEC_INVALID, 12288, "VALIDATION_FAILED");
                }
        }

        if (related) {
                /* The earlier UBRN of referral 2's pathway: assessed, then onward-referred.
                 * Not on any worklist; the two reference each other. */
                size_t ri = n;
                struct referral *r = &m->referrals[ri];
                const struct referral *two = &m->referrals[2];
                *r = *two;
                r->att_first = r->att_count = 0;
                snprintf(r->ubrn, sizeof r->ubrn, "%012llu", (unsigned long long)UBRN_RELATED);
                r->worklisted = false;
                r->bare = false;
                r->state0 = 9; /* ASSESSMENT_RESULT */
                r->version0 = r->version = 2;
                r->referral_type = &REFERRAL_TYPES[0];
                r->comment_always = false;
                char uuid[40];
                uuid_format(h3(m->opt.seed, ri, 'R'), h3(m->opt.seed, ri, 'r'), uuid);
                snprintf(r->request_id, sizeof r->request_id, "r.%s", uuid);
                r->related = 2;
                m->referrals[2].related = ri;
                add_attachment(m, ri, &SPEC_RELATED, ordinary_size(h3(m->opt.seed, ri, 'S')), "AVAILABLE");
        }

        /* The spares, last, so that every other attachment keeps its number (and bytes). */
        m->spare_first = m->n_attachments;
        for (size_t sp = 0; sp < SPARE_ATTACHMENTS; sp++) {
                size_t serial = m->n_attachments;
                add_attachment(m, SIZE_MAX, &ATT_SPECS[(serial + m->opt.seed) % 8],
                               ordinary_size(h3(m->opt.seed, serial, 'S')), "AVAILABLE");
        }

        m->by_binary_id = calloc(m->n_attachments ? m->n_attachments : 1, sizeof *m->by_binary_id);
        if (!m->by_binary_id)
                return -ENOMEM;
        for (size_t a = 0; a < m->n_attachments; a++)
                m->by_binary_id[a] = &m->attachments[a];
        qsort(m->by_binary_id, m->n_attachments, sizeof *m->by_binary_id, by_binary_id_cmp);
        return 0;
}

size_t referral_related_more(const struct mock *m, const struct referral *r)
{
        return m->n_worklisted > 2 && r == &m->referrals[2] ? m->opt.related_more : 0;
}

void mock_free(struct mock *m)
{
        for (size_t i = 0; m->attachments && i < m->n_attachments; i++)
                free(m->attachments[i].given_id);
        free(m->services);
        free(m->referrals);
        free(m->attachments);
        free(m->by_binary_id);
        m->services = NULL;
        m->referrals = NULL;
        m->attachments = NULL;
        m->by_binary_id = NULL;
}

/* ---- look-ups --------------------------------------------------------------- */

struct referral *mock_find_referral(struct mock *m, const char *ubrn)
{
        if (strlen(ubrn) != 12 || strspn(ubrn, "0123456789") != 12)
                return NULL;
        unsigned long long u = strtoull(ubrn, NULL, 10);
        if (u >= UBRN_FIRST && u - UBRN_FIRST < m->n_worklisted)
                return &m->referrals[u - UBRN_FIRST];
        if (u == UBRN_RELATED && m->n_referrals > m->n_worklisted)
                return &m->referrals[m->n_worklisted];
        return NULL;
}

struct attachment *mock_find_binary(struct mock *m, const char *binary_id)
{
        size_t lo = 0, hi = m->n_attachments;

        while (lo < hi) {
                size_t mid = lo + (hi - lo) / 2;
                int c = strcmp(binary_id, m->by_binary_id[mid]->binary_id);
                if (c == 0)
                        return m->by_binary_id[mid];
                if (c < 0)
                        hi = mid;
                else
                        lo = mid + 1;
        }
        return NULL;
}

/* By e-RS attachment id, or failing that by binary id. */
const char *attachment_id(const struct attachment *a)
{
        return a->given_id ? a->given_id : a->id;
}

struct attachment *mock_find_attachment(struct mock *m, const char *id)
{
        if (*id && strlen(id) < 20 && strspn(id, "0123456789") == strlen(id)) {
                unsigned long long v = strtoull(id, NULL, 10);
                if (v >= ATTACHMENT_ID_FIRST && v - ATTACHMENT_ID_FIRST < m->n_attachments)
                        return &m->attachments[v - ATTACHMENT_ID_FIRST];
        }
        return mock_find_binary(m, id);
}

/* ---- views ------------------------------------------------------------------ */

int view_take_locked(const struct mock *m, const struct referral *r, int64_t version,
                     struct referral_view *ret)
{
        struct referral_view v = { .r = r };

        v.version = version > 0 ? version : r->version;
        v.state = version > 0 ? state_at_version(r, version) : state_after(r, r->bumps);
        size_t total = referral_attachments(r);
        if (total) {
                v.availability = malloc(total * sizeof *v.availability);
                v.att = malloc(total * sizeof *v.att);
                if (!v.availability || !v.att) {
                        view_release(&v);
                        return -ENOMEM;
                }
                for (size_t k = 0; k < total; k++) {
                        size_t idx = referral_attachment(r, k);
                        if (m->attachments[idx].removed)
                                continue;
                        v.att[v.n_att] = idx;
                        memcpy(v.availability[v.n_att++], m->attachments[idx].availability, AVAILABILITY_LEN);
                }
        }
        *ret = v;
        return 0;
}

void view_release(struct referral_view *v)
{
        if (!v)
                return;
        free(v->availability);
        free(v->att);
        v->availability = NULL;
        v->att = NULL;
        v->n_att = 0;
}

size_t referral_attachments(const struct referral *r)
{
        return r->att_count + r->n_extra;
}

size_t referral_attachment(const struct referral *r, size_t k)
{
        return k < r->att_count ? r->att_first + k : r->extra[k - r->att_count];
}

static const struct code *next_priority(const struct code *p)
{
        for (size_t i = 0; i < sizeof PRIORITIES / sizeof PRIORITIES[0]; i++)
                if (p == &PRIORITIES[i])
                        return &PRIORITIES[(i + 1) % (sizeof PRIORITIES / sizeof PRIORITIES[0])];
        return &PRIORITIES[0];
}

/* The attachment of r with e-RS id `id` (removed ones included), or NULL. */
static struct attachment *referral_find_attachment(struct mock *m, const struct referral *r, const char *id)
{
        for (size_t k = 0; id && k < referral_attachments(r); k++) {
                struct attachment *a = &m->attachments[referral_attachment(r, k)];
                if (strcmp(attachment_id(a), id) == 0)
                        return a;
        }
        return NULL;
}

int mock_change_locked(struct mock *m, struct referral *r, const char *what, const char *attachment_id,
                       const char **ret_why)
{
        struct attachment *a = NULL;

        if (strcmp(what, "entry_bad_version") == 0 || strcmp(what, "entry_bad_reference") == 0 ||
            strcmp(what, "entry_good") == 0) {
                r->entry_fault = strcmp(what, "entry_good") == 0          ? ENTRY_GOOD
                                 : strcmp(what, "entry_bad_version") == 0 ? ENTRY_BAD_VERSION
                                                                          : ENTRY_BAD_REFERENCE;
                return 0; /* the referral did not change, its worklist entry did */
        }
        if (strcmp(what, "delist") == 0 || strcmp(what, "relist") == 0 || strcmp(what, "gone") == 0) {
                if (!r->worklisted) {
                        *ret_why = "that referral is on no worklist";
                        return -EINVAL;
                }
                r->delisted = strcmp(what, "delist") == 0;
                r->gone = strcmp(what, "gone") == 0;
                return 0; /* no new version: the referral itself did not change */
        }
        if (strcmp(what, "priority") == 0) {
                r->priority = next_priority(r->priority);
        } else if (strcmp(what, "appointment") == 0) {
                /* a week later: "2025-…T…" strings of the same shape */
                struct tm tm = { 0 };
                char *start[] = { r->appointment_start, r->appointment_end };
                for (int i = 0; i < 2; i++) {
                        const char *rest = strptime(start[i], "%Y-%m-%dT%H:%M:%S", &tm);
                        if (!rest) {
                                *ret_why = "that referral has no appointment time to move";
                                return -EINVAL;
                        }
                        char tail[16];
                        snprintf(tail, sizeof tail, "%s", rest);
                        time_t t = timegm(&tm) + 7 * 86400;
                        gmtime_r(&t, &tm);
                        char head[24];
                        strftime(head, sizeof head, "%Y-%m-%dT%H:%M:%S", &tm);
                        snprintf(start[i], sizeof r->appointment_start, "%.19s%.12s", head, tail);
                }
        } else if (strcmp(what, "attachment_added") == 0) {
                if (r->n_extra == MAX_EXTRA_ATTACHMENTS || m->spares_used == SPARE_ATTACHMENTS) {
                        *ret_why = "no spare attachment left";
                        return -ENOSPC;
                }
                if (attachment_id && (!*attachment_id || strlen(attachment_id) > GIVEN_ID_MAX)) {
                        *ret_why = "attachment= must be 1 to 1024 bytes";
                        return -EINVAL;
                }
                size_t idx = m->spare_first + m->spares_used;
                if (attachment_id && !(m->attachments[idx].given_id = strdup(attachment_id))) {
                        *ret_why = "out of memory";
                        return -EINVAL;
                }
                m->spares_used++;
                m->attachments[idx].referral = (size_t)(r - m->referrals);
                r->extra[r->n_extra++] = idx;
        } else if (strcmp(what, "attachment_removed") == 0 || strcmp(what, "attachment_revised") == 0 ||
                   strcmp(what, "attachment_id_dropped") == 0 || strcmp(what, "attachment_content_dropped") == 0) {
                a = referral_find_attachment(m, r, attachment_id);
                if (!a || a->removed) {
                        *ret_why = "attachment= must name a listed attachment of that referral";
                        return -EINVAL;
                }
                if (strcmp(what, "attachment_removed") == 0) {
                        a->removed = true;
                } else if (strcmp(what, "attachment_id_dropped") == 0) {
                        a->id_dropped = true; /* an answer e-RS should never give */
                } else if (strcmp(what, "attachment_content_dropped") == 0) {
                        a->content_dropped = true; /* nor this: no content[0].attachment */
                } else {
                        /* New bytes under the same id: another content key, another size,
                         * a new creation time. */
                        a->revision++;
                        a->key = mix64(a->key ^ 0x5245564953494f4eULL);
                        a->size = a->size + 1000 + a->revision;
                        a->declared_size = a->size;
                        a->sha_known = false;
                        snprintf(a->creation, sizeof a->creation, "2025-06-%02uT10:00:00.000Z",
                                 1 + a->revision % 28);
                }
        } else {
                *ret_why = "what= must be priority, appointment, attachment_added, attachment_removed, "
                           "attachment_revised, attachment_id_dropped, attachment_content_dropped, delist, relist, "
                           "gone, entry_bad_version, "
                           "entry_bad_reference or entry_good";
                return -EINVAL;
        }
        r->version++;
        return 0;
}

/* ---- content ---------------------------------------------------------------- */

static const unsigned char MAGIC_PDF[] = "%PDF-1.4\n%\xe2\xe3\xcf\xd3\n";
static const unsigned char MAGIC_JPEG[] = "\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01";
static const unsigned char MAGIC_PNG[] = "\x89PNG\r\n\x1a\n";
static const unsigned char MAGIC_DOCX[] = "PK\x03\x04\x14\x00\x06\x00";
static const unsigned char MAGIC_TEXT[] = "Synthetic attachment for the mock e-RS.\n";
static const unsigned char MAGIC_RTF[] = "{\\rtf1\\ansi ";
static const unsigned char MAGIC_TIFF[] = "II*\x00\x08\x00\x00\x00";

static void magic_of(enum content_kind kind, const unsigned char **ret_p, size_t *ret_n)
{
#define M(x) *ret_p = x, *ret_n = sizeof x - 1
        switch (kind) {
        case KIND_PDF: M(MAGIC_PDF); break;
        case KIND_JPEG: M(MAGIC_JPEG); break;
        case KIND_PNG: M(MAGIC_PNG); break;
        case KIND_DOCX: M(MAGIC_DOCX); break;
        case KIND_TEXT: M(MAGIC_TEXT); break;
        case KIND_RTF: M(MAGIC_RTF); break;
        case KIND_TIFF: M(MAGIC_TIFF); break;
        default: *ret_p = NULL, *ret_n = 0; break;
        }
#undef M
}

static const char TEXT_CHARS[64] = "abcdefghijklmnopqrstuvwxyz ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789\n";

/* Bytes [pos, pos+len) of attachment a: its magic, then 64-bit words
 * mix64(key + word index * golden), mapped to text for text kinds. */
void attachment_fill(const struct attachment *a, uint64_t pos, unsigned char *buf, size_t len)
{
        const unsigned char *magic;
        size_t magic_len, done = 0;

        magic_of(a->kind, &magic, &magic_len);
        while (done < len && pos + done < magic_len) {
                buf[done] = magic[pos + done];
                done++;
        }
        size_t body_from = done;
        stream_fill(a->key, pos + done, buf + done, len - done);
        if (a->kind == KIND_TEXT || a->kind == KIND_RTF)
                for (size_t i = body_from; i < len; i++)
                        buf[i] = (unsigned char)TEXT_CHARS[buf[i] & 63];
}

void sha256_hex(const unsigned char sha[32], char hex[65])
{
        static const char digits[] = "0123456789abcdef";
        for (int i = 0; i < 32; i++) {
                hex[2 * i] = digits[sha[i] >> 4];
                hex[2 * i + 1] = digits[sha[i] & 15];
        }
        hex[64] = '\0';
}

void sha256_buf(const void *p, size_t len, unsigned char out[32])
{
        unsigned int n = 32;
        if (!EVP_Digest(p, len, out, &n, EVP_sha256(), NULL))
                memset(out, 0, 32);
}

static void attachment_sha256(const struct attachment *a, unsigned char out[32])
{
        enum { CHUNK = 1 << 18 };
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned char *chunk = malloc(CHUNK);
        bool ok = ctx && chunk && EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);

        for (uint64_t pos = 0; ok && pos < a->size;) {
                size_t n = a->size - pos < CHUNK ? (size_t)(a->size - pos) : CHUNK;
                attachment_fill(a, pos, chunk, n);
                ok = EVP_DigestUpdate(ctx, chunk, n);
                pos += n;
        }
        if (!ok || !EVP_DigestFinal_ex(ctx, out, NULL))
                memset(out, 0, 32);
        free(chunk);
        EVP_MD_CTX_free(ctx);
}

struct hash_job {
        struct mock *m;
        struct attachment **list;
        size_t n;
        atomic_size_t next;
};

static void *hash_worker(void *arg)
{
        struct hash_job *job = arg;

        for (;;) {
                size_t i = atomic_fetch_add(&job->next, 1);
                if (i >= job->n)
                        return NULL;
                unsigned char sha[32];
                attachment_sha256(job->list[i], sha);
                pthread_mutex_lock(&job->m->lock);
                memcpy(job->list[i]->sha256, sha, 32);
                job->list[i]->sha_known = true;
                pthread_mutex_unlock(&job->m->lock);
        }
}

/* Computes (on a few threads) the SHA-256 of the attachments in `list`; call
 * without the lock.  The content never changes, so the result is cached. */
void mock_hash_attachments(struct mock *m, struct attachment **list, size_t n)
{
        struct hash_job job = { .m = m, .list = list, .n = n };
        pthread_t threads[8];
        size_t started = 0;
        long cpus = sysconf(_SC_NPROCESSORS_ONLN);
        size_t want = cpus > 1 ? (size_t)cpus : 1;

        atomic_init(&job.next, 0);
        if (want > 8)
                want = 8;
        if (want > n)
                want = n;
        for (; started + 1 < want; started++)
                if (pthread_create(&threads[started], NULL, hash_worker, &job) != 0)
                        break;
        hash_worker(&job);
        for (size_t t = 0; t < started; t++)
                pthread_join(threads[t], NULL);
}

/* ---- the CRI (A007) ---------------------------------------------------------- */

static void pdf_text_line(struct buf *b, const char *s)
{
        buf_append(b, "(", 1);
        for (; *s; s++) {
                if (*s == '(' || *s == ')' || *s == '\\')
                        buf_append(b, "\\", 1);
                buf_append(b, s, 1);
        }
        buf_append(b, ") Tj T*\n", 8);
}

char *cri_render(const struct mock *m, const struct referral *r, int64_t version, int state, size_t *ret_len)
{
        struct buf content = { 0 }, doc = { 0 };
        char line[256];

        buf_printf(&content, "BT /F1 11 Tf 56 780 Td 15 TL\n");
        pdf_text_line(&content, "Clinical Referral Information (synthetic, mock e-RS)");
        snprintf(line, sizeof line, "UBRN %s, version %lld", r->ubrn, (long long)version);
        pdf_text_line(&content, line);
        snprintf(line, sizeof line, "Priority: %s. Specialty: %s.", r->priority->code, r->specialty->display);
        pdf_text_line(&content, line);
        snprintf(line, sizeof line, "State: %s.", STATES[state].code);
        pdf_text_line(&content, line);
        snprintf(line, sizeof line, "Service: %s.", m->services[r->service].name);
        pdf_text_line(&content, line);
        snprintf(line, sizeof line, "Pathway start: %s.", r->pathway_start[0] ? r->pathway_start : "not recorded");
        pdf_text_line(&content, line);
        pdf_text_line(&content, "Reason for referral: synthetic history text for testing only.");
        buf_printf(&content, "ET");

        buf_printf(&doc, "%%PDF-1.4\n%%\xe2\xe3\xcf\xd3\n");
        buf_printf(&doc, "1 0 obj\n<< /Type /Catalog /Pages 2 0 R >>\nendobj\n");
        buf_printf(&doc, "2 0 obj\n<< /Type /Pages /Kids [3 0 R] /Count 1 >>\nendobj\n");
        buf_printf(&doc, "3 0 obj\n<< /Type /Page /Parent 2 0 R /MediaBox [0 0 595 842] "
                         "/Resources << /Font << /F1 5 0 R >> >> /Contents 4 0 R >>\nendobj\n");
        buf_printf(&doc, "4 0 obj\n<< /Length %zu >>\nstream\n", content.len);
        buf_append(&doc, content.p, content.len);
        buf_printf(&doc, "\nendstream\nendobj\n");
        buf_printf(&doc, "5 0 obj\n<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>\nendobj\n");
        buf_printf(&doc, "trailer\n<< /Root 1 0 R >>\n%%%%EOF\n");
        free(content.p);
        if (content.oom || doc.oom) {
                free(doc.p);
                return NULL;
        }
        *ret_len = doc.len;
        return doc.p;
}
