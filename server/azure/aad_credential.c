/* Client-credentials tokens from the Microsoft identity platform, by secret or by federated
 * assertion, and their cache. The request form follows "Microsoft identity platform and the
 * OAuth 2.0 client credentials flow" (learn.microsoft.com, v2-oauth2-client-creds-grant-flow):
 * grant_type=client_credentials, client_id, scope=<resource>/.default, and either client_secret
 * or client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer with
 * client_assertion=<a JWT from a trusted issuer> (the "federated credential" case). */
#include "azure/aad_credential.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "core/log.h"

#define ASSERTION_MAX ((size_t)64 * 1024)
#define ANSWER_MAX ((size_t)64 * 1024)
#define ATTEMPTS 3
#define BACKOFF_BASE_MS 250L
#define RETRY_AFTER_CAP_MS 10000L

struct aad_credential {
    char *authority; /* scheme://host[:port], no trailing '/' */
    char *tenant, *client_id;
    char *client_secret;        /* NULL with a token file */
    char *federated_token_file; /* NULL with a secret */
    char *token_url;
};

struct aad_credential_cache {
    pthread_mutex_t lock; /* guards token and expiry; held while fetching */
    char *token;
    int64_t expiry; /* monotonic ms after which the token is not used */
};

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

void aad_credential_secret_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

/* ---------------------------------------------------------------- credential */

/* scheme://host[:port] and nothing else, https unless the host is loopback. */
static int authority_ok(const char *url)
{
    const char *host;
    if (!strncmp(url, "https://", 8))
        host = url + 8;
    else if (!strncmp(url, "http://", 7)) {
        host = url + 7;
        if (strncmp(host, "127.0.0.1", 9) && strncmp(host, "localhost", 9) &&
            strncmp(host, "[::1]", 5))
            return 0;
    } else
        return 0;
    return *host && !strpbrk(host, "/?#@ \t\r\n");
}

/* A tenant id or domain that goes into the token URL's path. */
static int tenant_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!isalnum(ch) && ch != '-' && ch != '_' && ch != '.')
            return 0;
    }
    return 1;
}

int aad_credential_new(const aad_credential_options *o, aad_credential **out, char *err,
                       size_t errlen)
{
    *out = NULL;
    const char *authority = o->authority && *o->authority ? o->authority : AAD_DEFAULT_AUTHORITY;
    size_t n = strlen(authority);
    while (n > 0 && authority[n - 1] == '/') /* AZURE_AUTHORITY_HOST ends with one */
        n--;
    char *auth = xstrndup(authority, n);
    if (!authority_ok(auth)) {
        set_err(err, errlen, "aad authority must be an https:// origin (http:// only on loopback)");
        free(auth);
        return RST_EINVAL;
    }
    int secret = o->client_secret && *o->client_secret;
    int file = o->federated_token_file && *o->federated_token_file;
    if (!tenant_ok(o->tenant_id) || !o->client_id || !*o->client_id || (!secret && !file)) {
        set_err(err, errlen,
                "tenant id, client id and a client secret or a federated token file are "
                "required");
        free(auth);
        return RST_EINVAL;
    }
    aad_credential *c = xcalloc(1, sizeof *c);
    c->authority = auth;
    c->tenant = xstrdup(o->tenant_id);
    c->client_id = xstrdup(o->client_id);
    if (secret)
        c->client_secret = xstrdup(o->client_secret);
    else
        c->federated_token_file = xstrdup(o->federated_token_file);
    c->token_url = xasprintf("%s/%s/oauth2/v2.0/token", c->authority, c->tenant);
    *out = c;
    return RST_OK;
}

aad_credential *aad_credential_copy(const aad_credential *c)
{
    if (!c)
        return NULL;
    aad_credential *d = xcalloc(1, sizeof *d);
    d->authority = xstrdup(c->authority);
    d->tenant = xstrdup(c->tenant);
    d->client_id = xstrdup(c->client_id);
    d->client_secret = c->client_secret ? xstrdup(c->client_secret) : NULL;
    d->federated_token_file = c->federated_token_file ? xstrdup(c->federated_token_file) : NULL;
    d->token_url = xstrdup(c->token_url);
    return d;
}

void aad_credential_free(aad_credential *c)
{
    if (!c)
        return;
    aad_credential_secret_free(c->client_secret);
    free(c->authority);
    free(c->tenant);
    free(c->client_id);
    free(c->federated_token_file);
    free(c->token_url);
    free(c);
}

const char *aad_credential_kind(const aad_credential *c)
{
    return c->client_secret ? "client_secret" : "federated";
}

const char *aad_credential_token_url(const aad_credential *c)
{
    return c->token_url;
}

const char *aad_credential_authority(const aad_credential *c)
{
    return c->authority;
}

/* The token file's contents without surrounding white space. new: aad_credential_secret_free. */
static int read_assertion(const char *path, char **out, char *err, size_t errlen)
{
    *out = NULL;
    FILE *f = fopen(path, "re");
    if (!f) {
        char msg[256];
        snprintf(msg, sizeof msg, "cannot read the federated token file: %s", strerror(errno));
        set_err(err, errlen, msg);
        return RST_EIO;
    }
    char *buf = xmalloc(ASSERTION_MAX + 1);
    size_t n = fread(buf, 1, ASSERTION_MAX + 1, f);
    int bad = ferror(f);
    fclose(f);
    int rc = RST_EIO;
    if (bad) {
        set_err(err, errlen, "cannot read the federated token file");
        goto out;
    }
    if (n > ASSERTION_MAX) {
        set_err(err, errlen, "the federated token file is larger than 64 KiB");
        goto out;
    }
    size_t start = 0;
    while (start < n && isspace((unsigned char)buf[start]))
        start++;
    while (n > start && isspace((unsigned char)buf[n - 1]))
        n--;
    if (n == start) {
        set_err(err, errlen, "the federated token file is empty");
        goto out;
    }
    for (size_t i = start; i < n; i++) {
        if (!isgraph((unsigned char)buf[i])) {
            set_err(err, errlen, "the federated token file does not hold a token");
            goto out;
        }
    }
    *out = xstrndup(buf + start, n - start);
    rc = RST_OK;
out:
    OPENSSL_cleanse(buf, ASSERTION_MAX + 1);
    free(buf);
    return rc;
}

int aad_credential_form(const aad_credential *c, const char *scope, char **form, char *err,
                        size_t errlen)
{
    *form = NULL;
    char *assertion = NULL;
    if (!c->client_secret) {
        int rc = read_assertion(c->federated_token_file, &assertion, err, errlen);
        if (rc)
            return rc;
    }
    const char *cred = c->client_secret ? c->client_secret : assertion;
    char *id = curl_easy_escape(NULL, c->client_id, 0);
    char *sc = curl_easy_escape(NULL, scope, 0);
    char *cv = curl_easy_escape(NULL, cred, 0);
    int rc = RST_ENOMEM;
    if (id && sc && cv) {
        if (c->client_secret)
            *form = xasprintf("grant_type=client_credentials&client_id=%s&client_secret=%s"
                              "&scope=%s",
                              id, cv, sc);
        else /* the type is URL-encoded: ':' is reserved in a form value */
            *form = xasprintf("grant_type=client_credentials&client_id=%s"
                              "&client_assertion_type=urn%%3Aietf%%3Aparams%%3Aoauth%%3A"
                              "client-assertion-type%%3Ajwt-bearer&client_assertion=%s&scope=%s",
                              id, cv, sc);
        rc = RST_OK;
    }
    if (cv)
        OPENSSL_cleanse(cv, strlen(cv));
    curl_free(cv);
    curl_free(id);
    curl_free(sc);
    aad_credential_secret_free(assertion);
    return rc;
}

int aad_credential_parse_token(const char *body, size_t len, char **token, long *expires_in)
{
    *token = NULL;
    *expires_in = 0;
    json_t *j = len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *tok = json_object_get(j, "access_token");
    json_t *exp = json_object_get(j, "expires_in");
    long e = 0;
    if (json_is_integer(exp))
        e = (long)json_integer_value(exp);
    else if (json_is_string(exp)) /* the v1 endpoint sends a string */
        parse_long(json_string_value(exp), 0, 86400 * 30L, &e);
    int rc = RST_EIO;
    if (json_is_string(tok) && *json_string_value(tok) && e > 0) {
        *token = xstrdup(json_string_value(tok));
        *expires_in = e;
        rc = RST_OK;
    }
    if (json_is_string(tok)) /* read-only by contract, but freed right below */
        OPENSSL_cleanse((char *)json_string_value(tok), json_string_length(tok));
    json_decref(j);
    return rc;
}

/* ---------------------------------------------------------------- one request */

static size_t collect(char *data, size_t size, size_t n, void *arg)
{
    return buf_append(arg, data, size * n) ? 0 : size * n;
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

static long jitter(long ms)
{
    unsigned v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
        v = (unsigned)now_ms_monotonic();
    return ms / 2 + (long)(v % (unsigned)(ms / 2 + 1));
}

static int retryable_curl(CURLcode cc)
{
    return cc == CURLE_COULDNT_RESOLVE_HOST || cc == CURLE_COULDNT_CONNECT ||
           cc == CURLE_OPERATION_TIMEDOUT || cc == CURLE_GOT_NOTHING || cc == CURLE_SEND_ERROR ||
           cc == CURLE_RECV_ERROR || cc == CURLE_SSL_CONNECT_ERROR;
}

/* "invalid_client: AADSTS7000215: ..." from the identity platform's error answer. */
static void refusal(const buf_t *b, long status, char *err, size_t errlen)
{
    json_t *j = b->len ? json_loadb(b->data, b->len, 0, NULL) : NULL;
    const char *e = json_string_value(json_object_get(j, "error"));
    const char *d = json_string_value(json_object_get(j, "error_description"));
    char msg[512];
    if (e)
        snprintf(msg, sizeof msg, "token request refused (HTTP %ld): %s%s%.300s", status, e,
                 d ? ": " : "", d ? d : "");
    else
        snprintf(msg, sizeof msg, "token request refused (HTTP %ld)", status);
    set_err(err, errlen, msg);
    json_decref(j);
}

int aad_credential_request(const aad_credential *c, const char *scope, long timeout_ms,
                           char **token, long *expires_in, char *err, size_t errlen)
{
    *token = NULL;
    *expires_in = 0;
    char *form = NULL;
    int rc = aad_credential_form(c, scope, &form, err, errlen);
    if (rc)
        return rc;
    CURL *h = curl_easy_init();
    if (!h) {
        aad_credential_secret_free(form);
        return RST_ENOMEM;
    }
    buf_t b;
    buf_init(&b, ANSWER_MAX);
    struct curl_slist *hl = NULL;
    hl = curl_slist_append(hl, "Content-Type: application/x-www-form-urlencoded");
    hl = curl_slist_append(hl, "Accept: application/json");
    hl = curl_slist_append(hl, "Expect:");
    char cerr[CURL_ERROR_SIZE];
    if (timeout_ms <= 0)
        timeout_ms = 30000;
    for (int attempt = 1;; attempt++) {
        b.len = 0;
        cerr[0] = '\0';
        curl_easy_reset(h);
        curl_easy_setopt(h, CURLOPT_URL, c->token_url);
        curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
        curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, timeout_ms < 10000 ? timeout_ms : 10000L);
        curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, timeout_ms);
        curl_easy_setopt(h, CURLOPT_ERRORBUFFER, cerr);
        curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
        curl_easy_setopt(h, CURLOPT_USERAGENT, "roastery/" ROASTERY_VERSION);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, form);
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)strlen(form));
        curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, collect);
        curl_easy_setopt(h, CURLOPT_WRITEDATA, &b);
        CURLcode cc = curl_easy_perform(h);
        long status = 0;
        if (cc == CURLE_OK)
            curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &status);
        if (cc == CURLE_OK && status == 200) {
            rc = aad_credential_parse_token(b.data, b.len, token, expires_in);
            if (rc)
                set_err(err, errlen, "the token endpoint answered without access_token/expires_in");
            break;
        }
        int again =
            cc != CURLE_OK ? retryable_curl(cc) : status == 408 || status == 429 || status >= 500;
        if (!again || attempt >= ATTEMPTS) {
            if (cc != CURLE_OK) {
                char msg[CURL_ERROR_SIZE + 64];
                snprintf(msg, sizeof msg, "cannot reach the token endpoint: %s",
                         cerr[0] ? cerr : curl_easy_strerror(cc));
                set_err(err, errlen, msg);
                rc = RST_EUNAVAIL;
            } else {
                refusal(&b, status, err, errlen);
                rc = again ? RST_EUNAVAIL : RST_EINVAL;
            }
            log_fields(LOG_WARN, "azure token request failed",
                       json_pack("{s:s, s:s, s:I, s:s, s:i}", "authority", c->authority,
                                 "credential", aad_credential_kind(c), "status", (json_int_t)status,
                                 "error", err ? err : "", "attempts", attempt));
            break;
        }
        long wait = jitter(BACKOFF_BASE_MS << (attempt - 1));
        curl_off_t ra = -1;
        if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
            wait = ra * 1000 > RETRY_AFTER_CAP_MS ? RETRY_AFTER_CAP_MS : (long)ra * 1000;
        sleep_ms(wait);
    }
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_cleanup(h);
    curl_slist_free_all(hl);
    if (b.data)
        OPENSSL_cleanse(b.data, b.len);
    buf_free(&b);
    aad_credential_secret_free(form);
    return rc;
}

/* ---------------------------------------------------------------- cache */

aad_credential_cache *aad_credential_cache_new(void)
{
    aad_credential_cache *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    return c;
}

void aad_credential_cache_free(aad_credential_cache *c)
{
    if (!c)
        return;
    aad_credential_secret_free(c->token);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

int aad_credential_cache_get(aad_credential_cache *c, const char *stale,
                             aad_credential_fetch_fn fetch, void *arg, char **out)
{
    int rc = RST_OK;
    *out = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->token && stale && !strcmp(stale, c->token)) {
        aad_credential_secret_free(c->token);
        c->token = NULL;
    }
    if (!c->token || now_ms_monotonic() >= c->expiry) {
        char *tok = NULL;
        long expires_in = 0;
        rc = fetch(arg, &tok, &expires_in);
        if (!rc) {
            aad_credential_secret_free(c->token);
            c->token = tok;
            int64_t life = (int64_t)expires_in * 1000;
            c->expiry = now_ms_monotonic() +
                        (life > 2 * AAD_TOKEN_EARLY_MS ? life - AAD_TOKEN_EARLY_MS : life / 2);
        }
    }
    if (!rc)
        *out = xstrdup(c->token);
    pthread_mutex_unlock(&c->lock);
    return rc;
}

/* ---------------------------------------------------------------- the process credential */

static pthread_mutex_t default_lock = PTHREAD_MUTEX_INITIALIZER;
static aad_credential *default_cred;

void aad_credential_default_set(aad_credential *c)
{
    pthread_mutex_lock(&default_lock);
    aad_credential *old = default_cred;
    default_cred = c;
    pthread_mutex_unlock(&default_lock);
    aad_credential_free(old);
}

aad_credential *aad_credential_default_copy(void)
{
    pthread_mutex_lock(&default_lock);
    aad_credential *c = aad_credential_copy(default_cred);
    pthread_mutex_unlock(&default_lock);
    return c;
}

void aad_credential_default_configure(const config *cfg)
{
    aad_credential_default_set(NULL);
    int secret = cfg->azure_client_secret && *cfg->azure_client_secret;
    int file = cfg->azure_federated_token_file && *cfg->azure_federated_token_file;
    if (!cfg->azure_tenant_id || !cfg->azure_client_id || (!secret && !file))
        return;
    aad_credential_options o = {.authority = cfg->aad_authority,
                                .tenant_id = cfg->azure_tenant_id,
                                .client_id = cfg->azure_client_id,
                                .client_secret = cfg->azure_client_secret,
                                .federated_token_file = cfg->azure_federated_token_file};
    aad_credential *c = NULL;
    char err[256] = "";
    if (aad_credential_new(&o, &c, err, sizeof err)) {
        log_fields(LOG_WARN, "azure credential not configured", json_pack("{s:s}", "reason", err));
        return;
    }
    log_fields(LOG_INFO, "azure credential",
               json_pack("{s:s, s:s, s:s}", "kind", aad_credential_kind(c), "authority",
                         c->authority, "client_id", c->client_id));
    aad_credential_default_set(c);
}
