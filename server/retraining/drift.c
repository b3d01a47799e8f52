/* Drift between two dataset versions (see drift.h). Everything a pass keeps
 * is bounded: a fixed reservoir per numeric feature, fixed category arrays,
 * and capped maps of stores, products and series. */
#include "retraining/drift.h"
#include "lib/csv.h"
#include "datasets/sales.h"
#include "lib/util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QBINS 10

/* ---- small pieces --------------------------------------------------------------- */

double drift_psi(const double *ref, const double *cur, size_t n)
{
    double rt = 0, ct = 0, psi = 0;
    for (size_t i = 0; i < n; i++) {
        rt += ref[i];
        ct += cur[i];
    }
    if (rt <= 0 || ct <= 0)
        return 0;
    for (size_t i = 0; i < n; i++) {
        double r = fmax(ref[i] / rt, DRIFT_PSI_FLOOR), c = fmax(cur[i] / ct, DRIFT_PSI_FLOOR);
        psi += (c - r) * log(c / r);
    }
    return psi;
}

size_t drift_edges(const double *sorted, size_t n, size_t bins, double *edges)
{
    size_t m = 0;
    for (size_t k = 1; k < bins; k++) {
        size_t rank = (k * n + bins - 1) / bins; /* nearest rank, 1-based */
        double e = sorted[rank ? rank - 1 : 0];
        if (m == 0 || e > edges[m - 1])
            edges[m++] = e;
    }
    /* An edge at the maximum leaves the last bin empty by construction: drop it. */
    if (m && edges[m - 1] >= sorted[n - 1])
        m--;
    return m;
}

void drift_window(const drift_options *o, int32_t *first, int32_t *last)
{
    int32_t w0 = o->cur_last - o->ref_last >= 28 ? o->ref_last + 1 : o->cur_last - 89;
    if (w0 < o->cur_last - 364)
        w0 = o->cur_last - 364;
    if (w0 < o->cur_first)
        w0 = o->cur_first;
    *first = w0;
    *last = o->cur_last;
}

/* A capped map from names to dense indexes (open addressing, FNV-1a). */
typedef struct {
    char **keys;
    uint32_t *slots; /* index + 1; 0 = empty */
    size_t cap, n, limit;
} namemap;

static uint64_t fnv(const char *s, size_t len)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < len; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static void map_grow(namemap *m)
{
    size_t cap = m->cap ? m->cap * 2 : 64;
    uint32_t *slots = xcalloc(cap, sizeof *slots);
    for (size_t i = 0; i < m->cap; i++)
        if (m->slots[i]) {
            const char *k = m->keys[m->slots[i] - 1];
            size_t j = fnv(k, strlen(k)) & (cap - 1);
            while (slots[j])
                j = (j + 1) & (cap - 1);
            slots[j] = m->slots[i];
        }
    free(m->slots);
    m->slots = slots;
    m->cap = cap;
}

/* The index of name, added when add and room is left; -1 otherwise. */
static long map_get(namemap *m, const char *s, size_t len, int add)
{
    if (m->cap) {
        size_t j = fnv(s, len) & (m->cap - 1);
        while (m->slots[j]) {
            const char *k = m->keys[m->slots[j] - 1];
            if (strlen(k) == len && !memcmp(k, s, len))
                return (long)m->slots[j] - 1;
            j = (j + 1) & (m->cap - 1);
        }
    }
    if (!add || m->n >= m->limit)
        return -1;
    if ((m->n + 1) * 2 > m->cap)
        map_grow(m);
    m->keys = xrealloc(m->keys, (m->n + 1) * sizeof *m->keys);
    m->keys[m->n] = xstrndup(s, len);
    size_t j = fnv(s, len) & (m->cap - 1);
    while (m->slots[j])
        j = (j + 1) & (m->cap - 1);
    m->slots[j] = (uint32_t)(m->n + 1);
    return (long)m->n++;
}

static void map_free(namemap *m)
{
    for (size_t i = 0; i < m->n; i++)
        free(m->keys[i]);
    free(m->keys);
    free(m->slots);
}

/* Series (store, product) -> index, open addressing on the pair. */
typedef struct {
    uint32_t store, product;
    double ref_sum, ref_yoy, cur_sum;
} series;

typedef struct {
    series *v;
    uint32_t *slots;
    size_t cap, n;
} seriesmap;

static uint64_t pair_hash(uint32_t a, uint32_t b)
{
    uint64_t x = ((uint64_t)a << 32 | b) * 0x9E3779B97F4A7C15ULL;
    return x ^ (x >> 29);
}

static series *series_get(seriesmap *m, uint32_t store, uint32_t product, int add)
{
    if (m->cap) {
        size_t j = pair_hash(store, product) & (m->cap - 1);
        while (m->slots[j]) {
            series *s = &m->v[m->slots[j] - 1];
            if (s->store == store && s->product == product)
                return s;
            j = (j + 1) & (m->cap - 1);
        }
    }
    if (!add || m->n >= DRIFT_MAX_SERIES)
        return NULL;
    if ((m->n + 1) * 2 > m->cap) {
        size_t cap = m->cap ? m->cap * 2 : 256;
        uint32_t *slots = xcalloc(cap, sizeof *slots);
        for (size_t i = 0; i < m->n; i++) {
            size_t j = pair_hash(m->v[i].store, m->v[i].product) & (cap - 1);
            while (slots[j])
                j = (j + 1) & (cap - 1);
            slots[j] = (uint32_t)(i + 1);
        }
        free(m->slots);
        m->slots = slots;
        m->cap = cap;
        m->v = xrealloc(m->v, cap / 2 * sizeof *m->v);
    }
    series *s = &m->v[m->n];
    memset(s, 0, sizeof *s);
    s->store = store;
    s->product = product;
    size_t j = pair_hash(store, product) & (m->cap - 1);
    while (m->slots[j])
        j = (j + 1) & (m->cap - 1);
    m->slots[j] = (uint32_t)(++m->n);
    return s;
}

/* ---- the accumulated state ---------------------------------------------------------- */

/* Per side: index 0 the reference, 1 the current window. */
typedef struct {
    uint64_t rows[2];
    double qty[2][QBINS], price[2][QBINS];
    double weather[2][SALES_WEATHER__N], promo[2][2], holiday[2][2], dow[2][7];
    double category[2][SALES_CATEGORY__N];
    double *store_qty[2], *product_qty[2]; /* by map index; [DRIFT_MAX_LEVELS] other */
    double qty_sum[2];
} sides;

typedef struct {
    const drift_options *o;
    int32_t w0, w1, y0, y1; /* window, and the same days a year (52 weeks) earlier */
    int pass;               /* 0 reference sample, 1 reference bins, 2 current */
    double *qsample, *psample;
    size_t nsample;
    uint64_t seen;
    uint64_t rng;
    double qedges[QBINS], pedges[QBINS];
    size_t nqedges, npedges;
    namemap stores, products;
    seriesmap ser;
    int truncated;
    sides s;
    sales_schema *schema;
    int header_failed;
} drift_state;

static size_t bin_of(const double *edges, size_t n, double v)
{
    size_t i = 0;
    while (i < n && v > edges[i])
        i++;
    return i;
}

static double *level_slot(double **arr, long idx)
{
    if (!*arr)
        *arr = xcalloc(DRIFT_MAX_LEVELS + 1, sizeof **arr);
    return &(*arr)[idx < 0 ? DRIFT_MAX_LEVELS : idx];
}

static void add_row(drift_state *st, const sales_row *r)
{
    double q = (double)r->quantity, p = (double)r->unit_price_cents / 100.0;
    if (st->pass == 0) {
        /* Reservoir sample (Algorithm R) of the reference's numeric values. */
        st->seen++;
        size_t slot = st->nsample;
        if (st->nsample < DRIFT_SAMPLE) {
            st->nsample++;
        } else {
            st->rng = st->rng * 6364136223846793005ULL + 1442695040888963407ULL;
            uint64_t j = (st->rng >> 11) % st->seen;
            slot = j < DRIFT_SAMPLE ? (size_t)j : DRIFT_SAMPLE;
        }
        if (slot < DRIFT_SAMPLE) {
            st->qsample[slot] = q;
            st->psample[slot] = p;
        }
        return;
    }
    int side = st->pass == 2;
    if (side && (r->date < st->w0 || r->date > st->w1))
        return;
    sides *s = &st->s;
    s->rows[side]++;
    s->qty[side][bin_of(st->qedges, st->nqedges, q)]++;
    s->price[side][bin_of(st->pedges, st->npedges, p)]++;
    s->weather[side][r->weather]++;
    if (r->promotion >= 0)
        s->promo[side][r->promotion]++;
    if (r->holiday >= 0)
        s->holiday[side][r->holiday]++;
    s->dow[side][((r->date + 4) % 7 + 7) % 7]++;
    s->category[side][r->category] += q;
    s->qty_sum[side] += q;
    /* Levels seen first in the current window still get an index (for the
     * series), but fall into "other" in the mix features. */
    long si = map_get(&st->stores, r->store_id.s, r->store_id.len, 1);
    long pi = map_get(&st->products, r->product.s, r->product.len, 1);
    *level_slot(&s->store_qty[side], si) += q;
    *level_slot(&s->product_qty[side], pi) += q;
    series *se = si >= 0 && pi >= 0 ? series_get(&st->ser, (uint32_t)si, (uint32_t)pi, 1) : NULL;
    if (!se) {
        st->truncated = 1;
        return;
    }
    if (side)
        se->cur_sum += q;
    else {
        se->ref_sum += q;
        if (r->date >= st->y0 && r->date <= st->y1)
            se->ref_yoy += q;
    }
}

/* ---- reading a canonical file ---------------------------------------------------------- */

static int on_record(void *arg, const csv_record *rec)
{
    drift_state *st = arg;
    if (!st->schema) {
        json_t *report = NULL;
        int rc = sales_schema_new(NULL, rec, &st->schema, &report);
        json_decref(report);
        if (rc) {
            st->header_failed = 1;
            return 1000;
        }
        return 0;
    }
    sales_row row;
    sales_error errs[2];
    if (sales_parse_row(st->schema, rec, &row, errs, 2) == 0)
        add_row(st, &row);
    return 0;
}

static int read_pass(artifact_store *store, const char *key, drift_state *st, char *err,
                     size_t errlen)
{
    artifact_reader *rd = NULL;
    int rc = artifacts_reader_open(store, key, 0, 0, &rd);
    if (rc) {
        snprintf(err, errlen, "cannot read %s from the artifact store", key);
        return rc == RST_ENOTFOUND ? RST_ENOTFOUND : RST_EIO;
    }
    csv_parser *p = csv_new(NULL, on_record, st);
    enum { CHUNK = 1 << 18 };
    char *buf = xmalloc(CHUNK);
    size_t got = 0;
    while ((rc = artifacts_reader_read(rd, buf, CHUNK, &got)) == RST_OK && got)
        if ((rc = csv_feed(p, buf, got)) != RST_OK)
            break;
    if (rc == RST_OK)
        rc = csv_finish(p);
    if (rc) {
        snprintf(err, errlen, "%s: %s", key,
                 st->header_failed  ? "not a sales file"
                 : csv_get_error(p) ? csv_get_error(p)->message
                                    : "read failed");
        rc = st->header_failed || csv_get_error(p) ? RST_EINVAL : RST_EIO;
    }
    free(buf);
    csv_free(p);
    artifacts_reader_close(rd);
    sales_schema_free(st->schema);
    st->schema = NULL;
    st->header_failed = 0;
    return rc;
}

/* ---- the report ------------------------------------------------------------------------- */

static double r4(double v)
{
    return round(v * 10000) / 10000;
}

static json_t *date_json(int32_t d)
{
    char s[11];
    sales_format_date(d, s);
    return json_string(s);
}

#define MAX_BINS 50

static double bin_contribution(double ref, double cur, double rt, double ct)
{
    double r = fmax(rt > 0 ? ref / rt : 0, DRIFT_PSI_FLOOR),
           c = fmax(ct > 0 ? cur / ct : 0, DRIFT_PSI_FLOOR);
    return (c - r) * log(c / r);
}

static int cmp_desc(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

/* One feature: its PSI and bins (labels[i] names bin i). */
static json_t *feature(const char *name, const char *kind, const double *ref, const double *cur,
                       size_t n, json_t *labels, double *max_psi, const char **max_name)
{
    double psi = drift_psi(ref, cur, n), rt = 0, ct = 0;
    for (size_t i = 0; i < n; i++) {
        rt += ref[i];
        ct += cur[i];
    }
    /* Thousands of stores would make a report nobody reads: beyond MAX_BINS,
     * only the bins that moved the index most are listed. */
    double cut = -1;
    if (n > MAX_BINS) {
        double *contrib = xmalloc(n * sizeof *contrib);
        for (size_t i = 0; i < n; i++)
            contrib[i] = bin_contribution(ref[i], cur[i], rt, ct);
        qsort(contrib, n, sizeof *contrib, cmp_desc);
        cut = contrib[MAX_BINS - 1];
        free(contrib);
    }
    json_t *bins = json_array();
    for (size_t i = 0; i < n; i++) {
        if ((ref[i] == 0 && cur[i] == 0) ||
            (cut >= 0 && bin_contribution(ref[i], cur[i], rt, ct) < cut) ||
            json_array_size(bins) >= MAX_BINS)
            continue;
        json_array_append_new(bins, json_pack("{s:O, s:f, s:f}", "bin", json_array_get(labels, i),
                                              "reference", r4(rt > 0 ? ref[i] / rt : 0), "current",
                                              r4(ct > 0 ? cur[i] / ct : 0)));
    }
    json_decref(labels);
    if (psi > *max_psi || !*max_name) {
        *max_psi = psi;
        *max_name = name;
    }
    json_t *f = json_pack("{s:s, s:s, s:f, s:o}", "feature", name, "kind", kind, "psi", r4(psi),
                          "bins", bins);
    if (cut >= 0)
        json_object_set_new(f, "bins_total", json_integer((json_int_t)n));
    return f;
}

static json_t *numeric_labels(const double *edges, size_t n, int decimals)
{
    json_t *a = json_array();
    char s[80];
    for (size_t i = 0; i <= n; i++) {
        char lo[32] = "", hi[32] = "";
        if (i)
            snprintf(lo, sizeof lo, "%.*f", decimals, edges[i - 1]);
        if (i < n)
            snprintf(hi, sizeof hi, "%.*f", decimals, edges[i]);
        if (!i)
            snprintf(s, sizeof s, "<= %s", hi);
        else if (i == n)
            snprintf(s, sizeof s, "> %s", lo);
        else
            snprintf(s, sizeof s, "(%s, %s]", lo, hi);
        json_array_append_new(a, json_string(s));
    }
    return a;
}

/* A mix feature over levels seen in the reference (+ "other"). */
static json_t *mix_feature(const char *name, namemap *m, double *ref, double *cur, double *max_psi,
                           const char **max_name)
{
    size_t n = m->n < DRIFT_MAX_LEVELS ? m->n : DRIFT_MAX_LEVELS;
    double *r = xcalloc(n + 1, sizeof *r), *c = xcalloc(n + 1, sizeof *c);
    json_t *labels = json_array();
    size_t k = 0;
    for (size_t i = 0; i < n; i++) {
        double rv = ref ? ref[i] : 0, cv = cur ? cur[i] : 0;
        if (rv > 0) {
            r[k] = rv;
            c[k++] = cv;
            json_array_append_new(labels, json_string(m->keys[i]));
        } else {
            c[n] += cv; /* only in the current window: "other" */
        }
    }
    r[k] = ref ? ref[DRIFT_MAX_LEVELS] : 0;
    c[k] = (cur ? cur[DRIFT_MAX_LEVELS] : 0) + c[n];
    json_array_append_new(labels, json_string("(other)"));
    json_t *f = feature(name, "categorical", r, c, k + 1, labels, max_psi, max_name);
    free(r);
    free(c);
    return f;
}

static int by_shift(const void *a, const void *b)
{
    double x = fabs(((const double *)a)[1]), y = fabs(((const double *)b)[1]);
    return x < y ? 1 : x > y ? -1 : 0;
}

static json_t *level_shift(drift_state *st, int yoy, double threshold, size_t top)
{
    double wdays = st->w1 - st->w0 + 1, rdays = st->o->ref_last - st->o->ref_first + 1;
    size_t shifted = 0, fresh = 0, missing = 0, n = st->ser.n;
    double *rank = xcalloc(n ? n * 2 : 2, sizeof *rank); /* (index, relative) */
    size_t nr = 0;
    for (size_t i = 0; i < n; i++) {
        series *s = &st->ser.v[i];
        double ref = yoy ? s->ref_yoy / wdays : s->ref_sum / rdays, cur = s->cur_sum / wdays;
        if (s->ref_sum == 0) {
            fresh++;
            continue;
        }
        if (s->cur_sum == 0)
            missing++;
        double rel = ref > 0 ? cur / ref - 1 : (cur > 0 ? INFINITY : 0);
        if (fabs(rel) >= threshold)
            shifted++;
        rank[2 * nr] = (double)i;
        rank[2 * nr + 1] = isfinite(rel) ? rel : 1e9;
        nr++;
    }
    qsort(rank, nr, 2 * sizeof *rank, by_shift);
    json_t *list = json_array();
    for (size_t k = 0; k < nr && k < top; k++) {
        series *s = &st->ser.v[(size_t)rank[2 * k]];
        if (fabs(rank[2 * k + 1]) < threshold)
            break;
        double ref = yoy ? s->ref_yoy / wdays : s->ref_sum / rdays, cur = s->cur_sum / wdays;
        json_array_append_new(
            list, json_pack("{s:s, s:s, s:f, s:f, s:o}", "store_id", st->stores.keys[s->store],
                            "product", st->products.keys[s->product], "reference_mean_daily",
                            r4(ref), "current_mean_daily", r4(cur), "relative_change",
                            ref > 0 ? json_real(r4(cur / ref - 1)) : json_null()));
    }
    free(rank);
    return json_pack("{s:s, s:f, s:I, s:I, s:I, s:I, s:b, s:o}", "baseline",
                     yoy ? "same_window_last_year" : "whole_reference", "threshold", threshold,
                     "series", (json_int_t)(n - fresh), "shifted", (json_int_t)shifted,
                     "new_series", (json_int_t)fresh, "missing_series", (json_int_t)missing,
                     "truncated", st->truncated, "top", list);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

int drift_compare(artifact_store *store, const char *ref_key, const char *cur_key,
                  const drift_options *o, json_t **report, double *max_psi, char *err,
                  size_t errlen)
{
    *report = NULL;
    *max_psi = 0;
    drift_state *st = xcalloc(1, sizeof *st);
    st->o = o;
    drift_window(o, &st->w0, &st->w1);
    st->y0 = st->w0 - 364;
    st->y1 = st->w1 - 364;
    int yoy = st->y0 >= o->ref_first && st->y1 <= o->ref_last;
    st->rng = 0x2545F4914F6CDD1DULL;
    st->qsample = xmalloc(DRIFT_SAMPLE * sizeof(double));
    st->psample = xmalloc(DRIFT_SAMPLE * sizeof(double));
    st->stores.limit = st->products.limit = DRIFT_MAX_LEVELS;
    int rc = read_pass(store, ref_key, st, err, errlen);
    if (rc == RST_OK && st->nsample == 0) {
        snprintf(err, errlen, "the reference version has no rows");
        rc = RST_EINVAL;
    }
    if (rc == RST_OK) {
        qsort(st->qsample, st->nsample, sizeof(double), cmp_double);
        qsort(st->psample, st->nsample, sizeof(double), cmp_double);
        st->nqedges = drift_edges(st->qsample, st->nsample, QBINS, st->qedges);
        st->npedges = drift_edges(st->psample, st->nsample, QBINS, st->pedges);
        st->pass = 1;
        rc = read_pass(store, ref_key, st, err, errlen);
    }
    if (rc == RST_OK) {
        st->pass = 2;
        rc = read_pass(store, cur_key, st, err, errlen);
    }
    if (rc == RST_OK) {
        sides *s = &st->s;
        double threshold = o->psi_threshold > 0 ? o->psi_threshold : DRIFT_DEFAULT_PSI_THRESHOLD;
        double shift = o->shift_threshold > 0 ? o->shift_threshold : DRIFT_DEFAULT_SHIFT_THRESHOLD;
        const char *max_name = NULL;
        json_t *f = json_array(), *l;
        json_array_append_new(
            f, feature("quantity", "numeric", s->qty[0], s->qty[1], st->nqedges + 1,
                       numeric_labels(st->qedges, st->nqedges, 0), max_psi, &max_name));
        json_array_append_new(
            f, feature("unit_price", "numeric", s->price[0], s->price[1], st->npedges + 1,
                       numeric_labels(st->pedges, st->npedges, 2), max_psi, &max_name));
        l = json_array();
        for (int i = 0; i < SALES_WEATHER__N; i++)
            json_array_append_new(l, json_string(i ? sales_weather_name(i) : "(none)"));
        json_array_append_new(f, feature("weather", "categorical", s->weather[0], s->weather[1],
                                         SALES_WEATHER__N, l, max_psi, &max_name));
        json_array_append_new(f, feature("promotion", "categorical", s->promo[0], s->promo[1], 2,
                                         json_pack("[s, s]", "No", "Yes"), max_psi, &max_name));
        json_array_append_new(f, feature("holiday", "categorical", s->holiday[0], s->holiday[1], 2,
                                         json_pack("[s, s]", "No", "Yes"), max_psi, &max_name));
        json_array_append_new(f, feature("day_of_week", "categorical", s->dow[0], s->dow[1], 7,
                                         json_pack("[s, s, s, s, s, s, s]", "Sun", "Mon", "Tue",
                                                   "Wed", "Thu", "Fri", "Sat"),
                                         max_psi, &max_name));
        l = json_array();
        for (int i = 0; i < SALES_CATEGORY__N; i++)
            json_array_append_new(l, json_string(sales_category_name(i)));
        json_array_append_new(f, feature("category_mix", "categorical", s->category[0],
                                         s->category[1], SALES_CATEGORY__N, l, max_psi, &max_name));
        json_array_append_new(f, mix_feature("product_mix", &st->products, s->product_qty[0],
                                             s->product_qty[1], max_psi, &max_name));
        json_array_append_new(f, mix_feature("store_mix", &st->stores, s->store_qty[0],
                                             s->store_qty[1], max_psi, &max_name));
        *report = json_pack(
            "{s:{s:o, s:o, s:i}, s:{s:o, s:o, s:I}, s:{s:o, s:o, s:I}, s:o, s:f, s:s, s:f, s:b,"
            " s:o}",
            "window", "first_date", date_json(st->w0), "last_date", date_json(st->w1), "days",
            (int)(st->w1 - st->w0 + 1), "reference", "first_date", date_json(o->ref_first),
            "last_date", date_json(o->ref_last), "rows", (json_int_t)s->rows[0], "current",
            "first_date", date_json(o->cur_first), "last_date", date_json(o->cur_last), "rows",
            (json_int_t)s->rows[1], "features", f, "max_psi", r4(*max_psi), "max_psi_feature",
            max_name, "threshold", threshold, "drifted", *max_psi > threshold, "level_shift",
            level_shift(st, yoy, shift, o->top ? o->top : DRIFT_DEFAULT_TOP));
        if (s->rows[1] == 0) {
            json_decref(*report);
            *report = NULL;
            snprintf(err, errlen, "the new version has no rows in the compared window");
            rc = RST_EINVAL;
        }
    }
    for (int i = 0; i < 2; i++) {
        free(st->s.store_qty[i]);
        free(st->s.product_qty[i]);
    }
    map_free(&st->stores);
    map_free(&st->products);
    free(st->ser.v);
    free(st->ser.slots);
    free(st->qsample);
    free(st->psample);
    free(st);
    return rc;
}
