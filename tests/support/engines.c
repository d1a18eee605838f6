/* SPDX-License-Identifier: MIT */
#include "engines.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <glob.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <pwd.h>
#include <signal.h>
#include <sql.h>
#include <sqlext.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define READY_TIMEOUT_S 60 /* a guard against a hung start, not a wait */

static double now_s(void) {
        struct timespec t;

        clock_gettime(CLOCK_MONOTONIC, &t);
        return (double) t.tv_sec + (double) t.tv_nsec / 1e9;
}

/* A port nobody listens on now.  The kernel picks it; the server binds it
 * a moment later (a start that loses the race is retried). */
static int free_port(void) {
        struct sockaddr_in a = { .sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK) };
        socklen_t len = sizeof a;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), port = -1;

        if (fd < 0)
                return -errno;
        if (bind(fd, (struct sockaddr *) &a, sizeof a) == 0 && getsockname(fd, (struct sockaddr *) &a, &len) == 0)
                port = ntohs(a.sin_port);
        close(fd);
        return port;
}

/* The unprivileged account a server runs as when we are root; NULL otherwise. */
static const struct passwd *server_user(const struct engine *g) {
        if (geteuid() != 0 || g->kind == ENGINE_SQLITE) /* no server: the files are the tests' own */
                return NULL;
        return getpwnam(g->kind == ENGINE_POSTGRESQL ? "postgres" : "mysql");
}

/*
 * Runs argv with stdout and stderr appended to `log`, as the server user when
 * we are root.  `wait`: run to the end and return its exit status; otherwise
 * return the pid of the child, which dies with us (`deathsig`).
 */
static pid_t spawn(const struct engine *g, char *const *argv, const char *log, bool wait_exit, int deathsig) {
        const struct passwd *pw = server_user(g);
        pid_t parent = getpid(), pid;
        int status;

        if (geteuid() == 0 && !pw) {
                fprintf(stderr, "engine %s: no account to run the server as\n", g->name);
                return -ENOENT;
        }
        pid = fork();
        if (pid < 0)
                return -errno;
        if (pid == 0) {
                int fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
                if (fd >= 0) {
                        dup2(fd, STDOUT_FILENO);
                        dup2(fd, STDERR_FILENO);
                }
                if (pw && (setgroups(0, NULL) < 0 || setgid(pw->pw_gid) < 0 || setuid(pw->pw_uid) < 0))
                        _exit(126);
                /* after setuid: a change of credentials clears the death signal */
                prctl(PR_SET_PDEATHSIG, deathsig);
                if (getppid() != parent)
                        _exit(125);
                if (chdir(g->dir) < 0)
                        _exit(124);
                execv(argv[0], argv);
                _exit(127);
        }
        if (!wait_exit)
                return pid;
        if (waitpid(pid, &status, 0) != pid)
                return -errno;
        return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

static void print_tail(const char *path) {
        char buf[2048];
        FILE *f = fopen(path, "r");
        long size;
        size_t n;

        if (!f)
                return;
        fseek(f, 0, SEEK_END);
        size = ftell(f);
        fseek(f, size > (long) sizeof buf - 1 ? size - (long) sizeof buf + 1 : 0, SEEK_SET);
        n = fread(buf, 1, sizeof buf - 1, f);
        buf[n] = '\0';
        fclose(f);
        fprintf(stderr, "--- end of %s ---\n%s\n---\n", path, buf);
}

void engine_admin_connection(const struct engine *g, char *ret, size_t n) {
        switch (g->kind) {
        case ENGINE_POSTGRESQL:
                snprintf(ret, n,
                         "Driver=PostgreSQL Unicode;Server=127.0.0.1;Port=%d;Database=postgres;UID=postgres;"
                         "CommLog=0;Debug=0",
                         g->port);
                break;
        case ENGINE_MARIADB:
                /* root@localhost over the socket: the only account mariadb-install-db makes */
                snprintf(ret, n, "Driver=MariaDB Unicode;Server=localhost;Socket=%s/mariadb.sock;UID=root", g->dir);
                break;
        case ENGINE_SQLITE:
                snprintf(ret, n, "Driver=SQLite3;Database=%s/admin.db", g->dir);
                break;
        }
}

int engine_exec(const char *connection, const char *sql, bool quiet) {
        SQLHENV env = SQL_NULL_HENV;
        SQLHDBC dbc = SQL_NULL_HDBC;
        SQLHSTMT st = SQL_NULL_HSTMT;
        SQLCHAR state[6] = "", msg[512] = "";
        SQLINTEGER native;
        SQLSMALLINT len;
        int r = -1;

        SQLAllocHandle(SQL_HANDLE_ENV, SQL_NULL_HANDLE, &env);
        SQLSetEnvAttr(env, SQL_ATTR_ODBC_VERSION, (SQLPOINTER) SQL_OV_ODBC3, 0);
        SQLAllocHandle(SQL_HANDLE_DBC, env, &dbc);
        if (!SQL_SUCCEEDED(SQLDriverConnect(dbc, NULL, (SQLCHAR *) connection, SQL_NTS, NULL, 0, NULL,
                                            SQL_DRIVER_NOPROMPT))) {
                if (!quiet) {
                        SQLGetDiagRec(SQL_HANDLE_DBC, dbc, 1, state, &native, msg, sizeof msg, &len);
                        fprintf(stderr, "engine: connect: SQLSTATE %s: %s\n", state, msg);
                }
                goto out;
        }
        r = 0;
        if (sql) {
                SQLRETURN rc;

                SQLAllocHandle(SQL_HANDLE_STMT, dbc, &st);
                rc = SQLExecDirect(st, (SQLCHAR *) sql, SQL_NTS);
                if (rc != SQL_NO_DATA && !SQL_SUCCEEDED(rc)) {
                        if (!quiet) {
                                SQLGetDiagRec(SQL_HANDLE_STMT, st, 1, state, &native, msg, sizeof msg, &len);
                                fprintf(stderr, "engine: %s: SQLSTATE %s: %s\n", sql, state, msg);
                        }
                        r = -2;
                }
                SQLFreeHandle(SQL_HANDLE_STMT, st);
        }
        SQLDisconnect(dbc);
out:
        SQLFreeHandle(SQL_HANDLE_DBC, dbc);
        SQLFreeHandle(SQL_HANDLE_ENV, env);
        return r;
}

static int admin_exec(const struct engine *g, const char *sql, bool quiet) {
        char conn[512];

        engine_admin_connection(g, conn, sizeof conn);
        return engine_exec(conn, sql, quiet);
}

/* Polls by connecting until the server answers, or it exits, or the guard expires. */
static int wait_ready(struct engine *g, const char *log) {
        double deadline = now_s() + READY_TIMEOUT_S;
        struct timespec pause = { .tv_nsec = 20 * 1000 * 1000 }; /* between two polls */

        for (;;) {
                int status;

                if (admin_exec(g, NULL, true) == 0)
                        return 0;
                if (waitpid(g->pid, &status, WNOHANG) == g->pid) {
                        g->pid = 0;
                        fprintf(stderr, "engine %s: the server exited before it was ready\n", g->name);
                        print_tail(log);
                        return -ECHILD;
                }
                if (now_s() > deadline) {
                        fprintf(stderr, "engine %s: not ready after %d s\n", g->name, READY_TIMEOUT_S);
                        print_tail(log);
                        return -ETIMEDOUT;
                }
                nanosleep(&pause, NULL);
        }
}

static int make_dir(struct engine *g) {
        const char *tmp = getenv("TMPDIR");
        const struct passwd *pw = server_user(g);

        snprintf(g->dir, sizeof g->dir, "%s/ersd-%s-XXXXXX", tmp && *tmp ? tmp : "/tmp", g->name);
        if (!mkdtemp(g->dir)) {
                g->dir[0] = '\0';
                return -errno;
        }
        if (pw && chown(g->dir, pw->pw_uid, pw->pw_gid) < 0)
                return -errno;
        return 0;
}

static int run_postgresql(struct engine *g, const char *log);

static int start_postgresql(struct engine *g, const char *log) {
        char initdb[300], postgres[300], data[300];
        glob_t gl;
        int r;

        /* the newest installed major version */
        if (glob("/usr/lib/postgresql/*/bin/initdb", 0, NULL, &gl) != 0 || gl.gl_pathc == 0) {
                fprintf(stderr, "engine postgresql: no /usr/lib/postgresql/*/bin/initdb (Debian package postgresql)\n");
                return -ENOENT;
        }
        snprintf(initdb, sizeof initdb, "%s", gl.gl_pathv[gl.gl_pathc - 1]);
        globfree(&gl);
        snprintf(postgres, sizeof postgres, "%.*s/postgres", (int) (strrchr(initdb, '/') - initdb), initdb);
        snprintf(data, sizeof data, "%s/data", g->dir);

        char *const init_argv[] = { initdb, "-D", data, "-U", "postgres", "--auth=trust", "-E", "UTF8",
                                    "--locale=C", "--no-sync", NULL };
        r = spawn(g, init_argv, log, true, SIGKILL);
        if (r != 0) {
                fprintf(stderr, "engine postgresql: initdb exited %d\n", r);
                print_tail(log);
                return r < 0 ? r : -EIO;
        }
        snprintf(g->server, sizeof g->server, "%s", postgres);
        for (int attempt = 0; attempt < 3; attempt++) {
                g->port = free_port();
                r = run_postgresql(g, log);
                if (r != -ECHILD)
                        return r;
        }
        return r;
}

/* Starts the postmaster of g's data directory on g->port and waits until it answers. */
static int run_postgresql(struct engine *g, const char *log) {
        char data[300], port[16], sock[300];

        snprintf(data, sizeof data, "%s/data", g->dir);
        snprintf(sock, sizeof sock, "unix_socket_directories=%s", g->dir);
        snprintf(port, sizeof port, "%d", g->port);
        char *const argv[] = { g->server, "-D", data, "-p", port, "-c", "listen_addresses=127.0.0.1",
                               "-c", sock, "-c", "fsync=off", "-c", "synchronous_commit=off",
                               "-c", "full_page_writes=off", "-c", "max_connections=40", NULL };
        /* SIGQUIT: immediate shutdown, the postmaster takes its backends with it */
        g->pid = spawn(g, argv, log, false, SIGQUIT);
        if (g->pid < 0)
                return g->pid;
        return wait_ready(g, log);
}

int engine_pause(struct engine *g) {
        if (g->kind != ENGINE_POSTGRESQL || g->pid <= 0)
                return -EINVAL;
        /* Fast shutdown: every session's transaction is aborted and its connection closed. */
        kill(g->pid, SIGINT);
        waitpid(g->pid, NULL, 0);
        g->pid = 0;
        return 0;
}

int engine_resume(struct engine *g) {
        char log[300];

        if (g->kind != ENGINE_POSTGRESQL || g->pid != 0)
                return -EINVAL;
        snprintf(log, sizeof log, "%s/server.log", g->dir);
        return run_postgresql(g, log);
}

static int start_mariadb(struct engine *g, const char *log) {
        char install[] = "/usr/bin/mariadb-install-db", mariadbd[] = "/usr/sbin/mariadbd";
        char datadir[300], socket_[300], port[32], pidfile[300], tmpdir[300], basedir[] = "--basedir=/usr";
        int r;

        if (access(install, X_OK) != 0 || access(mariadbd, X_OK) != 0) {
                fprintf(stderr, "engine mariadb: no %s or %s (Debian package mariadb-server)\n", install, mariadbd);
                return -ENOENT;
        }
        snprintf(datadir, sizeof datadir, "--datadir=%s/data", g->dir);
        snprintf(socket_, sizeof socket_, "--socket=%s/mariadb.sock", g->dir);
        snprintf(pidfile, sizeof pidfile, "--pid-file=%s/mariadb.pid", g->dir);
        snprintf(tmpdir, sizeof tmpdir, "--tmpdir=%s", g->dir);

        char *const init_argv[] = { install, "--no-defaults", basedir, datadir, "--skip-test-db",
                                    "--auth-root-authentication-method=normal", NULL };
        r = spawn(g, init_argv, log, true, SIGKILL);
        if (r != 0) {
                fprintf(stderr, "engine mariadb: mariadb-install-db exited %d\n", r);
                print_tail(log);
                return r < 0 ? r : -EIO;
        }
        for (int attempt = 0; attempt < 3; attempt++) {
                g->port = free_port();
                snprintf(port, sizeof port, "--port=%d", g->port);
                char *const argv[] = { mariadbd, "--no-defaults", basedir, datadir, socket_, port, pidfile, tmpdir,
                                       "--bind-address=127.0.0.1", "--skip-log-bin",
                                       "--innodb-flush-log-at-trx-commit=0", "--innodb-buffer-pool-size=64M",
                                       "--innodb-log-file-size=48M", "--skip-name-resolve", NULL };
                g->pid = spawn(g, argv, log, false, SIGKILL);
                if (g->pid < 0)
                        return g->pid;
                r = wait_ready(g, log);
                if (r != -ECHILD)
                        break;
        }
        /* the tests connect over TCP, as ersd does: the same root there */
        if (r >= 0 && (admin_exec(g, "CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'", false) < 0 ||
                       admin_exec(g, "GRANT ALL PRIVILEGES ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION", false) < 0))
                r = -EIO;
        return r;
}

int engine_start(struct engine *g, enum engine_kind kind) {
        static const char *const names[] = { "sqlite", "postgresql", "mariadb" };
        char log[300];
        double t0 = now_s();
        int r;

        memset(g, 0, sizeof *g);
        g->kind = kind;
        g->name = names[kind];
        r = make_dir(g);
        if (r < 0) {
                fprintf(stderr, "engine %s: temp directory: %s\n", g->name, strerror(-r));
                return r;
        }
        snprintf(log, sizeof log, "%s/server.log", g->dir);
        switch (kind) {
        case ENGINE_POSTGRESQL:
                r = start_postgresql(g, log);
                break;
        case ENGINE_MARIADB:
                r = start_mariadb(g, log);
                break;
        case ENGINE_SQLITE:
                r = 0;
                break;
        }
        g->startup_s = now_s() - t0;
        if (r < 0)
                engine_stop(g);
        return r;
}

static int rm_one(const char *path, const struct stat *st, int flag, struct FTW *ftw) {
        (void) st, (void) flag, (void) ftw;
        remove(path);
        return 0;
}

void engine_stop(struct engine *g) {
        if (g->pid > 0) {
                /* PostgreSQL: SIGINT is the fast shutdown; MariaDB: SIGTERM */
                kill(g->pid, g->kind == ENGINE_POSTGRESQL ? SIGINT : SIGTERM);
                waitpid(g->pid, NULL, 0);
                g->pid = 0;
        }
        if (g->dir[0]) {
                nftw(g->dir, rm_one, 16, FTW_DEPTH | FTW_PHYS);
                g->dir[0] = '\0';
        }
}

int engine_new_database(struct engine *g, char *ret, size_t n) {
        char sql[128];
        int id = ++g->databases;

        switch (g->kind) {
        case ENGINE_SQLITE:
                snprintf(ret, n, "Driver=SQLite3;Database=%s/pas-%d.db", g->dir, id);
                return 0;
        case ENGINE_POSTGRESQL:
                snprintf(sql, sizeof sql, "CREATE DATABASE pas_%d", id);
                if (admin_exec(g, sql, false) < 0)
                        return -EIO;
                snprintf(ret, n, "Driver=PostgreSQL Unicode;Server=127.0.0.1;Port=%d;Database=pas_%d;UID=postgres",
                         g->port, id);
                return 0;
        case ENGINE_MARIADB:
                snprintf(sql, sizeof sql, "CREATE DATABASE pas_%d", id);
                if (admin_exec(g, sql, false) < 0)
                        return -EIO;
                snprintf(ret, n, "Driver=MariaDB Unicode;Server=127.0.0.1;Port=%d;Database=pas_%d;UID=root", g->port,
                         id);
                return 0;
        }
        return -EINVAL;
}

int engine_odbcinst(const char *dir, const char *logs) {
        const char *sys = getenv("ODBCSYSINI");
        char in_path[PATH_MAX], out_path[PATH_MAX], line[1024];
        bool pg = false;
        FILE *in, *out;

        snprintf(in_path, sizeof in_path, "%s/odbcinst.ini", sys && *sys ? sys : "/etc");
        snprintf(out_path, sizeof out_path, "%s/odbcinst.ini", dir);
        if (mkdir(logs, 0700) < 0 || !(in = fopen(in_path, "r")))
                return -1;
        out = fopen(out_path, "w");
        if (!out) {
                fclose(in);
                return -1;
        }
        while (fgets(line, sizeof line, in)) {
                if (pg && (strncasecmp(line, "CommLog", 7) == 0 || strncasecmp(line, "Logdir", 6) == 0))
                        continue;
                fputs(line, out);
                if (line[0] == '[') {
                        pg = strstr(line, "PostgreSQL") != NULL;
                        if (pg)
                                fprintf(out, "CommLog=1\nLogdir=%s\n", logs);
                }
        }
        fclose(in);
        fclose(out);
        return setenv("ODBCSYSINI", dir, 1);
}
