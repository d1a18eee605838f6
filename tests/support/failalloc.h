/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Allocation failure injection for the unit tests (STYLE.md practice 9): fail
 * the Nth allocation, for every N, and check each error path reports -ENOMEM,
 * leaves its output untouched and frees what it took (ASan and valgrind say
 * so in the sanitizer runs).
 *
 * Active only in binaries linked with the Makefile's ALLOC_WRAP
 * (-Wl,--wrap=malloc,…): the linker then sends malloc, calloc, realloc, strdup
 * and strndup calls made from OUR statically linked objects (libersd.a, the
 * test) through this file.  Allocations inside shared libraries (json-c,
 * libconfig, libcurl) are not wrapped, on purpose: json-c 0.16 itself crashes
 * when its own allocations fail, and their error paths are not ours to prove.
 *
 * A walk looks like:
 *
 *     for (n = 0;; n++) {
 *             failalloc_arm(n);
 *             r = parse(…);
 *             if (!failalloc_disarm())   // no allocation failed: the walk is over
 *                     break;
 *             assert_int_equal(r, -ENOMEM);
 *     }
 */

#include <stdbool.h>

/* True when this binary was linked with ALLOC_WRAP (otherwise nothing fails). */
bool failalloc_linked(void);

/* From now on, let `n` allocations succeed and fail the next one (n = 0: the
 * first).  Only one fails; later ones succeed again. */
void failalloc_arm(long n);

/* Stops failing.  Returns whether the armed failure happened. */
bool failalloc_disarm(void);

/* How many wrapped allocations were made since the program started. */
unsigned long failalloc_calls(void);
