/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Throwaway database servers for the tests: a PostgreSQL (Debian
 * `postgresql`: initdb from /usr/lib/postgresql/<version>/bin) or a MariaDB
 * (`mariadb-server`: mariadb-install-db, mariadbd), each in its own temp
 * directory, listening on 127.0.0.1 on a free port with its socket in that
 * directory, run as `postgres` / `mysql` when the tests run as root, killed
 * with the test process if that one dies (PR_SET_PDEATHSIG), and stopped by
 * its pid.  Readiness is polled by connecting through ODBC, with the server's
 * own exit as the other way out: no fixed sleep.  SQLite needs no server: its
 * databases are files in the temp directory.
 *
 * No password: PostgreSQL trusts loopback, MariaDB's root has none (its
 * grant tables are real, so grants can be tested); a server lives for one
 * test binary.  Drivers: the Debian odbcinst.ini names "SQLite3",
 * "PostgreSQL Unicode", "MariaDB Unicode".
 */

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

enum engine_kind { ENGINE_SQLITE, ENGINE_POSTGRESQL, ENGINE_MARIADB };

struct engine {
        enum engine_kind kind;
        const char *name;     /* the adapter's name: "sqlite", "postgresql", "mariadb" */
        pid_t pid;            /* the server; 0 for SQLite or once stopped */
        int port;             /* its TCP port on 127.0.0.1 */
        char dir[256];        /* owned temp directory, removed by engine_stop */
        double startup_s;     /* seconds from initdb / install-db to the first connection */
        int databases;        /* databases made so far, for unique names */
        char server[300];     /* PostgreSQL: the postgres binary, for engine_restart */
};

/* Starts a server of `kind` (nothing for SQLite but the directory).  0 or a
 * negative errno, with the reason and the server log's tail on stderr. */
int engine_start(struct engine *g, enum engine_kind kind);

/* Stops the server by its pid (fast shutdown), waits for it, removes the
 * directory.  Accepts a never-started engine. */
void engine_stop(struct engine *g);

/* PostgreSQL: stops the server by its pid (fast shutdown: every open
 * transaction aborted, every connection closed), keeping its data; then
 * starts it again on the same port and data, waiting until it answers.
 * 0 or a negative errno. */
int engine_pause(struct engine *g);
int engine_resume(struct engine *g);

/* Makes a fresh, empty database and writes an ODBC connection string for it
 * into ret (n bytes).  0 or a negative errno. */
int engine_new_database(struct engine *g, char *ret, size_t n);

/* An ODBC connection string with administrator rights on the server (no
 * particular database), for test set-up. */
void engine_admin_connection(const struct engine *g, char *ret, size_t n);

/* Connects with `connection`, runs one constant SQL statement (NULL: just
 * connect) and disconnects.  0, -1 when it could not connect, -2 when the
 * statement failed; the driver's message on stderr unless `quiet`. */
int engine_exec(const char *connection, const char *sql, bool quiet);

/* Points this process and its children (ODBCSYSINI) at an odbcinst.ini of
 * its own in `dir`: the machine's, with psqlodbc's CommLog on (as Debian
 * ships it) and its Logdir `logs` (made here, mode 0700), so that what the
 * driver would log is seen by the tests and lands nowhere else.  0 or -1. */
int engine_odbcinst(const char *dir, const char *logs);
