/* SPDX-License-Identifier: MIT */
/*
 * The helpers every test says its checks with (testutil.h): JSON fields, the
 * mock's stats, PAS counts, the test configuration, the check for patient
 * identifiers and secrets, and a run of ersd put through it.  Not the mock,
 * the processes or ODBC (harness.c), nor the PAS against e-RS (verify.c).
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

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifndef UNDER_ASAN
#define UNDER_ASAN 0
#endif

bool run_instrumented(void) {
        const char *preload = getenv("LD_PRELOAD");

        return UNDER_ASAN || (preload && strstr(preload, "vgpreload"));
}

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

/* ---- patient identifiers and secrets ------------------------------------- */

/* Whether c may stand next to an NHS number: not a digit, letter, '_' or '-'
 * (digits inside a longer run, a hex word or a UUID are not one). */
static bool edge(char c) {
        return !(c >= '0' && c <= '9') && !(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && c != '_' && c != '-';
}

static bool digit(char c) {
        return c >= '0' && c <= '9';
}

/* The NHS number's check: modulus 11 over the first nine digits. */
static bool modulus_11(const char d[10]) {
        int s = 0;

        for (int i = 0; i < 9; i++)
                s += (d[i] - '0') * (10 - i);
        int c = 11 - s % 11;
        if (c == 11)
                c = 0;
        return c != 10 && c == d[9] - '0';
}

/* Whether an NHS number starts at p (p[-1], if any, is an edge): ten digits,
 * or 3-3-4 with one space or one hyphen in both places, then an edge. */
static bool nhs_number_at(const char *p) {
        static const int group[] = { 3, 3, 4 };
        char d[10];
        char sep = '\0';
        int k = 0;

        for (int g = 0; g < 3; g++) {
                if (g > 0) {
                        char c = *p == ' ' || *p == '-' ? *p : '\0';
                        if (g == 1)
                                sep = c;
                        else if (c != sep)
                                return false;
                        if (c)
                                p++;
                }
                for (int i = 0; i < group[g]; i++, p++) {
                        if (!digit(*p))
                                return false;
                        d[k++] = *p;
                }
        }
        return (*p == '\0' || edge(*p)) && modulus_11(d);
}

/* The byte offset of the first NHS number in text, or -1. */
static long nhs_number_in(const char *text) {
        for (const char *p = text; *p; p++)
                if (digit(*p) && (p == text || edge(p[-1])) && nhs_number_at(p))
                        return (long) (p - text);
        return -1;
}

#define SECRETS_LIST "tests/secrets.list"

/* The entries of tests/secrets.list, read once; NULL-terminated. */
static const char *const *secrets(void) {
        static char text[4096];
        static const char *list[64];
        static bool loaded;

        if (loaded)
                return list;
        FILE *f = fopen(SECRETS_LIST, "re");
        size_t len = f ? fread(text, 1, sizeof text - 1, f) : 0;
        if (!f || ferror(f) || !feof(f)) {
                if (f)
                        fclose(f);
                fail_msg("%s: cannot be read whole (the tests run from the project root)", SECRETS_LIST);
        }
        fclose(f);
        text[len] = '\0';
        size_t n = 0;
        for (char *line = text; line; ) {
                char *end = strchr(line, '\n');
                if (end)
                        *end = '\0';
                if (*line && *line != '#') {
                        if (n + 1 >= sizeof list / sizeof list[0])
                                fail_msg("%s: more entries than %zu", SECRETS_LIST, sizeof list / sizeof list[0] - 1);
                        list[n++] = line;
                }
                line = end ? end + 1 : NULL;
        }
        list[n] = NULL;
        loaded = true;
        return list;
}

/* Where text holds `needle` (NULL or empty: nowhere): its offset, or -1. */
static long find(const char *text, const char *needle) {
        const char *at = needle && *needle ? strstr(text, needle) : NULL;
        return at ? (long) (at - text) : -1;
}

/* Where text holds NHS number `nhs` in any of its printed forms: ten digits, 3-3-4 with
 * spaces or hyphens.  Its offset, or -1. */
static long find_nhs(const char *text, const char *nhs) {
        char spaced[16], hyphened[16];
        long at = find(text, nhs);

        if (at >= 0 || strlen(nhs) != 10)
                return at;
        snprintf(spaced, sizeof spaced, "%.3s %.3s %.4s", nhs, nhs + 3, nhs + 6);
        snprintf(hyphened, sizeof hyphened, "%.3s-%.3s-%.4s", nhs, nhs + 3, nhs + 6);
        at = find(text, spaced);
        return at >= 0 ? at : find(text, hyphened);
}

const char *patient_identifier_in(const char *text, json_object *manifest, const char *const *also, long *ret_at) {
        static const char *const tokens[][2] = {
                { "Bearer ", "a bearer token" },
                { "eyJ", "a JWT" },
                { "PRIVATE KEY", "a private key" },
        };
        json_object *refs = manifest ? json_object_object_get(manifest, "referrals") : NULL;
        const char *kind = NULL;
        long at = -1;

        if (!text)
                return NULL;
        for (size_t i = 0; !kind && refs && i < json_object_array_length(refs); i++) {
                json_object *r = json_object_array_get_idx(refs, i);
                const char *nhs = jstr(r, "nhs_number");
                if (nhs && (at = find_nhs(text, nhs)) >= 0)
                        kind = "an NHS number of the fixtures";
                else if ((at = find(text, jstr(r, "state_comment"))) >= 0)
                        kind = "a state comment (free text) of the fixtures";
        }
        if (!kind && (at = nhs_number_in(text)) >= 0)
                kind = "an NHS number (ten digits passing modulus 11)";
        for (size_t i = 0; !kind && i < sizeof tokens / sizeof tokens[0]; i++)
                if ((at = find(text, tokens[i][0])) >= 0)
                        kind = tokens[i][1];
        for (const char *const *s = secrets(); !kind && *s; s++)
                if ((at = find(text, *s)) >= 0)
                        kind = "a secret of " SECRETS_LIST;
        for (size_t i = 0; !kind && also && also[i]; i++)
                if ((at = find(text, also[i])) >= 0)
                        kind = "an identifier or secret of the test";
        if (kind)
                *ret_at = at;
        return kind;
}

void assert_no_patient_identifier(const char *what, const char *text, json_object *manifest,
                                  const char *const *also) {
        long at = -1;
        const char *kind = patient_identifier_in(text, manifest, also, &at);

        if (kind)
                fail_msg("%s: %s at byte %ld", what, kind, at);
}

/* ---- ersd ------------------------------------------------------------------ */

struct run run_ersd(const char *conf, json_object *manifest, const char *const *args, const struct run_opts *o) {
        const char *a0 = args && args[0] ? args[0] : "", *a1 = args && args[0] && args[1] ? args[1] : "";
        char what[200];
        struct run r;
        int e = ersd_run_full(conf, args, o, &r);

        if (e < 0)
                fail_msg("ersd %s %s: could not be run: %s", a0, a1, strerror(-e));
        snprintf(what, sizeof what, "ersd %s %s: stdout", a0, a1);
        assert_no_patient_identifier(what, r.out, manifest, NULL);
        snprintf(what, sizeof what, "ersd %s %s: stderr", a0, a1);
        assert_no_patient_identifier(what, r.err, manifest, NULL);
        return r;
}
