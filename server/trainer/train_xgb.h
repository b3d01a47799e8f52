/* The trainer's use of XGBoost's C API: parameters (defaults, the --params
 * overrides), training on a quantised matrix with early stopping on a
 * validation set, prediction, the model as JSON, feature importance. */
#ifndef ROASTERY_TRAIN_XGB_H
#define ROASTERY_TRAIN_XGB_H

#include <jansson.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>

typedef struct {
    double eta, subsample, colsample_bytree, min_child_weight, lambda, alpha;
    int max_depth, num_round, max_bin, early_stopping_rounds;
    char objective[32];
    int threads;
    uint64_t seed;
} train_xgb_params;

/* Fills the defaults documented in docs/trainer.md. */
void train_xgb_defaults(train_xgb_params *p);

/* Applies an object of overrides (checked first with run_limits'
 * train_params_check). RST_OK, or RST_EINVAL with "<key>: <reason>" in err. */
int train_xgb_params_apply(train_xgb_params *p, json_t *overrides, char *err, size_t errlen);

/* new: every parameter after defaults, as XGBoost and --params name them. */
json_t *train_xgb_params_json(const train_xgb_params *p);

/* One matrix: rows x nfeat floats, row-major, NaN = missing. Borrowed. */
typedef struct {
    const float *x;
    const float *y; /* labels, may be NULL for prediction */
    size_t rows;
} train_xgb_set;

/* Feature names and XGBoost types ("q", "c"), nfeat of each. Borrowed. */
typedef struct {
    int nfeat;
    const char *const *names;
    const char *const *types;
} train_xgb_schema;

/* Called after each boosting round with the validation RMSE and MAE. */
typedef void (*train_xgb_round_fn)(void *arg, int round, double rmse, double mae);

typedef struct train_xgb train_xgb;

/* Trains up to num_round rounds, stopping when the validation MAE has not
 * improved for early_stopping_rounds rounds; the model keeps the rounds up to
 * the best one. Returns RST_OK with *out (new: caller frees with
 * train_xgb_free), RST_EUNAVAIL when stop became non-zero (checked between
 * rounds), or RST_EIO with XGBoost's message in err. */
int train_xgb_fit(const train_xgb_params *p, const train_xgb_schema *schema,
                  const train_xgb_set *train, const train_xgb_set *valid, train_xgb_round_fn cb,
                  void *arg, volatile sig_atomic_t *stop, train_xgb **out, char *err,
                  size_t errlen);

/* Predicts set->rows rows into out (caller's array of set->rows floats).
 * RST_OK or RST_EIO. */
int train_xgb_predict(train_xgb *m, const train_xgb_set *set, int nfeat, int threads, float *out,
                      char *err, size_t errlen);

/* The same prediction from x (rows x nfeat floats, row-major, NaN = missing,
 * borrowed) read in place by XGBoost (XGBoosterPredictFromDense: no DMatrix
 * copy), on the threads given to train_xgb_load; the same floats as
 * train_xgb_predict. Not for concurrent calls on one model. RST_OK or RST_EIO. */
int train_xgb_predict_dense(train_xgb *m, const float *x, size_t rows, int nfeat, float *out,
                            char *err, size_t errlen);

/* The model as XGBoost JSON. new: *json, caller frees with free(). RST_OK or RST_EIO. */
int train_xgb_save(train_xgb *m, char **json, size_t *len, char *err, size_t errlen);

/* Loads an XGBoost model file (JSON). RST_OK with *out (new: train_xgb_free),
 * or RST_EIO with err. */
int train_xgb_load(const char *path, int threads, train_xgb **out, char *err, size_t errlen);

/* 0-based round kept as the best (the model's last round). */
int train_xgb_best_iteration(const train_xgb *m);

/* new: {feature name: total gain}, the largest first; {} for a model without splits. */
json_t *train_xgb_importance(train_xgb *m);

/* "1.7.4". Static buffer. */
const char *train_xgb_version(void);

/* NULL-safe. */
void train_xgb_free(train_xgb *m);

#endif
