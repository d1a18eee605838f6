/* SPDX-License-Identifier: MIT */
/*
 * `ersd remap`'s documents (remap_documents.h): each document row of a
 * referral, every revision, its columns from the A005 answer derived again
 * from the answer kept of its source version, and the document mapping run
 * again with the stored bytes.  Not here: the referral's rows, the
 * transaction and the audit row (remap.c); reading and writing the rows
 * (adapters/pas_document_rows.c).
 */
#include "remap_documents.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "../adapters/pas_answer.h"
#include "../adapters/pas_document_rows.h"
#include "../adapters/pas_mapping.h"
#include "fetch.h"
#include "remap.h"

#define ID_SHOWN_MAX 64 /* bytes of an e-RS id shown in an error line */

/* The referral the rows of one source and version were written from, parsed
 * from its kept answer: rows come ordered by source and version, so one is
 * held at a time (besides the referral remapped). */
struct source {
        char ubrn[UBRN_LEN + 1];
        int64_t version;
        bool looked;         /* ubrn and version were looked up */
        bool parsed;         /* an answer of that version is kept, and ref is it */
        struct referral ref; /* owned contents */
};

static void source_free(struct source *s) {
        referral_free(&s->ref);
        *s = (struct source){ .version = -1 };
}

/* The referral row w was written from (*ret NULL when no answer of its
 * version is kept: pruned, or written before schema version 5). */
static int source_of(struct pas *pas, const struct referral *main, const struct document_row *w, struct source *s,
                     const struct referral **ret, struct errbuf *e) {
        struct answer_kept *kept = NULL; /* owned */
        const struct answer_kept *k = NULL;
        char correlation_id[37];
        size_t n = 0;
        int r;

        *ret = NULL;
        if (strcmp(w->source_ubrn, main->ubrn) == 0 && w->source_version == main->version) {
                *ret = main;
                return 0;
        }
        if (!s->looked || strcmp(s->ubrn, w->source_ubrn) != 0 || s->version != w->source_version) {
                source_free(s);
                memcpy(s->ubrn, w->source_ubrn, sizeof s->ubrn);
                s->version = w->source_version;
                s->looked = true;
                char named[65] = ""; /* the answer the source's row names, when it is at that version */
                int64_t named_version = -1;
                r = pas_answer_current(pas, w->source_ubrn, &named_version, named, e);
                if (r == 0)
                        r = pas_answers_kept(pas, w->source_ubrn, &kept, &n, e);
                for (size_t i = 0; i < n && r == 0; i++) {
                        if (kept[i].version != w->source_version)
                                continue;
                        if (named_version == w->source_version && named[0]) {
                                if (strcmp(kept[i].sha256, named) == 0)
                                        k = &kept[i]; /* the one its rows came from */
                        } else {
                                k = &kept[i]; /* an earlier version: by arrival, the last is the latest */
                        }
                }
                if (r == 0 && k)
                        r = remap_parse_kept(pas, w->source_ubrn, k, &s->ref, correlation_id, e);
                s->parsed = r == 0 && k;
                free(kept);
                if (r < 0)
                        return r;
        }
        *ret = s->parsed ? &s->ref : NULL;
        return 0;
}

/* The attachment of src that row w is (its id, and as many before it with that id as its occurrence). */
static const struct attachment *attachment_of(const struct referral *src, const struct document_row *w) {
        unsigned seen = 0;

        for (size_t i = 0; i < src->n_attachments; i++)
                if (src->attachments[i].id && strcmp(src->attachments[i].id, w->attachment_id) == 0 &&
                    seen++ == w->occurrence)
                        return &src->attachments[i];
        return NULL;
}

/* Row w as a document record (borrowing its strings), shown with `ubrn`. */
static struct document_rec rec_of(const struct document_row *w, const char *ubrn) {
        return (struct document_rec){
                .ubrn = ubrn,
                .source_ubrn = w->source_ubrn,
                .kind = w->kind,
                .attachment_id = w->attachment_id,
                .occurrence = w->occurrence,
                .source_version = w->source_version,
                .title = w->title,
                .content_type = w->content_type,
                .declared_size = w->declared_size,
                .availability = w->availability,
                .attached_by_user = w->attached_by_user,
                .attached_by_org = w->attached_by_org,
                .created = w->created,
                .document_type = w->document_type,
                .description = w->description,
                .attached_on_behalf_of = w->attached_on_behalf_of,
                .fetched = w->fetched,
                .not_fetched_reason = w->not_fetched_reason,
                .size = w->fetched ? w->size : 0,
                .sha256 = w->fetched ? w->sha256 : NULL,
        };
}

static bool same_text(const char *a, const char *b) {
        return a && b ? strcmp(a, b) == 0 : a == b;
}

/* Whether the columns the answer gives differ between `was` and `now`; the
 * names of those that are not free text into names (n bytes): a title's or
 * description's change is never named (audit.h). */
static bool described_differently(const struct document_rec *was, const struct document_rec *now, char *names,
                                  size_t n) {
        const struct {
                const char *name, *was, *now;
        } cols[] = {
                { NULL, was->title, now->title },
                { "content_type", was->content_type, now->content_type },
                { "availability", was->availability, now->availability },
                { "attached_by_user", was->attached_by_user, now->attached_by_user },
                { "attached_by_org", was->attached_by_org, now->attached_by_org },
                { "created", was->created, now->created },
                { "document_type", was->document_type, now->document_type },
                { NULL, was->description, now->description },
                { "attached_on_behalf_of", was->attached_on_behalf_of, now->attached_on_behalf_of },
        };
        bool any = false;
        size_t o = 0;

        names[0] = '\0';
        if (was->declared_size != now->declared_size) {
                any = true;
                o += (size_t) snprintf(names, n, "declared_size");
        }
        for (size_t i = 0; i < sizeof cols / sizeof cols[0]; i++) {
                if (same_text(cols[i].was, cols[i].now))
                        continue;
                any = true;
                if (cols[i].name && o < n)
                        o += (size_t) snprintf(names + o, n - o, "%s%s", o ? ", " : "", cols[i].name);
        }
        return any;
}

/* An unnamed file in state_dir, mode 0600, for a document's bytes on their
 * way from ers_document_part to the mapping: gone when closed, whatever
 * becomes of ersd.  A descriptor, or a negative errno with one line in e. */
static int content_file(const char *state_dir, struct errbuf *e) {
        char path[4096];
        int fd;

        if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
                return err_set(e, -errno, "cannot create state directory %s: %s", state_dir, strerror(errno));
        fd = open(state_dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
        if (fd >= 0)
                return fd;
        if (errno != EOPNOTSUPP && errno != EISDIR && errno != EINVAL)
                return err_set(e, -errno, "cannot create a file in the state directory %s: %s", state_dir,
                               strerror(errno));
        /* A file system without O_TMPFILE: a named one, unlinked at once. */
        if (snprintf(path, sizeof path, "%s/remap-XXXXXX", state_dir) >= (int) sizeof path)
                return err_set(e, -ENAMETOOLONG, "state directory path too long");
        fd = mkostemp(path, O_CLOEXEC);
        if (fd < 0)
                return err_set(e, -errno, "cannot create a file in the state directory %s: %s", state_dir,
                               strerror(errno));
        (void) unlink(path);
        return fd;
}

/* What the remap of one referral's documents has done so far. */
struct documents_done {
        unsigned mapped; /* rows the document mapping ran for */
        unsigned left;   /* rows no answer kept lists: left as stored */
        int content_fd;  /* owned: the file :content passes through, -1 until needed */
};

/* One row: its columns again, its audit lines, its mapping. */
static int remap_row(struct pas *pas, struct pas_tx *tx, const struct referral *ref, const struct document_row *w,
                     struct source *s, const char *state_dir, struct audit_text *detail, struct audit_text *documents,
                     struct documents_done *done, struct errbuf *e) {
        const struct document_rec was = rec_of(w, ref->ubrn);
        struct document_rec now = was;
        const struct referral *src = NULL;
        bool related = strcmp(w->source_ubrn, ref->ubrn) != 0, content = false, derived = true;
        char names[256];
        int r = 0;

        if (w->kind == DOCUMENT_CRI) {
                document_describe(&now, NULL); /* ersd's own words: no answer needed */
        } else {
                const struct attachment *a = NULL;
                r = source_of(pas, ref, w, s, &src, e);
                if (r < 0)
                        return r;
                a = src ? attachment_of(src, w) : NULL;
                if (a)
                        document_describe(&now, a);
                derived = a != NULL;
        }
        if (!derived)
                done->left++;
        if (derived && described_differently(&was, &now, names, sizeof names)) {
                r = pas_document_set_described(tx, w->document_id, &now, e);
                if (r < 0)
                        return r;
                audit_document(documents, w->document_id, w->fetched ? w->sha256 : NULL, w->kind, w->attachment_id,
                               w->revision, w->occurrence, related ? w->source_ubrn : NULL);
                char occurrence[32] = "";
                if (w->occurrence > 0)
                        snprintf(occurrence, sizeof occurrence, ", occurrence %u", w->occurrence);
                audit_clause(detail, "%s%s%s%s re-derived: %s (revision %" PRId64 "%s%s%s)", related ? "related " : "",
                             related ? w->source_ubrn : "", related ? ": " : "",
                             w->kind == DOCUMENT_CRI ? "letter" : "document", audit_q(detail, w->attachment_id),
                             w->revision, occurrence, names[0] ? "; " : "", names);
        }
        if (!pas_document_mapping(pas, &content))
                return 0;
        if (content && w->fetched) {
                if (done->content_fd < 0 && (done->content_fd = content_file(state_dir, e)) < 0) {
                        r = done->content_fd;
                        done->content_fd = -1;
                        return r;
                }
                r = pas_document_content(pas, w, done->content_fd, e);
        }
        if (r == 0)
                r = pas_put_mapped_document_again(tx, &now, w->document_id, w->revision,
                                                  content && w->fetched ? done->content_fd : -1, e);
        if (r == 0)
                done->mapped++;
        return r;
}

int remap_documents(struct pas *pas, struct pas_tx *tx, const struct referral *ref, const char *state_dir,
                    struct audit_text *detail, struct audit_text *documents, struct errbuf *e) {
        struct document_row *rows = NULL; /* owned */
        struct source s = { .version = -1 };
        struct documents_done done = { .content_fd = -1 };
        size_t n = 0;
        int r = pas_document_rows(pas, ref->ubrn, &rows, &n, e);

        for (size_t i = 0; i < n && r == 0; i++) {
                r = remap_row(pas, tx, ref, &rows[i], &s, state_dir, detail, documents, &done, e);
                if (r < 0) {
                        char shown[ID_SHOWN_MAX + 4];
                        err_prefix(e, r, "document %s of %s", utf8_prefix(rows[i].attachment_id, ID_SHOWN_MAX, shown),
                                   ref->ubrn);
                }
        }
        if (r == 0 && pas_document_mapping(pas, NULL))
                audit_clause(detail, "database.mapping.document run for %u document row(s)", done.mapped);
        if (r == 0 && done.left > 0)
                audit_clause(detail, "%u document row(s) left as stored: no answer kept of their version lists them",
                             done.left);
        if (done.content_fd >= 0)
                close(done.content_fd);
        source_free(&s);
        document_rows_free(rows, n);
        return r;
}
