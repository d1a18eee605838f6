/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Configuration: one libconfig file, read through one table of keys
 * (path, type, field, reloadable, default) in config.c, by the generic
 * loader of conftab.c (secret files: secret.c).  Unknown keys, wrong types
 * and bad values are errors reported as "FILE:LINE: message".
 *
 * Ownership: every string in struct config is owned by it; config_free()
 * releases them (accepts NULL contents).  Secrets (the bearer token and the
 * ODBC connection string, which may hold a password) are held here but never
 * printed by anything in this module.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "schedule.h"

#define CONFIG_DEFAULT_PATH "/etc/ersd/ersd.conf"

enum auth_mode {
        AUTH_NONE,   /* open sandbox / loopback mock: no Authorization header */
        AUTH_BEARER, /* a static bearer token read from ers.bearer_token_file */
        AUTH_JWT,    /* application-restricted: signed-JWT client credentials (daemon/auth.h) */
};

struct worklist_conf {
        char *name;       /* operator's name for it, unique; used in logs and the ledger */
        char *list_type;  /* REFERRALS_FOR_REVIEW | APPOINTMENT_SLOT_ISSUES */
        char *service_id; /* e-RS service id (service_id_valid(), model.h) */
        char *service_at; /* "FILE:LINE" where service is written, for --check-config --network; NULL with it */
        int poll_at[SCHED_POLL_TIMES_MAX]; /* UK time, minutes after midnight, ascending; default 07:00, 13:00 */
        size_t n_poll_at;                  /* 1..SCHED_POLL_TIMES_MAX */
};

struct config {
        char *path;                 /* the file it was read from */

        /* e-RS */
        char *base_url;             /* e.g. https://sandbox.api.service.nhs.uk/referrals, no trailing '/' */
        enum auth_mode auth;
        char *bearer_token_file;    /* resolved path of the token file (AUTH_BEARER), else NULL; re-read on reload */
        char *bearer_token;         /* SECRET: contents of bearer_token_file, trailing newline cut */
        char *business_function;    /* user-restricted only: NHSD-eRS-Business-Function, else NULL */
        char *ods_code;             /* user-restricted only: NHSD-End-User-Organisation-ODS, else NULL */
        char *on_behalf_of;         /* user-restricted only: NHSD-eRS-On-Behalf-Of-User-ID, else NULL */
        char *ca_file;              /* CA bundle; NULL for the system's */
        char *api_key_file;         /* AUTH_JWT: resolved path of the API key file, else NULL */
        char *api_key;              /* SECRET: its contents, trailing newline cut (iss and sub) */
        char *private_key_file;     /* AUTH_JWT: resolved path of the PEM RSA private key, else NULL */
        char *private_key_pem;      /* SECRET: its contents */
        char *key_id;               /* AUTH_JWT: kid of the public key registered with the application */
        char *token_url;            /* AUTH_JWT: ers.token_url, or base_url's origin + /oauth2/token */
        char *client_cert_file;     /* mutual TLS to the e-RS origin only: PEM certificate, or NULL */
        char *client_key_file;      /* its PEM private key (mode and owner checked), or NULL */
        long connect_timeout_s;     /* default 10 */
        long stall_timeout_s;       /* a transfer under 1 byte/s for this long is aborted; default 60 */
        long transfer_timeout_s;    /* a transfer's deadline before its size counts: default 60 */
        long min_transfer_kib_s;    /* … plus 1 s per this many KiB it carried: default 32 */
        int64_t max_attachment_bytes; /* default 100 MiB; larger documents are refused while streaming */
        /* The e-RS limits (docs/configuration.md, "Limits and schedule").  Production values
         * only, unless base_url is a loopback address (a test mock): see test_limits. */
        long worklist_calls_per_day; /* A008 calls per service per UK day: 1..2, default 2 */
        long max_requests_per_second; /* every e-RS call, token included: 1..10, default 10 */
        long pending_recheck_s;     /* a PENDING document is asked for again after this: 300.., default 300 */
        long tries;                 /* sends of one e-RS call on 429/5xx/no connection: 1..10, default 5 */
        long parallel_fetches;      /* referrals fetched at once (A005, documents into the spool): 1..16, default 4 */
        bool test_limits;           /* a limit is beyond production's (allowed on loopback only): said at start */

        struct worklist_conf *worklists; /* owned array, n_worklists >= 1 */
        size_t n_worklists;

        /* PAS database */
        char *odbc_connection;      /* SECRET-ish: "DSN=…" or a driver connection string */
        char *adapter;              /* "auto" (detect from the connection) or an adapter name */
        char *patient_lookup;       /* SQL finding the PAS patient id by NHS number (one '?'), or NULL */
        char *patient_lookup_at;    /* "FILE:LINE" where it is written, for reports; NULL with it */
        long lease_seconds;         /* one writer among several ersd: the lease's length; 0 (default): no lease */
        /* database.mapping: SQL of the trust's, with named parameters (adapters/mapping.h), writing
         * into the PAS's own tables beside the staging schema; NULL when not configured */
        char *map_referral;         /* run for every referral version written */
        char *map_referral_at;      /* "FILE:LINE" where it is written, for reports; NULL with it */
        char *map_document;         /* run for every document row written */
        char *map_document_at;
        char **map_unmapped;        /* NULL-terminated: fields left out of the statements on purpose, or NULL */

        char *state_dir;            /* spool lives in STATE_DIR/spool; default /var/lib/ersd */
        long poll_interval_s;       /* plain `ersd`: longest wait between looks for due re-reads; default 300 */
        long retry_delay_s;         /* a failed referral's first retry; doubles per failure; default 60 */
        long park_after;            /* failures after which a referral is parked; default 5 */
        long parked_retry_s;        /* a parked referral is tried again this often; default 21600 (6 h) */
        long overdue_after_min;     /* an URGENT / TWO_WEEK_WAIT referral seen on a worklist and not in the
                                     * PAS after this many minutes is overdue (ersd status, the journal); default 120 */
        int log_level;              /* syslog priority: LOG_ERR..LOG_DEBUG; default LOG_INFO */

        /* writeback { … }: the return path (daemon/outbox.h), off by default */
        bool writeback_enabled;     /* writeback.enabled; default false */
        unsigned writeback_actions; /* writeback.actions: CONFIG_WB_* bits; default none */
};

/* The actions writeback.actions may name. */
#define CONFIG_WB_RECORD_REVIEW_OUTCOME 1u /* A028 */
#define CONFIG_WB_ACCEPT_REFERRAL 2u       /* A013 */

/* Receives one "FILE:LINE: message" per problem found. */
typedef void (*config_report_fn)(void *userdata, const char *line);

/*
 * Reads and validates `path`.  Every problem found is passed to `report`
 * (all of them, not only the first).  Returns 0 and fills *ret, or a negative
 * errno (-EINVAL for a config with problems, -ENOENT/-EACCES when the file
 * cannot be read) leaving *ret untouched.
 */
int config_load(const char *path, config_report_fn report, void *userdata, struct config *ret);

void config_free(struct config *c); /* frees the contents; not c itself */

/*
 * For a reload (SIGHUP): `next` was loaded without problems while `running`
 * is in use.  Reports, through `report`, one "FILE: KEY: …" line for every
 * key whose value differs and that the table marks as not reloadable
 * (database.connection, database.adapter, state_dir: see
 * docs/configuration.md), without printing either value.  Returns how many
 * such keys changed: 0 means `next` may replace `running` as a whole.  What to
 * do otherwise is the daemon's policy (the documented one: keep running on the
 * old configuration and log the lines).
 */
unsigned config_check_reload(const struct config *running, const struct config *next,
                             config_report_fn report, void *userdata);
