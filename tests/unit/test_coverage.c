/* SPDX-License-Identifier: MIT */
/*
 * The coverage gate (issue 15): every element path of our fixtures that hold
 * every element the specification defines (an A005 referral, an A008 worklist)
 * is either stored or listed as not kept with a reason, in docs/schema.md's
 * element tables, the one source of truth; and every column those tables
 * name is one of the schema's.  Not what a parser does with an
 * element (test_fhir.c) nor what the PAS holds (test_pas.c, pas_elements.c).
 *
 * A path: object keys joined by '.', an array's element written `key[]`, or
 * `key[X]` when the element names itself: X is the last segment of an
 * extension's `url`, a contained resource's `resourceType`, a parameter's
 * `name` (that naming member is then not a path of its own).  A path in a
 * table covers itself and every path under it.
 *
 * Run from the repository root: files are opened as "docs/…", "tests/fixtures/…".
 * Prints paths only, never a value (the fixtures hold NHS numbers).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <json-c/json.h>

#define SCHEMA_DOC "docs/schema.md"
#define SCHEMA_DDL "adapters/sql/sqlite.sql"
#define PATH_MAX_LEN 512

/* The paths of one element table: owned strings. */
struct table {
        char **paths;
        size_t n, cap;
};

static void table_add(struct table *t, const char *s, size_t len) {
        if (t->n == t->cap) {
                t->cap = t->cap ? t->cap * 2 : 64;
                t->paths = realloc(t->paths, t->cap * sizeof(*t->paths));
                assert_non_null(t->paths);
        }
        t->paths[t->n] = strndup(s, len);
        assert_non_null(t->paths[t->n]);
        t->n++;
}

static void table_free(struct table *t) {
        for (size_t i = 0; i < t->n; i++)
                free(t->paths[i]);
        free(t->paths);
        *t = (struct table){ .n = 0 };
}

/* The cell after the `col`th '|' of a table row (from 0), trimmed; its
 * length in *len, or NULL when the row has fewer cells. */
static const char *cell(const char *row, int col, size_t *len) {
        const char *p = row, *end;

        for (int i = 0; i <= col; i++) {
                p = strchr(p, '|');
                if (!p)
                        return NULL;
                p++;
        }
        end = strchr(p, '|');
        if (!end)
                return NULL;
        while (p < end && *p == ' ')
                p++;
        while (end > p && end[-1] == ' ')
                end--;
        *len = (size_t) (end - p);
        return p;
}

/* The whole of the SQLite DDL (every vendor's has the same tables and
 * columns: test_adapters.c), NUL-terminated; the caller frees. */
static char *ddl_text(void) {
        FILE *f = fopen(SCHEMA_DDL, "r");
        char *text;
        long n;

        if (!f)
                fail_msg("cannot open %s (run the tests from the repository root)", SCHEMA_DDL);
        assert_int_equal(fseek(f, 0, SEEK_END), 0);
        n = ftell(f);
        assert_true(n > 0);
        rewind(f);
        text = malloc((size_t) n + 1);
        assert_non_null(text);
        assert_int_equal(fread(text, 1, (size_t) n, f), (size_t) n);
        text[n] = '\0';
        fclose(f);
        return text;
}

/* Whether the DDL creates `table` with a column `column`. */
static bool ddl_has(const char *ddl, const char *table, const char *column) {
        char head[96], line[96];
        const char *t, *end;

        snprintf(head, sizeof(head), "CREATE TABLE IF NOT EXISTS %s (\n", table);
        snprintf(line, sizeof(line), "\n    %s ", column);
        t = strstr(ddl, head);
        end = t ? strstr(t, "\n);") : NULL;
        t = end ? strstr(t, line) : NULL; /* the first after the table's head: in it when before its end */
        return t && t < end;
}

/*
 * How many of the columns a "Where" cell names in backquotes are not in the
 * schema (each said, with its line): `r.x` is ers_referral's column x, `d.x`
 * ers_document's, `ers_….x` that table's.  Anything else in backquotes (a
 * table alone, a code, `r.appointment_*`) is not a column and not checked.
 */
static unsigned unknown_columns(const char *ddl, const char *where, size_t len, unsigned lineno) {
        unsigned unknown = 0;

        for (const char *p = where, *end = where + len; p < end;) {
                const char *open = memchr(p, '`', (size_t) (end - p)), *close, *dot;
                char table[64], column[64];
                size_t n;

                if (!open)
                        break;
                close = memchr(open + 1, '`', (size_t) (end - open - 1));
                if (!close)
                        break;
                p = close + 1;
                dot = memchr(open + 1, '.', (size_t) (close - open - 1));
                n = dot ? (size_t) (dot - open - 1) : 0;
                if (!dot || n == 0 || n >= sizeof(table) || (size_t) (close - dot - 1) >= sizeof(column) ||
                    strspn(dot + 1, "abcdefghijklmnopqrstuvwxyz0123456789_") != (size_t) (close - dot - 1))
                        continue;
                snprintf(table, sizeof(table), "%.*s", (int) n, open + 1);
                snprintf(column, sizeof(column), "%.*s", (int) (close - dot - 1), dot + 1);
                if (strcmp(table, "r") == 0)
                        snprintf(table, sizeof(table), "ers_referral");
                else if (strcmp(table, "d") == 0)
                        snprintf(table, sizeof(table), "ers_document");
                else if (strncmp(table, "ers_", 4) != 0)
                        continue;
                if (!ddl_has(ddl, table, column)) {
                        print_message("%s:%u: `%.*s`: no such column in %s\n", SCHEMA_DOC, lineno,
                                      (int) (close - open - 1), open + 1, SCHEMA_DDL);
                        unknown++;
                }
        }
        return unknown;
}

/*
 * Reads the table under the heading `## <heading>` of docs/schema.md: each
 * row's element cell holds its paths in backquotes; its "Where" cell says
 * where they go, and a row whose "Where" begins "not kept" must give its
 * reason in the third cell, or the test fails naming the line; a column the
 * "Where" cell names must be one of the schema's (unknown_columns()).
 */
static void table_read(const char *heading, struct table *t) {
        FILE *f = fopen(SCHEMA_DOC, "r");
        char *line = NULL, *ddl = ddl_text();
        size_t cap = 0;
        unsigned lineno = 0, unknown = 0;
        bool in = false;

        if (!f)
                fail_msg("cannot open %s (run the tests from the repository root)", SCHEMA_DOC);
        while (getline(&line, &cap, f) > 0) {
                const char *el, *where, *why;
                size_t el_len, where_len, why_len;

                lineno++;
                if (strncmp(line, "## ", 3) == 0) {
                        in = strncmp(line + 3, heading, strlen(heading)) == 0 && line[3 + strlen(heading)] == '\n';
                        continue;
                }
                if (!in || line[0] != '|' || strncmp(line, "|---", 4) == 0 || strncmp(line, "| Element", 9) == 0)
                        continue;
                el = cell(line, 0, &el_len);
                where = cell(line, 1, &where_len);
                why = cell(line, 2, &why_len);
                if (!el || !where || !why)
                        fail_msg("%s:%u: a row of \"%s\" has not three cells", SCHEMA_DOC, lineno, heading);
                if (where_len == 0)
                        fail_msg("%s:%u: a row of \"%s\" says not where its element goes", SCHEMA_DOC, lineno, heading);
                if (where_len >= 8 && strncmp(where, "not kept", 8) == 0 && why_len == 0)
                        fail_msg("%s:%u: an element of \"%s\" not kept without a reason", SCHEMA_DOC, lineno, heading);
                unknown += unknown_columns(ddl, where, where_len, lineno);
                for (const char *p = el, *end = el + el_len; p < end;) {
                        const char *open = memchr(p, '`', (size_t) (end - p)), *close;

                        if (!open)
                                break;
                        close = memchr(open + 1, '`', (size_t) (end - open - 1));
                        if (!close)
                                fail_msg("%s:%u: an unclosed backquote", SCHEMA_DOC, lineno);
                        table_add(t, open + 1, (size_t) (close - open - 1));
                        p = close + 1;
                }
        }
        free(line);
        free(ddl);
        fclose(f);
        if (t->n == 0)
                fail_msg("%s: no table under \"## %s\"", SCHEMA_DOC, heading);
        if (unknown)
                fail_msg("%u column(s) of \"## %s\" are not in %s", unknown, heading, SCHEMA_DDL);
}

/* Whether a path of the table covers `path`: the same, or an ancestor. */
static bool covered(const struct table *t, const char *path) {
        for (size_t i = 0; i < t->n; i++) {
                size_t n = strlen(t->paths[i]);

                if (strncmp(path, t->paths[i], n) == 0 && (path[n] == '\0' || path[n] == '.' || path[n] == '['))
                        return true;
        }
        return false;
}

/* The member that names an array's element, or NULL (then `[]`). */
static const char *naming_member(json_object *o) {
        static const char *const names[] = { "url", "resourceType", "name" };

        if (!json_object_is_type(o, json_type_object))
                return NULL;
        for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
                json_object *v;

                if (json_object_object_get_ex(o, names[i], &v) && json_object_is_type(v, json_type_string))
                        return names[i];
        }
        return NULL;
}

struct walk {
        const struct table *table;
        const char *fixture;
        unsigned missing, leaves;
};

static void walk(struct walk *w, json_object *o, const char *path, const char *skip);

static void walk_array(struct walk *w, json_object *a, const char *path) {
        for (size_t i = 0; i < json_object_array_length(a); i++) {
                json_object *el = json_object_array_get_idx(a, i);
                const char *name = naming_member(el), *seg = "";
                char sub[PATH_MAX_LEN];

                if (name) {
                        const char *v = json_object_get_string(json_object_object_get(el, name)), *slash = strrchr(v, '/');

                        seg = slash ? slash + 1 : v;
                }
                assert_true((size_t) snprintf(sub, sizeof(sub), "%s[%s]", path, seg) < sizeof(sub));
                walk(w, el, sub, name);
        }
}

/* Every leaf under o, at `path`; `skip` the member that named o, or NULL. */
static void walk(struct walk *w, json_object *o, const char *path, const char *skip) {
        if (json_object_is_type(o, json_type_array)) {
                walk_array(w, o, path);
                return;
        }
        if (!json_object_is_type(o, json_type_object)) {
                w->leaves++;
                if (!covered(w->table, path)) {
                        print_message("%s: %s: neither stored nor listed as not kept with a reason (%s)\n",
                                      w->fixture, path, SCHEMA_DOC);
                        w->missing++;
                }
                return;
        }
        json_object_object_foreach(o, key, v) {
                char sub[PATH_MAX_LEN];

                if (skip && strcmp(key, skip) == 0)
                        continue;
                assert_true((size_t) snprintf(sub, sizeof(sub), "%s%s%s", path, path[0] ? "." : "", key) < sizeof(sub));
                walk(w, v, sub, NULL);
        }
}

/* The fixture's every leaf against the table under `heading`. */
static void check(const char *fixture, const char *heading) {
        struct table t = { .n = 0 };
        json_object *doc = json_object_from_file(fixture);
        struct walk w = { .table = &t, .fixture = fixture };

        if (!doc)
                fail_msg("cannot read %s as JSON (run the tests from the repository root)", fixture);
        table_read(heading, &t);
        walk(&w, doc, "", NULL);
        json_object_put(doc);
        table_free(&t);
        assert_true(w.leaves > 0);
        if (w.missing)
                fail_msg("%u of %u element paths of %s are not in \"## %s\" of %s", w.missing, w.leaves, fixture,
                         heading, SCHEMA_DOC);
}

static void test_every_element_of_a_referral(void **state) {
        (void) state;
        check("tests/fixtures/referral-every-element.json", "Every element of a referral");
}

static void test_every_element_of_a_worklist(void **state) {
        (void) state;
        check("tests/fixtures/worklist-every-element.json", "Every element of a worklist entry");
}

/* The gate can fail: a path no table row covers is found. */
static void test_an_element_not_listed_is_found(void **state) {
        struct table t = { .n = 0 };
        json_object *doc = json_tokener_parse("{\"id\":\"x\",\"extension\":[{\"url\":\"https://e.example/Extension-New-1\","
                                              "\"valueString\":\"y\"}]}");
        struct walk w = { .table = &t, .fixture = "(inline)" };
        (void) state;

        assert_non_null(doc);
        table_read("Every element of a referral", &t);
        walk(&w, doc, "", NULL);
        assert_int_equal(w.leaves, 2);
        assert_int_equal(w.missing, 1); /* extension[Extension-New-1].valueString */
        json_object_put(doc);
        table_free(&t);
}

/* A "Where" naming a column the schema lacks is found; a table, a code or a
 * pattern is not taken for one. */
static void test_a_column_not_in_the_schema_is_found(void **state) {
        static const char where[] = "`ers_worklist_entry.ubrn_received`, `ers_worklist_entry.ubrn_recieved`, "
                                    "`r.priority`, `r.prio`, `d.title`, `ers_retry`, `r.appointment_*`, `CON`, "
                                    "`ReferralRequest/{ubrn}`";
        char *ddl = ddl_text();
        (void) state;

        assert_int_equal(unknown_columns(ddl, where, strlen(where), 0), 2);
        free(ddl);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_every_element_of_a_referral),
                cmocka_unit_test(test_every_element_of_a_worklist),
                cmocka_unit_test(test_an_element_not_listed_is_found),
                cmocka_unit_test(test_a_column_not_in_the_schema_is_found),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
