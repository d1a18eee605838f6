/* SPDX-License-Identifier: MIT */
/*
 * The helpers every test says its checks with (testutil.h): JSON fields, the
 * mock's stats, PAS counts, the test configuration.  Not the mock, the
 * processes or ODBC (harness.c), nor the PAS against e-RS (verify.c).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "testutil.h"

const char *jstr(json_object *o, const char *key) {
        json_object *v = json_object_object_get(o, key);
        return v && !json_object_is_type(v, json_type_null) ? json_object_get_string(v) : NULL;
}

long long stat_count(const struct mock *m, const char *name) {
        json_object *s = mock_get(m, "/_mock/stats");
        long long v;

        if (!s)
                fail_msg("the mock's stats could not be read (GET /_mock/stats)");
        v = json_object_get_int64(json_object_object_get(s, name));
        json_object_put(s);
        return v;
}

long long q_int(struct db *d, const char *sql, const char *param) {
        const char *ps[] = { param };
        return db_int(d, sql, param ? 1 : 0, ps);
}

char *q_text(struct db *d, const char *sql, const char *param) {
        const char *ps[] = { param };
        return db_text(d, sql, param ? 1 : 0, ps, NULL);
}

/* ---- the configuration --------------------------------------------------- */

/* Whether `lines` (may be NULL) set `key`: the key at the start of a line or
 * after a ';', '{' or '(' (blanks allowed), then blanks and '=' or ':'. */
static bool sets_key(const char *lines, const char *key) {
        size_t n = strlen(key);

        for (const char *p = lines; p && (p = strstr(p, key)); p += n) {
                const char *b = p, *a = p + n;
                while (b > lines && (b[-1] == ' ' || b[-1] == '\t'))
                        b--;
                if (b != lines && !strchr("\n;{(", b[-1]))
                        continue;
                while (*a == ' ' || *a == '\t')
                        a++;
                if (*a == '=' || *a == ':')
                        return true;
        }
        return false;
}

/* The e-RS limits the tests run under, beyond production's: allowed because the mock is on
 * loopback (daemon/config.c, check_limits()).  The suite reads the same worklists hundreds of
 * times a day, as fast as the machine goes.  A test that sets a key itself keeps its value; a
 * configuration for another host gets production's limits (the defaults). */
static const char *const test_limits[][2] = {
        { "worklist_calls_per_day", " worklist_calls_per_day = 100000;" },
        { "max_requests_per_second", " max_requests_per_second = 10000;" },
};

int write_test_config(const char *path, const char *base_url, const char *ers_lines, const char *connection,
                      const char *database_lines, const char *state_dir, const char *extra) {
        char text[8192], defaults[256] = "";
        bool loopback = strstr(base_url, "://127.") || strstr(base_url, "://localhost") || strstr(base_url, "://[::1]");

        /* On the stall_timeout line, so that no line of the caller's moves. */
        if (ers_lines && !sets_key(ers_lines, "auth"))
                snprintf(defaults, sizeof defaults, " auth = \"none\";");
        for (size_t i = 0; loopback && i < sizeof test_limits / sizeof test_limits[0]; i++)
                if (!sets_key(ers_lines, test_limits[i][0]))
                        snprintf(defaults + strlen(defaults), sizeof defaults - strlen(defaults), "%s",
                                 test_limits[i][1]);
        int n = snprintf(text, sizeof text,
                         "ers: {\n"
                         "  base_url = \"%s\";\n"
                         "%s"
                         "  %s%s\n"
                         "};\n"
                         "%s"
                         "database: {\n"
                         "  connection = \"%s\";\n"
                         "%s"
                         "};\n"
                         "state_dir = \"%s\";\n"
                         "%s",
                         base_url, ers_lines ? ers_lines : "  auth = \"none\";\n",
                         sets_key(ers_lines, "stall_timeout") ? "" : "stall_timeout = 5;", defaults,
                         sets_key(extra, "worklists")
                                 ? ""
                                 : "worklists = ( { name = \"cardiology\"; list_type = \"REFERRALS_FOR_REVIEW\"; "
                                   "service = \"31001\"; } );\n",
                         connection, database_lines ? database_lines : "", state_dir, extra ? extra : "");

        if (n < 0 || (size_t) n >= sizeof text)
                return -ENAMETOOLONG;
        return write_text(path, text, 0600);
}
