/* SPDX-License-Identifier: MIT */
/*
 * The mock's e-RS services as the R4 API gives them (A033 read, A035 search,
 * A037 version): HealthcareService resources, and the searchset Bundle, in the
 * shape of the specification's eRS-HealthcareService (our own values).  The
 * routes and their checks are server.c's.
 */
#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "mock.h"

#define PROFILE_SERVICE "https://fhir.nhs.uk/StructureDefinition/eRS-HealthcareService"
#define PROFILE_BUNDLE "https://fhir.hl7.org.uk/StructureDefinition/UKCore-Bundle"
#define SYS_APPOINTMENT_TYPE "https://fhir.nhs.uk/CodeSystem/eRS-AppointmentType"
#define SYS_REQUEST_FLOW "https://fhir.nhs.uk/CodeSystem/eRS-RequestFlowType"
#define SYS_ODS_SITE "https://fhir.nhs.uk/Id/ods-site-code"

/* What the mock's service s is, by its index: every other one a triage
 * (REVIEW) service, the rest bookable. */
static const struct {
        const char *type, *type_display, *flow, *flow_display;
} KINDS[] = {
        { "FIRST_OUTPATIENT", "First Outpatient", "BOOKABLE", "Appointment Request" },
        { "ASSESSMENT_SERVICE", "Assessment Service", "REVIEW", "Triage Request" },
};

static json_object *coding(const char *system, const char *code, const char *display)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "system", json_object_new_string(system));
        json_object_object_add(o, "code", json_object_new_string(code));
        json_object_object_add(o, "display", json_object_new_string(display));
        return o;
}

static json_object *codings(json_object *c)
{
        json_object *o = json_object_new_object(), *a = json_object_new_array();
        json_object_array_add(a, c);
        json_object_object_add(o, "coding", a);
        return o;
}

static json_object *one(json_object *item)
{
        json_object *a = json_object_new_array();
        json_object_array_add(a, item);
        return a;
}

static json_object *service_json(const struct mock *m, size_t s)
{
        const struct service *sv = &m->services[s];
        size_t k = s % (sizeof KINDS / sizeof KINDS[0]);
        json_object *o = json_object_new_object(), *meta = json_object_new_object();
        json_object *site = json_object_new_object(), *ident = json_object_new_object();
        json_object *hours = json_object_new_object();
        char version[24], ods[16];

        snprintf(version, sizeof version, "%zu", s + 1);
        snprintf(ods, sizeof ods, "R69%02zu", s % 100);
        json_object_object_add(o, "id", json_object_new_string(sv->id));
        json_object_object_add(meta, "versionId", json_object_new_string(version));
        json_object_object_add(meta, "profile", one(json_object_new_string(PROFILE_SERVICE)));
        json_object_object_add(o, "meta", meta);
        json_object_object_add(o, "language", json_object_new_string("en"));
        json_object_object_add(o, "resourceType", json_object_new_string("HealthcareService"));
        json_object_object_add(hours, "url",
                               json_object_new_string("https://fhir.nhs.uk/StructureDefinition/Extension-eRS-HoursOfOperation"));
        json_object_object_add(hours, "valueString", json_object_new_string("08:00-18:00 Mon-Fri"));
        json_object_object_add(o, "extension", one(hours));
        json_object_object_add(ident, "system", json_object_new_string(SYS_ODS_SITE));
        json_object_object_add(ident, "value", json_object_new_string(ods));
        json_object_object_add(site, "identifier", ident);
        json_object_object_add(o, "location", one(site));
        json_object_object_add(o, "name", json_object_new_string(sv->name));
        json_object_object_add(o, "type", one(codings(coding(SYS_APPOINTMENT_TYPE, KINDS[k].type, KINDS[k].type_display))));
        json_object_object_add(o, "characteristic",
                               one(codings(coding(SYS_REQUEST_FLOW, KINDS[k].flow, KINDS[k].flow_display))));
        return o;
}

char *render_service(const struct mock *m, size_t s, size_t *ret_len)
{
        return json_text(service_json(m, s), ret_len);
}

char *render_service_bundle(const struct mock *m, const size_t *idx, size_t n, const char *self, size_t *ret_len)
{
        json_object *o = json_object_new_object(), *meta = json_object_new_object();
        json_object *link = json_object_new_object(), *entries = json_object_new_array();

        json_object_object_add(o, "resourceType", json_object_new_string("Bundle"));
        json_object_object_add(o, "id", json_object_new_string("5b1c6a3e-2f0d-4c1b-9e57-0b8f3a6d2c41"));
        json_object_object_add(meta, "profile", one(json_object_new_string(PROFILE_BUNDLE)));
        json_object_object_add(o, "meta", meta);
        json_object_object_add(o, "type", json_object_new_string("searchset"));
        json_object_object_add(o, "timestamp", json_object_new_string("2026-06-01T09:00:00.000Z"));
        json_object_object_add(o, "total", json_object_new_int64((int64_t)n));
        json_object_object_add(link, "relation", json_object_new_string("self"));
        json_object_object_add(link, "url", json_object_new_string(self));
        json_object_object_add(o, "link", one(link));
        for (size_t i = 0; i < n; i++) {
                json_object *e = json_object_new_object(), *search = json_object_new_object();
                char url[192];
                snprintf(url, sizeof url, "R4/HealthcareService/%s", m->services[idx[i]].id);
                json_object_object_add(e, "fullUrl", json_object_new_string(url));
                json_object_object_add(e, "resource", service_json(m, idx[i]));
                json_object_object_add(search, "mode", json_object_new_string("match"));
                json_object_object_add(e, "search", search);
                json_object_array_add(entries, e);
        }
        if (n > 0)
                json_object_object_add(o, "entry", entries);
        else
                json_object_put(entries);
        return json_text(o, ret_len);
}

size_t mock_find_service(const struct mock *m, const char *id)
{
        for (size_t s = 0; s < m->n_services; s++)
                if (strcmp(m->services[s].id, id) == 0)
                        return s;
        return SIZE_MAX;
}
