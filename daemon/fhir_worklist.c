/* SPDX-License-Identifier: MIT */
/*
 * The A008 worklist, parsed while it streams in (fhir.h: worklist_parser):
 * a small scanner cuts the List into pieces that json-c parses one at a
 * time, the entries read into worklist_entry, the contained Patients kept
 * until the entries' references are resolved at the end.
 *
 * Not here: the shared reads of a json-c tree (fhir_json.c), the A005
 * referral, OperationOutcome and the A008 request body (fhir.c).
 */
#include "fhir.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir_json.h"
#include "util.h"

/* The worklist item extension, matched by the last segment of its URL (fhir_find_ext()). */
#define EXT_WORKLIST_ITEM    "Extension-eRS-ReferralsforReview-WorkListItem-1"
#define EXT_SLOT_ISSUES_ITEM "Extension-eRS-AppointmentSlotIssues-WorkListItem-1"

#define SYSTEM_NHS_NUMBER "http://fhir.nhs.net/Id/nhs-number"

/* The worklist item extension's nested extensions (url "priority", …). */
static const struct fhir_field worklist_item_fields[] = {
        { "priority",     "valueCodeableConcept.coding.0.code", offsetof(struct worklist_entry, priority), false },
        { "specialty",    "valueCodeableConcept.coding.0.code", offsetof(struct worklist_entry, specialty), false },
        { "service",      "valueReference.identifier.value",    offsetof(struct worklist_entry, service_id), false },
        { "service",      "valueReference.display",             offsetof(struct worklist_entry, service_name), true },
        { "referralType", "valueCodeableConcept.coding.0.code", offsetof(struct worklist_entry, referral_type), false },
};

/*
 * The entry's working state in e-RS (model.h): the nested extensions whose
 * values are texts, kept as sent.  A date's value is the first string of its
 * value[x] alternatives; a code's, each coding's code.  Each element is 0..1
 * in the specification (a CodeableConcept of one coding); should e-RS repeat
 * one, every readable value is kept, in order, joined by one space.
 */
static const struct state_text {
        const char *name;     /* the nested extension's url */
        bool coded;           /* valueCodeableConcept.coding[].code; else a date or dateTime */
        size_t offset;        /* offsetof the `char *` in struct worklist_entry */
} state_texts[] = {
        { "ubrnReceived",              false, offsetof(struct worklist_entry, ubrn_received) },
        { "patientContactExpected",    false, offsetof(struct worklist_entry, patient_contact_expected) },
        { "lastContact",               false, offsetof(struct worklist_entry, last_contact) },
        { "clinicalInformationStatus", true,  offsetof(struct worklist_entry, clinical_information_status) },
        { "requestContextStatus",      true,  offsetof(struct worklist_entry, request_context_status) },
};

/* The value[x] a date of the working state may come as. */
static const char *const date_values[] = { "valueDateTime", "valueDate", "valueInstant" };

/* A text being joined: values with one space between (an empty value too). */
struct joined {
        char *p;       /* owned */
        size_t len, cap;
        size_t values; /* joined so far */
};

/* Appends value v (NULL: unreadable, nothing) to j.  0 or -ENOMEM.  The
 * values come from one entry of the answer, so its size cap bounds j. */
static int join_value(struct joined *j, const char *v) {
        size_t n = v ? strlen(v) : 0, need;

        if (!v)
                return 0;
        need = j->len + (j->values > 0) + n + 1;
        if (need > j->cap) {
                size_t cap = need < 32 ? 32 : 2 * need;
                char *p = realloc(j->p, cap);

                if (!p)
                        return -ENOMEM;
                j->p = p;
                j->cap = cap;
        }
        if (j->values++ > 0)
                j->p[j->len++] = ' ';
        memcpy(j->p + j->len, v, n + 1);
        j->len += n;
        return 0;
}

/* Every readable value of the nested extensions of `item` that `t` names. */
static int join_state_text(json_object *item, const struct state_text *t, char **ret) {
        json_object *exts = fhir_array_member(item, "extension");
        struct joined j = { 0 };
        int r = 0;

        for (size_t i = 0; r >= 0 && i < fhir_array_len(exts); i++) {
                json_object *x = fhir_array_get(exts, i), *codings;
                const char *v = NULL;

                if (!fhir_ext_is(x, t->name))
                        continue;
                if (t->coded) {
                        codings = fhir_array_member(fhir_member(x, "valueCodeableConcept"), "coding");
                        for (size_t k = 0; r >= 0 && k < fhir_array_len(codings); k++)
                                r = join_value(&j, fhir_str_at(fhir_array_get(codings, k), "code"));
                        continue;
                }
                for (size_t k = 0; !v && k < ELEMENTSOF(date_values); k++)
                        v = fhir_str_at(x, date_values[k]);
                r = join_value(&j, v);
        }
        if (r < 0) {
                free(j.p);
                return r;
        }
        *ret = j.p;
        return 0;
}

/* clinicalInfoPrinted: a boolean; said both ways, or never as a boolean, not known. */
static enum printed state_printed(json_object *item) {
        json_object *exts = fhir_array_member(item, "extension");
        bool yes = false, no = false;

        for (size_t i = 0; i < fhir_array_len(exts); i++) {
                json_object *x = fhir_array_get(exts, i), *v = fhir_member(x, "valueBoolean");

                if (!fhir_ext_is(x, "clinicalInfoPrinted") || !json_object_is_type(v, json_type_boolean))
                        continue;
                if (json_object_get_boolean(v))
                        yes = true;
                else
                        no = true;
        }
        return yes == no ? PRINTED_UNKNOWN : yes ? PRINTED_YES : PRINTED_NO;
}

/* Fills w's working state from its item extension.  0 or -ENOMEM (what was
 * taken stays in w, for worklist_entry_free()). */
static int working_state(json_object *item, struct worklist_entry *w) {
        for (size_t i = 0; i < ELEMENTSOF(state_texts); i++) {
                int r = join_state_text(item, &state_texts[i], (char **) ((char *) w + state_texts[i].offset));

                if (r < 0)
                        return r;
        }
        w->clinical_info_printed = state_printed(item);
        return 0;
}

/* *ret = a copy of a local reference "#{id}" (what a contained Patient can
 * answer), NULL for any other.  0 or -ENOMEM. */
static int local_ref_copy(const char *ref, char **ret) {
        return fhir_dup_or_null(ref && ref[0] == '#' ? ref : NULL, ret);
}

/* Parses one List.entry into w (zeroed by the caller; w->ubrn stays "" until
 * read); *ret_patient is a copy of its patient reference ("#Patient-…",
 * resolved at the end), or NULL.  0, -ENOMEM, or -EBADMSG with *ret_why (static
 * text) saying what is wrong with the entry. */
static int worklist_entry_parse(json_object *entry, struct worklist_entry *w, char **ret_patient,
                                const char **ret_why) {
        json_object *item;
        int r;

        w->version = -1;
        *ret_patient = NULL;
        *ret_why = NULL;
        if (!json_object_is_type(entry, json_type_object))
                *ret_why = "not an object";
        else if (fhir_ref_ubrn(fhir_str_at(entry, "item.reference"), w->ubrn) < 0)
                *ret_why = "item.reference is not " REFERRAL_REF_PREFIX "<12-digit UBRN>";
        if (*ret_why)
                return -EBADMSG;

        item = fhir_find_ext(entry, EXT_WORKLIST_ITEM);
        if (!item) /* an APPOINTMENT_SLOT_ISSUES worklist names its item extension differently */
                item = fhir_find_ext(entry, EXT_SLOT_ISSUES_ITEM);
        if (fhir_parse_version(fhir_at(fhir_find_ext(item, "referralRequestVersion"), "valueInteger"), &w->version) < 0) {
                *ret_why = "referralRequestVersion is not a non-negative integer";
                return -EBADMSG;
        }
        r = fhir_copy_fields(item, worklist_item_fields, ELEMENTSOF(worklist_item_fields), w);
        if (r >= 0)
                r = working_state(item, w);
        if (r >= 0)
                r = local_ref_copy(fhir_str_at(fhir_find_ext(item, "patient"), "valueReference.reference"), ret_patient);
        return r < 0 ? -ENOMEM : 0;
}

/*
 * The scanner.  The List is `{ "name": value, … }`; the scanner itself reads
 * only what lies between pieces (blanks, ':' and ',', the List's braces and
 * the brackets of a member whose value is an array) and hands every piece to
 * json-c: a member's name, a member's value that is not an array, one element
 * of a member's array.  Inside a piece it tracks just enough to see where the
 * piece ends: inside a string or not, after a backslash or not, the depth of
 * brackets, and for a number or literal the first byte that cannot belong to it.
 * A document that is not an object is read the same way (an array element by
 * element), to be refused at the end as not a List.
 */
enum scan_state {
        SCAN_DOCUMENT,       /* before the document's value */
        SCAN_NAME_OR_END,    /* after '{': a member's name or '}' */
        SCAN_NAME,           /* after ',' between members */
        SCAN_COLON,          /* after a member's name */
        SCAN_VALUE,          /* after ':' */
        SCAN_MEMBER_END,     /* after a member's value: ',' or '}' */
        SCAN_ELEMENT_OR_END, /* after '[': an element or ']' */
        SCAN_ELEMENT,        /* after ',' between elements */
        SCAN_ELEMENT_END,    /* after an element: ',' or ']' */
        SCAN_PIECE,          /* inside a piece: its bytes go to json-c */
        SCAN_AFTER,          /* after the document: blanks only */
};

enum piece_role { PIECE_DOCUMENT, PIECE_NAME, PIECE_VALUE, PIECE_ELEMENT };

/* The List's members the worklist needs; every other member is read and dropped. */
enum list_member { MEMBER_OTHER, MEMBER_RESOURCE_TYPE, MEMBER_ENTRY, MEMBER_CONTAINED };

/* A contained Patient: what an entry's "#{id}" reference resolves to. */
struct patient_ref {
        char *id;         /* owned */
        char *nhs_number; /* owned, PATIENT IDENTIFIER; NULL when it has none */
        size_t seq;       /* order in the List: the first of two with one id wins */
};

struct worklist_parser {
        enum scan_state state;
        enum scan_state after_piece;  /* the state once the current piece ends */
        enum piece_role role;
        size_t offset;                /* bytes read before the current feed's data */
        size_t total;                 /* bytes fed in all */
        struct utf8_hold held;        /* the start of a UTF-8 character cut by the end of a feed */
        enum json_type doc_type;      /* the document's type, once its first byte is read */
        bool doc_array;               /* the document itself is an array (elements dropped) */
        bool in_member_array;         /* the brackets being read are a member's value */
        enum list_member member;      /* the member being read */
        size_t index;                 /* the current element's index in its array */

        /* the piece being read */
        json_tokener *tok[3];         /* owned: for pieces at depth 0 (the document), 1, 2 */
        json_tokener *cur;            /* borrowed from tok[]: the current piece's */
        size_t depth;                 /* brackets open inside the piece */
        bool in_string, escaped, scalar;
        size_t piece_at;              /* the piece's first byte in the document */
        char *scalar_text;            /* owned: a number or literal piece, read whole at its end */
        size_t scalar_len, scalar_cap;
        json_object *value;           /* owned: the piece, once json-c completed it */
        bool complete;                /* json-c completed it (a literal may before the scanner) */

        /* what the List says, judged at the end */
        json_object *resource_type;   /* owned: the resourceType member's value, NULL when absent */
        bool entry_not_array;         /* entry is present and neither an array nor null */
        struct worklist w;            /* owned: the entries read so far, and those skipped */
        char **patient_of;            /* owned: w.entries[i]'s patient reference, or NULL */
        size_t cap;                   /* of w.entries and patient_of */
        size_t cap_skipped;           /* of w.skipped */
        struct patient_ref *patients; /* owned: the contained Patients */
        size_t n_patients, cap_patients;
};

static void parser_drop_entries(struct worklist_parser *p) {
        for (size_t i = 0; i < p->w.n; i++)
                free(p->patient_of[i]);
        worklist_free(&p->w);
        free(p->patient_of);
        p->patient_of = NULL;
        p->cap = p->cap_skipped = 0;
}

static void parser_drop_patients(struct worklist_parser *p) {
        for (size_t i = 0; i < p->n_patients; i++) {
                free(p->patients[i].id);
                if (p->patients[i].nhs_number) {
                        explicit_bzero(p->patients[i].nhs_number, strlen(p->patients[i].nhs_number));
                        free(p->patients[i].nhs_number);
                }
        }
        free(p->patients);
        p->patients = NULL;
        p->n_patients = p->cap_patients = 0;
}

void worklist_parser_free(struct worklist_parser *p) {
        if (!p)
                return;
        for (size_t i = 0; i < ELEMENTSOF(p->tok); i++)
                if (p->tok[i])
                        json_tokener_free(p->tok[i]);
        json_object_put(p->value);
        json_object_put(p->resource_type);
        free(p->scalar_text);
        parser_drop_entries(p);
        parser_drop_patients(p);
        free(p);
}

int worklist_parser_new(struct worklist_parser **ret, struct errbuf *e) {
        struct worklist_parser *p = calloc(1, sizeof *p);

        if (!p)
                return fhir_oom(e);
        /* A piece at depth d of the document may nest JSON_MAX_DEPTH - d deep,
         * so the document nests as deep as a whole-document parse allows. */
        for (size_t d = 0; d < ELEMENTSOF(p->tok); d++) {
                p->tok[d] = json_tokener_new_ex(JSON_MAX_DEPTH - (int) d);
                if (!p->tok[d]) {
                        worklist_parser_free(p);
                        return fhir_oom(e);
                }
                json_tokener_set_flags(p->tok[d], JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        }
        p->doc_type = json_type_null;
        *ret = p;
        return 0;
}

static int syntax_error(struct errbuf *e, size_t at, enum json_tokener_error why) {
        return err_set(e, -EBADMSG, "malformed JSON near byte %zu: %s", at, json_tokener_error_desc(why));
}

/* Keeps a contained resource when it is a Patient with an id. */
static int keep_patient(struct worklist_parser *p, json_object *c) {
        const char *t = fhir_str_at(c, "resourceType"), *id = fhir_str_at(c, "id");
        struct patient_ref *pr;

        if (!t || !id || strcmp(t, "Patient") != 0)
                return 0;
        if (p->n_patients == p->cap_patients) {
                size_t cap = p->cap_patients ? 2 * p->cap_patients : 64;
                struct patient_ref *n = realloc(p->patients, cap * sizeof *n);

                if (!n)
                        return -ENOMEM;
                p->patients = n;
                p->cap_patients = cap;
        }
        pr = &p->patients[p->n_patients];
        *pr = (struct patient_ref) { .seq = p->n_patients };
        if (fhir_dup_or_null(id, &pr->id) < 0 ||
            fhir_dup_or_null(fhir_identifier_value(fhir_array_member(c, "identifier"), SYSTEM_NHS_NUMBER),
                             &pr->nhs_number) < 0) {
                free(pr->id);
                return -ENOMEM;
        }
        p->n_patients++;
        return 0;
}

/* Records the element being read as skipped: why, and its UBRN when readable. */
static int skip_entry(struct worklist_parser *p, const char *ubrn, const char *why) {
        struct worklist_skip *sk;

        if (p->w.n_skipped == p->cap_skipped) {
                size_t cap = p->cap_skipped ? 2 * p->cap_skipped : 8;
                struct worklist_skip *n = realloc(p->w.skipped, cap * sizeof *n);

                if (!n)
                        return -ENOMEM;
                p->w.skipped = n;
                p->cap_skipped = cap;
        }
        sk = &p->w.skipped[p->w.n_skipped++];
        *sk = (struct worklist_skip) { .index = p->index, .why = why };
        memcpy(sk->ubrn, ubrn, sizeof sk->ubrn);
        return 0;
}

/* Reads one element of the List's entry array: a worklist entry, or one
 * skipped (see struct worklist_skip). */
static int keep_entry(struct worklist_parser *p, json_object *entry) {
        struct worklist_entry *we;
        const char *why;
        int r;

        if (p->w.n == p->cap) {
                size_t cap = p->cap ? 2 * p->cap : 64;
                struct worklist_entry *n = realloc(p->w.entries, cap * sizeof *n);
                char **np;

                if (!n)
                        return -ENOMEM;
                p->w.entries = n;
                np = realloc(p->patient_of, cap * sizeof *np);
                if (!np)
                        return -ENOMEM;
                p->patient_of = np;
                p->cap = cap;
        }
        we = &p->w.entries[p->w.n];
        *we = (struct worklist_entry) { 0 };
        p->patient_of[p->w.n] = NULL;
        p->w.n++; /* so that what this entry took is freed with the rest */
        r = worklist_entry_parse(entry, we, &p->patient_of[p->w.n - 1], &why);
        if (r != -EBADMSG)
                return r;
        r = skip_entry(p, we->ubrn, why);
        worklist_entry_free(we);
        free(p->patient_of[p->w.n - 1]);
        p->w.n--;
        return r;
}

/* A piece json-c completed: what it means.  `value` is NULL for JSON null. */
static int piece_done(struct worklist_parser *p, json_object *value, struct errbuf *e) {
        const char *name;

        switch (p->role) {
        case PIECE_DOCUMENT:
                p->doc_type = json_object_get_type(value);
                return 0;
        case PIECE_NAME:
                if (!json_object_is_type(value, json_type_string))
                        return syntax_error(e, p->offset, json_tokener_error_parse_object_key_name);
                /* as json-c reads a name: up to a NUL, if it holds one */
                name = json_object_get_string(value);
                p->member = strcmp(name, "resourceType") == 0 ? MEMBER_RESOURCE_TYPE
                          : strcmp(name, "entry") == 0        ? MEMBER_ENTRY
                          : strcmp(name, "contained") == 0    ? MEMBER_CONTAINED
                                                              : MEMBER_OTHER;
                /* a name given twice: the last value counts, as in a json-c object */
                if (p->member == MEMBER_ENTRY) {
                        parser_drop_entries(p);
                        p->entry_not_array = false;
                } else if (p->member == MEMBER_CONTAINED)
                        parser_drop_patients(p);
                else if (p->member == MEMBER_RESOURCE_TYPE) {
                        json_object_put(p->resource_type);
                        p->resource_type = NULL;
                }
                return 0;
        case PIECE_VALUE:
                if (p->member == MEMBER_RESOURCE_TYPE)
                        p->resource_type = json_object_get(value);
                else if (p->member == MEMBER_ENTRY)
                        p->entry_not_array = value != NULL; /* null reads as absent */
                return 0;
        case PIECE_ELEMENT:
                if (p->doc_array)
                        return 0;
                if (p->member == MEMBER_ENTRY)
                        return keep_entry(p, value) < 0 ? fhir_oom(e) : 0;
                if (p->member == MEMBER_CONTAINED)
                        return keep_patient(p, value) < 0 ? fhir_oom(e) : 0;
                return 0;
        }
        return 0;
}

/* Starts a piece whose first byte is c; the state after it is `next`. */
static void piece_start(struct worklist_parser *p, enum piece_role role, size_t depth, char c, size_t at,
                        enum scan_state next) {
        p->state = SCAN_PIECE;
        p->after_piece = next;
        p->role = role;
        p->cur = p->tok[depth];
        json_tokener_reset(p->cur);
        p->depth = 0;
        p->in_string = p->escaped = p->complete = false;
        p->scalar = c != '"' && c != '{' && c != '[';
        p->piece_at = at;
        p->scalar_len = 0;
}

/* How many of the n bytes at s belong to the current piece; *ret_end says
 * whether the piece ends there.  A number or literal ends before the first
 * byte that cannot be in one (that byte is not counted). */
static size_t piece_scan(struct worklist_parser *p, const char *s, size_t n, bool *ret_end) {
        *ret_end = false;
        for (size_t i = 0; i < n; i++) {
                char c = s[i];

                if (p->scalar) {
                        if (fhir_json_space(c) || c == ',' || c == ']' || c == '}') {
                                *ret_end = true;
                                return i;
                        }
                        continue;
                }
                if (p->in_string) {
                        if (p->escaped)
                                p->escaped = false;
                        else if (c == '\\')
                                p->escaped = true;
                        else if (c == '"') {
                                p->in_string = false;
                                if (p->depth == 0) {
                                        *ret_end = true;
                                        return i + 1;
                                }
                        }
                        continue;
                }
                if (c == '"')
                        p->in_string = true;
                else if (c == '{' || c == '[')
                        p->depth++;
                else if ((c == '}' || c == ']') && p->depth > 0 && --p->depth == 0) {
                        *ret_end = true;
                        return i + 1;
                }
        }
        return n;
}

/* Feeds n bytes of the current piece (at document offset `at`) to json-c.
 * -EBADMSG when json-c refuses them or completes the value before their end. */
static int piece_feed(struct worklist_parser *p, const char *s, size_t n, size_t at, struct errbuf *e) {
        if (p->scalar && p->scalar_len + n >= (1u << 30))
                return syntax_error(e, at, json_tokener_error_size);
        if (p->scalar) {
                /* json-c 0.16 reads a number cut between two calls otherwise than
                 * whole ("8" then "-" is 8, "8-" is refused): kept, read at its end */
                if (p->scalar_len + n + 1 > p->scalar_cap) {
                        size_t cap = p->scalar_len + n + 1 < 64 ? 64 : 2 * (p->scalar_len + n + 1);
                        char *t = realloc(p->scalar_text, cap);

                        if (!t)
                                return fhir_oom(e);
                        p->scalar_text = t;
                        p->scalar_cap = cap;
                }
                memcpy(p->scalar_text + p->scalar_len, s, n);
                p->scalar_len += n;
                return 0;
        }
        while (n > 0) {
                int len = n > (1u << 30) ? (1 << 30) : (int) n;
                json_object *v;
                enum json_tokener_error jerr;

                if (p->complete) /* json-c has the whole value: nothing may follow */
                        return syntax_error(e, at, json_tokener_error_parse_unexpected);
                v = json_tokener_parse_ex(p->cur, s, len);
                jerr = json_tokener_get_error(p->cur);
                if (jerr != json_tokener_success && jerr != json_tokener_continue)
                        return syntax_error(e, at + json_tokener_get_parse_end(p->cur), jerr);
                if (jerr == json_tokener_success) {
                        size_t used = json_tokener_get_parse_end(p->cur);

                        p->value = v;
                        p->complete = true;
                        if (used < (size_t) len)
                                return syntax_error(e, at + used, json_tokener_error_parse_unexpected);
                }
                s += len;
                n -= (size_t) len;
                at += (size_t) len;
        }
        return 0;
}

/* The scanner saw the piece end at document offset `at`: json-c must agree. */
static int piece_end(struct worklist_parser *p, size_t at, struct errbuf *e) {
        int r;

        if (p->scalar) {
                /* a number has no end of its own: a NUL tells json-c the input ends */
                json_object *v;
                enum json_tokener_error jerr;
                size_t used;

                p->scalar_text[p->scalar_len] = '\0';
                v = json_tokener_parse_ex(p->cur, p->scalar_text, (int) p->scalar_len + 1);
                jerr = json_tokener_get_error(p->cur);
                used = json_tokener_get_parse_end(p->cur);
                if (jerr != json_tokener_success)
                        return syntax_error(e, p->piece_at + used, jerr);
                p->value = v;
                p->complete = true;
                if (used < p->scalar_len) /* a literal json-c completed before the piece's end */
                        return syntax_error(e, p->piece_at + used, json_tokener_error_parse_unexpected);
        }
        if (!p->complete)
                return syntax_error(e, at, json_tokener_error_parse_unexpected);
        r = piece_done(p, p->value, e);
        json_object_put(p->value);
        p->value = NULL;
        p->state = p->after_piece;
        return r;
}

/* After the ']' of a member's array (then ',' or '}'), or of the document. */
static enum scan_state array_end(struct worklist_parser *p) {
        p->in_member_array = false;
        return p->doc_array ? SCAN_AFTER : SCAN_MEMBER_END;
}

/* One byte between pieces (not a blank) at document offset `at`. */
static int scan_structure(struct worklist_parser *p, char c, size_t at, struct errbuf *e) {
        switch (p->state) {
        case SCAN_DOCUMENT:
                if (c == '{') {
                        p->doc_type = json_type_object;
                        p->state = SCAN_NAME_OR_END;
                } else if (c == '[') {
                        p->doc_type = json_type_array;
                        p->doc_array = true;
                        p->index = 0;
                        p->state = SCAN_ELEMENT_OR_END;
                } else
                        piece_start(p, PIECE_DOCUMENT, 0, c, at, SCAN_AFTER);
                return 0;
        case SCAN_NAME_OR_END:
        case SCAN_NAME:
                if (c == '}' && p->state == SCAN_NAME_OR_END)
                        p->state = SCAN_AFTER;
                else if (c != '"') /* strict: no comma before the end either */
                        return syntax_error(e, at, json_tokener_error_parse_object_key_name);
                else
                        piece_start(p, PIECE_NAME, 1, c, at, SCAN_COLON);
                return 0;
        case SCAN_COLON:
                if (c != ':')
                        return syntax_error(e, at, json_tokener_error_parse_object_key_sep);
                p->state = SCAN_VALUE;
                return 0;
        case SCAN_VALUE:
                if (c == '[') {
                        p->in_member_array = true;
                        p->index = 0;
                        p->state = SCAN_ELEMENT_OR_END;
                } else
                        piece_start(p, PIECE_VALUE, 1, c, at, SCAN_MEMBER_END);
                return 0;
        case SCAN_MEMBER_END:
                if (c == ',')
                        p->state = SCAN_NAME;
                else if (c == '}')
                        p->state = SCAN_AFTER;
                else
                        return syntax_error(e, at, json_tokener_error_parse_object_value_sep);
                return 0;
        case SCAN_ELEMENT_OR_END:
        case SCAN_ELEMENT:
                if (c == ']' && p->state == SCAN_ELEMENT_OR_END)
                        p->state = array_end(p);
                else if (c == ']') /* strict: no comma before the end */
                        return syntax_error(e, at, json_tokener_error_parse_unexpected);
                else
                        piece_start(p, PIECE_ELEMENT, p->in_member_array ? 2 : 1, c, at, SCAN_ELEMENT_END);
                return 0;
        case SCAN_ELEMENT_END:
                if (c == ',') {
                        p->index++;
                        p->state = SCAN_ELEMENT;
                } else if (c == ']')
                        p->state = array_end(p);
                else
                        return syntax_error(e, at, json_tokener_error_parse_array);
                return 0;
        case SCAN_AFTER:
                return err_set(e, -EBADMSG, "malformed JSON: data after the end of the document");
        case SCAN_PIECE:
                break;
        }
        return syntax_error(e, at, json_tokener_error_parse_unexpected);
}

/* Reads bytes that are whole UTF-8 characters (see worklist_parser_feed()). */
static int feed_whole(struct worklist_parser *p, const char *data, size_t len, struct errbuf *e) {
        const char *nul = memchr(data, '\0', len);
        size_t i = 0;
        int r;

        /* json-c reads a NUL byte as the end of the input; JSON never holds one */
        if (nul)
                len = (size_t) (nul - data);
        while (i < len) {
                if (p->state == SCAN_PIECE) {
                        bool end;
                        size_t n = piece_scan(p, data + i, len - i, &end);

                        r = piece_feed(p, data + i, n, p->offset + i, e);
                        if (r < 0)
                                return r;
                        i += n;
                        if (end && (r = piece_end(p, p->offset + i, e)) < 0)
                                return r;
                        continue;
                }
                if (!fhir_json_space(data[i]) && (r = scan_structure(p, data[i], p->offset + i, e)) < 0)
                        return r;
                if (p->state != SCAN_PIECE) /* a piece's first byte is the piece's */
                        i++;
        }
        p->offset += len;
        if (nul)
                return err_set(e, -EBADMSG, "malformed JSON: NUL byte at byte %zu", p->offset);
        return 0;
}

/*
 * json-c 0.16 checks UTF-8 afresh on every call (JSON_TOKENER_VALIDATE_UTF8):
 * a character cut between two calls is refused as invalid.  The network cuts
 * where it likes, so a character cut at the end of `data` is held back (at
 * most 3 bytes) and read whole with the next bytes.
 */
int worklist_parser_feed(struct worklist_parser *p, const char *data, size_t len, struct errbuf *e) {
        size_t held;
        int r;

        p->total += len;
        held = utf8_hold_complete(&p->held, &data, &len);
        if (held > 0 && (r = feed_whole(p, p->held.bytes, held, e)) < 0)
                return r;
        utf8_hold_tail(&p->held, data, &len);
        return feed_whole(p, data, len, e);
}

static int compare_patient(const void *a, const void *b) {
        const struct patient_ref *x = a, *y = b;
        int c = strcmp(x->id, y->id);

        return c != 0 ? c : x->seq < y->seq ? -1 : x->seq > y->seq;
}

static int compare_patient_id(const void *key, const void *b) {
        return strcmp(key, ((const struct patient_ref *) b)->id);
}

/* The NHS number of the first contained Patient whose id a local reference
 * "#{id}" names, or NULL.  p->patients is sorted by id, then order. */
static const char *patient_nhs_number(const struct worklist_parser *p, const char *ref) {
        const struct patient_ref *pr;

        if (!ref || p->n_patients == 0)
                return NULL;
        pr = bsearch(ref + 1, p->patients, p->n_patients, sizeof *p->patients, compare_patient_id);
        while (pr && pr > p->patients && strcmp(pr[-1].id, pr->id) == 0)
                pr--;
        return pr ? pr->nhs_number : NULL;
}

int worklist_parser_finish(struct worklist_parser *p, struct worklist *ret, struct errbuf *e) {
        int r;

        if (p->held.len > 0) /* the answer ends inside a character */
                return p->state == SCAN_AFTER
                               ? err_set(e, -EBADMSG, "malformed JSON: data after the end of the document")
                               : err_set(e, -EBADMSG, "malformed JSON: the document ends before it is complete");

        if (p->state == SCAN_PIECE && p->scalar && p->role == PIECE_DOCUMENT) {
                r = piece_end(p, p->offset, e); /* a document that is a bare number */
                if (r < 0)
                        return r;
        }
        if (p->total == 0)
                return err_set(e, -EBADMSG, "empty answer, expected JSON");
        if (p->state != SCAN_AFTER)
                return err_set(e, -EBADMSG, "malformed JSON: the document ends before it is complete");
        r = fhir_resource_type_is(p->doc_type, p->resource_type, "List", e);
        if (r < 0)
                return r;
        if (p->entry_not_array)
                return err_set(e, -EBADMSG, "entry is not an array");

        if (p->n_patients > 1)
                qsort(p->patients, p->n_patients, sizeof *p->patients, compare_patient);
        for (size_t i = 0; i < p->w.n; i++)
                if (fhir_dup_or_null(patient_nhs_number(p, p->patient_of[i]), &p->w.entries[i].nhs_number) < 0)
                        return fhir_oom(e);
        for (size_t i = 0; i < p->w.n; i++) {
                free(p->patient_of[i]);
                p->patient_of[i] = NULL;
        }
        if (p->w.n == 0) { /* an empty worklist holds no array */
                free(p->w.entries);
                p->w.entries = NULL;
        }
        if (p->w.n_skipped == 0) {
                free(p->w.skipped);
                p->w.skipped = NULL;
        }
        *ret = p->w;
        p->w = (struct worklist) { 0 };
        parser_drop_entries(p);
        parser_drop_patients(p);
        return 0;
}

int fhir_parse_worklist(const char *text, size_t len, struct worklist *ret, struct errbuf *e) {
        struct worklist_parser *p = NULL;
        int r;

        r = worklist_parser_new(&p, e);
        if (r >= 0)
                r = worklist_parser_feed(p, text ? text : "", text ? len : 0, e);
        if (r >= 0)
                r = worklist_parser_finish(p, ret, e);
        worklist_parser_free(p);
        return r;
}
