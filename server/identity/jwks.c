/* JWKS key cache: fetches the identity provider's signing keys with libcurl,
 * keeps the RSA ones by kid, and refetches on an unknown kid (key rollover) at
 * most once per interval, so a flood of bad kids cannot hammer the provider. */
#include "identity/jwks.h"

#include <ctype.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include <curl/curl.h>
#include <jansson.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/param_build.h>

#include "core/log.h"
#include "core/metrics.h"
#include "lib/util.h"
#include "lib/jsonguard.h"

enum {
    KID_MAX = 256,
    EMPTY_RETRY_MS = 5000,          /* no key at all: retry sooner than the interval */
    STALE_MS = 24 * 60 * 60 * 1000, /* refresh known keys once a day */
    CONNECT_TIMEOUT_MS = 3000,
    TOTAL_TIMEOUT_MS = 10000,
};

typedef struct {
    char *kid;
    EVP_PKEY *key;
} jwk_entry;

typedef struct {
    jwk_entry *v;
    size_t n;
} keyset;

struct jwks_cache {
    char *url; /* immutable after new: read without the lock */
    pthread_mutex_t mu;
    pthread_cond_t fetched; /* signalled when a fetch ends */
    keyset keys;
    int fetching;
    int64_t last_attempt_ms; /* monotonic; 0 = never */
    int64_t fetched_ms;      /* monotonic time of the last successful fetch */
    int64_t refetch_ms;
};

/* ---- base64url --------------------------------------------------------- */

static const char B64URL[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static int b64url_value(unsigned char ch)
{
    if (ch >= 'A' && ch <= 'Z')
        return ch - 'A';
    if (ch >= 'a' && ch <= 'z')
        return ch - 'a' + 26;
    if (ch >= '0' && ch <= '9')
        return ch - '0' + 52;
    if (ch == '-')
        return 62;
    if (ch == '_')
        return 63;
    return -1;
}

int jwks_b64url_decode(const char *in, size_t inlen, unsigned char **out, size_t *outlen)
{
    *out = NULL;
    *outlen = 0;
    if (inlen % 4 == 1)
        return RST_EINVAL;
    unsigned char *o = xmalloc(inlen / 4 * 3 + 3);
    size_t n = 0;
    uint32_t acc = 0;
    int bits = 0;
    for (size_t i = 0; i < inlen; i++) {
        int v = b64url_value((unsigned char)in[i]);
        if (v < 0) {
            free(o);
            return RST_EINVAL;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            o[n++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    if (acc != 0) { /* non-canonical: trailing bits must be zero */
        free(o);
        return RST_EINVAL;
    }
    o[n] = '\0';
    *out = o;
    *outlen = n;
    return RST_OK;
}

char *jwks_b64url_encode(const unsigned char *data, size_t len)
{
    char *o = xmalloc(len / 3 * 4 + 5);
    size_t n = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8 | data[i + 2];
        o[n++] = B64URL[v >> 18 & 63];
        o[n++] = B64URL[v >> 12 & 63];
        o[n++] = B64URL[v >> 6 & 63];
        o[n++] = B64URL[v & 63];
    }
    if (len - i == 1) {
        uint32_t v = (uint32_t)data[i] << 16;
        o[n++] = B64URL[v >> 18 & 63];
        o[n++] = B64URL[v >> 12 & 63];
    } else if (len - i == 2) {
        uint32_t v = (uint32_t)data[i] << 16 | (uint32_t)data[i + 1] << 8;
        o[n++] = B64URL[v >> 18 & 63];
        o[n++] = B64URL[v >> 12 & 63];
        o[n++] = B64URL[v >> 6 & 63];
    }
    o[n] = '\0';
    return o;
}

/* ---- JWK -> EVP_PKEY --------------------------------------------------- */

/* Decodes a base64url big-endian integer member of jwk into a new BIGNUM. */
static BIGNUM *jwk_bignum(json_t *jwk, const char *name)
{
    const char *s = json_string_value(json_object_get(jwk, name));
    if (!s)
        return NULL;
    unsigned char *bin = NULL;
    size_t len = 0;
    if (jwks_b64url_decode(s, strlen(s), &bin, &len) || len == 0 ||
        len > JWKS_MAX_RSA_BITS / 8 + 1) {
        free(bin);
        return NULL;
    }
    BIGNUM *bn = BN_bin2bn(bin, (int)len, NULL);
    free(bin);
    return bn;
}

/* The RSA public key of one JWK. RST_OK and *out (new: EVP_PKEY_free), or
 * RST_EINVAL with why filled. */
static int rsa_from_jwk(json_t *jwk, EVP_PKEY **out, char *why, size_t whylen)
{
    int rc = RST_EINVAL;
    BIGNUM *n = NULL, *e = NULL;
    OSSL_PARAM_BLD *bld = NULL;
    OSSL_PARAM *params = NULL;
    EVP_PKEY_CTX *ctx = NULL;
    *out = NULL;

    const char *kty = json_string_value(json_object_get(jwk, "kty"));
    json_t *use = json_object_get(jwk, "use");
    json_t *alg = json_object_get(jwk, "alg");
    if (!kty || strcmp(kty, "RSA")) {
        snprintf(why, whylen, "kty is not RSA");
        goto out;
    }
    if (use && (!json_is_string(use) || strcmp(json_string_value(use), "sig"))) {
        snprintf(why, whylen, "use is not sig");
        goto out;
    }
    if (alg && (!json_is_string(alg) || strcmp(json_string_value(alg), "RS256"))) {
        snprintf(why, whylen, "alg is not RS256");
        goto out;
    }
    n = jwk_bignum(jwk, "n");
    e = jwk_bignum(jwk, "e");
    if (!n || !e) {
        snprintf(why, whylen, "n or e is missing or not base64url");
        goto out;
    }
    int bits = BN_num_bits(n);
    if (bits < JWKS_MIN_RSA_BITS || bits > JWKS_MAX_RSA_BITS) {
        snprintf(why, whylen, "modulus of %d bits (expected %d to %d)", bits, JWKS_MIN_RSA_BITS,
                 JWKS_MAX_RSA_BITS);
        goto out;
    }
    if (!BN_is_odd(e) || BN_is_one(e) || BN_num_bits(e) > 64) {
        snprintf(why, whylen, "exponent is not acceptable");
        goto out;
    }
    bld = OSSL_PARAM_BLD_new();
    if (!bld || !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_N, n) ||
        !OSSL_PARAM_BLD_push_BN(bld, OSSL_PKEY_PARAM_RSA_E, e) ||
        !(params = OSSL_PARAM_BLD_to_param(bld))) {
        snprintf(why, whylen, "openssl parameter building failed");
        goto out;
    }
    ctx = EVP_PKEY_CTX_new_from_name(NULL, "RSA", NULL);
    if (!ctx || EVP_PKEY_fromdata_init(ctx) <= 0 ||
        EVP_PKEY_fromdata(ctx, out, EVP_PKEY_PUBLIC_KEY, params) <= 0) {
        snprintf(why, whylen, "openssl rejected the key");
        *out = NULL;
        goto out;
    }
    rc = RST_OK;
out:
    EVP_PKEY_CTX_free(ctx);
    OSSL_PARAM_free(params);
    OSSL_PARAM_BLD_free(bld);
    BN_free(n);
    BN_free(e);
    return rc;
}

/* ---- key sets ---------------------------------------------------------- */

static void keyset_free(keyset *ks)
{
    for (size_t i = 0; i < ks->n; i++) {
        free(ks->v[i].kid);
        EVP_PKEY_free(ks->v[i].key);
    }
    free(ks->v);
    ks->v = NULL;
    ks->n = 0;
}

static EVP_PKEY *keyset_find(const keyset *ks, const char *kid)
{
    for (size_t i = 0; i < ks->n; i++)
        if (!strcmp(ks->v[i].kid, kid))
            return ks->v[i].key;
    return NULL;
}

/* Parses a JWKS document into ks (empty on entry). Keys that are not usable
 * RSA signing keys are skipped; a document without any is an error. */
static int keyset_parse(const char *doc, size_t len, keyset *ks, char *err, size_t errlen)
{
    json_error_t jerr;
    json_t *root = NULL;
    jsonguard_loadb(doc, len, JSON_REJECT_DUPLICATES, &root, &jerr); /* fetched on HTTP threads */
    json_t *arr = root ? json_object_get(root, "keys") : NULL;
    if (!root) {
        snprintf(err, errlen, "not JSON: %s at line %d column %d", jerr.text, jerr.line,
                 jerr.column);
        return RST_EINVAL;
    }
    if (!json_is_array(arr)) {
        snprintf(err, errlen, "no \"keys\" array");
        json_decref(root);
        return RST_EINVAL;
    }
    size_t i;
    json_t *jwk;
    ks->v = xcalloc(JWKS_MAX_KEYS, sizeof *ks->v);
    json_array_foreach(arr, i, jwk)
    {
        const char *kid = json_string_value(json_object_get(jwk, "kid"));
        char why[128];
        EVP_PKEY *key = NULL;
        if (ks->n == JWKS_MAX_KEYS)
            break;
        if (!kid || !*kid || strlen(kid) > KID_MAX) {
            log_fields(LOG_DEBUG, "jwks key skipped", json_pack("{s:s}", "why", "no usable kid"));
            continue;
        }
        if (keyset_find(ks, kid)) {
            log_fields(LOG_DEBUG, "jwks key skipped",
                       json_pack("{s:s, s:s}", "kid", kid, "why", "duplicate kid"));
            continue;
        }
        if (rsa_from_jwk(jwk, &key, why, sizeof why)) {
            log_fields(LOG_DEBUG, "jwks key skipped",
                       json_pack("{s:s, s:s}", "kid", kid, "why", why));
            continue;
        }
        ks->v[ks->n].kid = xstrdup(kid);
        ks->v[ks->n].key = key;
        ks->n++;
    }
    json_decref(root);
    if (ks->n == 0) {
        snprintf(err, errlen, "no usable RSA signing key in the document");
        keyset_free(ks);
        return RST_EINVAL;
    }
    return RST_OK;
}

/* ---- fetching ---------------------------------------------------------- */

static size_t write_capped(char *data, size_t size, size_t nmemb, void *userdata)
{
    buf_t *b = userdata;
    size_t n = size * nmemb;
    return buf_append(b, data, n) == RST_OK ? n : 0; /* a short count aborts the transfer */
}

/* Fetches and parses the document. No lock is held. */
static int fetch_keyset(const char *url, keyset *ks, char *err, size_t errlen)
{
    int rc = RST_EIO;
    char errbuf[CURL_ERROR_SIZE] = "";
    buf_t doc;
    buf_init(&doc, JWKS_MAX_DOCUMENT);
    CURL *h = curl_easy_init();
    if (!h) {
        snprintf(err, errlen, "curl_easy_init failed");
        goto out;
    }
    curl_easy_setopt(h, CURLOPT_URL, url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https,file");
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, (long)CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, (long)TOTAL_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)JWKS_MAX_DOCUMENT);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, write_capped);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &doc);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, errbuf);
    curl_easy_setopt(h, CURLOPT_USERAGENT, "roastery-jwks");
    CURLcode cc = curl_easy_perform(h);
    if (cc != CURLE_OK) {
        snprintf(err, errlen, "%s",
                 cc == CURLE_WRITE_ERROR ? "document larger than 1 MiB"
                 : errbuf[0]             ? errbuf
                                         : curl_easy_strerror(cc));
        goto out;
    }
    long status = 0;
    curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
    if (strncmp(url, "file:", 5) && status != 200) {
        snprintf(err, errlen, "HTTP status %ld", status);
        goto out;
    }
    rc = keyset_parse(doc.data ? doc.data : "", doc.len, ks, err, errlen);
out:
    curl_easy_cleanup(h);
    buf_free(&doc);
    return rc;
}

/* ---- the cache --------------------------------------------------------- */

/* 1 if host (up to end) is a loopback name we let speak plain HTTP. */
static int loopback_authority(const char *p)
{
    static const char *const hosts[] = {"127.0.0.1", "localhost", "[::1]"};
    for (size_t i = 0; i < sizeof hosts / sizeof hosts[0]; i++) {
        size_t n = strlen(hosts[i]);
        if (!strncmp(p, hosts[i], n) && (p[n] == '\0' || p[n] == ':' || p[n] == '/'))
            return 1;
    }
    return 0;
}

static int url_acceptable(const char *url)
{
    for (const char *p = url; *p; p++)
        if (!isgraph((unsigned char)*p))
            return 0;
    if (!strncmp(url, "https://", 8))
        return url[8] != '\0' && url[8] != '/';
    if (!strncmp(url, "http://", 7))
        return loopback_authority(url + 7);
    if (!strncmp(url, "file:///", 8))
        return url[8] != '\0';
    return 0;
}

jwks_cache *jwks_cache_new(const char *url)
{
    if (!url || !url_acceptable(url))
        return NULL;
    jwks_cache *c = xcalloc(1, sizeof *c);
    c->url = xstrdup(url);
    pthread_mutex_init(&c->mu, NULL);
    pthread_cond_init(&c->fetched, NULL);
    c->refetch_ms = JWKS_DEFAULT_REFETCH_MS;
    return c;
}

void jwks_cache_free(jwks_cache *c)
{
    if (!c)
        return;
    keyset_free(&c->keys);
    pthread_cond_destroy(&c->fetched);
    pthread_mutex_destroy(&c->mu);
    free(c->url);
    free(c);
}

void jwks_cache_set_refetch_interval_ms(jwks_cache *c, int64_t ms)
{
    pthread_mutex_lock(&c->mu);
    c->refetch_ms = ms < 0 ? 0 : ms;
    pthread_mutex_unlock(&c->mu);
}

/* Whether a fetch may start now. Called with the lock held. */
static int fetch_due(const jwks_cache *c, int64_t now)
{
    if (c->fetching)
        return 0;
    if (!c->last_attempt_ms)
        return 1;
    int64_t wait = c->refetch_ms;
    if (c->keys.n == 0 && wait > EMPTY_RETRY_MS)
        wait = EMPTY_RETRY_MS;
    return now - c->last_attempt_ms >= wait;
}

/* Runs one fetch with the lock released around the network I/O and installs
 * the result. Called and returns with the lock held. */
static void refresh_locked(jwks_cache *c, int64_t now)
{
    char err[CURL_ERROR_SIZE + 64] = "";
    keyset fresh = {0};
    c->fetching = 1;
    c->last_attempt_ms = now;
    pthread_mutex_unlock(&c->mu);
    int rc = fetch_keyset(c->url, &fresh, err, sizeof err);
    pthread_mutex_lock(&c->mu);
    if (rc == RST_OK) {
        keyset old = c->keys; /* keys handed out hold their own reference */
        c->keys = fresh;
        c->fetched_ms = now_ms_monotonic();
        keyset_free(&old);
        log_fields(LOG_INFO, "jwks fetched",
                   json_pack("{s:s, s:i}", "url", c->url, "keys", (int)c->keys.n));
    } else {
        metrics_count("roastery_jwks_fetch_failures_total",
                      "Fetches of the signing keys (JWKS) that failed; cached keys stay in use.");
        log_fields(LOG_WARN, "jwks fetch failed",
                   json_pack("{s:s, s:s, s:i}", "url", c->url, "error", err, "cached_keys",
                             (int)c->keys.n));
    }
    c->fetching = 0;
    pthread_cond_broadcast(&c->fetched);
}

int jwks_key(jwks_cache *c, const char *kid, EVP_PKEY **out)
{
    int rc;
    int tried = 0; /* this call has fetched or waited for a fetch: never loop on it */
    *out = NULL;
    if (!kid || !*kid)
        return RST_ENOTFOUND;
    pthread_mutex_lock(&c->mu);
    for (;;) {
        EVP_PKEY *k = keyset_find(&c->keys, kid);
        int64_t now = now_ms_monotonic();
        int due = !tried && fetch_due(c, now);
        if (k && !(due && now - c->fetched_ms > STALE_MS)) {
            EVP_PKEY_up_ref(k);
            *out = k;
            rc = RST_OK;
            break;
        }
        if (!k && c->fetching && !tried) {
            while (c->fetching)
                pthread_cond_wait(&c->fetched, &c->mu);
            tried = 1;
            continue;
        }
        if (!due) {
            rc = c->keys.n ? RST_ENOTFOUND : RST_EUNAVAIL;
            break;
        }
        refresh_locked(c, now);
        tried = 1;
    }
    pthread_mutex_unlock(&c->mu);
    return rc;
}
