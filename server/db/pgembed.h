/* Embedded PostgreSQL: when no ROASTERY_DATABASE_URL is given, roastery runs
 * a private cluster of its own under <data_dir>/pg, reachable only through a
 * Unix socket in a 0700 directory. */
#ifndef ROASTERY_PGEMBED_H
#define ROASTERY_PGEMBED_H

#include <stddef.h>

/* Embedded PostgreSQL: a private cluster under <data_dir>/pg, Unix socket only. */
typedef struct pgembed pgembed;

/* Creates (initdb, first time only) and starts a private cluster in <data_dir>/pg.
 * On success returns RST_OK, sets *out (new: stop with pgembed_stop) and *conninfo (new: free())
 * to a libpq conninfo string that connects to database "roastery" over the Unix socket.
 * On failure returns a negative RST_* code and writes a one-line reason to err:
 * RST_EINVAL bad arguments or paths, RST_ECONFLICT a live postgres already serves the
 * directory, RST_EUNAVAIL no server binaries or no postgres user, RST_EIO anything else.
 * Call it from a thread that outlives the cluster (the main thread): the postmaster is told
 * to shut down when the thread that started it exits, so a crashed roastery leaves no orphan. */
int pgembed_start(const char *data_dir, pgembed **out, char **conninfo, char *err, size_t errlen);

/* Fast shutdown (SIGINT to the postmaster), waits for it to exit (bounded, then SIGKILL), frees.
 * NULL-safe. */
void pgembed_stop(pgembed *pg);

/* The postmaster's process id (for tests and logs); -1 for NULL. */
int pgembed_pid(const pgembed *pg);

#endif
