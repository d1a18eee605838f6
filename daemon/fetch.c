/* SPDX-License-Identifier: MIT */
/*
 * One referral's fetch (fetch.h): A005 and its related referrals, the plan of
 * its documents against what the PAS holds, and their downloads into the
 * verified spool.  No database.  Not here: the threads that run fetches
 * (pool.c), the write (write.c).
 */
#include "fetch.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include "../adapters/pas.h"
#include "log.h"
#include "occurrence.h"
#include "util.h"

#define WITHHELD "e-RS would not release it: " /* a not-fetched reason: e-RS answered 422 */

void referral_job_init(struct referral_job *j, const char *worklist, const struct worklist_entry *entry,
                       const struct ledger_state *ls) {
        memset(j, 0, sizeof *j);
        j->worklist = worklist;
        j->entry = entry;
        j->ls = *ls;
        j->complete = true;
}

void referral_job_free(struct referral_job *j) {
        referral_free(&j->main);
        for (size_t i = 0; i < j->n_related; i++)
                referral_free(&j->related[i]);
        for (size_t i = 0; i < j->n_docs; i++) {
                spool_file_free(j->docs[i].file);
                free(j->docs[i].cri_id);
                free(j->docs[i].reason);
        }
        free(j->docs);
        documents_known_free(j->known, j->n_known);
        j->docs = NULL;
        j->known = NULL;
        j->n_docs = j->n_related = j->n_known = 0;
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

void document_describe(struct document_rec *rec, const struct attachment *a) {
        if (!a) { /* the letter: ersd's own words, nothing from a DocumentReference */
                rec->title = "Clinical Referral Information";
                rec->content_type = "application/pdf";
                rec->declared_size = -1;
                rec->availability = rec->attached_by_user = rec->attached_by_org = rec->created = NULL;
                rec->document_type = rec->description = rec->attached_on_behalf_of = NULL;
                return;
        }
        rec->title = a->title;
        rec->content_type = a->content_type;
        rec->declared_size = a->declared_size;
        rec->availability = a->availability_code;
        rec->attached_by_user = a->attached_by_user;
        rec->attached_by_org = a->attached_by_org;
        rec->created = a->creation;
        rec->document_type = a->doc_type;
        rec->description = a->description;
        rec->attached_on_behalf_of = a->attached_on_behalf_of;
}

/* What the PAS has of one document of the job, NULL when nothing; borrowed from j->known. */
static const struct document_state *known_state(const struct referral_job *j, const char *source_ubrn,
                                                enum document_kind kind, const char *id, unsigned occurrence) {
        for (size_t i = 0; id && i < j->n_known; i++)
                if (j->known[i].kind == kind && j->known[i].occurrence == occurrence &&
                    strcmp(j->known[i].source_ubrn, source_ubrn) == 0 && strcmp(j->known[i].attachment_id, id) == 0)
                        return &j->known[i].state;
        return NULL;
}

static bool same_text(const char *a, const char *b) {
        return a && b ? strcmp(a, b) == 0 : a == b;
}

/* Whether the PAS has the document recorded not fetched just as this look
 * records it (the version, availability and reason: pas_put_document_ex()
 * would write nothing), or from a later version than this answer (a related
 * referral answered older is kept as the PAS has it: write.c), or stored with
 * the very bytes downloaded again (one described as another of its id is:
 * occurrence.h).  A look that finds only such documents has nothing to write;
 * a document withheld since (PENDING become THREATS_FOUND at the same version)
 * or owed for another reason is written. */
static bool recorded_as_now(const struct doc_job *d) {
        const struct document_state *st = d->stored;
        const char *now = d->rec.not_fetched_reason;
        size_t n = strlen(WITHHELD);

        if (d->rec.fetched)
                return st && st->fetched && d->rec.sha256 && strcasecmp(st->sha256, d->rec.sha256) == 0;
        if (!st || st->fetched)
                return false;
        if (st->source_version > d->rec.source_version)
                return true;
        if (st->source_version != d->rec.source_version || !same_text(st->availability, d->rec.availability))
                return false;
        /* e-RS refused it again: the same, whatever the answer's correlation id */
        if (st->reason && now && strncmp(st->reason, WITHHELD, n) == 0 && strncmp(now, WITHHELD, n) == 0)
                return true;
        return same_text(st->reason, now);
}

/* A005 and parse; checks the answer is the referral asked for.  The
 * referral keeps the answer's bytes as received (ret->answer), for the PAS. */
static int read_referral(const struct fetch_env *env, const char *ubrn, struct referral *ret, char *ret_corr,
                         struct errbuf *e) {
        struct ers_call call = { .http_status = 0 };
        struct referral_answer raw = { .bytes = NULL };
        json_object *root = NULL;
        int r;

        r = ers_read_referral(env->ers, ubrn, &root, &raw, &call, e);
        if (ret_corr)
                memcpy(ret_corr, call.correlation_id, UUID_STR_LEN);
        if (r < 0)
                return r;
        r = fhir_parse_referral(root, ret, e);
        json_object_put(root);
        if (r < 0) {
                referral_answer_free(&raw);
                return err_prefix(e, r, "A005 UBRN %s (correlation id %s)", ubrn, call.correlation_id);
        }
        ret->answer = raw;
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
        if (ret->documents_without_content > 0)
                log_ctx_warning(&(struct log_ctx){ .ubrn = ubrn, .correlation_id = call.correlation_id,
                                                   .stage = "referral" },
                                "UBRN %s: %u contained DocumentReference(s) without content (no "
                                "content[0].attachment): nothing to fetch, not stored; see e-RS (correlation id %s)",
                                ubrn, ret->documents_without_content, call.correlation_id);
        return 0;
}

/* Downloads into the spool, or reuses a verified earlier download. */
typedef int (*fetch_fn)(const struct fetch_env *env, const struct referral *src, const struct attachment *a,
                        struct spool_file *dst, struct ers_call *call, struct errbuf *e);

static int fetch_attachment(const struct fetch_env *env, const struct referral *src, const struct attachment *a,
                            struct spool_file *dst, struct ers_call *call, struct errbuf *e) {
        return ers_fetch_attachment(env->ers, src->ubrn, a->binary_id, dst, call, e);
}

static int fetch_cri(const struct fetch_env *env, const struct referral *src, const struct attachment *a,
                     struct spool_file *dst, struct ers_call *call, struct errbuf *e) {
        (void) a;
        return ers_fetch_cri(env->ers, src->ubrn, dst, call, e);
}

static int spool_fetch(const struct fetch_env *env, struct doc_job *d, const struct referral *src,
                       const struct attachment *a, fetch_fn fetch, struct errbuf *e) {
        struct ers_call call;
        struct spool_file *f = NULL;
        int r;

        r = spool_file_reuse(env->spool, d->key, &f, e);
        if (r < 0)
                return r;
        if (r == 1) {
                log_debug("UBRN %s: %s reused from the spool (verified)", src->ubrn, d->rec.attachment_id);
                d->file = f;
                return 0;
        }
        r = spool_file_create(env->spool, d->key, env->cfg->max_attachment_bytes, &f, e);
        if (r < 0)
                return r;
        log_ctx_debug(&(struct log_ctx){ .ubrn = src->ubrn, .stage = "documents" }, "UBRN %s: fetching %s",
                      src->ubrn, d->rec.attachment_id);
        r = fetch(env, src, a, f, &call, e);
        if (r == 0)
                r = spool_file_finish(f, e);
        if (r < 0) {
                spool_file_free(f);
                return r;
        }
        d->file = f;
        return 0;
}

/* Records why a document is not fetched (one line for staff, at most
 * NOT_FETCHED_REASON_MAX bytes).  0 or -ENOMEM. */
__attribute__((format(printf, 2, 3))) static int not_fetched(struct doc_job *d, const char *fmt, ...) {
        char text[NOT_FETCHED_REASON_MAX];
        va_list ap;

        va_start(ap, fmt);
        int n = vsnprintf(text, sizeof text, fmt, ap);
        va_end(ap);
        if (n >= (int) sizeof text) /* cut on a character: stored as it is here (recorded_as_now) */
                text[sizeof text - 1 - utf8_cut(text, sizeof text - 1)] = '\0';
        free(d->reason);
        d->reason = strdup(text);
        if (!d->reason)
                return -ENOMEM;
        d->rec.not_fetched_reason = d->reason;
        return 0;
}

void fetch_too_large_reason(int64_t max_attachment_bytes, char text[NOT_FETCHED_REASON_MAX]) {
        snprintf(text, NOT_FETCHED_REASON_MAX,
                 "larger than the configured maximum (ers.max_attachment_mib = %" PRId64
                 " MiB) as e-RS served it: owed, fetched once the limit is raised",
                 max_attachment_bytes / (1024 * 1024));
}

/* A document over ers.max_attachment_mib: recorded not fetched and owed. */
static int too_large(const struct fetch_env *env, struct referral_job *j, struct doc_job *d, struct errbuf *e) {
        char text[NOT_FETCHED_REASON_MAX];
        int r;

        fetch_too_large_reason(env->cfg->max_attachment_bytes, text);
        r = not_fetched(d, "%s", text);
        j->complete = false;
        return r < 0 ? err_set(e, r, "out of memory") : 0;
}

/* Whether e-RS served the document larger than the maximum at this version,
 * under this limit, already (the PAS has it recorded so). */
static bool refused_as_too_large(const struct fetch_env *env, const struct doc_job *d) {
        char text[NOT_FETCHED_REASON_MAX];

        fetch_too_large_reason(env->cfg->max_attachment_bytes, text);
        return d->stored && !d->stored->fetched && d->stored->source_version == d->rec.source_version &&
               same_text(d->stored->reason, text);
}

/* Decides what to do with one document: skip it (already stored), fetch it,
 * or record it as not fetched with a reason.  Errors that should make the
 * whole referral wait for the next round are returned. */
static int plan_document(const struct fetch_env *env, struct referral_job *j, const struct referral *src,
                         const struct attachment *a, unsigned occurrence, struct errbuf *e) {
        struct doc_job *d;
        bool is_cri = a == NULL;
        char cri_id[80];
        int r;

        snprintf(cri_id, sizeof cri_id, "CRI-v%" PRId64, src->version);
        /* A referral's documents are written in the transaction that writes its
         * ledger row: without one the PAS has none (and pas_put_document() looks
         * again inside the transaction, so even a document put there by hand
         * would not be stored twice). */
        const struct document_state *st = known_state(j, src->ubrn, is_cri ? DOCUMENT_CRI : DOCUMENT_ATTACHMENT,
                                                      is_cri ? cri_id : a->id, occurrence);
        if (st && st->fetched) {
                /* Stored already, byte-checked when it was.  An attachment e-RS now
                 * describes differently (size, creation time) may be a new file under
                 * the same id: it is fetched again, and the PAS keeps a new revision if
                 * its bytes differ (pas_put_document).  So is one described as another
                 * of its id is (occurrence.h): the bytes tell which is which. */
                if (is_cri || (a->declared_size == st->declared_size &&
                               strcmp(a->creation ? a->creation : "", st->created) == 0 && !a->alike))
                        return 0;
        }

        d = job_add_doc(j);
        if (!d)
                return err_set(e, -ENOMEM, "out of memory");
        d->stored = st;
        d->completing = st && !st->fetched;
        d->rec.ubrn = j->main.ubrn;
        d->rec.source_ubrn = src->ubrn;
        d->rec.source_version = src->version;
        document_describe(&d->rec, a);
        if (is_cri) {
                d->cri_id = strdup(cri_id);
                if (!d->cri_id)
                        return err_set(e, -ENOMEM, "out of memory");
                d->rec.kind = DOCUMENT_CRI;
                d->rec.attachment_id = d->cri_id;
        } else {
                d->rec.kind = DOCUMENT_ATTACHMENT;
                d->rec.attachment_id = a->id;
                d->rec.occurrence = occurrence;
        }

        if (!is_cri && a->availability != AVAILABILITY_AVAILABLE) {
                switch (a->availability) {
                case AVAILABILITY_PENDING:
                        r = not_fetched(d, "PENDING: e-RS is scanning the file for malware; it is fetched on a later run");
                        j->complete = false;
                        j->pending++;
                        break;
                case AVAILABILITY_NEVER:
                        r = not_fetched(d, "%s: e-RS will never release this file; contact the attaching organisation (ODS %s)",
                                        a->availability_code, a->attached_by_org ? a->attached_by_org : "unknown");
                        break;
                default:
                        r = not_fetched(d, "availability %s: not fetched; checked again on a later run",
                                        a->availability_code ? a->availability_code : "not stated");
                        j->complete = false;
                        break;
                }
                return r < 0 ? err_set(e, r, "out of memory") : 0;
        }

        /* Over the maximum: owed (the ledger stays incomplete, so `ersd status` lists
         * it and a round after the limit is raised fetches it).  The declared size
         * is not trusted (a file declared larger may fit): the download decides,
         * the spool refusing it past the maximum (libcurl before the first byte
         * when the store states its length).  Refused once at this version under
         * this limit, it is not downloaded again: each recheck would fetch up to
         * the maximum only to refuse it; a new version or another limit tries
         * once more. */
        if (refused_as_too_large(env, d))
                return too_large(env, j, d, e);
        r = spool_key(d->key, src->ubrn, src->version, is_cri ? "CRI" : "ATTACHMENT",
                      is_cri ? cri_id : a->id ? a->id : "", occurrence);
        if (r < 0)
                return err_set(e, r, "UBRN %s: no spool file name for a document: %s", src->ubrn, strerror(-r));
        r = spool_fetch(env, d, src, a, is_cri ? fetch_cri : fetch_attachment, e);
        if (r == -ENODATA) {
                /* e-RS refused (422): not available now, or never (PATIENT_ERROR on the letter). */
                r = not_fetched(d, WITHHELD "%.200s", e->msg);
                if (!is_cri)
                        j->complete = false;
                e->msg[0] = '\0';
                return r < 0 ? err_set(e, r, "out of memory") : 0;
        }
        if (r == -EFBIG) {
                e->msg[0] = '\0';
                return too_large(env, j, d, e);
        }
        if (r < 0)
                return r;
        d->rec.fetched = true;
        d->rec.size = spool_file_size(d->file);
        d->rec.sha256 = spool_file_sha256(d->file);
        return 0;
}

/* Which stored document each attachment of src is (occurrence.h), against
 * what the PAS held of src with this job's referral when the job began: into
 * each attachment's `occurrence` and `alike`, for the plan and the write. */
static int pair_with_known(const struct referral_job *j, struct referral *src, struct errbuf *e) {
        struct occurrence_stored *stored = calloc(j->n_known + 1, sizeof *stored); /* owned; borrows from j->known */
        struct occurrence_pick *picks = calloc(src->n_attachments + 1, sizeof *picks); /* owned */
        size_t n = 0;
        int r = -ENOMEM;

        if (!stored || !picks)
                goto out;
        for (size_t i = 0; i < j->n_known; i++) {
                const struct document_known *k = &j->known[i];
                if (k->kind != DOCUMENT_ATTACHMENT || strcmp(k->source_ubrn, src->ubrn) != 0)
                        continue;
                stored[n++] = (struct occurrence_stored){ .id = k->attachment_id, .occurrence = k->occurrence,
                                                          .declared_size = k->state.declared_size,
                                                          .created = k->state.created, .fetched = k->state.fetched };
        }
        r = occurrence_pair(src, stored, n, picks);
        for (size_t i = 0; r == 0 && i < src->n_attachments; i++) {
                src->attachments[i].occurrence = picks[i].occurrence;
                src->attachments[i].alike = picks[i].alike;
        }
out:
        free(stored);
        free(picks);
        return r < 0 ? err_set(e, r, "UBRN %s: out of memory", src->ubrn) : 0;
}

static int plan_referral_documents(const struct fetch_env *env, struct referral_job *j, struct referral *src,
                                   struct errbuf *e) {
        const char *again_id = NULL; /* the first id repeated */
        unsigned again = 0;
        int r = pair_with_known(j, src, e); /* a repeated id: each a document of its own */

        if (r < 0)
                return r;
        for (size_t i = 0; i < src->n_attachments; i++) {
                if (attachment_occurrence(src, i) > 0 && again++ == 0)
                        again_id = src->attachments[i].id;
                r = plan_document(env, j, src, &src->attachments[i], src->attachments[i].occurrence, e);
                if (r < 0)
                        return r;
        }
        if (again > 0) {
                char id[64 + 4];
                log_ctx_warning(&(struct log_ctx){ .ubrn = src->ubrn, .stage = "documents" },
                                "UBRN %s: %u attachment(s) repeat the id of an earlier one (first: \"%s\"); each is "
                                "stored as a document of its own",
                                src->ubrn, again, utf8_prefix(again_id, 64, id));
        }
        return plan_document(env, j, src, NULL, 0, e); /* the clinical information letter */
}

/* Of the referral's own documents at the version read (its attachments and
 * its letter), those the PAS has as not fetched: what `ersd sync UBRN` says
 * is not stored when there is nothing to write. */
static unsigned count_not_fetched_stored(const struct referral_job *j) {
        char cri_id[80];
        unsigned n = 0;

        for (size_t i = 0; i < j->main.n_attachments; i++) {
                const struct document_state *st =
                        known_state(j, j->main.ubrn, DOCUMENT_ATTACHMENT, j->main.attachments[i].id,
                                    j->main.attachments[i].occurrence);
                n += st && !st->fetched;
        }
        snprintf(cri_id, sizeof cri_id, "CRI-v%" PRId64, j->main.version);
        const struct document_state *st = known_state(j, j->main.ubrn, DOCUMENT_CRI, cri_id, 0);
        return n + (st && !st->fetched);
}

/* Whether the look found nothing the PAS does not have: no document arrived,
 * and each one not fetched is recorded as it is now. */
static bool nothing_new(const struct referral_job *j) {
        for (size_t i = 0; i < j->n_docs; i++)
                if (!recorded_as_now(&j->docs[i]))
                        return false;
        return true;
}

/* Whether A005, read at the version the PAS has for an entry that gave no
 * version, answered other bytes than the answer the PAS's rows came from
 * (or they name none: a referral written before answers were kept): e-RS
 * changed the referral without a new version, and it is written again. */
static bool answer_changed(const struct referral_job *j) {
        char sha[65];

        if (!j->compare_answer || !j->main.answer.bytes)
                return false;
        if (!j->kept_sha256[0])
                return true;
        return sha256_hex_of(j->main.answer.bytes, j->main.answer.len, sha) < 0 || strcmp(sha, j->kept_sha256) != 0;
}

static int fetch_job(const struct fetch_env *env, struct referral_job *j) {
        const struct ledger_state *ls = &j->ls;
        const char *ubrn = j->entry->ubrn;
        int r;

        r = read_referral(env, ubrn, &j->main, j->correlation_id, &j->e);
        if (r < 0)
                return r;
        if (ls->found && j->main.version < ls->version) {
                log_ctx_warning(&(struct log_ctx){ .ubrn = ubrn, .worklist = j->worklist,
                                                   .correlation_id = j->correlation_id, .stage = "referral" },
                                "UBRN %s: e-RS answered version %" PRId64 ", older than the %" PRId64
                                " already in the PAS; ignored (correlation id %s)",
                                ubrn, j->main.version, ls->version, j->correlation_id);
                j->action = FETCH_NOTHING;
                return 0;
        }
        if (ls->found && ls->complete && j->main.version == ls->version)
                j->answer_changed = answer_changed(j);
        if (ls->found && ls->complete && j->main.version == ls->version && !j->answer_changed) {
                j->action = FETCH_NOTHING; /* the worklist did not say its version, or it was written meanwhile */
                r = pair_with_known(j, &j->main, &j->e);
                j->not_fetched_stored = r < 0 ? 0 : count_not_fetched_stored(j);
                return r;
        }

        for (size_t i = 0; i < j->main.n_related; i++) {
                if (strcmp(j->main.related[i], j->main.ubrn) == 0)
                        continue;
                if (j->n_related == RELATED_MAX) {
                        j->related_unread++; /* named in ers_referral_related only */
                        continue;
                }
                r = read_referral(env, j->main.related[i], &j->related[j->n_related], NULL, &j->e);
                if (r < 0)
                        return err_prefix(&j->e, r, "related referral of UBRN %s", ubrn);
                j->n_related++;
        }

        if (j->related_unread > 0)
                j->complete = false; /* the pathway's information is not all in the PAS: owed */
        r = plan_referral_documents(env, j, &j->main, &j->e);
        for (size_t i = 0; i < j->n_related && r == 0; i++)
                r = plan_referral_documents(env, j, &j->related[i], &j->e);
        if (r < 0)
                return r;
        if (env->stop && *env->stop)
                return -ECANCELED;
        if (ls->found && !ls->complete && !j->complete && j->main.version == ls->version && nothing_new(j)) {
                log_debug("UBRN %s version %" PRId64 ": documents still owed (correlation id %s)", ubrn,
                          j->main.version, j->correlation_id);
                j->action = FETCH_STILL_OWED;
                return 0;
        }
        if (j->related_unread > 0)
                log_ctx_warning(&(struct log_ctx){ .ubrn = ubrn, .worklist = j->worklist,
                                                   .correlation_id = j->correlation_id, .stage = "referral" },
                                "UBRN %s: lists %zu related referrals, more than the %d ersd reads: %zu read and "
                                "stored with it, %zu not read (their UBRNs are in ers_referral_related; see e-RS); "
                                "it stays owed (correlation id %s)",
                                ubrn, j->n_related + j->related_unread, RELATED_MAX, j->n_related, j->related_unread,
                                j->correlation_id);
        j->action = FETCH_WRITE;
        return 0;
}

void fetch_referral(const struct fetch_env *env, struct referral_job *j) {
        j->r = fetch_job(env, j);
}
