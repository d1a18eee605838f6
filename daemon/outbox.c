/* SPDX-License-Identifier: MIT */
/*
 * The return path's sender (outbox.h): what is done with each due request of
 * ers_outbox and how each answer of e-RS becomes its state.  Not here: the
 * table's statements (adapters/pas_outbox.c), the calls and how their
 * answers are classified (daemon/ers_writeback.c, ers_outcome.c).
 */
#include "outbox.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <json-c/json.h>

#include "../adapters/pas.h"
#include "../adapters/pas_answer.h"
#include "../adapters/pas_outbox.h"
#include "config.h"
#include "ers.h"
#include "ers_writeback.h"
#include "fhir_writeback.h"
#include "log.h"
#include "round.h"
#include "util.h"

#define OUTBOX_BATCH 200 /* requests looked at per round at most; the rest wait for the next */

long outbox_backoff(const struct config *cfg, unsigned attempts, long retry_after) {
        long delay = cfg->retry_delay_s > 0 ? cfg->retry_delay_s : 60;
        long cap = cfg->parked_retry_s > delay ? cfg->parked_retry_s : delay;

        for (unsigned i = 1; i < attempts && delay < cap; i++)
                delay *= 2;
        if (delay > cap)
                delay = cap;
        return retry_after > delay ? retry_after : delay;
}

static bool action_enabled(const struct config *cfg, const char *action) {
        if (strcmp(action, "RECORD_REVIEW_OUTCOME") == 0)
                return cfg->writeback_actions & CONFIG_WB_RECORD_REVIEW_OUTCOME;
        if (strcmp(action, "ACCEPT_REFERRAL") == 0)
                return cfg->writeback_actions & CONFIG_WB_ACCEPT_REFERRAL;
        return false;
}

/* Records an outcome in a transaction of its own, with its audit row; says it in one line. */
static int record(struct sync_ctx *ctx, const struct outbox_request *q, struct outbox_outcome *o) {
        struct errbuf e = { { 0 } };
        struct pas_tx *tx = NULL;
        char event[40];
        int r;

        o->id = q->id;
        o->ubrn = q->ubrn;
        o->action = q->action;
        o->decided_version = q->decided_version;
        if (!o->event) {
                snprintf(event, sizeof event, "WRITEBACK_%s", strcmp(o->state, "SENDING") == 0 ? "MAY_HAVE_REACHED"
                                                                                              : o->state);
                o->event = event;
        }
        r = pas_begin(ctx->pas, &tx, &e);
        if (r >= 0) {
                r = pas_outbox_record(tx, o, &e);
                if (r >= 0)
                        r = pas_commit(tx, &e);
                else
                        pas_rollback(tx);
        }
        struct log_ctx lc = { .ubrn = q->ubrn, .correlation_id = o->correlation_id, .stage = "writeback" };
        if (r < 0) {
                log_ctx_error(&lc, "writeback: request %" PRId64 " (%s): outcome %s not recorded: %s", q->id, q->ubrn,
                              o->state, e.msg);
                return r;
        }
        log_ctx_msg(strcmp(o->state, "DONE") == 0 ? LOG_NOTICE : LOG_WARNING, &lc,
                    "writeback: request %" PRId64 " %s %s decided on version %" PRId64 ": %s%s%s", q->id, q->action,
                    q->ubrn, q->decided_version, o->state, o->error_text && *o->error_text ? ": " : "",
                    o->error_text ? o->error_text : "");
        return 0;
}

/*
 * The state a referral shows once the request was applied.  A028 moves the
 * referral to a state of its own; A013 leaves it BOOKED, and nothing e-RS's
 * A005 shows tells an accepted referral from one not accepted (the
 * specification names no such element; A029 offers no action for A013).
 */
static const char *applied_state(const struct outbox_request *q) {
        if (strcmp(q->action, "RECORD_REVIEW_OUTCOME") != 0)
                return "BOOKED";
        return strcmp(q->review_outcome, ERS_REVIEW_RETURN_TO_REFERRER) == 0 ? "TRIAGE_RESPONSE"
                                                                              : "TRIAGED_PROVIDER_TO_ACTION";
}

/* A request whose send may have reached e-RS: settled by what A005 shows, never sent blindly. */
static int settle(struct sync_ctx *ctx, const struct outbox_request *q) {
        struct errbuf e = { { 0 } };
        struct ers_call call = { .retry_after = -1 };
        struct {
                int64_t version;
                char *state; /* owned */
        } ref = { .version = -1 };
        json_object *root = NULL;
        char line[300];
        int r = ers_read_referral(ctx->ers, q->ubrn, &root, NULL, &call, &e);

        if (r >= 0) /* its version and state only: the rest may be what the sync refuses */
                r = fhir_parse_settling(root, q->ubrn, &ref.version, &ref.state, &e);
        json_object_put(root);
        if (r < 0) {
                log_ctx_warning(&(struct log_ctx){ .ubrn = q->ubrn, .correlation_id = call.correlation_id,
                                                   .stage = "writeback" },
                                "writeback: request %" PRId64 " %s: may have reached e-RS, not settled yet (A005: %s)",
                                q->id, q->ubrn, e.msg);
                return r == -ECANCELED ? r : 0;
        }
        struct outbox_outcome o = { .correlation_id = call.correlation_id };
        if (ref.version == q->decided_version) {
                /* Not applied: e-RS shows the decided version still, so one send more is safe. */
                snprintf(line, sizeof line, "not applied: A005 shows version %" PRId64 " still", ref.version);
                o.state = "RETRY";
                o.error_text = line;
        } else if (ref.version > q->decided_version && ref.state && strcmp(ref.state, applied_state(q)) == 0 &&
                   (strcmp(q->action, "ACCEPT_REFERRAL") != 0 || ref.version == q->decided_version + 1)) {
                /* A013: BOOKED one version on, as its own answer would have been.  Any further
                 * version may be another change (a rebooked appointment) over an acceptance
                 * that did or did not happen: a person looks (STALE), never a guess.  The
                 * residual risk (H-13): another change alone, exactly one version on. */
                snprintf(line, sizeof line, "applied: A005 shows version %" PRId64 " %s", ref.version, ref.state);
                o.state = "DONE";
                o.answered_version = ref.version;
        } else {
                snprintf(line, sizeof line, "A005 shows version %" PRId64 " %s: not known to be this request's",
                         ref.version, ref.state ? ref.state : "(no state)");
                o.state = "STALE";
                o.error_text = line;
        }
        r = record(ctx, q, &o);
        free(ref.state);
        return r;
}

/* Marks the request SENDING, committed before the call.  1 marked, 0 not (do not send), < 0 failed. */
static int mark_sending(struct sync_ctx *ctx, const struct outbox_request *q) {
        struct errbuf e = { { 0 } };
        struct pas_tx *tx = NULL;
        int r = pas_begin(ctx->pas, &tx, &e);

        if (r >= 0) {
                r = pas_outbox_sending(tx, q->id, &e);
                if (r > 0 && pas_commit(tx, &e) < 0)
                        r = -EIO;
                else if (r <= 0)
                        pas_rollback(tx);
        }
        if (r < 0)
                log_ctx_error(&(struct log_ctx){ .ubrn = q->ubrn, .stage = "writeback" },
                              "writeback: request %" PRId64 " %s: not marked SENDING, not sent: %s", q->id, q->ubrn,
                              e.msg);
        return r;
}

/* The outcome of a call (A029 or a write) into *o; line and next hold its texts. */
static void outcome_of(const struct config *cfg, const struct outbox_request *q, const struct ers_wb_result *res,
                       const struct ers_call *call, const struct errbuf *e, struct outbox_outcome *o,
                       char next[32]) {
        o->correlation_id = call->correlation_id;
        o->error_code = res->code;
        o->error_text = e->msg;
        switch (res->outcome) {
        case ERS_WB_DONE:
                o->state = "DONE";
                o->answered_version = res->version;
                break;
        case ERS_WB_REJECTED:
                o->state = "REJECTED";
                break;
        case ERS_WB_STALE:
                o->state = "STALE";
                break;
        case ERS_WB_MAY_HAVE_REACHED:
                o->state = "SENDING";
                break;
        case ERS_WB_FORBIDDEN:
        case ERS_WB_RETRY: {
                char now[32];
                time_t t = 0;

                now_utc_iso(now);
                (void) utc_iso_parse(now, &t);
                utc_iso(t + outbox_backoff(cfg, q->attempts + 1, call->retry_after), next);
                o->state = "RETRY";
                o->next_attempt_at = next;
                if (res->outcome == ERS_WB_FORBIDDEN)
                        o->error_code = OUTBOX_FORBIDDEN;
                break;
        }
        }
}

/*
 * Whether the PAS already holds a version of the referral past the decided one: then e-RS has
 * left the decided version (versions only rise) and the request is STALE without a call.  Sent,
 * its 409 would say the same, but a lost answer would be settled by what A005 shows, and an
 * acceptance there is taken as applied at the decided version + 1 (settle()): exactly the
 * version the PAS holds.  1 recorded STALE, 0 not known to be stale (send it), < 0 the PAS
 * could not say (not sent this round).
 */
static int stale_in_pas(struct sync_ctx *ctx, const struct outbox_request *q) {
        struct errbuf e = { { 0 } };
        int64_t held = -1;
        char sha[65], line[200];
        int r = pas_answer_current(ctx->pas, q->ubrn, &held, sha, &e);

        if (r < 0) {
                log_ctx_error(&(struct log_ctx){ .ubrn = q->ubrn, .stage = "writeback" },
                              "writeback: request %" PRId64 " %s: not sent: the PAS's version of it not read: %s",
                              q->id, q->ubrn, e.msg);
                return r;
        }
        if (held <= q->decided_version)
                return 0;
        snprintf(line, sizeof line,
                 "not sent: the PAS holds version %" PRId64 ", the referral moved on since the decision", held);
        struct outbox_outcome o = { .state = "STALE", .error_code = OUTBOX_MOVED_ON, .error_text = line };
        record(ctx, q, &o);
        return 1;
}

/* One request that is NEW or RETRY: asked about, sent, recorded.  Returns 1 when the
 * application is not approved (stop sending this round), 0, or the round's state. */
static int send_one(struct sync_ctx *ctx, const struct outbox_request *q) {
        bool review = strcmp(q->action, "RECORD_REVIEW_OUTCOME") == 0;
        struct ers_wb_result res = { 0 };
        struct outbox_outcome o = { 0 };
        struct errbuf e = { { 0 } };
        struct ers_call call = { .retry_after = -1 };
        char next[32];
        int r;

        r = stale_in_pas(ctx, q);
        if (r != 0)
                return r == -ESTALE || r == -ENOTCONN ? r : 0;
        if (review) {
                r = ers_allowed_actions(ctx->ers, q->ubrn, q->decided_version, &res, &call, &e);
                if (r == -ECANCELED)
                        return r;
                if (r >= 0 && res.outcome == ERS_WB_DONE && !(res.actions & ERS_ACTION_RECORD_REVIEW_OUTCOME)) {
                        o = (struct outbox_outcome){ .state = "REJECTED", .error_code = "NOT_ALLOWED_NOW",
                                                     .error_text = "A029: recording a review outcome is not among "
                                                                   "the actions allowed now",
                                                     .correlation_id = call.correlation_id };
                        record(ctx, q, &o);
                        return 0;
                }
                if (r < 0 || res.outcome != ERS_WB_DONE) {
                        if (r < 0)
                                res.outcome = r == -EINVAL ? ERS_WB_REJECTED : ERS_WB_RETRY;
                        outcome_of(ctx->cfg, q, &res, &call, &e, &o, next);
                        record(ctx, q, &o);
                        return res.outcome == ERS_WB_FORBIDDEN ? 1 : 0;
                }
        }
        r = mark_sending(ctx, q);
        if (r <= 0)
                return r == -ESTALE || r == -ENOTCONN ? r : 0;
        memset(&res, 0, sizeof res);
        memset(&call, 0, sizeof call);
        e.msg[0] = '\0';
        if (review)
                r = ers_record_review_outcome(ctx->ers, q->ubrn, q->decided_version, q->review_outcome, q->comment,
                                              q->new_priority[0] ? q->new_priority : NULL, &res, &call, &e);
        else
                r = ers_accept_referral(ctx->ers, q->ubrn, q->decided_version, &res, &call, &e);
        if (r < 0) /* nothing left: refused as it is (-EINVAL), or stopped before it went */
                res.outcome = r == -EINVAL ? ERS_WB_REJECTED : ERS_WB_RETRY;
        o = (struct outbox_outcome){ 0 };
        outcome_of(ctx->cfg, q, &res, &call, &e, &o, next);
        record(ctx, q, &o);
        if (res.outcome == ERS_WB_MAY_HAVE_REACHED) {
                struct outbox_request again = *q;
                memcpy(again.state, "SENDING", sizeof "SENDING");
                int s = settle(ctx, &again);
                if (s == -ECANCELED)
                        return s;
        }
        return res.outcome == ERS_WB_FORBIDDEN ? 1 : 0;
}

int outbox_send(struct sync_ctx *ctx) {
        struct outbox_request *due = NULL;
        struct errbuf e = { { 0 } };
        size_t n = 0;
        char now[32];
        int r;

        if (!ctx->cfg->writeback_enabled)
                return 0;
        now_utc_iso(now);
        r = pas_outbox_due(ctx->pas, now, OUTBOX_BATCH, &due, &n, &e);
        if (r < 0) {
                log_ctx_error(&(struct log_ctx){ .stage = "writeback" }, "writeback: due requests not read: %s", e.msg);
                return 0;
        }
        log_ctx_debug(&(struct log_ctx){ .stage = "writeback" }, "writeback: %zu request(s) due", n);
        r = 0;
        for (size_t i = 0; i < n && r >= 0; i++) {
                const struct outbox_request *q = &due[i];

                if (ctx->stop && *ctx->stop) {
                        r = -ECANCELED;
                        break;
                }
                if (!ubrn_valid(q->ubrn)) { /* never printed: a PAS may have put an NHS number there */
                        log_ctx_warning(&(struct log_ctx){ .stage = "writeback" },
                                        "writeback: request %" PRId64 ": its ubrn is not a UBRN (12 digits): not sent",
                                        q->id);
                        continue;
                }
                if (!action_enabled(ctx->cfg, q->action))
                        continue;
                if (ctx->dry_run) {
                        printf("writeback: would send request %" PRId64 " %s %s decided on version %" PRId64 "%s\n",
                               q->id, q->action, q->ubrn, q->decided_version,
                               strcmp(q->state, "SENDING") == 0 ? " (may have reached e-RS: settled by A005 first)"
                                                                : "");
                        continue;
                }
                if (strcmp(q->state, "SENDING") == 0) {
                        r = settle(ctx, q);
                        continue;
                }
                r = send_one(ctx, q);
                if (r == 1) {
                        log_ctx_error(&(struct log_ctx){ .ubrn = q->ubrn, .stage = "writeback" },
                                      "writeback: e-RS refused request %" PRId64 " with 403: the application is not "
                                      "approved for %s; nothing more is sent this round", q->id, q->action);
                        r = 0;
                        break;
                }
        }
        if (ctx->dry_run)
                fflush(stdout);
        outbox_requests_free(due, n);
        return round_stops(r) ? r : 0;
}
