/* SPDX-License-Identifier: MIT */
/* The spool: verified, durable, reusable downloads; leftovers never trusted. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "daemon/spool.h"
#include "tests/support/failalloc.h"
#include "tests/support/harness.h"

struct fixture {
        char *dir;
        char spooldir[512];
        struct spool *spool;
};

static int setup(void **state) {
        struct fixture *f = calloc(1, sizeof *f);
        struct errbuf e = { { 0 } };

        if (!f || !(f->dir = tmpdir_make()))
                return -1;
        snprintf(f->spooldir, sizeof f->spooldir, "%s/spool", f->dir);
        if (spool_open(f->dir, &f->spool, &e) < 0)
                return -1;
        *state = f;
        return 0;
}

static int teardown(void **state) {
        struct fixture *f = *state;
        spool_close(f->spool);
        tmpdir_remove(f->dir);
        free(f->dir);
        free(f);
        return 0;
}

static bool exists(const struct fixture *f, const char *name) {
        char p[700];
        snprintf(p, sizeof p, "%s/%s", f->spooldir, name);
        return access(p, F_OK) == 0;
}

/* The finished file of a key: "<key>.<n>@<sha256>-<size>", written into ret (may be NULL). */
static bool finished(const struct fixture *f, const char *key, char *ret, size_t n) {
        DIR *d = opendir(f->spooldir);
        struct dirent *de;
        bool found = false;
        size_t k = strlen(key);

        assert_non_null(d);
        while (!found && (de = readdir(d)))
                if (strncmp(de->d_name, key, k) == 0 && de->d_name[k] == '.' &&
                    de->d_name[k + 1 + strspn(de->d_name + k + 1, "0123456789")] == '@') {
                        found = true;
                        if (ret && snprintf(ret, n, "%s/%s", f->spooldir, de->d_name) >= (int) n)
                                fail_msg("spool path longer than the test's buffer");
                }
        closedir(d);
        return found;
}

/* How many downloads are in progress: "<key>.<n>.part" files. */
static int parts(struct fixture *f) {
        DIR *d = opendir(f->spooldir);
        struct dirent *de;
        int n = 0;

        assert_non_null(d);
        while ((de = readdir(d))) {
                size_t len = strlen(de->d_name);
                if (len > 5 && strcmp(de->d_name + len - 5, ".part") == 0)
                        n++;
        }
        closedir(d);
        return n;
}

static void put(struct fixture *f, const char *key, const char *text) {
        struct spool_file *sf;
        struct errbuf e = { { 0 } };
        assert_int_equal(spool_file_create(f->spool, key, 1 << 20, &sf, &e), 0);
        assert_int_equal(spool_file_write(sf, text, strlen(text), &e), 0);
        assert_int_equal(spool_file_finish(sf, &e), 0);
        spool_file_free(sf);
}

static void test_finish_records_size_and_sha256(void **state) {
        struct fixture *f = *state;
        struct spool_file *sf;
        struct errbuf e = { { 0 } };
        char want[65];

        sha256_hex("hello, PAS", 10, want);
        assert_int_equal(spool_file_create(f->spool, "k1", 100, &sf, &e), 0);
        assert_true(exists(f, "k1.0.part")); /* the spool's first download */
        assert_int_equal(spool_file_write(sf, "hello, ", 7, &e), 0);
        assert_int_equal(spool_file_write(sf, "PAS", 3, &e), 0);
        assert_int_equal(spool_file_finish(sf, &e), 0);
        assert_int_equal(parts(f), 0);
        char name[128];
        snprintf(name, sizeof name, "k1.0@%s-10", want); /* the name says what the bytes hash to */
        assert_true(exists(f, name));
        assert_int_equal(spool_file_size(sf), 10);
        assert_string_equal(spool_file_sha256(sf), want);
        spool_file_free(sf);
}

static void test_files_are_private(void **state) {
        struct fixture *f = *state;
        struct stat st;
        char p[700];

        put(f, "private", "patient letter");
        assert_true(finished(f, "private", p, sizeof p));
        assert_int_equal(stat(p, &st), 0);
        assert_int_equal(st.st_mode & 077, 0);
        assert_int_equal(stat(f->spooldir, &st), 0);
        assert_int_equal(st.st_mode & 077, 0);
}

static void test_reuse_verifies_bytes(void **state) {
        struct fixture *f = *state;
        struct spool_file *sf = NULL;
        struct errbuf e = { { 0 } };
        char want[65];

        put(f, "k2", "attachment bytes");
        sha256_hex("attachment bytes", 16, want);
        assert_int_equal(spool_file_reuse(f->spool, "k2", &sf, &e), 1);
        assert_string_equal(spool_file_sha256(sf), want);
        assert_int_equal(spool_file_size(sf), 16);
        spool_file_free(sf);
        /* Still there after reuse: only the PAS commit removes it. */
        assert_true(finished(f, "k2", NULL, 0));
}

static void test_tampered_leftover_is_discarded(void **state) {
        struct fixture *f = *state;
        struct spool_file *sf = NULL;
        struct errbuf e = { { 0 } };
        char p[700];

        put(f, "k3", "original bytes");
        assert_true(finished(f, "k3", p, sizeof p));
        assert_int_equal(write_text(p, "0riginal bytes", 0600), 0); /* same size, one byte changed */
        assert_int_equal(spool_file_reuse(f->spool, "k3", &sf, &e), 0);
        assert_null(sf);
        assert_false(finished(f, "k3", NULL, 0));
}

static void test_file_without_checksum_name_is_discarded(void **state) {
        struct fixture *f = *state;
        struct spool_file *sf = NULL;
        struct errbuf e = { { 0 } };
        char p[700];

        snprintf(p, sizeof p, "%s/k4.7@not-a-checksum", f->spooldir);
        assert_int_equal(write_text(p, "no checksum in my name", 0600), 0);
        assert_int_equal(spool_file_reuse(f->spool, "k4", &sf, &e), 0);
        assert_false(finished(f, "k4", NULL, 0));
        assert_int_equal(spool_file_reuse(f->spool, "absent", &sf, &e), 0);
}

static void test_size_limit_refused_while_streaming(void **state) {
        struct fixture *f = *state;
        struct spool_file *sf;
        struct errbuf e = { { 0 } };

        assert_int_equal(spool_file_create(f->spool, "big", 10, &sf, &e), 0);
        assert_int_equal(spool_file_write(sf, "0123456789", 10, &e), 0);
        assert_int_equal(spool_file_write(sf, "x", 1, &e), -EFBIG);
        assert_non_null(strstr(e.msg, "maximum"));
        spool_file_free(sf); /* unfinished: its .part goes */
        assert_int_equal(parts(f), 0);
        assert_false(finished(f, "big", NULL, 0));
}

/* Two threads fetching one document (a related referral of two referrals in
 * flight) write two ".part" files, never one, and finish two files: the first
 * writer's commit removes its own, the other stays readable. */
static void test_same_key_twice_at_once(void **state) {
        struct fixture *f = *state;
        struct spool_file *a, *b;
        struct errbuf e = { { 0 } };
        char buf[16];

        assert_int_equal(spool_file_create(f->spool, "shared", 100, &a, &e), 0);
        assert_int_equal(spool_file_create(f->spool, "shared", 100, &b, &e), 0);
        assert_int_equal(parts(f), 2);
        assert_int_equal(spool_file_write(a, "same bytes", 10, &e), 0);
        assert_int_equal(spool_file_write(b, "same ", 5, &e), 0);
        assert_int_equal(spool_file_write(b, "bytes", 5, &e), 0);
        assert_int_equal(spool_file_finish(a, &e), 0);
        assert_int_equal(spool_file_finish(b, &e), 0);
        assert_int_equal(parts(f), 0);
        assert_string_equal(spool_file_sha256(a), spool_file_sha256(b));
        spool_file_remove(a); /* the first writer's commit */
        spool_file_free(a);
        assert_true(finished(f, "shared", NULL, 0));
        int fd = spool_file_open(b, &e);
        assert_true(fd >= 0);
        assert_int_equal(pread(fd, buf, 10, 0), 10);
        assert_memory_equal(buf, "same bytes", 10);
        close(fd);
        spool_file_remove(b);
        spool_file_free(b);
        assert_false(finished(f, "shared", NULL, 0));
}

/* A finished file is handed out once: a reuse while a download's own handle or
 * an earlier reuse has it finds nothing (that holder's commit removes it); once
 * the holder is freed without removing it, it is reused. */
static void test_file_held_is_not_handed_out_twice(void **state) {
        struct fixture *f = *state;
        struct spool_file *a, *b = NULL, *c = NULL;
        struct errbuf e = { { 0 } };

        assert_int_equal(spool_file_create(f->spool, "held", 100, &a, &e), 0);
        assert_int_equal(spool_file_write(a, "bytes", 5, &e), 0);
        assert_int_equal(spool_file_finish(a, &e), 0);
        assert_int_equal(spool_file_reuse(f->spool, "held", &b, &e), 0);
        assert_null(b);
        spool_file_free(a); /* a failed write: the file stays for a retry */
        assert_int_equal(spool_file_reuse(f->spool, "held", &b, &e), 1);
        assert_int_equal(spool_file_reuse(f->spool, "held", &c, &e), 0);
        assert_null(c);
        assert_int_equal(spool_sweep(f->spool, NULL, NULL), 0); /* nor swept from under its holder */
        assert_true(finished(f, "held", NULL, 0));
        spool_file_free(b);
}

/* A finished file holds no descriptor: many wait for the writer with a few
 * descriptors to spare, each opened when it is read. */
static void test_finished_files_hold_no_descriptor(void **state) {
        struct fixture *f = *state;
        struct spool_file *files[64];
        struct errbuf e = { { 0 } };
        int before = dup(0);

        assert_true(before >= 0);
        close(before);
        for (int i = 0; i < 64; i++) {
                char key[16];
                snprintf(key, sizeof key, "many%d", i);
                assert_int_equal(spool_file_create(f->spool, key, 100, &files[i], &e), 0);
                assert_int_equal(spool_file_write(files[i], key, strlen(key), &e), 0);
                assert_int_equal(spool_file_finish(files[i], &e), 0);
        }
        int after = dup(0);
        assert_int_equal(after, before); /* the lowest free descriptor: none kept */
        close(after);
        for (int i = 0; i < 64; i++) {
                spool_file_remove(files[i]);
                spool_file_free(files[i]);
        }
}

static void test_crash_leftover_part_removed_on_open(void **state) {
        struct fixture *f = *state;
        struct spool *again = NULL;
        struct errbuf e = { { 0 } };
        char p[700];

        snprintf(p, sizeof p, "%s/interrupted.7.part", f->spooldir);
        assert_int_equal(write_text(p, "half a download", 0600), 0);
        snprintf(p, sizeof p, "%s/left.41@0000-1", f->spooldir);
        assert_int_equal(write_text(p, "a finished download of an earlier run", 0600), 0);
        put(f, "kept", "finished download");
        assert_int_equal(spool_open(f->dir, &again, &e), 0);
        assert_false(exists(f, "interrupted.7.part"));
        assert_true(finished(f, "kept", NULL, 0));
        /* Its downloads are numbered past every file left: never a name of an earlier run's. */
        struct spool_file *sf;
        assert_int_equal(spool_file_create(again, "next", 100, &sf, &e), 0);
        assert_true(exists(f, "next.42.part"));
        spool_file_free(sf);
        spool_close(again);
}

static void test_remove_deletes_its_own_file(void **state) {
        struct fixture *f = *state;
        struct spool_file *sf;
        struct errbuf e = { { 0 } };

        assert_int_equal(spool_file_create(f->spool, "k5", 100, &sf, &e), 0);
        assert_int_equal(spool_file_write(sf, "committed", 9, &e), 0);
        assert_int_equal(spool_file_finish(sf, &e), 0);
        put(f, "k50", "another key that starts the same");
        spool_file_remove(sf);
        assert_false(finished(f, "k5", NULL, 0));
        assert_true(finished(f, "k50", NULL, 0)); /* only that file */
        spool_file_remove(sf); /* twice is fine */
        spool_file_free(sf);
        spool_file_remove(NULL);
}

/* A key is the source UBRN and a SHA-256 of (version, occurrence, kind, id): fixed
 * length, [0-9a-f-] only whatever the id, and one per document however alike
 * two ids look once made file names. */
static void test_keys_are_injective_and_fixed(void **state) {
        static const char *const ids[] = { "X-1", "X_1", "X/1", "x-1", "X 1", "X.1", "../X-1", "..", "CRI-v1", "" };
        char keys[sizeof ids / sizeof ids[0] + 4][SPOOL_KEY_MAX];
        size_t n = 0;
        (void) state;

        for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++)
                assert_int_equal(spool_key(keys[n++], "300000000001", 3, "ATTACHMENT", ids[i], 0), 0);
        assert_int_equal(spool_key(keys[n++], "300000000001", 3, "CRI", "CRI-v1", 0), 0);     /* the letter */
        assert_int_equal(spool_key(keys[n++], "300000000001", 3, "ATTACHMENT", "X-1", 1), 0); /* X-1 again */
        assert_int_equal(spool_key(keys[n++], "300000000002", 3, "ATTACHMENT", "X-1", 0), 0); /* another referral's */
        assert_int_equal(spool_key(keys[n++], "300000000001", 4, "ATTACHMENT", "X-1", 0), 0); /* its next version's */
        for (size_t i = 0; i < n; i++) {
                assert_int_equal(strlen(keys[i]), 12 + 1 + 64);
                assert_int_equal(strspn(keys[i], "0123456789abcdef-"), strlen(keys[i]));
                for (size_t k = 0; k < i; k++)
                        if (strcmp(keys[i], keys[k]) == 0)
                                fail_msg("keys %zu and %zu are the same: %s", k, i, keys[i]);
        }

        /* The format, pinned: the version (8 bytes), occurrence and the kind's length (4 bytes each),
         * big-endian, then the kind and the id. */
        char want[80], hex[65];
        sha256_hex("\0\0\0\0\0\0\0\x03" "\0\0\0\0" "\0\0\0\x0a" "ATTACHMENT" "X-1", 16 + 10 + 3, hex);
        snprintf(want, sizeof want, "300000000001-%s", hex);
        assert_string_equal(keys[0], want);

        /* An id of any length. */
        char *huge = malloc(1 << 20);
        assert_non_null(huge);
        memset(huge, 'a', (1 << 20) - 1);
        huge[(1 << 20) - 1] = '\0';
        assert_int_equal(spool_key(keys[0], "300000000001", 1, "ATTACHMENT", huge, 0), 0);
        assert_int_equal(strlen(keys[0]), 77);
        free(huge);

        assert_int_equal(spool_key(keys[0], "30000000000", 1, "ATTACHMENT", "X", 0), -EINVAL);
        assert_int_equal(spool_key(keys[0], "../000000001", 1, "ATTACHMENT", "X", 0), -EINVAL);
}

static void test_unwritable_state_dir_is_one_clear_error(void **state) {
        struct spool *s = NULL;
        struct errbuf e = { { 0 } };
        (void) state;

        if (geteuid() == 0) {
                /* root writes anywhere; a path under a regular file fails for everyone */
                assert_true(spool_open("/dev/null/state", &s, &e) < 0);
        } else {
                assert_true(spool_open("/proc/ersd-state", &s, &e) < 0);
        }
        assert_null(s);
        assert_non_null(strstr(e.msg, "cannot create state directory"));
}

/* Each allocation of open, create and reuse fails in turn: -ENOMEM with one
 * line, *ret untouched, no "<key>.part" left behind, nothing leaked (the ASan
 * and valgrind runs check that); the spool works again afterwards. */
static void test_allocation_failures(void **state) {
        struct fixture *f = *state;
        struct spool_file *const poison = (struct spool_file *) &poison;
        struct spool_file *sf;
        struct spool *s;
        long n, failed = 0;
        int r;

        if (!failalloc_linked())
                fail_msg("test_spool must be linked with ALLOC_WRAP (see the Makefile)");
        for (n = 0;; n++) {
                struct errbuf e = { { 0 } };
                s = (struct spool *) poison;
                failalloc_arm(n);
                r = spool_open(f->dir, &s, &e);
                if (!failalloc_disarm())
                        break;
                assert_int_equal(r, -ENOMEM);
                assert_string_equal(e.msg, "out of memory");
                assert_ptr_equal(s, poison);
                failed++;
        }
        assert_int_equal(r, 0);
        spool_close(s);

        for (n = 0;; n++) {
                struct errbuf e = { { 0 } };
                sf = poison;
                failalloc_arm(n);
                r = spool_file_create(f->spool, "walk", 1 << 20, &sf, &e);
                if (!failalloc_disarm())
                        break;
                assert_int_equal(r, -ENOMEM);
                assert_string_equal(e.msg, "out of memory");
                assert_ptr_equal(sf, poison);
                assert_int_equal(parts(f), 0);
                failed++;
        }
        assert_int_equal(r, 0);
        spool_file_free(sf);

        put(f, "kept", "the document");
        for (n = 0;; n++) {
                struct errbuf e = { { 0 } };
                sf = poison;
                failalloc_arm(n);
                r = spool_file_reuse(f->spool, "kept", &sf, &e);
                if (!failalloc_disarm())
                        break;
                assert_int_equal(r, -ENOMEM);
                assert_string_equal(e.msg, "out of memory");
                assert_ptr_equal(sf, poison);
                assert_true(finished(f, "kept", NULL, 0)); /* a failed lookup deletes nothing */
                failed++;
        }
        assert_int_equal(r, 1);
        assert_int_equal(spool_file_size(sf), (int64_t) strlen("the document"));
        spool_file_free(sf);
        assert_true(failed >= 4); /* open: 2, create: 1, reuse: 1 */
}

int main(void) {
        const struct CMUnitTest tests[] = {
                cmocka_unit_test_setup_teardown(test_finish_records_size_and_sha256, setup, teardown),
                cmocka_unit_test_setup_teardown(test_files_are_private, setup, teardown),
                cmocka_unit_test_setup_teardown(test_reuse_verifies_bytes, setup, teardown),
                cmocka_unit_test_setup_teardown(test_tampered_leftover_is_discarded, setup, teardown),
                cmocka_unit_test_setup_teardown(test_file_without_checksum_name_is_discarded, setup, teardown),
                cmocka_unit_test_setup_teardown(test_size_limit_refused_while_streaming, setup, teardown),
                cmocka_unit_test_setup_teardown(test_same_key_twice_at_once, setup, teardown),
                cmocka_unit_test_setup_teardown(test_file_held_is_not_handed_out_twice, setup, teardown),
                cmocka_unit_test_setup_teardown(test_finished_files_hold_no_descriptor, setup, teardown),
                cmocka_unit_test_setup_teardown(test_crash_leftover_part_removed_on_open, setup, teardown),
                cmocka_unit_test_setup_teardown(test_remove_deletes_its_own_file, setup, teardown),
                cmocka_unit_test_setup_teardown(test_allocation_failures, setup, teardown),
                cmocka_unit_test(test_keys_are_injective_and_fixed),
                cmocka_unit_test(test_unwritable_state_dir_is_one_clear_error),
        };
        return cmocka_run_group_tests_name("spool", tests, NULL, NULL);
}
