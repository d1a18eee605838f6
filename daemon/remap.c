/* SPDX-License-Identifier: MIT */
/*
 * `ersd remap` (remap.h): each referral's staging rows and referral mapping
 * derived again from the A005 answer kept of its current version, its
 * documents' rows and mapping too (remap_documents.c), one transaction and
 * one REMAPPED audit row per referral, no e-RS request.  Not here: keeping
 * the answers (adapters/pas_answer.c), a sync's write (write.c).
 */
#include "remap.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../adapters/pas.h"
#include "../adapters/pas_answer.h"
#include "../adapters/pas_audit.h"
#include "../adapters/pas_mapping.h"
#include "../adapters/pas_patient.h"
#include "../adapters/pas_status.h"
#include "audit.h"
#include "commands.h"
#include "fhir.h"
#include "log.h"
#include "remap_documents.h"
#include "write.h"

enum remap_result { REMAPPED, NOT_IN_PAS, NO_ANSWER };

int remap_parse_kept(struct pas *pas, const char *ubrn, const struct answer_kept *k, struct referral *ret,
                     char correlation_id[37], struct errbuf *e) {
        struct referral_answer ans = { .bytes = NULL };
        json_object *root = NULL;
        int r = pas_answer_get(pas, ubrn, k->version, k->sha256, &ans, e);

        if (r == 0) {
                memcpy(correlation_id, ans.correlation_id, sizeof ans.correlation_id);
                r = fhir_parse_text((const char *) ans.bytes, ans.len, &root, e);
        }
        if (r == 0)
                r = fhir_parse_referral(root, ret, e);
        if (r == 0 && (strcmp(ret->ubrn, ubrn) != 0 || ret->version != k->version))
                r = err_set(e, -EBADMSG, "the answer kept for version %" PRId64 " reads as another referral or version",
                            k->version);
        json_object_put(root);
        referral_answer_free(&ans);
        return r;
}

/* The staging row, the patient match, the mapping, the documents
 * (remap_documents.h) and the audit row, in one transaction; rolled back on
 * any error. */
static int rewrite(struct pas *pas, const struct referral *ref, const struct worklist_entry *entry,
                   const char *worklist, const struct patient_match *match, const struct answer_kept *k,
                   const char *correlation_id, const char *state_dir, struct errbuf *e) {
        struct referral_stored before = { .found = false };
        struct audit_text t = { .p = NULL }, documents = { .p = NULL };
        struct pas_tx *tx = NULL;
        int r = pas_begin(pas, &tx, e);

        if (r == 0)
                r = pas_referral_stored(pas, ref->ubrn, &before, e);
        if (r == 0 && (!before.found || before.version != ref->version))
                r = err_set(e, -ESTALE, "the PAS's row moved to another version meanwhile; run remap again");
        if (r == 0) {
                audit_clause(&t, "remapped from the answer received at %s (sha256 %.12s)", k->received_at, k->sha256);
                audit_describe(&t, &before, ref, entry);
                if (match->status != PATIENT_NOT_CONFIGURED &&
                    strcmp(before.patient_match, patient_match_name(match->status)) != 0)
                        audit_clause(&t, "patient_match %s -> %s", before.patient_match,
                                     patient_match_name(match->status));
                r = pas_put_referral(tx, ref, entry, NULL, e);
        }
        if (r == 0) /* derived from that answer still */
                r = pas_answer_derived(tx, ref->ubrn, ref->version, k->sha256, e);
        if (r == 0 && match->status != PATIENT_NOT_CONFIGURED)
                r = pas_put_patient_match(tx, ref->ubrn, match, e);
        if (r == 0)
                r = pas_put_mapped_referral_again(tx, ref, entry, worklist, match, e);
        if (r == 0)
                r = remap_documents(pas, tx, ref, state_dir, &t, &documents, e);
        if (r == 0)
                r = t.oom || documents.oom ? err_set(e, -ENOMEM, "audit row: out of memory")
                                           : pas_audit_append(tx, ref->ubrn, ref->version, "REMAPPED", t.p,
                                                              documents.p,
                                                              correlation_id[0] ? correlation_id : NULL, e);
        if (r == 0)
                r = pas_commit(tx, e);
        else if (tx)
                pas_rollback(tx);
        audit_text_free(&t);
        audit_text_free(&documents);
        referral_stored_free(&before);
        return r;
}

/* One referral.  0 with *ret_result, or a negative errno with one line in e. */
static int remap_one(struct pas *pas, const char *ubrn, const char *state_dir, enum remap_result *ret_result,
                     int64_t *ret_version, struct errbuf *e) {
        struct referral_origin origin = { .found = false };
        struct answer_kept *kept = NULL; /* owned */
        struct referral ref = { .version = -1 };
        struct entry_fill fill = { .entry = { .version = -1 } };
        const struct worklist_entry *entry = NULL;
        struct patient_match match = { .status = PATIENT_NOT_CONFIGURED };
        char correlation_id[37] = "";
        const struct answer_kept *k = NULL;
        char current_sha[65] = "";
        int64_t current_version = -1;
        size_t n = 0;
        int r = pas_referral_origin(pas, ubrn, &origin, e);

        *ret_version = -1;
        if (r == 0) { /* the staging row decides: ers_retry may know a referral never written */
                struct referral_entry_fields row = { .found = false };
                r = pas_referral_entry_fields(pas, ubrn, &row, e);
                if (r == 0 && !row.found)
                        *ret_result = NOT_IN_PAS;
                *ret_version = row.found ? row.version : -1;
                referral_entry_fields_free(&row);
                if (r == 0 && *ret_result == NOT_IN_PAS)
                        goto out;
        }
        if (r == 0) /* the answer the row came from, never "the latest kept" (ties within a second) */
                r = pas_answer_current(pas, ubrn, &current_version, current_sha, e);
        if (r == 0 && current_sha[0] && current_version == *ret_version)
                r = pas_answers_kept(pas, ubrn, &kept, &n, e);
        for (size_t i = 0; i < n && r == 0; i++)
                if (kept[i].version == current_version && strcmp(kept[i].sha256, current_sha) == 0)
                        k = &kept[i];
        if (r == 0 && !k) {
                *ret_result = NO_ANSWER;
                goto out;
        }
        if (r == 0)
                r = remap_parse_kept(pas, ubrn, k, &ref, correlation_id, e);
        if (r == 0) {
                struct worklist_entry kept_entry =
                        write_kept_entry(ubrn, -1, origin.priority ? origin.priority : "",
                                         origin.service_id ? origin.service_id : "",
                                         origin.service_name ? origin.service_name : "",
                                         origin.referral_type ? origin.referral_type : "");
                r = write_fill_entry(pas, &ref, &kept_entry, &fill, &entry, e);
                if (entry == &kept_entry) { /* nothing filled: the entry as made */
                        fill.entry = kept_entry;
                        entry = &fill.entry;
                }
        }
        if (r == 0) {
                write_match_patient(pas, &ref, entry, &match); /* outside the transaction, as a sync's */
                r = rewrite(pas, &ref, entry, origin.worklist[0] ? origin.worklist : NULL, &match, k,
                            correlation_id, state_dir, e);
        }
        if (r == 0)
                *ret_result = REMAPPED;
out:
        explicit_bzero(&match, sizeof match); /* the PAS patient id */
        referral_entry_fields_free(&fill.stored);
        referral_free(&ref);
        referral_origin_free(&origin);
        free(kept);
        return r;
}

int command_remap(const struct config *cfg, const char *const *ubrns, size_t n, bool all) {
        char (*list)[UBRN_LEN + 1] = NULL; /* owned: with `all`, every referral's UBRN */
        struct errbuf e = { { 0 } };
        struct pas *pas = NULL;
        size_t remapped = 0, not_remapped = 0, failed = 0;
        int r;

        if (command_open_pas(cfg, &pas) < 0)
                return EXIT_SYNC_FAILED;
        r = pas_check_schema(pas, &e);
        if (r < 0)
                log_error("PAS database: %s", e.msg);
        if (r >= 0 && command_set_statements(cfg, pas) < 0)
                r = -EINVAL;
        if (r >= 0 && all) {
                r = pas_answer_referrals(pas, &list, &n, &e);
                if (r < 0)
                        log_error("PAS database: %s", e.msg);
        }
        for (size_t i = 0; i < n && r >= 0; i++) {
                const char *ubrn = all ? list[i] : ubrns[i];
                enum remap_result res = REMAPPED; /* remap_one() says otherwise */
                int64_t version = -1;

                e = (struct errbuf){ { 0 } };
                if (remap_one(pas, ubrn, cfg->state_dir, &res, &version, &e) < 0) {
                        failed++;
                        log_ctx_error(&(struct log_ctx){ .ubrn = ubrn, .stage = "pas" },
                                      "UBRN %s not remapped, PAS unchanged: %s", ubrn, e.msg);
                        continue;
                }
                if (res == REMAPPED)
                        remapped++;
                else
                        not_remapped++;
                if (res == NOT_IN_PAS)
                        printf("ersd: UBRN %s: unknown to this PAS; nothing to remap\n", ubrn);
                else if (res == NO_ANSWER)
                        printf("ersd: UBRN %s: no A005 answer kept for version %" PRId64
                               " (written before schema version 5); not remapped: `ersd sync %s` reads it again\n",
                               ubrn, version, ubrn);
                else if (!all)
                        printf("ersd: UBRN %s: version %" PRId64 " remapped from the answer kept, no e-RS request\n",
                               ubrn, version);
        }
        if (r >= 0 && all)
                printf("ersd: remap: %zu referral%s remapped, %zu without an answer kept, %zu failed\n", remapped,
                       remapped == 1 ? "" : "s", not_remapped, failed);
        fflush(stdout);
        free(list);
        pas_close(pas);
        if (r < 0 || failed)
                return EXIT_SYNC_FAILED;
        return all || not_remapped == 0 ? EXIT_SUCCESS : EXIT_SYNC_FAILED;
}
