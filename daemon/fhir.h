/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The FHIR model: what the daemon keeps of e-RS answers (A008 worklist, A005
 * referral, OperationOutcome), parsed with json-c.
 *
 * Text: free text (a comment, a title, a display name) is kept byte for byte,
 * except that a NUL (\u0000, which PostgreSQL text cannot hold) becomes U+FFFD,
 * on every database alike; a code, id or reference holding a NUL is
 * unreadable (as if absent).
 *
 * Ownership: every `char *` in these structs is owned by the struct that holds
 * it (malloc'd, NUL-terminated, NULL when the field was absent); free the whole
 * thing with the matching *_free() function, which accepts NULL.  Codes are kept
 * verbatim (an unknown state or priority is stored as e-RS sent it, never
 * rejected).  Parsers return 0, or -EBADMSG with one line in the errbuf saying
 * which element was wrong; on failure `*ret` is left untouched.
 *
 * PATIENT DATA: `nhs_number` fields are patient identifiers.  They go to the
 * PAS and nowhere else: never into a log line or an error message.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <json-c/json.h>

#include "err.h"

#define UBRN_LEN 12 /* e-RS Unique Booking Reference Number: 12 digits */

/* True when `s` is exactly 12 ASCII digits. */
bool ubrn_valid(const char *s);

/* True when `s` is 10 digits passing the NHS number modulus-11 check. */
bool nhs_number_valid(const char *s);

/* One entry of an A008 worklist. */
struct worklist_entry {
        char ubrn[UBRN_LEN + 1]; /* from entry.item.reference "ReferralRequest/{ubrn}" */
        int64_t version;         /* referralRequestVersion; -1 when absent */
        char *priority;          /* ROUTINE / URGENT / TWO_WEEK_WAIT / verbatim unknown */
        char *specialty;         /* specialty code */
        char *service_id;        /* service identifier value */
        char *service_name;      /* service display */
        char *referral_type;     /* referralType code */
        char *nhs_number;        /* PATIENT IDENTIFIER, via the #Patient-… contained ref */
        bool kept;               /* not read from a worklist: made from what the PAS kept of one (a referral
                                    read again without a worklist call), so a NULL field is not known and
                                    the value stored stands for it (write.c) */
};

/* An element of the List's entry array that is not a worklist entry (not an
 * object, no ReferralRequest/<12-digit UBRN>, a version that is not a
 * non-negative integer): skipped, so that one bad entry costs that entry
 * only, never the whole worklist (and a worklist call of the day's two). */
struct worklist_skip {
        size_t index;            /* its position in the List's entry array, from 0 */
        char ubrn[UBRN_LEN + 1]; /* its UBRN when that was readable, else "" */
        const char *why;         /* static text, our own words: what was wrong with it */
};

struct worklist {
        struct worklist_entry *entries; /* owned array of n entries */
        size_t n;
        struct worklist_skip *skipped;  /* owned array of n_skipped, in the List's order */
        size_t n_skipped;
};

/* How the daemon treats an attachment's availability status. */
enum availability {
        AVAILABILITY_AVAILABLE,  /* AVAILABLE: fetch it */
        AVAILABILITY_PENDING,    /* PENDING: malware scan running, ask again later */
        AVAILABILITY_NEVER,      /* THREATS_FOUND, "THREATS FOUND", VALIDATION_FAILED */
        AVAILABILITY_UNKNOWN,    /* absent or a code we do not know: do not fetch, keep verbatim */
};

/* One attachment: a contained DocumentReference's content[0].attachment (a
 * DocumentReference without one holds nothing to fetch and is not listed). */
struct attachment {
        char *id;               /* attachment.id (e-RS attachment id); never NULL: a referral with an
                                   attachment without one is refused */
        char *url;              /* attachment.url, relative: "Binary/{id}" */
        char *binary_id;        /* the {id} part of url, for A042/A006 */
        char *title;
        char *content_type;
        char *creation;         /* as sent (date or dateTime) */
        int64_t declared_size;  /* attachment.size; -1 when absent; not trusted */
        char *availability_code;/* verbatim availability code; NULL when absent */
        enum availability availability;
        char *attached_by_user; /* AttachedBy identifier value (SDS user id) */
        char *attached_by_org;  /* AttachedByOrganisation identifier value (ODS code) */
        char *doc_type;         /* DocumentReference.type code (REFERRER / PROVIDER / …) */
        char *description;      /* DocumentReference.description */
};

/* An A005 ReferralRequest. */
struct referral {
        char ubrn[UBRN_LEN + 1];
        int64_t version;           /* meta.versionId as an integer; -1 when absent */
        char *nhs_number;          /* PATIENT IDENTIFIER: subject.identifier.value */
        char *priority;            /* Extension-eRS-ReferralPriority-1 code */
        char *state;               /* Extension-eRS-ReferralState-1 nested "state" code */
        char *state_reason;        /* nested "reason" code, when present */
        char *state_comment;       /* nested "comment" string, when present */
        char *specialty;           /* specialty.coding[0].code */
        char *specialty_display;   /* specialty.coding[0].display */
        char *service_id;          /* the contained Appointment's ers-service participant (booked, deferred to
                                      the provider, sent for triage); without one, the one service the
                                      shortlist names (a shortlist of several names none): else NULL */
        char *service_name;        /* that service's display */
        char *pathway_start;       /* Extension-eRS-eReferralPathwayStart-1 (valueInstant or valueDateTime) */
        char *clinical_info_first_submitted;
        char *appointment_start;   /* contained Appointment via Extension-eRS-Appointment-1 */
        char *appointment_end;
        char *commissioning_org;   /* Extension-eRS-Commissioning-Rule-Org-1 value */
        char *request_id;          /* identifier with system https://fhir.nhs.uk/Id/ers-request-id */
        char *status;
        char *intent;
        struct attachment *attachments; /* owned array */
        size_t n_attachments;
        char (*related)[UBRN_LEN + 1];  /* owned array of related UBRNs (supportingInfo ReferralRequest/…) */
        size_t n_related;
        unsigned text_nul_fields;  /* free-text fields (comment, titles, display names) that held a NUL,
                                      kept with each NUL replaced by U+FFFD (docs/schema.md) */
        unsigned documents_without_content; /* contained DocumentReferences with no content[0].attachment:
                                               nothing to fetch or store; the reader says how many */
};

/* An OperationOutcome's first issue, for error lines.  Each string as sent,
 * cut at 256 bytes on a character: server text, quoted only through
 * server_text() (daemon/server_text.h), the one rule. */
struct outcome {
        char *code;        /* issue[0].details.coding[0].code, e.g. PATIENT_ERROR */
        char *severity;
        char *diagnostics; /* may echo request data */
};

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

void worklist_free(struct worklist *w);   /* frees the contents; not w itself */
void referral_free(struct referral *r);   /* frees the contents; not r itself */

/* The occurrence of r's attachment i (docs/schema.md, ers_document): how
 * many attachments before it in r's list share its id; 0 for an attachment
 * without an id. */
unsigned attachment_occurrence(const struct referral *r, size_t i);
void outcome_free(struct outcome *o);     /* frees the contents; not o itself */
