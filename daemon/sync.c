/* SPDX-License-Identifier: MIT */
#include "sync.h"

#include <errno.h>
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "audit.h"
#include "fhir.h"
#include "log.h"
#include "schedule.h"

#define RELATED_MAX 16 /* related referrals followed per referral */
#define REMATCH_MAX 200 /* referrals whose patient is looked up again per round */
#define DUE_MAX 1000    /* referrals read again (ers_retry, documents owed) per round; the rest next round */

/* One document of a referral being synced: what is written, and from where. */
struct doc_job {
        struct document_rec rec;
        char attachment_id[80];       /* rec.attachment_id points here for the CRI */
        char reason[256];             /* rec.not_fetched_reason points here */
        char key[SPOOL_KEY_MAX];      /* spool key, when fetched */
        struct spool_file *file;      /* owned: the verified content, NULL when not fetched */
        bool completing;              /* the PAS has this document recorded as not fetched */
        struct document_written written; /* what the PAS write did, for the audit row */
};

/* Everything one referral's sync holds; freed by job_done(). */
struct referral_job {
        const char *worklist;                  /* borrowed */
        const struct worklist_entry *entry;    /* borrowed */
        struct referral main;                  /* owned contents */
        struct referral related[RELATED_MAX];  /* owned contents */
        size_t n_related;
        struct doc_job *docs;                  /* owned array */
        size_t n_docs, cap_docs;
        bool complete;                         /* false when documents are still owed */
        bool in_ledger;                        /* the ledger has a row for the referral */
        unsigned pending;                      /* documents e-RS is still scanning (PENDING) */
        struct patient_match match[RELATED_MAX + 1]; /* [0] the referral, [1 + i] related[i] */
        char correlation_id[UUID_STR_LEN];     /* of the A005 that read the referral */
};

static void job_done(struct referral_job *j) {
        referral_free(&j->main);
        for (size_t i = 0; i < j->n_related; i++)
                referral_free(&j->related[i]);
        for (size_t i = 0; i < j->n_docs; i++)
                spool_file_free(j->docs[i].file);
        free(j->docs);
}

static struct doc_job *job_add_doc(struct referral_job *j) {
        if (j->n_docs == j->cap_docs) {
                size_t cap = j->cap_docs ? j->cap_docs * 2 : 8;
                struct doc_job *d = realloc(j->docs, cap * sizeof *d);
                if (!d)
                        return NULL;
                j->docs = d;
                j->cap_docs = cap;
        }
        memset(&j->docs[j->n_docs], 0, sizeof j->docs[j->n_docs]);
        return &j->docs[j->n_docs++];
}

/* A005 and parse; checks the answer is the referral asked for. */
static int read_referral(struct sync_ctx *ctx, const char *ubrn, struct referral *ret, char *ret_corr,
                         struct errbuf *e) {
        struct ers_call call = { .http_status = 0 };
        json_object *root = NULL;
        int r;

        r = ers_read_referral(ctx->ers, ubrn, &root, &call, e);
        if (ret_corr)
                memcpy(ret_corr, call.correlation_id, UUID_STR_LEN);
        if (r < 0)
                return r;
        r = fhir_parse_referral(root, ret, e);
        json_object_put(root);
        if (r < 0)
                return err_prefix(e, r, "A005 UBRN %s (correlation id %s)", ubrn, call.correlation_id);
        if (ret->text_nul_fields > 0)
                log_ctx_warning(&(struct log_ctx){ .ubrn = ubrn, .correlation_id = call.correlation_id,
                                                   .stage = "referral" },
                                "UBRN %s: %u text field(s) held a NUL character, stored as U+FFFD (correlation id %s)",
                                ubrn, ret->text_nul_fields, call.correlation_id);
        if (strcmp(ret->ubrn, ubrn) != 0) {
                referral_free(ret);
                memset(ret, 0, sizeof *ret);
                return err_set(e, -EBADMSG, "A005 UBRN %s: answered another referral (correlation id %s)", ubrn,
                               call.correlation_id);
        }
        return 0;
}

/* Downloads into the spool, or reuses a verified earlier download. */
typedef int (*fetch_fn)(struct sync_ctx *ctx, const struct referral *src, const struct attachment *a,
                        struct spool_file *dst, struct ers_call *call, struct errbuf *e);

static int fetch_attachment(struct sync_ctx *ctx, const struct referral *src, const struct attachment *a,
                            struct spool_file *dst, struct ers_call *call, struct errbuf *e) {
        return ers_fetch_attachment(ctx->ers, src->ubrn, a->binary_id, a->declared_size, dst, call, e);
}

static int fetch_cri(struct sync_ctx *ctx, const struct referral *src, const struct attachment *a,
                     struct spool_file *dst, struct ers_call *call, struct errbuf *e) {
        (void) a;
        return ers_fetch_cri(ctx->ers, src->ubrn, dst, call, e);
}

static int spool_fetch(struct sync_ctx *ctx, struct doc_job *d, const struct referral *src,
                       const struct attachment *a, fetch_fn fetch, struct errbuf *e) {
        struct ers_call call;
        struct spool_file *f = NULL;
        int r;

        r = spool_file_reuse(ctx->spool, d->key, &f, e);
        if (r < 0)
                return r;
        if (r == 1) {
                log_debug("UBRN %s: %s reused from the spool (verified)", src->ubrn, d->rec.attachment_id);
                d->file = f;
                return 0;
        }
        r = spool_file_create(ctx->spool, d->key, ctx->cfg->max_attachment_bytes, &f, e);
        if (r < 0)
                return r;
        log_ctx_debug(&(struct log_ctx){ .ubrn = src->ubrn, .stage = "documents" }, "UBRN %s: fetching %s",
                      src->ubrn, d->rec.attachment_id);
        r = fetch(ctx, src, a, f, &call, e);
        if (r == 0)
                r = spool_file_finish(f, e);
        if (r < 0) {
                spool_file_free(f);
                return r;
        }
        d->file = f;
        return 0;
}

/* Decides what to do with one document: skip it (already stored), fetch it,
 * or record it as not fetched with a reason.  Errors that should make the
 * whole referral wait for the next round are returned. */
static int plan_document(struct sync_ctx *ctx, struct referral_job *j, const struct referral *src,
                         const struct attachment *a, struct errbuf *e) {
        struct document_state st = { 0 }; /* set by pas_document_get(); zeroed for gcc -flto, which cannot see that */
        struct doc_job *d;
        bool is_cri = a == NULL;
        char cri_id[80];
        int r;

        snprintf(cri_id, sizeof cri_id, "CRI-v%" PRId64, src->version);
        /* A referral's documents are written in the transaction that writes its
         * ledger row: without one the PAS has none to look up (and
         * pas_put_document() looks again inside the transaction, so even a
         * document put there by hand would not be stored twice). */
        r = j->in_ledger ? pas_document_get(ctx->pas, j->main.ubrn, src->ubrn, is_cri ? cri_id : a->id, &st, e) : 0;
        if (r < 0)
                return r;
        if (st.found && st.fetched) {
                /* Stored already, byte-checked when it was.  An attachment e-RS now
                 * describes differently (size, creation time) may be a new file under
                 * the same id: it is fetched again, and the PAS keeps a new revision if
                 * its bytes differ (pas_put_document). */
                if (is_cri || (a->declared_size == st.declared_size &&
                               strcmp(a->creation ? a->creation : "", st.created) == 0))
                        return 0;
        }

        d = job_add_doc(j);
        if (!d)
                return err_set(e, -ENOMEM, "out of memory");
        d->completing = st.found && !st.fetched;
        d->rec.ubrn = j->main.ubrn;
        d->rec.source_ubrn = src->ubrn;
        d->rec.source_version = src->version;
        d->rec.declared_size = -1;
        d->rec.not_fetched_reason = d->reason;
        if (is_cri) {
                memcpy(d->attachment_id, cri_id, sizeof cri_id);
                d->rec.kind = DOCUMENT_CRI;
                d->rec.attachment_id = d->attachment_id;
                d->rec.title = "Clinical Referral Information";
                d->rec.content_type = "application/pdf";
        } else {
                d->rec.kind = DOCUMENT_ATTACHMENT;
                d->rec.attachment_id = a->id;
                d->rec.title = a->title;
                d->rec.content_type = a->content_type;
                d->rec.declared_size = a->declared_size;
                d->rec.availability = a->availability_code;
                d->rec.attached_by_user = a->attached_by_user;
                d->rec.attached_by_org = a->attached_by_org;
                d->rec.created = a->creation;
        }

        if (!is_cri && a->availability != AVAILABILITY_AVAILABLE) {
                switch (a->availability) {
                case AVAILABILITY_PENDING:
                        snprintf(d->reason, sizeof d->reason,
                                 "PENDING: e-RS is scanning the file for malware; it is fetched on a later run");
                        j->complete = false;
                        j->pending++;
                        break;
                case AVAILABILITY_NEVER:
                        snprintf(d->reason, sizeof d->reason,
                                 "%s: e-RS will never release this file; contact the attaching organisation (ODS %s)",
                                 a->availability_code, a->attached_by_org ? a->attached_by_org : "unknown");
                        break;
                default:
                        snprintf(d->reason, sizeof d->reason, "availability %s: not fetched; checked again on a later run",
                                 a->availability_code ? a->availability_code : "not stated");
                        j->complete = false;
                        break;
                }
                return 0;
        }

        r = spool_key(d->key, src->ubrn, is_cri ? cri_id : "att", is_cri ? NULL : a->id);
        if (r < 0)
                return err_set(e, r, "UBRN %s: document id too long for the spool", src->ubrn);
        r = spool_fetch(ctx, d, src, a, is_cri ? fetch_cri : fetch_attachment, e);
        if (r == -ENODATA) {
                /* e-RS refused (422): not available now, or never (PATIENT_ERROR on the letter). */
                snprintf(d->reason, sizeof d->reason, "e-RS would not release it: %.200s", e->msg);
                if (!is_cri)
                        j->complete = false;
                e->msg[0] = '\0';
                return 0;
        }
        if (r == -EFBIG) {
                snprintf(d->reason, sizeof d->reason, "larger than the configured maximum (ers.max_attachment_mib)");
                e->msg[0] = '\0';
                return 0;
        }
        if (r < 0)
                return r;
        d->rec.fetched = true;
        d->rec.size = spool_file_size(d->file);
        d->rec.sha256 = spool_file_sha256(d->file);
        return 0;
}

static int plan_referral_documents(struct sync_ctx *ctx, struct referral_job *j, const struct referral *src,
                                   struct errbuf *e) {
        int r;

        for (size_t i = 0; i < src->n_attachments; i++) {
                r = plan_document(ctx, j, src, &src->attachments[i], e);
                if (r < 0)
                        return r;
        }
        return plan_document(ctx, j, src, NULL, e); /* the clinical information letter */
}

/* Finds the PAS patient of a referral with the configured lookup (NOT_CONFIGURED
 * without one).  Never fails the referral: a lookup that fails is UNMATCHED,
 * logged without the NHS number, and tried again by a later round. */
static void match_patient(struct sync_ctx *ctx, const struct referral *r, const struct worklist_entry *entry,
                          struct patient_match *ret) {
        const char *nhs = r->nhs_number ? r->nhs_number : entry ? entry->nhs_number : NULL;
        struct errbuf e = { { 0 } };

        if (pas_match_patient(ctx->pas, nhs, ret, &e) < 0) {
                log_ctx_warning(&(struct log_ctx){ .ubrn = r->ubrn, .stage = "patient" },
                                "UBRN %s: patient lookup failed, written as UNMATCHED and tried again later: %s",
                                r->ubrn, e.msg);
                *ret = (struct patient_match){ .status = PATIENT_UNMATCHED };
        }
}

/* In the referral's transaction: when its documents still owed are asked for
 * again (ers.pending_recheck from now; none when complete), and its ers_retry
 * row, if any, goes: it is written. */
static int schedule_written(struct sync_ctx *ctx, const char *ubrn, bool complete, struct errbuf *e) {
        char at[32];
        int r;

        /* + 1: times are stored to the second, and the next look must not come early. */
        utc_iso(time(NULL) + ctx->cfg->pending_recheck_s + 1, at);
        r = pas_ledger_recheck_at(ctx->pas, ubrn, complete ? NULL : at, e);
        if (r == 0)
                r = pas_retry_delete(ctx->pas, ubrn, e);
        return r;
}

/* Nothing to write, the PAS being as new as e-RS: the referral's ers_retry
 * row, if any, goes (else it would stay due for ever), in a transaction of its own. */
static int schedule_nothing_to_write(struct sync_ctx *ctx, const char *ubrn, struct errbuf *e) {
        unsigned attempts = 0;
        int r = pas_retry_attempts(ctx->pas, ubrn, &attempts, e);

        if (r <= 0)
                return r; /* no row: nothing to do */
        r = pas_begin(ctx->pas, e);
        if (r == 0)
                r = pas_retry_delete(ctx->pas, ubrn, e);
        if (r == 0)
                r = pas_commit(ctx->pas, e);
        else
                pas_rollback(ctx->pas);
        return r;
}

/* Nothing to write (documents still owed, none arrived): the next look is
 * put off by ers.pending_recheck, in a transaction of its own. */
static int schedule_still_owed(struct sync_ctx *ctx, const char *ubrn, struct errbuf *e) {
        int r = pas_begin(ctx->pas, e);

        if (r == 0)
                r = schedule_written(ctx, ubrn, false, e);
        if (r == 0)
                r = pas_commit(ctx->pas, e);
        else
                pas_rollback(ctx->pas);
        return r;
}

/*
 * A referral that failed: one more attempt in its ers_retry row (reason,
 * SQLSTATE, correlation id), tried again after sched_retry_delay(), parked
 * from park_after failures on.  In a transaction of its own; when even that
 * fails (the PAS is down) the row stays as it was, due, and the referral is
 * tried again anyway.
 */
static void record_failure(struct sync_ctx *ctx, const char *worklist, const char *ubrn, const char *reason,
                           const char *correlation_id, struct sync_stats *stats) {
        const struct config *cfg = ctx->cfg;
        struct errbuf e = { { 0 } };
        struct retry_failure f = { .reason = reason, .correlation_id = correlation_id };
        char now[32], next[32], sqlstate[6] = "";
        time_t t = time(NULL);
        unsigned attempts = 0;
        int r;

        r = pas_retry_attempts(ctx->pas, ubrn, &attempts, &e);
        if (r >= 0) {
                r = 0;
                f.attempts = attempts + 1;
                f.parked = f.attempts >= (unsigned) cfg->park_after;
                utc_iso(t, now);
                utc_iso(t + sched_retry_delay(f.attempts, cfg->retry_delay_s, (unsigned) cfg->park_after,
                                              cfg->parked_retry_s),
                        next);
                f.at = now;
                f.next_at = next;
                if (err_sqlstate(reason, sqlstate))
                        f.sqlstate = sqlstate;
                r = pas_begin(ctx->pas, &e);
        }
        if (r == 0)
                r = pas_retry_fail(ctx->pas, ubrn, worklist, &f, &e);
        if (r == 0)
                r = pas_commit(ctx->pas, &e);
        else
                pas_rollback(ctx->pas);
        struct log_ctx lc = { .ubrn = ubrn, .worklist = worklist, .stage = "pas",
                              .correlation_id = correlation_id && correlation_id[0] ? correlation_id : NULL };
        if (r < 0) {
                log_ctx_warning(&lc, "UBRN %s: failure not recorded in ers_retry (tried again anyway): %s", ubrn, e.msg);
                return;
        }
        if (f.attempts == (unsigned) cfg->park_after) {
                stats->referrals_parked++;
                log_ctx_error(&lc, "UBRN %s parked after %u failed attempts, tried again at %s and then every %ld s "
                              "until it is written; a person should look at: %s", ubrn, f.attempts, next,
                              cfg->parked_retry_s, reason);
        } else {
                log_ctx_info(&lc, "UBRN %s: attempt %u failed; next attempt at %s", ubrn, f.attempts, next);
        }
}


/*
 * The commit's outcome is unknown (the connection failed during COMMIT): the
 * ledger, read back on a new connection, says whether it happened.  Its row
 * carries the correlation id of this write's A005, fresh for every read, so
 * an earlier write of the same version is never taken for this one.  0 when
 * it committed; otherwise the referral failed (nothing is sent again now: the
 * next round reads the ledger before it writes anything).
 */
static int settle_unknown_commit(struct sync_ctx *ctx, const struct referral_job *j, struct errbuf *e) {
        struct ledger_state ls;
        struct errbuf e2 = { { 0 } };
        int r;

        r = reconnect_pas(&ctx->reconnect, ctx->pas, ctx->stop, ctx->between_referrals, ctx->userdata);
        if (r == 0)
                r = pas_ledger_get(ctx->pas, j->main.ubrn, &ls, &e2);
        if (r < 0)
                return err_prefix(e, -EINPROGRESS, "commit outcome unknown and the ledger cannot be read back (%s); "
                                                   "it is read again before anything is re-sent",
                                  e2.msg[0] ? e2.msg : "PAS unreachable");
        if (ls.found && ls.version == j->main.version && strcmp(ls.correlation_id, j->correlation_id) == 0) {
                log_ctx_warning(&(struct log_ctx){ .ubrn = j->main.ubrn, .stage = "pas" },
                                "UBRN %s: commit outcome was unknown (%s); the ledger read back shows it committed",
                                j->main.ubrn, e->msg);
                e->msg[0] = '\0';
                return 0;
        }
        return err_prefix(e, -EINPROGRESS, "the ledger read back shows this write did not commit; retried next round");
}


/* The audit rows of the write in progress (audit.h): what the PAS held
 * before it, read inside its transaction, and what it says. */
struct write_audit {
        struct referral_stored before;                /* the referral */
        struct referral_stored related[RELATED_MAX]; /* its related referrals */
        bool kept[RELATED_MAX];                       /* related[i] is newer in the PAS: not written */
        struct audit_text detail, documents;
};

/* Whether a document belongs to a related referral kept as the PAS has it. */
static bool from_kept(const struct referral_job *j, const struct write_audit *w, const struct doc_job *d) {
        for (size_t i = 0; i < j->n_related; i++)
                if (w->kept[i] && strcmp(j->related[i].ubrn, d->rec.source_ubrn) == 0)
                        return true;
        return false;
}

static void write_audit_free(struct write_audit *w, size_t n_related) {
        referral_stored_free(&w->before);
        for (size_t i = 0; i < n_related; i++)
                referral_stored_free(&w->related[i]);
        audit_text_free(&w->detail);
        audit_text_free(&w->documents);
}

/* Before anything is written: what the PAS holds, what the new version
 * changes in it, and which attachments e-RS stopped listing. */
static int audit_before(struct sync_ctx *ctx, struct referral_job *j, struct write_audit *w, struct errbuf *e) {
        int r = pas_referral_stored(ctx->pas, j->main.ubrn, &w->before, e);

        for (size_t i = 0; i < j->n_related && r == 0; i++)
                r = pas_referral_stored(ctx->pas, j->related[i].ubrn, &w->related[i], e);
        if (r < 0)
                return r;
        audit_describe(&w->detail, &w->before, &j->main, j->entry);
        if (j->match[0].status != PATIENT_NOT_CONFIGURED) {
                const char *now = patient_match_name(j->match[0].status);
                if (!w->before.found)
                        audit_clause(&w->detail, "patient_match %s", now);
                else if (strcmp(w->before.patient_match, now) != 0)
                        audit_clause(&w->detail, "patient_match %s -> %s", w->before.patient_match, now);
        }
        if (w->before.found && w->before.version != j->main.version)
                r = audit_attachments(ctx->pas, j->main.ubrn, &j->main, NULL, &w->detail, e);
        for (size_t i = 0; i < j->n_related && r == 0; i++) {
                char prefix[48];
                if (!w->related[i].found || j->related[i].version <= w->related[i].version)
                        continue; /* new, unchanged, or older and kept as the PAS has it */
                snprintf(prefix, sizeof prefix, "related %s: ", j->related[i].ubrn);
                r = audit_attachments(ctx->pas, j->main.ubrn, &j->related[i], prefix, &w->detail, e);
        }
        return r;
}

/* After the documents: one line per document row written, a clause per
 * revision or completion; then the rows themselves. */
static int audit_after(struct sync_ctx *ctx, struct referral_job *j, struct write_audit *w, struct errbuf *e) {
        int r = 0;

        for (size_t i = 0; i < j->n_docs; i++) {
                const struct doc_job *d = &j->docs[i];
                bool related = strcmp(d->rec.source_ubrn, j->main.ubrn) != 0;
                if (!d->written.written)
                        continue;
                audit_line(&w->documents, "%s %s %s r%" PRId64 "%s%s", d->written.document_id,
                           d->rec.fetched ? d->rec.sha256 : "NOT_FETCHED", d->rec.attachment_id, d->written.revision,
                           related ? " of " : "", related ? d->rec.source_ubrn : "");
                if (d->rec.fetched && d->written.revision > 1 && !d->completing)
                        audit_clause(&w->detail, "%s%s%sattachment revised: %s (revision %" PRId64 ")",
                                     related ? "related " : "", related ? d->rec.source_ubrn : "", related ? ": " : "",
                                     d->rec.attachment_id, d->written.revision);
                else if (d->rec.fetched && d->completing)
                        audit_clause(&w->detail, "%s%s%sdocument fetched: %s", related ? "related " : "",
                                     related ? d->rec.source_ubrn : "", related ? ": " : "", d->rec.attachment_id);
        }
        if (!w->detail.len && w->before.found)
                audit_clause(&w->detail, "documents written");
        if (w->detail.oom || w->documents.oom)
                return err_set(e, -ENOMEM, "audit row: out of memory");

        for (size_t i = 0; i < j->n_related && r == 0; i++) {
                const struct referral *rel = &j->related[i];
                struct audit_text t = { .p = NULL };
                if (w->related[i].found && rel->version <= w->related[i].version)
                        continue; /* rewritten as it was, or kept (older): nothing to record */
                audit_clause(&t, "related referral of UBRN %s", j->main.ubrn);
                audit_describe(&t, &w->related[i], rel, NULL);
                r = t.oom ? err_set(e, -ENOMEM, "audit row: out of memory")
                          : pas_audit_append(ctx->pas, rel->ubrn, rel->version, audit_event(&w->related[i], rel->version),
                                             t.p, NULL, j->correlation_id, e);
                audit_text_free(&t);
        }
        if (r == 0)
                r = pas_audit_append(ctx->pas, j->main.ubrn, j->main.version, audit_event(&w->before, j->main.version),
                                     w->detail.p, w->documents.p, j->correlation_id, e);
        return r;
}

/* The one transaction: related referrals, the referral, documents, ledger, audit rows. */
static int write_referral(struct sync_ctx *ctx, struct referral_job *j, unsigned *ret_docs, uint64_t *ret_bytes,
                          struct errbuf *e) {
        struct write_audit w = { .detail = { .p = NULL } };
        unsigned docs = 0;
        uint64_t bytes = 0;
        int r;

        /* The patient lookups first, outside the transaction (a failing one
         * would abort a PostgreSQL transaction). */
        match_patient(ctx, &j->main, j->entry, &j->match[0]);
        for (size_t i = 0; i < j->n_related; i++)
                match_patient(ctx, &j->related[i], NULL, &j->match[1 + i]);

        r = pas_begin(ctx->pas, e);
        if (r < 0)
                return r;
        r = audit_before(ctx, j, &w, e);
        for (size_t i = 0; i < j->n_related && r == 0; i++) {
                if (w.related[i].found && j->related[i].version < w.related[i].version) {
                        /* A version never goes backwards, a related referral's neither. */
                        log_ctx_warning(&(struct log_ctx){ .ubrn = j->related[i].ubrn, .stage = "referral" },
                                        "UBRN %s (related to %s): e-RS answered version %" PRId64 ", older than the %" PRId64
                                        " already in the PAS; kept as it is",
                                        j->related[i].ubrn, j->main.ubrn, j->related[i].version, w.related[i].version);
                        w.kept[i] = true;
                        continue;
                }
                r = pas_put_referral(ctx->pas, &j->related[i], NULL, NULL, e);
                if (r == 0 && j->match[1 + i].status != PATIENT_NOT_CONFIGURED)
                        r = pas_put_patient_match(ctx->pas, j->related[i].ubrn, &j->match[1 + i], e);
                if (r == 0) /* into the PAS's own tables too, when database.mapping says so */
                        r = pas_put_mapped_referral(ctx->pas, &j->related[i], NULL, NULL, &j->match[1 + i], e);
        }
        if (r == 0)
                r = pas_put_referral(ctx->pas, &j->main, j->entry, j->worklist, e);
        if (r == 0 && j->match[0].status != PATIENT_NOT_CONFIGURED)
                r = pas_put_patient_match(ctx->pas, j->main.ubrn, &j->match[0], e);
        if (r == 0)
                r = pas_put_mapped_referral(ctx->pas, &j->main, j->entry, j->worklist, &j->match[0], e);
        for (size_t i = 0; i < j->n_docs && r == 0; i++) {
                struct doc_job *d = &j->docs[i];
                if (from_kept(j, &w, d))
                        continue; /* read at that older version: not written either */
                r = pas_put_document_ex(ctx->pas, &d->rec, d->file ? spool_file_fd(d->file) : -1, &d->written, e);
                if (r == 0 && d->written.written && d->rec.fetched) {
                        docs++;
                        bytes += (uint64_t) d->rec.size;
                }
        }
        if (r == 0)
                r = pas_put_ledger(ctx->pas, j->main.ubrn, j->main.version, j->complete, j->worklist,
                                   j->correlation_id, e);
        if (r == 0)
                r = audit_after(ctx, j, &w, e);
        write_audit_free(&w, j->n_related);
        if (r == 0)
                r = schedule_written(ctx, j->main.ubrn, j->complete, e);
        if (r == 0)
                r = pas_commit(ctx->pas, e);
        if (r == -EINPROGRESS)
                r = settle_unknown_commit(ctx, j, e);
        if (r < 0) {
                pas_rollback(ctx->pas);
                return r;
        }
        *ret_docs = docs;
        *ret_bytes = bytes;
        return 0;
}

static bool any_fetched(const struct referral_job *j) {
        for (size_t i = 0; i < j->n_docs; i++)
                if (j->docs[i].rec.fetched)
                        return true;
        return false;
}

static unsigned count_not_fetched(const struct referral_job *j) {
        unsigned n = 0;

        for (size_t i = 0; i < j->n_docs; i++)
                if (!j->docs[i].rec.fetched)
                        n++;
        return n;
}

/* Tells the observer (progress line, dry-run report) what became of a referral. */
static void report_outcome(struct sync_ctx *ctx, const struct referral_outcome *o) {
        if (ctx->observer && ctx->observer->referral_done)
                ctx->observer->referral_done(ctx->observer->userdata, o);
}

/* --dry-run: what write_referral() would store (every document fetched and
 * verified, none already stored), then the spool copies go. */
static void dry_run_documents(const struct referral_job *j, unsigned *ret_docs,
                              uint64_t *ret_bytes) {
        unsigned docs = 0;
        uint64_t bytes = 0;

        for (size_t i = 0; i < j->n_docs; i++) {
                if (!j->docs[i].rec.fetched)
                        continue;
                docs++;
                bytes += (uint64_t) j->docs[i].rec.size;
        }
        *ret_docs = docs;
        *ret_bytes = bytes;
}

/* Syncs one worklist entry.  0 when written or nothing to do; <0 when it failed
 * (logged here, once).  *ret_result (may be NULL) says which. */
static int sync_referral(struct sync_ctx *ctx, const char *worklist, const struct worklist_entry *entry,
                         const struct ledger_state *ls, struct sync_stats *stats,
                         enum referral_result *ret_result) {
        struct referral_job j = { .worklist = worklist, .entry = entry, .complete = true, .in_ledger = ls->found };
        struct errbuf e = { { 0 } };
        unsigned docs = 0;
        uint64_t bytes = 0;
        struct log_ctx lc = { .ubrn = entry->ubrn, .worklist = worklist, .stage = "referral" };
        struct referral_outcome o = { .ubrn = entry->ubrn, .worklist = worklist, .version = -1,
                                      .result = REFERRAL_UNCHANGED, .dry_run = ctx->dry_run };
        int r;

        r = read_referral(ctx, entry->ubrn, &j.main, j.correlation_id, &e);
        if (j.correlation_id[0])
                lc.correlation_id = j.correlation_id;
        if (r < 0)
                goto fail;
        o.version = j.main.version;
        if (ls->found && j.main.version < ls->version) {
                log_ctx_warning(&lc, "UBRN %s: e-RS answered version %" PRId64 ", older than the %" PRId64
                            " already in the PAS; ignored (correlation id %s)",
                            entry->ubrn, j.main.version, ls->version, j.correlation_id);
                goto nothing_to_write;
        }
        if (ls->found && ls->complete && j.main.version == ls->version)
                goto nothing_to_write; /* the worklist did not say its version, or it was written meanwhile */

        for (size_t i = 0; i < j.main.n_related && j.n_related < RELATED_MAX; i++) {
                if (strcmp(j.main.related[i], j.main.ubrn) == 0)
                        continue;
                r = read_referral(ctx, j.main.related[i], &j.related[j.n_related], NULL, &e);
                if (r < 0) {
                        err_prefix(&e, r, "related referral of UBRN %s", entry->ubrn);
                        goto fail;
                }
                j.n_related++;
        }

        lc.stage = "documents";
        r = plan_referral_documents(ctx, &j, &j.main, &e);
        for (size_t i = 0; i < j.n_related && r == 0; i++)
                r = plan_referral_documents(ctx, &j, &j.related[i], &e);
        if (r < 0)
                goto fail;
        if (ctx->stop && *ctx->stop) {
                r = -ECANCELED;
                goto out;
        }

        if (ls->found && !ls->complete && !j.complete && j.main.version == ls->version && !any_fetched(&j)) {
                /* Documents still owed and none arrived: nothing to write. */
                log_debug("UBRN %s version %" PRId64 ": documents still owed (correlation id %s)", j.main.ubrn,
                          j.main.version, j.correlation_id);
                lc.stage = "pas";
                r = ctx->dry_run ? 0 : schedule_still_owed(ctx, j.main.ubrn, &e);
                if (r < 0)
                        goto fail;
                stats->referrals_unchanged++;
                o.not_fetched = count_not_fetched(&j);
                o.pending = j.pending;
                goto out;
        }

        lc.stage = "pas";
        if (ctx->dry_run)
                dry_run_documents(&j, &docs, &bytes);
        else {
                r = write_referral(ctx, &j, &docs, &bytes, &e);
                if (r < 0)
                        goto fail;
        }

        for (size_t i = 0; i < j.n_docs; i++)
                if (j.docs[i].file)
                        spool_remove(ctx->spool, j.docs[i].key);
        if (ls->found)
                stats->referrals_updated++;
        else
                stats->referrals_new++;
        stats->documents_stored += docs;
        stats->bytes_stored += bytes;
        o.result = ls->found ? REFERRAL_UPDATED : REFERRAL_NEW;
        o.documents = docs;
        o.bytes = bytes;
        o.not_fetched = count_not_fetched(&j);
        o.pending = j.pending;
        stats->documents_not_fetched += o.not_fetched;
        if (ctx->dry_run)
                log_ctx_debug(&lc, "UBRN %s version %" PRId64 ": would be %s, nothing written (correlation id %s)",
                              j.main.ubrn, j.main.version, ls->found ? "updated" : "new", j.correlation_id);
        else
                log_ctx_info(&lc, "UBRN %s version %" PRId64 ": %s, %u document(s) stored%s%s%s (correlation id %s)",
                             j.main.ubrn, j.main.version, ls->found ? "updated" : "new", docs,
                             j.complete ? "" : ", documents still owed",
                             j.match[0].status != PATIENT_NOT_CONFIGURED ? ", patient " : "",
                             j.match[0].status != PATIENT_NOT_CONFIGURED ? patient_match_name(j.match[0].status)
                                                                         : "",
                             j.correlation_id);
        goto out;
nothing_to_write:
        /* What the PAS has is as new as e-RS's: a queued ers_retry row, if any, is done with. */
        lc.stage = "pas";
        r = ctx->dry_run ? 0 : schedule_nothing_to_write(ctx, entry->ubrn, &e);
        if (r == 0) {
                stats->referrals_unchanged++;
                goto out;
        }
fail:
        if (r == -ECANCELED || r == -ESTALE)
                goto out; /* stopped, or no longer the writer: nothing to record */
        stats->referrals_failed++;
        o.result = REFERRAL_FAILED;
        if (!e.msg[0])
                err_set(&e, r, "%s", strerror(-r));
        log_ctx_error(&lc, "UBRN %s not synced, PAS unchanged: %s", entry->ubrn, e.msg);
        /* A dry run writes nothing, ers_retry included; and a referral synced by hand
         * (ersd sync UBRN) that no worklist listed is not queued for retries: the
         * command says it failed, and e-RS may well not know the UBRN. */
        if (!ctx->dry_run && worklist)
                record_failure(ctx, worklist, entry->ubrn, e.msg, j.correlation_id, stats);
out:
        job_done(&j);
        if (r != -ECANCELED)
                report_outcome(ctx, &o);
        if (ret_result)
                *ret_result = o.result;
        return r;
}

static int cmp_entry_ptr(const void *a, const void *b) {
        const struct worklist_entry *const *x = a, *const *y = b;
        return strcmp((*x)->ubrn, (*y)->ubrn);
}

/* The ledger row of a UBRN, on a connection that is up: a lost one is
 * connected again first (reconnect.h), and a read that loses it is tried once
 * more.  -ENOTCONN when the PAS stays unreachable, -ECANCELED when stopped. */
static int ledger_get(struct sync_ctx *ctx, const char *ubrn, struct ledger_state *ret, struct errbuf *e) {
        int r;

        for (int attempt = 0;; attempt++) {
                r = reconnect_pas(&ctx->reconnect, ctx->pas, ctx->stop, ctx->between_referrals, ctx->userdata);
                if (r < 0)
                        return r;
                r = pas_ledger_get(ctx->pas, ubrn, ret, e);
                if (r >= 0 || !pas_connection_lost(ctx->pas) || attempt > 0)
                        return r;
        }
}

/* Whether the worklist's "budget spent" was said today already: said once a UK day. */
static bool over_budget_told(const char *worklist, const char *day) {
        static struct {
                char worklist[65];
                char day[SCHED_UK_DAY_LEN];
        } told[64];

        for (size_t i = 0; i < sizeof told / sizeof told[0]; i++) {
                if (strcmp(told[i].worklist, worklist) == 0 || !told[i].worklist[0]) {
                        bool said = strcmp(told[i].day, day) == 0;
                        snprintf(told[i].worklist, sizeof told[i].worklist, "%s", worklist);
                        memcpy(told[i].day, day, SCHED_UK_DAY_LEN);
                        return said;
                }
        }
        return false;
}

/* ers_poll for the worklist, in a transaction of its own; a failure is logged, never fatal. */
static void record_poll(struct sync_ctx *ctx, const char *worklist, const char *polled_at, const char *result,
                        const char *correlation_id, const char *next_at, long referrals) {
        struct errbuf e = { { 0 } };
        int r = pas_begin(ctx->pas, &e);

        if (r == 0)
                r = pas_poll_put(ctx->pas, worklist, polled_at, result, correlation_id, next_at, referrals, &e);
        if (r == 0)
                r = pas_commit(ctx->pas, &e);
        else
                pas_rollback(ctx->pas);
        if (r < 0)
                log_ctx_warning(&(struct log_ctx){ .worklist = worklist, .stage = "pas" },
                                "worklist %s: ers_poll not updated: %s", worklist, e.msg);
}

/*
 * Takes one call from the service's budget for the UK day, committed before
 * the call: 1 when taken, 0 when the budget is spent (said once a day, and in
 * ers_poll), <0 when it could not be counted (then no call is made).
 */
static int take_budget(struct sync_ctx *ctx, const struct worklist_conf *wl, const char *next_at,
                       struct sync_stats *stats) {
        struct log_ctx lc = { .worklist = wl->name, .stage = "worklist" };
        struct errbuf e = { { 0 } };
        char day[SCHED_UK_DAY_LEN], result[256];
        long calls = 0;
        int r;

        sched_uk_day(time(NULL), day);
        r = pas_budget_spend(ctx->pas, wl->service_id, day, ctx->cfg->worklist_calls_per_day, &calls, &e);
        if (r < 0) {
                stats->worklists_failed++;
                log_ctx_error(&lc, "worklist %s not read: its call could not be counted against the budget first: %s",
                              wl->name, e.msg);
                return r;
        }
        if (r == 0) {
                stats->worklists_over_budget++;
                snprintf(result, sizeof result,
                         "not read: service %s has had its %ld worklist calls for %s (UK day); next poll %s",
                         wl->service_id, calls, day, next_at);
                if (!over_budget_told(wl->name, day))
                        log_ctx_warning(&lc, "worklist %s %s", wl->name, result);
                if (!ctx->dry_run)
                        record_poll(ctx, wl->name, NULL, result, NULL, next_at, -1);
                return 0;
        }
        log_ctx_debug(&lc, "worklist %s: call %ld of %ld for service %s on %s", wl->name, calls,
                      ctx->cfg->worklist_calls_per_day, wl->service_id, day);
        return 1;
}

/* The ledger's state of a UBRN; a failure is the referral's (counted and logged). */
static int read_ledger(struct sync_ctx *ctx, const char *ubrn, const char *worklist, struct ledger_state *ret,
                       struct sync_stats *stats) {
        struct errbuf e = { { 0 } };
        int r = ledger_get(ctx, ubrn, ret, &e);

        if (r < 0 && r != -ECANCELED) {
                stats->referrals_failed++;
                log_ctx_error(&(struct log_ctx){ .ubrn = ubrn, .worklist = worklist, .stage = "pas" },
                              "UBRN %s not synced: ledger: %s", ubrn, e.msg);
        }
        return r;
}

/* Whether a worklist entry needs writing: not in the ledger, or at an older version. */
static bool entry_needs_write(const struct worklist_entry *entry, const struct ledger_state *ls) {
        return !ls->found || (entry->version >= 0 && entry->version > ls->version);
}

/*
 * After the A008: ers_poll, and an ers_retry row for each entry that needs
 * writing, in one transaction, so that a round cut short (crash, stop, lease
 * lost) leaves them due without another worklist call.  `ls` holds each
 * sorted entry's ledger state (found=false and version -2 when unread).
 */
static void record_worklist(struct sync_ctx *ctx, const struct worklist_conf *wl, const struct worklist_entry **order,
                            const struct ledger_state *ls, size_t n, const char *polled_at, const char *correlation_id,
                            const char *next_at) {
        struct errbuf e = { { 0 } };
        char result[256];
        int r;

        snprintf(result, sizeof result, "%zu referral(s) listed", n);
        r = pas_begin(ctx->pas, &e);
        if (r == 0)
                r = pas_poll_put(ctx->pas, wl->name, polled_at, result, correlation_id, next_at, (long) n, &e);
        for (size_t i = 0; i < n && r == 0; i++)
                if (ls[i].version != -2 && entry_needs_write(order[i], &ls[i]) &&
                    (i == 0 || strcmp(order[i - 1]->ubrn, order[i]->ubrn) != 0))
                        r = pas_retry_seen(ctx->pas, wl->name, order[i], polled_at, &e);
        if (r == 0)
                r = pas_commit(ctx->pas, &e);
        else
                pas_rollback(ctx->pas);
        if (r < 0)
                log_ctx_warning(&(struct log_ctx){ .worklist = wl->name, .stage = "pas" },
                                "worklist %s: its referrals are synced now but not queued in ers_retry (a stop "
                                "before they are written leaves them to the next worklist call): %s",
                                wl->name, e.msg);
}

static int sync_worklist(struct sync_ctx *ctx, const struct worklist_conf *wl, struct sync_stats *stats) {
        struct ers_call call = { .http_status = 0 };
        struct errbuf e = { { 0 } };
        struct worklist w = { 0 };
        const struct worklist_entry **order = NULL;
        struct ledger_state *ls = NULL;
        char polled_at[32], next_at[32], result[300];
        time_t now = time(NULL);
        bool failed = false;
        int r;

        /* A worklist call is budgeted: never spent while the PAS is known to be down. */
        r = reconnect_pas(&ctx->reconnect, ctx->pas, ctx->stop, ctx->between_referrals, ctx->userdata);
        if (r < 0) {
                stats->worklists_failed++;
                if (r == -ENOTCONN)
                        log_ctx_error(&(struct log_ctx){ .worklist = wl->name, .stage = "pas" },
                                      "worklist %s not read: the PAS database is unreachable", wl->name);
                return r;
        }
        utc_iso(now, polled_at);
        utc_iso(sched_next_poll(wl->poll_at, wl->n_poll_at, now), next_at);
        r = take_budget(ctx, wl, next_at, stats);
        if (r <= 0)
                return r < 0 ? r : -EAGAIN;

        r = ers_fetch_worklist(ctx->ers, wl->list_type, wl->service_id, &w, &call, &e);
        struct log_ctx lc = { .correlation_id = call.correlation_id[0] ? call.correlation_id : NULL,
                              .worklist = wl->name, .stage = "worklist" };
        if (r < 0) {
                stats->worklists_failed++;
                log_ctx_error(&lc, "worklist %s not read: %s", wl->name, e.msg);
                snprintf(result, sizeof result, "not read: %.240s", e.msg);
                if (!ctx->dry_run)
                        record_poll(ctx, wl->name, polled_at, result, call.correlation_id, next_at, -1);
                return r;
        }
        stats->worklists_read++;
        log_ctx_info(&lc, "worklist %s: %zu referral(s) (correlation id %s)", wl->name, w.n, call.correlation_id);
        if (ctx->observer && ctx->observer->worklist_read)
                ctx->observer->worklist_read(ctx->observer->userdata, wl->name, w.n);

        /* Sorted, so a UBRN listed twice is synced once. */
        order = calloc(w.n ? w.n : 1, sizeof *order);
        ls = calloc(w.n ? w.n : 1, sizeof *ls);
        if (!order || !ls) {
                free(order);
                free(ls);
                worklist_free(&w);
                log_error("worklist %s: out of memory", wl->name);
                return -ENOMEM;
        }
        for (size_t i = 0; i < w.n; i++)
                order[i] = &w.entries[i];
        qsort(order, w.n, sizeof *order, cmp_entry_ptr);
        for (size_t i = 0; i < w.n; i++)
                if (pas_ledger_get(ctx->pas, order[i]->ubrn, &ls[i], &e) < 0)
                        ls[i] = (struct ledger_state){ .version = -2 }; /* read again below, which says why */
        /* A dry run writes nothing but the budget's count: no ers_poll, ers_retry or
         * ers_worklist_entry row, no referral marked as having left. */
        if (!ctx->dry_run)
                record_worklist(ctx, wl, order, ls, w.n, polled_at, call.correlation_id, next_at);

        /* The latest entries, kept for `ersd reconcile`, and who left or came back. */
        unsigned left = 0, returned = 0;
        r = ctx->dry_run ? 0
                         : audit_worklist_poll(ctx->pas, wl->name, order, w.n, call.correlation_id, &left, &returned,
                                               &e);
        if (r == -ESTALE) {
                free(order);
                free(ls);
                worklist_free(&w);
                return r;
        }
        if (r < 0) {
                failed = true;
                log_ctx_error(&(struct log_ctx){ .worklist = wl->name, .stage = "pas" },
                              "worklist %s: entries not recorded; who left it is checked on its next poll: %s",
                              wl->name, e.msg);
        } else if (left || returned)
                log_ctx_info(&lc, "worklist %s: %u referral(s) left the worklists, %u listed again", wl->name, left,
                             returned);
        r = 0;

        for (size_t i = 0; i < w.n; i++) {
                const struct worklist_entry *entry = order[i];

                if (ctx->between_referrals)
                        ctx->between_referrals(ctx->userdata);
                if (ctx->stop && *ctx->stop) {
                        r = -ECANCELED;
                        break;
                }
                if (i > 0 && strcmp(order[i - 1]->ubrn, entry->ubrn) == 0) {
                        log_warning("worklist %s lists UBRN %s twice; synced once", wl->name, entry->ubrn);
                        continue;
                }
                /* A connection lost with the referral before: back first, or the round stops here. */
                r = reconnect_pas(&ctx->reconnect, ctx->pas, ctx->stop, ctx->between_referrals, ctx->userdata);
                if (r == -ECANCELED)
                        break;
                if (r == -ENOTCONN) {
                        stats->worklists_failed++;
                        log_ctx_error(&(struct log_ctx){ .ubrn = entry->ubrn, .worklist = wl->name, .stage = "pas" },
                                      "worklist %s stopped at UBRN %s: the PAS database is unreachable; the rest "
                                      "waits in ers_retry", wl->name, entry->ubrn);
                        break;
                }
                if (ls[i].version == -2) {
                        r = ledger_get(ctx, entry->ubrn, &ls[i], &e);
                        if (r == -ECANCELED)
                                break; /* a stop came while waiting for the PAS */
                        if (r == -ENOTCONN) {
                                stats->worklists_failed++;
                                log_ctx_error(&(struct log_ctx){ .ubrn = entry->ubrn, .worklist = wl->name,
                                                                 .stage = "pas" },
                                              "worklist %s stopped at UBRN %s: the PAS database is unreachable; "
                                              "the rest waits in ers_retry", wl->name, entry->ubrn);
                                break;
                        }
                        if (r < 0) {
                                stats->referrals_failed++;
                                failed = true;
                                log_ctx_error(&(struct log_ctx){ .ubrn = entry->ubrn, .worklist = wl->name,
                                                                 .stage = "pas" },
                                              "UBRN %s not synced: ledger: %s", entry->ubrn, e.msg);
                                report_outcome(ctx, &(struct referral_outcome){ .ubrn = entry->ubrn,
                                                                                .worklist = wl->name,
                                                                                .version = entry->version,
                                                                                .result = REFERRAL_FAILED,
                                                                                .dry_run = ctx->dry_run });
                                continue;
                        }
                }
                if (ls[i].found && ls[i].complete && entry->version >= 0 && entry->version <= ls[i].version) {
                        stats->referrals_unchanged++;
                        report_outcome(ctx, &(struct referral_outcome){ .ubrn = entry->ubrn, .worklist = wl->name,
                                                                        .version = ls[i].version,
                                                                        .result = REFERRAL_UNCHANGED,
                                                                        .dry_run = ctx->dry_run });
                        continue;
                }
                r = sync_referral(ctx, wl->name, entry, &ls[i], stats, NULL);
                if (r == -ECANCELED || r == -ESTALE) /* stopped, or the writer's lease lost */
                        break;
                if (r < 0)
                        failed = true;
        }
        free(order);
        free(ls);
        worklist_free(&w);
        if (r == -ECANCELED || r == -ESTALE || r == -ENOTCONN)
                return r;
        return failed ? -EAGAIN : 0;
}

/* A worklist entry made from what the PAS kept of one ("" for a field not
 * kept, version -1 when unknown), for a referral read again without a
 * worklist call.  Borrows the strings; ubrn is copied. */
static struct worklist_entry kept_entry(const char *ubrn, int64_t version, char *priority, char *service_id,
                                        char *service_name, char *referral_type) {
        struct worklist_entry entry = {
                .version = version,
                .priority = priority[0] ? priority : NULL,
                .service_id = service_id[0] ? service_id : NULL,
                .service_name = service_name[0] ? service_name : NULL,
                .referral_type = referral_type[0] ? referral_type : NULL,
        };

        snprintf(entry.ubrn, sizeof entry.ubrn, "%s", ubrn);
        return entry;
}

/*
 * Referrals due for another look without a worklist call: ers_retry rows
 * whose next attempt has come (failed before, parked, or queued by a round
 * that stopped) and ledger rows whose documents are owed and whose
 * next_check_at has come.  A005 and documents, as for a worklist entry made
 * from what ers_retry kept of it.
 */
static int sync_due(struct sync_ctx *ctx, struct sync_stats *stats) {
        struct due_referral *due = NULL;
        struct errbuf e = { { 0 } };
        char now[32];
        size_t n = 0;
        bool failed = false;
        int r;

        now_utc_iso(now);
        r = reconnect_pas(&ctx->reconnect, ctx->pas, ctx->stop, ctx->between_referrals, ctx->userdata);
        if (r < 0)
                return r;
        r = pas_due_referrals(ctx->pas, now, DUE_MAX, &due, &n, &e);
        if (r < 0) {
                log_ctx_error(&(struct log_ctx){ .stage = "pas" }, "referrals due again not read: %s", e.msg);
                return r;
        }
        if (n > 0)
                log_info("%zu referral(s) due for another look (failed before, or documents owed)", n);
        for (size_t i = 0; i < n; i++) {
                struct due_referral *d = &due[i];
                struct worklist_entry entry = kept_entry(d->ubrn, d->entry_version, d->priority, d->service_id,
                                                         d->service_name, d->referral_type);
                struct ledger_state ls;

                if (ctx->between_referrals)
                        ctx->between_referrals(ctx->userdata);
                if (ctx->stop && *ctx->stop) {
                        r = -ECANCELED;
                        break;
                }
                r = reconnect_pas(&ctx->reconnect, ctx->pas, ctx->stop, ctx->between_referrals, ctx->userdata);
                if (r == 0)
                        r = read_ledger(ctx, d->ubrn, d->worklist, &ls, stats);
                if (r == -ECANCELED || r == -ENOTCONN)
                        break;
                if (r < 0) {
                        failed = true;
                        continue;
                }
                r = sync_referral(ctx, d->worklist[0] ? d->worklist : NULL, &entry, &ls, stats, NULL);
                if (r == -ECANCELED || r == -ESTALE)
                        break;
                if (r < 0)
                        failed = true;
        }
        free(due);
        if (r == -ECANCELED || r == -ESTALE || r == -ENOTCONN)
                return r;
        return failed ? -EAGAIN : 0;
}

/*
 * Looks again for the PAS patient of referrals already in the PAS whose
 * patient was not found (UNMATCHED, AMBIGUOUS, or written before a lookup was
 * configured), at most REMATCH_MAX per round, the least recently checked
 * first, none checked after the round's first second.  Each outcome is written in its own
 * short transaction.  A failure is logged once and left to the next round: it
 * never fails the round (every referral is in the PAS already).
 */
static void rematch_patients(struct sync_ctx *ctx, const char *round_start, struct sync_stats *stats) {
        struct patient_rematch *list = NULL;
        struct errbuf e = { { 0 } };
        size_t n = 0;
        int r;

        r = pas_patients_to_rematch(ctx->pas, round_start, REMATCH_MAX, &list, &n, &e);
        if (r < 0) {
                log_ctx_warning(&(struct log_ctx){ .stage = "patient" }, "patient matching not retried: %s", e.msg);
                return;
        }
        for (size_t i = 0; i < n; i++) {
                struct patient_match m;

                if (ctx->stop && *ctx->stop)
                        break;
                r = pas_match_patient(ctx->pas, list[i].nhs_number, &m, &e);
                if (r == 0)
                        r = pas_begin(ctx->pas, &e);
                if (r == 0)
                        r = pas_put_patient_match(ctx->pas, list[i].ubrn, &m, &e);
                if (r == 0 && strcmp(list[i].patient_match, patient_match_name(m.status)) != 0) {
                        /* a write like any other: its audit row, never the patient's id */
                        char detail[64];
                        snprintf(detail, sizeof detail, "patient_match %s -> %s", list[i].patient_match,
                                 patient_match_name(m.status));
                        r = pas_audit_append(ctx->pas, list[i].ubrn, list[i].version, "PATIENT_MATCH", detail, NULL,
                                             NULL, &e);
                }
                if (r == 0)
                        r = pas_commit(ctx->pas, &e);
                if (r < 0) {
                        pas_rollback(ctx->pas);
                        log_ctx_warning(&(struct log_ctx){ .ubrn = list[i].ubrn, .stage = "patient" },
                                        "UBRN %s: patient matching not retried: %s", list[i].ubrn, e.msg);
                        break;
                }
                if (m.status == PATIENT_MATCHED) {
                        stats->patients_matched_later++;
                        log_ctx_info(&(struct log_ctx){ .ubrn = list[i].ubrn, .stage = "patient" },
                                     "UBRN %s: patient now MATCHED", list[i].ubrn);
                }
        }
        if (list)
                explicit_bzero(list, n * sizeof *list); /* NHS numbers */
        free(list);
}

int sync_once(struct sync_ctx *ctx, struct sync_stats *stats) {
        bool failed = false;
        char round_start[32];

        memset(stats, 0, sizeof *stats);
        now_utc_iso(round_start);
        for (size_t i = 0; i < ctx->cfg->n_worklists; i++) {
                if (!ctx->poll || !ctx->poll[i])
                        continue;
                int r = sync_worklist(ctx, &ctx->cfg->worklists[i], stats);
                if (r == -ECANCELED || r == -ESTALE || r == -ENOTCONN)
                        return r;
                if (r < 0)
                        failed = true;
        }
        if (!(ctx->stop && *ctx->stop)) {
                int r = sync_due(ctx, stats);
                if (r == -ECANCELED || r == -ESTALE || r == -ENOTCONN)
                        return r;
                if (r < 0)
                        failed = true;
        }
        if (ctx->cfg->patient_lookup && !ctx->dry_run && !(ctx->stop && *ctx->stop))
                rematch_patients(ctx, round_start, stats);
        return failed ? -EAGAIN : 0;
}

int sync_one(struct sync_ctx *ctx, const char *ubrn, const struct referral_origin *origin,
             struct sync_stats *stats, enum referral_result *ret_result) {
        struct referral_origin o = *origin; /* the entry below points into this copy */
        struct worklist_entry entry;
        struct ledger_state ls;
        struct errbuf e = { { 0 } };
        int r;

        memset(stats, 0, sizeof *stats);
        if (!ubrn_valid(ubrn))
                return -EINVAL;
        if (!o.found) /* nothing kept: a UBRN never seen */
                o.priority[0] = o.service_id[0] = o.service_name[0] = o.referral_type[0] = '\0';
        entry = kept_entry(ubrn, o.entry_version, o.priority, o.service_id, o.service_name, o.referral_type);
        r = ledger_get(ctx, ubrn, &ls, &e); /* on a connection that is up (reconnect.h) */
        if (r < 0) {
                stats->referrals_failed++;
                log_ctx_error(&(struct log_ctx){ .ubrn = ubrn, .stage = "pas" }, "UBRN %s not synced: ledger: %s",
                              ubrn, e.msg[0] ? e.msg : strerror(-r));
                return r;
        }
        return sync_referral(ctx, o.found && o.worklist[0] ? o.worklist : NULL, &entry, &ls, stats, ret_result);
}
