/* The trees of an XGBoost model.json evaluated over dense feature rows, bit for bit as XGBoost
 * 1.7 predicts them and several times faster (forecasts/xgb_forest.c says how); the forecast
 * generator uses it once its predictions matched XGBoost's. */
#ifndef ROASTERY_XGB_FOREST_H
#define ROASTERY_XGB_FOREST_H

#include <stddef.h>

typedef struct xgb_forest xgb_forest;

/* new: the trees of an XGBoost JSON model (a gbtree with one output) over nfeat features, or
 * NULL when the model has anything this evaluator does not know; free with xgb_forest_free. */
xgb_forest *xgb_forest_load(const char *data, size_t len, int nfeat);

/* Predicts rows rows of x (rows x nfeat floats, NaN = missing) into out on threads threads. */
void xgb_forest_predict(const xgb_forest *f, const float *x, size_t rows, int threads, float *out);

/* NULL-safe. */
void xgb_forest_free(xgb_forest *f);

#endif
