/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The helpers every test says its checks with, written once: a field of a JSON
 * answer, a count from the mock's stats, a count or text from the PAS, the
 * configuration ersd runs with, one run of ersd checked for what it must never
 * print, and that check itself (patient identifiers and secrets).
 *
 * What is here fails the running cmocka test (fail_msg) where it cannot do its
 * job, so a caller never checks a return for that.  It holds no process or
 * database plumbing (harness.h: the mock, ersd's processes, ODBC) and no
 * comparison of the PAS with what e-RS served (verify.h).
 */

#include <json-c/json.h>
#include <stdbool.h>

#include "harness.h"

/* A NULL-terminated argument list in place: ARGS("status", "--json"). */
#define ARGS(...) ((const char *const[]){ __VA_ARGS__, NULL })

/* The string value of o's member `key`; NULL when absent or JSON null.  Borrowed from o. */
const char *jstr(json_object *o, const char *key);

/* Whether this test binary runs under AddressSanitizer or valgrind, and so,
 * as its build directory goes, the ersd it runs: memory figures then mean
 * little (shadow memory, quarantine), and a test asserts no bound on them. */
bool run_instrumented(void);

/* The mock's count `name` from GET /_mock/stats ("A005", "store", "credential_leaks", …);
 * fails the test when the stats cannot be read. */
long long stat_count(const struct mock *m, const char *name);

/* The first column of the first row of `sql`, with one text parameter (NULL: none), as a
 * number (-1 when no row or SQL NULL) or as text (caller frees; NULL when no row or SQL NULL). */
long long q_int(struct db *d, const char *sql, const char *param);
char *q_text(struct db *d, const char *sql, const char *param);

/*
 * The configuration the tests run ersd with, written to `path` (mode 0600):
 * the ers group with base_url and `ers_lines` (may be NULL), the one worklist
 * "cardiology" (REFERRALS_FOR_REVIEW, service 31001), the database group with
 * `connection` and `database_lines` (may be NULL), state_dir, then `extra`
 * top-level lines (may be NULL).  Defaults for what the lines do not set
 * themselves: auth = "none", stall_timeout = 5 and, for a loopback base_url
 * only (where they are allowed), the test limits (100000 worklist calls a
 * day, 10000 requests/s); `extra` that sets `worklists` replaces the one
 * worklist.  The lines keep their numbers whatever the defaults (ers_lines
 * start at line 3), for tests that expect FILE:LINE.  0 or -errno.
 */
int write_test_config(const char *path, const char *base_url, const char *ers_lines, const char *connection,
                      const char *database_lines, const char *state_dir, const char *extra);

/*
 * Fails the test, naming `what` and the kind found but never the text itself,
 * when `text` (NULL: nothing to check) holds what no output, log or error line
 * may ever hold (DESIGN.md, invariants 3 and 4):
 *   - a patient identifier of `manifest` (the mock's, may be NULL): each
 *     referral's NHS number, valid or not, as ten digits or 3-3-4 with spaces
 *     or hyphens, and its free text (state_comment);
 *   - any NHS number: a standalone run of ten digits (or 3-3-4 with one kind of
 *     separator) that passes the modulus-11 check, whoever's it is;
 *   - a bearer token ("Bearer "), a JWT ("eyJ"), a private key, or a
 *     secret the test configurations hold (tests/secrets.list, read once);
 *   - each of `also` (NULL-terminated, may be NULL): the test's own identifiers
 *     and secrets (an invalid NHS number, a marker, a password).
 * The fixtures hold no patient name or date of birth (e-RS A005 carries the
 * NHS number only): a test that has one passes it in `also`.
 */
void assert_no_patient_identifier(const char *what, const char *text, json_object *manifest,
                                  const char *const *also);

/* What assert_no_patient_identifier() looks for, found in text (NULL: nothing to look
 * at): its kind ("a JWT", …) and *ret_at its byte offset; NULL when there is none. */
const char *patient_identifier_in(const char *text, json_object *manifest, const char *const *also, long *ret_at);

/*
 * Runs $ERSD_BUILD/ersd -c conf ARGS… (args NULL-terminated, may be NULL; o may
 * be NULL: ersd_run_full) and returns what it did; fails the test when ersd
 * could not be run, or when its stdout or stderr holds what
 * assert_no_patient_identifier() looks for (manifest may be NULL).  The caller
 * frees the result with run_free().
 */
struct run run_ersd(const char *conf, json_object *manifest, const char *const *args, const struct run_opts *o);
