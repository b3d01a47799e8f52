/* The run.train operation: a training run carried out where its compute is. */
#ifndef ROASTERY_RUN_TRAIN_H
#define ROASTERY_RUN_TRAIN_H

#include "artifacts/artifacts.h"
#include "core/config.h"

/* Registers run.train. Both pointers are borrowed and must outlive the workers. */
void run_train_register(const config *cfg, artifact_store *store);

#endif
