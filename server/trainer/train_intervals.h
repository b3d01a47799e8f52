/* Prediction intervals calibrated on a validation window: empirical quantiles
 * of the residuals y - forecast, in bins of the forecast level, so that the
 * wider spread of big counts gets wider intervals. */
#ifndef ROASTERY_TRAIN_INTERVALS_H
#define ROASTERY_TRAIN_INTERVALS_H

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define TRAIN_INTERVALS_MAX_BINS 10
#define TRAIN_INTERVALS_MIN_BIN 200 /* residuals per bin at least */

enum { TRAIN_INTERVALS_LO80, TRAIN_INTERVALS_HI80, TRAIN_INTERVALS_LO95, TRAIN_INTERVALS_HI95 };

typedef struct {
    int nbins;
    /* forecasts up to upper[k] fall in bin k; the last bin takes the rest */
    double upper[TRAIN_INTERVALS_MAX_BINS];
    /* residual quantiles 10 %, 90 %, 2.5 %, 97.5 %, in TRAIN_INTERVALS_* order */
    double q[TRAIN_INTERVALS_MAX_BINS][4];
    uint64_t count[TRAIN_INTERVALS_MAX_BINS]; /* residuals behind each bin */
} train_intervals;

/* Fits the bins on n pairs of actuals y and forecasts f (both borrowed).
 * With n == 0 the intervals are the forecast itself. Never fails. */
void train_intervals_fit(train_intervals *iv, const float *y, const float *f, size_t n);

/* out[TRAIN_INTERVALS_LO80 .. TRAIN_INTERVALS_HI95] for forecast f; lower
 * bounds are at least 0. */
void train_intervals_apply(const train_intervals *iv, double f, double out[4]);

/* new: {"method": ..., "bins": [{"upper", "n", "lo80", "hi80", "lo95", "hi95"}]}
 * ("upper" is null for the last bin). */
json_t *train_intervals_json(const train_intervals *iv);

/* Reads train_intervals_json's output back. RST_OK or RST_EINVAL. */
int train_intervals_from_json(train_intervals *iv, const json_t *j);

#endif
