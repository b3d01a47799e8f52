/* Carrying a training run out on this machine: the operation run.train
 * waits for a slot of the run's local compute, copies the dataset version's
 * canonical file next to a child `roastery train` process, streams the
 * child's log lines into the artifact store (chunk by chunk, so a follower
 * sees them while the run is live) and its metrics into the database, and
 * stores what it produced as artifacts. A crash of the trainer fails the run
 * with its exit status and last log lines and never touches the server. */
#ifndef ROASTERY_RUN_LOCAL_H
#define ROASTERY_RUN_LOCAL_H

#include "artifacts/artifacts.h"
#include "core/config.h"
#include "ops/ops.h"

/* Seconds between SIGTERM and SIGKILL when a run is canceled. */
#define RUN_LOCAL_KILL_GRACE_SECONDS 10
/* A log chunk is written at least this often while lines arrive. */
#define RUN_LOCAL_LOG_FLUSH_MS 1000
/* Lines kept for the error of a failed run. */
#define RUN_LOCAL_LAST_LINES 20

/* Registers run.train. Both pointers are borrowed and must outlive the workers. */
void run_exec_register(const config *cfg, artifact_store *store);

/* The artifact key of a run's log chunk n (0-based). new: free(). */
char *run_exec_log_key(const char *project, const char *run_id, int n);

/* Stores a finished trainer's outputs (model.json, features.json, metrics.json, backtest.csv,
 * run.json) from outdir as the run's artifacts and records metrics, lineage and artifacts on
 * the run. *response gets {artifacts: [...]}. OPS_DONE or OPS_RETRY. */
ops_result run_exec_store_outputs(ops_ctx *ctx, const char *project, const char *run_id,
                                  const char *outdir, json_t **response);

/* Appends lines (each ending in '\n') to the run's log as its next chunk. */
void run_exec_append_log(PGconn *c, const char *project, const char *run_id, const char *lines);

#endif
