/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The model: what the daemon keeps of e-RS answers (an A008 worklist's
 * entries, an A005 referral with its attachments, an OperationOutcome's
 * first issue), as plain C structs that both sides use: the FHIR parsers
 * (fhir.h) fill them, the engine moves them, the PAS layer
 * (adapters/pas.h) writes them.  Neither json-c nor ODBC types appear here.
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
 * rejected).
 *
 * PATIENT DATA: `nhs_number` fields are patient identifiers.  They go to the
 * PAS and nowhere else: never into a log line or an error message.
 */

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define UBRN_LEN 12 /* e-RS Unique Booking Reference Number: 12 digits */

/* True when `s` is exactly 12 ASCII digits. */
bool ubrn_valid(const char *s);

/* True when `s` is 10 digits passing the NHS number modulus-11 check. */
bool nhs_number_valid(const char *s);

/* True when `s` (may be NULL) is exactly n ASCII digits. */
bool all_digits(const char *s, size_t n);

/*
 * An e-RS service id that ersd sends: a worklist's `service` (the
 * configuration), `ersd services ID` (the command line), A033's path and
 * A035's _id list (a URL), the key of the day's worklist budget
 * (ers_budget.service_id).  The specification says only "string"; it is the
 * logical id of an R4 HealthcareService, so FHIR's id rule bounds it (A-Z a-z
 * 0-9 '-' '.', at most 64), and every id it publishes is a few digits.  Ours:
 * 1 to SERVICE_ID_MAX of those characters (ers_budget's key holds 16), the
 * first a letter or digit (never a URL's "." or ".." segment, never read as a
 * command-line option).  Each character is one that a URL carries as it is.
 *
 * A service id e-RS sends (a worklist entry's, a referral's, a
 * HealthcareService's) is data: kept as sent, never checked against this.
 */
#define SERVICE_ID_MAX  16
#define SERVICE_ID_RULE "1 to 16 letters, digits, '.' or '-', the first a letter or digit"

/* True when `s` (may be NULL) is a service id as above. */
bool service_id_valid(const char *s);

/* clinicalInfoPrinted of a worklist entry: whether e-RS says the referral
 * letter was printed there.  Zero is "not known", so an entry made with an
 * initialiser says nothing it was not told. */
enum printed {
        PRINTED_UNKNOWN = 0, /* not said, not a boolean, or said both ways (stored as NULL) */
        PRINTED_NO,          /* false (stored as 0) */
        PRINTED_YES,         /* true (stored as 1) */
};

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
        /* The entry's working state in e-RS (ers_worklist_entry), each as sent, NULL when not said.
         * Each is 0..1 in the specification; one e-RS repeats keeps every value, in order, joined by
         * one space, so none is lost.  A value holding a NUL, or not a string, is unreadable (left out). */
        char *ubrn_received;               /* ubrnReceived (APPOINTMENT_SLOT_ISSUES): a dateTime */
        char *patient_contact_expected;    /* patientContactExpected (APPOINTMENT_SLOT_ISSUES): a date */
        char *last_contact;                /* lastContact (APPOINTMENT_SLOT_ISSUES): a dateTime */
        char *clinical_information_status; /* clinicalInformationStatus code (APPOINTMENT_SLOT_ISSUES) */
        char *request_context_status;      /* requestContextStatus code (REFERRALS_FOR_REVIEW) */
        enum printed clinical_info_printed; /* clinicalInfoPrinted (both worklists) */
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

/* How the daemon treats an availability code (NULL: absent), as A005 states
 * it on an attachment and A042 names it when it will not release a file. */
enum availability availability_of(const char *code);

/* One attachment: a contained DocumentReference's content[0].attachment (a
 * DocumentReference without one holds nothing to fetch and is not listed). */
struct attachment {
        char *id;               /* attachment.id (e-RS attachment id); never NULL: a referral with an
                                   attachment without one is refused */
        char *url;              /* attachment.url, relative: "Binary/{id}" */
        char *binary_id;        /* the {id} part of url, for A042 */
        char *title;
        char *content_type;
        char *creation;         /* as sent (date or dateTime) */
        int64_t declared_size;  /* attachment.size; -1 when absent; not trusted */
        char *availability_code;/* verbatim availability code; NULL when absent */
        enum availability availability;
        char *attached_by_user; /* AttachedBy identifier value (SDS user id) */
        char *attached_by_org;  /* AttachedByOrganisation identifier value (ODS code) */
        char *doc_type;         /* DocumentReference.type code (REFERRER / PROVIDER / …) */
        char *description;      /* DocumentReference.description (free text) */
        char *attached_on_behalf_of; /* AttachedOnBehalfOf identifier value (SDS user id) */
        /* Which document of its id it is (docs/schema.md, "Document identity"): set
         * by fetch.c before the write, paired with what the PAS holds
         * (occurrence.h); 0 until then. */
        unsigned occurrence;
        bool alike; /* occurrence.h: its description does not tell it from another of its id */
};

/* One additional requirement of a referral (Extension-eRS-AdditionalRequirement-1,
 * also read under its specification's name Extension-eRS-PatientAdditionalRequirement-1):
 * what the patient needs to attend (an interpreter, an advocate, transport, …). */
struct requirement {
        char *code;     /* ADVOCACY, INTERPRETER, TRANSPORT, or a code e-RS adds later, verbatim */
        char *display;  /* its display (free text) */
        char *system;   /* its code system */
        char *comments; /* the referrer's words about it (free text; may name a patient) */
};

/* The A005 answer a referral was read from, as it arrived: the body's bytes
 * before any parsing (at most ERS_JSON_MAX), kept whole in the PAS
 * (ers_referral_answer) so that nothing e-RS said is lost.  bytes NULL: the
 * referral was not read from an answer (a test's, a remap's). */
struct referral_answer {
        unsigned char *bytes;    /* owned */
        size_t len;
        char correlation_id[37]; /* the A005's X-Correlation-ID ("" when none) */
        char received_at[32];    /* UTC, ISO 8601: when it arrived ("" when not known) */
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
        /* The rest of the element walk (docs/schema.md, "Every element of a referral"). */
        char *clinical_info_last_updated; /* Extension-eRS-ClinicalInfoLastUpdated-1 */
        char *state_reason_system;  /* the state reason's code system (which reference data it is from) */
        char *state_reason_display; /* its display (free text) */
        char *appointment_reference; /* Extension-eRS-Appointment-Reference-1: "Appointment/{id}" */
        char *appointment_status;  /* the contained Appointment's status (booked, proposed, cancelled, …) */
        char *appointment_created;
        char *appointment_reason;  /* its reason[0].coding[0]: review reason, review outcome, cancellation */
        char *appointment_reason_system;
        char *appointment_reason_display; /* free text */
        char *appointment_comment; /* free text; may name a patient */
        char *appointment_slot;    /* slot[0].reference: "Slot/{id}" */
        char *appointment_clinician; /* the allocated clinician participant's SDS user id */
        char *clinic_type;         /* the service search criteria's clinicType code */
        char *named_clinician;     /* the service search criteria's namedClinician (SDS user id) */
        char *advice_request;      /* supportingInfo "CommunicationRequest/{id}": the advice and guidance
                                      request the referral was converted from */
        struct requirement *requirements; /* owned array, in e-RS's order */
        size_t n_requirements;
        struct referral_answer answer;    /* owned contents */
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

void worklist_entry_free(struct worklist_entry *we); /* frees the contents; not we itself */
void worklist_free(struct worklist *w);   /* frees the contents; not w itself */
void referral_free(struct referral *r);   /* frees the contents; not r itself */
void referral_answer_free(struct referral_answer *a); /* frees the bytes; accepts NULL */

/* The occurrence of r's attachment i (docs/schema.md, ers_document): how
 * many attachments before it in r's list share its id; 0 for an attachment
 * without an id. */
unsigned attachment_occurrence(const struct referral *r, size_t i);
void outcome_free(struct outcome *o);     /* frees the contents; not o itself */
