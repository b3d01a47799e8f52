/* Schema migrations: numbered SQL files built into the binary, applied in
 * order under an advisory lock, each in its own transaction, recorded with a
 * checksum so an edited migration is refused. */
#ifndef ROASTERY_MIGRATE_H
#define ROASTERY_MIGRATE_H

#include <libpq-fe.h>
#include <stddef.h>

#include "core/embedded.h"

/* Applies every pending migration of files (count entries) on conn.
 * RST_OK, or RST_ECONFLICT when an applied migration's file changed
 * (message in err), or RST_EDB. *applied counts the new ones. */
int migrate_apply(PGconn *conn, const struct embedded_file *files, size_t count, int *applied,
                  char *err, size_t errlen);

/* 1 when every file is applied with its checksum, 0 when not, negative on error. */
int migrate_current(PGconn *conn, const struct embedded_file *files, size_t count);

/* Hex SHA-256 of data into out (65 bytes). */
void migrate_checksum(const char *data, size_t len, char out[65]);

#endif
