/* SPDX-License-Identifier: MIT */
/*
 * The FHIR resources read or written whole: the A005 ReferralRequest and an
 * OperationOutcome read into the structs of model.h, and the A008 request
 * body (a Parameters resource) built.
 *
 * Not here: the streaming A008 worklist parser (fhir_worklist.c), the shared
 * reads of a json-c tree and fhir_parse_text() (fhir_json.c).
 *
 * Only what the daemon cannot do without is an error: the resourceType, UBRNs,
 * versions, and the id of each attachment (what identifies a document in the
 * PAS and the spool).  Every parser fills a local struct and hands it over
 * whole at the end; on any failure the local is freed with the matching
 * *_free() and *ret is untouched.  Error lines name the element, never its
 * value when the value could be patient data (UBRNs and indexes are fine).
 */
#include "fhir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir_json.h"
#include "util.h"

/* Extensions, matched by the last segment of their URL (fhir_find_ext()). */
#define EXT_PRIORITY           "Extension-eRS-ReferralPriority-1"
#define EXT_STATE              "Extension-eRS-ReferralState-1"
#define EXT_PATHWAY_START      "Extension-eRS-eReferralPathwayStart-1"
#define EXT_CLINICAL_INFO      "Extension-eRS-ClinicalInfoFirstSubmitted-1"
#define EXT_APPOINTMENT        "Extension-eRS-Appointment-1"
#define EXT_APPOINTMENT_REF    "Extension-eRS-Appointment-Reference-1"
#define EXT_CLINICAL_INFO_LAST "Extension-eRS-ClinicalInfoLastUpdated-1"
#define EXT_ATTACHED_ON_BEHALF "Extension-eRS-AttachedOnBehalfOf-1"
#define EXT_COMMISSIONING_ORG  "Extension-eRS-Commissioning-Rule-Org-1"
#define EXT_SHORTLIST          "Extension-eRS-ReferralShortlist-1"
#define EXT_AVAILABILITY       "Extension-eRS-AvailabilityStatus-1"
#define EXT_ATTACHED_BY        "Extension-eRS-AttachedBy-1"
#define EXT_ATTACHED_BY_ORG    "Extension-eRS-AttachedByOrganisation-1"

/* Identifier and code systems, compared whole. */
#define SYSTEM_ERS_SERVICE     "http://fhir.nhs.net/Id/ers-service"
#define SYSTEM_SDS_USER        "http://fhir.nhs.net/Id/sds-user-id"
#define SYSTEM_REQUEST_ID      "https://fhir.nhs.uk/Id/ers-request-id"
#define SYSTEM_LIST_SELECTOR   "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralListSelector-1"
#define PROFILE_FETCH_WORKLIST "https://fhir.nhs.uk/STU3/StructureDefinition/eRS-FetchWorklist-Parameters-1"

#define BINARY_REF_PREFIX      "Binary/"

#define DIAGNOSTICS_MAX  256 /* bytes kept of each OperationOutcome string */
#define FHIR_ID_MAX      64  /* FHIR id: [A-Za-z0-9.-]{1,64} */

/* ---- A005 referral ----------------------------------------------------- */

/* The ReferralRequest's own elements and single-valued extensions. */
static const struct fhir_field referral_fields[] = {
        { NULL,                  "subject.identifier.value",           offsetof(struct referral, nhs_number), false },
        { NULL,                  "specialty.coding.0.code",            offsetof(struct referral, specialty), false },
        { NULL,                  "specialty.coding.0.display",         offsetof(struct referral, specialty_display), true },
        { NULL,                  "status",                             offsetof(struct referral, status), false },
        { NULL,                  "intent",                             offsetof(struct referral, intent), false },
        { EXT_PRIORITY,          "valueCodeableConcept.coding.0.code", offsetof(struct referral, priority), false },
        { EXT_PATHWAY_START,     "valueInstant",                       offsetof(struct referral, pathway_start), false },
        { EXT_PATHWAY_START,     "valueDateTime",                      offsetof(struct referral, pathway_start), false },
        { EXT_CLINICAL_INFO,     "valueDateTime",                      offsetof(struct referral, clinical_info_first_submitted), false },
        { EXT_CLINICAL_INFO,     "valueInstant",                       offsetof(struct referral, clinical_info_first_submitted), false },
        { EXT_COMMISSIONING_ORG, "valueIdentifier.value",              offsetof(struct referral, commissioning_org), false },
        { EXT_CLINICAL_INFO_LAST, "valueDateTime",                     offsetof(struct referral, clinical_info_last_updated), false },
        { EXT_CLINICAL_INFO_LAST, "valueInstant",                      offsetof(struct referral, clinical_info_last_updated), false },
        { EXT_APPOINTMENT_REF,   "valueReference.reference",           offsetof(struct referral, appointment_reference), false },
};

/* The ReferralState extension's nested extensions. */
static const struct fhir_field referral_state_fields[] = {
        { "state",   "valueCoding.code", offsetof(struct referral, state), false },
        { "reason",  "valueCoding.code", offsetof(struct referral, state_reason), false },
        { "reason",  "valueCoding.system", offsetof(struct referral, state_reason_system), false },
        { "reason",  "valueCoding.display", offsetof(struct referral, state_reason_display), true },
        { "comment", "valueString",      offsetof(struct referral, state_comment), true },
        { "comments", "valueString",     offsetof(struct referral, state_comment), true }, /* the spec's spelling */
};

/* A contained DocumentReference's own elements. */
static const struct fhir_field document_fields[] = {
        { NULL, "type.coding.0.code", offsetof(struct attachment, doc_type), false },
        { NULL, "description",        offsetof(struct attachment, description), true },
};

/* Its content[0].attachment's elements and extensions. */
static const struct fhir_field attachment_fields[] = {
        { NULL,                "id",                              offsetof(struct attachment, id), false },
        { NULL,                "url",                             offsetof(struct attachment, url), false },
        { NULL,                "title",                           offsetof(struct attachment, title), true },
        { NULL,                "contentType",                     offsetof(struct attachment, content_type), false },
        { NULL,                "creation",                        offsetof(struct attachment, creation), false },
        { EXT_AVAILABILITY,    "valueCoding.code",                offsetof(struct attachment, availability_code), false },
        { EXT_ATTACHED_BY,     "valueReference.identifier.value", offsetof(struct attachment, attached_by_user), false },
        { EXT_ATTACHED_BY_ORG, "valueReference.identifier.value", offsetof(struct attachment, attached_by_org), false },
        { EXT_ATTACHED_ON_BEHALF, "valueReference.identifier.value", offsetof(struct attachment, attached_on_behalf_of), false },
};

/* The contained Appointment's own elements (its start, end and service: appointment_parse()). */
static const struct fhir_field appointment_fields[] = {
        { NULL, "status",                   offsetof(struct referral, appointment_status), false },
        { NULL, "created",                  offsetof(struct referral, appointment_created), false },
        { NULL, "reason.0.coding.0.code",   offsetof(struct referral, appointment_reason), false },
        { NULL, "reason.0.coding.0.system", offsetof(struct referral, appointment_reason_system), false },
        { NULL, "reason.0.coding.0.display", offsetof(struct referral, appointment_reason_display), true },
        { NULL, "comment",                  offsetof(struct referral, appointment_comment), true },
        { NULL, "slot.0.reference",         offsetof(struct referral, appointment_slot), false },
};

/* The {id} of an attachment url "Binary/{id}" (relative, or absolute with a
 * "/Binary/" segment; a "/_history/…" tail is dropped), copied into *ret; NULL
 * when the url has no such part or the id is not a FHIR id
 * ([A-Za-z0-9.-]{1,64}, not "." or ".."), since it becomes part of a request
 * path.  0 or -ENOMEM. */
static int binary_id_of(const char *url, char **ret) {
        const size_t plen = strlen(BINARY_REF_PREFIX);
        const char *p;
        size_t n;

        *ret = NULL;
        if (!url)
                return 0;
        if (strncmp(url, BINARY_REF_PREFIX, plen) == 0)
                p = url + plen;
        else {
                p = strstr(url, "/" BINARY_REF_PREFIX);
                if (!p)
                        return 0;
                p += 1 + plen;
        }
        n = strspn(p, DIGITS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz-.");
        if (n == 0 || n > FHIR_ID_MAX || (p[n] != '\0' && p[n] != '/') ||
            strspn(p, ".") == n) /* ".", "..": path segments, not ids */
                return 0;
        *ret = strndup(p, n);
        return *ret ? 0 : -ENOMEM;
}

/* Parses a contained DocumentReference (which has content[0].attachment) into
 * a (zeroed by the caller).  0 or -ENOMEM. */
static int attachment_parse(json_object *doc, json_object *att, struct attachment *a, unsigned *nul_fields) {
        json_object *size = fhir_member(att, "size");
        int r;

        a->declared_size = -1;
        if (json_object_is_type(size, json_type_int) && json_object_get_int64(size) >= 0)
                a->declared_size = json_object_get_int64(size);
        r = fhir_copy_fields(doc, document_fields, ELEMENTSOF(document_fields), a);
        if (r < 0)
                return r;
        *nul_fields += (unsigned) r;
        r = fhir_copy_fields(att, attachment_fields, ELEMENTSOF(attachment_fields), a);
        if (r < 0)
                return r;
        *nul_fields += (unsigned) r;
        a->availability = availability_of(a->availability_code);
        return binary_id_of(a->url, &a->binary_id);
}

/* Fills rf->attachments from every contained DocumentReference that has a
 * content[0].attachment, referenced by supportingInfo or not.  An attachment
 * without an id (absent, not a string, or holding a NUL) is refused: the id is
 * how the PAS and the spool know a document, and a referral cannot be stored
 * without one of its documents.  0, -EBADMSG (with the line) or -ENOMEM (what
 * was taken is in rf for referral_free()). */
static int attachments_parse(json_object *root, struct referral *rf, struct errbuf *e) {
        json_object *contained = fhir_array_member(root, "contained");
        size_t n = fhir_array_len(contained);

        for (size_t i = 0; i < n; i++) {
                json_object *c = fhir_array_get(contained, i);
                json_object *att = fhir_at(c, "content.0.attachment");
                const char *t = fhir_str_at(c, "resourceType");
                int r;

                if (!t || strcmp(t, "DocumentReference") != 0)
                        continue;
                if (!json_object_is_type(att, json_type_object)) {
                        rf->documents_without_content++; /* nothing to fetch: counted, for a warning */
                        continue;
                }
                if (!rf->attachments) {
                        /* at most one per contained resource */
                        rf->attachments = calloc(n, sizeof *rf->attachments);
                        if (!rf->attachments)
                                return fhir_oom(e);
                }
                r = attachment_parse(c, att, &rf->attachments[rf->n_attachments++], &rf->text_nul_fields);
                if (r < 0)
                        return fhir_oom(e);
                if (!rf->attachments[rf->n_attachments - 1].id)
                        return err_set(e, -EBADMSG, "contained[%zu] (DocumentReference): content[0].attachment.id "
                                       "is missing or not a string", i);
        }
        return 0;
}

/* Fills rf->appointment_*, rf->service_* from the contained Appointment that
 * the Appointment extension points at, when the referral has one (booked,
 * deferred to the provider, sent for triage).  The service is the participant
 * whose actor is an e-RS service, the allocated clinician the one whose actor
 * is an SDS user.  The number of free-text fields that held a NUL, or
 * -ENOMEM. */
static int appointment_parse(json_object *root, struct referral *rf) {
        const char *ref = fhir_str_at(fhir_find_ext(root, EXT_APPOINTMENT), "valueReference.reference");
        json_object *appt = fhir_contained_by_ref(root, ref, "Appointment");
        json_object *participants = fhir_array_member(appt, "participant");
        bool service_seen = false;
        int r, nul_fields;

        if (!appt)
                return 0;
        r = fhir_dup_or_null(fhir_str_at(appt, "start"), &rf->appointment_start);
        if (r < 0)
                return r;
        r = fhir_dup_or_null(fhir_str_at(appt, "end"), &rf->appointment_end);
        if (r < 0)
                return r;
        nul_fields = fhir_copy_fields(appt, appointment_fields, ELEMENTSOF(appointment_fields), rf);
        if (nul_fields < 0)
                return nul_fields;
        for (size_t i = 0; i < fhir_array_len(participants); i++) {
                json_object *actor = fhir_at(fhir_array_get(participants, i), "actor");
                const char *system = fhir_str_at(actor, "identifier.system");

                if (system && strcmp(system, SYSTEM_SDS_USER) == 0 && !rf->appointment_clinician) {
                        r = fhir_dup_or_null(fhir_str_at(actor, "identifier.value"), &rf->appointment_clinician);
                        if (r < 0)
                                return r;
                }
                if (!system || strcmp(system, SYSTEM_ERS_SERVICE) != 0 || service_seen)
                        continue;
                service_seen = true;
                r = fhir_dup_or_null(fhir_str_at(actor, "identifier.value"), &rf->service_id);
                if (r >= 0)
                        r = fhir_dup_or_null(fhir_str_at(actor, "display"), &rf->service_name);
                if (r < 0)
                        return r;
        }
        return nul_fields;
}

/* A referral without an appointment (not booked, nor deferred to or sent for
 * triage at a service) names its service only in its shortlist: the contained
 * List the shortlist extension points at, one entry per service the patient
 * may be booked into.  When every entry with an e-RS service identifier names
 * the same service, that is the referral's (rf->service_*); several, or none,
 * name no single service and leave it NULL.  0 or -ENOMEM. */
static int shortlist_parse(json_object *root, struct referral *rf) {
        const char *ref = fhir_str_at(fhir_find_ext(root, EXT_SHORTLIST), "valueReference.reference");
        json_object *entries = fhir_array_member(fhir_contained_by_ref(root, ref, "List"), "entry");
        json_object *named = NULL;
        const char *id = NULL;
        int r;

        for (size_t i = 0; i < fhir_array_len(entries); i++) {
                json_object *item = fhir_at(fhir_array_get(entries, i), "item");
                const char *system = fhir_str_at(item, "identifier.system");
                const char *value = fhir_str_at(item, "identifier.value");

                if (!system || strcmp(system, SYSTEM_ERS_SERVICE) != 0 || !value)
                        continue;
                if (id && strcmp(id, value) != 0)
                        return 0; /* a choice of services: none is the referral's */
                if (!id) {
                        id = value;
                        named = item;
                }
        }
        if (!id)
                return 0;
        r = fhir_dup_or_null(id, &rf->service_id);
        if (r < 0)
                return r;
        r = fhir_text_dup_at(named, "display", &rf->service_name);
        if (r > 0)
                rf->text_nul_fields++;
        return r < 0 ? r : 0;
}

static int compare_ubrn(const void *a, const void *b) {
        return strcmp(a, b);
}

/* Fills rf->related with the UBRNs of the supportingInfo references to other
 * ReferralRequests: sorted, without duplicates, without rf's own.  Other
 * references (#DocumentReference-…) are skipped.  -EBADMSG (with the line) for
 * a ReferralRequest reference without a valid UBRN, -ENOMEM. */
static int related_parse(json_object *root, struct referral *rf, struct errbuf *e) {
        json_object *infos = fhir_array_member(root, "supportingInfo");
        size_t n = fhir_array_len(infos), k = 0;

        for (size_t i = 0; i < n; i++) {
                char ubrn[UBRN_LEN + 1];
                int r = fhir_ref_ubrn(fhir_str_at(fhir_array_get(infos, i), "reference"), ubrn);

                if (r == -ENOENT || (r == 0 && strcmp(ubrn, rf->ubrn) == 0))
                        continue;
                if (r < 0)
                        return err_set(e, -EBADMSG, "supportingInfo[%zu]: reference is not "
                                       REFERRAL_REF_PREFIX "<12-digit UBRN>", i);
                if (!rf->related) {
                        rf->related = calloc(n, sizeof *rf->related);
                        if (!rf->related)
                                return fhir_oom(e);
                }
                memcpy(rf->related[rf->n_related++], ubrn, sizeof ubrn);
        }
        if (rf->n_related < 2)
                return 0;
        qsort(rf->related, rf->n_related, sizeof *rf->related, compare_ubrn);
        for (size_t i = 1; i < rf->n_related; i++)
                if (strcmp(rf->related[i], rf->related[k]) != 0 && ++k != i)
                        memcpy(rf->related[k], rf->related[i], sizeof *rf->related);
        rf->n_related = k + 1;
        return 0;
}

int fhir_parse_referral(json_object *root, struct referral *ret, struct errbuf *e) {
        struct referral rf = { .version = -1 };
        const char *id;
        int r;

        r = fhir_check_resource_type(root, "ReferralRequest", e);
        if (r < 0)
                return r;
        id = fhir_str_at(root, "id");
        if (!ubrn_valid(id))
                return err_set(e, -EBADMSG, "id is not a 12-digit UBRN");
        memcpy(rf.ubrn, id, sizeof rf.ubrn);
        if (fhir_parse_version(fhir_at(root, "meta.versionId"), &rf.version) < 0)
                return err_set(e, -EBADMSG, "meta.versionId is not a non-negative integer");

        r = fhir_copy_fields(root, referral_fields, ELEMENTSOF(referral_fields), &rf);
        if (r >= 0) {
                rf.text_nul_fields += (unsigned) r;
                r = fhir_copy_fields(fhir_find_ext(root, EXT_STATE), referral_state_fields,
                                ELEMENTSOF(referral_state_fields), &rf);
        }
        if (r >= 0)
                rf.text_nul_fields += (unsigned) r;
        if (r >= 0)
                r = fhir_dup_or_null(fhir_identifier_value(fhir_array_member(root, "identifier"), SYSTEM_REQUEST_ID),
                                &rf.request_id);
        if (r >= 0)
                r = appointment_parse(root, &rf);
        if (r >= 0) {
                rf.text_nul_fields += (unsigned) r;
                r = fhir_referral_elements(root, &rf);
        }
        if (r >= 0) {
                rf.text_nul_fields += (unsigned) r;
                r = 0;
        }
        if (r >= 0 && !rf.service_id && !rf.service_name)
                r = shortlist_parse(root, &rf);
        if (r < 0) {
                r = fhir_oom(e);
                goto out;
        }
        r = attachments_parse(root, &rf, e);
        if (r >= 0)
                r = related_parse(root, &rf, e);
        if (r < 0)
                goto out;

        *ret = rf;
        rf = (struct referral) { 0 };
out:
        referral_free(&rf);
        return r;
}

/* ---- OperationOutcome -------------------------------------------------- */

/* The first issue's elements. */
static const struct fhir_field outcome_fields[] = {
        { NULL, "severity",                offsetof(struct outcome, severity), false },
        { NULL, "details.coding.0.code",   offsetof(struct outcome, code), false },
        { NULL, "diagnostics",             offsetof(struct outcome, diagnostics), false },
};

/* Cuts s to at most max bytes, never inside a UTF-8 character: a bound on
 * what is kept, not a way of showing it (quoting is server_text()'s). */
static void cut_on_character(char *s, size_t max) {
        if (strlen(s) > max)
                s[max - utf8_cut(s, max)] = '\0';
}

int fhir_parse_outcome(json_object *root, struct outcome *ret, struct errbuf *e) {
        struct outcome o = { 0 };
        json_object *issue;
        int r;

        r = fhir_check_resource_type(root, "OperationOutcome", e);
        if (r < 0)
                return r;
        issue = fhir_at(root, "issue.0");
        if (!json_object_is_type(issue, json_type_object))
                return err_set(e, -EBADMSG, "issue[0] is missing or not an object");
        r = fhir_copy_fields(issue, outcome_fields, ELEMENTSOF(outcome_fields), &o);
        if (r < 0) {
                outcome_free(&o);
                return fhir_oom(e);
        }
        /* kept as sent, bounded; a line that quotes one quotes it through server_text() */
        for (size_t i = 0; i < ELEMENTSOF(outcome_fields); i++) {
                char *v = *(char **) ((char *) &o + outcome_fields[i].offset);

                if (v)
                        cut_on_character(v, DIAGNOSTICS_MAX);
        }
        *ret = o;
        return 0;
}

/* ---- A008 request body -------------------------------------------------- */

/* Adds val to obj under key; obj takes val even when that fails (val is then
 * freed).  Returns val (borrowed), or NULL when obj or val is NULL or memory
 * ran out, so that calls nest and a failure anywhere shows at the end. */
static json_object *put(json_object *obj, const char *key, json_object *val) {
        if (!obj || !val || json_object_object_add(obj, key, val) < 0) {
                json_object_put(val);
                return NULL;
        }
        return val;
}

/* Appends val to the array arr, as put() does for objects. */
static json_object *append(json_object *arr, json_object *val) {
        if (!arr || !val || json_object_array_add(arr, val) < 0) {
                json_object_put(val);
                return NULL;
        }
        return val;
}

char *fhir_worklist_request(const char *list_type, const char *service_id) {
        json_object *root, *param, *coding, *ident;
        char *body = NULL;
        bool ok;

        if (!list_type) {
                errno = EINVAL;
                return NULL;
        }
        root = json_object_new_object();
        ok = put(root, "resourceType", json_object_new_string("Parameters")) &&
             append(put(put(root, "meta", json_object_new_object()), "profile", json_object_new_array()),
                    json_object_new_string(PROFILE_FETCH_WORKLIST));

        /* json-c keeps insertion order: members are added in the order of
         * the published examples ("name" before the value). */
        param = append(put(root, "parameter", json_object_new_array()), json_object_new_object());
        ok = ok && put(param, "name", json_object_new_string("listType"));
        coding = append(put(put(param, "valueCodeableConcept", json_object_new_object()),
                            "coding", json_object_new_array()),
                        json_object_new_object());
        ok = ok && put(coding, "system", json_object_new_string(SYSTEM_LIST_SELECTOR)) &&
             put(coding, "code", json_object_new_string(list_type));

        if (ok && service_id) {
                param = append(fhir_member(root, "parameter"), json_object_new_object());
                ok = put(param, "name", json_object_new_string("service")) &&
                     (ident = put(param, "valueIdentifier", json_object_new_object())) &&
                     put(ident, "system", json_object_new_string(SYSTEM_ERS_SERVICE)) &&
                     put(ident, "value", json_object_new_string(service_id));
        }
        if (ok) {
                const char *s = json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN |
                                                                     JSON_C_TO_STRING_NOSLASHESCAPE);
                body = s ? strdup(s) : NULL;
        }
        json_object_put(root);
        if (!body)
                errno = ENOMEM;
        return body;
}
