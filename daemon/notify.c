/* SPDX-License-Identifier: MIT */
#include "notify.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <time.h>

#ifdef HAVE_LIBSYSTEMD
#include <systemd/sd-daemon.h>
#endif

static uint64_t monotonic_usec(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (uint64_t) ts.tv_sec * 1000000u + (uint64_t) ts.tv_nsec / 1000u;
}

#ifdef HAVE_LIBSYSTEMD
static void send_line(const char *text) {
        (void) sd_notify(0, text);
}
#else
static void send_line(const char *text) {
        (void) text;
}
#endif

uint64_t notify_watchdog_usec(void) {
        static int64_t cached = -1; /* the environment is read once: it does not change */

#ifdef HAVE_LIBSYSTEMD
        if (cached < 0) {
                uint64_t usec = 0;
                cached = sd_watchdog_enabled(0, &usec) > 0 ? (int64_t) usec : 0;
        }
#else
        cached = 0;
#endif
        return (uint64_t) cached;
}

void notify_ready(void) {
        send_line("READY=1");
}

void notify_reloading(void) {
        char text[64];

        snprintf(text, sizeof text, "RELOADING=1\nMONOTONIC_USEC=%" PRIu64, monotonic_usec());
        send_line(text);
}

void notify_stopping(void) {
        static bool sent;

        if (sent)
                return;
        sent = true;
        send_line("STOPPING=1");
}

static uint64_t last_watchdog;

void notify_watchdog(void) {
        last_watchdog = monotonic_usec();
        send_line("WATCHDOG=1");
}

void notify_watchdog_maybe(void) {
        uint64_t interval = notify_watchdog_usec();

        if (interval > 0 && monotonic_usec() - last_watchdog >= interval / 4)
                notify_watchdog();
}

void notify_status(const char *fmt, ...) {
        char text[512] = "STATUS=";
        va_list ap;

        va_start(ap, fmt);
        vsnprintf(text + 7, sizeof text - 7, fmt, ap);
        va_end(ap);
        /* One line: a newline would start another assignment. */
        for (char *p = text; *p; p++)
                if (*p == '\n' || *p == '\r')
                        *p = ' ';
        send_line(text);
}
