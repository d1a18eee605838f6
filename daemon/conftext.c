/* SPDX-License-Identifier: MIT */
/*
 * conftext.c: the configuration's text and its @includes, read by us (see
 * conftext.h).  libconfig 1.5 opens an included file itself, with a blocking
 * fopen() (a FIFO hung `--check-config`, and a SIGHUP reload wedged the
 * daemon past SIGTERM) and with none of the main file's checks; it offers no
 * hook to do otherwise.  So the includes are expanded here, and libconfig
 * parses one text with none left in it.
 *
 * The scanner follows libconfig 1.5's own (scanner.l) just far enough to know
 * where an `@include` is a directive: its include rule matches
 * `^[ \t]*@include[ \t]+"` in its initial state only, so never inside a
 * string ("…", where \\ and \" are escapes), a block comment, or after # or
 * // on the same line.  Its state carries across an included file's end, as
 * flex's does; an included file always ends a line here.
 *
 * The same scan refuses the escape \x00 in a string: libconfig 1.5 drops the
 * NUL it stands for without a word ("31\x0099" reads as "3199"), so that no
 * value can hold a NUL, as a byte or as an escape.
 */
#include "conftext.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "util.h"

#define NAME_ECHO_MAX 200 /* bytes of an include's name quoted in a report */

int regular_file_open(const char *path, struct stat *ret_st) {
        int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY | O_NONBLOCK);

        if (fd < 0)
                return -errno;
        if (fstat(fd, ret_st) < 0) {
                int r = -errno;
                close(fd);
                return r;
        }
        if (!S_ISREG(ret_st->st_mode)) {
                close(fd);
                return S_ISDIR(ret_st->st_mode) ? -EISDIR : -EINVAL;
        }
        return fd;
}

const char *regular_file_error(int r) {
        return r == -EINVAL ? "not a regular file" : strerror(-r);
}

int fd_read_text(int fd, const struct stat *st, off_t max, char **ret_buf, size_t *ret_len) {
        size_t len = 0, cap;
        char *buf;

        if (st->st_size > max)
                return -EFBIG;
        cap = (size_t) st->st_size + 1;
        buf = malloc(cap);
        if (!buf)
                return -ENOMEM;
        while (len + 1 < cap) {
                ssize_t k = read(fd, buf + len, cap - 1 - len);

                if (k < 0 && errno == EINTR)
                        continue;
                if (k < 0) {
                        int r = -errno;
                        explicit_bzero(buf, cap);
                        free(buf);
                        return r;
                }
                if (k == 0)
                        break;
                len += (size_t) k;
        }
        buf[len] = '\0';
        *ret_buf = buf;
        *ret_len = len;
        return 0;
}

/* One file, checked: 0, -EINVAL (not a regular file), -EISDIR, -EFBIG,
 * -EBADMSG (a NUL byte), -ENOMEM or the -errno of its opening. */
static int read_checked(const char *path, char **ret_text, size_t *ret_len) {
        struct stat st;
        char *text;
        size_t len;
        int fd, r;

        fd = regular_file_open(path, &st);
        if (fd < 0)
                return fd;
        r = fd_read_text(fd, &st, CONFIG_FILE_MAX, &text, &len);
        close(fd);
        if (r < 0)
                return r;
        if (memchr(text, '\0', len)) {
                free(text);
                return -EBADMSG;
        }
        *ret_text = text;
        *ret_len = len;
        return 0;
}

/* What read_checked()'s failure means, for a report. */
static void read_error(int r, char *buf, size_t size) {
        if (r == -EFBIG)
                snprintf(buf, size, "larger than %d bytes: not a configuration file", CONFIG_FILE_MAX);
        else if (r == -EBADMSG)
                snprintf(buf, size, "contains a NUL byte: not a text file");
        else
                snprintf(buf, size, "cannot read: %s", regular_file_error(r));
}

/* The absolute directory of `path`, for relative paths in it. */
static int file_dir(const char *path, char ret[PATH_MAX]) {
        char buf[PATH_MAX];
        char *slash;

        if (snprintf(buf, sizeof buf, "%s", path) >= (int) sizeof buf)
                return -ENAMETOOLONG;
        slash = strrchr(buf, '/');
        if (!slash)
                snprintf(buf, sizeof buf, ".");
        else if (slash == buf)
                buf[1] = '\0';
        else
                *slash = '\0';
        if (!realpath(buf, ret))
                return -errno;
        return 0;
}

enum lex { LEX_INITIAL, LEX_STRING, LEX_COMMENT };

struct expander {
        struct config_text *t;
        size_t cap;      /* of t->text */
        unsigned line;   /* the line of t->text being written, from 1 */
        enum lex lex;
        bool too_large;  /* the whole went past CONFIG_FILE_MAX */
        struct errbuf *e;
};

/* Appends n bytes to the whole text.  0, -EFBIG or -ENOMEM. */
static int put(struct expander *x, const char *s, size_t n) {
        struct config_text *t = x->t;

        if (t->len + n > CONFIG_FILE_MAX) {
                x->too_large = true;
                return -EFBIG;
        }
        char *p = array_grow(t->text, &x->cap, t->len + n + 1, 1, 4096);

        if (!p)
                return -ENOMEM;
        t->text = p;
        memcpy(t->text + t->len, s, n);
        t->len += n;
        t->text[t->len] = '\0';
        for (size_t i = 0; i < n; i++)
                x->line += s[i] == '\n';
        return 0;
}

/* Keeps a copy of a file's name; *ret points at it until config_text_free(). */
static int name_add(struct config_text *t, const char *name, const char **ret) {
        char **names = array_grow(t->names, &t->cap_names, t->n_names + 1, sizeof *names, 8);

        if (!names)
                return -ENOMEM;
        t->names = names;
        t->names[t->n_names] = strdup(name);
        if (!t->names[t->n_names])
                return -ENOMEM;
        *ret = t->names[t->n_names++];
        return 0;
}

/* From the line being written on, the text comes from `file` at `file_line`. */
static int part_add(struct expander *x, const char *file, unsigned file_line) {
        struct config_text *t = x->t;
        struct config_text_part *parts;

        if (t->n_parts > 0 && t->parts[t->n_parts - 1].first_line == x->line)
                t->n_parts--; /* the one before holds no line */
        parts = array_grow(t->parts, &t->cap_parts, t->n_parts + 1, sizeof *parts, 8);
        if (!parts)
                return -ENOMEM;
        t->parts = parts;
        t->parts[t->n_parts++] = (struct config_text_part) { .first_line = x->line, .file_line = file_line,
                                                             .file = file };
        return 0;
}

/* The length of libconfig's include_open, `[ \t]*@include[ \t]+"`, at s; 0 when it is not there. */
static size_t include_open(const char *s, size_t n) {
        static const char word[] = "@include";
        size_t i = strspn(s, " \t"), blanks;

        if (i > n || n - i < sizeof word - 1 || memcmp(s + i, word, sizeof word - 1) != 0)
                return 0;
        i += sizeof word - 1;
        blanks = strspn(s + i, " \t");
        if (blanks == 0 || i + blanks >= n || s[i + blanks] != '"')
                return 0;
        return i + blanks + 1;
}

/*
 * The name of an @include, from just after its opening quote: as libconfig
 * reads it (\\ and \" are the escapes it knows), into a new string *ret.
 * Returns how many bytes it took, closing quote included; -EBADMSG with
 * *ret_why when the name is not one we accept; -ENOMEM.
 */
static ssize_t include_name(const char *s, size_t n, char **ret, const char **ret_why) {
        char *name = malloc(n + 1);
        size_t k = 0;

        if (!name)
                return -ENOMEM;
        for (size_t i = 0; i < n; i++) {
                unsigned char c = (unsigned char) s[i];

                if (c == '"') {
                        name[k] = '\0';
                        *ret = name;
                        return (ssize_t) i + 1;
                }
                if (c == '\\' && i + 1 < n && (s[i + 1] == '\\' || s[i + 1] == '"'))
                        c = (unsigned char) s[++i];
                else if (c == '\\') {
                        *ret_why = "a backslash that escapes neither \\ nor \" in the file name";
                        free(name);
                        return -EBADMSG;
                } else if (c < 0x20 || c == 0x7f) {
                        *ret_why = "a control character (a line end?) in the file name";
                        free(name);
                        return -EBADMSG;
                }
                name[k++] = (char) c;
        }
        free(name);
        *ret_why = "no closing quote";
        return -EBADMSG;
}

static int expand(struct expander *x, const char *text, size_t len, const char *file, unsigned depth);

/* Reads the file an @include at file:line names, and expands it in place. */
static int include(struct expander *x, const char *file, unsigned line, const char *name, unsigned depth) {
        char why[160], *path = NULL, *text = NULL;
        const char *kept;
        size_t len = 0;
        int r;

        if (depth >= CONFIG_INCLUDE_DEPTH)
                return err_set(x->e, -EINVAL, "%s:%u: @include \"%.*s\": included files nest more than %d deep "
                               "(does one include itself?)", file, line, NAME_ECHO_MAX, name, CONFIG_INCLUDE_DEPTH);
        if (name[0] == '/')
                path = strdup(name);
        else if (asprintf(&path, "%s/%s", x->t->dir, name) < 0)
                path = NULL;
        if (!path)
                return err_set(x->e, -ENOMEM, "out of memory");
        r = read_checked(path, &text, &len);
        free(path);
        if (r == -ENOMEM)
                return err_set(x->e, r, "out of memory");
        if (r < 0) {
                read_error(r, why, sizeof why);
                return err_set(x->e, -EINVAL, "%s:%u: @include \"%.*s\": %s", file, line, NAME_ECHO_MAX, name, why);
        }
        r = name_add(x->t, name, &kept);
        if (r == 0)
                r = expand(x, text, len, kept, depth + 1);
        free(text);
        if (r == -ENOMEM)
                return err_set(x->e, r, "out of memory");
        return r;
}

/* Copies text (the file `file`, `depth` includes deep) into the whole,
 * each @include replaced by the file it names.  0, or <0 with e said (or
 * -EFBIG with x->too_large, said by the caller). */
static int expand(struct expander *x, const char *text, size_t len, const char *file, unsigned depth) {
        unsigned file_line = 1;
        bool bol = true; /* at the start of a line (flex's ^) */
        int r = part_add(x, file, 1);

        for (size_t i = 0; r == 0 && i < len;) {
                size_t open = x->lex == LEX_INITIAL && bol ? include_open(text + i, len - i) : 0;

                if (open > 0) {
                        const char *why = NULL;
                        char *name = NULL;
                        ssize_t took = include_name(text + i + open, len - i - open, &name, &why);

                        if (took == -ENOMEM)
                                return err_set(x->e, -ENOMEM, "out of memory");
                        if (took < 0)
                                return err_set(x->e, -EINVAL, "%s:%u: @include: %s", file, file_line, why);
                        r = include(x, file, file_line, name, depth);
                        free(name);
                        if (r == 0 && x->t->len > 0 && x->t->text[x->t->len - 1] != '\n')
                                r = put(x, "\n", 1); /* what follows is on a line of its own */
                        if (r == 0) /* the rest of the directive's line */
                                r = part_add(x, file, file_line);
                        i += open + (size_t) took;
                        bol = false;
                        continue;
                }

                /* One byte, or a pair that must not be split (an escape, a comment's ends). */
                size_t n = 1;
                char c = text[i], next = text[i + 1]; /* text ends in a NUL */

                switch (x->lex) {
                case LEX_INITIAL:
                        if (c == '"')
                                x->lex = LEX_STRING;
                        else if (c == '#' || (c == '/' && next == '/')) /* to the line's end (text ends in a NUL) */
                                n = strcspn(text + i, "\n");
                        else if (c == '/' && next == '*') {
                                x->lex = LEX_COMMENT;
                                n = 2;
                        }
                        break;
                case LEX_STRING:
                        if (c == '\\' && next == 'x' && text[i + 2] == '0' && text[i + 3] == '0')
                                return err_set(x->e, -EINVAL, "%s:%u: \\x00 (a NUL) in a string: no value may hold one "
                                               "(libconfig would drop it and read the rest as the value)", file,
                                               file_line);
                        if (c == '\\' && (next == '\\' || next == '"'))
                                n = 2;
                        else if (c == '"')
                                x->lex = LEX_INITIAL;
                        break;
                case LEX_COMMENT:
                        if (c == '*' && next == '/') {
                                x->lex = LEX_INITIAL;
                                n = 2;
                        }
                        break;
                }
                r = put(x, text + i, n);
                if (text[i + n - 1] == '\n')
                        file_line++;
                bol = text[i + n - 1] == '\n';
                i += n;
        }
        return r == -ENOMEM ? err_set(x->e, r, "out of memory") : r;
}

int config_text_read(const char *path, struct config_text *ret, struct errbuf *e) {
        struct config_text t = { 0 };
        struct expander x = { .t = &t, .line = 1, .lex = LEX_INITIAL, .e = e };
        const char *main_name;
        char why[160], *text = NULL;
        size_t len = 0;
        int r;

        r = read_checked(path, &text, &len);
        if (r == -ENOMEM)
                return err_set(e, r, "%s: out of memory", path);
        if (r < 0) {
                read_error(r, why, sizeof why);
                return err_set(e, r == -EINVAL || r == -EFBIG || r == -EBADMSG ? -EINVAL : r, "%s: %s", path, why);
        }
        r = file_dir(path, t.dir);
        if (r < 0) {
                err_set(e, r, "%s: cannot resolve its directory: %s", path, strerror(-r));
                goto out;
        }
        r = name_add(&t, path, &main_name);
        if (r == 0)
                r = expand(&x, text, len, main_name, 0);
        if (r == 0 && !t.text && !(t.text = strdup(""))) /* an empty file */
                r = -ENOMEM;
        if (x.too_large)
                r = err_set(e, -EINVAL, "%s: larger than %d bytes with the files it includes: not a configuration",
                            path, CONFIG_FILE_MAX);
        else if (r == -ENOMEM && !e->msg[0])
                r = err_set(e, r, "%s: out of memory", path);
out:
        explicit_bzero(text, len);
        free(text);
        if (r < 0) {
                config_text_free(&t);
                return r;
        }
        *ret = t;
        return 0;
}

void config_text_where(const struct config_text *t, unsigned line, const char **ret_file, unsigned *ret_line) {
        const struct config_text_part *p = NULL;

        for (size_t i = 0; line > 0 && i < t->n_parts && t->parts[i].first_line <= line; i++)
                p = &t->parts[i];
        *ret_file = p ? p->file : t->n_names > 0 ? t->names[0] : "(config)";
        *ret_line = p ? p->file_line + (line - p->first_line) : 0;
}

void config_text_free(struct config_text *t) {
        if (!t)
                return;
        if (t->text) {
                explicit_bzero(t->text, t->len); /* it may hold a database password */
                free(t->text);
        }
        for (size_t i = 0; i < t->n_names; i++)
                free(t->names[i]);
        free(t->names);
        free(t->parts);
        *t = (struct config_text) { 0 };
}
