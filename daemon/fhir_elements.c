/* SPDX-License-Identifier: MIT */
/*
 * The elements of an A005 ReferralRequest that its element walk added to
 * what is kept (docs/schema.md, "Every element of a referral"), read into
 * struct referral (model.h): the additional requirements, the clinic type
 * and named clinician of the service search criteria, and the advice and
 * guidance request a referral was converted from.
 *
 * Not here: the parser of the whole resource and the elements it always read
 * (fhir.c: identity, state, priority, appointment, shortlist, attachments,
 * related referrals); the reads every parser shares (fhir_json.c).  Like the
 * rest, nothing here refuses an answer: an element of an unexpected shape
 * reads as absent, and an unknown code is kept verbatim.
 */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "fhir_json.h"

/* Additional requirements: the name the published examples carry (a nested
 * "type" coding and "comments"), and the one the specification's schema gives
 * (a valueCoding of its own).  Both are read, in the order e-RS lists them. */
#define EXT_REQUIREMENT          "Extension-eRS-AdditionalRequirement-1"
#define EXT_PATIENT_REQUIREMENT  "Extension-eRS-PatientAdditionalRequirement-1"
#define EXT_SHORTLIST            "Extension-eRS-ReferralShortlist-1"
#define EXT_SEARCH_CRITERIA      "Extension-eRS-Shortlist-SearchCriteria-1"

#define ADVICE_REF_PREFIX "CommunicationRequest/"

/* A requirement's coding and words, nested ("type", "comments") or not. */
static const struct fhir_field requirement_fields[] = {
        { "type",     "valueCoding.code",    offsetof(struct requirement, code), false },
        { "type",     "valueCoding.system",  offsetof(struct requirement, system), false },
        { "type",     "valueCoding.display", offsetof(struct requirement, display), true },
        { "comments", "valueString",         offsetof(struct requirement, comments), true },
        { "comment",  "valueString",         offsetof(struct requirement, comments), true },
        { NULL,       "valueCoding.code",    offsetof(struct requirement, code), false },
        { NULL,       "valueCoding.system",  offsetof(struct requirement, system), false },
        { NULL,       "valueCoding.display", offsetof(struct requirement, display), true },
};

/* Every additional requirement extension of the referral, into rf->requirements:
 * one entry each, whatever it holds (a requirement whose coding is missing is
 * still one: staff see that there is one, and the answer kept says what was
 * sent).  The number of free-text fields with a NUL, or -ENOMEM. */
static int requirements_parse(json_object *root, struct referral *rf) {
        json_object *exts = fhir_array_member(root, "extension");
        size_t n = fhir_array_len(exts);
        int nul_fields = 0;

        for (size_t i = 0; i < n; i++) {
                json_object *x = fhir_array_get(exts, i);
                int r;

                if (!json_object_is_type(x, json_type_object) ||
                    (!fhir_ext_is(x, EXT_REQUIREMENT) && !fhir_ext_is(x, EXT_PATIENT_REQUIREMENT)))
                        continue;
                if (!rf->requirements) {
                        /* at most one per extension */
                        rf->requirements = calloc(n, sizeof *rf->requirements);
                        if (!rf->requirements)
                                return -ENOMEM;
                }
                r = fhir_copy_fields(x, requirement_fields, ELEMENTSOF(requirement_fields),
                                     &rf->requirements[rf->n_requirements++]);
                if (r < 0)
                        return r;
                nul_fields += r;
        }
        return nul_fields;
}

/* The service search criteria the referrer's shortlist was made with (a
 * contained Parameters the shortlist's extension points at): its clinicType
 * code and its namedClinician.  0 or -ENOMEM. */
static int search_criteria_parse(json_object *root, struct referral *rf) {
        const char *list_ref = fhir_str_at(fhir_find_ext(root, EXT_SHORTLIST), "valueReference.reference");
        json_object *list = fhir_contained_by_ref(root, list_ref, "List");
        const char *ref = fhir_str_at(fhir_find_ext(list, EXT_SEARCH_CRITERIA), "valueReference.reference");
        json_object *params = fhir_array_member(fhir_contained_by_ref(root, ref, "Parameters"), "parameter");
        int r = 0;

        for (size_t i = 0; i < fhir_array_len(params) && r >= 0; i++) {
                json_object *p = fhir_array_get(params, i);
                const char *name = fhir_str_at(p, "name");

                if (!name)
                        continue;
                if (strcmp(name, "clinicType") == 0 && !rf->clinic_type)
                        r = fhir_dup_or_null(fhir_str_at(p, "valueCoding.code"), &rf->clinic_type);
                else if (strcmp(name, "namedClinician") == 0 && !rf->named_clinician)
                        r = fhir_dup_or_null(fhir_str_at(p, "valueIdentifier.value"), &rf->named_clinician);
        }
        return r;
}

/* The first supportingInfo reference to a CommunicationRequest: the advice and
 * guidance request the referral was converted from.  0 or -ENOMEM. */
static int advice_request_parse(json_object *root, struct referral *rf) {
        json_object *infos = fhir_array_member(root, "supportingInfo");

        for (size_t i = 0; i < fhir_array_len(infos); i++) {
                const char *ref = fhir_str_at(fhir_array_get(infos, i), "reference");

                if (ref && strncmp(ref, ADVICE_REF_PREFIX, strlen(ADVICE_REF_PREFIX)) == 0 &&
                    ref[strlen(ADVICE_REF_PREFIX)] != '\0')
                        return fhir_dup_or_null(ref, &rf->advice_request);
        }
        return 0;
}

int fhir_referral_elements(json_object *root, struct referral *rf) {
        int nul_fields = requirements_parse(root, rf);

        if (nul_fields < 0)
                return nul_fields;
        int r = search_criteria_parse(root, rf);
        if (r >= 0)
                r = advice_request_parse(root, rf);
        return r < 0 ? r : nul_fields;
}
