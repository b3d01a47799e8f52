/* Worker threads that carry out operations: each holds its own database
 * connection, LISTENs for new work and also polls; one heartbeat thread
 * renews the leases of everything this process runs. */
#ifndef ROASTERY_WORKER_H
#define ROASTERY_WORKER_H

#include "config.h"

typedef struct worker_pool worker_pool;

/* Starts n worker threads against conninfo (copied). new: stop with
 * worker_pool_stop. n may be 0 (then nothing runs and NULL is returned). */
worker_pool *worker_pool_start(const char *conninfo, int n, const config *cfg);
/* Asks workers to stop between steps, waits for them, frees the pool. */
void worker_pool_stop(worker_pool *wp);

#endif
