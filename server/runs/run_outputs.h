/* What a training run leaves, whoever carried it out: its log, chunk by chunk, and its outputs
 * as artifacts with metrics, lineage and the artifact list recorded on the run. */
#ifndef ROASTERY_RUN_OUTPUTS_H
#define ROASTERY_RUN_OUTPUTS_H

#include "artifacts/artifacts.h"
#include "ops/ops.h"

#include <libpq-fe.h>

/* The store the outputs go to (borrowed: must outlive the workers). */
void run_outputs_init(artifact_store *store);

/* The artifact key of a run's log chunk n (0-based). new: free(). */
char *run_outputs_log_key(const char *project, const char *run_id, int n);

/* Stores a finished trainer's outputs (model.json, features.json, metrics.json, backtest.csv,
 * run.json) from outdir as the run's artifacts and records metrics, lineage and artifacts on
 * the run. *response gets {artifacts: [...]}. OPS_DONE or OPS_RETRY. */
ops_result run_outputs_store(ops_ctx *ctx, const char *project, const char *run_id,
                             const char *outdir, json_t **response);

/* Appends lines (each ending in '\n') to the run's log as its next chunk. */
void run_outputs_append_log(PGconn *c, const char *project, const char *run_id, const char *lines);

#endif
