/* forecast.generate: a project's production model forecasts every store x
 * product of its latest dataset version for the project's horizon. The child
 * `roastery forecast` streams CSV straight into COPY of a new partition of
 * forecasts (created in the same transaction, so FREEZE), which is indexed
 * and attached, and then made current in one transaction: readers see the
 * old run or the new one, never half of one. Old runs past the project's
 * retention are detached and dropped. Triggered by a production promotion,
 * by the project's schedule, or by hand. */
#ifndef ROASTERY_FORECAST_OPS_H
#define ROASTERY_FORECAST_OPS_H

#include "artifacts/artifacts.h"
#include "core/config.h"

#include <libpq-fe.h>

void forecast_ops_register(const config *cfg, artifact_store *store);

/* Queues a forecast run of the project's production model (model NULL: the
 * one most recently made production) inside the caller's transaction.
 * trigger: promotion, schedule or manual. run_id (40) and op_id (37) may be
 * NULL. RST_OK, RST_ENOTFOUND (no production model), RST_EDB. */
int forecast_ops_enqueue(PGconn *c, const char *project, const char *model, const char *trigger,
                         const char *by, char *run_id, char *op_id);

/* The partition of a forecast run: "forecasts_<32 hex>". out: 48 bytes. */
void forecast_partition_name(const char *run_id, char out[48]);

#endif
