/* What a dataset version sets off once dataset.ingest has recorded it ready: the reactions of the
 * domains above datasets/ (forecasting's actuals, retraining's drift check, the Azure publish),
 * which main.c subscribes as one list, so that datasets/ reaches none of them itself. */
#ifndef ROASTERY_VERSION_READY_H
#define ROASTERY_VERSION_READY_H

#include "artifacts/artifacts.h"
#include "ops/ops.h"

#include <stddef.h>

/* A version recorded ready, as its reactions see it (borrowed for the call): its files are in
 * store under projects/<project>/datasets/<dataset>/versions/<number>/. */
typedef struct {
    const char *id; /* the version's uuid */
    const char *project, *dataset, *number;
    artifact_store *store;
} version_ready;

/* A reaction, run inside the dataset.ingest operation (its steps are recorded there, and it runs
 * again when the operation is retried: it must be idempotent). OPS_DONE, or what the operation
 * should do now (OPS_RETRY, OPS_FAIL...) with ops_set_error. */
typedef struct {
    ops_result (*react)(ops_ctx *ctx, const version_ready *v);
    int always; /* 1: runs even when a reaction before it has not finished (OPS_DONE) */
} version_ready_reaction;

/* The reactions, in order (borrowed: must outlive the workers). */
void version_ready_subscribe(const version_ready_reaction *list, size_t n);

/* Runs the reactions to v in order: each one when every reaction before it finished, or when it
 * is marked always. The result is that of the last one that did not finish (OPS_DONE when all
 * did). dataset.ingest calls it once a version is recorded ready (not for a rejected one). */
ops_result version_ready_emit(ops_ctx *ctx, const version_ready *v);

#endif
