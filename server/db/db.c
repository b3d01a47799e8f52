/* Connection pool. Slots hold at most one PGconn each; a slot with no
 * connection is filled on acquire, which is how the pool reconnects after
 * the database comes back. */
#include "db/db.h"
#include "core/log.h"
#include "lib/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct db_pool {
    char *conninfo;
    int statement_timeout_ms;
    int size;
    PGconn **conns;
    int *busy;
    int in_use;
    int waiting;
    int degraded;
    pthread_mutex_t mu;
    pthread_cond_t cv;
};

static void prep_forget(const PGconn *conn);

/* The server's NOTICEs ("table does not exist, skipping") are for
 * debugging, not for the terminal libpq would print them on. */
static void log_notice(void *arg, const char *message)
{
    (void)arg;
    size_t n = strlen(message);
    while (n && message[n - 1] == '\n')
        n--;
    log_fields(LOG_DEBUG, "database notice", json_pack("{s:s%}", "notice", message, n));
}

static PGconn *connect_params(const char *const *keys, const char *const *vals, int expand,
                              int statement_timeout_ms)
{
    PGconn *c = PQconnectdbParams(keys, vals, expand);
    if (PQstatus(c) != CONNECTION_OK) {
        char *m = xstrdup(PQerrorMessage(c));
        size_t n = strlen(m);
        while (n && (m[n - 1] == '\n' || m[n - 1] == ' '))
            m[--n] = '\0';
        log_fields(LOG_WARN, "database connection failed", json_pack("{s:s}", "error", m));
        free(m);
        PQfinish(c);
        return NULL;
    }
    prep_forget(c); /* a new connection may reuse a closed one's address */
    PQsetNoticeProcessor(c, log_notice, NULL);
    char ms[32];
    snprintf(ms, sizeof ms, "%d", statement_timeout_ms);
    const char *p[] = {ms};
    /* UTC so every timestamp the API renders reads the same everywhere. */
    PGresult *r = db_exec(c,
                          "SELECT set_config('statement_timeout', $1, false),"
                          " set_config('TimeZone', 'UTC', false),"
                          " set_config('plan_cache_mode', 'force_generic_plan', false)",
                          1, p, NULL);
    if (!r) {
        db_close(c);
        return NULL;
    }
    PQclear(r);
    return c;
}

PGconn *db_connect(const char *conninfo, int statement_timeout_ms)
{
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {conninfo, "3", "roastery", NULL};
    return connect_params(keys, vals, 1, statement_timeout_ms);
}

PGconn *db_connect_like(PGconn *like, int statement_timeout_ms)
{
    PQconninfoOption *opts = PQconninfo(like);
    if (!opts)
        return NULL;
    size_t n = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        n++;
    const char **keys = xcalloc(n + 1, sizeof *keys), **vals = xcalloc(n + 1, sizeof *vals);
    size_t k = 0;
    for (PQconninfoOption *o = opts; o->keyword; o++)
        if (o->val && o->val[0]) {
            keys[k] = o->keyword;
            vals[k++] = o->val;
        }
    PGconn *c = connect_params(keys, vals, 0, statement_timeout_ms);
    free(keys);
    free(vals);
    PQconninfoFree(opts);
    return c;
}

db_pool *db_pool_open(const char *conninfo, int size, int statement_timeout_ms)
{
    db_pool *p = xcalloc(1, sizeof *p);
    p->conninfo = xstrdup(conninfo);
    p->statement_timeout_ms = statement_timeout_ms;
    p->size = size;
    p->conns = xcalloc((size_t)size, sizeof *p->conns);
    p->busy = xcalloc((size_t)size, sizeof *p->busy);
    pthread_mutex_init(&p->mu, NULL);
    pthread_cond_init(&p->cv, NULL);
    return p;
}

void db_pool_close(db_pool *pool)
{
    if (!pool)
        return;
    for (int i = 0; i < pool->size; i++)
        db_close(pool->conns[i]);
    free(pool->conns);
    free(pool->busy);
    free(pool->conninfo);
    pthread_mutex_destroy(&pool->mu);
    pthread_cond_destroy(&pool->cv);
    free(pool);
}

static void deadline_after(struct timespec *ts, int ms)
{
    clock_gettime(CLOCK_REALTIME, ts);
    ts->tv_sec += ms / 1000;
    ts->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts->tv_nsec >= 1000000000L) {
        ts->tv_sec++;
        ts->tv_nsec -= 1000000000L;
    }
}

int db_acquire(db_pool *pool, int wait_ms, PGconn **out)
{
    struct timespec deadline;
    deadline_after(&deadline, wait_ms);
    pthread_mutex_lock(&pool->mu);
    int slot = -1;
    for (;;) {
        /* Prefer a slot with a live connection, then an empty one. */
        for (int i = 0; i < pool->size && slot < 0; i++)
            if (!pool->busy[i] && pool->conns[i])
                slot = i;
        for (int i = 0; i < pool->size && slot < 0; i++)
            if (!pool->busy[i])
                slot = i;
        if (slot >= 0)
            break;
        pool->waiting++;
        int rc = pthread_cond_timedwait(&pool->cv, &pool->mu, &deadline);
        pool->waiting--;
        if (rc == ETIMEDOUT) {
            pthread_mutex_unlock(&pool->mu);
            log_msg(LOG_WARN, "database pool exhausted after %d ms", wait_ms);
            return RST_EUNAVAIL;
        }
    }
    pool->busy[slot] = 1;
    pool->in_use++;
    PGconn *c = pool->conns[slot];
    pthread_mutex_unlock(&pool->mu);

    if (c && PQstatus(c) != CONNECTION_OK) {
        db_close(c);
        c = NULL;
    }
    if (!c)
        c = db_connect(pool->conninfo, pool->statement_timeout_ms);

    pthread_mutex_lock(&pool->mu);
    pool->conns[slot] = c;
    if (!c) {
        pool->busy[slot] = 0;
        pool->in_use--;
        pool->degraded = 1;
        pthread_cond_signal(&pool->cv);
        pthread_mutex_unlock(&pool->mu);
        return RST_EUNAVAIL;
    }
    pthread_mutex_unlock(&pool->mu);
    *out = c;
    return RST_OK;
}

void db_release(db_pool *pool, PGconn *conn)
{
    if (!conn)
        return;
    int broken = PQstatus(conn) != CONNECTION_OK;
    /* A connection returned mid-transaction would leak its state to the next user. */
    if (!broken && PQtransactionStatus(conn) != PQTRANS_IDLE) {
        PGresult *r = PQexec(conn, "ROLLBACK");
        PQclear(r);
        broken = PQtransactionStatus(conn) != PQTRANS_IDLE;
    }
    pthread_mutex_lock(&pool->mu);
    for (int i = 0; i < pool->size; i++) {
        if (pool->conns[i] == conn) {
            if (broken) {
                db_close(conn);
                pool->conns[i] = NULL;
                pool->degraded = 1;
            } else {
                pool->degraded = 0;
            }
            pool->busy[i] = 0;
            pool->in_use--;
            break;
        }
    }
    pthread_cond_signal(&pool->cv);
    pthread_mutex_unlock(&pool->mu);
}

void db_pool_stats(db_pool *pool, int *size, int *in_use, int *waiting)
{
    pthread_mutex_lock(&pool->mu);
    *size = pool->size;
    *in_use = pool->in_use;
    *waiting = pool->waiting;
    pthread_mutex_unlock(&pool->mu);
}

int db_pool_degraded(db_pool *pool)
{
    pthread_mutex_lock(&pool->mu);
    int d = pool->degraded;
    pthread_mutex_unlock(&pool->mu);
    return d;
}

/* ---- prepared statements ----------------------------------------------
 * Every statement is prepared once per connection and executed by name, so
 * PostgreSQL plans it once instead of on every request. Which connection
 * holds which statement is remembered here, keyed by the connection's
 * address; a stale entry (an address reused by a new connection) only costs
 * one failed execute, after which the statement is prepared again. */

#define PREP_BUCKETS 256

typedef struct prep_conn {
    const PGconn *conn;
    uint64_t *hashes;
    size_t n, cap;
    struct prep_conn *next;
} prep_conn;

static prep_conn *prep_table[PREP_BUCKETS];
static pthread_rwlock_t prep_lock = PTHREAD_RWLOCK_INITIALIZER;

static uint64_t sql_hash(const char *sql)
{
    uint64_t h = 1469598103934665603ULL; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)sql; *p; p++)
        h = (h ^ *p) * 1099511628211ULL;
    return h;
}

static size_t conn_bucket(const PGconn *conn)
{
    return ((uintptr_t)conn >> 4) % PREP_BUCKETS;
}

static int prep_known(const PGconn *conn, uint64_t h)
{
    int found = 0;
    pthread_rwlock_rdlock(&prep_lock);
    for (prep_conn *pc = prep_table[conn_bucket(conn)]; pc && !found; pc = pc->next)
        if (pc->conn == conn)
            for (size_t i = 0; i < pc->n && !found; i++)
                found = pc->hashes[i] == h;
    pthread_rwlock_unlock(&prep_lock);
    return found;
}

static void prep_remember(const PGconn *conn, uint64_t h)
{
    pthread_rwlock_wrlock(&prep_lock);
    prep_conn **slot = &prep_table[conn_bucket(conn)], *pc = *slot;
    while (pc && pc->conn != conn)
        pc = pc->next;
    if (!pc) {
        pc = xcalloc(1, sizeof *pc);
        pc->conn = conn;
        pc->next = *slot;
        *slot = pc;
    }
    if (pc->n == pc->cap) {
        pc->cap = pc->cap ? pc->cap * 2 : 32;
        pc->hashes = xrealloc(pc->hashes, pc->cap * sizeof *pc->hashes);
    }
    pc->hashes[pc->n++] = h;
    pthread_rwlock_unlock(&prep_lock);
}

/* Forgets every statement of conn (a new connection, or one being closed). */
static void prep_forget(const PGconn *conn)
{
    pthread_rwlock_wrlock(&prep_lock);
    prep_conn **slot = &prep_table[conn_bucket(conn)];
    while (*slot) {
        prep_conn *pc = *slot;
        if (pc->conn == conn) {
            *slot = pc->next;
            free(pc->hashes);
            free(pc);
        } else {
            slot = &pc->next;
        }
    }
    pthread_rwlock_unlock(&prep_lock);
}

void db_close(PGconn *conn)
{
    if (!conn)
        return;
    prep_forget(conn);
    PQfinish(conn);
}

static PGresult *report(PGconn *conn, PGresult *r, char *sqlstate)
{
    ExecStatusType st = PQresultStatus(r);
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK)
        return r;
    const char *state = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    const char *msg = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY);
    if (sqlstate && state)
        snprintf(sqlstate, 6, "%s", state);
    /* Constraint violations are expected outcomes; callers map them. */
    log_level lvl = (state && state[0] == '2' && state[1] == '3') ? LOG_DEBUG : LOG_WARN;
    log_fields(lvl, "query failed",
               json_pack("{s:s?, s:s?, s:s?}", "sqlstate", state, "error",
                         msg ? msg : PQerrorMessage(conn), "constraint",
                         PQresultErrorField(r, PG_DIAG_CONSTRAINT_NAME)));
    PQclear(r);
    return NULL;
}

static int state_is(PGresult *r, const char *want)
{
    const char *st = PQresultErrorField(r, PG_DIAG_SQLSTATE);
    return st && !strcmp(st, want);
}

PGresult *db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
                  char *sqlstate)
{
    if (sqlstate)
        sqlstate[0] = '\0';
    uint64_t h = sql_hash(sql);
    char name[24];
    snprintf(name, sizeof name, "r%016llx", (unsigned long long)h);
    for (int attempt = 0; attempt < 2; attempt++) {
        if (!prep_known(conn, h)) {
            PGresult *p = PQprepare(conn, name, sql, nparams, NULL);
            if (PQresultStatus(p) != PGRES_COMMAND_OK && !state_is(p, "42P05"))
                return report(conn, p, sqlstate);
            PQclear(p);
            prep_remember(conn, h);
        }
        PGresult *r = PQexecPrepared(conn, name, nparams, params, NULL, NULL, 0);
        /* 26000: not prepared on this connection after all (a reused address);
         * 0A000: the plan's result type changed under a migration. */
        if (attempt == 0 && (state_is(r, "26000") || state_is(r, "0A000"))) {
            PQclear(r);
            prep_forget(conn);
            char dealloc[48];
            snprintf(dealloc, sizeof dealloc, "DEALLOCATE %s", name);
            PQclear(PQexec(conn, dealloc));
            continue;
        }
        return report(conn, r, sqlstate);
    }
    return NULL;
}

const char *db_value(PGresult *res, int row, int col)
{
    if (!res || row >= PQntuples(res) || col >= PQnfields(res) || PQgetisnull(res, row, col))
        return NULL;
    return PQgetvalue(res, row, col);
}

static int simple(PGconn *c, const char *sql, char *sqlstate)
{
    PGresult *r = db_exec(c, sql, 0, NULL, sqlstate);
    if (!r)
        return RST_EDB;
    PQclear(r);
    return RST_OK;
}

int db_tx(db_pool *pool, int (*fn)(PGconn *conn, void *arg), void *arg)
{
    for (int attempt = 0; attempt < 3; attempt++) {
        PGconn *c = NULL;
        int rc = db_acquire(pool, 2000, &c);
        if (rc)
            return rc;
        char state[6] = "";
        if (simple(c, "BEGIN", state)) {
            db_release(pool, c);
            return PQstatus(c) == CONNECTION_OK ? RST_EDB : RST_EUNAVAIL;
        }
        rc = fn(c, arg);
        if (rc == RST_OK) {
            if (simple(c, "COMMIT", state) == RST_OK) {
                db_release(pool, c);
                return RST_OK;
            }
            rc = RST_EDB;
        }
        int lost = PQstatus(c) != CONNECTION_OK;
        PQclear(PQexec(c, "ROLLBACK"));
        db_release(pool, c);
        if (lost)
            return RST_EUNAVAIL;
        /* Only a serialization failure or deadlock at COMMIT is worth a retry. */
        if (!(rc == RST_EDB && (!strcmp(state, "40001") || !strcmp(state, "40P01"))))
            return rc;
    }
    return RST_EDB;
}
