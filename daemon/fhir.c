/* SPDX-License-Identifier: MIT */
/*
 * The FHIR parsers: e-RS answers read into the structs of model.h.
 *
 * The input is untrusted and will be fuzzed: no element is assumed to have the
 * type the API documents.  Every read goes through the small accessors below
 * (member, at, str_at, array_len, find_ext), which answer NULL / 0 for a
 * missing element and for one of another type alike, so a mistyped optional
 * element reads as absent.  Only what the daemon cannot do without is an error:
 * the resourceType, UBRNs, versions, the worklist's entry array, and the id of
 * each attachment (what identifies a document in the PAS and the spool).
 *
 * Every parser fills a local struct and hands it over whole at the end; on any
 * failure the local is freed with the matching *_free() and *ret is untouched.
 * Error lines name the element, never its value when the value could be
 * patient data (UBRNs and indexes are fine).
 *
 * json-c asserts on the type in json_object_array_length() and
 * json_object_array_get_idx(): they are called only on checked arrays.
 */
#include "fhir.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "server_text.h"
#include "util.h"

/* Extensions, matched by the last segment of their URL (see url_names()). */
#define EXT_WORKLIST_ITEM      "Extension-eRS-ReferralsforReview-WorkListItem-1"
#define EXT_SLOT_ISSUES_ITEM   "Extension-eRS-AppointmentSlotIssues-WorkListItem-1"
#define EXT_PRIORITY           "Extension-eRS-ReferralPriority-1"
#define EXT_STATE              "Extension-eRS-ReferralState-1"
#define EXT_PATHWAY_START      "Extension-eRS-eReferralPathwayStart-1"
#define EXT_CLINICAL_INFO      "Extension-eRS-ClinicalInfoFirstSubmitted-1"
#define EXT_APPOINTMENT        "Extension-eRS-Appointment-1"
#define EXT_COMMISSIONING_ORG  "Extension-eRS-Commissioning-Rule-Org-1"
#define EXT_SHORTLIST          "Extension-eRS-ReferralShortlist-1"
#define EXT_AVAILABILITY       "Extension-eRS-AvailabilityStatus-1"
#define EXT_ATTACHED_BY        "Extension-eRS-AttachedBy-1"
#define EXT_ATTACHED_BY_ORG    "Extension-eRS-AttachedByOrganisation-1"

/* Identifier and code systems, compared whole. */
#define SYSTEM_NHS_NUMBER      "http://fhir.nhs.net/Id/nhs-number"
#define SYSTEM_ERS_SERVICE     "http://fhir.nhs.net/Id/ers-service"
#define SYSTEM_REQUEST_ID      "https://fhir.nhs.uk/Id/ers-request-id"
#define SYSTEM_LIST_SELECTOR   "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralListSelector-1"
#define PROFILE_FETCH_WORKLIST "https://fhir.nhs.uk/STU3/StructureDefinition/eRS-FetchWorklist-Parameters-1"

#define REFERRAL_REF_PREFIX    "ReferralRequest/"
#define HISTORY_SUFFIX         "/_history/"
#define BINARY_REF_PREFIX      "Binary/"

#define JSON_MAX_DEPTH   64  /* e-RS resources nest about 10 deep */
#define DIAGNOSTICS_MAX  256 /* bytes kept of each OperationOutcome string */
#define FHIR_ID_MAX      64  /* FHIR id: [A-Za-z0-9.-]{1,64} */
#define TYPE_ECHO_MAX    64  /* longest resourceType echoed in an error line */

#define DIGITS "0123456789"

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* ---- Validation ------------------------------------------------------- */

/* True when s is exactly n ASCII digits. */
static bool all_digits(const char *s, size_t n) {
        return s && strspn(s, DIGITS) == n && s[n] == '\0';
}

/* ---- Reading json-c trees --------------------------------------------- */

/* The member `key` of o when o is an object; NULL otherwise (JSON null too). */
static json_object *member(json_object *o, const char *key) {
        json_object *v = NULL;

        if (!json_object_is_type(o, json_type_object))
                return NULL;
        if (!json_object_object_get_ex(o, key, &v))
                return NULL;
        return v;
}

/* The number of elements of a, or 0 when a is not an array. */
static size_t array_len(json_object *a) {
        return json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

/* Element i of a (NULL when a is not an array or too short). */
static json_object *array_get(json_object *a, size_t i) {
        return i < array_len(a) ? json_object_array_get_idx(a, i) : NULL;
}

/* o[key] when it is an array; NULL otherwise (then array_len() says 0). */
static json_object *array_member(json_object *o, const char *key) {
        json_object *v = member(o, key);

        return json_object_is_type(v, json_type_array) ? v : NULL;
}

/* The element at a dotted path below o, e.g. "content.0.attachment.url": a
 * segment of digits indexes an array, any other segment names an object
 * member.  NULL when any step is missing or of another type.  Paths are
 * constants of this file, so a segment over 63 bytes is a bug (NULL). */
static json_object *at(json_object *o, const char *path) {
        char seg[64];

        while (o && *path) {
                size_t n = strcspn(path, ".");

                if (n == 0 || n >= sizeof seg)
                        return NULL;
                memcpy(seg, path, n);
                seg[n] = '\0';
                path += n;
                if (*path == '.')
                        path++;

                if (json_object_is_type(o, json_type_array)) {
                        size_t i = 0;

                        if (n > 9 || !all_digits(seg, n))
                                return NULL;
                        for (size_t k = 0; k < n; k++)
                                i = i * 10 + (size_t) (seg[k] - '0');
                        o = array_get(o, i);
                } else
                        o = member(o, seg);
        }
        return o;
}

/* The string at path below o.  NULL when absent, not a string, or holding a
 * NUL (\u0000), which a C string would silently cut short. */
static const char *str_at(json_object *o, const char *path) {
        json_object *v = at(o, path);
        const char *s;

        if (!json_object_is_type(v, json_type_string))
                return NULL;
        s = json_object_get_string(v);
        if (!s || strlen(s) != (size_t) json_object_get_string_len(v))
                return NULL;
        return s;
}

#define REPLACEMENT_CHARACTER "\xef\xbf\xbd" /* U+FFFD in UTF-8 */

/*
 * Free text (a comment, a title, a display name) at path below o, copied into
 * *ret (NULL when absent or not a string).  The one rule for a NUL in text,
 * the same on every database (PostgreSQL text cannot hold one): each NUL is
 * replaced by U+FFFD, every other byte kept as sent; never cut short, never
 * dropped.  Returns how many NULs were replaced, or -ENOMEM.
 */
static int text_dup_at(json_object *o, const char *path, char **ret) {
        json_object *v = at(o, path);
        const char *s;
        size_t len, nuls = 0;
        char *copy, *w;

        *ret = NULL;
        if (!json_object_is_type(v, json_type_string))
                return 0;
        s = json_object_get_string(v);
        len = (size_t) json_object_get_string_len(v);
        if (!s)
                return 0;
        for (size_t i = 0; i < len; i++)
                nuls += s[i] == '\0';
        copy = malloc(len + nuls * (sizeof REPLACEMENT_CHARACTER - 2) + 1);
        if (!copy)
                return -ENOMEM;
        w = copy;
        for (size_t i = 0; i < len; i++) {
                if (s[i] == '\0') {
                        memcpy(w, REPLACEMENT_CHARACTER, sizeof REPLACEMENT_CHARACTER - 1);
                        w += sizeof REPLACEMENT_CHARACTER - 1;
                } else
                        *w++ = s[i];
        }
        *w = '\0';
        *ret = copy;
        return nuls > 0;
}

/* *ret = a malloc'd copy of s, or NULL when s is NULL.  0 or -ENOMEM. */
static int dup_or_null(const char *s, char **ret) {
        char *copy = NULL;

        if (s) {
                copy = strdup(s);
                if (!copy)
                        return -ENOMEM;
        }
        *ret = copy;
        return 0;
}

/* True when an extension URL names `name`: it is `name` (nested extensions:
 * "state", "priority") or ends in "/" name.  The host and path before the
 * last segment are never compared, so every environment's URLs match. */
static bool url_names(const char *url, const char *name) {
        size_t lu, ln;

        if (!url)
                return false;
        lu = strlen(url);
        ln = strlen(name);
        if (lu == ln)
                return strcmp(url, name) == 0;
        return lu > ln && url[lu - ln - 1] == '/' && strcmp(url + lu - ln, name) == 0;
}

/* The first element of o.extension[] whose url names `name`; NULL when there
 * is none, or when o (or its extension) is not what it should be. */
static json_object *find_ext(json_object *o, const char *name) {
        json_object *exts = array_member(o, "extension");

        for (size_t i = 0; i < array_len(exts); i++) {
                json_object *x = array_get(exts, i);

                if (url_names(str_at(x, "url"), name))
                        return x;
        }
        return NULL;
}

/* The value of the first Identifier in ids (an array) whose system is
 * `system`; NULL when there is none. */
static const char *identifier_value(json_object *ids, const char *system) {
        for (size_t i = 0; i < array_len(ids); i++) {
                json_object *id = array_get(ids, i);
                const char *s = str_at(id, "system");

                if (s && strcmp(s, system) == 0)
                        return str_at(id, "value");
        }
        return NULL;
}

/* The resource of o.contained[] with this resourceType that a local reference
 * "#{id}" points at; NULL when ref is not local or nothing matches. */
static json_object *contained_by_ref(json_object *o, const char *ref, const char *type) {
        json_object *contained = array_member(o, "contained");

        if (!ref || ref[0] != '#' || ref[1] == '\0')
                return NULL;
        for (size_t i = 0; i < array_len(contained); i++) {
                json_object *c = array_get(contained, i);
                const char *t = str_at(c, "resourceType"), *id = str_at(c, "id");

                if (t && id && strcmp(t, type) == 0 && strcmp(id, ref + 1) == 0)
                        return c;
        }
        return NULL;
}

/*
 * Where one string field of an output struct comes from: the string at `path`
 * below the element itself (ext NULL) or below its extension named `ext`.
 * Several rows may fill the same field (alternative value[x] types): the first
 * that finds a string wins.
 */
struct str_field {
        const char *ext;  /* extension name (see url_names()), or NULL */
        const char *path; /* dotted path, see at() */
        size_t offset;    /* offsetof the `char *` field in the output struct */
        bool text;        /* free text: a NUL becomes U+FFFD (text_dup_at); else a NUL makes it unreadable */
};

/* Copies every field of the table from o into the struct at out.  Fields with
 * nothing to copy stay NULL.  Returns how many free-text fields held a NUL
 * (stored with U+FFFD), or -ENOMEM (what was copied stays in out, for its
 * *_free() to release). */
static int copy_fields(json_object *o, const struct str_field *fields, size_t n, void *out) {
        int nul_fields = 0;

        for (size_t i = 0; i < n; i++) {
                const struct str_field *f = &fields[i];
                char **field = (char **) ((char *) out + f->offset);
                json_object *from = f->ext ? find_ext(o, f->ext) : o;
                int r;

                if (*field)
                        continue;
                r = f->text ? text_dup_at(from, f->path, field) : dup_or_null(str_at(from, f->path), field);
                if (r < 0)
                        return r;
                nul_fields += r;
        }
        return nul_fields;
}

/* Parses a string of decimal digits (no sign, no blanks) into *ret.
 * -EBADMSG when it is not one or does not fit. */
static int parse_digits(const char *s, int64_t *ret) {
        long long v;
        char *end;

        if (!s || s[0] < '0' || s[0] > '9')
                return -EBADMSG;
        errno = 0;
        v = strtoll(s, &end, 10);
        if (errno != 0 || *end != '\0')
                return -EBADMSG;
        *ret = v;
        return 0;
}

/* Reads a version (meta.versionId, referralRequestVersion): a non-negative
 * integer, sent as a JSON integer or (as FHIR ids are) a string of digits.
 * Absent → -1.  -EBADMSG for anything else. */
static int parse_version(json_object *v, int64_t *ret) {
        int64_t n;

        if (!v) {
                *ret = -1;
                return 0;
        }
        if (json_object_is_type(v, json_type_int)) {
                n = json_object_get_int64(v);
                if (n < 0)
                        return -EBADMSG;
        } else if (parse_digits(str_at(v, ""), &n) < 0)
                return -EBADMSG;
        *ret = n;
        return 0;
}

/* Reads the UBRN out of a reference "ReferralRequest/{ubrn}", which may be
 * versioned ("…/_history/{v}") or absolute ("https://…/ReferralRequest/…").
 * -ENOENT when ref is not a ReferralRequest reference at all, -EBADMSG when it
 * is but does not hold a 12-digit UBRN. */
static int ref_ubrn(const char *ref, char ubrn[static UBRN_LEN + 1]) {
        const size_t plen = strlen(REFERRAL_REF_PREFIX);
        const char *p, *tail;

        if (!ref)
                return -ENOENT;
        if (strncmp(ref, REFERRAL_REF_PREFIX, plen) == 0)
                p = ref + plen;
        else {
                p = strstr(ref, "/" REFERRAL_REF_PREFIX);
                if (!p)
                        return -ENOENT;
                p += 1 + plen;
        }
        if (strspn(p, DIGITS) != UBRN_LEN)
                return -EBADMSG;
        tail = p + UBRN_LEN;
        if (*tail != '\0' && strncmp(tail, HISTORY_SUFFIX, strlen(HISTORY_SUFFIX)) != 0)
                return -EBADMSG;
        memcpy(ubrn, p, UBRN_LEN);
        ubrn[UBRN_LEN] = '\0';
        return 0;
}

/* 0 when a document of type `doc` whose resourceType member is `rt` (NULL
 * when absent or JSON null) is a `type`; else -EBADMSG with "expected a
 * <type>, got <what was sent>".  What was sent is server text, quoted by the
 * one rule (server_text()); only when it holds no digit and is short (a FHIR
 * type is a word), so the line can carry no patient identifier (an NHS
 * number, a date of birth). */
static int resource_type_is(enum json_type doc, json_object *rt, const char *type, struct errbuf *e) {
        const char *article = strchr("AEIOU", type[0]) ? "an" : "a";
        const char *sent = str_at(rt, "");
        char said[SERVER_TEXT_MAX + 4] = "";
        size_t n;

        if (doc == json_type_object && sent && strcmp(sent, type) == 0)
                return 0;
        if (doc != json_type_object)
                return err_set(e, -EBADMSG, "expected %s %s, got a JSON %s", article, type, json_type_to_name(doc));
        if (!rt)
                return err_set(e, -EBADMSG, "expected %s %s, got no resourceType", article, type);
        n = sent ? strlen(sent) : 0;
        if (n > 0 && n <= TYPE_ECHO_MAX && !strpbrk(sent, DIGITS))
                server_text(sent, n, NULL, said, sizeof said);
        if (!said[0])
                return err_set(e, -EBADMSG, "expected %s %s, got an unrecognisable resourceType",
                               article, type);
        return err_set(e, -EBADMSG, "expected %s %s, got %s", article, type, said);
}

/* The same for a parsed resource. */
static int check_resource_type(json_object *root, const char *type, struct errbuf *e) {
        return resource_type_is(json_object_get_type(root), member(root, "resourceType"), type, e);
}

/* Says "out of memory" and returns -ENOMEM. */
static int oom(struct errbuf *e) {
        return err_set(e, -ENOMEM, "out of memory");
}

/* ---- JSON text -------------------------------------------------------- */

/* JSON's four whitespace characters. */
static bool json_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

int fhir_parse_text(const char *text, size_t len, json_object **ret, struct errbuf *e) {
        struct json_tokener *tok;
        enum json_tokener_error jerr;
        json_object *root;
        const char *nul;
        size_t end;

        if (!text) { /* as if empty: an error below */
                text = "";
                len = 0;
        }
        if (len >= INT_MAX)
                return err_set(e, -EBADMSG, "JSON text too large (%zu bytes)", len);
        /* json-c reads a NUL byte as the end of the input: refuse it here. */
        nul = memchr(text, '\0', len);
        if (nul)
                return err_set(e, -EBADMSG, "malformed JSON at byte %zu: NUL byte",
                               (size_t) (nul - text));

        tok = json_tokener_new_ex(JSON_MAX_DEPTH);
        if (!tok)
                return oom(e);
        /* STRICT: no trailing commas, no second value after the first;
         * VALIDATE_UTF8: every string may end up in a utf8mb4 PAS column. */
        json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
        root = json_tokener_parse_ex(tok, text, (int) len);
        jerr = json_tokener_get_error(tok);
        end = json_tokener_get_parse_end(tok);
        if (!root && jerr == json_tokener_continue) {
                /* All of the text was read without completing a value (or it
                 * is a bare number): a NUL tells json-c that the input ends. */
                root = json_tokener_parse_ex(tok, "", 1);
                jerr = json_tokener_get_error(tok);
                end = len;
        }
        json_tokener_free(tok);

        if (jerr != json_tokener_success) {
                json_object_put(root);
                return err_set(e, -EBADMSG, "malformed JSON at byte %zu: %s", end,
                               json_tokener_error_desc(jerr));
        }
        if (!root) /* the text was a bare `null`: no caller wants that */
                return err_set(e, -EBADMSG, "JSON text is null, not a resource");
        for (; end < len; end++)
                if (!json_space(text[end])) {
                        json_object_put(root);
                        return err_set(e, -EBADMSG, "malformed JSON at byte %zu: %s", end,
                                       "unexpected data after the JSON value");
                }
        *ret = root;
        return 0;
}

/* ---- A008 worklist ----------------------------------------------------- */

/* The worklist item extension's nested extensions (url "priority", …). */
static const struct str_field worklist_item_fields[] = {
        { "priority",     "valueCodeableConcept.coding.0.code", offsetof(struct worklist_entry, priority), false },
        { "specialty",    "valueCodeableConcept.coding.0.code", offsetof(struct worklist_entry, specialty), false },
        { "service",      "valueReference.identifier.value",    offsetof(struct worklist_entry, service_id), false },
        { "service",      "valueReference.display",             offsetof(struct worklist_entry, service_name), true },
        { "referralType", "valueCodeableConcept.coding.0.code", offsetof(struct worklist_entry, referral_type), false },
};

/* *ret = a copy of a local reference "#{id}" (what a contained Patient can
 * answer), NULL for any other.  0 or -ENOMEM. */
static int local_ref_copy(const char *ref, char **ret) {
        return dup_or_null(ref && ref[0] == '#' ? ref : NULL, ret);
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
        else if (ref_ubrn(str_at(entry, "item.reference"), w->ubrn) < 0)
                *ret_why = "item.reference is not " REFERRAL_REF_PREFIX "<12-digit UBRN>";
        if (*ret_why)
                return -EBADMSG;

        item = find_ext(entry, EXT_WORKLIST_ITEM);
        if (!item) /* an APPOINTMENT_SLOT_ISSUES worklist names its item extension differently */
                item = find_ext(entry, EXT_SLOT_ISSUES_ITEM);
        if (parse_version(at(find_ext(item, "referralRequestVersion"), "valueInteger"), &w->version) < 0) {
                *ret_why = "referralRequestVersion is not a non-negative integer";
                return -EBADMSG;
        }
        r = copy_fields(item, worklist_item_fields, ELEMENTSOF(worklist_item_fields), w);
        if (r >= 0)
                r = local_ref_copy(str_at(find_ext(item, "patient"), "valueReference.reference"), ret_patient);
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
                return oom(e);
        /* A piece at depth d of the document may nest JSON_MAX_DEPTH - d deep,
         * so the document nests as deep as a whole-document parse allows. */
        for (size_t d = 0; d < ELEMENTSOF(p->tok); d++) {
                p->tok[d] = json_tokener_new_ex(JSON_MAX_DEPTH - (int) d);
                if (!p->tok[d]) {
                        worklist_parser_free(p);
                        return oom(e);
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
        const char *t = str_at(c, "resourceType"), *id = str_at(c, "id");
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
        if (dup_or_null(id, &pr->id) < 0 ||
            dup_or_null(identifier_value(array_member(c, "identifier"), SYSTEM_NHS_NUMBER), &pr->nhs_number) < 0) {
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
                        return keep_entry(p, value) < 0 ? oom(e) : 0;
                if (p->member == MEMBER_CONTAINED)
                        return keep_patient(p, value) < 0 ? oom(e) : 0;
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
                        if (json_space(c) || c == ',' || c == ']' || c == '}') {
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
                                return oom(e);
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
                if (!json_space(data[i]) && (r = scan_structure(p, data[i], p->offset + i, e)) < 0)
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
        r = resource_type_is(p->doc_type, p->resource_type, "List", e);
        if (r < 0)
                return r;
        if (p->entry_not_array)
                return err_set(e, -EBADMSG, "entry is not an array");

        if (p->n_patients > 1)
                qsort(p->patients, p->n_patients, sizeof *p->patients, compare_patient);
        for (size_t i = 0; i < p->w.n; i++)
                if (dup_or_null(patient_nhs_number(p, p->patient_of[i]), &p->w.entries[i].nhs_number) < 0)
                        return oom(e);
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

/* ---- A005 referral ----------------------------------------------------- */

/* The ReferralRequest's own elements and single-valued extensions. */
static const struct str_field referral_fields[] = {
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
};

/* The ReferralState extension's nested extensions. */
static const struct str_field referral_state_fields[] = {
        { "state",   "valueCoding.code", offsetof(struct referral, state), false },
        { "reason",  "valueCoding.code", offsetof(struct referral, state_reason), false },
        { "comment", "valueString",      offsetof(struct referral, state_comment), true },
        { "comments", "valueString",     offsetof(struct referral, state_comment), true }, /* the spec's spelling */
};

/* A contained DocumentReference's own elements. */
static const struct str_field document_fields[] = {
        { NULL, "type.coding.0.code", offsetof(struct attachment, doc_type), false },
        { NULL, "description",        offsetof(struct attachment, description), true },
};

/* Its content[0].attachment's elements and extensions. */
static const struct str_field attachment_fields[] = {
        { NULL,                "id",                              offsetof(struct attachment, id), false },
        { NULL,                "url",                             offsetof(struct attachment, url), false },
        { NULL,                "title",                           offsetof(struct attachment, title), true },
        { NULL,                "contentType",                     offsetof(struct attachment, content_type), false },
        { NULL,                "creation",                        offsetof(struct attachment, creation), false },
        { EXT_AVAILABILITY,    "valueCoding.code",                offsetof(struct attachment, availability_code), false },
        { EXT_ATTACHED_BY,     "valueReference.identifier.value", offsetof(struct attachment, attached_by_user), false },
        { EXT_ATTACHED_BY_ORG, "valueReference.identifier.value", offsetof(struct attachment, attached_by_org), false },
};

/* How the daemon treats an availability code (NULL: absent). */
static enum availability availability_of(const char *code) {
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

        for (size_t i = 0; code && i < ELEMENTSOF(table); i++)
                if (strcmp(code, table[i].code) == 0)
                        return table[i].availability;
        return AVAILABILITY_UNKNOWN;
}

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
        json_object *size = member(att, "size");
        int r;

        a->declared_size = -1;
        if (json_object_is_type(size, json_type_int) && json_object_get_int64(size) >= 0)
                a->declared_size = json_object_get_int64(size);
        r = copy_fields(doc, document_fields, ELEMENTSOF(document_fields), a);
        if (r < 0)
                return r;
        *nul_fields += (unsigned) r;
        r = copy_fields(att, attachment_fields, ELEMENTSOF(attachment_fields), a);
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
        json_object *contained = array_member(root, "contained");
        size_t n = array_len(contained);

        for (size_t i = 0; i < n; i++) {
                json_object *c = array_get(contained, i);
                json_object *att = at(c, "content.0.attachment");
                const char *t = str_at(c, "resourceType");
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
                                return oom(e);
                }
                r = attachment_parse(c, att, &rf->attachments[rf->n_attachments++], &rf->text_nul_fields);
                if (r < 0)
                        return oom(e);
                if (!rf->attachments[rf->n_attachments - 1].id)
                        return err_set(e, -EBADMSG, "contained[%zu] (DocumentReference): content[0].attachment.id "
                                       "is missing or not a string", i);
        }
        return 0;
}

/* Fills rf->appointment_*, rf->service_* from the contained Appointment that
 * the Appointment extension points at, when the referral is booked.  The
 * service is the participant whose actor is an e-RS service.  0 or -ENOMEM. */
static int appointment_parse(json_object *root, struct referral *rf) {
        const char *ref = str_at(find_ext(root, EXT_APPOINTMENT), "valueReference.reference");
        json_object *appt = contained_by_ref(root, ref, "Appointment");
        json_object *participants = array_member(appt, "participant");
        int r;

        if (!appt)
                return 0;
        r = dup_or_null(str_at(appt, "start"), &rf->appointment_start);
        if (r < 0)
                return r;
        r = dup_or_null(str_at(appt, "end"), &rf->appointment_end);
        if (r < 0)
                return r;
        for (size_t i = 0; i < array_len(participants); i++) {
                json_object *actor = at(array_get(participants, i), "actor");
                const char *system = str_at(actor, "identifier.system");

                if (!system || strcmp(system, SYSTEM_ERS_SERVICE) != 0)
                        continue;
                r = dup_or_null(str_at(actor, "identifier.value"), &rf->service_id);
                if (r < 0)
                        return r;
                return dup_or_null(str_at(actor, "display"), &rf->service_name);
        }
        return 0;
}

/* A referral without an appointment (not booked, nor deferred to or sent for
 * triage at a service) names its service only in its shortlist: the contained
 * List the shortlist extension points at, one entry per service the patient
 * may be booked into.  When every entry with an e-RS service identifier names
 * the same service, that is the referral's (rf->service_*); several, or none,
 * name no single service and leave it NULL.  0 or -ENOMEM. */
static int shortlist_parse(json_object *root, struct referral *rf) {
        const char *ref = str_at(find_ext(root, EXT_SHORTLIST), "valueReference.reference");
        json_object *entries = array_member(contained_by_ref(root, ref, "List"), "entry");
        json_object *named = NULL;
        const char *id = NULL;
        int r;

        for (size_t i = 0; i < array_len(entries); i++) {
                json_object *item = at(array_get(entries, i), "item");
                const char *system = str_at(item, "identifier.system"), *value = str_at(item, "identifier.value");

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
        r = dup_or_null(id, &rf->service_id);
        if (r < 0)
                return r;
        r = text_dup_at(named, "display", &rf->service_name);
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
        json_object *infos = array_member(root, "supportingInfo");
        size_t n = array_len(infos), k = 0;

        for (size_t i = 0; i < n; i++) {
                char ubrn[UBRN_LEN + 1];
                int r = ref_ubrn(str_at(array_get(infos, i), "reference"), ubrn);

                if (r == -ENOENT || (r == 0 && strcmp(ubrn, rf->ubrn) == 0))
                        continue;
                if (r < 0)
                        return err_set(e, -EBADMSG, "supportingInfo[%zu]: reference is not "
                                       REFERRAL_REF_PREFIX "<12-digit UBRN>", i);
                if (!rf->related) {
                        rf->related = calloc(n, sizeof *rf->related);
                        if (!rf->related)
                                return oom(e);
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

        r = check_resource_type(root, "ReferralRequest", e);
        if (r < 0)
                return r;
        id = str_at(root, "id");
        if (!ubrn_valid(id))
                return err_set(e, -EBADMSG, "id is not a 12-digit UBRN");
        memcpy(rf.ubrn, id, sizeof rf.ubrn);
        if (parse_version(at(root, "meta.versionId"), &rf.version) < 0)
                return err_set(e, -EBADMSG, "meta.versionId is not a non-negative integer");

        r = copy_fields(root, referral_fields, ELEMENTSOF(referral_fields), &rf);
        if (r >= 0) {
                rf.text_nul_fields += (unsigned) r;
                r = copy_fields(find_ext(root, EXT_STATE), referral_state_fields,
                                ELEMENTSOF(referral_state_fields), &rf);
        }
        if (r >= 0)
                rf.text_nul_fields += (unsigned) r;
        if (r >= 0)
                r = dup_or_null(identifier_value(array_member(root, "identifier"), SYSTEM_REQUEST_ID),
                                &rf.request_id);
        if (r >= 0)
                r = appointment_parse(root, &rf);
        if (r >= 0 && !rf.service_id && !rf.service_name)
                r = shortlist_parse(root, &rf);
        if (r < 0) {
                r = oom(e);
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
static const struct str_field outcome_fields[] = {
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

        r = check_resource_type(root, "OperationOutcome", e);
        if (r < 0)
                return r;
        issue = at(root, "issue.0");
        if (!json_object_is_type(issue, json_type_object))
                return err_set(e, -EBADMSG, "issue[0] is missing or not an object");
        r = copy_fields(issue, outcome_fields, ELEMENTSOF(outcome_fields), &o);
        if (r < 0) {
                outcome_free(&o);
                return oom(e);
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
                param = append(member(root, "parameter"), json_object_new_object());
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
