/* SPDX-License-Identifier: MIT */
/*
 * The adapters this build knows (one line per adapters/<vendor>.c), finding
 * one by name or by the DBMS a driver reports, and the defaults for the ops
 * slots an adapter leaves unused (adapter.h).  Not here: the ops themselves
 * (adapters/<vendor>.c) and what is done with them (pas_open() connects).
 */
#include "adapter.h"

#include <errno.h>
#include <string.h>
#include <strings.h>

#include "pas_internal.h"

const struct adapter *const adapters[] = {
        &adapter_sqlite,
        &adapter_postgresql,
        &adapter_mariadb,
        &adapter_sqlserver,
        &adapter_oracle,
};
const size_t n_adapters = sizeof adapters / sizeof adapters[0];

const char adapter_names[] = "sqlite, postgresql, mariadb, sqlserver, oracle";

const struct adapter *adapter_by_name(const char *name) {
        if (!name)
                return NULL;
        for (size_t i = 0; i < sizeof adapters / sizeof adapters[0]; i++)
                if (strcmp(adapters[i]->name, name) == 0)
                        return adapters[i];
        return NULL;
}

const struct adapter *adapter_by_dbms(const char *dbms_name) {
        if (!dbms_name)
                return NULL;
        for (size_t i = 0; i < sizeof adapters / sizeof adapters[0]; i++) {
                const char *prefix = adapters[i]->dbms_name;
                while (*prefix) {
                        size_t len = strcspn(prefix, "|");
                        if (len > 0 && strncasecmp(dbms_name, prefix, len) == 0)
                                return adapters[i];
                        prefix += len + (prefix[len] == '|');
                }
        }
        return NULL;
}

int adapter_environment_default(struct errbuf *e) {
        (void) e;
        return 0;
}

int adapter_connect_options_default(const char *connection, char *ret, size_t n) {
        size_t len = strlen(connection);

        if (len >= n)
                return -ENAMETOOLONG;
        memmove(ret, connection, len + 1); /* ret may be connection itself */
        return 0;
}

int adapter_session_default(struct pas *p, const char *connection, struct errbuf *e) {
        (void) p, (void) connection, (void) e;
        return 0;
}

int adapter_classify_default(const char *sqlstate, long native, const char *message, bool in_commit) {
        (void) sqlstate, (void) native, (void) message, (void) in_commit;
        return 0;
}

int adapter_check_statement_default(struct pas *p, const char *sql, struct errbuf *e) {
        (void) p, (void) sql, (void) e;
        return 0;
}

int adapter_lock_writer_default(struct pas *p, struct errbuf *e) {
        (void) p, (void) e;
        return 0;
}

void adapter_unlock_writer_default(struct pas *p) {
        (void) p;
}
