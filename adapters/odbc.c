/* SPDX-License-Identifier: MIT */
/*
 * The ODBC plumbing of the PAS target, the same for every vendor: a driver's
 * diagnostics made one line (the SQLSTATE, classified to an errno, 10-digit
 * numbers redacted), the cache of prepared statements, binding, running and
 * reading rows (pas_internal.h, for the pas_*.c files), and what the adapters
 * use (odbc.h): statements without the cache and connection-string
 * attributes; and the catalog look-up.  Not here: any statement's SQL
 * (pas_sql.c), what the PAS holds, by concern (pas_*.c), connecting
 * (pas_conn.c), what differs between vendors (adapter.h, <vendor>.c).
 *
 * Statements the sync repeats are prepared once per connection and cached
 * (they survive commit and rollback when the driver says so through
 * SQL_CURSOR_COMMIT_BEHAVIOR / SQL_CURSOR_ROLLBACK_BEHAVIOR; otherwise the
 * cache is dropped at the end of each transaction).  Every parameter is bound
 * with an explicit length; no value is ever formatted into SQL or into an
 * error line.
 */
#include "odbc.h"

#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include <sql.h>
#include <sqlext.h>

#include "adapter.h"
#include "pas_internal.h"

#define TEXT_LONG_MIN 4000     /* bind longer text as SQL_LONGVARCHAR */

/* ---------------------------------------------------------------------- */
/* Diagnostics.                                                            */

static bool is_redactable_digits(const char *s, size_t *ret_len) {
        /* exactly 10 digits, or 3-3-4 separated by single spaces, not inside a longer number */
        size_t i = 0, digits = 0;

        while (s[i] && digits < 10) {
                if (isdigit((unsigned char) s[i])) {
                        digits++;
                        i++;
                } else if (s[i] == ' ' && (digits == 3 || digits == 6) && i > 0 && s[i - 1] != ' ' &&
                           isdigit((unsigned char) s[i + 1]))
                        i++;
                else
                        break;
        }
        if (digits != 10 || isdigit((unsigned char) s[i]))
                return false;
        /* spaced form must be exactly 3-3-4, compact form exactly 10 */
        if (i != 10 && i != 12)
                return false;
        if (i == 12 && (s[3] != ' ' || s[7] != ' '))
                return false;
        *ret_len = i;
        return true;
}

void odbc_clean_message(const char *message, char *ret, size_t n) {
        const char *s = message ? message : "";
        size_t o = 0;
        static const char redacted[] = "<redacted>";
        size_t limit;

        if (n == 0)
                return;
        limit = n - 1 < ODBC_MESSAGE_MAX ? n - 1 : ODBC_MESSAGE_MAX;

        /* drop "[unixODBC][Driver Manager]" / "[SQLite]" style tags */
        while (*s == '[') {
                const char *close = strchr(s, ']');
                if (!close)
                        break;
                s = close + 1;
        }
        while (*s == ' ')
                s++;

        for (size_t i = 0; s[i] && s[i] != '\n' && s[i] != '\r';) {
                size_t len;

                if ((i == 0 || !isdigit((unsigned char) s[i - 1])) && is_redactable_digits(s + i, &len)) {
                        if (o + sizeof redacted - 1 > limit)
                                break;
                        memcpy(ret + o, redacted, sizeof redacted - 1);
                        o += sizeof redacted - 1;
                        i += len;
                        continue;
                }
                /* copy one UTF-8 sequence whole, or stop */
                len = 1;
                while (((unsigned char) s[i + len] & 0xc0) == 0x80)
                        len++;
                if (o + len > limit)
                        break;
                memcpy(ret + o, s + i, len);
                o += len;
                i += len;
        }
        while (o > 0 && ret[o - 1] == ' ')
                o--;
        ret[o] = '\0';
}

int odbc_classify_sqlstate(const char *st, bool in_commit) {
        if (strcmp(st, "40001") == 0 || strcmp(st, "40P01") == 0)
                return -EAGAIN; /* serialization failure, deadlock: rolled back */
        if (strcmp(st, "08007") == 0)
                return -EINPROGRESS; /* connection failure during transaction */
        if (strcmp(st, "08S01") == 0 || strcmp(st, "HYT01") == 0 || strcmp(st, "40003") == 0)
                return in_commit ? -EINPROGRESS : -ENOTCONN;
        if (strcmp(st, "HY008") == 0 || strcmp(st, "HYT00") == 0)
                return in_commit ? -EINPROGRESS : -EAGAIN; /* cancelled, timed out */
        if (strncmp(st, "08", 2) == 0)
                return -ENOTCONN;
        return -EIO;
}

int diag(const struct adapter *a, SQLSMALLINT type, SQLHANDLE h, bool in_commit, const char *what,
         struct errbuf *e) {
        SQLCHAR state[6] = "", first_state[6] = "";
        SQLCHAR text[1024], first_text[1024] = "";
        SQLINTEGER native = 0, first_native = 0;
        SQLSMALLINT len;
        char clean[ODBC_MESSAGE_MAX + 1];
        bool found = false;
        int r = 0;

        for (SQLSMALLINT i = 1; i <= 16; i++) {
                SQLRETURN rc = SQLGetDiagRec(type, h, i, state, &native, text, sizeof text, &len);
                if (!SQL_SUCCEEDED(rc))
                        break;
                if (i == 1 || strncmp((char *) state, "01", 2) != 0) {
                        memcpy(first_state, state, sizeof state);
                        memcpy(first_text, text, sizeof text);
                        first_native = native;
                        found = true;
                        if (strncmp((char *) state, "01", 2) != 0)
                                break;
                }
        }
        if (!found)
                return err_set(e, -EIO, "%s: failed without a diagnostic record", what);

        if (a)
                r = a->ops->classify((char *) first_state, (long) first_native, (char *) first_text,
                                     in_commit);
        if (r == 0)
                r = odbc_classify_sqlstate((char *) first_state, in_commit);
        odbc_clean_message((char *) first_text, clean, sizeof clean);
        return err_set(e, r, "%s: SQLSTATE %.5s: %s", what, (char *) first_state, clean);
}

/* A connection that failed this way is not used again before pas_reconnect(). */
static int note_lost(struct pas *p, int r) {
        if (r == -ENOTCONN || r == -EINPROGRESS)
                p->lost = true;
        return r;
}

int diag_stmt(struct pas *p, SQLHSTMT h, const char *what, struct errbuf *e) {
        return note_lost(p, diag(p->adapter, SQL_HANDLE_STMT, h, false, what, e));
}

int diag_dbc(struct pas *p, bool in_commit, const char *what, struct errbuf *e) {
        return note_lost(p, diag(p->adapter, SQL_HANDLE_DBC, p->dbc, in_commit, what, e));
}

/* ---------------------------------------------------------------------- */
/* Statements and parameters.                                              */

static bool ascii_only(const char *s) {
        for (; s && *s; s++)
                if ((unsigned char) *s >= 0x80)
                        return false;
        return true;
}

void stmt_drop_all(struct pas *p) {
        for (size_t i = 0; i < ST_MAX_; i++)
                if (p->stmt[i] != SQL_NULL_HSTMT) {
                        /* closed first: psqlodbc 13 leaks a described, never-executed
                         * statement's column information otherwise */
                        SQLFreeStmt(p->stmt[i], SQL_CLOSE);
                        SQLFreeHandle(SQL_HANDLE_STMT, p->stmt[i]);
                        p->stmt[i] = SQL_NULL_HSTMT;
                }
}

int stmt_get(struct pas *p, enum stmt_id id, SQLHSTMT *ret, struct errbuf *e) {
        SQLHSTMT h = SQL_NULL_HSTMT;
        SQLRETURN rc;
        int r;

        const char *sql = id == ST_PATIENT_LOOKUP   ? p->lookup_sql
                          : id == ST_MAP_REFERRAL ? p->map[PAS_MAP_REFERRAL].sql
                          : id == ST_MAP_DOCUMENT ? p->map[PAS_MAP_DOCUMENT].sql
                                                  : statements[id].sql;

        if (p->stmt[id] != SQL_NULL_HSTMT) {
                *ret = p->stmt[id];
                return 0;
        }
        if (!sql)
                return err_set(e, -EINVAL, "%s: no statement", statements[id].what);
        rc = SQLAllocHandle(SQL_HANDLE_STMT, p->dbc, &h);
        if (!SQL_SUCCEEDED(rc))
                return diag_dbc(p, false, statements[id].what, e);
        rc = SQLPrepare(h, (SQLCHAR *) sql, SQL_NTS);
        if (!SQL_SUCCEEDED(rc)) {
                r = diag_stmt(p, h, statements[id].what, e);
                SQLFreeHandle(SQL_HANDLE_STMT, h);
                return r;
        }
        p->stmt[id] = h;
        *ret = h;
        return 0;
}

static int bind_params(struct pas *p, SQLHSTMT h, const char *what, struct param *ps, size_t n,
                       struct errbuf *e) {
        for (size_t i = 0; i < n; i++) {
                struct param *q = &ps[i];
                SQLUSMALLINT no = (SQLUSMALLINT) (i + 1);
                SQLRETURN rc;

                switch (q->ctype) {
                case SQL_C_CHAR: {
                        size_t len = q->ptr ? strlen(q->ptr) : 0;
                        bool national = p->adapter && p->adapter->national_text && !ascii_only(q->ptr);
                        SQLSMALLINT type = (SQLSMALLINT) (len > TEXT_LONG_MIN
                                                                  ? (national ? SQL_WLONGVARCHAR : SQL_LONGVARCHAR)
                                                                  : (national ? SQL_WVARCHAR : SQL_VARCHAR));
                        q->ind = q->ptr ? (SQLLEN) len : SQL_NULL_DATA;
                        rc = SQLBindParameter(h, no, SQL_PARAM_INPUT, SQL_C_CHAR, type, len ? len : 1, 0,
                                              (SQLPOINTER) q->ptr, (SQLLEN) len, &q->ind);
                        break;
                }
                case SQL_C_SBIGINT:
                        q->ind = q->null ? SQL_NULL_DATA : 0;
                        rc = SQLBindParameter(h, no, SQL_PARAM_INPUT, SQL_C_SBIGINT, SQL_BIGINT, 0, 0, &q->i,
                                              0, &q->ind);
                        break;
                case SQL_C_BINARY:
                        if (q->stream) {
                                /* sent by put_streams(); the parameter itself is the token */
                                q->ind = q->null ? SQL_NULL_DATA : (SQLLEN) SQL_LEN_DATA_AT_EXEC(q->len);
                                rc = SQLBindParameter(h, no, SQL_PARAM_INPUT, SQL_C_BINARY, SQL_LONGVARBINARY,
                                                      q->len ? (SQLULEN) q->len : 1, 0, (SQLPOINTER) q, 0, &q->ind);
                                break;
                        }
                        q->ind = q->len;
                        rc = SQLBindParameter(h, no, SQL_PARAM_INPUT, SQL_C_BINARY, SQL_LONGVARBINARY,
                                              q->len ? (SQLULEN) q->len : 1, 0, (SQLPOINTER) q->ptr, q->len,
                                              &q->ind);
                        break;
                default:
                        return err_set(e, -EINVAL, "%s: parameter %zu has no known type", what, i + 1);
                }
                if (!SQL_SUCCEEDED(rc))
                        return diag_stmt(p, h, what, e);
        }
        return 0;
}

void stmt_close(SQLHSTMT h) {
        SQLFreeStmt(h, SQL_CLOSE);
        SQLFreeStmt(h, SQL_RESET_PARAMS);
}

/*
 * Sends the stream parameters (P_STREAM) of a statement whose SQLExecute
 * answered SQL_NEED_DATA: each file in pieces of at most PAS_PART_MAX bytes
 * through one buffer, so that ersd holds one piece whatever the size (what
 * the driver holds is the driver's: docs/configuration.md).  *ret_rc gets
 * the statement's final return code.
 */
static int put_streams(struct pas *p, SQLHSTMT h, const char *what, SQLRETURN *ret_rc, struct errbuf *e) {
        SQLPOINTER token = NULL;
        SQLRETURN rc;

        if (!p->part) {
                p->part = malloc(PAS_PART_MAX);
                if (!p->part) {
                        SQLCancel(h);
                        return err_set(e, -ENOMEM, "out of memory for a document part");
                }
        }
        while ((rc = SQLParamData(h, &token)) == SQL_NEED_DATA) {
                const struct param *q = token;
                int64_t off = 0;

                if (q->len == 0 && !SQL_SUCCEEDED(SQLPutData(h, p->part, 0)))
                        return diag_stmt(p, h, what, e);
                while (off < (int64_t) q->len) {
                        size_t want = (int64_t) q->len - off < PAS_PART_MAX ? (size_t) ((int64_t) q->len - off)
                                                                           : PAS_PART_MAX;
                        ssize_t n = pread(q->fd, p->part, want, (off_t) off);

                        if (n < 0 && errno == EINTR)
                                continue;
                        if (n <= 0) {
                                int r = n < 0 ? -errno : -EBADMSG;
                                SQLCancel(h);
                                return err_set(e, r, "%s: spool file unreadable at byte %lld", what, (long long) off);
                        }
                        if (!SQL_SUCCEEDED(SQLPutData(h, p->part, (SQLLEN) n)))
                                return diag_stmt(p, h, what, e);
                        off += n;
                }
        }
        *ret_rc = rc;
        return 0;
}

int run(struct pas *p, enum stmt_id id, struct param *ps, size_t n, SQLHSTMT *ret_h, SQLLEN *ret_rows,
        struct errbuf *e) {
        const char *what = statements[id].what;
        SQLHSTMT h = SQL_NULL_HSTMT;
        SQLRETURN rc;
        SQLLEN rows = 0;
        int r;

        r = stmt_get(p, id, &h, e);
        if (r < 0)
                return r;
        r = bind_params(p, h, what, ps, n, e);
        if (r < 0)
                goto fail;
        rc = SQLExecute(h);
        p->statements++;
        if (rc == SQL_NEED_DATA) {
                r = put_streams(p, h, what, &rc, e);
                if (r < 0)
                        goto fail;
        }
        if (rc != SQL_NO_DATA && !SQL_SUCCEEDED(rc)) {
                r = diag_stmt(p, h, what, e);
                goto fail;
        }
        if (ret_h) {
                *ret_h = h;
                return 0;
        }
        if (rc != SQL_NO_DATA && ret_rows && !SQL_SUCCEEDED(SQLRowCount(h, &rows))) {
                r = diag_stmt(p, h, what, e);
                goto fail;
        }
        stmt_close(h);
        if (ret_rows)
                *ret_rows = rows;
        return 0;
fail:
        stmt_close(h);
        for (size_t i = 0; i < n; i++)
                if (ps[i].stream) {
                        /* A failed execution may leave what was sent with SQLPutData
                         * attached to the statement (MariaDB's driver then refuses
                         * every later execution): prepare it afresh next time. */
                        SQLCancel(h);
                        SQLFreeHandle(SQL_HANDLE_STMT, h);
                        p->stmt[id] = SQL_NULL_HSTMT;
                        break;
                }
        return r;
}

int fetch(struct pas *p, SQLHSTMT h, const char *what, struct errbuf *e) {
        SQLRETURN rc = SQLFetch(h);

        if (rc == SQL_NO_DATA)
                return 0;
        if (!SQL_SUCCEEDED(rc))
                return diag_stmt(p, h, what, e);
        return 1;
}

int get_int64(struct pas *p, SQLHSTMT h, SQLUSMALLINT col, const char *what, int64_t *ret,
              bool *ret_null, struct errbuf *e) {
        SQLBIGINT v = 0;
        SQLLEN ind = 0;

        if (!SQL_SUCCEEDED(SQLGetData(h, col, SQL_C_SBIGINT, &v, sizeof v, &ind)))
                return diag_stmt(p, h, what, e);
        if (ret_null)
                *ret_null = ind == SQL_NULL_DATA;
        *ret = ind == SQL_NULL_DATA ? 0 : (int64_t) v;
        return 0;
}

int get_text(struct pas *p, SQLHSTMT h, SQLUSMALLINT col, const char *what, char *ret, size_t n,
             bool *ret_null, struct errbuf *e) {
        SQLLEN ind = 0;
        SQLRETURN rc = SQLGetData(h, col, SQL_C_CHAR, ret, (SQLLEN) n, &ind);

        if (rc == SQL_NO_DATA)
                ind = SQL_NULL_DATA;
        else if (!SQL_SUCCEEDED(rc))
                return diag_stmt(p, h, what, e);
        if (ind == SQL_NULL_DATA || rc == SQL_NO_DATA)
                ret[0] = '\0';
        else if (ind == SQL_NO_TOTAL || ind >= (SQLLEN) n)
                return err_set(e, -EIO, "%s: column %u longer than %zu bytes", what, (unsigned) col, n - 1);
        if (ret_null)
                *ret_null = ind == SQL_NULL_DATA;
        return 0;
}

/* A column read whole in pieces with SQLGetData as `ctype` (SQL_C_CHAR: each
 * piece ends with a NUL the driver adds; SQL_C_BINARY: none), into a new
 * buffer with a NUL after it either way: *ret NULL for SQL NULL.  More than
 * `max` bytes is an error (-EFBIG), 0 for no bound. */
static int get_data_alloc(struct pas *p, SQLHSTMT h, SQLUSMALLINT col, const char *what, SQLSMALLINT ctype,
                          size_t max, char **ret, size_t *ret_len, struct errbuf *e) {
        size_t term = ctype == SQL_C_CHAR ? 1 : 0, cap = 512, len = 0;
        char *buf = malloc(cap);

        if (!buf)
                return err_set(e, -ENOMEM, "out of memory");
        for (;;) {
                SQLLEN ind = 0;
                /* binary data is read into all but the last byte, kept for the NUL after it */
                SQLRETURN rc = SQLGetData(h, col, ctype, buf + len, (SQLLEN) (cap - len - (1 - term)), &ind);

                if (rc == SQL_NO_DATA)
                        break; /* everything was read by the previous call */
                if (!SQL_SUCCEEDED(rc)) {
                        free(buf);
                        return diag_stmt(p, h, what, e);
                }
                if (ind == SQL_NULL_DATA) {
                        free(buf);
                        *ret = NULL;
                        *ret_len = 0;
                        return 0;
                }
                if (ind != SQL_NO_TOTAL && (size_t) ind <= cap - len - 1) {
                        len += (size_t) ind; /* the rest fitted */
                        break;
                }
                len = cap - 1; /* not all of it: the buffer is full but for its NUL */
                if (max > 0 && len > max) {
                        free(buf);
                        return err_set(e, -EFBIG, "%s: column %u longer than %zu bytes", what, (unsigned) col, max);
                }
                size_t want = cap * 2;
                if (ind != SQL_NO_TOTAL && (size_t) ind + len + 1 > want)
                        want = (size_t) ind + len + 1;
                char *bigger = realloc(buf, want);
                if (!bigger) {
                        free(buf);
                        return err_set(e, -ENOMEM, "out of memory");
                }
                buf = bigger;
                cap = want;
        }
        if (max > 0 && len > max) {
                free(buf);
                return err_set(e, -EFBIG, "%s: column %u longer than %zu bytes", what, (unsigned) col, max);
        }
        buf[len] = '\0';
        *ret = buf;
        *ret_len = len;
        return 0;
}

int get_text_alloc(struct pas *p, SQLHSTMT h, SQLUSMALLINT col, const char *what, char **ret,
                   struct errbuf *e) {
        size_t len;

        return get_data_alloc(p, h, col, what, SQL_C_CHAR, 0, ret, &len, e);
}

int get_bytes_alloc(struct pas *p, SQLHSTMT h, SQLUSMALLINT col, const char *what, size_t max, unsigned char **ret,
                    size_t *ret_len, struct errbuf *e) {
        char *buf = NULL;
        int r = get_data_alloc(p, h, col, what, SQL_C_BINARY, max, &buf, ret_len, e);

        *ret = (unsigned char *) buf;
        return r;
}

/* ---------------------------------------------------------------------- */
/* Reading rows.                                                           */

int list_hand_over(int r, void *list, size_t n, void **ret, size_t *ret_n) {
        if (r < 0 || n == 0) {
                free(list);
                list = NULL;
        }
        if (r < 0)
                return r;
        *ret = list;
        *ret_n = n;
        return 0;
}

int grow(void *list, size_t *cap, size_t n, size_t size, struct errbuf *e) {
        void **p = list;

        if (n < *cap)
                return 0;
        size_t ncap = *cap ? *cap * 2 : 8;
        void *more = realloc(*p, ncap * size);
        if (!more)
                return err_set(e, -ENOMEM, "out of memory");
        *p = more;
        *cap = ncap;
        return 0;
}

int get_text_whole(struct pas *p, SQLHSTMT h, SQLUSMALLINT col, const char *what, char **ret,
                   struct errbuf *e) {
        char *s = NULL;
        int r = get_text_alloc(p, h, col, what, &s, e);

        if (r < 0)
                return r;
        if (!s && !(s = strdup("")))
                return err_set(e, -ENOMEM, "out of memory");
        *ret = s;
        return 0;
}

int query_int(struct pas *p, enum stmt_id id, struct param *ps, size_t n, int64_t *ret, bool *ret_found,
              struct errbuf *e) {
        SQLHSTMT h = SQL_NULL_HSTMT;
        int r = run(p, id, ps, n, &h, NULL, e);

        *ret = 0;
        *ret_found = false;
        if (r < 0)
                return r;
        r = fetch(p, h, statements[id].what, e);
        if (r > 0) {
                *ret_found = true;
                r = get_int64(p, h, 1, statements[id].what, ret, NULL, e);
        }
        stmt_close(h);
        return r < 0 ? r : 0;
}

int query_text(struct pas *p, enum stmt_id id, struct param *ps, size_t n, char *ret, size_t size,
               struct errbuf *e) {
        SQLHSTMT h = SQL_NULL_HSTMT;
        int r = run(p, id, ps, n, &h, NULL, e);

        ret[0] = '\0';
        if (r < 0)
                return r;
        r = fetch(p, h, statements[id].what, e);
        if (r > 0)
                r = get_text(p, h, 1, statements[id].what, ret, size, NULL, e);
        stmt_close(h);
        return r < 0 ? r : 0;
}

int get_texts(struct pas *p, SQLHSTMT h, const char *what, SQLUSMALLINT first, const struct text_col *cols,
              size_t n, struct errbuf *e) {
        for (size_t i = 0; i < n; i++) {
                int r = get_text(p, h, (SQLUSMALLINT) (first + i), what, cols[i].buf, cols[i].size, NULL, e);
                if (r < 0)
                        return r;
        }
        return 0;
}

int run_for_ubrn(struct pas *p, enum stmt_id id, const char *ubrn, SQLHSTMT *h, struct errbuf *e) {
        struct param ps[] = { P_TEXT(ubrn) };
        int r = check_ubrn(ubrn, statements[id].what, e);

        if (r < 0)
                return r;
        r = run(p, id, ps, 1, h, NULL, e);
        return r < 0 ? err_prefix(e, r, "%s", ubrn) : r;
}

int walk_rows(struct pas *p, enum stmt_id id,
              int (*row)(struct pas *p, SQLHSTMT h, const char *what, void *walk, struct errbuf *e), void *walk,
              struct errbuf *e) {
        const char *what = statements[id].what;
        SQLHSTMT h = SQL_NULL_HSTMT;
        int r;

        r = run(p, id, NULL, 0, &h, NULL, e);
        if (r < 0)
                return r;
        while ((r = fetch(p, h, what, e)) > 0) {
                r = row(p, h, what, walk, e);
                if (r < 0)
                        break;
        }
        stmt_close(h);
        return r < 0 ? r : 0;
}

/* ---------------------------------------------------------------------- */
/* Statements without the cache, for the adapters (odbc.h).                */

#define RUN_TEXTS_MAX 8 /* parameters and columns of odbc_run_texts() */

int odbc_run_texts(struct pas *p, const char *what, const char *sql, const char *const *params, size_t n_params,
                   size_t n_cols, int (*fn)(void *userdata, char *const *cols), void *userdata, struct errbuf *e) {
        struct param ps[RUN_TEXTS_MAX];
        char *cols[RUN_TEXTS_MAX] = { NULL };
        SQLHSTMT h = SQL_NULL_HSTMT;
        SQLRETURN rc;
        int r = 0;

        if (n_params > RUN_TEXTS_MAX || n_cols > RUN_TEXTS_MAX || (fn && n_cols == 0))
                return err_set(e, -EINVAL, "%s: %zu parameters, %zu columns", what, n_params, n_cols);
        for (size_t i = 0; i < n_params; i++)
                ps[i] = P_TEXT(params[i]);
        if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, p->dbc, &h)))
                return diag_dbc(p, false, what, e);
        if (!SQL_SUCCEEDED(SQLPrepare(h, (SQLCHAR *) sql, SQL_NTS))) {
                r = diag_stmt(p, h, what, e);
                goto out;
        }
        r = bind_params(p, h, what, ps, n_params, e);
        if (r < 0)
                goto out;
        rc = SQLExecute(h);
        if (rc != SQL_NO_DATA && !SQL_SUCCEEDED(rc)) {
                r = diag_stmt(p, h, what, e);
                goto out;
        }
        while (fn && rc != SQL_NO_DATA && (r = fetch(p, h, what, e)) > 0) {
                for (size_t c = 0; r >= 0 && c < n_cols; c++)
                        r = get_text_alloc(p, h, (SQLUSMALLINT) (c + 1), what, &cols[c], e);
                if (r >= 0)
                        r = fn(userdata, cols);
                for (size_t c = 0; c < n_cols; c++) {
                        free(cols[c]);
                        cols[c] = NULL;
                }
                if (r < 0)
                        break;
        }
out:
        SQLFreeStmt(h, SQL_CLOSE);
        SQLFreeHandle(SQL_HANDLE_STMT, h);
        return r < 0 ? r : 0;
}

int odbc_exec(struct pas *p, const char *what, const char *sql, struct errbuf *e) {
        SQLHSTMT h = SQL_NULL_HSTMT;
        SQLRETURN rc;
        int r = 0;

        rc = SQLAllocHandle(SQL_HANDLE_STMT, p->dbc, &h);
        if (!SQL_SUCCEEDED(rc))
                return diag_dbc(p, false, what, e);
        rc = SQLExecDirect(h, (SQLCHAR *) sql, SQL_NTS);
        if (rc != SQL_NO_DATA && !SQL_SUCCEEDED(rc))
                r = diag_stmt(p, h, what, e);
        SQLFreeHandle(SQL_HANDLE_STMT, h);
        return r;
}

int odbc_prepare_only(struct pas *p, const char *what, const char *sql, struct errbuf *e) {
        SQLHSTMT h = SQL_NULL_HSTMT;
        SQLSMALLINT columns = 0;
        int r = 0;

        if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, p->dbc, &h)))
                return diag_dbc(p, false, what, e);
        if (!SQL_SUCCEEDED(SQLPrepare(h, (SQLCHAR *) sql, SQL_NTS)) || !SQL_SUCCEEDED(SQLNumResultCols(h, &columns)))
                r = diag_stmt(p, h, what, e);
        SQLFreeStmt(h, SQL_CLOSE);
        SQLFreeHandle(SQL_HANDLE_STMT, h);
        return r;
}

int odbc_query_int(struct pas *p, const char *what, const char *sql, int64_t *ret, struct errbuf *e) {
        SQLHSTMT h = SQL_NULL_HSTMT;
        SQLRETURN rc;
        int64_t v = 0;
        bool null = true;
        int r;

        rc = SQLAllocHandle(SQL_HANDLE_STMT, p->dbc, &h);
        if (!SQL_SUCCEEDED(rc))
                return diag_dbc(p, false, what, e);
        rc = SQLExecDirect(h, (SQLCHAR *) sql, SQL_NTS);
        if (!SQL_SUCCEEDED(rc))
                r = rc == SQL_NO_DATA ? 0 : diag_stmt(p, h, what, e);
        else
                r = fetch(p, h, what, e);
        if (r > 0)
                r = get_int64(p, h, 1, what, &v, &null, e);
        else if (r == 0)
                null = true;
        SQLFreeHandle(SQL_HANDLE_STMT, h);
        if (r < 0)
                return r;
        if (null)
                return err_set(e, -ENODATA, "%s: no value returned", what);
        *ret = v;
        return 0;
}

/* ---------------------------------------------------------------------- */
/* Connection strings (odbc.h).                                            */

int odbc_connstr_append(const char *connection, const char *key, const char *attributes, char *ret, size_t n) {
        size_t len = strlen(connection), alen = strlen(attributes);

        if (key && odbc_connstr_has(connection, key))
                return adapter_connect_options_default(connection, ret, n);
        while (len > 0 && (connection[len - 1] == ';' || connection[len - 1] == ' '))
                len--;
        if (len + 1 + alen >= n)
                return -ENAMETOOLONG;
        memmove(ret, connection, len);
        ret[len] = ';';
        memcpy(ret + len + 1, attributes, alen + 1);
        return 0;
}

const char *odbc_connstr_find(const char *connection, const char *key, char *ret, size_t n) {
        size_t klen = strlen(key);
        const char *s = connection;

        if (!s)
                return NULL;
        while (*s) {
                const char *value = NULL;

                while (*s == ';' || *s == ' ')
                        s++;
                if (strncasecmp(s, key, klen) == 0) {
                        const char *t = s + klen;
                        while (*t == ' ')
                                t++;
                        if (*t == '=')
                                value = t + 1;
                }
                /* skip to the next attribute, honouring {braced; values} */
                while (*s && *s != ';') {
                        if (*s == '{') {
                                const char *close = strchr(s, '}');
                                if (!close)
                                        return NULL;
                                s = close;
                        }
                        s++;
                }
                if (value) {
                        size_t len;

                        while (*value == ' ')
                                value++;
                        len = (size_t) (s - value);
                        while (len > 0 && value[len - 1] == ' ')
                                len--;
                        if (len >= 2 && value[0] == '{' && value[len - 1] == '}') {
                                value++;
                                len -= 2;
                        }
                        if (ret && n > 0) {
                                if (len >= n)
                                        len = n - 1;
                                memcpy(ret, value, len);
                                ret[len] = '\0';
                        }
                        return s;
                }
        }
        return NULL;
}

bool odbc_connstr_has(const char *connection, const char *key) {
        return odbc_connstr_find(connection, key, NULL, 0) != NULL;
}

/* ---------------------------------------------------------------------- */
/* The catalog.                                                            */

int catalog_has(struct pas *p, const char *name, const char *column, bool *ret, struct errbuf *e) {
        char upper[64], upper_column[64] = "", catalog[128] = "";
        const char *tries[2] = { name, upper }, *columns[2] = { column, upper_column };
        SQLINTEGER catalog_len = 0;
        size_t i;

        /* Only in the database connected to: with no catalog, MariaDB's
         * driver lists the tables of every database on the server. */
        if (!SQL_SUCCEEDED(SQLGetConnectAttr(p->dbc, SQL_ATTR_CURRENT_CATALOG, catalog, sizeof catalog,
                                             &catalog_len)) ||
            catalog_len <= 0 || catalog_len >= (SQLINTEGER) sizeof catalog)
                catalog[0] = '\0';

        for (i = 0; name[i] && i < sizeof upper - 1; i++)
                upper[i] = (char) toupper((unsigned char) name[i]);
        upper[i] = '\0';
        for (i = 0; column && column[i] && i < sizeof upper_column - 1; i++)
                upper_column[i] = (char) toupper((unsigned char) column[i]);
        upper_column[i] = '\0';

        for (size_t t = 0; t < 2; t++) {
                SQLHSTMT h = SQL_NULL_HSTMT;
                SQLRETURN rc;
                int r;

                if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, p->dbc, &h)))
                        return diag_dbc(p, false, "list tables", e);
                if (column)
                        rc = SQLColumns(h, catalog[0] ? (SQLCHAR *) catalog : NULL, catalog[0] ? SQL_NTS : 0,
                                        NULL, 0, (SQLCHAR *) tries[t], SQL_NTS, (SQLCHAR *) columns[t], SQL_NTS);
                else
                        rc = SQLTables(h, catalog[0] ? (SQLCHAR *) catalog : NULL, catalog[0] ? SQL_NTS : 0,
                                       NULL, 0, (SQLCHAR *) tries[t], SQL_NTS, NULL, 0);
                if (!SQL_SUCCEEDED(rc)) {
                        r = diag_stmt(p, h, column ? "list columns" : "list tables", e);
                        SQLFreeHandle(SQL_HANDLE_STMT, h);
                        return r;
                }
                r = fetch(p, h, column ? "list columns" : "list tables", e);
                SQLFreeHandle(SQL_HANDLE_STMT, h);
                if (r < 0)
                        return r;
                if (r > 0) {
                        *ret = true;
                        return 0;
                }
        }
        *ret = false;
        return 0;
}
