/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Fetching a referral: everything a write needs from e-RS, and nothing from
 * the PAS.  A referral_job is filled by the writer (the UBRN, the ledger's
 * state, the documents the PAS has) and fetched by fetch_referral(): A005,
 * its related referrals (A005), and every document not stored yet into the
 * verified spool.  The writer (round.c, write.c) then writes it in one PAS
 * transaction.
 *
 * The fetch pool (pool.h) runs fetch_referral() on ers.parallel_fetches
 * threads, each with its own e-RS connections (ers_client_lane), all within
 * one rate limit, so downloads overlap each other and the PAS writes.  The
 * PAS is only ever touched by the thread that owns the pool: one writer.
 */

#include <signal.h>
#include <stdbool.h>
#include <stdint.h>

#include "../adapters/pas.h"
#include "../adapters/pas_patient.h"
#include "config.h"
#include "ers.h"
#include "fhir.h"
#include "spool.h"

/*
 * Related referrals read per referral.  A pathway's onward referrals are few
 * (e-RS links each to the one before it); the bound is what a job may hold:
 * up to RELATED_MAX parsed A005s (each at most ERS_JSON_MAX on the wire, a
 * real one a few KiB).  A referral listing more is stored with the first
 * RELATED_MAX (in UBRN order) and their documents, every listed UBRN in
 * ers_referral_related; it is left owed (the ledger incomplete, so `ersd
 * status` lists it with the count not read), and one warning names it
 * (docs/how-it-works.md, "Related referrals").
 */
#define RELATED_MAX 64

#define NOT_FETCHED_REASON_MAX 256 /* bytes of a not-fetched reason ersd writes, NUL included */

/* The not-fetched reason of a document e-RS served larger than the maximum
 * (ers.max_attachment_mib, in bytes): stored with it, and how `ersd status`
 * tells such a document, as of the limit in force, from the others owed. */
void fetch_too_large_reason(int64_t max_attachment_bytes, char text[NOT_FETCHED_REASON_MAX]);

/*
 * The columns of a document's row that the A005 answer gives (docs/schema.md,
 * ers_document): title, content type, declared size, availability, who
 * attached it and for whom, when, its type and description, from the
 * DocumentReference of attachment `a`; for the letter (`a` NULL) ersd's own
 * title and content type, the rest NULL (declared size -1).  Sets those
 * fields of *rec only, borrowing a's strings.  For the fetch and `ersd remap`
 * (remap_documents.c), so that both derive them alike.
 */
void document_describe(struct document_rec *rec, const struct attachment *a);

/* One document of a referral being synced: what is written, and from where.
 * The job's array of these grows (moves) while documents are planned: rec's
 * strings point into the job's referrals or at the heap strings below, never
 * into the array itself. */
struct doc_job {
        struct document_rec rec;
        char *cri_id;                 /* owned: the letter's "CRI-v<version>" (rec.attachment_id); NULL otherwise */
        char *reason;                 /* owned: rec.not_fetched_reason when not fetched; NULL otherwise */
        char key[SPOOL_KEY_MAX];      /* spool key, when fetched */
        struct spool_file *file;      /* owned: the verified content, NULL when not fetched */
        const struct document_state *stored; /* borrowed from the job's known: what the PAS has of it, or NULL */
        bool completing;              /* the PAS has this document recorded as not fetched */
        struct document_written written; /* what the PAS write did, for the audit row */
};

/* What the fetch found there is to do. */
enum fetch_action {
        FETCH_WRITE,      /* write the referral (new, newer, or documents arrived) */
        FETCH_NOTHING,    /* e-RS's version is the PAS's (or older): nothing to write */
        FETCH_STILL_OWED, /* same version, documents still owed, none arrived and none recorded otherwise */
};

/* Everything one referral's sync holds; freed by referral_job_free(). */
struct referral_job {
        /* Set by the writer before the fetch. */
        const char *worklist;                  /* borrowed (the configuration's, or the due row's); may be NULL */
        const struct worklist_entry *entry;    /* borrowed: lives until the job is freed */
        struct ledger_state ls;                /* the ledger's row of entry->ubrn */
        struct document_known *known;          /* owned: the documents the PAS has (ls.found only) */
        size_t n_known;
        bool compare_answer;                   /* the entry gave no version (APPOINTMENT_SLOT_ISSUES, a due row):
                                                  A005 at the PAS's version is a change when its bytes are not
                                                  kept_sha256's */
        char kept_sha256[65];                  /* the answer the PAS's rows at ls.version came from; "" when none */
        /* Set by fetch_referral(). */
        int r;                                 /* 0, or the failure (e says it) */
        struct errbuf e;
        enum fetch_action action;
        bool answer_changed;                   /* compare_answer, and A005 at the PAS's version answered other
                                                  bytes than the answer kept: written, audited as UPDATED */
        bool answer_only;                      /* answer_changed, and nothing the PAS stores changed: only the
                                                  answer was kept, no audit row (write.c, answer_only()) */
        struct referral main;                  /* owned contents */
        struct referral related[RELATED_MAX];  /* owned contents */
        size_t n_related;
        size_t related_unread;                 /* related referrals listed beyond RELATED_MAX: not read */
        struct doc_job *docs;                  /* owned array */
        size_t n_docs, cap_docs;
        bool complete;                         /* false when documents are still owed */
        unsigned pending;                      /* documents e-RS is still scanning (PENDING) */
        unsigned not_fetched_stored;           /* FETCH_NOTHING: the referral's own documents at this version
                                                  (its attachments, its letter) the PAS has as not fetched */
        struct patient_match match[RELATED_MAX + 1]; /* set by the writer: [0] the referral, [1 + i] related[i] */
        char correlation_id[UUID_STR_LEN];     /* of the A005 that read the referral */
        /* The pool's. */
        struct referral_job *next;             /* borrowed: queue link */
};

/* What one fetch uses; the client is the thread's own lane. */
struct fetch_env {
        const struct config *cfg;     /* borrowed */
        struct ers_client *ers;       /* borrowed */
        struct spool *spool;          /* borrowed */
        volatile sig_atomic_t *stop;  /* borrowed, may be NULL */
};

/* A job for entry (borrowed), as the ledger has it; free with referral_job_free(). */
void referral_job_init(struct referral_job *j, const char *worklist, const struct worklist_entry *entry,
                       const struct ledger_state *ls);
void referral_job_free(struct referral_job *j); /* the contents; spool files are closed, not removed */

/* Fetches the job (A005s, documents into the spool), setting j->r, j->e,
 * j->action and the referral.  Touches no database.  Thread-safe: any number
 * at once, each with its own fetch_env.ers lane. */
void fetch_referral(const struct fetch_env *env, struct referral_job *j);
