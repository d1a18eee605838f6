/* SPDX-License-Identifier: MIT */
/*
 * The mock's token endpoint: OAuth 2.0 client credentials with a signed JWT
 * client assertion, checked the way the NHS API platform checks it, and the
 * access tokens it issues (see README.md, "Signed-JWT access").
 *
 *   POST /oauth2/token  grant_type=client_credentials
 *                       client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer
 *                       client_assertion=<JWT>
 *
 * The assertion: header alg RS512, typ JWT, kid = --kid; signature verified
 * against --jwks (a PEM public key); claims iss = sub = --api-key, aud = this
 * endpoint's URL, exp in the future and at most 300 s ahead, a jti never
 * seen before.  Every check is made against the mock's clock, which is the
 * real one shifted by --clock-skew seconds.  A token answer carries
 * expires_in as a string, as the platform's does.
 *
 * All state is under oauth.lock (its own, not mock.lock).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>

#include "mock.h"

#define ASSERTION_TYPE "urn:ietf:params:oauth:client-assertion-type:jwt-bearer"
#define EXP_WINDOW 300 /* s: exp may be at most this far ahead */

struct issued {
        char token[65];
        time_t expires;   /* mock clock */
        bool revoked;
        long uses_left;   /* API requests it may still make; -1 = no limit */
        struct issued *next;
};

struct seen_jti {
        char *jti;
        struct seen_jti *next;
};

struct oauth {
        pthread_mutex_t lock;
        EVP_PKEY *key;               /* the registered public key */
        struct issued *tokens;
        struct seen_jti *jtis;
        bool revoke_future;          /* tokens issued from now on are refused by the API */
        long uses_per_token;         /* API requests a newly issued token may make; -1 = no limit */
        uint64_t issued_n, refused_n, api_refused_n, jti_replays;
};

static struct oauth O = { .lock = PTHREAD_MUTEX_INITIALIZER, .uses_per_token = -1 };

static time_t mock_now(const struct mock *m) {
        return time(NULL) + m->opt.clock_skew;
}

int oauth_init(struct mock *m) {
        FILE *f;

        if (!m->opt.jwks)
                return 0;
        if (!m->opt.kid || !m->opt.api_key) {
                fprintf(stderr, "mock-ers: --jwks needs --kid and --api-key\n");
                return -EINVAL;
        }
        f = fopen(m->opt.jwks, "re");
        if (!f) {
                fprintf(stderr, "mock-ers: --jwks %s: %s\n", m->opt.jwks, strerror(errno));
                return -errno;
        }
        O.key = PEM_read_PUBKEY(f, NULL, NULL, NULL);
        fclose(f);
        if (!O.key) {
                fprintf(stderr, "mock-ers: --jwks %s: not a PEM public key\n", m->opt.jwks);
                return -EINVAL;
        }
        return 0;
}

void oauth_free(struct mock *m) {
        (void) m;
        EVP_PKEY_free(O.key);
        O.key = NULL;
        while (O.tokens) {
                struct issued *t = O.tokens;
                O.tokens = t->next;
                free(t);
        }
        while (O.jtis) {
                struct seen_jti *j = O.jtis;
                O.jtis = j->next;
                free(j->jti);
                free(j);
        }
}

bool oauth_enabled(const struct mock *m) {
        return m->opt.jwks != NULL;
}

/* ---- decoding ----------------------------------------------------------- */

static int b64url_value(char ch) {
        if (ch >= 'A' && ch <= 'Z')
                return ch - 'A';
        if (ch >= 'a' && ch <= 'z')
                return ch - 'a' + 26;
        if (ch >= '0' && ch <= '9')
                return ch - '0' + 52;
        if (ch == '-')
                return 62;
        if (ch == '_')
                return 63;
        return -1;
}

/* base64url without padding; NULL when invalid.  *ret_len bytes, NUL added. */
static unsigned char *b64url_decode(const char *s, size_t n, size_t *ret_len) {
        unsigned char *out = malloc(n * 3 / 4 + 2);
        uint32_t acc = 0;
        int bits = 0;
        size_t o = 0;

        if (!out || n % 4 == 1) {
                free(out);
                return NULL;
        }
        for (size_t i = 0; i < n; i++) {
                int v = b64url_value(s[i]);
                if (v < 0) {
                        free(out);
                        return NULL;
                }
                acc = acc << 6 | (uint32_t) v;
                bits += 6;
                if (bits >= 8) {
                        bits -= 8;
                        out[o++] = (unsigned char) (acc >> bits & 0xff);
                }
        }
        out[o] = '\0';
        *ret_len = o;
        return out;
}

static int hexval(char ch) {
        if (ch >= '0' && ch <= '9')
                return ch - '0';
        if (ch >= 'a' && ch <= 'f')
                return ch - 'a' + 10;
        if (ch >= 'A' && ch <= 'F')
                return ch - 'A' + 10;
        return -1;
}

/* The value of form field `name` in an x-www-form-urlencoded body, decoded; NULL when absent. */
static char *form_field(const char *body, size_t len, const char *name) {
        size_t nl = strlen(name);
        const char *p = body, *end = body + len;

        while (p < end) {
                const char *amp = memchr(p, '&', (size_t) (end - p));
                const char *fe = amp ? amp : end;
                if ((size_t) (fe - p) > nl && memcmp(p, name, nl) == 0 && p[nl] == '=') {
                        const char *v = p + nl + 1;
                        char *out = malloc((size_t) (fe - v) + 1);
                        size_t o = 0;
                        if (!out)
                                return NULL;
                        for (; v < fe; v++) {
                                if (*v == '+')
                                        out[o++] = ' ';
                                else if (*v == '%' && fe - v >= 3 && hexval(v[1]) >= 0 && hexval(v[2]) >= 0) {
                                        out[o++] = (char) (hexval(v[1]) * 16 + hexval(v[2]));
                                        v += 2;
                                } else
                                        out[o++] = *v;
                        }
                        out[o] = '\0';
                        return out;
                }
                p = fe + 1;
        }
        return NULL;
}

static const char *jstr(json_object *o, const char *key) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

static bool jint(json_object *o, const char *key, int64_t *ret) {
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_int))
                return false;
        *ret = json_object_get_int64(v);
        return true;
}

/* ---- the token endpoint ------------------------------------------------- */

/* An OAuth error answer (RFC 6749 §5.2). */
static char *oauth_error(unsigned status, const char *error, const char *description, unsigned *ret_status,
                         size_t *ret_len) {
        json_object *o = json_object_new_object();

        json_object_object_add(o, "error", json_object_new_string(error));
        json_object_object_add(o, "error_description", json_object_new_string(description));
        *ret_status = status;
        pthread_mutex_lock(&O.lock);
        O.refused_n++;
        pthread_mutex_unlock(&O.lock);
        return json_text(o, ret_len);
}

/* Checks the assertion; NULL when it passes, else the error answer. */
static char *check_assertion(struct mock *m, const char *jwt, const char *token_url, unsigned *ret_status,
                             size_t *ret_len) {
        const char *dot1 = strchr(jwt, '.'), *dot2 = dot1 ? strchr(dot1 + 1, '.') : NULL;
        unsigned char *hbytes = NULL, *cbytes = NULL, *sig = NULL;
        json_object *header = NULL, *claims = NULL;
        size_t hl, cl, sl;
        char *err = NULL;
        const char *s, *iss, *sub, *jti;
        int64_t exp;
        time_t now = mock_now(m);

#define REFUSE(st, code, text)                                                  \
        do {                                                                    \
                err = oauth_error((st), (code), (text), ret_status, ret_len);   \
                goto out;                                                       \
        } while (0)

        if (!dot1 || !dot2 || strchr(dot2 + 1, '.'))
                REFUSE(400, "invalid_request", "Malformed JWT in client_assertion");
        hbytes = b64url_decode(jwt, (size_t) (dot1 - jwt), &hl);
        cbytes = b64url_decode(dot1 + 1, (size_t) (dot2 - dot1 - 1), &cl);
        sig = b64url_decode(dot2 + 1, strlen(dot2 + 1), &sl);
        if (!hbytes || !cbytes || !sig)
                REFUSE(400, "invalid_request", "Malformed JWT in client_assertion");
        header = json_tokener_parse((const char *) hbytes);
        claims = json_tokener_parse((const char *) cbytes);
        if (!json_object_is_type(header, json_type_object) || !json_object_is_type(claims, json_type_object))
                REFUSE(400, "invalid_request", "Malformed JWT in client_assertion");
        if (!(s = jstr(header, "alg")) || strcmp(s, "RS512") != 0)
                REFUSE(400, "invalid_request", "Invalid 'alg' header in JWT - unsupported JWT algorithm - must be 'RS512'");
        if (!(s = jstr(header, "typ")) || strcasecmp(s, "JWT") != 0)
                REFUSE(400, "invalid_request", "Invalid 'typ' header in JWT - must be 'JWT'");
        if (!(s = jstr(header, "kid")))
                REFUSE(400, "invalid_request", "Missing 'kid' header in JWT");
        if (strcmp(s, m->opt.kid) != 0)
                REFUSE(401, "invalid_request", "Invalid 'kid' header in JWT - no matching public key");

        /* The signature over "header.claims", RSASSA-PKCS1-v1_5 with SHA-512. */
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        int ok = md && EVP_DigestVerifyInit(md, NULL, EVP_sha512(), NULL, O.key) == 1 &&
                 EVP_DigestVerify(md, sig, sl, (const unsigned char *) jwt, (size_t) (dot2 - jwt)) == 1;
        EVP_MD_CTX_free(md);
        ERR_clear_error();
        if (!ok)
                REFUSE(401, "invalid_request", "Unable to verify JWT - signature does not match the public key");

        iss = jstr(claims, "iss");
        sub = jstr(claims, "sub");
        if (!iss || !sub || strcmp(iss, sub) != 0)
                REFUSE(400, "invalid_request", "Missing or non-matching 'iss'/'sub' claims in JWT");
        if (strcmp(iss, m->opt.api_key) != 0) {
                /* A platform that quotes the claim it refuses: the API key the client sent. */
                char text[512];
                snprintf(text, sizeof text, "Invalid 'iss'/'sub' claims in JWT - unknown API key '%.400s'", iss);
                REFUSE(401, "invalid_client", text);
        }
        if (!(s = jstr(claims, "aud")) || strcmp(s, token_url) != 0)
                REFUSE(401, "invalid_request", "Invalid 'aud' claim in JWT - must be the token endpoint URL");
        if (!jint(claims, "exp", &exp))
                REFUSE(400, "invalid_request", "Missing 'exp' claim in JWT");
        if (exp <= (int64_t) now)
                REFUSE(400, "invalid_request", "Invalid 'exp' claim in JWT - JWT has expired");
        if (exp > (int64_t) now + EXP_WINDOW)
                REFUSE(400, "invalid_request", "Invalid 'exp' claim in JWT - more than 5 minutes in future");
        if (!(jti = jstr(claims, "jti")) || !*jti)
                REFUSE(400, "invalid_request", "Missing 'jti' claim in JWT");

        pthread_mutex_lock(&O.lock);
        bool replay = false;
        for (struct seen_jti *j = O.jtis; j; j = j->next)
                if (strcmp(j->jti, jti) == 0)
                        replay = true;
        struct seen_jti *nj = replay ? NULL : calloc(1, sizeof *nj);
        if (nj && (nj->jti = strdup(jti))) {
                nj->next = O.jtis;
                O.jtis = nj;
        } else
                free(nj);
        if (replay)
                O.jti_replays++;
        pthread_mutex_unlock(&O.lock);
        if (replay)
                REFUSE(400, "invalid_request", "Non-unique 'jti' claim in JWT");
out:
#undef REFUSE
        free(hbytes);
        free(cbytes);
        free(sig);
        json_object_put(header);
        json_object_put(claims);
        return err;
}

char *oauth_token_request(struct mock *m, const char *body, size_t len, const char *token_url, unsigned *ret_status,
                          size_t *ret_len) {
        char *grant = form_field(body, len, "grant_type");
        char *type = form_field(body, len, "client_assertion_type");
        char *jwt = form_field(body, len, "client_assertion");
        char *answer = NULL;

        if (!grant || strcmp(grant, "client_credentials") != 0)
                answer = oauth_error(400, "unsupported_grant_type", "grant_type must be 'client_credentials'",
                                     ret_status, ret_len);
        else if (!type || strcmp(type, ASSERTION_TYPE) != 0)
                answer = oauth_error(400, "invalid_request", "Missing or invalid client_assertion_type - must be '"
                                     ASSERTION_TYPE "'", ret_status, ret_len);
        else if (!jwt)
                answer = oauth_error(400, "invalid_request", "Missing client_assertion", ret_status, ret_len);
        else
                answer = check_assertion(m, jwt, token_url, ret_status, ret_len);
        if (!answer) {
                struct issued *t = calloc(1, sizeof *t);
                unsigned char rnd[16];
                char lifetime[24], issued_at[24];

                if (!t || RAND_bytes(rnd, sizeof rnd) != 1) {
                        free(t);
                        *ret_status = 500;
                        answer = strdup("{\"error\":\"server_error\"}");
                        *ret_len = answer ? strlen(answer) : 0;
                        goto out;
                }
                for (size_t i = 0; i < sizeof rnd; i++)
                        snprintf(t->token + 2 * i, 3, "%02x", rnd[i]);
                t->expires = mock_now(m) + (time_t) m->opt.token_lifetime;
                pthread_mutex_lock(&O.lock);
                t->uses_left = O.uses_per_token;
                t->revoked = O.revoke_future;
                t->next = O.tokens;
                O.tokens = t;
                O.issued_n++;
                pthread_mutex_unlock(&O.lock);

                json_object *o = json_object_new_object();
                snprintf(lifetime, sizeof lifetime, "%u", m->opt.token_lifetime);
                snprintf(issued_at, sizeof issued_at, "%lld", (long long) mock_now(m) * 1000);
                json_object_object_add(o, "access_token", json_object_new_string(t->token));
                json_object_object_add(o, "expires_in", json_object_new_string(lifetime));
                json_object_object_add(o, "token_type", json_object_new_string("Bearer"));
                json_object_object_add(o, "issued_at", json_object_new_string(issued_at));
                *ret_status = 200;
                answer = json_text(o, ret_len);
        }
out:
        free(grant);
        free(type);
        free(jwt);
        return answer;
}

const char *oauth_check_bearer(struct mock *m, const char *authorization) {
        const char *why = "no access token was supplied";

        if (!authorization)
                goto refused;
        if (strncasecmp(authorization, "Bearer ", 7) != 0) {
                why = "the Authorization header is not a bearer token";
                goto refused;
        }
        pthread_mutex_lock(&O.lock);
        why = "the access token is not valid";
        for (struct issued *t = O.tokens; t; t = t->next) {
                if (strcmp(t->token, authorization + 7) != 0)
                        continue;
                if (t->revoked)
                        why = "the access token has been revoked";
                else if (mock_now(m) >= t->expires || t->uses_left == 0)
                        why = "the access token has expired";
                else {
                        if (t->uses_left > 0)
                                t->uses_left--;
                        why = NULL;
                }
                break;
        }
        if (why)
                O.api_refused_n++;
        pthread_mutex_unlock(&O.lock);
        return why;
refused:
        pthread_mutex_lock(&O.lock);
        O.api_refused_n++;
        pthread_mutex_unlock(&O.lock);
        return why;
}

void oauth_expire(long after) {
        pthread_mutex_lock(&O.lock);
        for (struct issued *t = O.tokens; t; t = t->next)
                t->uses_left = after;
        if (after > 0)
                O.uses_per_token = after;
        pthread_mutex_unlock(&O.lock);
}

void oauth_revoke(bool future) {
        pthread_mutex_lock(&O.lock);
        for (struct issued *t = O.tokens; t; t = t->next)
                t->revoked = true;
        if (future)
                O.revoke_future = true;
        pthread_mutex_unlock(&O.lock);
}

json_object *oauth_stats(void) {
        json_object *o = json_object_new_object();

        pthread_mutex_lock(&O.lock);
        json_object_object_add(o, "issued", json_object_new_int64((int64_t) O.issued_n));
        json_object_object_add(o, "refused", json_object_new_int64((int64_t) O.refused_n));
        json_object_object_add(o, "api_refused", json_object_new_int64((int64_t) O.api_refused_n));
        json_object_object_add(o, "jti_replays", json_object_new_int64((int64_t) O.jti_replays));
        pthread_mutex_unlock(&O.lock);
        return o;
}
