/* SPDX-License-Identifier: MIT */
/*
 * Each A005 answer as received (pas_answer.h): kept in ers_referral_answer,
 * one row per (ubrn, version, SHA-256 of the bytes), the bytes in one BLOB;
 * listed and read back for the commands that work from what is kept.  Not
 * here: where the bytes come from (daemon/ers.c, daemon/fetch.c), when they
 * are written (daemon/write.c: in the referral's transaction).
 */
#include "pas_answer.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../daemon/util.h"
#include "pas_internal.h"

#define SHA256_HEX 64

int pas_answer_put(struct pas_tx *tx, const char *ubrn, int64_t version, const struct referral_answer *a,
                   bool *ret_written, char *ret_sha256, struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        char sha[SHA256_HEX + 1];
        int64_t n = 0;
        int r;

        if (ret_written)
                *ret_written = false;
        r = check_ubrn(ubrn, "answer", e);
        if (r < 0)
                return r;
        if (version < 0)
                return err_set(e, -EINVAL, "answer of %s: no version", ubrn);
        if (!a || !a->bytes || a->len == 0)
                return err_set(e, -EINVAL, "answer of %s: no bytes", ubrn);
        if (a->len > PAS_ANSWER_MAX)
                return err_set(e, -EINVAL, "answer of %s: %zu bytes, more than the %d kept", ubrn, a->len,
                               PAS_ANSWER_MAX);
        if (sha256_hex_of(a->bytes, a->len, sha) < 0)
                return err_set(e, -EIO, "answer of %s: cannot compute its SHA-256", ubrn);
        if (ret_sha256)
                memcpy(ret_sha256, sha, sizeof sha);

        struct param key[] = { P_TEXT(ubrn), P_INT(version), P_TEXT(sha) };
        bool found = false;

        r = query_int(p, ST_ANSWER_HAS, key, 3, &n, &found, e);
        if (r < 0)
                return err_prefix(e, r, "%s", ubrn);
        if (n > 0) /* these very bytes are kept already: the rows come from them now */
                return pas_answer_derived(tx, ubrn, version, sha, e);
        struct param ps[] = {
                P_TEXT(ubrn),
                P_INT(version),
                P_TEXT(sha),
                P_INT((int64_t) a->len),
                P_BLOB(a->bytes, a->len),
                P_TEXT(a->correlation_id[0] ? a->correlation_id : NULL),
                P_TEXT(a->received_at[0] ? a->received_at : tx_time(tx)),
        };
        r = run(p, ST_ANSWER_INSERT, ps, 7, NULL, NULL, e);
        if (r < 0)
                return err_prefix(e, r, "%s", ubrn);
        if (ret_written)
                *ret_written = true;
        return pas_answer_derived(tx, ubrn, version, sha, e);
}

int pas_answer_derived(struct pas_tx *tx, const char *ubrn, int64_t version, const char *sha256,
                       struct errbuf *e) {
        struct param ps[] = { P_TEXT(sha256), P_TEXT(ubrn), P_INT(version) };
        int r = run(tx_pas(tx), ST_ANSWER_DERIVED, ps, 3, NULL, NULL, e);

        return r < 0 ? err_prefix(e, r, "%s", ubrn) : 0;
}

int pas_answer_current(struct pas *p, const char *ubrn, int64_t *ret_version, char ret_sha256[65],
                       struct errbuf *e) {
        const char *what = statements[ST_ANSWER_CURRENT].what;
        SQLHSTMT h = SQL_NULL_HSTMT;
        char sha[SHA256_HEX + 1] = "";
        int64_t version = -1;
        int r;

        r = run_for_ubrn(p, ST_ANSWER_CURRENT, ubrn, &h, e);
        if (r < 0)
                return r;
        r = fetch(p, h, what, e);
        if (r > 0) {
                r = get_int64(p, h, 1, what, &version, NULL, e);
                if (r >= 0)
                        r = get_text(p, h, 2, what, sha, sizeof sha, NULL, e);
        }
        stmt_close(h);
        if (r < 0)
                return err_prefix(e, r, "%s", ubrn);
        *ret_version = version;
        memcpy(ret_sha256, sha, sizeof sha);
        return 0;
}

int pas_answers_kept(struct pas *p, const char *ubrn, struct answer_kept **ret, size_t *ret_n, struct errbuf *e) {
        const char *what = statements[ST_ANSWER_LIST].what;
        struct answer_kept *list = NULL;
        SQLHSTMT h = SQL_NULL_HSTMT;
        size_t n = 0, cap = 0;
        int r;

        r = run_for_ubrn(p, ST_ANSWER_LIST, ubrn, &h, e);
        if (r < 0)
                return r;
        while ((r = fetch(p, h, what, e)) > 0) {
                r = grow(&list, &cap, n, sizeof *list, e);
                if (r < 0)
                        break;
                struct answer_kept *k = &list[n];
                *k = (struct answer_kept){ .version = 0 };
                const struct text_col cols[] = { TEXT_COL(k->sha256) };
                r = get_int64(p, h, 1, what, &k->version, NULL, e);
                if (r >= 0)
                        r = get_texts(p, h, what, 2, cols, 1, e);
                if (r >= 0)
                        r = get_int64(p, h, 3, what, &k->size, NULL, e);
                if (r >= 0)
                        r = get_text(p, h, 4, what, k->correlation_id, sizeof k->correlation_id, NULL, e);
                if (r >= 0)
                        r = get_text(p, h, 5, what, k->received_at, sizeof k->received_at, NULL, e);
                if (r < 0)
                        break;
                n++;
        }
        stmt_close(h);
        if (r < 0)
                err_prefix(e, r, "%s", ubrn);
        return list_hand_over(r, list, n, (void **) ret, ret_n);
}

int pas_answer_get(struct pas *p, const char *ubrn, int64_t version, const char *sha256,
                   struct referral_answer *ret, struct errbuf *e) {
        const char *what = statements[ST_ANSWER_GET].what;
        struct referral_answer a = { .bytes = NULL };
        struct param ps[] = { P_TEXT(ubrn), P_INT(version), P_TEXT(sha256) };
        SQLHSTMT h = SQL_NULL_HSTMT;
        char sha[SHA256_HEX + 1];
        int64_t size = 0;
        int r;

        r = check_ubrn(ubrn, what, e);
        if (r < 0)
                return r;
        if (!sha256 || strlen(sha256) != SHA256_HEX)
                return err_set(e, -EINVAL, "%s: not a SHA-256", what);
        r = run(p, ST_ANSWER_GET, ps, 3, &h, NULL, e);
        if (r < 0)
                return err_prefix(e, r, "%s", ubrn);
        r = fetch(p, h, what, e);
        if (r == 0)
                r = err_set(e, -ENOENT, "%s: no answer of version %lld with that SHA-256", what, (long long) version);
        if (r > 0)
                r = get_int64(p, h, 1, what, &size, NULL, e);
        if (r >= 0)
                r = get_bytes_alloc(p, h, 2, what, PAS_ANSWER_MAX, &a.bytes, &a.len, e);
        if (r >= 0)
                r = get_text(p, h, 3, what, a.correlation_id, sizeof a.correlation_id, NULL, e);
        if (r >= 0)
                r = get_text(p, h, 4, what, a.received_at, sizeof a.received_at, NULL, e);
        stmt_close(h);
        if (r >= 0 && (!a.bytes || (int64_t) a.len != size || sha256_hex_of(a.bytes, a.len, sha) < 0 ||
                       strcmp(sha, sha256) != 0))
                r = err_set(e, -EBADMSG, "%s: the bytes read back are not those kept (%zu bytes, size_bytes %lld)",
                            what, a.len, (long long) size);
        if (r < 0) {
                referral_answer_free(&a);
                return err_prefix(e, r, "%s", ubrn);
        }
        *ret = a;
        return 0;
}

int pas_answer_referrals(struct pas *p, char (**ret)[UBRN_LEN + 1], size_t *ret_n, struct errbuf *e) {
        SQLHSTMT h = SQL_NULL_HSTMT;
        int r = run(p, ST_ANSWER_REFERRALS, NULL, 0, &h, NULL, e);

        return r < 0 ? r : fetch_ubrns(p, h, statements[ST_ANSWER_REFERRALS].what, ret, ret_n, e);
}
