/* SPDX-License-Identifier: MIT */
/*
 * The operators' one-shot commands: `--check-config`'s statements checked
 * against the database (and with --network the services, services.c),
 * `--init-db`, `ersd audit UBRN`, `ersd reconcile`
 * and `ersd sync UBRN` (run inside the service's set-up, service.c, which
 * opens what a sync needs).  `ersd status` is status.c's.  Each prints its
 * result and returns an exit status (commands.h).
 */
#include "commands.h"

#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>

#include "../adapters/pas.h"
#include "../adapters/pas_audit.h"
#include "../adapters/pas_mapping.h"
#include "../adapters/pas_patient.h"
#include "../adapters/pas_status.h"
#include "audit.h"
#include "escape.h"
#include "log.h"
#include "reconcile.h"
#include "services.h"
#include "util.h"

/* The checks that need the database: the PAS prepares the configured
 * statements (patient lookup, mappings).  Reports each one it refuses as
 * FILE:LINE on stderr; returns how many. */
static unsigned check_statements(const struct config *cfg) {
        static const char *const keys[] = { "database.patient_lookup", "database.mapping.referral",
                                             "database.mapping.document" };
        const char *sql[] = { cfg->patient_lookup, cfg->map_referral, cfg->map_document };
        const char *at[] = { cfg->patient_lookup_at, cfg->map_referral_at, cfg->map_document_at };
        struct errbuf e = { { 0 } };
        struct pas *pas = NULL;
        unsigned refused = 0;

        if (!sql[0] && !sql[1] && !sql[2])
                return 0;
        if (pas_open(cfg->odbc_connection, cfg->adapter, &pas, &e) < 0) {
                for (size_t i = 0; i < 3; i++)
                        if (sql[i]) {
                                escape_fprintf(stderr, "%s: %s: cannot check it: %s", at[i], keys[i], e.msg);
                                fputc('\n', stderr);
                                refused++;
                        }
                return refused;
        }
        for (size_t i = 0; i < 3; i++) {
                int r;

                if (!sql[i])
                        continue;
                if (i == 0)
                        r = pas_set_patient_lookup(pas, sql[i], &e);
                else
                        r = pas_set_mapping(pas, i == 1 ? PAS_MAP_REFERRAL : PAS_MAP_DOCUMENT, sql[i], &e);
                if (r < 0) {
                        escape_fprintf(stderr, "%s: %s: %s", at[i], keys[i], e.msg);
                        fputc('\n', stderr);
                        refused++;
                }
        }
        pas_close(pas);
        return refused;
}

int command_check_config(const char *path, const struct config *cfg, bool network) {
        int status = EXIT_SUCCESS;

        if (check_statements(cfg) > 0) {
                fprintf(stderr, "ersd: %s: configuration refused\n", path);
                return EXIT_USAGE;
        }
        if (network)
                status = command_check_services(cfg);
        if (status == EXIT_USAGE)
                fprintf(stderr, "ersd: %s: configuration refused\n", path);
        if (status != EXIT_SUCCESS)
                return status;
        printf("%s: configuration OK (%zu worklist%s%s)\n", path, cfg->n_worklists, cfg->n_worklists == 1 ? "" : "s",
               network ? ", their services in e-RS" : "");
        return EXIT_SUCCESS;
}

int command_open_pas(const struct config *cfg, struct pas **ret) {
        struct errbuf e = { { 0 } };
        int r = pas_open(cfg->odbc_connection, cfg->adapter, ret, &e);

        if (r < 0) {
                log_error("PAS database: cannot connect: %s", e.msg);
                return r;
        }
        log_info("PAS database: adapter %s, %s", pas_adapter_name(*ret), pas_dbms(*ret));
        return 0;
}

int command_set_statements(const struct config *cfg, struct pas *pas) {
        struct errbuf e = { { 0 } };

        if (cfg->patient_lookup && pas_set_patient_lookup(pas, cfg->patient_lookup, &e) < 0) {
                log_error("%s: database.patient_lookup: %s", cfg->patient_lookup_at, e.msg);
                return -EINVAL;
        }
        if (cfg->map_referral && pas_set_mapping(pas, PAS_MAP_REFERRAL, cfg->map_referral, &e) < 0) {
                log_error("%s: database.mapping.referral: %s", cfg->map_referral_at, e.msg);
                return -EINVAL;
        }
        if (cfg->map_document && pas_set_mapping(pas, PAS_MAP_DOCUMENT, cfg->map_document, &e) < 0) {
                log_error("%s: database.mapping.document: %s", cfg->map_document_at, e.msg);
                return -EINVAL;
        }
        return 0;
}

int command_init_db(const struct config *cfg) {
        struct errbuf e = { { 0 } };
        struct pas *pas = NULL;
        struct pas_tx *tx = NULL;
        int r = command_open_pas(cfg, &pas);

        if (r < 0)
                return EXIT_SYNC_FAILED;
        r = pas_begin(pas, &tx, &e);
        if (r == 0)
                r = pas_init_schema(tx, &e);
        if (r == 0) {
                r = pas_commit(tx, &e);
                if (r < 0)
                        err_prefix(&e, r, "create schema");
        } else
                pas_rollback(tx);
        if (r < 0)
                log_error("PAS database: cannot create the schema: %s", e.msg);
        else
                printf("ersd: PAS schema ready (adapter %s, %s)\n", pas_adapter_name(pas), pas_dbms(pas));
        pas_close(pas);
        return r < 0 ? EXIT_SYNC_FAILED : EXIT_SUCCESS;
}

int command_audit(const struct config *cfg, const char *ubrn, bool json) {
        struct errbuf e = { { 0 } };
        struct pas *pas = NULL;
        int status = EXIT_SYNC_FAILED, r;

        if (command_open_pas(cfg, &pas) < 0)
                return EXIT_SYNC_FAILED;
        r = pas_check_schema(pas, &e);
        if (r >= 0)
                r = audit_print(pas, ubrn, json, stdout, &e);
        if (r == 0) {
                struct referral_stored st = { .found = false };
                r = pas_referral_stored(pas, ubrn, &st, &e);
                if (r >= 0 && st.found) {
                        printf("UBRN %s: in the PAS at version %" PRId64 ", with no audit row (written before "
                               "the audit trail existed)\n",
                               ubrn, st.version);
                        status = EXIT_SUCCESS;
                } else if (r >= 0)
                        fprintf(stderr, "ersd: UBRN %s: unknown to this PAS (no referral, no audit row)\n", ubrn);
                referral_stored_free(&st);
        } else if (r > 0)
                status = EXIT_SUCCESS;
        if (r < 0)
                log_error("PAS database: %s", e.msg);
        fflush(stdout);
        pas_close(pas);
        return status;
}

int command_reconcile(const struct config *cfg) {
        struct errbuf e = { { 0 } };
        struct pas *pas = NULL;
        struct ers_client *ers = NULL;
        int r;

        if (command_open_pas(cfg, &pas) < 0)
                return EXIT_SYNC_FAILED;
        r = pas_check_schema(pas, &e);
        if (r < 0)
                log_error("PAS database: %s", e.msg);
        if (r >= 0) {
                r = ers_client_new(cfg, &ers, &e);
                if (r < 0)
                        log_error("e-RS client: %s", e.msg);
        }
        if (r >= 0) {
                r = reconcile_run(pas, ers, stdout, &e);
                if (r < 0)
                        log_error("reconcile: PAS database: %s", e.msg);
        }
        fflush(stdout);
        ers_client_free(ers);
        pas_close(pas);
        return r == 0 ? EXIT_SUCCESS : EXIT_SYNC_FAILED;
}

int command_sync_one(struct sync_ctx *ctx, const char *ubrn) {
        struct referral_origin origin;
        struct errbuf e = { { 0 } };
        struct sync_stats stats;
        enum referral_result result = REFERRAL_FAILED;
        double t0 = now_monotonic();
        int r;

        r = pas_referral_origin(ctx->pas, ubrn, &origin, &e);
        if (r < 0) {
                log_ctx_error(&(struct log_ctx){ .ubrn = ubrn, .stage = "pas" }, "UBRN %s not synced: %s", ubrn, e.msg);
                return EXIT_SYNC_FAILED;
        }
        if (!origin.found)
                log_ctx_notice(&(struct log_ctx){ .ubrn = ubrn },
                               "UBRN %s: not seen on a worklist before; synced with no worklist", ubrn);
        else
                log_ctx_info(&(struct log_ctx){ .ubrn = ubrn }, "UBRN %s: worklist %s, as %s holds it", ubrn,
                             origin.worklist[0] ? origin.worklist : "none", origin.source);
        r = sync_one(ctx, ubrn, &origin, &stats, &result);
        if (r < 0) {
                printf("ersd: UBRN %s not synced, PAS unchanged (the log says why); %.1f s\n", ubrn,
                       now_monotonic() - t0);
                referral_origin_free(&origin);
                return EXIT_SYNC_FAILED;
        }
        escape_fprintf(stdout, "ersd: UBRN %s %s (worklist %s): documents %u stored (%.1f MiB), %u not fetched; %.1f s",
                       ubrn,
                       result == REFERRAL_UNCHANGED ? "already in the PAS at e-RS's version, nothing written"
                                                    : result == REFERRAL_NEW ? "written (new)" : "written (updated)",
                       origin.found && origin.worklist[0] ? origin.worklist : "none", stats.documents_stored,
                       (double) stats.bytes_stored / (1024.0 * 1024.0), stats.documents_not_fetched,
                       now_monotonic() - t0);
        putchar('\n');
        fflush(stdout);
        referral_origin_free(&origin);
        return EXIT_SUCCESS;
}
