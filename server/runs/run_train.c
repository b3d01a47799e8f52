/* run.train: a training run carried out where its compute is: on this machine (runs/run_local.c:
 * a child `roastery train`), or as an Azure ML command job (runs/run_azure.c: the compute is Azure
 * ML compute and ROASTERY_EXECUTOR=azure). Both leave their outputs through runs/run_outputs.c. */
#include "runs/run_train.h"

#include "db/db.h"
#include "ops/ops.h"
#include "runs/run_azure.h"
#include "runs/run_local.h"
#include "runs/run_outputs.h"

#include <string.h>

/* 1 when run id's compute is Azure ML compute under the azure executor, 0 when the run is carried
 * out here, -1 when the run (or its dataset version or compute) is gone or the database failed. */
static int in_azure(PGconn *c, const char *id)
{
    PGresult *res = db_exec(c,
                            "SELECT t.executor = 'azure' AND t.kind <> 'local' FROM runs r"
                            " JOIN dataset_versions v ON v.id = r.dataset_version_id"
                            " JOIN compute_targets t ON t.id = r.compute_id WHERE r.id = $1::uuid",
                            1, (const char *[]){id}, NULL);
    int out = res && PQntuples(res) == 1 ? !strcmp(PQgetvalue(res, 0, 0), "t") : -1;
    PQclear(res);
    return out;
}

static ops_result handle(ops_ctx *ctx)
{
    const char *id = json_string_value(json_object_get(ops_input(ctx), "run_id"));
    int azure = id ? in_azure(ops_conn(ctx), id) : -1;
    if (azure < 0) {
        ops_set_error(ctx, "no_run", "the run no longer exists");
        return OPS_FAIL;
    }
    return azure ? run_azure_handle(ctx, id) : run_local_handle(ctx, id);
}

void run_train_register(const config *cfg, artifact_store *store)
{
    run_outputs_init(store);
    run_local_init(cfg, store);
    run_azure_init(cfg);
    ops_register("run.train", handle);
}
