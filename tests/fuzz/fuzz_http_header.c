/* SPDX-License-Identifier: MIT */
/*
 * libFuzzer target: what an HTTP answer's headers carry, parsed by the e-RS
 * client: a raw header line for Retry-After (not NUL-terminated, as libcurl
 * hands it over), the same bytes as a Content-Type to match against each
 * type we expect, as a redirect Location for the loopback test, and as an
 * error page whose words a log line quotes (server_text).
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "daemon/ers.h"
#include "daemon/escape.h"
#include "daemon/server_text.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
        static const char *const types[] = { "application/fhir+json", "application/json", "application/pdf",
                                             "application/octet-stream" };
        char *line, *text;

        /* An exact-size copy, so ASan sees any read past `size`. */
        line = malloc(size ? size : 1);
        if (!line)
                return 0;
        memcpy(line, data, size);
        if (ers_header_retry_after(line, size, (time_t) 1795464000) < -1)
                abort(); /* -1, or a delay that is not negative */
        /* The words of a page: bounded, terminated where it says, no C0 control, and as
         * the one rule shows text (escaping them again changes nothing). */
        char words[SERVER_TEXT_MAX + 4];
        const struct secrets secrets = { { "secret-api-key-0123", "eyJtoken", NULL, "" } };
        size_t n = server_text(line, size, &secrets, words, sizeof words);
        if (n >= sizeof words || words[n] != '\0' || strlen(words) != n || escape_text_len(words) != n)
                abort();
        for (size_t i = 0; i < n; i++)
                if ((unsigned char) words[i] < 0x20 || words[i] == 0x7f)
                        abort();
        free(line);

        text = malloc(size + 1);
        if (!text)
                return 0;
        memcpy(text, data, size);
        text[size] = '\0';
        for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
                (void) ers_content_type_is(text, types[i]);
        (void) ers_url_is_loopback(text);
        /* A Location may be followed only to https, or http on loopback: never anything else. */
        if (ers_redirect_allowed(text) && strncasecmp(text, "https://", 8) != 0 &&
            !(strncasecmp(text, "http://", 7) == 0 && ers_url_is_loopback(text)))
                abort();
        free(text);
        return 0;
}
