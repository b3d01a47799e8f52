/* Azure Resource Manager transport: the client-credentials token (by secret or by workload
 * identity's federated token, server/azure/aad_credential.c), one request with its retries, the
 * polling of long-running operations, and the record of every exchange. Exchanges run on pooled
 * libcurl easy handles (their connections are reused). */
#include "azure/arm.h"
#include "azure/aad_credential.h"

#include <ctype.h>
#include <curl/curl.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "core/log.h"
#include "core/metrics.h"

#define POOL_MAX 16
#define BODY_MAX ((size_t)16 * 1024 * 1024)
#define HEADER_MAX 2048
#define ERROR_TEXT_MAX 300
#define CONNECT_TIMEOUT_MAX_MS 10000L
#define BACKOFF_CAP_MS 30000L
#define WAIT_SLICE_MS 50L

#ifndef ROASTERY_VERSION
#define ROASTERY_VERSION "dev"
#endif

struct arm_client {
    char *endpoint;       /* scheme://host[:port], no trailing '/' */
    char *authority;      /* idem */
    aad_credential *cred; /* NULL in render mode */
    char *location, *api_version;
    char *ws_path; /* /subscriptions/.../workspaces/{ws} */
    char *scope;
    long timeout_ms, retry_base_ms, max_retry_after_ms, poll_interval_ms;
    int max_retries, max_wait_s, render_only;

    aad_credential_cache *tokens;

    pthread_mutex_t pool_lock; /* guards idle */
    CURL *idle[POOL_MAX];
    size_t nidle;
};

/* What to send in one exchange. */
typedef struct {
    const char *kind; /* token, request, poll, final */
    const char *method;
    const char *url;
    const char *content_type; /* NULL: no body */
    const char *body;
    size_t body_len;
    int with_token;
} xreq;

/* What came back from one exchange. */
typedef struct {
    long status; /* 0 when the transfer failed */
    CURLcode rc;
    char curl_err[CURL_ERROR_SIZE];
    buf_t body;
    int overflow;
    int stopped;
    char async_op[HEADER_MAX];
    char location[HEADER_MAX];
    char request_id[128];
    long retry_after_ms; /* -1 = none */
    long retry_after_s;
} xresp;

/* ---------------------------------------------------------------- helpers */

static void set_err(char *err, size_t errlen, const char *msg)
{
    if (err && errlen)
        snprintf(err, errlen, "%s", msg);
}

static void wipe_free(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static unsigned rand_below(unsigned n)
{
    unsigned v = 0;
    if (getrandom(&v, sizeof v, 0) != (ssize_t)sizeof v)
        v = (unsigned)now_ms_monotonic();
    return n ? v % n : 0;
}

static int stop_asked(const arm_result *r)
{
    return r->should_stop && r->should_stop(r->stop_arg);
}

/* Sleeps ms in slices, asking should_stop between them. 1 when asked to stop. */
static int wait_ms(const arm_result *r, long ms)
{
    int64_t end = now_ms_monotonic() + ms;
    for (;;) {
        if (stop_asked(r))
            return 1;
        int64_t left = end - now_ms_monotonic();
        if (left <= 0)
            return 0;
        long slice = left < WAIT_SLICE_MS ? (long)left : WAIT_SLICE_MS;
        struct timespec ts = {.tv_sec = 0, .tv_nsec = slice * 1000000L};
        while (nanosleep(&ts, &ts) && errno == EINTR) {
        }
    }
}

/* An error object of ours (not ARM's). new: json_decref. */
static json_t *client_error(const char *code, const char *message)
{
    return json_pack("{s:s, s:s, s:s}", "code", code, "message", message, "source", "client");
}

static void set_error(arm_result *out, json_t *error)
{
    json_decref(out->error);
    out->error = error;
}

/* scheme://host[:port] with nothing after it, https unless the host is loopback. */
static int origin_ok(const char *url, const char *what, char *err, size_t errlen)
{
    char msg[160];
    const char *host;
    if (!strncmp(url, "https://", 8)) {
        host = url + 8;
    } else if (!strncmp(url, "http://", 7)) {
        host = url + 7;
        if (strncmp(host, "127.0.0.1", 9) && strncmp(host, "localhost", 9) &&
            strncmp(host, "[::1]", 5)) {
            snprintf(msg, sizeof msg, "%s must be https:// (http:// only on loopback)", what);
            set_err(err, errlen, msg);
            return 0;
        }
    } else {
        snprintf(msg, sizeof msg, "%s must be an https:// URL", what);
        set_err(err, errlen, msg);
        return 0;
    }
    if (!*host || strpbrk(host, "/?#@ \t\r\n")) {
        snprintf(msg, sizeof msg, "%s must be scheme://host[:port] and nothing else", what);
        set_err(err, errlen, msg);
        return 0;
    }
    return 1;
}

/* Copies url without trailing slashes. new: free(). */
static char *strip_slash(const char *url)
{
    size_t n = strlen(url);
    while (n > 0 && url[n - 1] == '/')
        n--;
    return xstrndup(url, n);
}

/* A path segment or id we put in a URL: printable, no URL syntax. */
static int segment_ok(const char *s, size_t max)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > max)
        return 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char ch = (unsigned char)s[i];
        if (!isalnum(ch) && ch != '-' && ch != '_' && ch != '.' && ch != '(' && ch != ')')
            return 0;
    }
    return 1;
}

static int api_version_ok(const char *v)
{
    size_t n = strlen(v);
    if (n != 10 && !(n == 18 && !strcmp(v + 10, "-preview")))
        return 0;
    for (size_t i = 0; i < 10; i++) {
        if ((i == 4 || i == 7) ? v[i] != '-' : !isdigit((unsigned char)v[i]))
            return 0;
    }
    return 1;
}

/* ---------------------------------------------------------------- client */

int arm_client_new(const arm_options *o, arm_client **out, char *err, size_t errlen)
{
    *out = NULL;
    arm_client *c = xcalloc(1, sizeof *c);
    c->tokens = aad_credential_cache_new();
    pthread_mutex_init(&c->pool_lock, NULL);
    int rc = RST_EINVAL;
    const char *endpoint =
        o->arm_endpoint && *o->arm_endpoint ? o->arm_endpoint : ARM_DEFAULT_ENDPOINT;
    const char *authority =
        o->aad_authority && *o->aad_authority ? o->aad_authority : ARM_DEFAULT_AUTHORITY;
    c->endpoint = strip_slash(endpoint);
    c->authority = strip_slash(authority);
    if (!origin_ok(c->endpoint, "arm endpoint", err, errlen) ||
        !origin_ok(c->authority, "aad authority", err, errlen))
        goto out;
    if (!segment_ok(o->subscription_id, 64) || !segment_ok(o->resource_group, 90) ||
        !segment_ok(o->workspace, 255)) {
        set_err(err, errlen,
                "subscription, resource group and workspace are required "
                "(letters, digits, '-', '_', '.', '(' and ')')");
        goto out;
    }
    c->render_only = o->render_only != 0;
    if (!c->render_only) {
        /* A client secret when there is one, else workload identity's federated token. */
        aad_credential_options ao = {.authority = c->authority,
                                     .tenant_id = o->tenant_id,
                                     .client_id = o->client_id,
                                     .client_secret = o->client_secret,
                                     .federated_token_file = o->federated_token_file};
        if (!segment_ok(o->tenant_id, 128) || aad_credential_new(&ao, &c->cred, err, errlen)) {
            set_err(err, errlen,
                    "tenant id, client id and a client secret or a federated token file are "
                    "required");
            goto out;
        }
    }
    if (o->location && *o->location) {
        if (!segment_ok(o->location, 64)) {
            set_err(err, errlen, "location must be an Azure region name such as westeurope");
            goto out;
        }
        c->location = xstrdup(o->location);
    }
    const char *v = o->api_version && *o->api_version ? o->api_version : ARM_API_VERSION;
    if (!api_version_ok(v)) {
        set_err(err, errlen, "api-version must look like 2025-12-01 (or with -preview)");
        goto out;
    }
    c->api_version = xstrdup(v);
    c->ws_path = xasprintf("/subscriptions/%s/resourceGroups/%s/providers/"
                           "Microsoft.MachineLearningServices/workspaces/%s",
                           o->subscription_id, o->resource_group, o->workspace);
    /* Client credentials ask for "<resource>/.default"; ARM's resource is its endpoint
     * (https://management.azure.com/.default in public Azure). */
    c->scope = xasprintf("%s/.default", c->endpoint);
    c->timeout_ms = (o->timeout_seconds > 0 ? o->timeout_seconds : 60) * 1000L;
    c->max_retries = o->max_retries < 0 ? 0 : o->max_retries > 0 ? o->max_retries : 4;
    c->retry_base_ms = o->retry_base_ms > 0 ? o->retry_base_ms : 500;
    c->max_retry_after_ms =
        (o->max_retry_after_seconds > 0 ? o->max_retry_after_seconds : 120) * 1000L;
    c->poll_interval_ms = o->poll_interval_ms > 0 ? o->poll_interval_ms : 5000;
    c->max_wait_s = o->max_wait_seconds > 0 ? o->max_wait_seconds : 3600;
    *out = c;
    c = NULL;
    rc = RST_OK;
out:
    arm_client_free(c);
    return rc;
}

void arm_client_free(arm_client *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nidle; i++)
        curl_easy_cleanup(c->idle[i]);
    aad_credential_free(c->cred);
    aad_credential_cache_free(c->tokens);
    free(c->endpoint);
    free(c->authority);
    free(c->location);
    free(c->api_version);
    free(c->ws_path);
    free(c->scope);
    pthread_mutex_destroy(&c->pool_lock);
    free(c);
}

char *arm_workspace_id(const arm_client *c)
{
    return xstrdup(c->ws_path);
}

const char *arm_location(const arm_client *c)
{
    return c->location;
}

const char *arm_api_version(const arm_client *c)
{
    return c->api_version;
}

int arm_render_only(const arm_client *c)
{
    return c->render_only;
}

/* ---------------------------------------------------------------- results */

void arm_result_init(arm_result *r)
{
    memset(r, 0, sizeof *r);
}

void arm_result_free(arm_result *r)
{
    if (!r)
        return;
    int (*stop)(void *) = r->should_stop;
    void *arg = r->stop_arg;
    int max_wait = r->max_wait_seconds;
    json_decref(r->body);
    json_decref(r->error);
    json_decref(r->requests);
    json_decref(r->trace);
    memset(r, 0, sizeof *r);
    r->should_stop = stop;
    r->stop_arg = arg;
    r->max_wait_seconds = max_wait;
}

json_t *arm_result_json(const arm_result *r)
{
    return json_pack("{s:O, s:O, s:I, s:O, s:O, s:i, s:b, s:s, s:b}", "requests",
                     r->requests ? r->requests : json_null(), "trace",
                     r->trace ? r->trace : json_null(), "status", (json_int_t)r->status, "body",
                     r->body ? r->body : json_null(), "error", r->error ? r->error : json_null(),
                     "retries", r->retries, "rendered", r->rendered, "async_status",
                     r->async_status, "existed", r->existed);
}

static void trace_add(arm_result *out, const xreq *q, const xresp *x, int attempt, int64_t ms)
{
    if (!out->trace)
        out->trace = json_array();
    json_t *e = json_pack("{s:s, s:s, s:s, s:I, s:I, s:i}", "kind", q->kind, "method", q->method,
                          "url", q->url, "status", (json_int_t)x->status, "ms", (json_int_t)ms,
                          "attempt", attempt);
    json_object_set_new(e, "retry_after",
                        x->retry_after_s >= 0 ? json_integer(x->retry_after_s) : json_null());
    if (x->request_id[0])
        json_object_set_new(e, "request_id", json_string(x->request_id));
    if (x->rc != CURLE_OK)
        json_object_set_new(e, "error",
                            json_string(x->curl_err[0] ? x->curl_err : curl_easy_strerror(x->rc)));
    json_array_append_new(out->trace, e);
}

/* ---------------------------------------------------------------- transfers */

static CURL *handle_get(arm_client *c)
{
    CURL *h = NULL;
    pthread_mutex_lock(&c->pool_lock);
    if (c->nidle)
        h = c->idle[--c->nidle];
    pthread_mutex_unlock(&c->pool_lock);
    if (!h)
        h = curl_easy_init();
    else
        curl_easy_reset(h); /* keeps its live connection */
    return h;
}

static void handle_put(arm_client *c, CURL *h)
{
    if (!h)
        return;
    pthread_mutex_lock(&c->pool_lock);
    if (c->nidle < POOL_MAX) {
        c->idle[c->nidle++] = h;
        h = NULL;
    }
    pthread_mutex_unlock(&c->pool_lock);
    if (h)
        curl_easy_cleanup(h);
}

typedef struct {
    xresp *x;
    const arm_result *out;
} xfer;

/* Copies the value of "Name: value\r\n" into dst when the name matches. */
static int header_value(const char *line, size_t n, const char *name, char *dst, size_t dstlen)
{
    size_t nl = strlen(name);
    if (n <= nl || strncasecmp(line, name, nl) || line[nl] != ':')
        return 0;
    const char *v = line + nl + 1, *end = line + n;
    while (v < end && (*v == ' ' || *v == '\t'))
        v++;
    while (end > v && (end[-1] == '\r' || end[-1] == '\n' || end[-1] == ' '))
        end--;
    size_t len = (size_t)(end - v);
    if (len >= dstlen)
        len = dstlen - 1; /* a longer URL fails the origin check later */
    memcpy(dst, v, len);
    dst[len] = '\0';
    return 1;
}

/* Retry-After: delta-seconds or an HTTP date. -1 when absent or unreadable. */
static long parse_retry_after(const char *v)
{
    long secs = -1;
    if (!*v)
        return -1;
    if (parse_long(v, 0, 86400 * 365L, &secs) == RST_OK)
        return secs;
    time_t t = curl_getdate(v, NULL);
    if (t == (time_t)-1)
        return -1;
    time_t now = time(NULL);
    return t > now ? (long)(t - now) : 0;
}

static size_t on_header(char *data, size_t size, size_t n, void *arg)
{
    xfer *f = arg;
    xresp *x = f->x;
    size_t len = size * n;
    if (len > 5 && !strncmp(data, "HTTP/", 5)) { /* a new answer (after 100 Continue, say) */
        x->async_op[0] = x->location[0] = x->request_id[0] = '\0';
        x->retry_after_s = -1;
        return len;
    }
    char ra[64];
    header_value(data, len, "Azure-AsyncOperation", x->async_op, sizeof x->async_op);
    header_value(data, len, "Location", x->location, sizeof x->location);
    header_value(data, len, "x-ms-request-id", x->request_id, sizeof x->request_id);
    if (header_value(data, len, "Retry-After", ra, sizeof ra))
        x->retry_after_s = parse_retry_after(ra);
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *arg)
{
    xfer *f = arg;
    size_t len = size * n;
    if (buf_append(&f->x->body, data, len)) {
        f->x->overflow = 1;
        return 0;
    }
    return len;
}

static int on_progress(void *arg, curl_off_t dlt, curl_off_t dln, curl_off_t ult, curl_off_t uln)
{
    (void)dlt;
    (void)dln;
    (void)ult;
    (void)uln;
    xfer *f = arg;
    if (stop_asked(f->out)) {
        f->x->stopped = 1;
        return 1;
    }
    return 0;
}

static void xresp_init(xresp *x)
{
    memset(x, 0, sizeof *x);
    buf_init(&x->body, BODY_MAX);
    x->retry_after_s = -1;
}

static void xresp_reset(xresp *x)
{
    buf_free(&x->body);
    xresp_init(x);
}

/* One HTTP exchange on h, recorded in out->trace. token may be NULL. */
static void exchange(arm_client *c, CURL *h, const xreq *q, const char *token, xresp *x,
                     arm_result *out, int attempt)
{
    xresp_reset(x);
    struct curl_slist *hl = NULL;
    char *auth = NULL;
    hl = curl_slist_append(hl, "Accept: application/json");
    hl = curl_slist_append(hl, "Expect:");
    hl = curl_slist_append(hl, "User-Agent: roastery/" ROASTERY_VERSION);
    if (q->content_type) {
        char *line = xasprintf("Content-Type: %s", q->content_type);
        hl = curl_slist_append(hl, line);
        free(line);
    }
    if (token) {
        auth = xasprintf("Authorization: Bearer %s", token);
        hl = curl_slist_append(hl, auth);
    }
    xfer f = {.x = x, .out = out};
    long connect_ms =
        c->timeout_ms < CONNECT_TIMEOUT_MAX_MS ? c->timeout_ms : CONNECT_TIMEOUT_MAX_MS;
    curl_easy_setopt(h, CURLOPT_URL, q->url);
    curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, connect_ms);
    curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, c->timeout_ms);
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->curl_err);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
    curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(h, CURLOPT_HEADERDATA, &f);
    curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(h, CURLOPT_WRITEDATA, &f);
    curl_easy_setopt(h, CURLOPT_NOPROGRESS, 0L);
    curl_easy_setopt(h, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(h, CURLOPT_XFERINFODATA, &f);
    if (!strcmp(q->method, "GET")) {
        curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
    } else if (!strcmp(q->method, "DELETE")) {
        curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, "DELETE");
    } else { /* PUT, PATCH, POST: a body, empty for a bodiless POST (Content-Length: 0) */
        curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)q->body_len);
        curl_easy_setopt(h, CURLOPT_POSTFIELDS, q->body ? q->body : "");
        if (strcmp(q->method, "POST"))
            curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, q->method);
    }
    int64_t t0 = now_ms_monotonic();
    x->rc = curl_easy_perform(h);
    if (x->rc == CURLE_OK)
        curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &x->status);
    else
        x->status = 0;
    trace_add(out, q, x, attempt, now_ms_monotonic() - t0);
    /* The handle goes back to the pool: drop every pointer into this frame. */
    curl_easy_setopt(h, CURLOPT_ERRORBUFFER, NULL);
    curl_easy_setopt(h, CURLOPT_HTTPHEADER, NULL);
    curl_easy_setopt(h, CURLOPT_POSTFIELDS, NULL);
    curl_slist_free_all(hl);
    if (auth) {
        OPENSSL_cleanse(auth, strlen(auth));
        free(auth);
    }
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
    return status == 408 || status == 429 || (status >= 500 && status != 501 && status != 505);
}

static int status_rc(long status)
{
    if (status >= 200 && status < 300)
        return RST_OK;
    if (status == 404)
        return RST_ENOTFOUND;
    if (status == 409 || status == 412)
        return RST_ECONFLICT;
    if (status == 413)
        return RST_ETOOBIG;
    if (retryable_status(status))
        return RST_EUNAVAIL;
    return RST_EINVAL;
}

/* The parsed body of x, or NULL when empty or not JSON. new: json_decref. */
static json_t *parse_body(const xresp *x)
{
    if (!x->body.len)
        return NULL;
    return json_loadb(x->body.data, x->body.len, JSON_DECODE_ANY, NULL);
}

/* The error of a failed answer: ARM's {"error": {...}}, a bare {code, message}, the identity
 * platform's {error, error_description}, or the start of whatever else came. new. */
static json_t *answer_error(const xresp *x, json_t *body)
{
    json_t *e = body ? json_object_get(body, "error") : NULL;
    if (json_is_object(e))
        return json_incref(e);
    if (json_is_string(e))
        return json_pack("{s:s, s:s}", "code", json_string_value(e), "message",
                         json_string_value(json_object_get(body, "error_description"))
                             ? json_string_value(json_object_get(body, "error_description"))
                             : "");
    if (json_is_object(body) && json_is_string(json_object_get(body, "code")))
        return json_incref(body);
    char text[ERROR_TEXT_MAX + 1] = "";
    size_t n = x->body.len < ERROR_TEXT_MAX ? x->body.len : ERROR_TEXT_MAX;
    for (size_t i = 0; i < n; i++) { /* JSON strings must be UTF-8: keep printable ASCII */
        unsigned char ch = (unsigned char)x->body.data[i];
        text[i] = ch >= 0x20 && ch < 0x7f ? (char)ch : '?';
    }
    text[n] = '\0';
    char code[32];
    snprintf(code, sizeof code, "HttpStatus%ld", x->status);
    return json_pack("{s:s, s:s}", "code", code, "message", text);
}

/* ---------------------------------------------------------------- token */

static int exchange_with_retries(arm_client *c, const xreq *q, xresp *x, arm_result *out);

typedef struct {
    arm_client *c;
    arm_result *out;
} fetch_arg;

/* Fetches a token for the ARM scope through the traced, retried exchange; called by the token
 * cache with its lock held. */
static int token_fetch(void *arg, char **token, long *expires_in)
{
    fetch_arg *fa = arg;
    arm_client *c = fa->c;
    arm_result *out = fa->out;
    char *form = NULL;
    char msg[256] = "";
    json_t *body = NULL;
    xresp x;
    xresp_init(&x);
    int rc = aad_credential_form(c->cred, c->scope, &form, msg, sizeof msg);
    if (rc) {
        /* The kubelet may not have projected the token yet: worth retrying. */
        set_error(out, client_error("FederatedTokenUnavailable", msg));
        log_fields(LOG_WARN, "azure token request not sent", json_pack("{s:s}", "reason", msg));
        rc = rc == RST_ENOMEM ? RST_ENOMEM : RST_EUNAVAIL;
        goto out;
    }
    xreq q = {.kind = "token",
              .method = "POST",
              .url = aad_credential_token_url(c->cred),
              .content_type = "application/x-www-form-urlencoded",
              .body = form,
              .body_len = strlen(form)};
    rc = exchange_with_retries(c, &q, &x, out);
    if (rc)
        goto out;
    if (x.status != 200) {
        body = parse_body(&x);
        set_error(out, answer_error(&x, body));
        out->status = x.status;
        rc = retryable_status(x.status) ? RST_EUNAVAIL : RST_EINVAL;
        log_fields(LOG_WARN, "azure token request refused",
                   json_pack("{s:s, s:s, s:I, s:O}", "authority", c->authority, "credential",
                             aad_credential_kind(c->cred), "status", (json_int_t)x.status, "error",
                             out->error));
        goto out;
    }
    rc = aad_credential_parse_token(x.body.data, x.body.len, token, expires_in);
    if (rc)
        set_error(out, client_error("InvalidTokenResponse",
                                    "the token endpoint answered without access_token/expires_in"));
out:
    if (x.body.data) /* the answer carries the token */
        OPENSSL_cleanse(x.body.data, x.body.len);
    json_decref(body);
    buf_free(&x.body);
    aad_credential_secret_free(form);
    return rc;
}

/* A copy of a valid token, fetching one when the cache has none. stale (may be NULL): a token
 * ARM refused; the cache drops it first if it still holds it. new: *tok, free with wipe_free. */
static int token_get(arm_client *c, arm_result *out, const char *stale, char **tok)
{
    fetch_arg fa = {.c = c, .out = out};
    return aad_credential_cache_get(c->tokens, stale, token_fetch, &fa, tok);
}

/* ---------------------------------------------------------------- one request */

/* Sends q until it gets an answer that is not retryable or retries run out. The last answer
 * is in x. RST_OK when there is an answer (any status); RST_EUNAVAIL / RST_ETOOBIG / RST_EINVAL
 * for a transport failure (out->error set), ARM_ESTOPPED, or the token's failure. */
static int exchange_with_retries(arm_client *c, const xreq *q, xresp *x, arm_result *out)
{
    CURL *h = handle_get(c);
    char *token = NULL;
    int rc = RST_OK, reauth = 0;
    if (!h) {
        set_error(out, client_error("OutOfMemory", "cannot allocate a curl handle"));
        return RST_ENOMEM;
    }
    for (int attempt = 0;; attempt++) {
        if (stop_asked(out)) {
            rc = ARM_ESTOPPED;
            break;
        }
        if (q->with_token && !token) {
            rc = token_get(c, out, NULL, &token);
            if (rc)
                break;
        }
        exchange(c, h, q, token, x, out, attempt);
        if (x->stopped) {
            rc = ARM_ESTOPPED;
            break;
        }
        if (x->rc == CURLE_OK && x->status == 401 && q->with_token && !reauth) {
            /* Revoked or expired early: one fresh token, at once. */
            reauth = 1;
            char *fresh = NULL;
            rc = token_get(c, out, token, &fresh);
            wipe_free(token);
            token = fresh;
            if (rc)
                break;
            attempt--;
            continue;
        }
        int again = x->rc != CURLE_OK ? retryable_curl(x->rc) : retryable_status(x->status);
        if (!again || attempt >= c->max_retries)
            break;
        long wait;
        if (x->retry_after_s >= 0) {
            wait = x->retry_after_s * 1000L;
        } else {
            wait = c->retry_base_ms << (attempt < 16 ? attempt : 16);
            if (wait > BACKOFF_CAP_MS || wait <= 0)
                wait = BACKOFF_CAP_MS;
            wait = wait / 2 + (long)rand_below((unsigned)(wait / 2) + 1); /* jitter */
        }
        if (wait > c->max_retry_after_ms)
            wait = c->max_retry_after_ms;
        out->retries++;
        metrics_count("roastery_arm_retries_total",
                      "Azure Resource Manager requests retried after throttling or a transient "
                      "error.");
        log_fields(LOG_INFO, "arm request retried",
                   json_pack("{s:s, s:s, s:s, s:I, s:s, s:s, s:i, s:I}", "kind", q->kind, "method",
                             q->method, "url", q->url, "status", (json_int_t)x->status,
                             "request_id", x->request_id, "curl_error",
                             x->rc ? curl_easy_strerror(x->rc) : "", "attempt", attempt + 1,
                             "wait_ms", (json_int_t)wait));
        if (wait_ms(out, wait)) {
            rc = ARM_ESTOPPED;
            break;
        }
    }
    handle_put(c, h);
    wipe_free(token);
    if (rc == ARM_ESTOPPED) {
        set_error(out, client_error("Stopped", "stopped on request while waiting for Azure"));
    } else if (!rc && x->rc != CURLE_OK) {
        const char *code = "TransportError";
        if (x->overflow)
            code = "ResponseTooLarge";
        else if (x->rc == CURLE_OPERATION_TIMEDOUT)
            code = "Timeout";
        char msg[CURL_ERROR_SIZE + 64];
        snprintf(msg, sizeof msg, "%s %s: %s", q->method, q->kind,
                 x->curl_err[0] ? x->curl_err : curl_easy_strerror(x->rc));
        set_error(out, client_error(code, msg));
        out->status = 0; /* nothing was answered */
        rc = x->overflow ? RST_ETOOBIG : RST_EUNAVAIL;
    }
    return rc;
}

/* The URL for path_and_query. new: free(); NULL when path is not acceptable. */
static char *build_url(const arm_client *c, const char *path)
{
    buf_t b;
    buf_init(&b, 0);
    if (!strncmp(path, "https://", 8) || !strncmp(path, "http://", 7)) {
        size_t n = strlen(c->endpoint);
        if (strncmp(path, c->endpoint, n) || path[n] != '/')
            return NULL; /* never send our token to another host */
        buf_puts(&b, path);
    } else if (path[0] == '/') {
        if (strncasecmp(path, "/subscriptions/", 15))
            return NULL;
        buf_puts(&b, c->endpoint);
        buf_puts(&b, path);
    } else if (path[0]) {
        buf_printf(&b, "%s%s/%s", c->endpoint, c->ws_path, path);
    } else {
        return NULL;
    }
    if (strpbrk(b.data, " \t\r\n#")) {
        buf_free(&b);
        return NULL;
    }
    if (!strstr(b.data, "api-version="))
        buf_printf(&b, "%sapi-version=%s", strchr(b.data, '?') ? "&" : "?", c->api_version);
    return b.data;
}

/* Sends one logical request with retries and, on failure, keeps status and error in out. */
static int send_one(arm_client *c, const char *kind, const char *method, const char *url,
                    const char *body, xresp *x, arm_result *out)
{
    xreq q = {.kind = kind,
              .method = method,
              .url = url,
              .content_type = body ? "application/json" : NULL,
              .body = body,
              .body_len = body ? strlen(body) : 0,
              .with_token = 1};
    int rc = exchange_with_retries(c, &q, x, out);
    if (rc)
        return rc;
    out->status = x->status;
    json_decref(out->body);
    out->body = parse_body(x);
    if (x->status >= 400) {
        set_error(out, answer_error(x, out->body));
        rc = status_rc(x->status);
        metrics_count("roastery_arm_errors_total", "Azure Resource Manager requests that failed.");
        log_fields(x->status == 404 ? LOG_INFO : LOG_WARN, "arm request failed",
                   json_pack("{s:s, s:s, s:s, s:I, s:s, s:O}", "kind", kind, "method", method,
                             "url", url, "status", (json_int_t)x->status, "request_id",
                             x->request_id, "error", out->error));
    } else {
        set_error(out, NULL);
    }
    return rc;
}

static int poll_url_ok(const arm_client *c, const char *url)
{
    size_t n = strlen(c->endpoint);
    return !strncmp(url, c->endpoint, n) && url[n] == '/' && strlen(url) < HEADER_MAX - 1;
}

/* Follows the long-running operation the first answer x announced. */
static int wait_async(arm_client *c, const char *method, const char *url, xresp *x, arm_result *out)
{
    int status_mode = x->async_op[0] && x->status >= 200 && x->status <= 202;
    if (!status_mode && !(x->status == 202 && x->location[0]))
        return RST_OK; /* finished already */
    char poll[HEADER_MAX], result[HEADER_MAX];
    snprintf(poll, sizeof poll, "%s", status_mode ? x->async_op : x->location);
    snprintf(result, sizeof result, "%s", x->location); /* a POST's final answer, if any */
    if (!poll_url_ok(c, poll)) {
        set_error(out, client_error("UntrustedPollUrl",
                                    "the async operation URL is not on the ARM endpoint"));
        return RST_EINVAL;
    }
    int max_wait = out->max_wait_seconds > 0 ? out->max_wait_seconds : c->max_wait_s;
    int64_t deadline = now_ms_monotonic() + max_wait * 1000L;
    long delay = x->retry_after_s >= 0 ? x->retry_after_s * 1000L : c->poll_interval_ms;
    int rc;
    for (;;) {
        if (delay > c->max_retry_after_ms)
            delay = c->max_retry_after_ms;
        if (now_ms_monotonic() + delay > deadline) {
            char msg[128];
            snprintf(msg, sizeof msg, "the operation did not finish within %d s", max_wait);
            set_error(out, client_error("AsyncTimeout", msg));
            snprintf(out->async_status, sizeof out->async_status, "TimedOut");
            return RST_EUNAVAIL;
        }
        if (wait_ms(out, delay)) {
            set_error(out, client_error("Stopped", "stopped on request while waiting for Azure"));
            snprintf(out->async_status, sizeof out->async_status, "Stopped");
            return ARM_ESTOPPED;
        }
        rc = send_one(c, "poll", "GET", poll, NULL, x, out);
        if (rc) {
            if (rc == ARM_ESTOPPED)
                snprintf(out->async_status, sizeof out->async_status, "Stopped");
            return rc;
        }
        delay = x->retry_after_s >= 0 ? x->retry_after_s * 1000L : c->poll_interval_ms;
        if (status_mode) {
            const char *st = json_string_value(json_object_get(out->body, "status"));
            if (!st) {
                set_error(out,
                          client_error("InvalidAsyncStatus", "the operation status has no status"));
                return RST_EIO;
            }
            if (!strcasecmp(st, "Succeeded"))
                break;
            if (!strcasecmp(st, "Failed") || !strcasecmp(st, "Canceled")) {
                json_t *e = json_object_get(out->body, "error");
                set_error(out,
                          json_is_object(e) ? json_incref(e) : client_error("OperationFailed", st));
                snprintf(out->async_status, sizeof out->async_status, "%s",
                         !strcasecmp(st, "Failed") ? "Failed" : "Canceled");
                return ARM_EFAILED;
            }
        } else {
            if (x->status != 202)
                break;
            if (x->location[0]) {
                if (!poll_url_ok(c, x->location)) {
                    set_error(out,
                              client_error("UntrustedPollUrl",
                                           "the async operation URL is not on the ARM endpoint"));
                    return RST_EINVAL;
                }
                snprintf(poll, sizeof poll, "%s", x->location);
            }
        }
    }
    snprintf(out->async_status, sizeof out->async_status, "Succeeded");
    if (!strcmp(method, "PUT") || !strcmp(method, "PATCH"))
        return send_one(c, "final", "GET", url, NULL, x, out);
    if (status_mode && result[0] && poll_url_ok(c, result))
        return send_one(c, "final", "GET", result, NULL, x, out);
    if (status_mode) { /* the status document is not the result */
        json_decref(out->body);
        out->body = NULL;
    }
    return RST_OK;
}

int arm_request(arm_client *c, const char *method, const char *path_and_query, json_t *body,
                int wait_async_flag, arm_result *out)
{
    char *url = NULL, *text = NULL;
    xresp x;
    xresp_init(&x);
    int rc = RST_EINVAL;
    out->status = 0;
    out->async_status[0] = '\0';
    json_decref(out->body);
    out->body = NULL;
    if (!method || (strcmp(method, "GET") && strcmp(method, "PUT") && strcmp(method, "POST") &&
                    strcmp(method, "DELETE") && strcmp(method, "PATCH"))) {
        set_error(
            out, client_error("InvalidArgument", "method must be GET, PUT, POST, DELETE or PATCH"));
        goto out;
    }
    if (!path_and_query || !(url = build_url(c, path_and_query))) {
        set_error(out, client_error("InvalidArgument",
                                    "path must be workspace-relative, /subscriptions/... or a URL "
                                    "on the ARM endpoint"));
        goto out;
    }
    if (body && !(text = json_dumps(body, JSON_COMPACT))) {
        set_error(out, client_error("InvalidArgument", "body cannot be serialised"));
        goto out;
    }
    if (!out->requests)
        out->requests = json_array();
    json_array_append_new(out->requests,
                          json_pack("{s:s, s:s, s:o}", "method", method, "url", url, "body",
                                    body ? json_deep_copy(body) : json_null()));
    if (!out->trace)
        out->trace = json_array();
    if (c->render_only) {
        out->rendered = 1;
        set_error(out, NULL);
        rc = RST_OK;
        goto out;
    }
    rc = send_one(c, "request", method, url, text, &x, out);
    if (!rc && wait_async_flag)
        rc = wait_async(c, method, url, &x, out);
out:
    if (x.body.data)
        OPENSSL_cleanse(x.body.data, x.body.len); /* answers may carry keys */
    buf_free(&x.body);
    free(text);
    free(url);
    return rc;
}
