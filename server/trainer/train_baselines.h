/* The two baselines every model is measured against, as functions of the
 * forecast origin (the last day whose sales are known) and the target day. */
#ifndef ROASTERY_TRAIN_BASELINES_H
#define ROASTERY_TRAIN_BASELINES_H

#include "trainer/train_data.h"

#include <stddef.h>
#include <stdint.h>

typedef enum {
    TRAIN_BASELINES_SEASONAL_NAIVE = 0,
    TRAIN_BASELINES_MOVING_AVERAGE,
    TRAIN_BASELINES__N
} train_baselines_kind;

#define TRAIN_BASELINES_WINDOW 28 /* moving_average: days up to and including the origin */

/* "seasonal_naive", "moving_average"; NULL out of range. Static strings. */
const char *train_baselines_name(int b);

/* Forecast of series i for day t (> origin) made at origin (day indexes):
 * seasonal_naive: the same weekday in the last full week before the origin,
 * y[t - 7 * ceil((t - origin) / 7)]; moving_average: the mean of y over the
 * TRAIN_BASELINES_WINDOW days ending at the origin. NaN when that history is
 * before the first day. d is borrowed. */
float train_baselines_forecast(const train_data *d, int b, size_t i, int32_t origin, int32_t t);

#endif
