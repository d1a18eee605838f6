/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: the token endpoint's answer (OAuth 2.0 client credentials,
 * daemon/auth.h), as JSON text through the same text parser as e-RS answers,
 * then auth_token_accept.  It is taken or refused cleanly, and a refusal's
 * error line never quotes the access_token it was given (a secret).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "daemon/auth.h"
#include "daemon/fhir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static struct auth *auth; /* one key for the whole run: RSA generation is slow */

static void setup_once(void) {
        EVP_PKEY *key = EVP_RSA_gen(2048);
        BIO *bio = BIO_new(BIO_s_mem());
        struct errbuf e = { { 0 } };
        char *p, *pem;
        long n;

        if (!key || !bio || PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL) != 1)
                abort();
        n = BIO_get_mem_data(bio, &p);
        pem = strndup(p, (size_t) n);
        if (!pem)
                abort();
        struct config c = { .private_key_pem = pem, .api_key = "fuzz-api-key", .key_id = "kid-1",
                            .token_url = "https://token.example/oauth2/token" };
        if (auth_new(&c, &auth, &e) < 0)
                abort();
        auth_wipe_free(pem);
        BIO_free(bio);
        EVP_PKEY_free(key);
}

/* Replaces a string access_token by a canary of the same length and the same
 * byte classes (what auth_token_accept looks at), made of '~' and '}', which no
 * fixed message contains.  Returns the canary (owned by root), or NULL. */
static const char *plant_canary(json_object *root) {
        json_object *tok;
        const char *s;
        char *canary;
        size_t n;

        if (!json_object_is_type(root, json_type_object) || !json_object_object_get_ex(root, "access_token", &tok) ||
            !json_object_is_type(tok, json_type_string))
                return NULL;
        s = json_object_get_string(tok);
        n = strlen(s);
        if (n < 4 || !(canary = strdup(s)))
                return NULL;
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) s[i] > 0x20 && (unsigned char) s[i] < 0x7f)
                        canary[i] = s[i] == '~' ? '}' : '~';
        json_object_object_add(root, "access_token", json_object_new_string_len(canary, (int) n));
        free(canary);
        json_object_object_get_ex(root, "access_token", &tok);
        return json_object_get_string(tok);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct errbuf e = { { 0 } };
        json_object *root = NULL;
        const char *canary;

        if (!auth)
                setup_once();
        if (fhir_parse_text((const char *) data, size, &root, &e) < 0)
                return 0;
        canary = plant_canary(root);
        if (auth_token_accept(auth, root, 1000, &e) == 0) {
                if (!auth_token_fresh(auth, 1000))
                        abort(); /* a token just taken is fresh */
        } else {
                if (!e.msg[0])
                        abort(); /* a refusal always says why */
                if (canary && strstr(e.msg, canary))
                        abort(); /* the error line quotes the token */
        }
        auth_forget(auth);
        json_object_put(root);
        return 0;
}
