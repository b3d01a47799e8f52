/* A streaming profile of canonical sales rows in bounded memory: counts, date
 * range, distinct values, missing values, numeric summaries with quantiles,
 * and daily totals per (date, store, product) for charts and training. */
#ifndef ROASTERY_PROFILE_H
#define ROASTERY_PROFILE_H

#include "datasets/sales.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

#define PROFILE_DEFAULT_MAX_DISTINCT ((size_t)10000)
#define PROFILE_DEFAULT_EXACT_QUANTILE_ROWS ((size_t)100000)
#define PROFILE_DEFAULT_MAX_DAILY_KEYS ((size_t)2000000)

/* Bounds; a 0 member takes the default above. */
typedef struct {
    size_t max_distinct;        /* values listed per column (city: also values tracked) */
    size_t exact_quantile_rows; /* quantiles are exact up to this many rows, then this is the
                                   size of a uniform reservoir sample */
    size_t max_daily_keys;      /* (date, store, product) keys aggregated; later keys dropped */
} profile_limits;

typedef struct profile profile_t;

/* new: caller frees with profile_free. limits may be NULL. */
profile_t *profile_new(const profile_limits *limits);

/* Adds one valid row; its strings are copied when kept. */
void profile_add(profile_t *p, const sales_row *r);

uint64_t profile_rows(const profile_t *p);

/* One aggregated (date, store, product). Strings are NUL-terminated and
 * borrowed: valid until profile_free. */
typedef struct {
    int32_t day;   /* days since 1970-01-01 */
    char date[11]; /* the same, YYYY-MM-DD */
    const char *store_id;
    const char *product;
    int64_t quantity;    /* sum */
    int64_t total_cents; /* sum */
    uint64_t rows;       /* rows aggregated */
} profile_daily;

/* Number of keys, and 1 when keys were dropped at max_daily_keys. */
size_t profile_daily_count(const profile_t *p);
int profile_daily_truncated(const profile_t *p);

/* Calls fn for every key in first-seen order; stops at and returns fn's first
 * non-zero value, else RST_OK. d is valid only during the call. */
int profile_daily_foreach(const profile_t *p, int (*fn)(void *arg, const profile_daily *d),
                          void *arg);

/* Writes the daily totals as CSV, ready for COPY ... (FORMAT csv, HEADER):
 *   date,store_id,product,quantity,total,rows
 *   2022-01-01,S1,Caffe Latte,12,45.60,3
 * in first-seen order, through write in pieces of about 256 KiB. Returns
 * RST_OK or write's first non-zero status. */
int profile_write_daily_csv(const profile_t *p,
                            int (*write)(void *arg, const char *data, size_t len), void *arg);

enum {
    PROFILE_JSON_DAILY = 1, /* include the "daily_totals" array (up to PROFILE_JSON_MAX_DAILY) */
};

/* Beyond this many keys the JSON carries no "daily_totals" array at all (and
 * "daily_totals_info.in_json" is false): use profile_daily_foreach instead. */
#define PROFILE_JSON_MAX_DAILY ((size_t)50000)

/* new: caller json_decref's. Same as profile_to_json_ex(p, PROFILE_JSON_DAILY).
 *
 * Shape (money is a decimal string with 2 decimals, exact; counts are integers):
 * {
 *   "rows": 10000,
 *   "date_range": {"min": "2022-01-01", "max": "2023-12-31", "days": 730} | null,
 *   "distinct": {                       for store_id, product, country, city, category
 *     "store_id": {"count": 12,         distinct values seen (exact while "more" is false)
 *                  "more": false,       true: more distinct values than tracked or listed
 *                  "values": [{"value": "S1", "count": 900}, ...]}   most frequent first,
 *                                       at most max_distinct
 *     ...},
 *   "missing": {"date": 0, ..., "weather": 12, "promotion": 0, "holiday": 3, "total": 5},
 *                                       empty in the input ("total": recomputed)
 *   "numeric": {
 *     "quantity":   {"min": 1, "max": 9, "sum": 49800, "mean": "4.98",   (mean: 2 decimals)
 *                    "p05": 1, "p25": 3, "p50": 5, "p75": 7, "p95": 9},
 *     "unit_price": {"min": "2.50", "max": "5.00", "sum": "...", "mean": "3.41",
 *                    "p05": "2.50", ...},
 *     "total":      {same as unit_price}},        (absent when rows is 0)
 *   "quantiles": {"method": "exact" | "reservoir_sample", "sample_size": 100000,
 *                 "rows": 2500000, "rank": "nearest-rank"},
 *   "category_frequencies": {"Coffee": 4100, "Pastry": 2500, "Beverage": 2400,
 *                            "Merchandise": 1000},
 *   "daily_totals_info": {"keys": 8760, "truncated": false, "max_keys": 2000000,
 *                         "rows_not_aggregated": 0, "in_json": true},
 *   "daily_totals": [{"date": "2022-01-01", "store_id": "S1", "product": "Caffe Latte",
 *                     "quantity": 12, "total": "45.60", "rows": 3}, ...]
 *                   first-seen order; only with PROFILE_JSON_DAILY and at most
 *                   PROFILE_JSON_MAX_DAILY keys, else absent
 * }
 */
json_t *profile_to_json(const profile_t *p);
json_t *profile_to_json_ex(const profile_t *p, unsigned flags);

/* NULL-safe. */
void profile_free(profile_t *p);

#endif
