/* salesgen: determinism, exact header, every row valid (and accepted by the
 * "sales" schema), seasonality, holidays, the article's sample, flat memory,
 * option errors, the command, and a throughput figure. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <cmocka.h>

#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "lib/csv.h"
#include "datasets/sales.h"
#include "demo/salesgen.h"
#include "lib/util.h"
#include "trainer/holidays.h"

#if defined(__SANITIZE_ADDRESS__)
#define UNDER_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define UNDER_ASAN 1
#endif
#endif
#ifdef UNDER_ASAN
#include <sanitizer/allocator_interface.h>
#endif

#define HEADER_TAIL                                                                                \
    "Country,City,Product Category,Product,Quantity Sold,Price,Total Sale,"                        \
    "Weather,Promotion,Holiday"
#define MAX_FIELDS 16

/* ---- helpers ------------------------------------------------------------- */

static int to_buf(void *arg, const char *data, size_t len)
{
    return buf_append(arg, data, len) == RST_OK ? 0 : -1;
}

/* new: the whole output in a buf_t; caller frees with buf_free. */
static buf_t generate(const salesgen_options *o, uint64_t *rows)
{
    buf_t b;
    buf_init(&b, 0);
    char err[160] = "";
    int rc = salesgen_write(o, to_buf, &b, rows, err, sizeof err);
    if (rc != RST_OK)
        fail_msg("salesgen_write: %d %s", rc, err);
    return b;
}

/* Splits the stream into lines (rows are far shorter than the chunk size). */
typedef struct line_reader line_reader;
struct line_reader {
    char part[1024];
    size_t part_len;
    uint64_t lines;
    void (*on_line)(line_reader *lr, char *line, size_t len);
    void *ctx;
};

static int feed_lines(void *arg, const char *data, size_t len)
{
    line_reader *lr = arg;
    for (size_t i = 0; i < len; i++) {
        if (data[i] != '\n') {
            if (lr->part_len + 1 >= sizeof lr->part)
                return -1;
            lr->part[lr->part_len++] = data[i];
            continue;
        }
        lr->part[lr->part_len] = '\0';
        lr->on_line(lr, lr->part, lr->part_len);
        lr->lines++;
        lr->part_len = 0;
    }
    return 0;
}

/* Splits line in place on commas (the generator never quotes). */
static int split(char *line, char **f, int max)
{
    int n = 0;
    f[n++] = line;
    for (char *p = line; *p; p++)
        if (*p == ',') {
            *p = '\0';
            if (n == max)
                return -1;
            f[n++] = p + 1;
        }
    return n;
}

static int index_of(const char *s, const char *const *list, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, list[i]))
            return (int)i;
    return -1;
}

/* "12.34" -> 1234; -1 when not exactly digits '.' two digits. */
static long long cents_of(const char *s)
{
    size_t n = strlen(s);
    if (n < 4 || s[n - 3] != '.')
        return -1;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (i == n - 3)
            continue;
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

static long long whole_of(const char *s)
{
    long v;
    return parse_long(s, 0, 1000000000L, &v) == RST_OK ? v : -1;
}

static const char *const countries[] = {"USA", "Canada", "Mexico"};
static const char *const id_prefixes[] = {"US-", "CA-", "MX-"};
static const char *const categories[] = {"Coffee", "Pastry", "Beverage", "Merchandise"};
static const char *const weathers[] = {"Sunny", "Rainy", "Snowy", "Cloudy", "Hot", "Cold"};
static const char *const cities_by_country[3][8] = {
    {"Seattle", "New York", "Chicago", "Austin", "Los Angeles", "Miami", "Denver", "Boston"},
    {"Toronto", "Vancouver", "Montreal", "Calgary", "Ottawa", "Edmonton", "Halifax", "Winnipeg"},
    {"Mexico City", "Guadalajara", "Monterrey", "Puebla", "Tijuana", "Cancun", "Merida",
     "Queretaro"},
};
static const struct {
    const char *name, *category;
} known_products[] = {
    {"Caffe Latte", "Coffee"},       {"Cappuccino", "Coffee"},
    {"Americano", "Coffee"},         {"Espresso", "Coffee"},
    {"Iced Coffee", "Coffee"},       {"Cold Brew", "Coffee"},
    {"Blueberry Muffin", "Pastry"},  {"Croissant", "Pastry"},
    {"Hot Chocolate", "Beverage"},   {"Iced Tea", "Beverage"},
    {"Mug", "Merchandise"},          {"Tumbler", "Merchandise"},
    {"Lemonade", "Beverage"},        {"Mocha", "Coffee"},
    {"Flat White", "Coffee"},        {"Chocolate Chip Cookie", "Pastry"},
    {"Cinnamon Roll", "Pastry"},     {"Chai Latte", "Beverage"},
    {"Iced Latte", "Coffee"},        {"Banana Bread", "Pastry"},
    {"Green Tea", "Beverage"},       {"Whole Bean Coffee", "Merchandise"},
    {"Caramel Macchiato", "Coffee"}, {"Cheese Danish", "Pastry"},
};
#define NPRODUCTS ((int)(sizeof known_products / sizeof known_products[0]))

static int product_index(const char *name)
{
    for (int i = 0; i < NPRODUCTS; i++)
        if (!strcmp(name, known_products[i].name))
            return i;
    return -1;
}

/* ---- header -------------------------------------------------------------- */

static void test_header_exact(void **state)
{
    (void)state;
    salesgen_options o;
    salesgen_defaults(&o);
    o.end = "2022-01-01";
    buf_t b = generate(&o, NULL);
    assert_int_equal(strncmp(b.data, "Store ID,Date," HEADER_TAIL "\n",
                             strlen("Store ID,Date," HEADER_TAIL "\n")),
                     0);
    buf_free(&b);

    o.date_columns = 1;
    b = generate(&o, NULL);
    assert_int_equal(strncmp(b.data, "Store ID,Day,Month,Year," HEADER_TAIL "\n",
                             strlen("Store ID,Day,Month,Year," HEADER_TAIL "\n")),
                     0);
    assert_non_null(strstr(b.data, "\nUS-SEA-001,1,1,2022,USA,Seattle,Coffee,Caffe Latte,"));
    buf_free(&b);

    o.date_columns = 0;
    o.seed_sample = 1;
    b = generate(&o, NULL);
    assert_int_equal(strncmp(b.data, "Store ID,Date," HEADER_TAIL ",Customer ID\n",
                             strlen("Store ID,Date," HEADER_TAIL ",Customer ID\n")),
                     0);
    buf_free(&b);
}

/* ---- determinism and slices ---------------------------------------------- */

static void test_determinism(void **state)
{
    (void)state;
    salesgen_options o;
    salesgen_defaults(&o);
    o.end = "2022-03-31";
    uint64_t r1, r2, r3;
    buf_t a = generate(&o, &r1);
    buf_t b = generate(&o, &r2);
    assert_true(r1 > 1000);
    assert_int_equal(r1, r2);
    assert_int_equal(a.len, b.len);
    assert_memory_equal(a.data, b.data, a.len);
    o.seed = 43;
    buf_t c = generate(&o, &r3);
    assert_true(a.len != c.len || memcmp(a.data, c.data, a.len) != 0);
    buf_free(&a);
    buf_free(&b);
    buf_free(&c);
}

/* Randomness is keyed by seed, store and day: a sub-range is a slice of the
 * full range, and the first stores of a larger run are the smaller run. */
static void test_slices(void **state)
{
    (void)state;
    salesgen_options o;
    salesgen_defaults(&o);
    o.start = "2022-12-30";
    o.end = "2023-01-02";
    buf_t wide = generate(&o, NULL);
    o.start = "2022-12-31";
    o.end = "2023-01-01";
    buf_t narrow = generate(&o, NULL);
    const char *body = strchr(narrow.data, '\n') + 1;
    assert_non_null(strstr(wide.data, body));
    const char *at = strstr(wide.data, "\nUS-SEA-001,2022-12-31,");
    assert_non_null(at);
    assert_int_equal(at + 1, strstr(wide.data, body));

    o.stores = 30;
    buf_t more = generate(&o, NULL);
    /* each day of the 12-store output is the start of that day in the 30-store output */
    const char *d2 = strstr(narrow.data, "\nUS-SEA-001,2023-01-01,");
    assert_non_null(d2);
    size_t day1_len = (size_t)(d2 + 1 - body);
    assert_int_equal(strncmp(strchr(more.data, '\n') + 1, body, day1_len), 0);
    const char *m2 = strstr(more.data, "\nUS-SEA-001,2023-01-01,");
    assert_non_null(m2);
    assert_int_equal(strncmp(m2 + 1, d2 + 1, strlen(d2 + 1)), 0);

    /* more products: each store-day's rows start with the smaller run's */
    o.stores = 12;
    o.products = SALESGEN_MAX_PRODUCTS;
    buf_t all = generate(&o, NULL);
    buf_t kept;
    buf_init(&kept, 0);
    for (const char *line = strchr(all.data, '\n') + 1; *line;) {
        const char *e = strchr(line, '\n');
        char row[512];
        snprintf(row, sizeof row, "%.*s", (int)(e - line), line);
        char *f[MAX_FIELDS];
        assert_int_equal(split(row, f, MAX_FIELDS), 12);
        if (product_index(f[5]) < 12)
            buf_append(&kept, line, (size_t)(e + 1 - line));
        line = e + 1;
    }
    assert_string_equal(kept.data, body);
    buf_free(&all);
    buf_free(&kept);
    buf_free(&wide);
    buf_free(&narrow);
    buf_free(&more);
}

/* ---- every row valid ----------------------------------------------------- */

typedef struct {
    int date_columns, sample;
    int32_t first, last, prev;
    char store_ids[64][16];
    char store_city[64][32];
    int nstores;
    int price_seen[64][NPRODUCTS][3]; /* [..][2022, 2023, 2024] cents */
    csv_parser *csv;
    sales_schema *schema;
    uint64_t sales_errors, sales_rows;
    char customers[1001];
    int product_seen[NPRODUCTS];
    int weather_seen[6];
} check_ctx;

static void check_line(line_reader *lr, char *line, size_t len)
{
    check_ctx *c = lr->ctx;
    (void)len;
    if (lr->lines == 0)
        return; /* the header, checked elsewhere */
    assert_null(strchr(line, '"'));
    char *f[MAX_FIELDS];
    int want = 12 + (c->date_columns ? 2 : 0) + (c->sample ? 1 : 0);
    int n = split(line, f, MAX_FIELDS);
    if (n != want)
        fail_msg("line %llu: %d fields", (unsigned long long)lr->lines, n);
    int k = 0;
    const char *store = f[k++];
    int32_t day;
    if (c->date_columns) {
        long d, m, y;
        assert_int_equal(parse_long(f[k], 1, 31, &d), RST_OK);
        assert_int_equal(parse_long(f[k + 1], 1, 12, &m), RST_OK);
        assert_int_equal(parse_long(f[k + 2], 1970, 2100, &y), RST_OK);
        char iso[16];
        snprintf(iso, sizeof iso, "%04ld-%02ld-%02ld", y, m, d);
        assert_int_equal(sales_parse_date(iso, 10, &day), RST_OK);
        k += 3;
    } else {
        assert_int_equal(strlen(f[k]), 10);
        assert_int_equal(sales_parse_date(f[k], 10, &day), RST_OK);
        k++;
    }
    assert_true(day >= c->first && day <= c->last);
    assert_true(day >= c->prev); /* rows come day by day */
    c->prev = day;
    int country = index_of(f[k++], countries, 3);
    assert_true(country >= 0);
    const char *city = f[k++];
    assert_true(index_of(city, cities_by_country[country], 8) >= 0);
    /* US-SEA-001: country prefix, three letters, three digits; one city per id */
    assert_int_equal(strlen(store), 10);
    assert_int_equal(strncmp(store, id_prefixes[country], 3), 0);
    assert_true(store[6] == '-' && store[7] >= '0' && store[7] <= '9' && store[9] >= '0');
    int s = 0;
    while (s < c->nstores && strcmp(c->store_ids[s], store))
        s++;
    if (s == c->nstores) {
        assert_true(s < 64);
        snprintf(c->store_ids[s], sizeof c->store_ids[s], "%s", store);
        snprintf(c->store_city[s], sizeof c->store_city[s], "%s", city);
        c->nstores++;
    }
    assert_string_equal(c->store_city[s], city);
    const char *category = f[k++];
    assert_true(index_of(category, categories, 4) >= 0);
    int p = product_index(f[k++]);
    assert_true(p >= 0);
    assert_string_equal(known_products[p].category, category);
    c->product_seen[p] = 1;
    long long qty = whole_of(f[k++]);
    long long price = cents_of(f[k++]);
    long long total = cents_of(f[k++]);
    assert_true(qty >= 1);
    assert_true(price > 0);
    assert_true(f[k - 2][0] != '0' || f[k - 2][1] == '.'); /* no leading zeros */
    if (total != qty * price)
        fail_msg("total %lld != %lld x %lld", total, qty, price);
    int yi = day >= 19723 ? 2 : day >= 19358 ? 1 : 0; /* 2024-01-01, 2023-01-01 */
    if (c->price_seen[s][p][yi] == 0)
        c->price_seen[s][p][yi] = (int)price;
    assert_int_equal(c->price_seen[s][p][yi], price); /* one menu price per store and year */
    int w = index_of(f[k++], weathers, 6);
    assert_true(w >= 0);
    c->weather_seen[w]++;
    assert_true(!strcmp(f[k], "Yes") || !strcmp(f[k], "No"));
    k++;
    assert_true(!strcmp(f[k], "Yes") || !strcmp(f[k], "No"));
    k++;
    if (c->sample) {
        long id;
        assert_int_equal(strncmp(f[k], "CUST-", 5), 0);
        assert_int_equal(strlen(f[k]), 9);
        assert_int_equal(parse_long(f[k] + 5, 1, 1000, &id), RST_OK);
        c->customers[id] = 1;
    }
}

static int on_sales_record(void *arg, const csv_record *rec)
{
    check_ctx *c = arg;
    if (!c->schema) {
        json_t *report = NULL;
        int rc = sales_schema_new(NULL, rec, &c->schema, &report);
        json_decref(report);
        return rc == RST_OK ? 0 : 1;
    }
    sales_row row;
    sales_error errs[4];
    c->sales_errors += sales_parse_row(c->schema, rec, &row, errs, 4);
    c->sales_rows++;
    return 0;
}

typedef struct {
    line_reader lr;
    check_ctx *c;
} both_sinks;

static int feed_both(void *arg, const char *data, size_t len)
{
    both_sinks *b = arg;
    if (csv_feed(b->c->csv, data, len) != RST_OK)
        return -1;
    return feed_lines(&b->lr, data, len);
}

static void check_all(const salesgen_options *o, check_ctx *c, uint64_t *rows)
{
    memset(c, 0, sizeof *c);
    c->date_columns = o->date_columns;
    c->sample = o->seed_sample;
    const char *start = o->seed_sample ? "2022-01-01" : o->start;
    const char *end = o->seed_sample ? "2023-12-31" : o->end;
    assert_int_equal(sales_parse_date(start, 10, &c->first), RST_OK);
    assert_int_equal(sales_parse_date(end, 10, &c->last), RST_OK);
    c->prev = c->first;
    c->csv = csv_new(NULL, on_sales_record, c);
    both_sinks b = {.lr = {.on_line = check_line, .ctx = c}, .c = c};
    char err[160] = "";
    assert_int_equal(salesgen_write(o, feed_both, &b, rows, err, sizeof err), RST_OK);
    assert_int_equal(csv_finish(c->csv), RST_OK);
    assert_int_equal(b.lr.part_len, 0); /* ends with a newline */
    assert_int_equal(b.lr.lines, *rows + 1);
    /* the ingestion schema accepts every row */
    assert_int_equal(c->sales_rows, *rows);
    assert_int_equal(c->sales_errors, 0);
    csv_free(c->csv);
    sales_schema_free(c->schema);
}

static void test_rows_valid(void **state)
{
    (void)state;
    check_ctx *c = xcalloc(1, sizeof *c);
    salesgen_options o;
    salesgen_defaults(&o);
    o.stores = 30; /* every city, some twice */
    o.products = SALESGEN_MAX_PRODUCTS;
    o.start = "2022-06-01";
    o.end = "2023-03-31";
    uint64_t rows = 0;
    check_all(&o, c, &rows);
    assert_int_equal(c->nstores, 30);
    for (int p = 0; p < NPRODUCTS; p++)
        assert_true(c->product_seen[p]);
    for (int w = 0; w < 6; w++)
        assert_true(c->weather_seen[w] > 0);

    o.stores = 12;
    o.products = 12;
    o.date_columns = 1;
    o.start = "2023-12-20";
    o.end = "2024-01-10";
    check_all(&o, c, &rows);
    assert_true(rows > 12 * 10 * 20);
    free(c);
}

/* ---- the article's sample ------------------------------------------------ */

static void test_seed_sample(void **state)
{
    (void)state;
    check_ctx *c = xcalloc(1, sizeof *c);
    salesgen_options o;
    salesgen_defaults(&o);
    o.seed_sample = 1;
    o.products = 20; /* ignored in sample mode */
    o.start = "2030-01-01";
    uint64_t rows = 0;
    check_all(&o, c, &rows);
    assert_int_equal(rows, SALESGEN_SAMPLE_ORDERS);
    int nproducts = 0, ncustomers = 0;
    for (int p = 0; p < NPRODUCTS; p++)
        if (c->product_seen[p]) {
            nproducts++;
            assert_string_equal(known_products[p].category, "Coffee");
        }
    assert_int_equal(nproducts, 6);
    for (int i = 1; i <= 1000; i++)
        ncustomers += c->customers[i];
    assert_true(ncustomers <= 1000 && ncustomers >= 950);
    /* the article's four kinds of weather only */
    assert_int_equal(c->weather_seen[4], 0);
    assert_int_equal(c->weather_seen[5], 0);
    assert_true(c->weather_seen[2] > 0);
    assert_true(c->prev >= 19692); /* reaches December 2023 */
    free(c);
}

/* ---- holidays ------------------------------------------------------------ */

static void test_holidays(void **state)
{
    (void)state;
    int m, d;
    holidays_easter(2024, &m, &d);
    assert_int_equal(m * 100 + d, 331);
    holidays_easter(2023, &m, &d);
    assert_int_equal(m * 100 + d, 409);
    holidays_easter(2025, &m, &d);
    assert_int_equal(m * 100 + d, 420);
    holidays_easter(2000, &m, &d);
    assert_int_equal(m * 100 + d, 423);
    holidays_easter(2019, &m, &d);
    assert_int_equal(m * 100 + d, 421);

    assert_string_equal(holidays_name("USA", 2023, 11, 23), "Thanksgiving");
    assert_string_equal(holidays_name("USA", 2022, 11, 24), "Thanksgiving");
    assert_null(holidays_name("USA", 2023, 11, 16));
    assert_null(holidays_name("USA", 2023, 11, 30));
    assert_string_equal(holidays_name("Canada", 2023, 10, 9), "Thanksgiving");
    assert_null(holidays_name("Canada", 2023, 11, 23));
    assert_string_equal(holidays_name("USA", 2024, 5, 27), "Memorial Day");
    assert_string_equal(holidays_name("USA", 2023, 1, 16), "Martin Luther King Jr. Day");
    assert_string_equal(holidays_name("USA", 2022, 6, 19), "Juneteenth");
    assert_null(holidays_name("USA", 2019, 6, 19));
    assert_string_equal(holidays_name("Canada", 2024, 3, 29), "Good Friday");
    assert_string_equal(holidays_name("Canada", 2023, 5, 22), "Victoria Day");
    assert_string_equal(holidays_name("Canada", 2024, 5, 20), "Victoria Day");
    assert_string_equal(holidays_name("Canada", 2023, 12, 26), "Boxing Day");
    assert_string_equal(holidays_name("Mexico", 2024, 2, 5), "Constitution Day");
    assert_string_equal(holidays_name("Mexico", 2023, 2, 6), "Constitution Day");
    assert_null(holidays_name("Mexico", 2023, 2, 5));
    assert_string_equal(holidays_name("Mexico", 2023, 3, 20), "Benito Juarez's Birthday");
    assert_string_equal(holidays_name("Mexico", 2024, 3, 28), "Holy Thursday");
    assert_string_equal(holidays_name("Mexico", 2023, 11, 20), "Revolution Day");
    assert_string_equal(holidays_name("Mexico", 2024, 10, 1), "Inauguration Day");
    assert_string_equal(holidays_name("Mexico", 2023, 9, 16), "Independence Day");
    assert_null(holidays_name("Mexico", 2023, 7, 4));
    assert_null(holidays_name("France", 2023, 7, 14));
    assert_null(holidays_name("USA", 2023, 2, 29));

    /* and in the output: the flag follows the store's country */
    salesgen_options o;
    salesgen_defaults(&o);
    o.start = "2023-10-09";
    o.end = "2023-11-23";
    buf_t b = generate(&o, NULL);
    int checked = 0;
    for (char *line = strchr(b.data, '\n'); line && line[1]; line = strchr(line + 1, '\n')) {
        char row[512];
        const char *e = strchr(line + 1, '\n');
        snprintf(row, sizeof row, "%.*s", (int)(e - line - 1), line + 1);
        char *f[MAX_FIELDS];
        assert_int_equal(split(row, f, MAX_FIELDS), 12);
        int y = (int)strtol(f[1], NULL, 10), mo = (int)strtol(f[1] + 5, NULL, 10),
            dd = (int)strtol(f[1] + 8, NULL, 10);
        int want = holidays_name(f[2], y, mo, dd) != NULL;
        assert_string_equal(f[11], want ? "Yes" : "No");
        if (!strcmp(f[1], "2023-11-23"))
            assert_string_equal(f[11], !strcmp(f[2], "USA") ? "Yes" : "No");
        if (!strcmp(f[1], "2023-10-09") && !strcmp(f[2], "Canada"))
            assert_string_equal(f[11], "Yes");
        if (!strcmp(f[1], "2023-10-09") && !strcmp(f[2], "Mexico"))
            assert_string_equal(f[11], "No");
        checked++;
    }
    assert_true(checked > 1000);
    buf_free(&b);
}

/* ---- seasonality --------------------------------------------------------- */

typedef struct {
    /* units by month over 2022-2023 in US-CHI-001 and CA-TOR-001 */
    double qty[2][NPRODUCTS][13];
    double coffee_wd[7], pastry_wd[7]; /* all stores, by weekday */
    double hot_choc_by_weather[6], store_days_by_weather[6];
    double coffee_thanksgiving, coffee_other_nov_thu;
    double year_qty[2];
} season_ctx;

static void season_line(line_reader *lr, char *line, size_t len)
{
    season_ctx *c = lr->ctx;
    (void)len;
    if (lr->lines == 0)
        return;
    char *f[MAX_FIELDS];
    assert_int_equal(split(line, f, MAX_FIELDS), 12);
    int32_t day;
    assert_int_equal(sales_parse_date(f[1], 10, &day), RST_OK);
    int month = (int)strtol(f[1] + 5, NULL, 10);
    int wd = (int)((day + 3) % 7); /* 0 = Monday */
    int p = product_index(f[5]);
    double q = (double)whole_of(f[6]);
    int city = !strcmp(f[0], "US-CHI-001") ? 0 : !strcmp(f[0], "CA-TOR-001") ? 1 : -1;
    if (city >= 0)
        c->qty[city][p][month] += q;
    if (!strcmp(f[4], "Coffee")) {
        c->coffee_wd[wd] += q;
        if (!strcmp(f[2], "USA") && month == 11 && wd == 3) {
            if (!strcmp(f[1], "2022-11-24") || !strcmp(f[1], "2023-11-23"))
                c->coffee_thanksgiving += q;
            else
                c->coffee_other_nov_thu += q;
        }
    }
    if (!strcmp(f[4], "Pastry"))
        c->pastry_wd[wd] += q;
    int w = index_of(f[9], weathers, 6);
    if (!strcmp(f[2], "Canada") || !strcmp(f[3], "Chicago") || !strcmp(f[3], "New York")) {
        if (!strcmp(f[5], "Hot Chocolate"))
            c->hot_choc_by_weather[w] += q;
        if (!strcmp(f[5], "Caffe Latte")) /* sold every store-day: one per store-day */
            c->store_days_by_weather[w] += 1;
    }
    c->year_qty[f[1][3] - '2'] += q;
}

static double months_mean(const double *by_month, int a, int b, int c3)
{
    return (by_month[a] + by_month[b] + by_month[c3]) / 3;
}

static void test_seasonality(void **state)
{
    (void)state;
    season_ctx *c = xcalloc(1, sizeof *c);
    salesgen_options o;
    salesgen_defaults(&o);
    line_reader lr = {.on_line = season_line, .ctx = c};
    uint64_t rows = 0;
    assert_int_equal(salesgen_write(&o, feed_lines, &lr, &rows, NULL, 0), RST_OK);
    int iced = product_index("Iced Coffee"), choc = product_index("Hot Chocolate");
    for (int city = 0; city < 2; city++) {
        double iced_summer = months_mean(c->qty[city][iced], 6, 7, 8);
        double iced_winter = months_mean(c->qty[city][iced], 12, 1, 2);
        double choc_summer = months_mean(c->qty[city][choc], 6, 7, 8);
        double choc_winter = months_mean(c->qty[city][choc], 12, 1, 2);
        print_message("%s: iced coffee summer/winter %.0f/%.0f, hot chocolate %.0f/%.0f "
                      "(units per month)\n",
                      city ? "Toronto" : "Chicago", iced_summer, iced_winter, choc_summer,
                      choc_winter);
        assert_true(iced_summer > 1.5 * iced_winter);
        assert_true(choc_winter > 1.5 * choc_summer);
    }
    /* weekly: commuters buy coffee on weekdays, pastries sell at weekends */
    assert_true(c->coffee_wd[1] > 1.1 * c->coffee_wd[6]);
    assert_true(c->pastry_wd[5] > 1.1 * c->pastry_wd[1]);
    /* weather: hot chocolate per store-day is higher on Snowy/Cold than on Sunny/Hot days */
    double cold = (c->hot_choc_by_weather[2] + c->hot_choc_by_weather[5]) /
                  (c->store_days_by_weather[2] + c->store_days_by_weather[5]);
    double warm = (c->hot_choc_by_weather[0] + c->hot_choc_by_weather[4]) /
                  (c->store_days_by_weather[0] + c->store_days_by_weather[4]);
    assert_true(cold > 1.3 * warm);
    /* US Thanksgiving: fewer coffees than the other November Thursdays (7 of them) */
    assert_true(c->coffee_thanksgiving / 2 < 0.8 * c->coffee_other_nov_thu / 7);
    /* gentle growth */
    assert_true(c->year_qty[1] > c->year_qty[0]);
    assert_true(c->year_qty[1] < 1.15 * c->year_qty[0]);
    free(c);
}

/* ---- flat memory --------------------------------------------------------- */

static size_t heap_in_use(void)
{
#ifdef UNDER_ASAN
    return __sanitizer_get_current_allocated_bytes();
#else
    struct mallinfo2 mi = mallinfo2();
    return mi.uordblks + mi.hblkhd;
#endif
}

typedef struct {
    uint64_t bytes, calls;
    size_t peak;
} counter;

static int count_bytes(void *arg, const char *data, size_t len)
{
    counter *c = arg;
    (void)data;
    c->bytes += len;
    c->calls++;
    size_t now = heap_in_use();
    if (now > c->peak)
        c->peak = now;
    return 0;
}

static void test_flat_memory(void **state)
{
    (void)state;
    salesgen_options o;
    salesgen_defaults(&o);
    o.stores = 50;
    o.products = 20;
    size_t peaks[2];
    for (int run = 0; run < 2; run++) {
        o.end = run ? "2023-12-31" : "2022-01-31";
        size_t before = heap_in_use();
        counter c = {.peak = before};
        uint64_t rows = 0;
        assert_int_equal(salesgen_write(&o, count_bytes, &c, &rows, NULL, 0), RST_OK);
        peaks[run] = c.peak - before;
        print_message("%s: %llu rows, %llu bytes in %llu writes, heap growth %zu bytes\n", o.end,
                      (unsigned long long)rows, (unsigned long long)c.bytes,
                      (unsigned long long)c.calls, peaks[run]);
        assert_true(peaks[run] < 256 * 1024);
        if (run) {
            assert_true(rows > 500000);
            assert_true(c.bytes > 40u * 1024 * 1024);
        }
    }
    /* 24 times the days, the same memory */
    assert_true(peaks[1] <= peaks[0] + 4096);
}

/* ---- errors -------------------------------------------------------------- */

static void expect_einval(const salesgen_options *o, const char *flag)
{
    char err[160] = "";
    uint64_t rows = 7;
    buf_t b;
    buf_init(&b, 0);
    assert_int_equal(salesgen_write(o, to_buf, &b, &rows, err, sizeof err), RST_EINVAL);
    if (!strstr(err, flag))
        fail_msg("'%s' does not name %s", err, flag);
    assert_null(strchr(err, '\n'));
    assert_int_equal(b.len, 0); /* nothing written */
    assert_int_equal(rows, 0);
    buf_free(&b);
}

static int fail_second(void *arg, const char *data, size_t len)
{
    (void)data;
    (void)len;
    return ++*(int *)arg > 1 ? -1 : 0;
}

static void test_bad_options(void **state)
{
    (void)state;
    salesgen_options o;
    salesgen_defaults(&o);
    o.stores = 0;
    expect_einval(&o, "--stores");
    o.stores = SALESGEN_MAX_STORES + 1;
    expect_einval(&o, "--stores");
    salesgen_defaults(&o);
    o.products = 0;
    expect_einval(&o, "--products");
    o.products = SALESGEN_MAX_PRODUCTS + 1;
    expect_einval(&o, "--products");
    salesgen_defaults(&o);
    const char *bad_dates[] = {"2022-13-01", "2022-02-30", "2022-1-01",  "22-01-01",  "2022-01-01x",
                               "",           "1969-12-31", "2101-01-01", "2022/01/01"};
    for (size_t i = 0; i < sizeof bad_dates / sizeof bad_dates[0]; i++) {
        o.start = bad_dates[i];
        expect_einval(&o, "--start");
    }
    salesgen_defaults(&o);
    o.end = "2023-02-29";
    expect_einval(&o, "--end");
    o.start = "2023-03-02";
    o.end = "2023-03-01";
    expect_einval(&o, "--end");

    /* a failing writer stops the run */
    salesgen_defaults(&o);
    int calls = 0;
    uint64_t rows = 0;
    char err[160] = "";
    assert_int_equal(salesgen_write(&o, fail_second, &calls, &rows, err, sizeof err), RST_EIO);
    assert_int_equal(calls, 2);
    assert_true(rows > 0 && rows < 4000);
}

/* ---- the command --------------------------------------------------------- */

static int run_main(int n, ...)
{
    char *argv[16];
    va_list ap;
    va_start(ap, n);
    for (int i = 0; i < n; i++)
        argv[i] = va_arg(ap, char *);
    va_end(ap);
    argv[n] = NULL;
    return salesgen_main(n, argv);
}

static void test_command(void **state)
{
    (void)state;
    char path[] = "/tmp/test_salesgen_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);

    assert_int_equal(run_main(9, "generate-sales", "--stores", "3", "--products=5", "--start",
                              "2022-05-01", "--end=2022-05-31", "--output", path),
                     0);
    salesgen_options o;
    salesgen_defaults(&o);
    o.stores = 3;
    o.products = 5;
    o.start = "2022-05-01";
    o.end = "2022-05-31";
    buf_t want = generate(&o, NULL);
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    char *got = xmalloc(want.len + 16);
    size_t n = fread(got, 1, want.len + 16, f);
    fclose(f);
    assert_int_equal(n, want.len);
    assert_memory_equal(got, want.data, n);
    free(got);
    buf_free(&want);

    assert_int_equal(
        run_main(5, "generate-sales", "--seed-sample", "--date-columns", "--output", path), 0);
    assert_int_equal(run_main(2, "generate-sales", "--help"), 0);

    /* usage errors: 2, and the output file is left alone */
    assert_int_equal(run_main(3, "generate-sales", "--stores", "abc"), 2);
    assert_int_equal(run_main(3, "generate-sales", "--stores", "0"), 2);
    assert_int_equal(run_main(2, "generate-sales", "--stores"), 2);
    assert_int_equal(run_main(2, "generate-sales", "--bogus"), 2);
    assert_int_equal(run_main(3, "generate-sales", "--seed", "-1"), 2);
    assert_int_equal(run_main(3, "generate-sales", "--seed", "18446744073709551616"), 2);
    assert_int_equal(run_main(5, "generate-sales", "--start", "2022-02-30", "--output", path), 2);
    assert_int_equal(run_main(4, "generate-sales", "--seed-sample", "--products", "3"), 2);
    assert_int_equal(run_main(2, "generate-sales", "--output="), 2);
    f = fopen(path, "rb");
    assert_non_null(f);
    char head[32] = "";
    assert_non_null(fgets(head, sizeof head, f));
    fclose(f);
    assert_int_equal(strncmp(head, "Store ID,Day,Month,Year,", 24), 0);

    /* I/O errors: 1 */
    assert_int_equal(run_main(3, "generate-sales", "--output", "/nonexistent-dir/sales.csv"), 1);
    unlink(path);
}

/* ---- throughput (printed, not asserted) ---------------------------------- */

static void test_throughput(void **state)
{
    (void)state;
    salesgen_options o;
    salesgen_defaults(&o);
    o.stores = 100;
    o.products = SALESGEN_MAX_PRODUCTS;
    o.start = "2023-01-01";
    o.end = "2023-12-31";
    counter c = {0};
    uint64_t rows = 0;
    struct timespec t0, t1;
    clock_gettime(CLOCK_MONOTONIC, &t0);
    assert_int_equal(salesgen_write(&o, count_bytes, &c, &rows, NULL, 0), RST_OK);
    clock_gettime(CLOCK_MONOTONIC, &t1);
    double s = (double)(t1.tv_sec - t0.tv_sec) + (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
    print_message("throughput: %llu rows (%.1f MB) in %.3f s = %.0f rows/s\n",
                  (unsigned long long)rows, (double)c.bytes / 1e6, s, (double)rows / s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_header_exact), cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_slices),       cmocka_unit_test(test_rows_valid),
        cmocka_unit_test(test_seed_sample),  cmocka_unit_test(test_holidays),
        cmocka_unit_test(test_seasonality),  cmocka_unit_test(test_flat_memory),
        cmocka_unit_test(test_bad_options),  cmocka_unit_test(test_command),
        cmocka_unit_test(test_throughput),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
