/* SPDX-License-Identifier: MIT */
#include "audit.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "log.h"

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
        *t = (struct audit_text){ .p = NULL };
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

static const char *shown(const char *s) {
        return s && *s ? s : "none";
}

static void code_change(struct audit_text *t, const char *field, const char *stored, const char *now) {
        if (!same_code(stored, now))
                audit_clause(t, "%s %s -> %s", field, shown(stored), shown(now));
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
        const char *specialty = now->specialty ? now->specialty : entry ? entry->specialty : NULL;

        if (!before->found) {
                audit_clause(t, "new referral: state %s; priority %s; %zu attachment(s); %zu related referral(s)",
                             shown(now->state), shown(priority), now->n_attachments, now->n_related);
                if (now->appointment_start)
                        audit_clause(t, "appointment %s", now->appointment_start);
                return;
        }
        if (before->version != now->version)
                audit_clause(t, "version %" PRId64 " -> %" PRId64, before->version, now->version);
        code_change(t, "state", before->state, now->state);
        code_change(t, "state_reason", before->state_reason, now->state_reason);
        code_change(t, "priority", before->priority, priority);
        code_change(t, "status", before->status, now->status);
        code_change(t, "specialty", before->specialty, specialty);
        /* The service as stored keeps its value when this version has none (pas.h). */
        if (now->service_id)
                code_change(t, "service", before->service_id, now->service_id);
        if (!same_code(before->appointment_start, now->appointment_start) ||
            !same_code(before->appointment_end, now->appointment_end)) {
                if (!before->appointment_start[0])
                        audit_clause(t, "appointment booked: %s", shown(now->appointment_start));
                else if (!now->appointment_start)
                        audit_clause(t, "appointment removed (was %s)", before->appointment_start);
                else
                        audit_clause(t, "appointment moved: %s -> %s", before->appointment_start,
                                     now->appointment_start);
        }
        for (size_t i = 0; i < now->n_related; i++)
                if (!related_has((const char (*)[UBRN_LEN + 1]) before->related, before->n_related, now->related[i]) &&
                    !related_has((const char (*)[UBRN_LEN + 1]) now->related, i, now->related[i]))
                        audit_clause(t, "related referral added: %s", now->related[i]);
        for (size_t i = 0; i < before->n_related; i++)
                if (!related_has((const char (*)[UBRN_LEN + 1]) now->related, now->n_related, before->related[i]))
                        audit_clause(t, "related referral removed: %s", before->related[i]);
}

/* Whether src lists the attachment (id, occurrence): occurrence + 1 of its attachments have that id. */
static bool listed(const struct referral *src, const char *id, unsigned occurrence) {
        unsigned seen = 0;

        for (size_t i = 0; i < src->n_attachments; i++)
                if (src->attachments[i].id && strcmp(src->attachments[i].id, id) == 0 && seen++ == occurrence)
                        return true;
        return false;
}

int audit_attachments(struct pas *p, const char *ubrn, const struct referral *src, const char *prefix,
                      struct audit_text *t, struct errbuf *e) {
        struct stored_attachment *stored = NULL;
        size_t n = 0;
        int r;

        r = pas_attachments_stored(p, ubrn, src->ubrn, &stored, &n, e);
        if (r < 0 || n == 0) {
                stored_attachments_free(stored, n);
                return r;
        }
        const char *pre = prefix ? prefix : "";
        for (size_t i = 0; i < src->n_attachments; i++) {
                const char *id = src->attachments[i].id;
                unsigned occurrence = attachment_occurrence(src, i);
                bool known = false;
                for (size_t k = 0; id && k < n && !known; k++)
                        known = stored[k].occurrence == occurrence && strcmp(stored[k].id, id) == 0;
                if (id && !known)
                        audit_clause(t, "%sattachment added: %s", pre, id);
        }
        for (size_t k = 0; k < n && r >= 0; k++) {
                bool now_listed = listed(src, stored[k].id, stored[k].occurrence);
                if (now_listed == !stored[k].removed)
                        continue;
                r = pas_attachment_set_removed(p, ubrn, src->ubrn, stored[k].id, stored[k].occurrence, !now_listed, e);
                if (r >= 0)
                        audit_clause(t, "%sattachment %s: %s", pre, now_listed ? "listed again" : "removed",
                                     stored[k].id);
        }
        stored_attachments_free(stored, n);
        return r;
}

/* ---- the latest worklists -------------------------------------------------------- */

int audit_worklist_poll(struct pas *p, const char *worklist, const struct worklist_entry *const *sorted, size_t n,
                        const char *correlation_id, unsigned *ret_left, unsigned *ret_returned, struct errbuf *e) {
        struct listing_change *changes = NULL;
        size_t n_changes = 0;
        unsigned left = 0, returned = 0;
        int r;

        r = pas_begin(p, e);
        if (r < 0)
                return r;
        r = pas_worklist_record(p, worklist, sorted, n, correlation_id, e);
        if (r >= 0)
                r = pas_worklist_changes(p, worklist, &changes, &n_changes, e);
        for (size_t i = 0; r >= 0 && i < n_changes; i++) {
                const struct listing_change *c = &changes[i];
                char detail[160];

                if (c->left)
                        snprintf(detail, sizeof detail,
                                 "no longer listed: worklist %s does not list it, nor does any other; "
                                 "its rows stay as last written",
                                 worklist);
                else
                        snprintf(detail, sizeof detail, "listed again on worklist %s", worklist);
                r = pas_ledger_set_left(p, c->ubrn, c->left, e);
                if (r >= 0)
                        r = pas_audit_append(p, c->ubrn, c->version, c->left ? "LEFT_WORKLIST" : "RETURNED", detail,
                                             NULL, correlation_id, e);
                if (c->left)
                        left++;
                else
                        returned++;
        }
        if (r >= 0)
                r = pas_commit(p, e);
        else
                pas_rollback(p);
        if (r < 0) {
                free(changes);
                return r;
        }
        for (size_t i = 0; i < n_changes; i++)
                log_ctx_info(&(struct log_ctx){ .ubrn = changes[i].ubrn, .worklist = worklist, .stage = "worklist" },
                             "UBRN %s: %s (correlation id %s)", changes[i].ubrn,
                             changes[i].left ? "left the worklists; its rows stay in the PAS"
                                             : "listed again on a worklist",
                             correlation_id);
        free(changes);
        *ret_left = left;
        *ret_returned = returned;
        return 0;
}

/* ---- ersd audit UBRN ------------------------------------------------------------ */

struct print_ctx {
        FILE *out;
        bool json;
        bool header_done;  /* the table's header line is printed before the first row */
        json_object *rows; /* with json */
};

/* Text for a terminal: control characters (which a server could have put into
 * a code) are shown as '?'. */
static void put_clean(FILE *out, const char *s) {
        for (; s && *s; s++)
                fputc((unsigned char) *s < 0x20 || *s == 0x7f ? '?' : *s, out);
}

static json_object *documents_json(const char *documents) {
        json_object *list = json_object_new_array();
        const char *s = documents;

        while (s && *s) {
                size_t len = strcspn(s, "\n");
                char line[256], id[64] = "", sha[80] = "", att[80] = "", source[16] = "";
                long long rev = 0;
                snprintf(line, sizeof line, "%.*s", (int) (len < sizeof line ? len : sizeof line - 1), s);
                json_object *d = json_object_new_object();
                int fields = sscanf(line, "%63s %79s %79s r%lld of %15s", id, sha, att, &rev, source);
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
                        json_object_object_add(d, "text", json_object_new_string(line));
                json_object_array_add(list, d);
                s += len;
                if (*s == '\n')
                        s++;
        }
        return list;
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
        fprintf(c->out, "%-4" PRId64 " %-20s %-7s %-13s %-36s ", a->seq, a->recorded_at, version, a->event,
                a->correlation_id ? a->correlation_id : "-");
        put_clean(c->out, a->detail ? a->detail : "");
        fputc('\n', c->out);
        for (const char *s = a->documents; s && *s;) {
                size_t len = strcspn(s, "\n");
                fprintf(c->out, "%-4s   document %.*s\n", "", (int) len, s);
                s += len;
                if (*s == '\n')
                        s++;
        }
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
                fprintf(out, "%s\n", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PRETTY |
                                                                           JSON_C_TO_STRING_NOSLASHESCAPE));
                json_object_put(o);
        } else
                json_object_put(c.rows);
        return (int) (n > INT32_MAX ? INT32_MAX : n);
}
