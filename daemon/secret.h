/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * Secret files named by the configuration (internal: secret.c, config.c): a
 * bearer token, an API key, a private key, a client certificate's key.  Each
 * is refused unless it is a regular file owned by the user ersd runs as (or
 * by root inside systemd's $CREDENTIALS_DIRECTORY) with no permission for
 * group or others; "%d/NAME" names NAME in that directory.  Neither a secret
 * nor its path is ever printed; what is read is wiped when freed
 * (auth_wipe_free()), and a refused read is wiped before it is freed.
 *
 * Not here: which keys name secrets and when they are read (config.c), the
 * loader that reports the problems (conftab.c), checking a private key
 * (auth.c).
 */

#include <libconfig.h>
#include <sys/stat.h>

#include "conftab.h"

#define TOKEN_FILE_MAX  (64 * 1024)   /* likewise a bearer token, API key or private key file */
#define CREDENTIAL_PREFIX "%d/"       /* a secret file in $CREDENTIALS_DIRECTORY (systemd LoadCredential=) */

/* How secret_read() checks what it read. */
enum secret_kind {
        SECRET_TOKEN, /* one word of visible ASCII (it goes into an HTTP header or a JWT claim) */
        SECRET_PEM,   /* a PEM RSA private key (auth_check_private_key) */
};

/* A key parser (key_parse_fn) for the path of a secret file: as
 * conf_parse_path(), but "%d/NAME" is NAME in $CREDENTIALS_DIRECTORY
 * (systemd's LoadCredential=/SetCredentialEncrypted=; %d is the same
 * specifier in the unit file).  The path is never printed. */
int secret_parse_path(struct loader *l, const struct key *k, const struct value *v, void *field);

/*
 * Opens the secret file `path` (the setting s names it, for reports as `key`;
 * the path itself is never printed) and checks it is a regular file owned by
 * the user ersd runs as (or root, for a systemd credential: systemd owns
 * those) and gives group and others no permission at all.  Returns the fd
 * (*st filled), or -EINVAL after reporting.
 */
int secret_open(struct loader *l, const config_setting_t *s, const char *key, const char *path, struct stat *st);

/* Reads the secret file `path` into *ret (owned; free it with
 * auth_wipe_free()) after secret_open()'s checks and those of `kind`; on a
 * problem reports it (at `s`, as `key`) and leaves *ret as it was. */
void secret_read(struct loader *l, const config_setting_t *s, const char *key, const char *path,
                 enum secret_kind kind, char **ret);
