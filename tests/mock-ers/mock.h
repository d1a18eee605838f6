/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * mock-ers: a stand-in for the NHS e-Referral Service FHIR API, for the tests,
 * the demo and the benchmarks.  See tests/mock-ers/README.md.
 *
 * Layout:
 *   data.c    the synthetic referrals and attachments, derived from (seed, index);
 *             attachment bytes are a counter-based PRNG stream, so any byte range
 *             is computed on demand and nothing large is ever held in memory.
 *   render.c  FHIR JSON: ReferralRequest (A005), the worklist List (A008, streamed),
 *             OperationOutcome, the test manifest; the CRI "PDF" (A007).
 *   server.c  the two HTTP origins (API and object store), routing, faults, stats.
 *   world.c   world mode: instead of the synthetic data, exactly the world a test
 *             describes in a file (POST /_mock/world), and the kill point.
 *   main.c    command line, signals, READY line.
 *
 * Locking: everything in `struct referral` / `struct attachment` is fixed at start
 * except the fields marked "mutable", which, like stats, faults and store tokens,
 * are only touched with `mock.lock` held.  POST /_mock/change (a test changing
 * a referral between two runs of ersd, never during one) also rewrites a few
 * fixed fields (priority, appointment, an attachment's content key, size and
 * creation) under the lock: requests in flight at that instant may see either
 * value.
 */

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include <json-c/json.h>

#define UBRN_FIRST 300000000000ULL      /* referral i has UBRN UBRN_FIRST + i */
#define UBRN_RELATED 399999999999ULL    /* the related (onward) referral of index 2 */
#define ATTACHMENT_ID_FIRST 7000000ULL  /* attachment n has id ATTACHMENT_ID_FIRST + n */
#define AVAILABILITY_LEN 48
#define MAX_EXTRA_ATTACHMENTS 4         /* attachments /_mock/change may add to one referral */
#define SPARE_ATTACHMENTS 16            /* the pool they come from, at the end of mock.attachments */
#define GIVEN_ID_MAX 1024               /* bytes of an id /_mock/change may give an added attachment */

#define SYS_PRIORITY "https://fhir.nhs.uk/STU3/CodeSystem/eRS-Priority-1"
#define SYS_SPECIALTY "https://fhir.nhs.uk/STU3/CodeSystem/SPECIALTY-1"
#define SYS_STATE "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralState-1"
#define SYS_NHS_NUMBER "http://fhir.nhs.net/Id/nhs-number"
#define SYS_SERVICE "http://fhir.nhs.net/Id/ers-service"
#define SYS_SDS_USER "http://fhir.nhs.net/Id/sds-user-id"
#define SYS_ODS "https://fhir.nhs.uk/Id/ods-organization-code"
#define SYS_REQUEST_ID "https://fhir.nhs.uk/Id/ers-request-id"
#define SYS_LIST_SELECTOR "https://fhir.nhs.uk/STU3/CodeSystem/eRS-ReferralListSelector-1"
#define SYS_API_ERROR "https://fhir.nhs.uk/STU3/CodeSystem/eRS-APIErrorCode-1"
#define SYS_HTTP_ERROR "https://fhir.nhs.uk/CodeSystem/http-error-codes"
#define SD "https://fhir.nhs.uk/STU3/StructureDefinition/"
#define CS "https://fhir.nhs.uk/STU3/CodeSystem/"

/* The endpoints that are counted and can be given faults (A033, A035, A037:
 * R4 HealthcareService read, search, version).  A006 (STU3 Binary)
 * is retired: its requests are counted (never reset: a test proves ersd sent
 * none) and answered 404, never served, never given faults. */
enum endpoint { EP_A008, EP_A005, EP_A042, EP_A006, EP_A007, EP_STORE, EP_A033, EP_A035, EP_A037, EP_COUNT };

enum fault_kind {
        FAULT_NONE,
        FAULT_500,
        FAULT_503,
        FAULT_429,
        FAULT_MALFORMED,
        FAULT_WRONG_TYPE,
        FAULT_WRONG_CONTENT_TYPE,
        FAULT_TRUNCATED,
        FAULT_STALL,
        FAULT_OVERSIZED,
        FAULT_404, /* the endpoint is not offered here (A042 missing in an environment) */
        FAULT_403, /* forbidden; on the store: the signed link expired */
        FAULT_422, /* e-RS will not release it (an attachment not available after all; A042: code PENDING) */
        FAULT_400, /* 400 REC_BAD_REQUEST; with code=PENDING (…) as older deployments of A042 said "not available" */
        FAULT_502, /* a gateway in front of the service failed */
        FAULT_429_BARE, /* 429 without Retry-After */
        FAULT_STALE, /* A005: answers an older version (current - 2, at least 1), as a lagging replica might */
        FAULT_TRICKLE, /* the whole body, TRICKLE_BYTES at a time: the client's reads cut UTF-8 characters */
        FAULT_SLOW,    /* the whole answer at `rate` bytes a second (default 1) */
        FAULT_ENDLESS, /* the endpoint's own answer (A042: its 307), then a body that never ends */
        FAULT_ENDLESS_500, /* a 500 whose plain-text body never ends */
        FAULT_LONG_LOCATION, /* A042: a 307 whose Location is LONG_LOCATION_BYTES long */
};

struct options {
        size_t referrals;        /* --referrals: worklisted referrals */
        size_t attachments;      /* --attachments: ordinary attachments per referral */
        uint64_t big_attachment; /* --big-attachment: bytes of referral 0's extra file, 0 = none */
        size_t tail_every;       /* --tail-every: every Nth ordinary attachment is a large one, 0 = none */
        uint64_t tail_max;       /* --tail-max: the largest of those large ones */
        const char **services;   /* --service values (not owned: argv) */
        size_t n_services;
        const char *service_names[8]; /* --service-name: the k-th service's name (argv) */
        size_t n_service_names;
        const char *token;       /* --token: required bearer token, NULL = none */
        bool app_restricted;     /* --app-restricted: refuse NHSD-* user headers */
        uint64_t seed;           /* --seed */
        size_t padding;          /* --padding: bytes of extra text per A005 answer */
        unsigned stall_seconds;  /* --stall-seconds: how long a `stall` fault lasts at most */
        unsigned fault_permille; /* --fault-rate: random faults per 1000 API/store requests (soak tests) */
        bool duplicate_entry;    /* --duplicate-entry: a worklist lists its first referral twice */
        uint64_t extra_sizes[8]; /* --extra-attachment: attachments of exactly these sizes on referral 0 */
        size_t n_extra;
        bool edge_text;          /* --edge-text: referral 0's comment and first title hold edge-case text */
        const char *attachment_ids[4];    /* --attachment-id: referral 0's k-th attachment's e-RS id (argv) */
        size_t n_attachment_ids;
        const char *attachment_titles[4]; /* --attachment-title: its title (argv) */
        size_t n_attachment_titles;
        bool verbose;            /* -v: log requests to stderr */
        /* Signed-JWT access (oauth.c): all NULL/0 when --jwks is not given. */
        const char *jwks;        /* --jwks: PEM public key the assertions must verify against */
        const char *kid;         /* --kid: its key id */
        const char *api_key;     /* --api-key: the application's API key (iss, sub) */
        unsigned token_lifetime; /* --token-lifetime: seconds an issued token lives (default 600) */
        long clock_skew;         /* --clock-skew: the mock's clock is the real one plus this (s) */
        /* TLS (server.c): both origins serve https when --tls-cert is given. */
        const char *tls_cert;    /* --tls-cert: PEM certificate chain */
        const char *tls_key;     /* --tls-key: its PEM key */
        const char *tls_client_ca; /* --tls-client-ca: the API origin requires a client certificate from it */
        size_t related_more;     /* --related: referral 2 also names the N worklisted referrals after it */
};

/* A code with its system and display, as FHIR codings carry them. */
struct code {
        const char *system;
        const char *code;
        const char *display;
};

/* A referral state: its code and what goes with it. */
struct state_def {
        const char *code;
        const char *display;
        const struct code *reason; /* the state's reason, NULL when the state has none */
        const char *status;        /* ReferralRequest.status in this state */
};

struct service {
        char id[64];
        char name[128];
};

/* KIND_RAW: no magic, the bare stream of stream.h (world mode). */
enum content_kind { KIND_PDF, KIND_JPEG, KIND_PNG, KIND_DOCX, KIND_TEXT, KIND_RTF, KIND_TIFF, KIND_RAW };

struct attachment {
        char id[24];                  /* e-RS attachment id (decimal); see attachment_id() */
        char binary_id[40];           /* uuid-like, the {id} of Binary/{id} */
        char title[96];
        const char *content_type;
        enum content_kind kind;       /* decides the first bytes ("magic") of the content */
        char creation[32];            /* a date on some, a dateTime on others */
        char indexed[32];             /* DocumentReference.indexed */
        uint64_t size;                /* the real number of bytes served */
        uint64_t declared_size;       /* attachment.size in A005 (differs on one attachment) */
        char attached_by_user[16];    /* SDS user id */
        char attached_by_org[16];     /* ODS code */
        const struct code *doc_type;  /* REFERRER / PROVIDER */
        uint64_t key;                 /* seeds the content stream */
        size_t referral;              /* index of the owning referral */
        const char *owner;            /* world mode: the UBRN of the owning referral (else NULL) */
        /* mutable, under mock.lock: */
        char availability[AVAILABILITY_LEN]; /* verbatim availability code */
        bool removed;                 /* no longer listed on its referral (/_mock/change) */
        bool id_dropped;              /* listed without its attachment.id (/_mock/change) */
        bool content_dropped;         /* listed as a DocumentReference without content (/_mock/change) */
        char *given_id;               /* owned: the e-RS id /_mock/change gave an added spare, else NULL */
        unsigned revision;            /* content revisions since start (/_mock/change) */
        bool sha_known;
        unsigned char sha256[32];     /* of the bytes served, once computed */
};

/* A worklist entry the client must skip, not refuse the whole worklist for. */
enum entry_fault {
        ENTRY_GOOD,
        ENTRY_BAD_VERSION,   /* referralRequestVersion is a string of letters: the UBRN is readable */
        ENTRY_BAD_REFERENCE, /* item.reference holds 11 digits: no UBRN can be read */
};

struct referral {
        char ubrn[13];
        char nhs_number[11];
        bool nhs_number_valid;        /* false for the one deliberately invalid number */
        bool worklisted;              /* false for the related referral */
        bool bare;                    /* index 3: every optional field left out */
        size_t service;               /* index into mock.services */
        const struct code *priority;
        const struct code *specialty;
        const struct code *referral_type;
        int state0;                   /* state at version0 (index into the state table) */
        int64_t version0;
        char pathway_start[32];       /* "" when absent */
        bool pathway_instant;         /* valueInstant (else valueDateTime) in A005 */
        char clinical_info_first_submitted[32]; /* "" when absent */
        char appointment_start[32];   /* used when the referral is BOOKED */
        char appointment_end[32];
        char appointment_created[32];
        char commissioning_org[16];   /* "" when absent */
        char request_id[48];
        size_t related;               /* index of a related referral, SIZE_MAX when none */
        size_t att_first, att_count;  /* its attachments in mock.attachments */
        bool comment_always;          /* a state comment even in states without a reason */
        bool comment_special;         /* that comment has a quote, an é and an emoji */
        bool comment_edge;            /* --edge-text: the comment is COMMENT_EDGE (quotes, controls, a NUL) */
        /* mutable, under mock.lock: */
        int64_t version;
        unsigned bumps;               /* state changes since version0 */
        bool delisted;                /* on no worklist now (A005 still serves it) */
        bool gone;                    /* unknown to e-RS now: A005 and A007 answer 404 */
        enum entry_fault entry_fault; /* how its worklist entry is malformed (/_mock/change) */
        size_t extra[MAX_EXTRA_ATTACHMENTS]; /* attachments added since start (spares), in order */
        size_t n_extra;
};

/* A consistent copy of one referral's mutable state, taken under the lock. */
struct referral_view {
        const struct referral *r;
        int64_t version;
        int state;
        size_t n_att;                           /* its listed attachments (removed ones left out) */
        size_t *att;                            /* n_att indexes into mock.attachments, owned */
        char (*availability)[AVAILABILITY_LEN]; /* n_att entries, owned */
};

struct fault {
        enum endpoint endpoint;
        enum fault_kind kind;
        int retry_after; /* seconds for the Retry-After header of 429/503; -1: the kind's own (1 for 429) */
        unsigned rate;   /* bytes a second of the answer's body; 0: as fast as it goes (slow: 1) */
        char ubrn[13];   /* "" = any */
        char code[64];   /* the OperationOutcome's code, "" = the kind's own */
        unsigned count;  /* requests left to spoil */
        struct fault *next;
};

struct store_token {
        char token[33];
        const struct attachment *attachment; /* the synthetic data's, or a world's (kept until exit) */
        struct store_token *next;
};

struct counter {
        char *name;
        uint64_t n;
};

struct stats {
        uint64_t endpoint[EP_COUNT];
        uint64_t credential_leaks;
        uint64_t rejected;
        uint64_t faults_served;
        uint64_t status[600];
        struct counter *a008_by_service; /* owned array */
        size_t n_a008_by_service;
        struct counter *leak_headers;    /* lower-cased header name → count */
        size_t n_leak_headers;
};

#define TOKEN_BUCKETS 4096

struct mock {
        struct options opt;
        struct service *services;
        size_t n_services;
        struct referral *referrals;     /* worklisted ones first, then the related one */
        size_t n_referrals;
        size_t n_worklisted;
        struct attachment *attachments;
        size_t n_attachments;           /* spares included */
        size_t spare_first, spares_used; /* the spare pool: attachments[spare_first …] */
        struct attachment **by_binary_id; /* sorted by binary_id */
        unsigned api_port, store_port;

        pthread_mutex_t lock;
        pthread_cond_t wake;            /* broadcast on shutdown (ends stalls) */
        bool stopping;
        struct stats stats;
        struct fault *faults;
        uint64_t fault_rng;             /* state of the random-fault generator (under lock) */
        struct store_token *tokens[TOKEN_BUCKETS];
        struct world *world;            /* world mode (world.c), under lock: the world served; NULL: the synthetic data */
};

/* A growable byte buffer; on allocation failure `oom` is set and appends are dropped. */
struct buf {
        char *p;
        size_t len, cap;
        bool oom;
};
void buf_append(struct buf *b, const void *p, size_t n);
void buf_printf(struct buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* data.c */
/* STATES[0..N_REAL_STATES-1] are the real codes, in the order a bump walks them;
 * STATES[STATE_FUTURE] is a code e-RS does not have (yet). */
#define N_REAL_STATES 12
#define STATE_FUTURE N_REAL_STATES
#define STATE_BOOKED 1
#define STATE_DEFERRED 5
extern const struct state_def STATES[N_REAL_STATES + 1];

uint64_t mix64(uint64_t x);
int mock_build(struct mock *m);            /* 0 or -ENOMEM */
void mock_free(struct mock *m);
int state_after(const struct referral *r, unsigned bumps);
int state_at_version(const struct referral *r, int64_t version);
bool referral_booked(const struct referral *r, int state);
const struct code *referral_reason(const struct referral *r, int state);
const char *referral_comment(const struct referral *r, int state);
/* Its length in bytes: the --edge-text comment holds a NUL. */
size_t referral_comment_len(const char *comment);
struct referral *mock_find_referral(struct mock *m, const char *ubrn);
/* --related N: referral 2 also names the N worklisted referrals after it (3,
 * 4, …) in supportingInfo: how many r names so (they are m->referrals[3 …]). */
size_t referral_related_more(const struct mock *m, const struct referral *r);
/* A referral's attachments, its own then those added (r->extra), removed ones
 * included: the index in mock.attachments of the k-th (k < referral_attachments(r)).
 * Call with the lock held (r->n_extra is mutable). */
size_t referral_attachments(const struct referral *r);
size_t referral_attachment(const struct referral *r, size_t k);
/* POST /_mock/change: applies `what` to r (see README); 0, or -EINVAL / -ENOSPC
 * with a message in *ret_why.  Call with the lock held. */
int mock_change_locked(struct mock *m, struct referral *r, const char *what, const char *attachment_id,
                       const char **ret_why);
struct attachment *mock_find_binary(struct mock *m, const char *binary_id);
/* Its e-RS id: the one /_mock/change gave it, else its number.  Call with the lock held. */
const char *attachment_id(const struct attachment *a);
struct attachment *mock_find_attachment(struct mock *m, const char *id);
void attachment_fill(const struct attachment *a, uint64_t pos, unsigned char *buf, size_t len);
void mock_hash_attachments(struct mock *m, struct attachment **list, size_t n);
void sha256_hex(const unsigned char sha[32], char hex[65]);
void sha256_buf(const void *p, size_t len, unsigned char out[32]);
char *cri_render(const struct mock *m, const struct referral *r, int64_t version, int state, size_t *ret_len);

/* Copies the mutable state of `r` (at `version`, 0 = current); call with the lock held.
 * 0 or -ENOMEM. */
int view_take_locked(const struct mock *m, const struct referral *r, int64_t version,
                     struct referral_view *ret);
void view_release(struct referral_view *v);

/* render.c: every char * returned is malloc'd, NUL-terminated, length in *ret_len. */
char *render_referral(const struct mock *m, const struct referral_view *v, size_t *ret_len);
char *render_outcome(const char *issue_code, const char *code, const char *display,
                     const char *diagnostics, size_t *ret_len);
/* The same for the R4 endpoints (A042, HealthcareService): NHSDigital-OperationOutcome. */
char *render_outcome_r4(const char *issue_code, const char *code, const char *diagnostics, size_t *ret_len);
char *render_manifest(struct mock *m, const char *only_ubrn, bool hashes, size_t *ret_len);

/* services.c: R4 HealthcareService in the API's shape.  Service s of m (its
 * version is s + 1); the searchset Bundle of the services idx[0..n) (indexes
 * into m->services), `self` its link's url. */
char *render_service(const struct mock *m, size_t s, size_t *ret_len);
char *render_service_bundle(const struct mock *m, const size_t *idx, size_t n, const char *self, size_t *ret_len);
/* The index of the service with id `id`, or SIZE_MAX. */
size_t mock_find_service(const struct mock *m, const char *id);
char *json_text(json_object *o, size_t *ret_len); /* serialises and puts o */

struct worklist_item {
        size_t referral;
        int64_t version;
        int state;
        enum entry_fault entry_fault;
};
struct worklist_gen;
/* Takes ownership of items.  pad_bytes > 0 appends a List.note that large. */
struct worklist_gen *worklist_gen_new(const struct mock *m, struct worklist_item *items, size_t n,
                                      bool slot_issues, uint64_t pad_bytes);
ssize_t worklist_gen_read(struct worklist_gen *g, char *buf, size_t max); /* 0 at the end */
void worklist_gen_free(struct worklist_gen *g);

/* oauth.c: the token endpoint and the tokens it issued (its own lock). */
int oauth_init(struct mock *m);     /* loads --jwks; 0 or -errno (said on stderr) */
void oauth_free(struct mock *m);
bool oauth_enabled(const struct mock *m);
/* POST /oauth2/token with form `body`; token_url is this endpoint's URL (aud).
 * Returns the JSON answer (malloc'd) and its status. */
char *oauth_token_request(struct mock *m, const char *body, size_t len, const char *token_url, unsigned *ret_status,
                          size_t *ret_len);
/* NULL when the Authorization header (may be NULL) holds a live issued token, else why not. */
const char *oauth_check_bearer(struct mock *m, const char *authorization);
/* Every token issued so far expires after `after` more API requests (0: now);
 * after > 0 also limits every token issued from now on to that many. */
void oauth_expire(long after);
void oauth_revoke(bool future);     /* revokes every token issued so far (and, if future, those to come) */
json_object *oauth_stats(void);

/* Builders for world.c, the same as render.c's own (keys are string constants). */
void fhir_put(json_object *o, const char *key, json_object *v);
json_object *fhir_arr1(json_object *v);
json_object *fhir_ext(const char *url, const char *value_key, json_object *value);
json_object *fhir_meta(const char *profile, const char *version);

/* server.c */
int server_start(struct mock *m);  /* binds both origins; 0 or -errno */
void server_stop(struct mock *m);

/*
 * world.c: world mode.  POST /_mock/world?file=PATH replaces what the mock
 * serves by the world PATH describes (README.md, "World mode"); a world is
 * immutable once loaded, and kept until the mock exits (a request may still
 * stream from the one it replaced), so what these return stays valid.
 */
struct world;
bool world_mode(struct mock *m);            /* a world has been loaded */
/* Loads PATH and serves it from now on: 0, or -errno with one line in why. */
int world_load(struct mock *m, const char *path, char *why, size_t why_len);
void world_free(struct mock *m);            /* every world loaded (at exit) */
/* A005 of ubrn (version 0: the current one): 0 when served, -ENOENT (unknown
 * or gone), -ESRCH (no such version).  Call without the lock. */
int world_referral_check(struct mock *m, const char *ubrn, int64_t version);
char *world_render_referral(struct mock *m, const char *ubrn, size_t *ret_len, int64_t *ret_version);
/* A042/store: the attachment of that binary id, NULL when none. */
struct attachment *world_find_binary(struct mock *m, const char *binary_id);
/* A007: the letter of ubrn, NULL when unknown or gone. */
const struct attachment *world_letter(struct mock *m, const char *ubrn);
/* A008: the List for a service (NULL: every service) and list type, with a
 * note of pad_bytes (the `oversized` fault). */
char *world_render_worklist(struct mock *m, const char *service, bool slot_issues, size_t pad_bytes,
                            size_t *ret_len);
/* Write-back in world mode (writeback.c): a referral as served now (its version, its state's code, ""
 * when none is readable), false when unknown or gone; a write applied to it (its version one more, the
 * state and priority it sets, NULL: unchanged), kept across worlds.  Both under mock.lock. */
bool world_wb_view_locked(struct mock *m, const char *ubrn, int64_t *ret_version, char *state, size_t n);
void world_wb_apply_locked(struct mock *m, const char *ubrn, const char *state, const char *priority);
/* GET /_mock/writeback/applied: {"referrals":[{"ubrn","bumps","at","state","priority"}]}, what the
 * writes applied to each world referral (README.md, "World mode"). */
json_object *world_applied_json(struct mock *m);
/* The kill point (POST /_mock/killpoint): the `after`-th API or store request
 * from now on (only those whose URL holds `key` when key is not NULL: a UBRN)
 * first sends `sig` to `pid` (pid 0: none).  Any mode. */
void killpoint_set(struct mock *m, long pid, uint64_t after, int sig, const char *key);
json_object *killpoint_state(struct mock *m);
/* Each API and store request, on arrival: its path and its focus= argument (A029's; may be NULL). */
void killpoint_request(struct mock *m, const char *url, const char *focus);
