/* SPDX-License-Identifier: MIT */
#include "util.h"

#include <arpa/inet.h>
#include <curl/curl.h>
#include <errno.h>
#include <netinet/in.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

int uuid_v4(char ret[UUID_STR_LEN]) {
        unsigned char b[16];
        ssize_t n;

        do
                n = getrandom(b, sizeof b, 0);
        while (n < 0 && errno == EINTR);
        if (n != (ssize_t) sizeof b)
                return n < 0 ? -errno : -EIO;
        b[6] = (unsigned char) ((b[6] & 0x0f) | 0x40);
        b[8] = (unsigned char) ((b[8] & 0x3f) | 0x80);
        snprintf(ret, UUID_STR_LEN,
                 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x", b[0], b[1],
                 b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9], b[10], b[11], b[12], b[13], b[14],
                 b[15]);
        return 0;
}

static time_t (*wall_clock)(void); /* NULL: time() */

void wall_clock_set(time_t (*clock)(void)) {
        wall_clock = clock;
}

void now_utc_iso(char ret[32]) {
        utc_iso(wall_clock ? wall_clock() : time(NULL), ret);
}

void utc_iso(time_t t, char ret[32]) {
        struct tm tm;

        if (!gmtime_r(&t, &tm))
                memset(&tm, 0, sizeof tm);
        strftime(ret, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

int utc_iso_parse(const char *s, time_t *ret) {
        struct tm tm = { 0 };
        const char *end = s ? strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm) : NULL;

        if (!end || *end)
                return -EINVAL;
        *ret = timegm(&tm);
        return 0;
}

void hex_encode(const unsigned char *in, size_t n, char *ret) {
        static const char digits[] = "0123456789abcdef";

        for (size_t i = 0; i < n; i++) {
                ret[2 * i] = digits[in[i] >> 4];
                ret[2 * i + 1] = digits[in[i] & 15];
        }
        ret[2 * n] = '\0';
}

int sha256_hex_of(const void *bytes, size_t n, char ret[65]) {
        unsigned char digest[32];
        unsigned int dlen = 0;

        if (EVP_Digest(bytes, n, digest, &dlen, EVP_sha256(), NULL) != 1 || dlen != sizeof digest)
                return -EIO;
        hex_encode(digest, sizeof digest, ret);
        return 0;
}

double now_monotonic(void) {
        struct timespec ts;

        clock_gettime(CLOCK_MONOTONIC, &ts);
        return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

bool host_is_loopback(const char *host) {
        unsigned char a[sizeof(struct in6_addr)];
        char buf[64];
        size_t n = strlen(host);

        if (strcasecmp(host, "localhost") == 0)
                return true;
        if (inet_pton(AF_INET, host, a) == 1)
                return a[0] == 127;
        if (n > 2 && n < sizeof buf && host[0] == '[' && host[n - 1] == ']') {
                memcpy(buf, host + 1, n - 2);
                buf[n - 2] = '\0';
                return inet_pton(AF_INET6, buf, a) == 1 && memcmp(a, &in6addr_loopback, sizeof a) == 0;
        }
        return false;
}

bool url_is_loopback(const char *url) {
        CURLU *u = curl_url();
        char *host = NULL;
        bool r = false;

        if (u && curl_url_set(u, CURLUPART_URL, url, 0) == CURLUE_OK &&
            curl_url_get(u, CURLUPART_HOST, &host, 0) == CURLUE_OK && host)
                r = host_is_loopback(host);
        curl_free(host);
        curl_url_cleanup(u);
        return r;
}

size_t utf8_char_length(unsigned char lead) {
        return lead >= 0xF0 && lead < 0xF8 ? 4 : lead >= 0xE0 && lead < 0xF0 ? 3 : lead >= 0xC0 && lead < 0xE0 ? 2 : 1;
}

size_t utf8_cut(const char *s, size_t n) {
        for (size_t back = 1; back <= 3 && back <= n; back++) {
                unsigned char c = (unsigned char) s[n - back];

                if ((c & 0xC0) != 0x80) /* not a continuation byte: a character starts here */
                        return utf8_char_length(c) > back ? back : 0;
        }
        return 0;
}

const char *utf8_prefix(const char *s, size_t max, char *ret) {
        size_t len;

        if (!s || strlen(s) <= max)
                return s ? s : "";
        len = max - utf8_cut(s, max);
        memcpy(ret, s, len);
        memcpy(ret + len, "\xe2\x80\xa6", 4); /* "…" and the NUL */
        return ret;
}

size_t utf8_hold_complete(struct utf8_hold *h, const char **data, size_t *len) {
        size_t whole, n;

        if (h->len == 0)
                return 0;
        whole = utf8_char_length((unsigned char) h->bytes[0]);
        while (h->len < whole && *len > 0 && ((unsigned char) **data & 0xC0) == 0x80) {
                h->bytes[h->len++] = **data;
                (*data)++;
                (*len)--;
        }
        if (h->len < whole && *len == 0)
                return 0; /* the rest has not come yet */
        /* whole, or cut short by a byte that cannot continue it: handed on as
         * it is, for the parser to refuse where it would have refused it whole */
        n = h->len;
        h->len = 0;
        return n;
}

void utf8_hold_tail(struct utf8_hold *h, const char *data, size_t *len) {
        size_t cut = utf8_cut(data, *len);

        if (cut == 0)
                return;
        *len -= cut;
        memcpy(h->bytes, data + *len, cut);
        h->len = cut;
}

void *array_grow(void *array, size_t *cap, size_t need, size_t size, size_t first) {
        size_t n = *cap ? *cap : first ? first : 1;
        void *p;

        if (need <= *cap)
                return array;
        while (n < need) {
                if (n > SIZE_MAX / 2)
                        return NULL;
                n *= 2;
        }
        if (size && n > SIZE_MAX / size)
                return NULL;
        p = realloc(array, n * size);
        if (p)
                *cap = n;
        return p;
}
