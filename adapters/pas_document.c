/* SPDX-License-Identifier: MIT */
/*
 * A referral's documents in the staging tables (pas.h): ers_document rows,
 * found by (ubrn, source_ubrn, kind, attachment_key), never by the wide id
 * (document_key.h), and their content as ers_document_part rows of at most
 * PAS_PART_MAX bytes, streamed from the spool file and hashed again on the way.
 * A document already stored with the same bytes is not written again; new
 * bytes under the same id are a new revision, the old one kept.  Also what
 * is stored of them (pas_document_get, pas_documents_known), the attachments
 * of a referral and their removal marks (removed_at), and the referrals that
 * show a related referral's documents (pas_referrals_listing).
 * Not here: the spool (daemon/spool.c), the document mapping into the PAS's
 * own tables (pas_mapping.c, which pas_put_document_ex() calls).
 */
#include "pas.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "../daemon/util.h"
#include "document_key.h"
#include "pas_internal.h"

#define SHA256_HEX 64
#define ID_SHOWN_MAX 64        /* bytes of an e-RS id shown in an error line */
#define REASON_MAX 255         /* bytes of ers_document.not_fetched_reason, VARCHAR(255) */

/* ---------------------------------------------------------------------- */
/* What is stored.                                                         */

struct stored_document {
        bool found;
        char document_id[UUID_STR_LEN];
        bool fetched;
        char sha256[SHA256_HEX + 1];
        int64_t revision;
        int64_t source_version;
        char *availability;    /* owned; NULL when NULL, as below */
        char *reason;          /* owned */
        int64_t declared_size; /* -1 when NULL */
        char *created;         /* owned */
};

static void stored_document_free(struct stored_document *d) {
        free(d->availability);
        free(d->reason);
        free(d->created);
        d->availability = d->reason = d->created = NULL;
}

/* One row of ST_DOCUMENT_GET's columns, from column `col` on. */
static int read_stored_document(struct pas *p, SQLHSTMT h, const char *what, SQLUSMALLINT col,
                                struct stored_document *d, struct errbuf *e) {
        char status[32] = "";
        bool size_null = false;
        int r;

        *d = (struct stored_document){ .found = true };
        r = get_text(p, h, col, what, d->document_id, sizeof d->document_id, NULL, e);
        if (r >= 0)
                r = get_text(p, h, col + 1, what, status, sizeof status, NULL, e);
        if (r >= 0)
                r = get_text(p, h, col + 2, what, d->sha256, sizeof d->sha256, NULL, e);
        if (r >= 0)
                r = get_int64(p, h, col + 3, what, &d->revision, NULL, e);
        if (r >= 0)
                r = get_int64(p, h, col + 4, what, &d->source_version, NULL, e);
        if (r >= 0)
                r = get_text_alloc(p, h, col + 5, what, &d->availability, e);
        if (r >= 0)
                r = get_text_alloc(p, h, col + 6, what, &d->reason, e);
        if (r >= 0)
                r = get_int64(p, h, col + 7, what, &d->declared_size, &size_null, e);
        if (r >= 0 && size_null)
                d->declared_size = -1;
        if (r >= 0)
                r = get_text_alloc(p, h, col + 8, what, &d->created, e);
        d->fetched = r >= 0 && strcmp(status, "FETCHED") == 0;
        if (r < 0)
                stored_document_free(d);
        return r;
}

static const char *kind_name(enum document_kind kind) {
        return kind == DOCUMENT_CRI ? "CRI" : "ATTACHMENT";
}

/* Reads the highest revision stored of the document whose key is `key`;
 * *ret owns its strings (stored_document_free). */
static int document_latest(struct pas *p, const char *ubrn, const char *source_ubrn, enum document_kind kind,
                           const char *key, struct stored_document *ret, struct errbuf *e) {
        const char *what = statements[ST_DOCUMENT_GET].what;
        struct param ps[] = { P_TEXT(ubrn), P_TEXT(source_ubrn), P_TEXT(kind_name(kind)), P_TEXT(key) };
        struct stored_document d = { .found = false };
        SQLHSTMT h = SQL_NULL_HSTMT;
        int r;

        r = run(p, ST_DOCUMENT_GET, ps, 4, &h, NULL, e);
        if (r < 0)
                return r;
        r = fetch(p, h, what, e);
        if (r > 0)
                r = read_stored_document(p, h, what, 1, &d, e);
        stmt_close(h);
        if (r < 0)
                return r;
        *ret = d;
        return 0;
}

void document_state_free(struct document_state *s) {
        if (!s)
                return;
        free(s->created);
        free(s->availability);
        free(s->reason);
        s->created = s->availability = s->reason = NULL;
}

/* What sync needs of a stored document; takes d's texts (d is freed). */
static int document_state_of(struct stored_document *d, struct document_state *ret, struct errbuf *e) {
        struct document_state st = { .found = d->found, .fetched = d->fetched, .revision = d->revision,
                                     .declared_size = d->declared_size, .source_version = d->source_version,
                                     .availability = d->availability, .reason = d->reason };

        d->availability = d->reason = NULL;
        if (d->found) {
                st.created = d->created ? d->created : strdup("");
                d->created = NULL;
                if (!st.created) {
                        stored_document_free(d);
                        document_state_free(&st);
                        return err_set(e, -ENOMEM, "out of memory");
                }
        }
        if (d->fetched)
                memcpy(st.sha256, d->sha256, sizeof st.sha256);
        stored_document_free(d);
        *ret = st;
        return 0;
}

/* The attachment key of a document, with one line in e when it cannot be made. */
static int key_of(const char *attachment_id, unsigned occurrence, char ret[DOCUMENT_KEY_HEX + 1], struct errbuf *e) {
        int r = document_key(attachment_id, occurrence, ret);

        return r < 0 ? err_set(e, r, "cannot compute the document's attachment key (SHA-256)") : 0;
}

int pas_document_get(struct pas *p, const char *ubrn, const char *source_ubrn, enum document_kind kind,
                     const char *attachment_id, unsigned occurrence, struct document_state *ret, struct errbuf *e) {
        struct stored_document d = { .found = false };
        char key[DOCUMENT_KEY_HEX + 1];
        int r;

        r = check_ubrn(ubrn, "document", e);
        if (r >= 0)
                r = check_ubrn(source_ubrn, "document source", e);
        if (r >= 0 && !attachment_id)
                r = err_set(e, -EINVAL, "document: no attachment id");
        if (r >= 0)
                r = key_of(attachment_id, occurrence, key, e);
        if (r >= 0)
                r = document_latest(p, ubrn, source_ubrn, kind, key, &d, e);
        if (r >= 0)
                r = document_state_of(&d, ret, e);
        if (r < 0)
                return ubrn && ubrn_valid(ubrn) ? err_prefix(e, r, "document of %s", ubrn) : r;
        return 0;
}

void documents_known_free(struct document_known *list, size_t n) {
        for (size_t i = 0; list && i < n; i++) {
                free(list[i].attachment_id);
                document_state_free(&list[i].state);
        }
        free(list);
}

int pas_documents_known(struct pas *p, const char *ubrn, struct document_known **ret, size_t *ret_n,
                        struct errbuf *e) {
        const char *what = statements[ST_DOCUMENTS_KNOWN].what;
        struct document_known *list = NULL;
        char last_key[DOCUMENT_KEY_HEX + 1] = "", last_kind[16] = "";
        SQLHSTMT h = SQL_NULL_HSTMT;
        size_t n = 0, cap = 0;
        int r;

        r = run_for_ubrn(p, ST_DOCUMENTS_KNOWN, ubrn, &h, e);
        if (r < 0)
                return r;
        while ((r = fetch(p, h, what, e)) > 0) {
                struct stored_document d = { .found = false };
                char source[UBRN_LEN + 2], kind[16], key[DOCUMENT_KEY_HEX + 1];
                int64_t occurrence = 0;

                r = get_text(p, h, 1, what, source, sizeof source, NULL, e);
                if (r >= 0)
                        r = get_text(p, h, 2, what, kind, sizeof kind, NULL, e);
                if (r >= 0)
                        r = get_text(p, h, 3, what, key, sizeof key, NULL, e);
                if (r < 0)
                        break;
                /* Rows come newest revision first: the first of each document is its state. */
                if (n > 0 && strcmp(list[n - 1].source_ubrn, source) == 0 && strcmp(last_kind, kind) == 0 &&
                    strcmp(last_key, key) == 0)
                        continue;
                r = get_int64(p, h, 4, what, &occurrence, NULL, e);
                if (r >= 0)
                        r = grow(&list, &cap, n, sizeof *list, e);
                if (r < 0)
                        break;
                struct document_known *k = &list[n];
                *k = (struct document_known){ .kind = strcmp(kind, "CRI") == 0 ? DOCUMENT_CRI : DOCUMENT_ATTACHMENT,
                                              .occurrence = (unsigned) occurrence };
                memcpy(k->source_ubrn, source, sizeof k->source_ubrn);
                k->source_ubrn[UBRN_LEN] = '\0';
                r = get_text_whole(p, h, 5, what, &k->attachment_id, e);
                if (r >= 0)
                        r = read_stored_document(p, h, what, 6, &d, e);
                if (r >= 0)
                        r = document_state_of(&d, &k->state, e);
                if (r < 0) {
                        free(k->attachment_id);
                        break;
                }
                n++;
                memcpy(last_kind, kind, sizeof last_kind);
                memcpy(last_key, key, sizeof last_key);
        }
        stmt_close(h);
        if (r < 0) {
                documents_known_free(list, n);
                return err_prefix(e, r, "%s", ubrn);
        }
        *ret = list;
        *ret_n = n;
        return 0;
}

void stored_attachments_free(struct stored_attachment *list, size_t n) {
        for (size_t i = 0; list && i < n; i++) {
                free(list[i].id);
                free(list[i].created);
        }
        free(list);
}

static int stored_attachment_cmp(const void *a, const void *b) {
        const struct stored_attachment *x = a, *y = b;
        int c = strcmp(x->id, y->id);

        return c ? c : (x->occurrence > y->occurrence) - (x->occurrence < y->occurrence);
}

int pas_attachments_stored(struct pas *p, const char *ubrn, const char *source_ubrn, struct stored_attachment **ret,
                           size_t *ret_n, struct errbuf *e) {
        const char *what = statements[ST_ATTACHMENTS_STORED].what;
        struct param ps[] = { P_TEXT(ubrn), P_TEXT(source_ubrn) };
        struct stored_attachment *list = NULL;
        char last_key[DOCUMENT_KEY_HEX + 1] = "";
        SQLHSTMT h = SQL_NULL_HSTMT;
        size_t n = 0, cap = 0;
        int r;

        r = check_ubrn(ubrn, what, e);
        if (r >= 0)
                r = check_ubrn(source_ubrn, what, e);
        if (r < 0)
                return r;
        r = run(p, ST_ATTACHMENTS_STORED, ps, 2, &h, NULL, e);
        if (r < 0)
                return err_prefix(e, r, "%s", ubrn);
        /* Rows come by key, each attachment's revisions together, the latest first: one
         * entry each, described as the latest, removed only when every revision is
         * (pas_attachment_set_removed marks them all). */
        while ((r = fetch(p, h, what, e)) > 0) {
                char key[DOCUMENT_KEY_HEX + 1], status[32] = "";
                int64_t occurrence = 0, removed = 0;
                bool size_null = false;

                r = get_text(p, h, 1, what, key, sizeof key, NULL, e);
                if (r >= 0)
                        r = get_int64(p, h, 2, what, &occurrence, NULL, e);
                if (r >= 0)
                        r = get_int64(p, h, 3, what, &removed, NULL, e);
                if (r < 0)
                        break;
                if (n > 0 && strcmp(key, last_key) == 0) {
                        list[n - 1].removed = list[n - 1].removed && removed != 0;
                        continue;
                }
                r = grow(&list, &cap, n, sizeof *list, e);
                if (r < 0)
                        break;
                list[n] = (struct stored_attachment){ .occurrence = (unsigned) occurrence, .removed = removed != 0 };
                r = get_text_whole(p, h, 4, what, &list[n].id, e);
                if (r >= 0)
                        r = get_int64(p, h, 5, what, &list[n].declared_size, &size_null, e);
                if (r >= 0)
                        r = get_text_alloc(p, h, 6, what, &list[n].created, e);
                if (r >= 0)
                        r = get_text(p, h, 7, what, status, sizeof status, NULL, e);
                if (r < 0) {
                        free(list[n].id);
                        free(list[n].created);
                        break;
                }
                if (size_null)
                        list[n].declared_size = -1;
                list[n].fetched = strcmp(status, "FETCHED") == 0;
                n++;
                memcpy(last_key, key, sizeof last_key);
        }
        stmt_close(h);
        if (r < 0) {
                stored_attachments_free(list, n);
                return err_prefix(e, r, "%s", ubrn);
        }
        if (n == 0) {
                free(list);
                list = NULL;
        }
        if (n > 1)
                qsort(list, n, sizeof *list, stored_attachment_cmp);
        *ret = list;
        *ret_n = n;
        return 0;
}

int fetch_ubrns(struct pas *p, SQLHSTMT h, const char *what, char (**ret)[UBRN_LEN + 1], size_t *ret_n,
                struct errbuf *e) {
        char (*list)[UBRN_LEN + 1] = NULL; /* owned until handed over */
        size_t n = 0, cap = 0;
        int r;

        while ((r = fetch(p, h, what, e)) > 0) {
                r = grow(&list, &cap, n, sizeof *list, e);
                if (r >= 0)
                        r = get_text(p, h, 1, what, list[n], sizeof list[n], NULL, e);
                if (r < 0)
                        break;
                n++;
        }
        stmt_close(h);
        return list_hand_over(r, list, n, (void **) ret, ret_n);
}

int pas_referrals_listing(struct pas *p, const char *related_ubrn, char (**ret)[UBRN_LEN + 1], size_t *ret_n,
                          struct errbuf *e) {
        SQLHSTMT h = SQL_NULL_HSTMT;
        int r = run_for_ubrn(p, ST_RELATED_LISTING, related_ubrn, &h, e);

        if (r >= 0)
                r = fetch_ubrns(p, h, statements[ST_RELATED_LISTING].what, ret, ret_n, e);
        if (r < 0)
                return err_prefix(e, r, "%s", related_ubrn);
        return 0;
}

/* ---------------------------------------------------------------------- */
/* Writing.                                                                */

static bool sha256_hex_valid(const char *s) {
        size_t i;

        if (!s)
                return false;
        for (i = 0; s[i]; i++)
                if (!isxdigit((unsigned char) s[i]))
                        return false;
        return i == SHA256_HEX;
}

/* A text as stored (NULL for SQL NULL) against the one about to be written. */
static bool same_text(const char *stored, const char *now) {
        if (!now || !stored)
                return !now && !stored;
        return strcmp(stored, now) == 0;
}

/*
 * Streams `size` bytes of `fd` from offset 0 into ers_document_part rows
 * numbered 1…n, at most PAS_PART_MAX bytes each, through one reusable buffer,
 * hashing them on the way; fails with -EBADMSG when the file is shorter than
 * `size` or its SHA-256 is not `sha256`.  Parts a row may already have are
 * deleted first, unless `new_row` (a document id made for this row: nothing
 * can reference it yet, and the DELETE would be a round trip for nothing).
 */
static int write_parts(struct pas *p, const char *document_id, bool new_row, int fd, int64_t size,
                       const char *sha256, struct errbuf *e) {
        EVP_MD_CTX *md = NULL;
        unsigned char digest[32];
        char hex[SHA256_HEX + 1];
        int64_t off = 0, seq = 0;
        int r = 0;

        if (!p->part) {
                p->part = malloc(PAS_PART_MAX);
                if (!p->part)
                        return err_set(e, -ENOMEM, "out of memory for a document part");
        }
        md = EVP_MD_CTX_new();
        if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
                r = err_set(e, -ENOMEM, "cannot start SHA-256");
                goto out;
        }

        if (!new_row) {
                struct param del[] = { P_TEXT(document_id) };
                r = run(p, ST_PART_DELETE, del, 1, NULL, NULL, e);
                if (r < 0)
                        goto out;
        }

        while (off < size) {
                size_t want = size - off < PAS_PART_MAX ? (size_t) (size - off) : PAS_PART_MAX;
                size_t got = 0;

                while (got < want) {
                        ssize_t n = pread(fd, p->part + got, want - got, (off_t) (off + (int64_t) got));
                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n < 0) {
                                r = err_set(e, -errno, "read spool file at byte %lld: %s",
                                            (long long) (off + (int64_t) got), strerror(errno));
                                goto out;
                        }
                        if (n == 0) {
                                r = err_set(e, -EBADMSG, "spool file ends at byte %lld of %lld",
                                            (long long) (off + (int64_t) got), (long long) size);
                                goto out;
                        }
                        got += (size_t) n;
                }
                if (EVP_DigestUpdate(md, p->part, want) != 1) {
                        r = err_set(e, -EIO, "SHA-256 failed");
                        goto out;
                }
                seq++;
                struct param ps[] = { P_TEXT(document_id), P_INT(seq), P_BLOB(p->part, want) };
                r = run(p, ST_PART_INSERT, ps, 3, NULL, NULL, e);
                if (r < 0) {
                        err_prefix(e, r, "part %lld", (long long) seq);
                        goto out;
                }
                off += (int64_t) want;
        }
        if (EVP_DigestFinal_ex(md, digest, NULL) != 1) {
                r = err_set(e, -EIO, "SHA-256 failed");
                goto out;
        }
        hex_encode(digest, sizeof digest, hex);
        if (strcasecmp(hex, sha256) != 0) {
                r = err_set(e, -EBADMSG, "spool file's SHA-256 is %.12s…, not the %.12s… received", hex, sha256);
                goto out;
        }
out:
        EVP_MD_CTX_free(md);
        return r;
}

int pas_put_document(struct pas_tx *tx, const struct document_rec *d, int spool_fd, bool *ret_written,
                     struct errbuf *e) {
        struct document_written w = { .written = false };
        int r = pas_put_document_ex(tx, d, spool_fd, &w, e);

        if (r == 0 && ret_written)
                *ret_written = w.written;
        return r;
}

int pas_put_document_ex(struct pas_tx *tx, const struct document_rec *d, int spool_fd, struct document_written *ret,
                        struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        struct stored_document old = { .found = false };
        const char *now = tx_time(tx);
        char document_id[UUID_STR_LEN], sha[SHA256_HEX + 1] = "", key[DOCUMENT_KEY_HEX + 1];
        char shown[ID_SHOWN_MAX + 4], reason_cut[REASON_MAX + 1];
        const char *aid = d->attachment_id ? d->attachment_id : "";
        const char *reason = bounded(d->not_fetched_reason, REASON_MAX, reason_cut);
        int64_t parts = 0, revision = 1;
        bool update;
        int r;

        r = check_ubrn(d->ubrn, "document", e);
        if (r >= 0)
                r = check_ubrn(d->source_ubrn, "document source", e);
        if (r >= 0 && !d->attachment_id)
                r = err_set(e, -EINVAL, "document: no attachment id");
        if (r >= 0 && d->fetched && (!sha256_hex_valid(d->sha256) || d->size < 0 || spool_fd < 0))
                r = err_set(e, -EINVAL, "document: fetched without a valid SHA-256, size or spool file");
        if (r >= 0)
                r = key_of(aid, d->occurrence, key, e);
        if (r < 0)
                return d->ubrn && ubrn_valid(d->ubrn) ? err_prefix(e, r, "%s", d->ubrn) : r;

        if (d->fetched)
                for (size_t i = 0; i <= SHA256_HEX; i++)
                        sha[i] = (char) tolower((unsigned char) d->sha256[i]);

        if (!is_fresh(tx, d->ubrn)) /* else nothing is shown with it yet */
                r = document_latest(p, d->ubrn, d->source_ubrn, d->kind, key, &old, e);
        if (r < 0)
                goto fail;

        if (!old.found) {
                update = false; /* first revision */
        } else if (old.fetched) {
                if (!d->fetched || strcasecmp(old.sha256, sha) == 0)
                        goto unchanged; /* content already stored (or not refetched): keep it */
                update = false;         /* new content: a new revision, the old one kept */
                revision = old.revision + 1;
        } else if (!d->fetched && old.source_version == d->source_version &&
                   same_text(old.availability, d->availability) && same_text(old.reason, reason)) {
                goto unchanged; /* still not fetched, for the same reason */
        } else {
                update = true; /* complete (or refresh) the not-fetched row */
                revision = old.revision;
        }

        if (update)
                memcpy(document_id, old.document_id, sizeof document_id);
        else {
                r = uuid_v4(document_id);
                if (r < 0) {
                        err_set(e, r, "cannot generate a document id: %s", strerror(-r));
                        goto fail;
                }
        }
        if (d->fetched)
                parts = (d->size + PAS_PART_MAX - 1) / PAS_PART_MAX;

        /* The row first, then its parts (they reference it). */
        struct param ps[] = {
                P_INT(d->source_version),
                P_DOCUMENT_DESCRIBED(d),
                P_TEXT(d->fetched ? "FETCHED" : "NOT_FETCHED"),
                P_TEXT(d->fetched ? NULL : reason),
                P_INT_OR_NULL(d->size, !d->fetched),
                P_TEXT(d->fetched ? sha : NULL),
                P_INT_OR_NULL(parts, !d->fetched),
                P_TEXT(now),
                P_TEXT(document_id),
                /* INSERT only: */
                P_TEXT(d->ubrn),
                P_TEXT(d->source_ubrn),
                P_TEXT(kind_name(d->kind)),
                P_TEXT(aid),
                P_INT(revision),
                P_INT(d->occurrence),
                P_TEXT(key),
        };
        if (update)
                r = run(p, ST_DOCUMENT_UPDATE, ps, 18, NULL, NULL, e);
        else
                r = run(p, ST_DOCUMENT_INSERT, ps, 25, NULL, NULL, e);
        if (r >= 0 && d->fetched)
                r = write_parts(p, document_id, !update, spool_fd, d->size, sha, e);
        if (r >= 0 && p->map[PAS_MAP_DOCUMENT].sql)
                r = map_document(tx, d, document_id, revision, sha, spool_fd, e);
        if (r < 0)
                goto fail;
        stored_document_free(&old);
        if (ret) {
                ret->written = true;
                memcpy(ret->document_id, document_id, sizeof ret->document_id);
                ret->revision = revision;
        }
        return 0;
unchanged:
        stored_document_free(&old);
        if (ret)
                *ret = (struct document_written){ .written = false };
        return 0;
fail:
        stored_document_free(&old);
        if (d->occurrence > 0)
                return err_prefix(e, r, "document %s (occurrence %u) of %s", utf8_prefix(aid, ID_SHOWN_MAX, shown),
                                  d->occurrence, d->ubrn);
        return err_prefix(e, r, "document %s of %s", utf8_prefix(aid, ID_SHOWN_MAX, shown), d->ubrn);
}

int pas_attachment_set_removed(struct pas_tx *tx, const char *ubrn, const char *source_ubrn,
                               const char *attachment_id, unsigned occurrence, bool removed, struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        const char *now = tx_time(tx);
        char key[DOCUMENT_KEY_HEX + 1];
        int r;

        r = key_of(attachment_id, occurrence, key, e);
        if (r < 0)
                return r;
        struct param ps[] = { P_TEXT(removed ? now : NULL), P_TEXT(ubrn), P_TEXT(source_ubrn), P_TEXT(key) };
        r = run(p, ST_ATTACHMENT_REMOVED, ps, 4, NULL, NULL, e);
        if (r < 0)
                return err_prefix(e, r, "%s", ubrn);
        return 0;
}
