/* The hot cache of forecast reads: a store's answer (JSON or CSV) kept in
 * memory with its ETag, so the common read reaches neither PostgreSQL nor the
 * serializer. Entries are checked against the generation of this process
 * (bumped when this process switches a forecast run or takes actuals) and
 * expire after FORECAST_CACHE_TTL_SECONDS, which bounds how stale another
 * process's switch can be seen. */
#ifndef ROASTERY_FORECAST_CACHE_H
#define ROASTERY_FORECAST_CACHE_H

#include <stddef.h>

#define FORECAST_CACHE_TTL_SECONDS 10
#define FORECAST_CACHE_MAX_BYTES ((size_t)256 << 20)

/* Forgets every entry (a new run is current, or actuals changed). */
void forecast_cache_invalidate(void);

/* A cached answer for key, copied into *body (new: free) with its etag
 * (borrowed into etag[72]). 1 found, 0 not. */
int forecast_cache_get(const char *key, char **body, size_t *len, char etag[72]);
/* Stores body (copied) for key; computes the ETag into etag[72]. */
void forecast_cache_put(const char *key, const char *body, size_t len, char etag[72]);
/* The ETag a body gets. */
void forecast_cache_etag(const char *body, size_t len, char etag[72]);

void forecast_cache_free(void);

#endif
