/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The operators' commands about e-RS services (R4 HealthcareService), for IT
 * choosing and checking the worklists' service ids:
 *
 *   ersd services [--json] [ID ...]    A035: each service's id, name, type,
 *                                      request flow, site and version; without
 *                                      IDs, the configured worklists' services
 *   ersd --check-config --network      A033: each configured worklist's
 *                                      service exists in e-RS
 *
 * Neither makes a worklist call (A008) nor touches the PAS or its budget.
 * Each prints its result on stdout, logs a failure once (one line: the call,
 * the HTTP status, the e-RS code, the correlation id; for a 403, that this
 * application may not call it), and returns an exit status (commands.h).
 *
 * Not here: the calls (ers.c), the parsing (fhir_service.c).
 */

#include <stdbool.h>
#include <stddef.h>

#include "config.h"

/*
 * `ersd services`: the services of `ids` (n of them, each service_id_valid(),
 * model.h: the caller checked; n == 0: the configured worklists'), asked of
 * A035 20 at a time, as a table or (json) one JSON object, every e-RS text
 * escaped (escape.h).  EXIT_SUCCESS when every id is known to e-RS;
 * EXIT_SYNC_FAILED when one is not (listed as such) or a call failed.
 */
int command_services(const struct config *cfg, const char *const *ids, size_t n, bool json);

/*
 * The networked part of `--check-config --network`: each distinct service id
 * of the configured worklists read with A033.  One line on stdout per worklist
 * whose service exists; one line on stderr per service e-RS does not know, at
 * the FILE:LINE where it is configured.  EXIT_SUCCESS, EXIT_USAGE (a service
 * unknown: the configuration is refused), or EXIT_SYNC_FAILED (the check could
 * not be made: e-RS refused this application (403), the network, …).
 */
int command_check_services(const struct config *cfg);

