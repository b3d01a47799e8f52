/* roastery train: arguments, the phases (load, features, train, backtest,
 * write), rolling origins, the baselines beside the model, the outputs and
 * the exit statuses. The pieces live in train_data, train_features,
 * train_xgb, train_baselines, train_metrics and train_report.
 * size: the command and both its modes; score mode is to become trainer/trainer_score.c, the
 * argument parsing getopt_long (review 2026-12 §3.7). */
#include "trainer/trainer.h"

#include "trainer/train_params.h"
#include "datasets/sales.h"
#include "trainer/train_baselines.h"
#include "trainer/train_data.h"
#include "trainer/train_features.h"
#include "trainer/train_intervals.h"
#include "trainer/train_metrics.h"
#include "trainer/train_output.h"
#include "trainer/train_report.h"
#include "trainer/train_xgb.h"
#include "lib/util.h"
#include "lib/csvout.h"

#include <errno.h>
#include <math.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define MIN_VALIDATION 28 /* days; at least the horizon */
#define ALL_ALGS 3
#define MAX_ROUND_EVENTS 1000 /* per-round metric events of one model, at most about */

enum { ALG_XGBOOST = 0, ALG_SEASONAL_NAIVE, ALG_MOVING_AVERAGE };

static const char *const alg_names[ALL_ALGS] = {"xgboost", "seasonal_naive", "moving_average"};

static const char *const usage_text =
    "usage: roastery train --input FILE --output DIR\n"
    "                      [--algorithm xgboost|seasonal_naive|moving_average]\n"
    "                      [--horizon DAYS] [--backtest-days DAYS] [--rolling-origins K]\n"
    "                      [--seed N] [--params JSON] [--threads N]\n"
    "       roastery train --score MODEL_DIR --input FILE --output DIR [--backtest-days DAYS]\n"
    "\n"
    "Trains a daily demand forecast per store x product from a sales CSV and backtests it\n"
    "against seasonal-naive and moving-average baselines on the last --backtest-days days.\n"
    "Writes model.json, features.json, backtest.csv, metrics.json and run.json into DIR and\n"
    "JSON events (log, phase, metric, result) to stdout, one per line.\n"
    "With --score, scores a saved model (model.json + features.json) on the last\n"
    "--backtest-days days of FILE and writes metrics.json and backtest.csv.\n"
    "\n"
    "  --algorithm        default xgboost\n"
    "  --horizon          longest lead time in days, 1-90 (default 14)\n"
    "  --backtest-days    7-365 (default 28)\n"
    "  --rolling-origins  1-12, at most --backtest-days (default 1): K origins split the\n"
    "                     backtest window into K consecutive folds, one model each\n"
    "  --seed             0-2147483647 (default 42)\n"
    "  --params           JSON object of xgboost parameters: max_depth, eta, num_round,\n"
    "                     subsample, colsample_bytree, min_child_weight, lambda, alpha,\n"
    "                     max_bin, early_stopping_rounds, objective\n"
    "  --threads          default: the CPUs this process may use\n"
    "\n"
    "Exit status: 0 ok, 2 usage error, 3 the data cannot support the request, 1 other\n"
    "failures, 128 + signal (143) when stopped by SIGTERM (no partial outputs are left).\n";

typedef struct {
    const char *input, *output, *score, *dump;
    int algorithm;
    long horizon, backtest, origins, threads;
    int horizon_set;
    long seed;
    json_t *params; /* --params, owned */
    train_xgb_params xp;
} options;

static volatile sig_atomic_t stop_signal;

static void on_signal(int sig)
{
    stop_signal = sig;
}

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("roastery train: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (try --help)\n", stderr);
    va_end(ap);
    return TRAINER_EXIT_USAGE;
}

static long cpus(void)
{
    cpu_set_t set;
    CPU_ZERO(&set);
    if (sched_getaffinity(0, sizeof set, &set) == 0 && CPU_COUNT(&set) > 0)
        return CPU_COUNT(&set);
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? n : 1;
}

/* Fills o; returns -1 to go on, else the exit status (0 after --help). */
static int parse_args(int argc, char **argv, options *o)
{
    memset(o, 0, sizeof *o);
    o->algorithm = ALG_XGBOOST;
    o->horizon = TRAIN_DEFAULT_HORIZON;
    o->backtest = TRAIN_DEFAULT_BACKTEST;
    o->origins = 1;
    o->seed = 42;
    o->threads = cpus();
    const char *params = NULL;
    static const char *const with_value[] = {
        "--input", "--output", "--algorithm", "--horizon", "--backtest-days", "--rolling-origins",
        "--seed",  "--params", "--threads",   "--score",   "--dump-features"};
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (!strcmp(arg, "--help") || !strcmp(arg, "-h")) {
            fputs(usage_text, stdout);
            return 0;
        }
        const char *flag = NULL, *val = NULL;
        for (size_t k = 0; k < COUNT(with_value) && !flag; k++) {
            size_t n = strlen(with_value[k]);
            if (!strcmp(arg, with_value[k])) {
                flag = with_value[k];
                if (i + 1 >= argc)
                    return usage_error("%s needs a value", flag);
                val = argv[++i];
            } else if (!strncmp(arg, with_value[k], n) && arg[n] == '=') {
                flag = with_value[k];
                val = arg + n + 1;
            }
        }
        if (!flag)
            return usage_error("unknown option %s", arg);
        if (!strcmp(flag, "--input") || !strcmp(flag, "--output") || !strcmp(flag, "--score") ||
            !strcmp(flag, "--dump-features")) {
            if (!*val)
                return usage_error("%s needs a path", flag);
            if (!strcmp(flag, "--input"))
                o->input = val;
            else if (!strcmp(flag, "--output"))
                o->output = val;
            else if (!strcmp(flag, "--score"))
                o->score = val;
            else
                o->dump = val;
        } else if (!strcmp(flag, "--algorithm")) {
            o->algorithm = -1;
            for (int a = 0; a < ALL_ALGS; a++)
                if (!strcmp(val, alg_names[a]))
                    o->algorithm = a;
            if (o->algorithm < 0)
                return usage_error("--algorithm must be xgboost, seasonal_naive or "
                                   "moving_average, not '%.40s'",
                                   val);
        } else if (!strcmp(flag, "--horizon")) {
            if (parse_long(val, 1, TRAIN_MAX_HORIZON, &o->horizon))
                return usage_error("--horizon must be a whole number of days from 1 to %d",
                                   TRAIN_MAX_HORIZON);
            o->horizon_set = 1;
        } else if (!strcmp(flag, "--backtest-days")) {
            if (parse_long(val, 7, 365, &o->backtest))
                return usage_error("--backtest-days must be a whole number from 7 to 365");
        } else if (!strcmp(flag, "--rolling-origins")) {
            if (parse_long(val, 1, 12, &o->origins))
                return usage_error("--rolling-origins must be a whole number from 1 to 12");
        } else if (!strcmp(flag, "--seed")) {
            if (parse_long(val, 0, 2147483647L, &o->seed))
                return usage_error("--seed must be a whole number from 0 to 2147483647");
        } else if (!strcmp(flag, "--threads")) {
            if (parse_long(val, 1, 1024, &o->threads))
                return usage_error("--threads must be a whole number from 1 to 1024");
        } else {
            params = val;
        }
    }
    if (!o->input)
        return usage_error("--input is required");
    if (!o->output)
        return usage_error("--output is required");
    if (o->origins > o->backtest)
        return usage_error("--rolling-origins (%ld) must be at most --backtest-days (%ld)",
                           o->origins, o->backtest);
    train_xgb_defaults(&o->xp);
    o->xp.threads = (int)o->threads;
    o->xp.seed = (uint64_t)o->seed;
    if (params) {
        json_error_t jerr;
        o->params = json_loads(params, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(o->params))
            return usage_error("--params must be a JSON object (%s)",
                               o->params ? "not an object" : jerr.text);
        char field[80], reason[240];
        if (o->score && json_object_size(o->params))
            return usage_error("--params does not apply to --score");
        if (train_params_check(alg_names[o->algorithm], o->params, field, sizeof field, reason,
                               sizeof reason))
            return usage_error("--params: %s %s", field + strlen("params."), reason);
        if (o->algorithm == ALG_XGBOOST) {
            char err[300];
            if (train_xgb_params_apply(&o->xp, o->params, err, sizeof err))
                return usage_error("--params: %s", err);
        }
    }
    return -1;
}

/* ---- helpers --------------------------------------------------------------------------- */

static void iso_now(char out[32])
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void date_of(const train_data *d, int32_t t, char out[11])
{
    sales_format_date(d->first_day + t, out);
}

/* The origin of day t in a window starting at w0 where origins come every h days. */
static int32_t origin_of(int32_t w0, int h, int32_t t)
{
    return w0 - 1 + ((t - w0) / h) * h;
}

static int stopped_status(void)
{
    train_report_log("warn", "stopped by signal %d: no outputs were written", (int)stop_signal);
    return 128 + (int)stop_signal;
}

typedef struct {
    int32_t a, b; /* backtest days [a, b) of this fold */
    int32_t v0;   /* validation days [v0, a) */
    train_xgb *model;
    train_intervals iv[ALL_ALGS];
    train_metrics m; /* the main algorithm on this fold */
} fold;

typedef struct {
    const options *o;
    const train_data *d;
    train_features f;
    int32_t tf;   /* first row day of the matrix */
    float *x, *y; /* rows of days [tf, ndays), day by day */
    int32_t w0;   /* first backtest day */
    int nfolds;
    fold folds[12];
    /* forecasts and bounds of every backtest row: [alg][(t - w0) * nseries + i] */
    float *fc[ALL_ALGS];
    float *bounds[ALL_ALGS]; /* 4 per row */
    train_metrics overall[ALL_ALGS];
    train_metrics *per_store, *per_product; /* the main algorithm */
    train_metrics valid_main;
} run;

static const float *rows_of(const run *r, int32_t t)
{
    return r->x + (size_t)(t - r->tf) * r->d->nseries * (size_t)r->f.nfeat;
}

static const float *labels_of(const run *r, int32_t t)
{
    return r->y + (size_t)(t - r->tf) * r->d->nseries;
}

/* ---- training ------------------------------------------------------------------------ */

typedef struct {
    int fold, folds, every;
    double wape_per_mae; /* validation rows / sum of validation sales */
} round_ctx;

static void on_round(void *arg, int round, double rmse, double mae)
{
    round_ctx *c = arg;
    if (round % c->every)
        return;
    char name[48];
    const char *pre = "";
    char prefix[24] = "";
    if (c->fold != c->folds - 1) {
        snprintf(prefix, sizeof prefix, "fold%d-", (c->fold + 1) % 100);
        pre = prefix;
    }
    snprintf(name, sizeof name, "%svalid-rmse", pre);
    train_report_metric(round, name, rmse);
    snprintf(name, sizeof name, "%svalid-mae", pre);
    train_report_metric(round, name, mae);
    snprintf(name, sizeof name, "%svalid-wape", pre);
    train_report_metric(round, name, c->wape_per_mae > 0 ? mae * c->wape_per_mae : NAN);
}

static int train_models(run *r, char *err, size_t errlen)
{
    const size_t N = r->d->nseries;
    const char *names[TRAIN_FEATURES_MAX], *types[TRAIN_FEATURES_MAX];
    static const char *const type_q = "q", *const type_c = "c";
    for (int k = 0; k < r->f.nfeat; k++) {
        names[k] = r->f.names[k];
        types[k] = r->f.types[k] == 'c' ? type_c : type_q;
    }
    train_xgb_schema schema = {r->f.nfeat, names, types};
    for (int j = 0; j < r->nfolds; j++) {
        fold *fo = &r->folds[j];
        train_xgb_set tr = {rows_of(r, r->tf), labels_of(r, r->tf), (size_t)(fo->v0 - r->tf) * N};
        train_xgb_set va = {rows_of(r, fo->v0), labels_of(r, fo->v0), (size_t)(fo->a - fo->v0) * N};
        double sum = 0;
        for (size_t k = 0; k < va.rows; k++)
            sum += fabs(va.y[k]);
        round_ctx rc = {j, r->nfolds, 1, sum > 0 ? (double)va.rows / sum : 0};
        if (r->o->xp.num_round > MAX_ROUND_EVENTS)
            rc.every = (r->o->xp.num_round + MAX_ROUND_EVENTS - 1) / MAX_ROUND_EVENTS;
        char d0[11], d1[11], v0[11], v1[11];
        date_of(r->d, r->tf, d0);
        date_of(r->d, fo->v0 - 1, d1);
        date_of(r->d, fo->v0, v0);
        date_of(r->d, fo->a - 1, v1);
        train_report_log("info",
                         "fold %d/%d: training on %s..%s (%zu rows), early stopping on %s..%s "
                         "(%zu rows)",
                         j + 1, r->nfolds, d0, d1, tr.rows, v0, v1, va.rows);
        int rc2 = train_xgb_fit(&r->o->xp, &schema, &tr, &va, on_round, &rc, &stop_signal,
                                &fo->model, err, errlen);
        if (rc2 != RST_OK)
            return rc2;
        train_report_log("info", "fold %d/%d: best iteration %d", j + 1, r->nfolds,
                         train_xgb_best_iteration(fo->model));
    }
    return RST_OK;
}

/* ---- backtest ------------------------------------------------------------------------ */

/* An interval bound as backtest.csv writes it (%.3f). */
static double bound(double v)
{
    return round(v * 1000) / 1000;
}

/* Forecasts of algorithm a for days [t0, t1), origins every horizon days from
 * t0 - 1 (baselines) or from the model (xgboost), into out[(t - t0) * N + i]. */
static int forecast(run *r, int a, const fold *fo, int32_t t0, int32_t t1, float *out, char *err,
                    size_t errlen)
{
    const size_t N = r->d->nseries;
    if (a == ALG_XGBOOST) {
        train_xgb_set s = {rows_of(r, t0), NULL, (size_t)(t1 - t0) * N};
        int rc = train_xgb_predict(fo->model, &s, r->f.nfeat, (int)r->o->threads, out, err, errlen);
        for (size_t k = 0; rc == RST_OK && k < s.rows; k++)
            if (out[k] < 0)
                out[k] = 0;
        return rc;
    }
    int b =
        a == ALG_SEASONAL_NAIVE ? TRAIN_BASELINES_SEASONAL_NAIVE : TRAIN_BASELINES_MOVING_AVERAGE;
    for (int32_t t = t0; t < t1; t++) {
        int32_t o = origin_of(t0, (int)r->o->horizon, t);
        for (size_t i = 0; i < N; i++)
            out[(size_t)(t - t0) * N + i] = train_baselines_forecast(r->d, b, i, o, t);
    }
    return RST_OK;
}

static int backtest(run *r, char *err, size_t errlen)
{
    const train_data *d = r->d;
    const size_t N = d->nseries;
    const size_t wrows = (size_t)(d->ndays - r->w0) * N;
    int rc = RST_OK;
    float *buf = NULL;
    r->per_store = xcalloc(d->nstores, sizeof *r->per_store);
    r->per_product = xcalloc(d->nproducts, sizeof *r->per_product);
    for (int a = 0; a < ALL_ALGS; a++) {
        r->fc[a] = xcalloc(wrows ? wrows : 1, sizeof *r->fc[a]);
        r->bounds[a] = xcalloc(wrows ? 4 * wrows : 1, sizeof *r->bounds[a]);
    }
    for (int j = 0; j < r->nfolds; j++) {
        fold *fo = &r->folds[j];
        size_t vrows = (size_t)(fo->a - fo->v0) * N;
        buf = xrealloc(buf, (vrows ? vrows : 1) * sizeof *buf);
        for (int a = 0; a < ALL_ALGS; a++) {
            if (a == ALG_XGBOOST && r->o->algorithm != ALG_XGBOOST)
                continue;
            /* calibration on the validation window */
            rc = forecast(r, a, fo, fo->v0, fo->a, buf, err, errlen);
            if (rc)
                goto out;
            const float *vy = labels_of(r, fo->v0);
            train_intervals_fit(&fo->iv[a], vy, buf, vrows);
            if (a == r->o->algorithm)
                for (size_t k = 0; k < vrows; k++)
                    train_metrics_add(&r->valid_main, vy[k], buf[k], NAN, NAN, NAN, NAN);
            /* the fold's backtest days */
            float *fc = r->fc[a] + (size_t)(fo->a - r->w0) * N;
            rc = forecast(r, a, fo, fo->a, fo->b, fc, err, errlen);
            if (rc)
                goto out;
            const float *by = labels_of(r, fo->a);
            for (size_t k = 0; k < (size_t)(fo->b - fo->a) * N; k++) {
                double bd[4];
                train_intervals_apply(&fo->iv[a], fc[k], bd);
                float *bo = r->bounds[a] + 4 * ((size_t)(fo->a - r->w0) * N + k);
                for (int q = 0; q < 4; q++)
                    bo[q] = (float)bound(bd[q]);
                /* coverage with the bounds as backtest.csv has them */
                train_metrics m = {0};
                train_metrics_add(&m, by[k], fc[k], bo[TRAIN_INTERVALS_LO80],
                                  bo[TRAIN_INTERVALS_HI80], bo[TRAIN_INTERVALS_LO95],
                                  bo[TRAIN_INTERVALS_HI95]);
                train_metrics_merge(&r->overall[a], &m);
                if (a == r->o->algorithm) {
                    size_t i = k % N;
                    train_metrics_merge(&fo->m, &m);
                    train_metrics_merge(&r->per_store[d->series_store[i]], &m);
                    train_metrics_merge(&r->per_product[d->series_product[i]], &m);
                }
            }
        }
        if (stop_signal)
            break;
    }
out:
    free(buf);
    return rc;
}

/* ---- outputs ------------------------------------------------------------------------- */

static int write_backtest_csv(const run *r, train_output *out, char *err, size_t errlen)
{
    const train_data *d = r->d;
    const size_t N = d->nseries;
    buf_t b;
    buf_init(&b, 0);
    buf_puts(&b, "date,store_id,product,actual,forecast,lo80,hi80,lo95,hi95,algorithm\n");
    for (int a = 0; a < ALL_ALGS; a++) {
        if (a == ALG_XGBOOST && r->o->algorithm != ALG_XGBOOST)
            continue;
        for (int32_t t = r->w0; t < d->ndays; t++) {
            char date[11];
            date_of(d, t, date);
            for (size_t i = 0; i < N; i++) {
                size_t k = (size_t)(t - r->w0) * N + i;
                const float *bo = r->bounds[a] + 4 * k;
                const char *store = d->store_ids[d->series_store[i]];
                const char *product = d->product_names[d->series_product[i]];
                buf_printf(&b, "%s,", date);
                csvout_text(&b, store, strlen(store)); /* a file for people: guarded */
                buf_puts(&b, ",");
                csvout_text(&b, product, strlen(product));
                buf_printf(&b, ",%.10g,%.3f,%.3f,%.3f,%.3f,%.3f,%s\n",
                           d->qty[i * (size_t)d->ndays + (size_t)t], r->fc[a][k],
                           bo[TRAIN_INTERVALS_LO80], bo[TRAIN_INTERVALS_HI80],
                           bo[TRAIN_INTERVALS_LO95], bo[TRAIN_INTERVALS_HI95], alg_names[a]);
            }
        }
    }
    int rc = train_output_stage(out, "backtest.csv", b.data, b.len, err, errlen);
    buf_free(&b);
    return rc;
}

static json_t *metrics_doc(const run *r)
{
    const train_data *d = r->d;
    const options *o = r->o;
    json_t *per_store = json_object(), *per_product = json_object();
    for (size_t s = 0; s < d->nstores; s++)
        if (r->per_store[s].n)
            json_object_set_new(per_store, d->store_ids[s], train_metrics_json(&r->per_store[s]));
    for (size_t p = 0; p < d->nproducts; p++)
        if (r->per_product[p].n)
            json_object_set_new(per_product, d->product_names[p],
                                train_metrics_json(&r->per_product[p]));
    json_t *baselines = json_object();
    for (int a = ALG_SEASONAL_NAIVE; a < ALL_ALGS; a++)
        json_object_set_new(baselines, alg_names[a], train_metrics_json(&r->overall[a]));
    double w = train_metrics_wape(&r->overall[o->algorithm]);
    double sn = train_metrics_wape(&r->overall[ALG_SEASONAL_NAIVE]);
    double ma = train_metrics_wape(&r->overall[ALG_MOVING_AVERAGE]);
    json_t *folds = json_array(), *origins = json_array();
    for (int j = 0; j < r->nfolds; j++) {
        const fold *fo = &r->folds[j];
        char od[11], ad[11], bd[11], vd[11];
        date_of(d, fo->a - 1, od);
        date_of(d, fo->a, ad);
        date_of(d, fo->b - 1, bd);
        date_of(d, fo->v0, vd);
        json_t *ors = json_array();
        for (int32_t t = fo->a; t < fo->b; t += (int32_t)o->horizon) {
            char x[11];
            date_of(d, t - 1, x);
            json_array_append_new(ors, json_string(x));
            json_array_append_new(origins, json_string(x));
        }
        double fw = train_metrics_wape(&fo->m);
        json_array_append_new(
            folds,
            json_pack("{s:s, s:s, s:s, s:s, s:o, s:o, s:o}", "origin", od, "first_date", ad,
                      "last_date", bd, "validation_first_date", vd, "origins", ors,
                      "best_iteration",
                      fo->model ? json_integer(train_xgb_best_iteration(fo->model)) : json_null(),
                      "wape", isfinite(fw) ? json_real(fw) : json_null()));
    }
    char first[11], last[11];
    date_of(d, r->w0, first);
    date_of(d, d->ndays - 1, last);
    const fold *lf = &r->folds[r->nfolds - 1];
    double vw = train_metrics_wape(&r->valid_main);
    json_t *doc = json_pack(
        "{s:s, s:i, s:i, s:i, s:{s:s, s:s, s:i, s:o}, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o, "
        "s:o}",
        "algorithm", alg_names[o->algorithm], "horizon", (int)o->horizon, "backtest_days",
        (int)o->backtest, "rolling_origins", (int)o->origins, "backtest", "first_date", first,
        "last_date", last, "days", (int)o->backtest, "origins", origins, "overall",
        train_metrics_json(&r->overall[o->algorithm]), "per_store", per_store, "per_product",
        per_product, "baselines", baselines, "improvement_vs_seasonal_naive",
        isfinite(w) && sn > 0 ? json_real(1 - w / sn) : json_null(),
        "improvement_vs_moving_average",
        isfinite(w) && ma > 0 ? json_real(1 - w / ma) : json_null(), "validation",
        json_pack("{s:o}", "wape", isfinite(vw) ? json_real(vw) : json_null()), "best_iteration",
        lf->model ? json_integer(train_xgb_best_iteration(lf->model)) : json_null(),
        "feature_importance", lf->model ? train_xgb_importance(lf->model) : json_object(), "folds",
        folds);
    return doc;
}

/* The summary for the result event: metrics.json without the breakdowns. */
static json_t *summary_of(json_t *doc)
{
    json_t *s = json_deep_copy(doc);
    json_object_del(s, "per_store");
    json_object_del(s, "per_product");
    json_object_del(s, "feature_importance");
    return s;
}

static json_t *model_baseline_json(const run *r, int a)
{
    const fold *lf = &r->folds[r->nfolds - 1];
    return json_pack("{s:s, s:s, s:i, s:s, s:o}", "format", "roastery-baseline/1", "algorithm",
                     alg_names[a], "horizon", (int)r->o->horizon, "rule",
                     a == ALG_SEASONAL_NAIVE
                         ? "y[t - 7 * ceil((t - origin) / 7)]: the same weekday in the last "
                           "full week before the origin"
                         : "mean of y over the 28 days ending at the origin",
                     "intervals", train_intervals_json(&lf->iv[a]));
}

static json_t *features_doc(const run *r)
{
    const train_data *d = r->d;
    const fold *lf = &r->folds[r->nfolds - 1];
    char t0[11], t1[11], v0[11], v1[11];
    date_of(d, r->tf, t0);
    date_of(d, lf->v0 - 1, t1);
    date_of(d, lf->v0, v0);
    date_of(d, lf->a - 1, v1);
    json_t *doc;
    if (r->o->algorithm == ALG_XGBOOST) {
        doc = train_features_json(&r->f, d);
        json_object_set_new(doc, "objective", json_string(r->o->xp.objective));
        json_object_set_new(doc, "intervals", train_intervals_json(&lf->iv[ALG_XGBOOST]));
    } else {
        json_t *levels = json_object(), *st = json_array(), *pr = json_array();
        for (size_t s = 0; s < d->nstores; s++)
            json_array_append_new(st, json_string(d->store_ids[s]));
        for (size_t p = 0; p < d->nproducts; p++)
            json_array_append_new(pr, json_string(d->product_names[p]));
        json_object_set_new(levels, "store", st);
        json_object_set_new(levels, "product", pr);
        doc = json_pack("{s:i, s:i, s:[], s:s, s:o}", "version", TRAIN_FEATURES_VERSION, "horizon",
                        (int)r->o->horizon, "features", "inputs",
                        "daily units per store x product (zero-filled), up to the origin", "levels",
                        levels);
    }
    json_object_set_new(doc, "algorithm", json_string(alg_names[r->o->algorithm]));
    json_object_set_new(doc, "target",
                        json_string("quantity: units sold per store, product and day"));
    json_object_set_new(doc, "training",
                        json_pack("{s:s, s:s}", "first_date", t0, "last_date", t1));
    json_object_set_new(doc, "validation",
                        json_pack("{s:s, s:s}", "first_date", v0, "last_date", v1));
    return doc;
}

static json_t *run_doc(const run *r, const char *started, int64_t t_start)
{
    const train_data *d = r->d;
    const options *o = r->o;
    char finished[32], first[11], last[11];
    iso_now(finished);
    date_of(d, 0, first);
    date_of(d, d->ndays - 1, last);
    json_t *params = o->algorithm == ALG_XGBOOST ? train_xgb_params_json(&o->xp) : json_object();
    return json_pack(
        "{s:s, s:s, s:s, s:s, s:I, s:I, s:I, s:I, s:I, s:I, s:s, s:s, s:i, s:s, s:{s:i, s:i, "
        "s:i, s:I, s:i, s:o}, s:s, s:s, s:s, s:f, s:o}",
        "trainer", "roastery train", "trainer_version", ROASTERY_VERSION, "input", o->input,
        "input_sha256", d->sha256, "input_bytes", (json_int_t)d->bytes, "rows", (json_int_t)d->rows,
        "series", (json_int_t)d->nseries, "stores", (json_int_t)d->nstores, "products",
        (json_int_t)d->nproducts, "cities", (json_int_t)d->ncities, "first_date", first,
        "last_date", last, "days", (int)d->ndays, "algorithm", alg_names[o->algorithm],
        "parameters", "horizon", (int)o->horizon, "backtest_days", (int)o->backtest,
        "rolling_origins", (int)o->origins, "seed", (json_int_t)o->seed, "threads", (int)o->threads,
        "params", params, "xgboost_version", train_xgb_version(), "started_at", started,
        "finished_at", finished, "seconds", (double)(now_ms_monotonic() - t_start) / 1000.0,
        "phases", train_report_phases());
}

/* --dump-features: the exact matrices of the last fold for a reference
 * implementation. "RSTFEAT1", a little-endian u64 header length, the JSON
 * header, then per set (train, valid, backtest) rows x nfeat float32 values
 * and rows float32 labels. */
static int dump_features(const run *r, const char *path, char *err, size_t errlen)
{
    const size_t N = r->d->nseries;
    const fold *lf = &r->folds[r->nfolds - 1];
    struct {
        const char *name;
        int32_t t0, t1;
    } sets[3] = {{"train", r->tf, lf->v0}, {"valid", lf->v0, lf->a}, {"backtest", lf->a, lf->b}};
    json_t *names = json_array(), *types = json_array(), *js = json_array();
    for (int k = 0; k < r->f.nfeat; k++) {
        json_array_append_new(names, json_string(r->f.names[k]));
        json_array_append_new(types, json_string(r->f.types[k] == 'c' ? "c" : "q"));
    }
    for (int s = 0; s < 3; s++)
        json_array_append_new(js, json_pack("{s:s, s:I}", "name", sets[s].name, "rows",
                                            (json_int_t)((size_t)(sets[s].t1 - sets[s].t0) * N)));
    json_t *hdr = json_pack("{s:s, s:o, s:o, s:o, s:o, s:I, s:i}", "format", "roastery-features/1",
                            "features", names, "types", types, "sets", js, "params",
                            train_xgb_params_json(&r->o->xp), "nseries", (json_int_t)N, "horizon",
                            (int)r->o->horizon);
    char *h = json_dumps(hdr, JSON_COMPACT);
    json_decref(hdr);
    char *tmp = xasprintf("%s.part-%ld", path, (long)getpid());
    FILE *f = fopen(tmp, "wb");
    int rc = f ? RST_OK : RST_EIO;
    uint64_t hl = strlen(h);
    unsigned char len[8];
    for (int i = 0; i < 8; i++)
        len[i] = (unsigned char)(hl >> (8 * i));
    if (rc == RST_OK && (fwrite("RSTFEAT1", 1, 8, f) != 8 || fwrite(len, 1, 8, f) != 8 ||
                         fwrite(h, 1, hl, f) != hl))
        rc = RST_EIO;
    for (int s = 0; rc == RST_OK && s < 3; s++) {
        size_t rows = (size_t)(sets[s].t1 - sets[s].t0) * N;
        if (fwrite(rows_of(r, sets[s].t0), sizeof(float) * (size_t)r->f.nfeat, rows, f) != rows ||
            fwrite(labels_of(r, sets[s].t0), sizeof(float), rows, f) != rows)
            rc = RST_EIO;
    }
    if (f && fclose(f))
        rc = RST_EIO;
    if (rc == RST_OK && rename(tmp, path))
        rc = RST_EIO;
    if (rc) {
        snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
        unlink(tmp);
    }
    free(tmp);
    free(h);
    return rc;
}

/* ---- the data check -------------------------------------------------------------------- */

static int enough_days(const train_data *d, long need, const char *why)
{
    if (d->ndays >= need)
        return 1;
    char first[11], last[11];
    date_of(d, 0, first);
    date_of(d, d->ndays - 1, last);
    train_report_log("error",
                     "not enough history: the data covers %d days (%s to %s) and this request "
                     "needs at least %ld (%s); %ld more days are needed",
                     (int)d->ndays, first, last, need, why, need - d->ndays);
    return 0;
}

static int load_data(const options *o, train_data **d, int *status)
{
    char err[512] = "";
    train_report_phase_start("load");
    train_data_options lo = {.stop = &stop_signal};
    int rc = train_data_load(o->input, &lo, d, err, sizeof err);
    if (rc == RST_EUNAVAIL) {
        *status = stopped_status();
        return rc;
    }
    if (rc != RST_OK) {
        train_report_log("error", "cannot use %s: %s", o->input, err);
        *status = TRAINER_EXIT_FAILED;
        return rc;
    }
    const train_data *dd = *d;
    char first[11], last[11];
    date_of(dd, 0, first);
    date_of(dd, dd->ndays - 1, last);
    train_report_phase_end("load", json_pack("{s:I, s:I, s:I, s:i}", "rows", (json_int_t)dd->rows,
                                             "series", (json_int_t)dd->nseries, "stores",
                                             (json_int_t)dd->nstores, "days", (int)dd->ndays));
    train_report_log("info",
                     "%llu rows: %zu stores x %zu products = %zu series over %d days (%s to "
                     "%s), zero-filled",
                     (unsigned long long)dd->rows, dd->nstores, dd->nproducts, dd->nseries,
                     (int)dd->ndays, first, last);
    if (dd->mismatches)
        train_report_log("warn",
                         "%llu rows name another country or city for a store than its first row; "
                         "the first one is kept",
                         (unsigned long long)dd->mismatches);
    return RST_OK;
}

/* ---- train mode -------------------------------------------------------------------------- */

/* size: the phases of a training in order (load, features, train, backtest, write), each
 * reported as it starts and ends; what a phase does lives in train_*.c. */
static int train_mode(const options *o)
{
    int status = TRAINER_EXIT_FAILED, rc;
    char err[512] = "", started[32];
    iso_now(started);
    int64_t t_start = now_ms_monotonic();
    train_data *d = NULL;
    train_output *out = NULL;
    char *model = NULL;
    size_t model_len = 0;
    json_t *mdoc = NULL, *summary = NULL;
    run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    train_features_init(&r.f, (int)o->horizon);

    if (train_output_open(o->output, &out, err, sizeof err)) {
        train_report_log("error", "%s", err);
        goto out;
    }
    static const char *const outputs[] = {"model.json", "features.json", "backtest.csv",
                                          "metrics.json", "run.json"};
    for (size_t k = 0; k < COUNT(outputs); k++)
        train_output_remove_stale(out, outputs[k]);
    train_report_log("info",
                     "roastery train %s: %s, horizon %ld, backtest %ld days, %ld "
                     "origin(s), seed %ld, %ld thread(s), xgboost %s",
                     ROASTERY_VERSION, alg_names[o->algorithm], o->horizon, o->backtest, o->origins,
                     o->seed, o->threads, train_xgb_version());
    if (load_data(o, &d, &status))
        goto out;
    r.d = d;
    long need = train_min_days((int)o->horizon, (int)o->backtest, (int)o->origins);
    char why[200];
    snprintf(why, sizeof why,
             "364 + 3 days for the year-ago features, a %d-day validation window, %d days for "
             "the 28-day windows and the horizon, and the %ld-day backtest",
             MIN_VALIDATION, (int)(o->horizon > 28 ? o->horizon : 28), o->backtest);
    if (!enough_days(d, need, why)) {
        status = TRAINER_EXIT_DATA;
        goto out;
    }
    const int32_t D = d->ndays, B = (int32_t)o->backtest, K = (int32_t)o->origins;
    const int32_t V = (int32_t)(o->horizon > MIN_VALIDATION ? o->horizon : MIN_VALIDATION);
    r.tf = train_features_first_day(&r.f);
    r.w0 = D - B;
    r.nfolds = K;
    for (int32_t j = 0; j < K; j++) {
        fold *fo = &r.folds[j];
        fo->a = r.w0 + (j * B) / K;
        fo->b = r.w0 + ((j + 1) * B) / K;
        fo->v0 = fo->a - V;
    }

    train_report_phase_start("features");
    r.x = train_features_matrix(&r.f, d, r.tf, D, (int)o->threads, &stop_signal, &r.y);
    if (!r.x && stop_signal) {
        status = stopped_status();
        goto out;
    }
    if (!r.x) {
        train_report_log("error",
                         "out of memory for the feature matrix: %zu rows x %d features "
                         "need %zu MiB",
                         (size_t)(D - r.tf) * d->nseries, r.f.nfeat,
                         ((size_t)(D - r.tf) * d->nseries * (size_t)(r.f.nfeat + 1) * 4) >> 20);
        goto out;
    }
    train_report_phase_end("features", json_pack("{s:I, s:i}", "rows",
                                                 (json_int_t)((size_t)(D - r.tf) * d->nseries),
                                                 "features", r.f.nfeat));
    if (o->dump && dump_features(&r, o->dump, err, sizeof err)) {
        train_report_log("error", "%s", err);
        goto out;
    }

    train_report_phase_start("train");
    if (o->algorithm == ALG_XGBOOST) {
        rc = train_models(&r, err, sizeof err);
        if (rc == RST_EUNAVAIL) {
            status = stopped_status();
            goto out;
        }
        if (rc) {
            train_report_log("error", "training failed: %s", err);
            goto out;
        }
    }
    train_report_phase_end("train", NULL);
    if (stop_signal) {
        status = stopped_status();
        goto out;
    }

    train_report_phase_start("backtest");
    if (backtest(&r, err, sizeof err)) {
        train_report_log("error", "backtest failed: %s", err);
        goto out;
    }
    if (stop_signal) {
        status = stopped_status();
        goto out;
    }
    mdoc = metrics_doc(&r);
    summary = summary_of(mdoc);
    train_report_phase_end("backtest", NULL);
    json_t *ov = json_object_get(mdoc, "overall");
    train_report_metric(0, "backtest-wape", json_number_value(json_object_get(ov, "wape")));
    train_report_metric(0, "backtest-rmse", json_number_value(json_object_get(ov, "rmse")));
    train_report_metric(0, "backtest-coverage80",
                        json_number_value(json_object_get(ov, "coverage80")));
    train_report_metric(0, "backtest-coverage95",
                        json_number_value(json_object_get(ov, "coverage95")));
    for (int a = ALG_SEASONAL_NAIVE; a < ALL_ALGS; a++) {
        char name[48];
        snprintf(name, sizeof name, "backtest-wape-%s", alg_names[a]);
        train_report_metric(0, name, train_metrics_wape(&r.overall[a]));
    }
    train_report_log("info",
                     "backtest WAPE %s %.4f, seasonal_naive %.4f, moving_average %.4f; "
                     "80%% interval coverage %.3f, 95%% %.3f",
                     alg_names[o->algorithm], train_metrics_wape(&r.overall[o->algorithm]),
                     train_metrics_wape(&r.overall[ALG_SEASONAL_NAIVE]),
                     train_metrics_wape(&r.overall[ALG_MOVING_AVERAGE]),
                     json_number_value(json_object_get(ov, "coverage80")),
                     json_number_value(json_object_get(ov, "coverage95")));

    train_report_phase_start("write");
    json_t *fdoc = features_doc(&r);
    if (o->algorithm == ALG_XGBOOST) {
        rc = train_xgb_save(r.folds[K - 1].model, &model, &model_len, err, sizeof err);
        if (rc == RST_OK)
            rc = train_output_stage(out, "model.json", model, model_len, err, sizeof err);
    } else {
        json_t *m = model_baseline_json(&r, o->algorithm);
        rc = train_output_stage_json(out, "model.json", m, err, sizeof err);
        json_decref(m);
    }
    if (rc == RST_OK)
        rc = train_output_stage_json(out, "features.json", fdoc, err, sizeof err);
    json_decref(fdoc);
    if (rc == RST_OK)
        rc = write_backtest_csv(&r, out, err, sizeof err);
    if (rc == RST_OK)
        rc = train_output_stage_json(out, "metrics.json", mdoc, err, sizeof err);
    if (rc == RST_OK) {
        json_t *rd = run_doc(&r, started, t_start);
        rc = train_output_stage_json(out, "run.json", rd, err, sizeof err);
        json_decref(rd);
    }
    if (rc) {
        train_report_log("error", "%s", err);
        goto out;
    }
    /* The last chance to stop leaves nothing behind: after it, every file is
     * renamed into place. */
    sigset_t block, old;
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigprocmask(SIG_BLOCK, &block, &old);
    if (stop_signal) {
        sigprocmask(SIG_SETMASK, &old, NULL);
        status = stopped_status();
        goto out;
    }
    rc = train_output_commit(out, err, sizeof err);
    out = NULL;
    sigprocmask(SIG_SETMASK, &old, NULL);
    if (rc) {
        train_report_log("error", "%s", err);
        goto out;
    }
    train_report_phase_end("write", NULL);
    train_report_result(summary);
    status = TRAINER_EXIT_OK;
out:
    train_output_abort(out);
    json_decref(mdoc);
    json_decref(summary);
    free(model);
    for (int j = 0; j < r.nfolds; j++)
        train_xgb_free(r.folds[j].model);
    for (int a = 0; a < ALL_ALGS; a++) {
        free(r.fc[a]);
        free(r.bounds[a]);
    }
    free(r.per_store);
    free(r.per_product);
    free(r.x);
    free(r.y);
    train_features_clear(&r.f);
    train_data_free(d);
    return status;
}

/* ---- score mode ------------------------------------------------------------------------ */

static json_t *load_json(const char *dir, const char *name, char *err, size_t errlen)
{
    char *path = xasprintf("%s/%s", dir, name);
    json_error_t jerr;
    json_t *j = json_load_file(path, JSON_REJECT_DUPLICATES, &jerr);
    if (!j)
        snprintf(err, errlen, "cannot read %s: %s", path, jerr.text);
    free(path);
    return j;
}

/* size: the phases of scoring a saved model in order (load, features, backtest, write), each
 * reported as it starts and ends; what a phase does lives in train_*.c. */
static int score_mode(options *o)
{
    int status = TRAINER_EXIT_FAILED, rc;
    char err[512] = "";
    train_data *d = NULL;
    train_output *out = NULL;
    json_t *spec = NULL, *bmodel = NULL, *mdoc = NULL, *summary = NULL;
    run r;
    memset(&r, 0, sizeof r);
    r.o = o;
    fold *fo = &r.folds[0];
    r.nfolds = 1;

    spec = load_json(o->score, "features.json", err, sizeof err);
    const char *alg = json_string_value(json_object_get(spec, "algorithm"));
    int a = -1;
    for (int k = 0; alg && k < ALL_ALGS; k++)
        if (!strcmp(alg, alg_names[k]))
            a = k;
    if (!spec || a < 0) {
        train_report_log("error", "%s", spec ? "features.json names no known algorithm" : err);
        goto out;
    }
    o->algorithm = a;
    long h = (long)json_integer_value(json_object_get(spec, "horizon"));
    if (h < 1 || h > TRAIN_MAX_HORIZON) {
        train_report_log("error", "features.json has no valid horizon");
        goto out;
    }
    if (o->horizon_set && o->horizon != h)
        train_report_log("warn", "--horizon %ld ignored: the model was trained for %ld days",
                         o->horizon, h);
    o->horizon = h;
    if (a == ALG_XGBOOST) {
        char *path = xasprintf("%s/model.json", o->score);
        rc = train_xgb_load(path, (int)o->threads, &fo->model, err, sizeof err);
        free(path);
        if (!rc)
            rc = train_intervals_from_json(&fo->iv[a], json_object_get(spec, "intervals"));
    } else {
        bmodel = load_json(o->score, "model.json", err, sizeof err);
        rc = bmodel ? train_intervals_from_json(&fo->iv[a], json_object_get(bmodel, "intervals"))
                    : RST_EIO;
    }
    if (rc) {
        train_report_log("error", "cannot load the model in %s: %s", o->score,
                         err[0] ? err : "no intervals");
        goto out;
    }
    if (train_output_open(o->output, &out, err, sizeof err)) {
        train_report_log("error", "%s", err);
        goto out;
    }
    train_output_remove_stale(out, "metrics.json");
    train_output_remove_stale(out, "backtest.csv");
    if (load_data(o, &d, &status))
        goto out;
    r.d = d;
    long need = o->backtest + (a == ALG_XGBOOST ? h + 364 + 27 : 28 + 7 * ((h + 6) / 7));
    if (!enough_days(d, need, "the backtest and the longest lag of the model")) {
        status = TRAINER_EXIT_DATA;
        goto out;
    }
    r.w0 = d->ndays - (int32_t)o->backtest;
    fo->a = r.w0;
    fo->b = d->ndays;
    fo->v0 = r.w0;
    r.tf = r.w0;
    train_report_phase_start("features");
    if (a == ALG_XGBOOST) {
        if (train_features_bind(&r.f, spec, d, err, sizeof err)) {
            train_report_log("error", "%s", err);
            goto out;
        }
        r.x = train_features_matrix(&r.f, d, r.tf, d->ndays, (int)o->threads, &stop_signal, &r.y);
        if (!r.x) {
            if (stop_signal)
                status = stopped_status();
            else
                train_report_log("error", "out of memory for the feature matrix");
            goto out;
        }
    } else {
        train_features_init(&r.f, (int)h);
    }
    train_report_phase_end("features", NULL);
    train_report_phase_start("backtest");
    /* intervals come from the model; the baselines are calibrated on the
     * window before the scored one, as in training */
    const size_t N = d->nseries;
    r.per_store = xcalloc(d->nstores, sizeof *r.per_store);
    r.per_product = xcalloc(d->nproducts, sizeof *r.per_product);
    size_t wrows = (size_t)(d->ndays - r.w0) * N;
    train_intervals saved = fo->iv[a];
    for (int k = 0; k < ALL_ALGS; k++) {
        r.fc[k] = xcalloc(wrows ? wrows : 1, sizeof *r.fc[k]);
        r.bounds[k] = xcalloc(wrows ? 4 * wrows : 1, sizeof *r.bounds[k]);
    }
    for (int k = 0; k < ALL_ALGS; k++) {
        if (k == ALG_XGBOOST && a != ALG_XGBOOST)
            continue;
        int32_t V = (int32_t)(h > MIN_VALIDATION ? h : MIN_VALIDATION);
        if (k != a && r.w0 - V >= 28 + 7 * ((h + 6) / 7)) {
            size_t vrows = (size_t)V * N;
            float *vb = xmalloc(vrows * sizeof *vb), *vy = xmalloc(vrows * sizeof *vy);
            forecast(&r, k, fo, r.w0 - V, r.w0, vb, err, sizeof err);
            for (int32_t t = r.w0 - V; t < r.w0; t++)
                for (size_t i = 0; i < N; i++)
                    vy[(size_t)(t - (r.w0 - V)) * N + i] = d->qty[i * (size_t)d->ndays + (size_t)t];
            train_intervals_fit(&fo->iv[k], vy, vb, vrows);
            free(vb);
            free(vy);
        } else if (k == a) {
            fo->iv[k] = saved;
        }
        if (forecast(&r, k, fo, r.w0, d->ndays, r.fc[k], err, sizeof err)) {
            train_report_log("error", "scoring failed: %s", err);
            goto out;
        }
        for (size_t q = 0; q < wrows; q++) {
            size_t i = q % N;
            int32_t t = r.w0 + (int32_t)(q / N);
            double bd[4];
            train_intervals_apply(&fo->iv[k], r.fc[k][q], bd);
            float *bo = r.bounds[k] + 4 * q;
            for (int j = 0; j < 4; j++)
                bo[j] = (float)bound(bd[j]);
            train_metrics m = {0};
            train_metrics_add(&m, d->qty[i * (size_t)d->ndays + (size_t)t], r.fc[k][q],
                              bo[TRAIN_INTERVALS_LO80], bo[TRAIN_INTERVALS_HI80],
                              bo[TRAIN_INTERVALS_LO95], bo[TRAIN_INTERVALS_HI95]);
            train_metrics_merge(&r.overall[k], &m);
            if (k == a) {
                train_metrics_merge(&fo->m, &m);
                train_metrics_merge(&r.per_store[d->series_store[i]], &m);
                train_metrics_merge(&r.per_product[d->series_product[i]], &m);
            }
        }
    }
    mdoc = metrics_doc(&r);
    json_object_set_new(mdoc, "mode", json_string("score"));
    json_object_set_new(mdoc, "model_dir", json_string(o->score));
    json_object_del(mdoc, "validation");
    json_object_del(mdoc, "folds");
    summary = summary_of(mdoc);
    train_report_phase_end("backtest", NULL);
    train_report_phase_start("write");
    rc = write_backtest_csv(&r, out, err, sizeof err);
    if (rc == RST_OK)
        rc = train_output_stage_json(out, "metrics.json", mdoc, err, sizeof err);
    if (rc == RST_OK && stop_signal) {
        status = stopped_status();
        goto out;
    }
    if (rc == RST_OK) {
        rc = train_output_commit(out, err, sizeof err);
        out = NULL;
    }
    if (rc) {
        train_report_log("error", "%s", err);
        goto out;
    }
    train_report_phase_end("write", NULL);
    train_report_log("info", "scored %s on %d days: WAPE %.4f", alg_names[a], (int)o->backtest,
                     train_metrics_wape(&r.overall[a]));
    train_report_result(summary);
    status = TRAINER_EXIT_OK;
out:
    train_output_abort(out);
    json_decref(spec);
    json_decref(bmodel);
    json_decref(mdoc);
    json_decref(summary);
    train_xgb_free(fo->model);
    for (int k = 0; k < ALL_ALGS; k++) {
        free(r.fc[k]);
        free(r.bounds[k]);
    }
    free(r.per_store);
    free(r.per_product);
    free(r.x);
    free(r.y);
    train_features_clear(&r.f);
    train_data_free(d);
    return status;
}

int trainer_main(int argc, char **argv)
{
    options o;
    int status = parse_args(argc, argv, &o);
    if (status >= 0) {
        json_decref(o.params);
        return status;
    }
    stop_signal = 0;
    train_report_reset();
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    struct sigaction old_term, old_int;
    sigaction(SIGTERM, &sa, &old_term);
    sigaction(SIGINT, &sa, &old_int);
    status = o.score ? score_mode(&o) : train_mode(&o);
    sigaction(SIGTERM, &old_term, NULL);
    sigaction(SIGINT, &old_int, NULL);
    json_decref(o.params);
    train_report_reset();
    return status;
}
