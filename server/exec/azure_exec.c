/* The shared Azure ML client, steps and datastore copies of the executors. */
#include "exec/azure_exec.h"
#include "azure/azureml.h"
#include "core/log.h"
#include "lib/util.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const config *cfg;
static artifact_store *ours;
static arm_client *arm;
static char arm_error[256];

/* The datastore's container as an artifact store, opened at first use. */
static pthread_mutex_t datastore_lock = PTHREAD_MUTEX_INITIALIZER;
static artifact_store *datastore;

void azure_exec_init(const config *c, artifact_store *s)
{
    cfg = c;
    ours = s;
    arm_options o = {.arm_endpoint = c->arm_endpoint,
                     .aad_authority = c->aad_authority,
                     .tenant_id = c->azure_tenant_id,
                     .client_id = c->azure_client_id,
                     .client_secret = c->azure_client_secret,
                     .federated_token_file = c->azure_federated_token_file,
                     .subscription_id = c->azure_subscription_id,
                     .resource_group = c->azure_resource_group,
                     .workspace = c->azureml_workspace,
                     .location = c->azure_location,
                     .render_only = strcmp(c->executor, "azure") != 0};
    arm_client_free(arm);
    arm = NULL;
    if (arm_client_new(&o, &arm, arm_error, sizeof arm_error)) {
        arm = NULL;
        log_fields(LOG_WARN, "azure ml client not configured",
                   json_pack("{s:s}", "reason", arm_error));
    }
}

void azure_exec_shutdown(void)
{
    arm_client_free(arm);
    arm = NULL;
    pthread_mutex_lock(&datastore_lock);
    artifacts_close(datastore);
    datastore = NULL;
    pthread_mutex_unlock(&datastore_lock);
}

int azure_exec_live(void)
{
    return cfg && !strcmp(cfg->executor, "azure");
}

arm_client *azure_exec_arm(void)
{
    return arm;
}

const char *azure_exec_error(void)
{
    return arm_error;
}

/* ---- steps ----------------------------------------------------------------------- */

typedef struct {
    azure_call_fn call;
    void *arg;
} call_job;

static int stop_asked(void *arg)
{
    return ops_stopping(arg);
}

static ops_result step_call(ops_ctx *ctx, json_t *request, json_t **response, void *arg)
{
    (void)request;
    call_job *j = arg;
    arm_result res;
    arm_result_init(&res);
    res.should_stop = stop_asked;
    res.stop_arg = ctx;
    int rc = j->call(arm, j->arg, &res);
    *response = arm_result_json(&res);
    ops_result out = OPS_DONE;
    if (rc == ARM_ESTOPPED) {
        out = OPS_INTERRUPTED;
    } else if (rc) {
        const char *code = json_string_value(json_object_get(res.error, "code"));
        const char *msg = json_string_value(json_object_get(res.error, "message"));
        char text[400];
        snprintf(text, sizeof text, "Azure ML answered %ld %s: %s", res.status, code ? code : "",
                 msg ? msg : "no message");
        ops_set_error(ctx, code ? code : "azureml_failed", text);
        /* ARM's 4xx is the request's fault; anything else may pass */
        out = res.status >= 400 && res.status < 500 ? OPS_FAIL : OPS_RETRY;
    }
    arm_result_free(&res);
    return out;
}

ops_result azure_exec_step(ops_ctx *ctx, const char *step, const char *what, azure_call_fn call,
                           void *arg, json_t **response)
{
    if (response)
        *response = NULL;
    if (!azure_exec_live()) {
        arm_result res;
        arm_result_init(&res);
        if (arm)
            call(arm, arg, &res);
        json_t *rec = arm_result_json(&res);
        ops_plan(ctx, step, "azureml", what, rec);
        json_decref(rec);
        arm_result_free(&res);
        return OPS_DONE;
    }
    if (!arm) {
        ops_set_error(ctx, "azure_unconfigured", arm_error);
        return OPS_FAIL;
    }
    call_job j = {call, arg};
    return ops_step(ctx, step, "azureml", what, NULL, step_call, &j, response);
}

/* ---- datastore ------------------------------------------------------------------- */

char *azure_exec_datastore_path(const char *key)
{
    return xasprintf("roastery/%s", key);
}

char *azure_exec_datastore_uri(const char *key)
{
    return xasprintf("azureml://datastores/%s/paths/roastery/%s",
                     cfg && cfg->azureml_datastore ? cfg->azureml_datastore : "workspaceblobstore",
                     key);
}

/* The AccountName of a connection string ("UseDevelopmentStorage=true" is
 * Azurite's devstoreaccount1). */
static void account_of(const char *conn, char *out, size_t cap)
{
    out[0] = '\0';
    if (strstr(conn, "UseDevelopmentStorage=true")) {
        snprintf(out, cap, "devstoreaccount1");
        return;
    }
    const char *p = strstr(conn, "AccountName=");
    if (!p)
        return;
    p += strlen("AccountName=");
    size_t n = strcspn(p, ";");
    snprintf(out, cap, "%.*s", (int)(n < cap ? n : cap - 1), p);
}

/* Opens the datastore's container once: GET the datastore (recorded in res),
 * check its account against the connection string, open it as a store. */
static int open_datastore(arm_result *res, artifact_store **out, char *err, size_t errlen)
{
    pthread_mutex_lock(&datastore_lock);
    int rc = RST_OK;
    if (!datastore) {
        const char *account, *container, *suffix;
        char have[128];
        if (!arm || !cfg->azureml_datastore_connection) {
            snprintf(err, errlen, "%s",
                     !arm ? arm_error
                          : "ROASTERY_AZUREML_DATASTORE_CONNECTION is not set: the azure executor "
                            "needs the storage account of the workspace datastore");
            rc = RST_EINVAL;
        } else if ((rc = azureml_datastore_get(arm, cfg->azureml_datastore, res)) != RST_OK) {
            snprintf(err, errlen, "cannot read datastore %s of the workspace",
                     cfg->azureml_datastore);
            rc = rc == RST_EUNAVAIL ? RST_EUNAVAIL : RST_EINVAL;
        } else if (azureml_datastore_blob(res, &account, &container, &suffix)) {
            snprintf(err, errlen, "datastore %s is not an Azure Blob datastore",
                     cfg->azureml_datastore);
            rc = RST_EINVAL;
        } else if (account_of(cfg->azureml_datastore_connection, have, sizeof have),
                   strcmp(have, account)) {
            snprintf(err, errlen,
                     "datastore %s is in storage account %s, but "
                     "ROASTERY_AZUREML_DATASTORE_CONNECTION opens account %s",
                     cfg->azureml_datastore, account, have[0] ? have : "(none)");
            rc = RST_EINVAL;
        } else {
            char *url = xasprintf("azblob://%s", container);
            rc = artifacts_open(url, cfg->azureml_datastore_connection, &datastore, err, errlen);
            free(url);
            if (rc)
                datastore = NULL;
        }
    }
    *out = datastore;
    pthread_mutex_unlock(&datastore_lock);
    return rc;
}

/* Streams from one store's key to another's. */
static int copy_key(artifact_store *from, const char *from_key, artifact_store *to,
                    const char *to_key)
{
    artifact_reader *rd = NULL;
    int rc = artifacts_reader_open(from, from_key, 0, 0, &rd);
    if (rc)
        return rc;
    artifact_writer *w = NULL;
    rc = artifacts_writer_open(to, to_key, &w);
    char *chunk = xmalloc(1 << 20);
    size_t got = 0;
    while (rc == RST_OK && (rc = artifacts_reader_read(rd, chunk, 1 << 20, &got)) == RST_OK && got)
        rc = artifacts_writer_write(w, chunk, got);
    free(chunk);
    artifacts_reader_close(rd);
    char sha[65];
    uint64_t size;
    if (rc == RST_OK)
        rc = artifacts_writer_commit(w, sha, &size);
    else
        artifacts_writer_abort(w);
    return rc;
}

int azure_exec_upload(arm_result *res, const char *key, int *copied, char *err, size_t errlen)
{
    *copied = 0;
    artifact_store *ds = NULL;
    int rc = open_datastore(res, &ds, err, errlen);
    if (rc)
        return rc;
    uint64_t have = 0, there = 0;
    if (artifacts_stat(ours, key, &have)) {
        snprintf(err, errlen, "artifact %s is missing", key);
        return RST_ENOTFOUND;
    }
    char *path = azure_exec_datastore_path(key);
    /* Keys are immutable, so a complete blob (block lists commit atomically)
     * of the same size holds the same bytes. */
    if (artifacts_stat(ds, path, &there) == RST_OK && there == have) {
        free(path);
        return RST_OK;
    }
    rc = copy_key(ours, key, ds, path);
    free(path);
    if (rc) {
        snprintf(err, errlen, "cannot copy %s to the datastore", key);
        return RST_EUNAVAIL;
    }
    *copied = 1;
    return RST_OK;
}

int azure_exec_download(const char *key, const char *path, char *err, size_t errlen)
{
    artifact_store *ds = NULL;
    arm_result res;
    arm_result_init(&res);
    int rc = open_datastore(&res, &ds, err, errlen);
    arm_result_free(&res);
    if (rc)
        return rc;
    char *blob = azure_exec_datastore_path(key);
    rc = artifacts_fetch(ds, blob, path);
    free(blob);
    if (rc == RST_ENOTFOUND)
        snprintf(err, errlen, "%s is not in the datastore", key);
    else if (rc)
        snprintf(err, errlen, "cannot download %s from the datastore", key);
    return rc;
}
