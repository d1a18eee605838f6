/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: writing back to e-RS (daemon/fhir_writeback.h).
 *
 * The input, as an answer: through the text parser, then the two parsers of
 * what A028/A013 and A029 answer (the ReferralRequest and its version; the
 * Tasks of the actions allowed now).  Each must accept or refuse it cleanly:
 * no crash, no leak, no undefined behaviour, a refusal always with a line,
 * and what it hands back untouched on refusal.
 *
 * The input, as a review comment a PAS inserted: either refused before
 * anything is sent, with a line that never quotes it, or built into an A028
 * body that is JSON, whose reviewComments reads back byte for byte as the
 * comment, and which holds nothing else of it (the other parameters stay
 * what they were).
 */
#include <errno.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/fhir.h"
#include "daemon/fhir_writeback.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void answer_checks(const char *text, size_t size) {
        struct errbuf e = { { 0 } };
        json_object *root = NULL;
        int64_t version = -7;
        unsigned actions = 77, unknown = 77;
        int r;

        if (fhir_parse_text(text, size, &root, &e) < 0)
                return;
        r = fhir_parse_written(root, "000000300001", &version, &e);
        if ((r < 0 && (version != -7 || !e.msg[0])) || (r == 0 && version < 0))
                abort();
        char *settled_state = NULL;
        version = -7;
        r = fhir_parse_settling(root, "000000300001", &version, &settled_state, &e);
        if ((r < 0 && (settled_state || !e.msg[0])) || (r == 0 && version < 0))
                abort();
        free(settled_state);
        r = fhir_parse_actions(root, "000000300001", &actions, &unknown, &e);
        if (r < 0 && (actions != 77 || unknown != 77 || !e.msg[0]))
                abort();
        json_object_put(root);
}

static void comment_checks(const char *comment) {
        struct errbuf e = { { 0 } };
        json_object *root = NULL, *params;
        char *body = NULL;
        const char *outcome = comment[0] & 1 ? ERS_REVIEW_ACCEPT_BOOK_LATER : ERS_REVIEW_RETURN_TO_REFERRER;
        const char *priority = comment[0] & 2 && comment[0] & 1 ? "URGENT" : NULL;
        int r = fhir_review_request(outcome, comment, priority, &body, &e);

        if (r < 0) {
                if (r != -EINVAL || body || !e.msg[0])
                        abort();
                if (strlen(comment) >= 8 && strstr(e.msg, comment))
                        abort(); /* the comment is never quoted */
                return;
        }
        if (fhir_parse_text(body, strlen(body), &root, &e) < 0)
                abort(); /* what we send is JSON */
        params = json_object_object_get(root, "parameter");
        if (json_object_array_length(params) != (priority ? 3u : 2u))
                abort();
        json_object *said = json_object_object_get(json_object_array_get_idx(params, 1), "valueString");
        if (!said || (size_t) json_object_get_string_len(said) != strlen(comment) ||
            memcmp(json_object_get_string(said), comment, strlen(comment)) != 0)
                abort(); /* the comment, byte for byte */
        json_object *code = json_object_object_get(json_object_object_get(json_object_array_get_idx(params, 0),
                                                                          "valueCoding"),
                                                   "code");
        if (!code || strcmp(json_object_get_string(code), outcome) != 0)
                abort();
        json_object_put(root);
        free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        char *comment = malloc(size + 1);

        answer_checks((const char *) data, size);
        if (!comment)
                return 0;
        memcpy(comment, data, size);
        comment[size] = '\0'; /* a C string: what a PAS column gives, up to its first NUL */
        comment_checks(comment);
        free(comment);
        return 0;
}
