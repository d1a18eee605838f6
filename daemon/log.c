/* SPDX-License-Identifier: MIT */
#include "log.h"
#include "err.h"
#include "escape.h"
#include "util.h"

#include <ctype.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-journal.h>
#endif

static int level = LOG_INFO;

void log_set_level(int priority) {
        level = priority;
}

int log_get_level(void) {
        return level;
}

/* True when stderr is the journal's stream (systemd sets JOURNAL_STREAM=dev:ino);
 * found once, whichever thread asks first. */
static bool journal_stream;
static pthread_once_t journal_once = PTHREAD_ONCE_INIT;

static void find_journal_stream(void) {
        const char *e = getenv("JOURNAL_STREAM");
        struct stat st;
        unsigned long long dev, ino;

        journal_stream = e && sscanf(e, "%llu:%llu", &dev, &ino) == 2 && fstat(STDERR_FILENO, &st) == 0 &&
                         (unsigned long long) st.st_dev == dev && (unsigned long long) st.st_ino == ino;
}

static bool stderr_is_journal(void) {
        (void) pthread_once(&journal_once, find_journal_stream);
        return journal_stream;
}

bool log_to_journal(void) {
        return stderr_is_journal();
}

static void (*stderr_hook)(void); /* called before a line goes to plain stderr; NULL: none */
/* Lines come from the fetching threads too: one at a time, each whole, the hook's with it. */
static pthread_mutex_t stderr_lock = PTHREAD_MUTEX_INITIALIZER;

void log_stderr_lock(void) {
        pthread_mutex_lock(&stderr_lock);
}

void log_stderr_unlock(void) {
        pthread_mutex_unlock(&stderr_lock);
}

void log_set_stderr_hook(void (*before_line)(void)) {
        stderr_hook = before_line;
}

static const char *prio_name(int priority) {
        static const char *const names[] = { "emergency", "alert", "critical", "error",
                                             "warning",   "notice", "info",    "debug" };
        return names[priority & 7];
}

/* Appends "NAME=value" (value escaped) to buf at *used and to iov; false when it does not fit. */
static bool add_field(const char *name, const char *value, char *buf, size_t size, size_t *used,
                      struct iovec *iov, size_t *n) {
        size_t name_len = strlen(name), start = *used, need;

        if (!value || !*value || *n >= LOG_JOURNAL_FIELDS_MAX)
                return false;
        need = escape_text_len(value);
        /* Whole or not at all ("NAME=" value NUL): a cut UBRN would mislead. */
        if (size - start < name_len + 1 + need + 1)
                return false;
        memcpy(buf + start, name, name_len);
        buf[start + name_len] = '=';
        size_t v = escape_text(value, buf + start + name_len + 1, size - start - name_len - 1);
        iov[*n].iov_base = buf + start;
        iov[*n].iov_len = name_len + 1 + v;
        (*n)++;
        *used = start + name_len + 1 + v + 1; /* past the NUL */
        return true;
}

size_t log_journal_fields(int priority, const struct log_ctx *ctx, const char *message, char *buf,
                          size_t size, struct iovec ret_iov[LOG_JOURNAL_FIELDS_MAX]) {
        static const char *const priorities[] = { "0", "1", "2", "3", "4", "5", "6", "7" };
        size_t used = 0, n = 0;
        char sqlstate[6];

        add_field("MESSAGE", message, buf, size, &used, ret_iov, &n);
        add_field("PRIORITY", priorities[priority & 7], buf, size, &used, ret_iov, &n);
        add_field("SYSLOG_IDENTIFIER", "ersd", buf, size, &used, ret_iov, &n);
        if (ctx) {
                add_field("ERS_UBRN", ctx->ubrn, buf, size, &used, ret_iov, &n);
                add_field("ERS_CORRELATION_ID", ctx->correlation_id, buf, size, &used, ret_iov, &n);
                add_field("ERS_WORKLIST", ctx->worklist, buf, size, &used, ret_iov, &n);
                add_field("ERS_STAGE", ctx->stage, buf, size, &used, ret_iov, &n);
        }
        if (ctx && ctx->sqlstate)
                add_field("SQLSTATE", ctx->sqlstate, buf, size, &used, ret_iov, &n);
        else if (err_sqlstate(message, sqlstate))
                add_field("SQLSTATE", sqlstate, buf, size, &used, ret_iov, &n);
        return n;
}

void log_ctx_vmsg(int priority, const struct log_ctx *ctx, const char *fmt, va_list ap) {
        char line[2048], out[sizeof line * 4]; /* an escape is at most 4 bytes a byte */
        int len;

        if (priority > level)
                return;
        len = vsnprintf(line, sizeof line, fmt, ap);
        if (len >= (int) sizeof line) /* cut: not in the middle of a character */
                line[sizeof line - 1 - utf8_cut(line, sizeof line - 1)] = '\0';
        escape_text(line, out, sizeof out); /* one call, one line (escape.h) */

        if (stderr_is_journal()) {
#ifdef HAVE_LIBSYSTEMD
                char fields[sizeof out + 1024];
                struct iovec iov[LOG_JOURNAL_FIELDS_MAX];
                size_t n = log_journal_fields(priority, ctx, line, fields, sizeof fields, iov);
                if (sd_journal_sendv(iov, (int) n) >= 0)
                        return;
#else
                (void) ctx; /* the "<N>" prefix carries the priority only */
#endif
                log_stderr_lock();
                fprintf(stderr, "<%d>%s\n", priority & 7, out);
                log_stderr_unlock();
        } else {
                log_stderr_lock();
                if (stderr_hook)
                        stderr_hook();
                fprintf(stderr, "ersd: %s: %s\n", prio_name(priority), out);
                log_stderr_unlock();
        }
}

void log_msg(int priority, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_ctx_vmsg(priority, NULL, fmt, ap);
        va_end(ap);
}

void log_ctx_msg(int priority, const struct log_ctx *ctx, const char *fmt, ...) {
        va_list ap;

        va_start(ap, fmt);
        log_ctx_vmsg(priority, ctx, fmt, ap);
        va_end(ap);
}
