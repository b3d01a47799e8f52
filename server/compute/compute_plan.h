/* The translation of a compute request into Terraform: a root module as
 * Terraform JSON (main.tf.json) with the azurerm backend for state, the
 * pinned provider and one module "compute" instantiating a module of
 * terraform/modules with the request's values. Pure: no I/O. */
#ifndef ROASTERY_COMPUTE_PLAN_H
#define ROASTERY_COMPUTE_PLAN_H

#include "core/config.h"

#include <jansson.h>

#define COMPUTE_PLAN_AZURERM_VERSION "4.14.0"
#define COMPUTE_PLAN_HOURS_PER_MONTH 730

/* What a request asks for; strings borrowed. */
typedef struct {
    const char *id;      /* compute target uuid */
    const char *project;
    const char *name;
    const char *kind;    /* cluster, inference, instance or local */
    const char *region;
    const char *vm_size;
    const char *priority; /* dedicated or low_priority */
    int min_nodes, max_nodes, idle_minutes;
    int vcpus; /* of one node, from the price table */
    const char *requester_oid; /* instance: the notebook's user; may be NULL */
    const char *requester_tid;
} compute_spec;

/* The module directory name a kind instantiates; NULL for local (nothing
 * to provision in Azure) or an unknown kind. Static string. */
const char *compute_plan_module(const char *kind);

/* The root module for spec. NULL when the kind has no module.
 * new: json_decref. */
json_t *compute_plan_render(const compute_spec *spec, const config *cfg);

/* The ARM id of the configured Azure ML workspace. new: free(). */
char *compute_plan_workspace_id(const config *cfg);

#endif
