/* The "sales" schema: header aliases, row rules and the canonical CSV line.
 * Money is parsed into integer cents (never through floating point) so that
 * totals compare exactly. */
#include "datasets/sales.h"
#include "lib/csvout.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    F_STORE,
    F_DATE,
    F_DAY,
    F_MONTH,
    F_YEAR,
    F_COUNTRY,
    F_CITY,
    F_CATEGORY,
    F_PRODUCT,
    F_QUANTITY,
    F_PRICE,
    F_TOTAL,
    F_WEATHER,
    F_PROMOTION,
    F_HOLIDAY,
    F_CUSTOMER,
    F__N
};

static const char *const field_names[F__N] = {
    "store_id", "date",     "day",        "month", "year",    "country",   "city",    "category",
    "product",  "quantity", "unit_price", "total", "weather", "promotion", "holiday", "customer_id",
};

/* Header spellings after normalising (lower case, letters and digits only). */
static const struct {
    const char *name;
    int field;
} aliases[] = {
    {"storeid", F_STORE},
    {"store", F_STORE},
    {"storeno", F_STORE},
    {"storenumber", F_STORE},
    {"storecode", F_STORE},
    {"date", F_DATE},
    {"saledate", F_DATE},
    {"salesdate", F_DATE},
    {"orderdate", F_DATE},
    {"transactiondate", F_DATE},
    {"day", F_DAY},
    {"month", F_MONTH},
    {"year", F_YEAR},
    {"country", F_COUNTRY},
    {"city", F_CITY},
    {"productcategory", F_CATEGORY},
    {"category", F_CATEGORY},
    {"product", F_PRODUCT},
    {"productname", F_PRODUCT},
    {"item", F_PRODUCT},
    {"itemname", F_PRODUCT},
    {"quantitysold", F_QUANTITY},
    {"quantity", F_QUANTITY},
    {"qty", F_QUANTITY},
    {"qtysold", F_QUANTITY},
    {"units", F_QUANTITY},
    {"unitssold", F_QUANTITY},
    {"price", F_PRICE},
    {"unitprice", F_PRICE},
    {"priceperunit", F_PRICE},
    {"totalsale", F_TOTAL},
    {"total", F_TOTAL},
    {"totalsales", F_TOTAL},
    {"saletotal", F_TOTAL},
    {"totalamount", F_TOTAL},
    {"weather", F_WEATHER},
    {"promotion", F_PROMOTION},
    {"promo", F_PROMOTION},
    {"onpromotion", F_PROMOTION},
    {"holiday", F_HOLIDAY},
    {"isholiday", F_HOLIDAY},
    {"customerid", F_CUSTOMER},
    {"customer", F_CUSTOMER},
};

struct sales_schema {
    int idx[F__N]; /* column of each field, -1 when absent */
    size_t width;
    int use_dmy;
    int32_t min_day, max_day;
    char min_iso[11], max_iso[11];
    char *names[F__N]; /* headers as sent */
};

static const char *const country_names[SALES_COUNTRY__N] = {"USA", "Canada", "Mexico"};
static const char *const category_names[SALES_CATEGORY__N] = {"Coffee", "Pastry", "Beverage",
                                                              "Merchandise"};
static const char *const weather_names[SALES_WEATHER__N] = {"",       "Sunny", "Rainy", "Snowy",
                                                            "Cloudy", "Hot",   "Cold"};

const char *sales_country_name(int c)
{
    return c >= 0 && c < SALES_COUNTRY__N ? country_names[c] : NULL;
}

const char *sales_category_name(int c)
{
    return c >= 0 && c < SALES_CATEGORY__N ? category_names[c] : NULL;
}

const char *sales_weather_name(int w)
{
    return w >= 0 && w < SALES_WEATHER__N ? weather_names[w] : NULL;
}

/* ---- dates (calendar arithmetic in util.c) -------------------------------- */

static int real_date(int y, int m, int d)
{
    static const int mdays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (y < 1 || y > 9999 || m < 1 || m > 12 || d < 1)
        return 0;
    int leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    return d <= mdays[m - 1] + (m == 2 && leap);
}

static int digits(const char *s, size_t n, int *out)
{
    int v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

/* 0 valid, -1 not YYYY-MM-DD, -2 not a real date. */
static int parse_iso(const char *s, size_t n, int32_t *days)
{
    int y, m, d;
    if (n != 10 || s[4] != '-' || s[7] != '-' || digits(s, 4, &y) || digits(s + 5, 2, &m) ||
        digits(s + 8, 2, &d))
        return -1;
    if (!real_date(y, m, d))
        return -2;
    *days = util_days_from_civil(y, m, d);
    return 0;
}

int sales_parse_date(const char *s, size_t len, int32_t *days)
{
    return s && parse_iso(s, len, days) == 0 ? RST_OK : RST_EINVAL;
}

static void put2(char *o, int v)
{
    o[0] = (char)('0' + v / 10 % 10);
    o[1] = (char)('0' + v % 10);
}

void sales_format_date(int32_t days, char out[11])
{
    int y, m, d;
    util_civil_from_days(days, &y, &m, &d);
    if (y < 0 || y > 9999)
        y = 0;
    put2(out, y / 100);
    put2(out + 2, y % 100);
    out[4] = '-';
    put2(out + 5, m);
    out[7] = '-';
    put2(out + 8, d);
    out[10] = '\0';
}

/* ---- small text helpers ----------------------------------------------------- */

static const char *trim(const char *s, size_t n, size_t *out_len)
{
    while (n && (s[0] == ' ' || s[0] == '\t')) {
        s++;
        n--;
    }
    while (n && (s[n - 1] == ' ' || s[n - 1] == '\t'))
        n--;
    *out_len = n;
    return s;
}

/* Lower-cases ASCII and Latin-1 capitals (as UTF-8, e.g. "É" -> "é"), dropping
 * dots; 0 when it does not fit. */
static size_t fold(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c == '.')
            continue;
        if (o + 1 >= cap)
            return 0;
        if (c >= 'A' && c <= 'Z')
            c = (unsigned char)(c + 32);
        else if (c == 0xC3 && i + 1 < n) {
            unsigned char c2 = (unsigned char)s[i + 1];
            if (c2 >= 0x80 && c2 <= 0x9E && c2 != 0x97)
                c2 = (unsigned char)(c2 + 0x20);
            if (o + 2 >= cap)
                return 0;
            out[o++] = (char)c;
            out[o++] = (char)c2;
            i++;
            continue;
        }
        out[o++] = (char)c;
    }
    out[o] = '\0';
    return o;
}

/* Header normal form: lower-case letters and digits only. */
static void header_key(const char *s, size_t n, char *out, size_t cap)
{
    size_t o = 0;
    for (size_t i = 0; i < n && o + 1 < cap; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            out[o++] = (char)(c + 32);
        else if ((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9'))
            out[o++] = c;
    }
    out[o] = '\0';
}

typedef struct {
    const char *word;
    int value;
} word_map;

static int lookup(const word_map *m, size_t n, const char *s, size_t len)
{
    char buf[40];
    if (!fold(s, len, buf, sizeof buf))
        return -1;
    for (size_t i = 0; i < n; i++)
        if (!strcmp(buf, m[i].word))
            return m[i].value;
    return -1;
}

static const word_map countries[] = {
    {"usa", SALES_COUNTRY_USA},           {"us", SALES_COUNTRY_USA},
    {"united states", SALES_COUNTRY_USA}, {"united states of america", SALES_COUNTRY_USA},
    {"america", SALES_COUNTRY_USA},       {"canada", SALES_COUNTRY_CANADA},
    {"ca", SALES_COUNTRY_CANADA},         {"can", SALES_COUNTRY_CANADA},
    {"mexico", SALES_COUNTRY_MEXICO},     {"m\xc3\xa9xico", SALES_COUNTRY_MEXICO},
    {"mx", SALES_COUNTRY_MEXICO},         {"mex", SALES_COUNTRY_MEXICO},
};

static const word_map categories[] = {
    {"coffee", SALES_CATEGORY_COFFEE},      {"pastry", SALES_CATEGORY_PASTRY},
    {"pastries", SALES_CATEGORY_PASTRY},    {"beverage", SALES_CATEGORY_BEVERAGE},
    {"beverages", SALES_CATEGORY_BEVERAGE}, {"merchandise", SALES_CATEGORY_MERCHANDISE},
    {"merch", SALES_CATEGORY_MERCHANDISE},
};

static const word_map weathers[] = {
    {"sunny", SALES_WEATHER_SUNNY}, {"rainy", SALES_WEATHER_RAINY},
    {"snowy", SALES_WEATHER_SNOWY}, {"cloudy", SALES_WEATHER_CLOUDY},
    {"hot", SALES_WEATHER_HOT},     {"cold", SALES_WEATHER_COLD},
};

static const word_map flags[] = {
    {"yes", 1}, {"y", 1}, {"true", 1}, {"1", 1}, {"no", 0}, {"n", 0}, {"false", 0}, {"0", 0},
};

static const word_map months[] = {
    {"january", 1},   {"jan", 1},   {"february", 2},  {"feb", 2},      {"march", 3},
    {"mar", 3},       {"april", 4}, {"apr", 4},       {"may", 5},      {"june", 6},
    {"jun", 6},       {"july", 7},  {"jul", 7},       {"august", 8},   {"aug", 8},
    {"september", 9}, {"sep", 9},   {"sept", 9},      {"october", 10}, {"oct", 10},
    {"november", 11}, {"nov", 11},  {"december", 12}, {"dec", 12},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

/* [+-]digits[.digits] or [+-].digits. *whole saturates; *cents holds the first
 * two decimals; *excess is 1 when a later decimal is not zero. 0 or -1. */
static int parse_decimal(const char *s, size_t n, int *neg, int64_t *whole, int64_t *cents,
                         int *excess)
{
    size_t i = 0;
    int nd = 0;
    *neg = 0;
    *whole = 0;
    *cents = 0;
    *excess = 0;
    if (i < n && (s[i] == '-' || s[i] == '+'))
        *neg = s[i++] == '-';
    for (; i < n && s[i] >= '0' && s[i] <= '9'; i++, nd++)
        if (*whole < 1000000000000000LL)
            *whole = *whole * 10 + (s[i] - '0');
        else
            *whole = 10000000000000000LL; /* far past every limit */
    if (i < n && s[i] == '.') {
        i++;
        for (int k = 0; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++, nd++) {
            if (k < 2)
                *cents += (s[i] - '0') * (k == 0 ? 10 : 1);
            else if (s[i] != '0')
                *excess = 1;
        }
    }
    return nd && i == n ? 0 : -1;
}

static void cents_text(int64_t c, char *out, size_t cap)
{
    snprintf(out, cap, "%lld.%02lld", (long long)(c / 100), (long long)(c % 100));
}

/* ---- header mapping -------------------------------------------------------- */

static int options_days(const sales_options *o, int32_t *lo, int32_t *hi)
{
    const char *a = o && o->min_date ? o->min_date : SALES_DEFAULT_MIN_DATE;
    const char *b = o && o->max_date ? o->max_date : SALES_DEFAULT_MAX_DATE;
    if (parse_iso(a, strlen(a), lo) || parse_iso(b, strlen(b), hi) || *lo > *hi)
        return RST_EINVAL;
    return RST_OK;
}

int sales_options_check(const sales_options *o)
{
    int32_t lo, hi;
    return options_days(o, &lo, &hi);
}

/* Appends "a, b" style lists. */
static void list_add(buf_t *b, const char *s)
{
    if (b->len)
        buf_puts(b, ", ");
    buf_puts(b, s);
}

static void add_missing(json_t *missing, buf_t *msg, const char *name)
{
    json_array_append_new(missing, json_string(name));
    list_add(msg, name);
}

static json_t *text_json(const char *s, size_t n)
{
    sales_error e = {.value = s, .value_len = n};
    json_t *j = sales_error_json(&e);
    json_t *v = json_incref(json_object_get(j, "value"));
    json_decref(j);
    return v;
}

int sales_schema_new(const sales_options *o, const csv_record *header, sales_schema **out,
                     json_t **report)
{
    sales_schema *s = xcalloc(1, sizeof *s);
    json_t *rep = json_object(), *cols = json_object(), *ignored = json_array(),
           *missing = json_array(), *warnings = json_array();
    buf_t err, miss;
    buf_init(&err, 4096);
    buf_init(&miss, 4096);
    int rc = RST_OK;
    *out = NULL;
    for (int f = 0; f < F__N; f++)
        s->idx[f] = -1;
    s->width = header->count;

    if (options_days(o, &s->min_day, &s->max_day)) {
        list_add(&err, "the accepted date range is invalid");
        rc = RST_EINVAL;
    }
    sales_format_date(s->min_day, s->min_iso);
    sales_format_date(s->max_day, s->max_iso);

    for (size_t i = 0; i < header->count; i++) {
        size_t n;
        const char *h = trim(header->fields[i].data, header->fields[i].len, &n);
        char key[48];
        header_key(h, n, key, sizeof key);
        int f = -1;
        for (size_t a = 0; a < COUNT(aliases) && n < 64; a++)
            if (!strcmp(key, aliases[a].name)) {
                f = aliases[a].field;
                break;
            }
        if (f < 0) {
            json_array_append_new(ignored, text_json(h, n));
            char *w = n ? NULL : xasprintf("column %zu has no name and was ignored", i + 1);
            if (w)
                json_array_append_new(warnings, json_string(w));
            free(w);
            continue;
        }
        if (s->idx[f] >= 0) {
            char *m = xasprintf("columns \"%s\" and \"%.*s\" both map to %s", s->names[f],
                                (int)(n > 60 ? 60 : n), h, field_names[f]);
            list_add(&err, m);
            free(m);
            rc = RST_EINVAL;
            continue;
        }
        s->idx[f] = (int)i;
        s->names[f] = xstrndup(h, n);
        json_object_set_new(cols, field_names[f], text_json(h, n));
    }

    if (s->idx[F_DATE] >= 0) {
        for (int f = F_DAY; f <= F_YEAR; f++)
            if (s->idx[f] >= 0) {
                char *w = xasprintf("column \"%s\" is ignored: the date comes from \"%s\"",
                                    s->names[f], s->names[F_DATE]);
                json_array_append_new(warnings, json_string(w));
                free(w);
                json_object_del(cols, field_names[f]);
                s->idx[f] = -1;
            }
    } else if (s->idx[F_DAY] < 0 && s->idx[F_MONTH] < 0 && s->idx[F_YEAR] < 0) {
        add_missing(missing, &miss, "date");
    } else {
        s->use_dmy = 1;
        for (int f = F_DAY; f <= F_YEAR; f++)
            if (s->idx[f] < 0)
                add_missing(missing, &miss, field_names[f]);
    }
    static const int required[] = {F_STORE,   F_COUNTRY,  F_CITY, F_CATEGORY,
                                   F_PRODUCT, F_QUANTITY, F_PRICE};
    for (size_t r = 0; r < COUNT(required); r++)
        if (s->idx[required[r]] < 0)
            add_missing(missing, &miss, field_names[required[r]]);
    if (s->idx[F_CUSTOMER] >= 0)
        json_array_append_new(warnings,
                              json_string("the customer id column is recognised but not part of "
                                          "the canonical file"));
    if (miss.len) {
        /* the missing columns lead the message */
        buf_t all;
        buf_init(&all, 8192);
        buf_printf(&all, "missing required columns: %s", miss.data);
        if (err.len)
            buf_printf(&all, "; %s", err.data);
        buf_free(&err);
        err = all;
        rc = RST_EINVAL;
    }

    json_object_set_new(rep, "columns", cols);
    json_object_set_new(rep, "ignored_columns", ignored);
    json_object_set_new(rep, "missing_columns", missing);
    json_object_set_new(rep, "warnings", warnings);
    if (rc)
        json_object_set_new(rep, "error", json_string(err.data ? err.data : "invalid header"));
    *report = rep;
    buf_free(&err);
    buf_free(&miss);
    if (rc) {
        sales_schema_free(s);
        return rc;
    }
    *out = s;
    return RST_OK;
}

size_t sales_schema_width(const sales_schema *s)
{
    return s->width;
}

void sales_schema_free(sales_schema *s)
{
    if (!s)
        return;
    for (int f = 0; f < F__N; f++)
        free(s->names[f]);
    free(s);
}

/* ---- rows ------------------------------------------------------------------- */

typedef struct {
    const sales_schema *s;
    const csv_record *rec;
    sales_error *errs;
    size_t n, max;
} row_ctx;

static void row_err(row_ctx *c, int f, const char *v, size_t vlen, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static void row_err(row_ctx *c, int f, const char *v, size_t vlen, const char *fmt, ...)
{
    if (c->n >= c->max) {
        c->n++;
        return;
    }
    sales_error *e = &c->errs[c->n++];
    e->line = c->rec->line;
    e->column = f >= 0 ? c->s->names[f] : "(row)";
    e->field = f >= 0 ? field_names[f] : "(row)";
    e->value = v;
    e->value_len = vlen;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(e->reason, sizeof e->reason, fmt, ap);
    va_end(ap);
}

/* The trimmed value of field f ("" when the column is absent). */
static const char *val(const row_ctx *c, int f, size_t *len)
{
    if (c->s->idx[f] < 0) {
        *len = 0;
        return "";
    }
    const csv_field *x = &c->rec->fields[c->s->idx[f]];
    return trim(x->data, x->len, len);
}

static int text_field(row_ctx *c, int f, sales_str *out)
{
    size_t n;
    const char *v = val(c, f, &n);
    /* our own exports guard would-be formulas ("'=x"): read them back as given */
    size_t skip = csvout_unguard(v, n);
    v += skip;
    n -= skip;
    out->s = v;
    out->len = n;
    if (!n) {
        row_err(c, f, v, n, "must not be empty");
        return -1;
    }
    if (n > SALES_MAX_TEXT_BYTES) {
        row_err(c, f, v, n, "is longer than %d bytes", SALES_MAX_TEXT_BYTES);
        return -1;
    }
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)v[i] < 0x20 || v[i] == 0x7F) {
            row_err(c, f, v, n, "contains a control character");
            return -1;
        }
    return 0;
}

static int enum_field(row_ctx *c, int f, const word_map *m, size_t count, int absent,
                      const char *expect, int *out)
{
    size_t n;
    const char *v = val(c, f, &n);
    if (!n && absent != -2) {
        *out = absent;
        return 0;
    }
    int x = lookup(m, count, v, n);
    if (x < 0) {
        row_err(c, f, v, n, "%s", expect);
        return -1;
    }
    *out = x;
    return 0;
}

/* Whole number in [lo, hi]; "12.0" counts as 12. 0 or -1 (error reported;
 * too_big, when given, is the reason for a number above hi). */
static int int_field(row_ctx *c, int f, int64_t lo, int64_t hi, const char *what,
                     const char *too_big, int64_t *out)
{
    size_t n;
    const char *v = val(c, f, &n);
    int neg, excess;
    int64_t whole, frac;
    if (parse_decimal(v, n, &neg, &whole, &frac, &excess) || frac || excess || (neg && whole)) {
        row_err(c, f, v, n, "must be %s", what);
        return -1;
    }
    if (whole > hi && too_big) {
        row_err(c, f, v, n, "%s", too_big);
        return -1;
    }
    if (whole < lo || whole > hi) {
        row_err(c, f, v, n, "must be %s", what);
        return -1;
    }
    *out = whole;
    return 0;
}

static int money_field(row_ctx *c, int f, int64_t max_cents, int64_t *out)
{
    size_t n;
    const char *v = val(c, f, &n);
    int neg, excess;
    int64_t whole, frac;
    if (parse_decimal(v, n, &neg, &whole, &frac, &excess)) {
        row_err(c, f, v, n, "must be an amount like 3.50");
        return -1;
    }
    if (neg && (whole || frac || excess)) {
        row_err(c, f, v, n, "must not be negative");
        return -1;
    }
    if (excess) {
        row_err(c, f, v, n, "has more than 2 decimals");
        return -1;
    }
    if (whole > max_cents / 100 || whole * 100 + frac > max_cents) {
        char m[32];
        cents_text(max_cents, m, sizeof m);
        row_err(c, f, v, n, "is larger than %s", m);
        return -1;
    }
    *out = whole * 100 + frac;
    return 0;
}

static int date_fields(row_ctx *c, int32_t *out)
{
    const sales_schema *s = c->s;
    size_t n;
    const char *v;
    int32_t days = 0;
    int ymd[3] = {0, 0, 0};
    if (!s->use_dmy) {
        v = val(c, F_DATE, &n);
        int r = parse_iso(v, n, &days);
        if (r == -1) {
            row_err(c, F_DATE, v, n, "must be a date in the form YYYY-MM-DD");
            return -1;
        }
        if (r == -2) {
            row_err(c, F_DATE, v, n, "is not a real calendar date");
            return -1;
        }
    } else {
        int64_t x;
        int bad = 0;
        if (int_field(c, F_YEAR, 1, 9999, "a year like 2023", NULL, &x) == 0)
            ymd[0] = (int)x;
        else
            bad = 1;
        v = val(c, F_MONTH, &n);
        int m = lookup(months, COUNT(months), v, n);
        if (m < 0) {
            if (int_field(c, F_MONTH, 1, 12, "a month 1-12 or a month name", NULL, &x) == 0)
                m = (int)x;
            else
                bad = 1;
        }
        ymd[1] = m;
        if (int_field(c, F_DAY, 1, 31, "a day of the month 1-31", NULL, &x) == 0)
            ymd[2] = (int)x;
        else
            bad = 1;
        if (bad)
            return -1;
        if (!real_date(ymd[0], ymd[1], ymd[2])) {
            v = val(c, F_DAY, &n);
            row_err(c, F_DAY, v, n, "%04d-%02d-%02d is not a real calendar date", ymd[0], ymd[1],
                    ymd[2]);
            return -1;
        }
        days = util_days_from_civil(ymd[0], ymd[1], ymd[2]);
    }
    if (days < s->min_day || days > s->max_day) {
        int f = s->use_dmy ? F_DAY : F_DATE;
        char iso[11];
        sales_format_date(days, iso);
        v = val(c, f, &n);
        row_err(c, f, v, n, "%s is outside the accepted range %s..%s", iso, s->min_iso, s->max_iso);
        return -1;
    }
    *out = days;
    return 0;
}

size_t sales_parse_row(const sales_schema *s, const csv_record *rec, sales_row *row,
                       sales_error *errs, size_t max_errs)
{
    row_ctx c = {.s = s, .rec = rec, .errs = errs, .n = 0, .max = max_errs};
    memset(row, 0, sizeof *row);
    if (rec->count != s->width) {
        row_err(&c, -1, rec->count ? rec->fields[0].data : "", rec->count ? rec->fields[0].len : 0,
                "has %zu fields, the header has %zu", rec->count, s->width);
        return c.n < max_errs ? c.n : max_errs;
    }
    date_fields(&c, &row->date);
    text_field(&c, F_STORE, &row->store_id);
    int x = 0;
    if (!enum_field(&c, F_COUNTRY, countries, COUNT(countries), -2, "must be USA, Canada or Mexico",
                    &x))
        row->country = (sales_country)x;
    text_field(&c, F_CITY, &row->city);
    if (!enum_field(&c, F_CATEGORY, categories, COUNT(categories), -2,
                    "must be Coffee, Pastry, Beverage or Merchandise", &x))
        row->category = (sales_category)x;
    text_field(&c, F_PRODUCT, &row->product);

    int qok = !int_field(&c, F_QUANTITY, 0, SALES_MAX_QUANTITY, "a whole number >= 0",
                         "is larger than 1000000000", &row->quantity);
    int pok = !money_field(&c, F_PRICE, SALES_MAX_PRICE_CENTS, &row->unit_price_cents);
    size_t tn = 0;
    const char *tv = s->idx[F_TOTAL] >= 0 ? val(&c, F_TOTAL, &tn) : "";
    if (tn) {
        int64_t t;
        if (!money_field(&c, F_TOTAL, SALES_MAX_QUANTITY * SALES_MAX_PRICE_CENTS, &t)) {
            row->total_cents = t;
            row->total_given = 1;
            if (qok && pok) {
                int64_t want = row->quantity * row->unit_price_cents;
                if (t - want > 1 || want - t > 1) {
                    char w[32];
                    cents_text(want, w, sizeof w);
                    row_err(&c, F_TOTAL, tv, tn,
                            "does not match quantity x unit price (expected %s)", w);
                }
            }
        }
    } else if (qok && pok) {
        row->total_cents = row->quantity * row->unit_price_cents;
    }

    if (!enum_field(&c, F_WEATHER, weathers, COUNT(weathers), SALES_WEATHER_NONE,
                    "must be Sunny, Rainy, Snowy, Cloudy, Hot or Cold (or empty)", &x))
        row->weather = (sales_weather)x;
    enum_field(&c, F_PROMOTION, flags, COUNT(flags), -1, "must be Yes or No", &row->promotion);
    enum_field(&c, F_HOLIDAY, flags, COUNT(flags), -1, "must be Yes or No", &row->holiday);
    return c.n < max_errs ? c.n : max_errs;
}

/* ---- error JSON ---------------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at s (at most n bytes), 0 if invalid. */
static size_t u8len(const unsigned char *s, size_t n)
{
    unsigned char c = s[0];
    size_t need;
    unsigned char lo = 0x80, hi = 0xBF;
    if (c < 0x80)
        return c ? 1 : 0;
    if (c >= 0xC2 && c <= 0xDF)
        need = 1;
    else if (c >= 0xE0 && c <= 0xEF) {
        need = 2;
        lo = c == 0xE0 ? 0xA0 : 0x80;
        hi = c == 0xED ? 0x9F : 0xBF;
    } else if (c >= 0xF0 && c <= 0xF4) {
        need = 3;
        lo = c == 0xF0 ? 0x90 : 0x80;
        hi = c == 0xF4 ? 0x8F : 0xBF;
    } else
        return 0;
    if (n < need + 1)
        return 0;
    for (size_t i = 1; i <= need; i++) {
        if (s[i] < lo || s[i] > hi)
            return 0;
        lo = 0x80;
        hi = 0xBF;
    }
    return need + 1;
}

json_t *sales_error_json(const sales_error *e)
{
    char out[SALES_MAX_VALUE_BYTES + 1];
    size_t o = 0, i = 0;
    int cut = 0;
    const unsigned char *v = (const unsigned char *)(e->value ? e->value : "");
    while (i < e->value_len) {
        size_t k = u8len(v + i, e->value_len - i);
        const char *src = k ? (const char *)v + i : "\xef\xbf\xbd";
        size_t m = k ? k : 3;
        if (o + m > SALES_MAX_VALUE_BYTES) {
            cut = 1;
            break;
        }
        memcpy(out + o, src, m);
        o += m;
        i += k ? k : 1;
    }
    out[o] = '\0';
    json_t *j = json_object();
    if (e->line)
        json_object_set_new(j, "line", json_integer((json_int_t)e->line));
    if (e->column)
        json_object_set_new(j, "column", json_string(e->column));
    if (e->field)
        json_object_set_new(j, "field", json_string(e->field));
    json_object_set_new(j, "value", json_stringn(out, o));
    if (cut)
        json_object_set_new(j, "value_truncated", json_true());
    if (e->reason[0])
        json_object_set_new(j, "reason", json_string(e->reason));
    return j;
}

/* ---- canonical output ------------------------------------------------------------- */

int sales_write_field(buf_t *b, const char *s, size_t len)
{
    return csvout_plain(b, s, len);
}

static size_t put_int(char *o, int64_t v)
{
    char t[24];
    size_t n = 0, k = 0;
    uint64_t u = v < 0 ? (uint64_t)0 - (uint64_t)v : (uint64_t)v;
    do {
        t[n++] = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0)
        o[k++] = '-';
    while (n)
        o[k++] = t[--n];
    return k;
}

static size_t put_cents(char *o, int64_t c)
{
    size_t k = put_int(o, c / 100);
    o[k++] = '.';
    put2(o + k, (int)(c % 100));
    return k + 2;
}

static size_t put_str(char *o, const char *s)
{
    size_t n = strlen(s);
    memcpy(o, s, n);
    return n;
}

int sales_write_header(buf_t *b)
{
    return buf_puts(b, SALES_CANONICAL_HEADER "\n");
}

int sales_write_row(buf_t *b, const sales_row *r)
{
    /* text fields are at most SALES_MAX_TEXT_BYTES, so a line fits easily */
    char line[3 * (2 * SALES_MAX_TEXT_BYTES + 3) + 256];
    size_t k = 0;
    if (r->store_id.len > SALES_MAX_TEXT_BYTES || r->city.len > SALES_MAX_TEXT_BYTES ||
        r->product.len > SALES_MAX_TEXT_BYTES)
        return RST_EINVAL;
    sales_format_date(r->date, line);
    k = 10;
    line[k++] = ',';
    k += csvout_put_text(line + k, r->store_id.s, r->store_id.len);
    line[k++] = ',';
    k += put_str(line + k, sales_country_name(r->country) ? sales_country_name(r->country) : "");
    line[k++] = ',';
    k += csvout_put_text(line + k, r->city.s, r->city.len);
    line[k++] = ',';
    k +=
        put_str(line + k, sales_category_name(r->category) ? sales_category_name(r->category) : "");
    line[k++] = ',';
    k += csvout_put_text(line + k, r->product.s, r->product.len);
    line[k++] = ',';
    k += put_int(line + k, r->quantity);
    line[k++] = ',';
    k += put_cents(line + k, r->unit_price_cents);
    line[k++] = ',';
    k += put_cents(line + k, r->total_cents);
    line[k++] = ',';
    k += put_str(line + k, sales_weather_name(r->weather) ? sales_weather_name(r->weather) : "");
    line[k++] = ',';
    k += put_str(line + k, r->promotion < 0 ? "" : r->promotion ? "Yes" : "No");
    line[k++] = ',';
    k += put_str(line + k, r->holiday < 0 ? "" : r->holiday ? "Yes" : "No");
    line[k++] = '\n';
    return buf_append(b, line, k);
}
