/* SPDX-License-Identifier: MIT */
/*
 * ersd's configuration (config.h): ersd.conf read into struct config through
 * the tables of its keys (config_keys[] below, with two small tables for the
 * rows of a worklist and for ers.user_restricted), the parsers of ersd's own
 * values (URLs, the connection string, SQL, worklists, poll times), the
 * checks that span keys (auth needs a token file; business_function and
 * ods_code go together; worklists are unique; the e-RS limits; the budget;
 * the mapping), and what a reload may not change.
 *
 * Not here: the generic loader the tables are read by, with its FILE:LINE
 * reports (conftab.c), secret files (secret.c), the file's text and its
 * includes (conftext.c).  The result is built in a local struct config that
 * is handed over only when there was no problem.
 *
 * Secrets: a message never quotes a string value from the file unless that
 * value has passed its key's check (a worklist name, a list type), so neither
 * the bearer token, nor the connection string, nor a URL with a password, nor
 * a secret typed into the wrong key can reach a report line.  The token file's
 * path is not printed either (someone may have pasted the token there).
 */
#include "config.h"
#include "util.h"

#include <curl/curl.h>
#include <errno.h>
#include <libconfig.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "../adapters/adapter.h"
#include "../adapters/mapping.h"
#include "auth.h"
#include "conftab.h"
#include "conftext.h"
#include "err.h"
#include "model.h"
#include "secret.h"

_Static_assert(sizeof(enum auth_mode) == sizeof(int), "ers.auth is stored as FIELD_ENUM");

/* The configuration being loaded (struct loader's target). */
static struct config *config_of(const struct loader *l) {
        return l->target;
}

static int parse_base_url(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_ca_file(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_adapter(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_connection(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_patient_lookup(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_mapping(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_service(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_unmapped(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_group(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_worklists(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_poll_at(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_bool(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_wb_actions(struct loader *l, const struct key *k, const struct value *v, void *field);

static const struct choice auth_choices[] = {
        { "none", AUTH_NONE },
        { "bearer", AUTH_BEARER },
        { "jwt", AUTH_JWT },
        { NULL, 0 },
};

static const struct choice log_level_choices[] = {
        { "error", LOG_ERR },
        { "warning", LOG_WARNING },
        { "notice", LOG_NOTICE },
        { "info", LOG_INFO },
        { "debug", LOG_DEBUG },
        { NULL, 0 },
};

static const enum pas_map_kind map_referral_kind = PAS_MAP_REFERRAL, map_document_kind = PAS_MAP_DOCUMENT;

static const char *const list_type_names[] = {
        "REFERRALS_FOR_REVIEW", "APPOINTMENT_SLOT_ISSUES", NULL,
};

#define NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

static const struct chars_rule worklist_name_rule = {
        NAME_CHARS, 64, "1 to 64 characters from A-Z a-z 0-9 . _ -",
};
static const struct chars_rule business_function_rule = {
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ_", 64, "an e-RS business function such as SERVICE_PROVIDER_CLINICIAN",
};
static const struct chars_rule ods_code_rule = {
        "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789", 16, "an ODS code: 1 to 16 upper-case letters and digits",
};
static const struct chars_rule user_id_rule = {
        NAME_CHARS, 64, "a user id: 1 to 64 characters from A-Z a-z 0-9 . _ -",
};
static const struct chars_rule key_id_rule = {
        NAME_CHARS, 128, "a key id: 1 to 128 characters from A-Z a-z 0-9 . _ -",
};

/* ers.user_restricted { … }: fields of struct config. */
static const struct key user_restricted_keys[] = {
        KEY_STRING(struct config, "business_function", conf_parse_chars, business_function, RELOAD, OPTIONAL, NULL,
                   &business_function_rule),
        KEY_STRING(struct config, "ods_code", conf_parse_chars, ods_code, RELOAD, OPTIONAL, NULL, &ods_code_rule),
        KEY_STRING(struct config, "on_behalf_of", conf_parse_chars, on_behalf_of, RELOAD, OPTIONAL, NULL,
                   &user_id_rule),
};
static const struct key_table user_restricted_table = {
        user_restricted_keys, sizeof user_restricted_keys / sizeof user_restricted_keys[0],
};

/* One element of worklists = ( { … }, … ): fields of struct worklist_conf. */
static const struct key worklist_keys[] = {
        KEY_STRING(struct worklist_conf, "name", conf_parse_chars, name, RELOAD, REQUIRED, NULL, &worklist_name_rule),
        KEY_STRING(struct worklist_conf, "list_type", conf_parse_choice_str, list_type, RELOAD, REQUIRED, NULL,
                   list_type_names),
        KEY_STRING(struct worklist_conf, "service", parse_service, service_id, RELOAD, REQUIRED, NULL, NULL),
        /* Default 07:00 and 13:00 (parse_worklists()): an array has no default in the file's syntax. */
        { .path = "poll_at", .type = CONFIG_TYPE_ARRAY, .parse = parse_poll_at,
          .offset = offsetof(struct worklist_conf, poll_at), .reloadable = RELOAD },
};

/* The file.  Keep docs/configuration.md, conf/ersd.conf and the man page
 * docs/man/ersd.conf.5 in step with it (tests/check-man fails on a key missing there).
 * Defaults are written as in the file and go through the same parser. */
static const struct key config_keys[] = {
        KEY_GROUP("ers"),
        KEY_STRING(struct config, "ers.base_url", parse_base_url, base_url, RELOAD, REQUIRED, NULL, NULL),
        KEY_CHOICE(struct config, "ers.auth", auth, FIELD_ENUM, RELOAD, "bearer", auth_choices),
        KEY_STRING(struct config, "ers.bearer_token_file", secret_parse_path, bearer_token_file, RELOAD, OPTIONAL,
                   NULL, NULL), /* required when auth is "bearer": check_auth() */
        /* The next three are required when auth is "jwt", token_url defaults from base_url: check_auth(). */
        KEY_STRING(struct config, "ers.api_key_file", secret_parse_path, api_key_file, RELOAD, OPTIONAL, NULL,
                   NULL),
        KEY_STRING(struct config, "ers.private_key_file", secret_parse_path, private_key_file, RELOAD, OPTIONAL,
                   NULL, NULL),
        KEY_STRING(struct config, "ers.key_id", conf_parse_chars, key_id, RELOAD, OPTIONAL, NULL, &key_id_rule),
        KEY_STRING(struct config, "ers.token_url", parse_base_url, token_url, RELOAD, OPTIONAL, NULL, NULL),
        KEY_STRING(struct config, "ers.ca_file", parse_ca_file, ca_file, RELOAD, OPTIONAL, NULL, NULL),
        /* Mutual TLS to the e-RS origin: both or neither (check_client_cert()). */
        KEY_STRING(struct config, "ers.client_cert_file", parse_ca_file, client_cert_file, RELOAD, OPTIONAL,
                   NULL, NULL),
        KEY_STRING(struct config, "ers.client_key_file", secret_parse_path, client_key_file, RELOAD, OPTIONAL,
                   NULL, NULL),
        KEY_INT(struct config, "ers.connect_timeout", conf_parse_integer, connect_timeout_s, FIELD_LONG, RELOAD,
                "10", 1, 300),
        KEY_INT(struct config, "ers.stall_timeout", conf_parse_integer, stall_timeout_s, FIELD_LONG, RELOAD,
                "60", 5, 3600),
        KEY_INT(struct config, "ers.transfer_timeout", conf_parse_integer, transfer_timeout_s, FIELD_LONG, RELOAD,
                "60", 1, 3600),
        KEY_INT(struct config, "ers.min_transfer_rate", conf_parse_integer, min_transfer_kib_s, FIELD_LONG, RELOAD,
                "32", 1, 1048576),
        KEY_INT(struct config, "ers.max_attachment_mib", conf_parse_mib, max_attachment_bytes, FIELD_INT64, RELOAD,
                "100", 1, 2048),
        KEY_LIMIT(struct config, "ers.worklist_calls_per_day", worklist_calls_per_day, "2", 1, 100000, 1, 2),
        KEY_LIMIT(struct config, "ers.max_requests_per_second", max_requests_per_second, "10", 1, 10000, 1, 10),
        KEY_LIMIT(struct config, "ers.pending_recheck", pending_recheck_s, "300", 1, 86400, 300, 86400),
        KEY_INT(struct config, "ers.tries", conf_parse_integer, tries, FIELD_LONG, RELOAD, "5", 1, 10),
        KEY_INT(struct config, "ers.parallel_fetches", conf_parse_integer, parallel_fetches, FIELD_LONG, RELOAD, "4", 1,
                16),
        KEY_TABLE("ers.user_restricted", CONFIG_TYPE_GROUP, parse_group, OPTIONAL, &user_restricted_table),
        KEY_TABLE("worklists", CONFIG_TYPE_LIST, parse_worklists, REQUIRED, NULL),
        KEY_GROUP("database"),
        KEY_STRING(struct config, "database.connection", parse_connection, odbc_connection, RESTART, REQUIRED,
                   NULL, NULL),
        KEY_STRING(struct config, "database.adapter", parse_adapter, adapter, RESTART, OPTIONAL, "auto", NULL),
        KEY_STRING(struct config, "database.patient_lookup", parse_patient_lookup, patient_lookup, RESTART,
                   OPTIONAL, NULL, NULL),
        KEY_INT(struct config, "database.lease_seconds", conf_parse_integer, lease_seconds, FIELD_LONG, RESTART, "0",
                0, 3600),
        KEY_GROUP("database.mapping"),
        KEY_STRING(struct config, "database.mapping.referral", parse_mapping, map_referral, RESTART, OPTIONAL, NULL,
                   &map_referral_kind),
        KEY_STRING(struct config, "database.mapping.document", parse_mapping, map_document, RESTART, OPTIONAL, NULL,
                   &map_document_kind),
        KEY_TABLE("database.mapping.unmapped", CONFIG_TYPE_ARRAY, parse_unmapped, OPTIONAL, NULL),
        KEY_STRING(struct config, "state_dir", conf_parse_path, state_dir, RESTART, OPTIONAL, "/var/lib/ersd", NULL),
        KEY_INT(struct config, "poll_interval", conf_parse_integer, poll_interval_s, FIELD_LONG, RELOAD, "300",
                60, 86400),
        KEY_LIMIT(struct config, "retry_delay", retry_delay_s, "60", 1, 3600, 60, 3600),
        KEY_INT(struct config, "park_after", conf_parse_integer, park_after, FIELD_LONG, RELOAD, "5", 1, 100),
        KEY_LIMIT(struct config, "parked_retry", parked_retry_s, "21600", 1, 86400, 3600, 86400),
        KEY_INT(struct config, "overdue_after_minutes", conf_parse_integer, overdue_after_min, FIELD_LONG, RELOAD,
                "120", 5, 10080),
        KEY_CHOICE(struct config, "log_level", log_level, FIELD_INT, RELOAD, "info", log_level_choices),
        /* The return path, off by default; each action named to be sent (check_writeback()). */
        KEY_GROUP("writeback"),
        { .path = "writeback.enabled", .type = CONFIG_TYPE_BOOL, .parse = parse_bool,
          .offset = offsetof(struct config, writeback_enabled), .reloadable = RELOAD, .def = "false" },
        KEY_TABLE("writeback.actions", CONFIG_TYPE_ARRAY, parse_wb_actions, OPTIONAL, NULL),
};

#define N_CONFIG_KEYS (sizeof config_keys / sizeof config_keys[0])
#define N_WORKLIST_KEYS (sizeof worklist_keys / sizeof worklist_keys[0])

_Static_assert(N_CONFIG_KEYS <= TABLE_MAX, "raise TABLE_MAX");

/* "auto", or the name of an adapter this build knows (adapters/adapter.h,
 * adapter_by_name()): the list in the message is the registry's. */
static int parse_adapter(struct loader *l, const struct key *k, const struct value *v, void *field) {
        const char *last;
        int n;

        (void) k;
        if (strcmp(v->str, "auto") == 0 || adapter_by_name(v->str))
                return conf_dup_string(l, v->str, field);
        last = strrchr(adapter_names, ',');
        n = last ? (int) (last - adapter_names) : 0;
        if (last)
                problem_v(l, v, "%s: must be auto, %.*s or%s", v->key, n, adapter_names, last + 1);
        else
                problem_v(l, v, "%s: must be auto or %s", v->key, adapter_names);
        return -EINVAL;
}

static int parse_connection(struct loader *l, const struct key *k, const struct value *v, void *field) {
        (void) k;
        /* Never quote it: it may hold a password. */
        if (!strchr(v->str, '=')) {
                problem_v(l, v, "%s: not an ODBC connection string (expected \"DSN=name\" or "
                          "\"Driver=...;...\")", v->key);
                return -EINVAL;
        }
        return conf_dup_string(l, v->str, field);
}

/* One SQL statement with exactly one '?' outside quotes (the NHS number);
 * the database judges the rest (ersd --check-config prepares it).  Where it
 * was written is kept for that report.  Never quoted: it is the PAS's SQL. */
static int parse_patient_lookup(struct loader *l, const struct key *k, const struct value *v, void *field) {
        unsigned markers = 0;
        char quote = 0;

        (void) k;
        for (const char *s = v->str; *s; s++) {
                if (quote) {
                        if (*s == quote)
                                quote = 0;
                } else if (*s == '\'' || *s == '"') {
                        quote = *s;
                } else if (*s == '?') {
                        markers++;
                }
        }
        if (markers != 1) {
                problem_v(l, v, "%s: needs exactly one '?' (the NHS number), found %u", v->key, markers);
                return -EINVAL;
        }
        free(config_of(l)->patient_lookup_at);
        config_of(l)->patient_lookup_at = NULL;
        if (asprintf(&config_of(l)->patient_lookup_at, "%s:%u", v->file, v->line) < 0) {
                config_of(l)->patient_lookup_at = NULL;
                return conf_oom(l);
        }
        return conf_dup_string(l, v->str, field);
}

/* A worklist's service id (service_id_valid(), model.h: the rule `ersd
 * services` and the A033/A035 calls keep to), and where it is written: the
 * networked check (--check-config --network) reports a service e-RS does not
 * know at that FILE:LINE. */
static int parse_service(struct loader *l, const struct key *k, const struct value *v, void *field) {
        struct worklist_conf *wl = (struct worklist_conf *) ((char *) field - offsetof(struct worklist_conf, service_id));
        int r;

        (void) k;
        if (!service_id_valid(v->str)) {
                problem_v(l, v, "%s: must be an e-RS service id: " SERVICE_ID_RULE, v->key);
                return -EINVAL;
        }
        r = conf_dup_string(l, v->str, field);
        if (r < 0)
                return r;
        free(wl->service_at);
        if (asprintf(&wl->service_at, "%s:%u", v->file, v->line) < 0) {
                wl->service_at = NULL;
                return conf_oom(l);
        }
        return 0;
}

/* A mapping statement (adapters/mapping.h): its named parameters are
 * checked here, without a database (ersd --check-config then prepares it);
 * where it was written is kept for the reports.  Never quoted. */
static int parse_mapping(struct loader *l, const struct key *k, const struct value *v, void *field) {
        enum pas_map_kind kind = *(const enum pas_map_kind *) k->arg;
        char **at = kind == PAS_MAP_REFERRAL ? &config_of(l)->map_referral_at : &config_of(l)->map_document_at;
        struct pas_map_sql m = { 0 };
        struct errbuf e = { { 0 } };
        int r;

        r = pas_map_rewrite(kind, v->str, &m, &e);
        if (r == -ENOMEM)
                return conf_oom(l);
        if (r < 0) {
                problem_v(l, v, "%s: %s", v->key, e.msg);
                return -EINVAL;
        }
        r = pas_map_uses(&m, kind == PAS_MAP_REFERRAL ? MAP_REFERRAL_UBRN : MAP_DOCUMENT_UBRN);
        pas_map_sql_free(&m);
        if (!r) {
                problem_v(l, v, "%s: must use :ubrn (how the PAS tells referrals apart)", v->key);
                return -EINVAL;
        }
        free(*at);
        *at = NULL;
        if (asprintf(at, "%s:%u", v->file, v->line) < 0) {
                *at = NULL;
                return conf_oom(l);
        }
        return conf_dup_string(l, v->str, field);
}

/* database.mapping.unmapped = [ "state_comment", … ]: field names. */
static int parse_unmapped(struct loader *l, const struct key *k, const struct value *v, void *field) {
        const config_setting_t *list = v->setting;
        int n = config_setting_length(list);
        unsigned before = l->n_problems;
        char **names;

        (void) k;
        (void) field;
        names = calloc((size_t) (n > 0 ? n : 0) + 1, sizeof *names);
        if (!names)
                return conf_oom(l);
        config_of(l)->map_unmapped = names; /* from here config_free() owns it */
        for (int i = 0; i < n; i++) {
                const char *name = config_setting_get_string_elem(list, i);
                enum pas_map_field f;

                if (!name) {
                        problem_v(l, v, "%s[%d]: expected a field name (a string)", v->key, i);
                        continue;
                }
                if (pas_map_field_by_name(PAS_MAP_REFERRAL, name, strlen(name), &f) < 0 &&
                    pas_map_field_by_name(PAS_MAP_DOCUMENT, name, strlen(name), &f) < 0) {
                        problem_v(l, v, "%s[%d]: \"%.64s\" is not a referral or document field", v->key, i, name);
                        continue;
                }
                if (strcmp(name, "ubrn") == 0) {
                        problem_v(l, v, "%s[%d]: ubrn cannot be left unmapped", v->key, i);
                        continue;
                }
                names[i] = strdup(name);
                if (!names[i])
                        return conf_oom(l);
        }
        return l->n_problems == before ? 0 : -EINVAL;
}

static bool listed_unmapped(const struct config *c, const char *name) {
        for (char **u = c->map_unmapped; u && *u; u++)
                if (strcmp(*u, name) == 0)
                        return true;
        return false;
}

/* Every field a mapping statement offers is used, or listed in
 * database.mapping.unmapped: none is left out by oversight. */
static void check_mapping(struct loader *l) {
        struct config *c = config_of(l);
        const char *sql[PAS_MAP_KINDS_] = { c->map_referral, c->map_document };
        const char *at[PAS_MAP_KINDS_] = { c->map_referral_at, c->map_document_at };

        for (size_t kind = 0; kind < PAS_MAP_KINDS_; kind++) {
                struct pas_map_sql m = { 0 };
                struct errbuf e = { { 0 } };
                char missing[1024] = "";
                size_t o = 0;

                if (!sql[kind] || pas_map_rewrite((enum pas_map_kind) kind, sql[kind], &m, &e) < 0)
                        continue; /* absent, or reported already */
                for (size_t f = 0; f < MAP_FIELDS_; f++) {
                        const char *name = pas_map_field_name((enum pas_map_field) f);
                        int w;

                        if (pas_map_field_kind((enum pas_map_field) f) != kind ||
                            pas_map_uses(&m, (enum pas_map_field) f) || listed_unmapped(c, name))
                                continue;
                        w = snprintf(missing + o, sizeof missing - o, "%s:%s", o ? ", " : "", name);
                        if (w > 0 && (size_t) w < sizeof missing - o)
                                o += (size_t) w;
                }
                pas_map_sql_free(&m);
                if (o > 0)
                        conf_problem(l, at[kind], 0,
                                "database.mapping.%s: fields left unmapped: %s (map each, or list it in "
                                "database.mapping.unmapped)",
                                pas_map_kind_name((enum pas_map_kind) kind), missing);
        }
}

static int parse_ca_file(struct loader *l, const struct key *k, const struct value *v, void *field) {
        char **path = field;
        struct stat st;
        int r, fd;

        r = conf_parse_path(l, k, v, field);
        if (r < 0)
                return r;
        fd = regular_file_open(*path, &st);
        if (fd < 0) {
                problem_v(l, v, "%s: cannot read %s: %s", v->key, *path, regular_file_error(fd));
                return -EINVAL;
        }
        close(fd);
        return 0;
}

/* Whether the URL has part `what` (user, password, query, fragment). */
static bool url_has(CURLU *u, CURLUPart what) {
        char *s = NULL;
        CURLUcode rc = curl_url_get(u, what, &s, 0);

        curl_free(s);
        return rc == CURLUE_OK;
}

static int parse_base_url(struct loader *l, const struct key *k, const struct value *v, void *field) {
        const char *s = v->str;
        char *scheme = NULL, *host = NULL, *copy;
        bool https = strncasecmp(s, "https://", 8) == 0, http = strncasecmp(s, "http://", 7) == 0;
        CURLU *u = NULL;
        CURLUcode rc;
        size_t n;
        int r = -EINVAL;

        (void) k;
        /* The value is never quoted: a URL may carry a password. */
        if (!https && !http) {
                problem_v(l, v, "%s: must start with https:// (or http:// for a loopback host)", v->key);
                return -EINVAL;
        }
        if (s[https ? 8 : 7] == '/' || strpbrk(s, " \t")) {
                problem_v(l, v, "%s: not a valid URL", v->key);
                return -EINVAL;
        }
        u = curl_url();
        if (!u)
                return conf_oom(l);
        rc = curl_url_set(u, CURLUPART_URL, s, 0);
        if (rc == CURLUE_OUT_OF_MEMORY) {
                r = conf_oom(l);
                goto out;
        }
        if (rc != CURLUE_OK) {
                problem_v(l, v, "%s: not a valid URL (%s)", v->key, curl_url_strerror(rc));
                goto out;
        }
        if (curl_url_get(u, CURLUPART_SCHEME, &scheme, 0) != CURLUE_OK ||
            curl_url_get(u, CURLUPART_HOST, &host, 0) != CURLUE_OK || !host[0]) {
                problem_v(l, v, "%s: not a valid URL (no host)", v->key);
                goto out;
        }
        if (url_has(u, CURLUPART_USER) || url_has(u, CURLUPART_PASSWORD)) {
                problem_v(l, v, "%s: must not contain a user name or password; use ers.bearer_token_file",
                          v->key);
                goto out;
        }
        if (url_has(u, CURLUPART_QUERY) || url_has(u, CURLUPART_FRAGMENT)) {
                problem_v(l, v, "%s: must not have a query (?...) or fragment (#...)", v->key);
                goto out;
        }
        if (strcmp(scheme, "http") == 0 && !host_is_loopback(host)) {
                problem_v(l, v, "%s: http:// is allowed only for a loopback host (127.0.0.0/8, localhost, "
                          "[::1]); use https://", v->key);
                goto out;
        }

        /* Stored as written, less one trailing '/': endpoint paths are appended. */
        n = strlen(s);
        copy = strndup(s, n > 0 && s[n - 1] == '/' ? n - 1 : n);
        if (!copy) {
                r = conf_oom(l);
                goto out;
        }
        free(*(char **) field);
        *(char **) field = copy;
        r = 0;
out:
        curl_free(scheme);
        curl_free(host);
        curl_url_cleanup(u);
        return r;
}

static int parse_group(struct loader *l, const struct key *k, const struct value *v, void *field) {
        const struct key_table *t = k->arg;
        struct seen seen[TABLE_MAX] = { { 0 } };
        char prefix[KEY_PATH_MAX + 1];
        struct config *c = config_of(l);
        unsigned before = l->n_problems;

        (void) field;
        snprintf(prefix, sizeof prefix, "%s.", v->key);
        conf_load_table(l, t->keys, t->n, v->setting, prefix, c, seen);
        if (l->n_problems != before)
                return -EINVAL;
        if (!c->business_function != !c->ods_code) {
                problem_v(l, v, "%s: business_function and ods_code go together: set both or neither", v->key);
                return -EINVAL;
        }
        if (c->on_behalf_of && !c->business_function) {
                problem_v(l, v, "%s: on_behalf_of needs business_function and ods_code", v->key);
                return -EINVAL;
        }
        return 0;
}

/* worklists = ( { name = …; list_type = …; service = …; }, … ) */
static int parse_worklists(struct loader *l, const struct key *k, const struct value *v, void *field) {
        const config_setting_t *list = v->setting;
        struct config *c = config_of(l);
        unsigned n = (unsigned) config_setting_length(list), before = l->n_problems;
        struct worklist_conf *wl;

        (void) k;
        (void) field;
        if (n == 0) {
                problem_v(l, v, "%s: at least one worklist is required", v->key);
                return -EINVAL;
        }
        wl = calloc(n, sizeof *wl);
        if (!wl)
                return conf_oom(l);
        c->worklists = wl; /* from here config_free() owns it */
        c->n_worklists = n;

        for (unsigned i = 0; i < n; i++) {
                const config_setting_t *e = config_setting_get_elem(list, i);
                struct seen seen[N_WORKLIST_KEYS] = { { 0 } };
                char prefix[64];

                snprintf(prefix, sizeof prefix, "worklists[%u].", i);
                if (config_setting_type(e) != CONFIG_TYPE_GROUP) {
                        /* At the list's line: libconfig 1.5 gives a scalar in a list the line
                         * of the token after it, which may be the next line. */
                        problem_v(l, v, "worklists[%u]: expected a group { name = ...; list_type = ...; "
                                   "service = ...; }, found %s", i, conf_type_name(config_setting_type(e)));
                        continue;
                }
                conf_load_table(l, worklist_keys, N_WORKLIST_KEYS, e, prefix, &wl[i], seen);
                if (wl[i].n_poll_at == 0) { /* the default: the start of the working day and its middle */
                        wl[i].poll_at[0] = 7 * 60;
                        wl[i].poll_at[1] = 13 * 60;
                        wl[i].n_poll_at = 2;
                }

                for (unsigned j = 0; j < i; j++) {
                        const config_setting_t *ej = config_setting_get_elem(list, j);

                        if (wl[i].name && wl[j].name && strcmp(wl[i].name, wl[j].name) == 0)
                                problem_at(l, config_setting_get_member(e, "name"),
                                           "worklists[%u].name: \"%s\" is already the name of worklists[%u] "
                                           "(line %u)", i, wl[i].name, j, conf_setting_line(l, ej));
                        if (wl[i].list_type && wl[j].list_type && wl[i].service_id && wl[j].service_id &&
                            strcmp(wl[i].list_type, wl[j].list_type) == 0 &&
                            strcmp(wl[i].service_id, wl[j].service_id) == 0)
                                problem_at(l, e, "worklists[%u]: %s for service %s is already worklists[%u] "
                                           "(line %u)", i, wl[i].list_type, wl[i].service_id, j,
                                           conf_setting_line(l, ej));
                }
        }
        return l->n_problems == before ? 0 : -EINVAL;
}

/* worklists[i].poll_at = [ "HH:MM", … ]: 1 to SCHED_POLL_TIMES_MAX distinct UK times, kept ascending. */
static int parse_poll_at(struct loader *l, const struct key *k, const struct value *v, void *field) {
        struct worklist_conf *wl = (struct worklist_conf *) ((char *) field - k->offset);
        int n = config_setting_length(v->setting);

        if (n < 1 || n > SCHED_POLL_TIMES_MAX) {
                problem_v(l, v, "%s: needs 1 to %d times of day such as [\"07:00\", \"13:00\"]", v->key,
                          SCHED_POLL_TIMES_MAX);
                return -EINVAL;
        }
        wl->n_poll_at = 0;
        for (int i = 0; i < n; i++) {
                const config_setting_t *t = config_setting_get_elem(v->setting, (unsigned) i);
                const char *s = config_setting_type(t) == CONFIG_TYPE_STRING ? config_setting_get_string(t) : NULL;
                int minutes;
                size_t at;

                if (!s || sched_parse_hhmm(s, &minutes) < 0) {
                        problem_v(l, v, "%s[%d]: must be a UK time of day \"HH:MM\" (00:00 to 23:59)", v->key, i);
                        return -EINVAL;
                }
                for (at = 0; at < wl->n_poll_at && wl->poll_at[at] < minutes; at++)
                        ;
                if (at < wl->n_poll_at && wl->poll_at[at] == minutes) {
                        problem_v(l, v, "%s[%d]: \"%s\" is listed twice", v->key, i, s);
                        return -EINVAL;
                }
                memmove(&wl->poll_at[at + 1], &wl->poll_at[at], (wl->n_poll_at - at) * sizeof wl->poll_at[0]);
                wl->poll_at[at] = minutes;
                wl->n_poll_at++;
        }
        return 0;
}

/* A boolean (a bool at the row's offset); the default is written "true" or "false". */
static int parse_bool(struct loader *l, const struct key *k, const struct value *v, void *field) {
        (void) l;
        (void) k;
        *(bool *) field =
                v->setting ? config_setting_get_bool(v->setting) != 0 : strcmp(v->str, "true") == 0;
        return 0;
}

/* writeback.actions = [ "RECORD_REVIEW_OUTCOME", "ACCEPT_REFERRAL" ]: the actions sent (A036, cancel, is
 * never one). */
static int parse_wb_actions(struct loader *l, const struct key *k, const struct value *v, void *field) {
        int n = config_setting_length(v->setting);
        unsigned before = l->n_problems;

        (void) k;
        (void) field;
        for (int i = 0; i < n; i++) {
                const char *name = config_setting_get_string_elem(v->setting, i);
                unsigned bit = !name                                         ? 0
                               : strcmp(name, "RECORD_REVIEW_OUTCOME") == 0 ? CONFIG_WB_RECORD_REVIEW_OUTCOME
                               : strcmp(name, "ACCEPT_REFERRAL") == 0       ? CONFIG_WB_ACCEPT_REFERRAL
                                                                            : 0;
                if (!bit)
                        problem_v(l, v, "%s[%d]: must be \"RECORD_REVIEW_OUTCOME\" or \"ACCEPT_REFERRAL\"", v->key, i);
                else
                        config_of(l)->writeback_actions |= bit;
        }
        return l->n_problems == before ? 0 : -EINVAL;
}

/* ---- checks across keys ------------------------------------------------- */

/* The row index of `path` in config_keys[] (it exists). */
static size_t row(const char *path) {
        size_t i = 0;

        conf_find_key(config_keys, N_CONFIG_KEYS, path, &i);
        return i;
}

/* base_url's origin + "/oauth2/token", the token endpoint of every NHS API
 * platform environment. */
static void default_token_url(struct loader *l) {
        struct config *c = config_of(l);
        const char *host = c->base_url + (strncasecmp(c->base_url, "https://", 8) == 0 ? 8 : 7);
        int origin_len = (int) (host - c->base_url) + (int) strcspn(host, "/");

        if (asprintf(&c->token_url, "%.*s/oauth2/token", origin_len, c->base_url) < 0) {
                c->token_url = NULL;
                conf_oom(l);
        }
}

static void check_auth(struct loader *l, const struct seen *seen) {
        static const char *const jwt_keys[] = { "ers.api_key_file", "ers.private_key_file", "ers.key_id",
                                                "ers.token_url" };
        const struct seen *ers = &seen[row("ers")], *auth = &seen[row("ers.auth")];
        const struct seen *tf = &seen[row("ers.bearer_token_file")];
        struct config *c = config_of(l);
        const char *mode = c->auth == AUTH_JWT ? "jwt" : c->auth == AUTH_BEARER ? "bearer" : "none";
        bool bad = auth->bad || ers->bad || tf->bad;

        for (size_t i = 0; i < sizeof jwt_keys / sizeof jwt_keys[0]; i++)
                bad |= seen[row(jwt_keys[i])].bad;
        if (bad)
                return;
        if (c->auth == AUTH_BEARER) {
                if (!tf->setting)
                        problem_at(l, ers->setting, "ers.bearer_token_file: required when ers.auth is "
                                   "\"bearer\"");
                else
                        secret_read(l, tf->setting, "ers.bearer_token_file", c->bearer_token_file, SECRET_TOKEN,
                                    &c->bearer_token);
        } else if (tf->setting) {
                problem_at(l, tf->setting, "ers.bearer_token_file: set, but ers.auth is \"%s\": remove one "
                           "of them", mode);
        }
        if (c->auth == AUTH_JWT) {
                const struct seen *ak = &seen[row("ers.api_key_file")], *pk = &seen[row("ers.private_key_file")];

                for (size_t i = 0; i < 3; i++)
                        if (!seen[row(jwt_keys[i])].setting)
                                problem_at(l, ers->setting, "%s: required when ers.auth is \"jwt\"", jwt_keys[i]);
                if (ak->setting)
                        secret_read(l, ak->setting, "ers.api_key_file", c->api_key_file, SECRET_TOKEN, &c->api_key);
                if (pk->setting)
                        secret_read(l, pk->setting, "ers.private_key_file", c->private_key_file, SECRET_PEM,
                                    &c->private_key_pem);
                if (!c->token_url && c->base_url)
                        default_token_url(l);
        } else {
                for (size_t i = 0; i < sizeof jwt_keys / sizeof jwt_keys[0]; i++) {
                        const struct seen *k = &seen[row(jwt_keys[i])];
                        if (k->setting)
                                problem_at(l, k->setting, "%s: set, but ers.auth is \"%s\"; it is for \"jwt\"",
                                           jwt_keys[i], mode);
                }
        }
}

/* Mutual TLS: a certificate and its key, both or neither; the key a secret. */
static void check_client_cert(struct loader *l, const struct seen *seen) {
        const struct seen *cert = &seen[row("ers.client_cert_file")], *key = &seen[row("ers.client_key_file")];
        struct stat st;
        int fd;

        if (cert->bad || key->bad)
                return;
        if (!cert->setting != !key->setting) {
                problem_at(l, cert->setting ? cert->setting : key->setting,
                           "%s: set without %s: mutual TLS needs both", cert->setting ? "ers.client_cert_file" :
                           "ers.client_key_file", cert->setting ? "ers.client_key_file" : "ers.client_cert_file");
                return;
        }
        if (key->setting) {
                fd = secret_open(l, key->setting, "ers.client_key_file", config_of(l)->client_key_file, &st);
                if (fd >= 0)
                        close(fd);
        }
}

/*
 * The e-RS limits: a value beyond production's (more worklist calls or
 * requests, a quicker PENDING re-check or retry) is refused unless base_url
 * is a loopback address, i.e. the test suite's mock e-RS, which reads the
 * same worklists hundreds of times; then it is allowed and ersd says so at
 * start (c->test_limits).
 */
static void check_limits(struct loader *l, const struct seen *seen) {
        struct config *c = config_of(l);
        bool loopback;

        if (seen[row("ers.base_url")].bad || !c->base_url)
                return;
        loopback = url_is_loopback(c->base_url);
        for (size_t i = 0; i < N_CONFIG_KEYS; i++) {
                const struct key *k = &config_keys[i];
                long v;

                if (k->prod_max == 0 || !seen[i].setting || seen[i].bad)
                        continue;
                v = *(const long *) ((const char *) c + k->offset);
                if (v >= k->prod_min && v <= k->prod_max)
                        continue;
                if (loopback)
                        c->test_limits = true;
                else
                        problem_at(l, seen[i].setting, "%s: %ld is beyond what e-RS allows (%lld..%lld); a value "
                                   "outside that range is accepted only with a loopback ers.base_url (a test mock)",
                                   k->path, v, k->prod_min, k->prod_max);
        }
}

/* Every worklist of a service shares its budget: their poll times a day must fit in it. */
static void check_budget(struct loader *l, const struct seen *seen) {
        const config_setting_t *list = seen[row("worklists")].setting;
        struct config *c = config_of(l);

        if (!list || seen[row("worklists")].bad || c->worklist_calls_per_day <= 0)
                return; /* said already */
        for (size_t i = 0; i < c->n_worklists; i++) {
                size_t polls = 0;

                if (!c->worklists[i].service_id)
                        continue;
                for (size_t j = 0; j < c->n_worklists; j++)
                        if (c->worklists[j].service_id && strcmp(c->worklists[j].service_id, c->worklists[i].service_id) == 0)
                                polls += c->worklists[j].n_poll_at;
                if (polls > (size_t) c->worklist_calls_per_day)
                        problem_at(l, config_setting_get_elem(list, (unsigned) i),
                                   "worklists[%zu].poll_at: service %s would be read %zu times a day by its worklists, "
                                   "but ers.worklist_calls_per_day is %ld (e-RS allows 2): give its worklists fewer "
                                   "poll times", i, c->worklists[i].service_id, polls, c->worklist_calls_per_day);
        }
}

/* ---- the file ----------------------------------------------------------- */

int config_load(const char *path, config_report_fn report, void *userdata, struct config *ret) {
        struct loader l = { .path = path, .report = report, .userdata = userdata };
        struct seen seen[N_CONFIG_KEYS] = { { 0 } };
        struct config_text ct = { 0 };
        struct config c = { 0 };
        struct errbuf e = { { 0 } };
        config_t cfg;
        int r;

        /* The file and every file it includes, read and checked alike (conftext.h). */
        r = config_text_read(path, &ct, &e);
        if (r < 0) {
                if (r == -ENOMEM)
                        return conf_oom(&l);
                conf_report_line(&l, e.msg);
                return r;
        }
        l.dir = ct.dir;
        l.text = ct.text;
        l.ct = &ct;
        l.target = &c;

        config_init(&cfg);
        config_set_auto_convert(&cfg, CONFIG_FALSE);
        if (!config_read_string(&cfg, ct.text)) {
                const char *file;
                unsigned line;

                config_text_where(&ct, (unsigned) config_error_line(&cfg), &file, &line);
                conf_problem(&l, file, line, "%s", config_error_text(&cfg));
                r = -EINVAL;
                goto out;
        }

        c.path = strdup(path);
        if (!c.path) {
                r = conf_oom(&l);
                goto out;
        }
        conf_load_table(&l, config_keys, N_CONFIG_KEYS, config_root_setting(&cfg), "", &c, seen);
        if (!l.oom)
                check_auth(&l, seen);
        if (!l.oom)
                check_client_cert(&l, seen);
        if (!l.oom)
                check_limits(&l, seen);
        if (!l.oom)
                check_budget(&l, seen);
        if (!l.oom)
                check_mapping(&l);
        /* said once: a refused writeback.actions has its own line */
        if (!l.oom && c.writeback_enabled && !c.writeback_actions && !seen[row("writeback.actions")].bad)
                problem_at(&l, seen[row("writeback.enabled")].setting,
                           "writeback.enabled: true sends nothing without writeback.actions (name each action "
                           "the trust's use case is approved for)");
        r = l.oom ? -ENOMEM : l.n_problems > 0 ? -EINVAL : 0;
out:
        config_destroy(&cfg);
        config_text_free(&ct);
        if (r < 0) {
                config_free(&c);
                return r;
        }
        *ret = c;
        return 0;
}

void config_free(struct config *c) {
        if (!c)
                return;
        free(c->path);
        free(c->base_url);
        free(c->bearer_token_file);
        auth_wipe_free(c->bearer_token);
        free(c->business_function);
        free(c->ods_code);
        free(c->on_behalf_of);
        free(c->ca_file);
        free(c->api_key_file);
        auth_wipe_free(c->api_key);
        free(c->private_key_file);
        auth_wipe_free(c->private_key_pem);
        free(c->key_id);
        free(c->token_url);
        free(c->client_cert_file);
        free(c->client_key_file);
        for (size_t i = 0; c->worklists && i < c->n_worklists; i++) {
                free(c->worklists[i].name);
                free(c->worklists[i].list_type);
                free(c->worklists[i].service_id);
                free(c->worklists[i].service_at);
        }
        free(c->worklists);
        auth_wipe_free(c->odbc_connection);
        free(c->adapter);
        free(c->patient_lookup);
        free(c->patient_lookup_at);
        free(c->map_referral);
        free(c->map_referral_at);
        free(c->map_document);
        free(c->map_document_at);
        for (char **u = c->map_unmapped; u && *u; u++)
                free(*u);
        free(c->map_unmapped);
        free(c->state_dir);
        *c = (struct config) { 0 };
}

/* ---- reload ------------------------------------------------------------- */


unsigned config_check_reload(const struct config *running, const struct config *next, config_report_fn report,
                             void *userdata) {
        static const struct key_table tables[] = {
                { config_keys, N_CONFIG_KEYS },
                { user_restricted_keys, sizeof user_restricted_keys / sizeof user_restricted_keys[0] },
        };
        static const char *const prefixes[] = { "", "ers.user_restricted." };
        struct loader l = { .path = next->path ? next->path : "(config)", .report = report, .userdata = userdata };

        for (size_t t = 0; t < sizeof tables / sizeof tables[0]; t++)
                for (size_t i = 0; i < tables[t].n; i++) {
                        const struct key *k = &tables[t].keys[i];

                        if (!k->reloadable && !conf_field_equal(k, running, next))
                                conf_problem(&l, l.path, 0, "%s%s: changed, but takes effect only after a restart",
                                        prefixes[t], k->path);
                }
        return l.n_problems;
}

