/* SPDX-License-Identifier: MIT */
/*
 * SQLite, through unixODBC and the SQLite3 ODBC driver (Debian
 * libsqliteodbc; "Driver=SQLite3;Database=/path/pas.db").
 *
 * What differs from the other vendors:
 *  - Types: SQLite keeps the declared types as written (they steer the
 *    driver's SQLDescribeCol and the column affinity); a PRIMARY KEY that is
 *    not an INTEGER PRIMARY KEY admits NULL in SQLite, hence the explicit
 *    NOT NULLs.  SQLite does not enforce VARCHAR(n) lengths.
 *  - Lock wait: only the driver's "Timeout=" attribute bounds it.  Measured
 *    with 0.9998: on SQLITE_BUSY the driver retries the statement until
 *    Timeout ms have passed since the first attempt, each attempt also
 *    running SQLite's busy handler (the driver's own, Timeout ms, unless a
 *    PRAGMA busy_timeout replaced it), so a statement gives up after about
 *    2 x Timeout; without the attribute that is 100 s, and Timeout=0 waits
 *    for ever.  We add Timeout=5000 (a lock held elsewhere becomes -EAGAIN
 *    after ~10 s) and no PRAGMA busy_timeout, which would only stack on top.
 *  - Session: WAL journal (readers such as the PAS or a DBA's browser do not
 *    block the daemon's commit, nor it them) and foreign keys enforced.  An
 *    operator's "Timeout=" or "JournalMode=" in the connection string wins
 *    (e.g. JournalMode=DELETE on a file system without shared memory).
 *  - Errors: the driver reports every SQLite error as SQLSTATE HY000 with the
 *    SQLite result code as the native error (and at the end of the text, e.g.
 *    "database is locked (5)"); SQLITE_BUSY and SQLITE_LOCKED are transient.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "adapter.h"
#include "odbc.h"

#define SQLITE_DRIVER_TIMEOUT "5000" /* ms: the driver's Timeout= attribute (see above) */

#define SQLITE_BUSY_ 5   /* SQLITE_BUSY: another connection holds the lock */
#define SQLITE_LOCKED_ 6 /* SQLITE_LOCKED: a conflict inside this connection's cache */

/* Keep identical to adapters/sql/sqlite.sql (tests/unit/test_pas.c compares them). */
static const char *const sqlite_ddl[] = {
        "CREATE TABLE IF NOT EXISTS ers_schema_version (\n"
        "    version INTEGER NOT NULL\n"
        ")",

        "CREATE TABLE IF NOT EXISTS ers_referral (\n"
        "    ubrn CHAR(12) NOT NULL PRIMARY KEY,\n"
        "    version BIGINT NOT NULL,\n"
        "    nhs_number VARCHAR(10), -- PATIENT IDENTIFIER\n"
        "    nhs_number_valid SMALLINT NOT NULL,\n"
        "    priority VARCHAR(32),\n"
        "    state VARCHAR(64),\n"
        "    state_reason VARCHAR(64),\n"
        "    state_comment TEXT,\n"
        "    specialty VARCHAR(64),\n"
        "    specialty_display VARCHAR(255),\n"
        "    service_id VARCHAR(16),\n"
        "    service_name VARCHAR(255),\n"
        "    referral_type VARCHAR(64),\n"
        "    pathway_start VARCHAR(40),\n"
        "    clinical_info_first_submitted VARCHAR(40),\n"
        "    appointment_start VARCHAR(40),\n"
        "    appointment_end VARCHAR(40),\n"
        "    commissioning_org VARCHAR(16),\n"
        "    request_id VARCHAR(64),\n"
        "    status VARCHAR(32),\n"
        "    intent VARCHAR(32),\n"
        "    worklist VARCHAR(64),\n"
        "    first_synced_at VARCHAR(32) NOT NULL,\n"
        "    last_synced_at VARCHAR(32) NOT NULL\n"
        ")",

        "CREATE TABLE IF NOT EXISTS ers_referral_related (\n"
        "    ubrn CHAR(12) NOT NULL,\n"
        "    related_ubrn CHAR(12) NOT NULL,\n"
        "    PRIMARY KEY (ubrn, related_ubrn)\n"
        ")",

        "CREATE TABLE IF NOT EXISTS ers_document (\n"
        "    document_id CHAR(36) NOT NULL PRIMARY KEY,\n"
        "    ubrn CHAR(12) NOT NULL,\n"
        "    source_ubrn CHAR(12) NOT NULL,\n"
        "    kind VARCHAR(16) NOT NULL,\n"
        "    attachment_id VARCHAR(64) NOT NULL,\n"
        "    revision INTEGER NOT NULL,\n"
        "    source_version BIGINT NOT NULL,\n"
        "    title VARCHAR(255),\n"
        "    content_type VARCHAR(128),\n"
        "    declared_size BIGINT,\n"
        "    availability VARCHAR(32),\n"
        "    attached_by_user VARCHAR(32),\n"
        "    attached_by_org VARCHAR(16),\n"
        "    created VARCHAR(40),\n"
        "    fetch_status VARCHAR(16) NOT NULL,\n"
        "    not_fetched_reason VARCHAR(255),\n"
        "    size_bytes BIGINT,\n"
        "    sha256 CHAR(64),\n"
        "    part_count INTEGER,\n"
        "    stored_at VARCHAR(32) NOT NULL,\n"
        "    UNIQUE (ubrn, source_ubrn, attachment_id, revision)\n"
        ")",

        "CREATE INDEX IF NOT EXISTS ers_document_ubrn ON ers_document (ubrn)",

        "CREATE TABLE IF NOT EXISTS ers_document_part (\n"
        "    document_id CHAR(36) NOT NULL REFERENCES ers_document (document_id),\n"
        "    seq INTEGER NOT NULL,\n"
        "    data BLOB NOT NULL,\n"
        "    PRIMARY KEY (document_id, seq)\n"
        ")",

        "CREATE TABLE IF NOT EXISTS ers_ledger (\n"
        "    ubrn CHAR(12) NOT NULL PRIMARY KEY,\n"
        "    version BIGINT NOT NULL,\n"
        "    complete SMALLINT NOT NULL,\n"
        "    worklist VARCHAR(64),\n"
        "    correlation_id VARCHAR(36),\n"
        "    synced_at VARCHAR(32) NOT NULL\n"
        ")",

        "CREATE VIEW IF NOT EXISTS ers_referral_inbox AS\n"
        "SELECT r.ubrn,\n"
        "       r.nhs_number, -- PATIENT IDENTIFIER\n"
        "       r.nhs_number_valid,\n"
        "       r.priority,\n"
        "       r.state,\n"
        "       r.specialty,\n"
        "       r.specialty_display,\n"
        "       r.service_id,\n"
        "       r.service_name,\n"
        "       r.appointment_start,\n"
        "       r.appointment_end,\n"
        "       r.worklist,\n"
        "       (SELECT COUNT(*) FROM ers_document d\n"
        "         WHERE d.ubrn = r.ubrn AND d.fetch_status = 'FETCHED'\n"
        "           AND d.revision = (SELECT MAX(d2.revision) FROM ers_document d2\n"
        "                              WHERE d2.ubrn = d.ubrn AND d2.source_ubrn = d.source_ubrn\n"
        "                                AND d2.attachment_id = d.attachment_id)) AS documents_fetched,\n"
        "       (SELECT COUNT(*) FROM ers_document d\n"
        "         WHERE d.ubrn = r.ubrn AND d.fetch_status = 'NOT_FETCHED') AS documents_not_fetched,\n"
        "       r.last_synced_at\n"
        "  FROM ers_referral r",

        NULL,
};

static const char *const *sqlite_schema(void) {
        return sqlite_ddl;
}

static int sqlite_connect_options(const char *connection, char *ret, size_t n) {
        size_t len = strlen(connection);
        int w;

        if (odbc_connstr_has(connection, "Timeout"))
                return adapter_connect_options_default(connection, ret, n);
        while (len > 0 && (connection[len - 1] == ';' || connection[len - 1] == ' '))
                len--;
        w = snprintf(ret, n, "%.*s;Timeout=" SQLITE_DRIVER_TIMEOUT, (int) len, connection);
        return w < 0 || (size_t) w >= n ? -ENAMETOOLONG : 0;
}

static int sqlite_session(struct pas *p, const char *connection, struct errbuf *e) {
        int r;

        r = odbc_exec(p, "enable foreign keys", "PRAGMA foreign_keys = ON", e);
        if (r < 0)
                return r;
        if (!odbc_connstr_has(connection, "JournalMode")) {
                /* Answers the mode now in force; a file system that cannot do
                 * WAL keeps the old one, which is still correct, only slower. */
                r = odbc_exec(p, "set WAL journal", "PRAGMA journal_mode = WAL", e);
                if (r < 0)
                        return r;
        }
        return 0;
}

static int sqlite_classify(const char *sqlstate, long native, const char *message, bool in_commit) {
        (void) sqlstate, (void) in_commit;

        /* extended result codes (SQLITE_BUSY_SNAPSHOT = 517, …) keep the primary code in the low byte */
        switch (native & 0xff) {
        case SQLITE_BUSY_:
        case SQLITE_LOCKED_:
                return -EAGAIN;
        default:
                break;
        }
        if (native == 0 && message &&
            (strstr(message, "database is locked") || strstr(message, "database table is locked")))
                return -EAGAIN;
        return 0;
}

static const struct adapter_ops sqlite_ops = {
        .schema = sqlite_schema,
        .connect_options = sqlite_connect_options,
        .session = sqlite_session,
        .classify = sqlite_classify,
        .lock_writer = adapter_lock_writer_default,
};

const struct adapter adapter_sqlite = {
        .name = "sqlite",
        .dbms_name = "SQLite",
        .ops = &sqlite_ops,
};
