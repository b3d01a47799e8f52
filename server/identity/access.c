/* Request guard. Order matters: the token first (nothing else is trusted
 * before it), then the rate limit (cheap, in memory), then the database. */
#include "identity/access.h"
#include "http/app.h"
#include "core/log.h"
#include "core/metrics.h"
#include "lib/util.h"

#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define BUCKETS 1024
#define SEEN_REFRESH_MS 60000 /* write users.last_seen at most once a minute */

typedef struct entry {
    char oid[64];
    double tokens;
    int64_t refill_ms;
    int64_t seen_ms;
    struct entry *next;
} entry;

struct access_guard {
    db_pool *pool;
    auth_verifier *verifier;
    double rate;
    double burst;
    pthread_mutex_t mu;
    entry *table[BUCKETS];
};

access_guard *access_new(db_pool *pool, auth_verifier *verifier, const config *cfg)
{
    access_guard *a = xcalloc(1, sizeof *a);
    a->pool = pool;
    a->verifier = verifier;
    a->rate = cfg->rate_limit_per_second;
    a->burst = cfg->rate_limit_burst;
    pthread_mutex_init(&a->mu, NULL);
    return a;
}

void access_free(access_guard *a)
{
    if (!a)
        return;
    for (int i = 0; i < BUCKETS; i++) {
        entry *e = a->table[i];
        while (e) {
            entry *n = e->next;
            free(e);
            e = n;
        }
    }
    pthread_mutex_destroy(&a->mu);
    free(a);
}

static access_guard *access_of(http_req *req)
{
    app_ctx *app = http_app(req);
    return app->guard;
}

caller *access_caller(http_req *req)
{
    return http_identity(req);
}

void access_set_subject(http_req *req, const char *subject)
{
    caller *c = access_caller(req);
    if (c)
        snprintf(c->subject, sizeof c->subject, "%s", subject);
}

int access_verify_token(http_req *req, auth_identity *out, char *reason, size_t reasonlen)
{
    return auth_verify(access_of(req)->verifier, http_header(req, "Authorization"), out, reason,
                       reasonlen);
}

/* ---- in-memory state per identity ------------------------------------- */

static entry *lookup(access_guard *a, const char *oid)
{
    unsigned h = 5381;
    for (const char *p = oid; *p; p++)
        h = h * 33 + (unsigned char)*p;
    entry **slot = &a->table[h % BUCKETS];
    for (entry *e = *slot; e; e = e->next)
        if (!strcmp(e->oid, oid))
            return e;
    entry *e = xcalloc(1, sizeof *e);
    snprintf(e->oid, sizeof e->oid, "%s", oid);
    e->tokens = a->burst;
    e->refill_ms = now_ms_monotonic();
    e->next = *slot;
    *slot = e;
    return e;
}

/* Token bucket. Returns 0 when allowed, else the seconds to wait. */
static int rate_limited(access_guard *a, const char *oid, int *need_seen_write)
{
    int64_t now = now_ms_monotonic();
    pthread_mutex_lock(&a->mu);
    entry *e = lookup(a, oid);
    *need_seen_write = e->seen_ms == 0 || now - e->seen_ms > SEEN_REFRESH_MS;
    int wait = 0;
    if (a->rate > 0) {
        e->tokens += (double)(now - e->refill_ms) / 1000.0 * a->rate;
        if (e->tokens > a->burst)
            e->tokens = a->burst;
        e->refill_ms = now;
        if (e->tokens >= 1.0)
            e->tokens -= 1.0;
        else
            wait = (int)ceil((1.0 - e->tokens) / a->rate);
    }
    if (!wait && *need_seen_write)
        e->seen_ms = now;
    pthread_mutex_unlock(&a->mu);
    return wait;
}

static void forget_seen(access_guard *a, const char *oid)
{
    pthread_mutex_lock(&a->mu);
    lookup(a, oid)->seen_ms = 0;
    pthread_mutex_unlock(&a->mu);
}

/* ---- audit ------------------------------------------------------------- */

void access_audit(access_guard *a, PGconn *conn, const caller *who, const char *action,
                  const char *subject, const char *outcome, int status, const char *reason,
                  const char *request_id, const char *client)
{
    PGconn *own = NULL;
    if (!conn) {
        if (db_acquire(a->pool, 2000, &own)) {
            log_fields(LOG_ERROR, "audit row lost: database unavailable",
                       json_pack("{s:s, s:s, s:s?}", "action", action, "outcome", outcome,
                                 "actor", who ? who->id.oid : NULL));
            return;
        }
        conn = own;
    }
    char st[16];
    snprintf(st, sizeof st, "%d", status);
    const char *p[] = {who ? who->id.oid : NULL, who ? who->id.name : NULL, action,
                       subject ? subject : "", outcome, st, reason, request_id, client};
    PGresult *r = db_exec(conn,
                          "INSERT INTO audit_log(actor_oid, actor_name, action, subject, outcome,"
                          " status, reason, request_id, client_addr)"
                          " VALUES ($1, $2, $3, $4, $5, $6::int, $7, $8, $9)",
                          9, p, NULL);
    PQclear(r);
    if (own)
        db_release(a->pool, own);
}

/* ---- idempotency ------------------------------------------------------- */

static int valid_key(const char *k)
{
    size_t n = strlen(k);
    if (n == 0 || n > 128)
        return 0;
    for (size_t i = 0; i < n; i++)
        if (k[i] < 0x21 || k[i] > 0x7e)
            return 0;
    return 1;
}

static void request_hash(http_req *req, const char *body, size_t len, char out[65])
{
    EVP_MD_CTX *md = EVP_MD_CTX_new();
    unsigned char digest[32];
    unsigned int dlen = 0;
    EVP_DigestInit_ex(md, EVP_sha256(), NULL);
    EVP_DigestUpdate(md, http_method(req), strlen(http_method(req)));
    EVP_DigestUpdate(md, "\n", 1);
    EVP_DigestUpdate(md, http_path(req), strlen(http_path(req)));
    EVP_DigestUpdate(md, "\n", 1);
    EVP_DigestUpdate(md, body, len);
    EVP_DigestFinal_ex(md, digest, &dlen);
    EVP_MD_CTX_free(md);
    for (int i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", digest[i]);
}

/* Returns 1 when it answered (replay, conflict, error), 0 to run the handler. */
static int idempotency_begin(access_guard *a, http_req *req, caller *c, const char *key)
{
    if (!valid_key(key)) {
        http_problem_field(req, "Idempotency-Key", "must be 1 to 128 printable ASCII characters");
        return 1;
    }
    const char *body;
    size_t len;
    if (http_body(req, &body, &len))
        return 1;
    char hash[65];
    request_hash(req, body, len, hash);
    PGconn *conn = NULL;
    if (db_acquire(a->pool, 2000, &conn)) {
        http_problem_unavailable(req);
        return 1;
    }
    const char *p[] = {c->id.oid, key, http_method(req), http_path(req), hash};
    PGresult *r = db_exec(conn,
                          "WITH gone AS (DELETE FROM idempotency_keys WHERE actor_oid = $1"
                          " AND key = $2 AND expires_at < now())"
                          " INSERT INTO idempotency_keys(actor_oid, key, method, path,"
                          " request_hash) VALUES ($1, $2, $3, $4, $5)"
                          " ON CONFLICT (actor_oid, key) DO NOTHING RETURNING 1",
                          5, p, NULL);
    if (r && PQntuples(r) == 1) {
        PQclear(r);
        db_release(a->pool, conn);
        snprintf(c->idem_key, sizeof c->idem_key, "%s", key);
        return 0;
    }
    PQclear(r);
    r = db_exec(conn,
                "SELECT request_hash, status, content_type, location, response"
                " FROM idempotency_keys WHERE actor_oid = $1 AND key = $2",
                2, p, NULL);
    db_release(a->pool, conn);
    if (!r || PQntuples(r) == 0) {
        PQclear(r);
        http_problem_unavailable(req);
        return 1;
    }
    if (strcmp(PQgetvalue(r, 0, 0), hash)) {
        http_problem(req, 422, "idempotency-key-reused", "Idempotency key reused", NULL,
                     "this Idempotency-Key was used with a different request; use a new key");
    } else if (PQgetisnull(r, 0, 1)) {
        http_add_header(req, "Retry-After", "1");
        http_problem(req, 409, "idempotency-in-progress", "Request in progress", NULL,
                     "the first request with this Idempotency-Key has not finished");
    } else {
        long status = 200;
        parse_long(PQgetvalue(r, 0, 1), 100, 599, &status);
        http_add_header(req, "Idempotent-Replayed", "true");
        if (db_value(r, 0, 3))
            http_add_header(req, "Location", db_value(r, 0, 3));
        http_reply_bytes(req, (int)status, db_value(r, 0, 2), PQgetvalue(r, 0, 4),
                         (size_t)PQgetlength(r, 0, 4));
    }
    PQclear(r);
    return 1;
}

static void idempotency_finish(access_guard *a, http_req *req, caller *c)
{
    int status;
    const char *ctype, *body, *location;
    size_t len;
    PGconn *conn = NULL;
    if (db_acquire(a->pool, 2000, &conn))
        return; /* the in-flight row expires; a retry then gets 409 until then */
    const char *p[8] = {c->id.oid, c->idem_key};
    PGresult *r;
    if (http_captured(req, &status, &ctype, &body, &len, &location) && status < 500) {
        char st[16];
        snprintf(st, sizeof st, "%d", status);
        char *text = xstrndup(body, len);
        p[2] = st;
        p[3] = ctype;
        p[4] = location;
        p[5] = text;
        r = db_exec(conn,
                    "UPDATE idempotency_keys SET status = $3::int, content_type = $4,"
                    " location = $5, response = $6 WHERE actor_oid = $1 AND key = $2",
                    6, p, NULL);
        free(text);
    } else {
        /* A server-side failure is not an answer worth replaying. */
        r = db_exec(conn, "DELETE FROM idempotency_keys WHERE actor_oid = $1 AND key = $2", 2,
                    p, NULL);
    }
    PQclear(r);
    db_release(a->pool, conn);
}

/* ---- hooks ------------------------------------------------------------- */

static void www_authenticate(http_req *req, const char *reason)
{
    char h[256];
    snprintf(h, sizeof h, "Bearer realm=\"roastery\", error=\"invalid_token\", "
                          "error_description=\"%s\"", reason);
    http_add_header(req, "WWW-Authenticate", h);
}

static int record_user(access_guard *a, const caller *c)
{
    char roles[128], arr[140];
    auth_roles_format(c->id.roles, roles, sizeof roles);
    snprintf(arr, sizeof arr, "{%s}", roles);
    PGconn *conn = NULL;
    if (db_acquire(a->pool, 2000, &conn))
        return RST_EUNAVAIL;
    const char *p[] = {c->id.oid, c->id.tid, c->id.name, arr};
    PGresult *r = db_exec(conn,
                          "INSERT INTO users(oid, tid, name, roles) VALUES ($1, $2, $3, $4)"
                          " ON CONFLICT (oid) DO UPDATE SET tid = EXCLUDED.tid,"
                          " name = EXCLUDED.name, roles = EXCLUDED.roles, last_seen = now()",
                          4, p, NULL);
    db_release(a->pool, conn);
    if (!r)
        return RST_EUNAVAIL;
    PQclear(r);
    return RST_OK;
}

int access_before(http_req *req, const http_route *route)
{
    if (route->flags & HTTP_PUBLIC)
        return 0;
    access_guard *a = access_of(req);
    caller *c = xcalloc(1, sizeof *c);
    char reason[160];
    if (auth_verify(a->verifier, http_header(req, "Authorization"), &c->id, reason,
                    sizeof reason)) {
        free(c);
        metrics_count("roastery_auth_failures_total", "Requests refused for their token.");
        www_authenticate(req, reason);
        http_problem(req, 401, "invalid-token", "Unauthorized", NULL, "%s", reason);
        log_fields(LOG_WARN, "token refused", json_pack("{s:s}", "reason", reason));
        access_audit(a, NULL, NULL, "auth.token", http_path(req), "denied", 401, reason,
                     http_request_id(req), http_remote_addr(req));
        return 1;
    }
    http_set_identity(req, c);
    int seen_write = 0;
    int wait = rate_limited(a, c->id.oid, &seen_write);
    if (wait) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", wait);
        http_add_header(req, "Retry-After", ra);
        metrics_count("roastery_rate_limited_total", "Requests refused by the rate limit.");
        http_problem(req, 429, "rate-limited", "Too many requests", NULL,
                     "this identity is over its request rate; retry after %d s", wait);
        return 1;
    }
    if (seen_write && record_user(a, c)) {
        forget_seen(a, c->id.oid);
        http_problem_unavailable(req);
        return 1;
    }
    /* Uploads (text/csv and other streamed bodies) are never held in memory;
     * they are recognised by the hash of their bytes instead. */
    const char *key = http_header(req, "Idempotency-Key");
    const char *ctype = http_header(req, "Content-Type");
    if (key && !strcmp(http_method(req), "POST") &&
        (!ctype || !strncasecmp(ctype, "application/json", 16)))
        return idempotency_begin(a, req, c, key);
    return 0;
}

static int mutating(const char *method)
{
    return strcmp(method, "GET") && strcmp(method, "HEAD") && strcmp(method, "OPTIONS");
}

void access_after(http_req *req, const http_route *route)
{
    caller *c = access_caller(req);
    if (!c)
        return;
    access_guard *a = access_of(req);
    if (c->idem_key[0])
        idempotency_finish(a, req, c);
    int status = http_status(req);
    if (mutating(http_method(req)) || c->denied) {
        char action[160];
        snprintf(action, sizeof action, "%s %s", route->method, route->path);
        const char *outcome = c->denied || status == 403 ? "denied"
                              : status < 400             ? "succeeded"
                                                         : "failed";
        access_audit(a, NULL, c, action, c->subject[0] ? c->subject : http_path(req), outcome,
                     status, c->deny_reason[0] ? c->deny_reason : NULL, http_request_id(req),
                     http_remote_addr(req));
    }
    http_set_identity(req, NULL);
    free(c);
}
