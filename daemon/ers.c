/* SPDX-License-Identifier: MIT */
#include "ers.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>

#include "auth.h"
#include "fhir.h"
#include "schedule.h"
#include "server_text.h"

#define ERRBODY_MAX (16 * 1024) /* what we read of an error answer (or a redirect's note): its OperationOutcome */
#define USER_AGENT "ersd/0.1"

/* What the client paces and backs off separately: each e-RS endpoint, the
 * token endpoint, and the object store A042 redirects to. */
enum ers_endpoint { EP_TOKEN, EP_A008, EP_A005, EP_A042, EP_A006, EP_A007, EP_STORE, EP_COUNT_ };

static const char *const endpoint_names[EP_COUNT_] = { "token endpoint", "A008", "A005", "A042", "A006", "A007",
                                                       "object store" };

#define ENDPOINT_FAILING 3 /* calls in a row that failed for good: the endpoint is taken to be down */

/* One endpoint's run of calls that failed for good (every try 5xx, 429 or no connection). */
struct endpoint_state {
        unsigned failed_calls; /* in a row; from ENDPOINT_FAILING on, calls fail at once until not_before */
        double not_before;     /* monotonic: while failing, the next call goes no sooner (1, 2, 4 … s, capped) */
};

/* What every lane of one client shares: the application's limits.  `lock`
 * is never held across a sleep or a transfer; `token_lock` is held while a
 * signed-JWT token is checked, fetched or put into headers (a token fetch
 * takes `lock` inside it, never the other way round). */
struct ers_shared {
        pthread_mutex_t lock;
        struct rate_limit rate;              /* every request to the e-RS origin, token included */
        double throttled_until;              /* monotonic: after a 429 nothing goes to e-RS before this */
        struct endpoint_state ep[EP_COUNT_];
        uint64_t jitter;                     /* backoff jitter state (xorshift), seeded from getrandom */
        pthread_mutex_t token_lock;
        atomic_uint_least64_t progress;      /* steps of work done on every lane: see ers_client_progress() */
};

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
        struct auth *auth;     /* signed-JWT access (auth = "jwt"), else NULL; its token under sh->token_lock */
        bool token_same_origin; /* the token endpoint is on the e-RS origin: it gets the client certificate */
        char *client_cert_file; /* mutual TLS, the e-RS origin only (never the object store), or NULL */
        char *client_key_file;
        long connect_timeout_s;
        long stall_timeout_s;
        long transfer_timeout_s;  /* ers.transfer_timeout: a transfer's deadline, before its size counts */
        double min_transfer_rate; /* ers.min_transfer_rate in bytes a second: one more second per so many */
        int64_t max_attachment_bytes;
        void (*on_progress)(void *userdata); /* borrowed, may be NULL: see ers_client_on_progress; never on a lane */
        void *progress_userdata;
        const volatile sig_atomic_t *stop;   /* borrowed, may be NULL: see ers_client_on_stop */
        struct ers_shared *sh;               /* limits, backoff and token, shared with the lanes */
        unsigned tries;                      /* ers.tries: sends of one call at most */
};

enum sink_kind { SINK_JSON, SINK_WORKLIST, SINK_FILE };

/* One request's state, on the caller's stack. */
struct transfer {
        CURL *h;                  /* borrowed */
        struct ers_client *c;     /* borrowed */
        enum ers_endpoint ep;     /* what is paced and backed off */
        struct curl_slist *headers; /* borrowed: its X-Correlation-ID line is renewed on each try */
        enum sink_kind kind;
        const char *expect_type;  /* Content-Type a 2xx must have (prefix match), NULL for any */
        bool started;             /* body callback seen */
        bool body_cut;            /* a non-2xx body read as far as we read one: the answer stands as it is */
        double sent_at;           /* monotonic: when this try was sent, for its deadline */
        curl_off_t moved;         /* bytes sent and received so far in this try */
        long status;
        json_tokener *tok;        /* owned, SINK_JSON */
        json_object *obj;         /* owned until handed to the caller */
        size_t json_fed;          /* SINK_JSON: bytes handed to json-c so far */
        struct utf8_hold held;    /* SINK_JSON: json-c never sees a UTF-8 character cut in two */
        struct worklist_parser *worklist; /* owned, SINK_WORKLIST: the A008 answer, parsed as it streams */
        size_t json_bytes;
        struct spool_file *file;  /* borrowed, SINK_FILE */
        const char *assertion;    /* borrowed, SECRET: a token request's client assertion, else NULL */
        char *location;           /* owned: the answer's Location header, trimmed, or NULL */
        char *errbody;            /* owned: start of a non-2xx answer */
        size_t errlen;
        int err;                  /* set when a callback aborted the transfer */
        struct errbuf why;
        long retry_after;
        char curl_error[CURL_ERROR_SIZE];
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

int ers_url_is_loopback(const char *url) {
        return url_is_loopback(url);
}

/* Whether two URLs have the same scheme, host and port. */
static bool same_origin(const char *a, const char *b) {
        size_t na = strcspn(a + strcspn(a, ":") + 3, "/") + strcspn(a, ":") + 3;
        size_t nb = strcspn(b + strcspn(b, ":") + 3, "/") + strcspn(b, ":") + 3;

        return na == nb && strncasecmp(a, b, na) == 0;
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
        auth_free(c->auth);
        free(c->client_cert_file);
        free(c->client_key_file);
        if (c->sh) {
                pthread_mutex_destroy(&c->sh->lock);
                pthread_mutex_destroy(&c->sh->token_lock);
                free(c->sh);
        }
        free(c);
}

int ers_client_lane(struct ers_client *parent, struct ers_client **ret, struct errbuf *e) {
        struct ers_client *c = malloc(sizeof *c);

        if (!c)
                return err_set(e, -ENOMEM, "out of memory");
        *c = *parent;
        c->parent = parent;
        c->on_progress = NULL; /* the progress callback is the main thread's */
        c->progress_userdata = NULL;
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
        c->sh = calloc(1, sizeof *c->sh);
        if (!c->api || !c->store || !c->base_url || !c->sh)
                goto oom;
        if (pthread_mutex_init(&c->sh->lock, NULL) != 0) {
                free(c->sh);
                c->sh = NULL;
                goto oom;
        }
        if (pthread_mutex_init(&c->sh->token_lock, NULL) != 0) {
                pthread_mutex_destroy(&c->sh->lock);
                free(c->sh);
                c->sh = NULL;
                goto oom;
        }
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
                int r = auth_new(cfg, &c->auth, e);
                if (r < 0) {
                        ers_client_free(c);
                        return r;
                }
                c->token_same_origin = same_origin(c->base_url, cfg->token_url);
        }
        c->connect_timeout_s = cfg->connect_timeout_s;
        c->stall_timeout_s = cfg->stall_timeout_s;
        c->transfer_timeout_s = cfg->transfer_timeout_s;
        c->min_transfer_rate = (double) (cfg->min_transfer_kib_s > 0 ? cfg->min_transfer_kib_s : 1) * 1024;
        c->max_attachment_bytes = cfg->max_attachment_bytes;
        c->tries = cfg->tries > 0 ? (unsigned) cfg->tries : 1;
        rate_limit_init(&c->sh->rate, cfg->max_requests_per_second);
        atomic_init(&c->sh->progress, 0);
        if (getrandom(&c->sh->jitter, sizeof c->sh->jitter, 0) != (ssize_t) sizeof c->sh->jitter ||
            c->sh->jitter == 0)
                c->sh->jitter = (uint64_t) time(NULL) | 1;
        *ret = c;
        return 0;
oom:
        ers_client_free(c);
        return err_set(e, -ENOMEM, "out of memory");
}

bool ers_content_type_is(const char *got, const char *want) {
        size_t n = strlen(want);

        if (!got)
                return false;
        while (*got == ' ')
                got++;
        return strncasecmp(got, want, n) == 0 && (got[n] == '\0' || got[n] == ';' || got[n] == ' ');
}

static bool json_content_type(const char *got) {
        return ers_content_type_is(got, "application/fhir+json") || ers_content_type_is(got, "application/json");
}

long ers_header_retry_after(const char *line, size_t len, time_t now) {
        static const char name[] = "retry-after:";
        char value[64];
        size_t vlen;
        char *end;
        long secs;
        time_t when;

        if (len <= sizeof name - 1 || strncasecmp(line, name, sizeof name - 1) != 0)
                return -1;
        vlen = len - (sizeof name - 1);
        if (vlen >= sizeof value)
                vlen = sizeof value - 1;
        memcpy(value, line + sizeof name - 1, vlen);
        value[vlen] = '\0';
        secs = strtol(value, &end, 10);
        if (end != value && secs >= 0)
                return secs;
        when = curl_getdate(value, NULL);
        if (when > 0)
                return when > now ? (long) (when - now) : 0;
        return -1;
}

/* Our secrets a server might quote back in an answer to t: the API key (the
 * `iss` and `sub` of an assertion), the bearer token the request sent, the
 * static one, and a token request's assertion.  Borrowed from t and its
 * client: valid while t is. */
static const struct secrets *transfer_secrets(const struct transfer *t, struct secrets *ret) {
        static const char bearer[] = "Authorization: Bearer ";
        size_t k = 0;

        memset(ret, 0, sizeof *ret);
        if (t->c->auth)
                ret->s[k++] = auth_api_key(t->c->auth);
        if (t->c->auth_header)
                ret->s[k++] = t->c->auth_header + sizeof bearer - 1;
        for (const struct curl_slist *l = t->headers; l; l = l->next)
                if (strncasecmp(l->data, bearer, sizeof bearer - 1) == 0 && k < SERVER_TEXT_SECRETS - 1)
                        ret->s[k++] = l->data + sizeof bearer - 1;
        if (t->assertion)
                ret->s[k] = t->assertion;
        return ret;
}

static size_t on_header(char *p, size_t size, size_t n, void *userdata) {
        static const char location[] = "location:";
        struct transfer *t = userdata;
        size_t len = size * n;
        long secs = ers_header_retry_after(p, len, time(NULL));

        if (secs >= 0)
                t->retry_after = secs;
        if (len > sizeof location - 1 && strncasecmp(p, location, sizeof location - 1) == 0) {
                /* Kept as sent (libcurl bounds a header line): a redirect's body may be cut
                 * before libcurl would have worked it out itself. */
                size_t from = sizeof location - 1, to = len;
                while (from < to && (p[from] == ' ' || p[from] == '\t'))
                        from++;
                while (to > from && isspace((unsigned char) p[to - 1]))
                        to--;
                free(t->location);
                t->location = strndup(p + from, to - from);
                if (!t->location) {
                        t->err = err_set(&t->why, -ENOMEM, "out of memory");
                        return 0;
                }
        }
        return len;
}

static size_t body_fail(struct transfer *t, int r) {
        t->err = r;
        return 0; /* makes libcurl abort with CURLE_WRITE_ERROR */
}

/* Whole UTF-8 characters of a JSON answer into json-c.  0, or -1 when the
 * answer is refused (t->err, t->why say why). */
static int json_feed(struct transfer *t, const char *p, size_t len) {
        size_t at = t->json_fed, from = 0;

        t->json_fed += len;
        if (!t->obj) {
                t->obj = json_tokener_parse_ex(t->tok, p, (int) len);
                enum json_tokener_error jerr = json_tokener_get_error(t->tok);
                if (!t->obj && jerr != json_tokener_continue) {
                        body_fail(t, err_set(&t->why, -EBADMSG, "malformed JSON near byte %zu: %s",
                                             at + json_tokener_get_parse_end(t->tok), json_tokener_error_desc(jerr)));
                        return -1;
                }
                if (!t->obj)
                        return 0;
                from = json_tokener_get_parse_end(t->tok);
        }
        for (size_t i = from; i < len; i++)
                if (!isspace((unsigned char) p[i])) {
                        body_fail(t, err_set(&t->why, -EBADMSG, "malformed JSON: data after the end of the document"));
                        return -1;
                }
        return 0;
}

static size_t on_body(char *p, size_t size, size_t n, void *userdata) {
        struct transfer *t = userdata;
        size_t len = size * n;

        if (!t->started) {
                t->started = true;
                curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &t->status);
                if (t->status / 100 == 2 && t->expect_type) {
                        char *ct = NULL;
                        curl_easy_getinfo(t->h, CURLINFO_CONTENT_TYPE, &ct);
                        bool ok = t->kind != SINK_FILE ? json_content_type(ct) : ers_content_type_is(ct, t->expect_type);
                        char said[SERVER_TEXT_MAX + 4] = "(none)";
                        struct secrets secrets;
                        if (!ok && ct)
                                server_text(ct, strlen(ct), transfer_secrets(t, &secrets), said, sizeof said);
                        if (!ok)
                                return body_fail(t, err_set(&t->why, -EBADMSG, "answered Content-Type '%s', expected %s",
                                                            said, t->expect_type));
                }
        }

        if (t->status / 100 != 2) {
                /* The start of an error answer (or of a redirect's note), for its OperationOutcome or
                 * its words; nothing past ERRBODY_MAX is read: a body that never ends ends here. */
                if (!t->errbody && !(t->errbody = malloc(ERRBODY_MAX)))
                        return body_fail(t, err_set(&t->why, -ENOMEM, "out of memory"));
                size_t room = ERRBODY_MAX - t->errlen;
                size_t take = len < room ? len : room;
                memcpy(t->errbody + t->errlen, p, take);
                t->errlen += take;
                if (take < len) {
                        t->body_cut = true;
                        return 0; /* libcurl stops (CURLE_WRITE_ERROR); perform() keeps the status */
                }
                return len;
        }

        if (t->kind == SINK_FILE) {
                int r = spool_file_write(t->file, p, len, &t->why);
                return r < 0 ? body_fail(t, r) : len;
        }

        t->json_bytes += len;
        if (t->json_bytes > ERS_JSON_MAX)
                return body_fail(t, err_set(&t->why, -EFBIG, "answer larger than %d bytes, refused", ERS_JSON_MAX));
        if (t->kind == SINK_WORKLIST) {
                int r = worklist_parser_feed(t->worklist, p, len, &t->why);
                return r < 0 ? body_fail(t, r) : len;
        }
        /* json-c never sees a UTF-8 character cut in two (see utf8_cut()) */
        const char *whole = p;
        size_t held = utf8_hold_complete(&t->held, &whole, &len);
        if (held > 0 && json_feed(t, t->held.bytes, held) < 0)
                return 0;
        utf8_hold_tail(&t->held, whole, &len);
        if (json_feed(t, whole, len) < 0)
                return 0;
        return size * n;
}

static void transfer_done(struct transfer *t) {
        if (t->tok)
                json_tokener_free(t->tok);
        json_object_put(t->obj);
        worklist_parser_free(t->worklist);
        free(t->location);
        free(t->errbody);
}

/* What an error answer says, for its line: ", e-RS <code>" from an
 * OperationOutcome, else ": \"<first words>\"" of whatever else it is (a TLS
 * front end's page, an object store's, a gateway's HTML), else "".  Server
 * text, through server_text(). */
static void answer_says(const struct transfer *t, char *buf, size_t size) {
        char said[SERVER_TEXT_MAX + 4];
        json_object *root = NULL;
        struct outcome o = { 0 };
        struct secrets secrets;

        buf[0] = '\0';
        if (!t->errbody || t->errlen == 0)
                return;
        if (fhir_parse_text(t->errbody, t->errlen, &root, NULL) == 0 &&
            fhir_parse_outcome(root, &o, NULL) == 0 && o.code) {
                server_text(o.code, strlen(o.code), transfer_secrets(t, &secrets), said, sizeof said);
                snprintf(buf, size, ", e-RS %s", said);
        } else if (server_text(t->errbody, t->errlen, transfer_secrets(t, &secrets), said, sizeof said) > 0) {
                snprintf(buf, size, ": \"%s\"", said);
        }
        outcome_free(&o);
        json_object_put(root);
}

/* How every connection is made: the URL, the protocols, the connect timeout, verified TLS. */
static void connection_options(struct ers_client *c, CURL *h, const char *url) {
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, c->connect_timeout_s);
        /* libcurl keeps up to 5 connections a handle; each of ours talks to one origin
         * at a time (the API, or the object store), so ersd's descriptors stay a
         * small multiple of its fetching threads (ers.h). */
        curl_easy_setopt(h, CURLOPT_MAXCONNECTS, (long) ERS_CONNECTIONS_PER_HANDLE);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(h, CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2);
        if (c->ca_file)
                curl_easy_setopt(h, CURLOPT_CAINFO, c->ca_file);
}

/* A step of work done (bytes moved, a second of a wait e-RS asked for): the
 * shared count goes up, and the progress callback, if any, is called. */
static void progressed(struct ers_client *c) {
        atomic_fetch_add_explicit(&c->sh->progress, 1, memory_order_relaxed);
        if (c->on_progress)
                c->on_progress(c->progress_userdata);
}

uint64_t ers_client_progress(const struct ers_client *c) {
        return atomic_load_explicit(&c->sh->progress, memory_order_relaxed);
}

/* The seconds a transfer that has moved `bytes` may have taken so far: its
 * deadline grows with what it carries (see ers.h, "Deadlines"). */
static double transfer_allowance(const struct ers_client *c, curl_off_t bytes) {
        return (double) c->transfer_timeout_s + (double) bytes / c->min_transfer_rate;
}

/* libcurl's progress callback: often while bytes move, at least once a second
 * when none do.  Ends a transfer when a stop is asked for (-ECANCELED), and
 * one past its deadline: a 2xx answer as too slow (the call fails); the body
 * of any other answer, which was only read for its words, is no longer read
 * (the answer stands on its status). */
static int on_xferinfo(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
        struct transfer *t = userdata;
        struct ers_client *c = t->c;
        double elapsed = now_monotonic() - t->sent_at;
        long status = 0;

        (void) dltotal;
        (void) ultotal;
        if (c->stop && *c->stop) {
                t->err = err_set(&t->why, -ECANCELED, "stopped during the transfer");
                return 1; /* CURLE_ABORTED_BY_CALLBACK */
        }
        if (dlnow + ulnow > t->moved) /* bytes moved: work goes on; a stuck transfer feeds nothing */
                progressed(c);
        t->moved = dlnow + ulnow;
        if (elapsed <= transfer_allowance(c, t->moved))
                return 0;
        curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 300) {
                t->body_cut = true;
                return 1;
        }
        t->err = err_set(&t->why, -EAGAIN,
                         "too slow: %" CURL_FORMAT_CURL_OFF_T " bytes in %.1f s, past its deadline "
                         "(ers.transfer_timeout %ld s + 1 s per ers.min_transfer_rate %.0f KiB)",
                         t->moved, elapsed, c->transfer_timeout_s, c->min_transfer_rate / 1024);
        return 1; /* CURLE_ABORTED_BY_CALLBACK */
}

void ers_client_on_progress(struct ers_client *c, void (*fn)(void *userdata), void *userdata) {
        c->on_progress = fn;
        c->progress_userdata = userdata;
}

void ers_client_on_stop(struct ers_client *c, const volatile sig_atomic_t *stop) {
        c->stop = stop;
}

/* Sets the options every request shares; `headers` may be NULL. */
static void setup(struct ers_client *c, CURL *h, const char *url, struct curl_slist *headers,
                  struct transfer *t) {
        curl_easy_reset(h);
        connection_options(c, h, url);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, c->stall_timeout_s);
        curl_easy_setopt(h, CURLOPT_USERAGENT, USER_AGENT);
        curl_easy_setopt(h, CURLOPT_ACCEPT_ENCODING, "");
        if (headers)
                curl_easy_setopt(h, CURLOPT_HTTPHEADER, headers);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, t);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, t);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, t->curl_error);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_xferinfo); /* every transfer has its deadline */
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, t);
        curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
        t->h = h;
        t->c = c;
        t->headers = headers;
        t->retry_after = -1;
}

/* Mutual TLS: our client certificate, on a request to the e-RS origin only. */
static void use_client_cert(struct ers_client *c, CURL *h) {
        if (!c->client_cert_file)
                return;
        curl_easy_setopt(h, CURLOPT_SSLCERT, c->client_cert_file);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLKEY, c->client_key_file);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
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
        /* The token line is copied under token_lock: another lane may renew it. */
        pthread_mutex_lock(&c->sh->token_lock);
        if (c->auth_header)
                lines[k++] = c->auth_header;
        else if (c->auth && auth_header_line(c->auth))
                lines[k++] = auth_header_line(c->auth);
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
        pthread_mutex_unlock(&c->sh->token_lock);
        return l;
}

static int classify_curl(CURLcode rc, const struct transfer *t, char *buf, size_t size) {
        const char *detail = t->curl_error[0] ? t->curl_error : curl_easy_strerror(rc);

        switch (rc) {
        case CURLE_OPERATION_TIMEDOUT:
                snprintf(buf, size, "no answer or transfer stalled (%s)", detail);
                return -EAGAIN;
        case CURLE_PARTIAL_FILE:
                snprintf(buf, size, "answer truncated: connection closed before the announced length");
                return -EAGAIN;
        case CURLE_FILESIZE_EXCEEDED:
                snprintf(buf, size, "answer larger than allowed, refused");
                return -EFBIG;
#if LIBCURL_VERSION_NUM >= 0x080600
        case CURLE_TOO_LARGE:
#endif
        case CURLE_OUT_OF_MEMORY:
                if (t->status <= 0)
                        break;
                /* An answer began: libcurl refuses a header line over its 100 KB limit so
                 * (a Location of 300 KB, say), with "Out of memory" before libcurl 8.6. */
                snprintf(buf, size, "HTTP %ld: its headers were refused: a header line over libcurl's 100 KB limit "
                         "(which libcurl before 8.6 reports as a lack of memory)", t->status);
                return -EBADMSG;
        case CURLE_PEER_FAILED_VERIFICATION:
        case CURLE_SSL_CONNECT_ERROR:
        case CURLE_SSL_CACERT_BADFILE:
        case CURLE_SSL_CERTPROBLEM:
        case CURLE_SSL_CIPHER:
        case CURLE_SSL_ISSUER_ERROR:
        case CURLE_UNSUPPORTED_PROTOCOL:
                snprintf(buf, size, "TLS/protocol: %s", detail);
                return -EPROTO;
        default:
                break;
        }
        snprintf(buf, size, "%s", detail);
        return -EAGAIN;
}

static int classify_status(long status) {
        if (status == 401 || status == 403)
                return -EACCES;
        if (status == 404)
                return -ENOENT;
        if (status == 422)
                return -ENODATA;
        if (status == 429 || status / 100 == 5)
                return -EAGAIN;
        return -EPROTO;
}

/* Waits `seconds` (monotonic), feeding the progress callback every second;
 * -ECANCELED as soon as a stop is asked for. */
static int wait_for(struct ers_client *c, double seconds) {
        double until = now_monotonic() + seconds;

        for (;;) {
                double left = until - now_monotonic();
                if (c->stop && *c->stop)
                        return -ECANCELED;
                if (left <= 0)
                        return 0;
                if (left > 1.0)
                        left = 1.0;
                struct timespec ts = { .tv_sec = (time_t) left, .tv_nsec = (long) ((left - (double) (time_t) left) * 1e9) };
                (void) nanosleep(&ts, NULL);
                progressed(c); /* a wait chosen (and bounded) is not a hang */
        }
}

/*
 * Before each send: an endpoint whose last ENDPOINT_FAILING calls all failed
 * (it is down: 5xx or no connection on every try) is not tried until its
 * backoff runs out (-EAGAIN, so that a failing object store does not hold up
 * A005, and the referrals wait in ers_retry); then one call tries it again.
 * A 429 holds every e-RS endpoint back until its wait is over (the limit is
 * the application's).  Then the rate limiter's slot (the e-RS origin only:
 * the object store is not the API).
 */
static int gate(struct transfer *t, const char *what, struct errbuf *e) {
        struct ers_client *c = t->c;
        struct ers_shared *sh = c->sh;
        struct endpoint_state *st = &sh->ep[t->ep];
        double now = now_monotonic(), wait = 0;
        int r;

        pthread_mutex_lock(&sh->lock);
        if (st->failed_calls >= ENDPOINT_FAILING && st->not_before > now) {
                unsigned failed = st->failed_calls;
                double next = st->not_before - now;
                pthread_mutex_unlock(&sh->lock);
                return err_set(e, -EAGAIN, "%s: not tried: the last %u %s calls failed, next try in %.0f s", what,
                               failed, endpoint_names[t->ep], next);
        }
        if (t->ep != EP_STORE && sh->throttled_until > now)
                wait = sh->throttled_until - now;
        pthread_mutex_unlock(&sh->lock);
        if (wait > 0) {
                r = wait_for(c, wait);
                if (r < 0)
                        return err_set(e, r, "%s: stopped while e-RS asked us to slow down", what);
        }
        if (t->ep != EP_STORE) {
                pthread_mutex_lock(&sh->lock);
                wait = rate_limit_take(&sh->rate, now_monotonic()); /* a slot booked for this lane */
                pthread_mutex_unlock(&sh->lock);
                r = wait > 0 ? wait_for(c, wait) : 0;
                if (r < 0)
                        return err_set(e, r, "%s: stopped", what);
        }
        return 0;
}

/* The wait before another try after a transient answer: Retry-After when it
 * gave one (capped), else 1, 2, 4 … s with jitter by the tries without one
 * (*steps).  A 429 holds every e-RS endpoint back for as long, on every lane. */
static double retry_wait(struct transfer *t, unsigned *steps) {
        struct ers_shared *sh = t->c->sh;
        long ra = t->status == 429 || t->status == 503 ? t->retry_after : -1;
        double wait;

        pthread_mutex_lock(&sh->lock);
        wait = ra >= 0 ? ((double) ra < SCHED_BACKOFF_CAP ? (double) ra : SCHED_BACKOFF_CAP)
                       : sched_backoff(++*steps, &sh->jitter);
        if (t->status == 429 && t->ep != EP_STORE && now_monotonic() + wait > sh->throttled_until)
                sh->throttled_until = now_monotonic() + wait;
        pthread_mutex_unlock(&sh->lock);
        return wait;
}

/* After a call's last try: a call that failed for good (5xx, 429 or no
 * connection to the end) adds to its endpoint's run, anything else ends it. */
static void note_call(struct transfer *t, bool failed) {
        struct ers_shared *sh = t->c->sh;
        struct endpoint_state *st = &sh->ep[t->ep];

        pthread_mutex_lock(&sh->lock);
        if (!failed) {
                st->failed_calls = 0;
                st->not_before = 0;
        } else {
                st->failed_calls++;
                if (st->failed_calls >= ENDPOINT_FAILING)
                        st->not_before = now_monotonic() +
                                         sched_backoff(st->failed_calls - ENDPOINT_FAILING + 1, &sh->jitter);
        }
        pthread_mutex_unlock(&sh->lock);
}

/* A transfer's state back to "nothing received", for another try. */
static void transfer_rewind(struct transfer *t) {
        if (t->tok)
                json_tokener_reset(t->tok);
        json_object_put(t->obj);
        t->obj = NULL;
        t->json_bytes = 0;
        free(t->location);
        t->location = NULL;
        t->errlen = 0;
        t->started = false;
        t->body_cut = false;
        t->moved = 0;
        t->status = 0;
        t->err = 0;
        t->why.msg[0] = '\0';
        t->retry_after = -1;
        t->curl_error[0] = '\0';
}

/* A fresh X-Correlation-ID for another try: every request has its own. */
static int renew_correlation_id(struct transfer *t, char *correlation_id) {
        char line[64];

        if (uuid_v4(correlation_id) < 0)
                return -EIO;
        snprintf(line, sizeof line, "X-Correlation-ID: %s", correlation_id);
        for (struct curl_slist *l = t->headers; l; l = l->next)
                if (strncasecmp(l->data, "X-Correlation-ID:", 17) == 0) {
                        char *d = strdup(line);
                        if (!d)
                                return -ENOMEM;
                        free(l->data);
                        l->data = d;
                }
        return 0;
}

/* Connection failures in which nothing was sent back: safe to send again. */
static bool connection_failed(CURLcode rc) {
        return rc == CURLE_COULDNT_CONNECT || rc == CURLE_COULDNT_RESOLVE_HOST || rc == CURLE_SEND_ERROR ||
               rc == CURLE_RECV_ERROR || rc == CURLE_GOT_NOTHING;
}

/*
 * Runs the transfer and turns its outcome into 0 or one error line:
 * "<what>: <cause> (correlation id <id>)".  A 2xx, or a 3xx when
 * `redirect_ok`, is success; `what` names endpoint and UBRN.
 *
 * Every send goes through gate() (rate limit, 429, backoff).  A 429, a 5xx or
 * a failed connection is sent again, up to ers.tries sends, after the wait
 * note_outcome() gives, with a fresh correlation id, when nothing of its
 * answer reached the caller's sink; never for A008, whose every send counts
 * against the day's worklist budget.
 */
static int perform(struct transfer *t, const char *what, char *correlation_id, bool redirect_ok,
                   struct ers_call *call, struct errbuf *e) {
        char cause[CURL_ERROR_SIZE + 64], code[SERVER_TEXT_MAX + 64];
        int64_t sink_start = t->kind == SINK_FILE && t->file ? spool_file_size(t->file) : 0;
        CURLcode rc;
        int r;

        unsigned steps = 0;
        bool transient = false;

        for (unsigned attempt = 1;; attempt++) {
                r = gate(t, what, e);
                if (r < 0) {
                        call->http_status = 0;
                        return r;
                }
                t->sent_at = now_monotonic();
                rc = curl_easy_perform(t->h);
                curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &t->status);
                if ((rc == CURLE_WRITE_ERROR || rc == CURLE_ABORTED_BY_CALLBACK) && t->body_cut && !t->err)
                        rc = CURLE_OK; /* the rest of an error answer (or a redirect's note) is not read */
                call->http_status = t->status;
                call->retry_after = t->retry_after;

                bool untouched = t->kind == SINK_JSON ? t->json_bytes == 0
                                                      : !t->file || spool_file_size(t->file) == sink_start;
                transient = !t->err && ((rc == CURLE_OK && (t->status == 429 || t->status / 100 == 5)) ||
                                        (rc != CURLE_OK && connection_failed(rc)));
                if (!transient || !untouched || t->ep == EP_A008 || attempt >= t->c->tries)
                        break;
                r = wait_for(t->c, retry_wait(t, &steps));
                if (r < 0)
                        return err_set(e, r, "%s: stopped while backing off (correlation id %s)", what, correlation_id);
                if (renew_correlation_id(t, correlation_id) < 0)
                        return err_set(e, -ENOMEM, "out of memory");
                transfer_rewind(t);
        }
        if (transient)
                (void) retry_wait(t, &steps); /* a last 429 still holds the others back */
        note_call(t, transient);

        if (t->err && t->status == 0) /* stopped, or past its deadline, before an answer came */
                return err_set(e, t->err, "%s: no answer: %s (correlation id %s)", what, t->why.msg, correlation_id);
        if (t->err) /* a callback refused the answer */
                return err_set(e, t->err, "%s: HTTP %ld: %s (correlation id %s)", what, t->status, t->why.msg,
                               correlation_id);
        if (rc != CURLE_OK) {
                r = classify_curl(rc, t, cause, sizeof cause);
                return err_set(e, r, "%s: %s (correlation id %s)", what, cause, correlation_id);
        }
        if (t->status / 100 == 2 || (redirect_ok && t->status / 100 == 3))
                return 0;
        answer_says(t, code, sizeof code);
        if (t->status == 429 || t->status == 503) {
                if (t->retry_after >= 0)
                        snprintf(code + strlen(code), sizeof code - strlen(code), ", Retry-After %ld s", t->retry_after);
        }
        return err_set(e, classify_status(t->status), "%s: HTTP %ld%s (correlation id %s)", what, t->status, code,
                       correlation_id);
}

static int new_call(struct ers_call *call, struct errbuf *e) {
        int r;

        memset(call, 0, sizeof *call);
        call->retry_after = -1;
        r = uuid_v4(call->correlation_id);
        if (r < 0)
                return err_set(e, r, "cannot make a correlation id: %s", strerror(-r));
        return 0;
}

/* The token endpoint's error answer as ", <error>: <description>" (RFC 6749
 * §5.2), or what any other answer says (answer_says()), or "": server text,
 * scrubbed of our secrets (the platform may quote the assertion's claims,
 * the API key among them). */
static void oauth_error(const struct transfer *t, char *buf, size_t size) {
        char error[SERVER_TEXT_MAX + 4] = "", desc[SERVER_TEXT_MAX + 4] = "";
        struct secrets secrets;
        json_object *root, *v;
        char *text;

        buf[0] = '\0';
        if (!t->errbody || t->errlen == 0 || !(text = strndup(t->errbody, t->errlen)))
                return;
        root = json_tokener_parse(text);
        free(text);
        if (json_object_object_get_ex(root, "error", &v) && json_object_is_type(v, json_type_string))
                server_text(json_object_get_string(v), (size_t) json_object_get_string_len(v),
                            transfer_secrets(t, &secrets), error, 44);
        if (json_object_object_get_ex(root, "error_description", &v) && json_object_is_type(v, json_type_string))
                server_text(json_object_get_string(v), (size_t) json_object_get_string_len(v),
                            transfer_secrets(t, &secrets), desc, sizeof desc);
        if (error[0])
                snprintf(buf, size, ", %s%s%s%s", error, desc[0] ? ": " : "", desc,
                         strstr(desc, "exp") ? " (is this machine's clock right?)" : "");
        else
                answer_says(t, buf, size);
        json_object_put(root);
}

/* Signed-JWT access: posts a fresh client assertion to the token endpoint and
 * caches the access token it answers with.  The form, the assertion and the
 * token never reach e. */
static int fetch_token(struct ers_client *c, struct errbuf *e) {
        struct transfer t = { .kind = SINK_JSON, .expect_type = "application/json" };
        struct curl_slist *headers = NULL, *n;
        char corr_line[64], what[300], cause[320];
        const char *lines[3];
        struct ers_call call;
        char *form = NULL;
        int r;

        snprintf(what, sizeof what, "token endpoint %s", auth_token_url(c->auth));
        r = new_call(&call, e);
        if (r < 0)
                return r;
        r = auth_token_form(c->auth, time(NULL), &form, e);
        if (r < 0)
                return err_prefix(e, r, "%s", what);
        t.assertion = strstr(form, "&client_assertion=");
        if (t.assertion)
                t.assertion += strlen("&client_assertion="); /* never quoted back: see transfer_secrets() */
        snprintf(corr_line, sizeof corr_line, "X-Correlation-ID: %s", call.correlation_id);
        lines[0] = "Accept: application/json";
        lines[1] = "Content-Type: application/x-www-form-urlencoded";
        lines[2] = corr_line;
        for (size_t i = 0; i < 3; i++) {
                n = curl_slist_append(headers, lines[i]);
                if (!n) {
                        r = err_set(e, -ENOMEM, "out of memory");
                        goto out;
                }
                headers = n;
        }
        t.tok = json_tokener_new_ex(16);
        if (!t.tok) {
                r = err_set(e, -ENOMEM, "out of memory");
                goto out;
        }
        json_tokener_set_flags(t.tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        setup(c, c->api, auth_token_url(c->auth), headers, &t);
        t.ep = EP_TOKEN;
        if (c->token_same_origin)
                use_client_cert(c, c->api);
        curl_easy_setopt(c->api, CURLOPT_POSTFIELDS, form);
        curl_easy_setopt(c->api, CURLOPT_POSTFIELDSIZE, (long) strlen(form));
        r = perform(&t, what, call.correlation_id, false, &call, e);
        if (r < 0 && t.status >= 400 && t.status < 500 && t.status != 429 && !t.err) {
                /* The platform says why in OAuth terms: that is the line to log. */
                oauth_error(&t, cause, sizeof cause);
                r = err_set(e, -EACCES, "%s: HTTP %ld%s (correlation id %s)", what, t.status, cause,
                            call.correlation_id);
        }
        if (r == 0 && !t.obj)
                r = err_set(e, -EBADMSG, "%s: HTTP %ld: empty or incomplete JSON (correlation id %s)", what, t.status,
                            call.correlation_id);
        if (r == 0) {
                r = auth_token_accept(c->auth, t.obj, auth_now_ms(), e);
                if (r < 0)
                        err_prefix(e, r, "%s: HTTP %ld", what, t.status);
        }
out:
        if (form) {
                explicit_bzero(form, strlen(form));
                free(form);
        }
        curl_slist_free_all(headers);
        transfer_done(&t);
        return r;
}

/* Signed-JWT access: a token that is still fresh, fetched when there is none
 * or it is about to expire. */
static int ensure_token(struct ers_client *c, struct errbuf *e) {
        int r = 0;

        if (!c->auth)
                return 0;
        pthread_mutex_lock(&c->sh->token_lock); /* one lane fetches it; the others wait and use it */
        if (!auth_token_fresh(c->auth, auth_now_ms()))
                r = fetch_token(c, e);
        pthread_mutex_unlock(&c->sh->token_lock);
        return r;
}

int ers_prepare_token(struct ers_client *c, struct errbuf *e) {
        return ensure_token(c, e);
}

/*
 * After an API call that returned r: true when it was a first 401 under
 * signed-JWT access, so the caller retries once (the token is dropped and a
 * new one fetched; the retry gets a fresh correlation id).  A second 401 is
 * false with its cause added to e.
 */
static bool renew_after_401(struct ers_client *c, int r, struct ers_call *call, int attempt, struct errbuf *e) {
        char msg[ERRBUF_MAX];

        if (!c->auth || r != -EACCES || call->http_status != 401)
                return false;
        pthread_mutex_lock(&c->sh->token_lock);
        auth_forget(c->auth);
        pthread_mutex_unlock(&c->sh->token_lock);
        if (attempt == 0)
                return uuid_v4(call->correlation_id) == 0;
        snprintf(msg, sizeof msg, "%s", e->msg);
        err_set(e, r, "%s; refused again with a newly issued access token: e-RS does not accept this "
                      "application's tokens (access revoked, or the application not approved for e-RS)", msg);
        return false;
}

/* A JSON call (A008 or A005), with a token renewed once on a 401.  The
 * answer goes to *ret, or with ret_worklist (A008) to the streaming worklist
 * parser and from it to *ret_worklist. */
static int json_call_once(struct ers_client *c, const char *url, const char *body, const char *what,
                          json_object **ret, struct worklist *ret_worklist, struct ers_call *call, struct errbuf *e);
static int json_call(struct ers_client *c, const char *url, const char *body, const char *what,
                     json_object **ret, struct worklist *ret_worklist, struct ers_call *call, struct errbuf *e) {
        for (int attempt = 0;; attempt++) {
                int r = ensure_token(c, e);

                if (r < 0) {
                        memset(call, 0, sizeof *call);
                        call->retry_after = -1;
                        return err_prefix(e, r, "%s", what);
                }
                r = json_call_once(c, url, body, what, ret, ret_worklist, call, e);
                if (!renew_after_401(c, r, call, attempt, e))
                        return r;
        }
}

static int json_call_once(struct ers_client *c, const char *url, const char *body, const char *what,
                          json_object **ret, struct worklist *ret_worklist, struct ers_call *call, struct errbuf *e) {
        struct transfer t = { .kind = ret_worklist ? SINK_WORKLIST : SINK_JSON, .expect_type = "application/fhir+json" };
        struct curl_slist *headers = NULL;
        int r;

        r = new_call(call, e);
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
        setup(c, c->api, url, headers, &t);
        t.ep = body ? EP_A008 : EP_A005;
        use_client_cert(c, c->api);
        if (body) {
                curl_easy_setopt(c->api, CURLOPT_POSTFIELDS, body);
                curl_easy_setopt(c->api, CURLOPT_POSTFIELDSIZE, (long) strlen(body));
        }
        r = perform(&t, what, call->correlation_id, false, call, e);
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
out:
        curl_slist_free_all(headers);
        transfer_done(&t);
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
        r = json_call(c, url, body, what, NULL, ret, call, e);
        free(body);
        return r;
}

int ers_read_referral(struct ers_client *c, const char *ubrn, json_object **ret, struct ers_call *call,
                      struct errbuf *e) {
        char url[1024], what[64];

        snprintf(what, sizeof what, "A005 UBRN %s", ubrn);
        if (!ubrn_valid(ubrn))
                return err_set(e, -EINVAL, "%s: not a 12-digit UBRN", what);
        snprintf(url, sizeof url, "%s/FHIR/STU3/ReferralRequest/%s", c->base_url, ubrn);
        return json_call(c, url, NULL, what, ret, NULL, call, e);
}

/* A document download into dst: from the API origin (A006, A007, or A042's
 * first leg; with our client certificate, and a token renewed once on a
 * 401) or from the object store (no headers and no certificate of ours). */
static int file_call_once(struct ers_client *c, CURL *h, const char *url, bool post, bool api, const char *accept,
                          const char *expect_type, const char *what, bool redirect_ok, struct spool_file *dst,
                          char **ret_location, struct ers_call *call, struct errbuf *e);
static int file_call(struct ers_client *c, CURL *h, const char *url, bool post, bool api, const char *accept,
                     const char *expect_type, const char *what, bool redirect_ok, struct spool_file *dst,
                     char **ret_location, struct ers_call *call, struct errbuf *e) {
        for (int attempt = 0;; attempt++) {
                int r = api ? ensure_token(c, e) : 0;

                if (r < 0)
                        return err_prefix(e, r, "%s", what);
                r = file_call_once(c, h, url, post, api, accept, expect_type, what, redirect_ok, dst, ret_location,
                                   call, e);
                if (!api || !renew_after_401(c, r, call, attempt, e))
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
        setup(c, h, url, headers, &t);
        t.ep = !api ? EP_STORE : post ? EP_A007 : strstr(url, "/FHIR/R4/Binary/") ? EP_A042 : EP_A006;
        if (api)
                use_client_cert(c, h);
        curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t) c->max_attachment_bytes);
        if (post) {
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, 0L);
        }
        r = perform(&t, what, call->correlation_id, redirect_ok, call, e);
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
        transfer_done(&t);
        return r;
}

static bool binary_id_valid(const char *id) {
        size_t n = 0;

        for (; id[n]; n++)
                if (!(isalnum((unsigned char) id[n]) || id[n] == '-' || id[n] == '.' || id[n] == '_'))
                        return false;
        return n > 0 && n <= 128;
}

/* Only https, or http to a loopback host (the test suite's object store). */
bool ers_redirect_allowed(const char *location) {
        if (strncasecmp(location, "https://", 8) == 0)
                return true;
        return strncasecmp(location, "http://", 7) == 0 && ers_url_is_loopback(location);
}

int ers_fetch_attachment(struct ers_client *c, const char *ubrn, const char *binary_id,
                         int64_t declared_size, struct spool_file *dst, struct ers_call *call,
                         struct errbuf *e) {
        char url[1024], what[192];
        char *location = NULL;
        int r;

        if (!binary_id || !binary_id_valid(binary_id))
                return err_set(e, -EBADMSG, "UBRN %s: attachment URL is not Binary/<id>", ubrn);
        r = new_call(call, e);
        if (r < 0)
                return r;

        /* Two tries: an object-store link that expired (403) is asked for anew. */
        for (int attempt = 0; attempt < 2; attempt++) {
                snprintf(what, sizeof what, "A042 UBRN %s Binary/%s", ubrn, binary_id);
                snprintf(url, sizeof url, "%s/FHIR/R4/Binary/%s", c->base_url, binary_id);
                r = file_call(c, c->api, url, false, true, "*/*", NULL, what, true, dst, &location, call, e);
                if (r == -ENOENT || (r == -EPROTO && (call->http_status == 405 || call->http_status == 501)))
                        break; /* A042 not offered here: A006 below */
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
        if (r < 0 && r != -ENOENT && r != -EPROTO)
                return r;

        if (declared_size > ERS_A006_MAX)
                return r < 0 ? r : err_set(e, -EFBIG, "UBRN %s Binary/%s: larger than A006 serves", ubrn, binary_id);
        snprintf(what, sizeof what, "A006 UBRN %s Binary/%s", ubrn, binary_id);
        snprintf(url, sizeof url, "%s/FHIR/STU3/Binary/%s", c->base_url, binary_id);
        r = new_call(call, e);
        if (r < 0)
                return r;
        return file_call(c, c->api, url, false, true, "*/*", NULL, what, false, dst, NULL, call, e);
}

int ers_fetch_cri(struct ers_client *c, const char *ubrn, struct spool_file *dst, struct ers_call *call,
                  struct errbuf *e) {
        char url[1024], what[64];
        int r;

        snprintf(what, sizeof what, "A007 UBRN %s", ubrn);
        if (!ubrn_valid(ubrn))
                return err_set(e, -EINVAL, "%s: not a 12-digit UBRN", what);
        r = new_call(call, e);
        if (r < 0)
                return r;
        snprintf(url, sizeof url, "%s/FHIR/STU3/ReferralRequest/%s/$ers.generateCRI", c->base_url, ubrn);
        return file_call(c, c->api, url, true, true, "application/pdf, application/fhir+json;q=0.5",
                         "application/pdf", what, false, dst, NULL, call, e);
}

/* During ers_check_reachable(): a stop ends the attempt to connect. */
static int on_connect_progress(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal,
                               curl_off_t ulnow) {
        const struct ers_client *c = userdata;

        (void) dltotal;
        (void) dlnow;
        (void) ultotal;
        (void) ulnow;
        return c->stop && *c->stop;
}

int ers_check_reachable(struct ers_client *c, struct errbuf *e) {
        char curl_error[CURL_ERROR_SIZE] = "";
        CURL *h = curl_easy_init();
        CURLcode rc;

        if (!h)
                return err_set(e, -ENOMEM, "out of memory");
        connection_options(c, h, c->base_url);
        curl_easy_setopt(h, CURLOPT_CONNECT_ONLY, 1L); /* TCP and TLS only: no request is sent */
        use_client_cert(c, h); /* an origin that requires mutual TLS refuses the handshake without it */
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, curl_error);
        curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_connect_progress);
        curl_easy_setopt(h, CURLOPT_XFERINFODATA, c);
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
