/* SPDX-License-Identifier: MIT */
#include "said.h"

#include <stdio.h>
#include <string.h>

bool said_first(struct said_once *s, const char *ubrn, int64_t version) {
        struct said_pair *p;

        for (unsigned i = 0; i < s->n; i++)
                if (s->pairs[i].version == version && strcmp(s->pairs[i].ubrn, ubrn) == 0)
                        return false;
        if (s->n < SAID_MAX)
                p = &s->pairs[s->n++];
        else {
                p = &s->pairs[s->next];
                s->next = (s->next + 1) % SAID_MAX;
        }
        snprintf(p->ubrn, sizeof p->ubrn, "%s", ubrn);
        p->version = version;
        return true;
}
