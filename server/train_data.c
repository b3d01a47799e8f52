/* Sales CSV -> dense daily series. One streaming pass parses and hashes the
 * file and keeps each row as a 20-byte record; the dense arrays are sized once
 * the date range is known, then filled and completed (prices carried, store
 * and city fallbacks, the holiday calendar). */
#include "train_data.h"

#include "csv.h"
#include "sales.h"
#include "salesgen.h"
#include "util.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define READ_CHUNK ((size_t)1 << 20)
#define STOPPED 0x5701                  /* callback status: the stop flag was seen */
#define BAD_ROW 0x5702                  /* callback status: a row did not validate */
#define TOO_BIG 0x5703                  /* callback status: a limit was passed */
#define NO_MEM 0x5704                   /* callback status: out of memory */
#define NWEATHER (SALES_WEATHER__N - 1) /* votes for the real values, not NONE */

/* ---- string interning -------------------------------------------------------------- */

typedef struct {
    char **names;
    size_t n, cap;
    uint32_t *slots; /* index + 1, 0 = empty */
    size_t nslots;   /* power of two */
} strtab;

static uint64_t hash_bytes(const char *s, size_t n)
{
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211ULL;
    return h;
}

static void strtab_grow(strtab *t)
{
    size_t nslots = t->nslots ? t->nslots * 2 : 64;
    uint32_t *slots = xcalloc(nslots, sizeof *slots);
    for (size_t i = 0; i < t->n; i++) {
        size_t j = hash_bytes(t->names[i], strlen(t->names[i])) & (nslots - 1);
        while (slots[j])
            j = (j + 1) & (nslots - 1);
        slots[j] = (uint32_t)i + 1;
    }
    free(t->slots);
    t->slots = slots;
    t->nslots = nslots;
}

/* Index of s (interned on first sight); *added is set when it is new. -1 past
 * TRAIN_DATA_MAX_KEYS. */
static long strtab_intern(strtab *t, const char *s, size_t n, int *added)
{
    *added = 0;
    if ((t->n + 1) * 2 > t->nslots)
        strtab_grow(t);
    size_t j = hash_bytes(s, n) & (t->nslots - 1);
    while (t->slots[j]) {
        const char *c = t->names[t->slots[j] - 1];
        if (!strncmp(c, s, n) && c[n] == '\0')
            return (long)t->slots[j] - 1;
        j = (j + 1) & (t->nslots - 1);
    }
    if (t->n >= TRAIN_DATA_MAX_KEYS)
        return -1;
    if (t->n == t->cap) {
        t->cap = t->cap ? t->cap * 2 : 64;
        t->names = xrealloc(t->names, t->cap * sizeof *t->names);
    }
    t->names[t->n] = xstrndup(s, n);
    t->slots[j] = (uint32_t)t->n + 1;
    *added = 1;
    return (long)t->n++;
}

static void strtab_free(strtab *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->names[i]);
    free(t->names);
    free(t->slots);
}

/* ---- the reading pass ------------------------------------------------------------- */

typedef struct {
    int32_t day;
    uint32_t series; /* index into pairs, in order of first sight */
    uint32_t qty;
    uint32_t price_cents;
    uint8_t weather; /* sales_weather */
    uint8_t promo;   /* 0 absent, 1 No, 2 Yes */
    uint8_t holiday; /* same */
} rec;

typedef struct {
    sales_schema *schema;
    strtab stores, products, cities;
    uint8_t *store_country; /* by first-sight index */
    uint32_t *store_city;
    uint8_t *product_category;
    size_t meta_cap_s, meta_cap_p;
    /* (store, product) pairs */
    uint64_t *pair_keys; /* (store << 32 | product) + 1, 0 = empty */
    uint32_t *pair_idx;
    size_t npairs, pair_slots;
    uint64_t *pairs; /* by series index: store << 32 | product */
    size_t pairs_cap;
    rec *recs;
    size_t nrecs, recs_cap;
    int32_t min_day, max_day;
    uint64_t mismatches;
    volatile sig_atomic_t *stop;
    char *err;
    size_t errlen;
} loader;

static void set_err(loader *L, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void set_err(loader *L, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    if (L->errlen)
        vsnprintf(L->err, L->errlen, fmt, ap);
    va_end(ap);
}

static uint64_t mix64(uint64_t x)
{
    x ^= x >> 33;
    x *= 0xff51afd7ed558ccdULL;
    x ^= x >> 33;
    x *= 0xc4ceb9fe1a85ec53ULL;
    return x ^ (x >> 33);
}

static void pairs_grow(loader *L)
{
    size_t n = L->pair_slots ? L->pair_slots * 2 : 1024;
    uint64_t *keys = xcalloc(n, sizeof *keys);
    uint32_t *idx = xcalloc(n, sizeof *idx);
    for (size_t i = 0; i < L->pair_slots; i++) {
        if (!L->pair_keys[i])
            continue;
        size_t j = mix64(L->pair_keys[i]) & (n - 1);
        while (keys[j])
            j = (j + 1) & (n - 1);
        keys[j] = L->pair_keys[i];
        idx[j] = L->pair_idx[i];
    }
    free(L->pair_keys);
    free(L->pair_idx);
    L->pair_keys = keys;
    L->pair_idx = idx;
    L->pair_slots = n;
}

static uint32_t pair_index(loader *L, uint32_t store, uint32_t product)
{
    if ((L->npairs + 1) * 2 > L->pair_slots)
        pairs_grow(L);
    uint64_t key = ((uint64_t)store << 32 | product) + 1;
    size_t j = mix64(key) & (L->pair_slots - 1);
    while (L->pair_keys[j]) {
        if (L->pair_keys[j] == key)
            return L->pair_idx[j];
        j = (j + 1) & (L->pair_slots - 1);
    }
    if (L->npairs == L->pairs_cap) {
        L->pairs_cap = L->pairs_cap ? L->pairs_cap * 2 : 1024;
        L->pairs = xrealloc(L->pairs, L->pairs_cap * sizeof *L->pairs);
    }
    L->pairs[L->npairs] = key - 1;
    L->pair_keys[j] = key;
    L->pair_idx[j] = (uint32_t)L->npairs;
    return (uint32_t)L->npairs++;
}

static int on_row(loader *L, const csv_record *r)
{
    sales_row row;
    sales_error e[2];
    if (sales_parse_row(L->schema, r, &row, e, 2)) {
        set_err(L, "line %llu: %s %.*s: %s", (unsigned long long)e[0].line, e[0].column,
                (int)(e[0].value_len > 60 ? 60 : e[0].value_len), e[0].value ? e[0].value : "",
                e[0].reason);
        return BAD_ROW;
    }
    if (L->nrecs >= TRAIN_DATA_MAX_ROWS) {
        set_err(L, "more than %llu data rows", (unsigned long long)TRAIN_DATA_MAX_ROWS);
        return TOO_BIG;
    }
    int added;
    long s = strtab_intern(&L->stores, row.store_id.s, row.store_id.len, &added);
    long c = s < 0 ? -1 : strtab_intern(&L->cities, row.city.s, row.city.len, &(int){0});
    if (s < 0 || c < 0) {
        set_err(L, "more than %d distinct stores or cities", TRAIN_DATA_MAX_KEYS);
        return TOO_BIG;
    }
    if (added) {
        if ((size_t)s >= L->meta_cap_s) {
            L->meta_cap_s = L->meta_cap_s ? L->meta_cap_s * 2 : 64;
            L->store_country = xrealloc(L->store_country, L->meta_cap_s);
            L->store_city = xrealloc(L->store_city, L->meta_cap_s * sizeof *L->store_city);
        }
        L->store_country[s] = (uint8_t)row.country;
        L->store_city[s] = (uint32_t)c;
    } else if (L->store_country[s] != row.country || L->store_city[s] != (uint32_t)c) {
        L->mismatches++;
    }
    long p = strtab_intern(&L->products, row.product.s, row.product.len, &added);
    if (p < 0) {
        set_err(L, "more than %d distinct products", TRAIN_DATA_MAX_KEYS);
        return TOO_BIG;
    }
    if (added) {
        if ((size_t)p >= L->meta_cap_p) {
            L->meta_cap_p = L->meta_cap_p ? L->meta_cap_p * 2 : 64;
            L->product_category = xrealloc(L->product_category, L->meta_cap_p);
        }
        L->product_category[p] = (uint8_t)row.category;
    }
    if (L->nrecs == L->recs_cap) {
        size_t cap = L->recs_cap ? L->recs_cap + L->recs_cap / 2 : 65536;
        rec *grown = realloc(L->recs, cap * sizeof *L->recs);
        if (!grown) {
            set_err(L, "out of memory after %zu rows", L->nrecs);
            return NO_MEM;
        }
        L->recs = grown;
        L->recs_cap = cap;
    }
    rec *o = &L->recs[L->nrecs++];
    o->day = row.date;
    o->series = pair_index(L, (uint32_t)s, (uint32_t)p);
    o->qty = (uint32_t)row.quantity;
    o->price_cents = (uint32_t)row.unit_price_cents;
    o->weather = (uint8_t)row.weather;
    o->promo = (uint8_t)(row.promotion < 0 ? 0 : row.promotion + 1);
    o->holiday = (uint8_t)(row.holiday < 0 ? 0 : row.holiday + 1);
    if (L->nrecs == 1 || row.date < L->min_day)
        L->min_day = row.date;
    if (L->nrecs == 1 || row.date > L->max_day)
        L->max_day = row.date;
    return 0;
}

static int on_record(void *arg, const csv_record *r)
{
    loader *L = arg;
    if (L->schema)
        return on_row(L, r);
    json_t *report = NULL;
    int rc = sales_schema_new(NULL, r, &L->schema, &report);
    if (rc != RST_OK) {
        const char *why = json_string_value(json_object_get(report, "error"));
        set_err(L, "the header is not sales data: %s", why ? why : "unknown columns");
    }
    json_decref(report);
    return rc == RST_OK ? 0 : BAD_ROW;
}

static void loader_free(loader *L)
{
    sales_schema_free(L->schema);
    strtab_free(&L->stores);
    strtab_free(&L->products);
    strtab_free(&L->cities);
    free(L->store_country);
    free(L->store_city);
    free(L->product_category);
    free(L->pair_keys);
    free(L->pair_idx);
    free(L->pairs);
    free(L->recs);
}

/* ---- building the series ----------------------------------------------------------- */

static int cmp_name_idx(const void *a, const void *b, void *names)
{
    char *const *n = names;
    return strcmp(n[*(const uint32_t *)a], n[*(const uint32_t *)b]);
}

/* Sorts t's names; fills rank[old] = new. new: the sorted names (t keeps none). */
static char **sorted_names(strtab *t, uint32_t *rank)
{
    uint32_t *order = xmalloc((t->n ? t->n : 1) * sizeof *order);
    for (size_t i = 0; i < t->n; i++)
        order[i] = (uint32_t)i;
    qsort_r(order, t->n, sizeof *order, cmp_name_idx, t->names);
    char **names = xmalloc((t->n ? t->n : 1) * sizeof *names);
    for (size_t i = 0; i < t->n; i++) {
        names[i] = t->names[order[i]];
        rank[order[i]] = (uint32_t)i;
    }
    t->n = 0; /* the strings moved */
    free(order);
    return names;
}

/* Allocations sized by the data: checked, never aborting. *failed is set when
 * one fails (the pointer is then NULL and the caller gives up). */
static void *big(size_t count, size_t size, int *failed)
{
    void *p = calloc(count ? count : 1, size);
    if (!p)
        *failed = 1;
    return p;
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Most voted weather (ties: the lower code), SALES_WEATHER_NONE without votes. */
static uint8_t vote(const uint16_t *v)
{
    int best = -1;
    for (int w = 0; w < NWEATHER; w++)
        if (v[w] && (best < 0 || v[w] > v[best]))
            best = w;
    return (uint8_t)(best < 0 ? SALES_WEATHER_NONE : best + 1);
}

static const char *calendar(int country, int32_t day)
{
    int y, m, d;
    util_civil_from_days(day, &y, &m, &d);
    return salesgen_holiday(sales_country_name(country), y, m, d);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* Holiday flags, names and distances of every store-day. */
static void fill_holidays(train_data *d, const uint8_t *tri)
{
    const int64_t D = d->ndays, K = TRAIN_DATA_HOLIDAY_CLIP;
    /* Calendar names per country and day, with K days either side. */
    const char **cal = xcalloc((size_t)SALES_COUNTRY__N * (size_t)(D + 2 * K), sizeof *cal);
    int used[SALES_COUNTRY__N] = {0};
    for (size_t s = 0; s < d->nstores; s++)
        used[d->store_country[s]] = 1;
    strtab names = {0};
    for (int c = 0; c < SALES_COUNTRY__N; c++)
        for (int64_t i = 0; used[c] && i < D + 2 * K; i++) {
            const char *n = calendar(c, d->first_day + (int32_t)(i - K));
            cal[c * (D + 2 * K) + i] = n;
            if (n)
                strtab_intern(&names, n, strlen(n), &(int){0});
        }
    char **sorted = xmalloc((names.n + 2) * sizeof *sorted);
    sorted[0] = xstrdup("none");
    sorted[1] = xstrdup("other");
    for (size_t i = 0; i < names.n; i++)
        sorted[i + 2] = xstrdup(names.names[i]);
    qsort(sorted + 2, names.n, sizeof *sorted, cmp_str);
    d->holiday_names = sorted;
    d->nholidays = names.n + 2;
    strtab_free(&names);

    uint8_t *flag = xmalloc((size_t)(D + 2 * K));
    for (size_t s = 0; s < d->nstores; s++) {
        const char **c = cal + d->store_country[s] * (D + 2 * K);
        for (int64_t i = 0; i < D + 2 * K; i++) {
            int64_t day = i - K;
            uint8_t t = day >= 0 && day < D ? tri[s * (size_t)D + (size_t)day] : 0;
            flag[i] = t ? t == 2 : c[i] != NULL;
        }
        for (int64_t day = 0; day < D; day++) {
            size_t at = s * (size_t)D + (size_t)day;
            uint8_t f = flag[day + K];
            d->holiday[at] = f;
            uint16_t code = TRAIN_DATA_HOLIDAY_NONE;
            if (f && !c[day + K]) {
                code = TRAIN_DATA_HOLIDAY_OTHER;
            } else if (f) {
                char *key = (char *)c[day + K];
                char **hit = bsearch(&key, d->holiday_names + 2, d->nholidays - 2,
                                     sizeof *d->holiday_names, cmp_str);
                code = (uint16_t)(hit - d->holiday_names);
            }
            d->holiday_name[at] = code;
            int64_t next = K, last = K;
            for (int64_t k = 0; k <= K; k++)
                if (flag[day + K + k]) {
                    next = k;
                    break;
                }
            for (int64_t k = 0; k <= K; k++)
                if (flag[day + K - k]) {
                    last = k;
                    break;
                }
            d->holiday_next[at] = (uint8_t)next;
            d->holiday_last[at] = (uint8_t)last;
        }
    }
    free(flag);
    free(cal);
}

static int build(loader *L, train_data *d, char *err, size_t errlen)
{
    int rc = RST_OK;
    uint32_t *srank = NULL, *prank = NULL, *crank = NULL, *smap = NULL;
    uint64_t *keyed = NULL;
    double *qacc = NULL;
    uint32_t *best = NULL, *pcents = NULL;
    uint8_t *seen = NULL, *ptri = NULL, *spromo = NULL, *shol = NULL;
    uint16_t *svotes = NULL, *cvotes = NULL;
    int failed = 0;

    /* finish() saw at least one row: every count below is at least 1 */
    const size_t D = (size_t)((int64_t)L->max_day - L->min_day + 1);
    const size_t N = L->npairs, S = L->stores.n, C = L->cities.n;
    if ((uint64_t)N * D > TRAIN_DATA_MAX_POINTS) {
        snprintf(err, errlen,
                 "%zu series x %zu days is more than the trainer's limit of %llu points", N, D,
                 (unsigned long long)TRAIN_DATA_MAX_POINTS);
        rc = RST_ETOOBIG;
        goto out;
    }
    d->first_day = L->min_day;
    d->ndays = (int32_t)D;
    d->nstores = S;
    d->nproducts = L->products.n;
    d->ncities = C;
    d->nseries = N;
    d->mismatches = L->mismatches;

    srank = xmalloc((S + 1) * sizeof *srank);
    prank = xmalloc((d->nproducts + 1) * sizeof *prank);
    crank = xmalloc((C + 1) * sizeof *crank);
    d->store_ids = sorted_names(&L->stores, srank);
    d->product_names = sorted_names(&L->products, prank);
    d->city_names = sorted_names(&L->cities, crank);
    d->store_country = xmalloc(S ? S : 1);
    d->store_city = xmalloc((S ? S : 1) * sizeof *d->store_city);
    for (size_t s = 0; s < S; s++) {
        d->store_country[srank[s]] = L->store_country[s];
        d->store_city[srank[s]] = crank[L->store_city[s]];
    }
    d->product_category = xmalloc(d->nproducts ? d->nproducts : 1);
    for (size_t p = 0; p < d->nproducts; p++)
        d->product_category[prank[p]] = L->product_category[p];

    /* Series in (store, product) order: key = new store, new product, old index. */
    keyed = xmalloc((N ? N : 1) * sizeof *keyed);
    for (size_t i = 0; i < N; i++) {
        uint64_t s = srank[L->pairs[i] >> 32], p = prank[L->pairs[i] & 0xffffffffu];
        keyed[i] = s << 44 | p << 24 | i; /* limits keep each part in its bits */
    }
    qsort(keyed, N, sizeof *keyed, cmp_u64);
    smap = xmalloc((N ? N : 1) * sizeof *smap);
    d->series_store = xmalloc((N ? N : 1) * sizeof *d->series_store);
    d->series_product = xmalloc((N ? N : 1) * sizeof *d->series_product);
    for (size_t i = 0; i < N; i++) {
        d->series_store[i] = (uint32_t)(keyed[i] >> 44);
        d->series_product[i] = (uint32_t)(keyed[i] >> 24 & 0xfffff);
        smap[keyed[i] & 0xffffff] = (uint32_t)i;
    }

    const size_t ND = N * D;
    qacc = big(ND, sizeof *qacc, &failed);
    best = big(ND, sizeof *best, &failed);
    seen = big(ND, 1, &failed);
    ptri = big(ND, 1, &failed);
    spromo = big(S * D, 1, &failed);
    shol = big(S * D, 1, &failed);
    svotes = big(S * D * NWEATHER, sizeof *svotes, &failed);
    cvotes = big(C * D * NWEATHER, sizeof *cvotes, &failed);
    pcents = big(ND, sizeof *pcents, &failed);
    if (failed)
        goto oom;

    for (size_t k = 0; k < L->nrecs; k++) {
        const rec *r = &L->recs[k];
        size_t i = smap[r->series], day = (size_t)(r->day - L->min_day);
        size_t at = i * D + day, s = d->series_store[i], sd = s * D + day;
        qacc[at] += r->qty;
        /* the day's price: its biggest row's (ties: the lower price) */
        if (!seen[at] || r->qty > best[at] || (r->qty == best[at] && r->price_cents < pcents[at])) {
            best[at] = r->qty;
            pcents[at] = r->price_cents;
        }
        seen[at] = 1;
        if (r->promo > ptri[at])
            ptri[at] = r->promo;
        if (r->promo > spromo[sd])
            spromo[sd] = r->promo;
        if (r->holiday > shol[sd])
            shol[sd] = r->holiday;
        if (r->weather != SALES_WEATHER_NONE) {
            uint16_t *v = &svotes[sd * NWEATHER + r->weather - 1];
            *v += *v < UINT16_MAX;
            v = &cvotes[((size_t)d->store_city[s] * D + day) * NWEATHER + r->weather - 1];
            *v += *v < UINT16_MAX;
        }
    }
    free(L->recs);
    L->recs = NULL;
    free(best);
    best = NULL;

    d->qty = big(ND, sizeof *d->qty, &failed);
    d->price = big(ND, sizeof *d->price, &failed);
    d->promo = big(ND, 1, &failed);
    d->weather = big(S * D, 1, &failed);
    d->holiday = big(S * D, 1, &failed);
    d->holiday_name = big(S * D, sizeof *d->holiday_name, &failed);
    d->holiday_next = big(S * D, 1, &failed);
    d->holiday_last = big(S * D, 1, &failed);
    if (failed)
        goto oom;
    for (size_t i = 0; i < N; i++) {
        size_t s = d->series_store[i], first = D;
        for (size_t day = 0; day < D && first == D; day++)
            if (seen[i * D + day])
                first = day;
        float carry = first < D ? (float)pcents[i * D + first] / 100.0f : 0.0f;
        for (size_t day = 0; day < D; day++) {
            size_t at = i * D + day;
            d->qty[at] = (float)qacc[at];
            if (seen[at])
                carry = (float)pcents[at] / 100.0f;
            d->price[at] = carry;
            uint8_t t = ptri[at] ? ptri[at] : spromo[s * D + day];
            d->promo[at] = t == 2;
        }
    }

    for (size_t s = 0; s < S; s++)
        for (size_t day = 0; day < D; day++) {
            uint8_t w = vote(&svotes[(s * D + day) * NWEATHER]);
            if (w == SALES_WEATHER_NONE)
                w = vote(&cvotes[((size_t)d->store_city[s] * D + day) * NWEATHER]);
            d->weather[s * D + day] = w;
        }
    fill_holidays(d, shol);
    goto out;
oom:
    snprintf(err, errlen, "out of memory for %zu series x %zu days (about %zu MiB)", N, D,
             (ND * 30 + S * D * 24) >> 20);
    rc = RST_ENOMEM;
out:
    free(srank);
    free(prank);
    free(crank);
    free(smap);
    free(keyed);
    free(qacc);
    free(best);
    free(pcents);
    free(seen);
    free(ptri);
    free(spromo);
    free(shol);
    free(svotes);
    free(cvotes);
    return rc;
}

/* ---- entry points ------------------------------------------------------------------ */

static int finish(loader *L, csv_parser *p, int rc, train_data **out, char *err, size_t errlen)
{
    if (rc == RST_OK)
        rc = csv_finish(p);
    if (rc == STOPPED) {
        snprintf(err, errlen, "stopped");
        return RST_EUNAVAIL;
    }
    if (rc == BAD_ROW)
        return RST_EINVAL;
    if (rc == TOO_BIG)
        return RST_ETOOBIG;
    if (rc == NO_MEM)
        return RST_ENOMEM;
    if (rc != RST_OK) {
        const csv_error *e = csv_get_error(p);
        if (e)
            snprintf(err, errlen, "line %llu: %s", (unsigned long long)e->line, e->message);
        else
            snprintf(err, errlen, "the file is not valid CSV");
        return rc == RST_ETOOBIG ? RST_ETOOBIG : RST_EINVAL;
    }
    if (!L->schema || !L->nrecs) {
        snprintf(err, errlen, "the file has no data rows");
        return RST_EINVAL;
    }
    if (L->stores.n >= (1u << 20) || L->products.n >= (1u << 20) || L->npairs >= (1u << 24)) {
        snprintf(err, errlen, "too many stores, products or series for the trainer");
        return RST_ETOOBIG;
    }
    train_data *d = xcalloc(1, sizeof *d);
    rc = build(L, d, err, errlen);
    if (rc != RST_OK) {
        train_data_free(d);
        return rc;
    }
    *out = d;
    return RST_OK;
}

static void loader_init(loader *L, volatile sig_atomic_t *stop, char *err, size_t errlen)
{
    memset(L, 0, sizeof *L);
    L->stop = stop;
    L->err = err;
    L->errlen = errlen;
}

int train_data_load(const char *path, const train_data_options *o, train_data **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    loader L;
    loader_init(&L, o ? o->stop : NULL, err, errlen);
    int rc = RST_OK;
    csv_parser *p = NULL;
    char *chunk = NULL;
    EVP_MD_CTX *md = NULL;
    uint64_t bytes = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        snprintf(err, errlen, "cannot open %s: %s", path, strerror(errno));
        rc = RST_EIO;
        goto out;
    }
    posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
    md = EVP_MD_CTX_new();
    if (!md || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
        snprintf(err, errlen, "sha-256 unavailable");
        rc = RST_EIO;
        goto out;
    }
    p = csv_new(NULL, on_record, &L);
    chunk = xmalloc(READ_CHUNK);
    for (;;) {
        if (L.stop && *L.stop) {
            rc = STOPPED;
            break;
        }
        ssize_t got = read(fd, chunk, READ_CHUNK);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            rc = RST_EIO;
            goto out;
        }
        if (got == 0)
            break;
        bytes += (uint64_t)got;
        EVP_DigestUpdate(md, chunk, (size_t)got);
        rc = csv_feed(p, chunk, (size_t)got);
        if (rc != RST_OK)
            break;
    }
    rc = finish(&L, p, rc, out, err, errlen);
    if (rc == RST_OK) {
        unsigned char h[EVP_MAX_MD_SIZE];
        unsigned hl = 0;
        EVP_DigestFinal_ex(md, h, &hl);
        for (unsigned i = 0; i < hl && i < 32; i++)
            snprintf((*out)->sha256 + 2 * i, 3, "%02x", h[i]);
        (*out)->bytes = bytes;
        (*out)->rows = csv_records(p) - 1;
    }
out:
    if (fd >= 0)
        close(fd);
    EVP_MD_CTX_free(md);
    csv_free(p);
    free(chunk);
    loader_free(&L);
    return rc;
}

int train_data_load_buffer(const char *data, size_t len, train_data **out, char *err, size_t errlen)
{
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    loader L;
    loader_init(&L, NULL, err, errlen);
    csv_parser *p = csv_new(NULL, on_record, &L);
    int rc = finish(&L, p, csv_feed(p, data, len), out, err, errlen);
    if (rc == RST_OK) {
        unsigned char h[32];
        unsigned hl = 0;
        EVP_Digest(data, len, h, &hl, EVP_sha256(), NULL);
        for (unsigned i = 0; i < hl && i < 32; i++)
            snprintf((*out)->sha256 + 2 * i, 3, "%02x", h[i]);
        (*out)->bytes = len;
        (*out)->rows = csv_records(p) - 1;
    }
    csv_free(p);
    loader_free(&L);
    return rc;
}

static void free_names(char **names, size_t n)
{
    for (size_t i = 0; names && i < n; i++)
        free(names[i]);
    free(names);
}

void train_data_free(train_data *d)
{
    if (!d)
        return;
    free_names(d->store_ids, d->nstores);
    free_names(d->product_names, d->nproducts);
    free_names(d->city_names, d->ncities);
    free_names(d->holiday_names, d->nholidays);
    free(d->store_country);
    free(d->store_city);
    free(d->product_category);
    free(d->series_store);
    free(d->series_product);
    free(d->qty);
    free(d->price);
    free(d->promo);
    free(d->holiday);
    free(d->holiday_name);
    free(d->holiday_next);
    free(d->holiday_last);
    free(d->weather);
    free(d);
}

long train_data_find(char *const *names, size_t n, const char *name)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(names[i], name))
            return (long)i;
    return -1;
}
