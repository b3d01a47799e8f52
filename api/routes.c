/* Every route the server answers. openapi.yaml describes exactly these. */
#include "api.h"

static const http_route routes[] = {
    {"GET", "/healthz", api_healthz, HTTP_PUBLIC},
    {"GET", "/readyz", api_readyz, HTTP_PUBLIC},
    {"GET", "/metrics", api_metrics, HTTP_PUBLIC},
    {"GET", "/openapi.yaml", api_openapi, HTTP_PUBLIC},
    {"GET", "/api/v1/operations", api_operations_list, 0},
    {"GET", "/api/v1/operations/{id}", api_operations_show, 0},
    {"POST", "/api/v1/operations/{id}/cancel", api_operations_cancel, 0},
    {"GET", "/api/v1/me", api_me, 0},
    {"GET", "/api/v1/projects", api_projects_list, 0},
    {"POST", "/api/v1/projects", api_projects_create, 0},
    {"GET", "/api/v1/projects/{project}", api_projects_show, 0},
    {"PATCH", "/api/v1/projects/{project}", api_projects_update, 0},
    {"GET", "/api/v1/projects/{project}/members", api_members_list, 0},
    {"PUT", "/api/v1/projects/{project}/members/{oid}", api_members_put, 0},
    {"DELETE", "/api/v1/projects/{project}/members/{oid}", api_members_delete, 0},
    {"GET", "/api/v1/projects/{project}/datasets", api_datasets_list, 0},
    {"POST", "/api/v1/projects/{project}/datasets", api_datasets_create, 0},
    {"GET", "/api/v1/projects/{project}/datasets/{dataset}", api_datasets_show, 0},
    {"GET", "/api/v1/projects/{project}/datasets/{dataset}/versions", api_versions_list, 0},
    {"POST", "/api/v1/projects/{project}/datasets/{dataset}/versions", api_versions_create, 0},
    {"GET", "/api/v1/projects/{project}/datasets/{dataset}/versions/{number}", api_versions_show,
     0},
    {"GET", "/api/v1/projects/{project}/datasets/{dataset}/versions/{number}/profile",
     api_versions_profile, 0},
    {"GET", "/api/v1/projects/{project}/datasets/{dataset}/versions/{number}/rows",
     api_versions_rows, 0},
    {"GET", "/api/v1/projects/{project}/datasets/{dataset}/versions/{number}/daily-totals",
     api_versions_daily_totals, 0},
    {"GET", "/api/v1/projects/{project}/datasets/{dataset}/versions/{number}/canonical.csv",
     api_versions_canonical, 0},
    {"GET", "/api/v1/projects/{project}/datasets/{dataset}/versions/{number}/quarantine.csv",
     api_versions_quarantine, 0},
    {"GET", "/api/v1/stores", api_stores_list, 0},
    {"POST", "/api/v1/stores", api_stores_create, 0},
    {"GET", "/api/v1/stores/{store}", api_stores_show, 0},
    {"PATCH", "/api/v1/stores/{store}", api_stores_update, 0},
    {"GET", "/api/v1/stores/{store}/managers", api_store_managers_list, 0},
    {"PUT", "/api/v1/stores/{store}/managers/{oid}", api_store_managers_put, 0},
    {"DELETE", "/api/v1/stores/{store}/managers/{oid}", api_store_managers_delete, 0},
    {"GET", "/api/v1/users", api_users_list, 0},
    {"GET", "/api/v1/audit", api_audit_list, 0},
    {"GET", "/auth/dev/jwks.json", api_dev_jwks, HTTP_PUBLIC},
    {"POST", "/auth/dev/token", api_dev_token, HTTP_PUBLIC},
    {"GET", "/auth/dev/sign-in", api_dev_sign_in, HTTP_PUBLIC},
};

const http_route *api_routes(size_t *count)
{
    *count = sizeof routes / sizeof routes[0];
    return routes;
}
