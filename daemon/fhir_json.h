/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * What the FHIR parsers share (internal to fhir_json.c, fhir_worklist.c and
 * fhir.c; the rest of the daemon includes fhir.h): safe reads of a json-c
 * tree, the shapes every e-RS resource uses (extensions, identifiers, local
 * and ReferralRequest references, versions, resourceType), and a table-driven
 * copy of string fields into the structs of model.h.
 *
 * Not here: any parser of a whole resource (fhir.c, fhir_worklist.c), JSON
 * text read into a tree (fhir_parse_text(), fhir.h).
 *
 * The input is untrusted and fuzzed: no element is assumed to have the type
 * the API documents.  Every read answers NULL / 0 for a missing element and
 * for one of another type alike, so a mistyped optional element reads as
 * absent.  json-c asserts on the type in json_object_array_length() and
 * json_object_array_get_idx(): they are called only on checked arrays.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "err.h"
#include "model.h"

#define REFERRAL_REF_PREFIX "ReferralRequest/"
#define HISTORY_SUFFIX      "/_history/"

#define JSON_MAX_DEPTH 64 /* e-RS resources nest about 10 deep */

#define DIGITS "0123456789"

#define ELEMENTSOF(a) (sizeof(a) / sizeof((a)[0]))

/* JSON's four whitespace characters. */
static inline bool fhir_json_space(char c) {
        return c == ' ' || c == '\t' || c == '\n' || c == '\r';
}

/*
 * Where one string field of an output struct comes from: the string at `path`
 * below the element itself (ext NULL) or below its extension named `ext`.
 * Several rows may fill the same field (alternative value[x] types): the first
 * that finds a string wins.
 */
struct fhir_field {
        const char *ext;  /* extension name (see fhir_find_ext()), or NULL */
        const char *path; /* dotted path, see fhir_at() */
        size_t offset;    /* offsetof the `char *` field in the output struct */
        bool text;        /* free text: a NUL becomes U+FFFD (fhir_text_dup_at); else a NUL makes it unreadable */
};

/* The member `key` of o when o is an object; NULL otherwise (JSON null too). */
json_object *fhir_member(json_object *o, const char *key);

/* The number of elements of a, or 0 when a is not an array. */
size_t fhir_array_len(json_object *a);

/* Element i of a (NULL when a is not an array or too short). */
json_object *fhir_array_get(json_object *a, size_t i);

/* o[key] when it is an array; NULL otherwise (then fhir_array_len() says 0). */
json_object *fhir_array_member(json_object *o, const char *key);

/* The element at a dotted path below o, e.g. "content.0.attachment.url": a
 * segment of digits indexes an array, any other segment names an object
 * member.  NULL when any step is missing or of another type.  Paths are
 * constants of the parsers, so a segment over 63 bytes is a bug (NULL). */
json_object *fhir_at(json_object *o, const char *path);

/* The string at path below o.  NULL when absent, not a string, or holding a
 * NUL (\u0000), which a C string would silently cut short. */
const char *fhir_str_at(json_object *o, const char *path);

/*
 * Free text (a comment, a title, a display name) at path below o, copied into
 * *ret (NULL when absent or not a string).  The one rule for a NUL in text,
 * the same on every database (PostgreSQL text cannot hold one): each NUL is
 * replaced by U+FFFD, every other byte kept as sent; never cut short, never
 * dropped.  Returns how many NULs were replaced, or -ENOMEM.
 */
int fhir_text_dup_at(json_object *o, const char *path, char **ret);

/* *ret = a malloc'd copy of s, or NULL when s is NULL.  0 or -ENOMEM. */
int fhir_dup_or_null(const char *s, char **ret);

/* The first element of o.extension[] whose url names `name` (is `name`, as
 * nested extensions are, or ends in "/" name: the host and path are never
 * compared, so every environment's URLs match); NULL when there is none,
 * or when o (or its extension) is not what it should be. */
json_object *fhir_find_ext(json_object *o, const char *name);

/* Whether the extension ext's url names `name`, as fhir_find_ext() matches
 * it (false for anything that is not an extension with a string url). */
bool fhir_ext_is(json_object *ext, const char *name);

/* The elements of a ReferralRequest its element walk added (fhir_elements.c):
 * the additional requirements, the service search criteria's clinic type and
 * named clinician, the advice and guidance request it came from.  Fills those
 * fields of rf (zeroed by the caller).  Returns how many free-text fields held
 * a NUL (stored with U+FFFD), or -ENOMEM (what was taken stays in rf). */
int fhir_referral_elements(json_object *root, struct referral *rf);

/* The value of the first Identifier in ids (an array) whose system is
 * `system`; NULL when there is none. */
const char *fhir_identifier_value(json_object *ids, const char *system);

/* The resource of o.contained[] with this resourceType that a local reference
 * "#{id}" points at; NULL when ref is not local or nothing matches. */
json_object *fhir_contained_by_ref(json_object *o, const char *ref, const char *type);

/* Copies every field of the table from o into the struct at out.  Fields with
 * nothing to copy stay NULL.  Returns how many free-text fields held a NUL
 * (stored with U+FFFD), or -ENOMEM (what was copied stays in out, for its
 * *_free() to release). */
int fhir_copy_fields(json_object *o, const struct fhir_field *fields, size_t n, void *out);

/* Reads a version (meta.versionId, referralRequestVersion): a non-negative
 * integer, sent as a JSON integer or (as FHIR ids are) a string of digits.
 * Absent → -1.  -EBADMSG for anything else. */
int fhir_parse_version(json_object *v, int64_t *ret);

/* Reads the UBRN out of a reference "ReferralRequest/{ubrn}", which may be
 * versioned ("…/_history/{v}") or absolute ("https://…/ReferralRequest/…").
 * -ENOENT when ref is not a ReferralRequest reference at all, -EBADMSG when it
 * is but does not hold a 12-digit UBRN. */
int fhir_ref_ubrn(const char *ref, char ubrn[static UBRN_LEN + 1]);

/* 0 when a document of type `doc` whose resourceType member is `rt` (NULL
 * when absent or JSON null) is a `type`; else -EBADMSG with "expected a
 * <type>, got <what was sent>".  What was sent is server text, quoted by the
 * one rule (server_text()); only when it holds no digit and is short (a FHIR
 * type is a word), so the line can carry no patient identifier (an NHS
 * number, a date of birth). */
int fhir_resource_type_is(enum json_type doc, json_object *rt, const char *type, struct errbuf *e);

/* The same for a parsed resource. */
int fhir_check_resource_type(json_object *root, const char *type, struct errbuf *e);

/* Says "out of memory" and returns -ENOMEM. */
int fhir_oom(struct errbuf *e);
