/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The OAuth 2.0 client-credentials exchange of the e-RS client (internal:
 * token.c, ers.c), under signed-JWT access (config: ers.auth = "jwt"): the
 * access token fetched from the token endpoint before the first call and
 * shortly before it expires, dropped and fetched anew on a 401.  One token
 * per client, shared by its lanes under `lock`.
 *
 * Not here: the JWT signing, the form and the token's lifetime (auth.c, no
 * I/O), the transfer (http.c), the API calls that send the token (ers.c).
 * What a failure says is ers.h's ("token endpoint <url>: …").
 */

#include <curl/curl.h>
#include <pthread.h>
#include <stdbool.h>

#include "auth.h"
#include "config.h"
#include "ers.h"
#include "err.h"
#include "http.h"

struct token {
        struct auth *auth;    /* owned: key, assertion, the cached access token */
        pthread_mutex_t lock; /* held while the token is checked, fetched or put into headers; a token
                               * fetch takes the pacing's lock inside it, never the other way round */
        bool same_origin;     /* the token endpoint is on the e-RS origin: it gets the client certificate */
};

/* For cfg->auth == AUTH_JWT (the caller checks), a token source for a client
 * of the e-RS origin `base_url`.  Caller owns *ret (token_free()).  0,
 * -ENOMEM, or auth_new()'s error, with the line in e. */
int token_new(const struct config *cfg, const char *base_url, struct token **ret, struct errbuf *e);
void token_free(struct token *tk); /* accepts NULL */

/* A token that is still fresh, fetched on handle h (a lane's own) through
 * link when there is none or it is about to expire: one lane fetches it, the
 * others wait and use it.  0 at once when tk is NULL (no signed-JWT access).
 * The errors of a call, the line starting "token endpoint <url>:". */
int token_ensure(struct token *tk, struct http_link *link, CURL *h, struct errbuf *e);

/*
 * After an API call that returned r: true when it was a first 401 under
 * signed-JWT access (tk not NULL), so the caller retries once (the token is
 * dropped and a new one fetched; the retry gets a fresh correlation id).  A
 * second 401 is false with its cause added to e.
 */
bool token_renew_after_401(struct token *tk, int r, struct ers_call *call, int attempt, struct errbuf *e);
