/* SPDX-License-Identifier: MIT */
/*
 * The mock's write-back endpoints (writeback.h, README.md "Write-back"), on
 * the synthetic data:
 *   A029  GET  /referrals/FHIR/STU3/Task?focus=ReferralRequest/{ubrn}/_history/{v}&intent=proposal&status=ready
 *   A028  POST /referrals/FHIR/STU3/ReferralRequest/{ubrn}/$ers.recordReviewOutcome
 *   A013  POST /referrals/FHIR/STU3/ReferralRequest/{ubrn}/$ers.acceptReferral
 * A write checks its body and If-Match against the referral's version (409
 * when it names an older one, 412 one that never was), 423 while the test
 * holds the referral locked, 422 INVALID_REQUEST_STATE when the referral's
 * state does not allow it, 403 while the test has the application
 * unapproved; applied, the referral takes a new version (and state) that
 * A005 and the worklists then show, and the answer is the ReferralRequest.
 * Every request is recorded (/_mock/writeback/record); faults are injected
 * per endpoint: a connection dropped before or after the write is applied,
 * an answer delayed, an error status.
 *
 * Not here: the routing and the checks every API request gets first (401,
 * 403 for user headers, 406), the call record (server.c); the referrals and
 * their rendering (data.c, render.c).  In world mode the same checks and
 * faults apply to the world's referrals (world.c keeps what a write applied,
 * across worlds).
 *
 * Everything below is under mock.lock, as the referrals it changes are.
 */
#include "writeback.h"

#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define FHIR_JSON "application/fhir+json"
#define PROFILE_REVIEW SD "eRS-RecordReviewOutcome-Parameters-1"
#define PROFILE_TASK "https://fhir.hl7.org.uk/STU3/StructureDefinition/CareConnect-Task-1"
#define SYS_REVIEW CS "eRS-ReviewOutcome-1"
#define SYS_ACTIONS CS "eRS-AvailableActionsForUser-1"
#define FOCUS_PREFIX "ReferralRequest/"
#define RECORD_MAX 100000    /* requests the record keeps */
#define DELAY_MAX_MS 60000   /* the longest a `delay` fault holds an answer */

enum action { A029, A028, A013, N_ACTIONS };
static const char *const ACTION_NAMES[N_ACTIONS] = { "A029", "A028", "A013" };

enum fault_kind_wb { WB_STATUS, WB_DROP, WB_DROP_BEFORE, WB_DELAY };

static const struct {
        const char *name;
        enum fault_kind_wb kind;
        unsigned status;
} FAULTS[] = {
        { "drop", WB_DROP, 0 },  { "drop_before", WB_DROP_BEFORE, 0 }, { "delay", WB_DELAY, 0 },
        { "422", WB_STATUS, 422 }, { "429", WB_STATUS, 429 }, { "500", WB_STATUS, 500 },
        { "502", WB_STATUS, 502 }, { "503", WB_STATUS, 503 }, { "504", WB_STATUS, 504 },
};

struct wb_fault {
        enum action action;
        size_t kind;      /* index into FAULTS */
        char ubrn[13];    /* "" = any */
        char code[64];    /* the OperationOutcome's code, "" = the status's own */
        int retry_after;  /* -1: the status's own (1 for 429) */
        unsigned delay_ms;
        unsigned count;   /* requests left */
        struct wb_fault *next;
};

/* What the test set on one referral. */
struct wb_ref {
        char ubrn[13];
        bool locked;   /* A028 and A013 answer 423 */
        bool accepted; /* A013 applied: a second is 422 */
};

/* One request, as the record keeps it. */
struct wb_record {
        double t;
        enum action action;
        char ubrn[13];
        bool has_if_match;
        char if_match[40];       /* as sent, cut */
        char body_sha256[65];    /* of the exact body bytes; "" when there was none */
        char comment_sha256[65]; /* of reviewComments' valueString as decoded; "" none */
        char review_outcome[40]; /* reviewOutcome's code as sent, cut; "" none */
        char priority[24];       /* reviewPriority's code as sent, cut; "" none */
        char correlation_id[48];
        unsigned status;         /* 0: the connection was dropped */
        bool applied;
        int64_t version;         /* the referral's after the request; -1: no such referral */
        const char *fault;       /* static, or NULL */
};

static struct {
        bool unapproved[N_ACTIONS];
        struct wb_fault *faults;
        struct wb_ref *refs;
        size_t n_refs, cap_refs;
        struct wb_record *rec;
        size_t n_rec, cap_rec;
} wb;

/* One request being answered. */
struct request {
        struct mock *m;
        struct MHD_Connection *conn;
        enum action action;
        struct wb_reply *ret;
        struct wb_record rec;
        bool faulted;
        struct wb_fault fault; /* a copy of the fault taken, when faulted */
};

/* ---- small pieces ------------------------------------------------------------- */

static const char *header(struct MHD_Connection *conn, const char *name)
{
        return MHD_lookup_connection_value(conn, MHD_HEADER_KIND, name);
}

static const char *arg(struct MHD_Connection *conn, const char *name)
{
        return MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, name);
}

static bool digits(const char *s, size_t n)
{
        return strspn(s, "0123456789") >= n && n > 0;
}

/* The answers: each returns 0, so that a handler says `return out_…(…);`. */
static int out_outcome(struct wb_reply *ret, unsigned status, const char *issue, const char *code,
                       const char *display, const char *diagnostics)
{
        ret->status = status;
        ret->body = render_outcome(issue, code, display, diagnostics, &ret->len);
        ret->content_type = FHIR_JSON;
        return 0;
}

static int out_json(struct wb_reply *ret, unsigned status, json_object *o)
{
        ret->status = status;
        ret->body = json_text(o, &ret->len);
        ret->content_type = "application/json";
        return 0;
}

static int out_error(struct wb_reply *ret, unsigned status, const char *message)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "error", json_object_new_string(message));
        return out_json(ret, status, o);
}

static int state_index(const char *code)
{
        for (int i = 0; i < N_REAL_STATES; i++)
                if (strcmp(STATES[i].code, code) == 0)
                        return i;
        return -1;
}

/* The test's settings for ubrn, added when `add`; NULL when none.  Under the lock. */
static struct wb_ref *ref_locked(const char *ubrn, bool add)
{
        for (size_t i = 0; i < wb.n_refs; i++)
                if (strcmp(wb.refs[i].ubrn, ubrn) == 0)
                        return &wb.refs[i];
        if (!add)
                return NULL;
        if (wb.n_refs == wb.cap_refs) {
                size_t cap = wb.cap_refs ? 2 * wb.cap_refs : 16;
                struct wb_ref *n = realloc(wb.refs, cap * sizeof *n);
                if (!n)
                        return NULL;
                wb.refs = n;
                wb.cap_refs = cap;
        }
        struct wb_ref *r = &wb.refs[wb.n_refs++];
        memset(r, 0, sizeof *r);
        snprintf(r->ubrn, sizeof r->ubrn, "%s", ubrn);
        return r;
}

/* The UBRN of an A029 focus "ReferralRequest/{ubrn}/_history/{v}" into ubrn[13] and its
 * version into *ret_version (-1 without _history); false when it is not one. */
static bool parse_focus(const char *focus, char ubrn[13], int64_t *ret_version)
{
        size_t n = strlen(FOCUS_PREFIX);

        if (!focus || strncmp(focus, FOCUS_PREFIX, n) != 0 || !digits(focus + n, 12))
                return false;
        memcpy(ubrn, focus + n, 12);
        ubrn[12] = '\0';
        const char *tail = focus + n + 12;
        *ret_version = -1;
        if (!*tail)
                return true;
        if (strncmp(tail, "/_history/", 10) != 0 || !digits(tail + 10, strlen(tail + 10)) || strlen(tail + 10) > 18)
                return false;
        *ret_version = strtoll(tail + 10, NULL, 10);
        return true;
}

const char *writeback_endpoint(struct MHD_Connection *conn, const char *url, char *key, size_t key_size)
{
        static const char stu3[] = "/referrals/FHIR/STU3/";
        int64_t version;
        char ubrn[13];

        key[0] = '\0';
        if (strncmp(url, stu3, sizeof stu3 - 1) != 0)
                return NULL;
        url += sizeof stu3 - 1;
        if (strcmp(url, "Task") == 0) {
                if (parse_focus(arg(conn, "focus"), ubrn, &version))
                        snprintf(key, key_size, "%s", ubrn);
                return ACTION_NAMES[A029];
        }
        if (strncmp(url, FOCUS_PREFIX, strlen(FOCUS_PREFIX)) != 0)
                return NULL;
        url += strlen(FOCUS_PREFIX);
        size_t ul = strcspn(url, "/");
        const char *tail = url + ul;
        const char *name = strcmp(tail, "/$ers.recordReviewOutcome") == 0 ? ACTION_NAMES[A028]
                           : strcmp(tail, "/$ers.acceptReferral") == 0     ? ACTION_NAMES[A013]
                                                                           : NULL;
        if (name && ul == 12 && digits(url, 12))
                snprintf(key, key_size, "%.12s", url);
        return name;
}

/* Takes one use of the first fault for (action, ubrn) into q->fault.  Under the lock. */
static void fault_take_locked(struct request *q)
{
        for (struct wb_fault **pp = &wb.faults; *pp; pp = &(*pp)->next) {
                struct wb_fault *f = *pp;
                if (f->action != q->action || (f->ubrn[0] && strcmp(f->ubrn, q->rec.ubrn) != 0))
                        continue;
                q->fault = *f;
                q->faulted = true;
                q->rec.fault = FAULTS[f->kind].name;
                q->ret->fault = true;
                if (--f->count == 0) {
                        *pp = f->next;
                        free(f);
                }
                return;
        }
}

/* A status fault's answer; the fault's code when it gave one. */
static int fault_status(struct request *q)
{
        unsigned status = FAULTS[q->fault.kind].status;
        const char *code = q->fault.code[0] ? q->fault.code
                           : status == 422  ? "INVALID_REQUEST_STATE"
                           : status == 429  ? "TOO_MANY_REQUESTS"
                           : status == 500  ? "SERVICE_ERROR"
                           : status == 502  ? "BAD_GATEWAY"
                           : status == 503  ? "SERVICE_UNAVAILABLE"
                                            : "GATEWAY_TIMEOUT";

        out_outcome(q->ret, status, status == 422 ? "business-rule" : status == 429 ? "throttled" : "exception", code,
                    "Injected", "injected by the mock");
        if (status == 429 || (status == 503 && q->fault.retry_after >= 0))
                q->ret->retry_after = q->fault.retry_after >= 0 ? q->fault.retry_after : 1;
        return 0;
}

/* The referral a write-back is about, as e-RS shows it now: the synthetic data's, or a world's. */
struct subject {
        bool world;
        struct referral *r; /* the synthetic data's; NULL in world mode */
        bool known;         /* neither unknown nor gone */
        int64_t version;    /* -1 when not known */
        char state[48];     /* its state's code; "" none */
};

/* Takes the lock and looks ubrn up into *s (the caller unlocks). */
static void subject_locked_begin(struct mock *m, const char *ubrn, struct subject *s)
{
        memset(s, 0, sizeof *s);
        s->world = world_mode(m);
        s->r = s->world ? NULL : mock_find_referral(m, ubrn);
        s->version = -1;
        pthread_mutex_lock(&m->lock);
        if (s->world) {
                s->known = world_wb_view_locked(m, ubrn, &s->version, s->state, sizeof s->state);
                return;
        }
        s->known = s->r && !s->r->gone;
        if (s->known) {
                s->version = s->r->version;
                snprintf(s->state, sizeof s->state, "%s", STATES[state_after(s->r, s->r->bumps)].code);
        }
}

/* Whether a review outcome may be recorded in this state (A029 offers it, A028 takes it). */
static bool reviewable(const char *state)
{
        return strcmp(state, "AWAITING_TRIAGE") == 0 || strcmp(state, STATES[STATE_DEFERRED].code) == 0;
}

/* ---- A029: the actions allowed now ------------------------------------------------ */

static json_object *task(const char *ubrn, int64_t version, unsigned n, const char *code, const char *display)
{
        json_object *t = json_object_new_object(), *focus = json_object_new_object();
        json_object *concept = json_object_new_object(), *coding = json_object_new_object();
        char id[48], ref[64];

        snprintf(id, sizeof id, "task-%s-%u", ubrn, n);
        snprintf(ref, sizeof ref, FOCUS_PREFIX "%s/_history/%" PRId64, ubrn, version);
        fhir_put(t, "id", json_object_new_string(id));
        fhir_put(t, "meta", fhir_meta(PROFILE_TASK, NULL));
        fhir_put(t, "resourceType", json_object_new_string("Task"));
        fhir_put(t, "status", json_object_new_string("ready"));
        fhir_put(t, "intent", json_object_new_string("proposal"));
        fhir_put(focus, "reference", json_object_new_string(ref));
        fhir_put(t, "focus", focus);
        fhir_put(coding, "system", json_object_new_string(SYS_ACTIONS));
        fhir_put(coding, "code", json_object_new_string(code));
        fhir_put(coding, "display", json_object_new_string(display));
        fhir_put(concept, "coding", fhir_arr1(coding));
        fhir_put(t, "code", concept);
        return t;
}

static int handle_a029(struct request *q)
{
        struct mock *m = q->m;
        const char *focus = arg(q->conn, "focus"), *intent = arg(q->conn, "intent"), *status = arg(q->conn, "status");
        int64_t asked;
        char ubrn[13];

        if (!focus || !intent || !status)
                return out_outcome(q->ret, 400, "required", "MISSING_PARAMETER", "Missing parameter",
                                   "focus, intent and status are required");
        if (strcmp(intent, "proposal") != 0 || strcmp(status, "ready") != 0)
                return out_outcome(q->ret, 400, "value", "INVALID_VALUE", "Invalid value",
                                   "intent must be proposal and status ready");
        if (!parse_focus(focus, ubrn, &asked) || asked < 0)
                return out_outcome(q->ret, 400, "value", "INVALID_VALUE", "Invalid value",
                                   "focus must be ReferralRequest/{ubrn}/_history/{version}");
        struct subject sj;
        subject_locked_begin(m, ubrn, &sj);
        bool known = sj.known;
        fault_take_locked(q);
        int64_t version = sj.version;
        pthread_mutex_unlock(&m->lock);
        q->rec.version = version;
        if (!known)
                return out_outcome(q->ret, 400, "not-found", "REFERENCE_NOT_FOUND", "Reference not found",
                                   "no referral with that UBRN");
        if (q->faulted && FAULTS[q->fault.kind].kind == WB_STATUS)
                return fault_status(q);
        if (asked != version)
                return out_outcome(q->ret, 400, "not-supported", "HISTORY_NOT_SUPPORTED", "History not supported",
                                   "only the current version of the UBRN is permissible");

        json_object *bundle = json_object_new_object(), *entries = json_object_new_array(), *link;
        char self[160];
        unsigned n = 0;
        struct {
                bool allowed;
                const char *code, *display;
        } actions[] = {
                { reviewable(sj.state), "RECORD_REVIEW_OUTCOME", "Record Review Outcome" },
                { strcmp(sj.state, "CANCELLED_REFERRAL") != 0, "CANCEL_REFERRAL", "Cancel Referral" },
        };
        for (size_t i = 0; i < sizeof actions / sizeof actions[0]; i++) {
                if (!actions[i].allowed)
                        continue;
                json_object *entry = json_object_new_object(), *search = json_object_new_object();
                char full[96];
                snprintf(full, sizeof full, "_baseUrl_/STU3/Task/task-%s-%u", ubrn, n);
                fhir_put(entry, "fullUrl", json_object_new_string(full));
                fhir_put(entry, "resource", task(ubrn, version, n++, actions[i].code, actions[i].display));
                fhir_put(search, "mode", json_object_new_string("match"));
                fhir_put(entry, "search", search);
                json_object_array_add(entries, entry);
        }
        snprintf(self, sizeof self, "_baseUrl_/STU3/Task?focus=%s&intent=proposal&status=ready", focus);
        link = json_object_new_object();
        fhir_put(link, "relation", json_object_new_string("self"));
        fhir_put(link, "url", json_object_new_string(self));
        fhir_put(bundle, "resourceType", json_object_new_string("Bundle"));
        fhir_put(bundle, "id", json_object_new_string(ubrn));
        fhir_put(bundle, "meta", fhir_meta("http://hl7.org/fhir/STU3/StructureDefinition/Bundle", NULL));
        fhir_put(bundle, "type", json_object_new_string("searchset"));
        fhir_put(bundle, "link", fhir_arr1(link));
        fhir_put(bundle, "entry", entries);
        q->ret->status = 200;
        q->ret->body = json_text(bundle, &q->ret->len);
        q->ret->content_type = FHIR_JSON;
        return 0;
}

/* ---- A028's body ---------------------------------------------------------------------- */

struct review {
        char outcome[40];  /* "" when absent */
        char priority[24]; /* "" when absent */
        bool has_comment;
};

static const char *get_str(json_object *o, const char *key)
{
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

/* The code of p.valueCoding when its system is `system`; NULL otherwise. */
static const char *coding_code(json_object *p, const char *system)
{
        json_object *c;
        const char *sys;
        if (!json_object_object_get_ex(p, "valueCoding", &c) || !(sys = get_str(c, "system")) || strcmp(sys, system))
                return NULL;
        return get_str(c, "code");
}

/* Validates the Parameters of A028 into rv (and the record); 0, or the status with code and diagnostics. */
static unsigned parse_review(json_object *root, struct request *q, struct review *rv, const char **ret_code,
                             char *diag, size_t dl)
{
        json_object *params, *meta, *profiles;
        bool profiled = false;

        *ret_code = "INVALID_FHIR_STRUCTURE";
        if (!json_object_is_type(root, json_type_object) || !get_str(root, "resourceType") ||
            strcmp(get_str(root, "resourceType"), "Parameters") != 0) {
                snprintf(diag, dl, "the body must be a Parameters resource");
                return 422;
        }
        json_object_object_foreach(root, key, val) {
                (void)val;
                if (strcmp(key, "resourceType") && strcmp(key, "meta") && strcmp(key, "parameter") && strcmp(key, "id")) {
                        *ret_code = "UNEXPECTED_FIELD";
                        snprintf(diag, dl, "'%.64s' unexpected field", key);
                        return 422;
                }
        }
        if (json_object_object_get_ex(root, "meta", &meta) && json_object_object_get_ex(meta, "profile", &profiles) &&
            json_object_is_type(profiles, json_type_array))
                for (size_t i = 0; i < json_object_array_length(profiles); i++) {
                        const char *p = json_object_get_string(json_object_array_get_idx(profiles, i));
                        profiled = profiled || (p && strcmp(p, PROFILE_REVIEW) == 0);
                }
        if (!profiled) {
                *ret_code = "INVALID_VALUE";
                snprintf(diag, dl, "meta.profile must name %s", PROFILE_REVIEW);
                return 422;
        }
        if (!json_object_object_get_ex(root, "parameter", &params) || !json_object_is_type(params, json_type_array)) {
                *ret_code = "MISSING_VALUE";
                snprintf(diag, dl, "'parameter' must be an array");
                return 422;
        }
        for (size_t i = 0; i < json_object_array_length(params); i++) {
                json_object *p = json_object_array_get_idx(params, i), *v;
                const char *name = json_object_is_type(p, json_type_object) ? get_str(p, "name") : NULL;
                const char *code;
                *ret_code = "INVALID_VALUE";
                if (!name) {
                        snprintf(diag, dl, "'parameter[%zu]' has no name", i);
                        return 422;
                }
                if (strcmp(name, "reviewOutcome") == 0) {
                        if (rv->outcome[0]) {
                                snprintf(diag, dl, "reviewOutcome given twice");
                                return 422;
                        }
                        code = coding_code(p, SYS_REVIEW);
                        snprintf(rv->outcome, sizeof rv->outcome, "%s", code ? code : "?");
                        if (!code || (strcmp(code, "RETURN_TO_REFERRER_WITH_ADVICE") &&
                                      strcmp(code, "ACCEPT_REFER_BOOK_LATER"))) {
                                *ret_code = "INVALID_CODE";
                                snprintf(diag, dl, "reviewOutcome: only RETURN_TO_REFERRER_WITH_ADVICE and "
                                                   "ACCEPT_REFER_BOOK_LATER of %s are supported", SYS_REVIEW);
                                return 422;
                        }
                } else if (strcmp(name, "reviewComments") == 0) {
                        if (rv->has_comment || !json_object_object_get_ex(p, "valueString", &v) ||
                            !json_object_is_type(v, json_type_string)) {
                                snprintf(diag, dl, "reviewComments: one valueString");
                                return 422;
                        }
                        rv->has_comment = true;
                        size_t len = (size_t)json_object_get_string_len(v);
                        unsigned char sha[32];
                        sha256_buf(json_object_get_string(v), len, sha);
                        sha256_hex(sha, q->rec.comment_sha256);
                        if (len == 0) {
                                *ret_code = "VALUE_IS_REQUIRED";
                                snprintf(diag, dl, "reviewComments is mandatory");
                                return 422;
                        }
                } else if (strcmp(name, "reviewPriority") == 0) {
                        code = coding_code(p, SYS_PRIORITY);
                        snprintf(rv->priority, sizeof rv->priority, "%s", code ? code : "?");
                        if (!code || (strcmp(code, "ROUTINE") && strcmp(code, "URGENT") && strcmp(code, "TWO_WEEK_WAIT"))) {
                                *ret_code = "INVALID_CODE";
                                snprintf(diag, dl, "reviewPriority: a code of %s", SYS_PRIORITY);
                                return 422;
                        }
                } else if (strcmp(name, "reviewAttachmentFile") == 0) {
                        *ret_code = "INAPPROPRIATE_VALUE";
                        snprintf(diag, dl, "the mock takes no attachment with a review");
                        return 422;
                } else {
                        snprintf(diag, dl, "'parameter[%zu]': unknown parameter '%.40s'", i, name);
                        return 422;
                }
        }
        *ret_code = "MISSING_VALUE";
        if (!rv->outcome[0] || !rv->has_comment) {
                snprintf(diag, dl, "reviewOutcome and reviewComments are mandatory");
                return 422;
        }
        if (rv->priority[0] && strcmp(rv->outcome, "RETURN_TO_REFERRER_WITH_ADVICE") == 0) {
                *ret_code = "PRIORITY_NOT_CURRENT";
                snprintf(diag, dl, "'Review Priority' cannot be amended with RETURN_TO_REFERRER_WITH_ADVICE");
                return 422;
        }
        return 0;
}

/* ---- A028 and A013 -------------------------------------------------------------------- */

/* r's state moves to `target` by the fewest bumps (the state walk of data.c). */
static void move_to_state(struct referral *r, int target)
{
        for (unsigned b = r->bumps + 1; b <= r->bumps + N_REAL_STATES; b++)
                if (state_after(r, b) == target) {
                        r->bumps = b;
                        return;
                }
}

/* r's priority becomes `code`, its version left to the write. */
static void set_priority(struct mock *m, struct referral *r, const char *code)
{
        int64_t version = r->version;
        const char *why = NULL;

        for (int i = 0; i < 4 && strcmp(r->priority->code, code) != 0; i++)
                mock_change_locked(m, r, "priority", NULL, &why);
        r->version = version;
}

/* If-Match W/"n" into *ret; false when it is not that. */
static bool parse_if_match(const char *h, int64_t *ret)
{
        size_t n;
        if (!h || strncmp(h, "W/\"", 3) != 0)
                return false;
        n = strspn(h + 3, "0123456789");
        if (n == 0 || n > 18 || strcmp(h + 3 + n, "\"") != 0)
                return false;
        *ret = strtoll(h + 3, NULL, 10);
        return true;
}

static int handle_write(struct request *q, const char *body, size_t len, bool too_big)
{
        struct mock *m = q->m;
        struct review rv = { 0 };
        char diag[256];
        const char *code = NULL;
        int64_t decided = -1;

        if (q->action == A028) {
                const char *ct = header(q->conn, MHD_HTTP_HEADER_CONTENT_TYPE);
                if (!ct || strncasecmp(ct, FHIR_JSON, strlen(FHIR_JSON)) != 0 || !strchr(" \t;", ct[strlen(FHIR_JSON)]))
                        return out_outcome(q->ret, 415, "not-supported", "UNSUPPORTED_MEDIA_TYPE",
                                           "Unsupported media type", "Content-Type must be application/fhir+json");
                if (too_big)
                        return out_outcome(q->ret, 413, "too-costly", "REQUEST_TOO_LARGE", "Request too large",
                                           "the request body is too large");
                enum json_tokener_error jerr = json_tokener_success;
                json_object *root = body ? json_tokener_parse_verbose(body, &jerr) : NULL;
                if (!root) {
                        snprintf(diag, sizeof diag, "the body is not valid JSON: %s",
                                 body ? json_tokener_error_desc(jerr) : "empty body");
                        return out_outcome(q->ret, 400, "invalid", "INVALID_FHIR_STRUCTURE", "Invalid FHIR structure",
                                           diag);
                }
                unsigned status = parse_review(root, q, &rv, &code, diag, sizeof diag);
                json_object_put(root);
                snprintf(q->rec.review_outcome, sizeof q->rec.review_outcome, "%s", rv.outcome);
                snprintf(q->rec.priority, sizeof q->rec.priority, "%s", rv.priority);
                if (status)
                        return out_outcome(q->ret, status, "value", code, NULL, diag);
        } else if (len > 0 || too_big)
                return out_outcome(q->ret, 400, "invalid", "INVALID_FHIR_STRUCTURE", "Invalid FHIR structure",
                                   "A013 takes no body");

        struct subject sj;
        struct referral_view v;
        bool viewed = false;
        unsigned status = 200;

        subject_locked_begin(m, q->rec.ubrn, &sj);
        struct referral *r = sj.r;
        if (!sj.known) {
                pthread_mutex_unlock(&m->lock);
                return out_outcome(q->ret, 404, "not-found", "REC_NOT_FOUND", "Resource not found",
                                   "no referral with that UBRN");
        }
        fault_take_locked(q);
        enum fault_kind_wb kind = q->faulted ? FAULTS[q->fault.kind].kind : WB_DELAY;
        if (q->faulted && (kind == WB_STATUS || kind == WB_DROP_BEFORE)) {
                q->rec.version = sj.version;
                pthread_mutex_unlock(&m->lock);
                if (kind == WB_DROP_BEFORE)
                        return 0; /* writeback_answer() drops the connection: nothing applied */
                return fault_status(q);
        }
        struct wb_ref *ref = ref_locked(q->rec.ubrn, false);
        const char *h = header(q->conn, "If-Match");
        if (!h) {
                status = 400;
                code = "MISSING_VALUE";
                snprintf(diag, sizeof diag, "If-Match is required");
        } else if (!parse_if_match(h, &decided)) {
                status = 400;
                code = "INVALID_VALUE";
                snprintf(diag, sizeof diag, "If-Match must be W/\"<version>\"");
        } else if (decided < sj.version) {
                status = 409;
                code = "CONFLICT";
                snprintf(diag, sizeof diag, "the referral has been updated since version %" PRId64 ": it is at %" PRId64,
                         decided, sj.version);
        } else if (decided > sj.version) {
                status = 412;
                code = "PRECONDITION_FAILED";
                snprintf(diag, sizeof diag, "no version %" PRId64 " of this referral", decided);
        } else if (ref && ref->locked) {
                status = 423;
                code = "LOCKED";
                snprintf(diag, sizeof diag, "the referral is locked by another user");
        } else if (q->action == A028 ? !reviewable(sj.state)
                                     : strcmp(sj.state, "BOOKED") != 0 || (ref && ref->accepted)) {
                status = 422;
                code = "INVALID_REQUEST_STATE";
                snprintf(diag, sizeof diag, "the referral is %.40s%s: %s is not allowed now",
                         sj.state[0] ? sj.state : "(no state)", ref && ref->accepted ? " and accepted" : "",
                         ACTION_NAMES[q->action]);
        } else {
                /* applied */
                const char *to = q->action != A028 ? NULL
                                 : strcmp(rv.outcome, "RETURN_TO_REFERRER_WITH_ADVICE") == 0 ? "TRIAGE_RESPONSE"
                                                                                         : "TRIAGED_PROVIDER_TO_ACTION";
                if (q->action == A013 && (ref = ref_locked(q->rec.ubrn, true)))
                        ref->accepted = true;
                if (sj.world)
                        world_wb_apply_locked(m, q->rec.ubrn, to, rv.priority[0] ? rv.priority : NULL);
                else {
                        if (to)
                                move_to_state(r, state_index(to));
                        if (rv.priority[0])
                                set_priority(m, r, rv.priority);
                        r->version++;
                        viewed = view_take_locked(m, r, 0, &v) == 0;
                }
                sj.version++;
                q->rec.applied = true;
        }
        q->rec.version = sj.version;
        pthread_mutex_unlock(&m->lock);
        if (status != 200)
                return out_outcome(q->ret, status, status == 409 ? "conflict" : status == 423 ? "lock-error" : "value",
                                   code, NULL, diag);
        int64_t served = 0;
        q->ret->status = 200;
        q->ret->body = viewed      ? render_referral(m, &v, &q->ret->len)
                       : sj.world ? world_render_referral(m, q->rec.ubrn, &q->ret->len, &served)
                                  : NULL;
        q->ret->content_type = FHIR_JSON;
        snprintf(q->ret->etag, sizeof q->ret->etag, "W/\"%" PRId64 "\"", q->rec.version);
        if (viewed)
                view_release(&v);
        return 0;
}

/* ---- the request, its faults and its record ------------------------------------------- */

static void wait_ms(struct mock *m, unsigned ms)
{
        struct timespec until;

        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += ms / 1000;
        until.tv_nsec += (long)(ms % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
                until.tv_sec++;
                until.tv_nsec -= 1000000000L;
        }
        pthread_mutex_lock(&m->lock);
        while (!m->stopping && pthread_cond_timedwait(&m->wake, &m->lock, &until) != ETIMEDOUT)
                ;
        pthread_mutex_unlock(&m->lock);
}

static void record_locked(const struct wb_record *rec)
{
        if (wb.n_rec >= RECORD_MAX)
                return;
        if (wb.n_rec == wb.cap_rec) {
                size_t cap = wb.cap_rec ? 2 * wb.cap_rec : 256;
                struct wb_record *n = realloc(wb.rec, cap * sizeof *n);
                if (!n)
                        return;
                wb.rec = n;
                wb.cap_rec = cap;
        }
        wb.rec[wb.n_rec++] = *rec;
}

void writeback_answer(struct mock *m, struct MHD_Connection *conn, const char *method, const char *url,
                      const char *body, size_t len, bool body_too_big, double arrived, struct wb_reply *ret)
{
        struct request q = { .m = m, .conn = conn, .ret = ret };
        const char *name = writeback_endpoint(conn, url, q.rec.ubrn, sizeof q.rec.ubrn);
        const char *h;

        memset(ret, 0, sizeof *ret);
        ret->retry_after = -1;
        q.action = !name ? A029 : strcmp(name, "A028") == 0 ? A028 : strcmp(name, "A013") == 0 ? A013 : A029;
        q.rec.t = arrived;
        q.rec.action = q.action;
        q.rec.version = -1;
        if ((h = header(conn, "If-Match"))) {
                q.rec.has_if_match = true;
                snprintf(q.rec.if_match, sizeof q.rec.if_match, "%s", h);
        }
        if ((h = header(conn, "X-Correlation-ID")))
                snprintf(q.rec.correlation_id, sizeof q.rec.correlation_id, "%s", h);
        if (body && len > 0) {
                unsigned char sha[32];
                sha256_buf(body, len, sha);
                sha256_hex(sha, q.rec.body_sha256);
        }

        if (strcmp(method, q.action == A029 ? "GET" : "POST") != 0) {
                ret->allow = q.action == A029 ? "GET" : "POST";
                (void)out_outcome(ret, 405, "not-supported", "METHOD_NOT_ALLOWED", "Method not allowed",
                            "this path does not support that method");
        } else {
                pthread_mutex_lock(&m->lock);
                bool unapproved = wb.unapproved[q.action];
                pthread_mutex_unlock(&m->lock);
                if (unapproved)
                        (void)out_outcome(ret, 403, "forbidden", "ACCESS_DENIED", "Access denied",
                                    "the application is not approved for this use case");
                else if (q.action == A029)
                        (void)handle_a029(&q);
                else
                        (void)handle_write(&q, body, len, body_too_big);
        }

        enum fault_kind_wb kind = q.faulted ? FAULTS[q.fault.kind].kind : WB_STATUS;
        if (q.faulted && (kind == WB_DROP || kind == WB_DROP_BEFORE)) {
                free(ret->body);
                ret->body = NULL;
                ret->drop = true;
        }
        /* Recorded as it is decided (before a delay: a test may look while the answer waits). */
        q.rec.status = ret->drop ? 0 : ret->status;
        pthread_mutex_lock(&m->lock);
        record_locked(&q.rec);
        pthread_mutex_unlock(&m->lock);
        if (m->opt.verbose)
                fprintf(stderr, "mock-ers: write-back %s %s -> %u%s%s\n", ACTION_NAMES[q.action], q.rec.ubrn,
                        q.rec.status, q.rec.applied ? " (applied)" : "", q.faulted ? " (fault)" : "");
        if (q.faulted && kind == WB_DELAY)
                wait_ms(m, q.fault.delay_ms);
}

/* ---- controls ----------------------------------------------------------------------- */

static bool parse_uint(const char *s, unsigned long long min, unsigned long long max, unsigned long long *ret)
{
        char *end;
        if (!s || !*s || *s == '-' || *s == '+')
                return false;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return false;
        *ret = v;
        return true;
}

static bool parse_action(const char *s, enum action *ret)
{
        for (int a = 0; s && a < N_ACTIONS; a++)
                if (strcmp(s, ACTION_NAMES[a]) == 0) {
                        *ret = (enum action)a;
                        return true;
                }
        return false;
}

static json_object *opt_string(const char *s)
{
        return s[0] ? json_object_new_string(s) : NULL;
}

static json_object *record_json(struct mock *m)
{
        json_object *o = json_object_new_object(), *list = json_object_new_array();

        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < wb.n_rec; i++) {
                const struct wb_record *r = &wb.rec[i];
                json_object *e = json_object_new_object();
                json_object_object_add(e, "t", json_object_new_double(r->t));
                json_object_object_add(e, "endpoint", json_object_new_string(ACTION_NAMES[r->action]));
                json_object_object_add(e, "ubrn", json_object_new_string(r->ubrn));
                json_object_object_add(e, "if_match", r->has_if_match ? json_object_new_string(r->if_match) : NULL);
                json_object_object_add(e, "body_sha256", opt_string(r->body_sha256));
                json_object_object_add(e, "comment_sha256", opt_string(r->comment_sha256));
                json_object_object_add(e, "review_outcome", opt_string(r->review_outcome));
                json_object_object_add(e, "priority", opt_string(r->priority));
                json_object_object_add(e, "correlation_id", opt_string(r->correlation_id));
                json_object_object_add(e, "status", json_object_new_int((int)r->status));
                json_object_object_add(e, "applied", json_object_new_boolean(r->applied));
                json_object_object_add(e, "version", r->version >= 0 ? json_object_new_int64(r->version) : NULL);
                json_object_object_add(e, "fault", r->fault ? json_object_new_string(r->fault) : NULL);
                json_object_array_add(list, e);
        }
        pthread_mutex_unlock(&m->lock);
        json_object_object_add(o, "writes", list);
        return o;
}

static json_object *approvals_json_locked(void)
{
        json_object *o = json_object_new_object();
        for (int a = 0; a < N_ACTIONS; a++)
                json_object_object_add(o, ACTION_NAMES[a], json_object_new_boolean(!wb.unapproved[a]));
        return o;
}

static void faults_clear_locked(void)
{
        while (wb.faults) {
                struct wb_fault *f = wb.faults;
                wb.faults = f->next;
                free(f);
        }
}

static int control_fault(struct mock *m, struct MHD_Connection *conn, struct wb_reply *ret)
{
        const char *ubrn = arg(conn, "ubrn"), *code = arg(conn, "code"), *kind = arg(conn, "kind");
        unsigned long long count = 1, delay = 0, ra = 0;
        struct wb_fault f = { .retry_after = -1 };
        size_t k;

        for (k = 0; kind && k < sizeof FAULTS / sizeof FAULTS[0]; k++)
                if (strcmp(kind, FAULTS[k].name) == 0)
                        break;
        if (!parse_action(arg(conn, "action"), &f.action))
                return out_error(ret, 400, "action must be one of A029 A028 A013");
        if (!kind || k == sizeof FAULTS / sizeof FAULTS[0])
                return out_error(ret, 400, "kind must be one of drop drop_before delay 422 429 500 502 503 504");
        if (ubrn && (strlen(ubrn) != 12 || !digits(ubrn, 12)))
                return out_error(ret, 400, "ubrn must be 12 digits");
        if (arg(conn, "count") && !parse_uint(arg(conn, "count"), 1, 1000000, &count))
                return out_error(ret, 400, "count must be 1..1000000");
        if ((FAULTS[k].kind == WB_DELAY) != (arg(conn, "delay_ms") != NULL) ||
            (arg(conn, "delay_ms") && !parse_uint(arg(conn, "delay_ms"), 1, DELAY_MAX_MS, &delay)))
                return out_error(ret, 400, "delay_ms (1..60000) goes with kind delay, and only with it");
        if (arg(conn, "retry_after") && !parse_uint(arg(conn, "retry_after"), 0, 86400, &ra))
                return out_error(ret, 400, "retry_after must be 0..86400 seconds");
        if (code && (!*code || strlen(code) >= sizeof f.code))
                return out_error(ret, 400, "code must be 1..63 bytes");
        struct wb_fault *n = malloc(sizeof *n);
        if (!n)
                return out_error(ret, 500, "out of memory");
        f.kind = k;
        f.count = (unsigned)count;
        f.delay_ms = (unsigned)delay;
        f.retry_after = arg(conn, "retry_after") ? (int)ra : -1;
        if (ubrn)
                snprintf(f.ubrn, sizeof f.ubrn, "%s", ubrn);
        if (code)
                snprintf(f.code, sizeof f.code, "%s", code);
        *n = f;
        pthread_mutex_lock(&m->lock);
        struct wb_fault **pp = &wb.faults;
        while (*pp)
                pp = &(*pp)->next;
        *pp = n;
        pthread_mutex_unlock(&m->lock);
        json_object *o = json_object_new_object();
        json_object_object_add(o, "action", json_object_new_string(ACTION_NAMES[f.action]));
        json_object_object_add(o, "kind", json_object_new_string(FAULTS[k].name));
        json_object_object_add(o, "count", json_object_new_int64((int64_t)count));
        return out_json(ret, 200, o);
}

static int control(struct mock *m, struct MHD_Connection *conn, const char *what, const char *method,
                   struct wb_reply *ret)
{
        bool get = strcmp(method, "GET") == 0, post = strcmp(method, "POST") == 0;

        if (strcmp(what, "writeback/applied") == 0) {
                if (!get) {
                        ret->allow = "GET";
                        return out_error(ret, 405, "GET only");
                }
                return out_json(ret, 200, world_applied_json(m));
        }
        if (strcmp(what, "writeback/record") == 0) {
                if (!get) {
                        ret->allow = "GET";
                        return out_error(ret, 405, "GET only");
                }
                return out_json(ret, 200, record_json(m));
        }
        if (!post) {
                ret->allow = "POST";
                return out_error(ret, 405, "POST only");
        }
        if (strcmp(what, "writeback/record/reset") == 0) {
                pthread_mutex_lock(&m->lock);
                wb.n_rec = 0;
                pthread_mutex_unlock(&m->lock);
                return out_json(ret, 200, json_object_new_object());
        }
        if (strcmp(what, "writeback/reset") == 0) {
                pthread_mutex_lock(&m->lock);
                wb.n_rec = 0;
                wb.n_refs = 0;
                memset(wb.unapproved, 0, sizeof wb.unapproved);
                faults_clear_locked();
                pthread_mutex_unlock(&m->lock);
                return out_json(ret, 200, json_object_new_object());
        }
        if (strcmp(what, "writeback/fault") == 0)
                return control_fault(m, conn, ret);
        if (strcmp(what, "writeback/fault/clear") == 0) {
                pthread_mutex_lock(&m->lock);
                faults_clear_locked();
                pthread_mutex_unlock(&m->lock);
                return out_json(ret, 200, json_object_new_object());
        }
        if (strcmp(what, "writeback/lock") == 0) {
                const char *ubrn = arg(conn, "ubrn"), *locked = arg(conn, "locked");
                if (!ubrn || (world_mode(m) ? world_referral_check(m, ubrn, 0) != 0 : !mock_find_referral(m, ubrn)))
                        return out_error(ret, 404, "no referral with that ubrn");
                if (locked && strcmp(locked, "0") != 0 && strcmp(locked, "1") != 0)
                        return out_error(ret, 400, "locked must be 0 or 1");
                pthread_mutex_lock(&m->lock);
                struct wb_ref *r = ref_locked(ubrn, true);
                if (r)
                        r->locked = !locked || strcmp(locked, "1") == 0;
                pthread_mutex_unlock(&m->lock);
                if (!r)
                        return out_error(ret, 500, "out of memory");
                json_object *o = json_object_new_object();
                json_object_object_add(o, "ubrn", json_object_new_string(ubrn));
                json_object_object_add(o, "locked", json_object_new_boolean(!locked || strcmp(locked, "1") == 0));
                return out_json(ret, 200, o);
        }
        if (strcmp(what, "writeback/approve") == 0) {
                const char *action = arg(conn, "action"), *approved = arg(conn, "approved");
                enum action a = A029;
                bool all = action && strcmp(action, "all") == 0;
                if (!all && !parse_action(action, &a))
                        return out_error(ret, 400, "action must be A029, A028, A013 or all");
                if (!approved || (strcmp(approved, "0") != 0 && strcmp(approved, "1") != 0))
                        return out_error(ret, 400, "approved must be 0 or 1");
                pthread_mutex_lock(&m->lock);
                for (int i = 0; i < N_ACTIONS; i++)
                        if (all || i == (int)a)
                                wb.unapproved[i] = strcmp(approved, "0") == 0;
                json_object *o = approvals_json_locked();
                pthread_mutex_unlock(&m->lock);
                return out_json(ret, 200, o);
        }
        return out_error(ret, 404, "unknown control endpoint");
}

void writeback_control(struct mock *m, struct MHD_Connection *conn, const char *what, const char *method,
                       struct wb_reply *ret)
{
        memset(ret, 0, sizeof *ret);
        ret->retry_after = -1;
        (void)control(m, conn, what, method, ret);
}
