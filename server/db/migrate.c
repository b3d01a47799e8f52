/* Migration runner. The advisory lock serialises replicas that start at
 * once; the checksum table makes an edited, already applied file an error
 * instead of silent drift. */
#include "db/migrate.h"
#include "db/db.h"
#include "core/log.h"
#include "lib/util.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <string.h>

#define MIGRATION_LOCK "SELECT pg_advisory_lock(hashtext('roastery:migrations'))"
#define MIGRATION_UNLOCK "SELECT pg_advisory_unlock(hashtext('roastery:migrations'))"

void migrate_checksum(const char *data, size_t len, char out[65])
{
    unsigned char md[32];
    unsigned int mdlen = 0;
    EVP_Digest(data, len, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < 32; i++)
        snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static int run(PGconn *c, const char *sql)
{
    PGresult *r = db_exec(c, sql, 0, NULL, NULL);
    if (!r)
        return RST_EDB;
    PQclear(r);
    return RST_OK;
}

static int ensure_table(PGconn *c)
{
    return run(c, "CREATE TABLE IF NOT EXISTS schema_migrations ("
                  " version text PRIMARY KEY,"
                  " checksum text NOT NULL,"
                  " applied_at timestamptz NOT NULL DEFAULT now())");
}

/* Runs one migration file (trusted, may hold several statements) and
 * records it, in one transaction. */
static int apply_one(PGconn *c, const struct embedded_file *f, const char *sum)
{
    if (run(c, "BEGIN"))
        return RST_EDB;
    PGresult *r = PQexec(c, f->data);
    if (PQresultStatus(r) != PGRES_COMMAND_OK && PQresultStatus(r) != PGRES_TUPLES_OK) {
        log_fields(LOG_ERROR, "migration failed",
                   json_pack("{s:s, s:s?, s:s?}", "migration", f->name, "sqlstate",
                             PQresultErrorField(r, PG_DIAG_SQLSTATE), "error",
                             PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)));
        PQclear(r);
        PQclear(PQexec(c, "ROLLBACK"));
        return RST_EDB;
    }
    PQclear(r);
    const char *p[] = {f->name, sum};
    r = db_exec(c, "INSERT INTO schema_migrations(version, checksum) VALUES ($1, $2)", 2, p, NULL);
    if (!r) {
        PQclear(PQexec(c, "ROLLBACK"));
        return RST_EDB;
    }
    PQclear(r);
    return run(c, "COMMIT");
}

int migrate_apply(PGconn *conn, const struct embedded_file *files, size_t count, int *applied,
                  char *err, size_t errlen)
{
    *applied = 0;
    if (run(conn, MIGRATION_LOCK))
        return RST_EDB;
    int rc = ensure_table(conn);
    for (size_t i = 0; rc == RST_OK && i < count; i++) {
        char sum[65];
        migrate_checksum(files[i].data, files[i].len, sum);
        const char *p[] = {files[i].name};
        PGresult *r =
            db_exec(conn, "SELECT checksum FROM schema_migrations WHERE version = $1", 1, p, NULL);
        if (!r) {
            rc = RST_EDB;
            break;
        }
        const char *have = db_value(r, 0, 0);
        if (have && strcmp(have, sum)) {
            snprintf(err, errlen,
                     "migration %s was applied with checksum %.12s but the file now has %.12s; "
                     "add a new migration instead of editing an applied one",
                     files[i].name, have, sum);
            rc = RST_ECONFLICT;
        } else if (!have) {
            rc = apply_one(conn, &files[i], sum);
            if (rc == RST_OK) {
                (*applied)++;
                log_fields(LOG_INFO, "migration applied",
                           json_pack("{s:s}", "migration", files[i].name));
            } else {
                snprintf(err, errlen, "migration %s failed (details in the log)", files[i].name);
            }
        }
        PQclear(r);
    }
    run(conn, MIGRATION_UNLOCK);
    return rc;
}

int migrate_current(PGconn *conn, const struct embedded_file *files, size_t count)
{
    PGresult *r = db_exec(conn, "SELECT version, checksum FROM schema_migrations", 0, NULL, NULL);
    if (!r)
        return RST_EDB;
    size_t ok = 0;
    for (size_t i = 0; i < count; i++) {
        char sum[65];
        migrate_checksum(files[i].data, files[i].len, sum);
        for (int row = 0; row < PQntuples(r); row++)
            if (!strcmp(PQgetvalue(r, row, 0), files[i].name) &&
                !strcmp(PQgetvalue(r, row, 1), sum))
                ok++;
    }
    PQclear(r);
    return ok == count;
}
