/* SPDX-License-Identifier: MIT */
#pragma once

/*
 * The spool: documents downloaded from e-RS land here first, in
 * STATE_DIR/spool, before they are streamed into the PAS database.  It
 * decouples the network from the database (no PAS lock is ever held while we
 * wait on e-RS) and lets a retry reuse what is already verified.
 *
 * A document is written to "<key>.<n>.part" while it arrives (n numbers the
 * downloads, past every file the directory held at open, so two threads
 * fetching the same key never write one file), its SHA-256 and size computed
 * on the way; spool_file_finish() renames it to "<key>.<n>@<sha256>-<size>",
 * so the name itself says what the bytes must hash to, and closes it: a
 * finished file holds no descriptor (spool_file_open() opens it to be read),
 * so a referral of any number of documents can wait for the writer.  A
 * finished file found again later is only reused after its bytes are hashed
 * anew and match its name: leftovers are never trusted blindly.  After the
 * PAS commit, spool_file_remove() deletes it.
 *
 * Nothing here is fsync'd, on purpose.  What makes a document durable is the
 * PAS commit, and the bytes the PAS gets are hashed again as they are written
 * (pas_put_document) and must match what was downloaded, so they never depend
 * on the spool surviving anything.  The spool only spares a download: after a
 * crash of ersd the page cache still holds every finished file; after a power
 * cut a file may be lost or torn, its hash then fails, and it is downloaded
 * again.  An fsync per document bought nothing more and cost a quarter to a
 * third of a round's wall time, and the disk it shares with the database.
 *
 * Thread-safe: the fetching threads create, finish, reuse and free files of
 * one spool at once.  Each finished file is held by one spool_file at a time
 * (a download's own, or one reuse's) until freed: a reuse never hands out a
 * file another spool_file has, so no referral's commit removes a file
 * another is yet to read.
 *
 * Keys are made by spool_key(): the source UBRN, then the SHA-256 of what
 * tells the document from every other of that referral.  Injective over
 * every id e-RS may send (two documents never share a file), of a fixed
 * length whatever the id's, and [0-9a-f-] only, so no input can escape the
 * directory.  Contents are patient data: files are created 0600 in a 0700
 * directory.
 */

#include <stdbool.h>
#include <stdint.h>

#include "err.h"

#define SPOOL_KEY_MAX 80 /* "<12-digit UBRN>-<64 hex>" and NUL, with room */

struct spool;      /* the directory: owned by the caller of spool_open */
struct spool_file; /* one document being written or read back */

/* Opens (creating, mode 0700) STATE_DIR/spool and removes stale "*.part"
 * files left by a crash.  Caller owns *ret (spool_close). */
int spool_open(const char *state_dir, struct spool **ret, struct errbuf *e);
void spool_close(struct spool *s); /* accepts NULL */

/* The key of one document of version `source_version` of the referral
 * `source_ubrn` (12 digits): "<source_ubrn>-<SHA-256 hex of (source_version,
 * occurrence, kind, id)>", where kind is the document's kind as the PAS names
 * it ("ATTACHMENT", "CRI"), id its e-RS attachment id (the letter's
 * "CRI-v<version>"), any bytes and length, and occurrence counts the earlier
 * documents of that referral with the same id (0 for the first).  A file is
 * reused only for the same version: an attachment revised under the same id
 * comes with a new version, and is downloaded anew.  0, -EINVAL for a UBRN
 * that is not 12 digits, or -ENOMEM. */
int spool_key(char ret[SPOOL_KEY_MAX], const char *source_ubrn, int64_t source_version, const char *kind,
              const char *id, unsigned occurrence);

/* Starts writing a new "<key>.<n>.part"; refuses to grow
 * beyond max_bytes (-EFBIG).  Caller owns *ret: finish it or discard it. */
int spool_file_create(struct spool *s, const char *key, int64_t max_bytes, struct spool_file **ret,
                      struct errbuf *e);

/* Appends bytes, hashing them.  -EFBIG past max_bytes, -ENOSPC/-EIO from the disk. */
int spool_file_write(struct spool_file *f, const void *buf, size_t n, struct errbuf *e);

/* Makes the file final (see above) and closes its descriptor.  On failure the
 * .part is removed. */
int spool_file_finish(struct spool_file *f, struct errbuf *e);

/* Looks for a finished "<key>.<n>@…" that no other spool_file holds and whose
 * bytes hash to what its name says.  Returns 1 and a handle in *ret when found
 * and verified, 0 when absent (a file that fails verification is deleted and
 * 0 returned), or a negative errno. */
int spool_file_reuse(struct spool *s, const char *key, struct spool_file **ret, struct errbuf *e);

/* A new read-only descriptor of the finished file (the caller closes it), or
 * a negative errno with the cause in *e. */
int spool_file_open(const struct spool_file *f, struct errbuf *e);

/* The verified file's size and SHA-256 hex (valid after finish or reuse). */
int64_t spool_file_size(const struct spool_file *f);
const char *spool_file_sha256(const struct spool_file *f);

/* Frees the handle; an unfinished download's ".part" is deleted, a finished
 * file stays (for a retry).  Accepts NULL. */
void spool_file_free(struct spool_file *f);

/* Deletes the finished file (after the PAS commit); the handle stays the
 * caller's to free.  Missing is fine.  Accepts NULL. */
void spool_file_remove(struct spool_file *f);

/* Between rounds (no download in progress): removes every file but the
 * finished downloads of the UBRNs keep() says to keep (keep may be NULL:
 * none) and those a spool_file holds, so that no patient document stays that no referral waiting for a
 * retry needs.  The number removed, or a negative errno when the directory
 * cannot be read. */
int spool_sweep(struct spool *s, bool (*keep)(void *userdata, const char *ubrn), void *userdata);
