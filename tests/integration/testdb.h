/* Test helper: a fresh, migrated database in the throwaway cluster that
 * scripts/with-temp-pg started (ROASTERY_TEST_DATABASE_URL). */
#ifndef ROASTERY_TESTDB_H
#define ROASTERY_TESTDB_H

#include <libpq-fe.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "db/db.h"
#include "core/embedded.h"
#include "db/migrate.h"
#include "lib/util.h"

/* new: caller frees. Exits 77 (skip) when no cluster is configured. */
static inline char *testdb_create(const char *name)
{
    const char *base = getenv("ROASTERY_TEST_DATABASE_URL");
    if (!base) {
        fprintf(stderr, "ROASTERY_TEST_DATABASE_URL is not set: skipped\n");
        exit(77);
    }
    PGconn *admin = db_connect(base, 60000);
    if (!admin)
        abort();
    char *drop = xasprintf("DROP DATABASE IF EXISTS \"%s\" WITH (FORCE)", name);
    char *create = xasprintf("CREATE DATABASE \"%s\"", name);
    PQclear(PQexec(admin, drop));
    PGresult *r = PQexec(admin, create);
    if (PQresultStatus(r) != PGRES_COMMAND_OK)
        abort();
    PQclear(r);
    free(drop);
    free(create);
    db_close(admin);
    char *conninfo = xasprintf("%s dbname=%s", base, name);
    PGconn *c = db_connect(conninfo, 60000);
    char err[256];
    int applied = 0;
    if (!c || migrate_apply(c, embedded_migrations, embedded_migrations_count, &applied, err,
                            sizeof err))
        abort();
    db_close(c);
    return conninfo;
}

#endif
