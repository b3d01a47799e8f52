/* Publishes dataset versions to the Azure ML workspace. */
#include "datasets/azure_publish.h"
#include "exec/azure_exec.h"
#include "azure/azureml.h"
#include "lib/util.h"

#include <stdio.h>
#include <stdlib.h>

typedef struct {
    const char *project, *dataset, *number;
    char *key; /* the canonical file's artifact key */
} data_job;

char *azure_publish_asset_id(const char *project, const char *dataset, const char *number)
{
    return xasprintf("azureml:%s-%s:%s", project, dataset, number);
}

static ops_result step_upload(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    data_job *j = arg;
    arm_result res;
    arm_result_init(&res);
    char err[300];
    int copied = 0;
    int rc = azure_exec_upload(&res, j->key, &copied, err, sizeof err);
    char *uri = azure_exec_datastore_uri(j->key);
    *response = json_pack("{s:s, s:b, s:o}", "uri", uri, "copied", copied, "datastore",
                          arm_result_json(&res));
    free(uri);
    arm_result_free(&res);
    if (rc == RST_OK)
        return OPS_DONE;
    ops_set_error(ctx, rc == RST_EUNAVAIL ? "datastore_unavailable" : "datastore_refused", err);
    return rc == RST_EUNAVAIL ? OPS_RETRY : OPS_FAIL;
}

static int data_call(arm_client *arm, void *arg, arm_result *res)
{
    data_job *j = arg;
    char *name = xasprintf("%s-%s", j->project, j->dataset);
    char *uri = azure_exec_datastore_uri(j->key);
    char *desc = xasprintf("Roastery dataset %s version %s of project %s (canonical sales CSV)",
                           j->dataset, j->number, j->project);
    int rc = azureml_data_version_put(arm, name, j->number, uri, desc, res);
    free(desc);
    free(uri);
    free(name);
    return rc;
}

ops_result azure_publish_version(ops_ctx *ctx, const char *project, const char *dataset,
                                 const char *number)
{
    data_job j = {project, dataset, number,
                  xasprintf("projects/%s/datasets/%s/versions/%s/canonical.csv", project, dataset,
                            number)};
    ops_result r = OPS_DONE;
    if (azure_exec_live())
        r = ops_step(ctx, "azureml-upload", "azureml",
                     "copy the canonical file to the workspace datastore", NULL, step_upload, &j,
                     NULL);
    if (r == OPS_DONE)
        r = azure_exec_step(ctx, "azureml-data", "register the data asset version (uri_file)",
                            data_call, &j, NULL);
    free(j.key);
    return r;
}

ops_result azure_publish_on_version(ops_ctx *ctx, const version_ready *v)
{
    return azure_publish_version(ctx, v->project, v->dataset, v->number);
}
