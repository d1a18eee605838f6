/* SPDX-License-Identifier: MIT */
/*
 * Live e-RS access against the mock: signed-JWT client credentials (the mock's
 * token endpoint checks every assertion as the platform does), token expiry
 * and revocation, the secret files' checks, and TLS with a test CA (wrong CA,
 * expired certificate, wrong host name, mutual TLS, and the object store
 * never shown our client certificate).
 *
 * Keys and certificates are made at test time with the openssl command in a
 * temporary directory and removed with it: no private key is in the tree.
 * Every test runs its own mock (started with the options it needs) into its
 * own fresh PAS database, so "no data change" is "no row at all".
 */
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

#include "tests/support/testutil.h"
#include "tests/support/verify.h"

#define API_KEY "ersd-test-api-key-7d41b9"
#define KID     "ersd-test-kid-1"

struct env {
        char *dir;            /* owned temp directory: keys, certificates, configs, databases */
        struct mock mock;     /* the running test's mock, stopped by the teardown if the test fails */
        bool tls;             /* the mock serves https (control calls go through the test CA) */
        char base_url[128];
        char conf[600];
        char connection[700];
        unsigned n;           /* databases made so far: each run gets a fresh one */
};

static struct env E;

static void pathf(char *buf, size_t size, const char *name) {
        snprintf(buf, size, "%s/%s", E.dir, name);
}

static int make_cert(const char *name, const char *ca, const char *ext, const char *days) {
        return pki_make_cert(E.dir, name, ca, ext, days);
}

static int make_ca(const char *name) {
        return pki_make_ca(E.dir, name, name[2] ? "/CN=ersd test CA two" : "/CN=ersd test CA");
}

/* The application's signing key (the trust's, registered with the platform), and another. */
static int make_signing_key(const char *name) {
        char key[600], pub[600];

        snprintf(key, sizeof key, "%s/%s.pem", E.dir, name);
        snprintf(pub, sizeof pub, "%s/%s.pub", E.dir, name);
        RUN_QUIET("openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-out", key);
        RUN_QUIET("openssl", "pkey", "-in", key, "-pubout", "-out", pub);
        return chmod(key, 0600);
}

static int group_setup(void **state) {
        char p[600];
        (void) state;

        E.dir = tmpdir_make();
        if (!E.dir)
                return -1;
        if (make_signing_key("signing") < 0 || make_signing_key("other") < 0 || make_ca("ca") < 0 ||
            make_ca("ca2") < 0 ||
            make_cert("server", "ca", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n", "2") < 0 ||
            make_cert("expired", "ca", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n", "-1") < 0 ||
            make_cert("wronghost", "ca", "subjectAltName=DNS:wrong.example\nextendedKeyUsage=serverAuth\n", "2") < 0 ||
            make_cert("client", "ca", "extendedKeyUsage=clientAuth\n", "2") < 0)
                return -1;
        pathf(p, sizeof p, "api-key");
        return write_text(p, API_KEY "\n", 0600);
}

static int group_teardown(void **state) {
        (void) state;
        mock_stop(&E.mock);
        tmpdir_remove(E.dir);
        free(E.dir);
        return 0;
}

static int test_teardown(void **state) {
        (void) state;
        mock_stop(&E.mock);
        return 0;
}

/* Starts the test's mock: signed-JWT access always, https when `tls_cert` (a name) is given. */
static void start_mock(const char *tls_cert, bool client_ca, const char *const *extra) {
        char pub[600], crt[600], key[600], ca[sizeof E.mock.ca_file];
        const char *args[40];
        size_t n = 0;

        pathf(pub, sizeof pub, "signing.pub");
        snprintf(crt, sizeof crt, "%s/%s.crt", E.dir, tls_cert ? tls_cert : "");
        snprintf(key, sizeof key, "%s/%s.key", E.dir, tls_cert ? tls_cert : "");
        pathf(ca, sizeof ca, "ca.crt");
        const char *base[] = { "--referrals", "3", "--attachments", "1", "--big-attachment", "0", "--app-restricted",
                               "--jwks", pub, "--kid", KID, "--api-key", API_KEY };
        for (size_t i = 0; i < sizeof base / sizeof base[0]; i++)
                args[n++] = base[i];
        if (tls_cert) {
                args[n++] = "--tls-cert";
                args[n++] = crt;
                args[n++] = "--tls-key";
                args[n++] = key;
        }
        if (client_ca) {
                args[n++] = "--tls-client-ca";
                args[n++] = ca;
        }
        for (size_t i = 0; extra && extra[i] && n < 38; i++)
                args[n++] = extra[i];
        args[n] = NULL;
        assert_int_equal(mock_start(&E.mock, args), 0);
        E.tls = tls_cert != NULL;
        if (E.tls)
                mock_use_https(&E.mock, ca);
        snprintf(E.base_url, sizeof E.base_url, "%s", E.mock.base_url);
}

/* A control call to the test's mock (over https, verified with the test CA, when it serves https). */
static json_object *control(const char *path, bool post) {
        json_object *o = NULL;

        if (post) {
                long status = mock_post(&E.mock, path);
                if (status != 200)
                        fail_msg("control call %s failed (HTTP %ld)", path, status);
                return NULL;
        }
        o = mock_get(&E.mock, path);
        if (!o)
                fail_msg("control call %s failed", path);
        return o;
}

static long long control_count(const char *path, const char *field) {
        json_object *o = control(path, false);
        long long v = json_object_get_int64(json_object_object_get(o, field));

        json_object_put(o);
        return v;
}

/* A configuration for the test's mock with `ers_extra` in the ers group, and a fresh database. */
static void fresh_config(const char *ers_extra) {
        char state[620];

        E.n++;
        snprintf(E.conf, sizeof E.conf, "%s/ersd-%u.conf", E.dir, E.n);
        snprintf(E.connection, sizeof E.connection, "Driver=SQLite3;Database=%s/pas-%u.db", E.dir, E.n);
        snprintf(state, sizeof state, "%s/state", E.dir);
        assert_int_equal(write_test_config(E.conf, E.base_url, ers_extra, E.connection, NULL, state, NULL), 0);
}

/* The ers-group lines of signed-JWT access with signing key `key` (a name) and key id `kid`. */
static const char *jwt_lines(const char *key, const char *kid) {
        static char s[1600];

        snprintf(s, sizeof s,
                 "  auth = \"jwt\";\n"
                 "  api_key_file = \"%s/api-key\";\n"
                 "  private_key_file = \"%s/%s.pem\";\n"
                 "  key_id = \"%s\";\n",
                 E.dir, E.dir, key, kid);
        return s;
}

/* ersd -c E.conf args… (NULL: loop mode); no secret, token, assertion or key, the
 * API key above all, in anything it printed. */
static struct run run_checked(const char *const *args) {
        struct run r = run_ersd(E.conf, NULL, args, NULL);

        assert_no_patient_identifier("ersd's stdout", r.out, NULL, ARGS(API_KEY));
        assert_no_patient_identifier("ersd's stderr", r.err, NULL, ARGS(API_KEY));
        return r;
}

/* ersd --init-db then --once; the --once run, checked for secrets. */
static struct run sync_once(void) {
        struct run r = run_checked(ARGS("--init-db"));

        if (r.status != 0)
                fail_msg("ersd --init-db exited %d: %s", r.status, r.err);
        run_free(&r);
        return run_checked(ARGS("--once"));
}

static long long pas_count(const char *table) {
        char sql[128];
        struct db *d = db_open(E.connection);
        long long n;

        assert_non_null(d);
        snprintf(sql, sizeof sql, "SELECT COUNT(*) FROM %s", table);
        n = db_int(d, sql, 0, NULL);
        db_close(d);
        return n;
}

/* A run that must fail with `want` in its error, leaving the PAS empty. */
static void assert_refused(const char *want) {
        struct run r = sync_once();

        if (r.status != 1 || !strstr(r.err, want))
                fail_msg("expected exit 1 and \"%s\", got exit %d: %s", want, r.status, r.err);
        run_free(&r);
        assert_int_equal(pas_count("ers_referral"), 0);
        assert_int_equal(pas_count("ers_ledger"), 0);
}

/* ---- signed-JWT access ---------------------------------------------------- */

/* The whole sync on one token: the assertion passes every platform check. */
static void test_jwt_sync(void **state) {
        struct run r;
        (void) state;

        start_mock(NULL, false, NULL);
        fresh_config(jwt_lines("signing", KID));
        r = sync_once();
        if (r.status != 0)
                fail_msg("ersd --once with signed-JWT access exited %d: %s", r.status, r.err);
        run_free(&r);
        assert_int_equal(pas_count("ers_ledger"), 3);
        assert_int_equal(control_count("/_mock/oauth", "issued"), 1);
        assert_int_equal(control_count("/_mock/oauth", "refused"), 0);
        assert_int_equal(control_count("/_mock/oauth", "api_refused"), 0);
        /* the object store was reached, and never saw the access token */
        assert_true(control_count("/_mock/stats", "store") > 0);
        assert_int_equal(control_count("/_mock/stats", "credential_leaks"), 0);
}

/* Tokens that expire every few requests mid-run, and one revoked: each is
 * renewed with a fresh assertion (a new jti) and the run completes. */
static void test_expiry_mid_run_renews(void **state) {
        struct run r;
        char lines[1700];
        (void) state;

        start_mock(NULL, false, NULL);
        /* One fetching lane: the mock counts a token's uses across every lane that shares it, so
         * with four, the others could spend a renewed token's four uses before the request that
         * renewed it is sent again (a race of the test's, not of e-RS, whose tokens end by time). */
        snprintf(lines, sizeof lines, "%s  parallel_fetches = 1;\n", jwt_lines("signing", KID));
        fresh_config(lines);
        control("/_mock/oauth/expire?after=4", true);
        r = sync_once();
        if (r.status != 0)
                fail_msg("ersd --once with tokens expiring every 4 requests exited %d: %s", r.status, r.err);
        run_free(&r);
        assert_int_equal(pas_count("ers_ledger"), 3);
        assert_true(control_count("/_mock/oauth", "issued") >= 3);
        assert_true(control_count("/_mock/oauth", "api_refused") >= 2);
        assert_int_equal(control_count("/_mock/oauth", "refused"), 0); /* no assertion refused: no jti reused */
        assert_int_equal(control_count("/_mock/oauth", "jti_replays"), 0);
}

/* The token endpoint refuses the assertion: one clear line, nothing written. */
static void test_wrong_key(void **state) {
        (void) state;
        start_mock(NULL, false, NULL);
        fresh_config(jwt_lines("other", KID));
        assert_refused("signature does not match the public key");
}

/* Plain ersd (the service) with a key the token endpoint refuses: a first token is
 * fetched before it would say READY=1, so it stops there with the platform's reason
 * (exit 1), before any worklist call. */
static void test_wrong_key_stops_the_service_start(void **state) {
        struct run r;
        (void) state;
        start_mock(NULL, false, NULL);
        fresh_config(jwt_lines("other", KID));
        r = run_checked(ARGS("--init-db"));
        assert_int_equal(r.status, 0);
        run_free(&r);
        r = run_checked(NULL); /* loop mode: it must end by itself */
        if (r.status != 1 || !strstr(r.err, "signature does not match the public key") || strstr(r.out, "sync "))
                fail_msg("expected exit 1 at start with the token endpoint's reason, got exit %d: %s", r.status, r.err);
        run_free(&r);
        assert_int_equal(control_count("/_mock/stats", "A008"), 0);
}

/* The platform refuses the API key and quotes the `iss` claim it got, which
 * is the API key: the line gives its reason with the key scrubbed out. */
static void test_api_key_quoted_back_is_scrubbed(void **state) {
        static const char *const other_key[] = { "--api-key", "an-api-key-the-platform-knows", NULL };
        (void) state;
        start_mock(NULL, false, other_key);
        fresh_config(jwt_lines("signing", KID));
        assert_refused("HTTP 401, invalid_client: Invalid 'iss'/'sub' claims in JWT - unknown API key '[secret]'");
}

static void test_wrong_kid(void **state) {
        (void) state;
        start_mock(NULL, false, NULL);
        fresh_config(jwt_lines("signing", "not-the-registered-kid"));
        assert_refused("Invalid 'kid' header in JWT - no matching public key");
}

/* The platform's clock 400 s behind ours: our exp is more than 5 minutes ahead of it. */
static void test_clock_behind(void **state) {
        static const char *const skew[] = { "--clock-skew", "-400", NULL };
        (void) state;
        start_mock(NULL, false, skew);
        fresh_config(jwt_lines("signing", KID));
        assert_refused("more than 5 minutes in future (is this machine's clock right?)");
}

/* … and 400 s ahead of ours: our assertion has already expired. */
static void test_clock_ahead(void **state) {
        static const char *const skew[] = { "--clock-skew", "400", NULL };
        (void) state;
        start_mock(NULL, false, skew);
        fresh_config(jwt_lines("signing", KID));
        assert_refused("JWT has expired (is this machine's clock right?)");
}

/* Access revoked at the platform: the new token is refused too, and ersd says so. */
static void test_revoked(void **state) {
        (void) state;
        start_mock(NULL, false, NULL);
        fresh_config(jwt_lines("signing", KID));
        control("/_mock/oauth/revoke?future=1", true);
        assert_refused("HTTP 401, e-RS NO_ACCESS");
        assert_refused("refused again with a newly issued access token");
        assert_int_equal(control_count("/_mock/oauth", "refused"), 0);
}

/* ---- the secret files ------------------------------------------------------ */

static struct run check_config(void) {
        return run_checked(ARGS("--check-config"));
}

static void assert_config_refused(const char *want) {
        char where[700];
        struct run r = check_config();

        snprintf(where, sizeof where, "%s:", E.conf);
        if (r.status != 2 || !strstr(r.err, want) || !strstr(r.err, where))
                fail_msg("expected exit 2 and \"%s\" at %s, got exit %d: %s", want, where, r.status, r.err);
        run_free(&r);
}

static void test_secret_files_checked(void **state) {
        char key[600], cred[600], lines[1600];
        struct run r;
        (void) state;

        snprintf(E.base_url, sizeof E.base_url, "https://int.api.service.nhs.uk/referrals");
        pathf(key, sizeof key, "signing.pem");

        fresh_config(jwt_lines("signing", KID));
        r = check_config();
        if (r.status != 0)
                fail_msg("a correct signed-JWT configuration was refused: %s", r.err);
        run_free(&r);

        assert_int_equal(chmod(key, 0640), 0);
        assert_config_refused(":5: ers.private_key_file: must not be accessible by group or others (mode 0640)");
        assert_int_equal(chmod(key, 0600), 0);

        if (geteuid() == 0) { /* root can give the file away; anyone else cannot, and need not */
                assert_int_equal(chown(key, 65534, 65534), 0);
                assert_config_refused(":5: ers.private_key_file: owned by uid 65534, not by the user ersd runs as");
                assert_int_equal(chown(key, 0, 0), 0);
        }

        /* Not a private key: the API key file named as one. */
        fresh_config("  auth = \"jwt\";\n  api_key_file = \"api-key\";\n  private_key_file = \"api-key\";\n"
                     "  key_id = \"k\";\n");
        assert_config_refused(":5: ers.private_key_file: not an unencrypted PEM private key");

        /* Missing keys, and jwt keys without auth = "jwt". */
        fresh_config("  auth = \"jwt\";\n");
        assert_config_refused(": ers.private_key_file: required when ers.auth is \"jwt\"");
        fresh_config("  auth = \"none\";\n  key_id = \"k\";\n");
        assert_config_refused(":4: ers.key_id: set, but ers.auth is \"none\"; it is for \"jwt\"");

        /* A client certificate without its key. */
        snprintf(lines, sizeof lines, "  auth = \"none\";\n  client_cert_file = \"%s/client.crt\";\n", E.dir);
        fresh_config(lines);
        assert_config_refused(":4: ers.client_cert_file: set without ers.client_key_file");

        /* systemd credentials: "%d/NAME" is NAME in $CREDENTIALS_DIRECTORY. */
        fresh_config("  auth = \"jwt\";\n  api_key_file = \"%d/api-key\";\n  private_key_file = \"%d/signing.pem\";\n"
                     "  key_id = \"k\";\n");
        unsetenv("CREDENTIALS_DIRECTORY");
        assert_config_refused(":4: ers.api_key_file: starts with %d/ (a systemd credential) but "
                              "$CREDENTIALS_DIRECTORY is not set");
        snprintf(cred, sizeof cred, "%s", E.dir);
        setenv("CREDENTIALS_DIRECTORY", cred, 1);
        r = check_config();
        unsetenv("CREDENTIALS_DIRECTORY");
        if (r.status != 0)
                fail_msg("keys from $CREDENTIALS_DIRECTORY were refused: %s", r.err);
        run_free(&r);
}

/* ---- TLS ------------------------------------------------------------------- */

static const char *tls_lines(const char *ca, bool client_cert) {
        static char s[3000];
        int n;

        n = snprintf(s, sizeof s, "%s  ca_file = \"%s/%s.crt\";\n", jwt_lines("signing", KID), E.dir, ca);
        if (client_cert)
                snprintf(s + n, sizeof s - (size_t) n,
                         "  client_cert_file = \"%s/client.crt\";\n  client_key_file = \"%s/client.key\";\n", E.dir,
                         E.dir);
        return s;
}

/* Mutual TLS: the API origin and its token endpoint get our certificate, the
 * object store (https too) never does, nor any header of ours. */
static void test_mutual_tls(void **state) {
        struct run r;
        (void) state;

        start_mock("server", true, NULL);
        fresh_config(tls_lines("ca", true));
        r = sync_once();
        if (r.status != 0)
                fail_msg("ersd --once over mutual TLS exited %d: %s", r.status, r.err);
        run_free(&r);
        assert_int_equal(pas_count("ers_ledger"), 3);
        assert_true(pas_count("ers_document_part") > 0);
        assert_true(control_count("/_mock/tls", "api_client_certs") > 0);
        assert_int_equal(control_count("/_mock/tls", "api_refused"), 0);
        assert_int_equal(control_count("/_mock/tls", "store_client_certs"), 0);
        assert_true(control_count("/_mock/stats", "store") > 0);
        assert_int_equal(control_count("/_mock/stats", "credential_leaks"), 0);
        assert_int_equal(control_count("/_mock/oauth", "issued"), 1);
}

static void test_missing_client_certificate(void **state) {
        (void) state;
        start_mock("server", true, NULL);
        fresh_config(tls_lines("ca", false));
        assert_refused("HTTP 400: \"400 No required SSL certificate was sent\"");
        assert_true(control_count("/_mock/tls", "api_refused") > 0);
        assert_int_equal(control_count("/_mock/oauth", "issued"), 0);
}

/* The same TLS front end before the API itself (no token endpoint: auth none):
 * its plain-text page is not an OperationOutcome, and the line still quotes
 * its words, not just the status. */
static void test_missing_client_certificate_api_says_why(void **state) {
        char lines[800];
        (void) state;
        start_mock("server", true, NULL);
        snprintf(lines, sizeof lines, "  auth = \"none\";\n  ca_file = \"%s/ca.crt\";\n", E.dir);
        fresh_config(lines);
        assert_refused("A008 worklist REFERRALS_FOR_REVIEW service 31001: HTTP 400: "
                       "\"400 No required SSL certificate was sent\" (correlation id ");
        assert_true(control_count("/_mock/tls", "api_refused") > 0);
}

static void test_wrong_ca(void **state) {
        (void) state;
        start_mock("server", false, NULL);
        fresh_config(tls_lines("ca2", false));
        assert_refused("TLS/protocol: SSL certificate problem: unable to get local issuer certificate");
}

static void test_expired_certificate(void **state) {
        (void) state;
        start_mock("expired", false, NULL);
        fresh_config(tls_lines("ca", false));
        assert_refused("TLS/protocol: SSL certificate problem: certificate has expired");
}

static void test_wrong_host_name(void **state) {
        (void) state;
        start_mock("wronghost", false, NULL);
        fresh_config(tls_lines("ca", false));
        assert_refused("TLS/protocol: SSL: no alternative certificate subject name matches target host name "
                       "'127.0.0.1'");
}

/* Over https every TLS record reaches ersd as a read of its own.  With the
 * mock's A005 answers sent 3 bytes at a time, reads end inside UTF-8
 * characters (the referrals' comments hold an é, an en dash and a 4-byte
 * emoji), which json-c 0.16 refuses as invalid when a character is cut
 * between two of its calls: every referral must still be read, every field
 * stored as sent. */
static void test_utf8_cut_between_reads(void **state) {
        struct verify_result v;
        json_object *manifest;
        struct db *d;
        struct run r;
        (void) state;

        start_mock("server", false, NULL);
        control("/_mock/fault?endpoint=A005&kind=trickle&count=100", true);
        fresh_config(tls_lines("ca", false));
        r = sync_once();
        if (r.status != 0)
                fail_msg("ersd --once with answers cut inside characters exited %d: %s", r.status, r.err);
        run_free(&r);
        manifest = control("/_mock/manifest", false);
        d = db_open(E.connection);
        assert_non_null(d);
        verify_pas(d, manifest, &v);
        assert_int_equal(v.referrals_written, 3);
        assert_int_equal(v.referrals_missing + v.referrals_stale + v.fields_mismatched, 0);
        assert_int_equal(v.documents_mismatched + v.documents_missing, 0);
        db_close(d);
        json_object_put(manifest);
}

/* ---- sizes ----------------------------------------------------------------- */

/* An attachment above ers.max_attachment_mib is refused while it streams:
 * recorded as not fetched, with why, and none of its bytes kept. */
static void test_attachment_over_maximum(void **state) {
        static const char *const big[] = { "--big-attachment", "3145728", NULL };
        char lines[1800];
        struct run r;
        (void) state;

        start_mock(NULL, false, big);
        snprintf(lines, sizeof lines, "%s  max_attachment_mib = 1;\n", jwt_lines("signing", KID));
        fresh_config(lines);
        r = sync_once();
        run_free(&r);
        struct db *d = db_open(E.connection);
        assert_non_null(d);
        char *reason = db_text(d, "SELECT not_fetched_reason FROM ers_document WHERE declared_size > 2097152", 0,
                               NULL, NULL);
        if (!reason || !strstr(reason, "larger than the configured maximum"))
                fail_msg("the 3 MiB attachment was not refused as too large: %s", reason ? reason : "(no row)");
        free(reason);
        assert_int_equal(db_int(d, "SELECT COUNT(*) FROM ers_document_part p JOIN ers_document d "
                                   "ON p.document_id = d.document_id WHERE d.declared_size > 2097152", 0, NULL),
                         0);
        db_close(d);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_teardown(test_jwt_sync, test_teardown),
                cmocka_unit_test_teardown(test_expiry_mid_run_renews, test_teardown),
                cmocka_unit_test_teardown(test_wrong_key, test_teardown),
                cmocka_unit_test_teardown(test_wrong_key_stops_the_service_start, test_teardown),
                cmocka_unit_test_teardown(test_wrong_kid, test_teardown),
                cmocka_unit_test_teardown(test_api_key_quoted_back_is_scrubbed, test_teardown),
                cmocka_unit_test_teardown(test_clock_behind, test_teardown),
                cmocka_unit_test_teardown(test_clock_ahead, test_teardown),
                cmocka_unit_test_teardown(test_revoked, test_teardown),
                cmocka_unit_test_teardown(test_secret_files_checked, test_teardown),
                cmocka_unit_test_teardown(test_mutual_tls, test_teardown),
                cmocka_unit_test_teardown(test_utf8_cut_between_reads, test_teardown),
                cmocka_unit_test_teardown(test_missing_client_certificate, test_teardown),
                cmocka_unit_test_teardown(test_missing_client_certificate_api_says_why, test_teardown),
                cmocka_unit_test_teardown(test_wrong_ca, test_teardown),
                cmocka_unit_test_teardown(test_expired_certificate, test_teardown),
                cmocka_unit_test_teardown(test_wrong_host_name, test_teardown),
                cmocka_unit_test_teardown(test_attachment_over_maximum, test_teardown),
        };
        return cmocka_run_group_tests_name("auth", tests, group_setup, group_teardown);
}
