/* SPDX-License-Identifier: MIT */
/*
 * Secret files (secret.h): the path of one (systemd credentials included),
 * its mode and owner checked, its text read, checked and handed over once,
 * what was refused wiped.
 *
 * Not here: which keys name secrets (config.c), the JWT key's own check
 * (auth.c), reading a file without blocking (conftext.c).
 */
#include "secret.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "auth.h"
#include "conftext.h"

int secret_parse_path(struct loader *l, const struct key *k, const struct value *v, void *field) {
        const char *dir = getenv("CREDENTIALS_DIRECTORY"), *name = v->str + strlen(CREDENTIAL_PREFIX);
        char *s;

        if (strncmp(v->str, CREDENTIAL_PREFIX, strlen(CREDENTIAL_PREFIX)) != 0)
                return conf_parse_path(l, k, v, field);
        if (!dir || dir[0] != '/') {
                problem_v(l, v, "%s: starts with %s (a systemd credential) but $CREDENTIALS_DIRECTORY is not set: "
                          "add LoadCredential= to the unit, or give a path", v->key, CREDENTIAL_PREFIX);
                return -EINVAL;
        }
        if (!name[0] || strchr(name, '/') || strcmp(name, "..") == 0 || strcmp(name, ".") == 0) {
                problem_v(l, v, "%s: %sNAME needs a credential name without '/'", v->key, CREDENTIAL_PREFIX);
                return -EINVAL;
        }
        if (asprintf(&s, "%s/%s", dir, name) < 0)
                return conf_oom(l);
        free(*(char **) field);
        *(char **) field = s;
        return 0;
}


int secret_open(struct loader *l, const config_setting_t *s, const char *key, const char *path, struct stat *st) {
        const char *cred_dir = getenv("CREDENTIALS_DIRECTORY");
        bool credential = cred_dir && cred_dir[0] == '/' && strncmp(path, cred_dir, strlen(cred_dir)) == 0 &&
                          path[strlen(cred_dir)] == '/';
        int fd = regular_file_open(path, st);

        if (fd < 0) {
                problem_at(l, s, "%s: cannot read: %s", key, regular_file_error(fd));
                return -EINVAL;
        }
        if (st->st_mode & (S_IRWXG | S_IRWXO)) {
                problem_at(l, s, "%s: must not be accessible by group or others (mode %04o); chmod 600 it", key,
                           (unsigned) (st->st_mode & 07777));
                close(fd);
                return -EINVAL;
        }
        if (st->st_uid != geteuid() && !(credential && st->st_uid == 0)) {
                problem_at(l, s, "%s: owned by uid %u, not by the user ersd runs as (uid %u); chown it", key,
                           (unsigned) st->st_uid, (unsigned) geteuid());
                close(fd);
                return -EINVAL;
        }
        return fd;
}

void secret_read(struct loader *l, const config_setting_t *s, const char *key, const char *path,
                 enum secret_kind kind, char **ret) {
        struct stat st;
        struct errbuf e;
        char *buf = NULL;
        size_t len = 0, cap = 0;
        int fd, r;

        fd = secret_open(l, s, key, path, &st);
        if (fd < 0)
                return;
        r = fd_read_text(fd, &st, TOKEN_FILE_MAX, &buf, &len);
        if (r == -EFBIG)
                problem_at(l, s, "%s: larger than %d bytes: not a %s", key, TOKEN_FILE_MAX,
                           kind == SECRET_PEM ? "private key" : "token or key");
        else if (r == -ENOMEM)
                conf_oom(l);
        else if (r < 0)
                problem_at(l, s, "%s: cannot read: %s", key, strerror(-r));
        if (r < 0)
                goto out;
        cap = len + 1;
        if (kind == SECRET_PEM) {
                if (memchr(buf, '\0', len) || auth_check_private_key(buf, len, &e) < 0) {
                        problem_at(l, s, "%s: %s", key, memchr(buf, '\0', len) ? "not a PEM private key" : e.msg);
                        goto out;
                }
        } else {
                while (len > 0 && strchr(" \t\r\n\v\f", buf[len - 1]))
                        len--;
                buf[len] = '\0';
                if (len == 0) {
                        problem_at(l, s, "%s: the file is empty", key);
                        goto out;
                }
                for (size_t i = 0; i < len; i++)
                        if ((unsigned char) buf[i] <= 0x20 || (unsigned char) buf[i] >= 0x7f) {
                                /* It goes into an HTTP header: no space, control or non-ASCII byte. */
                                problem_at(l, s, "%s: the %s contains a space, control or non-ASCII character", key,
                                           strcmp(key, "ers.bearer_token_file") == 0 ? "token" : "key");
                                goto out;
                        }
        }
        *ret = buf; /* handed over: no second copy of the secret */
        buf = NULL;
out:
        if (buf) {
                explicit_bzero(buf, cap);
                free(buf);
        }
        close(fd);
}
