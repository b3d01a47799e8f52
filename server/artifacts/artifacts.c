/* The artifact store: key rules, hashing and streaming shared by both
 * backends, the file backend (atomic rename in a directory tree) and the
 * azblob backend's buffering on top of server/azure/azblob.c. */
#include "artifacts/artifacts.h"

#include <curl/curl.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "azure/azblob.h"
#include "core/log.h"

#define FILE_BUFFER ((size_t)64 * 1024)
#define OPEN_TRIES 5

enum { KIND_FILE, KIND_AZBLOB };

struct artifact_store {
    int kind;
    char *root; /* file: absolute directory, no trailing '/' */
    azblob *az; /* azblob */
    char *container;
};

struct artifact_writer {
    artifact_store *s;
    char *key;
    EVP_MD_CTX *sha;
    uint64_t size;
    int err; /* sticky: the first failure */
    unsigned char *buf;
    size_t len, cap;
    /* file */
    int fd;
    char *tmp_path;
    char *final_path;
    char *dir_path;
    /* azblob */
    uint32_t nblocks;
    char writer_id[AZBLOB_WRITER_ID_LEN];
};

struct artifact_reader {
    artifact_store *s;
    uint64_t pos, end;
    /* file */
    int fd;
    /* azblob */
    char *key;
    char etag[AZBLOB_ETAG_MAX];
    unsigned char *chunk;
    size_t chunk_len, chunk_off;
};

/* ------------------------------------------------------------------ keys */

int artifacts_key_check(const char *key)
{
    if (!key)
        return RST_EINVAL;
    size_t n = strlen(key);
    if (n == 0 || n > ARTIFACTS_KEY_MAX)
        return RST_EINVAL;
    size_t seg = 0; /* start of the current segment */
    for (size_t i = 0; i <= n; i++) {
        unsigned char ch = (unsigned char)key[i];
        if (ch == '/' || ch == '\0') {
            if (i == seg || key[seg] == '.' || key[i - 1] == '.')
                return RST_EINVAL;
            seg = i + 1;
            continue;
        }
        if (ch < 0x20 || ch > 0x7e || ch == '\\')
            return RST_EINVAL;
    }
    return RST_OK;
}

static int prefix_ok(const char *prefix)
{
    if (!prefix)
        return 1;
    size_t n = strlen(prefix);
    if (n > ARTIFACTS_KEY_MAX || prefix[0] == '/')
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)prefix[i];
        if (ch < 0x20 || ch > 0x7e || ch == '\\')
            return 0;
    }
    return 1;
}

/* ---------------------------------------------------------- file helpers */

static int errno_rc(int e)
{
    switch (e) {
    case ENOENT:
        return RST_ENOTFOUND;
    case ENOTDIR:
    case EISDIR:
    case EEXIST:
    case ENOTEMPTY:
        return RST_ECONFLICT;
    case ENOMEM:
        return RST_ENOMEM;
    default:
        return RST_EIO;
    }
}

static int log_errno(const char *what, const char *path, int e)
{
    log_fields(LOG_WARN, "artifact store i/o failed",
               json_pack("{s:s, s:s, s:s, s:i}", "op", what, "path", path, "error", strerror(e),
                         "errno", e));
    return errno_rc(e);
}

static int fsync_dir(const char *path)
{
    int fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0)
        return -1;
    int rc = fsync(fd);
    int e = errno;
    close(fd);
    errno = e;
    return rc;
}

/* Creates every missing directory of path (absolute) below base (a prefix of path that exists,
 * or "" for "/"), fsyncing the parent of each one it creates. 0 or -1 with errno. */
static int mkdir_below(const char *base, const char *path)
{
    char *p = xstrdup(path);
    int rc = 0;
    for (char *s = p + strlen(base) + 1; rc == 0; s++) {
        char *slash = strchr(s, '/');
        if (slash)
            *slash = '\0';
        if (mkdir(p, 0755) == 0) {
            char *parent = strrchr(p, '/');
            *parent = '\0';
            if (fsync_dir(parent == p ? "/" : p))
                rc = -1;
            *parent = '/';
        } else if (errno != EEXIST) {
            rc = -1;
        } else {
            struct stat st;
            if (stat(p, &st) || !S_ISDIR(st.st_mode)) {
                errno = ENOTDIR;
                rc = -1;
            }
        }
        if (!slash)
            break;
        *slash = '/';
        s = slash;
    }
    int e = errno;
    free(p);
    errno = e;
    return rc;
}

static char *key_path(const artifact_store *s, const char *key)
{
    return xasprintf("%s/%s", s->root, key);
}

/* --------------------------------------------------------------- the store */

static int open_file_store(const char *path, artifact_store *s, char *err, size_t errlen)
{
    if (path[0] != '/') {
        snprintf(err, errlen, "file:// needs an absolute path (file:///dir)");
        return RST_EINVAL;
    }
    size_t n = strlen(path);
    while (n > 1 && path[n - 1] == '/')
        n--;
    s->root = xstrndup(path, n);
    if (!strcmp(s->root, "/")) {
        snprintf(err, errlen, "file:/// needs a directory below /");
        return RST_EINVAL;
    }
    if (mkdir_below("", s->root)) {
        snprintf(err, errlen, "cannot create %s: %s", s->root, strerror(errno));
        return RST_EIO;
    }
    if (access(s->root, W_OK | X_OK)) {
        snprintf(err, errlen, "cannot write to %s: %s", s->root, strerror(errno));
        return RST_EIO;
    }
    return RST_OK;
}

int artifacts_open(const char *url, const char *azure_connection_string, artifact_store **out,
                   char *err, size_t errlen)
{
    char dummy[8];
    if (!err || !errlen) {
        err = dummy;
        errlen = sizeof dummy;
    }
    err[0] = '\0';
    *out = NULL;
    int rc = RST_EINVAL;
    artifact_store *s = xcalloc(1, sizeof *s);
    s->kind = -1;
    if (!url) {
        snprintf(err, errlen, "no artifact store URL");
    } else if (!strncmp(url, "file://", 7)) {
        s->kind = KIND_FILE;
        rc = open_file_store(url + 7, s, err, errlen);
    } else if (!strncmp(url, "azblob://", 9)) {
        s->kind = KIND_AZBLOB;
        curl_global_init(CURL_GLOBAL_DEFAULT); /* refcounted; paired in artifacts_close */
        s->container = xstrdup(url + 9);
        rc = azblob_open(s->container, azure_connection_string, &s->az, err, errlen);
        if (rc == RST_OK)
            rc = azblob_create_container(s->az, err, errlen);
    } else {
        snprintf(err, errlen, "expected file:///dir or azblob://<container>");
    }
    if (rc) {
        artifacts_close(s);
        return rc;
    }
    *out = s;
    return RST_OK;
}

void artifacts_close(artifact_store *s)
{
    if (!s)
        return;
    if (s->kind == KIND_AZBLOB) {
        azblob_close(s->az);
        curl_global_cleanup();
    }
    free(s->root);
    free(s->container);
    free(s);
}

void artifacts_set_list_page_size(artifact_store *s, unsigned n)
{
    if (s->kind == KIND_AZBLOB)
        azblob_set_list_page_size(s->az, n);
}

char *artifacts_uri(artifact_store *s, const char *key)
{
    if (artifacts_key_check(key))
        return NULL;
    if (s->kind == KIND_FILE)
        return xasprintf("file://%s/%s", s->root, key);
    return xasprintf("azblob://%s/%s", s->container, key);
}

/* ------------------------------------------------------------------ writer */

static void writer_free(artifact_writer *w)
{
    if (w->fd >= 0)
        close(w->fd);
    if (w->tmp_path)
        unlink(w->tmp_path);
    EVP_MD_CTX_free(w->sha);
    free(w->buf);
    free(w->key);
    free(w->tmp_path);
    free(w->final_path);
    free(w->dir_path);
    free(w);
}

static int file_writer_open(artifact_writer *w)
{
    artifact_store *s = w->s;
    w->final_path = key_path(s, w->key);
    const char *slash = strrchr(w->key, '/');
    w->dir_path =
        slash ? xasprintf("%s/%.*s", s->root, (int)(slash - w->key), w->key) : xstrdup(s->root);
    int e = 0;
    /* A concurrent delete may prune the directory between mkdir and open: try again. */
    for (int i = 0; i < OPEN_TRIES; i++) {
        char id[33];
        random_hex_id(id);
        free(w->tmp_path);
        w->tmp_path = xasprintf("%s/.tmp-%s", w->dir_path, id);
        if (slash && mkdir_below(s->root, w->dir_path)) {
            e = errno;
            if (e == ENOENT)
                continue;
            break;
        }
        w->fd = open(w->tmp_path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);
        if (w->fd >= 0)
            return RST_OK;
        e = errno;
        if (e != ENOENT)
            break;
    }
    free(w->tmp_path);
    w->tmp_path = NULL; /* nothing to unlink */
    return log_errno("create", w->dir_path, e);
}

int artifacts_writer_open(artifact_store *s, const char *key, artifact_writer **out)
{
    *out = NULL;
    if (artifacts_key_check(key))
        return RST_EINVAL;
    artifact_writer *w = xcalloc(1, sizeof *w);
    w->s = s;
    w->fd = -1;
    w->key = xstrdup(key);
    w->sha = EVP_MD_CTX_new();
    if (!w->sha || !EVP_DigestInit_ex(w->sha, EVP_sha256(), NULL)) {
        writer_free(w);
        return RST_ENOMEM;
    }
    if (s->kind == KIND_FILE) {
        w->cap = FILE_BUFFER;
        int rc = file_writer_open(w);
        if (rc) {
            writer_free(w);
            return rc;
        }
    } else {
        w->cap = AZBLOB_BLOCK_SIZE;
        char id[33];
        random_hex_id(id);
        memcpy(w->writer_id, id, AZBLOB_WRITER_ID_LEN - 1);
        w->writer_id[AZBLOB_WRITER_ID_LEN - 1] = '\0';
    }
    *out = w;
    return RST_OK;
}

static int write_all(int fd, const unsigned char *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

/* Empties the full buffer: to the temp file, or as the next staged block. */
static int flush(artifact_writer *w)
{
    if (w->s->kind == KIND_FILE) {
        if (w->len && write_all(w->fd, w->buf, w->len))
            return log_errno("write", w->tmp_path, errno);
    } else {
        if (w->nblocks >= AZBLOB_MAX_BLOCKS)
            return RST_ETOOBIG;
        char id[AZBLOB_BLOCK_ID_LEN];
        azblob_block_id(id, w->writer_id, w->nblocks);
        int rc = azblob_put_block(w->s->az, w->key, id, w->buf, w->len);
        if (rc)
            return rc;
        w->nblocks++;
    }
    w->len = 0;
    return RST_OK;
}

int artifacts_writer_write(artifact_writer *w, const void *data, size_t len)
{
    if (w->err)
        return w->err;
    if (len && !EVP_DigestUpdate(w->sha, data, len))
        return w->err = RST_EIO;
    const unsigned char *p = data;
    while (len) {
        if (!w->buf)
            w->buf = xmalloc(w->cap);
        /* Flush only when more data comes, so an object of exactly one block is one Put Blob. */
        if (w->len == w->cap && (w->err = flush(w)))
            return w->err;
        size_t k = w->cap - w->len < len ? w->cap - w->len : len;
        memcpy(w->buf + w->len, p, k);
        w->len += k;
        w->size += k;
        p += k;
        len -= k;
    }
    return RST_OK;
}

static int file_commit(artifact_writer *w)
{
    if (w->len && write_all(w->fd, w->buf, w->len))
        return log_errno("write", w->tmp_path, errno);
    if (fsync(w->fd))
        return log_errno("fsync", w->tmp_path, errno);
    int fd = w->fd;
    w->fd = -1;
    if (close(fd))
        return log_errno("close", w->tmp_path, errno);
    if (rename(w->tmp_path, w->final_path))
        return log_errno("rename", w->final_path, errno);
    free(w->tmp_path);
    w->tmp_path = NULL; /* published: writer_free must not unlink it */
    if (fsync_dir(w->dir_path))
        return log_errno("fsync", w->dir_path, errno);
    return RST_OK;
}

static int azblob_commit(artifact_writer *w, const char *sha)
{
    if (w->nblocks == 0)
        return azblob_put_blob(w->s->az, w->key, w->buf ? w->buf : (const unsigned char *)"",
                               w->len, sha);
    if (w->len) {
        int rc = flush(w);
        if (rc)
            return rc;
    }
    return azblob_put_block_list(w->s->az, w->key, w->writer_id, w->nblocks, sha);
}

int artifacts_writer_commit(artifact_writer *w, char sha256_hex[65], uint64_t *size)
{
    int rc = w->err;
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0;
    char hex[65];
    if (rc == RST_OK && (!EVP_DigestFinal_ex(w->sha, md, &mdlen) || mdlen != 32))
        rc = RST_EIO;
    if (rc == RST_OK) {
        static const char digits[] = "0123456789abcdef";
        for (unsigned i = 0; i < 32; i++) {
            hex[2 * i] = digits[md[i] >> 4];
            hex[2 * i + 1] = digits[md[i] & 15];
        }
        hex[64] = '\0';
        rc = w->s->kind == KIND_FILE ? file_commit(w) : azblob_commit(w, hex);
    }
    if (rc == RST_OK) {
        memcpy(sha256_hex, hex, sizeof hex);
        *size = w->size;
    }
    writer_free(w);
    return rc;
}

void artifacts_writer_abort(artifact_writer *w)
{
    if (w)
        writer_free(w);
}

/* ------------------------------------------------------------------ reader */

int artifacts_reader_open(artifact_store *s, const char *key, uint64_t offset, uint64_t length,
                          artifact_reader **out)
{
    *out = NULL;
    if (artifacts_key_check(key))
        return RST_EINVAL;
    artifact_reader *r = xcalloc(1, sizeof *r);
    r->s = s;
    r->fd = -1;
    uint64_t size = 0;
    int rc = RST_OK;
    if (s->kind == KIND_FILE) {
        char *path = key_path(s, key);
        struct stat st;
        r->fd = open(path, O_RDONLY | O_CLOEXEC);
        if (r->fd < 0)
            rc = errno == ENOENT || errno == ENOTDIR ? RST_ENOTFOUND
                                                     : log_errno("open", path, errno);
        else if (fstat(r->fd, &st))
            rc = log_errno("stat", path, errno);
        else if (!S_ISREG(st.st_mode))
            rc = RST_ENOTFOUND;
        else
            size = (uint64_t)st.st_size;
        free(path);
    } else {
        r->key = xstrdup(key);
        rc = azblob_get_properties(s->az, key, &size, r->etag);
    }
    if (rc == RST_OK && offset > size)
        rc = RST_EINVAL;
    if (rc) {
        artifacts_reader_close(r);
        return rc;
    }
    r->pos = offset;
    r->end = length == 0 || length > size - offset ? size : offset + length;
    *out = r;
    return RST_OK;
}

int artifacts_reader_read(artifact_reader *r, void *buf, size_t cap, size_t *got)
{
    *got = 0;
    uint64_t left = r->end - r->pos;
    if (cap == 0 || left == 0)
        return RST_OK;
    if (r->s->kind == KIND_FILE) {
        size_t want = left < cap ? (size_t)left : cap;
        for (;;) {
            ssize_t k = pread(r->fd, buf, want, (off_t)r->pos);
            if (k < 0 && errno == EINTR)
                continue;
            if (k < 0)
                return log_errno("read", "(reader)", errno);
            if (k == 0)
                return RST_EIO; /* truncated under us */
            r->pos += (uint64_t)k;
            *got = (size_t)k;
            return RST_OK;
        }
    }
    if (r->chunk_off == r->chunk_len) {
        size_t n = left < AZBLOB_BLOCK_SIZE ? (size_t)left : AZBLOB_BLOCK_SIZE;
        if (cap >= n) { /* the caller's buffer takes a whole fetch: no copy */
            int rc = azblob_get_range(r->s->az, r->key, r->etag, r->pos, buf, n);
            if (rc)
                return rc;
            r->pos += n;
            *got = n;
            return RST_OK;
        }
        if (!r->chunk)
            r->chunk = xmalloc(AZBLOB_BLOCK_SIZE);
        int rc = azblob_get_range(r->s->az, r->key, r->etag, r->pos, r->chunk, n);
        if (rc)
            return rc;
        r->chunk_len = n;
        r->chunk_off = 0;
    }
    size_t k = r->chunk_len - r->chunk_off;
    if (k > cap)
        k = cap;
    memcpy(buf, r->chunk + r->chunk_off, k);
    r->chunk_off += k;
    r->pos += k;
    *got = k;
    return RST_OK;
}

void artifacts_reader_close(artifact_reader *r)
{
    if (!r)
        return;
    if (r->fd >= 0)
        close(r->fd);
    free(r->key);
    free(r->chunk);
    free(r);
}

int artifacts_fetch(artifact_store *s, const char *key, const char *path)
{
    artifact_reader *rd = NULL;
    int rc = artifacts_reader_open(s, key, 0, 0, &rd);
    if (rc)
        return rc == RST_ENOTFOUND ? RST_ENOTFOUND : RST_EIO;
    char *tmp = xasprintf("%s.part", path);
    FILE *f = fopen(tmp, "wb");
    rc = f ? RST_OK : RST_EIO;
    char *chunk = xmalloc(1 << 20);
    size_t got = 0;
    while (rc == RST_OK && (rc = artifacts_reader_read(rd, chunk, 1 << 20, &got)) == RST_OK && got)
        if (fwrite(chunk, 1, got, f) != got)
            rc = RST_EIO;
    free(chunk);
    artifacts_reader_close(rd);
    if (f && fclose(f))
        rc = RST_EIO;
    if (rc == RST_OK && rename(tmp, path))
        rc = RST_EIO;
    if (rc) {
        unlink(tmp);
        rc = RST_EIO;
    }
    free(tmp);
    return rc;
}

/* ------------------------------------------------------- stat, list, delete */

int artifacts_stat(artifact_store *s, const char *key, uint64_t *size)
{
    if (artifacts_key_check(key))
        return RST_EINVAL;
    if (s->kind == KIND_AZBLOB)
        return azblob_get_properties(s->az, key, size, NULL);
    char *path = key_path(s, key);
    struct stat st;
    int rc = RST_OK;
    if (stat(path, &st))
        rc = errno == ENOENT || errno == ENOTDIR ? RST_ENOTFOUND : log_errno("stat", path, errno);
    else if (!S_ISREG(st.st_mode))
        rc = RST_ENOTFOUND;
    else
        *size = (uint64_t)st.st_size;
    free(path);
    return rc;
}

typedef struct {
    char *sortkey; /* directories sort as "name/": then whole keys come out in strcmp order */
    int is_dir;
    uint64_t size;
} dir_entry;

static int entry_cmp(const void *a, const void *b)
{
    return strcmp(((const dir_entry *)a)->sortkey, ((const dir_entry *)b)->sortkey);
}

typedef struct {
    const char *root;
    const char *prefix;
    size_t plen;
    int (*fn)(void *, const char *, uint64_t);
    void *arg;
} walk_ctx;

/* Lists the directory of key prefix rel ("" or "a/b/") in key order. */
static int walk(const walk_ctx *c, const char *rel)
{
    char *path = xasprintf("%s/%s", c->root, rel);
    DIR *d = opendir(path);
    dir_entry *v = NULL;
    size_t n = 0, cap = 0;
    int rc = RST_OK;
    if (!d) {
        /* Pruned by a concurrent delete, or a prefix that names nothing. */
        if (errno != ENOENT && errno != ENOTDIR)
            rc = log_errno("opendir", path, errno);
        goto out;
    }
    struct dirent *de;
    while ((de = readdir(d))) {
        struct stat st;
        if (de->d_name[0] == '.' || fstatat(dirfd(d), de->d_name, &st, AT_SYMLINK_NOFOLLOW))
            continue;
        if (!S_ISDIR(st.st_mode) && !S_ISREG(st.st_mode))
            continue;
        if (n == cap) {
            cap = cap ? cap * 2 : 32;
            v = xrealloc(v, cap * sizeof *v);
        }
        v[n].is_dir = S_ISDIR(st.st_mode);
        v[n].sortkey = v[n].is_dir ? xasprintf("%s/", de->d_name) : xstrdup(de->d_name);
        v[n].size = (uint64_t)st.st_size;
        n++;
    }
    if (n)
        qsort(v, n, sizeof *v, entry_cmp);
    for (size_t i = 0; i < n && rc == RST_OK; i++) {
        char *key = xasprintf("%s%s", rel, v[i].sortkey);
        size_t klen = strlen(key);
        size_t m = klen < c->plen ? klen : c->plen;
        if (v[i].is_dir) {
            if (!strncmp(key, c->prefix, m))
                rc = walk(c, key);
        } else if (klen >= c->plen && !strncmp(key, c->prefix, c->plen) &&
                   artifacts_key_check(key) == RST_OK) {
            rc = c->fn(c->arg, key, v[i].size);
        }
        free(key);
    }
out:
    if (d)
        closedir(d);
    for (size_t i = 0; i < n; i++)
        free(v[i].sortkey);
    free(v);
    free(path);
    return rc;
}

int artifacts_list(artifact_store *s, const char *prefix,
                   int (*fn)(void *arg, const char *key, uint64_t size), void *arg)
{
    if (!prefix_ok(prefix))
        return RST_EINVAL;
    if (!prefix)
        prefix = "";
    if (s->kind == KIND_AZBLOB)
        return azblob_list(s->az, prefix, fn, arg);
    walk_ctx c = {.root = s->root, .prefix = prefix, .plen = strlen(prefix), .fn = fn, .arg = arg};
    return walk(&c, "");
}

int artifacts_delete(artifact_store *s, const char *key)
{
    if (artifacts_key_check(key))
        return RST_EINVAL;
    if (s->kind == KIND_AZBLOB)
        return azblob_delete(s->az, key);
    char *path = key_path(s, key);
    struct stat st;
    int rc = RST_OK;
    if (lstat(path, &st) || !S_ISREG(st.st_mode)) {
        rc = RST_ENOTFOUND;
        goto out;
    }
    if (unlink(path)) {
        rc = errno == ENOENT ? RST_ENOTFOUND : log_errno("unlink", path, errno);
        goto out;
    }
    /* Prune the directories this left empty, then make the last removal durable. */
    size_t rootlen = strlen(s->root);
    *strrchr(path, '/') = '\0';
    while (strlen(path) > rootlen && rmdir(path) == 0)
        *strrchr(path, '/') = '\0';
    if (fsync_dir(path))
        rc = log_errno("fsync", path, errno);
out:
    free(path);
    return rc;
}

/* ----------------------------------------------------------------- derived */

/* Both moved whole from api/datasets.c and api/events.c, their callers. */

int artifacts_sha256(artifact_store *s, const char *key, char out[65])
{
    artifact_reader *r = NULL;
    int rc = artifacts_reader_open(s, key, 0, 0, &r);
    if (rc)
        return rc;
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    char *chunk = xmalloc(65536);
    size_t got = 0;
    while ((rc = artifacts_reader_read(r, chunk, 65536, &got)) == RST_OK && got)
        EVP_DigestUpdate(md, chunk, got);
    unsigned char digest[32];
    unsigned int dlen = 0;
    EVP_DigestFinal_ex(md, digest, &dlen);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
    EVP_MD_CTX_free(md);
    free(chunk);
    artifacts_reader_close(r);
    return rc;
}

int artifacts_container(artifact_store *s, char *buf, size_t cap)
{
    char *uri = artifacts_uri(s, "k");
    int ok = 0;
    if (uri && !strncmp(uri, "azblob://", 9)) {
        const char *c = uri + 9;
        const char *slash = strchr(c, '/');
        size_t n = slash ? (size_t)(slash - c) : strlen(c);
        if (n < cap) {
            memcpy(buf, c, n);
            buf[n] = '\0';
            ok = 1;
        }
    }
    free(uri);
    return ok;
}
