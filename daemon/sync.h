/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The sync engine: for each configured worklist, A008, then for each entry
 * whose version the ledger has not got (or whose documents are still owed):
 * A005, the referral's related referrals (A005), every document (A042
 * attachments, A007 letter) into the verified spool, then ONE PAS
 * transaction with the referral rows, the documents and the ledger row.
 *
 * A referral is written whole or not at all: a failure before commit leaves
 * the PAS as it was and the referral is tried again on the next round.
 * Documents e-RS will not release (PENDING, THREATS_FOUND,
 * VALIDATION_FAILED, 422) are recorded as not fetched with the reason staff
 * need; PENDING ones keep the ledger row incomplete so a later round fetches
 * them.
 *
 * Logs: one line per referral written or failed (UBRN, version, correlation
 * id), never a patient identifier.
 *
 * Where it is: round.c (a round, the writer's window), worklist_sync.c (one
 * worklist), due.c (referrals due again, `ersd sync UBRN`), fetch.c (the
 * fetch), write.c (the write and what becomes of a referral); round.h holds
 * what they share.
 */

#include <signal.h>
#include <stdint.h>

#include "../adapters/pas.h"
#include "config.h"
#include "ers.h"
#include "reconnect.h"
#include "said.h"
#include "spool.h"

struct fetch_pool;

/* What happened to one referral, for the observer (below). */
enum referral_result {
        REFERRAL_NEW,       /* written for the first time (dry run: would be) */
        REFERRAL_UPDATED,   /* written at a newer version or with documents completed (dry run: would be) */
        REFERRAL_UNCHANGED, /* the PAS has it already: nothing to write */
        REFERRAL_FAILED,    /* not written: the log says why */
};

struct referral_outcome {
        const char *ubrn;
        const char *worklist;     /* NULL for `ersd sync UBRN` of a referral never seen on a worklist */
        int64_t version;          /* the version read from e-RS; -1 when not read */
        enum referral_result result;
        bool dry_run;             /* nothing was written: result says what would have been */
        unsigned documents;       /* document contents stored (dry run: fetched, verified and to be stored) */
        uint64_t bytes;           /* their bytes */
        unsigned not_fetched;     /* documents recorded without content, or so in the PAS already */
        unsigned pending;         /* of those, e-RS still scanning (PENDING): owed, asked for again */
};

/* Optional callbacks (ersd's progress line and --dry-run report).  Each may be
 * NULL; none may block.  Pointers passed are valid for the call only. */
struct sync_observer {
        void (*worklist_read)(void *userdata, const char *worklist, size_t n_referrals);
        void (*referral_done)(void *userdata, const struct referral_outcome *o);
        void *userdata; /* borrowed */
};

struct sync_ctx {
        const struct config *cfg;         /* borrowed */
        /* Borrowed, may be NULL (none): poll[i] says whether worklists[i] is read (A008) this
         * round; each read first takes a call from the service's budget (ers_budget). */
        const bool *poll;
        struct ers_client *ers;           /* borrowed */
        struct pas *pas;                  /* borrowed */
        struct spool *spool;              /* borrowed */
        volatile sig_atomic_t *stop;      /* borrowed, may be NULL: set by SIGTERM/SIGINT, checked between referrals */
        /* May be NULL: called before each referral (the daemon feeds systemd's watchdog there).
         * It must not block. */
        void (*between_referrals)(void *userdata);
        void *userdata;                   /* borrowed, for between_referrals */
        struct reconnect reconnect;       /* an outage of the PAS connection, across rounds (reconnect.h) */
        const struct sync_observer *observer; /* borrowed, may be NULL */
        /* --dry-run: everything is read, fetched into the spool and verified as in a
         * real round, and the PAS is not written (no referral, document, ledger or
         * patient-match row); each referral's outcome says what would be written.
         * The spool files are removed afterwards. */
        bool dry_run;
        struct fetch_pool *pool;          /* owned by sync_once() while a round runs; NULL otherwise */
        struct said_once lagging;         /* (UBRN, version listed) already said to be ahead of A005 */
};

struct sync_stats {
        unsigned referrals_new;       /* written for the first time */
        unsigned referrals_updated;   /* written at a newer version, or documents completed */
        unsigned referrals_unchanged; /* ledger already had this version, complete */
        unsigned referrals_failed;    /* not written this round; tried again next round */
        unsigned worklists_failed;    /* A008 failed: none of its referrals were looked at */
        unsigned worklists_over_budget; /* not read: the service's calls for the UK day are spent */
        unsigned worklists_read;      /* A008 answered */
        unsigned worklist_entries_skipped; /* entries of worklists read that were malformed: not synced */
        unsigned referrals_parked;    /* failed again and parked (ers_retry.parked) */
        unsigned documents_stored;    /* document contents written to the PAS */
        unsigned documents_not_fetched; /* not stored: recorded without content (not available, too large),
                                           or so already in the PAS for a referral read again */
        uint64_t bytes_stored;
        unsigned patients_matched_later; /* referrals already in the PAS whose patient a later round found */
        double writer_busy_s;         /* seconds the writer spent on fetched referrals (the PAS's share) */
        double writer_waited_s;       /* seconds it waited for a fetch to finish (e-RS's share) */
};

/* One round: each worklist ctx->poll selects (A008, within the budget; its
 * entries that need writing go into ers_retry first, in the transaction
 * that records the poll in ers_poll), then every referral due for another
 * look: ers_retry rows whose time has come (failed, parked, or left by a
 * round that stopped) and ledger rows with documents owed whose
 * next_check_at has come (A005 and documents, never A008).  A referral that
 * fails is recorded in ers_retry (attempts, reason, SQLSTATE, correlation
 * id, next attempt; parked after park_after failures); its row goes in the
 * transaction that writes it.  Returns 0 when everything succeeded, -EAGAIN
 * when something failed (see stats), -ECANCELED when stopped by *stop,
 * -ESTALE when the writer's lease (database.lease_seconds) was lost to
 * another ersd: the round stops at once, nothing more written; -ENOTCONN
 * when the PAS connection was lost and did not come back (reconnect.h): the
 * round stops, no further worklist is fetched. */
int sync_once(struct sync_ctx *ctx, struct sync_stats *stats);
/* (Added:) a round that finished cleanly (0) leaves the spool empty: it holds
 * patient documents, and no referral is waiting for one. */

/* The spool at a start (keep_queued_downloads: finished downloads of
 * referrals waiting in ers_retry stay, for their retry; everything else goes)
 * or emptied (not).  Logs what it removed; never fails. */
void sync_spool_tidy(struct sync_ctx *ctx, bool keep_queued_downloads);

/*
 * `ersd sync UBRN`: syncs one referral now, without a worklist call: A005,
 * its related referrals, its documents, one transaction.  The fields only a
 * worklist carries (worklist, service, referral type) come from what the PAS
 * already holds (`origin`, from pas_referral_origin(); may be not found: the
 * referral is written with no worklist).  Returns 0 when the PAS holds the
 * referral at e-RS's version (written now, or already there: *ret_result
 * says which), a negative errno when it was not written (logged here, once).
 */
struct referral_origin; /* adapters/pas_status.h */
int sync_one(struct sync_ctx *ctx, const char *ubrn, const struct referral_origin *origin,
             struct sync_stats *stats, enum referral_result *ret_result);
