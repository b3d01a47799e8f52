/* train_features and train_baselines: feature values recomputed by hand, no
 * leakage (sales after a forecast's origin never change its features), the
 * same matrix whatever the thread count, the baselines' values, and a saved
 * specification binds back onto other data. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "demo/salesgen.h"
#include "trainer/train_baselines.h"
#include "trainer/train_data.h"
#include "trainer/train_features.h"
#include "lib/util.h"

static int to_buf(void *arg, const char *data, size_t len)
{
    return buf_append(arg, data, len) == RST_OK ? 0 : -1;
}

/* new: 3 stores x 4 products over 2022-01-01 .. 2023-06-30; train_data_free. */
static train_data *generated(int stores)
{
    salesgen_options o;
    salesgen_defaults(&o);
    o.stores = stores;
    o.products = 4;
    o.start = "2022-01-01";
    o.end = "2023-06-30";
    buf_t b;
    buf_init(&b, 0);
    char err[160] = "";
    assert_int_equal(salesgen_write(&o, to_buf, &b, NULL, err, sizeof err), RST_OK);
    train_data *d = NULL;
    assert_int_equal(train_data_load_buffer(b.data, b.len, &d, err, sizeof err), RST_OK);
    buf_free(&b);
    return d;
}

static int column(const train_features *f, const char *name)
{
    for (int k = 0; k < f->nfeat; k++)
        if (!strcmp(f->names[k], name))
            return k;
    fail_msg("no feature %s", name);
    return -1;
}

static double window_mean(const float *q, int32_t a, int32_t b)
{
    double s = 0;
    for (int32_t t = a; t <= b; t++)
        s += q[t];
    return s / (b - a + 1);
}

static int cmp_f(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

static void test_values_by_hand(void **state)
{
    (void)state;
    train_data *d = generated(3);
    train_features f;
    train_features_init(&f, 14);
    assert_int_equal(f.nfeat, 46);
    assert_int_equal(train_features_first_day(&f), 41);
    const int32_t t0 = 400, t1 = d->ndays;
    float *y = NULL;
    float *x = train_features_matrix(&f, d, t0, t1, 2, NULL, &y);
    assert_non_null(x);
    const size_t N = d->nseries;
    for (size_t i = 0; i < N; i += 5)
        for (int32_t t = t0; t < t1; t += 17) {
            const float *row = x + ((size_t)(t - t0) * N + i) * (size_t)f.nfeat;
            const float *q = d->qty + i * (size_t)d->ndays;
            assert_float_equal(y[(size_t)(t - t0) * N + i], q[t], 0);
            assert_float_equal(row[column(&f, "lag_14")], q[t - 14], 0);
            assert_float_equal(row[column(&f, "lag_20")], q[t - 20], 0);
            assert_float_equal(row[column(&f, "lag_35")], q[t - 35], 0);
            assert_float_equal(row[column(&f, "mean_28")], window_mean(q, t - 41, t - 14), 1e-4);
            assert_float_equal(row[column(&f, "ly_mean_7c")], window_mean(q, t - 367, t - 361),
                               1e-4);
            float w[28];
            memcpy(w, q + t - 41, sizeof w);
            qsort(w, 28, sizeof *w, cmp_f);
            assert_float_equal(row[column(&f, "median_28")], (w[13] + w[14]) / 2, 1e-6);
            memcpy(w, q + t - 20, 7 * sizeof *w);
            qsort(w, 7, sizeof *w, cmp_f);
            assert_float_equal(row[column(&f, "median_7")], w[3], 0);
            /* the year-ago window ending at t - 14 - 364 starts before day 0 here */
            if (t - 14 - 364 - 27 < 0)
                assert_float_equal(row[column(&f, "ly_mean_28")], TRAIN_FEATURES_MISSING, 0);
            size_t s = d->series_store[i];
            assert_float_equal(row[column(&f, "store")], (float)s, 0);
            assert_float_equal(row[column(&f, "promotion")],
                               d->promo[i * (size_t)d->ndays + (size_t)t], 0);
            assert_float_equal(row[column(&f, "weather")],
                               d->weather[s * (size_t)d->ndays + (size_t)t], 0);
            assert_float_equal(row[column(&f, "day_of_week")], (float)((d->first_day + t + 3) % 7),
                               0);
        }
    /* no NaN in a training matrix: it stays dense for XGBoost */
    for (size_t k = 0; k < (size_t)(t1 - t0) * N * (size_t)f.nfeat; k++)
        if (isnan(x[k]))
            fail_msg("NaN at %zu", k);
    free(x);
    free(y);
    train_data_free(d);
}

/* Features of every row forecast from origin o (days o+1 .. o+h) stay the same
 * when every sale after o changes, and do change with the sales up to o. */
static void test_no_leakage(void **state)
{
    (void)state;
    train_data *d = generated(3);
    const int h = 14;
    train_features f;
    train_features_init(&f, h);
    const size_t N = d->nseries, D = (size_t)d->ndays, F = (size_t)f.nfeat;
    const int32_t w0 = d->ndays - 28; /* a 28-day backtest: origins every h days */
    float *saved = xmalloc(N * D * sizeof *saved);
    memcpy(saved, d->qty, N * D * sizeof *saved);
    for (int32_t o = w0 - 1; o < d->ndays - 1; o += h) {
        int32_t t0 = o + 1, t1 = o + h + 1 < d->ndays ? o + h + 1 : d->ndays;
        float *before = train_features_matrix(&f, d, t0, t1, 2, NULL, NULL);
        for (size_t i = 0; i < N; i++)
            for (size_t t = (size_t)o + 1; t < D; t++)
                d->qty[i * D + t] = d->qty[i * D + t] * 3 + 7;
        float *after = train_features_matrix(&f, d, t0, t1, 2, NULL, NULL);
        assert_memory_equal(before, after, (size_t)(t1 - t0) * N * F * sizeof *before);
        free(after);
        /* sanity: the origin's own sales do reach the features */
        for (size_t i = 0; i < N; i++)
            d->qty[i * D + (size_t)o] += 11;
        after = train_features_matrix(&f, d, t0, t1, 2, NULL, NULL);
        assert_memory_not_equal(before, after, (size_t)(t1 - t0) * N * F * sizeof *before);
        free(after);
        free(before);
        memcpy(d->qty, saved, N * D * sizeof *saved);
    }
    /* every sales feature reads at least h days back */
    for (int k = 0; k < f.nfeat; k++)
        if (!f.known[k])
            assert_true(f.lookback[k] >= h);
    free(saved);
    train_data_free(d);
}

static void test_threads_do_not_change_the_matrix(void **state)
{
    (void)state;
    train_data *d = generated(5);
    train_features f;
    train_features_init(&f, 7);
    float *y1 = NULL, *y3 = NULL;
    float *a = train_features_matrix(&f, d, 100, d->ndays, 1, NULL, &y1);
    float *b = train_features_matrix(&f, d, 100, d->ndays, 3, NULL, &y3);
    size_t rows = (size_t)(d->ndays - 100) * d->nseries;
    assert_memory_equal(a, b, rows * (size_t)f.nfeat * sizeof *a);
    assert_memory_equal(y1, y3, rows * sizeof *y1);
    volatile sig_atomic_t stop = 1;
    float *y2 = NULL;
    assert_null(train_features_matrix(&f, d, 100, d->ndays, 2, &stop, &y2));
    assert_null(y2);
    free(y1);
    free(a);
    free(b);
    free(y3);
    train_data_free(d);
}

static void test_baselines(void **state)
{
    (void)state;
    train_data *d = generated(3);
    const float *q = d->qty + 2 * (size_t)d->ndays;
    int32_t o = 300;
    int sn = TRAIN_BASELINES_SEASONAL_NAIVE, ma = TRAIN_BASELINES_MOVING_AVERAGE;
    assert_float_equal(train_baselines_forecast(d, sn, 2, o, o + 1), q[o - 6], 0);
    assert_float_equal(train_baselines_forecast(d, sn, 2, o, o + 7), q[o], 0);
    assert_float_equal(train_baselines_forecast(d, sn, 2, o, o + 8), q[o - 6], 0);
    assert_float_equal(train_baselines_forecast(d, sn, 2, o, o + 14), q[o], 0);
    double m = window_mean(q, o - 27, o);
    assert_float_equal(train_baselines_forecast(d, ma, 2, o, o + 1), m, 1e-4);
    assert_float_equal(train_baselines_forecast(d, ma, 2, o, o + 13), m, 1e-4);
    assert_true(isnan(train_baselines_forecast(d, ma, 2, 10, 12)));
    assert_true(isnan(train_baselines_forecast(d, sn, 2, o, o)));
    assert_string_equal(train_baselines_name(ma), "moving_average");
    assert_null(train_baselines_name(7));
    train_data_free(d);
}

static void test_spec_binds_to_other_data(void **state)
{
    (void)state;
    train_data *small = generated(3), *big = generated(5);
    train_features f;
    train_features_init(&f, 14);
    json_t *spec = train_features_json(&f, small);
    assert_int_equal(json_array_size(json_object_get(spec, "features")), 46);
    /* a scorer finds every categorical feature's levels by its name */
    for (int k = 0; k < f.nfeat; k++)
        if (f.types[k] == 'c' && !json_is_array(json_object_get(json_object_get(spec, "levels"),
                                                                f.names[k])))
            fail_msg("no levels for %s", f.names[k]);
    assert_float_equal(
        json_number_value(json_object_get(json_object_get(spec, "missing_value"), "numeric")),
        TRAIN_FEATURES_MISSING, 0);
    train_features g;
    train_features_init(&g, 1);
    char err[200];
    assert_int_equal(train_features_bind(&g, spec, big, err, sizeof err), RST_OK);
    assert_int_equal(g.horizon, 14);
    /* the fifth store (Toronto) is new to the model: its code is missing; the
     * others keep the model's codes */
    long tor = train_data_find(big->store_ids, big->nstores, "CA-TOR-001");
    long sea = train_data_find(big->store_ids, big->nstores, "US-SEA-001");
    assert_int_equal(g.store_code[tor], -1);
    assert_int_equal(g.store_code[sea],
                     train_data_find(small->store_ids, small->nstores, "US-SEA-001"));
    float *x = train_features_matrix(&g, big, 500, 501, 1, NULL, NULL);
    int sc = column(&g, "store");
    for (size_t i = 0; i < big->nseries; i++) {
        float v = x[i * (size_t)g.nfeat + (size_t)sc];
        if (big->series_store[i] == (uint32_t)tor)
            assert_true(isnan(v));
        else
            assert_float_equal(v, g.store_code[big->series_store[i]], 0);
    }
    free(x);
    json_object_set_new(spec, "version", json_integer(99));
    assert_int_equal(train_features_bind(&g, spec, big, err, sizeof err), RST_EINVAL);
    assert_non_null(strstr(err, "version"));
    train_features_clear(&g);
    json_decref(spec);
    train_data_free(small);
    train_data_free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_by_hand),
        cmocka_unit_test(test_no_leakage),
        cmocka_unit_test(test_threads_do_not_change_the_matrix),
        cmocka_unit_test(test_baselines),
        cmocka_unit_test(test_spec_binds_to_other_data),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
