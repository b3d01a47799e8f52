/* Keeping the production model good. A retraining policy per project fires
 * on a cron schedule (a periodic claim under row locks, race-free across
 * workers), on drift (drift.check, after each new ready dataset version),
 * on degraded accuracy (retrain_trigger, called by the accuracy tracker) or
 * by hand. Each firing is a retraining: retrain.start creates a run on the
 * latest ready version of the production model's dataset with its algorithm,
 * parameters, horizon, backtest and seed; retrain.finish polls that run and,
 * once it completed, registers it as a model version and proposes it for
 * production through the normal gates. A platform admin then approves it as
 * for any promotion, unless an admin switched auto_promote_to_production on
 * in the policy: that approval is then the policy's, audited with their name. */
#ifndef ROASTERY_RETRAIN_H
#define ROASTERY_RETRAIN_H

#include <jansson.h>
#include <libpq-fe.h>
#include <stddef.h>
#include <stdint.h>

#include "artifacts/artifacts.h"
#include "datasets/version_ready.h"
#include "ops/ops.h"

/* Registers drift.check, retrain.start, retrain.finish and the scheduler.
 * store is borrowed and must outlive the workers. */
void retrain_register(artifact_store *store);

/* Fires the project's retraining policy for reason ("schedule", "drift",
 * "accuracy" or "manual"), e.g. from the accuracy tracker:
 *   if (wape > threshold) retrain_trigger(c, project, "accuracy");
 * Inside the caller's transaction when one is open, else in its own.
 * RST_OK when a retraining was queued; RST_ENOTFOUND when the project has no
 * policy or (for reasons other than manual) it is disabled; RST_ECONFLICT
 * when a retraining is already in flight (the trigger is coalesced into it,
 * and audited); RST_EINVAL when the policy's model has no production
 * version (or reason is none of the four); RST_EDB. */
int retrain_trigger(PGconn *c, const char *project, const char *reason);

/* The full form. actor: a user's oid, or NULL for the system ("system:<reason>").
 * detail (borrowed, may be NULL) is kept with the retraining. retraining_id
 * receives the new (or, on RST_ECONFLICT, the in-flight) retraining; err a
 * reason for people. */
int retrain_fire(PGconn *c, const char *project, const char *reason, const char *actor,
                 json_t *detail, char retraining_id[37], char *err, size_t errlen);

/* The policy's accuracy threshold (WAPE) when the policy is enabled and has
 * one: RST_OK and *threshold, else RST_ENOTFOUND (RST_EDB on failure). */
int retrain_accuracy_threshold(PGconn *c, const char *project, double *threshold);

/* Checks a policy's schedule: cron (NULL = none) in zone tz. RST_OK with
 * *next the first firing after `after` (0 when cron is NULL), else RST_EINVAL
 * with the field ("cron" or "timezone") and the reason. */
int retrain_schedule_next(const char *cron, const char *tz, int64_t after, int64_t *next,
                          const char **field, char *err, size_t errlen);

/* After a dataset version became ready: queues drift.check when the project
 * has a production model trained on that dataset (once per version). In the
 * caller's transaction when one is open. RST_OK (also when nothing was due)
 * or RST_EDB. */
int retrain_drift_enqueue(PGconn *c, const char *version_id);

/* The reaction of retraining to a version recorded ready (datasets/version_ready.h):
 * retrain_drift_enqueue in the operation. OPS_DONE, or OPS_RETRY when the database failed. */
ops_result retrain_on_version(ops_ctx *ctx, const version_ready *v);

/* One scheduler pass (what the periodic function runs): claims due policies
 * with FOR UPDATE SKIP LOCKED, moves next_fire_at on and fires them. Returns
 * the number fired, negative on a database error. Exposed for tests. */
int retrain_schedule_due(PGconn *c);

#endif
