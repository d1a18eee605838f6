/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the daemon has already said about a (UBRN, version) pair, so that a
 * condition that lasts (e-RS answering an older version than its worklist
 * lists) is logged once, not at every round that meets it again.  A bounded
 * ring: past SAID_MAX pairs the oldest are forgotten (and said again if met
 * again).  In memory only: a restart says each again, once.  Not thread-safe:
 * one thread (the writer) asks.
 */

#include <stdbool.h>
#include <stdint.h>

#include "model.h"

#define SAID_MAX 512

struct said_once {
        struct said_pair {
                char ubrn[UBRN_LEN + 1];
                int64_t version;
        } pairs[SAID_MAX];
        unsigned n;    /* pairs held, at most SAID_MAX */
        unsigned next; /* where the next one goes once full */
};

/* True the first time (ubrn, version) is asked (since it was last forgotten);
 * remembers it.  s zero-initialised is empty. */
bool said_first(struct said_once *s, const char *ubrn, int64_t version);
