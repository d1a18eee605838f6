/* SPDX-License-Identifier: MIT */
#include "spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <limits.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "util.h"

#define SPOOL_NAME_MAX (SPOOL_KEY_MAX + 112) /* "<key>.<n>@<64 hex>-<size>" */
#define UBRN_DIGITS 12

struct spool {
        char *dir; /* owned: STATE_DIR/spool */
        int dirfd; /* owned: for *at() calls */
        /* Numbers each download ("<key>.<n>.part", then "<key>.<n>@…"), from past every
         * number in the directory at open: no two files of one key ever share a name. */
        atomic_ulong next;
        pthread_mutex_t lock;    /* guards held */
        struct spool_file *held; /* borrowed: the finished files handed out and not yet freed */
};

struct spool_file {
        struct spool *spool;     /* borrowed */
        char key[SPOOL_KEY_MAX];
        char part[SPOOL_NAME_MAX]; /* "<key>.<n>.part" while downloading; "" for a reused file */
        char name[SPOOL_NAME_MAX]; /* "<key>.<n>@<sha256>-<size>" once finished or reused */
        int fd;                  /* owned while downloading; -1 once finished (see spool_file_open) */
        bool finished;           /* renamed to its final name, or reused */
        bool held;               /* on spool->held: no reuse hands its file out again */
        struct spool_file *next_held; /* borrowed */
        int64_t size;            /* bytes written (or verified) */
        int64_t max_bytes;
        EVP_MD_CTX *md;          /* owned while writing; NULL once finished */
        char sha256[65];         /* hex, once finished or verified */
};

/* A directory stream of its own over the spool, at its start; NULL with errno.
 * Never a dup() of dirfd: dups share one file offset, and the fetching
 * threads scan at once, each then skipping entries the other read (a
 * removal's scan missed the very file it was to remove). */
static DIR *open_scan(const struct spool *s) {
        int fd = openat(s->dirfd, ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        DIR *d;

        if (fd < 0)
                return NULL;
        d = fdopendir(fd);
        if (!d) {
                int err = errno;
                close(fd);
                errno = err;
        }
        return d;
}

/* The n of a finished "<key>.<n>@…"; 0 for any other name (numbering past 0 then is harmless). */
static unsigned long number_of(const char *name) {
        const char *at = strchr(name, '@'), *dot;
        char *end;

        if (!at)
                return 0;
        for (dot = at; dot > name && dot[-1] != '.'; dot--)
                ;
        if (dot == name || dot == at)
                return 0;
        errno = 0;
        unsigned long n = strtoul(dot, &end, 10);
        return end == at && errno == 0 ? n : 0;
}

int spool_open(const char *state_dir, struct spool **ret, struct errbuf *e) {
        struct spool *s;
        char path[PATH_MAX];
        DIR *d;
        struct dirent *de;

        if (snprintf(path, sizeof path, "%s/spool", state_dir) >= (int) sizeof path)
                return err_set(e, -ENAMETOOLONG, "state directory path too long");
        if (mkdir(state_dir, 0700) < 0 && errno != EEXIST)
                return err_set(e, -errno, "cannot create state directory %s: %s", state_dir, strerror(errno));
        if (mkdir(path, 0700) < 0 && errno != EEXIST)
                return err_set(e, -errno, "cannot create spool directory %s: %s", path, strerror(errno));
        if (access(path, W_OK | X_OK) < 0)
                return err_set(e, -errno, "spool directory %s is not writable: %s", path, strerror(errno));

        s = calloc(1, sizeof *s);
        if (!s || !(s->dir = strdup(path))) {
                free(s);
                return err_set(e, -ENOMEM, "out of memory");
        }
        s->dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (s->dirfd < 0) {
                int r = -errno;
                free(s->dir);
                free(s);
                return err_set(e, r, "cannot open spool directory %s: %s", path, strerror(-r));
        }

        /* A ".part" is a download a crash interrupted: never trusted, removed.  New
         * downloads are numbered past every finished file left. */
        unsigned long next = 0;
        d = open_scan(s);
        if (d) {
                while ((de = readdir(d))) {
                        size_t n = strlen(de->d_name);
                        if (n > 5 && strcmp(de->d_name + n - 5, ".part") == 0)
                                (void) unlinkat(s->dirfd, de->d_name, 0);
                        else if (strchr(de->d_name, '@') && number_of(de->d_name) >= next)
                                next = number_of(de->d_name) + 1;
                }
                closedir(d);
        }
        atomic_init(&s->next, next);
        pthread_mutex_init(&s->lock, NULL);
        *ret = s;
        return 0;
}

void spool_close(struct spool *s) {
        if (!s)
                return;
        if (s->dirfd >= 0)
                close(s->dirfd);
        pthread_mutex_destroy(&s->lock);
        free(s->dir);
        free(s);
}

/* Whether a live spool_file has the finished file `name`. */
static bool held_locked(const struct spool *s, const char *name) {
        for (const struct spool_file *f = s->held; f; f = f->next_held)
                if (strcmp(f->name, name) == 0)
                        return true;
        return false;
}

static void hold_locked(struct spool_file *f) {
        f->next_held = f->spool->held;
        f->spool->held = f;
        f->held = true;
}

static void unhold(struct spool_file *f) {
        if (!f->held)
                return;
        pthread_mutex_lock(&f->spool->lock);
        for (struct spool_file **p = &f->spool->held; *p; p = &(*p)->next_held)
                if (*p == f) {
                        *p = f->next_held;
                        break;
                }
        pthread_mutex_unlock(&f->spool->lock);
        f->held = false;
}

/* SHA-256 of the parts one after the other. 0 or -ENOMEM. */
static int sha256_parts(const void *const *parts, const size_t *lens, size_t n, unsigned char digest[32]) {
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        unsigned int dlen = 0;
        int r = md && EVP_DigestInit_ex(md, EVP_sha256(), NULL) == 1 ? 0 : -ENOMEM;

        for (size_t i = 0; i < n && r == 0; i++)
                if (EVP_DigestUpdate(md, parts[i], lens[i]) != 1)
                        r = -ENOMEM;
        if (r == 0 && (EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen != 32))
                r = -ENOMEM;
        EVP_MD_CTX_free(md);
        return r;
}

static void be32(uint32_t v, unsigned char out[4]) {
        for (int i = 0; i < 4; i++)
                out[i] = (unsigned char) (v >> (24 - 8 * i));
}

int spool_key(char ret[SPOOL_KEY_MAX], const char *source_ubrn, int64_t source_version, const char *kind,
              const char *id, unsigned occurrence) {
        unsigned char head[16], digest[32];
        size_t kind_len = strlen(kind);

        if (strlen(source_ubrn) != UBRN_DIGITS || strspn(source_ubrn, "0123456789") != UBRN_DIGITS)
                return -EINVAL;
        /* Every part but the id has a fixed length or a length before it, and the
         * id comes last: two different documents never hash the same input. */
        be32((uint32_t) ((uint64_t) source_version >> 32), head);
        be32((uint32_t) source_version, head + 4);
        be32(occurrence, head + 8);
        be32((uint32_t) kind_len, head + 12);
        if (sha256_parts((const void *[]){ head, kind, id }, (size_t[]){ sizeof head, kind_len, strlen(id) }, 3,
                         digest) < 0)
                return -ENOMEM;
        memcpy(ret, source_ubrn, UBRN_DIGITS);
        ret[UBRN_DIGITS] = '-';
        hex_encode(digest, sizeof digest, ret + UBRN_DIGITS + 1);
        return 0;
}

static int new_file(struct spool *s, const char *key, int fd, struct spool_file **ret) {
        struct spool_file *f = calloc(1, sizeof *f);

        if (!f)
                return -ENOMEM;
        f->spool = s;
        f->fd = fd;
        snprintf(f->key, sizeof f->key, "%s", key);
        *ret = f;
        return 0;
}

int spool_file_create(struct spool *s, const char *key, int64_t max_bytes, struct spool_file **ret,
                      struct errbuf *e) {
        char name[SPOOL_NAME_MAX];
        struct spool_file *f;
        int fd, r;

        snprintf(name, sizeof name, "%s.%lu.part", key, atomic_fetch_add(&s->next, 1));
        fd = openat(s->dirfd, name, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
        if (fd < 0)
                return err_set(e, -errno, "spool: cannot create %s/%s: %s", s->dir, name, strerror(errno));
        r = new_file(s, key, fd, &f);
        if (r < 0) {
                close(fd);
                (void) unlinkat(s->dirfd, name, 0);
                return err_set(e, r, "out of memory");
        }
        memcpy(f->part, name, sizeof f->part);
        f->max_bytes = max_bytes;
        f->md = EVP_MD_CTX_new();
        if (!f->md || EVP_DigestInit_ex(f->md, EVP_sha256(), NULL) != 1) {
                spool_file_free(f);
                return err_set(e, -ENOMEM, "spool: cannot start SHA-256");
        }
        *ret = f;
        return 0;
}

int spool_file_write(struct spool_file *f, const void *buf, size_t n, struct errbuf *e) {
        const char *p = buf;

        if (f->finished || !f->md)
                return err_set(e, -EINVAL, "spool: write after finish");
        if (f->size + (int64_t) n > f->max_bytes)
                return err_set(e, -EFBIG, "document larger than the configured maximum of %" PRId64 " bytes",
                               f->max_bytes);
        if (EVP_DigestUpdate(f->md, buf, n) != 1)
                return err_set(e, -EIO, "spool: SHA-256 update failed");
        while (n > 0) {
                ssize_t w = write(f->fd, p, n);
                if (w < 0) {
                        if (errno == EINTR)
                                continue;
                        /* The file system's or the process's file size limit (EFBIG) is a full
                         * disk to the caller, never "larger than the configured maximum": the
                         * document is retried, not recorded as refused. */
                        int err = errno == EFBIG || errno == EDQUOT ? ENOSPC : errno;
                        return err_set(e, -err, "spool: cannot write %s/%s: %s (disk full?)", f->spool->dir,
                                       f->part, strerror(errno));
                }
                p += w;
                n -= (size_t) w;
                f->size += w;
        }
        return 0;
}

int spool_file_finish(struct spool_file *f, struct errbuf *e) {
        unsigned char digest[EVP_MAX_MD_SIZE];
        unsigned int dlen = 0;
        size_t stem = strlen(f->part) - strlen(".part"); /* "<key>.<n>" */
        int r;

        if (EVP_DigestFinal_ex(f->md, digest, &dlen) != 1 || dlen != 32)
                return err_set(e, -EIO, "spool: SHA-256 failed");
        EVP_MD_CTX_free(f->md);
        f->md = NULL;
        hex_encode(digest, 32, f->sha256);

        /* "<key>.<n>@<sha256>-<size>": the name says what the bytes must hash to, so
         * no second file is needed.  Held before it exists, so that no reuse in
         * another thread takes it. */
        snprintf(f->name, sizeof f->name, "%.*s@%s-%" PRId64, (int) stem, f->part, f->sha256, f->size);
        pthread_mutex_lock(&f->spool->lock);
        hold_locked(f);
        pthread_mutex_unlock(&f->spool->lock);
        /* Not fsync'd (see spool.h): the bytes are checked against the name before
         * any use after this process. */
        if (renameat(f->spool->dirfd, f->part, f->spool->dirfd, f->name) < 0) {
                r = -errno;
                unhold(f);
                (void) unlinkat(f->spool->dirfd, f->part, 0);
                f->part[0] = '\0';
                return err_set(e, r, "spool: cannot keep %s/%s: %s", f->spool->dir, f->key, strerror(-r));
        }
        f->finished = true;
        /* The descriptor goes: a referral's documents wait for the writer holding
         * none, however many they are (spool_file_open reads them). */
        close(f->fd);
        f->fd = -1;
        return 0;
}

/* Hashes the whole file behind fd from offset 0 with a bounded buffer. */
static int hash_fd(int fd, char hex[65], int64_t *ret_size) {
        unsigned char buf[64 * 1024], digest[EVP_MAX_MD_SIZE];
        unsigned int dlen = 0;
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        int64_t off = 0;
        int r = 0;

        if (!md || EVP_DigestInit_ex(md, EVP_sha256(), NULL) != 1) {
                r = -ENOMEM;
                goto out;
        }
        for (;;) {
                ssize_t n = pread(fd, buf, sizeof buf, off);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        r = -errno;
                        goto out;
                }
                if (n == 0)
                        break;
                if (EVP_DigestUpdate(md, buf, (size_t) n) != 1) {
                        r = -EIO;
                        goto out;
                }
                off += n;
        }
        if (EVP_DigestFinal_ex(md, digest, &dlen) != 1 || dlen != 32) {
                r = -EIO;
                goto out;
        }
        hex_encode(digest, 32, hex);
        *ret_size = off;
out:
        EVP_MD_CTX_free(md);
        return r;
}

/* Calls fn for each directory entry named "<key>.<digits>@…"; stops at the
 * first that returns non-zero and returns that.  The spool holds a few files
 * at a time (each referral's are removed at its commit), so a scan is cheap. */
static int for_each_final(struct spool *s, const char *key, int (*fn)(struct spool *, const char *, void *),
                          void *userdata) {
        size_t klen = strlen(key);
        struct dirent *de;
        DIR *d = open_scan(s);
        int r = 0;

        if (!d)
                return -errno;
        while (r == 0 && (de = readdir(d))) {
                const char *n = de->d_name;
                if (strncmp(n, key, klen) == 0 && n[klen] == '.' && strspn(n + klen + 1, "0123456789") > 0 &&
                    n[klen + 1 + strspn(n + klen + 1, "0123456789")] == '@')
                        r = fn(s, n, userdata);
        }
        closedir(d);
        return r;
}

struct reuse_ctx {
        const char *key;
        struct spool_file *found;
        struct errbuf *e;
};

/* One candidate, unless another spool_file has it: taken when its bytes hash
 * to what its name says, else deleted. */
static int try_reuse(struct spool *s, const char *name, void *userdata) {
        struct reuse_ctx *c = userdata;
        const char *at = strrchr(name, '@');
        char want_sha[65], got_sha[65], tail;
        int64_t want_size, got_size;
        struct spool_file *f = NULL;
        int fd, r;

        if (strlen(name) >= SPOOL_NAME_MAX) {
                (void) unlinkat(s->dirfd, name, 0); /* no name of ours */
                return 0;
        }
        pthread_mutex_lock(&s->lock);
        if (held_locked(s, name)) {
                pthread_mutex_unlock(&s->lock);
                return 0; /* a file of this key in hand elsewhere (a related referral of two in flight) */
        }
        r = new_file(s, c->key, -1, &f);
        if (r == 0) {
                snprintf(f->name, sizeof f->name, "%s", name);
                hold_locked(f);
        }
        pthread_mutex_unlock(&s->lock);
        if (r < 0)
                return err_set(c->e, r, "out of memory");

        if (!at || sscanf(at + 1, "%64[0-9a-f]-%" SCNd64 "%c", want_sha, &want_size, &tail) != 2 ||
            strlen(want_sha) != 64)
                goto discard;
        fd = openat(s->dirfd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                goto discard;
        r = hash_fd(fd, got_sha, &got_size);
        close(fd);
        if (r < 0) {
                spool_file_free(f);
                return err_set(c->e, r, "spool: cannot read %s/%s: %s", s->dir, name, strerror(-r));
        }
        if (got_size != want_size || strcmp(got_sha, want_sha) != 0)
                goto discard;
        f->finished = true;
        f->size = got_size;
        memcpy(f->sha256, got_sha, sizeof f->sha256);
        c->found = f;
        return 1;
discard:
        spool_file_free(f);
        (void) unlinkat(s->dirfd, name, 0);
        return 0;
}

int spool_file_reuse(struct spool *s, const char *key, struct spool_file **ret, struct errbuf *e) {
        struct reuse_ctx c = { .key = key, .e = e };
        int r = for_each_final(s, key, try_reuse, &c);

        if (r < 0)
                return e && e->msg[0] ? r : err_set(e, r, "spool: cannot read %s: %s", s->dir, strerror(-r));
        if (!c.found)
                return 0;
        *ret = c.found;
        return 1;
}

int spool_file_open(const struct spool_file *f, struct errbuf *e) {
        int fd;

        if (!f->finished)
                return err_set(e, -EINVAL, "spool: %s/%s read before it is finished", f->spool->dir, f->part);
        fd = openat(f->spool->dirfd, f->name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
        if (fd < 0)
                return err_set(e, -errno, "spool: cannot open %s/%s: %s", f->spool->dir, f->name, strerror(errno));
        return fd;
}

int64_t spool_file_size(const struct spool_file *f) {
        return f->size;
}

const char *spool_file_sha256(const struct spool_file *f) {
        return f->sha256;
}

void spool_file_free(struct spool_file *f) {
        if (!f)
                return;
        if (f->fd >= 0)
                close(f->fd);
        if (!f->finished && f->part[0])
                (void) unlinkat(f->spool->dirfd, f->part, 0);
        unhold(f);
        EVP_MD_CTX_free(f->md);
        free(f);
}

void spool_file_remove(struct spool_file *f) {
        if (f && f->finished)
                (void) unlinkat(f->spool->dirfd, f->name, 0);
}

int spool_sweep(struct spool *s, bool (*keep)(void *userdata, const char *ubrn), void *userdata) {
        DIR *d = open_scan(s);
        struct dirent *de;
        int removed = 0;

        if (!d)
                return -errno;
        while ((de = readdir(d))) {
                const char *name = de->d_name;
                char ubrn[UBRN_DIGITS + 1];
                if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0)
                        continue;
                /* "<UBRN>-<64 hex>…": whose it is; anything else is no download of ours. */
                bool ours = strspn(name, "0123456789") == UBRN_DIGITS && name[UBRN_DIGITS] == '-' &&
                            strspn(name + UBRN_DIGITS + 1, "0123456789abcdef") == 64;
                size_t n = strlen(name);
                bool part = n > 5 && strcmp(name + n - 5, ".part") == 0;
                snprintf(ubrn, sizeof ubrn, "%.*s", UBRN_DIGITS, name);
                if (ours && !part && keep && keep(userdata, ubrn))
                        continue;
                pthread_mutex_lock(&s->lock);
                bool held = held_locked(s, name);
                pthread_mutex_unlock(&s->lock);
                if (held)
                        continue; /* in hand: the caller's, never swept from under it */
                if (unlinkat(s->dirfd, name, 0) == 0)
                        removed++;
        }
        closedir(d);
        return removed;
}
