/* A small hash map of rendered forecast answers under a read-write lock. */
#include "forecasts/forecast_cache.h"
#include "lib/util.h"

#include <openssl/evp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define BUCKETS 4096

typedef struct entry {
    struct entry *next;
    char *key;
    char *body;
    size_t len;
    char etag[72];
    unsigned long generation;
    time_t expires;
} entry;

static pthread_rwlock_t lock = PTHREAD_RWLOCK_INITIALIZER;
static entry *table[BUCKETS];
static size_t bytes;
static _Atomic unsigned long generation = 1;

static uint64_t hash(const char *s)
{
    uint64_t h = 1469598103934665603ULL;
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 1099511628211ULL;
    return h;
}

static void drop_all(void)
{
    for (size_t i = 0; i < BUCKETS; i++) {
        for (entry *e = table[i], *n; e; e = n) {
            n = e->next;
            free(e->key);
            free(e->body);
            free(e);
        }
        table[i] = NULL;
    }
    bytes = 0;
}

void forecast_cache_invalidate(void)
{
    atomic_fetch_add(&generation, 1);
}

void forecast_cache_etag(const char *body, size_t len, char etag[72])
{
    unsigned char md[32];
    unsigned int n = 0;
    EVP_Digest(body, len, md, &n, EVP_sha256(), NULL);
    /* strong ETag: the first 128 bits of the body's SHA-256 */
    size_t o = (size_t)snprintf(etag, 72, "\"");
    for (int i = 0; i < 16; i++)
        o += (size_t)snprintf(etag + o, 72 - o, "%02x", md[i]);
    snprintf(etag + o, 72 - o, "\"");
}

int forecast_cache_get(const char *key, char **body, size_t *len, char etag[72])
{
    uint64_t h = hash(key) % BUCKETS;
    unsigned long gen = atomic_load(&generation);
    time_t now = time(NULL);
    int found = 0;
    pthread_rwlock_rdlock(&lock);
    for (entry *e = table[h]; e; e = e->next)
        if (!strcmp(e->key, key)) {
            if (e->generation == gen && e->expires > now) {
                *body = xmalloc(e->len + 1);
                memcpy(*body, e->body, e->len);
                (*body)[e->len] = '\0';
                *len = e->len;
                memcpy(etag, e->etag, 72);
                found = 1;
            }
            break;
        }
    pthread_rwlock_unlock(&lock);
    return found;
}

void forecast_cache_put(const char *key, const char *body, size_t len, char etag[72])
{
    forecast_cache_etag(body, len, etag);
    uint64_t h = hash(key) % BUCKETS;
    entry *n = xcalloc(1, sizeof *n);
    n->key = xstrdup(key);
    n->body = xmalloc(len ? len : 1);
    memcpy(n->body, body, len);
    n->len = len;
    memcpy(n->etag, etag, 72);
    n->generation = atomic_load(&generation);
    n->expires = time(NULL) + FORECAST_CACHE_TTL_SECONDS;
    pthread_rwlock_wrlock(&lock);
    if (bytes + len > FORECAST_CACHE_MAX_BYTES)
        drop_all(); /* rare: a full cache starts over rather than tracking recency */
    entry **pp = &table[h];
    while (*pp && strcmp((*pp)->key, key))
        pp = &(*pp)->next;
    if (*pp) {
        entry *old = *pp;
        n->next = old->next;
        bytes -= old->len;
        free(old->key);
        free(old->body);
        free(old);
    } else {
        n->next = NULL;
    }
    *pp = n;
    bytes += len;
    pthread_rwlock_unlock(&lock);
}

void forecast_cache_free(void)
{
    pthread_rwlock_wrlock(&lock);
    drop_all();
    pthread_rwlock_unlock(&lock);
}
