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

/* The store and configuration of the local runs (borrowed: must outlive the workers). */
void run_local_init(const config *cfg, artifact_store *store);

/* The rest of run.train for run_id once runs/run_train.c found its compute on this machine. */
ops_result run_local_handle(ops_ctx *ctx, const char *run_id);

#endif
