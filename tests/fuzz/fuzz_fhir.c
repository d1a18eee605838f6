/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: an e-RS JSON answer, as it arrives, through the text
 * parser and then every FHIR parser (A008 worklist, A005 referral,
 * OperationOutcome, A033 and A035's HealthcareService and Bundle).  Each must accept or refuse it cleanly: no crash, no
 * leak, no undefined behaviour, and on refusal an error line.
 *
 * The worklist is read by its streaming parser straight from the bytes, whole
 * and cut in two at a place the input chooses: both reads must give the same
 * answer (the same entries and skipped entries, or the same refusal), and json-c reading the
 * whole text is the reference for its syntax: the stream refuses as malformed
 * exactly what json-c refuses.
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/fhir.h"
#include "daemon/fhir_service.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The worklist of text, fed in two pieces cut at `split`. */
static int worklist_cut(const char *text, size_t size, size_t split, struct worklist *ret, struct errbuf *e) {
        struct worklist_parser *p = NULL;
        int r = worklist_parser_new(&p, e);

        if (r == 0)
                r = worklist_parser_feed(p, text, split, e);
        if (r == 0)
                r = worklist_parser_feed(p, text + split, size - split, e);
        if (r == 0)
                r = worklist_parser_finish(p, ret, e);
        worklist_parser_free(p);
        return r;
}

static bool same_string(const char *a, const char *b) {
        return a == b || (a && b && strcmp(a, b) == 0);
}

static bool same_worklist(const struct worklist *a, const struct worklist *b) {
        if (a->n != b->n || a->n_skipped != b->n_skipped)
                return false;
        for (size_t i = 0; i < a->n_skipped; i++)
                if (a->skipped[i].index != b->skipped[i].index || strcmp(a->skipped[i].ubrn, b->skipped[i].ubrn) != 0 ||
                    strcmp(a->skipped[i].why, b->skipped[i].why) != 0)
                        return false;
        for (size_t i = 0; i < a->n; i++) {
                const struct worklist_entry *x = &a->entries[i], *y = &b->entries[i];

                if (strcmp(x->ubrn, y->ubrn) != 0 || x->version != y->version ||
                    !same_string(x->priority, y->priority) || !same_string(x->specialty, y->specialty) ||
                    !same_string(x->service_id, y->service_id) || !same_string(x->service_name, y->service_name) ||
                    !same_string(x->referral_type, y->referral_type) || !same_string(x->nhs_number, y->nhs_number))
                        return false;
        }
        return true;
}

/* A line that says the bytes are not JSON (as opposed to JSON that is not a worklist). */
static bool syntax_line(const char *msg) {
        return strncmp(msg, "malformed JSON", 14) == 0 || strcmp(msg, "empty answer, expected JSON") == 0;
}

static void worklist_checks(const char *text, size_t size, bool json_ok) {
        struct errbuf e1 = { { 0 } }, e2 = { { 0 } };
        struct worklist w1, w2;
        size_t split = size ? (size_t) ((unsigned char) text[size / 2] * size / 256) : 0;
        int r1 = fhir_parse_worklist(text, size, &w1, &e1);
        int r2 = worklist_cut(text, size, split, &w2, &e2);

        /* A read must not depend on where the network cut the answer: the same
         * worklist or the same refusal.  Of a text with several syntax errors,
         * json-c names the one it meets first, which can depend on where its
         * input was cut: syntax lines need only both be syntax lines. */
        if (r1 != r2 || (strcmp(e1.msg, e2.msg) != 0 && !(syntax_line(e1.msg) && syntax_line(e2.msg))))
                abort();
        if (r1 < 0 && !e1.msg[0])
                abort(); /* a refusal always says why */
        if (r1 < 0 && r1 != -ENOMEM && json_ok == syntax_line(e1.msg))
                abort(); /* json-c, reading it whole, disagrees on the syntax */
        if (r1 == 0) {
                if (!same_worklist(&w1, &w2))
                        abort();
                worklist_free(&w1);
                worklist_free(&w2);
        }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct errbuf e = { { 0 } };
        json_object *root = NULL;
        struct referral r;
        struct outcome o;
        int r_text = fhir_parse_text((const char *) data, size, &root, &e);

        /* json-c's "JSON text is null" is JSON; anything else it refuses is not */
        worklist_checks((const char *) data, size, r_text == 0 || !strncmp(e.msg, "JSON text is null", 17));
        if (r_text < 0) {
                if (!e.msg[0])
                        abort(); /* a refusal always says why */
                return 0;
        }
        memset(&r, 0, sizeof r);
        if (fhir_parse_referral(root, &r, &e) == 0)
                referral_free(&r);
        memset(&o, 0, sizeof o);
        if (fhir_parse_outcome(root, &o, &e) == 0)
                outcome_free(&o);
        struct ers_service s = { 0 };
        if (fhir_parse_service(root, &s, &e) == 0)
                ers_service_free(&s);
        struct ers_service_list l = { 0 };
        if (fhir_parse_service_bundle(root, &l, &e) == 0)
                ers_service_list_free(&l);
        json_object_put(root);
        return 0;
}
