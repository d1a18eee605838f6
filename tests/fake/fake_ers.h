/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A scripted e-RS for the sync engine's unit test (tests/unit/test_engine.c).
 *
 * fake_ers.c defines the client functions of daemon/ers.h (ers_client_new,
 * _lane, _free, _on_progress, _progress, _on_stop, ers_prepare_token,
 * ers_check_reachable and the endpoints ers_fetch_worklist, ers_read_referral,
 * ers_fetch_attachment, ers_fetch_cri) and the write-back calls of
 * daemon/ers_writeback.h (ers_allowed_actions, ers_record_review_outcome,
 * ers_accept_referral), and is linked IN PLACE OF daemon/ers.o and
 * daemon/ers_writeback.o (Makefile: test_engine).  It does not define ers.h's pure header parsers:
 * nothing the engine links needs them.  Not in tests/support/, which is
 * linked into every test binary and would clash with ers.o there.
 *
 * What it holds is what e-RS serves now, scripted by the test: referrals
 * (A005, rendered as the FHIR JSON the real client would hand over, parsed by
 * the engine as in production), their attachments' bytes (A042) and letters
 * (A007), and worklists per (list type, service) (A008, as the parsed struct
 * the real client returns).  Failures are injected per endpoint and key.
 * Every call is recorded, in order, for the test to assert.
 *
 * Thread-safe: the engine's fetching threads call it on their lanes at once.
 * The scripting functions are for the test's thread, between rounds or from
 * the call hook.  Strings passed in are copied.
 */

#include <signal.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "daemon/ers_writeback.h"

/* The endpoints, as e-RS names them. */
enum fake_endpoint {
        FAKE_A008, /* worklist; key "<list type>/<service>" */
        FAKE_A005, /* referral; key "<ubrn>" */
        FAKE_A042, /* attachment; key "<ubrn> <binary id>" */
        FAKE_A007, /* the letter (Clinical Referral Information); key "<ubrn>" */
        FAKE_A029, /* the actions allowed now (ers_writeback.h); key "<ubrn>" */
        FAKE_A028, /* record review outcome; key "<ubrn>" */
        FAKE_A013, /* accept referral; key "<ubrn>" */
};

#define FAKE_DOCS_MAX    8
#define FAKE_RELATED_MAX 4
#define FAKE_REQUIREMENTS_MAX 4
#define FAKE_LISTED_MAX  16

/* One attachment as A005 describes it and A042 serves it. */
struct fake_doc {
        const char *id;           /* attachment id; also its Binary id (unless `binary`), so [A-Za-z0-9.-] only */
        const char *availability; /* "AVAILABLE", "PENDING", "THREATS_FOUND", …; NULL: not stated */
        const char *content;      /* the bytes A042 serves (text; its length is the declared size) */
        const char *created;      /* attachment.creation; NULL: "2030-01-01T00:00:00Z" */
        const char *binary;       /* its Binary id (and DocumentReference id), [A-Za-z0-9.-]; NULL: its id.
                                     Two attachments with one id need their own */
};

/* One referral as A005 answers it. */
struct fake_referral {
        const char *ubrn;
        int64_t version;
        const char *nhs_number;                /* subject; NULL: absent */
        const char *priority;                  /* NULL: absent */
        const char *specialty;                 /* NULL: absent */
        const char *related[FAKE_RELATED_MAX]; /* UBRNs of its related referrals, up to the first NULL */
        struct fake_doc docs[FAKE_DOCS_MAX];   /* up to the first without an id */
        const char *letter;                    /* what A007 serves; NULL: "letter <ubrn> v<version>" */
        const char *requirements[FAKE_REQUIREMENTS_MAX]; /* additional requirement codes, up to the first NULL
                                                            (Extension-eRS-AdditionalRequirement-1, as the
                                                            published examples carry them) */
        const char *state_comment;             /* the ReferralState extension's "comments" (free text); NULL: absent */
        const char *profile;                   /* meta.profile[0], an element ersd does not keep; NULL: absent */
};

/* Forgets everything: referrals, worklists, failures, the call record, the hook. */
void fake_ers_reset(void);

/* e-RS serves `r` from now on (replacing what it served for its UBRN). */
void fake_ers_put(const struct fake_referral *r);

/* e-RS no longer knows the UBRN: A005 answers 404. */
void fake_ers_forget(const char *ubrn);

/* The worklist (list_type, service) lists these UBRNs from now on (NULL
 * ends the list; at most FAKE_LISTED_MAX), each entry as e-RS serves the
 * referral at the time of the A008: its version, priority, specialty and
 * NHS number (no version on APPOINTMENT_SLOT_ISSUES, whose items carry none).
 * A worklist never set answers with no entry. */
void fake_ers_list(const char *list_type, const char *service, const char *const *ubrns);

/* The working state e-RS gives the entry of `ubrn` on the worklist (list_type,
 * service) from now on, until the next fake_ers_list() of that worklist
 * (model.h, struct worklist_entry; NULL strings: not said).  The UBRN must be
 * listed there. */
struct fake_entry_state {
        const char *ubrn_received, *patient_contact_expected, *last_contact, *clinical_information_status,
                *request_context_status;
        enum printed printed;
};
void fake_ers_entry_state(const char *list_type, const char *service, const char *ubrn,
                          const struct fake_entry_state *state);

/*
 * The next `times` calls to `endpoint` with `key` (NULL: any key) fail
 * with `r` (0 times: every call from now on), with the line the real
 * client would give: -EAGAIN "HTTP 503", -ETIMEDOUT "no answer: timed out",
 * -ENOENT "HTTP 404", -ENODATA "HTTP 422", -EACCES "HTTP 403", -EBADMSG,
 * any other errno by name.  r = -ECANCELED is a stop that arrives during
 * the transfer: the stop flag (fake_ers_stop_flag) is set and the call
 * ends with -ECANCELED, as the real client does.  Failures are matched in
 * the order they were added.
 */
void fake_ers_fail(enum fake_endpoint endpoint, const char *key, int r, unsigned times);

/* The flag a -ECANCELED failure sets (the test's stop flag, as handed to
 * the engine in sync_ctx.stop). */
void fake_ers_stop_flag(volatile sig_atomic_t *stop);

/* Called at the start of every call, before it is answered, on the calling
 * thread (NULL: none): the test makes things happen mid-round there (the
 * PAS lost, a stop, e-RS changing).  It may call the scripting functions. */
void fake_ers_on_call(void (*fn)(void *userdata, enum fake_endpoint endpoint, const char *key), void *userdata);

/*
 * The calls since the last reset or take, one line each in the order they
 * were made: "A005 000000000001", with " -> -EAGAIN" when it failed (the
 * errno by name).  Malloc'd (the caller frees); the record starts afresh.
 */
char *fake_ers_take_calls(void);

/* Calls made to `endpoint` with `key` (NULL: any) since the last reset
 * (kept across fake_ers_take_calls()). */
unsigned fake_ers_count(enum fake_endpoint endpoint, const char *key);

/* How many times the engine has read ers_client_progress() since the last
 * reset: the writer reads it as it starts to wait for a fetch, and after each
 * second of waiting (daemon/round.c). */
unsigned fake_ers_progress_reads(void);

/* Blocks the calling thread (a fetching thread, in the call hook) until the
 * engine has read ers_client_progress() `n` times since the last reset, so
 * that a call answered from then on is progress the waiting writer has not
 * seen yet.  False when `timeout_s` (real) seconds passed first. */
bool fake_ers_await_progress_read(unsigned n, unsigned timeout_s);

/*
 * The write-back calls (A029, A028, A013) answer as e-RS would by default:
 * for a referral put with fake_ers_put() at the version asked about (A029)
 * or decided on (A028, A013): A029 DONE with RECORD_REVIEW_OUTCOME allowed;
 * A028 and A013 DONE, the referral's version going up by one (so A005 and
 * the worklists show it); at another version STALE (412); an unknown or
 * forgotten referral REJECTED (404).  A request the real client refuses
 * before sending (fhir_review_check()) is refused the same, -EINVAL.
 *
 * fake_ers_write_outcome(): the next `times` calls (0: every call from now
 * on) to `endpoint` (FAKE_A029, FAKE_A028, FAKE_A013) for `ubrn` (NULL: any)
 * end in `outcome` instead, with the status and line the real client gives
 * (RETRY: 503; REJECTED: 422 INVALID_REQUEST_STATE; STALE: 409; FORBIDDEN:
 * 403; MAY_HAVE_REACHED: no answer).  With `applied`, a MAY_HAVE_REACHED
 * write was applied first (the version goes up, as a connection lost after
 * e-RS committed); DONE is the default answer (applied).  Matched after
 * fake_ers_fail() ones, in the order they were added.  The record
 * (fake_ers_take_calls()) shows each write-back call's outcome by name:
 * "A028 000000000001 -> STALE"; DONE shows nothing.
 */
void fake_ers_write_outcome(enum fake_endpoint endpoint, const char *ubrn, enum ers_wb_outcome outcome, bool applied,
                            unsigned times);

/* The text e-RS served (an attachment's, a letter's or an A005 answer's
 * bytes) whose SHA-256 is `sha` (lower-case hex), for reading a PAS back;
 * NULL when it never served such bytes.  Valid until the next reset. */
const char *fake_ers_served(const char *sha);
