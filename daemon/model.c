/* SPDX-License-Identifier: MIT */
/*
 * The model's checks and destructors (model.h): no parsing, no json-c.
 */
#include "model.h"

#include <stdlib.h>
#include <string.h>

#define DIGITS "0123456789"
#define LETTERS "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"

bool all_digits(const char *s, size_t n) {
        return s && strspn(s, DIGITS) == n && s[n] == '\0';
}

bool ubrn_valid(const char *s) {
        return all_digits(s, UBRN_LEN);
}

bool service_id_valid(const char *s) {
        size_t n;

        if (!s || strspn(s, LETTERS DIGITS) == 0) /* empty, or a first character neither letter nor digit */
                return false;
        n = strspn(s, LETTERS DIGITS ".-");
        return n <= SERVICE_ID_MAX && s[n] == '\0';
}

bool nhs_number_valid(const char *s) {
        unsigned sum = 0, check;

        if (!all_digits(s, 10))
                return false;
        for (unsigned i = 0; i < 9; i++)
                sum += (unsigned) (s[i] - '0') * (10 - i);
        check = 11 - sum % 11;
        if (check == 11)
                check = 0;
        return check != 10 && check == (unsigned) (s[9] - '0');
}

enum availability availability_of(const char *code) {
        static const struct {
                const char *code;
                enum availability availability;
        } table[] = {
                { "AVAILABLE",         AVAILABILITY_AVAILABLE },
                { "PENDING",           AVAILABILITY_PENDING },
                { "THREATS_FOUND",     AVAILABILITY_NEVER },
                { "THREATS FOUND",     AVAILABILITY_NEVER }, /* as the guides' prose spells it */
                { "VALIDATION_FAILED", AVAILABILITY_NEVER },
        };

        for (size_t i = 0; code && i < sizeof table / sizeof table[0]; i++)
                if (strcmp(code, table[i].code) == 0)
                        return table[i].availability;
        return AVAILABILITY_UNKNOWN;
}

void worklist_entry_free(struct worklist_entry *we) {
        free(we->priority);
        free(we->specialty);
        free(we->service_id);
        free(we->service_name);
        free(we->referral_type);
        free(we->nhs_number);
        free(we->ubrn_received);
        free(we->patient_contact_expected);
        free(we->last_contact);
        free(we->clinical_information_status);
        free(we->request_context_status);
}

void worklist_free(struct worklist *w) {
        if (!w)
                return;
        for (size_t i = 0; i < w->n; i++)
                worklist_entry_free(&w->entries[i]);
        free(w->entries);
        free(w->skipped);
        *w = (struct worklist) { 0 };
}

static void attachment_free(struct attachment *a) {
        free(a->id);
        free(a->url);
        free(a->binary_id);
        free(a->title);
        free(a->content_type);
        free(a->creation);
        free(a->availability_code);
        free(a->attached_by_user);
        free(a->attached_by_org);
        free(a->doc_type);
        free(a->description);
        free(a->attached_on_behalf_of);
}

void referral_answer_free(struct referral_answer *a) {
        if (!a)
                return;
        free(a->bytes);
        *a = (struct referral_answer) { 0 };
}

unsigned attachment_occurrence(const struct referral *r, size_t i) {
        const char *id = i < r->n_attachments ? r->attachments[i].id : NULL;
        unsigned n = 0;

        for (size_t k = 0; id && k < i; k++)
                n += r->attachments[k].id && strcmp(r->attachments[k].id, id) == 0;
        return n;
}

void referral_free(struct referral *r) {
        if (!r)
                return;
        free(r->nhs_number);
        free(r->priority);
        free(r->state);
        free(r->state_reason);
        free(r->state_comment);
        free(r->specialty);
        free(r->specialty_display);
        free(r->service_id);
        free(r->service_name);
        free(r->pathway_start);
        free(r->clinical_info_first_submitted);
        free(r->appointment_start);
        free(r->appointment_end);
        free(r->commissioning_org);
        free(r->request_id);
        free(r->status);
        free(r->intent);
        char **walk[] = { &r->clinical_info_last_updated, &r->state_reason_system, &r->state_reason_display,
                          &r->appointment_reference, &r->appointment_status, &r->appointment_created,
                          &r->appointment_reason, &r->appointment_reason_system, &r->appointment_reason_display,
                          &r->appointment_comment, &r->appointment_slot, &r->appointment_clinician,
                          &r->clinic_type, &r->named_clinician, &r->advice_request };
        for (size_t i = 0; i < sizeof walk / sizeof walk[0]; i++)
                free(*walk[i]);
        for (size_t i = 0; i < r->n_requirements; i++) {
                free(r->requirements[i].code);
                free(r->requirements[i].display);
                free(r->requirements[i].system);
                free(r->requirements[i].comments);
        }
        free(r->requirements);
        referral_answer_free(&r->answer);
        for (size_t i = 0; i < r->n_attachments; i++)
                attachment_free(&r->attachments[i]);
        free(r->attachments);
        free(r->related);
        *r = (struct referral) { 0 };
}

void outcome_free(struct outcome *o) {
        if (!o)
                return;
        free(o->code);
        free(o->severity);
        free(o->diagnostics);
        *o = (struct outcome) { 0 };
}
