/* Request guard. Order matters: the token first (nothing else is trusted
 * before it), then the rate limit (cheap, in memory), then the database.
 * Refusals of requests that did not authenticate never queue for the database: each client
 * address has a failure budget (beyond it: 429 from memory), and repeats of one refusal
 * (address, action, status, reason) within a window share one audit row with a count. */
#include "identity/access.h"
#include "http/app.h"
#include "core/log.h"
#include "core/metrics.h"
#include "lib/clientaddr.h"
#include "identity/policy.h"
#include "lib/util.h"

#include <math.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define BUCKETS 1024
#define SEEN_REFRESH_MS 60000 /* write users.last_seen at most once a minute */

typedef struct entry {
    char oid[64];
    double tokens;
    int64_t refill_ms;
    int64_t seen_ms;
    struct entry *next;
} entry;

/* The failure budget of one client address (its /64 for IPv6); key "" = free slot. */
typedef struct {
    char key[CLIENTADDR_MAX];
    double tokens;
    int64_t refill_ms;
} fail_bucket;

/* One refusal being aggregated: the first of a window is written at once, the repeats are
 * counted here and written as one row (count = pending) when the window closes. */
typedef struct {
    int used;
    char actor[64]; /* "" when the caller did not authenticate */
    char client[CLIENTADDR_MAX];
    char action[64];
    char reason[160];
    int status;
    char subject[256]; /* of the window's first refusal */
    int64_t window_start;
    long pending;
} agg_entry;

#define FAIL_SLOTS 4096
#define AGG_SLOTS 4096
#define PROBE 8                   /* slots tried per key before one is taken over */
#define REQUEST_WRITE_WAIT_MS 100 /* a refusal never waits longer for a connection */

struct access_guard {
    db_pool *pool;
    auth_verifier *verifier;
    double rate;
    double burst;
    pthread_mutex_t mu;
    entry *table[BUCKETS];

    double fail_rate; /* per second; 0 = no budget */
    double fail_burst;
    int64_t window_ms;
    pthread_mutex_t agg_mu; /* fails[], aggs[] and overflow */
    fail_bucket *fails;
    agg_entry *aggs;
    agg_entry overflow; /* counts what no slot had room for: nothing goes uncounted */
    pthread_t flusher;
    pthread_cond_t wake;
    int stopping, flusher_running;
};

static void *flush_loop(void *arg);
static void flush_due(access_guard *a, int all);

access_guard *access_new(db_pool *pool, auth_verifier *verifier, const config *cfg)
{
    access_guard *a = xcalloc(1, sizeof *a);
    a->pool = pool;
    a->verifier = verifier;
    a->rate = cfg->rate_limit_per_second;
    a->burst = cfg->rate_limit_burst;
    pthread_mutex_init(&a->mu, NULL);
    a->fail_rate = cfg->auth_failure_rate_per_minute / 60.0;
    a->fail_burst = cfg->auth_failure_burst > 0 ? cfg->auth_failure_burst : 1;
    a->window_ms =
        (int64_t)(cfg->audit_aggregate_seconds > 0 ? cfg->audit_aggregate_seconds : 60) * 1000;
    pthread_mutex_init(&a->agg_mu, NULL);
    pthread_cond_init(&a->wake, NULL);
    a->fails = xcalloc(FAIL_SLOTS, sizeof *a->fails);
    a->aggs = xcalloc(AGG_SLOTS, sizeof *a->aggs);
    snprintf(a->overflow.client, sizeof a->overflow.client, "(many addresses)");
    snprintf(a->overflow.reason, sizeof a->overflow.reason,
             "refusals beyond the aggregation table (several addresses and reasons)");
    snprintf(a->overflow.action, sizeof a->overflow.action, "refused");
    a->overflow.status = 401;
    a->flusher_running = pthread_create(&a->flusher, NULL, flush_loop, a) == 0;
    return a;
}

void access_free(access_guard *a)
{
    if (!a)
        return;
    pthread_mutex_lock(&a->agg_mu);
    a->stopping = 1;
    pthread_cond_signal(&a->wake);
    pthread_mutex_unlock(&a->agg_mu);
    if (a->flusher_running)
        pthread_join(a->flusher, NULL);
    flush_due(a, 1); /* what was counted and not yet written */
    free(a->fails);
    free(a->aggs);
    pthread_cond_destroy(&a->wake);
    pthread_mutex_destroy(&a->agg_mu);
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

/* One audit row of count refusals or events; wait_ms: how long to wait for a pooled
 * connection when conn is NULL. Returns RST_OK or RST_EUNAVAIL (logged; nothing raised). */
static int audit_insert(access_guard *a, PGconn *conn, int wait_ms, const char *actor_oid,
                        const char *actor_name, const char *action, const char *subject,
                        const char *outcome, int status, const char *reason, long count,
                        const char *request_id, const char *client_request_id, const char *client)
{
    PGconn *own = NULL;
    if (!conn) {
        if (db_acquire(a->pool, wait_ms, &own)) {
            log_fields(LOG_ERROR, "audit row not written now: database unavailable",
                       json_pack("{s:s, s:s, s:s?, s:I}", "action", action, "outcome", outcome,
                                 "actor", actor_oid, "count", (json_int_t)count));
            return RST_EUNAVAIL;
        }
        conn = own;
    }
    char st[16], n[24];
    snprintf(st, sizeof st, "%d", status);
    snprintf(n, sizeof n, "%ld", count);
    const char *p[] = {actor_oid,  actor_name, action, subject ? subject : "", outcome, st, reason,
                       request_id, client,     n,      client_request_id};
    PGresult *r = db_exec(conn,
                          "INSERT INTO audit_log(actor_oid, actor_name, action, subject, outcome,"
                          " status, reason, request_id, client_addr, count, client_request_id)"
                          " VALUES ($1, $2, $3, $4, $5, $6::int, $7, $8, $9, $10::int, $11)",
                          11, p, NULL);
    int rc = r ? RST_OK : RST_EUNAVAIL;
    PQclear(r);
    if (own)
        db_release(a->pool, own);
    return rc;
}

void access_audit(access_guard *a, PGconn *conn, const caller *who, const char *action,
                  const char *subject, const char *outcome, int status, const char *reason,
                  const char *request_id, const char *client)
{
    audit_insert(a, conn, 2000, who ? who->id.oid : NULL, who ? who->id.name : NULL, action,
                 subject, outcome, status, reason, 1, request_id, NULL, client);
}

void access_audit_request(http_req *req, PGconn *conn, const caller *who, const char *action,
                          const char *subject, const char *outcome, int status, const char *reason)
{
    audit_insert(access_of(req), conn, 2000, who ? who->id.oid : NULL, who ? who->id.name : NULL,
                 action, subject, outcome, status, reason, 1, http_request_id(req),
                 http_client_request_id(req), http_remote_addr(req));
}

/* ---- refusals: per-address failure budget and aggregation ---------------- */

static unsigned hash_str(unsigned h, const char *s)
{
    for (; *s; s++)
        h = h * 33 + (unsigned char)*s;
    return h * 33;
}

/* Takes one failure from the budget of client. 0 when there was one, else the seconds until
 * there is. Under agg_mu. */
static int fail_take(access_guard *a, const char *client, int64_t now)
{
    if (a->fail_rate <= 0)
        return 0;
    char key[CLIENTADDR_MAX];
    clientaddr_bucket_key(client, key, sizeof key);
    unsigned h = hash_str(5381, key);
    fail_bucket *b = NULL, *fullest = NULL;
    double most = -1;
    for (int i = 0; i < PROBE && !b; i++) {
        fail_bucket *c = &a->fails[(h + (unsigned)i) % FAIL_SLOTS];
        if (!c->key[0] || !strcmp(c->key, key)) {
            b = c;
            break;
        }
        double t = c->tokens + (double)(now - c->refill_ms) / 1000.0 * a->fail_rate;
        if (t > most)
            most = t, fullest = c;
    }
    if (!b) /* the slot whose owner failed least lately gives way */
        b = fullest, b->key[0] = '\0';
    if (!b->key[0]) {
        snprintf(b->key, sizeof b->key, "%s", key);
        b->tokens = a->fail_burst;
        b->refill_ms = now;
    }
    b->tokens += (double)(now - b->refill_ms) / 1000.0 * a->fail_rate;
    if (b->tokens > a->fail_burst)
        b->tokens = a->fail_burst;
    b->refill_ms = now;
    if (b->tokens >= 1.0) {
        b->tokens -= 1.0;
        return 0;
    }
    return (int)ceil((1.0 - b->tokens) / a->fail_rate);
}

/* The aggregation entry of this refusal, created when new; the overflow entry when the
 * table has no room. Under agg_mu. */
static agg_entry *agg_find(access_guard *a, const char *actor, const char *client,
                           const char *action, int status, const char *reason, int64_t now,
                           int *fresh)
{
    unsigned h = hash_str(hash_str(hash_str(hash_str(5381, actor), client), action), reason) +
                 (unsigned)status;
    agg_entry *free_slot = NULL;
    *fresh = 0;
    for (int i = 0; i < PROBE; i++) {
        agg_entry *e = &a->aggs[(h + (unsigned)i) % AGG_SLOTS];
        if (e->used && e->status == status && !strcmp(e->actor, actor) &&
            !strcmp(e->client, client) && !strcmp(e->action, action) && !strcmp(e->reason, reason))
            return e;
        /* an idle entry (window over, nothing pending) may be taken over */
        if (!free_slot && (!e->used || (!e->pending && now - e->window_start >= a->window_ms)))
            free_slot = e;
    }
    if (!free_slot)
        return &a->overflow;
    memset(free_slot, 0, sizeof *free_slot);
    free_slot->used = 1;
    snprintf(free_slot->actor, sizeof free_slot->actor, "%s", actor);
    snprintf(free_slot->client, sizeof free_slot->client, "%s", client);
    snprintf(free_slot->action, sizeof free_slot->action, "%s", action);
    snprintf(free_slot->reason, sizeof free_slot->reason, "%s", reason);
    free_slot->status = status;
    *fresh = 1;
    return free_slot;
}

/* Counts n refusals of a key for the next aggregate row (a write that could not be made). */
static void agg_count(access_guard *a, const char *actor, const char *client, const char *action,
                      int status, const char *reason, long n)
{
    int64_t now = now_ms_monotonic();
    int fresh;
    pthread_mutex_lock(&a->agg_mu);
    agg_entry *e = agg_find(a, actor, client, action, status, reason, now, &fresh);
    if (fresh)
        e->window_start = now;
    e->pending += n;
    pthread_mutex_unlock(&a->agg_mu);
}

/* Writes the aggregate row of a copied entry; counts it again when that fails. */
static void write_aggregate(access_guard *a, const agg_entry *e, int wait_ms)
{
    if (audit_insert(a, NULL, wait_ms, e->actor[0] ? e->actor : NULL, NULL, e->action, e->subject,
                     "denied", e->status, e->reason, e->pending, NULL, NULL, e->client))
        agg_count(a, e->actor, e->client, e->action, e->status, e->reason, e->pending);
}

/* Writes the rows of every window that closed (all: of every window), and frees entries
 * idle for a whole window after theirs closed. */
static void flush_due(access_guard *a, int all)
{
    enum { BATCH = 64 };
    agg_entry batch[BATCH];
    for (;;) {
        int n = 0, more = 0;
        int64_t now = now_ms_monotonic();
        pthread_mutex_lock(&a->agg_mu);
        for (size_t i = 0; i <= AGG_SLOTS; i++) {
            agg_entry *e = i < AGG_SLOTS ? &a->aggs[i] : &a->overflow;
            if (i < AGG_SLOTS && !e->used)
                continue;
            int closed = all || now - e->window_start >= a->window_ms;
            if (e->pending && closed) {
                if (n == BATCH) {
                    more = 1;
                    break;
                }
                batch[n++] = *e;
                e->pending = 0;
            } else if (i < AGG_SLOTS && !e->pending && now - e->window_start >= 2 * a->window_ms) {
                e->used = 0;
            }
        }
        pthread_mutex_unlock(&a->agg_mu);
        for (int i = 0; i < n; i++)
            write_aggregate(a, &batch[i], 2000);
        if (!more || (all && n == 0))
            return;
    }
}

static void *flush_loop(void *arg)
{
    access_guard *a = arg;
    int64_t period = a->window_ms < 1000 ? a->window_ms : 1000;
    pthread_mutex_lock(&a->agg_mu);
    while (!a->stopping) {
        struct timespec until;
        clock_gettime(CLOCK_REALTIME, &until);
        until.tv_sec += (time_t)(period / 1000);
        until.tv_nsec += (long)(period % 1000) * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&a->wake, &a->agg_mu, &until);
        if (a->stopping)
            break;
        pthread_mutex_unlock(&a->agg_mu);
        flush_due(a, 0);
        pthread_mutex_lock(&a->agg_mu);
    }
    pthread_mutex_unlock(&a->agg_mu);
    return NULL;
}

/* Audits one refusal, aggregated: the first of its key in a window is written now (with the
 * request ids), the repeats only counted, for one row when the window closes. A write that
 * finds no connection at once is counted instead, never queued behind the pool. */
static void refusal(http_req *req, const caller *who, const char *action, const char *subject,
                    int status, const char *reason)
{
    access_guard *a = access_of(req);
    const char *actor = who ? who->id.oid : "";
    const char *client = http_remote_addr(req);
    int64_t now = now_ms_monotonic();
    int fresh;
    agg_entry carry = {.pending = 0};
    pthread_mutex_lock(&a->agg_mu);
    agg_entry *e = agg_find(a, actor, client, action, status, reason, now, &fresh);
    int first = fresh || (e != &a->overflow && now - e->window_start >= a->window_ms);
    if (first) {
        if (e->pending) { /* the closed window's count, before this new first row */
            carry = *e;
            e->pending = 0;
        }
        e->window_start = now;
        snprintf(e->subject, sizeof e->subject, "%s", subject ? subject : "");
    } else {
        if (e == &a->overflow && !e->pending)
            e->window_start = now;
        e->pending++;
    }
    pthread_mutex_unlock(&a->agg_mu);
    if (carry.pending)
        write_aggregate(a, &carry, REQUEST_WRITE_WAIT_MS);
    if (first && audit_insert(a, NULL, REQUEST_WRITE_WAIT_MS, who ? who->id.oid : NULL,
                              who ? who->id.name : NULL, action, subject, "denied", status, reason,
                              1, http_request_id(req), http_client_request_id(req), client))
        agg_count(a, actor, client, action, status, reason, 1);
}

int access_refuse_unauthenticated(http_req *req, const char *action, const char *subject,
                                  int status, const char *reason)
{
    access_guard *a = access_of(req);
    pthread_mutex_lock(&a->agg_mu);
    int wait = fail_take(a, http_remote_addr(req), now_ms_monotonic());
    pthread_mutex_unlock(&a->agg_mu);
    if (wait) {
        metrics_count("roastery_auth_failures_limited_total",
                      "Failed authentications answered 429 by the per-address budget.");
        refusal(req, NULL, action, subject, 429,
                "too many failed authentications from this address");
        char ra[16];
        snprintf(ra, sizeof ra, "%d", wait);
        http_add_header(req, "Retry-After", ra);
        http_problem(req, 429, "rate-limited", "Too many requests", NULL,
                     "too many failed authentications from this address; retry after %d s", wait);
        return wait;
    }
    refusal(req, NULL, action, subject, status, reason);
    return 0;
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
                "SELECT request_hash, status, content_type, location, response, checks::text"
                " FROM idempotency_keys WHERE actor_oid = $1 AND key = $2",
                2, p, NULL);
    /* A stored answer goes only to a caller who still passes the checks it was given under
     * (a webhook's one-time secret, say, after the owner left the project). */
    policy_decision again = POLICY_ALLOW;
    char what[200] = "";
    if (r && PQntuples(r) == 1 && !strcmp(PQgetvalue(r, 0, 0), hash) && !PQgetisnull(r, 0, 1))
        again = policy_recheck(conn, c, db_value(r, 0, 5), what, sizeof what);
    db_release(a->pool, conn);
    if (!r || PQntuples(r) == 0) {
        PQclear(r);
        http_problem_unavailable(req);
        return 1;
    }
    if (again != POLICY_ALLOW) {
        policy_answer(req, again, what);
    } else if (strcmp(PQgetvalue(r, 0, 0), hash)) {
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
        char *checks = policy_trail_json(c->trail);
        p[2] = st;
        p[3] = ctype;
        p[4] = location;
        p[5] = text;
        p[6] = checks;
        r = db_exec(conn,
                    "UPDATE idempotency_keys SET status = $3::int, content_type = $4,"
                    " location = $5, response = $6, checks = $7::jsonb"
                    " WHERE actor_oid = $1 AND key = $2",
                    7, p, NULL);
        free(checks);
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
        if (access_refuse_unauthenticated(req, "auth.token", http_path(req), 401, reason))
            return 1; /* over this address's budget: 429, no log line per request either */
        www_authenticate(req, reason);
        http_problem(req, 401, "invalid-token", "Unauthorized", NULL, "%s", reason);
        log_fields(LOG_WARN, "token refused", json_pack("{s:s}", "reason", reason));
        return 1;
    }
    c->trail = policy_trail_new();
    http_set_identity(req, c);
    if (http_limit_identity(req, c->id.oid))
        return 1; /* 429: as many requests of this identity in progress as it may hold */
    int seen_write = 0;
    int wait = rate_limited(a, c->id.oid, &seen_write);
    if (wait) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", wait);
        http_add_header(req, "Retry-After", ra);
        metrics_count("roastery_rate_limited_total", "Requests refused by the rate limit.");
        http_problem(req, 429, "rate-limited", "Too many requests", NULL,
                     "this identity is over its request rate; retry after %d s", wait);
        refusal(req, c, "rate.limit", http_path(req), 429,
                "this identity is over its request rate");
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
        access_audit_request(req, NULL, c, action, c->subject[0] ? c->subject : http_path(req),
                             outcome, status, c->deny_reason[0] ? c->deny_reason : NULL);
    }
    http_set_identity(req, NULL);
    policy_trail_free(c->trail);
    free(c);
}
