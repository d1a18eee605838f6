/* SPDX-License-Identifier: MIT */
/*
 * e-RS services read from R4 HealthcareService answers (fhir_service.h): A033's
 * one resource, A035's searchset Bundle.  Only the id is required: it is what
 * a worklist names; every other element is shown when there, absent otherwise.
 *
 * Not here: the calls (ers.c), their printing (services.c), the shared reads
 * of a json-c tree (fhir_json.c).
 */
#include "fhir_service.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir_json.h"

#define SYSTEM_REQUEST_FLOW "https://fhir.nhs.uk/CodeSystem/eRS-RequestFlowType"

static const struct fhir_field service_fields[] = {
        { NULL, "meta.versionId",              offsetof(struct ers_service, version), false },
        { NULL, "name",                        offsetof(struct ers_service, name), true },
        { NULL, "type.0.coding.0.code",        offsetof(struct ers_service, type), false },
        { NULL, "type.coding.0.code",          offsetof(struct ers_service, type), false }, /* the examples' shape */
        { NULL, "location.0.identifier.value", offsetof(struct ers_service, location), false },
};

void ers_service_free(struct ers_service *s) {
        if (!s)
                return;
        free(s->id);
        free(s->version);
        free(s->name);
        free(s->type);
        free(s->flow);
        free(s->location);
}

void ers_service_list_free(struct ers_service_list *l) {
        if (!l)
                return;
        for (size_t i = 0; i < l->n; i++)
                ers_service_free(&l->services[i]);
        free(l->services);
        l->services = NULL;
        l->n = 0;
}

/* The code of the first characteristic coding in the request flow system. */
static const char *request_flow(json_object *root) {
        json_object *chars = fhir_array_member(root, "characteristic");

        for (size_t i = 0; i < fhir_array_len(chars); i++) {
                json_object *codings = fhir_array_member(fhir_array_get(chars, i), "coding");
                for (size_t k = 0; k < fhir_array_len(codings); k++) {
                        json_object *c = fhir_array_get(codings, k);
                        const char *system = fhir_str_at(c, "system");
                        if (system && strcmp(system, SYSTEM_REQUEST_FLOW) == 0 && fhir_str_at(c, "code"))
                                return fhir_str_at(c, "code");
                }
        }
        return NULL;
}

/* One HealthcareService into *ret (zeroed by the caller); `what` names it in
 * the error line ("HealthcareService", "entry[3].resource"). */
static int parse_one(json_object *root, const char *what, struct ers_service *ret, struct errbuf *e) {
        struct ers_service s = { 0 };
        const char *id;
        int r;

        r = fhir_check_resource_type(root, "HealthcareService", e);
        if (r < 0)
                return err_prefix(e, r, "%s", what);
        id = fhir_str_at(root, "id");
        if (!id || !*id)
                return err_set(e, -EBADMSG, "%s: id is missing or not a string", what);
        if (fhir_dup_or_null(id, &s.id) < 0 || fhir_copy_fields(root, service_fields, ELEMENTSOF(service_fields), &s) < 0 ||
            fhir_dup_or_null(request_flow(root), &s.flow) < 0) {
                ers_service_free(&s);
                return fhir_oom(e);
        }
        *ret = s;
        return 0;
}

int fhir_parse_service(json_object *root, struct ers_service *ret, struct errbuf *e) {
        return parse_one(root, "HealthcareService", ret, e);
}

int fhir_parse_service_bundle(json_object *root, struct ers_service_list *ret, struct errbuf *e) {
        struct ers_service_list l = { 0 };
        json_object *entries;
        size_t n;
        int r;

        r = fhir_check_resource_type(root, "Bundle", e);
        if (r < 0)
                return r;
        entries = fhir_member(root, "entry");
        if (entries && !json_object_is_type(entries, json_type_array))
                return err_set(e, -EBADMSG, "Bundle: entry is not an array");
        n = fhir_array_len(entries);
        if (n > FHIR_SERVICES_MAX)
                return err_set(e, -EBADMSG, "Bundle: %zu entries, more than the %d a search of services answers", n,
                               FHIR_SERVICES_MAX);
        if (n > 0 && !(l.services = calloc(n, sizeof *l.services)))
                return fhir_oom(e);
        for (size_t i = 0; i < n; i++) {
                char what[48];

                snprintf(what, sizeof what, "Bundle: entry[%zu].resource", i);
                r = parse_one(fhir_member(fhir_array_get(entries, i), "resource"), what, &l.services[i], e);
                if (r < 0) {
                        ers_service_list_free(&l);
                        return r;
                }
                l.n++;
        }
        *ret = l;
        return 0;
}
