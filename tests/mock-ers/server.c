/* SPDX-License-Identifier: MIT */
/*
 * The two HTTP origins of the mock e-RS:
 *   API   http://127.0.0.1:<api>/referrals/...  (A008, A005, A042, A007; A033,
 *         A035, A037: R4 HealthcareService; A006, retired, is counted and
 *         answered 404)
 *         http://127.0.0.1:<api>/_mock/...      (control endpoints for tests)
 *   store http://127.0.0.1:<store>/store/<binary id>?token=<single-use token>
 *
 * libmicrohttpd runs one thread per connection, so a `stall` fault (which
 * sleeps inside the content callback) blocks only its own connection, and a
 * multi-hundred-MiB attachment is streamed from a callback with no copy held.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>

#include <gnutls/gnutls.h>
#include <microhttpd.h>
#include <openssl/rand.h>

#include "mock.h"
#include "writeback.h"

#define MAX_REQUEST_BODY (1024 * 1024)
#define OVERSIZED_PAD (10 * 1024 * 1024 + 512 * 1024) /* makes a worklist > 10 MB */
#define FHIR_JSON "application/fhir+json"

static const char *const ENDPOINT_NAMES[EP_COUNT] = { "A008", "A005", "A042", "A006", "A007", "store",
                                                      "A033", "A035", "A037" };

static const struct {
        const char *name;
        enum fault_kind kind;
} FAULT_NAMES[] = {
        { "500", FAULT_500 },
        { "503", FAULT_503 },
        { "429", FAULT_429 },
        { "malformed", FAULT_MALFORMED },
        { "wrong_type", FAULT_WRONG_TYPE },
        { "wrong_content_type", FAULT_WRONG_CONTENT_TYPE },
        { "truncated", FAULT_TRUNCATED },
        { "stall", FAULT_STALL },
        { "oversized", FAULT_OVERSIZED },
        { "404", FAULT_404 },
        { "403", FAULT_403 },
        { "422", FAULT_422 },
        { "400", FAULT_400 },
        { "502", FAULT_502 },
        { "429_bare", FAULT_429_BARE },
        { "stale", FAULT_STALE },
        { "trickle", FAULT_TRICKLE },
        { "slow", FAULT_SLOW },
        { "endless", FAULT_ENDLESS },
        { "endless_500", FAULT_ENDLESS_500 },
        { "long_location", FAULT_LONG_LOCATION },
};

#define TRICKLE_BYTES 3 /* fewer than a 4-byte UTF-8 character */
#define LONG_LOCATION_BYTES (300 * 1024) /* a Location header over libcurl's 100 KB limit for one header */

struct origin {
        struct mock *m;
        bool store;
        struct MHD_Daemon *daemon;
};

static struct origin api_origin, store_origin;

/* Per request: the request body, collected as MHD hands it over. */
struct request {
        struct buf body;
        bool body_too_big;
};

/* Everything a handler needs about the request being answered. */
struct call {
        struct mock *m;
        struct MHD_Connection *conn;
        const char *url;
        const char *method;
        struct request *q;
        bool store;   /* on the object-store origin */
        bool control; /* a /_mock/ request: not counted as rejected */
        bool r4;      /* an R4 endpoint: its errors are NHSDigital-OperationOutcomes */
        bool fault;   /* this answer is an injected fault */
        int fault_retry_after; /* the fault's Retry-After seconds, -1: the kind's own */
        char fault_code[64];   /* the fault's OperationOutcome code, "": the kind's own */
        unsigned fault_rate; /* the fault's body rate in bytes a second, 0: as fast as it goes */
        double arrived; /* monotonic seconds: when the request was complete */
        const char *recorded; /* endpoint name for the call record (/_mock/calls), NULL: not recorded */
        char key[24];  /* the UBRN (A005, A007, documents) or service (A008) of the call record */
};

/* ---- the call record (/_mock/calls) and the rate limit (/_mock/ratelimit) ----- */

struct call_record {
        double t;             /* monotonic seconds of arrival */
        const char *endpoint; /* static name */
        char key[24];
        unsigned status;
        bool fault;
};

#define CALL_RECORD_MAX 2000000
#define RATE_WINDOW_MAX 10000

/* Under mock.lock. */
static struct {
        struct call_record *r; /* owned */
        size_t n, cap;
        uint64_t rate_limited;  /* requests answered 429 by the rate limit */
        unsigned per_second;    /* 0: no limit */
        double window[RATE_WINDOW_MAX]; /* arrivals accepted, a ring of per_second entries */
        size_t next;            /* ring position of the oldest */
} calls;

/* How many API and store requests were being answered at once (from the
 * handler's start to its answer queued: never counting a request the client
 * has already seen answered, so a client that sends one request at a time
 * is always counted 1), and the A005 hold: under mock.lock. */
static struct {
        unsigned in_flight, in_flight_max;
} concurrency;

/* POST /_mock/hold?together=N: each A005 waits until N of them wait at once
 * (then all go on), or until timeout_ms passed (then every one goes on, and
 * timed_out says so).  Proves requests are in flight together without a
 * sleep in the test. */
static struct {
        unsigned together;      /* 0: no hold */
        unsigned waiting, reached;
        bool released, timed_out;
        unsigned timeout_ms;
        pthread_cond_t cond;
} hold = { .cond = PTHREAD_COND_INITIALIZER };

static double monotonic_now(void)
{
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Appends the call's record; call with m->lock held. */
static void call_record_locked(const struct call *c, unsigned status)
{
        if (!c->recorded || calls.n >= CALL_RECORD_MAX)
                return;
        if (calls.n == calls.cap) {
                size_t cap = calls.cap ? calls.cap * 2 : 1024;
                struct call_record *r = realloc(calls.r, cap * sizeof *r);
                if (!r)
                        return;
                calls.r = r;
                calls.cap = cap;
        }
        struct call_record *rec = &calls.r[calls.n++];
        rec->t = c->arrived;
        rec->endpoint = c->recorded;
        memcpy(rec->key, c->key, sizeof rec->key);
        rec->status = status;
        rec->fault = c->fault;
}

/* The rate limit: false (and the arrival counted) when the request may be served. */
static bool rate_limited(struct mock *m, double now)
{
        bool limited = false;

        pthread_mutex_lock(&m->lock);
        if (calls.per_second > 0) {
                double oldest = calls.window[calls.next];
                if (oldest > 0 && now - oldest < 1.0) {
                        limited = true;
                        calls.rate_limited++;
                } else {
                        calls.window[calls.next] = now;
                        calls.next = (calls.next + 1) % calls.per_second;
                }
        }
        pthread_mutex_unlock(&m->lock);
        return limited;
}

/* Signed-JWT access and TLS, below the control endpoints. */
static bool refuse_without_client_cert(struct call *c, enum MHD_Result *ret);
static enum MHD_Result control_oauth(struct call *c, const char *what);
/* Write-back (writeback.c), beside the routing. */
static enum MHD_Result reply_writeback(struct call *c, struct wb_reply *w);

/* ---- body sources and the streaming callback -------------------------------- */

struct source {
        ssize_t (*read)(void *ctx, uint64_t pos, char *buf, size_t max); /* >0, 0 at end, <0 error */
        void (*free)(void *ctx);
        void *ctx;
        uint64_t size; /* MHD_SIZE_UNKNOWN when not known in advance */
};

struct mem {
        char *p;
        size_t len;
};

static ssize_t mem_read(void *ctx, uint64_t pos, char *buf, size_t max)
{
        struct mem *mm = ctx;
        if (pos >= mm->len)
                return 0;
        size_t n = mm->len - (size_t)pos < max ? mm->len - (size_t)pos : max;
        memcpy(buf, mm->p + pos, n);
        return (ssize_t)n;
}

static void mem_free(void *ctx)
{
        struct mem *mm = ctx;
        if (mm)
                free(mm->p);
        free(mm);
}

/* Takes p (malloc'd).  On failure frees p and returns a source with read == NULL. */
static struct source source_mem(char *p, size_t len)
{
        struct source s = { 0 };
        struct mem *mm = p ? malloc(sizeof *mm) : NULL;

        if (!mm) {
                free(p);
                return s;
        }
        mm->p = p;
        mm->len = len;
        s.read = mem_read;
        s.free = mem_free;
        s.ctx = mm;
        s.size = len;
        return s;
}

struct attachment_stream {
        const struct attachment *a;
        bool corrupt; /* flip one byte in the middle (the `malformed` fault) */
};

static ssize_t attachment_read(void *ctx, uint64_t pos, char *buf, size_t max)
{
        struct attachment_stream *as = ctx;
        const struct attachment *a = as->a;

        if (pos >= a->size)
                return 0;
        size_t n = a->size - pos < max ? (size_t)(a->size - pos) : max;
        attachment_fill(a, pos, (unsigned char *)buf, n);
        uint64_t flip = a->size / 2;
        if (as->corrupt && flip >= pos && flip < pos + n)
                buf[flip - pos] ^= 0x55;
        return (ssize_t)n;
}

static struct source source_attachment(const struct attachment *a, bool corrupt)
{
        struct source s = { 0 };
        struct attachment_stream *as = malloc(sizeof *as);

        if (!as)
                return s;
        as->a = a;
        as->corrupt = corrupt;
        s.read = attachment_read;
        s.free = free;
        s.ctx = as;
        s.size = a->size;
        return s;
}

static ssize_t worklist_read(void *ctx, uint64_t pos, char *buf, size_t max)
{
        (void)pos; /* sequential */
        return worklist_gen_read(ctx, buf, max);
}

static void worklist_free_ctx(void *ctx)
{
        worklist_gen_free(ctx);
}

/* A source's bytes, then spaces without end (the `endless` faults): valid
 * JSON so far whatever the source was, and never complete. */
struct endless {
        struct source inner;
        bool inner_done;
};

static ssize_t endless_read(void *ctx, uint64_t pos, char *buf, size_t max)
{
        struct endless *e = ctx;

        if (!e->inner_done) {
                ssize_t n = e->inner.read(e->inner.ctx, pos, buf, max);
                if (n != 0)
                        return n;
                e->inner_done = true;
        }
        memset(buf, ' ', max);
        return (ssize_t)max;
}

static void endless_free(void *ctx)
{
        struct endless *e = ctx;

        if (e && e->inner.free)
                e->inner.free(e->inner.ctx);
        free(e);
}

/* Takes inner; on failure frees it and returns a source with read == NULL. */
static struct source source_endless(struct source inner)
{
        struct source s = { 0 };
        struct endless *e = inner.read ? calloc(1, sizeof *e) : NULL;

        if (!e) {
                if (inner.free)
                        inner.free(inner.ctx);
                return s;
        }
        e->inner = inner;
        s.read = endless_read;
        s.free = endless_free;
        s.ctx = e;
        s.size = MHD_SIZE_UNKNOWN;
        return s;
}

static void source_free(struct source *s)
{
        if (s->free)
                s->free(s->ctx);
        s->read = NULL;
        s->free = NULL;
        s->ctx = NULL;
}

/* Reads a whole source into memory (for faults that need the full text). */
static int source_drain(struct source *s, char **ret_p, size_t *ret_len)
{
        struct buf b = { 0 };
        char chunk[65536];
        uint64_t pos = 0;

        for (;;) {
                ssize_t n = s->read(s->ctx, pos, chunk, sizeof chunk);
                if (n < 0) {
                        free(b.p);
                        return -EIO;
                }
                if (n == 0)
                        break;
                buf_append(&b, chunk, (size_t)n);
                pos += (uint64_t)n;
        }
        if (b.oom) {
                free(b.p);
                return -ENOMEM;
        }
        if (!b.p)
                b.p = calloc(1, 1);
        if (!b.p)
                return -ENOMEM;
        *ret_p = b.p;
        *ret_len = b.len;
        return 0;
}

/* What MHD's content callback reads: a source, cut short for the `truncated`
 * and `stall` faults, paced for a fault's `rate`. */
struct stream {
        struct source src;
        uint64_t cut;  /* bytes to send before misbehaving; UINT64_MAX: none */
        bool stall;    /* at `cut`: stall (else: close the connection) */
        size_t most;   /* the most bytes one read hands out: TRICKLE_BYTES for `trickle`, else no limit */
        unsigned rate; /* bytes a second at most; 0: no limit */
        double tick;   /* monotonic: when the current second of `rate` began (0: not yet) */
        uint64_t tick_sent; /* bytes sent in it */
        struct mock *m;
        int fd;        /* the connection's socket, to notice the client leaving */
};

static bool peer_gone(int fd)
{
        struct pollfd p = { .fd = fd, .events = POLLRDHUP };

        if (fd < 0)
                return false;
        return poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR | POLLNVAL));
}

/* Sends nothing until `seconds` pass (monotonic), the client goes away or the
 * mock shuts down; true only in the first case.  Runs on the connection's own
 * thread, looking every 200 ms. */
static bool stream_wait(struct stream *s, double seconds)
{
        struct mock *m = s->m;
        double end = monotonic_now() + seconds;
        bool done = false;

        pthread_mutex_lock(&m->lock);
        while (!m->stopping) {
                double left = end - monotonic_now();
                if (left <= 0) {
                        done = true;
                        break;
                }
                struct timespec next;
                clock_gettime(CLOCK_REALTIME, &next);
                long step = left < 0.2 ? (long)(left * 1e9) + 1 : 200 * 1000 * 1000;
                next.tv_nsec += step;
                if (next.tv_nsec >= 1000000000L) {
                        next.tv_sec++;
                        next.tv_nsec -= 1000000000L;
                }
                pthread_cond_timedwait(&m->wake, &m->lock, &next);
                if (m->stopping)
                        break;
                pthread_mutex_unlock(&m->lock);
                bool gone = peer_gone(s->fd);
                pthread_mutex_lock(&m->lock);
                if (gone)
                        break;
        }
        pthread_mutex_unlock(&m->lock);
        return done;
}

static ssize_t stream_read(void *cls, uint64_t pos, char *buf, size_t max)
{
        struct stream *s = cls;

        if (pos >= s->cut) {
                if (s->stall) /* nothing until the client leaves, SIGTERM or --stall-seconds */
                        (void)stream_wait(s, s->m->opt.stall_seconds);
                return MHD_CONTENT_READER_END_WITH_ERROR;
        }
        if (s->cut != UINT64_MAX && max > s->cut - pos)
                max = (size_t)(s->cut - pos);
        if (s->most && max > s->most)
                max = s->most;
        if (s->rate) {
                /* `rate` bytes in each second, the next ones when it is over. */
                if (s->tick == 0)
                        s->tick = monotonic_now();
                if (s->tick_sent >= s->rate) {
                        if (!stream_wait(s, s->tick + 1.0 - monotonic_now()))
                                return MHD_CONTENT_READER_END_WITH_ERROR;
                        s->tick += 1.0;
                        s->tick_sent = 0;
                }
                if (max > s->rate - s->tick_sent)
                        max = (size_t)(s->rate - s->tick_sent);
        }
        ssize_t n = s->src.read(s->src.ctx, pos, buf, max);
        if (n > 0)
                s->tick_sent += (uint64_t)n;
        if (n < 0)
                return MHD_CONTENT_READER_END_WITH_ERROR;
        if (n == 0)
                return s->src.size == MHD_SIZE_UNKNOWN ? MHD_CONTENT_READER_END_OF_STREAM
                                                       : MHD_CONTENT_READER_END_WITH_ERROR;
        return n;
}

static void stream_free(void *cls)
{
        struct stream *s = cls;
        if (!s)
                return;
        source_free(&s->src);
        free(s);
}

/* A response reading from `src` (taken).  `kind` FAULT_TRUNCATED / FAULT_STALL
 * cut the body in half: the Content-Length still announces the whole body;
 * FAULT_ENDLESS goes on after it, without end; the fault's rate (FAULT_SLOW:
 * 1 byte a second unless it says) paces it. */
static struct MHD_Response *response_from(struct call *c, struct source src, enum fault_kind kind)
{
        struct MHD_Response *r;
        unsigned rate = kind == FAULT_SLOW && c->fault_rate == 0 ? 1 : c->fault_rate;

        if (kind == FAULT_ENDLESS)
                src = source_endless(src);
        if (!src.read)
                return NULL;
        if (kind != FAULT_TRUNCATED && kind != FAULT_STALL && kind != FAULT_TRICKLE && rate == 0 &&
            src.read == mem_read) {
                struct mem *mm = src.ctx;
                r = MHD_create_response_from_buffer(mm->len, mm->p, MHD_RESPMEM_MUST_FREE);
                if (r) {
                        mm->p = NULL;
                        source_free(&src);
                } else
                        source_free(&src);
                return r;
        }

        struct stream *s = calloc(1, sizeof *s);
        if (!s) {
                source_free(&src);
                return NULL;
        }
        s->src = src;
        s->m = c->m;
        s->cut = UINT64_MAX;
        s->fd = -1;
        s->most = kind == FAULT_TRICKLE ? TRICKLE_BYTES : 0;
        s->rate = rate;
        uint64_t declared = src.size;
        if (kind == FAULT_TRUNCATED || kind == FAULT_STALL) {
                if (declared == MHD_SIZE_UNKNOWN)
                        s->cut = 4096;
                else if (declared >= 2)
                        s->cut = declared / 2;
                else {
                        s->cut = declared;
                        declared += 16;
                }
                s->stall = kind == FAULT_STALL;
        }
        if (kind == FAULT_STALL || rate > 0) { /* it waits: it must see the client leave */
                const union MHD_ConnectionInfo *ci =
                        MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_CONNECTION_FD);
                if (ci)
                        s->fd = ci->connect_fd;
        }
        size_t block = 256 * 1024;
        if (declared != MHD_SIZE_UNKNOWN && declared < block)
                block = declared < 4096 ? 4096 : (size_t)declared;
        r = MHD_create_response_from_callback(declared, block, stream_read, s, stream_free);
        if (!r)
                stream_free(s);
        return r;
}

/* ---- replies ------------------------------------------------------------------ */

static const char *header(struct call *c, const char *name)
{
        return MHD_lookup_connection_value(c->conn, MHD_HEADER_KIND, name);
}

static const char *query(struct call *c, const char *name)
{
        return MHD_lookup_connection_value(c->conn, MHD_GET_ARGUMENT_KIND, name);
}

/* Queues r (taken) with status; echoes X-Correlation-ID on the API origin. */
static enum MHD_Result reply(struct call *c, unsigned status, struct MHD_Response *r)
{
        struct mock *m = c->m;

        if (!r) {
                static const char oom[] = "mock-ers: out of memory\n";
                status = 500;
                r = MHD_create_response_from_buffer(sizeof oom - 1, (void *)oom, MHD_RESPMEM_PERSISTENT);
                if (!r)
                        return MHD_NO;
        }
        if (!c->store) {
                const char *cid = header(c, "X-Correlation-ID");
                if (cid)
                        MHD_add_response_header(r, "X-Correlation-ID", cid);
        }
        pthread_mutex_lock(&m->lock);
        call_record_locked(c, status);
        if (status < 600)
                m->stats.status[status]++;
        if (c->fault)
                m->stats.faults_served++;
        else if (status >= 400 && status < 500 && !c->control)
                m->stats.rejected++;
        pthread_mutex_unlock(&m->lock);
        if (m->opt.verbose)
                fprintf(stderr, "mock-ers: %s %s %s -> %u%s\n", c->store ? "store" : "api", c->method, c->url,
                        status, c->fault ? " (fault)" : "");
        enum MHD_Result ret = MHD_queue_response(c->conn, status, r);
        MHD_destroy_response(r);
        return ret;
}

/* Replies with a memory body (taken). */
static enum MHD_Result reply_body(struct call *c, unsigned status, const char *content_type, char *body, size_t len)
{
        struct MHD_Response *r = body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE) : NULL;

        if (!r)
                free(body);
        else if (content_type)
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, content_type);
        return reply(c, status, r);
}

static enum MHD_Result reply_text(struct call *c, unsigned status, const char *text)
{
        return reply_body(c, status, "text/plain; charset=utf-8", strdup(text), strlen(text));
}

/* An OperationOutcome in the shape of the call's endpoint (STU3 or R4). */
static char *outcome_text(const struct call *c, const char *issue_code, const char *code, const char *display,
                          const char *diagnostics, size_t *ret_len)
{
        return c->r4 ? render_outcome_r4(issue_code, code, diagnostics, ret_len)
                     : render_outcome(issue_code, code, display, diagnostics, ret_len);
}

static enum MHD_Result reply_outcome(struct call *c, unsigned status, const char *issue_code, const char *code,
                                     const char *display, const char *diagnostics)
{
        size_t len = 0;
        char *body = outcome_text(c, issue_code, code, display, diagnostics, &len);
        return reply_body(c, status, FHIR_JSON, body, len);
}

static enum MHD_Result reply_json(struct call *c, unsigned status, json_object *o)
{
        size_t len = 0;
        char *body = json_text(o, &len);
        return reply_body(c, status, "application/json", body, len);
}

static enum MHD_Result reply_not_found(struct call *c, const char *what)
{
        if (c->store)
                return reply_text(c, 404, "no such object\n");
        return reply_outcome(c, 404, "not-found", "REC_NOT_FOUND", "Resource not found", what);
}

static enum MHD_Result reply_405(struct call *c, const char *allow)
{
        size_t len = 0;
        char *body = outcome_text(c, "not-supported", "METHOD_NOT_ALLOWED", "Method not allowed",
                                  "this path does not support that method", &len);
        struct MHD_Response *r = body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE) : NULL;
        if (r) {
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, FHIR_JSON);
                MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, allow);
        } else
                free(body);
        return reply(c, 405, r);
}

static enum MHD_Result reply_control_error(struct call *c, unsigned status, const char *message)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "error", json_object_new_string(message));
        return reply_json(c, status, o);
}

/* ---- faults ------------------------------------------------------------------- */

/* --fault-rate: with probability permille/1000, a fault a real service or network
 * could produce (never a corrupted document: a client cannot know the bytes it was
 * not sent).  Called under m->lock. */
static enum fault_kind fault_random(struct mock *m, enum endpoint ep)
{
        static const enum fault_kind json_kinds[] = { FAULT_500, FAULT_503, FAULT_429, FAULT_TRUNCATED,
                                                      FAULT_MALFORMED };
        static const enum fault_kind byte_kinds[] = { FAULT_500, FAULT_503, FAULT_429, FAULT_TRUNCATED };
        bool json = ep == EP_A008 || ep == EP_A005;
        uint64_t x;

        /* splitmix64: small, fast, and reproducible from the seed */
        if (m->fault_rng == 0)
                m->fault_rng = m->opt.seed * 0x9e3779b97f4a7c15ULL + 1;
        x = (m->fault_rng += 0x9e3779b97f4a7c15ULL);
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
        x ^= x >> 31;
        if (x % 1000 >= m->opt.fault_permille)
                return FAULT_NONE;
        x /= 1000;
        return json ? json_kinds[x % (sizeof json_kinds / sizeof *json_kinds)]
                    : byte_kinds[x % (sizeof byte_kinds / sizeof *byte_kinds)];
}

/* Takes one use of the first pending fault for (endpoint, ubrn); FAULT_NONE when none. */
static enum fault_kind fault_take(struct call *c, enum endpoint ep, const char *ubrn)
{
        struct mock *m = c->m;
        enum fault_kind kind = FAULT_NONE;

        pthread_mutex_lock(&m->lock);
        for (struct fault **pp = &m->faults; *pp; pp = &(*pp)->next) {
                struct fault *f = *pp;
                if (f->endpoint != ep || (f->ubrn[0] && (!ubrn || strcmp(f->ubrn, ubrn) != 0)))
                        continue;
                kind = f->kind;
                c->fault_retry_after = f->retry_after;
                memcpy(c->fault_code, f->code, sizeof c->fault_code);
                c->fault_rate = f->rate;
                if (--f->count == 0) {
                        *pp = f->next;
                        free(f);
                }
                break;
        }
        if (kind == FAULT_NONE && m->opt.fault_permille > 0)
                kind = fault_random(m, ep);
        pthread_mutex_unlock(&m->lock);
        if (kind != FAULT_NONE)
                c->fault = true;
        return kind;
}

/* Replies for the faults that replace the whole answer (status, wrong type,
 * wrong content type).  Returns true when it replied. */
static bool fault_replace(struct call *c, enum fault_kind kind, enum MHD_Result *ret)
{
        static const char html[] = "<!DOCTYPE html><html><head><title>Service maintenance</title></head>"
                                   "<body><p>The service is unavailable.</p></body></html>\n";
        static const char bundle[] = "{\"resourceType\":\"Bundle\",\"type\":\"searchset\",\"total\":0}";
        struct MHD_Response *r = NULL;
        unsigned status = 200;
        size_t len = 0;
        char *body;

        switch (kind) {
        case FAULT_404:
        case FAULT_403:
        case FAULT_422:
        case FAULT_400:
        case FAULT_502:
        case FAULT_429_BARE:
                status = kind == FAULT_404 ? 404 : kind == FAULT_403 ? 403 : kind == FAULT_422 ? 422
                       : kind == FAULT_400 ? 400 : kind == FAULT_502 ? 502 : 429;
                if (c->store) {
                        /* an object store answers in its own words, never FHIR */
                        body = strdup(status == 403 ? "AccessDenied: Request has expired\n" : "Error\n");
                        len = body ? strlen(body) : 0;
                } else {
                        /* A042's "not available" names the availability (PENDING …) */
                        const char *not_available = c->r4 ? "PENDING" : "ATTACHMENT_NOT_AVAILABLE";
                        body = outcome_text(c, status == 404 ? "not-found" : status == 403 ? "forbidden"
                                            : status == 422 ? (c->r4 ? "invalid" : "business-rule")
                                            : status == 400 ? "invalid" : status == 502 ? "transient"
                                                                                        : "throttled",
                                            c->fault_code[0] ? c->fault_code
                                            : status == 404 ? "NOT_FOUND" : status == 403 ? "ACCESS_DENIED"
                                            : status == 422 ? not_available : status == 400 ? "REC_BAD_REQUEST"
                                            : status == 502 ? "BAD_GATEWAY" : "TOO_MANY_REQUESTS",
                                            "Injected", "injected by the mock", &len);
                }
                r = body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE) : NULL;
                if (!r)
                        free(body);
                else {
                        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, c->store ? "text/plain" : FHIR_JSON);
                        if (kind == FAULT_429_BARE && c->fault_retry_after >= 0) {
                                char ra[16];
                                snprintf(ra, sizeof ra, "%d", c->fault_retry_after);
                                MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
                        }
                }
                break;
        case FAULT_500:
        case FAULT_503:
        case FAULT_429:
                status = kind == FAULT_500 ? 500 : kind == FAULT_503 ? 503 : 429;
                if (c->store) {
                        body = strdup(status == 429 ? "SlowDown\n" : "InternalError\n");
                        len = body ? strlen(body) : 0;
                } else
                        body = outcome_text(c, status == 429 ? "throttled" : "exception",
                                            c->fault_code[0] ? c->fault_code
                                            : status == 500 ? "SERVICE_ERROR"
                                            : status == 503 ? "SERVICE_UNAVAILABLE"
                                                            : "TOO_MANY_REQUESTS",
                                            status == 500 ? "Internal server error"
                                            : status == 503 ? "Service unavailable"
                                                            : "Too many requests",
                                            "injected by the mock", &len);
                r = body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE) : NULL;
                if (!r)
                        free(body);
                if (r) {
                        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE,
                                                c->store ? "text/plain" : FHIR_JSON);
                        char ra[16];
                        snprintf(ra, sizeof ra, "%d", c->fault_retry_after >= 0 ? c->fault_retry_after : 1);
                        if (status == 429 || (status == 503 && c->fault_retry_after >= 0))
                                MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
                }
                break;
        case FAULT_ENDLESS_500:
                /* a server that fails and never stops saying so */
                status = 500;
                body = strdup("500 Internal Server Error: the answer goes on and on\n");
                r = response_from(c, source_mem(body, body ? strlen(body) : 0), FAULT_ENDLESS);
                if (r)
                        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
                break;
        case FAULT_WRONG_TYPE:
                r = MHD_create_response_from_buffer(sizeof bundle - 1, (void *)bundle, MHD_RESPMEM_PERSISTENT);
                if (r)
                        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, FHIR_JSON);
                break;
        case FAULT_WRONG_CONTENT_TYPE:
                r = MHD_create_response_from_buffer(sizeof html - 1, (void *)html, MHD_RESPMEM_PERSISTENT);
                if (r)
                        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, "text/html; charset=utf-8");
                break;
        default:
                return false;
        }
        *ret = reply(c, status, r);
        return true;
}

/* The `malformed` fault for JSON: the text without its final brace and with a
 * dangling member, so no parser can accept it. */
static char *break_json(char *p, size_t len, size_t *ret_len)
{
        static const char tail[] = ",\"unterminated\":[1,2,";
        char *np = realloc(p, len + sizeof tail);

        if (!np) {
                free(p);
                return NULL;
        }
        size_t keep = len && np[len - 1] == '}' ? len - 1 : len;
        memcpy(np + keep, tail, sizeof tail);
        *ret_len = keep + sizeof tail - 1;
        return np;
}

/* ---- checks common to the API endpoints ------------------------------------- */

/* 401 without the right bearer token; 403 for user-restricted headers when
 * --app-restricted.  Returns true when it replied. */
static bool refuse_caller(struct call *c, enum MHD_Result *ret)
{
        static const char *const user_headers[] = { "NHSD-eRS-Business-Function", "NHSD-End-User-Organisation-ODS",
                                                    "NHSD-eRS-On-Behalf-Of-User-ID" };
        const struct options *o = &c->m->opt;

        if (o->token) {
                const char *h = header(c, MHD_HTTP_HEADER_AUTHORIZATION);
                if (!h || strncasecmp(h, "Bearer ", 7) != 0 || strcmp(h + 7, o->token) != 0) {
                        *ret = reply_outcome(c, 401, "login", "NO_ACCESS", "No access",
                                             h ? "the access token is not valid" : "no access token was supplied");
                        return true;
                }
        }
        if (oauth_enabled(c->m)) {
                const char *why = oauth_check_bearer(c->m, header(c, MHD_HTTP_HEADER_AUTHORIZATION));
                if (why) {
                        *ret = reply_outcome(c, 401, "login", "NO_ACCESS", "No access", why);
                        return true;
                }
        }
        if (o->app_restricted)
                for (size_t i = 0; i < sizeof user_headers / sizeof user_headers[0]; i++)
                        if (header(c, user_headers[i])) {
                                char diag[160];
                                snprintf(diag, sizeof diag,
                                         "header %s is not allowed with application-restricted access",
                                         user_headers[i]);
                                *ret = reply_outcome(c, 403, "forbidden", "FORBIDDEN", "Forbidden", diag);
                                return true;
                        }
        return false;
}

/* Does a media-type list (Accept) name `type`?  Parameters are ignored. */
static bool accepts(const char *list, const char *type)
{
        size_t tl = strlen(type);

        for (const char *p = list; p && *p;) {
                p += strspn(p, " \t,");
                if (strncasecmp(p, type, tl) == 0 && strchr(" \t;,", p[tl]))
                        return true;
                p = strchr(p, ',');
        }
        return false;
}

/* Is a Content-Type exactly `type` (parameters allowed)? */
static bool content_type_is(const char *ct, const char *type)
{
        size_t tl = strlen(type);
        return ct && strncasecmp(ct, type, tl) == 0 && strchr(" \t;", ct[tl]);
}

/* 406 unless Accept names application/fhir+json. */
static bool refuse_accept(struct call *c, enum MHD_Result *ret)
{
        if (accepts(header(c, MHD_HTTP_HEADER_ACCEPT), FHIR_JSON))
                return false;
        *ret = reply_text(c, 406, "Not Acceptable: this endpoint produces application/fhir+json only\n");
        return true;
}

static void count(struct call *c, enum endpoint ep)
{
        c->recorded = ENDPOINT_NAMES[ep];
        pthread_mutex_lock(&c->m->lock);
        c->m->stats.endpoint[ep]++;
        pthread_mutex_unlock(&c->m->lock);
}

static void counter_add(struct counter **arr, size_t *n, const char *name)
{
        for (size_t i = 0; i < *n; i++)
                if (strcmp((*arr)[i].name, name) == 0) {
                        (*arr)[i].n++;
                        return;
                }
        struct counter *na = realloc(*arr, (*n + 1) * sizeof *na);
        if (!na)
                return;
        *arr = na;
        na[*n].name = strdup(name);
        if (!na[*n].name)
                return;
        na[*n].n = 1;
        (*n)++;
}

/* ---- A008: fetch worklist --------------------------------------------------- */

static const char *get_string(json_object *o, const char *key)
{
        json_object *v;
        if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
                return NULL;
        return json_object_get_string(v);
}

/* Validates the Parameters body.  On error returns the HTTP status and fills
 * the OperationOutcome code and diagnostics. */
static unsigned parse_worklist_request(json_object *root, bool service_required, bool *ret_slot_issues,
                                       const char **ret_service, const char **ret_code, char *diag, size_t dl)
{
        json_object *params, *v;
        bool have_list = false;

        *ret_service = NULL;
        *ret_code = "INVALID_FHIR_STRUCTURE";
        if (!json_object_is_type(root, json_type_object)) {
                snprintf(diag, dl, "the body is not a JSON object");
                return 422;
        }
        const char *rt = get_string(root, "resourceType");
        if (!rt || strcmp(rt, "Parameters") != 0) {
                snprintf(diag, dl, "resourceType must be Parameters");
                return 422;
        }
        json_object_object_foreach(root, key, val) {
                (void)val;
                if (strcmp(key, "resourceType") && strcmp(key, "meta") && strcmp(key, "parameter") &&
                    strcmp(key, "id")) {
                        *ret_code = "UNEXPECTED_FIELD";
                        snprintf(diag, dl, "'%.64s' unexpected field", key);
                        return 422;
                }
        }
        if (!json_object_object_get_ex(root, "parameter", &params) || !json_object_is_type(params, json_type_array)) {
                *ret_code = "MISSING_VALUE";
                snprintf(diag, dl, "'parameter' must be an array");
                return 422;
        }
        for (size_t i = 0; i < json_object_array_length(params); i++) {
                json_object *p = json_object_array_get_idx(params, i);
                const char *name = json_object_is_type(p, json_type_object) ? get_string(p, "name") : NULL;
                if (!name) {
                        snprintf(diag, dl, "'parameter[%zu]' has no name", i);
                        return 422;
                }
                if (strcmp(name, "listType") == 0) {
                        json_object *coding;
                        const char *code = NULL;
                        if (have_list) {
                                snprintf(diag, dl, "'parameter[%zu]' listType given twice", i);
                                return 422;
                        }
                        have_list = true;
                        if (!json_object_object_get_ex(p, "valueCodeableConcept", &v) ||
                            !json_object_object_get_ex(v, "coding", &coding) ||
                            !json_object_is_type(coding, json_type_array)) {
                                snprintf(diag, dl, "'parameter[%zu]' listType needs valueCodeableConcept.coding", i);
                                return 422;
                        }
                        for (size_t k = 0; k < json_object_array_length(coding); k++) {
                                json_object *cd = json_object_array_get_idx(coding, k);
                                const char *sys = get_string(cd, "system");
                                if (sys && strcmp(sys, SYS_LIST_SELECTOR) == 0)
                                        code = get_string(cd, "code");
                        }
                        *ret_code = "INVALID_CODE";
                        if (!code ||
                            (strcmp(code, "REFERRALS_FOR_REVIEW") && strcmp(code, "APPOINTMENT_SLOT_ISSUES"))) {
                                snprintf(diag, dl, "'parameter[%zu]' listType: no supported code of system %s", i,
                                         SYS_LIST_SELECTOR);
                                return 422;
                        }
                        *ret_code = "INVALID_FHIR_STRUCTURE";
                        *ret_slot_issues = strcmp(code, "APPOINTMENT_SLOT_ISSUES") == 0;
                } else if (strcmp(name, "service") == 0) {
                        const char *sys = NULL, *value = NULL;
                        if (json_object_object_get_ex(p, "valueIdentifier", &v)) {
                                sys = get_string(v, "system");
                                value = get_string(v, "value");
                        }
                        if (!sys || strcmp(sys, SYS_SERVICE) != 0 || !value || !*value || strlen(value) > 63) {
                                *ret_code = "INVALID_VALUE";
                                snprintf(diag, dl, "'parameter[%zu]' service needs a valueIdentifier of system %s", i,
                                         SYS_SERVICE);
                                return 422;
                        }
                        if (*ret_service) {
                                snprintf(diag, dl, "'parameter[%zu]' service given twice", i);
                                return 422;
                        }
                        *ret_service = value;
                } else {
                        *ret_code = "UNEXPECTED_FIELD";
                        snprintf(diag, dl, "'parameter[%zu]' (%.40s) unknown or unsupported parameter name", i, name);
                        return 422;
                }
        }
        if (!have_list) {
                *ret_code = "MISSING_VALUE";
                snprintf(diag, dl, "parameter listType is mandatory");
                return 422;
        }
        if (service_required && !*ret_service) {
                *ret_code = "MISSING_VALUE";
                snprintf(diag, dl, "parameter service is mandatory for application-restricted access");
                return 422;
        }
        return 0;
}

static enum MHD_Result handle_a008(struct call *c)
{
        struct mock *m = c->m;
        enum MHD_Result ret;
        bool slot_issues = false;
        const char *service = NULL, *code = NULL;
        char diag[256];

        count(c, EP_A008);
        if (refuse_caller(c, &ret) || refuse_accept(c, &ret))
                return ret;
        if (!content_type_is(header(c, MHD_HTTP_HEADER_CONTENT_TYPE), FHIR_JSON))
                return reply_outcome(c, 415, "not-supported", "UNSUPPORTED_MEDIA_TYPE", "Unsupported media type",
                                     "Content-Type must be application/fhir+json");
        if (c->q->body_too_big)
                return reply_outcome(c, 413, "too-costly", "REQUEST_TOO_LARGE", "Request too large",
                                     "the request body is too large");

        enum json_tokener_error jerr = json_tokener_success;
        json_object *root = c->q->body.p ? json_tokener_parse_verbose(c->q->body.p, &jerr) : NULL;
        if (!root) {
                snprintf(diag, sizeof diag, "the body is not valid JSON: %s",
                         c->q->body.p ? json_tokener_error_desc(jerr) : "empty body");
                return reply_outcome(c, 400, "invalid", "INVALID_FHIR_STRUCTURE", "Invalid FHIR structure", diag);
        }
        unsigned status = parse_worklist_request(root, m->opt.app_restricted, &slot_issues, &service, &code, diag,
                                                 sizeof diag);
        if (status) {
                ret = reply_outcome(c, status, "value", code, NULL, diag);
                json_object_put(root);
                return ret;
        }

        size_t service_index = SIZE_MAX;
        bool known_service = !service;
        for (size_t s = 0; service && s < m->n_services; s++)
                if (strcmp(m->services[s].id, service) == 0) {
                        service_index = s;
                        known_service = true;
                }
        pthread_mutex_lock(&m->lock);
        counter_add(&m->stats.a008_by_service, &m->stats.n_a008_by_service, service ? service : "*");
        pthread_mutex_unlock(&m->lock);
        snprintf(c->key, sizeof c->key, "%.23s", service ? service : "*");
        char service_id[64]; /* parse_worklist_request() allows 63 */
        snprintf(service_id, sizeof service_id, "%s", service ? service : "");
        json_object_put(root); /* `service` pointed into it */
        service = NULL;

        enum fault_kind kind = fault_take(c, EP_A008, NULL);
        if (fault_replace(c, kind, &ret))
                return ret;

        struct source src;
        if (world_mode(m)) {
                size_t len = 0;
                char *text = world_render_worklist(m, service_id[0] ? service_id : NULL, slot_issues,
                                                   kind == FAULT_OVERSIZED ? OVERSIZED_PAD : 0, &len);
                src = source_mem(text, len);
                if (!src.read)
                        return reply(c, 500, NULL);
                goto answer;
        }

        struct worklist_item *items = calloc(m->n_worklisted + 1, sizeof *items);
        size_t n = 0;
        if (!items)
                return reply(c, 500, NULL);
        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; known_service && i < m->n_worklisted; i++) {
                const struct referral *r = &m->referrals[i];
                int state = state_after(r, r->bumps);
                if (service_index != SIZE_MAX && r->service != service_index)
                        continue;
                if (r->delisted || r->gone)
                        continue;
                if (slot_issues && state != STATE_DEFERRED)
                        continue;
                items[n].referral = i;
                items[n].version = r->version;
                items[n].state = state;
                items[n].entry_fault = r->entry_fault;
                n++;
        }
        pthread_mutex_unlock(&m->lock);
        if (m->opt.duplicate_entry && n > 0)
                items[n++] = items[0]; /* the same UBRN twice, as a real list might */

        struct worklist_gen *g = worklist_gen_new(m, items, n, slot_issues,
                                                  kind == FAULT_OVERSIZED ? OVERSIZED_PAD : 0);
        if (!g)
                return reply(c, 500, NULL);
        src = (struct source){ .read = worklist_read, .free = worklist_free_ctx, .ctx = g, .size = MHD_SIZE_UNKNOWN };
answer:
        if (kind == FAULT_MALFORMED || kind == FAULT_TRUNCATED || kind == FAULT_STALL) {
                char *text = NULL;
                size_t len = 0;
                int r = source_drain(&src, &text, &len);
                source_free(&src);
                if (r < 0)
                        return reply(c, 500, NULL);
                if (kind == FAULT_MALFORMED)
                        text = break_json(text, len, &len);
                src = source_mem(text, len);
        }
        struct MHD_Response *resp = response_from(c, src, kind);
        if (resp)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, FHIR_JSON);
        return reply(c, 200, resp);
}

/* ---- A005: read a referral ------------------------------------------------------ */

/* The synthetic referral r at version (0: current, as a `stale` fault may
 * change it): 0 and the body (ret_body NULL: only whether there is one),
 * -ENOENT (gone), -ESRCH (no such version). */
static int synthetic_referral(struct call *c, struct referral *r, int64_t version, enum fault_kind kind,
                              char **ret_body, size_t *ret_len, int64_t *ret_version)
{
        struct mock *m = c->m;
        struct referral_view v;

        pthread_mutex_lock(&m->lock);
        bool gone = r->gone;
        bool bad_version = version != 0 && (version < 1 || version > r->version);
        if (kind == FAULT_STALE) /* a lagging replica: an older version than e-RS has */
                version = r->version > 3 ? r->version - 2 : 1;
        int rv = gone || bad_version || !ret_body ? 0 : view_take_locked(m, r, version, &v);
        pthread_mutex_unlock(&m->lock);
        if (gone)
                return -ENOENT;
        if (bad_version)
                return -ESRCH;
        if (!ret_body)
                return 0;
        if (rv < 0)
                return rv;
        *ret_body = render_referral(m, &v, ret_len);
        *ret_version = v.version;
        view_release(&v);
        return 0;
}

static enum MHD_Result handle_a005(struct call *c, const char *ubrn, int64_t version)
{
        struct mock *m = c->m;
        bool world = world_mode(m);
        struct referral *r = world ? NULL : mock_find_referral(m, ubrn);
        enum MHD_Result ret;

        count(c, EP_A005);
        if (r || world)
                snprintf(c->key, sizeof c->key, "%s", ubrn);
        if (refuse_caller(c, &ret) || refuse_accept(c, &ret))
                return ret;
        /* 404 before any fault: as the service itself would answer */
        int known = world ? world_referral_check(m, ubrn, version) : r ? synthetic_referral(c, r, version, FAULT_NONE,
                                                                                         NULL, NULL, NULL)
                                                                       : -ENOENT;
        if (known == -ENOENT)
                return reply_not_found(c, "no referral with that UBRN");
        if (known == -ESRCH)
                return reply_not_found(c, "no such version of that referral");

        enum fault_kind kind = fault_take(c, EP_A005, ubrn);
        if (fault_replace(c, kind, &ret))
                return ret;
        size_t len = 0;
        int64_t served = 0;
        char *body = NULL;
        if (world)
                body = world_render_referral(m, ubrn, &len, &served);
        else if (synthetic_referral(c, r, version, kind, &body, &len, &served) < 0)
                return reply(c, 500, NULL);
        char etag[40];
        snprintf(etag, sizeof etag, "W/\"%lld\"", (long long)served);
        if (body && kind == FAULT_MALFORMED)
                body = break_json(body, len, &len);
        struct MHD_Response *resp = response_from(c, source_mem(body, len), kind);
        if (resp) {
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, FHIR_JSON);
                MHD_add_response_header(resp, MHD_HTTP_HEADER_ETAG, etag);
        }
        return reply(c, 200, resp);
}

/* ---- attachments: A042 (redirect), the store; A006 (retired) --------------- */

/* 404 for an unknown binary id; 422 when not AVAILABLE, its code the
 * availability (PENDING, THREATS_FOUND, VALIDATION_FAILED, or whatever the
 * attachment's is), as the specification's A042 answers.  Returns true when
 * it replied. */
static bool refuse_attachment(struct call *c, const struct attachment *a, enum MHD_Result *ret)
{
        char availability[AVAILABILITY_LEN], diag[128];

        if (!a) {
                *ret = reply_not_found(c, "no attachment with that id");
                return true;
        }
        pthread_mutex_lock(&c->m->lock);
        memcpy(availability, a->availability, sizeof availability);
        bool spare = a->referral == SIZE_MAX;
        pthread_mutex_unlock(&c->m->lock);
        if (spare) { /* not added to any referral yet */
                *ret = reply_not_found(c, "no attachment with that id");
                return true;
        }
        if (strcmp(availability, "AVAILABLE") != 0) {
                snprintf(diag, sizeof diag, "the attachment is not available for download (%s)", availability);
                *ret = reply_outcome(c, 422, "invalid", availability[0] ? availability : "NOT_AVAILABLE",
                                     "Attachment not available", diag);
                return true;
        }
        return false;
}

/* The UBRN an attachment belongs to (for faults and the call record). */
static const char *attachment_ubrn(const struct mock *m, const struct attachment *a)
{
        return a->owner ? a->owner : m->referrals[a->referral].ubrn;
}

/* An attachment by binary id, in the world served (world mode) or the synthetic data. */
static struct attachment *find_binary(struct mock *m, const char *binary_id)
{
        return world_mode(m) ? world_find_binary(m, binary_id) : mock_find_binary(m, binary_id);
}

static unsigned token_bucket(const char *token)
{
        uint64_t h = 1469598103934665603ULL;
        for (; *token; token++)
                h = (h ^ (unsigned char)*token) * 1099511628211ULL;
        return (unsigned)(h % TOKEN_BUCKETS);
}

static int token_issue(struct mock *m, const struct attachment *a, char out[33])
{
        unsigned char raw[16];
        struct store_token *t = malloc(sizeof *t);

        if (!t || RAND_bytes(raw, sizeof raw) != 1) {
                free(t);
                return -EIO;
        }
        for (int i = 0; i < 16; i++)
                snprintf(t->token + 2 * i, 3, "%02x", raw[i]);
        t->attachment = a;
        memcpy(out, t->token, 33);
        pthread_mutex_lock(&m->lock);
        unsigned b = token_bucket(t->token);
        t->next = m->tokens[b];
        m->tokens[b] = t;
        pthread_mutex_unlock(&m->lock);
        return 0;
}

/* Consumes `token` if it was issued for attachment a. */
static bool token_redeem(struct mock *m, const char *token, const struct attachment *a)
{
        bool ok = false;

        if (!token || strlen(token) != 32)
                return false;
        pthread_mutex_lock(&m->lock);
        for (struct store_token **pp = &m->tokens[token_bucket(token)]; *pp; pp = &(*pp)->next)
                if (strcmp((*pp)->token, token) == 0) {
                        struct store_token *t = *pp;
                        if (t->attachment == a) {
                                *pp = t->next;
                                free(t);
                                ok = true;
                        }
                        break;
                }
        pthread_mutex_unlock(&m->lock);
        return ok;
}

static enum MHD_Result handle_a042(struct call *c, const char *binary_id)
{
        struct mock *m = c->m;
        enum MHD_Result ret;
        struct attachment *a;

        count(c, EP_A042);
        if (refuse_caller(c, &ret))
                return ret;
        a = find_binary(m, binary_id);
        if (a)
                snprintf(c->key, sizeof c->key, "%s", attachment_ubrn(m, a));
        if (refuse_attachment(c, a, &ret))
                return ret;
        enum fault_kind kind = fault_take(c, EP_A042, attachment_ubrn(m, a));
        if (fault_replace(c, kind, &ret))
                return ret;

        char token[33];
        size_t size = kind == FAULT_LONG_LOCATION ? LONG_LOCATION_BYTES + 1 : 256;
        char *location = malloc(size);
        if (!location || token_issue(m, a, token) < 0) {
                free(location);
                return reply(c, 500, NULL);
        }
        int n = snprintf(location, size, "%s://127.0.0.1:%u/store/%s?token=%s%s", m->opt.tls_cert ? "https" : "http",
                         m->store_port, a->binary_id, token, kind == FAULT_LONG_LOCATION ? "&pad=" : "");
        if (kind == FAULT_LONG_LOCATION && n > 0 && (size_t)n < size - 1) { /* a signed link gone mad */
                memset(location + n, 'p', size - 1 - (size_t)n);
                location[size - 1] = '\0';
        }
        static const char note[] = "Temporary redirect to the object store.\n";
        struct MHD_Response *resp = response_from(c, source_mem(strdup(note), sizeof note - 1), kind);
        if (resp) {
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "text/plain");
                if (kind != FAULT_MALFORMED) /* malformed: a redirect without a Location */
                        MHD_add_response_header(resp, MHD_HTTP_HEADER_LOCATION, location);
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
        }
        free(location);
        return reply(c, 307, resp);
}

static enum MHD_Result serve_attachment(struct call *c, const struct attachment *a, enum fault_kind kind)
{
        struct MHD_Response *resp = response_from(c, source_attachment(a, kind == FAULT_MALFORMED), kind);

        if (resp)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, a->content_type);
        return reply(c, 200, resp);
}

/* A006 is retired ("please use A042 instead"): a request is counted, so that
 * a test can prove ersd never sends one, and answered as an endpoint that is
 * no longer there. */
static enum MHD_Result handle_a006(struct call *c, const char *binary_id)
{
        struct attachment *a;

        count(c, EP_A006);
        a = find_binary(c->m, binary_id);
        if (a)
                snprintf(c->key, sizeof c->key, "%s", attachment_ubrn(c->m, a));
        return reply_not_found(c, "A006 is retired: use A042");
}

/* Counts a credential sent to the store; returns true (having answered 400) if any. */
struct leak_scan {
        struct mock *m;
        bool leaked;
};

static enum MHD_Result leak_scan_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
        struct leak_scan *ls = cls;
        (void)kind;
        (void)value;
        if (!key)
                return MHD_YES;
        if (strcasecmp(key, "Authorization") == 0 || strcasecmp(key, "Cookie") == 0 ||
            strncasecmp(key, "NHSD-", 5) == 0) {
                char lower[64];
                size_t i = 0;
                for (; key[i] && i < sizeof lower - 1; i++)
                        lower[i] = (char)((key[i] >= 'A' && key[i] <= 'Z') ? key[i] - 'A' + 'a' : key[i]);
                lower[i] = '\0';
                pthread_mutex_lock(&ls->m->lock);
                counter_add(&ls->m->stats.leak_headers, &ls->m->stats.n_leak_headers, lower);
                pthread_mutex_unlock(&ls->m->lock);
                ls->leaked = true;
        }
        return MHD_YES;
}

static enum MHD_Result handle_store(struct call *c)
{
        struct mock *m = c->m;
        struct leak_scan ls = { .m = m };
        enum MHD_Result ret;
        const char *id;

        (void)refuse_without_client_cert(c, &ret); /* counts a certificate; the store never refuses for it */
        MHD_get_connection_values(c->conn, MHD_HEADER_KIND, leak_scan_header, &ls);
        if (ls.leaked) {
                pthread_mutex_lock(&m->lock);
                m->stats.credential_leaks++;
                pthread_mutex_unlock(&m->lock);
                return reply_text(c, 400, "credential leak: the object store must not receive Authorization, "
                                          "Cookie or NHSD-* headers\n");
        }
        if (strncmp(c->url, "/store/", 7) != 0 || !*(id = c->url + 7) || strchr(id, '/'))
                return reply_not_found(c, NULL);
        if (strcmp(c->method, "GET") != 0)
                return reply_text(c, 405, "method not allowed\n");
        count(c, EP_STORE);
        struct attachment *a = find_binary(m, id);
        if (a)
                snprintf(c->key, sizeof c->key, "%s", attachment_ubrn(m, a));
        if (!a)
                return reply_not_found(c, NULL);
        if (!token_redeem(m, query(c, "token"), a))
                return reply_text(c, 403, "AccessDenied: the token is missing, wrong or already used\n");
        enum fault_kind kind = fault_take(c, EP_STORE, attachment_ubrn(m, a));
        if (fault_replace(c, kind, &ret))
                return ret;
        return serve_attachment(c, a, kind);
}

/* ---- A007: the clinical referral information PDF ---------------------------- */

static enum MHD_Result handle_a007(struct call *c, const char *ubrn)
{
        struct mock *m = c->m;
        bool world = world_mode(m);
        struct referral *r = world ? NULL : mock_find_referral(m, ubrn);
        const struct attachment *letter = world ? world_letter(m, ubrn) : NULL;
        enum MHD_Result ret;

        count(c, EP_A007);
        if (r || letter)
                snprintf(c->key, sizeof c->key, "%s", ubrn);
        if (refuse_caller(c, &ret))
                return ret;
        if (world) {
                if (!letter)
                        return reply_not_found(c, "no referral with that UBRN");
                enum fault_kind kind = fault_take(c, EP_A007, ubrn);
                return fault_replace(c, kind, &ret) ? ret : serve_attachment(c, letter, kind);
        }
        pthread_mutex_lock(&m->lock);
        bool gone = r && r->gone;
        pthread_mutex_unlock(&m->lock);
        if (!r || gone)
                return reply_not_found(c, "no referral with that UBRN");
        enum fault_kind kind = fault_take(c, EP_A007, r->ubrn);
        if (fault_replace(c, kind, &ret))
                return ret;
        pthread_mutex_lock(&m->lock);
        int64_t version = r->version;
        int state = state_after(r, r->bumps);
        pthread_mutex_unlock(&m->lock);
        size_t len = 0;
        char *pdf = cri_render(m, r, version, state, &len);
        if (pdf && kind == FAULT_MALFORMED)
                pdf[1] = 'X'; /* "%XDF-": no longer a PDF */
        struct MHD_Response *resp = response_from(c, source_mem(pdf, len), kind);
        if (resp)
                MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/pdf");
        return reply(c, 200, resp);
}

/* ---- services: A033 read, A037 version (HEAD), A035 search (R4) ------------ */

#define SERVICES_PER_SEARCH 20 /* A035 takes 1 to 20 ids, 400 beyond */

/* A033 (GET) and A037 (HEAD): the service, its version in the ETag. */
static enum MHD_Result handle_a033(struct call *c, const char *id, bool head)
{
        struct mock *m = c->m;
        enum MHD_Result ret;
        size_t s, len = 0;
        char etag[40];

        count(c, head ? EP_A037 : EP_A033);
        snprintf(c->key, sizeof c->key, "%.23s", id);
        if (refuse_caller(c, &ret) || refuse_accept(c, &ret))
                return ret;
        s = mock_find_service(m, id);
        if (s == SIZE_MAX)
                return reply_outcome(c, 404, "not-found", "REC_NOT_FOUND", NULL, "no service with that id");
        enum fault_kind kind = fault_take(c, head ? EP_A037 : EP_A033, NULL);
        if (fault_replace(c, kind, &ret))
                return ret;
        char *body = render_service(m, s, &len);
        struct MHD_Response *r = body ? MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE) : NULL;
        if (!r)
                free(body);
        else {
                snprintf(etag, sizeof etag, "W/\"%zu\"", s + 1);
                MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, FHIR_JSON);
                MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, etag);
        }
        return reply(c, 200, r);
}

/* A035: the services of _id (1 to 20 ids, comma-separated), a searchset
 * Bundle of those it knows.  User-restricted access only, as the
 * specification has it: 403 with --app-restricted. */
static enum MHD_Result handle_a035(struct call *c)
{
        struct mock *m = c->m;
        const char *ids = query(c, "_id");
        size_t found[SERVICES_PER_SEARCH], n_found = 0, n_ids = 0, len = 0;
        enum MHD_Result ret;
        char self[96 + SERVICES_PER_SEARCH * 64];

        count(c, EP_A035);
        if (refuse_caller(c, &ret) || refuse_accept(c, &ret))
                return ret;
        if (m->opt.app_restricted)
                return reply_outcome(c, 403, "forbidden", "ACCESS_DENIED", NULL,
                                     "A035 is available to healthcare workers (user-restricted access) only");
        if (!ids || !*ids)
                return reply_outcome(c, 400, "invalid", "REC_BAD_REQUEST", NULL, "_id is mandatory");
        for (const char *p = ids; *p; n_ids++) {
                size_t k = strcspn(p, ",");
                char id[64];
                if (k == 0 || k >= sizeof id || n_ids == SERVICES_PER_SEARCH)
                        return reply_outcome(c, 400, "invalid", "REC_BAD_REQUEST", NULL,
                                             "_id takes 1 to 20 service ids, each 1..63 characters");
                memcpy(id, p, k);
                id[k] = '\0';
                size_t s = mock_find_service(m, id);
                bool again = false;
                for (size_t i = 0; i < n_found; i++)
                        again |= found[i] == s;
                if (s != SIZE_MAX && !again)
                        found[n_found++] = s;
                p += k + (p[k] == ',');
        }
        snprintf(c->key, sizeof c->key, "%.23s", ids);
        enum fault_kind kind = fault_take(c, EP_A035, NULL);
        if (fault_replace(c, kind, &ret))
                return ret;
        snprintf(self, sizeof self, "R4/HealthcareService?_id=%s", ids);
        char *body = render_service_bundle(m, found, n_found, self, &len);
        return reply_body(c, 200, FHIR_JSON, body, len);
}

/* ---- control endpoints (/_mock/) --------------------------------------------- */

static json_object *stats_json(struct mock *m)
{
        json_object *o = json_object_new_object();
        json_object *by_service = json_object_new_object();
        json_object *leaks = json_object_new_object();
        json_object *by_status = json_object_new_object();
        struct stats *s = &m->stats;

        pthread_mutex_lock(&m->lock);
        for (int e = 0; e < EP_COUNT; e++)
                json_object_object_add(o, ENDPOINT_NAMES[e], json_object_new_int64((int64_t)s->endpoint[e]));
        json_object_object_add(o, "credential_leaks", json_object_new_int64((int64_t)s->credential_leaks));
        json_object_object_add(o, "rejected", json_object_new_int64((int64_t)s->rejected));
        json_object_object_add(o, "faults_served", json_object_new_int64((int64_t)s->faults_served));
        json_object_object_add(o, "in_flight_max", json_object_new_int64((int64_t)concurrency.in_flight_max));
        size_t pending = 0;
        for (const struct fault *f = m->faults; f; f = f->next)
                pending += f->count;
        json_object_object_add(o, "faults_pending", json_object_new_int64((int64_t)pending));
        for (size_t i = 0; i < s->n_a008_by_service; i++)
                json_object_object_add(by_service, s->a008_by_service[i].name,
                                       json_object_new_int64((int64_t)s->a008_by_service[i].n));
        for (size_t i = 0; i < s->n_leak_headers; i++)
                json_object_object_add(leaks, s->leak_headers[i].name,
                                       json_object_new_int64((int64_t)s->leak_headers[i].n));
        for (unsigned st = 100; st < 600; st++)
                if (s->status[st]) {
                        char key[8];
                        snprintf(key, sizeof key, "%u", st);
                        json_object_object_add(by_status, key, json_object_new_int64((int64_t)s->status[st]));
                }
        pthread_mutex_unlock(&m->lock);
        json_object_object_add(o, "A008_by_service", by_service);
        json_object_object_add(o, "credential_leak_headers", leaks);
        json_object_object_add(o, "by_status", by_status);
        return o;
}

/* {"calls":[{"t","endpoint","key","status","fault"}…],"rate_limited":n}: every API and store
 * request since the last reset, in arrival order of their answers; t in monotonic seconds. */
static json_object *calls_json(struct mock *m)
{
        json_object *o = json_object_new_object(), *list = json_object_new_array();

        pthread_mutex_lock(&m->lock);
        for (size_t i = 0; i < calls.n; i++) {
                const struct call_record *r = &calls.r[i];
                json_object *e = json_object_new_object();
                json_object_object_add(e, "t", json_object_new_double(r->t));
                json_object_object_add(e, "endpoint", json_object_new_string(r->endpoint));
                json_object_object_add(e, "key", json_object_new_string(r->key));
                json_object_object_add(e, "status", json_object_new_int((int)r->status));
                json_object_object_add(e, "fault", json_object_new_boolean(r->fault));
                json_object_array_add(list, e);
        }
        json_object_object_add(o, "rate_limited", json_object_new_int64((int64_t)calls.rate_limited));
        pthread_mutex_unlock(&m->lock);
        json_object_object_add(o, "calls", list);
        return o;
}

/* Every count back to 0 but A006's: a request to the retired A006 is never
 * forgotten while the mock runs (tests/support/harness.c checks it after
 * every run of ersd). */
static void stats_reset_locked(struct stats *s)
{
        uint64_t a006 = s->endpoint[EP_A006];

        for (size_t i = 0; i < s->n_a008_by_service; i++)
                free(s->a008_by_service[i].name);
        for (size_t i = 0; i < s->n_leak_headers; i++)
                free(s->leak_headers[i].name);
        free(s->a008_by_service);
        free(s->leak_headers);
        memset(s, 0, sizeof *s);
        s->endpoint[EP_A006] = a006;
}

static bool parse_u64(const char *s, uint64_t min, uint64_t max, uint64_t *ret)
{
        char *end;
        if (!s || !*s || *s == '-' || *s == '+')
                return false;
        errno = 0;
        unsigned long long v = strtoull(s, &end, 10);
        if (errno || *end || v < min || v > max)
                return false;
        *ret = v;
        return true;
}

static enum MHD_Result control_fault(struct call *c)
{
        struct mock *m = c->m;
        const char *ep_name = query(c, "endpoint"), *kind_name = query(c, "kind");
        const char *ubrn = query(c, "ubrn"), *count_s = query(c, "count"), *ra_s = query(c, "retry_after");
        const char *code = query(c, "code"), *rate_s = query(c, "rate");
        uint64_t ra = 0, rate = 0;
        int ep = -1;
        enum fault_kind kind = FAULT_NONE;
        uint64_t n = 1;

        for (int e = 0; ep_name && e < EP_COUNT; e++)
                if (strcmp(ep_name, ENDPOINT_NAMES[e]) == 0)
                        ep = e;
        for (size_t k = 0; kind_name && k < sizeof FAULT_NAMES / sizeof FAULT_NAMES[0]; k++)
                if (strcmp(kind_name, FAULT_NAMES[k].name) == 0)
                        kind = FAULT_NAMES[k].kind;
        if (ep < 0 || ep == EP_A006)
                return reply_control_error(c, 400, "endpoint must be one of A008 A005 A042 A007 store A033 A035 "
                                                   "A037 (A006 is retired: never served)");
        if (kind == FAULT_NONE)
                return reply_control_error(c, 400, "kind must be one of 400 403 404 422 429 429_bare 500 502 503 malformed wrong_type "
                                                   "wrong_content_type truncated stall oversized stale trickle slow "
                                                   "endless endless_500 long_location");
        if (kind == FAULT_OVERSIZED && ep != EP_A008)
                return reply_control_error(c, 400, "oversized applies to A008 only");
        if (kind == FAULT_STALE && ep != EP_A005)
                return reply_control_error(c, 400, "stale applies to A005 only");
        if (kind == FAULT_LONG_LOCATION && ep != EP_A042)
                return reply_control_error(c, 400, "long_location applies to A042 only");
        if (rate_s && !parse_u64(rate_s, 1, 1000000000, &rate))
                return reply_control_error(c, 400, "rate must be 1..1000000000 bytes a second");
        if (ubrn && (ep == EP_A008 || strlen(ubrn) != 12 || strspn(ubrn, "0123456789") != 12))
                return reply_control_error(c, 400, "ubrn must be 12 digits, and does not apply to A008");
        if (count_s && !parse_u64(count_s, 1, 1000000, &n))
                return reply_control_error(c, 400, "count must be 1..1000000");
        if (ra_s && !parse_u64(ra_s, 0, 86400, &ra))
                return reply_control_error(c, 400, "retry_after must be 0..86400 seconds");
        if (code && (!*code || strlen(code) > 63)) /* struct fault.code */
                return reply_control_error(c, 400, "code must be 1..63 bytes");

        struct fault *f = calloc(1, sizeof *f);
        if (!f)
                return reply(c, 500, NULL);
        f->endpoint = (enum endpoint)ep;
        f->kind = kind;
        f->count = (unsigned)n;
        f->retry_after = ra_s ? (int)ra : -1;
        f->rate = (unsigned)rate;
        if (ubrn)
                memcpy(f->ubrn, ubrn, 13);
        if (code)
                memcpy(f->code, code, strlen(code) + 1);
        pthread_mutex_lock(&m->lock);
        struct fault **pp = &m->faults;
        while (*pp)
                pp = &(*pp)->next;
        *pp = f;
        pthread_mutex_unlock(&m->lock);

        json_object *o = json_object_new_object();
        json_object_object_add(o, "endpoint", json_object_new_string(ENDPOINT_NAMES[ep]));
        json_object_object_add(o, "kind", json_object_new_string(kind_name));
        json_object_object_add(o, "ubrn", ubrn ? json_object_new_string(ubrn) : NULL);
        json_object_object_add(o, "count", json_object_new_int64((int64_t)n));
        return reply_json(c, 200, o);
}

static enum MHD_Result control_faults_clear(struct call *c)
{
        struct mock *m = c->m;
        pthread_mutex_lock(&m->lock);
        while (m->faults) {
                struct fault *f = m->faults;
                m->faults = f->next;
                free(f);
        }
        pthread_mutex_unlock(&m->lock);
        return reply_json(c, 200, json_object_new_object());
}

static json_object *referral_state_json(struct mock *m, const struct referral *r)
{
        json_object *o = json_object_new_object();
        json_object_object_add(o, "ubrn", json_object_new_string(r->ubrn));
        json_object_object_add(o, "version", json_object_new_int64(r->version));
        json_object_object_add(o, "state", json_object_new_string(STATES[state_after(r, r->bumps)].code));
        (void)m;
        return o;
}

static enum MHD_Result control_bump(struct call *c)
{
        struct mock *m = c->m;
        const char *ubrn = query(c, "ubrn");
        struct referral *r = ubrn ? mock_find_referral(m, ubrn) : NULL;

        if (!r)
                return reply_control_error(c, 404, "no referral with that ubrn");
        pthread_mutex_lock(&m->lock);
        r->version++;
        r->bumps++;
        json_object *o = referral_state_json(m, r);
        pthread_mutex_unlock(&m->lock);
        return reply_json(c, 200, o);
}

static enum MHD_Result control_availability(struct call *c)
{
        struct mock *m = c->m;
        const char *id = query(c, "attachment"), *status = query(c, "status"), *bump = query(c, "bump");
        struct attachment *a = id ? mock_find_attachment(m, id) : NULL;

        if (!a || a->referral == SIZE_MAX)
                return reply_control_error(c, 404, "no attachment with that id (attachment id or binary id)");
        if (!status || !*status || strlen(status) >= AVAILABILITY_LEN)
                return reply_control_error(c, 400, "status must be a code of 1..47 characters");
        struct referral *r = &m->referrals[a->referral];
        pthread_mutex_lock(&m->lock);
        snprintf(a->availability, sizeof a->availability, "%s", status);
        if (bump && strcmp(bump, "1") == 0)
                r->version++;
        json_object *o = referral_state_json(m, r);
        pthread_mutex_unlock(&m->lock);
        json_object_object_add(o, "attachment", json_object_new_string(attachment_id(a)));
        json_object_object_add(o, "availability", json_object_new_string(status));
        return reply_json(c, 200, o);
}

static enum MHD_Result control_change(struct call *c)
{
        struct mock *m = c->m;
        const char *ubrn = query(c, "ubrn"), *what = query(c, "what"), *att = query(c, "attachment");
        struct referral *r = ubrn ? mock_find_referral(m, ubrn) : NULL;
        const char *why = NULL;

        if (!r)
                return reply_control_error(c, 404, "no referral with that ubrn");
        if (!what)
                return reply_control_error(c, 400, "what= is required");
        pthread_mutex_lock(&m->lock);
        int rv = mock_change_locked(m, r, what, att, &why);
        json_object *o = rv == 0 ? referral_state_json(m, r) : NULL;
        pthread_mutex_unlock(&m->lock);
        if (rv < 0)
                return reply_control_error(c, rv == -ENOSPC ? 409 : 400, why);
        if (strcmp(what, "attachment_added") == 0) {
                pthread_mutex_lock(&m->lock);
                const char *id = attachment_id(&m->attachments[r->extra[r->n_extra - 1]]);
                json_object_object_add(o, "attachment", json_object_new_string(id));
                pthread_mutex_unlock(&m->lock);
        }
        return reply_json(c, 200, o);
}

/* POST /_mock/world?file=PATH: serve the world PATH describes from now on (world.c). */
static enum MHD_Result control_world(struct call *c)
{
        const char *file = query(c, "file");
        char why[256];

        if (!file || !*file)
                return reply_control_error(c, 400, "file= names the world to serve");
        int r = world_load(c->m, file, why, sizeof why);
        if (r < 0)
                return reply_control_error(c, r == -ENOMEM ? 500 : 400, why);
        return reply_json(c, 200, json_object_new_object());
}

/* POST /_mock/killpoint?pid=P&after=N[&signal=STOP][&ubrn=U]: the Nth API or store request
 * from now on (for U only: whose URL holds it) first sends SIGKILL (or SIGSTOP) to P;
 * pid=0 disarms.  GET: its state. */
static enum MHD_Result control_killpoint(struct call *c, bool post)
{
        const char *sig = query(c, "signal"), *ubrn = query(c, "ubrn");
        uint64_t pid = 0, after = 1;

        if (!post)
                return strcmp(c->method, "GET") == 0 ? reply_json(c, 200, killpoint_state(c->m))
                                                     : reply_405(c, "GET, POST");
        if (!parse_u64(query(c, "pid"), 0, INT32_MAX, &pid) ||
            (query(c, "after") && !parse_u64(query(c, "after"), 1, 100000000, &after)) ||
            (sig && strcmp(sig, "KILL") != 0 && strcmp(sig, "STOP") != 0) || (ubrn && (strlen(ubrn) != 12 || strspn(ubrn, "0123456789") != 12)))
                return reply_control_error(c, 400, "pid=P (0: disarm), after=1..100000000, signal=KILL|STOP, "
                                                   "ubrn=12 digits");
        killpoint_set(c->m, (long)pid, after, sig && strcmp(sig, "STOP") == 0 ? SIGSTOP : SIGKILL, ubrn);
        return reply_json(c, 200, killpoint_state(c->m));
}

static enum MHD_Result handle_control(struct call *c, const char *what)
{
        bool get = strcmp(c->method, "GET") == 0, post = strcmp(c->method, "POST") == 0;

        c->control = true;
        if (strncmp(what, "oauth", 5) == 0 || strcmp(what, "tls") == 0)
                return control_oauth(c, what);
        if (strcmp(what, "manifest") == 0) {
                if (!get)
                        return reply_405(c, "GET");
                const char *ubrn = query(c, "ubrn"), *hashes = query(c, "hashes");
                size_t len = 0;
                char *body = render_manifest(c->m, ubrn, !(hashes && strcmp(hashes, "0") == 0), &len);
                if (!body && ubrn)
                        return reply_control_error(c, 404, "no referral with that ubrn");
                return reply_body(c, body ? 200 : 500, "application/json", body, len);
        }
        if (strcmp(what, "stats") == 0)
                return get ? reply_json(c, 200, stats_json(c->m)) : reply_405(c, "GET");
        if (strcmp(what, "stats/reset") == 0) {
                if (!post)
                        return reply_405(c, "POST");
                pthread_mutex_lock(&c->m->lock);
                stats_reset_locked(&c->m->stats);
                concurrency.in_flight_max = concurrency.in_flight;
                pthread_mutex_unlock(&c->m->lock);
                return reply_json(c, 200, json_object_new_object());
        }
        if (strcmp(what, "calls") == 0)
                return get ? reply_json(c, 200, calls_json(c->m)) : reply_405(c, "GET");
        if (strcmp(what, "calls/reset") == 0) {
                if (!post)
                        return reply_405(c, "POST");
                pthread_mutex_lock(&c->m->lock);
                calls.n = 0;
                calls.rate_limited = 0;
                pthread_mutex_unlock(&c->m->lock);
                return reply_json(c, 200, json_object_new_object());
        }
        if (strcmp(what, "hold") == 0) {
                if (get) {
                        json_object *o = json_object_new_object();
                        pthread_mutex_lock(&c->m->lock);
                        json_object_object_add(o, "together", json_object_new_int64(hold.together));
                        json_object_object_add(o, "reached", json_object_new_int64(hold.reached));
                        json_object_object_add(o, "released", json_object_new_boolean(hold.released));
                        json_object_object_add(o, "timed_out", json_object_new_boolean(hold.timed_out));
                        pthread_mutex_unlock(&c->m->lock);
                        return reply_json(c, 200, o);
                }
                uint64_t together = 0, timeout_ms = 5000;
                const char *t = query(c, "timeout_ms");
                if (!post)
                        return reply_405(c, "GET, POST");
                if (!parse_u64(query(c, "together"), 0, 64, &together) ||
                    (t && !parse_u64(t, 1, 60000, &timeout_ms)))
                        return reply_control_error(c, 400, "together must be 0..64 (0: no hold), timeout_ms 1..60000");
                pthread_mutex_lock(&c->m->lock);
                hold.released = true; /* whoever waits on an earlier hold goes on */
                pthread_cond_broadcast(&hold.cond);
                hold.together = (unsigned)together;
                hold.reached = 0;
                hold.released = hold.timed_out = false;
                hold.timeout_ms = (unsigned)timeout_ms;
                pthread_mutex_unlock(&c->m->lock);
                return reply_json(c, 200, json_object_new_object());
        }
        if (strcmp(what, "ratelimit") == 0) {
                uint64_t per = 0;
                if (!post)
                        return reply_405(c, "POST");
                if (!parse_u64(query(c, "per_second"), 0, RATE_WINDOW_MAX, &per))
                        return reply_control_error(c, 400, "per_second must be 0..10000 (0: no limit)");
                pthread_mutex_lock(&c->m->lock);
                calls.per_second = (unsigned)per;
                calls.next = 0;
                memset(calls.window, 0, sizeof calls.window);
                pthread_mutex_unlock(&c->m->lock);
                return reply_json(c, 200, json_object_new_object());
        }
        if (strcmp(what, "fault") == 0)
                return post ? control_fault(c) : reply_405(c, "POST");
        if (strcmp(what, "fault/clear") == 0)
                return post ? control_faults_clear(c) : reply_405(c, "POST");
        if (strcmp(what, "bump") == 0)
                return post ? control_bump(c) : reply_405(c, "POST");
        if (strcmp(what, "availability") == 0)
                return post ? control_availability(c) : reply_405(c, "POST");
        if (strcmp(what, "change") == 0)
                return post ? control_change(c) : reply_405(c, "POST");
        if (strcmp(what, "world") == 0)
                return post ? control_world(c) : reply_405(c, "POST");
        if (strcmp(what, "killpoint") == 0)
                return control_killpoint(c, post);
        if (strncmp(what, "writeback", 9) == 0) {
                struct wb_reply w;
                writeback_control(c->m, c->conn, what, c->method, &w);
                return reply_writeback(c, &w);
        }
        return reply_control_error(c, 404, "unknown control endpoint");
}

/* ---- signed-JWT access and TLS ------------------------------------------------ */

/* Client certificates seen (--tls-client-ca): under mock.lock. */
static struct {
        uint64_t api_ok;       /* API requests that came with a verified client certificate */
        uint64_t api_refused;  /* API requests refused for want of one */
        uint64_t store_certs;  /* store requests that came with any client certificate (must stay 0) */
} tls_stats;

/* Whether the connection's client sent a certificate, and whether it verified
 * against --tls-client-ca. */
static void client_cert(struct call *c, bool *ret_sent, bool *ret_valid)
{
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_GNUTLS_SESSION);
        gnutls_session_t session = ci ? (gnutls_session_t)ci->tls_session : NULL;
        unsigned n = 0, status = 1;

        *ret_sent = *ret_valid = false;
        if (!session)
                return;
        *ret_sent = gnutls_certificate_get_peers(session, &n) != NULL && n > 0;
        *ret_valid = *ret_sent && gnutls_certificate_verify_peers2(session, &status) == 0 && status == 0;
}

/* The API origin with --tls-client-ca: a request without a valid client
 * certificate is refused (400, as the platform's nginx front answers it); the
 * store counts any certificate it is shown.  Returns true when it replied. */
static bool refuse_without_client_cert(struct call *c, enum MHD_Result *ret)
{
        bool sent, valid;

        if (!c->m->opt.tls_client_ca)
                return false;
        client_cert(c, &sent, &valid);
        pthread_mutex_lock(&c->m->lock);
        if (c->store)
                tls_stats.store_certs += sent;
        else if (valid)
                tls_stats.api_ok++;
        else
                tls_stats.api_refused++;
        pthread_mutex_unlock(&c->m->lock);
        if (c->store || valid)
                return false;
        *ret = reply_text(c, 400, sent ? "400 The SSL certificate error\n" : "400 No required SSL certificate was sent\n");
        return true;
}

static enum MHD_Result handle_token(struct call *c)
{
        struct mock *m = c->m;
        char url[96];
        unsigned status = 500;
        size_t len = 0;

        c->recorded = "token";
        if (!oauth_enabled(m))
                return reply_not_found(c, "no token endpoint: start the mock with --jwks");
        if (strcmp(c->method, "POST") != 0)
                return reply_405(c, "POST");
        snprintf(url, sizeof url, "%s://127.0.0.1:%u/oauth2/token", m->opt.tls_cert ? "https" : "http", m->api_port);
        char *body = oauth_token_request(m, c->q->body.p ? c->q->body.p : "", c->q->body.len, url, &status, &len);
        return reply_body(c, status, "application/json", body, len);
}

static enum MHD_Result control_oauth(struct call *c, const char *what)
{
        bool post = strcmp(c->method, "POST") == 0;
        uint64_t n = 0;

        if (strcmp(what, "oauth") == 0)
                return strcmp(c->method, "GET") == 0 ? reply_json(c, 200, oauth_stats()) : reply_405(c, "GET");
        if (strcmp(what, "oauth/expire") == 0) {
                const char *after_s = query(c, "after");
                if (!post)
                        return reply_405(c, "POST");
                if (after_s && !parse_u64(after_s, 0, 1000000, &n))
                        return reply_control_error(c, 400, "after must be 0..1000000");
                oauth_expire((long)n);
                return reply_json(c, 200, oauth_stats());
        }
        if (strcmp(what, "oauth/revoke") == 0) {
                const char *future = query(c, "future");
                if (!post)
                        return reply_405(c, "POST");
                oauth_revoke(future && strcmp(future, "1") == 0);
                return reply_json(c, 200, oauth_stats());
        }
        if (strcmp(what, "tls") == 0) {
                json_object *o = json_object_new_object();
                pthread_mutex_lock(&c->m->lock);
                json_object_object_add(o, "api_client_certs", json_object_new_int64((int64_t)tls_stats.api_ok));
                json_object_object_add(o, "api_refused", json_object_new_int64((int64_t)tls_stats.api_refused));
                json_object_object_add(o, "store_client_certs", json_object_new_int64((int64_t)tls_stats.store_certs));
                pthread_mutex_unlock(&c->m->lock);
                return reply_json(c, 200, o);
        }
        return reply_control_error(c, 404, "unknown control endpoint");
}

/* ---- routing -------------------------------------------------------------------- */

static const char *after(const char *s, const char *prefix)
{
        size_t n = strlen(prefix);
        return strncmp(s, prefix, n) == 0 ? s + n : NULL;
}

static bool is_id(const char *s)
{
        return *s && !strchr(s, '/') && strlen(s) < 128;
}

static void hold_a005(struct mock *m)
{
        pthread_mutex_lock(&m->lock);
        if (hold.together > 0 && !hold.released) {
                struct timespec until;
                clock_gettime(CLOCK_REALTIME, &until);
                until.tv_sec += hold.timeout_ms / 1000;
                until.tv_nsec += (long)(hold.timeout_ms % 1000) * 1000000L;
                if (until.tv_nsec >= 1000000000L) {
                        until.tv_sec++;
                        until.tv_nsec -= 1000000000L;
                }
                hold.waiting++;
                if (hold.waiting > hold.reached)
                        hold.reached = hold.waiting;
                if (hold.waiting >= hold.together)
                        hold.released = true;
                while (!hold.released)
                        if (pthread_cond_timedwait(&hold.cond, &m->lock, &until) == ETIMEDOUT) {
                                hold.timed_out = hold.released = true;
                                break;
                        }
                hold.waiting--;
                pthread_cond_broadcast(&hold.cond);
        }
        pthread_mutex_unlock(&m->lock);
}

/* ---- write-back (writeback.c): A029, A028, A013 and /_mock/writeback/ ---------- */

/* Sends what writeback.c answered; a dropped connection is recorded with status 0. */
static enum MHD_Result reply_writeback(struct call *c, struct wb_reply *w)
{
        struct MHD_Response *r;
        char ra[16];

        c->fault = w->fault;
        if (w->drop) {
                pthread_mutex_lock(&c->m->lock);
                call_record_locked(c, 0);
                pthread_mutex_unlock(&c->m->lock);
                return MHD_NO; /* libmicrohttpd closes the connection: no answer at all */
        }
        r = w->body ? MHD_create_response_from_buffer(w->len, w->body, MHD_RESPMEM_MUST_FREE) : NULL;
        if (!r)
                free(w->body);
        else {
                if (w->content_type)
                        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, w->content_type);
                if (w->allow)
                        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, w->allow);
                if (w->etag[0])
                        MHD_add_response_header(r, MHD_HTTP_HEADER_ETAG, w->etag);
                snprintf(ra, sizeof ra, "%d", w->retry_after);
                if (w->retry_after >= 0)
                        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, ra);
        }
        return reply(c, w->status, r);
}

static enum MHD_Result handle_writeback(struct call *c, const char *endpoint, const char *key)
{
        struct wb_reply w;
        enum MHD_Result ret;

        c->recorded = endpoint;
        snprintf(c->key, sizeof c->key, "%s", key);
        if (refuse_caller(c, &ret) || refuse_accept(c, &ret))
                return ret;
        writeback_answer(c->m, c->conn, c->method, c->url, c->q->body.p, c->q->body.len, c->q->body_too_big,
                         c->arrived, &w);
        return reply_writeback(c, &w);
}

static enum MHD_Result handle_api(struct call *c)
{
        const char *rest;
        bool get = strcmp(c->method, "GET") == 0, post = strcmp(c->method, "POST") == 0;

        if ((rest = after(c->url, "/_mock/")))
                return handle_control(c, rest);
        c->r4 = after(c->url, "/referrals/FHIR/R4/") != NULL;
        if (rate_limited(c->m, c->arrived)) {
                c->recorded = "rate_limited";
                struct MHD_Response *r = NULL;
                size_t len = 0;
                char *body = render_outcome("throttled", "TOO_MANY_REQUESTS", "Too many requests",
                                            "the application's rate limit was exceeded", &len);
                if (body && !(r = MHD_create_response_from_buffer(len, body, MHD_RESPMEM_MUST_FREE)))
                        free(body);
                if (r) {
                        MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, FHIR_JSON);
                        MHD_add_response_header(r, MHD_HTTP_HEADER_RETRY_AFTER, "1");
                }
                return reply(c, 429, r);
        }
        enum MHD_Result refused;
        if (refuse_without_client_cert(c, &refused))
                return refused;
        if (strcmp(c->url, "/oauth2/token") == 0)
                return handle_token(c);
        char wb_key[24];
        const char *wb_endpoint = writeback_endpoint(c->conn, c->url, wb_key, sizeof wb_key);
        if (wb_endpoint)
                return handle_writeback(c, wb_endpoint, wb_key);
        if ((rest = after(c->url, "/referrals/FHIR/STU3/ReferralRequest/"))) {
                if (strcmp(rest, "$ers.fetchworklist") == 0)
                        return post ? handle_a008(c) : reply_405(c, "POST");
                size_t ul = strcspn(rest, "/");
                char ubrn[13];
                if (ul == 0 || ul > 12)
                        return reply_not_found(c, "no referral with that UBRN");
                memcpy(ubrn, rest, ul);
                ubrn[ul] = '\0';
                const char *tail = rest + ul, *v;
                if (!*tail) {
                        if (get)
                                hold_a005(c->m);
                        return get ? handle_a005(c, ubrn, 0) : reply_405(c, "GET");
                }
                if ((v = after(tail, "/_history/"))) {
                        uint64_t version;
                        if (!parse_u64(v, 1, INT64_MAX, &version))
                                return reply_not_found(c, "no such version of that referral");
                        return get ? handle_a005(c, ubrn, (int64_t)version) : reply_405(c, "GET");
                }
                if (strcmp(tail, "/$ers.generateCRI") == 0)
                        return post ? handle_a007(c, ubrn) : reply_405(c, "POST");
                return reply_not_found(c, "unknown path");
        }
        if ((rest = after(c->url, "/referrals/FHIR/R4/Binary/")) && is_id(rest))
                return get ? handle_a042(c, rest) : reply_405(c, "GET");
        if ((rest = after(c->url, "/referrals/FHIR/STU3/Binary/")) && is_id(rest))
                return get ? handle_a006(c, rest) : reply_405(c, "GET");
        if ((rest = after(c->url, "/referrals/FHIR/R4/HealthcareService"))) {
                bool head = strcmp(c->method, "HEAD") == 0;
                if (!*rest)
                        return get ? handle_a035(c) : reply_405(c, "GET");
                if (rest[0] == '/' && is_id(rest + 1))
                        return get || head ? handle_a033(c, rest + 1, head) : reply_405(c, "GET, HEAD");
        }
        return reply_not_found(c, "unknown path");
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_data_size,
                                  void **req_cls)
{
        struct origin *o = cls;
        struct request *q = *req_cls;
        (void)version;

        if (!q) {
                q = calloc(1, sizeof *q);
                if (!q)
                        return MHD_NO;
                *req_cls = q;
                return MHD_YES;
        }
        if (*upload_data_size) {
                if (q->body.len + *upload_data_size > MAX_REQUEST_BODY)
                        q->body_too_big = true;
                else
                        buf_append(&q->body, upload_data, *upload_data_size);
                *upload_data_size = 0;
                return MHD_YES;
        }
        struct call c = { .m = o->m, .conn = conn, .url = url, .method = method, .q = q, .store = o->store,
                          .fault_retry_after = -1, .arrived = monotonic_now() };
        bool counted = o->store || strncmp(url, "/_mock/", 7) != 0;
        if (counted) {
                killpoint_request(o->m, url, MHD_lookup_connection_value(conn, MHD_GET_ARGUMENT_KIND, "focus"));
                pthread_mutex_lock(&o->m->lock);
                if (++concurrency.in_flight > concurrency.in_flight_max)
                        concurrency.in_flight_max = concurrency.in_flight;
                pthread_mutex_unlock(&o->m->lock);
        }
        enum MHD_Result ret = o->store ? handle_store(&c) : handle_api(&c);
        if (counted) {
                pthread_mutex_lock(&o->m->lock);
                concurrency.in_flight--;
                pthread_mutex_unlock(&o->m->lock);
        }
        return ret;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **req_cls, enum MHD_RequestTerminationCode toe)
{
        struct request *q = *req_cls;
        (void)cls;
        (void)conn;
        (void)toe;
        if (q) {
                free(q->body.p);
                free(q);
        }
        *req_cls = NULL;
}

/* --tls-cert, --tls-key, --tls-client-ca, read once by server_start(). */
static struct {
        char *cert, *key, *trust;
} tls_pem;

static char *read_pem(const char *path)
{
        FILE *f = fopen(path, "re");
        struct buf b = { 0 };
        char chunk[4096];
        size_t n;

        if (!f) {
                fprintf(stderr, "mock-ers: %s: %s\n", path, strerror(errno));
                return NULL;
        }
        while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
                buf_append(&b, chunk, n);
        fclose(f);
        buf_append(&b, "", 1);
        if (b.oom) {
                free(b.p);
                return NULL;
        }
        return b.p;
}

static int start_origin(struct mock *m, struct origin *o, bool store, unsigned *ret_port)
{
        struct sockaddr_in sin = { .sin_family = AF_INET, .sin_port = 0 };
        unsigned flags = MHD_USE_THREAD_PER_CONNECTION | MHD_USE_POLL_INTERNAL_THREAD | MHD_USE_ITC;

        sin.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (m->opt.verbose)
                flags |= MHD_USE_ERROR_LOG;
        o->m = m;
        o->store = store;
        /* https (--tls-cert): both origins; the API requires and the store merely requests
         * (to count) a client certificate when --tls-client-ca is given. */
        struct MHD_OptionItem tls[4] = { { MHD_OPTION_END, 0, NULL } };
        if (tls_pem.cert) {
                size_t n = 0;
                flags |= MHD_USE_TLS;
                tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_KEY, 0, tls_pem.key };
                tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_CERT, 0, tls_pem.cert };
                if (tls_pem.trust)
                        tls[n++] = (struct MHD_OptionItem){ MHD_OPTION_HTTPS_MEM_TRUST, 0, tls_pem.trust };
                tls[n] = (struct MHD_OptionItem){ MHD_OPTION_END, 0, NULL };
        }
        o->daemon = MHD_start_daemon(flags, 0, NULL, NULL, on_request, o,
                                     MHD_OPTION_ARRAY, tls,
                                     MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&sin,
                                     MHD_OPTION_NOTIFY_COMPLETED, on_completed, o,
                                     MHD_OPTION_CONNECTION_LIMIT, (unsigned)1000,
                                     /* room for a long_location fault's header (MHD's default is 32 KiB) */
                                     MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)(LONG_LOCATION_BYTES + 64 * 1024),
                                     MHD_OPTION_LISTEN_BACKLOG_SIZE, (unsigned)256,
                                     MHD_OPTION_END);
        if (!o->daemon)
                return -EADDRNOTAVAIL;
        const union MHD_DaemonInfo *di = MHD_get_daemon_info(o->daemon, MHD_DAEMON_INFO_BIND_PORT);
        if (!di || di->port == 0)
                return -EADDRNOTAVAIL;
        *ret_port = di->port;
        return 0;
}

int server_start(struct mock *m)
{
        unsigned port = 0;

        if (m->opt.tls_cert || m->opt.tls_key || m->opt.tls_client_ca) {
                if (!m->opt.tls_cert || !m->opt.tls_key) {
                        fprintf(stderr, "mock-ers: --tls-cert and --tls-key go together (and --tls-client-ca needs them)\n");
                        return -EINVAL;
                }
                if (MHD_is_feature_supported(MHD_FEATURE_TLS) != MHD_YES) {
                        fprintf(stderr, "mock-ers: this libmicrohttpd has no TLS support\n");
                        return -ENOTSUP;
                }
                if (!(tls_pem.cert = read_pem(m->opt.tls_cert)) || !(tls_pem.key = read_pem(m->opt.tls_key)) ||
                    (m->opt.tls_client_ca && !(tls_pem.trust = read_pem(m->opt.tls_client_ca))))
                        return -EINVAL;
        }

        /* The store first: the API's redirects need its port. */
        int r = start_origin(m, &store_origin, true, &port);
        if (r < 0)
                return r;
        m->store_port = port;
        r = start_origin(m, &api_origin, false, &port);
        if (r < 0)
                return r;
        pthread_mutex_lock(&m->lock); /* API threads already run */
        m->api_port = port;
        pthread_mutex_unlock(&m->lock);
        return 0;
}

void server_stop(struct mock *m)
{
        pthread_mutex_lock(&m->lock);
        m->stopping = true;
        pthread_cond_broadcast(&m->wake);
        pthread_mutex_unlock(&m->lock);
        if (api_origin.daemon)
                MHD_stop_daemon(api_origin.daemon);
        if (store_origin.daemon)
                MHD_stop_daemon(store_origin.daemon);
        api_origin.daemon = store_origin.daemon = NULL;
        oauth_free(m);
        free(tls_pem.cert);
        free(tls_pem.key);
        free(tls_pem.trust);
        tls_pem.cert = tls_pem.key = tls_pem.trust = NULL;

        stats_reset_locked(&m->stats);
        free(calls.r);
        calls.r = NULL;
        calls.n = calls.cap = 0;
        while (m->faults) {
                struct fault *f = m->faults;
                m->faults = f->next;
                free(f);
        }
        for (size_t b = 0; b < TOKEN_BUCKETS; b++)
                while (m->tokens[b]) {
                        struct store_token *t = m->tokens[b];
                        m->tokens[b] = t->next;
                        free(t);
                }
}
