/* SPDX-License-Identifier: MIT */
#include "failalloc.h"

#include <stddef.h>

/* Defined by the linker only with --wrap; weak so that binaries linked without
 * it still link (and never call them: nothing reaches __wrap_* then). */
void *__real_malloc(size_t n) __attribute__((weak));
void *__real_calloc(size_t n, size_t size) __attribute__((weak));
void *__real_realloc(void *p, size_t n) __attribute__((weak));
char *__real_strdup(const char *s) __attribute__((weak));
char *__real_strndup(const char *s, size_t n) __attribute__((weak));
void *__wrap_malloc(size_t n);
void *__wrap_calloc(size_t n, size_t size);
void *__wrap_realloc(void *p, size_t n);
char *__wrap_strdup(const char *s);
char *__wrap_strndup(const char *s, size_t n);

static long countdown = -1; /* the allocation that fails when it reaches 0; -1: none */
static bool fired;
static unsigned long calls;

bool failalloc_linked(void) {
        return __real_malloc != NULL;
}

void failalloc_arm(long n) {
        countdown = n;
        fired = false;
}

bool failalloc_disarm(void) {
        countdown = -1;
        return fired;
}

unsigned long failalloc_calls(void) {
        return calls;
}

static bool fails(void) {
        calls++;
        if (countdown < 0 || countdown-- != 0)
                return false;
        fired = true;
        return true;
}

void *__wrap_malloc(size_t n) {
        return fails() ? NULL : __real_malloc(n);
}

void *__wrap_calloc(size_t n, size_t size) {
        return fails() ? NULL : __real_calloc(n, size);
}

void *__wrap_realloc(void *p, size_t n) {
        return fails() ? NULL : __real_realloc(p, n);
}

char *__wrap_strdup(const char *s) {
        return fails() ? NULL : __real_strdup(s);
}

char *__wrap_strndup(const char *s, size_t n) {
        return fails() ? NULL : __real_strndup(s, n);
}
