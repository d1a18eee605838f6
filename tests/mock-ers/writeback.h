/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The mock's write-back endpoints (writeback.c): A029 (the actions allowed
 * now), A028 (record review outcome) and A013 (accept referral) on the
 * synthetic data, their record and their controls (/_mock/writeback/…).
 * See README.md, "Write-back".
 *
 * server.c routes a request here and sends what comes back: it runs the
 * checks every API request gets first (401, 403 for user headers, 406) and
 * keeps the call record (/_mock/calls); writeback.c does the rest.
 */

#include <stdbool.h>
#include <stddef.h>

#include <microhttpd.h>

#include "mock.h"

/* An answer for server.c to send. */
struct wb_reply {
        unsigned status;
        bool drop;                /* close the connection without any answer (status unused) */
        bool fault;               /* an injected fault */
        char *body;               /* owned (malloc'd), or NULL */
        size_t len;
        const char *content_type; /* static, or NULL */
        const char *allow;        /* static: the Allow header of a 405, or NULL */
        char etag[32];            /* "" for none */
        int retry_after;          /* seconds for Retry-After; -1: none */
};

/* The endpoint ("A029", "A028", "A013") a request for path `url` is, NULL
 * when it is none of them; key gets the UBRN it is for ("" when unreadable). */
const char *writeback_endpoint(struct MHD_Connection *conn, const char *url, char *key, size_t key_size);

/* Answers a write-back request (after server.c's checks) into *ret. */
void writeback_answer(struct mock *m, struct MHD_Connection *conn, const char *method, const char *url,
                      const char *body, size_t len, bool body_too_big, double arrived, struct wb_reply *ret);

/* Answers a control request /_mock/writeback… (`what` is the path after
 * "/_mock/") into *ret. */
void writeback_control(struct mock *m, struct MHD_Connection *conn, const char *what, const char *method,
                       struct wb_reply *ret);
