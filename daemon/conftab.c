/* SPDX-License-Identifier: MIT */
/*
 * The generic table-driven libconfig loader (conftab.h): reports at
 * FILE:LINE, the walk of a group through its table, defaults, the parsers any
 * table may use, the comparison of a row's field for a reload.
 *
 * Not here: ersd's keys, their own parsers and the checks across them
 * (config.c), secret files (secret.c), the file's text (conftext.c).
 */
#include "conftab.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- reporting ---------------------------------------------------------- */

void conf_problem(struct loader *l, const char *file, unsigned line, const char *fmt, ...) {
        char msg[ERRBUF_MAX];
        struct errbuf e;
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(msg, sizeof msg, fmt, ap);
        va_end(ap);
        if (line > 0)
                err_set(&e, 0, "%s:%u: %s", file, line, msg);
        else
                err_set(&e, 0, "%s: %s", file, msg);
        conf_report_line(l, e.msg);
}

void conf_report_line(struct loader *l, const char *line) {
        l->n_problems++;
        if (l->report)
                l->report(l->userdata, line);
}

const char *conf_setting_file(const struct loader *l, const config_setting_t *s) {
        const char *file = l->path;
        unsigned line = 0;

        if (s && l->ct)
                config_text_where(l->ct, config_setting_source_line(s), &file, &line);
        return file;
}

unsigned conf_setting_line(const struct loader *l, const config_setting_t *s) {
        const char *file;
        unsigned line = 0;

        if (s && l->ct)
                config_text_where(l->ct, config_setting_source_line(s), &file, &line);
        return line;
}

int conf_oom(struct loader *l) {
        if (!l->oom)
                conf_problem(l, l->path, 0, "out of memory");
        l->oom = true;
        return -ENOMEM;
}

const char *conf_type_name(int type) {
        switch (type) {
        case CONFIG_TYPE_INT:
        case CONFIG_TYPE_INT64:
                return "an integer";
        case CONFIG_TYPE_FLOAT:
                return "a floating-point number";
        case CONFIG_TYPE_STRING:
                return "a string";
        case CONFIG_TYPE_BOOL:
                return "a boolean";
        case CONFIG_TYPE_GROUP:
                return "a group { ... }";
        case CONFIG_TYPE_ARRAY:
                return "an array [ ... ]";
        case CONFIG_TYPE_LIST:
                return "a list ( ... )";
        default:
                return "something else";
        }
}


int conf_dup_string(struct loader *l, const char *s, char **field) {
        char *d = strdup(s);

        if (!d)
                return conf_oom(l);
        free(*field);
        *field = d;
        return 0;
}

static void store_int(void *field, enum field_kind kind, long long v) {
        switch (kind) {
        case FIELD_LONG:
                *(long *) field = (long) v;
                break;
        case FIELD_INT:
                *(int *) field = (int) v;
                break;
        case FIELD_INT64:
                *(int64_t *) field = (int64_t) v;
                break;
        case FIELD_ENUM:
                *(int *) field = (int) v;
                break;
        case FIELD_NONE:
        case FIELD_STRING:
                break;
        }
}

static bool has_control_char(const char *s) {
        for (; *s; s++)
                if ((unsigned char) *s < 0x20 || *s == 0x7f)
                        return true;
        return false;
}

/* "a, b or c" from a NULL-terminated list, for a message. */
static void join_names(char *buf, size_t size, const char *const *names, const char *quote) {
        size_t n = 0, used = 0;

        while (names[n])
                n++;
        buf[0] = '\0';
        for (size_t i = 0; i < n && used < size; i++) {
                int w = snprintf(buf + used, size - used, "%s%s%s%s",
                                 i == 0 ? "" : i + 1 == n ? " or " : ", ", quote, names[i], quote);
                if (w < 0)
                        break;
                used += (size_t) w;
        }
}

/* Joins the config file's directory and `p` unless `p` is absolute. */
static int resolve_path(struct loader *l, const char *p, char **ret) {
        size_t dl, pl;
        char *s;

        if (p[0] == '/')
                return conf_dup_string(l, p, ret);
        while (p[0] == '.' && p[1] == '/')
                p += 2;
        dl = strlen(l->dir);
        pl = strlen(p);
        s = malloc(dl + 1 + pl + 1);
        if (!s)
                return conf_oom(l);
        memcpy(s, l->dir, dl);
        if (dl == 0 || s[dl - 1] != '/')
                s[dl++] = '/';
        memcpy(s + dl, p, pl + 1);
        free(*ret);
        *ret = s;
        return 0;
}


int conf_parse_integer(struct loader *l, const struct key *k, const struct value *v, void *field) {
        (void) l;
        store_int(field, k->kind, v->num);
        return 0;
}

int conf_parse_mib(struct loader *l, const struct key *k, const struct value *v, void *field) {
        (void) l;
        store_int(field, k->kind, v->num * MIB);
        return 0;
}

int conf_parse_choice_int(struct loader *l, const struct key *k, const struct value *v, void *field) {
        const struct choice *c;
        const char *names[16];
        char list[256];
        size_t n = 0;

        for (c = k->arg; c->name; c++)
                if (strcmp(c->name, v->str) == 0) {
                        store_int(field, k->kind, c->value);
                        return 0;
                }
        for (c = k->arg; c->name && n + 1 < sizeof names / sizeof names[0]; c++)
                names[n++] = c->name;
        names[n] = NULL;
        join_names(list, sizeof list, names, "\"");
        problem_v(l, v, "%s: must be %s", v->key, list);
        return -EINVAL;
}

int conf_parse_choice_str(struct loader *l, const struct key *k, const struct value *v, void *field) {
        const char *const *names = k->arg;
        char list[256];

        for (size_t i = 0; names[i]; i++)
                if (strcmp(names[i], v->str) == 0)
                        return conf_dup_string(l, names[i], field);
        join_names(list, sizeof list, names, "");
        problem_v(l, v, "%s: must be %s", v->key, list);
        return -EINVAL;
}

int conf_parse_chars(struct loader *l, const struct key *k, const struct value *v, void *field) {
        const struct chars_rule *rule = k->arg;
        size_t n = strlen(v->str);

        if (n > rule->max || strspn(v->str, rule->allowed) != n) {
                problem_v(l, v, "%s: must be %s", v->key, rule->what);
                return -EINVAL;
        }
        return conf_dup_string(l, v->str, field);
}


int conf_parse_path(struct loader *l, const struct key *k, const struct value *v, void *field) {
        (void) k;
        return resolve_path(l, v->str, field);
}


const struct key *conf_find_key(const struct key *keys, size_t n, const char *path, size_t *ret_index) {
        for (size_t i = 0; i < n; i++)
                if (strcmp(keys[i].path, path) == 0) {
                        if (ret_index)
                                *ret_index = i;
                        return &keys[i];
                }
        return NULL;
}

static bool type_ok(const struct key *k, const config_setting_t *s) {
        int t = config_setting_type(s);

        if (k->type == CONFIG_TYPE_INT)
                return t == CONFIG_TYPE_INT || t == CONFIG_TYPE_INT64;
        return t == k->type;
}

static bool is_name_char(char ch) {
        return (ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
               ch == '_' || ch == '-' || ch == '*';
}

/*
 * libconfig 1.5 reads an integer literal too large for 32 bits as a silently
 * wrapped int (10000000000 becomes 1410065408, 4294967396 becomes 100).  So
 * for an int setting of the main file, find "name = literal" on its line and
 * check the literal reads back as the same number.  A literal it cannot find
 * there (value on the next line) is given the benefit of the doubt.
 */
static bool int_literal_wrapped(const struct loader *l, const config_setting_t *s) {
        const char *name = config_setting_name(s), *p = l->text, *end;
        unsigned line = config_setting_source_line(s);
        size_t len;

        if (config_setting_type(s) != CONFIG_TYPE_INT || config_setting_source_file(s) || !name || !p)
                return false;
        for (unsigned i = 1; i < line && p; i++) {
                p = strchr(p, '\n');
                if (p)
                        p++;
        }
        if (!p)
                return false;
        end = strchr(p, '\n');
        if (!end)
                end = p + strlen(p);
        len = strlen(name);
        for (const char *q = p; q + len <= end; q++) {
                const char *r = q + len;
                char *e;
                long long n;
                int base = 10;

                if (memcmp(q, name, len) != 0 || (q > p && is_name_char(q[-1])) || is_name_char(*r))
                        continue;
                r += strspn(r, " \t");
                if (*r != '=' && *r != ':')
                        continue;
                r++;
                r += strspn(r, " \t");
                if ((r[0] == '0' && (r[1] == 'x' || r[1] == 'X')) ||
                    ((r[0] == '-' || r[0] == '+') && r[1] == '0' && (r[2] == 'x' || r[2] == 'X')))
                        base = 16;
                errno = 0;
                n = strtoll(r, &e, base);
                if (e == r)
                        continue;
                return errno == ERANGE || n != config_setting_get_int64(s);
        }
        return false;
}

/* Type-independent checks, then the row's parser. */
static int parse_value(struct loader *l, const struct key *k, const struct value *v, void *base) {
        if (k->type == CONFIG_TYPE_INT && (v->num < k->min || v->num > k->max)) {
                problem_v(l, v, "%s: %lld is out of range %lld..%lld", v->key, v->num, k->min, k->max);
                return -EINVAL;
        }
        if (k->type == CONFIG_TYPE_STRING) {
                if (!v->str[0]) {
                        problem_v(l, v, "%s: must not be empty", v->key);
                        return -EINVAL;
                }
                if (has_control_char(v->str)) {
                        problem_v(l, v, "%s: must not contain control characters", v->key);
                        return -EINVAL;
                }
        }
        return k->parse(l, k, v, (char *) base + k->offset);
}

static void value_from_setting(const struct loader *l, const config_setting_t *s, const char *key,
                               struct value *ret) {
        *ret = (struct value) {
                .setting = s,
                .file = conf_setting_file(l, s),
                .line = conf_setting_line(l, s),
                .key = key,
        };
        if (config_setting_type(s) == CONFIG_TYPE_STRING)
                ret->str = config_setting_get_string(s);
        else if (config_setting_type(s) == CONFIG_TYPE_INT || config_setting_type(s) == CONFIG_TYPE_INT64)
                ret->num = config_setting_get_int64(s);
}

/* Walks every setting of `group` (whose rows have paths starting `rel`). */
static void walk_group(struct loader *l, const struct key *keys, size_t n_keys, const config_setting_t *group,
                       const char *rel, const char *prefix, void *base, struct seen *seen) {
        int n = config_setting_length(group);

        for (int i = 0; i < n; i++) {
                const config_setting_t *s = config_setting_get_elem(group, (unsigned) i);
                const char *name = config_setting_name(s);
                char path[KEY_PATH_MAX], key[KEY_PATH_MAX + 64];
                const struct key *k = NULL;
                struct value v;
                size_t ki = 0;
                int w;

                w = snprintf(path, sizeof path, "%s%s", rel, name ? name : "");
                if (w > 0 && (size_t) w < sizeof path)
                        k = conf_find_key(keys, n_keys, path, &ki);
                snprintf(key, sizeof key, "%s%s", prefix, path);
                if (!k) {
                        problem_at(l, s, "%s: unknown key", key);
                        continue;
                }
                seen[ki].setting = s;
                if (!type_ok(k, s)) {
                        problem_at(l, s, "%s: expected %s, found %s", key, conf_type_name(k->type),
                                   conf_type_name(config_setting_type(s)));
                        seen[ki].bad = true;
                        continue;
                }
                if (!k->parse) {
                        char sub[KEY_PATH_MAX + 1];

                        snprintf(sub, sizeof sub, "%s.", path);
                        walk_group(l, keys, n_keys, s, sub, prefix, base, seen);
                        continue;
                }
                if (k->type == CONFIG_TYPE_INT && int_literal_wrapped(l, s)) {
                        problem_at(l, s, "%s: number too large (out of range %lld..%lld)", key, k->min,
                                   k->max);
                        seen[ki].bad = true;
                        continue;
                }
                value_from_setting(l, s, key, &v);
                if (parse_value(l, k, &v, base) < 0)
                        seen[ki].bad = true;
        }
}

/* The row of the nearest enclosing plain group of row `i` that is present in
 * the file, or NULL when there is none (the table's own group encloses it). */
static const struct seen *present_parent(const struct key *keys, size_t n_keys, const struct seen *seen,
                                         size_t i) {
        char path[KEY_PATH_MAX];
        char *dot;

        snprintf(path, sizeof path, "%s", keys[i].path);
        while ((dot = strrchr(path, '.'))) {
                size_t pi;

                *dot = '\0';
                if (conf_find_key(keys, n_keys, path, &pi) && seen[pi].setting)
                        return &seen[pi];
        }
        return NULL;
}

void conf_load_table(struct loader *l, const struct key *keys, size_t n_keys, const config_setting_t *group,
                     const char *prefix, void *base, struct seen *seen) {
        walk_group(l, keys, n_keys, group, "", prefix, base, seen);

        for (size_t i = 0; i < n_keys; i++) {
                const struct key *k = &keys[i];
                const struct seen *parent;
                const config_setting_t *at;
                char key[KEY_PATH_MAX + 64];
                struct value v;

                if (seen[i].setting || !k->parse)
                        continue;
                parent = present_parent(keys, n_keys, seen, i);
                if (parent && parent->bad)
                        continue; /* its group has the wrong type: said already */
                at = parent ? parent->setting : group;
                snprintf(key, sizeof key, "%s%s", prefix, k->path);
                if (k->required) {
                        problem_at(l, at, "%s: required key missing", key);
                        continue;
                }
                if (!k->def)
                        continue;
                v = (struct value) { .str = k->def, .file = l->path, .key = key };
                if (k->type == CONFIG_TYPE_INT)
                        v.num = strtoll(k->def, NULL, 10);
                (void) parse_value(l, k, &v, base);
        }
}

/* ers.user_restricted { … } */

/* ---- reload ------------------------------------------------------------- */

bool conf_field_equal(const struct key *k, const void *a, const void *b) {
        const void *pa = (const char *) a + k->offset, *pb = (const char *) b + k->offset;

        switch (k->kind) {
        case FIELD_STRING: {
                const char *sa = *(char *const *) pa, *sb = *(char *const *) pb;
                return sa == sb || (sa && sb && strcmp(sa, sb) == 0);
        }
        case FIELD_LONG:
                return *(const long *) pa == *(const long *) pb;
        case FIELD_INT:
                return *(const int *) pa == *(const int *) pb;
        case FIELD_INT64:
                return *(const int64_t *) pa == *(const int64_t *) pb;
        case FIELD_ENUM:
                return *(const int *) pa == *(const int *) pb;
        case FIELD_NONE:
                break;
        }
        return true;
}
