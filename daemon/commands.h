/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The operators' one-shot commands (commands.c) and the exit statuses every
 * mode of ersd returns.  Each command logs its failures once and returns an
 * exit status.
 */

#include <stdbool.h>

#include "../adapters/pas.h"
#include "config.h"
#include "sync.h"

#define EXIT_SYNC_FAILED 1 /* something was not synced: see the log */
#define EXIT_USAGE 2       /* bad command line or configuration */

/* `--check-config` after the file was read without a problem: the configured
 * statements (patient lookup, mappings) prepared by the PAS, each one refused
 * reported as FILE:LINE on stderr; with `network` (--network), then each
 * worklist's service confirmed in e-RS (services.h: command_check_services(),
 * no worklist call).  EXIT_SUCCESS ("configuration OK" on stdout), EXIT_USAGE,
 * or EXIT_SYNC_FAILED (the services could not be checked). */
int command_check_config(const char *path, const struct config *cfg, bool network);

/* The PAS database connected, its adapter and DBMS logged; a failure logged. */
int command_open_pas(const struct config *cfg, struct pas **ret);

/* The configured statements (patient lookup, mappings) set on `pas`, each
 * refused one logged with its FILE:LINE.  0 or -EINVAL. */
int command_set_statements(const struct config *cfg, struct pas *pas);

/* `--init-db`: the staging schema created (idempotent). */
int command_init_db(const struct config *cfg);

/* `ersd audit UBRN`: the referral's history, for staff and auditors, as a
 * table or JSON on stdout; EXIT_SYNC_FAILED when the PAS does not know it. */
int command_audit(const struct config *cfg, const char *ubrn, bool json);

/* `ersd reconcile`: the PAS against the latest worklists (reconcile.h). */
int command_reconcile(const struct config *cfg);

/* `ersd sync UBRN`: one referral now, through ctx set up by the service
 * (service.c).  EXIT_SUCCESS when the PAS holds it at e-RS's version. */
int command_sync_one(struct sync_ctx *ctx, const char *ubrn);
