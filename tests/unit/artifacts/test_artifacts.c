/* artifacts: the file backend. The cases above ARTIFACTS_CASES_ONLY take their
 * store from `store`, so tests/integration/test_azblob.c runs the very same
 * ones against Azurite; the file-only cases and main() come after it. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <errno.h>
#include <ftw.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "artifacts/artifacts.h"
#include "lib/util.h"

#define MIB ((size_t)1024 * 1024)

/* Set by the group setup of the test program. */
static artifact_store *store;
/* Counts what an abort may have left behind (file: temp files); NULL if nothing to look at. */
static size_t (*count_leftovers)(void);

/* ------------------------------------------------------------------ helpers */

/* A deterministic byte stream: byte i of every test object. */
static unsigned char pattern(uint64_t i)
{
    uint64_t x = (i + 1) * 0x9E3779B97F4A7C15ull;
    return (unsigned char)((x >> 56) ^ (i >> 12));
}

static void fill(unsigned char *p, uint64_t offset, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = pattern(offset + i);
}

static void hex_of(const unsigned char *md, char out[65])
{
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

/* The SHA-256 of the first n pattern bytes, computed independently of the store. */
static void pattern_sha(uint64_t n, char out[65])
{
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_non_null(ctx);
    assert_true(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL));
    unsigned char buf[65536];
    for (uint64_t off = 0; off < n; off += sizeof buf) {
        size_t k = n - off < sizeof buf ? (size_t)(n - off) : sizeof buf;
        fill(buf, off, k);
        assert_true(EVP_DigestUpdate(ctx, buf, k));
    }
    unsigned char md[32];
    unsigned int len = 0;
    assert_true(EVP_DigestFinal_ex(ctx, md, &len));
    EVP_MD_CTX_free(ctx);
    hex_of(md, out);
}

/* Writes n pattern bytes in pieces of `piece` bytes and commits. Returns the commit status. */
static int write_pattern(const char *key, uint64_t n, size_t piece, char sha[65], uint64_t *size)
{
    artifact_writer *w = NULL;
    int rc = artifacts_writer_open(store, key, &w);
    if (rc)
        return rc;
    unsigned char *buf = xmalloc(piece);
    for (uint64_t off = 0; off < n && rc == RST_OK; off += piece) {
        size_t k = n - off < piece ? (size_t)(n - off) : piece;
        fill(buf, off, k);
        rc = artifacts_writer_write(w, buf, k);
    }
    free(buf);
    if (rc) {
        artifacts_writer_abort(w);
        return rc;
    }
    return artifacts_writer_commit(w, sha, size);
}

static void put_bytes(const char *key, const void *data, size_t n)
{
    artifact_writer *w = NULL;
    assert_int_equal(artifacts_writer_open(store, key, &w), RST_OK);
    assert_int_equal(artifacts_writer_write(w, data, n), RST_OK);
    char sha[65];
    uint64_t size = 0;
    assert_int_equal(artifacts_writer_commit(w, sha, &size), RST_OK);
    assert_int_equal(size, n);
}

/* Reads [offset, offset+length) in pieces of cap bytes; new: caller frees with buf_free. */
static int read_range(const char *key, uint64_t offset, uint64_t length, size_t cap, buf_t *out)
{
    artifact_reader *r = NULL;
    buf_init(out, 0);
    int rc = artifacts_reader_open(store, key, offset, length, &r);
    if (rc)
        return rc;
    unsigned char *tmp = xmalloc(cap);
    size_t got = 0;
    while ((rc = artifacts_reader_read(r, tmp, cap, &got)) == RST_OK && got) {
        assert_true(got <= cap);
        buf_append(out, tmp, got);
    }
    free(tmp);
    artifacts_reader_close(r);
    return rc;
}

/* Checks that [offset, offset+want) of a pattern object reads back exactly. */
static void expect_pattern_range(const char *key, uint64_t offset, uint64_t length, size_t cap,
                                 uint64_t want)
{
    buf_t b;
    assert_int_equal(read_range(key, offset, length, cap, &b), RST_OK);
    assert_int_equal(b.len, want);
    for (size_t i = 0; i < b.len; i++)
        if ((unsigned char)b.data[i] != pattern(offset + i))
            fail_msg("%s: byte %llu differs", key, (unsigned long long)(offset + i));
    buf_free(&b);
}

typedef struct {
    char keys[32][128];
    uint64_t sizes[32];
    size_t n;
    size_t stop_after; /* 0 = never */
} listing;

static int collect(void *arg, const char *key, uint64_t size)
{
    listing *l = arg;
    if (l->n < 32) {
        snprintf(l->keys[l->n], sizeof l->keys[0], "%s", key);
        l->sizes[l->n] = size;
    }
    l->n++;
    return l->stop_after && l->n == l->stop_after ? 42 : 0;
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* ---------------------------------------------------- cases for every backend */

static void test_commit_reports_sha256_and_size(void **state)
{
    (void)state;
    artifact_writer *w = NULL;
    assert_int_equal(artifacts_writer_open(store, "sha/abc.txt", &w), RST_OK);
    for (const char *p = "abc"; *p; p++)
        assert_int_equal(artifacts_writer_write(w, p, 1), RST_OK);
    char sha[65] = "";
    uint64_t size = 0;
    assert_int_equal(artifacts_writer_commit(w, sha, &size), RST_OK);
    assert_string_equal(sha, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    assert_int_equal(size, 3);

    uint64_t st = 0;
    assert_int_equal(artifacts_stat(store, "sha/abc.txt", &st), RST_OK);
    assert_int_equal(st, 3);
    buf_t b;
    assert_int_equal(read_range("sha/abc.txt", 0, 0, 2, &b), RST_OK);
    assert_int_equal(b.len, 3);
    assert_memory_equal(b.data, "abc", 3);
    buf_free(&b);

    char *uri = artifacts_uri(store, "sha/abc.txt");
    assert_non_null(uri);
    assert_true(!strncmp(uri, "file:///", 8) || !strncmp(uri, "azblob://", 9));
    assert_string_equal(uri + strlen(uri) - strlen("/sha/abc.txt"), "/sha/abc.txt");
    free(uri);
    assert_int_equal(artifacts_delete(store, "sha/abc.txt"), RST_OK);
}

static void test_empty_object(void **state)
{
    (void)state;
    artifact_writer *w = NULL;
    assert_int_equal(artifacts_writer_open(store, "empty/nothing", &w), RST_OK);
    char sha[65] = "";
    uint64_t size = 99;
    assert_int_equal(artifacts_writer_commit(w, sha, &size), RST_OK);
    assert_string_equal(sha, "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
    assert_int_equal(size, 0);
    uint64_t st = 99;
    assert_int_equal(artifacts_stat(store, "empty/nothing", &st), RST_OK);
    assert_int_equal(st, 0);
    buf_t b;
    assert_int_equal(read_range("empty/nothing", 0, 0, 16, &b), RST_OK);
    assert_int_equal(b.len, 0);
    buf_free(&b);
    assert_int_equal(artifacts_delete(store, "empty/nothing"), RST_OK);
}

static void test_commit_replaces(void **state)
{
    (void)state;
    put_bytes("replace/x", "first version", 13);
    put_bytes("replace/x", "second", 6);
    buf_t b;
    assert_int_equal(read_range("replace/x", 0, 0, 100, &b), RST_OK);
    assert_int_equal(b.len, 6);
    assert_memory_equal(b.data, "second", 6);
    buf_free(&b);
    assert_int_equal(artifacts_delete(store, "replace/x"), RST_OK);
}

static void test_ranged_reads(void **state)
{
    (void)state;
    const uint64_t n = 100000;
    char sha[65], want[65];
    uint64_t size = 0;
    assert_int_equal(write_pattern("range/obj.bin", n, 4096, sha, &size), RST_OK);
    pattern_sha(n, want);
    assert_string_equal(sha, want);
    expect_pattern_range("range/obj.bin", 0, 0, 777, n);
    expect_pattern_range("range/obj.bin", 10, 100, 7, 100);
    expect_pattern_range("range/obj.bin", 4095, 2, 1, 2);
    expect_pattern_range("range/obj.bin", n - 10, 100, 64, 10); /* clipped at the end */
    expect_pattern_range("range/obj.bin", n - 1, 0, 64, 1);
    expect_pattern_range("range/obj.bin", n, 0, 64, 0); /* at the end: empty */
    artifact_reader *r = NULL;
    assert_int_equal(artifacts_reader_open(store, "range/obj.bin", n + 1, 0, &r), RST_EINVAL);
    assert_null(r);
    assert_int_equal(artifacts_delete(store, "range/obj.bin"), RST_OK);
}

static void test_list_in_key_order(void **state)
{
    (void)state;
    /* '/' sorts after ' ', '+', '-' and '.', so a directory walk in name order would be wrong. */
    const char *keys[] = {"lst/b", "lst/a/z",   "lst/a-c",        "lst/a.b",       "lst/a0",
                          "lst/A", "lst/a/b/c", "lst/with space", "lst/plus+sign", "lstx/other"};
    const size_t n = sizeof keys / sizeof keys[0];
    for (size_t i = 0; i < n; i++)
        put_bytes(keys[i], keys[i], strlen(keys[i]));

    const char *sorted[16];
    size_t m = 0;
    for (size_t i = 0; i < n; i++)
        if (!strncmp(keys[i], "lst/", 4))
            sorted[m++] = keys[i];
    qsort(sorted, m, sizeof sorted[0], cmp_str);

    listing l = {0};
    assert_int_equal(artifacts_list(store, "lst/", collect, &l), RST_OK);
    assert_int_equal(l.n, m);
    for (size_t i = 0; i < m; i++) {
        assert_string_equal(l.keys[i], sorted[i]);
        assert_int_equal(l.sizes[i], strlen(sorted[i]));
    }

    /* A prefix that ends inside a segment. */
    memset(&l, 0, sizeof l);
    assert_int_equal(artifacts_list(store, "lst/a", collect, &l), RST_OK);
    assert_int_equal(l.n, 5);
    assert_string_equal(l.keys[0], "lst/a-c");
    assert_string_equal(l.keys[1], "lst/a.b");
    assert_string_equal(l.keys[2], "lst/a/b/c");
    assert_string_equal(l.keys[3], "lst/a/z");
    assert_string_equal(l.keys[4], "lst/a0");

    /* "lst" also matches "lstx/". */
    memset(&l, 0, sizeof l);
    assert_int_equal(artifacts_list(store, "lst", collect, &l), RST_OK);
    assert_int_equal(l.n, n);
    assert_string_equal(l.keys[n - 1], "lstx/other");

    memset(&l, 0, sizeof l);
    assert_int_equal(artifacts_list(store, "nothing/here/", collect, &l), RST_OK);
    assert_int_equal(l.n, 0);

    /* fn stops the listing and its value comes back. */
    memset(&l, 0, sizeof l);
    l.stop_after = 3;
    assert_int_equal(artifacts_list(store, "lst/", collect, &l), 42);
    assert_int_equal(l.n, 3);

    for (size_t i = 0; i < n; i++)
        assert_int_equal(artifacts_delete(store, keys[i]), RST_OK);
    memset(&l, 0, sizeof l);
    assert_int_equal(artifacts_list(store, "lst", collect, &l), RST_OK);
    assert_int_equal(l.n, 0);
}

static void test_delete_and_not_found(void **state)
{
    (void)state;
    put_bytes("del/one/two.txt", "x", 1);
    assert_int_equal(artifacts_delete(store, "del/one/two.txt"), RST_OK);
    uint64_t size = 0;
    assert_int_equal(artifacts_stat(store, "del/one/two.txt", &size), RST_ENOTFOUND);
    assert_int_equal(artifacts_delete(store, "del/one/two.txt"), RST_ENOTFOUND);
    artifact_reader *r = NULL;
    assert_int_equal(artifacts_reader_open(store, "del/one/two.txt", 0, 0, &r), RST_ENOTFOUND);
    assert_null(r);
    assert_int_equal(artifacts_stat(store, "never/was", &size), RST_ENOTFOUND);
    assert_int_equal(artifacts_delete(store, "never/was"), RST_ENOTFOUND);
    /* A "directory" is not an object. */
    put_bytes("del/dir/file", "y", 1);
    assert_int_equal(artifacts_stat(store, "del/dir", &size), RST_ENOTFOUND);
    assert_int_equal(artifacts_delete(store, "del/dir/file"), RST_OK);
    listing l = {0};
    assert_int_equal(artifacts_list(store, "del/", collect, &l), RST_OK);
    assert_int_equal(l.n, 0);
}

static void test_abort_leaves_nothing(void **state)
{
    (void)state;
    artifact_writer *w = NULL;
    assert_int_equal(artifacts_writer_open(store, "abort/big.bin", &w), RST_OK);
    unsigned char *buf = xmalloc(MIB);
    for (size_t i = 0; i < 5; i++) { /* more than one 4 MiB block */
        fill(buf, i * MIB, MIB);
        assert_int_equal(artifacts_writer_write(w, buf, MIB), RST_OK);
    }
    assert_int_equal(artifacts_writer_write(w, "z", 1), RST_OK);
    free(buf);
    artifacts_writer_abort(w);
    artifacts_writer_abort(NULL);

    assert_int_equal(artifacts_writer_open(store, "abort/small.bin", &w), RST_OK);
    artifacts_writer_abort(w); /* opened, never written */

    uint64_t size = 0;
    assert_int_equal(artifacts_stat(store, "abort/big.bin", &size), RST_ENOTFOUND);
    assert_int_equal(artifacts_stat(store, "abort/small.bin", &size), RST_ENOTFOUND);
    listing l = {0};
    assert_int_equal(artifacts_list(store, "abort/", collect, &l), RST_OK);
    assert_int_equal(l.n, 0);
    if (count_leftovers)
        assert_int_equal(count_leftovers(), 0);
}

static void test_bad_keys_refused(void **state)
{
    (void)state;
    char longest[ARTIFACTS_KEY_MAX + 2];
    memset(longest, 'k', sizeof longest);
    longest[ARTIFACTS_KEY_MAX + 1] = '\0';
    const char *bad[] = {"",          "/abs",      "a/../b",  "..",       "a/..",
                         "./a",       "a/./b",     "a//b",    "a/",       "a\\b",
                         "tab\there", "nl\n",      "del\x7f", "\xc3\xa9", ".hidden",
                         "a/.tmp-x",  "trailing.", "x/y./z",  longest};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        const char *k = bad[i];
        artifact_writer *w = (artifact_writer *)1;
        artifact_reader *r = (artifact_reader *)1;
        uint64_t size = 0;
        assert_int_equal(artifacts_key_check(k), RST_EINVAL);
        assert_int_equal(artifacts_writer_open(store, k, &w), RST_EINVAL);
        assert_null(w);
        assert_int_equal(artifacts_reader_open(store, k, 0, 0, &r), RST_EINVAL);
        assert_null(r);
        assert_int_equal(artifacts_stat(store, k, &size), RST_EINVAL);
        assert_int_equal(artifacts_delete(store, k), RST_EINVAL);
        assert_null(artifacts_uri(store, k));
    }
    assert_int_equal(artifacts_key_check(NULL), RST_EINVAL);
    longest[ARTIFACTS_KEY_MAX] = '\0'; /* exactly the limit is fine */
    assert_int_equal(artifacts_key_check(longest), RST_OK);
    assert_int_equal(artifacts_key_check("projects/p1/datasets/d/v3/canonical.csv"), RST_OK);
    assert_int_equal(artifacts_key_check("a.b/c d/e+f/g~h"), RST_OK);
    listing l = {0};
    assert_int_equal(artifacts_list(store, "/abs", collect, &l), RST_EINVAL);
    assert_int_equal(artifacts_list(store, "bad\nprefix", collect, &l), RST_EINVAL);
}

/* 20 MiB in 1000-byte writes (never aligned with a block), read back in 7000-byte reads. */
static void test_large_streamed_object(void **state)
{
    (void)state;
    const uint64_t n = 20 * MIB;
    const char *key = "large/streamed.bin";
    char sha[65], want[65];
    uint64_t size = 0;
    assert_int_equal(write_pattern(key, n, 1000, sha, &size), RST_OK);
    pattern_sha(n, want);
    assert_string_equal(sha, want);
    assert_int_equal(size, n);
    uint64_t st = 0;
    assert_int_equal(artifacts_stat(store, key, &st), RST_OK);
    assert_int_equal(st, n);

    /* Whole object, hashed as it streams. */
    artifact_reader *r = NULL;
    assert_int_equal(artifacts_reader_open(store, key, 0, 0, &r), RST_OK);
    EVP_MD_CTX *ctx = EVP_MD_CTX_new();
    assert_true(EVP_DigestInit_ex(ctx, EVP_sha256(), NULL));
    unsigned char buf[7000];
    size_t got = 0;
    uint64_t total = 0;
    int rc;
    while ((rc = artifacts_reader_read(r, buf, sizeof buf, &got)) == RST_OK && got) {
        assert_true(EVP_DigestUpdate(ctx, buf, got));
        total += got;
    }
    assert_int_equal(rc, RST_OK);
    artifacts_reader_close(r);
    unsigned char md[32];
    unsigned int mdlen = 0;
    assert_true(EVP_DigestFinal_ex(ctx, md, &mdlen));
    EVP_MD_CTX_free(ctx);
    char back[65];
    hex_of(md, back);
    assert_int_equal(total, n);
    assert_string_equal(back, want);

    /* Ranges across 4 MiB boundaries, with small and large read buffers. */
    expect_pattern_range(key, 4 * MIB - 10, 20, 3, 20);
    expect_pattern_range(key, 8 * MIB - 1, 2, 1, 2);
    expect_pattern_range(key, 4 * MIB - 3, 4 * MIB + 6, 65536, 4 * MIB + 6);
    expect_pattern_range(key, 12 * MIB + 5, 5 * MIB, 5 * MIB, 5 * MIB);
    expect_pattern_range(key, n - 5, 0, 4096, 5);
    assert_int_equal(artifacts_delete(store, key), RST_OK);
}

typedef struct {
    int thread;
    int failures;
    char detail[200];
} worker_arg;

static uint64_t worker_size(int t, int i)
{
    return t == 0 && i == 0 ? 5 * MIB + 7 : 200000 + (uint64_t)t * 1031 + (uint64_t)i;
}

static void *worker(void *p)
{
    worker_arg *a = p;
    for (int i = 0; i < 3; i++) {
        char key[64], sha[65], want[65];
        uint64_t size = 0, n = worker_size(a->thread, i);
        snprintf(key, sizeof key, "concurrent/shared-dir/t%d-%d.bin", a->thread, i);
        int rc = write_pattern(key, n, 3000 + (size_t)a->thread, sha, &size);
        if (rc || size != n) {
            a->failures++;
            snprintf(a->detail, sizeof a->detail, "%s: rc %d size %llu", key, rc,
                     (unsigned long long)size);
            continue;
        }
        /* pattern_sha asserts, which only the main thread may do: hash here by hand. */
        EVP_MD_CTX *ctx = EVP_MD_CTX_new();
        unsigned char buf[65536], md[32];
        unsigned int len = 0;
        EVP_DigestInit_ex(ctx, EVP_sha256(), NULL);
        for (uint64_t off = 0; off < n; off += sizeof buf) {
            size_t k = n - off < sizeof buf ? (size_t)(n - off) : sizeof buf;
            fill(buf, off, k);
            EVP_DigestUpdate(ctx, buf, k);
        }
        EVP_DigestFinal_ex(ctx, md, &len);
        EVP_MD_CTX_free(ctx);
        hex_of(md, want);
        if (strcmp(sha, want)) {
            a->failures++;
            snprintf(a->detail, sizeof a->detail, "%s: sha mismatch", key);
        }
    }
    return NULL;
}

static void test_concurrent_writers(void **state)
{
    (void)state;
    enum { THREADS = 8 };
    pthread_t th[THREADS];
    worker_arg args[THREADS];
    for (int t = 0; t < THREADS; t++) {
        args[t] = (worker_arg){.thread = t};
        assert_int_equal(pthread_create(&th[t], NULL, worker, &args[t]), 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        if (args[t].failures)
            fail_msg("thread %d: %s", t, args[t].detail);
    }
    listing l = {0};
    assert_int_equal(artifacts_list(store, "concurrent/", collect, &l), RST_OK);
    assert_int_equal(l.n, THREADS * 3);
    for (int t = 0; t < THREADS; t++) {
        for (int i = 0; i < 3; i++) {
            char key[64];
            snprintf(key, sizeof key, "concurrent/shared-dir/t%d-%d.bin", t, i);
            uint64_t size = 0;
            assert_int_equal(artifacts_stat(store, key, &size), RST_OK);
            assert_int_equal(size, worker_size(t, i));
            expect_pattern_range(key, size - 100, 0, 1000, 100);
            assert_int_equal(artifacts_delete(store, key), RST_OK);
        }
    }
}

#define ARTIFACTS_SHARED_TESTS                                                                     \
    cmocka_unit_test(test_commit_reports_sha256_and_size), cmocka_unit_test(test_empty_object),    \
        cmocka_unit_test(test_commit_replaces), cmocka_unit_test(test_ranged_reads),               \
        cmocka_unit_test(test_list_in_key_order), cmocka_unit_test(test_delete_and_not_found),     \
        cmocka_unit_test(test_abort_leaves_nothing), cmocka_unit_test(test_bad_keys_refused),      \
        cmocka_unit_test(test_large_streamed_object), cmocka_unit_test(test_concurrent_writers)

#ifndef ARTIFACTS_CASES_ONLY
/* ------------------------------------------------------------ file backend */

static char tmpdir[] = "/tmp/roastery-artifacts.XXXXXX";
static char *root; /* the store's directory, created by artifacts_open */
static size_t leftovers;

static int count_tmp(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    if (!strncmp(path + ftw->base, ".tmp-", 5))
        leftovers++;
    return 0;
}

static size_t file_leftovers(void)
{
    leftovers = 0;
    assert_int_equal(nftw(root, count_tmp, 16, FTW_PHYS), 0);
    return leftovers;
}

static int rm_entry(const char *path, const struct stat *sb, int type, struct FTW *ftw)
{
    (void)sb;
    (void)type;
    (void)ftw;
    return remove(path);
}

static int setup(void **state)
{
    (void)state;
    if (!mkdtemp(tmpdir))
        return -1;
    root = xasprintf("%s/store/nested", tmpdir); /* missing directories get created */
    char *url = xasprintf("file://%s/", root);
    char err[256] = "";
    int rc = artifacts_open(url, NULL, &store, err, sizeof err);
    if (rc)
        fprintf(stderr, "artifacts_open: %s\n", err);
    free(url);
    count_leftovers = file_leftovers;
    return rc ? -1 : 0;
}

static int teardown(void **state)
{
    (void)state;
    artifacts_close(store);
    store = NULL;
    nftw(tmpdir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
    free(root);
    return 0;
}

static int is_dir(const char *rel)
{
    char *p = xasprintf("%s/%s", root, rel);
    struct stat st;
    int ok = stat(p, &st) == 0 && S_ISDIR(st.st_mode);
    free(p);
    return ok;
}

static void test_file_layout(void **state)
{
    (void)state;
    put_bytes("layout/a/b/c.txt", "hello", 5);
    char *path = xasprintf("%s/layout/a/b/c.txt", root);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char got[16] = "";
    assert_int_equal(fread(got, 1, sizeof got, f), 5);
    fclose(f);
    assert_memory_equal(got, "hello", 5);
    char *uri = artifacts_uri(store, "layout/a/b/c.txt");
    char *want = xasprintf("file://%s", path);
    assert_string_equal(uri, want);
    free(uri);
    free(want);
    free(path);
    put_bytes("layout/a/keep.txt", "k", 1);
    /* Deleting prunes the directories it empties, and no further. */
    assert_int_equal(artifacts_delete(store, "layout/a/b/c.txt"), RST_OK);
    assert_false(is_dir("layout/a/b"));
    assert_true(is_dir("layout/a"));
    assert_int_equal(artifacts_delete(store, "layout/a/keep.txt"), RST_OK);
    assert_false(is_dir("layout"));
    assert_true(is_dir(".")); /* the root stays */
}

static void test_file_key_conflicts(void **state)
{
    (void)state;
    put_bytes("conflict/a", "file", 4);
    artifact_writer *w = NULL;
    assert_int_equal(artifacts_writer_open(store, "conflict/a/b", &w), RST_ECONFLICT);
    assert_null(w);
    put_bytes("conflict/d/e", "x", 1);
    assert_int_equal(artifacts_writer_open(store, "conflict/d", &w), RST_OK);
    assert_int_equal(artifacts_writer_write(w, "y", 1), RST_OK);
    char sha[65];
    uint64_t size = 0;
    assert_int_equal(artifacts_writer_commit(w, sha, &size), RST_ECONFLICT); /* a directory */
    assert_int_equal(file_leftovers(), 0);
    assert_int_equal(artifacts_delete(store, "conflict/a"), RST_OK);
    assert_int_equal(artifacts_delete(store, "conflict/d/e"), RST_OK);
}

/* A reader keeps the version it opened while a writer replaces the key. */
static void test_file_reader_sees_one_version(void **state)
{
    (void)state;
    put_bytes("version/x", "old!", 4);
    artifact_reader *r = NULL;
    assert_int_equal(artifacts_reader_open(store, "version/x", 0, 0, &r), RST_OK);
    put_bytes("version/x", "new!", 4);
    char buf[8];
    size_t got = 0;
    assert_int_equal(artifacts_reader_read(r, buf, sizeof buf, &got), RST_OK);
    assert_int_equal(got, 4);
    assert_memory_equal(buf, "old!", 4);
    artifacts_reader_close(r);
    assert_int_equal(artifacts_delete(store, "version/x"), RST_OK);
}

static void test_open_refuses_bad_urls(void **state)
{
    (void)state;
    const char *conn = "DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;"
                       "AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/devstoreaccount1";
    struct {
        const char *url, *conn;
    } bad[] = {
        {NULL, NULL},
        {"", NULL},
        {"s3://bucket", NULL},
        {"file://relative/dir", NULL},
        {"file:///", NULL},
        {"azblob://container", NULL},
        {"azblob://container", ""},
        {"azblob://Upper", conn},
        {"azblob://ab", conn},
        {"azblob://a--b", conn},
        {"azblob://-ab", conn},
        {"azblob://with/path", conn},
        {"azblob://good", "AccountName=x;BlobEndpoint=http://127.0.0.1:1/x"}, /* no key */
        {"azblob://good", "AccountName=x;AccountKey=not*base64;BlobEndpoint=http://h/x"},
        {"azblob://good", "AccountKey=a2V5;BlobEndpoint=http://127.0.0.1:1/x"}, /* no name */
        {"azblob://good", "AccountName=x;AccountKey=a2V5;BlobEndpoint=ftp://h/x"},
        {"azblob://good", "AccountName=x;AccountKey=a2V5;DefaultEndpointsProtocol=gopher"},
        {"azblob://good", "garbage"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        artifact_store *s = (artifact_store *)1;
        char err[200] = "";
        assert_int_equal(artifacts_open(bad[i].url, bad[i].conn, &s, err, sizeof err), RST_EINVAL);
        assert_null(s);
        assert_true(err[0] != '\0');
        assert_null(strstr(err, "a2V5")); /* never the key */
    }
    /* A file where the directory should be. */
    char *file = xasprintf("%s/plainfile", tmpdir);
    FILE *f = fopen(file, "w");
    assert_non_null(f);
    fclose(f);
    char *url = xasprintf("file://%s/sub", file);
    artifact_store *s = NULL;
    char err[200] = "";
    assert_int_equal(artifacts_open(url, NULL, &s, err, sizeof err), RST_EIO);
    assert_null(s);
    free(url);
    free(file);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        ARTIFACTS_SHARED_TESTS,
        cmocka_unit_test(test_file_layout),
        cmocka_unit_test(test_file_key_conflicts),
        cmocka_unit_test(test_file_reader_sees_one_version),
        cmocka_unit_test(test_open_refuses_bad_urls),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
#endif
