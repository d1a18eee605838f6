/* SPDX-License-Identifier: MIT */
/*
 * FHIR JSON as e-RS shapes it: the ReferralRequest (A005), the worklist List
 * (A008, generated entry by entry so a 10,000-referral list costs no more
 * memory than one entry), OperationOutcome, and the tests' manifest.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mock.h"

#define KEYFLAGS (JSON_C_OBJECT_ADD_KEY_IS_NEW | JSON_C_OBJECT_ADD_CONSTANT_KEY)
#define TO_STRING_FLAGS (JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE)

/* Adds under a string-literal key. */
static void put(json_object *o, const char *key, json_object *v)
{
        json_object_object_add_ex(o, key, v, KEYFLAGS);
}

static json_object *str(const char *s)
{
        return s ? json_object_new_string(s) : NULL;
}

static json_object *str_or_null(const char *s)
{
        return s && *s ? json_object_new_string(s) : NULL;
}

static json_object *arr1(json_object *v)
{
        json_object *a = json_object_new_array_ext(1);
        json_object_array_add(a, v);
        return a;
}

static json_object *coding(const char *system, const char *code, const char *display)
{
        json_object *c = json_object_new_object();
        put(c, "system", str(system));
        put(c, "code", str(code));
        if (display)
                put(c, "display", str(display));
        return c;
}

static json_object *coding_of(const struct code *c, bool with_display)
{
        return coding(c->system, c->code, with_display ? c->display : NULL);
}

static json_object *codeable(json_object *coding_obj)
{
        json_object *o = json_object_new_object();
        put(o, "coding", arr1(coding_obj));
        return o;
}

static json_object *identifier(const char *system, const char *value)
{
        json_object *o = json_object_new_object();
        put(o, "system", str(system));
        put(o, "value", str(value));
        return o;
}

static json_object *reference(const char *ref)
{
        json_object *o = json_object_new_object();
        put(o, "reference", str(ref));
        return o;
}

static json_object *meta(const char *profile, const char *version)
{
        json_object *o = json_object_new_object();
        if (version)
                put(o, "versionId", str(version));
        put(o, "profile", arr1(str(profile)));
        return o;
}

/* {"url": url, <value_key>: value} */
static json_object *ext(const char *url, const char *value_key, json_object *value)
{
        json_object *o = json_object_new_object();
        put(o, "url", str(url));
        if (value_key)
                put(o, value_key, value);
        return o;
}

char *json_text(json_object *o, size_t *ret_len)
{
        size_t len = 0;
        const char *s = json_object_to_json_string_length(o, TO_STRING_FLAGS, &len);
        char *copy = s ? malloc(len + 1) : NULL;

        if (copy) {
                memcpy(copy, s, len + 1);
                *ret_len = len;
        }
        json_object_put(o);
        return copy;
}

/* ---- OperationOutcome ------------------------------------------------------ */

char *render_outcome(const char *issue_code, const char *code, const char *display,
                     const char *diagnostics, size_t *ret_len)
{
        json_object *o = json_object_new_object();
        json_object *issue = json_object_new_object();
        json_object *details = json_object_new_object();

        put(o, "resourceType", str("OperationOutcome"));
        put(o, "meta", meta(SD "eRS-OperationOutcome-1", NULL));
        put(issue, "severity", str("error"));
        put(issue, "code", str(issue_code));
        put(details, "coding", arr1(coding(SYS_API_ERROR, code, display)));
        put(issue, "details", details);
        if (diagnostics)
                put(issue, "diagnostics", str(diagnostics));
        put(o, "issue", arr1(issue));
        return json_text(o, ret_len);
}

/* The R4 endpoints' OperationOutcome (NHSDigital-OperationOutcome): meta with
 * lastUpdated, the code in the http-error-codes system, diagnostics always. */
char *render_outcome_r4(const char *issue_code, const char *code, const char *diagnostics, size_t *ret_len)
{
        json_object *o = json_object_new_object();
        json_object *m = json_object_new_object();
        json_object *issue = json_object_new_object();
        json_object *details = json_object_new_object();
        json_object *cd = json_object_new_object();

        put(o, "resourceType", str("OperationOutcome"));
        put(m, "lastUpdated", str("2026-06-01T09:00:00.000Z"));
        put(o, "meta", m);
        put(issue, "severity", str("error"));
        put(issue, "code", str(issue_code));
        put(issue, "diagnostics", str(diagnostics ? diagnostics : ""));
        put(cd, "system", str(SYS_HTTP_ERROR));
        put(cd, "code", str(code));
        put(details, "coding", arr1(cd));
        put(issue, "details", details);
        put(o, "issue", arr1(issue));
        return json_text(o, ret_len);
}

/* ---- ReferralRequest (A005) ------------------------------------------------ */

static json_object *service_actor(const struct service *s)
{
        json_object *actor = json_object_new_object();
        put(actor, "identifier", identifier(SYS_SERVICE, s->id));
        put(actor, "display", str(s->name));
        return actor;
}

static json_object *appointment(const struct mock *m, const struct referral_view *v)
{
        const struct referral *r = v->r;
        json_object *a = json_object_new_object();
        json_object *participants = json_object_new_array_ext(2);
        json_object *p;
        char buf[160];

        put(a, "resourceType", str("Appointment"));
        put(a, "id", str("appointment"));
        put(a, "meta", meta(SD "eRS-Appointment-1", "1"));
        put(a, "status", str("booked"));
        put(a, "description", str("e-RS appointment (mock)"));
        put(a, "start", str(r->appointment_start));
        put(a, "end", str(r->appointment_end));
        snprintf(buf, sizeof buf, "Slot/%s%02u", m->services[r->service].id, (unsigned)(r->ubrn[11] - '0'));
        put(a, "slot", arr1(reference(buf)));
        put(a, "created", str(r->appointment_created));
        snprintf(buf, sizeof buf, "ReferralRequest/%s/_history/%lld", r->ubrn, (long long)v->version);
        put(a, "incomingReferral", arr1(reference(buf)));

        p = json_object_new_object();
        put(p, "actor", service_actor(&m->services[r->service]));
        put(p, "status", str("accepted"));
        json_object_array_add(participants, p);
        p = json_object_new_object();
        json_object *patient = json_object_new_object();
        put(patient, "identifier", identifier(SYS_NHS_NUMBER, r->nhs_number));
        put(p, "actor", patient);
        put(p, "status", str("accepted"));
        json_object_array_add(participants, p);
        put(a, "participant", participants);
        return a;
}

static json_object *search_criteria(const struct referral *r)
{
        json_object *o = json_object_new_object();
        json_object *params = json_object_new_array_ext(3);
        json_object *p;

        put(o, "resourceType", str("Parameters"));
        put(o, "id", str("serviceSearchCriteria"));
        put(o, "meta", meta(SD "eRS-ServiceSearchCriteria-Parameters-1", NULL));
        p = json_object_new_object();
        put(p, "name", str("priority"));
        put(p, "valueCoding", coding_of(r->priority, false));
        json_object_array_add(params, p);
        p = json_object_new_object();
        put(p, "name", str("specialty"));
        put(p, "valueCoding", coding_of(r->specialty, false));
        json_object_array_add(params, p);
        p = json_object_new_object();
        put(p, "name", str("distanceLimit"));
        put(p, "valueUnsignedInt", json_object_new_int(25));
        json_object_array_add(params, p);
        put(o, "parameter", params);
        return o;
}

static json_object *shortlist(const struct mock *m, const struct referral *r)
{
        json_object *o = json_object_new_object();
        json_object *entry = json_object_new_object();

        put(o, "resourceType", str("List"));
        put(o, "id", str("shortlist"));
        put(o, "meta", meta(SD "eRS-Shortlist-List-1", NULL));
        put(o, "extension", arr1(ext(SD "Extension-eRS-Shortlist-SearchCriteria-1", "valueReference",
                                     reference("#serviceSearchCriteria"))));
        put(o, "status", str("current"));
        put(o, "mode", str("snapshot"));
        put(entry, "item", service_actor(&m->services[r->service]));
        put(o, "entry", arr1(entry));
        return o;
}

static json_object *document_reference(const struct attachment *a, const char *availability)
{
        json_object *d = json_object_new_object();
        json_object *att = json_object_new_object();
        json_object *exts = json_object_new_array_ext(3);
        json_object *content = json_object_new_object();
        json_object *who;
        char buf[GIVEN_ID_MAX + 32];

        put(d, "resourceType", str("DocumentReference"));
        snprintf(buf, sizeof buf, "DocumentReference-%s", attachment_id(a));
        put(d, "id", str(buf));
        put(d, "meta", meta(SD "eRS-DocumentReference-1", NULL));
        put(d, "type", codeable(coding_of(a->doc_type, true)));
        put(d, "status", str("current"));
        put(d, "indexed", str(a->indexed));
        put(d, "description", str(a->title));

        if (!a->id_dropped)
                put(att, "id", str(attachment_id(a)));
        json_object_array_add(exts, ext(SD "Extension-eRS-AvailabilityStatus-1", "valueCoding",
                                        coding(CS "eRS-AvailabilityStatus-1", availability, NULL)));
        who = json_object_new_object();
        put(who, "identifier", identifier(SYS_SDS_USER, a->attached_by_user));
        json_object_array_add(exts, ext(SD "Extension-eRS-AttachedBy-1", "valueReference", who));
        who = json_object_new_object();
        put(who, "identifier", identifier(SYS_ODS, a->attached_by_org));
        json_object_array_add(exts, ext(SD "Extension-eRS-AttachedByOrganisation-1", "valueReference", who));
        put(att, "extension", exts);
        put(att, "contentType", str(a->content_type));
        snprintf(buf, sizeof buf, "Binary/%s", a->binary_id);
        put(att, "url", str(buf));
        put(att, "size", json_object_new_int64((int64_t)a->declared_size));
        put(att, "title", str(a->title));
        put(att, "creation", str(a->creation));
        put(content, "attachment", att);
        if (a->content_dropped) {
                json_object_put(content);
                return d;
        }
        put(d, "content", arr1(content));
        return d;
}

static json_object *state_extension(const struct referral *r, int state)
{
        json_object *e = ext(SD "Extension-eRS-ReferralState-1", NULL, NULL);
        json_object *inner = json_object_new_array_ext(3);
        const struct code *reason = referral_reason(r, state);
        const char *comment = referral_comment(r, state);

        json_object_array_add(inner, ext("state", "valueCoding",
                                         coding(SYS_STATE, STATES[state].code, STATES[state].display)));
        if (reason)
                json_object_array_add(inner, ext("reason", "valueCoding", coding_of(reason, true)));
        if (comment)
                json_object_array_add(inner, ext("comments", "valueString",
                                                 json_object_new_string_len(comment, (int)referral_comment_len(comment))));
        put(e, "extension", inner);
        return e;
}

static json_object *padding_text(size_t n)
{
        static const char words[] = "Synthetic padding for benchmarks; not clinical text. ";
        char *s = malloc(n + 1);
        if (!s)
                return NULL;
        for (size_t i = 0; i < n; i++)
                s[i] = words[i % (sizeof words - 1)];
        s[n] = '\0';
        json_object *o = json_object_new_string_len(s, (int)n);
        free(s);
        return o;
}

char *render_referral(const struct mock *m, const struct referral_view *v, size_t *ret_len)
{
        const struct referral *r = v->r;
        bool booked = referral_booked(r, v->state);
        json_object *o = json_object_new_object();
        json_object *exts = json_object_new_array_ext(8);
        json_object *contained = json_object_new_array_ext(3 + (int)v->n_att);
        json_object *support = json_object_new_array_ext(1 + (int)v->n_att);
        char buf[GIVEN_ID_MAX + 32];

        put(o, "resourceType", str("ReferralRequest"));
        put(o, "id", str(r->ubrn));
        snprintf(buf, sizeof buf, "%lld", (long long)v->version);
        put(o, "meta", meta(SD "eRS-ReferralRequest-1", buf));

        if (booked) {
                json_object_array_add(exts, ext(SD "Extension-eRS-Appointment-1", "valueReference",
                                                reference("#appointment")));
                snprintf(buf, sizeof buf, "Appointment/%llu",
                         500000ULL + strtoull(r->ubrn, NULL, 10) % 500000ULL);
                json_object_array_add(exts, ext(SD "Extension-eRS-Appointment-Reference-1", "valueReference",
                                                reference(buf)));
        }
        if (r->clinical_info_first_submitted[0])
                json_object_array_add(exts, ext(SD "Extension-eRS-ClinicalInfoFirstSubmitted-1", "valueDateTime",
                                                str(r->clinical_info_first_submitted)));
        if (r->pathway_start[0])
                json_object_array_add(exts, ext(SD "Extension-eRS-eReferralPathwayStart-1",
                                                r->pathway_instant ? "valueInstant" : "valueDateTime",
                                                str(r->pathway_start)));
        json_object_array_add(exts, ext(SD "Extension-eRS-ReferralPriority-1", "valueCodeableConcept",
                                        codeable(coding_of(r->priority, true))));
        if (!r->bare)
                json_object_array_add(exts, ext(SD "Extension-eRS-ReferralShortlist-1", "valueReference",
                                                reference("#shortlist")));
        if (r->commissioning_org[0])
                json_object_array_add(exts, ext(SD "Extension-eRS-Commissioning-Rule-Org-1", "valueIdentifier",
                                                identifier(SYS_ODS, r->commissioning_org)));
        json_object_array_add(exts, state_extension(r, v->state));
        put(o, "extension", exts);

        if (!r->bare) {
                json_object_array_add(contained, search_criteria(r));
                json_object_array_add(contained, shortlist(m, r));
        }
        if (booked)
                json_object_array_add(contained, appointment(m, v));
        for (size_t k = 0; k < v->n_att; k++) {
                const struct attachment *a = &m->attachments[v->att[k]];
                json_object_array_add(contained, document_reference(a, v->availability[k]));
                snprintf(buf, sizeof buf, "#DocumentReference-%s", attachment_id(a));
                json_object_array_add(support, reference(buf));
        }
        if (r->related != SIZE_MAX) {
                snprintf(buf, sizeof buf, "ReferralRequest/%s", m->referrals[r->related].ubrn);
                json_object_array_add(support, reference(buf));
        }
        for (size_t k = 0; k < referral_related_more(m, r); k++) {
                snprintf(buf, sizeof buf, "ReferralRequest/%s", m->referrals[3 + k].ubrn);
                json_object_array_add(support, reference(buf));
        }
        if (json_object_array_length(contained))
                put(o, "contained", contained);
        else
                json_object_put(contained);

        put(o, "status", str(STATES[v->state].status));
        json_object *spec = json_object_new_object();
        put(spec, "coding", arr1(coding_of(r->specialty, true)));
        put(o, "specialty", spec);
        json_object *subject = json_object_new_object();
        put(subject, "identifier", identifier(SYS_NHS_NUMBER, r->nhs_number));
        put(o, "subject", subject);
        if (json_object_array_length(support))
                put(o, "supportingInfo", support);
        else
                json_object_put(support);
        put(o, "intent", str("plan"));
        put(o, "identifier", arr1(identifier(SYS_REQUEST_ID, r->request_id)));
        if (m->opt.padding)
                put(o, "description", padding_text(m->opt.padding));
        return json_text(o, ret_len);
}

/* ---- worklist (A008) --------------------------------------------------------- */

static json_object *worklist_patient(const struct referral *r)
{
        json_object *p = json_object_new_object();
        char buf[32];

        snprintf(buf, sizeof buf, "Patient-%s", r->nhs_number);
        put(p, "id", str(buf));
        put(p, "meta", meta(SD "eRS-Patient-1", NULL));
        put(p, "resourceType", str("Patient"));
        put(p, "identifier", arr1(identifier(SYS_NHS_NUMBER, r->nhs_number)));
        return p;
}

/* The request context statuses and the clinical information statuses e-RS names. */
static const struct code CONTEXT_STATUS[] = {
        { CS "eRS-RequestContextStatus-1", "NEVER_REVIEWED", "Never Reviewed" },
        { CS "eRS-RequestContextStatus-1", "LETTER_CHANGED", "Letter Changed" },
        { CS "eRS-RequestContextStatus-1", "PRIORITY_CHANGED", "Priority Changed" },
        { CS "eRS-RequestContextStatus-1", "PRIORITY_AND_LETTER_CHANGED", "Priority And Letter Changed" },
};
static const struct code INFORMATION_STATUS[] = {
        { CS "eRS-ClinicalInformationStatus-1", "PRESENT", NULL },
        { CS "eRS-ClinicalInformationStatus-1", "NOT_APPLICABLE", NULL },
        { CS "eRS-ClinicalInformationStatus-1", "NOT_DUE", NULL },
        { CS "eRS-ClinicalInformationStatus-1", "OVERDUE", NULL },
};

/* A worklist entry's working state in e-RS, from the referral's index alone,
 * so every poll lists the same (README.md, "The data"). */
struct entry_state {
        bool printed;                      /* clinicalInfoPrinted (both worklists) */
        const struct code *context;        /* requestContextStatus (REFERRALS_FOR_REVIEW) */
        char received[32];                 /* ubrnReceived (APPOINTMENT_SLOT_ISSUES) */
        char contact[16];                  /* patientContactExpected; "" when absent */
        char last[32];                     /* lastContact; "" when absent */
        const struct code *information;    /* clinicalInformationStatus; NULL when absent */
};

static struct entry_state entry_state_of(size_t i)
{
        struct entry_state s = {
                .printed = i % 3 == 1,
                .context = &CONTEXT_STATUS[i % 4],
                .information = i % 7 == 6 ? NULL : &INFORMATION_STATUS[i % 4],
        };

        snprintf(s.received, sizeof s.received, "2029-12-%02zuT09:%02zu:00.000Z", 1 + i % 28, i % 60);
        if (i % 5 != 4)
                snprintf(s.contact, sizeof s.contact, "2030-01-%02zu", 1 + i % 28);
        if (i % 2 == 0)
                snprintf(s.last, sizeof s.last, "2030-01-%02zuT10:30:00Z", 1 + i % 28);
        return s;
}

static json_object *worklist_entry(const struct mock *m, const struct worklist_item *it, bool slot_issues)
{
        const struct entry_state st = entry_state_of(it->referral);
        const struct referral *r = &m->referrals[it->referral];
        json_object *item_ext = json_object_new_array_ext(12);
        json_object *e = json_object_new_object();
        json_object *w;
        char buf[160];

        json_object_array_add(item_ext, ext("priority", "valueCodeableConcept",
                                            codeable(coding_of(r->priority, false))));
        json_object_array_add(item_ext, ext("specialty", "valueCodeableConcept",
                                            codeable(coding_of(r->specialty, false))));
        snprintf(buf, sizeof buf, "#Patient-%s", r->nhs_number);
        json_object_array_add(item_ext, ext("patient", "valueReference", reference(buf)));
        if (r->pathway_start[0])
                json_object_array_add(item_ext, ext("eReferralPathwayStart", "valueDateTime", str(r->pathway_start)));
        json_object_array_add(item_ext, ext("clinicalInfoPrinted", "valueBoolean", json_object_new_boolean(st.printed)));
        if (slot_issues) {
                const struct code *reason = referral_reason(r, it->state);
                json_object_array_add(item_ext, ext("ubrnReceived", "valueDateTime", str(st.received)));
                if (st.contact[0])
                        json_object_array_add(item_ext, ext("patientContactExpected", "valueDate", str(st.contact)));
                if (st.information)
                        json_object_array_add(item_ext, ext("clinicalInformationStatus", "valueCodeableConcept",
                                                            codeable(coding_of(st.information, false))));
                if (reason)
                        json_object_array_add(item_ext, ext("reason", "valueCodeableConcept",
                                                            codeable(coding_of(reason, false))));
                if (st.last[0])
                        json_object_array_add(item_ext, ext("lastContact", "valueDateTime", str(st.last)));
        } else {
                json_object_array_add(item_ext, ext("requestContextStatus", "valueCodeableConcept",
                                                    codeable(coding_of(st.context, true))));
                if (r->clinical_info_first_submitted[0])
                        json_object_array_add(item_ext, ext("clinicalInfoFirstSubmitted", "valueDateTime",
                                                            str(r->clinical_info_first_submitted)));
                if (referral_booked(r, it->state))
                        json_object_array_add(item_ext, ext("appointmentStart", "valueDateTime",
                                                            str(r->appointment_start)));
                json_object_array_add(item_ext, ext("referralType", "valueCodeableConcept",
                                                    codeable(coding_of(r->referral_type, false))));
        }
        json_object_array_add(item_ext, ext("service", "valueReference", service_actor(&m->services[r->service])));
        json_object_array_add(item_ext, ext("referralRequestVersion", "valueInteger",
                                            it->entry_fault == ENTRY_BAD_VERSION ? str("seven")
                                                                                 : json_object_new_int64(it->version)));
        w = json_object_new_object();
        put(w, "extension", item_ext);
        put(w, "url", str(slot_issues ? SD "Extension-eRS-AppointmentSlotIssues-WorkListItem-1"
                                      : SD "Extension-eRS-ReferralsforReview-WorkListItem-1"));
        put(e, "extension", arr1(w));
        snprintf(buf, sizeof buf, "ReferralRequest/%.*s", it->entry_fault == ENTRY_BAD_REFERENCE ? 11 : 12, r->ubrn);
        put(e, "item", reference(buf));
        return e;
}

enum gen_phase { GEN_HEAD, GEN_PATIENTS, GEN_BETWEEN, GEN_ENTRIES, GEN_PAD_OPEN, GEN_PAD, GEN_TAIL, GEN_DONE };

struct worklist_gen {
        const struct mock *m;
        struct worklist_item *items;
        size_t n;
        bool slot_issues;
        uint64_t pad_left;
        enum gen_phase phase;
        size_t next;      /* next item of the current phase */
        struct buf chunk; /* generated, not yet handed out */
        size_t chunk_pos;
};

struct worklist_gen *worklist_gen_new(const struct mock *m, struct worklist_item *items, size_t n,
                                      bool slot_issues, uint64_t pad_bytes)
{
        struct worklist_gen *g = calloc(1, sizeof *g);

        if (!g) {
                free(items);
                return NULL;
        }
        g->m = m;
        g->items = items;
        g->n = n;
        g->slot_issues = slot_issues;
        g->pad_left = pad_bytes;
        return g;
}

void worklist_gen_free(struct worklist_gen *g)
{
        if (!g)
                return;
        free(g->items);
        free(g->chunk.p);
        free(g);
}

static void append_json(struct buf *b, json_object *o)
{
        size_t len = 0;
        const char *s = json_object_to_json_string_length(o, TO_STRING_FLAGS, &len);
        if (s)
                buf_append(b, s, len);
        else
                b->oom = true;
        json_object_put(o);
}

/* Produces the next piece of the List into g->chunk (about 16 KiB at a time). */
static void gen_refill(struct worklist_gen *g)
{
        struct buf *b = &g->chunk;

        b->len = 0;
        g->chunk_pos = 0;
        while (b->len < 16384 && g->phase != GEN_DONE && !b->oom) {
                switch (g->phase) {
                case GEN_HEAD:
                        buf_printf(b, "{\"resourceType\":\"List\",\"meta\":{\"profile\":[\"%s\"]},"
                                      "\"status\":\"current\",\"mode\":\"snapshot\"",
                                   SD "eRS-FetchWorklist-List-1");
                        if (g->n) {
                                buf_printf(b, ",\"contained\":[");
                                g->phase = GEN_PATIENTS;
                        } else
                                g->phase = GEN_PAD_OPEN;
                        g->next = 0;
                        break;
                case GEN_PATIENTS:
                        if (g->next == g->n) {
                                g->phase = GEN_BETWEEN;
                                break;
                        }
                        if (g->next)
                                buf_append(b, ",", 1);
                        append_json(b, worklist_patient(&g->m->referrals[g->items[g->next].referral]));
                        g->next++;
                        break;
                case GEN_BETWEEN:
                        buf_printf(b, "],\"entry\":[");
                        g->phase = GEN_ENTRIES;
                        g->next = 0;
                        break;
                case GEN_ENTRIES:
                        if (g->next == g->n) {
                                buf_append(b, "]", 1);
                                g->phase = GEN_PAD_OPEN;
                                break;
                        }
                        if (g->next)
                                buf_append(b, ",", 1);
                        append_json(b, worklist_entry(g->m, &g->items[g->next], g->slot_issues));
                        g->next++;
                        break;
                case GEN_PAD_OPEN:
                        if (g->pad_left) {
                                buf_printf(b, ",\"note\":[{\"text\":\"");
                                g->phase = GEN_PAD;
                        } else
                                g->phase = GEN_TAIL;
                        break;
                case GEN_PAD: {
                        static const char words[] = "worklist padding ";
                        size_t n = g->pad_left < 16384 ? (size_t)g->pad_left : 16384;
                        for (size_t i = 0; i < n; i++)
                                buf_append(b, &words[i % (sizeof words - 1)], 1);
                        g->pad_left -= n;
                        if (!g->pad_left) {
                                buf_printf(b, "\"}]");
                                g->phase = GEN_TAIL;
                        }
                        break;
                }
                case GEN_TAIL:
                        buf_append(b, "}", 1);
                        g->phase = GEN_DONE;
                        break;
                case GEN_DONE:
                        break;
                }
        }
}

ssize_t worklist_gen_read(struct worklist_gen *g, char *out, size_t max)
{
        size_t done = 0;

        while (done < max) {
                if (g->chunk_pos == g->chunk.len) {
                        if (g->phase == GEN_DONE)
                                break;
                        gen_refill(g);
                        if (g->chunk.oom)
                                return -ENOMEM;
                        continue;
                }
                size_t n = g->chunk.len - g->chunk_pos;
                if (n > max - done)
                        n = max - done;
                memcpy(out + done, g->chunk.p + g->chunk_pos, n);
                g->chunk_pos += n;
                done += n;
        }
        return (ssize_t)done;
}

/* ---- the manifest ------------------------------------------------------------ */

static json_object *manifest_referral(struct mock *m, const struct referral *r, bool hashes)
{
        int state = state_after(r, r->bumps);
        json_object *o = json_object_new_object();
        json_object *atts = json_object_new_array_ext((int)referral_attachments(r));
        json_object *related = json_object_new_array();
        bool booked = referral_booked(r, state);
        const struct code *reason = referral_reason(r, state);
        const struct service *s = &m->services[r->service];
        char hex[65];

        put(o, "ubrn", str(r->ubrn));
        put(o, "version", json_object_new_int64(r->version));
        put(o, "worklisted", json_object_new_boolean(r->worklisted && !r->delisted && !r->gone));
        put(o, "gone", json_object_new_boolean(r->gone));
        put(o, "nhs_number", str(r->nhs_number));
        put(o, "nhs_number_valid", json_object_new_boolean(r->nhs_number_valid));
        put(o, "priority", str(r->priority->code));
        put(o, "state", str(STATES[state].code));
        put(o, "state_reason", reason ? str(reason->code) : NULL);
        const char *comment = referral_comment(r, state);
        put(o, "state_comment", comment ? json_object_new_string_len(comment, (int)referral_comment_len(comment)) : NULL);
        put(o, "specialty", str(r->specialty->code));
        put(o, "specialty_display", str(r->specialty->display));
        put(o, "service_id", str(s->id));
        put(o, "service_name", str(s->name));
        put(o, "referral_type", str(r->referral_type->code));
        put(o, "pathway_start", str_or_null(r->pathway_start));
        put(o, "clinical_info_first_submitted", str_or_null(r->clinical_info_first_submitted));
        put(o, "appointment_start", booked ? str(r->appointment_start) : NULL);
        put(o, "appointment_end", booked ? str(r->appointment_end) : NULL);
        put(o, "commissioning_org", str_or_null(r->commissioning_org));
        put(o, "request_id", str(r->request_id));
        put(o, "status", str(STATES[state].status));
        put(o, "intent", str("plan"));
        if (r->related != SIZE_MAX)
                json_object_array_add(related, str(m->referrals[r->related].ubrn));
        for (size_t k = 0; k < referral_related_more(m, r); k++)
                json_object_array_add(related, str(m->referrals[3 + k].ubrn));
        put(o, "related", related);

        for (size_t k = 0; k < referral_attachments(r); k++) {
                const struct attachment *a = &m->attachments[referral_attachment(r, k)];
                if (a->removed || a->content_dropped)
                        continue;
                json_object *j = json_object_new_object();
                put(j, "id", str(attachment_id(a)));
                put(j, "binary_id", str(a->binary_id));
                put(j, "title", str(a->title));
                put(j, "content_type", str(a->content_type));
                put(j, "declared_size", json_object_new_int64((int64_t)a->declared_size));
                put(j, "size", json_object_new_int64((int64_t)a->size));
                put(j, "availability", str(a->availability));
                put(j, "attached_by_user", str(a->attached_by_user));
                put(j, "attached_by_org", str(a->attached_by_org));
                put(j, "creation", str(a->creation));
                put(j, "doc_type", str(a->doc_type->code));
                if (hashes && a->sha_known) {
                        sha256_hex(a->sha256, hex);
                        put(j, "sha256", str(hex));
                } else
                        put(j, "sha256", NULL);
                json_object_array_add(atts, j);
        }
        put(o, "attachments", atts);

        size_t cri_len = 0;
        char *cri = cri_render(m, r, r->version, state, &cri_len);
        json_object *c = json_object_new_object();
        if (cri) {
                unsigned char sha[32];
                sha256_buf(cri, cri_len, sha);
                sha256_hex(sha, hex);
                put(c, "size", json_object_new_int64((int64_t)cri_len));
                put(c, "sha256", str(hex));
                free(cri);
        }
        put(o, "cri", c);

        /* the working state each worklist lists it with, by list type */
        const struct entry_state st = entry_state_of((size_t)(r - m->referrals));
        json_object *states = json_object_new_object(), *rfr = json_object_new_object();
        put(rfr, "clinical_info_printed", json_object_new_int(st.printed));
        put(rfr, "request_context_status", str(st.context->code));
        put(states, "REFERRALS_FOR_REVIEW", rfr);
        if (state == STATE_DEFERRED) {
                json_object *slots = json_object_new_object();
                put(slots, "clinical_info_printed", json_object_new_int(st.printed));
                put(slots, "ubrn_received", str(st.received));
                put(slots, "patient_contact_expected", str_or_null(st.contact));
                put(slots, "last_contact", str_or_null(st.last));
                put(slots, "clinical_information_status", st.information ? str(st.information->code) : NULL);
                put(states, "APPOINTMENT_SLOT_ISSUES", slots);
        }
        put(o, "entry_state", states);
        return o;
}

/* The manifest of every referral (or only `only_ubrn`).  With `hashes`, the
 * SHA-256 of every attachment not yet hashed is computed first (once). */
char *render_manifest(struct mock *m, const char *only_ubrn, bool hashes, size_t *ret_len)
{
        struct referral *only = NULL;

        if (only_ubrn && !(only = mock_find_referral(m, only_ubrn)))
                return NULL;
        if (hashes) {
                struct attachment **todo = calloc(m->n_attachments ? m->n_attachments : 1, sizeof *todo);
                size_t n = 0;
                if (!todo)
                        return NULL;
                pthread_mutex_lock(&m->lock);
                if (only) {
                        for (size_t k = 0; k < referral_attachments(only); k++) {
                                struct attachment *a = &m->attachments[referral_attachment(only, k)];
                                if (!a->sha_known)
                                        todo[n++] = a;
                        }
                } else {
                        for (size_t i = 0; i < m->n_attachments; i++)
                                if (!m->attachments[i].sha_known && m->attachments[i].referral != SIZE_MAX)
                                        todo[n++] = &m->attachments[i];
                }
                pthread_mutex_unlock(&m->lock);
                mock_hash_attachments(m, todo, n);
                free(todo);
        }

        json_object *o = json_object_new_object();
        json_object *services = json_object_new_array_ext((int)m->n_services);
        json_object *refs = json_object_new_array_ext(only ? 1 : (int)m->n_referrals);

        pthread_mutex_lock(&m->lock);
        put(o, "seed", json_object_new_int64((int64_t)m->opt.seed));
        put(o, "api_port", json_object_new_int((int)m->api_port));
        put(o, "store_port", json_object_new_int((int)m->store_port));
        pthread_mutex_unlock(&m->lock);
        for (size_t s = 0; s < m->n_services; s++) {
                json_object *j = json_object_new_object();
                put(j, "id", str(m->services[s].id));
                put(j, "name", str(m->services[s].name));
                json_object_array_add(services, j);
        }
        put(o, "services", services);
        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < m->n_referrals; i++)
                if (!only || only == &m->referrals[i])
                        json_object_array_add(refs, manifest_referral(m, &m->referrals[i], hashes));
        pthread_mutex_unlock(&m->lock);
        put(o, "referrals", refs);
        return json_text(o, ret_len);
}

/* ---- builders for world mode (world.c) ---------------------------------------- */

void fhir_put(json_object *o, const char *key, json_object *v)
{
        put(o, key, v);
}

json_object *fhir_arr1(json_object *v)
{
        return arr1(v);
}

json_object *fhir_ext(const char *url, const char *value_key, json_object *value)
{
        return ext(url, value_key, value);
}

json_object *fhir_meta(const char *profile, const char *version)
{
        return meta(profile, version);
}
