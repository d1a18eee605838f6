/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The e-RS client's parts for its endpoints that live outside ers.c (the
 * write-back calls, ers_writeback.c): the API origin's handle, how its
 * transfers go, the token, the base URL, and the headers every API call
 * sends.  Internal to the client (ers.c defines these; nothing but the
 * client's own files includes this header).
 *
 * Not here: the client's contract (ers.h), one transfer (http.h).
 */

#include <curl/curl.h>
#include <stdbool.h>

#include "ers.h"
#include "http.h"
#include "token.h"

/* Borrowed from the client (or lane) they were taken from, valid while it is;
 * one thread uses them at a time, as it uses the client. */
struct ers_api {
        CURL *h;              /* the API origin's handle (reset by each transfer) */
        struct http_link *link;
        struct token *token;  /* signed-JWT access, else NULL */
        const char *base_url; /* no trailing '/' */
};

void ers_client_api(struct ers_client *c, struct ers_api *ret);

/* The headers every API call sends (Accept, X-Correlation-ID, Authorization,
 * the user-restricted NHSD-* when configured; Content-Type when json_body),
 * as ers.c's own calls send them.  Caller owns the list
 * (curl_slist_free_all()); NULL when memory ran out. */
struct curl_slist *ers_client_headers(struct ers_client *c, const char *accept, bool json_body,
                                      const char *correlation_id);
