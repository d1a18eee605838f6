/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of daemon/config.c.
 *
 * Each case writes its configuration to ersd.conf in a temporary directory
 * (made by the group setup, with the token and CA files the cases name) and
 * loads it.  The bad cases are one table: the text, the return expected, and
 * every report line expected, exactly, after the file name.  Every report line
 * of every test also goes through a check that it never holds the token or
 * the connection string's password.
 *
 * Run from the repository root (the shipped conf/ersd.conf is read from there).
 * Linked with the Makefile's ALLOC_WRAP, the allocation test fails each
 * allocation of a load in turn (tests/support/failalloc.h); without it the test
 * fails, saying so.
 */
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <syslog.h>
#include <unistd.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "adapters/adapter.h"
#include "daemon/config.h"
#include "daemon/err.h"
#include "tests/support/failalloc.h"

/* Secrets: no report line may ever contain these. */
#define TOKEN_MARK    "3f9a1c7e5b2d4f60"
#define TOKEN         "tok-" TOKEN_MARK "a8e1.Zz_~+/="
#define PASSWORD_MARK "Hunter2-secret"
#define CONN          "Driver=PostgreSQL;Server=pas-db;UID=ersd;PWD=" PASSWORD_MARK
#define CONN_MARK     "Server=pas-db"

#define MAX_LINES 16

/* A referral mapping naming every field but :pathway_start and :state_comment. */
#define MAP_MOST                                                                                                   \
        "INSERT INTO inbound VALUES (:ubrn, :version, :nhs_number, :nhs_number_valid, :priority, :state, "         \
        ":state_reason, :specialty, :specialty_display, :service_id, :service_name, :referral_type, "              \
        ":clinical_info_first_submitted, :appointment_start, :appointment_end, :commissioning_org, :request_id, "  \
        ":status, :intent, :worklist, :synced_at, :pas_patient_id, :patient_match, :clinical_info_last_updated, "   \
        ":state_reason_system, :state_reason_display, :appointment_reference, :appointment_status, "              \
        ":appointment_created, :appointment_reason, :appointment_reason_system, :appointment_reason_display, "    \
        ":appointment_comment, :appointment_slot, :appointment_clinician, :clinic_type, :named_clinician, "      \
        ":advice_request, :additional_requirements)"
#define MAP_DB(lines) "database: {\n  connection = \"DSN=pas\";\n  mapping: {\n" lines "  };\n};\n"

static char dir[PATH_MAX];       /* the temporary directory, absolute, resolved */
static char conf_path[PATH_MAX + 16]; /* dir/ersd.conf */

static struct {
        char line[MAX_LINES][ERRBUF_MAX];
        size_t n;
} reports;

static bool secret_reported; /* sticky: checked by every test */

static void collect(void *userdata, const char *line) {
        (void) userdata;
        if (strstr(line, TOKEN_MARK) || strstr(line, PASSWORD_MARK) || strstr(line, CONN_MARK))
                secret_reported = true;
        if (reports.n < MAX_LINES)
                snprintf(reports.line[reports.n], sizeof reports.line[0], "%s", line);
        reports.n++;
}

static void print_reports(void) {
        for (size_t i = 0; i < reports.n && i < MAX_LINES; i++)
                print_message("  report: %s\n", reports.line[i]);
}

/* ---- fixture ------------------------------------------------------------- */

static void write_file(const char *name, const char *content, size_t len, mode_t mode) {
        char path[PATH_MAX + 64];
        int fd;

        snprintf(path, sizeof path, "%s/%s", dir, name);
        fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(write(fd, content, len), (ssize_t) len);
        assert_int_equal(fchmod(fd, mode), 0);
        assert_int_equal(close(fd), 0);
}

static void write_text(const char *name, const char *content, mode_t mode) {
        write_file(name, content, strlen(content), mode);
}

static int setup(void **state) {
        char tmpl[] = "/tmp/ersd-test-config.XXXXXX";

        (void) state;
        if (!mkdtemp(tmpl) || !realpath(tmpl, dir))
                return -1;
        snprintf(conf_path, sizeof conf_path, "%s/ersd.conf", dir);
        write_text("token", TOKEN "\n\n", 0600);
        write_text("token-0644", TOKEN "\n", 0644);
        write_text("token-0640", TOKEN "\n", 0640);
        write_text("token-0604", TOKEN "\n", 0604);
        write_text("token-0400", TOKEN " \t\r\n", 0400);
        write_text("token-blank", " \n\t\n", 0600);
        write_text("token-space", TOKEN " second-word\n", 0600);
        write_text("ca.pem", "-----BEGIN CERTIFICATE-----\n-----END CERTIFICATE-----\n", 0644);
        return 0;
}

static int remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path);
}

static int teardown(void **state) {
        (void) state;
        return nftw(dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

/* Writes `text` to ersd.conf and loads it. */
static int load_text(const char *text, struct config *ret) {
        write_text("ersd.conf", text, 0644);
        reports.n = 0;
        return config_load(conf_path, collect, NULL, ret);
}

/* *ret must be untouched on failure: fill it with a pattern, check it after. */
static void poison(struct config *c) {
        memset(c, 0x5a, sizeof *c);
}

static bool poisoned(const struct config *c) {
        const unsigned char *p = (const unsigned char *) c;

        for (size_t i = 0; i < sizeof *c; i++)
                if (p[i] != 0x5a)
                        return false;
        return true;
}

/* ---- configurations ------------------------------------------------------ */

/* One line each, so the cases below can count lines. */
#define ERS_NONE "ers: { base_url = \"https://h.example/r\"; auth = \"none\"; };\n"
#define WL       "worklists = ( { name = \"a\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"1\"; } );\n"
#define DB       "database: { connection = \"" CONN "\"; };\n"

static const char good_conf[] =
        "# every key set\n"                                                                         /* 1 */
        "ers: {\n"                                                                                  /* 2 */
        "  base_url = \"https://int.api.service.nhs.uk/referrals/\";\n"                             /* 3 */
        "  auth = \"bearer\";\n"                                                                    /* 4 */
        "  bearer_token_file = \"token\";\n"                                                        /* 5 */
        "  ca_file = \"./ca.pem\";\n"                                                               /* 6 */
        "  connect_timeout = 20; worklist_calls_per_day = 2; max_requests_per_second = 5; pending_recheck = 600;\n"
        "  stall_timeout = 3600;\n"                                                                 /* 8 */
        "  max_attachment_mib = 2048;\n"                                                            /* 9 */
        "  user_restricted: {\n"                                                                    /* 10 */
        "    business_function = \"SERVICE_PROVIDER_CLINICIAN\";\n"                                 /* 11 */
        "    ods_code = \"R69\";\n"                                                                 /* 12 */
        "    on_behalf_of = \"555012345678\";\n"                                                    /* 13 */
        "  };\n"                                                                                    /* 14 */
        "};\n"                                                                                      /* 15 */
        "worklists = (\n"                                                                           /* 16 */
        "  { name = \"cardiology-review\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"31001\"; poll_at = [\"13:30\"]; },\n"
        "  { name = \"Cardio.slots_2\"; list_type = \"APPOINTMENT_SLOT_ISSUES\"; service = \"31001\"; poll_at = [\"07:00\"]; }\n"
        ");\n"
        "database = {\n"
        "  connection = \"" CONN "\";\n"
        "  adapter = \"postgresql\";\n"
        "  patient_lookup = \"SELECT patient_id FROM patient WHERE nhs_number = ? AND status <> '?'\";\n"
        "};\n"
        "state_dir = \"state\";\n"
        "poll_interval = 86400;\n"
        "overdue_after_minutes = 45;\n"
        "log_level = \"debug\";\n"
        "retry_delay = 120; park_after = 3; parked_retry = 7200;\n"
        "writeback = { enabled = true; actions = [ \"ACCEPT_REFERRAL\" ]; };\n";

/* ---- good configurations ------------------------------------------------- */

static void test_good_config_every_field(void **state) {
        struct config c;
        char want[PATH_MAX + 32];

        (void) state;
        assert_int_equal(load_text(good_conf, &c), 0);
        print_reports();
        assert_int_equal(reports.n, 0);

        assert_string_equal(c.path, conf_path);
        assert_string_equal(c.base_url, "https://int.api.service.nhs.uk/referrals");
        assert_int_equal(c.auth, AUTH_BEARER);
        snprintf(want, sizeof want, "%s/token", dir);
        assert_string_equal(c.bearer_token_file, want);
        assert_string_equal(c.bearer_token, TOKEN);
        assert_string_equal(c.business_function, "SERVICE_PROVIDER_CLINICIAN");
        assert_string_equal(c.ods_code, "R69");
        assert_string_equal(c.on_behalf_of, "555012345678");
        snprintf(want, sizeof want, "%s/ca.pem", dir);
        assert_string_equal(c.ca_file, want);
        assert_int_equal(c.connect_timeout_s, 20);
        assert_int_equal(c.stall_timeout_s, 3600);
        assert_true(c.max_attachment_bytes == INT64_C(2048) * 1024 * 1024);

        assert_int_equal(c.n_worklists, 2);
        assert_non_null(c.worklists);
        assert_string_equal(c.worklists[0].name, "cardiology-review");
        assert_string_equal(c.worklists[0].list_type, "REFERRALS_FOR_REVIEW");
        assert_string_equal(c.worklists[0].service_id, "31001");
        assert_string_equal(c.worklists[1].name, "Cardio.slots_2");
        assert_string_equal(c.worklists[1].list_type, "APPOINTMENT_SLOT_ISSUES");
        assert_string_equal(c.worklists[1].service_id, "31001");
        assert_int_equal(c.worklists[0].n_poll_at, 1);
        assert_int_equal(c.worklists[0].poll_at[0], 13 * 60 + 30);
        assert_int_equal(c.worklists[1].poll_at[0], 7 * 60);
        assert_int_equal(c.worklist_calls_per_day, 2);
        assert_int_equal(c.max_requests_per_second, 5);
        assert_int_equal(c.pending_recheck_s, 600);
        assert_int_equal(c.retry_delay_s, 120);
        assert_int_equal(c.park_after, 3);
        assert_int_equal(c.parked_retry_s, 7200);
        assert_false(c.test_limits);

        assert_string_equal(c.odbc_connection, CONN);
        assert_string_equal(c.adapter, "postgresql");
        assert_string_equal(c.patient_lookup, "SELECT patient_id FROM patient WHERE nhs_number = ? AND status <> '?'");
        snprintf(want, sizeof want, "%s:23", conf_path);
        assert_string_equal(c.patient_lookup_at, want);
        snprintf(want, sizeof want, "%s/state", dir);
        assert_string_equal(c.state_dir, want);
        assert_int_equal(c.poll_interval_s, 86400);
        assert_int_equal(c.overdue_after_min, 45);
        assert_true(c.writeback_enabled);
        assert_int_equal(c.writeback_actions, CONFIG_WB_ACCEPT_REFERRAL);
        assert_int_equal(c.log_level, LOG_DEBUG);
        assert_false(secret_reported);

        config_free(&c);
        assert_null(c.bearer_token); /* config_free leaves it empty: a second call is harmless */
        config_free(&c);
        config_free(NULL);
}

static void test_defaults(void **state) {
        struct config c;

        (void) state;
        assert_int_equal(load_text(ERS_NONE WL DB, &c), 0);
        assert_int_equal(reports.n, 0);
        assert_string_equal(c.base_url, "https://h.example/r");
        assert_int_equal(c.auth, AUTH_NONE);
        assert_null(c.bearer_token_file);
        assert_null(c.bearer_token);
        assert_null(c.business_function);
        assert_null(c.ods_code);
        assert_null(c.on_behalf_of);
        assert_null(c.ca_file);
        assert_int_equal(c.connect_timeout_s, 10);
        assert_int_equal(c.stall_timeout_s, 60);
        assert_true(c.max_attachment_bytes == INT64_C(100) * 1024 * 1024);
        assert_int_equal(c.n_worklists, 1);
        assert_string_equal(c.adapter, "auto");
        assert_string_equal(c.state_dir, "/var/lib/ersd");
        assert_int_equal(c.poll_interval_s, 300);
        assert_int_equal(c.overdue_after_min, 120);
        assert_int_equal(c.log_level, LOG_INFO);
        /* The e-RS limits and the schedule. */
        assert_int_equal(c.worklists[0].n_poll_at, 2);
        assert_int_equal(c.worklists[0].poll_at[0], 7 * 60);
        assert_int_equal(c.worklists[0].poll_at[1], 13 * 60);
        assert_int_equal(c.worklist_calls_per_day, 2);
        assert_int_equal(c.max_requests_per_second, 10);
        assert_int_equal(c.pending_recheck_s, 300);
        assert_int_equal(c.tries, 5);
        assert_int_equal(c.retry_delay_s, 60);
        assert_int_equal(c.park_after, 5);
        assert_int_equal(c.parked_retry_s, 21600);
        assert_false(c.test_limits);
        config_free(&c);

        /* Beyond production's limits against a loopback mock: allowed, and flagged. */
        assert_int_equal(load_text("ers: { base_url = \"http://127.0.0.1:8080/r\"; auth = \"none\"; "
                                   "worklist_calls_per_day = 500; max_requests_per_second = 1000; pending_recheck = 2; };\n"
                                   WL DB "retry_delay = 1; parked_retry = 2;\n", &c), 0);
        assert_int_equal(c.worklist_calls_per_day, 500);
        assert_int_equal(c.pending_recheck_s, 2);
        assert_true(c.test_limits);
        config_free(&c);

        /* ers.auth defaults to "bearer". */
        assert_int_equal(load_text("ers: { base_url = \"https://h.example/r\"; bearer_token_file = \"token-0400\"; };\n"
                                   WL DB, &c), 0);
        assert_int_equal(c.auth, AUTH_BEARER);
        assert_string_equal(c.bearer_token, TOKEN); /* " \t\r\n" cut */
        config_free(&c);

        /* An empty user_restricted group is the same as none. */
        assert_int_equal(load_text("ers: { base_url = \"https://h.example/r\"; auth = \"none\"; user_restricted: { }; };\n"
                                   WL DB, &c), 0);
        assert_null(c.business_function);
        config_free(&c);
        assert_false(secret_reported);
}

/* Every adapter the build has (adapters/registry.c's list) is a name the configuration accepts. */
static void test_adapters_accepted(void **state) {
        char names[128], *save = NULL;
        struct config c;
        unsigned n = 0;

        (void) state;
        assert_true(strlen(adapter_names) < sizeof names);
        snprintf(names, sizeof names, "%s", adapter_names);
        for (char *name = strtok_r(names, ", ", &save); name; name = strtok_r(NULL, ", ", &save)) {
                char text[512];

                snprintf(text, sizeof text, ERS_NONE WL "database: { connection = \"DSN=pas\"; adapter = \"%s\"; };\n",
                         name);
                assert_int_equal(load_text(text, &c), 0);
                assert_int_equal(reports.n, 0);
                assert_string_equal(c.adapter, name);
                assert_non_null(adapter_by_name(c.adapter));
                config_free(&c);
                n++;
        }
        assert_int_equal(n, 5); /* sqlite, postgresql, mariadb, sqlserver, oracle */
}

/* A mapping that names every field, or lists it as unmapped: kept as written, with its file:line. */
static void test_mapping_accepted(void **state) {
        char want[sizeof conf_path + 16];
        struct config c;

        (void) state;
        assert_int_equal(load_text(ERS_NONE WL MAP_DB("    referral = \"" MAP_MOST "\";\n"
                                                      "    unmapped = [ \"state_comment\", \"pathway_start\" ];\n"),
                                   &c),
                         0);
        assert_int_equal(reports.n, 0);
        assert_string_equal(c.map_referral, MAP_MOST);
        snprintf(want, sizeof want, "%s:6", conf_path);
        assert_string_equal(c.map_referral_at, want);
        assert_null(c.map_document);
        assert_string_equal(c.map_unmapped[0], "state_comment");
        assert_string_equal(c.map_unmapped[1], "pathway_start");
        assert_null(c.map_unmapped[2]);
        config_free(&c);
}

struct url_case {
        const char *url;
        const char *stored;
};

static void test_base_urls_accepted(void **state) {
        static const struct url_case cases[] = {
                { "https://api.service.nhs.uk/referrals", "https://api.service.nhs.uk/referrals" },
                { "https://api.service.nhs.uk/referrals/", "https://api.service.nhs.uk/referrals" },
                { "https://sandbox.api.service.nhs.uk", "https://sandbox.api.service.nhs.uk" },
                { "https://h.example:8443/r//", "https://h.example:8443/r/" }, /* one '/' only */
                { "HTTPS://H.example/r", "HTTPS://H.example/r" },
                { "http://127.0.0.1:9000/referrals", "http://127.0.0.1:9000/referrals" },
                { "http://127.1.2.3/", "http://127.1.2.3" },
                { "http://localhost:9000", "http://localhost:9000" },
                { "http://LocalHost/r", "http://LocalHost/r" },
                { "http://[::1]:9000/referrals/", "http://[::1]:9000/referrals" },
        };
        char text[1024];

        (void) state;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                struct config c;

                snprintf(text, sizeof text, "ers: { base_url = \"%s\"; auth = \"none\"; };\n" WL DB, cases[i].url);
                if (load_text(text, &c) != 0) {
                        print_reports();
                        fail_msg("%s refused", cases[i].url);
                }
                assert_string_equal(c.base_url, cases[i].stored);
                config_free(&c);
        }
}

static void test_relative_paths(void **state) {
        struct config c;
        char want[PATH_MAX + 32], path[PATH_MAX + 32], cwd[PATH_MAX];

        (void) state;
        /* Relative to the file's directory, not to the working directory. */
        assert_int_equal(load_text("ers: { base_url = \"https://h.example/r\"; bearer_token_file = \"./token\"; };\n"
                                   WL DB "state_dir = \"sub/state\";\n", &c), 0);
        snprintf(want, sizeof want, "%s/token", dir);
        assert_string_equal(c.bearer_token_file, want);
        snprintf(want, sizeof want, "%s/sub/state", dir);
        assert_string_equal(c.state_dir, want);
        config_free(&c);

        /* The same file named by a relative path: the stored paths are absolute. */
        assert_non_null(getcwd(cwd, sizeof cwd));
        assert_int_equal(chdir(dir), 0);
        reports.n = 0;
        snprintf(path, sizeof path, "ersd.conf");
        assert_int_equal(config_load(path, collect, NULL, &c), 0);
        assert_int_equal(chdir(cwd), 0);
        assert_string_equal(c.path, "ersd.conf");
        snprintf(want, sizeof want, "%s/sub/state", dir);
        assert_string_equal(c.state_dir, want);
        config_free(&c);
}

/* Replaces the first `from` in the malloc'd text *p with `to`. */
static void replace_in(char **p, const char *from, const char *to) {
        char *at = strstr(*p, from), *copy;
        size_t n = strlen(*p) + strlen(to) + 1;

        assert_non_null(at);
        copy = calloc(1, n);
        assert_non_null(copy);
        snprintf(copy, n, "%.*s%s%s", (int) (at - *p), *p, to, at + strlen(from));
        free(*p);
        *p = copy;
}

/* A signing key for the shipped file's private_key_file, made now. */
static void write_private_key(const char *name) {
        EVP_PKEY *key = EVP_RSA_gen(2048);
        BIO *bio = BIO_new(BIO_s_mem());
        char *pem;
        long n;

        assert_non_null(key);
        assert_non_null(bio);
        assert_int_equal(PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL), 1);
        n = BIO_get_mem_data(bio, &pem);
        write_file(name, pem, (size_t) n, 0600);
        BIO_free(bio);
        EVP_PKEY_free(key);
}

/* The shipped file is valid once its API key and private key files exist. */
static void test_shipped_conf(void **state) {
        char *text;
        struct config c;
        long size;
        FILE *f;

        (void) state;
        f = fopen("conf/ersd.conf", "r");
        assert_non_null(f);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        size = ftell(f);
        assert_true(size > 0);
        rewind(f);
        text = calloc(1, (size_t) size + 1);
        assert_non_null(text);
        assert_int_equal(fread(text, 1, (size_t) size, f), (size_t) size);
        fclose(f);

        replace_in(&text, "\"/etc/ersd/api-key\"", "\"token\"");
        replace_in(&text, "\"/etc/ersd/ers-private-key.pem\"", "\"signing.pem\"");
        write_private_key("signing.pem");

        assert_int_equal(load_text(text, &c), 0);
        free(text);
        print_reports();
        assert_int_equal(reports.n, 0);
        assert_string_equal(c.base_url, "https://api.service.nhs.uk/referrals");
        assert_int_equal(c.auth, AUTH_JWT);
        assert_string_equal(c.api_key, TOKEN);
        assert_non_null(c.private_key_pem);
        assert_string_equal(c.key_id, "trust-ers-2026-1");
        assert_string_equal(c.token_url, "https://api.service.nhs.uk/oauth2/token");
        assert_null(c.bearer_token);
        assert_null(c.client_cert_file);
        assert_null(c.ca_file);
        assert_null(c.business_function);
        assert_int_equal(c.connect_timeout_s, 10);
        assert_int_equal(c.stall_timeout_s, 60);
        assert_true(c.max_attachment_bytes == INT64_C(100) * 1024 * 1024);
        assert_int_equal(c.n_worklists, 1);
        assert_string_equal(c.worklists[0].name, "cardiology-review");
        assert_string_equal(c.worklists[0].list_type, "REFERRALS_FOR_REVIEW");
        assert_string_equal(c.worklists[0].service_id, "31001");
        assert_string_equal(c.odbc_connection, "Driver=SQLite3;Database=/var/lib/ersd/pas.db");
        assert_string_equal(c.adapter, "auto");
        assert_string_equal(c.state_dir, "/var/lib/ersd");
        assert_int_equal(c.poll_interval_s, 300);
        assert_int_equal(c.log_level, LOG_INFO);
        config_free(&c);
}

/* As shipped, the only possible problems are the machine's API key and private key files. */
static void test_shipped_conf_as_is(void **state) {
        struct config c;
        int r;

        (void) state;
        reports.n = 0;
        r = config_load("conf/ersd.conf", collect, NULL, &c);
        print_reports();
        if (r == 0) {
                config_free(&c);
                return;
        }
        assert_int_equal(r, -EINVAL);
        assert_true(reports.n >= 1 && reports.n <= 2);
        for (size_t i = 0; i < reports.n; i++) {
                assert_non_null(strstr(reports.line[i], "conf/ersd.conf:"));
                if (!strstr(reports.line[i], ": ers.api_key_file: ") && !strstr(reports.line[i], ": ers.private_key_file: "))
                        fail_msg("unexpected problem in the shipped file: %s", reports.line[i]);
        }
}

/* ---- bad configurations: the table --------------------------------------- */

struct bad_case {
        const char *name;
        const char *text;
        int r;
        const char *expect[4]; /* each report line after "FILE" */
};

static const struct bad_case bad_cases[] = {
        { "unknown key, top level", ERS_NONE WL DB "colour = \"blue\";\n", -EINVAL,
          { ":4: colour: unknown key" } },
        { "unknown key, in ers",
          "ers: {\n  base_url = \"https://h.example/r\";\n  auth = \"none\";\n  retries = 3;\n};\n" WL DB, -EINVAL,
          { ":4: ers.retries: unknown key" } },
        { "unknown key, in user_restricted",
          "ers: {\n  base_url = \"https://h.example/r\";\n  auth = \"none\";\n  user_restricted: {\n"
          "    ods = \"R69\";\n  };\n};\n" WL DB, -EINVAL,
          { ":5: ers.user_restricted.ods: unknown key" } },
        { "unknown key, in a worklist",
          ERS_NONE "worklists = (\n  { name = \"a\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"1\"; },\n"
          "  { name = \"b\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"2\";\n    priority = 1; }\n);\n" DB,
          -EINVAL, { ":5: worklists[1].priority: unknown key" } },
        { "unknown key, in database", ERS_NONE WL "database: {\n  connection = \"DSN=pas\";\n  password = \""
          PASSWORD_MARK "\";\n};\n", -EINVAL, { ":5: database.password: unknown key" } },
        { "unknown group", ERS_NONE WL DB "\nlogging: {\n  level = \"info\";\n};\n", -EINVAL,
          { ":5: logging: unknown key" } },
        { "wrong type, string for integer",
          "ers: {\n  base_url = \"https://h.example/r\";\n  auth = \"none\";\n  connect_timeout = \"10\";\n};\n" WL DB,
          -EINVAL, { ":4: ers.connect_timeout: expected an integer, found a string" } },
        { "wrong type, float for integer", ERS_NONE WL DB "poll_interval = 300.0;\n", -EINVAL,
          { ":4: poll_interval: expected an integer, found a floating-point number" } },
        { "wrong type, boolean for string", ERS_NONE WL DB "log_level = true;\n", -EINVAL,
          { ":4: log_level: expected a string, found a boolean" } },
        { "wrong type, integer for service",
          ERS_NONE "worklists = ( { name = \"a\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = 31001; } );\n" DB,
          -EINVAL, { ":2: worklists[0].service: expected a string, found an integer" } },
        { "wrong type, group for worklists",
          ERS_NONE "worklists = { name = \"a\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"1\"; };\n" DB,
          -EINVAL, { ":2: worklists: expected a list ( ... ), found a group { ... }" } },
        { "wrong type, array for worklists", ERS_NONE "worklists = [ \"a\" ];\n" DB, -EINVAL,
          { ":2: worklists: expected a list ( ... ), found an array [ ... ]" } },
        { "wrong type, worklist not a group", ERS_NONE "worklists = (\n  \"cardiology\"\n);\n" DB, -EINVAL,
          { ":2: worklists[0]: expected a group { name = ...; list_type = ...; service = ...; }, found a string" } },
        { "wrong type, ers not a group", "ers = \"https://h.example/r\";\n" WL DB, -EINVAL,
          { ":1: ers: expected a group { ... }, found a string" } },
        { "worklist budget above e-RS's against a real e-RS",
          "ers: {\n  base_url = \"https://h.example/r\";\n  auth = \"none\";\n  worklist_calls_per_day = 3;\n};\n" WL DB,
          -EINVAL,
          { ":4: ers.worklist_calls_per_day: 3 is beyond what e-RS allows (1..2); a value outside that range is "
            "accepted only with a loopback ers.base_url (a test mock)" } },
        { "request rate above e-RS's against a real e-RS",
          "ers: {\n  base_url = \"https://h.example/r\";\n  auth = \"none\";\n  max_requests_per_second = 11;\n};\n" WL DB,
          -EINVAL,
          { ":4: ers.max_requests_per_second: 11 is beyond what e-RS allows (1..10); a value outside that range is "
            "accepted only with a loopback ers.base_url (a test mock)" } },
        { "PENDING re-checked sooner than e-RS asks",
          "ers: {\n  base_url = \"https://h.example/r\";\n  auth = \"none\";\n  pending_recheck = 60;\n};\n" WL DB,
          -EINVAL,
          { ":4: ers.pending_recheck: 60 is beyond what e-RS allows (300..86400); a value outside that range is "
            "accepted only with a loopback ers.base_url (a test mock)" } },
        { "quicker retries against a real e-RS", ERS_NONE WL DB "retry_delay = 5;\n", -EINVAL,
          { ":4: retry_delay: 5 is beyond what e-RS allows (60..3600); a value outside that range is accepted only "
            "with a loopback ers.base_url (a test mock)" } },
        { "more poll times than the service's budget",
          ERS_NONE "worklists = (\n"
                   "  { name = \"a\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"1\"; poll_at = [\"07:00\"]; },\n"
                   "  { name = \"b\"; list_type = \"APPOINTMENT_SLOT_ISSUES\"; service = \"1\"; }\n"
                   ");\n" DB,
          -EINVAL,
          { ":3: worklists[0].poll_at: service 1 would be read 3 times a day by its worklists, but "
            "ers.worklist_calls_per_day is 2 (e-RS allows 2): give its worklists fewer poll times",
            ":4: worklists[1].poll_at: service 1 would be read 3 times a day by its worklists, but "
            "ers.worklist_calls_per_day is 2 (e-RS allows 2): give its worklists fewer poll times" } },
        { "poll_at: not a time", ERS_NONE
          "worklists = ( { name = \"a\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"1\"; poll_at = [\"7am\"]; } );\n" DB,
          -EINVAL, { ":2: worklists[0].poll_at[0]: must be a UK time of day \"HH:MM\" (00:00 to 23:59)" } },
        { "poll_at: twice the same", ERS_NONE
          "worklists = ( { name = \"a\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"1\"; poll_at = [\"07:00\", \"07:00\"]; } );\n" DB,
          -EINVAL, { ":2: worklists[0].poll_at[1]: \"07:00\" is listed twice" } },
        { "poll_at: empty", ERS_NONE
          "worklists = ( { name = \"a\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"1\"; poll_at = []; } );\n" DB,
          -EINVAL, { ":2: worklists[0].poll_at: needs 1 to 8 times of day such as [\"07:00\", \"13:00\"]" } },
        { "out of range, low", ERS_NONE WL DB "poll_interval = 59;\n", -EINVAL,
          { ":4: poll_interval: 59 is out of range 60..86400" } },
        { "out of range, high", ERS_NONE WL DB "poll_interval = 86401;\n", -EINVAL,
          { ":4: poll_interval: 86401 is out of range 60..86400" } },
        { "writeback without actions", ERS_NONE WL DB "writeback = { enabled = true; };\n", -EINVAL,
          { ":4: writeback.enabled: true sends nothing without writeback.actions (name each action the trust's "
            "use case is approved for)" } },
        { "writeback cancel", ERS_NONE WL DB "writeback = { actions = [ \"CANCEL_REFERRAL\" ]; };\n", -EINVAL,
          { ":4: writeback.actions[0]: must be \"RECORD_REVIEW_OUTCOME\" or \"ACCEPT_REFERRAL\"" } },
        { "writeback enabled, cancel: said once", ERS_NONE WL DB
          "writeback = { enabled = true; actions = [ \"CANCEL_REFERRAL\" ]; };\n", -EINVAL,
          { ":4: writeback.actions[0]: must be \"RECORD_REVIEW_OUTCOME\" or \"ACCEPT_REFERRAL\"" } },
        { "overdue too soon", ERS_NONE WL DB "overdue_after_minutes = 4;\n", -EINVAL,
          { ":4: overdue_after_minutes: 4 is out of range 5..10080" } },
        { "out of range, negative",
          "ers: {\n  base_url = \"https://h.example/r\";\n  auth = \"none\";\n  connect_timeout = -1;\n"
          "  stall_timeout = 4;\n  max_attachment_mib = 2049;\n};\n" WL DB, -EINVAL,
          { ":4: ers.connect_timeout: -1 is out of range 1..300", ":5: ers.stall_timeout: 4 is out of range 5..3600",
            ":6: ers.max_attachment_mib: 2049 is out of range 1..2048" } },
        { "out of range, 64-bit literal", ERS_NONE WL DB "poll_interval = 10000000000L;\n", -EINVAL,
          { ":4: poll_interval: 10000000000 is out of range 60..86400" } },
        { "out of range, wraps to an in-range 32-bit value", ERS_NONE WL DB "poll_interval = 4294967596;\n", -EINVAL,
          { ":4: poll_interval: number too large (out of range 60..86400)" } },
        { "missing ers.base_url", "ers: {\n  auth = \"none\";\n};\n" WL DB, -EINVAL,
          { ":1: ers.base_url: required key missing" } },
        { "missing database", ERS_NONE WL, -EINVAL, { ": database.connection: required key missing" } },
        { "missing database.connection", ERS_NONE WL "\ndatabase: {\n  adapter = \"sqlite\";\n};\n", -EINVAL,
          { ":4: database.connection: required key missing" } },
        { "missing worklists", ERS_NONE DB, -EINVAL, { ": worklists: required key missing" } },
        { "missing ers", WL DB, -EINVAL,
          { ": ers.base_url: required key missing",
            ": ers.bearer_token_file: required when ers.auth is \"bearer\"" } },
        { "empty file", "", -EINVAL,
          { ": ers.base_url: required key missing", ": worklists: required key missing",
            ": database.connection: required key missing",
            ": ers.bearer_token_file: required when ers.auth is \"bearer\"" } },
        { "empty worklists", ERS_NONE "worklists = ();\n" DB, -EINVAL,
          { ":2: worklists: at least one worklist is required" } },
        { "worklist without name",
          ERS_NONE "worklists = (\n  {\n    list_type = \"REFERRALS_FOR_REVIEW\";\n    service = \"1\";\n  }\n);\n" DB,
          -EINVAL, { ":3: worklists[0].name: required key missing" } },
        { "bad list_type",
          ERS_NONE "worklists = ( { name = \"a\"; list_type = \"REFERRALS\"; service = \"1\"; } );\n" DB, -EINVAL,
          { ":2: worklists[0].list_type: must be REFERRALS_FOR_REVIEW or APPOINTMENT_SLOT_ISSUES" } },
        { "bad service",
          ERS_NONE "worklists = (\n  { name = \"a\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"31_01\"; },\n"
          "  { name = \"b\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"12345678901234567\"; }\n);\n" DB,
          -EINVAL,
          { ":3: worklists[0].service: must be an e-RS service id: 1 to 16 letters, digits, '.' or '-', the first a "
            "letter or digit",
            ":4: worklists[1].service: must be an e-RS service id: 1 to 16 letters, digits, '.' or '-', the first a "
            "letter or digit" } },
        { "a NUL escape in a string",
          ERS_NONE "worklists = ( { name = \"a\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"31\\x0099\"; } );\n" DB,
          -EINVAL, { ":2: \\x00 (a NUL) in a string: no value may hold one (libconfig would drop it and read the rest "
                     "as the value)" } },
        { "\\x00 not an escape: a backslash and x00",
          ERS_NONE "worklists = ( { name = \"a\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"31\\\\x00\"; } );\n" DB,
          -EINVAL, { ":2: worklists[0].service: must be an e-RS service id: 1 to 16 letters, digits, '.' or '-', the "
                     "first a letter or digit" } },
        { "bad worklist name",
          ERS_NONE "worklists = ( { name = \"cardiology review\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"1\"; } );\n"
          DB, -EINVAL, { ":2: worklists[0].name: must be 1 to 64 characters from A-Z a-z 0-9 . _ -" } },
        { "worklist name too long",
          ERS_NONE "worklists = ( { name = \"a1234567890123456789012345678901234567890123456789012345678901234\"; "
          "list_type = \"REFERRALS_FOR_REVIEW\"; service = \"1\"; } );\n" DB, -EINVAL,
          { ":2: worklists[0].name: must be 1 to 64 characters from A-Z a-z 0-9 . _ -" } },
        { "duplicate worklist name",
          ERS_NONE "worklists = (\n  { name = \"a\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"1\"; },\n"
          "  { name = \"a\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"2\"; }\n);\n" DB, -EINVAL,
          { ":4: worklists[1].name: \"a\" is already the name of worklists[0] (line 3)" } },
        { "duplicate list_type and service",
          ERS_NONE "worklists = (\n  { name = \"a\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"1\"; },\n"
          "  { name = \"b\"; list_type = \"APPOINTMENT_SLOT_ISSUES\"; service = \"1\"; },\n"
          "  {\n    name = \"c\";\n    list_type = \"REFERRALS_FOR_REVIEW\";\n    service = \"1\";\n  }\n);\n" DB,
          -EINVAL, { ":5: worklists[2]: REFERRALS_FOR_REVIEW for service 1 is already worklists[0] (line 3)" } },
        { "bad auth", "ers: {\n  base_url = \"https://h.example/r\";\n  auth = \"basic\";\n};\n" WL DB, -EINVAL,
          { ":3: ers.auth: must be \"none\", \"bearer\" or \"jwt\"" } },
        { "bad log_level", ERS_NONE WL DB "log_level = \"verbose\";\n", -EINVAL,
          { ":4: log_level: must be \"error\", \"warning\", \"notice\", \"info\" or \"debug\"" } },
        { "bad adapter", ERS_NONE WL "database: {\n  connection = \"DSN=pas\";\n  adapter = \"db2\";\n};\n", -EINVAL,
          { ":5: database.adapter: must be auto, sqlite, postgresql, mariadb, sqlserver or oracle" } },
        { "mapping: unknown parameter", ERS_NONE WL MAP_DB("    referral = \"INSERT INTO t VALUES (:ubrn, :nhs)\";\n"),
          -EINVAL, { ":6: database.mapping.referral: unknown parameter :nhs at character 30: not a referral field" } },
        { "mapping: a field left unmapped",
          ERS_NONE WL MAP_DB("    referral = \"" MAP_MOST "\";\n    unmapped = [ \"state_comment\" ];\n"), -EINVAL,
          { ":6: database.mapping.referral: fields left unmapped: :pathway_start (map each, or list it in "
            "database.mapping.unmapped)" } },
        { "mapping: unmapped names", ERS_NONE WL MAP_DB("    unmapped = [ \"colour\", \"ubrn\" ];\n"), -EINVAL,
          { ":6: database.mapping.unmapped[0]: \"colour\" is not a referral or document field",
            ":6: database.mapping.unmapped[1]: ubrn cannot be left unmapped" } },
        { "mapping: no :ubrn", ERS_NONE WL MAP_DB("    document = \"INSERT INTO d VALUES (:document_id)\";\n"),
          -EINVAL, { ":6: database.mapping.document: must use :ubrn (how the PAS tells referrals apart)" } },
        { "mapping: a '?'", ERS_NONE WL MAP_DB("    referral = \"INSERT INTO t VALUES (:ubrn, ?)\";\n"), -EINVAL,
          { ":6: database.mapping.referral: a '?' at character 30: name each parameter instead (:ubrn, "
            ":priority, …)" } },
        { "lease too long", ERS_NONE WL "database: {\n  connection = \"DSN=pas\";\n  lease_seconds = 3601;\n};\n",
          -EINVAL, { ":5: database.lease_seconds: 3601 is out of range 0..3600" } },
        { "patient lookup without a marker",
          ERS_NONE WL "database: {\n  connection = \"DSN=pas\";\n  patient_lookup = \"SELECT id FROM p\";\n};\n",
          -EINVAL, { ":5: database.patient_lookup: needs exactly one '?' (the NHS number), found 0" } },
        { "patient lookup, two markers (one quoted, not counted)",
          ERS_NONE WL "database: {\n  connection = \"DSN=pas\";\n"
          "  patient_lookup = \"SELECT id FROM p WHERE n = ? AND m = ? AND t <> '?'\";\n};\n",
          -EINVAL, { ":5: database.patient_lookup: needs exactly one '?' (the NHS number), found 2" } },
        { "connection string not one", ERS_NONE WL "database: { connection = \"pas.db\"; };\n", -EINVAL,
          { ":3: database.connection: not an ODBC connection string (expected \"DSN=name\" or \"Driver=...;...\")" } },
        { "empty string", ERS_NONE WL DB "state_dir = \"\";\n", -EINVAL, { ":4: state_dir: must not be empty" } },
        { "control character", ERS_NONE WL DB "state_dir = \"/var/lib/\\nersd\";\n", -EINVAL,
          { ":4: state_dir: must not contain control characters" } },
        { "bearer without token file", "ers: {\n  base_url = \"https://h.example/r\";\n  auth = \"bearer\";\n};\n" WL DB,
          -EINVAL, { ":1: ers.bearer_token_file: required when ers.auth is \"bearer\"" } },
        { "token file mode 0644",
          "ers: {\n  base_url = \"https://h.example/r\";\n  bearer_token_file = \"token-0644\";\n};\n" WL DB, -EINVAL,
          { ":3: ers.bearer_token_file: must not be accessible by group or others (mode 0644); chmod 600 it" } },
        { "token file mode 0640",
          "ers: {\n  base_url = \"https://h.example/r\";\n  bearer_token_file = \"token-0640\";\n};\n" WL DB, -EINVAL,
          { ":3: ers.bearer_token_file: must not be accessible by group or others (mode 0640); chmod 600 it" } },
        { "token file mode 0604",
          "ers: {\n  base_url = \"https://h.example/r\";\n  bearer_token_file = \"token-0604\";\n};\n" WL DB, -EINVAL,
          { ":3: ers.bearer_token_file: must not be accessible by group or others (mode 0604); chmod 600 it" } },
        { "token file missing",
          "ers: {\n  base_url = \"https://h.example/r\";\n  bearer_token_file = \"no-such-token\";\n};\n" WL DB, -EINVAL,
          { ":3: ers.bearer_token_file: cannot read: No such file or directory" } },
        { "token file a directory",
          "ers: {\n  base_url = \"https://h.example/r\";\n  bearer_token_file = \"/\";\n};\n" WL DB, -EINVAL,
          { ":3: ers.bearer_token_file: cannot read: Is a directory" } },
        { "token file blank",
          "ers: {\n  base_url = \"https://h.example/r\";\n  bearer_token_file = \"token-blank\";\n};\n" WL DB, -EINVAL,
          { ":3: ers.bearer_token_file: the file is empty" } },
        { "token with a space inside",
          "ers: {\n  base_url = \"https://h.example/r\";\n  bearer_token_file = \"token-space\";\n};\n" WL DB, -EINVAL,
          { ":3: ers.bearer_token_file: the token contains a space, control or non-ASCII character" } },
        { "token file with auth none",
          "ers: {\n  base_url = \"https://h.example/r\";\n  auth = \"none\";\n  bearer_token_file = \"token\";\n};\n"
          WL DB, -EINVAL,
          { ":4: ers.bearer_token_file: set, but ers.auth is \"none\": remove one of them" } },
        { "ca_file missing",
          "ers: {\n  base_url = \"https://h.example/r\";\n  auth = \"none\";\n  ca_file = \"/nonexistent/ca.pem\";\n};\n"
          WL DB, -EINVAL,
          { ":4: ers.ca_file: cannot read /nonexistent/ca.pem: No such file or directory" } },
        { "http to a remote host", "ers: { base_url = \"http://api.service.nhs.uk/referrals\"; auth = \"none\"; };\n" WL DB,
          -EINVAL,
          { ":1: ers.base_url: http:// is allowed only for a loopback host (127.0.0.0/8, localhost, [::1]); "
            "use https://" } },
        { "http to a v4-mapped loopback", "ers: { base_url = \"http://[::ffff:127.0.0.1]/\"; auth = \"none\"; };\n" WL DB,
          -EINVAL,
          { ":1: ers.base_url: http:// is allowed only for a loopback host (127.0.0.0/8, localhost, [::1]); "
            "use https://" } },
        { "http to localhost.example", "ers: { base_url = \"http://localhost.example/\"; auth = \"none\"; };\n" WL DB,
          -EINVAL,
          { ":1: ers.base_url: http:// is allowed only for a loopback host (127.0.0.0/8, localhost, [::1]); "
            "use https://" } },
        { "URL without scheme", "ers: { base_url = \"api.service.nhs.uk/referrals\"; auth = \"none\"; };\n" WL DB,
          -EINVAL, { ":1: ers.base_url: must start with https:// (or http:// for a loopback host)" } },
        { "URL with another scheme", "ers: { base_url = \"ftp://api.service.nhs.uk/\"; auth = \"none\"; };\n" WL DB,
          -EINVAL, { ":1: ers.base_url: must start with https:// (or http:// for a loopback host)" } },
        { "URL without host", "ers: { base_url = \"https://\"; auth = \"none\"; };\n" WL DB, -EINVAL,
          { ":1: ers.base_url: not a valid URL (No host part in the URL)" } },
        { "URL with a third slash", "ers: { base_url = \"https:///referrals\"; auth = \"none\"; };\n" WL DB, -EINVAL,
          { ":1: ers.base_url: not a valid URL" } },
        { "URL with a space", "ers: { base_url = \"https://h.example/a b\"; auth = \"none\"; };\n" WL DB, -EINVAL,
          { ":1: ers.base_url: not a valid URL" } },
        { "URL with a password",
          "ers: { base_url = \"https://ersd:" PASSWORD_MARK "@h.example/r\"; auth = \"none\"; };\n" WL DB, -EINVAL,
          { ":1: ers.base_url: must not contain a user name or password; use ers.bearer_token_file" } },
        { "URL with a query", "ers: { base_url = \"https://h.example/r?x=1\"; auth = \"none\"; };\n" WL DB, -EINVAL,
          { ":1: ers.base_url: must not have a query (?...) or fragment (#...)" } },
        { "user_restricted half a pair",
          "ers: {\n  base_url = \"https://h.example/r\";\n  user_restricted: {\n"
          "    business_function = \"SERVICE_PROVIDER_CLINICIAN\";\n  };\n  auth = \"none\";\n};\n" WL DB, -EINVAL,
          { ":3: ers.user_restricted: business_function and ods_code go together: set both or neither" } },
        { "user_restricted on_behalf_of alone",
          "ers: {\n  base_url = \"https://h.example/r\";\n  auth = \"none\";\n  user_restricted: {\n"
          "    on_behalf_of = \"555012345678\";\n  };\n};\n" WL DB, -EINVAL,
          { ":4: ers.user_restricted: on_behalf_of needs business_function and ods_code" } },
        { "user_restricted bad ods_code",
          "ers: {\n  base_url = \"https://h.example/r\";\n  auth = \"none\";\n  user_restricted: {\n"
          "    business_function = \"SERVICE_PROVIDER_CLINICIAN\";\n    ods_code = \"r69 \";\n  };\n};\n" WL DB,
          -EINVAL, { ":6: ers.user_restricted.ods_code: must be an ODS code: 1 to 16 upper-case letters and digits" } },
        { "syntax error", ERS_NONE WL DB "poll_interval = = 300;\n", -EINVAL, { ":4: syntax error" } },
        { "syntax error, unclosed group", "ers: {\n  base_url = \"https://h.example/r\";\n" WL DB, -EINVAL,
          { ":5: syntax error" } },
        { "duplicate key", "ers: {\n  base_url = \"https://h.example/r\";\n  auth = \"none\";\n  auth = \"bearer\";\n};\n"
          WL DB, -EINVAL, { ":4: duplicate setting name" } },
        { "three problems, all reported",
          "ers: { base_url = \"http://h.example/r\"; auth = \"none\"; };\n" WL
          "database: { connection = \"" CONN "\"; adapter = \"db2\"; };\n"
          "poll_interval = 10;\n", -EINVAL,
          { ":1: ers.base_url: http:// is allowed only for a loopback host (127.0.0.0/8, localhost, [::1]); "
            "use https://",
            ":3: database.adapter: must be auto, sqlite, postgresql, mariadb, sqlserver or oracle",
            ":4: poll_interval: 10 is out of range 60..86400" } },
        { "secrets in the wrong keys are not quoted",
          "ers: {\n  base_url = \"" TOKEN "\";\n  auth = \"" TOKEN "\";\n};\n" WL
          "database: {\n  connection = \"DSN=pas\";\n  adapter = \"" CONN "\";\n};\n"
          "log_level = \"" CONN "\";\n", -EINVAL,
          { ":2: ers.base_url: must start with https:// (or http:// for a loopback host)",
            ":3: ers.auth: must be \"none\", \"bearer\" or \"jwt\"",
            ":8: database.adapter: must be auto, sqlite, postgresql, mariadb, sqlserver or oracle",
            ":10: log_level: must be \"error\", \"warning\", \"notice\", \"info\" or \"debug\"" } },
};

#define N_BAD_CASES (sizeof bad_cases / sizeof bad_cases[0])

static void test_bad_case(void **state) {
        const struct bad_case *bc = *state;
        struct config c;
        size_t n_expect = 0;
        int r;

        poison(&c);
        r = load_text(bc->text, &c);
        while (n_expect < 4 && bc->expect[n_expect])
                n_expect++;
        if (r != bc->r || reports.n != n_expect) {
                print_reports();
                fail_msg("%s: returned %d with %zu reports; expected %d with %zu", bc->name, r, reports.n, bc->r,
                         n_expect);
        }
        for (size_t i = 0; i < n_expect; i++) {
                char want[PATH_MAX + ERRBUF_MAX];

                snprintf(want, sizeof want, "%s%s", conf_path, bc->expect[i]);
                if (strcmp(reports.line[i], want) != 0) {
                        print_reports();
                        fail_msg("%s: report %zu is\n  \"%s\"\nexpected\n  \"%s\"", bc->name, i, reports.line[i], want);
                }
        }
        assert_true(poisoned(&c)); /* *ret untouched */
        assert_false(secret_reported);
}

/* ---- other failures ------------------------------------------------------ */

static void test_unreadable_file(void **state) {
        struct config c;
        char path[PATH_MAX + 32], want[PATH_MAX + 96];

        (void) state;
        poison(&c);
        snprintf(path, sizeof path, "%s/no-such.conf", dir);
        reports.n = 0;
        assert_int_equal(config_load(path, collect, NULL, &c), -ENOENT);
        assert_int_equal(reports.n, 1);
        snprintf(want, sizeof want, "%s: cannot read: No such file or directory", path);
        assert_string_equal(reports.line[0], want);

        reports.n = 0;
        assert_int_equal(config_load(dir, collect, NULL, &c), -EISDIR);
        assert_int_equal(reports.n, 1);
        snprintf(want, sizeof want, "%s: cannot read: Is a directory", dir);
        assert_string_equal(reports.line[0], want);

        /* A NUL byte would cut the text libconfig sees: refused. */
        write_file("nul.conf", "ers: {\0};\n", 10, 0600);
        snprintf(path, sizeof path, "%s/nul.conf", dir);
        reports.n = 0;
        assert_int_equal(config_load(path, collect, NULL, &c), -EINVAL);
        assert_int_equal(reports.n, 1);
        snprintf(want, sizeof want, "%s: contains a NUL byte: not a text file", path);
        assert_string_equal(reports.line[0], want);

        /* No report callback: still the return value. */
        assert_int_equal(config_load(dir, NULL, NULL, &c), -EISDIR);
        assert_true(poisoned(&c));
}

/* Run as root, the load happens in a child that has dropped to "nobody". */
static void test_unreadable_file_eacces(void **state) {
        char path[PATH_MAX + 32], want[PATH_MAX + 96];
        int status = -1;
        pid_t pid;

        (void) state;
        write_text("secret.conf", ERS_NONE WL DB, 0000);
        snprintf(path, sizeof path, "%s/secret.conf", dir);
        snprintf(want, sizeof want, "%s: cannot read: Permission denied", path);
        assert_int_equal(chmod(dir, 0711), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct config c;
                bool ok;

                poison(&c);
                if (geteuid() == 0 && (setgid(65534) < 0 || setuid(65534) < 0))
                        _exit(2);
                reports.n = 0;
                ok = config_load(path, collect, NULL, &c) == -EACCES && reports.n == 1 &&
                     strcmp(reports.line[0], want) == 0 && poisoned(&c);
                if (!ok)
                        print_reports();
                _exit(ok ? 0 : 1);
        }
        assert_int_equal(waitpid(pid, &status, 0), pid);
        assert_int_equal(chmod(dir, 0700), 0);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
}

/* A file named by @include reports with its own name, as written. */
static void test_include(void **state) {
        struct config c;
        char want[PATH_MAX + 96];

        (void) state;
        write_text("extra.conf", "# extra\ncolour = \"blue\";\n", 0600);
        assert_int_equal(load_text(ERS_NONE WL "@include \"extra.conf\"\n" DB, &c), -EINVAL);
        assert_int_equal(reports.n, 1);
        assert_string_equal(reports.line[0], "extra.conf:2: colour: unknown key");

        write_text("extra.conf", DB, 0600);
        assert_int_equal(load_text(ERS_NONE WL "@include \"extra.conf\"\n", &c), 0);
        assert_string_equal(c.odbc_connection, CONN);
        config_free(&c);

        assert_int_equal(load_text(ERS_NONE WL "@include \"missing.conf\"\n", &c), -EINVAL);
        assert_int_equal(reports.n, 1);
        snprintf(want, sizeof want, "%s:3: @include \"missing.conf\": cannot read: No such file or directory",
                 conf_path);
        assert_string_equal(reports.line[0], want);
}

/* Loads `text` as the main file in a child that a blocking open would hang:
 * an alarm ends it (the test fails) instead of the test run.  The reports and
 * the return value come back through a pipe. */
static int load_text_guarded(const char *text, char *ret_report, size_t size) {
        int fds[2], status;
        ssize_t n;
        pid_t pid;

        write_text("ersd.conf", text, 0644);
        assert_int_equal(pipe(fds), 0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                struct config c;
                char out[ERRBUF_MAX + 16];
                int r;

                close(fds[0]);
                alarm(10);
                reports.n = 0;
                r = config_load(conf_path, collect, NULL, &c);
                if (r == 0)
                        config_free(&c);
                n = snprintf(out, sizeof out, "%d %zu %s", r, reports.n, reports.n ? reports.line[0] : "");
                if (write(fds[1], out, (size_t) n) != n)
                        _exit(3);
                _exit(0);
        }
        close(fds[1]);
        n = read(fds[0], ret_report, size - 1);
        close(fds[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
                fail_msg("the configuration load did not end by itself (%s %d): a blocking open?",
                         WIFSIGNALED(status) ? "signal" : "exit",
                         WIFSIGNALED(status) ? WTERMSIG(status) : WEXITSTATUS(status));
        ret_report[n > 0 ? n : 0] = '\0';
        return (int) strtol(ret_report, NULL, 10);
}

/* Every file read gets the main file's checks, without blocking: an
 * @include of a FIFO (relative path: it once hung --check-config, and
 * wedged the daemon on SIGHUP), of a directory, of a device, of a file
 * with a NUL byte or over the size limit is refused with one line at the
 * @include, as is an include loop; a large integer that libconfig 1.5 would
 * wrap silently is caught in an included file as in the main one. */
static void test_include_checked_like_the_main_file(void **state) {
        char got[ERRBUF_MAX + 32], want[PATH_MAX + 256], path[PATH_MAX + 32];
        static char big[1024 * 1024 + 2];
        static const struct {
                const char *name, *directive, *report; /* the report after "FILE:3: " */
        } cases[] = {
                { "a FIFO", "@include \"fifo\"", "@include \"fifo\": cannot read: not a regular file" },
                { "a directory", "@include \"sub\"", "@include \"sub\": cannot read: Is a directory" },
                { "a device", "@include \"/dev/zero\"", "@include \"/dev/zero\": cannot read: not a regular file" },
                { "a NUL byte", "@include \"nul.conf\"", "@include \"nul.conf\": contains a NUL byte: not a text file" },
                { "too large", "@include \"big.conf\"",
                  "@include \"big.conf\": larger than 1048576 bytes: not a configuration file" },
                { "including itself", "@include \"loop.conf\"",
                  NULL /* reported at loop.conf's own line, nine levels down */ },
                { "a control character in the name", "@include \"a\tb\"",
                  "@include: a control character (a line end?) in the file name" },
                { "an unknown escape in the name", "@include \"a\\nb\"",
                  "@include: a backslash that escapes neither \\ nor \" in the file name" },
        };
        (void) state;

        snprintf(path, sizeof path, "%s/fifo", dir);
        assert_int_equal(mkfifo(path, 0600), 0);
        snprintf(path, sizeof path, "%s/sub", dir);
        assert_int_equal(mkdir(path, 0700), 0);
        write_file("nul.conf", "a = 1;\0\n", 8, 0600);
        memset(big, '#', sizeof big - 1);
        write_file("big.conf", big, sizeof big - 1, 0600);
        write_text("loop.conf", "# again\n@include \"loop.conf\"\n", 0600);

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char text[512];

                snprintf(text, sizeof text, ERS_NONE WL "%s\n" DB, cases[i].directive);
                int r = load_text_guarded(text, got, sizeof got);
                if (cases[i].report)
                        snprintf(want, sizeof want, "-22 1 %s:3: %s", conf_path, cases[i].report);
                else
                        snprintf(want, sizeof want, "-22 1 loop.conf:2: @include \"loop.conf\": included files nest "
                                                    "more than 10 deep (does one include itself?)");
                if (r != -EINVAL || strcmp(got, want) != 0)
                        fail_msg("%s: got \"%s\", want \"%s\"", cases[i].name, got, want);
        }

        /* A name whose quote never closes, at the end of the file. */
        assert_int_equal(load_text_guarded(ERS_NONE WL DB "@include \"abc", got, sizeof got), -EINVAL);
        snprintf(want, sizeof want, "-22 1 %s:4: @include: no closing quote", conf_path);
        assert_string_equal(got, want);

        /* libconfig 1.5 reads 4294967596 as 300: caught in an included file too, at its own line. */
        write_text("wrap.conf", "# poll\npoll_interval = 4294967596;\n", 0600);
        assert_int_equal(load_text_guarded(ERS_NONE WL DB "@include \"wrap.conf\"\n", got, sizeof got), -EINVAL);
        assert_non_null(strstr(got, " 1 wrap.conf:2: poll_interval: number too large (out of range 60..86400)"));
}

/* Where an @include is a directive, exactly as libconfig's scanner decides:
 * at the start of a line, outside strings and comments; the rest of the
 * directive's line and the lines after it keep their own numbers; an
 * absolute name is absolute, a relative one is in the main file's
 * directory, whatever the current directory. */
static void test_include_where(void **state) {
        struct config c;
        char text[PATH_MAX + 2048], abs_path[PATH_MAX + 32];
        (void) state;

        write_text("wl.conf", WL, 0600);
        write_text("db.conf", "database: {\n  connection = \"" CONN "\";\n", 0600); /* the group ends outside */
        snprintf(abs_path, sizeof abs_path, "%s/wl.conf", dir);
        /* none of these is a directive: libconfig would refuse an @include it
         * found in a string, and parse one in a comment as nothing */
        snprintf(text, sizeof text,
                 "# @include \"missing.conf\"\n"
                 "/* a comment\n@include \"missing.conf\"\n*/\n"
                 "ers: { base_url = \"https://h.example/r\"; auth = \"none\";\n"
                 "  // @include \"missing.conf\"\n"
                 "};\n"
                 "\t @include \"%s\" /* the rest of the line */\n"
                 "@include \"db.conf\" };\n"
                 "state_dir = \"st\\\"\n@include \\\"missing.conf\\\"\";\n"
                 "colour = 1;\n",
                 abs_path);
        assert_int_equal(load_text(text, &c), -EINVAL);
        if (reports.n != 2) {
                print_reports();
                fail_msg("expected two reports");
        }
        /* at their own lines of the main file, after two includes: the string
         * holding a line end (no @include: nothing was opened), the unknown key */
        char want[PATH_MAX + 128];
        snprintf(want, sizeof want, "%s:10: state_dir: must not contain control characters", conf_path);
        assert_string_equal(reports.line[0], want);
        snprintf(want, sizeof want, "%s:12: colour: unknown key", conf_path);
        assert_string_equal(reports.line[1], want);

        /* a relative include is found from the main file's directory, wherever ersd runs */
        char cwd[PATH_MAX];
        assert_non_null(getcwd(cwd, sizeof cwd));
        assert_int_equal(chdir("/"), 0);
        assert_int_equal(load_text(ERS_NONE "@include \"wl.conf\"\n" DB, &c), 0);
        config_free(&c);
        assert_int_equal(chdir(cwd), 0);
}

static void test_reload_check(void **state) {
        struct config a, b;
        char want[PATH_MAX + 96];

        (void) state;
        assert_int_equal(load_text(good_conf, &a), 0);
        assert_int_equal(load_text(good_conf, &b), 0);
        reports.n = 0;
        assert_int_equal(config_check_reload(&a, &b, collect, NULL), 0);
        assert_int_equal(reports.n, 0);
        config_free(&b);

        /* Reloadable keys changed: nothing to say. */
        assert_int_equal(load_text(ERS_NONE WL "database = {\n  connection = \"" CONN "\";\n"
                                   "  adapter = \"postgresql\";\n"
                                   "  patient_lookup = \"SELECT patient_id FROM patient WHERE nhs_number = ? AND "
                                   "status <> '?'\";\n};\nstate_dir = \"state\";\npoll_interval = 60;\n", &b), 0);
        reports.n = 0;
        assert_int_equal(config_check_reload(&a, &b, collect, NULL), 0);
        config_free(&b);

        /* The database (the patient lookup too: it is prepared at start) and
         * the state directory need a restart. */
        assert_int_equal(load_text(ERS_NONE WL "database: { connection = \"DSN=other\"; adapter = \"sqlite\"; };\n", &b), 0);
        reports.n = 0;
        assert_int_equal(config_check_reload(&a, &b, collect, NULL), 4);
        assert_int_equal(reports.n, 4);
        snprintf(want, sizeof want, "%s: database.connection: changed, but takes effect only after a restart", conf_path);
        assert_string_equal(reports.line[0], want);
        snprintf(want, sizeof want, "%s: database.adapter: changed, but takes effect only after a restart", conf_path);
        assert_string_equal(reports.line[1], want);
        snprintf(want, sizeof want, "%s: database.patient_lookup: changed, but takes effect only after a restart",
                 conf_path);
        assert_string_equal(reports.line[2], want);
        snprintf(want, sizeof want, "%s: state_dir: changed, but takes effect only after a restart", conf_path);
        assert_string_equal(reports.line[3], want);
        assert_false(secret_reported);
        config_free(&a);
        config_free(&b);
}

/* Every allocation of a load fails in turn: -ENOMEM, *ret untouched, nothing
 * leaked (valgrind / ASan say so). */
static void test_allocation_failures(void **state) {
        struct config c;
        long n;
        int r;

        (void) state;
        write_text("ersd.conf", good_conf, 0644);
        if (!failalloc_linked())
                fail_msg("test_config must be linked with ALLOC_WRAP (see the Makefile)");

        for (n = 0;; n++) {
                poison(&c);
                reports.n = 0;
                failalloc_arm(n);
                r = config_load(conf_path, collect, NULL, &c);
                if (!failalloc_disarm()) {
                        assert_int_equal(r, 0);
                        break;
                }
                assert_int_equal(r, -ENOMEM);
                assert_int_equal(reports.n, 1);
                assert_non_null(strstr(reports.line[0], ": out of memory"));
                assert_true(poisoned(&c));
                assert_true(n < 10000);
        }
        assert_true(n > 10); /* the walk did allocate, and each one was failed once */
        assert_string_equal(c.bearer_token, TOKEN);
        config_free(&c);
}

int main(void) {
        static struct CMUnitTest tests[16 + N_BAD_CASES];
        static const struct CMUnitTest fixed[] = {
                cmocka_unit_test(test_good_config_every_field),
                cmocka_unit_test(test_defaults),
                cmocka_unit_test(test_adapters_accepted),
                cmocka_unit_test(test_mapping_accepted),
                cmocka_unit_test(test_base_urls_accepted),
                cmocka_unit_test(test_relative_paths),
                cmocka_unit_test(test_shipped_conf),
                cmocka_unit_test(test_shipped_conf_as_is),
                cmocka_unit_test(test_unreadable_file),
                cmocka_unit_test(test_unreadable_file_eacces),
                cmocka_unit_test(test_include),
                cmocka_unit_test(test_include_checked_like_the_main_file),
                cmocka_unit_test(test_include_where),
                cmocka_unit_test(test_reload_check),
                cmocka_unit_test(test_allocation_failures),
        };
        size_t n = 0;

        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
                tests[n++] = fixed[i];
        for (size_t i = 0; i < N_BAD_CASES; i++)
                tests[n++] = (struct CMUnitTest) {
                        .name = bad_cases[i].name,
                        .test_func = test_bad_case,
                        .initial_state = (void *) &bad_cases[i],
                };
        return _cmocka_run_group_tests("config", tests, n, setup, teardown);
}
