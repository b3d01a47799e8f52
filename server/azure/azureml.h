/* Typed Azure Machine Learning operations over arm.h: each checks its arguments, builds the
 * request bodies the published 2025-12-01 schema asks for and sends them with arm_request.
 * With a render-only client (arm_options.render_only) the same requests are recorded in
 * out->requests and nothing is sent, so the dry-run and local executors log the very action
 * the Azure executor would carry out.
 *
 * Every call takes an arm_result the caller zeroed (or kept from an earlier call: records
 * accumulate) and frees with arm_result_free; strings and JSON arguments are borrowed for the
 * call. Return codes are arm_request's; RST_EINVAL with out->error {code: "InvalidArgument"}
 * when an argument is refused before anything is sent. Names follow the spec's path pattern
 * ^[a-zA-Z0-9][a-zA-Z0-9-_]{0,254}$; versions are 1-64 of [A-Za-z0-9._-]. */
#ifndef ROASTERY_AZUREML_H
#define ROASTERY_AZUREML_H

#include <jansson.h>
#include <stddef.h>

#include "azure/arm.h"

/* ---------------------------------------------------------------- data */

/* A uri_file data asset version: PUT data/{name} (container, dataType uri_file) then PUT
 * data/{name}/versions/{version} with dataUri = uri (azureml://... or https://...).
 * Both are create-or-update, so a repeat is harmless. description may be NULL. */
int azureml_data_version_put(arm_client *c, const char *name, const char *version, const char *uri,
                             const char *description, arm_result *out);

/* ---------------------------------------------------------------- environments */

/* An environment version for a container image: PUT environments/{name}/versions/{version}
 * {image, osType: Linux}. description may be NULL. */
int azureml_environment_version_put(arm_client *c, const char *name, const char *version,
                                    const char *image, const char *description, arm_result *out);

/* ---------------------------------------------------------------- jobs */

/* One input or output binding of a command job; strings borrowed. */
typedef struct {
    const char *name; /* binding name: [A-Za-z_][A-Za-z0-9_]{0,99} */
    const char *type; /* JobInputType / JobOutputType; NULL = uri_file (inputs), uri_folder
                         (outputs) */
    const char *uri;  /* inputs: required (azureml:name:version, azureml://..., https://...);
                         outputs: NULL = the default datastore path the service picks */
    const char *mode; /* NULL = the service default (ReadOnlyMount / ReadWriteMount) */
} azureml_binding;

typedef struct {
    const char *job_name;    /* the ARM job id, derived by the caller from the run id */
    const char *experiment;  /* NULL = "Default" */
    const char *compute;     /* a compute name of the workspace or a full ARM id */
    const char *environment; /* an environment ARM id or azureml: asset id; anything else is
                                taken as a container image and registered first as
                                environments/roastery-image/versions/<sha256 prefix> */
    const char *command;
    const char *display_name; /* may be NULL */
    const char *description;  /* may be NULL */
    const azureml_binding *inputs;
    size_t ninputs;
    const azureml_binding *outputs; /* e.g. model and metrics, uri_folder */
    size_t noutputs;
    json_t *tags;                  /* borrowed {string: string} or NULL */
    json_t *environment_variables; /* borrowed {string: string} or NULL */
    const char *instance_type;     /* NULL = the compute's default */
    int instance_count;            /* 0 = the service default (1) */
    int timeout_seconds;           /* limits.timeout; 0 = none */
} azureml_command_job;

/* PUT jobs/{job_name} with a Command job (synchronous in the spec: 201 created, 200 updated).
 * Submitting is idempotent for a crashed caller: ARM accepts a PUT of an existing job only when
 * nothing but description, tags, displayName, properties or isArchived differ (200, and
 * out->existed is set), and refuses any other difference with 400 UserError "A job with this
 * name already exists" (innerError Immutable / JobPropertyImmutable; a 409 is treated alike).
 * On such a refusal the existing job is fetched (GET) and adopted: RST_OK, out->existed = 1,
 * out->body the job as ARM has it, the refusal kept in out->trace. Same job name, same run. */
int azureml_command_job_put(arm_client *c, const azureml_command_job *job, arm_result *out);

/* GET jobs/{name}; out->body is the job, properties.status its Azure ML status. */
int azureml_job_get(arm_client *c, const char *name, arm_result *out);

/* POST jobs/{name}/cancel (202 + Location). wait: poll the Location until the cancel finished
 * (the job is then Canceled); 0 returns after the 202. A finished job answers 200. */
int azureml_job_cancel(arm_client *c, const char *name, int wait, arm_result *out);

/* Our run state for an Azure ML job status (case-insensitive): NotStarted, Queued, Paused ->
 * "queued"; Starting, Provisioning, Preparing -> "preparing"; Running, Finalizing,
 * CancelRequested, NotResponding -> "running" (still active: Finalizing uploads outputs, a
 * CancelRequested job has not stopped yet, NotResponding may recover); Completed ->
 * "completed"; Failed -> "failed"; Canceled -> "canceled". NULL for Unknown, NULL or a status
 * this table does not know (keep the previous state and ask again). Static strings. */
const char *azureml_job_status_map(const char *azure_status);
/* 1 for Completed, Failed and Canceled. */
int azureml_job_status_terminal(const char *azure_status);

/* ---------------------------------------------------------------- models */

/* A custom_model version: PUT models/{name} (container) then PUT models/{name}/versions/
 * {version} {modelUri = path, modelType custom_model, jobName when path is
 * azureml://jobs/<job>/...}. path: azureml://... or https://...; description, tags and
 * properties ({string: string}) may be NULL. */
int azureml_model_version_put(arm_client *c, const char *name, const char *version,
                              const char *path, const char *description, json_t *tags,
                              json_t *properties, arm_result *out);

/* ---------------------------------------------------------------- online endpoints */

/* PUT onlineEndpoints/{name} {location, identity SystemAssigned, authMode} and waits for the
 * Azure-AsyncOperation; out->body is the endpoint (provisioningState Succeeded). auth_mode:
 * AMLToken, Key or AADToken. The body carries no traffic (see set_traffic). Needs the
 * client's location. */
int azureml_online_endpoint_put(arm_client *c, const char *name, const char *auth_mode,
                                arm_result *out);
int azureml_online_endpoint_get(arm_client *c, const char *name, arm_result *out);

/* Sets the endpoint's traffic {deployment: percent} (integers 0-100 summing to 100, or all 0).
 * The spec's PATCH (OnlineEndpoints_Update) takes PartialMinimalTrackedResourceWithIdentity,
 * which has no traffic, so this is a PUT of the whole endpoint: the body of
 * azureml_online_endpoint_put plus properties.traffic (hence auth_mode again); anything set on
 * the endpoint outside Roastery would be reset. */
int azureml_online_endpoint_set_traffic(arm_client *c, const char *endpoint, const char *auth_mode,
                                        json_t *traffic, arm_result *out);

/* What a managed online deployment runs; strings borrowed. */
typedef struct {
    const char *model;             /* model ARM id (or azureml:name:version) */
    const char *instance_type;     /* e.g. Standard_DS3_v2 */
    int instance_count;            /* >= 1, sent as sku {name: Default, capacity} */
    const char *environment;       /* environment ARM id; NULL for no-code (MLflow) models */
    const char *code_id;           /* code asset ARM id or NULL */
    const char *scoring_script;    /* with code_id: the script to start, e.g. score.py */
    json_t *environment_variables; /* borrowed {string: string} or NULL */
    const char *description;       /* may be NULL */
} azureml_deployment;

/* PUT onlineEndpoints/{endpoint}/deployments/{deployment} (endpointComputeType Managed) and
 * waits for the Azure-AsyncOperation. Needs the client's location. */
int azureml_online_deployment_put(arm_client *c, const char *endpoint, const char *deployment,
                                  const azureml_deployment *d, arm_result *out);
int azureml_online_deployment_get(arm_client *c, const char *endpoint, const char *deployment,
                                  arm_result *out);
/* DELETE and waits for the Location (an absent deployment answers 204 at once). ARM refuses
 * to delete a deployment that still takes traffic. */
int azureml_online_deployment_delete(arm_client *c, const char *endpoint, const char *deployment,
                                     arm_result *out);

/* ---------------------------------------------------------------- datastores */

/* GET datastores/{name}. */
int azureml_datastore_get(arm_client *c, const char *name, arm_result *out);
/* The blob account, container and endpoint suffix of an AzureBlob datastore that
 * azureml_datastore_get fetched into r. borrowed: valid until arm_result_free(r). RST_EINVAL
 * when r holds no AzureBlob datastore. */
int azureml_datastore_blob(const arm_result *r, const char **account, const char **container,
                           const char **endpoint_suffix);

#endif
