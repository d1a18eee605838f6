/* SPDX-License-Identifier: MIT */
/*
 * config.c: reads ersd.conf (libconfig syntax) into struct config.
 *
 * Every key is one row of a static table (config_keys[] below, with two small
 * tables for the rows of a worklist and for ers.user_restricted): its path,
 * its libconfig type, the parser that checks and converts the value, the
 * offset of the field it fills, whether a reload may change it, whether it is
 * required, and its default written as it would be in the file.  Loading a
 * group walks every setting in it, in file order: a name not in the table is
 * an error, a wrong type is an error, otherwise the row's parser runs.  Then
 * each row that was not seen gets its default or, when required, an error.
 * Checks that span keys (auth needs a token file; business_function and
 * ods_code go together; worklists are unique) come after.
 *
 * Every problem is reported (the walk never stops at the first one) as
 * "FILE:LINE: KEY: message", or "FILE: KEY: message" when there is no line
 * (a key missing at the top level).  The result is built in a local struct
 * config that is handed over only when there was no problem.
 *
 * Secrets: a message never quotes a string value from the file unless that
 * value has passed its key's check (a worklist name, a list type), so neither
 * the bearer token, nor the connection string, nor a URL with a password, nor
 * a secret typed into the wrong key can reach a report line.  The token file's
 * path is not printed either (someone may have pasted the token there).
 */
#include "config.h"
#include "util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <libconfig.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <syslog.h>
#include <unistd.h>

#include "../adapters/mapping.h"
#include "auth.h"
#include "conftext.h"
#include "err.h"

#define TOKEN_FILE_MAX  (64 * 1024)   /* likewise a bearer token, API key or private key file */
#define CREDENTIAL_PREFIX "%d/"       /* a secret file in $CREDENTIALS_DIRECTORY (systemd LoadCredential=) */
#define KEY_PATH_MAX    128           /* longest key path we print or match */
#define TABLE_MAX       48            /* rows per table, for the seen[] arrays */
#define MIB             (1024 * 1024)

/* What sits at a row's offset, so that config_check_reload() can compare it. */
enum field_kind {
        FIELD_NONE,   /* nothing, or something the row's parser handles itself */
        FIELD_STRING, /* char * */
        FIELD_LONG,   /* long */
        FIELD_INT,    /* int */
        FIELD_INT64,  /* int64_t */
        FIELD_AUTH,   /* enum auth_mode */
};

/* The state of one load. */
struct loader {
        const char *path;          /* the file as the caller named it: the FILE of a report */
        const char *dir;           /* absolute directory of that file, for relative paths */
        const char *text;          /* the file's text with its includes, NUL-terminated */
        const struct config_text *ct; /* that text: which file and line each of its lines is */
        config_report_fn report;   /* may be NULL */
        void *userdata;
        struct config *c;          /* the struct being filled */
        unsigned n_problems;       /* reports so far */
        bool oom;                  /* an allocation failed: the load returns -ENOMEM */
};

/* A value to parse: a setting from the file, or a row's default. */
struct value {
        const config_setting_t *setting; /* NULL for a default */
        const char *str;                 /* CONFIG_TYPE_STRING */
        long long num;                   /* CONFIG_TYPE_INT */
        const char *file;                /* for reports */
        unsigned line;                   /* 0 for a default: reported without a line */
        const char *key;                 /* full path for messages, e.g. "worklists[1].name" */
};

struct key;

/* Checks v and stores it at `field`.  Returns 0, -EINVAL after reporting the
 * problem, or -ENOMEM (see oom()). */
typedef int (*key_parse_fn)(struct loader *l, const struct key *k, const struct value *v,
                            void *field);

struct key {
        const char *path;       /* relative to the table's group: "ers.base_url", "name" */
        int type;               /* CONFIG_TYPE_STRING, _INT (also takes INT64), _GROUP or _LIST */
        key_parse_fn parse;     /* NULL for a plain group whose keys are further rows */
        size_t offset;          /* of the field in the table's struct */
        enum field_kind kind;   /* what is at offset */
        bool reloadable;        /* a SIGHUP may change it (config_check_reload) */
        bool required;          /* missing is an error; no default */
        const char *def;        /* default as written in the file (without quotes); NULL: none */
        long long min, max;     /* range of an integer */
        long long prod_min, prod_max; /* when prod_max > 0: the range against a real e-RS; the rest
                                       * of min..max only when ers.base_url is loopback (a test mock) */
        const void *arg;        /* the parser's: allowed names, a character rule, a sub-table */
};

/* A sub-table, for parse_group(). */
struct key_table {
        const struct key *keys;
        size_t n;
};

/* A character rule for parse_chars(). */
struct chars_rule {
        const char *allowed; /* every character must be one of these */
        size_t max;          /* and there are 1..max of them */
        const char *what;    /* "must be …" in the message */
};

/* A name a string key may take and the number it stands for. */
struct choice {
        const char *name;
        int value;
};

/* What the loader knows of one row after the walk. */
struct seen {
        const config_setting_t *setting; /* where it is in the file; NULL: absent */
        bool bad;                        /* present but refused (already reported) */
};

static int parse_base_url(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_choice_int(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_choice_str(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_path(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_secret_path(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_ca_file(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_integer(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_mib(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_chars(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_connection(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_patient_lookup(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_mapping(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_unmapped(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_group(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_worklists(struct loader *l, const struct key *k, const struct value *v, void *field);
static int parse_poll_at(struct loader *l, const struct key *k, const struct value *v, void *field);

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

static const char *const adapter_names[] = {
        /* the adapters that exist (adapters/; adapter_names in adapters/odbc.c) */
        "auto", "sqlite", "postgresql", "mariadb", "sqlserver", "oracle", NULL,
};

static const enum pas_map_kind map_referral_kind = PAS_MAP_REFERRAL, map_document_kind = PAS_MAP_DOCUMENT;

static const char *const list_type_names[] = {
        "REFERRALS_FOR_REVIEW", "APPOINTMENT_SLOT_ISSUES", NULL,
};

#define NAME_CHARS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-"

static const struct chars_rule worklist_name_rule = {
        NAME_CHARS, 64, "1 to 64 characters from A-Z a-z 0-9 . _ -",
};
static const struct chars_rule service_rule = {
        "0123456789", 16, "an e-RS service id of 1 to 16 digits",
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

/* Row builders, so that each table reads as a table. */
#define RELOAD   true  /* a reload may change it */
#define RESTART  false /* only a restart applies a change (config_check_reload) */
#define REQUIRED true
#define OPTIONAL false

#define KEY_STRING(S, p, fn, field, reload, req, dflt, a)                                           \
        { .path = (p), .type = CONFIG_TYPE_STRING, .parse = (fn), .offset = offsetof(S, field),     \
          .kind = FIELD_STRING, .reloadable = (reload), .required = (req), .def = (dflt), .arg = (a) }
#define KEY_CHOICE(S, p, field, kind_, reload, dflt, choices)                                      \
        { .path = (p), .type = CONFIG_TYPE_STRING, .parse = parse_choice_int,                       \
          .offset = offsetof(S, field), .kind = (kind_), .reloadable = (reload), .def = (dflt),      \
          .arg = (choices) }
#define KEY_INT(S, p, fn, field, kind_, reload, dflt, lo, hi)                                      \
        { .path = (p), .type = CONFIG_TYPE_INT, .parse = (fn), .offset = offsetof(S, field),        \
          .kind = (kind_), .reloadable = (reload), .def = (dflt), .min = (lo), .max = (hi) }
/* An e-RS limit: plo..phi against a real e-RS, lo..hi against a loopback mock (check_limits()). */
#define KEY_LIMIT(S, p, field, dflt, lo, hi, plo, phi)                                              \
        { .path = (p), .type = CONFIG_TYPE_INT, .parse = parse_integer, .offset = offsetof(S, field), \
          .kind = FIELD_LONG, .reloadable = RELOAD, .def = (dflt), .min = (lo), .max = (hi),          \
          .prod_min = (plo), .prod_max = (phi) }
#define KEY_GROUP(p) { .path = (p), .type = CONFIG_TYPE_GROUP, .reloadable = RELOAD }
#define KEY_TABLE(p, t, fn, req, a)                                                                \
        { .path = (p), .type = (t), .parse = (fn), .reloadable = RELOAD, .required = (req), .arg = (a) }

/* ers.user_restricted { … }: fields of struct config. */
static const struct key user_restricted_keys[] = {
        KEY_STRING(struct config, "business_function", parse_chars, business_function, RELOAD, OPTIONAL, NULL,
                   &business_function_rule),
        KEY_STRING(struct config, "ods_code", parse_chars, ods_code, RELOAD, OPTIONAL, NULL, &ods_code_rule),
        KEY_STRING(struct config, "on_behalf_of", parse_chars, on_behalf_of, RELOAD, OPTIONAL, NULL,
                   &user_id_rule),
};
static const struct key_table user_restricted_table = {
        user_restricted_keys, sizeof user_restricted_keys / sizeof user_restricted_keys[0],
};

/* One element of worklists = ( { … }, … ): fields of struct worklist_conf. */
static const struct key worklist_keys[] = {
        KEY_STRING(struct worklist_conf, "name", parse_chars, name, RELOAD, REQUIRED, NULL, &worklist_name_rule),
        KEY_STRING(struct worklist_conf, "list_type", parse_choice_str, list_type, RELOAD, REQUIRED, NULL,
                   list_type_names),
        KEY_STRING(struct worklist_conf, "service", parse_chars, service_id, RELOAD, REQUIRED, NULL,
                   &service_rule),
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
        KEY_CHOICE(struct config, "ers.auth", auth, FIELD_AUTH, RELOAD, "bearer", auth_choices),
        KEY_STRING(struct config, "ers.bearer_token_file", parse_secret_path, bearer_token_file, RELOAD, OPTIONAL,
                   NULL, NULL), /* required when auth is "bearer": check_auth() */
        /* The next three are required when auth is "jwt", token_url defaults from base_url: check_auth(). */
        KEY_STRING(struct config, "ers.api_key_file", parse_secret_path, api_key_file, RELOAD, OPTIONAL, NULL,
                   NULL),
        KEY_STRING(struct config, "ers.private_key_file", parse_secret_path, private_key_file, RELOAD, OPTIONAL,
                   NULL, NULL),
        KEY_STRING(struct config, "ers.key_id", parse_chars, key_id, RELOAD, OPTIONAL, NULL, &key_id_rule),
        KEY_STRING(struct config, "ers.token_url", parse_base_url, token_url, RELOAD, OPTIONAL, NULL, NULL),
        KEY_STRING(struct config, "ers.ca_file", parse_ca_file, ca_file, RELOAD, OPTIONAL, NULL, NULL),
        /* Mutual TLS to the e-RS origin: both or neither (check_client_cert()). */
        KEY_STRING(struct config, "ers.client_cert_file", parse_ca_file, client_cert_file, RELOAD, OPTIONAL,
                   NULL, NULL),
        KEY_STRING(struct config, "ers.client_key_file", parse_secret_path, client_key_file, RELOAD, OPTIONAL,
                   NULL, NULL),
        KEY_INT(struct config, "ers.connect_timeout", parse_integer, connect_timeout_s, FIELD_LONG, RELOAD,
                "10", 1, 300),
        KEY_INT(struct config, "ers.stall_timeout", parse_integer, stall_timeout_s, FIELD_LONG, RELOAD,
                "60", 5, 3600),
        KEY_INT(struct config, "ers.transfer_timeout", parse_integer, transfer_timeout_s, FIELD_LONG, RELOAD,
                "60", 1, 3600),
        KEY_INT(struct config, "ers.min_transfer_rate", parse_integer, min_transfer_kib_s, FIELD_LONG, RELOAD,
                "32", 1, 1048576),
        KEY_INT(struct config, "ers.max_attachment_mib", parse_mib, max_attachment_bytes, FIELD_INT64, RELOAD,
                "100", 1, 2048),
        KEY_LIMIT(struct config, "ers.worklist_calls_per_day", worklist_calls_per_day, "2", 1, 100000, 1, 2),
        KEY_LIMIT(struct config, "ers.max_requests_per_second", max_requests_per_second, "10", 1, 10000, 1, 10),
        KEY_LIMIT(struct config, "ers.pending_recheck", pending_recheck_s, "300", 1, 86400, 300, 86400),
        KEY_INT(struct config, "ers.tries", parse_integer, tries, FIELD_LONG, RELOAD, "5", 1, 10),
        KEY_INT(struct config, "ers.parallel_fetches", parse_integer, parallel_fetches, FIELD_LONG, RELOAD, "4", 1,
                16),
        KEY_TABLE("ers.user_restricted", CONFIG_TYPE_GROUP, parse_group, OPTIONAL, &user_restricted_table),
        KEY_TABLE("worklists", CONFIG_TYPE_LIST, parse_worklists, REQUIRED, NULL),
        KEY_GROUP("database"),
        KEY_STRING(struct config, "database.connection", parse_connection, odbc_connection, RESTART, REQUIRED,
                   NULL, NULL),
        KEY_STRING(struct config, "database.adapter", parse_choice_str, adapter, RESTART, OPTIONAL, "auto",
                   adapter_names),
        KEY_STRING(struct config, "database.patient_lookup", parse_patient_lookup, patient_lookup, RESTART,
                   OPTIONAL, NULL, NULL),
        KEY_INT(struct config, "database.lease_seconds", parse_integer, lease_seconds, FIELD_LONG, RESTART, "0",
                0, 3600),
        KEY_GROUP("database.mapping"),
        KEY_STRING(struct config, "database.mapping.referral", parse_mapping, map_referral, RESTART, OPTIONAL, NULL,
                   &map_referral_kind),
        KEY_STRING(struct config, "database.mapping.document", parse_mapping, map_document, RESTART, OPTIONAL, NULL,
                   &map_document_kind),
        KEY_TABLE("database.mapping.unmapped", CONFIG_TYPE_ARRAY, parse_unmapped, OPTIONAL, NULL),
        KEY_STRING(struct config, "state_dir", parse_path, state_dir, RESTART, OPTIONAL, "/var/lib/ersd", NULL),
        KEY_INT(struct config, "poll_interval", parse_integer, poll_interval_s, FIELD_LONG, RELOAD, "300",
                60, 86400),
        KEY_LIMIT(struct config, "retry_delay", retry_delay_s, "60", 1, 3600, 60, 3600),
        KEY_INT(struct config, "park_after", parse_integer, park_after, FIELD_LONG, RELOAD, "5", 1, 100),
        KEY_LIMIT(struct config, "parked_retry", parked_retry_s, "21600", 1, 86400, 3600, 86400),
        KEY_INT(struct config, "overdue_after_minutes", parse_integer, overdue_after_min, FIELD_LONG, RELOAD,
                "120", 5, 10080),
        KEY_CHOICE(struct config, "log_level", log_level, FIELD_INT, RELOAD, "info", log_level_choices),
};

#define N_CONFIG_KEYS (sizeof config_keys / sizeof config_keys[0])
#define N_WORKLIST_KEYS (sizeof worklist_keys / sizeof worklist_keys[0])

_Static_assert(N_CONFIG_KEYS <= TABLE_MAX, "raise TABLE_MAX");

/* ---- reporting ---------------------------------------------------------- */

static void report_line(struct loader *l, const char *line);

/* Reports one problem: "FILE:LINE: message", or "FILE: message" when line is
 * 0.  err_set() replaces control characters, so no value can forge a line. */
__attribute__((format(printf, 4, 5)))
static void problem(struct loader *l, const char *file, unsigned line, const char *fmt, ...) {
        char msg[ERRBUF_MAX];
        struct errbuf e;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (line > 0)
                err_set(&e, 0, "%s:%u: %s", file, line, msg);
        else
                err_set(&e, 0, "%s: %s", file, msg);
        report_line(l, e.msg);
}

/* Reports one line as it is (already "FILE[:LINE]: message", made safe by err_set()). */
static void report_line(struct loader *l, const char *line) {
        l->n_problems++;
        if (l->report)
                l->report(l->userdata, line);
}

/* The file a setting was written in, and its line there (0: none). */
static const char *setting_file(const struct loader *l, const config_setting_t *s) {
        const char *file = l->path;
        unsigned line = 0;

        if (s && l->ct)
                config_text_where(l->ct, config_setting_source_line(s), &file, &line);
        return file;
}

static unsigned setting_line(const struct loader *l, const config_setting_t *s) {
        const char *file;
        unsigned line = 0;

        if (s && l->ct)
                config_text_where(l->ct, config_setting_source_line(s), &file, &line);
        return line;
}

/* Reports at a setting (its file and line). */
#define problem_at(l, s, ...) problem((l), setting_file((l), (s)), setting_line((l), (s)), __VA_ARGS__)

/* Reports at a value (a setting or a default). */
#define problem_v(l, v, ...) problem((l), (v)->file, (v)->line, __VA_ARGS__)

/* Called when an allocation fails: one report, then the load returns -ENOMEM. */
static int oom(struct loader *l) {
        if (!l->oom)
                problem(l, l->path, 0, "out of memory");
        l->oom = true;
        return -ENOMEM;
}

static const char *type_name(int type) {
        switch (type) {
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:
                return "an integer";
        case CONFIG_TYPE_FLOAT:
                return "a floating-point number";
        case CONFIG_TYPE_STRING:
                return "a string";
        case CONFIG_TYPE_BOOL:
                return "a boolean";
        case CONFIG_TYPE_GROUP:
                return "a group { ... }";
        case CONFIG_TYPE_ARRAY:
                return "an array [ ... ]";
        case CONFIG_TYPE_LIST:
                return "a list ( ... )";
        default:
                return "something else";
        }
}

/* ---- small helpers ------------------------------------------------------ */

static void wipe_free(char *s) {
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

static int dup_string(struct loader *l, const char *s, char **field) {
        char *d = strdup(s);

        if (!d)
                return oom(l);
        free(*field);
        *field = d;
        return 0;
}

static void store_int(void *field, enum field_kind kind, long long v) {
        switch (kind) {
        case FIELD_LONG:
                *(long *) field = (long) v;
                break;
        case FIELD_INT:
                *(int *) field = (int) v;
                break;
        case FIELD_INT64:
                *(int64_t *) field = (int64_t) v;
                break;
        case FIELD_AUTH:
                *(enum auth_mode *) field = (enum auth_mode) v;
                break;
        case FIELD_NONE:
        case FIELD_STRING:
                break;
        }
}

static bool has_control_char(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

/* "a, b or c" from a NULL-terminated list, for a message. */
static void join_names(char *buf, size_t size, const char *const *names, const char *quote) {
        size_t n = 0, used = 0;

        while (names[n])
                n++;
        buf[0] = '\0';
        for (size_t i = 0; i < n && used < size; i++) {
                int w = snprintf(buf + used, size - used, "%s%s%s%s",
                                 i == 0 ? "" : i + 1 == n ? " or " : ", ", quote, names[i], quote);
                if (w < 0)
                        break;
                used += (size_t) w;
        }
}

/* Joins the config file's directory and `p` unless `p` is absolute. */
static int resolve_path(struct loader *l, const char *p, char **ret) {
        size_t dl, pl;
        char *s;

        if (p[0] == '/')
                return dup_string(l, p, ret);
        while (p[0] == '.' && p[1] == '/')
                p += 2;
        dl = strlen(l->dir);
        pl = strlen(p);
        s = malloc(dl + 1 + pl + 1);
        if (!s)
                return oom(l);
        memcpy(s, l->dir, dl);
        if (dl == 0 || s[dl - 1] != '/')
                s[dl++] = '/';
        memcpy(s + dl, p, pl + 1);
        free(*ret);
        *ret = s;
        return 0;
}

/* ---- parsers ------------------------------------------------------------ */

static int parse_integer(struct loader *l, const struct key *k, const struct value *v, void *field) {
        (void) l;
        store_int(field, k->kind, v->num);
        return 0;
}

static int parse_mib(struct loader *l, const struct key *k, const struct value *v, void *field) {
        (void) l;
        store_int(field, k->kind, v->num * MIB);
        return 0;
}

static int parse_choice_int(struct loader *l, const struct key *k, const struct value *v, void *field) {
        const struct choice *c;
        const char *names[16];
        char list[256];
        size_t n = 0;

        for (c = k->arg; c->name; c++)
                if (strcmp(c->name, v->str) == 0) {
                        store_int(field, k->kind, c->value);
                        return 0;
                }
        for (c = k->arg; c->name && n + 1 < sizeof names / sizeof names[0]; c++)
                names[n++] = c->name;
        names[n] = NULL;
        join_names(list, sizeof list, names, "\"");
        problem_v(l, v, "%s: must be %s", v->key, list);
        return -EINVAL;
}

static int parse_choice_str(struct loader *l, const struct key *k, const struct value *v, void *field) {
        const char *const *names = k->arg;
        char list[256];

        for (size_t i = 0; names[i]; i++)
                if (strcmp(names[i], v->str) == 0)
                        return dup_string(l, names[i], field);
        join_names(list, sizeof list, names, "");
        problem_v(l, v, "%s: must be %s", v->key, list);
        return -EINVAL;
}

static int parse_chars(struct loader *l, const struct key *k, const struct value *v, void *field) {
        const struct chars_rule *rule = k->arg;
        size_t n = strlen(v->str);

        if (n > rule->max || strspn(v->str, rule->allowed) != n) {
                problem_v(l, v, "%s: must be %s", v->key, rule->what);
                return -EINVAL;
        }
        return dup_string(l, v->str, field);
}

static int parse_connection(struct loader *l, const struct key *k, const struct value *v, void *field) {
        (void) k;
        /* Never quote it: it may hold a password. */
        if (!strchr(v->str, '=')) {
                problem_v(l, v, "%s: not an ODBC connection string (expected \"DSN=name\" or "
                          "\"Driver=...;...\")", v->key);
                return -EINVAL;
        }
        return dup_string(l, v->str, field);
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
        free(l->c->patient_lookup_at);
        l->c->patient_lookup_at = NULL;
        if (asprintf(&l->c->patient_lookup_at, "%s:%u", v->file, v->line) < 0) {
                l->c->patient_lookup_at = NULL;
                return oom(l);
        }
        return dup_string(l, v->str, field);
}

/* A mapping statement (adapters/mapping.h): its named parameters are
 * checked here, without a database (ersd --check-config then prepares it);
 * where it was written is kept for the reports.  Never quoted. */
static int parse_mapping(struct loader *l, const struct key *k, const struct value *v, void *field) {
        enum pas_map_kind kind = *(const enum pas_map_kind *) k->arg;
        char **at = kind == PAS_MAP_REFERRAL ? &l->c->map_referral_at : &l->c->map_document_at;
        struct pas_map_sql m = { 0 };
        struct errbuf e = { { 0 } };
        int r;

        r = pas_map_rewrite(kind, v->str, &m, &e);
        if (r == -ENOMEM)
                return oom(l);
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
                return oom(l);
        }
        return dup_string(l, v->str, field);
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
                return oom(l);
        l->c->map_unmapped = names; /* from here config_free() owns it */
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
                        return oom(l);
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
        struct config *c = l->c;
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
                        problem(l, at[kind], 0,
                                "database.mapping.%s: fields left unmapped: %s (map each, or list it in "
                                "database.mapping.unmapped)",
                                pas_map_kind_name((enum pas_map_kind) kind), missing);
        }
}

static int parse_path(struct loader *l, const struct key *k, const struct value *v, void *field) {
        (void) k;
        return resolve_path(l, v->str, field);
}

/* A secret file: like a path, but "%d/NAME" is NAME in $CREDENTIALS_DIRECTORY
 * (systemd's LoadCredential=/SetCredentialEncrypted=; %d is the same
 * specifier in the unit file).  The path is never printed. */
static int parse_secret_path(struct loader *l, const struct key *k, const struct value *v, void *field) {
        const char *dir = getenv("CREDENTIALS_DIRECTORY"), *name = v->str + strlen(CREDENTIAL_PREFIX);
        char *s;

        if (strncmp(v->str, CREDENTIAL_PREFIX, strlen(CREDENTIAL_PREFIX)) != 0)
                return parse_path(l, k, v, field);
        if (!dir || dir[0] != '/') {
                problem_v(l, v, "%s: starts with %s (a systemd credential) but $CREDENTIALS_DIRECTORY is not set: "
                          "add LoadCredential= to the unit, or give a path", v->key, CREDENTIAL_PREFIX);
                return -EINVAL;
        }
        if (!name[0] || strchr(name, '/') || strcmp(name, "..") == 0 || strcmp(name, ".") == 0) {
                problem_v(l, v, "%s: %sNAME needs a credential name without '/'", v->key, CREDENTIAL_PREFIX);
                return -EINVAL;
        }
        if (asprintf(&s, "%s/%s", dir, name) < 0)
                return oom(l);
        free(*(char **) field);
        *(char **) field = s;
        return 0;
}

static int parse_ca_file(struct loader *l, const struct key *k, const struct value *v, void *field) {
        char **path = field;
        struct stat st;
        int r, fd;

        r = parse_path(l, k, v, field);
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
                return oom(l);
        rc = curl_url_set(u, CURLUPART_URL, s, 0);
        if (rc == CURLUE_OUT_OF_MEMORY) {
                r = oom(l);
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
                r = oom(l);
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

/* ---- the walk ----------------------------------------------------------- */

static const struct key *find_key(const struct key *keys, size_t n, const char *path, size_t *ret_index) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(keys[i].path, path) == 0) {
                        if (ret_index)
                                *ret_index = i;
                        return &keys[i];
                }
        return NULL;
}

static bool type_ok(const struct key *k, const config_setting_t *s) {
        int t = config_setting_type(s);

        if (k->type == CONFIG_TYPE_INT)
                return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
        return t == k->type;
}

static bool is_name_char(char ch) {
        return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
               ch == '_' || ch == '-' || ch == '*';
}

/*
 * libconfig 1.5 reads an integer literal too large for 32 bits as a silently
 * wrapped int (10000000000 becomes 1410065408, 4294967396 becomes 100).  So
 * for an int setting of the main file, find "name = literal" on its line and
 * check the literal reads back as the same number.  A literal it cannot find
 * there (value on the next line) is given the benefit of the doubt.
 */
static bool int_literal_wrapped(const struct loader *l, const config_setting_t *s) {
        const char *name = config_setting_name(s), *p = l->text, *end;
        unsigned line = config_setting_source_line(s);
        size_t len;

        if (config_setting_type(s) != CONFIG_TYPE_INT || config_setting_source_file(s) || !name || !p)
                return false;
        for (unsigned i = 1; i < line && p; i++) {
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        if (!p)
                return false;
        end = strchr(p, '\n');
        if (!end)
                end = p + strlen(p);
        len = strlen(name);
        for (const char *q = p; q + len <= end; q++) {
                const char *r = q + len;
                char *e;
                long long n;
                int base = 10;

                if (memcmp(q, name, len) != 0 || (q > p && is_name_char(q[-1])) || is_name_char(*r))
                        continue;
                r += strspn(r, " \t");
                if (*r != '=' && *r != ':')
                        continue;
                r++;
                r += strspn(r, " \t");
                if ((r[0] == '0' && (r[1] == 'x' || r[1] == 'X')) ||
                    ((r[0] == '-' || r[0] == '+') && r[1] == '0' && (r[2] == 'x' || r[2] == 'X')))
                        base = 16;
                errno = 0;
                n = strtoll(r, &e, base);
                if (e == r)
                        continue;
                return errno == ERANGE || n != config_setting_get_int64(s);
        }
        return false;
}

/* Type-independent checks, then the row's parser. */
static int parse_value(struct loader *l, const struct key *k, const struct value *v, void *base) {
        if (k->type == CONFIG_TYPE_INT && (v->num < k->min || v->num > k->max)) {
                problem_v(l, v, "%s: %lld is out of range %lld..%lld", v->key, v->num, k->min, k->max);
                return -EINVAL;
        }
        if (k->type == CONFIG_TYPE_STRING) {
                if (!v->str[0]) {
                        problem_v(l, v, "%s: must not be empty", v->key);
                        return -EINVAL;
                }
                if (has_control_char(v->str)) {
                        problem_v(l, v, "%s: must not contain control characters", v->key);
                        return -EINVAL;
                }
        }
        return k->parse(l, k, v, (char *) base + k->offset);
}

static void value_from_setting(const struct loader *l, const config_setting_t *s, const char *key,
                               struct value *ret) {
        *ret = (struct value) {
                .setting = s,
                .file = setting_file(l, s),
                .line = setting_line(l, s),
                .key = key,
        };
        if (config_setting_type(s) == CONFIG_TYPE_STRING)
                ret->str = config_setting_get_string(s);
        else if (config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64)
                ret->num = config_setting_get_int64(s);
}

/* Walks every setting of `group` (whose rows have paths starting `rel`). */
static void walk_group(struct loader *l, const struct key *keys, size_t n_keys, const config_setting_t *group,
                       const char *rel, const char *prefix, void *base, struct seen *seen) {
        int n = config_setting_length(group);

        for (int i = 0; i < n; i++) {
                const config_setting_t *s = config_setting_get_elem(group, (unsigned) i);
                const char *name = config_setting_name(s);
                char path[KEY_PATH_MAX], key[KEY_PATH_MAX + 64];
                const struct key *k = NULL;
                struct value v;
                size_t ki = 0;
                int w;

                w = snprintf(path, sizeof path, "%s%s", rel, name ? name : "");
                if (w > 0 && (size_t) w < sizeof path)
                        k = find_key(keys, n_keys, path, &ki);
                snprintf(key, sizeof key, "%s%s", prefix, path);
                if (!k) {
                        problem_at(l, s, "%s: unknown key", key);
                        continue;
                }
                seen[ki].setting = s;
                if (!type_ok(k, s)) {
                        problem_at(l, s, "%s: expected %s, found %s", key, type_name(k->type),
                                   type_name(config_setting_type(s)));
                        seen[ki].bad = true;
                        continue;
                }
                if (!k->parse) {
                        char sub[KEY_PATH_MAX + 1];

                        snprintf(sub, sizeof sub, "%s.", path);
                        walk_group(l, keys, n_keys, s, sub, prefix, base, seen);
                        continue;
                }
                if (k->type == CONFIG_TYPE_INT && int_literal_wrapped(l, s)) {
                        problem_at(l, s, "%s: number too large (out of range %lld..%lld)", key, k->min,
                                   k->max);
                        seen[ki].bad = true;
                        continue;
                }
                value_from_setting(l, s, key, &v);
                if (parse_value(l, k, &v, base) < 0)
                        seen[ki].bad = true;
        }
}

/* The row of the nearest enclosing plain group of row `i` that is present in
 * the file, or NULL when there is none (the table's own group encloses it). */
static const struct seen *present_parent(const struct key *keys, size_t n_keys, const struct seen *seen,
                                         size_t i) {
        char path[KEY_PATH_MAX];
        char *dot;

        snprintf(path, sizeof path, "%s", keys[i].path);
        while ((dot = strrchr(path, '.'))) {
                size_t pi;

                *dot = '\0';
                if (find_key(keys, n_keys, path, &pi) && seen[pi].setting)
                        return &seen[pi];
        }
        return NULL;
}

/*
 * Loads `group` through the table `keys`: every setting in it must be a row;
 * every row absent from it gets its default, or is reported missing at the
 * line of its nearest enclosing group.  Messages name keys as prefix + path.
 * Fields are at base + offset.  seen[] (n_keys of them, zeroed) tells the
 * caller what was found.
 */
static void load_table(struct loader *l, const struct key *keys, size_t n_keys, const config_setting_t *group,
                       const char *prefix, void *base, struct seen *seen) {
        walk_group(l, keys, n_keys, group, "", prefix, base, seen);

        for (size_t i = 0; i < n_keys; i++) {
                const struct key *k = &keys[i];
                const struct seen *parent;
                const config_setting_t *at;
                char key[KEY_PATH_MAX + 64];
                struct value v;

                if (seen[i].setting || !k->parse)
                        continue;
                parent = present_parent(keys, n_keys, seen, i);
                if (parent && parent->bad)
                        continue; /* its group has the wrong type: said already */
                at = parent ? parent->setting : group;
                snprintf(key, sizeof key, "%s%s", prefix, k->path);
                if (k->required) {
                        problem_at(l, at, "%s: required key missing", key);
                        continue;
                }
                if (!k->def)
                        continue;
                v = (struct value) { .str = k->def, .file = l->path, .key = key };
                if (k->type == CONFIG_TYPE_INT)
                        v.num = strtoll(k->def, NULL, 10);
                (void) parse_value(l, k, &v, base);
        }
}

/* ers.user_restricted { … } */
static int parse_group(struct loader *l, const struct key *k, const struct value *v, void *field) {
        const struct key_table *t = k->arg;
        struct seen seen[TABLE_MAX] = { { 0 } };
        char prefix[KEY_PATH_MAX + 1];
        struct config *c = l->c;
        unsigned before = l->n_problems;

        (void) field;
        snprintf(prefix, sizeof prefix, "%s.", v->key);
        load_table(l, t->keys, t->n, v->setting, prefix, c, seen);
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
        struct config *c = l->c;
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
                return oom(l);
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
                                   "service = ...; }, found %s", i, type_name(config_setting_type(e)));
                        continue;
                }
                load_table(l, worklist_keys, N_WORKLIST_KEYS, e, prefix, &wl[i], seen);
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
                                           "(line %u)", i, wl[i].name, j, setting_line(l, ej));
                        if (wl[i].list_type && wl[j].list_type && wl[i].service_id && wl[j].service_id &&
                            strcmp(wl[i].list_type, wl[j].list_type) == 0 &&
                            strcmp(wl[i].service_id, wl[j].service_id) == 0)
                                problem_at(l, e, "worklists[%u]: %s for service %s is already worklists[%u] "
                                           "(line %u)", i, wl[i].list_type, wl[i].service_id, j,
                                           setting_line(l, ej));
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

/* ---- checks across keys ------------------------------------------------- */

/* How read_secret() checks what it read. */
enum secret_kind {
        SECRET_TOKEN, /* one word of visible ASCII (it goes into an HTTP header or a JWT claim) */
        SECRET_PEM,   /* a PEM RSA private key (auth_check_private_key) */
};

/*
 * Opens the secret file `path` (the setting s names it; the path itself is
 * never printed) and checks it is a regular file owned by the user ersd runs
 * as (or root, for a systemd credential: systemd owns those) and gives group
 * and others no permission at all.  Returns the fd, or -EINVAL after
 * reporting.
 */
static int open_secret(struct loader *l, const config_setting_t *s, const char *key, const char *path,
                       struct stat *st) {
        const char *cred_dir = getenv("CREDENTIALS_DIRECTORY");
        bool credential = cred_dir && cred_dir[0] == '/' && strncmp(path, cred_dir, strlen(cred_dir)) == 0 &&
                          path[strlen(cred_dir)] == '/';
        int fd = regular_file_open(path, st);

        if (fd < 0) {
                problem_at(l, s, "%s: cannot read: %s", key, regular_file_error(fd));
                return -EINVAL;
        }
        if (st->st_mode & (S_IRWXG | S_IRWXO)) {
                problem_at(l, s, "%s: must not be accessible by group or others (mode %04o); chmod 600 it", key,
                           (unsigned) (st->st_mode & 07777));
                close(fd);
                return -EINVAL;
        }
        if (st->st_uid != geteuid() && !(credential && st->st_uid == 0)) {
                problem_at(l, s, "%s: owned by uid %u, not by the user ersd runs as (uid %u); chown it", key,
                           (unsigned) st->st_uid, (unsigned) geteuid());
                close(fd);
                return -EINVAL;
        }
        return fd;
}

/* Reads the secret file `path` into *ret (owned; wiped when freed) after
 * open_secret()'s checks.  `s` is its setting, for reports. */
static void read_secret(struct loader *l, const config_setting_t *s, const char *key, const char *path,
                        enum secret_kind kind, char **ret) {
        struct stat st;
        struct errbuf e;
        char *buf = NULL;
        size_t len = 0, cap = 0;
        int fd, r;

        fd = open_secret(l, s, key, path, &st);
        if (fd < 0)
                return;
        r = fd_read_text(fd, &st, TOKEN_FILE_MAX, &buf, &len);
        if (r == -EFBIG)
                problem_at(l, s, "%s: larger than %d bytes: not a %s", key, TOKEN_FILE_MAX,
                           kind == SECRET_PEM ? "private key" : "token or key");
        else if (r == -ENOMEM)
                oom(l);
        else if (r < 0)
                problem_at(l, s, "%s: cannot read: %s", key, strerror(-r));
        if (r < 0)
                goto out;
        cap = len + 1;
        if (kind == SECRET_PEM) {
                if (memchr(buf, '\0', len) || auth_check_private_key(buf, len, &e) < 0) {
                        problem_at(l, s, "%s: %s", key, memchr(buf, '\0', len) ? "not a PEM private key" : e.msg);
                        goto out;
                }
        } else {
                while (len > 0 && strchr(" \t\r\n\v\f", buf[len - 1]))
                        len--;
                buf[len] = '\0';
                if (len == 0) {
                        problem_at(l, s, "%s: the file is empty", key);
                        goto out;
                }
                for (size_t i = 0; i < len; i++)
                        if ((unsigned char) buf[i] <= 0x20 || (unsigned char) buf[i] >= 0x7f) {
                                /* It goes into an HTTP header: no space, control or non-ASCII byte. */
                                problem_at(l, s, "%s: the %s contains a space, control or non-ASCII character", key,
                                           strcmp(key, "ers.bearer_token_file") == 0 ? "token" : "key");
                                goto out;
                        }
        }
        *ret = buf; /* handed over: no second copy of the secret */
        buf = NULL;
out:
        if (buf) {
                explicit_bzero(buf, cap);
                free(buf);
        }
        close(fd);
}

/* The row index of `path` in config_keys[] (it exists). */
static size_t row(const char *path) {
        size_t i = 0;

        find_key(config_keys, N_CONFIG_KEYS, path, &i);
        return i;
}

/* base_url's origin + "/oauth2/token", the token endpoint of every NHS API
 * platform environment. */
static void default_token_url(struct loader *l) {
        struct config *c = l->c;
        const char *host = c->base_url + (strncasecmp(c->base_url, "https://", 8) == 0 ? 8 : 7);
        int origin_len = (int) (host - c->base_url) + (int) strcspn(host, "/");

        if (asprintf(&c->token_url, "%.*s/oauth2/token", origin_len, c->base_url) < 0) {
                c->token_url = NULL;
                oom(l);
        }
}

static void check_auth(struct loader *l, const struct seen *seen) {
        static const char *const jwt_keys[] = { "ers.api_key_file", "ers.private_key_file", "ers.key_id",
                                                "ers.token_url" };
        const struct seen *ers = &seen[row("ers")], *auth = &seen[row("ers.auth")];
        const struct seen *tf = &seen[row("ers.bearer_token_file")];
        struct config *c = l->c;
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
                        read_secret(l, tf->setting, "ers.bearer_token_file", c->bearer_token_file, SECRET_TOKEN,
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
                        read_secret(l, ak->setting, "ers.api_key_file", c->api_key_file, SECRET_TOKEN, &c->api_key);
                if (pk->setting)
                        read_secret(l, pk->setting, "ers.private_key_file", c->private_key_file, SECRET_PEM,
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
                fd = open_secret(l, key->setting, "ers.client_key_file", l->c->client_key_file, &st);
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
        struct config *c = l->c;
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
        struct config *c = l->c;

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
                        return oom(&l);
                report_line(&l, e.msg);
                return r;
        }
        l.dir = ct.dir;
        l.text = ct.text;
        l.ct = &ct;
        l.c = &c;

        config_init(&cfg);
        config_set_auto_convert(&cfg, CONFIG_FALSE);
        if (!config_read_string(&cfg, ct.text)) {
                const char *file;
                unsigned line;

                config_text_where(&ct, (unsigned) config_error_line(&cfg), &file, &line);
                problem(&l, file, line, "%s", config_error_text(&cfg));
                r = -EINVAL;
                goto out;
        }

        c.path = strdup(path);
        if (!c.path) {
                r = oom(&l);
                goto out;
        }
        load_table(&l, config_keys, N_CONFIG_KEYS, config_root_setting(&cfg), "", &c, seen);
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
        wipe_free(c->bearer_token);
        free(c->business_function);
        free(c->ods_code);
        free(c->on_behalf_of);
        free(c->ca_file);
        free(c->api_key_file);
        wipe_free(c->api_key);
        free(c->private_key_file);
        wipe_free(c->private_key_pem);
        free(c->key_id);
        free(c->token_url);
        free(c->client_cert_file);
        free(c->client_key_file);
        for (size_t i = 0; c->worklists && i < c->n_worklists; i++) {
                free(c->worklists[i].name);
                free(c->worklists[i].list_type);
                free(c->worklists[i].service_id);
        }
        free(c->worklists);
        wipe_free(c->odbc_connection);
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

static bool field_equal(const struct key *k, const struct config *a, const struct config *b) {
        const void *pa = (const char *) a + k->offset, *pb = (const char *) b + k->offset;

        switch (k->kind) {
        case FIELD_STRING: {
                const char *sa = *(char *const *) pa, *sb = *(char *const *) pb;
                return sa == sb || (sa && sb && strcmp(sa, sb) == 0);
        }
        case FIELD_LONG:
                return *(const long *) pa == *(const long *) pb;
        case FIELD_INT:
                return *(const int *) pa == *(const int *) pb;
        case FIELD_INT64:
                return *(const int64_t *) pa == *(const int64_t *) pb;
        case FIELD_AUTH:
                return *(const enum auth_mode *) pa == *(const enum auth_mode *) pb;
        case FIELD_NONE:
                break;
        }
        return true;
}

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

                        if (!k->reloadable && !field_equal(k, running, next))
                                problem(&l, l.path, 0, "%s%s: changed, but takes effect only after a restart",
                                        prefixes[t], k->path);
                }
        return l.n_problems;
}
