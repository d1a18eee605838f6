/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Issue 15 on every engine: what schema version 5 adds, written through the
 * PAS target (adapters/pas.h, pas_answer.h) and read back through an
 * independent connection as a PAS would.  Shared by tests/unit/test_pas.c
 * (SQLite) and tests/integration/test_engines.c (SQLite, PostgreSQL,
 * MariaDB); fails with cmocka assertions.
 */

#include "adapters/pas.h"

/*
 * A referral with every column of the element walk, its three additional
 * requirements and a document's three new columns, each a long text (70,000
 * bytes with a 4-byte character across every width a column ever had): read
 * back whole and exactly; a new version with other requirements replaces
 * them.  UBRN 000000000811.
 */
void pas_elements_whole(struct pas *p, const char *connection, const char *dir);

/*
 * The A005 answers kept (ers_referral_answer): bytes of every value 0-255
 * and 5 MiB long read back exact by SHA-256 and size, through the
 * independent connection and pas_answer_get(); the same bytes again write
 * nothing; other bytes of the same version are a row of their own, listed by
 * pas_answers_kept(); a row altered by hand is refused on reading (-EBADMSG).
 * UBRN 000000000812.
 */
void pas_elements_answers(struct pas *p, const char *connection);
