/* Interval calibration. Quantiles use linear interpolation between order
 * statistics (numpy's default), so a reference in Python gets the same bounds. */
#include "trainer/train_intervals.h"

#include "lib/util.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    float f, r;
} pair;

static int cmp_pair(const void *a, const void *b)
{
    const pair *x = a, *y = b;
    if (x->f != y->f)
        return x->f < y->f ? -1 : 1;
    return (x->r > y->r) - (x->r < y->r);
}

static int cmp_float(const void *a, const void *b)
{
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

/* Quantile q of sorted v[0..n-1] with linear interpolation. */
static double quantile(const float *v, size_t n, double q)
{
    double pos = q * (double)(n - 1);
    size_t lo = (size_t)pos;
    if (lo + 1 >= n)
        return v[n - 1];
    double frac = pos - (double)lo;
    return v[lo] + frac * ((double)v[lo + 1] - v[lo]);
}

void train_intervals_fit(train_intervals *iv, const float *y, const float *f, size_t n)
{
    memset(iv, 0, sizeof *iv);
    iv->nbins = 1;
    iv->upper[0] = INFINITY;
    if (!n)
        return;
    pair *p = xmalloc(n * sizeof *p);
    size_t m = 0;
    for (size_t i = 0; i < n; i++) {
        if (isnan(y[i]) || isnan(f[i]))
            continue;
        float fc = f[i] > 0 ? f[i] : 0;
        p[m++] = (pair){fc, y[i] - fc};
    }
    if (!m) {
        free(p);
        return;
    }
    qsort(p, m, sizeof *p, cmp_pair);
    size_t want = m / TRAIN_INTERVALS_MIN_BIN;
    if (want > TRAIN_INTERVALS_MAX_BINS)
        want = TRAIN_INTERVALS_MAX_BINS;
    if (want < 1)
        want = 1;
    float *r = xmalloc(m * sizeof *r);
    int nb = 0;
    size_t start = 0;
    for (size_t k = 0; k < want && start < m; k++) {
        size_t end = m * (k + 1) / want; /* exclusive */
        if (end <= start)
            continue;
        /* a bin ends between two different forecasts: equal ones stay together */
        while (end < m && p[end].f == p[end - 1].f)
            end++;
        if (k + 1 == want)
            end = m;
        size_t len = end - start;
        for (size_t i = 0; i < len; i++)
            r[i] = p[start + i].r;
        qsort(r, len, sizeof *r, cmp_float);
        iv->upper[nb] = end == m ? INFINITY : p[end - 1].f;
        iv->q[nb][TRAIN_INTERVALS_LO80] = quantile(r, len, 0.10);
        iv->q[nb][TRAIN_INTERVALS_HI80] = quantile(r, len, 0.90);
        iv->q[nb][TRAIN_INTERVALS_LO95] = quantile(r, len, 0.025);
        iv->q[nb][TRAIN_INTERVALS_HI95] = quantile(r, len, 0.975);
        iv->count[nb] = len;
        nb++;
        start = end;
    }
    iv->nbins = nb;
    iv->upper[nb - 1] = INFINITY;
    free(r);
    free(p);
}

void train_intervals_apply(const train_intervals *iv, double f, double out[4])
{
    int k = 0;
    while (k < iv->nbins - 1 && f > iv->upper[k])
        k++;
    for (int j = 0; j < 4; j++) {
        double v = f + iv->q[k][j];
        out[j] = v > 0 ? v : 0;
    }
    if (out[TRAIN_INTERVALS_HI80] < out[TRAIN_INTERVALS_LO80])
        out[TRAIN_INTERVALS_HI80] = out[TRAIN_INTERVALS_LO80];
    if (out[TRAIN_INTERVALS_HI95] < out[TRAIN_INTERVALS_LO95])
        out[TRAIN_INTERVALS_HI95] = out[TRAIN_INTERVALS_LO95];
}

json_t *train_intervals_json(const train_intervals *iv)
{
    json_t *bins = json_array();
    for (int k = 0; k < iv->nbins; k++)
        json_array_append_new(
            bins,
            json_pack("{s:o, s:I, s:f, s:f, s:f, s:f}", "upper",
                      isfinite(iv->upper[k]) ? json_real(iv->upper[k]) : json_null(), "n",
                      (json_int_t)iv->count[k], "lo80", iv->q[k][TRAIN_INTERVALS_LO80], "hi80",
                      iv->q[k][TRAIN_INTERVALS_HI80], "lo95", iv->q[k][TRAIN_INTERVALS_LO95],
                      "hi95", iv->q[k][TRAIN_INTERVALS_HI95]));
    return json_pack("{s:s, s:o}", "method",
                     "forecast + empirical quantiles of validation residuals (y - forecast) in "
                     "equal-count bins of the forecast; lower bounds clipped at 0",
                     "bins", bins);
}

int train_intervals_from_json(train_intervals *iv, const json_t *j)
{
    memset(iv, 0, sizeof *iv);
    json_t *bins = json_object_get(j, "bins");
    size_t n = json_array_size(bins);
    if (!n || n > TRAIN_INTERVALS_MAX_BINS)
        return RST_EINVAL;
    static const char *const keys[4] = {"lo80", "hi80", "lo95", "hi95"};
    for (size_t k = 0; k < n; k++) {
        json_t *b = json_array_get(bins, k), *u = json_object_get(b, "upper");
        iv->upper[k] = json_is_number(u) ? json_number_value(u) : INFINITY;
        iv->count[k] = (uint64_t)json_integer_value(json_object_get(b, "n"));
        for (int q = 0; q < 4; q++) {
            json_t *v = json_object_get(b, keys[q]);
            if (!json_is_number(v))
                return RST_EINVAL;
            iv->q[k][q] = json_number_value(v);
        }
    }
    iv->nbins = (int)n;
    iv->upper[n - 1] = INFINITY;
    return RST_OK;
}
