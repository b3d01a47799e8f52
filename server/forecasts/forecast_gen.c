/* Forecast generation over the trainer's own pieces: the history is copied
 * into a short window ending at the origin (the last day whose sales are
 * known) and extended with the known future inputs, then the trainer's
 * feature matrix, XGBoost prediction (or baseline rule) and calibrated
 * intervals are computed block by block of series, so memory stays bounded. */
#include "forecasts/forecast_gen.h"
#include "forecasts/forecast_inputs.h"
#include "forecasts/xgb_forest.h"

#include "trainer/train_params.h"
#include "datasets/sales.h"
#include "trainer/holidays.h"
#include "trainer/train_baselines.h"
#include "trainer/train_features.h"
#include "trainer/train_intervals.h"
#include "trainer/train_xgb.h"

#include <errno.h>
#include <jansson.h>
#include <math.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define NWEATHER (SALES_WEATHER__N - 1) /* real values, not NONE */
#define HCLIP TRAIN_DATA_HOLIDAY_CLIP
#define CHECK_ROWS 1024 /* rows of every block after the first predicted by XGBoost too */

enum { ALG_XGBOOST = 0, ALG_SEASONAL_NAIVE, ALG_MOVING_AVERAGE, ALG__N };
static const char *const alg_names[ALG__N] = {"xgboost", "seasonal_naive", "moving_average"};

static void set_err(char *err, size_t errlen, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void set_err(char *err, size_t errlen, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (errlen)
        vsnprintf(err, errlen, fmt, ap);
    va_end(ap);
}

/* ---- the model ---------------------------------------------------------------------- */

struct forecast_gen_model {
    int alg;
    int horizon;
    json_t *spec; /* features.json */
    train_xgb *xgb;
    xgb_forest *own; /* our evaluator of xgb's trees; NULL: XGBoost predicts */
    train_intervals iv;
    int first_year; /* of the training data: year_index is relative to it */
    int year_col;   /* column of year_index, -1 for a baseline */
    char sha256[65];
};

/* new: the whole file (NUL-terminated), *len its size; NULL with err. */
static char *read_file(const char *path, size_t *len, char *err, size_t errlen)
{
    FILE *f = fopen(path, "rb");
    char *data = NULL;
    size_t n = 0, cap = 0;
    if (!f) {
        set_err(err, errlen, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    for (;;) {
        if (cap - n < 65536) {
            cap = cap ? cap * 2 : 1 << 20;
            data = xrealloc(data, cap + 1);
        }
        size_t got = fread(data + n, 1, cap - n, f);
        n += got;
        if (got == 0)
            break;
    }
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        set_err(err, errlen, "cannot read %s", path);
        free(data);
        return NULL;
    }
    data[n] = '\0';
    *len = n;
    return data;
}

int forecast_gen_model_load(const char *dir, int threads, forecast_gen_model **out, char *err,
                            size_t errlen)
{
    int rc = RST_EINVAL;
    char *fpath = xasprintf("%s/features.json", dir), *mpath = xasprintf("%s/model.json", dir);
    char *mdata = NULL;
    size_t mlen = 0;
    json_t *bmodel = NULL;
    forecast_gen_model *m = xcalloc(1, sizeof *m);
    m->year_col = -1;
    *out = NULL;
    json_error_t jerr;
    m->spec = json_load_file(fpath, JSON_REJECT_DUPLICATES, &jerr);
    if (!m->spec) {
        set_err(err, errlen, "cannot read %s: %s", fpath, jerr.text);
        rc = RST_EIO;
        goto out;
    }
    const char *alg = json_string_value(json_object_get(m->spec, "algorithm"));
    m->alg = -1;
    for (int a = 0; alg && a < ALG__N; a++)
        if (!strcmp(alg, alg_names[a]))
            m->alg = a;
    json_int_t h = json_integer_value(json_object_get(m->spec, "horizon"));
    if (m->alg < 0 || h < 1 || h > TRAIN_MAX_HORIZON) {
        set_err(err, errlen, "%s names no known algorithm or horizon", fpath);
        goto out;
    }
    m->horizon = (int)h;
    mdata = read_file(mpath, &mlen, err, errlen);
    if (!mdata) {
        rc = RST_EIO;
        goto out;
    }
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned mdlen = 0;
    EVP_Digest(mdata, mlen, md, &mdlen, EVP_sha256(), NULL);
    for (unsigned i = 0; i < mdlen && i < 32; i++)
        snprintf(m->sha256 + 2 * i, 3, "%02x", md[i]);
    if (m->alg == ALG_XGBOOST) {
        char xerr[300] = "";
        if (train_xgb_load(mpath, threads, &m->xgb, xerr, sizeof xerr)) {
            set_err(err, errlen, "cannot load %s: %s", mpath, xerr);
            goto out;
        }
        if (train_intervals_from_json(&m->iv, json_object_get(m->spec, "intervals"))) {
            set_err(err, errlen, "%s has no valid intervals", fpath);
            goto out;
        }
        /* year_index counts years from the training data's first day */
        const char *t0 =
            json_string_value(json_object_get(json_object_get(m->spec, "training"), "first_date"));
        json_int_t off = json_integer_value(json_object_get(m->spec, "first_day_offset"));
        int32_t day;
        if (!t0 || sales_parse_date(t0, strlen(t0), &day)) {
            set_err(err, errlen, "%s has no training.first_date", fpath);
            goto out;
        }
        int mo, dd;
        util_civil_from_days(day - (int32_t)off, &m->first_year, &mo, &dd);
        train_features f;
        train_features_init(&f, m->horizon);
        for (int k = 0; k < f.nfeat; k++)
            if (!strcmp(f.names[k], "year_index"))
                m->year_col = k;
        m->own = xgb_forest_load(mdata, mlen, f.nfeat);
    } else {
        bmodel = json_loadb(mdata, mlen, JSON_REJECT_DUPLICATES, &jerr);
        if (!bmodel || train_intervals_from_json(&m->iv, json_object_get(bmodel, "intervals"))) {
            set_err(err, errlen, "%s is not a baseline model with intervals", mpath);
            goto out;
        }
    }
    *out = m;
    m = NULL;
    rc = RST_OK;
out:
    forecast_gen_model_free(m);
    json_decref(bmodel);
    free(mdata);
    free(fpath);
    free(mpath);
    return rc;
}

int forecast_gen_model_horizon(const forecast_gen_model *m)
{
    return m->horizon;
}

const char *forecast_gen_model_algorithm(const forecast_gen_model *m)
{
    return alg_names[m->alg];
}

const char *forecast_gen_model_sha256(const forecast_gen_model *m)
{
    return m->sha256;
}

int forecast_gen_model_history_days(const forecast_gen_model *m)
{
    if (m->alg == ALG_SEASONAL_NAIVE)
        return 7;
    if (m->alg == ALG_MOVING_AVERAGE)
        return TRAIN_BASELINES_WINDOW;
    train_features f;
    train_features_init(&f, m->horizon);
    int32_t need = 0;
    for (int k = 0; k < f.nfeat; k++)
        if (f.lookback[k] > need)
            need = f.lookback[k];
    return (int)need;
}

int forecast_gen_model_predict(const forecast_gen_model *m, const float *x, size_t rows,
                               int threads, float *out)
{
    if (!m->own)
        return RST_EINVAL;
    xgb_forest_predict(m->own, x, rows, threads, out);
    return RST_OK;
}

void forecast_gen_model_free(forecast_gen_model *m)
{
    if (!m)
        return;
    json_decref(m->spec);
    train_xgb_free(m->xgb);
    xgb_forest_free(m->own);
    free(m);
}

/* ---- the extended data -------------------------------------------------------------- */

/* The history's days [base, origin] followed by the future days up to the
 * last forecast day, as a train_data view (v) whose names, stores and series
 * are borrowed from the history and whose per-day arrays are owned here. */
typedef struct {
    train_data v;
    char **holiday_names; /* history's (borrowed) then new calendar names (owned) */
    size_t nhist_holidays;
    size_t *store_first; /* nstores + 1: first series of each store */
} ext_data;

static void ext_free(ext_data *e)
{
    free(e->v.qty);
    free(e->v.price);
    free(e->v.promo);
    free(e->v.weather);
    free(e->v.holiday);
    free(e->v.holiday_name);
    free(e->v.holiday_next);
    free(e->v.holiday_last);
    for (size_t k = e->nhist_holidays; k < e->v.nholidays; k++)
        free(e->holiday_names[k]);
    free(e->holiday_names);
    free(e->store_first);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static long find_sorted(char *const *names, size_t n, const char *name)
{
    char *const *hit = bsearch(&name, names, n, sizeof *names, cmp_str);
    return hit ? (long)(hit - names) : -1;
}

/* The code of a calendar holiday name, appending it when the history has none. */
static uint16_t holiday_code(ext_data *e, const char *name)
{
    if (!name)
        return TRAIN_DATA_HOLIDAY_NONE;
    if (e->nhist_holidays > 2) {
        long k = find_sorted(e->holiday_names + 2, e->nhist_holidays - 2, name);
        if (k >= 0)
            return (uint16_t)(k + 2);
    }
    for (size_t k = e->nhist_holidays; k < e->v.nholidays; k++)
        if (!strcmp(e->holiday_names[k], name))
            return (uint16_t)k;
    e->holiday_names = xrealloc(e->holiday_names, (e->v.nholidays + 1) * sizeof(char *));
    e->holiday_names[e->v.nholidays] = xstrdup(name);
    e->v.holiday_names = e->holiday_names;
    return (uint16_t)e->v.nholidays++;
}

static const char *calendar(int country, int32_t day)
{
    int y, m, d;
    util_civil_from_days(day, &y, &m, &d);
    return holidays_name(sales_country_name(country), y, m, d);
}

static int month_of(int32_t day)
{
    int y, m, d;
    util_civil_from_days(day, &y, &m, &d);
    return m - 1;
}

/* Most frequent weather in v[NWEATHER] (ties: the lower code); NONE without any. */
static uint8_t most_frequent(const uint32_t *v)
{
    int best = -1;
    for (int w = 0; w < NWEATHER; w++)
        if (v[w] && (best < 0 || v[w] > v[best]))
            best = w;
    return (uint8_t)(best < 0 ? SALES_WEATHER_NONE : best + 1);
}

/* Builds e for history days [base, origin] and future days up to last (all
 * day indexes of h). RST_OK or RST_ENOMEM.
 * size: one block per per-day array of the extended data (series, stores, price, promotions,
 * weather, holidays), in the order of train_data's fields, over the same indexes. */
static int ext_build(ext_data *e, const train_data *h, const forecast_inputs *in, int32_t base,
                     int32_t origin, int32_t last, forecast_gen_stats *st)
{
    const size_t N = h->nseries, S = h->nstores, C = h->ncities, D = (size_t)h->ndays;
    const size_t X = (size_t)(last - base + 1), H = (size_t)(origin - base + 1);
    const int32_t day0 = h->first_day + base; /* the epoch day of e's index 0 */
    memset(e, 0, sizeof *e);
    e->v = *h;
    e->v.first_day = day0;
    e->v.ndays = (int32_t)X;
    e->v.qty = malloc(N * X * sizeof *e->v.qty);
    e->v.price = malloc(N * X * sizeof *e->v.price);
    e->v.promo = calloc(N * X, 1);
    e->v.weather = malloc(S * X);
    e->v.holiday = malloc(S * X);
    e->v.holiday_name = malloc(S * X * sizeof *e->v.holiday_name);
    e->v.holiday_next = malloc(S * X);
    e->v.holiday_last = malloc(S * X);
    if (!e->v.qty || !e->v.price || !e->v.promo || !e->v.weather || !e->v.holiday ||
        !e->v.holiday_name || !e->v.holiday_next || !e->v.holiday_last)
        return RST_ENOMEM;
    e->nhist_holidays = h->nholidays;
    e->holiday_names = xmalloc((h->nholidays ? h->nholidays : 1) * sizeof(char *));
    memcpy(e->holiday_names, h->holiday_names, h->nholidays * sizeof(char *));
    e->v.holiday_names = e->holiday_names;

    /* series: the history up to the origin, then nothing sold (never read: the
     * direct features read sales up to t - horizon <= origin), the last price
     * carried, no promotion unless planned */
    for (size_t i = 0; i < N; i++) {
        const float *q = h->qty + i * D + base, *p = h->price + i * D + base;
        const uint8_t *pm = h->promo + i * D + base;
        float *oq = e->v.qty + i * X, *op = e->v.price + i * X;
        memcpy(oq, q, H * sizeof *oq);
        memset(oq + H, 0, (X - H) * sizeof *oq);
        memcpy(op, p, H * sizeof *op);
        for (size_t t = H; t < X; t++)
            op[t] = p[H - 1];
        memcpy(e->v.promo + i * X, pm, H);
    }
    /* store_first[s]: the first series of store s or after (series are sorted by store) */
    e->store_first = xcalloc(S + 1, sizeof *e->store_first);
    size_t sn = 0;
    for (size_t i = 0; i < N; i++)
        while (sn <= h->series_store[i])
            e->store_first[sn++] = i;
    while (sn <= S)
        e->store_first[sn++] = N;
    for (size_t k = 0; in && k < in->npromos; k++) {
        const forecast_inputs_promotion *p = &in->promos[k];
        long s = p->store ? find_sorted(h->store_ids, S, p->store) : -1;
        long pr = p->product ? find_sorted(h->product_names, h->nproducts, p->product) : -1;
        if ((p->store && s < 0) || (p->product && pr < 0)) {
            st->promotions_ignored++;
            continue;
        }
        int32_t a = p->first - day0, b = p->last - day0;
        if (a < (int32_t)H)
            a = (int32_t)H;
        if (b > (int32_t)X - 1)
            b = (int32_t)X - 1;
        if (a > b)
            continue;
        size_t s0 = p->store ? (size_t)s : 0, s1 = p->store ? (size_t)s + 1 : S;
        for (size_t ss = s0; ss < s1; ss++)
            for (size_t i = e->store_first[ss]; i < N && h->series_store[i] == ss; i++)
                if (!p->product || h->series_product[i] == (uint32_t)pr)
                    for (int32_t t = a; t <= b; t++)
                        e->v.promo[i * X + (size_t)t] = 1;
    }
    for (size_t i = 0; i < N; i++)
        for (size_t t = H; t < X; t++)
            st->promoted_series_days += e->v.promo[i * X + t];

    /* weather: the outlook, else the city's most frequent weather in the
     * history for that month, else its most frequent overall */
    uint32_t *votes = xcalloc((C ? C : 1) * 13 * NWEATHER, sizeof *votes);
    int y0, m0, d0;
    util_civil_from_days(h->first_day, &y0, &m0, &d0);
    for (size_t s = 0; s < S; s++) {
        uint32_t *cv = votes + (size_t)h->store_city[s] * 13 * NWEATHER;
        int year = y0, month = m0 - 1, mday = d0;
        for (int32_t t = 0; t <= origin; t++) {
            uint8_t w = h->weather[s * D + (size_t)t];
            if (w != SALES_WEATHER_NONE) {
                cv[(size_t)month * NWEATHER + w - 1]++;
                cv[(size_t)12 * NWEATHER + w - 1]++;
            }
            /* the next day, without a civil conversion per day */
            static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
            int len = mdays[month] +
                      (month == 1 && ((year % 4 == 0 && year % 100 != 0) || year % 400 == 0));
            if (++mday > len) {
                mday = 1;
                if (++month == 12) {
                    month = 0;
                    year++;
                }
            }
        }
    }
    uint8_t *usual = xmalloc((C ? C : 1) * 13);
    for (size_t c = 0; c < C; c++) {
        uint8_t all = most_frequent(votes + (c * 13 + 12) * NWEATHER);
        for (int mo = 0; mo < 12; mo++) {
            uint8_t w = most_frequent(votes + (c * 13 + (size_t)mo) * NWEATHER);
            usual[c * 13 + (size_t)mo] = w != SALES_WEATHER_NONE ? w : all;
        }
    }
    free(votes);
    uint8_t *given = xcalloc((C ? C : 1) * (X - H), 1);
    for (size_t k = 0; in && k < in->noutlook; k++) {
        const forecast_inputs_outlook *o = &in->outlook[k];
        long c = find_sorted(h->city_names, C, o->city);
        int32_t t = o->day - day0;
        if (c < 0 || t < (int32_t)H || t >= (int32_t)X) {
            st->outlook_ignored++;
            continue;
        }
        given[(size_t)c * (X - H) + (size_t)(t - (int32_t)H)] = o->weather;
        st->outlook_used++;
    }
    for (size_t s = 0; s < S; s++) {
        memcpy(e->v.weather + s * X, h->weather + s * D + base, H);
        size_t c = h->store_city[s];
        for (size_t t = H; t < X; t++) {
            uint8_t w = given[c * (X - H) + (t - H)];
            e->v.weather[s * X + t] = w ? w : usual[c * 13 + (size_t)month_of(day0 + (int32_t)t)];
        }
    }
    free(given);
    free(usual);

    /* holidays: the history's up to the origin, the country calendar after */
    const size_t F = X - H;
    uint8_t *flag = xmalloc(F + 2 * HCLIP);
    const char **names = xmalloc((F + HCLIP) * sizeof *names);
    for (size_t s = 0; s < S; s++) {
        size_t so = s * X, sh = s * D + (size_t)base;
        memcpy(e->v.holiday + so, h->holiday + sh, H);
        memcpy(e->v.holiday_name + so, h->holiday_name + sh, H * sizeof *e->v.holiday_name);
        memcpy(e->v.holiday_next + so, h->holiday_next + sh, H);
        memcpy(e->v.holiday_last + so, h->holiday_last + sh, H);
        /* flag[k] is day origin + 1 - HCLIP + k */
        for (size_t k = 0; k < F + 2 * HCLIP; k++) {
            int32_t t = origin + 1 - HCLIP + (int32_t)k; /* history index */
            if (t <= origin) {
                flag[k] = t >= 0 ? h->holiday[s * D + (size_t)t]
                                 : calendar(h->store_country[s], h->first_day + t) != NULL;
            } else {
                const char *n = calendar(h->store_country[s], h->first_day + t);
                flag[k] = n != NULL;
                names[k - HCLIP] = n;
            }
        }
        for (size_t j = 0; j < F; j++) {
            size_t at = so + H + j, k = j + HCLIP;
            e->v.holiday[at] = flag[k];
            e->v.holiday_name[at] = holiday_code(e, names[j]);
            uint8_t next = HCLIP, lastd = HCLIP;
            for (size_t q = 0; q <= HCLIP; q++)
                if (flag[k + q]) {
                    next = (uint8_t)q;
                    break;
                }
            for (size_t q = 0; q <= HCLIP; q++)
                if (flag[k - q]) {
                    lastd = (uint8_t)q;
                    break;
                }
            e->v.holiday_next[at] = next;
            e->v.holiday_last[at] = lastd;
        }
    }
    free(flag);
    free(names);
    return RST_OK;
}

/* ---- generation --------------------------------------------------------------------- */

static double bound(double v)
{
    return round(v * 1000) / 1000;
}

/* new: name as one CSV field. */
static char *csv_field_of(const char *name)
{
    buf_t b;
    buf_init(&b, 0);
    sales_write_field(&b, name, strlen(name));
    return b.data ? b.data : xstrdup("");
}

/* size: the block loop keeps the check of our tree evaluator against XGBoost (the first block
 * whole, a sample of every other) beside the fallback it triggers; nine buffers, one release. */
int forecast_gen_run(forecast_gen_model *m, const train_data *h, const forecast_inputs *in,
                     const forecast_gen_options *o, forecast_gen_sink sink, void *arg,
                     forecast_gen_stats *stats, char *err, size_t errlen)
{
    forecast_gen_stats local;
    forecast_gen_stats *st = stats ? stats : &local;
    memset(st, 0, sizeof *st);
    if (errlen)
        err[0] = '\0';
    const int H = m->horizon;
    const int32_t D = h->ndays;
    int32_t start = o->start == INT32_MIN ? D : o->start - h->first_day; /* index */
    int32_t origin = start - 1 < D - 1 ? start - 1 : D - 1;
    char sd[11], ld[11], fd[11];
    sales_format_date(h->first_day + start, sd);
    sales_format_date(h->first_day + origin, ld);
    sales_format_date(h->first_day, fd);
    st->start = h->first_day + start;
    st->origin = h->first_day + origin;
    st->series = h->nseries;
    const int32_t gap = start - 1 - origin;
    if (gap >= H) {
        set_err(err, errlen,
                "--start %s is %d days after the history's last day (%s); this model forecasts "
                "at most %d days ahead",
                sd, gap + 1, ld, H);
        return FORECAST_GEN_ESTART;
    }
    int days = o->days ? o->days : H - gap;
    if (days > H - gap) {
        set_err(err, errlen,
                "--horizon %d reaches %d days after the history's last day (%s); this model "
                "forecasts at most %d days ahead%s",
                days, gap + days, ld, H, gap ? " (--start leaves a gap)" : "");
        return FORECAST_GEN_EHORIZON;
    }
    st->days = days;
    const int need = forecast_gen_model_history_days(m);
    if ((int64_t)origin + 1 < need) {
        int have = origin + 1 > 0 ? origin + 1 : 0;
        set_err(err, errlen,
                "not enough history: forecasting from %s needs %d days of history before it (the "
                "model's longest lag) and the history has %d (from %s); %d more days are needed",
                sd, need, have, fd, need - have);
        return FORECAST_GEN_ESHORT;
    }
    const int32_t base = origin + 1 - need, last = start + days - 1;
    const size_t N = h->nseries;
    int rc = RST_OK;
    ext_data e;
    train_features f;
    memset(&f, 0, sizeof f);
    float *fc = NULL, *bounds = NULL, *ref = NULL, *sample = NULL, *picked = NULL, *x = NULL;
    char **store_csv = xcalloc(h->nstores ? h->nstores : 1, sizeof *store_csv);
    char **product_csv = xcalloc(h->nproducts ? h->nproducts : 1, sizeof *product_csv);
    char(*dates)[11] = xmalloc((size_t)days * sizeof *dates);
    for (size_t s = 0; s < h->nstores; s++)
        store_csv[s] = csv_field_of(h->store_ids[s]);
    for (size_t p = 0; p < h->nproducts; p++)
        product_csv[p] = csv_field_of(h->product_names[p]);
    for (int j = 0; j < days; j++)
        sales_format_date(h->first_day + start + j, dates[j]);

    rc = ext_build(&e, h, in, base, origin, last, st);
    if (rc != RST_OK) {
        set_err(err, errlen, "out of memory for %zu series x %d days", N, (int)(last - base + 1));
        goto out;
    }
    if (m->alg == ALG_XGBOOST) {
        char berr[300];
        if (train_features_bind(&f, m->spec, &e.v, berr, sizeof berr)) {
            set_err(err, errlen, "the model does not fit this data: %s", berr);
            rc = RST_EINVAL;
            goto out;
        }
    }
    size_t block = o->block_rows ? o->block_rows : FORECAST_GEN_BLOCK_ROWS;
    size_t per = block / (size_t)days;
    if (per < 1)
        per = 1;
    if (per > N)
        per = N ? N : 1;
    fc = malloc(per * (size_t)days * sizeof *fc);
    bounds = malloc(4 * per * (size_t)days * sizeof *bounds);
    const xgb_forest *own = m->alg == ALG_XGBOOST ? m->own : NULL;
    st->own_trees = own != NULL;
    if (m->alg == ALG_XGBOOST) /* one feature matrix, block after block */
        x = malloc(per * (size_t)days * (size_t)f.nfeat * sizeof *x);
    if (own) {
        ref = malloc(per * (size_t)days * sizeof *ref);
        sample = malloc(CHECK_ROWS * (size_t)f.nfeat * sizeof *sample);
        picked = malloc(CHECK_ROWS * sizeof *picked);
    }
    if (!fc || !bounds || (m->alg == ALG_XGBOOST && !x) || (own && (!ref || !sample || !picked))) {
        set_err(err, errlen, "out of memory for a block of %zu rows", per * (size_t)days);
        rc = RST_ENOMEM;
        goto out;
    }
    const int32_t t0 = start - base, t1 = last - base + 1; /* e's day indexes */
    float years[TRAIN_MAX_HORIZON];
    for (int j = 0; j < days; j++) {
        int y, mo, dd;
        util_civil_from_days(h->first_day + start + j, &y, &mo, &dd);
        years[j] = (float)(y - m->first_year);
    }
    for (size_t s0 = 0; s0 < N; s0 += per) {
        if (o->stop && *o->stop) {
            rc = RST_EUNAVAIL;
            goto out;
        }
        size_t n = N - s0 < per ? N - s0 : per, rows = n * (size_t)days;
        const size_t X = (size_t)e.v.ndays;
        train_data cv = e.v; /* these series only */
        cv.nseries = n;
        cv.series_store = e.v.series_store + s0;
        cv.series_product = e.v.series_product + s0;
        cv.qty = e.v.qty + s0 * X;
        cv.price = e.v.price + s0 * X;
        cv.promo = e.v.promo + s0 * X;
        if (m->alg == ALG_XGBOOST) {
            if (train_features_fill(&f, &cv, t0, t1, o->threads, o->stop, x)) {
                rc = RST_EUNAVAIL;
                set_err(err, errlen, "stopped");
                goto out;
            }
            if (m->year_col >= 0)
                for (int j = 0; j < days; j++)
                    for (size_t i = 0; i < n; i++)
                        x[((size_t)j * n + i) * (size_t)f.nfeat + (size_t)m->year_col] = years[j];
            char xerr[300] = "";
            if (own) {
                xgb_forest_predict(own, x, rows, o->threads, fc);
                /* XGBoost's prediction of the first block, and of rows spread
                 * over every other, must be the same floats */
                size_t want = s0 == 0 ? rows : (rows < CHECK_ROWS ? rows : CHECK_ROWS);
                const float *cx = x;
                if (want < rows) {
                    for (size_t r = 0; r < want; r++) {
                        size_t from = r * rows / want;
                        memcpy(sample + r * (size_t)f.nfeat, x + from * (size_t)f.nfeat,
                               (size_t)f.nfeat * sizeof *x);
                        picked[r] = fc[from];
                    }
                    cx = sample;
                }
                rc = train_xgb_predict_dense(m->xgb, cx, want, f.nfeat, ref, xerr, sizeof xerr);
                if (rc == RST_OK && memcmp(ref, want < rows ? picked : fc, want * sizeof *fc)) {
                    own = NULL; /* XGBoost from here on, this block again */
                    st->own_trees = 0;
                    rc = train_xgb_predict_dense(m->xgb, x, rows, f.nfeat, fc, xerr, sizeof xerr);
                }
                st->checked_rows += want;
            } else {
                rc = train_xgb_predict_dense(m->xgb, x, rows, f.nfeat, fc, xerr, sizeof xerr);
            }
            if (rc != RST_OK) {
                set_err(err, errlen, "prediction failed: %s", xerr);
                goto out;
            }
        } else {
            int b = m->alg == ALG_SEASONAL_NAIVE ? TRAIN_BASELINES_SEASONAL_NAIVE
                                                 : TRAIN_BASELINES_MOVING_AVERAGE;
            for (int j = 0; j < days; j++)
                for (size_t i = 0; i < n; i++)
                    fc[(size_t)j * n + i] =
                        train_baselines_forecast(&cv, b, i, origin - base, t0 + j);
        }
        for (size_t k = 0; k < rows; k++) {
            if (!(fc[k] > 0)) /* negative or NaN */
                fc[k] = 0;
            double bd[4];
            train_intervals_apply(&m->iv, fc[k], bd);
            for (int q = 0; q < 4; q++)
                bounds[4 * k + (size_t)q] = (float)bound(bd[q]);
        }
        forecast_gen_block blk = {.history = h,
                                  .s0 = s0,
                                  .nseries = n,
                                  .day0 = h->first_day + start,
                                  .ndays = days,
                                  .forecast = fc,
                                  .bounds = bounds,
                                  .store_csv = store_csv,
                                  .product_csv = product_csv,
                                  .dates = (const char(*)[11])dates};
        rc = sink(arg, &blk);
        if (rc != 0) {
            if (errlen && !err[0])
                set_err(err, errlen, "the output stopped");
            goto out;
        }
        st->rows += rows;
    }
out:
    ext_free(&e);
    train_features_clear(&f);
    free(fc);
    free(bounds);
    free(x);
    free(ref);
    free(sample);
    free(picked);
    for (size_t s = 0; s < h->nstores; s++)
        free(store_csv[s]);
    for (size_t p = 0; p < h->nproducts; p++)
        free(product_csv[p]);
    free(store_csv);
    free(product_csv);
    free(dates);
    return rc;
}

/* ---- CSV ---------------------------------------------------------------------------- */

/* v with 3 decimals, exactly as printf("%.3f") (v * 1000 is exact in double for
 * a float, and nearbyint rounds ties to even as printf does). */
static char *put_milli(char *p, float v)
{
    double x = v > 0 ? (double)v * 1000.0 : 0;
    if (x > 1e18)
        x = 1e18;
    uint64_t m = (uint64_t)nearbyint(x), ip = m / 1000;
    unsigned fr = (unsigned)(m % 1000);
    char tmp[24];
    int n = 0;
    do {
        tmp[n++] = (char)('0' + ip % 10);
        ip /= 10;
    } while (ip);
    while (n)
        *p++ = tmp[--n];
    p[0] = '.';
    p[1] = (char)('0' + fr / 100);
    p[2] = (char)('0' + fr / 10 % 10);
    p[3] = (char)('0' + fr % 10);
    return p + 4;
}

size_t forecast_gen_format_row(char *dst, const forecast_gen_block *b, size_t i, int j)
{
    const train_data *h = b->history;
    const size_t series = b->s0 + i, k = (size_t)j * b->nseries + i;
    const char *s = b->store_csv[h->series_store[series]];
    const char *p = b->product_csv[h->series_product[series]];
    char *o = dst;
    size_t n = strlen(s);
    memcpy(o, s, n);
    o += n;
    *o++ = ',';
    n = strlen(p);
    memcpy(o, p, n);
    o += n;
    *o++ = ',';
    memcpy(o, b->dates[j], 10);
    o += 10;
    *o++ = ',';
    o = put_milli(o, b->forecast[k]);
    for (int q = 0; q < 4; q++) {
        *o++ = ',';
        o = put_milli(o, b->bounds[4 * k + (size_t)q]);
    }
    *o++ = '\n';
    return (size_t)(o - dst);
}
