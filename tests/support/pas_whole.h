/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Two scenarios of the PAS target (adapters/pas.h) that every engine must
 * pass alike, shared by tests/unit/test_pas.c (SQLite) and
 * tests/integration/test_engines.c (SQLite, PostgreSQL, MariaDB): issue 13's
 * defects 8 (a text longer than its column parked the referral) and 16 (a
 * letter and an attachment with one id, or one id twice, broke a unique
 * key).  Each runs on a connected target with the version-4 schema, reads
 * back through an independent connection (`connection`) what a PAS would
 * see, and fails with cmocka assertions.  `dir` holds the spool-like files.
 */

#include <stddef.h>

#include "adapters/pas.h"

/*
 * A text of exactly `len` bytes of UTF-8, owned by the caller (free): ASCII,
 * quotes, a backslash, '%' and '_', 2-, 3- and 4-byte characters, and at
 * each width a column or a read buffer ever had (10, 12, 16, 32, 36, 40, 64,
 * 65, 128, 255, 256, 512, 1024, 4000, 4096, 8192, 65535, 65536) a 4-byte
 * character across it: a value clipped at any of them ends inside a
 * character.  `seed` varies the mix.
 */
char *pas_whole_text(size_t len, unsigned seed);

/* The value of `sql` (one text parameter) read through the independent
 * connection `raw` equals `want`, byte for byte; else the test fails, saying
 * the lengths (never the value). */
struct db;
void pas_whole_assert_read(struct db *raw, const char *sql, const char *param, const char *want);

/*
 * Defect 8: a referral, its worklist entry, its retry row and two documents
 * whose every e-RS text is long (ids of 300 bytes, titles, display names and
 * a service name of 70,000, an ODS code of 40 characters, codes of 100, …)
 * are written without an error, nothing parked, and read back whole and
 * exactly: through the independent connection and through every pas.h read
 * that returns them.  UBRN 000000000801.
 */
void pas_whole_texts(struct pas *p, const char *connection, const char *dir);

/*
 * Text ersd writes itself into a bounded column (a not-fetched reason, a
 * retry's reason, a poll's result line), however long what it quotes: cut
 * to the column's bytes on a character, never in the middle of one (which
 * PostgreSQL refuses: 22021), and recognised as unchanged when written
 * again.  UBRN 000000000803.
 */
void pas_whole_own_texts(struct pas *p, const char *connection, const char *dir);

/*
 * Defect 16: in one fresh referral, a letter "CRI-v1" and an attachment with
 * the id "CRI-v1", and one attachment id twice (occurrences 0 and 1), with
 * four different contents: four documents, each with its own bytes; written
 * again, nothing; a new content for the second "dup" revises it alone.
 * UBRN 000000000802.
 */
void pas_whole_identity(struct pas *p, const char *connection, const char *dir);
