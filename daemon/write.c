/* SPDX-License-Identifier: MIT */
/*
 * The writer: one fetched referral (fetch.h) into the PAS in one
 * transaction: its related referrals, the referral, the A005 answers they
 * were read from, its documents from the spool, the ledger row and the audit
 * rows (and the other referrals showing one it read at a new version made
 * owed: mark_listed_elsewhere()); and the referral's fate after its
 * fetch (finish_referral): written, nothing to write (its schedule), or failed
 * (its ers_retry row).  Not here: which referrals a round reads (round.c,
 * worklist_sync.c, due.c) and the fetch itself (fetch.c).  Runs on the thread
 * that owns the PAS connection only.
 */
#include "write.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../adapters/pas.h"
#include "../adapters/pas_answer.h"
#include "../adapters/pas_audit.h"
#include "../adapters/pas_mapping.h"
#include "../adapters/pas_patient.h"
#include "../adapters/pas_schedule.h"
#include "audit.h"
#include "log.h"
#include "occurrence.h"
#include "round.h"
#include "schedule.h"

_Static_assert(PAS_ANSWER_MAX == ERS_JSON_MAX, "the PAS keeps every A005 answer the client takes, whole");

/* Keeps the A005 answer the referral was read from (as received: ers_referral_answer),
 * in the transaction of its rows; nothing for a referral not read from one. */
static int put_answer(struct pas_tx *tx, const struct referral *r, struct errbuf *e) {
        return r->answer.bytes ? pas_answer_put(tx, r->ubrn, r->version, &r->answer, NULL, NULL, e) : 0;
}

void write_match_patient(struct pas *pas, const struct referral *r, const struct worklist_entry *entry,
                         struct patient_match *ret) {
        const char *nhs = r->nhs_number ? r->nhs_number : entry ? entry->nhs_number : NULL;
        struct errbuf e = { { 0 } };

        if (pas_match_patient(pas, nhs, ret, &e) < 0) {
                log_ctx_warning(&(struct log_ctx){ .ubrn = r->ubrn, .stage = "patient" },
                                "UBRN %s: patient lookup failed, written as UNMATCHED and tried again later: %s",
                                r->ubrn, e.msg);
                *ret = (struct patient_match){ .status = PATIENT_UNMATCHED };
        }
}

struct worklist_entry write_kept_entry(const char *ubrn, int64_t version, char *priority, char *service_id,
                                      char *service_name, char *referral_type) {
        struct worklist_entry entry = {
                .kept = true,
                .version = version,
                .priority = priority[0] ? priority : NULL,
                .service_id = service_id[0] ? service_id : NULL,
                .service_name = service_name[0] ? service_name : NULL,
                .referral_type = referral_type[0] ? referral_type : NULL,
        };

        snprintf(entry.ubrn, sizeof entry.ubrn, "%s", ubrn);
        return entry;
}

static bool entry_lacks(const struct referral *r, const struct worklist_entry *entry) {
        return (!r->nhs_number && !(entry && entry->nhs_number)) || (!r->priority && !(entry && entry->priority)) ||
               (!r->specialty && !(entry && entry->specialty));
}

int write_fill_entry(struct pas *pas, const struct referral *r, const struct worklist_entry *entry,
                     struct entry_fill *f, const struct worklist_entry **ret, struct errbuf *e) {
        int rr;

        *ret = entry;
        if ((entry && !entry->kept) || !entry_lacks(r, entry))
                return 0; /* a worklist's entry says what A005 does not, NULL included */
        rr = pas_referral_entry_fields(pas, r->ubrn, &f->stored, e);
        if (rr < 0)
                return rr;
        if (!f->stored.found || (!entry && f->stored.version != r->version))
                return 0; /* nothing stored; or a related referral's new version: its A005 alone */
        f->entry = entry ? *entry : (struct worklist_entry){ .version = -1, .kept = true };
        snprintf(f->entry.ubrn, sizeof f->entry.ubrn, "%s", r->ubrn);
        if (!f->entry.nhs_number)
                f->entry.nhs_number = f->stored.nhs_number;
        if (!f->entry.priority)
                f->entry.priority = f->stored.priority;
        if (!f->entry.specialty)
                f->entry.specialty = f->stored.specialty;
        *ret = &f->entry;
        return 0;
}

int write_schedule(struct sync_ctx *ctx, struct pas_tx *tx, const char *ubrn, bool complete, struct errbuf *e) {
        char at[32];
        int r;

        /* + 1: times are stored to the second, and the next look must not come early. */
        utc_iso(time(NULL) + ctx->cfg->pending_recheck_s + 1, at);
        r = pas_ledger_recheck_at(tx, ubrn, complete ? NULL : at, e);
        if (r == 0)
                r = pas_retry_delete(tx, ubrn, e);
        return r;
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

/* Before anything is written: what the PAS holds, and what the new version
 * changes in it. */
static int audit_before(struct sync_ctx *ctx, struct referral_job *j, const struct worklist_entry *entry,
                        struct write_audit *w, struct errbuf *e) {
        int r = pas_referral_stored(ctx->pas, j->main.ubrn, &w->before, e);

        for (size_t i = 0; i < j->n_related && r == 0; i++)
                r = pas_referral_stored(ctx->pas, j->related[i].ubrn, &w->related[i], e);
        if (r < 0)
                return r;
        audit_describe(&w->detail, &w->before, &j->main, entry);
        if (j->match[0].status != PATIENT_NOT_CONFIGURED) {
                const char *now = patient_match_name(j->match[0].status);
                if (!w->before.found)
                        audit_clause(&w->detail, "patient_match %s", now);
                else if (strcmp(w->before.patient_match, now) != 0)
                        audit_clause(&w->detail, "patient_match %s -> %s", w->before.patient_match, now);
        }
        return r;
}

/* Which document each attachment src lists is, for the marks of `ubrn`
 * (occurrence.h): with `own` (ubrn is this job's referral, whose documents
 * it writes) the occurrences fetch.c gave src's attachments, else src paired
 * here with what is stored with ubrn.  Into occ (src->n_attachments). */
static int occurrences_for(const struct referral *src, bool own, const struct stored_attachment *stored, size_t n,
                           unsigned *occ, struct errbuf *e) {
        struct occurrence_stored *s = NULL;   /* owned; borrows from stored */
        struct occurrence_pick *picks = NULL; /* owned */
        int r = 0;

        for (size_t i = 0; own && i < src->n_attachments; i++)
                occ[i] = src->attachments[i].occurrence;
        if (own)
                return 0;
        s = calloc(n + 1, sizeof *s);
        picks = calloc(src->n_attachments + 1, sizeof *picks);
        if (!s || !picks)
                r = -ENOMEM;
        for (size_t k = 0; r == 0 && k < n; k++)
                s[k] = (struct occurrence_stored){ .id = stored[k].id, .occurrence = stored[k].occurrence,
                                                   .declared_size = stored[k].declared_size,
                                                   .created = stored[k].created, .fetched = stored[k].fetched };
        if (r == 0)
                r = occurrence_pair(src, s, n, picks);
        for (size_t i = 0; r == 0 && i < src->n_attachments; i++)
                occ[i] = picks[i].occurrence;
        free(s);
        free(picks);
        return r < 0 ? err_set(e, r, "UBRN %s: out of memory", src->ubrn) : 0;
}

/* The attachments stored for `src` (shown with referral `ubrn`) against those
 * it lists now: each one e-RS stopped (or started again) listing marked so,
 * said in the audit row's detail with `prefix` (*ret_marked set, when not
 * NULL), and with `added` the ones added said too.  Nothing for a referral
 * with nothing stored.  `own`: as occurrences_for(). */
static int mark_listed(struct sync_ctx *ctx, struct pas_tx *tx, const char *ubrn, const struct referral *src,
                       bool own, const char *prefix, bool added, struct audit_text *detail, bool *ret_marked,
                       struct errbuf *e) {
        struct stored_attachment *stored = NULL;
        unsigned *occ = NULL; /* owned: the occurrence of each of src's attachments */
        size_t n = 0;
        int r;

        r = pas_attachments_stored(ctx->pas, ubrn, src->ubrn, &stored, &n, e);
        if (r < 0 || n == 0) {
                stored_attachments_free(stored, n);
                return r;
        }
        occ = calloc(src->n_attachments + 1, sizeof *occ);
        r = occ ? occurrences_for(src, own, stored, n, occ, e) : err_set(e, -ENOMEM, "out of memory");
        if (r >= 0 && added)
                audit_attachments_added(detail, src, occ, stored, n, prefix);
        for (size_t k = 0; k < n && r >= 0; k++) {
                bool now_listed = occurrence_listed(src, occ, stored[k].id, stored[k].occurrence);
                if (now_listed == !stored[k].removed)
                        continue;
                r = pas_attachment_set_removed(tx, ubrn, src->ubrn, stored[k].id, stored[k].occurrence,
                                               !now_listed, e);
                if (r >= 0)
                        audit_attachment_listing(detail, prefix, stored[k].id, now_listed);
                if (r >= 0 && ret_marked)
                        *ret_marked = true;
        }
        free(occ);
        stored_attachments_free(stored, n);
        return r;
}

/*
 * `src`, read with this job at a version newer than the PAS held: every other
 * referral that lists it as a related one (ers_referral_related) shows its
 * documents too, as they were when that referral was last read.  What `src`
 * no longer lists (or lists again) is marked so there at once, with an audit
 * row on that referral (RELATED_DOCS) saying which read found it: the PAS
 * never shows as current an attachment ersd knows e-RS no longer lists,
 * whichever referral it was read with.  And that referral is made owed
 * (pas_ledger_owe(): its ledger row incomplete, due now), so that the next
 * look at what is due (due.c, this round's when a worklist's referral is
 * written) reads it again, one A005 and no worklist call, and writes under
 * it what `src`'s version brings (a revised attachment, the letter of that
 * version) as a read of its own does: at the version e-RS gives it, with the
 * related referrals it lists then.  Nothing else of it is rewritten here.
 * It settles: that read finds `src` at the version the PAS has, and makes
 * no referral owed unless e-RS gave something a new version meanwhile.
 */
static int mark_listed_elsewhere(struct sync_ctx *ctx, struct pas_tx *tx, const struct referral_job *j,
                                 const struct referral *src, struct errbuf *e) {
        char (*holders)[UBRN_LEN + 1] = NULL; /* owned */
        char prefix[48], now[32];
        size_t n = 0;
        int r = pas_referrals_listing(ctx->pas, src->ubrn, &holders, &n, e);

        snprintf(prefix, sizeof prefix, "related %s: ", src->ubrn);
        now_utc_iso(now); /* as sync_due() reads it: due at its next look */
        for (size_t i = 0; i < n && r == 0; i++) {
                struct audit_text t = { .p = NULL };
                struct ledger_state ls = { .found = false };
                bool marked = false;

                if (strcmp(holders[i], j->main.ubrn) == 0)
                        continue; /* the referral written: its own audit row says it */
                if (src == &j->main)
                        audit_clause(&t, "related referral %s read at version %" PRId64, src->ubrn, src->version);
                else
                        audit_clause(&t, "related referral %s read at version %" PRId64 " with UBRN %s", src->ubrn,
                                     src->version, j->main.ubrn);
                r = mark_listed(ctx, tx, holders[i], src, false, prefix, false, &t, &marked, e);
                if (r == 0 && marked) {
                        r = pas_ledger_get(ctx->pas, holders[i], &ls, e);
                        if (r >= 0)
                                r = t.oom ? err_set(e, -ENOMEM, "audit row: out of memory")
                                          : pas_audit_append(tx, holders[i], ls.found ? ls.version : -1, "RELATED_DOCS",
                                                             t.p, NULL, j->correlation_id, e);
                }
                audit_text_free(&t);
                if (r == 0)
                        r = pas_ledger_owe(tx, holders[i], now, e);
                if (r > 0)
                        log_ctx_debug(&(struct log_ctx){ .ubrn = holders[i], .stage = "pas" },
                                      "UBRN %s shows related referral %s, read at version %" PRId64
                                      ": owed, read again at the next look at what is due",
                                      holders[i], src->ubrn, src->version);
                r = r > 0 ? 0 : r; /* 0: no ledger row, no documents of its own to show */
        }
        free(holders);
        return r;
}

/* Whether r lists `ubrn` as a related referral (read or not: past RELATED_MAX too). */
static bool lists_related(const struct referral *r, const char *ubrn) {
        for (size_t i = 0; i < r->n_related; i++)
                if (strcmp(r->related[i], ubrn) == 0)
                        return true;
        return false;
}

/*
 * The related referrals whose documents the PAS shows with this referral
 * (j->known) that the version read no longer lists: e-RS no longer shows
 * their attachments with it, so each is marked removed here, as the
 * referral's own are, with a clause in its audit row ("related X:
 * attachment removed: …").  Their letters stay as they are, as the
 * referral's own earlier letters do.  A mark already set is left.
 */
static int mark_related_dropped(struct sync_ctx *ctx, struct pas_tx *tx, const struct referral_job *j,
                                struct write_audit *w, struct errbuf *e) {
        int r = 0;

        for (size_t i = 0; i < j->n_known && r == 0; i++) {
                const char *src = j->known[i].source_ubrn;
                bool seen = false;
                for (size_t k = 0; k < i && !seen; k++)
                        seen = j->known[k].kind == DOCUMENT_ATTACHMENT && strcmp(j->known[k].source_ubrn, src) == 0;
                if (seen || j->known[i].kind != DOCUMENT_ATTACHMENT || strcmp(src, j->main.ubrn) == 0 ||
                    lists_related(&j->main, src))
                        continue;
                struct referral gone = { .n_attachments = 0 }; /* lists nothing with this referral now */
                char prefix[48];
                memcpy(gone.ubrn, src, sizeof gone.ubrn);
                snprintf(prefix, sizeof prefix, "related %s: ", src);
                r = mark_listed(ctx, tx, j->main.ubrn, &gone, true, prefix, false, &w->detail, NULL, e);
        }
        return r;
}

/*
 * Before anything else is written: attachments e-RS no longer lists are
 * marked removed (kept, removed_at set), those listed again unmarked, and the
 * audit row says so, as it says those added; so are those of a related
 * referral the referral no longer lists (mark_related_dropped()).  For the referral at a new
 * version; for each related referral not kept older, at a new version or at
 * the PAS's (read since with another referral: this referral's rows catch
 * up).  And for each of them read at a new version (the referral itself may
 * be another's related referral), with every other referral that shows its
 * documents (mark_listed_elsewhere()).
 */
static int mark_attachments_listed(struct sync_ctx *ctx, struct pas_tx *tx, const struct referral_job *j,
                                   struct write_audit *w, struct errbuf *e) {
        int r = 0;

        if (w->before.found && w->before.version != j->main.version) {
                r = mark_listed(ctx, tx, j->main.ubrn, &j->main, true, NULL, true, &w->detail, NULL, e);
                if (r == 0)
                        r = mark_listed_elsewhere(ctx, tx, j, &j->main, e);
        }
        if (r == 0 && w->before.found)
                r = mark_related_dropped(ctx, tx, j, w, e);
        for (size_t i = 0; i < j->n_related && r == 0; i++) {
                char prefix[48];
                if (!w->related[i].found || j->related[i].version < w->related[i].version)
                        continue; /* new, or older and kept as the PAS has it */
                snprintf(prefix, sizeof prefix, "related %s: ", j->related[i].ubrn);
                r = mark_listed(ctx, tx, j->main.ubrn, &j->related[i], true, prefix, true, &w->detail, NULL, e);
                if (r == 0 && j->related[i].version > w->related[i].version)
                        r = mark_listed_elsewhere(ctx, tx, j, &j->related[i], e);
        }
        return r;
}

/* After the documents: one line per document row written, a clause per
 * revision or completion; then the rows themselves. */
static int audit_after(struct pas_tx *tx, struct referral_job *j, struct write_audit *w, struct errbuf *e) {
        int r = 0;

        for (size_t i = 0; i < j->n_docs; i++) {
                const struct doc_job *d = &j->docs[i];
                bool related = strcmp(d->rec.source_ubrn, j->main.ubrn) != 0;
                if (!d->written.written)
                        continue;
                audit_document(&w->documents, d->written.document_id, d->rec.fetched ? d->rec.sha256 : NULL,
                               d->rec.kind, d->rec.attachment_id, d->written.revision, d->rec.occurrence,
                               related ? d->rec.source_ubrn : NULL);
                if (d->rec.fetched && d->written.revision > 1 && !d->completing)
                        audit_clause(&w->detail, "%s%s%sattachment revised: %s (revision %" PRId64 ")",
                                     related ? "related " : "", related ? d->rec.source_ubrn : "", related ? ": " : "",
                                     audit_q(&w->detail, d->rec.attachment_id), d->written.revision);
                else if (d->rec.fetched && d->completing)
                        audit_clause(&w->detail, "%s%s%sdocument fetched: %s", related ? "related " : "",
                                     related ? d->rec.source_ubrn : "", related ? ": " : "",
                                     audit_q(&w->detail, d->rec.attachment_id));
        }
        if (!w->detail.len && w->before.found)
                audit_clause(&w->detail, j->answer_changed ? "answer changed at the same version"
                                                           : "documents written");
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
                          : pas_audit_append(tx, rel->ubrn, rel->version, audit_event(&w->related[i], rel->version),
                                             t.p, NULL, j->correlation_id, e);
                audit_text_free(&t);
        }
        if (r == 0)
                r = pas_audit_append(tx, j->main.ubrn, j->main.version,
                                     j->answer_changed && w->before.found ? "UPDATED"
                                                                          : audit_event(&w->before, j->main.version),
                                     w->detail.p, w->documents.p, j->correlation_id, e);
        return r;
}

/*
 * An entry without a version whose A005 answered other bytes at the version
 * the PAS has (fetch.c, answer_changed()), where nothing the PAS stores
 * changes: the comparison names no column, requirement, related link or
 * patient match, no document is to be written, no related referral is newer
 * and the referral stays complete.  Only the answer is kept (issue 15:
 * every answer as received), with no audit row: the trail records what the
 * PAS's rows say, and they say the same (docs/schema.md, ers_referral_answer).
 */
static bool answer_only(const struct referral_job *j, const struct write_audit *w) {
        if (!j->answer_changed || !w->before.found || w->before.version != j->main.version || w->detail.len ||
            j->n_docs || !j->complete)
                return false;
        for (size_t i = 0; i < j->n_related; i++)
                if (!w->related[i].found || j->related[i].version > w->related[i].version)
                        return false;
        return true;
}

int write_referral(struct sync_ctx *ctx, struct referral_job *j, unsigned *ret_docs, uint64_t *ret_bytes,
                          struct errbuf *e) {
        struct write_audit w = { .detail = { .p = NULL } };
        struct entry_fill fill[1 + RELATED_MAX] = { { .entry = { .version = 0 } } }; /* [0] the referral, [1 + i] related[i] */
        const struct worklist_entry *entry[1 + RELATED_MAX] = { NULL };
        struct pas_tx *tx = NULL;
        unsigned docs = 0;
        uint64_t bytes = 0;
        int r;

        /* What the worklist said and this read does not; then the patient
         * lookups, outside the transaction (a failing one would abort a
         * PostgreSQL transaction). */
        r = write_fill_entry(ctx->pas, &j->main, j->entry, &fill[0], &entry[0], e);
        for (size_t i = 0; i < j->n_related && r == 0; i++)
                r = write_fill_entry(ctx->pas, &j->related[i], NULL, &fill[1 + i], &entry[1 + i], e);
        if (r < 0)
                goto out;
        write_match_patient(ctx->pas, &j->main, entry[0], &j->match[0]);
        for (size_t i = 0; i < j->n_related; i++)
                write_match_patient(ctx->pas, &j->related[i], entry[1 + i], &j->match[1 + i]);

        r = pas_begin(ctx->pas, &tx, e);
        if (r < 0)
                goto out;
        r = audit_before(ctx, j, entry[0], &w, e);
        if (r == 0 && answer_only(j, &w)) {
                j->answer_only = true;
                r = put_answer(tx, &j->main, e);
                goto rows_done;
        }
        if (r == 0)
                r = mark_attachments_listed(ctx, tx, j, &w, e);
        if (r == 0 && !w.before.found && !j->ls.found)
                pas_referral_fresh(tx, j->main.ubrn); /* read in this transaction: nothing of it to replace */
        for (size_t i = 0; i < j->n_related && r == 0; i++) {
                if (w.related[i].found && j->related[i].version < w.related[i].version) {
                        /* A version never goes backwards, a related referral's neither. */
                        log_ctx_warning(&(struct log_ctx){ .ubrn = j->related[i].ubrn, .stage = "referral" },
                                        "UBRN %s (related to %s): e-RS answered version %" PRId64 ", older than the %" PRId64
                                        " already in the PAS; kept as it is",
                                        j->related[i].ubrn, j->main.ubrn, j->related[i].version, w.related[i].version);
                        w.kept[i] = true;
                        r = put_answer(tx, &j->related[i], e); /* what it said is kept all the same */
                        continue;
                }
                r = pas_put_referral(tx, &j->related[i], entry[1 + i], NULL, e);
                if (r == 0)
                        r = put_answer(tx, &j->related[i], e);
                if (r == 0 && j->match[1 + i].status != PATIENT_NOT_CONFIGURED)
                        r = pas_put_patient_match(tx, j->related[i].ubrn, &j->match[1 + i], e);
                if (r == 0) /* into the PAS's own tables too, when database.mapping says so */
                        r = pas_put_mapped_referral(tx, &j->related[i], entry[1 + i], NULL, &j->match[1 + i], e);
        }
        if (r == 0)
                r = pas_put_referral(tx, &j->main, entry[0], j->worklist, e);
        if (r == 0)
                r = put_answer(tx, &j->main, e);
        if (r == 0 && j->match[0].status != PATIENT_NOT_CONFIGURED)
                r = pas_put_patient_match(tx, j->main.ubrn, &j->match[0], e);
        if (r == 0)
                r = pas_put_mapped_referral(tx, &j->main, entry[0], j->worklist, &j->match[0], e);
        for (size_t i = 0; i < j->n_docs && r == 0; i++) {
                struct doc_job *d = &j->docs[i];
                if (from_kept(j, &w, d))
                        continue; /* read at that older version: not written either */
                /* Opened here, one at a time: a referral of any number of documents
                 * holds one descriptor (spool.h). */
                int fd = -1;
                if (d->file && (fd = spool_file_open(d->file, e)) < 0) {
                        r = fd;
                        break;
                }
                r = pas_put_document_ex(tx, &d->rec, fd, &d->written, e);
                if (fd >= 0)
                        close(fd);
                if (r == 0 && d->written.written && d->rec.fetched) {
                        docs++;
                        bytes += (uint64_t) d->rec.size;
                }
        }
        if (r == 0)
                r = pas_put_ledger(tx, j->main.ubrn, j->main.version, j->complete, j->worklist,
                                   j->correlation_id, e);
        if (r == 0)
                r = audit_after(tx, j, &w, e);
rows_done:
        write_audit_free(&w, j->n_related);
        if (r == 0)
                r = write_schedule(ctx, tx, j->main.ubrn, j->complete, e);
        if (r == 0)
                r = pas_commit(tx, e); /* over, whatever it returns */
        else
                pas_rollback(tx);
        if (r == -EINPROGRESS)
                r = settle_unknown_commit(ctx, j, e);
        if (r < 0)
                goto out;
        *ret_docs = docs;
        *ret_bytes = bytes;
out:
        for (size_t i = 0; i < 1 + j->n_related; i++)
                referral_entry_fields_free(&fill[i].stored);
        return r;
}

/* Nothing to write, the PAS being as new as e-RS: the referral's ers_retry
 * row, if any, goes (else it would stay due for ever), in a transaction of its own. */
static int schedule_nothing_to_write(struct sync_ctx *ctx, const char *ubrn, struct errbuf *e) {
        struct pas_tx *tx = NULL;
        unsigned attempts = 0;
        int r = pas_retry_attempts(ctx->pas, ubrn, &attempts, e);

        if (r <= 0)
                return r; /* no row: nothing to do */
        r = pas_begin(ctx->pas, &tx, e);
        if (r == 0)
                r = pas_retry_delete(tx, ubrn, e);
        if (r == 0)
                r = pas_commit(tx, e);
        else
                pas_rollback(tx);
        return r;
}

/* Nothing to write (documents still owed, none arrived): the next look is
 * put off by ers.pending_recheck, in a transaction of its own. */
static int schedule_still_owed(struct sync_ctx *ctx, const char *ubrn, struct errbuf *e) {
        struct pas_tx *tx = NULL;
        int r = pas_begin(ctx->pas, &tx, e);

        if (r == 0)
                r = write_schedule(ctx, tx, ubrn, false, e);
        if (r == 0)
                r = pas_commit(tx, e);
        else
                pas_rollback(tx);
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
        struct pas_tx *tx = NULL;
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
                r = pas_begin(ctx->pas, &tx, &e);
        }
        if (r == 0)
                r = pas_retry_fail(tx, ubrn, worklist, &f, &e);
        if (r == 0)
                r = pas_commit(tx, &e);
        else
                pas_rollback(tx);
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

static unsigned count_not_fetched(const struct referral_job *j) {
        unsigned n = 0;

        for (size_t i = 0; i < j->n_docs; i++)
                if (!j->docs[i].rec.fetched)
                        n++;
        return n;
}

void report_outcome(struct sync_ctx *ctx, const struct referral_outcome *o) {
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

int finish_referral(struct sync_ctx *ctx, struct referral_job *j, struct sync_stats *stats,
                    enum referral_result *ret_result) {
        const struct worklist_entry *entry = j->entry;
        const struct ledger_state *ls = &j->ls;
        struct errbuf e = j->e;
        unsigned docs = 0;
        uint64_t bytes = 0;
        struct log_ctx lc = { .ubrn = entry->ubrn, .worklist = j->worklist, .stage = "referral",
                              .correlation_id = j->correlation_id[0] ? j->correlation_id : NULL };
        struct referral_outcome o = { .ubrn = entry->ubrn, .worklist = j->worklist, .version = -1,
                                      .result = REFERRAL_UNCHANGED, .dry_run = ctx->dry_run };
        int r = j->r;

        if (r < 0)
                goto fail;
        o.version = j->main.version;
        if (entry->version > j->main.version && said_first(&ctx->lagging, entry->ubrn, entry->version))
                /* reconcile says STALE until A005 catches up: the log says why, once per version listed */
                log_ctx_notice(&lc,
                               "UBRN %s: the worklist lists version %" PRId64 ", A005 answers version %" PRId64
                               " (e-RS's replicas lag); the PAS takes what A005 answered, and the referral is read "
                               "again whenever a worklist lists it until A005 catches up (correlation id %s)",
                               entry->ubrn, entry->version, j->main.version, j->correlation_id);
        lc.stage = "pas";
        if (j->action == FETCH_NOTHING) {
                /* What the PAS has is as new as e-RS's: a queued ers_retry row, if any, is done with. */
                r = ctx->dry_run ? 0 : schedule_nothing_to_write(ctx, entry->ubrn, &e);
                if (r < 0)
                        goto fail;
                stats->referrals_unchanged++;
                o.not_fetched = j->not_fetched_stored;
                stats->documents_not_fetched += o.not_fetched;
                goto out;
        }
        if (j->action == FETCH_STILL_OWED) {
                /* Documents still owed and none arrived: nothing to write. */
                r = ctx->dry_run ? 0 : schedule_still_owed(ctx, j->main.ubrn, &e);
                if (r < 0)
                        goto fail;
                stats->referrals_unchanged++;
                o.not_fetched = count_not_fetched(j);
                o.pending = j->pending;
                stats->documents_not_fetched += o.not_fetched;
                goto out;
        }
        if (ctx->stop && *ctx->stop) {
                r = -ECANCELED;
                o.result = REFERRAL_FAILED; /* not written */
                goto out;
        }
        if (ctx->dry_run)
                dry_run_documents(j, &docs, &bytes);
        else {
                r = write_referral(ctx, j, &docs, &bytes, &e);
                if (r < 0)
                        goto fail;
        }

        for (size_t i = 0; i < j->n_docs; i++)
                spool_file_remove(j->docs[i].file);
        if (j->answer_only) {
                /* other bytes, the same rows: the answer kept, nothing else written (answer_only()) */
                stats->referrals_unchanged++;
                log_ctx_debug(&lc, "UBRN %s version %" PRId64 ": e-RS answered other bytes, nothing the PAS "
                                   "stores changed: the answer kept, no row written (correlation id %s)",
                              j->main.ubrn, j->main.version, j->correlation_id);
                goto out;
        }
        if (ls->found)
                stats->referrals_updated++;
        else
                stats->referrals_new++;
        stats->documents_stored += docs;
        stats->bytes_stored += bytes;
        o.result = ls->found ? REFERRAL_UPDATED : REFERRAL_NEW;
        o.documents = docs;
        o.bytes = bytes;
        o.not_fetched = count_not_fetched(j);
        o.pending = j->pending;
        stats->documents_not_fetched += o.not_fetched;
        if (ctx->dry_run)
                log_ctx_debug(&lc, "UBRN %s version %" PRId64 ": would be %s, nothing written (correlation id %s)",
                              j->main.ubrn, j->main.version, ls->found ? "updated" : "new", j->correlation_id);
        else
                log_ctx_info(&lc, "UBRN %s version %" PRId64 ": %s, %u document(s) stored%s%s%s (correlation id %s)",
                             j->main.ubrn, j->main.version, ls->found ? "updated" : "new", docs,
                             j->complete ? "" : ", documents still owed",
                             j->match[0].status != PATIENT_NOT_CONFIGURED ? ", patient " : "",
                             j->match[0].status != PATIENT_NOT_CONFIGURED ? patient_match_name(j->match[0].status)
                                                                          : "",
                             j->correlation_id);
        goto out;
fail:
        if (referral_stops_round(r)) {
                o.result = REFERRAL_FAILED; /* not written: for *ret_result; the observer is not told */
                goto out; /* stopped, or no longer the writer: nothing to record */
        }
        stats->referrals_failed++;
        o.result = REFERRAL_FAILED;
        if (!e.msg[0])
                err_set(&e, r, "%s", strerror(-r));
        log_ctx_error(&lc, "UBRN %s not synced, PAS unchanged: %s", entry->ubrn, e.msg);
        /* A dry run writes nothing, ers_retry included; and a referral synced by hand
         * (ersd sync UBRN) that no worklist listed is not queued for retries: the
         * command says it failed, and e-RS may well not know the UBRN. */
        if (!ctx->dry_run && j->worklist)
                record_failure(ctx, j->worklist, entry->ubrn, e.msg, j->correlation_id, stats);
out:
        referral_job_free(j);
        /* Stopped, or the lease lost: the referral was neither written nor failed, and
         * waits in ers_retry; telling the observer anything would say what did not happen. */
        if (!referral_stops_round(r))
                report_outcome(ctx, &o);
        if (ret_result)
                *ret_result = o.result;
        return r;
}
