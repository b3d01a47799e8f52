/* Feature rows for the trainer. Each row reads its series through prefix sums
 * (windows in O(1)) and small selections (medians); series are split between
 * threads, each writing its own rows of the matrix, so the result does not
 * depend on the thread count. */
#include "trainer/train_features.h"

#include "datasets/sales.h"
#include "lib/util.h"

#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define LY 364 /* same weekday, last year */

/* Positions of the features whose computation is not a plain lag. */
typedef struct {
    char desc[TRAIN_FEATURES_MAX][112];
} descriptions;

static void add(train_features *f, descriptions *ds, char type, int known, int32_t lookback,
                const char *desc, const char *fmt, ...) __attribute__((format(printf, 7, 8)));
static void add(train_features *f, descriptions *ds, char type, int known, int32_t lookback,
                const char *desc, const char *fmt, ...)
{
    int k = f->nfeat++;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(f->names[k], sizeof f->names[k], fmt, ap);
    va_end(ap);
    f->types[k] = type;
    f->known[k] = (uint8_t)known;
    f->lookback[k] = lookback;
    if (ds)
        snprintf(ds->desc[k], sizeof ds->desc[k], "%s", desc);
}

static int same_weekday(int h)
{
    return 7 * ((h + 6) / 7);
}

/* The one list of features, in column order. The fill code below follows it. */
static void define(train_features *f, int h, descriptions *ds)
{
    int c = same_weekday(h);
    for (int k = 0; k < 7; k++)
        add(f, ds, 'q', 0, h + k, "units sold that many days before the target day", "lag_%d",
            h + k);
    for (int k = 1; k <= 3; k++)
        add(f, ds, 'q', 0, c + 7 * k, "units sold on the same weekday, further back", "lag_%d",
            c + 7 * k);
    add(f, ds, 'q', 0, c + 21,
        "mean of the four same-weekday lags from the first one at or past the horizon",
        "same_weekday_mean_4");
    add(f, ds, 'q', 0, h + 6, "mean units over the 7 days ending horizon days back", "mean_7");
    add(f, ds, 'q', 0, h + 27, "mean units over the 28 days ending horizon days back", "mean_28");
    add(f, ds, 'q', 0, h + 83, "mean units over the 84 days ending horizon days back", "mean_84");
    add(f, ds, 'q', 0, h + 6, "median over the 7 days ending horizon days back", "median_7");
    add(f, ds, 'q', 0, h + 27, "median over the 28 days ending horizon days back", "median_28");
    add(f, ds, 'q', 0, h + 27, "standard deviation over the 28 days ending horizon days back",
        "std_28");
    add(f, ds, 'q', 0, LY, "units sold 364 days before (same weekday last year)", "lag_364");
    add(f, ds, 'q', 0, LY + 3, "mean units over the 7 days centred 364 days before", "ly_mean_7c");
    add(f, ds, 'q', 0, h + LY + 27, "mean units over the 28 days ending horizon + 364 days back",
        "ly_mean_28");
    add(f, ds, 'q', 0, h + LY + 27, "mean_28 / ly_mean_28: the level against last year's",
        "ly_growth");
    add(f, ds, 'q', 0, h + LY + 27,
        "ly_mean_7c x ly_growth: last year's level at the target day, grown", "ly_projection");
    add(f, ds, 'q', 1, 0, "Monday 0 .. Sunday 6", "day_of_week");
    add(f, ds, 'q', 1, 0, "1..31", "day_of_month");
    add(f, ds, 'q', 1, 0, "ISO 8601 week 1..53", "week_of_year");
    add(f, ds, 'q', 1, 0, "1..12", "month");
    add(f, ds, 'q', 1, 0, "1..366", "day_of_year");
    add(f, ds, 'q', 1, 0, "calendar year minus the first year of the training data", "year_index");
    add(f, ds, 'q', 1, 0, "1 on a holiday of the store's country (data column, else calendar)",
        "holiday");
    add(f, ds, 'q', 1, 0, "days to the next holiday, 0..7 (7 = a week or more)", "days_to_holiday");
    add(f, ds, 'q', 1, 7, "days since the last holiday, 0..7 (7 = a week or more)",
        "days_since_holiday");
    add(f, ds, 'q', 1, c, "1 when the first same-weekday lag fell on a holiday", "holiday_lag_%d",
        c);
    add(f, ds, 'q', 1, LY, "1 when the day 364 days before was a holiday", "holiday_lag_364");
    add(f, ds, 'q', 1, 0, "1 on a planned promotion day", "promotion");
    add(f, ds, 'q', 0, c, "1 when the first same-weekday lag was a promotion day",
        "promotion_lag_%d", c);
    add(f, ds, 'q', 0, h + 27, "share of promotion days in the 28 days ending horizon days back",
        "promotion_share_28");
    add(f, ds, 'q', 1, 0, "planned unit price", "price");
    add(f, ds, 'q', 1, 28, "price / mean price of the 28 days before", "price_ratio_28");
    add(f, ds, 'c', 1, 0, "weather (the outlook for a forecast)", "weather");
    add(f, ds, 'c', 0, c, "weather on the first same-weekday lag", "weather_lag_%d", c);
    add(f, ds, 'c', 1, 0, "holiday name from the country calendar", "holiday_name");
    add(f, ds, 'c', 1, 0, "store", "store");
    add(f, ds, 'c', 1, 0, "product", "product");
    add(f, ds, 'c', 1, 0, "product category", "category");
    add(f, ds, 'c', 1, 0, "the store's city", "city");
    add(f, ds, 'c', 1, 0, "the store's country", "country");
}

void train_features_init(train_features *f, int horizon)
{
    memset(f, 0, sizeof *f);
    f->horizon = horizon;
    define(f, horizon, NULL);
}

void train_features_clear(train_features *f)
{
    free(f->store_code);
    free(f->product_code);
    free(f->city_code);
    free(f->holiday_code);
    f->store_code = f->product_code = f->city_code = f->holiday_code = NULL;
}

int32_t train_features_first_day(const train_features *f)
{
    return f->horizon + 27;
}

/* ---- rows ------------------------------------------------------------------------- */

typedef struct {
    float dow, dom, woy, month, doy, year;
} calendar_day;

static void calendar_of(int32_t day, int first_year, calendar_day *c)
{
    int y, m, d;
    util_civil_from_days(day, &y, &m, &d);
    int wd = (int)(((int64_t)day % 7 + 7 + 3) % 7); /* 1970-01-01 was a Thursday */
    int32_t thursday = day - wd + 3;
    int ty, tm, td;
    util_civil_from_days(thursday, &ty, &tm, &td);
    c->dow = (float)wd;
    c->dom = (float)d;
    c->woy = (float)((thursday - util_days_from_civil(ty, 1, 1)) / 7 + 1);
    c->month = (float)m;
    c->doy = (float)(day - util_days_from_civil(y, 1, 1) + 1);
    c->year = (float)(y - first_year);
}

typedef struct {
    const train_features *f;
    const train_data *d;
    const calendar_day *cal; /* ndays */
    int32_t t0, t1;
    float *x, *y;
    size_t s0, s1; /* series of this worker */
    volatile sig_atomic_t *stop;
    int stopped;
} job;

/* Sum of pre over [a, b] (inclusive), as prefix sums. */
static double span(const double *pre, int64_t a, int64_t b)
{
    return pre[b + 1] - pre[a];
}

/* The w values of q ending at day end, sorted, kept up to date as end moves
 * on by one day (rows of a series come day after day): the medians without a
 * selection over the window per row. */
typedef struct {
    float v[28];
    int w;
    int64_t end; /* -1: not filled */
} sorted_window;

static void window_fill(sorted_window *s, const float *q, int64_t end)
{
    for (int i = 0; i < s->w; i++) {
        float x = q[end - s->w + 1 + i];
        int j = i;
        for (; j > 0 && x < s->v[j - 1]; j--)
            s->v[j] = s->v[j - 1];
        s->v[j] = x;
    }
    s->end = end;
}

/* Moves the window to end (filling it afresh unless end is the next day). */
static void window_to(sorted_window *s, const float *q, int64_t end)
{
    if (s->end < 0 || end != s->end + 1) {
        window_fill(s, q, end);
        return;
    }
    float out = q[end - s->w], in = q[end];
    int i = 0;
    while (i < s->w && memcmp(&s->v[i], &out, sizeof out))
        i++;
    if (i == s->w) { /* not found: only a NaN compares unequal to itself */
        window_fill(s, q, end);
        return;
    }
    /* close the gap at i, then insert in keeping the order */
    memmove(&s->v[i], &s->v[i + 1], (size_t)(s->w - 1 - i) * sizeof *s->v);
    int j = s->w - 1;
    for (; j > 0 && in < s->v[j - 1]; j--)
        s->v[j] = s->v[j - 1];
    s->v[j] = in;
    s->end = end;
}

/* median() of the window: the middle value, or the mean of the two middle ones. */
static float window_median(const sorted_window *s)
{
    if (s->w % 2)
        return s->v[s->w / 2];
    return (s->v[s->w / 2 - 1] + s->v[s->w / 2]) / 2.0f;
}

static float code_of(const int32_t *map, uint32_t v)
{
    if (!map)
        return (float)v;
    return map[v] < 0 ? NAN : (float)map[v];
}

static void fill_series(const job *J, size_t i, double *pre, double *pre2, double *ppre,
                        double *prpre)
{
    const train_features *f = J->f;
    const train_data *d = J->d;
    const int64_t D = d->ndays, h = f->horizon, c = same_weekday(f->horizon);
    const float *q = d->qty + i * (size_t)D, *pr = d->price + i * (size_t)D;
    const uint8_t *pm = d->promo + i * (size_t)D;
    const size_t s = d->series_store[i], p = d->series_product[i];
    const size_t sd = s * (size_t)D;
    pre[0] = pre2[0] = ppre[0] = prpre[0] = 0;
    for (int64_t t = 0; t < D; t++) {
        pre[t + 1] = pre[t] + q[t];
        pre2[t + 1] = pre2[t] + (double)q[t] * q[t];
        ppre[t + 1] = ppre[t] + pm[t];
        prpre[t + 1] = prpre[t] + pr[t];
    }
    const float store = code_of(f->store_code, (uint32_t)s);
    const float product = code_of(f->product_code, (uint32_t)p);
    const float category = (float)d->product_category[p];
    const float city = code_of(f->city_code, d->store_city[s]);
    const float country = (float)d->store_country[s];
    sorted_window w7 = {.w = 7, .end = -1}, w28 = {.w = 28, .end = -1};
    for (int64_t t = J->t0; t < J->t1; t++) {
        const size_t row = (size_t)(t - J->t0) * d->nseries + i;
        float *o = J->x + row * (size_t)f->nfeat;
        int k = 0;
        const int64_t e = t - h; /* the last day a sales feature may read */
#define LAG(n) ((t - (n)) >= 0 ? q[t - (n)] : NAN)
#define MEAN(a, b) ((a) >= 0 ? (float)(span(pre, (a), (b)) / (double)((b) - (a) + 1)) : NAN)
        for (int64_t n = h; n < h + 7; n++)
            o[k++] = LAG(n);
        for (int64_t n = 1; n <= 3; n++)
            o[k++] = LAG(c + 7 * n);
        o[k++] = t - c - 21 >= 0 ? (q[t - c] + q[t - c - 7] + q[t - c - 14] + q[t - c - 21]) / 4.0f
                                 : NAN;
        o[k++] = MEAN(e - 6, e);
        float mean28 = MEAN(e - 27, e);
        o[k++] = mean28;
        o[k++] = MEAN(e - 83, e);
        if (e - 6 >= 0) {
            window_to(&w7, q, e);
            o[k++] = window_median(&w7);
        } else {
            o[k++] = NAN;
        }
        if (e - 27 >= 0) {
            window_to(&w28, q, e);
            o[k++] = window_median(&w28);
        } else {
            o[k++] = NAN;
        }
        if (e - 27 >= 0) {
            double sum = span(pre, e - 27, e), sq = span(pre2, e - 27, e);
            double var = (sq - sum * sum / 28.0) / 27.0;
            o[k++] = (float)sqrt(var > 0 ? var : 0);
        } else {
            o[k++] = NAN;
        }
        o[k++] = LAG(LY);
        float ly7 = MEAN(t - LY - 3, t - LY + 3);
        o[k++] = ly7;
        float ly28 = MEAN(e - LY - 27, e - LY);
        o[k++] = ly28;
        float growth = !isnan(ly28) && !isnan(mean28) && ly28 > 0 ? mean28 / ly28 : NAN;
        o[k++] = growth;
        o[k++] = !isnan(growth) && !isnan(ly7) ? ly7 * growth : NAN;
        const calendar_day *cd = &J->cal[t];
        o[k++] = cd->dow;
        o[k++] = cd->dom;
        o[k++] = cd->woy;
        o[k++] = cd->month;
        o[k++] = cd->doy;
        o[k++] = cd->year;
        o[k++] = d->holiday[sd + (size_t)t];
        o[k++] = d->holiday_next[sd + (size_t)t];
        o[k++] = d->holiday_last[sd + (size_t)t];
        o[k++] = t - c >= 0 ? d->holiday[sd + (size_t)(t - c)] : NAN;
        o[k++] = t - LY >= 0 ? d->holiday[sd + (size_t)(t - LY)] : NAN;
        o[k++] = pm[t];
        o[k++] = t - c >= 0 ? pm[t - c] : NAN;
        o[k++] = e - 27 >= 0 ? (float)(span(ppre, e - 27, e) / 28.0) : NAN;
        o[k++] = pr[t];
        double pmean = t - 28 >= 0 ? span(prpre, t - 28, t - 1) / 28.0 : 0;
        o[k++] = pmean > 0 ? (float)(pr[t] / pmean) : NAN;
        o[k++] = d->weather[sd + (size_t)t];
        o[k++] = t - c >= 0 ? d->weather[sd + (size_t)(t - c)] : NAN;
        o[k++] = code_of(f->holiday_code, d->holiday_name[sd + (size_t)t]);
        o[k++] = store;
        o[k++] = product;
        o[k++] = category;
        o[k++] = city;
        o[k++] = country;
#undef LAG
#undef MEAN
        for (int j = 0; j < k; j++)
            if (f->types[j] == 'q' && isnan(o[j]))
                o[j] = TRAIN_FEATURES_MISSING;
        if (J->y)
            J->y[row] = q[t];
    }
}

static void *worker(void *arg)
{
    job *J = arg;
    size_t D = (size_t)J->d->ndays + 1;
    double *scratch = xmalloc(4 * D * sizeof *scratch);
    for (size_t i = J->s0; i < J->s1; i++) {
        if (J->stop && *J->stop) {
            J->stopped = 1;
            break;
        }
        fill_series(J, i, scratch, scratch + D, scratch + 2 * D, scratch + 3 * D);
    }
    free(scratch);
    return NULL;
}

/* Fills x (and y unless NULL) for days [t0, t1), already clamped. 0, or -1
 * when stop became non-zero. */
static int fill(const train_features *f, const train_data *d, int32_t t0, int32_t t1, int threads,
                volatile sig_atomic_t *stop, float *x, float *y);

float *train_features_matrix(const train_features *f, const train_data *d, int32_t t0, int32_t t1,
                             int threads, volatile sig_atomic_t *stop, float **labels)
{
    if (labels)
        *labels = NULL;
    if (t0 < 0)
        t0 = 0;
    if (t1 > d->ndays)
        t1 = d->ndays;
    if (t1 < t0)
        t1 = t0;
    size_t rows = d->nseries * (size_t)(t1 - t0);
    float *x = malloc((rows ? rows : 1) * (size_t)f->nfeat * sizeof *x);
    float *y = labels ? malloc((rows ? rows : 1) * sizeof *y) : NULL;
    if (!x || (labels && !y)) {
        free(x);
        free(y);
        return NULL;
    }
    if (fill(f, d, t0, t1, threads, stop, x, y)) {
        free(x);
        free(y);
        return NULL;
    }
    if (labels)
        *labels = y;
    return x;
}

int train_features_fill(const train_features *f, const train_data *d, int32_t t0, int32_t t1,
                        int threads, volatile sig_atomic_t *stop, float *x)
{
    if (t0 < 0)
        t0 = 0;
    if (t1 > d->ndays)
        t1 = d->ndays;
    if (t1 < t0)
        t1 = t0;
    return fill(f, d, t0, t1, threads, stop, x, NULL);
}

static int fill(const train_features *f, const train_data *d, int32_t t0, int32_t t1, int threads,
                volatile sig_atomic_t *stop, float *x, float *y)
{
    int first_year;
    {
        int m, dd;
        util_civil_from_days(d->first_day, &first_year, &m, &dd);
    }
    calendar_day *cal = xmalloc((size_t)d->ndays * sizeof *cal);
    for (int32_t t = 0; t < d->ndays; t++)
        calendar_of(d->first_day + t, first_year, &cal[t]);
    if (threads < 1)
        threads = 1;
    if ((size_t)threads > d->nseries)
        threads = d->nseries ? (int)d->nseries : 1;
    job *jobs = xcalloc((size_t)threads, sizeof *jobs);
    pthread_t *tids = xcalloc((size_t)threads, sizeof *tids);
    int stopped = 0;
    for (int k = 0; k < threads; k++) {
        jobs[k] = (job){.f = f,
                        .d = d,
                        .cal = cal,
                        .t0 = t0,
                        .t1 = t1,
                        .x = x,
                        .y = y,
                        .s0 = d->nseries * (size_t)k / (size_t)threads,
                        .s1 = d->nseries * (size_t)(k + 1) / (size_t)threads,
                        .stop = stop};
        if (k == 0 || pthread_create(&tids[k], NULL, worker, &jobs[k]))
            tids[k] = 0;
    }
    worker(&jobs[0]);
    for (int k = 1; k < threads; k++) {
        if (tids[k])
            pthread_join(tids[k], NULL);
        else
            worker(&jobs[k]); /* no thread: do its share here */
    }
    for (int k = 0; k < threads; k++)
        stopped |= jobs[k].stopped;
    free(jobs);
    free(tids);
    free(cal);
    return stopped ? -1 : 0;
}

/* ---- the specification ------------------------------------------------------------ */

static json_t *names_json(char *const *names, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++)
        json_array_append_new(a, json_string(names[i]));
    return a;
}

static json_t *enum_json(const char *(*name)(int), int n, const char *none)
{
    json_t *a = json_array();
    for (int i = 0; i < n; i++)
        json_array_append_new(a, json_string(i == 0 && none ? none : name(i)));
    return a;
}

json_t *train_features_json(const train_features *f, const train_data *d)
{
    train_features tmp;
    descriptions ds;
    memset(&tmp, 0, sizeof tmp);
    memset(&ds, 0, sizeof ds);
    define(&tmp, f->horizon, &ds);
    json_t *list = json_array();
    for (int k = 0; k < f->nfeat; k++)
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:s, s:b, s:i, s:s}", "name", f->names[k], "type",
                            f->types[k] == 'c' ? "categorical" : "numeric", "xgboost_type",
                            f->types[k] == 'c' ? "c" : "q", "known_in_advance", f->known[k],
                            "reads_days_back", f->lookback[k], "description", ds.desc[k]));
    int h = f->horizon, c = same_weekday(h);
    json_t *lags = json_array();
    for (int k = 0; k < 7; k++)
        json_array_append_new(lags, json_integer(h + k));
    for (int k = 1; k <= 3; k++)
        json_array_append_new(lags, json_integer(c + 7 * k));
    json_array_append_new(lags, json_integer(LY));
    json_t *levels = json_pack("{s:o, s:o, s:o, s:o, s:o, s:o, s:o}", "store",
                               names_json(d->store_ids, d->nstores), "product",
                               names_json(d->product_names, d->nproducts), "category",
                               enum_json(sales_category_name, SALES_CATEGORY__N, NULL), "city",
                               names_json(d->city_names, d->ncities), "country",
                               enum_json(sales_country_name, SALES_COUNTRY__N, NULL), "weather",
                               enum_json(sales_weather_name, SALES_WEATHER__N, "none"),
                               "holiday_name", names_json(d->holiday_names, d->nholidays));
    /* every categorical feature finds its levels under its own name */
    char lagged[TRAIN_FEATURES_NAME];
    snprintf(lagged, sizeof lagged, "weather_lag_%d", c);
    json_object_set(levels, lagged, json_object_get(levels, "weather"));
    return json_pack(
        "{s:i, s:s, s:i, s:i, s:o, s:o, s:{s:[i,i,i], s:[i,i], s:[i], s:i, s:i}, s:o, s:s, "
        "s:{s:f, s:n}, s:s}",
        "version", TRAIN_FEATURES_VERSION, "scheme", "direct", "horizon", h, "first_day_offset",
        train_features_first_day(f), "features", list, "lags", lags, "windows", "mean", 7, 28, 84,
        "median", 7, 28, "std", 28, "last_year_centred_7", LY, "last_year_28_ending", h + LY,
        "levels", levels, "missing",
        "numeric: -1 (history before the first day, an undefined ratio); categorical: NaN "
        "(a level the model never saw)",
        "missing_value", "numeric", (double)TRAIN_FEATURES_MISSING, "categorical", "note",
        "a row for target day t reads sales up to t - horizon only; known_in_advance features "
        "(calendar, holidays, planned promotion and price, weather outlook) are read at t");
}

/* new: map of d's names to their positions in the model's list (-1 unseen). */
static int32_t *map_levels(const json_t *model, char *const *names, size_t n)
{
    int32_t *map = xmalloc((n ? n : 1) * sizeof *map);
    for (size_t i = 0; i < n; i++) {
        map[i] = -1;
        size_t k;
        json_t *v;
        json_array_foreach(model, k, v)
        {
            const char *s = json_string_value(v);
            if (s && !strcmp(s, names[i])) {
                map[i] = (int32_t)k;
                break;
            }
        }
    }
    return map;
}

int train_features_bind(train_features *f, const json_t *spec, const train_data *d, char *err,
                        size_t errlen)
{
    json_t *version = json_object_get(spec, "version"), *horizon = json_object_get(spec, "horizon");
    json_t *list = json_object_get(spec, "features"), *levels = json_object_get(spec, "levels");
    if (json_integer_value(version) != TRAIN_FEATURES_VERSION) {
        snprintf(err, errlen, "features.json has version %lld; this trainer reads version %d",
                 (long long)json_integer_value(version), TRAIN_FEATURES_VERSION);
        return RST_EINVAL;
    }
    long long h = json_integer_value(horizon);
    if (h < 1 || h > 365 || !json_is_array(list) || !json_is_object(levels)) {
        snprintf(err, errlen, "features.json lacks a horizon, the feature list or the levels");
        return RST_EINVAL;
    }
    train_features_clear(f);
    train_features_init(f, (int)h);
    if ((int)json_array_size(list) != f->nfeat) {
        snprintf(err, errlen, "features.json lists %zu features; this trainer builds %d",
                 json_array_size(list), f->nfeat);
        return RST_EINVAL;
    }
    for (int k = 0; k < f->nfeat; k++) {
        const char *n = json_string_value(json_object_get(json_array_get(list, (size_t)k), "name"));
        if (!n || strcmp(n, f->names[k])) {
            snprintf(err, errlen, "feature %d is '%s' in features.json, '%s' here", k, n ? n : "?",
                     f->names[k]);
            return RST_EINVAL;
        }
    }
    f->store_code = map_levels(json_object_get(levels, "store"), d->store_ids, d->nstores);
    f->product_code =
        map_levels(json_object_get(levels, "product"), d->product_names, d->nproducts);
    f->city_code = map_levels(json_object_get(levels, "city"), d->city_names, d->ncities);
    f->holiday_code =
        map_levels(json_object_get(levels, "holiday_name"), d->holiday_names, d->nholidays);
    return RST_OK;
}
