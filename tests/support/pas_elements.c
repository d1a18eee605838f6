/* SPDX-License-Identifier: MIT */
/*
 * Issue 15 on every engine (pas_elements.h): the element walk's columns, the
 * additional requirements and the A005 answers kept, written through the PAS
 * target and read back whole through an independent connection.
 */
#include "pas_elements.h"

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
#include <unistd.h>

#include "adapters/pas_answer.h"
#include "tests/support/harness.h"
#include "tests/support/pas_data.h"
#include "tests/support/pas_whole.h"

#define N_WALK 15 /* the referral columns of the element walk */

void pas_elements_whole(struct pas *p, const char *connection, const char *dir) {
        static const char ubrn[] = "000000000811";
        static const char *const columns[N_WALK] = {
                "clinical_info_last_updated", "state_reason_system", "state_reason_display", "appointment_reference",
                "appointment_status",         "appointment_created", "appointment_reason", "appointment_reason_system",
                "appointment_reason_display", "appointment_comment", "appointment_slot",   "appointment_clinician",
                "clinic_type",                "named_clinician",     "advice_request",
        };
        struct errbuf e = { "" };
        struct db *raw = db_open(connection);
        struct referral r;
        struct requirement req[3], req2[1];
        char *t[N_WALK + 12], sha[65], sql[160];
        struct pas_tx *tx = NULL;
        int fd;

        assert_non_null(raw);
        for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++)
                t[i] = pas_whole_text(i % 3 ? 300 : 70000, 40 + i);
        pas_data_referral(&r, ubrn, 1, PAS_DATA_NHS_VALID);
        char **walk[N_WALK] = { &r.clinical_info_last_updated, &r.state_reason_system, &r.state_reason_display,
                                &r.appointment_reference,      &r.appointment_status,  &r.appointment_created,
                                &r.appointment_reason,         &r.appointment_reason_system,
                                &r.appointment_reason_display, &r.appointment_comment, &r.appointment_slot,
                                &r.appointment_clinician,      &r.clinic_type,         &r.named_clinician,
                                &r.advice_request };
        for (size_t i = 0; i < N_WALK; i++)
                *walk[i] = t[i];
        for (size_t i = 0; i < 3; i++) /* the first a code as e-RS sends it, the others long */
                req[i] = (struct requirement){ .code = i ? t[N_WALK + 8 + i] : "INTERPRETER", .display = t[N_WALK + 1],
                                               .system = t[N_WALK + 2], .comments = i == 1 ? NULL : t[N_WALK + 3] };
        r.requirements = req;
        r.n_requirements = 3;
        fd = pas_data_file(dir, "elements-whole", 3000, 811, sha);
        struct document_rec d = pas_data_document(ubrn, "att-811", 3000, sha);
        d.document_type = t[N_WALK + 5];
        d.description = t[N_WALK + 6];
        d.attached_on_behalf_of = t[N_WALK + 7];

        assert_int_equal(pas_begin(p, &tx, &e), 0);
        if (pas_put_referral(tx, &r, NULL, "wl", &e) < 0 || pas_put_document(tx, &d, fd, NULL, &e) < 0)
                fail_msg("a referral with every element refused: %s", e.msg);
        assert_int_equal(pas_commit(tx, &e), 0);

        for (size_t i = 0; i < N_WALK; i++) {
                snprintf(sql, sizeof sql, "SELECT %s FROM ers_referral WHERE ubrn = ?", columns[i]);
                pas_whole_assert_read(raw, sql, ubrn, t[i]);
        }
        assert_int_equal(db_int(raw, "SELECT COUNT(*) FROM ers_referral_requirement WHERE ubrn = ?", 1,
                                (const char *[]){ ubrn }),
                         3);
        pas_whole_assert_read(raw, "SELECT code FROM ers_referral_requirement WHERE ubrn = ? AND seq = 1", ubrn,
                              "INTERPRETER");
        pas_whole_assert_read(raw, "SELECT code FROM ers_referral_requirement WHERE ubrn = ? AND seq = 2", ubrn,
                              req[1].code);
        pas_whole_assert_read(raw, "SELECT display FROM ers_referral_requirement WHERE ubrn = ? AND seq = 3", ubrn,
                              req[2].display);
        pas_whole_assert_read(raw, "SELECT code_system FROM ers_referral_requirement WHERE ubrn = ? AND seq = 3", ubrn,
                              req[2].system);
        pas_whole_assert_read(raw, "SELECT comments FROM ers_referral_requirement WHERE ubrn = ? AND seq = 3", ubrn,
                              req[2].comments);
        assert_int_equal(db_int(raw, "SELECT COUNT(*) FROM ers_referral_requirement WHERE ubrn = ? AND seq = 2 "
                                     "AND comments IS NULL", 1, (const char *[]){ ubrn }),
                         1);
        assert_int_equal(db_int(raw, "SELECT additional_requirements FROM ers_referral_inbox WHERE ubrn = ?", 1,
                                (const char *[]){ ubrn }),
                         3);
        pas_whole_assert_read(raw, "SELECT document_type FROM ers_document WHERE ubrn = ?", ubrn, d.document_type);
        pas_whole_assert_read(raw, "SELECT description FROM ers_document WHERE ubrn = ?", ubrn, d.description);
        pas_whole_assert_read(raw, "SELECT attached_on_behalf_of FROM ers_document WHERE ubrn = ?", ubrn,
                              d.attached_on_behalf_of);

        /* version 2: its requirements replace the first version's; a column it lacks is NULL */
        req2[0] = (struct requirement){ .code = "TRANSPORT" };
        r.version = 2;
        r.requirements = req2;
        r.n_requirements = 1;
        r.appointment_comment = NULL;
        assert_int_equal(pas_begin(p, &tx, &e), 0);
        assert_int_equal(pas_put_referral(tx, &r, NULL, "wl", &e), 0);
        assert_int_equal(pas_commit(tx, &e), 0);
        assert_int_equal(db_int(raw, "SELECT COUNT(*) FROM ers_referral_requirement WHERE ubrn = ?", 1,
                                (const char *[]){ ubrn }),
                         1);
        pas_whole_assert_read(raw, "SELECT code FROM ers_referral_requirement WHERE ubrn = ? AND seq = 1", ubrn,
                              "TRANSPORT");
        assert_int_equal(db_int(raw, "SELECT COUNT(*) FROM ers_referral WHERE ubrn = ? AND appointment_comment IS NULL",
                                1, (const char *[]){ ubrn }),
                         1);

        close(fd);
        for (unsigned i = 0; i < sizeof t / sizeof t[0]; i++)
                free(t[i]);
        db_close(raw);
}

/* n bytes of every value 0-255, from `seed` (the caller frees). */
static unsigned char *bytes_of(size_t n, unsigned seed) {
        unsigned char *b = malloc(n);

        assert_non_null(b);
        for (size_t i = 0; i < n; i++)
                b[i] = (unsigned char) (i * 7 + seed + i / 251);
        return b;
}

void pas_elements_answers(struct pas *p, const char *connection) {
        static const char ubrn[] = "000000000812";
        struct errbuf e = { "" };
        struct db *raw = db_open(connection);
        struct referral_answer big = { .len = PAS_ANSWER_MAX, .correlation_id = "7a0d4a2e-6f0e-4c1e-9b51-0c2b1f9e0a11",
                                       .received_at = "2030-03-04T09:00:01Z" };
        struct referral_answer other = { .len = 4097, .received_at = "2030-03-04T09:00:02Z" };
        struct referral_answer too_big = { .len = PAS_ANSWER_MAX + 1 };
        struct referral_answer back = { .bytes = NULL };
        struct answer_kept *kept = NULL;
        char sha_big[65], sha_other[65], hex[65];
        size_t n = 0;
        int64_t size = -1;
        bool written = false;
        struct pas_tx *tx = NULL;

        assert_non_null(raw);
        big.bytes = bytes_of(big.len, 1);
        other.bytes = bytes_of(other.len, 2);
        too_big.bytes = big.bytes;
        assert_int_equal(pas_begin(p, &tx, &e), 0);
        if (pas_answer_put(tx, ubrn, 3, &big, &written, sha_big, &e) < 0 || !written)
                fail_msg("an answer of %d bytes refused: %s", PAS_ANSWER_MAX, e.msg);
        assert_int_equal(pas_answer_put(tx, ubrn, 3, &too_big, &written, NULL, &e), -EINVAL);
        assert_false(written);
        assert_int_equal(pas_commit(tx, &e), 0);

        /* exact, through the independent connection, by SHA-256 and size */
        sha256_hex(big.bytes, big.len, hex);
        assert_string_equal(sha_big, hex);
        assert_int_equal(db_bytes_sha256(raw, "SELECT body FROM ers_referral_answer WHERE ubrn = ? AND sha256 = ?", 2,
                                         (const char *[]){ ubrn, sha_big }, hex, &size),
                         0);
        assert_string_equal(hex, sha_big);
        assert_int_equal(size, PAS_ANSWER_MAX);
        assert_int_equal(db_int(raw, "SELECT size_bytes FROM ers_referral_answer WHERE ubrn = ?", 1,
                                (const char *[]){ ubrn }),
                         PAS_ANSWER_MAX);

        /* the same bytes again: nothing; other bytes of the same version: a row of their own */
        assert_int_equal(pas_begin(p, &tx, &e), 0);
        assert_int_equal(pas_answer_put(tx, ubrn, 3, &big, &written, NULL, &e), 0);
        assert_false(written);
        assert_int_equal(pas_answer_put(tx, ubrn, 3, &other, &written, sha_other, &e), 0);
        assert_true(written);
        assert_int_equal(pas_commit(tx, &e), 0);
        assert_int_equal(pas_answers_kept(p, ubrn, &kept, &n, &e), 0);
        assert_int_equal(n, 2);
        assert_string_equal(kept[0].sha256, sha_big); /* by version, then when it arrived */
        assert_string_equal(kept[0].correlation_id, big.correlation_id);
        assert_string_equal(kept[0].received_at, big.received_at);
        assert_int_equal(kept[0].size, PAS_ANSWER_MAX);
        assert_string_equal(kept[1].sha256, sha_other);
        assert_string_equal(kept[1].correlation_id, ""); /* none given: NULL */
        free(kept);

        /* read back whole by the PAS target */
        assert_int_equal(pas_answer_get(p, ubrn, 3, sha_big, &back, &e), 0);
        assert_int_equal(back.len, big.len);
        assert_memory_equal(back.bytes, big.bytes, big.len);
        assert_string_equal(back.correlation_id, big.correlation_id);
        referral_answer_free(&back);
        assert_int_equal(pas_answer_get(p, ubrn, 4, sha_big, &back, &e), -ENOENT);
        assert_null(back.bytes);

        /* a row altered by hand is never taken for what e-RS said */
        assert_int_equal(db_exec_with(raw, "UPDATE ers_referral_answer SET size_bytes = size_bytes + 1 WHERE ubrn = ? "
                                           "AND sha256 = ?", 2, (const char *[]){ ubrn, sha_other }),
                         0);
        assert_int_equal(pas_answer_get(p, ubrn, 3, sha_other, &back, &e), -EBADMSG);
        assert_null(back.bytes);

        free(big.bytes);
        free(other.bytes);
        db_close(raw);
}
