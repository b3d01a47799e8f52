/* Seasonal-naive and moving-average forecasts. */
#include "trainer/train_baselines.h"

#include <math.h>

const char *train_baselines_name(int b)
{
    static const char *const names[TRAIN_BASELINES__N] = {"seasonal_naive", "moving_average"};
    return b >= 0 && b < TRAIN_BASELINES__N ? names[b] : NULL;
}

float train_baselines_forecast(const train_data *d, int b, size_t i, int32_t origin, int32_t t)
{
    const float *q = d->qty + i * (size_t)d->ndays;
    if (t <= origin || origin >= d->ndays)
        return NAN;
    if (b == TRAIN_BASELINES_SEASONAL_NAIVE) {
        int32_t lead = t - origin, back = 7 * ((lead + 6) / 7);
        return t - back >= 0 ? q[t - back] : NAN;
    }
    if (origin - (TRAIN_BASELINES_WINDOW - 1) < 0)
        return NAN;
    double sum = 0;
    for (int32_t k = origin - (TRAIN_BASELINES_WINDOW - 1); k <= origin; k++)
        sum += q[k];
    return (float)(sum / TRAIN_BASELINES_WINDOW);
}
