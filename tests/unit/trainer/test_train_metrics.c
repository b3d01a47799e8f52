/* train_metrics and train_intervals: accuracy figures on hand-computed examples, and intervals
 * calibrated on one sample of over-dispersed counts covering about 80 % and
 * 95 % of another sample. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "trainer/train_intervals.h"
#include "trainer/train_metrics.h"
#include "lib/util.h"

static double num(json_t *o, const char *k)
{
    json_t *v = json_object_get(o, k);
    if (!json_is_number(v))
        fail_msg("%s is not a number", k);
    return json_number_value(v);
}

static void test_hand_computed(void **state)
{
    (void)state;
    train_metrics m = {0};
    /* y 10, 0, 5; forecasts 8, 1, 5; intervals: in, out, in (80); all in (95) */
    train_metrics_add(&m, 10, 8, 7, 11, 5, 12);
    train_metrics_add(&m, 0, 1, 0.5, 2, 0, 3);
    train_metrics_add(&m, 5, 5, 5, 5, 4, 6);
    assert_float_equal(train_metrics_wape(&m), 3.0 / 15.0, 1e-12);
    json_t *j = train_metrics_json(&m);
    assert_float_equal(num(j, "wape"), 0.2, 1e-12);
    assert_float_equal(num(j, "mape"), (0.2 + 0) / 2, 1e-12);             /* y != 0 only */
    assert_float_equal(num(j, "smape"), (4.0 / 18 + 2.0 + 0) / 3, 1e-12); /* 2|e|/(|y|+|f|) */
    assert_float_equal(num(j, "rmse"), sqrt(5.0 / 3), 1e-12);
    assert_float_equal(num(j, "bias"), (-2.0 + 1 + 0) / 15, 1e-12);
    assert_float_equal(num(j, "coverage80"), 2.0 / 3, 1e-12);
    assert_float_equal(num(j, "coverage95"), 1.0, 1e-12);
    assert_int_equal(json_integer_value(json_object_get(j, "n")), 3);
    json_decref(j);
    /* merge = adding one by one; no sales at all: WAPE is null, not a number */
    train_metrics a = {0}, b = {0};
    train_metrics_add(&a, 0, 2, 0, 3, 0, 4);
    train_metrics_merge(&b, &a);
    assert_int_equal(b.n, 1);
    assert_true(isnan(train_metrics_wape(&b)));
    j = train_metrics_json(&b);
    assert_true(json_is_null(json_object_get(j, "wape")));
    assert_true(json_is_null(json_object_get(j, "mape")));
    assert_float_equal(num(j, "smape"), 2.0, 1e-12);
    json_decref(j);
}

/* xorshift64* and a Poisson draw by inversion: enough for a test. */
static uint64_t rng = 88172645463325252ULL;

static double uniform(void)
{
    rng ^= rng >> 12;
    rng ^= rng << 25;
    rng ^= rng >> 27;
    return (double)((rng * 2685821657736338717ULL) >> 11) / 9007199254740992.0;
}

static float poisson(double lambda)
{
    if (lambda > 60) { /* normal approximation, rounded */
        double u1 = uniform(), u2 = uniform();
        double z = sqrt(-2 * log(u1 + 1e-300)) * cos(2 * M_PI * u2);
        double v = round(lambda + sqrt(lambda) * z);
        return (float)(v < 0 ? 0 : v);
    }
    double l = exp(-lambda), p = 1;
    int k = 0;
    do {
        k++;
        p *= uniform();
    } while (p > l);
    return (float)(k - 1);
}

/* Counts around levels from 0.5 to 150 with a 10 % day factor, as in the
 * generated sales; the forecast is the level. */
static void sample(float *y, float *f, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        double level = 0.5 * pow(300, uniform());
        double day = exp(0.1 * sqrt(-2 * log(uniform() + 1e-300)) * cos(2 * M_PI * uniform()));
        f[i] = (float)level;
        y[i] = poisson(level * day);
    }
}

static void test_interval_coverage(void **state)
{
    (void)state;
    enum { N = 20000 };
    float *y = xmalloc(N * sizeof *y), *f = xmalloc(N * sizeof *f);
    sample(y, f, N);
    train_intervals iv;
    train_intervals_fit(&iv, y, f, N);
    assert_int_equal(iv.nbins, TRAIN_INTERVALS_MAX_BINS);
    /* wider for bigger forecasts */
    assert_true(iv.q[iv.nbins - 1][TRAIN_INTERVALS_HI80] -
                    iv.q[iv.nbins - 1][TRAIN_INTERVALS_LO80] >
                iv.q[0][TRAIN_INTERVALS_HI80] - iv.q[0][TRAIN_INTERVALS_LO80]);
    sample(y, f, N);
    train_metrics m = {0};
    for (size_t i = 0; i < N; i++) {
        double b[4];
        train_intervals_apply(&iv, f[i], b);
        assert_true(b[TRAIN_INTERVALS_LO80] >= 0 &&
                    b[TRAIN_INTERVALS_LO95] <= b[TRAIN_INTERVALS_LO80]);
        assert_true(b[TRAIN_INTERVALS_HI95] >= b[TRAIN_INTERVALS_HI80]);
        train_metrics_add(&m, y[i], f[i], b[TRAIN_INTERVALS_LO80], b[TRAIN_INTERVALS_HI80],
                          b[TRAIN_INTERVALS_LO95], b[TRAIN_INTERVALS_HI95]);
    }
    double c80 = (double)m.in80 / N, c95 = (double)m.in95 / N;
    if (c80 < 0.78 || c80 > 0.86 || c95 < 0.94 || c95 > 0.975)
        fail_msg("coverage %.3f / %.3f", c80, c95);
    /* the calibration survives a trip through JSON */
    json_t *j = train_intervals_json(&iv);
    train_intervals back;
    assert_int_equal(train_intervals_from_json(&back, j), RST_OK);
    assert_int_equal(back.nbins, iv.nbins);
    for (int k = 0; k < iv.nbins; k++)
        for (int q = 0; q < 4; q++)
            assert_float_equal(back.q[k][q], iv.q[k][q], 1e-9 * (1 + fabs(iv.q[k][q])));
    json_decref(j);
    assert_int_equal(train_intervals_from_json(&back, json_null()), RST_EINVAL);
    free(y);
    free(f);
}

static void test_interval_edge_cases(void **state)
{
    (void)state;
    train_intervals iv;
    double b[4];
    train_intervals_fit(&iv, NULL, NULL, 0); /* nothing to learn from: no width */
    assert_int_equal(iv.nbins, 1);
    train_intervals_apply(&iv, 3.5, b);
    assert_float_equal(b[TRAIN_INTERVALS_LO80], 3.5, 0);
    assert_float_equal(b[TRAIN_INTERVALS_HI95], 3.5, 0);
    /* few residuals: one bin; quantiles interpolate between order statistics */
    float y[] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10}, f[11] = {0};
    train_intervals_fit(&iv, y, f, 11);
    assert_int_equal(iv.nbins, 1);
    assert_float_equal(iv.q[0][TRAIN_INTERVALS_LO80], 1.0, 1e-9);
    assert_float_equal(iv.q[0][TRAIN_INTERVALS_HI80], 9.0, 1e-9);
    assert_float_equal(iv.q[0][TRAIN_INTERVALS_LO95], 0.25, 1e-9);
    /* all forecasts equal: the bins never split them */
    float many_y[1000], many_f[1000];
    for (int i = 0; i < 1000; i++) {
        many_y[i] = (float)(i % 7);
        many_f[i] = 3;
    }
    train_intervals_fit(&iv, many_y, many_f, 1000);
    assert_int_equal(iv.nbins, 1);
    /* negative forecasts count as 0 and lower bounds never go below 0 */
    train_intervals_apply(&iv, 0, b);
    assert_true(b[TRAIN_INTERVALS_LO95] >= 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_hand_computed),
        cmocka_unit_test(test_interval_coverage),
        cmocka_unit_test(test_interval_edge_cases),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
