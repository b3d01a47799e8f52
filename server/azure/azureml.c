/* Azure Machine Learning operations as request bodies of the 2025-12-01 ARM API
 * (definitions DataContainerResource, DataVersionBaseResource, EnvironmentVersionResource,
 * JobBaseResource/CommandJob, ModelContainerResource, ModelVersionResource,
 * OnlineEndpointTrackedResource, OnlineDeploymentTrackedResource of mfe.json). */
#include "azure/azureml.h"

#include <ctype.h>
#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define IMAGE_ENV_NAME "roastery-image"
#define NAME_MAX_LEN 255
#define VERSION_MAX_LEN 64
#define BINDING_MAX_LEN 100

/* ---------------------------------------------------------------- checks */

/* Records a refused argument in out (the request list stays as it was). */
static int refuse(arm_result *out, const char *message)
{
    json_decref(out->error);
    out->error = json_pack("{s:s, s:s, s:s}", "code", "InvalidArgument", "message", message,
                           "source", "client");
    out->status = 0;
    return RST_EINVAL;
}

/* ^[a-zA-Z0-9][a-zA-Z0-9\-_]{0,254}$ */
static int name_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > NAME_MAX_LEN || !isalnum((unsigned char)s[0]))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
            return 0;
    return 1;
}

static int version_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > VERSION_MAX_LEN || !isalnum((unsigned char)s[0]))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_' && s[i] != '.')
            return 0;
    return 1;
}

static int binding_ok(const char *s)
{
    size_t n = s ? strlen(s) : 0;
    if (n == 0 || n > BINDING_MAX_LEN || !(isalpha((unsigned char)s[0]) || s[0] == '_'))
        return 0;
    for (size_t i = 1; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_')
            return 0;
    return 1;
}

static int has_prefix(const char *s, const char *prefix)
{
    return s && !strncmp(s, prefix, strlen(prefix));
}

/* A URI we hand to Azure ML: non-empty, no whitespace or control characters. */
static int uri_ok(const char *s, int allow_asset_id)
{
    if (!s || !*s || strlen(s) > 2048)
        return 0;
    for (const char *p = s; *p; p++)
        if ((unsigned char)*p <= ' ' || *p == 0x7f)
            return 0;
    return has_prefix(s, "azureml://") || has_prefix(s, "https://") ||
           (allow_asset_id && has_prefix(s, "azureml:"));
}

/* {string: string} or NULL. */
static int string_map_ok(json_t *m)
{
    if (!m)
        return 1;
    if (!json_is_object(m))
        return 0;
    const char *k;
    json_t *v;
    json_object_foreach(m, k, v)
    {
        if (!json_is_string(v))
            return 0;
    }
    return 1;
}

static int text_ok(const char *s)
{
    return s && *s && strlen(s) <= 100000;
}

static int enum_ok(const char *s, const char *const *values)
{
    for (size_t i = 0; s && values[i]; i++)
        if (!strcmp(s, values[i]))
            return 1;
    return 0;
}

/* Adds key: value to obj when value is not NULL (copied for JSON values). */
static void set_str(json_t *obj, const char *key, const char *value)
{
    if (value)
        json_object_set_new(obj, key, json_string(value));
}

static void set_copy(json_t *obj, const char *key, json_t *value)
{
    if (value)
        json_object_set_new(obj, key, json_deep_copy(value));
}

/* PUT path with body (stolen) and wait for async completion. */
static int put(arm_client *c, const char *path, json_t *body, arm_result *out)
{
    if (!body)
        return refuse(out, "a value is not valid UTF-8");
    int rc = arm_request(c, "PUT", path, body, 1, out);
    json_decref(body);
    return rc;
}

static int get(arm_client *c, const char *path, arm_result *out)
{
    return arm_request(c, "GET", path, NULL, 0, out);
}

/* ---------------------------------------------------------------- data */

int azureml_data_version_put(arm_client *c, const char *name, const char *version, const char *uri,
                             const char *description, arm_result *out)
{
    if (!name_ok(name) || !version_ok(version))
        return refuse(out, "data asset name or version is not valid");
    if (!uri_ok(uri, 0))
        return refuse(out, "data uri must be an azureml:// or https:// URI");
    char path[NAME_MAX_LEN + VERSION_MAX_LEN + 32];
    snprintf(path, sizeof path, "data/%s", name);
    json_t *container = json_pack("{s:{s:s}}", "properties", "dataType", "uri_file");
    int rc = put(c, path, container, out);
    if (rc)
        return rc;
    snprintf(path, sizeof path, "data/%s/versions/%s", name, version);
    json_t *v = json_pack("{s:{s:s, s:s, s:s*}}", "properties", "dataType", "uri_file", "dataUri",
                          uri, "description", description);
    return put(c, path, v, out);
}

/* ---------------------------------------------------------------- environments */

int azureml_environment_version_put(arm_client *c, const char *name, const char *version,
                                    const char *image, const char *description, arm_result *out)
{
    if (!name_ok(name) || !version_ok(version))
        return refuse(out, "environment name or version is not valid");
    if (!image || !*image || strlen(image) > 1024 || strpbrk(image, " \t\r\n"))
        return refuse(out, "image must be a container image reference");
    char path[NAME_MAX_LEN + VERSION_MAX_LEN + 40];
    snprintf(path, sizeof path, "environments/%s/versions/%s", name, version);
    json_t *body = json_pack("{s:{s:s, s:s, s:s*}}", "properties", "image", image, "osType",
                             "Linux", "description", description);
    return put(c, path, body, out);
}

/* ---------------------------------------------------------------- jobs */

static const char *const input_types[] = {"uri_file",     "uri_folder",   "mltable", "custom_model",
                                          "mlflow_model", "triton_model", NULL};
static const char *const input_modes[] = {"ReadOnlyMount", "ReadWriteMount", "Download", "Direct",
                                          "EvalMount",     "EvalDownload",   NULL};
static const char *const output_modes[] = {"ReadWriteMount", "Upload", "Direct", NULL};

/* {name: {jobInputType|jobOutputType, uri, mode}} or NULL with why set. new: json_decref. */
static json_t *bindings(const azureml_binding *b, size_t n, int inputs, const char **why)
{
    json_t *obj = json_object();
    for (size_t i = 0; i < n; i++) {
        const char *type = b[i].type ? b[i].type : inputs ? "uri_file" : "uri_folder";
        if (!binding_ok(b[i].name) || json_object_get(obj, b[i].name)) {
            *why = "binding names must be unique identifiers ([A-Za-z_][A-Za-z0-9_]*)";
            goto bad;
        }
        if (!enum_ok(type, input_types)) {
            *why = "binding type must be uri_file, uri_folder, mltable or a model type";
            goto bad;
        }
        if (inputs ? !uri_ok(b[i].uri, 1) : (b[i].uri && !uri_ok(b[i].uri, 0))) {
            *why = inputs ? "every input needs an azureml: or https:// uri"
                          : "an output uri must be azureml:// or https://";
            goto bad;
        }
        if (b[i].mode && !enum_ok(b[i].mode, inputs ? input_modes : output_modes)) {
            *why = "binding mode is not one the spec lists";
            goto bad;
        }
        json_t *one = json_pack("{s:s, s:s*, s:s*}", inputs ? "jobInputType" : "jobOutputType",
                                type, "uri", b[i].uri, "mode", b[i].mode);
        if (!one) {
            *why = "a binding is not valid UTF-8";
            goto bad;
        }
        json_object_set_new(obj, b[i].name, one);
    }
    return obj;
bad:
    json_decref(obj);
    return NULL;
}

/* Hex SHA-256 prefix of s (16 characters + NUL). */
static void short_hash(const char *s, char out[17])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    static const char hex[] = "0123456789abcdef";
    if (!EVP_Digest(s, strlen(s), md, &n, EVP_sha256(), NULL) || n < 8) {
        snprintf(out, 17, "%016x", 0u);
        return;
    }
    for (int i = 0; i < 8; i++) {
        out[2 * i] = hex[md[i] >> 4];
        out[2 * i + 1] = hex[md[i] & 15];
    }
    out[16] = '\0';
}

static int is_asset_id(const char *s)
{
    return has_prefix(s, "/subscriptions/") || has_prefix(s, "azureml:");
}

/* The error says the job exists already (ARM's 400 UserError on an immutable change). */
static int job_exists_error(long status, json_t *error)
{
    if (status == 409)
        return 1;
    if (status != 400 || !json_is_object(error))
        return 0;
    const char *msg = json_string_value(json_object_get(error, "message"));
    if (msg && strcasestr(msg, "already exists"))
        return 1;
    for (json_t *e = error; json_is_object(e);) {
        json_t *inner = json_object_get(e, "innerError");
        if (!inner)
            inner = json_object_get(e, "innererror");
        const char *code = json_string_value(json_object_get(inner, "code"));
        if (code && (!strcmp(code, "Immutable") || !strcmp(code, "JobPropertyImmutable")))
            return 1;
        e = inner;
    }
    return 0;
}

int azureml_command_job_put(arm_client *c, const azureml_command_job *job, arm_result *out)
{
    const char *why = NULL;
    json_t *body = NULL, *props = NULL, *ins = NULL, *outs = NULL;
    char *ws = NULL, *compute_id = NULL, *env_id = NULL;
    int rc = RST_EINVAL;
    if (!job || !name_ok(job->job_name)) {
        rc = refuse(out, "job name must match ^[a-zA-Z0-9][a-zA-Z0-9-_]{0,254}$");
        goto out;
    }
    if (!text_ok(job->command) || !job->compute || !job->environment) {
        rc = refuse(out, "a job needs a command, a compute and an environment");
        goto out;
    }
    if (job->experiment && !name_ok(job->experiment)) {
        rc = refuse(out, "experiment name is not valid");
        goto out;
    }
    if (!string_map_ok(job->tags) || !string_map_ok(job->environment_variables)) {
        rc = refuse(out, "tags and environment variables must be {string: string}");
        goto out;
    }
    if (job->instance_count < 0 || job->timeout_seconds < 0) {
        rc = refuse(out, "instance count and timeout cannot be negative");
        goto out;
    }
    if (!(ins = bindings(job->inputs, job->ninputs, 1, &why)) ||
        !(outs = bindings(job->outputs, job->noutputs, 0, &why))) {
        rc = refuse(out, why);
        goto out;
    }
    ws = arm_workspace_id(c);
    if (has_prefix(job->compute, "/subscriptions/"))
        compute_id = xstrdup(job->compute);
    else if (name_ok(job->compute))
        compute_id = xasprintf("%s/computes/%s", ws, job->compute);
    else {
        rc = refuse(out, "compute must be a compute name or an ARM id");
        goto out;
    }
    if (is_asset_id(job->environment)) {
        env_id = xstrdup(job->environment);
    } else {
        /* A container image: register it under a name derived from the image, so the same
         * image always maps to the same (immutable) environment version. */
        char version[17];
        short_hash(job->environment, version);
        rc = azureml_environment_version_put(c, IMAGE_ENV_NAME, version, job->environment,
                                             "container image registered by Roastery", out);
        if (rc)
            goto out;
        env_id = xasprintf("%s/environments/%s/versions/%s", ws, IMAGE_ENV_NAME, version);
    }
    props = json_pack("{s:s, s:s, s:s, s:s, s:s, s:s*, s:s*}", "jobType", "Command", "command",
                      job->command, "environmentId", env_id, "computeId", compute_id,
                      "experimentName", job->experiment ? job->experiment : "Default",
                      "displayName", job->display_name, "description", job->description);
    if (!props) {
        rc = refuse(out, "a job field is not valid UTF-8");
        goto out;
    }
    if (json_object_size(ins))
        json_object_set(props, "inputs", ins);
    if (json_object_size(outs))
        json_object_set(props, "outputs", outs);
    set_copy(props, "tags", job->tags);
    set_copy(props, "environmentVariables", job->environment_variables);
    if (job->instance_type || job->instance_count > 0) {
        json_t *res = json_object();
        set_str(res, "instanceType", job->instance_type);
        if (job->instance_count > 0)
            json_object_set_new(res, "instanceCount", json_integer(job->instance_count));
        json_object_set_new(props, "resources", res);
    }
    if (job->timeout_seconds > 0) {
        char timeout[32];
        snprintf(timeout, sizeof timeout, "PT%dS", job->timeout_seconds);
        json_object_set_new(
            props, "limits",
            json_pack("{s:s, s:s}", "jobLimitsType", "Command", "timeout", timeout));
    }
    body = json_pack("{s:o}", "properties", props);
    props = NULL;
    char path[NAME_MAX_LEN + 8];
    snprintf(path, sizeof path, "jobs/%s", job->job_name);
    rc = arm_request(c, "PUT", path, body, 1, out);
    if (rc == RST_OK && out->status == 200) {
        out->existed = 1; /* updated in place: it was there */
    } else if (rc && job_exists_error(out->status, out->error)) {
        /* Submitted before (a crash between PUT and recording it): adopt what ARM has. */
        rc = get(c, path, out);
        if (rc == RST_OK)
            out->existed = 1;
    }
out:
    json_decref(body);
    json_decref(props);
    json_decref(ins);
    json_decref(outs);
    free(ws);
    free(compute_id);
    free(env_id);
    return rc;
}

int azureml_job_get(arm_client *c, const char *name, arm_result *out)
{
    if (!name_ok(name))
        return refuse(out, "job name is not valid");
    char path[NAME_MAX_LEN + 8];
    snprintf(path, sizeof path, "jobs/%s", name);
    return get(c, path, out);
}

int azureml_job_cancel(arm_client *c, const char *name, int wait, arm_result *out)
{
    if (!name_ok(name))
        return refuse(out, "job name is not valid");
    char path[NAME_MAX_LEN + 16];
    snprintf(path, sizeof path, "jobs/%s/cancel", name);
    return arm_request(c, "POST", path, NULL, wait, out);
}

static const struct {
    const char *azure;
    const char *ours;
} job_states[] = {
    {"NotStarted", "queued"},     {"Queued", "queued"},          {"Paused", "queued"},
    {"Starting", "preparing"},    {"Provisioning", "preparing"}, {"Preparing", "preparing"},
    {"Running", "running"},       {"Finalizing", "running"},     {"CancelRequested", "running"},
    {"NotResponding", "running"}, {"Completed", "completed"},    {"Failed", "failed"},
    {"Canceled", "canceled"},
};

const char *azureml_job_status_map(const char *azure_status)
{
    for (size_t i = 0; azure_status && i < sizeof job_states / sizeof job_states[0]; i++)
        if (!strcasecmp(azure_status, job_states[i].azure))
            return job_states[i].ours;
    return NULL;
}

int azureml_job_status_terminal(const char *azure_status)
{
    return azure_status &&
           (!strcasecmp(azure_status, "Completed") || !strcasecmp(azure_status, "Failed") ||
            !strcasecmp(azure_status, "Canceled"));
}

/* ---------------------------------------------------------------- models */

int azureml_model_version_put(arm_client *c, const char *name, const char *version,
                              const char *path, const char *description, json_t *tags,
                              json_t *properties, arm_result *out)
{
    if (!name_ok(name) || !version_ok(version))
        return refuse(out, "model name or version is not valid");
    if (!uri_ok(path, 0))
        return refuse(out, "model path must be an azureml:// or https:// URI");
    if (!string_map_ok(tags) || !string_map_ok(properties))
        return refuse(out, "model tags and properties must be {string: string}");
    char url[NAME_MAX_LEN + VERSION_MAX_LEN + 32];
    snprintf(url, sizeof url, "models/%s", name);
    int rc = put(c, url, json_pack("{s:{}}", "properties"), out);
    if (rc)
        return rc;
    json_t *props = json_pack("{s:s, s:s, s:s*}", "modelUri", path, "modelType", "custom_model",
                              "description", description);
    if (!props)
        return refuse(out, "a model field is not valid UTF-8");
    /* azureml://jobs/<job>/outputs/...: the lineage field jobName. */
    if (has_prefix(path, "azureml://jobs/")) {
        const char *job = path + strlen("azureml://jobs/");
        size_t n = strcspn(job, "/");
        char *jn = xstrndup(job, n);
        if (name_ok(jn))
            json_object_set_new(props, "jobName", json_string(jn));
        free(jn);
    }
    set_copy(props, "tags", tags);
    set_copy(props, "properties", properties);
    snprintf(url, sizeof url, "models/%s/versions/%s", name, version);
    return put(c, url, json_pack("{s:o}", "properties", props), out);
}

/* ---------------------------------------------------------------- online endpoints */

static const char *const auth_modes[] = {"AMLToken", "Key", "AADToken", NULL};

/* The endpoint resource we own: {location, identity, properties {authMode[, traffic]}}. */
static json_t *endpoint_body(arm_client *c, const char *auth_mode, json_t *traffic)
{
    json_t *props = json_pack("{s:s}", "authMode", auth_mode);
    set_copy(props, "traffic", traffic);
    return json_pack("{s:s, s:{s:s}, s:o}", "location", arm_location(c), "identity", "type",
                     "SystemAssigned", "properties", props);
}

int azureml_online_endpoint_put(arm_client *c, const char *name, const char *auth_mode,
                                arm_result *out)
{
    if (!name_ok(name))
        return refuse(out, "endpoint name is not valid");
    if (!enum_ok(auth_mode, auth_modes))
        return refuse(out, "auth mode must be AMLToken, Key or AADToken");
    if (!arm_location(c))
        return refuse(out, "online endpoints need the workspace location");
    char path[NAME_MAX_LEN + 24];
    snprintf(path, sizeof path, "onlineEndpoints/%s", name);
    return put(c, path, endpoint_body(c, auth_mode, NULL), out);
}

int azureml_online_endpoint_get(arm_client *c, const char *name, arm_result *out)
{
    if (!name_ok(name))
        return refuse(out, "endpoint name is not valid");
    char path[NAME_MAX_LEN + 24];
    snprintf(path, sizeof path, "onlineEndpoints/%s", name);
    return get(c, path, out);
}

int azureml_online_endpoint_set_traffic(arm_client *c, const char *endpoint, const char *auth_mode,
                                        json_t *traffic, arm_result *out)
{
    if (!name_ok(endpoint))
        return refuse(out, "endpoint name is not valid");
    if (!enum_ok(auth_mode, auth_modes))
        return refuse(out, "auth mode must be AMLToken, Key or AADToken");
    if (!arm_location(c))
        return refuse(out, "online endpoints need the workspace location");
    if (!json_is_object(traffic))
        return refuse(out, "traffic must be {deployment: percent}");
    long long total = 0;
    const char *k;
    json_t *v;
    json_object_foreach(traffic, k, v)
    {
        if (!name_ok(k) || !json_is_integer(v) || json_integer_value(v) < 0 ||
            json_integer_value(v) > 100)
            return refuse(out, "traffic maps deployment names to integer percents 0-100");
        total += json_integer_value(v);
    }
    if (total != 0 && total != 100)
        return refuse(out, "traffic percents must sum to 100 (or all be 0)");
    char path[NAME_MAX_LEN + 24];
    snprintf(path, sizeof path, "onlineEndpoints/%s", endpoint);
    return put(c, path, endpoint_body(c, auth_mode, traffic), out);
}

int azureml_online_deployment_put(arm_client *c, const char *endpoint, const char *deployment,
                                  const azureml_deployment *d, arm_result *out)
{
    if (!name_ok(endpoint) || !name_ok(deployment))
        return refuse(out, "endpoint or deployment name is not valid");
    if (!d || !d->model || !*d->model || strpbrk(d->model, " \t\r\n"))
        return refuse(out, "a deployment needs a model id");
    if (!d->instance_type || !name_ok(d->instance_type) || d->instance_count < 1)
        return refuse(out, "a deployment needs an instance type and at least one instance");
    if ((d->code_id != NULL) != (d->scoring_script != NULL) ||
        (d->scoring_script && !*d->scoring_script))
        return refuse(out, "code id and scoring script go together");
    if (d->environment && !is_asset_id(d->environment))
        return refuse(out, "environment must be an ARM id or azureml: asset id");
    if (!string_map_ok(d->environment_variables))
        return refuse(out, "environment variables must be {string: string}");
    if (!arm_location(c))
        return refuse(out, "online deployments need the workspace location");
    json_t *props = json_pack("{s:s, s:s, s:s, s:s*, s:s*}", "endpointComputeType", "Managed",
                              "model", d->model, "instanceType", d->instance_type, "environmentId",
                              d->environment, "description", d->description);
    if (!props)
        return refuse(out, "a deployment field is not valid UTF-8");
    if (d->scoring_script)
        json_object_set_new(
            props, "codeConfiguration",
            json_pack("{s:s, s:s}", "codeId", d->code_id, "scoringScript", d->scoring_script));
    set_copy(props, "environmentVariables", d->environment_variables);
    /* Managed deployments scale through the ARM sku: capacity is the instance count. */
    json_t *body = json_pack("{s:s, s:{s:s, s:i}, s:o}", "location", arm_location(c), "sku", "name",
                             "Default", "capacity", d->instance_count, "properties", props);
    char path[2 * NAME_MAX_LEN + 40];
    snprintf(path, sizeof path, "onlineEndpoints/%s/deployments/%s", endpoint, deployment);
    return put(c, path, body, out);
}

int azureml_online_deployment_get(arm_client *c, const char *endpoint, const char *deployment,
                                  arm_result *out)
{
    if (!name_ok(endpoint) || !name_ok(deployment))
        return refuse(out, "endpoint or deployment name is not valid");
    char path[2 * NAME_MAX_LEN + 40];
    snprintf(path, sizeof path, "onlineEndpoints/%s/deployments/%s", endpoint, deployment);
    return get(c, path, out);
}

int azureml_online_deployment_delete(arm_client *c, const char *endpoint, const char *deployment,
                                     arm_result *out)
{
    if (!name_ok(endpoint) || !name_ok(deployment))
        return refuse(out, "endpoint or deployment name is not valid");
    char path[2 * NAME_MAX_LEN + 40];
    snprintf(path, sizeof path, "onlineEndpoints/%s/deployments/%s", endpoint, deployment);
    return arm_request(c, "DELETE", path, NULL, 1, out);
}

/* ---------------------------------------------------------------- datastores */

int azureml_datastore_get(arm_client *c, const char *name, arm_result *out)
{
    if (!name_ok(name))
        return refuse(out, "datastore name is not valid");
    char path[NAME_MAX_LEN + 16];
    snprintf(path, sizeof path, "datastores/%s", name);
    return get(c, path, out);
}

int azureml_datastore_blob(const arm_result *r, const char **account, const char **container,
                           const char **endpoint_suffix)
{
    json_t *p = json_object_get(r->body, "properties");
    const char *type = json_string_value(json_object_get(p, "datastoreType"));
    const char *a = json_string_value(json_object_get(p, "accountName"));
    const char *ct = json_string_value(json_object_get(p, "containerName"));
    const char *e = json_string_value(json_object_get(p, "endpoint"));
    if (!type || strcmp(type, "AzureBlob") || !a || !*a || !ct || !*ct)
        return RST_EINVAL;
    *account = a;
    *container = ct;
    if (endpoint_suffix)
        *endpoint_suffix = e ? e : "core.windows.net";
    return RST_OK;
}
