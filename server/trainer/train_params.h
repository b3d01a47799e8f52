/* What a training run may ask for, checked when the run is requested so a
 * worker never discovers a bad request: algorithm parameters (names, types,
 * ranges) and the history the trainer needs for a horizon and backtest. */
#ifndef ROASTERY_TRAIN_PARAMS_H
#define ROASTERY_TRAIN_PARAMS_H

#include <jansson.h>
#include <stddef.h>

#define TRAIN_DEFAULT_HORIZON 14
#define TRAIN_DEFAULT_BACKTEST 28
#define TRAIN_MAX_HORIZON 90

/* Checks params (an object) for algorithm. 0 when fine; otherwise 1 with
 * the offending field ("params.<key>") and the reason written. */
int train_params_check(const char *algorithm, json_t *params, char *field, size_t fieldlen,
                       char *reason, size_t reasonlen);

/* Days of history a run needs: the longest lag the features use, the
 * validation window for early stopping and calibration, the backtest. */
long train_min_days(int horizon, int backtest_days, int rolling_origins);

#endif
