/* Every route the server answers. openapi.yaml describes exactly these. */
#include "api.h"

static const http_route routes[] = {
    {"GET", "/healthz", api_healthz},
    {"GET", "/readyz", api_readyz},
    {"GET", "/metrics", api_metrics},
    {"GET", "/openapi.yaml", api_openapi},
    {"GET", "/api/v1/operations", api_operations_list},
    {"GET", "/api/v1/operations/{id}", api_operations_show},
    {"POST", "/api/v1/operations/{id}/cancel", api_operations_cancel},
};

const http_route *api_routes(size_t *count)
{
    *count = sizeof routes / sizeof routes[0];
    return routes;
}
