/* SPDX-License-Identifier: MIT */
#include "pas_data.h"

#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "adapters/adapter.h"
#include "testutil.h"

int pas_data_init_schema(struct pas *p, struct errbuf *e) {
        struct pas_tx *tx = NULL;
        int r = pas_begin(p, &tx, e);

        if (r == 0)
                r = pas_init_schema(tx, e);
        if (r == 0)
                r = pas_commit(tx, e);
        else
                pas_rollback(tx);
        return r;
}

int pas_data_file(const char *dir, const char *name, int64_t size, uint64_t seed, char sha[65]) {
        char path[PATH_MAX];
        unsigned char *buf = malloc(PAS_DATA_MIB), digest[32];
        EVP_MD_CTX *md = EVP_MD_CTX_new();
        uint64_t x = seed | 1;
        int fd;

        assert_non_null(buf);
        assert_non_null(md);
        snprintf(path, sizeof path, "%s/%s", dir, name);
        fd = open(path, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
        assert_true(fd >= 0);
        assert_int_equal(EVP_DigestInit_ex(md, EVP_sha256(), NULL), 1);
        for (int64_t off = 0; off < size;) {
                size_t n = size - off < PAS_DATA_MIB ? (size_t) (size - off) : PAS_DATA_MIB;
                for (size_t i = 0; i < n; i++) {
                        x ^= x << 13;
                        x ^= x >> 7;
                        x ^= x << 17;
                        buf[i] = (unsigned char) (x >> 24);
                }
                assert_int_equal(write(fd, buf, n), (ssize_t) n);
                assert_int_equal(EVP_DigestUpdate(md, buf, n), 1);
                off += (int64_t) n;
        }
        assert_int_equal(EVP_DigestFinal_ex(md, digest, NULL), 1);
        for (int i = 0; i < 32; i++)
                snprintf(sha + 2 * i, 3, "%02x", digest[i]);
        EVP_MD_CTX_free(md);
        free(buf);
        return fd;
}

static char related_none[1][UBRN_LEN + 1];

void pas_data_referral(struct referral *r, const char *ubrn, int64_t version, const char *nhs) {
        memset(r, 0, sizeof *r);
        snprintf(r->ubrn, sizeof r->ubrn, "%s", ubrn);
        r->version = version;
        r->nhs_number = (char *) nhs;
        r->priority = "ROUTINE";
        r->state = "BOOKED";
        r->specialty = "CARDIOLOGY";
        r->specialty_display = "Cardiology";
        r->pathway_start = "2026-11-20T09:00:00.000Z";
        r->appointment_start = "2026-12-01T10:30:00+00:00";
        r->appointment_end = "2026-12-01T10:45:00+00:00";
        r->status = "active";
        r->intent = "plan";
        r->related = related_none;
        r->n_related = 0;
}

struct document_rec pas_data_document(const char *ubrn, const char *aid, int64_t size, const char *sha) {
        return (struct document_rec){
                .ubrn = ubrn,
                .source_ubrn = ubrn,
                .kind = DOCUMENT_ATTACHMENT,
                .attachment_id = aid,
                .source_version = 1,
                .title = "letter.pdf",
                .content_type = "application/pdf",
                .declared_size = size,
                .availability = "AVAILABLE",
                .attached_by_user = "555123456789",
                .attached_by_org = "A12345",
                .created = "2026-11-20T09:00:00Z",
                .fetched = true,
                .size = size,
                .sha256 = sha,
        };
}

static long maxrss_kib(void) {
        struct rusage ru;

        getrusage(RUSAGE_SELF, &ru);
        return ru.ru_maxrss;
}

/*
 * ru_maxrss survives exec (Linux keeps the peak of the image it replaced,
 * here a copy of the whole test process) and is reset only by fork: so the
 * binary, run again, forks once more and the grandchild measures.  It prints
 * "<peak RSS growth> <peak RSS> (KiB) <instrumented 0/1>".
 *   argv: self --store-document <conn> <big> <size> <sha> <small> <small sha>
 */
int pas_data_store_child(int argc, char **argv) {
        if (argc != 8 || strcmp(argv[1], "--store-document") != 0)
                return -1;

        pid_t pid = fork();
        int status;

        if (pid != 0)
                return pid > 0 && waitpid(pid, &status, 0) == pid && WIFEXITED(status) ? WEXITSTATUS(status) : 1;

        struct errbuf e = { "" };
        struct pas *p = NULL;
        struct pas_tx *tx = NULL;
        int big = open(argv[3], O_RDONLY | O_CLOEXEC), small = open(argv[6], O_RDONLY | O_CLOEXEC);
        struct document_rec warm = pas_data_document("000000000001", "warm-up", PAS_DATA_MIB, argv[7]);
        struct document_rec d = pas_data_document("000000000001", "big", strtoll(argv[4], NULL, 10), argv[5]);
        int rc = 1;

        if (big >= 0 && small >= 0 && pas_open(argv[2], "auto", &p, &e) == 0 && pas_begin(p, &tx, &e) == 0 &&
            pas_put_document(tx, &warm, small, NULL, &e) == 0 && pas_commit(tx, &e) == 0) {
                long before = maxrss_kib();
                if (pas_begin(p, &tx, &e) == 0 && pas_put_document(tx, &d, big, NULL, &e) == 0 &&
                    pas_commit(tx, &e) == 0) {
                        long after = maxrss_kib();
                        printf("%ld %ld %d\n", after - before, after, run_instrumented());
                        fflush(stdout);
                        rc = 0;
                }
        }
        if (rc)
                fprintf(stderr, "store-document: %s\n", e.msg);
        pas_close(p);
        _exit(rc);
}

void pas_data_store_measured(const char *self, const char *connection, const char *big_path, int64_t size,
                             const char *sha, const char *small_path, const char *small_sha,
                             struct pas_data_rss *ret) {
        char size_text[24], out[64] = "";
        struct timespec t0, t1;
        int pipefd[2], status, inst = 0;
        ssize_t n;
        pid_t pid;

        snprintf(size_text, sizeof size_text, "%lld", (long long) size);
        assert_int_equal(pipe(pipefd), 0);
        clock_gettime(CLOCK_MONOTONIC, &t0);
        pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                const char *args[] = { self, "--store-document", connection, big_path, size_text, sha,
                                       small_path, small_sha, NULL };
                dup2(pipefd[1], STDOUT_FILENO);
                close(pipefd[0]);
                close(pipefd[1]);
                execv(self, (char *const *) args);
                _exit(127);
        }
        close(pipefd[1]);
        n = read(pipefd[0], out, sizeof out - 1);
        close(pipefd[0]);
        assert_int_equal(waitpid(pid, &status, 0), pid);
        clock_gettime(CLOCK_MONOTONIC, &t1);
        assert_true(WIFEXITED(status));
        assert_int_equal(WEXITSTATUS(status), 0);
        assert_true(n > 0);
        assert_int_equal(sscanf(out, "%ld %ld %d", &ret->grown_kib, &ret->peak_kib, &inst), 3);
        ret->instrumented = inst != 0;
        ret->seconds = (double) (t1.tv_sec - t0.tv_sec) + (double) (t1.tv_nsec - t0.tv_nsec) / 1e9;
}

int pas_data_sql_statements(const char *path, void (*fn)(void *userdata, size_t index, const char *stmt),
                            void *userdata) {
        char line[1024], stmt[8192];
        size_t n = 0, len = 0;
        bool in = false, block = false;
        FILE *fp = fopen(path, "r");

        if (!fp) {
                fprintf(stderr, "%s: %s\n", path, strerror(errno));
                return -1;
        }
        while (fgets(line, sizeof line, fp)) {
                size_t l = strlen(line);

                if (!in && (line[0] == '\n' || strncmp(line, "--", 2) == 0 || strcmp(line, "GO\n") == 0))
                        continue; /* commentary between statements; sqlcmd's batch separator */
                if (in && block && strcmp(line, "/\n") == 0) {
                        stmt[len - 1] = '\0'; /* a PL/SQL block ends at "/", its "END;" kept */
                        fn(userdata, n++, stmt);
                        len = 0;
                        in = block = false;
                        continue;
                }
                if (!in)
                        block = strncmp(line, "BEGIN", 5) == 0 || strncmp(line, "DECLARE", 7) == 0;
                in = true;
                if (len + l >= sizeof stmt) {
                        fprintf(stderr, "%s: statement %zu longer than %zu bytes\n", path, n + 1, sizeof stmt);
                        fclose(fp);
                        return -1;
                }
                memcpy(stmt + len, line, l + 1);
                len += l;
                if (!block && l >= 2 && strcmp(line + l - 2, ";\n") == 0) {
                        stmt[len - 2] = '\0';
                        fn(userdata, n++, stmt);
                        len = 0;
                        in = false;
                }
        }
        fclose(fp);
        if (in) {
                fprintf(stderr, "%s: ends inside statement %zu\n", path, n + 1);
                return -1;
        }
        return (int) n;
}

/* adapters/sql/<name>.sql holds exactly the adapter's DDL statements. */
struct schema_file {
        const struct adapter *adapter;
        const char *const *ddl;
        size_t n;
};

static void schema_statement_matches(void *userdata, size_t i, const char *stmt) {
        struct schema_file *sf = userdata;

        for (size_t k = 0; k <= i; k++)
                if (!sf->ddl[k])
                        fail_msg("adapters/sql/%s.sql has more statements than adapters/%s.c", sf->adapter->name,
                                 sf->adapter->name);
        if (strcmp(stmt, sf->ddl[i]) != 0)
                fail_msg("adapters/sql/%s.sql statement %zu differs from adapters/%s.c:\nfile:\n%s\ncode:\n%s",
                         sf->adapter->name, i + 1, sf->adapter->name, stmt, sf->ddl[i]);
        sf->n = i + 1;
}

void pas_data_schema_file_matches(const struct adapter *a) {
        struct schema_file sf = { .adapter = a, .ddl = a->ops->schema() };
        char path[128];

        snprintf(path, sizeof path, "adapters/sql/%s.sql", a->name);
        int n = pas_data_sql_statements(path, schema_statement_matches, &sf);

        assert_true(n > 0);
        assert_int_equal(n, (int) sf.n);
        assert_null(sf.ddl[sf.n]); /* and no statement missing from the file */
}
