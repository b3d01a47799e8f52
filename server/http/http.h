/* HTTP plumbing over CivetWeb: a route table with path templates, bounded
 * JSON bodies, problem+json errors, request ids and the access log. */
#ifndef ROASTERY_HTTP_H
#define ROASTERY_HTTP_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#include "http/problem.h"

typedef struct conn_limits_settings conn_limits_settings; /* http/conn_limits.h */

typedef struct http_req http_req;
typedef struct http_server http_server;

/* A handler answers through http_reply_* or http_problem exactly once. */
typedef void (*http_handler)(http_req *req);

/* Route flags. */
enum {
    HTTP_PUBLIC = 1, /* no token needed (health, metrics, contract, sign-in) */
};

typedef struct {
    const char *method;   /* "GET", "POST", ... */
    const char *path;     /* template, e.g. "/api/v1/operations/{id}" */
    http_handler handler;
    unsigned flags;
} http_route;

/* Runs before the handler of every matched route; returns non-zero when it
 * has answered the request itself (e.g. 401), and the handler is skipped. */
typedef int (*http_before_fn)(http_req *req, const http_route *route);
/* Runs after every matched route's reply has been sent. */
typedef void (*http_after_fn)(http_req *req, const http_route *route);

typedef struct {
    const char *listen;
    int threads;
    long max_body_bytes;
    void *app; /* handed to handlers through http_app */
    http_before_fn before;
    http_after_fn after;
    const char *trusted_proxies; /* addresses/CIDRs whose X-Forwarded-For is believed; NULL:
                                    none (ROASTERY_TRUSTED_PROXIES) */
    /* Deadlines and caps per connection (http/conn_limits.h; copied); NULL = none. */
    const conn_limits_settings *limits;
} http_options;

/* Starts serving routes (borrowed: must outlive the server).
 * new: stop with http_server_stop; NULL (and a log line) when CivetWeb
 * cannot start, e.g. the port is taken. */
http_server *http_server_start(const http_options *opts, const http_route *routes,
                               size_t nroutes);
/* Stops accepting, lets in-flight requests finish, frees the server. */
void http_server_stop(http_server *srv);

/* Finds the route for method+path. Returns the route index, or -1 with
 * *path_known set when the path exists under another method (405).
 * Exposed for tests. params receives up to 8 (name,value) pairs. */
int http_route_match(const http_route *routes, size_t n, const char *method, const char *path,
                     int *path_known);

/* Request accessors. Returned strings are borrowed: valid during the handler. */
void *http_app(http_req *req);
const char *http_method(http_req *req);
const char *http_param(http_req *req, const char *name);
const char *http_header(http_req *req, const char *name);
const char *http_request_id(http_req *req);
/* Copies query parameter name into dst. Returns its length, -1 when absent,
 * -2 when longer than dstlen-1. */
int http_query(http_req *req, const char *name, char *dst, size_t dstlen);

const char *http_path(http_req *req);
/* The client's address: the peer's, or, when the peer is a trusted proxy, the right-most
 * X-Forwarded-For hop that is not one (borrowed, valid during the request). */
const char *http_remote_addr(http_req *req);
/* The TCP peer itself (the ingress, behind one). */
const char *http_peer_addr(http_req *req);
/* The client's own X-Request-Id when it sent a well-formed one, else NULL. http_request_id is
 * always ours. */
const char *http_client_request_id(http_req *req);
int http_status(http_req *req);

/* The caller's identity, set by the before hook (borrowed pointer kept as is). */
void http_set_identity(http_req *req, void *identity);
void *http_identity(http_req *req);
/* Counts this request against the concurrent requests of identity key (copied) until its reply
 * is sent. Non-zero when key is at its cap: then it has answered 429 with Retry-After. */
int http_limit_identity(http_req *req, const char *key);

/* Reads the whole body once, up to the JSON limit; later calls return the
 * same bytes. On failure answers 400/413 itself and returns non-zero.
 * *data is borrowed: valid during the request. */
int http_body(http_req *req, const char **data, size_t *len);

/* The reply as it will be sent (replies are held until the after hook has
 * run); pointers borrowed, valid during the request. 0 before any reply. */
int http_captured(http_req *req, int *status, const char **content_type, const char **body,
                  size_t *len, const char **location);

/* Streams the body to fn in chunks, without holding it: for uploads far
 * larger than memory. Stops with 413 beyond limit bytes and 400 when the body
 * is shorter than declared (both answered here); a non-zero return of fn
 * stops reading and is returned (the caller answers). *total gets the bytes. */
int http_body_stream(http_req *req, uint64_t limit,
                     int (*fn)(void *arg, const void *data, size_t len), void *arg,
                     uint64_t *total);

/* Produces the next bytes of a streamed reply into buf (at most cap); *got = 0
 * at the end. Non-zero aborts the connection. */
typedef int (*http_producer)(void *arg, char *buf, size_t cap, size_t *got);

/* Replies with exactly length bytes drawn from next (after the after hook,
 * like every reply); done(arg) runs afterwards whatever happened. With
 * length HTTP_LENGTH_UNKNOWN the reply is chunked and ends when next
 * produces nothing: next may wait for more (a followed log), but must end
 * once http_stopping() says the server is shutting down. */
#define HTTP_LENGTH_UNKNOWN UINT64_MAX
int http_stopping(void);
void http_reply_stream(http_req *req, int status, const char *content_type, uint64_t length,
                       http_producer next, void (*done)(void *arg), void *arg);

/* Reads and parses the JSON body. On failure answers the request itself
 * (400, 413 or 415 problem) and returns non-zero. new: *out, json_decref. */
int http_read_json(http_req *req, json_t **out);

/* Adds a response header for the reply to come. Copies both strings. */
void http_add_header(http_req *req, const char *name, const char *value);

/* Sends body as application/json. Steals body. */
void http_reply_json(http_req *req, int status, json_t *body);
/* Sends len bytes of body (borrowed) with the given content type. */
void http_reply_bytes(http_req *req, int status, const char *content_type, const void *body,
                      size_t len);
void http_reply_empty(http_req *req, int status);

/* Sends an RFC 9457 problem. slug names the stable type URI
 * (https://roastery.dev/problems/<slug>); errors, when given, is an array of
 * {field, reason} objects and is stolen. */
void http_problem(http_req *req, int status, const char *slug, const char *title,
                  json_t *errors, const char *detail_fmt, ...)
    __attribute__((format(printf, 6, 7)));
/* 503 with Retry-After for a database that cannot be reached. */
void http_problem_unavailable(http_req *req);
/* 400 with one field error. */
void http_problem_field(http_req *req, const char *field, const char *reason);


#endif
