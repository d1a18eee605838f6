/* SPDX-License-Identifier: MIT */
/*
 * The staging schema (pas.h): pas_init_schema() creates it, or upgrades one
 * of an older version in place with the adapter's steps (schema.h), in one
 * transaction; pas_check_schema() refuses to start on a schema that is
 * absent, of another version, or missing a table or column.  Not here: the
 * DDL itself (schema.h, adapters/<vendor>.c, adapters/sql/) and the probes
 * the check runs (pas_sql.c).
 */
#include "pas.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "adapter.h"
#include "odbc.h"
#include "pas_internal.h"
#include "schema.h"

#define PAS_SCHEMA_VERSION 5   /* the staging schema version this build writes (2: patient matching; 3: retry,
                                  budget, poll, audit; 4: e-RS text kept whole, documents keyed by attachment_key;
                                  5: every A005 element, the answers as received, the outbox) */

/* "CREATE TABLE IF NOT EXISTS ers_referral" from a DDL statement, for error lines. */
static void ddl_label(const char *sql, char *ret, size_t n) {
        size_t o = 0;

        while (*sql && (*sql == '-' || isspace((unsigned char) *sql))) {
                if (*sql == '-') /* a leading comment line */
                        while (*sql && *sql != '\n')
                                sql++;
                else
                        sql++;
        }
        /* a guarded statement (IF OBJECT_ID(…) IS NULL, a PL/SQL block) is named by what it creates */
        if (strncmp(sql, "CREATE", 6) != 0 && strstr(sql, "CREATE "))
                sql = strstr(sql, "CREATE ");
        for (; *sql && *sql != '(' && *sql != '\n' && o + 1 < n; sql++)
                ret[o++] = *sql;
        while (o > 0 && ret[o - 1] == ' ')
                o--;
        ret[o] = '\0';
}

static int read_schema_version(struct pas *p, int64_t *ret_version, size_t *ret_rows, struct errbuf *e) {
        const char *what = statements[ST_VERSION_GET].what;
        SQLHSTMT h = SQL_NULL_HSTMT;
        size_t rows = 0;
        int64_t version = 0;
        int r;

        r = run(p, ST_VERSION_GET, NULL, 0, &h, NULL, e);
        if (r < 0)
                return r;
        while ((r = fetch(p, h, what, e)) > 0) {
                int64_t v = 0;
                r = get_int64(p, h, 1, what, &v, NULL, e);
                if (r < 0)
                        break;
                if (rows++ == 0)
                        version = v;
        }
        stmt_close(h);
        if (r < 0)
                return r;
        *ret_version = version;
        *ret_rows = rows;
        return 0;
}

static int version_mismatch(size_t rows, int64_t version, struct errbuf *e) {
        return err_set(e, -EPROTO, "ers_schema_version holds %zu row(s), version %lld; this build writes version %d",
                       rows, (long long) version, PAS_SCHEMA_VERSION);
}

/* Runs the steps that bring a schema of version `from` up to this build's,
 * inside the caller's transaction (schema.h says when a step runs). */
static int upgrade_schema(struct pas *p, const struct schema_step *steps, struct errbuf *e) {
        for (size_t i = 0; steps[i].sql || steps[i].run; i++) {
                char label[96];
                bool has = false;
                int r;

                if (steps[i].table) {
                        r = catalog_has(p, steps[i].table, NULL, &has, e);
                        if (r < 0)
                                return r;
                        if (!has)
                                continue; /* a table not there yet: STAGING_SCHEMA_DDL creates it whole */
                }
                if (steps[i].table && steps[i].column) {
                        r = catalog_has(p, steps[i].table, steps[i].column, &has, e);
                        if (r < 0)
                                return r;
                        if (has)
                                continue; /* added by an earlier, interrupted run */
                }
                snprintf(label, sizeof label, "upgrade step %zu", i + 1);
                if (steps[i].sql)
                        r = odbc_exec(p, label, steps[i].sql, e);
                else if ((r = steps[i].run(p, e)) < 0)
                        err_prefix(e, r, "%s", label);
                if (r < 0)
                        return r;
        }
        return 0;
}

int pas_init_schema(struct pas_tx *tx, struct errbuf *e) {
        struct pas *p = tx_pas(tx);
        const char *const *ddl = p->adapter->ops->schema();
        const struct schema_step *steps = NULL;
        int64_t version = 0, from = 0;
        size_t rows = 0;
        bool exists;
        int r;

        /* Another version's schema is left alone, before any DDL (which some
         * DBMSs commit at once), unless the adapter knows the way up from it. */
        r = catalog_has(p, "ers_schema_version", NULL, &exists, e);
        if (r >= 0 && exists) {
                r = read_schema_version(p, &version, &rows, e);
                if (r >= 0 && rows == 1 && version != PAS_SCHEMA_VERSION && version > 0)
                        steps = p->adapter->ops->upgrade(version);
                if (steps)
                        from = version;
                else if (r >= 0 && rows > 0 && (rows != 1 || version != PAS_SCHEMA_VERSION))
                        r = version_mismatch(rows, version, e);
        }
        if (r < 0)
                goto fail;
        if (steps) {
                r = upgrade_schema(p, steps, e);
                if (r < 0) {
                        err_prefix(e, r, "from version %lld", (long long) from);
                        goto fail;
                }
        }
        for (size_t i = 0; ddl[i]; i++) {
                char label[96];

                ddl_label(ddl[i], label, sizeof label);
                r = odbc_exec(p, label, ddl[i], e);
                if (r < 0)
                        goto fail;
        }
        r = read_schema_version(p, &version, &rows, e);
        if (r < 0)
                goto fail;
        if (rows == 0) {
                struct param ps[] = { P_INT(PAS_SCHEMA_VERSION) };
                r = run(p, ST_VERSION_INSERT, ps, 1, NULL, NULL, e);
                if (r < 0)
                        goto fail;
        } else if (rows == 1 && from > 0 && version == from) {
                struct param ps[] = { P_INT(PAS_SCHEMA_VERSION) };
                r = run(p, ST_VERSION_UPDATE, ps, 1, NULL, NULL, e);
                if (r < 0)
                        goto fail;
        } else if (rows != 1 || version != PAS_SCHEMA_VERSION) {
                r = version_mismatch(rows, version, e);
                goto fail;
        }
        return 0;
fail:
        return err_prefix(e, r, "create schema");
}

int pas_check_schema(struct pas *p, struct errbuf *e) {
        int64_t version;
        size_t rows;
        bool exists;
        int r;

        r = catalog_has(p, "ers_schema_version", NULL, &exists, e);
        if (r < 0)
                return r;
        if (!exists)
                return err_set(e, -ENOENT,
                               "the staging schema is absent (no ers_schema_version): create it with "
                               "ersd --init-db or adapters/sql/%s.sql",
                               p->adapter->name);
        r = read_schema_version(p, &version, &rows, e);
        if (r < 0)
                return r;
        if (rows == 1 && version < PAS_SCHEMA_VERSION && p->adapter->ops->upgrade(version))
                return err_set(e, -EPROTO,
                               "the staging schema is version %lld; this build writes version %d: upgrade it "
                               "in place with ersd --init-db (docs/schema.md)",
                               (long long) version, PAS_SCHEMA_VERSION);
        if (rows != 1 || version != PAS_SCHEMA_VERSION)
                return version_mismatch(rows, version, e);
        for (size_t i = 0; i < n_schema_objects; i++) {
                char what[96];

                snprintf(what, sizeof what, "schema check %s", schema_objects[i].name);
                r = odbc_exec(p, what, schema_objects[i].probe, e);
                if (r < 0)
                        return r == -EIO ? err_prefix(e, -EPROTO, "staging schema incomplete") : r;
        }
        return 0;
}
