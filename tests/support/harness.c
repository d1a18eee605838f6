/* SPDX-License-Identifier: MIT */
#include "harness.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <poll.h>
#include <signal.h>
#include <sql.h>
#include <sqlext.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <limits.h>
#include <linux/capability.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

static const char *build_dir(void) {
        const char *b = getenv("ERSD_BUILD");
        return b && *b ? b : "build";
}

/* The mocks this process has running (copies: a test's struct mock may be
 * gone before its mock is stopped), asked after every run of ersd whether it
 * sent the retired A006 (a006_sent()). */
#define MOCKS_MAX 16
static struct mock running[MOCKS_MAX];

static void running_put(const struct mock *m) {
        for (size_t i = 0; i < MOCKS_MAX; i++)
                if (running[i].pid == m->pid || running[i].pid == 0) {
                        running[i] = *m;
                        return;
                }
}

static void running_drop(pid_t pid) {
        for (size_t i = 0; i < MOCKS_MAX; i++)
                if (running[i].pid == pid)
                        running[i].pid = 0;
}

int mock_start(struct mock *m, const char *const *args) {
        char path[512], line[256];
        const char *argv[64];
        int fds[2], n = 0;
        FILE *f;

        m->ca_file[0] = '\0'; /* plain http until the test says otherwise */
        snprintf(path, sizeof path, "%s/mock-ers", build_dir());
        argv[n++] = path;
        for (size_t i = 0; args && args[i] && n < 62; i++)
                argv[n++] = args[i];
        argv[n] = NULL;
        if (pipe2(fds, O_CLOEXEC) < 0)
                return -errno;
        m->pid = fork();
        if (m->pid < 0)
                return -errno;
        if (m->pid == 0) {
                /* Dies with the test process, even if that one crashes. */
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                dup2(fds[1], STDOUT_FILENO);
                execv(path, (char *const *) argv);
                _exit(127);
        }
        close(fds[1]);
        f = fdopen(fds[0], "r");
        if (!f || !fgets(line, sizeof line, f) ||
            sscanf(line, "READY api=%d store=%d", &m->api_port, &m->store_port) != 2) {
                if (f)
                        fclose(f);
                mock_stop(m);
                return -EIO;
        }
        fclose(f);
        snprintf(m->base_url, sizeof m->base_url, "http://127.0.0.1:%d/referrals", m->api_port);
        running_put(m);
        return 0;
}

void mock_use_https(struct mock *m, const char *ca_file) {
        snprintf(m->ca_file, sizeof m->ca_file, "%s", ca_file);
        snprintf(m->base_url, sizeof m->base_url, "https://127.0.0.1:%d/referrals", m->api_port);
        running_put(m);
}

int run_quiet(const char *const *argv) {
        pid_t pid = fork();
        int st;

        if (pid < 0)
                return -1;
        if (pid == 0) {
                int null = open("/dev/null", O_WRONLY | O_CLOEXEC);
                dup2(null, STDOUT_FILENO);
                dup2(null, STDERR_FILENO);
                execvp(argv[0], (char *const *) argv);
                _exit(127);
        }
        if (waitpid(pid, &st, 0) < 0)
                return -1;
        return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

int pki_make_ca(const char *dir, const char *name, const char *subject) {
        char key[600], crt[600];

        snprintf(key, sizeof key, "%s/%s.key", dir, name);
        snprintf(crt, sizeof crt, "%s/%s.crt", dir, name);
        RUN_QUIET("openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", crt, "-days",
                  "2", "-subj", subject);
        return chmod(key, 0600);
}

int pki_make_cert(const char *dir, const char *name, const char *ca, const char *ext, const char *days) {
        char key[600], csr[600], crt[600], extf[600], cacrt[600], cakey[600];

        snprintf(key, sizeof key, "%s/%s.key", dir, name);
        snprintf(csr, sizeof csr, "%s/%s.csr", dir, name);
        snprintf(crt, sizeof crt, "%s/%s.crt", dir, name);
        snprintf(extf, sizeof extf, "%s/%s.ext", dir, name);
        snprintf(cacrt, sizeof cacrt, "%s/%s.crt", dir, ca);
        snprintf(cakey, sizeof cakey, "%s/%s.key", dir, ca);
        if (write_text(extf, ext, 0600) < 0)
                return -1;
        RUN_QUIET("openssl", "req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr, "-subj",
                  "/CN=ersd test");
        RUN_QUIET("openssl", "x509", "-req", "-in", csr, "-CA", cacrt, "-CAkey", cakey, "-CAcreateserial", "-out",
                  crt, "-days", days, "-extfile", extf);
        return chmod(key, 0600);
}

void mock_stop(struct mock *m) {
        if (m->pid > 0) {
                running_drop(m->pid);
                kill(m->pid, SIGTERM);
                waitpid(m->pid, NULL, 0);
                m->pid = 0;
        }
}

struct buf {
        char *p;
        size_t n;
};

static size_t collect(char *p, size_t size, size_t n, void *ud) {
        struct buf *b = ud;
        char *q = realloc(b->p, b->n + size * n + 1);
        if (!q)
                return 0;
        b->p = q;
        memcpy(b->p + b->n, p, size * n);
        b->n += size * n;
        b->p[b->n] = '\0';
        return size * n;
}

static long control(const struct mock *m, const char *path, bool post, struct buf *b) {
        char url[512];
        long status = -1;
        CURL *h = curl_easy_init();

        if (!h)
                return -1;
        snprintf(url, sizeof url, "%s://127.0.0.1:%d%s", m->ca_file[0] ? "https" : "http", m->api_port, path);
        curl_easy_setopt(h, CURLOPT_URL, url);
        if (m->ca_file[0])
                curl_easy_setopt(h, CURLOPT_CAINFO, m->ca_file);
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, b);
        if (post)
                curl_easy_setopt(h, CURLOPT_POSTFIELDS, "");
        if (curl_easy_perform(h) == CURLE_OK)
                curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        curl_easy_cleanup(h);
        return status;
}

json_object *mock_get(const struct mock *m, const char *path) {
        struct buf b = { 0 };
        json_object *o = NULL;

        if (control(m, path, false, &b) == 200 && b.p)
                o = json_tokener_parse(b.p);
        free(b.p);
        return o;
}

long mock_post(const struct mock *m, const char *path) {
        struct buf b = { 0 };
        long s = control(m, path, true, &b);
        free(b.p);
        return s;
}

long mock_serve_world(const struct mock *m, const char *dir, const char *json) {
        static unsigned n;
        char file[4096], path[4200];

        snprintf(file, sizeof file, "%s/world-%u-%u.json", dir, (unsigned) getpid(), n++);
        if (write_text(file, json, 0600) < 0)
                return -1;
        snprintf(path, sizeof path, "/_mock/world?file=%s", file);
        return mock_post(m, path);
}

static int append(struct buf *b, int fd) {
        char tmp[8192];
        ssize_t n = read(fd, tmp, sizeof tmp);
        if (n > 0) {
                char *q = realloc(b->p, b->n + (size_t) n + 1);
                if (!q)
                        return -1;
                b->p = q;
                memcpy(b->p + b->n, tmp, (size_t) n);
                b->n += (size_t) n;
                b->p[b->n] = '\0';
        }
        return (int) n;
}

/* Appends what a run of ersd printed to $ERSD_OUTPUT_LOG, when set, for
 * tests/scan-output (no patient identifier, token or secret in any output). */
void output_log(const char *out, const char *err) {
        const char *path = getenv("ERSD_OUTPUT_LOG");
        FILE *f;

        if (!path || !*path || !(f = fopen(path, "ae")))
                return;
        fprintf(f, "%s%s", out ? out : "", err ? err : "");
        fclose(f);
}

/* In the child, before exec: what run_opts asks for. */
static void child_apply(const struct run_opts *o) {
        if (!o)
                return;
        for (size_t i = 0; o->env && o->env[i]; i++)
                putenv((char *) o->env[i]);
        if (o->fsize_limit > 0) {
                struct rlimit rl = { .rlim_cur = (rlim_t) o->fsize_limit, .rlim_max = (rlim_t) o->fsize_limit };
                /* As systemd's LimitFSIZE= leaves it: SIGXFSZ at its default, which kills.
                 * ersd must ignore it itself, to see EFBIG as it would a full disk. */
                signal(SIGXFSZ, SIG_DFL);
                if (setrlimit(RLIMIT_FSIZE, &rl) < 0)
                        _exit(126);
        }
        if (o->nofile_limit > 0) {
                struct rlimit rl = { .rlim_cur = (rlim_t) o->nofile_limit, .rlim_max = (rlim_t) o->nofile_limit };
                if (setrlimit(RLIMIT_NOFILE, &rl) < 0)
                        _exit(126);
        }
        if (o->no_dac_override && geteuid() == 0) {
                /* Out of the bounding set: root's capabilities after exec are drawn from it. */
                if (prctl(PR_CAPBSET_DROP, CAP_DAC_OVERRIDE, 0, 0, 0) < 0 ||
                    prctl(PR_CAPBSET_DROP, CAP_DAC_READ_SEARCH, 0, 0, 0) < 0 ||
                    prctl(PR_CAPBSET_DROP, CAP_FOWNER, 0, 0, 0) < 0)
                        _exit(126);
        }
}

const char *odbc_fault_preload(void) {
        static char env[PATH_MAX + 16];
        char rel[512], abs[PATH_MAX];

        snprintf(rel, sizeof rel, "%s/tests/support/odbc_fault.so", build_dir());
        snprintf(env, sizeof env, "LD_PRELOAD=%s", realpath(rel, abs) ? abs : rel);
        return env;
}

int ersd_run(const char *config_path, const char *mode, struct run *ret) {
        const char *const args[] = { mode, NULL };
        return ersd_run_full(config_path, mode ? args : NULL, NULL, ret);
}

int ersd_run_args(const char *config_path, const char *const *args, struct run *ret) {
        return ersd_run_full(config_path, args, NULL, ret);
}

int ersd_run_opts(const char *config_path, const char *mode, const struct run_opts *o, struct run *ret) {
        const char *const args[] = { mode, NULL };
        return ersd_run_full(config_path, mode ? args : NULL, o, ret);
}

/* The state_dir of a configuration write_test_config() wrote; "" when none is named. */
static void config_state_dir(const char *config_path, char *ret, size_t n) {
        char line[PATH_MAX + 32];
        FILE *f = fopen(config_path, "re");

        ret[0] = '\0';
        while (f && fgets(line, sizeof line, f)) {
                char *end;
                if (strncmp(line, "state_dir = \"", 13) == 0 && (end = strchr(line + 13, '"')))
                        snprintf(ret, n, "%.*s", (int) (end - line - 13), line + 13);
        }
        if (f)
                fclose(f);
}

/* Entries of dir whose name starts with prefix ("" for all); 0 when it cannot be read. */
static unsigned count_entries(const char *dir, const char *prefix) {
        DIR *d = opendir(dir);
        struct dirent *de;
        unsigned n = 0;

        while (d && (de = readdir(d)))
                if (strcmp(de->d_name, ".") != 0 && strcmp(de->d_name, "..") != 0 &&
                    strncmp(de->d_name, prefix, strlen(prefix)) == 0)
                        n++;
        if (d)
                closedir(d);
        return n;
}

/* What a sync run that exited with `status` left where it must leave nothing
 * (see struct run), said at the end of *err; the number of files. */
static unsigned spool_left(const char *config_path, const char *const *args, int status, char **err) {
        bool once = false, dry_run = false, sync = false;
        char state[PATH_MAX], spool[PATH_MAX + 8];
        unsigned spooled = 0, oneoff;

        for (size_t i = 0; args && args[i]; i++) {
                once |= strcmp(args[i], "--once") == 0;
                dry_run |= strcmp(args[i], "--dry-run") == 0;
                sync |= strcmp(args[i], "sync") == 0;
        }
        config_state_dir(config_path, state, sizeof state);
        if (!state[0] || !(once || dry_run || sync))
                return 0;
        snprintf(spool, sizeof spool, "%s/spool", state);
        if (once && !dry_run && status == 0)
                spooled = count_entries(spool, "");
        oneoff = count_entries(state, "oneoff-");
        if (spooled + oneoff == 0)
                return 0;
        char *more = NULL;
        if (asprintf(&more, "%sharness: ersd exited %d leaving %u file(s) in %s and %u one-off spool(s) in %s\n",
                     *err ? *err : "", status, spooled, spool, oneoff, state) >= 0) {
                free(*err);
                *err = more;
        }
        return spooled + oneoff;
}

long long mocks_a006_requests(void) {
        long long n = 0;

        for (size_t i = 0; i < MOCKS_MAX; i++) {
                if (running[i].pid <= 0)
                        continue;
                json_object *stats = mock_get(&running[i], "/_mock/stats"), *v = NULL;
                if (stats && json_object_object_get_ex(stats, "A006", &v))
                        n += json_object_get_int64(v);
                json_object_put(stats);
        }
        return n;
}

/* Whether ersd sent A006 to any mock running: said at the end of *err (err
 * NULL: on stderr). */
static bool a006_sent(char **err) {
        long long n = mocks_a006_requests();
        char *more = NULL;

        if (n == 0)
                return false;
        if (asprintf(&more, "%sharness: ersd sent %lld request(s) to A006, which is retired and never called\n",
                     err && *err ? *err : "", n) >= 0 && err) {
                free(*err);
                *err = more;
        } else {
                fputs(more ? more : "harness: ersd sent a request to A006, which is retired and never called\n",
                      stderr);
                free(more);
        }
        return true;
}

#define RUN_ARGS_MAX 44 /* arguments after -c FILE (`ersd services` takes many ids) */

int ersd_run_full(const char *config_path, const char *const *args, const struct run_opts *o, struct run *ret) {
        char path[512];
        int out[2], err[2], st;
        struct buf bo = { 0 }, be = { 0 };
        pid_t pid;

        snprintf(path, sizeof path, "%s/ersd", build_dir());
        for (size_t i = 0; args && args[i]; i++)
                if (i >= RUN_ARGS_MAX)
                        return -E2BIG; /* never cut a command line short without a word */
        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
                return -errno;
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                dup2(out[1], STDOUT_FILENO);
                dup2(err[1], STDERR_FILENO);
                child_apply(o);
                const char *argv[RUN_ARGS_MAX + 4] = { path, "-c", config_path };
                size_t n = 3;
                for (; args && args[n - 3] && n < sizeof argv / sizeof argv[0] - 1; n++)
                        argv[n] = args[n - 3];
                argv[n] = NULL;
                execv(path, (char *const *) argv);
                _exit(127);
        }
        close(out[1]);
        close(err[1]);
        struct pollfd p[2] = { { .fd = out[0], .events = POLLIN }, { .fd = err[0], .events = POLLIN } };
        int open_fds = 2;
        while (open_fds > 0) {
                if (poll(p, 2, -1) < 0) {
                        if (errno == EINTR)
                                continue;
                        break;
                }
                for (int i = 0; i < 2; i++) {
                        if (p[i].fd >= 0 && (p[i].revents & (POLLIN | POLLHUP | POLLERR))) {
                                if (append(i == 0 ? &bo : &be, p[i].fd) <= 0) {
                                        close(p[i].fd);
                                        p[i].fd = -1;
                                        open_fds--;
                                }
                        }
                }
        }
        struct rusage ru = { 0 };
        wait4(pid, &st, 0, &ru);
        ret->status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
        ret->maxrss_kib = ru.ru_maxrss;
        ret->out = bo.p ? bo.p : strdup("");
        ret->err = be.p ? be.p : strdup("");
        if (WIFEXITED(st) && spool_left(config_path, args, ret->status, &ret->err) > 0)
                ret->status = HARNESS_SPOOL_LEFT;
        if (a006_sent(&ret->err))
                ret->status = HARNESS_A006_SENT;
        output_log(ret->out, ret->err);
        return 0;
}

void run_free(struct run *r) {
        free(r->out);
        free(r->err);
        r->out = r->err = NULL;
}

int ersd_spawn(const char *config_path, struct proc *ret) {
        return ersd_spawn_env(config_path, NULL, ret);
}

/* In the child: the systemd variables only as the test gives them (never the test
 * runner's own), then the test's entries. */
static void child_env(const char *const *env) {
        unsetenv("NOTIFY_SOCKET");
        unsetenv("WATCHDOG_USEC");
        unsetenv("WATCHDOG_PID");
        for (size_t i = 0; env && env[i]; i++) {
                char name[128], pid[32];
                const char *eq = strchr(env[i], '=');
                if (!eq || (size_t) (eq - env[i]) >= sizeof name)
                        continue;
                memcpy(name, env[i], (size_t) (eq - env[i]));
                name[eq - env[i]] = '\0';
                snprintf(pid, sizeof pid, "%ld", (long) getpid());
                setenv(name, strcmp(eq + 1, "self") == 0 ? pid : eq + 1, 1);
        }
}

int ersd_spawn_env(const char *config_path, const char *const *env, struct proc *ret) {
        char path[512];
        int out[2], err[2];

        memset(ret, 0, sizeof *ret);
        snprintf(path, sizeof path, "%s/ersd", build_dir());
        if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0)
                return -errno;
        ret->pid = fork();
        if (ret->pid < 0)
                return -errno;
        if (ret->pid == 0) {
                prctl(PR_SET_PDEATHSIG, SIGTERM);
                dup2(out[1], STDOUT_FILENO);
                dup2(err[1], STDERR_FILENO);
                child_env(env);
                execl(path, path, "-c", config_path, (char *) NULL);
                _exit(127);
        }
        close(out[1]);
        close(err[1]);
        ret->out_fd = out[0];
        ret->err_fd = err[0];
        ret->out = strdup("");
        ret->err = strdup("");
        return ret->out && ret->err ? 0 : -ENOMEM;
}

long proc_wait_for(struct proc *p, int which, const char *needle, size_t from) {
        for (;;) {
                const char *text = which == 1 ? p->out : p->err;
                size_t len = which == 1 ? p->out_len : p->err_len;
                if (from <= len) {
                        const char *hit = strstr(text + from, needle);
                        if (hit)
                                return (long) (hit - text);
                }
                struct pollfd fds[2] = { { .fd = p->out_fd, .events = POLLIN }, { .fd = p->err_fd, .events = POLLIN } };
                int n = poll(fds, 2, 60000);
                if (n <= 0)
                        return -1;
                for (int i = 0; i < 2; i++) {
                        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
                                continue;
                        struct buf b = { i == 0 ? p->out : p->err, i == 0 ? p->out_len : p->err_len };
                        int got = append(&b, fds[i].fd);
                        if (i == 0) {
                                p->out = b.p;
                                p->out_len = b.n;
                        } else {
                                p->err = b.p;
                                p->err_len = b.n;
                        }
                        if (got <= 0 && i == which - 1)
                                return -1;
                }
        }
}

int proc_end(struct proc *p, int sig) {
        int st = 0;

        if (p->pid > 0) {
                kill(p->pid, sig);
                waitpid(p->pid, &st, 0);
                p->pid = 0;
        }
        if (p->out_fd > 0)
                close(p->out_fd);
        if (p->err_fd > 0)
                close(p->err_fd);
        bool a006 = a006_sent(NULL); /* said on stderr: nobody reads p->err after this */
        output_log(p->out, p->err);
        free(p->out);
        free(p->err);
        memset(p, 0, sizeof *p);
        if (a006)
                return HARNESS_A006_SENT;
        return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
}

char *tmpdir_make(void) {
        const char *base = getenv("TMPDIR");
        char *p = NULL;

        if (asprintf(&p, "%s/ersd-test.XXXXXX", base && *base ? base : "/tmp") < 0)
                return NULL;
        if (!mkdtemp(p)) {
                free(p);
                return NULL;
        }
        return p;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st;
        (void) flag;
        (void) ftw;
        return remove(path);
}

void tmpdir_remove(const char *dir) {
        if (dir)
                nftw(dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

int write_text(const char *path, const char *text, unsigned mode) {
        int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
        size_t n = strlen(text);

        if (fd < 0)
                return -errno;
        if (write(fd, text, n) != (ssize_t) n) {
                close(fd);
                return -EIO;
        }
        fchmod(fd, mode);
        return close(fd) < 0 ? -errno : 0;
}

struct db {
        SQLHENV env;
        SQLHDBC dbc;
};

struct db *db_open(const char *connection) {
        struct db *d = calloc(1, sizeof *d);

        if (!d)
                return NULL;
        SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &d->env);
        SQLSetEnvAttr(d->env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER) SQL_OV_ODBC3, 0);
        SQLAllocHandle(SQL_HANDLE_DBC, d->env, &d->dbc);
        if (!SQL_SUCCEEDED(SQLDriverConnect(d->dbc, NULL, (SQLCHAR *) connection, SQL_NTS, NULL, 0, NULL,
                                            SQL_DRIVER_NOPROMPT))) {
                db_close(d);
                return NULL;
        }
        return d;
}

void db_close(struct db *d) {
        if (!d)
                return;
        SQLDisconnect(d->dbc);
        SQLFreeHandle(SQL_HANDLE_DBC, d->dbc);
        SQLFreeHandle(SQL_HANDLE_ENV, d->env);
        free(d);
}

static SQLHSTMT run_query(struct db *d, const char *sql, int nparams, const char *const *params) {
        SQLHSTMT st;
        static SQLLEN nts[16];

        if (!SQL_SUCCEEDED(SQLAllocHandle(SQL_HANDLE_STMT, d->dbc, &st)))
                return NULL;
        for (int i = 0; i < nparams && i < 16; i++) {
                nts[i] = params[i] ? SQL_NTS : SQL_NULL_DATA; /* psqlODBC refuses a NULL pointer said NTS */
                SQLBindParameter(st, (SQLUSMALLINT) (i + 1), SQL_PARAM_INPUT, SQL_C_CHAR, SQL_VARCHAR, 255, 0,
                                 (SQLPOINTER) params[i], 0, &nts[i]);
        }
        SQLRETURN rc = SQLExecDirect(st, (SQLCHAR *) sql, SQL_NTS);
        if (!SQL_SUCCEEDED(rc) && rc != SQL_NO_DATA) { /* SQL_NO_DATA: a statement that touched no row */
                SQLCHAR state[6] = "", msg[512] = "";
                SQLINTEGER native;
                SQLSMALLINT len;
                SQLGetDiagRec(SQL_HANDLE_STMT, st, 1, state, &native, msg, sizeof msg, &len);
                fprintf(stderr, "test query failed: SQLSTATE %s: %s\n", state, msg);
                SQLFreeHandle(SQL_HANDLE_STMT, st);
                return NULL;
        }
        return st;
}

char *db_text(struct db *d, const char *sql, int nparams, const char *const *params, bool *ret_found) {
        SQLHSTMT st = run_query(d, sql, nparams, params);
        char *out = NULL;
        bool found = false;

        if (st && SQL_SUCCEEDED(SQLFetch(st))) {
                /* the whole value, however long: a test compares it with what was written */
                size_t len = 0, cap = 8192;
                SQLLEN ind = 0;
                SQLRETURN rc;
                bool read = false;
                found = true;
                out = malloc(cap);
                while (out && SQL_SUCCEEDED(rc = SQLGetData(st, 1, SQL_C_CHAR, out + len, (SQLLEN) (cap - len), &ind)) &&
                       ind != SQL_NULL_DATA) {
                        read = true;
                        if (rc == SQL_SUCCESS)
                                break; /* the rest fitted */
                        len = cap - 1; /* truncated: full but for its NUL */
                        char *more = realloc(out, cap * 2);
                        if (!more)
                                free(out);
                        out = more;
                        cap *= 2;
                }
                if (!read) {
                        free(out); /* SQL NULL, or no value */
                        out = NULL;
                }
        }
        if (st)
                SQLFreeHandle(SQL_HANDLE_STMT, st);
        if (ret_found)
                *ret_found = found;
        return out;
}

/* Column col of the current row, read whole as text into *ret (malloc'd,
 * NUL-terminated, its length in *ret_len), NULL for SQL NULL.  0 or -1. */
static int column_text(SQLHSTMT st, SQLUSMALLINT col, char **ret, size_t *ret_len) {
        char chunk[65536];
        char *p = NULL;
        size_t len = 0;
        SQLLEN ind = 0;
        SQLRETURN rc;

        *ret = NULL;
        *ret_len = 0;
        while ((rc = SQLGetData(st, col, SQL_C_CHAR, chunk, sizeof chunk, &ind)) != SQL_NO_DATA) {
                if (!SQL_SUCCEEDED(rc)) {
                        free(p);
                        return -1;
                }
                if (ind == SQL_NULL_DATA)
                        return 0;
                size_t got = (ind == SQL_NO_TOTAL || ind >= (SQLLEN) sizeof chunk) ? sizeof chunk - 1 : (size_t) ind;
                char *np = realloc(p, len + got + 1);
                if (!np) {
                        free(p);
                        return -1;
                }
                p = np;
                memcpy(p + len, chunk, got);
                len += got;
                p[len] = '\0';
                if (rc == SQL_SUCCESS)
                        break;
        }
        if (!p && !(p = calloc(1, 1)))
                return -1;
        *ret = p;
        *ret_len = len;
        return 0;
}

long long db_each_row(struct db *d, const char *sql, int nparams, const char *const *params,
                      int (*fn)(void *userdata, int ncols, char **vals, const size_t *lens), void *userdata) {
        SQLHSTMT st = run_query(d, sql, nparams, params);
        SQLSMALLINT cols = 0;
        char **vals = NULL;
        size_t *lens = NULL;
        long long rows = 0;

        if (!st || !SQL_SUCCEEDED(SQLNumResultCols(st, &cols)) || cols <= 0 ||
            !(vals = calloc((size_t) cols, sizeof *vals)) || !(lens = calloc((size_t) cols, sizeof *lens))) {
                rows = -1;
                goto out;
        }
        while (rows >= 0 && SQL_SUCCEEDED(SQLFetch(st))) {
                int r = 0;
                for (SQLSMALLINT c = 0; c < cols && r == 0; c++)
                        r = column_text(st, (SQLUSMALLINT) (c + 1), &vals[c], &lens[c]);
                if (r < 0)
                        fprintf(stderr, "test query: a column could not be read\n");
                else if (fn(userdata, cols, vals, lens) != 0)
                        r = 1;
                for (SQLSMALLINT c = 0; c < cols; c++) {
                        free(vals[c]);
                        vals[c] = NULL;
                }
                rows = r < 0 ? -1 : rows + 1;
                if (r > 0)
                        break;
        }
out:
        if (st)
                SQLFreeHandle(SQL_HANDLE_STMT, st);
        free(vals);
        free(lens);
        return rows;
}

int db_exec_with(struct db *d, const char *sql, int nparams, const char *const *params) {
        SQLHSTMT st = run_query(d, sql, nparams, params);

        if (!st)
                return -1;
        SQLFreeHandle(SQL_HANDLE_STMT, st);
        return 0;
}

long long db_int(struct db *d, const char *sql, int nparams, const char *const *params) {
        char *s = db_text(d, sql, nparams, params, NULL);
        long long v = s ? strtoll(s, NULL, 10) : -1;
        free(s);
        return v;
}

long long db_rows_for(struct db *d, const char *ubrn) {
        const char *p[] = { ubrn, ubrn, ubrn, ubrn };
        return db_int(d,
                      "SELECT (SELECT COUNT(*) FROM ers_referral WHERE ubrn = ?)"
                      " + (SELECT COUNT(*) FROM ers_document WHERE ubrn = ?)"
                      " + (SELECT COUNT(*) FROM ers_ledger WHERE ubrn = ?)"
                      " + (SELECT COUNT(*) FROM ers_document_part WHERE document_id IN"
                      "    (SELECT document_id FROM ers_document WHERE ubrn = ?))",
                      4, p);
}

int db_exec(struct db *d, const char *sql) {
        return db_exec_with(d, sql, 0, NULL);
}

int db_autocommit(struct db *d, bool on) {
        SQLRETURN rc = SQLSetConnectAttr(d->dbc, SQL_ATTR_AUTOCOMMIT,
                                         (SQLPOINTER) (on ? SQL_AUTOCOMMIT_ON : SQL_AUTOCOMMIT_OFF), 0);
        return SQL_SUCCEEDED(rc) ? 0 : -1;
}

int db_end(struct db *d, bool commit) {
        return SQL_SUCCEEDED(SQLEndTran(SQL_HANDLE_DBC, d->dbc, commit ? SQL_COMMIT : SQL_ROLLBACK)) ? 0 : -1;
}

/* Feeds column `col` of the current row to md, read as bytes in pieces of
 * `size` through buf.  *ret_null says whether it was NULL; *ret_bytes grows by
 * its length.  0, or -1 when the driver fails. */
static int hash_column(SQLHSTMT st, SQLUSMALLINT col, EVP_MD_CTX *md, unsigned char *buf, size_t size,
                       bool *ret_null, int64_t *ret_bytes) {
        SQLLEN ind = 0;
        SQLRETURN rc;

        *ret_null = false;
        while ((rc = SQLGetData(st, col, SQL_C_BINARY, buf, (SQLLEN) size, &ind)) != SQL_NO_DATA) {
                if (!SQL_SUCCEEDED(rc))
                        return -1;
                if (ind == SQL_NULL_DATA) {
                        *ret_null = true;
                        return 0;
                }
                size_t got = (ind == SQL_NO_TOTAL || ind > (SQLLEN) size) ? size : (size_t) ind;
                EVP_DigestUpdate(md, buf, got);
                *ret_bytes += (int64_t) got;
                if (rc == SQL_SUCCESS)
                        break;
        }
        return 0;
}

static void digest_hex(EVP_MD_CTX *md, char hex[65]) {
        unsigned char digest[32];
        unsigned int dlen = 0;

        EVP_DigestFinal_ex(md, digest, &dlen);
        for (int i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

int db_document_sha256(struct db *d, const char *document_id, char hex[65], int64_t *ret_size) {
        const char *params[] = { document_id };

        return db_bytes_sha256(d, "SELECT data FROM ers_document_part WHERE document_id = ? ORDER BY seq", 1, params,
                               hex, ret_size);
}

int db_bytes_sha256(struct db *d, const char *sql, int nparams, const char *const *params, char hex[65],
                    int64_t *ret_size) {
        SQLHSTMT st = run_query(d, sql, nparams, params);
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char *chunk = malloc(1 << 16);
        int64_t size = 0;
        int r = 0;

        if (!st || !md || !chunk) {
                r = -1;
                goto out;
        }
        EVP_DigestInit_ex(md, EVP_sha256(), NULL);
        while (SQL_SUCCEEDED(SQLFetch(st))) {
                bool null;
                if (hash_column(st, 1, md, chunk, 1 << 16, &null, &size) < 0) {
                        r = -1;
                        goto out;
                }
        }
        digest_hex(md, hex);
        *ret_size = size;
out:
        if (st)
                SQLFreeHandle(SQL_HANDLE_STMT, st);
        EVP_MD_CTX_free(md);
        free(chunk);
        return r;
}

void sha256_hex(const void *data, size_t n, char hex[65]) {
        unsigned char digest[32];
        unsigned int dlen;
        EVP_Digest(data, n, digest, &dlen, EVP_sha256(), NULL);
        for (int i = 0; i < 32; i++)
                snprintf(hex + 2 * i, 3, "%02x", digest[i]);
}

int db_table_digest(struct db *d, const char *table, char hex[65], long long *ret_rows) {
        char sql[128];
        SQLSMALLINT cols = 0;
        long long rows = 0;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned char *buf = malloc(1 << 16);
        SQLHSTMT st = NULL;
        int r = 0;

        if (!md || !buf) {
                r = -1;
                goto out;
        }
        snprintf(sql, sizeof sql, "SELECT * FROM %s", table);
        st = run_query(d, sql, 0, NULL);
        if (!st || !SQL_SUCCEEDED(SQLNumResultCols(st, &cols)) || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
                r = -1;
                goto out;
        }
        while (SQL_SUCCEEDED(SQLFetch(st))) {
                rows++;
                for (SQLUSMALLINT c = 1; c <= (SQLUSMALLINT) cols; c++) {
                        bool null;
                        int64_t bytes = 0;
                        if (hash_column(st, c, md, buf, 1 << 16, &null, &bytes) < 0) {
                                r = -1;
                                goto out;
                        }
                        EVP_DigestUpdate(md, null ? "\1" : "\0", 1); /* NULL apart from "" */
                }
        }
        digest_hex(md, hex);
        *ret_rows = rows;
out:
        if (st)
                SQLFreeHandle(SQL_HANDLE_STMT, st);
        EVP_MD_CTX_free(md);
        free(buf);
        return r;
}
