/* Connection pool. Slots hold at most one PGconn each; a slot with no
 * connection is filled on acquire, which is how the pool reconnects after
 * the database comes back. */
#include "db.h"
#include "log.h"
#include "util.h"

#include <errno.h>
#include <pthread.h>
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

PGconn *db_connect(const char *conninfo, int statement_timeout_ms)
{
    const char *keys[] = {"dbname", "connect_timeout", "application_name", NULL};
    const char *vals[] = {conninfo, "3", "roastery", NULL};
    PGconn *c = PQconnectdbParams(keys, vals, 1);
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
    char ms[32];
    snprintf(ms, sizeof ms, "%d", statement_timeout_ms);
    const char *p[] = {ms};
    /* UTC so every timestamp the API renders reads the same everywhere. */
    PGresult *r = db_exec(c,
                          "SELECT set_config('statement_timeout', $1, false),"
                          " set_config('TimeZone', 'UTC', false)",
                          1, p, NULL);
    if (!r) {
        PQfinish(c);
        return NULL;
    }
    PQclear(r);
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
        PQfinish(pool->conns[i]);
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
        PQfinish(c);
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
                PQfinish(conn);
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

PGresult *db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
                  char *sqlstate)
{
    if (sqlstate)
        sqlstate[0] = '\0';
    PGresult *r = PQexecParams(conn, sql, nparams, NULL, params, NULL, NULL, 0);
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
