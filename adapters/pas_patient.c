/* SPDX-License-Identifier: MIT */
/*
 * Patient matching (pas_patient.h): the operator's lookup statement,
 * prepared when set and run by NHS number outside a transaction; the outcome
 * written on the referral's row inside one; and the referrals whose patient
 * is still to be found, for re-matching.  The NHS number and the PAS patient
 * id are PATIENT IDENTIFIERS: bound, never in an error line.  Not here: when
 * a referral is matched (daemon/write.c, daemon/sync.c).
 */
#include "pas_patient.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "pas_internal.h"

const char *patient_match_name(enum patient_match_status s) {
        switch (s) {
        case PATIENT_MATCHED:
                return "MATCHED";
        case PATIENT_UNMATCHED:
                return "UNMATCHED";
        case PATIENT_AMBIGUOUS:
                return "AMBIGUOUS";
        case PATIENT_NOT_CONFIGURED:
        default:
                return "NOT_CONFIGURED";
        }
}

int pas_set_patient_lookup(struct pas *p, const char *sql, struct errbuf *e) {
        const char *what = statements[ST_PATIENT_LOOKUP].what;
        SQLSMALLINT params = -1, columns = -1;
        SQLHSTMT h = SQL_NULL_HSTMT;
        int r;

        if (p->in_tx)
                return err_set(e, -EINVAL, "%s: a transaction is open", what);
        if (p->stmt[ST_PATIENT_LOOKUP] != SQL_NULL_HSTMT) {
                SQLFreeStmt(p->stmt[ST_PATIENT_LOOKUP], SQL_CLOSE);
                SQLFreeHandle(SQL_HANDLE_STMT, p->stmt[ST_PATIENT_LOOKUP]);
                p->stmt[ST_PATIENT_LOOKUP] = SQL_NULL_HSTMT;
        }
        free(p->lookup_sql);
        p->lookup_sql = NULL;
        if (!sql)
                return 0;
        p->lookup_sql = strdup(sql);
        if (!p->lookup_sql)
                return err_set(e, -ENOMEM, "out of memory");

        /* Prepared now, so that the database judges it at start; describing
         * it makes drivers that defer the prepare (psqlodbc) send it. */
        r = stmt_get(p, ST_PATIENT_LOOKUP, &h, e);
        if (r >= 0 && !SQL_SUCCEEDED(SQLNumParams(h, &params)))
                r = diag_stmt(p, h, what, e);
        if (r >= 0 && !SQL_SUCCEEDED(SQLNumResultCols(h, &columns)))
                r = diag_stmt(p, h, what, e);
        if (r >= 0 && params != 1)
                r = err_set(e, -EINVAL, "%s: has %d parameter markers; it needs exactly one (the NHS number)", what,
                            (int) params);
        if (r >= 0 && columns < 1)
                r = err_set(e, -EINVAL, "%s: returns no column (is it a SELECT?); it must return the PAS patient id",
                            what);
        if (r >= 0 && columns > 1)
                r = err_set(e, -EINVAL, "%s: returns %d columns; it must return the PAS patient id only", what,
                            (int) columns);
        if (h != SQL_NULL_HSTMT)
                SQLFreeStmt(h, SQL_CLOSE); /* psqlodbc keeps what describing fetched until then */
        if (r < 0) {
                if (p->stmt[ST_PATIENT_LOOKUP] != SQL_NULL_HSTMT)
                        SQLFreeHandle(SQL_HANDLE_STMT, p->stmt[ST_PATIENT_LOOKUP]);
                p->stmt[ST_PATIENT_LOOKUP] = SQL_NULL_HSTMT;
                free(p->lookup_sql);
                p->lookup_sql = NULL;
        }
        return r;
}

int pas_match_patient(struct pas *p, const char *nhs_number, struct patient_match *ret, struct errbuf *e) {
        const char *what = statements[ST_PATIENT_LOOKUP].what;
        struct patient_match m = { .status = PATIENT_NOT_CONFIGURED };
        char id[PAS_PATIENT_ID_MAX + 1];
        SQLHSTMT h = SQL_NULL_HSTMT;
        int r = 0;

        if (!p->lookup_sql) {
                *ret = m;
                return 0;
        }
        m.status = PATIENT_UNMATCHED;
        if (!nhs_number || !nhs_number_valid(nhs_number)) {
                *ret = m; /* a number that fails modulus 11 is nobody's: no lookup */
                return 0;
        }
        struct param ps[] = { P_TEXT(nhs_number) };
        r = run(p, ST_PATIENT_LOOKUP, ps, 1, &h, NULL, e);
        if (r < 0)
                return r;
        while ((r = fetch(p, h, what, e)) > 0) {
                bool null = false;

                r = get_text(p, h, 1, what, id, sizeof id, &null, e);
                if (r < 0)
                        break;
                if (null || !id[0])
                        continue;
                if (m.status == PATIENT_UNMATCHED) {
                        m.status = PATIENT_MATCHED;
                        memcpy(m.pas_patient_id, id, sizeof id);
                } else if (strcmp(m.pas_patient_id, id) != 0) {
                        m.status = PATIENT_AMBIGUOUS;
                        m.pas_patient_id[0] = '\0';
                        break;
                }
        }
        stmt_close(h);
        if (r < 0)
                return r;
        *ret = m;
        return 0;
}

int pas_put_patient_match(struct pas_tx *tx, const char *ubrn, const struct patient_match *m, struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        const char *now = tx_time(tx);
        int r;

        r = check_ubrn(ubrn, "patient match", e);
        if (r < 0)
                return r;
        struct param ps[] = {
                P_TEXT(m->status == PATIENT_MATCHED ? m->pas_patient_id : NULL),
                P_TEXT(patient_match_name(m->status)),
                P_TEXT(now),
                P_TEXT(ubrn),
        };
        r = run(p, ST_PATIENT_UPDATE, ps, 4, NULL, NULL, e);
        if (r < 0)
                return err_prefix(e, r, "%s", ubrn);
        return 0;
}

int pas_patients_to_rematch(struct pas *p, const char *before, size_t max, struct patient_rematch **ret,
                            size_t *ret_n, struct errbuf *e) {
        const char *what = statements[ST_PATIENT_REMATCH].what;
        struct patient_rematch *list = NULL;
        struct param ps[] = { P_TEXT(before) };
        SQLHSTMT h = SQL_NULL_HSTMT;
        size_t n = 0;
        int r;

        if (max == 0) {
                *ret = NULL;
                *ret_n = 0;
                return 0;
        }
        list = calloc(max, sizeof *list);
        if (!list)
                return err_set(e, -ENOMEM, "out of memory");
        r = run(p, ST_PATIENT_REMATCH, ps, 1, &h, NULL, e);
        if (r < 0)
                goto out;
        while (n < max && (r = fetch(p, h, what, e)) > 0) {
                r = get_text(p, h, 1, what, list[n].ubrn, sizeof list[n].ubrn, NULL, e);
                if (r >= 0)
                        r = get_text(p, h, 2, what, list[n].nhs_number, sizeof list[n].nhs_number, NULL, e);
                if (r >= 0)
                        r = get_text(p, h, 3, what, list[n].patient_match, sizeof list[n].patient_match, NULL, e);
                if (r >= 0)
                        r = get_int64(p, h, 4, what, &list[n].version, NULL, e);
                if (r < 0)
                        break;
                n++;
        }
        stmt_close(h);
out:
        return list_hand_over(r, list, n, (void **) ret, ret_n);
}
