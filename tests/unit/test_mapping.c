/* SPDX-License-Identifier: MIT */
/*
 * The mapping statements' named parameters (adapters/mapping.h): rewritten
 * into '?' markers in order, never inside quotes or comments; unknown names
 * and '?' refused with their position.  Table-driven; no database.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "adapters/mapping.h"
#include "tests/support/failalloc.h"

#define R PAS_MAP_REFERRAL
#define D PAS_MAP_DOCUMENT

struct rewrite_case {
        enum pas_map_kind kind;
        const char *in;
        const char *out;                 /* NULL: refused */
        enum pas_map_field params[8];    /* in order, for a rewrite */
        size_t n;
        const char *error;               /* for a refusal: what the line says */
};

static const struct rewrite_case cases[] = {
        { R, "INSERT INTO inbound (ubrn, prio) VALUES (:ubrn, :priority)",
          "INSERT INTO inbound (ubrn, prio) VALUES (?, ?)", { MAP_REFERRAL_UBRN, MAP_REFERRAL_PRIORITY }, 2, NULL },
        /* the same name twice: a marker each */
        { R, "UPDATE t SET v = :version WHERE u = :ubrn AND v < :version", "UPDATE t SET v = ? WHERE u = ? AND v < ?",
          { MAP_REFERRAL_VERSION, MAP_REFERRAL_UBRN, MAP_REFERRAL_VERSION }, 3, NULL },
        /* quoted text is left alone: strings, doubled quotes, identifiers */
        { R, "INSERT INTO t (a, \"b:c\", `d:e`) VALUES (':ubrn', 'it''s :state', :ubrn)",
          "INSERT INTO t (a, \"b:c\", `d:e`) VALUES (':ubrn', 'it''s :state', ?)", { MAP_REFERRAL_UBRN }, 1, NULL },
        { R, "INSERT INTO t VALUES (:ubrn, '?')", "INSERT INTO t VALUES (?, '?')", { MAP_REFERRAL_UBRN }, 1, NULL },
        /* comments are left alone */
        { R, "INSERT INTO t VALUES (:ubrn) -- not :state here, nor ?\n", "INSERT INTO t VALUES (?) -- not :state here, nor ?\n",
          { MAP_REFERRAL_UBRN }, 1, NULL },
        { R, "INSERT /* :nothing? */ INTO t VALUES (:ubrn)", "INSERT /* :nothing? */ INTO t VALUES (?)",
          { MAP_REFERRAL_UBRN }, 1, NULL },
        /* PostgreSQL casts and PL/SQL assignments are not parameters */
        { R, "INSERT INTO t VALUES (:ubrn, :version::bigint, CAST(:nhs_number AS text))",
          "INSERT INTO t VALUES (?, ?::bigint, CAST(? AS text))",
          { MAP_REFERRAL_UBRN, MAP_REFERRAL_VERSION, MAP_REFERRAL_NHS_NUMBER }, 3, NULL },
        { R, "BEGIN x := :ubrn; END;", "BEGIN x := ?; END;", { MAP_REFERRAL_UBRN }, 1, NULL },
        /* a document's fields, :content included */
        { D, "INSERT INTO docs VALUES (:ubrn, :document_id, :sha256, :content)", "INSERT INTO docs VALUES (?, ?, ?, ?)",
          { MAP_DOCUMENT_UBRN, MAP_DOCUMENT_DOCUMENT_ID, MAP_DOCUMENT_SHA256, MAP_DOCUMENT_CONTENT }, 4, NULL },
        /* refusals, each saying where */
        { R, "INSERT INTO t VALUES (:ubrn, :nhs)", NULL, { 0 }, 0,
          "unknown parameter :nhs at character 30: not a referral field" },
        { R, "INSERT INTO t VALUES (:ubrn, :content)", NULL, { 0 }, 0,
          "unknown parameter :content at character 30: not a referral field" },
        { D, "INSERT INTO t VALUES (:ubrn, :priority)", NULL, { 0 }, 0,
          "unknown parameter :priority at character 30: not a document field" },
        { R, "INSERT INTO t VALUES (:ubrn, ?)", NULL, { 0 }, 0,
          "a '?' at character 30: name each parameter instead (:ubrn, :priority, …)" },
        { R, "INSERT INTO t VALUES (:ubrn, 'open)", NULL, { 0 }, 0, "a quote opened at character 30 is never closed" },
        { R, "INSERT INTO t VALUES (:ubrn) /* open", NULL, { 0 }, 0,
          "a comment opened at character 30 is never closed" },
        { R, "DELETE FROM t", NULL, { 0 }, 0, "names no parameter (:ubrn, …)" },
        /* a parameter name is case-sensitive, as written in the docs */
        { R, "INSERT INTO t VALUES (:UBRN)", NULL, { 0 }, 0, "unknown parameter :UBRN at character 23: not a referral field" },
};

static void test_rewrite(void **state) {
        (void) state;
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
                const struct rewrite_case *c = &cases[i];
                struct pas_map_sql m = { 0 };
                struct errbuf e = { { 0 } };
                int r = pas_map_rewrite(c->kind, c->in, &m, &e);

                if (!c->out) {
                        if (r != -EINVAL)
                                fail_msg("case %zu \"%s\": %d, expected a refusal", i, c->in, r);
                        assert_string_equal(e.msg, c->error);
                        assert_null(m.sql);
                        continue;
                }
                if (r != 0)
                        fail_msg("case %zu \"%s\": %s", i, c->in, e.msg);
                assert_string_equal(m.sql, c->out);
                assert_int_equal(m.n_params, c->n);
                for (size_t k = 0; k < c->n; k++)
                        assert_int_equal(m.params[k], c->params[k]);
                pas_map_sql_free(&m);
                assert_null(m.sql);
        }
}

/* Every field has a name its kind finds it by, and no name is used twice in a kind. */
static void test_field_names(void **state) {
        (void) state;
        for (size_t f = 0; f < MAP_FIELDS_; f++) {
                const char *name = pas_map_field_name((enum pas_map_field) f);
                enum pas_map_kind kind = pas_map_field_kind((enum pas_map_field) f);
                enum pas_map_field got;

                assert_true(kind == R || kind == D);
                assert_int_equal(pas_map_field_by_name(kind, name, strlen(name), &got), 0);
                assert_int_equal(got, f);
        }
        assert_int_equal(pas_map_field_by_name(R, "ubrnx", 4, &(enum pas_map_field){ 0 }), 0); /* by length */
        assert_int_equal(pas_map_field_by_name(R, "content", 7, &(enum pas_map_field){ 0 }), -ENOENT);
        assert_string_equal(pas_map_kind_name(R), "referral");
        assert_string_equal(pas_map_kind_name(D), "document");
        pas_map_sql_free(NULL);
}

/* Every allocation failing in turn: -ENOMEM and *ret untouched (ASan and
 * valgrind check nothing leaks). */
static void test_allocation_failures(void **state) {
        (void) state;
        assert_true(failalloc_linked());
        for (long n = 0;; n++) {
                struct pas_map_sql m = { 0 };
                struct errbuf e = { { 0 } };
                int r;

                failalloc_arm(n);
                r = pas_map_rewrite(R, "INSERT INTO t VALUES (:ubrn, :state)", &m, &e);
                if (!failalloc_disarm()) {
                        assert_int_equal(r, 0);
                        pas_map_sql_free(&m);
                        break;
                }
                assert_int_equal(r, -ENOMEM);
                assert_null(m.sql);
                assert_true(n < 10);
        }
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_rewrite),
                cmocka_unit_test(test_field_names),
                cmocka_unit_test(test_allocation_failures),
        };

        return cmocka_run_group_tests(tests, NULL, NULL);
}
