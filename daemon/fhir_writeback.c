/* SPDX-License-Identifier: MIT */
/*
 * Writing back to e-RS, the FHIR side (fhir_writeback.h): the A028 body and
 * its checks, the ReferralRequest that A028 and A013 answer, the Tasks A029
 * answers.
 *
 * Not here: the calls and what their outcomes mean (ers_writeback.c), the
 * parsers of what the sync reads (fhir.c, fhir_worklist.c).
 *
 * Error lines name the element, never the comment or any other text a person
 * wrote (UBRNs and versions are fine).
 */
#include "fhir_writeback.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "escape.h"
#include "fhir_json.h"

#define PROFILE_REVIEW_OUTCOME "https://fhir.nhs.uk/STU3/StructureDefinition/eRS-RecordReviewOutcome-Parameters-1"
#define SYSTEM_REVIEW_OUTCOME  "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReviewOutcome-1"
#define SYSTEM_PRIORITY        "https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1"
#define SYSTEM_ACTIONS         "https://fhir.nhs.uk/STU3/CodeSystem/eRS-AvailableActionsForUser-1"

static const char *const PRIORITIES[] = { "ROUTINE", "URGENT", "TWO_WEEK_WAIT" };

static const struct {
        const char *code;
        enum ers_action bit;
} ACTIONS[] = {
        { "RECORD_REVIEW_OUTCOME", ERS_ACTION_RECORD_REVIEW_OUTCOME },
        { "CREATE_APPOINTMENT", ERS_ACTION_CREATE_APPOINTMENT },
        { "CHANGE_SHORTLIST", ERS_ACTION_CHANGE_SHORTLIST },
        { "CHANGE_SHORTLIST_AND_SEND_FOR_TRIAGE", ERS_ACTION_CHANGE_SHORTLIST_AND_SEND_FOR_TRIAGE },
        { "CANCEL_REFERRAL", ERS_ACTION_CANCEL_REFERRAL },
        { "CANCEL_DIRECTLY_BOOKED_APPOINTMENT", ERS_ACTION_CANCEL_DIRECTLY_BOOKED_APPOINTMENT },
};

/* ---- the A028 body ------------------------------------------------------ */

int fhir_review_check(const char *outcome, const char *comment, const char *priority, struct errbuf *e) {
        size_t n;
        bool blank = true;

        if (!outcome || (strcmp(outcome, ERS_REVIEW_RETURN_TO_REFERRER) != 0 &&
                         strcmp(outcome, ERS_REVIEW_ACCEPT_BOOK_LATER) != 0))
                return err_set(e, -EINVAL, "review outcome must be %s or %s", ERS_REVIEW_RETURN_TO_REFERRER,
                               ERS_REVIEW_ACCEPT_BOOK_LATER);
        if (!comment)
                return err_set(e, -EINVAL, "the review comment is mandatory and there is none");
        n = strlen(comment);
        if (n > ERS_REVIEW_COMMENT_MAX)
                return err_set(e, -EINVAL, "the review comment is %zu bytes, over the %d bytes sent at most", n,
                               ERS_REVIEW_COMMENT_MAX);
        /* The one rule for text from outside (escape.h) finds what the comment may not hold: a
         * byte that is not UTF-8, and what a terminal acts on (C0 but tab and line ends, DEL, C1,
         * the bidirectional controls), which no reader of the referral should meet unseen. */
        for (size_t i = 0, len; i < n; i += len) {
                char shown[ESCAPE_CHAR_MAX];
                size_t shown_len;
                unsigned char c = (unsigned char) comment[i];

                len = escape_char(comment + i, n - i, ESCAPE_TEXT, shown, &shown_len);
                if (len == 1 && c >= 0x80)
                        return err_set(e, -EINVAL, "the review comment is not valid UTF-8 at byte %zu", i);
                if ((shown_len != len || memcmp(shown, comment + i, len) != 0) && c != '\t' && c != '\n' &&
                    c != '\r')
                        return err_set(e, -EINVAL, "the review comment holds a control character at byte %zu", i);
                if (c != ' ' && c != '\t' && c != '\n' && c != '\r')
                        blank = false;
        }
        if (blank)
                return err_set(e, -EINVAL, "the review comment is mandatory and is empty");
        if (!priority)
                return 0;
        if (strcmp(outcome, ERS_REVIEW_ACCEPT_BOOK_LATER) != 0)
                return err_set(e, -EINVAL, "a new priority goes only with %s (e-RS refuses it with %s)",
                               ERS_REVIEW_ACCEPT_BOOK_LATER, outcome);
        for (size_t i = 0; i < ELEMENTSOF(PRIORITIES); i++)
                if (strcmp(priority, PRIORITIES[i]) == 0)
                        return 0;
        return err_set(e, -EINVAL, "a new priority must be ROUTINE, URGENT or TWO_WEEK_WAIT");
}

/* s as a JSON string literal, quotes included (json-c escapes it).  Caller frees; NULL: no memory. */
static char *json_literal(const char *s) {
        json_object *o = json_object_new_string(s);
        const char *text = o ? json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                     JSON_C_TO_STRING_NOSLASHESCAPE)
                             : NULL;
        char *copy = text ? strdup(text) : NULL;

        json_object_put(o);
        return copy;
}

int fhir_review_request(const char *outcome, const char *comment, const char *priority, char **ret,
                        struct errbuf *e) {
        char *literal = NULL, *body = NULL, priority_param[192] = "";
        int r = fhir_review_check(outcome, comment, priority, e);

        if (r < 0)
                return r;
        /* The codes are checked constants; only the comment needs escaping. */
        if (priority)
                snprintf(priority_param, sizeof priority_param,
                         ",{\"name\":\"reviewPriority\",\"valueCoding\":{\"system\":\"%s\",\"code\":\"%s\"}}",
                         SYSTEM_PRIORITY, priority);
        literal = json_literal(comment);
        if (!literal || asprintf(&body,
                                 "{\"resourceType\":\"Parameters\",\"meta\":{\"profile\":[\"%s\"]},\"parameter\":["
                                 "{\"name\":\"reviewOutcome\",\"valueCoding\":{\"system\":\"%s\",\"code\":\"%s\"}},"
                                 "{\"name\":\"reviewComments\",\"valueString\":%s}%s]}",
                                 PROFILE_REVIEW_OUTCOME, SYSTEM_REVIEW_OUTCOME, outcome, literal,
                                 priority_param) < 0) {
                free(literal);
                return fhir_oom(e);
        }
        free(literal);
        *ret = body;
        return 0;
}

/* ---- the answers -------------------------------------------------------- */

int fhir_parse_written(json_object *root, const char *ubrn, int64_t *ret_version, struct errbuf *e) {
        const char *id;
        int64_t version;
        int r = fhir_check_resource_type(root, "ReferralRequest", e);

        if (r < 0)
                return r;
        id = fhir_str_at(root, "id");
        if (!id)
                return err_set(e, -EBADMSG, "the referral answered has no id");
        if (strcmp(id, ubrn) != 0)
                return err_set(e, -EBADMSG, "the referral answered is not UBRN %s", ubrn);
        if (fhir_parse_version(fhir_at(root, "meta.versionId"), &version) < 0)
                return err_set(e, -EBADMSG, "meta.versionId is not a non-negative integer");
        if (version < 0)
                return err_set(e, -EBADMSG, "the referral answered has no meta.versionId");
        *ret_version = version;
        return 0;
}

int fhir_parse_settling(json_object *root, const char *ubrn, int64_t *ret_version, char **ret_state,
                        struct errbuf *e) {
        json_object *state = fhir_find_ext(fhir_find_ext(root, "Extension-eRS-ReferralState-1"), "state");
        int r;

        *ret_state = NULL;
        r = fhir_parse_written(root, ubrn, ret_version, e);
        if (r < 0)
                return r;
        if (fhir_dup_or_null(fhir_str_at(state, "valueCoding.code"), ret_state) < 0)
                return fhir_oom(e);
        return 0;
}

/* The bit of an action code, 0 when it is not one known here. */
static unsigned action_bit(const char *code) {
        for (size_t i = 0; code && i < ELEMENTSOF(ACTIONS); i++)
                if (strcmp(code, ACTIONS[i].code) == 0)
                        return ACTIONS[i].bit;
        return 0;
}

/* A Task's actions of the system into *actions (known) and *unknown (not). */
static void task_actions(json_object *task, unsigned *actions, unsigned *unknown) {
        json_object *codings = fhir_at(task, "code.coding");

        for (size_t k = 0; k < fhir_array_len(codings); k++) {
                json_object *coding = fhir_array_get(codings, k);
                const char *system = fhir_str_at(coding, "system");
                unsigned bit;

                if (!system || strcmp(system, SYSTEM_ACTIONS) != 0)
                        continue;
                bit = action_bit(fhir_str_at(coding, "code"));
                if (bit)
                        *actions |= bit;
                else
                        (*unknown)++;
        }
}

int fhir_parse_actions(json_object *root, const char *ubrn, unsigned *ret_actions, unsigned *ret_unknown,
                       struct errbuf *e) {
        json_object *entries = fhir_member(root, "entry");
        unsigned actions = 0, unknown = 0;
        int r = fhir_check_resource_type(root, "Bundle", e);

        if (r < 0)
                return r;
        if (entries && !json_object_is_type(entries, json_type_array))
                return err_set(e, -EBADMSG, "entry is not an array");
        for (size_t i = 0; i < fhir_array_len(entries); i++) {
                json_object *task = fhir_member(fhir_array_get(entries, i), "resource");
                const char *status = fhir_str_at(task, "status"), *intent = fhir_str_at(task, "intent");
                char focus[UBRN_LEN + 1];

                r = fhir_check_resource_type(task, "Task", e);
                if (r < 0)
                        return err_prefix(e, r, "entry[%zu].resource", i);
                r = fhir_ref_ubrn(fhir_str_at(task, "focus.reference"), focus);
                if (r < 0)
                        return err_set(e, -EBADMSG, "entry[%zu]: focus.reference is not a ReferralRequest", i);
                if (strcmp(focus, ubrn) != 0)
                        return err_set(e, -EBADMSG, "entry[%zu]: a Task for another referral than UBRN %s", i, ubrn);
                if (!status || strcmp(status, "ready") != 0 || !intent || strcmp(intent, "proposal") != 0)
                        continue; /* not an action on offer now */
                task_actions(task, &actions, &unknown);
        }
        *ret_actions = actions;
        *ret_unknown = unknown;
        return 0;
}
