/* Dataset versions in the Azure ML workspace: the canonical file copied to
 * the workspace datastore, then a uri_file data asset version pointing at it,
 * named <project>-<dataset>, version = our version number. */
#ifndef ROASTERY_AZURE_PUBLISH_H
#define ROASTERY_AZURE_PUBLISH_H

#include "datasets/version_ready.h"
#include "ops/ops.h"

/* "azureml:<project>-<dataset>:<number>", what a job input names. new: free(). */
char *azure_publish_asset_id(const char *project, const char *dataset, const char *number);

/* Steps "azureml-upload" (live only: the copy is not an Azure ML call) and
 * "azureml-data" of the current operation. Idempotent: a copy already in the
 * datastore is not sent again and the asset PUT is create-or-update. */
ops_result azure_publish_version(ops_ctx *ctx, const char *project, const char *dataset,
                                 const char *number);
/* The same as a reaction to a ready version (datasets/version_ready.h). */
ops_result azure_publish_on_version(ops_ctx *ctx, const version_ready *v);

#endif
