/* The trainer's features: "direct" forecasting, so a row (series, day t) only
 * reads sales up to t - horizon and the model never sees a sale after the
 * origin of any forecast it makes (t - origin <= horizon). Known future inputs
 * (calendar, holidays, planned promotions and prices, the weather outlook) are
 * read at t itself. The list, with what each one reads, is in docs/trainer.md. */
#ifndef ROASTERY_TRAIN_FEATURES_H
#define ROASTERY_TRAIN_FEATURES_H

#include "trainer/train_data.h"

#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

#define TRAIN_FEATURES_MAX 64
#define TRAIN_FEATURES_NAME 40
#define TRAIN_FEATURES_VERSION 1 /* bump when a feature's meaning changes */

/* A numeric feature that cannot be computed (history before the first day, an
 * undefined ratio) is -1, outside every feature's range, rather than NaN: a
 * matrix without NaN is dense for XGBoost, whose bin index is then one byte per
 * value instead of four (4x less memory, faster histograms). Categorical
 * features use NaN for a level the model never saw (scoring only). */
#define TRAIN_FEATURES_MISSING (-1.0f)

typedef struct {
    int horizon;
    int nfeat;
    char names[TRAIN_FEATURES_MAX][TRAIN_FEATURES_NAME];
    char types[TRAIN_FEATURES_MAX];       /* 'q' numeric, 'c' categorical (XGBoost feature_type) */
    uint8_t known[TRAIN_FEATURES_MAX];    /* 1: a known future input, read at the target day */
    int32_t lookback[TRAIN_FEATURES_MAX]; /* furthest day back it reads, relative to t */
    /* Scoring a saved model on other data: the data's index -> the model's
     * code, -1 when the model never saw the level (the feature is then
     * missing). NULL = identity. Owned; freed by train_features_clear. */
    int32_t *store_code, *product_code, *city_code, *holiday_code;
} train_features;

/* Fills f for a horizon (1..365). Never fails. */
void train_features_init(train_features *f, int horizon);

/* Frees the code maps (f stays usable with identity maps). */
void train_features_clear(train_features *f);

/* The first day index whose row has all short-history features (lags, the
 * 7/28-day windows): earlier rows are not used for training. */
int32_t train_features_first_day(const train_features *f);

/* The matrix of every series x days [t0, t1) (0 <= t0 <= t1 <= ndays), day
 * by day: row (series i, day t) at ((t - t0) * nseries + i) * nfeat, so a range
 * of days is a contiguous block of rows (missing values as described above). labels
 * (may be NULL) gets a new array of the quantities. Runs on threads threads.
 * new: caller frees both with free(); NULL (and no labels) when stop became
 * non-zero (stop may be NULL) or when the matrix does not fit in memory. */
float *train_features_matrix(const train_features *f, const train_data *d, int32_t t0, int32_t t1,
                             int threads, volatile sig_atomic_t *stop, float **labels);

/* The same rows into x (caller's: nseries x (t1 - t0) x nfeat floats, days
 * clamped as above), without labels: a caller that fills block after block
 * keeps one buffer. 0, or -1 when stop became non-zero. */
int train_features_fill(const train_features *f, const train_data *d, int32_t t0, int32_t t1,
                        int threads, volatile sig_atomic_t *stop, float *x);

/* The specification written to features.json: names, types, what each one
 * reads, known inputs, and the categorical levels with their codes.
 * new: caller json_decref's. */
json_t *train_features_json(const train_features *f, const train_data *d);

/* Prepares f to score a model trained with spec (features.json's "features"
 * object) on d: checks the version and the feature names, and maps d's stores,
 * products, cities and holiday names to the model's codes. RST_OK, or
 * RST_EINVAL with err set. */
int train_features_bind(train_features *f, const json_t *spec, const train_data *d, char *err,
                        size_t errlen);

#endif
