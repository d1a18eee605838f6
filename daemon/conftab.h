/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * A generic table-driven loader for libconfig files (internal: conftab.c,
 * config.c, secret.c).  Each key is one row of a static table (struct key):
 * its path, its libconfig type, the parser that checks and converts the
 * value, the offset of the field it fills, whether a reload may change it,
 * whether it is required, and its default written as it would be in the
 * file.  conf_load_table() walks every setting of a group, in file order: a
 * name not in the table is an error, a wrong type is an error, otherwise the
 * row's parser runs; then each row that was not seen gets its default (through
 * the same parser) or, when required, an error.
 *
 * Every problem is reported (the walk never stops at the first one) as
 * "FILE:LINE: KEY: message", or "FILE: KEY: message" when there is no line,
 * at the file and line it was written at (an @include'd file by its own name:
 * conftext.h).  A message never quotes a string value unless the row's parser
 * checked it; err_set() makes every line safe to print.
 *
 * Not here: any key of ersd's (config.c: the tables, the parsers of its own
 * values, the checks across keys, the reload policy), secret files
 * (secret.c), reading the file and its includes (conftext.c).
 */

#include <libconfig.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "conftext.h"
#include "err.h"

#define KEY_PATH_MAX    128           /* longest key path we print or match */
#define TABLE_MAX       48            /* rows per table, for the seen[] arrays */
#define MIB             (1024 * 1024)

/* What sits at a row's offset, so that conf_field_equal() can compare it. */
enum field_kind {
        FIELD_NONE,   /* nothing, or something the row's parser handles itself */
        FIELD_STRING, /* char * */
        FIELD_LONG,   /* long */
        FIELD_INT,    /* int */
        FIELD_INT64,  /* int64_t */
        FIELD_ENUM,   /* an enum of int's size (the table's file checks it) */
};

/* The state of one load. */
struct loader {
        const char *path;          /* the file as the caller named it: the FILE of a report */
        const char *dir;           /* absolute directory of that file, for relative paths */
        const char *text;          /* the file's text with its includes, NUL-terminated */
        const struct config_text *ct; /* that text: which file and line each of its lines is */
        void (*report)(void *userdata, const char *line); /* may be NULL: each "FILE[:LINE]: message" */
        void *userdata;
        void *target;              /* the caller's struct being filled (its parsers' business) */
        unsigned n_problems;       /* reports so far */
        bool oom;                  /* an allocation failed: the load returns -ENOMEM */
};

/* A value to parse: a setting from the file, or a row's default. */
struct value {
        const config_setting_t *setting; /* NULL for a default */
        const char *str;                 /* CONFIG_TYPE_STRING */
        long long num;                   /* CONFIG_TYPE_INT */
        const char *file;                /* for reports */
        unsigned line;                   /* 0 for a default: reported without a line */
        const char *key;                 /* full path for messages, e.g. "worklists[1].name" */
};

struct key;

/* Checks v and stores it at `field`.  Returns 0, -EINVAL after reporting the
 * problem, or -ENOMEM (see conf_oom()). */
typedef int (*key_parse_fn)(struct loader *l, const struct key *k, const struct value *v,
                            void *field);

struct key {
        const char *path;       /* relative to the table's group: "ers.base_url", "name" */
        int type;               /* CONFIG_TYPE_STRING, _INT (also takes INT64), _GROUP or _LIST */
        key_parse_fn parse;     /* NULL for a plain group whose keys are further rows */
        size_t offset;          /* of the field in the table's struct */
        enum field_kind kind;   /* what is at offset */
        bool reloadable;        /* a SIGHUP may change it (see conf_field_equal()) */
        bool required;          /* missing is an error; no default */
        const char *def;        /* default as written in the file (without quotes); NULL: none */
        long long min, max;     /* range of an integer */
        long long prod_min, prod_max; /* when prod_max > 0: a narrower range the caller may enforce (ersd:
                                       * against a real e-RS; the rest of min..max on a loopback mock) */
        const void *arg;        /* the parser's: allowed names, a character rule, a sub-table */
};

/* A sub-table (a group's rows), for a parser that loads it with conf_load_table(). */
struct key_table {
        const struct key *keys;
        size_t n;
};

/* A character rule for conf_parse_chars(). */
struct chars_rule {
        const char *allowed; /* every character must be one of these */
        size_t max;          /* and there are 1..max of them */
        const char *what;    /* "must be …" in the message */
};

/* A name a string key may take and the number it stands for. */
struct choice {
        const char *name;
        int value;
};

/* What the loader knows of one row after the walk. */
struct seen {
        const config_setting_t *setting; /* where it is in the file; NULL: absent */
        bool bad;                        /* present but refused (already reported) */
};

/* Row builders, so that each table reads as a table. */
#define RELOAD   true  /* a reload may change it */
#define RESTART  false /* only a restart applies a change (see conf_field_equal()) */
#define REQUIRED true
#define OPTIONAL false

#define KEY_STRING(S, p, fn, field, reload, req, dflt, a)                                           \
        { .path = (p), .type = CONFIG_TYPE_STRING, .parse = (fn), .offset = offsetof(S, field),     \
          .kind = FIELD_STRING, .reloadable = (reload), .required = (req), .def = (dflt), .arg = (a) }
#define KEY_CHOICE(S, p, field, kind_, reload, dflt, choices)                                      \
        { .path = (p), .type = CONFIG_TYPE_STRING, .parse = conf_parse_choice_int,                       \
          .offset = offsetof(S, field), .kind = (kind_), .reloadable = (reload), .def = (dflt),      \
          .arg = (choices) }
#define KEY_INT(S, p, fn, field, kind_, reload, dflt, lo, hi)                                      \
        { .path = (p), .type = CONFIG_TYPE_INT, .parse = (fn), .offset = offsetof(S, field),        \
          .kind = (kind_), .reloadable = (reload), .def = (dflt), .min = (lo), .max = (hi) }
/* An e-RS limit: plo..phi against a real e-RS, lo..hi against a loopback mock (config.c, check_limits()). */
#define KEY_LIMIT(S, p, field, dflt, lo, hi, plo, phi)                                              \
        { .path = (p), .type = CONFIG_TYPE_INT, .parse = conf_parse_integer, .offset = offsetof(S, field), \
          .kind = FIELD_LONG, .reloadable = RELOAD, .def = (dflt), .min = (lo), .max = (hi),          \
          .prod_min = (plo), .prod_max = (phi) }
#define KEY_GROUP(p) { .path = (p), .type = CONFIG_TYPE_GROUP, .reloadable = RELOAD }
#define KEY_TABLE(p, t, fn, req, a)                                                                \
        { .path = (p), .type = (t), .parse = (fn), .reloadable = RELOAD, .required = (req), .arg = (a) }


/* Reports one problem: "FILE:LINE: message", or "FILE: message" when line is
 * 0.  err_set() replaces control characters, so no value can forge a line. */
__attribute__((format(printf, 4, 5)))
void conf_problem(struct loader *l, const char *file, unsigned line, const char *fmt, ...);

/* Reports one line as it is (already "FILE[:LINE]: message", made safe by err_set()). */
void conf_report_line(struct loader *l, const char *line);

/* The file a setting was written in (the main file's path when s is NULL). */
const char *conf_setting_file(const struct loader *l, const config_setting_t *s);

/* The line a setting was written at in that file (0: none). */
unsigned conf_setting_line(const struct loader *l, const config_setting_t *s);

/* Reports at a setting (its file and line). */
#define problem_at(l, s, ...) conf_problem((l), conf_setting_file((l), (s)), conf_setting_line((l), (s)), __VA_ARGS__)

/* Reports at a value (a setting or a default). */
#define problem_v(l, v, ...) conf_problem((l), (v)->file, (v)->line, __VA_ARGS__)

/* Called when an allocation fails: one report, then the load returns -ENOMEM. */
int conf_oom(struct loader *l);

/* "an integer", "a string", … for a libconfig type, in a message. */
const char *conf_type_name(int type);

/* *field = a copy of s (the old value freed).  0, or conf_oom(). */
int conf_dup_string(struct loader *l, const char *s, char **field);

/* Parsers any table may use (key_parse_fn).  Ranges, emptiness and control
 * characters are checked before any parser runs.
 *   conf_parse_integer      the number, stored as k->kind says
 *   conf_parse_mib          the number times MIB
 *   conf_parse_choice_int   a name of k->arg (struct choice[], NULL-ended): its value
 *   conf_parse_choice_str   a name of k->arg (const char *const[], NULL-ended): a copy
 *   conf_parse_chars        a string that keeps the rule k->arg (struct chars_rule)
 *   conf_parse_path         a path, relative ones joined to the file's directory */
int conf_parse_integer(struct loader *l, const struct key *k, const struct value *v, void *field);
int conf_parse_mib(struct loader *l, const struct key *k, const struct value *v, void *field);
int conf_parse_choice_int(struct loader *l, const struct key *k, const struct value *v, void *field);
int conf_parse_choice_str(struct loader *l, const struct key *k, const struct value *v, void *field);
int conf_parse_chars(struct loader *l, const struct key *k, const struct value *v, void *field);
int conf_parse_path(struct loader *l, const struct key *k, const struct value *v, void *field);

/* The row of `keys` (n of them) whose path is `path`, and its index in
 * *ret_index (may be NULL); NULL when there is none. */
const struct key *conf_find_key(const struct key *keys, size_t n, const char *path, size_t *ret_index);

/*
 * Loads `group` through the table `keys`: every setting in it must be a row;
 * every row absent from it gets its default, or is reported missing at the
 * line of its nearest enclosing group.  Messages name keys as prefix + path.
 * Fields are at base + offset.  seen[] (n_keys of them, zeroed) tells the
 * caller what was found.
 */
void conf_load_table(struct loader *l, const struct key *keys, size_t n_keys, const config_setting_t *group,
                     const char *prefix, void *base, struct seen *seen);

/* Whether the field row k fills holds the same value in the structs at a and
 * at b (strings by content; FIELD_NONE: always), for a reload that must
 * refuse a change to a row that is not reloadable. */
bool conf_field_equal(const struct key *k, const void *a, const void *b);
