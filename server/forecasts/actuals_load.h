/* Actual sales from a dataset version: the version's daily totals (daily.csv)
 * become actuals for the days the project's forecasts cover, so accuracy
 * follows every new version without anyone posting them again. */
#ifndef ROASTERY_ACTUALS_LOAD_H
#define ROASTERY_ACTUALS_LOAD_H

#include "artifacts/artifacts.h"
#include "datasets/version_ready.h"
#include "ops/ops.h"

#include <jansson.h>
#include <libpq-fe.h>

/* Upserts the daily totals of projects/<project>/datasets/<dataset>/versions/<number> on or
 * after the first day of the project's oldest kept forecast run (none: nothing to do), for
 * the stores whose serving project is project, as source "dataset:<dataset>:<number>". A row
 * reported by a person (source 'api') takes precedence and is kept. *summary (new) gets
 * {rows_read, rows_taken, rows_not_served, rows_reported_by_people, from}. RST_OK, RST_EIO
 * (artifact), RST_EDB. */
int actuals_load_version(PGconn *c, artifact_store *store, const char *project,
                         const char *dataset, const char *number, json_t **summary);

/* The reaction of forecasting to a version recorded ready (datasets/version_ready.h): the step
 * "actuals" of the operation runs actuals_load_version on it. OPS_DONE, or OPS_RETRY when the
 * database or the artifact store failed. */
ops_result actuals_load_on_version(ops_ctx *ctx, const version_ready *v);

#endif
