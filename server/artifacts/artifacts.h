/* The platform's artifact store (datasets, models, logs): one interface, two
 * backends chosen by URL, a local directory or an Azure Blob container.
 * Objects are published atomically and streamed with bounded memory. */
#ifndef ROASTERY_ARTIFACTS_H
#define ROASTERY_ARTIFACTS_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"

/* The longest key, in bytes. */
#define ARTIFACTS_KEY_MAX 1024

/* A store may be used from many threads at once; each writer and reader object belongs to one
 * thread at a time. */
typedef struct artifact_store artifact_store;
typedef struct artifact_writer artifact_writer;
typedef struct artifact_reader artifact_reader;

/* url: "file:///abs/dir" (the directory is created if missing) or "azblob://<container>", which
 * needs azure_connection_string (DefaultEndpointsProtocol, AccountName, AccountKey and
 * BlobEndpoint, e.g. Azurite's http://127.0.0.1:10000/devstoreaccount1, or EndpointSuffix;
 * "UseDevelopmentStorage=true" means Azurite's defaults). For azblob the container is created if
 * missing, so a wrong key or an unreachable endpoint fails here. Returns RST_OK, RST_EINVAL (bad
 * URL or connection string), RST_EIO or RST_EUNAVAIL, with a reason in err (never the key).
 * Arguments are borrowed. new: caller frees *out with artifacts_close. */
int artifacts_open(const char *url, const char *azure_connection_string, artifact_store **out,
                   char *err, size_t errlen);
/* Frees s; every writer and reader of s must be finished first. NULL-safe. */
void artifacts_close(artifact_store *s);

/* Page size of azblob listings (1..5000, default 1000); file stores ignore it. Call before the
 * store is shared between threads. */
void artifacts_set_list_page_size(artifact_store *s, unsigned n);

/* Keys are relative paths such as "projects/p1/datasets/d/v3/canonical.csv": at most
 * ARTIFACTS_KEY_MAX bytes of printable ASCII without '\', made of non-empty '/'-separated
 * segments that neither start nor end with '.' (so no "." or ".."), no leading or trailing '/'.
 * Returns RST_OK or RST_EINVAL; every call below answers RST_EINVAL for such a key. */
int artifacts_key_check(const char *key);

/* "file:///abs/dir/<key>" or "azblob://<container>/<key>"; NULL for an invalid key.
 * new: caller frees with free(). */
char *artifacts_uri(artifact_store *s, const char *key);

/* Starts writing key; nothing is visible under key until artifacts_writer_commit. Another
 * writer committing the same key later wins. A file store cannot hold both "a" and "a/b": the
 * second one fails with RST_ECONFLICT (here or at commit). new: caller ends *out with
 * artifacts_writer_commit or artifacts_writer_abort. */
int artifacts_writer_open(artifact_store *s, const char *key, artifact_writer **out);
/* Appends len bytes (borrowed). Memory stays bounded (file: 64 KiB, azblob: one 4 MiB block).
 * After a failure every later call fails the same way. RST_ETOOBIG past azblob's 50,000 blocks. */
int artifacts_writer_write(artifact_writer *w, const void *data, size_t len);
/* Publishes atomically (file: temp file in the same directory, fsync, rename, fsync of the
 * directory; azblob: one Put Blob up to 4 MiB, else Put Block per 4 MiB block and Put Block
 * List) and fills the SHA-256 (lower-case hex) and size of what was written. Frees w whatever
 * happens (steals w). */
int artifacts_writer_commit(artifact_writer *w, char sha256_hex[65], uint64_t *size);
/* Discards what was written (azblob: staged blocks are garbage-collected by Azure within a week)
 * and frees w. NULL-safe. */
void artifacts_writer_abort(artifact_writer *w);

/* Reads length bytes from offset (length 0 = to the end; a range past the end stops at the
 * end). RST_ENOTFOUND when absent, RST_EINVAL when offset is past the end. Memory stays bounded
 * (azblob: ranged Get Blob of at most 4 MiB per fetch). A file reader keeps reading the version
 * it opened; an azblob reader fails with RST_ECONFLICT once the blob was replaced. new: caller
 * frees *out with artifacts_reader_close. */
int artifacts_reader_open(artifact_store *s, const char *key, uint64_t offset, uint64_t length,
                          artifact_reader **out);
/* Copies up to cap bytes into buf (borrowed); *got = 0 at the end. */
int artifacts_reader_read(artifact_reader *r, void *buf, size_t cap, size_t *got);
/* NULL-safe. */
void artifacts_reader_close(artifact_reader *r);

/* Copies key into the local file path, whole or not at all (written to path.part, then renamed),
 * with a heap buffer (callers include HTTP threads). RST_OK, RST_ENOTFOUND when key is absent,
 * else RST_EIO. */
int artifacts_fetch(artifact_store *s, const char *key, const char *path);

/* Size of key. RST_ENOTFOUND when absent. */
int artifacts_stat(artifact_store *s, const char *key, uint64_t *size);

/* Calls fn for every key that starts with prefix ("" = all), in byte order of the keys (strcmp),
 * with its size; key is borrowed for the call. Stops when fn returns non-zero and returns that
 * value. azblob: List Blobs with marker paging. */
int artifacts_list(artifact_store *s, const char *prefix,
                   int (*fn)(void *arg, const char *key, uint64_t size), void *arg);

/* Removes key. RST_ENOTFOUND when absent. */
int artifacts_delete(artifact_store *s, const char *key);

/* The SHA-256 of key's bytes as they are now, streamed, into out (64 hex digits + NUL).
 * RST_OK, RST_ENOTFOUND when absent, or the reader's error. */
int artifacts_sha256(artifact_store *s, const char *key, char out[65]);

/* The store's Azure Blob container into buf (cap bytes); 0 when the store is not azblob (or the
 * name does not fit), else 1. */
int artifacts_container(artifact_store *s, char *buf, size_t cap);

#endif
