/* The dataset.ingest operation: reads a version's raw bytes from the
 * artifact store, validates and normalises them, stores the canonical and
 * quarantine files and the profile, and marks the version ready or
 * rejected. */
#ifndef ROASTERY_INGEST_OP_H
#define ROASTERY_INGEST_OP_H

#include "artifacts/artifacts.h"
#include "ops/ops.h"

#include <stddef.h>

/* Registers the operation kind; store is borrowed and must outlive workers. */
void ingest_op_register(artifact_store *store);

/* A version that dataset.ingest has recorded as ready, as its reactions see it (borrowed for the
 * call): its files are in store under projects/<project>/datasets/<dataset>/versions/<number>/. */
typedef struct {
    const char *id; /* the version's uuid */
    const char *project, *dataset, *number;
    artifact_store *store;
} ingest_op_version;

/* A reaction to a ready version, run inside the dataset.ingest operation (its steps are recorded
 * there, and it runs again when the operation is retried: it must be idempotent). OPS_DONE, or
 * what the operation should do now (OPS_RETRY, OPS_FAIL...) with ops_set_error. */
typedef struct {
    ops_result (*react)(ops_ctx *ctx, const ingest_op_version *v);
    int always; /* 1: runs even when a reaction before it has not finished (OPS_DONE) */
} ingest_op_reaction;

/* What a ready version sets off, in order (borrowed: must outlive the workers; main.c registers
 * it, so that datasets/ reaches no domain above it). A rejected version sets off nothing. The
 * operation's result is that of the last reaction that did not finish. */
void ingest_op_set_reactions(const ingest_op_reaction *list, size_t n);

#endif
