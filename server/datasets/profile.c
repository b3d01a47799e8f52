/* Streaming profile of canonical sales rows. Strings are interned in
 * open-addressing tables (insertion-ordered entry arrays, so output order
 * never depends on the hash seed); quantiles come from all values up to a
 * bound and from a deterministic reservoir sample beyond it. */
#include "datasets/profile.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

/* ---- interned strings with counts ------------------------------------------ */

typedef struct {
    uint64_t hash;
    size_t off; /* into the arena; NUL-terminated there */
    size_t len;
    uint64_t count;
} st_ent;

typedef struct {
    st_ent *e;
    size_t n, ecap;
    uint32_t *slot; /* entry index + 1; 0 = empty */
    size_t mask;
    char *arena;
    size_t alen, acap;
    size_t max;     /* entries tracked at most */
    int full;       /* a value was refused */
    uint64_t other; /* rows whose value was refused */
} strtab;

static uint64_t hash_bytes(const char *s, size_t n, uint64_t seed)
{
    uint64_t h = seed ^ ((uint64_t)n * 0x9E3779B97F4A7C15ULL);
    while (n >= 8) {
        uint64_t w;
        memcpy(&w, s, 8);
        h = (h ^ w) * 0xFF51AFD7ED558CCDULL;
        h ^= h >> 32;
        s += 8;
        n -= 8;
    }
    uint64_t w = 0;
    memcpy(&w, s, n);
    h = (h ^ w) * 0xC4CEB9FE1A85EC53ULL;
    h ^= h >> 29;
    h *= 0x94D049BB133111EBULL;
    return h ^ (h >> 31);
}

static void st_rehash(strtab *t, size_t want)
{
    free(t->slot);
    t->slot = xcalloc(want, sizeof *t->slot);
    t->mask = want - 1;
    for (size_t i = 0; i < t->n; i++) {
        size_t j = (size_t)t->e[i].hash & t->mask;
        while (t->slot[j])
            j = (j + 1) & t->mask;
        t->slot[j] = (uint32_t)(i + 1);
    }
}

/* Index of s in t, adding it when add and there is room; -1 otherwise. */
static long st_get(strtab *t, const char *s, size_t len, uint64_t seed)
{
    uint64_t h = hash_bytes(s, len, seed);
    if (t->slot) {
        size_t j = (size_t)h & t->mask;
        for (uint32_t k; (k = t->slot[j]); j = (j + 1) & t->mask) {
            st_ent *e = &t->e[k - 1];
            if (e->hash == h && e->len == len && !memcmp(t->arena + e->off, s, len))
                return (long)(k - 1);
        }
    }
    if (t->n >= t->max) {
        t->full = 1;
        return -1;
    }
    if (!t->slot || (t->n + 1) * 2 > t->mask + 1)
        st_rehash(t, t->slot ? (t->mask + 1) * 2 : 64);
    if (t->n == t->ecap) {
        t->ecap = t->ecap ? t->ecap * 2 : 32;
        t->e = xrealloc(t->e, t->ecap * sizeof *t->e);
    }
    if (t->alen + len + 1 > t->acap) {
        size_t c = t->acap ? t->acap : 1024;
        while (c < t->alen + len + 1)
            c *= 2;
        t->arena = xrealloc(t->arena, c);
        t->acap = c;
    }
    memcpy(t->arena + t->alen, s, len);
    t->arena[t->alen + len] = '\0';
    t->e[t->n] = (st_ent){.hash = h, .off = t->alen, .len = len, .count = 0};
    t->alen += len + 1;
    size_t j = (size_t)h & t->mask;
    while (t->slot[j])
        j = (j + 1) & t->mask;
    t->slot[j] = (uint32_t)(t->n + 1);
    return (long)t->n++;
}

static void st_count(strtab *t, const char *s, size_t len, uint64_t seed, long *idx)
{
    long i = st_get(t, s, len, seed);
    if (i >= 0)
        t->e[i].count++;
    else
        t->other++;
    if (idx)
        *idx = i;
}

static void st_free(strtab *t)
{
    free(t->e);
    free(t->slot);
    free(t->arena);
}

/* ---- daily totals ------------------------------------------------------------ */

typedef struct { /* 32 bytes: the hash is recomputed when the table grows */
    int32_t day;
    uint32_t store, product;
    uint32_t rows;
    int64_t quantity, total;
} daily_ent;

typedef struct {
    daily_ent *e;
    size_t n, ecap;
    uint32_t *slot; /* entry index + 1; 0 = empty */
    size_t mask;
    int truncated;
    uint64_t dropped;
} daily_map;

static uint64_t mix3(int32_t day, uint32_t a, uint32_t b, uint64_t seed)
{
    uint64_t h = seed ^ ((uint64_t)(uint32_t)day * 0x9E3779B97F4A7C15ULL);
    h = (h ^ ((uint64_t)a << 32 | b)) * 0xFF51AFD7ED558CCDULL;
    h ^= h >> 33;
    h *= 0xC4CEB9FE1A85EC53ULL;
    return h ^ (h >> 29);
}

static void daily_rehash(daily_map *m, size_t want, uint64_t seed)
{
    free(m->slot);
    m->slot = xcalloc(want, sizeof *m->slot);
    m->mask = want - 1;
    for (size_t i = 0; i < m->n; i++) {
        const daily_ent *e = &m->e[i];
        uint64_t h = mix3(e->day, e->store, e->product, seed);
        size_t j = (size_t)h & m->mask;
        while (m->slot[j])
            j = (j + 1) & m->mask;
        m->slot[j] = (uint32_t)(i + 1);
    }
}

/* ---- numeric columns -------------------------------------------------------------- */

enum { N_QTY, N_PRICE, N_TOTAL, N__N };

typedef struct {
    int64_t min, max, sum;
    int sum_overflow;
    double dsum;
    int64_t *sample;
} numcol;

struct profile {
    profile_limits lim;
    uint64_t seed; /* hash seed: random, never visible in results */
    uint64_t rng;  /* reservoir sampling: fixed seed, so results repeat */
    uint64_t rows;
    int32_t min_day, max_day;
    strtab stores, products, cities;
    uint64_t countries[SALES_COUNTRY__N];
    uint64_t categories[SALES_CATEGORY__N];
    uint64_t miss_weather, miss_promotion, miss_holiday, miss_total;
    numcol num[N__N];
    size_t nsample, scap;
    daily_map daily;
};

profile_t *profile_new(const profile_limits *limits)
{
    profile_t *p = xcalloc(1, sizeof *p);
    if (limits)
        p->lim = *limits;
    if (!p->lim.max_distinct)
        p->lim.max_distinct = PROFILE_DEFAULT_MAX_DISTINCT;
    if (!p->lim.exact_quantile_rows)
        p->lim.exact_quantile_rows = PROFILE_DEFAULT_EXACT_QUANTILE_ROWS;
    if (!p->lim.max_daily_keys)
        p->lim.max_daily_keys = PROFILE_DEFAULT_MAX_DAILY_KEYS;
    if (p->lim.max_daily_keys > UINT32_MAX / 4)
        p->lim.max_daily_keys = UINT32_MAX / 4;
    /* stores and products are interned for the daily keys too */
    p->stores.max = p->products.max =
        p->lim.max_daily_keys > p->lim.max_distinct ? p->lim.max_daily_keys : p->lim.max_distinct;
    p->cities.max = p->lim.max_distinct;
    char hex[33];
    random_hex_id(hex);
    for (int i = 0; i < 16; i++)
        p->seed = p->seed * 31 + (uint64_t)hex[i];
    p->rng = 0x5DEECE66DULL;
    return p;
}

static uint64_t next_rand(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ULL);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    return z ^ (z >> 31);
}

static void num_add(numcol *c, int64_t v, int first)
{
    if (first || v < c->min)
        c->min = v;
    if (first || v > c->max)
        c->max = v;
    if (!c->sum_overflow && __builtin_add_overflow(c->sum, v, &c->sum))
        c->sum_overflow = 1;
    c->dsum += (double)v;
}

static void daily_add(profile_t *p, long store, long product, const sales_row *r)
{
    daily_map *m = &p->daily;
    uint64_t h = mix3(r->date, (uint32_t)store, (uint32_t)product, p->seed);
    if (m->slot) {
        size_t j = (size_t)h & m->mask;
        for (uint32_t k; (k = m->slot[j]); j = (j + 1) & m->mask) {
            daily_ent *e = &m->e[k - 1];
            if (e->day == r->date && e->store == (uint32_t)store &&
                e->product == (uint32_t)product) {
                e->quantity += r->quantity;
                e->total += r->total_cents;
                e->rows += e->rows != UINT32_MAX;
                return;
            }
        }
    }
    if (m->n >= p->lim.max_daily_keys) {
        m->truncated = 1;
        m->dropped++;
        return;
    }
    if (!m->slot || (m->n + 1) * 2 > m->mask + 1)
        daily_rehash(m, m->slot ? (m->mask + 1) * 2 : 1024, p->seed);
    if (m->n == m->ecap) {
        m->ecap = m->ecap ? m->ecap * 2 : 256;
        if (m->ecap > p->lim.max_daily_keys)
            m->ecap = p->lim.max_daily_keys;
        m->e = xrealloc(m->e, m->ecap * sizeof *m->e);
    }
    m->e[m->n] = (daily_ent){.day = r->date,
                             .store = (uint32_t)store,
                             .product = (uint32_t)product,
                             .rows = 1,
                             .quantity = r->quantity,
                             .total = r->total_cents};
    size_t j = (size_t)h & m->mask;
    while (m->slot[j])
        j = (j + 1) & m->mask;
    m->slot[j] = (uint32_t)(m->n + 1);
    m->n++;
}

void profile_add(profile_t *p, const sales_row *r)
{
    int first = p->rows == 0;
    if (first || r->date < p->min_day)
        p->min_day = r->date;
    if (first || r->date > p->max_day)
        p->max_day = r->date;
    long store, product;
    st_count(&p->stores, r->store_id.s, r->store_id.len, p->seed, &store);
    st_count(&p->products, r->product.s, r->product.len, p->seed, &product);
    st_count(&p->cities, r->city.s, r->city.len, p->seed, NULL);
    if ((unsigned)r->country < SALES_COUNTRY__N)
        p->countries[r->country]++;
    if ((unsigned)r->category < SALES_CATEGORY__N)
        p->categories[r->category]++;
    p->miss_weather += r->weather == SALES_WEATHER_NONE;
    p->miss_promotion += r->promotion < 0;
    p->miss_holiday += r->holiday < 0;
    p->miss_total += !r->total_given;

    int64_t v[N__N] = {r->quantity, r->unit_price_cents, r->total_cents};
    for (int i = 0; i < N__N; i++)
        num_add(&p->num[i], v[i], first);
    size_t k = p->lim.exact_quantile_rows;
    if (p->nsample < k) {
        if (p->nsample == p->scap) {
            p->scap = p->scap ? p->scap * 2 : 1024;
            if (p->scap > k)
                p->scap = k;
            for (int i = 0; i < N__N; i++)
                p->num[i].sample = xrealloc(p->num[i].sample, p->scap * sizeof(int64_t));
        }
        for (int i = 0; i < N__N; i++)
            p->num[i].sample[p->nsample] = v[i];
        p->nsample++;
    } else {
        uint64_t j = next_rand(&p->rng) % (p->rows + 1);
        if (j < k)
            for (int i = 0; i < N__N; i++)
                p->num[i].sample[j] = v[i];
    }

    if (store >= 0 && product >= 0)
        daily_add(p, store, product, r);
    else
        p->daily.dropped++;
    p->rows++;
}

uint64_t profile_rows(const profile_t *p)
{
    return p->rows;
}

size_t profile_daily_count(const profile_t *p)
{
    return p->daily.n;
}

int profile_daily_truncated(const profile_t *p)
{
    return p->daily.truncated;
}

static void daily_view(const profile_t *p, const daily_ent *e, profile_daily *d)
{
    d->day = e->day;
    sales_format_date(e->day, d->date);
    d->store_id = p->stores.arena + p->stores.e[e->store].off;
    d->product = p->products.arena + p->products.e[e->product].off;
    d->quantity = e->quantity;
    d->total_cents = e->total;
    d->rows = e->rows;
}

int profile_daily_foreach(const profile_t *p, int (*fn)(void *arg, const profile_daily *d),
                          void *arg)
{
    for (size_t i = 0; i < p->daily.n; i++) {
        profile_daily d;
        daily_view(p, &p->daily.e[i], &d);
        int rc = fn(arg, &d);
        if (rc)
            return rc;
    }
    return RST_OK;
}

int profile_write_daily_csv(const profile_t *p,
                            int (*write)(void *arg, const char *data, size_t len), void *arg)
{
    buf_t b;
    buf_init(&b, 0);
    int rc = RST_OK;
    buf_puts(&b, "date,store_id,product,quantity,total,rows\n");
    for (size_t i = 0; i < p->daily.n && rc == RST_OK; i++) {
        const daily_ent *e = &p->daily.e[i];
        const st_ent *s = &p->stores.e[e->store], *pr = &p->products.e[e->product];
        char date[11];
        sales_format_date(e->day, date);
        buf_append(&b, date, 10);
        buf_puts(&b, ",");
        sales_write_field(&b, p->stores.arena + s->off, s->len);
        buf_puts(&b, ",");
        sales_write_field(&b, p->products.arena + pr->off, pr->len);
        uint64_t u = e->total < 0 ? (uint64_t)0 - (uint64_t)e->total : (uint64_t)e->total;
        buf_printf(&b, ",%lld,%s%llu.%02llu,%lu\n", (long long)e->quantity, e->total < 0 ? "-" : "",
                   (unsigned long long)(u / 100), (unsigned long long)(u % 100),
                   (unsigned long)e->rows);
        if (b.len >= 256 * 1024) {
            rc = write(arg, b.data, b.len);
            b.len = 0;
        }
    }
    if (rc == RST_OK && b.len)
        rc = write(arg, b.data, b.len);
    buf_free(&b);
    return rc;
}

/* ---- JSON ------------------------------------------------------------------------ */

static json_t *cents_json(int64_t c)
{
    char s[32];
    int neg = c < 0;
    uint64_t u = neg ? (uint64_t)0 - (uint64_t)c : (uint64_t)c;
    snprintf(s, sizeof s, "%s%llu.%02llu", neg ? "-" : "", (unsigned long long)(u / 100),
             (unsigned long long)(u % 100));
    return json_string(s);
}

static int cmp_i64(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return (x > y) - (x < y);
}

static json_t *numeric_json(const profile_t *p, int col)
{
    const numcol *c = &p->num[col];
    int money = col != N_QTY;
    json_t *(*val)(int64_t) = money ? cents_json : NULL;
    json_t *o = json_object();
#define NUMV(x) (val ? val(x) : json_integer((json_int_t)(x)))
    json_object_set_new(o, "min", NUMV(c->min));
    json_object_set_new(o, "max", NUMV(c->max));
    json_object_set_new(o, "sum", c->sum_overflow ? json_null() : NUMV(c->sum));
    /* a string: a JSON real would print as 16.530000000000001 */
    json_object_set_new(
        o, "mean", cents_json((int64_t)llround(c->dsum / (double)p->rows * (money ? 1.0 : 100.0))));
    int64_t *s = xmalloc(p->nsample * sizeof *s);
    memcpy(s, c->sample, p->nsample * sizeof *s);
    qsort(s, p->nsample, sizeof *s, cmp_i64);
    static const struct {
        const char *name;
        unsigned pct;
    } qs[] = {{"p05", 5}, {"p25", 25}, {"p50", 50}, {"p75", 75}, {"p95", 95}};
    for (size_t i = 0; i < sizeof qs / sizeof qs[0]; i++) {
        /* nearest rank: the smallest value with at least pct% of values <= it */
        size_t rank = (size_t)(((uint64_t)qs[i].pct * p->nsample + 99) / 100);
        size_t at = rank ? rank - 1 : 0;
        json_object_set_new(o, qs[i].name, NUMV(s[at]));
    }
#undef NUMV
    free(s);
    return o;
}

typedef struct {
    uint64_t count;
    const char *s;
    size_t len;
} item;

/* most frequent first, then by bytes */
static int cmp_item(const void *a, const void *b)
{
    const item *x = a, *y = b;
    if (x->count != y->count)
        return x->count < y->count ? 1 : -1;
    size_t n = x->len < y->len ? x->len : y->len;
    int c = memcmp(x->s, y->s, n);
    return c ? c : (x->len > y->len) - (x->len < y->len);
}

static json_t *distinct_json(const strtab *t, size_t max_list)
{
    item *it = xmalloc((t->n ? t->n : 1) * sizeof *it);
    for (size_t i = 0; i < t->n; i++)
        it[i] = (item){t->e[i].count, t->arena + t->e[i].off, t->e[i].len};
    qsort(it, t->n, sizeof *it, cmp_item);
    json_t *vals = json_array();
    size_t list = t->n < max_list ? t->n : max_list;
    for (size_t i = 0; i < list; i++)
        json_array_append_new(vals, json_pack("{s:s%, s:I}", "value", it[i].s, it[i].len, "count",
                                              (json_int_t)it[i].count));
    free(it);
    json_t *o =
        json_pack("{s:I, s:b}", "count", (json_int_t)t->n, "more", t->full || t->n > max_list);
    if (t->full)
        json_object_set_new(o, "rows_with_untracked_values", json_integer((json_int_t)t->other));
    json_object_set_new(o, "values", vals);
    return o;
}

static json_t *enum_distinct(const uint64_t *counts, int n, const char *(*name)(int))
{
    /* most frequent first, ties in schema order */
    int order[8];
    int k = 0;
    for (int i = 0; i < n; i++)
        if (counts[i])
            order[k++] = i;
    for (int i = 1; i < k; i++)
        for (int j = i; j > 0 && counts[order[j]] > counts[order[j - 1]]; j--) {
            int t = order[j];
            order[j] = order[j - 1];
            order[j - 1] = t;
        }
    json_t *vals = json_array();
    for (int i = 0; i < k; i++)
        json_array_append_new(vals, json_pack("{s:s, s:I}", "value", name(order[i]), "count",
                                              (json_int_t)counts[order[i]]));
    return json_pack("{s:i, s:b, s:o}", "count", k, "more", 0, "values", vals);
}

json_t *profile_to_json_ex(const profile_t *p, unsigned flags)
{
    json_t *o = json_object();
    json_object_set_new(o, "rows", json_integer((json_int_t)p->rows));
    if (p->rows) {
        char a[11], b[11];
        sales_format_date(p->min_day, a);
        sales_format_date(p->max_day, b);
        json_object_set_new(o, "date_range",
                            json_pack("{s:s, s:s, s:I}", "min", a, "max", b, "days",
                                      (json_int_t)(p->max_day - p->min_day + 1)));
    } else {
        json_object_set_new(o, "date_range", json_null());
    }

    json_t *d = json_object();
    json_object_set_new(d, "store_id", distinct_json(&p->stores, p->lim.max_distinct));
    json_object_set_new(d, "product", distinct_json(&p->products, p->lim.max_distinct));
    json_object_set_new(d, "country",
                        enum_distinct(p->countries, SALES_COUNTRY__N, sales_country_name));
    json_object_set_new(d, "city", distinct_json(&p->cities, p->lim.max_distinct));
    json_object_set_new(d, "category",
                        enum_distinct(p->categories, SALES_CATEGORY__N, sales_category_name));
    json_object_set_new(o, "distinct", d);

    json_object_set_new(o, "missing",
                        json_pack("{s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:i, s:I, s:I, s:I, s:I}",
                                  "date", 0, "store_id", 0, "country", 0, "city", 0, "category", 0,
                                  "product", 0, "quantity", 0, "unit_price", 0, "total",
                                  (json_int_t)p->miss_total, "weather", (json_int_t)p->miss_weather,
                                  "promotion", (json_int_t)p->miss_promotion, "holiday",
                                  (json_int_t)p->miss_holiday));

    if (p->rows) {
        json_object_set_new(o, "numeric",
                            json_pack("{s:o, s:o, s:o}", "quantity", numeric_json(p, N_QTY),
                                      "unit_price", numeric_json(p, N_PRICE), "total",
                                      numeric_json(p, N_TOTAL)));
    }
    int exact = p->rows <= p->lim.exact_quantile_rows;
    json_object_set_new(o, "quantiles",
                        json_pack("{s:s, s:I, s:I, s:s}", "method",
                                  exact ? "exact" : "reservoir_sample", "sample_size",
                                  (json_int_t)p->nsample, "rows", (json_int_t)p->rows, "rank",
                                  "nearest-rank"));

    json_t *cf = json_object();
    for (int i = 0; i < SALES_CATEGORY__N; i++)
        json_object_set_new(cf, sales_category_name(i), json_integer((json_int_t)p->categories[i]));
    json_object_set_new(o, "category_frequencies", cf);

    int in_json = (flags & PROFILE_JSON_DAILY) && p->daily.n <= PROFILE_JSON_MAX_DAILY;
    json_object_set_new(o, "daily_totals_info",
                        json_pack("{s:I, s:b, s:I, s:I, s:b}", "keys", (json_int_t)p->daily.n,
                                  "truncated", p->daily.truncated, "max_keys",
                                  (json_int_t)p->lim.max_daily_keys, "rows_not_aggregated",
                                  (json_int_t)p->daily.dropped, "in_json", in_json));
    if (in_json) {
        json_t *arr = json_array();
        for (size_t i = 0; i < p->daily.n; i++) {
            profile_daily x;
            daily_view(p, &p->daily.e[i], &x);
            json_t *e =
                json_pack("{s:s, s:s, s:s, s:I, s:o, s:I}", "date", x.date, "store_id", x.store_id,
                          "product", x.product, "quantity", (json_int_t)x.quantity, "total",
                          cents_json(x.total_cents), "rows", (json_int_t)x.rows);
            json_array_append_new(arr, e);
        }
        json_object_set_new(o, "daily_totals", arr);
    }
    return o;
}

json_t *profile_to_json(const profile_t *p)
{
    return profile_to_json_ex(p, PROFILE_JSON_DAILY);
}

void profile_free(profile_t *p)
{
    if (!p)
        return;
    st_free(&p->stores);
    st_free(&p->products);
    st_free(&p->cities);
    for (int i = 0; i < N__N; i++)
        free(p->num[i].sample);
    free(p->daily.e);
    free(p->daily.slot);
    free(p);
}
