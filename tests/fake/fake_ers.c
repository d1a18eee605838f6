/* SPDX-License-Identifier: MIT */
/*
 * The scripted e-RS of fake_ers.h: the client functions of daemon/ers.h over
 * what the test put, linked in place of daemon/ers.o.  No network, no
 * threads of its own; one lock over everything it holds.
 */
#include "fake_ers.h"

#include <errno.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "daemon/ers.h"
#include "tests/support/harness.h"

#define REFERRALS_MAX 64
#define WORKLISTS_MAX 8
#define FAILURES_MAX  32
#define WRITES_MAX    32
#define SERVED_MAX    256
#define KEY_MAX       96
#define EXT           "https://fhir.nhs.uk/STU3/StructureDefinition/"

/* The client and each lane of it: the script is shared, as e-RS is. */
struct ers_client {
        const volatile sig_atomic_t *stop; /* borrowed, may be NULL */
        void (*progress)(void *userdata);
        void *userdata;
};

/* A referral as the test put it, its strings owned (strdup'd). */
struct held_referral {
        struct fake_referral r;
        bool gone;
};

struct held_worklist {
        char *list_type, *service;        /* owned */
        char *ubrns[FAKE_LISTED_MAX + 1]; /* owned, NULL-terminated */
        struct fake_entry_state states[FAKE_LISTED_MAX]; /* each ubrns[i]'s, its strings owned */
};

struct failure {
        enum fake_endpoint endpoint;
        char *key; /* owned; NULL: any */
        int r;
        unsigned times; /* left; 0: for ever */
        bool spent;
};

struct call {
        enum fake_endpoint endpoint;
        char key[KEY_MAX];
        int r;
        const char *outcome; /* a write-back call's outcome but DONE (static), else NULL */
};

/* A write-back outcome scripted by fake_ers_write_outcome(). */
struct write_script {
        enum fake_endpoint endpoint;
        char *key; /* owned; NULL: any */
        enum ers_wb_outcome outcome;
        bool applied;
        unsigned times; /* left; 0: for ever */
        bool spent;
};

struct served {
        char sha[65];
        char *text; /* owned */
};

static struct {
        pthread_mutex_t lock;
        struct held_referral referrals[REFERRALS_MAX];
        size_t n_referrals;
        struct held_worklist worklists[WORKLISTS_MAX];
        size_t n_worklists;
        struct failure failures[FAILURES_MAX];
        size_t n_failures;
        struct write_script writes[WRITES_MAX];
        size_t n_writes;
        struct call *calls; /* owned: since the last take */
        size_t n_calls, cap_calls;
        struct call *all; /* owned: since the last reset */
        size_t n_all, cap_all;
        struct served served[SERVED_MAX];
        size_t n_served;
        unsigned sequence; /* correlation ids handed out */
        uint64_t progress; /* calls answered, for ers_client_progress() */
        unsigned progress_reads; /* ers_client_progress() calls: see fake_ers_await_progress_read() */
        pthread_cond_t progress_read; /* signalled at each */
        volatile sig_atomic_t *stop;
        void (*hook)(void *userdata, enum fake_endpoint endpoint, const char *key);
        void *hook_userdata;
} fake = { .lock = PTHREAD_MUTEX_INITIALIZER, .progress_read = PTHREAD_COND_INITIALIZER };

static const char *const ENDPOINT_NAME[] = {
        [FAKE_A008] = "A008", [FAKE_A005] = "A005", [FAKE_A042] = "A042", [FAKE_A007] = "A007",
        [FAKE_A029] = "A029", [FAKE_A028] = "A028", [FAKE_A013] = "A013",
};

/* ---- memory: the test's process, where running out is a test failure ---------------------- */

static void *need(void *p) {
        if (!p) {
                fprintf(stderr, "fake e-RS: out of memory\n");
                abort();
        }
        return p;
}

/* A script larger than the fake holds is the test's mistake: said, then the test ends. */
_Noreturn static void too_many(const char *what, int max) {
        fprintf(stderr, "fake e-RS: more than %d %s scripted\n", max, what);
        abort();
}

static char *dup_or_null(const char *s) {
        return s ? need(strdup(s)) : NULL;
}

/* ---- scripting ----------------------------------------------------------------------------- */

static void referral_release(struct fake_referral *r) {
        free((char *) r->ubrn);
        free((char *) r->nhs_number);
        free((char *) r->priority);
        free((char *) r->specialty);
        free((char *) r->letter);
        free((char *) r->state_comment);
        free((char *) r->profile);
        for (size_t i = 0; i < FAKE_RELATED_MAX; i++)
                free((char *) r->related[i]);
        for (size_t i = 0; i < FAKE_REQUIREMENTS_MAX; i++)
                free((char *) r->requirements[i]);
        for (size_t i = 0; i < FAKE_DOCS_MAX; i++) {
                free((char *) r->docs[i].id);
                free((char *) r->docs[i].availability);
                free((char *) r->docs[i].content);
                free((char *) r->docs[i].created);
                free((char *) r->docs[i].binary);
        }
        memset(r, 0, sizeof *r);
}

static void referral_copy(struct fake_referral *to, const struct fake_referral *from) {
        *to = (struct fake_referral){
                .ubrn = dup_or_null(from->ubrn),
                .version = from->version,
                .nhs_number = dup_or_null(from->nhs_number),
                .priority = dup_or_null(from->priority),
                .specialty = dup_or_null(from->specialty),
                .letter = dup_or_null(from->letter),
                .state_comment = dup_or_null(from->state_comment),
                .profile = dup_or_null(from->profile),
        };
        for (size_t i = 0; i < FAKE_RELATED_MAX && from->related[i]; i++)
                to->related[i] = dup_or_null(from->related[i]);
        for (size_t i = 0; i < FAKE_REQUIREMENTS_MAX && from->requirements[i]; i++)
                to->requirements[i] = dup_or_null(from->requirements[i]);
        for (size_t i = 0; i < FAKE_DOCS_MAX && from->docs[i].id; i++)
                to->docs[i] = (struct fake_doc){
                        .id = dup_or_null(from->docs[i].id),
                        .availability = dup_or_null(from->docs[i].availability),
                        .content = dup_or_null(from->docs[i].content),
                        .created = dup_or_null(from->docs[i].created),
                        .binary = dup_or_null(from->docs[i].binary),
                };
}

static void entry_state_release(struct fake_entry_state *s) {
        free((char *) s->ubrn_received);
        free((char *) s->patient_contact_expected);
        free((char *) s->last_contact);
        free((char *) s->clinical_information_status);
        free((char *) s->request_context_status);
        *s = (struct fake_entry_state){ .printed = PRINTED_UNKNOWN };
}

static void worklist_release(struct held_worklist *w) {
        free(w->list_type);
        free(w->service);
        for (size_t i = 0; w->ubrns[i]; i++) {
                free(w->ubrns[i]);
                entry_state_release(&w->states[i]);
        }
        memset(w, 0, sizeof *w);
}

void fake_ers_reset(void) {
        pthread_mutex_lock(&fake.lock);
        for (size_t i = 0; i < fake.n_referrals; i++)
                referral_release(&fake.referrals[i].r);
        for (size_t i = 0; i < fake.n_worklists; i++)
                worklist_release(&fake.worklists[i]);
        for (size_t i = 0; i < fake.n_failures; i++)
                free(fake.failures[i].key);
        for (size_t i = 0; i < fake.n_writes; i++)
                free(fake.writes[i].key);
        for (size_t i = 0; i < fake.n_served; i++)
                free(fake.served[i].text);
        free(fake.calls);
        free(fake.all);
        fake.calls = fake.all = NULL;
        fake.n_calls = fake.cap_calls = fake.n_all = fake.cap_all = 0;
        fake.n_referrals = fake.n_worklists = fake.n_failures = fake.n_writes = fake.n_served = 0;
        fake.sequence = 0;
        fake.progress = 0;
        fake.progress_reads = 0;
        fake.stop = NULL;
        fake.hook = NULL;
        fake.hook_userdata = NULL;
        pthread_mutex_unlock(&fake.lock);
}

/* The referral held for `ubrn`, NULL when none; under the lock. */
static struct held_referral *held(const char *ubrn) {
        for (size_t i = 0; i < fake.n_referrals; i++)
                if (strcmp(fake.referrals[i].r.ubrn, ubrn) == 0)
                        return &fake.referrals[i];
        return NULL;
}

void fake_ers_put(const struct fake_referral *r) {
        pthread_mutex_lock(&fake.lock);
        struct held_referral *h = held(r->ubrn);
        if (!h) {
                if (fake.n_referrals == REFERRALS_MAX)
                        too_many("referrals", REFERRALS_MAX);
                h = &fake.referrals[fake.n_referrals++];
        } else {
                referral_release(&h->r);
        }
        referral_copy(&h->r, r);
        h->gone = false;
        pthread_mutex_unlock(&fake.lock);
}

void fake_ers_forget(const char *ubrn) {
        pthread_mutex_lock(&fake.lock);
        struct held_referral *h = held(ubrn);
        if (h)
                h->gone = true;
        pthread_mutex_unlock(&fake.lock);
}

void fake_ers_list(const char *list_type, const char *service, const char *const *ubrns) {
        struct held_worklist *w = NULL;

        pthread_mutex_lock(&fake.lock);
        for (size_t i = 0; i < fake.n_worklists && !w; i++)
                if (strcmp(fake.worklists[i].list_type, list_type) == 0 &&
                    strcmp(fake.worklists[i].service, service) == 0)
                        w = &fake.worklists[i];
        if (!w) {
                if (fake.n_worklists == WORKLISTS_MAX)
                        too_many("worklists", WORKLISTS_MAX);
                w = &fake.worklists[fake.n_worklists++];
        } else {
                worklist_release(w);
        }
        w->list_type = need(strdup(list_type));
        w->service = need(strdup(service));
        for (size_t i = 0; ubrns && ubrns[i]; i++) {
                if (i == FAKE_LISTED_MAX)
                        too_many("entries on a worklist", FAKE_LISTED_MAX);
                w->ubrns[i] = need(strdup(ubrns[i]));
        }
        pthread_mutex_unlock(&fake.lock);
}

void fake_ers_entry_state(const char *list_type, const char *service, const char *ubrn,
                          const struct fake_entry_state *state) {
        struct held_worklist *w = NULL;
        size_t i = 0;

        pthread_mutex_lock(&fake.lock);
        for (size_t k = 0; k < fake.n_worklists && !w; k++)
                if (strcmp(fake.worklists[k].list_type, list_type) == 0 &&
                    strcmp(fake.worklists[k].service, service) == 0)
                        w = &fake.worklists[k];
        while (w && w->ubrns[i] && strcmp(w->ubrns[i], ubrn) != 0)
                i++;
        if (!w || !w->ubrns[i]) {
                fprintf(stderr, "fake_ers_entry_state: %s is not listed on %s/%s\n", ubrn, list_type, service);
                abort();
        }
        entry_state_release(&w->states[i]);
        w->states[i] = (struct fake_entry_state){
                .ubrn_received = dup_or_null(state->ubrn_received),
                .patient_contact_expected = dup_or_null(state->patient_contact_expected),
                .last_contact = dup_or_null(state->last_contact),
                .clinical_information_status = dup_or_null(state->clinical_information_status),
                .request_context_status = dup_or_null(state->request_context_status),
                .printed = state->printed,
        };
        pthread_mutex_unlock(&fake.lock);
}

void fake_ers_fail(enum fake_endpoint endpoint, const char *key, int r, unsigned times) {
        pthread_mutex_lock(&fake.lock);
        if (fake.n_failures == FAILURES_MAX)
                too_many("failures", FAILURES_MAX);
        fake.failures[fake.n_failures++] =
                (struct failure){ .endpoint = endpoint, .key = dup_or_null(key), .r = r, .times = times };
        pthread_mutex_unlock(&fake.lock);
}

void fake_ers_write_outcome(enum fake_endpoint endpoint, const char *ubrn, enum ers_wb_outcome outcome, bool applied,
                            unsigned times) {
        pthread_mutex_lock(&fake.lock);
        if (fake.n_writes == WRITES_MAX)
                too_many("write-back outcomes", WRITES_MAX);
        fake.writes[fake.n_writes++] = (struct write_script){
                .endpoint = endpoint, .key = dup_or_null(ubrn), .outcome = outcome, .applied = applied, .times = times
        };
        pthread_mutex_unlock(&fake.lock);
}

void fake_ers_stop_flag(volatile sig_atomic_t *stop) {
        pthread_mutex_lock(&fake.lock);
        fake.stop = stop;
        pthread_mutex_unlock(&fake.lock);
}

void fake_ers_on_call(void (*fn)(void *userdata, enum fake_endpoint endpoint, const char *key), void *userdata) {
        pthread_mutex_lock(&fake.lock);
        fake.hook = fn;
        fake.hook_userdata = userdata;
        pthread_mutex_unlock(&fake.lock);
}

/* ---- the record ---------------------------------------------------------------------------- */

static const char *errno_name(int r) {
        static const struct {
                int r;
                const char *name;
        } names[] = {
                { -EAGAIN, "-EAGAIN" },       { -ETIMEDOUT, "-ETIMEDOUT" },
                { -ENOENT, "-ENOENT" },       { -ENODATA, "-ENODATA" },
                { -EACCES, "-EACCES" },       { -EBADMSG, "-EBADMSG" },
                { -ECANCELED, "-ECANCELED" }, { -EFBIG, "-EFBIG" },
                { -EPROTO, "-EPROTO" },       { -EIO, "-EIO" },
        };

        for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
                if (names[i].r == r)
                        return names[i].name;
        return "-E?";
}

static void append(struct call **calls, size_t *n, size_t *cap, const struct call *c) {
        if (*n == *cap) {
                *cap = *cap ? 2 * *cap : 64;
                *calls = need(realloc(*calls, *cap * sizeof **calls));
        }
        (*calls)[(*n)++] = *c;
}

char *fake_ers_take_calls(void) {
        size_t len = 1, o = 0;
        char *text;

        pthread_mutex_lock(&fake.lock);
        for (size_t i = 0; i < fake.n_calls; i++)
                len += strlen(fake.calls[i].key) + 32;
        text = need(malloc(len));
        text[0] = '\0';
        for (size_t i = 0; i < fake.n_calls; i++) {
                const struct call *c = &fake.calls[i];
                const char *ending = c->r < 0 ? errno_name(c->r) : c->outcome;
                o += (size_t) snprintf(text + o, len - o, "%s %s%s%s\n", ENDPOINT_NAME[c->endpoint], c->key,
                                       ending ? " -> " : "", ending ? ending : "");
        }
        fake.n_calls = 0;
        pthread_mutex_unlock(&fake.lock);
        return text;
}

unsigned fake_ers_count(enum fake_endpoint endpoint, const char *key) {
        unsigned n = 0;

        pthread_mutex_lock(&fake.lock);
        for (size_t i = 0; i < fake.n_all; i++)
                n += fake.all[i].endpoint == endpoint && (!key || strcmp(fake.all[i].key, key) == 0);
        pthread_mutex_unlock(&fake.lock);
        return n;
}

/* Remembers bytes served, by their SHA-256; under the lock. */
static void remember_served(const char *text) {
        char sha[65];

        sha256_hex(text, strlen(text), sha);
        for (size_t i = 0; i < fake.n_served; i++)
                if (strcmp(fake.served[i].sha, sha) == 0)
                        return;
        if (fake.n_served == SERVED_MAX)
                return;
        memcpy(fake.served[fake.n_served].sha, sha, sizeof sha);
        fake.served[fake.n_served++].text = need(strdup(text));
}

const char *fake_ers_served(const char *sha) {
        const char *text = NULL;

        pthread_mutex_lock(&fake.lock);
        for (size_t i = 0; i < fake.n_served && !text; i++)
                if (strcmp(fake.served[i].sha, sha) == 0)
                        text = fake.served[i].text;
        pthread_mutex_unlock(&fake.lock);
        return text;
}

/* ---- a call -------------------------------------------------------------------------------- */

/*
 * The start of every call: the hook, then (under the lock, held on return)
 * a correlation id, the stop flag and the failures scripted.  Returns 0 to
 * answer, or the failure with its line in e (the lock is held either way;
 * finish() records the call and releases it).
 */
static int begin(struct ers_client *c, enum fake_endpoint endpoint, const char *key, const char *what,
                 struct ers_call *call, struct errbuf *e) {
        void (*hook)(void *, enum fake_endpoint, const char *);
        void *userdata;

        pthread_mutex_lock(&fake.lock);
        hook = fake.hook;
        userdata = fake.hook_userdata;
        pthread_mutex_unlock(&fake.lock);
        if (hook)
                hook(userdata, endpoint, key);

        pthread_mutex_lock(&fake.lock);
        *call = (struct ers_call){ .http_status = 0, .retry_after = -1 };
        snprintf(call->correlation_id, sizeof call->correlation_id, "corr-%04u", ++fake.sequence);
        if (c->stop && *c->stop)
                return err_set(e, -ECANCELED, "%s: stopped", what);
        for (size_t i = 0; i < fake.n_failures; i++) {
                struct failure *f = &fake.failures[i];
                if (f->spent || f->endpoint != endpoint || (f->key && strcmp(f->key, key) != 0))
                        continue;
                if (f->times > 0 && --f->times == 0)
                        f->spent = true;
                switch (f->r) {
                case -EAGAIN:
                        call->http_status = 503;
                        return err_set(e, f->r, "%s: HTTP 503: Service Unavailable (correlation id %s)", what,
                                       call->correlation_id);
                case -ETIMEDOUT:
                        return err_set(e, f->r, "%s: no answer: timed out (correlation id %s)", what,
                                       call->correlation_id);
                case -ENOENT:
                        call->http_status = 404;
                        return err_set(e, f->r, "%s: HTTP 404 (correlation id %s)", what, call->correlation_id);
                case -ENODATA:
                        call->http_status = 422;
                        return err_set(e, f->r, "%s: HTTP 422: e-RS error code NOT_AVAILABLE (correlation id %s)", what,
                                       call->correlation_id);
                case -EACCES:
                        call->http_status = 403;
                        return err_set(e, f->r, "%s: HTTP 403 (correlation id %s)", what, call->correlation_id);
                case -ECANCELED:
                        if (fake.stop)
                                *fake.stop = 1;
                        return err_set(e, f->r, "%s: stopped during the transfer (correlation id %s)", what,
                                       call->correlation_id);
                default:
                        return err_set(e, f->r, "%s: failed: %s (correlation id %s)", what, errno_name(f->r),
                                       call->correlation_id);
                }
        }
        call->http_status = 200;
        return 0;
}

/* Records the call with its result (and a write-back call's outcome but DONE:
 * `outcome`, static, or NULL) and releases the lock begin() took. */
static int finish_with(struct ers_client *c, enum fake_endpoint endpoint, const char *key, int r, const char *outcome) {
        struct call rec = { .endpoint = endpoint, .r = r, .outcome = outcome };

        snprintf(rec.key, sizeof rec.key, "%s", key);
        append(&fake.calls, &fake.n_calls, &fake.cap_calls, &rec);
        append(&fake.all, &fake.n_all, &fake.cap_all, &rec);
        fake.progress++;
        pthread_mutex_unlock(&fake.lock);
        if (c->progress)
                c->progress(c->userdata);
        return r;
}

static int finish(struct ers_client *c, enum fake_endpoint endpoint, const char *key, int r) {
        return finish_with(c, endpoint, key, r, NULL);
}

/* ---- A005 as FHIR JSON --------------------------------------------------------------------- */

static void add(json_object *o, const char *key, json_object *v) {
        json_object_object_add(o, key, v);
}

static json_object *str(const char *s) {
        return need(json_object_new_string(s));
}

/* {"url": EXT name, <value key>: value} */
static json_object *extension(const char *name, const char *value_key, json_object *value) {
        json_object *x = need(json_object_new_object());
        char url[160];

        snprintf(url, sizeof url, EXT "%s", name);
        add(x, "url", str(url));
        add(x, value_key, value);
        return x;
}

/* {"coding": [{"code": code}]} (or the coding itself when `concept` is false) */
static json_object *coding(const char *code, bool concept) {
        json_object *c = need(json_object_new_object()), *list, *cc;

        add(c, "code", str(code));
        if (!concept)
                return c;
        list = need(json_object_new_array());
        json_object_array_add(list, c);
        cc = need(json_object_new_object());
        add(cc, "coding", list);
        return cc;
}

static const char *binary_of(const struct fake_doc *d) {
        return d->binary ? d->binary : d->id;
}

static json_object *document_reference(const struct fake_doc *d) {
        json_object *doc = need(json_object_new_object()), *att = need(json_object_new_object());
        json_object *content = need(json_object_new_array()), *holder = need(json_object_new_object());
        json_object *exts = need(json_object_new_array());
        char id[96], url[96];

        snprintf(id, sizeof id, "DocumentReference-%s", binary_of(d));
        snprintf(url, sizeof url, "Binary/%s", binary_of(d));
        add(att, "id", str(d->id));
        add(att, "url", str(url));
        add(att, "contentType", str("text/plain"));
        add(att, "title", str(d->id));
        add(att, "creation", str(d->created ? d->created : "2030-01-01T00:00:00Z"));
        add(att, "size", need(json_object_new_int64((int64_t) strlen(d->content ? d->content : ""))));
        if (d->availability)
                json_object_array_add(exts, extension("Extension-eRS-AvailabilityStatus-1", "valueCoding",
                                                      coding(d->availability, false)));
        add(att, "extension", exts);
        add(holder, "attachment", att);
        json_object_array_add(content, holder);
        add(doc, "resourceType", str("DocumentReference"));
        add(doc, "id", str(id));
        add(doc, "content", content);
        return doc;
}

static json_object *referral_json(const struct fake_referral *r) {
        json_object *root = need(json_object_new_object()), *meta = need(json_object_new_object());
        json_object *exts = need(json_object_new_array()), *contained = need(json_object_new_array());
        json_object *infos = need(json_object_new_array());
        char version[24], ref[64];

        snprintf(version, sizeof version, "%" PRId64, r->version);
        add(root, "resourceType", str("ReferralRequest"));
        add(root, "id", str(r->ubrn));
        add(meta, "versionId", str(version));
        if (r->profile) {
                json_object *profiles = need(json_object_new_array());
                json_object_array_add(profiles, str(r->profile));
                add(meta, "profile", profiles);
        }
        add(root, "meta", meta);
        add(root, "status", str("active"));
        add(root, "intent", str("plan"));
        if (r->nhs_number) {
                json_object *subject = need(json_object_new_object()), *ident = need(json_object_new_object());
                add(ident, "system", str("http://fhir.nhs.net/Id/nhs-number"));
                add(ident, "value", str(r->nhs_number));
                add(subject, "identifier", ident);
                add(root, "subject", subject);
        }
        if (r->specialty)
                add(root, "specialty", coding(r->specialty, true));
        if (r->priority)
                json_object_array_add(exts, extension("Extension-eRS-ReferralPriority-1", "valueCodeableConcept",
                                                      coding(r->priority, true)));
        for (size_t i = 0; i < FAKE_REQUIREMENTS_MAX && r->requirements[i]; i++) {
                /* {"url": …AdditionalRequirement-1, "extension": [{"url": "type", "valueCoding": {"code": …}}]} */
                json_object *type = need(json_object_new_object()), *nested = need(json_object_new_array());
                add(type, "url", str("type"));
                add(type, "valueCoding", coding(r->requirements[i], false));
                json_object_array_add(nested, type);
                json_object_array_add(exts, extension("Extension-eRS-AdditionalRequirement-1", "extension", nested));
        }
        if (r->state_comment) {
                /* {"url": …ReferralState-1, "extension": [{"url": "comments", "valueString": …}]} */
                json_object *comments = need(json_object_new_object()), *nested = need(json_object_new_array());
                add(comments, "url", str("comments"));
                add(comments, "valueString", str(r->state_comment));
                json_object_array_add(nested, comments);
                json_object_array_add(exts, extension("Extension-eRS-ReferralState-1", "extension", nested));
        }
        add(root, "extension", exts);
        for (size_t i = 0; i < FAKE_DOCS_MAX && r->docs[i].id; i++) {
                json_object *info = need(json_object_new_object());
                snprintf(ref, sizeof ref, "#DocumentReference-%s", binary_of(&r->docs[i]));
                json_object_array_add(contained, document_reference(&r->docs[i]));
                add(info, "reference", str(ref));
                json_object_array_add(infos, info);
        }
        for (size_t i = 0; i < FAKE_RELATED_MAX && r->related[i]; i++) {
                json_object *info = need(json_object_new_object());
                snprintf(ref, sizeof ref, "ReferralRequest/%s", r->related[i]);
                add(info, "reference", str(ref));
                json_object_array_add(infos, info);
        }
        add(root, "contained", contained);
        add(root, "supportingInfo", infos);
        return root;
}

/* ---- ers.h --------------------------------------------------------------------------------- */

int ers_client_new(const struct config *c, struct ers_client **ret, struct errbuf *e) {
        struct ers_client *client = calloc(1, sizeof *client);

        (void) c;
        if (!client)
                return err_set(e, -ENOMEM, "out of memory");
        *ret = client;
        return 0;
}

int ers_client_lane(struct ers_client *parent, struct ers_client **ret, struct errbuf *e) {
        struct ers_client *client = calloc(1, sizeof *client);

        if (!client)
                return err_set(e, -ENOMEM, "out of memory");
        client->stop = parent->stop; /* and no progress callback, as the real lanes */
        *ret = client;
        return 0;
}

void ers_client_free(struct ers_client *c) {
        free(c);
}

void ers_client_on_progress(struct ers_client *c, void (*fn)(void *userdata), void *userdata) {
        c->progress = fn;
        c->userdata = userdata;
}

uint64_t ers_client_progress(const struct ers_client *c) {
        uint64_t n;

        (void) c;
        pthread_mutex_lock(&fake.lock);
        n = fake.progress;
        fake.progress_reads++; /* counted with the value read: a call answered after this is progress */
        pthread_cond_broadcast(&fake.progress_read);
        pthread_mutex_unlock(&fake.lock);
        return n;
}

unsigned fake_ers_progress_reads(void) {
        unsigned n;

        pthread_mutex_lock(&fake.lock);
        n = fake.progress_reads;
        pthread_mutex_unlock(&fake.lock);
        return n;
}

bool fake_ers_await_progress_read(unsigned n, unsigned timeout_s) {
        struct timespec until;
        bool read;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t) timeout_s;
        pthread_mutex_lock(&fake.lock);
        while (fake.progress_reads < n)
                if (pthread_cond_timedwait(&fake.progress_read, &fake.lock, &until) == ETIMEDOUT)
                        break;
        read = fake.progress_reads >= n;
        pthread_mutex_unlock(&fake.lock);
        return read;
}

void ers_client_on_stop(struct ers_client *c, const volatile sig_atomic_t *stop) {
        c->stop = stop;
}

int ers_prepare_token(struct ers_client *c, struct errbuf *e) {
        (void) c;
        (void) e;
        return 0;
}

int ers_check_reachable(struct ers_client *c, struct errbuf *e) {
        (void) c;
        (void) e;
        return 0;
}

int ers_fetch_worklist(struct ers_client *c, const char *list_type, const char *service_id, struct worklist *ret,
                       struct ers_call *call, struct errbuf *e) {
        char key[KEY_MAX], what[KEY_MAX + 8];
        const struct held_worklist *w = NULL;
        struct worklist list = { 0 };
        int r;

        snprintf(key, sizeof key, "%s/%s", list_type, service_id);
        snprintf(what, sizeof what, "A008 %s", key);
        r = begin(c, FAKE_A008, key, what, call, e);
        if (r < 0)
                return finish(c, FAKE_A008, key, r);
        for (size_t i = 0; i < fake.n_worklists && !w; i++)
                if (strcmp(fake.worklists[i].list_type, list_type) == 0 &&
                    strcmp(fake.worklists[i].service, service_id) == 0)
                        w = &fake.worklists[i];
        list.entries = need(calloc(FAKE_LISTED_MAX, sizeof *list.entries));
        for (size_t i = 0; w && w->ubrns[i]; i++) {
                const struct held_referral *h = held(w->ubrns[i]);
                struct worklist_entry *we = &list.entries[list.n++];
                snprintf(we->ubrn, sizeof we->ubrn, "%s", w->ubrns[i]);
                /* APPOINTMENT_SLOT_ISSUES items carry no referralRequestVersion, as e-RS serves them */
                we->version = h && strcmp(list_type, "APPOINTMENT_SLOT_ISSUES") != 0 ? h->r.version : -1;
                we->priority = h ? dup_or_null(h->r.priority) : NULL;
                we->specialty = h ? dup_or_null(h->r.specialty) : NULL;
                we->nhs_number = h ? dup_or_null(h->r.nhs_number) : NULL;
                we->service_id = need(strdup(service_id));
                we->referral_type = need(strdup("REFERRAL"));
                we->ubrn_received = dup_or_null(w->states[i].ubrn_received);
                we->patient_contact_expected = dup_or_null(w->states[i].patient_contact_expected);
                we->last_contact = dup_or_null(w->states[i].last_contact);
                we->clinical_information_status = dup_or_null(w->states[i].clinical_information_status);
                we->request_context_status = dup_or_null(w->states[i].request_context_status);
                we->clinical_info_printed = w->states[i].printed;
        }
        *ret = list;
        return finish(c, FAKE_A008, key, 0);
}

int ers_read_referral(struct ers_client *c, const char *ubrn, json_object **ret, struct referral_answer *raw,
                      struct ers_call *call, struct errbuf *e) {
        char what[32];
        const struct held_referral *h;
        int r;

        snprintf(what, sizeof what, "A005 UBRN %s", ubrn);
        r = begin(c, FAKE_A005, ubrn, what, call, e);
        if (r < 0)
                return finish(c, FAKE_A005, ubrn, r);
        h = held(ubrn);
        if (!h || h->gone) {
                call->http_status = 404;
                r = err_set(e, -ENOENT, "%s: HTTP 404 (correlation id %s)", what, call->correlation_id);
                return finish(c, FAKE_A005, ubrn, r);
        }
        *ret = referral_json(&h->r);
        /* the answer as the client hands it over: the bytes of the JSON it parsed (remembered as served) */
        const char *text = need((char *) json_object_to_json_string_ext(*ret, JSON_C_TO_STRING_PLAIN));
        remember_served(text);
        if (raw) {
                *raw = (struct referral_answer){ .bytes = need(malloc(strlen(text))), .len = strlen(text) };
                memcpy(raw->bytes, text, raw->len);
                snprintf(raw->correlation_id, sizeof raw->correlation_id, "%s", call->correlation_id);
                now_utc_iso(raw->received_at);
        }
        return finish(c, FAKE_A005, ubrn, 0);
}

/* Writes `text` into the spool file the engine handed over, remembering it as served. */
static int serve(const char *text, struct spool_file *dst, const char *what, struct errbuf *e) {
        int r = spool_file_write(dst, text, strlen(text), e);

        if (r < 0)
                return err_prefix(e, r, "%s", what);
        remember_served(text);
        return 0;
}

int ers_fetch_attachment(struct ers_client *c, const char *ubrn, const char *binary_id, struct spool_file *dst,
                         struct ers_call *call, struct errbuf *e) {
        char key[KEY_MAX], what[KEY_MAX + 16];
        const struct held_referral *h;
        const struct fake_doc *d = NULL;
        int r;

        snprintf(key, sizeof key, "%s %s", ubrn, binary_id);
        snprintf(what, sizeof what, "A042 UBRN %s Binary/%s", ubrn, binary_id);
        r = begin(c, FAKE_A042, key, what, call, e);
        if (r < 0)
                return finish(c, FAKE_A042, key, r);
        h = held(ubrn);
        for (size_t i = 0; h && !h->gone && i < FAKE_DOCS_MAX && h->r.docs[i].id && !d; i++)
                if (strcmp(binary_of(&h->r.docs[i]), binary_id) == 0)
                        d = &h->r.docs[i];
        if (!d)
                r = err_set(e, -ENOENT, "%s: HTTP 404 (correlation id %s)", what, call->correlation_id);
        else if (!d->availability || strcmp(d->availability, "AVAILABLE") != 0)
                r = err_set(e, -ENODATA, "%s: HTTP 422: e-RS error code NOT_AVAILABLE (correlation id %s)", what,
                            call->correlation_id);
        else
                r = serve(d->content ? d->content : "", dst, what, e);
        return finish(c, FAKE_A042, key, r);
}

int ers_fetch_cri(struct ers_client *c, const char *ubrn, struct spool_file *dst, struct ers_call *call,
                  struct errbuf *e) {
        char what[32], letter[64];
        const struct held_referral *h;
        int r;

        snprintf(what, sizeof what, "A007 UBRN %s", ubrn);
        r = begin(c, FAKE_A007, ubrn, what, call, e);
        if (r < 0)
                return finish(c, FAKE_A007, ubrn, r);
        h = held(ubrn);
        if (!h || h->gone) {
                r = err_set(e, -ENOENT, "%s: HTTP 404 (correlation id %s)", what, call->correlation_id);
                return finish(c, FAKE_A007, ubrn, r);
        }
        snprintf(letter, sizeof letter, "letter %s v%" PRId64, ubrn, h->r.version);
        r = serve(h->r.letter ? h->r.letter : letter, dst, what, e);
        return finish(c, FAKE_A007, ubrn, r);
}

/* The services' calls are the operators' commands', never the engine's: the
 * engine's scenarios never script them, and a call says so. */
int ers_read_service(struct ers_client *c, const char *id, struct ers_service *ret, struct ers_call *call,
                     struct errbuf *e) {
        (void) c;
        (void) ret;
        memset(call, 0, sizeof *call);
        call->retry_after = -1;
        return err_set(e, -ENOTSUP, "A033 service %s: not scripted in the fake e-RS", id);
}

int ers_search_services(struct ers_client *c, const char *const *ids, size_t n, struct ers_service_list *ret,
                        struct ers_call *call, struct errbuf *e) {
        (void) c;
        (void) ids;
        (void) ret;
        memset(call, 0, sizeof *call);
        call->retry_after = -1;
        return err_set(e, -ENOTSUP, "A035: %zu service(s): not scripted in the fake e-RS", n);
}

/* ---- ers_writeback.h ----------------------------------------------------------------------- */

/* The status, e-RS code and line the real client gives for `outcome`, into res and e. */
static void write_answer(enum ers_wb_outcome outcome, const char *what, struct ers_wb_result *res, struct ers_call *call,
                         struct errbuf *e) {
        static const struct {
                enum ers_wb_outcome outcome;
                long status;
                const char *code;
        } answers[] = {
                { ERS_WB_DONE, 200, "" },           { ERS_WB_REJECTED, 422, "INVALID_REQUEST_STATE" },
                { ERS_WB_STALE, 409, "CONFLICT" },  { ERS_WB_RETRY, 503, "SERVICE_UNAVAILABLE" },
                { ERS_WB_FORBIDDEN, 403, "ACCESS_DENIED" }, { ERS_WB_MAY_HAVE_REACHED, 0, "" },
        };

        for (size_t i = 0; i < sizeof answers / sizeof answers[0]; i++) {
                if (answers[i].outcome != outcome)
                        continue;
                res->outcome = outcome;
                res->http_status = call->http_status = answers[i].status;
                snprintf(res->code, sizeof res->code, "%s", answers[i].code);
                if (outcome == ERS_WB_MAY_HAVE_REACHED)
                        err_set(e, 0, "%s: no answer: connection closed (correlation id %s); it may have reached "
                                      "e-RS: read the referral (A005) before anything else", what, call->correlation_id);
                else if (outcome != ERS_WB_DONE)
                        err_set(e, 0, "%s: HTTP %ld, e-RS %s (correlation id %s)", what, answers[i].status,
                                answers[i].code, call->correlation_id);
        }
}

/* A write-back call: A029 at `version`, A028 or A013 on the referral decided at `version`. */
static int fake_write_back(struct ers_client *c, enum fake_endpoint endpoint, const char *ubrn, int64_t version,
                           struct ers_wb_result *res, struct ers_call *call, struct errbuf *e) {
        bool write = endpoint != FAKE_A029;
        const struct write_script *script = NULL;
        struct held_referral *h;
        char what[64];
        int r;

        memset(res, 0, sizeof *res);
        res->outcome = ERS_WB_RETRY;
        res->version = -1;
        if (!ubrn || !ubrn_valid(ubrn) || version < 0)
                return err_set(e, -EINVAL, "%s: the UBRN given is not 12 digits, or no version, not sent",
                               ENDPOINT_NAME[endpoint]);
        snprintf(what, sizeof what, "%s UBRN %s %s %" PRId64, ENDPOINT_NAME[endpoint], ubrn,
                 write ? "on version" : "version", version);
        r = begin(c, endpoint, ubrn, what, call, e);
        if (r == -ECANCELED)
                return finish(c, endpoint, ubrn, r);
        if (r < 0) { /* a fake_ers_fail() failure: after the request left */
                res->http_status = call->http_status;
                res->outcome = write ? ers_wb_classify_write(r, call->http_status, true, NULL)
                                     : ers_wb_classify_read(r, call->http_status, NULL);
                return finish_with(c, endpoint, ubrn, 0, ers_wb_outcome_name(res->outcome));
        }
        for (size_t i = 0; i < fake.n_writes && !script; i++) {
                struct write_script *w = &fake.writes[i];
                if (w->spent || w->endpoint != endpoint || (w->key && strcmp(w->key, ubrn) != 0))
                        continue;
                if (w->times > 0 && --w->times == 0)
                        w->spent = true;
                script = w;
        }
        h = held(ubrn);
        if (script && script->outcome != ERS_WB_DONE) {
                if (script->outcome == ERS_WB_MAY_HAVE_REACHED && script->applied && write && h && !h->gone)
                        h->r.version++;
                write_answer(script->outcome, what, res, call, e);
        } else if (!h || h->gone) {
                write_answer(ERS_WB_REJECTED, what, res, call, e);
                res->http_status = call->http_status = 404;
                snprintf(res->code, sizeof res->code, "REC_NOT_FOUND");
                err_set(e, 0, "%s: HTTP 404, e-RS REC_NOT_FOUND (correlation id %s)", what, call->correlation_id);
        } else if (h->r.version != version) {
                write_answer(ERS_WB_STALE, what, res, call, e);
                res->http_status = call->http_status = write ? 412 : 400;
                snprintf(res->code, sizeof res->code, "%s", write ? "PRECONDITION_FAILED" : "HISTORY_NOT_SUPPORTED");
                err_set(e, 0, "%s: HTTP %ld, e-RS %s (correlation id %s)", what, res->http_status, res->code,
                        call->correlation_id);
        } else {
                write_answer(ERS_WB_DONE, what, res, call, e);
                if (write)
                        res->version = ++h->r.version;
                else
                        res->actions = ERS_ACTION_RECORD_REVIEW_OUTCOME;
        }
        return finish_with(c, endpoint, ubrn, 0, res->outcome == ERS_WB_DONE ? NULL : ers_wb_outcome_name(res->outcome));
}

int ers_allowed_actions(struct ers_client *c, const char *ubrn, int64_t version, struct ers_wb_result *res,
                        struct ers_call *call, struct errbuf *e) {
        return fake_write_back(c, FAKE_A029, ubrn, version, res, call, e);
}

int ers_record_review_outcome(struct ers_client *c, const char *ubrn, int64_t decided_version, const char *outcome,
                              const char *comment, const char *new_priority, struct ers_wb_result *res,
                              struct ers_call *call, struct errbuf *e) {
        int r = fhir_review_check(outcome, comment, new_priority, e);

        if (r < 0) {
                memset(res, 0, sizeof *res);
                res->outcome = ERS_WB_RETRY;
                res->version = -1;
                return r;
        }
        return fake_write_back(c, FAKE_A028, ubrn, decided_version, res, call, e);
}

int ers_accept_referral(struct ers_client *c, const char *ubrn, int64_t decided_version, struct ers_wb_result *res,
                        struct ers_call *call, struct errbuf *e) {
        return fake_write_back(c, FAKE_A013, ubrn, decided_version, res, call, e);
}
