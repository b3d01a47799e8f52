/* Schema kind "sales": maps a CSV header onto GloboJava's sales columns
 * (any case and spacing, with aliases), validates each data row, and writes
 * the canonical CSV. Pure functions over csv_record; no I/O. */
#ifndef ROASTERY_SALES_H
#define ROASTERY_SALES_H

#include "lib/csv.h"
#include "lib/util.h"

#include <jansson.h>
#include <stddef.h>
#include <stdint.h>

/* The canonical file's header (no line end). */
#define SALES_CANONICAL_HEADER                                                                     \
    "date,store_id,country,city,category,product,quantity,unit_price,total,weather,promotion,"     \
    "holiday"

#define SALES_DEFAULT_MIN_DATE "2000-01-01"
#define SALES_DEFAULT_MAX_DATE "2100-12-31"
#define SALES_MAX_TEXT_BYTES 200          /* store_id, city, product */
#define SALES_MAX_QUANTITY 1000000000LL   /* per row */
#define SALES_MAX_PRICE_CENTS 100000000LL /* 1,000,000.00 per unit */
#define SALES_MAX_ROW_ERRORS 16           /* errors reported for one row at most */
#define SALES_MAX_VALUE_BYTES 100         /* offending values are cut to this in JSON */

typedef enum {
    SALES_COUNTRY_USA = 0,
    SALES_COUNTRY_CANADA,
    SALES_COUNTRY_MEXICO,
    SALES_COUNTRY__N
} sales_country;

typedef enum {
    SALES_CATEGORY_COFFEE = 0,
    SALES_CATEGORY_PASTRY,
    SALES_CATEGORY_BEVERAGE,
    SALES_CATEGORY_MERCHANDISE,
    SALES_CATEGORY__N
} sales_category;

typedef enum {
    SALES_WEATHER_NONE = 0, /* empty or no weather column */
    SALES_WEATHER_SUNNY,
    SALES_WEATHER_RAINY,
    SALES_WEATHER_SNOWY,
    SALES_WEATHER_CLOUDY,
    SALES_WEATHER_HOT,
    SALES_WEATHER_COLD,
    SALES_WEATHER__N
} sales_weather;

/* Canonical spellings ("USA", "Coffee", "Sunny"; "" for SALES_WEATHER_NONE).
 * Static strings; NULL for out-of-range values. */
const char *sales_country_name(int c);
const char *sales_category_name(int c);
const char *sales_weather_name(int w);

/* Dates are days since 1970-01-01 (proleptic Gregorian). */
/* Parses exactly YYYY-MM-DD (a real calendar date). RST_OK or RST_EINVAL. */
int sales_parse_date(const char *s, size_t len, int32_t *days);
/* Writes YYYY-MM-DD and a NUL into out. */
void sales_format_date(int32_t days, char out[11]);

typedef struct {
    const char *s; /* borrowed from the csv_record; not NUL-terminated after trimming */
    size_t len;
} sales_str;

/* A valid row. Strings borrow from the csv_record given to sales_parse_row. */
typedef struct {
    int32_t date;
    sales_str store_id, city, product;
    sales_country country;
    sales_category category;
    int64_t quantity;
    int64_t unit_price_cents;
    int64_t total_cents; /* as given, or quantity x price when absent */
    int total_given;     /* 0: total was absent and recomputed */
    sales_weather weather;
    int promotion; /* 1 Yes, 0 No, -1 absent (no column or empty) */
    int holiday;   /* same */
} sales_row;

/* One problem with one row. Pointers are borrowed: column from the schema,
 * value from the csv_record (valid during its callback). */
typedef struct {
    uint64_t line;      /* physical line where the record starts */
    const char *column; /* the header as the user wrote it, or "(row)" */
    const char *field;  /* canonical name: "quantity", "date", ... or "(row)" */
    const char *value;  /* the offending value as sent (may be long, may hold any bytes) */
    size_t value_len;
    char reason[128]; /* e.g. "must be a whole number >= 0" */
} sales_error;

typedef struct {
    const char *min_date; /* YYYY-MM-DD inclusive; NULL = SALES_DEFAULT_MIN_DATE */
    const char *max_date; /* NULL = SALES_DEFAULT_MAX_DATE */
} sales_options;

/* Checks the options: RST_OK, or RST_EINVAL when a date is not YYYY-MM-DD or
 * min > max. o may be NULL. */
int sales_options_check(const sales_options *o);

typedef struct sales_schema sales_schema;

/* Maps a header record. Returns RST_OK with *out (new: caller frees with
 * sales_schema_free), or RST_EINVAL with *out NULL when required columns are
 * missing, two columns map to the same field, or o is invalid.
 * *report (new: caller json_decref's; always set) describes the mapping:
 *   {"columns": {"store_id": "Store ID", ...},       canonical field -> header as sent
 *    "ignored_columns": ["card", ...],                unknown columns, not used
 *    "missing_columns": ["country", ...],             required and not found
 *    "warnings": ["..."],
 *    "error": "missing required columns: country, city"}    only on failure */
int sales_schema_new(const sales_options *o, const csv_record *header, sales_schema **out,
                     json_t **report);

/* Number of columns in the header. */
size_t sales_schema_width(const sales_schema *s);

/* NULL-safe. */
void sales_schema_free(sales_schema *s);

/* Validates and converts one data record. Returns the number of errors written
 * to errs (at most max_errs; 0 means *row is valid and filled). */
size_t sales_parse_row(const sales_schema *s, const csv_record *rec, sales_row *row,
                       sales_error *errs, size_t max_errs);

/* new: {"line": 12, "column": "Quantity Sold", "field": "quantity", "value": "-3",
 * "reason": "..."} (+ "value_truncated": true when the value was longer than
 * SALES_MAX_VALUE_BYTES). The value is made valid UTF-8 (bad bytes and NUL
 * become U+FFFD) and cut at a character boundary. */
json_t *sales_error_json(const sales_error *e);

/* Appends SALES_CANONICAL_HEADER and "\n". RST_OK or RST_ETOOBIG (buf limit). */
int sales_write_header(buf_t *b);
/* Appends one canonical line (ends with "\n"). Text cells (store_id, city,
 * product) are spreadsheet-safe (csvout_put_text: "'=x" for =x), and
 * sales_parse_row reads them back unchanged. RST_OK or RST_ETOOBIG. */
int sales_write_row(buf_t *b, const sales_row *r);

/* Appends s as one CSV field, quoted when it holds a comma, quote, CR or LF or
 * starts or ends with a space. For files only machines read (daily.csv, COPY
 * input); people's files use csvout_text. RST_OK or RST_ETOOBIG. */
int sales_write_field(buf_t *b, const char *s, size_t len);

#endif
