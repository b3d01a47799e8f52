/* Worker threads that carry out operations: each holds its own database
 * connection, LISTENs for new work and also polls; one heartbeat thread
 * renews the leases of everything this process runs. Optionally a small
 * HTTP listener for probes and metrics. */
#ifndef ROASTERY_WORKER_H
#define ROASTERY_WORKER_H

#include "core/config.h"
#include "http/http.h"
#include "db/db.h"

typedef struct worker_pool worker_pool;

/* Starts n worker threads against conninfo (copied). new: stop with
 * worker_pool_stop. n may be 0 (then nothing runs and NULL is returned). */
worker_pool *worker_pool_start(const char *conninfo, int n, const config *cfg);
/* Asks workers to stop between steps, waits for them, frees the pool. */
void worker_pool_stop(worker_pool *wp);
/* 1 when every worker thread is running and the heartbeat thread has gone round its loop
 * within the last lease_seconds + 10 s (a heartbeat stuck longer lets leases lapse), else 0.
 * *threads and *busy (may be NULL) get the thread count and how many are inside an operation
 * step. NULL-safe (0). */
int worker_pool_alive(worker_pool *wp, int *threads, int *busy);

/* The optional probe listener of `roastery worker` (ROASTERY_WORKER_LISTEN). */
typedef struct worker_http worker_http;

/* Serves routes (borrowed: must outlive the listener; main.c hands api/health.c's GET /healthz,
 * /readyz and /metrics) on listen (host:port, borrowed) through http/http.c, with a pool of 2
 * database connections and an app_ctx for the handlers. /readyz answers 503 first while the
 * workers are not alive, and until worker_http_attach. new: stop with worker_http_stop; NULL
 * when it cannot listen. */
worker_http *worker_http_start(const char *listen, const http_route *routes, size_t nroutes,
                               const char *conninfo, const config *cfg);
/* The same listener for `roastery serve` (ROASTERY_PROBE_LISTEN), on threads of its own so that
 * clients holding the API's threads cannot fail the kubelet's probes: the handed /readyz alone
 * decides (no worker condition) and /metrics shows api_pool's gauges (borrowed: must outlive the
 * listener). new: stop with worker_http_stop; NULL if it cannot listen. */
worker_http *worker_http_start_serve(const char *listen, const http_route *routes, size_t nroutes,
                                     const char *conninfo, const config *cfg, db_pool *api_pool);
/* Points /readyz at wp (borrowed), or at nothing (NULL: 503) before wp is stopped. */
void worker_http_attach(worker_http *wh, worker_pool *wp);
/* Stops answering and frees wh. NULL-safe. */
void worker_http_stop(worker_http *wh);

#endif
