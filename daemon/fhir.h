/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The FHIR parsers: e-RS answers (A008 worklist, A005 referral,
 * OperationOutcome) read with json-c into the structs of model.h, and the
 * A008 request body built.
 *
 * Parsers return 0, or -EBADMSG with one line in the errbuf saying which
 * element was wrong; on failure `*ret` is left untouched.  What is kept, and
 * who owns it, is model.h's contract.
 *
 * Where: fhir_worklist.c (the streaming A008 worklist), fhir.c (A005,
 * OperationOutcome, the A008 request body), fhir_json.c (fhir_parse_text(),
 * and the reads they share, fhir_json.h).
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "err.h"
#include "model.h"

/*
 * The A008 worklist, parsed while it arrives, never held whole.  A json-c tree
 * of the whole List costs about 18 bytes of memory per byte of JSON; instead a
 * small scanner (string- and escape-aware, counting depth) cuts the List into
 * pieces: each top-level member's name and value, and, where the value is an
 * array (`entry`, `contained`), each element on its own.  Each piece is parsed
 * alone with json-c, read and freed at once, so memory holds one entry at a
 * time plus what is kept: the fields of each worklist_entry, and of each
 * contained Patient its id and NHS number until the entries' "#Patient-…"
 * references are resolved at the end.
 *
 * Every byte goes through json-c (the pieces, strictly, UTF-8 checked, nested
 * at most 64 deep as a whole document would be) or through the scanner (what
 * lies between pieces: blanks, ':', ',', the brackets of the List and of its
 * arrays), so what json-c refuses whole is refused here too.
 *
 * worklist_parser_feed() takes the bytes as they come, in pieces of any size;
 * it returns -EBADMSG at the first syntax error ("malformed JSON near byte N:
 * <why>", "malformed JSON: NUL byte at byte N", "malformed JSON: data after
 * the end of the document"), -ENOMEM, or 0.  worklist_parser_finish() says
 * whether the whole was a worklist: "empty answer, expected JSON",
 * "malformed JSON: the document ends before it is complete", then what the
 * List says, judged in the order a whole-document parse would (resourceType
 * first, wherever it stood, then entry: "expected a List, got Bundle",
 * "entry is not an array").  An element of entry that is valid JSON but not a
 * worklist entry refuses nothing: it is left out of the entries and listed in
 * ret->skipped (a syntax error anywhere still refuses the whole answer: past
 * one, nothing says where the next entry begins).  On success the caller owns *ret (worklist_free());
 * on failure *ret is untouched.  After an error only free() is meaningful.
 * The caller bounds the size (ERS_JSON_MAX).
 */
struct worklist_parser;

int worklist_parser_new(struct worklist_parser **ret, struct errbuf *e);
int worklist_parser_feed(struct worklist_parser *p, const char *data, size_t len, struct errbuf *e);
int worklist_parser_finish(struct worklist_parser *p, struct worklist *ret, struct errbuf *e);
void worklist_parser_free(struct worklist_parser *p); /* accepts NULL */

/* The same for a worklist held in memory (len bytes, need not be NUL-terminated). */
int fhir_parse_worklist(const char *text, size_t len, struct worklist *ret, struct errbuf *e);

int fhir_parse_referral(json_object *root, struct referral *ret, struct errbuf *e);
int fhir_parse_outcome(json_object *root, struct outcome *ret, struct errbuf *e);

/* Parses JSON text (len bytes, need not be NUL-terminated) into a json-c tree.
 * The caller owns *ret (json_object_put).  -EBADMSG on malformed text. */
int fhir_parse_text(const char *text, size_t len, json_object **ret, struct errbuf *e);

/* Builds the A008 request body (a FHIR Parameters resource) for a list type
 * and a service id (service may be NULL).  Caller owns the result (free()). */
char *fhir_worklist_request(const char *list_type, const char *service_id);
