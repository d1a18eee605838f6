/* SPDX-License-Identifier: MIT */
#include "reconcile.h"

#include <errno.h>
#include <inttypes.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "../adapters/pas_worklist.h"
#include "escape.h"
#include "fhir.h"
#include "util.h"

struct tally {
        FILE *out;
        unsigned listed, missing, stale, unlisted, checked, unknown, not_checked, failed;
        char (*to_check)[UBRN_LEN + 1]; /* owned: the unlisted referrals to ask e-RS about */
        int64_t *to_check_version;      /* owned: their version in the PAS */
        size_t n_to_check;
        char last_ubrn[UBRN_LEN + 1];   /* a UBRN on two worklists is counted once */
};

static int on_listed(void *userdata, const struct reconcile_listed *l) {
        struct tally *t = userdata;

        if (strcmp(t->last_ubrn, l->ubrn) != 0)
                t->listed++;
        memcpy(t->last_ubrn, l->ubrn, sizeof t->last_ubrn);
        if (!l->in_pas) {
                t->missing++;
                if (l->listed_version >= 0)
                        escape_fprintf(t->out, "MISSING  %s  worklist %s lists version %" PRId64 " (%s); not in the PAS",
                                       l->ubrn, l->worklist, l->listed_version, l->listed_at);
                else
                        escape_fprintf(t->out, "MISSING  %s  worklist %s lists it (%s); not in the PAS", l->ubrn,
                                       l->worklist, l->listed_at);
                fputc('\n', t->out);
        } else if (l->listed_version > l->pas_version) {
                t->stale++;
                escape_fprintf(t->out, "STALE    %s  the PAS has version %" PRId64 ", worklist %s lists version %" PRId64
                                       " (%s)",
                               l->ubrn, l->pas_version, l->worklist, l->listed_version, l->listed_at);
                fputc('\n', t->out);
        }
        return 0;
}

static int on_unlisted(void *userdata, const char *ubrn, int64_t version) {
        struct tally *t = userdata;

        t->unlisted++;
        if (t->n_to_check < RECONCILE_CHECK_MAX) {
                memcpy(t->to_check[t->n_to_check], ubrn, UBRN_LEN + 1);
                t->to_check_version[t->n_to_check++] = version;
        } else
                t->not_checked++;
        return 0;
}

/* Waits until `next` (monotonic seconds): the pace of the A005 checks. */
static void pace(double next) {
        double left = next - now_monotonic();

        if (left <= 0)
                return;
        struct timespec ts = { .tv_sec = (time_t) left, .tv_nsec = (long) ((left - (double) (time_t) left) * 1e9) };
        while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
                ;
}

static void check_with_ers(struct tally *t, struct ers_client *ers, size_t i) {
        const char *ubrn = t->to_check[i];
        struct ers_call call = { .http_status = 0 };
        struct errbuf e = { { 0 } };
        json_object *root = NULL;
        struct referral ref = { .version = -1 };
        int r;

        t->checked++;
        r = ers_read_referral(ers, ubrn, &root, NULL, &call, &e);
        if (r == -ENOENT) {
                t->unknown++;
                escape_fprintf(t->out, "UNKNOWN  %s  in the PAS at version %" PRId64 "; e-RS answers 404 (correlation id %s)",
                               ubrn, t->to_check_version[i], call.correlation_id);
                fputc('\n', t->out);
                return;
        }
        if (r == 0) {
                r = fhir_parse_referral(root, &ref, &e);
                json_object_put(root);
        }
        if (r < 0) {
                t->failed++;
                escape_fprintf(t->out, "UNCHECKED %s  e-RS could not be asked: %s", ubrn, e.msg);
                fputc('\n', t->out);
                return;
        }
        if (ref.version > t->to_check_version[i]) {
                t->stale++;
                escape_fprintf(t->out, "STALE    %s  the PAS has version %" PRId64 ", e-RS has version %" PRId64
                                       " (on no worklist; correlation id %s)",
                               ubrn, t->to_check_version[i], ref.version, call.correlation_id);
                fputc('\n', t->out);
        }
        referral_free(&ref);
}

int reconcile_run(struct pas *p, struct ers_client *ers, FILE *out, struct errbuf *e) {
        struct tally t = { .out = out };
        int r;

        t.to_check = calloc(RECONCILE_CHECK_MAX, sizeof *t.to_check);
        t.to_check_version = calloc(RECONCILE_CHECK_MAX, sizeof *t.to_check_version);
        if (!t.to_check || !t.to_check_version) {
                r = err_set(e, -ENOMEM, "out of memory");
                goto out;
        }
        r = pas_reconcile_listed(p, on_listed, &t, e);
        if (r >= 0)
                r = pas_reconcile_unlisted(p, on_unlisted, &t, e); /* read whole before any A005 */
        if (r < 0)
                goto out;
        if (t.listed == 0) {
                fprintf(out, "reconcile: no worklist poll recorded yet (ers_worklist_entry is empty): "
                             "run a sync first\n");
                r = 1;
                goto out;
        }
        double next = now_monotonic();
        for (size_t i = 0; i < t.n_to_check; i++) {
                pace(next);
                next = now_monotonic() + 1.0 / RECONCILE_CHECKS_PER_SECOND;
                check_with_ers(&t, ers, i);
        }
        fprintf(out,
                "reconcile: %u listed on the latest worklists: %u missing, %u stale; %u in the PAS on no worklist: "
                "%u checked with e-RS, %u unknown to e-RS, %u could not be checked, %u not checked (over %d a run)\n",
                t.listed, t.missing, t.stale, t.unlisted, t.checked, t.unknown, t.failed, t.not_checked,
                RECONCILE_CHECK_MAX);
        r = t.missing || t.stale || t.unknown || t.failed ? 1 : 0;
out:
        free(t.to_check);
        free(t.to_check_version);
        return r;
}
