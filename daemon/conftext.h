/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The text of a configuration file, as libconfig is given it: the main file
 * with every `@include "NAME"` replaced by the text of the file it names,
 * read by us, never by libconfig.  Every file read, the main one and each
 * included one, gets the same checks: opened without blocking (a FIFO, a
 * device or a directory is refused, never waited on), a regular file, at
 * most CONFIG_FILE_MAX bytes (and so is the whole), no NUL byte, and no \x00
 * escape in a string (libconfig would drop it silently).  Includes
 * nest at most CONFIG_INCLUDE_DEPTH deep (a file including itself stops there).
 *
 * An `@include` is recognised exactly where libconfig 1.5's scanner would
 * recognise one (at the start of a line, outside strings and comments), so
 * that libconfig never sees one itself.  NAME is relative to the main file's
 * directory unless absolute.  A map from the lines of the whole text back to
 * (file, line) keeps every report at the FILE:LINE it was written at: the
 * main file by its path, an included file by its name as written.
 */

#include <limits.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/types.h>

#include "err.h"

#define CONFIG_FILE_MAX      (1024 * 1024) /* bytes: a configuration larger than this is a mistake */
#define CONFIG_INCLUDE_DEPTH 10            /* includes within includes, as libconfig allows */

/* Where a run of lines of the whole text comes from. */
struct config_text_part {
        unsigned first_line; /* its first line in the whole text, from 1 */
        unsigned file_line;  /* the number of that line in its file */
        const char *file;    /* borrowed from config_text.names */
};

struct config_text {
        char *text;                     /* owned, NUL-terminated: what libconfig parses */
        size_t len;
        char dir[PATH_MAX];             /* the main file's directory, absolute */
        struct config_text_part *parts; /* owned, in order of first_line */
        size_t n_parts, cap_parts;
        char **names;                   /* owned: the main file's path and each include's name */
        size_t n_names, cap_names;
};

/*
 * Reads `path` and what it includes into *ret (owned: config_text_free()).
 * 0; or the one line saying what is wrong in e ("FILE: …" for the main file,
 * "FILE:LINE: @include \"NAME\": …" for an include) and -EINVAL, -ENOMEM, or
 * the -errno the main file could not be opened with (-ENOENT, -EACCES).
 * On failure *ret is untouched.
 */
int config_text_read(const char *path, struct config_text *ret, struct errbuf *e);

/* The file and line that line `line` of the whole text came from.  Line 0
 * (no line) is the main file's, without a line. */
void config_text_where(const struct config_text *t, unsigned line, const char **ret_file, unsigned *ret_line);

void config_text_free(struct config_text *t); /* accepts NULL and one freed already */

/* Opens `path` read-only without blocking and checks it is a regular file.
 * The fd, or -errno (-EINVAL: not a regular file, -EISDIR: a directory). */
int regular_file_open(const char *path, struct stat *ret_st);

/* Says why regular_file_open() failed. */
const char *regular_file_error(int r);

/* Reads what fd holds (st: its fstat, size at most `max`) into a new
 * NUL-terminated buffer; a file that grows meanwhile is read as it was.
 * 0, -EFBIG, -ENOMEM or -errno; the caller owns *ret_buf. */
int fd_read_text(int fd, const struct stat *st, off_t max, char **ret_buf, size_t *ret_len);
