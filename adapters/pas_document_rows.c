/* SPDX-License-Identifier: MIT */
/*
 * A referral's document rows as stored, for `ersd remap`
 * (pas_document_rows.h): read whole, the columns the A005 answer gives set
 * again, a row's content read back part by part and checked against its
 * SHA-256.  Writes no part and no revision.  Not here: a sync's write of a
 * document (pas_document.c), the mapping (pas_mapping.c).
 */
#include "pas_document_rows.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "pas_internal.h"

#define SHA256_HEX 64

/* The row's texts in the order ST_DOCUMENT_ROWS reads them, from column TEXTS_FIRST on. */
#define TEXTS_FIRST 12
#define TEXTS_N     11
static void row_texts(struct document_row *w, char **ret[TEXTS_N]) {
        char **t[TEXTS_N] = {
                &w->attachment_id,        &w->not_fetched_reason, &w->title,   &w->content_type,  &w->availability,
                &w->attached_by_user,     &w->attached_by_org,    &w->created, &w->document_type, &w->description,
                &w->attached_on_behalf_of
        };

        memcpy(ret, t, sizeof t);
}

static void row_free(struct document_row *w) {
        char **t[TEXTS_N];

        row_texts(w, t);
        for (size_t i = 0; i < TEXTS_N; i++) {
                free(*t[i]);
                *t[i] = NULL;
        }
}

void document_rows_free(struct document_row *rows, size_t n) {
        for (size_t i = 0; rows && i < n; i++)
                row_free(&rows[i]);
        free(rows);
}

/* The current row of ST_DOCUMENT_ROWS into *w (zeroed first); its texts freed on failure. */
static int read_row(struct pas *p, SQLHSTMT h, const char *what, struct document_row *w, struct errbuf *e) {
        char kind[16] = "", status[32] = "";
        int64_t occurrence = 0;
        bool null = false;
        char **t[TEXTS_N];
        int r;

        *w = (struct document_row){ .declared_size = -1, .size = -1 };
        r = get_text(p, h, 1, what, w->document_id, sizeof w->document_id, NULL, e);
        if (r >= 0)
                r = get_text(p, h, 2, what, w->source_ubrn, sizeof w->source_ubrn, NULL, e);
        if (r >= 0)
                r = get_text(p, h, 3, what, kind, sizeof kind, NULL, e);
        if (r >= 0)
                r = get_int64(p, h, 4, what, &occurrence, NULL, e);
        if (r >= 0)
                r = get_int64(p, h, 5, what, &w->revision, NULL, e);
        if (r >= 0)
                r = get_int64(p, h, 6, what, &w->source_version, NULL, e);
        if (r >= 0)
                r = get_text(p, h, 7, what, status, sizeof status, NULL, e);
        if (r >= 0)
                r = get_int64(p, h, 8, what, &w->size, &null, e);
        if (r >= 0 && null)
                w->size = -1;
        if (r >= 0)
                r = get_text(p, h, 9, what, w->sha256, sizeof w->sha256, NULL, e);
        if (r >= 0)
                r = get_int64(p, h, 10, what, &w->part_count, NULL, e);
        if (r >= 0)
                r = get_int64(p, h, 11, what, &w->declared_size, &null, e);
        if (r >= 0 && null)
                w->declared_size = -1;
        /* The texts last, in column order: some drivers read long columns only so. */
        row_texts(w, t);
        for (size_t i = 0; i < TEXTS_N && r >= 0; i++)
                r = get_text_alloc(p, h, (SQLUSMALLINT) (TEXTS_FIRST + i), what, t[i], e);
        if (r >= 0 && !w->attachment_id && !(w->attachment_id = strdup("")))
                r = err_set(e, -ENOMEM, "out of memory");
        if (r < 0) {
                row_free(w);
                return r;
        }
        w->kind = strcmp(kind, "CRI") == 0 ? DOCUMENT_CRI : DOCUMENT_ATTACHMENT;
        w->occurrence = (unsigned) occurrence;
        w->fetched = strcmp(status, "FETCHED") == 0;
        return 0;
}

int pas_document_rows(struct pas *p, const char *ubrn, struct document_row **ret, size_t *ret_n, struct errbuf *e) {
        const char *what = statements[ST_DOCUMENT_ROWS].what;
        struct document_row *list = NULL; /* owned until handed over */
        SQLHSTMT h = SQL_NULL_HSTMT;
        size_t n = 0, cap = 0;
        int r;

        r = run_for_ubrn(p, ST_DOCUMENT_ROWS, ubrn, &h, e);
        if (r < 0)
                return r;
        while ((r = fetch(p, h, what, e)) > 0) {
                r = grow(&list, &cap, n, sizeof *list, e);
                if (r >= 0)
                        r = read_row(p, h, what, &list[n], e);
                if (r < 0)
                        break;
                n++;
        }
        stmt_close(h);
        if (r < 0) {
                document_rows_free(list, n);
                return err_prefix(e, r, "%s", ubrn);
        }
        return list_hand_over(r, list, n, (void **) ret, ret_n);
}

int pas_document_set_described(struct pas_tx *tx, const char *document_id, const struct document_rec *d,
                               struct errbuf *e) {
        struct param ps[] = {
                P_DOCUMENT_DESCRIBED(d),
                P_TEXT(document_id),
        };
        SQLLEN rows = 0;
        int r = run(tx_pas(tx), ST_DOCUMENT_DESCRIBED, ps, sizeof ps / sizeof ps[0], NULL, &rows, e);

        if (r >= 0 && rows != 1)
                r = err_set(e, -ESTALE, "%s: document %s: %ld rows, not 1", statements[ST_DOCUMENT_DESCRIBED].what,
                            document_id, (long) rows);
        return r;
}

/* Writes n bytes at offset off of fd.  0 or a negative errno with one line in e. */
static int write_at(int fd, const unsigned char *b, size_t n, int64_t off, struct errbuf *e) {
        size_t done = 0;

        while (done < n) {
                ssize_t w = pwrite(fd, b + done, n - done, (off_t) (off + (int64_t) done));
                if (w < 0 && errno == EINTR)
                        continue;
                if (w < 0)
                        return err_set(e, -errno, "cannot write a document's content to a temporary file: %s",
                                       strerror(errno));
                done += (size_t) w;
        }
        return 0;
}

int pas_document_content(struct pas *p, const struct document_row *row, int fd, struct errbuf *e) {
        const char *what = statements[ST_PART_GET].what;
        EVP_MD_CTX *md = NULL;
        unsigned char digest[32];
        char hex[SHA256_HEX + 1];
        int64_t off = 0;
        int r = 0;

        if (!row->fetched || row->size < 0 || row->part_count < 0 || strlen(row->sha256) != SHA256_HEX)
                return err_set(e, -EINVAL, "document %s: no content recorded", row->document_id);
        if (ftruncate(fd, 0) < 0)
                return err_set(e, -errno, "cannot empty a temporary file: %s", strerror(errno));
        md = EVP_MD_CTX_new();
        if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
                r = err_set(e, -ENOMEM, "cannot start SHA-256");
                goto out;
        }
        for (int64_t seq = 1; seq <= row->part_count && r >= 0; seq++) {
                struct param ps[] = { P_TEXT(row->document_id), P_INT(seq) };
                SQLHSTMT h = SQL_NULL_HSTMT;
                unsigned char *b = NULL; /* owned */
                size_t n = 0;

                r = run(p, ST_PART_GET, ps, 2, &h, NULL, e);
                if (r < 0)
                        break;
                r = fetch(p, h, what, e);
                if (r == 0)
                        r = err_set(e, -EBADMSG, "%s: part %lld of %lld missing", what, (long long) seq,
                                    (long long) row->part_count);
                if (r > 0)
                        r = get_bytes_alloc(p, h, 1, what, PAS_PART_MAX, &b, &n, e);
                stmt_close(h);
                if (r >= 0 && off + (int64_t) n > row->size)
                        r = err_set(e, -EBADMSG, "%s: the parts hold more than the %lld bytes recorded", what,
                                    (long long) row->size);
                if (r >= 0 && n > 0 && EVP_DigestUpdate(md, b, n) != 1)
                        r = err_set(e, -EIO, "SHA-256 failed");
                if (r >= 0)
                        r = write_at(fd, b, n, off, e);
                free(b);
                off += (int64_t) n;
        }
        if (r >= 0 && off != row->size)
                r = err_set(e, -EBADMSG, "%s: the parts hold %lld bytes, not the %lld recorded", what, (long long) off,
                            (long long) row->size);
        if (r >= 0 && EVP_DigestFinal_ex(md, digest, NULL) != 1)
                r = err_set(e, -EIO, "SHA-256 failed");
        if (r >= 0) {
                hex_encode(digest, sizeof digest, hex);
                if (strcasecmp(hex, row->sha256) != 0)
                        r = err_set(e, -EBADMSG, "%s: the parts' SHA-256 is %.12s…, not the %.12s… recorded", what, hex,
                                    row->sha256);
        }
out:
        EVP_MD_CTX_free(md);
        if (r < 0)
                return err_prefix(e, r, "row %s", row->document_id);
        return 0;
}
