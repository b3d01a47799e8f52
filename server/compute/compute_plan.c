/* Renders main.tf.json for a compute request. */
#include "compute/compute_plan.h"
#include "lib/util.h"

#include <stdio.h>
#include <string.h>

const char *compute_plan_module(const char *kind)
{
    if (!kind)
        return NULL;
    if (!strcmp(kind, "cluster"))
        return "aml_compute_cluster";
    if (!strcmp(kind, "inference"))
        return "aml_inference_cluster";
    if (!strcmp(kind, "instance"))
        return "aml_compute_instance";
    return NULL;
}

char *compute_plan_workspace_id(const config *cfg)
{
    return xasprintf("/subscriptions/%s/resourceGroups/%s/providers/"
                     "Microsoft.MachineLearningServices/workspaces/%s",
                     cfg->azure_subscription_id, cfg->azure_resource_group,
                     cfg->azureml_workspace);
}

/* The module's arguments: exactly the variables of its variables.tf (the
 * lint compares them), null where the module's default applies. */
static json_t *module_args(const compute_spec *s, const config *cfg, const char *module)
{
    char *ws = compute_plan_workspace_id(cfg);
    json_t *tags = json_pack("{s:s, s:s, s:s, s:s}", "managed-by", "roastery", "roastery-project",
                             s->project, "roastery-compute", s->id, "roastery-kind", s->kind);
    json_t *a = json_pack("{s:s, s:s, s:s, s:s, s:n, s:o}", "name", s->name, "location",
                          s->region, "workspace_id", ws, "vm_size", s->vm_size, "subnet_id",
                          "tags", tags);
    free(ws);
    if (!strcmp(module, "aml_compute_cluster")) {
        json_object_set_new(a, "vm_priority",
                            json_string(!strcmp(s->priority, "low_priority") ? "LowPriority"
                                                                            : "Dedicated"));
        json_object_set_new(a, "min_nodes", json_integer(s->min_nodes));
        json_object_set_new(a, "max_nodes", json_integer(s->max_nodes));
        json_object_set_new(a, "idle_minutes", json_integer(s->idle_minutes));
    } else if (!strcmp(module, "aml_inference_cluster")) {
        json_object_set_new(a, "resource_group_name", json_string(cfg->azure_resource_group));
        json_object_set_new(a, "min_nodes", json_integer(s->min_nodes));
        json_object_set_new(a, "max_nodes", json_integer(s->max_nodes));
        /* Azure ML wants 12 vCPUs or more in all for FastProd; smaller is DevTest. */
        json_object_set_new(a, "cluster_purpose",
                            json_string((long)s->vcpus * s->max_nodes >= 12 ? "FastProd"
                                                                            : "DevTest"));
    } else {
        json_object_set_new(a, "assigned_user_object_id",
                            s->requester_oid ? json_string(s->requester_oid) : json_null());
        json_object_set_new(a, "assigned_user_tenant_id",
                            s->requester_tid ? json_string(s->requester_tid) : json_null());
    }
    return a;
}

json_t *compute_plan_render(const compute_spec *s, const config *cfg)
{
    const char *module = compute_plan_module(s->kind);
    if (!module)
        return NULL;
    char key[128];
    snprintf(key, sizeof key, "roastery/compute/%s.tfstate", s->id);
    json_t *args = module_args(s, cfg, module);
    char *source = xasprintf("%s/%s", cfg->terraform_modules, module);
    json_object_set_new(args, "source", json_string(source));
    free(source);
    json_t *root = json_pack(
        "{s:{s:s, s:{s:{s:s, s:s}}, s:{s:{s:s, s:s, s:s, s:s, s:b}}},"
        " s:{s:{s:{}, s:s}}, s:{s:o}, s:{s:{s:s, s:s}}}",
        "terraform", "required_version", ">= 1.5.0", "required_providers", "azurerm", "source",
        "hashicorp/azurerm", "version", COMPUTE_PLAN_AZURERM_VERSION, "backend", "azurerm",
        "resource_group_name", cfg->tf_state_resource_group, "storage_account_name",
        cfg->tf_state_storage_account, "container_name", cfg->tf_state_container, "key", key,
        "use_azuread_auth", 1, "provider", "azurerm", "features", "subscription_id",
        cfg->azure_subscription_id, "module", "compute", args, "output", "id", "value",
        "${module.compute.id}", "description", "ARM id of the compute");
    return root;
}
