/* SPDX-License-Identifier: MIT */
/*
 * auth.c: signed-JWT client credentials for the NHS API platform (see auth.h).
 * Key handling through OpenSSL's EVP interface only.
 */
#include "auth.h"

#include <errno.h>
#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "util.h"

#define ASSERTION_TYPE "urn%3Aietf%3Aparams%3Aoauth%3Aclient-assertion-type%3Ajwt-bearer"
#define RSA_BITS_MIN   2048

struct auth {
        EVP_PKEY *key;          /* owned: the trust's private key (SECRET) */
        char *api_key;          /* owned, SECRET: iss and sub */
        char *key_id;           /* owned: kid */
        char *token_url;        /* owned: aud, and where the form goes */
        char *header_line;      /* owned, SECRET: "Authorization: Bearer …", NULL when no token */
        int64_t expires_ms;     /* monotonic ms at which the token expires */
        int64_t margin_ms;      /* renew this long before expires_ms */
};

void auth_wipe_free(char *s) {
        if (s) {
                explicit_bzero(s, strlen(s));
                free(s);
        }
}

int64_t auth_now_ms(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (int64_t) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int base64url_encode(const void *p, size_t n, char **ret) {
        static const char alphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
        const unsigned char *in = p;
        char *out = malloc(4 * ((n + 2) / 3) + 1), *o;
        size_t i;

        if (!out)
                return -ENOMEM;
        o = out;
        for (i = 0; i + 3 <= n; i += 3) {
                uint32_t v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8 | in[i + 2];
                *o++ = alphabet[v >> 18 & 63];
                *o++ = alphabet[v >> 12 & 63];
                *o++ = alphabet[v >> 6 & 63];
                *o++ = alphabet[v & 63];
        }
        if (n - i == 1) {
                uint32_t v = (uint32_t) in[i] << 16;
                *o++ = alphabet[v >> 18 & 63];
                *o++ = alphabet[v >> 12 & 63];
        } else if (n - i == 2) {
                uint32_t v = (uint32_t) in[i] << 16 | (uint32_t) in[i + 1] << 8;
                *o++ = alphabet[v >> 18 & 63];
                *o++ = alphabet[v >> 12 & 63];
                *o++ = alphabet[v >> 6 & 63];
        }
        *o = '\0';
        *ret = out;
        return 0;
}

/* Never prompts for a passphrase: an encrypted key is refused. */
static int no_passphrase(char *buf, int size, int rwflag, void *u) {
        (void) buf;
        (void) size;
        (void) rwflag;
        (void) u;
        return -1;
}

static int load_key(const char *pem, size_t len, EVP_PKEY **ret, struct errbuf *e) {
        BIO *bio;
        EVP_PKEY *key;

        if (len > INT32_MAX)
                return err_set(e, -EINVAL, "not a PEM private key");
        bio = BIO_new_mem_buf(pem, (int) len);
        if (!bio)
                return err_set(e, -ENOMEM, "out of memory");
        key = PEM_read_bio_PrivateKey(bio, NULL, no_passphrase, NULL);
        BIO_free(bio);
        ERR_clear_error(); /* OpenSSL's queue may quote the input: never passed on */
        if (!key)
                return err_set(e, -EINVAL, "not an unencrypted PEM private key (PKCS#8 or "
                                           "PKCS#1 RSA, without a passphrase)");
        if (EVP_PKEY_get_base_id(key) != EVP_PKEY_RSA) {
                EVP_PKEY_free(key);
                return err_set(e, -EINVAL, "not an RSA key: RS512 needs RSA (4096 bits recommended)");
        }
        if (EVP_PKEY_get_bits(key) < RSA_BITS_MIN) {
                int bits = EVP_PKEY_get_bits(key);
                EVP_PKEY_free(key);
                return err_set(e, -EINVAL, "an RSA key of %d bits; at least %d are needed (4096 recommended)",
                               bits, RSA_BITS_MIN);
        }
        *ret = key;
        return 0;
}

int auth_check_private_key(const char *pem, size_t len, struct errbuf *e) {
        EVP_PKEY *key = NULL;
        int r = load_key(pem, len, &key, e);

        EVP_PKEY_free(key);
        return r;
}

void auth_free(struct auth *a) {
        if (!a)
                return;
        EVP_PKEY_free(a->key);
        auth_wipe_free(a->api_key);
        free(a->key_id);
        free(a->token_url);
        auth_wipe_free(a->header_line);
        free(a);
}

int auth_new(const struct config *cfg, struct auth **ret, struct errbuf *e) {
        struct auth *a;
        int r;

        if (!cfg->private_key_pem || !cfg->api_key || !cfg->key_id || !cfg->token_url)
                return err_set(e, -EINVAL, "signed-JWT access needs an API key, a private key, a key id and "
                                           "a token URL");
        a = calloc(1, sizeof *a);
        if (!a)
                return err_set(e, -ENOMEM, "out of memory");
        r = load_key(cfg->private_key_pem, strlen(cfg->private_key_pem), &a->key, e);
        if (r < 0) {
                auth_free(a);
                return err_prefix(e, r, "ers.private_key_file");
        }
        a->api_key = strdup(cfg->api_key);
        a->key_id = strdup(cfg->key_id);
        a->token_url = strdup(cfg->token_url);
        if (!a->api_key || !a->key_id || !a->token_url) {
                auth_free(a);
                return err_set(e, -ENOMEM, "out of memory");
        }
        *ret = a;
        return 0;
}

const char *auth_api_key(const struct auth *a) {
        return a->api_key;
}

const char *auth_token_url(const struct auth *a) {
        return a->token_url;
}

bool auth_token_fresh(const struct auth *a, int64_t now_ms) {
        return a->header_line && now_ms < a->expires_ms - a->margin_ms;
}

const char *auth_header_line(const struct auth *a) {
        return a->header_line;
}

void auth_forget(struct auth *a) {
        auth_wipe_free(a->header_line);
        a->header_line = NULL;
}

/* base64url of a JSON object's text; puts o. */
static int encode_json(json_object *o, char **ret) {
        const char *text;
        int r;

        if (!o)
                return -ENOMEM;
        text = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE);
        r = text ? base64url_encode(text, strlen(text), ret) : -ENOMEM;
        if (text)
                explicit_bzero((char *) text, strlen(text)); /* the claims hold the API key */
        json_object_put(o);
        return r;
}

static json_object *claims_new(const struct auth *a, const char *jti, time_t now) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (json_object_object_add(o, "iss", json_object_new_string(a->api_key)) < 0 ||
            json_object_object_add(o, "sub", json_object_new_string(a->api_key)) < 0 ||
            json_object_object_add(o, "aud", json_object_new_string(a->token_url)) < 0 ||
            json_object_object_add(o, "jti", json_object_new_string(jti)) < 0 ||
            json_object_object_add(o, "iat", json_object_new_int64((int64_t) now)) < 0 ||
            json_object_object_add(o, "exp", json_object_new_int64((int64_t) now + AUTH_ASSERTION_LIFETIME)) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

static json_object *header_new(const struct auth *a) {
        json_object *o = json_object_new_object();

        if (!o)
                return NULL;
        if (json_object_object_add(o, "alg", json_object_new_string("RS512")) < 0 ||
            json_object_object_add(o, "typ", json_object_new_string("JWT")) < 0 ||
            json_object_object_add(o, "kid", json_object_new_string(a->key_id)) < 0) {
                json_object_put(o);
                return NULL;
        }
        return o;
}

/* RS512 over `input`; base64url into *ret. */
static int sign(const struct auth *a, const char *input, char **ret) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char *sig = NULL;
        size_t siglen = 0;
        int r = -EIO;

        if (!md)
                return -ENOMEM;
        if (EVP_DigestSignInit(md, NULL, EVP_sha512(), NULL, a->key) != 1 ||
            EVP_DigestSign(md, NULL, &siglen, (const unsigned char *) input, strlen(input)) != 1)
                goto out;
        sig = malloc(siglen);
        if (!sig) {
                r = -ENOMEM;
                goto out;
        }
        if (EVP_DigestSign(md, sig, &siglen, (const unsigned char *) input, strlen(input)) != 1)
                goto out;
        r = base64url_encode(sig, siglen, ret);
out:
        ERR_clear_error();
        free(sig);
        EVP_MD_CTX_free(md);
        return r;
}

int auth_token_form(struct auth *a, time_t now, char **ret_form, struct errbuf *e) {
        char jti[UUID_STR_LEN];
        char *header = NULL, *claims = NULL, *input = NULL, *sig = NULL, *form = NULL;
        int r;

        r = uuid_v4(jti);
        if (r < 0)
                return err_set(e, r, "cannot make a jti: %s", strerror(-r));
        r = encode_json(header_new(a), &header);
        if (r == 0)
                r = encode_json(claims_new(a, jti, now), &claims);
        if (r == 0 && asprintf(&input, "%s.%s", header, claims) < 0) {
                input = NULL;
                r = -ENOMEM;
        }
        if (r == 0)
                r = sign(a, input, &sig);
        if (r == 0 && asprintf(&form, "grant_type=client_credentials&client_assertion_type=%s&client_assertion=%s.%s",
                                      ASSERTION_TYPE, input, sig) < 0) {
                form = NULL;
                r = -ENOMEM;
        }
        auth_wipe_free(header);
        auth_wipe_free(claims);
        auth_wipe_free(input);
        auth_wipe_free(sig);
        if (r < 0)
                return err_set(e, r, r == -ENOMEM ? "out of memory" : "cannot sign the client assertion (RS512)");
        *ret_form = form;
        return 0;
}

/* expires_in: a JSON integer or a string of digits (the platform sends a string). */
static bool parse_expires_in(json_object *v, int64_t *ret) {
        int64_t n = 0;

        if (json_object_is_type(v, json_type_int)) {
                n = json_object_get_int64(v);
        } else if (json_object_is_type(v, json_type_string)) {
                const char *s = json_object_get_string(v);
                size_t len = strlen(s);
                if (len == 0 || len > 9 || strspn(s, "0123456789") != len)
                        return false;
                for (size_t i = 0; i < len; i++)
                        n = n * 10 + (s[i] - '0');
        } else {
                return false;
        }
        if (n < 1 || n > AUTH_TOKEN_LIFETIME_MAX)
                return false;
        *ret = n;
        return true;
}

int auth_token_accept(struct auth *a, json_object *answer, int64_t now_ms, struct errbuf *e) {
        json_object *tok = NULL, *exp = NULL, *type = NULL;
        const char *token;
        int64_t lifetime_s;
        size_t len;
        char *line;

        if (!json_object_is_type(answer, json_type_object))
                return err_set(e, -EBADMSG, "the answer is not a JSON object");
        if (!json_object_object_get_ex(answer, "access_token", &tok) || !json_object_is_type(tok, json_type_string))
                return err_set(e, -EBADMSG, "the answer has no access_token");
        token = json_object_get_string(tok);
        len = strlen(token);
        if (len == 0 || len > 4096)
                return err_set(e, -EBADMSG, "the access_token is empty or longer than 4096 bytes");
        for (size_t i = 0; i < len; i++)
                if ((unsigned char) token[i] <= 0x20 || (unsigned char) token[i] >= 0x7f)
                        return err_set(e, -EBADMSG, "the access_token holds a space, control or non-ASCII byte");
        if (!json_object_object_get_ex(answer, "expires_in", &exp) || !parse_expires_in(exp, &lifetime_s))
                return err_set(e, -EBADMSG, "the answer has no expires_in of 1..%d seconds", AUTH_TOKEN_LIFETIME_MAX);
        if (json_object_object_get_ex(answer, "token_type", &type) &&
            (!json_object_is_type(type, json_type_string) || strcasecmp(json_object_get_string(type), "Bearer") != 0))
                return err_set(e, -EBADMSG, "token_type is not Bearer");
        if (asprintf(&line, "Authorization: Bearer %s", token) < 0)
                return err_set(e, -ENOMEM, "out of memory");
        auth_forget(a);
        a->header_line = line;
        a->expires_ms = now_ms + lifetime_s * 1000;
        a->margin_ms = lifetime_s * 100; /* a tenth of the lifetime … */
        if (a->margin_ms > AUTH_RENEW_MARGIN_MAX * 1000)
                a->margin_ms = AUTH_RENEW_MARGIN_MAX * 1000; /* … at most a minute */
        return 0;
}
