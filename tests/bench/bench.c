/* SPDX-License-Identifier: MIT */
/*
 * `make bench`: end-to-end sync throughput and memory of build/ersd, printed
 * beside this machine's limits measured in the same run on the same data
 * (issue 7).  It prints figures; it never fails on speed.
 *
 * For each dataset the mock e-RS (build/mock-ers, loopback, free ports) serves
 * synthetic referrals: ~20 KB of A005 JSON each (--padding), two attachments
 * each with a median of ~200 KiB and every 100th a tail file of up to 20 MiB
 * (--tail-every/--tail-max), plus one big file on the first referral.  A
 * service's worklist is ~1.5 KB per referral and ersd refuses one above the
 * platform's 10 MB, so the referrals are spread over one configured worklist
 * (service) per 2,500 referrals.
 *
 *   ersd      `ersd --once` into an empty database, timed with wait4(): wall,
 *             CPU (user + sys), peak RSS of the child; referrals/s and MB/s.
 *   no-op     the same run again with nothing changed: its cost and the
 *             e-RS calls it made (mock stats).
 *   fetch     the limit of the network side: the same URLs (A008 per service,
 *             A005, A042 + object store, A007) with ersd's concurrency
 *             (FETCHERS threads taking referrals in turn, each on connections
 *             of its own, reused), bodies thrown away.
 *   write     the limit of the database side: the same rows and ≤ 1 MiB BLOB
 *             parts into the schema `ersd --init-db` creates, through the
 *             same ODBC driver and session settings, one transaction per
 *             referral, from memory (no spool, no hashing).
 *   rate      ersd at e-RS's rate limit: max_requests_per_second = 10 (the
 *             production value) against the mock enforcing 10 requests/s
 *             with 429s; from the mock's record of arrivals, the requests
 *             sent, first to last, sustained requests/s over the limit, and
 *             the 429s (printed, not asserted).  SQLite only: the rate, not
 *             the engine, is the ceiling there.
 *
 * Engines are rows of ENGINES[]: SQLite (files), PostgreSQL and MariaDB
 * (throwaway servers on loopback, tests/support/engines.c).  The servers run
 * the datasets of up to max_referrals referrals, so `make bench` stays short.
 * BENCH_QUICK=1 runs small datasets (a minute or so).
 */
#include <curl/curl.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <json-c/json.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <sql.h>
#include <sqlext.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "adapters/document_key.h"
#include "tests/support/engines.h"
#include "tests/support/harness.h"
#include "tests/support/testutil.h"

#define MIB (1024.0 * 1024.0)
#define PART_MAX (1024 * 1024)      /* as PAS_PART_MAX: documents are stored as ≤ 1 MiB parts */
#define PER_SERVICE 2500            /* referrals per worklist: ~3.75 MB, under the 10 MB limit */
#define PADDING "15000"             /* A005 answers of ~20 KB */
#define FETCHERS 4                  /* ers.parallel_fetches: ersd's default, and the fetch limit's threads */
#define NO_RATE_LIMIT 10000L        /* max_requests_per_second when measuring ersd itself */
#define ERS_RATE_LIMIT 10           /* e-RS's requests/s per application: ersd's production value */

/* A database engine ersd writes to: one row per engine. */
struct bench_engine {
        enum engine_kind kind;
        size_t max_referrals;    /* larger datasets are not run on this engine */
        const char *name;        /* database.adapter */
        const char *driver;      /* ODBC driver name, for the connection string */
        const char *session[4];  /* what the adapter runs on its connection first (the write limit does too) */
        const char *extra;       /* appended to the connection string, as the adapter does */
};

static const struct bench_engine ENGINES[] = {
        { .kind = ENGINE_SQLITE,
          .max_referrals = 10000,
          .name = "sqlite",
          .driver = "SQLite3",
          .session = { "PRAGMA foreign_keys = ON", "PRAGMA journal_mode = WAL", NULL },
          .extra = ";Timeout=5000" },
        { .kind = ENGINE_POSTGRESQL,
          .max_referrals = 1000,
          .name = "postgresql",
          .driver = "PostgreSQL Unicode",
          .session = { NULL },
          .extra = ";Protocol=7.4-1;ByteaAsLongVarBinary=1;CommLog=0;Debug=0" },
        { .kind = ENGINE_MARIADB,
          .max_referrals = 1000,
          .name = "mariadb",
          .driver = "MariaDB Unicode",
          .session = { "SET SESSION sql_mode = CONCAT_WS(',', NULLIF(@@SESSION.sql_mode, ''), 'STRICT_ALL_TABLES')",
                       NULL },
          .extra = ";CHARSET=utf8mb4" },
};
#define N_ENGINES (sizeof ENGINES / sizeof ENGINES[0])
static struct engine servers[N_ENGINES]; /* the running server of each engine (none for SQLite) */

struct dataset {
        const char *label;
        size_t referrals;
        uint64_t big;        /* --big-attachment */
        uint64_t tail_max;   /* --tail-max */
        bool limits;         /* measure fetch and write limits on it too */
};

static const struct dataset FULL[] = {
        { "1k, big 20 MiB", 1000, 20u << 20, 20u << 20, false },
        { "1k, big 200 MiB", 1000, 200u << 20, 20u << 20, true },
        { "10k, big 200 MiB", 10000, 200u << 20, 20u << 20, true },
};
static const struct dataset QUICK[] = {
        { "100, big 5 MiB", 100, 5u << 20, 5u << 20, false },
        { "100, big 50 MiB", 100, 50u << 20, 5u << 20, true },
        { "1k, big 50 MiB", 1000, 50u << 20, 5u << 20, true },
};
#define N_DATASETS 3

/* Referrals synced under e-RS's rate limit: about 4 API requests each (A005, two A042, A007),
 * so ~2 minutes at 10/s, ~25 s for BENCH_QUICK. */
#define RATE_FULL 300
#define RATE_QUICK 60

struct proc_cost {
        double wall, cpu;  /* seconds */
        long maxrss_kib;
        int status;
};

struct calls {
        long a008, a005, a042, a007, store, s429;
};

struct result {
        const struct dataset *ds;
        bool ran;                      /* false: larger than the engine's max_referrals */
        size_t services, referrals, docs;
        uint64_t bytes;                /* document bytes served (attachments available + CRI) */
        uint64_t worklist_max;         /* bytes of the largest worklist */
        uint64_t worklist_first;       /* bytes of the first service's worklist */
        struct proc_cost one_wl;       /* no-op of the first worklist alone */
        struct proc_cost sync, noop;
        struct calls sync_calls, noop_calls;
        char summary[2][512];          /* ersd's own summary lines */
        bool have_limits;
        double fetch_wall, fetch_cpu, write_wall, write_cpu;
        uint64_t fetch_bytes;
};

static const char *build = "build";
static char workdir[1024];
static char pki[1100];     /* the bench's CA and the mock's certificate: https as in production */
static char ca_file[1200]; /* the CA ersd and the fetch limit verify the mock with */

static double now(void) {
        struct timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

static double self_cpu(void) {
        struct rusage ru;
        getrusage(RUSAGE_SELF, &ru);
        return (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 + (double) ru.ru_stime.tv_sec +
               (double) ru.ru_stime.tv_usec / 1e6;
}

static void die(const char *what) {
        fprintf(stderr, "bench: %s\n", what);
        exit(1);
}

/* Runs build/ersd -c CONFIG MODE, output to WORKDIR/last.out (stdout) and
 * WORKDIR/ersd.log (stderr, appended); its cost from wait4(). */
static struct proc_cost spawn_ersd(const char *config, const char *mode) {
        struct proc_cost c = { 0 };
        char ersd[600], out[1100], log[1100];
        struct rusage ru;
        int status = 0;

        snprintf(ersd, sizeof ersd, "%s/ersd", build);
        snprintf(out, sizeof out, "%s/last.out", workdir);
        snprintf(log, sizeof log, "%s/ersd.log", workdir);
        sync(); /* the previous phase's dirty pages are not this one's cost */
        double t0 = now();
        pid_t pid = fork();
        if (pid < 0)
                die("fork failed");
        if (pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                int o = open(out, O_WRONLY | O_CREAT | O_TRUNC, 0600);
                int l = open(log, O_WRONLY | O_CREAT | O_APPEND, 0600);
                if (o < 0 || l < 0)
                        _exit(127);
                dup2(o, STDOUT_FILENO);
                dup2(l, STDERR_FILENO);
                execl(ersd, ersd, "-c", config, mode, (char *) NULL);
                _exit(127);
        }
        if (wait4(pid, &status, 0, &ru) < 0)
                die("wait4 failed");
        c.wall = now() - t0;
        c.cpu = (double) ru.ru_utime.tv_sec + (double) ru.ru_utime.tv_usec / 1e6 + (double) ru.ru_stime.tv_sec +
                (double) ru.ru_stime.tv_usec / 1e6;
        c.maxrss_kib = ru.ru_maxrss;
        c.status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
        return c;
}

/*
 * ersd is started by a small spawner process forked before the bench holds
 * anything large: a child's ru_maxrss starts at the RSS of the process it was
 * forked from (Linux keeps the pre-exec high-water mark), so forking ersd from
 * the bench itself, holding a 10k-referral manifest, would report the bench's
 * memory as ersd's.
 */
struct spawn_req {
        char config[1200];
        char mode[16];
};
static int spawn_to = -1, spawn_from = -1;

static void spawner_start(void) {
        int req[2], rep[2];
        if (pipe2(req, O_CLOEXEC) < 0 || pipe2(rep, O_CLOEXEC) < 0)
                die("pipe failed");
        pid_t pid = fork();
        if (pid < 0)
                die("fork failed");
        if (pid == 0) {
                struct spawn_req q;
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                close(req[1]);
                close(rep[0]);
                while (read(req[0], &q, sizeof q) == (ssize_t) sizeof q) {
                        struct proc_cost c = spawn_ersd(q.config, q.mode);
                        if (write(rep[1], &c, sizeof c) != (ssize_t) sizeof c)
                                _exit(1);
                }
                _exit(0); /* the bench closed its end */
        }
        close(req[0]);
        close(rep[1]);
        spawn_to = req[1];
        spawn_from = rep[0];
}

/* Runs ersd through the spawner; the last line ersd printed goes to ret_line. */
static struct proc_cost measure_ersd(const char *config, const char *mode, char *ret_line, size_t line_size) {
        struct spawn_req q;
        struct proc_cost c;
        char out[1100];

        memset(&q, 0, sizeof q);
        snprintf(q.config, sizeof q.config, "%s", config);
        snprintf(q.mode, sizeof q.mode, "%s", mode);
        if (write(spawn_to, &q, sizeof q) != (ssize_t) sizeof q || read(spawn_from, &c, sizeof c) != (ssize_t) sizeof c)
                die("the spawner went away");
        if (ret_line) {
                snprintf(out, sizeof out, "%s/last.out", workdir);
                FILE *f = fopen(out, "r");
                char line[500];
                ret_line[0] = '\0';
                while (f && fgets(line, sizeof line, f)) {
                        line[strcspn(line, "\n")] = '\0';
                        snprintf(ret_line, line_size, "%s", line);
                }
                if (f)
                        fclose(f);
        }
        return c;
}

static const char *service_id(size_t s, char buf[16]) {
        snprintf(buf, 16, "%zu", 31001 + s);
        return buf;
}

/* An ersd configuration: one worklist per service (empty: one worklist of a service the mock does not have). */
static void write_config(const char *path, const struct mock *m, const char *conn, const char *state,
                         const struct bench_engine *en, size_t services, bool empty, long per_second) {
        FILE *f = fopen(path, "w");
        char id[16];
        if (!f)
                die("cannot write a configuration");
        /* NO_RATE_LIMIT is beyond e-RS's limits (allowed on loopback only): the bench measures ersd,
         * not the 10/s; the rate-limit section passes the production value. */
        fprintf(f, "ers: { base_url = \"%s\"; ca_file = \"%s\"; auth = \"none\"; max_attachment_mib = 256; "
                   "worklist_calls_per_day = 100000; max_requests_per_second = %ld; parallel_fetches = %d; };\n"
                   "worklists = (\n",
                m->base_url, ca_file, per_second, FETCHERS);
        for (size_t s = 0; s < services; s++)
                fprintf(f, "  { name = \"bench-%zu\"; list_type = \"REFERRALS_FOR_REVIEW\"; service = \"%s\"; }%s\n",
                        s, empty ? "99999" : service_id(s, id), s + 1 < services ? "," : "");
        fprintf(f, ");\ndatabase: { connection = \"%s\"; adapter = \"%s\"; };\n"
                   "state_dir = \"%s\";\nlog_level = \"notice\";\n",
                conn, en->name, state);
        fclose(f);
}

static long jint(json_object *o, const char *key) {
        json_object *v;
        return json_object_object_get_ex(o, key, &v) ? (long) json_object_get_int64(v) : 0;
}

static struct calls read_calls(const struct mock *m) {
        struct calls c = { 0 };
        json_object *s = mock_get(m, "/_mock/stats"), *st;
        if (!s)
                die("cannot read the mock's stats");
        c.a008 = jint(s, "A008");
        c.a005 = jint(s, "A005");
        c.a042 = jint(s, "A042");
        c.a007 = jint(s, "A007");
        c.store = jint(s, "store");
        if (json_object_object_get_ex(s, "by_status", &st))
                c.s429 = jint(st, "429");
        json_object_put(s);
        return c;
}

/* ---- the fetch limit ------------------------------------------------------ */

struct sink {
        uint64_t bytes;
        char location[1024];
};

static size_t sink_body(char *p, size_t size, size_t n, void *ud) {
        (void) p;
        ((struct sink *) ud)->bytes += size * n;
        return size * n;
}

static size_t sink_header(char *p, size_t size, size_t n, void *ud) {
        struct sink *s = ud;
        size_t len = size * n;
        if (len > 10 && strncasecmp(p, "Location:", 9) == 0) {
                size_t from = 9;
                while (from < len && p[from] == ' ')
                        from++;
                size_t to = len;
                while (to > from && (p[to - 1] == '\r' || p[to - 1] == '\n'))
                        to--;
                snprintf(s->location, sizeof s->location, "%.*s", (int) (to - from), p + from);
        }
        return len;
}

static void get(CURL *h, const char *url, const char *post_body, struct curl_slist *hdr, struct sink *s) {
        s->location[0] = '\0';
        curl_easy_setopt(h, CURLOPT_URL, url);
        curl_easy_setopt(h, CURLOPT_CAINFO, ca_file); /* verified, as ersd does */
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hdr);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, sink_body);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, s);
        curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, sink_header);
        curl_easy_setopt(h, CURLOPT_HEADERDATA, s);
        if (post_body) {
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, post_body);
                curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE, (long) strlen(post_body));
        } else
                curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
        if (curl_easy_perform(h) != CURLE_OK)
                die("a raw fetch failed");
}

static bool available(json_object *att) {
        const char *a = jstr(att, "availability");
        return a && strcmp(a, "AVAILABLE") == 0;
}

/* One fetcher of the fetch limit: referrals taken in turn from a shared
 * counter, on connections of its own, as each ersd fetching thread does. */
struct raw_fetcher {
        pthread_t thread;
        const struct mock *m;   /* borrowed */
        json_object *refs;      /* borrowed */
        atomic_size_t *next;    /* borrowed: the next referral to take */
        struct sink s;          /* bytes this fetcher received */
};

static void *raw_fetch(void *arg) {
        struct raw_fetcher *f = arg;
        CURL *api = curl_easy_init(), *store = curl_easy_init();
        struct curl_slist *json = curl_slist_append(NULL, "Accept: application/fhir+json");
        struct curl_slist *any = curl_slist_append(NULL, "Accept: */*");
        char url[1200];
        size_t i;

        if (!api || !store || !json || !any)
                die("out of memory");
        while ((i = atomic_fetch_add(f->next, 1)) < json_object_array_length(f->refs)) {
                json_object *r = json_object_array_get_idx(f->refs, i), *atts;
                const char *ubrn = jstr(r, "ubrn");
                snprintf(url, sizeof url, "%s/FHIR/STU3/ReferralRequest/%s", f->m->base_url, ubrn);
                get(api, url, NULL, json, &f->s);
                if (json_object_object_get_ex(r, "attachments", &atts))
                        for (size_t k = 0; k < json_object_array_length(atts); k++) {
                                json_object *a = json_object_array_get_idx(atts, k);
                                if (!available(a))
                                        continue;
                                snprintf(url, sizeof url, "%s/FHIR/R4/Binary/%s", f->m->base_url, jstr(a, "binary_id"));
                                get(api, url, NULL, any, &f->s);
                                if (f->s.location[0]) {
                                        snprintf(url, sizeof url, "%s", f->s.location);
                                        get(store, url, NULL, NULL, &f->s);
                                }
                        }
                snprintf(url, sizeof url, "%s/FHIR/STU3/ReferralRequest/%s/$ers.generateCRI", f->m->base_url, ubrn);
                get(api, url, "", any, &f->s);
        }
        curl_slist_free_all(json);
        curl_slist_free_all(any);
        curl_easy_cleanup(api);
        curl_easy_cleanup(store);
        return NULL;
}

static void fetch_limit(const struct mock *m, json_object *manifest, size_t services, struct result *res) {
        CURL *api = curl_easy_init();
        struct curl_slist *post = NULL;
        struct sink s = { 0 };
        struct raw_fetcher f[FETCHERS];
        atomic_size_t next = 0;
        char url[1200], id[16], body[1024];
        json_object *refs;

        post = curl_slist_append(curl_slist_append(NULL, "Accept: application/fhir+json"),
                                 "Content-Type: application/fhir+json");
        if (!api || !post)
                die("out of memory");
        if (!json_object_object_get_ex(manifest, "referrals", &refs))
                die("manifest without referrals");
        sync();
        double t0 = now(), c0 = self_cpu();
        for (size_t i = 0; i < services; i++) {
                uint64_t before = s.bytes;
                snprintf(url, sizeof url, "%s/FHIR/STU3/ReferralRequest/$ers.fetchworklist", m->base_url);
                snprintf(body, sizeof body,
                         "{\"resourceType\":\"Parameters\",\"parameter\":[{\"name\":\"listType\","
                         "\"valueCodeableConcept\":{\"coding\":[{\"system\":\"https://fhir.nhs.uk/STU3/CodeSystem/"
                         "eRS-ReferralListSelector-1\",\"code\":\"REFERRALS_FOR_REVIEW\"}]}},{\"name\":\"service\","
                         "\"valueIdentifier\":{\"system\":\"http://fhir.nhs.net/Id/ers-service\",\"value\":\"%s\"}}]}",
                         service_id(i, id));
                get(api, url, body, post, &s);
                if (s.bytes - before > res->worklist_max)
                        res->worklist_max = s.bytes - before;
                if (i == 0)
                        res->worklist_first = s.bytes - before;
        }
        for (size_t k = 0; k < FETCHERS; k++) {
                f[k] = (struct raw_fetcher){ .m = m, .refs = refs, .next = &next };
                if (pthread_create(&f[k].thread, NULL, raw_fetch, &f[k]) != 0)
                        die("cannot start a fetch thread");
        }
        for (size_t k = 0; k < FETCHERS; k++) {
                pthread_join(f[k].thread, NULL);
                s.bytes += f[k].s.bytes;
        }
        res->fetch_wall = now() - t0;
        res->fetch_cpu = self_cpu() - c0;
        res->fetch_bytes = s.bytes;
        res->have_limits = true;
        curl_slist_free_all(post);
        curl_easy_cleanup(api);
}

/* ---- the write limit ------------------------------------------------------ */

static void odbc_check(SQLRETURN rc, SQLSMALLINT type, SQLHANDLE h, const char *what) {
        SQLCHAR state[6] = "", msg[512] = "";
        SQLINTEGER native = 0;
        SQLSMALLINT len;
        if (SQL_SUCCEEDED(rc))
                return;
        SQLGetDiagRec(type, h, 1, state, &native, msg, sizeof msg, &len);
        fprintf(stderr, "bench: ODBC %s: %s %s\n", what, state, msg);
        exit(1);
}

static SQLHSTMT prepare(SQLHDBC dbc, const char *sql) {
        SQLHSTMT st;
        odbc_check(SQLAllocHandle(SQL_HANDLE_STMT, dbc, &st), SQL_HANDLE_DBC, dbc, "statement");
        odbc_check(SQLPrepare(st, (SQLCHAR *) sql, SQL_NTS), SQL_HANDLE_STMT, st, sql);
        return st;
}

static void bind_text(SQLHSTMT st, int no, const char *s, SQLLEN *ind) {
        *ind = s ? SQL_NTS : SQL_NULL_DATA;
        odbc_check(SQLBindParameter(st, (SQLUSMALLINT) no, SQL_PARAM_INPUT, SQL_C_CHAR, SQL_VARCHAR, 255, 0,
                                    (SQLPOINTER) (s ? s : ""), 0, ind),
                   SQL_HANDLE_STMT, st, "bind text");
}

static void bind_int(SQLHSTMT st, int no, const long long *v) {
        odbc_check(SQLBindParameter(st, (SQLUSMALLINT) no, SQL_PARAM_INPUT, SQL_C_SBIGINT, SQL_BIGINT, 0, 0,
                                    (SQLPOINTER) v, 0, NULL),
                   SQL_HANDLE_STMT, st, "bind integer");
}

static void exec(SQLHSTMT st, const char *what) {
        odbc_check(SQLExecute(st), SQL_HANDLE_STMT, st, what);
        SQLFreeStmt(st, SQL_CLOSE);
        SQLFreeStmt(st, SQL_RESET_PARAMS);
}

static void write_limit(const struct bench_engine *en, const char *pas, json_object *manifest, struct result *res) {
        SQLHENV env;
        SQLHDBC dbc;
        char conn[1400];
        unsigned char *part = malloc(PART_MAX);
        json_object *refs;
        SQLLEN ind[12];

        if (!part)
                die("out of memory");
        for (size_t i = 0; i < PART_MAX; i++)
                part[i] = (unsigned char) (i * 2654435761u >> 13);
        snprintf(conn, sizeof conn, "%s%s", pas, en->extra);
        SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &env);
        SQLSetEnvAttr(env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER) SQL_OV_ODBC3, 0);
        SQLAllocHandle(SQL_HANDLE_DBC, env, &dbc);
        odbc_check(SQLDriverConnect(dbc, NULL, (SQLCHAR *) conn, SQL_NTS, NULL, 0, NULL, SQL_DRIVER_NOPROMPT),
                   SQL_HANDLE_DBC, dbc, "connect");
        for (size_t i = 0; en->session[i]; i++) {
                SQLHSTMT st = prepare(dbc, en->session[i]);
                exec(st, en->session[i]);
                SQLFreeHandle(SQL_HANDLE_STMT, st);
        }
        SQLSetConnectAttr(dbc, SQL_ATTR_AUTOCOMMIT, (SQLPOINTER) SQL_AUTOCOMMIT_OFF, 0);
        SQLHSTMT ins_ref = prepare(dbc, "INSERT INTO ers_referral (ubrn, version, nhs_number, nhs_number_valid, "
                                        "priority, state, specialty, specialty_display, service_id, request_id, "
                                        "first_synced_at, last_synced_at) VALUES (?,?,?,?,?,?,?,?,?,?,?,?)");
        SQLHSTMT ins_doc = prepare(dbc, "INSERT INTO ers_document (document_id, ubrn, source_ubrn, kind, "
                                        "attachment_id, revision, source_version, title, content_type, "
                                        "fetch_status, size_bytes, sha256, part_count, stored_at, attachment_key) "
                                        "VALUES (?,?,?,?,?,1,?,?,?,'FETCHED',?,?,?,?,?)");
        SQLHSTMT ins_part = prepare(dbc, "INSERT INTO ers_document_part (document_id, seq, data) VALUES (?,?,?)");
        SQLHSTMT ins_ledger = prepare(dbc, "INSERT INTO ers_ledger (ubrn, version, complete, worklist, "
                                           "correlation_id, synced_at) VALUES (?,?,1,'bench',?,?)");
        const char *at = "2026-11-23T20:00:00Z";
        const char *sha = "0000000000000000000000000000000000000000000000000000000000000000";

        if (!json_object_object_get_ex(manifest, "referrals", &refs))
                die("manifest without referrals");
        sync();
        double t0 = now(), c0 = self_cpu();
        long long doc_no = 0;
        for (size_t i = 0; i < json_object_array_length(refs); i++) {
                json_object *r = json_object_array_get_idx(refs, i), *atts, *cri;
                const char *ubrn = jstr(r, "ubrn");
                long long version = jint(r, "version"), valid = 1;
                bind_text(ins_ref, 1, ubrn, &ind[0]);
                bind_int(ins_ref, 2, &version);
                bind_text(ins_ref, 3, jstr(r, "nhs_number"), &ind[1]);
                bind_int(ins_ref, 4, &valid);
                bind_text(ins_ref, 5, jstr(r, "priority"), &ind[2]);
                bind_text(ins_ref, 6, jstr(r, "state"), &ind[3]);
                bind_text(ins_ref, 7, jstr(r, "specialty"), &ind[4]);
                bind_text(ins_ref, 8, jstr(r, "specialty_display"), &ind[5]);
                bind_text(ins_ref, 9, jstr(r, "service_id"), &ind[6]);
                bind_text(ins_ref, 10, jstr(r, "request_id"), &ind[7]);
                bind_text(ins_ref, 11, at, &ind[8]);
                bind_text(ins_ref, 12, at, &ind[9]);
                exec(ins_ref, "insert referral");

                /* the available attachments, then the CRI */
                size_t n_att = json_object_object_get_ex(r, "attachments", &atts) ? json_object_array_length(atts) : 0;
                for (size_t k = 0; k <= n_att; k++) {
                        json_object *a = k < n_att ? json_object_array_get_idx(atts, k) : NULL;
                        long long size;
                        char docid[64], attid[40];
                        if (a && !available(a))
                                continue;
                        if (a) {
                                size = jint(a, "size");
                                snprintf(attid, sizeof attid, "%s", jstr(a, "id"));
                        } else {
                                size = json_object_object_get_ex(r, "cri", &cri) ? jint(cri, "size") : 1000;
                                snprintf(attid, sizeof attid, "CRI-v%lld", version);
                        }
                        snprintf(docid, sizeof docid, "00000000-0000-4000-8000-%012lld", ++doc_no);
                        long long parts = (size + PART_MAX - 1) / PART_MAX;
                        bind_text(ins_doc, 1, docid, &ind[0]);
                        bind_text(ins_doc, 2, ubrn, &ind[1]);
                        bind_text(ins_doc, 3, ubrn, &ind[2]);
                        bind_text(ins_doc, 4, a ? "ATTACHMENT" : "CRI", &ind[3]);
                        bind_text(ins_doc, 5, attid, &ind[4]);
                        bind_int(ins_doc, 6, &version);
                        bind_text(ins_doc, 7, a ? jstr(a, "title") : "Clinical Referral Information", &ind[5]);
                        bind_text(ins_doc, 8, a ? jstr(a, "content_type") : "application/pdf", &ind[6]);
                        bind_int(ins_doc, 9, &size);
                        bind_text(ins_doc, 10, sha, &ind[7]);
                        bind_int(ins_doc, 11, &parts);
                        bind_text(ins_doc, 12, at, &ind[8]);
                        char key[DOCUMENT_KEY_HEX + 1];
                        if (document_key(attid, 0, key) < 0)
                                die("attachment key");
                        bind_text(ins_doc, 13, key, &ind[10]);
                        exec(ins_doc, "insert document");
                        for (long long seq = 1; seq <= parts; seq++) {
                                long long off = (seq - 1) * PART_MAX;
                                SQLLEN len = size - off < PART_MAX ? (SQLLEN) (size - off) : PART_MAX;
                                bind_text(ins_part, 1, docid, &ind[0]);
                                bind_int(ins_part, 2, &seq);
                                odbc_check(SQLBindParameter(ins_part, 3, SQL_PARAM_INPUT, SQL_C_BINARY,
                                                            SQL_LONGVARBINARY, (SQLULEN) len, 0, part, len, &len),
                                           SQL_HANDLE_STMT, ins_part, "bind part");
                                exec(ins_part, "insert part");
                        }
                }
                bind_text(ins_ledger, 1, ubrn, &ind[0]);
                bind_int(ins_ledger, 2, &version);
                bind_text(ins_ledger, 3, "00000000-0000-4000-8000-000000000000", &ind[1]);
                bind_text(ins_ledger, 4, at, &ind[2]);
                exec(ins_ledger, "insert ledger");
                odbc_check(SQLEndTran(SQL_HANDLE_DBC, dbc, SQL_COMMIT), SQL_HANDLE_DBC, dbc, "commit");
        }
        res->write_wall = now() - t0;
        res->write_cpu = self_cpu() - c0;
        SQLFreeHandle(SQL_HANDLE_STMT, ins_ref);
        SQLFreeHandle(SQL_HANDLE_STMT, ins_doc);
        SQLFreeHandle(SQL_HANDLE_STMT, ins_part);
        SQLFreeHandle(SQL_HANDLE_STMT, ins_ledger);
        SQLDisconnect(dbc);
        SQLFreeHandle(SQL_HANDLE_DBC, dbc);
        SQLFreeHandle(SQL_HANDLE_ENV, env);
        free(part);
}

/* ---- one dataset on one engine -------------------------------------------- */

static void remove_db(const char *db) {
        char p[1300];
        unlink(db);
        snprintf(p, sizeof p, "%s-wal", db);
        unlink(p);
        snprintf(p, sizeof p, "%s-shm", db);
        unlink(p);
        snprintf(p, sizeof p, "%s-journal", db);
        unlink(p);
}

/* A new, empty PAS for one run: a file for SQLite (removed first), a new database on
 * the engine's server otherwise.  Its connection string goes into conn. */
static void new_pas(const struct bench_engine *en, size_t e, const char *dir, const char *name, char *conn, size_t n) {
        char path[1200];

        if (en->kind == ENGINE_SQLITE) {
                snprintf(path, sizeof path, "%s/%s.db", dir, name);
                remove_db(path);
                snprintf(conn, n, "Driver=%s;Database=%s", en->driver, path);
        } else if (engine_new_database(&servers[e], conn, n) < 0) {
                die("cannot make a database on the engine's server");
        }
}

static void init_db(const char *config) {
        struct proc_cost c = measure_ersd(config, "--init-db", NULL, 0);
        if (c.status != 0)
                die("ersd --init-db failed (see the bench directory's ersd.log)");
}

static void count_manifest(json_object *manifest, struct result *res) {
        json_object *refs, *atts, *cri, *w;
        if (!json_object_object_get_ex(manifest, "referrals", &refs))
                die("manifest without referrals");
        for (size_t i = 0; i < json_object_array_length(refs); i++) {
                json_object *r = json_object_array_get_idx(refs, i);
                if (json_object_object_get_ex(r, "worklisted", &w) && json_object_get_boolean(w))
                        res->referrals++;
                if (json_object_object_get_ex(r, "attachments", &atts))
                        for (size_t k = 0; k < json_object_array_length(atts); k++) {
                                json_object *a = json_object_array_get_idx(atts, k);
                                if (available(a)) {
                                        res->docs++;
                                        res->bytes += (uint64_t) jint(a, "size");
                                }
                        }
                if (json_object_object_get_ex(r, "cri", &cri)) {
                        res->docs++;
                        res->bytes += (uint64_t) jint(cri, "size");
                }
        }
}

/* ersd's state directory (its spool) for a run: beside the run's database, or
 * under BENCH_STATE_DIR (e.g. /dev/shm) to keep the spool off the database's
 * disk, as when the PAS's database is on a server of its own. */
static void state_dir_for(const char *dir, const char *engine, size_t no, char *ret, size_t size) {
        const char *root = getenv("BENCH_STATE_DIR");

        if (root && *root)
                snprintf(ret, size, "%s/ersd-bench-%s-%zu", root, engine, no);
        else
                snprintf(ret, size, "%s/state", dir);
}

static void run_dataset(const struct bench_engine *en, size_t e, size_t no, const struct dataset *ds,
                        struct result *res, long *baseline_kib) {
        char n[24], big[24], tail[24], ids[64][16], dir[1100], config[1200], db[1400], state[1200], crt[1200],
                key[1200];
        const char *args[40 + 128];
        size_t k = 0;
        struct mock m = { 0 };

        memset(res, 0, sizeof *res);
        res->ds = ds;
        if (ds->referrals > en->max_referrals)
                return;
        res->ran = true;
        res->services = (ds->referrals + PER_SERVICE - 1) / PER_SERVICE;
        snprintf(n, sizeof n, "%zu", ds->referrals);
        snprintf(big, sizeof big, "%" PRIu64, ds->big);
        snprintf(tail, sizeof tail, "%" PRIu64, ds->tail_max);
        snprintf(crt, sizeof crt, "%s/server.crt", pki);
        snprintf(key, sizeof key, "%s/server.key", pki);
        const char *fixed[] = { "--referrals", n,      "--attachments", "2",   "--padding",    PADDING,
                                "--big-attachment", big, "--tail-every", "100", "--tail-max", tail,
                                "--tls-cert", crt,     "--tls-key",     key };
        for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++)
                args[k++] = fixed[i];
        for (size_t s = 0; s < res->services && s < 64; s++) {
                args[k++] = "--service";
                args[k++] = service_id(s, ids[s]);
        }
        args[k] = NULL;
        if (mock_start(&m, args) < 0)
                die("the mock e-RS did not start");
        mock_use_https(&m, ca_file);

        json_object *manifest = mock_get(&m, "/_mock/manifest?hashes=0");
        if (!manifest)
                die("cannot read the mock's manifest");
        count_manifest(manifest, res);

        snprintf(dir, sizeof dir, "%s/%s-%zu", workdir, en->name, no);
        mkdir(dir, 0700);
        state_dir_for(dir, en->name, no, state, sizeof state);
        snprintf(config, sizeof config, "%s/ersd.conf", dir);

        if (*baseline_kib == 0) {
                /* ersd's own footprint: one worklist that answers empty */
                new_pas(en, e, dir, "empty", db, sizeof db);
                write_config(config, &m, db, state, en, 1, true, NO_RATE_LIMIT);
                init_db(config);
                *baseline_kib = measure_ersd(config, "--once", NULL, 0).maxrss_kib;
        }

        new_pas(en, e, dir, "pas", db, sizeof db);
        write_config(config, &m, db, state, en, res->services, false, NO_RATE_LIMIT);
        init_db(config);
        fprintf(stderr, "bench: %s, %s: ersd --once ...\n", en->name, ds->label);
        mock_post(&m, "/_mock/stats/reset");
        res->sync = measure_ersd(config, "--once", res->summary[0], sizeof res->summary[0]);
        res->sync_calls = read_calls(&m);
        mock_post(&m, "/_mock/stats/reset");
        res->noop = measure_ersd(config, "--once", res->summary[1], sizeof res->summary[1]);
        res->noop_calls = read_calls(&m);
        /* the RSS of one worklist's DOM: the first worklist alone, nothing to sync */
        write_config(config, &m, db, state, en, 1, false, NO_RATE_LIMIT);
        res->one_wl = measure_ersd(config, "--once", NULL, 0);

        if (ds->limits) {
                fprintf(stderr, "bench: %s, %s: fetch limit ...\n", en->name, ds->label);
                fetch_limit(&m, manifest, res->services, res);
                fprintf(stderr, "bench: %s, %s: write limit ...\n", en->name, ds->label);
                new_pas(en, e, dir, "raw", db, sizeof db);
                write_config(config, &m, db, state, en, res->services, false, NO_RATE_LIMIT);
                init_db(config);
                write_limit(en, db, manifest, res);
        }
        json_object_put(manifest);
        mock_stop(&m);
}

/* ---- under e-RS's rate limit ------------------------------------------------ */

/*
 * ersd at its production rate (max_requests_per_second = 10) against the mock
 * enforcing e-RS's 10 requests/s (a 429 for the 11th within a second).  The
 * figures come from the mock's record of arrivals, not from ersd: the API
 * requests (every call but the object store's, which e-RS does not count),
 * the span from the first to the last, and the 429s.
 */
struct rate_result {
        bool ran;
        size_t referrals;
        long requests;     /* API requests that reached the mock, 429s included */
        long store;        /* object-store requests (not rate-limited) */
        long s429;         /* API answers with status 429 */
        long limited;      /* of those, by the rate limit (the mock's rate_limited) */
        long busiest;      /* most API arrivals within any one second */
        double span;       /* seconds from the first API arrival to the last */
        struct proc_cost sync;
        char summary[512]; /* ersd's own summary line */
};

static int cmp_double(const void *a, const void *b) {
        double x = *(const double *) a, y = *(const double *) b;
        return (x > y) - (x < y);
}

static void read_arrivals(const struct mock *m, struct rate_result *rr) {
        json_object *o = mock_get(m, "/_mock/calls"), *list, *v;
        if (!o || !json_object_object_get_ex(o, "calls", &list))
                die("cannot read the mock's call record");
        size_t n = json_object_array_length(list);
        double *t = malloc((n ? n : 1) * sizeof *t); /* owned here: the API arrivals, sorted */
        if (!t)
                die("out of memory");
        size_t k = 0;
        for (size_t i = 0; i < n; i++) {
                json_object *c = json_object_array_get_idx(list, i);
                const char *endpoint = jstr(c, "endpoint");
                if (endpoint && strcmp(endpoint, "store") == 0) {
                        rr->store++;
                        continue;
                }
                t[k++] = json_object_object_get_ex(c, "t", &v) ? json_object_get_double(v) : 0.0;
                if (jint(c, "status") == 429)
                        rr->s429++;
        }
        rr->limited = jint(o, "rate_limited");
        json_object_put(o);
        qsort(t, k, sizeof *t, cmp_double);
        rr->requests = (long) k;
        rr->span = k > 1 ? t[k - 1] - t[0] : 0.0;
        for (size_t i = 0, j = 0; i < k; i++) { /* window [t[i], t[i] + 1 s) */
                while (j < k && t[j] < t[i] + 1.0)
                        j++;
                if ((long) (j - i) > rr->busiest)
                        rr->busiest = (long) (j - i);
        }
        free(t);
}

static void run_rate_limit(size_t referrals, struct rate_result *rr) {
        const struct bench_engine *en = &ENGINES[0]; /* SQLite: the rate, not the engine, is the ceiling */
        char n[24], tail[24], dir[1100], config[1200], db[1400], state[1200], crt[1200], key[1200], path[64], id[16];
        struct mock m = { 0 };

        memset(rr, 0, sizeof *rr);
        rr->referrals = referrals;
        snprintf(n, sizeof n, "%zu", referrals);
        snprintf(tail, sizeof tail, "%u", 20u << 20);
        snprintf(crt, sizeof crt, "%s/server.crt", pki);
        snprintf(key, sizeof key, "%s/server.key", pki);
        const char *args[] = { "--referrals", n,        "--attachments", "2",   "--padding",  PADDING,
                               "--big-attachment", "0", "--tail-every",  "100", "--tail-max", tail,
                               "--tls-cert", crt,       "--tls-key",     key,   "--service",  service_id(0, id),
                               NULL };
        if (mock_start(&m, args) < 0)
                die("the mock e-RS did not start");
        mock_use_https(&m, ca_file);
        snprintf(dir, sizeof dir, "%s/%s-rate", workdir, en->name);
        mkdir(dir, 0700);
        snprintf(state, sizeof state, "%s/state", dir);
        snprintf(config, sizeof config, "%s/ersd.conf", dir);
        new_pas(en, 0, dir, "pas", db, sizeof db);
        write_config(config, &m, db, state, en, 1, false, ERS_RATE_LIMIT);
        init_db(config);
        snprintf(path, sizeof path, "/_mock/ratelimit?per_second=%d", ERS_RATE_LIMIT);
        if (mock_post(&m, path) != 200 || mock_post(&m, "/_mock/calls/reset") != 200)
                die("the mock refused its rate limit");
        fprintf(stderr, "bench: %s, %zu referrals at %d requests/s: ersd --once ...\n", en->name, referrals,
                ERS_RATE_LIMIT);
        rr->sync = measure_ersd(config, "--once", rr->summary, sizeof rr->summary);
        read_arrivals(&m, rr);
        rr->ran = true;
        mock_stop(&m);
}

/* ---- printing ------------------------------------------------------------- */

static double mb(uint64_t bytes) {
        return (double) bytes / 1e6;
}

static void print_engine(const struct bench_engine *en, const struct result *res, size_t n, long baseline_kib) {
        printf("\n== engine %s (ODBC driver %s)\n", en->name, en->driver);
        printf("%-18s %6s %6s %8s %4s | %7s %7s %8s %7s %8s %4s\n", "ersd --once", "refs", "docs", "MB", "wl",
               "wall s", "CPU s", "refs/s", "MB/s", "RSS MiB", "exit");
        for (size_t i = 0; i < n; i++) {
                const struct result *r = &res[i];
                if (!r->ran) {
                        printf("%-18s not run on %s (over its %zu referrals here)\n", r->ds->label, en->name,
                               en->max_referrals);
                        continue;
                }
                printf("%-18s %6zu %6zu %8.0f %4zu | %7.2f %7.2f %8.1f %7.1f %8.1f %4d\n", r->ds->label, r->referrals,
                       r->docs, mb(r->bytes), r->services, r->sync.wall, r->sync.cpu,
                       (double) r->referrals / r->sync.wall, mb(r->bytes) / r->sync.wall,
                       (double) r->sync.maxrss_kib / 1024.0, r->sync.status);
        }
        printf("  e-RS calls of those runs (A008 A005 A042 A007 store, 429s):\n");
        for (size_t i = 0; i < n; i++) {
                const struct calls *c = &res[i].sync_calls;
                if (!res[i].ran)
                        continue;
                printf("  %-18s %ld %ld %ld %ld %ld, %ld\n", res[i].ds->label, c->a008, c->a005, c->a042, c->a007,
                       c->store, c->s429);
                printf("  %-18s %s\n", "", res[i].summary[0]);
        }

        printf("\n%-18s %6s | %7s %7s %8s | %5s %5s %5s %5s %5s %4s\n", "no-op (again)", "refs", "wall s",
               "CPU s", "RSS MiB", "A008", "A005", "A042", "A007", "store", "exit");
        for (size_t i = 0; i < n; i++) {
                const struct result *r = &res[i];
                const struct calls *c = &r->noop_calls;
                if (!r->ran)
                        continue;
                printf("%-18s %6zu | %7.2f %7.2f %8.1f | %5ld %5ld %5ld %5ld %5ld %4d\n", r->ds->label,
                       r->referrals, r->noop.wall, r->noop.cpu, (double) r->noop.maxrss_kib / 1024.0, c->a008,
                       c->a005, c->a042, c->a007, c->store, r->noop.status);
                printf("  %-16s (one A008 per worklist = %zu) %s\n", "", r->services, r->summary[1]);
        }

        printf("\n%-18s | %-34s | %-30s\n", "limits", "fetch: same URLs, 4 threads", "write: same rows+parts, ODBC");
        printf("%-18s | %7s %7s %8s %8s | %7s %7s %7s %6s\n", "", "wall s", "CPU s", "refs/s", "MB/s", "wall s",
               "CPU s", "refs/s", "MB/s");
        for (size_t i = 0; i < n; i++) {
                const struct result *r = &res[i];
                if (!r->have_limits)
                        continue;
                printf("%-18s | %7.2f %7.2f %8.1f %8.1f | %7.2f %7.2f %7.1f %6.1f\n", r->ds->label, r->fetch_wall,
                       r->fetch_cpu, (double) r->referrals / r->fetch_wall, mb(r->fetch_bytes) / r->fetch_wall,
                       r->write_wall, r->write_cpu, (double) r->referrals / r->write_wall,
                       mb(r->bytes) / r->write_wall);
        }

        /* growth: datasets 0 → 1 differ in the big file only, 1 → 2 in the number of referrals */
        const struct result *a = &res[0], *b = &res[1], *c = &res[2];
        printf("\ngrowth\n");
        printf("  big file %s -> %s: wall %.2f -> %.2f s, peak RSS %.1f -> %.1f MiB\n", a->ds->label, b->ds->label,
               a->sync.wall, b->sync.wall, (double) a->sync.maxrss_kib / 1024.0, (double) b->sync.maxrss_kib / 1024.0);
        if (!c->ran)
                goto memory;
        printf("  referrals %zu -> %zu (x%.1f): wall %.2f -> %.2f s (x%.2f), CPU %.2f -> %.2f s (x%.2f), "
               "peak RSS %.1f -> %.1f MiB; per referral %.2f -> %.2f ms wall\n",
               b->referrals, c->referrals, (double) c->referrals / (double) b->referrals, b->sync.wall, c->sync.wall,
               c->sync.wall / b->sync.wall, b->sync.cpu, c->sync.cpu, c->sync.cpu / b->sync.cpu,
               (double) b->sync.maxrss_kib / 1024.0, (double) c->sync.maxrss_kib / 1024.0,
               1e3 * b->sync.wall / (double) b->referrals, 1e3 * c->sync.wall / (double) c->referrals);
        printf("  no-op %zu -> %zu: CPU %.3f -> %.3f s (x%.2f)\n", b->referrals, c->referrals, b->noop.cpu, c->noop.cpu,
               c->noop.cpu / b->noop.cpu);

memory:
        printf("\nworklist memory (parsed as it streams, one entry at a time)\n");
        printf("  ersd with an empty worklist: peak RSS %.1f MiB\n", (double) baseline_kib / 1024.0);
        for (size_t i = 1; i < n; i++) {
                const struct result *r = &res[i];
                if (!r->have_limits || r->worklist_max == 0)
                        continue;
                double one = ((double) r->one_wl.maxrss_kib - (double) baseline_kib) * 1024.0;
                printf("  %-18s one worklist of %.2f MB alone (no-op): peak RSS %.1f MiB, %.1f MiB over empty = "
                       "%.1f bytes of RSS per byte of worklist JSON\n",
                       r->ds->label, mb(r->worklist_first), (double) r->one_wl.maxrss_kib / 1024.0, one / MIB,
                       one / (double) r->worklist_first);
                if (r->services > 1)
                        printf("  %-18s all %zu worklists (no-op): peak RSS %.1f MiB\n", "", r->services,
                               (double) r->noop.maxrss_kib / 1024.0);
        }
}

static double sustained(const struct rate_result *rr) {
        return rr->span > 0 ? (double) (rr->requests - 1) / rr->span : 0.0;
}

static void print_rate(const struct rate_result *rr) {
        if (!rr->ran)
                return;
        printf("\n== under e-RS's rate limit: ersd with max_requests_per_second = %d, the mock answering 429 "
               "beyond %d/s (sqlite)\n",
               ERS_RATE_LIMIT, ERS_RATE_LIMIT);
        printf("  %zu referrals: ersd --once wall %.2f s, CPU %.2f s, peak RSS %.1f MiB, exit %d\n", rr->referrals,
               rr->sync.wall, rr->sync.cpu, (double) rr->sync.maxrss_kib / 1024.0, rr->sync.status);
        printf("  %s\n", rr->summary);
        printf("  requests sent %ld (API; plus %ld to the object store, not counted by e-RS), first to last "
               "%.2f s\n",
               rr->requests, rr->store, rr->span);
        printf("  sustained %.2f requests/s (the mock's arrivals), busiest second %ld requests, 429s %ld "
               "(%ld by the rate limit)\n",
               sustained(rr), rr->busiest, rr->s429, rr->limited);
}

static void print_ratios(const struct bench_engine *en, const struct result *res, size_t n) {
        printf("\n== ersd / limit, %s (1.00 = as fast as the limit; target >= 0.8 x the smaller limit)\n", en->name);
        for (size_t i = 0; i < n; i++) {
                const struct result *r = &res[i];
                if (!r->have_limits)
                        continue;
                double fetch = r->fetch_wall / r->sync.wall, write = r->write_wall / r->sync.wall;
                double slower = r->fetch_wall > r->write_wall ? r->fetch_wall : r->write_wall;
                printf("  %-18s ersd/fetch %.2f  ersd/write %.2f  ersd/min(fetch,write) %.2f  "
                       "ersd/(fetch+write) %.2f  CPU (fetch+write)/ersd %.2f\n",
                       r->ds->label, fetch, write, slower / r->sync.wall,
                       (r->fetch_wall + r->write_wall) / r->sync.wall,
                       (r->fetch_cpu + r->write_cpu) / r->sync.cpu);
        }
}

int main(void) {
        const char *b = getenv("ERSD_BUILD"), *q = getenv("BENCH_QUICK");
        bool quick = q && *q && strcmp(q, "0") != 0;
        const struct dataset *sets = quick ? QUICK : FULL;
        struct result res[sizeof ENGINES / sizeof ENGINES[0]][N_DATASETS];
        long baseline[sizeof ENGINES / sizeof ENGINES[0]] = { 0 };
        struct rate_result rate;
        struct utsname u;
        time_t t = time(NULL);
        char when[40];

        if (b && *b)
                build = b;
        char rel[512];
        snprintf(rel, sizeof rel, "%s/bench-work", build);
        mkdir(rel, 0700);
        char *abs = realpath(rel, NULL); /* ersd reads paths in its configuration as given */
        if (!abs || strlen(abs) >= sizeof workdir - 64)
                die("cannot make the bench directory");
        memcpy(workdir, abs, strlen(abs) + 1);
        free(abs);
        spawner_start(); /* before anything large: see spawner_start() */
        snprintf(pki, sizeof pki, "%s/pki", workdir);
        snprintf(ca_file, sizeof ca_file, "%s/ca.crt", pki);
        mkdir(pki, 0700);
        if (pki_make_ca(pki, "ca", "/CN=ersd bench CA") < 0 ||
            pki_make_cert(pki, "server", "ca", "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n", "2") < 0)
                die("cannot make the bench's CA and certificate (the openssl command)");
        curl_global_init(CURL_GLOBAL_DEFAULT);
        double t0 = now();

        for (size_t e = 0; e < N_ENGINES; e++) {
                if (ENGINES[e].kind != ENGINE_SQLITE) {
                        fprintf(stderr, "bench: starting a %s server ...\n", ENGINES[e].name);
                        if (engine_start(&servers[e], ENGINES[e].kind) < 0)
                                die("the database server did not start");
                }
                for (size_t d = 0; d < N_DATASETS; d++)
                        run_dataset(&ENGINES[e], e, d, &sets[d], &res[e][d], &baseline[e]);
                engine_stop(&servers[e]);
        }
        run_rate_limit(quick ? RATE_QUICK : RATE_FULL, &rate);

        uname(&u);
        strftime(when, sizeof when, "%Y-%m-%d %H:%M UTC", gmtime(&t));
        printf("ersd benchmark%s, %s, %s %s, %ld CPUs, %.1f GiB RAM\n", quick ? " (BENCH_QUICK)" : "", when, u.sysname,
               u.machine, sysconf(_SC_NPROCESSORS_ONLN),
               (double) sysconf(_SC_PHYS_PAGES) * (double) sysconf(_SC_PAGESIZE) / (MIB * 1024.0));
        printf("data: mock e-RS on loopback over verified HTTPS (a CA the bench makes), A005 ~20 KB (--padding " PADDING
               "),\n2 attachments per referral (median ~200 KiB, every 100th 300 KiB..tail max), one big file on the\n"
               "first referral, "
               "one worklist per %d referrals (a worklist is ~1.5 KB per referral; ersd refuses one over 10 MB).\n"
               "ersd fetches %d referrals at once (ers.parallel_fetches), each on connections of its own, and writes\n"
               "with one writer; the fetch limit fetches with the same %d threads.\n",
               PER_SERVICE, FETCHERS, FETCHERS);
        if (getenv("BENCH_STATE_DIR") && *getenv("BENCH_STATE_DIR"))
                printf("ersd's state directory (the spool) under BENCH_STATE_DIR=%s, off the databases' disk\n",
                       getenv("BENCH_STATE_DIR"));
        for (size_t e = 0; e < sizeof ENGINES / sizeof ENGINES[0]; e++)
                print_engine(&ENGINES[e], res[e], N_DATASETS, baseline[e]);
        print_rate(&rate);
        for (size_t e = 0; e < sizeof ENGINES / sizeof ENGINES[0]; e++)
                print_ratios(&ENGINES[e], res[e], N_DATASETS);
        if (rate.ran)
                printf("\n== sustained / e-RS rate limit (target >= 0.95 with zero 429s)\n"
                       "  %zu referrals at %d/s: sustained %.2f requests/s / %d = ratio %.3f, 429s %ld\n",
                       rate.referrals, ERS_RATE_LIMIT, sustained(&rate), ERS_RATE_LIMIT,
                       sustained(&rate) / ERS_RATE_LIMIT, rate.s429);
        printf("\nbench run time %.0f s\n", now() - t0);
        curl_global_cleanup();
        if (rate.sync.status != 0) {
                fprintf(stderr, "bench: the ersd run under the rate limit failed; see %s/ersd.log\n", workdir);
                return 1;
        }
        for (size_t e = 0; e < sizeof ENGINES / sizeof ENGINES[0]; e++)
                for (size_t d = 0; d < N_DATASETS; d++)
                        if (res[e][d].ran && (res[e][d].sync.status != 0 || res[e][d].noop.status != 0)) {
                                fprintf(stderr, "bench: an ersd run failed; see %s/ersd.log\n", workdir);
                                return 1; /* an error, never a speed */
                        }
        return 0;
}
