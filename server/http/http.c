/* CivetWeb glue. One catch-all CivetWeb handler routes every request through
 * our own table, so 404/405, problem+json, request ids, the access log and
 * the metrics are handled in one place for every route. */
#include "http/http.h"
#include "http/conn_limits.h"
#include "core/log.h"
#include "core/metrics.h"
#include "lib/util.h"
#include "lib/clientaddr.h"
#include "lib/jsonguard.h"

#include <civetweb.h>
#include <ctype.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_PARAMS 8
#define MAX_HEADERS_OUT 8

struct http_server {
    struct mg_context *ctx;
    const http_route *routes;
    size_t nroutes;
    http_options opts;
    conn_limits *limits; /* NULL: no deadlines or caps */
};

struct http_req {
    struct mg_connection *conn;
    const struct mg_request_info *ri;
    http_server *srv;
    const char *route; /* template, for logs and metrics */
    char request_id[65];
    char client_request_id[65];       /* the client's X-Request-Id, "" when none or invalid */
    char client_addr[CLIENTADDR_MAX]; /* the peer, or what trusted proxies say it forwards */
    const char *param_name[MAX_PARAMS];
    char *param_value[MAX_PARAMS];
    int nparams;
    char *hdr_name[MAX_HEADERS_OUT];
    char *hdr_value[MAX_HEADERS_OUT];
    int nheaders;
    int status;
    size_t bytes;
    int replied;
    void *identity;
    buf_t body;
    int body_read;
    int body_done; /* the whole body was read: the connection may be kept */
    int close;     /* refused: close the connection after the reply */
    conn_slot *slot;
    buf_t captured;
    char *captured_type;
    char *captured_location;
    http_producer producer; /* streamed reply */
    void (*producer_done)(void *arg);
    void *producer_arg;
    uint64_t stream_length;
};

/* ---- routing ---------------------------------------------------------- */

/* Matches one template against path; fills params when given. */
static int template_match(const char *tpl, const char *path, http_req *req)
{
    const char *t = tpl, *p = path;
    int n = 0;
    while (*t && *p) {
        if (*t == '{') {
            const char *tend = strchr(t, '}');
            const char *pend = strchr(p, '/');
            if (!tend)
                return 0;
            if (!pend)
                pend = p + strlen(p);
            if (pend == p)
                return 0; /* empty segment never matches a parameter */
            if (req && n < MAX_PARAMS) {
                /* Parameter names are the template text after '{' up to '}'. */
                static _Thread_local char names[MAX_PARAMS][32];
                size_t nl = (size_t)(tend - t - 1);
                if (nl >= sizeof names[n])
                    nl = sizeof names[n] - 1;
                memcpy(names[n], t + 1, nl);
                names[n][nl] = '\0';
                req->param_name[n] = names[n];
                req->param_value[n] = xstrndup(p, (size_t)(pend - p));
            }
            n++;
            t = tend + 1;
            p = pend;
            continue;
        }
        if (*t != *p)
            return 0;
        t++;
        p++;
    }
    if (*t || *p)
        return 0;
    if (req)
        req->nparams = n < MAX_PARAMS ? n : MAX_PARAMS;
    return 1;
}

int http_route_match(const http_route *routes, size_t n, const char *method, const char *path,
                     int *path_known)
{
    *path_known = 0;
    for (size_t i = 0; i < n; i++) {
        if (!template_match(routes[i].path, path, NULL))
            continue;
        *path_known = 1;
        if (!strcmp(routes[i].method, method))
            return (int)i;
    }
    return -1;
}

/* ---- accessors -------------------------------------------------------- */

void *http_app(http_req *req)
{
    return req->srv->opts.app;
}

const char *http_method(http_req *req)
{
    return req->ri->request_method;
}

const char *http_param(http_req *req, const char *name)
{
    for (int i = 0; i < req->nparams; i++)
        if (!strcmp(req->param_name[i], name))
            return req->param_value[i];
    return NULL;
}

const char *http_header(http_req *req, const char *name)
{
    return mg_get_header(req->conn, name);
}

const char *http_request_id(http_req *req)
{
    return req->request_id;
}

const char *http_path(http_req *req)
{
    return req->ri->local_uri ? req->ri->local_uri : "/";
}

const char *http_remote_addr(http_req *req)
{
    return req->client_addr;
}

const char *http_peer_addr(http_req *req)
{
    return req->ri->remote_addr;
}

const char *http_client_request_id(http_req *req)
{
    return req->client_request_id[0] ? req->client_request_id : NULL;
}

int http_status(http_req *req)
{
    return req->status;
}

void http_set_identity(http_req *req, void *identity)
{
    req->identity = identity;
}

void *http_identity(http_req *req)
{
    return req->identity;
}

int http_limit_identity(http_req *req, const char *key)
{
    if (conn_limits_identity_enter(req->slot, key) == CONN_OK)
        return 0;
    req->close = 1; /* not even its body is read: a refusal must not hold the thread */
    int cap = conn_limits_settings_of(req->slot)->per_identity;
    metrics_count("roastery_identity_limited_total",
                  "Requests refused: their identity had ROASTERY_CONN_PER_IDENTITY in progress.");
    http_add_header(req, "Retry-After", "1");
    http_problem(req, 429, "too-many-requests-in-progress", "Too many requests", NULL,
                 "this identity has %d requests in progress; the limit is %d", cap, cap);
    return 1;
}

int http_captured(http_req *req, int *status, const char **content_type, const char **body,
                  size_t *len, const char **location)
{
    if (!req->replied)
        return 0;
    *status = req->status;
    *content_type = req->captured_type;
    *body = req->captured.data ? req->captured.data : "";
    *len = req->captured.len;
    *location = req->captured_location;
    return 1;
}

int http_query(http_req *req, const char *name, char *dst, size_t dstlen)
{
    const char *qs = req->ri->query_string;
    if (!qs)
        return -1;
    int n = mg_get_var(qs, strlen(qs), name, dst, dstlen);
    return n < -1 ? -2 : n;
}

/* ---- responses -------------------------------------------------------- */

void http_add_header(http_req *req, const char *name, const char *value)
{
    if (req->nheaders >= MAX_HEADERS_OUT)
        return;
    req->hdr_name[req->nheaders] = xstrdup(name);
    req->hdr_value[req->nheaders] = xstrdup(value);
    req->nheaders++;
}

/* Replies are held until the after hook has run, so what it records (the
 * audit row, the idempotent response) is durable before the client sees the
 * answer and can send its next request. */
void http_reply_bytes(http_req *req, int status, const char *content_type, const void *body,
                      size_t len)
{
    if (req->replied)
        return;
    req->replied = 1;
    req->status = status;
    req->bytes = len;
    req->captured_type = content_type ? xstrdup(content_type) : NULL;
    buf_append(&req->captured, body, len);
    for (int i = 0; i < req->nheaders; i++)
        if (!strcasecmp(req->hdr_name[i], "Location"))
            req->captured_location = xstrdup(req->hdr_value[i]);
}

/* Whether the client keeps the connection open after this request: our
 * answer must agree with what CivetWeb will do. */
/* Whether the request came with a body that was not read to its end. */
static int body_left(http_req *req)
{
    int body = req->ri->content_length > 0 || mg_get_header(req->conn, "Transfer-Encoding");
    return body && !req->body_done;
}

static int keep_alive(http_req *req)
{
    /* A body left unread (refused before reading it) is discarded, then the connection closes. */
    if (req->close || body_left(req))
        return 0;
    const char *c = mg_get_header(req->conn, "Connection");
    if (c)
        return !strcasestr(c, "close") &&
               (strcasestr(c, "keep-alive") || strcmp(req->ri->http_version, "1.0"));
    return strcmp(req->ri->http_version, "1.0") != 0;
}

/* Status line, headers and body leave in one write: with TCP_NODELAY every
 * write is a packet, and CivetWeb's header helpers write a line at a time. */
static _Atomic int server_stopping;

int http_stopping(void)
{
    return server_stopping;
}

/* Transfer-Encoding: chunked, for replies whose length nobody knows yet
 * (a log followed while it is written). Each produced piece is one chunk. */
static void flush_chunked(http_req *req, buf_t *head)
{
    mg_write(req->conn, head->data, head->len);
    if (strcmp(req->ri->request_method, "HEAD")) {
        char *chunk = xmalloc(65536 + 32);
        size_t got = 0;
        int ok = 1;
        while (ok && !req->producer(req->producer_arg, chunk + 16, 65536, &got) && got) {
            char size[16];
            int n = snprintf(size, sizeof size, "%zx\r\n", got);
            /* size line, data and CRLF in one write: one packet per chunk */
            memcpy(chunk + 16 - n, size, (size_t)n);
            memcpy(chunk + 16 + got, "\r\n", 2);
            ok = mg_write(req->conn, chunk + 16 - n, (size_t)n + got + 2) > 0;
            req->bytes += got;
        }
        if (ok)
            mg_write(req->conn, "0\r\n\r\n", 5);
        free(chunk);
    }
    if (req->producer_done)
        req->producer_done(req->producer_arg);
}

static void flush_stream(http_req *req, buf_t *head)
{
    if (req->stream_length == HTTP_LENGTH_UNKNOWN) {
        flush_chunked(req, head);
        return;
    }
    mg_write(req->conn, head->data, head->len);
    uint64_t sent = 0;
    if (strcmp(req->ri->request_method, "HEAD")) {
        char *chunk = xmalloc(65536);
        size_t got = 0;
        while (sent < req->stream_length && !req->producer(req->producer_arg, chunk, 65536, &got) &&
               got) {
            if (got > req->stream_length - sent)
                got = (size_t)(req->stream_length - sent);
            if (mg_write(req->conn, chunk, got) <= 0)
                break;
            sent += got;
        }
        free(chunk);
        if (sent != req->stream_length)
            log_fields(LOG_WARN, "streamed reply ended early",
                       json_pack("{s:I, s:I}", "sent", (json_int_t)sent, "length",
                                 (json_int_t)req->stream_length));
    }
    if (req->producer_done)
        req->producer_done(req->producer_arg);
}

static void flush_reply(http_req *req)
{
    buf_t out;
    buf_init(&out, 0);
    buf_printf(&out, "HTTP/1.1 %d %s\r\n", req->status,
               mg_get_response_code_text(req->conn, req->status));
    if (req->captured_type)
        buf_printf(&out, "Content-Type: %s\r\n", req->captured_type);
    if (req->producer && req->stream_length == HTTP_LENGTH_UNKNOWN)
        buf_puts(&out, "Transfer-Encoding: chunked\r\n");
    else
        buf_printf(&out, "Content-Length: %zu\r\n",
                   req->producer ? (size_t)req->stream_length : req->captured.len);
    /* no-store unless the handler chose its own caching (the portal's files). */
    int own_cache = 0;
    for (int i = 0; i < req->nheaders; i++)
        own_cache |= !strcasecmp(req->hdr_name[i], "Cache-Control");
    buf_printf(&out,
               "X-Request-Id: %s\r\n%s"
               "X-Content-Type-Options: nosniff\r\nConnection: %s\r\n",
               req->request_id, own_cache ? "" : "Cache-Control: no-store\r\n",
               keep_alive(req) ? "keep-alive" : "close");
    for (int i = 0; i < req->nheaders; i++)
        buf_printf(&out, "%s: %s\r\n", req->hdr_name[i], req->hdr_value[i]);
    buf_puts(&out, "\r\n");
    if (req->producer) {
        flush_stream(req, &out);
        buf_free(&out);
        return;
    }
    if (req->captured.len && strcmp(req->ri->request_method, "HEAD"))
        buf_append(&out, req->captured.data, req->captured.len);
    mg_write(req->conn, out.data, out.len);
    buf_free(&out);
}

void http_reply_stream(http_req *req, int status, const char *content_type, uint64_t length,
                       http_producer next, void (*done)(void *arg), void *arg)
{
    if (req->replied) {
        if (done)
            done(arg);
        return;
    }
    req->replied = 1;
    req->status = status;
    req->bytes = length == HTTP_LENGTH_UNKNOWN ? 0 : (size_t)length;
    req->captured_type = content_type ? xstrdup(content_type) : NULL;
    req->producer = next;
    req->producer_done = done;
    req->producer_arg = arg;
    req->stream_length = length;
}

void http_reply_json(http_req *req, int status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    if (!text) {
        http_reply_bytes(req, status, "application/json", "{}", 2);
        return;
    }
    http_reply_bytes(req, status, "application/json", text, strlen(text));
    free(text);
}

void http_reply_empty(http_req *req, int status)
{
    http_reply_bytes(req, status, NULL, "", 0);
}

/* Copies a request path for JSON and logs: bytes outside printable ASCII
 * are percent-encoded, since a decoded path may hold anything. */
static void printable_path(const char *in, char *out, size_t outlen)
{
    static const char hex[] = "0123456789ABCDEF";
    size_t o = 0;
    for (; *in && o + 4 < outlen; in++) {
        unsigned char c = (unsigned char)*in;
        if (c < 0x20 || c >= 0x7f || c == '%') {
            out[o++] = '%';
            out[o++] = hex[c >> 4];
            out[o++] = hex[c & 15];
        } else {
            out[o++] = (char)c;
        }
    }
    out[o] = '\0';
}

static void problem_send(http_req *req, int status, const char *slug, const char *title,
                         json_t *errors, const char *detail)
{
    char type[128], instance[512];
    snprintf(type, sizeof type, HTTP_PROBLEM_BASE "%s", slug);
    printable_path(http_path(req), instance, sizeof instance);
    json_t *d = json_string(detail);
    if (!d) /* not UTF-8: say so rather than echo the bytes */
        d = json_string("the request holds bytes that are not UTF-8");
    json_t *p = json_pack("{s:s, s:s, s:i, s:o, s:s, s:s}", "type", type, "title", title,
                          "status", status, "detail", d, "instance", instance, "request_id",
                          req->request_id);
    if (errors)
        json_object_set_new(p, "errors", errors);
    char *text = json_dumps(p, JSON_COMPACT);
    json_decref(p);
    http_reply_bytes(req, status, "application/problem+json", text, strlen(text));
    free(text);
}

void http_problem(http_req *req, int status, const char *slug, const char *title,
                  json_t *errors, const char *detail_fmt, ...)
{
    char detail[512];
    va_list ap;
    va_start(ap, detail_fmt);
    vsnprintf(detail, sizeof detail, detail_fmt, ap);
    va_end(ap);
    problem_send(req, status, slug, title, errors, detail);
}

void http_problem_unavailable(http_req *req)
{
    http_add_header(req, "Retry-After", "5");
    http_problem(req, 503, "unavailable", "Service unavailable", NULL,
                 "the database cannot be reached; retry later");
}

void http_problem_field(http_req *req, const char *field, const char *reason)
{
    json_t *errors = json_pack("[{s:s, s:s}]", "field", field, "reason", reason);
    http_problem(req, 400, "validation", "Invalid request", errors, "%s: %s", field, reason);
}

/* ---- bodies ----------------------------------------------------------- */

static int is_json_type(const char *ct)
{
    if (!ct)
        return 0;
    while (*ct == ' ')
        ct++;
    size_t n = strcspn(ct, "; ");
    return (n == 16 && !strncasecmp(ct, "application/json", 16));
}

/* A body that fell below the minimum rate: the watchdog has shut the socket for reading. */
static int body_too_slow(http_req *req)
{
    req->close = 1;
    http_problem(req, 408, "body-too-slow", "Request body too slow", NULL,
                 "the body arrived slower than %d bytes a second",
                 conn_limits_settings_of(req->slot)->body_min_rate);
    return RST_EIO;
}

/* How much of the body to ask mg_read for: it returns only once it has that much (or the body
 * ends), so the rate deadline is armed for exactly these bytes. */
static size_t body_want(long long declared, uint64_t received, size_t cap)
{
    if (declared >= 0 && (uint64_t)declared - received < cap)
        return (size_t)((uint64_t)declared - received);
    return cap;
}

int http_body(http_req *req, const char **data, size_t *len)
{
    if (req->body_read) {
        *data = req->body.data ? req->body.data : "";
        *len = req->body.len;
        return RST_OK;
    }
    long limit = req->srv->opts.max_body_bytes;
    long long declared = req->ri->content_length;
    if (declared > limit) {
        http_problem(req, 413, "body-too-large", "Request body too large", NULL,
                     "the body is %lld bytes; the limit is %ld", declared, limit);
        return RST_ETOOBIG;
    }
    char chunk[8192];
    conn_limits_body_begin(req->slot);
    for (;;) {
        size_t want = body_want(declared, req->body.len, sizeof chunk);
        if (!want)
            break;
        conn_limits_body_expect(req->slot, req->body.len, want);
        int n = mg_read(req->conn, chunk, want);
        if (n <= 0 || conn_limits_body_too_slow(req->slot))
            break;
        if (buf_append(&req->body, chunk, (size_t)n)) {
            conn_limits_body_end(req->slot);
            http_problem(req, 413, "body-too-large", "Request body too large", NULL,
                         "the body is larger than the limit of %ld bytes", limit);
            return RST_ETOOBIG;
        }
    }
    if (conn_limits_body_end(req->slot))
        return body_too_slow(req);
    /* A short body reads as EOF: compare with what was declared. */
    if (declared >= 0 && (long long)req->body.len != declared) {
        http_problem(req, 400, "malformed-body", "Malformed request body", NULL,
                     "the body ended after %zu of %lld declared bytes", req->body.len, declared);
        return RST_EINVAL;
    }
    req->body_read = 1;
    req->body_done = 1;
    *data = req->body.data ? req->body.data : "";
    *len = req->body.len;
    return RST_OK;
}

int http_body_stream(http_req *req, uint64_t limit,
                     int (*fn)(void *arg, const void *data, size_t len), void *arg, uint64_t *total)
{
    *total = 0;
    long long declared = req->ri->content_length;
    if (declared >= 0 && (uint64_t)declared > limit) {
        http_problem(req, 413, "body-too-large", "Request body too large", NULL,
                     "the upload is %lld bytes; the limit is %llu", declared,
                     (unsigned long long)limit);
        return RST_ETOOBIG;
    }
    char *chunk = xmalloc(65536);
    int rc = RST_OK;
    conn_limits_body_begin(req->slot);
    for (;;) {
        /* Small reads first: the rate deadline covers what one read waits for. */
        uint64_t cap = *total / 16;
        cap = cap < 8192 ? 8192 : cap > 65536 ? 65536 : cap;
        size_t want = body_want(declared, *total, (size_t)cap);
        if (!want)
            break;
        conn_limits_body_expect(req->slot, *total, want);
        int n = mg_read(req->conn, chunk, want);
        if (n <= 0 || conn_limits_body_too_slow(req->slot))
            break;
        if (*total + (uint64_t)n > limit) {
            http_problem(req, 413, "body-too-large", "Request body too large", NULL,
                         "the upload is larger than the limit of %llu bytes",
                         (unsigned long long)limit);
            rc = RST_ETOOBIG;
            break;
        }
        *total += (uint64_t)n;
        rc = fn(arg, chunk, (size_t)n);
        if (rc)
            break;
    }
    free(chunk);
    if (conn_limits_body_end(req->slot) && rc == RST_OK) {
        req->body_read = 1;
        return body_too_slow(req);
    }
    if (rc == RST_OK && declared >= 0 && *total != (uint64_t)declared) {
        http_problem(req, 400, "malformed-body", "Malformed request body", NULL,
                     "the body ended after %llu of %lld declared bytes", (unsigned long long)*total,
                     declared);
        rc = RST_EINVAL;
    }
    req->body_read = 1;
    req->body_done = rc == RST_OK;
    return rc;
}

int http_read_json(http_req *req, json_t **out)
{
    *out = NULL;
    if (!is_json_type(http_header(req, "Content-Type"))) {
        http_problem(req, 415, "unsupported-media-type", "Unsupported media type", NULL,
                     "the body must be application/json");
        return RST_EINVAL;
    }
    const char *data;
    size_t len;
    int rc = http_body(req, &data, &len);
    if (rc)
        return rc;
    json_error_t err;
    json_t *v = NULL;
    rc = jsonguard_loadb(data, len, JSON_REJECT_DUPLICATES, &v, &err);
    if (rc == RST_ETOOBIG) { /* refused before parsing: jansson recurses per level */
        http_problem_field(req, "body", "must be nested at most 32 levels deep");
        return RST_EINVAL;
    }
    if (!v) {
        json_t *errors = json_pack("[{s:s, s:s, s:i, s:i}]", "field", "body", "reason", err.text,
                                   "line", err.line, "column", err.column);
        http_problem(req, 400, "malformed-json", "Malformed JSON", errors,
                     "line %d, column %d: %s", err.line, err.column, err.text);
        return RST_EINVAL;
    }
    if (!json_is_object(v)) {
        json_decref(v);
        http_problem_field(req, "body", "must be a JSON object nested at most 32 levels deep");
        return RST_EINVAL;
    }
    *out = v;
    return RST_OK;
}

/* ---- dispatch --------------------------------------------------------- */

static int valid_request_id(const char *s)
{
    size_t n = 0;
    for (; s[n]; n++) {
        unsigned char c = (unsigned char)s[n];
        if (!(isalnum(c) || c == '-' || c == '_' || c == '.' || c == ':'))
            return 0;
        if (n >= 64)
            return 0;
    }
    return n > 0;
}

/* req->client_addr: the peer, or the client that trusted proxies forwarded for. Every
 * X-Forwarded-For line counts, in order, so a client's own line cannot hide the proxy's. */
static void client_address(http_req *req)
{
    const char *trusted = req->srv->opts.trusted_proxies;
    buf_t xff;
    buf_init(&xff, 0); /* headers are bounded by CivetWeb already */
    for (int i = 0; trusted && *trusted && i < req->ri->num_headers; i++) {
        if (strcasecmp(req->ri->http_headers[i].name, "X-Forwarded-For"))
            continue;
        if (xff.len)
            buf_puts(&xff, ",");
        buf_puts(&xff, req->ri->http_headers[i].value);
    }
    clientaddr_resolve(req->ri->remote_addr, xff.len ? xff.data : NULL, trusted, req->client_addr,
                       sizeof req->client_addr);
    buf_free(&xff);
}

static void allow_header(http_req *req, const char *path)
{
    buf_t allow;
    buf_init(&allow, 0);
    http_server *s = req->srv;
    for (size_t i = 0; i < s->nroutes; i++) {
        if (!template_match(s->routes[i].path, path, NULL))
            continue;
        if (allow.len)
            buf_puts(&allow, ", ");
        buf_puts(&allow, s->routes[i].method);
        if (!strcmp(s->routes[i].method, "GET"))
            buf_puts(&allow, ", HEAD");
    }
    buf_puts(&allow, ", OPTIONS");
    http_add_header(req, "Allow", allow.data);
    buf_free(&allow);
}

static int dispatch(struct mg_connection *conn, void *cbdata)
{
    http_server *srv = cbdata;
    int64_t start = now_ms_monotonic();
    http_req req;
    memset(&req, 0, sizeof req);
    req.conn = conn;
    req.ri = mg_get_request_info(conn);
    req.srv = srv;
    req.slot = mg_get_user_connection_data(conn);
    req.route = "unmatched";
    buf_init(&req.body, (size_t)srv->opts.max_body_bytes);
    buf_init(&req.captured, 0);

    /* Our own id always: a client's would let its requests pose as others' in logs and the
     * audit. Its id is kept beside ours, for correlation. */
    random_hex_id(req.request_id);
    const char *rid = mg_get_header(conn, "X-Request-Id");
    if (rid && valid_request_id(rid))
        snprintf(req.client_request_id, sizeof req.client_request_id, "%s", rid);
    log_set_request_id(req.request_id);
    client_address(&req);

    const char *method = req.ri->request_method;
    const char *path = req.ri->local_uri ? req.ri->local_uri : "/";
    const char *match_method = !strcmp(method, "HEAD") ? "GET" : method;
    int known = 0;
    int idx = http_route_match(srv->routes, srv->nroutes, match_method, path, &known);
    if (conn_limits_request_begin(req.slot, req.ri) == CONN_OVER_ADDRESS) {
        /* Its headers came before the watchdog could refuse the connection. */
        req.close = 1;
        http_add_header(&req, "Retry-After", "1");
        http_problem(&req, 429, "too-many-connections", "Too many connections", NULL,
                     "this address holds %d connections already; the limit is %d",
                     conn_limits_settings_of(req.slot)->per_address,
                     conn_limits_settings_of(req.slot)->per_address);
        flush_reply(&req);
    } else if (idx >= 0) {
        const http_route *r = &srv->routes[idx];
        req.route = r->path;
        template_match(r->path, path, &req);
        if (!srv->opts.before || !srv->opts.before(&req, r))
            r->handler(&req);
        if (!req.replied) {
            log_msg(LOG_ERROR, "handler for %s %s sent no reply", r->method, r->path);
            http_problem(&req, 500, "internal", "Internal error", NULL, "no response was produced");
        }
        if (srv->opts.after)
            srv->opts.after(&req, r);
        flush_reply(&req);
    } else if (known && !strcmp(method, "OPTIONS")) {
        allow_header(&req, path);
        http_reply_empty(&req, 204);
        flush_reply(&req);
    } else if (known) {
        allow_header(&req, path);
        http_problem(&req, 405, "method-not-allowed", "Method not allowed", NULL,
                     "%.16s is not allowed on this resource", method);
        flush_reply(&req);
    } else {
        http_problem(&req, 404, "not-found", "Not found", NULL, "no resource at this path");
        flush_reply(&req);
    }

    double secs = (double)(now_ms_monotonic() - start) / 1000.0;
    /* Methods outside the table are logged under one label to bound the series. */
    static const char *const methods[] = {"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE",
                                          "OPTIONS"};
    const char *mlabel = "OTHER";
    for (size_t i = 0; i < sizeof methods / sizeof methods[0]; i++)
        if (!strcmp(methods[i], method))
            mlabel = methods[i];
    metrics_observe_request(mlabel, req.route, req.status, secs);
    char logged_path[512];
    printable_path(path, logged_path, sizeof logged_path);
    if (log_enabled(LOG_INFO))
        log_fields(
            LOG_INFO, "request",
            json_pack("{s:s, s:s, s:s, s:i, s:I, s:f, s:s, s:s?, s:s?}", "method", mlabel, "route",
                      req.route, "path", logged_path, "status", req.status, "bytes",
                      (json_int_t)req.bytes, "duration_ms", secs * 1000.0, "remote",
                      req.client_addr, "peer",
                      strcmp(req.client_addr, req.ri->remote_addr) ? req.ri->remote_addr : NULL,
                      "client_request_id", http_client_request_id(&req)));
    log_set_request_id(NULL);
    if (req.close)
        conn_limits_shut(req.slot);
    conn_limits_request_end(req.slot, body_left(&req));
    for (int i = 0; i < req.nparams; i++)
        free(req.param_value[i]);
    for (int i = 0; i < req.nheaders; i++) {
        free(req.hdr_name[i]);
        free(req.hdr_value[i]);
    }
    buf_free(&req.body);
    buf_free(&req.captured);
    free(req.captured_type);
    free(req.captured_location);
    return req.status;
}

static int log_civetweb(const struct mg_connection *conn, const char *message)
{
    (void)conn;
    log_fields(LOG_WARN, "civetweb", json_pack("{s:s}", "detail", message));
    return 1;
}

/* CivetWeb calls these on the worker thread that takes a connection, before it reads anything,
 * and when it closes it (before the socket is closed). */
static int open_connection(const struct mg_connection *conn, void **data)
{
    http_server *srv = mg_get_user_context_data(conn);
    *data = conn_limits_open(srv->limits, conn);
    return 0;
}

static void close_connection(const struct mg_connection *conn)
{
    conn_limits_closed(mg_get_user_connection_data(conn));
}

http_server *http_server_start(const http_options *opts, const http_route *routes,
                               size_t nroutes)
{
    http_server *srv = xcalloc(1, sizeof *srv);
    srv->routes = routes;
    srv->nroutes = nroutes;
    srv->opts = *opts;
    char threads[16], request_timeout[16];
    snprintf(threads, sizeof threads, "%d", opts->threads);
    /* CivetWeb 1.15 bounds the headers in total too, but only to about twice this (the check
     * runs after each read, which may wait this long); conn_limits holds the bound itself. It
     * also bounds a body or a write that stalls completely. */
    snprintf(request_timeout, sizeof request_timeout, "%d",
             opts->limits ? opts->limits->header_timeout_ms : 10000);
    /* tcp_nodelay: without it keep-alive requests wait ~40 ms (Nagle and
     * delayed ACK). Empty CORS methods: OPTIONS reaches our router instead of
     * CivetWeb answering pre-flights with '*'. */
    const char *options[] = {"listening_ports",
                             opts->listen,
                             "num_threads",
                             threads,
                             "enable_keep_alive",
                             "yes",
                             "keep_alive_timeout_ms",
                             "5000",
                             "tcp_nodelay",
                             "1",
                             "request_timeout_ms",
                             request_timeout,
                             "enable_directory_listing",
                             "no",
                             "access_control_allow_methods",
                             "",
                             "listen_backlog",
                             "512",
                             "connection_queue",
                             "256",
                             NULL};
    struct mg_callbacks cb;
    memset(&cb, 0, sizeof cb);
    cb.log_message = log_civetweb;
    cb.init_connection = open_connection;
    cb.connection_close = close_connection;
    if (opts->limits)
        srv->limits = conn_limits_new(opts->limits);
    srv->opts.limits = NULL; /* copied into srv->limits; the caller's may go */
    srv->ctx = mg_start(&cb, srv, options);
    if (!srv->ctx) {
        log_fields(LOG_ERROR, "cannot start the HTTP server",
                   json_pack("{s:s}", "listen", opts->listen));
        conn_limits_free(srv->limits);
        free(srv);
        return NULL;
    }
    mg_set_request_handler(srv->ctx, "/", dispatch, srv);
    return srv;
}

void http_server_stop(http_server *srv)
{
    if (!srv)
        return;
    server_stopping = 1; /* followers of live streams end theirs */
    mg_stop(srv->ctx);
    conn_limits_free(srv->limits);
    free(srv);
}
