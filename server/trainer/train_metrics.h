/* Forecast accuracy sums: WAPE, MAPE, sMAPE, RMSE, bias and the coverage of
 * prediction intervals, overall or for any slice (a store, a product). */
#ifndef ROASTERY_TRAIN_METRICS_H
#define ROASTERY_TRAIN_METRICS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    double abs_err;    /* sum |y - f| */
    double abs_y;      /* sum |y| */
    double sq_err;     /* sum (y - f)^2 */
    double signed_err; /* sum (f - y) */
    double sum_y;      /* sum y */
    double ape;        /* sum |y - f| / |y| over y != 0 */
    double smape;      /* sum 2|y - f| / (|y| + |f|), 0 when both are 0 */
    uint64_t n, n_ape, in80, in95;
} train_metrics;

/* Adds one forecast; the interval bounds may be NaN (then not counted). */
void train_metrics_add(train_metrics *m, double y, double f, double lo80, double hi80, double lo95,
                       double hi95);

/* Adds b into a. */
void train_metrics_merge(train_metrics *a, const train_metrics *b);

/* WAPE (sum |y - f| / sum |y|), NaN when there are no sales. */
double train_metrics_wape(const train_metrics *m);

/* new: {"wape", "mape", "smape", "rmse", "bias", "coverage80", "coverage95", "n"};
 * undefined figures (no sales, no rows) are null. */
json_t *train_metrics_json(const train_metrics *m);

#endif
