/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The e-RS client (libcurl): the four calls a provider-side sync needs.
 *
 *   A008  POST {base}/FHIR/STU3/ReferralRequest/$ers.fetchworklist  → List
 *   A005  GET  {base}/FHIR/STU3/ReferralRequest/{ubrn}              → ReferralRequest
 *   A042  GET  {base}/FHIR/R4/Binary/{id} → 307 → object store      → bytes
 *   A007  POST {base}/FHIR/STU3/ReferralRequest/{ubrn}/$ers.generateCRI → PDF
 *
 * and, for the operators' commands (`ersd services`, `--check-config
 * --network`), never for a sync:
 *
 *   A033  GET  {base}/FHIR/R4/HealthcareService/{id}                 → HealthcareService
 *   A035  GET  {base}/FHIR/R4/HealthcareService?_id={id},…           → Bundle
 *
 * A006 (GET {base}/FHIR/STU3/Binary/{id}) is deprecated and retired: never
 * called.  A042 is the only way to a file.
 *
 * Every call sends a fresh X-Correlation-ID (UUID v4), returned in
 * `call->correlation_id` whether the call succeeded or not, for the log.
 * JSON answers are parsed while they stream in, refused past ERS_JSON_MAX:
 * an A005 into a json-c tree (json_tokener), an A008 worklist piece by piece
 * (worklist_parser, fhir.h), never held whole; document bodies stream into a spool file, refused past the
 * configured maximum.  Only the A042 307 is followed, once, to an https URL
 * (http only for a loopback host), with none of our headers: no
 * Authorization, no NHSD-*, no cookies, no client certificate reach the
 * other origin.
 *
 * Credentials (config: ers.auth): none, a static bearer token, or signed-JWT
 * client credentials (auth.h): the client then fetches an access token from
 * the token endpoint before the first call and shortly before it expires; a
 * 401 on an API call drops it, fetches a new one and retries that call once
 * (a second 401 is -EACCES with the cause named).  A failure at the token
 * endpoint is the call's error, its line starting "token endpoint <url>:" with
 * the platform's OAuth error and description (scrubbed of our secrets: the
 * platform may quote the assertion's claims, the API key among them).  Mutual TLS (ers.client_cert_file)
 * is used on the e-RS origin only.  TLS is always verified, TLS 1.2 at least.
 *
 * Deadlines: every try of a call must be over within ers.transfer_timeout
 * seconds plus one second for every ers.min_transfer_rate KiB it carried so far
 * (checked at least once a second); a 2xx answer that falls behind is cut
 * (-EAGAIN, "too slow: …").  The body of any other answer (an error, a
 * redirect's note) is read to ERRBODY_MAX (16 KiB) or until that deadline,
 * whichever comes first, then left unread: the answer stands on its status.
 * Every answer is bounded in size as well (ERS_JSON_MAX, the configured
 * maximum for a document), so no transfer lasts longer than its deadline at
 * that size.  The A042 redirect is taken from the Location header as sent.
 *
 * Limits (daemon/schedule.h): every request to the e-RS origin, the token
 * endpoint's included, takes a slot of one rate limiter (ers.max_requests_per_
 * second); the object store's leg of A042 is not the API and is not counted.
 * A 429, 5xx or failed connection is sent again after a wait (Retry-After
 * when given, capped at SCHED_BACKOFF_CAP, else 1, 2, 4 … s with jitter), up
 * to ers.tries sends, with a fresh correlation id each time, when nothing of
 * its answer was taken yet; A008 never (each send counts against the
 * worklist budget).  A 429 holds every e-RS endpoint back for its wait (the
 * limit is the application's).  5xx and network failures count against
 * their endpoint only: once 3 calls to one endpoint in a row failed on every
 * try, calls to it fail at once (-EAGAIN, "not tried: …") for 1, 2, 4 … s
 * (capped) before one call tries it again, so a failing object store does
 * not hold A005 up, and one referral that always fails does not stop the
 * others.  Waits feed the progress callback and end with -ECANCELED when the
 * stop flag is set.
 *
 * Returns 0, or a negative errno with one line in the errbuf naming the
 * endpoint, the UBRN (when there is one), the HTTP status or transport
 * error, the e-RS error code when an OperationOutcome came back (else the
 * first words of the body, quoted, escaped and capped: server_text.h), and the
 * correlation id:
 *   -EAGAIN   transient: network, timeout, stall, too slow, truncated body, 429, 5xx
 *   -ECANCELED stopped (ers_client_on_stop): while waiting to send, or mid-transfer
 *   -EBADMSG  an answer that is not what the API promises (status, content
 *             type, malformed JSON, wrong resourceType is the parser's job)
 *   -EFBIG    answer larger than allowed
 *   -EACCES   401 / 403
 *   -ENOENT   404
 *   -ENODATA  422: not available (attachment not AVAILABLE, PATIENT_ERROR …);
 *             from A042 also a 400 whose OperationOutcome names an
 *             availability (PENDING, THREATS_FOUND, VALIDATION_FAILED), as
 *             deployments before the 422 answered
 *   -EPROTO   any other 4xx, a redirect we refuse, a TLS failure
 */

#include <json-c/json.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "err.h"
#include "fhir.h"
#include "fhir_service.h"
#include "spool.h"
#include "util.h"

#define ERS_JSON_MAX (10 * 1024 * 1024) /* the platform fails a worklist above 10 MB */
#define ERS_SERVICES_PER_SEARCH 20      /* A035 takes 1 to 20 service ids (400 beyond) */
/* Connections one curl handle keeps open at most.  Each client (the main one,
 * and a lane per fetching thread) has two handles, so ersd's sockets to e-RS
 * are at most 2 x this x (ers.parallel_fetches + 1), whatever the documents. */
#define ERS_CONNECTIONS_PER_HANDLE 2

struct ers_client; /* curl handles (API origin, object store) and the headers we send */

/* What the caller logs about one call. */
struct ers_call {
        char correlation_id[UUID_STR_LEN];
        long http_status; /* 0 when no answer came */
        long retry_after; /* seconds from Retry-After on 429/503, else -1 */
};

/* Borrows nothing from c after return (copies what it needs).  Caller owns *ret. */
int ers_client_new(const struct config *c, struct ers_client **ret, struct errbuf *e);

/*
 * A lane of `parent` for another thread: its own connections (curl handles),
 * and the parent's configuration, rate limiter, 429 hold, endpoint backoff
 * and access token, shared under a lock, so that every lane together stays
 * within ers.max_requests_per_second.  It takes the parent's stop flag as it
 * is now and no progress callback.  One thread uses a lane at a time; the
 * parent must outlive it.  Freed with ers_client_free().
 */
int ers_client_lane(struct ers_client *parent, struct ers_client **ret, struct errbuf *e);
void ers_client_free(struct ers_client *c); /* accepts NULL */

/* A008, parsed as it arrives (fhir.h: worklist_parser).  Caller owns *ret
 * (worklist_free()).  An answer that is not a worklist is -EBADMSG with the
 * parser's line, as "A008 …: HTTP 200: expected a List, got Bundle (correlation id …)". */
int ers_fetch_worklist(struct ers_client *c, const char *list_type, const char *service_id,
                       struct worklist *ret, struct ers_call *call, struct errbuf *e);

/* A005.  Caller owns *ret.  raw (may be NULL) gets the answer as received:
 * the body's bytes before any parsing (at most ERS_JSON_MAX), the call's
 * correlation id and when it arrived; set only on success, its bytes the
 * caller's (referral_answer_free()). */
int ers_read_referral(struct ers_client *c, const char *ubrn, json_object **ret, struct referral_answer *raw,
                      struct ers_call *call, struct errbuf *e);

/* A042: the attachment's bytes into `dst` (not finished: the caller
 * finishes it), its 307 followed to the object store; an expired link (403
 * from the store, nothing received) is asked for once more.  Any failure of
 * A042 is the call's error, a 404 included (there is no other way to a file). */
int ers_fetch_attachment(struct ers_client *c, const char *ubrn, const char *binary_id, struct spool_file *dst,
                         struct ers_call *call, struct errbuf *e);

/* A033: the service `id` (service_id_valid(), model.h; else -EINVAL), parsed
 * (fhir_service.h).  Caller owns *ret (ers_service_free()).  -ENOENT: e-RS
 * does not know it (404); -EACCES: this application may not read services
 * (403: e-RS allows A033 to a referring organisation's applications).  Spends
 * no worklist call. */
int ers_read_service(struct ers_client *c, const char *id, struct ers_service *ret, struct ers_call *call,
                     struct errbuf *e);

/* A035: the services of the `n` ids (1 to ERS_SERVICES_PER_SEARCH, each as
 * for A033), parsed; ids e-RS does not know are simply not in *ret.  Caller
 * owns *ret (ers_service_list_free()).  -EACCES (403): e-RS allows A035 to
 * referring clinicians under user-restricted access only. */
int ers_search_services(struct ers_client *c, const char *const *ids, size_t n, struct ers_service_list *ret,
                        struct ers_call *call, struct errbuf *e);

/* A007: the Clinical Referral Information PDF into `dst`. */
int ers_fetch_cri(struct ers_client *c, const char *ubrn, struct spool_file *dst, struct ers_call *call,
                  struct errbuf *e);

/* True for a URL whose host is loopback (127.0.0.0/8, localhost, [::1]). */
int ers_url_is_loopback(const char *url);

/* Whether the A042 redirect may be followed to `location`: https, or http to a
 * loopback host (the test suite's object store).  Never a relative URL. */
bool ers_redirect_allowed(const char *location);

/* Pure parsers of what an HTTP answer's headers say (outside input: fuzzed).
 *
 * True when Content-Type `got` (may be NULL) is `want`, compared
 * case-insensitively, ignoring leading spaces and any ";…" parameters. */
bool ers_content_type_is(const char *got, const char *want);

/* One raw header line (`len` bytes, as libcurl hands it over, not
 * NUL-terminated, CRLF included).  When it is a Retry-After header, the
 * seconds it asks us to wait, counted from `now` for an HTTP-date (0 for a
 * date already past); -1 when it is another header or the value is neither
 * delay-seconds nor a date. */
long ers_header_retry_after(const char *line, size_t len, time_t now);

/* `fn` is called whenever work goes on: during a transfer each time bytes
 * moved since the last call, and once a second of a wait the client chose (a
 * rate-limit slot, a backoff, a Retry-After, each bounded).  Never while a
 * transfer is stuck: the daemon feeds systemd's watchdog and renews its lease
 * there, so that a hung transfer lets systemd, or a standby, take over.  It
 * must not block; NULL removes it.  Not called on lanes (see below). */
void ers_client_on_progress(struct ers_client *c, void (*fn)(void *userdata), void *userdata);

/* A count of the steps of work (as for the progress callback) done by `c` and
 * every lane of it: it stands still while every transfer is stuck.  The
 * writer thread, waiting for its fetchers, feeds the watchdog only when it
 * moved.  Any thread. */
uint64_t ers_client_progress(const struct ers_client *c);

/* `stop` (may be NULL) is read while the client waits for a slot or a backoff,
 * and during every transfer (libcurl's progress callback, at least once a
 * second): when set, the call ends with -ECANCELED within a second, whatever
 * the server does.  Lanes take it from their parent when made. */
void ers_client_on_stop(struct ers_client *c, const volatile sig_atomic_t *stop);

/* With signed-JWT access, fetches the first access token now (at start, so
 * that a refused key is known before READY=1); 0 at once for the other modes.
 * The errors of a call. */
int ers_prepare_token(struct ers_client *c, struct errbuf *e);

/* Whether the e-RS origin answers: a TCP connection and, for https, a verified
 * TLS handshake, then closed.  No request is sent, so no call budget is spent
 * (never an A008: that is budgeted to twice a day).  0, -EAGAIN (network,
 * timeout), -EPROTO (TLS: certificate, CA file) or -ECANCELED (stopped). */
int ers_check_reachable(struct ers_client *c, struct errbuf *e);
