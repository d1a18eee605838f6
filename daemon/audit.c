/* SPDX-License-Identifier: MIT */
#include "audit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "../adapters/pas.h"
#include "../adapters/pas_audit.h"
#include "escape.h"

/* ---- text ------------------------------------------------------------------- */

__attribute__((format(printf, 3, 0))) static void text_vappend(struct audit_text *t, const char *sep,
                                                               const char *fmt, va_list ap) {
        va_list ap2;
        int n;

        if (t->oom)
                return;
        va_copy(ap2, ap);
        n = vsnprintf(NULL, 0, fmt, ap2);
        va_end(ap2);
        if (n < 0) {
                t->oom = true;
                return;
        }
        size_t sep_len = t->len ? strlen(sep) : 0;
        size_t need = t->len + sep_len + (size_t) n + 1;
        if (need > t->cap) {
                size_t cap = t->cap ? t->cap : 128;
                while (cap < need)
                        cap *= 2;
                char *p = realloc(t->p, cap);
                if (!p) {
                        t->oom = true;
                        return;
                }
                t->p = p;
                t->cap = cap;
        }
        memcpy(t->p + t->len, sep, sep_len);
        t->len += sep_len;
        vsnprintf(t->p + t->len, (size_t) n + 1, fmt, ap);
        t->len += (size_t) n;
}

void audit_clause(struct audit_text *t, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        text_vappend(t, "; ", fmt, ap);
        va_end(ap);
}

void audit_line(struct audit_text *t, const char *fmt, ...) {
        va_list ap;
        va_start(ap, fmt);
        text_vappend(t, "\n", fmt, ap);
        va_end(ap);
}

void audit_text_free(struct audit_text *t) {
        if (!t)
                return;
        free(t->p);
        for (size_t i = 0; i < t->n_values; i++)
                free(t->values[i]);
        free(t->values);
        *t = (struct audit_text){ .p = NULL };
}

/* ---- values from outside ----------------------------------------------------------- */

/* A value that needs no quotes: 1 or more of A-Z a-z 0-9 . _ : / + @ -, and not
 * "none" (what an absent value is shown as).  Nothing in it can end a clause
 * ("; "), a line, or a quoted value. */
static bool plain_token(const char *s) {
        static const char plain[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._:/+@-";

        return *s && strspn(s, plain) == strlen(s) && strcmp(s, "none") != 0;
}

/* s as a JSON string literal, escaped by escape.h (ESCAPE_JSON); NULL when out of memory. */
static char *json_literal(const char *s) {
        json_object *o = json_object_new_string(s);
        char *q = o ? escape_json_dup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                            JSON_C_TO_STRING_NOSLASHESCAPE))
                    : NULL;

        json_object_put(o);
        return q;
}

char *audit_quote(const char *s) {
        return plain_token(s) ? strdup(s) : json_literal(s);
}

const char *audit_q(struct audit_text *t, const char *s) {
        char *q, **values;

        if (t->oom)
                return "";
        q = audit_quote(s);
        values = q ? realloc(t->values, (t->n_values + 1) * sizeof *t->values) : NULL;
        if (!values) {
                free(q);
                t->oom = true;
                return "";
        }
        t->values = values;
        t->values[t->n_values++] = q;
        return q;
}

void audit_document(struct audit_text *t, const char *document_id, const char *sha256, enum document_kind kind,
                    const char *attachment_id, int64_t revision, unsigned occurrence, const char *source_ubrn) {
        json_object *o = json_object_new_object();
        char *line = NULL;

        if (o) {
                json_object_object_add(o, "document_id", json_object_new_string(document_id));
                json_object_object_add(o, "sha256", sha256 ? json_object_new_string(sha256) : NULL);
                json_object_object_add(o, "kind", json_object_new_string(kind == DOCUMENT_CRI ? "CRI" : "ATTACHMENT"));
                json_object_object_add(o, "attachment_id", json_object_new_string(attachment_id));
                json_object_object_add(o, "revision", json_object_new_int64(revision));
                if (occurrence > 0) /* a repeated id: which of them (its identity with kind and id) */
                        json_object_object_add(o, "occurrence", json_object_new_int64(occurrence));
                if (source_ubrn)
                        json_object_object_add(o, "source_ubrn", json_object_new_string(source_ubrn));
                line = escape_json_dup(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN |
                                                                             JSON_C_TO_STRING_NOSLASHESCAPE));
        }
        if (line)
                audit_line(t, "%s", line);
        else
                t->oom = true;
        free(line);
        json_object_put(o);
}

/* ---- what changed -------------------------------------------------------------- */

const char *audit_event(const struct referral_stored *before, int64_t version) {
        if (!before->found)
                return "NEW";
        return before->version != version ? "UPDATED" : "DOCUMENTS";
}

/* A code as stored ("" for NULL) against the new value (NULL for absent). */
static bool same_code(const char *stored, const char *now) {
        return strcmp(stored, now ? now : "") == 0;
}

/* A value as the trail shows it: "none" when absent, else audit_q(). */
static const char *shown(struct audit_text *t, const char *s) {
        return s && *s ? audit_q(t, s) : "none";
}

/* How many of the first n stored requirements are `code` (NULL: ""). */
static size_t code_count(const struct stored_requirement *q, size_t n, const char *code) {
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
                k += strcmp(q[i].code, code ? code : "") == 0;
        return k;
}

/* The same among the first n requirements of a referral. */
static size_t requirement_count(const struct requirement *q, size_t n, const char *code) {
        size_t k = 0;

        for (size_t i = 0; i < n; i++)
                k += strcmp(q[i].code ? q[i].code : "", code ? code : "") == 0;
        return k;
}

/* The index of the k-th (from 0) stored requirement with `code`; n when none. */
static size_t stored_nth(const struct stored_requirement *q, size_t n, const char *code, size_t k) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(q[i].code, code ? code : "") == 0 && k-- == 0)
                        return i;
        return n;
}

/* A requirement kept with its code whose other fields changed: "additional
 * requirement changed: CODE (display, comments)", the fields by name only
 * (display and comments are free text; the system is said with its values). */
static void requirement_fields_change(struct audit_text *t, const struct stored_requirement *was,
                                      const struct requirement *now) {
        bool display = !same_code(was->display, now->display), comments = !same_code(was->comments, now->comments);

        if (display || comments)
                audit_clause(t, "additional requirement changed: %s (%s%s%s)", shown(t, now->code),
                             display ? "display" : "", display && comments ? ", " : "", comments ? "comments" : "");
        if (!same_code(was->system, now->system))
                audit_clause(t, "additional requirement changed: %s (code_system %s -> %s)", shown(t, now->code),
                             shown(t, was->system), shown(t, now->system));
}

/* The additional requirements added and removed, by code, each as often as it
 * is added or removed (a requirement without a code is shown as "none"); and
 * those kept (the k-th with a code against the k-th stored with it) whose
 * display, code system or comments changed. */
static void requirements_change(struct audit_text *t, const struct referral_stored *before, const struct referral *now) {
        for (size_t i = 0; i < now->n_requirements; i++) {
                const char *code = now->requirements[i].code;
                size_t k = requirement_count(now->requirements, i, code); /* its place among those with its code */
                size_t had = code_count(before->requirements, before->n_requirements, code);
                size_t at = stored_nth(before->requirements, before->n_requirements, code, k);
                if (at < before->n_requirements)
                        requirement_fields_change(t, &before->requirements[at], &now->requirements[i]);
                /* said once per code, at its first place, as often as it is new */
                if (k > 0)
                        continue;
                size_t has = requirement_count(now->requirements, now->n_requirements, code);
                for (size_t n = had; n < has; n++)
                        audit_clause(t, "additional requirement added: %s", shown(t, code));
        }
        for (size_t i = 0; i < before->n_requirements; i++) {
                const char *code = before->requirements[i].code;
                if (code_count(before->requirements, i, code) > 0)
                        continue;
                size_t had = code_count(before->requirements, before->n_requirements, code);
                size_t has = requirement_count(now->requirements, now->n_requirements, code[0] ? code : NULL);
                for (size_t k = has; k < had; k++)
                        audit_clause(t, "additional requirement removed: %s", shown(t, code));
        }
}

/* The value the write puts in column c: from the referral, or as pas_write.c
 * derives it with the worklist entry. */
static const char *column_now(const struct referral_column *c, const struct referral *now,
                              const struct referral_values *v) {
        const char *base = c->source == FROM_VALUES ? (const char *) v : (const char *) now;
        return *(const char *const *) (const void *) (base + c->now);
}

static const char *column_stored(const struct referral_column *c, const struct referral_stored *before) {
        return *(const char *const *) (const void *) ((const char *) before + c->stored);
}

/* The appointment as one clause: booked, removed, or moved (start or end). */
static void appointment_change(struct audit_text *t, const struct referral_stored *before, const struct referral *now) {
        if (same_code(before->appointment_start, now->appointment_start) &&
            same_code(before->appointment_end, now->appointment_end))
                return;
        if (!before->appointment_start[0])
                audit_clause(t, "appointment booked: %s", shown(t, now->appointment_start));
        else if (!now->appointment_start)
                audit_clause(t, "appointment removed (was %s)", shown(t, before->appointment_start));
        else
                audit_clause(t, "appointment moved: %s -> %s", shown(t, before->appointment_start),
                             shown(t, now->appointment_start));
}

/* Each column of referral_columns[] the write changes, by its change name:
 * a code or time with its values, free text without (pas_audit.h). */
static void columns_change(struct audit_text *t, const struct referral_stored *before, const struct referral *now,
                           const struct worklist_entry *entry) {
        struct referral_values v = referral_values(now, entry);
        bool appointment_said = false;

        for (size_t i = 0; i < n_referral_columns; i++) {
                const struct referral_column *c = &referral_columns[i];
                const char *was = column_stored(c, before), *is = column_now(c, now, &v);
                if (c->kind == COLUMN_APPOINTMENT) {
                        if (!appointment_said)
                                appointment_change(t, before, now);
                        appointment_said = true;
                        continue;
                }
                if ((c->kept_when_absent && !is) || same_code(was, is))
                        continue;
                if (c->kind == COLUMN_TEXT)
                        audit_clause(t, "%s changed", c->change);
                else
                        audit_clause(t, "%s %s -> %s", c->change, shown(t, was), shown(t, is));
        }
}

static bool related_has(const char (*list)[UBRN_LEN + 1], size_t n, const char *ubrn) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(list[i], ubrn) == 0)
                        return true;
        return false;
}

void audit_describe(struct audit_text *t, const struct referral_stored *before, const struct referral *now,
                    const struct worklist_entry *entry) {
        const char *priority = now->priority ? now->priority : entry ? entry->priority : NULL;

        if (!before->found) {
                audit_clause(t, "new referral: state %s; priority %s; %zu attachment(s); %zu related referral(s)",
                             shown(t, now->state), shown(t, priority), now->n_attachments, now->n_related);
                if (now->appointment_start)
                        audit_clause(t, "appointment %s", shown(t, now->appointment_start));
                for (size_t i = 0; i < now->n_requirements; i++)
                        audit_clause(t, "additional requirement %s", shown(t, now->requirements[i].code));
                return;
        }
        if (before->version != now->version)
                audit_clause(t, "version %" PRId64 " -> %" PRId64, before->version, now->version);
        columns_change(t, before, now, entry);
        requirements_change(t, before, now);
        for (size_t i = 0; i < now->n_related; i++)
                if (!related_has((const char (*)[UBRN_LEN + 1]) before->related, before->n_related, now->related[i]) &&
                    !related_has((const char (*)[UBRN_LEN + 1]) now->related, i, now->related[i]))
                        audit_clause(t, "related referral added: %s", now->related[i]);
        for (size_t i = 0; i < before->n_related; i++)
                if (!related_has((const char (*)[UBRN_LEN + 1]) now->related, now->n_related, before->related[i]))
                        audit_clause(t, "related referral removed: %s", before->related[i]);
}

void audit_attachments_added(struct audit_text *t, const struct referral *src, const unsigned *occurrence,
                             const struct stored_attachment *stored, size_t n, const char *prefix) {
        const char *pre = prefix ? prefix : "";

        for (size_t i = 0; i < src->n_attachments; i++) {
                const char *id = src->attachments[i].id;
                bool known = false;
                for (size_t k = 0; id && k < n && !known; k++)
                        known = stored[k].occurrence == occurrence[i] && strcmp(stored[k].id, id) == 0;
                if (id && !known)
                        audit_clause(t, "%sattachment added: %s", pre, audit_q(t, id));
        }
}

void audit_attachment_listing(struct audit_text *t, const char *prefix, const char *id, bool listed_again) {
        audit_clause(t, "%sattachment %s: %s", prefix ? prefix : "", listed_again ? "listed again" : "removed",
                     audit_q(t, id));
}

/* ---- ersd audit UBRN ------------------------------------------------------------ */

struct print_ctx {
        FILE *out;
        bool json;
        bool header_done;  /* the table's header line is printed before the first row */
        json_object *rows; /* with json */
};

/* The documents column holds JSON lines (written by audit_document()) when it
 * starts with '{'; rows written before hold "<document_id> <sha256> <id>
 * r<revision>[ of <UBRN>]" lines and start with their first document_id, a
 * UUID (audit.h). */
static bool documents_are_json(const char *documents) {
        return documents && documents[0] == '{';
}

/* A walk over the lines of a documents column. */
struct documents_walk {
        bool json;         /* written by audit_document() (documents_are_json()) */
        json_object *list; /* --json: the entries */
        FILE *out;         /* the table */
};

/* Calls fn for each line of text (not NUL-terminated: `len` bytes). */
static void each_line(const char *text, void (*fn)(void *userdata, const char *line, size_t len), void *userdata) {
        for (const char *s = text; s && *s;) {
                size_t len = strcspn(s, "\n");
                fn(userdata, s, len);
                s += len;
                if (*s == '\n')
                        s++;
        }
}

/* One line of a JSON-lines documents column: an object, or NULL. */
static json_object *document_line(const char *line, size_t len) {
        json_tokener *tok = json_tokener_new();
        json_object *o = tok ? json_tokener_parse_ex(tok, line, (int) (len < INT32_MAX ? len : INT32_MAX)) : NULL;

        if (o && (!json_object_is_type(o, json_type_object) || json_tokener_get_parse_end(tok) != len)) {
                json_object_put(o);
                o = NULL;
        }
        json_tokener_free(tok);
        return o;
}

static const char *member_string(json_object *o, const char *key) {
        json_object *v = json_object_object_get(o, key);
        return json_object_is_type(v, json_type_string) ? json_object_get_string(v) : NULL;
}

/* A document line's "occurrence" (0 when absent: the first with its id, or a
 * row written before ersd recorded it). */
static int64_t occurrence_of(json_object *o) {
        json_object *v = json_object_object_get(o, "occurrence");
        return json_object_is_type(v, json_type_int) ? json_object_get_int64(v) : 0;
}

/* --json: one entry per document, as stored.  A line of either form that does
 * not read as a document comes out as {"text": line}. */
static void document_json(void *userdata, const char *line, size_t len) {
        struct documents_walk *c = userdata;
        json_object *d = json_object_new_object();

        if (c->json) {
                json_object *o = document_line(line, len);
                const char *id = o ? member_string(o, "document_id") : NULL;
                const char *att = o ? member_string(o, "attachment_id") : NULL;
                const char *sha = o ? member_string(o, "sha256") : NULL;
                json_object *rev = o ? json_object_object_get(o, "revision") : NULL;
                if (id && att && json_object_is_type(rev, json_type_int)) {
                        json_object_object_add(d, "document_id", json_object_new_string(id));
                        json_object_object_add(d, "sha256", sha ? json_object_new_string(sha) : NULL);
                        json_object_object_add(d, "fetched", json_object_new_boolean(sha != NULL));
                        if (member_string(o, "kind"))
                                json_object_object_add(d, "kind", json_object_new_string(member_string(o, "kind")));
                        json_object_object_add(d, "attachment_id", json_object_new_string(att));
                        json_object_object_add(d, "revision", json_object_new_int64(json_object_get_int64(rev)));
                        if (occurrence_of(o) > 0)
                                json_object_object_add(d, "occurrence", json_object_new_int64(occurrence_of(o)));
                        if (member_string(o, "source_ubrn"))
                                json_object_object_add(d, "source_ubrn",
                                                       json_object_new_string(member_string(o, "source_ubrn")));
                } else
                        json_object_object_add(d, "text", json_object_new_string_len(line, (int) len));
                json_object_put(o);
        } else {
                char text[256], id[64] = "", sha[80] = "", att[80] = "", source[16] = "";
                long long rev = 0;
                snprintf(text, sizeof text, "%.*s", (int) (len < sizeof text ? len : sizeof text - 1), line);
                int fields = sscanf(text, "%63s %79s %79s r%lld of %15s", id, sha, att, &rev, source);
                if (fields >= 4) {
                        bool fetched = strcmp(sha, "NOT_FETCHED") != 0;
                        json_object_object_add(d, "document_id", json_object_new_string(id));
                        json_object_object_add(d, "sha256", fetched ? json_object_new_string(sha) : NULL);
                        json_object_object_add(d, "fetched", json_object_new_boolean(fetched));
                        json_object_object_add(d, "attachment_id", json_object_new_string(att));
                        json_object_object_add(d, "revision", json_object_new_int64(rev));
                        if (fields == 5)
                                json_object_object_add(d, "source_ubrn", json_object_new_string(source));
                } else
                        json_object_object_add(d, "text", json_object_new_string(text));
        }
        json_object_array_add(c->list, d);
}

static json_object *documents_json(const char *documents) {
        struct documents_walk c = { .json = documents_are_json(documents), .list = json_object_new_array() };

        each_line(documents, document_json, &c);
        return c.list;
}

/* The table: one "document …" line per document, every value escaped
 * (escape.h); an attachment id that is not a plain token is shown as the JSON
 * literal the trail stores, so an id with spaces reads as one. */
static void document_text(void *userdata, const char *line, size_t len) {
        struct documents_walk *c = userdata;
        json_object *o = c->json ? document_line(line, len) : NULL;
        const char *id = o ? member_string(o, "document_id") : NULL;
        const char *att = o ? member_string(o, "attachment_id") : NULL;
        json_object *rev = o ? json_object_object_get(o, "revision") : NULL;
        char *shown = att ? audit_quote(att) : NULL;

        if (id && shown && json_object_is_type(rev, json_type_int)) {
                const char *sha = member_string(o, "sha256"), *source = member_string(o, "source_ubrn");
                char occurrence[40] = "";
                if (occurrence_of(o) > 0)
                        snprintf(occurrence, sizeof occurrence, " occurrence %" PRId64, occurrence_of(o));
                escape_fprintf(c->out, "%-4s   document %s %s %s r%" PRId64 "%s%s%s", "", id,
                               sha ? sha : "NOT_FETCHED", shown, json_object_get_int64(rev), occurrence,
                               source ? " of " : "", source ? source : "");
        } else /* a row written before, as it is */
                escape_fprintf(c->out, "%-4s   document %.*s", "", (int) (len < INT32_MAX ? len : INT32_MAX), line);
        fputc('\n', c->out);
        free(shown);
        json_object_put(o);
}

static int print_row(void *userdata, const struct audit_entry *a) {
        struct print_ctx *c = userdata;

        if (c->json) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "seq", json_object_new_int64(a->seq));
                json_object_object_add(o, "recorded_at", json_object_new_string(a->recorded_at));
                json_object_object_add(o, "version", a->version >= 0 ? json_object_new_int64(a->version) : NULL);
                json_object_object_add(o, "event", json_object_new_string(a->event));
                json_object_object_add(o, "detail", a->detail ? json_object_new_string(a->detail) : NULL);
                json_object_object_add(o, "documents", documents_json(a->documents));
                json_object_object_add(o, "correlation_id",
                                       a->correlation_id ? json_object_new_string(a->correlation_id) : NULL);
                json_object_array_add(c->rows, o);
                return 0;
        }
        char version[24] = "-";
        if (!c->header_done) {
                fprintf(c->out, "%-4s %-20s %-7s %-13s %-36s %s\n", "SEQ", "RECORDED (UTC)", "VERSION", "EVENT",
                        "CORRELATION ID", "WHAT CHANGED");
                c->header_done = true;
        }
        if (a->version >= 0)
                snprintf(version, sizeof version, "%" PRId64, a->version);
        /* What the database holds, by the one rule of escape.h. */
        escape_fprintf(c->out, "%-4" PRId64 " %-20s %-7s %-13s %-36s %s", a->seq, a->recorded_at, version, a->event,
                       a->correlation_id ? a->correlation_id : "-", a->detail ? a->detail : "");
        fputc('\n', c->out);
        struct documents_walk d = { .json = documents_are_json(a->documents), .out = c->out };
        each_line(a->documents, document_text, &d);
        return 0;
}

int audit_print(struct pas *p, const char *ubrn, bool json, FILE *out, struct errbuf *e) {
        struct print_ctx c = { .out = out, .json = json };
        size_t n = 0;
        int r;

        if (json)
                c.rows = json_object_new_array();
        r = pas_audit_read(p, ubrn, print_row, &c, &n, e);
        if (r < 0) {
                json_object_put(c.rows);
                return r;
        }
        if (json && n > 0) {
                json_object *o = json_object_new_object();
                json_object_object_add(o, "ubrn", json_object_new_string(ubrn));
                json_object_object_add(o, "audit", c.rows);
                /* exact values, the characters a terminal acts on as JSON escapes (escape.h) */
                escape_json_fputs(json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                                        JSON_C_TO_STRING_NOSLASHESCAPE),
                                  out);
                fputc('\n', out);
                json_object_put(o);
        } else
                json_object_put(c.rows);
        return (int) (n > INT32_MAX ? INT32_MAX : n);
}
