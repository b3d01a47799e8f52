/* A cache of the RSA signing keys an identity provider publishes as a JWKS
 * document (Azure AD's discovery/v2.0/keys, or a file for tests and the dev
 * issuer), looked up by kid. Also the base64url codec the JOSE modules share. */
#ifndef ROASTERY_JWKS_H
#define ROASTERY_JWKS_H

#include <stddef.h>
#include <stdint.h>

#include <openssl/evp.h>

typedef struct jwks_cache jwks_cache;

/* Limits on what a JWKS endpoint may send us. */
enum {
    JWKS_MAX_DOCUMENT = 1024 * 1024, /* bytes */
    JWKS_MAX_KEYS = 64,
    JWKS_MIN_RSA_BITS = 2048,
    JWKS_MAX_RSA_BITS = 8192,
    JWKS_DEFAULT_REFETCH_MS = 60 * 1000, /* at most one refetch per minute */
};

/* url: https://..., http://127.0.0.1[:port]/..., http://localhost[:port]/...,
 * http://[::1][:port]/... or file:///path. Nothing is fetched until the first
 * lookup. new: caller frees with jwks_cache_free; NULL when the URL is not one
 * of the accepted forms. The URL is copied. */
jwks_cache *jwks_cache_new(const char *url);
void jwks_cache_free(jwks_cache *c);

/* The shortest time between two fetches (default JWKS_DEFAULT_REFETCH_MS); tests
 * set it short. A cache that holds no key at all retries after at most 5 s. */
void jwks_cache_set_refetch_interval_ms(jwks_cache *c, int64_t ms);

/* Looks up the RSA public key for kid. An unknown kid (key rollover) refetches
 * the document when the refetch interval allows it; keys are also refreshed
 * when they are older than a day. A failed fetch keeps the cached keys, is
 * logged and counted in roastery_jwks_fetch_failures_total.
 * Returns RST_OK and *out (new: caller frees with EVP_PKEY_free),
 * RST_ENOTFOUND for a kid the provider does not publish, or RST_EUNAVAIL
 * when no key set could be fetched at all. Thread-safe. */
int jwks_key(jwks_cache *c, const char *kid, EVP_PKEY **out);

/* Strict base64url without padding (RFC 7515 §2): only A-Z a-z 0-9 - _,
 * canonical trailing bits. Returns RST_OK with *out (new: caller frees with
 * free(); NUL-terminated for convenience, *outlen excludes it) or RST_EINVAL. */
int jwks_b64url_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen);
/* new: caller frees with free(). Unpadded base64url of data. */
char *jwks_b64url_encode(const unsigned char *data, size_t len);

#endif
