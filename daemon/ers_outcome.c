/* SPDX-License-Identifier: MIT */
/*
 * What a write-back call's answer means (ers_writeback.h): the outcome a
 * write or an A029 ends in, from its status and whether it left, and the
 * outcomes' names.  Pure: no I/O, so the engine's unit test links it beside
 * the fake e-RS (tests/fake/fake_ers.c) that stands in for the calls.
 *
 * Not here: the calls (ers_writeback.c).
 */
#include "ers_writeback.h"

#include <string.h>

const char *ers_wb_outcome_name(enum ers_wb_outcome o) {
        switch (o) {
        case ERS_WB_DONE:
                return "DONE";
        case ERS_WB_REJECTED:
                return "REJECTED";
        case ERS_WB_STALE:
                return "STALE";
        case ERS_WB_RETRY:
                return "RETRY";
        case ERS_WB_MAY_HAVE_REACHED:
                return "MAY_HAVE_REACHED";
        case ERS_WB_FORBIDDEN:
                return "FORBIDDEN";
        }
        return "?";
}

enum ers_wb_outcome ers_wb_classify_write(int r, long status, bool sent, const char *code) {
        (void) code; /* e-RS's code says why; the status says what to do */
        if (status <= 0)
                return sent ? ERS_WB_MAY_HAVE_REACHED : ERS_WB_RETRY;
        if (status / 100 == 2)
                return r == 0 ? ERS_WB_DONE : ERS_WB_MAY_HAVE_REACHED; /* applied; its answer cut or refused */
        switch (status) {
        case 403:
                return ERS_WB_FORBIDDEN;
        case 409:
        case 412:
                return ERS_WB_STALE;
        case 401: /* after a renewed token: refused at the gate */
        case 423:
        case 429:
        case 500:
        case 503:
                return ERS_WB_RETRY;
        default:
                break;
        }
        /* 502, 504 (a gateway that lost the answer of an e-RS which may have applied it) and
         * any 5xx not named above: what e-RS did is unknown. */
        if (status / 100 == 5)
                return ERS_WB_MAY_HAVE_REACHED;
        return ERS_WB_REJECTED;
}

enum ers_wb_outcome ers_wb_classify_read(int r, long status, const char *code) {
        if (status / 100 == 2)
                return r == 0 ? ERS_WB_DONE : ERS_WB_RETRY;
        if (status == 403)
                return ERS_WB_FORBIDDEN;
        if (status == 409 || status == 412 || (status == 400 && code && strcmp(code, "HISTORY_NOT_SUPPORTED") == 0))
                return ERS_WB_STALE;
        if (status <= 0 || status == 401 || status == 423 || status == 429 || status / 100 == 5)
                return ERS_WB_RETRY;
        return ERS_WB_REJECTED;
}
