/* What the executors share to reach one Azure ML workspace: the ARM client
 * (live with ROASTERY_EXECUTOR=azure, render-only otherwise, so local and
 * dry-run record the very calls azure would make), Azure ML calls as
 * operation steps, and copies of our artifacts into the workspace datastore. */
#ifndef ROASTERY_AZURE_EXEC_H
#define ROASTERY_AZURE_EXEC_H

#include "azure/arm.h"
#include "artifacts/artifacts.h"
#include "core/config.h"
#include "ops/ops.h"

/* Creates the shared client from c (no I/O). A configuration the azure
 * executor cannot use is logged and remembered: live steps then fail with
 * azure_unconfigured. Call once before workers start. */
void azure_exec_init(const config *c, artifact_store *s);
void azure_exec_shutdown(void);

/* 1 when calls are sent (executor azure), 0 when they are only rendered. */
int azure_exec_live(void);
/* The shared client, or NULL (see azure_exec_error). borrowed. */
arm_client *azure_exec_arm(void);
const char *azure_exec_error(void);

/* One Azure ML call: fills res (kept in the action) and returns arm's code. */
typedef int (*azure_call_fn)(arm_client *arm, void *arg, arm_result *res);

/* Runs call as the step named step: live, through ops_step (a retried
 * operation does not repeat a call that succeeded; 4xx fails the operation
 * with ARM's code and message, anything else retries); not live, rendered
 * and recorded with ops_plan. response (may be NULL) borrows the stored
 * arm_result_json record of a live call. */
ops_result azure_exec_step(ops_ctx *ctx, const char *step, const char *what, azure_call_fn call,
                           void *arg, json_t **response);

/* Our artifact key as a path of the workspace datastore: "roastery/<key>". */
char *azure_exec_datastore_path(const char *key);
/* "azureml://datastores/<datastore>/paths/roastery/<key>". new: free(). */
char *azure_exec_datastore_uri(const char *key);

/* Copies artifact key into the datastore at azure_exec_datastore_path(key)
 * unless a blob of the same size and sha256 is there already. Looks the
 * datastore up first (GET datastores/<name>, recorded in res) and checks its
 * account is the one ROASTERY_AZUREML_DATASTORE_CONNECTION opens. RST_OK;
 * RST_EINVAL (unusable configuration, err says why); RST_ENOTFOUND (no such
 * artifact); RST_EUNAVAIL (storage or ARM unreachable). *copied: 1 when bytes
 * were sent, 0 when the blob was already there. */
int azure_exec_upload(arm_result *res, const char *key, int *copied, char *err, size_t errlen);

/* The reverse: datastore blob azure_exec_datastore_path(key) into file path.
 * RST_ENOTFOUND when the blob is absent. */
int azure_exec_download(const char *key, const char *path, char *err, size_t errlen);

#endif
