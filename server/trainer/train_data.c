/* Sales CSV -> dense daily series. One streaming pass parses and hashes the
 * file and keeps each row as a 20-byte record; the dense arrays are sized once
 * the date range is known, then filled and completed (prices carried, store
 * and city fallbacks, the holiday calendar).
 * size: the loader (parallel split, canonical fast path) and the dense build in one file; the
 * loader is to become trainer/train_data_load.c (review 2026-12 §3.7). */
#include "trainer/train_data.h"

#include "lib/csv.h"
#include "datasets/sales.h"
#include "trainer/holidays.h"
#include "lib/util.h"
#include "lib/csvout.h"

#include <errno.h>
#include <fcntl.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
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

#define PRODUCT_CACHE 256

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
    /* products seen lately: interned name, its length and index */
    const char *pcache_name[PRODUCT_CACHE];
    size_t pcache_len[PRODUCT_CACHE];
    long pcache_idx[PRODUCT_CACHE];
    /* the last row's store and city (interned names) and their indexes */
    const char *last_store, *last_city;
    size_t last_store_len, last_city_len;
    long last_s, last_c;
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

static int add_row(loader *L, const sales_row *r);

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
    return add_row(L, &row);
}

/* Keeps a valid row. 0 or a callback status. */
static int add_row(loader *L, const sales_row *rp)
{
    const sales_row row = *rp;
    if (L->nrecs >= TRAIN_DATA_MAX_ROWS) {
        set_err(L, "more than %llu data rows", (unsigned long long)TRAIN_DATA_MAX_ROWS);
        return TOO_BIG;
    }
    int added = 0;
    long s, c;
    /* rows of one store come together in most files: the same names, the same indexes */
    if (L->last_store && row.store_id.len == L->last_store_len &&
        row.city.len == L->last_city_len &&
        !memcmp(row.store_id.s, L->last_store, row.store_id.len) &&
        !memcmp(row.city.s, L->last_city, row.city.len)) {
        s = L->last_s;
        c = L->last_c;
    } else {
        s = strtab_intern(&L->stores, row.store_id.s, row.store_id.len, &added);
        c = s < 0 ? -1 : strtab_intern(&L->cities, row.city.s, row.city.len, &(int){0});
        if (s >= 0 && c >= 0) {
            L->last_store = L->stores.names[s];
            L->last_store_len = row.store_id.len;
            L->last_city = L->cities.names[c];
            L->last_city_len = row.city.len;
            L->last_s = s;
            L->last_c = c;
        }
    }
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
    /* a small direct-mapped cache before the table: few products, many rows */
    const size_t pn = row.product.len;
    const unsigned slot = (unsigned)(pn * 31 + (unsigned char)row.product.s[0] * 7 +
                                     (unsigned char)row.product.s[pn - 1]) %
                          PRODUCT_CACHE;
    long p;
    added = 0;
    if (L->pcache_name[slot] && L->pcache_len[slot] == pn &&
        !memcmp(L->pcache_name[slot], row.product.s, pn)) {
        p = L->pcache_idx[slot];
    } else {
        p = strtab_intern(&L->products, row.product.s, row.product.len, &added);
        if (p >= 0) {
            L->pcache_name[slot] = L->products.names[p];
            L->pcache_len[slot] = pn;
            L->pcache_idx[slot] = p;
        }
    }
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

/* ---- the canonical fast path ------------------------------------------------------- */

/* The canonical file (server/datasets/ingest.c writes it: SALES_CANONICAL_HEADER, one
 * unquoted line per row, canonical spellings) is most of what the trainer and
 * `roastery forecast` read, and the general CSV parser and the sales schema
 * cost about 0.5 us per row. Lines of a file whose header is the canonical
 * one (or its first 8 to 11 columns) are split on commas here and taken when
 * every field has the canonical form, which sales_parse_row reads the same
 * way; the first line that does not (quotes, spaces, other spellings, any
 * error) sends the whole file back to the general path from its start, so
 * the results and the errors are the general path's. */

static const char *const canon_cols[] = {"date",     "store_id", "country",   "city",
                                         "category", "product",  "quantity",  "unit_price",
                                         "total",    "weather",  "promotion", "holiday"};
#define CANON_MIN 8 /* date .. unit_price: the required columns */
#define CANON_COLS 12

/* The number of canonical columns the header line (without its end) names in
 * order, CANON_MIN..CANON_COLS, or 0. */
static int canon_header(const char *line, size_t n)
{
    size_t at = 0;
    for (int k = 0; k < CANON_COLS; k++) {
        size_t len = strlen(canon_cols[k]);
        if (n - at < len || memcmp(line + at, canon_cols[k], len))
            return 0;
        at += len;
        if (at == n)
            return k + 1 >= CANON_MIN ? k + 1 : 0;
        if (line[at++] != ',')
            return 0;
    }
    return 0;
}

/* A name as text_field takes it unchanged: 1..SALES_MAX_TEXT_BYTES bytes, no
 * control character, nothing trim() would remove, no formula guard for
 * text_field to strip (our writer quotes guarded cells: they go the general way). */
static int canon_text(const char *s, size_t n)
{
    if (!n || n > SALES_MAX_TEXT_BYTES || s[0] == ' ' || s[n - 1] == ' ' || csvout_unguard(s, n))
        return 0;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)s[i] < 0x20 || s[i] == 0x7F || s[i] == '"')
            return 0;
    return 1;
}

/* An unsigned whole number of 1..10 digits into *v; 0 if not. */
static int canon_uint(const char *s, size_t n, int64_t *v)
{
    if (!n || n > 10)
        return 0;
    int64_t x = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return 0;
        x = x * 10 + (s[i] - '0');
    }
    *v = x;
    return 1;
}

/* digits[.d[d]] as cents, digits 1..12; 0 if not. */
static int canon_cents(const char *s, size_t n, int64_t *cents)
{
    size_t dot = 0;
    while (dot < n && s[dot] != '.')
        dot++;
    int64_t whole, frac = 0;
    if (dot > 12 || !canon_uint(s, dot, &whole))
        return 0;
    if (dot < n) {
        size_t nf = n - dot - 1;
        if (nf < 1 || nf > 2)
            return 0;
        for (size_t i = 0; i < nf; i++) {
            char c = s[dot + 1 + i];
            if (c < '0' || c > '9')
                return 0;
            frac += (c - '0') * (i == 0 ? 10 : 1);
        }
    }
    *cents = whole * 100 + frac;
    return 1;
}

/* Index of s (n bytes) in names (exact spelling), or -1. */
static int canon_word(const char *s, size_t n, const char *const *names, int count)
{
    for (int k = 0; k < count; k++)
        if (strlen(names[k]) == n && !memcmp(s, names[k], n))
            return k;
    return -1;
}

/* Fills row from one line (no line end) of ncols canonical columns. 0, or -1
 * when the line is not in canonical form or not valid (the general path then
 * reads the file). */
typedef struct {
    char text[10]; /* the last date read, and its day */
    int32_t day;
    int valid;
} date_cache;

static int canon_row(const char *line, size_t n, int ncols, int32_t lo, int32_t hi, date_cache *dc,
                     sales_row *row)
{
    const char *f[CANON_COLS];
    size_t len[CANON_COLS];
    int k = 0;
    size_t start = 0;
    /* a quote, CR or tab fails the field's check below (names: canon_text) */
    for (size_t i = 0; i <= n; i++) {
        if (i == n || line[i] == ',') {
            if (k == ncols)
                return -1;
            f[k] = line + start;
            len[k++] = i - start;
            start = i + 1;
        }
    }
    if (k != ncols)
        return -1;
    for (; k < CANON_COLS; k++) { /* absent columns read as empty */
        f[k] = "";
        len[k] = 0;
    }
    memset(row, 0, sizeof *row);
    if (len[0] == 10 && dc->valid && !memcmp(f[0], dc->text, 10)) {
        row->date = dc->day; /* rows of a day come together */
    } else {
        if (sales_parse_date(f[0], len[0], &row->date) || row->date < lo || row->date > hi)
            return -1;
        memcpy(dc->text, f[0], 10);
        dc->day = row->date;
        dc->valid = 1;
    }
    if (!canon_text(f[1], len[1]) || !canon_text(f[3], len[3]) || !canon_text(f[5], len[5]))
        return -1;
    row->store_id = (sales_str){f[1], len[1]};
    row->city = (sales_str){f[3], len[3]};
    row->product = (sales_str){f[5], len[5]};
    static const char *const countries[] = {"USA", "Canada", "Mexico"};
    static const char *const categories[] = {"Coffee", "Pastry", "Beverage", "Merchandise"};
    static const char *const weathers[] = {"Sunny", "Rainy", "Snowy", "Cloudy", "Hot", "Cold"};
    static const char *const flags[] = {"No", "Yes"};
    int country = canon_word(f[2], len[2], countries, 3);
    int category = canon_word(f[4], len[4], categories, 4);
    if (country < 0 || category < 0)
        return -1;
    row->country = (sales_country)country;
    row->category = (sales_category)category;
    if (!canon_uint(f[6], len[6], &row->quantity) || row->quantity > SALES_MAX_QUANTITY ||
        !canon_cents(f[7], len[7], &row->unit_price_cents) ||
        row->unit_price_cents > SALES_MAX_PRICE_CENTS)
        return -1;
    int64_t want = row->quantity * row->unit_price_cents;
    if (len[8]) {
        int64_t t;
        if (!canon_cents(f[8], len[8], &t) || t - want > 1 || want - t > 1)
            return -1;
        row->total_cents = t;
        row->total_given = 1;
    } else {
        row->total_cents = want;
    }
    int w = len[9] ? canon_word(f[9], len[9], weathers, 6) : -1;
    if (len[9] && w < 0)
        return -1;
    row->weather = len[9] ? (sales_weather)(w + 1) : SALES_WEATHER_NONE;
    row->promotion = len[10] ? canon_word(f[10], len[10], flags, 2) : -1;
    row->holiday = len[11] ? canon_word(f[11], len[11], flags, 2) : -1;
    if ((len[10] && row->promotion < 0) || (len[11] && row->holiday < 0))
        return -1;
    return 0;
}

/* Reads the lines of data[0, len) with the fast path; *used gets the bytes of
 * the whole lines consumed (the rest starts a line that goes on in the next
 * chunk, unless last). 0, FAST_MISS when a line is not canonical, or an
 * add_row status. */
#define FAST_MISS 0x5705
static int canon_lines(loader *L, const char *data, size_t len, int last, int ncols, uint64_t *rows,
                       size_t *used)
{
    size_t at = 0;
    int32_t lo, hi;
    sales_parse_date(SALES_DEFAULT_MIN_DATE, 10, &lo);
    sales_parse_date(SALES_DEFAULT_MAX_DATE, 10, &hi);
    date_cache dc = {.valid = 0};
    while (at < len) {
        const char *nl = memchr(data + at, '\n', len - at);
        if (!nl && !last)
            break;
        size_t n = nl ? (size_t)(nl - (data + at)) : len - at;
        if (n) { /* empty lines are skipped, as the CSV parser does */
            sales_row row;
            if (canon_row(data + at, n, ncols, lo, hi, &dc, &row))
                return FAST_MISS;
            int rc = add_row(L, &row);
            if (rc)
                return rc;
            (*rows)++;
        }
        at += n + (nl != NULL);
    }
    *used = at;
    return 0;
}

#define NOT_CANON 0x5706

/* The mapped fast path runs on two threads: one splits and checks lines into
 * batches of rows (pointing into the mapping), the other adds them in file
 * order, so the results are those of one thread. */
#define BATCH_ROWS 8192
#define NBATCH 4

typedef struct {
    sales_row *rows;
    size_t n;
    size_t end; /* file offset after the batch's last line */
    int status; /* 0, FAST_MISS or STOPPED: the last batch */
    int last, full;
} batch;

typedef struct {
    const char *map;
    size_t size, at;
    int ncols;
    volatile sig_atomic_t *stop;
    EVP_MD_CTX *md;
    size_t hashed; /* bytes given to md */
    date_cache dc;
    int32_t lo, hi; /* the accepted dates */
    batch b[NBATCH];
    pthread_mutex_t lock;
    pthread_cond_t cond;
    int quit;
} splitter;

/* Fills b with the next lines. */
static void split_batch(splitter *S, batch *b)
{
    b->n = 0;
    b->status = 0;
    while (b->n < BATCH_ROWS && S->at < S->size) {
        const char *line = S->map + S->at, *nl = memchr(line, '\n', S->size - S->at);
        size_t n = nl ? (size_t)(nl - line) : S->size - S->at;
        if (n) { /* empty lines are skipped, as the CSV parser does */
            if (canon_row(line, n, S->ncols, S->lo, S->hi, &S->dc, &b->rows[b->n])) {
                b->status = FAST_MISS;
                break;
            }
            b->n++;
        }
        S->at += n + (nl != NULL);
    }
    if (!b->status && S->stop && *S->stop)
        b->status = STOPPED;
    b->end = S->at;
    b->last = S->at >= S->size;
    if (S->md) {
        EVP_DigestUpdate(S->md, S->map + S->hashed, S->at - S->hashed);
        S->hashed = S->at;
    }
}

static void *split_main(void *arg)
{
    splitter *S = arg;
    for (int k = 0;; k = (k + 1) % NBATCH) {
        batch *b = &S->b[k];
        pthread_mutex_lock(&S->lock);
        while (b->full && !S->quit)
            pthread_cond_wait(&S->cond, &S->lock);
        int quit = S->quit;
        pthread_mutex_unlock(&S->lock);
        if (quit)
            break;
        split_batch(S, b);
        pthread_mutex_lock(&S->lock);
        b->full = 1;
        pthread_cond_broadcast(&S->cond);
        pthread_mutex_unlock(&S->lock);
        if (b->status || b->last)
            break;
    }
    return NULL;
}

/* The fast path over a regular file mapped in memory (no copy into a read
 * buffer; pages behind the parser are unmapped as it goes, so the file does
 * not add to the resident size). RST_OK with the rows added to L and counted
 * in *rows; NOT_CANON when the header is not canonical or the file cannot be
 * mapped (nothing was read); FAST_MISS (L then needs a reset), STOPPED, or an
 * add_row or csv status. The header goes through p, for the schema. */
static int load_mapped(loader *L, csv_parser *p, int fd, size_t size, EVP_MD_CTX *md,
                       uint64_t *rows)
{
    char *map = mmap(NULL, size, PROT_READ, MAP_PRIVATE, fd, 0);
    if (map == MAP_FAILED)
        return NOT_CANON;
    madvise(map, size, MADV_SEQUENTIAL);
    int rc = RST_OK;
    const char *nl = memchr(map, '\n', size < READ_CHUNK ? size : READ_CHUNK);
    int ncols = nl ? canon_header(map, (size_t)(nl - map)) : 0;
    if (!ncols) {
        rc = NOT_CANON;
        goto out;
    }
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    size_t at = (size_t)(nl - map) + 1, dropped = 0;
    rc = csv_feed(p, map, at);
    if (rc != RST_OK)
        goto out;
    splitter S = {.map = map, .size = size, .at = at, .ncols = ncols, .stop = L->stop, .md = md};
    sales_parse_date(SALES_DEFAULT_MIN_DATE, 10, &S.lo);
    sales_parse_date(SALES_DEFAULT_MAX_DATE, 10, &S.hi);
    for (int k = 0; k < NBATCH; k++)
        S.b[k].rows = xmalloc(BATCH_ROWS * sizeof *S.b[k].rows);
    pthread_mutex_init(&S.lock, NULL);
    pthread_cond_init(&S.cond, NULL);
    pthread_t tid;
    int threaded = pthread_create(&tid, NULL, split_main, &S) == 0;
    for (int k = 0;; k = (k + 1) % NBATCH) {
        batch *b = &S.b[k];
        if (threaded) {
            pthread_mutex_lock(&S.lock);
            while (!b->full)
                pthread_cond_wait(&S.cond, &S.lock);
            pthread_mutex_unlock(&S.lock);
        } else {
            split_batch(&S, b); /* no thread: one batch at a time here */
        }
        for (size_t i = 0; i < b->n && rc == RST_OK; i++) {
            rc = add_row(L, &b->rows[i]);
            if (rc == RST_OK)
                (*rows)++;
        }
        if (rc == RST_OK)
            rc = b->status;
        size_t drop = b->end / page * page;
        if (drop > dropped) {
            madvise(map + dropped, drop - dropped, MADV_DONTNEED);
            dropped = drop;
        }
        int last = b->last;
        pthread_mutex_lock(&S.lock);
        b->full = 0;
        if (rc != RST_OK)
            S.quit = 1;
        pthread_cond_broadcast(&S.cond);
        pthread_mutex_unlock(&S.lock);
        if (rc != RST_OK || last)
            break;
    }
    if (threaded) {
        pthread_mutex_lock(&S.lock);
        S.quit = 1;
        pthread_cond_broadcast(&S.cond);
        pthread_mutex_unlock(&S.lock);
        pthread_join(tid, NULL);
    }
    pthread_mutex_destroy(&S.lock);
    pthread_cond_destroy(&S.cond);
    for (int k = 0; k < NBATCH; k++)
        free(S.b[k].rows);
out:
    munmap(map, size);
    return rc;
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
    return holidays_name(sales_country_name(country), y, m, d);
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

/* size: the dense build from the parsed rows: the series order, then each per-series and per-day
 * array with its votes; fifteen temporary arrays allocated and released on one path. */
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

/* size: open, then the parallel split of a mapped file or the streaming fallback, hashing the
 * same bytes; one release path. */
int train_data_load(const char *path, const train_data_options *o, train_data **out, char *err,
                    size_t errlen)
{
    *out = NULL;
    if (errlen)
        err[0] = '\0';
    loader L;
    loader_init(&L, o ? o->stop : NULL, err, errlen);
    const int hash = !(o && o->skip_sha256);
    int rc = RST_OK;
    csv_parser *p = NULL;
    char *buf = NULL;
    EVP_MD_CTX *md = NULL;
    uint64_t bytes = 0, rows = 0;
    size_t have = 0; /* bytes in buf not consumed yet (fast path: a line's start) */
    enum { UNDECIDED, FAST, GENERAL } mode = UNDECIDED;
    int ncols = 0;
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
    struct stat sb;
    if (fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode) && sb.st_size > 0) {
        rc = load_mapped(&L, p, fd, (size_t)sb.st_size, hash ? md : NULL, &rows);
        if (rc == RST_OK || (rc != NOT_CANON && rc != FAST_MISS)) {
            mode = FAST;
            bytes = (uint64_t)sb.st_size;
            goto done;
        }
        /* the general path, from the start */
        if (rc == FAST_MISS) {
            loader_free(&L);
            loader_init(&L, o ? o->stop : NULL, err, errlen);
        }
        csv_free(p);
        p = csv_new(NULL, on_record, &L);
        if (lseek(fd, 0, SEEK_SET) != 0 || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            rc = RST_EIO;
            goto out;
        }
        mode = GENERAL;
        rc = RST_OK;
    }
    buf = xmalloc(2 * READ_CHUNK);
    for (;;) {
        if (L.stop && *L.stop) {
            rc = STOPPED;
            break;
        }
        ssize_t got = read(fd, buf + have, READ_CHUNK);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0) {
            snprintf(err, errlen, "cannot read %s: %s", path, strerror(errno));
            rc = RST_EIO;
            goto out;
        }
        bytes += (uint64_t)got;
        if (hash)
            EVP_DigestUpdate(md, buf + have, (size_t)got);
        if (mode == GENERAL) {
            if (got == 0)
                break;
            rc = csv_feed(p, buf, (size_t)got);
            if (rc != RST_OK)
                break;
            continue;
        }
        have += (size_t)got;
        const int last = got == 0;
        if (mode == UNDECIDED) {
            const char *nl = memchr(buf, '\n', have);
            if (!nl && !last && have < READ_CHUNK)
                continue;
            size_t hl = nl ? (size_t)(nl - buf) : have;
            ncols = nl ? canon_header(buf, hl) : 0;
            if (!ncols) {
                mode = GENERAL;
                rc = csv_feed(p, buf, have);
                have = 0;
                if (rc != RST_OK || last)
                    break;
                continue;
            }
            /* the header through the parser: the same schema as the general path */
            mode = FAST;
            rc = csv_feed(p, buf, hl + 1);
            if (rc != RST_OK)
                break;
            memmove(buf, buf + hl + 1, have - hl - 1);
            have -= hl + 1;
        }
        size_t used = 0;
        rc = canon_lines(&L, buf, have, last, ncols, &rows, &used);
        if (rc == 0) {
            memmove(buf, buf + used, have - used);
            have -= used;
            if (have > READ_CHUNK) /* a line of more than 1 MiB is not canonical */
                rc = FAST_MISS;
        }
        if (rc == FAST_MISS) {
            /* the general path, from the start */
            loader_free(&L);
            loader_init(&L, o ? o->stop : NULL, err, errlen);
            csv_free(p);
            p = csv_new(NULL, on_record, &L);
            if (lseek(fd, 0, SEEK_SET) != 0 || !EVP_DigestInit_ex(md, EVP_sha256(), NULL)) {
                snprintf(err, errlen, "cannot read %s again: %s", path, strerror(errno));
                rc = RST_EIO;
                goto out;
            }
            bytes = 0;
            have = 0;
            mode = GENERAL;
            rc = RST_OK;
            continue;
        }
        if (rc != 0 || last)
            break;
    }
done:
    rc = finish(&L, p, rc, out, err, errlen);
    if (rc == RST_OK) {
        unsigned char h[EVP_MAX_MD_SIZE];
        unsigned hl = 0;
        EVP_DigestFinal_ex(md, h, &hl);
        for (unsigned i = 0; hash && i < hl && i < 32; i++)
            snprintf((*out)->sha256 + 2 * i, 3, "%02x", h[i]);
        (*out)->bytes = bytes;
        (*out)->rows = mode == FAST ? rows : csv_records(p) - 1;
    }
out:
    if (fd >= 0)
        close(fd);
    EVP_MD_CTX_free(md);
    csv_free(p);
    free(buf);
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
