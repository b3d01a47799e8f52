/* The dataset.ingest operation: reads a version's raw bytes from the
 * artifact store, validates and normalises them, stores the canonical and
 * quarantine files and the profile, and marks the version ready or
 * rejected. */
#ifndef ROASTERY_INGEST_OP_H
#define ROASTERY_INGEST_OP_H

#include "artifacts/artifacts.h"
#include "core/config.h"

/* Registers the operation kind; store is borrowed and must outlive workers.
 * The upload limits (ROASTERY_MAX_DECOMPRESSED_BYTES, _COMPRESSION_RATIO,
 * _ROWS_PER_VERSION) are read from cfg here; a version over one is rejected
 * with a result naming it. */
void ingest_op_register(artifact_store *store, const config *cfg);

#endif
