/* SPDX-License-Identifier: MIT */
/* The audit trail's comparison (daemon/audit.c, adapters/pas_audit.c): every column of ers_referral
 * compared, each change named alone, a code or time with its values, free text without. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "adapters/pas_audit.h"
#include "adapters/pas_internal.h"
#include "adapters/schema.h"
#include "daemon/audit.h"

/* What a value is called in ers_referral's DDL: only the column names matter here. */
#define NAME_TYPE(kind, width) #kind

/* Free text a test puts in a free-text column: it must never reach the trail. */
#define SECRET "Mrs Example, 1 High St"

static char empty[] = "";

/* A referral_stored of version 1 with every column "" (NULL in the PAS). */
static void stored_empty(struct referral_stored *s) {
        *s = (struct referral_stored){ .found = true, .version = 1, .patient_match = empty };
        for (size_t i = 0; i < n_referral_columns; i++)
                *(char **) (void *) ((char *) s + referral_columns[i].stored) = empty;
}

/* Sets the value a write of `ref` (with `entry`) puts in column c. */
static void set_now(const struct referral_column *c, struct referral *ref, struct worklist_entry *entry, char *value) {
        if (c->source == FROM_REFERRAL) {
                *(char **) (void *) ((char *) ref + c->now) = value;
                return;
        }
        /* referral_values(): A005's value first; the referral type comes from the entry only */
        if (strcmp(c->name, "referral_type") == 0)
                entry->referral_type = value;
        else if (strcmp(c->name, "nhs_number") == 0)
                ref->nhs_number = value;
        else if (strcmp(c->name, "priority") == 0)
                ref->priority = value;
        else if (strcmp(c->name, "specialty") == 0)
                ref->specialty = value;
        else if (strcmp(c->name, "service_id") == 0)
                ref->service_id = value;
        else if (strcmp(c->name, "service_name") == 0)
                ref->service_name = value;
        else
                fail_msg("column %s: from the values, but not set by this test", c->name);
}

/* Each column changing alone is named alone: a code or time "name none -> VALUE" (the value escaped),
 * free text "name changed" without its value. */
static void test_each_column_named_alone(void **state) {
        (void) state;
        for (size_t i = 0; i < n_referral_columns; i++) {
                const struct referral_column *c = &referral_columns[i];
                struct referral_stored before;
                struct referral now = { .version = 1 };
                struct worklist_entry entry = { .version = 0 };
                struct audit_text t = { .p = NULL };
                char value[] = "A B", secret[] = SECRET, expected[256];

                /* a service's name goes with its id: without an id, the entry's (here none) is written */
                struct worklist_entry *with = strcmp(c->name, "service_name") == 0 ? NULL : &entry;

                stored_empty(&before);
                set_now(c, &now, &entry, c->kind == COLUMN_TEXT ? secret : value);
                audit_describe(&t, &before, &now, with);
                assert_false(t.oom);
                if (!t.p)
                        fail_msg("column %s changed alone: not named", c->name);
                if (c->kind == COLUMN_APPOINTMENT)
                        snprintf(expected, sizeof expected, "appointment booked: %s",
                                 strcmp(c->name, "appointment_start") == 0 ? "\"A B\"" : "none");
                else if (c->kind == COLUMN_TEXT)
                        snprintf(expected, sizeof expected, "%s changed", c->change);
                else
                        snprintf(expected, sizeof expected, "%s none -> \"A B\"", c->change);
                if (strcmp(t.p, expected) != 0)
                        fail_msg("column %s changed alone: said \"%s\", not \"%s\"", c->name, t.p, expected);
                assert_null(strstr(t.p, "Example"));
                audit_text_free(&t);

                /* and back: the stored value against none */
                stored_empty(&before);
                *(char **) (void *) ((char *) &before + c->stored) = c->kind == COLUMN_TEXT ? secret : value;
                now = (struct referral){ .version = 1 };
                entry = (struct worklist_entry){ .version = 0 };
                audit_describe(&t, &before, &now, &entry);
                if (c->kept_when_absent)
                        assert_null(t.p); /* the write keeps the stored value: nothing changes */
                else if (!t.p)
                        fail_msg("column %s removed alone: not named", c->name);
                else if (c->kind == COLUMN_TEXT)
                        assert_null(strstr(t.p, "Example"));
                audit_text_free(&t);
        }
}

/* A requirement kept with its code whose display or comments changed: named, without the words. */
static void test_requirement_changed_without_its_words(void **state) {
        struct stored_requirement was[] = { { .code = (char *) "INTERPRETER", .display = (char *) "Interpreter",
                                              .system = (char *) "S1", .comments = (char *) SECRET } };
        struct requirement is[] = { { .code = (char *) "INTERPRETER", .display = (char *) "Interpreter needed",
                                      .system = (char *) "S2", .comments = (char *) "Mrs Other" } };
        struct referral now = { .version = 1, .requirements = is, .n_requirements = 1 };
        struct referral_stored before;
        struct audit_text t = { .p = NULL };
        (void) state;

        stored_empty(&before);
        before.requirements = was;
        before.n_requirements = 1;
        audit_describe(&t, &before, &now, NULL);
        assert_non_null(t.p);
        assert_string_equal(t.p, "additional requirement changed: INTERPRETER (display, comments); "
                                 "additional requirement changed: INTERPRETER (code_system S1 -> S2)");
        audit_text_free(&t);

        is[0] = (struct requirement){ .code = (char *) "INTERPRETER", .display = (char *) "Interpreter",
                                      .system = (char *) "S1", .comments = (char *) SECRET };
        audit_describe(&t, &before, &now, NULL);
        assert_null(t.p); /* the same: nothing said */
        audit_text_free(&t);
}

/* The names of the columns of ers_referral, from its DDL, into names (n of them). */
static size_t ddl_columns(char names[][64], size_t max) {
        static const char ddl[] = STAGING_TABLE_REFERRAL(NAME_TYPE, "");
        size_t n = 0;

        for (const char *s = strchr(ddl, '\n'); s && *s; s = strchr(s, '\n')) {
                s++;
                size_t lead = strspn(s, " ");
                size_t len = strcspn(s + lead, " \n");
                if (lead != 4 || len == 0 || len >= 64)
                        continue;
                assert_true(n < max);
                memcpy(names[n], s + lead, len);
                names[n][len] = '\0';
                n++;
        }
        return n;
}

/* Every column of ers_referral is compared (referral_columns[]) or listed as not compared, with why; the
 * one statement that reads them for the trail reads exactly the table's columns, in its order. */
static void test_every_column_covered(void **state) {
        char names[80][64];
        size_t n = ddl_columns(names, 80);
        (void) state;

        assert_true(n >= 40);
        for (size_t i = 0; i < n; i++) {
                bool found = false;
                for (size_t k = 0; k < n_referral_columns && !found; k++)
                        found = strcmp(referral_columns[k].name, names[i]) == 0;
                for (size_t k = 0; referral_columns_not_compared[k][0] && !found; k++)
                        found = strcmp(referral_columns_not_compared[k][0], names[i]) == 0 &&
                                referral_columns_not_compared[k][1][0];
                if (!found)
                        fail_msg("ers_referral.%s: neither compared by the audit trail (referral_columns[]) "
                                 "nor listed as not compared, with why",
                                 names[i]);
        }
        /* and nothing in the tables that the DDL does not have */
        for (size_t k = 0; k < n_referral_columns; k++) {
                bool found = false;
                for (size_t i = 0; i < n && !found; i++)
                        found = strcmp(referral_columns[k].name, names[i]) == 0;
                if (!found)
                        fail_msg("referral_columns[]: %s is no column of ers_referral", referral_columns[k].name);
        }

        char select[2048];
        size_t len = (size_t) snprintf(select, sizeof select, "SELECT version");
        for (size_t k = 0; k < n_referral_columns && len < sizeof select; k++)
                len += (size_t) snprintf(select + len, sizeof select - len, ", %s", referral_columns[k].name);
        if (len < sizeof select)
                snprintf(select + len, sizeof select - len, ", patient_match FROM ers_referral WHERE ubrn = ?");
        assert_string_equal(statements[ST_REFERRAL_STORED].sql, select);
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(test_each_column_named_alone),
                cmocka_unit_test(test_requirement_changed_without_its_words),
                cmocka_unit_test(test_every_column_covered),
        };
        return cmocka_run_group_tests(tests, NULL, NULL);
}
