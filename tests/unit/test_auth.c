/* SPDX-License-Identifier: MIT */
/*
 * daemon/auth.c without a network: base64url, the client assertion (decoded
 * and its RS512 signature verified with the key's public half), the token
 * answer (expires_in as a string or a number, and what is refused), and when
 * the cached token is renewed, on a clock the test sets.
 */
#include <errno.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "daemon/auth.h"

#define TOKEN_URL "https://int.api.service.nhs.uk/oauth2/token"

static EVP_PKEY *key;   /* made once: RSA 2048 */
static char *key_pem;

static int group_setup(void **state) {
        BIO *bio = BIO_new(BIO_s_mem());
        char *p;
        long n;
        (void) state;

        key = EVP_RSA_gen(2048);
        if (!key || !bio || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
                return -1;
        n = BIO_get_mem_data(bio, &p);
        key_pem = strndup(p, (size_t) n);
        BIO_free(bio);
        return key_pem ? 0 : -1;
}

static int group_teardown(void **state) {
        (void) state;
        EVP_PKEY_free(key);
        free(key_pem);
        return 0;
}

static struct auth *auth_for_test(void) {
        struct config c = { .private_key_pem = key_pem, .api_key = "test-api-key", .key_id = "kid-1",
                            .token_url = TOKEN_URL };
        struct errbuf e = { "" };
        struct auth *a = NULL;

        if (auth_new(&c, &a, &e) < 0)
                fail_msg("auth_new: %s", e.msg);
        return a;
}

static void test_base64url(void **state) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "", "" }, { "f", "Zg" }, { "fo", "Zm8" }, { "foo", "Zm9v" }, { "foob", "Zm9vYg" },
                { "fooba", "Zm9vYmE" }, { "foobar", "Zm9vYmFy" }, { "\xfb\xff\xbf", "-_-_" },
        };
        (void) state;

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                char *out = NULL;
                assert_int_equal(base64url_encode(cases[i].in, strlen(cases[i].in), &out), 0);
                assert_string_equal(out, cases[i].out);
                free(out);
        }
}

/* Decodes base64url (test helper, no padding). */
static unsigned char *b64url_decode(const char *s, size_t n, size_t *ret_len) {
        char *std = malloc(n + 4);
        unsigned char *out = malloc(n + 4);
        size_t m = n;
        int len;

        assert_non_null(std);
        assert_non_null(out);
        for (size_t i = 0; i < n; i++)
                std[i] = s[i] == '-' ? '+' : s[i] == '_' ? '/' : s[i];
        while (m % 4)
                std[m++] = '=';
        len = EVP_DecodeBlock(out, (const unsigned char *) std, (int) m);
        assert_true(len >= 0);
        len -= (int) (m - n); /* the padding we added decodes to zero bytes */
        out[len] = '\0';
        free(std);
        *ret_len = (size_t) len;
        return out;
}

static const char *field(json_object *o, const char *k) {
        json_object *v = json_object_object_get(o, k);
        return v ? json_object_get_string(v) : NULL;
}

/* The form, its assertion's header and claims, and the signature. */
static void test_assertion(void **state) {
        struct auth *a = auth_for_test();
        struct errbuf e = { "" };
        char *form = NULL, *form2 = NULL;
        const time_t now = 1795464000;
        (void) state;

        assert_int_equal(auth_token_form(a, now, &form, &e), 0);
        const char *prefix = "grant_type=client_credentials&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3A"
                             "client-assertion-type%3Ajwt-bearer&client_assertion=";
        assert_memory_equal(form, prefix, strlen(prefix));
        const char *jwt = form + strlen(prefix);
        const char *dot1 = strchr(jwt, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
        assert_non_null(dot2);
        assert_null(strchr(dot2 + 1, '.'));

        size_t hl, cl, sl;
        unsigned char *h = b64url_decode(jwt, (size_t) (dot1 - jwt), &hl);
        unsigned char *c = b64url_decode(dot1 + 1, (size_t) (dot2 - dot1 - 1), &cl);
        unsigned char *sig = b64url_decode(dot2 + 1, strlen(dot2 + 1), &sl);
        json_object *header = json_tokener_parse((char *) h), *claims = json_tokener_parse((char *) c);
        assert_non_null(header);
        assert_non_null(claims);
        assert_string_equal(field(header, "alg"), "RS512");
        assert_string_equal(field(header, "typ"), "JWT");
        assert_string_equal(field(header, "kid"), "kid-1");
        assert_string_equal(field(claims, "iss"), "test-api-key");
        assert_string_equal(field(claims, "sub"), "test-api-key");
        assert_string_equal(field(claims, "aud"), TOKEN_URL);
        assert_int_equal(json_object_get_int64(json_object_object_get(claims, "iat")), now);
        int64_t exp = json_object_get_int64(json_object_object_get(claims, "exp"));
        assert_true(exp > now && exp <= now + 300);
        assert_int_equal(strlen(field(claims, "jti")), 36);

        /* RS512 over "header.claims", verified with the public half. */
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha512(), NULL, key), 1);
        assert_int_equal(EVP_DigestVerify(md, sig, sl, (const unsigned char *) jwt, (size_t) (dot2 - jwt)), 1);
        EVP_MD_CTX_free(md);

        /* A second assertion has another jti. */
        assert_int_equal(auth_token_form(a, now, &form2, &e), 0);
        assert_string_not_equal(form, form2);

        json_object_put(header);
        json_object_put(claims);
        free(h);
        free(c);
        free(sig);
        auth_wipe_free(form);
        auth_wipe_free(form2);
        auth_free(a);
}

static int accept_text(struct auth *a, const char *json, int64_t now_ms, struct errbuf *e) {
        json_object *o = json_tokener_parse(json);
        int r = auth_token_accept(a, o, now_ms, e);

        json_object_put(o);
        return r;
}

/* expires_in as the platform sends it (a string), as a number, and what is refused. */
static void test_token_answer(void **state) {
        static const struct {
                const char *json;
                int want;
        } cases[] = {
                { "{\"access_token\":\"tok1\",\"expires_in\":\"599\",\"token_type\":\"Bearer\"}", 0 },
                { "{\"access_token\":\"tok1\",\"expires_in\":599}", 0 },
                { "{\"access_token\":\"tok1\",\"expires_in\":\"\"}", -EBADMSG },
                { "{\"access_token\":\"tok1\",\"expires_in\":\"10m\"}", -EBADMSG },
                { "{\"access_token\":\"tok1\",\"expires_in\":\"0\"}", -EBADMSG },
                { "{\"access_token\":\"tok1\",\"expires_in\":-5}", -EBADMSG },
                { "{\"access_token\":\"tok1\"}", -EBADMSG },
                { "{\"expires_in\":\"599\"}", -EBADMSG },
                { "{\"access_token\":\"two words\",\"expires_in\":\"599\"}", -EBADMSG },
                { "{\"access_token\":\"tok1\",\"expires_in\":\"599\",\"token_type\":\"MAC\"}", -EBADMSG },
                { "[]", -EBADMSG },
        };
        (void) state;

        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                struct auth *a = auth_for_test();
                struct errbuf e = { "" };
                int r = accept_text(a, cases[i].json, 1000, &e);
                if (r != cases[i].want)
                        fail_msg("case %zu: got %d (%s), want %d", i, r, e.msg, cases[i].want);
                if (r == 0)
                        assert_string_equal(auth_header_line(a), "Authorization: Bearer tok1");
                else
                        assert_null(auth_header_line(a));
                assert_null(strstr(e.msg, "tok1")); /* the token never in a message */
                auth_free(a);
        }
}

/* Renewed a tenth of its lifetime before expiry, at most a minute; forgotten after a 401. */
static void test_renewal(void **state) {
        struct auth *a = auth_for_test();
        struct errbuf e = { "" };
        (void) state;

        assert_false(auth_token_fresh(a, 0)); /* none yet */
        assert_int_equal(accept_text(a, "{\"access_token\":\"t\",\"expires_in\":\"600\"}", 1000, &e), 0);
        assert_true(auth_token_fresh(a, 1000));
        assert_true(auth_token_fresh(a, 1000 + 539999));
        assert_false(auth_token_fresh(a, 1000 + 540000)); /* 60 s before expiry */

        assert_int_equal(accept_text(a, "{\"access_token\":\"t\",\"expires_in\":\"10\"}", 0, &e), 0);
        assert_true(auth_token_fresh(a, 8999));
        assert_false(auth_token_fresh(a, 9000)); /* 1 s (a tenth) before expiry */

        auth_forget(a);
        assert_false(auth_token_fresh(a, 0));
        assert_null(auth_header_line(a));
        auth_free(a);
}

static void test_private_key_checked(void **state) {
        struct errbuf e = { "" };
        EVP_PKEY *small = EVP_RSA_gen(1024);
        BIO *bio = BIO_new(BIO_s_mem());
        char *p;
        long n;
        (void) state;

        assert_int_equal(auth_check_private_key(key_pem, strlen(key_pem), &e), 0);
        assert_int_equal(auth_check_private_key("not a key", 9, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "not an unencrypted PEM private key"));

        assert_int_equal(PEM_write_bio_PrivateKey(bio, small, NULL, NULL, 0, NULL, NULL), 1);
        n = BIO_get_mem_data(bio, &p);
        assert_int_equal(auth_check_private_key(p, (size_t) n, &e), -EINVAL);
        assert_non_null(strstr(e.msg, "1024 bits"));
        BIO_free(bio);
        EVP_PKEY_free(small);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_base64url),
                cmocka_unit_test(test_assertion),
                cmocka_unit_test(test_token_answer),
                cmocka_unit_test(test_renewal),
                cmocka_unit_test(test_private_key_checked),
        };
        return cmocka_run_group_tests_name("auth", tests, group_setup, group_teardown);
}
