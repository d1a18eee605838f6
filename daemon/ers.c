/* SPDX-License-Identifier: MIT */
/*
 * The e-RS client (ers.h): the client and its lanes, the headers every API
 * call sends, and the endpoints the engine calls (A008, A005, A042, A007,
 * the reachability check).  A006 (STU3 Binary) is retired: never called.  A test may link a fake of
 * this one object in place of it: nothing else in the daemon calls http.c,
 * pacing.c or token.c, and they never call into ers.c.
 *
 * Not here: one HTTP transfer, its sinks, tries and error lines (http.c), the
 * rate slot, 429 hold and breakers shared by the lanes (pacing.c), the OAuth
 * token exchange (token.c), the header parsers and redirect rule (http.c).
 */
#include "ers.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "ers_internal.h"
#include "fhir.h"
#include "http.h"
#include "pacing.h"
#include "token.h"

struct ers_client {
        CURL *api;             /* owned: the e-RS origin, reused so the connection stays open */
        CURL *store;           /* owned: the object store A042 redirects to; never gets our headers */
        /* The rest is owned by the client ers_client_new() made and borrowed by
         * its lanes (ers_client_lane(): parent != NULL). */
        struct ers_client *parent; /* borrowed: the client this lane belongs to; NULL for that client */
        char *base_url;        /* no trailing '/' */
        char *auth_header;     /* SECRET: "Authorization: Bearer …", or NULL */
        char *nhsd_headers[3]; /* user-restricted headers, or NULL */
        char *ca_file;         /* or NULL for the system bundle */
        char *client_cert_file; /* mutual TLS, the e-RS origin only (never the object store), or NULL */
        char *client_key_file;
        struct token *token;   /* signed-JWT access (auth = "jwt"), else NULL */
        struct pacing *pacing; /* limits, backoff and the progress count, shared with the lanes */
        int64_t max_attachment_bytes;
        struct http_link link; /* how this client's transfers go (a lane: a copy, its own progress callback) */
};

static char *dup_printf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static char *dup_printf(const char *fmt, ...) {
        va_list ap;
        char *s = NULL;
        int n;

        va_start(ap, fmt);
        n = vasprintf(&s, fmt, ap);
        va_end(ap);
        return n < 0 ? NULL : s;
}

void ers_client_free(struct ers_client *c) {
        if (!c)
                return;
        if (c->api)
                curl_easy_cleanup(c->api);
        if (c->store)
                curl_easy_cleanup(c->store);
        if (c->parent) { /* a lane: everything else is its parent's */
                free(c);
                return;
        }
        free(c->base_url);
        if (c->auth_header) {
                explicit_bzero(c->auth_header, strlen(c->auth_header));
                free(c->auth_header);
        }
        for (size_t i = 0; i < 3; i++)
                free(c->nhsd_headers[i]);
        free(c->ca_file);
        token_free(c->token);
        free(c->client_cert_file);
        free(c->client_key_file);
        pacing_free(c->pacing);
        free(c);
}

int ers_client_lane(struct ers_client *parent, struct ers_client **ret, struct errbuf *e) {
        struct ers_client *c = malloc(sizeof *c);

        if (!c)
                return err_set(e, -ENOMEM, "out of memory");
        *c = *parent;
        c->parent = parent;
        c->link.pacer.on_progress = NULL; /* the progress callback is the main thread's */
        c->link.pacer.progress_userdata = NULL;
        c->api = curl_easy_init();
        c->store = curl_easy_init();
        if (!c->api || !c->store) {
                ers_client_free(c);
                return err_set(e, -ENOMEM, "out of memory");
        }
        *ret = c;
        return 0;
}

int ers_client_new(const struct config *cfg, struct ers_client **ret, struct errbuf *e) {
        static bool global_done;
        struct ers_client *c;
        const char *nhsd_names[3] = { "NHSD-eRS-Business-Function", "NHSD-End-User-Organisation-ODS",
                                      "NHSD-eRS-On-Behalf-Of-User-ID" };
        const char *nhsd_values[3] = { cfg->business_function, cfg->ods_code, cfg->on_behalf_of };

        if (!global_done) {
                if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
                        return err_set(e, -EIO, "libcurl initialisation failed");
                global_done = true;
        }
        c = calloc(1, sizeof *c);
        if (!c)
                return err_set(e, -ENOMEM, "out of memory");
        c->api = curl_easy_init();
        c->store = curl_easy_init();
        c->base_url = strdup(cfg->base_url);
        if (!c->api || !c->store || !c->base_url || pacing_new(cfg->max_requests_per_second, &c->pacing) < 0)
                goto oom;
        if (cfg->auth == AUTH_BEARER && !(c->auth_header = dup_printf("Authorization: Bearer %s", cfg->bearer_token)))
                goto oom;
        for (size_t i = 0; i < 3; i++)
                if (nhsd_values[i] && !(c->nhsd_headers[i] = dup_printf("%s: %s", nhsd_names[i], nhsd_values[i])))
                        goto oom;
        if (cfg->ca_file && !(c->ca_file = strdup(cfg->ca_file)))
                goto oom;
        if (cfg->client_cert_file && (!(c->client_cert_file = strdup(cfg->client_cert_file)) ||
                                      !(c->client_key_file = strdup(cfg->client_key_file))))
                goto oom;
        if (cfg->auth == AUTH_JWT) {
                int r = token_new(cfg, c->base_url, &c->token, e);
                if (r < 0) {
                        ers_client_free(c);
                        return r;
                }
        }
        c->max_attachment_bytes = cfg->max_attachment_bytes;
        c->link = (struct http_link) {
                .ca_file = c->ca_file,
                .client_cert_file = c->client_cert_file,
                .client_key_file = c->client_key_file,
                .connect_timeout_s = cfg->connect_timeout_s,
                .stall_timeout_s = cfg->stall_timeout_s,
                .transfer_timeout_s = cfg->transfer_timeout_s,
                .min_transfer_rate = (double) (cfg->min_transfer_kib_s > 0 ? cfg->min_transfer_kib_s : 1) * 1024,
                .tries = cfg->tries > 0 ? (unsigned) cfg->tries : 1,
                .secrets = { c->token ? auth_api_key(c->token->auth) : NULL,
                             c->auth_header ? c->auth_header + strlen("Authorization: Bearer ") : NULL },
                .pacer = { .shared = c->pacing },
        };
        *ret = c;
        return 0;
oom:
        ers_client_free(c);
        return err_set(e, -ENOMEM, "out of memory");
}

void ers_client_on_progress(struct ers_client *c, void (*fn)(void *userdata), void *userdata) {
        c->link.pacer.on_progress = fn;
        c->link.pacer.progress_userdata = userdata;
}

void ers_client_on_stop(struct ers_client *c, const volatile sig_atomic_t *stop) {
        c->link.pacer.stop = stop;
}

uint64_t ers_client_progress(const struct ers_client *c) {
        return pacing_progress(c->pacing);
}

/* The headers of an e-RS API call. */
static struct curl_slist *api_headers(struct ers_client *c, const char *accept, bool json_body,
                                      const char *correlation_id) {
        struct curl_slist *l = NULL, *n;
        char accept_line[128], corr_line[64];
        const char *lines[8];
        size_t k = 0;

        snprintf(accept_line, sizeof accept_line, "Accept: %s", accept);
        snprintf(corr_line, sizeof corr_line, "X-Correlation-ID: %s", correlation_id);
        lines[k++] = accept_line;
        lines[k++] = corr_line;
        lines[k++] = json_body ? "Content-Type: application/fhir+json" : "Expect:";
        /* The token line is copied under the token's lock: another lane may renew it. */
        if (c->token)
                pthread_mutex_lock(&c->token->lock);
        if (c->auth_header)
                lines[k++] = c->auth_header;
        else if (c->token && auth_header_line(c->token->auth))
                lines[k++] = auth_header_line(c->token->auth);
        for (size_t i = 0; i < 3; i++)
                if (c->nhsd_headers[i])
                        lines[k++] = c->nhsd_headers[i];
        for (size_t i = 0; i < k; i++) {
                n = curl_slist_append(l, lines[i]);
                if (!n) {
                        curl_slist_free_all(l);
                        l = NULL;
                        break;
                }
                l = n;
        }
        if (c->token)
                pthread_mutex_unlock(&c->token->lock);
        return l;
}

int ers_prepare_token(struct ers_client *c, struct errbuf *e) {
        return token_ensure(c->token, &c->link, c->api, e);
}

/* An id that goes into a URL's path or query as it is: 1..128 of [A-Za-z0-9._-]. */
static bool path_id_valid(const char *id) {
        size_t n = 0;

        for (; id[n]; n++)
                if (!(isalnum((unsigned char) id[n]) || id[n] == '-' || id[n] == '.' || id[n] == '_'))
                        return false;
        return n > 0 && n <= 128;
}

/* A JSON call (A008, A005, A033, A035: `ep`), with a token renewed once on a
 * 401.  The answer goes to *ret (and, with raw, its bytes as they came), or
 * with ret_worklist (A008) to the streaming worklist parser and from it to
 * *ret_worklist. */
static int json_call_once(struct ers_client *c, enum ers_endpoint ep, const char *url, const char *body,
                          const char *what, json_object **ret, struct referral_answer *raw,
                          struct worklist *ret_worklist, struct ers_call *call, struct errbuf *e);
static int json_call(struct ers_client *c, enum ers_endpoint ep, const char *url, const char *body, const char *what,
                     json_object **ret, struct referral_answer *raw, struct worklist *ret_worklist,
                     struct ers_call *call, struct errbuf *e) {
        for (int attempt = 0;; attempt++) {
                int r = token_ensure(c->token, &c->link, c->api, e);

                if (r < 0) {
                        memset(call, 0, sizeof *call);
                        call->retry_after = -1;
                        return err_prefix(e, r, "%s", what);
                }
                r = json_call_once(c, ep, url, body, what, ret, raw, ret_worklist, call, e);
                if (!token_renew_after_401(c->token, r, call, attempt, e))
                        return r;
        }
}

static int json_call_once(struct ers_client *c, enum ers_endpoint ep, const char *url, const char *body,
                          const char *what, json_object **ret, struct referral_answer *raw,
                          struct worklist *ret_worklist, struct ers_call *call, struct errbuf *e) {
        struct transfer t = { .kind = ret_worklist ? SINK_WORKLIST : SINK_JSON, .expect_type = "application/fhir+json",
                              .keep_raw = raw != NULL };
        struct curl_slist *headers = NULL;
        int r;

        r = http_new_call(call, e);
        if (r < 0)
                return r;
        headers = api_headers(c, "application/fhir+json", body != NULL, call->correlation_id);
        if (ret_worklist)
                r = worklist_parser_new(&t.worklist, NULL);
        else if ((t.tok = json_tokener_new_ex(64)))
                json_tokener_set_flags(t.tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        if (!headers || r < 0 || (!ret_worklist && !t.tok)) {
                r = err_set(e, -ENOMEM, "out of memory");
                goto out;
        }
        http_setup(&c->link, c->api, url, headers, &t);
        t.ep = ep;
        t.send_once = t.ep == EP_A008; /* every A008 sent counts against the worklist budget */
        http_use_client_cert(&c->link, c->api);
        if (body) {
                curl_easy_setopt(c->api, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(c->api, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
        }
        r = http_perform(&t, what, call->correlation_id, false, call, e);
        if (r < 0)
                goto out;
        if (ret_worklist) {
                r = worklist_parser_finish(t.worklist, ret_worklist, &t.why);
                if (r < 0)
                        err_set(e, r, "%s: HTTP %ld: %s (correlation id %s)", what, t.status, t.why.msg,
                                call->correlation_id);
                goto out;
        }
        if (!t.obj || t.held.len > 0) {
                r = err_set(e, -EBADMSG, "%s: HTTP %ld: %s (correlation id %s)", what, t.status,
                            t.obj ? "malformed JSON: data after the end of the document" :
                            t.json_bytes == 0 ? "empty answer, expected JSON" : "malformed JSON: the document ends before it is complete",
                            call->correlation_id);
                goto out;
        }
        *ret = t.obj;
        t.obj = NULL;
        if (raw) {
                /* the answer as it came: kept whole in the PAS (ers_referral_answer) */
                *raw = (struct referral_answer){ .bytes = t.raw, .len = t.raw_len };
                t.raw = NULL;
                snprintf(raw->correlation_id, sizeof raw->correlation_id, "%s", call->correlation_id);
                now_utc_iso(raw->received_at);
        }
out:
        curl_slist_free_all(headers);
        http_transfer_done(&t);
        return r;
}

int ers_fetch_worklist(struct ers_client *c, const char *list_type, const char *service_id,
                       struct worklist *ret, struct ers_call *call, struct errbuf *e) {
        char url[1024], what[128];
        char *body = fhir_worklist_request(list_type, service_id);
        int r;

        if (!body)
                return err_set(e, -ENOMEM, "out of memory");
        snprintf(url, sizeof url, "%s/FHIR/STU3/ReferralRequest/$ers.fetchworklist", c->base_url);
        snprintf(what, sizeof what, "A008 worklist %s service %s", list_type, service_id ? service_id : "(any)");
        r = json_call(c, EP_A008, url, body, what, NULL, NULL, ret, call, e);
        free(body);
        return r;
}

int ers_read_referral(struct ers_client *c, const char *ubrn, json_object **ret, struct referral_answer *raw,
                      struct ers_call *call, struct errbuf *e) {
        char url[1024], what[64];

        snprintf(what, sizeof what, "A005 UBRN %s", ubrn);
        if (!ubrn_valid(ubrn))
                return err_set(e, -EINVAL, "%s: not a 12-digit UBRN", what);
        snprintf(url, sizeof url, "%s/FHIR/STU3/ReferralRequest/%s", c->base_url, ubrn);
        return json_call(c, EP_A005, url, NULL, what, ret, raw, NULL, call, e);
}

/* An R4 HealthcareService call (A033 into *one, A035 into *many), parsed;
 * a parse failure names the call, its status and correlation id. */
static int service_call(struct ers_client *c, enum ers_endpoint ep, const char *url, const char *what,
                        struct ers_service *one, struct ers_service_list *many, struct ers_call *call,
                        struct errbuf *e) {
        json_object *root = NULL;
        int r = json_call(c, ep, url, NULL, what, &root, NULL, NULL, call, e);

        if (r < 0)
                return r;
        r = one ? fhir_parse_service(root, one, e) : fhir_parse_service_bundle(root, many, e);
        json_object_put(root);
        if (r < 0)
                return err_prefix(e, r, "%s: HTTP %ld (correlation id %s)", what, call->http_status,
                                  call->correlation_id);
        return 0;
}

int ers_read_service(struct ers_client *c, const char *id, struct ers_service *ret, struct ers_call *call,
                     struct errbuf *e) {
        char url[1024], what[64];

        if (!service_id_valid(id))
                return err_set(e, -EINVAL, "A033: not a service id (" SERVICE_ID_RULE ")");
        snprintf(what, sizeof what, "A033 service %s", id);
        snprintf(url, sizeof url, "%s/FHIR/R4/HealthcareService/%s", c->base_url, id);
        return service_call(c, EP_A033, url, what, ret, NULL, call, e);
}

int ers_search_services(struct ers_client *c, const char *const *ids, size_t n, struct ers_service_list *ret,
                        struct ers_call *call, struct errbuf *e) {
        char url[1024 + ERS_SERVICES_PER_SEARCH * (SERVICE_ID_MAX + 2)], what[96];
        char list[ERS_SERVICES_PER_SEARCH * (SERVICE_ID_MAX + 2)] = ""; /* the ids, a comma between two */
        size_t at = 0;

        if (n == 0 || n > ERS_SERVICES_PER_SEARCH)
                return err_set(e, -EINVAL, "A035: %zu service ids, a search takes 1 to %d", n, ERS_SERVICES_PER_SEARCH);
        for (size_t i = 0; i < n; i++) {
                if (!service_id_valid(ids[i]))
                        return err_set(e, -EINVAL, "A035: not a service id (" SERVICE_ID_RULE ")");
                at += (size_t) snprintf(list + at, sizeof list - at, "%s%s", i ? "," : "", ids[i]);
        }
        snprintf(what, sizeof what, "A035 services %.60s%s", list, strlen(list) > 60 ? "…" : "");
        snprintf(url, sizeof url, "%s/FHIR/R4/HealthcareService?_id=%s", c->base_url, list);
        return service_call(c, EP_A035, url, what, NULL, ret, call, e);
}

/* A042's "not available": 422 with an OperationOutcome naming the
 * availability (PENDING, THREATS_FOUND, VALIDATION_FAILED; http.c reads any
 * 422 as -ENODATA), or, from deployments older than that, 400 with the same
 * codes.  A 400 with any other code (REC_BAD_REQUEST) is a fault. */
static bool withheld_by_older_deployment(const struct transfer *t) {
        char code[64];

        return t->status == 400 && http_answer_code(t, code, sizeof code) &&
               availability_of(code) != AVAILABILITY_AVAILABLE && availability_of(code) != AVAILABILITY_UNKNOWN;
}

/* A document download into dst: from the API origin (A007, or A042's
 * first leg; with our client certificate, and a token renewed once on a
 * 401) or from the object store (no headers and no certificate of ours). */
static int file_call_once(struct ers_client *c, CURL *h, const char *url, bool post, bool api, const char *accept,
                          const char *expect_type, const char *what, bool redirect_ok, struct spool_file *dst,
                          char **ret_location, struct ers_call *call, struct errbuf *e);
static int file_call(struct ers_client *c, CURL *h, const char *url, bool post, bool api, const char *accept,
                     const char *expect_type, const char *what, bool redirect_ok, struct spool_file *dst,
                     char **ret_location, struct ers_call *call, struct errbuf *e) {
        for (int attempt = 0;; attempt++) {
                int r = api ? token_ensure(c->token, &c->link, c->api, e) : 0;

                if (r < 0)
                        return err_prefix(e, r, "%s", what);
                r = file_call_once(c, h, url, post, api, accept, expect_type, what, redirect_ok, dst, ret_location,
                                   call, e);
                if (!api || !token_renew_after_401(c->token, r, call, attempt, e))
                        return r;
        }
}

static int file_call_once(struct ers_client *c, CURL *h, const char *url, bool post, bool api, const char *accept,
                          const char *expect_type, const char *what, bool redirect_ok, struct spool_file *dst,
                          char **ret_location, struct ers_call *call, struct errbuf *e) {
        struct transfer t = { .kind = SINK_FILE, .expect_type = expect_type, .file = dst };
        struct curl_slist *headers = NULL;
        int r;

        if (api) {
                headers = api_headers(c, accept, false, call->correlation_id);
                if (!headers)
                        return err_set(e, -ENOMEM, "out of memory");
        }
        http_setup(&c->link, h, url, headers, &t);
        t.ep = !api ? EP_STORE : post ? EP_A007 : EP_A042;
        if (api)
                http_use_client_cert(&c->link, h);
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) c->max_attachment_bytes);
        if (post) {
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
        }
        r = http_perform(&t, what, call->correlation_id, redirect_ok, call, e);
        if (r == -EPROTO && t.ep == EP_A042 && withheld_by_older_deployment(&t))
                r = -ENODATA; /* the line stands: it names the status and the code */
        if (r == 0 && ret_location) {
                *ret_location = NULL;
                if (t.status / 100 == 3 && (!t.location || !t.location[0]))
                        r = err_set(e, -EPROTO, "%s: HTTP %ld without a Location (correlation id %s)", what,
                                    t.status, call->correlation_id);
                else if (t.status / 100 == 3) {
                        *ret_location = t.location;
                        t.location = NULL;
                }
        }
        curl_slist_free_all(headers);
        http_transfer_done(&t);
        return r;
}

int ers_fetch_attachment(struct ers_client *c, const char *ubrn, const char *binary_id, struct spool_file *dst,
                         struct ers_call *call, struct errbuf *e) {
        char url[1024], what[192];
        char *location = NULL;
        int r = 0;

        if (!binary_id || !path_id_valid(binary_id))
                return err_set(e, -EBADMSG, "UBRN %s: attachment URL is not Binary/<id>", ubrn);
        r = http_new_call(call, e);
        if (r < 0)
                return r;

        /* Two tries: an object-store link that expired (403) is asked for anew.
         * Any other failure, a 404 from A042 included, is the call's error. */
        for (int attempt = 0; attempt < 2; attempt++) {
                snprintf(what, sizeof what, "A042 UBRN %s Binary/%s", ubrn, binary_id);
                snprintf(url, sizeof url, "%s/FHIR/R4/Binary/%s", c->base_url, binary_id);
                r = file_call(c, c->api, url, false, true, "*/*", NULL, what, true, dst, &location, call, e);
                if (r < 0)
                        return r;
                if (!location)
                        return 0; /* served directly */
                if (!ers_redirect_allowed(location)) {
                        free(location);
                        return err_set(e, -EPROTO, "%s: refusing redirect to a non-https URL (correlation id %s)",
                                       what, call->correlation_id);
                }
                snprintf(what, sizeof what, "A042 UBRN %s Binary/%s object store", ubrn, binary_id);
                r = file_call(c, c->store, location, false, false, NULL, NULL, what, false, dst, NULL, call, e);
                free(location);
                location = NULL;
                if (r != -EACCES || spool_file_size(dst) != 0)
                        return r;
        }
        return r;
}

int ers_fetch_cri(struct ers_client *c, const char *ubrn, struct spool_file *dst, struct ers_call *call,
                  struct errbuf *e) {
        char url[1024], what[64];
        int r;

        snprintf(what, sizeof what, "A007 UBRN %s", ubrn);
        if (!ubrn_valid(ubrn))
                return err_set(e, -EINVAL, "%s: not a 12-digit UBRN", what);
        r = http_new_call(call, e);
        if (r < 0)
                return r;
        snprintf(url, sizeof url, "%s/FHIR/STU3/ReferralRequest/%s/$ers.generateCRI", c->base_url, ubrn);
        return file_call(c, c->api, url, true, true, "application/pdf, application/fhir+json;q=0.5",
                         "application/pdf", what, false, dst, NULL, call, e);
}

/* During ers_check_reachable(): a stop ends the attempt to connect. */
static int on_connect_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                               curl_off_t ulnow) {
        const struct http_link *l = userdata;

        (void) dltotal;
        (void) dlnow;
        (void) ultotal;
        (void) ulnow;
        return l->pacer.stop && *l->pacer.stop;
}

int ers_check_reachable(struct ers_client *c, struct errbuf *e) {
        char curl_error[CURL_ERROR_SIZE] = "";
        CURL *h = curl_easy_init();
        CURLcode rc;

        if (!h)
                return err_set(e, -ENOMEM, "out of memory");
        http_connection_options(&c->link, h, c->base_url);
        curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L); /* TCP and TLS only: no request is sent */
        http_use_client_cert(&c->link, h); /* an origin that requires mutual TLS refuses the handshake without it */
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_error);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_connect_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, &c->link);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        rc = curl_easy_perform(h);
        curl_easy_cleanup(h);
        if (rc == CURLE_OK)
                return 0;
        if (rc == CURLE_ABORTED_BY_CALLBACK)
                return err_set(e, -ECANCELED, "e-RS origin not checked: stopped");
        return err_set(e,
                       rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE ||
                                       rc == CURLE_SSL_CERTPROBLEM || rc == CURLE_SSL_CONNECT_ERROR
                               ? -EPROTO
                               : -EAGAIN,
                       "e-RS origin not reachable: %s", curl_error[0] ? curl_error : curl_easy_strerror(rc));
}

/* For the client's endpoints in other files (ers_internal.h: the write-back calls). */
void ers_client_api(struct ers_client *c, struct ers_api *ret) {
        ret->h = c->api;
        ret->link = &c->link;
        ret->token = c->token;
        ret->base_url = c->base_url;
}

struct curl_slist *ers_client_headers(struct ers_client *c, const char *accept, bool json_body,
                                      const char *correlation_id) {
        return api_headers(c, accept, json_body, correlation_id);
}
