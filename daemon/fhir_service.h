/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * e-RS services (R4 HealthcareService): what `ersd services` and `ersd
 * --check-config --network` read of one, and the parsers of A033's answer (one
 * HealthcareService) and A035's (a searchset Bundle of them).
 *
 * Not here: the calls (ers.h: ers_read_service(), ers_search_services()), what
 * is printed (services.c), the referral's own resources (fhir.h).
 *
 * Parsers return 0, or -EBADMSG with one line in the errbuf naming the element
 * that was wrong (never its value), or -ENOMEM; on failure *ret is untouched.
 * Every string is kept as sent (a NUL in the name becomes U+FFFD, as in any
 * free text), for the caller to print through escape.h.
 */

#include <stddef.h>

#include <json-c/json.h>

#include "err.h"

/* Entries of one A035 answer at most: e-RS answers at most 20 (the ids one
 * search may name, ERS_SERVICES_PER_SEARCH); more is not an answer to it. */
#define FHIR_SERVICES_MAX 100

/* One service.  Every string owned, NULL when absent. */
struct ers_service {
        char *id;       /* HealthcareService.id: the service id a worklist names; never NULL */
        char *version;  /* meta.versionId, as sent */
        char *name;     /* name (free text) */
        char *type;     /* type[0].coding[0].code: the appointment type (FIRST_OUTPATIENT, ASSESSMENT_SERVICE …) */
        char *flow;     /* the characteristic coded in eRS-RequestFlowType: BOOKABLE, REVIEW, ADVICE_AND_GUIDANCE */
        char *location; /* location[0].identifier.value: the ODS site code */
};

/* Services in the order of the answer; owned array. */
struct ers_service_list {
        struct ers_service *services;
        size_t n;
};

/* A033: root is a HealthcareService with a string id. */
int fhir_parse_service(json_object *root, struct ers_service *ret, struct errbuf *e);

/* A035: root is a Bundle; each entry[].resource a HealthcareService (an entry
 * that is not one, or has no id, refuses the answer), at most FHIR_SERVICES_MAX.
 * A Bundle without entry is an empty list. */
int fhir_parse_service_bundle(json_object *root, struct ers_service_list *ret, struct errbuf *e);

void ers_service_free(struct ers_service *s);           /* the contents; accepts NULL */
void ers_service_list_free(struct ers_service_list *l); /* the contents; accepts NULL */
