/* Forecast generation: a saved model (model.json + features.json of `roastery
 * train`) applied to a sales history for every store x product and the days
 * after it, with the known future inputs (calendar, holidays, planned
 * promotions, carried prices, a weather outlook or the season's usual weather).
 * Rows come out in bounded blocks through a callback, so a caller can write
 * them to a file, a pipe or a COPY without holding them all. */
#ifndef ROASTERY_FORECAST_GEN_H
#define ROASTERY_FORECAST_GEN_H

#include "datasets/sales.h"
#include "forecasts/forecast_inputs.h"
#include "trainer/train_data.h"
#include "lib/util.h"

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* The CSV header of forecast_gen_format's rows (no line end). */
#define FORECAST_GEN_CSV_HEADER "store_id,product,date,forecast,lo80,hi80,lo95,hi95"

#define FORECAST_GEN_BLOCK_ROWS 262144 /* rows per block (feature matrix ~ 48 MiB) */

/* ---- the model ---------------------------------------------------------------------- */

typedef struct forecast_gen_model forecast_gen_model;

/* Loads dir/model.json and dir/features.json (xgboost, seasonal_naive or
 * moving_average). RST_OK with *out (new: caller frees with
 * forecast_gen_model_free), RST_EIO when a file cannot be read, RST_EINVAL when
 * it is not a model this version can use; err gets one line. */
int forecast_gen_model_load(const char *dir, int threads, forecast_gen_model **out, char *err,
                            size_t errlen);

/* The model's horizon in days (1..TRAIN_MAX_HORIZON). */
int forecast_gen_model_horizon(const forecast_gen_model *m);

/* "xgboost", "seasonal_naive" or "moving_average". Static string. */
const char *forecast_gen_model_algorithm(const forecast_gen_model *m);

/* SHA-256 of model.json, hex. borrowed: valid until the model is freed. */
const char *forecast_gen_model_sha256(const forecast_gen_model *m);

/* Days of history the model reads before the first forecast day (its longest
 * lag): a forecast made at origin o needs days [o + 1 - need, o]. */
int forecast_gen_model_history_days(const forecast_gen_model *m);

/* Predicts rows rows of x (row-major, the model's features each, NaN =
 * missing; borrowed) with forecast_gen's own evaluator of the model's trees
 * into out, on threads threads. RST_OK, or RST_EINVAL when the model has no
 * trees it evaluates (a baseline, an objective it does not know); then
 * forecast_gen_run lets XGBoost predict. */
int forecast_gen_model_predict(const forecast_gen_model *m, const float *x, size_t rows,
                               int threads, float *out);

/* NULL-safe. */
void forecast_gen_model_free(forecast_gen_model *m);

/* ---- generation --------------------------------------------------------------------- */

typedef struct {
    int32_t start;     /* first forecast day (days since 1970-01-01); INT32_MIN = the day after
                          the history's last day */
    int days;          /* forecast days; 0 = as many as the model reaches from start */
    int threads;       /* >= 1 */
    size_t block_rows; /* 0 = FORECAST_GEN_BLOCK_ROWS */
    volatile sig_atomic_t *stop; /* checked between blocks; may be NULL; borrowed */
} forecast_gen_options;

/* A block of rows: series [s0, s0 + nseries) of the history (train_data order:
 * store, then product) x days [day0, day0 + ndays). Row (series s0 + i, day
 * day0 + j) is at j * nseries + i of forecast, and 4 * that of bounds (lo80,
 * hi80, lo95, hi95, rounded to 3 decimals as backtest.csv has them). All
 * borrowed: valid during the callback. */
typedef struct {
    const train_data *history;
    size_t s0, nseries;
    int32_t day0; /* days since 1970-01-01 */
    int ndays;
    const float *forecast; /* >= 0 */
    const float *bounds;
    /* each store's and product's name as one CSV field (quoted when needed),
     * and the block's days as YYYY-MM-DD */
    char *const *store_csv, *const *product_csv;
    const char (*dates)[11];
} forecast_gen_block;

/* Return 0 to go on; anything else stops the generation, which returns it. */
typedef int (*forecast_gen_sink)(void *arg, const forecast_gen_block *b);

/* What forecast_gen_run resolved and did. */
typedef struct {
    int32_t start, origin; /* first forecast day; last history day used */
    int days;
    size_t series;
    uint64_t rows;
    size_t promoted_series_days;
    size_t outlook_used, outlook_ignored; /* outlook rows on / off the forecast's stores and days */
    size_t promotions_ignored;            /* promotion rows naming no store or product here */
    int own_trees;         /* 1: forecast_gen's tree evaluator predicted (the same floats as
                              XGBoost on every row checked); 0: XGBoost did */
    uint64_t checked_rows; /* rows predicted by both and compared */
} forecast_gen_stats;

enum {
    FORECAST_GEN_ESTART = 1,   /* start is too far after the history (err names --start) */
    FORECAST_GEN_EHORIZON = 2, /* days beyond what the model reaches (err names --horizon) */
    FORECAST_GEN_ESHORT = 3,   /* not enough history before start for the model's lags */
};

/* Forecasts every series of history (borrowed) for the options' days, calling
 * sink with blocks in series order. Returns RST_OK; FORECAST_GEN_E* (> 0) for
 * a request the model or history cannot serve; RST_EUNAVAIL when stop became
 * non-zero; RST_ENOMEM; RST_EIO (XGBoost); or the sink's non-zero value.
 * err gets one line. stats (may be NULL) is filled as far as it got. */
int forecast_gen_run(forecast_gen_model *m, const train_data *history, const forecast_inputs *in,
                     const forecast_gen_options *o, forecast_gen_sink sink, void *arg,
                     forecast_gen_stats *stats, char *err, size_t errlen);

/* ---- CSV ---------------------------------------------------------------------------- */

/* The longest line forecast_gen_format_row writes. */
#define FORECAST_GEN_MAX_LINE (2 * (2 * SALES_MAX_TEXT_BYTES + 2) + 11 + 5 * 24 + 8)

/* Writes the CSV line (with its "\n", no NUL) of row (series b->s0 + i, day
 * b->day0 + j) into dst, which has room for FORECAST_GEN_MAX_LINE bytes, and
 * returns its length. Numbers have 3 decimals, as backtest.csv. */
size_t forecast_gen_format_row(char *dst, const forecast_gen_block *b, size_t i, int j);

#endif
