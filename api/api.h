/* The route table of the whole API, one handler file per resource. */
#ifndef ROASTERY_API_H
#define ROASTERY_API_H

#include <stddef.h>

#include "http.h"

/* borrowed: a static table; *count receives its length. */
const http_route *api_routes(size_t *count);

/* health.c */
void api_healthz(http_req *req);
void api_readyz(http_req *req);
void api_metrics(http_req *req);
void api_openapi(http_req *req);

/* operations.c */
void api_operations_list(http_req *req);
void api_operations_show(http_req *req);
void api_operations_cancel(http_req *req);

#endif
