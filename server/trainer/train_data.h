/* The trainer's view of a sales file: a canonical (or any "sales"-mapped) CSV
 * streamed once into dense daily series, one per store x product, zero-filled
 * over the whole date range, with the exogenous inputs the features need. */
#ifndef ROASTERY_TRAIN_DATA_H
#define ROASTERY_TRAIN_DATA_H

#include <signal.h>
#include <stddef.h>
#include <stdint.h>

/* Hard limits, checked before the dense arrays are allocated. */
#define TRAIN_DATA_MAX_ROWS 400000000ULL   /* data rows in the file */
#define TRAIN_DATA_MAX_POINTS 600000000ULL /* series x days */
#define TRAIN_DATA_MAX_KEYS 1000000        /* distinct stores, products or cities */
#define TRAIN_DATA_HOLIDAY_CLIP 7          /* days to next / since last holiday */

/* Holiday name codes: 0 none, 1 a holiday the data marks that the calendar
 * does not know, then the calendar's names in alphabetical order. */
#define TRAIN_DATA_HOLIDAY_NONE 0
#define TRAIN_DATA_HOLIDAY_OTHER 1

/* Everything is indexed by position: stores, products and cities are sorted by
 * name (so codes do not depend on the order of the rows), series by (store,
 * product), days from first_day. Per-day arrays are row-major by series or
 * store: a[i * ndays + d]. All members are owned by the struct. */
typedef struct {
    int32_t first_day; /* days since 1970-01-01 of day 0 */
    int32_t ndays;
    size_t nstores, nproducts, ncities, nseries, nholidays;

    char **store_ids;          /* nstores */
    uint8_t *store_country;    /* sales_country */
    uint32_t *store_city;      /* index into city_names */
    char **product_names;      /* nproducts */
    uint8_t *product_category; /* sales_category */
    char **city_names;         /* ncities */
    char **holiday_names;      /* nholidays: "none", "other", then calendar names */

    uint32_t *series_store;   /* nseries */
    uint32_t *series_product; /* nseries */
    float *qty;               /* nseries x ndays: units sold (sum of the day's rows, 0 if none) */
    float *price;             /* nseries x ndays: unit price, carried over days without rows */
    uint8_t *promo; /* nseries x ndays: 1 promotion (the series' rows, else the store's) */

    uint8_t *holiday;       /* nstores x ndays: 1 holiday (the data's column, else the calendar) */
    uint16_t *holiday_name; /* nstores x ndays: code into holiday_names */
    uint8_t *holiday_next;  /* nstores x ndays: days to the next holiday, 0..CLIP */
    uint8_t *holiday_last;  /* nstores x ndays: days since the last holiday, 0..CLIP */
    uint8_t *weather;       /* nstores x ndays: sales_weather (the store's rows, else its city's) */

    /* lineage of the input */
    uint64_t rows;       /* data rows read */
    uint64_t bytes;      /* bytes read */
    char sha256[65];     /* of the whole file, hex */
    uint64_t mismatches; /* rows whose store had another country or city before (first kept) */
} train_data;

typedef struct {
    /* Checked between chunks: loading stops with RST_EUNAVAIL once it is non-zero.
     * May be NULL. Borrowed. */
    volatile sig_atomic_t *stop;
    int skip_sha256; /* 1: leave sha256 empty (a caller that does not report it) */
} train_data_options;

/* Reads path. Returns RST_OK with *out (new: caller frees with train_data_free);
 * RST_EIO when the file cannot be read, RST_EINVAL for a file that is not valid
 * sales CSV or has no data rows, RST_ETOOBIG when a limit above is passed,
 * RST_ENOMEM when the data does not fit in memory, RST_EUNAVAIL when stopped.
 * err gets one line for the user. o may be NULL. */
int train_data_load(const char *path, const train_data_options *o, train_data **out, char *err,
                    size_t errlen);

/* Same from memory (tests). data is borrowed. */
int train_data_load_buffer(const char *data, size_t len, train_data **out, char *err,
                           size_t errlen);

/* NULL-safe. */
void train_data_free(train_data *d);

/* Index of a store / product / city / holiday name, or -1. */
long train_data_find(char *const *names, size_t n, const char *name);

#endif
