/* SPDX-License-Identifier: MIT */
/*
 * The FHIR parsers' shared reads (fhir_json.h: accessors of a json-c tree,
 * extensions, identifiers, references, versions, resourceType, the field
 * tables) and fhir_parse_text(): JSON text into a json-c tree, strictly.
 *
 * Not here: the parsers of a resource (fhir.c: A005, OperationOutcome, the
 * A008 request body; fhir_worklist.c: the streaming A008 worklist).
 *
 * Error lines name the element, never its value when the value could be
 * patient data (UBRNs and indexes are fine).
 */
#include "fhir_json.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fhir.h"
#include "server_text.h"
#include "util.h"

#define TYPE_ECHO_MAX 64 /* longest resourceType echoed in an error line */

/* ---- Validation ------------------------------------------------------- */

/* ---- Reading json-c trees --------------------------------------------- */

json_object *fhir_member(json_object *o, const char *key) {
        json_object *v = NULL;

        if (!json_object_is_type(o, json_type_object))
                return NULL;
        if (!json_object_object_get_ex(o, key, &v))
                return NULL;
        return v;
}

size_t fhir_array_len(json_object *a) {
        return json_object_is_type(a, json_type_array) ? json_object_array_length(a) : 0;
}

json_object *fhir_array_get(json_object *a, size_t i) {
        return i < fhir_array_len(a) ? json_object_array_get_idx(a, i) : NULL;
}

json_object *fhir_array_member(json_object *o, const char *key) {
        json_object *v = fhir_member(o, key);

        return json_object_is_type(v, json_type_array) ? v : NULL;
}

json_object *fhir_at(json_object *o, const char *path) {
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
                        o = fhir_array_get(o, i);
                } else
                        o = fhir_member(o, seg);
        }
        return o;
}

const char *fhir_str_at(json_object *o, const char *path) {
        json_object *v = fhir_at(o, path);
        const char *s;

        if (!json_object_is_type(v, json_type_string))
                return NULL;
        s = json_object_get_string(v);
        if (!s || strlen(s) != (size_t) json_object_get_string_len(v))
                return NULL;
        return s;
}

#define REPLACEMENT_CHARACTER "\xef\xbf\xbd" /* U+FFFD in UTF-8 */

int fhir_text_dup_at(json_object *o, const char *path, char **ret) {
        json_object *v = fhir_at(o, path);
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

int fhir_dup_or_null(const char *s, char **ret) {
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

bool fhir_ext_is(json_object *ext, const char *name) {
        return url_names(fhir_str_at(ext, "url"), name);
}

json_object *fhir_find_ext(json_object *o, const char *name) {
        json_object *exts = fhir_array_member(o, "extension");

        for (size_t i = 0; i < fhir_array_len(exts); i++) {
                json_object *x = fhir_array_get(exts, i);

                if (fhir_ext_is(x, name))
                        return x;
        }
        return NULL;
}

const char *fhir_identifier_value(json_object *ids, const char *system) {
        for (size_t i = 0; i < fhir_array_len(ids); i++) {
                json_object *id = fhir_array_get(ids, i);
                const char *s = fhir_str_at(id, "system");

                if (s && strcmp(s, system) == 0)
                        return fhir_str_at(id, "value");
        }
        return NULL;
}

json_object *fhir_contained_by_ref(json_object *o, const char *ref, const char *type) {
        json_object *contained = fhir_array_member(o, "contained");

        if (!ref || ref[0] != '#' || ref[1] == '\0')
                return NULL;
        for (size_t i = 0; i < fhir_array_len(contained); i++) {
                json_object *c = fhir_array_get(contained, i);
                const char *t = fhir_str_at(c, "resourceType"), *id = fhir_str_at(c, "id");

                if (t && id && strcmp(t, type) == 0 && strcmp(id, ref + 1) == 0)
                        return c;
        }
        return NULL;
}


int fhir_copy_fields(json_object *o, const struct fhir_field *fields, size_t n, void *out) {
        int nul_fields = 0;

        for (size_t i = 0; i < n; i++) {
                const struct fhir_field *f = &fields[i];
                char **field = (char **) ((char *) out + f->offset);
                json_object *from = f->ext ? fhir_find_ext(o, f->ext) : o;
                int r;

                if (*field)
                        continue;
                r = f->text ? fhir_text_dup_at(from, f->path, field)
                            : fhir_dup_or_null(fhir_str_at(from, f->path), field);
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

int fhir_parse_version(json_object *v, int64_t *ret) {
        int64_t n;

        if (!v) {
                *ret = -1;
                return 0;
        }
        if (json_object_is_type(v, json_type_int)) {
                n = json_object_get_int64(v);
                if (n < 0)
                        return -EBADMSG;
        } else if (parse_digits(fhir_str_at(v, ""), &n) < 0)
                return -EBADMSG;
        *ret = n;
        return 0;
}

int fhir_ref_ubrn(const char *ref, char ubrn[static UBRN_LEN + 1]) {
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

int fhir_resource_type_is(enum json_type doc, json_object *rt, const char *type, struct errbuf *e) {
        const char *article = strchr("AEIOU", type[0]) ? "an" : "a";
        const char *sent = fhir_str_at(rt, "");
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

int fhir_check_resource_type(json_object *root, const char *type, struct errbuf *e) {
        return fhir_resource_type_is(json_object_get_type(root), fhir_member(root, "resourceType"), type, e);
}

int fhir_oom(struct errbuf *e) {
        return err_set(e, -ENOMEM, "out of memory");
}

/* ---- JSON text -------------------------------------------------------- */

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
                return fhir_oom(e);
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
                if (!fhir_json_space(text[end])) {
                        json_object_put(root);
                        return err_set(e, -EBADMSG, "malformed JSON at byte %zu: %s", end,
                                       "unexpected data after the JSON value");
                }
        *ret = root;
        return 0;
}
