/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Test harness for the integration tests: starts the mock e-RS (build/mock-ers)
 * on loopback and stops it by its pid, runs build/ersd and captures what it
 * prints, and reads the PAS database through ODBC.  Binaries are looked up in
 * $ERSD_BUILD (default "build"), relative to the project root, where the tests
 * run.  Nothing here sleeps: the mock says READY on a pipe, ersd runs to its end.
 */

#include <json-c/json.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

struct mock {
        pid_t pid;
        int api_port;
        int store_port;
        char base_url[96]; /* http://127.0.0.1:<api>/referrals */
        char ca_file[512]; /* a mock serving https (--tls-cert): control calls verify it with this CA; else "" */
};

/* Starts the mock with extra arguments (NULL-terminated, may be NULL). 0 or -errno.
 * The harness keeps a copy until mock_stop() (see HARNESS_A006_SENT). */
int mock_start(struct mock *m, const char *const *args);
void mock_stop(struct mock *m);
/* After mock_start() with --tls-cert: base_url becomes https:// and control
 * calls verify the mock with ca_file (the CA that signed its certificate). */
void mock_use_https(struct mock *m, const char *ca_file);

/* Runs a command (argv[0] from PATH, NULL-terminated) with its output
 * discarded; its exit status, or -1. */
int run_quiet(const char *const *argv);
/* run_quiet() of the arguments; returns -1 from the calling function when it fails. */
#define RUN_QUIET(...)                                                                  \
        do {                                                                            \
                const char *const argv_[] = { __VA_ARGS__, NULL };                      \
                if (run_quiet(argv_) != 0)                                              \
                        return -1;                                                      \
        } while (0)

/*
 * A throwaway PKI for the tests' https, made with the openssl command in
 * `dir` (RSA 2048): a CA <name>.crt and <name>.key with subject `subject`
 * ("/CN=…"), valid 2 days; a leaf <name>.crt and <name>.key (0600) signed by
 * CA <ca>, with `ext` as openssl x509 -extfile lines (e.g.
 * "subjectAltName=IP:127.0.0.1\nextendedKeyUsage=serverAuth\n"), valid `days`
 * ("-1": expired).  0 or -1.
 */
int pki_make_ca(const char *dir, const char *name, const char *subject);
int pki_make_cert(const char *dir, const char *name, const char *ca, const char *ext, const char *days);

/* The requests every mock running has had for the retired A006, since it started. */
long long mocks_a006_requests(void);

/* GET a control path ("/_mock/manifest"); caller owns the result (json_object_put). */
json_object *mock_get(const struct mock *m, const char *path);
/* POST a control path with query; returns the HTTP status, or -1. */
long mock_post(const struct mock *m, const char *path);
/* Serves the world `json` (tests/mock-ers/README.md, "World mode") from now
 * on: written into a new file in `dir`, then POST /_mock/world.  The HTTP
 * status (200), or -1. */
long mock_serve_world(const struct mock *m, const char *dir, const char *json);

/* A run of build/ersd.  ersd_run_full() checks the spool after every sync run
 * of a configuration that names its state_dir (write_test_config, testutil.h): after
 * `--once` (not a dry run) that exited 0 the spool holds nothing (a round that
 * finished cleanly leaves no patient document behind), and after any `--once`,
 * `--dry-run` or `sync` that exited no one-off spool (STATE/oneoff-*) is left.
 * Anything left turns the status into HARNESS_SPOOL_LEFT, with a line saying
 * what at the end of err. */
#define HARNESS_SPOOL_LEFT 99
/* After every run (ersd_run_full(), proc_end()), each mock this process has
 * running (mock_start() to mock_stop()) is asked how many requests it had for
 * A006, which is retired and never called: any turns the status into
 * HARNESS_A006_SENT, with a line saying so at the end of err, so that every
 * test's run proves ersd sent none (the mock never forgets an A006 request,
 * /_mock/stats/reset included). */
#define HARNESS_A006_SENT 98
struct run {
        int status;  /* exit status, or 128+signal */
        char *out;   /* owned: all of stdout */
        char *err;   /* owned: all of stderr */
        long maxrss_kib; /* ersd's peak resident set (getrusage of the child) */
};
int ersd_run(const char *config_path, const char *mode, struct run *ret);

/* How a run's process differs from a plain one (tests of faults). */
struct run_opts {
        const char *const *env;    /* "NAME=value" entries set in ersd's environment (NULL-terminated, may be NULL) */
        long long fsize_limit;     /* > 0: RLIMIT_FSIZE in bytes (LimitFSIZE=), SIGXFSZ left at its default
                                      (ersd ignores it, so a write past it fails with EFBIG as on a full
                                      disk); 0: none */
        bool no_dac_override;      /* when run as root: without CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH and
                                      CAP_FOWNER, so file modes bind ersd as they bind its own user */
        long nofile_limit;         /* > 0: RLIMIT_NOFILE, the descriptors ersd may hold open; 0: as inherited */
};
int ersd_run_opts(const char *config_path, const char *mode, const struct run_opts *o, struct run *ret);

/* "LD_PRELOAD=<path>" of $ERSD_BUILD/tests/support/odbc_fault.so (the shim that
 * fails one COMMIT, tests/support/preload/odbc_fault.c), for run_opts.env.
 * Static storage. */
const char *odbc_fault_preload(void);
/* The same with the arguments after "-c FILE" (NULL-terminated, may be NULL):
 * { "audit", "--json", ubrn, NULL }. */
int ersd_run_args(const char *config_path, const char *const *args, struct run *ret);

/* Both: the arguments after "-c FILE" (may be NULL) and how the process differs (may be NULL). */
int ersd_run_full(const char *config_path, const char *const *args, const struct run_opts *o, struct run *ret);
/* Appends what a run printed to $ERSD_OUTPUT_LOG (the output scan reads it);
 * ersd_run does it itself. */
void output_log(const char *out, const char *err);
void run_free(struct run *r);

/* build/ersd running in the background (loop mode), its output read as it comes. */
struct proc {
        pid_t pid;
        int out_fd, err_fd;  /* owned: read ends of its stdout and stderr */
        char *out, *err;     /* owned: everything read so far */
        size_t out_len, err_len;
};
int ersd_spawn(const char *config_path, struct proc *ret);
/* The same with environment entries "NAME=value" (NULL-terminated, may be NULL);
 * the value "self" stands for the child's own pid (WATCHDOG_PID=self).  ersd
 * never inherits the test runner's NOTIFY_SOCKET, WATCHDOG_USEC or WATCHDOG_PID. */
int ersd_spawn_env(const char *config_path, const char *const *env, struct proc *ret);
/* Reads until `needle` appears in stdout (which=1) or stderr (which=2) after
 * byte `from`; returns its offset, or -1 when the process closed the stream or
 * 60 s went by without it (a guard against a hung test, not a wait). */
long proc_wait_for(struct proc *p, int which, const char *needle, size_t from);
/* Sends sig and reaps the process; returns its exit status (128+signal when killed). */
int proc_end(struct proc *p, int sig);

/* A fresh directory under $TMPDIR (or /tmp); caller frees the string and
 * removes the tree with tmpdir_remove. */
char *tmpdir_make(void);
void tmpdir_remove(const char *dir);
int write_text(const char *path, const char *text, unsigned mode);

/* The PAS through ODBC. */
struct db;
struct db *db_open(const char *connection);
void db_close(struct db *d);
/* Runs a query with string parameters (one NULL: SQL NULL, on every engine); returns the first column of the first
 * row as an owned string (NULL when no row or SQL NULL).  *ret_found says
 * whether a row came. */
char *db_text(struct db *d, const char *sql, int nparams, const char *const *params, bool *ret_found);
/* Runs a statement that returns no rows, with string parameters (NULL: none);
 * 0, or -1 with the SQLSTATE on stderr. */
int db_exec_with(struct db *d, const char *sql, int nparams, const char *const *params);
long long db_int(struct db *d, const char *sql, int nparams, const char *const *params);
/* Runs a query with string parameters and calls fn for each row with every
 * column read whole as text (SQL_C_CHAR in pieces, however long): vals[i]
 * NUL-terminated and lens[i] its length, or NULL for SQL NULL; valid for the
 * call.  fn returns 0 to go on.  The number of rows, or -1 (the query or a
 * read failed, said on stderr). */
long long db_each_row(struct db *d, const char *sql, int nparams, const char *const *params,
                      int (*fn)(void *userdata, int ncols, char **vals, const size_t *lens), void *userdata);
/* The rows that mention a UBRN, in every table ersd writes for a referral
 * (referral, documents, their parts, ledger): 0 means nothing of it. */
long long db_rows_for(struct db *d, const char *ubrn);
/* Runs one statement without parameters; 0, or -1 with the driver's message on stderr. */
int db_exec(struct db *d, const char *sql);
/* Autocommit on or off (off: the statements that follow form one transaction,
 * held open until db_end). */
int db_autocommit(struct db *d, bool on);
/* Commits (true) or rolls back the open transaction. */
int db_end(struct db *d, bool commit);
/* Every row and column of `table` (a constant name), read as bytes and
 * hashed in the order the database returns them, and the row count: two equal
 * digests of an unchanged table.  0 or -1. */
int db_table_digest(struct db *d, const char *table, char hex[65], long long *ret_rows);
/* Reassembles a document from its parts: SHA-256 hex and size. 0 or -1. */
int db_document_sha256(struct db *d, const char *document_id, char hex[65], int64_t *ret_size);
/* The same for the first column of every row a query returns, one after the other. */
int db_bytes_sha256(struct db *d, const char *sql, int nparams, const char *const *params, char hex[65],
                    int64_t *ret_size);

/* SHA-256 hex of the text. */
void sha256_hex(const void *data, size_t n, char hex[65]);
