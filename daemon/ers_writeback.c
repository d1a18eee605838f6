/* SPDX-License-Identifier: MIT */
/*
 * The write-back calls of the e-RS client (ers_writeback.h): A029, A028,
 * A013, each request through the client's one transfer (http.c) and pacing,
 * and what came back classified for the outbox sender.
 *
 * Not here: what an answer means (ers_outcome.c: pure, linked beside the
 * engine's fake e-RS too), the client, its lanes and headers (ers.c, reached
 * through ers_internal.h), the transfer and its tries (http.c), the bodies and the
 * parsers of the answers (fhir_writeback.c), the sender that decides what to
 * send and records the outcome (issue 16's outbox).
 */
#include "ers_writeback.h"

#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ers_internal.h"
#include "fhir.h"
#include "http.h"
#include "pacing.h"
#include "token.h"

#define CODE_COMPARED_MAX 64 /* bytes of an e-RS code kept for classifying: longer matches none */

/* One request of a write-back call. */
struct wb_request {
        const char *what;     /* "A028 UBRN … on version …", for the lines */
        const char *url;
        const char *body;     /* POST body ("" for none); NULL: a GET */
        const char *if_match; /* the If-Match header line, or NULL */
        enum ers_endpoint ep;
        bool write;           /* sent once, on a fresh connection */
};

/* What one request brought back, beside *res. */
struct wb_answer {
        json_object *obj;                   /* owned: a 2xx answer's JSON */
        bool sent;                          /* some of the request left (or an answer came) */
        char code[CODE_COMPARED_MAX];       /* an error answer's e-RS code as sent, cut; "" */
};

static void result_init(struct ers_wb_result *res) {
        memset(res, 0, sizeof *res);
        res->outcome = ERS_WB_RETRY;
        res->version = -1;
}

/* An error answer's e-RS code and words, quoted (server_text()), into res, and
 * its code as sent into a->code. */
static void answer_words(const struct transfer *t, struct ers_wb_result *res, struct wb_answer *a) {
        json_object *root = NULL;
        struct outcome o = { 0 };
        struct secrets secrets;

        if (!t->errbody || t->errlen == 0)
                return;
        http_secrets(t, &secrets);
        if (fhir_parse_text(t->errbody, t->errlen, &root, NULL) == 0 && fhir_parse_outcome(root, &o, NULL) == 0) {
                if (o.code) {
                        snprintf(a->code, sizeof a->code, "%s", o.code);
                        server_text(o.code, strlen(o.code), &secrets, res->code, sizeof res->code);
                }
                if (o.diagnostics)
                        server_text(o.diagnostics, strlen(o.diagnostics), &secrets, res->words, sizeof res->words);
        } else
                server_text(t->errbody, t->errlen, &secrets, res->words, sizeof res->words);
        outcome_free(&o);
        json_object_put(root);
}

/* l with one more line; NULL (l freed) when memory ran out or l was NULL. */
static struct curl_slist *add_line(struct curl_slist *l, const char *line) {
        struct curl_slist *n = l ? curl_slist_append(l, line) : NULL;

        if (!n)
                curl_slist_free_all(l);
        return n;
}

/* The call's name for its lines, "<id> UBRN <ubrn> <on> <version>"; -EINVAL with
 * the line when the request may not be made.  A UBRN that is not one is not
 * shown: a PAS may have put another identifier (an NHS number) in its place. */
static int name_call(char *what, size_t size, const char *id, const char *ubrn, const char *on, int64_t version,
                     struct errbuf *e) {
        if (!ubrn || !ubrn_valid(ubrn))
                return err_set(e, -EINVAL, "%s: the UBRN given is not 12 digits (not shown), not sent", id);
        if (version < 0)
                return err_set(e, -EINVAL, "%s UBRN %s: no version given, not sent", id, ubrn);
        snprintf(what, size, "%s UBRN %s %s %" PRId64, id, ubrn, on, version);
        return 0;
}

/* The request sent once (A029: with the transfer's tries), its answer read into res and a. */
static int request_once(struct ers_client *c, const struct ers_api *api, const struct wb_request *w,
                        struct ers_wb_result *res, struct wb_answer *a, struct ers_call *call, struct errbuf *e) {
        struct transfer t = { .kind = SINK_JSON, .expect_type = "application/fhir+json" };
        struct curl_slist *headers = NULL;
        curl_off_t request_bytes = 0, body_bytes = 0;
        int r = http_new_call(call, e);

        if (r < 0)
                return r;
        headers = ers_client_headers(c, "application/fhir+json", w->body && w->body[0], call->correlation_id);
        if (w->if_match)
                headers = add_line(headers, w->if_match);
        if (w->body && w->body[0]) /* never "Expect: 100-continue": the request goes whole, once */
                headers = add_line(headers, "Expect:");
        if ((t.tok = json_tokener_new_ex(64)))
                json_tokener_set_flags(t.tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        if (!headers || !t.tok) {
                r = err_set(e, -ENOMEM, "out of memory");
                goto out;
        }
        http_setup(api->link, api->h, w->url, headers, &t);
        t.ep = w->ep;
        t.send_once = w->write;
        http_use_client_cert(api->link, api->h);
        if (w->body) {
                curl_easy_setopt(api->h, CURLOPT_POSTFIELDS, w->body);
                curl_easy_setopt(api->h, CURLOPT_POSTFIELDSIZE, (long) strlen(w->body));
        }
        if (w->write) /* libcurl sends a request again, by itself, when a reused connection dies before
                       * any answer: never a write.  A connection of its own has nothing to reuse. */
                curl_easy_setopt(api->h, CURLOPT_FRESH_CONNECT, 1L);
        r = http_perform(&t, w->what, call->correlation_id, false, call, e);
        curl_easy_getinfo(api->h, CURLINFO_REQUEST_SIZE, &request_bytes);
        curl_easy_getinfo(api->h, CURLINFO_SIZE_UPLOAD_T, &body_bytes);
        a->sent = t.status > 0 || request_bytes > 0 || body_bytes > 0;
        res->http_status = t.status;
        if (r == 0 && (!t.obj || t.held.len > 0))
                r = err_set(e, -EBADMSG, "%s: HTTP %ld: %s (correlation id %s)", w->what, t.status,
                            t.obj ? "malformed JSON: data after the end of the document" : "an answer that is not whole JSON",
                            call->correlation_id);
        if (r == 0) {
                a->obj = t.obj;
                t.obj = NULL;
        } else if (t.status / 100 != 2)
                answer_words(&t, res, a);
out:
        curl_slist_free_all(headers);
        http_transfer_done(&t);
        return r;
}

/* The request, with a token renewed once on a 401 (that 401 was the gate's: nothing applied). */
static int request(struct ers_client *c, const struct wb_request *w, struct ers_wb_result *res, struct wb_answer *a,
                   struct ers_call *call, struct errbuf *e) {
        struct ers_api api;

        ers_client_api(c, &api);
        for (int attempt = 0;; attempt++) {
                int r = token_ensure(api.token, api.link, api.h, e);

                if (r < 0) {
                        memset(call, 0, sizeof *call);
                        call->retry_after = -1;
                        return err_prefix(e, r, "%s", w->what);
                }
                json_object_put(a->obj);
                memset(a, 0, sizeof *a);
                r = request_once(c, &api, w, res, a, call, e);
                if (!token_renew_after_401(api.token, r, call, attempt, e))
                        return r;
        }
}

int ers_allowed_actions(struct ers_client *c, const char *ubrn, int64_t version, struct ers_wb_result *res,
                        struct ers_call *call, struct errbuf *e) {
        char url[1024], what[96];
        struct wb_request w = { .what = what, .url = url, .ep = EP_A029 };
        struct wb_answer a = { 0 };
        struct ers_api api;
        int r;

        result_init(res);
        r = name_call(what, sizeof what, "A029", ubrn, "version", version, e);
        if (r < 0)
                return r;
        ers_client_api(c, &api);
        snprintf(url, sizeof url, "%s/FHIR/STU3/Task?focus=ReferralRequest/%s/_history/%" PRId64
                                  "&intent=proposal&status=ready",
                 api.base_url, ubrn, version);
        r = request(c, &w, res, &a, call, e);
        if (r < 0 && res->http_status == 0 && (r == -ECANCELED || r == -ENOMEM))
                return r;
        res->outcome = ers_wb_classify_read(r, res->http_status, a.code);
        if (res->outcome == ERS_WB_DONE) {
                r = fhir_parse_actions(a.obj, ubrn, &res->actions, &res->unknown_actions, e);
                if (r < 0) {
                        res->outcome = ERS_WB_RETRY;
                        err_prefix(e, r, "%s: HTTP %ld (correlation id %s)", what, res->http_status,
                                   call->correlation_id);
                }
        }
        json_object_put(a.obj);
        return 0;
}

/* A write (`what`, named by name_call()) of operation `op` with `body` ("" for none) on the
 * referral at decided_version, classified. */
static int write_call(struct ers_client *c, const char *what, enum ers_endpoint ep, const char *op, const char *body,
                      const char *ubrn, int64_t decided_version, struct ers_wb_result *res, struct ers_call *call,
                      struct errbuf *e) {
        char url[1024], if_match[64], line[ERRBUF_MAX];
        struct wb_request w = { .what = what, .url = url, .body = body, .if_match = if_match, .ep = ep, .write = true };
        struct wb_answer a = { 0 };
        struct ers_api api;
        int r;

        ers_client_api(c, &api);
        snprintf(url, sizeof url, "%s/FHIR/STU3/ReferralRequest/%s/%s", api.base_url, ubrn, op);
        snprintf(if_match, sizeof if_match, "If-Match: W/\"%" PRId64 "\"", decided_version);
        r = request(c, &w, res, &a, call, e);
        if (r < 0 && !a.sent && (r == -ECANCELED || r == -ENOMEM))
                return r;
        res->outcome = ers_wb_classify_write(r, res->http_status, a.sent, a.code);
        if (res->outcome == ERS_WB_DONE) {
                r = fhir_parse_written(a.obj, ubrn, &res->version, e);
                if (r == 0 && res->version <= decided_version)
                        r = err_set(e, -EBADMSG, "the referral answered is at version %" PRId64
                                                 ", not past the version decided on", res->version);
                if (r < 0) {
                        res->outcome = ERS_WB_MAY_HAVE_REACHED;
                        res->version = -1;
                        err_prefix(e, r, "%s: HTTP %ld, its answer not readable (correlation id %s)", what,
                                   res->http_status, call->correlation_id);
                }
        }
        if (res->outcome == ERS_WB_MAY_HAVE_REACHED) {
                snprintf(line, sizeof line, "%s", e ? e->msg : "");
                err_set(e, 0, "%s; it may have reached e-RS: read the referral (A005) before anything else", line);
        }
        json_object_put(a.obj);
        return 0;
}

int ers_record_review_outcome(struct ers_client *c, const char *ubrn, int64_t decided_version, const char *outcome,
                              const char *comment, const char *new_priority, struct ers_wb_result *res,
                              struct ers_call *call, struct errbuf *e) {
        char what[96], *body = NULL;
        int r;

        result_init(res);
        r = name_call(what, sizeof what, "A028", ubrn, "on version", decided_version, e);
        if (r < 0)
                return r;
        r = fhir_review_request(outcome, comment, new_priority, &body, e);
        if (r < 0)
                return err_prefix(e, r, "%s: not sent", what);
        r = write_call(c, what, EP_A028, "$ers.recordReviewOutcome", body, ubrn, decided_version, res, call, e);
        free(body);
        return r;
}

int ers_accept_referral(struct ers_client *c, const char *ubrn, int64_t decided_version, struct ers_wb_result *res,
                        struct ers_call *call, struct errbuf *e) {
        char what[96];
        int r;

        result_init(res);
        r = name_call(what, sizeof what, "A013", ubrn, "on version", decided_version, e);
        if (r < 0)
                return r;
        return write_call(c, what, EP_A013, "$ers.acceptReferral", "", ubrn, decided_version, res, call, e);
}
