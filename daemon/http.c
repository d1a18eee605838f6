/* SPDX-License-Identifier: MIT */
/*
 * One HTTP transfer (http.h): libcurl options, the sinks an answer streams
 * into, the headers read, the tries of one call, the outcome classified into
 * an errno and one line.  Also the pure header parsers and the redirect rule
 * ers.h declares (ers_content_type_is(), ers_header_retry_after(),
 * ers_redirect_allowed(), ers_url_is_loopback()).
 *
 * Not here: the e-RS calls, their URLs and headers (ers.c), the token request
 * (token.c), the rate slot, 429 hold and breakers (pacing.c).
 */
#include "http.h"

#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "fhir.h"
#include "schedule.h"

#define ERRBODY_MAX (16 * 1024) /* what we read of an error answer (or a redirect's note): its OperationOutcome */
#define USER_AGENT "ersd/0.1"

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

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

const struct secrets *http_secrets(const struct transfer *t, struct secrets *ret) {
        static const char bearer[] = "Authorization: Bearer ";
        size_t k = 0;

        memset(ret, 0, sizeof *ret);
        for (size_t i = 0; i < ELEMENTSOF(t->link->secrets); i++)
                if (t->link->secrets[i])
                        ret->s[k++] = t->link->secrets[i];
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
                                server_text(ct, strlen(ct), http_secrets(t, &secrets), said, sizeof said);
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
        if (t->keep_raw) {
                /* the bytes as they came, for the PAS (an A005 answer kept whole) */
                if (t->raw_len + len > t->raw_cap) {
                        size_t cap = t->raw_cap ? t->raw_cap : 16384;
                        while (cap < t->raw_len + len)
                                cap *= 2;
                        unsigned char *more = realloc(t->raw, cap);
                        if (!more)
                                return body_fail(t, err_set(&t->why, -ENOMEM, "out of memory"));
                        t->raw = more;
                        t->raw_cap = cap;
                }
                memcpy(t->raw + t->raw_len, p, len);
                t->raw_len += len;
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

void http_transfer_done(struct transfer *t) {
        if (t->tok)
                json_tokener_free(t->tok);
        json_object_put(t->obj);
        worklist_parser_free(t->worklist);
        free(t->raw);
        free(t->location);
        free(t->errbody);
}

const char *http_answer_code(const struct transfer *t, char *buf, size_t size) {
        json_object *root = NULL;
        struct outcome o = { 0 };
        const char *ret = NULL;

        if (t->errbody && t->errlen > 0 && fhir_parse_text(t->errbody, t->errlen, &root, NULL) == 0 &&
            fhir_parse_outcome(root, &o, NULL) == 0 && o.code && strlen(o.code) < size) {
                memcpy(buf, o.code, strlen(o.code) + 1);
                ret = buf;
        }
        outcome_free(&o);
        json_object_put(root);
        return ret;
}

void http_answer_says(const struct transfer *t, char *buf, size_t size) {
        char said[SERVER_TEXT_MAX + 4], code[512]; /* fhir.c keeps 256 bytes of an OperationOutcome's code */
        struct secrets secrets;

        buf[0] = '\0';
        if (!t->errbody || t->errlen == 0)
                return;
        if (http_answer_code(t, code, sizeof code)) {
                server_text(code, strlen(code), http_secrets(t, &secrets), said, sizeof said);
                snprintf(buf, size, ", e-RS %s", said);
        } else if (server_text(t->errbody, t->errlen, http_secrets(t, &secrets), said, sizeof said) > 0) {
                snprintf(buf, size, ": \"%s\"", said);
        }
}

void http_connection_options(const struct http_link *l, CURL *h, const char *url) {
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT, l->connect_timeout_s);
        /* libcurl keeps up to 5 connections a handle; each of ours talks to one origin
         * at a time (the API, or the object store), so ersd's descriptors stay a
         * small multiple of its fetching threads (ers.h, ERS_CONNECTIONS_PER_HANDLE). */
        curl_easy_setopt(h, CURLOPT_MAXCONNECTS, (long) ERS_CONNECTIONS_PER_HANDLE);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(h, CURLOPT_SSLVERSION, (long) CURL_SSLVERSION_TLSv1_2);
        if (l->ca_file)
                curl_easy_setopt(h, CURLOPT_CAINFO, l->ca_file);
}

/* The seconds a transfer that has moved `bytes` may have taken so far: its
 * deadline grows with what it carries (see ers.h, "Deadlines"). */
static double transfer_allowance(const struct http_link *l, curl_off_t bytes) {
        return (double) l->transfer_timeout_s + (double) bytes / l->min_transfer_rate;
}

/* libcurl's progress callback: often while bytes move, at least once a second
 * when none do.  Ends a transfer when a stop is asked for (-ECANCELED), and
 * one past its deadline: a 2xx answer as too slow (the call fails); the body
 * of any other answer, which was only read for its words, is no longer read
 * (the answer stands on its status). */
static int on_xferinfo(void *userdata, curl_off_t dltotal, curl_off_t dlnow, curl_off_t ultotal, curl_off_t ulnow) {
        struct transfer *t = userdata;
        struct http_link *l = t->link;
        double elapsed = now_monotonic() - t->sent_at;
        long status = 0;

        (void) dltotal;
        (void) ultotal;
        if (l->pacer.stop && *l->pacer.stop) {
                t->err = err_set(&t->why, -ECANCELED, "stopped during the transfer");
                return 1; /* CURLE_ABORTED_BY_CALLBACK */
        }
        if (dlnow + ulnow > t->moved) /* bytes moved: work goes on; a stuck transfer feeds nothing */
                pacer_progressed(&l->pacer);
        t->moved = dlnow + ulnow;
        if (elapsed <= transfer_allowance(l, t->moved))
                return 0;
        curl_easy_getinfo(t->h, CURLINFO_RESPONSE_CODE, &status);
        if (status >= 300) {
                t->body_cut = true;
                return 1;
        }
        t->err = err_set(&t->why, -EAGAIN,
                         "too slow: %" CURL_FORMAT_CURL_OFF_T " bytes in %.1f s, past its deadline "
                         "(ers.transfer_timeout %ld s + 1 s per ers.min_transfer_rate %.0f KiB)",
                         t->moved, elapsed, l->transfer_timeout_s, l->min_transfer_rate / 1024);
        return 1; /* CURLE_ABORTED_BY_CALLBACK */
}

void http_setup(struct http_link *l, CURL *h, const char *url, struct curl_slist *headers, struct transfer *t) {
        curl_easy_reset(h);
        http_connection_options(l, h, url);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_LIMIT, 1L);
        curl_easy_setopt(h, CURLOPT_LOW_SPEED_TIME, l->stall_timeout_s);
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
        t->link = l;
        t->headers = headers;
        t->retry_after = -1;
}

void http_use_client_cert(const struct http_link *l, CURL *h) {
        if (!l->client_cert_file)
                return;
        curl_easy_setopt(h, CURLOPT_SSLCERT, l->client_cert_file);
        curl_easy_setopt(h, CURLOPT_SSLCERTTYPE, "PEM");
        curl_easy_setopt(h, CURLOPT_SSLKEY, l->client_key_file);
        curl_easy_setopt(h, CURLOPT_SSLKEYTYPE, "PEM");
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

/* A transfer's state back to "nothing received", for another try. */
static void transfer_rewind(struct transfer *t) {
        if (t->tok)
                json_tokener_reset(t->tok);
        json_object_put(t->obj);
        t->obj = NULL;
        t->json_bytes = 0;
        t->raw_len = 0;
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

/* The wait before another try of t after a transient answer (pacing.h). */
static double retry_wait(struct transfer *t, unsigned *steps) {
        return pacing_retry_wait(t->link->pacer.shared, t->ep, t->status, t->retry_after, steps);
}

int http_perform(struct transfer *t, const char *what, char *correlation_id, bool redirect_ok,
                 struct ers_call *call, struct errbuf *e) {
        char cause[CURL_ERROR_SIZE + 64], code[SERVER_TEXT_MAX + 64];
        int64_t sink_start = t->kind == SINK_FILE && t->file ? spool_file_size(t->file) : 0;
        CURLcode rc;
        int r;

        unsigned steps = 0;
        bool transient = false;

        for (unsigned attempt = 1;; attempt++) {
                r = pacer_gate(&t->link->pacer, t->ep, what, e);
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
                if (!transient || !untouched || t->send_once || attempt >= t->link->tries)
                        break;
                r = pacer_wait(&t->link->pacer, retry_wait(t, &steps));
                if (r < 0)
                        return err_set(e, r, "%s: stopped while backing off (correlation id %s)", what, correlation_id);
                if (renew_correlation_id(t, correlation_id) < 0)
                        return err_set(e, -ENOMEM, "out of memory");
                transfer_rewind(t);
        }
        if (transient)
                (void) retry_wait(t, &steps); /* a last 429 still holds the others back */
        pacing_note_call(t->link->pacer.shared, t->ep, transient);

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
        http_answer_says(t, code, sizeof code);
        if (t->status == 429 || t->status == 503) {
                if (t->retry_after >= 0)
                        snprintf(code + strlen(code), sizeof code - strlen(code), ", Retry-After %ld s", t->retry_after);
        }
        return err_set(e, classify_status(t->status), "%s: HTTP %ld%s (correlation id %s)", what, t->status, code,
                       correlation_id);
}

int http_new_call(struct ers_call *call, struct errbuf *e) {
        int r;

        memset(call, 0, sizeof *call);
        call->retry_after = -1;
        r = uuid_v4(call->correlation_id);
        if (r < 0)
                return err_set(e, r, "cannot make a correlation id: %s", strerror(-r));
        return 0;
}

int ers_url_is_loopback(const char *url) {
        return url_is_loopback(url);
}

/* Only https, or http to a loopback host (the test suite's object store). */
bool ers_redirect_allowed(const char *location) {
        if (strncasecmp(location, "https://", 8) == 0)
                return true;
        return strncasecmp(location, "http://", 7) == 0 && ers_url_is_loopback(location);
}
