/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The byte stream every synthetic document is made of, shared by the mock
 * (which serves it) and the tests (tests/support/world.c, which hash what
 * they expect without asking the mock): any byte range of the stream of a
 * key is computed on demand, so a document of any size costs no memory.
 * Byte p of the stream of `key` is byte (p mod 8) of the 64-bit word
 * stream_mix64(key + (p / 8) * 0x9e3779b97f4a7c15) in the host's byte order.
 */

#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* splitmix64's output function: a good 64-bit mixer. */
static inline uint64_t stream_mix64(uint64_t x)
{
        x += 0x9e3779b97f4a7c15ULL;
        x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
        x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
        return x ^ (x >> 31);
}

/* Bytes [pos, pos + len) of the stream of `key` into buf. */
static inline void stream_fill(uint64_t key, uint64_t pos, unsigned char *buf, size_t len)
{
        size_t done = 0;

        while (done < len) {
                uint64_t word = stream_mix64(key + (pos >> 3) * 0x9e3779b97f4a7c15ULL);
                unsigned off = (unsigned)(pos & 7);
                if (off == 0 && len - done >= 8) {
                        memcpy(buf + done, &word, 8);
                        done += 8;
                        pos += 8;
                        continue;
                }
                unsigned char bytes[8];
                memcpy(bytes, &word, 8);
                while (off < 8 && done < len) {
                        buf[done++] = bytes[off++];
                        pos++;
                }
        }
}
