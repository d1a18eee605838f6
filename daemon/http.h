/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * One HTTP transfer of the e-RS client (internal: http.c, token.c, ers.c):
 * the libcurl options every request shares (verified TLS, timeouts, the
 * deadline that grows with what was carried), the sinks an answer streams
 * into (a json-c tree, the streaming worklist parser, a spool file; the start
 * of an error answer), the headers read (Retry-After, Location), the tries
 * of one call, and the outcome turned into one error line with its errno.
 *
 * Not here: what is sent where (ers.c: the calls and their headers; token.c:
 * the token request), the limits shared across threads (pacing.c, asked
 * before every send).  The behaviour is ers.h's ("Deadlines", "Limits",
 * the errors it lists).
 */

#include <curl/curl.h>
#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>

#include "ers.h"
#include "err.h"
#include "fhir.h"
#include "pacing.h"
#include "server_text.h"
#include "spool.h"
#include "util.h"

/* How one thread's transfers are made and paced: part of a client, copied
 * into each of its lanes (which then set their own progress callback).  The
 * strings are borrowed from the client that ers_client_new() made. */
struct http_link {
        const char *ca_file;          /* or NULL for the system bundle */
        const char *client_cert_file; /* mutual TLS (http_use_client_cert()), or NULL */
        const char *client_key_file;
        long connect_timeout_s;
        long stall_timeout_s;         /* under 1 byte/s for this long: the transfer is cut */
        long transfer_timeout_s;      /* ers.transfer_timeout: a transfer's deadline, before its size counts */
        double min_transfer_rate;     /* ers.min_transfer_rate in bytes a second: one more second per so many */
        unsigned tries;               /* ers.tries: sends of one call at most */
        const char *secrets[2];       /* SECRET, each or NULL: the API key, the static bearer token; never
                                       * quoted back from an answer (http_secrets()) */
        struct pacer pacer;           /* the shared pacing, this thread's stop flag and progress callback */
};

enum sink_kind { SINK_JSON, SINK_WORKLIST, SINK_FILE };

/* One request's state, on the caller's stack.  The caller sets kind,
 * expect_type and the sink's fields, then http_setup(), then ep and
 * send_once, and frees it with http_transfer_done(). */
struct transfer {
        CURL *h;                  /* borrowed */
        struct http_link *link;   /* borrowed */
        enum ers_endpoint ep;     /* what is paced and backed off (pacing.h) */
        bool send_once;           /* never sent again by the tries (A008: every send counts against its budget) */
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
        bool keep_raw;            /* SINK_JSON: keep the body's bytes as received too (raw, raw_len) */
        unsigned char *raw;       /* owned until handed to the caller; bounded by ERS_JSON_MAX */
        size_t raw_len, raw_cap;
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

/* How every connection is made: the URL, the protocols, the connect timeout, verified TLS. */
void http_connection_options(const struct http_link *l, CURL *h, const char *url);

/* Mutual TLS: our client certificate (when configured), for a request to
 * the e-RS origin only: never called for the object store. */
void http_use_client_cert(const struct http_link *l, CURL *h);

/* Resets h and sets the options every request shares, the sinks and the
 * deadline, for t; `headers` may be NULL (no header of ours is sent). */
void http_setup(struct http_link *l, CURL *h, const char *url, struct curl_slist *headers, struct transfer *t);

/*
 * Runs the transfer and turns its outcome into 0 or one error line:
 * "<what>: <cause> (correlation id <id>)".  A 2xx, or a 3xx when
 * `redirect_ok`, is success; `what` names endpoint and UBRN.  Fills
 * call->http_status and call->retry_after.
 *
 * Every send goes through pacer_gate() (rate limit, 429, backoff).  A 429, a
 * 5xx or a failed connection is sent again, up to link->tries sends, after
 * the wait pacing_retry_wait() gives, with a fresh correlation id (written
 * into correlation_id), when nothing of its answer reached the caller's
 * sink; never when t->send_once.
 */
int http_perform(struct transfer *t, const char *what, char *correlation_id, bool redirect_ok,
                 struct ers_call *call, struct errbuf *e);

/* Frees what t owns (accepts a transfer never set up, zeroed). */
void http_transfer_done(struct transfer *t);

/* A fresh call record: a new correlation id, no status, no Retry-After.
 * 0, or the error with its line. */
int http_new_call(struct ers_call *call, struct errbuf *e);

/* What an error answer says, for its line: ", e-RS <code>" from an
 * OperationOutcome, else ": \"<first words>\"" of whatever else it is (a TLS
 * front end's page, an object store's, a gateway's HTML), else "".  Server
 * text, through server_text(). */
void http_answer_says(const struct transfer *t, char *buf, size_t size);

/* The e-RS error code of an error answer's OperationOutcome (its first
 * issue's details.coding code), copied as sent into buf; NULL when the answer
 * is not one, has none, or it does not fit.  Server text: for comparing, never
 * for printing (http_answer_says() is). */
const char *http_answer_code(const struct transfer *t, char *buf, size_t size);

/* Our secrets a server might quote back in an answer to t: the link's (the
 * API key, the `iss` and `sub` of an assertion; the static bearer token),
 * the bearer token the request sent, and a token request's assertion.
 * Borrowed from t and its link: valid while t is. */
const struct secrets *http_secrets(const struct transfer *t, struct secrets *ret);
