/* SPDX-License-Identifier: MIT */
#include "verify.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/document_key.h"
#include "testutil.h"

/* How many revisions of a document (its identity: docs/schema.md, ers_document) hold the same
 * content as the revision before them: a new revision is made only when e-RS served content that
 * differs from the latest.  Content e-RS serves again after another (A, B, A) is a revision of its
 * own, rightly. */
#define SQL_STORED_TWICE                                                                                    \
        "SELECT COUNT(*) FROM ers_document a JOIN ers_document b ON b.ubrn = a.ubrn"                        \
        " AND b.source_ubrn = a.source_ubrn AND b.kind = a.kind AND b.attachment_key = a.attachment_key"    \
        " AND b.revision = a.revision + 1 WHERE a.sha256 IS NOT NULL AND b.sha256 = a.sha256"

static const char *const referral_fields[] = {
        "nhs_number", "priority", "state", "state_reason", "state_comment", "specialty",
        "specialty_display", "pathway_start", "clinical_info_first_submitted", "appointment_start",
        "appointment_end", "commissioning_org", "request_id", "status", "intent", "service_id", "service_name",
};

static bool same(const char *a, const char *b) {
        return (a == NULL && b == NULL) || (a && b && strcmp(a, b) == 0);
}

/* One document (kind, attachment id, occurrence): stored once, with the status its
 * availability calls for and, when fetched, exactly the bytes served. */
static void check_document(struct db *d, const char *ubrn, const char *source, bool cri, const char *attachment_id,
                           unsigned occurrence, bool want_fetched, const char *want_sha, long long want_size,
                           struct verify_result *v) {
        char key[DOCUMENT_KEY_HEX + 1] = "";
        const char *q[] = { ubrn, source, cri ? "CRI" : "ATTACHMENT", key };
        char *id, *status, hex[65];
        int64_t size;

        if (!attachment_id || document_key(attachment_id, occurrence, key) < 0) {
                v->documents_missing++;
                fprintf(stderr, "verify: UBRN %s: a document of %s without an id\n", ubrn, source);
                return;
        }
        long long n = db_int(d,
                             "SELECT COUNT(*) FROM ers_document WHERE ubrn = ? AND source_ubrn = ? AND kind = ? "
                             "AND attachment_key = ?",
                             4, q);

        if (n == 0) {
                v->documents_missing++;
                fprintf(stderr, "verify: UBRN %s: document %s of %s missing\n", ubrn, attachment_id, source);
                return;
        }
        if (n > 1) {
                v->documents_duplicated++;
                fprintf(stderr, "verify: UBRN %s: document %s of %s stored %lld times\n", ubrn, attachment_id, source, n);
                return;
        }
        id = db_text(d,
                     "SELECT document_id FROM ers_document WHERE ubrn = ? AND source_ubrn = ? AND kind = ? "
                     "AND attachment_key = ?",
                     4, q, NULL);
        status = db_text(d, "SELECT fetch_status FROM ers_document WHERE document_id = ?", 1, (const char *const[]){ id },
                         NULL);
        if (!status || strcmp(status, want_fetched ? "FETCHED" : "NOT_FETCHED") != 0) {
                v->documents_mismatched++;
                fprintf(stderr, "verify: UBRN %s: document %s of %s is %s\n", ubrn, attachment_id, source,
                        status ? status : "without status");
        } else if (want_fetched) {
                v->documents_checked++;
                if (db_document_sha256(d, id, hex, &size) < 0 || strcmp(hex, want_sha) != 0 || size != want_size) {
                        v->documents_mismatched++;
                        fprintf(stderr, "verify: UBRN %s: document %s of %s: bytes differ from what e-RS served\n",
                                ubrn, attachment_id, source);
                }
        }
        free(id);
        free(status);
}

static void check_referral(struct db *d, json_object *m, const char *listed_by, struct verify_result *v) {
        const char *ubrn = jstr(m, "ubrn");
        const char *p[] = { ubrn };
        long long version = json_object_get_int64(json_object_object_get(m, "version"));
        char sql[160], cri_id[48];
        bool found;

        long long stored = db_int(d, "SELECT version FROM ers_referral WHERE ubrn = ?", 1, p);
        if (stored < 0) {
                v->referrals_missing++;
                return;
        }
        if (stored != version) {
                v->referrals_stale++;
                return;
        }
        if (!listed_by)
                v->referrals_written++;
        for (size_t f = 0; f < sizeof referral_fields / sizeof *referral_fields; f++) {
                snprintf(sql, sizeof sql, "SELECT %s FROM ers_referral WHERE ubrn = ?", referral_fields[f]);
                char *got = db_text(d, sql, 1, p, &found);
                if (!same(jstr(m, referral_fields[f]), got)) {
                        v->fields_mismatched++;
                        fprintf(stderr, "verify: UBRN %s: %s differs from what e-RS served\n", ubrn,
                                referral_fields[f]);
                }
                free(got);
        }

        /* An NHS number failing the modulus-11 check is kept as sent and flagged for staff. */
        json_object *valid = json_object_object_get(m, "nhs_number_valid");
        if (valid && db_int(d, "SELECT nhs_number_valid FROM ers_referral WHERE ubrn = ?", 1, p) !=
                             (json_object_get_boolean(valid) ? 1 : 0)) {
                v->fields_mismatched++;
                fprintf(stderr, "verify: UBRN %s: nhs_number_valid differs from the check digit\n", ubrn);
        }

        /* Documents are shown with the referral that listed them. */
        const char *shown_with = listed_by ? listed_by : ubrn;
        json_object *atts = json_object_object_get(m, "attachments");
        for (size_t a = 0; a < json_object_array_length(atts); a++) {
                json_object *att = json_object_array_get_idx(atts, a);
                const char *avail = jstr(att, "availability"), *id = jstr(att, "id");
                unsigned occurrence = 0; /* earlier attachments with the same id, in the order e-RS lists them */
                for (size_t b = 0; id && b < a; b++)
                        occurrence += same(jstr(json_object_array_get_idx(atts, b), "id"), id);
                check_document(d, shown_with, ubrn, false, id, occurrence, avail && strcmp(avail, "AVAILABLE") == 0,
                               jstr(att, "sha256"), json_object_get_int64(json_object_object_get(att, "size")), v);
        }
        json_object *cri = json_object_object_get(m, "cri");
        if (cri) {
                snprintf(cri_id, sizeof cri_id, "CRI-v%lld", version);
                check_document(d, shown_with, ubrn, true, cri_id, 0, true, jstr(cri, "sha256"),
                               json_object_get_int64(json_object_object_get(cri, "size")), v);
        }
}

/* The columns of an entry's working state in e-RS, as the manifest's entry_state names them. */
static const char *const entry_state_columns[] = {
        "ubrn_received",         "patient_contact_expected", "last_contact", "clinical_information_status",
        "clinical_info_printed", "request_context_status",
};
#define N_ENTRY_STATE (sizeof entry_state_columns / sizeof *entry_state_columns)

struct entry_rows {
        const char *ubrn;
        json_object *states; /* the manifest's entry_state: {list type: {column: value}} */
        struct verify_result *v;
};

/* One ers_worklist_entry row (worklist, then the columns above): the working
 * state one of the referral's worklists lists it with. */
static int check_entry_row(void *userdata, int ncols, char **vals, const size_t *lens) {
        struct entry_rows *er = userdata;
        bool matched = false;
        char buf[24];

        (void) lens;
        if (ncols != 1 + (int) N_ENTRY_STATE)
                return -1;
        json_object_object_foreach(er->states, list_type, want) {
                bool all = true;
                (void) list_type;
                for (size_t k = 0; k < N_ENTRY_STATE && all; k++) {
                        json_object *w = json_object_object_get(want, entry_state_columns[k]);
                        const char *expected = NULL;
                        if (json_object_is_type(w, json_type_int)) {
                                snprintf(buf, sizeof buf, "%d", json_object_get_int(w));
                                expected = buf;
                        } else if (json_object_is_type(w, json_type_string))
                                expected = json_object_get_string(w);
                        all = same(expected, vals[1 + k]);
                }
                matched |= all;
        }
        if (!matched) {
                er->v->fields_mismatched++;
                fprintf(stderr, "verify: UBRN %s: ers_worklist_entry of worklist %s: its working state differs from "
                                "what e-RS listed\n", er->ubrn, vals[0] ? vals[0] : "NULL");
        }
        return 0;
}

static void check_entry_state(struct db *d, json_object *m, struct verify_result *v) {
        struct entry_rows er = { .ubrn = jstr(m, "ubrn"), .states = json_object_object_get(m, "entry_state"), .v = v };
        const char *p[] = { er.ubrn };

        if (!er.states) /* a manifest without it: nothing to compare */
                return;
        if (db_each_row(d,
                        "SELECT worklist, ubrn_received, patient_contact_expected, last_contact, "
                        "clinical_information_status, clinical_info_printed, request_context_status "
                        "FROM ers_worklist_entry WHERE ubrn = ?",
                        1, p, check_entry_row, &er) < 0) {
                v->fields_mismatched++;
                fprintf(stderr, "verify: UBRN %s: ers_worklist_entry could not be read\n", er.ubrn);
        }
}

static json_object *find_referral(json_object *refs, const char *ubrn) {
        for (size_t i = 0; i < json_object_array_length(refs); i++) {
                json_object *m = json_object_array_get_idx(refs, i);
                if (same(jstr(m, "ubrn"), ubrn))
                        return m;
        }
        return NULL;
}

void verify_pas(struct db *d, json_object *manifest, struct verify_result *ret) {
        json_object *refs = json_object_object_get(manifest, "referrals");

        memset(ret, 0, sizeof *ret);
        for (size_t i = 0; i < json_object_array_length(refs); i++) {
                json_object *m = json_object_array_get_idx(refs, i);
                json_object *w = json_object_object_get(m, "worklisted");
                if (w && !json_object_get_boolean(w))
                        continue;
                ret->referrals_expected++;
                check_referral(d, m, NULL, ret);
                check_entry_state(d, m, ret);
                json_object *related = json_object_object_get(m, "related");
                for (size_t r = 0; r < json_object_array_length(related); r++) {
                        json_object *rel = find_referral(refs, json_object_get_string(json_object_array_get_idx(related, r)));
                        if (rel)
                                check_referral(d, rel, jstr(m, "ubrn"), ret);
                }
        }
        ret->documents_duplicated += (unsigned) db_int(d, SQL_STORED_TWICE, 0, NULL);
}

/* The invariants of verify_consistent(): each query counts the rows that break one. */
static const struct {
        const char *what;
        const char *sql;
} INVARIANTS[] = {
        { "ledger row(s) without their referral at that version",
          "SELECT COUNT(*) FROM ers_ledger l LEFT JOIN ers_referral r ON r.ubrn = l.ubrn"
          " WHERE r.ubrn IS NULL OR r.version <> l.version" },
        { "worklisted referral(s) without a ledger row",
          "SELECT COUNT(*) FROM ers_referral r LEFT JOIN ers_ledger l ON l.ubrn = r.ubrn"
          " WHERE r.worklist IS NOT NULL AND l.ubrn IS NULL" },
        { "document part(s) without their document",
          "SELECT COUNT(*) FROM ers_document_part p LEFT JOIN ers_document x"
          " ON x.document_id = p.document_id WHERE x.document_id IS NULL" },
        { "fetched document(s) whose parts do not add up to part_count",
          "SELECT COUNT(*) FROM ers_document x WHERE x.fetch_status = 'FETCHED' AND"
          " x.part_count <> (SELECT COUNT(*) FROM ers_document_part p"
          " WHERE p.document_id = x.document_id)" },
        { "document content(s) stored twice for one document", SQL_STORED_TWICE },
        /* The audit trail went with every write: each ledger row has the row of the write
         * that put its version there, and each UBRN's seq runs 1, 2, … without a gap. */
        { "ledger row(s) without the audit row of the write behind them",
          "SELECT COUNT(*) FROM ers_ledger l WHERE NOT EXISTS (SELECT 1 FROM ers_audit a"
          " WHERE a.ubrn = l.ubrn AND a.version = l.version"
          " AND a.event_type IN ('NEW', 'UPDATED', 'DOCUMENTS'))" },
        { "referral(s) whose audit seq has a gap",
          "SELECT COUNT(*) FROM (SELECT ubrn FROM ers_audit GROUP BY ubrn"
          " HAVING MAX(seq) <> COUNT(*) OR MIN(seq) <> 1) gaps" },
};

unsigned verify_consistent_why(struct db *d, char *why, size_t n) {
        unsigned problems = 0;
        size_t o = 0;

        if (why && n)
                why[0] = '\0';
        for (size_t i = 0; i < sizeof INVARIANTS / sizeof INVARIANTS[0]; i++) {
                long long k = db_int(d, INVARIANTS[i].sql, 0, NULL);
                if (k != 0 && why && o < n) {
                        int w = snprintf(why + o, n - o, "%s%lld %s", o ? "; " : "", k, INVARIANTS[i].what);
                        o += w > 0 ? (size_t) w : 0;
                }
                problems += (unsigned) k;
        }
        return problems;
}

unsigned verify_consistent(struct db *d) {
        return verify_consistent_why(d, NULL, 0);
}
