/* GloboJava's synthetic sales history: a seeded generative model (stores in
 * real cities, seasonality, holidays, weather, promotions, Poisson counts)
 * streamed as CSV. The model is described in docs/generative-model.md. */
#ifndef ROASTERY_SALESGEN_H
#define ROASTERY_SALESGEN_H

#include <stddef.h>
#include <stdint.h>

#define SALESGEN_MAX_STORES 2000
#define SALESGEN_MAX_PRODUCTS 24
#define SALESGEN_MIN_DATE "1970-01-01"
#define SALESGEN_MAX_DATE "2100-12-31"

/* The article's sample (--seed-sample). */
#define SALESGEN_SAMPLE_ORDERS 10000
#define SALESGEN_SAMPLE_PRODUCTS 6
#define SALESGEN_SAMPLE_CUSTOMERS 1000
#define SALESGEN_SAMPLE_START "2022-01-01"
#define SALESGEN_SAMPLE_END "2023-12-31"

typedef struct {
    int stores;        /* default 12; stores in real cities of the USA, Canada and Mexico */
    int products;      /* default 12, across Coffee, Pastry, Beverage, Merchandise */
    const char *start; /* YYYY-MM-DD, default 2022-01-01 (NULL = default); borrowed */
    const char *end;   /* inclusive, default 2023-12-31 (NULL = default); borrowed */
    uint64_t seed;     /* default 42: same options + seed = same bytes */
    int seed_sample;   /* reproduce the article's sample: 10,000 orders over 2022-2023,
                          6 coffee products, 1,000 customers; products, start and end are
                          then ignored */
    int date_columns;  /* 0: one ISO "Date" column; 1: Day, Month, Year columns as in the article */
} salesgen_options;

/* One store of the generated chain, as the registry of stores should know it. */
typedef struct {
    char id[16];          /* US-SEA-001 */
    const char *city;     /* static strings */
    const char *country;  /* USA, Canada or Mexico */
    const char *timezone; /* IANA, e.g. America/Los_Angeles */
} salesgen_store;

/* Store number index (0-based, < SALESGEN_MAX_STORES) of every generated
 * file: the same whatever the seed. RST_OK, or RST_EINVAL for a bad index. */
int salesgen_store_info(int index, salesgen_store *out);

/* Fills o with the defaults above. */
void salesgen_defaults(salesgen_options *o);

/* Writes CSV (header + rows) through write_fn (return 0 = ok, non-zero aborts);
 * data is borrowed: valid only during the call. arg is passed through.
 * Returns RST_OK, RST_EINVAL with a one-line reason naming the flag in err for
 * bad options (nothing is written), or RST_EIO when write_fn failed.
 * Streams: memory stays flat whatever the date range. rows_out (may be NULL)
 * gets the number of data rows written. err may be NULL when errlen is 0. */
int salesgen_write(const salesgen_options *o,
                   int (*write_fn)(void *arg, const char *data, size_t len), void *arg,
                   uint64_t *rows_out, char *err, size_t errlen);

/* Parses argv of "roastery generate-sales [--stores N] [--products N] [--start D]
 * [--end D] [--seed N] [--seed-sample] [--date-columns] [--output FILE]" and runs
 * it (stdout by default). Returns the process exit status (0 ok, 2 usage error
 * with a one-line message naming the flag, 1 I/O error). argv[0] is
 * "generate-sales"; argv is borrowed. Prints usage on --help. */
int salesgen_main(int argc, char **argv);

#endif
