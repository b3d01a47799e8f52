/* Azure Blob Storage over its REST API, authorized with Shared Key (every request signed with
 * HMAC-SHA256 over the canonical string-to-sign of x-ms-version 2021-08-06) or, for an account
 * given without a key, with an Entra ID bearer token for https://storage.azure.com (the process
 * credential of server/azure/aad_credential.c: workload identity or a client secret; bearer tokens
 * need x-ms-version 2017-11-09 or later). Retried on throttling, 5xx and connection errors.
 * size: the client still carries its own transport and retry rule, base64 and XML; those are to
 * go to azure/http.c (shared with arm.c and aad_credential.c), OpenSSL and libexpat (§5.5). */
#include "azure/azblob.h"
#include "azure/aad_credential.h"

#include <curl/curl.h>
#include <errno.h>
#include <jansson.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "core/log.h"
#include "core/metrics.h"

#define API_VERSION "2021-08-06"
#define MAX_ATTEMPTS 5
#define BACKOFF_BASE_MS 200
#define BACKOFF_CAP_MS 10000
#define RETRY_AFTER_CAP_MS 30000
#define CONNECT_TIMEOUT_MS 10000L
#define REQUEST_TIMEOUT_MS 120000L
#define POOL_MAX 16
#define ERROR_BODY_MAX 16384
#define LIST_BODY_MAX ((size_t)32 * 1024 * 1024)
#define HEADER_VALUE_MAX 128

/* Azurite's published development account (not a secret). */
#define DEV_ACCOUNT "devstoreaccount1"
#define DEV_KEY                                                                                    \
    "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw=="
#define DEV_ENDPOINT "http://127.0.0.1:10000/" DEV_ACCOUNT

struct azblob {
    char *account;
    unsigned char *key; /* NULL: bearer tokens from cred */
    size_t keylen;
    aad_credential *cred;
    aad_credential_cache *tokens;
    char *endpoint;            /* scheme://host[:port][/path], no trailing '/' */
    const char *endpoint_path; /* points into endpoint: "" or "/path" */
    char *container;
    unsigned page_size;
    pthread_mutex_t lock; /* guards idle */
    CURL *idle[POOL_MAX];
    size_t nidle;
};

typedef struct {
    const char *name;
    const char *value;
} kv;

/* One REST call. The resource path is encoded; query values are not. */
typedef struct {
    const char *op; /* for logs: "put_blob", ... */
    const char *method;
    char *path;       /* "/container" or "/container/blob" (encoded), owned by the caller */
    const char *blob; /* for logs, may be NULL */
    kv query[6];
    size_t nquery;
    kv xms[4]; /* extra x-ms-* headers, lower-case names */
    size_t nxms;
    const char *content_type;
    const char *content_md5;
    const char *if_match;
    const void *body;
    size_t body_len;
    int has_body;
    /* Response body of a 2xx: into dst (exactly dst_cap bytes at most), else into out, else
     * dropped. */
    void *dst;
    size_t dst_cap;
    buf_t *out;
    int quiet_rc; /* an expected outcome (an absent blob, an existing container): no log */
} az_req;

typedef struct {
    long status;
    char request_id[HEADER_VALUE_MAX];
    char error_code[HEADER_VALUE_MAX];
    char etag[HEADER_VALUE_MAX];
    uint64_t content_length;
    int has_length;
    size_t dst_len;
    int overflow;
    buf_t errbody;
    CURLcode curl_rc;
    char curl_err[CURL_ERROR_SIZE];
    int attempts;
    int auth_rc;        /* the token could not be had: its status ... */
    char auth_err[256]; /* ... and reason */
} az_resp;

/* ---------------------------------------------------------------- helpers */

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

/* new: caller frees with free(). */
static char *b64_encode(const unsigned char *in, size_t n)
{
    char *out = xmalloc(4 * ((n + 2) / 3) + 1);
    EVP_EncodeBlock((unsigned char *)out, in, (int)n);
    return out;
}

/* Decodes strict base64 into a new buffer (caller frees with free()). RST_EINVAL if malformed. */
static int b64_decode(const char *in, unsigned char **out, size_t *outlen)
{
    size_t n = strlen(in);
    if (n == 0 || n % 4 || n > 4096)
        return RST_EINVAL;
    unsigned char *buf = xmalloc(n / 4 * 3 + 1);
    int got = EVP_DecodeBlock(buf, (const unsigned char *)in, (int)n);
    if (got < 0) {
        free(buf);
        return RST_EINVAL;
    }
    size_t len = (size_t)got;
    if (in[n - 1] == '=')
        len--;
    if (in[n - 2] == '=')
        len--;
    *out = buf;
    *outlen = len;
    return RST_OK;
}

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

/* Percent-encodes s onto b; keep_slash leaves '/' as is (paths). */
static void url_encode(buf_t *b, const char *s, int keep_slash)
{
    static const char hex[] = "0123456789ABCDEF";
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (unreserved(*p) || (keep_slash && *p == '/')) {
            buf_append(b, p, 1);
        } else {
            char e[3] = {'%', hex[*p >> 4], hex[*p & 15]};
            buf_append(b, e, 3);
        }
    }
}

/* "/container/blob" encoded. new: caller frees with free(). */
static char *blob_path(const azblob *c, const char *name)
{
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "/");
    buf_puts(&b, c->container);
    if (name) {
        buf_puts(&b, "/");
        url_encode(&b, name, 1);
    }
    return b.data;
}

static void http_date(char *out, size_t n)
{
    static const char *const wd[] = {"Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"};
    static const char *const mo[] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    snprintf(out, n, "%s, %02d %s %04d %02d:%02d:%02d GMT", wd[tm.tm_wday % 7], tm.tm_mday,
             mo[tm.tm_mon % 12], tm.tm_year + 1900, tm.tm_hour, tm.tm_min, tm.tm_sec);
}

static void sleep_ms(long ms)
{
    struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) && errno == EINTR) {
    }
}

static unsigned rand_below(unsigned n)
{
    unsigned v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
        v = (unsigned)now_ms_monotonic();
    return n ? v % n : 0;
}

static int kv_cmp(const void *a, const void *b)
{
    return strcmp(((const kv *)a)->name, ((const kv *)b)->name);
}

/* Copies the value of "Name: value\r\n" into out when name matches (case-insensitive). */
static int header_value(const char *line, size_t n, const char *name, char *out, size_t outlen)
{
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(line, name, nl) || line[nl] != ':')
        return 0;
    const char *v = line + nl + 1;
    const char *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t len = (size_t)(end - v);
    if (len >= outlen)
        len = outlen - 1;
    memcpy(out, v, len);
    out[len] = '\0';
    return 1;
}

/* Decodes XML character references in [s, s+n) onto b. */
static void xml_unescape(buf_t *b, const char *s, size_t n)
{
    static const struct {
        const char *ent;
        char c;
    } ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&apos;", '\''}};
    size_t i = 0;
    while (i < n) {
        if (s[i] != '&') {
            buf_append(b, s + i, 1);
            i++;
            continue;
        }
        size_t k;
        for (k = 0; k < sizeof ents / sizeof ents[0]; k++) {
            size_t el = strlen(ents[k].ent);
            if (n - i >= el && !memcmp(s + i, ents[k].ent, el)) {
                buf_append(b, &ents[k].c, 1);
                i += el;
                break;
            }
        }
        if (k < sizeof ents / sizeof ents[0])
            continue;
        if (n - i > 3 && s[i + 1] == '#') {
            const char *semi = memchr(s + i, ';', n - i);
            if (semi && semi - (s + i) < 12) {
                char num[16];
                size_t nl = (size_t)(semi - (s + i)) - 2;
                memcpy(num, s + i + 2, nl);
                num[nl] = '\0';
                char *end = NULL;
                unsigned long v =
                    num[0] == 'x' ? strtoul(num + 1, &end, 16) : strtoul(num, &end, 10);
                if (end && !*end && v > 0 && v < 0x80) {
                    char ch = (char)v;
                    buf_append(b, &ch, 1);
                    i = (size_t)(semi - s) + 1;
                    continue;
                }
            }
        }
        buf_append(b, s + i, 1);
        i++;
    }
}

/* Finds <tag ...>text</tag> in [p, end); sets the text span and returns a pointer past the
 * closing tag, or NULL. attrs (may be NULL) gets the attribute span of the opening tag. */
static const char *xml_element(const char *p, const char *end, const char *tag, const char **text,
                               size_t *len, const char **attrs, size_t *attrs_len)
{
    size_t tl = strlen(tag);
    while (p < end) {
        const char *lt = memchr(p, '<', (size_t)(end - p));
        if (!lt || (size_t)(end - lt) < tl + 2)
            return NULL;
        if (!memcmp(lt + 1, tag, tl) &&
            (lt[1 + tl] == '>' || lt[1 + tl] == ' ' || lt[1 + tl] == '/')) {
            const char *gt = memchr(lt, '>', (size_t)(end - lt));
            if (!gt)
                return NULL;
            if (attrs) {
                *attrs = lt + 1 + tl;
                *attrs_len = (size_t)(gt - *attrs);
            }
            if (gt[-1] == '/') { /* <Tag/> */
                *text = gt;
                *len = 0;
                return gt + 1;
            }
            const char *start = gt + 1;
            const char *q = start;
            while (q < end) {
                const char *close = memchr(q, '<', (size_t)(end - q));
                if (!close)
                    return NULL;
                if ((size_t)(end - close) >= tl + 3 && close[1] == '/' &&
                    !memcmp(close + 2, tag, tl) && close[2 + tl] == '>') {
                    *text = start;
                    *len = (size_t)(close - start);
                    return close + 3 + tl;
                }
                q = close + 1;
            }
            return NULL;
        }
        p = lt + 1;
    }
    return NULL;
}

/* -------------------------------------------------------- connection string */

static int parse_endpoint(azblob *c, const char *url, char *err, size_t errlen)
{
    if (strncmp(url, "https://", 8) && strncmp(url, "http://", 7)) {
        set_err(err, errlen, "BlobEndpoint must be an http:// or https:// URL");
        return RST_EINVAL;
    }
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    c->endpoint = xstrndup(url, n);
    const char *host = strstr(c->endpoint, "://") + 3;
    if (!*host || *host == '/' || strpbrk(c->endpoint, "?# ")) {
        set_err(err, errlen, "BlobEndpoint has no host");
        return RST_EINVAL;
    }
    const char *slash = strchr(host, '/');
    c->endpoint_path = slash ? slash : c->endpoint + n;
    return RST_OK;
}

/* "acct" of https://acct.blob.core.windows.net[/...], or the first path segment of a path-style
 * endpoint (Azurite's http://127.0.0.1:10000/devstoreaccount1). new: free(), NULL if none. */
static char *account_of_endpoint(const char *url)
{
    const char *host = strstr(url, "://");
    if (!host)
        return NULL;
    host += 3;
    const char *slash = strchr(host, '/');
    if (slash && slash[1]) {
        size_t n = strcspn(slash + 1, "/?#");
        return n ? xstrndup(slash + 1, n) : NULL;
    }
    size_t n = strcspn(host, ".:/");
    return n ? xstrndup(host, n) : NULL;
}

static int loopback_endpoint(const char *url)
{
    return !strncmp(url, "http://127.0.0.1", 16) || !strncmp(url, "http://localhost", 16) ||
           !strncmp(url, "http://[::1]", 12);
}

static int container_name_ok(const char *s)
{
    size_t n = strlen(s);
    if (n < 3 || n > 63 || s[0] == '-' || s[n - 1] == '-')
        return 0;
    for (size_t i = 0; i < n; i++) {
        char ch = s[i];
        if (!((ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') || ch == '-'))
            return 0;
        if (ch == '-' && s[i + 1] == '-')
            return 0;
    }
    return 1;
}

int azblob_open(const char *container, const char *conn, azblob **out, char *err, size_t errlen)
{
    *out = NULL;
    int rc = RST_EINVAL;
    char *copy = NULL, *proto = NULL, *account = NULL, *key = NULL, *endpoint = NULL,
         *suffix = NULL;
    int dev = 0;
    azblob *c = xcalloc(1, sizeof *c);
    pthread_mutex_init(&c->lock, NULL);
    c->page_size = 1000;
    if (!container_name_ok(container)) {
        set_err(err, errlen,
                "container name must be 3-63 characters of a-z, 0-9 and single '-' inside");
        goto out;
    }
    c->container = xstrdup(container);
    if (!conn || !*conn) {
        set_err(err, errlen, "azblob:// needs the Azure Storage connection string");
        goto out;
    }
    copy = xstrdup(conn);
    for (char *part = copy, *next = NULL; part; part = next) {
        char *semi = strchr(part, ';');
        next = semi ? semi + 1 : NULL;
        if (semi)
            *semi = '\0';
        while (*part == ' ')
            part++;
        char *eq = strchr(part, '=');
        if (!*part)
            continue;
        if (!eq) {
            set_err(err, errlen, "connection string: expected Name=Value parts");
            goto out;
        }
        *eq = '\0';
        const char *v = eq + 1;
        char **slot = NULL;
        if (!strcasecmp(part, "DefaultEndpointsProtocol"))
            slot = &proto;
        else if (!strcasecmp(part, "AccountName"))
            slot = &account;
        else if (!strcasecmp(part, "AccountKey"))
            slot = &key;
        else if (!strcasecmp(part, "BlobEndpoint"))
            slot = &endpoint;
        else if (!strcasecmp(part, "EndpointSuffix"))
            slot = &suffix;
        else if (!strcasecmp(part, "UseDevelopmentStorage"))
            dev = !strcasecmp(v, "true");
        if (slot) {
            free(*slot);
            *slot = xstrdup(v);
        }
    }
    if (dev) {
        if (!account)
            account = xstrdup(DEV_ACCOUNT);
        if (!key)
            key = xstrdup(DEV_KEY);
        if (!endpoint)
            endpoint = xstrdup(DEV_ENDPOINT);
    }
    if (!key && endpoint && (!account || !*account)) {
        free(account);
        account = account_of_endpoint(endpoint); /* logs and messages only */
    }
    if (!account || !*account || strpbrk(account, "/?# ")) {
        set_err(err, errlen, "connection string: AccountName missing or invalid");
        goto out;
    }
    if (key && (b64_decode(key, &c->key, &c->keylen) || c->keylen == 0)) {
        set_err(err, errlen, "connection string: AccountKey is not base64");
        goto out;
    }
    c->account = xstrdup(account);
    if (endpoint) {
        rc = parse_endpoint(c, endpoint, err, errlen);
    } else {
        const char *p = proto ? proto : "https";
        if (strcmp(p, "https") && strcmp(p, "http")) {
            set_err(err, errlen,
                    "connection string: DefaultEndpointsProtocol must be https or http");
            goto out;
        }
        char *url = xasprintf("%s://%s.blob.%s", p, account, suffix ? suffix : "core.windows.net");
        rc = parse_endpoint(c, url, err, errlen);
        free(url);
    }
    if (rc)
        goto out;
    if (!c->key) { /* no key: Entra ID bearer tokens, never over plain HTTP to another host */
        rc = RST_EINVAL;
        if (strncmp(c->endpoint, "https://", 8) && !loopback_endpoint(c->endpoint)) {
            set_err(err, errlen,
                    "a storage account without AccountKey is reached with Entra ID tokens: "
                    "BlobEndpoint must be https://");
            goto out;
        }
        c->cred = aad_credential_default_copy();
        if (!c->cred) {
            set_err(err, errlen,
                    "connection string has no AccountKey, and there is no Azure credential for "
                    "Entra ID tokens: set ROASTERY_AZURE_TENANT_ID, ROASTERY_AZURE_CLIENT_ID and "
                    "ROASTERY_AZURE_FEDERATED_TOKEN_FILE (workload identity) or "
                    "ROASTERY_AZURE_CLIENT_SECRET");
            goto out;
        }
        c->tokens = aad_credential_cache_new();
    }
    *out = c;
    c = NULL;
    rc = RST_OK;
out:
    if (key)
        OPENSSL_cleanse(key, strlen(key));
    if (copy)
        OPENSSL_cleanse(copy, strlen(conn));
    free(copy);
    free(proto);
    free(account);
    free(key);
    free(endpoint);
    free(suffix);
    azblob_close(c);
    return rc;
}

void azblob_close(azblob *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nidle; i++)
        curl_easy_cleanup(c->idle[i]);
    if (c->key)
        OPENSSL_cleanse(c->key, c->keylen);
    free(c->key);
    aad_credential_free(c->cred);
    aad_credential_cache_free(c->tokens);
    free(c->account);
    free(c->endpoint);
    free(c->container);
    pthread_mutex_destroy(&c->lock);
    free(c);
}

void azblob_set_list_page_size(azblob *c, unsigned n)
{
    c->page_size = n < 1 ? 1 : n > 5000 ? 5000 : n;
}

/* ---------------------------------------------------------- curl handles */

/* An easy handle from the pool, or a new one. NULL only if curl cannot allocate. */
static CURL *handle_get(azblob *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->lock);
    if (c->nidle)
        h = c->idle[--c->nidle];
    pthread_mutex_unlock(&c->lock);
    if (!h)
        h = curl_easy_init();
    else
        curl_easy_reset(h); /* keeps its live connection */
    return h;
}

static void handle_put(azblob *c, CURL *h)
{
    pthread_mutex_lock(&c->lock);
    if (c->nidle < POOL_MAX) {
        c->idle[c->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->lock);
    if (h)
        curl_easy_cleanup(h);
}

/* --------------------------------------------------------------- signing */

/* Builds the Shared Key Authorization header value. new: caller frees with free(). */
static char *sign(const azblob *c, const az_req *q, const char *date, const kv *query,
                  size_t nquery)
{
    kv hdrs[8];
    size_t nh = 0;
    hdrs[nh++] = (kv){"x-ms-date", date};
    hdrs[nh++] = (kv){"x-ms-version", API_VERSION};
    for (size_t i = 0; i < q->nxms; i++)
        hdrs[nh++] = q->xms[i];
    qsort(hdrs, nh, sizeof hdrs[0], kv_cmp);

    char length[32] = "";
    if (q->has_body && q->body_len > 0)
        snprintf(length, sizeof length, "%zu", q->body_len);
    buf_t s;
    buf_init(&s, 0);
    /* VERB, Content-Encoding, Content-Language, Content-Length, Content-MD5, Content-Type, Date,
     * If-Modified-Since, If-Match, If-None-Match, If-Unmodified-Since, Range. */
    buf_printf(&s, "%s\n\n\n%s\n%s\n%s\n\n\n%s\n\n\n\n", q->method, length,
               q->content_md5 ? q->content_md5 : "", q->content_type ? q->content_type : "",
               q->if_match ? q->if_match : "");
    for (size_t i = 0; i < nh; i++)
        buf_printf(&s, "%s:%s\n", hdrs[i].name, hdrs[i].value);
    buf_printf(&s, "/%s%s%s", c->account, c->endpoint_path, q->path);
    for (size_t i = 0; i < nquery; i++)
        buf_printf(&s, "\n%s:%s", query[i].name, query[i].value);

    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int maclen = 0;
    HMAC(EVP_sha256(), c->key, (int)c->keylen, (const unsigned char *)s.data, s.len, mac, &maclen);
    buf_free(&s);
    char *sig = b64_encode(mac, maclen);
    char *auth = xasprintf("Authorization: SharedKey %s:%s", c->account, sig);
    free(sig);
    return auth;
}

/* -------------------------------------------------------------- transfer */

typedef struct {
    const az_req *q;
    az_resp *r;
    size_t upload_pos;
} xfer;

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    xfer *x = arg;
    size_t len = size * n;
    if (len > 5 && !strncmp(data, "HTTP/", 5)) { /* a new response (after 100 Continue, say) */
        const char *sp = memchr(data, ' ', len);
        x->r->status = sp ? strtol(sp + 1, NULL, 10) : 0;
        x->r->request_id[0] = x->r->error_code[0] = x->r->etag[0] = '\0';
        x->r->has_length = 0;
        return len;
    }
    char tmp[HEADER_VALUE_MAX];
    header_value(data, len, "x-ms-request-id", x->r->request_id, sizeof x->r->request_id);
    header_value(data, len, "x-ms-error-code", x->r->error_code, sizeof x->r->error_code);
    header_value(data, len, "ETag", x->r->etag, sizeof x->r->etag);
    if (header_value(data, len, "Content-Length", tmp, sizeof tmp)) {
        char *end = NULL;
        errno = 0;
        unsigned long long v = strtoull(tmp, &end, 10);
        if (!errno && end && !*end && end != tmp) {
            x->r->content_length = v;
            x->r->has_length = 1;
        }
    }
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    xfer *x = arg;
    size_t len = size * n;
    if (x->r->status < 200 || x->r->status >= 300) {
        buf_append(&x->r->errbody, data, len); /* truncated past its limit: fine for a log */
        return len;
    }
    if (x->q->dst) {
        if (len > x->q->dst_cap - x->r->dst_len) {
            x->r->overflow = 1;
            return 0;
        }
        memcpy((char *)x->q->dst + x->r->dst_len, data, len);
        x->r->dst_len += len;
        return len;
    }
    if (x->q->out && buf_append(x->q->out, data, len)) {
        x->r->overflow = 1;
        return 0;
    }
    return len;
}

static size_t on_upload(char *dst, size_t size, size_t n, void *arg)
{
    xfer *x = arg;
    size_t left = x->q->body_len - x->upload_pos;
    size_t k = size * n < left ? size * n : left;
    if (k)
        memcpy(dst, (const char *)x->q->body + x->upload_pos, k);
    x->upload_pos += k;
    return k;
}

/* curl rewinds the body when it resends on a connection that turned out dead. */
static int on_seek(void *arg, curl_off_t offset, int origin)
{
    xfer *x = arg;
    if (origin != SEEK_SET || offset < 0 || (uint64_t)offset > x->q->body_len)
        return CURL_SEEKFUNC_FAIL;
    x->upload_pos = (size_t)offset;
    return CURL_SEEKFUNC_OK;
}

static int retryable_curl(CURLcode rc)
{
    switch (rc) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_GOT_NOTHING:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return 1;
    default:
        return 0;
    }
}

static int retryable_status(long status)
{
    return status == 408 || status == 429 || status == 500 || status == 502 || status == 503 ||
           status == 504;
}

/* One attempt. Returns the curl code; the response lands in r. */
static CURLcode attempt(azblob *c, CURL *h, const az_req *q, az_resp *r, const char *token,
                        long *retry_after_ms)
{
    char date[80];
    http_date(date, sizeof date);
    kv query[6];
    memcpy(query, q->query, q->nquery * sizeof query[0]);
    qsort(query, q->nquery, sizeof query[0], kv_cmp);

    buf_t url;
    buf_init(&url, 0);
    buf_puts(&url, c->endpoint);
    buf_puts(&url, q->path);
    for (size_t i = 0; i < q->nquery; i++) {
        buf_puts(&url, i ? "&" : "?");
        buf_puts(&url, query[i].name);
        buf_puts(&url, "=");
        url_encode(&url, query[i].value, 0);
    }

    struct curl_slist *hl = NULL;
    char *line = xasprintf("x-ms-date: %s", date);
    hl = curl_slist_append(hl, line);
    free(line);
    hl = curl_slist_append(hl, "x-ms-version: " API_VERSION);
    for (size_t i = 0; i < q->nxms; i++) {
        line = xasprintf("%s: %s", q->xms[i].name, q->xms[i].value);
        hl = curl_slist_append(hl, line);
        free(line);
    }
    if (q->content_type) {
        line = xasprintf("Content-Type: %s", q->content_type);
        hl = curl_slist_append(hl, line);
        free(line);
    } else {
        hl = curl_slist_append(hl, "Content-Type:");
    }
    if (q->content_md5) {
        line = xasprintf("Content-MD5: %s", q->content_md5);
        hl = curl_slist_append(hl, line);
        free(line);
    }
    if (q->if_match) {
        line = xasprintf("If-Match: %s", q->if_match);
        hl = curl_slist_append(hl, line);
        free(line);
    }
    hl = curl_slist_append(hl, "Expect:");
    char *auth =
        token ? xasprintf("Authorization: Bearer %s", token) : sign(c, q, date, query, q->nquery);
    hl = curl_slist_append(hl, auth);
    OPENSSL_cleanse(auth, strlen(auth));
    free(auth);

    xfer x = {.q = q, .r = r, .upload_pos = 0};
    r->curl_err[0] = '\0';
    curl_easy_setopt(h, CURLOPT_URL, url.data);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, CONNECT_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, REQUEST_TIMEOUT_MS);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, r->curl_err);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &x);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &x);
    if (!strcmp(q->method, "PUT")) {
        curl_easy_setopt(h, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(h, CURLOPT_INFILESIZE_LARGE, (curl_off_t)(q->has_body ? q->body_len : 0));
        curl_easy_setopt(h, CURLOPT_READFUNCTION, on_upload);
        curl_easy_setopt(h, CURLOPT_READDATA, &x);
        curl_easy_setopt(h, CURLOPT_SEEKFUNCTION, on_seek);
        curl_easy_setopt(h, CURLOPT_SEEKDATA, &x);
    } else if (!strcmp(q->method, "HEAD")) {
        curl_easy_setopt(h, CURLOPT_NOBODY, 1L);
    } else if (!strcmp(q->method, "DELETE")) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    } else {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    }
    CURLcode rc = curl_easy_perform(h);
    curl_off_t ra = -1;
    if (curl_easy_getinfo(h, CURLINFO_RETRY_AFTER, &ra) == CURLE_OK && ra > 0)
        *retry_after_ms = ra > RETRY_AFTER_CAP_MS / 1000 ? RETRY_AFTER_CAP_MS : (long)ra * 1000;
    if (rc == CURLE_OK) {
        long code = 0;
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code);
        r->status = code;
    }
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_slist_free_all(hl);
    buf_free(&url);
    return rc;
}

/* The Azure error code: the x-ms-error-code header, else <Code> of the XML body. */
static void error_code_from_body(az_resp *r)
{
    if (r->error_code[0] || !r->errbody.len)
        return;
    const char *text = NULL;
    size_t len = 0;
    if (xml_element(r->errbody.data, r->errbody.data + r->errbody.len, "Code", &text, &len, NULL,
                    NULL)) {
        if (len >= sizeof r->error_code)
            len = sizeof r->error_code - 1;
        memcpy(r->error_code, text, len);
        r->error_code[len] = '\0';
    }
}

static int status_rc(const az_resp *r)
{
    if (r->curl_rc != CURLE_OK)
        return r->overflow ? RST_ETOOBIG : RST_EUNAVAIL;
    if (r->status >= 200 && r->status < 300)
        return RST_OK;
    switch (r->status) {
    case 404:
        return strcmp(r->error_code, "ContainerNotFound") ? RST_ENOTFOUND : RST_EIO;
    case 409:
    case 412:
        return RST_ECONFLICT;
    case 413:
        return RST_ETOOBIG;
    case 416:
        return RST_EINVAL;
    default:
        return retryable_status(r->status) ? RST_EUNAVAIL : RST_EIO;
    }
}

typedef struct {
    azblob *c;
    az_resp *r;
} blob_fetch_arg;

/* A storage token from the identity platform; called by the token cache under its lock. */
static int blob_token_fetch(void *arg, char **token, long *expires_in)
{
    blob_fetch_arg *fa = arg;
    return aad_credential_request(fa->c->cred, AAD_STORAGE_SCOPE, REQUEST_TIMEOUT_MS / 4, token,
                                  expires_in, fa->r->auth_err, sizeof fa->r->auth_err);
}

/* Runs q with retries. Returns RST_OK for a 2xx, else the mapped status, logging the failure
 * with Azure's request id and error code. */
static int request(azblob *c, const az_req *q, az_resp *r)
{
    memset(r, 0, sizeof *r);
    buf_init(&r->errbody, ERROR_BODY_MAX);
    CURL *h = handle_get(c);
    if (!h)
        return RST_ENOMEM;
    char *token = NULL;
    int reauth = 0;
    for (int n = 1;; n++) {
        long retry_after = 0;
        r->status = 0;
        r->dst_len = 0;
        r->overflow = 0;
        r->errbody.len = 0;
        if (q->out)
            q->out->len = 0;
        r->attempts = n;
        if (c->cred && !token) {
            blob_fetch_arg fa = {.c = c, .r = r};
            r->auth_rc = aad_credential_cache_get(c->tokens, NULL, blob_token_fetch, &fa, &token);
            if (r->auth_rc)
                break; /* aad_credential_request retried already */
        }
        r->curl_rc = attempt(c, h, q, r, token, &retry_after);
        if (token && r->curl_rc == CURLE_OK && r->status == 401 && !reauth) {
            /* Expired or revoked early: one fresh token, at once. */
            reauth = 1;
            char *fresh = NULL;
            blob_fetch_arg fa = {.c = c, .r = r};
            r->auth_rc = aad_credential_cache_get(c->tokens, token, blob_token_fetch, &fa, &fresh);
            aad_credential_secret_free(token);
            token = fresh;
            if (r->auth_rc)
                break;
            n--;
            continue;
        }
        int again =
            r->curl_rc != CURLE_OK ? retryable_curl(r->curl_rc) : retryable_status(r->status);
        if (!again || n >= MAX_ATTEMPTS)
            break;
        long wait = BACKOFF_BASE_MS << (n - 1);
        if (wait > BACKOFF_CAP_MS)
            wait = BACKOFF_CAP_MS;
        wait = wait / 2 + (long)rand_below((unsigned)(wait / 2) + 1); /* jitter */
        if (retry_after > wait)
            wait = retry_after;
        metrics_count("roastery_artifact_retries_total",
                      "Azure Blob requests retried after throttling or a transient error.");
        error_code_from_body(r);
        log_fields(LOG_INFO, "azure blob request retried",
                   json_pack("{s:s, s:s, s:s?, s:i, s:s, s:s, s:s, s:i, s:I}", "op", q->op,
                             "container", c->container, "blob", q->blob, "status", (int)r->status,
                             "request_id", r->request_id, "error_code", r->error_code, "curl_error",
                             r->curl_rc ? curl_easy_strerror(r->curl_rc) : "", "attempt", n,
                             "wait_ms", (json_int_t)wait));
        sleep_ms(wait);
    }
    handle_put(c, h);
    aad_credential_secret_free(token);
    if (r->auth_rc) {
        metrics_count("roastery_artifact_errors_total", "Azure Blob requests that failed.");
        log_fields(LOG_WARN, "azure blob request not sent",
                   json_pack("{s:s, s:s, s:s?, s:s}", "op", q->op, "container", c->container,
                             "blob", q->blob, "reason", r->auth_err));
        return r->auth_rc;
    }
    error_code_from_body(r);
    int rc = status_rc(r);
    if (rc && rc != q->quiet_rc) {
        metrics_count("roastery_artifact_errors_total", "Azure Blob requests that failed.");
        log_fields(rc == RST_ENOTFOUND ? LOG_INFO : LOG_WARN, "azure blob request failed",
                   json_pack("{s:s, s:s, s:s?, s:i, s:s, s:s, s:s, s:i}", "op", q->op, "container",
                             c->container, "blob", q->blob, "status", (int)r->status, "request_id",
                             r->request_id, "error_code", r->error_code, "curl_error",
                             r->curl_rc
                                 ? (r->curl_err[0] ? r->curl_err : curl_easy_strerror(r->curl_rc))
                                 : "",
                             "attempts", r->attempts));
    }
    return rc;
}

static void resp_free(az_resp *r)
{
    buf_free(&r->errbody);
}

static char *content_md5(const void *data, size_t len)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(data, len, md, &n, EVP_md5(), NULL))
        return NULL; /* e.g. a FIPS provider: the header is optional */
    return b64_encode(md, n);
}

/* ------------------------------------------------------------- the calls */

int azblob_create_container(azblob *c, char *err, size_t errlen)
{
    az_req q = {.op = "create_container",
                .method = "PUT",
                .path = blob_path(c, NULL),
                .query = {{"restype", "container"}},
                .nquery = 1,
                .has_body = 1,
                .quiet_rc = RST_ECONFLICT};
    az_resp r;
    int rc = request(c, &q, &r);
    if (rc == RST_ECONFLICT && !strcmp(r.error_code, "ContainerAlreadyExists"))
        rc = RST_OK;
    else if (rc == RST_ECONFLICT) /* e.g. ContainerBeingDeleted */
        log_fields(LOG_WARN, "azure blob container unusable",
                   json_pack("{s:s, s:s, s:s}", "container", c->container, "request_id",
                             r.request_id, "error_code", r.error_code));
    if (rc) {
        char msg[256];
        if (r.auth_rc)
            snprintf(msg, sizeof msg, "cannot get an Entra ID token for storage: %.180s",
                     r.auth_err);
        else if (r.curl_rc)
            snprintf(msg, sizeof msg, "cannot reach the blob endpoint: %s",
                     curl_easy_strerror(r.curl_rc));
        else if ((r.status == 403 || r.status == 401) && c->cred)
            snprintf(msg, sizeof msg,
                     "authorization failed (HTTP %ld %s): check that the identity has the "
                     "Storage Blob Data Contributor role on the account",
                     r.status, r.error_code);
        else if (r.status == 403 || r.status == 401)
            snprintf(msg, sizeof msg, "authorization failed (HTTP %ld %s): check the account key",
                     r.status, r.error_code);
        else
            snprintf(msg, sizeof msg, "cannot create the container (HTTP %ld %s)", r.status,
                     r.error_code);
        set_err(err, errlen, msg);
    }
    resp_free(&r);
    free(q.path);
    return rc;
}

int azblob_put_blob(azblob *c, const char *name, const void *data, size_t len,
                    const char *sha256_hex)
{
    if (len > AZBLOB_BLOCK_SIZE)
        return RST_ETOOBIG;
    char *md5 = content_md5(data, len);
    az_req q = {.op = "put_blob",
                .method = "PUT",
                .path = blob_path(c, name),
                .blob = name,
                .xms = {{"x-ms-blob-type", "BlockBlob"}},
                .nxms = 1,
                .content_type = "application/octet-stream",
                .content_md5 = md5,
                .body = data,
                .body_len = len,
                .has_body = 1};
    if (sha256_hex)
        q.xms[q.nxms++] = (kv){"x-ms-meta-sha256", sha256_hex};
    az_resp r;
    int rc = request(c, &q, &r);
    resp_free(&r);
    free(q.path);
    free(md5);
    return rc;
}

void azblob_block_id(char out[AZBLOB_BLOCK_ID_LEN], const char *writer_id, uint32_t index)
{
    char raw[32];
    snprintf(raw, sizeof raw, "%.16s%08x", writer_id, (unsigned)index);
    /* 24 bytes -> 32 base64 characters, no padding: every id of a blob has the same length. */
    EVP_EncodeBlock((unsigned char *)out, (const unsigned char *)raw, 24);
}

int azblob_put_block(azblob *c, const char *name, const char *block_id, const void *data,
                     size_t len)
{
    if (len > AZBLOB_BLOCK_SIZE)
        return RST_ETOOBIG;
    char *md5 = content_md5(data, len);
    az_req q = {.op = "put_block",
                .method = "PUT",
                .path = blob_path(c, name),
                .blob = name,
                .query = {{"comp", "block"}, {"blockid", block_id}},
                .nquery = 2,
                .content_md5 = md5,
                .body = data,
                .body_len = len,
                .has_body = 1};
    az_resp r;
    int rc = request(c, &q, &r);
    resp_free(&r);
    free(q.path);
    free(md5);
    return rc;
}

int azblob_put_block_list(azblob *c, const char *name, const char *writer_id, uint32_t count,
                          const char *sha256_hex)
{
    if (count > AZBLOB_MAX_BLOCKS)
        return RST_ETOOBIG;
    buf_t body;
    buf_init(&body, 0);
    buf_puts(&body, "<?xml version=\"1.0\" encoding=\"utf-8\"?><BlockList>");
    for (uint32_t i = 0; i < count; i++) {
        char id[AZBLOB_BLOCK_ID_LEN];
        azblob_block_id(id, writer_id, i);
        buf_printf(&body, "<Latest>%s</Latest>", id);
    }
    buf_puts(&body, "</BlockList>");
    char *md5 = content_md5(body.data, body.len);
    az_req q = {.op = "put_block_list",
                .method = "PUT",
                .path = blob_path(c, name),
                .blob = name,
                .query = {{"comp", "blocklist"}},
                .nquery = 1,
                .xms = {{"x-ms-blob-content-type", "application/octet-stream"}},
                .nxms = 1,
                .content_type = "application/xml",
                .content_md5 = md5,
                .body = body.data,
                .body_len = body.len,
                .has_body = 1};
    if (sha256_hex)
        q.xms[q.nxms++] = (kv){"x-ms-meta-sha256", sha256_hex};
    az_resp r;
    int rc = request(c, &q, &r);
    resp_free(&r);
    free(q.path);
    free(md5);
    buf_free(&body);
    return rc;
}

int azblob_get_properties(azblob *c, const char *name, uint64_t *size, char etag[AZBLOB_ETAG_MAX])
{
    az_req q = {.op = "get_properties",
                .method = "HEAD",
                .path = blob_path(c, name),
                .blob = name,
                .quiet_rc = RST_ENOTFOUND};
    az_resp r;
    int rc = request(c, &q, &r);
    if (rc == RST_OK && !r.has_length) {
        log_fields(LOG_WARN, "azure blob properties without a length",
                   json_pack("{s:s, s:s, s:s}", "container", c->container, "blob", name,
                             "request_id", r.request_id));
        rc = RST_EIO;
    }
    if (rc == RST_OK) {
        *size = r.content_length;
        if (etag)
            snprintf(etag, AZBLOB_ETAG_MAX, "%s", r.etag);
    }
    resp_free(&r);
    free(q.path);
    return rc;
}

int azblob_get_range(azblob *c, const char *name, const char *etag, uint64_t offset, void *dst,
                     size_t len)
{
    if (len == 0 || len > AZBLOB_BLOCK_SIZE)
        return RST_EINVAL;
    char range[64];
    snprintf(range, sizeof range, "bytes=%llu-%llu", (unsigned long long)offset,
             (unsigned long long)(offset + len - 1));
    az_req q = {.op = "get_blob",
                .method = "GET",
                .path = blob_path(c, name),
                .blob = name,
                .xms = {{"x-ms-range", range}},
                .nxms = 1,
                .if_match = etag && *etag ? etag : NULL,
                .dst = dst,
                .dst_cap = len,
                .quiet_rc = RST_ENOTFOUND};
    az_resp r;
    int rc = request(c, &q, &r);
    if (rc == RST_OK && r.dst_len != len) {
        log_fields(LOG_WARN, "azure blob range short",
                   json_pack("{s:s, s:s, s:s, s:I, s:I}", "container", c->container, "blob", name,
                             "request_id", r.request_id, "want", (json_int_t)len, "got",
                             (json_int_t)r.dst_len));
        rc = RST_EIO;
    }
    resp_free(&r);
    free(q.path);
    return rc;
}

int azblob_delete(azblob *c, const char *name)
{
    az_req q = {.op = "delete_blob",
                .method = "DELETE",
                .path = blob_path(c, name),
                .blob = name,
                .quiet_rc = RST_ENOTFOUND};
    az_resp r;
    int rc = request(c, &q, &r);
    /* A retried delete whose first attempt got through answers 404: it is gone either way. */
    if (rc == RST_ENOTFOUND && r.attempts > 1)
        rc = RST_OK;
    resp_free(&r);
    free(q.path);
    return rc;
}

static int hexval(char ch)
{
    if (ch >= '0' && ch <= '9')
        return ch - '0';
    if (ch >= 'a' && ch <= 'f')
        return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F')
        return ch - 'A' + 10;
    return -1;
}

/* Calls fn for every <Blob> of one List Blobs page and sets *next to NextMarker (new, or NULL
 * at the end). */
static int list_page(const char *xml, size_t n, int (*fn)(void *, const char *, uint64_t),
                     void *arg, char **next)
{
    const char *p = xml, *end = xml + n;
    const char *text, *attrs;
    size_t len, alen;
    int rc = RST_OK;
    *next = NULL;
    const char *blobs_text;
    size_t blobs_len;
    const char *after = xml_element(p, end, "Blobs", &blobs_text, &blobs_len, NULL, NULL);
    if (!after)
        return RST_EIO;
    const char *bp = blobs_text, *bend = blobs_text + blobs_len;
    while ((bp = xml_element(bp, bend, "Blob", &text, &len, NULL, NULL))) {
        const char *ntext, *ltext;
        size_t nlen, llen;
        if (!xml_element(text, text + len, "Name", &ntext, &nlen, &attrs, &alen) ||
            !xml_element(text, text + len, "Content-Length", &ltext, &llen, NULL, NULL))
            return RST_EIO;
        buf_t name;
        buf_init(&name, 0);
        xml_unescape(&name, ntext, nlen);
        if (alen && memmem(attrs, alen, "Encoded=\"true\"", 14)) {
            /* The name was percent-encoded because XML cannot carry it. */
            buf_t dec;
            buf_init(&dec, 0);
            for (size_t i = 0; i < name.len; i++) {
                int hi = i + 2 < name.len ? hexval(name.data[i + 1]) : -1;
                int lo = hi >= 0 ? hexval(name.data[i + 2]) : -1;
                if (name.data[i] == '%' && lo >= 0) {
                    char ch = (char)(hi * 16 + lo);
                    buf_append(&dec, &ch, 1);
                    i += 2;
                } else {
                    buf_append(&dec, name.data + i, 1);
                }
            }
            buf_free(&name);
            name = dec;
        }
        char num[32];
        if (llen == 0 || llen >= sizeof num) {
            buf_free(&name);
            return RST_EIO;
        }
        memcpy(num, ltext, llen);
        num[llen] = '\0';
        char *e = NULL;
        errno = 0;
        unsigned long long size = strtoull(num, &e, 10);
        if (errno || !e || *e || !name.len) {
            buf_free(&name);
            return RST_EIO;
        }
        rc = fn(arg, name.data, size);
        buf_free(&name);
        if (rc)
            return rc;
    }
    if (xml_element(after, end, "NextMarker", &text, &len, NULL, NULL) && len) {
        buf_t m;
        buf_init(&m, 0);
        xml_unescape(&m, text, len);
        *next = m.data;
    }
    return RST_OK;
}

int azblob_list(azblob *c, const char *prefix,
                int (*fn)(void *arg, const char *name, uint64_t size), void *arg)
{
    char *marker = NULL;
    char page[16];
    snprintf(page, sizeof page, "%u", c->page_size);
    buf_t body;
    buf_init(&body, LIST_BODY_MAX);
    int rc = RST_OK;
    do {
        az_req q = {.op = "list_blobs",
                    .method = "GET",
                    .path = blob_path(c, NULL),
                    .query = {{"restype", "container"}, {"comp", "list"}, {"maxresults", page}},
                    .nquery = 3,
                    .out = &body};
        if (prefix && *prefix)
            q.query[q.nquery++] = (kv){"prefix", prefix};
        if (marker)
            q.query[q.nquery++] = (kv){"marker", marker};
        az_resp r;
        rc = request(c, &q, &r);
        resp_free(&r);
        free(q.path);
        free(marker);
        marker = NULL;
        if (rc)
            break;
        rc = list_page(body.data ? body.data : "", body.len, fn, arg, &marker);
        if (rc == RST_EIO)
            log_fields(LOG_WARN, "azure blob list: unreadable answer",
                       json_pack("{s:s}", "container", c->container));
    } while (rc == RST_OK && marker);
    free(marker);
    buf_free(&body);
    return rc;
}
