/* Carrying a training run out as an Azure ML command job (the run's compute
 * is Azure ML compute and ROASTERY_EXECUTOR=azure): the dataset version is
 * published as a data asset, the job is submitted under a name derived from
 * the run id (so a retried or re-run submission adopts the job it already
 * made instead of creating a second one), its status is polled with backoff
 * into the run's state and log, a cancel is passed on to Azure ML, and the
 * job's outputs are fetched from the workspace datastore into our artifact
 * store exactly as a local run stores them. */
#ifndef ROASTERY_RUN_AZURE_H
#define ROASTERY_RUN_AZURE_H

#include "core/config.h"
#include "ops/ops.h"

/* The Azure ML job name of a run: "roastery-run-<uuid>". */
#define RUN_AZURE_JOB_PREFIX "roastery-run-"

void run_azure_init(const config *cfg);

/* The rest of run.train for run_id once runs/run_train.c found its compute in Azure. */
ops_result run_azure_handle(ops_ctx *ctx, const char *run_id);

/* The shell command the job runs: the trainer with the run's arguments,
 * reading ${{inputs.sales}} and writing ${{outputs.model}}. new: free(). */
char *run_azure_command(const char *algorithm, int horizon, int backtest, int origins,
                        long long seed, const char *params_json);

#endif
