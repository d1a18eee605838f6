/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: an e-RS JSON answer, as it arrives, through the text
 * parser and then every FHIR parser (A008 worklist, A005 referral,
 * OperationOutcome).  Each must accept or refuse it cleanly: no crash, no
 * leak, no undefined behaviour, and on refusal an error line.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "daemon/fhir.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        struct errbuf e = { { 0 } };
        json_object *root = NULL;
        struct worklist w;
        struct referral r;
        struct outcome o;

        if (fhir_parse_text((const char *) data, size, &root, &e) < 0) {
                if (!e.msg[0])
                        abort(); /* a refusal always says why */
                return 0;
        }
        memset(&w, 0, sizeof w);
        if (fhir_parse_worklist(root, &w, &e) == 0)
                worklist_free(&w);
        memset(&r, 0, sizeof r);
        if (fhir_parse_referral(root, &r, &e) == 0)
                referral_free(&r);
        memset(&o, 0, sizeof o);
        if (fhir_parse_outcome(root, &o, &e) == 0)
                outcome_free(&o);
        json_object_put(root);
        return 0;
}
