/* SPDX-License-Identifier: MIT */
/*
 * The adapters (adapters/<vendor>.c) and the ODBC plumbing's pure functions
 * (adapters/odbc.h: messages, connection strings, SQLSTATE classes) without a
 * database: what each adapter generates and decides, for every vendor,
 * including SQL Server and Oracle, for which the test suite can start no
 * server.  The DDL goes through a tokeniser that knows the vendors' quoting
 * (strings with doubled quotes, Oracle's q'[…]', "--" comments) and checks
 * the rules of adapter.h and each dialect; classification and connection
 * strings are table-driven.  SQLite,
 * PostgreSQL and MariaDB are also run for real (test_pas, test_engines).
 *
 * Run with the repository root as the working directory (it reads
 * adapters/sql/<vendor>.sql).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <ctype.h>
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "adapters/adapter.h"
#include "adapters/odbc.h"
#include "adapters/pas.h"
#include "adapters/schema.h"
#include "tests/support/pas_data.h"

static const struct adapter *const all[] = {
        &adapter_sqlite, &adapter_postgresql, &adapter_mariadb, &adapter_sqlserver, &adapter_oracle,
};
#define N_ALL (sizeof all / sizeof all[0])

/* The tables and indexes every vendor's DDL creates, in order. */
static const char *const tables[] = {
        "ers_schema_version", "ers_referral",      "ers_referral_related", "ers_referral_requirement",
        "ers_referral_answer", "ers_document",     "ers_document_part",    "ers_ledger",
        "ers_lease",          "ers_retry",         "ers_budget",           "ers_poll",
        "ers_audit",          "ers_worklist_entry", "ers_outbox",
};
static const char *const indexes[] = { "ers_referral_patient_match", "ers_referral_related_related",
                                       "ers_document_ubrn",          "ers_retry_next",
                                       "ers_worklist_entry_ubrn",    "ers_outbox_due",
                                       "ers_outbox_ubrn" };

/* ---------------------------------------------------------------------- */
/* A tokeniser that knows where SQL text is code and where it is quoted.   */

struct scan {
        int depth;          /* parentheses open */
        bool unterminated;  /* a string, q-quote or identifier left open */
        bool unbalanced;    /* a ')' without its '(' */
        bool marker;        /* a '?' outside quotes and comments */
        char code[16384];   /* the statement with quoted text and comments blanked, upper case */
};

/*
 * Walks `sql` as `a`'s dialect reads it: '…' strings (with '' inside),
 * "…" identifiers, [ … ] identifiers (SQL Server), q'[…]' (Oracle), "--"
 * comments to the end of the line.  Oracle's q'[…]' is code run by EXECUTE
 * IMMEDIATE: it is scanned as code too (its depth counted apart).
 */
static void scan(const struct adapter *a, const char *sql, struct scan *ret) {
        bool oracle = a == &adapter_oracle, sqlserver = a == &adapter_sqlserver;
        size_t o = 0, n = strlen(sql);

        memset(ret, 0, sizeof *ret);
        for (size_t i = 0; i < n;) {
                char c = sql[i];

                if (c == '-' && sql[i + 1] == '-') {
                        while (i < n && sql[i] != '\n')
                                i++;
                        continue;
                }
                if (oracle && (c == 'q' || c == 'Q') && sql[i + 1] == '\'' && sql[i + 2] == '[') {
                        /* the quoted statement is code: copy it, as if unquoted */
                        const char *end = strstr(sql + i + 3, "]'");
                        if (!end) {
                                ret->unterminated = true;
                                return;
                        }
                        i += 3;
                        continue; /* its text follows as code; "]'" is skipped below */
                }
                if (oracle && c == ']' && sql[i + 1] == '\'') {
                        i += 2;
                        continue;
                }
                if (c == '\'' || c == '"' || (sqlserver && c == '[')) {
                        char close = c == '[' ? ']' : c;
                        i++;
                        for (;;) {
                                if (i >= n) {
                                        ret->unterminated = true;
                                        return;
                                }
                                if (sql[i] == close && sql[i + 1] == close && close != ']') {
                                        i += 2;
                                        continue;
                                }
                                if (sql[i] == close)
                                        break;
                                i++;
                        }
                        i++;
                        if (o < sizeof ret->code - 2)
                                ret->code[o++] = '_'; /* a literal */
                        continue;
                }
                if (c == '(')
                        ret->depth++;
                if (c == ')' && --ret->depth < 0)
                        ret->unbalanced = true;
                if (c == '?')
                        ret->marker = true;
                if (o < sizeof ret->code - 1)
                        ret->code[o++] = (char) toupper((unsigned char) c);
                i++;
        }
        ret->code[o] = '\0';
}

/* True when `word` occurs in code as a whole word. */
static bool has_word(const char *code, const char *word) {
        size_t len = strlen(word);

        for (const char *s = code; (s = strstr(s, word)); s += len) {
                bool start = s == code || !(isalnum((unsigned char) s[-1]) || s[-1] == '_');
                bool end = !(isalnum((unsigned char) s[len]) || s[len] == '_');
                if (start && end)
                        return true;
        }
        return false;
}

static bool is_block(const char *sql) {
        return strncmp(sql, "BEGIN", 5) == 0 || strncmp(sql, "DECLARE", 7) == 0;
}

/* The name after "CREATE TABLE " / "CREATE INDEX " / "… VIEW " in code. */
static void created_name(const char *code, const char *what, char *ret, size_t n) {
        const char *s = strstr(code, what);
        size_t i = 0;

        ret[0] = '\0';
        if (!s)
                return;
        s += strlen(what);
        while (*s == ' ')
                s++;
        if (strncmp(s, "IF NOT EXISTS ", 14) == 0)
                s += 14;
        while ((isalnum((unsigned char) *s) || *s == '_') && i + 1 < n)
                ret[i++] = (char) tolower((unsigned char) *s++);
        ret[i] = '\0';
}

/* ---------------------------------------------------------------------- */
/* The DDL.                                                                */

/* The statement of a's DDL that creates table `name`. */
static const char *create_of(const struct adapter *a, const char *name) {
        const char *const *ddl = a->ops->schema();
        char got[64];

        for (size_t k = 0; ddl[k]; k++) {
                struct scan sc;
                scan(a, ddl[k], &sc);
                created_name(sc.code, "CREATE TABLE", got, sizeof got);
                if (strcmp(got, name) == 0)
                        return ddl[k];
        }
        fail_msg("%s: no table %s", a->name, name);
        return "";
}


/* adapter.h's rules, for every statement of every vendor. */
static void test_ddl_rules(void **state) {
        (void) state;
        for (size_t v = 0; v < N_ALL; v++) {
                const struct adapter *a = all[v];
                const char *const *ddl = a->ops->schema();
                size_t t = 0, x = 0, views = 0, k;

                for (k = 0; ddl[k]; k++) {
                        const char *sql = ddl[k];
                        size_t len = strlen(sql);
                        char name[64];
                        struct scan sc;

                        scan(a, sql, &sc);
                        if (sc.unterminated || sc.unbalanced || sc.depth != 0)
                                fail_msg("%s statement %zu: unterminated quote or unbalanced parentheses:\n%s", a->name,
                                         k + 1, sql);
                        if (sc.marker || strchr(sql, '?'))
                                fail_msg("%s statement %zu: holds a '?'", a->name, k + 1);
                        assert_true(len > 0 && sql[len - 1] != '\n' && sql[len - 1] != ' ');
                        if (is_block(sql)) {
                                /* PL/SQL: Oracle only, ends with END; */
                                assert_ptr_equal(a, &adapter_oracle);
                                assert_true(len > 4 && strcmp(sql + len - 4, "END;") == 0);
                                assert_true(has_word(sc.code, "EXCEPTION"));
                        } else {
                                assert_true(sql[len - 1] != ';');
                                for (const char *nl = strchr(sql, '\n'); nl; nl = strchr(nl + 1, '\n'))
                                        if (nl > sql && nl[-1] == ';')
                                                fail_msg("%s statement %zu: a line ends with ';'", a->name, k + 1);
                        }
                        if (strstr(sc.code, "CREATE TABLE")) {
                                created_name(sc.code, "CREATE TABLE", name, sizeof name);
                                assert_true(t < sizeof tables / sizeof tables[0]);
                                assert_string_equal(name, tables[t]);
                                t++;
                        } else if (strstr(sc.code, "CREATE INDEX")) {
                                created_name(sc.code, "CREATE INDEX", name, sizeof name);
                                assert_true(x < sizeof indexes / sizeof indexes[0]);
                                assert_string_equal(name, indexes[x]);
                                x++;
                        } else if (strstr(sc.code, " VIEW ")) {
                                created_name(sc.code, " VIEW", name, sizeof name);
                                assert_string_equal(name, "ers_referral_inbox");
                                views++;
                        } else {
                                fail_msg("%s statement %zu creates nothing we know", a->name, k + 1);
                        }
                        /* Oracle before 12.2 allows 30-byte names: keep every name under it */
                        assert_true(strlen(name) <= 30);
                }
                assert_int_equal(t, sizeof tables / sizeof tables[0]);
                assert_int_equal(x, sizeof indexes / sizeof indexes[0]);
                assert_int_equal(views, 1);
                assert_int_equal(k, t + x + views);
        }
}

/* What each dialect must and must not say. */
static void test_ddl_dialects(void **state) {
        (void) state;
        for (size_t v = 0; v < N_ALL; v++) {
                const struct adapter *a = all[v];
                bool sqlserver = a == &adapter_sqlserver, oracle = a == &adapter_oracle;
                const char *const *ddl = a->ops->schema();

                for (size_t k = 0; ddl[k]; k++) {
                        struct scan sc;
                        char name[64], guarded[160];

                        scan(a, ddl[k], &sc);
                        if (sqlserver || oracle) {
                                /* no portable spelling that the vendor refuses */
                                assert_false(strstr(sc.code, "IF NOT EXISTS"));
                                assert_false(has_word(sc.code, "TEXT"));
                                assert_false(has_word(sc.code, "VARCHAR")); /* NVARCHAR / NVARCHAR2 only */
                                assert_false(has_word(sc.code, "BYTEA") || has_word(sc.code, "LONGBLOB"));
                        }
                        if (oracle) {
                                assert_false(has_word(sc.code, "BIGINT")); /* Oracle has none */
                                assert_false(has_word(sc.code, "NVARCHAR"));
                                if (strstr(sc.code, "CREATE TABLE") || strstr(sc.code, "CREATE INDEX")) {
                                        /* run by EXECUTE IMMEDIATE, ORA-00955 ignored */
                                        assert_non_null(strstr(ddl[k], "BEGIN EXECUTE IMMEDIATE q'[CREATE "));
                                        assert_non_null(strstr(sc.code, "SQLCODE NOT IN (-955"));
                                        assert_non_null(strstr(sc.code, "THEN RAISE"));
                                } else {
                                        assert_non_null(strstr(sc.code, "CREATE OR REPLACE VIEW"));
                                }
                                assert_false(strstr(sc.code, "CREATE TABLE") && has_word(sc.code, "BLOB") &&
                                             !strstr(sc.code, "DATA BLOB NOT NULL") &&
                                             !strstr(sc.code, "BODY BLOB NOT NULL"));
                        }
                        if (sqlserver) {
                                assert_false(has_word(sc.code, "NVARCHAR2") || has_word(sc.code, "BLOB"));
                                if (strstr(sc.code, "CREATE TABLE")) {
                                        /* the guard names the table it creates */
                                        created_name(sc.code, "CREATE TABLE", name, sizeof name);
                                        snprintf(guarded, sizeof guarded, "IF OBJECT_ID(N'%s', N'U') IS NULL\nCREATE",
                                                 name);
                                        assert_int_equal(strncmp(ddl[k], guarded, strlen(guarded)), 0);
                                } else if (strstr(sc.code, "CREATE INDEX")) {
                                        created_name(sc.code, "CREATE INDEX", name, sizeof name);
                                        snprintf(guarded, sizeof guarded, "N'%s', 'IndexID') IS NULL\nCREATE", name);
                                        assert_non_null(strstr(ddl[k], guarded));
                                        assert_int_equal(strncmp(ddl[k], "IF INDEXPROPERTY(OBJECT_ID(N'", 29), 0);
                                } else {
                                        assert_int_equal(strncmp(ddl[k], "CREATE OR ALTER VIEW", 20), 0);
                                }
                        }
                }
        }
        /* the binary columns, per vendor */
        assert_non_null(strstr(create_of(&adapter_sqlserver, "ers_document_part"), "data VARBINARY(MAX) NOT NULL"));
        assert_non_null(strstr(create_of(&adapter_oracle, "ers_document_part"), "data BLOB NOT NULL"));
        assert_non_null(strstr(create_of(&adapter_sqlserver, "ers_referral_answer"), "body VARBINARY(MAX) NOT NULL"));
        assert_non_null(strstr(create_of(&adapter_oracle, "ers_referral_answer"), "body BLOB NOT NULL"));
        assert_non_null(strstr(create_of(&adapter_postgresql, "ers_referral_answer"), "body BYTEA NOT NULL"));
        assert_non_null(strstr(create_of(&adapter_mariadb, "ers_referral_answer"), "body LONGBLOB NOT NULL"));
        assert_non_null(strstr(create_of(&adapter_oracle, "ers_referral"), "state_comment NCLOB"));
        assert_non_null(strstr(create_of(&adapter_oracle, "ers_referral"), "version NUMBER(19) NOT NULL"));
        assert_non_null(strstr(create_of(&adapter_sqlserver, "ers_referral"), "state_comment NVARCHAR(MAX)"));
        assert_non_null(strstr(create_of(&adapter_sqlserver, "ers_referral"), "nhs_number NVARCHAR(MAX)"));
        assert_non_null(strstr(create_of(&adapter_oracle, "ers_document"), "attachment_id NCLOB NOT NULL"));
        assert_non_null(strstr(create_of(&adapter_mariadb, "ers_document"), "attachment_id LONGTEXT NOT NULL"));
        assert_non_null(strstr(create_of(&adapter_mariadb, "ers_referral"), "state_comment LONGTEXT"));
        assert_non_null(strstr(create_of(&adapter_postgresql, "ers_document"), "title TEXT"));
        /* the outbox's key: numbered by the database, in the order of insertion */
        assert_non_null(strstr(create_of(&adapter_sqlite, "ers_outbox"), "id INTEGER PRIMARY KEY AUTOINCREMENT,"));
        assert_non_null(strstr(create_of(&adapter_postgresql, "ers_outbox"),
                               "id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"));
        assert_non_null(strstr(create_of(&adapter_mariadb, "ers_outbox"), "id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,"));
        assert_non_null(strstr(create_of(&adapter_sqlserver, "ers_outbox"), "id BIGINT IDENTITY(1,1) NOT NULL PRIMARY KEY,"));
        assert_non_null(strstr(create_of(&adapter_oracle, "ers_outbox"),
                               "id NUMBER(19) GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"));
}

/* The spelling of "text of any length" (schema.h's TEXT) per vendor. */
static const char *text_type(const struct adapter *a) {
        return a == &adapter_mariadb     ? "LONGTEXT"
               : a == &adapter_sqlserver ? "NVARCHAR(MAX)"
               : a == &adapter_oracle    ? "NCLOB"
                                         : "TEXT";
}

/* Whether `column` (upper case) is declared with the vendor's TEXT in `code`
 * (a scanned CREATE TABLE statement). */
static bool text_in(const struct adapter *a, const char *code, const char *column) {
        char decl[96];

        snprintf(decl, sizeof decl, "\n    %s %s", column, text_type(a));
        for (const char *s = strstr(code, decl); s; s = strstr(s + 1, decl)) {
                char end = s[strlen(decl)];
                if (end == ',' || end == '\n' || end == ' ')
                        return true;
        }
        return false;
}

/* Whether `column` is a TEXT in table `table` (lower case) of a's DDL. */
static bool is_text_column(const struct adapter *a, const char *table, const char *column) {
        struct scan sc;

        scan(a, create_of(a, table), &sc);
        return text_in(a, sc.code, column);
}

/* Each identifier of the column list "(a, b, c)" at or after s (upper case, code). */
static void assert_no_text_in_list(const struct adapter *a, const char *table, const char *s, const char *what) {
        char name[64];
        size_t i = 0;

        for (s = strchr(s, '('); s && *s; s++) {
                if (isalnum((unsigned char) *s) || *s == '_') {
                        if (i + 1 < sizeof name)
                                name[i++] = *s;
                        continue;
                }
                name[i] = '\0';
                if (i > 0 && is_text_column(a, table, name))
                        fail_msg("%s: %s of %s holds %s, a text of any length", a->name, what, table, name);
                i = 0;
                if (*s == ')')
                        break;
        }
}

/* A text of any length is an NCLOB on Oracle (which cannot compare one) and
 * NVARCHAR(MAX) on SQL Server (which cannot index one): no key, no index and
 * no comparison in the view has one, on any vendor. */
static void test_text_columns_never_keyed(void **state) {
        static const char *const text_columns[] = { "ATTACHMENT_ID", "TITLE", "NHS_NUMBER", "SPECIALTY_DISPLAY",
                                                    "SERVICE_NAME", "COMMISSIONING_ORG", "SERVICE_ID" };

        (void) state;
        for (size_t v = 0; v < N_ALL; v++) {
                const struct adapter *a = all[v];
                const char *const *ddl = a->ops->schema();

                for (size_t c = 0; c < sizeof text_columns / sizeof text_columns[0]; c++)
                        if (!is_text_column(a, c < 2 ? "ers_document" : "ers_referral", text_columns[c]))
                                fail_msg("%s: %s is not %s", a->name, text_columns[c], text_type(a));
                assert_false(is_text_column(a, "ers_document", "ATTACHMENT_KEY"));
                for (size_t k = 0; ddl[k]; k++) {
                        char table[64];
                        struct scan sc;
                        scan(a, ddl[k], &sc);
                        created_name(sc.code, "CREATE TABLE", table, sizeof table);
                        if (table[0]) {
                                for (const char *s = strstr(sc.code, "UNIQUE ("); s; s = strstr(s + 1, "UNIQUE ("))
                                        assert_no_text_in_list(a, table, s, "a UNIQUE constraint");
                                for (const char *s = strstr(sc.code, "PRIMARY KEY ("); s;
                                     s = strstr(s + 1, "PRIMARY KEY ("))
                                        assert_no_text_in_list(a, table, s, "the primary key");
                                for (const char *s = strstr(sc.code, " PRIMARY KEY,"); s; s = strstr(s + 1, " PRIMARY KEY,")) {
                                        const char *col = s; /* "    name TYPE … PRIMARY KEY," */
                                        while (col > sc.code && col[-1] != '\n')
                                                col--;
                                        assert_false(strstr(col, text_type(a)) && strstr(col, text_type(a)) < s);
                                }
                        }
                        if (strstr(sc.code, "CREATE INDEX")) {
                                created_name(strstr(sc.code, " ON ") + 1, "ON", table, sizeof table);
                                assert_no_text_in_list(a, table, strstr(sc.code, " ON "), "an index");
                        }
                        if (strstr(sc.code, " VIEW ")) {
                                /* each side of every '=' in the view */
                                for (const char *eq = strchr(sc.code, '='); eq; eq = strchr(eq + 1, '=')) {
                                        const char *l = eq - 1, *r = eq + 1;
                                        char left[64] = "", right[64] = "";
                                        size_t i = 0;
                                        while (l > sc.code && *l == ' ')
                                                l--;
                                        while (l > sc.code && (isalnum((unsigned char) l[-1]) || l[-1] == '_'))
                                                l--;
                                        while ((isalnum((unsigned char) *l) || *l == '_') && i + 1 < sizeof left)
                                                left[i++] = *l++;
                                        left[i] = '\0';
                                        while (*r == ' ')
                                                r++;
                                        if (r[0] && r[1] == '.')
                                                r += 2; /* an alias */
                                        for (i = 0; (isalnum((unsigned char) *r) || *r == '_') && i + 1 < sizeof right;)
                                                right[i++] = *r++;
                                        right[i] = '\0';
                                        if (is_text_column(a, "ers_referral", left) ||
                                            is_text_column(a, "ers_document", left) ||
                                            is_text_column(a, "ers_referral", right) ||
                                            is_text_column(a, "ers_document", right))
                                                fail_msg("%s: the view compares %s = %s", a->name, left, right);
                                }
                        }
                }
        }
}

/* The files for DBAs hold exactly what --init-db runs. */
static void test_schema_files_match(void **state) {
        (void) state;
        for (size_t v = 0; v < N_ALL; v++)
                pas_data_schema_file_matches(all[v]);
}

/* From version 1, 2 or 3: columns added in each vendor's spelling (new tables come from the DDL). */
static void test_upgrade_steps(void **state) {
        static const struct {
                const struct adapter *a;
                const char *first;
        } cases[] = {
                { &adapter_sqlite, "ALTER TABLE ers_referral ADD COLUMN pas_patient_id VARCHAR(64)" },
                { &adapter_postgresql, "ALTER TABLE ers_referral ADD COLUMN pas_patient_id VARCHAR(64)" },
                { &adapter_mariadb, "ALTER TABLE ers_referral ADD COLUMN pas_patient_id VARCHAR(64)" },
                { &adapter_sqlserver, "ALTER TABLE ers_referral ADD pas_patient_id NVARCHAR(64)" },
                { &adapter_oracle, "ALTER TABLE ers_referral ADD pas_patient_id NVARCHAR2(64)" },
        };

        (void) state;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                const struct schema_step *s = cases[i].a->ops->upgrade(1);
                size_t n = 0;

                assert_non_null(s);
                assert_string_equal(s[0].sql, cases[i].first);
                s = cases[i].a->ops->upgrade(2);
                assert_non_null(s);
                assert_non_null(strstr(s[0].sql, "ALTER TABLE ers_ledger ADD"));
                assert_null(cases[i].a->ops->upgrade(0));
                assert_null(cases[i].a->ops->upgrade(5));
                /* from version 4: the version-5 columns, each in the vendor's spelling of ADD */
                s = cases[i].a->ops->upgrade(4);
                assert_non_null(s);
                size_t columns = 0;
                for (n = 0; s[n].sql || s[n].run; n++) {
                        assert_non_null(s[n].sql);
                        if (!s[n].column) {
                                assert_ptr_equal(cases[i].a, &adapter_sqlite); /* its view, dropped to be made again */
                                assert_string_equal(s[n].sql, "DROP VIEW IF EXISTS ers_referral_inbox");
                                continue;
                        }
                        char add[160];
                        /* every one TEXT as e-RS sends it, but our hash and e-RS's boolean */
                        const char *type = strcmp(s[n].column, "answer_sha256") == 0         ? "CHAR(64)"
                                           : strcmp(s[n].column, "clinical_info_printed") == 0 ? "SMALLINT"
                                                                                               : text_type(cases[i].a);
                        snprintf(add, sizeof add, "ALTER TABLE %s ADD%s %s %s", s[n].table,
                                 cases[i].a == &adapter_sqlserver || cases[i].a == &adapter_oracle ? "" : " COLUMN",
                                 s[n].column, type);
                        assert_string_equal(s[n].sql, add);
                        columns++;
                }
                assert_int_equal(columns, 25); /* 16 of ers_referral, 3 of ers_document, 6 of ers_worklist_entry */
                assert_string_equal(s[0].column, "clinical_info_last_updated");
                for (long long from = 1; from <= 3; from++) {
                        size_t c_steps = 0, identity = 0;
                        s = cases[i].a->ops->upgrade(from);
                        assert_non_null(s);
                        for (n = 0; s[n].sql || s[n].run; n++) {
                                struct scan sc;
                                if (!s[n].sql) {
                                        /* the attachment keys, after the column is added */
                                        assert_ptr_equal(s[n].run, document_key_fill);
                                        assert_non_null(s[n - 1].sql);
                                        assert_non_null(strstr(s[n - 1].sql, " attachment_key CHAR(64)"));
                                        c_steps++;
                                        continue;
                                }
                                scan(cases[i].a, s[n].sql, &sc);
                                assert_false(sc.unterminated || sc.unbalanced || sc.marker);
                                assert_false(strchr(s[n].sql, '?'));
                                if (cases[i].a == &adapter_oracle && is_block(s[n].sql)) {
                                        /* PL/SQL */
                                        assert_true(strcmp(s[n].sql + strlen(s[n].sql) - 4, "END;") == 0);
                                } else {
                                        /* SQL, or a T-SQL batch (which may start with DECLARE) */
                                        assert_true(s[n].sql[strlen(s[n].sql) - 1] != ';');
                                        assert_false(strstr(s[n].sql, ";\n"));
                                }
                                identity += strstr(s[n].sql, "CONSTRAINT ers_document_identity UNIQUE ") &&
                                            strstr(s[n].sql, "(ubrn, source_ubrn, kind, attachment_key, revision)");
                        }
                        assert_int_equal(c_steps, 1);
                        assert_int_equal(identity, 1); /* the new key, once */
                        assert_true(n >= (from == 3 ? 4u : 6u));
                }
        }
        assert_string_equal(adapter_sqlserver.ops->upgrade(2)[0].sql,
                            "ALTER TABLE ers_ledger ADD first_seen_at NVARCHAR(32)");
        assert_string_equal(adapter_oracle.ops->upgrade(1)[1].sql,
                            "ALTER TABLE ers_referral ADD patient_match NVARCHAR2(16) DEFAULT 'NOT_CONFIGURED' NOT NULL");
}

/* ---------------------------------------------------------------------- */
/* The table of adapters.                                                  */

static void test_adapter_table(void **state) {
        char names[128] = "";

        (void) state;
        for (size_t v = 0; v < N_ALL; v++) {
                const struct adapter *a = all[v];
                const struct adapter_ops *o = a->ops;

                assert_ptr_equal(adapter_by_name(a->name), a);
                /* every slot filled: the core never tests for NULL */
                assert_true(o->schema && o->upgrade && o->environment && o->probe_options && o->connect_options &&
                            o->session && o->classify && o->check_statement && o->lock_writer && o->unlock_writer);
                assert_non_null(o->schema()[0]);
                snprintf(names + strlen(names), sizeof names - strlen(names), "%s%s", v ? ", " : "", a->name);
        }
        assert_string_equal(adapter_names, names);
        assert_null(adapter_by_name("auto")); /* "auto" is detection, not an adapter */
        assert_ptr_equal(adapter_by_dbms("SQLite"), &adapter_sqlite);
        assert_ptr_equal(adapter_by_dbms("PostgreSQL"), &adapter_postgresql);
        assert_ptr_equal(adapter_by_dbms("MariaDB"), &adapter_mariadb);
        assert_ptr_equal(adapter_by_dbms("Microsoft SQL Server"), &adapter_sqlserver);
        assert_ptr_equal(adapter_by_dbms("Oracle"), &adapter_oracle);
        assert_ptr_equal(adapter_by_dbms("MySQL"), &adapter_mariadb);
        assert_null(adapter_by_dbms("DB2/LINUXX8664"));
        assert_null(adapter_by_dbms(""));
        assert_null(adapter_by_name("mssql"));
        assert_null(adapter_by_name("db2"));
        /* text outside ASCII is bound as national text where the columns are NVARCHAR */
        assert_true(adapter_sqlserver.national_text && adapter_oracle.national_text);
        assert_false(adapter_sqlite.national_text || adapter_postgresql.national_text || adapter_mariadb.national_text);
}

/* ---------------------------------------------------------------------- */
/* Connection strings and the environment.                                 */

/* A driver's message as ersd quotes it: the driver's prefixes gone, digits that could be an NHS
 * number redacted, cut on a character. */
static void test_clean_message(void **state) {
        static const struct {
                const char *in, *out;
        } cases[] = {
                { "[unixODBC][SQLite]database is locked (5)", "database is locked (5)" },
                { "[SQLite]UNIQUE constraint failed: ers_referral.nhs_number (19)",
                  "UNIQUE constraint failed: ers_referral.nhs_number (19)" },
                { "Duplicate entry '9991234578' for key 'nhs'", "Duplicate entry '<redacted>' for key 'nhs'" },
                { "value 999 123 4578 rejected", "value <redacted> rejected" },
                { "ubrn 000000000001 kept, 12 digits", "ubrn 000000000001 kept, 12 digits" },
                { "ERROR: duplicate key\nDETAIL: Key (nhs_number)=(9991234578) already exists",
                  "ERROR: duplicate key" },
                { "code 99912345789 is 11 digits", "code 99912345789 is 11 digits" },
                { "", "" },
        };
        char out[ODBC_MESSAGE_MAX + 1], longin[1000];

        (void) state;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                odbc_clean_message(cases[i].in, out, sizeof out);
                assert_string_equal(out, cases[i].out);
        }
        /* truncation keeps whole UTF-8 sequences */
        memset(longin, 0, sizeof longin);
        for (size_t i = 0; i + 4 < sizeof longin; i += 4)
                memcpy(longin + i, "\xf0\x9f\x98\x80", 4); /* U+1F600 */
        odbc_clean_message(longin, out, sizeof out);
        assert_true(strlen(out) <= ODBC_MESSAGE_MAX);
        assert_int_equal(strlen(out) % 4, 0);
        odbc_clean_message(NULL, out, sizeof out);
        assert_string_equal(out, "");
}

static void test_connstr_has(void **state) {
        (void) state;
        assert_true(odbc_connstr_has("Driver=SQLite3;Database=/x;Timeout=100", "Timeout"));
        assert_true(odbc_connstr_has("Driver=SQLite3; timeout = 100", "Timeout"));
        assert_false(odbc_connstr_has("Driver=SQLite3;Database=/x", "Timeout"));
        assert_false(odbc_connstr_has("Driver=SQLite3;Database={/a;Timeout=1}", "Timeout"));
        assert_false(odbc_connstr_has("Driver=SQLite3;TimeoutX=1", "Timeout"));
        assert_false(odbc_connstr_has(NULL, "Timeout"));
}

static void test_connect_options(void **state) {
        adapter_connect_options_fn *add = adapter_sqlite.ops->connect_options;
        char out[128];

        (void) state;
        assert_int_equal(add("Driver=SQLite3;Database=/x", out, sizeof out), 0);
        assert_string_equal(out, "Driver=SQLite3;Database=/x;Timeout=5000");
        assert_int_equal(add("Driver=SQLite3;Database=/x;", out, sizeof out), 0);
        assert_string_equal(out, "Driver=SQLite3;Database=/x;Timeout=5000");
        assert_int_equal(add("Driver=SQLite3;Database=/x;timeout=250", out, sizeof out), 0);
        assert_string_equal(out, "Driver=SQLite3;Database=/x;timeout=250"); /* the operator's wins */
        assert_int_equal(add("Driver=SQLite3;Database=/x", out, 20), -ENAMETOOLONG);
        assert_int_equal(adapter_connect_options_default("DSN=pas", out, sizeof out), 0);
        assert_string_equal(out, "DSN=pas");
}

/* What the PostgreSQL and MariaDB adapters add to the connection string. */
static void test_connect_options_servers(void **state) {
        adapter_connect_options_fn *pg = adapter_postgresql.ops->connect_options;
        adapter_connect_options_fn *pg_probe = adapter_postgresql.ops->probe_options;
        adapter_connect_options_fn *maria = adapter_mariadb.ops->connect_options;
        char out[256];

        (void) state;
        assert_int_equal(pg("DSN=pas;", out, sizeof out), 0);
        assert_string_equal(out, "DSN=pas;Protocol=7.4-1;ByteaAsLongVarBinary=1;CommLog=0;Debug=0");
        /* the operator's protocol wins; logging stays off whatever was asked (the last value wins) */
        assert_int_equal(pg("DSN=pas;protocol=7.4-2;CommLog=1;Debug=1", out, sizeof out), 0);
        assert_string_equal(out, "DSN=pas;protocol=7.4-2;CommLog=1;Debug=1;ByteaAsLongVarBinary=1;CommLog=0;Debug=0");
        assert_int_equal(pg_probe("DSN=pas", out, sizeof out), 0);
        assert_string_equal(out, "DSN=pas;CommLog=0;Debug=0");
        assert_int_equal(pg("DSN=pas", out, 30), -ENAMETOOLONG);
        assert_int_equal(maria("DSN=pas", out, sizeof out), 0);
        assert_string_equal(out, "DSN=pas;CHARSET=utf8mb4;OPTION=2");
        assert_int_equal(maria("DSN=pas;charset=latin1", out, sizeof out), 0);
        assert_string_equal(out, "DSN=pas;charset=latin1;OPTION=2");
        /* found rows (2) added to the operator's own OPTION bits (the last value wins); a word refused */
        assert_int_equal(maria("DSN=pas;OPTION=67108864", out, sizeof out), 0);
        assert_string_equal(out, "DSN=pas;OPTION=67108864;CHARSET=utf8mb4;OPTION=67108866");
        assert_int_equal(maria("DSN=pas;Option=3", out, sizeof out), 0);
        assert_string_equal(out, "DSN=pas;Option=3;CHARSET=utf8mb4");
        assert_int_equal(maria("DSN=pas;OPTION=two", out, sizeof out), -EINVAL);
        /* the probe options are harmless elsewhere: SQLite and MariaDB add nothing to the probe */
        assert_int_equal(adapter_mariadb.ops->probe_options("DSN=pas", out, sizeof out), 0);
        assert_string_equal(out, "DSN=pas");
        assert_int_equal(adapter_sqlite.ops->probe_options("DSN=pas", out, sizeof out), 0);
        assert_string_equal(out, "DSN=pas");
}

/* Which server errors are transient, a lost connection, or permanent. */
static void test_classify_servers(void **state) {
        adapter_classify_fn *pg = adapter_postgresql.ops->classify, *maria = adapter_mariadb.ops->classify;

        (void) state;
        assert_int_equal(pg("55P03", 0, "lock not available", false), -EAGAIN);
        assert_int_equal(pg("53300", 0, "too many connections", false), -EAGAIN);
        assert_int_equal(pg("57014", 0, "canceling statement due to statement timeout", false), -EAGAIN);
        assert_int_equal(pg("57014", 0, "cancelled", true), -EINPROGRESS);
        assert_int_equal(pg("57P01", 0, "terminating connection due to administrator command", false), -ENOTCONN);
        assert_int_equal(pg("23505", 0, "duplicate key", false), 0); /* generic: -EIO */
        assert_int_equal(pg("40P01", 0, "deadlock detected", false), 0); /* generic: -EAGAIN */
        assert_int_equal(odbc_classify_sqlstate("23505", false), -EIO);
        assert_int_equal(maria("40001", 1213, "Deadlock found", false), -EAGAIN);
        assert_int_equal(maria("HY000", 1205, "Lock wait timeout exceeded", false), -EAGAIN);
        assert_int_equal(maria("70100", 1317, "Query execution was interrupted", false), -EAGAIN);
        assert_int_equal(maria("HY000", 2006, "Server has gone away", false), -ENOTCONN);
        assert_int_equal(maria("HY000", 2013, "Lost connection", true), -EINPROGRESS);
        assert_int_equal(maria("23000", 1062, "Duplicate entry", false), 0); /* generic: -EIO */
        assert_int_equal(odbc_classify_sqlstate("23000", false), -EIO);
        assert_int_equal(odbc_classify_sqlstate("08S01", false), -ENOTCONN);
}

static void test_sqlstate_mapping(void **state) {
        (void) state;
        assert_int_equal(odbc_classify_sqlstate("40001", false), -EAGAIN);
        assert_int_equal(odbc_classify_sqlstate("40P01", false), -EAGAIN);
        assert_int_equal(odbc_classify_sqlstate("40001", true), -EAGAIN);
        assert_int_equal(odbc_classify_sqlstate("HYT00", false), -EAGAIN);
        assert_int_equal(odbc_classify_sqlstate("08001", false), -ENOTCONN);
        assert_int_equal(odbc_classify_sqlstate("08S01", false), -ENOTCONN);
        assert_int_equal(odbc_classify_sqlstate("08S01", true), -EINPROGRESS);
        assert_int_equal(odbc_classify_sqlstate("08007", false), -EINPROGRESS);
        assert_int_equal(odbc_classify_sqlstate("23000", false), -EIO);
        assert_int_equal(odbc_classify_sqlstate("HY000", false), -EIO);
        /* the SQLite adapter: the result code travels as the native error */
        assert_int_equal(adapter_sqlite.ops->classify("HY000", 5, "database is locked (5)", false), -EAGAIN);
        assert_int_equal(adapter_sqlite.ops->classify("HY000", 517, "database is locked (517)", false), -EAGAIN);
        assert_int_equal(adapter_sqlite.ops->classify("HY000", 6, "database table is locked", false), -EAGAIN);
        assert_int_equal(adapter_sqlite.ops->classify("HY000", 19, "UNIQUE constraint failed", false), 0);
}

static void test_connect_options_sqlserver(void **state) {
        static const struct {
                const char *in;
                int r;
                const char *out;
        } cases[] = {
                { "Driver={ODBC Driver 18 for SQL Server};Server=tcp:db,1433;Database=pas;",
                  0,
                  "Driver={ODBC Driver 18 for SQL Server};Server=tcp:db,1433;Database=pas;Encrypt=yes;"
                  "TrustServerCertificate=no;APP=ersd" },
                { "DSN=pas;encrypt=strict;APP=pas-feed", 0, "DSN=pas;encrypt=strict;APP=pas-feed;TrustServerCertificate=no" },
                { "DSN=pas;Encrypt=Mandatory;TrustServerCertificate=No", 0,
                  "DSN=pas;Encrypt=Mandatory;TrustServerCertificate=No;APP=ersd" },
                /* anything that turns verification off, in any occurrence: refused */
                { "DSN=pas;Encrypt=no", -EPERM, NULL },
                { "DSN=pas;Encrypt = Optional", -EPERM, NULL },
                { "DSN=pas;TrustServerCertificate=yes", -EPERM, NULL },
                { "DSN=pas;TrustServerCertificate={true}", -EPERM, NULL },
                { "DSN=pas;Encrypt=yes;Encrypt=no", -EPERM, NULL },
                { "DSN=pas;TrustServerCertificate=no;TrustServerCertificate=yes", -EPERM, NULL },
                /* a braced value is not an attribute */
                { "DSN=pas;PWD={a;Encrypt=no}", 0, "DSN=pas;PWD={a;Encrypt=no};Encrypt=yes;TrustServerCertificate=no;APP=ersd" },
        };
        char out[256];

        (void) state;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                int r = adapter_sqlserver.ops->connect_options(cases[i].in, out, sizeof out);
                if (r != cases[i].r)
                        fail_msg("case %zu \"%s\": %d, expected %d", i, cases[i].in, r, cases[i].r);
                if (cases[i].out)
                        assert_string_equal(out, cases[i].out);
        }
        assert_int_equal(adapter_sqlserver.ops->connect_options("DSN=pas", out, 20), -ENAMETOOLONG);
        /* nothing added to the probe of adapter "auto" */
        assert_int_equal(adapter_sqlserver.ops->probe_options("DSN=pas", out, sizeof out), 0);
        assert_string_equal(out, "DSN=pas");
}

static void test_connect_options_oracle(void **state) {
        char out[256];

        (void) state;
        assert_int_equal(adapter_oracle.ops->connect_options("DSN=pas", out, sizeof out), 0);
        assert_string_equal(out, "DSN=pas;LOB=T");
        assert_int_equal(adapter_oracle.ops->connect_options("DSN=pas;lob=F", out, sizeof out), 0);
        assert_string_equal(out, "DSN=pas;lob=F");
        assert_int_equal(adapter_oracle.ops->probe_options("DSN=pas", out, sizeof out), 0);
        assert_string_equal(out, "DSN=pas");
}

static void test_connstr_find(void **state) {
        char v[16];
        const char *s = "DSN=pas; Encrypt = { yes } ;encrypt=no;PWD={x;Encrypt=1}";

        (void) state;
        s = odbc_connstr_find(s, "Encrypt", v, sizeof v);
        assert_non_null(s);
        assert_string_equal(v, " yes "); /* braces removed, what they hold kept */
        s = odbc_connstr_find(s, "Encrypt", v, sizeof v);
        assert_non_null(s);
        assert_string_equal(v, "no");
        assert_null(odbc_connstr_find(s, "Encrypt", v, sizeof v)); /* not inside {…} */
        assert_null(odbc_connstr_find("DSN=pas", "Encrypt", v, sizeof v));
        assert_non_null(odbc_connstr_find("DSN=pas;Encrypt=verylongvaluethatistruncated", "Encrypt", v, 8));
        assert_string_equal(v, "verylon");
}

static void test_environment_oracle(void **state) {
        struct errbuf e = { { 0 } };

        (void) state;
        unsetenv("NLS_LANG");
        assert_int_equal(adapter_oracle.ops->environment(&e), 0);
        assert_string_equal(getenv("NLS_LANG"), "AMERICAN_AMERICA.AL32UTF8");
        setenv("NLS_LANG", "ENGLISH_UNITED KINGDOM.AL32UTF8", 1);
        assert_int_equal(adapter_oracle.ops->environment(&e), 0);
        assert_string_equal(getenv("NLS_LANG"), "ENGLISH_UNITED KINGDOM.AL32UTF8"); /* the operator's wins */
        setenv("NLS_LANG", "ENGLISH_UNITED KINGDOM.WE8ISO8859P1", 1);
        assert_int_equal(adapter_oracle.ops->environment(&e), -EINVAL);
        assert_non_null(strstr(e.msg, "NLS_LANG=ENGLISH_UNITED KINGDOM.WE8ISO8859P1: the client character set must "
                                      "be AL32UTF8"));
        unsetenv("NLS_LANG");
        /* the other vendors set nothing */
        for (size_t v = 0; v < N_ALL; v++)
                if (all[v] != &adapter_oracle)
                        assert_int_equal(all[v]->ops->environment(&e), 0);
        assert_null(getenv("NLS_LANG"));
}

/* pas_open() refuses a SQL Server connection string that turns TLS
 * verification off before it connects, and names neither the string nor the
 * password; without the driver installed it fails with one line, too. */
static void test_open_refusals(void **state) {
        struct pas *p = NULL;
        struct errbuf e = { { 0 } };

        (void) state;
        assert_int_equal(pas_open("Driver={ODBC Driver 18 for SQL Server};Server=tcp:db.invalid,1433;UID=ersd;"
                                  "PWD=secret-password;TrustServerCertificate=yes",
                                  "sqlserver", &p, &e),
                         -EPERM);
        assert_null(p);
        assert_string_equal(e.msg, "sqlserver: the connection string turns TLS certificate verification off; ersd "
                                   "always verifies it (docs/sqlserver.md)");
        setenv("NLS_LANG", "AMERICAN_AMERICA.WE8MSWIN1252", 1);
        assert_int_equal(pas_open("DSN=pas;PWD=secret-password", "oracle", &p, &e), -EINVAL);
        assert_null(strstr(e.msg, "secret-password"));
        assert_non_null(strstr(e.msg, "NLS_LANG"));
        unsetenv("NLS_LANG");
        /* no such driver here: one line with the SQLSTATE, no password */
        assert_true(pas_open("Driver={ODBC Driver 18 for SQL Server};Server=tcp:db.invalid,1433;UID=ersd;"
                             "PWD=secret-password",
                             "sqlserver", &p, &e) < 0);
        assert_null(p);
        assert_non_null(strstr(e.msg, "SQLSTATE"));
        assert_null(strstr(e.msg, "secret-password"));
        unsetenv("NLS_LANG");
}

/* ---------------------------------------------------------------------- */
/* Error classification: the adapter's opinion, else the generic mapping.  */

static int classify(const struct adapter *a, const char *sqlstate, long native, bool in_commit) {
        int r = a->ops->classify(sqlstate, native, "", in_commit);
        return r ? r : odbc_classify_sqlstate(sqlstate, in_commit);
}

struct class_case {
        const char *sqlstate;
        long native;
        bool in_commit;
        int want;
        const char *what;
};

static void check_classes(const struct adapter *a, const struct class_case *c, size_t n) {
        for (size_t i = 0; i < n; i++) {
                int r = classify(a, c[i].sqlstate, c[i].native, c[i].in_commit);
                if (r != c[i].want)
                        fail_msg("%s %s/%ld%s (%s): %d, expected %d", a->name, c[i].sqlstate, c[i].native,
                                 c[i].in_commit ? " in commit" : "", c[i].what, r, c[i].want);
        }
}

static void test_classify_sqlserver(void **state) {
        static const struct class_case cases[] = {
                { "40001", 1205, false, -EAGAIN, "deadlock victim" },
                { "HYT00", 1222, false, -EAGAIN, "lock request time-out" },
                { "42000", 1222, false, -EAGAIN, "lock request time-out, other SQLSTATE" },
                { "HY000", 1204, false, -EAGAIN, "out of lock resources" },
                { "HY000", 3960, false, -EAGAIN, "snapshot isolation update conflict" },
                { "42000", 9002, false, -EAGAIN, "transaction log full" },
                { "42000", 1105, false, -EAGAIN, "filegroup full" },
                { "HY000", 701, false, -EAGAIN, "out of memory" },
                { "42000", 40501, false, -EAGAIN, "Azure: service busy" },
                { "42000", 49919, false, -EAGAIN, "Azure: throttled" },
                { "08S01", 10054, false, -ENOTCONN, "connection reset" },
                { "08S01", 10054, true, -EINPROGRESS, "connection reset during commit" },
                { "HY000", 3906, false, -ENOTCONN, "read-only: failed over to a secondary" },
                { "HY000", 983, true, -EINPROGRESS, "availability group role change during commit" },
                { "HY000", 40613, false, -ENOTCONN, "Azure: database unavailable" },
                { "HYT00", 0, false, -EAGAIN, "query timeout (generic)" },
                { "HYT00", 0, true, -EINPROGRESS, "query timeout in commit (generic)" },
                { "08001", 0, false, -ENOTCONN, "cannot connect (generic)" },
                { "08007", 0, true, -EINPROGRESS, "connection failure during transaction (generic)" },
                { "23000", 2627, false, -EIO, "primary key violation: permanent" },
                { "23000", 547, false, -EIO, "foreign key violation: permanent" },
                { "22001", 8152, false, -EIO, "string would be truncated: permanent" },
                { "42S02", 208, false, -EIO, "invalid object name: permanent" },
                { "28000", 18456, false, -EIO, "login failed: permanent" },
        };

        (void) state;
        check_classes(&adapter_sqlserver, cases, sizeof cases / sizeof cases[0]);
}

static void test_classify_oracle(void **state) {
        static const struct class_case cases[] = {
                { "40001", 60, false, -EAGAIN, "ORA-00060 deadlock" },
                { "HY000", 60, false, -EAGAIN, "ORA-00060 deadlock, other SQLSTATE" },
                { "S1000", 8177, false, -EAGAIN, "ORA-08177 cannot serialize" },
                { "HY000", 54, false, -EAGAIN, "ORA-00054 resource busy (NOWAIT: the writer lock)" },
                { "HY000", 30006, false, -EAGAIN, "ORA-30006 resource busy, WAIT timed out" },
                { "HY000", 1555, false, -EAGAIN, "ORA-01555 snapshot too old" },
                { "HY000", 1653, false, -EAGAIN, "ORA-01653 tablespace full" },
                { "HY000", 1013, false, -EAGAIN, "ORA-01013 cancelled (timeout)" },
                { "HY000", 1013, true, -EINPROGRESS, "ORA-01013 cancelled during commit" },
                { "HY000", 3113, false, -ENOTCONN, "ORA-03113 end-of-file on communication channel" },
                { "HY000", 3113, true, -EINPROGRESS, "ORA-03113 during commit" },
                { "08S01", 3114, false, -ENOTCONN, "ORA-03114 not connected" },
                { "HY000", 3135, true, -EINPROGRESS, "ORA-03135 connection lost contact during commit" },
                { "HY000", 28, false, -ENOTCONN, "ORA-00028 session killed" },
                { "08001", 12541, false, -ENOTCONN, "ORA-12541 no listener" },
                { "HY000", 1089, false, -ENOTCONN, "ORA-01089 immediate shutdown in progress" },
                { "HY000", 25402, false, -EINPROGRESS, "ORA-25402 transaction must roll back (failover)" },
                { "HY000", 25408, false, -EINPROGRESS, "ORA-25408 cannot safely replay call" },
                { "HY000", 25405, true, -EINPROGRESS, "ORA-25405 transaction status unknown" },
                { "23000", 1, false, -EIO, "ORA-00001 unique constraint: permanent" },
                { "23000", 2291, false, -EIO, "ORA-02291 parent key not found: permanent" },
                { "22001", 12899, false, -EIO, "ORA-12899 value too large: permanent" },
                { "42S02", 942, false, -EIO, "ORA-00942 table does not exist: permanent" },
                { "HY000", 1017, false, -EIO, "ORA-01017 invalid username/password: permanent" },
        };

        (void) state;
        check_classes(&adapter_oracle, cases, sizeof cases / sizeof cases[0]);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_ddl_rules),
                cmocka_unit_test(test_ddl_dialects),
                cmocka_unit_test(test_schema_files_match),
                cmocka_unit_test(test_text_columns_never_keyed),
                cmocka_unit_test(test_upgrade_steps),
                cmocka_unit_test(test_adapter_table),
                cmocka_unit_test(test_clean_message),
                cmocka_unit_test(test_connstr_has),
                cmocka_unit_test(test_connect_options),
                cmocka_unit_test(test_connect_options_servers),
                cmocka_unit_test(test_connect_options_sqlserver),
                cmocka_unit_test(test_connect_options_oracle),
                cmocka_unit_test(test_connstr_find),
                cmocka_unit_test(test_environment_oracle),
                cmocka_unit_test(test_open_refusals),
                cmocka_unit_test(test_classify_servers),
                cmocka_unit_test(test_sqlstate_mapping),
                cmocka_unit_test(test_classify_sqlserver),
                cmocka_unit_test(test_classify_oracle),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
