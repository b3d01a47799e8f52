/* A bounded pool of libpq connections with statement timeouts, lazy
 * (re)connection and a transaction helper. Every query is parameterised. */
#ifndef ROASTERY_DB_H
#define ROASTERY_DB_H

#include <libpq-fe.h>

typedef struct db_pool db_pool;

/* new: close with db_pool_close. Connections open lazily, so this succeeds
 * even while the database is down. */
db_pool *db_pool_open(const char *conninfo, int size, int statement_timeout_ms);
void db_pool_close(db_pool *pool);

/* Borrows a connection, waiting at most wait_ms for a free one.
 * RST_OK and *out set; RST_EUNAVAIL when the database cannot be reached or
 * the pool stayed exhausted. Give it back with db_release. */
int db_acquire(db_pool *pool, int wait_ms, PGconn **out);
/* Returns conn to the pool; a broken connection is closed, to be reopened
 * by a later acquire. */
void db_release(db_pool *pool, PGconn *conn);

void db_pool_stats(db_pool *pool, int *size, int *in_use, int *waiting);
/* 1 after a failed connect or a lost connection, until a query succeeds. */
int db_pool_degraded(db_pool *pool);

/* Opens one connection outside any pool (LISTEN, migrations).
 * new: PQfinish. NULL and a log line when it fails. */
PGconn *db_connect(const char *conninfo, int statement_timeout_ms);
/* A second connection to the same server as `like`, with the same settings:
 * for a side question while `like` is busy (streaming COPY). */
PGconn *db_connect_like(PGconn *like, int statement_timeout_ms);

/* Closes a connection opened by db_connect, forgetting its prepared
 * statements. NULL-safe. */
void db_close(PGconn *conn);

/* Runs a parameterised statement, prepared once per connection (text parameters, NULL = SQL NULL).
 * new: PQclear; NULL when it failed, with the failure logged and the
 * SQLSTATE copied into sqlstate (6 bytes) when given. */
PGresult *db_exec(PGconn *conn, const char *sql, int nparams, const char *const *params,
                  char *sqlstate);

/* Runs fn(conn, arg) inside BEGIN..COMMIT on a pooled connection; rolls back
 * when fn returns non-zero, and retries on serialization failure or deadlock.
 * Returns fn's status, or RST_EUNAVAIL / RST_EDB. */
int db_tx(db_pool *pool, int (*fn)(PGconn *conn, void *arg), void *arg);

/* Convenience for single-value reads: the value of row 0, column col, or NULL. */
const char *db_value(PGresult *res, int row, int col);

#endif
