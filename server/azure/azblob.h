/* A small Azure Blob Storage client for one container: the REST calls the
 * artifact store needs, signed with Shared Key or with Entra ID bearer tokens, retried with
 * backoff. It knows
 * nothing about keys or streaming; server/artifacts/artifacts.c builds those on top. */
#ifndef ROASTERY_AZBLOB_H
#define ROASTERY_AZBLOB_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"

/* The largest body of one Put Blob / Put Block and of one ranged Get Blob. */
#define AZBLOB_BLOCK_SIZE ((size_t)4 * 1024 * 1024)
/* Azure's limit on the blocks of one block blob. */
#define AZBLOB_MAX_BLOCKS 50000u
/* Sizes of the strings the calls below fill in, NUL included. */
#define AZBLOB_ETAG_MAX 128
#define AZBLOB_BLOCK_ID_LEN 33
#define AZBLOB_WRITER_ID_LEN 17

typedef struct azblob azblob;

/* Parses the connection string (DefaultEndpointsProtocol, AccountName, AccountKey and BlobEndpoint
 * or EndpointSuffix; "UseDevelopmentStorage=true" means Azurite's well-known defaults) and checks
 * the container name. With AccountKey requests are signed with Shared Key; without one (e.g.
 * "BlobEndpoint=https://acct.blob.core.windows.net" alone) they carry Entra ID bearer tokens of
 * the process credential (aad_credential_default_copy, taken now), and the endpoint must be https
 * (http only on loopback). Does no I/O. Returns RST_OK, or RST_EINVAL with a reason in err (never
 * the key). container and conn are borrowed. new: caller frees *out with azblob_close. */
int azblob_open(const char *container, const char *conn, azblob **out, char *err, size_t errlen);
/* Frees c and wipes the key; NULL-safe. */
void azblob_close(azblob *c);

/* Create Container; an existing container is success. err gets a short reason on failure. */
int azblob_create_container(azblob *c, char *err, size_t errlen);

/* Sets the first page size of azblob_list (1..5000; default 1000). Not thread-safe: call before
 * sharing c. */
void azblob_set_list_page_size(azblob *c, unsigned n);

/* name is the blob name, unencoded (the caller validates it); every buffer is borrowed. */

/* Put Blob (a block blob of len <= AZBLOB_BLOCK_SIZE bytes, replacing any blob of that name).
 * sha256_hex (may be NULL) is stored as the blob's "sha256" metadata. */
int azblob_put_blob(azblob *c, const char *name, const void *data, size_t len,
                    const char *sha256_hex);
/* Fills out with the block id of block index of one upload; writer_id is 16 hex characters that
 * keep concurrent uploads to the same name apart. */
void azblob_block_id(char out[AZBLOB_BLOCK_ID_LEN], const char *writer_id, uint32_t index);
/* Put Block: stages one uncommitted block (len <= AZBLOB_BLOCK_SIZE). */
int azblob_put_block(azblob *c, const char *name, const char *block_id, const void *data,
                     size_t len);
/* Put Block List: publishes blocks 0..count-1 of writer_id as the blob, atomically. */
int azblob_put_block_list(azblob *c, const char *name, const char *writer_id, uint32_t count,
                          const char *sha256_hex);

/* Get Blob Properties: size and ETag. RST_ENOTFOUND when absent. */
int azblob_get_properties(azblob *c, const char *name, uint64_t *size, char etag[AZBLOB_ETAG_MAX]);
/* Ranged Get Blob of exactly len (1..AZBLOB_BLOCK_SIZE) bytes at offset into dst. With etag
 * (may be NULL) the read fails with RST_ECONFLICT when the blob changed since. */
int azblob_get_range(azblob *c, const char *name, const char *etag, uint64_t offset, void *dst,
                     size_t len);
/* Delete Blob. RST_ENOTFOUND when absent. */
int azblob_delete(azblob *c, const char *name);
/* List Blobs under prefix (may be ""), following NextMarker, calling fn in name order. Stops
 * when fn returns non-zero and returns that value. name is borrowed for the call. */
int azblob_list(azblob *c, const char *prefix,
                int (*fn)(void *arg, const char *name, uint64_t size), void *arg);

#endif
