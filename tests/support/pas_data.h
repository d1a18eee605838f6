/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Test data for the PAS target (adapters/pas.h), shared by the tests that
 * drive it (tests/unit/test_pas.c on SQLite, tests/integration/test_engines.c
 * on every engine): spool-like files of known SHA-256, a referral and a
 * document record, and the measurement of peak RSS while a big document is
 * stored, in a fresh process.  Failures are cmocka assertions.
 */

#include <stdbool.h>
#include <stdint.h>

#include "adapters/pas.h"

#define PAS_DATA_MIB (1024 * 1024)
#define PAS_DATA_NHS_VALID "9991234578"   /* test range (999…), passes modulus 11 */
#define PAS_DATA_NHS_INVALID "9991234577" /* fails modulus 11 */

/* pas_init_schema() in a transaction of its own, committed, as `ersd
 * --init-db` runs it: 0 or its negative errno, one line in e. */
int pas_data_init_schema(struct pas *p, struct errbuf *e);

/* Writes `size` pseudo-random bytes (xorshift from `seed`) to dir/name;
 * returns an fd open for reading and writes the SHA-256 hex into sha. */
int pas_data_file(const char *dir, const char *name, int64_t size, uint64_t seed, char sha[65]);

/* A booked, routine cardiology referral with no related referral.  The
 * strings are static; the caller may point fields elsewhere. */
void pas_data_referral(struct referral *r, const char *ubrn, int64_t version, const char *nhs);

/* A fetched attachment of `size` bytes with SHA-256 `sha`, shown with and
 * fetched for `ubrn`. */
struct document_rec pas_data_document(const char *ubrn, const char *aid, int64_t size, const char *sha);

/* What storing a big document cost in memory. */
struct pas_data_rss {
        long grown_kib;    /* peak RSS growth while storing it, after a warm-up */
        long peak_kib;     /* peak RSS of the process */
        bool instrumented; /* under a sanitiser or valgrind: the figures mean little */
        double seconds;    /* to store and commit it, warm-up and connection included */
};

/*
 * Stores the document of `big_path` (`size` bytes, SHA-256 `sha`) as
 * attachment "big" of UBRN 000000000001 through a new connection (adapter
 * auto) in a fresh process: `self` run again with "--store-document …",
 * after a 1 MiB warm-up document (`small_path`, `small_sha`, attachment
 * "warm-up").  Fails the test when the process does not store it.
 */
void pas_data_store_measured(const char *self, const char *connection, const char *big_path, int64_t size,
                             const char *sha, const char *small_path, const char *small_sha,
                             struct pas_data_rss *ret);

/* The other side: main() calls it first; returns -1 when argv is not a
 * "--store-document" run, else the exit status for main to return. */
int pas_data_store_child(int argc, char **argv);

/*
 * Reads one of our .sql files (adapters/sql/<vendor>.sql, the version-1
 * fixtures): statements each ending with ";" at the end of a line, "--"
 * commentary, blank lines and "GO" lines (sqlcmd) between them; a PL/SQL
 * block (a statement starting "BEGIN" or "DECLARE") ends at a line holding
 * only "/" (SQL*Plus), and keeps its own "END;".  Calls fn with each statement,
 * without its ';', and its index from 0.  Returns how many, or -1 (with a
 * line on stderr) when the file cannot be read, a statement is too long, or
 * the file ends inside one.
 */
int pas_data_sql_statements(const char *path, void (*fn)(void *userdata, size_t index, const char *stmt),
                            void *userdata);

/* Fails the test unless adapters/sql/<name>.sql (read from the working
 * directory, the repository root) holds exactly adapter a's DDL statements,
 * in order. */
struct adapter;
void pas_data_schema_file_matches(const struct adapter *a);
