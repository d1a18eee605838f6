/* SPDX-License-Identifier: MIT */
/*
 * World mode: the mock serves exactly the world a test describes in a JSON
 * file of our own (README.md, "World mode"), instead of the synthetic data
 * derived from the seed.  A test generates worlds and their histories and
 * loads each with POST /_mock/world?file=PATH between two runs of ersd.
 *
 * Every value of a referral, its worklist entry and its attachments is
 * rendered as the file gives it: a string byte for byte (a NUL included),
 * any other JSON value as it is (a number where a string belongs, an object
 * where a code belongs), absent or null as an element left out.  Only what
 * the mock itself needs is checked: the UBRN (12 digits, the key of A005 and
 * A007), the version, and each document's binary id and content (seed and
 * size, streamed as stream.h says: nothing large is ever held).
 *
 * Documents are served through the same `struct attachment` and streaming
 * path as the synthetic data (server.c), so the store, its tokens and every
 * fault behave the same.  A world is never changed once loaded and never
 * freed before the mock exits: whatever a handler took from one stays
 * valid while the next one is served.
 *
 * The kill point (POST /_mock/killpoint) lives here too: it lets a test stop
 * or kill ersd at an exact request, so a run replays from its seed.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "mock.h"
#include "stream.h"

#define BINARY_ID_MAX 39 /* struct attachment.binary_id holds 39 characters */
#define PROFILE_REFERRAL SD "eRS-ReferralRequest-1"

struct world_referral {
        const char *ubrn;         /* in root */
        json_object *o;           /* its object in root */
        bool gone;                /* A005 and A007 answer 404; on no worklist */
        int64_t version;
        bool has_letter;
        struct attachment letter; /* A007 */
};

struct world {
        json_object *root;               /* owned: the file as parsed; the rest points into it */
        struct world_referral *refs;     /* owned, sorted by UBRN */
        size_t n_refs;
        struct attachment *blobs;        /* owned: every attachment of every referral */
        size_t n_blobs;
        struct attachment **by_binary;   /* owned: blobs sorted by binary id */
        struct world *older;             /* owned: the world this one replaced */
        char answers[PATH_MAX];          /* "<file>.answers": every A005 answer rendered, a line each */
};

/*
 * What the write-backs did to the world's referrals (A028, A013 in world mode,
 * writeback.c): by UBRN, kept across worlds, under mock.lock.  A referral is
 * served at its file's version + `bumps`; the state and priority a write set
 * are served while the file still gives the version they were set at (`at`):
 * a world that gives a new version is e-RS changing the referral again.
 */
struct applied {
        char ubrn[13];
        int64_t bumps;    /* writes applied */
        int64_t at;       /* the file's version at the last one */
        char state[40];   /* the state it set; "" none */
        char priority[24]; /* the priority it set; "" none */
};

static struct {
        struct applied *v;
        size_t n, cap;
} applied;

/* The letters of versions a write made (A007): mix64(UBRN x 1000003 + version), as the worlds'
 * own letters are made; kept until exit like the worlds (a transfer may still stream one). */
struct written_letter {
        struct attachment a;
        char ubrn[13];
        int64_t version;
        struct written_letter *next;
};
static struct written_letter *written_letters; /* under mock.lock */

static struct applied *applied_find_locked(const char *ubrn, bool add)
{
        for (size_t i = 0; i < applied.n; i++)
                if (strcmp(applied.v[i].ubrn, ubrn) == 0)
                        return &applied.v[i];
        if (!add)
                return NULL;
        if (applied.n == applied.cap) {
                size_t cap = applied.cap ? 2 * applied.cap : 16;
                struct applied *n = realloc(applied.v, cap * sizeof *n);
                if (!n)
                        return NULL;
                applied.v = n;
                applied.cap = cap;
        }
        struct applied *a = &applied.v[applied.n++];
        memset(a, 0, sizeof *a);
        snprintf(a->ubrn, sizeof a->ubrn, "%s", ubrn);
        return a;
}

/* A referral as served now: its version, and the state and priority a write set ("" none). */
struct served {
        int64_t version;
        char state[40];
        char priority[24];
};

static void served_locked(const struct world_referral *r, struct served *s)
{
        const struct applied *a = applied_find_locked(r->ubrn, false);

        memset(s, 0, sizeof *s);
        s->version = r->version + (a ? a->bumps : 0);
        if (a && a->at == r->version) {
                memcpy(s->state, a->state, sizeof s->state);
                memcpy(s->priority, a->priority, sizeof s->priority);
        }
}

/* ---- reading the file ------------------------------------------------------------ */

static json_object *member(json_object *o, const char *key)
{
        json_object *v = NULL;

        if (!json_object_is_type(o, json_type_object) || !json_object_object_get_ex(o, key, &v) ||
            json_object_is_type(v, json_type_null))
                return NULL;
        return v;
}

/* A member that is a string without a NUL (what the mock itself uses), else NULL. */
static const char *member_str(json_object *o, const char *key)
{
        json_object *v = member(o, key);

        if (!json_object_is_type(v, json_type_string))
                return NULL;
        const char *s = json_object_get_string(v);
        return strlen(s) == (size_t)json_object_get_string_len(v) ? s : NULL;
}

static bool member_int(json_object *o, const char *key, int64_t *ret)
{
        json_object *v = member(o, key);

        if (!json_object_is_type(v, json_type_int))
                return false;
        *ret = json_object_get_int64(v);
        return true;
}

static bool member_true(json_object *o, const char *key)
{
        json_object *v = member(o, key);
        return json_object_is_type(v, json_type_boolean) && json_object_get_boolean(v);
}

/* A copy of o[key] for a rendered answer (NULL when absent or null): a string
 * byte for byte, anything else as it is.  Reads only: worlds are shared by
 * the server's threads. */
/* A copy of v (a string byte for byte, a NUL included); NULL for JSON null. */
static json_object *copy_of(json_object *v)
{
        json_object *copy = NULL;

        if (!v)
                return NULL;
        if (json_object_is_type(v, json_type_string))
                return json_object_new_string_len(json_object_get_string(v), json_object_get_string_len(v));
        if (json_object_deep_copy(v, &copy, NULL) < 0)
                return NULL;
        return copy;
}

static json_object *value(json_object *o, const char *key)
{
        return copy_of(member(o, key));
}

static bool fhir_id(const char *s)
{
        size_t n = s ? strlen(s) : 0;
        return n > 0 && n <= BINARY_ID_MAX &&
               strspn(s, "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-.") == n;
}

/* A document's content: {"seed": S, "bytes": N}. */
static int blob_init(struct attachment *a, json_object *o, const char *ubrn)
{
        int64_t seed, bytes;

        if (!member_int(o, "seed", &seed) || !member_int(o, "bytes", &bytes) || bytes < 0)
                return -EINVAL;
        memset(a, 0, sizeof *a);
        a->kind = KIND_RAW;
        a->key = (uint64_t)seed;
        a->size = (uint64_t)bytes;
        a->owner = ubrn;
        a->content_type = "application/octet-stream";
        return 0;
}

static int by_ubrn(const void *a, const void *b)
{
        return strcmp(((const struct world_referral *)a)->ubrn, ((const struct world_referral *)b)->ubrn);
}

static int by_binary_id(const void *a, const void *b)
{
        return strcmp((*(struct attachment *const *)a)->binary_id, (*(struct attachment *const *)b)->binary_id);
}

static void world_destroy(struct world *w)
{
        while (w) {
                struct world *older = w->older;
                json_object_put(w->root);
                free(w->refs);
                free(w->blobs);
                free(w->by_binary);
                free(w);
                w = older;
        }
}

/* The attachment's availability as the store checks it (server.c): the code
 * when it fits, else a code that is not AVAILABLE. */
static void blob_availability(struct attachment *a, json_object *att)
{
        const char *code = member_str(att, "availability");

        snprintf(a->availability, sizeof a->availability, "%s",
                 !code ? "(none)" : strlen(code) < sizeof a->availability ? code : "(long code)");
}

/* The content type the store serves a file with: the one A005 declares when it
 * can be a header value, else application/octet-stream. */
static void blob_content_type(struct attachment *a, json_object *att)
{
        const char *t = member_str(att, "content_type");

        if (!t || !*t || strlen(t) > 200)
                return;
        for (const char *p = t; *p; p++)
                if ((unsigned char)*p < 0x20 || (unsigned char)*p >= 0x7f)
                        return;
        a->content_type = t;
}

static int world_parse(json_object *root, struct world *w, char *why, size_t n)
{
        json_object *refs = member(root, "referrals");
        size_t n_refs = json_object_is_type(refs, json_type_array) ? json_object_array_length(refs) : 0;
        size_t n_blobs = 0;

        if (!json_object_is_type(refs, json_type_array)) {
                snprintf(why, n, "\"referrals\" must be an array");
                return -EINVAL;
        }
        for (size_t i = 0; i < n_refs; i++) {
                json_object *atts = member(json_object_array_get_idx(refs, i), "attachments");
                if (json_object_is_type(atts, json_type_array))
                        n_blobs += json_object_array_length(atts);
        }
        w->refs = calloc(n_refs ? n_refs : 1, sizeof *w->refs);
        w->blobs = calloc(n_blobs ? n_blobs : 1, sizeof *w->blobs);
        w->by_binary = calloc(n_blobs ? n_blobs : 1, sizeof *w->by_binary);
        if (!w->refs || !w->blobs || !w->by_binary) {
                snprintf(why, n, "out of memory");
                return -ENOMEM;
        }
        for (size_t i = 0; i < n_refs; i++) {
                json_object *o = json_object_array_get_idx(refs, i);
                struct world_referral *r = &w->refs[w->n_refs];
                json_object *atts = member(o, "attachments"), *letter = member(o, "letter");

                r->o = o;
                r->ubrn = member_str(o, "ubrn");
                if (!r->ubrn || strlen(r->ubrn) != 12 || strspn(r->ubrn, "0123456789") != 12) {
                        snprintf(why, n, "referrals[%zu]: \"ubrn\" must be 12 digits", i);
                        return -EINVAL;
                }
                if (!member_int(o, "version", &r->version)) {
                        snprintf(why, n, "referrals[%zu]: \"version\" must be an integer", i);
                        return -EINVAL;
                }
                r->gone = member_true(o, "gone");
                if (letter) {
                        if (blob_init(&r->letter, letter, r->ubrn) < 0) {
                                snprintf(why, n, "referrals[%zu]: \"letter\" needs \"seed\" and \"bytes\" >= 0", i);
                                return -EINVAL;
                        }
                        snprintf(r->letter.availability, sizeof r->letter.availability, "AVAILABLE");
                        r->letter.content_type = "application/pdf";
                        r->has_letter = true;
                }
                if (atts && !json_object_is_type(atts, json_type_array)) {
                        snprintf(why, n, "referrals[%zu]: \"attachments\" must be an array", i);
                        return -EINVAL;
                }
                for (size_t k = 0; atts && k < json_object_array_length(atts); k++) {
                        json_object *att = json_object_array_get_idx(atts, k);
                        struct attachment *a = &w->blobs[w->n_blobs];
                        const char *binary = member_str(att, "binary");
                        if (!fhir_id(binary) || blob_init(a, att, r->ubrn) < 0) {
                                snprintf(why, n, "referrals[%zu].attachments[%zu]: needs \"binary\" (1..%d of "
                                                 "[A-Za-z0-9.-]), \"seed\" and \"bytes\" >= 0",
                                         i, k, BINARY_ID_MAX);
                                return -EINVAL;
                        }
                        memcpy(a->binary_id, binary, strlen(binary) + 1);
                        blob_availability(a, att);
                        blob_content_type(a, att);
                        w->by_binary[w->n_blobs++] = a;
                }
                w->n_refs++;
        }
        qsort(w->refs, w->n_refs, sizeof *w->refs, by_ubrn);
        for (size_t i = 1; i < w->n_refs; i++)
                if (strcmp(w->refs[i - 1].ubrn, w->refs[i].ubrn) == 0) {
                        snprintf(why, n, "UBRN %s is in the world twice", w->refs[i].ubrn);
                        return -EINVAL;
                }
        qsort(w->by_binary, w->n_blobs, sizeof *w->by_binary, by_binary_id);
        for (size_t i = 1; i < w->n_blobs; i++)
                if (strcmp(w->by_binary[i - 1]->binary_id, w->by_binary[i]->binary_id) == 0) {
                        snprintf(why, n, "binary id %s is in the world twice", w->by_binary[i]->binary_id);
                        return -EINVAL;
                }
        return 0;
}

int world_load(struct mock *m, const char *path, char *why, size_t why_len)
{
        struct world *w = calloc(1, sizeof *w);
        int r;

        if (!w) {
                snprintf(why, why_len, "out of memory");
                return -ENOMEM;
        }
        w->root = json_object_from_file(path);
        if (!w->root) {
                snprintf(why, why_len, "cannot read a JSON world from that file: %s", json_util_get_last_err());
                free(w);
                return -EINVAL;
        }
        r = world_parse(w->root, w, why, why_len);
        if (r < 0) {
                world_destroy(w);
                return r;
        }
        if ((size_t)snprintf(w->answers, sizeof w->answers, "%s.answers", path) >= sizeof w->answers)
                w->answers[0] = '\0';
        pthread_mutex_lock(&m->lock);
        w->older = m->world;
        m->world = w;
        pthread_mutex_unlock(&m->lock);
        return 0;
}

void world_free(struct mock *m)
{
        pthread_mutex_lock(&m->lock);
        struct world *w = m->world;
        m->world = NULL;
        free(applied.v);
        applied.v = NULL;
        applied.n = applied.cap = 0;
        while (written_letters) {
                struct written_letter *l = written_letters;
                written_letters = l->next;
                free(l);
        }
        pthread_mutex_unlock(&m->lock);
        world_destroy(w);
}

static struct world *current(struct mock *m)
{
        pthread_mutex_lock(&m->lock);
        struct world *w = m->world;
        pthread_mutex_unlock(&m->lock);
        return w;
}

bool world_mode(struct mock *m)
{
        return current(m) != NULL;
}

static struct world_referral *find_referral(struct world *w, const char *ubrn)
{
        struct world_referral key = { .ubrn = ubrn };

        if (!w)
                return NULL;
        return bsearch(&key, w->refs, w->n_refs, sizeof *w->refs, by_ubrn);
}

int world_referral_check(struct mock *m, const char *ubrn, int64_t version)
{
        struct world_referral *r = find_referral(current(m), ubrn);
        struct served s;

        if (!r || r->gone)
                return -ENOENT;
        pthread_mutex_lock(&m->lock);
        served_locked(r, &s);
        pthread_mutex_unlock(&m->lock);
        if (version != 0 && version != s.version)
                return -ESRCH; /* a world has no history */
        return 0;
}

bool world_wb_view_locked(struct mock *m, const char *ubrn, int64_t *ret_version, char *state, size_t n)
{
        struct world_referral *r = find_referral(m->world, ubrn);
        struct served s;

        if (!r || r->gone)
                return false;
        served_locked(r, &s);
        const char *code = s.state[0] ? s.state : member_str(r->o, "state");
        snprintf(state, n, "%s", code ? code : "");
        *ret_version = s.version;
        return true;
}

void world_wb_apply_locked(struct mock *m, const char *ubrn, const char *state, const char *priority)
{
        struct world_referral *r = find_referral(m->world, ubrn);
        struct applied *a = r ? applied_find_locked(ubrn, true) : NULL;

        if (!a)
                return;
        if (a->at != r->version) /* what an earlier write set, the file has changed since */
                a->state[0] = a->priority[0] = '\0';
        a->bumps++;
        a->at = r->version;
        if (state)
                snprintf(a->state, sizeof a->state, "%s", state);
        if (priority)
                snprintf(a->priority, sizeof a->priority, "%s", priority);
}

json_object *world_applied_json(struct mock *m)
{
        json_object *o = json_object_new_object(), *list = json_object_new_array();

        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < applied.n; i++) {
                const struct applied *a = &applied.v[i];
                json_object *e = json_object_new_object();
                json_object_object_add(e, "ubrn", json_object_new_string(a->ubrn));
                json_object_object_add(e, "bumps", json_object_new_int64(a->bumps));
                json_object_object_add(e, "at", json_object_new_int64(a->at));
                json_object_object_add(e, "state", a->state[0] ? json_object_new_string(a->state) : NULL);
                json_object_object_add(e, "priority", a->priority[0] ? json_object_new_string(a->priority) : NULL);
                json_object_array_add(list, e);
        }
        pthread_mutex_unlock(&m->lock);
        json_object_object_add(o, "referrals", list);
        return o;
}

struct attachment *world_find_binary(struct mock *m, const char *binary_id)
{
        struct world *w = current(m);
        struct attachment key, *kp = &key;

        if (!w || strlen(binary_id) > BINARY_ID_MAX)
                return NULL;
        memcpy(key.binary_id, binary_id, strlen(binary_id) + 1);
        struct attachment **found = bsearch(&kp, w->by_binary, w->n_blobs, sizeof *w->by_binary, by_binary_id);
        return found ? *found : NULL;
}

const struct attachment *world_letter(struct mock *m, const char *ubrn)
{
        struct world_referral *r = find_referral(current(m), ubrn);
        struct written_letter *l;
        struct served s;

        if (!r || r->gone || !r->has_letter)
                return NULL;
        pthread_mutex_lock(&m->lock);
        served_locked(r, &s);
        for (l = written_letters; s.version != r->version && l; l = l->next)
                if (l->version == s.version && strcmp(l->ubrn, r->ubrn) == 0)
                        break;
        if (s.version != r->version && !l && (l = calloc(1, sizeof *l))) {
                l->a = r->letter;
                l->a.key = stream_mix64(strtoull(r->ubrn, NULL, 10) * 1000003ULL + (uint64_t)s.version);
                snprintf(l->ubrn, sizeof l->ubrn, "%s", r->ubrn);
                l->version = s.version;
                l->next = written_letters;
                written_letters = l;
        }
        pthread_mutex_unlock(&m->lock);
        return s.version == r->version ? &r->letter : l ? &l->a : NULL;
}

/* ---- A005 --------------------------------------------------------------------------- */

/* {"system": system, "code": code, "display": display}, the values taken (may be NULL). */
static json_object *coding(const char *system, json_object *code, json_object *display)
{
        json_object *c = json_object_new_object();

        fhir_put(c, "system", json_object_new_string(system));
        if (code)
                fhir_put(c, "code", code);
        if (display)
                fhir_put(c, "display", display);
        return c;
}

static json_object *codeable(json_object *c)
{
        json_object *o = json_object_new_object();
        fhir_put(o, "coding", fhir_arr1(c));
        return o;
}

static json_object *identifier(const char *system, json_object *v)
{
        json_object *o = json_object_new_object();

        fhir_put(o, "system", json_object_new_string(system));
        if (v)
                fhir_put(o, "value", v);
        return o;
}

static json_object *reference(const char *ref)
{
        json_object *o = json_object_new_object();
        fhir_put(o, "reference", json_object_new_string(ref));
        return o;
}

/* A service as an actor: its identifier and display, from o's id_key and name_key. */
static json_object *service_actor(json_object *o, const char *id_key, const char *name_key)
{
        json_object *actor = json_object_new_object(), *id = value(o, id_key), *name = value(o, name_key);

        if (id)
                fhir_put(actor, "identifier", identifier(SYS_SERVICE, id));
        if (name)
                fhir_put(actor, "display", name);
        return actor;
}

/* Adds ext(url, key, v) to exts when v is there. */
static void ext_if(json_object *exts, const char *url, const char *value_key, json_object *v)
{
        if (v)
                json_object_array_add(exts, fhir_ext(url, value_key, v));
}

static json_object *state_extension(json_object *o, const char *set)
{
        json_object *inner = json_object_new_array();
        json_object *state = set[0] ? json_object_new_string(set) : value(o, "state"), *reason = value(o, "state_reason"), *comment = value(o, "state_comment");

        if (state)
                json_object_array_add(inner, fhir_ext("state", "valueCoding",
                                                      coding(SYS_STATE, state, value(o, "state_display"))));
        if (reason)
                json_object_array_add(inner, fhir_ext("reason", "valueCoding",
                                                      coding(CS "eRS-ReviewReason-1", reason, NULL)));
        if (comment)
                json_object_array_add(inner, fhir_ext("comments", "valueString", comment));
        json_object *e = fhir_ext(SD "Extension-eRS-ReferralState-1", NULL, NULL);
        fhir_put(e, "extension", inner);
        return e;
}

/* A referral's additional requirements, as the published examples carry them: one extension each, its
 * "type" coding and its "comments" nested, the values as the world gives them. */
static void requirements(json_object *exts, json_object *reqs)
{
        for (size_t i = 0; json_object_is_type(reqs, json_type_array) && i < json_object_array_length(reqs); i++) {
                json_object *q = json_object_array_get_idx(reqs, i), *inner = json_object_new_array();
                json_object *code = value(q, "code"), *display = value(q, "display"), *comments = value(q, "comments");

                if (code || display)
                        json_object_array_add(inner, fhir_ext("type", "valueCoding",
                                                              coding(CS "eRS-AdditionalRequirementType-1", code,
                                                                     display)));
                if (comments)
                        json_object_array_add(inner, fhir_ext("comments", "valueString", comments));
                json_object *e = fhir_ext(SD "Extension-eRS-AdditionalRequirement-1", NULL, NULL);
                fhir_put(e, "extension", inner);
                json_object_array_add(exts, e);
        }
}

/* Notes an A005 answer rendered, for the test to check the PAS kept exactly what was served: one line
 * "<ubrn> <version> <sha256> <bytes>" appended to the world's answers file (one write: whole lines
 * from any number of threads). */
static void answer_rendered(const struct world *w, const char *ubrn, int64_t version, const char *body, size_t len)
{
        unsigned char sha[32];
        char hex[65], line[128];
        int fd;

        if (!w->answers[0])
                return;
        sha256_buf(body, len, sha);
        sha256_hex(sha, hex);
        int n = snprintf(line, sizeof line, "%s %lld %s %zu\n", ubrn, (long long)version, hex, len);
        fd = open(w->answers, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
        if (fd < 0)
                return;
        if (write(fd, line, (size_t)n) != n)
                fprintf(stderr, "mock-ers: %s: cannot note an answer\n", w->answers);
        close(fd);
}

static json_object *appointment(json_object *a, const char *ubrn, int64_t version, json_object *nhs)
{
        json_object *o = json_object_new_object();
        json_object *participants = json_object_new_array(), *p, *start = value(a, "start"), *end = value(a, "end");
        char buf[96];

        fhir_put(o, "resourceType", json_object_new_string("Appointment"));
        fhir_put(o, "id", json_object_new_string("appointment"));
        fhir_put(o, "meta", fhir_meta(SD "eRS-Appointment-1", "1"));
        fhir_put(o, "status", json_object_new_string("booked"));
        if (start)
                fhir_put(o, "start", start);
        if (end)
                fhir_put(o, "end", end);
        snprintf(buf, sizeof buf, "ReferralRequest/%s/_history/%lld", ubrn, (long long)version);
        fhir_put(o, "incomingReferral", fhir_arr1(reference(buf)));
        p = json_object_new_object();
        fhir_put(p, "actor", service_actor(a, "service_id", "service_name"));
        fhir_put(p, "status", json_object_new_string("accepted"));
        json_object_array_add(participants, p);
        if (nhs) {
                json_object *patient = json_object_new_object();
                fhir_put(patient, "identifier", identifier(SYS_NHS_NUMBER, nhs));
                p = json_object_new_object();
                fhir_put(p, "actor", patient);
                fhir_put(p, "status", json_object_new_string("accepted"));
                json_object_array_add(participants, p);
        }
        fhir_put(o, "participant", participants);
        return o;
}

static json_object *shortlist(json_object *services)
{
        json_object *o = json_object_new_object(), *entries = json_object_new_array();

        fhir_put(o, "resourceType", json_object_new_string("List"));
        fhir_put(o, "id", json_object_new_string("shortlist"));
        fhir_put(o, "meta", fhir_meta(SD "eRS-Shortlist-List-1", NULL));
        fhir_put(o, "status", json_object_new_string("current"));
        fhir_put(o, "mode", json_object_new_string("snapshot"));
        for (size_t i = 0; i < json_object_array_length(services); i++) {
                json_object *e = json_object_new_object();
                fhir_put(e, "item", service_actor(json_object_array_get_idx(services, i), "id", "name"));
                json_object_array_add(entries, e);
        }
        fhir_put(o, "entry", entries);
        return o;
}

/* The contained DocumentReference of attachment k (its id "DocumentReference-a<k>":
 * an attachment id may be anything, or absent, or the same twice). */
static json_object *document_reference(json_object *att, size_t k)
{
        json_object *d = json_object_new_object(), *a = json_object_new_object();
        json_object *exts = json_object_new_array(), *content = json_object_new_object(), *v;
        char buf[96];

        fhir_put(d, "resourceType", json_object_new_string("DocumentReference"));
        snprintf(buf, sizeof buf, "DocumentReference-a%zu", k);
        fhir_put(d, "id", json_object_new_string(buf));
        fhir_put(d, "meta", fhir_meta(SD "eRS-DocumentReference-1", NULL));
        if ((v = value(att, "doc_type")))
                fhir_put(d, "type", codeable(coding(CS "eRS-AttachmentType-1", v, NULL)));
        fhir_put(d, "status", json_object_new_string("current"));
        if ((v = value(att, "indexed")))
                fhir_put(d, "indexed", v);
        if ((v = value(att, "description")))
                fhir_put(d, "description", v);

        if ((v = value(att, "id")))
                fhir_put(a, "id", v);
        if ((v = value(att, "availability")))
                json_object_array_add(exts, fhir_ext(SD "Extension-eRS-AvailabilityStatus-1", "valueCoding",
                                                     coding(CS "eRS-AvailabilityStatus-1", v, NULL)));
        if ((v = value(att, "attached_by_user"))) {
                json_object *who = json_object_new_object();
                fhir_put(who, "identifier", identifier(SYS_SDS_USER, v));
                json_object_array_add(exts, fhir_ext(SD "Extension-eRS-AttachedBy-1", "valueReference", who));
        }
        if ((v = value(att, "attached_by_org"))) {
                json_object *who = json_object_new_object();
                fhir_put(who, "identifier", identifier(SYS_ODS, v));
                json_object_array_add(exts, fhir_ext(SD "Extension-eRS-AttachedByOrganisation-1", "valueReference",
                                                     who));
        }
        fhir_put(a, "extension", exts);
        if ((v = value(att, "content_type")))
                fhir_put(a, "contentType", v);
        snprintf(buf, sizeof buf, "Binary/%s", member_str(att, "binary"));
        fhir_put(a, "url", json_object_new_string(buf));
        if ((v = value(att, "size")))
                fhir_put(a, "size", v);
        if ((v = value(att, "title")))
                fhir_put(a, "title", v);
        if ((v = value(att, "creation")))
                fhir_put(a, "creation", v);
        fhir_put(content, "attachment", a);
        fhir_put(d, "content", fhir_arr1(content));
        return d;
}

char *world_render_referral(struct mock *m, const char *ubrn, size_t *ret_len, int64_t *ret_version)
{
        struct world *w = current(m);
        struct world_referral *r = find_referral(w, ubrn);
        json_object *o, *exts, *contained, *support, *v, *x = NULL;
        char buf[160];

        if (!r)
                return NULL;
        struct served sv;
        pthread_mutex_lock(&m->lock);
        served_locked(r, &sv);
        pthread_mutex_unlock(&m->lock);
        x = r->o;
        o = json_object_new_object();
        exts = json_object_new_array();
        contained = json_object_new_array();
        support = json_object_new_array();
        fhir_put(o, "resourceType", json_object_new_string("ReferralRequest"));
        fhir_put(o, "id", json_object_new_string(r->ubrn));
        snprintf(buf, sizeof buf, "%lld", (long long)sv.version);
        fhir_put(o, "meta", fhir_meta(PROFILE_REFERRAL, buf));

        json_object *appt = member(x, "appointment"), *slist = member(x, "shortlist");
        if (appt)
                ext_if(exts, SD "Extension-eRS-Appointment-1", "valueReference", reference("#appointment"));
        ext_if(exts, SD "Extension-eRS-ClinicalInfoFirstSubmitted-1", "valueDateTime",
               value(x, "clinical_info_first_submitted"));
        ext_if(exts, SD "Extension-eRS-eReferralPathwayStart-1",
               member_true(x, "pathway_instant") ? "valueInstant" : "valueDateTime", value(x, "pathway_start"));
        if ((v = sv.priority[0] ? json_object_new_string(sv.priority) : value(x, "priority")))
                ext_if(exts, SD "Extension-eRS-ReferralPriority-1", "valueCodeableConcept",
                       codeable(coding(SYS_PRIORITY, v, sv.priority[0] ? NULL : value(x, "priority_display"))));
        if (json_object_is_type(slist, json_type_array))
                ext_if(exts, SD "Extension-eRS-ReferralShortlist-1", "valueReference", reference("#shortlist"));
        if ((v = value(x, "commissioning_org")))
                ext_if(exts, SD "Extension-eRS-Commissioning-Rule-Org-1", "valueIdentifier", identifier(SYS_ODS, v));
        json_object_array_add(exts, state_extension(x, sv.state));
        requirements(exts, member(x, "requirements"));
        fhir_put(o, "extension", exts);

        if (json_object_is_type(slist, json_type_array))
                json_object_array_add(contained, shortlist(slist));
        if (appt)
                json_object_array_add(contained, appointment(appt, r->ubrn, sv.version, value(x, "nhs_number")));
        json_object *atts = member(x, "attachments");
        for (size_t k = 0; json_object_is_type(atts, json_type_array) && k < json_object_array_length(atts); k++) {
                json_object_array_add(contained, document_reference(json_object_array_get_idx(atts, k), k));
                snprintf(buf, sizeof buf, "#DocumentReference-a%zu", k);
                json_object_array_add(support, reference(buf));
        }
        json_object *related = member(x, "related");
        for (size_t k = 0; json_object_is_type(related, json_type_array) && k < json_object_array_length(related);
             k++) {
                json_object *u = json_object_array_get_idx(related, k), *ref = json_object_new_object();
                if (json_object_is_type(u, json_type_string)) { /* a UBRN: a reference to it */
                        snprintf(buf, sizeof buf, "ReferralRequest/%.120s", json_object_get_string(u));
                        fhir_put(ref, "reference", json_object_new_string(buf));
                } else if (u) { /* anything else: the reference as given */
                        json_object *copy = NULL;
                        if (json_object_deep_copy(u, &copy, NULL) == 0)
                                fhir_put(ref, "reference", copy);
                }
                json_object_array_add(support, ref);
        }
        if (json_object_array_length(contained))
                fhir_put(o, "contained", contained);
        else
                json_object_put(contained);
        if ((v = value(x, "status")))
                fhir_put(o, "status", v);
        if ((v = value(x, "specialty"))) {
                json_object *spec = json_object_new_object();
                fhir_put(spec, "coding", fhir_arr1(coding(SYS_SPECIALTY, v, value(x, "specialty_display"))));
                fhir_put(o, "specialty", spec);
        }
        if ((v = value(x, "nhs_number"))) {
                json_object *subject = json_object_new_object();
                fhir_put(subject, "identifier", identifier(SYS_NHS_NUMBER, v));
                fhir_put(o, "subject", subject);
        }
        if (json_object_array_length(support))
                fhir_put(o, "supportingInfo", support);
        else
                json_object_put(support);
        if ((v = value(x, "intent")))
                fhir_put(o, "intent", v);
        if ((v = value(x, "request_id")))
                fhir_put(o, "identifier", fhir_arr1(identifier("https://fhir.nhs.uk/Id/ers-request-id", v)));
        *ret_version = sv.version;
        char *text = json_text(o, ret_len);
        if (text)
                answer_rendered(w, r->ubrn, sv.version, text, *ret_len);
        return text;
}

/* ---- A008 ----------------------------------------------------------------------------- */

/* An element of the entry's working state: one nested extension `url` for each
 * value of the entry's array `key` (in order; null left out), its value at
 * `value_key`, or a coding of `system` with that code. */
static void state_exts(json_object *item, json_object *entry, const char *key, const char *url, const char *value_key,
                       const char *system)
{
        json_object *values = member(entry, key);

        for (size_t i = 0; json_object_is_type(values, json_type_array) && i < json_object_array_length(values); i++) {
                json_object *v = copy_of(json_object_array_get_idx(values, i));
                if (v && system)
                        ext_if(item, url, "valueCodeableConcept", codeable(coding(system, v, NULL)));
                else
                        ext_if(item, url, value_key, v);
        }
}

static json_object *worklist_entry(json_object *entry, const char *ubrn, size_t patient, bool slot_issues,
                                   const struct served *sv, int64_t bumps)
{
        json_object *item = json_object_new_array(), *e = json_object_new_object(), *w, *v;
        char buf[64];
        int64_t version;

        if ((v = sv->priority[0] ? json_object_new_string(sv->priority) : value(entry, "priority")))
                ext_if(item, "priority", "valueCodeableConcept", codeable(coding(SYS_PRIORITY, v, NULL)));
        if ((v = value(entry, "specialty")))
                ext_if(item, "specialty", "valueCodeableConcept", codeable(coding(SYS_SPECIALTY, v, NULL)));
        if (member(entry, "nhs_number")) {
                snprintf(buf, sizeof buf, "#Patient-%zu", patient);
                ext_if(item, "patient", "valueReference", reference(buf));
        }
        ext_if(item, "eReferralPathwayStart", "valueDateTime", value(entry, "pathway_start"));
        state_exts(item, entry, "clinical_info_printed", "clinicalInfoPrinted", "valueBoolean", NULL);
        if (slot_issues) {
                state_exts(item, entry, "ubrn_received", "ubrnReceived", "valueDateTime", NULL);
                state_exts(item, entry, "patient_contact_expected", "patientContactExpected", "valueDate", NULL);
                state_exts(item, entry, "clinical_information_status", "clinicalInformationStatus", NULL,
                           CS "eRS-ClinicalInformationStatus-1");
                if ((v = value(entry, "reason")))
                        ext_if(item, "reason", "valueCodeableConcept",
                               codeable(coding(CS "eRS-ReviewReason-1", v, NULL)));
                state_exts(item, entry, "last_contact", "lastContact", "valueDateTime", NULL);
        } else {
                state_exts(item, entry, "request_context_status", "requestContextStatus", NULL,
                           CS "eRS-RequestContextStatus-1");
                ext_if(item, "clinicalInfoFirstSubmitted", "valueDateTime",
                       value(entry, "clinical_info_first_submitted"));
                ext_if(item, "appointmentStart", "valueDateTime", value(entry, "appointment_start"));
                if ((v = value(entry, "referral_type")))
                        ext_if(item, "referralType", "valueCodeableConcept",
                               codeable(coding(CS "eRS-ReferralType-1", v, NULL)));
        }
        if (member(entry, "service_id") || member(entry, "service_name"))
                ext_if(item, "service", "valueReference", service_actor(entry, "service_id", "service_name"));
        ext_if(item, "referralRequestVersion", "valueInteger",
               member_int(entry, "version", &version) ? json_object_new_int64(version + bumps) : value(entry, "version"));
        w = json_object_new_object();
        fhir_put(w, "extension", item);
        fhir_put(w, "url", json_object_new_string(slot_issues ? SD "Extension-eRS-AppointmentSlotIssues-WorkListItem-1"
                                                              : SD "Extension-eRS-ReferralsforReview-WorkListItem-1"));
        fhir_put(e, "extension", fhir_arr1(w));
        snprintf(buf, sizeof buf, "ReferralRequest/%s", ubrn);
        fhir_put(e, "item", reference(buf));
        return e;
}

static json_object *worklist_patient(json_object *entry, size_t patient)
{
        json_object *p = json_object_new_object();
        char buf[32];

        snprintf(buf, sizeof buf, "Patient-%zu", patient);
        fhir_put(p, "id", json_object_new_string(buf));
        fhir_put(p, "meta", fhir_meta(SD "eRS-Patient-1", NULL));
        fhir_put(p, "resourceType", json_object_new_string("Patient"));
        fhir_put(p, "identifier", fhir_arr1(identifier(SYS_NHS_NUMBER, value(entry, "nhs_number"))));
        return p;
}

/* Whether a worklist entry (or a junk entry's wrapper) belongs to this A008's answer. */
static bool listed_on(json_object *o, const char *service, bool slot_issues)
{
        const char *s = member_str(o, "service"), *list = member_str(o, "list");

        if (service && (!s || strcmp(s, service) != 0))
                return false;
        return list && strcmp(list, slot_issues ? "APPOINTMENT_SLOT_ISSUES" : "REFERRALS_FOR_REVIEW") == 0;
}

char *world_render_worklist(struct mock *m, const char *service, bool slot_issues, size_t pad_bytes,
                            size_t *ret_len)
{
        struct world *w = current(m);
        json_object *o = json_object_new_object(), *contained = json_object_new_array(),
                    *entries = json_object_new_array();
        json_object *refs = w ? member(w->root, "referrals") : NULL, *junk = w ? member(w->root, "junk") : NULL;

        fhir_put(o, "resourceType", json_object_new_string("List"));
        fhir_put(o, "meta", fhir_meta(SD "eRS-FetchWorklist-List-1", NULL));
        fhir_put(o, "status", json_object_new_string("current"));
        fhir_put(o, "mode", json_object_new_string("snapshot"));
        for (size_t i = 0; json_object_is_type(refs, json_type_array) && i < json_object_array_length(refs); i++) {
                json_object *r = json_object_array_get_idx(refs, i), *entry = member(r, "entry");
                if (member_true(r, "gone") || !entry || !listed_on(entry, service, slot_issues))
                        continue;
                struct world_referral *wr = find_referral(w, member_str(r, "ubrn"));
                struct served sv = { .version = 0 };
                if (wr) {
                        pthread_mutex_lock(&m->lock);
                        served_locked(wr, &sv);
                        pthread_mutex_unlock(&m->lock);
                }
                if (member(entry, "nhs_number"))
                        json_object_array_add(contained, worklist_patient(entry, i));
                json_object_array_add(entries, worklist_entry(entry, member_str(r, "ubrn"), i, slot_issues, &sv,
                                                              wr ? sv.version - wr->version : 0));
        }
        for (size_t i = 0; json_object_is_type(junk, json_type_array) && i < json_object_array_length(junk); i++) {
                json_object *j = json_object_array_get_idx(junk, i), *copy = NULL;
                if (listed_on(j, service, slot_issues) && json_object_deep_copy(member(j, "entry"), &copy, NULL) == 0)
                        json_object_array_add(entries, copy);
        }
        if (json_object_array_length(contained))
                fhir_put(o, "contained", contained);
        else
                json_object_put(contained);
        if (json_object_array_length(entries))
                fhir_put(o, "entry", entries);
        else
                json_object_put(entries);
        if (pad_bytes) {
                char *pad = malloc(pad_bytes);
                json_object *note = json_object_new_object();
                if (pad) {
                        memset(pad, 'x', pad_bytes);
                        fhir_put(note, "text", json_object_new_string_len(pad, (int)pad_bytes));
                        free(pad);
                }
                fhir_put(o, "note", fhir_arr1(note));
        }
        return json_text(o, ret_len);
}

/* ---- the kill point ---------------------------------------------------------------------- */

/* Under mock.lock. */
static struct {
        long pid;          /* 0: disarmed */
        uint64_t left;     /* requests to let through before the signal */
        int sig;
        uint64_t fired;    /* signals sent so far */
        char key[16];      /* "": every request counts; else only those whose URL holds it */
} kp;

void killpoint_set(struct mock *m, long pid, uint64_t after, int sig, const char *key)
{
        pthread_mutex_lock(&m->lock);
        snprintf(kp.key, sizeof kp.key, "%s", key ? key : "");
        kp.pid = pid;
        kp.left = after;
        kp.sig = sig;
        pthread_mutex_unlock(&m->lock);
}

json_object *killpoint_state(struct mock *m)
{
        json_object *o = json_object_new_object();

        pthread_mutex_lock(&m->lock);
        json_object_object_add(o, "armed", json_object_new_boolean(kp.pid != 0));
        json_object_object_add(o, "left", json_object_new_int64((int64_t)kp.left));
        json_object_object_add(o, "fired", json_object_new_int64((int64_t)kp.fired));
        pthread_mutex_unlock(&m->lock);
        return o;
}

void killpoint_request(struct mock *m, const char *url, const char *focus)
{
        pthread_mutex_lock(&m->lock);
        if (kp.pid > 0 && (!kp.key[0] || strstr(url, kp.key) || (focus && strstr(focus, kp.key))) &&
            kp.left-- <= 1) {
                if (kill((pid_t)kp.pid, kp.sig) == 0)
                        kp.fired++;
                kp.pid = 0;
        }
        pthread_mutex_unlock(&m->lock);
}
