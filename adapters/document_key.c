/* SPDX-License-Identifier: MIT */
/*
 * The attachment key of a document (document_key.h), and the C step of the
 * upgrade to schema version 4 that fills it in for the rows written before.
 */
#include "document_key.h"

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "../daemon/util.h"
#include "odbc.h"

int document_key(const char *attachment_id, unsigned occurrence, char ret[DOCUMENT_KEY_HEX + 1]) {
        unsigned char digest[32];
        char suffix[16] = ""; /* "\0" and the occurrence in decimal */
        size_t suffix_len = 0;
        EVP_MD_CTX *md;
        bool ok;

        if (!attachment_id)
                return -EINVAL;
        if (occurrence > 0)
                suffix_len = 1 + (size_t) snprintf(suffix + 1, sizeof suffix - 1, "%u", occurrence);
        md = EVP_MD_CTX_new();
        if (!md)
                return -ENOMEM;
        ok = EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 &&
             EVP_DigestUpdate(md, attachment_id, strlen(attachment_id)) == 1 &&
             (suffix_len == 0 || EVP_DigestUpdate(md, suffix, suffix_len) == 1) &&
             EVP_DigestFinal_ex(md, digest, NULL) == 1;
        EVP_MD_CTX_free(md);
        if (!ok)
                return -EIO;
        hex_encode(digest, sizeof digest, ret);
        return 0;
}

/* The rows of one slice that still need their key. */
struct key_row {
        char *document_id;   /* owned */
        char *attachment_id; /* owned */
        unsigned occurrence;
};

struct key_rows {
        struct key_row *list; /* owned, with its strings */
        size_t n, cap;
};

static void key_rows_clear(struct key_rows *k) {
        for (size_t i = 0; i < k->n; i++) {
                free(k->list[i].document_id);
                free(k->list[i].attachment_id);
        }
        k->n = 0;
}

/* odbc_run_texts() row callback: keeps (document_id, attachment_id, occurrence). */
static int key_row_add(void *userdata, char *const *cols) {
        struct key_rows *k = userdata;
        char *end = NULL;
        unsigned long occurrence;

        if (!cols[0] || !cols[1] || !cols[2])
                return -EPROTO; /* NOT NULL columns */
        errno = 0;
        occurrence = strtoul(cols[2], &end, 10);
        if (errno || end == cols[2] || *end || occurrence > 0xffffffffUL)
                return -EPROTO;
        if (k->n == k->cap) {
                size_t cap = k->cap ? k->cap * 2 : 256;
                struct key_row *more = realloc(k->list, cap * sizeof *more);
                if (!more)
                        return -ENOMEM;
                k->list = more;
                k->cap = cap;
        }
        struct key_row *row = &k->list[k->n];
        row->document_id = strdup(cols[0]);
        row->attachment_id = strdup(cols[1]);
        row->occurrence = (unsigned) occurrence;
        if (!row->document_id || !row->attachment_id) {
                free(row->document_id);
                free(row->attachment_id);
                return -ENOMEM;
        }
        k->n++;
        return 0;
}

#define KEY_SELECT "SELECT document_id, attachment_id, occurrence FROM ers_document WHERE attachment_key IS NULL"

/* Reads the rows without a key whose document_id lies in [from, to) (both
 * NULL: every one left), then stores each one's key. */
static int fill_slice(struct pas *p, const char *from, const char *to, struct key_rows *k, struct errbuf *e) {
        const char *range[] = { from, to };
        int r;

        key_rows_clear(k);
        if (from)
                r = odbc_run_texts(p, "read ers_document for its attachment keys",
                                   KEY_SELECT " AND document_id >= ? AND document_id < ?", range, 2, 3, key_row_add, k,
                                   e);
        else
                r = odbc_run_texts(p, "read ers_document for its attachment keys", KEY_SELECT, NULL, 0, 3,
                                   key_row_add, k, e);
        if (r == -EPROTO || r == -ENOMEM)
                return err_set(e, r, "read ers_document for its attachment keys: %s",
                               r == -ENOMEM ? "out of memory" : "a row without its id or occurrence");
        for (size_t i = 0; r >= 0 && i < k->n; i++) {
                char key[DOCUMENT_KEY_HEX + 1];
                const char *ps[2] = { key, k->list[i].document_id };

                r = document_key(k->list[i].attachment_id, k->list[i].occurrence, key);
                if (r < 0)
                        return err_set(e, r, "cannot compute an attachment key (SHA-256)");
                r = odbc_run_texts(p, "store an attachment key",
                                   "UPDATE ers_document SET attachment_key = ? WHERE document_id = ?", ps, 2, 0, NULL,
                                   NULL, e);
        }
        return r;
}

int document_key_fill(struct pas *p, struct errbuf *e) {
        static const char bounds[] = "0123456789abcdefg"; /* the first character of a document id (a UUID) */
        struct key_rows k = { .list = NULL };
        int r = 0;

        for (size_t i = 0; r >= 0 && i + 1 < sizeof bounds - 1; i++) {
                char from[2] = { bounds[i], '\0' }, to[2] = { bounds[i + 1], '\0' };
                r = fill_slice(p, from, to, &k, e);
        }
        if (r >= 0)
                r = fill_slice(p, NULL, NULL, &k, e); /* ids that are not UUIDs (written by hand) */
        key_rows_clear(&k);
        free(k.list);
        return r;
}
