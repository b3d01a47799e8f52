/* Accuracy of the forecasts as served, per project and week (accuracy_weekly):
 * recomputed by the operation accuracy.refresh whenever actuals arrive, read by
 * /metrics, and watched by the retraining policy's accuracy threshold. */
#ifndef ROASTERY_ACCURACY_H
#define ROASTERY_ACCURACY_H

#include <libpq-fe.h>

void accuracy_register(void);

/* Queues accuracy.refresh for every project with a current forecast run
 * (project NULL) or for one, unless one is already queued. RST_OK or RST_EDB. */
int accuracy_enqueue(PGconn *c, const char *project, const char *by);

#endif
