/* Process metrics in Prometheus text format: requests by route and status,
 * a latency histogram, and gauges registered by other modules. */
#ifndef ROASTERY_METRICS_H
#define ROASTERY_METRICS_H

#include "lib/util.h"

/* Counts one request; route is a template (borrowed, must be static). */
void metrics_observe_request(const char *method, const char *route, int status,
                             double seconds);
/* Counts a named event, e.g. "roastery_jwks_fetch_failures_total". name is static. */
void metrics_count(const char *name, const char *help);
/* Appends every metric to out. */
void metrics_render(buf_t *out);
/* Frees the registered series (at exit, so leak checks stay quiet). */
void metrics_reset(void);

#endif
