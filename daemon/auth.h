/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Application-restricted access to e-RS: OAuth 2.0 client credentials with a
 * signed JWT client assertion (RFC 7523), as the NHS API platform asks for it.
 *
 *   assertion  header {"alg":"RS512","typ":"JWT","kid":KEY_ID}
 *              claims {"iss":API_KEY,"sub":API_KEY,"aud":TOKEN_URL,"jti":UUID,
 *                      "iat":now,"exp":now+AUTH_ASSERTION_LIFETIME}
 *              signed RS512 (RSASSA-PKCS1-v1_5, SHA-512) with the trust's key
 *   request    POST TOKEN_URL, form: grant_type=client_credentials,
 *              client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer,
 *              client_assertion=<assertion>
 *   answer     {"access_token":…,"expires_in":"599",…} (expires_in a string or a number)
 *
 * This module holds the key and the token cache and does no I/O: token.c posts
 * the form (auth_token_form) and hands the JSON answer back
 * (auth_token_accept).  Nothing here logs.  The API key, the private key, the
 * assertion and the access token are SECRETS: no message this module writes
 * into an errbuf contains any of them, and they are wiped when freed.
 */

#include <json-c/json.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include "config.h"
#include "err.h"

#define AUTH_ASSERTION_LIFETIME 180  /* s; the platform refuses exp more than 300 s ahead */
#define AUTH_RENEW_MARGIN_MAX   60   /* s; renew at most this long before expiry … */
#define AUTH_TOKEN_LIFETIME_MAX 86400 /* s; a longer expires_in is refused as nonsense */

struct auth; /* key, identity and the cached access token */

/* From cfg (auth = "jwt"): parses cfg->private_key_pem, copies the API key,
 * key id and token URL.  Borrows nothing from cfg after return.  Caller owns
 * *ret. */
int auth_new(const struct config *cfg, struct auth **ret, struct errbuf *e);
void auth_free(struct auth *a); /* accepts NULL; wipes the secrets */

/* Checks that `pem` (len bytes) is an unencrypted PEM RSA private key of at
 * least 2048 bits.  0, or -EINVAL with the reason (never the key) in e. */
int auth_check_private_key(const char *pem, size_t len, struct errbuf *e);

/* SECRET: the API key (borrowed from a), only for scrubbing it out of what a
 * server says (server_text.h): never to be written anywhere. */
const char *auth_api_key(const struct auth *a);

/* The token endpoint's URL (borrowed from a). */
const char *auth_token_url(const struct auth *a);

/* True when the cached token may still be sent at monotonic time now_ms:
 * it renews min(AUTH_RENEW_MARGIN_MAX, lifetime / 10) before expiry. */
bool auth_token_fresh(const struct auth *a, int64_t now_ms);

/* "Authorization: Bearer <token>" for the cached token, or NULL when there
 * is none.  Borrowed from a until the next auth_token_accept/auth_forget. */
const char *auth_header_line(const struct auth *a);

/* Drops the cached token (after a 401: the next call fetches a new one). */
void auth_forget(struct auth *a);

/* A token request's form body with a fresh assertion signed at `now` (wall
 * clock: exp and iat are absolute).  Caller frees it with auth_wipe_free(). */
int auth_token_form(struct auth *a, time_t now, char **ret_form, struct errbuf *e);

/* Takes the token endpoint's 2xx JSON answer received at monotonic now_ms.
 * -EBADMSG (e says which field) when it has no usable access_token or
 * expires_in. */
int auth_token_accept(struct auth *a, json_object *answer, int64_t now_ms, struct errbuf *e);

/* base64url without padding (RFC 7515 §2).  Caller owns *ret.  0 or -ENOMEM. */
int base64url_encode(const void *p, size_t n, char **ret);

/* Wipes and frees a NUL-terminated secret; accepts NULL. */
void auth_wipe_free(char *s);

/* Monotonic clock in milliseconds, for the token cache. */
int64_t auth_now_ms(void);
